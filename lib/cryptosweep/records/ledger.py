"""The trial ledger: every configuration and seed evaluated on a market, by any entry point and
across nights, and every look at a holdout. It is what the deflated Sharpe ratio deflates by.

A sweep's journal knows one night; the multiple-testing problem spans all of them. A winner
chosen tonight among 50 configurations, after 300 were tried on the same bars in the nights
before, is the best of 350 (Bailey & López de Prado 2014; López de Prado 2019, "A data
science solution to the multiple-testing crisis in financial research"). The ledger lives
beside the champion, in the models folder (``deployment.ledger``), so that it survives the run
folders that retention removes; a run without a models folder keeps one in its run folder.

Two tables, in one SQLite file (WAL; one transaction per write):

* ``trials``: one row per evaluation: the run, its kind (``search`` for the sweep's own
  evaluations, ``rescore`` for the top-k re-scored from scratch with other seeds,
  ``neighbour`` for the winner's neighbourhood, ``explorer`` for what a person tried,
  ``inner`` for each threshold a search evaluation's inner threshold search backtested
  besides the one it chose: ``objective.threshold_search``), the
  configuration's key (a digest of its parameters), seed, budget, the market (data file name
  and bar interval), the first and last bar it was scored on, its per-bar Sharpe ratio and when.
  Rows are keyed by (run, kind, key), the run by its folder's name and the time it was created
  (:func:`run_key`), and stamped with that time: a search evaluation is written as it
  finishes and again at the end of the sweep (a night again on resume), which adds nothing;
  two runs of one name (the same ``--run-name`` in two log folders, every walk-forward's
  ``window_01``) are two.
* ``looks``: one row per look at a holdout (the end of a sweep, ``evaluate`` on holdout bars,
  the explorer's unlock, ``train --rank``): a holdout is a budget, and the report says how
  much of it was spent.

What counts (:meth:`TrialLedger.trials_on`): rows of the same market whose bars overlap the
night's and which were recorded within ``window_days``. The same market is the same bar
interval and, where both rows carry a probe of their candles (the close at 00:00 UTC on the
first day of each month their bars cover: :func:`market_probe`) with a month in common, the
same closes at half of those or more, whatever the files are called (a copy of the candles
under another name is the same market; another series under the same name is not); else
(candles without such bars, rows recorded before probes) the same file name. The number of
trials ``N`` is the number of distinct configurations among them, plus one for each seed a
configuration was re-scored with beyond the seeds it was already tried with (seeds count as
trials: choosing among seeds is choosing). An inner threshold search's thresholds are
configurations too: a trial that backtested k thresholds counts k (``n_inner`` says how many of
``N`` only the inner searches tried), and their Sharpe ratios are in the variance.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptosweep.core.files import canonical_json
from cryptosweep.records.inspection import read_only_uri

LEDGER_NAME = "trials.db"
#: The kinds of trial rows (see the module docstring).
TRIAL_KINDS = ("search", "rescore", "neighbour", "explorer", "inner")
#: The sources of holdout looks.
LOOK_SOURCES = ("sweep", "evaluate", "explorer", "train")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trials (
    run TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    config_key TEXT NOT NULL,
    seed INTEGER NOT NULL,
    budget REAL NOT NULL,
    market TEXT NOT NULL,
    first_bar TEXT NOT NULL,
    last_bar TEXT NOT NULL,
    sharpe REAL,
    recorded_at REAL NOT NULL,
    probe_id TEXT,
    PRIMARY KEY (run, kind, key)
);
CREATE TABLE IF NOT EXISTS looks (
    run TEXT NOT NULL,
    source TEXT NOT NULL,
    what TEXT NOT NULL,
    market TEXT NOT NULL,
    first_bar TEXT NOT NULL,
    last_bar TEXT NOT NULL,
    looked_at REAL NOT NULL,
    probe_id TEXT,
    PRIMARY KEY (run, source, what)
);
CREATE TABLE IF NOT EXISTS probes (
    probe_id TEXT PRIMARY KEY,
    closes TEXT NOT NULL
);
"""


_TRIAL_COLUMNS = ("run, kind, key, config_key, seed, budget, market, first_bar, last_bar, "
                  "sharpe, recorded_at, probe_id")
