"""Checks a parsed scenario or fragment against the format's JSON Schema, with located messages.

The same schema is what `scenario-runner schema` prints and what editors use for completion, so the
format is defined once. jsonschema's raw messages are written for schema authors; this module turns
the first error (in file order) into a sentence for a QA engineer, with "did you mean" for typos.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # jsonschema is imported only when a file fails the compiled gate
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
    "boolean": "true/false",
    "null": "null",
}


@cache
def schema_text() -> str:
    return resources.files("runner").joinpath("schema/scenario.schema.json").read_text("utf-8")


def schema_digest(text: str) -> str:
    """Ties runner/schema/gate.py to the schema text it was generated from."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@cache
def format_schema() -> dict[str, Any]:
    return json.loads(schema_text())  # type: ignore[no-any-return]


@cache
def _validator(definition: str | None) -> Draft202012Validator:
    """A validator of the schema with every `$ref` inlined (the format has no recursion).

    jsonschema resolves a `$ref` on every visit; with the references inlined once, checking a file
    costs about half (0.5 instead of 0.9 ms for the tutorial), and every file of a run is checked.
    """
    from jsonschema import Draft202012Validator

    schema = format_schema()
    root = schema["$defs"][definition] if definition is not None else schema
    return Draft202012Validator(_inline_refs(root, schema["$defs"]))


