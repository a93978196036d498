"""The trial objective a worker calls: train, signal and backtest one configuration.

It knows nothing about the sweep: it gets a configuration (``params``), a budget
(``resource``), a seed and the plain-dict ``spec`` of the data and the objective, and returns a
JSON-safe dict. Same inputs, same dict, in any process.

Protocol of :func:`evaluate_trial`:

1. the cached OHLCV and features of the data file (built once per process);
2. the holdout (the most recent ``holdout_fraction`` of bars) is cut off first: no label,
   training row or backtest bar of a trial reads it;
3. labels from the trial's trading parameters: triple-barrier (take profit, stop loss, max
   holding period; AFML ch. 3.4) by default, or fixed-horizon returns above round-trip fees
   (AFML ch. 3.2); each keeps the bar where its information ends;
4. expanding walk-forward folds with purging and embargo (AFML ch. 7.4);
5. per fold: fit the entry model on the training rows with complete features and labels,
   go long where the predicted probability exceeds the threshold (short below
   ``1 - threshold`` when shorts are allowed), backtest the test block with the same barriers,
   fees and slippage;
6. score: the mean over folds of the configured metric (default: annualised Sharpe). A trial
   with no trade at all scores 0 and says so in ``penalty``; a model error fails the trial.

With ``objective.threshold_search``, step 5's threshold is searched inside the trial: the
fold models' predictions backtested at each threshold, the best kept (:func:`evaluate_trial`).

Below the full budget, ``objective.fidelity`` says what the budget buys
(:mod:`cryptosweep.trading.fidelity`): fewer boosting rounds (``rounds``), fewer folds, the most
recent ones (``folds``), or fewer training bars per fold (``bars``).

The steps are public functions, and every consumer goes through them, so that what the sweep
scores and what production trades cannot drift apart: :func:`load_market` /
:func:`market_from_candles` (arrays and features of a data source), :func:`training_labels`,
:func:`purged_training_rows` (purged: the label ends before the cutoff),
:func:`train_before` (labels, rows and fit for the bars before a cutoff: the holdout model and
``cryptosweep.production.train_model``), :func:`fit_entry_model`, :func:`predict_probabilities`,
:func:`entry_signals` (the threshold rule), :func:`backtest_bars`, :func:`fold_score` (the
score of per-fold metrics) and :func:`configuration_predictions` (per validation fold and the
holdout: the bars and their probabilities).

AFML: López de Prado (2018), *Advances in Financial Machine Learning*.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptosweep.core.config import ObjectiveSpec
from cryptosweep.core.errors import ConfigError, DataError
from cryptosweep.core.intervals import (
    format_interval,
)
from cryptosweep.core.reproducibility import ReproducibilityManager
from cryptosweep.core.settings import ObjectiveSettings
from cryptosweep.core.vocabulary import THRESHOLD_SEARCH
from cryptosweep.trading.backtest import BacktestResult
from cryptosweep.trading.baselines import BASELINES, buy_and_hold, flat
from cryptosweep.trading.cpcv import CPCVSplit, assemble_paths, group_bounds, iter_purged_splits
from cryptosweep.trading.data import data_files, sample_data_path
from cryptosweep.trading.features import WARM_UP_BARS
from cryptosweep.trading.fidelity import fidelity_at
from cryptosweep.trading.metrics import performance, trial_sharpe
from cryptosweep.trading.steps import (
    Market,
    TradingParams,
    _budget_trained,
    _checkpoint_files,
    _section,
    _Stopwatch,
    backtest_bars,
    fit_entry_model,
    full_rounds,
    load_market,
    predict_probabilities,
    train_before,
    training_labels,
    training_weights,
    usable_rows,
)
from cryptosweep.trading.validation import test_blocks, walk_forward_folds


@dataclass(frozen=True)
class Predictions:
    """The out-of-sample probabilities of one configuration on one block of bars: ``block``
    (``"fold 0"``, ``"fold 1"``, ..., ``"holdout"``), the bar positions ``bars`` and their open
    ``times``, ``proba`` (P(entry pays) per bar, NaN where a feature is missing), whether
    the block's model ``continued`` from a checkpoint and how many bars it trained on
    (``train_bars``; None where not recorded)."""

    block: str
    bars: np.ndarray
    times: pd.DatetimeIndex
    proba: np.ndarray
    continued: bool = False
    train_bars: int | None = None


def evaluate_trial(
    params: dict[str, Any], resource: float, seed: int, spec: ObjectiveSpec | dict[str, Any],
    device: str = "cpu", timings: dict[str, float] | None = None,
    checkpoint: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score one configuration by purged walk-forward backtests on the development bars.

    Returns plain Python numbers: ``score`` (the mean over folds of the configured metric),
    ``metric``, ``folds`` (every metric of :func:`~cryptosweep.trading.metrics.performance` per
    fold), ``fold_sharpe``, ``fold_trades``, ``n_trades``, ``rounds``, ``penalty`` (why the score
    was set rather than measured, else ``None``), ``returns_sha256`` and ``oos_returns`` (the
    per-bar out-of-sample returns of all test blocks, in bar order; the runner stores them apart
    from the metrics). Bars from the holdout start on are never read. ``timings``, when given,
    accumulates the seconds spent per stage (data, labels, fit, predict, backtest).

    With an ``objective.fidelity`` other than ``rounds`` (:mod:`cryptosweep.trading.fidelity`)
    the result also has ``fidelity``: ``kind``, ``share`` (``resource / R``), ``folds_evaluated``
    (the folds' numbers, in order: ``folds`` and the per-fold lists hold those only) and
    ``train_bars`` (each evaluated fold's training bars).

    ``checkpoint`` (Hyperband promotions) is ``{"dir", "trial_id", "from_budget"}``: each
    fold's model is saved under ``dir/trial_<id>/`` and, where the family continues from
    checkpoints (``docs/continuation.md``), a promoted trial goes on from the model its
    previous rung saved instead of retraining; ``continued`` in the result says whether it did.
    A checkpoint that should be there and is not is an error (retraining would change the
    result of the families whose continuation is not equal to training from scratch).
    Checkpoints are for ``objective.fidelity: rounds`` only (a ``ConfigError`` otherwise).

    With ``objective.threshold_search`` and a configuration without ``trading.threshold``
    (:func:`searched_thresholds`), the fold models are trained once and their predictions
    backtested at each of the spec's ``thresholds`` (the validation folds only, no
    retraining): the result is the best threshold's (ties: the lowest), as
    :func:`evaluate_trial` of the configuration with that threshold fixed gives it, plus
    :data:`THRESHOLD_SEARCH`: the chosen threshold and every inner evaluation's score,
    per-bar Sharpe ratio and trades (each a trial for the deflated Sharpe ratio).
    """
    clock = _Stopwatch(timings)
    spec = ObjectiveSpec.of(spec)
    settings = spec.objective
    thresholds = searched_thresholds(params, spec)
    if thresholds:  # the threshold does not change the model: any one trains it
        params = with_threshold(params, thresholds[0])
    fidelity = fidelity_at(resource, spec)
    blocks, continued, evaluated, train_bars = [], [], [], []
    for block in fold_predictions(params, resource, seed, spec, device, checkpoint=checkpoint,
                                  clock=clock):
        blocks.append(block)
        continued.append(block.continued)
        evaluated.append(int(block.block.removeprefix("fold ")))
        train_bars.append(block.train_bars)
    market = load_market(spec)
    trial: dict[str, Any] | None = None
    inner: list[dict[str, Any]] = []
    for threshold in thresholds or [None]:
        trading = TradingParams.from_params(
            params if threshold is None else with_threshold(params, threshold))
        scored = _backtested(market, blocks, trading, settings, clock)
        if thresholds:
            inner.append({"threshold": threshold, "score": scored["score"],
                          "sharpe": trial_sharpe(np.asarray(scored["oos_returns"])),
                          "n_trades": scored["n_trades"]})
        # The best score; a tie keeps the lower threshold; a NaN score loses to any other.
        if trial is None or scored["score"] > trial["score"] or (
                math.isnan(trial["score"]) and not math.isnan(scored["score"])):
            trial = scored
    assert trial is not None
    out = {
        **{key: trial[key] for key in ("score", "metric", "penalty", "folds", "fold_sharpe",
                                       "fold_trades", "n_trades")},
        "rounds": int(fidelity.rounds),
        "continued": bool(continued) and all(continued),
        "budget_trained": _budget_trained(resource, checkpoint, continued),
        "returns_sha256": returns_digest(trial["oos_returns"]),
        "oos_returns": [float(r) for r in trial["oos_returns"]],
    }
    if fidelity.kind != "rounds":  # left out with rounds: results made before keep their bytes
        out["fidelity"] = {"kind": fidelity.kind, "share": fidelity.share,
                           "folds_evaluated": evaluated, "train_bars": train_bars}
    if thresholds:
        out[THRESHOLD_SEARCH] = {"chosen": trial["threshold"], "evaluations": inner}
    return out


