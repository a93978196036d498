"""The nightly's run folders: what state each is in, and what tonight does with the newest
(start a new run, resume it, or only build its missing report). Journals are opened read-only:
reading a run never changes it."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptosweep.core.config import config_hash
from cryptosweep.core.config_files import config_as_made, load_config, validate_config
from cryptosweep.core.errors import EXIT_OK, EXIT_SWEEP, UserError, exit_code_for
from cryptosweep.records.inspection import DB_NAME, read_only_uri
from cryptosweep.records.results import RESULTS_GLOB
from cryptosweep.reporting.index_page import REPORT_FILE
from cryptosweep.trading.objective import check_spec

RUN_PREFIX = "nightly_"


def read_meta(run_dir: Path, *keys: str) -> dict[str, Any]:
    """Values of the journal's ``meta`` table (JSON-decoded) for ``keys``; absent keys are
    left out. Opens ``sweep.db`` read-only: never changes a run. Raises ``sqlite3.Error``."""
    db = Path(run_dir) / DB_NAME
    # Quoted (read_only_uri): a "#" or "?" in the path (REPORTS_DIR=/srv/a#b) ended the
    # URI's path there, so the night read /srv/a, found no status in a complete run and
    # ended "sweep not complete although papermill succeeded", exit 4, every night.
    # Immutable without a -wal (a finished journal): a plain mode=ro read of it left
    # sweep.db-wal and -shm in the run folder, and readers then took it for one being written.
    conn = sqlite3.connect(read_only_uri(db, immutable_without_wal=True), uri=True,
                           timeout=5)
    try:
        marks = ",".join("?" * len(keys))
        rows = conn.execute(f"SELECT key, value FROM meta WHERE key IN ({marks})", keys)
        return {key: json.loads(value) for key, value in rows.fetchall()}
    finally:
        conn.close()


def run_status(run_dir: Path) -> str | None:
    """The journal's ``status`` (``running``, ``complete``, ``failed``), or None when there is
    no readable journal or no status in it."""
    if not (Path(run_dir) / DB_NAME).is_file():
        return None
    try:
        value = read_meta(run_dir, "status").get("status")
    except (sqlite3.Error, json.JSONDecodeError):
        return None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class RunState:
    """What the nightly needs to know about one run folder."""

    path: Path
    status: str | None  # the journal's status; None without a readable journal
    has_journal: bool
    has_results: bool
    has_report: bool

    @classmethod
    def of(cls, path: Path) -> RunState:
        path = Path(path)
        return cls(
            path=path, status=run_status(path), has_journal=(path / DB_NAME).is_file(),
            has_results=any(path.glob(RESULTS_GLOB)),
            has_report=(path / REPORT_FILE).is_file(),
        )

    @property
    def sweep_complete(self) -> bool:
        return self.status == "complete" and self.has_results

    @property
    def finished(self) -> bool:
        """The sweep completed and its report exists: what ``latest`` may point to."""
        return self.sweep_complete and self.has_report

    @property
    def terminal(self) -> bool:
        """Nothing left to do for this run: finished, stopped by itself (``failed``), or never
        got as far as a journal. Anything else may still be resumed and is kept."""
        return self.finished or self.status == "failed" or not self.has_journal


def scan_runs(reports_dir: Path, prefix: str = RUN_PREFIX) -> list[RunState]:
    """The nightly's run folders, oldest first: named ``<prefix><UTC time>`` as the night
    names them (``nightly_20261127_020000``). Any other name was one too: a copy named
    ``nightly_backup`` sorted after every night, was taken for the newest run (a killed night
    was then never resumed, a report never finished), and a copy named
    ``nightly_<time>.bak`` was deleted by the retention."""
    reports_dir = Path(reports_dir)
    if not reports_dir.is_dir():
        return []
    name = re.compile(re.escape(prefix) + r"\d{8}_\d{6}")
    folders = [p for p in reports_dir.iterdir()
               if name.fullmatch(p.name) and p.is_dir() and not p.is_symlink()]
    return [RunState.of(p) for p in sorted(folders, key=lambda p: p.name)]


# ------------------------------------------------------------------------------------ plan


@dataclass(frozen=True)
class Plan:
    """``new`` (start a run), ``resume`` (continue the sweep, then report) or ``report`` (the
    sweep is complete, only the report is missing), with the run folder and why."""

    mode: str
    run_dir: Path | None
    reason: str


def plan_run(reports_dir: Path, config_path: str | Path, seed: int,
             prefix: str = RUN_PREFIX) -> Plan:
    """Decide what tonight does: continue the newest nightly run when it is unfinished and
    can be continued as it was started, else start a new one.

    A run stopped by itself (status ``failed``: too many failed trials) is not resumed: it
    would stop again. A run whose config, seed or data changed since it started cannot be
    resumed (``cryptosweep`` refuses), so tonight starts afresh and the old folder is kept
    (a Hyperband run begun with ``rounds`` before ``folds`` became its default, from a file
    that names no fidelity, did not change: it is resumed as it was made).
    """
    runs = scan_runs(reports_dir, prefix)
    if not runs:
        return Plan("new", None, "no earlier nightly run")
    last = runs[-1]
    name = last.path.name
    if last.finished:
        return Plan("new", None, f"last run {name} finished")
    if last.sweep_complete:
        return Plan("report", last.path, f"last run {name}: sweep complete, report missing")
    if last.status == "failed":
        return Plan("new", None, f"last run {name} stopped itself (status failed); not resumed")
    if not last.has_journal:
        return Plan("new", None, f"last run {name} never started its journal; not resumed")
    if last.status == "complete":  # complete but its results file is gone
        return Plan("new", None, f"last run {name} has no results file; not resumed")
    why_not = _resume_refusal(last.path, config_path, seed)
    if why_not:
        return Plan("new", None, f"last run {name} is unfinished but {why_not}; not resumed")
    return Plan("resume", last.path, f"last run {name} is unfinished (status {last.status})")


def _resume_refusal(run_dir: Path, config_path: str | Path, seed: int) -> str | None:
    """Why ``cryptosweep`` would refuse to resume ``run_dir`` with tonight's config and seed
    (None when it would not): the same comparison as ``run --resume`` makes, of what decides
    the results (:func:`~cryptosweep.core.config.config_hash` of both configs), the seed and the
    data."""
    try:
        meta = read_meta(run_dir, "config", "seed", "data")
    except (sqlite3.Error, json.JSONDecodeError) as exc:
        return f"its journal cannot be read ({exc})"
    stored_config, stored_seed = meta.get("config"), meta.get("seed")
    stored_data = meta.get("data") if isinstance(meta.get("data"), dict) else {}
    if not isinstance(stored_config, dict) or stored_seed is None:
        return "its journal lacks the config or seed"
    try:
        stored = validate_config(config_as_made(stored_config), f"journal of {run_dir.name}")
    except UserError as exc:
        return f"its journaled config is not valid any more ({exc})"
    config = load_config(config_path)
    if config_hash(config.canonical()) != config_hash(stored.canonical()):
        # A run begun before Hyperband's default fidelity became folds was made with rounds
        # from the same file: it resumes as it was made (its journaled config).
        config = load_config(config_path, stored=True)
        if config_hash(config.canonical()) != config_hash(stored.canonical()):
            return "the config changed since it started"
    if int(stored_seed) != int(seed):
        return f"it was started with seed {stored_seed}, tonight's is {seed}"
    recorded = stored_data.get("sha256")
    if recorded is not None and check_spec(config.objective_spec())["sha256"] != recorded:
        return "the data changed since it started"
    return None


def notebook_error(notebook: Path) -> tuple[str, str] | None:
    """The first error an executed notebook recorded, as (exception name, message)."""
    try:
        cells = json.loads(Path(notebook).read_text(encoding="utf-8")).get("cells", [])
    except (OSError, json.JSONDecodeError):
        return None
    for cell in cells:
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if output.get("output_type") == "error":
                return str(output.get("ename", "")), str(output.get("evalue", ""))
    return None


def check_sweep(run_dir: Path, notebook: Path | None = None,
                papermill_status: int = 0) -> tuple[int, str]:
    """Judge the sweep by what it left, not by papermill's exit status alone: it succeeded
    when the journal says ``complete`` and the results file exists. Otherwise the exception
    recorded in the executed notebook says which exit code (2 config/data, 3 GPU, else 4)."""
    state = RunState.of(run_dir)
    if state.sweep_complete and not papermill_status:
        return EXIT_OK, "sweep complete"
    error = notebook_error(notebook) if notebook is not None else None
    code = EXIT_SWEEP
    if error is not None:
        name, value = error
        first = value.strip().splitlines()[0] if value.strip() else ""
        code, message = exit_code_for(name, EXIT_SWEEP), f"sweep failed: {name}: {first[:500]}"
    elif papermill_status:
        message = (f"sweep failed: papermill exited {papermill_status} (journal status "
                   f"{state.status or 'unknown'})")
    else:
        message = (f"sweep not complete although papermill succeeded (journal status "
                   f"{state.status or 'unknown'}, results file "
                   f"{'present' if state.has_results else 'missing'})")
    if state.status == "running" or state.sweep_complete:
        message += (f"; the next nightly continues it (by hand: cryptosweep run --resume "
                    f"{Path(run_dir).resolve()})")
    return code, message
