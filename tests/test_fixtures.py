"""Run-level fixtures (runner/engine/fixtures.py), against the local test server's /login and /whoami:
set up once per run (also with --jobs), shared read-only, renewed on expiry, torn down whatever ended
the run, and a failing one skips its dependents with the reason."""

from __future__ import annotations

import html
import signal
import subprocess
import sys
import time

import pytest
from conftest import start_run, wait_for_request
from server import PASSWORD

pytestmark = pytest.mark.usefixtures("watchdog")

LOGIN = """
description: a login to the test server
vars: {user: admin, ttl: 3600, secret: "THE-PASSWORD"}
secrets: [token]
expires: "{{ token_expires_at }}"
renew_before: 0.5
steps:
  - name: Log in
    request:
      method: POST
      url: "{{ env.BASE }}/login?ttl={{ ttl }}"
      json: {user: "{{ user }}", password: "{{ secret }}"}
    expect: {status: 201}
    capture:
      token: "{{ response.headers['X-Subject-Token'] }}"
      token_expires_at: "{{ response.json.expires_at }}"
teardown:
  - name: Log out
    when: "{{ token is defined }}"
    request: {method: DELETE, url: "{{ env.BASE }}/login", headers: {X-Subject-Token: "{{ token }}"}}
    expect: {status: 204}
""".replace("THE-PASSWORD", PASSWORD)


def whoami(name: str, extra: str = "", user: str = "admin", token: str = "token") -> str:
    return f"""
name: {name}
fixtures: [../common/login.yaml]
steps:
  - name: Who am I
    request: {{url: "{{{{ env.BASE }}}}/whoami{extra}", headers: {{X-Auth-Token: "{{{{ {token} }}}}"}}}}
    expect: {{json: {{user: {user}}}}}
"""


def logins(server) -> list[dict]:
    return [r for r in server.state.requests if r["method"] == "POST" and r["path"] == "/login"]


def logouts(server) -> list[dict]:
    return [r for r in server.state.requests if r["method"] == "DELETE" and r["path"] == "/login"]


@pytest.fixture
def suite(sr):
    sr.write("common/login.yaml", LOGIN)
    for i in range(1, 6):
        sr.write(f"suite/s{i}.scenario.yaml", whoami(f"Scenario {i}"))
    return sr


@pytest.mark.parametrize("jobs", ["1", "4"])
def test_one_login_per_run_for_many_scenarios(suite, server, jobs):
    run = suite.run("suite", "--jobs", jobs)

    assert run.code == 0, run.output
    assert len(logins(server)) == 1
    assert len(logouts(server)) == 1  # the teardown, once, at the end
    assert server.state.requests[-1]["method"] == "DELETE"  # after every scenario
    fixture = run.suite("fixture: ../common/login.yaml")
    assert [c.get("name") for c in fixture.findall("testcase")] == ["Log in", "teardown: Log out"]
    assert all(run.outcome("Who am I", f"Scenario {i}") == "passed" for i in range(1, 6))
    assert "fixtures: 1 set up, 0 failed" in run.out
    token = server.state.requests[1]["headers"]["X-Auth-Token"]
    assert token not in run.out and token not in run.junit_path.read_text()  # a fixture's secrets are masked


def test_teardown_runs_after_a_failing_scenario(suite, server):
    suite.write("suite/s2.scenario.yaml", whoami("Scenario 2", user="nobody"))
    run = suite.run("suite")

    assert run.code == 1
    assert run.outcome("Who am I", "Scenario 2") == "failure"
    assert len(logins(server)) == 1 and len(logouts(server)) == 1


def test_two_credentials_from_one_fragment(sr, server):
    sr.write("common/login.yaml", LOGIN)
    sr.write("suite/a.scenario.yaml", whoami("Plain admin"))
    sr.write(
        "suite/two.scenario.yaml",
        """
        name: Two users
        fixtures:
          admin: ../common/login.yaml                           # the same (file, vars) as the list form
          demo: {use: ../common/login.yaml, vars: {user: demo}}
        steps:
          - name: Admin
            request: {url: "{{ env.BASE }}/whoami", headers: {X-Auth-Token: "{{ admin.token }}"}}
            expect: {json: {user: admin}}
          - name: Demo
            request: {url: "{{ env.BASE }}/whoami", headers: {X-Auth-Token: "{{ demo['token'] }}"}}
            expect: {json: {user: demo}}
        """,
    )
    run = sr.run("suite", "--jobs", "2")

    assert run.code == 0, run.output
    assert sorted(r["body"] for r in logins(server)) == sorted(
        f'{{"user": "{u}", "password": "{PASSWORD}"}}'.encode() for u in ("admin", "demo")
    )
    assert len(logouts(server)) == 2


