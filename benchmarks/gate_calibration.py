"""Is the deployment gate calibrated? False approvals on markets with no edge, power on markets
with a planted one, for the gate before the verdict issue ("today's") and the new one, from the
same nights.

Markets, built from the bundled real BTC/USDT hourly candles (never synthetic prices):

* **Null** (no edge): every bar's moves relative to the previous close (open, high, low and
  close, in log terms) have their sign flipped with probability 1/2, independently per bar
  (seeded), high and low swapping places when flipped. Bar sizes, volatility clustering,
  volume and the calendar are the real ones; nothing predicts a bar's direction, not even the
  hour of the day.
* **Planted** (a learnable edge): a null market whose bar at ``--hour`` UTC (14:00) gets
  each of ``--edges`` (default +0.5 %, +0.75 % and +1.0 %) added to its close-to-close log return
  (the open of the bar and everything after it shifted with it, high and low too). The entry
  model sees the hour of the day among its features, so entering at that bar's open and
  leaving at its close is learnable. A strategy that does exactly that earns the edge minus a
  round trip's costs (24 bps here) once a day: the script prints that oracle's net annualised
  Sharpe ratio on the real bars, the "planted Sharpe" the power refers to.

One night = one sweep (random search over LightGBM and the trading parameters, the gate's
defaults) on one market with its own seed; ``--jobs`` nights run at once, in processes.
``--free`` takes the costs away (no fees, no slippage): on null markets the searched strategies
then lose nothing to costs, so the selection statistics, not the costs, must stop luck
(``--free --edges`` with no edge runs null nights only). Today's gate is recomputed from the
same night's results with the old rules: the search's best by its own score, DSR with N = the
full-budget configurations, PBO, holdout score >= 0 and holdout trades >= 20, reproducible.

    .venv/bin/python benchmarks/gate_calibration.py --nights 40 --jobs 2 [--edges 0.005 0.0075 0.01]

Writes ``benchmarks/results/gate_calibration.json`` and prints a table for RESULTS.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cryptosweep import load_ohlcv, run_sweep  # noqa: E402
from cryptosweep.core.config_files import load_config  # noqa: E402
from cryptosweep.core.settings import ObjectiveSettings  # noqa: E402
from cryptosweep.judging.caveats import fold_scores  # noqa: E402
from cryptosweep.judging.deployment import decide  # noqa: E402
from cryptosweep.judging.overfitting import (  # noqa: E402
    deflated_sharpe_ratio,
    expected_max_sharpe_ratio,
)
from cryptosweep.judging.selection import gate_dsr  # noqa: E402
from cryptosweep.trading.data import sample_data_path  # noqa: E402
from machine import machine  # noqa: E402

COSTS_BPS = 10.0 + 2.0  # fees + slippage per side, as the demo
#: The purged walk-forward folds of a night: the objective's default (`objective.folds`).
DEFAULT_FOLDS = ObjectiveSettings().folds


def null_market(candles: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The real bars with each bar's direction flipped at random (see the module docstring)."""
    rng = np.random.default_rng(seed)
    close = candles["close"].to_numpy()
    previous = np.concatenate([[candles["open"].iloc[0]], close[:-1]])
    moves = {c: np.log(candles[c].to_numpy() / previous) for c in ("open", "high", "low",
                                                                    "close")}
    sign = np.where(rng.random(len(candles)) < 0.5, -1.0, 1.0)
    new_close = np.empty(len(candles))
    level = float(candles["open"].iloc[0])
    out = {c: np.empty(len(candles)) for c in ("open", "high", "low", "close")}
    for i in range(len(candles)):
        s = sign[i]
        out["open"][i] = level * math.exp(s * moves["open"][i])
        high, low = moves["high"][i], moves["low"][i]
        out["high"][i] = level * math.exp(s * high if s > 0 else -low)
        out["low"][i] = level * math.exp(s * low if s > 0 else -high)
        out["close"][i] = level * math.exp(s * moves["close"][i])
        level = out["close"][i]
        new_close[i] = level
    frame = pd.DataFrame(out, index=candles.index)
    frame["volume"] = candles["volume"].to_numpy()
    return frame


