"""The production commands: ``train``, ``signals`` and ``evaluate`` in real processes (the page
checked in a real headless Chromium, network off), and each bad input: one line, exit code 2,
nothing created or overwritten."""

from __future__ import annotations

import json
import re
import shutil
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from cryptosweep.cli import main
from cryptosweep.core.errors import DataError
from cryptosweep.core.plotly_library import plotly_js_name
from cryptosweep.production import (
    decisions_records,
    load_model,
    read_best_configs,
    train_model,
)
from cryptosweep.production.candles import closed_bars
from cryptosweep.production.model import InSampleWarning
from cryptosweep.trading.data import load_ohlcv, sample_data_path
from tests.reporting.test_report import javascript_errors, render_in_chromium
from tests.support import cli

SAMPLE = str(sample_data_path())


@pytest.fixture(scope="module")
def run_dir(family_sweep) -> Path:
    return family_sweep("lightgbm")


@pytest.fixture(scope="module")
def model_dir(run_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "models" / "winner"
    done = cli("train", str(run_dir), "--until", "holdout", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{out}: lightgbm, 10 rounds/epochs, seed ")
    return out


@pytest.fixture(scope="module")
def holdout(run_dir) -> dict:
    best, _ = read_best_configs(run_dir)
    return best["configurations"][0]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cryptosweep: error: "), err
    return lines[0]


def write_candles(frame: pd.DataFrame, path: Path) -> Path:
    out = frame.copy()
    out.index = out.index.as_unit("ms").asi8
    out.to_csv(path, index_label="open_time")
    return path


def test_signals_prints_the_decisions_of_the_latest_bars(model_dir):
    done = cli("signals", str(model_dir), "--data", SAMPLE, "--last", "3", "--json")
    assert done.returncode == 0, done.stderr
    expected = decisions_records(load_model(model_dir).decide(load_ohlcv()).tail(3))
    assert json.loads(done.stdout) == expected
    assert expected[-1]["open_time"] == load_ohlcv().index[-1].isoformat()
    table = cli("signals", str(model_dir), "--data", SAMPLE, "--last", "2")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("bar (UTC open)") and len(lines) == 3
    assert lines[-1].startswith("2022-10-31 23:00")


def test_evaluate_gives_the_sweeps_holdout_metrics_and_an_offline_page(model_dir, holdout,
                                                                      tmp_path):
    page = tmp_path / "out" / "holdout.html"
    done = cli("evaluate", str(model_dir), "--data", SAMPLE, "--start",
               holdout["data"]["holdout_first_bar"], "--html", str(page), "--json")
    assert done.returncode == 0, done.stderr
    recorded = {k.removeprefix("holdout_"): v for k, v in holdout["holdout"].items()
                if k not in ("holdout_bars", "holdout_held_spans", "holdout_stress")}
    assert json.loads(done.stdout) == recorded
    assert f"wrote {page}" in done.stderr and "in-sample" not in done.stderr
    # Its look cannot be recorded (no ledger beside the model folder): the warning named the
    # model folder as the run ("the holdout of winner").
    assert f"looks at the holdout of the run {model_dir} was trained from; no trial ledger " \
        "beside" in done.stderr
    text = page.read_text()
    # The library the reports folder shares (a new user: evaluate wrote a second 4.8 MB copy,
    # plotly.min.js, beside the nightly's plotly-<version>.min.js).
    assert [p.name for p in page.parent.glob("*.js")] == [plotly_js_name()]
    assert len(text) < 1_000_000
    assert not re.search(r"<(script|link)[^>]*(src|href)=[\"']?https?:", text)
    dom, console = render_in_chromium(page, tmp_path)
    assert dom.count('class="main-svg"') >= 1 and javascript_errors(console) == []
    assert f"Trades ({recorded['trades']})" in dom


def test_evaluate_trains_best_configs_and_says_when_a_period_is_in_sample(run_dir, holdout,
                                                                         capsys, tmp_path):
    code, out, err = run_cli(capsys, "evaluate", str(run_dir), "--until", "holdout", "--data",
                             SAMPLE, "--start", holdout["data"]["holdout_first_bar"], "--json",
                             "--html", str(tmp_path / "a.html"))
    assert code == 0, err
    assert json.loads(out)["sharpe"] == holdout["holdout"]["holdout_sharpe"]
    code, out, err = run_cli(capsys, "evaluate", str(run_dir), "--data", SAMPLE, "--start",
                             "2022-10-01", "--end", "2022-10-15T23:00", "--html",
                             str(tmp_path / "b.html"))
    assert code == 0, err
    assert "360 bars 2022-10-01T00:00:00+00:00 .. 2022-10-15T23:00:00+00:00" in out
    assert "warning: in-sample: the bars 2022-10-01T00:00:00+00:00 .. 2022-10-15T23:00:00" in err


def test_a_best_configs_file_of_another_version_is_refused_before_anything_is_written(
        run_dir, model_dir, capsys, tmp_path):
    best, _ = read_best_configs(run_dir)
    old = tmp_path / "old.json"
    old.write_text(json.dumps({k: v for k, v in best.items() if k != "schema"}))
    code, _, err = run_cli(capsys, "train", str(old), "--out", str(tmp_path / "new"))
    assert code == 2 and "has no schema" in one_error_line(err)
    assert not (tmp_path / "new").exists()
    lacking = tmp_path / "lacking.json"
    entry = {k: v for k, v in best["configurations"][0].items() if k != "data"}
    lacking.write_text(json.dumps({**best, "configurations": [entry]}))
    kept = tmp_path / "kept"
    shutil.copytree(model_dir, kept)
    before = {p.name: p.read_bytes() for p in kept.iterdir()}
    code, _, err = run_cli(capsys, "train", str(lacking), "--out", str(kept))
    assert code == 2 and "rank 1 lacks data" in one_error_line(err)
    assert {p.name: p.read_bytes() for p in kept.iterdir()} == before  # nothing overwritten
    code, _, err = run_cli(capsys, "train", str(run_dir), "--rank", "2", "--out", str(kept))
    assert code == 2 and "rank 2 is out of range" in one_error_line(err)


def test_an_output_folder_that_is_not_a_model_is_left_alone(run_dir, capsys, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    code, _, err = run_cli(capsys, "train", str(run_dir), "--out", str(mine))
    assert code == 2 and "not a cryptosweep model folder" in one_error_line(err)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_train_refuses_to_replace_a_models_folders_deployed_champion(run_dir, model_dir,
                                                                     capsys, tmp_path):
    """`train --out MODELS/champion` would replace the deployed champion past the gate, its
    history and the models folder's lock: one line, exit 2, nothing changed; a folder named
    champion elsewhere is an ordinary output."""
    models = tmp_path / "models"
    shutil.copytree(model_dir, models / "champion")
    (models / "champions.jsonl").write_text('{"decision": "approved", "promoted": true}\n')
    before = {p.name: p.read_bytes() for p in (models / "champion").iterdir()}
    for marker in ("champions.jsonl", ".lock", "trials.db"):
        for other in ("champions.jsonl", ".lock", "trials.db"):
            (models / other).unlink(missing_ok=True)
        (models / marker).write_text("")
        code, out, err = run_cli(capsys, "train", str(run_dir), "--out",
                                 str(models / "champion"))
        line = one_error_line(err)
        assert code == 2 and out == "" and "only the deployment gate changes it" in line, marker
        assert {p.name: p.read_bytes() for p in (models / "champion").iterdir()} == before
        assert sorted(p.name for p in models.iterdir()) == sorted(["champion", marker])
    code, _, err = run_cli(capsys, "train", str(run_dir), "--out", str(tmp_path / "champion"))
    assert code == 0, err


def test_train_rank_records_its_holdout_look_only_once_its_input_is_good(run_dir, capsys,
                                                                         tmp_path):
    """`train --rank 2` with a bad --until or --data wrote a look to the trial ledger, then
    failed on it: exit 2 now leaves the ledger as it was; a good one records its look."""
    import sqlite3

    best, _ = read_best_configs(run_dir)
    best["configurations"] = best["configurations"] * 2
    path = tmp_path / "best_configs_two.json"
    path.write_text(json.dumps(best))
    shutil.copy(run_dir / "trials.db", tmp_path / "trials.db")

    def looks() -> list:
        with sqlite3.connect(tmp_path / "trials.db") as db:
            return db.execute("SELECT source, what FROM looks").fetchall()

    before = looks()
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("not,candles\n1,2\n")
    for bad in (["--until", "garbage"], ["--data", str(garbage)]):
        code, out, err = run_cli(capsys, "train", str(path), "--rank", "2", *bad, "--out",
                                 str(tmp_path / "second"))
        *warned, error = err.strip().splitlines()  # the rank's warning, then the error
        assert code == 2 and out == "" and error.startswith("cryptosweep: error: "), err
        assert all(line.startswith("warning: ") for line in warned), err
        assert looks() == before and not (tmp_path / "second").exists(), bad
    code, _, err = run_cli(capsys, "train", str(path), "--rank", "2", "--until", "holdout",
                           "--out", str(tmp_path / "second"))
    assert code == 0 and sorted(looks()) == sorted([*before, ("train", "--rank 2")]), err


def test_a_models_folder_without_an_approved_champion_is_never_its_last_runs_winner(
        run_dir, capsys, tmp_path):
    """`train MODELS` / `evaluate MODELS` fell back to best_configs_last_run.json (the last
    run's winner, which the gate rejected) when no champion was approved or it was demoted:
    one line, exit 2, nothing written."""
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(sorted(run_dir.glob("best_configs_*.json"))[-1],
                models / "best_configs_last_run.json")
    (models / "champions.jsonl").write_text('{"decision": "rejected", "promoted": false}\n')
    for command in (["train", str(models), "--out", str(tmp_path / "out")],
                    ["evaluate", str(models), "--data", SAMPLE]):
        code, out, err = run_cli(capsys, *command)
        line = one_error_line(err)
        assert code == 2 and out == "" and "no approved champion" in line, command
        # The way to ask for the last run's winner anyway names the file there (it sent a
        # new user to dig a path out of champions.jsonl's last line)
        assert f"give that file, {models / 'best_configs_last_run.json'}, or its run folder" \
            in line and not (tmp_path / "out").exists()
    assert sorted(p.name for p in models.iterdir()) == ["best_configs_last_run.json",
                                                        "champions.jsonl"]
    (models / "best_configs_last_run.json").unlink()  # a copied folder: only the journal
    code, _, err = run_cli(capsys, "train", str(models), "--out", str(tmp_path / "out"))
    assert code == 2 and "give its run folder (the 'best_configs' of champions.jsonl" in err


def test_a_model_folder_with_a_changed_file_is_refused(model_dir, capsys, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(model_dir, changed)
    with open(changed / "model.txt", "a") as handle:
        handle.write("\n")
    code, out, err = run_cli(capsys, "signals", str(changed), "--data", SAMPLE)
    assert code == 2 and out == ""
    assert "model.txt was changed after the model was saved" in one_error_line(err)


def test_signals_reads_an_iso_timestamp_csv_with_format_and_columns(model_dir, capsys,
                                                                     tmp_path):
    # Before the fix `signals --data` read only the model's sweep's format: an ISO-timestamp
    # CSV with other column names could not be read, and there was no --format/--columns.
    ohlcv = load_ohlcv().iloc[-400:]
    iso = ohlcv.rename(columns={"open": "o", "close": "c"})
    iso.index = iso.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    path = tmp_path / "iso.csv"
    iso.to_csv(path, index_label="time")
    expected = decisions_records(load_model(model_dir).decide(ohlcv).tail(2))
    for flags in (["--columns", "timestamp=time, open=o,close=c"],
                  ["--format", "generic", "--columns", "timestamp=time,open=o,close=c"]):
        code, out, err = run_cli(capsys, "signals", str(model_dir), "--data", str(path),
                                 "--last", "2", "--json", *flags)
        assert code == 0, err
        assert json.loads(out) == expected
    for flags, words in (
            (["--columns", "timestamp"], "'timestamp' is not KEY=COLUMN"),
            (["--columns", "time=time"], "unknown key 'time'"),
            (["--columns", "open=o,open=p"], "open is given twice"),
            (["--columns", "open=o"], "iso.csv"),  # no 'timestamp' column: the file is named
            (["--format", "binance", "--columns", "timestamp=time"], "not the binance format"),
            (["--format", "binance"], "iso.csv")):
        code, out, err = run_cli(capsys, "signals", str(model_dir), "--data", str(path), *flags)
        assert code == 2 and out == "", (flags, err)
        assert words in one_error_line(err), (flags, err)


def test_candles_a_model_cannot_use_are_refused(model_dir, capsys, tmp_path):
    ohlcv = load_ohlcv()
    short = write_candles(ohlcv.iloc[-100:], tmp_path / "short.csv")
    code, out, err = run_cli(capsys, "signals", str(model_dir), "--data", str(short))
    assert code == 2 and out == ""
    assert "100 bars, fewer than the 168 a decision needs" in one_error_line(err)
    four_hourly = write_candles(ohlcv.iloc[::4], tmp_path / "4h.csv")
    code, out, err = run_cli(capsys, "signals", str(model_dir), "--data", str(four_hourly))
    assert code == 2 and out == ""
    assert "bars are 4h apart, but the model was trained on 1h bars" in one_error_line(err)
    page = tmp_path / "page.html"
    code, _, err = run_cli(capsys, "evaluate", str(model_dir), "--data", SAMPLE, "--start",
                           "last tuesday", "--html", str(page))
    assert code == 2 and "start: 'last tuesday' is not a time" in one_error_line(err)
    assert not page.exists()
    code, _, err = run_cli(capsys, "evaluate", str(model_dir), "--data", SAMPLE, "--until",
                           "holdout", "--html", str(page))
    assert code == 2 and "already trained" in one_error_line(err)
    for flag, text in (("--last", "0"), ("--last", "-2"), ("--rank", "-1")):
        with pytest.raises(SystemExit) as exit_info:
            main(["signals" if flag == "--last" else "evaluate", str(model_dir), "--data",
                  SAMPLE, flag, text])
        assert exit_info.value.code == 2
        # -1 was "expected a non-negative number", which 0 is, refused as well
        assert f"expected a number >= 1, got {text}" in capsys.readouterr().err


# ----------------------------------- hostile inputs: each ends in one line, nothing written

def _entry(run_dir: Path, **changes) -> dict:
    best, _ = read_best_configs(run_dir)
    entry = json.loads(json.dumps(best["configurations"][0]))
    for dotted, value in changes.items():
        node = entry
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return {**best, "configurations": [entry]}


BAD_ENTRIES = [
    ("a model parameter of the wrong type", {"params__entry_model__num_leaves": "many"},
     "lightgbm refuses them (Parameter num_leaves should be of type int"),
    ("a negative model parameter", {"params__entry_model__num_leaves": -3},
     "lightgbm refuses them"),
    ("a NaN model parameter", {"params__entry_model__learning_rate": float("nan")},
     "lightgbm refuses them"),
    ("an unknown model parameter", {"params__entry_model__num_leavs": 8},
     "params.entry_model.num_leavs: not a lightgbm parameter"),
    ("a network parameter", {"params__entry_model__machines": "127.0.0.1:1"},
     "params.entry_model.machines: LightGBM's distributed-training parameters"),
    ("an objective override", {"params__entry_model__objective": "regression"},
     "params.entry_model.objective: the adapter sets the learning task"),
    ("holding period 0", {"params__trading__holding_period": 0},
     "params.trading.holding_period: values must be"),
    ("holding period 1e11", {"params__trading__holding_period": 10**11},
     "params.trading.holding_period: values must be in [1, 1e+06]"),
    ("a negative stop", {"params__trading__stop_loss": -0.05},
     "params.trading.stop_loss: values must be in (0, 1)"),
    ("a bogus threshold", {"params__trading__threshold": 7},
     "params.trading.threshold: values must be in (0, 1)"),
    ("a threshold as text", {"params__trading__threshold": "high"},
     "params.trading.threshold must be a number"),
    ("1,000 threads", {"objective_spec__objective__threads_per_trial": 1000},
     "threads_per_trial: 1000 threads, more than the"),
    # an OverflowError traceback, and training without bound (2 GB and growing)
    ("an infinite budget", {"budget": float("inf")},
     "budget must be a positive finite number, got Infinity"),
    ("a budget no float holds", {"budget": 10**400},
     "budget must be a positive finite number, got 1000000000000"),
    ("a budget of 1e300 rounds", {"budget": 1e300, "metrics__rounds": None},
     "budget 1e+300 x rounds_per_unit 5 is more than 1,000,000 boosting rounds (epochs)"),
]


@pytest.mark.parametrize(("changes", "expected"), [case[1:] for case in BAD_ENTRIES],
                         ids=[case[0] for case in BAD_ENTRIES])
def test_a_best_configs_entry_is_checked_as_the_sweep_config_is(run_dir, capsys, tmp_path,
                                                                  changes, expected):
    """train/evaluate with such an entry ended in LightGBM's own traceback, or trained it."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_entry(run_dir, **changes)))
    for args in (["train", str(bad), "--out", str(tmp_path / "model")],
                 ["evaluate", str(bad), "--data", SAMPLE, "--html", str(tmp_path / "e.html")]):
        code, _, err = run_cli(capsys, *args)
        assert code == 2 and expected in one_error_line(err), (args[0], err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


SUMMARY_EDITS = [
    ("trading_params", "threshold", 0.7, "trading_params is"),
    ("trading_params", "holding_period", "10", "trading_params is"),
    ("entry_model", "params", {"num_leaves": 63}, "entry_model.params is"),
    ("entry_model", "family", "xgboost", "entry_model.family is"),
]


@pytest.mark.parametrize(("block", "key", "value", "expected"), SUMMARY_EDITS)
def test_a_winner_summary_that_contradicts_the_winner_entry_is_said(run_dir, capsys, tmp_path,
                                                                     block, key, value,
                                                                     expected):
    """`train` reads configurations[rank]; an edited trading_params or entry_model (the
    winner's summary, which the README's Python example reads) was silently ignored. It is
    said, naming both places; the entry is what is trained (an edit of the entry alone, as
    the kill-switch test makes, trains as edited)."""
    best, _ = read_best_configs(run_dir)
    best[block] = {**best[block], key: value}
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(best))
    code, _, err = run_cli(capsys, "train", str(edited), "--out", str(tmp_path / "model"))
    notes = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert code == 0, err
    assert len([n for n in notes if expected in n and "configurations[0]" in n]) == 1, err
    with pytest.warns(UserWarning, match=re.escape(expected)):
        model = train_model(str(edited))
    assert model.manifest["configuration"] == best["configurations"][0]


def test_a_deployment_that_is_not_the_gate_s_decision_is_refused(run_dir, capsys, tmp_path):
    best, _ = read_best_configs(run_dir)
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps({**best, "deployment": "approved"}))
    code, _, err = run_cli(capsys, "train", str(edited), "--out", str(tmp_path / "model"))
    assert code == 2 and "deployment must be the gate's decision" in one_error_line(err)
    assert not (tmp_path / "model").exists()


def test_a_best_configs_file_nested_10000_deep_is_one_line(capsys, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text('{"a": ' + "[" * 10_000 + "]" * 10_000 + "}")
    code, _, err = run_cli(capsys, "train", str(deep), "--out", str(tmp_path / "model"))
    assert code == 2 and "nested too deep" in one_error_line(err)


def test_output_paths_that_cannot_be_written_are_refused_before_training(run_dir, capsys,
                                                                        tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    cases = [
        (["train", str(run_dir), "--out", str(afile / "model")], "is a file, not a folder"),
        (["train", str(run_dir), "--out", "/proc/cryptosweep-model"], "pseudo file system"),
        (["train", str(run_dir), "--out", str(tmp_path / ("m" * 300))], "longer than 255"),
        (["evaluate", str(run_dir), "--data", SAMPLE, "--html", str(tmp_path)],
         "it is a folder, not a file"),
        (["evaluate", str(run_dir), "--data", SAMPLE, "--html", str(afile / "e.html")],
         "is a file, not a folder"),
        (["evaluate", str(run_dir), "--data", SAMPLE, "--html", "/proc/e.html"],
         "pseudo file system"),
        (["evaluate", str(run_dir), "--data", SAMPLE, "--html", str(afile)],
         "is not a page `cryptosweep evaluate` wrote"),
    ]
    for args, expected in cases:
        code, _, err = run_cli(capsys, *args)
        assert code == 2 and expected in one_error_line(err), (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    assert afile.read_text() == "mine\n"


def test_a_read_only_output_is_the_user_s_path_exit_2(run_dir, capsys, tmp_path, monkeypatch):
    """A read-only --out or --log-dir was exit 6 (the machine's fault): it is the user's."""
    from cryptosweep.core import files

    monkeypatch.setattr(files, "unwritable", lambda path: "read-only file system")
    code, _, err = run_cli(capsys, "train", str(run_dir), "--out", str(tmp_path / "model"))
    assert code == 2 and "read-only file system" in one_error_line(err)
    code, _, err = run_cli(capsys, "run", "--config", "x.yaml", "--log-dir", str(tmp_path / "l"))
    assert code == 2 and "--log-dir" in one_error_line(err) and "read-only" in err
    assert list(tmp_path.iterdir()) == []


def test_in_sample_warnings_only_on_the_training_market_and_period(model_dir, holdout, capsys,
                                                                  tmp_path, monkeypatch):
    """decide, backtest, signals and evaluate warn when their bars overlap the training bars,
    and only then: the holdout after them, and another market on the same dates (the
    bundled candles as another exchange quotes them, every price 0.1% higher), are not
    in-sample. evaluate without --html writes nothing."""
    import warnings

    from cryptosweep.production.model import InSampleWarning

    model, candles = load_model(model_dir), load_ohlcv()
    with pytest.warns(InSampleWarning, match="in-sample"):
        model.decide(candles)
    with pytest.warns(InSampleWarning, match="in-sample"):
        model.backtest(candles, start="2022-03-01", end="2022-03-10")
    other = candles.copy()
    other[["open", "high", "low", "close"]] *= 1.001
    with warnings.catch_warnings():
        warnings.simplefilter("error", InSampleWarning)
        model.backtest(candles, start=holdout["data"]["holdout_first_bar"])
        model.backtest(other, start="2022-03-01", end="2022-03-10")
        model.decide(other)
    monkeypatch.chdir(tmp_path)
    other_file = write_candles(other, tmp_path / "other.csv")
    code, _, err = run_cli(capsys, "evaluate", str(model_dir), "--data", str(other_file),
                           "--start", "2022-03-01", "--end", "2022-03-10")
    assert code == 0, err
    assert "in-sample" not in err and "wrote" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.csv"]  # no page, no plotly
    code, _, err = run_cli(capsys, "signals", str(model_dir), "--data", SAMPLE, "--last", "3")
    assert code == 0 and "in-sample" not in err
    early = write_candles(candles.loc[:"2022-03-10"], tmp_path / "early.csv")
    code, _, err = run_cli(capsys, "signals", str(model_dir), "--data", str(early))
    assert code == 0 and "warning: in-sample: the bars 2022-03-10T23:00:00+00:00" in err


def test_in_sample_warnings_name_the_callers_line(model_dir):
    """`model.backtest(...)` on training bars (docs/production.md's example) warned from
    lib/cryptosweep/production/model.py's own line (`return self.backtest_details(...)`), not
    the user's, where `decide` named the user's line. Found running that example."""
    from cryptosweep.production.model import InSampleWarning

    model, candles = load_model(model_dir), load_ohlcv()
    for call in (lambda: model.decide(candles),
                 lambda: model.backtest(candles, start="2022-03-01", end="2022-03-10"),
                 lambda: model.backtest_details(candles, start="2022-03-01", end="2022-03-10")):
        with pytest.warns(InSampleWarning) as caught:
            call()
        assert [Path(w.filename).name for w in caught] == [Path(__file__).name]


def test_train_and_signals_say_when_the_gate_rejected_the_configuration(run_dir, capsys,
                                                                         tmp_path):
    """A best configuration the deployment gate rejected: train and signals say so (and that
    it is no champion); `signals models/champion` of a models folder without one is flat."""
    best, _ = read_best_configs(run_dir)
    rejected = {**best, "deployment": {**(best.get("deployment") or {}),
                                       "decision": "rejected", "reason": "DSR 0.10 < 0.95."}}
    path = tmp_path / "best_configs_rejected.json"
    path.write_text(json.dumps(rejected))
    out = tmp_path / "models" / "study"
    code, _, err = run_cli(capsys, "train", str(path), "--out", str(out))
    assert code == 0, err
    note = ("warning: this configuration was rejected by the deployment gate (DSR 0.10 < "
            "0.95): it is not a deployed champion")
    assert note in err
    code, _, err = run_cli(capsys, "signals", str(out), "--data", SAMPLE)
    assert code == 0 and note in err
    (tmp_path / "models" / "champions.jsonl").write_text('{"decision": "rejected"}\n')
    code, out_text, err = run_cli(capsys, "signals", str(tmp_path / "models" / "champion"),
                                  "--data", SAMPLE)
    assert code == 0 and out_text.startswith("flat: no champion deployed"), err


def _promoted(run: str, models: Path) -> dict:
    return {"time": f"2026-01-0{run[-1]}T02:00:00Z", "run": run, "decision": "approved",
            "reason": "all criteria passed", "criteria": [], "winner": None,
            "promoted": True, "champion": str(models / "champion")}


def test_signals_never_answer_flat_while_the_history_says_a_champion_is_deployed(
        model_dir, run_dir, capsys, tmp_path):
    """A promotion interrupted between its two renames (champion.prev, a complete
    .champion.new, .promotion.json) or a champion missing after a "promoted" line is one
    line, exit 2, naming the nightly's recovery, never "flat": a bot would sell out of a
    deployed strategy. Recovered, signals answer; after a demotion, flat."""
    from cryptosweep.nightly.promotion import manifest_digest, recover

    models = tmp_path / "models"
    models.mkdir()
    shutil.copytree(model_dir, models / "champion.prev")
    shutil.copytree(model_dir, models / ".champion.new")
    (models / "champions.jsonl").write_text(json.dumps(_promoted("night_1", models)) + "\n")
    (models / ".promotion.json").write_text(json.dumps({
        "manifest_sha256": manifest_digest(models / ".champion.new"),
        "best_configs": str(sorted(run_dir.glob("best_configs_*.json"))[-1]),
        "record": _promoted("night_2", models)}))
    champion = str(models / "champion")
    code, out, err = run_cli(capsys, "signals", champion, "--data", SAMPLE)
    line = one_error_line(err)
    assert code == 2 and out == "" and ".promotion.json, .champion.new" in line
    assert "recover" in line and "python -m cryptosweep.nightly" in line
    recover(models)
    code, out, err = run_cli(capsys, "signals", champion, "--data", SAMPLE, "--last", "1")
    assert code == 0 and out.startswith("bar (UTC open)"), err

    gone = tmp_path / "gone"
    gone.mkdir()
    (gone / "champion").symlink_to(tmp_path / "nowhere")  # dangling
    history = [_promoted("night_1", gone), {"decision": "rejected", "promoted": False}]
    (gone / "champions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    code, out, err = run_cli(capsys, "signals", str(gone / "champion"), "--data", SAMPLE)
    line = one_error_line(err)
    assert code == 2 and out == "" and "promoted run night_1's champion" in line
    with (gone / "champions.jsonl").open("a") as history_file:
        history_file.write(json.dumps({"decision": "demoted", "time": "2026-01-03T02:00:00Z",
                                       "reason": "kill switch: PSR 0.01"}) + "\n")
        history_file.write(json.dumps({"decision": "rejected", "promoted": False}) + "\n")
    code, out, err = run_cli(capsys, "signals", str(gone / "champion"), "--data", SAMPLE)
    assert code == 0 and out.startswith("flat: no champion deployed (demoted 2026-01-03"), err
    # For machines: the line went to stdout, where JSON was asked for (a helper's attack).
    code, out, err = run_cli(capsys, "signals", str(gone / "champion"), "--data", SAMPLE,
                             "--json")
    assert code == 0 and json.loads(out) == [], err
    assert err.startswith("warning: flat: no champion deployed (demoted 2026-01-03"), err


def test_evaluate_start_before_the_data_is_refused_naming_the_first_bar(model_dir, capsys):
    """A --start before the first bar was silently cut to it (and evaluate without --html
    was a traceback)."""
    code, out, err = run_cli(capsys, "evaluate", str(model_dir), "--data", SAMPLE, "--start",
                             "2015-01-01")
    assert code == 2 and out == ""
    assert ("start 2015-01-01T00:00:00+00:00 is before the first bar of the data "
            "(2021-10-01T00:00:00+00:00)") in one_error_line(err)
    code, out, err = run_cli(capsys, "evaluate", str(model_dir), "--data", SAMPLE, "--start",
                             "2022-10-30", "--json")
    assert code == 0, err
    assert json.loads(out)["trades"] >= 0


def test_evaluate_of_a_big_move_over_a_few_bars_is_strict_json_not_an_overflow(model_dir,
                                                                             capsys, tmp_path):
    """3 hourly bars long through a 30 % jump: their Calmar annualises to about 1e330, an
    OverflowError traceback; now inf, printed as such and null in the JSON."""
    candles, model = load_ohlcv(), load_model(model_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InSampleWarning)
        signal = model.decide(candles).signal.to_numpy()

    def jumped_after(entry: int) -> pd.DataFrame:
        jumped = candles.copy()
        jumped.iloc[entry + 2:, :4] *= 1.3  # open, high, low, close
        return jumped

    def period_of(entry: int) -> tuple[str, str]:
        return candles.index[entry].isoformat(), candles.index[entry + 2].isoformat()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InSampleWarning)
        entry = next(k for k in range(len(candles) - 400, len(candles) - 3) if signal[k] == 1
                     and model.backtest(jumped_after(k), *period_of(k))["max_drawdown"] > 0)
    data = str(write_candles(jumped_after(entry), tmp_path / "jump.csv"))
    start, end = period_of(entry)
    period = ("--start", start, "--end", end)
    code, out, err = run_cli(capsys, "evaluate", str(model_dir), "--data", data, *period,
                             "--json")
    assert code == 0, err

    def not_json(constant: str) -> None:
        raise AssertionError(f"{constant} is not strict JSON")

    metrics = json.loads(out, parse_constant=not_json)
    assert metrics["calmar"] is None and metrics["total_return"] > 0.25, metrics
    code, out, err = run_cli(capsys, "evaluate", str(model_dir), "--data", data, *period)
    assert code == 0, err
    assert "  calmar        inf" in out.splitlines()


def test_signals_with_too_little_warm_up_are_refused_naming_the_bars_needed(model_dir, capsys,
                                                                           tmp_path):
    """Latest bars shown without the features' warm-up before them printed decisions of
    incomplete features, exit 0."""
    short = write_candles(load_ohlcv().iloc[-200:], tmp_path / "short.csv")
    code, out, err = run_cli(capsys, "signals", str(model_dir), "--data", str(short), "--last",
                             "100")
    assert code == 2 and out == ""
    assert ("200 bars, so the first of the 100 bars shown has 100 bars before it, fewer than "
            "the 167 bars of warm-up the features need; give at least 267 bars") in (
        one_error_line(err))
    code, out, err = run_cli(capsys, "signals", str(model_dir), "--data", str(short), "--last",
                             "33")
    assert code == 0, err
    assert len(out.splitlines()) == 34


@pytest.mark.parametrize("data", ["/nonexistent/candles.csv", ""])
def test_a_data_path_that_is_not_there_is_one_line_before_anything_is_read(run_dir, capsys,
                                                                           tmp_path, data):
    """train --data of a path that is not there said so after the best configs were read
    and probed (and their gate warning printed); an empty one read the working folder."""
    for verb in ("train", "evaluate"):
        out_flag = ["--out", str(tmp_path / "m")] if verb == "train" else []
        code, out, err = run_cli(capsys, verb, str(run_dir), "--data", data, *out_flag)
        assert code == 2 and out == ""
        assert f"--data: data path not found: {data!r}" in one_error_line(err)
        assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(("key", "value", "message"), [
    ("threshold", 7, "params.trading.threshold: values must be in (0, 1), got 7"),
    ("holding_period", 0, "params.trading.holding_period: values must be in [1, 1e+06], got 0"),
])  # fmt: skip
def test_signals_re_check_the_configuration_a_model_was_trained_from(model_dir, capsys, tmp_path,
                                                                   key, value, message):
    """signals (and decide) read the manifest's best-configs entry unchecked: a manifest damaged
    with its digest recomputed decided by a threshold of 7 or a holding period of 0."""
    from cryptosweep.production.model import MANIFEST, manifest_digest

    damaged = tmp_path / "damaged"
    shutil.copytree(model_dir, damaged)
    manifest = json.loads((damaged / MANIFEST).read_text())
    manifest["configuration"]["params"]["trading"][key] = value
    manifest["digest"] = manifest_digest(manifest)
    (damaged / MANIFEST).write_text(json.dumps(manifest))
    code, out, err = run_cli(capsys, "signals", str(damaged), "--data", SAMPLE)
    assert code == 2 and out == ""
    line = one_error_line(err)
    assert f"{damaged}: manifest.json configuration: {message}" in line
    manifest["configuration"] = "nonsense"
    manifest["digest"] = manifest_digest(manifest)
    (damaged / MANIFEST).write_text(json.dumps(manifest))
    code, out, err = run_cli(capsys, "signals", str(damaged), "--data", SAMPLE)
    assert code == 2 and "expected a configuration object" in one_error_line(err)


def test_signals_leave_out_a_bar_still_forming_and_refuse_bars_from_the_future(model_dir, capsys,
                                                                               tmp_path):
    """A decision "at the close" of a bar that had not closed was printed (an exporter's
    forming candle), and bars dated two days ahead were decided on without a word."""
    ohlcv = load_ohlcv().iloc[-400:]
    now = pd.Timestamp.now(tz="UTC")
    if now.ceil("h") - now < pd.Timedelta(minutes=2):  # the forming bar would close meanwhile
        time.sleep((now.ceil("h") - now).total_seconds() + 1)
        now = pd.Timestamp.now(tz="UTC")
    live = ohlcv.copy()
    live.index = live.index - live.index[-1] + now.floor("h")  # the last bar opened this hour
    code, out, err = run_cli(capsys, "signals", str(model_dir), "--data",
                             str(write_candles(live, tmp_path / "live.csv")), "--last", "2",
                             "--json")
    assert code == 0, err
    shown = [record["open_time"] for record in json.loads(out)]
    assert shown == [t.isoformat() for t in live.index[-3:-1]]
    assert f"left out the last bar (opening {live.index[-1].isoformat()})" in err
    ahead = ohlcv.copy()
    ahead.index = ahead.index - ahead.index[-1] + now.floor("h") + pd.Timedelta(days=2)
    code, out, err = run_cli(capsys, "signals", str(model_dir), "--data",
                             str(write_candles(ahead, tmp_path / "ahead.csv")))
    assert code == 2 and out == ""
    assert "opens after now" in one_error_line(err)


def test_evaluate_leaves_out_a_bar_still_forming_as_signals_does(model_dir, capsys, tmp_path):
    """evaluate backtested an exporter's forming candle as a closed bar: its stop checks and
    the last close moved with every run, while signals left it out."""
    now = pd.Timestamp.now(tz="UTC")
    if now.ceil("h") - now < pd.Timedelta(minutes=2):  # the forming bar would close meanwhile
        time.sleep((now.ceil("h") - now).total_seconds() + 1)
        now = pd.Timestamp.now(tz="UTC")
    live = load_ohlcv().iloc[-400:]
    live.index = live.index - live.index[-1] + now.floor("h")  # the last bar opened this hour
    code, out, err = run_cli(capsys, "evaluate", str(model_dir), "--data",
                             str(write_candles(live, tmp_path / "live.csv")))
    assert code == 0, err
    first, last = live.index[0].isoformat(), live.index[-2].isoformat()
    assert f"399 bars {first} .. {last}" in out.splitlines()[0]
    assert f"left out the last bar (opening {live.index[-1].isoformat()})" in err


def test_closed_bars_keeps_every_bar_that_has_closed():
    ohlcv = load_ohlcv().iloc[-200:]
    last = ohlcv.index[-1]
    closed, note = closed_bars(ohlcv, "1h", last + pd.Timedelta(hours=1))
    assert closed is ohlcv and note is None  # closed exactly now
    closed, note = closed_bars(ohlcv, "1h", last + pd.Timedelta(minutes=59))
    assert closed.index[-1] == ohlcv.index[-2] and "closes at" in note
    with pytest.raises(DataError, match="opens after now"):
        closed_bars(ohlcv, "1h", last - pd.Timedelta(minutes=1))


def test_evaluate_reads_another_markets_layout_and_annualises_by_its_calendar(model_dir,
                                                                               capsys):
    """The README points evaluate at the backtesting package's EURUSD candles, which only a
    column mapping reads: evaluate had no --format/--columns (signals had), so it could not.
    Read with them, they are annualised with their own calendar and say so."""
    backtesting_test = pytest.importorskip("backtesting.test")
    eurusd = Path(backtesting_test.__file__).parent / "EURUSD.csv"
    columns = "timestamp=Unnamed: 0,open=Open,high=High,low=Low,close=Close,volume=Volume"
    code, out, err = run_cli(capsys, "evaluate", str(model_dir), "--data", str(eurusd),
                             "--columns", columns, "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["trades"] >= 0 and "sharpe" in metrics
    assert "these candles are a market closed at weekends" in err
    code, _, err = run_cli(capsys, "evaluate", str(model_dir), "--data", str(eurusd))
    assert code == 2 and "unknown data format" in err, err


@pytest.mark.parametrize(("columns", "expected"), [
    ("timestamp=timestamp,close=open", "column 'open' is read as open and close"),
    ("open=o,close=o", "column 'o' is read as open and close"),
])
def test_evaluate_refuses_one_column_read_as_two_keys(model_dir, capsys, columns, expected):
    """--columns close=open read the opens as closes too (open, not given, reads 'open')."""
    code, out, err = run_cli(capsys, "evaluate", str(model_dir), "--data", SAMPLE,
                             "--columns", columns)
    assert code == 2 and out == ""
    assert expected in one_error_line(err)


def test_evaluate_refuses_rank_with_a_trained_model(model_dir, capsys):
    """--rank with a model folder was silently ignored (--until was refused)."""
    for flag in ("--rank", "--until"):
        code, out, err = run_cli(capsys, "evaluate", str(model_dir), "--data", SAMPLE, flag,
                                 "2" if flag == "--rank" else "2022-06-01")
        assert code == 2 and out == ""
        assert f"{flag} chooses and trains a best configuration" in one_error_line(err)


def test_evaluate_html_naming_a_folder_is_refused_before_anything_is_written(model_dir, capsys,
                                                                            tmp_path):
    """--html pages/ (no such folder) wrote a file named pages."""
    code, out, err = run_cli(capsys, "evaluate", str(model_dir), "--data", SAMPLE, "--html",
                             f"{tmp_path / 'pages'}/")
    assert code == 2 and out == ""
    assert "names a folder; give the page's file name" in one_error_line(err)
    assert list(tmp_path.iterdir()) == []


def test_train_refuses_the_folders_the_nightlys_champion_steps_write(run_dir, model_dir,
                                                                     capsys, tmp_path):
    """`train --out MODELS/champion.prev` replaced the champion before it (what a rollback
    restores) and `--out MODELS/demoted/<stamp>/champion` a demoted champion, the evidence
    of its demotion (a helper's attack): only `champion` itself was refused. Now each folder
    the champion steps write, or one inside it, is one line, exit 2, nothing changed."""
    models = tmp_path / "models"
    for folder in ("champion.prev", "demoted/20260101T000000Z/champion"):
        shutil.copytree(model_dir, models / folder)
    (models / "champions.jsonl").write_text('{"decision": "approved", "promoted": true}\n')

    def state() -> dict[str, bytes]:
        return {str(p.relative_to(models)): p.read_bytes() for p in sorted(models.rglob("*"))
                if p.is_file()}

    before = state()
    for target, says in (("champion.prev", "is champion.prev of the models folder"),
                         ("demoted/20260101T000000Z/champion", "is in demoted of the models"),
                         ("champion/sub", "is in champion of the models folder")):
        code, out, err = run_cli(capsys, "train", str(run_dir), "--out", str(models / target))
        assert code == 2 and out == "" and says in one_error_line(err), target
        assert state() == before
    code, _, err = run_cli(capsys, "train", str(run_dir), "--out", str(models / "mine"))
    assert code == 0, err
    from cryptosweep.nightly import promotion  # the names agree with the champion steps'
    from cryptosweep.production.model import NIGHTLY_FOLDERS

    assert set(NIGHTLY_FOLDERS) == {promotion.CHAMPION, promotion.PREVIOUS, promotion.NEW,
                                    promotion.OLD, promotion.DEMOTED}
