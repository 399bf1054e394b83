"""User-facing errors, each pointing at the place in a file that caused it.

Every mistake a user can make must end as `path:line:col: message`, the offending line quoted and a
hint, never as a traceback. Keeping the location on the exception (instead of formatting early) lets
the CLI, the pytest plugin and the reports each render it their own way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """A 1-based position in a source file; `line == 0` means "the file as a whole"."""

    path: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.path
        return f"{self.path}:{self.line}:{self.col}"

    def source_line(self) -> str | None:
        """The quoted line, read lazily so errors stay cheap until someone prints them."""
        if self.line <= 0:
            return None
        try:
            with open(self.path, "rb") as fh:
                for number, raw in enumerate(fh, start=1):
                    if number == self.line:
                        return raw.decode("utf-8", "replace").rstrip("\r\n")
                    if number > self.line:
                        break
        except OSError:
            return None
        return None


class UserError(Exception):
    """A mistake in what the user gave us (a scenario, an option, a file): exit code 2."""

    def __init__(self, message: str, location: Location | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def render(self) -> str:
        """`path:line:col: message`, the line with a caret under the column, then the hint."""
        head = f"{self.location}: {self.message}" if self.location else self.message
        lines = [head]
        if self.location is not None:
            text = self.location.source_line()
            if text is not None:
                number = f"{self.location.line:>4} | "
                lines.append(number + text)
                if self.location.col > 0:
                    lines.append(" " * (len(number) + self.location.col - 1) + "^")
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


class ScenarioFormatError(UserError):
    """The scenario file is not a valid scenario (YAML, structure, templates, referenced files)."""


class UsageError(UserError):
    """A command-line option or argument is wrong."""


def relative_display(path: str | Path) -> str:
    """Show paths relative to the working directory when possible: shorter, and what users typed."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)
