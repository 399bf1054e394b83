"""The JUnit XML report: valid against a JUnit XSD, a testsuite per scenario, a testcase per step,
failure/error/skipped as CI servers read them, and the redacted exchange of failed steps.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import server as srv

xmlschema = pytest.importorskip("xmlschema")

pytestmark = pytest.mark.usefixtures("watchdog")

XSD = Path(__file__).parent / "data" / "junit.xsd"


@pytest.fixture(scope="module")
def schema():
    return xmlschema.XMLSchema(str(XSD))


def assert_valid(schema, path: Path) -> None:
    errors = list(schema.iter_errors(str(path)))
    assert not errors, "\n".join(str(e) for e in errors[:3])


MIXED = (
    srv.logged_in("Mixed")
    + """
  - name: Missing image
    request: {url: "{{ base }}/images/nope"}
    expect: {status: 200}
  - name: Not run
    request: {url: "{{ base }}/echo"}
finally:
  - name: Cleanup
    request: {method: DELETE, url: "{{ base }}/images/nope"}
    expect: {status: [204, 404]}
"""
)

ERRORS = """
name: Errors & <odd> "names" ünïcode
steps:
  - name: Refused
    request: {url: "http://127.0.0.1:1/x"}
"""

QUICK = """
name: Quick error
steps:
  - name: Undefined
    request: {url: "{{ env.BASE }}/echo/{{ env.SR_JUNIT_NOT_SET }}"}
"""

BINARY = """
name: "Binary \\x1b[31m bell\\x07"
steps:
  - name: "Bytes \\x00 step"
    request: {url: "{{ env.BASE }}/fault/binary"}
"""

CONTROL = """
name: Control
steps:
  - name: Control characters
    request: {url: "{{ env.BASE }}/fault/ctrl"}
