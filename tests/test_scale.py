"""A run's cost is linear in its size (issue 12): what a large run keeps, and that its reports,
streamed from disk, are the reports it wrote before.

Figures are measured by bench/bench.py (targets 7-9), never asserted here: these tests assert
behaviour. A run keeps the models of the first `cli.KEEP_LOADED` files and loads the others again
as they start; every scenario goes to an unnamed spool file as it ends (runner/results.py) and the
JUnit and HTML reports are written from it. The tests lower KEEP_LOADED so that a few files take
the path 10,000 files take.
"""

from __future__ import annotations

import collections
import gc
import re
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import pytest
import server as srv

import runner.cli
import runner.session
from runner import results
from runner.errors import Location
from runner.model import Step
from runner.report import html, junit
from runner.results import Attempt, Failure, Outcome, Problem, RunResult, ScenarioResult, Spool, StepResult

pytestmark = pytest.mark.usefixtures("watchdog")

PASSING = """
name: Passing {n}
vars: {{base: "{{{{ env.BASE }}}}"}}
steps:
  - name: Echo {n}
    request: {{url: "{{{{ base }}}}/echo?n={n}"}}
    expect: {{status: 200, json: {{method: GET}}}}
  - name: Echo again
    request: {{method: POST, url: "{{{{ base }}}}/echo", json: {{n: {n}}}}}
    expect: {{status: 200}}
"""

FAILING = """
name: Failing {n}
vars: {{base: "{{{{ env.BASE }}}}"}}
steps:
  - name: Echo and fail
    request: {{url: "{{{{ base }}}}/echo?note=visible-{n}"}}
    expect: {{status: 201}}
  - name: Not run
    request: {{url: "{{{{ base }}}}/echo"}}
"""

SKIPPED = """
name: Skipped
skip: not today
steps:
  - name: Never
    request: {url: "http://127.0.0.1:1/"}
"""

TESTS = """
name: Tests
vars: {base: "{{ env.BASE }}"}
setup:
  - name: Set up
    request: {url: "{{ base }}/echo?setup=1"}
tests:
  - name: first
    steps:
      - name: One
        request: {url: "{{ base }}/echo?t=1"}
  - name: second
    steps:
      - name: Two
        request: {url: "{{ base }}/echo?t=2"}
        expect: {status: 404}
teardown:
  - name: Tear down
    request: {url: "{{ base }}/echo?teardown=1"}
"""


def _suite(sr, passing: int = 6) -> None:
    for n in range(passing):
        sr.write(f"p{n:03d}.scenario.yaml", PASSING.format(n=n))
    sr.write("p001-fail.scenario.yaml", FAILING.format(n=1))
    sr.write("p003-skip.scenario.yaml", SKIPPED)
    sr.write("p004-tests.scenario.yaml", TESTS)


def _former_junit(run: RunResult) -> str:
    """The JUnit document as it was built before streaming: the whole tree, indented at once."""
    root = ET.Element("testsuites", name="scenario-runner")
    totals = dict.fromkeys(("tests", "failures", "errors"), 0)
    seconds = 0.0
    for scenario in run.every():
        element = junit._suite(scenario)
        for key in totals:
            totals[key] += int(element.get(key, 0))
        seconds += float(element.get("time", 0))
        root.append(element)
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{seconds:.3f}")
    ET.indent(root, "\t")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _former_html(run: RunResult, environment: dict[str, str] | None = None) -> str:
    """The page as it was built before streaming: every scenario in memory, sorted by outcome."""
    every = list(run.every())
    ordered = sorted(every, key=lambda s: results.RANK[s.outcome])
    origins = [urlsplit(step.url) for s in ordered for step in s.steps if step.url]
    targets = collections.Counter(f"{u.scheme}://{u.netloc}" for u in origins)
    text = html._head(run, environment) + "".join(html._scenario(s) for s in ordered)
    text += html._environment(environment, dict(targets))
    return text + f"</main><script>{html._SCRIPT}</script></body></html>"


