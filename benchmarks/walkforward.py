"""Walk-forward optimisation: wall time with 1 and 2 workers, and in-sample vs out-of-sample.

The windows of a walk-forward are independent sweeps, run side by side on one executor
(``cryptosweep.walkforward.driver``), so with W workers the walk-forward should take about 1/W
of the time (target: at least 1.8x faster with 2 workers than with 1). Measured on the bundled
BTC/USDT candles with ``parameters/walkforward_demo.yaml`` (4 rolling windows, a 6-trial random
search per window, LightGBM), ``--repeats`` times per worker count, alternately; the machine
may be shared, so the median counts and the load average is recorded. Every run's combined
results must be byte-identical (less the ``run`` block); the benchmark stops otherwise. It then
prints the per-window table of in-sample (the winner's validation score) vs out-of-sample
score.

    .venv/bin/python benchmarks/walkforward.py [--config PATH] [--repeats 1] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptosweep.core.formatting import signed
from cryptosweep.core.paths import PARAMETERS
from cryptosweep.walkforward.driver import run_walkforward

# benchmarks/ is on sys.path (the script's folder)
from machine import machine_line


def load_average() -> float:
    with open("/proc/loadavg", encoding="utf-8") as handle:
        return float(handle.read().split()[0])


def comparable(results: dict) -> str:
    out = dict(results)
    out.pop("run")
    return json.dumps(out, sort_keys=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(PARAMETERS / "walkforward_demo.yaml"))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--markdown", help="append the result to this file")
    args = parser.parse_args()
    logging.getLogger("cryptosweep").setLevel(logging.WARNING)
    times: dict[int, list[float]] = {1: [], 2: []}
    loads: list[float] = []
    reference = None
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for workers in (1, 2):
                loads.append(load_average())
                started = time.perf_counter()
                result = run_walkforward(args.config, log_dir=Path(tmp),
                                         run_name=f"w{workers}_{repeat}", workers=workers)
                times[workers].append(time.perf_counter() - started)
                key = comparable(result.results)
                if reference is None:
                    reference = (key, result.results)
                elif key != reference[0]:
                    print("results differ between runs: stopping", file=sys.stderr)
                    return 1
                print(f"workers {workers}: {times[workers][-1]:.1f} s", file=sys.stderr)
    results = reference[1]
    one, two = statistics.median(times[1]), statistics.median(times[2])
    metric = results["metric"]
    lines = [
        "## Walk-forward: windows side by side (`benchmarks/walkforward.py`)",
        "",
        f"{machine_line()} Load average at the starts: "
        f"{', '.join(f'{x:.1f}' for x in loads)}.",
        f"Config: `{Path(args.config).name}`, {len(results['windows'])} windows, "
        f"{args.repeats} repeat(s), median wall time of the whole walk-forward (sweeps, the "
        "winners' segment trades, combined results; no HTML report).",
        "",
        "| workers | wall time (s) | speed-up |",
        "| ---: | ---: | ---: |",
        f"| 1 | {one:.1f} | 1.00x |",
        f"| 2 | {two:.1f} | {one / two:.2f}x |",
        "",
        "Combined results byte-identical across all runs (less the `run` block): yes.",
        "",
        f"In sample vs out of sample ({metric}; IS: the winner's validation score in its "
        "window, OOS: traded untouched on the next segment):",
        "",
        "| window | out-of-sample | IS | OOS | buy-and-hold | OOS trades | WFE |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results["windows"]:
        lines.append(f"| {row['window']} | {row['oos_first_bar'][:10]} .. "
                     f"{row['oos_last_bar'][:10]} | {signed(row['is_score'])} | "
                     f"{signed(row['oos_score'])} | {signed(row['buy_and_hold_score'])} | "
                     f"{row['oos_trades']} | {signed(row['efficiency'])} |")
    lines += ["", f"Verdict: {results['verdict']['label']}: {results['verdict']['reason']}",
              f"({results['verdict']['headline']})", ""]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as handle:
            handle.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
