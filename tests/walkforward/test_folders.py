"""A walk-forward's folder is the user's: `walkforward --run-name` is one plain folder name and a
new walk-forward never writes into a folder that holds anything; a resume refuses flags it
would ignore; damaged walk-forward files (manifest, window records, a window's journal or
results, the combined results `report` reads) are one line naming the file, exit 2, and a
refused resume leaves every file as it was."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from cryptosweep.cli import main
from cryptosweep.core.config_files import load_config
from cryptosweep.core.locking import RunLock
from cryptosweep.trading.data import sample_data_path
from cryptosweep.walkforward.driver import MANIFEST, WINDOW_RECORD, run_walkforward
from tests.walkforward.test_driver import wf_config


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The config and a finished two-window walk-forward (in-process), made in a folder that
    existed, empty, before it started (that is allowed)."""
    root = tmp_path_factory.mktemp("wf_folders")
    config_path = root / "wf.yaml"
    config_path.write_text(yaml.safe_dump(wf_config()), encoding="utf-8")
    (root / "logs" / "wf").mkdir(parents=True)
    result = run_walkforward(config_path, log_dir=root / "logs", run_name="wf", workers=0)
    return config_path, result.run_dir


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes."""
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cryptosweep: error: "), err
    return err


@pytest.mark.parametrize("name", ["../../escape", ".", "a/b", "x\ny", ""])
def test_run_name_is_one_plain_folder_name(finished, tmp_path, capsys, name):
    config_path, _ = finished
    cwd = tmp_path / "deep" / "a" / "b"
    cwd.mkdir(parents=True)
    code = main(["walkforward", "--config", str(config_path), "--log-dir",
                 str(cwd / "logs"), "--run-name", name, "--workers", "0", "--no-report"])
    assert code == 2
    assert "expected one plain folder name" in one_error_line(capsys)
    assert [p.relative_to(tmp_path).as_posix() for p in sorted(tmp_path.rglob("*"))] == [
        "deep", "deep/a", "deep/a/b"]  # nothing created, above --log-dir or in it


def test_a_folder_that_holds_a_sweep_run_is_refused_and_left_as_it_was(
        finished, tmp_path, capsys):
    config_path, wf_dir = finished
    sweep = tmp_path / "sl" / "r_b"
    shutil.copytree(wf_dir / "window_00", sweep)  # a finished sweep's run folder
    (sweep / WINDOW_RECORD).unlink()
    (sweep / "report.html").write_text("<html>the sweep's report</html>")
    before = snapshot(tmp_path)
    code = main(["walkforward", "--config", str(config_path), "--log-dir",
                 str(tmp_path / "sl"), "--run-name", "r_b", "--workers", "0", "--no-report"])
    assert code == 2
    assert "already exists and is not empty (a sweep run: sweep.db)" in one_error_line(capsys)
    assert snapshot(tmp_path) == before


def test_a_folder_that_holds_anything_is_refused(finished, tmp_path, capsys):
    config_path, _ = finished
    (tmp_path / "logs" / "mine").mkdir(parents=True)
    (tmp_path / "logs" / "mine" / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    code = main(["walkforward", "--config", str(config_path), "--log-dir",
                 str(tmp_path / "logs"), "--run-name", "mine", "--workers", "0",
                 "--no-report"])
    assert code == 2
    assert "already exists and is not empty (notes.txt)" in one_error_line(capsys)
    assert snapshot(tmp_path) == before


def copy_of(wf_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "logs" / "wf"
    shutil.copytree(wf_dir, copy)
    return copy


@pytest.mark.parametrize("flag", ["--run-name", "--log-dir"])
def test_resume_refuses_a_flag_it_would_ignore(finished, tmp_path, capsys, flag):
    """`walkforward --resume DIR --run-name other --log-dir xx` ignored both and exited 0."""
    _, wf_dir = finished
    copy = copy_of(wf_dir, tmp_path)
    before = snapshot(tmp_path)
    value = "other" if flag == "--run-name" else str(tmp_path / "xx")
    code = main(["walkforward", "--resume", str(copy), flag, value, "--workers", "0",
                 "--no-report"])
    assert code == 2
    assert f"{flag} has no effect on --resume" in one_error_line(capsys)
    assert snapshot(tmp_path) == before


def _edit_manifest(change: Callable[[dict[str, Any]], object]) -> Callable[[Path], None]:
    """``change`` edits the manifest in place."""

    def edit(wf_dir: Path) -> None:
        manifest = json.loads((wf_dir / MANIFEST).read_text())
        change(manifest)
        (wf_dir / MANIFEST).write_text(json.dumps(manifest))

    return edit


def _edit_record(change: Callable[[dict[str, Any]], object]) -> Callable[[Path], None]:
    """``change`` edits window 1's record in place (by hand: it stays valid JSON)."""

    def edit(wf_dir: Path) -> None:
        path = wf_dir / "window_01" / WINDOW_RECORD
        record = json.loads(path.read_text())
        change(record)
        path.write_text(json.dumps(record))

    return edit


