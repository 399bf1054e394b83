"""`validate` refuses filters and tests that do not exist wherever a template names them.

Jinja checks `x | name` when it compiles it, but not inside `{% if %}`, and never a name given as a
string (`select('match')`, `map('nofilter')`): those failed at run time, or passed silently on an
empty list. Each message points at the name's column.
"""

from __future__ import annotations

import textwrap

import pytest


def _scenario(step: str, vars_: str = "") -> str:
    head = "name: Bounds\n" + (f"vars:\n{textwrap.indent(vars_, '  ')}" if vars_ else "")
    return head + "steps:\n  - name: Get\n    request:\n" + textwrap.indent(step, "      ")


@pytest.mark.parametrize(
    ("step", "located", "message", "hint"),
    [
        (
            'url: "{{ base }}/{% if names is definedd %}x{% endif %}"\n',
            (8, "definedd"),
            "unknown test 'definedd'",
            "did you mean 'defined'?",
        ),
        (
            "url: \"{{ base }}/{{ names | reject('nmber') | first }}\"\n",
            (8, "nmber"),
            "unknown test 'nmber', named in reject(...)",
            "did you mean 'number'?",
        ),
        (
            "url: \"{{ base }}/{{ names | selectattr('id', 'match', 'a') | list }}\"\n",
            (8, "match"),
            "unknown test 'match', named in selectattr(...)",
            "Jinja's tests are boolean, callable, defined,",
        ),
        (
            "url: \"{{ base }}/{{ names | rejectattr('id', 'equalto', 1) | map('lenght') | list }}\"\n",
            (8, "lenght"),
            "unknown filter 'lenght', named in map(...)",
            "did you mean 'length'?",
        ),
        (
            'url: "{{ base }}/{% filter uper %}x{% endfilter %}"\n',
            (8, "uper"),
            "unknown filter 'uper'",
            "did you mean 'upper'?",
        ),
        (  # in a block scalar, on its second line: the column is still the name's
            "url: \"{{ base }}\"\njson:\n  ids: |\n    {{ names | map(attribute='id') | list }}\n"
            "    {{ names | selectattr('id', 'defined') | reject('odd') | select('eqto', 1) | list }}\n",
            (12, "eqto"),
            "unknown test 'eqto', named in select(...)",
            "did you mean 'equalto'?",
        ),
    ],
    ids=["test-in-if", "reject", "selectattr", "map-after-rejectattr", "filter-block", "block-scalar-line-2"],
)
def test_validate_refuses_unknown_filters_and_tests_with_their_column(sr, step, located, message, hint):
    sr.write("u.scenario.yaml", _scenario(step, "base: http://127.0.0.1:9\nnames: [a, b]\n"))
    run = sr.main("validate", "u.scenario.yaml")
    assert run.code == 2, run.output
    assert "Traceback" not in run.output
    line, needle = located  # the column is where the name starts on that line of the file
    column = (sr.dir / "u.scenario.yaml").read_text().splitlines()[line - 1].index(needle) + 1
    assert run.err.splitlines()[0] == f"u.scenario.yaml:{line}:{column}: {message}", run.err
    assert f"hint: {hint}" in run.err


def test_known_names_in_strings_and_map_attribute_pass(sr):
    """Known filters and tests named in strings, `map(attribute=...)`: all pass, and the one
    unknown name after them is the one reported."""
    steps = """\
    url: "http://127.0.0.1:9/{{ 64 * 1024 }}/{{ 'ab' * 3 }}/{{ 2 ** 64 }}/{{ 'x' | center(9) }}"
    json:
      a: "{{ names | map(attribute='id') | select('defined') | reject('none') | list }}"
      b: "{{ names | selectattr('id', 'equalto', 1) | rejectattr('id', 'odd') | map('string') | list }}"
      c: "{{ 'upper' is filter and 'defined' is test }}"
      d: "{{ names | select('matches') | list }}"
"""
    sr.write("k.scenario.yaml", _scenario(steps, "names: [{id: 1}]\n"))
    run = sr.main("validate", "k.scenario.yaml")
    assert run.code == 2, run.output
    assert run.err.splitlines()[0] == "k.scenario.yaml:12:36: unknown test 'matches', named in select(...)"
