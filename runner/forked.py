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
from typing import BinaryIO

_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def usable() -> bool:
    """Whether a forked copy is safe and useful here: Linux (fork is what it is on macOS only for
    processes with no system frameworks loaded), no other thread (a lock held by another thread at
    the fork stays locked forever in the copy), and a second core to run it on."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    if threading.current_thread() is not threading.main_thread() or threading.active_count() != 1:
        return False
    try:
        return len(os.sched_getaffinity(0)) >= 2
    except OSError:
        return False


class Forked:
    """`work(alive, out)` run in a forked copy of this process, writing its answer into `out`;
    `result()` is that answer, or None.

    `alive()` is for the copy to call between pieces of work: False once the parent is gone (the
    copy then stops). The copy ignores the signals the run handles: the run decides what a signal
    means in each phase, and stops the copy itself (`reap`) when it gives up. Create it only when
    `usable()`.
    """

    def __init__(self, work: Callable[[Callable[[], bool], BinaryIO], None]):
        self._answer: BinaryIO = tempfile.TemporaryFile()  # noqa: SIM115 - closed by reap()
        parent = os.getpid()
        self._pid: int | None = os.fork()
        if self._pid == 0:  # the copy: never returns
            self._serve(work, parent)

    def _serve(self, work: Callable[[Callable[[], bool], BinaryIO], None], parent: int) -> None:
        code = 1
        try:
            _die_with(parent)
            for name in _SIGNALS:
                signum = getattr(signal, name, None)
                if signum is not None:
                    signal.signal(signum, signal.SIG_IGN)
            work(lambda: os.getppid() == parent, self._answer)
            self._answer.flush()
            code = 0
        except BaseException:  # no answer: the parent does the work itself
            pass
        finally:
            os._exit(code)

    def result(self) -> BinaryIO | None:
        """Wait for the copy to end; its answer (read from the start, open until `reap`) if it ended
        well. Interruptible (a signal's handler may raise here): the caller's `finally` calls `reap`."""
        if self._pid is None:
            return None
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            return None
        self._answer.seek(0)  # the copy moved the offset both share
        return self._answer

    def reap(self) -> None:
        """Stop the copy if it still runs, wait for it, and drop its answer: nothing outlives the caller."""
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
        self._answer.close()


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