def plant_edge(market: pd.DataFrame, hour: int, edge: float) -> pd.DataFrame:
    """``edge`` added to the close-to-close log return of the bar at ``hour`` UTC of each day:
    that bar's open stays, its close, high and everything after it move up by ``exp(edge)``."""
    factor = np.where(market.index.hour == hour, math.exp(edge), 1.0)
    cumulative = np.cumprod(factor)
    before = np.concatenate([[1.0], cumulative[:-1]])
    planted = market.copy()
    planted["open"] = market["open"] * before
    for column in ("high", "close"):
        planted[column] = market[column] * cumulative
    planted["low"] = np.minimum(market["low"] * before, planted["close"])
    planted["high"] = np.maximum(planted["high"], planted[["open", "close"]].max(axis=1))
    return planted


def oracle_sharpe(market: pd.DataFrame, hour: int) -> float:
    """Net annualised Sharpe ratio of entering at the open of the planted bar and leaving at
    its close, every day, after a round trip's costs."""
    at = market.index.hour == hour
    daily = np.log(market["close"][at].to_numpy() / market["open"][at].to_numpy())
    daily = daily - 2 * COSTS_BPS / 1e4
    return float(daily.mean() / daily.std(ddof=1) * math.sqrt(365.0))


def write_csv(market: pd.DataFrame, path: Path) -> None:
    frame = market.reset_index()
    frame.columns = ["timestamp", "open", "high", "low", "close", "volume"]
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    frame.to_csv(path, index=False, float_format="%.10g")


def night_config(path: Path, free: bool = False, folds: int = DEFAULT_FOLDS) -> dict[str, Any]:
    return {
        "name": "calibration", "sweep_type": "random", "random": {"n_trials": 10},
        "parameter_ranges": {
            "lightgbm": {"num_leaves": {"type": "int", "low": 4, "high": 16},
                         "learning_rate": {"type": "float", "low": 0.05, "high": 0.2,
                                           "log": True},
                         "min_data_in_leaf": {"type": "int", "low": 20, "high": 100}},
            "trading": {"threshold": {"type": "float", "low": 0.5, "high": 0.6},
                        "holding_period": {"type": "int", "low": 1, "high": 4},
                        "stop_loss": {"type": "float", "low": 0.01, "high": 0.05},
                        "take_profit": {"type": "float", "low": 0.01, "high": 0.05}},
        },
        "data": {"path": str(path), "format": "generic", "holdout_fraction": 0.2},
        "objective": {"models": ["lightgbm"], "folds": folds, "rounds_per_unit": 5,
                      "fees_bps": 0 if free else 10, "slippage_bps": 0 if free else 2},
        "execution": {"workers": 0},
        "reporting": {"top_k": 3},
        "deployment": {"neighbourhood": False},
    }


def old_gate(results: dict[str, Any]) -> bool:
    """Today's gate (before the verdict issue) on the same night: the search's best."""
    search_best = min(results["top_k"], key=lambda item: item.get("search_rank", item["rank"]))
    holdout = search_best.get("holdout") or {}
    dsr = ((results.get("overfitting") or {}).get("dsr") or {}).get("dsr")
    pbo = ((results.get("overfitting") or {}).get("pbo") or {}).get("pbo")
    repro = all(c["status"] == "PASS" for c in results.get("reproducibility_check") or [])
    return bool(repro and dsr is not None and dsr >= 0.95 and pbo is not None and pbo <= 0.5
                and holdout.get("holdout_sharpe", -1) >= 0
                and holdout.get("holdout_trades", 0) >= 20)


def judged_with(results: dict[str, Any], count: str, variance: str
                ) -> tuple[bool, float | None, float | None]:
    """Would the gate approve this night with ``deployment.trial_count: count`` and
    ``deployment.dsr_variance: variance``, the DSR it judges and that DSR's annualised SR0?
    The selection DSRs recomputed from what the results record (the winner's Sharpe ratio,
    bars, skewness and kurtosis; the ledger's variance)."""
    judged = copy.deepcopy(results)
    selection = judged["statistics"]["selection"]
    selection["trial_count"] = count
    ledger_variance = judged["statistics"]["ledger"]["sharpe_variance"]
    for name in ("dsr", "dsr_effective"):
        block = selection.get(name) or {}
        if block.get("dsr") is None or block["n_trials"] < 2:
            continue  # PSR(0) with one trial: no variance
        v = 1.0 / (block["n_obs"] - 1) if variance == "no_skill" else ledger_variance
        block["dsr"] = deflated_sharpe_ratio(block["sr"], v, block["n_trials"],
                                             block["n_obs"], block["skew"], block["kurtosis"])
        block["sr0"] = expected_max_sharpe_ratio(v, block["n_trials"])
        block["sr0_annualised"] = block["sr0"] * math.sqrt(
            judged["data"]["periods_per_year"])
    decision = decide(judged)
    judged_block = gate_dsr(judged)
    return (decision["decision"] == "approved", judged_block.get("dsr"),
            judged_block.get("sr0_annualised"))


