"""Masking secrets in everything the runner writes.

Secrets are learned as the run goes: values of variables marked secret or named like a password,
secret environment variables, captured values of secret headers, JSON fields named like
passwords or tokens. Every text leaving the runner (console, reports, error messages, curl lines)
passes through `Redactor.mask`, which also catches the JSON- and URL-escaped forms of each value.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET_LENGTH = 3
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-auth-token",
        "x-subject-token",
        "x-api-key",
        "cookie",
        "set-cookie",
    }
)
SECRET_NAME = re.compile(r"pass(word|wd|phrase)?$|passw|secret|token|api_?key|credential|private", re.I)


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


class Redactor:
    """Knows the secret values of a run; shared by all scenarios, safe across threads."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._learned: set[str] = set()  # texts whose forms are in _values: the token is re-added every step
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: Any) -> None:
        """A secret that is a mapping or a list (credentials from a vars file) is secret throughout."""
        if isinstance(value, dict):
            for item in value.values():
                self.add(item)
            return
        if isinstance(value, (list, tuple)):
            for item in value:
                self.add(item)
            return
        if value is None or isinstance(value, bool):
            return
        text = str(value)
        if len(text) < MIN_SECRET_LENGTH or text in self._learned:
            return
        as_json = json.dumps(text)[1:-1]
        forms = {
            text,
            as_json,
            json.dumps(text, ensure_ascii=False)[1:-1],  # how reports show JSON bodies
            json.dumps(as_json)[1:-1],  # a JSON document quoted inside another (echoed bodies)
            quote(text, safe=""),
            quote_plus(text),
        }
        with self._lock:
            if not forms <= self._values:
                self._values |= {f for f in forms if len(f) >= MIN_SECRET_LENGTH}
                ordered = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
            # Last: another thread that finds `text` here returns without waiting, so the pattern
            # that masks it must already be published.
            self._learned.add(text)

    def add_from_json(self, value: Any) -> None:
        """Learn the values of password-like fields anywhere in a JSON document."""
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and is_secret_name(key) and isinstance(item, (str, int, float)):
                    self.add(item)
                else:
                    self.add_from_json(item)
        elif isinstance(value, list):
            for item in value:
                self.add_from_json(item)

    def add_from_headers(self, headers: Mapping[str, Any]) -> None:
        for name, value in headers.items():
            if name.lower() in SECRET_HEADERS:
                self.add(value)
                if isinstance(value, str) and " " in value:  # "Bearer abc": the credential alone too
                    self.add(value.split(" ", 1)[1])

    def add_from_env(self, environ: Mapping[str, str]) -> None:
        for name, value in environ.items():
            if is_secret_name(name):
                self.add(value)

    def mask(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def mask_headers(self, headers: Iterable[tuple[str, Any]]) -> list[tuple[str, str]]:
        return [(name, MASK if name.lower() in SECRET_HEADERS else self.mask(str(value))) for name, value in headers]

    def __contains__(self, value: str) -> bool:
        return value in self._values
