"""A step's problem reaches the reports as data (message, file/line/col, hint), not as a text each
report parses again: the JUnit file and line, the results file, the pytest plugin's lines."""

from __future__ import annotations

import json

ERRING = """
name: P
steps:
  - name: Broken
    request: {method: POST, url: "{{ env.BASE }}/echo", json: {a: "{{ range(3) }}"}}
"""


def _results(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_step_error_is_kept_as_message_location_and_hint(sr, server):
    sr.write("p.scenario.yaml", ERRING)
    run = sr.run("p.scenario.yaml", "--results", "r.json")
    assert run.outcome("Broken") == "error", run.output
    records = _results(sr.dir / "r.json")
    (step,) = next(r["scenario"] for r in records if "scenario" in r)["steps"]
    error = step["error"]
    assert error["message"].startswith("the json body cannot be sent as JSON: Object of type range")
    assert error["location"] == ["p.scenario.yaml", 4, 63]
    assert error["hint"].startswith("a template here must give strings")
    assert step["location"] == ["p.scenario.yaml", 3, 5]
    # the console shows the same parts on one line, as it always did
    where = ":".join(str(part) for part in error["location"]) + ": " if error["location"] else ""
    hint = f" (hint: {error['hint']})" if error["hint"] else ""
    assert f"{where}{error['message']}{hint}" in run.output


def test_junit_gives_the_file_and_line_of_a_path_with_a_colon(sr, server):
    """A location string parsed again split `a:b.scenario.yaml:3:5` at the first colon."""
    sr.write("a:b.scenario.yaml", ERRING.replace("{{ range(3) }}", "1").replace("/echo", "/nothing-here"))
    run = sr.run("a:b.scenario.yaml", "--junit-flavour", "extended")  # file and line: docs/reports.md
    case = run.case("Broken")
    assert (case.get("file"), case.get("line")) == ("a:b.scenario.yaml", "3"), case.attrib


def test_failures_keep_their_location_in_the_results_file(sr, server):
    sr.write(
        "f.scenario.yaml",
        """
        name: F
        steps:
          - name: Wrong status
            request: {url: "{{ env.BASE }}/echo"}
            expect:
              status: 201
        """,
    )
    sr.run("f.scenario.yaml", "--results", "r.json")
    records = _results(sr.dir / "r.json")
    (step,) = next(r["scenario"] for r in records if "scenario" in r)["steps"]
    (failure,) = step["failures"]
    assert failure["location"] == ["f.scenario.yaml", 6, 15]
    assert failure["message"].startswith("status: expected 201, got 200")


def test_the_scrub_masks_the_paths_of_locations_too():
    """A location's path is printed by every report: it passes the same scrub as the messages
    (rule 1: every byte written passes one scrub), in the full walk and in the one-scan shortcut."""
    from runner.errors import Location
    from runner.results import Outcome, Problem, ScenarioResult, StepResult, scrub_scenario

    where = Location("suites/s3cr3t-tenant/a.scenario.yaml", 3, 5)
    step = StepResult(name="S", location=where, outcome=Outcome.ERROR, error=Problem("broken", where, "fix it"))
    scenario = ScenarioResult(name="A", path="x.scenario.yaml", steps=[step])
    scrub_scenario(scenario, lambda text: text.replace("s3cr3t", "***"))
    assert step.location == Location("suites/***-tenant/a.scenario.yaml", 3, 5)
    assert step.error is not None and step.error.location == step.location
    assert "s3cr3t" not in repr(scenario)


def test_the_scrub_of_a_run_held_in_memory_masks_every_scenario_fixture_and_error():
    """`scrub` of a RunResult masks each held scenario with one scan of its joined texts (issue 12):
    a secret in any text of any scenario, fixture or internal error is still masked, the rest kept."""
    from runner.errors import Location
    from runner.results import Outcome, Problem, RunResult, ScenarioResult, StepResult, scrub

    def mask(text: str) -> str:
        return text.replace("s3cr3t", "***")

    where = Location("a.scenario.yaml", 3, 5)
    clean = ScenarioResult("clean", "a.scenario.yaml", [StepResult("S", where, Outcome.PASSED, url="http://h/x")])
    leaky = ScenarioResult("leaky", "b.scenario.yaml", [StepResult("S", where, Outcome.PASSED, url="http://h/x")])
    leaky.steps.append(StepResult("T", Location("s3cr3t/b.yaml", 1, 1), Outcome.ERROR, error=Problem("got s3cr3t")))
    fixture = ScenarioResult("login", "s3cr3t.yaml")
    run = RunResult(scenarios=[clean, leaky], fixtures=[fixture], internal_errors=["bug near s3cr3t"])
    scrub(run, mask)
    assert "s3cr3t" not in repr(run.scenarios) + repr(run.fixtures) + repr(run.internal_errors)
    assert leaky.steps[1].error is not None and leaky.steps[1].error.message == "got ***"
    assert leaky.steps[1].location.path == "***/b.yaml" and fixture.path == "***.yaml"
    assert run.internal_errors == ["bug near ***"] and run.mask is mask
    assert clean.steps[0].url == "http://h/x" and clean.name == "clean"


def test_the_one_scan_shortcut_reads_every_text_the_full_scrub_masks():
    """`scrub_scenario` scans the joined texts of a scenario (read by a walk of its own) and scrubs it
    in full only when that scan finds a secret: the reading walk must see exactly the texts the full
    one masks, in every kind of field (names, URLs, locations, problems, failures and their details,
    attempts' notes, exchanges)."""
    from runner.errors import Location
    from runner.results import Attempt, Failure, Outcome, Problem, ScenarioResult, StepResult, _map_texts, _texts

    where = Location("a.scenario.yaml", 3, 5)
    step = StepResult(
        "S", where, Outcome.FAILED, 1.5, [Failure("m", Location("f.yaml", 1, 2), "e", "a", details=["d1", "d2"])],
        Problem("p", Location("g.yaml", 4, 1), "h"), "why", "GET", "http://h/x", 500, "exchange", "curl",
        [Attempt(1, 500, 0.1, "note")], True,
    )  # fmt: skip
    scenario = ScenarioResult("A", "x.scenario.yaml", [step, StepResult("T", None, Outcome.PASSED)], skip_reason="r")
    masked: list[str] = []
    _map_texts(scenario, lambda text: masked.append(text) or text)
    assert _texts(scenario) == masked
    assert {"d2", "note", "g.yaml", "h", "curl", "why", "r", "x.scenario.yaml"} <= set(masked)
