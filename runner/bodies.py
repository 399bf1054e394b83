"""The kinds of request body (`json`, `body`, `file`, `form`), each in one place: how its rendered value
is checked and prepared, what goes on the wire, how a report shows it and how curl sends it again.

The loader knows the keys from `BODIES`, the engine prepares a request's body with its kind
(runner/engine/request.py), runner/http.py sends it and runner/exchange.py describes it: a new kind of
body is one class here (and its key in the JSON Schema's `request`).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from .abort import Abort
from .errors import Location, UserError
from .files import FileAccessError, FilePolicy, HashingReader


class BodyKind(ABC):
    """A key of `request` that gives the body; `value` below is what `prepare` returned."""

    key = ""
    learned = False  # the value may carry secrets the masker learns before anything is sent
    streamed = False  # sent from a file that is read (and hashed) as it goes: `open`, not `payload`
    content_type: str | None = None  # sent unless the request sets its own Content-Type

    def prepare(self, value: Any, loc: Location | None, policy: FilePolicy, base: Path) -> Any:
        """The rendered value as it will be sent; a mistake the user can make is a located UserError."""
        return value

    def payload(self, value: Any) -> Any:
        """What requests sends: bytes, or a mapping it form-encodes; the prepared value unless the kind
        encodes it. A streamed kind is sent from `open` instead, never from here."""
        return value

    @abstractmethod
    def shown(self, value: Any) -> str:
        """The body as an account of the exchange shows it (masked and cut by the caller)."""

    @abstractmethod
    def curl(self, value: Any, headers: Mapping[str, str], mask: Callable[[str], str]) -> list[str]:
        """curl's arguments sending the very same body (after its headers)."""


def _no_default_content_type(headers: Mapping[str, str]) -> list[str]:
    """curl --data-binary adds a form Content-Type the runner never sent; `-H 'Content-Type:'` drops it."""
    if any(k.lower() == "content-type" for k in headers):
        return []
    return ["-H", "Content-Type:"]


class JsonBody(BodyKind):
    key = "json"
    learned = True
    content_type = "application/json"

    def prepare(self, value: Any, loc: Location | None, policy: FilePolicy, base: Path) -> Any:
        """A template can yield what JSON cannot carry (a function, bytes): say so where it was written."""
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise UserError(
                f"the json body cannot be sent as JSON: {exc}",
                loc,
                "a template here must give strings, numbers, booleans, null, lists or mappings",
            ) from None
        return value

    def payload(self, value: Any) -> bytes:
        return json.dumps(value).encode()

    def shown(self, value: Any) -> str:
        return json.dumps(value, indent=2, ensure_ascii=False)

    def curl(self, value: Any, headers: Mapping[str, str], mask: Callable[[str], str]) -> list[str]:
        parts = []
        if not any(k.lower() == "content-type" for k in headers):
            parts += ["-H", f"Content-Type: {self.content_type}"]
        return [*parts, "--data-binary", mask(json.dumps(value))]  # the very bytes sent


class TextBody(BodyKind):
    key = "body"

    def prepare(self, value: Any, loc: Location | None, policy: FilePolicy, base: Path) -> str:
        return value if isinstance(value, str) else str(value)

    def payload(self, value: str) -> bytes:
        return value.encode("utf-8")

    def shown(self, value: str) -> str:
        return value

    def curl(self, value: str, headers: Mapping[str, str], mask: Callable[[str], str]) -> list[str]:
        return [*_no_default_content_type(headers), "--data-binary", mask(value)]


class FileBody(BodyKind):
    key = "file"
    streamed = True

    def prepare(self, value: Any, loc: Location | None, policy: FilePolicy, base: Path) -> Path:
        return policy.resolve(str(value), base, loc)

    def open(
        self,
        path: Path,
        algorithms: tuple[str, ...],
        on_progress: Callable[[int, int], None] | None,
        abort: Abort,
    ) -> HashingReader:
        try:
            return HashingReader(path, algorithms, on_progress, abort)
        except OSError as exc:  # checked at render time; gone or locked since
            raise FileAccessError(f"cannot read the upload file {path}: {exc.strerror}") from None

    def shown(self, value: Path) -> str:
        return f"(file {value}, streamed)"

    def curl(self, value: Path, headers: Mapping[str, str], mask: Callable[[str], str]) -> list[str]:
        return ["-H", "Expect:", *_no_default_content_type(headers), "--data-binary", f"@{value}"]


class FormBody(BodyKind):
    key = "form"
    learned = True

    def payload(self, value: dict[str, Any]) -> dict[str, Any]:
        return value

    def shown(self, value: dict[str, Any]) -> str:
        return urlencode(value, doseq=True)

    def curl(self, value: dict[str, Any], headers: Mapping[str, str], mask: Callable[[str], str]) -> list[str]:
        parts = []
        for key, item in value.items():
            parts += ["--data-urlencode", mask(f"{key}={item}")]
        return parts


# In the order the loader names them ("choose one of json, body, file or form").
BODIES: dict[str, BodyKind] = {kind.key: kind for kind in (JsonBody(), TextBody(), FileBody(), FormBody())}
