"""`scenario-runner load` (runner/load.py, runner/thresholds.py) against the local test server.

Each load runs in a child process: Locust patches its process with gevent, which must not happen to
the pytest process (its test server runs on real threads). Bad input is refused in-process, before
Locust is imported, which these tests check too.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import child_env, wait_for_request
from server import PASSWORD
from test_fixtures import LOGIN, logins, logouts, whoami

pytestmark = pytest.mark.usefixtures("watchdog")

ECHO = """
name: Echo
steps:
  - name: Post echo
    request: {method: POST, url: "{{ env.BASE }}/echo", json: {n: 1}}
    expect: {status: 200}
  - name: Get echo
    request: {url: "{{ env.BASE }}/echo/again"}
    capture: {seen: "{{ response.status }}"}
finally:
  - name: Tidy
    request: {method: DELETE, url: "{{ env.BASE }}/echo/{{ seen | default('none') }}"}
"""


def load(cwd: Path, base: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", "load", ".", "--junit", "load.xml", *args],
        cwd=cwd,
        env=child_env(BASE=base),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def total(output: str) -> tuple[int, int]:
    """(requests, errors) of the summary's TOTAL line."""
    match = re.search(r"^TOTAL\s+(\d+)\s+(\d+)\s", output, re.M)
    assert match, output
    return int(match.group(1)), int(match.group(2))


def step_line(output: str, name: str) -> list[str]:
    line = next((x for x in output.splitlines() if x.startswith(name + " ")), None)
    assert line is not None, output
    return line[len(name) :].split()


def cases(path: Path) -> dict[str, str]:
    """Each threshold testcase of the JUnit report, with its outcome."""
    suite = ET.parse(path).getroot().find("testsuite[@name='load thresholds']")
    assert suite is not None
    outcome = {}
    for case in suite.findall("testcase"):
        failure = case.find("failure")
        outcome[case.get("name", "")] = "failed" if failure is not None else "passed"
    return outcome


def test_a_short_load_counts_every_request_the_server_saw(sr, server):
    sr.write("echo.scenario.yaml", ECHO)
    proc = load(sr.dir, server.url, "--users", "3", "--duration", "2", "--threshold", "p95 < 2s",
                "--threshold", '"Post echo": error_rate < 1%', "--threshold", "rps > 1")  # fmt: skip

    assert proc.returncode == 0, proc.stdout + proc.stderr
    requests, errors = total(proc.stdout)
    assert requests == len(server.state.requests) > 9  # every request is in the statistics, once
    assert errors == 0
    posts = sum(1 for r in server.state.requests if r["method"] == "POST")
    tidies = [r for r in server.state.requests if r["method"] == "DELETE"]
    assert int(step_line(proc.stdout, "Post echo")[0]) == posts
    # `finally` ran once per scenario run, with the value the run captured
    assert len(tidies) == posts and all(r["path"] == "/echo/200" for r in tidies)
    assert int(step_line(proc.stdout, "finally: Tidy")[0]) == len(tidies)
    given = ["p95 < 2s", '"Post echo": error_rate < 1%', "rps > 1"]
    assert cases(sr.dir / "load.xml") == dict.fromkeys(given, "passed")
    assert "PASS  rps > 1: holds" in proc.stdout


def test_a_threshold_that_fails_is_exit_1_and_a_failed_testcase(sr, server):
    sr.write("echo.scenario.yaml", ECHO)
    proc = load(sr.dir, server.url, "--users", "2", "--duration", "1", "--threshold", "rps > 100000",
                "--threshold", "'Nope': p95 < 1s", "--threshold", "p99 < 10s")  # fmt: skip

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert cases(sr.dir / "load.xml") == {"rps > 100000": "failed", "'Nope': p95 < 1s": "failed", "p99 < 10s": "passed"}
    assert "FAIL  rps > 100000: failed, rps was" in proc.stdout
    assert "step 'Nope' sent no request (steps with requests: 'Get echo', 'Post echo', 'finally: Tidy')" in proc.stdout


