"""Allure results, read back from the files written: through allure-pytest (the pytest plugin) and
`scenario-runner run --allure DIR` (allure-python-commons). Each scenario step is an Allure step
(loop iterations and poll attempts sub-steps), failed checks `failed`, transport and template errors
`broken`, the redacted request and response attached, tags as labels; no secret in any file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import server as srv

pytest.importorskip("allure_commons", reason="the [allure] extra (allure-python-commons) is not installed")

pytestmark = pytest.mark.usefixtures("watchdog")
pytest_plugins = ["pytester"]

LIFECYCLE = (
    srv.logged_in("Image lifecycle")
    + """
  - name: Create
    request: {method: POST, url: "{{ base }}/images", json: {name: allure}}
    expect: {status: 201}
    capture: {image_id: "{{ response.json.id }}"}
  - name: Upload
    request: {method: PUT, url: "{{ base }}/images/{{ image_id }}/file", body: "some bytes"}
    expect: {status: 204}
  - name: Active
    request: {url: "{{ base }}/images/{{ image_id }}"}
    poll: {until: "{{ response.json.status == 'active' }}", interval: 0, timeout: 10}
  - name: Tag
    for_each: [red, blue]
    request: {method: PATCH, url: "{{ base }}/images/{{ image_id }}", json: {tag: "{{ item }}"}}
  - name: Wrong status
    request: {url: "{{ base }}/images/{{ image_id }}"}
    expect: {status: 418}
  - name: Not run
    request: {url: "{{ base }}/images"}
finally:
  - name: Delete
    request: {method: DELETE, url: "{{ base }}/images/{{ image_id }}"}
    expect: {status: 204}
"""
).replace("name: Image lifecycle\n", "name: Image lifecycle\ntags: [smoke, glance]\n", 1)

BROKEN = """
name: Nobody listens
steps:
  - name: Refused
    request: {url: "http://127.0.0.1:1/x"}
"""


SEES_IT_FIRST = f"""
name: Sees it first
steps:
  - name: Echo
    request: {{url: "{{{{ env.BASE }}}}/echo?value={srv.TOKEN}"}}
