"""The holdout is a budget: the explorer shows validation only until the user unlocks the
holdout, and every unlock is recorded as a look in the run's trial ledger
(:mod:`cryptosweep.records.ledger`), which the next report counts.

Choosing among configurations by their holdout scores (a table sorted by them, what-if sliders
moved until the holdout looks good) is selection on the holdout, which then stops being
out-of-sample evidence; hiding it until a deliberate, recorded unlock keeps the choice honest.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptosweep.core.config_files import validate_config
from cryptosweep.core.errors import UserError
from cryptosweep.records.ledger import Market, TrialLedger
from cryptosweep.sweep.evidence import ledger_path

#: What a locked holdout value shows instead of the number.
LOCKED = "locked"


def record_unlock(run_dir: str | Path) -> str:
    """Record that the holdout of the run in ``run_dir`` was unlocked in the explorer; returns
    where (the ledger's path), or why nothing could be recorded."""
    run_dir = Path(run_dir)
    results_files = sorted(run_dir.glob("sweep_results_*.json"))
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