def test_failing_requests_fail_the_default_threshold(sr, server):
    sr.write("bad.scenario.yaml", ECHO.replace("status: 200", "status: 418"))
    proc = load(sr.dir, server.url, "--users", "2", "--duration", "1")

    assert proc.returncode == 1, proc.stdout + proc.stderr
    _, errors = total(proc.stdout)
    assert errors == int(step_line(proc.stdout, "Post echo")[0]) > 0
    assert re.search(r"\d+ error\(s\) in Post echo, e.g.: status: expected 418, got 200", proc.stdout), proc.stdout
    assert cases(sr.dir / "load.xml") == {"error_rate <= 0%": "failed"}


def test_a_run_level_fixture_logs_in_once_for_every_user(sr, server):
    sr.write("common/login.yaml", LOGIN)
    sr.write("s/who.scenario.yaml", whoami("Who"))
    proc = load(sr.dir, server.url, "--users", "3", "--duration", "2", "--threshold", "error_rate < 1%")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = int(step_line(proc.stdout, "Who am I")[0])
    assert calls > 3  # every user ran several times...
    assert len(logins(server)) == 1  # ...with one login for the whole run
    assert len(logouts(server)) == 1 and server.state.requests[-1]["method"] == "DELETE"
    assert total(proc.stdout)[0] == calls  # the fixture's requests are not load
    fixture = ET.parse(sr.dir / "load.xml").getroot().find("testsuite[@name='fixture: ../common/login.yaml']")
    assert fixture is not None


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_users_runs_their_finally_and_writes_the_report(sr, server, signum):
    sr.write("hang.scenario.yaml", HANG)
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "load", ".", "--users", "2", "--duration", "60", "--junit", "load.xml"],
        cwd=sr.dir, env=child_env(BASE=server.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    hangs = lambda: sum(1 for r in list(server.state.requests) if r["path"] == "/fault/hang")  # noqa: E731
    wait_for_request(server, proc, lambda r: r["path"] == "/fault/hang" and hangs() >= 2)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=20)

    assert proc.returncode == 130, out + err
    # Not the 60 s of --duration, nor the 30 s the server hangs (the margin is for a loaded machine).
    assert time.monotonic() - started < 25
    tidies = [r for r in server.state.requests if r["method"] == "DELETE"]
    assert len(tidies) == hangs() == 2  # each user's `finally` ran
    assert "interrupted after" in out
    assert (sr.dir / "load.xml").exists()
    assert cases(sr.dir / "load.xml") == {"error_rate <= 0%": "failed"}  # the stopped steps are errors


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (["--users", "0", "--duration", "2"], "--users 0: must be at least 1", "e.g. --users 10"),
        (["--users", "2", "--duration", "-1"], "--duration -1: must be more than 0 seconds", "e.g. --duration 60"),
        (["--users", "2", "--duration", "0"], "--duration 0: must be more than 0 seconds", "e.g. --duration 60"),
        (["--users", "2", "--duration", "1", "--spawn-rate", "0"], "--spawn-rate 0: must be more than 0", "e.g. 5"),
        (["--users", "2", "--duration", "1", "--threshold", "latency < 5"], "unknown metric 'latency'", "one of p50"),
        (["--users", "2", "--duration", "1", "--threshold", "p95 < 5 parsecs"], "unknown unit 'parsecs'", "ms or s"),
        (["--users", "2", "--duration", "1", "--threshold", "p95 500ms"], "expected one of < <= > >=", "e.g."),
        (["--users", "2", "--duration", "1", "--threshold", "p95 <"], "expected a number after <", "e.g."),
        (["--users", "2", "--duration", "1", "--threshold", "error_rate < 2ms"], "unknown unit 'ms'", "1%"),
        (["--users", "2", "--duration", "1", "--threshold", ""], "expected [STEP:] METRIC OP VALUE", "e.g."),
        (["--users", "2", "--duration", "x"], "argument --duration: 'x' is not a number", "--help"),
        (["--duration", "2"], "load: --users is required", "e.g. --users 10 --duration 60"),
        (["--users", "2"], "load: --duration is required", "e.g. --users 10 --duration 60"),
        (["--worker"], "--worker needs --master-host", "--worker --master-host HOST"),
        (
            ["--worker", "--master-host", "h", "--users", "3"],
            "--users: the master decides it for every worker",
            "give --users, --duration",
        ),
        (["--worker", "--master-host", "h", "--threshold", "p95 < 1s"], "--threshold: the master decides it", "give"),
        (
            ["--master", "--worker", "--users", "1", "--duration", "1"],
            "--master and --worker: a process is one",
            "start one of each",
        ),
        (
            ["--users", "2", "--duration", "1", "--expect-workers", "2"],
            "--expect-workers is an option of the master",
            "--master --expect-workers",
        ),
        (
            ["--users", "2", "--duration", "1", "--master-host", "h"],
            "--master-host is an option of a worker",
            "--worker --master-host HOST",
        ),
        (
            ["--master", "--users", "2", "--duration", "1", "--expect-workers", "0"],
            "--expect-workers 0: must be at",
            "e.g. --expect-workers 2",
        ),
        (
            ["--master", "--users", "2", "--duration", "1", "--master-port", "70000"],
            "--master-port 70000: not a port",
            "a TCP port",
        ),
    ],
)
def test_bad_input_is_exit_2_with_a_hint_and_nothing_sent(sr, server, args, message, hint):
    sr.write("echo.scenario.yaml", ECHO)
    run = sr.main("load", ".", *args)

    assert run.code == 2, run.output
    assert message in run.err
    assert f"hint: {hint}" in run.err or hint in run.err
    assert server.state.requests == []
    assert "locust" not in sys.modules  # refused before Locust patched anything


