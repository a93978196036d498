"""The combined results of a walk-forward (``walkforward_results_<ts>.json``, schema
:data:`RESULTS_SCHEMA` version :data:`RESULTS_VERSION`) from its windows' records: the
process's out-of-sample track and its verdict.

* ``out_of_sample``: the segments' per-bar returns concatenated in time order (``returns``)
  and their metrics (:func:`~cryptosweep.trading.metrics.performance`), with flat and
  buy-and-hold over the same segments (``baselines``; buy-and-hold: one round trip per
  segment).
* ``efficiency``: walk-forward efficiency (Pardo 2008, ch. 11) per window (annualised
  out-of-sample return / the annualised in-sample validation return of the model that traded
  the segment: the window's winner, or the kept champion's in its own window; undefined for a
  flat segment) and overall (the whole track's annualised return / the mean of the traded
  models' in-sample ones); defined only as :func:`.analysis.efficiency` says.
* ``dsr``: the probabilistic (``psr``, against 0) and deflated Sharpe ratio (Bailey & López de
  Prado 2014) of the out-of-sample track, with N = the walk-forward designs tried
  (``n_designs``: the most full-budget configurations one window's search tried, each
  threshold an inner threshold search backtested one, as the ledger counts them; each, traded
  through every window, is a design the process chose among) and the variance
  ``deployment.dsr_variance`` names, as the gate's DSR (:mod:`cryptosweep.judging.selection`):
  ``no_skill``, ``1/(T − 1)`` on the track's ``T`` bars; ``trials``, that of every window's
  full-budget per-bar Sharpe ratios (from their validation returns in the windows' journals,
  and their inner threshold searches');
  ``n_configurations`` is every full-budget configuration over all windows.
* The track is what the **process** traded (:mod:`.process`): per segment the approved
  winner, the kept champion, or flat (``windows[k].process``); ``winner_oos_score`` is the
  window's winner on its segment whatever the gate said.
* ``parameters``: each parameter's path through the windows' winners and its stability
  (:mod:`.analysis`).
* ``windows``: one row per window (bars, seed, run folder, in-sample and out-of-sample score,
  trades, the winner's parameters and the gate's decision).
* ``verdict``: **edge** when the track beats flat (score > 0) and buy-and-hold, on at least
  ``reporting.min_trades`` trades, with a DSR of at least
  :data:`~cryptosweep.core.settings.DSR_CONFIDENCE`; else **no edge**, naming every failed
  condition.

Everything but ``run`` (where and when it ran) is a function of the config, the master seed
and the data: byte-equal for any number of workers and across resumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from cryptosweep.core.config import SweepConfig
from cryptosweep.core.files import finite_or_none
from cryptosweep.core.formatting import metric_name, share, signed
from cryptosweep.core.settings import DSR_CONFIDENCE
from cryptosweep.judging.overfitting import probabilistic_sharpe_ratio
from cryptosweep.judging.selection import deflated_sharpe, variance_of_sharpe
from cryptosweep.judging.verdict import EDGE, NO_EDGE
from cryptosweep.trading.backtest import has_dispersion
from cryptosweep.trading.baselines import BASELINES
from cryptosweep.trading.metrics import performance
from cryptosweep.walkforward.analysis import (
    annualised_return,
    efficiency,
    parameter_paths,
    parameter_stability,
    search_ranges,
)

RESULTS_SCHEMA = "cryptosweep.walkforward_results"
RESULTS_VERSION = 2  # 2: what the process traded (windows[k].process, traded), n_designs, psr


@dataclass(frozen=True)
class _Trade:
    net_return: float


def build_results(config: SweepConfig, seed: int, layout: list[dict[str, Any]],
                  records: list[dict[str, Any]], run: dict[str, Any]) -> dict[str, Any]:
    """The combined results (see the module docstring); ``records`` in window order."""
    metric = config.objective.metric
    periods = _periods_per_year(config)
    segments = [record["traded"] for record in records]
    returns = np.concatenate([np.asarray(s["returns"], dtype="float64") for s in segments])
    positions = np.concatenate([np.asarray(s["positions"]) for s in segments])
    trades = [_Trade(t) for s in segments for t in s["trades"]]
    track = performance(returns, trades, positions, periods_per_year=periods)
    baselines = {name: _baseline(name, segments, periods) for name in BASELINES}
    rows = [_window_row(record, metric, periods, records) for record in records]
    is_annual = [row["is_annual_return"] for row in rows if row["is_annual_return"] is not None]
    oos_annual = annualised_return(returns, periods)
    mean_is = float(np.mean(is_annual)) if is_annual else float("nan")
    sharpes = [s for record in records for s in record["trial_sharpes"]]
    designs = max((len(record["trial_sharpes"]) for record in records), default=0)
    # One per window, in window order: a window without a winner keeps its place (None in
    # every path), or the next window's winner would be shown as its.
    winners = [(record["winner"] or {}).get("params") or {} for record in records]
    paths = parameter_paths(winners)
    results = {
        "schema": RESULTS_SCHEMA,
        "schema_version": RESULTS_VERSION,
        "run": run,
        "seed": seed,
        "config_hash": config.results_hash(),
        "config": config.canonical(),
        "metric": metric,
        "periods_per_year": periods,
        "layout": layout,
        "windows": rows,
        "out_of_sample": {
            "bars": len(returns),
            "first_bar": segments[0]["first_bar"],
            "last_bar": segments[-1]["last_bar"],
            "metrics": track,
            "annual_return": oos_annual,
            "baselines": baselines,
            "returns": [float(r) for r in returns],
        },
        "efficiency": {
            "per_window": [row["efficiency"] for row in rows],
            "overall": efficiency(oos_annual, mean_is) if is_annual else None,
            "mean_in_sample_annual_return": mean_is if is_annual else None,
        },
        "dsr": _dsr(returns, np.asarray(sharpes), designs, periods,
                    config.deployment.dsr_variance),
        "n_configurations": len(sharpes),
        "n_designs": designs,
        "parameters": {"paths": paths,
                       "stability": parameter_stability(
                           paths, search_ranges(config.canonical()))},
    }
    results = finite_or_none(results)  # strict JSON: a Calmar ratio past a float is None
    results["verdict"] = process_verdict(results, config.reporting.min_trades)
    return results


def process_verdict(results: dict[str, Any], min_trades: int) -> dict[str, Any]:
    """**edge** / **no edge** for the process (see the module docstring): ``decision``,
    ``label``, ``reason`` (one sentence naming every failed condition) and ``headline``."""
    metric = results["metric"]
    oos = results["out_of_sample"]
    score = oos["metrics"][metric]  # None: not finite (a Calmar ratio past a float)
    hold = oos["baselines"]["buy_and_hold"]["metrics"][metric]
    trades = int(oos["metrics"]["trades"])
    deflated = results.get("dsr") or {}
    dsr = deflated.get("dsr")
    name = metric_name(metric)
    failed = []
    if score is None or hold is None:
        failed.append(f"out-of-sample {name} {signed(score)} against buy-and-hold "
                      f"{signed(hold)}: not a finite number to judge by")
    else:
        if not score > 0:
            failed.append(f"out-of-sample {name} {signed(score)} does not beat flat (0)")
        if not score > hold:
            failed.append(f"it does not beat buy-and-hold ({signed(hold)})")
    if trades < min_trades:
        failed.append(f"{trades} trades < reporting.min_trades={min_trades}")
    if dsr is None:  # "DSR – < 0.95" said neither that it is missing nor why
        failed.append(f"DSR not computed ({deflated.get('why_not') or 'no returns'})")
    elif not dsr >= DSR_CONFIDENCE:
        failed.append(f"DSR {share(dsr)} < {DSR_CONFIDENCE:g}")
    decision = NO_EDGE if failed else EDGE
    reason = ("; ".join(failed) if failed else
              f"out-of-sample {name} {signed(score)} beats flat and buy-and-hold "
              f"({signed(hold)}) on {trades} trades with DSR {share(dsr)}")
    wfe = results["efficiency"]["overall"]
    shown_wfe = "undefined" if wfe is None else signed(wfe)
    headline = (f"out-of-sample {name} {signed(score)} ({trades} trades) · buy-and-hold "
                f"{signed(hold)} · WFE {shown_wfe} · DSR {share(dsr)} "
                f"(N={results['n_designs']} designs)")
    return {"decision": decision, "label": decision.upper(),
            "reason": reason[0].upper() + reason[1:] + ".", "headline": headline}


def _window_row(record: dict[str, Any], metric: str, periods: float,
                records: list[dict[str, Any]]) -> dict[str, Any]:
    """One window's row; its efficiency compares what traded the segment with that model's
    own in-sample return (a kept champion's: its window's; flat: undefined)."""
    oos = record["traded"]
    process = record["process"]
    oos_returns = np.asarray(oos["returns"], dtype="float64")
    oos_annual = annualised_return(oos_returns, periods)
    is_annual = record["in_sample"]["annual_return"]
    if process["trades"] == "champion":
        is_annual = records[process["champion_window"]]["in_sample"]["annual_return"]
    traded_is = None if process["trades"] == "flat" else is_annual
    winner = record["winner"] or {}
    holdout = winner.get("holdout") or {}
    return {
        **record["layout"],
        "is_score": record["in_sample"]["score"],
        "is_annual_return": traded_is,
        "winner_is_annual_return": record["in_sample"]["annual_return"],
        "holdout_score": holdout.get(f"holdout_{metric}"),
        "oos_score": oos["metrics"][metric],
        "oos_annual_return": oos_annual,
        "oos_trades": oos["metrics"]["trades"],
        "oos_total_return": oos["metrics"]["total_return"],
        "buy_and_hold_score": oos["baselines"]["buy_and_hold"]["metrics"][metric],
        "efficiency": efficiency(oos_annual, traded_is) if traded_is is not None else None,
        "traded": process["trades"],
        "process": {key: process[key] for key in ("kind", "trades", "champion_window",
                                                   "text")},
        "winner_oos_score": record["out_of_sample"]["metrics"][metric],
        "decision": (record["deployment"] or {}).get("decision"),
        "configurations": len(record["trial_sharpes"]),
        "winner": {key: winner.get(key) for key in ("eval_id", "params", "budget", "seed")}
        if record["winner"] else None,
    }


def _baseline(name: str, segments: list[dict[str, Any]], periods: float) -> dict[str, Any]:
    parts = [np.asarray(s["baselines"][name]["returns"], dtype="float64") for s in segments]
    returns = np.concatenate(parts)
    trades = [_Trade(float(np.prod(1.0 + part) - 1.0)) for part, s in zip(parts, segments,
                                                                            strict=True)
              if s["baselines"][name]["metrics"]["trades"]]
    positions = np.concatenate([np.full(len(part), 1 if name != "flat" else 0) for part in parts])
    return {"metrics": performance(returns, trades, positions, periods_per_year=periods),
            "returns": [float(r) for r in returns]}


def _dsr(returns: np.ndarray, sharpes: np.ndarray, designs: int, periods: float,
         variance: Literal["no_skill", "trials"]) -> dict[str, Any]:
    """PSR(0) and the DSR of the track with N = ``designs`` (the configurations a window's
    search tried: each, traded through every window, is a walk-forward design the process
    chose among) and the ``variance`` of Sharpe ratios ``deployment.dsr_variance`` names, as the
    gate's (:func:`~cryptosweep.judging.selection.deflated_sharpe`; with ``trials``, that of
    every window's full-budget per-bar Sharpe ratios). With one design there is nothing to
    deflate by: the DSR is PSR(0)."""
    r = np.asarray(returns, dtype=float)
    out: dict[str, Any] = {"dsr": None, "psr": None, "n_trials": designs,
                           "dsr_variance": variance}
    if len(r) < 4:  # (was said "never traded" too, whatever it traded)
        out["why_not"] = f"the track has {len(r)} bar(s), fewer than 4"
        return out
    if not has_dispersion(r):
        out["why_not"] = "the track never traded: its returns do not vary"
        return out
    finite = np.asarray(sharpes, dtype=float)
    finite = finite[np.isfinite(finite)]
    spread = float(np.var(finite, ddof=1)) if len(finite) >= 2 else None
    deflated = deflated_sharpe(float(np.mean(r) / np.std(r, ddof=1)),
                               variance_of_sharpe(variance, len(r), spread), designs, r, periods)
    if deflated["dsr"] is None:
        out["why_not"] = deflated["why_not"]
        return out
    out["sr_variance"] = deflated.pop("sharpe_variance")  # the results' name for it
    out.update(deflated)
    out["psr"] = (deflated["dsr"] if designs < 2 else probabilistic_sharpe_ratio(
        deflated["sr"], 0.0, len(r), deflated["skew"], deflated["kurtosis"]))
    return out


def _periods_per_year(config: SweepConfig) -> float:
    from cryptosweep.trading.steps import load_market

    spec = config.objective_spec()
    return float(load_market(spec).periods_per_year)
