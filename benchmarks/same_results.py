"""Same results across two revisions of the code: run one sweep with each, same config and seed,
and compare the results files byte for byte without their timing and host fields.

A move of modules, a split or a rename must not change a single number. This runs the config
(default: the demo's, on the bundled candles) with the code of ``--before`` (a git revision,
checked out into a temporary worktree) and of the working tree, in the same virtual
environment, and prints ``identical`` or the first differing lines (exit 1).

    .venv/bin/python benchmarks/same_results.py --before <revision> [--config parameters/demo.yaml]
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def deterministic_bytes(run_dir: Path) -> bytes:
    """The results file without its timing and host fields, as canonical bytes (the same rule
    as the tests' ``tests.support.deterministic_bytes``)."""
    (path,) = run_dir.glob("sweep_results_*.json")
    results = json.loads(path.read_text())
    results.pop("run")
    for evaluation in results["evaluations"]:
        evaluation.pop("timing")
    return json.dumps(results, sort_keys=True, indent=1).encode()


def run(lib: Path, config: Path, seed: int, log_dir: Path, workers: int) -> tuple[Path, float]:
    """One sweep with the package at ``lib`` (first on the path), no report."""
    env = {**os.environ, "PYTHONPATH": str(lib)}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cryptosweep", "run", "--config", str(config), "--seed", str(seed),
         "--workers", str(workers), "--log-dir", str(log_dir), "--run-name", "same"],
        env=env, check=True, cwd=REPO, stdout=subprocess.DEVNULL,
    )
    return log_dir / "same", time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision of the code to compare with")
    parser.add_argument("--config", default=str(REPO / "parameters" / "demo.yaml"))
    parser.add_argument("--seed", type=int, default=123456)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        before_tree = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q",
                        str(before_tree), args.before], check=True)
        try:
            old, old_s = run(before_tree / "lib", Path(args.config), args.seed,
                             Path(tmp) / "old", args.workers)
            new, new_s = run(REPO / "lib", Path(args.config), args.seed, Path(tmp) / "new",
                             args.workers)
            a, b = deterministic_bytes(old), deterministic_bytes(new)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                            str(before_tree)], check=False)
    print(f"config {args.config}, seed {args.seed}, {args.workers} workers: "
          f"before {old_s:.1f} s, now {new_s:.1f} s, results {len(a):,} bytes")
    if a == b:
        print("identical")
        return 0
    diff = difflib.unified_diff(a.decode().splitlines(), b.decode().splitlines(), "before",
                                "now", lineterm="", n=1)
    print("\n".join(list(diff)[:40]))
    return 1


if __name__ == "__main__":
    sys.exit(main())
