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
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.support import cli, deterministic_bytes, done_count, tiny_config

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
    with open(filler, "wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(block)
    with open(filler, "ab", buffering=0) as out, contextlib.suppress(OSError):
        while True:  # the last partial block
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
    from cryptosweep.core.faults import infrastructure_fault
    from cryptosweep.core.reproducibility import ReproducibilityManager
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
        sweep_type="hyperband", hyperband__max_iter=3, hyperband__eta=3, reporting__top_k=1,
        objective__fidelity="rounds"))
    done = cli("run", "--config", str(config), "--log-dir", str(base), "--run-name", "ref",
               "--seed", "11", "--workers", "0", "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    return config, base / "ref"


def test_a_full_disk_stops_the_sweep_and_resume_ends_as_an_uninterrupted_run(
        hyperband_reference, tmp_path, capsys):
    """The disk fills after two evaluations (checkpoints between rungs, the journal, the logs
    all on it): exit 6 and one line, no evaluation journaled as failed, the journal intact;
    a resume while the disk is still full is exit 6 again (the driver's side); once space is
    freed the resume runs what the full disk hit and ends as the uninterrupted run."""
    from cryptosweep.cli import main
    from cryptosweep.core.errors import EXIT_INFRASTRUCTURE

    config, reference = hyperband_reference
    with small_tmpfs(tmp_path / "disk", "24m") as disk:
        run_dir = disk / "full"
        filled: list[Path] = []

        def fill_after_two() -> None:
            deadline = time.monotonic() + 120
            while done_count(run_dir / "sweep.db") < 2 and time.monotonic() < deadline:
                time.sleep(0.005)
            filled.append(fill(disk))

        filler = threading.Thread(target=fill_after_two, daemon=True)
        filler.start()
        code = main(["run", "--config", str(config), "--log-dir", str(disk), "--run-name",
                     "full", "--seed", "11", "--workers", "0", "--no-progress"])
        filler.join(timeout=120)
        line = one_error_line(capsys.readouterr().err)
        assert code == EXIT_INFRASTRUCTURE and filled, line
        assert "the machine failed the sweep" in line and "resume with: cryptosweep run " \
            f"--resume {run_dir}" in line, line
        assert not list(run_dir.glob("sweep_results_*.json"))
        with sqlite3.connect(f"file:{run_dir / 'sweep.db'}?mode=ro", uri=True) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            statuses = dict(db.execute("SELECT status, COUNT(*) FROM evaluations "
                                       "GROUP BY status").fetchall())
        db.close()
        assert "failed" not in statuses, f"a full disk was journaled as a trial result: {statuses}"
        assert 2 <= statuses.get("done", 0) < 6, statuses

        resume = ["run", "--resume", str(run_dir), "--workers", "0", "--no-progress"]
        assert main(resume) == EXIT_INFRASTRUCTURE
        line = one_error_line(capsys.readouterr().err)  # the resume's first write may be SQLite's
        assert "No space left on device" in line or "database or disk is full" in line, line

        filled[0].unlink()
        assert main(resume) == 0, capsys.readouterr().err[-3000:]
        assert deterministic_bytes(run_dir) == deterministic_bytes(reference)
        with sqlite3.connect(run_dir / "sweep.db") as db:
            others = {outcome for (outcome,) in db.execute(
                "SELECT outcome FROM attempts WHERE outcome IS NOT 'done'")}
            done = db.execute("SELECT eval_id, COUNT(*) FROM attempts WHERE outcome = 'done' "
                              "GROUP BY eval_id").fetchall()
        db.close()
        # The evaluations the full disk stopped (fewer than 6 were done) ran in the resume,
        # each finished once. The first attempt of the one the disk hit is on record only if
        # the journal could still be written after it started (a trial's "running" row is
        # committed with the next transaction: docs/reliability.md).
        assert all(count == 1 for _, count in done) and len(done) == 6
        assert others <= {"infrastructure", None}, others


def test_a_journal_write_on_a_full_disk_leaves_the_journal_consistent(tmp_path):
    """The driver's side: SQLite's 'database or disk is full' is an infrastructure fault, the
    failed transaction is rolled back (not left open), and once space is freed the same store
    writes again."""
    from cryptosweep.core.faults import infrastructure_fault
    from cryptosweep.records.journal import Journal

    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        journal = Journal(disk / "sweep.db")
        journal.set_meta(config={"a": 1}, seed=3)
        journal.add_evaluation(0, 0, {"x": 1}, seed=1, budget=1.0, tags={})
        filler = fill(disk)
        with pytest.raises(sqlite3.Error) as caught:
            for eval_id in range(1, 200):
                journal.add_evaluation(eval_id, eval_id, {"x": "y" * 20_000}, seed=1, budget=1.0,
                                     tags={})
        assert infrastructure_fault(caught.value) == "SQLite: database or disk is full"
        filler.unlink()
        journal.finish_evaluation(0, status="done", score=1.0, metrics={}, error=None,
                                worker="w", device="cpu", started_at=0.0, finished_at=1.0)
        rows = journal.evaluations()
        assert rows[0].status == "done" and all(r.params in ({"x": 1}, {"x": "y" * 20_000})
                                                for r in rows)
        journal.close()
        with sqlite3.connect(disk / "sweep.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_full_disk_during_the_champion_s_re_evaluation_stops_the_sweep(tmp_path):
    """An end-of-sweep task of the champion that meets a full disk (LightGBM's 'Cannot write
    binary data', no errno) is not the champion failing its criterion: it stops the run with
    nothing journaled, for ``run_sweep`` to end as exit 6; an ordinary failure of the champion
    is still its own (the gate then rejects it)."""
    from lightgbm.basic import LightGBMError

    from cryptosweep.execution.worker import TaskOutcome
    from cryptosweep.records.journal import Journal
    from cryptosweep.sweep.finalize import _journal

    full = LightGBMError("Check failed: (written) == (size) at io/file_io.cpp: Cannot write "
                         "binary data")
    journal = Journal(tmp_path / "sweep.db")
    champion = {"kind": "champion", "task": "champion", "digest": "0" * 64}
    with pytest.raises(LightGBMError):
        _journal(iter([TaskOutcome(champion, error=full)]), journal, 1)
    assert journal.get_extra("champion") == {}
    broken = _journal(iter([TaskOutcome(champion, error=ValueError("num_leaves=1"))]), journal, 1)
    assert broken == "ValueError: num_leaves=1"
    journal.close()


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


PLACES = {
    # case: (--set given the scratch folder, what the one line says)
    "champion under a file": (lambda d: f"deployment.champion_dir={d / 'prices.csv' / 'champion'}",
                              "cannot be created: {d}/prices.csv is a file, not a folder"),
    "champion is a file": (lambda d: f"deployment.champion_dir={d / 'prices.csv'}",
                           "{d}/prices.csv is a file, not a folder"),
    "ledger is a folder": (lambda d: f"deployment.ledger={d / 'folder'}",
                           "{d}/folder is a folder, not the trial ledger's SQLite file"),
    "ledger is a CSV file": (lambda d: f"deployment.ledger={d / 'prices.csv'}",
                             "{d}/prices.csv is not a SQLite database"),
}


@pytest.mark.parametrize("case", list(PLACES))
def test_a_champion_or_ledger_that_cannot_be_written_fails_validate_and_run(capsys, tmp_path,
                                                                            case):
    """These passed `validate`, then the whole sweep ran and its end died with a traceback
    (FileExistsError, sqlite3.DatabaseError), leaving the run "running" for every resume to
    fail the same way: now one line naming the key, exit 2, before any run folder exists."""
    from cryptosweep.cli import main

    (tmp_path / "prices.csv").write_text("not candles\n")
    (tmp_path / "folder").mkdir()
    setting, expected = PLACES[case]
    config = write_yaml(tmp_path / "sweep.yaml", tiny_config())
    for command in (["validate"], ["run", "--log-dir", str(tmp_path / "logs")]):
        code = main([*command, "--config", str(config), "--set", setting(tmp_path)])
        lines = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(lines) == 1, (command, lines)
        assert expected.format(d=tmp_path) in lines[0], lines
    assert not (tmp_path / "logs").exists()
    assert (tmp_path / "prices.csv").read_text() == "not candles\n"


@pytest.mark.parametrize("command", ["report", "run", "walkforward", "export-optuna"])
def test_a_symbolic_link_loop_is_one_line_and_exit_2(capsys, tmp_path, command):
    """`report`, `run --log-dir`, `walkforward --log-dir` and `export-optuna` on a path through
    a symbolic link loop ended in pathlib's RuntimeError traceback, exit 1."""
    from cryptosweep.cli import main

    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    loop = tmp_path / "loop1"
    config = tiny_config()
    config["walk_forward"] = {"windows": 2, "out_of_sample_bars": 300, "anchored": False,
                              "in_sample_bars": 1500, "embargo_bars": 24}
    path = write_yaml(tmp_path / "sweep.yaml", config)
    args = {"report": ["report", str(loop)],
            "run": ["run", "--config", str(path), "--log-dir", str(loop)],
            "walkforward": ["walkforward", "--config", str(path), "--log-dir", str(loop)],
            "export-optuna": ["export-optuna", str(loop / "sweep.db")]}[command]
    code = main(args)
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "cannot be resolved" in lines[0], lines


# --------------------------------------------------- 5-8: the journal and its run folder


def _copy_run(reference: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    shutil.copy2(reference / "sweep.db", target / "sweep.db")
    return target


def _folder_state(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_second_writer_of_a_run_folder_is_refused_with_the_holder_s_pid(
        hyperband_reference, tmp_path, capsys):
    """Two `--resume` of one run once both ran its evaluations, and the second died of an
    IntegrityError. The run folder is locked by the process writing it: the second writer
    gets one line naming the holder, and the first ends exactly as it would alone."""
    from cryptosweep.cli import main

    _, reference = hyperband_reference
    run_dir = _copy_run(reference, tmp_path / "run")
    with sqlite3.connect(run_dir / "sweep.db") as db:  # forget the last two evaluations
        db.execute("DELETE FROM attempts WHERE eval_id >= 4")
        db.execute("DELETE FROM returns WHERE eval_id >= 4")
        db.execute("DELETE FROM evaluations WHERE eval_id >= 4")
        db.execute("UPDATE meta SET value = '\"running\"' WHERE key = 'status'")
    first = subprocess.Popen(
        [sys.executable, "-m", "cryptosweep", "run", "--resume", str(run_dir), "--workers", "0",
         "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = run_dir / ".lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text().strip() == str(first.pid)):
        assert first.poll() is None, first.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for command in (["run", "--resume", str(run_dir)],
                    ["run", "--config", str(hyperband_reference[0]), "--log-dir",
                     str(tmp_path), "--run-name", "run"]):
        code = main([*command, "--workers", "0"])
        line = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(line) == 1, line
        assert f"process {first.pid} is writing it" in line[0] or "already holds a sweep" in line[0]
        assert first.poll() is None, "the second writer must be refused while the first runs"
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr[-3000:]
    assert deterministic_bytes(run_dir) == deterministic_bytes(reference)
    from cryptosweep.core.locking import RunLock

    RunLock.acquire(run_dir).release()  # the lock went with its process


def test_a_damaged_journal_is_refused_before_anything_is_written(hyperband_reference,
                                                                  tmp_path, capsys):
    """A journal with garbage in its middle was resumed and written to (34 evaluations ran
    into it before a DatabaseError traceback)."""
    from cryptosweep.cli import main

    _, reference = hyperband_reference
    run_dir = _copy_run(reference, tmp_path / "damaged")
    db = run_dir / "sweep.db"
    data = bytearray(db.read_bytes())
    middle = (len(data) // 2) // 4096 * 4096
    data[middle:middle + 4096] = bytes(range(256)) * 16  # one page of garbage
    db.write_bytes(bytes(data))
    before = _folder_state(run_dir)
    assert main(["run", "--resume", str(run_dir), "--workers", "0"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"journal {db} is damaged" in line and "cannot be resumed safely" in line
    assert _folder_state(run_dir) == before, "a refused resume must not change the run folder"


def test_a_foreign_sqlite_file_is_refused_and_left_as_it_was(tmp_path, capsys):
    """It exited 2, but only after adding seven tables and switching the file to WAL."""
    from cryptosweep.cli import main

    foreign = tmp_path / "app.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO customers(name) VALUES ('ada')")
    db.close()
    before = _folder_state(tmp_path)
    assert main(["run", "--resume", str(foreign), "--workers", "0"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{foreign} is not a cryptosweep journal" in line and "customers" not in line
    assert _folder_state(tmp_path) == before, "no tables added, no switch to WAL"
    with sqlite3.connect(foreign) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` made read-only for this process: a read-only tmpfs mount as root (root
    ignores permission bits), else its permission bits."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
        for path in modes:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield folder
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    with small_tmpfs(folder.with_name(folder.name + "_ro"), "64m") as mount:
        shutil.copytree(folder, mount / folder.name)
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount / folder.name


def test_a_read_only_run_is_said_to_be_read_only_by_resume_and_report(hyperband_reference,
                                                                       tmp_path, capsys):
    """A read-only journal was reported as 'not a cryptosweep journal', and `report` on a
    read-only folder ended in a traceback."""
    from cryptosweep.cli import main

    _, reference = hyperband_reference
    source = tmp_path / "run"
    shutil.copytree(reference, source)
    with read_only(source) as run_dir:
        assert main(["run", "--resume", str(run_dir), "--workers", "0"]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert "is not writable" in line and "copy the run folder somewhere writable" in line
        reason = "read-only file system" if os.geteuid() == 0 else "permission denied"
        assert reason in line, line
        assert main(["report", str(run_dir)]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert f"report: cannot write into {run_dir}" in line and reason in line, line


@contextlib.contextmanager
def read_only_parent(run: Path, tmp_path: Path) -> Iterator[Path]:
    """A writable copy of ``run`` inside a read-only folder: as root, a writable tmpfs mounted
    inside a read-only one; else permission bits."""
    if os.geteuid() != 0:
        parent = tmp_path / "reports"
        parent.mkdir()
        shutil.copytree(run, parent / run.name)
        parent.chmod(0o555)
        try:
            yield parent / run.name
        finally:
            parent.chmod(0o755)
        return
    with small_tmpfs(tmp_path / "reports", "1m") as parent:
        (parent / run.name).mkdir()
        with small_tmpfs(parent / run.name, "64m") as copy:
            shutil.copytree(run, copy, dirs_exist_ok=True)
            subprocess.run(["mount", "-o", "remount,ro", str(parent)], check=True)
            yield copy


def test_report_without_an_index_still_says_it_cannot_write_plotly_beside_the_run(
        hyperband_reference, tmp_path, capsys):
    """`report --no-index` writes no index.html, but the report loads plotly.js from the folder
    above, written there once: a read-only folder above is one line, exit 2, before the
    notebook runs (it was exit 6 after running it, with its executed copy left behind)."""
    from cryptosweep.cli import main

    _, reference = hyperband_reference
    with read_only_parent(reference, tmp_path) as run_dir:
        before = (_folder_state(run_dir), sorted(p.name for p in run_dir.iterdir()))
        assert main(["report", str(run_dir), "--no-index"]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert f"report: cannot write into {run_dir.parent}" in line, line
        assert "where the report keeps plotly-" in line and "--no-index" not in line, line
        assert (_folder_state(run_dir), sorted(p.name for p in run_dir.iterdir())) == before


@pytest.mark.timeout(120)  # the defect waited for ever
@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"workers": -1}, "workers: expected a whole number in [0, 1024]"),
    ({"workers": 1.5}, "workers: expected a whole number"),
    ({"workers": "2"}, "workers: expected a whole number"),
    ({"overrides": "random.n_trials=2"}, "overrides: expected a list of"),
])
def test_run_sweep_checks_its_arguments_before_anything_is_made(tmp_path, kwargs, expected):
    """`run_sweep(workers=-1)` made a run folder and then waited for ever; 1.5 and "2" were a
    bare TypeError; a string of overrides was read one character at a time ("--set 'r'")."""
    from cryptosweep import run_sweep
    from cryptosweep.core.errors import ConfigError

    config = write_yaml(tmp_path / "sweep.yaml", tiny_config())
    with pytest.raises(ConfigError, match=re.escape(expected)):
        run_sweep(config, log_dir=tmp_path / "logs", show_progress=False, **kwargs)
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("flag", ["--seed ７", "--seed 1_2", "--workers ２"])
def test_count_flags_take_ascii_digits_only(capsys, tmp_path, flag):
    """`--seed ７` ran with seed 7 and `--seed 1_2` with seed 12 (int() reads both)."""
    from cryptosweep.cli import main

    config = write_yaml(tmp_path / "sweep.yaml", tiny_config())
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--config", str(config), "--log-dir", str(tmp_path / "logs"),
              *flag.split(" ")])
    assert exit_info.value.code == 2
    assert "expected a whole number in digits 0-9" in capsys.readouterr().err
    assert not (tmp_path / "logs").exists()


def test_notebook_parameters_papermill_reads_as_numbers_are_named_or_understood():
    """papermill reads `-p gpu_ids 0` as the int 0, which the notebooks' `gpu_ids or None`
    took for "no GPU" (the sweep ran on the CPU without a word); `-p run_name 20261207` as an
    int, which ended in a TypeError from inside a check; a path given as a number in
    pathlib's TypeError."""
    from cryptosweep.core.errors import ConfigError
    from cryptosweep.core.paths import resolve
    from cryptosweep.sweep.runner import checked_arguments

    assert checked_arguments(None, None, 0, None) == ((), [0])
    assert checked_arguments(None, ["a.b=1"], "0,1", "night")[1] == [0, 1]
    assert checked_arguments(None, (), "", None)[1] is None
    assert checked_arguments(None, (), [2], None)[1] == [2]
    for kwargs, named in (({"gpu_ids": True}, "gpu_ids"), ({"gpu_ids": -1}, "gpu_ids"),
                          ({"gpu_ids": 1.5}, "gpu_ids"), ({"run_name": 20261207}, "run_name"),
                          # a dict's keys passed as 'dotted.key=value' strings: "--set
                          # 'sweep_type': expected dotted.key=value", a CLI flag from Python
                          ({"overrides": {"sweep_type": "random"}}, "overrides")):
        arguments = {"workers": None, "overrides": (), "gpu_ids": None, "run_name": None,
                     **kwargs}
        with pytest.raises(ConfigError, match=f"^{named}: "):
            checked_arguments(**arguments)
    with pytest.raises(ConfigError, match=r"^config_path: expected a path \(text\), got 5"):
        resolve(5, "config_path")


@pytest.mark.timeout(120)  # the defect waited for ever
def test_run_walkforward_checks_workers_before_anything_is_made(tmp_path):
    """`run_walkforward(workers=-2)` (walkforward.ipynb's `-p workers -2`) made its folders and
    then waited for ever on "a LocalCluster of -2 CPU workers"."""
    from cryptosweep.core.errors import ConfigError
    from cryptosweep.walkforward.driver import run_walkforward

    config = tiny_config()
    config["walk_forward"] = {"windows": 2, "out_of_sample_bars": 300, "anchored": False,
                              "in_sample_bars": 1500, "embargo_bars": 24}
    path = write_yaml(tmp_path / "wf.yaml", config)
    with pytest.raises(ConfigError, match=re.escape("workers: expected a whole number")):
        run_walkforward(path, log_dir=tmp_path / "logs", workers=-2)
    assert not (tmp_path / "logs").exists()


def test_a_file_given_as_a_run_folder_is_called_a_file(capsys, tmp_path):
    """`report FILE` and analysis.ipynb's load_run(FILE) said "run folder not found"."""
    from cryptosweep.cli import main
    from cryptosweep.core.errors import UserError
    from cryptosweep.records.results import load_run

    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    with pytest.raises(UserError, match="is a file, not a run folder"):
        load_run(afile)
    assert main(["report", str(afile), "--no-index"]) == 2
    assert "is a file, not a run folder" in capsys.readouterr().err
