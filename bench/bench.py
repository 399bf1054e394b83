"""The performance figures of issues 5 and 12, measured against bench/stub.py, with the raw `requests` baseline.

    python bench/bench.py            # everything (a few minutes on 2 cores)
    python bench/bench.py --quick    # a smaller subset of every target (well under a minute)
    python bench/bench.py --only 1,3 --json figures.json
    python bench/bench.py --profile  # cProfile of the 50-copies in-process run, top functions
    python bench/bench.py --only tempest   # the Tempest port against the testbed (openrc loaded): only when named
    python bench/bench.py --only load,memory   # issue 15's load mode (Locust): only when named

Targets (figures are reported, never asserted):
  1. 50 copies of the tutorial in one in-process run: cost per step <= 1.2 x a raw requests loop.
  2. `scenario-runner --version` <= 3 x `python -c pass`; one tutorial run as a process <= 0.35 s.
  3. a 1 GiB upload: runner peak RSS <= 40 MiB, wall <= 1.2 x raw requests; with md5 + sha512
     expectations the file is read at most once more than the upload needs (rchar / size <= 2).
  4. --jobs 4 >= 3.5 x faster than --jobs 1 (40 scenarios, 50 ms added latency per request).
  5. 1,000 files (8,000 steps) in one run: peak RSS <= 120 MiB; 2,000 files <= 2.2 x the time.
  6. the masker: learning a token and masking a line cost the same at 10,000 secrets as at 1,000.
  7. (issue 12) 10,000 files, a fresh token per login: <= 10.5 x the time of 1,000; per step <= 1.2 x
     raw requests at 50 and at 10,000 files; peak RSS <= 120 MiB (JUnit and HTML written).
  8. (issue 12) --jobs 8 >= 7 x faster than --jobs 1 (50 ms latency, the login a run-level fixture).
  Start-up (target 2) is <= 2 x `python -c pass` since issue 12.
  tempest (issue 10): the Tempest port at --jobs 1 with its run-level login, with a login in every file,
     and with credentials made in every file: wall, POST /v3/auth/tokens per run, steps per second.
  load (issue 15): `scenario-runner load` of the tutorial vs a hand-written Locust HttpUser (target >= 0.7
     of its requests per second) and FastHttpUser making the same 8 calls (bench/load_ratio.py, one process).
  memory (issue 15): RSS of a 10-minute load (60 s with --quick): growth <= 10 %.

Each stub runs in its own process; the client measured is this process (target 1) or a child
process started from here (the others). A child's peak RSS is VmHWM and its reads are rchar /
read_bytes, from /proc/self written at exit by bench/probe.py. (os.wait4's ru_maxrss is not used:
Linux carries the RSS of the forking parent into it at exec, so it reads at least this process's RSS.)
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import gc
import io
import json
import os
import platform
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import requests

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PY = sys.executable
TUTORIAL = BENCH / "tutorial.scenario.yaml"
STEPS_PER_TUTORIAL = 8
MIB = 1024 * 1024

sys.path.insert(0, str(BENCH))
import raw_tutorial  # noqa: E402


class BenchError(Exception):
    """A workload did not pass: its figures would mean nothing."""


@dataclass
class Row:
    target: str
    measure: str
    runner: str
    baseline: str = ""
    ratio: str = ""
    goal: str = ""
    holds: str = ""  # "yes", "MISSED" or "" (for information only)


@dataclass
class Child:
    wall: float
    output: str
    cpu: float = 0.0  # user + system seconds of the child (less sensitive to a loaded machine than wall)


# --- plumbing ------------------------------------------------------------------------------------


class Stub:
    """bench/stub.py in its own process; stops when closed (or when this process dies)."""

    def __init__(self, latency_ms: float = 0.0):
        cmd = [PY, str(BENCH / "stub.py"), "--latency-ms", str(latency_ms), "--max-seconds", "1800"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.close()
            raise BenchError(f"the stub did not start: {self.url!r}")

    def requests(self) -> int:
        with urllib.request.urlopen(f"{self.url}/_bench/stats", timeout=10) as resp:
            return int(json.load(resp)["requests"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the stub stops on end of input
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Stub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def child_env(stub: Stub) -> dict[str, str]:
    return {**os.environ, "STUB_URL": stub.url}


def run_child(cmd: Sequence[str], env: dict[str, str] | None = None, cwd: Path = REPO) -> Child:
    """Run a process to its end; wall time from spawn to reaped."""
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read().decode(errors="replace")
    if proc.returncode != 0:
        lines = output.splitlines()
        first = next((i for i, line in enumerate(lines) if line.lstrip().startswith(("FAIL", "ERROR"))), None)
        detail = "\n".join(lines[first : first + 8]) + "\n...\n" if first is not None else ""
        raise BenchError(f"{' '.join(cmd)} exited {proc.returncode}:\n{detail}{output[-1500:]}")
    return Child(wall, output, usage.ru_utime + usage.ru_stime)


def median_wall(cmd: Sequence[str], runs: int, env: dict[str, str] | None = None) -> float:
    run_child(cmd, env)  # warm the page cache
    return statistics.median(run_child(cmd, env).wall for _ in range(runs))


def copies(directory: Path, count: int, source: Path = TUTORIAL) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    text = source.read_text()
    for index in range(count):
        (directory / f"tutorial-{index:04d}.scenario.yaml").write_text(text)
    return directory


def scenario_runner_command() -> list[str]:
    """The installed console script next to this interpreter (not a pyenv shim, which adds ~70 ms)."""
    script = Path(PY).parent / "scenario-runner"
    if script.exists():
        return [str(script)]
    found = shutil.which("scenario-runner")
    if found is None:
        raise BenchError("scenario-runner is not installed: pip install -e .")
    return [found]


def verdict(ok: bool) -> str:
    return "yes" if ok else "MISSED"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


@contextmanager
def tempdir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        yield Path(name)


# --- target 1: marginal cost per step ------------------------------------------------------------


def runner_in_process(directory: Path, extra: Sequence[str] = ()) -> float:
    from runner.cli import main

    errors = io.StringIO()
    with open(os.devnull, "w") as sink:
        gc.collect()
        started = time.perf_counter()
        code = main(["run", str(directory), "--junit", "", *extra], stdout=sink, stderr=errors)
        wall = time.perf_counter() - started
    if code != 0:
        raise BenchError(f"the runner exited {code} on {directory}: {errors.getvalue()[-2000:]}")
    return wall


def validate_in_process(directory: Path) -> float:
    """What loading costs: `validate` parses, checks and compiles every file, and sends nothing."""
    from runner.cli import main

    with open(os.devnull, "w") as sink:
        started = time.perf_counter()
        code = main(["validate", str(directory)], stdout=sink, stderr=sink)
        wall = time.perf_counter() - started
    if code != 0:
        raise BenchError(f"validate exited {code} on {directory}")
    return wall


def raw_in_process(base: str, count: int) -> float:
    gc.collect()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-raw-") as tmp:
        upload = raw_tutorial.UploadFile(tmp)
        for _ in range(count):
            raw_tutorial.run_tutorial(base, upload)
    return time.perf_counter() - started


def target1(quick: bool) -> list[Row]:
    count, reps = 50, 3 if quick else 7
    steps = count * STEPS_PER_TUTORIAL
    with Stub() as stub, tempdir("bench-t1-") as tmp:
        os.environ["STUB_URL"] = stub.url
        directory = copies(tmp / "copies", count)
        runner_in_process(directory)  # warm-up: imports, first connections
        raw_in_process(stub.url, count)
        runner_walls, raw_walls, load_walls = [], [], []
        for _ in range(reps):
            load_walls.append(validate_in_process(directory))
            before = stub.requests()
            runner_walls.append(runner_in_process(directory))
            middle = stub.requests()
            raw_walls.append(raw_in_process(stub.url, count))
            after = stub.requests()
            if middle - before != steps or after - middle != steps:
                raise BenchError(f"requests sent: runner {middle - before}, raw {after - middle}, expected {steps}")
    runner, raw = statistics.median(runner_walls), statistics.median(raw_walls)
    ratio = runner / raw
    load = statistics.median(load_walls)
    run_phase = (runner - load) / raw
    return [
        Row("1", f"{count} tutorial copies in-process, total (median of {reps})", f"{runner:.3f} s", f"{raw:.3f} s"),
        Row("1", f"per step ({steps} steps)", ms(runner / steps), ms(raw / steps), f"{ratio:.2f}", "<= 1.2",
            verdict(ratio <= 1.2)),
        Row("1", f"of which loading {count} files (validate, in-process)", f"{load:.3f} s", "", "", "(info)", ""),
        Row("1", "run phase per step (total minus loading)", ms((runner - load) / steps), ms(raw / steps),
            f"{run_phase:.2f}", "(info)", ""),
    ]  # fmt: skip


# --- target 2: start-up --------------------------------------------------------------------------


def target2(quick: bool) -> list[Row]:
    startup_runs, tutorial_runs = (10, 5) if quick else (20, 10)
    version_cmd, bare_cmd = [*scenario_runner_command(), "--version"], [PY, "-c", "pass"]
    run_child(version_cmd), run_child(bare_cmd)  # warm the page cache
    versions, bares = [], []
    for _ in range(startup_runs):  # interleaved: a burst of load on the machine falls on both
        versions.append(run_child(version_cmd).wall)
        bares.append(run_child(bare_cmd).wall)
    version, bare = statistics.median(versions), statistics.median(bares)
    with Stub() as stub:
        env = child_env(stub)
        tutorial = median_wall([PY, "-m", "runner", "run", str(TUTORIAL.relative_to(REPO)), "--junit", ""],
                               tutorial_runs, env)  # fmt: skip
        raw = median_wall([PY, str(BENCH / "raw_tutorial.py")], tutorial_runs, env)
    return [
        Row("2", f"`scenario-runner --version` vs `python -c pass` (median of {startup_runs}, interleaved)",
            ms(version), ms(bare), f"{version / bare:.2f}", "<= 2 (issue 12; was 3)", verdict(version / bare <= 2)),
        Row("2", f"one tutorial run as a process vs raw_tutorial.py (median of {tutorial_runs})", f"{tutorial:.3f} s",
            f"{raw:.3f} s", f"{tutorial / raw:.2f}", "<= 0.35 s", verdict(tutorial <= 0.35)),
    ]  # fmt: skip


# --- target 3: a large upload --------------------------------------------------------------------


def make_file(path: Path, size: int) -> None:
    block = bytearray(os.urandom(MIB))
    with open(path, "wb") as fh:
        for index in range(size // MIB):
            block[:8] = index.to_bytes(8, "little")  # no two blocks alike
            fh.write(block)
        fh.write(os.urandom(size % MIB))


def probed(cmd: Sequence[str], env: dict[str, str], out: Path) -> tuple[Child, dict[str, int]]:
    child = run_child([PY, str(BENCH / "probe.py"), str(out), *cmd], env)
    return child, json.loads(out.read_text())


def target3(quick: bool) -> list[Row]:
    size, reps = (256 * MIB, 1) if quick else (1024 * MIB, 3)
    label = f"{size // MIB} MiB"
    with tempdir("bench-t3-") as tmp, Stub() as stub:
        env = child_env(stub)
        data, small = tmp / "upload.bin", tmp / "small.bin"
        make_file(data, size)
        make_file(small, 4096)

        def runner(scenario: str, upload: Path = data) -> list[str]:
            return ["-m", "runner", "run", f"bench/{scenario}", "--junit", "", "-q",
                    "--var", f"image_file={upload}", "--allow-path", str(tmp)]  # fmt: skip

        variants: dict[str, list[str]] = {
            "runner 4 KiB": runner("upload-checked.scenario.yaml", small),
            "raw 4 KiB": [str(BENCH / "raw_upload.py"), str(small), "--hash"],
            "runner": runner("upload.scenario.yaml"),
            "raw": [str(BENCH / "raw_upload.py"), str(data)],
            "runner+digests": runner("upload-checked.scenario.yaml"),
            "raw+digests": [str(BENCH / "raw_upload.py"), str(data), "--hash"],
        }
        results: dict[str, list[tuple[Child, dict[str, int]]]] = {name: [] for name in variants}
        for _ in range(reps):
            for name, cmd in variants.items():
                results[name].append(probed(cmd, env, tmp / "probe.json"))
    wall = {name: statistics.median(c.wall for c, _ in runs) for name, runs in results.items()}
    rss = {name: max(p["VmHWM_kib"] for _, p in runs) / 1024 for name, runs in results.items()}
    rchar = {name: max(p["rchar"] for _, p in runs) / size for name, runs in results.items()}
    read_bytes = {name: max(p["read_bytes"] for _, p in runs) / size for name, runs in results.items()}
    return [
        Row("3", "4 KiB upload with checks: peak RSS (the footprint of the imports)", f"{rss['runner 4 KiB']:.2f} MiB",
            f"{rss['raw 4 KiB']:.2f} MiB", f"{rss['runner 4 KiB'] / rss['raw 4 KiB']:.2f}", "(info)"),
        Row("3", f"{label} upload: peak RSS, runner vs raw requests", f"{rss['runner']:.2f} MiB",
            f"{rss['raw']:.2f} MiB", f"{rss['runner'] / rss['raw']:.2f}", "<= 40 MiB", verdict(rss["runner"] <= 40)),
        Row("3", f"{label} upload with md5+sha512 checks: peak RSS", f"{rss['runner+digests']:.2f} MiB",
            f"{rss['raw+digests']:.2f} MiB", f"{rss['runner+digests'] / rss['raw+digests']:.2f}", "<= 40 MiB",
            verdict(rss["runner+digests"] <= 40)),
        Row("3", f"{label} upload: wall, process start to exit (median of {reps})", f"{wall['runner']:.2f} s",
            f"{wall['raw']:.2f} s", f"{wall['runner'] / wall['raw']:.2f}", "<= 1.2 x",
            verdict(wall["runner"] <= 1.2 * wall["raw"])),
        Row("3", f"{label} upload with md5+sha512 checks: wall (baseline hashes too)",
            f"{wall['runner+digests']:.2f} s", f"{wall['raw+digests']:.2f} s",
            f"{wall['runner+digests'] / wall['raw+digests']:.2f}", "(info)"),
        Row("3", "with md5+sha512 checks: bytes read (rchar) / file size", f"{rchar['runner+digests']:.3f}",
            f"{rchar['raw+digests']:.3f}", "", "<= 2 (1 + at most one more)", verdict(rchar["runner+digests"] <= 2.0)),
        Row("3", "without checks: rchar / size; with checks: read_bytes (block device; 0 = page cache) / size",
            f"{rchar['runner']:.3f}; {read_bytes['runner+digests']:.3f}",
            f"{rchar['raw']:.3f}; {read_bytes['raw+digests']:.3f}", "", "(info)"),
    ]  # fmt: skip


# --- target 4: --jobs ----------------------------------------------------------------------------


def target4(quick: bool) -> list[Row]:
    count = 12 if quick else 40
    with tempdir("bench-t4-") as tmp, Stub(latency_ms=50) as stub:
        env = child_env(stub)
        directory = copies(tmp / "copies", count)
        # The 4 KiB file is made here, not by data_file(): concurrent first calls of data_file() for the
        # same file race in runner/files.py DataFiles.make (shared '.part' name) and fail a scenario.
        upload = raw_tutorial.UploadFile(str(tmp))
        walls = {}
        for jobs in (1, 4):
            cmd = [PY, "-m", "runner", "run", str(directory), "--junit", "", "-q", "--jobs", str(jobs),
                   "--var", f"image_file={upload.path}", "--allow-path", str(tmp)]  # fmt: skip
            walls[jobs] = run_child(cmd, env).wall
    speedup = walls[1] / walls[4]
    return [
        Row("4", f"{count} scenarios, 50 ms latency: --jobs 4 vs --jobs 1 (process wall)", f"{walls[4]:.2f} s",
            f"{walls[1]:.2f} s", f"{speedup:.2f} x faster", ">= 3.5 x", verdict(speedup >= 3.5)),
    ]  # fmt: skip


# --- target 5: many files ------------------------------------------------------------------------


def target5(quick: bool) -> list[Row]:
    small, large = (100, 200) if quick else (1000, 2000)
    with tempdir("bench-t5-") as tmp, Stub() as stub:
        env = child_env(stub)
        walls, rss = {}, {}
        for count in (small, large):
            directory = copies(tmp / f"files-{count}", count)
            junit = tmp / f"junit-{count}.xml"
            cmd = ["-m", "runner", "run", str(directory), "--junit", str(junit)]
            child, figures = probed(cmd, env, tmp / "probe.json")
            walls[count], rss[count] = child.wall, figures["VmHWM_kib"] / 1024
            shutil.rmtree(directory)
    scale = walls[large] / walls[small]
    return [
        Row("5", f"{small} files ({small * STEPS_PER_TUTORIAL} steps, JUnit written): peak RSS",
            f"{rss[small]:.1f} MiB", "", "", "<= 120 MiB", verdict(rss[small] <= 120)),
        Row("5", f"{large} files vs {small} files: wall", f"{walls[large]:.2f} s", f"{walls[small]:.2f} s",
            f"{scale:.2f}", "<= 2.2", verdict(scale <= 2.2)),
        Row("5", f"{large} files: peak RSS; wall per step", f"{rss[large]:.1f} MiB",
            "", ms(walls[large] / (large * STEPS_PER_TUTORIAL)), "(info)"),
    ]  # fmt: skip


def target6(quick: bool) -> list[Row]:
    """The masker at scale: a run with a fresh token per login learns one secret per scenario.

    Learning must cost in proportion to the secret (not to the secrets learned so far) and masking a
    line in proportion to the line, whatever the number of secrets: the old regex alternation was
    recompiled on every new secret, so a run's cost grew with the square of its logins.

    Masking is timed at 10 points over the last tenth of the learning (900-1,000 and 9,000-10,000
    secrets) and averaged: the masker keeps its automata in blocks whose number depends on how the
    count of patterns happens to decompose (3 blocks at exactly 1,000 tokens, 5 at exactly 10,000,
    4 at 9,900), so a single count measures luck as much as scale.
    """
    import base64
    import secrets

    from runner.redact import Redactor

    small, large = (100, 1000) if quick else (1000, 10000)
    line = "  PASS  Upload the image data  PUT http://127.0.0.1:9292/v2/images/684f2610-a70a-4/file -> 204  (0.09s)"
    learn, mask, blocks, learn_lazy = {}, {}, {}, {}
    for count in (small, large):
        redactor = Redactor()
        tokens = ["gAAAAAB" + base64.urlsafe_b64encode(secrets.token_bytes(128)).decode() for _ in range(count)]
        points = {count - count // 10 + count // 100 * k for k in range(1, 11)}  # 10 points in the last tenth
        learning = 0.0
        sampled, seen = [], []
        for index, token in enumerate(tokens, 1):
            started = time.perf_counter()
            redactor.add(token)
            _ = redactor._blocks  # built in now, as when each login is followed by a masked line (-v)
            learning += time.perf_counter() - started
            if index in points:
                rounds = []
                for _ in range(3):  # the best of 3: the machine's noise only ever adds time
                    started = time.perf_counter()
                    for _ in range(1000):
                        redactor.mask(line)
                    rounds.append((time.perf_counter() - started) / 1000)
                sampled.append(min(rounds))
                seen.append(len(redactor._blocks))
        learn[count] = learning / count
        mask[count] = statistics.mean(sampled)
        blocks[count] = f"{min(seen)}-{max(seen)}"
        assert redactor.mask(f"x {tokens[-1]} y") == "x *** y"
        lazy = Redactor()  # a run that masks nothing meanwhile (-q): all built at the first mask
        started = time.perf_counter()
        for token in tokens:
            lazy.add(token)
        assert lazy.mask(f"x {tokens[0]} y") == "x *** y"
        learn_lazy[count] = (time.perf_counter() - started) / count
    learn_ratio, mask_ratio = learn[large] / learn[small], mask[large] / mask[small]
    return [
        Row("6", f"learn a token and build it in, {large} vs {small} learned in the run (per token)", ms(learn[large]),
            ms(learn[small]), f"{learn_ratio:.2f}", "<= 2 (flat, not 10x)", verdict(learn_ratio <= 2)),
        Row("6", f"the same, nothing masked until the last (-q: built at the first mask), {large} vs {small}",
            ms(learn_lazy[large]), ms(learn_lazy[small]), f"{learn_lazy[large] / learn_lazy[small]:.2f}", "(info)"),
        Row("6", f"mask a console line, {large} vs {small} secrets known (mean over the last tenth;"
            f" {blocks[large]} vs {blocks[small]} automata)", f"{mask[large] * 1e6:.1f} µs",
            f"{mask[small] * 1e6:.1f} µs", f"{mask_ratio:.2f}", "<= 2 (flat, not 10x)", verdict(mask_ratio <= 2)),
    ]  # fmt: skip


# --- tempest: the Tempest port against the real testbed, run-level vs per-file login ----------------

TEMPEST = REPO / "scenarios" / "glance" / "tempest"
TEMPEST_MODES = ("run-level login", "per-file login", "per-file credentials")
FIXTURE_LINE = re.compile(r"^fixtures: \{creds: (\S+)/credentials\.yaml\}$", re.M)
LOGIN = re.compile(r"\bPOST \S+/v3/auth/tokens\b")
TOKENS = ("admin_token", "primary_token", "reader_token", "alt_token")


def _per_file_login(tree: Path) -> None:
    """Users and projects still made once per run (fixture `users`); each file logs in all four itself."""
    common = tree / "common"
    text = (common / "credentials.yaml").read_text()
    logins = re.findall(
        r"^  - include: \.\./\.\./\.\./common/keystone-token\.yaml\n    vars: .*\n    capture_as: .*\n", text, re.M
    )
    expires = 'expires: "{{ [admin_expires_at, primary_expires_at, reader_expires_at, alt_expires_at] | min }}"\n'
    if len(logins) != 3 or expires not in text:
        raise BenchError("common/credentials.yaml changed: update the per-file login rewrite in bench.py")
    for login in logins:
        text = text.replace(login, "")
    # the files log in with the users' password: a fixture's vars are its own, so capture it
    made = 'capture: {primary_user_id: "{{ response.json.user.id }}"}'
    if made not in text:
        raise BenchError("common/credentials.yaml changed: update the per-file login rewrite in bench.py")
    text = text.replace(made, made[:-1] + ', password: "{{ user_password }}"}')
    (common / "users.yaml").write_text(text.replace(expires, 'expires: "{{ admin_expires_at }}"\n'))
    shutil.copy(BENCH / "tempest" / "per-file-login.yaml", common / "per-file-login.yaml")
    for path in tree.rglob("*.scenario.yaml"):
        text = path.read_text()
        found = FIXTURE_LINE.search(text)
        if found is None:
            raise BenchError(f"{path.relative_to(tree)}: no `fixtures: {{creds: …}}` line to rewrite")
        where = found.group(1)
        text = FIXTURE_LINE.sub(f"fixtures: {{users: {where}/users.yaml}}", text)
        text = re.sub(
            r"\bcreds\.(\w+)",
            lambda m: (
                {"image": "image_endpoint"}.get(m.group(1), m.group(1))
                if m.group(1) in (*TOKENS, "image")
                else f"users.{m.group(1)}"
            ),
            text,
        )
        include = f"  - include: {where}/per-file-login.yaml\n"
        if "\nsetup:\n" in text:
            text = text.replace("\nsetup:\n", "\nsetup:\n" + include, 1)
        elif "\ntests:\n" in text:
            text = text.replace("\ntests:\n", "\nsetup:\n" + include + "tests:\n", 1)
        else:
            text = text.replace("\nsteps:\n", "\nsteps:\n" + include, 1)
        path.write_text(text)


def _per_file_credentials(tree: Path) -> None:
    """The credentials fixture once per file: a fixture is shared by the files that name it with the same
    `vars`, so a `vars` entry naming the file gives each its own users, projects and logins."""
    for path in tree.rglob("*.scenario.yaml"):
        text = path.read_text()
        if FIXTURE_LINE.search(text) is None:
            raise BenchError(f"{path.relative_to(tree)}: no `fixtures: {{creds: …}}` line to rewrite")
        use = f"fixtures: {{creds: {{use: \\1/credentials.yaml, vars: {{login_for: {path.stem}}}}}}}"
        path.write_text(FIXTURE_LINE.sub(use, text))


def _tempest_tree(root: Path, mode: str) -> None:
    """A copy of the port (and what it includes) under root, rewritten for the mode."""
    shutil.copytree(REPO / "scenarios" / "common", root / "scenarios" / "common")
    shutil.copytree(REPO / "schemas", root / "schemas")
    shutil.copytree(TEMPEST, root / "scenarios" / "glance" / "tempest", ignore=shutil.ignore_patterns("*.md"))
    tree = root / "scenarios" / "glance" / "tempest"
    if mode == "per-file login":
        _per_file_login(tree)
    elif mode == "per-file credentials":
        _per_file_credentials(tree)


def _admin_session() -> tuple[dict[str, str], str, str]:
    """The openrc's admin: headers with its token, the identity URL and the image endpoint.

    One connection per request: the testbed's uwsgi drops kept-alive connections without saying so."""
    identity = os.environ["OS_AUTH_URL"].rstrip("/")
    user = {
        "name": os.environ["OS_USERNAME"],
        "password": os.environ["OS_PASSWORD"],
        "domain": {"id": os.environ.get("OS_USER_DOMAIN_ID", "default")},
    }
    scope = {
        "project": {
            "name": os.environ["OS_PROJECT_NAME"],
            "domain": {"id": os.environ.get("OS_PROJECT_DOMAIN_ID", "default")},
        }
    }
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}, "scope": scope}}
    resp = requests.post(f"{identity}/auth/tokens", json=body, timeout=30)
    resp.raise_for_status()
    image = next(
        e["url"]
        for s in resp.json()["token"]["catalog"]
        if s["type"] == "image"
        for e in s["endpoints"]
        if e["interface"] == os.environ.get("OS_INTERFACE", "public")
    )
    headers = {"X-Auth-Token": resp.headers["X-Subject-Token"], "Accept": "application/json"}
    return headers, identity, image.rstrip("/")


