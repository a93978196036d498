"""The evidence a winner is judged on, assembled at the end of a sweep: the night's trials
written to the trial ledger and counted with the nights before, the statistics of selection
(:mod:`cryptosweep.judging.selection`), the holdout tested with power
(:mod:`cryptosweep.judging.holdout_power`), the look at the holdout recorded, and the
champion compared on the same bars (:mod:`cryptosweep.judging.comparison`).

The result is the ``statistics`` block of the results file::

    {"ledger": {"n_trials", "n_evaluations", "n_runs", "sharpe_variance", "window_days"},
     "selection": {...},  # DSR with the ledger's N and with the effective N; MinBTL
     "holdout": {...},    # PSR(0), permutation p-value, alpha t-statistic, MinTRL
     "holdout_looks": int,
     "rescore": {...}, "neighbourhood": {...}}
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cryptosweep.core.config import SweepConfig
from cryptosweep.core.config_files import validate_config
from cryptosweep.core.errors import CryptosweepError, InfrastructureError, UserError
from cryptosweep.core.vocabulary import THRESHOLD_SEARCH
from cryptosweep.execution.worker import Outcome
from cryptosweep.judging.comparison import jobson_korkie_memmel, sharpe_above_flat
from cryptosweep.judging.holdout_power import holdout_evidence
from cryptosweep.judging.selection import selection_evidence
from cryptosweep.records.evaluations import EvalRequest, EvaluationRow, configured
from cryptosweep.records.journal import Journal
from cryptosweep.records.ledger import (
    LEDGER_NAME,
    LedgerTrial,
    Market,
    TrialLedger,
    config_key,
    run_key,
)
from cryptosweep.records.results import RESULTS_GLOB
from cryptosweep.sweep.rescoring import NEIGHBOUR, RESCORE, neighbours, rescore_seed
from cryptosweep.trading.metrics import trial_sharpe
from cryptosweep.trading.objective import HELD_SPANS
from cryptosweep.trading.steps import load_market

log = logging.getLogger(__name__)


def common_bars(series: list[np.ndarray]) -> np.ndarray:
    """The ``T × N`` matrix of validation returns over the bars every one of ``series`` covers:
    the last ``T`` (the shortest length) of each. Returns are in bar order and every fidelity
    evaluates the most recent folds (``objective.fidelity: folds`` at a low budget, a suffix of
    the test blocks), so equal lengths are the same bars; with ``rounds`` and ``bars`` every
    evaluation covers every test block and nothing is cut."""
    shortest = min(len(one) for one in series)
    return np.column_stack([one[len(one) - shortest:] for one in series])


def ledger_path(config: SweepConfig, run_dir: Path) -> Path:
    """``deployment.ledger``; else ``trials.db`` beside the champion (the models folder);
    else in the run folder (a run on its own counts its own trials)."""
    if config.deployment.ledger:
        return Path(config.deployment.ledger)
    if config.deployment.champion_dir:
        return Path(config.deployment.champion_dir).parent / LEDGER_NAME
    return run_dir / LEDGER_NAME


@dataclass(frozen=True)
class RunLedger:
    """Where a run counts its trials and looks (:func:`ledger_path` of its config),
    the name its rows carry there (:func:`~cryptosweep.records.ledger.run_key`), its ``data``
    description and its config."""

    path: Path
    run: str
    data: dict[str, Any]
    config: SweepConfig

    @classmethod
    def of(cls, config: SweepConfig, run_dir: Path, data: dict[str, Any],
           created_at: float | None) -> RunLedger:
        """The ledger of the run in ``run_dir`` made with ``config`` at ``created_at``."""
        return cls(ledger_path(config, run_dir), run_key(run_dir.name, created_at), data,
                   config)

    def record_look(self, source: str, what: str) -> None:
        """Record a look at the run's holdout bars (``source``: who looked, ``what``)."""
        with TrialLedger(self.path) as ledger:
            ledger.record_look(self.run, source, what, self.market("holdout"))

    def market(self, part: str = "development") -> Market:
        """The run's market (``part``: ``development`` or ``holdout`` bars), with the probe of
        its candles (as the sweep recorded it) when they can still be read."""
        market = Market.of(self.data, part)
        try:
            return market.probed(load_market(self.config.objective_spec()).ohlcv)
        except (OSError, ValueError, CryptosweepError):  # moved or changed since: by name
            return market