def test_a_failing_fixture_skips_its_dependents_with_the_reason(sr, server):
    sr.write("common/login.yaml", LOGIN.replace(PASSWORD, "wrong-password"))
    sr.write("suite/a.scenario.yaml", whoami("Needs login"))
    sr.write("suite/b.scenario.yaml", whoami("Also needs it"))
    sr.write(
        "suite/c.scenario.yaml",
        """
        name: Independent
        steps:
          - name: Echo
            request: {url: "{{ env.BASE }}/echo"}
        """,
    )
    run = sr.run("suite", "--html", "report.html")

    assert run.code == 1  # the fixture's own failure fails the run
    assert len(logins(server)) == 1  # not retried for the second scenario
    assert not any(r["path"] == "/whoami" for r in server.state.requests)
    assert run.outcome("Log in", "fixture: ../common/login.yaml") == "failure"
    reason = "skipped: fixture '../common/login.yaml' failed: step 'Log in': status: expected 201, got 401"
    for name in ("Needs login", "Also needs it"):
        assert run.outcome("Who am I", name) == "skipped"
        assert run.case("Who am I", name).find("skipped").get("message").startswith(reason)
    assert run.outcome("Echo", "Independent") == "passed"
    assert reason in run.out
    assert html.escape(reason) in (sr.dir / "report.html").read_text()
    assert len(logouts(server)) == 0  # nothing was set up: nothing to tear down
    assert run.outcome("teardown: Log out", "fixture: ../common/login.yaml") == "skipped"  # its `when`


def test_a_short_lived_token_is_renewed_before_a_scenario_starts(sr, server):
    sr.write("common/login.yaml", LOGIN.replace("ttl: 3600", "ttl: 1.5"))
    for i in range(1, 6):  # 5 x 0.4 s: longer than one token's life
        sr.write(f"suite/s{i}.scenario.yaml", whoami(f"Scenario {i}", extra="?sleep=0.4"))
    run = sr.run("suite")

    assert run.code == 0, run.output
    assert 2 <= len(logins(server)) <= 4
    assert "fixture: ../common/login.yaml (renewal 1)" in [s.get("name") for s in run.suites()]
    assert len(logouts(server)) == len(logins(server))  # every set-up is torn down


def test_without_expires_the_same_run_fails_for_the_expired_token(sr, server):
    """The control for the renewal test: the server does expire its tokens."""
    sr.write("common/login.yaml", LOGIN.replace("ttl: 3600", "ttl: 1.5").replace("expires:", "# expires:"))
    for i in range(1, 6):
        sr.write(f"suite/s{i}.scenario.yaml", whoami(f"Scenario {i}", extra="?sleep=0.4"))
    run = sr.run("suite")

    assert run.code == 1
    assert len(logins(server)) == 1
    assert "token expired" in run.output


def test_validate_checks_fixture_declarations(sr):
    sr.write("common/login.yaml", LOGIN)
    cases = {
        "missing": ("fixtures: [../common/nope.yaml]", "file '../common/nope.yaml' does not exist"),
        "unknown key": ("fixtures: [{use: ../common/login.yaml, var: {}}]", "unknown key 'var'"),
        "no value": (
            "fixtures: {admin: ../common/login.yaml}\nvars: {t: '{{ admin.tokn }}'}",
            "fixture 'admin' (../common/login.yaml) has no value 'tokn'",
        ),
        "overwrite capture": (
            "fixtures: [../common/login.yaml]\nvars: {token: x}",
            "variable 'token' would overwrite the value of fixture '../common/login.yaml'",
        ),
        "two give token": (
            "fixtures: [../common/login.yaml, {use: ../common/login.yaml, vars: {user: demo}}]",
            "both provide 'token'",
        ),
    }
    for label, (head, message) in cases.items():
        sr.write(
            "suite/x.scenario.yaml",
            f"""
name: X
{head}
steps:
  - name: Echo
    request: {{url: "http://127.0.0.1:9/echo"}}
""",
        )
        run = sr.main("validate", "suite")
        assert run.code == 2, label
        assert message in run.err, (label, run.err)
        assert "suite/x.scenario.yaml:" in run.err, label
        assert "hint:" in run.err or "did you mean" in run.err, (label, run.err)


