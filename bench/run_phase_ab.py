"""Target 1's run phase, two trees alternating: each round starts a fresh process per tree (A, B,
then B, A), which times `runner_in_process`, `validate_in_process` and `raw_in_process` of bench.py
(50 tutorial copies, one stub) several times and reports medians of wall and CPU
(`time.process_time()`). The run phase is the run minus loading (`validate`), against raw requests.

    python bench/run_phase_ab.py /work/main /work/wt/mybranch --rounds 8 --runs 7

Each tree is put first on PYTHONPATH, so it must hold the `runner` package (a checkout or worktree).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def child(runs: int) -> None:
    sys.path.insert(0, str(BENCH))
    import bench
    import runner

    os.chdir(bench.REPO)

    def timed(function, *args):  # type: ignore[no-untyped-def]
        cpu = time.process_time()
        wall = function(*args)
        return wall, time.process_time() - cpu

    with bench.Stub() as stub, bench.tempdir("run-phase-") as tmp:
        os.environ["STUB_URL"] = stub.url
        directory = bench.copies(tmp / "copies", 50)
        bench.runner_in_process(directory)  # warm-up: imports, first connections
        bench.raw_in_process(stub.url, 50)
        bench.validate_in_process(directory)
        figures: dict[str, list[float]] = {k: [] for k in ("run", "run_cpu", "raw", "raw_cpu", "load", "load_cpu")}
        for _ in range(runs):
            for name, function, args in (
                ("load", bench.validate_in_process, (directory,)),
                ("run", bench.runner_in_process, (directory,)),
                ("raw", bench.raw_in_process, (stub.url, 50)),
            ):
                wall, cpu = timed(function, *args)
                figures[name].append(wall)
                figures[f"{name}_cpu"].append(cpu)
    medians: dict[str, float | str] = {k: statistics.median(v) for k, v in figures.items()}
    medians["runner"] = runner.__file__
    print(json.dumps(medians))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs=2, help="two trees holding the runner package (A and B)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--runs", type=int, default=7, help="timed runs per process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.runs)
        return
    found: dict[str, list[dict[str, float]]] = {tree: [] for tree in args.trees}
    for index in range(args.rounds):
        for tree in args.trees if index % 2 == 0 else args.trees[::-1]:
            env = {**os.environ, "PYTHONPATH": tree}
            cmd = [sys.executable, __file__, *args.trees, "--child", "--runs", str(args.runs)]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.exit(f"{tree}: {done.stderr[-2000:]}")
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            if not figures["runner"].startswith(str(Path(tree).resolve())):
                sys.exit(f"{tree}: the runner came from {figures['runner']}")
            found[tree].append(figures)
            phase = (figures["run"] - figures["load"]) / figures["raw"]
            run, raw = figures["run"] * 1000, figures["raw"] * 1000
            print(f"{tree}: run {run:.1f} ms, raw {raw:.1f} ms, run phase {phase:.3f}")
    print(f"load average: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    for tree, rounds in found.items():

        def median(key: str, of: list[dict[str, float]] = rounds) -> float:
            return statistics.median(r[key] for r in of)

        wall = [(r["run"] - r["load"]) / r["raw"] for r in rounds]
        cpu = [(r["run_cpu"] - r["load_cpu"]) / r["raw_cpu"] for r in rounds]
        total = statistics.median([r["run"] / r["raw"] for r in rounds])
        print(
            f"{tree}: run phase vs raw {statistics.median(wall):.3f} ({min(wall):.3f}-{max(wall):.3f}), "
            f"CPU {statistics.median(cpu):.3f}; total vs raw {total:.3f}; run {median('run') * 1000:.1f} ms, "
            f"loading {median('load') * 1000:.1f} ms, raw {median('raw') * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