RULES = [f"{count}/{variance}" for count in ("ledger", "effective")
         for variance in ("trials", "no_skill")]


def night(kind: str, index: int, candles: pd.DataFrame, args: argparse.Namespace,
          workdir: Path, edge: float = 0.0) -> dict[str, Any]:
    market = null_market(candles, seed=1000 * (kind == "planted") + index)
    if kind == "planted":
        market = plant_edge(market, args.hour, edge)
    path = workdir / f"{kind}_{edge:.4f}_{index}.csv"
    write_csv(market, path)
    config = load_config(raw=night_config(path, free=args.free, folds=args.folds))
    started = time.perf_counter()
    result = run_sweep(config=config, seed=index + 1, log_dir=workdir / "runs",
                       run_name=f"{kind}_{edge:.4f}_{index}", show_progress=False)
    results = result.results
    # The same night judged with each trial count and each variance.
    by_rule = {rule: judged_with(results, *rule.split("/")) for rule in RULES}
    new = results["deployment"]["decision"] == "approved"
    # The recomputation agrees with the sweep's own judgement under the rule it ran with.
    deployment = results["config"]["deployment"]
    own = by_rule[f"{deployment['trial_count']}/{deployment['dsr_variance']}"]
    assert own[0] == new and own[1] == gate_dsr(results)["dsr"], (kind, edge, index)
    failed = [c["name"] for c in results["deployment"]["criteria"] if not c["passed"]]
    values = {c["name"]: c["value"] for c in results["deployment"]["criteria"]}
    selection = (results.get("statistics") or {}).get("selection") or {}
    holdout = (results.get("best") or {}).get("holdout") or {}
    metric = results["config"]["objective"]["metric"]
    return {"kind": kind, "edge": edge, "index": index, "new_gate": new,
            "gates": {rule: approved for rule, (approved, _, _) in by_rule.items()},
            "gate_dsrs": {rule: dsr for rule, (_, dsr, _) in by_rule.items()},
            "gate_sr0s_annualised": {rule: sr0 for rule, (_, _, sr0) in by_rule.items()},
            "old_gate": old_gate(results),
            "holdout_sharpe": holdout.get("holdout_sharpe"),
            # The winner's score on each purged walk-forward fold, oldest first: where the
            # validation path (what the DSR judges) gains or loses against the holdout.
            "winner_fold_scores": fold_scores((results.get("best") or {}).get("metrics"),
                                              metric),
            "n_unclustered": (selection.get("effective_trials") or {}).get("n_unclustered", 0),
            "n_trials_effective": (selection.get("dsr_effective") or {}).get("n_trials"),
            "failed": failed, "values": values,
            "n_trials": (selection.get("dsr") or {}).get("n_trials"),
            "dsr_effective": (selection.get("dsr_effective") or {}).get("dsr"),
            "n_effective": (selection.get("effective_trials") or {}).get("n_effective"),
            "sr_annualised": (selection.get("dsr") or {}).get("sr_annualised"),
            "sr0_annualised": (selection.get("dsr") or {}).get("sr0_annualised"),
            "sr0_effective_annualised": (selection.get("dsr_effective") or {}).get(
                "sr0_annualised"),
            "old_dsr": ((results.get("overfitting") or {}).get("dsr") or {}).get("dsr"),
            "seconds": time.perf_counter() - started,
            "oracle_sharpe": oracle_sharpe(market, args.hour) if kind == "planted" else None}


def _quiet() -> None:
    logging.basicConfig(level=logging.WARNING)


