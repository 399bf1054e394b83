"""The names templates can use: helpers for files and ids, environment, run id.

Helpers that take a path resolve it like the step that calls them (relative to its own file) and
obey the run's file policy, so `{{ md5('/etc/shadow') }}` is refused like an upload would be.
"""

from __future__ import annotations

import datetime
import itertools
import os
import uuid as uuidlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .files import ALGORITHMS, DataFiles, Digests, FilePolicy


class RunServices:
    """What every scenario of a run shares: the file policy, digest cache, generated data."""

    def __init__(self, policy: FilePolicy, run_id: str | None = None):
        self.policy = policy
        self.digests = Digests()
        self.data = DataFiles()
        self.run_id = run_id or uuidlib.uuid4().hex[:8]
        self.environ = dict(os.environ)
        self.proxies: dict[str, dict[str, str]] = {}  # per scheme://host, shared by the run's sessions
        self._helpers: dict[tuple[Path, frozenset[str]], dict[str, Callable[..., Any]]] = {}
        self._directories: dict[Path, Path] = {}  # the directory of scenario files -> resolved
        self._data_allowed = ""  # data_file()'s directory, once among the policy's roots
        self._fixture_ids = itertools.count(1)  # fixture set-ups' scenario.id: `<run id>-f<n>`

    def next_fixture_id(self) -> str:
        """`f<n>` for the next fixture set-up (scenarios are numbered by the loader: `s<n>`)."""
        return f"f{next(self._fixture_ids):03d}"  # next() on a count is atomic: --jobs workers call it

    def directory_of(self, path: Path) -> Path:
        """The resolved directory of a scenario file, where its own paths resolve from: the directory
        is resolved once per run (~12 µs a scenario), the file checked not to be a symlink (which
        points elsewhere: then it is resolved itself). Only where relative paths start: each path a
        helper reads is still resolved and checked against the file policy at every use."""
        if os.path.islink(path):
            return path.resolve().parent
        directory = path.parent
        found = self._directories.get(directory)
        if found is None:
            found = directory.resolve()
            if directory.is_absolute():  # a relative one depends on the working directory of the moment
                self._directories[directory] = found
        return found

    def helpers(self, base_dir: Path, algorithms: frozenset[str]) -> dict[str, Callable[..., Any]]:
        """Helper functions bound to a step's directory; built once per directory."""
        key = (base_dir, algorithms)
        cached = self._helpers.get(key)
        if cached is not None:
            return cached

        def resolve(path: str) -> Path:
            return self.policy.resolve(path, base_dir, None)

        def hasher(name: str) -> Callable[[str], str]:
            def digest(path: str) -> str:
                return self.digests.digest(resolve(path), name, algorithms)

            digest.__name__ = name
            return digest

        def file_size(path: str) -> int:
            return resolve(path).stat().st_size

        def data_file(kind: str = "random", size: int = 1024 * 1024, seed: int = 0) -> str:
            made = self.data.make(kind, size, seed)
            directory = self.data.directory
            if str(directory) != self._data_allowed:  # resolved and allowed once per data directory
                self.policy.allow(directory)
                self._data_allowed = str(directory)
            return made

        def uuid() -> str:
            return str(uuidlib.uuid4())

        def now(fmt: str | None = None) -> str:
            moment = datetime.datetime.now(datetime.timezone.utc)
            return moment.strftime(fmt) if fmt else moment.isoformat()

        built: dict[str, Callable[..., Any]] = {name: hasher(name) for name in ALGORITHMS}
        built.update(file_size=file_size, data_file=data_file, uuid=uuid, now=now)
        self._helpers[key] = built
        return built

    def close(self) -> None:
        self.data.cleanup()
