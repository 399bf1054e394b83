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


def _check_refs(schema: Any, path: Path, policy: FilePolicy, seen: set[Path]) -> None:
    """Every `$ref` to another file must exist inside the allowed directories: found at load time."""
    seen.add(path)
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                target_text = ref.split("#", 1)[0]
                loc = location_of(node, "$ref", Location(relative_display(path), 1, 1))
                if "://" in target_text:
                    raise ScenarioFormatError(
                        f"$ref {ref!r} points at the network",
                        loc,
                        "save that schema next to this one and refer to it by a relative path",
                    )
                target = policy.resolve(target_text, path.parent, loc)
                if target not in seen:
                    _check_refs(load_yaml(str(target)), target, policy, seen)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _with_local_refs(cls: Any, schema: dict[str, Any], path: Path, policy: FilePolicy) -> Any:
    """Let `$ref: other.json` resolve next to the schema file (never over the network).

    A referenced file without its own `$schema` is read with the draft of the schema naming it.
    """
    from referencing import Registry, Resource
    from referencing.exceptions import NoSuchResource
    from referencing.jsonschema import DRAFT202012, specification_with

    _check_refs(load_yaml(str(path)), path, policy, set())
    dialect = cls.META_SCHEMA.get("$schema") or cls.META_SCHEMA.get("id") or ""
    draft = specification_with(dialect, default=DRAFT202012)

    def retrieve(uri: str) -> Resource:
        if not uri.startswith("file://"):
            raise NoSuchResource(ref=uri)  # type: ignore[call-arg]
        target = policy.resolve(uri[len("file://") :], path.parent, None)
        return Resource.from_contents(load_yaml(str(target)), default_specification=draft)

    id_key = "id" if cls.__name__ in ("Draft3Validator", "Draft4Validator") else "$id"
    _check_ref_cycles(path, policy, draft, id_key, ref_only=cls.__name__ in _REF_ONLY_DRAFTS)
    if id_key not in schema:
        schema = {**schema, id_key: path.as_uri()}
    return cls(schema, registry=Registry(retrieve=retrieve))  # type: ignore[call-arg]


# Keywords whose subschemas apply to the same instance (no step down into it): a `$ref` cycle made
# only of these never ends, and jsonschema follows it until Python's recursion limit.
_IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
_IN_PLACE_ONE = ("not", "if", "then", "else")
_IN_PLACE_MAPS = ("dependentSchemas", "dependencies")
_REFS = ("$ref", "$dynamicRef", "$recursiveRef")
# Keywords whose subschemas apply to a part of the instance: a cycle through them ends with the data.
_DESCEND_ONE = (
    "items", "additionalItems", "additionalProperties", "contains", "propertyNames",
    "unevaluatedItems", "unevaluatedProperties",
)  # fmt: skip
_DESCEND_MAPS = ("properties", "patternProperties")
_DESCEND_LISTS = ("prefixItems", "items")
_REF_ONLY_DRAFTS = ("Draft3Validator", "Draft4Validator", "Draft6Validator", "Draft7Validator")