def _left_on_testbed(run_id: str) -> list[str]:
    """What a run left behind: anything named with its run_id (images, namespaces, projects, users)."""
    headers, identity, image = _admin_session()
    left = []
    for url, key, field in (
        (f"{image}/v2/images?limit=1000", "images", "name"),
        (f"{image}/v2/metadefs/namespaces?limit=1000", "namespaces", "namespace"),
        (f"{identity}/projects", "projects", "name"),
        (f"{identity}/users", "users", "name"),
    ):
        resp = requests.get(url, headers=headers, timeout=30)
        resp.raise_for_status()
        left += [f"{key}: {item[field]}" for item in resp.json()[key] if run_id in str(item.get(field) or "")]
    return left


def _tempest_run(mode: str) -> tuple[float, int, int, int]:
    """One run of the port in the mode, --jobs 1: wall, logins, the port's own steps and all steps that ran."""
    run_id = "bench" + os.urandom(4).hex()
    with tempdir("bench-tempest-") as root:
        _tempest_tree(root, mode)
        junit = root / "junit.xml"
        cmd = [*scenario_runner_command(), "run", "scenarios/glance/tempest/", "--jobs", "1",
               "--var", f"run_id={run_id}", "--junit", str(junit)]  # fmt: skip
        try:
            child = run_child(cmd, cwd=root)
        finally:
            left = _left_on_testbed(run_id)
        if left:
            raise BenchError(f"{mode}: the run left {', '.join(left)} on the testbed")
        cases = [
            (suite.get("name") or "", case)
            for suite in ElementTree.parse(junit).getroot().iter("testsuite")
            for case in suite.iter("testcase")
        ]
    ran = [(suite, case) for suite, case in cases if case.find("skipped") is None]
    # the port's own steps: neither a fixture's nor a login (per-file login puts 4 in each file's setup)
    tests = [c for suite, c in ran if not suite.startswith("fixture: ") and c.get("name") != "Get a Keystone token"]
    return child.wall, len(LOGIN.findall(child.output)), len(tests), len(ran)