def searched_thresholds(params: dict[str, Any], spec: ObjectiveSpec) -> list[float] | None:
    """The thresholds :func:`evaluate_trial` backtests ``params`` at: the spec's
    ``thresholds`` (``objective.threshold_search``) when the configuration has no
    ``trading.threshold`` of its own, else None (its own threshold, fixed: the holdout, the
    re-scores, the neighbours and production of a configuration whose threshold was chosen)."""
    trading = params.get("trading")
    if spec.thresholds is None or (isinstance(trading, dict) and "threshold" in trading):
        return None
    return list(spec.thresholds)


def with_threshold(params: dict[str, Any], threshold: float) -> dict[str, Any]:
    """``params`` with ``trading.threshold`` set to ``threshold`` (a copy)."""
    return {**params, "trading": {**_section(params, "trading"), "threshold": threshold}}


def _backtested(market: Market, blocks: list[Predictions], trading: TradingParams,
                settings: ObjectiveSettings, clock: _Stopwatch) -> dict[str, Any]:
    """The validation folds' predictions backtested with ``trading``: the per-fold metrics,
    the score (:func:`fold_score`) and the out-of-sample per-bar returns, in bar order."""
    per_fold, returns = [], []
    for block in blocks:
        with clock("backtest"):
            result = backtest_bars(market, block.bars, block.proba, trading, settings)
            per_fold.append(performance(result.returns, result.trades, result.positions,
                                        periods_per_year=market.periods_per_year))
        returns.append(result.returns)
    fold_trades = [int(m["trades"]) for m in per_fold]
    score, penalty = fold_score(per_fold, settings.metric)
    return {"score": score, "metric": settings.metric, "penalty": penalty, "folds": per_fold,
            "fold_sharpe": [float(m["sharpe"]) for m in per_fold], "fold_trades": fold_trades,
            "n_trades": int(sum(fold_trades)), "threshold": trading.threshold,
            "oos_returns": np.concatenate(returns)}


