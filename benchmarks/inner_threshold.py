"""The entry threshold searched inside each trial (``objective.threshold_search``) against the
strategy sampling it, at equal outer trials, on markets with a planted edge.

Markets: ``gate_calibration.py``'s planted markets (the bundled real BTC/USDT hourly candles
with each bar's direction flipped at random, then ``--edge`` added to the 14:00 UTC bar's log
return every day), one per ``--markets`` seed. Each market is swept twice with the same master
seed and ``gate_calibration.py``'s night config (random search, ``--trials`` LightGBM
configurations, 3 purged folds, the top 3 re-scored with 3 seeds, 20 % holdout): once as it is
(the strategy samples the threshold in [0.5, 0.6]) and once with ``threshold_search: --k``
(each trial backtests its predictions at k thresholds of the same range). Each sweep has its
own ledger (its run folder), so N counts that sweep's trials only.

Per sweep: the best validation score of the search, the winner's (best mean re-score) search
score, the ledger's N (and how many of N the inner loop added), the N the gate's DSR deflated
by (``deployment.trial_count``: the effective number by default, in which every inner
evaluation counts as one more independent trial), the gate's DSR, the
winner's holdout Sharpe ratio, the gate's decision and the wall time.

    .venv/bin/python benchmarks/inner_threshold.py [--markets 3] [--trials 10] [--k 5]

Writes ``benchmarks/results/inner_threshold.json`` and prints a table for RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cryptosweep import load_ohlcv, run_sweep  # noqa: E402
from cryptosweep.core.config_files import load_config  # noqa: E402
from cryptosweep.judging.selection import gate_dsr  # noqa: E402
from cryptosweep.trading.data import sample_data_path  # noqa: E402
from gate_calibration import night_config, null_market, plant_edge, write_csv  # noqa: E402
from machine import machine  # noqa: E402


def sweep(path: Path, seed: int, trials: int, k: int | None, workdir: Path, name: str
          ) -> dict[str, Any]:
    raw = night_config(path, folds=3)  # as recorded in RESULTS.md
    raw["random"]["n_trials"] = trials
    if k is not None:
        raw["objective"]["threshold_search"] = k
    config = load_config(raw=raw)
    started = time.perf_counter()
    results = run_sweep(config=config, seed=seed, log_dir=workdir, run_name=name,
                        show_progress=False).results
    seconds = time.perf_counter() - started
    done = [e for e in results["evaluations"] if e["status"] == "done"]
    winner = results["top_k"][0]
    stats = results.get("statistics") or {}
    ledger = stats.get("ledger") or {}
    judged = gate_dsr(results)  # the DSR block the gate judged, with the N it deflated by
    return {
        "inner": k, "evaluations": len(done),
        "best_validation": max(e["score"] for e in done),
        "winner_validation": winner["score"],
        "winner_threshold": winner["params"]["trading"]["threshold"],
        "n_trials": ledger.get("n_trials"), "n_inner": ledger.get("n_inner", 0),
        "dsr_basis": judged["basis"], "n_judged": judged.get("n_trials"),
        "dsr": judged.get("dsr"),
        "holdout_sharpe": (winner.get("holdout") or {}).get("holdout_sharpe"),
        "decision": results["deployment"]["decision"], "seconds": seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=3)
    parser.add_argument("--trials", type=int, default=10, help="outer trials per sweep")
    parser.add_argument("--k", type=int, default=5, help="thresholds per trial (inner loop)")
    parser.add_argument("--edge", type=float, default=0.01)
    parser.add_argument("--hour", type=int, default=14)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "inner_threshold.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    candles = load_ohlcv(sample_data_path())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.markets):
            market = plant_edge(null_market(candles, seed=1000 + index), args.hour, args.edge)
            path = Path(tmp) / f"planted_{index}.csv"
            write_csv(market, path)
            for k in (None, args.k):
                row = sweep(path, index + 1, args.trials, k, Path(tmp) / "runs",
                            f"m{index}_{'inner' if k else 'outer'}")
                rows.append({"market": index, **row})
                print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "args": {
        key: (str(value) if isinstance(value, Path) else value)
        for key, value in vars(args).items()}, "rows": rows}, indent=1))

    def cell(value: Any, spec: str = ".2f") -> str:
        return "–" if value is None else format(value, spec)

    print("\n| market | threshold | evaluations | best validation Sharpe | winner's (threshold) "
          "| ledger N (inner) | the gate's N | DSR | winner's holdout Sharpe | gate | wall s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        how = f"inner, k = {row['inner']}" if row["inner"] else "sampled"
        print(f"| {row['market']} | {how} | {row['evaluations']} | "
              f"{cell(row['best_validation'])} | {cell(row['winner_validation'])} "
              f"({row['winner_threshold']:.3f}) | {row['n_trials']} ({row['n_inner']}) | "
              f"{row['n_judged']} ({row['dsr_basis']}) | "
              f"{cell(row['dsr'], '.3f')} | {cell(row['holdout_sharpe'])} | {row['decision']} | "
              f"{row['seconds']:.0f} |")
    for k in (None, args.k):
        mine = [r for r in rows if r["inner"] == k]
        print(f"median ({'inner' if k else 'sampled'}): best validation "
              f"{np.median([r['best_validation'] for r in mine]):.2f}, holdout "
              f"{np.median([r['holdout_sharpe'] for r in mine]):.2f}, wall "
              f"{np.median([r['seconds'] for r in mine]):.0f} s, approvals "
              f"{sum(r['decision'] == 'approved' for r in mine)}/{len(mine)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
