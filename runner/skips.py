"""`skip:` of a file, a test or a step (parsed and decided), and the shape of a file with `tests:`.

`skip` is a reason (skip always), a `{if, reason}` mapping (skip when the expression is true), or
a list of them: the first that holds gives the reason. The reason may be a template; it is rendered
when the skip is decided, so reports show text, never `{{ ... }}`. The loader calls `parse_skips`
and `check_shape`; the engine calls `decide` (runner/engine/run.py, step.py).
"""

from __future__ import annotations

from typing import Any

from .errors import Location, ScenarioFormatError
from .model import SkipSpec
from .templating import Compiled, compile_value, is_template
from .text import one_line
from .yamlsource import LocDict, LocList

_REASON_LIMIT = 500  # characters of a rendered reason: one line in every report


def parse_skips(data: LocDict) -> list[SkipSpec]:
    """The `skip:` of a file, a test or a step (already checked against the JSON Schema)."""
    if "skip" not in data:
        return []
    given = data["skip"]
    if isinstance(given, LocList):
        entries = [(item, given.item_loc(i)) for i, item in enumerate(given)]
    else:
        entries = [(given, data.value_loc("skip"))]
    return [_entry(value, loc) for value, loc in entries]


def _entry(value: Any, loc: Location) -> SkipSpec:
    if not isinstance(value, LocDict):  # `skip: "reason"`: always
        return SkipSpec(compile_value(str(value), loc), loc)
    reason = compile_value(str(value["reason"]), value.value_loc("reason"))
    condition = value["if"]
    if isinstance(condition, bool):
        return SkipSpec(reason, loc, None if condition else Compiled(False, constant=True))
    if not is_template(condition):
        raise ScenarioFormatError(
            f"skip 'if' must be a Jinja expression, got the plain text {condition!r}",
            value.value_loc("if"),
            f'write it as "{{{{ {condition} }}}}" (quoted), e.g. if: "{{{{ not http_image }}}}"',
        )
    return SkipSpec(reason, loc, compile_value(condition, value.value_loc("if")))


def constant_reason(skips: list[SkipSpec]) -> str | None:
    """The reason of an unconditional skip written as plain text: decided before anything is set
    up (no fixture, no setup, nothing sent). None when deciding needs the scenario's values."""
    for skip in skips:
        if skip.condition is not None and not (skip.condition.constant and skip.condition.value is False):
            return None  # an earlier condition must be rendered first
        if skip.condition is None:
            return _shown(skip.reason.value) if skip.reason.constant else None
    return None


def decide(skips: list[SkipSpec], scope: dict[str, Any]) -> str | None:
    """`skipped: <reason>` for the first entry that holds in `scope`; None when none does.
    A template error raises UserError (the caller records it as an error of the scenario or step)."""
    for skip in skips:
        if skip.condition is not None and not skip.condition.render(scope):
            continue
        return _shown(skip.reason.render(scope))
    return None


def _shown(reason: Any) -> str:
    text = one_line(" ".join(str(reason).split())) or "(no reason given)"
    return "skipped: " + text[:_REASON_LIMIT]


def check_shape(data: LocDict) -> None:
    """A file is one scenario (`steps:`, `finally:`) or independent tests (`tests:`, with optional
    `setup:` and `teardown:`), never both; the JSON Schema cannot say so with a useful message."""
    if "tests" in data:
        for key, hint in (
            ("steps", "move them into a test (tests: [{name: ..., steps: [...]}]), or into `setup:`"),
            ("finally", "use `teardown:` for what the file sets up, or `finally:` inside a test"),
        ):
            if key in data:
                raise ScenarioFormatError(
                    f"a file with `tests:` has no top-level `{key}:`",
                    data.key_loc(key),
                    hint,
                )
        return
    for key in ("setup", "teardown"):
        if key in data:
            raise ScenarioFormatError(
                f"`{key}:` belongs to a file with `tests:`",
                data.key_loc(key),
                "in a scenario with `steps:`, put set-up steps first in `steps:` and cleanup in `finally:`;"
                " or split the steps into `tests:`",
            )
    if "steps" not in data:
        raise ScenarioFormatError(
            "missing required key 'steps' in the file",
            data.loc,
            "add `steps:` (one scenario), or `tests:` (independent tests, each with `name:` and `steps:`)",
        )