def test_a_report_that_cannot_be_written_is_exit_2_before_any_user_starts(sr, server):
    sr.write("echo.scenario.yaml", ECHO)
    (sr.dir / "adir").mkdir()
    (sr.dir / "out_failures.csv").mkdir()  # one of the three files --csv out writes
    for option, target in (("--html", "adir"), ("--csv", "out")):
        proc = load(sr.dir, server.url, "--users", "2", "--duration", "1", option, target)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"{option} {target}: " in proc.stderr and "is a directory" in proc.stderr
    assert server.state.requests == []


def test_an_invalid_scenario_file_is_exit_2_before_any_user_starts(sr, server):
    sr.write("bad.scenario.yaml", "name: Bad\nsteps:\n  - name: x\n    request: {methd: GET}\n")
    proc = load(sr.dir, server.url, "--users", "2", "--duration", "1")

    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "bad.scenario.yaml:4:" in proc.stderr
    assert server.state.requests == []


def test_a_failed_fixture_fails_the_run_and_sends_no_load(sr, server):
    sr.write("common/login.yaml", LOGIN.replace('"{{ secret }}"', '"wrong"'))
    sr.write("s/who.scenario.yaml", whoami("Who"))
    started = time.monotonic()
    proc = load(sr.dir, server.url, "--users", "3", "--duration", "20", "--threshold", "p95 < 1s")

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert time.monotonic() - started < 10  # every user ended: the run does not wait for --duration
    assert len(logins(server)) == 1 and len(server.state.requests) == 1  # one failed login, no load
    assert "not run: Who: skipped: fixture '../common/login.yaml' failed: step 'Log in'" in proc.stdout
    assert "fixture: ../common/login.yaml: Log in: status: expected 201, got 401" in proc.stdout
    assert "FAIL  p95 < 1s: the run sent no request" in proc.stdout
    assert "0 scenario run(s)" in proc.stdout
    fixture = ET.parse(sr.dir / "load.xml").getroot().find("testsuite[@name='fixture: ../common/login.yaml']")
    assert fixture is not None and fixture.get("failures") == "1"


@pytest.mark.parametrize(
    ("text", "metric", "op", "limit", "step"),
    [
        ("p95 < 500ms", "p95", "<", 500.0, None),
        ("max<=2s", "max", "<=", 2000.0, None),
        ("error_rate < 1%", "error_rate", "<", 0.01, None),
        ("error_rate <= 0.05", "error_rate", "<=", 0.05, None),
        ("rps > 50", "rps", ">", 50.0, None),
        ('"finally: Tidy": avg < 1s', "avg", "<", 1000.0, "finally: Tidy"),
        ("Create image: p99 >= 1", "p99", ">=", 1.0, "Create image"),
    ],
)
def test_threshold_syntax(text, metric, op, limit, step):
    from runner.thresholds import parse

    threshold = parse(text)
    assert (threshold.metric, threshold.op, threshold.limit, threshold.step) == (metric, op, limit, step)