def _manifest_list(wf_dir: Path) -> None:
    (wf_dir / MANIFEST).write_text("[1, 2]")


def _cut(relative: str, keep: int) -> Callable[[Path], None]:
    def edit(wf_dir: Path) -> None:
        path = next(wf_dir.glob(relative))
        path.write_bytes(path.read_bytes()[:keep])

    return edit


def _journal_not_sqlite(wf_dir: Path) -> None:
    (wf_dir / "window_01" / "sweep.db").write_text("not a database, " * 100)
    (wf_dir / "window_01" / WINDOW_RECORD).unlink()


def _other_windows_journal(wf_dir: Path) -> None:
    for name in ("sweep.db", "sweep.db-wal", "sweep.db-shm"):
        (wf_dir / "window_01" / name).unlink(missing_ok=True)
    shutil.copy(wf_dir / "window_00" / "sweep.db", wf_dir / "window_01" / "sweep.db")
    (wf_dir / "window_01" / WINDOW_RECORD).unlink()


def _other_windows_record(wf_dir: Path) -> None:
    shutil.copy(wf_dir / "window_00" / WINDOW_RECORD, wf_dir / "window_01" / WINDOW_RECORD)


def _results_cut_off(wf_dir: Path) -> None:
    (wf_dir / "window_01" / WINDOW_RECORD).unlink()
    _cut("window_01/sweep_results_*.json", 50)(wf_dir)


def _window_a_file(wf_dir: Path) -> None:
    shutil.rmtree(wf_dir / "window_01")
    (wf_dir / "window_01").write_text("not a folder", encoding="utf-8")


