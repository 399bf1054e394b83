"""What a check kind is: the key it answers to, its compilation (at load time) into checks, and
what each compiled check holds (its templates, what it needs of the body's bytes) and does (`run`).

A kind is a module of this package exporting `KIND`; runner/checks/__init__.py registers them all in
one table, which the loader asks for every key of `expect` and the engine runs what they compiled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Location
from ..model import CheckUse
from ..templating import Compiled

Context = Mapping[str, Any]


class Order:
    """The order compiled checks run in, and so the order of a step's failures in every report (the
    kinds that came with the predicate vocabulary run after the first ones, as they always did)."""

    STATUS = 0
    HEADERS = 1
    JSON = 2
    SCHEMA = 3
    BODY = 4
    ASSERT = 5
    HEADER_PREDICATES = 6
    BODY_PREDICATES = 7
    BODY_BYTES = 8
    WHERE = 9


@dataclass
class Compiling:
    """What a kind's compilation may ask of the loader, for one step's `expect`."""

    step_loc: Location  # where the step is written (a default check points there)
    compile: Callable[[Any, Location], Compiled]  # a template compiled, one nested too deep refused at its place
    resolve: Callable[[str, Location], Path]  # a literal path under the file policy: missing or outside is refused
    validator: Callable[[Path, Location], Any]  # a JSON Schema file's validator, built and checked once per load


@dataclass(frozen=True)
class Kind:
    """One key of `expect`: `compile` turns what is written under it into checks; `default` gives the
    checks of a step that does not write the key (status: a step must not pass on a 500)."""

    key: str
    compile: Callable[[Any, Location, Compiling], Sequence[CheckUse]]
    default: Callable[[Compiling], Sequence[CheckUse]] | None = None
