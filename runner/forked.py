"""Work done on a second core: a function run in a forked copy of this process, its answer in a file.

Why a process: a large run has work that must end before the next phase can start (checking every
file before anything is sent; writing the reports), all of it Python code that holds the GIL, while
the machine's other cores idle. A thread would gain nothing. A forked copy starts in ~5 ms with
everything already loaded (no import, no pickled arguments), and its answer comes back through an
unnamed temporary file (no pipe to fill and block on while the parent is busy).

What the copy may do, so that it never changes what the run does:
- it writes nothing but its answer: no console, no report, no file of the run (the run writes what
  the copy answers, under its own policies). It leaves with `os._exit`, which flushes no inherited
  buffer and runs no atexit hook;
- it never outlives the run: it ignores the signals the run handles (the run decides what a signal
  means in each phase, and stops the copy with SIGKILL when it gives up: `reap`, called on every
  way out of the caller); the kernel kills it if the parent dies (PR_SET_PDEATHSIG), and it looks
  for its parent between pieces of work as well;
- whatever goes wrong in it (an exception, a crash, the OOM killer) only means no answer: the
  caller then does the work itself.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def usable() -> bool:
    """Whether a forked copy is safe and useful here: Linux (fork is what it is on macOS only for
    processes with no system frameworks loaded), no other thread (a lock held by another thread at
    the fork stays locked forever in the copy), SIGCHLD not ignored (the kernel would reap the copy
    before the run could wait for it), and a second core to run it on (CPUs this process may use,
    and a cgroup quota of at least two)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    if threading.current_thread() is not threading.main_thread() or threading.active_count() != 1:
        return False
    if signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN:
        return False
    try:
        return len(os.sched_getaffinity(0)) >= 2 and _quota() >= 2
    except OSError:
        return False


def _quota() -> float:
    """CPUs the cgroup grants (cgroup v2 `cpu.max`: "QUOTA PERIOD" or "max ..."); inf if unlimited."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as fh:
            quota, _, period = fh.read().partition(" ")
    except OSError:
        return float("inf")
    try:
        return float("inf") if quota == "max" else int(quota) / int(period)
    except ValueError:
        return float("inf")


class Forked:
    """`work(alive, out)` run in a forked copy of this process (`start`), writing its answer into
    `out`; `result()` is that answer, or None.

    `alive()` is for the copy to call between pieces of work: False once the parent is gone (the
    copy then stops). The copy ignores the signals the run handles: the run decides what a signal
    means in each phase, and stops the copy itself (`reap`) when it gives up. Start it only when
    `usable()`, after the object is where the caller's `finally` calls `reap`.
    """

    def __init__(self, work: Callable[[Callable[[], bool], BinaryIO], None]):
        self._work = work
        self._answer: BinaryIO | None = None
        self._pid: int | None = None

    def start(self) -> None:
        """Fork the copy. The run's signals are blocked from before the fork until the copy ignores
        them and the parent has recorded the copy: no run's handler ever runs in the copy, and no
        interruption can leave a copy the parent does not know. A fork or a temporary file that
        fails (no memory, a pids limit, a full disk) only means no copy."""
        blocked = _block()
        try:
            try:
                self._answer = tempfile.TemporaryFile()  # noqa: SIM115 - closed by reap()
                parent = os.getpid()
                pid = os.fork()
            except OSError:
                if self._answer is not None:
                    self._answer.close()
                    self._answer = None
                return
            if pid == 0:  # the copy: never returns
                self._serve(parent, blocked)
            self._pid = pid
        finally:
            _restore(blocked)

    def _serve(self, parent: int, blocked: Any) -> None:
        code = 1
        try:
            for name in _SIGNALS:
                signum = getattr(signal, name, None)
                if signum is not None:
                    signal.signal(signum, signal.SIG_IGN)
            _restore(blocked)  # what arrived since the fork is dropped: ignored now
            _die_with(parent)
            assert self._answer is not None
            self._work(lambda: os.getppid() == parent, self._answer)
            self._answer.flush()
            code = 0
        except BaseException:  # no answer: the parent does the work itself
            pass
        finally:
            os._exit(code)

    def result(self) -> BinaryIO | None:
        """Wait for the copy to end; its answer (read from the start, open until `reap`) if it ended
        well. Interruptible (a signal's handler may raise here): the caller's `finally` calls `reap`."""
        if self._pid is None or self._answer is None:
            return None
        try:
            _, status = os.waitpid(self._pid, 0)
        except ChildProcessError:  # reaped by someone else: its answer cannot be trusted
            self._pid = None
            return None
        self._pid = None
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            return None
        self._answer.seek(0)  # the copy moved the offset both share
        return self._answer

    def reap(self) -> None:
        """Stop the copy if it still runs, wait for it, and drop its answer: nothing outlives the
        caller. Signals wait meanwhile (a second Ctrl-C must not leave the copy unreaped)."""
        blocked = _block()
        try:
            pid, self._pid = self._pid, None
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
        finally:
            if self._answer is not None:
                self._answer.close()
            _restore(blocked)


def _block() -> Any:
    """Block the run's signals in this thread; what `_restore` takes back."""
    signums = [getattr(signal, name) for name in _SIGNALS if hasattr(signal, name)]
    return signal.pthread_sigmask(signal.SIG_BLOCK, signums)


def _restore(blocked: Any) -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _die_with(parent: int) -> None:
    """Have the kernel kill this copy when its parent dies (PR_SET_PDEATHSIG): a copy blocked in a
    system call (a FIFO that nobody writes to, given as a scenario file) never gets to look."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the copy still looks for its parent between pieces
        pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


_PR_SET_PDEATHSIG = 1