_LOOK_COLUMNS = "run, source, what, market, first_bar, last_bar, looked_at, probe_id"
#: The columns each table needs from a ledger already there (``probe_id`` is added to one
#: made before markets carried a probe).
_NEEDED = {"trials": set(_TRIAL_COLUMNS.split(", ")) - {"probe_id"},
           "looks": set(_LOOK_COLUMNS.split(", ")) - {"probe_id"},
           "probes": {"probe_id", "closes"}}


def ledger_problem(path: str | Path) -> str | None:
    """Why the SQLite file at ``path`` cannot be used as the trial ledger (None when it can,
    or is not there): damaged (SQLite's ``quick_check``, or an error reading it), a table of
    the ledger without the columns this version writes, or another SQLite database (tables,
    none of the ledger's: a run's ``sweep.db``, say, which the ledger's tables would be
    written into). Read-only: nothing is created beside it. Found by the sweep instead, a
    damaged ledger was "the machine failed the sweep ... free disk space", exit 6, every night,
    with nothing lost to the machine."""
    db = Path(path)
    if not db.is_file():
        return None
    wal = db.with_name(db.name + "-wal")
    uri = read_only_uri(db, immutable_without_wal=True)
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5.0)
    except sqlite3.Error:
        return None  # cannot tell (locked, no -shm it may create): the sweep says what it finds
    try:
        (verdict,) = conn.execute("PRAGMA quick_check(1)").fetchone()
        tables = {name: {row[1] for row in conn.execute(
                      "PRAGMA table_info(\"{}\")".format(name.replace('"', '""')))}
                  for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE "
                                              "type = 'table'").fetchall()}
    except sqlite3.OperationalError:
        return None  # as above
    except sqlite3.DatabaseError as exc:
        verdict = str(exc)
    finally:
        conn.close()
    if verdict != "ok":
        if uri.endswith("immutable=1") and wal.exists():
            return None  # read as immutable while a writer started: maybe half of a write
        return (f"is damaged ({' '.join(str(verdict).split())[:200]}): restore it from a "
                "backup, or move it away to start a new trial ledger (the trials it counted "
                "are then not counted)")
    if tables and not set(tables) & set(_NEEDED):
        return (f"is another SQLite database (tables {', '.join(sorted(tables)[:5])}), not "
                "a trial ledger: name a ledger file of its own")
    for name, needed in _NEEDED.items():
        missing = needed - tables[name] if name in tables else set()
        if missing:
            return (f"is not a trial ledger this version reads: its table {name} has no "
                    f"column {', '.join(sorted(missing))}")
    return None


def _bare_name(run: str) -> str:
    """The folder name of a :func:`run_key` (all of it for a row keyed before run keys)."""
    return run.partition("@")[0]


def _interval_of(market_name: str) -> str:
    """The bar interval of a market name (``file@interval``)."""
    return market_name.rpartition("@")[2]


def run_key(name: str, created_at: float | None) -> str:
    """How the ledger names a run: its folder's name and, when known, the UTC time it was
    created. Keyed by the name alone, a second run of that name (another log folder, another
    walk-forward's ``window_01``) added nothing: its trials were not counted."""
    if created_at is None:
        return name
    when = datetime.fromtimestamp(float(created_at), tz=UTC)
    return f"{name}@{when.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"


