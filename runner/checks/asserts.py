"""`expect.assert`: Jinja expressions that must be true; a false one shows the values of its parts
(runner/explain.py), as pytest's assertion rewriting does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import Location, ScenarioFormatError
from ..explain import explain
from ..http import Response
from ..model import BodyStream
from ..results import Failure
from ..templating import Compiled, is_template
from .base import Compiling, Context, Kind, Order
from .common import render, short


@dataclass
class AssertCheck:
    expression: Compiled
    order = Order.ASSERT
    stream: BodyStream | None = None

    def compiled(self) -> list[Compiled]:
        return [self.expression]

    def run(self, response: Response, context: Context) -> list[Failure]:
        template = self.expression.value
        where = template.loc
        value, failure = render(self.expression, context, where)
        if failure:
            return [failure]
        if not value:
            failed = Failure(f"assert: {template.source} is {short(value)}", where)
            failed.details = explain(template, context)
            return [failed]
        return []


def compile_asserts(data: Any, loc: Location, at: Compiling) -> list[AssertCheck]:
    checks = []
    for index, expr in enumerate(data):
        aloc = data.item_loc(index)
        if not is_template(expr):
            raise ScenarioFormatError(
                f"assert item {index + 1} must be a Jinja expression, got {expr!r}",
                aloc,
                'write it as "{{ response.json.images | length > 0 }}"',
            )
        checks.append(AssertCheck(at.compile(expr, aloc)))
    return checks


KIND = Kind("assert", compile_asserts)
