"""pytest plugin: `pytest scenarios/` collects each `*.scenario.yaml` as tests, one item per scenario.

Follows pytest's documented non-Python-test pattern (`pytest_collect_file` -> File -> Item with
`repr_failure`/`reportinfo`), so `--junitxml`, `-k`, `-x` and pytest-xdist's `-n` work unchanged: xdist
spreads scenarios over processes or hosts. The run is set up by runner/session.py, as for
`scenario-runner run`. The only module importing pytest; nothing imports it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .engine import Engine
from .errors import UserError, relative_display
from .loadsteps import SCENARIO_SUFFIX
from .model import Scenario
from .results import Outcome, ScenarioResult, StepResult
from .session import Session, SessionOptions

_SESSION = pytest.StashKey[Session]()
_ALLURE_WRITTEN = pytest.StashKey[dict[str, set[str]]]()  # allure-pytest files holding our texts


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("scenario-runner", "scenario-runner (*.scenario.yaml)")
    group.addoption("--sr-var", action="append", default=[], metavar="NAME=VALUE", help="set a scenario variable")
    group.addoption(
        "--sr-vars-file", action="append", default=[], metavar="FILE", help="YAML or JSON file of variables"
    )
    group.addoption("--sr-timeout", type=float, default=None, metavar="S", help="default request timeout")
    group.addoption("--sr-insecure", action="store_true", help="do not verify TLS certificates")
    group.addoption("--sr-cacert", default=None, metavar="FILE", help="CA bundle for TLS verification")
    group.addoption("--sr-allow-path", action="append", default=[], metavar="DIR", help="allow reading files here")
    group.addoption(
        "--sr-os-cloud",
        default=os.environ.get("OS_CLOUD"),
        metavar="NAME",
        help="take OS_* variables from this clouds.yaml entry (default: $OS_CLOUD)",
    )
    group.addoption("--sr-no-collect", action="store_true", help="do not collect *.scenario.yaml files")


def pytest_configure(config: pytest.Config) -> None:
    """The run's set-up (runner/session.py, as for `scenario-runner run`), from the --sr-* options.
    Bad values are pytest usage errors. The cloud and the engine wait for scenarios to run."""
    if config.getoption("--sr-no-collect"):
        return
    options = SessionOptions(
        vars=config.getoption("--sr-var"),
        vars_files=config.getoption("--sr-vars-file"),
        allow_paths=[config.rootpath, *config.getoption("--sr-allow-path")],
        timeout=config.getoption("--sr-timeout"),
        insecure=config.getoption("--sr-insecure"),
        cacert=config.getoption("--sr-cacert"),
        os_cloud=config.getoption("--sr-os-cloud"),
        keep_exchanges=bool(getattr(config.option, "allure_report_dir", None)),  # allure-pytest attaches them
        prefix="--sr-",
    )
    try:
        config.stash[_SESSION] = Session(options)
    except UserError as exc:
        raise pytest.UsageError(exc.render()) from None
    if config.getoption("markers", False):  # `pytest --markers` collects nothing: find the tags here
        _register_tags(config)


def _register_tags(config: pytest.Config) -> None:
    """Every tag of the scenario files under the given paths (or the invocation directory) becomes a
    registered marker, listed by `pytest --markers` with the number of scenarios that carry it."""
    skipped = [str(p) for p in config.getini("norecursedirs")]
    counts: dict[str, int] = {}
    roots = [Path(a.split("::")[0]) for a in config.args] or [config.invocation_params.dir]
    for root in roots:
        for path in _scenario_files(root, skipped):
            try:
                scenarios = _session(config).load_file(path)
            except UserError:
                continue  # a broken file is reported when it is collected
            for tag in {t for s in scenarios for t in s.tags}:
                counts[tag] = counts.get(tag, 0) + len(scenarios)
    for tag, count in sorted(counts.items()):
        config.addinivalue_line("markers", f"{_marker(tag)}: scenario tag '{tag}' ({count} scenarios)")


def _scenario_files(root: Path, skipped: list[str]) -> Iterator[Path]:
    if root.is_file():
        if root.name.endswith(SCENARIO_SUFFIX):
            yield root
        return
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not any(fnmatch.fnmatch(d, pattern) for pattern in skipped))
        yield from (Path(directory, f) for f in sorted(files) if f.endswith(SCENARIO_SUFFIX))


def _marker(tag: str) -> str:
    return tag.replace("-", "_")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the engine once scenarios were collected: a bad --sr-os-cloud or --sr-cacert is a
    usage error before any test runs, not a failure of each scenario."""
    if any(isinstance(item, ScenarioItem) for item in session.items):
        try:
            _session(session.config).start()
        except UserError as exc:
            raise pytest.UsageError(exc.render()) from None


def _session(config: pytest.Config) -> Session:
    return config.stash[_SESSION]


