"""Safe YAML parsing that remembers where every value came from.

PyYAML silently accepts duplicate keys and forgets positions once it has built Python objects; both
make error messages useless. Here mappings and sequences are built as `LocDict`/`LocList`, which
carry the location of themselves and of each of their values, and a duplicate key is an error.
Only the safe constructors are used: `!!python/object` and friends are refused.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.events import (
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import Location, ScenarioFormatError, relative_display
from .yamllimits import (
    MAX_CHARS,
    MAX_DEPTH,
    ExpansionTooLarge,
    check_characters,
    check_graph,
    composing_too_deep,
    expansion_error,
    too_deep,
)

MIB = 1024 * 1024
MAX_FILE_BYTES = MIB


class LocDict(dict[str, Any]):
    """A mapping that knows where it, its keys and its values are in the source."""

    # Slots, not an instance dict: a file makes dozens of these (issue 12: faster to make, smaller).
    # `all_finite` is set, True, only on the root of a file just built from YAML events when no
    # value in it is .inf or .nan: the format check need not walk it for them (read with getattr).
    __slots__ = ("all_finite", "key_locs", "loc", "value_locs")

    loc: Location
    key_locs: dict[str, Location]
    value_locs: dict[str, Location]
    all_finite: bool

    def key_loc(self, key: str) -> Location:
        return self.key_locs.get(key, self.loc)

    def value_loc(self, key: str) -> Location:
        return self.value_locs.get(key, self.loc)


class LocList(list[Any]):
    """A sequence that knows where it and each of its items are in the source."""

    __slots__ = ("item_locs", "loc")

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


class _Located(yaml.constructor.SafeConstructor):
    """Safe construction into located containers; `source_path` is set per instance."""

    source_path = "<string>"
    _depth = 0

    def get_single_data(self) -> Any:
        """PyYAML's, with the composed document checked for depth and alias expansion first."""
        node = self.get_single_node()  # type: ignore[attr-defined]
        if node is None:
            return None
        check_graph(node, self.source_path)
        return self.construct_document(node)  # type: ignore[no-untyped-call]

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        """Only PyYAML's composer calls this (libyaml composes in C, and stops at 1000 levels itself):
        it recurses per level, so depth is bounded while composing, not after."""
        self._depth += 1
        try:
            problem = composing_too_deep(self, self._depth)
            if problem is not None:
                raise problem
            return super().compose_node(parent, index)  # type: ignore[misc,no-any-return]
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> LocDict:  # type: ignore[override]
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, "expected a mapping", node.start_mark)
        # Keys written in this mapping may override keys merged in with `<<: *anchor`; only a key
        # written twice here is a duplicate.
        own = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        self.flatten_mapping(node)
        result = LocDict()
        result.loc = _loc(self.source_path, node)
        result.key_locs = {}
        result.value_locs = {}
        written: set[str] = set()
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if not isinstance(key, str):
                key = str(key)
            if id(key_node) in own:
                if key in written:
                    first = result.key_locs[key]
                    raise ScenarioFormatError(
                        f"duplicate key '{key}' (first defined at line {first.line})",
                        _loc(self.source_path, key_node),
                        "YAML keeps only the last value of a repeated key; remove or rename one",
                    )
                written.add(key)
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


class _Loader(_Located, yaml.SafeLoader):
    """The pure-Python parser: slower, but its error messages are the ones users are shown."""


_TAG = "tag:yaml.org,2002:"
_PLAIN_SCALARS = frozenset(_TAG + name for name in ("null", "bool", "int", "float", "timestamp"))
_IN_PROGRESS = object()
_NO_KEY = object()
_CONSTRUCT_INT = yaml.constructor.SafeConstructor.construct_yaml_int


class _Unusual(Exception):
    """A node the direct builder leaves to PyYAML's constructor: merge keys, other tags, recursion."""