def config_key(params: Mapping[str, Any]) -> str:
    """A configuration's identity: the digest of its parameters (seed and budget excluded)."""
    return hashlib.sha256(canonical_json(dict(params)).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Market:
    """What a trial was scored on: the market (data file name and bar interval) and its first
    and last bars (ISO 8601 UTC)."""

    name: str
    first_bar: str
    last_bar: str
    #: closes at probe times (:func:`market_probe`); empty: known by its name only
    probe: tuple[tuple[str, float], ...] = ()

    @property
    def interval(self) -> str:
        return _interval_of(self.name)

    def probed(self, ohlcv: Any) -> Market:
        """This market with the probe of ``ohlcv`` (its candles) over its bars."""
        return Market(self.name, self.first_bar, self.last_bar,
                      market_probe(ohlcv, self.first_bar, self.last_bar))

    def same_as(self, name: str, closes: Mapping[str, float] | None) -> bool:
        """Whether a row recorded for market ``name`` with the probe ``closes`` (None: none)
        is this market (the module docstring)."""
        if _interval_of(name) != self.interval:
            return False
        other = closes or {}
        shared = [(when, close) for when, close in self.probe if when in other]
        if shared:  # at least half of them: an exchange may revise a candle
            agree = sum(math.isclose(close, other[when], rel_tol=1e-6, abs_tol=0.0)
                        for when, close in shared)
            return 2 * agree >= len(shared)
        return name == self.name

    @cached_property
    def probe_json(self) -> str | None:
        """The probe as the ledger stores it (None without one)."""
        return json.dumps(dict(self.probe), sort_keys=True) if self.probe else None

    @cached_property
    def probe_id(self) -> str | None:
        """The probe's digest, under which the ledger keeps it once (None without one)."""
        text = self.probe_json
        return None if text is None else hashlib.sha256(text.encode()).hexdigest()[:20]

    @classmethod
    def of(cls, data: Mapping[str, Any], part: str = "development") -> Market:
        """The development bars (``part="development"``: the sweep's folds) or the holdout
        bars (``"holdout"``) of a run's ``data`` description (the journal's ``data`` meta)."""
        name = f"{Path(str(data.get('path') or 'data')).name}@{data.get('bar_interval') or '?'}"
        holdout_first = data.get("holdout_first_bar")
        if part == "holdout":
            return cls(name, str(holdout_first or data.get("last_bar")), str(data.get("last_bar")))
        last = data.get("last_development_bar") or holdout_first or data.get("last_bar")
        return cls(name, str(data.get("first_bar")), str(last))


def market_probe(ohlcv: Any, first_bar: str, last_bar: str) -> tuple[tuple[str, float], ...]:
    """The closes of ``ohlcv`` (candles indexed by open time, UTC) at 00:00 UTC on the first
    day of each month from ``first_bar`` to ``last_bar``, where there is such a bar: what
    tells one market's candles from another's whatever their files are called."""
    import pandas as pd

    index = ohlcv.index if ohlcv.index.tz is not None else ohlcv.index.tz_localize("UTC")
    first, last = pd.Timestamp(first_bar), pd.Timestamp(last_bar)
    months = pd.date_range(first.tz_convert("UTC").normalize().replace(day=1), last,
                           freq="MS", tz="UTC")
    months = months[(months >= first) & (months <= last)]
    positions = index.get_indexer(months)
    closes = ohlcv["close"].to_numpy(dtype="float64")
    return tuple((when.isoformat(), float(closes[at]))
                 for when, at in zip(months, positions, strict=True) if at >= 0)


@dataclass(frozen=True)
class LedgerTrial:
    """One evaluation as the ledger records it."""

    kind: str
    key: str
    config_key: str
    seed: int
    budget: float
    sharpe: float | None


@dataclass(frozen=True)
class TrialCount:
    """How many trials a winner was chosen among (``n_inner`` of them tried only by inner
    threshold searches), and the variance of their Sharpe ratios."""

    n_trials: int
    n_rows: int
    n_runs: int
    sharpe_variance: float | None
    window_days: float
    n_inner: int = 0
    #: trials that none of the ``clustered`` series given to :meth:`TrialLedger.trials_on` is
    #: (not in :meth:`to_dict`: the effective count reports it)
    n_unclustered: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n_trials": self.n_trials, "n_evaluations": self.n_rows, "n_runs": self.n_runs,
            "sharpe_variance": self.sharpe_variance, "window_days": self.window_days}
        if self.n_inner:  # left out without inner searches: results made before keep their bytes
            out["n_inner"] = self.n_inner
        return out