@cache
def _gate(definition: str | None) -> Callable[[Any], bool]:
    """The compiled fast path (runner/schema/gate.py): True only for data that is surely valid.

    It is used only while it was generated from the schema as shipped; otherwise (someone edited the
    schema and did not regenerate) every file goes through jsonschema, slower but still right.
    """
    from .schema import gate

    if schema_digest(schema_text()) != gate.SCHEMA_SHA256:
        return lambda data: False
    check: Callable[[Any], object] = gate.fragment if definition == "fragment" else gate.scenario

    def accepts(data: Any) -> bool:
        try:
            check(data)
        except Exception:  # invalid, or data the generated code cannot judge: jsonschema decides
            return False
        return True

    return accepts


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = _inline_refs(defs[ref[len("#/$defs/") :]], defs)
            return {**target, **{k: _inline_refs(v, defs) for k, v in node.items() if k != "$ref"}}
        return {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


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


_LISTS = {
    "steps": "step",
    "finally": "finally step",
    "setup": "setup step",
    "teardown": "teardown step",
    "tests": "test",
}


def _where(path: list[Any]) -> str:
    """'expect of step 3' from ['steps', 2, 'expect']: how a user would name the place."""
    if not path:
        return "the file"
    parts: list[str] = []
    i = 0
    while i < len(path):
        key = path[i]
        if key in _LISTS and i + 1 < len(path) and isinstance(path[i + 1], int):
            parts.append(f"{_LISTS[key]} {path[i + 1] + 1}")
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
    """The error a reader meets first. A missing key counts as found at the end of its mapping, so
    `stpes:` is reported as a typo of `steps` rather than as "missing 'steps'"."""

    def position(err: ValidationError) -> tuple[int, int, int, int]:
        if err.validator == "required":
            _, node = _walk(data, list(err.absolute_path))
            if isinstance(node, LocDict) and node:
                last = max((node.key_loc(k) for k in node), key=lambda loc: (loc.line, loc.col))
                return (last.line, last.col, 1, 0)
        loc = _location(err, data, fallback)
        return (loc.line, loc.col, 0, -len(err.absolute_path))

    return min(errors, key=position)


def _location(err: ValidationError, data: Any, fallback: Location) -> Location:
    path = list(err.absolute_path)
    parent, node = _walk(data, path)
    if err.validator == "additionalProperties" and isinstance(node, LocDict):
        extra = _unknown_keys(err, node)
        if extra:
            return node.key_loc(extra[0])
    if err.validator == "required" and isinstance(node, LocDict):
        if isinstance(parent, LocDict) and path and isinstance(path[-1], str):
            return parent.key_loc(path[-1])  # `request:` rather than its first key
        return node.loc
    if not path:
        return getattr(node, "loc", fallback)
    if isinstance(parent, LocDict) and isinstance(path[-1], str) and err.validator == "type":
        return parent.value_loc(path[-1])
    return location_of(parent, path[-1], getattr(parent, "loc", fallback))


def _unknown_keys(err: ValidationError, node: dict[str, Any]) -> list[str]:
    allowed = err.schema.get("properties", {}) if isinstance(err.schema, dict) else {}
    return [k for k in node if k not in allowed]


_REQUIRED_HINTS = {
    "name": "add `name: ...`: the name is what the console and the JUnit report show",
    "steps": "add `steps:` followed by a list of steps, each starting with '- name: ...'",
    "request": "a step needs `request:` with at least `url: ...`",
    "url": 'add `url: ...`, e.g. url: "{{ base_url }}/v2/images"',
    "until": 'add `until: "{{ ... }}"`, the condition that ends the polling (or the repeat)',
}
_EMPTY_HINTS = {
    "name": "give it a name: the name is what the console and the JUnit report show",
    "steps": "give at least one step, starting with '- name: ...'",
}
_NUMBER_HINTS = {
    "timeout": "a number of seconds without quotes, e.g. timeout: 10",
    "interval": "a number of seconds without quotes, e.g. interval: 2",
    "max_body": "a number of bytes, e.g. max_body: 1048576",
}
_RANGE_HINTS = {
    "max": "a number of iterations from 1 to 100000, e.g. max: 50",
    "max_items": "a number of items from 1 to 100000, e.g. max_items: 5000",
}
# Names other tools use for a key of the format (predicates mostly): "did you mean" says ours.
_ALIASES = {
    "gte": "ge",
    "lte": "le",
    "greater_than": "gt",
    "less_than": "lt",
    "equals": "eq",
    "equal": "eq",
    "not_equals": "ne",
    "length": "count",
    "len": "count",
    "in": "one_of",
    "any_of": "one_of",
    "regex": "matches",
    "startswith": "starts_with",
    "endswith": "ends_with",
    "has": "contains",
    "contains_all": "includes",
    "approx": "tolerance",
    "missing": "absent",
}
_STATUS_HINT = "e.g. status: 200, status: [200, 204] or status: 2xx"


def _join_or(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _keys_hint(schema: Any) -> str | None:
    keys = list(schema.get("properties", {})) if isinstance(schema, dict) else []
    if not keys:
        return None
    shown = ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "")
    return f"write its keys on the following lines, indented: {shown}"


def _message(err: ValidationError, data: Any) -> tuple[str, str | None]:
    path = list(err.absolute_path)
    _, node = _walk(data, path)
    where = _where(path)
    key = path[-1] if path and isinstance(path[-1], str) else None
    if err.validator == "additionalProperties":
        schema = err.schema if isinstance(err.schema, dict) else {}
        allowed = sorted(schema.get("properties", {}))
        unknown = _unknown_keys(err, node)[0]
        alias = _ALIASES.get(unknown)
        close = [alias] if alias in allowed else difflib.get_close_matches(unknown, allowed, n=1, cutoff=0.6)
        hint: str | None = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(allowed)}"
        return f"unknown key '{unknown}' in {where}", hint
    if err.validator == "required":
        missing = [k for k in err.validator_value if k not in node]
        return f"missing required key '{missing[0]}' in {where}", _REQUIRED_HINTS.get(missing[0])
    if err.validator == "type":
        wanted = err.validator_value
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        expected = _join_or([_TYPE_NAMES.get(n, n) for n in names])
        hint = None
        if "object" in names and isinstance(node, list):
            hint = "remove the leading '- ': this takes keys, not list items"
        elif "object" in names and not isinstance(node, dict):
            hint = _keys_hint(err.schema)
        elif "array" in names and isinstance(node, dict):
            hint = "start each item with '- '"
        elif "string" in names and isinstance(node, dict) and len(node) == 1:
            hint = "a value starting with '{{' must be quoted in YAML: \"{{ ... }}\""
        elif ("number" in names or "integer" in names) and isinstance(node, str):
            hint = _NUMBER_HINTS.get(key or "", "write a number without quotes")
        elif "string" in names and key in ("md5", "sha256", "sha512"):
            hint = f'quote the hex digest, or compute it: {key}: "{{{{ {key}(image_file) }}}}"'
        elif "string" in names and isinstance(node, list) and "headers" in path:
            hint = 'write several values as one string, e.g. "application/json, text/plain"'
        return f"{where} must be {expected}, not {describe(node)}", hint
    if err.validator == "enum":
        options = [str(v) for v in err.validator_value]
        if key == "method":
            options = [o for o in options if o.isupper()]  # lower case is accepted too; list each once
            close = difflib.get_close_matches(str(node).upper(), options, n=1, cutoff=0.75)
            hint = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(options)}"
            return f"{where} is {describe(node)}, which is not an HTTP method the runner sends", hint
        close = difflib.get_close_matches(str(node), options, 1)
        hint = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(options)}"
        return f"{where} is {describe(node)}, which is not allowed", hint
    if key == "between" and err.validator in ("minItems", "maxItems"):
        count = len(node) if isinstance(node, list) else 0
        return f"{where} must hold two numbers, not {count}", "write between: [low, high], both included"
    if err.validator in ("minItems", "minLength", "minProperties"):
        return f"{where} must not be empty", _EMPTY_HINTS.get(key or "")
    if err.validator in ("anyOf", "oneOf"):
        if key == "status":
            if isinstance(node, int) and not isinstance(node, bool):
                return f"{where} is {node}, which is not an HTTP status code (100-599)", _STATUS_HINT
            return (
                f"{where} must be a status code (100-599), a class such as '2xx', a template, "
                f"or a list of them; got {describe(node)}",
                _STATUS_HINT,
            )
        return f"{where} has an invalid value: {describe(node)}", _anyof_hint(err)
    if err.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{where} is out of range: {err.message}", _RANGE_HINTS.get(key or "")
    return f"{where}: {err.message}", None