def _no_clock(text: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "WHEN", text)


@pytest.mark.parametrize("keep", [256, 2], ids=["models-kept", "models-loaded-again"])
@pytest.mark.parametrize("jobs", ["1", "3"])
def test_streamed_reports_equal_the_reports_built_in_memory(sr, server, monkeypatch, keep, jobs):
    monkeypatch.setattr(runner.cli, "KEEP_LOADED", keep)
    _suite(sr)
    former: dict[str, str] = {}
    written_junit, written_html = junit.write, html.write

    def junit_write(run, path, *args):
        former["junit"] = _former_junit(run)
        written_junit(run, path, *args)

    def html_write(run, path, *args, **kwargs):
        former["html"] = _former_html(run, kwargs.get("environment"))
        written_html(run, path, *args, **kwargs)

    monkeypatch.setattr(junit, "write", junit_write)
    monkeypatch.setattr(html, "write", html_write)
    run = sr.run(".", "--jobs", jobs, "--html", "report.html")
    assert run.code == 1, run.output
    assert run.junit_path.read_text(encoding="utf-8") == former["junit"]
    assert _no_clock((sr.dir / "report.html").read_text(encoding="utf-8")) == _no_clock(former["html"])
    # and the run is the run: every scenario in order, with its outcome
    names = [s.get("name") for s in run.suites()]
    assert names == [
        "Passing 0",
        "Failing 1",
        "Passing 1",
        "Passing 2",
        "Skipped",
        "Passing 3",
        "Tests :: setup",
        "Tests :: first",
        "Tests :: second",
        "Tests :: teardown",
        "Passing 4",
        "Passing 5",
    ]
    assert run.outcome("Echo and fail") == "failure" and run.outcome("Two") == "failure"
    assert run.outcome("Never") == "skipped"
    assert "visible-1" in run.system_out("Echo and fail")  # a failed step's exchange is in the report
    assert "10 scenarios: 7 passed, 2 failed, 1 skipped" in run.out  # setup/teardown are not scenarios
    # the file's tests shared one setup, also when their file was loaded again to run
    assert sum(r["query"] == "setup=1" for r in server.state.requests) == 1


def test_an_empty_run_report_is_the_former_one(sr, monkeypatch):
    """No scenario ran (all filtered out by a shard): the self-closing root, as before."""
    _suite(sr, passing=1)
    former = {}
    written = junit.write

    def junit_write(run, path, *args):
        former["junit"] = _former_junit(run)
        written(run, path, *args)

    monkeypatch.setattr(junit, "write", junit_write)
    run = sr.run("p000.scenario.yaml", "--shard", "2/2")
    assert run.code == 0, run.output
    text = run.junit_path.read_text(encoding="utf-8")
    assert text == former["junit"] and "<testsuites " in text and text.rstrip().endswith("/>")


@pytest.mark.parametrize("keep", [256, 0], ids=["models-kept", "models-loaded-again"])
def test_a_secret_learned_in_a_later_file_is_masked_in_an_earlier_files_report(sr, server, monkeypatch, keep):
    """File 1 fails with a value in its exchange before anyone knows it is a secret; file 2 logs in
    and receives it as its token (X-Subject-Token: a secret from then on). File 1's result went to
    the spool first: the reports must still not hold it, and say *** where it was."""
    monkeypatch.setattr(runner.cli, "KEEP_LOADED", keep)
    sr.write(
        "a.scenario.yaml",
        f"""
        name: First file
        vars: {{base: "{{{{ env.BASE }}}}"}}
        steps:
          - name: Shows the value
            request: {{url: "{{{{ base }}}}/echo?note={srv.TOKEN}"}}
            expect: {{status: 201}}
        """,
    )
    sr.write("b.scenario.yaml", srv.logged_in("Second file"))
    run = sr.run(".", "--html", "report.html")
    assert run.code == 1, run.output
    assert server.state.requests[0]["query"] == f"note={srv.TOKEN}"  # it went over the wire, unmasked
    assert server.state.requests[1]["path"] == "/tokens"  # and came back as a token after that
    assert f"note={srv.TOKEN}" in run.out  # the console printed file 1 before the token was one
    for written in (run.junit_path, sr.dir / "report.html"):
        text = written.read_text(encoding="utf-8")
        assert srv.TOKEN not in text
        assert "note=***" in text
    assert "note=***" in run.system_out("Shows the value")


