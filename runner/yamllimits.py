"""Bounds on what a YAML file may become: characters it may hold, nesting depth, expanded size.

A 1 MiB file can still describe far more than 1 MiB: ten aliases of ten aliases of ... ("billion
laughs") are a few hundred bytes that every later stage (format check, template compilation, a JSON
body) would expand into gigabytes, and a few thousand nested brackets exhaust Python's recursion
limit in the parser, the format check or the template compiler. Both are refused right after the
YAML is composed, before anything is built from it, with the location of the offending alias or
bracket. Characters YAML does not allow (NUL and other control characters, e.g. from a binary file
or `/proc/self/environ`) are refused before parsing, located, instead of PyYAML's ReaderError.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.events import AliasEvent, ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import Location, ScenarioFormatError

MAX_DEPTH = 100  # nested mappings/lists; real scenarios and JSON bodies stay under 20
MAX_VALUES = 1_000_000  # values after alias expansion; a 1 MiB file without aliases has at most ~500,000
MAX_CHARS = 10_000_000  # characters of text after alias expansion; a file without aliases has at most 1 Mi

# What PyYAML's reader refuses (yaml/reader.py NON_PRINTABLE): C0 controls but tab/LF/CR, DEL, C1
# controls but NEL, surrogates, U+FFFE/U+FFFF. Checked here so the message is located and worded.
_NON_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CHAR_NAMES = {
    0x00: "NUL",
    0x07: "BEL",
    0x08: "backspace",
    0x0B: "vertical tab",
    0x0C: "form feed",
    0x1B: "ESC",
    0x7F: "DEL",
}

_DEPTH_HINT = "a scenario is rarely nested more than 10 levels; a generated file may have a runaway bracket"
_EXPANSION_HINT = (
    "every use of an alias (*name) counts as a full copy of its anchor (&name); "
    "use fewer aliases of aliases, or keep large data in a file sent with `file:`"
)


def check_characters(text: str, shown: str) -> None:
    """Refuse a character YAML cannot hold, at its line and column (in characters, 1-based)."""
    found = _NON_PRINTABLE.search(text)
    if found is None:
        return
    pos = found.start()
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    code = ord(found.group())
    name = _CHAR_NAMES.get(code)
    what = f"control character U+{code:04X}" + (f" ({name})" if name else "") if code < 0xA0 else f"U+{code:04X}"
    raise ScenarioFormatError(
        f"YAML: {what} is not allowed in a YAML file",
        Location(shown, line, col),
        "remove it; is this a text file? To put the character into a value, write it as an escape "
        f'in a double-quoted string, e.g. "\\u{code:04X}"',
    )


def too_deep(path: str, node_or_mark: Any) -> ScenarioFormatError:
    mark = getattr(node_or_mark, "start_mark", node_or_mark)
    return ScenarioFormatError(
        f"YAML: nested more than {MAX_DEPTH} levels deep (mappings and lists inside each other)",
        Location(path, mark.line + 1, mark.column + 1),
        _DEPTH_HINT,
    )


class ExpansionTooLarge(Exception):
    """Aliases expand the document beyond MAX_VALUES or MAX_CHARS; `load_yaml` locates the alias."""

    def __init__(self, values: int, chars: int):
        super().__init__(values, chars)
        self.values = values
        self.chars = chars


class _Cycle(Exception):
    """An alias inside its own anchor: PyYAML's constructor refuses it with its own located message."""


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def measure(root: Node) -> dict[int, tuple[int, int, int]]:
    """(values, characters, depth) of every node after alias expansion, keyed by id(node).

    Iterative (a deep file must not exhaust the recursion this is meant to protect) and linear in
    the number of distinct nodes, since an aliased node is the same object as its anchor.
    """
    sizes: dict[int, tuple[int, int, int]] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            values, chars, depth = 1, 0, 0
            for child in _children(node):
                v, c, d = sizes[id(child)]
                values, chars, depth = values + v, chars + c, max(depth, d)
            sizes[key] = (values, chars, depth + 1)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise _Cycle
        if isinstance(node, ScalarNode):
            sizes[key] = (1, len(node.value), 0)
            continue
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes


def check_graph(root: Node, path: str) -> None:
    """Refuse a composed document that is too deep or expands too much (see the module docstring)."""
    try:
        sizes = measure(root)
    except _Cycle:
        return
    values, chars, depth = sizes[id(root)]
    if depth > MAX_DEPTH:
        node = root
        for _ in range(MAX_DEPTH):  # down the deepest branch to the first container beyond the limit
            node = max(_children(node), key=lambda child: sizes[id(child)][2])
        raise too_deep(path, node)
    if values > MAX_VALUES or chars > MAX_CHARS:
        raise ExpansionTooLarge(values, chars)


class _AliasRecorder(yaml.SafeLoader):
    """PyYAML's composer, noting where each alias is used (libyaml keeps only the anchor's mark)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.uses: list[tuple[Any, Any]] = []

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):  # type: ignore[no-untyped-call]
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            node = super().compose_node(parent, index)  # type: ignore[no-untyped-call]
            self.uses.append((mark, node))
            return node
        return super().compose_node(parent, index)  # type: ignore[no-untyped-call]


def expansion_error(exc: ExpansionTooLarge, text: str, shown: str) -> ScenarioFormatError:
    """The located message: at the first alias (in file order) by which the copies pass the limit."""
    if exc.values > MAX_VALUES:
        what, limit, index = "values", MAX_VALUES, 0
    else:
        what, limit, index = "characters of text", MAX_CHARS, 1
    message = f"YAML: aliases expand this file to more than {limit:,} {what} (the limit)"
    loc = Location(shown, 1, 1)
    try:
        recorder = _AliasRecorder(text)
        try:
            root = recorder.get_single_node()  # type: ignore[no-untyped-call]
        finally:
            recorder.dispose()  # type: ignore[no-untyped-call]
        if root is None:
            return ScenarioFormatError(message, loc, _EXPANSION_HINT)
        sizes = measure(root)
        total, chosen = 0, None
        for mark, node in recorder.uses:
            total += sizes[id(node)][index]
            if total > limit:
                chosen = mark
                break
        if chosen is None and recorder.uses:
            chosen = max(recorder.uses, key=lambda use: sizes[id(use[1])][index])[0]
        if chosen is not None:
            loc = Location(shown, chosen.line + 1, chosen.column + 1)
    except (yaml.YAMLError, _Cycle, RecursionError, KeyError):
        pass
    return ScenarioFormatError(message, loc, _EXPANSION_HINT)


def composing_too_deep(loader: Any, depth: int) -> ScenarioFormatError | None:
    """For PyYAML's (recursive) composer: the error if the node about to be composed is a container
    beyond MAX_DEPTH. Checked while composing, since composing itself would exhaust the recursion."""
    if depth <= MAX_DEPTH or loader.check_event(AliasEvent, ScalarEvent):
        return None
    return too_deep(loader.source_path, loader.peek_event().start_mark)
