"""`expect.status`: a code, a class such as `2xx`, a list of them, or a template; a step that does not
say still fails on anything but 2xx."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import Location, ScenarioFormatError
from ..http import Response
from ..model import BodyStream
from ..results import Failure
from ..templating import Compiled, is_template
from .base import Compiling, Context, Kind, Order
from .common import render

STATUS_CLASS = re.compile(r"^[1-5]xx$")


@dataclass
class StatusCheck:
    expected: Compiled
    loc: Location
    order = Order.STATUS
    stream: BodyStream | None = None

    def compiled(self) -> list[Compiled]:
        return [self.expected]

    def run(self, response: Response, context: Context) -> list[Failure]:
        where = self.loc
        expected, failure = render(self.expected, context, where)
        if failure:
            return [failure]
        accepted = expected if isinstance(expected, list) else [expected]
        for item in accepted:
            text = str(item)
            if text == str(response.status) or (
                len(text) == 3 and text.endswith("xx") and text[0] == str(response.status)[0]
            ):
                return []
        shown = " or ".join(str(a) for a in accepted)
        return [
            Failure(
                f"status: expected {shown}, got {response.status} {response.reason}".rstrip(),
                where,
                expected=shown,
                actual=str(response.status),
            )
        ]


def compile_status(value: Any, loc: Location, at: Compiling) -> list[StatusCheck]:
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, int) and not 100 <= item <= 599:
            raise ScenarioFormatError(f"status {item} is not an HTTP status code", loc, "use 100-599")
        textual = isinstance(item, str) and not is_template(item)
        if textual and not STATUS_CLASS.match(item) and not item.isdigit():
            raise ScenarioFormatError(
                f"status {item!r} is neither a code, a class such as '2xx', nor a template",
                loc,
                "e.g. status: 200, status: [200, 204] or status: 2xx",
            )
    return [StatusCheck(at.compile(value, loc), loc)]


def default_status(at: Compiling) -> list[StatusCheck]:
    """A step that says nothing about the status still must not pass on a 500; the failure points
    at the step, since no line says "2xx"."""
    return [StatusCheck(Compiled("2xx", constant=True), at.step_loc)]


KIND = Kind("status", compile_status, default_status)