def test_the_spool_gives_back_every_field():
    scenario = ScenarioResult("s <&> \"q\"", "dir/f.scenario.yaml", duration=1.25, interrupted=True,
                              skip_reason="why", kind="setup")  # fmt: skip
    scenario.steps = [
        StepResult("a\nb", Location("f", 1, 2), Outcome.FAILED, 0.5,
                   [Failure("m", Location("f", 3, 4), "e", "a", True)], Problem("err", Location("g", 7, 8), "hint"),
                   None, "GET", "http://x/é", 404, "exchange\x00", "curl x", [Attempt(1, None, 0.1, "n")], True),
        StepResult("c", Location("f", 5, 6), Outcome.SKIPPED, skip_reason="later", error=Problem("no place")),
        StepResult("d", None, Outcome.FAILED, failures=[Failure("nowhere")]),
    ]  # fmt: skip
    spool = Spool()
    try:
        for _ in range(3):
            spool.add(scenario)
        back = list(spool.read())
        assert back == [scenario] * 3
        assert list(spool.read(results.RANK[Outcome.FAILED])) == [scenario] * 3
        assert list(spool.read(results.RANK[Outcome.PASSED])) == []
    finally:
        spool.close()


def _alive(kind: type) -> int:
    gc.unfreeze()  # a large run hides what loading left from the collector (cli): count it too
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, kind))


@pytest.mark.parametrize("jobs", ["1", "4"])
def test_what_a_run_holds_does_not_grow_with_its_passing_steps(sr, server, monkeypatch, jobs):
    """Counted when the reports are about to be written, after 10 and after 40 passing files: the
    step results held, and the steps of loaded models, are the same (the failed scenario's only,
    and the models of the files kept loaded)."""
    monkeypatch.setattr(runner.cli, "KEEP_LOADED", 3)
    held: dict[int, tuple[int, int, int]] = {}
    reporting = runner.cli._report

    def counting(args, out, err, stop, session, console, run, *rest):
        held[count] = (_alive(StepResult), _alive(Step), len(run.scenarios))
        return reporting(args, out, err, stop, session, console, run, *rest)

    monkeypatch.setattr(runner.cli, "_report", counting)
    for count in (10, 40):
        _suite(sr, passing=count)
        run = sr.run(".", "--jobs", jobs)
        assert run.code == 1, run.output
        assert len(run.suites()) == count + 6
    (results_10, models_10, kept_10), (results_40, models_40, kept_40) = held[10], held[40]
    assert results_40 == results_10 and kept_40 == kept_10 == 2, held  # the failed scenario and test
    # model steps: those of the files kept loaded, the few loaded last and each worker's last one
    files_loaded = runner.cli.KEEP_LOADED + runner.session._Reloads.RECENT + int(jobs)
    assert models_40 <= files_loaded * 3 and models_10 <= files_loaded * 3, held


