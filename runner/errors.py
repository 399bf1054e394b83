"""User-facing errors, each pointing at the place in a file that caused it.

Every mistake a user can make must end as `path:line:col: message`, the offending line quoted and a
hint, never as a traceback. Keeping the location on the exception (instead of formatting early) lets
the CLI, the pytest plugin and the reports each render it their own way.
"""

from __future__ import annotations

import os
import stat
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple


class Location(NamedTuple):
    """A 1-based position in a source file; `line == 0` means "the file as a whole".

    A NamedTuple, not a dataclass: the YAML loader makes one for every key and value of every file,
    and a tuple is made three times faster.
    """

    path: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.path
        return f"{self.path}:{self.line}:{self.col}"

    def source_line(self) -> str | None:
        """The quoted line, read lazily so errors stay cheap until someone prints them."""
        if self.line <= 0 or not _quotable(self.path):
            return None
        try:
            with open(self.path, "rb") as fh:
                number = 1
                while number <= self.line:
                    raw = fh.readline(_LINE_LIMIT)
                    if not raw:
                        return None
                    if number == self.line:
                        return raw.decode("utf-8", "replace").rstrip("\r\n")
                    while not raw.endswith(b"\n") and raw:  # skip the rest of a very long line
                        raw = fh.readline(_LINE_LIMIT)
                    number += 1
        except OSError:
            return None
        return None

    def within(self, text: str, pos: int | None) -> Location:
        """The location of character `pos` of the scalar `text` starting here, when the source line
        spells it out literally (plain or quoted, no escapes before `pos`); else this location."""
        line = self.source_line()
        if pos is None or line is None or self.col <= 0:
            return self
        tail, head = line[self.col - 1 :], text[:pos]
        for opener, forbidden in (('"', '"\\'), ("'", "'"), ("", "")):
            if tail.startswith(opener + head) and not any(c in head for c in forbidden):
                return Location(self.path, self.line, self.col + len(opener) + pos)
        return self


_LINE_LIMIT = 64 * 1024  # bytes of a line kept for quoting


def _quotable(path: str) -> bool:
    """Only regular files with a size are quoted: opening a FIFO to read it again would block, and
    a /proc file (size 0) such as /proc/self/environ would print the process's environment."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size > 0


# Control characters shown as their Unicode "control pictures" (NUL -> U+2400), one column each, so
# a quoted line cannot move the cursor or ring the terminal and the caret stays under its column.
_VISIBLE = {
    **{code: 0x2400 + code for code in range(0x20) if code != 0x09},
    0x7F: 0x2421,
    **dict.fromkeys(range(0x80, 0xA0), 0xFFFD),  # C1 controls: some terminals obey them too
}


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
                text, col = _window(text.translate(_VISIBLE), self.location.col)
                number = f"{self.location.line:>4} | "
                lines.append(number + text)
                if col > 0:
                    # Keep the line's tabs under it, so the caret lines up however the terminal shows tabs.
                    pad = "".join(c if c == "\t" else " " for c in text[: col - 1])
                    lines.append(" " * len(number) + pad + "^")
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


QUOTE_WIDTH = 120


def _window(text: str, col: int) -> tuple[str, int]:
    """At most QUOTE_WIDTH characters of a line around `col` (a minified line can be megabytes)."""
    if len(text) <= QUOTE_WIDTH:
        return text, col
    start = max(0, min(col - 1 - QUOTE_WIDTH // 2, len(text) - QUOTE_WIDTH))
    shown = text[start : start + QUOTE_WIDTH]
    prefix = "..." if start > 0 else ""
    suffix = "..." if start + QUOTE_WIDTH < len(text) else ""
    return prefix + shown + suffix, (col - start + len(prefix) if col > 0 else col)


class ScenarioFormatError(UserError):
    """The scenario file is not a valid scenario (YAML, structure, templates, referenced files)."""


class UsageError(UserError):
    """A command-line option or argument is wrong."""


def relative_display(path: str | Path) -> str:
    """Show paths relative to the working directory when possible: shorter, and what users typed."""
    return _relative_display(str(path), os.getcwd())


# Room for every file of a large run: each is shown ~8 times (loaded, checked, loaded again, its
# result), and with 4,096 entries a 10,000-file run missed every time, two realpath walks each.
@lru_cache(maxsize=16384)
def _relative_display(path: str, cwd: str) -> str:
    """Cached: each name is shown several times per file (messages, locations), and resolving it
    walks the file system every time. Keyed by the working directory too, which tests change."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(_resolved(cwd)))
    except ValueError:
        return str(p)


@lru_cache(maxsize=16)
def _resolved(directory: str) -> Path:
    return Path(directory).resolve()
