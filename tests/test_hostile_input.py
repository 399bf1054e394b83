"""Hostile input that the golden corpus (test_bad_input.py) cannot hold: too big or too binary to
commit, or needing a process of its own (a memory cap, its own /proc/self/environ).

Each is refused with exit 2 and a located message by `validate` and `run`, in bounded time and
memory, with nothing sent; and the limits leave ordinary files alone.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, child_env

from runner import yamlsource
from runner.yamllimits import MAX_CHARS, MAX_DEPTH, MAX_VALUES

LOCATED = re.compile(r"^\S+:\d+:\d+: \S", re.M)
MEMORY_CAP = 1 << 30  # 1 GiB of address space: the bomb alone would need many times more
GET = '  - name: Get\n    request:\n      url: "{{ env.SR_TEST_BASE }}/echo"\n'


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _capped(cwd: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, limited to MEMORY_CAP; the timeout only stops a hang, it is
    not the assertion (the exit code and message are)."""
    return subprocess.run(
        [sys.executable, "-m", "runner", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(**env),
        preexec_fn=_cap_memory,
    )


def _laughs(levels: int, width: int) -> str:
    lines = ["name: Laughs", "vars:", "  a: &a [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        name, prev = f"l{level}", "a" if level == 1 else f"l{level - 1}"
        lines.append(f"  {name}: &{name} [" + ", ".join([f"*{prev}"] * width) + "]")
    return "\n".join(lines) + "\nsteps:\n" + GET


def _long_string_copies() -> str:
    """Few values, but each alias copies 200,000 characters: 100 copies are 20 million."""
    text = "x" * 200_000
    return f"name: Copies\nvars:\n  s: &s {text}\n  all: [{', '.join(['*s'] * 100)}]\nsteps:\n{GET}"


def _deep(levels: int) -> str:
    return f"name: Deep\nvars:\n  v: {'[' * levels}{']' * levels}\nsteps:\n{GET}"


BIG = {
    "billion-laughs": (_laughs(9, 10), "aliases expand this file to more than 1,000,000 values"),
    "long-string-copies": (_long_string_copies(), "to more than 10,000,000 characters of text"),
    "nesting-300000": (_deep(300_000), f"nested more than {MAX_DEPTH} levels deep"),
}


@pytest.mark.parametrize("name", BIG)
def test_expansion_and_depth_are_refused_in_bounded_memory(name: str, server, tmp_path: Path) -> None:
    text, expected = BIG[name]
    (tmp_path / "big.scenario.yaml").write_text(text, encoding="utf-8")
    for argv in (["validate", "big.scenario.yaml"], ["run", "big.scenario.yaml", "--junit", ""]):
        proc = _capped(tmp_path, *argv, SR_TEST_BASE=server.url)
        assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-2000:]
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert LOCATED.match(proc.stderr) and expected in proc.stderr, proc.stderr
        assert proc.stderr.startswith("big.scenario.yaml:")
    assert server.state.requests == []


def test_the_alias_named_is_where_the_copies_pass_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(_laughs(9, 10), encoding="utf-8")
    with pytest.raises(yamlsource.ScenarioFormatError) as err:
        yamlsource.load_yaml(str(path))
    # copies of l4 (111,111 values each), counted in file order, pass 1,000,000 at its 8th use in l5
    loc = err.value.location
    assert (loc.line, loc.col) == (8, 47), err.value.render()
    assert loc.source_line()[loc.col - 1 :].startswith("*l4, *l4, *l4]")


def test_a_few_aliases_and_merges_load_as_before(tmp_path: Path) -> None:
    """Under the limits nothing changes: 1,000 copies of a 500-value list (500,000 values) load."""
    text = _laughs(2, 500).replace("[" + ", ".join(["*a"] * 500), "[" + ", ".join(["*a"] * 1000))
    text += "defaults:\n  headers: &h {A: '1'}\nmore: {<<: *h, B: '2'}\n"
    path = tmp_path / "ok.yaml"
    path.write_text(text, encoding="utf-8")
    data = yamlsource.load_yaml(str(path))
    assert len(data["vars"]["l1"]) == 1000 and data["vars"]["l1"][999] is data["vars"]["a"]
    assert data["more"] == {"A": "1", "B": "2"}
    assert MAX_VALUES > 500_000


@pytest.mark.parametrize("loader", [yamlsource._FastLoader, yamlsource._Loader], ids=["libyaml", "pyyaml"])
@pytest.mark.parametrize("levels", [MAX_DEPTH, MAX_DEPTH + 1, 600])
def test_depth_is_bounded_the_same_on_both_paths(loader: type, levels: int) -> None:
    """Flow and block nesting: exactly MAX_DEPTH levels load; one more is refused where it starts."""
    flow = "[" * levels + "]" * levels
    block = "".join(" " * i + f"k{i}:\n" for i in range(levels - 1)) + " " * (levels - 1) + "v: 1\n"
    for text, where in ((flow, (1, MAX_DEPTH + 1)), (block, (MAX_DEPTH + 1, MAX_DEPTH + 1))):
        instance = loader(text)
        instance.source_path = "f.yaml"
        try:
            if levels <= MAX_DEPTH:
                instance.get_single_data()
                continue
            with pytest.raises(yamlsource.ScenarioFormatError) as err:
                instance.get_single_data()
            assert "nested more than 100 levels" in err.value.message
            assert (err.value.location.line, err.value.location.col) == where
        finally:
            instance.dispose()


@pytest.mark.parametrize("levels", [1001, 5000, 100_000])
def test_nesting_beyond_libyaml_own_limit_is_refused_the_same_way(levels: int, tmp_path: Path) -> None:
    """libyaml stops at 1000 levels with its own error; the pure-Python parser (which words the
    message) then stops at the limit, before its recursion would."""
    path = tmp_path / "deep.yaml"
    path.write_text("v: " + "[" * levels + "]" * levels + "\n", encoding="utf-8")
    with pytest.raises(yamlsource.ScenarioFormatError) as err:
        yamlsource.load_yaml(str(path))
    assert "nested more than 100 levels" in err.value.message
    assert (err.value.location.line, err.value.location.col) == (1, 4 + MAX_DEPTH - 1)


def test_aliases_count_towards_depth(tmp_path: Path) -> None:
    """Each half is 60 levels deep; the alias puts one inside the other: 120 levels once built."""
    half = 60
    text = f"a: &a {'[' * half}x{']' * half}\nb: {'[' * half}*a{']' * half}\n"
    path = tmp_path / "d.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(yamlsource.ScenarioFormatError) as err:
        yamlsource.load_yaml(str(path))
    assert "nested more than 100 levels" in err.value.message


def test_vars_file_proc_self_environ_is_refused_without_printing_the_environment(tmp_path: Path, server) -> None:
    (tmp_path / "good.scenario.yaml").write_text("name: Good\nsteps:\n" + GET, encoding="utf-8")
    marker = "s3cr3t-marker-value"
    for command in ("validate", "run"):
        proc = _capped(
            tmp_path,
            command,
            "good.scenario.yaml",
            "--vars-file",
            "/proc/self/environ",
            SR_TEST_BASE=server.url,
            AAA_SECRET=marker,
        )
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert re.match(r"/proc/self/environ:1:\d+: YAML: control character U\+0000 \(NUL\)", proc.stderr)
        assert marker not in proc.stderr + proc.stdout, "the environment must not be quoted"
    assert server.state.requests == []


def test_non_utf8_vars_file_is_located(tmp_path: Path, server, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.scenario.yaml").write_text("name: Good\nsteps:\n" + GET, encoding="utf-8")
    (tmp_path / "vars.yaml").write_bytes(b"image: caf\xe9\n")
    monkeypatch.setenv("SR_TEST_BASE", server.url)
    import io

    err = io.StringIO()
    code = main(["run", "good.scenario.yaml", "--vars-file", "vars.yaml", "--junit", ""], io.StringIO(), err)
    assert code == 2 and err.getvalue().startswith("vars.yaml:1:11: invalid UTF-8 byte 0xe9")
    assert server.state.requests == []


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "Infinity"])
def test_timeout_option_must_be_finite(value: str, server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from runner.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SR_TEST_BASE", server.url)
    (tmp_path / "good.scenario.yaml").write_text("name: Good\nsteps:\n" + GET, encoding="utf-8")
    err = io.StringIO()
    code = main(["run", "good.scenario.yaml", f"--timeout={value}", "--junit", ""], io.StringIO(), err)
    assert code == 2, err.getvalue()
    assert f"argument --timeout: '{value}' is not a finite number of seconds" in err.getvalue()
    assert "Traceback" not in err.getvalue()
    assert server.state.requests == []


def test_limits_are_documented() -> None:
    docs = (ROOT / "docs" / "format.md").read_text("utf-8") + (ROOT / "docs" / "errors.md").read_text("utf-8")
    for figure in (f"{MAX_VALUES:,}", f"{MAX_CHARS:,}", f"{MAX_DEPTH} levels"):
        assert figure in docs, figure


def test_cap_is_effective() -> None:
    """The memory cap is real: a child that allocates 2 GiB under it fails (so the tests above mean it)."""
    proc = subprocess.run(
        [sys.executable, "-c", "b = bytearray(2 << 30)"],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_cap_memory,
        env={**os.environ},
    )
    assert proc.returncode != 0 and "MemoryError" in proc.stderr