@pytest.mark.parametrize("keep", [2, 256], ids=["large", "small"])
def test_a_large_run_hides_what_loading_left_from_the_collector_until_it_ends(sr, server, monkeypatch, keep):
    """A run of more than KEEP_LOADED scenarios collects once after loading and freezes what is left
    (full collections walked the stand-ins and kept models over and over); the next caller in the
    process gets them back (unfrozen). A small run does neither."""
    monkeypatch.setattr(runner.cli, "KEEP_LOADED", keep)
    frozen: list[int] = []
    reporting = runner.cli._report

    def noting(*args):
        frozen.append(gc.get_freeze_count())
        return reporting(*args)

    monkeypatch.setattr(runner.cli, "_report", noting)
    _suite(sr)
    run = sr.run(".")
    assert run.code == 1, run.output
    assert len(run.suites()) == 12
    assert (frozen[0] > 0) is (keep == 2), frozen
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("jobs", [1, 3])
def test_units_are_handed_to_the_workers_a_few_ahead_not_all_at_once(sr, server, monkeypatch, jobs):
    """A future per unit, made up front, held memory in proportion to the run (issue 12): at most
    2 * jobs + 2 are handed over and not yet done (one worker: 2 * _BATCH + 2, the units it runs
    before the main thread writes their results down), and every scenario still runs, in order."""
    import concurrent.futures
    import threading

    import runner.schedule

    pending: list[int] = []
    lock = threading.Lock()
    live: set[object] = set()

    class Counting(concurrent.futures.ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
            future = super().submit(fn, *args, **kwargs)
            with lock:
                live.add(future)
                pending.append(len(live))
            future.add_done_callback(lambda f: live.discard(f))
            return future

    monkeypatch.setattr(runner.schedule, "ThreadPoolExecutor", Counting)
    monkeypatch.setattr(runner.schedule, "_BATCH", 2)
    _suite(sr, passing=20)
    run = sr.run(".", "--jobs", str(jobs))
    assert run.code == 1, run.output
    assert len(pending) == 20 + 3  # every unit (the file of tests is one), handed over once
    assert max(pending) <= (2 * jobs + 2 if int(jobs) > 1 else 2 * 2 + 2), pending
    passing = [s.get("name") for s in run.suites() if s.get("name", "").startswith("Passing")]
    assert len(run.suites()) == 26 and passing == [f"Passing {n}" for n in range(20)], passing  # in file order


def test_loading_a_file_leaves_nothing_for_the_collector(sr):
    """A large run loads each file twice and drops the model: what a load made must go with its
    last reference, not wait for a full collection (a cycle in the YAML builder once left each
    file's whole tree, ~460 objects, to the collector)."""
    from runner.files import FilePolicy
    from runner.loader import Loader

    path = sr.write("p000.scenario.yaml", PASSING.format(n=0))
    loader = Loader(FilePolicy(), {})
    loader.load(path)  # caches of the first load (compiled templates, path displays)
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            loaded = loader.load(path, numbered=False)
            assert loaded[0].steps
            del loaded
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_the_collector_waits_while_files_load_and_is_back_after(sr, monkeypatch):
    """Session.load holds automatic collections (a load leaves no cycles: the test above) and turns
    them back on after, a bad file among the good ones too."""
    from runner.session import Session, SessionOptions

    sr.write("a.scenario.yaml", PASSING.format(n=1))
    sr.write("b.scenario.yaml", "name: [unclosed")
    seen: list[bool] = []
    session = Session(SessionOptions())
    real_load = session.loader.load

    def noting(path, *args, **kwargs):
        seen.append(gc.isenabled())
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(session.loader, "load", noting)
    errors: list[object] = []
    scenarios, count = session.load([str(sr.dir)], errors.append)
    assert (len(scenarios), count, len(errors)) == (1, 1, 1)
    assert seen == [False, False] and gc.isenabled()


def test_a_file_changed_during_the_run_is_an_error_of_its_scenario(sr, server, monkeypatch):
    """A file loaded again to run that no longer holds the scenario checked: that scenario errs
    with a message naming the file, the others run."""
    monkeypatch.setattr(runner.cli, "KEEP_LOADED", 0)
    sr.write("a.scenario.yaml", PASSING.format(n=1))
    b = sr.write("b.scenario.yaml", PASSING.format(n=2))
    first_load = runner.session.Session.load

    def load_then_edit(self, *args, **kwargs):
        loaded = first_load(self, *args, **kwargs)
        b.write_text(PASSING.format(n=3), encoding="utf-8")
        return loaded

    monkeypatch.setattr(runner.session.Session, "load", load_then_edit)
    run = sr.run(".")
    assert run.code == 1, run.output
    assert run.outcome("Echo 1") == "passed"
    assert "b.scenario.yaml: the file changed while the run was going on" in run.out
    assert "changed while the run" in ET.tostring(run.suite("Passing 2"), encoding="unicode")


INCLUDING = """
name: Including
vars: {base: "{{ env.BASE }}"}
steps:
  - include: echo.yaml
"""


def _counting_loads(monkeypatch) -> collections.Counter[str]:
    """How many times each file is loaded from YAML (Loader.load), by file name."""
    from runner.loader import Loader

    loads: collections.Counter[str] = collections.Counter()
    real = Loader.load

    def counting(self, path, *args, **kwargs):
        loads[path.name] += 1
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(Loader, "load", counting)
    return loads


def test_a_large_run_runs_the_checked_models_without_reading_their_yaml_again(sr, server, monkeypatch):
    """Issue 12: a file whose model was dropped after loading runs from its pickled checked model
    (runner/session.py _Snapshots): loaded from YAML once, with the outcomes of a run that keeps
    every model. A file that read another file (an include) is still loaded again from YAML."""
    _suite(sr)
    sr.write("p005-include.scenario.yaml", INCLUDING)
    sr.write("echo.yaml", 'steps:\n  - name: Included\n    request: {url: "{{ base }}/echo?i=1"}\n')

    def outcomes(run) -> list[tuple[str, str, str]]:
        cases = [(s.get("name"), c.get("name")) for s in run.suites() for c in s.findall("testcase")]
        return [(suite, name, run.outcome(name, suite)) for suite, name in cases]

    kept = sr.run(".")
    expected = outcomes(kept)
    monkeypatch.setattr(runner.cli, "KEEP_LOADED", 0)
    loads = _counting_loads(monkeypatch)
    run = sr.run(".")
    assert run.code == kept.code == 1, run.output
    assert outcomes(run) == expected
    assert len(expected) > 12 and ("Including", "Included", "passed") in expected, expected
    assert loads.pop("p005-include.scenario.yaml") == 2
    assert set(loads.values()) == {1} and len(loads) == 9, loads


def test_a_file_edited_in_place_during_the_run_runs_as_it_now_reads(sr, server, monkeypatch):
    """A pickled model is used only while the file's bytes hash as they did when checked: an edit
    that keeps the size and the modification time (a stat would miss it) is loaded from YAML again,
    and runs as it now reads."""
    import os

    monkeypatch.setattr(runner.cli, "KEEP_LOADED", 0)
    b = sr.write("b.scenario.yaml", PASSING.format(n=2))
    first_load = runner.session.Session.load
    loads = _counting_loads(monkeypatch)

    def load_then_edit(self, *args, **kwargs):
        loaded = first_load(self, *args, **kwargs)
        before = b.stat()
        b.write_text(b.read_text(encoding="utf-8").replace("status: 200, json", "status: 404, json"), encoding="utf-8")
        os.utime(b, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert b.stat().st_size == before.st_size
        return loaded

    monkeypatch.setattr(runner.session.Session, "load", load_then_edit)
    run = sr.run(".")
    assert run.code == 1, run.output
    assert run.outcome("Echo 2") == "failure"
    assert loads["b.scenario.yaml"] == 2


def test_templates_pickle_as_text_and_location_sharing_the_compiled_code():
    """Template.__reduce__: a pickled template is built again from the cache of compiled texts (the
    same compiled object), keeps its class, location and carriage returns, and renders alike."""
    import pickle

    from runner.templating import KeyTemplate, Template

    loc = Location("a.scenario.yaml", 3, 7)
    for template in (Template("x{{ a }}\r\ny", loc), KeyTemplate("{{ a }}", loc)):
        copy = pickle.loads(pickle.dumps(template))
        assert type(copy) is type(template)
        assert (copy.source, copy.loc, copy.names) == (template.source, loc, frozenset({"a"}))
        assert copy._tmpl is template._tmpl
        assert copy.render({"a": 1}) == template.render({"a": 1})
    assert pickle.loads(pickle.dumps(Template("x{{ a }}\r\ny", loc))).render({"a": 1}) == "x1\r\ny"


def test_version_answers_before_any_import(sr):
    """`--version` is answered by main() itself, as argparse would word it."""
    run = sr.main("--version")
    assert (run.code, run.out) == (0, f"scenario-runner {runner.__version__}\n")


def test_the_spool_masks_overlapping_secrets_as_one_and_holds_none_in_clear():
    """Spooled results are masked once, at read time, with every secret: a secret learned later that
    overlaps an earlier one in the same text is masked whole (a mask at spool time left `ghi` visible);
    and the bytes on disk hold neither secret."""
    from runner.redact import Redactor

    redactor = Redactor()
    redactor.add("abcdef0123456789")  # known when the scenario ended
    text = "token=abcdef0123456789XYZWVU987654 end"
    scenario = ScenarioResult("s", "f.scenario.yaml")
    scenario.steps = [StepResult("step", Location("f", 1, 1), Outcome.FAILED, exchange=text)]
    run = results.RunResult(spool=Spool())
    try:
        run.add(scenario)
        redactor.add("0123456789XYZWVU987654")  # learned later, overlapping the first in `text`
        results.scrub(run, redactor.mask)
        (back,) = [s for s in run.every() if s.name == "s"]
        assert back.steps[0].exchange == "token=*** end"
        run.spool._file.seek(0)  # type: ignore[union-attr]
        on_disk = run.spool._file.read()  # type: ignore[union-attr]
        assert b"abcdef0123456789" not in on_disk and b"XYZWVU987654" not in on_disk and b"token=" not in on_disk
    finally:
        run.spool.close()  # type: ignore[union-attr]


def test_discovery_resolves_each_path_as_realpath_does(tmp_path):
    """Discovery resolves a directory once for all its files (one lstat a file, issue 12): the same
    answer as os.path.realpath, with symlinked files, symlinked directories, dangling links, `..`."""
    import os

    from runner.loader import _realpath, discover

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "c").mkdir()
    for n in range(3):
        (tmp_path / "a" / "b" / f"f{n}.scenario.yaml").write_text("name: x\n")
    os.symlink(tmp_path / "a" / "b" / "f1.scenario.yaml", tmp_path / "c" / "link.scenario.yaml")
    os.symlink(tmp_path / "a", tmp_path / "c" / "dirlink")
    os.symlink(tmp_path / "nowhere", tmp_path / "c" / "dangling.scenario.yaml")
    os.symlink("loop.scenario.yaml", tmp_path / "c" / "loop.scenario.yaml")
    paths = [str(p) for p in tmp_path.rglob("*")]
    paths += [
        str(tmp_path / "c" / "dirlink" / "b" / "f2.scenario.yaml"),
        str(tmp_path / "a" / "b" / ".." / "b" / "f0.scenario.yaml"),
    ]
    paths += ["relative/missing.scenario.yaml", ".", ".."]
    directories: dict[str, str] = {}
    for path in paths:
        assert _realpath(path, directories) == os.path.realpath(path), path
    found = discover(
        [str(tmp_path / "a"), str(tmp_path / "c"), str(tmp_path / "c" / "dirlink" / "b" / "f2.scenario.yaml")]
    )
    names = [str(p.relative_to(tmp_path)) for p in found]
    assert names[:3] == ["a/b/f0.scenario.yaml", "a/b/f1.scenario.yaml", "a/b/f2.scenario.yaml"], names
    assert "c/link.scenario.yaml" not in names and "c/dirlink/b/f2.scenario.yaml" not in names, names  # the same files
