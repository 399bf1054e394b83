"""Identity helpers and templated names, end to end against the local test server.

`scenario.id` (one per scenario and matrix row) and `loop.id` (one per iteration) are unique across
a run and stable within their scenario; scenario and step names are templates rendered once, shown
rendered in the console and JUnit, checked by `validate`, and masked like every output.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs

import pytest
import server as srv

pytestmark = pytest.mark.usefixtures("watchdog")

# Each step sends the ids it sees as query parameters of /echo: the server records them.
IDS = """
name: Ids FILE
vars: {base: "{{ env.BASE }}/echo", made: "p-{{ scenario.id }}"}
MATRIX
steps:
  - name: First
    request: {url: "{{ base }}", params: {file: FILE, sid: "{{ scenario.id }}", made: "{{ made }}"}}
  - name: Each
    for_each: [a, b]
    request: {url: "{{ base }}", params: {file: FILE, sid: "{{ scenario.id }}", lid: "{{ loop.id }}"}}
  - name: Again
    repeat: {until: "{{ loop.index == 2 }}"}
    request: {url: "{{ base }}", params: {file: FILE, sid: "{{ scenario.id }}", lid: "{{ loop.id }}"}}
finally:
  - name: Last
    request: {url: "{{ base }}", params: {file: FILE, sid: "{{ scenario.id }}", run: "{{ run_id }}"}}
"""


def _sent(server) -> list[dict[str, str]]:
    return [{k: v[0] for k, v in parse_qs(r["query"]).items()} for r in server.state.requests]


@pytest.mark.parametrize("jobs", ["1", "3"])
def test_ids_are_unique_per_scenario_row_and_iteration_and_stable_within_a_scenario(sr, server, jobs):
    sr.write("a.scenario.yaml", IDS.replace("FILE", "a").replace("MATRIX", ""))
    sr.write("b.scenario.yaml", IDS.replace("FILE", "b").replace("MATRIX", "matrix: [{row: 1}, {row: 2}]"))
    run = sr.run(".", "--jobs", jobs)
    assert run.code == 0, run.output
    sent = _sent(server)
    assert len(sent) == 3 * 6
    sids = sorted({q["sid"] for q in sent})
    run_id = next(q["run"] for q in sent if "run" in q and q["file"] == "a")
    # one per scenario and matrix row, numbered in load order (so with --jobs too), beginning with run_id
    assert sids == [f"{run_id}-s001", f"{run_id}-s002", f"{run_id}-s003"]
    for sid in sids:  # stable: every step (and the cleanup) of one scenario sees the same id
        assert sum(q["sid"] == sid for q in sent) == 6
    by_file = {q["file"]: q["sid"] for q in sent if q["file"] == "a"}
    assert by_file == {"a": f"{run_id}-s001"}
    # vars see it: a resource name made per scenario
    assert sorted(q["made"] for q in sent if "made" in q) == [f"p-{sid}" for sid in sids]
    # one per iteration, of for_each and of repeat, under its scenario's id; never the same twice
    lids = [q["lid"] for q in sent if "lid" in q]
    assert len(lids) == len(set(lids)) == 3 * 4
    for q in sent:
        if "lid" in q:
            assert re.fullmatch(re.escape(q["sid"]) + r"-i00[1-4]", q["lid"]), q


def test_fixture_set_ups_have_ids_of_their_own(sr, server):
    sr.write(
        "login.yaml",
        """
steps:
  - name: Set up
    request: {url: "{{ env.BASE }}/echo", params: {sid: "{{ scenario.id }}"}}
""",
    )
    sr.write(
        "a.scenario.yaml",
        """
name: Uses it
fixtures: [login.yaml]
steps:
  - name: Step
    request: {url: "{{ env.BASE }}/echo", params: {sid: "{{ scenario.id }}"}}
""",
    )
    run = sr.run(".")
    assert run.code == 0, run.output
    fixture_sid, scenario_sid = (q["sid"] for q in _sent(server))
    assert fixture_sid.endswith("-f001") and scenario_sid.endswith("-s001")
    assert fixture_sid[:-5] == scenario_sid[:-5]  # both begin with the run id


NAMED = """
name: "Image {{ image_name }} as {{ user }}"
vars: {base: "{{ env.BASE }}", image_name: "img-{{ scenario.id }}"}
matrix: [{user: alice}, {user: bob}]
steps:
  - name: "Echo {{ image_name }} for {{ scenario.name }}"
    request: {url: "{{ base }}/echo", params: {n: "{{ image_name }}"}}
    capture: {got: "{{ response.json.query.n }}"}
  - name: "Got {{ got }}"
    request: {url: "{{ base }}/echo"}
  - name: "Fail {{ user }}"
    request: {url: "{{ base }}/echo", params: {status: "500"}}
  - name: "Never {{ got }}"
    request: {url: "{{ base }}/echo"}
finally:
  - name: "Clean {{ got }}"
    request: {url: "{{ base }}/echo"}