def _night_job(kind: str, index: int, args: argparse.Namespace, tmp: str, edge: float
               ) -> dict[str, Any]:
    return night(kind, index, load_ohlcv(sample_data_path()), args, Path(tmp), edge)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=40, help="nights of each kind")
    parser.add_argument("--jobs", type=int, default=1, help="nights run at once (processes)")
    parser.add_argument("--edges", type=float, nargs="*", default=[0.005, 0.0075, 0.01],
                        help="planted log returns (a set of planted nights for each)")
    parser.add_argument("--hour", type=int, default=14)
    parser.add_argument("--free", action="store_true",
                        help="no fees and no slippage: on null markets the searched strategies "
                             "then lose nothing to costs, and the DSR is what stops luck")
    parser.add_argument("--folds", type=int, default=DEFAULT_FOLDS,
                        help="purged walk-forward folds of each night's sweep (default: the "
                             "objective's default, which the gate is calibrated for)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "gate_calibration.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    plan = [(kind, index, edge) for index in range(args.nights)
            for kind, edge in [("null", 0.0)] + [("planted", edge) for edge in args.edges]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(
            max_workers=args.jobs, initializer=_quiet) as pool:
        futures = [pool.submit(_night_job, kind, index, args, tmp, edge)
                   for kind, index, edge in plan]
        for future in futures:  # in plan order: the rows do not depend on --jobs
            rows.append(future.result())
            row = rows[-1]
            rules = " ".join(f"{rule} {'APPROVE' if approved else 'reject'}"
                             for rule, approved in row["gates"].items())
            print(f"{row['kind']:>7} {row['edge']:+.4f} {row['index']:>3}: gate "
                  f"{'APPROVE' if row['new_gate'] else 'reject':7} ({rules}) old "
                  f"{'APPROVE' if row['old_gate'] else 'reject':7} ({row['seconds']:.0f} s; "
                  f"failed {', '.join(row['failed']) or '-'})", flush=True)
    summary: dict[str, Any] = {"machine": machine(), "nights": args.nights, "edges": args.edges,
                               "hour": args.hour, "rows": rows, "rates": {}}
    for kind, edge in [("null", 0.0)] + [("planted", edge) for edge in args.edges]:
        mine = [r for r in rows if r["kind"] == kind and r["edge"] == edge]
        oracle = [r["oracle_sharpe"] for r in mine if r["oracle_sharpe"] is not None]
        summary["rates"][f"{kind} {edge:+.4f}"] = {
            "nights": len(mine),
            "old_gate_approvals": sum(r["old_gate"] for r in mine) / len(mine),
            "new_gate_approvals": sum(r["new_gate"] for r in mine) / len(mine),
            "approvals": {rule: sum(r["gates"][rule] for r in mine) / len(mine)
                          for rule in RULES},
            # The DSR alone (what stops luck when costs do not): nights it would pass.
            "dsr_passes": {rule: sum((r["gate_dsrs"][rule] or 0.0) >= 0.95 for r in mine)
                           for rule in RULES},
            "holdout_sharpe_median": float(np.median([r["holdout_sharpe"] for r in mine
                                                      if r["holdout_sharpe"] is not None]
                                                     or [np.nan])),
            "oracle_net_sharpe_median": float(np.median(oracle)) if oracle else None,
            "new_gate_failed_criteria": {name: sum(name in r["failed"] for r in mine)
                                         for name in sorted({n for r in mine
                                                             for n in r["failed"]})},
            # The permutation test alone: on null markets, its size (about 5 % if exact).
            "permutation_p_at_most_0.05": sum(
                r["values"]["holdout_test"] is not None and r["values"]["holdout_test"] <= 0.05
                for r in mine),
            "permutation_tested": sum(r["values"]["holdout_test"] is not None for r in mine),
            # The winners' validation score fold by fold (oldest first), in the median.
            "winner_fold_scores_median": [
                float(np.median(column)) for column in zip(*(r["winner_fold_scores"]
                                                             for r in mine), strict=False)],
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))
    print("\n| market | nights | oracle net Sharpe/yr | winner's holdout Sharpe (median) "
          "| today's gate approves | " + " | ".join(f"N {rule} (DSR alone passes)"
                                                   for rule in RULES)
          + " | permutation p ≤ 0.05 |")
    print("| --- " * (6 + len(RULES)) + "|")
    for name, rate in summary["rates"].items():
        oracle = rate["oracle_net_sharpe_median"]
        print(f"| {name} | {rate['nights']} | {'–' if oracle is None else f'{oracle:.2f}'} | "
              f"{rate['holdout_sharpe_median']:.2f} | {rate['old_gate_approvals']:.1%} | "
              + " | ".join(f"{rate['approvals'][rule]:.1%} ({rate['dsr_passes'][rule]})"
                           for rule in RULES)
              + f" | {rate['permutation_p_at_most_0.05']} of {rate['permutation_tested']} |")
    print("\nThe winners' validation score per walk-forward fold (oldest first), median:")
    for name, rate in summary["rates"].items():
        print(f"  {name}: " + " ".join(f"{v:+.2f}" for v in rate["winner_fold_scores_median"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
