"""Walk-forward optimisation end to end on the bundled sample: results do not depend on the
workers, a SIGKILL + --resume gives the same bytes without re-running finished windows, no
window's choice reads a bar after its in-sample end, and bad layouts exit 2 before anything
is created."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from cryptosweep.cli import main
from cryptosweep.core.config_files import load_config
from cryptosweep.execution.executors import InProcessExecutor
from cryptosweep.sweep.runner import run_sweep
from cryptosweep.trading.data import sample_data_path
from cryptosweep.walkforward.driver import MANIFEST, WINDOW_RECORD, run_walkforward
from cryptosweep.walkforward.layout import plan, window_seed
from cryptosweep.walkforward.segment import trade_segment
from tests.support import REPO, done_count, tiny_config

WALK_FORWARD = {"windows": 2, "out_of_sample_bars": 300, "anchored": False,
                "in_sample_bars": 1500, "embargo_bars": 24}


def wf_config(**changes: Any) -> dict[str, Any]:
    config = tiny_config(random__n_trials=2, hyperband__max_iter=1, reporting__top_k=1,
                         name="wf", **changes)
    config.setdefault("walk_forward", dict(WALK_FORWARD))
    # Thresholds near the labels' base rate: the trials trade, so their scores are measured.
    config["parameter_ranges"]["trading"]["threshold"] = {"type": "float", "low": 0.3,
                                                          "high": 0.45}
    return config


def comparable(wf_dir: Path) -> bytes:
    """The combined results without where and when they ran, as canonical bytes."""
    (path,) = sorted(wf_dir.glob("walkforward_results_*.json"))
    results = json.loads(path.read_text())
    results.pop("run")
    return json.dumps(results, sort_keys=True).encode()


def attempts(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT * FROM attempts ORDER BY 1, 2").fetchall()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("walkforward")
    config_path = root / "wf.yaml"
    config_path.write_text(yaml.safe_dump(wf_config()), encoding="utf-8")
    return root, config_path


@pytest.fixture(scope="module")
def one_worker(setup):
    root, config_path = setup
    return run_walkforward(config_path, log_dir=root / "one", run_name="wf", workers=1)


@pytest.mark.slow
def test_results_do_not_depend_on_the_workers(setup, one_worker):
    root, config_path = setup
    two = run_walkforward(config_path, log_dir=root / "two", run_name="wf", workers=2)
    assert comparable(two.run_dir) == comparable(one_worker.run_dir)
    results = one_worker.results
    assert results["schema"] == "cryptosweep.walkforward_results"
    assert [row["seed"] for row in results["windows"]] == [window_seed(123456, k)
                                                           for k in range(2)]
    # The track is the segments, concatenated; each window is a normal run folder.
    assert results["out_of_sample"]["bars"] == 2 * WALK_FORWARD["out_of_sample_bars"]
    for k in range(2):
        window_dir = one_worker.run_dir / f"window_{k:02d}"
        assert list(window_dir.glob("sweep_results_*.json"))
        assert list(window_dir.glob("gpu_repro_*.json"))
    assert results["n_configurations"] == 4  # 2 full-budget configurations per window
    assert (one_worker.files["report"].read_text().startswith("VERDICT: "))


@pytest.mark.slow
def test_the_dsr_counts_every_threshold_an_inner_search_tried(tmp_path):
    # Each of a window's 2 trials backtested 3 thresholds: 6 configurations, as its ledger
    # counts them (was 2: the DSR deflated by k times too few designs).
    config = load_config(raw=wf_config(objective__threshold_search=3))
    results = run_walkforward(config=config, log_dir=tmp_path, run_name="wf", workers=0).results
    assert results["n_designs"] == results["dsr"]["n_trials"] == 6
    assert results["n_configurations"] == 12
    assert [row["configurations"] for row in results["windows"]] == [6, 6]
    window = json.loads(next((tmp_path / "wf" / "window_00").glob("sweep_results_*.json"))
                        .read_text())
    assert window["statistics"]["selection"]["n_trials"] >= 6


@pytest.mark.slow
def test_segments_never_overlap_or_precede_their_in_sample_data(one_worker):
    layout = one_worker.results["layout"]
    embargo = WALK_FORWARD["embargo_bars"]
    for window, following in itertools.pairwise(layout):
        assert window["oos_stop"] <= following["oos_start"]
    for window in layout:
        assert window["is_stop"] + embargo <= window["oos_start"]
        assert window["is_first_bar"] < window["is_last_bar"] < window["oos_first_bar"]
        results = json.loads(next(
            (one_worker.run_dir / window["run"]).glob("sweep_results_*.json")).read_text())
        assert results["data"]["last_bar"] == window["is_last_bar"]  # the sweep saw no more


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_same_bytes_without_rerunning(setup, one_worker):
    root, config_path = setup
    wf_dir = root / "killed" / "wf"
    args = ["walkforward", "--config", str(config_path), "--log-dir", str(root / "killed"),
            "--run-name", "wf", "--workers", "0", "--no-report"]
    process = subprocess.Popen([sys.executable, "-m", "cryptosweep", *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 240
    try:  # killed inside window 1's sweep, window 0 finished
        while done_count(wf_dir / "window_01" / "sweep.db") < 1:
            assert process.poll() is None, "the walk-forward ended before it could be killed"
            assert time.monotonic() < deadline, "the walk-forward made no progress"
            time.sleep(0.01)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    manifest = json.loads((wf_dir / MANIFEST).read_text())
    assert [w["status"] for w in manifest["windows"]] == ["done", "running"]
    finished = wf_dir / "window_00"
    before = (attempts(finished / "sweep.db"),
              (finished / WINDOW_RECORD).stat().st_mtime_ns)
    resumed = subprocess.run([sys.executable, "-m", "cryptosweep", "walkforward", "--resume",
                              str(wf_dir), "--workers", "0", "--no-report"],
                             capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert comparable(wf_dir) == comparable(one_worker.run_dir)
    after = (attempts(finished / "sweep.db"),
             (finished / WINDOW_RECORD).stat().st_mtime_ns)
    assert after == before  # window 0 was read back, not run again
    assert "finished before; read back" in resumed.stderr


@pytest.mark.slow
def test_rewriting_every_bar_after_the_in_sample_end_changes_no_choice(setup, one_worker):
    root, config_path = setup
    window = one_worker.results["layout"][0]  # the window with the most bars after its end
    frame = pd.read_csv(sample_data_path())
    after = np.arange(len(frame)) >= window["is_stop"]
    # Every later bar moved by its own random factor (a plain rescaling would leave the
    # returns, and so features and labels, as they were).
    noise = np.exp(np.random.default_rng(7).normal(0.0, 0.03, after.sum()))
    for column in ("open", "high", "low", "close"):
        frame.loc[after, column] *= noise
    frame.loc[after, "volume"] *= noise[::-1]
    rewritten = root / "rewritten.csv.gz"
    with gzip.open(rewritten, "wt") as handle:
        frame.to_csv(handle, index=False)
    config = load_config(config_path, data_path=rewritten)
    plans = plan(config, 123456)
    window_plan = plans[0]
    assert window_plan.as_dict() == window  # the same bars
    swept = run_sweep(config=window_plan.sweep_config, seed=window_plan.seed,
                      log_dir=root / "leak", run_name="w0", executor=InProcessExecutor(),
                      show_progress=False)
    original = json.loads(next((one_worker.run_dir / "window_00").glob(
        "sweep_results_*.json")).read_text())

    def chosen(results: dict[str, Any]) -> bytes:
        scores = [(e["eval_id"], e["params"], e["score"], e["metrics"])
                  for e in results["evaluations"]]
        return json.dumps([results["best"], scores], sort_keys=True).encode()

    assert chosen(swept.results) == chosen(original)
    # ... while the rewritten bars are the ones the winner is traded on.
    record = json.loads((one_worker.run_dir / "window_00" / WINDOW_RECORD).read_text())
    payload = {"spec": window_plan.trade_spec, "params": record["winner"]["params"],
               "budget": record["winner"]["budget"], "seed": record["winner"]["seed"],
               "cutoff": window["is_stop"] - window["is_start"],
               "segment": [window["oos_start"] - window["is_start"],
                           window["oos_stop"] - window["is_start"]]}
    rewritten_trade = trade_segment(payload)
    assert (rewritten_trade["baselines"]["buy_and_hold"]["returns"]
            != record["out_of_sample"]["baselines"]["buy_and_hold"]["returns"])


@pytest.mark.parametrize(("walk_forward", "message"), [
    ({"windows": 40, "out_of_sample_bars": 300}, "leave 0 in-sample bars for the first window"),
    ({"windows": 2, "out_of_sample_bars": 10, "embargo_bars": 24},
     "out_of_sample_bars=10 is shorter than the longest holding period"),
    ({"windows": 2, "out_of_sample_bars": 300}, "embargo_bars is 0 but labels span up to 24"),
    ({"windows": 2, "out_of_sample_bars": 300, "embargo_bars": 24, "anchored": False,
      "in_sample_bars": 300}, "walk_forward window 0"),
    (None, "the config has no walk_forward section"),
])
def test_bad_layouts_exit_2_with_one_line_before_anything_is_made(
        tmp_path, capsys, walk_forward, message):
    config = wf_config(walk_forward=walk_forward)
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    log_dir = tmp_path / "logs"
    code = main(["walkforward", "--config", str(path), "--log-dir", str(log_dir),
                 "--workers", "0"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("cryptosweep: error: ")
    assert message in err
    assert not log_dir.exists()


@pytest.mark.parametrize(("evidence", "message"), [
    ({"cpcv": {"enabled": True, "groups": 16, "test_groups": 15}},
     "evidence.cpcv.test_groups: the split that trains on group 15"),
    ({"regimes": {"volatility_min_history": 1480}},
     "evidence.regimes.volatility_min_history: the regimes need 1504 bars"),
    ({"markets": [{"name": "btc-4h", "data": {"path": "btc_4h.csv", "format": "generic",
                                              "columns": {"timestamp": "timestamp"}}}]},
     "evidence.markets (btc-4h): its candles are 4h bars and the sweep's are 1h bars"),
])
def test_evidence_a_window_cannot_hold_exits_2_before_anything_is_made(
        tmp_path, capsys, evidence, message):
    """The whole file's 7,604 development bars pass these settings, a window's 1,200 do not:
    ``validate`` said ok, and ``walkforward`` wrote its folder and walkforward.json before
    window 0's own sweep refused them (without naming the window); so was another market
    of another bar interval (the walk-forward runs no preflight of the whole config)."""
    evidence = json.loads(json.dumps(evidence))  # the parameters are shared between runs
    if "markets" in evidence:
        hourly = pd.read_csv(sample_data_path(), usecols=range(6))
        hourly["timestamp"] = pd.to_datetime(hourly.pop("open_time"), unit="ms", utc=True)
        four_hours = hourly.set_index("timestamp").resample("4h").agg(
            {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
        four_hours.to_csv(tmp_path / "btc_4h.csv")
        evidence["markets"][0]["data"]["path"] = str(tmp_path / "btc_4h.csv")
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(wf_config(evidence=evidence)), encoding="utf-8")
    log_dir = tmp_path / "logs"
    code = main(["walkforward", "--config", str(path), "--log-dir", str(log_dir),
                 "--workers", "0"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith("cryptosweep: error: walk_forward window 0 (in-sample 2022-08-04 "
                          f"12:00:00+00:00 .. 2022-10-05 23:00:00+00:00): {message}"), err
    assert not log_dir.exists()


def test_no_holdout_without_trading_rejected_winners_is_refused(tmp_path, capsys):
    """data.holdout_fraction 0: every window's gate rejects its winner (nothing to judge it
    on), so with trade_rejected false the process could only stay flat. It ran every window's
    sweep and ended "no edge ... the track never traded", exit 0, saying nothing of why (found
    running the BTC 4h walk-forward so); refused first now, as a layout that cannot work."""
    config = wf_config(data={"holdout_fraction": 0.0})
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    log_dir = tmp_path / "logs"
    code = main(["walkforward", "--config", str(path), "--log-dir", str(log_dir),
                 "--workers", "0", "--no-report"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "data.holdout_fraction is 0" in err and "walk_forward.trade_rejected" in err
    assert not log_dir.exists()
    config["walk_forward"]["trade_rejected"] = True  # every winner trades: that can run
    assert plan(load_config(raw=config), 1)


@pytest.mark.slow
def test_notebook_resumes_a_finished_walkforward_and_its_report_draws_offline(
        one_worker, tmp_path):
    """notebooks/walkforward.ipynb under papermill (cwd: the notebooks folder, as JupyterLab)
    on a copy of a finished walk-forward: every window is read back, the same results come
    out, and report.html draws its three charts offline with the verdict first."""
    from tests.reporting.test_report import drawn_charts, javascript_errors, render_in_chromium

    copy = tmp_path / "logs" / "wf"
    shutil.copytree(one_worker.run_dir, copy)
    for old in copy.glob("walkforward_results_*.json"):
        old.unlink()
    done = subprocess.run(
        [sys.executable, "-m", "papermill", "-k", "cryptosweep", "walkforward.ipynb",
         str(tmp_path / "out.ipynb"), "-p", "resume", str(copy), "-p", "workers", "0",
         "--cwd", "."], cwd=REPO / "notebooks", capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert comparable(copy) == comparable(one_worker.run_dir)
    page = copy / "report.html"
    text = page.read_text()
    assert text.count("Plotly.newPlot") == 3  # equity, IS vs OOS, parameter paths
    assert '<script src="../plotly-' in text and "load_walkforward" not in text
    dom, console = render_in_chromium(page, tmp_path)
    charts, drawn = drawn_charts(dom)
    assert charts == 3 and drawn >= charts
    assert javascript_errors(console) == []
    label = one_worker.results["verdict"]["label"]
    assert dom.index(f"<h2>{label}</h2>") < dom.index('class="plotly-graph-div')


def _unstarted_walkforward(tmp_path: Path) -> Path:
    """A walk-forward folder as a run leaves it right after its manifest (nothing ran yet)."""
    from cryptosweep.walkforward.driver import _new_manifest

    config = load_config(raw=wf_config())
    wf_dir = tmp_path / "logs" / "wf"
    wf_dir.mkdir(parents=True)
    (wf_dir / MANIFEST).write_text(json.dumps(_new_manifest(config, 7, plan(config, 7),
                                                            "20261206_000000")))
    return wf_dir


@pytest.mark.parametrize(("extra", "message"), [
    # Was ignored: the windows of the manifest ran, exit 0, as if --set had not been given.
    (["--set", "walk_forward.out_of_sample_bars=200"],
     "the given config differs from the one this walk-forward was started with"),
    (["--set", "objective.fees_bps=50"],
     "decides its results (objective.fees_bps); resume without --config/--set"),
    (["--set", "objective.fidelity=folds"],
     "objective.fidelity folds differs from the run's rounds"),
    # Were taken, exit 0 (left out of the results hash, as for a sweep): the finished
    # windows' gates had decided under the old ones, the process and DSR ran under the new.
    (["--set", "deployment.min_holdout_score=-5"], "changes deployment, which decided"),
    (["--set", "deployment.dsr_variance=trials"], "changes deployment, which decided"),
    (["--set", "reporting.min_trades=1"], "changes reporting.min_trades, which decided"),
    (["--set", "evidence.cpcv.min_path_quantile=0"], "changes evidence.cpcv, which decided"),
    # Was "no config given: pass --config PATH" (as `run --resume RUN --data X` was).
    (["--data", str(sample_data_path())], "--data cannot change on --resume"),
])
def test_resume_refuses_what_would_change_the_windows_results(tmp_path, capsys, extra,
                                                             message):
    wf_dir = _unstarted_walkforward(tmp_path)
    before = sorted(p.name for p in wf_dir.iterdir())
    code = main(["walkforward", "--resume", str(wf_dir), "--workers", "0", "--no-report",
                 *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("cryptosweep: error: ")
    assert message in err
    assert sorted(p.name for p in wf_dir.iterdir()) == before == [MANIFEST]


def test_resume_takes_execution_settings_from_set(tmp_path):
    from cryptosweep.walkforward.driver import _open_resume

    wf_dir = _unstarted_walkforward(tmp_path)
    _, _, config, seed = _open_resume(wf_dir, None, None, ["execution.workers=3"])
    assert config.execution.workers == 3 and seed == 7


def test_validate_checks_the_windows_too(tmp_path, capsys):
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(wf_config()), encoding="utf-8")
    assert main(["validate", "--config", str(path)]) == 0
    # Each window's own bars, not the whole file's (the line above): 1500 in-sample bars of
    # which the config's 20 % holdout, and 300 traded out of sample.
    assert ("ok: walk_forward: 2 windows, each sweeping 1500 in-sample bars (300 of them its "
            "holdout) and trading 300 out-of-sample bars; out of sample "
            in capsys.readouterr().out)
    code = main(["validate", "--config", str(path), "--set", "walk_forward.embargo_bars=0"])
    assert code == 2
    assert "embargo_bars is 0 but labels span up to 24" in capsys.readouterr().err


@pytest.mark.slow
def test_ctrl_c_stops_windows_running_side_by_side_and_names_the_resume(setup):
    root, config_path = setup
    wf_dir = root / "interrupted" / "wf"
    process = subprocess.Popen(
        [sys.executable, "-m", "cryptosweep", "walkforward", "--config", str(config_path),
         "--log-dir", str(wf_dir.parent), "--run-name", "wf", "--workers", "1",
         "--no-report"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while done_count(wf_dir / "window_00" / "sweep.db") < 1:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert err.splitlines()[-1] == (f"cryptosweep: interrupted (SIGINT); resume with: "
                                    f"cryptosweep walkforward --resume {wf_dir}")
