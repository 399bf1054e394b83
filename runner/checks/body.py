"""`expect.body`: the body's text (contains, not_contains, regex, equals; starts_with, ends_with,
matches as predicates), its size, and its bytes (file, md5, sha256, sha512: compared and hashed as it
streams in, so a body of any size costs no memory)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import Location, ScenarioFormatError
from ..files import ALGORITHMS
from ..http import Response
from ..model import BodyStream, CheckUse
from ..results import Failure
from ..templating import Compiled, compile_value, is_template
from ..yamlsource import LocDict
from .base import Compiling, Context, Kind, Order
from .common import render, short
from .predicates import PredicateMap, compile_map, compile_regex

TEXT_KEYS = ("contains", "not_contains", "regex", "equals")  # templates, compared with the text
PREDICATE_KEYS = ("starts_with", "ends_with", "matches")  # predicates on the text
BYTES_KEYS = ("file", *ALGORITHMS)  # every byte of the body, streamed
KEYS = (*TEXT_KEYS, *PREDICATE_KEYS, "size", *BYTES_KEYS)  # every key of `expect.body`


@dataclass
class BodyText:
    """contains / not_contains / regex / equals, each a template (or a list of them for the first two)."""

    loc: Location
    kinds: dict[str, Compiled]
    order = Order.BODY
    stream: BodyStream | None = None

    def compiled(self) -> list[Compiled]:
        return list(self.kinds.values())

    def run(self, response: Response, context: Context) -> list[Failure]:
        where = self.loc
        text = response.text
        failures = []
        for kind, compiled in self.kinds.items():
            wanted, failure = render(compiled, context, where)
            if failure:
                failures.append(failure)
                continue
            items = wanted if isinstance(wanted, list) else [wanted]
            for item in items:
                item = str(item)
                if kind == "contains" and item not in text:
                    failures.append(Failure(f"body: does not contain {item!r}", where, item, short(text)))
                elif kind == "not_contains" and item in text:
                    failures.append(Failure(f"body: contains {item!r}, which it must not", where))
                elif kind == "regex":
                    try:
                        found = re.search(item, text)
                    except re.error as exc:  # a templated pattern is only known now (literal ones at load time)
                        failures.append(Failure(f"body: invalid regular expression /{item}/: {exc}", where, error=True))
                        continue
                    if not found:
                        failures.append(Failure(f"body: does not match /{item}/", where, f"/{item}/", short(text)))
                elif kind == "equals" and item != text:
                    failures.append(Failure("body: not equal to the expected text", where, short(item), short(text)))
        return failures


@dataclass
class BodyTextCheck:
    """starts_with / ends_with / matches on the text, `size` on the bytes received."""

    text: PredicateMap | None
    size: PredicateMap | None
    order = Order.BODY_PREDICATES
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
    """file / md5 / sha256 / sha512: every byte of the body, compared and hashed as it streams in
    (runner/files.py BodyTap)."""

    loc: Location
    file: Compiled | None = None
    file_loc: Location | None = None
    digests: dict[str, tuple[Compiled, Location]] = field(default_factory=dict)
    order = Order.BODY_BYTES
    stream: BodyStream | None = None

    def compiled(self) -> list[Compiled]:
        found = [c for c, _ in self.digests.values()]
        return found + ([self.file] if self.file is not None else [])

    def run(self, response: Response, context: Context) -> list[Failure]:
        tapped = response.tapped
        if tapped is None:  # the engine always taps when a stream is asked for: a bug if not
            return [Failure("body: the response bytes were not streamed through the check", self.loc, error=True)]
        failures = []
        if self.file is not None and tapped.compared is not None:
            shown = tapped.compared_as or str(tapped.compared)
            where = self.file_loc or self.loc
            if tapped.differs_at is not None:
                detail = (
                    f"body: differs from file {shown!r} at byte {tapped.differs_at} "
                    f"(body {tapped.size} bytes, file {tapped.compared_size} bytes)"
                )
                expected = _hex(tapped.file_bytes) if tapped.file_bytes else "end of file"
                actual = _hex(tapped.body_bytes) if tapped.body_bytes else "end of body"
                failures.append(Failure(f"{detail}: file has {expected}, body has {actual}", where, expected, actual))
        for algorithm, (compiled, loc) in self.digests.items():
            wanted, failure = render(compiled, context, loc)
            if failure:
                failures.append(failure)
                continue
            got = tapped.digests.get(algorithm, "")
            if str(wanted).strip().lower() != got:
                failures.append(
                    Failure(
                        f"body {algorithm}: expected {short(str(wanted))}, got {got!r} ({tapped.size} bytes)",
                        loc,
                        str(wanted),
                        got,
                    )
                )
        return failures


def _hex(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


def compile_body(body: Any, loc: Location, at: Compiling) -> list[CheckUse]:
    found: list[CheckUse] = []
    if "regex" in body:
        compile_regex(body["regex"], body.value_loc("regex"))
    kinds = {k: at.compile(v, body.value_loc(k)) for k, v in body.items() if k in TEXT_KEYS}
    if kinds:
        found.append(BodyText(loc, kinds))
    text_keys = [k for k in PREDICATE_KEYS if k in body]
    text = None
    if text_keys:
        text = compile_map(_sub(body, text_keys), loc, "body", text=True)
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
            at.resolve(raw, check.file_loc)  # missing or outside the allowed roots: refused now
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


KIND = Kind("body", compile_body)