def run_ledger(run_dir: Path) -> RunLedger | None:
    """The :class:`RunLedger` of the run in ``run_dir``, from its results file; None when it
    has none that can be read. What comes after a sweep (the explorer, ``evaluate``, ``train
    --rank``) records there, where the sweep did: beside the champion in the nightly's layout,
    not beside the run folder."""
    run_dir = run_dir.resolve()
    results_files = sorted(run_dir.glob(RESULTS_GLOB))
    if not results_files:
        return None
    try:
        results = json.loads(results_files[-1].read_text(encoding="utf-8"))
        config = validate_config(results["config"], "the run's config")
        created_at = (results.get("run") or {}).get("created_at")
    except (OSError, ValueError, KeyError, TypeError, UserError):
        return None
    found = RunLedger.of(config, run_dir, results.get("data") or {}, created_at)
    if not found.path.is_absolute():  # a run made before such paths were stored absolute:
        return None  # where it counted depends on the directory it ran from, unknown here
    return found


def night_trials(config: SweepConfig, seed: int, journal: Journal, rows: list[EvaluationRow],
                 leaders: list[EvaluationRow], winner: EvaluationRow | None,
                 validation: dict[int, np.ndarray]) -> list[LedgerTrial]:
    """Every evaluation of the night as ledger rows: the search's (with the thresholds of
    their inner searches: :func:`inner_trials`), the re-scores (the first only when it was
    run: a reused evaluation is the search's own) and the neighbours."""
    trials = [trial for row in rows if row.status == "done"
              for trial in evaluation_trials(row, validation.get(row.eval_id))]
    for index in range(config.deployment.rescore_seeds):
        kind = RESCORE.format(index)
        done, returns = journal.get_extra(kind), journal.get_extra_returns(kind)
        for row in leaders:
            if row.eval_id in done:
                trials.append(LedgerTrial("rescore", f"{kind}:{row.eval_id}",
                                          config_key(row.params), rescore_seed(seed, row, index),
                                          row.budget, trial_sharpe(returns.get(row.eval_id))))
    if winner is not None and config.deployment.neighbourhood:
        for index, neighbour in enumerate(neighbours(config, winner.params)):
            kind = NEIGHBOUR.format(index)
            if winner.eval_id in journal.get_extra(kind):
                returns = journal.get_extra_returns(kind).get(winner.eval_id)
                trials.append(LedgerTrial("neighbour", f"{kind}:{winner.eval_id}",
                                          config_key(neighbour["params"]), winner.seed,
                                          winner.budget, trial_sharpe(returns)))
    return trials


def clustered_series(config: SweepConfig, seed: int, rows: list[EvaluationRow],
                     leaders: list[EvaluationRow], validation: dict[int, np.ndarray]
                     ) -> tuple[list[np.ndarray], set[str], set[tuple[str, int]]]:
    """What the effective number of trials clusters: one validation return series per
    configuration the search finished (its evaluation at the largest budget it reached: a
    configuration promoted through Hyperband's rungs is one trial, and its rungs' near copies
    would lend the clustering a structure the configurations do not have); the configuration
    keys those series stand for; and the (configuration key, seed) of the re-scores of the
    top-k whose configuration is among them (another seed of a configuration is a near copy of
    it, counted in its cluster). Every other ledger trial counts beside the clusters."""
    largest: dict[str, EvaluationRow] = {}
    for row in rows:
        if row.status != "done" or row.eval_id not in validation:
            continue
        key = config_key(row.params)
        kept = largest.get(key)
        if kept is None or (row.budget, row.eval_id) > (kept.budget, kept.eval_id):
            largest[key] = row
    keys = sorted(largest)
    seeds = {(key, rescore_seed(seed, row, index))
             for row, key in ((row, config_key(row.params)) for row in leaders)
             if key in largest for index in range(config.deployment.rescore_seeds)}
    return [validation[largest[key].eval_id] for key in keys], set(keys), seeds


