"""Run-time failures, word for word (issue 13, point 7): the console and the JUnit text of typical
failures are golden files, as the load errors are (tests/test_bad_input.py).

Every `tests/run_golden/<case>.scenario.yaml` runs against the local test server; `<case>.console`
is its console output and `<case>.junit.xml` its JUnit file, both with what changes from run to run
replaced (ports, durations, dates, versions, the host name). Regenerate with
`UPDATE_GOLDEN=1 pytest tests/test_run_golden.py` and read the diff: a message must say what was
expected, what came, and where.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

CASES = Path(__file__).resolve().parent / "run_golden"
UPDATE = bool(os.environ.get("UPDATE_GOLDEN"))
NAMES = sorted(p.name.removesuffix(".scenario.yaml") for p in CASES.glob("*.scenario.yaml"))

_VARYING = [
    (re.compile(r"127\.0\.0\.1:(?!9/)\d+"), "127.0.0.1:PORT"),
    (re.compile(r"\(\d+\.\d+s( , \d+ attempts)?"), r"(T\1"),
    (re.compile(r"\b\d+\.\d{2,}s\b"), "Ts"),
    (re.compile(r"in \d+\.\d+s"), "in Ts"),
    (re.compile(r"Date: [^\n<]+"), "Date: DATE"),
    (re.compile(r"BaseHTTP/[\d.]+ Python/[\d.]+"), "BaseHTTP/V Python/V"),
    (re.compile(r"python-requests/[\d.]+"), "python-requests/V"),
    # requests offers br/zstd when brotli/zstandard happen to be installed: not the runner's choice
    (re.compile(r"gzip, deflate(?:, br)?(?:, zstd)?"), "gzip, deflate"),
    (re.compile(r'time="[\d.]+"'), 'time="T"'),
    (re.compile(r'timestamp="[^"]+"'), 'timestamp="TS"'),
    (re.compile(r'hostname="[^"]+"'), 'hostname="HOST"'),
    (re.compile(r"client_port[^,}]*"), "client_port"),
    (re.compile(r"\d+\.\d+s\)"), "Ts)"),
    (re.compile(r"\b\d+ attempts\b"), "N attempts"),  # a loaded machine polls fewer times
    (re.compile(r"after [\d.]+s"), "after Ts"),
    (re.compile(r"#\d+: status (\d+) in [\d.]+s"), r"#N: status \1 in Ts"),
]


def normalise(text: str) -> str:
    for pattern, replacement in _VARYING:
        text = pattern.sub(replacement, text)
    return text


@pytest.mark.parametrize("name", NAMES)
def test_run_time_failure_text(name, sr, server, monkeypatch):
    for item in CASES.iterdir():
        shutil.copy(item, sr.dir / item.name)
    monkeypatch.setenv("NO_COLOR", "1")
    run = sr.run(f"{name}.scenario.yaml")
    assert run.code == 1, run.output
    console = normalise(run.out)
    junit = normalise(run.junit_path.read_text("utf-8"))
    for suffix, actual in ((".console", console), (".junit.xml", junit)):
        golden = CASES / f"{name}{suffix}"
        if UPDATE:
            golden.write_text(actual, "utf-8")
        assert actual == golden.read_text("utf-8"), f"{golden.name} differs (UPDATE_GOLDEN=1 regenerates it)"
    assert "gAAAAABsecret" not in console + junit  # the golden files are run output: masked too
