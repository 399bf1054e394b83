"""One run's set-up, shared by both fronts: the command line (cli.py) and the pytest plugin.

Built from plain options, so that `scenario-runner run` and `pytest` set a run up the same way and
cannot drift apart: variables (vars files, then NAME=VALUE options, every NAME checked), the file
policy, the masker (which learns the environment's secrets at once, so that even a message about a
bad option is masked), the loader, selection (tags, -k) and sharding, the clouds.yaml entry, and the
engine with the run's services. The fronts only parse arguments, print, and map outcomes to exit
codes. Run-level fixtures live in the session's engine (runner/engine/fixtures.py): set up once per
session, which is once per run, shard or pytest-xdist worker, and torn down by `close` at the
latest (`scenario-runner run` tears them down in run_all, before its reports are written).
"""

from __future__ import annotations

import functools
import gc
import hashlib
import math
import os
import pickle
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from . import forked
from .errors import Location, UsageError, UserError, relative_display
from .files import FilePolicy, InputFiles
from .loader import Loader, discover
from .model import Defaults, Scenario, Suite
from .redact import Redactor
from .yamlsource import LocDict, load_yaml

if TYPE_CHECKING:
    from .abort import Stop
    from .engine import Engine
    from .results import ScenarioResult

_NAME = re.compile(r"^[A-Za-z_]\w*$")
_CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "OS_CACERT")


@dataclass
class SessionOptions:
    """What a front was told, as plain values. `prefix` is how the front spells its options in
    messages: `--` for the command line (`--var`), `--sr-` for pytest (`--sr-var`)."""

    vars: Sequence[str] = ()  # NAME=VALUE, in order; later ones win
    vars_files: Sequence[str] = ()  # YAML or JSON mappings, read before `vars`
    allow_paths: Sequence[str | Path] = ()
    timeout: float | None = None
    insecure: bool = False
    cacert: str | None = None
    os_cloud: str | None = None
    jobs: int = 1
    keep_exchanges: bool = False
    prefix: str = "--"


def run_redactor(environ: Mapping[str, str] = os.environ) -> Redactor:
    """The run's masker, knowing the environment's secrets from the start. A front that prints before
    its session exists (cli.main wraps the console first) makes it here and hands it over."""
    redactor = Redactor()
    redactor.add_from_env(environ)
    return redactor


