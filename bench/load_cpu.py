"""CPU time of loading one scenario file (parse, check, compile), two source trees compared (issue 12).

Each measurement is a fresh process that loads N *distinct* copies of the tutorial (each copy's name
and password differ, so no cache keyed by a file's text or path could flatter the figure), by
absolute path in a subdirectory as bench.py's target 1 does, once cold (imports done, template
cache empty), then REPS times warm, with `time.process_time()` and the collector off while timing.
Pass two trees to compare them interleaved, A B A B ...:

    python bench/load_cpu.py /work/main /work/wt/load3 --rounds 8
    python bench/load_cpu.py .              # this tree only

It prints, per process, the cold pass and the median warm pass in microseconds per file, then the
medians over all rounds and their ratio (B / A).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TUTORIAL = Path(__file__).resolve().parent / "tutorial.scenario.yaml"


def make_copies(directory: Path, count: int) -> None:
    text = TUTORIAL.read_text("utf-8")
    for index in range(count):
        distinct = text.replace("name: Bench tutorial", f"name: Bench tutorial {index}")
        distinct = distinct.replace("bench-password", f"bench-password-{index}")
        (directory / f"t{index:05d}.scenario.yaml").write_text(distinct, "utf-8")


def measure(directory: Path, reps: int) -> tuple[float, float]:
    """(cold, median warm) CPU seconds per file, in this process (runner imported from sys.path)."""
    from runner.files import FilePolicy
    from runner.loader import Loader

    os.chdir(directory.parent)
    files = sorted(directory.glob("*.scenario.yaml"))  # absolute, in a subdirectory: as bench.py's run

    def once() -> float:
        loader = Loader(FilePolicy([]))
        gc.disable()
        started = time.process_time()
        for path in files:
            loader.load(path)
        spent = time.process_time() - started
        gc.enable()
        gc.collect()
        return spent / len(files)

    cold = once()
    return cold, statistics.median(once() for _ in range(reps))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs="+", help="source trees (PYTHONPATH) to measure, e.g. /work/main .")
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--reps", type=int, default=9, help="warm passes per process")
    parser.add_argument("--rounds", type=int, default=6, help="fresh processes per tree")
    parser.add_argument("--child", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        cold, warm = measure(Path(args.child), args.reps)
        print(f"{cold * 1e6:.1f} {warm * 1e6:.1f}")
        return 0
    trees = [str(Path(tree).resolve()) for tree in args.trees]
    warm: dict[str, list[float]] = {tree: [] for tree in trees}
    with tempfile.TemporaryDirectory(prefix="load-cpu-") as tmp:
        copies = Path(tmp) / "copies"
        copies.mkdir()
        make_copies(copies, args.files)
        print(f"load: {os.getloadavg()[0]:.2f}", flush=True)
        for _ in range(args.rounds):
            for tree in trees:
                env = {**os.environ, "PYTHONPATH": tree}
                command = [sys.executable, __file__, tree, "--child", str(copies), "--reps", str(args.reps)]
                out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout.split()
                warm[tree].append(float(out[1]))
                print(f"{tree}: cold {out[0]} us, warm {out[1]} us per file", flush=True)
        print(f"load: {os.getloadavg()[0]:.2f}")
    medians = {tree: statistics.median(values) for tree, values in warm.items()}
    for tree, value in medians.items():
        print(f"median warm, {tree}: {value:.1f} us per file")
    if len(trees) == 2:
        print(f"ratio: {medians[trees[1]] / medians[trees[0]]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
