"""Where a run may write: the one output-path policy, checked before the run and applied at write time.

A report (and `from-curl -o`) never replaces an input of the run nor anything but a regular file:

- a regular file, or a path that does not exist yet: written atomically (a temporary file in the
  same directory, then os.replace), with the permissions a plain open() would give (umask), so a CI
  job that dies mid-write never leaves half a file for its parser;
- a symlink is followed: the policy applies to its target, and the link itself stays a link;
- a character device or a FIFO (`/dev/null`, `/dev/stdout`, `mkfifo`): streamed into, never renamed
  over (as root, `--junit /dev/null` used to replace the machine's /dev/null with a regular file);
  a FIFO nobody reads is an error after a short wait, not a hang;
- one of the process's own descriptors (`/dev/stdout`, `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N`):
  written into through the descriptor, appended, whatever it is (a terminal, a pipe to `tee`, a log
  file the shell redirected to): resolving the link would replace the log file, or name a pipe that
  no path can open;
- a directory, a block device, a socket: refused;
- a file the run reads (scenario, fragment, schema, vars file, CA bundle, upload, digest helper
  path), compared by (st_dev, st_ino) so a hard link or a symlink to one counts: refused. The
  loader's inputs are known before the run; uploads and helper paths are learned while it runs, so
  the check is made again at write time.

`check` runs before anything is sent (a UsageError: exit 2); `write` is the one function every
report writer uses. Both raise OutputError, a UserError whose message starts with the option and
path the user gave (`--junit PATH: ...`).
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError, relative_display
from .files import InputFiles

FIFO_WAIT = 2.0  # seconds to wait for a FIFO's reader to appear, e.g. `cat fifo` started just after
_POLL = 0.05

# Not regular files, and not written into: a report has no business on a disk or a socket.
_REFUSED = (
    (stat.S_ISDIR, "is a directory", "give the path of a file, e.g. reports/junit.xml"),
    (stat.S_ISBLK, "is a block device", "give the path of a regular file, a character device or a FIFO"),
    (stat.S_ISSOCK, "is a socket", "give the path of a regular file, a character device or a FIFO"),
)


class OutputError(UsageError):
    """An output path the policy refuses, or a write that failed; the message names the option."""


@dataclass(frozen=True)
class Target:
    """What an output path is, once symlinks are followed."""

    real: str  # the path written (symlinks resolved)
    stream: bool  # True: a character device or FIFO, written into; False: replaced atomically
    identity: object  # (st_dev, st_ino) of an existing file, else the resolved path
    device: bool = False  # a character device (several reports may go to /dev/null)
    descriptor: bool = False  # /dev/stdout and the like: whatever the descriptor is, written into


def check(outputs: Sequence[tuple[str, str]], inputs: InputFiles, what: str = "report") -> None:
    """Before the run: every (label, path) must be writable under the policy, and all distinct.

    `label` is what the user typed (`--junit reports/junit.xml`); messages start with it.
    """
    seen: dict[object, str] = {}
    for label, path in outputs:
        target = examine(label, path, inputs, what)
        if target.identity in seen and not target.device:  # /dev/null twice is fine; one file twice is not
            raise OutputError(
                f"{label}: the same file as {seen[target.identity]}", hint="give each report its own path"
            )
        seen[target.identity] = label


_DESCRIPTOR = re.compile(r"^/(dev/(stdout|stderr|fd/\d+)|proc/(self|thread-self|\d+)/fd/\d+)$")


def _descriptor_path(path: str | Path) -> str | None:
    """`path`, or the symlink on the way to its target, that names an open descriptor, if one does."""
    current = os.path.abspath(path)
    for _ in range(8):
        if _DESCRIPTOR.match(current):
            return current
        if not os.path.islink(current):
            return None
        current = os.path.normpath(os.path.join(os.path.dirname(current), os.readlink(current)))
    return None


def _is_descriptor(path: str | Path) -> bool:
    return _descriptor_path(path) is not None


def _own_descriptor(path: str) -> int | None:
    """The number of our own descriptor that `path` names (/dev/stdout: 1), to write through it: a
    new open() of a log file gets an offset of its own, and the console's next line would overwrite
    the report."""
    named = _descriptor_path(path)
    if named is None:
        return None
    alias = {"/dev/stdout": 1, "/dev/stderr": 2}.get(named)
    if alias is not None:
        return alias
    match = re.match(r"^/(?:dev/fd|proc/(self|thread-self|\d+)/fd)/(\d+)$", named)
    if match is None or (match.group(1) and match.group(1).isdigit() and int(match.group(1)) != os.getpid()):
        return None
    return int(match.group(2))


def examine(label: str, path: str | Path, inputs: InputFiles | None = None, what: str = "report") -> Target:
    """Classify `path` under the policy, or raise OutputError saying why nothing may be written there."""
    if _is_descriptor(path):
        try:
            st = os.stat(path)
        except OSError as exc:
            raise OutputError(
                f"{label}: cannot use this path ({exc.strerror})", hint="is the descriptor open?"
            ) from None
        found = inputs.find(st) if inputs is not None and stat.S_ISREG(st.st_mode) else None
        if found is not None:
            raise OutputError(
                f"{label}: is {relative_display(found)}, an input of this run; a {what} never replaces one",
                hint=f"write the {what} elsewhere",
            )
        return Target(str(path), True, (st.st_dev, st.st_ino), device=True, descriptor=True)
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except (FileNotFoundError, NotADirectoryError):  # not there yet, or under a file: _creatable says which
        _creatable(label, real, what)
        return Target(real, False, real)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise OutputError(f"{label}: cannot use this path ({reason})", hint="give the path of a file") from None
    mode = st.st_mode
    for test, message, hint in _REFUSED:
        if test(mode):
            raise OutputError(f"{label}: {message}", hint=hint)
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        if not os.access(real, os.W_OK):
            kind = "FIFO" if stat.S_ISFIFO(mode) else "character device"
            raise OutputError(f"{label}: this {kind} is not writable", hint="give a path you may write")
        return Target(real, True, (st.st_dev, st.st_ino), stat.S_ISCHR(mode))
    if not stat.S_ISREG(mode):
        raise OutputError(f"{label}: is neither a regular file, a character device nor a FIFO", hint="give a file path")
    found = inputs.find(st) if inputs is not None else None
    if found is not None:
        raise OutputError(
            f"{label}: is {relative_display(found)}, an input of this run; a {what} never replaces one",
            hint=f"write the {what} elsewhere (a link to an input counts as the input)",
        )
    _creatable(label, real, what)
    return Target(real, False, (st.st_dev, st.st_ino))


def _creatable(label: str, real: str, what: str) -> None:
    """An atomic replace needs a writable directory: the nearest existing one, created down from."""
    existing = Path(real).parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(
            f"{label}: cannot create the {what} there ({relative_display(existing)} is not a writable directory)",
            hint="give a path in a writable directory",
        )


def write(
    path: str | Path,
    text: str | Iterable[str],
    inputs: InputFiles | None = None,
    label: str | None = None,
    what: str = "report",
) -> None:
    """Write `text` (UTF-8; a string, or pieces of one written as they come, so that a large report
    is never whole in memory) at `path` under the policy; OutputError if refused or the write fails.

    The policy is applied again here, with every input the run learned while running.
    """
    label = label or str(path)
    target = examine(label, path, inputs, what)
    data = (piece.encode("utf-8") for piece in ([text] if isinstance(text, str) else text))
    try:
        if target.stream:
            _stream(label, target.real, data, fifo=not target.device, any_kind=target.descriptor)
        else:
            _replace(target.real, data)
    except OSError as exc:
        raise OutputError(f"{label}: cannot write the {what}: {exc.strerror or exc}") from None


def _stream(label: str, real: str, data: Iterable[bytes], fifo: bool, any_kind: bool = False) -> None:
    """Write into a character device, a FIFO or one of our descriptors in place: no truncation, no
    rename; appended (a descriptor redirected to a log file keeps the lines before the report)."""
    own = _own_descriptor(real) if any_kind else None
    fd = os.dup(own) if own is not None else _open_stream(label, real, fifo)
    try:
        mode = os.fstat(fd).st_mode
        if not (any_kind or stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):  # replaced since examine(): an input now?
            raise OutputError(f"{label}: changed since it was checked; nothing was written")
        os.set_blocking(fd, True)  # a slow reader is waited for, not an EAGAIN
        for piece in data:
            view = memoryview(piece)
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _open_stream(label: str, real: str, fifo: bool) -> int:
    deadline = time.monotonic() + FIFO_WAIT
    while True:
        try:
            # O_NONBLOCK: opening a FIFO nobody reads fails with ENXIO instead of blocking forever.
            return os.open(real, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno != errno.ENXIO or not fifo:  # a device without its driver says ENXIO too
                raise
            if time.monotonic() >= deadline:
                raise OutputError(
                    f"{label}: no process is reading this FIFO; nothing was written",
                    hint="start the reader first, e.g. `cat FIFO > junit.xml &`",
                ) from None
            time.sleep(_POLL)


def _replace(real: str, data: Iterable[bytes]) -> None:
    target = Path(real)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            for piece in data:
                fh.write(piece)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
