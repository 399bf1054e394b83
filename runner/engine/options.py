"""What a front decides about how a run sends requests: timeouts, TLS, verbosity, live progress.

A module of its own because every part of the engine reads it (request preparation, polling, the
scenario loop's cleanup bound) and none of them should import another just for this.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunOptions:
    cli_vars: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    insecure: bool = False
    cacert: str | None = None
    keep_exchanges: bool = False  # -v: keep the exchange of passing steps too
    cleanup_timeout: float = 30.0  # bound on `finally` steps after an interruption
    progress: Callable[[str], None] | None = None  # live status of long uploads and polls (a TTY)