NO_TRADES_PENALTY = "no trades in any fold: score set to 0"


def fold_score(per_fold: list[dict[str, Any]], metric: str) -> tuple[float, str | None]:
    """A configuration's score from the :func:`~cryptosweep.trading.metrics.performance` of
    each walk-forward fold: the mean of ``metric`` over the folds, and ``None``; or 0 and
    :data:`NO_TRADES_PENALTY` when no fold traded at all (a configuration that never trades
    is not scored by its flat returns)."""
    if not sum(int(m["trades"]) for m in per_fold):
        return 0.0, NO_TRADES_PENALTY
    return float(np.mean([m[metric] for m in per_fold])), None


#: The holdout result's trades as ``[first bar, bars held, side]``: what the permutation test
#: matches exposure with. A journal written before 2026-12-07 holds ``holdout_trade_spans``
#: instead, which counted a time exit's bar too; its holdout is evaluated again on resume.
HELD_SPANS = "holdout_held_spans"


def evaluate_holdout(
    params: dict[str, Any], resource: float, seed: int, spec: ObjectiveSpec | dict[str, Any],
    device: str = "cpu", stress_multiplier: float | None = None,
) -> dict[str, Any]:
    """Train on the whole development part and backtest the holdout bars once.

    Training rows whose label ends at or after the holdout start are purged (labels are built
    from development bars only, so none do). Returns every metric of the holdout backtest with
    a ``holdout_`` prefix, ``holdout_bars``, :data:`HELD_SPANS` (each trade's first bar
    relative to the holdout start, the bars it held a position and its side: what a
    permutation test matches exposure with; :meth:`BacktestResult.held_spans`),
    ``holdout_returns`` (per bar) and, with ``stress_multiplier``, ``holdout_stress``: the same
    predictions backtested with fees and slippage multiplied by it (the cost stress of the
    deployment gate).
    """
    spec = ObjectiveSpec.of(spec)
    trading = TradingParams.from_params(params)
    block = holdout_predictions(params, resource, seed, spec, device)
    market = load_market(spec)
    result = backtest_bars(market, block.bars, block.proba, trading, spec.objective)
    metrics = performance(result.returns, result.trades, result.positions,
                          periods_per_year=market.periods_per_year)
    out: dict[str, Any] = {f"holdout_{name}": value for name, value in metrics.items()}
    out["holdout_bars"] = len(block.bars)
    out[HELD_SPANS] = result.held_spans()
    if stress_multiplier is not None:
        costly = spec.objective.model_copy(update={
            "fees_bps": spec.objective.fees_bps * stress_multiplier,
            "slippage_bps": spec.objective.slippage_bps * stress_multiplier})
        stressed = backtest_bars(market, block.bars, block.proba, trading, costly)
        out["holdout_stress"] = {"multiplier": float(stress_multiplier), **performance(
            stressed.returns, stressed.trades, stressed.positions,
            periods_per_year=market.periods_per_year)}
    out["holdout_returns"] = [float(r) for r in result.returns]
    return out


