"""The check kinds (runner/checks/): one registry that the JSON Schema and the loader agree with, each
kind's templates seen by `validate`, and a step's failures in the kinds' order."""

from __future__ import annotations

import re

import pytest

from runner.checks import KINDS, body
from runner.checks.base import Order
from runner.formatcheck import format_schema


def test_every_expect_key_of_the_schema_has_a_kind_and_every_kind_a_key():
    expect = format_schema()["$defs"]["expect"]
    assert expect["additionalProperties"] is False  # so the schema's keys are all there is
    assert set(expect["properties"]) == set(KINDS)
    assert all(kind.key == key for key, kind in KINDS.items())


def test_every_key_of_expect_body_in_the_schema_is_a_body_kind():
    schema = format_schema()["$defs"]["expect"]["properties"]["body"]
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(body.KEYS)
    assert len(body.KEYS) == len(set(body.KEYS))


# One kind each: an undefined name in what the kind holds is found by `validate`, at its place.
HOLDING = {
    "status": 'status: "{{ nope }}"',
    "headers": 'headers: {X-A: "{{ nope }}"}',
    "json": 'json: {a: "{{ nope }}"}',
    "body": 'body: {contains: "{{ nope }}"}',
    "body predicates": 'body: {starts_with: "{{ nope }}"}',
    "body digests": 'body: {sha256: "{{ nope }}"}',
    "where": 'where: {a: {eq: "{{ nope }}"}}',
    "assert": 'assert: ["{{ nope }}"]',
}


@pytest.mark.parametrize("written", list(HOLDING.values()), ids=list(HOLDING))
def test_validate_sees_the_templates_every_kind_holds(sr, written):
    col = 7 + written.index("nope")  # the line is indented by 6
    sr.write(
        "k.scenario.yaml",
        f"""
        name: K
        steps:
          - name: S
            request: {{url: "http://127.0.0.1:9/x"}}
            expect:
              {written}
        """,
    )
    run = sr.main("validate", "k.scenario.yaml")
    assert run.code == 2, run.err
    assert f"k.scenario.yaml:6:{col}: undefined variable 'nope'" in run.err, run.err


def test_a_step_without_status_still_has_the_default_check(sr, server):
    sr.write(
        "d.scenario.yaml",
        """
        name: D
        steps:
          - name: Missing
            request: {url: "{{ env.BASE }}/nothing-here"}
            expect:
              json: {a: 1}
        """,
    )
    run = sr.run("d.scenario.yaml")
    assert run.outcome("Missing") == "failure"
    assert "d.scenario.yaml:3:5: status: expected 2xx, got 404" in run.output, run.output


def test_the_failures_of_a_step_come_in_the_order_of_their_kinds(sr, server):
    """Every kind fails once; they are reported in `Order`, whatever order the scenario writes them in."""
    sr.write(
        "o.scenario.yaml",
        """
        name: O
        steps:
          - name: All
            request: {method: POST, url: "{{ env.BASE }}/mirror?type=application/json", body: '{"a": 1}'}
            expect:
              where: {a: {eq: 2}}
              assert: ["{{ response.json.a == 3 }}"]
              body: {contains: zzz, starts_with: "[", sha256: "00"}
              json: {a: 4}
              headers: {X-Absent: "x", Content-Type: {ends_with: xml}}
              status: 201
        """,
    )
    run = sr.run("o.scenario.yaml")
    assert run.outcome("All") == "failure"
    lines = [line.strip() for line in run.output.splitlines() if "o.scenario.yaml:" in line]
    order = [
        r"o\.scenario\.yaml:11:\d+: status:",
        r"o\.scenario\.yaml:10:\d+: header X-Absent:",
        r"o\.scenario\.yaml:9:\d+: json.a:",
        r"o\.scenario\.yaml:8:\d+: body: does not contain",
        r"o\.scenario\.yaml:7:\d+: assert:",
        r"o\.scenario\.yaml:10:\d+: header Content-Type:",
        r"o\.scenario\.yaml:8:\d+: body: expected starts_with",
        r"o\.scenario\.yaml:8:\d+: body sha256:",
        r"o\.scenario\.yaml:6:\d+: json a:",
    ]
    found = [next((i for i, line in enumerate(lines) if re.search(want, line)), None) for want in order]
    assert None not in found, (order, lines)
    assert found == sorted(found), lines
    assert Order.STATUS < Order.HEADERS < Order.WHERE  # what the scenario above relies on


def test_every_kind_of_request_body_is_a_key_of_request():
    from runner.bodies import BODIES
    from runner.loadsteps import BODY_KINDS

    request = format_schema()["$defs"]["request"]["properties"]
    assert set(BODIES) <= set(request)
    assert BODY_KINDS == ("json", "body", "file", "form")  # the loader's "choose one of" names them in this order
