"""The pytest plugin, driven with pytester against the local test server (real HTTP)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from server import TOKEN, TestServer

pytest_plugins = ["pytester"]


def write(pytester: pytest.Pytester, **files: str) -> None:
    """pytester.makefile() would turn 'a.scenario' + '.yaml' into 'a.yaml'."""
    for name, text in files.items():
        (pytester.path / name).write_text(text)


PASSING = """
name: Create and fetch
vars: {base: "{{ env.SR_BASE }}"}
defaults:
  headers: {X-Auth-Token: "{{ env.SR_TOKEN }}"}
tags: [smoke]
steps:
  - name: Create
    request: {method: POST, url: "{{ base }}/images", json: {name: plugin}}
    expect: {status: 201, json: {status: queued}}
    capture: {image_id: "{{ response.json.id }}"}
  - name: Fetch
    request: {url: "{{ base }}/images/{{ image_id }}"}
    expect: {json: {name: plugin}}
"""

FAILING = """
name: Wrong expectation
vars: {base: "{{ env.SR_BASE }}"}
defaults:
  headers: {X-Auth-Token: "{{ env.SR_TOKEN }}"}
steps:
  - name: Create
    request: {method: POST, url: "{{ base }}/images", json: {name: plugin}}
    expect:
      status: 200
  - name: Never
    request: {url: "{{ base }}/images"}
"""


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestServer]:
    server = TestServer().start()
    monkeypatch.setenv("SR_BASE", server.url)
    monkeypatch.setenv("SR_TOKEN", TOKEN)
    yield server
    server.stop()


def test_collects_one_item_per_scenario_and_runs_them(pytester: pytest.Pytester, served: TestServer) -> None:
    write(pytester, **{"a.scenario.yaml": PASSING, "b.scenario.yaml": FAILING, "fragment.yaml": "steps: []"})
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*a.scenario.yaml::Create and fetch PASSED*", "*b.scenario.yaml::Wrong expectation FAILED*"]
    )
    text = result.stdout.str()
    assert "b.scenario.yaml:10:15: status: expected 200, got 201 Created" in text  # the YAML line of the expectation
    assert "SKIPPED Never (skipped: step 'Create' failed)" in text
    assert "X-Auth-Token: ***" in text and TOKEN not in text  # redacted exchange
    assert "reproduce: curl" in text


def test_junitxml_and_tag_markers(pytester: pytest.Pytester, served: TestServer) -> None:
    write(pytester, **{"a.scenario.yaml": PASSING, "b.scenario.yaml": FAILING})
    result = pytester.runpytest("-m", "smoke", "--junitxml=out.xml")
    result.assert_outcomes(passed=1, deselected=1)
    cases = list(ET.parse(pytester.path / "out.xml").getroot().iter("testcase"))
    assert [c.get("name") for c in cases] == ["Create and fetch"]


def test_bad_scenario_is_a_collection_error_with_its_location(pytester: pytest.Pytester, served: TestServer) -> None:
    write(pytester, **{"bad.scenario.yaml": "name: x\nstpes: []\n"})
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED  # collection errors stop the session
    result.stdout.fnmatch_lines(["*bad.scenario.yaml:2:1: unknown key 'stpes'*"])
    assert served.state.requests == []


def test_xdist_spreads_scenarios_over_processes(pytester: pytest.Pytester, served: TestServer) -> None:
    for index in range(4):
        write(pytester, **{f"s{index}.scenario.yaml": PASSING.replace("Create and fetch", f"Scenario {index}")})
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:benchmark")
    result.assert_outcomes(passed=4)
    assert len([r for r in served.state.requests if r["method"] == "POST"]) == 4


HANGING = """
name: Slow image
vars: {base: "{{ env.SR_BASE }}"}
defaults:
  headers: {X-Auth-Token: "{{ env.SR_TOKEN }}"}
steps:
  - name: Create
    request: {method: POST, url: "{{ base }}/images", json: {name: timed-out}}
    capture: {image_id: "{{ response.json.id }}"}
  - name: Wait for it
    request: {url: "{{ base }}/fault/hang?seconds=60"}
  - name: Never
    request: {url: "{{ base }}/images"}
finally:
  - name: Delete
    request: {method: DELETE, url: "{{ base }}/images/{{ image_id }}"}