"""


def test_scenario_and_step_names_are_rendered_once_in_console_and_junit(sr, server):
    sr.write("named.scenario.yaml", NAMED)
    run = sr.run("named.scenario.yaml")
    assert run.code == 1, run.output
    run_id = parse_qs(server.state.requests[0]["query"])["n"][0].removeprefix("img-").rsplit("-", 1)[0]
    for number, user in ((1, "alice"), (2, "bob")):
        image = f"img-{run_id}-s00{number}"
        scenario = f"Image {image} as {user} [user={user}]"  # the template rendered, then the row's label
        assert re.search(rf"^{re.escape(scenario)}  \(named.scenario.yaml\)$", run.out, re.M), run.out
        suite = run.suite(scenario)
        names = [c.get("name") for c in suite.findall("testcase")]
        assert names == [
            f"Echo {image} for {scenario}",  # scenario.name is the rendered name
            f"Got {image}",  # a capture of an earlier step
            f"Fail {user}",
            "Never {{ got }}",  # not started (skipped): as written
            f"finally: Clean {image}",
        ]
        assert {c.get("classname") for c in suite.findall("testcase")} == {scenario}
        assert run.outcome("Never {{ got }}", scenario) == "skipped"
        assert f"skipped: step 'Fail {user}' failed" in run.message("Never {{ got }}", scenario)
        assert re.search(rf"PASS\s+Got {image}\s", run.out)
    assert f"failed: Image img-{run_id}-s001 as alice [user=alice]" in run.out


def test_a_name_that_cannot_render_errors_located_and_is_shown_as_written(sr, server):
    sr.write(
        "bad.scenario.yaml",
        """
name: Bad names
vars: {base: "{{ env.BASE }}", found: {}}
steps:
  - name: "Get {{ found.missing_later }}"
    request: {url: "{{ base }}/echo"}
  - name: Then
    request: {url: "{{ base }}/echo"}
""",
    )
    run = sr.run("bad.scenario.yaml")
    assert run.code == 1, run.output
    assert run.outcome("Get {{ found.missing_later }}") == "error"
    message = run.message("Get {{ found.missing_later }}")
    assert "bad.scenario.yaml:4:" in message and "found has no key 'missing_later'" in message
    assert run.outcome("Then") == "skipped"
    assert server.state.requests == []  # the step did not send


def test_a_scenario_name_that_cannot_render_errors_and_skips_the_steps(sr, server):
    sr.write(
        "bad.scenario.yaml",
        """
name: "Scenario {{ env.NO_SUCH_VARIABLE_HERE }}"
steps:
  - name: Step
    request: {url: "{{ env.BASE }}/echo"}
""",
    )
    run = sr.run("bad.scenario.yaml")
    assert run.code == 1, run.output
    suite = run.suite("Scenario {{ env.NO_SUCH_VARIABLE_HERE }}")  # as written
    assert run.outcome("(scenario name)", suite.get("name")) == "error"
    assert "bad.scenario.yaml:1:" in run.message("(scenario name)", suite.get("name"))
    assert run.outcome("Step", suite.get("name")) == "skipped"
    assert server.state.requests == []


def test_a_secret_in_a_rendered_name_is_masked(sr, server):
    sr.write(
        "secret.scenario.yaml",
        srv.logged_in("Login with {{ password }}")
        + """
  - name: "Use {{ token }}"
    request: {url: "{{ base }}/echo"}
""",
    )
    run = sr.run("secret.scenario.yaml", "-v")
    assert run.code == 0, run.output
    junit = run.junit_path.read_text()
    for text in (run.out, junit):
        assert srv.PASSWORD not in text and srv.TOKEN not in text
    assert "Login with ***" in run.out and "Use ***" in run.out
    assert run.outcome("Use ***", "Login with ***") == "passed"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ('"{{ imagename }}"', "undefined variable 'imagename'"),
        ('"{{ got }}"', "undefined variable 'got'"),  # a capture: not defined when the scenario starts
        ('"{{ oops"', "template"),
    ],
)
def test_validate_checks_scenario_name_templates(sr, name, expected):
    sr.write(
        "v.scenario.yaml",
        f"""
name: {name}
vars: {{image_name: x}}
steps:
  - name: Step
    request: {{url: "http://127.0.0.1:1/"}}
    capture: {{got: "{{{{ response.status }}}}"}}
""",
    )
    run = sr.main("validate", "v.scenario.yaml")
    assert run.code == 2, run.output
    assert "v.scenario.yaml:1:" in run.err and expected in run.err, run.err


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ('"Get {{ imagename }}"', "did you mean 'image_name'?"),
        ('"Get {{ item }}"', "'item' is defined only inside the looped step"),
        ('"Get {{ image_name"', "template"),
    ],
)
def test_validate_checks_step_name_templates(sr, name, expected):
    sr.write(
        "v.scenario.yaml",
        f"""
name: Valid
vars: {{image_name: x}}
steps:
  - name: Loop
    for_each: [a]
    request: {{url: "http://127.0.0.1:1/{{{{ item }}}}"}}
  - name: {name}
    request: {{url: "http://127.0.0.1:1/"}}
""",
    )
    run = sr.main("validate", "v.scenario.yaml")
    assert run.code == 2, run.output
    assert "v.scenario.yaml:7:" in run.err and expected in run.err, run.err


def test_validate_accepts_names_with_ids_vars_rows_and_captures(sr):
    sr.write(
        "ok.scenario.yaml",
        """
name: "Ok {{ scenario.id }} {{ image_name }} {{ row }} {{ run_id }}"
vars: {image_name: x}
matrix: [{row: 1}]
steps:
  - name: "Get {{ scenario.name }} {{ image_name }}"
    request: {url: "http://127.0.0.1:1/"}
    capture: {got: "{{ response.status }}"}
  - name: "Then {{ got }} {{ uuid() }}"
    request: {url: "http://127.0.0.1:1/"}
""",
    )
    run = sr.main("validate", "ok.scenario.yaml")
    assert run.code == 0, run.output
