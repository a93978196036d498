"""Trade a window's winner, untouched, on its out-of-sample segment (runs on a worker).

The winner is trained as the sweep trains its holdout model and production trains a model
(:func:`~cryptosweep.trading.steps.train_before`): on every in-sample bar whose label ends
before the in-sample end, with its recorded seed and budget; then it signals and is
backtested on the segment's bars alone (:func:`~cryptosweep.trading.steps.backtest_bars`:
flat at the segment's first bar, every trade closed by its last). The embargo bars between
the two are neither trained on nor traded. The baselines (flat, buy-and-hold) are measured on
the same bars with the same fees and slippage.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cryptosweep.core.files import finite_or_none
from cryptosweep.execution.worker import trial_device
from cryptosweep.trading.backtest import BacktestResult
from cryptosweep.trading.baselines import BASELINES, buy_and_hold, flat
from cryptosweep.trading.metrics import performance
from cryptosweep.trading.objective import trial_reproducibility
from cryptosweep.trading.steps import (
    TradingParams,
    backtest_bars,
    full_rounds,
    load_market,
    predict_probabilities,
    train_before,
)


def trade_segment(payload: dict[str, Any]) -> dict[str, Any]:
    """One window's out-of-sample trade, from a plain-JSON payload: ``params``, ``budget``,
    ``seed`` (the winner's), ``spec`` (the window's objective spec over the bars from its
    in-sample start to its segment's end, no holdout), ``cutoff`` (the in-sample end, as a
    position in that range), ``segment`` (``[start, stop)`` positions) and ``use_gpu``;
    ``params`` None: nothing is traded (flat).

    Returns ``metrics`` (:func:`~cryptosweep.trading.metrics.performance` of the segment),
    ``returns`` and ``positions`` per bar, ``trades`` (net return per trade), ``train_rows``,
    and ``baselines`` (per baseline: ``metrics`` and per-bar ``returns``). Strict JSON, as the
    worker's tasks return it: a metric that is not finite (a Calmar ratio whose annualised
    return overflows a float: a big move over a short segment) is None."""
    from cryptosweep.core.config import ObjectiveSpec

    spec = ObjectiveSpec.of(payload["spec"])
    settings = spec.objective
    market = load_market(spec)
    params, cutoff = payload["params"], int(payload["cutoff"])
    start, stop = (int(bound) for bound in payload["segment"])
    if not 0 < cutoff <= start < stop <= len(market.open_):
        raise ValueError(f"segment [{start}, {stop}) does not follow the in-sample end "
                         f"{cutoff} within {len(market.open_)} bars")
    if params is None:  # nothing to trade (no winner, or one the gate rejected): flat
        result, train_rows = flat(stop - start), 0
    else:
        repro = trial_reproducibility(spec, int(payload["seed"]),
                                      trial_device(bool(payload.get("use_gpu"))))
        rounds = full_rounds(float(payload["budget"]), settings.rounds_per_unit)
        model, train = train_before(market, cutoff, params, rounds, repro, settings,
                                    "the window's in-sample period")
        bars = np.arange(start, stop, dtype="int64")
        proba = predict_probabilities(model, market.features, bars)
        result = backtest_bars(market, bars, proba, TradingParams.from_params(params),
                               settings)
        train_rows = len(train)

    def described(result: BacktestResult) -> dict[str, Any]:
        return {"metrics": performance(result.returns, result.trades, result.positions,
                                       periods_per_year=market.periods_per_year),
                "returns": [float(r) for r in result.returns]}

    baselines = {}
    for name in BASELINES:
        if name == "flat":
            baseline = flat(stop - start)
        else:
            baseline = buy_and_hold(market.open_[start:stop], market.high[start:stop],
                                    market.low[start:stop], market.close[start:stop],
                                    fees_bps=settings.fees_bps,
                                    slippage_bps=settings.slippage_bps)
        baselines[name] = described(baseline)
    return finite_or_none({
        **described(result),
        "positions": [int(p) for p in result.positions],
        "trades": [float(t.net_return) for t in result.trades],
        "train_rows": train_rows,
        "first_bar": market.ohlcv.index[start].isoformat(),
        "last_bar": market.ohlcv.index[stop - 1].isoformat(),
        "baselines": baselines,
    })