class Session:
    """One run: set up from options, then load, select, start the engine, close.

    Raises UsageError (exit 2 on the command line, a usage error in pytest) for bad options, always
    before anything is sent.
    """

    def __init__(self, options: SessionOptions, redactor: Redactor | None = None):
        self.options = options
        self.redactor = redactor if redactor is not None else run_redactor()
        if options.jobs < 1:
            raise UsageError(f"{options.prefix}jobs must be at least 1")
        timeout = options.timeout
        if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
            raise UsageError(
                f"{options.prefix}timeout {timeout!r}: must be a finite number of seconds, more than 0",
                hint="e.g. 30",
            )
        self.cli_vars = parse_vars(options.vars, options.vars_files, options.prefix)
        self.policy = FilePolicy(options.allow_paths)
        self.loader = Loader(self.policy, self.cli_vars)
        self.engine: Engine | None = None
        self._cloud_files: tuple[str, ...] = ()

    def load(
        self, paths: Sequence[str], report: Callable[[UserError], object], keep: int | None = None
    ) -> tuple[list[Scenario], int]:
        """Every scenario file under `paths`; a file that does not load is reported and counted.

        Every file is loaded (and so checked) before anything is sent. With `keep`, only the models
        of the first `keep` files stay in memory; the others are dropped once checked, leaving what
        selection and scheduling read (name, path, tags, number, which file's setup they share),
        and are loaded again just before they run (`Scenario.reload`): unpickled from a temporary file
        while the file's bytes are those checked and it read no other file (`_Snapshots`, ~0.1 ms),
        else from YAML. A model costs ~20 KiB per 8-step file: 10,000 kept models would be ~200 MiB;
        loading a file from YAML costs ~1 ms.
        """
        files = discover(paths)
        if not files:
            raise UserError(f"no *.scenario.yaml files in {' '.join(paths)}")
        scenarios: list[Scenario] = []
        errors = 0
        reloads = _Reloads(self.loader)
        # A load leaves no cycles (its objects go with their last reference), but what it builds
        # lives across many young collections and is promoted: full collections came every few
        # files, each walking everything loaded so far (issue 12: 3,000 files, 13 of them, 0.9 s
        # of 7 s). The collector waits until the files are loaded.
        collecting = gc.isenabled()
        gc.disable()
        helper: _LoadHelper | None = None
        try:
            mine = len(files)
            if keep is not None and len(files) - keep >= 2 * _LoadHelper.MIN_FILES and forked.usable():
                mine = max(keep, len(files) // 2)  # the second half on the other core
                helper = _LoadHelper(self.loader, reloads, files[mine:])
                helper.start()
            for index, path in enumerate(files[:mine]):
                errors += self._load_one(path, keep is not None and index >= keep, reloads, scenarios, report)
            if helper is not None:
                checked = helper.result()
                for path, done in zip(files[mine:], checked, strict=True):
                    if done is None:  # not loaded there (or a bad file, whose error is reported here)
                        errors += self._load_one(path, True, reloads, scenarios, report)
                        continue
                    lights, snapshot = done
                    first = self.loader.reserve(len(lights))  # numbered here, in file order
                    lights = [light._replace(number=first + i) for i, light in enumerate(lights)]
                    scenarios.extend(reloads.defer(path, lights, snapshot))
        finally:
            if helper is not None:
                helper.reap()
            if collecting:
                gc.enable()
        return scenarios, errors

    def _load_one(
        self,
        path: Path,
        deferred: bool,
        reloads: _Reloads,
        scenarios: list[Scenario],
        report: Callable[[UserError], object],
    ) -> int:
        """Load one file into `scenarios` (as stand-ins if `deferred`); 1 if it is bad (reported)."""
        try:
            if not deferred:
                scenarios.extend(self.loader.load(path))
                return 0
            loaded, snapshot = _load_kept(self.loader, reloads.snapshots, path)
        except UserError as exc:
            report(exc)
            return 1
        scenarios.extend(reloads.defer(path, _lights(loaded), snapshot))
        return 0

    def load_file(self, path: Path) -> list[Scenario]:
        return self.loader.load(path)

    def inputs(self) -> InputFiles:
        """Every file the run reads, for the report paths to be checked against (runner/outputs.py);
        a --cacert that does not exist is refused here, before anything is sent."""
        cacert = self.options.cacert
        if cacert and not os.path.isfile(cacert):
            raise UsageError(f"{self.options.prefix}cacert {cacert}: no such file")
        inputs = self.policy.inputs
        bundles = [os.environ.get(name) for name in _CA_BUNDLE_VARIABLES]  # what requests or the cloud may read
        for path in (*self.options.vars_files, *([cacert] if cacert else []), *self._cloud_files):
            inputs.add(path)  # read outside the file policy, still inputs
        for bundle in bundles:
            if bundle and os.path.isfile(bundle):
                inputs.add(bundle)
        return inputs

    def start(self) -> Engine:
        """The engine, with the cloud's variables and TLS settings applied; built once."""
        if self.engine is not None:
            return self.engine
        self.inputs()
        from .context import RunServices
        from .engine import Engine, RunOptions

        options = self.options
        cloud = None
        if options.os_cloud:  # read before anything is set up: a bad cloud is a usage error, nothing sent
            cloud = _load_cloud(options.os_cloud, options.prefix)
        run_options = RunOptions(
            cli_vars=self.cli_vars,
            timeout=options.timeout,
            insecure=options.insecure,
            cacert=options.cacert,
            keep_exchanges=options.keep_exchanges,
        )
        services = RunServices(self.policy)
        if cloud is not None:
            self._cloud_files = cloud.files
            cloud.apply(services.environ)
            if not (options.cacert or options.insecure):  # the command line wins over clouds.yaml
                run_options.cacert, run_options.insecure = cloud.cacert, cloud.insecure
        self.engine = Engine(services, self.redactor, run_options)
        return self.engine

    def close(self, stop: Stop | None = None) -> list[ScenarioResult]:
        """Tear the fixtures down (if nobody did yet), then drop the run's generated files. Returns
        every fixture set-up of the run, with its teardown steps."""
        if self.engine is None:
            return []
        try:
            self.engine.fixtures.teardown(stop)
        finally:
            self.engine.services.close()
        return self.engine.fixtures.results


# What a stand-in holds instead of the model's parts: shared and immutable (a stand-in is never run,
# `materialize` gives the scenario loaded again), so that 10,000 stand-ins cost little.
_NONE: tuple[()] = ()
_NO_SECRETS: frozenset[str] = frozenset()
_NO_DEFAULTS = Defaults()


def _digest(path: Path) -> bytes | None:
    """A hash of the file's bytes (None if it cannot be read): ~10 µs for a tutorial."""
    try:
        with open(path, "rb") as file:
            return hashlib.blake2b(file.read(), digest_size=16).digest()
    except OSError:
        return None


@dataclass(frozen=True)
class _Snapshot:
    part: int  # which of the snapshot files (the run's, or a load helper's: `_Snapshots.reserve`)
    offset: int
    size: int
    digest: bytes  # of the file's bytes when it was loaded and checked


class _Snapshots:
    """Checked models of files, pickled into unnamed temporary files, for a large run to run them
    without parsing and checking their YAML again (issue 12: unpickling an 8-step tutorial costs
    ~0.1 ms, loading it from YAML ~1-2 ms, of which YAML ~60 %).

    A template is pickled as its text and location and built again from the per-process cache of
    compiled texts (`Template.__reduce__`). Only files that read no other file while loading are
    kept (no include, fixture, schema or data file): their bytes alone decide their model, so a
    file whose bytes hash as they did when checked loads to the same model. The models hold
    what the files say, nothing from the command line or the environment (those are read when
    templates render), so the files are not enciphered (unlike results.Spool, whose results hold
    what was sent and received). Written while loading, read by any worker thread (`os.pread`).
    One file per process that writes (the run; its load helper, `_LoadHelper`, writes its own).
    """

    def __init__(self) -> None:
        self._files: list[IO[bytes]] = []
        self._part: int | None = None  # the file this process writes
        self._end = 0
        self._lock = threading.Lock()

    def reserve(self) -> int:
        """A new file for another process to write (`use`), made before it is forked."""
        self._files.append(tempfile.TemporaryFile("w+b"))  # noqa: SIM115 - gone with this object
        return len(self._files) - 1

    def use(self, part: int) -> None:
        """In the forked process: write into the file reserved for it."""
        self._part, self._end = part, 0

    def add(self, loaded: list[Scenario], digest: bytes) -> _Snapshot | None:
        """`loaded` pickled, or None if some part of it cannot be (it is then loaded from YAML again)."""
        try:
            data = pickle.dumps(loaded, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an object of a check kind that does not pickle: loaded from YAML again
            return None
        with self._lock:
            if self._part is None:
                self._part = self.reserve()
            offset = self._end
            os.pwrite(self._files[self._part].fileno(), data, offset)
            self._end += len(data)
        return _Snapshot(self._part, offset, len(data), digest)

    def get(self, snapshot: _Snapshot) -> list[Scenario]:
        data = os.pread(self._files[snapshot.part].fileno(), snapshot.size, snapshot.offset)
        loaded: list[Scenario] = pickle.loads(data)
        return loaded


def _load_kept(
    loader: Loader, snapshots: _Snapshots, path: Path, numbered: bool = True
) -> tuple[list[Scenario], _Snapshot | None]:
    """A file loaded, and its checked models pickled if the file read no other file (include,
    fixture, schema, data) and did not change while it loaded: its bytes are what was checked."""
    policy = loader.policy
    digest = _digest(path)
    resolved = policy.resolved
    loaded = loader.load(path, numbered=numbered)
    snapshot = None
    if digest is not None and policy.resolved == resolved and _digest(path) == digest:
        snapshot = snapshots.add(loaded, digest)
    return loaded, snapshot


class _Light(NamedTuple):
    """What a stand-in keeps of a loaded scenario (`_Reloads.defer`), as plain values: also what the
    load helper sends back for the files it checked."""

    name: str
    loc: Location
    tags: list[str]
    number: int | None
    matrix_index: int | None
    test_name: str | None
    suite: tuple[int, str, Location] | None  # which of the file's setups (a key), its name and place


def _lights(loaded: list[Scenario]) -> list[_Light]:
    out = []
    for scenario in loaded:
        suite = None
        if scenario.suite is not None:
            setup = scenario.suite.scenario
            suite = (id(scenario.suite), setup.name, setup.loc)
        out.append(_Light(scenario.name, scenario.loc, scenario.tags, scenario.number, scenario.matrix_index,
                          scenario.test_name, suite))  # fmt: skip
    return out


class _LoadHelper:
    """The second half of a large run's files, checked in a forked copy of the run (runner/forked.py)
    while the run checks the first half: loading is the one long phase before anything is sent,
    ~0.8 ms of CPU a file (issue 12: 10,000 files, 8 s on one core of two).

    The copy loads each file as the run would, pickles the checked models of those that read no
    other file (into a snapshot file of its own, `_Snapshots.reserve`), and answers, per file,
    its stand-ins' fields and snapshot, or None: the run then loads that file itself (a bad file,
    so that its error is reported in file order, as the run renders it; anything unexpected). The
    files the copy resolved (includes, schemas, data files) come back too: they are inputs of the
    run, which no report may replace. Numbers are given by the run, in file order, as it takes the
    answers. What the copy caches (compiled templates, schemas) is not sent back: a model built
    from a snapshot compiles its templates again in the run if they are not in its own cache.
    """

    MIN_FILES = 256  # fewer: forking and merging cost more than the copy saves

    def __init__(self, loader: Loader, reloads: _Reloads, files: Sequence[Path]):
        self.count = len(files)
        part = reloads.snapshots.reserve()
        known = loader.policy.inputs.keys()

        def work(alive: Callable[[], bool], out: IO[bytes]) -> None:
            reloads.snapshots.use(part)
            policy = loader.policy
            answers: list[tuple[list[_Light], _Snapshot | None] | None] = []
            for path in files:
                if not alive():
                    raise SystemExit(1)
                try:
                    loaded, snapshot = _load_kept(loader, reloads.snapshots, path, numbered=False)
                except Exception:  # a bad file (or a bug of ours): loaded by the run, which reports it
                    answers.append(None)
                    continue
                answers.append((_lights(loaded), snapshot))
            pickle.dump((answers, policy.inputs.added(known)), out, protocol=pickle.HIGHEST_PROTOCOL)

        self.loader = loader
        self._forked = forked.Forked(work)

    def start(self) -> None:
        self._forked.start()

    def result(self) -> list[tuple[list[_Light], _Snapshot | None] | None]:
        """Per file, what the copy checked, or None for the run to load it; all None if the copy failed."""
        answer = self._forked.result()
        if answer is None:
            return [None] * self.count
        answers, inputs = pickle.load(answer)
        self.loader.policy.inputs.merge(inputs)
        return answers  # type: ignore[no-any-return]

    def reap(self) -> None:
        self._forked.reap()


class _Reloads:
    """Files whose models were dropped after loading, loaded again as their scenarios start.

    A file's scenarios are consecutive in a run and start close together (its tests in one worker;
    its matrix rows on up to `--jobs` workers), so the last few files loaded are kept, and each worker
    thread's last one: each file is normally loaded twice in all, once to check it and once to run
    it. Thread-safe.
    """

    RECENT = 8  # files kept loaded for any thread, besides each thread's last one

    def __init__(self, loader: Loader):
        self.loader = loader
        self.snapshots = _Snapshots()
        self.lock = threading.Lock()
        self.recent: OrderedDict[Path, list[Scenario]] = OrderedDict()
        self.pinned: dict[int, tuple[Path, list[Scenario]]] = {}

    def defer(self, path: Path, lights: Sequence[_Light], snapshot: _Snapshot | None = None) -> list[Scenario]:
        """Light stand-ins for a file's scenarios: what selection, sharding and scheduling read; with
        `snapshot`, the file's checked models are loaded from it while the file's bytes are unchanged."""
        suites: dict[int, Suite] = {}
        out = []
        for position, light in enumerate(lights):
            suite = None
            if light.suite is not None:  # the same stand-in for the tests sharing a setup
                key, setup_name, setup_loc = light.suite
                suite = suites.get(key)
                if suite is None:
                    suite = suites[key] = Suite(Scenario(setup_name, path, setup_loc, []))
            stand_in = Scenario(
                light.name,
                path,
                light.loc,
                _NONE,  # type: ignore[arg-type]
                _NONE,  # type: ignore[arg-type]
                tags=light.tags,
                vars=_NONE,  # type: ignore[arg-type]
                secrets=_NO_SECRETS,  # type: ignore[arg-type]
                defaults=_NO_DEFAULTS,
                number=light.number,
                matrix_index=light.matrix_index,
                fixtures=_NONE,  # type: ignore[arg-type]
                skip=_NONE,  # type: ignore[arg-type]
                test_name=light.test_name,
                suite=suite,
            )
            stand_in.reload = functools.partial(self.load, path, position, light.name, light.number, snapshot)
            out.append(stand_in)
        return out

    def load(
        self, path: Path, position: int, name: str, number: int | None, snapshot: _Snapshot | None = None
    ) -> Scenario:
        """The scenario at `position` of the file, from the thread's own last load of it if any: the
        tests of a file run one after the other on one worker, and must share one load's setup."""
        thread = threading.get_ident()
        with self.lock:
            pinned = self.pinned.get(thread)
            loaded = pinned[1] if pinned is not None and pinned[0] == path else self.recent.get(path)
            if loaded is None:
                if snapshot is not None and _digest(path) == snapshot.digest:  # as checked: no YAML, no checks
                    loaded = self.snapshots.get(snapshot)
                else:
                    loaded = self.loader.load(path, numbered=False)  # a UserError if it changed into a bad file
                self.recent[path] = loaded
                if len(self.recent) > self.RECENT:
                    self.recent.popitem(last=False)
            elif path in self.recent:
                self.recent.move_to_end(path)
            self.pinned[thread] = (path, loaded)
        if position >= len(loaded) or loaded[position].name != name:
            raise UserError(
                f"{relative_display(path)}: the file changed while the run was going on; "
                f"'{name}' is no longer where it was",
                hint="do not edit scenario files during a run",
            )
        scenario = loaded[position]
        scenario.number = number
        return scenario


def _load_cloud(name: str, prefix: str) -> Any:
    """runner/clouds.py speaks the command line's option name; the plugin's is spelled differently."""
    from .clouds import load_cloud

    try:
        return load_cloud(name)
    except UsageError as exc:
        if prefix != "--" and exc.message.startswith("--os-cloud"):
            exc.message = f"{prefix}os-cloud" + exc.message[len("--os-cloud") :]
            exc.args = (exc.message,)
        raise


def parse_vars(items: Iterable[str], files: Iterable[str], prefix: str = "--") -> dict[str, Any]:
    """Vars files in order, then NAME=VALUE items in order; every NAME must be a template name."""
    values: dict[str, Any] = {}
    for path in files:
        data = load_yaml(path)
        if not isinstance(data, LocDict):
            raise UsageError("a vars file must hold a mapping of names to values", Location(path, 1, 1))
        values.update(data)
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not _NAME.match(name):
            # Only the name part is shown: what follows may be a password typed with the wrong separator.
            head = re.match(r"[^=:]*", item).group()  # type: ignore[union-attr]
            shown = item[: len(head) + 1] + ("..." if len(head) + 1 < len(item) else "")
            raise UsageError(
                f"{prefix}var {shown!r}: expected NAME=VALUE", hint=f"e.g. {prefix}var image_file=data/cirros.qcow2"
            )
        values[name] = value
    return values


def select(scenarios: list[Scenario], tags: Sequence[str], keyword: str | None) -> list[Scenario]:
    """Scenarios with any of `tags` and matching `keyword`; selecting none of many is a usage error."""
    loaded = scenarios
    if tags:
        scenarios = [s for s in scenarios if set(s.tags) & set(tags)]
    if keyword:
        scenarios = [s for s in scenarios if keyword_match(keyword, f"{s.name} {s.path}")]
    if loaded and not scenarios:
        # A typo in a CI job's --tag must not turn the job green by running nothing.
        known = sorted({t for s in loaded for t in s.tags})
        asked = " ".join([*(f"--tag {t}" for t in tags), *([f"-k {keyword!r}"] if keyword else [])])
        if tags:
            hint = f"tags in these files: {', '.join(known)}" if known else "none of these files has tags"
        else:
            names = ", ".join(repr(s.name) for s in loaded[:5]) + (", ..." if len(loaded) > 5 else "")
            hint = f"-k matches words in scenario names and paths; names here: {names}"
        raise UsageError(f"no scenario matches {asked} ({len(loaded)} loaded)", hint=hint)
    return scenarios


def keyword_match(expression: str, text: str) -> bool:
    """pytest-style -k: words are case-insensitive substrings, combined with and/or/not/()."""
    tokens = re.findall(r"\(|\)|[^\s()]+", expression)
    python = []
    for token in tokens:
        if token in ("and", "or", "not", "(", ")"):
            python.append(token)
        else:
            python.append(str(token.lower() in text.lower()))
    try:
        return bool(eval(" ".join(python) or "True", {"__builtins__": {}}, {}))
    except SyntaxError:
        raise UsageError(f"-k {expression!r}: not a valid expression", hint="e.g. -k 'glance and not import'") from None


def shard(scenarios: list[Scenario], spec: str) -> list[Scenario]:
    """The K-th of N parts, by file, so that a matrix's rows and a file's scenarios stay together."""
    match = re.match(r"^(\d+)/(\d+)$", spec)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise UsageError(f"--shard {spec!r}: expected K/N with 1 <= K <= N", hint="e.g. --shard 2/4")
    k, n = int(match.group(1)), int(match.group(2))
    files = sorted({str(s.path) for s in scenarios})
    mine = {f for i, f in enumerate(files) if i % n == k - 1}
    return [s for s in scenarios if str(s.path) in mine]
