"""`capture_as:` beside an include: a fragment's outputs renamed for that include.

The loader builds each step with the chain of renames of the includes it came from (outermost
first); a step then knows, for each name its own file uses, the name the scenario sees (`aliases`):
it captures `token` as `demo_token`, and reads `demo_token` when it says `token`.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from .errors import Location, ScenarioFormatError, relative_display
from .model import Step
from .yamlsource import LocDict

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_capture_as(data: LocDict | None) -> dict[str, str]:
    """An include's `capture_as: {fragment name: scenario name}`, checked on its own."""
    if not data:
        return {}
    seen: dict[str, str] = {}
    for name, new in data.items():
        for what, value, loc in (("name", name, data.key_loc(name)), ("new name", new, data.value_loc(name))):
            if not IDENTIFIER.match(value):
                raise ScenarioFormatError(
                    f"capture_as {what} '{value}' is not an identifier",
                    loc,
                    "use letters, digits and underscores, so later templates can say {{ name }}",
                )
        if new in seen:
            raise ScenarioFormatError(
                f"capture_as gives the name '{new}' to both '{seen[new]}' and '{name}'",
                data.value_loc(name),
                "each output needs a name of its own, or the second would overwrite the first",
            )
        seen[new] = name
    return dict(data)


Renames = tuple[dict[str, str], ...]


def global_name(name: str, renames: Renames) -> str:
    """What the scenario calls `name` of the innermost fragment: each include's rename, inside out."""
    for rename in reversed(renames):
        name = rename.get(name, name)
    return name


def aliases(renames: Renames) -> dict[str, str]:
    """For a step under `renames`: each name its file uses that the scenario calls otherwise."""
    if not renames:  # a step not under an include with `capture_as:`: most steps
        return {}
    names = {n for rename in renames for n in rename}
    return {n: g for n in sorted(names) if (g := global_name(n, renames)) != n}


def check_renamed(
    item: LocDict, steps: list[Step], level: int, target: Path, renamed_away: dict[str, tuple[str, Location]]
) -> None:
    """Every name in `capture_as:` must be something the fragment captures (as the fragment calls it)."""
    data: LocDict = item["capture_as"]
    outputs = {global_name(c, s.renames[level + 1 :]) for s in steps for c in s.captures}
    for name, new in data.items():
        if name not in outputs:
            close = difflib.get_close_matches(name, sorted(outputs), n=1)
            listed = ", ".join(sorted(outputs)) or "nothing"
            raise ScenarioFormatError(
                f"capture_as renames '{name}', but {relative_display(target)} does not capture it",
                data.key_loc(name),
                f"did you mean '{close[0]}'?" if close else f"the fragment captures: {listed}",
            )
        renamed_away.setdefault(name, (new, data.key_loc(name)))
