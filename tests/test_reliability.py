"""Reliability under attack (issue #13): what the adversarial pass broke stays fixed.

- A full disk is an infrastructure fault, not a trial result: the sweep stops with exit 6 and
  one line, the journal stays consistent, and a resume ends byte-identical to an uninterrupted
  run (on a real, small tmpfs; skipped where this process cannot mount one).
- A run folder has one writer at a time; a second one is refused with the holder's pid.
- A damaged, foreign or read-only journal is refused before anything is written to it.
- Data that no evaluation can use fails ``validate``; far-future timestamps do not wrap.
- A scheduler address that is not a dask scheduler is one line within seconds, not a hang.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import cli, deterministic_bytes, done_count, tiny_config
from cryptosweep.errors import EXIT_INFRASTRUCTURE
from cryptosweep.faults import infrastructure_fault

pytestmark = pytest.mark.slow


# ---------------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` mounted at ``path`` (skips where mounting is not allowed)."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs",
                        str(path)], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def fill(folder: Path) -> Path:
    """Write a file into ``folder`` until its file system is full; returns the file."""
    filler = folder / "filler"
    block = b"\0" * (1 << 16)
    with open(filler, "wb", buffering=0) as out:
        with contextlib.suppress(OSError):
            while True:
                out.write(block)
    with open(filler, "ab", buffering=0) as out:  # the last partial block
        with contextlib.suppress(OSError):
            while True:
                out.write(b"\0" * 512)
    return filler


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr and "Logging error" not in stderr, stderr[-3000:]
    assert len(lines) >= 1 and lines[-1].startswith("cryptosweep: error: "), stderr[-3000:]
    return lines[-1]


def write_yaml(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


# --------------------------------------------------------------- 2: a full disk is no result


@pytest.mark.parametrize(("family", "suffix"), [("lightgbm", ".txt"), ("xgboost", ".ubj"),
                                                ("catboost", ".cbm"), ("torch", ".npz")])
def test_each_family_s_checkpoint_on_a_full_disk_is_an_infrastructure_fault(
        tmp_path, family, suffix):
    """What each library raises when its checkpoint meets a full disk (LightGBM 'Cannot write
    binary data', XGBoost 'FileStream.Write incomplete', CatBoost and torch an errno) is told
    apart from a trial's own failure; no half-written file is left."""
    from cryptosweep.reproducibility import ReproducibilityManager
    from cryptosweep.trading.models import make_entry_model

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] > 0).astype(float)
    model = make_entry_model(family, {}, ReproducibilityManager(seed=1, threads=1))
    model.fit(x, y, 20)
    with small_tmpfs(tmp_path / "disk", "256k") as disk:
        fill(disk)
        with pytest.raises(Exception) as caught:
            model.save(disk / f"model{suffix}")
        assert infrastructure_fault(caught.value) is not None, repr(caught.value)
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]
    assert infrastructure_fault(ValueError("lightgbm refuses num_leaves=1")) is None