@pytest.mark.parametrize(("damage", "message"), [
    # Were tracebacks: KeyError, AttributeError, ValueError.
    (_edit_manifest(lambda m: m.pop("config")), "walkforward.json is damaged (no config"),
    (_manifest_list, "walkforward.json is damaged (a JSON list"),
    (_edit_manifest(lambda m: m.update(seed="abc")), "walkforward.json is damaged (seed 'abc'"),
    # A time stamp names the results' files: it may not lead out of the folder.
    (_edit_manifest(lambda m: m.update(timestamp="../../x")),
     "walkforward.json is damaged (timestamp '../../x'"),
    # Was "the windows no longer fall on the same bars (the data changed)".
    (_edit_manifest(lambda m: m.update(windows=[])), "walkforward.json is damaged (windows is"),
    # Other candles on the same bars (a file revised in place) were accepted: the finished
    # windows read back on the old ones, the rest run on the new.
    (_edit_manifest(lambda m: m.update(data_sha256="0" * 64)),
     "the candles changed since the walk-forward started"),
    # A project moved: was a bare "no such file or folder".
    (_edit_manifest(lambda m: m["config"]["data"].update(path="/moved/candles.csv")),
     "the walk-forward's candles are not at /moved/candles.csv any more"),
    # Was a JSONDecodeError traceback.
    (_cut(f"window_00/{WINDOW_RECORD}", 100),
     f"window_00/{WINDOW_RECORD} (the window's record) is damaged (not valid JSON"),
    (_results_cut_off, "(the window's sweep results) is damaged (not valid JSON"),
    # Was read back as window 1's: its results were window 0's.
    (_other_windows_record, f"window_01/{WINDOW_RECORD} is the record of other bars"),
    # Were refused after window 0 was read back and the manifest rewritten.
    (_journal_not_sqlite, "window_01/sweep.db is not a cryptosweep journal"),
    (_other_windows_journal, "window_01/sweep.db is the journal of another sweep"),
    # Was "--log-dir: cannot create .../window_01: File exists" (no --log-dir was given),
    # after the manifest was rewritten with window 1 "running".
    (_window_a_file, "window_01 is not a folder (the run folder of window_01)"),
    # Were TypeError / KeyError tracebacks in the combined results, the manifest rewritten.
    (_edit_record(lambda r: r.update(out_of_sample=None)),
     f"window_01/{WINDOW_RECORD} is damaged (out_of_sample is not an object)"),
    (_edit_record(lambda r: r["out_of_sample"]["returns"].pop()),
     "is damaged (out_of_sample.returns is not 300 numbers, one per bar of the segment)"),
    (_edit_record(lambda r: r["out_of_sample"]["baselines"].pop("buy_and_hold")),
     "(out_of_sample.baselines.buy_and_hold.returns is not 300 numbers"),
    (_edit_record(lambda r: r.update(trial_sharpes="x")),
     "is damaged (trial_sharpes is not a list of numbers)"),
], ids=["no-config", "a-list", "seed-text", "timestamp-path", "no-windows", "other-candles",
        "candles-moved", "record-cut-off",
        "results-cut-off", "other-record", "journal-not-sqlite", "other-journal",
        "window-a-file", "record-no-trade", "record-returns-short", "record-no-baseline",
        "record-sharpes-text"])
def test_a_damaged_walkforward_is_one_line_and_nothing_changes(finished, tmp_path, capsys,
                                                              damage, message):
    _, wf_dir = finished
    copy = copy_of(wf_dir, tmp_path)
    damage(copy)
    before = snapshot(tmp_path)
    code = main(["walkforward", "--resume", str(copy), "--workers", "0", "--no-report"])
    assert code == 2
    err = one_error_line(capsys)
    assert message in err
    assert snapshot(tmp_path) == before  # the manifest above all: no window "running"


@pytest.mark.parametrize("keep", [0, 200])
def test_report_of_damaged_results_is_one_line(finished, tmp_path, capsys, keep):
    _, wf_dir = finished
    copy = copy_of(wf_dir, tmp_path)
    _cut("walkforward_results_*.json", keep)(copy)
    before = snapshot(tmp_path)
    code = main(["report", str(copy)])
    assert code == 2
    err = one_error_line(capsys)
    assert "walkforward_results_" in err and "is damaged (not valid JSON" in err
    assert snapshot(tmp_path) == before


def test_report_of_results_another_version_wrote_says_so(finished, tmp_path, capsys):
    """Results of schema_version 1 (before windows said what the process traded) ran the
    notebook into "analysis notebook failed in cell 6: KeyError: 'process'", exit 5, and
    left its executed copy behind; now one line naming the version and the resume that
    writes them again, exit 2, nothing written."""
    _, wf_dir = finished
    copy = copy_of(wf_dir, tmp_path)
    (path,) = copy.glob("walkforward_results_*.json")
    results = json.loads(path.read_text())
    results["schema_version"] = 1
    for row in results["windows"]:
        row.pop("process")
    path.write_text(json.dumps(results), encoding="utf-8")
    before = snapshot(tmp_path)
    code = main(["report", str(copy)])
    assert code == 2
    err = one_error_line(capsys)
    assert "schema_version 1" in err and f"cryptosweep walkforward --resume {copy}" in err
    assert snapshot(tmp_path) == before


