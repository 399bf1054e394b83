"""Bodies of an exchange made readable: a JSON body indented, long lines wrapped.

The exchange text (`> ` request lines, `< ` response lines, a bare `>` or `<` before each body) stays
wire-true in the results and the JUnit file; the console and the HTML report show it through here. A
body is re-indented only when it is JSON as a whole (an excerpt cut at the size limit is not) and lines are
wrapped at spaces only, never inside a word, so a token is never cut in two (the console masks secrets
by their whole text).
"""

from __future__ import annotations

import json
import re
import textwrap

_MORE = re.compile(r"^\.\.\. \(\d+ more bytes\)$")


def exchange_lines(exchange: str, width: int | None = None) -> list[str]:
    """The exchange's lines, each body through `body_lines` (width None: indent every JSON body, no wrap)."""
    lines = exchange.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        if line not in (">", "<"):
            continue
        prefix = line + " "
        end = i
        while end < len(lines) and lines[end].startswith(prefix):
            end += 1
        body = [x[len(prefix) :] for x in lines[i:end]]
        out.extend((prefix + x).rstrip() for x in body_lines(body, None if width is None else width - len(prefix)))
        i = end
    return out


def body_lines(lines: list[str], width: int | None = None) -> list[str]:
    """A body's lines: JSON indented (always without a width; with one, when it does not fit on a
    line), then every line longer than the width wrapped at spaces, continuation lines indented."""
    note = lines[-1:] if len(lines) == 2 and _MORE.match(lines[1]) else []  # "... (N more bytes)"
    first = lines[0] if lines else ""
    if len(lines) - len(note) == 1 and first[:1] in ("{", "[") and (width is None or len(first) > width):
        try:
            value = json.loads(first)
        except ValueError:
            value = None  # not JSON, or cut at the excerpt's limit
        if isinstance(value, (dict, list)) and value:
            lines = json.dumps(value, indent=2, ensure_ascii=False).splitlines() + note
    if width is None:
        return lines
    out: list[str] = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
            continue
        indent = " " * (len(line) - len(line.lstrip(" ")))
        out.extend(
            textwrap.wrap(
                line,
                max(width, 20),
                subsequent_indent=indent + "  ",
                break_long_words=False,
                break_on_hyphens=False,
                replace_whitespace=False,
            )
            or [line]
        )
    return out
