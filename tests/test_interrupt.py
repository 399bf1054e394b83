"""Every way a run ends, on a real process: Ctrl-C, SIGTERM and SIGHUP stop every running step (a
request awaited, an upload, a poll's sleep, on every --jobs worker), cleanup runs, the report is
written, exit code 130; a second signal abandons the cleanup and the report says what may remain.
A bug of ours ends the same way, with exit code 1.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest
from conftest import child_env

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
    pytest.mark.usefixtures("watchdog"),
]

SCENARIO = """
name: Interrupted
steps:
  - name: Create
    request: {method: POST, url: "{{ env.BASE }}/echo", json: {name: thing}}
    capture: {made: "{{ response.json.md5 }}"}
  - name: Hang
    request: {url: "{{ env.BASE }}/fault/hang?seconds=30"}
  - name: Never
    request: {url: "{{ env.BASE }}/echo"}
finally:
  - name: Delete
    request: {method: DELETE, url: "{{ env.BASE }}/echo?made={{ made }}"}
%s
"""

SLOW_CLEANUP = """
  - name: Slow cleanup
    request: {method: DELETE, url: "{{ env.BASE }}/fault/hang?seconds=30"}
"""

LATER = """
name: Later
steps:
  - name: Not reached
    request: {url: "{{ env.BASE }}/echo?later=1"}
