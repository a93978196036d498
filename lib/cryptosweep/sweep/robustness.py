"""Evidence beyond the one walk-forward path, at the end of a sweep (``evidence`` section):

* **CPCV** (``evidence.cpcv``): each top-k configuration re-fitted on every combinatorial
  purged split of the development bars and backtested on each of the ``φ[N, k]`` paths
  (:func:`cryptosweep.trading.objective.evaluate_cpcv`), a worker task per configuration,
  journaled in ``extra_evaluations`` as kind ``cpcv``;
* **regimes** (``evidence.regimes``): the validation and holdout bars labelled by
  :mod:`cryptosweep.trading.regimes` (past bars only), the winner's and the baselines' Sharpe
  ratio, trades and hit rate per regime, computed here from the journaled per-bar returns;
* **other markets** (``evidence.markets``): each top-k configuration re-fitted and scored on
  each other market's candles with its own purged folds, a worker task per (configuration,
  market), journaled as kind ``market:<name>``.

Each builds a part of the results' ``statistics`` block (``cpcv``, ``regimes``, ``markets``);
what the journal holds already (with the same settings) is not run again.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from cryptosweep.core.config import SweepConfig
from cryptosweep.core.errors import CryptosweepError
from cryptosweep.judging.robustness import (
    carried_by_one_regime,
    market_spread,
    path_distribution,
    per_regime,
    quantile_of,
)
from cryptosweep.records.journal import EvaluationRow, Journal

log = logging.getLogger(__name__)

#: The ``extra_evaluations`` kind of a top-k configuration's CPCV paths.
CPCV = "cpcv"
#: The ``extra_evaluations`` kind of a top-k configuration's score on another market.
MARKET = "market:{}"
#: Journaled with every CPCV result: its splits' models were fitted with the objective's
#: sample weights. A result without it (journaled before they were) is made again on resume
#: where the weights are not uniform, never shown beside weighted ones.
CPCV_WEIGHTED = "weighted_fits"


def cpcv_tasks(config: SweepConfig, journal: Journal, leaders: list[EvaluationRow]
               ) -> list[dict[str, Any]]:
    """One ``cpcv`` task per top-k configuration the journal holds no paths of (with these
    ``groups`` and ``test_groups``, and fitted as :data:`CPCV_WEIGHTED` says)."""
    settings = config.evidence.cpcv
    if not settings.enabled:
        return []
    weighted = config.objective.sample_weights != "none"
    done = journal.get_extra(CPCV)
    tasks = []
    for row in leaders:
        held = done.get(row.eval_id) or {}
        if ((held.get("groups"), held.get("test_groups")) == (settings.groups,
                                                               settings.test_groups)
                and (held.get(CPCV_WEIGHTED) or not weighted)):
            continue
        tasks.append({"task": f"cpcv-{row.eval_id}", "kind": "cpcv", "eval_id": row.eval_id,
                      "params": row.params, "budget": row.budget, "seed": row.seed,
                      "groups": settings.groups, "test_groups": settings.test_groups})
    return tasks


def market_tasks(config: SweepConfig, journal: Journal, leaders: list[EvaluationRow]
                 ) -> list[dict[str, Any]]:
    """One ``market`` task per (top-k configuration, other market) not journaled yet with
    these data settings and these candles (their SHA-256: a market file replaced between a
    run and its resume left the configurations scored before on the old candles and the rest
    on the new ones, side by side in one table)."""
    from cryptosweep.trading.objective import data_fingerprint

    tasks = []
    for market in config.evidence.markets:
        kind = MARKET.format(market.name)
        data = market.data.model_dump(mode="json")
        done = journal.get_extra(kind)
        try:
            sha256: str | None = data_fingerprint(market.data.path)
        except (CryptosweepError, OSError):  # its task says why, in the market's cell
            sha256 = None
        for row in leaders:
            held = done.get(row.eval_id) or {}
            if held.get("market_data") == data and held.get("market_sha256") == sha256:
                continue
            tasks.append({"task": f"market-{market.name}-{row.eval_id}", "kind": "market",
                          "store": kind, "eval_id": row.eval_id, "params": row.params,
                          "budget": row.budget, "seed": row.seed, "market_data": data,
                          "market_sha256": sha256})
    return tasks


def journal_result(journal: Journal, payload: dict[str, Any], result: dict[str, Any]) -> None:
    """Journal a finished ``cpcv`` or ``market`` task."""
    if payload["kind"] == "cpcv":
        journal.put_extra(CPCV, payload["eval_id"], {**result, CPCV_WEIGHTED: True})
    else:
        journal.put_extra(payload["store"], payload["eval_id"],
                          {"market_data": payload["market_data"],
                           "market_sha256": payload["market_sha256"], "metrics": result})


def cpcv_block(config: SweepConfig, journal: Journal, order: list[EvaluationRow]
               ) -> dict[str, Any] | None:
    """``statistics.cpcv``: per top-k entry (in the winner-first order) its path
    distribution (:func:`~cryptosweep.judging.robustness.path_distribution` of the annualised
    path Sharpe ratios) and the gate's quantile; None when CPCV is off."""
    settings = config.evidence.cpcv
    if not settings.enabled:
        return None
    done = journal.get_extra(CPCV)
    entries = []
    for rank, row in enumerate(order, start=1):
        held = done.get(row.eval_id)
        if held is None:
            continue
        sharpes = held["path_sharpe"]
        entry = {"rank": rank, "eval_id": row.eval_id, "n_splits": held["n_splits"],
                 "path_sharpe": sharpes, "path_trades": held["path_trades"],
                 "gate_quantile": quantile_of(sharpes, settings.gate_quantile)}
        entry.update(path_distribution(sharpes))
        entries.append(entry)
    return {"groups": settings.groups, "test_groups": settings.test_groups,
            "gate_quantile_level": settings.gate_quantile, "entries": entries}