def target_tempest(quick: bool) -> list[Row]:
    """The Tempest port (scenarios/glance/tempest/) at --jobs 1 against the testbed, three ways:
    as it is (one login per credential per run), with each file logging in itself, and with each file
    making its own credentials (users, projects and logins). Needs the testbed's openrc loaded."""
    if not os.environ.get("OS_AUTH_URL"):
        raise BenchError("OS_AUTH_URL is not set: start the testbed, then `set -a; . .testbed/openrc; set +a`")
    reps = 1 if quick else 3
    runs: dict[str, list[tuple[float, int, int, int]]] = {mode: [] for mode in TEMPEST_MODES}
    for _ in range(reps):  # alternating, so the shared testbed's load falls on every mode alike
        for mode in TEMPEST_MODES:
            runs[mode].append(_tempest_run(mode))
            print(f"tempest {mode}: {runs[mode][-1][0]:.1f} s, {runs[mode][-1][1]} logins", file=sys.stderr, flush=True)
    base = statistics.median(r[0] for r in runs[TEMPEST_MODES[0]])
    rows = []
    for mode in TEMPEST_MODES:
        walls = [r[0] for r in runs[mode]]
        wall = statistics.median(walls)
        logins = sorted({r[1] for r in runs[mode]})
        tests, ran = runs[mode][0][2], runs[mode][0][3]
        rows += [
            Row("tempest", f"{mode}: wall of the whole run, --jobs 1 (median of {reps}; range)",
                f"{wall:.1f} s ({min(walls):.1f}–{max(walls):.1f})", ratio=f"{wall / base:.2f}", goal="(info)"),
            Row("tempest", f"{mode}: logins (POST /v3/auth/tokens) per run", "/".join(map(str, logins)), goal="(info)"),
            Row("tempest", f"{mode}: steps per second ({tests} steps of the port; {ran} with logins and fixtures)",
                f"{tests / wall:.1f}/s", baseline=f"{ran / wall:.1f}/s", goal="(info)"),
        ]  # fmt: skip
    return rows


