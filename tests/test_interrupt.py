"""Ctrl-C and SIGTERM on a real process: cleanup runs, the report is written, exit code 130; a second
Ctrl-C during a slow cleanup stops at once.
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


def _start(sr, server) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "run", ".", "--junit", "junit.xml"],
        cwd=sr.dir,
        env=child_env(BASE=server.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
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


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
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


def test_parallel_run_second_interrupt_exits_at_once_with_a_report(sr, server):
    for index in (1, 2, 3):
        sr.write(
            f"s{index}.scenario.yaml",
            f"""
            name: Hang {index}
            steps:
              - name: Hang
                request: {{url: "{{{{ env.BASE }}}}/fault/hang?seconds=30"}}
            """,
        )
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", ".", "--jobs", "2", "--junit", "junit.xml"],
        cwd=sr.dir,
        env=child_env(BASE=server.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 15
    while len([r for r in server.state.requests if r["path"] == "/fault/hang"]) < 2:
        assert time.monotonic() < deadline, "the two workers never sent their requests"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)  # first: workers stop after their current request...
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)  # ...second: do not wait for it
    out, err, took = _finish(proc, timeout=10)

    assert proc.returncode == 130, out + err
    assert took < 3
    cases = _cases(sr)
    assert set(cases) == {"(abandoned)"}
    assert len(list(ET.parse(sr.dir / "junit.xml").getroot().iter("testsuite"))) == 2  # the third never started
    assert "Traceback" not in out + err