"""


def _start(sr, server, *args: str, **popen) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "run", ".", "--junit", "junit.xml", *args],
        cwd=sr.dir,
        env=child_env(BASE=server.url, API_TOKEN="tok-secret-4471"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _wait_for_request(server, proc, method: str, path: str, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for request in list(server.state.requests):
            if request["method"] == method and request["path"] == path:
                time.sleep(0.2)  # the runner is now blocked reading the response
                return request
        if proc.poll() is not None:
            pytest.fail(f"runner exited early ({proc.returncode}): {proc.communicate()}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"the runner never sent {method} {path}: {proc.communicate()}")


def _finish(proc, timeout: float) -> tuple[str, str, float]:
    started = time.monotonic()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the runner did not stop within {timeout}s:\n{out}\n{err}")
    return out, err, time.monotonic() - started


def _cases(sr) -> dict[str, ET.Element]:
    root = ET.parse(sr.dir / "junit.xml").getroot()
    return {c.get("name"): c for c in root.iter("testcase")}


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["SIGINT", "SIGTERM", "SIGHUP-console-lost"]
)
def test_interrupt_runs_cleanup_and_writes_the_report(sr, server, signum):
    sr.write("a.scenario.yaml", SCENARIO % "")
    sr.write("b.scenario.yaml", LATER)
    proc = _start(sr, server)
    created = _wait_for_request(server, proc, "POST", "/echo")
    _wait_for_request(server, proc, "GET", "/fault/hang")
    proc.send_signal(signum)
    out, err, took = _finish(proc, timeout=10)

    assert proc.returncode == 130, out + err
    assert took < 3
    deletes = [r for r in server.state.requests if r["method"] == "DELETE"]
    assert [d["query"] for d in deletes] == [f"made={created['md5']}"]  # finally saw the capture
    assert not any("later=1" in r["query"] for r in server.state.requests)

    cases = _cases(sr)
    assert cases["Create"].find("error") is None and cases["Create"].find("failure") is None
    error = cases["Hang"].find("error")
    assert error is not None and "interrupted" in error.get("message")
    assert float(cases["Hang"].get("time", "0")) >= 0.2  # how long it had waited
    assert "ERROR Hang  GET http://127.0.0.1:" in out  # which request was stopped
    assert cases["Never"].find("skipped").get("message") == "skipped: interrupted"
    delete = cases["finally: Delete"]
    assert delete.find("error") is None and delete.find("failure") is None
    root = ET.parse(sr.dir / "junit.xml").getroot()
    assert root.find("testsuite/properties/property[@name='interrupted']").get("value") == "true"
    assert "INTERRUPTED" in out
    assert "Traceback" not in out + err


def test_second_interrupt_abandons_a_slow_cleanup(sr, server):
    sr.write("a.scenario.yaml", SCENARIO % SLOW_CLEANUP)
    proc = _start(sr, server)
    _wait_for_request(server, proc, "GET", "/fault/hang")
    proc.send_signal(signal.SIGINT)
    _wait_for_request(server, proc, "DELETE", "/fault/hang")
    proc.send_signal(signal.SIGINT)
    out, err, took = _finish(proc, timeout=10)

    assert proc.returncode == 130, out + err
    assert took < 2
    cases = _cases(sr)
    assert cases["finally: Delete"].find("error") is None  # the quick cleanup step ran first
    abandoned = cases["finally: Slow cleanup"].find("error")
    assert abandoned is not None and "cleanup abandoned" in abandoned.get("message")
    assert "Traceback" not in out + err


def test_first_interrupt_during_cleanup_lets_the_rest_of_the_cleanup_run(sr, server):
    sr.write(
        "a.scenario.yaml",
        """
        name: Cleanup
        steps:
          - name: Create
            request: {method: POST, url: "{{ env.BASE }}/echo"}
        finally:
          - name: Slow cleanup
            request: {method: DELETE, url: "{{ env.BASE }}/fault/hang?seconds=30"}
          - name: Delete
            request: {method: DELETE, url: "{{ env.BASE }}/echo"}
        """,
    )
    proc = _start(sr, server)
    _wait_for_request(server, proc, "DELETE", "/fault/hang")
    proc.send_signal(signal.SIGINT)
    out, err, took = _finish(proc, timeout=10)

    assert proc.returncode == 130, out + err
    assert took < 3
    assert [r["path"] for r in server.state.requests if r["method"] == "DELETE"] == ["/fault/hang", "/echo"]
    cases = _cases(sr)
    assert "interrupted" in cases["finally: Slow cleanup"].find("error").get("message")
    delete = cases["finally: Delete"]
    assert delete.find("error") is None and delete.find("failure") is None


PARALLEL = {
    "upload": """
        name: Upload
        vars: {image: "{{ data_file('zeros', 40000000) }}"}
        steps:
          - name: Upload
            request: {method: PUT, url: "{{ env.BASE }}/fault/slow-upload", file: "{{ image }}"}
        finally:
          - name: Delete
            request: {method: DELETE, url: "{{ env.BASE }}/echo?scenario=upload"}
        """,
    "slow": """
        name: Slow
        steps:
          - name: Slow
            request: {url: "{{ env.BASE }}/fault/hang?seconds=60"}
        finally:
          - name: Delete
            request: {method: DELETE, url: "{{ env.BASE }}/echo?scenario=slow"}
        """,
    "poll": """
        name: Poll
        steps:
          - name: Wait
            request: {url: "{{ env.BASE }}/fault/poll?key=p&after=1000"}
            poll: {until: "{{ response.json.status == 'active' }}", interval: 60, timeout: 120}
        finally:
          - name: Delete
            request: {method: DELETE, url: "{{ env.BASE }}/echo?scenario=poll"}
        """,
}


def _seen(server, path: str, query: str = "") -> list[dict]:
    return [r for r in list(server.state.requests) if r["path"] == path and query in r["query"]]


def _wait_until(proc, condition, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"runner exited early ({proc.returncode}): {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{what} never happened: {proc.communicate()}")
        time.sleep(0.02)
    time.sleep(0.2)  # the runner is now blocked in it


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_one_signal_stops_every_running_step_of_a_parallel_run(sr, server, signum):
    """An upload in progress, a slow response and a poll's sleep, on three workers: one signal stops
    all three at once (none runs to its end) and every scenario's cleanup reaches the server."""
    for name, text in PARALLEL.items():
        sr.write(f"{name}.scenario.yaml", text)
    proc = _start(sr, server, "--jobs", "3")
    _wait_until(
        proc,
        lambda: (
            any(r["length"] > 0 for r in _seen(server, "/fault/slow-upload"))
            and _seen(server, "/fault/hang")
            and _seen(server, "/fault/poll")
        ),
        "three requests in flight",
    )
    proc.send_signal(signum)
    out, err, _ = _finish(proc, timeout=10)  # the upload alone takes 16 s, the poll 60 s

    assert proc.returncode == 130, out + err
    upload = _seen(server, "/fault/slow-upload")[0]
    assert not upload["complete"] and upload["length"] < upload["total"] / 2  # stopped mid-way
    assert len(_seen(server, "/fault/poll")) == 1  # the sleep was cut short, not followed by attempt 2
    deletes = sorted(r["query"] for r in server.state.requests if r["method"] == "DELETE")
    assert deletes == ["scenario=poll", "scenario=slow", "scenario=upload"]
    cases = _cases(sr)
    for step in ("Upload", "Slow", "Wait"):
        error = cases[step].find("error")
        assert error is not None and "interrupted" in error.get("message"), step
        assert "no response" not in error.get("message") and "connection" not in error.get("message")
    for case in [c for name, c in cases.items() if name == "finally: Delete"]:
        assert case.find("error") is None and case.find("failure") is None
    root = ET.parse(sr.dir / "junit.xml").getroot()
    assert len(root.findall("testsuite")) == 3
    assert all(p.get("value") == "true" for p in root.iter("property") if p.get("name") == "interrupted")
    assert "Traceback" not in out + err