"""


@pytest.fixture
def mixed_run(sr, server):
    sr.write("a_mixed.scenario.yaml", MIXED)
    sr.write("b_errors.scenario.yaml", ERRORS)
    sr.write("c_quick.scenario.yaml", QUICK)
    sr.write("d_pass.scenario.yaml", "name: Passing\nsteps:\n  - {name: Echo, request: {url: '{{ env.BASE }}/echo'}}\n")
    run = sr.run(".")
    assert run.code == 1
    return run


def test_report_is_valid_against_the_junit_schema(schema, mixed_run):
    assert_valid(schema, mixed_run.junit_path)


def test_a_testsuite_per_scenario_and_a_testcase_per_step(mixed_run):
    suites = mixed_run.suites()
    assert [s.get("name") for s in suites] == [
        "Mixed",
        'Errors & <odd> "names" ünïcode',
        "Quick error",
        "Passing",
    ]
    mixed = suites[0]
    cases = mixed.findall("testcase")
    assert [c.get("name") for c in cases] == ["Token", "Missing image", "Not run", "finally: Cleanup"]
    assert {c.get("classname") for c in cases} == {"Mixed"}
    assert [c.get("line") for c in cases] == ["6", "13", "16", "19"]  # where each step starts
    assert {c.get("file") for c in cases} == {"a_mixed.scenario.yaml"}
    assert mixed.get("file") == "a_mixed.scenario.yaml"


def test_counts_match_the_testcases(mixed_run):
    root = mixed_run.xml
    totals = dict.fromkeys(("tests", "failures", "errors"), 0)
    for suite in root.findall("testsuite"):
        cases = suite.findall("testcase")
        counted = {
            "tests": len(cases),
            "failures": sum(c.find("failure") is not None for c in cases),
            "errors": sum(c.find("error") is not None for c in cases),
            "skipped": sum(c.find("skipped") is not None for c in cases),
        }
        assert {k: int(suite.get(k)) for k in counted} == counted, suite.get("name")
        for key in totals:
            totals[key] += counted[key]
    assert {k: int(root.get(k)) for k in totals} == totals
    assert totals == {"tests": 7, "failures": 1, "errors": 2}


def test_failure_error_and_skipped_elements(mixed_run):
    run = mixed_run
    assert run.outcome("Token") == "passed"
    assert run.outcome("Missing image") == "failure"
    failure = run.case("Missing image").find("failure")
    assert failure.get("message") == "status: expected 200, got 404 Not Found"
    assert "a_mixed.scenario.yaml:15:" in failure.text  # the location of the expectation
    assert run.outcome("Not run") == "skipped"
    assert run.case("Not run").find("skipped").get("message") == "skipped: step 'Missing image' failed"
    assert run.outcome("finally: Cleanup") == "passed"
    assert run.outcome("Refused") == "error"
    assert "connection refused: GET http://127.0.0.1:1/x" in run.case("Refused").find("error").get("message")
    assert run.outcome("Undefined") == "error"
    assert "SR_JUNIT_NOT_SET" in run.case("Undefined").find("error").get("message")


def test_failed_step_has_the_redacted_exchange_and_a_curl_line(mixed_run):
    out = mixed_run.system_out("Missing image")
    assert re.search(r"^> GET http://127\.0\.0\.1:\d+/images/nope$", out, re.M)
    assert "> X-Auth-Token: ***" in out
    assert "< 404 Not Found" in out
    assert '< {"message": "image not found"}' in out
    curl = [line for line in out.splitlines() if line.startswith("curl ")]
    assert len(curl) == 1
    assert curl[0].startswith("curl -sS -i -X GET -H 'User-Agent: python-requests/")  # as sent, not curl's
    # always gzip and deflate: not br, which requests would offer whenever brotli is installed
    assert "-H 'Accept-Encoding: gzip, deflate' -H \"X-Auth-Token: $X_AUTH_TOKEN\"" in curl[0]
    assert curl[0].endswith("/images/nope")
    text = mixed_run.junit_path.read_text()
    assert srv.TOKEN not in text
    assert srv.PASSWORD not in text


def test_passing_steps_have_no_output_unless_verbose(sr, server):
    sr.write("p.scenario.yaml", "name: Passing\nsteps:\n  - {name: Echo, request: {url: '{{ env.BASE }}/echo'}}\n")
    assert sr.run("p.scenario.yaml").case("Echo").find("system-out") is None
    verbose = sr.run("p.scenario.yaml", "-v")
    assert "< 200 OK" in verbose.system_out("Echo")


def test_tiny_step_times_are_plain_decimals(schema, sr, server):
    """A step that errors before sending takes microseconds; str(9.6e-05) is not a decimal."""
    sr.write("c_quick.scenario.yaml", QUICK)
    run = sr.run(".")
    assert_valid(schema, run.junit_path)
    for element in run.xml.iter():
        if element.get("time") is not None:
            assert re.fullmatch(r"\d+(\.\d+)?", element.get("time")), element.attrib


def test_control_characters_and_binary_bodies_leave_the_file_valid(schema, sr, server):
    sr.write("a_binary.scenario.yaml", BINARY)
    sr.write("b_control.scenario.yaml", CONTROL)
    run = sr.run(".")
    assert run.code == 1
    assert_valid(schema, run.junit_path)
    raw = run.junit_path.read_bytes()
    for byte in (b"\x00", b"\x07", b"\x1b", b"\x0c"):
        assert byte not in raw
    suite = run.suites()[0]
    assert suite.get("name") == "Binary \\x1b[31m bell\\x07"
    assert re.search(r"^< \(\d+ bytes of binary data\)$", run.system_out("Bytes \\x00 step"), re.M)
    assert "line one\\x1b[31m red\\x00 nul" in run.system_out("Control characters")


def test_report_goes_where_asked_and_can_be_turned_off(sr, server):
    sr.write("p.scenario.yaml", "name: Passing\nsteps:\n  - {name: Echo, request: {url: '{{ env.BASE }}/echo'}}\n")
    run = sr.run("p.scenario.yaml", junit="out/nested/report.xml")
    assert run.code == 0
    assert [s.get("name") for s in run.suites()] == ["Passing"]
    assert "report: out/nested/report.xml" in run.out
    run = sr.main("run", "p.scenario.yaml", "--junit", "")
    assert run.code == 0
    assert "report:" not in run.out
    assert not (sr.dir / "reports").exists()
    assert sorted(p.name for p in sr.dir.rglob("*.xml")) == ["report.xml"]


def test_an_error_from_several_checks_has_a_one_line_message(sr, server):
    """docs/errors.md: the `<error>` message joins the step's failures with '; ', the body lists them."""
    sr.write(
        "e.scenario.yaml",
        """
        name: Checks
        steps:
          - name: Echo
            request: {url: "{{ env.BASE }}/echo"}
            expect:
              assert:
                - "{{ response.json.query | length > 0 }}"
                - "{{ response.json.nothing.here }}"
        """,
    )
    run = sr.run("e.scenario.yaml")
    error = run.case("Echo").find("error")
    assert error.get("message") == (
        "e.scenario.yaml:7:11: assert: {{ response.json.query | length > 0 }} is false; "
        "e.scenario.yaml:8:11: could not evaluate the expectation: "
        "undefined value: response.json has no key 'nothing' (its keys: 'method', 'headers', 'query', 'body', "
        "'length', 'md5') (in '{{ response.json.nothing.here }}')"
    )
    assert error.text.count("\n") == 1