def test_a_capture_may_not_overwrite_a_fixture_value(sr):
    sr.write("common/login.yaml", LOGIN)
    sr.write(
        "suite/x.scenario.yaml",
        """
        name: X
        fixtures: [../common/login.yaml]
        steps:
          - name: Steal
            request: {url: "http://127.0.0.1:9/echo"}
            capture: {token: "{{ response.json }}"}
        """,
    )
    run = sr.main("validate", "suite")
    assert run.code == 2
    assert "suite/x.scenario.yaml:6:15: capture 'token' would overwrite the value of fixture" in run.err
    assert "read-only" in run.err


def test_a_fragment_with_teardown_cannot_be_included(sr):
    sr.write("common/login.yaml", LOGIN)
    sr.write(
        "suite/x.scenario.yaml",
        """
        name: X
        steps:
          - include: ../common/login.yaml
        """,
    )
    run = sr.main("validate", "suite")
    assert run.code == 2
    assert "it is a fixture" in run.err and "fixtures:" in run.err


def test_fixture_values_are_copies(sr, server):
    """A scenario cannot change what another one sees, even through a mutable value."""
    sr.write(
        "common/list.yaml",
        """
        steps:
          - name: Make
            request: {method: POST, url: "{{ env.BASE }}/mirror", json: {items: [1, 2]}}
            capture: {items: "{{ response.json['items'] }}"}
        """,
    )
    for name in ("a", "b"):
        sr.write(
            f"suite/{name}.scenario.yaml",
            f"""
            name: {name}
            fixtures: {{made: ../common/list.yaml}}
            steps:
              - name: Read
                request: {{url: "{{{{ env.BASE }}}}/echo"}}
                expect:
                  assert: ["{{{{ made['items'] == [1, 2] }}}}"]
              - name: Try to change it
                request: {{url: "{{{{ env.BASE }}}}/echo"}}
                expect:
                  assert: ["{{{{ made['items'].append(3) is none }}}}"]
            """,
        )
    run = sr.run("suite")
    assert run.outcome("Read", "a") == "passed" and run.outcome("Read", "b") == "passed"
    assert run.outcome("Try to change it", "a") == "error"  # the sandbox refuses to modify a value
    assert len([r for r in server.state.requests if r["path"] == "/mirror"]) == 1


# --- every way a run ends: a real process ------------------------------------------------------------


def _start(sr, server) -> subprocess.Popen[str]:
    return start_run(sr.dir, server.url, "suite")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_teardown_runs_after_an_interruption(sr, server, signum):
    sr.write("common/login.yaml", LOGIN)
    sr.write("suite/a.scenario.yaml", whoami("Hangs", extra="?sleep=30"))
    sr.write("suite/b.scenario.yaml", whoami("Later"))
    proc = _start(sr, server)
    deadline = time.monotonic() + 15
    while not any(r["path"] == "/whoami" for r in server.state.requests):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    time.sleep(0.2)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=10)

    assert proc.returncode == 130, out + err
    assert len(logins(server)) == 1
    assert len(logouts(server)) == 1  # the teardown ran
    assert "teardown: Log out" in out
    assert "Traceback" not in out + err
    text = (sr.dir / "junit.xml").read_text()
    assert 'name="teardown: Log out"' in text


# --- the pytest plugin: once per session (per xdist worker) --------------------------------------------

pytest_plugins = ["pytester"]


def _pytest_suite(pytester: pytest.Pytester, login: str = LOGIN) -> None:
    (pytester.path / "common").mkdir()
    (pytester.path / "suite").mkdir()
    (pytester.path / "common" / "login.yaml").write_text(login)
    for i in range(1, 5):
        (pytester.path / "suite" / f"s{i}.scenario.yaml").write_text(whoami(f"Scenario {i}"))


def test_the_pytest_plugin_sets_a_fixture_up_once_per_session(pytester, server):
    _pytest_suite(pytester)
    result = pytester.runpytest("suite")

    result.assert_outcomes(passed=4)
    assert len(logins(server)) == 1
    assert len(logouts(server)) == 1


def test_the_pytest_plugin_sets_it_up_once_per_xdist_worker(pytester, server):
    _pytest_suite(pytester)
    result = pytester.runpytest_subprocess("suite", "-n", "2", "-p", "no:benchmark")

    result.assert_outcomes(passed=4)
    assert 1 <= len(logins(server)) <= 2
    assert len(logouts(server)) == len(logins(server))


