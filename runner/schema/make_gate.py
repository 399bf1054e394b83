"""Generates runner/schema/gate.py, the compiled fast path of the format check.

jsonschema needs about 0.5 ms to accept an 8-step scenario, and every file of every run is checked.
fastjsonschema compiles a schema into plain Python that accepts it in about 0.06 ms, but compiling
at run time costs more than it saves for a small suite (its import plus about 10 ms). So the code is
generated once, here, and shipped: the runner imports it without importing fastjsonschema.

The gate only answers "valid or not". Valid files skip jsonschema; anything the gate rejects (or
cannot judge) is checked again by jsonschema, which stays the authority and words the message. So
a gate that rejects too much costs time, never correctness; tests/test_formatgate.py checks that it
never accepts what jsonschema rejects.

    pip install fastjsonschema && python -m runner.schema.make_gate   # after editing the schema
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

from runner.formatcheck import schema_digest, schema_text

GATE_PATH = Path(__file__).with_name("gate.py")
ROOTS = {"scenario": "__scenario_root", "fragment": "fragment"}  # name in gate.py -> its function's $defs entry
_BASE_ID = "urn:scenario-runner:format"
_ANNOTATIONS = {"description", "title", "$comment", "examples", "default", "deprecated", "readOnly", "writeOnly"}
# Keywords whose meaning is the same in draft 7 (what fastjsonschema compiles) and draft 2020-12 (what
# the schema declares and jsonschema checks), and that both libraries implement alike. Anything else
# stops the generator: `prefixItems` or `unevaluatedProperties` would be silently ignored by a draft-7
# compiler, and `enum: [1]` would let `true` through (Python's 1 == True; jsonschema tells them apart),
# so the gate would accept files that jsonschema rejects.
_SUBSCHEMA = {"additionalProperties", "items", "not", "if", "then", "else"}
_SUBSCHEMA_MAPS = {"properties", "$defs"}
_SUBSCHEMA_LISTS = {"anyOf", "allOf", "oneOf"}
_DATA = {
    "type", "required", "minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minProperties", "maxProperties", "$ref", "$schema", "$id",
}  # fmt: skip
_TEXT_ONLY = {"enum", "const"}  # compared with ==, which is only the same for strings


class UnsupportedSchema(SystemExit):
    """The schema uses something the gate could get wrong: regenerate nothing, say what."""


def _portable(node: Any, where: str) -> Any:
    """The schema without annotations (a third of the generated code), refusing keywords that differ."""
    if isinstance(node, bool):
        return node
    if not isinstance(node, dict):
        raise UnsupportedSchema(f"make_gate: {where} is not a schema")
    out: dict[str, Any] = {}
    for key, value in node.items():
        at = f"{where}/{key}"
        if key in _ANNOTATIONS:
            continue
        if key in _SUBSCHEMA:
            if key == "items" and isinstance(value, list):
                raise UnsupportedSchema(f"make_gate: {at}: array-form `items` means different things in draft 7")
            out[key] = _portable(value, at)
        elif key in _SUBSCHEMA_MAPS:
            out[key] = {name: _portable(sub, f"{at}/{name}") for name, sub in value.items()}
        elif key in _SUBSCHEMA_LISTS:
            out[key] = [_portable(sub, f"{at}/{i}") for i, sub in enumerate(value)]
        elif key in _DATA:
            out[key] = copy.deepcopy(value)
        elif key in _TEXT_ONLY:
            if not all(isinstance(v, str) for v in (value if key == "enum" else [value])):
                raise UnsupportedSchema(f"make_gate: {at}: only strings are compared alike by both libraries")
            out[key] = copy.deepcopy(value)
        else:
            raise UnsupportedSchema(f"make_gate: {at}: keyword `{key}` is not known to mean the same in draft 7")
    if "$ref" in out and set(out) - {"$ref", "$defs", "$schema", "$id"}:
        raise UnsupportedSchema(f"make_gate: {where}: `$ref` with sibling keywords, which draft 7 ignores")
    return out


def _wrapper(schema: dict[str, Any]) -> dict[str, Any]:
    """One schema in which each root is a `$defs` entry, so each becomes a named function.

    The format uses only keywords whose meaning is the same in draft 7 (which fastjsonschema
    compiles) and in draft 2020-12 (which the schema declares); tests/test_formatgate.py checks the
    two agree on every corpus file and on thousands of mutations.
    """
    defs = {name: _portable(sub, f"#/$defs/{name}") for name, sub in schema["$defs"].items()}
    defs["__scenario_root"] = _portable({k: v for k, v in schema.items() if k not in ("$defs", "$schema", "$id")}, "#")
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": _BASE_ID,
        "$defs": defs,
        "anyOf": [{"$ref": "#/$defs/__scenario_root"}, {"$ref": "#/$defs/fragment"}],
    }


def _function_name(code: str, definition: str) -> str:
    suffix = "___defs_" + re.sub(r"\W", "_", definition)
    names: list[str] = [n for n in re.findall(r"^def (\w+)\(", code, re.M) if n.endswith(suffix)]
    if len(names) != 1:
        raise SystemExit(f"make_gate: expected one generated function for {definition!r}, found {names}")
    return names[0]


_NAMED_CALL = re.compile(r'custom_formats, \(name_prefix or "data"\) \+ "[^"\n]*"(?:\.format\(\*\*locals\(\)\))?\)')


def generate() -> str:
    try:
        import fastjsonschema
    except ImportError:
        raise SystemExit("make_gate needs fastjsonschema: pip install fastjsonschema") from None

    text = schema_text()
    code: str = fastjsonschema.compile_to_code(
        _wrapper(json.loads(text)), use_default=False, use_formats=False, detailed_exceptions=False
    )
    imports = re.compile(r"^from fastjsonschema import .*$", re.M)
    if len(imports.findall(code)) != 1:
        raise SystemExit("make_gate: the generated code no longer has one `from fastjsonschema import` line")
    code = imports.sub(
        "class JsonSchemaValueException(ValueError):\n"
        '    """Raised by the generated checks; only its type matters here."""\n\n\n'
        "JsonSchemaValuesException = JsonSchemaValueException",
        code,
    )
    code = re.sub(r"^VERSION = .*\n", "", code, flags=re.M)
    # fastjsonschema takes a tuple for an array; jsonschema (and YAML) only a list.
    code = code.replace("(list, tuple)", "(list)")
    if "tuple" in code:
        raise SystemExit("make_gate: the generated code still accepts tuples somewhere; check it")
    # Each call passes the callee the name of the value it checks, built before the call: a string
    # concatenation, and for an item of a mapping or list `.format(**locals())`, a dict of every
    # local variable (issue 12: a third of the gate's time on a valid file). The name only words
    # the exception, which the gate never shows, so the callee gets none (it says "data").
    code, calls = _NAMED_CALL.subn("custom_formats, None)", code)
    if not calls or "custom_formats, (name_prefix" in code:
        raise SystemExit("make_gate: the generated calls no longer pass the name as expected; check them")
    aliases = "\n".join(f"{name} = {_function_name(code, entry)}" for name, entry in ROOTS.items())
    header = (
        "# Generated by `python -m runner.schema.make_gate` with fastjsonschema "
        f"{fastjsonschema.VERSION}; do not edit.\n"
        "# It answers only valid/invalid; see runner/schema/make_gate.py for why it exists.\n"
        "# mypy: ignore-errors\n"
        "# ruff: noqa\n"
        f'SCHEMA_SHA256 = "{schema_digest(text)}"\n'
    )
    return f"{header}{code.rstrip()}\n\n\n# Entry points, by root.\n{aliases}\n"


def main() -> int:
    GATE_PATH.write_text(generate(), "utf-8")
    print(f"wrote {GATE_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
