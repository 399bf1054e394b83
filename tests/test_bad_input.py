"""Bad input never gets past loading: a located message, a hint, exit code 2 and nothing sent.

Every `tests/bad_input/<case>.scenario.yaml` is one mistake a user can make; `<case>.expected` is
the exact message (stderr without the closing "N file(s) invalid" line). Both `validate` and `run`
must print it. The scenarios' URLs point at a live local server through `{{ env.SR_TEST_BASE }}`,
so a loader bug that lets a request through shows up as a recorded request.

Regenerate the golden files with `UPDATE_GOLDEN=1 pytest tests/test_bad_input.py`, then read the
diff: each message must name the right line and column and give a hint a QA engineer can act on.
"""

from __future__ import annotations

import io
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from server import TestServer as LocalServer

from runner.cli import main

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "bad_input"
GOOD = "tests/bad_input/support/good.yaml"
UPDATE = bool(os.environ.get("UPDATE_GOLDEN"))
LOCATED = re.compile(r"^\S+:\d+:\d+: \S")
HUGE_BYTES = 10 * 1024 * 1024


def _huge_file(tmp: Path) -> str:
    """A 10 MiB scenario on one line (as a generator might write it): refused before parsing."""
    head = '{name: Huge, steps: [{name: Get, request: {url: "{{ env.SR_TEST_BASE }}/echo", json: {data: "'
    tail = '"}}}]}\n'
    (tmp / "huge.scenario.yaml").write_text(head + "x" * (HUGE_BYTES - len(head) - len(tail)) + tail)
    return "huge.scenario.yaml"


GOOD_TEXT = (ROOT / GOOD).read_text("utf-8")
NESTING = 600  # from about this depth the parser, the format check and Jinja hit Python's recursion limit


def _deep_flow(tmp: Path) -> str:
    """600 levels of brackets in a JSON body: a RecursionError traceback before the limit existed."""
    head = GOOD_TEXT.replace("    expect:", "      json: " + "[" * NESTING + "]" * NESTING + "\n    expect:")
    (tmp / "deep-flow.scenario.yaml").write_text(head)
    return "deep-flow.scenario.yaml"


def _deep_block(tmp: Path) -> str:
    """600 levels of indented mappings (block style), each one space deeper than its parent."""
    body = "".join(" " * (6 + level) + f"k{level}:\n" for level in range(NESTING)) + " " * (6 + NESTING) + "v: 1\n"
    (tmp / "deep-block.scenario.yaml").write_text(
        GOOD_TEXT.replace("    expect:", "      json:\n" + body + "    expect:")
    )
    return "deep-block.scenario.yaml"


