"""`expect.json`: the JSON body contains this value (mappings as subsets, lists whole); templates
anywhere in it. (Named jsonsubset, not json, so that `import json` stays the standard library's.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import Location
from ..http import Response
from ..model import BodyStream
from ..results import Failure
from ..templating import Compiled
from .base import Compiling, Context, Kind, Order
from .common import render, subset_differences


@dataclass
class JsonCheck:
    expected: Compiled
    loc: Location
    order = Order.JSON
    stream: BodyStream | None = None

    def compiled(self) -> list[Compiled]:
        return [self.expected]

    def run(self, response: Response, context: Context) -> list[Failure]:
        where = self.loc
        body, error = response.json_or_error()
        if error:
            return [Failure(f"json: {error}", where)]
        expected, failure = render(self.expected, context, where)
        if failure:
            return [failure]
        return [
            Failure(f"{path}: expected {exp}, got {act}", where, expected=exp, actual=act)
            for path, exp, act in subset_differences(expected, body)
        ]


def compile_json(value: Any, loc: Location, at: Compiling) -> list[JsonCheck]:
    return [JsonCheck(at.compile(value, loc), loc)]


KIND = Kind("json", compile_json)
