"""`expect.where`: predicates (runner/checks/predicates.py) on values of the JSON body at JMESPath paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import Location, ScenarioFormatError
from ..http import Response
from ..model import BodyStream
from ..results import Failure
from ..templating import Compiled, is_template
from ..yamlsource import LocDict
from .base import Compiling, Context, Kind, Order
from .predicates import PredicateMap, compile_map


@dataclass
class PathCheck:
    path: str
    expression: Any  # a compiled JMESPath expression
    predicates: PredicateMap


@dataclass
class WhereCheck:
    loc: Location
    paths: list[PathCheck] = field(default_factory=list)
    order = Order.WHERE
    stream: BodyStream | None = None

    def compiled(self) -> list[Compiled]:
        return [c for p in self.paths for c in p.predicates.compiled()]

    def run(self, response: Response, context: Context) -> list[Failure]:
        body, error = response.json_or_error()
        if error:
            return [Failure(f"where: {error}", self.loc)]
        failures = []
        for check in self.paths:
            failures.extend(check.predicates.run_on(check.expression.search(body), context))
        return failures


def compile_where(data: Any, loc: Location, at: Compiling) -> list[WhereCheck]:
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
            at_char = f" at character {position + 1}" if isinstance(position, int) else ""
            raise ScenarioFormatError(
                f"where: invalid JMESPath {path!r}{at_char}: {message}",
                where,
                "paths are JMESPath (https://jmespath.org): images[0].id, images[].id, "
                "images[?status=='active'] | length(@); quote names with dashes: \"x-y\".z",
            ) from None
        value_loc = data.value_loc(path) if isinstance(data, LocDict) else loc
        pmap = compile_map(predicates, value_loc, f"json {path}")
        check.paths.append(PathCheck(str(path), expression, pmap))
    return [check]


KIND = Kind("where", compile_where)