def evaluate_cpcv(
    params: dict[str, Any], resource: float, seed: int, spec: ObjectiveSpec | dict[str, Any],
    groups: int, test_groups: int, device: str = "cpu",
    splits_used: list[CPCVSplit] | None = None,
) -> dict[str, Any]:
    """Combinatorial purged cross-validation of one configuration on the development bars
    (AFML ch. 12; :mod:`cryptosweep.trading.cpcv`).

    The labels of the development bars (from those bars only) give each bar's label end;
    :func:`~cryptosweep.trading.cpcv.cpcv_splits` cuts the bars into ``groups`` groups and makes
    the ``C(groups, test_groups)`` splits, purged and embargoed with the objective's
    ``embargo_bars``. Each split's model is fitted from scratch (``resource``, ``seed``) on its
    training bars with complete features and labels (weighted as ``objective.sample_weights``
    says, as a walk-forward fold's) and predicts its test bars; the
    predictions are stitched into the ``φ[groups, test_groups]`` paths
    (:func:`~cryptosweep.trading.cpcv.assemble_paths`), and each path is backtested over the
    development bars from the first with every feature (after the features' warm-up, which
    no model predicts) with the configuration's trading rules.

    Every split must keep ``objective.min_train_bars`` training bars after purging and embargo,
    the rule of a walk-forward fold (a ``ConfigError`` otherwise; :func:`check_cpcv` refuses
    such settings before a run).

    Returns ``groups``, ``test_groups``, ``n_splits``, ``n_paths``, ``metric``, per path
    ``path_sharpe`` (annualised), ``path_scores`` (the configured metric), ``path_trades``, and
    ``train_bars`` per split. ``splits_used``, when given, receives the splits (for tests).
    """
    spec = ObjectiveSpec.of(spec)
    settings = spec.objective
    trading = TradingParams.from_params(params)
    rounds = full_rounds(resource, settings.rounds_per_unit)
    market = load_market(spec)
    n_dev = market.holdout_start
    labels, label_end = training_labels(market, trading, settings, n_dev)
    # Every split checked before any is fitted, then made again one at a time to be fitted:
    # never all C(groups, test_groups) training sets at once (iter_purged_splits).
    short = next((split for split in _cpcv_splits(n_dev, groups, test_groups, label_end,
                                                  settings.embargo_bars)
                  if len(split.train) < settings.min_train_bars), None)
    if short is not None:
        raise _short_split(short, groups, settings,
                           f"keeps {len(short.train)} bars after purging and embargo")
    repro = trial_reproducibility(spec, seed, device)
    bounds = group_bounds(n_dev, groups)
    predicted: list[dict[int, np.ndarray]] = []
    train_bars = []
    splits = []  # their test groups only, for assemble_paths
    nothing = np.empty(0, dtype="int64")
    for index, split in enumerate(_cpcv_splits(n_dev, groups, test_groups, label_end,
                                               settings.embargo_bars)):
        if splits_used is not None:
            splits_used.append(split)
        splits.append(CPCVSplit(test_groups=split.test_groups, train=nothing, test=nothing))
        train = usable_rows(split.train, market.features, labels, f"CPCV split {index}")
        train_bars.append(len(train))
        # Weighted as the walk-forward folds, the holdout and production weight it: without
        # them the paths judged another model than the one deployed.
        model = fit_entry_model(params, repro, rounds, market.features, labels, train,
                                sample_weight=training_weights(settings, train, label_end))
        predicted.append({g: predict_probabilities(model, market.features,
                                                   np.arange(*bounds[g], dtype="int64"))
                          for g in split.test_groups})
    # From the first bar with every feature: the features' warm-up before it (167 bars) has no
    # prediction, and its flat returns pulled every path's Sharpe ratio about 1 % towards 0.
    first = int(np.argmax(np.isfinite(market.features[:n_dev]).all(axis=1)))
    bars = np.arange(first, n_dev, dtype="int64")
    sharpe, scores, trades = [], [], []
    for path in assemble_paths(splits, groups, test_groups):
        proba = np.concatenate([predicted[index][g] for index, g in path])[first:]
        result = backtest_bars(market, bars, proba, trading, settings)
        metrics = performance(result.returns, result.trades, result.positions,
                              periods_per_year=market.periods_per_year)
        sharpe.append(float(metrics["sharpe"]))
        scores.append(float(metrics[settings.metric]))
        trades.append(int(metrics["trades"]))
    return {"groups": int(groups), "test_groups": int(test_groups), "n_splits": len(splits),
            "n_paths": len(sharpe), "metric": settings.metric, "path_sharpe": sharpe,
            "path_scores": scores, "path_trades": trades, "train_bars": train_bars}


