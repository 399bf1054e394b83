"""Check kinds as units: each is its key, its compilation (at load time), its templates and its run.

One registry (`EXPECT_KINDS` for keys of `expect`, `BODY_KINDS` for keys of `expect.body`, and
`compile_header` for the predicate form of a header) maps what a scenario writes to a kind; the
loader asks it, the engine runs what it compiled. Today the new kinds live here (`where`, header and
body predicates, response bytes); the older checks (status, headers as text, json, schema, body text,
assert) are still the functions of runner/checks/__init__.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Location, ScenarioFormatError
from ..files import ALGORITHMS
from ..http import Response
from ..model import BodyStream
from ..results import Failure
from ..templating import Compiled, compile_value, is_template
from ..yamlsource import LocDict
from .common import render, short
from .predicates import PREDICATES, PredicateMap, compile_map

Context = Mapping[str, Any]
Resolve = Callable[[str, Location], Path]  # a literal path, resolved (and recorded) by the file policy


@dataclass
class PathCheck:
    path: str
    expression: Any  # a compiled JMESPath expression
    predicates: PredicateMap


@dataclass
class WhereCheck:
    """`expect.where`: predicates on values of the JSON body at JMESPath paths."""

    loc: Location
    paths: list[PathCheck] = field(default_factory=list)
    stream: BodyStream | None = None

    def compiled(self) -> list[Compiled]:
        return [c for p in self.paths for c in p.predicates.compiled()]

    def run(self, response: Response, context: Context) -> list[Failure]:
        body, error = response.json_or_error()
        if error:
            return [Failure(f"where: {error}", str(self.loc))]
        failures = []
        for check in self.paths:
            failures.extend(check.predicates.run_on(check.expression.search(body), context))
        return failures


def compile_where(data: Any, loc: Location, resolve: Resolve) -> WhereCheck:
    import jmespath
    from jmespath.exceptions import JMESPathError

    check = WhereCheck(loc)
    for path, predicates in data.items():
        key_loc = data.key_loc(path) if isinstance(data, LocDict) else loc
        if is_template(str(path)):
            raise ScenarioFormatError(
                f"where: the path {path!r} is a template; paths are JMESPath, written literally",
                key_loc,
                'put the variable in the predicate instead: "images[].id": {includes: "{{ image_id }}"}',
            )
        try:
            expression = jmespath.compile(str(path))
        except JMESPathError as exc:
            message = getattr(exc, "msg", None) or str(exc).splitlines()[0]
            position = getattr(exc, "lex_position", None)
            where = key_loc.within(str(path), position) if isinstance(position, int) else key_loc
            at = f" at character {position + 1}" if isinstance(position, int) else ""
            raise ScenarioFormatError(
                f"where: invalid JMESPath {path!r}{at}: {message}",
                where,
                "paths are JMESPath (https://jmespath.org): images[0].id, images[].id, "
                "images[?status=='active'] | length(@); quote names with dashes: \"x-y\".z",
            ) from None
        value_loc = data.value_loc(path) if isinstance(data, LocDict) else loc
        pmap = compile_map(predicates, value_loc, f"json {path}")
        check.paths.append(PathCheck(str(path), expression, pmap))
    return check


# --- headers --------------------------------------------------------------------------------------

HEADER_PREDICATES = tuple(p for p in PREDICATES if p not in ("includes", "type"))


@dataclass
class HeaderCheck:
    """Predicates on one header's value (a text; numeric comparisons read it as a number)."""

    name: str
    predicates: PredicateMap
    stream: BodyStream | None = None

    def compiled(self) -> list[Compiled]:
        return self.predicates.compiled()

    def run(self, response: Response, context: Context) -> list[Failure]:
        return self.predicates.run_on(response.headers.get(self.name), context)


def compile_header(name: str, data: LocDict, loc: Location) -> HeaderCheck | None:
    """The predicates of a header's mapping form (`regex` and `absent` keep their own check)."""
    rest = LocDict({k: v for k, v in data.items() if k not in ("regex", "absent")})
    if not rest:
        return None
    rest.loc = data.loc
    rest.key_locs = {k: data.key_loc(k) for k in rest}
    rest.value_locs = {k: data.value_loc(k) for k in rest}
    return HeaderCheck(name, compile_map(rest, loc, f"header {name}", text=True, allowed=HEADER_PREDICATES))


# --- the body: predicates on its text and size, and its bytes ------------------------------------

BODY_TEXT_PREDICATES = ("starts_with", "ends_with", "matches")


@dataclass
class BodyTextCheck:
    """`expect.body` starts_with / ends_with / matches on the text, `size` on the bytes received."""

    text: PredicateMap | None
    size: PredicateMap | None
    stream: BodyStream | None = None

    def compiled(self) -> list[Compiled]:
        return [c for m in (self.text, self.size) if m is not None for c in m.compiled()]

    def run(self, response: Response, context: Context) -> list[Failure]:
        failures = []
        if self.text is not None:
            failures += self.text.run_on(response.text, context)
        if self.size is not None:
            failures += self.size.run_on(response.size, context)
        return failures


