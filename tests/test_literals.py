"""runner/literals.py and the schema $ref loop check: what `validate` now refuses, and what it must
still accept (templated values are left to run time; recursion that steps into the data is fine).

The refusals themselves, with their exact messages, are in the bad-input corpus (tests/bad_input).
"""

from __future__ import annotations

import json

import pytest

HEAD = "name: S\nsteps:\n  - name: Get\n    request:\n"


def _validate(sr, body: str, *extra: str):
    sr.write("s.scenario.yaml", HEAD + body)
    return sr.main("validate", "s.scenario.yaml", *extra)


@pytest.mark.parametrize(
    "url",
    ['"{{ base }}/v2"', '"HTTPS://example.com/x"', '"http{{ s }}://example.com"', '"https://{{ host }}/x"'],
)
def test_urls_whose_scheme_is_http_or_comes_from_a_value_pass(sr, url: str) -> None:
    run = _validate(sr, f"      url: {url}\nvars: {{base: 'http://x', s: '', host: h}}\n")
    assert run.code == 0, run.err


@pytest.mark.parametrize("url", ["ftp://x/y", "file:///etc/passwd", "example.com/x", "gopher://{{ host }}/"])
def test_other_literal_schemes_are_refused(sr, url: str) -> None:
    run = _validate(sr, f"      url: '{url}'\nvars: {{host: h}}\n")
    assert run.code == 2 and "s.scenario.yaml:5:12: url " in run.err, run.err
    assert "the runner sends http:// and https:// requests only" in run.err


def test_a_valid_literal_jmespath_and_one_from_a_variable_pass(sr) -> None:
    body = (
        '      url: "http://x/"\n'
        "    capture:\n"
        "      a: \"{{ response.json | jmespath('images[?size > `1`].id') }}\"\n"
        '      b: "{{ response.json | jmespath(expr) }}"\n'
        "vars: {expr: 'a..b'}\n"
    )
    assert _validate(sr, body).code == 0


def test_a_jmespath_error_points_into_the_expression(sr) -> None:
    body = '      url: "http://x/"\n    capture:\n      a: "{{ response.json | jmespath(\'a b\') }}"\n'
    run = _validate(sr, body)
    assert run.code == 2
    # the caret is under `b`, where JMESPath stops (position 2 of the expression)
    assert run.err.startswith("s.scenario.yaml:7:42: invalid JMESPath expression 'a b': unexpected token: b"), run.err


def test_a_tree_schema_is_accepted_and_a_self_ref_is_refused(sr) -> None:
    tree = {
        "$defs": {"node": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#"}}}}},
        "$ref": "#/$defs/node",
    }
    sr.write("tree.json", json.dumps(tree))
    assert _validate(sr, '      url: "http://x/"\n    expect: {schema: tree.json}\n').code == 0
    sr.write("self.json", '{"anyOf": [{"type": "string"}, {"$ref": "#"}]}')
    run = _validate(sr, '      url: "http://x/"\n    expect: {schema: self.json}\n')
    assert run.code == 2 and run.err.startswith("self.json:1:41: $ref '#' closes a loop"), run.err


def test_a_ref_loop_across_files_is_refused(sr) -> None:
    sr.write("a.json", '{"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": "b.json"}')
    sr.write("b.json", '{"$schema": "https://json-schema.org/draft/2020-12/schema", "not": {"$ref": "a.json"}}')
    run = _validate(sr, '      url: "http://x/"\n    expect: {schema: a.json}\n')
    assert run.code == 2 and "closes a loop of references" in run.err, run.err


def test_secrets_defined_by_a_fragment_capture_a_matrix_or_a_var_pass(sr) -> None:
    sr.write(
        "login.yaml",
        'secrets: [token]\nsteps:\n  - name: Login\n    request: {url: "http://x/"}\n'
        '    capture: {token: "{{ response.json.t }}"}\n',
    )
    sr.write(
        "s.scenario.yaml",
        "name: S\nsecrets: [token, row_pw, cli_pw]\nmatrix: [{row_pw: a}]\nsteps:\n  - include: login.yaml\n",
    )
    assert sr.main("validate", "s.scenario.yaml", "--var", "cli_pw=x").code == 0
    run = sr.main("validate", "s.scenario.yaml")
    assert run.code == 2 and "secret 'cli_pw' names no variable" in run.err, run.err