"""


def test_pytest_timeout_in_a_step_still_runs_the_cleanup(pytester: pytest.Pytester, served: TestServer) -> None:
    """pytest-timeout raises pytest's Failed (a BaseException) into the running step: the engine
    records the step as interrupted, runs `finally`, and the failure names the step and the cause.
    (Its thread method ends the whole process instead: nothing can clean up after that.)"""
    pytest.importorskip("pytest_timeout")
    write(pytester, **{"a.scenario.yaml": HANGING})
    result = pytester.runpytest_subprocess("-p", "no:benchmark", "--timeout", "2", "--timeout-method=signal")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "interrupted: Wait for it (Failed: Timeout" in text, text
    assert "SKIPPED Never (skipped: interrupted)" in text
    created = [r for r in served.state.requests if r["method"] == "POST"]
    deleted = [r for r in served.state.requests if r["method"] == "DELETE"]
    assert len(created) == 1 and len(deleted) == 1  # the image did not stay on the server
    assert deleted[0]["path"].startswith("/images/") and served.state.images == {}


# --- the run's set-up is runner/session.py's, as for `scenario-runner run` ----------------------------

VARS = """
name: Vars from the command line
steps:
  - name: Echo
    request: {url: "{{ env.SR_BASE }}/echo?who={{ who }}&what={{ what }}"}
    expect: {json: {query: {who: file-then-var, what: from-file}}}
"""


def test_vars_file_then_var_as_on_the_command_line(pytester: pytest.Pytester, served: TestServer) -> None:
    write(pytester, **{"v.scenario.yaml": VARS, "vars.yaml": "who: from-file\nwhat: from-file\n"})
    result = pytester.runpytest("--sr-vars-file", "vars.yaml", "--sr-var", "who=file-then-var")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("bad", ["no-equals", "1x=2", "a-b=c"])
def test_sr_var_names_are_checked_like_var(pytester: pytest.Pytester, served: TestServer, bad: str) -> None:
    write(pytester, **{"v.scenario.yaml": VARS})
    result = pytester.runpytest("--sr-var", bad)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    shown = bad.split("=")[0] + ("=..." if "=" in bad else "")  # the value is never echoed: it may be a password
    result.stderr.fnmatch_lines([f"*--sr-var {shown!r}: expected NAME=VALUE*", "*e.g. --sr-var image_file=*"])
    assert served.state.requests == []


def test_a_missing_cacert_is_a_usage_error_before_anything_is_sent(
    pytester: pytest.Pytester, served: TestServer
) -> None:
    write(pytester, **{"a.scenario.yaml": PASSING})
    result = pytester.runpytest("--sr-cacert", "nope.pem")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--sr-cacert nope.pem: no such file*"])
    assert served.state.requests == []


CLOUD = """
name: Env from clouds.yaml
steps:
  - name: Token
    request:
      method: POST
      url: "{{ env.OS_AUTH_URL }}/tokens"
      json: {auth: {identity: {password: {user: {name: "{{ env.OS_USERNAME }}", password: "{{ env.OS_PASSWORD }}"}}}}}
    expect: {status: 201}
    capture: {region: "{{ env.OS_REGION_NAME }}"}
  - name: Wrong on purpose, to see the masked exchange
    request: {url: "{{ env.OS_AUTH_URL }}/echo?p={{ env.OS_PASSWORD }}"}
    expect: {status: 299}
"""


@pytest.fixture
def cloud(pytester: pytest.Pytester, served: TestServer, monkeypatch: pytest.MonkeyPatch) -> TestServer:
    pytest.importorskip("openstack")
    from server import PASSWORD

    for name in ("OS_CLOUD", "OS_CLIENT_CONFIG_FILE", "OS_CLIENT_SECURE_FILE", "OS_PASSWORD", "OS_AUTH_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(pytester.path / "home"))
    write(
        pytester,
        **{
            "clouds.yaml": f"clouds:\n  lab:\n    auth: {{auth_url: '{served.url}', username: admin}}\n"
            "    region_name: RegionTwo\n",
            "secure.yaml": f"clouds:\n  lab:\n    auth: {{password: '{PASSWORD}'}}\n",
            "c.scenario.yaml": CLOUD,
        },
    )
    return served


def test_sr_os_cloud_sets_env_and_its_password_is_masked(pytester: pytest.Pytester, cloud: TestServer) -> None:
    from server import PASSWORD

    result = pytester.runpytest_subprocess("-p", "no:benchmark", "--sr-os-cloud", "lab")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "PASSED  Token" in text and "status: expected 299, got 200" in text
    assert PASSWORD not in text and "p=***" in text


def test_an_unknown_sr_os_cloud_is_a_usage_error(pytester: pytest.Pytester, cloud: TestServer) -> None:
    result = pytester.runpytest_subprocess("-p", "no:benchmark", "--sr-os-cloud", "nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--sr-os-cloud nope: no such cloud in*", "*clouds there: lab*"])
    assert cloud.state.requests == []


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-1"])
def test_a_timeout_that_is_not_a_finite_positive_number_is_a_usage_error(pytester, value):
    write(pytester, **{"t.scenario.yaml": "name: T\nsteps:\n  - {name: S, request: {url: 'http://127.0.0.1:1/'}}\n"})
    result = pytester.runpytest("--sr-timeout", value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--sr-timeout" in result.stderr.str() and "finite number of seconds" in result.stderr.str()


def test_templated_names_item_ids_as_written_steps_rendered(pytester: pytest.Pytester, served: TestServer) -> None:
    """Item ids are fixed at collection, identical in every xdist worker: the name as written (with
    the matrix label). The steps in a failure report are named as they were rendered."""
    write(
        pytester,
        **{
            "t.scenario.yaml": """