@pytest.fixture(scope="module")
def hyperband_reference(tmp_path_factory):
    """A small Hyperband sweep (6 evaluations, promotions continue from checkpoints) run once
    without interruption: what every disturbed run below must end as."""
    base = tmp_path_factory.mktemp("hyperband")
    config = write_yaml(base / "sweep.yaml", tiny_config(
        sweep_type="hyperband", hyperband__max_iter=3, hyperband__eta=3,
        objective__rounds_per_unit=10))
    done = cli("run", "--config", str(config), "--log-dir", str(base), "--run-name", "ref",
               "--seed", "11", "--workers", "0", "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    return config, base / "ref"


def test_a_full_disk_stops_the_sweep_and_resume_ends_as_an_uninterrupted_run(
        hyperband_reference, tmp_path):
    config, reference = hyperband_reference
    with small_tmpfs(tmp_path / "disk", "24m") as disk:
        run_dir = disk / "full"
        process = subprocess.Popen(
            [sys.executable, "-m", "cryptosweep", "run", "--config", str(config), "--log-dir",
             str(disk), "--run-name", "full", "--seed", "11", "--workers", "0",
             "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while done_count(run_dir / "sweep.db") < 2:
            assert process.poll() is None, process.communicate()[1][-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        filler = fill(disk)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == EXIT_INFRASTRUCTURE, stderr[-3000:]
        line = one_error_line(stderr)
        assert "the machine failed the sweep" in line and "resume with: cryptosweep run " \
            f"--resume {run_dir}" in line, line
        assert not list(run_dir.glob("sweep_results_*.json"))
        with sqlite3.connect(f"file:{run_dir / 'sweep.db'}?mode=ro", uri=True) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            statuses = dict(db.execute("SELECT status, COUNT(*) FROM evaluations "
                                       "GROUP BY status").fetchall())
        assert "failed" not in statuses, f"a full disk was journaled as a trial result: {statuses}"
        finished = statuses.get("done", 0)
        assert 2 <= finished < 6, statuses

        still_full = cli("run", "--resume", str(run_dir), "--workers", "0", "--no-progress")
        assert still_full.returncode == EXIT_INFRASTRUCTURE, still_full.stderr[-3000:]
        assert "No space left on device" in one_error_line(still_full.stderr)

        filler.unlink()
        resumed = cli("run", "--resume", str(run_dir), "--workers", "0", "--no-progress")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert deterministic_bytes(run_dir) == deterministic_bytes(reference)
        with sqlite3.connect(run_dir / "sweep.db") as db:
            rerun = db.execute("SELECT COUNT(*) FROM attempts WHERE outcome IS NOT 'done'"
                               ).fetchone()[0]
            done = db.execute("SELECT eval_id, COUNT(*) FROM attempts WHERE outcome = 'done' "
                              "GROUP BY eval_id").fetchall()
        assert all(count == 1 for _, count in done) and len(done) == 6
        assert rerun >= 1, "the evaluation the full disk hit must have been run again"


def test_a_journal_write_on_a_full_disk_leaves_the_journal_consistent(tmp_path):
    """The driver's side: SQLite's 'database or disk is full' is an infrastructure fault, the
    failed transaction is rolled back (not left open), and once space is freed the same store
    writes again."""
    from cryptosweep.store import TrialStore

    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        store = TrialStore(disk / "sweep.db")
        store.set_meta(config={"a": 1}, seed=3)
        store.add_evaluation(0, 0, {"x": 1}, seed=1, budget=1.0, tags={})
        filler = fill(disk)
        with pytest.raises(sqlite3.Error) as caught:
            for eval_id in range(1, 200):
                store.add_evaluation(eval_id, eval_id, {"x": "y" * 20_000}, seed=1, budget=1.0,
                                     tags={})
        assert infrastructure_fault(caught.value) == "SQLite: database or disk is full"
        filler.unlink()
        store.finish_evaluation(0, status="done", score=1.0, metrics={}, error=None,
                                worker="w", device="cpu", started_at=0.0, finished_at=1.0)
        rows = store.evaluations()
        assert rows[0].status == "done" and all(r.params in ({"x": 1}, {"x": "y" * 20_000})
                                                for r in rows)
        store.close()
        with sqlite3.connect(disk / "sweep.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# ------------------------------------------------------ 3, 4: data no evaluation can use


def _sample_rows() -> tuple[str, list[list[str]]]:
    import gzip

    from cryptosweep.trading.data import sample_data_path

    lines = gzip.decompress(sample_data_path().read_bytes()).decode().splitlines()
    return lines[0], [line.split(",") for line in lines[1:]]


def _scaled(row: list[str], columns: range, factor: float) -> list[str]:
    return [repr(float(v) * factor) if i in columns else v for i, v in enumerate(row)]


BAD_DATA = {
    "one high=inf": (lambda r, i: [*r[:2], "inf", *r[3:]] if i == 500 else r,
                     "line 502 (open_time 2021-10-21T20:00:00+00:00): high: infinite price"),
    "constant prices": (lambda r, i: [r[0], "100", "100", "100", "100", *r[5:]],
                        "the prices or volumes are constant, or too large or too small"),
    "prices x 1e300": (lambda r, i: _scaled(r, range(1, 5), 1e300),
                       "mostly not finite: bollinger_pct_b"),
    "prices x 1e-300": (lambda r, i: _scaled(r, range(1, 5), 1e-300),
                        "mostly not finite: bollinger_pct_b"),
    "volumes x 1e300": (lambda r, i: _scaled(r, range(5, 6), 1e300),
                        "mostly not finite: volume_z_24, volume_z_168"),
    "open times + 1e13 ms": (lambda r, i: [str(int(r[0]) + 10**13), *r[1:]],
                             "open_time is not an epoch in ms or µs up to 2262-04-11"),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_data_that_no_evaluation_can_use_fails_validate_and_run(capsys, tmp_path, case):
    """These candles passed `validate`, then every evaluation failed (or the dates wrapped
    around to 1754): now one line naming the file, exit 2, from `validate` and `run` alike,
    before any run folder exists."""
    from cryptosweep.cli import main

    transform, expected = BAD_DATA[case]
    header, rows = _sample_rows()
    data = tmp_path / "candles.csv"
    data.write_text("\n".join([header, *(",".join(transform(r, i)) for i, r in
                                         enumerate(rows))]) + "\n")
    config = write_yaml(tmp_path / "sweep.yaml", tiny_config())
    for command in (["validate"], ["run", "--log-dir", str(tmp_path / "logs")]):
        code = main([*command, "--config", str(config), "--data", str(data)])
        lines = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(lines) == 1, (command, lines)
        assert lines[0].startswith(f"cryptosweep: error: {data}") and expected in lines[0], lines
    assert not (tmp_path / "logs").exists()
