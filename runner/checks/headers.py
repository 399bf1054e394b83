"""`expect.headers`: per header, its exact value (a template), or a mapping of `regex`, `absent` and
predicates on the value (a text; numeric comparisons read it as a number)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..errors import Location, ScenarioFormatError
from ..http import Response
from ..model import BodyStream
from ..results import Failure
from ..templating import Compiled, is_template
from ..yamlsource import LocDict
from .base import Compiling, Context, Kind, Order
from .common import render
from .predicates import PREDICATES, PredicateMap, compile_map, compile_regex

PREDICATE_NAMES = tuple(p for p in PREDICATES if p not in ("includes", "type"))


def refuse_templated_name(name: str, loc: Location) -> None:
    """Header names are sent and matched as written; a `{{` in one would go on the wire verbatim."""
    if is_template(str(name)):
        raise ScenarioFormatError(
            f"header name {name!r} is a template; header names are not rendered",
            loc,
            "write the header name literally; its value may be a template",
        )


@dataclass
class HeaderExpectation:
    """A header's exact value, its `regex`, or `absent` (true: missing; false: there)."""

    name: str
    loc: Location
    equals: Compiled | None = None
    regex: str | None = None
    absent: bool = False
    order = Order.HEADERS
    stream: BodyStream | None = None

    def compiled(self) -> list[Compiled]:
        return [self.equals] if self.equals is not None else []

    def run(self, response: Response, context: Context) -> list[Failure]:
        actual = response.headers.get(self.name)
        where = self.loc
        if self.absent:
            if actual is not None:
                return [Failure(f"header {self.name}: expected absent, got {actual!r}", where)]
            return []
        if actual is None:
            return [Failure(f"header {self.name}: missing from the response", where)]
        if self.equals is None and self.regex is None:
            return []  # {absent: false}: present is all that is asked
        if self.regex is not None:
            if not re.search(self.regex, actual):
                return [
                    Failure(
                        f"header {self.name}: {actual!r} does not match /{self.regex}/",
                        where,
                        expected=f"/{self.regex}/",
                        actual=actual,
                    )
                ]
            return []
        wanted, failure = render(self.equals, context, where)
        if failure:
            return [failure]
        if str(wanted) != actual:
            return [
                Failure(
                    f"header {self.name}: expected {str(wanted)!r}, got {actual!r}",
                    where,
                    expected=str(wanted),
                    actual=actual,
                )
            ]
        return []


@dataclass
class HeaderCheck:
    """Predicates on one header's value (a text; numeric comparisons read it as a number)."""

    name: str
    predicates: PredicateMap
    order = Order.HEADER_PREDICATES
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
    return HeaderCheck(name, compile_map(rest, loc, f"header {name}", text=True, allowed=PREDICATE_NAMES))


def compile_headers(data: Any, loc: Location, at: Compiling) -> list[HeaderExpectation | HeaderCheck]:
    checks: list[HeaderExpectation | HeaderCheck] = []
    for name, value in (data or {}).items():
        hloc = data.value_loc(name)
        refuse_templated_name(name, data.key_loc(name))
        if isinstance(value, dict):
            regex = value.get("regex")
            if regex is not None:
                compile_regex(regex, value.value_loc("regex") if isinstance(value, LocDict) else hloc)
            predicates = compile_header(name, value, hloc) if isinstance(value, LocDict) else None
            if predicates is not None:
                checks.append(predicates)
            if predicates is None or "regex" in value or "absent" in value:
                absent = bool(value.get("absent"))
                checks.append(HeaderExpectation(name, hloc, regex=regex, absent=absent))
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            checks.append(HeaderExpectation(name, hloc, equals=at.compile(text, hloc)))
    return checks


KIND = Kind("headers", compile_headers)
