"""What every check kind shares: bounded values in messages, rendering operands, JSON subset match."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..errors import Location, UserError
from ..results import Failure

Context = Mapping[str, Any]


def short(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render(compiled: Any, context: Context, where: Location) -> tuple[Any, Failure | None]:
    try:
        return compiled.render(context), None
    except UserError as exc:
        loc = exc.location or where
        return None, Failure(f"could not evaluate the expectation: {exc.message}", loc, error=True)


def subset_differences(expected: Any, actual: Any, path: str = "json") -> list[tuple[str, str, str]]:
    """(path, expected, actual) for every place where `actual` does not contain `expected`."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [(path, "an object", short(actual))]
        diffs = []
        for key, value in expected.items():
            sub = f"{path}.{key}" if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key) else f"{path}[{key!r}]"
            if key not in actual:
                diffs.append((sub, short(value), "missing"))
            else:
                diffs.extend(subset_differences(value, actual[key], sub))
        return diffs
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [(path, "a list", short(actual))]
        if len(expected) != len(actual):
            return [(path, f"{len(expected)} items", f"{len(actual)} items: {short(actual)}")]
        diffs = []
        for index, (e, a) in enumerate(zip(expected, actual, strict=True)):
            diffs.extend(subset_differences(e, a, f"{path}[{index}]"))
        return diffs
    same_kind = isinstance(expected, bool) == isinstance(actual, bool)
    if not same_kind or expected != actual:
        return [(path, short(expected), short(actual))]
    return []