def test_the_pytest_plugin_skips_dependents_of_a_failing_fixture(pytester, server):
    _pytest_suite(pytester, LOGIN.replace(PASSWORD, "wrong-password"))
    result = pytester.runpytest("suite", "-rs")

    result.assert_outcomes(skipped=4)
    result.stdout.fnmatch_lines(["*fixture '../common/login.yaml' failed: step 'Log in': status: expected 201*"])
    result.stdout.fnmatch_lines(["fixture: ../common/login.yaml: Log in FAILED: status: expected 201, got 401*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert len(logins(server)) == 1


def test_an_expires_that_is_not_a_time_fails_the_fixture(sr, server):
    sr.write("common/login.yaml", LOGIN.replace('expires: "{{ token_expires_at }}"', "expires: soon"))
    sr.write("suite/a.scenario.yaml", whoami("Needs login"))
    run = sr.run("suite")

    assert run.code == 1
    assert "expires: 'soon' is not a time" in run.message("(expires)")
    assert "failed: step '(expires)': expires: 'soon' is not a time" in run.message("Who am I")
    assert len(logouts(server)) == 1  # it was set up: it is torn down


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_an_interrupted_fixture_skips_its_dependents_and_is_torn_down(sr, server):
    sr.write(
        "common/slow.yaml",
        """
        steps:
          - name: Slow set-up
            request: {method: POST, url: "{{ env.BASE }}/echo?made=1"}
            capture: {made: "{{ response.json.query.made }}"}
          - name: Hangs
            request: {url: "{{ env.BASE }}/fault/hang?seconds=30"}
        teardown:
          - name: Undo
            when: "{{ made is defined }}"
            request: {method: DELETE, url: "{{ env.BASE }}/echo?made={{ made }}"}
        """,
    )
    for name in ("a", "b"):
        sr.write(
            f"suite/{name}.scenario.yaml",
            f"""
            name: {name}
            fixtures: [../common/slow.yaml]
            steps:
              - name: Never
                request: {{url: "{{{{ env.BASE }}}}/echo?scenario={name}"}}
            """,
        )
    proc = _start(sr, server)
    wait_for_request(server, proc, lambda r: r["path"] == "/fault/hang")
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)

    assert proc.returncode == 130, out + err
    assert not any("scenario=" in r["query"] for r in server.state.requests)
    assert [r["query"] for r in server.state.requests if r["method"] == "DELETE"] == ["made=1"]
    text = (sr.dir / "junit.xml").read_text()
    assert 'name="teardown: Undo"' in text
    assert "skipped: fixture &apos;../common/slow.yaml&apos; failed: step &apos;Hangs&apos;: interrupted" in text or (
        "skipped: fixture '../common/slow.yaml' failed: step 'Hangs': interrupted" in text
    )


def test_a_fixture_that_includes_a_login_may_rename_its_secret_captures(sr, server, monkeypatch):
    # scenarios/glance/tempest/common/credentials.yaml: a fixture whose steps include the login
    # fragment; the fragment's `secrets:` names its own vars (`secret`), which the fixture's
    # validation must count like a scenario's does, not refuse as "names no variable".
    monkeypatch.setenv("BASE", server.url)
    login = LOGIN[: LOGIN.index("teardown:")].replace("secrets: [token]", "secrets: [token, secret]")
    sr.write("common/login.yaml", login)
    sr.write(
        "common/creds.yaml",
        """
        description: two logins in one fixture
        expires: "{{ [first_expires_at, second_expires_at] | min }}"
        steps:
          - include: login.yaml
            capture_as: {token: first_token, token_expires_at: first_expires_at}
          - include: login.yaml
            capture_as: {token: second_token, token_expires_at: second_expires_at}
        """,
    )
    sr.write(
        "suite/a.scenario.yaml",
        """
        name: Both
        fixtures: {creds: ../common/creds.yaml}
        steps:
          - name: Who am I
            request: {url: "{{ env.BASE }}/whoami", headers: {X-Auth-Token: "{{ creds.second_token }}"}}
            expect: {json: {user: admin}}
        """,
    )
    run = sr.run("suite")

    assert run.code == 0, run.output
    assert len(logins(server)) == 2
    assert PASSWORD not in run.output
