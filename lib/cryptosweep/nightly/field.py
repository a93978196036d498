"""The champion in the field: each night, what the deployed champion decided on the bars that
arrived after its training ended, traded by the backtest's own rules (paper trading), and
whether that live track still looks like what validation promised.

* **Paper-trading ledger** ``models/paper_trades.jsonl``: one JSON line per closed trade of
  the champion on its live bars (bars after the manifest's ``data.last_bar``), by
  :meth:`~cryptosweep.production.model.TrainedModel.backtest_details` (fills at the next open,
  stops and take profits on high/low, fees and slippage, flat at the first live bar); a trade
  is written once (keyed by the champion's manifest digest and entry time). A trade still open
  at the last bar is not written until it closes.
* **Live track against validation**: the probabilistic Sharpe ratio (Bailey & López de Prado
  2012) of the live per-bar returns against the champion's validated Sharpe ratio (its holdout
  Sharpe, else its validation score, per bar): the probability that its true Sharpe ratio is
  still at least what was validated. Near 0.5 when the live track is what validation said.
* **Feature drift**: the population stability index (:mod:`cryptosweep.judging.drift`) of
  each feature, training bars against live bars; the largest is reported (above 0.25: a major
  shift). Drift is reported, never a reason to demote on its own.
* **Kill switch** (``deployment.kill_switch``,
  :class:`~cryptosweep.core.settings.KillSwitchSettings`): with at least ``min_live_bars``
  (48) live bars and ``min_live_trades`` (5) closed trades, a PSR against the validated Sharpe
  below ``max_psr`` (0.05: 95% confidence that the champion's true Sharpe ratio is now below
  the validated one) demotes the champion
  (:func:`~cryptosweep.nightly.promotion.demote_champion`).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cryptosweep.core.files import append_lines, read_json_lines
from cryptosweep.core.settings import KillSwitchSettings
from cryptosweep.judging.drift import MAJOR_SHIFT, population_stability_index
from cryptosweep.judging.overfitting import probabilistic_sharpe_ratio
from cryptosweep.nightly.promotion import CHAMPION, demote_champion, manifest_digest
from cryptosweep.trading.metrics import per_bar_sharpe

LEDGER = "paper_trades.jsonl"


def watch_champion(models_dir: Path, data_path: str | Path | None, *, now: float | None = None,
                   demote: bool = True, kill_switch: KillSwitchSettings | None = None,
                   ) -> dict[str, Any] | None:
    """Tonight's look at the deployed champion on ``data_path`` (the candles the nightly keeps
    current; None: the champion's own data): the paper trades appended to the ledger, and a
    status (JSON-ready) with ``state`` ``"waiting"`` (too few live bars), ``"ok"`` or
    ``"demoted"``, ``live_bars``, ``trades``, ``live_sharpe`` (annualised), ``validated_sharpe``,
    ``psr_vs_validated``, ``psr_vs_zero``, ``max_psi`` (and its feature), ``total_return``, a
    ``text`` line, and ``demotion`` (the history line) when the kill switch acted. None when no
    champion is deployed. ``kill_switch``: the config's ``deployment.kill_switch`` (its
    defaults when None)."""
    from cryptosweep.production import load_model
    from cryptosweep.production.candles import check_candles, load_candles, parse_time
    from cryptosweep.production.model import InSampleWarning
    from cryptosweep.trading.features import FEATURE_COLUMNS
    from cryptosweep.trading.steps import market_from_candles

    models = Path(models_dir)
    champion = models / CHAMPION
    if not champion.is_dir():
        return None
    model = load_model(champion)
    manifest = model.manifest
    digest = manifest_digest(champion)
    path = data_path if data_path is not None else model.spec.data.path
    if path is None:
        from cryptosweep.trading.data import sample_data_path

        path = sample_data_path()
    candles = check_candles(load_candles(path, model.spec), model.bar_interval)
    trained_until = parse_time(manifest["data"]["last_bar"], "data.last_bar")
    live = candles.index > trained_until
    status: dict[str, Any] = {
        "champion": digest, "family": model.family, "trained_until": trained_until.isoformat(),
        "data": str(path), "live_bars": int(live.sum()), "state": "waiting",
    }
    if status["live_bars"] < 2:
        status["text"] = (f"champion in the field: {status['live_bars']} live bars since "
                          f"{trained_until.isoformat()}; waiting for more")
        return status
    first_live = candles.index[live][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InSampleWarning)
        backtest = model.backtest_details(candles, start=first_live)
    returns = backtest.result.returns
    times = backtest.times
    closed = [t for t in backtest.result.trades
              if not (t.exit_reason == "end" and t.exit_bar == len(times) - 1)]
    _append_trades(models / LEDGER, digest, times, closed)
    recorded = (manifest.get("data") or {}).get("periods_per_year")
    market = market_from_candles(  # annualised as the model's training was (its sweep's too)
        candles, declared_interval=model.bar_interval,
        periods_per_year=None if recorded is None else float(recorded))
    ppy = market.periods_per_year
    sr = per_bar_sharpe(returns)
    validated = _validated_sharpe(manifest)
    psr_validated = _psr(returns, sr, None if validated is None else validated / math.sqrt(ppy))
    psr_zero = _psr(returns, sr, 0.0)
    index = market.ohlcv.index
    train_rows = (index >= parse_time(manifest["data"]["first_training_bar"], "first")) & (
        index <= parse_time(manifest["data"]["last_training_bar"], "last"))
    live_rows = index > trained_until
    psi = {name: population_stability_index(market.features[train_rows, k],
                                            market.features[live_rows, k])
           for k, name in enumerate(FEATURE_COLUMNS)}
    finite = {k: v for k, v in psi.items() if math.isfinite(v)}
    worst = max(finite, key=finite.__getitem__) if finite else None
    status.update(
        trades=len(closed), total_return=float(np.prod(1.0 + returns) - 1.0),
        live_sharpe=float(sr * math.sqrt(ppy)), validated_sharpe=validated,
        psr_vs_validated=psr_validated, psr_vs_zero=psr_zero,
        max_psi=None if worst is None else float(finite[worst]), max_psi_feature=worst,
        first_live_bar=first_live.isoformat(), last_bar=candles.index[-1].isoformat(),
        state="ok",
    )
    kill = kill_switch or KillSwitchSettings()
    enough = status["live_bars"] >= kill.min_live_bars and len(closed) >= kill.min_live_trades
    broke = enough and psr_validated is not None and psr_validated < kill.max_psr
    drift = "" if status["max_psi"] is None else (
        f", max PSI {status['max_psi']:.2f} ({worst}"
        + ("; a major shift" if status["max_psi"] > MAJOR_SHIFT else "") + ")")
    status["text"] = (
        f"champion in the field: {status['live_bars']} live bars, {len(closed)} trades, "
        f"return {status['total_return']:+.2%}, Sharpe {status['live_sharpe']:+.2f} vs "
        f"validated {_fmt(validated)}, PSR {_fmt(psr_validated)}{drift}")
    if broke and demote:
        reason = (f"kill switch: live PSR {psr_validated:.3f} < {kill.max_psr} against the "
                  f"validated Sharpe {validated:+.2f} over {status['live_bars']} live bars and "
                  f"{len(closed)} trades (live Sharpe {status['live_sharpe']:+.2f})")
        evidence = {k: status[k] for k in (
            "live_bars", "trades", "total_return", "live_sharpe", "validated_sharpe",
            "psr_vs_validated", "psr_vs_zero", "max_psi", "max_psi_feature", "first_live_bar",
            "last_bar")}
        evidence.update(kill_psr=kill.max_psr, min_live_bars=kill.min_live_bars,
                        min_live_trades=kill.min_live_trades)
        status["demotion"] = demote_champion(models, reason, evidence, now)
        status["state"] = "demoted"
        status["text"] += f"; DEMOTED ({reason})"
    return status


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}" if abs(value) >= 1 else f"{value:.3f}"


def _validated_sharpe(manifest: dict[str, Any]) -> float | None:
    """The champion's validated Sharpe ratio (annualised): its holdout Sharpe, else its
    validation score when the metric is the Sharpe ratio."""
    entry = manifest.get("configuration") or {}
    value = (entry.get("holdout") or {}).get("holdout_sharpe")
    if value is None and (manifest.get("objective_spec") or {}).get("objective", {}).get(
            "metric", "sharpe") == "sharpe":
        value = entry.get("score")
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _psr(returns: np.ndarray, sr: float, benchmark: float | None) -> float | None:
    from scipy import stats

    if benchmark is None or len(returns) < 2 or not np.std(returns) > 0:
        return None
    try:
        return probabilistic_sharpe_ratio(sr, benchmark, len(returns),
                                          float(stats.skew(returns)),
                                          float(stats.kurtosis(returns, fisher=False)))
    except ValueError:
        return None


def _append_trades(ledger: Path, digest: str | None, times: Any, trades: list[Any]) -> None:
    seen = {(r.get("champion"), r.get("entry_time")) for r in read_ledger(ledger.parent)}
    lines = []
    for trade in trades:
        entry = times[trade.entry_bar].isoformat()
        if (digest, entry) in seen:
            continue
        lines.append(json.dumps({
            "champion": digest, "entry_time": entry, "exit_time": times[trade.exit_bar].isoformat(),
            "side": "long" if trade.side > 0 else "short", "entry_price": trade.entry_price,
            "exit_price": trade.exit_price, "exit_reason": trade.exit_reason,
            "net_return": trade.net_return,
        }, sort_keys=True) + "\n")
    if lines:
        append_lines(ledger, lines)


def read_ledger(models_dir: Path) -> list[dict[str, Any]]:
    """Every paper trade of ``models/paper_trades.jsonl``, oldest first (a line a kill tore
    is skipped). A damaged line (see :func:`ledger_problem`) is a
    :class:`~cryptosweep.core.errors.UserError` (exit 2) naming the file and the line."""
    return read_json_lines(Path(models_dir) / LEDGER, what="the paper-trading ledger",
                           check=ledger_problem)


def ledger_problem(trade: dict[str, Any]) -> str | None:
    """What is wrong with one line of the ledger (None when nothing is): a trade is keyed by
    its ``entry_time`` (text) and its ``champion`` (a manifest digest, or null)."""
    if not isinstance(trade.get("entry_time"), str):
        return ("the trade has no 'entry_time'" if "entry_time" not in trade
                else f"'entry_time' is not text (got {trade['entry_time']!r:.40})")
    if not isinstance(trade.get("champion"), str | None):
        return f"'champion' is not text (got {trade['champion']!r:.40})"
    return None


__all__ = ["LEDGER", "ledger_problem", "read_ledger", "watch_champion"]
