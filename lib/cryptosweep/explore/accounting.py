"""What a person tries in the explorer counts: every what-if backtest is a trial in the run's
trial ledger (:mod:`cryptosweep.records.ledger`), which the next night's DSR deflates by; and
the holdout is a budget: the explorer shows validation only until the user unlocks the
holdout, and every unlock is recorded as a look, which the next report counts.

Choosing among configurations by their holdout scores (a table sorted by them, what-if sliders
moved until the holdout looks good) is selection on the holdout, which then stops being
out-of-sample evidence; hiding it until a deliberate, recorded unlock keeps the choice honest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptosweep.core.config_files import validate_config
from cryptosweep.core.errors import UserError
from cryptosweep.records.ledger import LedgerTrial, Market, TrialLedger, config_key
from cryptosweep.records.results import RESULTS_GLOB
from cryptosweep.sweep.evidence import ledger_path

#: What a locked holdout value shows instead of the number.
LOCKED = "locked"


def _run_config(run_dir: Path) -> tuple[Any, dict[str, Any]] | None:
    results_files = sorted(run_dir.glob(RESULTS_GLOB))
    if not results_files:
        return None
    try:
        results = json.loads(results_files[-1].read_text(encoding="utf-8"))
        return validate_config(results["config"], "the run's config"), results.get("data") or {}
    except (OSError, ValueError, KeyError, UserError):
        return None


def record_what_if(run_dir: str | Path, params: dict[str, Any], seed: int, budget: float,
                   sharpe: float | None, now: float | None = None) -> str | None:
    """Record one what-if backtest of the explorer (the trial's model, other trading
    parameters) as a trial of kind ``explorer`` in the run's ledger; returns the ledger's path,
    or None when the run has no readable results (nothing to count against)."""
    run_dir = Path(run_dir)
    found = _run_config(run_dir)
    if found is None:
        return None
    config, data = found
    key = config_key(params)
    path = ledger_path(config, run_dir)
    with TrialLedger(path) as ledger:
        ledger.record_trials(run_dir.name, Market.of(data), [
            LedgerTrial("explorer", f"what-if:{key}:{seed}", key, seed, budget, sharpe)],
            now=now)
    return str(path)


def record_unlock(run_dir: str | Path) -> str:
    """Record that the holdout of the run in ``run_dir`` was unlocked in the explorer; returns
    where (the ledger's path), or why nothing could be recorded."""
    run_dir = Path(run_dir)
    results_files = sorted(run_dir.glob(RESULTS_GLOB))
    if not results_files:
        return f"{run_dir.name} has no results file: nothing recorded"
    try:
        results = json.loads(results_files[-1].read_text(encoding="utf-8"))
        config = validate_config(results["config"], "the run's config")
    except (OSError, ValueError, KeyError, UserError) as exc:
        return f"{run_dir.name}: its results cannot be read ({exc}): nothing recorded"
    data = results.get("data") or {}
    if not data.get("holdout_first_bar"):
        return f"{run_dir.name} has no holdout"
    path = ledger_path(config, run_dir)
    with TrialLedger(path) as ledger:
        ledger.record_look(run_dir.name, "explorer", "unlock", Market.of(data, "holdout"))
    return str(path)
