"""The JUnit XML report: valid against the schemas CI systems validate with (the Jenkins xUnit
plugin's junit-10.xsd, Maven Surefire's testsuite schema: tests/data/xsd/), a testsuite per scenario,
a testcase per step, failure/error/skipped as CI servers read them, and the redacted exchange of
failed steps.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import server as srv

xmlschema = pytest.importorskip("xmlschema")

pytestmark = pytest.mark.usefixtures("watchdog")

XSD = Path(__file__).parent / "data" / "xsd"


@pytest.fixture(scope="module")
def schema():
    return Consumers(
        xmlschema.XMLSchema(str(XSD / "jenkins-xunit-junit-10.xsd")),
        xmlschema.XMLSchema(str(XSD / "surefire-test-report.xsd")),
    )


class Consumers:
    """Jenkins xUnit validates the whole file; Surefire's schema is one `<testsuite>` per file, so
    each suite of the report is checked as a document of its own."""

    def __init__(self, jenkins, surefire):
        self.jenkins, self.surefire = jenkins, surefire

    def errors(self, path: Path) -> list[str]:
        found = [f"jenkins junit-10.xsd: {e.reason} at {e.path}" for e in self.jenkins.iter_errors(str(path))]
        for suite in ET.parse(path).getroot().findall("testsuite"):
            document = ET.tostring(suite, encoding="unicode")
            found += [f"surefire: {e.reason} at {e.path}" for e in self.surefire.iter_errors(document)]
        return found


def assert_valid(schema, path: Path) -> None:
    errors = schema.errors(path)
    assert not errors, f"{len(errors)} error(s):\n" + "\n".join(errors[:5])


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


SUITE = """
name: Images v2.1 API
tags: [smoke]
matrix:
  - {region: east.1}
  - {region: west}
setup:
  - name: prepare
    request: {url: "{{ env.BASE }}/echo"}
tests:
  - name: test.list
    steps:
      - name: list.all
        request: {url: "{{ env.BASE }}/echo"}
      - name: twice
        for_each: [a, b]
        request: {url: "{{ env.BASE }}/echo/{{ item }}"}
  - name: test_fails
    steps:
      - name: wrong status
        request: {url: "{{ env.BASE }}/echo"}
        expect: {status: 201}
      - name: after it
        request: {url: "{{ env.BASE }}/echo"}
  - name: test_skipped
    skip: not here
    steps:
      - name: never
        request: {url: "{{ env.BASE }}/echo"}
teardown:
  - name: clean
    request: {url: "{{ env.BASE }}/echo"}
"""


@pytest.fixture
def full_run(sr, server):
    """Every shape a report holds: pass, fail, error, skipped (a step, a test), a file of tests with
    setup and teardown, matrix rows, loop iterations, finally, names with dots and odd characters."""
    sr.write("a_mixed.scenario.yaml", MIXED)
    sr.write("b_errors.scenario.yaml", ERRORS)
    sr.write("c_quick.scenario.yaml", QUICK)
    sr.write("d_pass.scenario.yaml", "name: Passing\nsteps:\n  - {name: Echo, request: {url: '{{ env.BASE }}/echo'}}\n")
    sr.write("e_suite.scenario.yaml", SUITE)
    run = sr.run(".")
    assert run.code == 1
    return run


def test_report_is_valid_against_the_consumers_schemas(schema, full_run):
    assert_valid(schema, full_run.junit_path)
    names = [s.get("name") for s in full_run.suites()]
    assert "Images v2.1 API [region=east.1] :: setup" in names  # the shapes are really there
    assert "Images v2.1 API [region=west] :: test.list" in names
    assert "Images v2.1 API [region=west] :: teardown" in names
    assert full_run.xml.find("testsuite/testcase/failure") is not None


def test_the_former_report_was_invalid_for_jenkins(schema, tmp_path, full_run):
    """The check can fail: the attributes this report used to carry are refused by both schemas."""
    tree = ET.parse(full_run.junit_path)
    tree.getroot().find("testsuite/testcase").set("file", "a_mixed.scenario.yaml")
    tree.getroot().find("testsuite").set("disabled", "0")
    tree.write(tmp_path / "former.xml", encoding="utf-8", xml_declaration=True)
    errors = schema.errors(tmp_path / "former.xml")
    assert any("jenkins" in e and "'file'" in e for e in errors), errors
    assert any("jenkins" in e and "'disabled'" in e for e in errors), errors
    assert any("surefire" in e for e in errors), errors


def test_classnames_keep_dots_out_of_java_packages(full_run):
    """Jenkins reads `a.b.C` as class C of package a.b: a scenario's dots must not split it."""
    suite = full_run.suite("Images v2.1 API [region=east.1] :: test.list")
    classnames = {c.get("classname") for c in suite.findall("testcase")}
    assert classnames == {"Images v2\u20241 API [region=east\u20241] :: test\u2024list"}
    assert all("." not in c.get("classname") for c in full_run.xml.iter("testcase"))
    assert [c.get("name") for c in suite.findall("testcase")] == ["list.all", "twice [a]", "twice [b]"]


