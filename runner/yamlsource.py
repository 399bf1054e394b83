"""Safe YAML parsing that remembers where every value came from.

PyYAML silently accepts duplicate keys and forgets positions once it has built Python objects; both
make error messages useless. Here mappings and sequences are built as `LocDict`/`LocList`, which
carry the location of themselves and of each of their values, and a duplicate key is an error.
Only the safe constructors are used: `!!python/object` and friends are refused.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

from .errors import Location, ScenarioFormatError, relative_display

MAX_FILE_BYTES = 1024 * 1024


class LocDict(dict[str, Any]):
    """A mapping that knows where it, its keys and its values are in the source."""

    loc: Location
    key_locs: dict[str, Location]
    value_locs: dict[str, Location]

    def key_loc(self, key: str) -> Location:
        return self.key_locs.get(key, self.loc)

    def value_loc(self, key: str) -> Location:
        return self.value_locs.get(key, self.loc)


class LocList(list[Any]):
    """A sequence that knows where it and each of its items are in the source."""

    loc: Location
    item_locs: list[Location]

    def item_loc(self, index: int) -> Location:
        if 0 <= index < len(self.item_locs):
            return self.item_locs[index]
        return self.loc


def location_of(container: Any, key: Any, fallback: Location) -> Location:
    """The location of `container[key]`, whatever kind of container it is."""
    if isinstance(container, LocDict) and isinstance(key, str):
        return container.value_loc(key)
    if isinstance(container, LocList) and isinstance(key, int):
        return container.item_loc(key)
    return getattr(container, "loc", fallback)


def _loc(path: str, node: Node) -> Location:
    mark = node.start_mark
    return Location(path, mark.line + 1, mark.column + 1)


class _Loader(yaml.SafeLoader):
    """SafeLoader building located containers; `source_path` is set per instance."""

    source_path = "<string>"

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> LocDict:  # type: ignore[override]
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, "expected a mapping", node.start_mark)
        self.flatten_mapping(node)
        result = LocDict()
        result.loc = _loc(self.source_path, node)
        result.key_locs = {}
        result.value_locs = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if not isinstance(key, str):
                key = str(key)
            if key in result:
                first = result.key_locs[key]
                raise ScenarioFormatError(
                    f"duplicate key '{key}' (first defined at line {first.line})",
                    _loc(self.source_path, key_node),
                    "YAML keeps only the last value of a repeated key; remove or rename one",
                )
            result[key] = self.construct_object(value_node, deep=True)  # type: ignore[no-untyped-call]
            result.key_locs[key] = _loc(self.source_path, key_node)
            result.value_locs[key] = _loc(self.source_path, value_node)
        return result

    def construct_located_sequence(self, node: SequenceNode) -> LocList:
        result = LocList(self.construct_object(child, deep=True) for child in node.value)  # type: ignore[no-untyped-call]
        result.loc = _loc(self.source_path, node)
        result.item_locs = [_loc(self.source_path, child) for child in node.value]
        return result

    def construct_located_mapping(self, node: MappingNode) -> LocDict:
        return self.construct_mapping(node, deep=True)


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_located_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _Loader.construct_located_sequence)


def _hint_for(problem: str) -> str | None:
    if "\\t" in problem or "tab" in problem:
        return "YAML does not allow tabs for indentation; use spaces"
    if "could not determine a constructor" in problem:
        return "only plain YAML is accepted: tags such as !!python/object are refused for safety"
    if "mapping values are not allowed" in problem:
        return "a value containing ': ' must be quoted, or a key is indented wrongly"
    if "expected <block end>" in problem:
        return "check the indentation of this line against the lines above"
    if "found undefined alias" in problem:
        return "define the anchor (&name) before using the alias (*name)"
    return None


def read_text(path: str) -> str:
    """Read a scenario file as UTF-8, refusing huge or undecodable files with a location."""
    shown = relative_display(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ScenarioFormatError("file not found", Location(shown)) from None
    except IsADirectoryError:
        raise ScenarioFormatError("is a directory, not a file", Location(shown)) from None
    except OSError as exc:
        raise ScenarioFormatError(f"cannot read file: {exc.strerror}", Location(shown)) from None
    if len(data) > MAX_FILE_BYTES:
        raise ScenarioFormatError(
            f"file is larger than {MAX_FILE_BYTES // 1024} KiB",
            Location(shown, 1, 1),
            "scenario files describe requests; keep large data in separate files and upload them with `file:`",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise ScenarioFormatError(
            f"invalid UTF-8 byte 0x{data[exc.start]:02x}",
            Location(shown, line, col),
            "save the file as UTF-8",
        ) from None


def load_yaml(path: str) -> Any:
    """Parse one YAML document with locations; every failure is a ScenarioFormatError."""
    text = read_text(path)
    shown = relative_display(path)
    if "\ufeff" in text[:1]:
        text = text[1:]
    loader = _Loader(text)
    loader.source_path = shown
    try:
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()  # type: ignore[no-untyped-call]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        loc = Location(shown, mark.line + 1, mark.column + 1) if mark else Location(shown)
        if "could not determine a constructor" in problem and exc.problem:
            problem = f"unsupported YAML tag: {problem.split('tag ')[-1]}"
        raise ScenarioFormatError(f"YAML: {problem}", loc, _hint_for(exc.problem or "")) from None
    except yaml.YAMLError as exc:
        raise ScenarioFormatError(f"YAML: {exc}", Location(shown)) from None