class _Direct(_Located):
    """Builds the located containers straight from the composed nodes.

    PyYAML's constructor goes through generic machinery for every node (a generator per container,
    tag lookups, deep-construction bookkeeping): two thirds of the time it takes to load a scenario.
    Files are plain trees of maps, lists and scalars, so this walks them directly, with the same
    values, locations and duplicate-key error. Anything else (a `<<` merge, an explicit tag such as
    `!!set`, an alias that contains itself) is built by the inherited constructor, as before.
    """

    def resolve(self, kind: type[Node], value: str, implicit: tuple[bool, bool]) -> str:
        """The implicit tag of a node: PyYAML's rules, without its per-call list concatenation.

        libyaml calls this for every node, and PyYAML's version (written for path and wildcard
        resolvers, which the safe loader has none of) costs a sixth of the time of a load. If some
        code in the process registers such a resolver, PyYAML's version decides.
        """
        resolvers = self.yaml_implicit_resolvers  # type: ignore[attr-defined]
        if None in resolvers or self.yaml_path_resolvers:  # type: ignore[attr-defined]
            return super().resolve(kind, value, implicit)  # type: ignore[misc,no-any-return]
        if kind is ScalarNode:
            if implicit[0]:
                for tag, regexp in resolvers.get(value[:1], ()):
                    if regexp.match(value):
                        return tag  # type: ignore[no-any-return]
            return _TAG + "str"
        return _TAG + "map" if kind is MappingNode else _TAG + "seq"

    def get_single_data(self) -> Any:
        node = self.get_single_node()  # type: ignore[attr-defined]
        if node is None:
            return None
        try:
            return self._build_tree(node)
        except _Unusual:
            check_graph(node, self.source_path)
            return self.construct_document(node)  # type: ignore[no-untyped-call]

    def build_from_events(self) -> Any:
        """The document built straight from libyaml's events, without composing nodes: the usual file.

        Composing costs per node a Python `Node`, our `resolve` and PyYAML's descend/ascend hooks,
        then `_build_tree` walks the nodes again (issue 12: ~0.39 ms of ~0.8 ms loading a tutorial).
        Here one loop takes each event once. It handles only plain trees of untagged maps, lists and
        scalars without anchors; on anything else (an anchor, an alias, a tag, a `<<` or another
        non-scalar implicit tag, a key that is not a scalar, a repeated key, nesting beyond
        MAX_DEPTH, a second document, a resolver this does not know) it raises `_Unusual` and the
        file is parsed again by `get_single_data`, which has every message. A libyaml error is
        raised as it is, as composing raises it. Without aliases no value is longer than the text it
        is written in, so `_parse` leaves a text longer than MAX_CHARS (which `_build_tree` checks)
        to `get_single_data` too.
        """
        resolvers = self.yaml_implicit_resolvers  # type: ignore[attr-defined]
        if None in resolvers or self.yaml_path_resolvers:  # type: ignore[attr-defined]
            raise _Unusual
        get_event = self.get_event  # type: ignore[attr-defined]
        path = self.source_path
        scalar_constructors = self.yaml_constructors
        new_location = tuple.__new__
        if get_event().__class__ is not StreamStartEvent:
            raise _Unusual
        event = get_event()
        if event.__class__ is StreamEndEvent:
            return None
        if event.__class__ is not DocumentStartEvent:
            raise _Unusual
        # The open map or list, and what is pending in it; the enclosing ones wait on `stack`.
        container: Any = None
        is_map = False
        key: Any = _NO_KEY  # a map's key whose value comes next (_NO_KEY: a key comes next)
        key_loc: Location | None = None
        locs: Any = None  # its key_locs or item_locs
        value_locs: Any = None
        stack: list[tuple[Any, ...]] = []
        finite = True
        plain_ints = scalar_constructors.get(_TAG + "int") is _CONSTRUCT_INT
        while True:
            event = get_event()
            cls = event.__class__
            if cls is ScalarEvent:
                if event.anchor is not None or event.tag is not None:
                    raise _Unusual
                item = event.value
                if event.implicit[0] and item[:1] in resolvers:
                    for tag, regexp in resolvers[item[:1]]:
                        if regexp.match(item):
                            if tag not in _PLAIN_SCALARS:
                                raise _Unusual
                            if tag == _TAG + "int" and plain_ints and item.isdecimal() and item[0] != "0":
                                item = int(item)  # `status: 201`: what construct_yaml_int makes of it
                                break
                            node = ScalarNode(tag, item, event.start_mark, event.end_mark, event.style)
                            try:
                                item = scalar_constructors[tag](self, node)
                            except Exception:  # composing first would raise a later libyaml error first
                                raise _Unusual from None
                            if item.__class__ is float and not math.isfinite(item):
                                finite = False
                            break
                mark = event.start_mark
                loc = new_location(Location, (path, mark.line + 1, mark.column + 1))
            elif cls is MappingStartEvent or cls is SequenceStartEvent:
                if event.anchor is not None or event.tag is not None or len(stack) >= MAX_DEPTH:
                    raise _Unusual
                stack.append((container, is_map, key, key_loc, locs, value_locs))
                mark = event.start_mark
                if cls is MappingStartEvent:
                    container = LocDict()
                    container.key_locs = locs = {}
                    container.value_locs = value_locs = {}
                    is_map, key = True, _NO_KEY
                else:
                    container = LocList()
                    container.item_locs = locs = []
                    is_map = False
                container.loc = new_location(Location, (path, mark.line + 1, mark.column + 1))
                continue
            elif cls is MappingEndEvent or cls is SequenceEndEvent:
                item = container
                loc = item.loc  # where the map or list starts: where its parent says it is
                container, is_map, key, key_loc, locs, value_locs = stack.pop()
            else:  # an alias, or events this does not expect
                raise _Unusual
            if container is None:  # the document's root
                root = item
                break
            if not is_map:
                container.append(item)
                locs.append(loc)
            elif key is _NO_KEY:
                if cls is not ScalarEvent:
                    raise _Unusual
                if item.__class__ is not str:
                    item = str(item)
                if item in container:
                    raise _Unusual
                key, key_loc = item, loc
            else:
                container[key] = item
                locs[key] = key_loc
                value_locs[key] = loc
                key = _NO_KEY
        if get_event().__class__ is not DocumentEndEvent or get_event().__class__ is not StreamEndEvent:
            raise _Unusual
        if finite and root.__class__ is LocDict:
            root.all_finite = True
        return root

    def _build_tree(self, root: Node) -> Any:
        path = self.source_path
        scalar_constructors = self.yaml_constructors
        new_location = tuple.__new__  # a Location without NamedTuple's Python-level __new__: one per key and value
        aliased: dict[int, Any] = {}  # a node met twice is an alias: it yields the same object
        met_alias = False
        text_built = 0  # characters of strings built: more than the file holds only through aliases

        def build(node: Node, depth: int) -> Any:
            nonlocal met_alias, text_built
            tag = node.tag
            cls = node.__class__
            if cls is ScalarNode:
                if tag == _TAG + "str":
                    text_built += len(node.value)
                    return node.value
                if tag in _PLAIN_SCALARS:
                    return scalar_constructors[tag](self, node)
                raise _Unusual
            done = aliased.get(id(node))
            if done is not None:
                if done is _IN_PROGRESS:
                    raise _Unusual
                met_alias = True
                return done
            if depth > MAX_DEPTH:
                raise too_deep(path, node)
            aliased[id(node)] = _IN_PROGRESS
            if cls is MappingNode and tag == _TAG + "map":
                result: Any = LocDict()
                key_locs: dict[str, Location] = {}
                value_locs: dict[str, Location] = {}
                for key_node, value_node in node.value:
                    if key_node.tag == _TAG + "merge":
                        raise _Unusual
                    key = build(key_node, depth + 1)
                    if not isinstance(key, str):
                        key = str(key)
                    mark = key_node.start_mark
                    key_loc = new_location(Location, (path, mark.line + 1, mark.column + 1))
                    if key in result:
                        raise ScenarioFormatError(
                            f"duplicate key '{key}' (first defined at line {key_locs[key].line})",
                            key_loc,
                            "YAML keeps only the last value of a repeated key; remove or rename one",
                        )
                    result[key] = build(value_node, depth + 1)
                    key_locs[key] = key_loc
                    mark = value_node.start_mark
                    value_locs[key] = new_location(Location, (path, mark.line + 1, mark.column + 1))
                result.key_locs = key_locs
                result.value_locs = value_locs
            elif cls is SequenceNode and tag == _TAG + "seq":
                items = node.value
                result = LocList([build(child, depth + 1) for child in items])
                result.item_locs = [
                    new_location(Location, (path, child.start_mark.line + 1, child.start_mark.column + 1))
                    for child in items
                ]
            else:
                raise _Unusual
            mark = node.start_mark
            result.loc = new_location(Location, (path, mark.line + 1, mark.column + 1))
            aliased[id(node)] = result
            return result

        try:
            data = build(root, 1)
        finally:
            # `build` refers to itself (its cell), and through `aliased` to every mapping and list it
            # built: a cycle that left each file's whole tree for the collector (issue 12: ~460
            # objects a file, which a 10,000-file run's full collections walked and freed).
            build = None  # type: ignore[assignment]
        if met_alias or text_built > MAX_CHARS:  # only aliases make the data larger or deeper than the text
            check_graph(root, path)
        return data


