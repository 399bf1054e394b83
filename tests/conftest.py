"""Shared fixtures: a real HTTP server on 127.0.0.1:0, and running the CLI in-process or as a process.

`sr` (scenario runner) writes scenario files into tmp_path (the working directory of the test) and
runs `main([...])` in-process, capturing stdout, stderr, the exit code and the JUnit file. Nothing
here mocks `requests`: every request goes over a socket to `tests/server.py`.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from server import TestServer

from runner.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    """A fresh server per test (its recorded requests belong to that test); BASE points at it."""
    srv = TestServer().start()
    monkeypatch.setenv("BASE", srv.url)
    yield srv
    srv.stop()


class Hung(BaseException):
    """A BaseException, so that the runner's own error handling cannot swallow it."""


@pytest.fixture
def watchdog():
    """Fail a test that runs longer than 30 s instead of hanging the suite (use it per module:
    `pytestmark = pytest.mark.usefixtures("watchdog")`)."""
    limit = 30.0
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise Hung(f"test still running after {limit:g}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Run:
    code: int
    out: str
    err: str
    junit_path: Path | None
    seconds: float = 0.0  # how long main() took

    @property
    def output(self) -> str:
        return self.out + self.err

    @property
    def xml(self) -> ET.Element:
        assert self.junit_path is not None and self.junit_path.exists(), "no JUnit report written"
        return ET.parse(self.junit_path).getroot()

    def suites(self) -> list[ET.Element]:
        return self.xml.findall("testsuite")

    def suite(self, name: str) -> ET.Element:
        found = [s for s in self.suites() if s.get("name") == name]
        assert len(found) == 1, f"suite {name!r} not found once in {[s.get('name') for s in self.suites()]}"
        return found[0]

    def case(self, name: str, suite: str | None = None) -> ET.Element:
        suites = [self.suite(suite)] if suite else self.suites()
        found = [c for s in suites for c in s.findall("testcase") if c.get("name") == name]
        assert len(found) == 1, f"testcase {name!r} not found once"
        return found[0]

    def outcome(self, name: str, suite: str | None = None) -> str:
        """passed / failure / error / skipped, as a CI server reads the testcase."""
        case = self.case(name, suite)
        for kind in ("failure", "error", "skipped"):
            if case.find(kind) is not None:
                return kind
        return "passed"

    def message(self, name: str, suite: str | None = None) -> str:
        """The failure/error text of a testcase: message attribute and body."""
        case = self.case(name, suite)
        for kind in ("failure", "error", "skipped"):
            element = case.find(kind)
            if element is not None:
                return (element.get("message") or "") + "\n" + (element.text or "")
        return ""

    def system_out(self, name: str, suite: str | None = None) -> str:
        element = self.case(name, suite).find("system-out")
        return element.text or "" if element is not None else ""


class ScenarioRunner:
    def __init__(self, directory: Path):
        self.dir = directory

    def write(self, name: str, text: str) -> Path:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def run(self, *args: str, junit: str | None = "junit.xml") -> Run:
        """`scenario-runner run ARGS --junit junit.xml`, in-process."""
        argv = ["run", *args]
        if junit is not None:
            argv += ["--junit", junit]
        return self.main(*argv, junit=junit)

    def main(self, *argv: str, junit: str | None = None) -> Run:
        out, err = io.StringIO(), io.StringIO()
        junit_path = self.dir / junit if junit else None
        if junit_path is not None and junit_path.exists():
            junit_path.unlink()
        started = time.perf_counter()
        code = main(list(argv), stdout=out, stderr=err)
        return Run(int(code), out.getvalue(), err.getvalue(), junit_path, time.perf_counter() - started)


@pytest.fixture
def sr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ScenarioRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return ScenarioRunner(tmp_path)


# --- running the runner as a separate process --------------------------------------------------

# Runs main() in a fresh interpreter and reports the peak RSS growth of the run itself: imports
# happen first, then the high-water mark is reset (or, where that is not possible, the current RSS
# is the baseline), so only what the run allocates counts.
_MEMORY_DRIVER = r"""
import io, json, sys
import jinja2, jsonschema, requests, urllib3
import runner.cli, runner.engine, runner.report.junit, runner.schedule

def field(name):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(name + ":"):
                return int(line.split()[1])  # KiB
    raise KeyError(name)

baseline = field("VmRSS")
try:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current RSS
except OSError:
    pass
out, err = io.StringIO(), io.StringIO()
code = runner.cli.main(sys.argv[1:], stdout=out, stderr=err)
print(json.dumps({"code": code, "baseline_kib": baseline, "peak_kib": field("VmHWM"),
                  "out": out.getvalue(), "err": err.getvalue()}))
"""


@dataclass
class MemoryRun:
    code: int
    growth_mib: float
    out: str
    err: str


def run_measuring_memory(cwd: Path, *argv: str, timeout: float = 60) -> MemoryRun:
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to measure memory")
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_DRIVER, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    growth = (data["peak_kib"] - data["baseline_kib"]) / 1024
    return MemoryRun(data["code"], growth, data["out"], data["err"])


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("NO_COLOR", None)
    return env


def start_run(cwd: Path, base: str, path: str = ".") -> subprocess.Popen[str]:
    """`scenario-runner run PATH --junit junit.xml` as a child process (to be signalled), against `base`."""
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "run", path, "--junit", "junit.xml"],
        cwd=cwd,
        env=child_env(BASE=base),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_request(server: TestServer, proc: subprocess.Popen[str], matches, limit: float = 15) -> None:
    """Wait until the server has seen a request `matches` accepts (the child is then in that step)."""
    deadline = time.monotonic() + limit
    while not any(matches(r) for r in list(server.state.requests)):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.02)