def check_cpcv(spec: ObjectiveSpec | dict[str, Any], groups: int, test_groups: int,
               longest_holding: int) -> None:
    """Fail fast, before a sweep starts, on ``evidence.cpcv`` settings some split of
    :func:`evaluate_cpcv` could not train with: each split must keep ``objective.min_train_bars``
    bars with complete features (after purging, embargo and the features' warm-up), else a
    ``ConfigError`` naming ``evidence.cpcv.test_groups`` (or ``objective.embargo_bars`` when
    the split would keep enough without the embargo).

    The splits are built as the run builds them, with the labels ending as late as a trial can
    draw them: a time exit ``longest_holding`` bars on (:mod:`~cryptosweep.trading.labels`:
    ``label_end[t] <= t + 1 + holding_period``). Later label ends only purge more, so every
    trial's splits keep at least these bars.
    """
    spec = ObjectiveSpec.of(spec)
    settings = spec.objective
    market = load_market(spec)
    n_dev = market.holdout_start
    complete = np.isfinite(market.features[:n_dev]).all(axis=1)
    label_end = np.arange(n_dev, dtype="int64") + 1 + int(longest_holding)

    def first_short(embargo_bars: int) -> tuple[CPCVSplit, int] | None:
        for split in _cpcv_splits(n_dev, groups, test_groups, label_end, embargo_bars):
            usable = int(complete[split.train].sum())
            if usable < settings.min_train_bars:
                return split, usable
        return None

    found = first_short(settings.embargo_bars)
    if found is None:
        return
    split, usable = found
    key = ("objective.embargo_bars" if settings.embargo_bars and first_short(0) is None
           else "evidence.cpcv.test_groups")
    raise _short_split(
        split, groups, settings,
        f"keeps {len(split.train)} bars, {len(split.train) - usable} of them in the features' "
        f"warm-up, after purging labels of up to {longest_holding} bars and the "
        f"objective.embargo_bars={settings.embargo_bars} embargo: {usable} bars with complete "
        "features", key)


def _cpcv_splits(n_dev: int, groups: int, test_groups: int, label_end: np.ndarray,
                 embargo_bars: int) -> Iterator[CPCVSplit]:
    """:func:`~cryptosweep.trading.cpcv.iter_purged_splits` (one split at a time), its
    ``ValueError`` a ``ConfigError``."""
    try:
        return iter_purged_splits(n_dev, groups, test_groups, label_end, embargo_bars)
    except ValueError as exc:
        raise ConfigError(f"evidence.cpcv: {exc}") from None