def test_the_damage_checks_keep_an_intact_resume_working(finished, tmp_path):
    """A resume of an intact copy whose window 1 lost its record: window 0 is read back,
    window 1's completed sweep read back from its results, its record written again."""
    _, wf_dir = finished
    copy = copy_of(wf_dir, tmp_path)
    record = (copy / "window_01" / WINDOW_RECORD).read_bytes()
    (copy / "window_01" / WINDOW_RECORD).unlink()
    assert main(["walkforward", "--resume", str(copy), "--workers", "0", "--no-report"]) == 0
    assert json.loads((copy / "window_01" / WINDOW_RECORD).read_bytes()) == json.loads(record)
    assert [w["status"] for w in json.loads((copy / MANIFEST).read_text())["windows"]] == [
        "done", "done"]


def test_a_resume_while_another_process_writes_the_walkforward_changes_nothing(
        finished, tmp_path, capsys):
    """Was: the second resume rewrote the manifest (the other's window statuses), ran windows
    the other had not reached or failed on its window's lock, and the two raced."""
    _, wf_dir = finished
    copy = copy_of(wf_dir, tmp_path)
    (copy / "window_01" / WINDOW_RECORD).unlink()  # work left for both
    with RunLock.acquire(copy):  # the other writer (a flock conflicts across open files)
        before = snapshot(tmp_path)
        code = main(["walkforward", "--resume", str(copy), "--workers", "0", "--no-report"])
        assert code == 2
        assert "is in use" in one_error_line(capsys)
        assert snapshot(tmp_path) == before
    assert main(["walkforward", "--resume", str(copy), "--workers", "0", "--no-report"]) == 0


def test_the_manifest_records_the_candles_it_was_made_on(finished):
    """What a resume checks them against (the windows' bars alone let revised candles in)."""
    from cryptosweep.trading.objective import data_fingerprint

    _, wf_dir = finished
    manifest = json.loads((wf_dir / "walkforward.json").read_text(encoding="utf-8"))
    assert manifest["data_sha256"] == data_fingerprint(None)  # the bundled sample's