def _narrow(err: ValidationError) -> ValidationError:
    """For `fixtures:` (a list or a mapping of a path or {use, vars}), `skip:` (a reason, an
    {if, reason} or a list of them) and predicate mappings under `expect`, the error of the form
    the value has: "unknown key 'var'" rather than "'fixtures' has an invalid value"."""
    path = list(err.absolute_path)
    narrowed = path[:1] == ["fixtures"] or "skip" in path
    # a predicate mapping (`where`, a header's, `count`, `size`): the error inside the mapping form
    narrowed = narrowed or ("expect" in path and isinstance(err.instance, dict))
    while narrowed and err.validator in ("anyOf", "oneOf") and err.context:
        deeper = [e for e in err.context if not (e.validator == "type" and not e.relative_path)]
        if not deeper:
            break
        err = min(deeper, key=lambda e: -len(e.absolute_path))
    return err


def _anyof_hint(err: ValidationError) -> str | None:
    kinds = []
    for option in err.validator_value if isinstance(err.validator_value, list) else []:
        kind = option.get("type") if isinstance(option, dict) else None
        for name in [kind] if isinstance(kind, str) else list(kind or []):
            if _TYPE_NAMES.get(name) and _TYPE_NAMES[name] not in kinds:
                kinds.append(_TYPE_NAMES[name])
    return f"it takes {_join_or(kinds)}" if kinds else None


def check_structure(data: Any, fallback: Location, definition: str | None = None) -> None:
    """Raise a ScenarioFormatError for the first structural problem, in file order."""
    what = "fragment" if definition == "fragment" else "scenario"
    needs = "`steps:`" if what == "fragment" else "`name:` and `steps:`"
    if data is None:
        raise ScenarioFormatError(_empty_message(fallback.path), fallback, f"a {what} needs at least {needs}")
    if not isinstance(data, LocDict):
        hint = f"a {what} file is one mapping with at least {needs}"
        if isinstance(data, list):
            hint = f"remove the leading '- ': {hint}"
        raise ScenarioFormatError(
            f"the file must hold a mapping of keys such as {needs}, not {describe(data)}",
            getattr(data, "loc", Location(fallback.path, 1, 1)),
            hint,
        )
    if _gate(definition)(data):
        _check_finite(data, definition)
        return
    errors = list(_validator(definition).iter_errors(data))
    if not errors:
        _check_finite(data, definition)
        return
    err = _narrow(_first_error(errors, data, fallback))
    message, detail = _message(err, data)
    raise ScenarioFormatError(message, _location(err, data, fallback), detail)


