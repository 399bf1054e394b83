"""Files that scenarios read or upload: where they may come from, and their digests.

A scenario from a pull request must not be able to upload ~/.ssh/id_rsa, so every path resolves
relative to the scenario file and must stay inside an allowed root (the directory the run started
in, plus `--allow-path` directories and the run's own generated-data directory).

Every path resolved here is also recorded, by file identity, in the run's `InputFiles`: a report
must never replace a file the run reads (runner/outputs.py asks before the run and at write time).

Digests (md5/sha256/sha512) and sizes are cached per run by (path, size, mtime). An upload computes
all three while streaming and seeds the cache, so a later `{{ md5(image_file) }}` costs no extra read.
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import os
import stat
import struct
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import Location, UserError

if TYPE_CHECKING:
    from .abort import Abort

ALGORITHMS = ("md5", "sha256", "sha512")
CHUNK = 1024 * 1024  # hashing a file on its own
UPLOAD_CHUNK = 256 * 1024  # streaming an upload: few syscalls, little memory in flight


class FileAccessError(UserError):
    """A path in a scenario is missing, unreadable, or outside the allowed roots."""


class InputFiles:
    """Every file a run reads, by identity (st_dev, st_ino), so hard links and symlinks count too.

    Filled by the file policy and the loader while loading and while running (uploads, digest
    helpers); read by runner/outputs.py, which refuses to write a report over any of them.
    """

    def __init__(self) -> None:
        self._files: dict[tuple[int, int], str] = {}
        self._lock = threading.Lock()

    def add(self, path: str | Path, st: os.stat_result | None = None) -> None:
        """Record `path` (a missing or unreadable path is no input: nothing to protect)."""
        if st is None:
            try:
                st = os.stat(path)
            except (OSError, ValueError):
                return
        with self._lock:
            self._files.setdefault((st.st_dev, st.st_ino), str(path))

    def keys(self) -> set[tuple[int, int]]:
        with self._lock:
            return set(self._files)

    def added(self, known: set[tuple[int, int]]) -> dict[tuple[int, int], str]:
        """The inputs recorded since `keys()` returned `known` (a load helper's, sent to the run)."""
        with self._lock:
            return {key: name for key, name in self._files.items() if key not in known}

    def merge(self, files: dict[tuple[int, int], str]) -> None:
        with self._lock:
            for key, name in files.items():
                self._files.setdefault(key, name)

    def find(self, st: os.stat_result) -> str | None:
        """The recorded name of the input that is this file, if it is one."""
        with self._lock:
            return self._files.get((st.st_dev, st.st_ino))


class FilePolicy:
    """Resolves scenario paths, enforces the allowed roots, and records every file it resolves."""

    def __init__(self, roots: Iterable[str | Path] = ()):
        self.roots = [Path(r).resolve() for r in (Path.cwd(), *roots)]
        self.inputs = InputFiles()
        self.resolved = 0  # paths resolved so far: a load that resolved none read no file but its own

    def allow(self, root: str | Path) -> None:
        resolved = Path(root).resolve()
        if resolved not in self.roots:
            self.roots.append(resolved)

    def _allowed(self, real: Path) -> bool:
        """`real` (resolved) is in one of the roots: compared as text on POSIX, where resolved paths
        are normal and case matters (pathlib's `is_relative_to` builds a relative path per root and
        call: a step's helpers resolve a path several times)."""
        if os.name != "posix":
            return any(real.is_relative_to(root) for root in self.roots)
        text = str(real)
        for root in self.roots:
            prefix = str(root)
            if text == prefix or text.startswith(prefix if prefix.endswith("/") else prefix + "/"):
                return True
        return False

    def resolve(self, path: str, base_dir: Path, loc: Location | None, must_exist: bool = True) -> Path:
        self.resolved += 1
        if not isinstance(path, str) or not path:
            raise FileAccessError(f"expected a file path, got {path!r}", loc)
        text = os.path.expanduser(path) if path.startswith("~") else path
        real, st = _real(text if os.path.isabs(text) else os.path.join(base_dir, text))
        if not self._allowed(real):
            raise FileAccessError(
                f"path '{path}' resolves to {real}, outside the directories this run may read",
                loc,
                "run from a directory that contains it, or allow it with --allow-path DIR",
            )
        if st is not None and stat.S_ISREG(st.st_mode):
            self.inputs.add(real, st)
        elif must_exist:
            if st is not None and stat.S_ISDIR(st.st_mode):
                raise FileAccessError(f"file '{path}' is a directory (resolved to {real})", loc, "name a file in it")
            raise FileAccessError(f"file '{path}' does not exist (resolved to {real})", loc, near_hint(path, real))
        return real


def _real(candidate: str) -> tuple[Path, os.stat_result | None]:
    """`Path(candidate).resolve()` and the stat of what it names (None: nothing there), on text: the
    Path way builds a Path per call and stats the result once more, ~half of the ~15 µs a template
    helper's path cost per call (md5, sha512 and file_size of an upload: a scenario resolves it 4
    times; issue 12). pathlib's own answer is asked for where they could differ: off POSIX, and on a
    symlink loop (which pathlib reports in its own way)."""
    if os.name != "posix":
        real = Path(candidate).resolve()
        try:
            return real, os.stat(real)
        except (OSError, ValueError):
            return real, None
    text = os.path.realpath(candidate)
    try:
        return Path(text), os.stat(text)
    except ValueError:
        return Path(text), None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            real = Path(candidate).resolve()
            try:
                return real, os.stat(real)
            except (OSError, ValueError):
                return real, None
        return Path(text), None


def near_matches(written: str, real: Path, suffixes: frozenset[str] | None = None) -> list[str]:
    """Files that exist where a missing path points, with a close name, written as the user wrote the
    path: the typo in the file name (`users.csv` for `user.csv`), or in one directory on the way
    (`schemas/image.json` for `schema/image.json`)."""
    parts = Path(written).parts
    found: list[str] = []
    try:
        if real.parent.is_dir():
            names = sorted(
                p.name for p in real.parent.iterdir() if p.is_file() and (not suffixes or p.suffix.lower() in suffixes)
            )
            # Stems are compared, so a shared extension (`.yaml`) does not make every name close.
            stems = {Path(n).stem: n for n in names}
            close = [stems[c] for c in difflib.get_close_matches(real.stem, list(stems), n=3, cutoff=0.6)]
            found = [str(Path(*parts[:-1], n)) for n in close]
        else:  # a directory on the way is misspelt: try the close names of the first one that is missing
            ancestor, depth = real.parent, 1
            while not ancestor.parent.is_dir() and ancestor != ancestor.parent:
                ancestor, depth = ancestor.parent, depth + 1
            dirs = sorted(p.name for p in ancestor.parent.iterdir() if p.is_dir())
            for name in difflib.get_close_matches(ancestor.name, dirs, n=3, cutoff=0.6):
                fixed = list(parts)
                fixed[len(parts) - 1 - depth] = name
                if (ancestor.parent / name).joinpath(*parts[len(parts) - depth :]).is_file():
                    found.append(str(Path(*fixed)))
    except (OSError, IndexError, ValueError):
        return []
    return found


def near_hint(written: str, real: Path, suffixes: frozenset[str] | None = None) -> str:
    near = near_matches(written, real, suffixes)
    if near:
        return "did you mean " + " or ".join(f"'{n}'" for n in near) + "?"
    return "paths are relative to the file that names them"


class Digests:
    """Per-run cache of file digests and sizes; safe to share between threads."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int, int, int], dict[str, str]] = {}
        self._lock = threading.Lock()
        self.reads = 0  # how many times a file was read just to hash it (the benchmark checks it)

    @staticmethod
    def _key(path: Path) -> tuple[str, int, int, int, int]:
        """The file as it is now: an edit that keeps its size and sets its mtime back (`touch -d`)
        still changes its ctime, which no program can set, and a file replaced by another its inode;
        an upload of a file whose key is cached is not hashed again (engine/poll.py)."""
        st = path.stat()
        return (str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

    def digest(self, path: Path, algorithm: str, together: Iterable[str] = ()) -> str:
        """Hash once for `algorithm` and every algorithm in `together` the scenario also uses."""
        key = self._key(path)
        with self._lock:
            cached = self._cache.get(key)
        if cached is None or algorithm not in cached:
            hashers = {name: hashlib.new(name) for name in {algorithm, *together}}
            with open(path, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    for h in hashers.values():
                        h.update(chunk)
            cached = {**(cached or {}), **{name: h.hexdigest() for name, h in hashers.items()}}
            with self._lock:
                self.reads += 1
                self._cache[key] = cached
        return cached[algorithm]

    def known(self, path: Path, algorithms: Iterable[str]) -> bool:
        """Every digest of `algorithms` is cached for the file as it is now (its size and mtime)."""
        try:
            key = self._key(path)
        except OSError:
            return False
        with self._lock:
            cached = self._cache.get(key)
        return cached is not None and all(name in cached for name in algorithms)

    def seed(self, path: Path, digests: dict[str, str]) -> None:
        """Record digests computed elsewhere (while uploading) so nobody reads the file again."""
        key = self._key(path)
        with self._lock:
            self._cache[key] = {**self._cache.get(key, {}), **digests}


class HashingReader:
    """A file object for requests that hashes what it streams; its length gives Content-Length.

    Only the algorithms the scenario's templates use are computed: hashing costs more CPU than
    sending over loopback, and an upload should cost what raw requests costs.
    """

    def __init__(
        self,
        path: Path,
        algorithms: Iterable[str] = (),
        on_progress: Callable[[int, int], None] | None = None,
        abort: Abort | None = None,
    ):
        self.path = path
        self._abort = abort  # checked per chunk: an interruption stops an upload at the next 256 KiB
        self._on_progress = on_progress
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by close(), after the request
        self._size = os.fstat(self._fh.fileno()).st_size
        self._hashers = {name: hashlib.new(name) for name in algorithms}
        self._read = 0

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        if self._abort is not None:
            self._abort.check()
        # Larger reads than the transport asks for: fewer syscalls and hash calls, same bytes. No
        # larger than what is left, plus one byte to see the end: a read allocates all it asks for
        # (256 KiB for a 4 KiB file: an mmap and munmap per upload).
        want = max(size, UPLOAD_CHUNK) if size and size > 0 else UPLOAD_CHUNK
        left = self._size - self._read + 1
        chunk = self._fh.read(left if 0 < left < want else want)  # a file that grew: read on as before
        if chunk:
            self._read += len(chunk)
            for h in self._hashers.values():
                h.update(chunk)
            if self._on_progress is not None:
                self._on_progress(self._read, self._size)
        return chunk

    def complete_digests(self) -> dict[str, str] | None:
        """Digests of the whole file, or None when the upload stopped early."""
        if self._read != self._size or not self._hashers:
            return None
        return {name: h.hexdigest() for name, h in self._hashers.items()}

    def close(self) -> None:
        self._fh.close()


@dataclass(frozen=True)
class TapSpec:
    """What to do with every byte of a response body: hash it, compare it with a file."""

    algorithms: tuple[str, ...] = ()
    compare: Path | None = None
    compare_as: str = ""  # the path as the scenario wrote it (rendered), for messages


@dataclass
class Tapped:
    """What a BodyTap saw: the digests of the whole body and, with a file, where they first differ."""

    size: int
    digests: dict[str, str]
    compared: Path | None = None
    compared_as: str = ""
    compared_size: int = 0
    differs_at: int | None = None  # None: every byte equal and the same length
    file_bytes: bytes = b""  # up to DIFF_SHOWN bytes of each side from the first difference
    body_bytes: bytes = b""


DIFF_SHOWN = 16


class BodyTap:
    """Sees a response body chunk by chunk: hashes it and compares it with a file read alongside,
    so checking a body of any size keeps only one chunk of each in memory."""

    def __init__(self, spec: TapSpec):
        self.spec = spec
        self._hashers = {name: hashlib.new(name) for name in spec.algorithms}
        self._fh = open(spec.compare, "rb") if spec.compare is not None else None  # noqa: SIM115 - close()
        self._file_size = os.fstat(self._fh.fileno()).st_size if self._fh is not None else 0
        self._size = 0
        self._differs_at: int | None = None
        self._file_bytes = b""
        self._body_bytes = b""

    def feed(self, chunk: bytes) -> None:
        for h in self._hashers.values():
            h.update(chunk)
        if self._fh is not None and self._differs_at is None:
            other = self._fh.read(len(chunk))
            if other != chunk:
                index = next(
                    (i for i, (a, b) in enumerate(zip(other, chunk, strict=False)) if a != b),
                    min(len(other), len(chunk)),
                )
                self._differs_at = self._size + index
                self._file_bytes = other[index : index + DIFF_SHOWN]
                self._body_bytes = chunk[index : index + DIFF_SHOWN]
        self._size += len(chunk)

    def finish(self) -> Tapped:
        """The result, once the whole body went through; closes the file."""
        if self._fh is not None:
            if self._differs_at is None and self._file_size != self._size:  # the body ended first
                self._differs_at = self._size
                self._file_bytes = self._fh.read(DIFF_SHOWN)
            self._fh.close()
            self._fh = None
        return Tapped(
            size=self._size,
            digests={name: h.hexdigest() for name, h in self._hashers.items()},
            compared=self.spec.compare,
            compared_as=self.spec.compare_as,
            compared_size=self._file_size,
            differs_at=self._differs_at,
            file_bytes=self._file_bytes,
            body_bytes=self._body_bytes,
        )

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


# --- generated test data ------------------------------------------------------------------------


class DataFiles:
    """Deterministic test files made at run time, so no binary is committed to the repository."""

    KINDS = ("zeros", "random", "qcow2", "vhd")

    def __init__(self) -> None:
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()
        self._make_lock = threading.Lock()

    @property
    def directory(self) -> Path:
        with self._lock:
            if self._dir is None:
                self._dir = tempfile.TemporaryDirectory(prefix="scenario-runner-data-")
            return Path(self._dir.name)

    def make(self, kind: str = "random", size: int = 1024 * 1024, seed: int = 0) -> str:
        if kind not in self.KINDS:
            raise ValueError(f"unknown data_file kind {kind!r}; use one of {', '.join(self.KINDS)}")
        if not isinstance(size, int) or size < 0:
            raise ValueError(f"data_file size must be a non-negative integer, got {size!r}")
        path = self.directory / f"{kind}-{size}-{seed}.{kind if kind in ('qcow2', 'vhd') else 'bin'}"
        with self._make_lock:  # scenarios on other threads (--jobs) may ask for the same file
            if not path.exists():
                tmp = path.with_suffix(".part")
                with open(tmp, "wb") as fh:
                    _write_data(fh, kind, size, seed)
                tmp.replace(path)
        return str(path)

    def cleanup(self) -> None:
        with self._lock:
            if self._dir is not None:
                self._dir.cleanup()
                self._dir = None


def _write_data(fh, kind: str, size: int, seed: int) -> None:  # type: ignore[no-untyped-def]
    if kind == "qcow2":
        fh.write(_qcow2_image(size))
        return
    if kind == "vhd":
        fh.write(_vhd_image(size, seed))
        return
    if kind == "zeros":
        fh.truncate(size)
        return
    for piece in random_blocks(size, seed):
        fh.write(piece)


def random_blocks(size: int, seed: int) -> Iterator[bytes]:
    """The bytes of `data_file('random', size, seed)`, 1 KiB at a time (test servers send them too)."""
    block = hashlib.sha512(f"scenario-runner:{seed}".encode()).digest()
    written = 0
    while written < size:
        block = hashlib.sha512(block).digest() * 16  # 1 KiB, cheap and reproducible
        piece = block[: size - written]
        yield piece
        written += len(piece)
        block = block[:64]


def _qcow2_image(virtual_size: int) -> bytes:
    """A genuine, empty qcow2 v2 image (header, L1 table, refcount table and block) of 4 clusters.

    Image services inspect uploaded bytes (Glance refuses random data declared as qcow2), so tests
    of image APIs need a real format; this is what `qemu-img create -f qcow2` writes, minus options.
    """
    cluster_bits = 16
    cluster = 1 << cluster_bits
    virtual_size = max(virtual_size, cluster)
    l2_entries = cluster // 8
    l1_size = -(-virtual_size // (cluster * l2_entries))
    l1_offset, refcount_table_offset, refcount_block_offset = cluster, 2 * cluster, 3 * cluster
    header = struct.pack(
        ">4sIQIIQIIQQIIQ",
        b"QFI\xfb",  # magic
        2,  # version
        0,  # backing file offset
        0,  # backing file size
        cluster_bits,
        virtual_size,
        0,  # no encryption
        l1_size,
        l1_offset,
        refcount_table_offset,
        1,  # refcount table clusters
        0,  # snapshots
        0,  # snapshots offset
    )
    image = bytearray(4 * cluster)
    image[: len(header)] = header
    struct.pack_into(">Q", image, refcount_table_offset, refcount_block_offset)
    for index in range(4):  # each of the 4 clusters is referenced once
        struct.pack_into(">H", image, refcount_block_offset + 2 * index, 1)
    return bytes(image)


def _vhd_chs(sectors: int) -> tuple[int, int, int]:
    """Cylinders, heads and sectors per track of a VHD disk of `sectors` sectors (the VHD spec's algorithm)."""
    sectors = min(sectors, 65535 * 16 * 255)
    if sectors >= 65535 * 16 * 63:
        per_track, heads = 255, 16
        return sectors // per_track // heads, heads, per_track
    per_track = 17
    cyl_heads = sectors // per_track
    heads = max((cyl_heads + 1023) // 1024, 4)
    if cyl_heads >= heads * 1024 or heads > 16:
        per_track, heads = 31, 16
        cyl_heads = sectors // per_track
    if cyl_heads >= heads * 1024:
        per_track, heads = 63, 16
        cyl_heads = sectors // per_track
    return cyl_heads // heads, heads, per_track


def _vhd_checksum(data: bytes | bytearray) -> int:
    return ~sum(data) & 0xFFFFFFFF


def _vhd_image(virtual_size: int, seed: int) -> bytes:
    """A genuine, empty dynamic VHD (Microsoft Virtual Hard Disk): footer copy, dynamic header, an
    all-unallocated block table and the footer, as `qemu-img create -f vpc` writes.

    Glance inspects uploads declared `vhd` (the footer copy at offset 0, cookie `conectix`), so random
    bytes are refused; this passes, with the virtual size in the footer."""
    block_size = 2 * 1024 * 1024
    virtual_size = max(-(-virtual_size // 512) * 512, 512)
    entries = -(-virtual_size // block_size)
    bat_bytes = -(-(entries * 4) // 512) * 512
    cylinders, heads, per_track = _vhd_chs(virtual_size // 512)
    unique_id = hashlib.md5(f"scenario-runner:vhd:{virtual_size}:{seed}".encode()).digest()
    footer = bytearray(
        struct.pack(
            ">8sIIQI4sI4sQQHBBII16sB",
            b"conectix",  # cookie
            2,  # features: reserved bit, always set
            0x00010000,  # format version 1.0
            512,  # offset of the dynamic header
            0,  # timestamp: seconds since 2000-01-01, fixed so the file is reproducible
            b"srun",  # creator application
            0x00010000,  # creator version
            b"Wi2k",  # creator host OS
            virtual_size,  # original size
            virtual_size,  # current size
            cylinders,
            heads,
            per_track,
            3,  # disk type: dynamic
            0,  # checksum, below
            unique_id,
            0,  # not in a saved state
        ).ljust(512, b"\0")
    )
    struct.pack_into(">I", footer, 64, _vhd_checksum(footer))
    header = bytearray(
        struct.pack(
            ">8sQQIII",
            b"cxsparse",  # cookie
            0xFFFFFFFFFFFFFFFF,  # data offset: unused
            512 + 1024,  # offset of the block allocation table
            0x00010000,  # header version 1.0
            entries,  # max table entries
            block_size,
        ).ljust(1024, b"\0")
    )
    struct.pack_into(">I", header, 36, _vhd_checksum(header))
    return bytes(footer) + bytes(header) + b"\xff" * bat_bytes + bytes(footer)