def test_an_interrupt_while_the_candles_are_read_leaves_no_folder_and_nothing_locked(
        finished, tmp_path, monkeypatch):
    """The new manifest's digest reads every candle; a Ctrl-C there came after the folder was
    made and locked: the lock stayed held by the interrupted process, and its next walk-forward
    there was refused as "in use" by itself."""
    import cryptosweep.walkforward.driver as driver

    config_path, _ = finished

    def interrupted(path: Any) -> str:
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(driver, "data_fingerprint", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_walkforward(config_path, log_dir=tmp_path, run_name="wf", workers=0)
    assert not (tmp_path / "wf").exists()
    done = run_walkforward(config_path, log_dir=tmp_path, run_name="wf", workers=0)
    assert done.results["windows"]


def test_window_records_of_an_older_version_are_made_again_from_their_sweeps(finished,
                                                                             tmp_path):
    """Records written before every inner threshold counted as a design (a review: a resume
    kept their N beside the new windows' and gave the DSR too few designs, exit 0). Such a
    record is made again from its window's sweep, as a fresh walk-forward makes it."""
    _, wf_dir = finished
    copy = copy_of(wf_dir, tmp_path)
    made = {}
    for record_path in sorted(copy.glob(f"window_*/{WINDOW_RECORD}")):
        made[record_path.parent.name] = record_path.read_bytes()
        old = json.loads(record_path.read_bytes())
        old.pop("record_version", None)
        old["trial_sharpes"] = [9.0]  # what no sweep of this window gave
        record_path.write_text(json.dumps(old), encoding="utf-8")
    assert len(made) == 2
    results = run_walkforward(resume=copy, workers=0).results
    assert {name: (copy / name / WINDOW_RECORD).read_bytes() for name in made} == made
    original = json.loads(next(wf_dir.glob("walkforward_results_*.json")).read_text())
    assert results["dsr"] == original["dsr"] and results["n_designs"] == original["n_designs"]


def test_a_window_whose_every_evaluation_failed_names_the_window_and_the_way_on(tmp_path,
                                                                              capsys):
    """Every evaluation of window 0 fails (LightGBM's rf without subsampling raises): exit 4
    said only the sweep's "no evaluation succeeded" (no window, no walk-forward), and the
    obvious `walkforward --resume` failed the same way every time (the failures are read back
    from the window's journal). Now the line names the window, the resume and how to run the
    window's evaluations again."""
    config = wf_config(execution__max_failure_fraction=1.0)
    config["random"]["n_trials"] = 1
    config["parameter_ranges"]["lightgbm"] = {
        "boosting": {"type": "categorical", "choices": ["rf"]},
        "bagging_fraction": {"type": "categorical", "choices": [1.0]},
        "feature_fraction": {"type": "categorical", "choices": [1.0]},
    }
    config_path = tmp_path / "wf.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    wf_dir = tmp_path / "logs" / "wf"
    code = main(["walkforward", "--config", str(config_path), "--log-dir",
                 str(tmp_path / "logs"), "--run-name", "wf", "--workers", "0", "--no-report"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 4
    assert err.startswith("cryptosweep: error: walk-forward window window_00: no evaluation "
                          "succeeded (1 failed)"), err
    assert f"cryptosweep walkforward --resume {wf_dir} " in err
    assert f"move {wf_dir / 'window_00'} away first" in err
    assert not (wf_dir / "window_01").exists()  # in-process: it stopped at window 0


def test_a_window_killed_while_its_journal_was_created_runs_again_on_resume(finished,
                                                                          tmp_path):
    """A kill (SIGKILL, 1 worker) between window 1's sweep.db being created and its schema
    being committed left an empty SQLite file beside the lock: the resume was refused for good
    ("holds no journal yet ... start the run again with --config", which a walk-forward's
    folder refuses). Nothing was recorded there: the window runs again, and the results are
    the uninterrupted run's bytes."""
    from tests.walkforward.test_driver import comparable

    _, wf_dir = finished
    copy = copy_of(wf_dir, tmp_path)
    window = copy / "window_01"
    shutil.rmtree(window)
    window.mkdir()
    (window / ".lock").write_text("12345\n", encoding="utf-8")
    sqlite3.connect(window / "sweep.db").close()  # created, no table: as the kill left it
    for old in copy.glob("walkforward_results_*.json"):
        old.unlink()
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["status"], manifest["windows"][1]["status"] = "running", "running"
    (copy / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    run_walkforward(resume=copy, workers=0)
    assert comparable(copy) == comparable(wf_dir)


def test_a_window_without_a_winner_keeps_its_place_in_the_parameter_paths(finished, tmp_path):
    """A window whose sweep finished no evaluation at the full budget has no winner (e.g.
    Hyperband's full-budget trials all past execution.trial_timeout). The parameter paths
    left it out: window 1's winner was drawn and printed as window 0's ("w0"), and the paths
    were one shorter than the windows. Its place now holds None ("-")."""
    _, wf_dir = finished
    copy = copy_of(wf_dir, tmp_path)
    record_path = copy / "window_00" / WINDOW_RECORD
    record = json.loads(record_path.read_text())
    record["winner"], record["deployment"] = None, None
    record["in_sample"].update(score=None, annual_return=None, bars=0)
    record_path.write_text(json.dumps(record), encoding="utf-8")
    results = run_walkforward(resume=copy, workers=0).results
    original = json.loads(next(wf_dir.glob("walkforward_results_*.json")).read_text())
    paths, before = results["parameters"]["paths"], original["parameters"]["paths"]
    assert set(paths) == set(before)
    for key, values in paths.items():
        assert values == [None, before[key][1]], key
    assert results["parameters"]["stability"]["model"]["windows"] == 2
    (report,) = copy.glob("walkforward_report_*.txt")
    assert f"  {'model':<32} -, lightgbm  (" in report.read_text()


def test_the_in_vs_out_of_sample_chart_shows_the_winner_on_its_segment(finished):
    """The chart set each window's winner's in-sample score beside what the process traded
    on the segment, named "out-of-sample": with the gate rejecting the winners (this run),
    the process is flat and the chart showed 0 out of sample after an in-sample loss, as if
    the winner had done better out of sample. The winner's own segment score is drawn too."""
    from cryptosweep.walkforward.figures import in_vs_out_of_sample
    from cryptosweep.walkforward.report import load_walkforward

    _, wf_dir = finished
    results = load_walkforward(wf_dir)
    rows = results["windows"]
    assert [row["traded"] for row in rows] == ["flat", "flat"]
    bars = {trace.name: list(trace.y) for trace in in_vs_out_of_sample(results).data}
    assert bars["winner, out-of-sample"] == [row["winner_oos_score"] for row in rows]
    assert bars["what the process traded, out-of-sample"] == [0.0, 0.0]
    assert all(score != 0.0 for score in bars["winner, out-of-sample"])


def test_a_segment_whose_calmar_ratio_overflows_is_written_as_json(tmp_path):
    """A big move over a short segment (the real candles, their last 4 bars rising 30 % a bar:
    a squeeze) makes buy-and-hold's annualised return, and so its Calmar ratio, pass the
    largest float: the window's record was refused by strict JSON (ValueError traceback, every
    resume again) and the annualised return raised OverflowError. Not finite is None (null),
    as in the worker's results."""
    frame = pd.read_csv(sample_data_path()).iloc[:1300].copy()
    for column in ("open", "high", "low", "close"):
        frame.loc[frame.index[-4:], column] *= 1.3 ** np.arange(1, 5)
    candles = tmp_path / "squeeze.csv"
    frame.to_csv(candles, index=False)
    config = wf_config(walk_forward={"windows": 2, "out_of_sample_bars": 4, "anchored": False,
                                     "in_sample_bars": 1200, "embargo_bars": 4},
                       data={"path": str(candles)}, objective__metric="calmar")
    config["parameter_ranges"]["trading"]["holding_period"] = {"type": "int", "low": 2,
                                                               "high": 4}
    config["walk_forward"]["trade_rejected"] = True
    results = run_walkforward(config=load_config(raw=config), log_dir=tmp_path, run_name="wf",
                              workers=0).results
    record = json.loads((tmp_path / "wf" / "window_01" / WINDOW_RECORD).read_text())
    assert record["out_of_sample"]["baselines"]["buy_and_hold"]["metrics"]["calmar"] is None
    hold = results["out_of_sample"]["baselines"]["buy_and_hold"]["metrics"]
    assert hold["calmar"] is None and hold["total_return"] > 1.0
    assert "not a finite number to judge by" in results["verdict"]["reason"]


def test_a_resume_that_stops_half_way_leaves_the_manifest_running(finished, tmp_path,
                                                                  monkeypatch):
    """The manifest of a finished walk-forward said "complete" through a resume, and after
    one that stopped half-way (here: window 1's trade raises)."""
    from cryptosweep.walkforward import driver

    _, wf_dir = finished
    copy = copy_of(wf_dir, tmp_path)
    assert json.loads((copy / MANIFEST).read_text())["status"] == "complete"
    (copy / "window_01" / WINDOW_RECORD).unlink()

    def broken(payload: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("the trade failed")

    monkeypatch.setattr(driver, "trade_segment", broken)
    with pytest.raises(RuntimeError, match="the trade failed"):
        run_walkforward(resume=copy, workers=0)
    manifest = json.loads((copy / MANIFEST).read_text())
    assert manifest["status"] == "running"
    assert [w["status"] for w in manifest["windows"]] == ["done", "running"]

