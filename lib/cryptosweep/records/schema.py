"""The journal's tables (``sweep.db``) and the versions of their layout: what a run writes
and what this version of cryptosweep reads (:mod:`cryptosweep.records.journal` owns the
reading and writing)."""

from __future__ import annotations

__all__ = ["READABLE_SCHEMA_VERSIONS", "SCHEMA_VERSION", "TABLES"]

#: The journal's layout; written to ``meta`` when a run starts (2: rows carry checksums;
#: 3: the end of the sweep's per-bar returns too).
SCHEMA_VERSION = 3
#: The layouts this version reads (1: the same tables without checksums).
READABLE_SCHEMA_VERSIONS = (1, 2, 3)


TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    trial_id INTEGER PRIMARY KEY,
    params TEXT NOT NULL,
    seed INTEGER NOT NULL,
    checksum TEXT
);
CREATE TABLE IF NOT EXISTS evaluations (
    eval_id INTEGER PRIMARY KEY,
    trial_id INTEGER NOT NULL REFERENCES trials(trial_id),
    budget REAL NOT NULL,
    tags TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    score REAL,
    metrics TEXT,
    error TEXT,
    worker TEXT,
    device TEXT,
    started_at REAL,
    finished_at REAL,
    checksum TEXT
);
CREATE TABLE IF NOT EXISTS attempts (
    eval_id INTEGER NOT NULL REFERENCES evaluations(eval_id),
    attempt INTEGER NOT NULL,
    submitted_at REAL NOT NULL,
    outcome TEXT,
    PRIMARY KEY (eval_id, attempt)
);
CREATE TABLE IF NOT EXISTS extra_evaluations (
    kind TEXT NOT NULL,
    eval_id INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    checksum TEXT,
    PRIMARY KEY (kind, eval_id)
);
CREATE TABLE IF NOT EXISTS returns (
    kind TEXT NOT NULL CHECK (kind IN ('validation', 'holdout')),
    eval_id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL,
    checksum TEXT,
    PRIMARY KEY (kind, eval_id)
);
CREATE TABLE IF NOT EXISTS baseline_returns (
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('validation', 'holdout')),
    n INTEGER NOT NULL,
    data BLOB NOT NULL,
    checksum TEXT,
    PRIMARY KEY (name, kind)
);
CREATE TABLE IF NOT EXISTS extra_returns (
    kind TEXT NOT NULL,
    eval_id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (kind, eval_id)
);
CREATE TABLE IF NOT EXISTS resource_samples (
    ts REAL NOT NULL,
    source TEXT NOT NULL,
    payload TEXT NOT NULL
);
"""
