"""Looped steps: `for_each` over a list, `repeat` until a condition holds; one result per iteration.

A `Loop` turns one looped step into its iterations, one at a time, as the scenario loop (run.py)
runs them with step.StepRunner: each `Iteration` carries its name (the step's name rendered with the
item, or `NAME [item]`) and what it binds (`item`, or the `as` name, and `loop`). Results the loop
decides alone (no items, a list that is not one, the rest skipped after a failure) come out as
StepResults to record as they are. What ends a loop:

- for_each in `steps`: a failed iteration; the remaining iterations are recorded SKIPPED.
- for_each in `finally`: nothing; every iteration runs (cleanup does not stop at a failure).
- repeat: `until` true after an iteration; a failed or skipped iteration; `max` iterations, the
  last of which then fails.

Interruptions are run.py's: it checks for one between iterations.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from ..errors import UserError
from ..model import Step
from ..redact import Redactor, is_secret_name
from ..results import Failure, Outcome, Problem, StepResult
from ..templating import Scope, Template
from .captures import Variables, render_name

LABEL_CHARS = 60  # an item shown in an iteration's name is cut after this many characters


@dataclass
class Iteration:
    """One run of a looped step: StepRunner.run(step, name=..., bound=..., then=...)."""

    step: Step
    name: str
    bound: dict[str, Any]
    then: Callable[[Scope, StepResult], None] | None = None
    # what `until` said after this iteration (repeat); None: not evaluated
    done: list[bool] = field(default_factory=list)


class Loop:
    """The iterations of one looped step; `last` is set by the caller to each recorded result."""

    def __init__(self, step: Step, variables: Variables, redactor: Redactor, is_finally: bool):
        assert step.loop is not None
        self.step = step
        self.spec = step.loop
        self.variables = variables
        self.redactor = redactor
        self.is_finally = is_finally
        self.last: StepResult | None = None
        self._names: set[str] = set()

    def __iter__(self) -> Iterator[Iteration | StepResult]:
        if self.spec.items is not None:
            yield from self._for_each()
        else:
            yield from self._repeat()

    # --- for_each --------------------------------------------------------------------------------

    def _for_each(self) -> Iterator[Iteration | StepResult]:
        try:
            items = self.items()
        except UserError as exc:
            yield self._result(self.step.name, Outcome.ERROR, error=Problem.of(exc))
            return
        if not items:
            yield self._result(self.step.name, Outcome.SKIPPED, skip_reason=f"skipped: no items in {self._source()}")
            return
        failed: str | None = None
        for index, item in enumerate(items):
            bound = {
                self.spec.as_name: item,
                "loop": {
                    "id": self.variables.iteration_id(),
                    "index": index + 1,
                    "index0": index,
                    "first": index == 0,
                    "last": index == len(items) - 1,
                    "length": len(items),
                },
            }
            if self.spec.as_name in self.variables.scenario.secrets or is_secret_name(self.spec.as_name):
                self.redactor.add(item)
            name, error = self._name(bound, _label(item, self.redactor))
            if failed is not None:
                yield self._result(name, Outcome.SKIPPED, skip_reason=f"skipped: iteration '{failed}' failed")
                continue
            if error is not None:
                self.last = None
                yield self._result(name, Outcome.ERROR, error=error)
            else:
                self.last = None
                yield Iteration(self.step, name, bound)
            last = self.last
            if not self.is_finally and last is not None and last.outcome in (Outcome.FAILED, Outcome.ERROR):
                failed = last.name

    def items(self) -> list[Any]:
        """The list for_each gives, with the values captured so far; a UserError when it is not one."""
        spec = self.spec
        assert spec.items is not None
        local = self.variables.step_scope(self.step)
        self.variables.render_step_vars(self.step, local)
        value = spec.items.render(local)
        loc = spec.items.value.loc if isinstance(spec.items.value, Template) else spec.loc
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
            kind = "a mapping" if isinstance(value, Mapping) else f"a {type(value).__name__}"
            raise UserError(
                f"for_each must give a list, got {kind}: {_excerpt(value)}",
                loc,
                "a mapping's keys: `| list`; its pairs: `| dictsort`; "
                "a text's lines: `.splitlines()`; nothing to loop over: `| default([])`",
            )
        try:
            items = list(islice(iter(value), spec.max + 1))
        except UserError:
            raise
        except Exception as exc:  # a lazy filter (map, select) failing on an element
            raise UserError(f"for_each: {type(exc).__name__}: {exc}", loc) from None
        if len(items) > spec.max:
            raise UserError(
                f"for_each gave more than {spec.max} items, the most a step may loop over",
                loc,
                f"select fewer, or raise the bound with `max_items:` (now {spec.max}, at most 100000)",
            )
        return items

    # --- repeat ----------------------------------------------------------------------------------

    def _repeat(self) -> Iterator[Iteration | StepResult]:
        spec = self.spec
        assert spec.until is not None
        until = spec.until
        for index in range(spec.max):
            loop = {"id": self.variables.iteration_id(), "index": index + 1, "index0": index, "first": index == 0}
            bound: dict[str, Any] = {"loop": loop}
            name, error = self._name(bound, f"#{index + 1}")
            if error is not None:
                yield self._result(name, Outcome.ERROR, error=error)
                return
            iteration = Iteration(self.step, name, bound)

            def then(local: Scope, result: StepResult, iteration: Iteration = iteration, index: int = index) -> None:
                done = bool(until.render(local))
                iteration.done.append(done)
                if not done and index + 1 >= spec.max:
                    result.outcome = Outcome.FAILED
                    result.failures.append(
                        Failure(
                            f"repeat: {until.value.source} still false after {spec.max} iterations "
                            "(raise `max:` under `repeat` if the listing is that long)",
                            until.value.loc,
                        )
                    )

            iteration.then = then
            self.last = None
            yield iteration
            if not iteration.done or iteration.done[-1]:  # failed, skipped (when) or done
                return

    # --- names -----------------------------------------------------------------------------------

    def _name(self, bound: dict[str, Any], label: str) -> tuple[str, Problem | None]:
        """The iteration's name, unique in this loop; and the error if its name template failed."""
        error = None
        name = f"{self.step.name} [{label}]"
        if self.step.title is not None:
            try:
                local = self.variables.step_scope(self.step)
                self.variables.render_step_vars(self.step, local)
                local.update(bound)
                name = render_name(self.step.title, local)
            except UserError as exc:
                error = Problem.of(exc)
        if name in self._names:
            name = f"{name} #{bound['loop']['index']}"
        self._names.add(name)
        return name, error

    def _source(self) -> str:
        spec = self.spec
        assert spec.items is not None
        return spec.items.value.source if isinstance(spec.items.value, Template) else "the for_each list"

    def _result(self, name: str, outcome: Outcome, **fields: Any) -> StepResult:
        return StepResult(name, self.step.loc, outcome, is_finally=self.is_finally, **fields)


def _label(item: Any, redactor: Redactor) -> str:
    """An item as shown in its iteration's name: text as is; a mapping by its `id` or `name` when
    it has one; anything else as JSON. Masked before it is cut, so a cut secret cannot show."""
    if isinstance(item, Mapping):
        for key in ("id", "name"):
            if isinstance(item.get(key), (str, int)) and not isinstance(item.get(key), bool):
                item = item[key]
                break
    text = item if isinstance(item, str) else json.dumps(item, default=str, ensure_ascii=False)
    text = redactor.mask(text)
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _excerpt(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"
