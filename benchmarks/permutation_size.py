"""How often the holdout's permutation test calls a strategy without skill significant.

Markets: ``gate_calibration.py``'s null markets, the bundled real BTC/USDT hourly candles with
each bar's direction flipped at random (sizes, volatility clustering and calendar kept; no bar's
direction can be told from the bars before it), one per seed; the holdout is the last 1,900
bars, as in the demo. Strategies whose signals know nothing of the next bars, each traded by
``simulate`` with its rules:

* ``after large moves``: long after every bar whose absolute move is in the top 3 % (a signal
  that follows volatility), with a 1 % stop and a 3 % take profit within 6 bars;
* ``always long``, ``coin flip 1/2``, ``coin flip 1/20``: long signals at random, held at most
  24 bars with a 2 % stop and take profit, 10 bps fees a side.

Each strategy's holdout trades go through :func:`~cryptosweep.judging.holdout_power.
holdout_evidence` exactly as the gate's do (2,000 draws); the share of markets with a p-value at
most 0.05 is the test's size for that strategy (5 % for an exact test).

    .venv/bin/python benchmarks/permutation_size.py [--markets 200]

Writes ``benchmarks/results/permutation_size.json`` and prints a table for RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cryptosweep import load_ohlcv  # noqa: E402
from cryptosweep.judging.holdout_power import holdout_evidence  # noqa: E402
from cryptosweep.trading.backtest import simulate  # noqa: E402
from cryptosweep.trading.data import sample_data_path  # noqa: E402
from gate_calibration import null_market  # noqa: E402
from machine import machine  # noqa: E402

HOLDOUT_BARS = 1900
BARRIERS = {"holding_period": 6, "stop_loss": 0.01, "take_profit": 0.03, "fees_bps": 10.0}
HELD = {"holding_period": 24, "stop_loss": 0.02, "take_profit": 0.02, "fees_bps": 10.0}

Signal = Callable[[np.ndarray, np.random.Generator], np.ndarray]
STRATEGIES: dict[str, tuple[Signal, dict[str, Any]]] = {
    "after large moves": (lambda moves, _: (np.abs(moves) >= np.quantile(np.abs(moves), 0.97))
                          .astype(int), BARRIERS),
    "always long": (lambda moves, _: np.ones(len(moves), dtype=int), HELD),
    "coin flip 1/2": (lambda moves, rng: (rng.random(len(moves)) < 0.5).astype(int), HELD),
    "coin flip 1/20": (lambda moves, rng: (rng.random(len(moves)) < 0.05).astype(int), HELD),
}


def p_value(market: Any, signal: np.ndarray, rules: dict[str, Any], seed: int) -> float | None:
    open_, high, low, close = (market[c].to_numpy() for c in ("open", "high", "low", "close"))
    result = simulate(open_, high, low, close, signal, **rules)
    previous = np.concatenate([[open_[0]], close[:-1]])
    evidence = holdout_evidence(result.returns, result.held_spans(), close / previous - 1.0,
                                cost_per_trade=2.0 * rules["fees_bps"] / 1e4, seed=seed)
    return None if evidence["permutation"] is None else evidence["permutation"]["p_value"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markets", type=int, default=200)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "permutation_size.json")
    args = parser.parse_args()
    candles = load_ohlcv(sample_data_path())
    began = time.perf_counter()
    p_values: dict[str, list[float | None]] = {name: [] for name in STRATEGIES}
    for seed in range(args.markets):
        market = null_market(candles, seed=5000 + seed).iloc[-HOLDOUT_BARS:]
        moves = np.log(market["close"].to_numpy() / market["open"].to_numpy())
        for name, (signal_of, rules) in STRATEGIES.items():
            signal = signal_of(moves, np.random.default_rng(10_000 + seed))
            p_values[name].append(p_value(market, signal, rules, seed))
    rows = {}
    for name, values in p_values.items():
        tested = [p for p in values if p is not None]
        rows[name] = {"markets": len(values), "tested": len(tested),
                      "at_most_0.05": sum(p <= 0.05 for p in tested),
                      "at_least_0.95": sum(p >= 0.95 for p in tested)}
    summary = {"machine": machine(), "markets": args.markets, "holdout_bars": HOLDOUT_BARS,
               "seconds": time.perf_counter() - began, "rows": rows, "p_values": p_values}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))
    print(f"{args.markets} null markets, {summary['seconds']:.0f} s\n")
    print("| strategy (no skill) | markets with a test | p ≤ 0.05 | share | p ≥ 0.95 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, row in rows.items():
        print(f"| {name} | {row['tested']} | {row['at_most_0.05']} | "
              f"{row['at_most_0.05'] / max(row['tested'], 1):.1%} | {row['at_least_0.95']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