# --- target 7: a run's cost linear in its size (issue 12) ------------------------------------------


def target7(quick: bool) -> list[Row]:
    """10,000 files, a fresh token per login (the stub issues a new one every time, as Keystone does).

    Side by side in one run: the 50-file per-step cost in-process (as target 1), then processes:
    the runner on `small` and `large` files (JUnit and HTML written, both streamed from disk), and
    raw_tutorial.py doing the same `large` tutorials. Peak RSS is the runner's VmHWM at `large`.
    """
    small, large = (10, 100) if quick else (1000, 10000)
    reps = 3 if quick else 5
    with Stub() as stub, tempdir("bench-t7-") as tmp:
        env = child_env(stub)
        os.environ["STUB_URL"] = stub.url
        few = copies(tmp / "files-50", 50)
        runner_in_process(few)
        raw_in_process(stub.url, 50)
        runner_50, raw_50 = [], []
        for _ in range(reps):  # interleaved: the machine's load falls on both
            runner_50.append(runner_in_process(few))
            raw_50.append(raw_in_process(stub.url, 50))
        walls, rss, cpus = {}, {}, {}
        for count in (small, large):
            directory = copies(tmp / f"files-{count}", count)
            cmd = ["-m", "runner", "run", str(directory), "-q", "--junit", str(tmp / f"junit-{count}.xml"),
                   "--html", str(tmp / f"report-{count}.html")]  # fmt: skip
            before = stub.requests()
            child, figures = probed(cmd, env, tmp / "probe.json")
            sent = stub.requests() - before
            if sent != count * STEPS_PER_TUTORIAL:
                raise BenchError(f"the runner sent {sent} requests for {count} files")
            walls[count], rss[count], cpus[count] = child.wall, figures["VmHWM_kib"] / 1024, child.cpu
            junit_size = (tmp / f"junit-{count}.xml").stat().st_size
            html_size = (tmp / f"report-{count}.html").stat().st_size
            shutil.rmtree(directory)
        before = stub.requests()
        raw_child = run_child([PY, str(BENCH / "raw_tutorial.py"), "--copies", str(large)], env)
        raw_large, raw_cpu = raw_child.wall, raw_child.cpu
        if stub.requests() - before != large * STEPS_PER_TUTORIAL:
            raise BenchError("raw_tutorial.py did not send the same requests")
    r50, b50 = statistics.median(runner_50), statistics.median(raw_50)
    steps = large * STEPS_PER_TUTORIAL
    scale, per_step = walls[large] / walls[small], walls[large] / raw_large
    goal = large / small * 1.05
    return [
        Row("7", f"{large} files vs {small} files (JUnit + HTML written): wall", f"{walls[large]:.2f} s",
            f"{walls[small]:.2f} s", f"{scale:.2f}", f"<= {goal:.1f}", verdict(scale <= goal)),
        Row("7", f"per step, 50 files in-process vs raw requests (median of {reps})", ms(r50 / 400), ms(b50 / 400),
            f"{r50 / b50:.2f}", "<= 1.2", verdict(r50 / b50 <= 1.2)),
        Row("7", f"per step, {large} files ({steps} steps) as processes vs raw_tutorial.py --copies {large}",
            ms(walls[large] / steps), ms(raw_large / steps), f"{per_step:.2f}", "<= 1.2", verdict(per_step <= 1.2)),
        Row("7", f"CPU (user + sys) per step: {large} files vs raw; {large} vs {small} files",
            ms(cpus[large] / steps), ms(raw_cpu / steps),
            f"{cpus[large] / raw_cpu:.2f}; {cpus[large] / cpus[small]:.2f}", "(info)"),
        Row("7", f"{large} files: peak RSS (VmHWM)", f"{rss[large]:.1f} MiB", "", "", "<= 120 MiB",
            verdict(rss[large] <= 120)),
        Row("7", f"{small} files: peak RSS; {large} files: JUnit, HTML sizes", f"{rss[small]:.1f} MiB", "",
            f"{junit_size / MIB:.1f} MiB, {html_size / MIB:.1f} MiB", "(info)"),
    ]  # fmt: skip


