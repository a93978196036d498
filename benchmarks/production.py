"""Production: the time of ``train_model`` and of ``decide`` on the last 1,000 bars, per model
family, side by side with the bare library work they wrap; and how much history ``decide``
needs to give the decisions of the full series.

Runs on the bundled BTC/USDT hourly sample (Binance, 9,504 bars). Each family's configuration
is a best-configs entry (the objective benchmark's parameters, ``--rounds`` boosting rounds or
epochs, seed 7); ``train_model`` trains it on every bar. The first call per family is a warm-up
(imports, features); the table gives the median of ``--repeats`` calls after it.

* train_model vs the bare fit: ``fit`` of the family's adapter on the same training rows (the
  library's own training call with the same parameters), so the difference is what
  ``train_model`` adds: labels, purging, the manifest.
* decide(last 1,000 bars) vs the bare work: ``predict_proba`` of those rows plus one
  ``simulate`` of them, without features, checks or the decisions frame.
* history: the decisions on the last 200 bars with (at least) ``H`` bars of history before
  each, against those of the whole series: the largest difference in P(entry pays) and the
  bars whose action differs.

    .venv/bin/python benchmarks/production.py [--rounds 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from cryptosweep.core.reproducibility import ReproducibilityManager
from cryptosweep.production import TrainedModel, train_model
from cryptosweep.trading.backtest import simulate
from cryptosweep.trading.data import load_ohlcv
from cryptosweep.trading.features import WARM_UP_BARS
from cryptosweep.trading.models import make_entry_model
from cryptosweep.trading.objective import ObjectiveSpec, trial_reproducibility
from cryptosweep.trading.steps import (
    TradingParams,
    entry_signals,
    load_market,
    purged_training_rows,
    training_labels,
)
from machine import machine_line
from objective import FAMILIES, TRADING  # the same configurations as the objective's benchmark

HISTORIES = (WARM_UP_BARS + 1, 500, 1_000, 2_000, 4_000)
COMPARED = 200  # the last bars compared by the history measurement
LAST = 1_000


def entry(family: str, rounds: int) -> dict:
    """A best-configs entry as finalize writes it (the fields train_model reads)."""
    spec = {
        "data": {"path": None, "holdout_fraction": 0.2},
        "objective": {"metric": "sharpe", "folds": 4, "fees_bps": 10.0, "slippage_bps": 2.0,
                      "labels": "triple_barrier", "rounds_per_unit": float(rounds),
                      "embargo_bars": 0, "threads_per_trial": 1, "min_train_bars": 500},
    }
    return {
        "params": {"model": family, "entry_model": FAMILIES[family], "trading": TRADING},
        "budget": 1.0, "seed": 7, "metrics": {"rounds": rounds},
        "objective_spec": ObjectiveSpec.of(spec).to_payload(), "data": {"bar_interval": "1h"},
    }


def median_time(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bare_fit(configuration: dict) -> Callable[[], None]:
    """The adapter's fit on the rows train_model trains on (prepared beforehand)."""
    spec = ObjectiveSpec.of(configuration["objective_spec"])
    market = load_market(spec)
    trading = TradingParams.from_params(configuration["params"])
    n = len(market.open_)
    labels, label_end = training_labels(market, trading, spec.objective, n)
    rows = purged_training_rows(market.features, labels, label_end, n, "bench")
    x, y = market.features[rows], labels[rows]
    repro = trial_reproducibility(spec, configuration["seed"])
    family = configuration["params"]["model"]
    rounds = configuration["metrics"]["rounds"]

    def fit() -> None:
        make_entry_model(family, FAMILIES[family], repro).fit(x, y, rounds)

    return fit


def bare_decide(model: TrainedModel) -> Callable[[], None]:
    """predict_proba of the last bars plus one simulate of them."""
    market = load_market(model.spec)
    x = market.features[-LAST:]
    arrays = [a[-LAST:] for a in (market.open_, market.high, market.low, market.close)]
    trading, settings = model.trading, model.spec.objective
    adapter = model._entry_model

    def decide() -> None:
        proba = adapter.predict_proba(x)
        simulate(*arrays, entry_signals(proba, trading.threshold, settings.allow_short),
                 holding_period=trading.holding_period, stop_loss=trading.stop_loss,
                 take_profit=trading.take_profit, fees_bps=settings.fees_bps,
                 slippage_bps=settings.slippage_bps)

    return decide


def history_effect(model: TrainedModel, ohlcv: pd.DataFrame) -> list[str]:
    full = model.decide(ohlcv).iloc[-COMPARED:]
    cells = []
    for history in HISTORIES:
        short = model.decide(ohlcv.iloc[-(history + COMPARED):]).iloc[-COMPARED:]
        delta = np.abs(short["proba"].to_numpy() - full["proba"].to_numpy())
        differ = int((short["action"] != full["action"]).sum())
        cells.append(f"{delta.max():.1e} / {differ}")
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100, help="boosting rounds / epochs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--families", default=",".join(FAMILIES))
    args = parser.parse_args()
    ReproducibilityManager(seed=0)  # imports before any timing
    ohlcv = load_ohlcv()
    last = ohlcv.iloc[-LAST:]
    print(machine_line())
    print(f"data: bundled BTCUSDT 1h sample ({len(ohlcv)} bars), {args.rounds} rounds/epochs, "
          f"1 thread, median of {args.repeats} after one warm-up\n")
    print("| family | train_model s | bare fit s | ratio | decide last 1,000 ms | bare predict "
          "+ simulate ms | ratio | decide all 9,504 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    history_rows = []
    for family in args.families.split(","):
        configuration = entry(family, args.rounds)
        model = train_model(configuration)  # warm-up: imports, candles, features
        train = median_time(lambda c=configuration: train_model(c), args.repeats)
        fit = median_time(bare_fit(configuration), args.repeats)
        model.decide(last)
        decide = median_time(lambda m=model, bars=last: m.decide(bars), max(args.repeats, 10))
        bare = median_time(bare_decide(model), max(args.repeats, 10))
        whole = median_time(lambda m=model: m.decide(ohlcv), args.repeats)
        print(f"| {family} | {train:.2f} | {fit:.2f} | {train / fit:.2f}x | {1000 * decide:.1f} "
              f"| {1000 * bare:.1f} | {decide / bare:.1f}x | {1000 * whole:.1f} |")
        history_rows.append((family, history_effect(model, ohlcv)))
    print(f"\nhistory: the last {COMPARED} bars decided with H bars of history before each vs "
          "with the whole series: max |difference in P(entry pays)| / bars whose action "
          "differs")
    print("| family | " + " | ".join(f"H = {h:,}" for h in HISTORIES) + " |")
    print("| --- |" + " ---: |" * len(HISTORIES))
    for family, cells in history_rows:
        print(f"| {family} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