"""


def results(directory: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in directory.glob("*-result.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        found[data["name"]] = data
    return found


def walk(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        yield step
        yield from walk(step.get("steps", []))


def attachment(directory: Path, step: dict[str, Any], name: str) -> str:
    [found] = [a for a in step.get("attachments", []) if a["name"] == name]
    return (directory / found["source"]).read_text(encoding="utf-8")


def no_secret_anywhere(directory: Path) -> None:
    files = list(directory.iterdir())
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert srv.TOKEN not in text, path.name
        assert srv.PASSWORD not in text, path.name


def check_lifecycle(directory: Path, test: dict[str, Any]) -> None:
    """What both fronts write for LIFECYCLE."""
    assert test["status"] == "failed"
    assert test["statusDetails"]["message"].startswith("Wrong status: ")
    assert "expected 418, got 200 OK" in test["statusDetails"]["message"]
    assert "ScenarioFailed" not in json.dumps(test)
    steps = test["steps"]
    assert [s["name"] for s in steps] == [
        "Token",
        "Create",
        "Upload",
        "Active",
        "Tag (2 iterations)",
        "Wrong status",
        "Not run",
        "finally: Delete",
    ]
    assert [s["status"] for s in steps] == [
        "passed", "passed", "passed", "passed", "passed", "failed", "skipped", "passed",
    ]  # fmt: skip
    by_name = {s["name"]: s for s in steps}
    # a poll's attempts: sub-steps (the image becomes active after two GETs)
    attempts = by_name["Active"]["steps"]
    assert [a["name"] for a in attempts] == ["attempt 1: status 200", "attempt 2: status 200"]
    assert all(a["start"] <= a["stop"] for a in attempts)
    # a loop's iterations: sub-steps of one step, each with its own exchange
    loop = by_name["Tag (2 iterations)"]
    assert [s["name"] for s in loop["steps"]] == ["Tag [red]", "Tag [blue]"]
    assert '"tag": "blue"' in attachment(directory, loop["steps"][1], "request")
    # a failed check: `failed`, located; a step not run: `skipped` with why
    wrong = by_name["Wrong status"]
    assert wrong["statusDetails"]["message"].endswith("status: expected 418, got 200 OK")
    assert wrong["statusDetails"]["message"].startswith("a.scenario.yaml:")
    assert by_name["Not run"]["statusDetails"]["message"] == "skipped: step 'Wrong status' failed"
    # request and response attached, redacted; method, URL and status as parameters
    create = by_name["Create"]
    request = attachment(directory, create, "request")
    assert request.startswith("POST http://127.0.0.1:") and "X-Auth-Token: ***" in request
    assert attachment(directory, create, "response").startswith("201 Created")
    assert "curl -sS -i -X POST" in attachment(directory, create, "curl")
    assert {p["name"]: p["value"] for p in create["parameters"]}["status"] == "201"
    token = attachment(directory, by_name["Token"], "request")
    assert '"password": "***"' in token
    # times: steps in order, each within the test
    starts = [s["start"] for s in steps]
    assert starts == sorted(starts) and all(s["start"] <= s["stop"] for s in walk(steps))
    assert {"smoke", "glance"} <= {label["value"] for label in test["labels"] if label["name"] == "tag"}


def test_the_pytest_plugin_feeds_allure_pytest(pytester: pytest.Pytester, monkeypatch) -> None:
    pytest.importorskip("allure_pytest", reason="allure-pytest is not installed")
    server = srv.TestServer().start()
    try:
        monkeypatch.setenv("BASE", server.url)
        (pytester.path / "a.scenario.yaml").write_text(LIFECYCLE)
        (pytester.path / "b.scenario.yaml").write_text(BROKEN)
        (pytester.path / "0.scenario.yaml").write_text(SEES_IT_FIRST)  # collected first
        result = pytester.runpytest_subprocess("--alluredir", "allure", "-p", "no:cacheprovider")
    finally:
        server.stop()
    result.assert_outcomes(failed=2, passed=1)
    directory = pytester.path / "allure"
    found = results(directory)
    check_lifecycle(directory, found["Image lifecycle"])
    broken = found["Nobody listens"]
    assert broken["status"] == "broken"  # a transport error, not a failed check
    assert broken["statusDetails"]["message"].startswith("Refused: b.scenario.yaml:")
    assert "connection refused: GET http://127.0.0.1:1/x" in broken["statusDetails"]["message"]
    assert broken["steps"][0]["status"] == "broken"
    # allure-pytest wrote the first test's files before the token was known: masked again at the end
    first = found["Sees it first"]
    assert "***" in attachment(directory, first["steps"][0], "response")
    no_secret_anywhere(directory)


def test_run_allure_writes_results_directly(sr, server) -> None:
    sr.write("a.scenario.yaml", LIFECYCLE)
    sr.write("b.scenario.yaml", BROKEN)
    run = sr.run(".", "--allure", "out/allure")
    assert run.code == 1, run.output
    assert "report: out/allure" in run.out
    directory = sr.dir / "out" / "allure"
    found = results(directory)
    assert set(found) == {"Image lifecycle", "Nobody listens"}
    check_lifecycle(directory, found["Image lifecycle"])
    assert found["Nobody listens"]["status"] == "broken"
    labels = {(label["name"], label["value"]) for label in found["Image lifecycle"]["labels"]}
    assert {("tag", "smoke"), ("tag", "glance"), ("suite", "a.scenario.yaml")} <= labels
    no_secret_anywhere(directory)
    # the JUnit report still goes where it went
    assert run.outcome("Wrong status") == "failure"


def test_a_file_of_tests_gives_a_result_per_test_and_for_its_setup(sr, server) -> None:
    sr.write(
        "s.scenario.yaml",
        """
        name: Suite
        tags: [api]
        setup:
          - name: prepare
            request: {url: "{{ env.BASE }}/echo"}
        tests:
          - name: test_one
            tags: [one]
            steps:
              - {name: echo, request: {url: "{{ env.BASE }}/echo"}}
          - name: test_skipped
            skip: not today
            steps:
              - {name: never, request: {url: "{{ env.BASE }}/echo"}}
        """,
    )
    run = sr.run(".", "--allure", "allure")
    assert run.code == 0, run.output
    found = results(sr.dir / "allure")
    assert set(found) == {"Suite :: setup", "Suite :: test_one", "Suite :: test_skipped"}
    assert found["Suite :: test_skipped"]["status"] == "skipped"
    assert found["Suite :: test_skipped"]["statusDetails"]["message"] == "skipped: not today"
    tags = {name: {lb["value"] for lb in r["labels"] if lb["name"] == "tag"} for name, r in found.items()}
    assert tags == {"Suite :: setup": {"api"}, "Suite :: test_one": {"api", "one"}, "Suite :: test_skipped": {"api"}}
    assert {lb["value"] for lb in found["Suite :: setup"]["labels"] if lb["name"] == "subSuite"} == {"setup"}


def test_a_secret_learned_later_is_masked_in_an_earlier_scenarios_files(sr, server) -> None:
    """File a sees the token in a response before file b logs in and makes it a secret."""
    sr.write("a.scenario.yaml", SEES_IT_FIRST)
    sr.write("b.scenario.yaml", srv.logged_in("Logs in"))
    run = sr.run(".", "--allure", "allure")
    assert run.code == 0, run.output
    first = results(sr.dir / "allure")["Sees it first"]
    assert "***" in attachment(sr.dir / "allure", first["steps"][0], "response")
    no_secret_anywhere(sr.dir / "allure")


def test_allure_dir_under_the_output_policy(sr, server) -> None:
    sr.write("p.scenario.yaml", "name: P\nsteps:\n  - {name: Echo, request: {url: '{{ env.BASE }}/echo'}}\n")
    run = sr.run("p.scenario.yaml", "--allure", "p.scenario.yaml")
    assert run.code == 2
    assert "--allure p.scenario.yaml: cannot create the report there" in run.err
    assert "hint:" in run.err
    assert not server.state.requests  # refused before anything was sent


def test_without_allure_python_commons_a_clear_usage_error(sr, server, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "allure_commons", None)  # as if not installed
    sr.write("p.scenario.yaml", "name: P\nsteps:\n  - {name: Echo, request: {url: '{{ env.BASE }}/echo'}}\n")
    run = sr.run("p.scenario.yaml", "--allure", "allure")
    assert run.code == 2
    assert "--allure: allure-python-commons is not installed" in run.err
    assert "pip install 'scenario-runner[allure]'" in run.err
    assert not server.state.requests
    assert not (sr.dir / "allure").exists()


def test_no_allure_option_no_allure_files(sr, server) -> None:
    sr.write("p.scenario.yaml", "name: P\nsteps:\n  - {name: Echo, request: {url: '{{ env.BASE }}/echo'}}\n")
    run = sr.run("p.scenario.yaml")
    assert run.code == 0
    assert sorted(os.listdir(sr.dir)) == ["junit.xml", "p.scenario.yaml"]
