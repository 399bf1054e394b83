"""The direct builder of located YAML gives exactly what PyYAML's constructor gives, locations included.

libyaml + the direct builder load every file; PyYAML's own constructor is kept for what the builder
leaves to it (merge keys, explicit tags, recursive aliases). Both must agree value for value and
location for location, or error messages would point at the wrong line.
"""

from __future__ import annotations

from typing import Any

import pytest
from corpus import yaml_files

from runner import yamlsource
from runner.errors import ScenarioFormatError
from runner.yamlsource import LocDict, LocList


def located(value: Any) -> Any:
    """A plain structure holding every value and every location, to compare two loads in one `==`."""
    if isinstance(value, LocDict):
        return (
            "map",
            value.loc,
            [(k, value.key_locs[k], value.value_locs[k], located(v)) for k, v in value.items()],
        )
    if isinstance(value, LocList):
        return ("seq", value.loc, [(value.item_locs[i], located(v)) for i, v in enumerate(value)])
    return (type(value).__name__, value)


def load_with(loader_class: type, text: str) -> Any:
    loader = loader_class(text)
    loader.source_path = "f.yaml"
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def test_every_file_loads_the_same_through_both_paths():
    compared = 0
    for path in yaml_files():
        text = path.read_text("utf-8", "replace")
        try:
            slow = load_with(yamlsource._Loader, text)
        except Exception as exc:  # a bad-input case: the fast path must fail too
            with pytest.raises(type(exc)):
                load_with(yamlsource._FastLoader, text)
            continue
        assert located(load_with(yamlsource._FastLoader, text)) == located(slow), path
        compared += 1
    assert compared >= 40


EDGE_CASES = {
    "scalars": "a: 1\nb: 1.5\nc: true\nd: null\ne: ~\nf: 2026-11-26\ng: '007'\nh: 0x1F\ni: .inf\n",
    "implicit types": (
        "a: [yes, No, on, OFF, y, n, NULL, Null, '', ~, 0o17, 017, 1_000]\n"
        "n: [-.inf, .NaN, +1, -0x1f, 1e3, 1.0e+3, 6.8523015e+5]\n"
        "b: ['<<', 2001-12-14t21:59:43.10-05:00, 2002-12-14, 12:30:45, '2026-11-26', !!str true, \"0\", x:y]\n"
        "c: {? [complex, key] : v, 3: three}\n"
    ),
    "non-string keys": "1: one\ntrue: yes\nnull: nothing\n",
    "aliases": "base: &b {x: 1, y: [1, 2]}\none: *b\ntwo: *b\nlist: &l [a, b]\nagain: *l\n",
    "merge key": "base: &b {x: 1, y: 2}\nmine:\n  <<: *b\n  y: 3\n",
    "explicit tags": "a: !!str 12\nb: !!set {x, y}\nc: !!binary aGk=\n",
    "flow and nesting": "steps: [{name: a, request: {url: /x}}, {name: b}]\n",
    "empty": "",
    "top-level list": "- a\n- {b: 1}\n",
}


@pytest.mark.parametrize("text", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_edge_cases_load_the_same(text):
    assert outcome(yamlsource._FastLoader, text) == outcome(yamlsource._Loader, text)


def test_a_value_pyyaml_cannot_construct_fails_the_same_way_on_both_paths():
    text = "a: [=]\n"  # `=` resolves to the `value` tag, which the safe loader has no constructor for
    assert outcome(yamlsource._FastLoader, text) == outcome(yamlsource._Loader, text)
    assert "could not determine a constructor" in outcome(yamlsource._FastLoader, text)[1]


def outcome(loader_class: type, text: str) -> Any:
    try:
        return located(load_with(loader_class, text))
    except Exception as exc:  # libyaml's marks carry no source snippet: compare up to the position
        return type(exc).__name__, str(exc).split(":\n")[0]


def test_an_alias_is_the_same_object_as_its_anchor():
    data = load_with(yamlsource._FastLoader, EDGE_CASES["aliases"])
    assert data["one"] is data["base"] is data["two"]
    assert data["again"] is data["list"]


def test_a_recursive_alias_is_left_to_pyyaml_which_refuses_it(tmp_path):
    path = tmp_path / "r.scenario.yaml"
    path.write_text("a: &a\n  self: *a\n")
    with pytest.raises(ScenarioFormatError) as err:
        yamlsource.load_yaml(str(path))
    assert "recursive" in err.value.message
    assert err.value.location[1:] == (1, 4)


def test_duplicate_keys_give_the_same_error_on_both_paths():
    text = "name: x\nsteps: []\nname: y\n"
    messages = []
    for loader_class in (yamlsource._FastLoader, yamlsource._Loader):
        with pytest.raises(ScenarioFormatError) as err:
            load_with(loader_class, text)
        messages.append((err.value.message, err.value.location))
    assert messages[0] == messages[1]
    assert "duplicate key 'name' (first defined at line 1)" in messages[0][0]
    assert messages[0][1].line == 3
