"""The compiled format gate (runner/schema/gate.py) agrees with jsonschema, the authority.

The gate lets valid files skip jsonschema. If it accepted a file jsonschema rejects, the user would
lose the format error and meet a worse one later; if it rejected valid files, every run would be
slow for nothing. Both directions are checked on every YAML file we have and on mutations of them.
"""

from __future__ import annotations

import copy
import json
import random
import re
from typing import Any

import pytest
import yaml
from corpus import ROOT, yaml_files
from jsonschema import Draft202012Validator

from runner import formatcheck
from runner.schema import gate, make_gate

SCHEMA = formatcheck.format_schema()
AUTHORITY = {
    "scenario": Draft202012Validator(SCHEMA),
    "fragment": Draft202012Validator({"$defs": SCHEMA["$defs"], "$ref": "#/$defs/fragment"}),
}
ODD_VALUES: list[Any] = [None, True, False, 0, -1, 1.5, 700, "", "x", "GET", [], ["x"], {}, {"zz": 1}, [{}]]


def gate_accepts(root: str, data: Any) -> bool:
    return formatcheck._gate(None if root == "scenario" else "fragment")(data)


def corpus() -> list[tuple[str, Any]]:
    """Every YAML document of the repository: the suite, the benchmarks, the bad-input cases, the docs."""
    texts = [(str(p.relative_to(ROOT)), p.read_text("utf-8", "replace")) for p in yaml_files()]
    for doc in sorted((ROOT / "docs").glob("*.md")):
        for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", doc.read_text("utf-8"), re.S)):
            texts.append((f"{doc.name} block {i}", block))
    parsed = []
    for name, text in texts:
        try:
            parsed.append((name, yaml.safe_load(text)))
        except yaml.YAMLError:
            continue  # a YAML syntax case: never reaches the format check
    return parsed


def test_the_gate_was_generated_from_the_shipped_schema():
    """A schema edit without `python -m runner.schema.make_gate` fails here (and the runner ignores the gate)."""
    assert formatcheck.schema_digest(formatcheck.schema_text()) == gate.SCHEMA_SHA256


def test_regenerating_the_gate_gives_the_shipped_file():
    pytest.importorskip("fastjsonschema", reason="fastjsonschema is in the test extra: pip install -e '.[test]'")
    assert make_gate.generate() == make_gate.GATE_PATH.read_text("utf-8")


def test_the_gate_accepts_every_valid_file_and_nothing_invalid():
    documents = corpus()
    assert len(documents) >= 60
    valid = 0
    for name, data in documents:
        for root, authority in AUTHORITY.items():
            expected = authority.is_valid(data)
            valid += expected
            assert gate_accepts(root, data) == expected, f"{name} as a {root}: jsonschema says {expected}"
    assert valid >= 8  # the flagship suite, the fragment, the benchmarks and the docs examples


def mutations(data: Any, rng: random.Random, count: int) -> list[Any]:
    """Copies of `data` with one node replaced, one key removed or one unknown key added."""
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*path, index))

    walk(data, ())
    out = []
    for _ in range(count):
        mutated = copy.deepcopy(data)
        path = rng.choice(paths)
        parent = mutated
        for part in path[:-1]:
            parent = parent[part]
        node = parent[path[-1]] if path else mutated
        action = rng.random()
        if action < 0.6 and path:
            parent[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
        elif action < 0.8 and isinstance(node, dict) and node:
            del node[rng.choice(sorted(node))]
        elif isinstance(node, dict):
            key = rng.choice(["zz", "nme", "json", "status", "file", "include", "when", "poll"])
            node[key] = rng.choice(ODD_VALUES)
        elif isinstance(node, list):
            node.append(copy.deepcopy(rng.choice(ODD_VALUES)))
        out.append(mutated)
    return out


def test_the_gate_agrees_with_jsonschema_on_thousands_of_mutations():
    rng = random.Random(20261126)
    seeds = [(name, data) for name, data in corpus() if AUTHORITY["scenario"].is_valid(data)]
    seeds += [(name, data) for name, data in corpus() if AUTHORITY["fragment"].is_valid(data)]
    checked = rejected = 0
    for name, data in seeds:
        plain = json.loads(json.dumps(data, default=str))
        for mutated in mutations(plain, rng, 400):
            for root, authority in AUTHORITY.items():
                expected = authority.is_valid(mutated)
                assert gate_accepts(root, mutated) == expected, (
                    f"mutation of {name} as a {root}: jsonschema says {expected}\n{json.dumps(mutated)[:2000]}"
                )
                checked += 1
                rejected += not expected
    assert checked >= 5000
    assert rejected >= checked // 2  # most mutations break the format: the test is not all happy paths


def test_the_gate_takes_only_lists_as_arrays_as_jsonschema_does():
    scenario = {"name": "x", "steps": ({"name": "a", "request": {"url": "/"}},)}
    assert not AUTHORITY["scenario"].is_valid(scenario)
    assert not gate_accepts("scenario", scenario)
    assert gate_accepts("scenario", {**scenario, "steps": list(scenario["steps"])})


@pytest.mark.parametrize(
    ("schema", "refused"),
    [
        ({"type": "array", "prefixItems": [{"type": "string"}]}, "prefixItems"),
        ({"type": "object", "unevaluatedProperties": False}, "unevaluatedProperties"),
        ({"$ref": "#/$defs/a", "type": "object"}, "sibling"),
        ({"type": "array", "items": [{"type": "string"}]}, "array-form"),
        ({"enum": ["a", 1]}, "only strings"),
        ({"type": "string", "pattern": "^a$"}, "pattern"),
    ],
)
def test_the_generator_refuses_keywords_that_mean_something_else_in_draft_7(schema, refused):
    """fastjsonschema compiles draft 7 and would silently ignore these: the gate would accept too much."""
    with pytest.raises(make_gate.UnsupportedSchema, match=refused):
        make_gate._wrapper({"$defs": {"fragment": {"type": "object"}, "a": {}}, "properties": {"x": schema}})