# libyaml parses about 7x faster with the same positions; it is used for every file, and a file it
# rejects is parsed again with the pure-Python parser for its (better) wording of the error.
_FastLoader: type[_Located] = type("_FastLoader", (_Direct, getattr(yaml, "CSafeLoader", yaml.SafeLoader)), {})

for _cls in (_Loader, _FastLoader):
    _cls.add_constructor("tag:yaml.org,2002:map", _Located.construct_located_mapping)  # type: ignore[type-var]
    _cls.add_constructor("tag:yaml.org,2002:seq", _Located.construct_located_sequence)  # type: ignore[type-var]


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
    if "could not find expected ':'" in problem:
        return "every key needs a ':' after it; a line without one must be indented as part of the value above"
    return None


_TEMPLATE_UNQUOTED = re.compile(r"(^|[:\-\[,]\s*)\{\{")
_UNCLOSED = {
    "while parsing a flow mapping": ("'{'", "close it with '}', or quote the value if '{' is part of the text"),
    "while parsing a flow sequence": ("'['", "close it with ']', or quote the value if '[' is part of the text"),
    "while scanning a quoted scalar": ("quoted string", "add the closing quote; inside '...' write a quote as ''"),
}


def _describe_yaml_error(exc: yaml.MarkedYAMLError, shown: str, lines: list[str]) -> ScenarioFormatError:
    """A located sentence for a PyYAML error, pointing where the user has to look."""
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "invalid YAML"
    loc = Location(shown, mark.line + 1, mark.column + 1) if mark else Location(shown)
    hint = _hint_for(exc.problem or "")
    if "could not determine a constructor" in problem and exc.problem:
        tag = problem.split("tag ")[-1].strip("'").replace("tag:yaml.org,2002:", "!!")
        return ScenarioFormatError(f"YAML: unsupported tag '{tag}'", loc, hint)
    line = lines[loc.line - 1] if 0 < loc.line <= len(lines) else ""
    if _TEMPLATE_UNQUOTED.search(line) and "\t" not in line:
        return ScenarioFormatError(
            f"YAML: {_plain(problem)}",
            loc,
            "a value starting with '{{' must be quoted in YAML: key: \"{{ ... }}\"",
        )
    unclosed = _UNCLOSED.get(exc.context or "")
    context_mark = exc.context_mark
    if unclosed and context_mark is not None and exc.problem_mark is not None:
        opener, fix = unclosed
        if context_mark.line != exc.problem_mark.line or opener == "quoted string":
            at = Location(shown, context_mark.line + 1, context_mark.column + 1)
            end = exc.problem_mark.line >= len(lines)
            if end:
                message = f"YAML: this {opener} is never closed (it runs to the end of the file)"
                return ScenarioFormatError(message, at, fix)
            expected = problem.split(", but")[0]
            message = f"YAML: this {opener} is never closed ({expected} before line {exc.problem_mark.line + 1})"
            return ScenarioFormatError(message, at, fix)
    return ScenarioFormatError(f"YAML: {_plain(problem)}", loc, hint)