def _check_ref_cycles(path: Path, policy: FilePolicy, draft: Any, id_key: str, ref_only: bool) -> None:
    """Refuse a `$ref` that leads back to where it is without looking inside the data
    (`{"$ref": "#"}`, a → b → a through allOf...): validating anything with it would never end.

    A recursive schema that steps into the data on the way (a tree whose `children` items refer to
    the node schema) is fine and accepted. The walk is iterative and visits each subschema once.
    """
    from referencing import Registry, Resource
    from referencing.exceptions import NoSuchResource, Unresolvable

    loaded: dict[str, Resource] = {}  # one object per file, so a cycle across files is seen as one

    def retrieve(uri: str) -> Resource:
        if not uri.startswith("file://"):
            raise NoSuchResource(ref=uri)  # type: ignore[call-arg]
        if uri not in loaded:
            target = policy.resolve(uri[len("file://") :], path.parent, None)
            loaded[uri] = Resource.from_contents(load_yaml(str(target)), default_specification=draft)
        return loaded[uri]

    root = load_yaml(str(path))
    if not isinstance(root, dict):
        return
    uri = root[id_key] if isinstance(root.get(id_key), str) else path.as_uri()
    registry = Registry(retrieve=retrieve).with_resource(uri, draft.create_resource(root)).crawl()  # type: ignore[call-arg]
    shown = relative_display(path)
    # id(subschema) -> [(next subschema, the dict holding the $ref or None)], for in-place edges only
    in_place: dict[int, list[tuple[Any, Any]]] = {}
    seen: dict[int, Any] = {}
    work: list[tuple[Any, Any]] = [(root, registry.resolver(base_uri=uri))]
    while work:
        node, resolver = work.pop()
        if not isinstance(node, dict) or id(node) in seen:
            continue
        seen[id(node)] = node
        if node is not root and isinstance(node.get(id_key), str):
            resolver = resolver.in_subresource(draft.create_resource(node))
        edges: list[tuple[Any, Any]] = []
        for key in _REFS:
            ref = node.get(key)
            if isinstance(ref, str) or (key == "$recursiveRef" and ref is not None):
                try:
                    resolved = resolver.lookup(ref if isinstance(ref, str) else "#")
                except (Unresolvable, UserError, KeyError, ValueError, TypeError):
                    continue  # a missing target is reported by _check_refs, or when validating
                edges.append((resolved.contents, node))
                work.append((resolved.contents, resolved.resolver))
        if not (ref_only and "$ref" in node):  # drafts before 2019-09 ignore a $ref's siblings
            children = [node.get(k) for k in _IN_PLACE_ONE]
            children += [c for k in _IN_PLACE_LISTS if isinstance(node.get(k), list) for c in node[k]]
            children += [c for k in _IN_PLACE_MAPS if isinstance(node.get(k), dict) for c in node[k].values()]
            edges += [(c, None) for c in children if isinstance(c, dict)]
            work += [(c, resolver) for c in children]
            work += [(node.get(k), resolver) for k in _DESCEND_ONE]
            work += [(c, resolver) for k in _DESCEND_MAPS if isinstance(node.get(k), dict) for c in node[k].values()]
            work += [(c, resolver) for k in _DESCEND_LISTS if isinstance(node.get(k), list) for c in node[k]]
        in_place[id(node)] = edges
    cycle = _find_cycle(in_place, root)
    if cycle is not None:
        holder = cycle
        raise ScenarioFormatError(
            f"$ref {holder.get('$ref', holder.get('$dynamicRef', '#'))!r} closes a loop of references that never "
            "looks inside the data: validating with it would never end",
            location_of(holder, "$ref", getattr(holder, "loc", Location(shown, 1, 1))),
            "a recursive schema must step into the data on the way (through properties or items); "
            "remove this $ref or point it at a different schema",
        )


def _find_cycle(in_place: dict[int, list[tuple[Any, Any]]], root: Any) -> Any:
    """The dict holding a `$ref` on a cycle of in-place edges, or None (iterative depth-first search)."""
    state: dict[int, int] = {}  # 1: on the current path, 2: done
    for start in list(in_place):
        if start in state:
            continue
        stack: list[tuple[int, int]] = [(start, 0)]
        state[start] = 1
        while stack:
            key, index = stack.pop()
            edges = in_place.get(key, [])
            if index >= len(edges):
                state[key] = 2
                continue
            stack.append((key, index + 1))
            target, holder = edges[index]
            if state.get(id(target)) == 1:
                return holder if holder is not None else _ref_on_path(stack, in_place)
            if id(target) not in state:
                state[id(target)] = 1
                stack.append((id(target), 0))
    return None


def _ref_on_path(stack: list[tuple[int, int]], in_place: dict[int, list[tuple[Any, Any]]]) -> Any:
    """A cycle closed by an allOf/not... edge still contains a `$ref` (only refs can go back): the
    latest one taken on the current path."""
    for key, index in reversed(stack):
        _, holder = in_place[key][index - 1]
        if holder is not None:
            return holder
    return None