ABANDONED = """
name: Abandoned {n}
steps:
  - name: Create
    request: {{method: POST, url: "{{{{ env.BASE }}}}/echo", json: {{n: {n}}}}}
    capture: {{made: "{{{{ response.json.md5 }}}}"}}
  - name: Hang
    request: {{url: "{{{{ env.BASE }}}}/fault/hang?seconds=60"}}
finally:
  - name: Slow cleanup
    request: {{method: DELETE, url: "{{{{ env.BASE }}}}/fault/hang?seconds=60"}}
  - name: Delete
    request: {{method: DELETE, url: "{{{{ env.BASE }}}}/echo?made={{{{ made }}}}&key={{{{ env.API_TOKEN }}}}"}}
  - name: Guarded
    when: "{{{{ made == 'nothing' }}}}"
    request: {{method: DELETE, url: "{{{{ env.BASE }}}}/echo?never=1"}}
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_second_interrupt_reports_what_may_remain(sr, server, jobs):
    for n in (1, 2):
        sr.write(f"s{n}.scenario.yaml", ABANDONED.format(n=n))
    proc = _start(sr, server, "--jobs", jobs)
    running = int(jobs)
    _wait_until(proc, lambda: len(_seen(server, "/fault/hang")) == running, "the steps")
    proc.send_signal(signal.SIGINT)
    _wait_until(
        proc,
        lambda: len([r for r in _seen(server, "/fault/hang") if r["method"] == "DELETE"]) == running,
        "the slow cleanups",
    )
    proc.send_signal(signal.SIGINT)
    out, err, _ = _finish(proc, timeout=10)

    assert proc.returncode == 130, out + err
    assert not any(r["path"] == "/echo" and r["method"] == "DELETE" for r in server.state.requests)
    made = {r["md5"] for r in server.state.requests if r["method"] == "POST"}
    root = ET.parse(sr.dir / "junit.xml").getroot()
    assert len(root.findall("testsuite")) == running
    for suite in root.findall("testsuite"):
        cases = {c.get("name"): c for c in suite.iter("testcase")}
        abandoned = cases["finally: Slow cleanup"].find("error").get("message")
        assert "cleanup abandoned" in abandoned
        remain = cases["finally: Delete"].find("error").get("message")
        assert "may remain: DELETE http://127.0.0.1:" in remain, remain
        assert "made=" in remain and remain.split("made=")[1].split("&")[0] in made  # the captured value
        assert "tok-secret-4471" not in remain and "key=***" in remain  # masked
        assert "{{" not in remain
        assert cases["finally: Guarded"].find("skipped") is not None  # its `when` says nothing to clean up
    assert "may remain" in out
    assert "tok-secret-4471" not in out + err + (sr.dir / "junit.xml").read_text()
    assert "Traceback" not in out + err


def test_sigterm_stops_a_run_that_ignores_sigint(sr, server):
    """A background job of a non-interactive shell starts with SIGINT ignored: that is honoured
    (nohup semantics), and SIGTERM still ends the run cleanly, on every worker."""
    sr.write("s1.scenario.yaml", SCENARIO % "")
    sr.write("s2.scenario.yaml", PARALLEL["slow"])
    proc = _start(sr, server, "--jobs", "2", preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    _wait_until(proc, lambda: len(_seen(server, "/fault/hang")) == 2, "both steps")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert proc.poll() is None and not _seen(server, "/echo", "scenario=slow")  # ignored, as inherited
    proc.send_signal(signal.SIGTERM)
    out, err, _ = _finish(proc, timeout=10)

    assert proc.returncode == 130, out + err
    deletes = sorted(r["query"].split("=")[0] for r in server.state.requests if r["method"] == "DELETE")
    assert deletes == ["made", "scenario"]
    cases = _cases(sr)
    assert "SIGTERM" in cases["Hang"].find("error").get("message")
    assert "Traceback" not in out + err


def test_a_bug_of_ours_still_ends_with_cleanup_reports_and_exit_1(sr, server, monkeypatch):
    """A bug outside any step (here: the console failing on every step) must not skip the cleanup
    or the reports, nor print a traceback: the scenario runs on, the bug is reported once."""
    from runner.report.console import ConsoleReport

    calls = []

    def broken(self, step):
        calls.append(step.name)
        raise RuntimeError("console exploded")

    monkeypatch.setattr(ConsoleReport, "step_done", broken)
    sr.write("a.scenario.yaml", SCENARIO.replace("fault/hang?seconds=30", "echo?hang=no") % "")
    run = sr.run(".")

    assert run.code == 1, run.output
    assert [r["method"] for r in server.state.requests] == ["POST", "GET", "GET", "DELETE"]
    assert calls == ["Create", "Hang", "Never", "Delete"]
    assert run.err.count("internal error in scenario-runner: RuntimeError: console exploded") == 1
    assert "Traceback" not in run.output
    assert run.outcome("finally: Delete") == "passed"  # the JUnit report was written


def test_signals_by_phase_of_the_run():
    """Loading: stop at once (nothing was sent). Running: pull the switch. Writing the reports:
    the first signal only makes the exit code 130, the second stops. An inherited SIG_IGN for
    SIGINT and SIGHUP is honoured (nohup), SIGTERM is always handled."""
    from runner.abort import Stop
    from runner.schedule import signals_handled

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with signals_handled(Stop()) as stop:
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            assert callable(signal.getsignal(signal.SIGTERM))
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGTERM)
            stop.phase = "running"
            signal.raise_signal(signal.SIGHUP)
            assert stop.pulls == 1 and "SIGHUP" in stop.cause
            signal.raise_signal(signal.SIGTERM)
            assert stop.pulls == 2 and "SIGTERM" in stop.cause
            stop.phase = "reporting"
            signal.raise_signal(signal.SIGTERM)
            assert stop.late == 1
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGTERM)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN  # restored
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