def evaluation_trials(row: EvaluationRow, returns: np.ndarray | None) -> list[LedgerTrial]:
    """A finished search evaluation (``row`` configured: :func:`configured`) as ledger rows:
    itself, with the per-bar Sharpe ratio of its validation ``returns``, and each threshold
    its inner threshold search backtested besides the one it chose."""
    return [LedgerTrial("search", f"eval:{row.eval_id}", config_key(row.params), row.seed,
                        row.budget, trial_sharpe(returns)), *inner_trials([row])]


class SearchLedger:
    """The run's search evaluations written to its trial ledger as each finishes, before the
    journal records it (the end of the sweep writes them all again, which adds nothing): a run
    killed and never resumed, or whose folder was deleted, still counts against every later
    winner on its market. An evaluation the journal never recorded (a kill between the two
    writes) is run again on resume with the same seed and result: its row is the same row.
    One transaction per evaluation (0.08 ms on this project's machine: ``benchmarks/
    RESULTS.md``; a batch written every 10 ms was cheaper but left rows unwritten until the
    next evaluation finished, a whole trial later)."""

    def __init__(self, config: SweepConfig, run_dir: Path, journal: Journal) -> None:
        self._recorded_at = float(journal.get_meta("created_at"))
        where = RunLedger.of(config, run_dir, journal.get_meta("data", None) or {},
                             self._recorded_at)
        self.path, self._run, self._market = where.path, where.run, where.market()
        try:
            self._ledger = TrialLedger(self.path)
        except (OSError, sqlite3.Error) as exc:
            raise InfrastructureError(
                f"the trial ledger {self.path} could not be opened ({exc})") from exc

    def record(self, request: EvalRequest, outcome: Outcome) -> None:
        """Record ``outcome``, a done evaluation of ``request``; an error writing the ledger is
        the machine's, not the trial's."""
        row = configured(EvaluationRow(
            eval_id=request.eval_id, trial_id=request.trial_id, params=request.params,
            budget=request.budget, seed=request.seed, tags=request.tags, status=outcome.status,
            score=outcome.score, metrics=outcome.metrics, error=None, worker=outcome.worker,
            device=outcome.device, started_at=outcome.started_at,
            finished_at=outcome.finished_at, attempts=1))
        returns = None if outcome.returns is None else np.asarray(outcome.returns, dtype="<f8")
        try:
            self._ledger.record_trials(self._run, self._market, evaluation_trials(row, returns),
                                       now=self._recorded_at)
        except (OSError, sqlite3.Error) as exc:
            raise InfrastructureError(
                f"the trial ledger {self.path} could not be written ({exc}); evaluation "
                f"{request.eval_id} is not counted as a result and runs again on --resume"
            ) from exc

    def close(self) -> None:
        self._ledger.close()


def inner_trials(rows: list[EvaluationRow]) -> list[LedgerTrial]:
    """The thresholds each search evaluation's inner threshold search backtested besides the
    one it chose (``objective.threshold_search``; ``rows`` configured, their params with the
    chosen threshold): one ``inner`` trial each, with its per-bar Sharpe ratio, so that a
    trial that tried k thresholds counts k."""
    trials = []
    for row in rows:
        search = (row.metrics or {}).get(THRESHOLD_SEARCH) if row.status == "done" else None
        for index, inner in enumerate((search or {}).get("evaluations", [])):
            if inner["threshold"] == search["chosen"]:
                continue  # the search row itself
            params = {**row.params, "trading": {**row.params["trading"],
                                                "threshold": inner["threshold"]}}
            trials.append(LedgerTrial("inner", f"eval:{row.eval_id}:threshold:{index}",
                                      config_key(params), row.seed, row.budget,
                                      inner["sharpe"]))
    return trials