def regimes_block(config: SweepConfig, journal: Journal, winner: EvaluationRow | None,
                  data: dict[str, Any]) -> dict[str, Any] | None:
    """``statistics.regimes``: the winner's and the baselines' per-regime Sharpe ratio, trades
    and hit rate (each bar's return in the regime labelled at the close of the bar before)
    on the validation bars (the fold blocks one after the other, as the journal
    keeps their returns) and the holdout bars, and the flag when the winner's positive
    return comes from one regime (the bars still in the regimes' warm-up, rows ``warmup``,
    have none: they are left out of the flag). None when regimes are off or the data are not
    described."""
    settings = config.evidence.regimes
    if not settings.enabled or winner is None or not data.get("folds"):
        return None
    from cryptosweep.trading.regimes import WARMUP, RegimeSettings, label_regimes
    from cryptosweep.trading.steps import load_market

    market = load_market(config.objective_spec())
    labels = label_regimes(market.close, RegimeSettings(
        trend_lookback=settings.trend_lookback, trend_threshold=settings.trend_threshold,
        volatility_window=settings.volatility_window,
        volatility_min_history=settings.volatility_min_history))["regime"].to_numpy()
    blocks = {"validation": np.concatenate([np.arange(f["start"], f["stop"])
                                            for f in data["folds"]])}
    if data.get("holdout"):
        blocks["holdout"] = np.arange(data["holdout"]["start"], data["holdout"]["stop"])
    # A bar's return is earned over the bar, so it belongs to the regime known at the close
    # of the bar before (the label of bar t reads close_t, which that return moves).
    labels = np.concatenate([np.array([WARMUP], dtype=object), labels[:-1]])
    per_bar_year = data.get("periods_per_year")
    out: dict[str, Any] = {"settings": settings.model_dump(mode="json")}
    for kind, bars in blocks.items():
        series = {"winner": journal.get_returns(kind).get(winner.eval_id)}
        series.update(journal.get_baseline_returns(kind))
        tables = {}
        for name, returns in series.items():
            if returns is None or len(returns) != len(bars):
                continue
            tables[name] = per_regime(returns, labels[bars], per_bar_year)
        if tables:
            out[kind] = tables
    # Warm-up bars have no regime: never the one that carries the return (nor in its total).
    flags = [f"{kind}: {note}" for kind in ("validation", "holdout")
             if (note := carried_by_one_regime(
                 [row for row in (out.get(kind) or {}).get("winner") or []
                  if row["regime"] != WARMUP]))]
    out["caveats"] = flags
    return out


def markets_block(config: SweepConfig, journal: Journal, order: list[EvaluationRow]
                  ) -> dict[str, Any] | None:
    """``statistics.markets``: per top-k entry its score and trades on each other market and
    the spread (:func:`~cryptosweep.judging.robustness.market_spread`); None without other
    markets."""
    if not config.evidence.markets:
        return None
    names = [market.name for market in config.evidence.markets]
    done = {name: journal.get_extra(MARKET.format(name)) for name in names}
    entries = []
    for rank, row in enumerate(order, start=1):
        scores, trades, errors = {}, {}, {}
        for name in names:
            held = done[name].get(row.eval_id) or {}
            metrics = held.get("metrics") or {}
            scores[name] = metrics.get("score")
            trades[name] = metrics.get("n_trades")
            if held.get("error"):
                errors[name] = held["error"]
        entries.append({"rank": rank, "eval_id": row.eval_id, "home_score": row.score,
                        "scores": scores, "trades": trades, "errors": errors,
                        **market_spread(scores)})
    return {"markets": names, "metric": config.objective.metric, "entries": entries}