@dataclass
class BodyBytesCheck:
    """`expect.body` file / md5 / sha256 / sha512: every byte of the body, compared and hashed as it
    streams in (runner/files.py BodyTap), so a body of any size costs no memory."""

    loc: Location
    file: Compiled | None = None
    file_loc: Location | None = None
    digests: dict[str, tuple[Compiled, Location]] = field(default_factory=dict)
    stream: BodyStream | None = None

    def compiled(self) -> list[Compiled]:
        found = [c for c, _ in self.digests.values()]
        return found + ([self.file] if self.file is not None else [])

    def run(self, response: Response, context: Context) -> list[Failure]:
        tapped = response.tapped
        if tapped is None:  # the engine always taps when a stream is asked for: a bug if not
            return [Failure("body: the response bytes were not streamed through the check", str(self.loc), error=True)]
        failures = []
        if self.file is not None and tapped.compared is not None:
            shown = tapped.compared_as or str(tapped.compared)
            where = str(self.file_loc or self.loc)
            if tapped.differs_at is not None:
                detail = (
                    f"body: differs from file {shown!r} at byte {tapped.differs_at} "
                    f"(body {tapped.size} bytes, file {tapped.compared_size} bytes)"
                )
                expected = _hex(tapped.file_bytes) if tapped.file_bytes else "end of file"
                actual = _hex(tapped.body_bytes) if tapped.body_bytes else "end of body"
                failures.append(Failure(f"{detail}: file has {expected}, body has {actual}", where, expected, actual))
        for algorithm, (compiled, loc) in self.digests.items():
            wanted, failure = render(compiled, context, str(loc))
            if failure:
                failures.append(failure)
                continue
            got = tapped.digests.get(algorithm, "")
            if str(wanted).strip().lower() != got:
                failures.append(
                    Failure(
                        f"body {algorithm}: expected {short(str(wanted))}, got {got!r} ({tapped.size} bytes)",
                        str(loc),
                        str(wanted),
                        got,
                    )
                )
        return failures


def _hex(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


def compile_body(body: LocDict, loc: Location, resolve: Resolve) -> list[Any]:
    """The checks of `expect.body` beyond contains / not_contains / regex / equals."""
    found: list[Any] = []
    text_keys = [k for k in BODY_TEXT_PREDICATES if k in body]
    text = None
    if text_keys:
        sub = _sub(body, text_keys)
        text = compile_map(sub, loc, "body", text=True)
    size = None
    if "size" in body:
        raw = body["size"]
        sloc = body.value_loc("size")
        if isinstance(raw, dict):
            size = compile_map(raw, sloc, "body size", allowed=("eq", "ne", "lt", "le", "gt", "ge", "between"))
        else:
            size = compile_map(_made({"eq": raw}, sloc), sloc, "body size", allowed=("eq",))
    if text is not None or size is not None:
        found.append(BodyTextCheck(text, size))
    check = BodyBytesCheck(loc)
    if "file" in body:
        raw = body["file"]
        check.file_loc = body.value_loc("file")
        if not isinstance(raw, str) or not raw:
            raise ScenarioFormatError(
                f"body file: expected a path, got {short(raw)}", check.file_loc, "write body: {file: expected.bin}"
            )
        if not is_template(raw):
            resolve(raw, check.file_loc)  # missing or outside the allowed roots: refused now
        check.file = compile_value(raw, check.file_loc)
    for algorithm in ALGORITHMS:
        if algorithm in body:
            dloc = body.value_loc(algorithm)
            value = body[algorithm]
            if not isinstance(value, str) or not value:
                raise ScenarioFormatError(
                    f"body {algorithm}: expected a hex digest or a template, got {short(value)}",
                    dloc,
                    f'e.g. {algorithm}: "{{{{ {algorithm}(image_file) }}}}"',
                )
            check.digests[algorithm] = (compile_value(value, dloc), dloc)
    if check.file is not None or check.digests:
        check.stream = BodyStream(tuple(sorted(check.digests)), check.file, check.file_loc)
        found.append(check)
    return found


def _made(values: dict[str, Any], loc: Location) -> LocDict:
    made = LocDict(values)
    made.loc, made.key_locs, made.value_locs = loc, dict.fromkeys(values, loc), dict.fromkeys(values, loc)
    return made


def _sub(data: LocDict, keys: list[str]) -> LocDict:
    sub = LocDict({k: data[k] for k in keys})
    sub.loc = data.loc
    sub.key_locs = {k: data.key_loc(k) for k in keys}
    sub.value_locs = {k: data.value_loc(k) for k in keys}
    return sub


BODY_KINDS = ("starts_with", "ends_with", "matches", "size", "file", *ALGORITHMS)
EXPECT_KINDS: dict[str, Callable[[Any, Location, Resolve], Any]] = {"where": compile_where}