_TOKENS = {"'<scalar>'": "text", "'<block mapping start>'": "a key", "'?'": "a key", "'-'": "a list item"}


def _plain(problem: str) -> str:
    """PyYAML's parser vocabulary ("expected <block end>, but found '<scalar>'") in user words."""
    found = re.match(r"expected <block end>, but found (.+)$", problem)
    if found:
        what = _TOKENS.get(found.group(1), found.group(1))
        return f"found {what} where the indented block above should have ended"
    return problem


def read_text(path: str, shown: str | None = None) -> str:
    """Read a scenario file as UTF-8, refusing huge or undecodable files with a location; `shown`:
    how messages name the file, if the caller has it (relative_display)."""
    if shown is None:
        shown = relative_display(path)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            # As much as fstat says, not MAX_FILE_BYTES + 1 at once: that allocated (and gave back) a
            # 1 MiB buffer for every file (issue 12: 12 of the 17 us reading a tutorial). Still up
            # to MAX_FILE_BYTES + 1 bytes if the file holds more than fstat said (grown, /proc).
            wanted = min(size, MAX_FILE_BYTES) + 1
            data = fh.read(wanted)
            if len(data) == wanted <= MAX_FILE_BYTES:
                data += fh.read(MAX_FILE_BYTES + 1 - wanted)
    except FileNotFoundError:
        raise ScenarioFormatError(
            "file not found", Location(shown), "check the path; relative paths start at the current directory"
        ) from None
    except IsADirectoryError:
        raise ScenarioFormatError("is a directory, not a file", Location(shown)) from None
    except OSError as exc:
        raise ScenarioFormatError(f"cannot read file: {exc.strerror}", Location(shown)) from None
    if len(data) > MAX_FILE_BYTES:
        raise ScenarioFormatError(
            f"file is too large: {max(size, len(data)) / MIB:.1f} MiB, the limit is {MAX_FILE_BYTES / MIB:g} MiB",
            Location(shown, 1, 1),
            "scenario files describe requests; keep large data in separate files and upload them with `file:`",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line_start = before.rfind(b"\n") + 1
        line = before.count(b"\n") + 1
        col = len(data[line_start : exc.start].decode("utf-8", "replace")) + 1  # characters, not bytes
        raise ScenarioFormatError(
            f"invalid UTF-8 byte 0x{data[exc.start]:02x}",
            Location(shown, line, col),
            "save the file as UTF-8 (it may have been saved as Latin-1 or Windows-1252)",
        ) from None


def load_yaml(path: str, shown: str | None = None) -> Any:
    """Parse one YAML document with locations; every failure is a ScenarioFormatError."""
    if shown is None:
        shown = relative_display(path)
    text = read_text(path, shown)
    if "\ufeff" in text[:1]:
        text = text[1:]
    check_characters(text, shown)
    try:
        return _parse(text, shown)
    except ExpansionTooLarge as exc:
        raise expansion_error(exc, text, shown) from None
    except RecursionError:  # a bound above was not enough: still a located message, not a traceback
        raise ScenarioFormatError(
            "YAML: nested too deeply to be read", Location(shown, 1, 1), f"keep nesting under {MAX_DEPTH} levels"
        ) from None


def _parse(text: str, shown: str) -> Any:
    loaders: tuple[type[_Located], ...] = (_Loader,)  # after a libyaml error: for the wording
    fast = _FastLoader(text)  # type: ignore[call-arg]
    fast.source_path = shown
    try:
        if len(text) > MAX_CHARS:
            raise _Unusual
        try:
            return fast.build_from_events()  # type: ignore[attr-defined]
        finally:
            fast.dispose()  # type: ignore[attr-defined]
    except _Unusual:  # composed first, then built, as it always was
        loaders = (_FastLoader, _Loader)
    except yaml.YAMLError:
        pass
    for loader_class in loaders:
        loader = loader_class(text)  # type: ignore[call-arg]
        loader.source_path = shown
        try:
            try:
                return loader.get_single_data()  # type: ignore[attr-defined]
            finally:
                loader.dispose()  # type: ignore[attr-defined]
        except yaml.YAMLError as exc:
            if loader_class is _FastLoader:
                continue
            if isinstance(exc, yaml.MarkedYAMLError):
                raise _describe_yaml_error(exc, shown, text.splitlines()) from None
            raise ScenarioFormatError(f"YAML: {exc}", Location(shown)) from None
    raise AssertionError("unreachable: the pure-Python loader raises or returns")