@cache
def _number_paths(definition: str | None) -> tuple[tuple[str, ...], ...]:
    """Where the format takes a number (timeouts, intervals, sizes), from the schema: ('steps', '*',
    'poll', 'timeout'), ... with '*' for any item or key. JSON Schema has no way to say "finite",
    and YAML's .inf and .nan are numbers, so this is checked next to it, for every number the
    format takes, present and future."""
    schema = format_schema()
    root = schema["$defs"][definition] if definition is not None else schema
    found: set[tuple[str, ...]] = set()

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            walk(schema["$defs"][ref[len("#/$defs/") :]], path)
        if node.get("type") in ("number", "integer"):
            found.add(path)
        for key, sub in node.get("properties", {}).items():
            walk(sub, (*path, key))
        for key in ("additionalProperties", "items"):
            walk(node.get(key), (*path, "*"))
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(key, []):
                walk(sub, path)
        for key in ("then", "else"):  # both branches: their keys do not overlap in the format
            walk(node.get(key), path)

    walk(root, ())
    return tuple(sorted(found))


_YAML_SPELLING = {"inf": ".inf", "-inf": "-.inf", "nan": ".nan"}


def _check_finite(data: Any, definition: str | None) -> None:
    """Refuse .inf/.nan where the format takes a number: `timeout: .nan` would pass the schema and
    then fail the run with an internal error (or wait forever, for .inf)."""
    if getattr(data, "all_finite", False) or not _has_non_finite(data):  # the usual case: no walk per number path
        return
    bad = [
        (location_of(parent, key, getattr(parent, "loc", Location("<string>"))), where, parent[key])
        for path in _number_paths(definition)
        for parent, key, where in _places(data, path, [])
        if isinstance(parent[key], float) and not math.isfinite(parent[key])
    ]
    if bad:
        loc, where, value = min(bad, key=lambda item: (item[0].line, item[0].col))  # the first in the file
        raise ScenarioFormatError(
            f"{_where(where)} must be a finite number, not {_YAML_SPELLING[str(value)]}",
            loc,
            _NUMBER_HINTS.get(str(where[-1]), "write a number such as 10"),
        )


def _has_non_finite(node: Any) -> bool:
    """Walked with a stack, texts skipped first: every valid file goes through here (issue 12)."""
    stack = [node]
    pop, push = stack.pop, stack.extend
    while stack:
        value = pop()
        if type(value) is str:
            continue
        if isinstance(value, float):
            if not math.isfinite(value):
                return True
        elif isinstance(value, dict):
            push(value.values())
        elif isinstance(value, list):
            push(value)
    return False


def _places(node: Any, path: tuple[str, ...], where: list[Any]) -> list[tuple[Any, Any, list[Any]]]:
    """(container, key, path so far) of each value that `path` reaches in `node`."""
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(node, list):
            keys: list[Any] = list(range(len(node)))
        elif isinstance(node, dict):
            keys = list(node)
        else:
            return []
    elif isinstance(node, dict) and head in node:
        keys = [head]
    else:
        return []
    if not rest:
        return [(node, key, [*where, key]) for key in keys]
    return [place for key in keys for place in _places(node[key], rest, [*where, key])]


def _empty_message(path: str) -> str:
    """'empty', or 'only comments': the second is usually a scenario commented out by mistake."""
    try:
        text = Path(path).read_text("utf-8", "replace")
    except OSError:
        return "the file is empty"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and all(line.startswith("#") for line in lines):
        return "the file holds only comments"
    return "the file is empty" if not lines else "the file holds no value (null)"


__all__ = ["LocDict", "LocList", "check_structure", "describe", "format_schema"]
