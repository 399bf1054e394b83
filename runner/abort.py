"""Stopping running scenarios from outside: the run-wide `Stop` switch and each session's `Abort`.

A signal reaches only the main thread, while scenarios run on worker threads blocked in socket calls,
in an upload or in a poll's sleep. Raising into a thread is not possible, so the main thread pulls
`Stop` instead, which triggers the `Abort` of every running scenario: it sets a flag and shuts down
the sockets of the requests in flight. Whatever the step was waiting for then returns at once and
the step ends with `RequestAborted`, an interruption like KeyboardInterrupt, never a transport error.
"""

from __future__ import annotations

import socket
import threading
from typing import Any, Protocol

from .results import ScenarioResult


class RequestAborted(BaseException):
    """The step was stopped from outside (a signal). A BaseException, like KeyboardInterrupt: no
    `except Exception` between the socket and the engine may turn it into an ordinary error."""

    def __init__(self, cause: str):
        super().__init__(cause)
        self.cause = cause


class Abort:
    """One scenario's brake: a flag, and the connections its session has checked out right now.

    `trigger` sets the flag, then shuts down the checked-out sockets; `checkout` registers a
    connection, then looks at the flag. Whichever comes second sees the other, so no request can
    slip between the two. A connection urllib3 drops after an error is never given back; it stays
    in the set until the scenario's session goes, which is harmless (its socket is closed).
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self.is_set = self._event.is_set
        self.wait = self._event.wait  # a poll's sleep: wakes up at once when triggered
        self.cause = "interrupted"
        self._busy: set[Any] = set()
        self._lock = threading.Lock()  # workers check out while the main thread's handler triggers

    def trigger(self, cause: str) -> None:
        self.cause = cause
        self._event.set()
        with self._lock:
            busy = list(self._busy)
        for conn in busy:
            _shutdown(getattr(conn, "sock", None))

    def clear(self) -> None:
        """The step that was stopped is over: cleanup steps run with the brake released."""
        self._event.clear()

    def check(self) -> None:
        if self._event.is_set():
            raise RequestAborted(self.cause)

    def checkout(self, conn: Any) -> None:
        with self._lock:
            self._busy.add(conn)
        if self._event.is_set():
            self.checkin(conn)
            conn.close()
            raise RequestAborted(self.cause)

    def checkin(self, conn: Any) -> None:
        if conn is not None:
            with self._lock:
                self._busy.discard(conn)


def _shutdown(sock: Any) -> None:
    """Wake whoever is blocked on this socket in another thread: shutdown, not close, so the
    descriptor stays valid until its owner closes it. The base class's shutdown also for TLS
    sockets: SSLSocket.shutdown drops its TLS state under the reading thread's feet."""
    if sock is None:
        return
    try:
        if isinstance(sock, socket.socket):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        else:  # urllib3's TLS-in-TLS transport
            sock.shutdown(socket.SHUT_RDWR)
    except (OSError, AttributeError):  # already closed or never connected
        pass


class Stoppable(Protocol):
    """What a running scenario offers the switch (runner/engine/run.py's _ScenarioRun)."""

    abort: Abort

    def abandon(self) -> ScenarioResult:
        """Record, from the main thread, that the scenario is left behind and what may remain."""


class Stop:
    """The run-wide switch: pulled once per signal, it triggers every running scenario's Abort.

    What a pull means is each scenario's business (runner/engine/run.py): the first stops the current
    step and lets the cleanup run, the next abandons the cleanup. `phase` says what the run is doing,
    for the signal handler: while loading and writing reports there is nothing to stop gracefully.
    `pull` runs in a signal handler, on the main thread, which may be holding the lock: hence
    re-entrant. It takes no other lock the main thread could hold (no Event of the main thread).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._running: dict[int, Stoppable] = {}
        self.pulls = 0
        self.cause = ""
        self.phase = "loading"  # loading -> running -> reporting
        self.late = 0  # signals while the reports were written

    def register(self, run: Stoppable) -> None:
        with self._lock:
            self._running[id(run)] = run
            if self.pulls:
                run.abort.trigger(self.cause)

    def unregister(self, run: Stoppable) -> None:
        with self._lock:
            self._running.pop(id(run), None)

    def pull(self, cause: str) -> None:
        with self._lock:
            self.pulls += 1
            self.cause = cause
            running = list(self._running.values())
        for run in running:
            run.abort.trigger(cause)

    def running(self) -> list[Stoppable]:
        with self._lock:
            return list(self._running.values())