class TrialLedger:
    """The ledger file (created on first use; safe to share between processes)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        for table in ("trials", "looks"):  # a ledger made before markets carried a probe
            columns = {row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")}
            if "probe_id" not in columns:
                try:
                    self._conn.execute(f"ALTER TABLE {table} ADD COLUMN probe_id TEXT")
                except sqlite3.OperationalError as exc:  # another process added it first
                    if "duplicate column" not in str(exc):
                        raise
        self._probes: dict[str, dict[str, float]] = {}
        self._stored: set[str] = set()  # probe ids this connection has written

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> TrialLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def record_trials(self, run: str, market: Market, trials: Iterable[LedgerTrial],
                      now: float | None = None) -> int:
        """Record a run's evaluations (those already recorded are kept as they are); returns
        how many rows were new."""
        now = time.time() if now is None else now
        rows = [(run, t.kind, t.key, t.config_key, int(t.seed), float(t.budget), market.name,
                 market.first_bar, market.last_bar,
                 None if t.sharpe is None or not math.isfinite(t.sharpe) else float(t.sharpe),
                 now, market.probe_id) for t in trials]
        for row in rows:
            if row[1] not in TRIAL_KINDS:
                raise ValueError(f"unknown trial kind {row[1]!r} (known: {TRIAL_KINDS})")
        # A run recorded before runs were keyed by name and creation time carries its bare
        # name: what it recorded then (the same key, recorded at the same time: its creation)
        # is not recorded again under its full key; another run of that name is.
        legacy = _bare_name(run)
        with self._transaction() as cur:
            self._store_probe(cur, market)
            before = self._conn.total_changes  # (a count of the table scans all of it)
            cur.executemany(
                f"INSERT OR IGNORE INTO trials ({_TRIAL_COLUMNS}) SELECT ?,?,?,?,?,?,?,?,?,?,?,? "
                "WHERE NOT EXISTS (SELECT 1 FROM trials WHERE run = ? AND kind = ? AND key = ? "
                "AND recorded_at = ?)",
                [(*row, legacy, row[1], row[2], now) for row in rows])
            added = self._conn.total_changes - before
        if market.probe_id is not None:  # committed: not written again by this connection
            self._stored.add(market.probe_id)
        return added

    def _store_probe(self, cur: sqlite3.Cursor, market: Market) -> None:
        if market.probe_id is not None and market.probe_id not in self._stored:
            cur.execute("INSERT OR IGNORE INTO probes VALUES (?, ?)",
                        (market.probe_id, market.probe_json))

    def _closes(self, probe_id: str | None) -> dict[str, float] | None:
        """The probe stored under ``probe_id`` (read once per ledger)."""
        if probe_id is None:
            return None
        if probe_id not in self._probes:
            row = self._conn.execute("SELECT closes FROM probes WHERE probe_id = ?",
                                     (probe_id,)).fetchone()
            self._probes[probe_id] = json.loads(row[0]) if row else {}
        return self._probes[probe_id]

    def record_look(self, run: str, source: str, what: str, market: Market,
                    now: float | None = None) -> None:
        """Record a look at ``market``'s holdout bars (once per run, source and ``what``)."""
        if source not in LOOK_SOURCES:
            raise ValueError(f"unknown look source {source!r} (known: {LOOK_SOURCES})")
        now = time.time() if now is None else now
        with self._transaction() as cur:
            self._store_probe(cur, market)
            cur.execute(f"INSERT OR IGNORE INTO looks ({_LOOK_COLUMNS}) SELECT ?,?,?,?,?,?,?,? "
                        "WHERE NOT EXISTS (SELECT 1 FROM looks WHERE run = ? AND source = ? "
                        "AND what = ? AND looked_at = ?)",
                        (run, source, what, market.name, market.first_bar, market.last_bar,
                         now, market.probe_id, _bare_name(run), source, what, now))

    def trials_on(self, market: Market, window_days: float, now: float | None = None, *,
                  clustered_configs: Collection[str] = (),
                  clustered_seeds: Collection[tuple[str, int]] = ()) -> TrialCount:
        """The trials that count against a winner scored on ``market`` (see the module
        docstring): same market, overlapping bars, recorded within ``window_days``.
        ``clustered_configs``: the configuration keys whose return series the effective number
        of trials clusters; ``clustered_seeds``: the (key, seed) of extra seeds counted in
        their configuration's cluster; ``n_unclustered`` counts every other trial."""
        now = time.time() if now is None else now
        since = now - window_days * 86_400.0
        with self._lock:
            found = self._conn.execute(
                "SELECT run, kind, config_key, seed, sharpe, market, probe_id FROM trials "
                "WHERE first_bar <= ? AND last_bar >= ? AND recorded_at >= ? "
                "AND market LIKE ? ESCAPE '\\'",
                (market.last_bar, market.first_bar, since, _same_interval(market)),
            ).fetchall()
            same = {pair: market.same_as(pair[0], self._closes(pair[1]))
                    for pair in {(row[5], row[6]) for row in found}}
        rows = [row[:5] for row in found if same[(row[5], row[6])]]
        configs = {config for _, _, config, _, _ in rows}
        searched = {(config, seed) for _, kind, config, seed, _ in rows if kind != "rescore"}
        # A re-score with the seed the configuration was already tried with is that trial.
        extra_seeds = {(config, seed) for _, kind, config, seed, _ in rows
                       if kind == "rescore"} - searched
        n_trials = len(configs) + len(extra_seeds)
        covered = len(configs & set(clustered_configs)) + len(
            extra_seeds & set(clustered_seeds))
        n_inner = len({config for _, kind, config, _, _ in rows if kind == "inner"}
                      - {config for _, kind, config, _, _ in rows if kind != "inner"})
        # Exactly rounded sums: the rows come in the order they were written, which is the
        # order evaluations finished in, and the variance must not depend on it.
        sharpes = [s for *_, s in rows if s is not None]
        mean = math.fsum(sharpes) / len(sharpes) if sharpes else 0.0
        variance = (math.fsum((s - mean) ** 2 for s in sharpes) / (len(sharpes) - 1)
                    if len(sharpes) > 1 else None)
        return TrialCount(n_trials=n_trials, n_rows=len(rows),
                          n_runs=len({run for run, *_ in rows}), sharpe_variance=variance,
                          window_days=float(window_days), n_inner=n_inner,
                          n_unclustered=n_trials - covered)

    def looks_at(self, market: Market) -> list[dict[str, Any]]:
        """Every recorded look at holdout bars of ``market`` that overlap ``market``'s, oldest
        first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT run, source, what, looked_at, market, probe_id FROM looks "
                "WHERE first_bar <= ? AND last_bar >= ? AND market LIKE ? ESCAPE '\\' "
                "ORDER BY looked_at, run, source, what",
                (market.last_bar, market.first_bar, _same_interval(market)),
            ).fetchall()
            return [{"run": r, "source": s, "what": w, "looked_at": t}
                    for r, s, w, t, name, probe_id in rows
                    if market.same_as(name, self._closes(probe_id))]


def _same_interval(market: Market) -> str:
    """A LIKE pattern for market names of ``market``'s bar interval."""
    escaped = market.interval.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%@{escaped}"


