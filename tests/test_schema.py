"""The published JSON Schema: what `scenario-runner schema` prints is what editors check files with."""

from __future__ import annotations

import io
import json
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from runner.cli import main

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "runner" / "schema" / "scenario.schema.json"


def printed_schema() -> dict:
    out = io.StringIO()
    assert main(["schema"], stdout=out, stderr=io.StringIO()) == 0
    return json.loads(out.getvalue())


def test_schema_command_prints_the_shipped_valid_schema():
    schema = printed_schema()
    assert schema == json.loads(SHIPPED.read_text())
    Draft202012Validator.check_schema(schema)


def test_every_file_of_the_suite_passes_as_an_editor_would_check_it():
    schema = printed_schema()
    scenario = Draft202012Validator(schema)
    fragment = Draft202012Validator({"$defs": schema["$defs"], "$ref": "#/$defs/fragment"})
    files = sorted((ROOT / "scenarios").rglob("*.yaml"))
    assert len(files) >= 4
    for path in files:
        validator = scenario if path.name.endswith(".scenario.yaml") else fragment
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
        assert errors == [], f"{path}: {errors}"
        assert path.read_text().startswith("# yaml-language-server: $schema=")  # the editor modeline


def test_the_schema_flags_what_an_author_gets_wrong_while_typing():
    validator = Draft202012Validator(printed_schema())
    draft = {"name": "x", "steps": [{"name": "a", "request": {"url": "u", "methd": "GET"}, "expect": {"status": 700}}]}
    messages = " | ".join(e.message for e in validator.iter_errors(draft))
    assert "'methd' was unexpected" in messages
    assert "700 is not valid under any of the given schemas" in messages
    assert not list(validator.iter_errors({"name": "x", "steps": [{"include": "f.yaml", "vars": {"a": 1}}]}))


def test_validate_needs_no_network():
    """`validate scenarios/` in a network namespace with no interfaces up: nothing to reach, still valid."""
    import shutil
    import subprocess
    import sys

    import pytest

    if shutil.which("unshare") is None or subprocess.run(["unshare", "-n", "true"]).returncode != 0:
        pytest.skip("needs `unshare -n` (util-linux, root) to take the network away")
    done = subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "runner", "validate", "scenarios/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.endswith(" step(s): valid\n"), done.stdout
    # the same count as with the network: every scenario (and test of a file with tests:) validated
    online = subprocess.run(
        [sys.executable, "-m", "runner", "validate", "scenarios/"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.stdout == online.stdout


def test_every_property_of_the_schema_has_a_description():
    """Issue 13, point 9: an editor's hover explains each key."""
    import json as _json

    schema = _json.loads((ROOT / "runner" / "schema" / "scenario.schema.json").read_text())
    missing: list[str] = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for key, value in (node.get("properties") or {}).items():
                if not (isinstance(value, dict) and value.get("description")):
                    missing.append(f"{path}/properties/{key}")
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{path}/{index}")

    walk(schema, "")
    assert missing == []


def test_every_package_of_the_runner_is_shipped():
    """A package missing from [tool.setuptools] packages works in an editable install and is absent
    from a wheel: every directory of runner/ with an __init__.py must be listed."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "runner").rglob("__init__.py")}
    assert found == listed