# --- target 8: --jobs 8 with a run-level fixture (issue 12) -----------------------------------------


def target8(quick: bool) -> list[Row]:
    """--jobs 8 against 50 ms latency, the login a run-level fixture shared by every scenario."""
    count = 16 if quick else 200
    with tempdir("bench-t8-") as tmp, Stub(latency_ms=50) as stub:
        env = child_env(stub)
        directory = copies(tmp / "copies", count, BENCH / "tutorial-fixture.scenario.yaml")
        shutil.copy(BENCH / "stub-login.yaml", directory / "stub-login.yaml")
        upload = raw_tutorial.UploadFile(str(tmp))
        walls = {}
        for jobs in (1, 8):
            cmd = [PY, "-m", "runner", "run", str(directory), "--junit", str(tmp / "junit.xml"), "-q",
                   "--jobs", str(jobs), "--var", f"image_file={upload.path}", "--allow-path", str(tmp)]  # fmt: skip
            before = stub.requests()
            walls[jobs] = run_child(cmd, env).wall
            sent = stub.requests() - before
            if sent != count * 7 + 1:  # one login for the run
                raise BenchError(f"--jobs {jobs}: {sent} requests, expected {count * 7 + 1} (one login)")
    speedup = walls[1] / walls[8]
    ideal = count * 7 * 0.05 / (count / 8 * 7 * 0.05 + 0.05)  # latency alone, with the login first
    return [
        Row("8", f"{count} scenarios + 1 fixture login, 50 ms latency: --jobs 8 vs --jobs 1 (process wall)",
            f"{walls[8]:.2f} s", f"{walls[1]:.2f} s", f"{speedup:.2f} x faster", ">= 7 x", verdict(speedup >= 7)),
        Row("8", "what latency alone would allow (no start-up, no CPU)", f"{ideal:.2f} x", "", "", "(info)"),
    ]  # fmt: skip