def _short_split(split: CPCVSplit, groups: int, settings: ObjectiveSettings, kept: str,
                 key: str = "evidence.cpcv.test_groups") -> ConfigError:
    """The error for a CPCV split that trains on fewer than ``objective.min_train_bars``."""
    trained = [g for g in range(groups) if g not in split.test_groups]
    names = ", ".join(str(g) for g in trained)
    remedy = ("a smaller objective.embargo_bars" if key == "objective.embargo_bars"
              else "fewer evidence.cpcv.test_groups (or more evidence.cpcv.groups, up to 16)")
    return ConfigError(
        f"{key}: the split that trains on group{'s' if len(trained) > 1 else ''} {names} "
        f"(testing the other {len(split.test_groups)} of {groups}) {kept}, fewer than "
        f"objective.min_train_bars={settings.min_train_bars} (a CPCV split needs as many as a "
        f"walk-forward fold); use {remedy} or more data"
    )


def evaluate_baselines(spec: ObjectiveSpec | dict[str, Any]) -> dict[str, Any]:
    """Flat and buy-and-hold (:mod:`cryptosweep.trading.baselines`) on the trials' own bars:
    every walk-forward test block and the holdout, with the spec's fees, slippage and bar
    interval.

    Returns ``{"flat": ..., "buy_and_hold": ...}``, each with ``folds`` (every metric of
    :func:`~cryptosweep.trading.metrics.performance` per test block, as in a trial's
    ``folds``), ``metric`` and ``score`` (their mean of the configured metric, as a trial's
    score) and ``holdout`` (the ``holdout_*`` metrics and ``holdout_bars``, as
    :func:`evaluate_holdout` gives them; ``None`` without a holdout) and ``returns``: the
    per-bar returns, ``validation`` (the test blocks one after the other, as a trial's
    journaled validation returns) and ``holdout`` (``None`` without one), which the sweep
    journals (:meth:`cryptosweep.records.journal.Journal.put_baseline_returns`) rather than putting
    them in its results. Buy-and-hold enters at each block's first open and exits at its last
    close: one round trip per block.
    """
    spec = ObjectiveSpec.of(spec)
    settings = spec.objective
    market = load_market(spec)
    n_dev, n_all = market.holdout_start, len(market.open_)

    def run(name: str, bars: slice) -> BacktestResult:
        if name == "flat":
            return flat(bars.stop - bars.start)
        return buy_and_hold(market.open_[bars], market.high[bars], market.low[bars],
                            market.close[bars], fees_bps=settings.fees_bps,
                            slippage_bps=settings.slippage_bps)

    def metrics(result: BacktestResult) -> dict[str, Any]:
        return performance(result.returns, result.trades, result.positions,
                           periods_per_year=market.periods_per_year)

    out: dict[str, Any] = {}
    for name in BASELINES:
        blocks = [run(name, slice(start, stop))
                  for start, stop in test_blocks(n_dev, settings.folds)]
        folds = [metrics(block) for block in blocks]
        holdout = holdout_returns = None
        if n_dev < n_all:
            kept = run(name, slice(n_dev, n_all))
            holdout = {f"holdout_{key}": value for key, value in metrics(kept).items()}
            holdout["holdout_bars"] = n_all - n_dev
            holdout_returns = kept.returns
        out[name] = {
            "metric": settings.metric,
            "score": float(np.mean([fold[settings.metric] for fold in folds])),
            "folds": folds,
            "holdout": holdout,
            "returns": {"validation": np.concatenate([block.returns for block in blocks]),
                        "holdout": holdout_returns},
        }
    return out


