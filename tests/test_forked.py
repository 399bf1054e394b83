"""A large run's work on a second core (runner/forked.py): the second half of its files checked in a
forked copy while the run checks the first half, and the HTML page rendered in a copy while the
run writes its JUnit report (issue 12). What a copy does must never show: the reports, the
messages, the numbering, the inputs no report may replace and the requests sent are those of the
same run done in one process; a copy that fails only means the run does the work itself; no copy
outlives the run, whatever ends it.

The runs are separate processes (a copy is made only by a process with no other thread: pytest's
workers have some), through a driver that lowers the thresholds so that a few files take the path
10,000 files take, and that counts the copies made.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("watchdog")

DRIVER = r"""
import os, signal, sys, time
import runner.cli, runner.forked, runner.session

mode, log = sys.argv.pop(1), sys.argv.pop(1)
runner.cli.KEEP_LOADED = 2
runner.session._LoadHelper.MIN_FILES = 2
Forked = runner.forked.Forked
if mode == "serial":
    runner.forked.usable = lambda: False
elif mode == "copy-fails":
    Forked._serve = lambda self, parent, blocked: os._exit(1)
elif mode == "fork-fails":
    def no_fork():
        raise OSError(11, "Resource temporarily unavailable")
    os.fork = no_fork
elif mode == "sigchld-ignored":  # as some launchers leave it: the kernel would reap the copies
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)

def note(line):
    with open(log, "a") as fh:
        fh.write(line + "\n")

start, result = Forked.start, Forked.result

def started(self):
    start(self)
    note(f"copy {self._pid}")

def answered(self):
    answer = result(self)
    note(f"answer {'yes' if answer is not None else 'no'}")
    return answer

Forked.start, Forked.result = started, answered
code = runner.cli.main(sys.argv[1:])
note(f"returned {code}")
if os.environ.get("LINGER"):  # a caller that goes on: no copy may be left running meanwhile
    time.sleep(20)
sys.exit(code)
"""

PLAIN = """
name: Plain {n}
vars: {{base: "{{{{ env.BASE }}}}", secret_note: "{{{{ env.NOTE }}}}"}}
secrets: [secret_note]
steps:
  - name: Echo {n}
    request: {{url: "{{{{ base }}}}/echo?file={n}&sid={{{{ scenario.id.split('-')[-1] }}}}&note={{{{ secret_note }}}}"}}
    expect: {{status: 200, json: {{method: GET}}}}
"""

FAILING = """
name: Failing {n}
vars: {{base: "{{{{ env.BASE }}}}"}}
steps:
  - name: Echo and fail
    request: {{url: "{{{{ base }}}}/echo?file={n}&sid={{{{ scenario.id.split('-')[-1] }}}}"}}
    expect: {{status: 201}}
"""

MATRIX = """
name: Rows {n}
matrix: [{{row: a}}, {{row: b}}]
vars: {{base: "{{{{ env.BASE }}}}"}}
steps:
  - name: Row
    request: {{url: "{{{{ base }}}}/echo?file={n}&row={{{{ row }}}}&sid={{{{ scenario.id.split('-')[-1] }}}}"}}
"""

TESTS = """
name: Tests {n}
vars: {{base: "{{{{ env.BASE }}}}"}}
setup:
  - name: Set up
    request: {{url: "{{{{ base }}}}/echo?file={n}&setup=1"}}
tests:
  - name: first
    steps:
      - name: One
        request: {{url: "{{{{ base }}}}/echo?file={n}&t=1&sid={{{{ scenario.id.split('-')[-1] }}}}"}}
  - name: second
    steps:
      - name: Two
        request: {{url: "{{{{ base }}}}/echo?file={n}&t=2"}}
        expect: {{status: 404}}
teardown:
  - name: Tear down
    request: {{url: "{{{{ base }}}}/echo?file={n}&teardown=1"}}
"""

INCLUDING = """
name: Including {n}
vars: {{base: "{{{{ env.BASE }}}}"}}
steps:
  - include: fragments/echo.yaml
  - name: Checked against a schema
    request: {{url: "{{{{ base }}}}/echo?file={n}"}}
    expect: {{status: 200, schema: schemas/echo.json}}
"""

FRAGMENT = """
steps:
  - name: Included
    request: {url: "{{ base }}/echo?included=1"}