def _engine(config: pytest.Config) -> Engine:
    return _session(config).start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Run-level fixtures are torn down once per pytest session (per xdist worker). A fixture
    step (set-up or teardown) that failed is printed and fails the session, as in `scenario-runner
    run`: its dependents were only skipped, and a session of skips must not pass."""
    if _SESSION not in session.config.stash:
        return
    runner_session = _session(session.config)
    _allure_remask(session.config, runner_session.redactor.mask)
    engine = runner_session.engine
    if engine is not None:
        engine.suites.teardown_all()
    results = runner_session.close() + (engine.suites.results if engine is not None else [])
    failed = [(f, s) for f in results for s in f.steps if s.outcome in _BAD]
    if not failed:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for fixture, step in failed:
        message = str(step.error or "") or "; ".join(f.message for f in step.failures) or step.outcome.value
        line = runner_session.redactor.mask(f"{fixture.name}: {step.name} {step.outcome.value.upper()}: {message}")
        if reporter is not None:
            reporter.write_line(line, red=True)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_BAD = (Outcome.FAILED, Outcome.ERROR)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SESSION in config.stash:
        config.stash[_SESSION].close()


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.name.endswith(SCENARIO_SUFFIX) and not parent.config.getoption("--sr-no-collect"):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFileError(Exception):
    """A scenario file that does not load: shown as a collection error with its located message."""


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        try:
            scenarios = _session(self.config).load_file(self.path)
        except UserError as exc:
            raise self.CollectError(exc.render()) from None
        for scenario in scenarios:
            name = scenario.test_name or scenario.name
            # The id given as text: pytest 9 parses ids of `--lf` and of its cache, splitting a
            # `[row]` into params; an id built from the name would not (`NAME [row]` never reruns).
            yield ScenarioItem.from_parent(self, name=name, nodeid=f"{self.nodeid}::{name}", scenario=scenario)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """A file's `teardown:` runs after its last test, when the next item is not one of its tests
    (under pytest-xdist, use --dist loadgroup or loadfile to keep a file's tests on one worker).
    Its result is reported at the end of the session, like a fixture's."""
    suite = item.scenario.suite if isinstance(item, ScenarioItem) else None
    if suite is None:
        return
    if isinstance(nextitem, ScenarioItem) and nextitem.scenario.suite is suite:
        return
    _engine(item.config).suites.teardown(suite)


def _headline(step: StepResult) -> str:
    """The first failure in one line: `step 'Create': file:line:col: status: expected 201, got 500`."""
    if step.error:
        return f"{step.outcome.value.upper()} {step.title}: {step.error}"
    failure = step.failures[0]
    where = f"{failure.location}: " if failure.location else ""
    more = f" (and {len(step.failures) - 1} more)" if len(step.failures) > 1 else ""
    return f"{step.outcome.value.upper()} {step.title}: {where}{failure.message}{more}"


class ScenarioFailed(AssertionError):
    """A check of the scenario failed: an assertion, so allure-pytest (and others) call it `failed`."""

    def __init__(self, result: ScenarioResult, headline: str = ""):
        super().__init__(headline or result.name)
        self.result = result


class ScenarioBroken(Exception):
    """A step could not be completed (a transport or template error): Allure's `broken`."""

    def __init__(self, result: ScenarioResult, headline: str = ""):
        super().__init__(headline or result.name)
        self.result = result


# --- Allure (allure-pytest, when it writes results: --alluredir) -----------------------------------


def _allure_listener(config: pytest.Config) -> Any:
    return config.pluginmanager.get_plugin("allure_listener")


def _allure_steps(item: ScenarioItem, result: ScenarioResult, started: float) -> None:
    """The scenario's steps (runner/report/allure.py) added to allure-pytest's current test, their
    attachments written by allure-pytest's file writer, each remembered to be masked again at the end."""
    listener = _allure_listener(item.config)
    if listener is None:
        return
    import allure_commons

    from .report import allure

    test = listener.allure_logger.get_test(None)
    if test is None:
        return
    mask = _session(item.config).redactor.mask
    built = allure.build(result, int(started * 1000), mask)
    test.steps.extend(built.steps)
    if _ALLURE_WRITTEN not in item.config.stash:
        empty: dict[str, set[str]] = {"attachments": set(), "tests": set()}
        item.config.stash[_ALLURE_WRITTEN] = empty
    written = item.config.stash[_ALLURE_WRITTEN]
    for source, text in built.attachments:
        allure_commons.plugin_manager.hook.report_attached_data(body=text, file_name=source)
        written["attachments"].add(source)
    written["tests"].add(test.uuid)
    item._allure_message = mask(built.message) if built.message else None


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """After allure-pytest took the status from the exception: its message is the first failure,
    not `runner.pytest_plugin.ScenarioFailed: NAME`."""
    yield
    message = getattr(item, "_allure_message", None)
    listener = _allure_listener(item.config) if message and call.when == "call" else None
    test = listener.allure_logger.get_test(None) if listener is not None else None
    if test is not None and test.statusDetails is not None:
        test.statusDetails.message = message


def _allure_remask(config: pytest.Config, mask: Any) -> None:
    """allure-pytest wrote each test's files when it ended; mask them again with every secret the
    run learned since (a token captured by a later scenario), as every report of the runner is."""
    written = config.stash.get(_ALLURE_WRITTEN, None)
    directory = getattr(config.option, "allure_report_dir", None)
    if not written or not directory:
        return
    from .outputs import write

    label = f"--alluredir {directory}"
    for path in (config.invocation_params.dir / directory).iterdir():  # as allure-pytest resolved it
        try:
            if path.name in written["attachments"]:
                text = path.read_text(encoding="utf-8")
                if mask(text) != text:
                    write(path, mask(text), label=label)
            elif path.name.endswith("-result.json"):
                data = json.loads(path.read_text(encoding="utf-8"))
                if data.get("uuid") in written["tests"]:
                    masked = _mask_json(data, mask)
                    if masked != data:
                        write(path, json.dumps(masked, ensure_ascii=False), label=label)
        except (OSError, ValueError, UserError) as exc:  # not ours to fail the session for; say so
            message = exc.render() if isinstance(exc, UserError) else f"{label}: {path.name}: {exc}"
            reporter = config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(f"scenario-runner: could not mask Allure file again: {message}", red=True)


def _mask_json(value: Any, mask: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, list):
        return [_mask_json(v, mask) for v in value]
    if isinstance(value, dict):
        return {k: _mask_json(v, mask) for k, v in value.items()}
    return value


class ScenarioItem(pytest.Item):
    _allure_message: str | None = None  # the status message allure-pytest is given (the first failure)

    def __init__(self, *, scenario: Scenario, **kwargs: Any):
        super().__init__(**kwargs)
        self.scenario = scenario
        for tag in scenario.tags:  # `pytest -m glance` selects scenarios tagged glance
            marker = _marker(tag)
            if not any(line.split(":")[0] == marker for line in self.config.getini("markers")):
                self.config.addinivalue_line("markers", f"{marker}: scenario tag '{tag}'")
            self.add_marker(marker)
        if scenario.suite is not None:  # `--dist loadgroup` (or loadfile) keeps a file's tests on one worker
            self.add_marker(pytest.mark.xdist_group(relative_display(scenario.path)))

    def runtest(self) -> None:
        """An interruption pytest raises into the scenario (Ctrl-C, pytest-timeout's Failed,
        pytest.exit) comes back out of the engine as it went in, after the `finally` steps ran:
        pytest still stops or fails as it meant to, and repr_failure shows the interrupted step."""
        self._result = result = ScenarioResult(self.scenario.name, relative_display(self.scenario.path))
        started = time.time()
        try:
            _engine(self.config).run(self.scenario, result)
        finally:  # also when interrupted: the steps that ran
            _allure_steps(self, result, started)
        if result.skip_reason is not None:  # a fixture it needs failed: `pytest -rs` shows why
            pytest.skip(_session(self.config).redactor.mask(result.skip_reason.removeprefix("skipped: ")))
        if not result.passed:
            first = next(s for s in result.steps if s.outcome in (Outcome.FAILED, Outcome.ERROR))
            headline = _session(self.config).redactor.mask(_headline(first))
            raise (ScenarioBroken if result.outcome is Outcome.ERROR else ScenarioFailed)(result, headline)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        lines = []
        if isinstance(excinfo.value, (ScenarioFailed, ScenarioBroken)):
            result = excinfo.value.result
        else:
            interrupted: ScenarioResult | None = getattr(self, "_result", None)
            if interrupted is None or not interrupted.interrupted:
                return str(super().repr_failure(excinfo))
            result = interrupted
            step = next((s for s in result.steps if s.error and s.error.message.startswith("interrupted")), None)
            where = step.title if step is not None else "between steps"
            lines.append(f"interrupted: {where} ({excinfo.typename}: {excinfo.value})")
        if result.name != self.name:  # a templated name, as rendered when it ran (the item id is as written)
            lines.insert(0, f"scenario: {result.name}")
        first = next((s for s in result.steps if s.outcome in (Outcome.FAILED, Outcome.ERROR)), None)
        interrupted_first = bool(lines) and lines[0].startswith("interrupted")
        if first is not None and not interrupted_first:
            # The first line is what `pytest -r` puts in its short summary and CI shows as the title.
            lines.insert(0, _headline(first))
        for step in result.steps:
            label = step.outcome.value.upper()
            if step.outcome is Outcome.SKIPPED:
                lines.append(f"{label:<7} {step.title} ({step.skip_reason})")
                continue
            lines.append(f"{label:<7} {step.title}  {step.method} {step.url} -> {step.status}")
            if step.outcome in (Outcome.FAILED, Outcome.ERROR):
                if step.error:  # a template error has its own location; a transport error the request's
                    located = step.error.location is not None
                    lines.append(f"    {step.error}" if located else f"    {step.location}: {step.error}")
                for failure in step.failures:
                    lines.append(f"    {failure.location or ''}: {failure.message}")
                if step.exchange:
                    lines.extend("      " + line for line in step.exchange.splitlines())
                if step.curl:
                    lines.append("    reproduce: " + step.curl)
        # pytest writes this text (console, --junitxml): it passes the run's scrub like every output.
        return _session(self.config).redactor.mask("\n".join(lines))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, max(self.scenario.loc.line - 1, 0), f"scenario: {self.name}"