# --- target load (issue 15): load mode vs hand-written Locust users; memory over a long load -----


def target_load(quick: bool) -> list[Row]:
    """bench/load_ratio.py in one child process (gevent-patched by Locust, never this one): the
    hand-written HttpUser and FastHttpUser making the tutorial's 8 calls, and `scenario-runner load`
    of bench/tutorial.scenario.yaml, one user each, measured in turn; the ratio is load mode's
    requests per second over the hand-written user's (wall), and per CPU second of the client."""
    duration, rounds = (3, 1) if quick else (8, 3)
    cmd = [PY, str(BENCH / "load_ratio.py"), "--users", "1", "--duration", str(duration), "--rounds", str(rounds)]
    with Stub() as stub:
        child = run_child(cmd, child_env(stub))
    figures = json.loads(child.output.strip().splitlines()[-1])
    runner, http, fast = figures["runner"], figures["http"], figures["fast"]
    rows = []
    for name, base in (("HttpUser", http), ("FastHttpUser", fast)):
        ratio, per_cpu = runner["rps"] / base["rps"], runner["per_cpu"] / base["per_cpu"]
        goal = ">= 0.7" if name == "HttpUser" else "(info)"
        rows += [
            Row("load", f"1 user, {duration} s x {rounds}: req/s, load mode vs a hand-written {name}",
                f"{runner['rps']:.0f}", f"{base['rps']:.0f}", f"{ratio:.2f}", goal,
                verdict(ratio >= 0.7) if name == "HttpUser" else ""),
            Row("load", f"requests per CPU second of the client, vs {name}", f"{runner['per_cpu']:.0f}",
                f"{base['per_cpu']:.0f}", f"{per_cpu:.2f}", "(info)", ""),
        ]  # fmt: skip
    return rows


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for {pid}")


