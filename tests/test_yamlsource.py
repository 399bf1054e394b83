"""The direct builder of located YAML gives exactly what PyYAML's constructor gives, locations included.

libyaml + the direct builder load every file; PyYAML's own constructor is kept for what the builder
leaves to it (merge keys, explicit tags, recursive aliases). Both must agree value for value and
location for location, or error messages would point at the wrong line.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from corpus import yaml_files

from runner import yamlsource
from runner.errors import ScenarioFormatError
from runner.yamllimits import MAX_DEPTH
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


# --- the event builder (issue 12): what `load_yaml` tries first --------------------------------


def from_events(text: str) -> Any:
    loader = yamlsource._FastLoader(text)
    loader.source_path = "f.yaml"
    try:
        return loader.build_from_events()
    finally:
        loader.dispose()


def test_the_event_builder_gives_what_composing_gives_on_every_file():
    built = 0
    for path in yaml_files():
        text = path.read_text("utf-8", "replace")
        try:
            composed = located(load_with(yamlsource._FastLoader, text))
        except Exception:  # a bad-input case: the event builder must not build it either
            with pytest.raises((yamlsource._Unusual, yaml.YAMLError)):
                from_events(text)
            continue
        try:
            fast = from_events(text)
        except yamlsource._Unusual:  # left to composing: load_yaml gives `composed`
            continue
        assert located(fast) == composed, path
        built += 1
    assert built >= 40


BUILT_FROM_EVENTS = {
    "scalars": EDGE_CASES["scalars"] + "j: -.inf\nk: 0\nl: 007\nm: +12\nn: 1_000\no: 12:30\np: 99999999999999999999\n",
    "implicit types": "a: [yes, No, on, OFF, y, n, NULL, Null, '', ~, 0o17, 017, 1_000, -.inf, .NaN, 1e3, x:y]\n",
    "non-string keys": EDGE_CASES["non-string keys"] + "1.5: f\n2026-01-02: d\n",
    "flow and nesting": EDGE_CASES["flow and nesting"] + "deep: [[[[{a: [1, {b: c}]}]]]]\n",
    "block scalars": "a: |\n  one\n  two\nb: >-\n  folded\n  text\nc: |+\n  kept\n\nd: plain\n  continued\n",
    "quoted": "'a b': \"c\\td\"\n\"e\": 'it''s'\nf: \"\\u00e9\\x41\"\n",
    "unicode": 'clé: « valeur »\nemoji: "\U0001f600"\n',
    "empty": "",
    "comments only": "# nothing\n",
    "explicit document": "---\na: 1\n...\n",
    "null root": "~\n",
    "scalar root": "just text\n",
    "top-level list": EDGE_CASES["top-level list"],
    "empty containers": "a: {}\nb: []\nc:\nd: [{}, []]\n",
}


@pytest.mark.parametrize("text", BUILT_FROM_EVENTS.values(), ids=BUILT_FROM_EVENTS.keys())
def test_the_event_builder_gives_the_same_values_and_locations(text):
    assert outcome_of(from_events, text) == outcome(yamlsource._FastLoader, text)


LEFT_TO_COMPOSING = {
    "anchor and alias": EDGE_CASES["aliases"],
    "anchor only": "a: &x 1\n",
    "merge key": EDGE_CASES["merge key"],
    "explicit tag": "a: !!str 12\n",
    "non-specific tag": "a: ! 12\n",
    "tag on a mapping": "a: !!map {b: 1}\n",
    "complex key": "? [a, b]\n: v\n",
    "mapping as key": "? {a: 1}\n: v\n",
    "duplicate key": "name: x\nsteps: []\nname: y\n",
    "value tag": "a: [=]\n",
    "second document": "a: 1\n---\nb: 2\n",
    "too deep": "a: " + "[" * 101 + "]" * 101 + "\n",
}


@pytest.mark.parametrize("text", LEFT_TO_COMPOSING.values(), ids=LEFT_TO_COMPOSING.keys())
def test_what_the_event_builder_does_not_handle_is_composed_as_before(text, monkeypatch):
    with pytest.raises(yamlsource._Unusual):
        from_events(text)
    parsed = outcome_of(lambda t: yamlsource._parse(t, "f.yaml"), text)
    monkeypatch.setattr(yamlsource._Direct, "build_from_events", _never)  # _parse as it was before
    assert parsed == outcome_of(lambda t: yamlsource._parse(t, "f.yaml"), text)


def _never(self: Any) -> Any:
    raise yamlsource._Unusual


def test_nesting_up_to_the_limit_is_built_from_events():
    text = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    assert located(from_events(text)) == located(load_with(yamlsource._FastLoader, text))


def test_a_libyaml_error_is_worded_by_the_pure_python_parser_as_before():
    with pytest.raises(ScenarioFormatError) as err:
        yamlsource._parse("a: [1, 2\nb: 3\n", "f.yaml")
    assert "never closed" in err.value.message
    assert err.value.location[1:] == (1, 4)


def outcome_of(load: Any, text: str) -> Any:
    try:
        return located(load(text))
    except Exception as exc:
        return type(exc).__name__, str(exc).split(":\n")[0]


def test_only_a_file_without_inf_or_nan_is_marked_all_finite(tmp_path):
    plain, inf = tmp_path / "a.yaml", tmp_path / "b.yaml"
    plain.write_text("a: 1.5\nb: [2, x]\n")
    inf.write_text("a: 1.5\nb: [2, {c: -.inf}]\n")
    assert yamlsource.load_yaml(str(plain)).all_finite is True
    assert getattr(yamlsource.load_yaml(str(inf)), "all_finite", False) is False
    composed = load_with(yamlsource._FastLoader, "a: 1.5\n")  # any other path leaves it unset: walked
    assert getattr(composed, "all_finite", False) is False


def test_a_file_larger_than_fstat_says_is_read_whole():
    """/proc files have size 0 to fstat: read_text reads them to their end (up to the limit)."""
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        expected = fh.read()
    assert len(expected) > 0
    assert yamlsource.read_text("/proc/self/mountinfo") == expected


def test_a_file_just_over_the_limit_is_refused_and_one_at_it_is_read(tmp_path):
    at, over = tmp_path / "at.yaml", tmp_path / "over.yaml"
    at.write_bytes(b"#" * yamlsource.MAX_FILE_BYTES)
    over.write_bytes(b"#" * (yamlsource.MAX_FILE_BYTES + 1))
    assert len(yamlsource.read_text(str(at))) == yamlsource.MAX_FILE_BYTES
    with pytest.raises(ScenarioFormatError, match="file is too large"):
        yamlsource.read_text(str(over))