def test_a_second_signal_abandons_the_cleanups_and_says_so(sr, server):
    sr.write(
        "hang.scenario.yaml",
        """
        name: Hang
        steps:
          - name: Hang
            request: {url: "{{ env.BASE }}/fault/hang?seconds=5"}
        finally:
          - name: Slow tidy
            request: {method: DELETE, url: "{{ env.BASE }}/fault/hang?seconds=5"}
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "load", ".", "--users", "2", "--duration", "60", "--junit", "load.xml"],
        cwd=sr.dir, env=child_env(BASE=server.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    count = lambda method: sum(1 for r in list(server.state.requests) if r["method"] == method)  # noqa: E731
    wait_for_request(server, proc, lambda r: count("GET") >= 2)
    proc.send_signal(signal.SIGTERM)
    wait_for_request(server, proc, lambda r: count("DELETE") >= 2)  # both cleanups in flight
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)

    assert proc.returncode == 130, out + err
    assert time.monotonic() - started < 3  # not the 5 s the server takes to answer the cleanups
    assert "2 error(s) in finally: Slow tidy, e.g.: interrupted again: cleanup abandoned" in out
    assert (sr.dir / "load.xml").exists()


def test_a_user_keeps_its_connection_but_not_its_cookies_between_runs(sr, server):
    sr.write(
        "cookie.scenario.yaml",
        """
        name: Cookie
        steps:
          - name: Before the cookie
            request: {url: "{{ env.BASE }}/echo/before"}
          - name: Set a cookie
            request: {url: "{{ env.BASE }}/cookie?value=c-{{ uuid() }}"}
          - name: After the cookie
            request: {url: "{{ env.BASE }}/echo/after"}
        """,
    )
    proc = load(sr.dir, server.url, "--users", "1", "--duration", "1")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    befores = [r for r in server.state.requests if r["path"] == "/echo/before"]
    afters = [r for r in server.state.requests if r["path"] == "/echo/after"]
    assert len(befores) > 3
    assert not any("Cookie" in r["headers"] for r in befores)  # each run of the scenario starts without
    assert all("session=c-" in r["headers"].get("Cookie", "") for r in afters)  # ...and has its own
    assert len({r["client_port"] for r in server.state.requests}) < len(befores)  # connections kept


def test_a_token_learned_in_one_run_is_masked_in_its_error_messages(sr, server):
    sr.write(
        "token.scenario.yaml",
        """
        name: Token
        steps:
          - name: Log in
            request: {method: POST, url: "{{ env.BASE }}/login", json: {user: admin, password: "THE-PASSWORD"}}
            capture: {token: "{{ response.headers['X-Subject-Token'] }}"}
          - name: Who am I
            request: {url: "{{ env.BASE }}/whoami", headers: {X-Auth-Token: "{{ token }}"}}
            expect: {json: {user: "{{ token }}"}}
        """.replace("THE-PASSWORD", PASSWORD),
    )
    proc = load(sr.dir, server.url, "--users", "2", "--duration", "1")

    assert proc.returncode == 1, proc.stdout + proc.stderr
    tokens = [r["headers"]["X-Auth-Token"] for r in server.state.requests if r["path"] == "/whoami"]
    assert len(set(tokens)) > 2  # a fresh token each run, each learned by that run only
    assert "error(s) in Who am I, e.g.:" in proc.stdout and "***" in proc.stdout
    assert not any(token in proc.stdout + proc.stderr for token in tokens)


def test_locusts_html_and_csv_reports_are_written_and_scrubbed(sr, server):
    sr.write(
        "secret.scenario.yaml",
        """
        name: Secret
        steps:
          - name: Post echo
            request: {method: POST, url: "{{ env.BASE }}/echo", json: {n: 1}}
            expect: {json: {n: "{{ env.API_TOKEN }}"}}
        """,
    )
    token = "tok-9d8c7b6a5f4e3d2c1b0a"
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "load", ".", "--users", "2", "--duration", "1", "--junit", "",
         "--html", "out/load.html", "--csv", "out/load"],
        cwd=sr.dir, env=child_env(BASE=server.url, API_TOKEN=token), capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert proc.returncode == 1, proc.stdout + proc.stderr
    html = (sr.dir / "out/load.html").read_text()
    stats = (sr.dir / "out/load_stats.csv").read_text().splitlines()
    failures = (sr.dir / "out/load_failures.csv").read_text()
    posts = sum(1 for r in server.state.requests if r["method"] == "POST")
    assert stats[0].startswith("Type,Name,Request Count,Failure Count,")
    assert stats[1].startswith(f"POST,Post echo,{posts},{posts},")  # Locust's own rows, every request
    assert "Post echo" in html and "<html" in html.lower()
    assert "***" in failures and "json.n" in failures
    for text in (html, failures, proc.stdout, *(p.read_text() for p in (sr.dir / "out").iterdir())):
        assert token not in text
    assert (sr.dir / "out/load_exceptions.csv").exists()
    assert "report: out/load.html" in proc.stdout and "report: out/load_stats.csv" in proc.stdout


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(cwd: Path, base: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "load", ".", *args],
        cwd=cwd, env=child_env(BASE=base), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_master_and_two_workers_add_up(sr, server):
    """Locust's master and workers, each its own process on loopback: the workers run the users (each
    its own run-level login, once), the master sends nothing and judges the totals of both."""
    sr.write("common/login.yaml", LOGIN)
    sr.write("s/who.scenario.yaml", whoami("Who"))
    port = str(free_port())
    master = start(sr.dir, server.url, "--master", "--expect-workers", "2", "--master-bind-host", "127.0.0.1",
                   "--master-port", port, "--users", "4", "--duration", "3", "--junit", "load.xml",
                   "--threshold", "error_rate < 1%", "--threshold", '"Who am I": rps > 1')  # fmt: skip
    workers = [start(sr.dir, server.url, "--worker", "--master-host", "127.0.0.1", "--master-port", port) for _ in "12"]
    outputs = [proc.communicate(timeout=90) for proc in (master, *workers)]

    (out, err), *worked = outputs
    assert master.returncode == 0, out + err
    assert all(proc.returncode == 0 for proc in workers), worked
    counts = []
    for worker_out, _ in worked:
        match = re.search(r"^worker: (\d+) request\(s\), 0 error\(s\), (\d+) scenario run\(s\)", worker_out, re.M)
        assert match, worker_out
        counts.append(int(match.group(1)))
    whoamis = [r for r in server.state.requests if r["path"] == "/whoami"]
    assert all(n > 0 for n in counts)  # the users were spread over both workers
    assert total(out) == (sum(counts), 0)  # the sum of the workers' requests is the master's total...
    assert sum(counts) == len(whoamis)  # ...and what the server saw
    assert f"2 worker(s): {counts[0]} + {counts[1]} request(s)" in out or f"{counts[1]} + {counts[0]}" in out
    assert len(logins(server)) == 2 and len(logouts(server)) == 2  # the login once per worker, none on the master
    assert cases(sr.dir / "load.xml") == {"error_rate < 1%": "passed", '"Who am I": rps > 1': "passed"}


def test_a_master_without_its_workers_fails_in_time_and_sends_nothing(sr, server):
    sr.write("echo.scenario.yaml", ECHO)
    master = start(sr.dir, server.url, "--master", "--expect-workers", "2", "--expect-workers-timeout", "1",
                   "--master-bind-host", "127.0.0.1", "--master-port", str(free_port()),
                   "--users", "2", "--duration", "30", "--junit", "load.xml")  # fmt: skip
    out, err = master.communicate(timeout=30)

    assert master.returncode == 1, out + err
    assert "--expect-workers 2: 0 worker(s) connected within 1 s; nothing was sent" in out
    assert server.state.requests == []
    suite = ET.parse(sr.dir / "load.xml").getroot().find("testsuite[@name='load workers']")
    assert suite is not None and suite.get("failures") == "1"


HANG = """
name: Hang
steps:
  - name: Hang
    request: {url: "{{ env.BASE }}/fault/hang?seconds=30", timeout: 60}