def fold_predictions(
    params: dict[str, Any], resource: float, seed: int, spec: ObjectiveSpec | dict[str, Any],
    device: str = "cpu", *, checkpoint: dict[str, Any] | None = None,
    clock: _Stopwatch | None = None,
) -> Iterator[Predictions]:
    """Per purged walk-forward fold of the development bars, in order: the model fitted on the
    fold's training rows (as :func:`evaluate_trial` fits it, checkpoints included) and its
    probabilities on the fold's test block. Lazy: each fold is fitted when it is asked for.
    Below the full budget, the folds and training bars ``objective.fidelity`` keeps
    (:func:`~cryptosweep.trading.fidelity.fidelity_at`)."""
    clock = clock or _Stopwatch(None)
    spec = ObjectiveSpec.of(spec)
    settings = spec.objective
    trading = TradingParams.from_params(params)
    fidelity = fidelity_at(resource, spec)
    rounds = fidelity.rounds
    if checkpoint and fidelity.kind != "rounds":
        raise ConfigError(f"objective.fidelity {fidelity.kind}: models continue from "
                          "checkpoints with the rounds fidelity only")
    with clock("data"):
        market = load_market(spec)
    with clock("labels"):
        labels, label_end = training_labels(market, trading, settings, market.holdout_start)
    try:
        folds = walk_forward_folds(
            market.holdout_start, settings.folds, label_end, settings.embargo_bars,
            settings.min_train_bars,
        )
    except ValueError as exc:
        raise ConfigError(f"objective: {exc}") from None
    repro = trial_reproducibility(spec, seed, device)
    for k in fidelity.folds(len(folds)):
        fold = folds[k]
        train = usable_rows(fidelity.training_bars(fold.train, settings.min_train_bars),
                            market.features, labels, f"fold {k}")
        save_to, init_from = _checkpoint_files(checkpoint, params, k, rounds,
                                               settings.rounds_per_unit)
        model = fit_entry_model(params, repro, rounds, market.features, labels, train,
                                clock=clock, save_to=save_to, init_from=init_from,
                                sample_weight=training_weights(settings, train, label_end))
        proba = predict_probabilities(model, market.features, fold.test, clock)
        yield Predictions(block=f"fold {k}", bars=fold.test,
                          times=market.ohlcv.index[fold.test], proba=proba,
                          continued=bool(getattr(model, "last_fit_continued", False)),
                          train_bars=len(train))


def holdout_predictions(
    params: dict[str, Any], resource: float, seed: int, spec: ObjectiveSpec | dict[str, Any],
    device: str = "cpu",
) -> Predictions:
    """The model trained on every development bar (:func:`train_before` the holdout start)
    and its probabilities on the holdout bars: what :func:`evaluate_holdout` backtests."""
    spec = ObjectiveSpec.of(spec)
    if not spec.data.has_holdout:
        raise ConfigError("data.holdout_fraction is 0: there is no holdout to evaluate")
    market = load_market(spec)
    rounds = full_rounds(resource, spec.objective.rounds_per_unit)
    n_dev, n_all = market.holdout_start, len(market.open_)
    repro = trial_reproducibility(spec, seed, device)
    model, _ = train_before(market, n_dev, params, rounds, repro, spec.objective,
                            "holdout training")
    test = np.arange(n_dev, n_all, dtype="int64")
    proba = predict_probabilities(model, market.features, test)
    return Predictions(block="holdout", bars=test, times=market.ohlcv.index[test], proba=proba)


def configuration_predictions(
    params: dict[str, Any], resource: float, seed: int, spec: ObjectiveSpec | dict[str, Any],
    device: str = "cpu",
) -> list[Predictions]:
    """What a configuration predicted out of sample: one :class:`Predictions` per validation
    fold (as the sweep scored it, trained from scratch) and, when the data has a holdout, the
    holdout (as the sweep's holdout evaluation scored it)."""
    spec = ObjectiveSpec.of(spec)
    blocks = list(fold_predictions(params, resource, seed, spec, device))
    if spec.data.has_holdout:
        blocks.append(holdout_predictions(params, resource, seed, spec, device))
    return blocks


def trial_reproducibility(spec: ObjectiveSpec, seed: int, device: str = "cpu"
                          ) -> ReproducibilityManager:  # fmt: skip
    """The framework switches of one trial: its seed, the config's ``gpu_settings``
    (determinism, memory share) and the fixed thread count."""
    return ReproducibilityManager(
        seed=seed, deterministic=spec.deterministic, device=device,
        threads=spec.objective.threads_per_trial, memory_fraction=spec.gpu_memory_fraction,
        concurrent_trials=spec.trials_per_gpu,
    )


def returns_digest(returns: np.ndarray) -> str:
    """SHA-256 of per-bar returns as little-endian float64: equal digests, equal bits."""
    return hashlib.sha256(np.ascontiguousarray(returns, dtype="<f8").tobytes()).hexdigest()


