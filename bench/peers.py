"""Peers side by side (issue 12, point 4): the same 8-step tutorial in scenario-runner, gabbi, Tavern, Step CI
and Newman, against bench/stub.py (a fresh token per login), with a raw `requests` loop as the baseline.

    python bench/peers.py            # installs the peers on first use, then measures (a few minutes)
    python bench/peers.py --quick    # fewer repetitions, 10 copies, a 64 MiB upload (about 2 min)
    python bench/peers.py --smoke    # every measure once, 3 copies, 8 MiB: what tests/test_bench.py runs
    python bench/bench.py --peers    # the same, from the benchmark's entry point
    python bench/peers.py --no-install   # measure only the peers already installed (used by the tests)

The peers go into bench/.peers/ (git-ignored): a venv with gabbi and Tavern from PyPI, and
`npm install --prefix bench/.peers/node` for Newman and Step CI (node and npm must exist; as root with
apt-get they are installed when missing). Versions are pinned below.

Each tool runs the files in bench/peers/ (bench/tutorial.scenario.yaml for the runner): the same 8 calls,
sequential, the same checks (status; JSON fields as a subset; the token captured from X-Subject-Token and
the image id from the JSON; md5, sha512 and size of the upload). None of the peers can hash a file, so they
get the digests from here (MD5, SHA512, SIZE); the runner computes its own with md5()/sha512(). Every run
is checked for equal work: the stub's request counter must grow by 8 per tutorial.

Measures, each a process timed from spawn until reaped:
  start-up     the cheapest invocation (`--version`, or `--help` where there is none), median;
  one run      one tutorial, median;
  N copies     N tutorials in ONE invocation (N files, or N iterations for Newman, N tests for Step CI);
  per step     (N copies - one run) / ((N - 1) * 8): the marginal cost of a step, start-up excluded;
  upload RSS   peak RSS (GNU time's %M: the largest process of the tree) of the tutorial uploading a
               1 GiB file (--quick: 64 MiB) instead of 4 KiB.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PEERS = BENCH / "peers"  # the tutorial for each peer (committed)
HOME = BENCH / ".peers"  # where the peers are installed (git-ignored)
PY = sys.executable
STEPS = 8
MIB = 1024 * 1024
PYPI = ["gabbi==4.2.3", "tavern==3.7.1", "pytest==8.4.2"]  # Tavern 3.7.1 does not import under pytest 9
NPM = ["newman@6.2.2", "stepci@2.8.2"]
TIME = "/usr/bin/time"

sys.path.insert(0, str(BENCH))
from bench import BenchError, Stub, copies, make_file, scenario_runner_command  # noqa: E402

# --- installing ----------------------------------------------------------------------------------


def _quiet(cmd: Sequence[str], what: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(list(cmd), capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise BenchError(f"{what} failed ({' '.join(cmd)}):\n{(done.stdout + done.stderr)[-2000:]}")


def install(log: Callable[[str], None]) -> list[str]:
    """Install what is missing into bench/.peers; returns why a peer could not be installed, if one could not."""
    problems = []
    venv = HOME / "venv"
    marker = HOME / "venv.json"
    if not (marker.exists() and json.loads(marker.read_text()) == PYPI):
        log(f"installing {', '.join(PYPI)} into {venv.relative_to(REPO)} (PyPI)")
        _quiet([PY, "-m", "venv", "--clear", str(venv)], "python -m venv")
        _quiet([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *PYPI], "pip install")
        marker.write_text(json.dumps(PYPI))
    node_marker = HOME / "node.json"
    if not (node_marker.exists() and json.loads(node_marker.read_text()) == NPM):
        if shutil.which("npm") is None or shutil.which("node") is None:
            if shutil.which("apt-get") and os.geteuid() == 0:
                log("node/npm missing: apt-get install nodejs npm")
                _quiet(["apt-get", "update", "-qq"], "apt-get update")
                _quiet(["apt-get", "install", "-y", "-qq", "nodejs", "npm"], "apt-get install nodejs npm")
            else:
                problems.append("Newman and Step CI: node and npm are not installed (and apt-get is not usable here)")
        if shutil.which("npm") is not None:
            log(f"installing {', '.join(NPM)} into {(HOME / 'node').relative_to(REPO)} (npm)")
            _quiet(["npm", "install", "--prefix", str(HOME / "node"), "--no-audit", "--no-fund", *NPM], "npm install")
            node_marker.write_text(json.dumps(NPM))
    return problems


# --- the tools -----------------------------------------------------------------------------------


@dataclass
class Work:
    """What one measurement needs: the stub, a directory, the upload and its digests."""

    stub: Stub
    directory: Path
    upload: Path
    md5: str
    sha512: str
    size: int

    def env(self, **extra: str) -> dict[str, str]:
        # Without PYTHONDONTWRITEBYTECODE (set on this machine): an installed runner has its bytecode
        # compiled, as pip compiled the peers'; else every start compiles the runner's ~50 modules again.
        environ = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
        return {**environ, "STUB_URL": self.stub.url, "UPLOAD_FILE": str(self.upload), "MD5": self.md5,
                "SHA512": self.sha512, "SIZE": str(self.size), "STEPCI_DISABLE_ANALYTICS": "1", **extra}  # fmt: skip


@dataclass
class Tool:
    name: str
    version: Callable[[], str]
    startup: list[str]
    prepare: Callable[[Work, int], list[str]]  # a command running `copies` tutorials in one invocation
    note: str
    missing: str = ""  # why it cannot be measured here
    figures: dict[str, str] = field(default_factory=dict)


def _link_upload(work: Work, directory: Path) -> None:
    """Tools that read the upload relative to their test file get it next to it: a hard link, not a
    symlink (Newman sends the symlink's own size as Content-Length, then the whole file, and hangs)."""
    link = directory / "upload.bin"
    link.unlink(missing_ok=True)
    os.link(work.upload, link)


def _fresh(work: Work, name: str) -> Path:
    directory = work.directory / name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


def runner_tool() -> Tool:
    def prepare(work: Work, count: int) -> list[str]:
        directory = copies(_fresh(work, "runner"), count)
        return [*scenario_runner_command(), "run", str(directory), "--junit", "", "-q",
                "--var", f"image_file={work.upload}", "--allow-path", str(work.directory)]  # fmt: skip

    def version() -> str:
        return subprocess.run([*scenario_runner_command(), "--version"], capture_output=True, text=True).stdout.strip()

    return Tool("scenario-runner", version, [*scenario_runner_command(), "--version"], prepare,
                "bench/tutorial.scenario.yaml; -q; digests computed by the runner (md5(), sha512()); "
                "upload streamed")  # fmt: skip


def raw_tool() -> Tool:
    def prepare(work: Work, count: int) -> list[str]:
        if work.size > 4096:  # the large upload: the streaming PUT of raw_upload.py, hashing while it streams
            return [PY, str(BENCH / "raw_upload.py"), str(work.upload), "--hash"]
        return [PY, str(BENCH / "raw_tutorial.py"), "--copies", str(count)]

    import requests

    return Tool("raw requests", lambda: f"requests {requests.__version__}", [PY, "-c", "import requests"], prepare,
                "bench/raw_tutorial.py (one Session per tutorial); the upload row runs raw_upload.py --hash "
                "(token, create, streamed upload hashed on the way, check, delete)")  # fmt: skip


def _peer_bin(*parts: str) -> Path:
    return HOME.joinpath(*parts)


def gabbi_tool() -> Tool:
    binary = _peer_bin("venv", "bin", "gabbi-run")

    def prepare(work: Work, count: int) -> list[str]:
        directory = _fresh(work, "gabbi")
        _link_upload(work, directory)
        text = (PEERS / "gabbi.yaml").read_text()
        names = []
        for index in range(count):
            names.append(str(directory / f"t{index:04d}.yaml"))
            Path(names[-1]).write_text(text)
        return [str(binary), "-q", work.stub.url, "--", *names]

    return Tool("gabbi", lambda: _pip_version("gabbi"), [str(binary), "--help"], prepare,
                "bench/peers/gabbi.yaml, gabbi-run -q, one file per copy; no --version: start-up is --help; "
                "`data: <@file` reads the whole upload into memory (cannot stream)",
                "" if binary.exists() else "not installed")  # fmt: skip


def tavern_tool() -> Tool:
    python = _peer_bin("venv", "bin", "python")

    def prepare(work: Work, count: int) -> list[str]:
        directory = _fresh(work, "tavern")
        text = (PEERS / "test_tutorial.tavern.yaml").read_text()
        for index in range(count):
            (directory / f"test_t{index:04d}.tavern.yaml").write_text(text)
        return [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(directory),
                str(directory)]  # fmt: skip

    return Tool("Tavern", lambda: _pip_version("tavern"), [str(python), "-m", "pytest", "--version"], prepare,
                "bench/peers/test_tutorial.tavern.yaml under pytest -q, one file per copy, `strict: json:off` "
                "(subset); no --version of its own: start-up is `pytest --version` with the plugin installed; "
                "`file_body` streams the upload", "" if python.exists() else "not installed")  # fmt: skip


def stepci_tool() -> Tool:
    binary = _peer_bin("node", "node_modules", ".bin", "stepci")

    def prepare(work: Work, count: int) -> list[str]:
        import yaml

        directory = _fresh(work, "stepci")
        _link_upload(work, directory)
        workflow = yaml.safe_load((PEERS / "stepci.yml").read_text())
        tutorial = workflow["tests"]["tutorial"]
        workflow["tests"] = {f"tutorial{index:04d}": tutorial for index in range(count)}
        path = directory / "workflow.yml"
        path.write_text(yaml.safe_dump(workflow, sort_keys=False))
        return [str(binary), "run", str(path), "-e", f"base={work.stub.url}", "-e", f"md5={work.md5}",
                "-e", f"sha512={work.sha512}", "-e", f"size={work.size}"]  # fmt: skip

    return Tool("Step CI", lambda: _npm_version("stepci"), [str(binary), "--version"], prepare,
                "bench/peers/stepci.yml, one test per copy, `config.concurrency: 1` (sequential); "
                "`body: {file:}` reads the whole upload into memory (cannot stream); analytics off",
                "" if binary.exists() else "not installed")  # fmt: skip


def newman_tool() -> Tool:
    binary = _peer_bin("node", "node_modules", ".bin", "newman")

    def prepare(work: Work, count: int) -> list[str]:
        directory = _fresh(work, "newman")
        _link_upload(work, directory)
        return ["node", str(PEERS / "newman-run.js"), str(_peer_bin("node", "node_modules")),
                str(PEERS / "newman.postman_collection.json"), str(count), str(directory), f"base={work.stub.url}",
                f"md5={work.md5}", f"sha512={work.sha512}", f"size={work.size}"]  # fmt: skip

    return Tool("Newman", lambda: _npm_version("newman"), [str(binary), "--version"], prepare,
                "bench/peers/newman.postman_collection.json through newman.run() (bench/peers/newman-run.js: the "
                "`newman run` command lingers after about half of its runs here), no reporter (--silent), copies "
                "are iterations (-n N); a `file` body is streamed",
                "" if binary.exists() else "not installed")  # fmt: skip


def _pip_version(name: str) -> str:
    python = _peer_bin("venv", "bin", "python")
    code = f"import importlib.metadata as m; print(m.version({name!r}))"
    return f"{name} " + subprocess.run([str(python), "-c", code], capture_output=True, text=True).stdout.strip()


def _npm_version(name: str) -> str:
    package = _peer_bin("node", "node_modules", name, "package.json")
    return f"{name} {json.loads(package.read_text())['version']}" + f" (node {_node_version()})"


def _node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


# --- measuring -----------------------------------------------------------------------------------


LIMIT = 600.0  # seconds: a peer that hangs is an error in the table, not a benchmark that never ends


def _run(cmd: Sequence[str], env: dict[str, str], cwd: Path) -> float:
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        try:
            proc = subprocess.run(list(cmd), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                  stdin=subprocess.DEVNULL, timeout=LIMIT)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise BenchError(f"{Path(cmd[0]).name}: still running after {LIMIT:.0f} s (killed)") from None
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            log.seek(0)
            output = log.read().decode(errors="replace")
            raise BenchError(f"{Path(cmd[0]).name} exited {proc.returncode}:\n{output[-2500:]}")
    return wall


def timed(cmd: Sequence[str], env: dict[str, str], cwd: Path) -> float:
    return _run(cmd, env, cwd)


def peak_rss(cmd: Sequence[str], env: dict[str, str], cwd: Path) -> float:
    """MiB: GNU time's %M, the largest resident set of the tree (time forks from itself: nothing inherited)."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as out:
        _run([TIME, "-f", "%M", "-o", out.name, *cmd], env, cwd)
        return int(out.read().strip().splitlines()[-1]) / 1024


def checked(tool: Tool, work: Work, count: int, expected_requests: int, measure: Callable[..., float]) -> float:
    cmd = tool.prepare(work, count)
    before = work.stub.requests()
    figure = measure(cmd, work.env(), work.directory)
    sent = work.stub.requests() - before
    if sent != expected_requests:
        raise BenchError(f"{tool.name}: {sent} requests sent, expected {expected_requests}")
    return figure


def digests(path: Path) -> tuple[str, str, int]:
    md5, sha512 = hashlib.md5(), hashlib.sha512()
    with open(path, "rb") as fh:
        while block := fh.read(MIB):
            md5.update(block)
            sha512.update(block)
    return md5.hexdigest(), sha512.hexdigest(), path.stat().st_size


SIZES = {  # start-up runs, repetitions of the runs, copies, upload MiB
    "full": (10, 5, 50, 1024),
    "quick": (3, 1, 10, 64),
    "smoke": (1, 1, 3, 8),  # tests/test_bench.py: every measure taken once, no figure worth reading
}


def measure(tools: list[Tool], size: str, log: Callable[[str], None]) -> dict[str, str]:
    startup_runs, run_reps, count, upload_mib = SIZES[size]
    upload_size = upload_mib * MIB
    labels = {
        "start": f"start-up (median of {startup_runs})",
        "one": f"one tutorial run, 8 steps (median of {run_reps})",
        "many": f"{count} copies in one invocation (median of {run_reps})",
        "step": f"marginal cost per step: ({count} copies - 1) / {(count - 1) * STEPS} steps",
        "rss": f"{upload_size // MIB} MiB upload: peak RSS",
    }
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as name, Stub() as stub:
        root = Path(name)
        small, large = root / "small.bin", root / "large.bin"
        make_file(small, 4096)
        make_file(large, upload_size)
        works = {
            "small": Work(stub, root, small, *digests(small)),
            "large": Work(stub, root, large, *digests(large)),
        }
        live = [tool for tool in tools if not tool.missing]

        def attempt(tool: Tool, action: Callable[..., float], *args: object) -> float | None:
            """A peer that fails or hangs gets ERROR in its column; the others are still measured."""
            if tool not in live:
                return None
            try:
                return action(*args)
            except BenchError as exc:
                log(f"{tool.name}: {exc}")
                tool.missing = "ERROR: " + str(exc).splitlines()[0]
                live.remove(tool)
                return None

        def keep(into: list[float], value: float | None) -> None:
            if value is not None:
                into.append(value)

        tutorial = works["small"]
        starts: dict[str, list[float]] = {tool.name: [] for tool in live}
        ones: dict[str, list[float]] = {tool.name: [] for tool in live}
        manys: dict[str, list[float]] = {tool.name: [] for tool in live}
        for tool in list(live):
            tool.figures["version"] = tool.version()
            if size != "smoke":
                attempt(tool, timed, tool.startup, tutorial.env(), root)  # warm the page cache
                attempt(tool, checked, tool, tutorial, 1, STEPS, timed)  # warm-up
        # Interleaved rounds, so that the load of the (shared) machine falls on every tool alike.
        for _ in range(startup_runs):
            for tool in list(live):
                keep(starts[tool.name], attempt(tool, timed, tool.startup, tutorial.env(), root))
        for rep in range(run_reps):
            for tool in list(live):
                log(f"round {rep + 1}/{run_reps}: {tool.name}")
                keep(ones[tool.name], attempt(tool, checked, tool, tutorial, 1, STEPS, timed))
                keep(manys[tool.name], attempt(tool, checked, tool, tutorial, count, STEPS * count, timed))
        for tool in list(live):
            log(f"upload: {tool.name}")
            upload_requests = 5 if tool.name == "raw requests" else STEPS
            rss = attempt(tool, checked, tool, works["large"], 1, upload_requests, peak_rss)
            if rss is None:
                continue
            one, many = statistics.median(ones[tool.name]), statistics.median(manys[tool.name])
            tool.figures.update(
                start=f"{statistics.median(starts[tool.name]) * 1000:.0f} ms",
                one=f"{one * 1000:.0f} ms",
                many=f"{many:.2f} s",
                step=f"{(many - one) / ((count - 1) * STEPS) * 1000:.2f} ms",
                rss=f"{rss:.0f} MiB",
            )
    return labels


def table(tools: list[Tool], labels: dict[str, str]) -> str:
    lines = ["| measure | " + " | ".join(tool.name for tool in tools) + " |", "|---|" + "---|" * len(tools)]
    rows = {"version": "version", **labels}
    for key, label in rows.items():
        cells = [tool.missing or tool.figures.get(key, "") for tool in tools]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{now}; nproc {os.cpu_count()}; load average {load} (at the end); Python {sys.version.split()[0]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, 10 copies, a 64 MiB upload")
    parser.add_argument("--smoke", action="store_true", help="every measure once, tiny workloads (for the tests)")
    parser.add_argument("--no-install", action="store_true", help="measure only the peers already installed")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    if not os.path.exists(TIME):
        print(f"{TIME} (GNU time) is needed for the peak RSS of a process tree: apt-get install time", file=sys.stderr)
        return 2
    os.chdir(REPO)
    problems = [] if args.no_install else install(log)
    tools = [runner_tool(), raw_tool(), gabbi_tool(), tavern_tool(), stepci_tool(), newman_tool()]
    started = time.perf_counter()
    size = "smoke" if args.smoke else "quick" if args.quick else "full"
    labels = measure(tools, size, log)
    print(f"machine: {machine()}")
    print()
    print(table(tools, labels))
    print()
    for tool in tools:
        print(f"- **{tool.name}**: {tool.note}")
    for problem in problems:
        print(f"- not measured: {problem}")
    print(f"\n{size} run: {time.perf_counter() - started:.1f} s")
    failed = [tool.name for tool in tools if tool.missing.startswith("ERROR")]
    if args.json:
        report = {"machine": machine(), "size": size, "labels": labels,
                  "tools": {tool.name: {"missing": tool.missing, **tool.figures} for tool in tools}}  # fmt: skip
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
