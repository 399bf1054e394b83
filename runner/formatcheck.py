"""Checks a parsed scenario or fragment against the format's JSON Schema, with located messages.

The same schema is what `scenario-runner schema` prints and what editors use for completion, so the
format is defined once. jsonschema's raw messages are written for schema authors; this module turns
the first error (in file order) into a sentence for a QA engineer, with "did you mean" for typos.
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from .errors import Location, ScenarioFormatError
from .yamlsource import LocDict, LocList, location_of

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


@cache
def format_schema() -> dict[str, Any]:
    text = resources.files("runner").joinpath("schema/scenario.schema.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


@cache
def _validator(definition: str | None) -> Draft202012Validator:
    schema = format_schema()
    if definition is not None:
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    return Draft202012Validator(schema)


def describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) < 40 else "a string"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return type(value).__name__


def _where(path: list[Any]) -> str:
    """'expect of step 3' from ['steps', 2, 'expect']: how a user would name the place."""
    if not path:
        return "the file"
    parts: list[str] = []
    i = 0
    while i < len(path):
        key = path[i]
        if key in ("steps", "finally") and i + 1 < len(path) and isinstance(path[i + 1], int):
            parts.append(f"{'finally step' if key == 'finally' else 'step'} {path[i + 1] + 1}")
            i += 2
            continue
        parts.append(f"item {key + 1}" if isinstance(key, int) else f"'{key}'")
        i += 1
    return " > ".join(parts)


def _walk(data: Any, path: list[Any]) -> tuple[Any, Any]:
    """The container holding the value at `path`, and that value."""
    parent = None
    node = data
    for key in path:
        parent = node
        node = node[key]
    return parent, node


def _first_error(errors: list[ValidationError], data: Any, fallback: Location) -> ValidationError:
    def position(err: ValidationError) -> tuple[int, int, int]:
        loc = _location(err, data, fallback)
        return (loc.line, loc.col, -len(err.absolute_path))

    return min(errors, key=position)


def _location(err: ValidationError, data: Any, fallback: Location) -> Location:
    path = list(err.absolute_path)
    parent, node = _walk(data, path)
    if err.validator == "additionalProperties" and isinstance(node, LocDict):
        extra = _unknown_keys(err, node)
        if extra:
            return node.key_loc(extra[0])
    if err.validator == "required" and isinstance(node, LocDict):
        return node.loc
    if not path:
        return getattr(node, "loc", fallback)
    if isinstance(parent, LocDict) and isinstance(path[-1], str) and err.validator == "type":
        return parent.value_loc(path[-1])
    return location_of(parent, path[-1], getattr(parent, "loc", fallback))


def _unknown_keys(err: ValidationError, node: dict[str, Any]) -> list[str]:
    allowed = err.schema.get("properties", {}) if isinstance(err.schema, dict) else {}
    return [k for k in node if k not in allowed]


def _message(err: ValidationError, data: Any) -> tuple[str, str | None]:
    path = list(err.absolute_path)
    _, node = _walk(data, path)
    where = _where(path)
    if err.validator == "additionalProperties":
        schema = err.schema if isinstance(err.schema, dict) else {}
        allowed = sorted(schema.get("properties", {}))
        key = _unknown_keys(err, node)[0]
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint: str | None = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(allowed)}"
        return f"unknown key '{key}' in {where}", hint
    if err.validator == "required":
        missing = [k for k in err.validator_value if k not in node]
        return f"missing required key '{missing[0]}' in {where}", None
    if err.validator == "type":
        wanted = err.validator_value
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        expected = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        hint = None
        if "object" in names and isinstance(node, list):
            hint = "remove the leading '- ': this takes keys, not list items"
        elif "array" in names and isinstance(node, dict):
            hint = "start each item with '- '"
        elif "string" in names and isinstance(node, dict) and len(node) == 1:
            hint = "a value starting with '{{' must be quoted in YAML: \"{{ ... }}\""
        return f"{where} must be {expected}, not {describe(node)}", hint
    if err.validator == "enum":
        options = ", ".join(str(v) for v in err.validator_value)
        close = difflib.get_close_matches(str(node).upper(), [str(v) for v in err.validator_value], 1)
        hint = f"did you mean '{close[0]}'?" if close else f"one of: {options}"
        return f"{where} is {describe(node)}, which is not allowed", hint
    if err.validator == "minItems":
        return f"{where} must not be empty", None
    if err.validator == "minLength":
        return f"{where} must not be empty", None
    if err.validator in ("anyOf", "oneOf"):
        if path and path[-1] == "status":
            return (
                f"{where} must be a status code (100-599), a class such as '2xx', a template, "
                f"or a list of them; got {describe(node)}",
                None,
            )
        return f"{where} has an invalid value: {describe(node)}", "see docs/format.md"
    if err.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{where} is out of range: {err.message}", None
    if err.validator == "minProperties":
        return f"{where} must not be empty", None
    return f"{where}: {err.message}", None


def check_structure(data: Any, fallback: Location, definition: str | None = None) -> None:
    """Raise a ScenarioFormatError for the first structural problem, in file order."""
    if data is None:
        what = "fragment" if definition == "fragment" else "scenario"
        raise ScenarioFormatError(
            "the file is empty",
            fallback,
            f"a {what} needs at least `steps:`" + ("" if what == "fragment" else " and `name:`"),
        )
    if not isinstance(data, LocDict):
        raise ScenarioFormatError(
            f"the file must hold a mapping (keys such as name: and steps:), not {describe(data)}",
            getattr(data, "loc", Location(fallback.path, 1, 1)),
            "see docs/format.md for the shape of a scenario file",
        )
    errors = list(_validator(definition).iter_errors(data))
    if not errors:
        return
    err = _first_error(errors, data, fallback)
    message, hint = _message(err, data)
    raise ScenarioFormatError(message, _location(err, data, fallback), hint)


__all__ = ["LocDict", "LocList", "check_structure", "describe", "format_schema"]