def check_spec(spec: ObjectiveSpec | dict[str, Any]) -> dict[str, Any]:
    """Fail fast, before a sweep starts: load the data (a bad file is a ``DataError``), check
    that the folds fit the development bars (else a ``ConfigError``) and that enough of them
    have every feature finite for a fold to train on (constant prices, or prices and volumes
    too large or too small for float64 arithmetic, have none: a ``DataError``, not a sweep in
    which every evaluation fails), and describe the data.

    Returns the data's summary and a SHA-256 fingerprint of its file(s), which resume compares
    so that a run is never continued on different candles.
    """
    spec = ObjectiveSpec.of(spec)
    settings = spec.objective
    market = load_market(spec)
    n_dev = market.holdout_start
    try:
        walk_forward_folds(n_dev, settings.folds, np.arange(1, n_dev + 1),
                           settings.embargo_bars, settings.min_train_bars)
    except ValueError as exc:
        raise ConfigError(f"objective: {exc}") from None
    _check_features_usable(market, spec.data.path)
    _check_warm_up(market, settings)
    index = market.ohlcv.index

    def span(start: int, stop: int) -> dict[str, Any]:
        return {"start": start, "stop": stop, "first_bar": index[start].isoformat(),
                "last_bar": index[stop - 1].isoformat()}

    described = {
        "path": spec.data.path or f"<bundled sample>/{sample_data_path().name}",
        "sha256": data_fingerprint(spec.data.path),
        "bars": len(index),
        "first_bar": index[0].isoformat(),
        "last_bar": index[-1].isoformat(),
        "bar_interval": format_interval(market.bar_interval),
        "periods_per_year": market.periods_per_year,
        "development_bars": n_dev,
        "holdout_bars": len(index) - n_dev,
        "holdout_first_bar": index[n_dev].isoformat() if n_dev < len(index) else None,
        "folds": [span(start, stop) for start, stop in test_blocks(n_dev, settings.folds)],
        "holdout": span(n_dev, len(index)) if n_dev < len(index) else None,
    }
    if spec.data.start is not None or spec.data.end is not None:
        described["range"] = {"start": spec.data.start, "end": spec.data.end}
    return described


def _check_features_usable(market: Market, path: str | None) -> None:
    """After the features' warm-up (their longest window), nearly every bar has every feature
    finite. Where none has, or most have not, the data themselves defeat float64 arithmetic
    (constant prices: zero variance; prices or volumes near 1e300 or 1e-300: overflow and
    underflow), and no evaluation could run: a ``DataError`` naming the features."""
    development = market.features[:market.holdout_start]
    finite = np.isfinite(development)
    complete = finite.all(axis=1)
    if complete.any() and complete[int(np.argmax(complete)):].mean() >= 0.5:
        return
    missing = (~finite).sum(axis=0)
    worst = [str(market.features_frame.columns[i]) for i in np.argsort(-missing, kind="stable")
             if missing[i] > len(development) // 2][:3] or ["none in particular"]
    raise DataError(
        f"{path or sample_data_path()}: {int(complete.sum())} of {len(development)} development "
        f"bars have every feature finite (mostly not finite: {', '.join(worst)}): the prices or "
        "volumes are constant, or too large or too small for float64 arithmetic"
    )


def _check_warm_up(market: Market, settings: ObjectiveSettings) -> None:
    """The first fold must have ``min_train_bars`` bars with complete features before its test
    block (less the embargo): the features' warm-up (the longest rolling window) comes first,
    and a fold that trains on warm-up bars only would fail every trial."""
    complete = np.isfinite(market.features).all(axis=1)
    first_test = test_blocks(market.holdout_start, settings.folds)[0][0]
    window = max(0, first_test - settings.embargo_bars)
    usable = int(complete[:window].sum())
    if usable < settings.min_train_bars:
        warm_up = int(np.argmax(complete)) if complete.any() else len(complete)
        need = f"the features need {warm_up} bars of warm-up"
        if WARM_UP_BARS < warm_up < len(complete):  # not the warm-up: the data (zero volume)
            late = str(market.features_frame.columns[
                int(np.argmax(~np.isfinite(market.features[warm_up - 1])))])
            need = (f"{late} is not finite until bar {warm_up} "
                    f"({market.features_frame.index[warm_up].isoformat()}), after the "
                    f"{WARM_UP_BARS} bars of the features' warm-up: constant volumes or prices "
                    "over its window?")
        raise ConfigError(
            f"objective: fold 0 would train on {usable} bars with complete features, fewer than "
            f"objective.min_train_bars={settings.min_train_bars} (its training window is the "
            f"first {window} bars and {need}); use fewer "
            "objective.folds, a smaller data.holdout_fraction or more data"
        )


def data_fingerprint(path: str | None) -> str:
    """SHA-256 over the bytes of every file the data path stands for, in load order."""
    digest = hashlib.sha256()
    for file in data_files(Path(path) if path else sample_data_path()):
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- steps


