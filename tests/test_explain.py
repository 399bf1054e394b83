"""A failed `assert` shows the values of its parts (issue 13, point 3), in every report, masked."""

from __future__ import annotations

from html import escape as html_escape

import pytest

from runner.errors import Location
from runner.explain import explain, unparse
from runner.templating import ENV, Template

HERE = Location("t.yaml", 3, 7)


def test_console_junit_and_html_show_both_sides_and_the_list_filtered(sr, server):
    sr.write(
        "a.scenario.yaml",
        """
        name: asserts
        vars: {image_id: abc, names: [x-1, y-2, x-3]}
        steps:
          - name: Echo
            request: {url: "{{ env.BASE }}/echo?a=1&b=2"}
            expect:
              assert:
                - "{{ image_id in response.json.query | list }}"
                - "{{ names | reject('eq', 'y-2') | list == [] }}"
                - "{{ response.json.query | length > 5 and response.status == 200 }}"
                - "{{ response.json.nope | default(0) > 1 }}"
        """,
    )
    run = sr.run("a.scenario.yaml", "--html", "r.html")
    assert run.code == 1
    expected = [
        "image_id = 'abc'",
        'response.json.query | list = ["a", "b"]',
        "names | reject('eq', 'y-2') | list = [\"x-1\", \"x-3\"]",
        'names = ["x-1", "y-2", "x-3"]',
        "(response.json.query | length) > 5 = false",
        "response.json.query | length = 2",
        "response.status == 200 = true",
        "response.json.nope | default(0) = 0",
    ]
    junit = run.system_out("Echo") + run.message("Echo")
    html = (sr.dir / "r.html").read_text()
    for line in expected:
        assert "          " + line in run.out
        assert "  " + line in junit
        assert html_escape(line) in html
    assert "[] = []" not in run.out  # literals add nothing
    assert "response.json.nope:" not in run.out  # a chain that says `default` may start from nothing


def test_the_values_shown_are_masked(sr, server):
    sr.write(
        "s.scenario.yaml",
        """
        name: secret
        vars: {api_token: s3cr3t-t0k3n-value}
        steps:
          - name: Echo
            request: {url: "{{ env.BASE }}/echo"}
            expect:
              assert: ["{{ api_token == response.json.method }}"]
        """,
    )
    run = sr.run("s.scenario.yaml")
    assert run.code == 1
    assert "api_token = '***'" in run.out
    assert "s3cr3t" not in run.out + sr.dir.joinpath("junit.xml").read_text()


@pytest.mark.parametrize(
    "source",
    [
        "a.b[0]['c'] | map(attribute='id') | list",
        "x is defined and not (y or z)",
        "items | selectattr('status', 'equalto', 'active') | list | length >= 2",
        "(a + 1) * 2 ~ 'x'",
        "f(1, k=2)",
        "{'a': [1, (2,)]}",
        "a if b else c",
        "s[1:3]",
    ],
)
def test_unparse_writes_back_a_template_that_parses_to_the_same_tree(source):
    expr = ENV.parse("{{ " + source + " }}").body[0].nodes[0]
    text = unparse(expr)
    assert text is not None
    again = ENV.parse("{{ " + text + " }}").body[0].nodes[0]
    assert again == expr


def test_nothing_to_explain_for_a_constant():
    assert explain(Template("{{ false }}", HERE), {}) == []