def _alias_bomb(tmp: Path) -> str:
    """Billion laughs: 9 levels of 10 aliases, 10^9 values from about 600 bytes. Made here, not
    committed: tools that read every YAML file of the repository (tests/corpus.py) would expand it."""
    lines = ["name: Billion laughs (9 levels x 10 aliases)", "vars:", "  a: &a [" + ", ".join(["lol"] * 10) + "]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"  {name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    (tmp / "yaml-alias-bomb.scenario.yaml").write_text(
        "\n".join(lines) + '\nsteps:\n  - name: Get\n    request:\n      url: "{{ env.SR_TEST_BASE }}/echo"\n'
        '      json: {laughs: "{{ i }}"}\n'
    )
    return "yaml-alias-bomb.scenario.yaml"


def _nul(tmp: Path) -> str:
    """A NUL byte in a step name, as a binary file or a broken generator leaves it."""
    (tmp / "nul.scenario.yaml").write_bytes(GOOD_TEXT.replace("name: Get", "name: Ge\x00t").encode())
    return "nul.scenario.yaml"


def _escape(tmp: Path) -> str:
    """An ESC control character (a terminal escape sequence) in a URL."""
    (tmp / "esc.scenario.yaml").write_bytes(GOOD_TEXT.replace("/echo", "/echo\x1b[2J").encode())
    return "esc.scenario.yaml"


def _vars_file_nul(tmp: Path) -> str:
    (tmp / "vars.yaml").write_bytes(b"image_file: cirros\nflavor: m1.\x00tiny\n")
    (tmp / "good.scenario.yaml").write_text(GOOD_TEXT)
    return "good.scenario.yaml"


@dataclass(frozen=True)
class Case:
    name: str
    path: str  # relative to the working directory of the run
    extra: tuple[str, ...] = ()
    usage: bool = False  # a command-line mistake: no "N file(s) invalid" line follows
    make: Callable[[Path], str] | None = field(default=None, compare=False)  # builds the file in tmp_path
    located: bool = True  # the message starts with path:line:col
    quoted: bool = True  # the offending line is quoted with a caret
    hinted: bool = True  # a `hint:` line follows

    @property
    def golden(self) -> Path:
        return CASES / f"{self.name}.expected"


UNQUOTED = ("empty-file", "matrix-csv-empty")  # nothing to quote: the file is empty


def _file_cases() -> list[Case]:
    cases = []
    for path in sorted(CASES.glob("*.scenario.yaml")):
        name = path.name.removesuffix(".scenario.yaml")
        cases.append(Case(name, f"tests/bad_input/{path.name}", quoted=name not in UNQUOTED))
    return cases


EXTRA_CASES = [
    Case("cli-var-without-equals", GOOD, ("--var", "image_file"), usage=True, located=False, quoted=False),
    Case(
        "cli-vars-file-missing",
        GOOD,
        ("--vars-file", "tests/bad_input/support/nope-vars.yaml"),
        usage=True,
        located=False,
        quoted=False,
    ),
    # cli.py gives no hint for this one yet (reported to the cli owner).
    Case(
        "cli-vars-file-not-mapping",
        GOOD,
        ("--vars-file", "tests/bad_input/support/vars-list.yaml"),
        usage=True,
        hinted=False,
    ),
    Case("huge-file", "", make=_huge_file),
    Case("yaml-alias-bomb", "", make=_alias_bomb),
    Case("deep-flow", "", make=_deep_flow),
    Case("deep-block", "", make=_deep_block),
    Case("nul", "", make=_nul),
    Case("control-character", "", make=_escape),
    Case("cli-vars-file-nul", "", ("--vars-file", "vars.yaml"), usage=True, make=_vars_file_nul),
]
ALL_CASES = _file_cases() + EXTRA_CASES


@pytest.fixture(scope="module")
def module_server() -> Iterator[LocalServer]:
    """One server for the module: starting one per case would cost ~0.5 s each on shutdown."""
    srv = LocalServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def live(module_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> LocalServer:
    """The server, with SR_TEST_BASE pointing at it and no request recorded yet."""
    module_server.state.requests.clear()
    monkeypatch.setenv("SR_TEST_BASE", module_server.url)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return module_server


def _main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def _normalise(text: str) -> str:
    """Paths resolved against the checkout (e.g. 'resolved to /home/ci/...') differ per machine."""
    return text.replace(str(ROOT), "<repo>")


def _split_trailer(stderr: str, trailer: str) -> str:
    assert stderr.endswith(trailer), f"stderr should end with {trailer!r}:\n{stderr}"
    return stderr[: len(stderr) - len(trailer)]


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.name)
def test_bad_input(case: Case, live: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if case.make is not None:
        monkeypatch.chdir(tmp_path)
        path = case.make(tmp_path)
    else:
        monkeypatch.chdir(ROOT)
        path = case.path

    v_code, v_out, v_err = _main("validate", path, *case.extra)
    r_code, r_out, r_err = _main("run", path, "--junit", "", *case.extra)

    for output in (v_out, v_err, r_out, r_err):
        assert "Traceback" not in output
    assert (v_code, r_code) == (2, 2), v_err + r_err
    assert (v_out, r_out) == ("", ""), "nothing may be reported as run"
    assert live.state.requests == [], "bad input must not send anything"

    v_message = _split_trailer(v_err, "" if case.usage else "1 file(s) invalid\n")
    r_message = _split_trailer(r_err, "" if case.usage else "1 file(s) invalid; nothing was sent\n")
    assert v_message == r_message, "validate and run must print the same message"

    message = _normalise(v_message)
    if UPDATE:
        case.golden.write_text(message, encoding="utf-8")
    assert case.golden.is_file(), f"no golden file {case.golden.name}; run with UPDATE_GOLDEN=1 and review it"
    assert message == case.golden.read_text(encoding="utf-8")

    lines = message.splitlines()
    assert bool(LOCATED.match(lines[0])) == case.located, lines[0]
    has_quote = len(lines) > 2 and re.match(r"^ *\d+ \| ", lines[1]) is not None and lines[2].strip() == "^"
    assert has_quote == case.quoted, message
    assert lines[-1].startswith("hint: ") == case.hinted, message


def test_every_case_has_a_golden_file_and_no_golden_is_orphaned() -> None:
    expected = {c.golden.name for c in ALL_CASES}
    present = {p.name for p in CASES.glob("*.expected")}
    assert present == expected
    assert len(ALL_CASES) >= 34


def test_the_good_scenario_reaches_the_server(live: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without this, `requests == []` above could hold only because the URLs lead nowhere."""
    monkeypatch.chdir(ROOT)
    code, out, err = _main("run", GOOD, "--junit", "")
    assert (code, err) == (0, ""), out + err
    assert [(r["method"], r["path"]) for r in live.state.requests] == [("GET", "/echo")]


def test_a_directory_with_good_and_bad_files(
    live: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(ROOT / GOOD, suite / "a-good.scenario.yaml")
    bad = ["two-bodies", "unknown-expect-key"]
    for name in bad:
        shutil.copy(CASES / f"{name}.scenario.yaml", suite / f"{name}.scenario.yaml")
    monkeypatch.chdir(tmp_path)
    messages = "".join(
        (CASES / f"{name}.expected").read_text("utf-8").replace("tests/bad_input/", "suite/") for name in bad
    )

    code, out, err = _main("validate", "suite")
    assert (code, out) == (2, "")
    assert err == messages + "2 file(s) invalid\n"

    code, out, err = _main("run", "suite", "--junit", "")
    assert (code, out) == (2, "")
    assert err == messages + "2 file(s) invalid; nothing was sent\n"
    assert live.state.requests == [], "one bad file must stop the whole run before anything is sent"
    assert not (tmp_path / "reports").exists()


def test_a_merged_key_may_be_overridden(live: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The duplicate-key check must not refuse `<<: *anchor` followed by a key that overrides it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "merge.scenario.yaml").write_text(
        "name: Merge\n"
        "defaults:\n"
        "  headers: &common {Accept: application/json, X-Trace: '0'}\n"
        "steps:\n"
        "  - name: Get\n"
        "    request:\n"
        '      url: "{{ env.SR_TEST_BASE }}/echo"\n'
        "      headers: {<<: *common, Accept: text/plain}\n"
        "    expect:\n"
        "      json: {headers: {Accept: text/plain, X-Trace: '0'}}\n",
        encoding="utf-8",
    )
    code, out, err = _main("run", "merge.scenario.yaml", "--junit", "")
    assert (code, err) == (0, ""), out + err
    assert live.state.requests[0]["headers"]["Accept"] == "text/plain"