def statistics(
    config: SweepConfig, seed: int, run_dir: Path, journal: Journal,
    rows: list[EvaluationRow], leaders: list[EvaluationRow], winner: EvaluationRow | None,
    winner_returns: np.ndarray | None, winner_holdout: dict[str, Any] | None,
    data: dict[str, Any], now: float,
) -> dict[str, Any]:
    """The ``statistics`` block (see the module docstring); the ledger is written first."""
    validation = journal.get_returns("validation")
    candles = load_market(config.objective_spec()).ohlcv  # cached: the sweep's own
    market = Market.of(data).probed(candles)
    holdout = Market.of(data, "holdout").probed(candles)
    where = RunLedger.of(config, run_dir, data, now)  # now: the run's creation time
    path, run = where.path, where.run
    series, clustered_configs, clustered_seeds = clustered_series(config, seed, rows, leaders,
                                                                  validation)
    with TrialLedger(path) as ledger:
        new = ledger.record_trials(run, market,
                                   night_trials(config, seed, journal, rows, leaders, winner,
                                                validation), now=now)
        count = ledger.trials_on(market, config.deployment.trial_window_days, now=now,
                                 clustered_configs=clustered_configs,
                                 clustered_seeds=clustered_seeds)
        if config.data.has_holdout and leaders:
            ledger.record_look(run, "sweep", f"top {len(leaders)} at the end of the "
                               "sweep", holdout, now=now)
        looks = ledger.looks_at(holdout) if config.data.has_holdout else []
    log.info("trial ledger %s: %d row(s) added at the end of the sweep (the search's as they "
             "finished); %d trial(s) count against the winner: the distinct configurations and "
             "extra seeds of %d evaluation(s) by %d run(s) on this market in the last %g days",
             path, new, count.n_trials, count.n_rows, count.n_runs, count.window_days)
    out: dict[str, Any] = {"ledger": count.to_dict(), "holdout_looks": len(looks)}
    if winner is None or winner_returns is None:
        return out
    matrix = common_bars(series) if len(series) >= 2 else None
    out["selection"] = selection_evidence(
        winner_returns, max(count.n_trials, 1), count.sharpe_variance, matrix,
        data.get("periods_per_year"), dsr_variance=config.deployment.dsr_variance, seed=seed,
        n_unclustered=count.n_unclustered)
    out["selection"]["trial_count"] = config.deployment.trial_count  # what the gate judges
    if winner_holdout is not None:
        market_returns = journal.get_baseline_returns("holdout").get("buy_and_hold")
        holdout_returns = journal.get_returns("holdout").get(winner.eval_id)
        if holdout_returns is not None:
            costs = config.objective.fees_bps + config.objective.slippage_bps
            out["holdout"] = holdout_evidence(
                holdout_returns, winner_holdout.get(HELD_SPANS) or [],
                market_returns, cost_per_trade=2.0 * costs / 1e4, seed=seed)
            out["holdout"]["looks"] = len(looks)
    return out


def paired_test(winner_returns: np.ndarray | None, champion_returns: np.ndarray | None
                ) -> dict[str, Any]:
    """Is the winner's Sharpe ratio higher than the champion's on the same holdout bars?
    Jobson & Korkie (1981) with Memmel's (2003) correction, one-sided."""
    if winner_returns is None or champion_returns is None:
        return {"p_value": None, "why_not": "no per-bar holdout returns of both"}
    if len(winner_returns) != len(champion_returns):
        return {"p_value": None, "why_not": "the two holdouts are not the same bars"}
    champion = np.asarray(champion_returns, dtype=float)
    # A champion flat on every holdout bar (it never traded) made the paired test refuse
    # ("constant"), and the gate then refused every winner, while the champion's score of 0
    # passed its keep-gate: it was never replaced. Its Sharpe ratio is the flat baseline's 0.
    flat = champion.size > 0 and not np.any(champion)
    method = "Jobson-Korkie-Memmel" + (" against a flat champion (Sharpe ratio 0)" if flat
                                       else "")
    try:
        test = (sharpe_above_flat(np.asarray(winner_returns)) if flat
                else jobson_korkie_memmel(np.asarray(winner_returns), champion))
    except ValueError as exc:
        return {"p_value": None, "why_not": str(exc)}
    return {"method": method, "p_value": test.p_value, "z": test.statistic,
            "sharpe_winner": test.sharpe_a, "sharpe_champion": test.sharpe_b}