def test_every_testcase_has_a_time_and_the_root_counts_skipped_cases(full_run):
    cases = list(full_run.xml.iter("testcase"))
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert skipped and all(c.get("time") == "0.000" for c in skipped)
    assert all(re.fullmatch(r"\d+\.\d{3}", c.get("time")) for c in cases)
    root = full_run.xml
    assert root.get("skipped") is None  # junit-10.xsd allows no `skipped` on <testsuites>
    assert int(root.get("tests")) == len(cases)  # skipped cases count among the tests
    assert sum(int(s.get("skipped")) for s in full_run.suites()) == len(skipped)
    assert full_run.suite("Images v2.1 API [region=west] :: test_skipped").get("skipped") == "1"


def test_the_scenario_file_is_a_property_of_its_suite(full_run):
    suite = full_run.suite("Images v2.1 API [region=west] :: setup")
    properties = {p.get("name"): p.get("value") for p in suite.iterfind("properties/property")}
    assert properties == {"file": "e_suite.scenario.yaml", "kind": "setup"}
    assert full_run.suite("Mixed").find("properties/property[@name='file']").get("value") == "a_mixed.scenario.yaml"
    assert full_run.suite("Mixed").get("file") is None  # Surefire's schema has no `file` on <testsuite>


def test_the_extended_flavour_adds_file_and_line_for_gitlab_and_github(schema, sr, server, tmp_path):
    sr.write("a_mixed.scenario.yaml", MIXED)
    sr.write("e_suite.scenario.yaml", SUITE)
    run = sr.run(".", "--junit-flavour", "extended")
    assert run.code == 1
    cases = run.suite("Mixed").findall("testcase")
    assert [c.get("line") for c in cases] == ["6", "13", "16", "19"]  # where each step starts
    assert {c.get("file") for c in cases} == {"a_mixed.scenario.yaml"}
    assert run.suite("Mixed").get("file") == "a_mixed.scenario.yaml"
    assert run.xml.get("skipped") == str(sum(c.find("skipped") is not None for c in run.xml.iter("testcase")))
    assert run.xml.get("skipped") != "0"
    # what it adds is exactly what the schemas refuse: without it the document is the standard one
    tree = ET.parse(run.junit_path)
    tree.getroot().attrib.pop("skipped")
    for element in tree.getroot().iter():
        if element.tag in ("testsuite", "testcase"):
            element.attrib.pop("file", None)
            element.attrib.pop("line", None)
    tree.write(tmp_path / "stripped.xml", encoding="utf-8", xml_declaration=True)
    assert_valid(schema, tmp_path / "stripped.xml")
    assert schema.errors(run.junit_path)


def test_an_unknown_flavour_is_a_usage_error(sr):
    run = sr.main("run", ".", "--junit-flavour", "jenkins")
    assert run.code == 2
    assert "--junit-flavour" in run.err and "'standard'" in run.err


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
    assert all(c.get("line") is None and c.get("file") is None for c in cases)  # the extended flavour's


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


def test_merge_reports_writes_either_flavour(schema, sr, server):
    sr.write("a_mixed.scenario.yaml", MIXED)
    sr.write("e_suite.scenario.yaml", SUITE)
    assert sr.run(".", "--results", "r.json").code == 1
    standard = sr.main("merge-reports", "r.json", "--junit", "standard.xml", junit="standard.xml")
    extended = sr.main(
        "merge-reports", "r.json", "--junit", "extended.xml", "--junit-flavour", "extended", junit="extended.xml"
    )
    assert standard.code == extended.code == 1
    assert_valid(schema, standard.junit_path)
    assert standard.case("Missing image").get("line") is None
    assert extended.case("Missing image").get("line") == "13"
