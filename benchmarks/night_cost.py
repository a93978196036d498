"""What the verdict's evidence costs a night: the demo sweep (``cryptosweep run`` of
``parameters/demo.yaml``: search and end of the sweep, on 2 workers) with the code of a git
revision and with the working tree, alternated on the same machine in one run, so that both
see the same load.

    .venv/bin/python benchmarks/night_cost.py --before <revision> [--repeats 2]

Prints each run's wall-clock, the medians, their ratio and the machine's load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from machine import machine_line  # noqa: E402


def one_run(lib: Path, log_dir: Path, name: str, seed: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(lib)}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cryptosweep", "run", "--config",
         str(REPO / "parameters" / "demo.yaml"), "--seed", str(seed), "--workers", "2",
         "--log-dir", str(log_dir), "--run-name", name, "--no-progress"],
        env=env, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=123456)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"before": [], "now": []}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(tree),
                        args.before], check=True)
        try:
            for repeat in range(args.repeats):
                for label, lib in (("before", tree / "lib"), ("now", REPO / "lib")):
                    seconds = one_run(lib, Path(tmp) / label, f"{label}{repeat}", args.seed)
                    times[label].append(seconds)
                    print(f"{label:>6} #{repeat + 1}: {seconds:.1f} s", flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                           check=False)
    before, now = statistics.median(times["before"]), statistics.median(times["now"])
    print(f"{machine_line()}; load average {load:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end")
    print(f"demo sweep on 2 workers: before {before:.1f} s, now {now:.1f} s: "
          f"{now / before:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
