"""JSON Schema files named by `expect.schema`: parsed and checked once, with located errors.

A schema file is the user's input too: a syntax error or an invalid keyword points into the schema
file itself (and names the step that uses it). `$ref` to other files resolves next to the schema,
inside the run's allowed directories, never over the network. The draft comes from `$schema`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import Location, ScenarioFormatError, UserError, relative_display
from .files import FilePolicy
from .formatcheck import describe
from .yamlsource import load_yaml, location_of, read_text


def build_validator(path: Path, loc: Location, policy: FilePolicy) -> Any:
    """Parse and check a schema file once; its errors point into it, naming the step that uses it."""
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import SchemaError

    shown = relative_display(path)
    named_at = f"the schema is named at {loc}"
    if path.suffix != ".json":
        schema = load_yaml(str(path))
    else:
        text = read_text(str(path))
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _json_error(exc, shown, named_at) from None
    if not isinstance(schema, dict):
        raise ScenarioFormatError(
            f"a JSON Schema must be an object, not {describe(schema)}",
            Location(shown, 1, 1),
            f'{named_at}; start the file with {{"type": ...}}',
        )
    cls = validators.validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        keys = list(exc.absolute_path)
        where = "".join(f"[{k}]" if isinstance(k, int) else f"/{k}" for k in keys) or "/"
        message = exc.message
        if keys and keys[-1] == "type":
            message = (
                f"{exc.instance!r} is not a JSON type; use one of "
                '"string", "number", "integer", "object", "array", "boolean", "null", or a list of them'
            )
        raise ScenarioFormatError(
            f"not a valid JSON Schema at {where}: {message}",
            _schema_location(path, shown, keys),
            f"{named_at}; its draft comes from its $schema (2020-12 if it has none)",
        ) from None
    return _with_local_refs(cls, schema, path, policy)


def _json_error(exc: json.JSONDecodeError, shown: str, named_at: str) -> ScenarioFormatError:
    """A JSON syntax error where the user must look: at a trailing comma, not the '}' after it."""
    before = exc.doc[: exc.pos].rstrip()
    if before.endswith(",") and exc.msg.startswith(("Expecting property name", "Expecting value")):
        pos = len(before) - 1
        line = exc.doc.count("\n", 0, pos) + 1
        col = pos - exc.doc.rfind("\n", 0, pos)
        return ScenarioFormatError(
            "not valid JSON: a comma before a closing bracket",
            Location(shown, line, col),
            f"{named_at}; JSON allows no comma after the last item (remove it)",
        )
    message = exc.msg[0].lower() + exc.msg[1:]
    return ScenarioFormatError(
        f"not valid JSON: {message}",
        Location(shown, exc.lineno, exc.colno),
        f"{named_at}; JSON needs double quotes around keys and strings, and no comments",
    )


def _schema_location(path: Path, shown: str, keys: list[Any]) -> Location:
    """Where `keys` lead inside a schema file: JSON parses as YAML, which keeps positions."""
    try:
        node: Any = load_yaml(str(path))
        for key in keys[:-1]:
            node = node[key]
        if keys:
            return location_of(node, keys[-1], getattr(node, "loc", Location(shown, 1, 1)))
        return getattr(node, "loc", Location(shown, 1, 1))
    except (UserError, KeyError, IndexError, TypeError):
        return Location(shown, 1, 1)


def _with_local_refs(cls: Any, schema: dict[str, Any], path: Path, policy: FilePolicy) -> Any:
    """Let `$ref: other.json` resolve next to the schema file (never over the network)."""
    from referencing import Registry, Resource
    from referencing.exceptions import NoSuchResource

    def retrieve(uri: str) -> Resource:
        if not uri.startswith("file://"):
            raise NoSuchResource(ref=uri)  # type: ignore[call-arg]
        target = policy.resolve(uri[len("file://") :], path.parent, None)
        return Resource.from_contents(json.loads(target.read_text("utf-8")))

    id_key = "id" if cls.__name__ in ("Draft3Validator", "Draft4Validator") else "$id"
    if id_key not in schema:
        schema = {**schema, id_key: path.as_uri()}
    return cls(schema, registry=Registry(retrieve=retrieve))  # type: ignore[call-arg]