def target_memory(quick: bool) -> list[Row]:
    """`scenario-runner load` of bench/tutorial.scenario.yaml (a fresh token per login, so a masker
    that kept every token would grow) for 10 minutes (60 s when quick), 4 users; RSS sampled every
    second. Growth: the last sample over the one taken once a tenth of the time has passed (imports,
    pools and Locust's statistics warmed up)."""
    duration = 60 if quick else 600
    cmd = [*scenario_runner_command(), "load", str(TUTORIAL), "--users", "4", "--duration", str(duration),
           "--junit", "", "--threshold", "error_rate <= 0%"]  # fmt: skip
    with Stub() as stub, tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=child_env(stub), cwd=REPO)
        samples: list[tuple[float, int]] = []
        started = time.monotonic()
        while proc.poll() is None:
            try:
                samples.append((time.monotonic() - started, rss_kib(proc.pid)))
            except (OSError, BenchError):
                break
            time.sleep(1)
        proc.wait()
        log.seek(0)
        output = log.read().decode(errors="replace")
    if proc.returncode != 0:
        raise BenchError(f"scenario-runner load exited {proc.returncode}:\n{output[-1500:]}")
    early = next(kib for at, kib in samples if at >= duration / 10)
    last = [kib for at, kib in samples if at <= duration][-1]
    growth = last / early - 1
    total = re.search(r"^(\d+) request\(s\)", output, re.M)
    return [
        Row("load", f"RSS of a {duration} s load, 4 users ({total.group(1) if total else '?'} requests)",
            f"{early / 1024:.1f} -> {last / 1024:.1f} MiB", "", f"{growth * 100:+.1f} %", "<= +10 %",
            verdict(growth <= 0.10)),
    ]  # fmt: skip


