"""Text safe to print and to put in XML: control characters escaped, bodies cut to bounded excerpts.

Ground level because both sides need it: the engine renders a failed step's exchange with it
(runner/exchange.py) and the reports print names, messages and that exchange with it
(runner/report/); neither may depend on the other.
"""

from __future__ import annotations

import re

EXCERPT = 2048
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_OFF_LINE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ufffe\uffff]")  # _CONTROL, CR and LF: what one_line escapes


def printable(text: str) -> str:
    """Escape control characters (XML 1.0 forbids most of them)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def excerpt(data: bytes, total: int | None = None, limit: int = EXCERPT) -> str:
    total = len(data) if total is None else total
    if not data:
        return "(empty body)"
    head = data[:limit]
    text = head.decode("utf-8", "replace")
    if text.count("\ufffd") > max(8, len(text) // 20):
        return f"({total} bytes of binary data)"
    more = f"\n... ({total - len(head)} more bytes)" if total > len(head) else ""
    return printable(text) + more


def one_line(text: str) -> str:
    """A value printed on a line of its own (a header, a URL, a name): CR and LF escaped too, so a
    value cannot pass for another header or overwrite the line before it on a terminal."""
    if _OFF_LINE.search(text) is None:  # the usual case, in one scan (the console prints ~3 values a step)
        return text
    return printable(text).replace("\r", "\\r").replace("\n", "\\n")
