"""Does a low budget rank configurations as the full budget does? For each fidelity of
``objective.fidelity`` (``rounds``, ``folds``, ``bars``: ``lib/cryptosweep/trading/fidelity.py``),
Spearman's rho and Kendall's tau between the scores of the same configurations at a low budget
and at the full budget (``cryptosweep.strategies.fidelity.fidelity_rank_correlation``).

Markets: the bundled real BTC/USDT hourly candles with each bar's direction flipped at random
and an edge planted in one hour of each day (``null_market`` and ``plant_edge`` of
``benchmarks/gate_calibration.py``), one market per ``--edges`` value, each with its own seed.
Configurations: ``--configs`` random draws of the demo's search space (``parameters/demo.yaml``:
LightGBM or XGBoost and the trading parameters), the demo's objective (4 purged walk-forward
folds, R = 9 units of 10 rounds), on each market's development bars (the holdout is never read).
Low budgets: ``--budgets`` (default R/9 and R/3: the demo's lower rungs). The full-budget scores
are measured once per market: every fidelity's full-budget evaluation is the same one.

    .venv/bin/python benchmarks/fidelity_ranks.py [--configs 12] [--edges 0.005 0.0075 0.01]
    .venv/bin/python benchmarks/fidelity_ranks.py --table   # the table of the last results

Writes ``benchmarks/results/fidelity_ranks.json`` and prints a Markdown table for RESULTS.md.
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
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cryptosweep import load_ohlcv  # noqa: E402
from cryptosweep.core.config_files import load_config  # noqa: E402
from cryptosweep.core.vocabulary import FIDELITIES  # noqa: E402
from cryptosweep.strategies.fidelity import (  # noqa: E402
    budget_scores,
    fidelity_rank_correlation,
)
from cryptosweep.strategies.random import RandomConfigSampler  # noqa: E402
from cryptosweep.strategies.space import SearchSpace  # noqa: E402
from cryptosweep.trading.data import sample_data_path  # noqa: E402
from gate_calibration import null_market, oracle_sharpe, plant_edge, write_csv  # noqa: E402
from machine import machine  # noqa: E402

DEMO = HERE.parent / "parameters" / "demo.yaml"


def market_config(path: Path, fidelity: str) -> Any:
    """The demo config on the market at ``path`` with ``objective.fidelity``."""
    return load_config(DEMO, overrides=[f"data.path={path}", "data.format=generic",
                                        f"objective.fidelity={fidelity}"])


def measure(index: int, edge: float, candles: Any, args: argparse.Namespace,
            workdir: Path) -> dict[str, Any]:
    """Every fidelity at every low budget on one planted-edge market."""
    market = plant_edge(null_market(candles, seed=2000 + index), args.hour, edge)
    path = workdir / f"planted_{index}.csv"
    write_csv(market, path)
    base = market_config(path, "rounds")
    full_budget = base.full_budget_units
    sampler = RandomConfigSampler(SearchSpace.from_config(base), seed=index + 1)
    configurations = [sampler.sample(i) for i in range(args.configs)]
    seed = 100 + index
    started = time.perf_counter()
    full = budget_scores(configurations, base.objective_spec(), full_budget, full_budget, seed)
    out: dict[str, Any] = {"index": index, "edge": edge,
                           "oracle_net_sharpe": oracle_sharpe(market, args.hour),
                           "full_budget": full_budget, "full_scores": full,
                           "full_seconds": time.perf_counter() - started, "rankings": []}
    for fidelity in FIDELITIES:
        spec = market_config(path, fidelity).objective_spec()
        for budget in args.budgets:
            started = time.perf_counter()
            ranking = fidelity_rank_correlation(configurations, spec, budget, full_budget, seed,
                                                full_scores=full)
            seconds = time.perf_counter() - started
            out["rankings"].append({**ranking.to_dict(), "seconds": seconds})
            print(f"market {index} (edge {edge:+.4f}) {fidelity:>6} r={budget:g}/{full_budget}: "
                  f"rho {_fmt(ranking.spearman_rho)} tau {_fmt(ranking.kendall_tau)} "
                  f"({seconds:.0f} s; full budget {out['full_seconds']:.0f} s)", flush=True)
    return out


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}"


def best_kept(ranking: dict[str, Any], eta: int) -> bool:
    """Whether the full budget's best configuration is among the best ``n // eta`` at the low
    budget: whether successive halving with ``eta`` keeps it (ties by order), as Hyperband's
    rungs keep ``floor(n / eta)`` (``strategies/hyperband.py``; 6 of 20 with eta 3)."""
    low, full = ranking["low_scores"], ranking["full_scores"]
    best = max(range(len(full)), key=lambda i: (full[i], -i))
    order = sorted(range(len(low)), key=lambda i: (-low[i], i))
    return best in order[:max(1, len(low) // eta)]


def table(markets: list[dict[str, Any]], budgets: list[float], eta: int = 3) -> str:
    """Per fidelity and low budget: rho and tau on each market, their means, on how many
    markets the full budget's best stays among the low budget's best ``n // eta``, and the
    seconds the low-budget evaluations took against the full-budget ones."""
    full_seconds = sum(m["full_seconds"] for m in markets)
    n_configs = len(markets[0]["full_scores"])
    n_kept = max(1, n_configs // eta)
    head = " | ".join(f"edge {m['edge']:+.2%}" for m in markets)
    lines = [f"| fidelity | low budget | rho / tau: {head} | mean rho | mean tau "
             f"| best kept ({n_kept} of {n_configs}) | time vs full |",
             "| --- | --- | " + "--- | " * len(markets) + "--- | --- | --- | --- |"]
    for fidelity in FIDELITIES:
        for budget in budgets:
            rows = [next(r for r in m["rankings"]
                         if r["fidelity"] == fidelity and r["low_budget"] == budget)
                    for m in markets]
            rhos = [r["spearman_rho"] for r in rows if r["spearman_rho"] is not None]
            taus = [r["kendall_tau"] for r in rows if r["kendall_tau"] is not None]
            cells = " | ".join(f"{_fmt(r['spearman_rho'])} / {_fmt(r['kendall_tau'])}"
                               for r in rows)
            seconds = sum(r["seconds"] for r in rows)
            full = markets[0]["full_budget"]
            kept = sum(best_kept(r, eta) for r in rows)
            lines.append(
                f"| {fidelity} | {budget:g} of {full} | {cells} | "
                f"{_fmt(statistics.fmean(rhos) if rhos else None)} | "
                f"{_fmt(statistics.fmean(taus) if taus else None)} | "
                f"{kept} of {len(rows)} | {seconds / full_seconds:.2f}× |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=12, help="configurations per market")
    parser.add_argument("--edges", type=float, nargs="+", default=[0.005, 0.0075, 0.01],
                        help="planted log return of each market (one market each)")
    parser.add_argument("--budgets", type=float, nargs="+", default=[1.0, 3.0],
                        help="low budgets, in units (the demo's R is 9)")
    parser.add_argument("--hour", type=int, default=14)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "fidelity_ranks.json")
    parser.add_argument("--table", action="store_true",
                        help="print the table of the results in --out, measure nothing")
    args = parser.parse_args()
    if args.table:
        summary = json.loads(args.out.read_text())
        print(table(summary["markets"], summary["budgets"]))
        return 0
    logging.basicConfig(level=logging.WARNING)
    candles = load_ohlcv(sample_data_path())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        markets = [measure(index, edge, candles, args, Path(tmp))
                   for index, edge in enumerate(args.edges)]
    summary = {"machine": machine(), "configs": args.configs, "edges": args.edges,
               "budgets": args.budgets, "hour": args.hour,
               "seconds": time.perf_counter() - started, "markets": markets}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print()
    print(table(markets, args.budgets))
    print(f"\n{len(markets)} markets x {args.configs} configurations, "
          f"{summary['seconds'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