# --- profile -------------------------------------------------------------------------------------


def profile(limit: int = 30) -> None:
    with Stub() as stub, tempdir("bench-prof-") as tmp:
        os.environ["STUB_URL"] = stub.url
        directory = copies(tmp / "copies", 50)
        runner_in_process(directory)
        profiler = cProfile.Profile()
        profiler.enable()
        runner_in_process(directory)
        profiler.disable()
    for order in ("tottime", "cumulative"):
        print(f"\n--- top {limit} by {order} (50 copies, 400 steps) ---")
        pstats.Stats(profiler).sort_stats(order).print_stats(limit)


# --- report --------------------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    today = datetime.date.today().isoformat()
    return f"{today}; nproc {os.cpu_count()}; {cpu}; Python {platform.python_version()} ({PY})"


def table(rows: list[Row]) -> str:
    header = ["#", "measure", "runner", "baseline", "ratio", "target", "holds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.target, row.measure, row.runner, row.baseline, row.ratio, row.goal, row.holds]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --quick shrinks their workloads: verdicts are only indicative
SMALLER_WHEN_QUICK = {"3", "4", "5", "6", "7", "8", "load", "memory"}
TARGETS: dict[str, Callable[[bool], list[Row]]] = {
    "1": target1,
    "2": target2,
    "3": target3,
    "4": target4,
    "5": target5,
    "6": target6,
    "7": target7,
    "8": target8,
}
# Run only when named (--only tempest): they need the Keystone + Glance testbed and its openrc.
EXTRA_TARGETS: dict[str, Callable[[bool], list[Row]]] = {"tempest": target_tempest}
# Issue 15's load mode (needs Locust, the [load] extra): only when named, `--only load,memory`.
EXTRA_TARGETS.update({"load": target_load, "memory": target_memory})


def precompile() -> str:
    """Byte-compile the runner's modules, as installing a wheel does (pip writes every .pyc then).

    An editable install leaves it to the first import, which is skipped where PYTHONDONTWRITEBYTECODE
    is set (this machine's shell sets it): every process then compiles ~60 modules from source,
    ~110 ms and ~5 MiB more for one tutorial run (issue 5, targets 2 and 3, measured 2026-12-01:
    0.37 s and 43 MiB instead of 0.26 s and 38 MiB). The measured processes still run with the
    environment as it is: PYTHONDONTWRITEBYTECODE stops writing bytecode, not reading it.
    """
    import compileall

    ok = compileall.compile_dir(str(REPO / "runner"), quiet=2)
    return "runner/ byte-compiled" if ok else "runner/ NOT fully byte-compiled (see compileall)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads and fewer repetitions")
    parser.add_argument(
        "--only",
        default=",".join(TARGETS),
        help="comma-separated targets (default: all numbered ones); `tempest` (the Tempest port against the "
        "testbed) runs only when named",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    parser.add_argument("--profile", action="store_true", help="profile the 50-copies in-process run instead")
    parser.add_argument("--peers", action="store_true",
                        help="instead: gabbi, Tavern, Step CI and Newman side by side (bench/peers.py; installs them "
                             "into bench/.peers on first use)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.peers:
        import peers

        return peers.main((["--quick"] if args.quick else []) + (["--json", args.json] if args.json else []))
    os.chdir(REPO)  # the runner's file policy allows the directory a run starts in
    compiled = precompile()
    if args.profile:
        profile()
        return 0
    wanted = [t.strip() for t in args.only.split(",") if t.strip()]
    known = {**TARGETS, **EXTRA_TARGETS}
    unknown = [t for t in wanted if t not in known]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    print(f"machine: {machine()}; {compiled}", flush=True)
    started = time.perf_counter()
    rows: list[Row] = []
    for target in wanted:
        t0 = time.perf_counter()
        try:
            measured = known[target](args.quick)
            if args.quick and target in SMALLER_WHEN_QUICK:
                for row in measured:
                    row.holds += " (smaller workload)" if row.holds else ""
            rows.extend(measured)
        except BenchError as exc:
            rows.append(Row(target, "workload failed", str(exc).splitlines()[0], holds="ERROR"))
            print(exc, file=sys.stderr)
        print(f"target {target}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    print()
    print(table(rows))
    print(f"\n{'quick' if args.quick else 'full'} run: {elapsed:.1f} s")
    if args.json:
        report: dict[str, Any] = {"machine": machine(), "quick": args.quick, "seconds": elapsed}
        report["rows"] = [asdict(row) for row in rows]
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 1 if any(row.holds == "ERROR" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