name: "Images of {{ user }}"
vars: {base: "{{ env.SR_BASE }}"}
matrix: [{user: alice}]
steps:
  - name: "Echo {{ user }} in {{ scenario.id }}"
    request: {url: "{{ base }}/echo", params: {status: "500"}}
"""
        },
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*t.scenario.yaml::Images of {{ user }} [[]user=alice[]] FAILED*"])
    result.stdout.re_match_lines(
        [r"scenario: Images of alice \[user=alice\]$", r"FAILED\s+Echo alice in [0-9a-f]{8}-s001 .*"], consecutive=True
    )


MATRIX = """
name: Matrix
vars: {base: "{{ env.SR_BASE }}"}
tags: [smoke, glance-api]
matrix:
  - {code: "200"}
  - {code: "500"}
steps:
  - name: Echo is fine
    request: {url: "{{ base }}/echo"}
  - name: Checks that fail
    request: {url: "{{ base }}/echo?status={{ code }}"}
    expect: {status: 200}
"""


def test_the_first_failure_leads_the_message_and_the_short_summary(pytester: pytest.Pytester, served: TestServer):
    """Issue 14, point 3: not the line of a step that passed."""
    write(pytester, **{"m.scenario.yaml": MATRIX})
    result = pytester.runpytest("-rA", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED m.scenario.yaml::Matrix [[]code=500[]] - FAILED Checks that fail: m.scenar*"])
    report = result.stdout.str()
    longrepr = report[report.index("_ scenario: Matrix [code=500] _") :]
    assert longrepr.splitlines()[1].startswith("FAILED Checks that fail: m.scenario.yaml:13:22: status: expected 200")


def test_last_failed_reruns_the_failed_matrix_row(pytester: pytest.Pytester, served: TestServer):
    """Issue 14, point 3: pytest 9 parses `[...]` of a cached id as parameters; the row must still rerun."""
    write(pytester, **{"m.scenario.yaml": MATRIX})
    pytester.runpytest().assert_outcomes(passed=1, failed=1)
    again = pytester.runpytest("--lf", "-v")
    assert again.parseoutcomes().get("failed") == 1 and "passed" not in again.parseoutcomes()
    again.stdout.fnmatch_lines(["*m.scenario.yaml::Matrix [[]code=500[]] FAILED*"])


def test_tags_are_registered_markers(pytester: pytest.Pytester, served: TestServer):
    """Issue 14, point 3: `pytest --markers` lists each tag; `--strict-markers` accepts them."""
    write(pytester, **{"m.scenario.yaml": MATRIX})
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(
        ["@pytest.mark.glance_api: scenario tag 'glance-api' (2 scenarios)", "@pytest.mark.smoke: scenario tag*"]
    )
    strict = pytester.runpytest("--strict-markers", "-m", "smoke")
    strict.assert_outcomes(passed=1, failed=1)


def test_last_failed_reruns_the_failed_matrix_row_on_pytest_8(tmp_path, served: TestServer):
    """Issue 14, point 3, on pytest 8 as well: the Makefile installs pytest 8 beside the venv's
    pytest 9 (`.venv/pytest8`, first on PYTHONPATH), so the same plugin runs under both."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest8 = Path(__file__).resolve().parent.parent / ".venv" / "pytest8"
    if not (pytest8 / "pytest").is_dir():
        if os.environ.get("SCENARIO_RUNNER_REQUIRE_OPENSTACK"):  # CI: `make` must have installed it
            pytest.fail(f"pytest 8 is not installed in {pytest8} (the Makefile's venv target installs it)")
        pytest.skip(f"pytest 8 is not installed in {pytest8} (`make venv` installs it)")
    (tmp_path / "m.scenario.yaml").write_text(MATRIX)
    env = {**os.environ, "PYTHONPATH": str(pytest8)}

    def pytest_run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:randomly", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return done.stdout + done.stderr

    first = pytest_run("-v")
    assert "platform" in first and "pytest-8." in first, first
    assert "1 failed, 1 passed" in first, first
    again = pytest_run("--lf", "-v")
    assert "m.scenario.yaml::Matrix [code=500] FAILED" in again, again
    assert "1 failed" in again and "passed" not in again.splitlines()[-1], again