finally:
  - name: Tidy
    request: {method: DELETE, url: "{{ env.BASE }}/echo/tidy"}
"""


def test_a_signal_to_the_master_stops_the_workers_users_runs_their_finally_and_writes_the_report(sr, server):
    sr.write("hang.scenario.yaml", HANG)
    port = str(free_port())
    master = start(sr.dir, server.url, "--master", "--master-bind-host", "127.0.0.1", "--master-port", port,
                   "--users", "2", "--duration", "60", "--junit", "load.xml")  # fmt: skip
    worker = start(sr.dir, server.url, "--worker", "--master-host", "127.0.0.1", "--master-port", port)
    hangs = lambda: sum(1 for r in list(server.state.requests) if r["path"] == "/fault/hang")  # noqa: E731
    wait_for_request(server, worker, lambda r: hangs() >= 2)
    started = time.monotonic()
    master.send_signal(signal.SIGINT)
    out, err = master.communicate(timeout=30)
    worker_out, worker_err = worker.communicate(timeout=30)

    assert master.returncode == 130, out + err
    assert time.monotonic() - started < 20  # not the 30 s the server hangs, nor the 60 s of --duration
    tidies = [r for r in server.state.requests if r["method"] == "DELETE"]
    assert len(tidies) == hangs() == 2  # each user's `finally` ran, on the worker
    assert "interrupted after" in out and "1 worker(s): 4 request(s)" in out
    assert "2 error(s) in Hang, e.g.: interrupted (Ctrl-C or SIGINT)\n" in out
    assert cases(sr.dir / "load.xml") == {"error_rate <= 0%": "failed"}  # the stopped steps are errors
    assert worker.returncode == 130, worker_out + worker_err
    assert "worker: 4 request(s), 2 error(s)" in worker_out  # the 2 hangs stopped; the tidies passed


def test_a_fixture_that_fails_on_a_worker_fails_the_masters_run(sr, server):
    sr.write("common/login.yaml", LOGIN.replace('"{{ secret }}"', '"wrong"'))
    sr.write("s/who.scenario.yaml", whoami("Who"))
    port = str(free_port())
    master = start(sr.dir, server.url, "--master", "--master-bind-host", "127.0.0.1", "--master-port", port,
                   "--users", "2", "--duration", "2", "--junit", "load.xml",
                   "--threshold", "error_rate < 1%")  # fmt: skip
    worker = start(sr.dir, server.url, "--worker", "--master-host", "127.0.0.1", "--master-port", port)
    out, err = master.communicate(timeout=60)
    worker_out, worker_err = worker.communicate(timeout=30)

    assert master.returncode == 1, out + err
    assert worker.returncode == 1, worker_out + worker_err
    assert len(logins(server)) == 1 and len(server.state.requests) == 1  # one failed login, on the worker; no load
    assert "worker 1: fixture: ../common/login.yaml: Log in: status: expected 201, got 401" in out
    assert "not run: Who: skipped: fixture '../common/login.yaml' failed" in out and "(worker 1)" in out
    assert "fixture: ../common/login.yaml: Log in: status: expected 201, got 401" in worker_out
    suite = ET.parse(sr.dir / "load.xml").getroot().find("testsuite[@name='load workers']")
    assert suite is not None and suite.get("failures") == "1"


def test_a_worker_waiting_for_its_master_stops_on_a_signal(sr, server):
    sr.write("echo.scenario.yaml", ECHO)
    worker = start(sr.dir, server.url, "--worker", "--master-host", "127.0.0.1", "--master-port", str(free_port()))
    time.sleep(2)  # connecting: Locust retries for 5 minutes
    started = time.monotonic()
    worker.send_signal(signal.SIGINT)
    out, err = worker.communicate(timeout=30)

    assert worker.returncode == 130, out + err
    assert time.monotonic() - started < 10
    assert "interrupted while connecting to the master at 127.0.0.1:" in out
    assert "Traceback" not in err
    assert server.state.requests == []
