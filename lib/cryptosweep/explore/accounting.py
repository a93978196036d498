"""What a person tries in the explorer counts: every what-if backtest is a trial in the run's
trial ledger (:mod:`cryptosweep.records.ledger`), which the next night's DSR deflates by; and
the holdout is a budget: the explorer shows validation only until the user unlocks the
holdout, and every unlock is recorded as a look, which the next report counts.

Choosing among configurations by their holdout scores (a table sorted by them, what-if sliders
moved until the holdout looks good) is selection on the holdout, which then stops being
out-of-sample evidence; hiding it until a deliberate, recorded unlock keeps the choice honest.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from cryptosweep.core.config_files import config_as_made, validate_config
from cryptosweep.core.errors import UserError
from cryptosweep.records.journal import Journal
from cryptosweep.records.ledger import LedgerTrial, TrialLedger, config_key
from cryptosweep.sweep.evidence import RunLedger, run_ledger

#: What a locked holdout value shows instead of the number.
LOCKED = "locked"


class LedgerUnwritableError(UserError):
    """The run's trial ledger cannot be written: ``str()`` says which and why."""


@contextmanager
def _writing(found: RunLedger) -> Iterator[None]:
    """Write the run's ledger: where it is (a folder of its own that is not here — a run
    folder copied from the machine whose models folder held it — is not created), any
    failure a :class:`LedgerUnwritableError` naming it."""
    if not found.path.parent.is_dir():
        raise LedgerUnwritableError(f"its trial ledger's folder {found.path.parent} is not "
                                    "here (a run folder copied from another machine?)")
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        raise LedgerUnwritableError(f"its trial ledger {found.path} cannot be written "
                                    f"({exc})") from None


def record_what_if(run_dir: str | Path, params: dict[str, Any], seed: int, budget: float,
                   sharpe: float | None, now: float | None = None, *,
                   holdout_shown: bool = False) -> str | None:
    """Record one what-if backtest of the explorer (the trial's model, other trading
    parameters) as a trial of kind ``explorer`` in the run's ledger (a run without results yet:
    the one its journal names); returns the ledger's path, or None when neither its results nor
    its journal can say which. ``holdout_shown``: the what-if showed its holdout score (the
    run's holdout was unlocked), so it is a look at the holdout too, recorded as one
    (``what-if <key> seed <seed>``): a slider moved until the holdout looks good is selection on
    it, each position a look. A ledger that cannot be written is a
    :class:`LedgerUnwritableError`."""
    found = run_ledger(Path(run_dir)) or _journal_ledger(Path(run_dir))
    if found is None:
        return None
    key = config_key(params)
    with _writing(found), TrialLedger(found.path) as ledger:
        ledger.record_trials(found.run, found.market(), [
            LedgerTrial("explorer", f"what-if:{key}:{seed}", key, seed, budget, sharpe)],
            now=now)
        if holdout_shown and found.data.get("holdout_first_bar"):
            ledger.record_look(found.run, "explorer", f"what-if {key} seed {seed}",
                               found.market("holdout"))
    return str(found.path)


def _journal_ledger(run_dir: Path) -> RunLedger | None:
    """The ledger of a run without results yet (still running, or stopped), from what its
    journal says: the same config, data and creation time its results will hold, so the same
    ledger and run key as the sweep's own rows. None when the journal cannot say."""
    try:
        journal = Journal.open_readonly(run_dir)
        try:
            config, data, created_at = (journal.get_meta(key, None)
                                        for key in ("config", "data", "created_at"))
        finally:
            journal.close()
        parsed = validate_config(config_as_made(dict(config)), "the run's config")
    except (sqlite3.Error, ValueError, TypeError, UserError):
        return None
    if not isinstance(data, dict) or not isinstance(created_at, int | float):
        return None
    found = RunLedger.of(parsed, run_dir.resolve(), data, created_at)
    return found if found.path.is_absolute() else None


def counted(record: Callable[..., str | None], told: Callable[[str], None]
             ) -> Callable[..., None]:
    """``record`` (:func:`record_what_if`) for a background thread: a :class:`LedgerUnwritableError`
    is ``told`` (the panel says it), never a thread's traceback."""
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            record(*args, **kwargs)
        except LedgerUnwritableError as exc:
            told(f"this what-if was not counted as a trial: {exc}")
    return run


class Unlock(NamedTuple):
    """What :func:`record_unlock` did: ``recorded`` (the look is in the ledger, the holdout
    may be shown) and ``where`` (the ledger's path, or why nothing was recorded)."""

    recorded: bool
    where: str


def record_unlock(run_dir: str | Path) -> Unlock:
    """Record that the holdout of the run in ``run_dir`` was unlocked in the explorer; says
    whether it was recorded, and where (the ledger's path) or why not. Nothing recorded:
    nothing of the holdout may be shown."""
    run_dir = Path(run_dir)
    found = run_ledger(run_dir)
    if found is None:
        return Unlock(False, f"{run_dir.name} has no results file that can be read: nothing "
                             "recorded")
    if not found.data.get("holdout_first_bar"):
        return Unlock(False, f"{run_dir.name} has no holdout")
    try:
        with _writing(found):
            found.record_look("explorer", "unlock")
    except LedgerUnwritableError as exc:
        return Unlock(False, f"the look cannot be recorded: {exc}; the holdout stays locked")
    return Unlock(True, str(found.path))