"""


def _tree(root: Path, files: int = 24) -> None:
    """Files of every kind on both sides of the half: plain, failing, matrix rows, tests sharing a
    setup, and files that read other files (a fragment, a schema), which are kept as YAML."""
    (root / "fragments").mkdir()
    (root / "schemas").mkdir()
    (root / "fragments" / "echo.yaml").write_text(FRAGMENT)
    (root / "schemas" / "echo.json").write_text('{"type": "object", "required": ["method"]}')
    kinds = [PLAIN, PLAIN, FAILING, MATRIX, TESTS, INCLUDING]
    for n in range(files):
        (root / f"f{n:03d}.scenario.yaml").write_text(kinds[n % len(kinds)].format(n=n))


def _run(
    root: Path, server, mode: str, *args: str, timeout: float = 60
) -> tuple[subprocess.CompletedProcess, list[str]]:
    """The run in a process of its own, through the driver; and what its copies did, a line each:
    `copy PID` (None: no fork), `answer yes|no` (the run used the copy's answer, or did the work)."""
    log = root / f"copies-{mode}.txt"
    log.unlink(missing_ok=True)
    env = {**os.environ, "BASE": server.url, "NOTE": "hush-hush-7731", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, mode, str(log), "run", ".", *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    lines = log.read_text().splitlines() if log.exists() else []
    return proc, [line for line in lines if not line.startswith("returned")]


def _steady(text: str) -> str:
    """A report without what differs from run to run: clock, durations, run id, ports."""
    text = re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?( UTC)?", "WHEN", text)
    text = re.sub(r'(time|timestamp|duration)="[^"]*"', r'\1=""', text)
    text = re.sub(r"\b\d+(\.\d+)? ?(ms|s)\b", "T", text)
    text = re.sub(r"<rect [^>]*>", "<rect>", text)  # a timeline's bars: durations
    text = re.sub(r"\b[0-9a-f]{8}\b", "RUN", text)  # the run id, and what is made of it
    text = re.sub(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", "DATE", text)
    text = re.sub(r"\b(serial|forked|failed)\.(xml|html)\b", r"REPORT.\2", text)
    return re.sub(r"127\.0\.0\.1:\d+", "HOST", text)


def _sent(server) -> list[str]:
    return [f"{r['method']} {r['path']}?{r['query']}" for r in server.state.requests]


def test_a_run_with_copies_equals_the_run_in_one_process(sr, server):
    _tree(sr.dir)
    serial, none = _run(sr.dir, server, "serial", "--junit", "serial.xml", "--html", "serial.html")
    sent_serial = _sent(server)
    server.state.requests.clear()
    forked, made = _run(sr.dir, server, "parallel", "--junit", "forked.xml", "--html", "forked.html")
    sent_forked = _sent(server)
    assert none == [], none
    # Two copies (the second half's check, then the page), each answered and used: else the run did
    # the work itself, and this would compare the run with itself.
    assert [line.split()[0] for line in made] == ["copy", "answer", "copy", "answer"], (made, forked.stderr)
    assert [line for line in made if line.startswith("answer")] == ["answer yes"] * 2, made
    assert serial.returncode == forked.returncode == 1, forked.stderr
    assert _steady(forked.stdout) == _steady(serial.stdout)
    for name in ("xml", "html"):
        assert _steady((sr.dir / f"forked.{name}").read_text()) == _steady((sr.dir / f"serial.{name}").read_text())
    assert sent_forked == sent_serial  # the same requests, in the same order, with the same scenario ids
    ids = [re.search(r"sid=s(\d+)", line) for line in sent_forked]
    numbers = [int(m.group(1)) for m in ids if m]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers) > 20, sent_forked
    page = (sr.dir / "forked.html").read_text()
    assert "hush-hush-7731" not in page and "hush-hush-7731" not in (sr.dir / "forked.xml").read_text()
    assert "Tear down" in page and "Included" in page


@pytest.mark.parametrize("mode", ["copy-fails", "fork-fails", "sigchld-ignored"])
def test_a_copy_that_fails_or_cannot_be_made_leaves_the_work_to_the_run(sr, server, mode):
    """A copy that dies, a fork that fails (no memory, a pids limit), a SIGCHLD the launcher left
    ignored (the kernel would reap the copy before the run waits for it): the run does the work."""
    _tree(sr.dir)
    serial, _ = _run(sr.dir, server, "serial", "--junit", "serial.xml", "--html", "serial.html")
    failed, made = _run(sr.dir, server, mode, "--junit", "failed.xml", "--html", "failed.html")
    assert failed.returncode == serial.returncode == 1, failed.stderr
    assert "Traceback" not in failed.stderr and "internal error" not in failed.stderr, failed.stderr
    assert "answer yes" not in made, made
    expected = {"copy-fails": 2, "fork-fails": 2, "sigchld-ignored": 0}[mode]  # attempts to make one
    assert len([line for line in made if line.startswith("copy")]) == expected, made
    if mode == "fork-fails":
        assert all(line in ("copy None", "answer no") for line in made), made
    for name in ("xml", "html"):
        assert _steady((sr.dir / f"failed.{name}").read_text()) == _steady((sr.dir / f"serial.{name}").read_text())


def test_bad_files_checked_in_the_copy_are_reported_in_file_order_and_nothing_is_sent(sr, server):
    _tree(sr.dir)
    (sr.dir / "f002.scenario.yaml").write_text("name: Bad early\nsteps: {}\n")
    (sr.dir / "f020.scenario.yaml").write_text("name: Bad late\nsteps:\n  - name: x\n    request: {url: 1, nope: 2}\n")
    serial, _ = _run(sr.dir, server, "serial")
    server.state.requests.clear()
    forked, made = _run(sr.dir, server, "parallel")
    assert made[0].startswith("copy ") and forked.returncode == serial.returncode == 2
    assert forked.stderr == serial.stderr
    assert forked.stderr.index("f002.scenario.yaml") < forked.stderr.index("f020.scenario.yaml")
    assert "2 file(s) invalid; nothing was sent" in forked.stderr
    assert _sent(server) == []


def test_a_file_read_only_by_a_file_the_copy_checked_is_still_an_input_no_report_replaces(sr, server):
    """The schema and the fragment are read by f005, f011, f017 and f023: only the copy checked the
    last two, so the run must learn them from the copy before it checks the report paths."""
    _tree(sr.dir)
    for n in (5, 11):
        (sr.dir / f"f{n:03d}.scenario.yaml").write_text(PLAIN.format(n=n))
    schema = sr.dir / "schemas" / "echo.json"
    before = schema.read_bytes()
    forked, made = _run(sr.dir, server, "parallel", "--junit", "schemas/echo.json")
    assert made == [made[0], "answer yes"] and forked.returncode == 2, (made, forked.stderr)
    assert "--junit schemas/echo.json: is schemas/echo.json, an input of this run" in forked.stderr, forked.stderr
    assert schema.read_bytes() == before and _sent(server) == []


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")  # dead, not yet reaped by init
    except FileNotFoundError:
        return True


def _wait_for(predicate, limit: float = 15) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.parametrize(
    ("how", "linger"), [("SIGTERM", False), ("SIGINT", False), ("SIGKILL", False), ("SIGTERM", True), ("SIGINT", True)]
)
def test_no_copy_outlives_the_run_that_made_it(sr, server, how, linger):
    """A copy blocked for good (the second half holds a FIFO nobody writes to) while the run waits
    for it: a signal ends the run, and the copy with it, before `main` returns (`linger`: the process
    goes on after, as a program that embeds the runner would); a run killed outright takes its copy
    along too (the kernel kills it: PR_SET_PDEATHSIG)."""
    _tree(sr.dir)
    os.mkfifo(sr.dir / "f022-fifo.scenario.yaml")
    log = sr.dir / "copies.txt"
    env = {**os.environ, "BASE": server.url, "NOTE": "x", "PYTHONPATH": os.pathsep.join(sys.path)}
    if linger:
        env["LINGER"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, "parallel", str(log), "run", "."],
        cwd=sr.dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert _wait_for(lambda: log.exists() and log.read_text().startswith("copy ")), "no copy was made"
        copy = int(log.read_text().split()[1])
        time.sleep(0.5)  # the run has checked its half and waits for the copy
        assert not _gone(copy) and proc.poll() is None
        for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):  # as a Ctrl-C to the group, a closed terminal
            os.kill(copy, signum)  # the copy ignores them: the run decides what a signal means
        time.sleep(0.3)
        assert not _gone(copy) and proc.poll() is None
        proc.send_signal(getattr(signal, how))
        if linger:
            assert _wait_for(lambda: "returned" in log.read_text(), 20), log.read_text()
            assert _gone(copy), f"the copy {copy} is still running after the run returned"
            assert proc.poll() is None  # still lingering: the copy went with the run, not with the process
            proc.kill()
        proc.wait(20)
        assert _wait_for(lambda: _gone(copy), 10), f"the copy {copy} outlived the run"
        if how != "SIGKILL" and not linger:
            assert proc.returncode != 0 and "Traceback" not in proc.stderr.read()
        assert _sent(server) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