#: Where the nightly keeps copies of a run's best configs in its models folder, one folder
#: each (:mod:`cryptosweep.nightly.promotion` uses these names): a rejected run's, and a demoted
#: champion with its evidence.
REJECTED_FOLDER = "rejected"
DEMOTED_FOLDER = "demoted"
NIGHTLY_COPIES = (REJECTED_FOLDER, DEMOTED_FOLDER)


def ledger_beside(source: str | Path) -> Path | None:
    """The trial ledger a best-configs file, run folder, models folder or model folder belongs
    to: ``trials.db`` in the folder (a file's folder), or in the folder above it (a model
    folder inside a models folder), or in the models folder of the nightly's copies of a
    run's best configs (``rejected/<run>/``, ``demoted/<stamp>/``); None when there is none."""
    source = Path(source)
    folder = source if source.is_dir() else source.parent
    candidates = [folder / LEDGER_NAME, folder.parent / LEDGER_NAME]
    if folder.parent.name in NIGHTLY_COPIES:
        candidates.append(folder.parent.parent / LEDGER_NAME)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def record_look_beside(source: str | Path, run: str, source_kind: str, what: str,
                       data: Mapping[str, Any]) -> Path | None:
    """Record a look at the holdout bars of ``data`` (a best-configs entry's ``data``) in the
    ledger :func:`ledger_beside` ``source``; returns the ledger's path, None when there is no
    ledger or the data has no holdout."""
    path = ledger_beside(source)
    if path is None or not data.get("holdout_first_bar"):
        return None
    with TrialLedger(path) as ledger:
        ledger.record_look(run, source_kind, what, Market.of(data, "holdout"))
    return path
