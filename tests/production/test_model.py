"""From a sweep's winner to the model that trades: no training/serving skew, for every family.

Each family's model is trained from the best-configs entry of a real sweep (``family_sweep``)
and checked against what that sweep recorded: the holdout metrics and per-bar returns in its
files and journal, the probabilities and trades of the objective's holdout evaluation. Then:
appending bars never changes an earlier decision, and a model saved and loaded in a fresh
process decides the same bytes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptosweep import load_model, train_model
from cryptosweep.core.errors import ConfigError, DataError, ModelError
from cryptosweep.core.files import canonical_json, file_sha256, pretty_json
from cryptosweep.core.vocabulary import MODEL_FAMILIES
from cryptosweep.production import MODEL_FORMAT, decisions_json, read_best_configs
from cryptosweep.production.candles import MIN_BARS
from cryptosweep.production.model import manifest_digest
from cryptosweep.records.journal import Journal
from cryptosweep.trading.data import load_ohlcv, sample_data_path
from cryptosweep.trading.features import FEATURE_COLUMNS, WARM_UP_BARS
from cryptosweep.trading.objective import ObjectiveSpec, data_fingerprint, holdout_predictions
from cryptosweep.trading.steps import TradingParams, backtest_bars, load_market
from tests.support import weekday_market_bars_per_year

#: Columns that change on the last bar when the next bar arrives: a pending entry gets filled.
FILLED_LATER = ["pending", "fill_price", "stop_price", "take_profit_price"]


@pytest.fixture(scope="module")
def ohlcv() -> pd.DataFrame:
    return load_ohlcv()


@pytest.fixture(scope="module")
def winners(family_sweep) -> dict[str, tuple[Path, dict]]:
    """family -> (run folder, best-configs entry of its winner)."""
    out = {}
    for family in MODEL_FAMILIES:
        run_dir = family_sweep(family)
        best, _ = read_best_configs(run_dir)
        out[family] = (run_dir, best["configurations"][0])
    return out


@pytest.fixture(scope="module")
def holdout_models(winners):
    """family -> the winner trained until the holdout, as the sweep's holdout evaluation."""
    return {family: train_model(entry, until="holdout") for family, (_, entry) in winners.items()}


def test_best_configs_entries_carry_what_training_needs(winners):
    run_dir, entry = winners["lightgbm"]
    best, _ = read_best_configs(run_dir)
    assert best["schema"] == "cryptosweep.best_configs/1"
    results = json.loads(next(run_dir.glob("sweep_results_*.json")).read_text())
    assert ObjectiveSpec.of(entry["objective_spec"]).objective.rounds_per_unit == 5.0
    assert entry["objective_spec"]["data"]["holdout_fraction"] == 0.2
    assert entry["data"]["sha256"] == data_fingerprint(None) == results["data"]["sha256"]
    assert entry["data"]["bar_interval"] == "1h"
    assert entry["data"]["holdout_first_bar"] == results["data"]["holdout_first_bar"]
    assert {k: v for k, v in entry.items() if k not in ("objective_spec", "data")} \
        == results["top_k"][0]  # fmt: skip


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_decisions_on_the_holdout_are_the_ones_the_sweep_scored(family, winners, holdout_models,
                                                                ohlcv):
    run_dir, entry = winners[family]
    model = holdout_models[family]
    start = entry["data"]["holdout_first_bar"]
    details = model.backtest_details(ohlcv, start=start)
    recorded = {k.removeprefix("holdout_"): v for k, v in entry["holdout"].items()
                if k not in ("holdout_bars", "holdout_held_spans", "holdout_stress")}
    assert canonical_json(details.metrics) == canonical_json(recorded)  # the sweep's file
    journal = Journal.open_existing(run_dir)
    try:
        stored = journal.get_returns("holdout")[entry["eval_id"]]  # the sweep's journal
    finally:
        journal.close()
    assert details.result.returns.astype("<f8").tobytes() == stored.tobytes()

    spec = ObjectiveSpec.of(entry["objective_spec"])
    swept = holdout_predictions(entry["params"], entry["budget"], entry["seed"], spec)
    decisions = model.decide(ohlcv, start=start)
    assert decisions.index.equals(swept.times)
    assert decisions["proba"].to_numpy().tobytes() == swept.proba.tobytes()
    trading = TradingParams.from_params(entry["params"])
    trades = backtest_bars(load_market(spec), swept.bars, swept.proba, trading,
                           spec.objective).trades
    assert trades, "a parity check needs trades"
    entries = decisions[(decisions["action"] != "none") & ~decisions["pending"]]
    assert list(entries["fill_time"]) == [swept.times[t.entry_bar] for t in trades]
    assert list(entries["signal"]) == [t.side for t in trades]
    assert entries["fill_price"].tolist() == [t.entry_price for t in trades]
    sides = np.array([t.side for t in trades], dtype="float64")
    prices = np.array([t.entry_price for t in trades])
    assert entries["stop_price"].tolist() == (prices * (1.0 - sides * trading.stop_loss)).tolist()
    assert entries["take_profit_price"].tolist() == (
        prices * (1.0 + sides * trading.take_profit)).tolist()
    holding = pd.Timedelta(hours=trading.holding_period)
    assert (entries["planned_exit_time"] - entries["fill_time"] == holding).all()


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_appending_later_bars_never_changes_an_earlier_decision(family, holdout_models, ohlcv):
    model = holdout_models[family]
    full = model.decide(ohlcv)
    assert full["proba"].iloc[:WARM_UP_BARS].isna().all()
    assert (full["action"].iloc[:WARM_UP_BARS] == "none").all()
    decided = np.flatnonzero(full["action"].to_numpy() != "none")
    held = np.flatnonzero(full["position"].to_numpy() != 0)
    # the short series ends on: an entry (pending there), an open position, any bar
    for end in (decided[len(decided) // 2] + 1, held[len(held) // 3] + 1, 6_001):
        short = model.decide(ohlcv.iloc[:end])
        assert short.iloc[:-1].equals(full.iloc[: end - 1]), end
        last, later = short.iloc[-1], full.iloc[end - 1]
        assert last.drop(FILLED_LATER).equals(later.drop(FILLED_LATER)), end
        if later["action"] != "none":
            assert last["pending"] and np.isnan(last["fill_price"]) and not later["pending"]
            assert later["fill_price"] == ohlcv["open"].iloc[end] * (
                1 + later["signal"] * 2.0 / 1e4)  # the next open with 2 bps slippage


def test_a_model_saved_and_loaded_in_a_fresh_process_decides_the_same_bytes(holdout_models,
                                                                          ohlcv, tmp_path):
    expected = {}
    for family, model in holdout_models.items():
        model.save(tmp_path / family)
        expected[family] = decisions_json(model.decide(ohlcv))
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from cryptosweep import load_model\n"
        "from cryptosweep.production import decisions_json\n"
        "from cryptosweep.trading.data import load_ohlcv\n"
        "ohlcv = load_ohlcv()\n"
        "for family in sys.argv[2:]:\n"
        "    model = load_model(Path(sys.argv[1]) / family)\n"
        "    (Path(sys.argv[1]) / f'{family}.json').write_text(decisions_json("
        "model.decide(ohlcv)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path), *expected],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for family, text in expected.items():
        assert (tmp_path / f"{family}.json").read_text() == text, family
        assert json.loads(text)[-1]["open_time"] == ohlcv.index[-1].isoformat()


def test_the_manifest_records_how_the_model_was_made(winners, ohlcv, tmp_path):
    run_dir, entry = winners["lightgbm"]
    model = train_model(entry)  # every bar of the configured data
    manifest = model.manifest
    assert manifest["format"] == MODEL_FORMAT and manifest["family"] == "lightgbm"
    assert manifest["configuration"] == entry and manifest["seed"] == entry["seed"]
    assert manifest["trading_params"] == entry["params"]["trading"]
    assert manifest["objective_spec"] == entry["objective_spec"]
    assert manifest["rounds"] == entry["metrics"]["rounds"] == 10
    assert manifest["features"] == list(FEATURE_COLUMNS)
    data = manifest["data"]
    assert data["sha256"] == entry["data"]["sha256"] and data["bar_interval"] == "1h"
    assert data["first_bar"] == ohlcv.index[0].isoformat()
    assert data["last_bar"] == ohlcv.index[-1].isoformat() and data["trained_until"] is None
    assert data["first_training_bar"] == ohlcv.index[WARM_UP_BARS].isoformat()
    assert data["last_training_bar"] < data["last_bar"]  # its label needs later bars: purged
    import lightgbm

    assert manifest["versions"]["lightgbm"] == lightgbm.__version__
    folder = model.save(tmp_path / "model")
    saved = json.loads((folder / "manifest.json").read_text())
    assert saved["files"] == {name: file_sha256(folder / name)
                              for name in ("model.txt", "model.txt.json")}
    assert saved["model_file"] == "model.txt" and saved == model.manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary folder left
    # the whole best-configs dict, its path and the entry train the same model
    again = train_model(next(run_dir.glob("best_configs_*.json")), rank=1).save(tmp_path / "b")
    assert (again / "model.txt").read_bytes() == (folder / "model.txt").read_bytes()


def test_training_until_a_time_reads_no_later_bar(winners, ohlcv, tmp_path):
    _, entry = winners["lightgbm"]
    until = ohlcv.index[5_000]
    changed = ohlcv.copy()
    changed.iloc[5_001:, :] = changed.iloc[5_001:, :].to_numpy()[::-1]  # other valid candles
    first = train_model(entry, data=ohlcv, until=until).save(tmp_path / "a")
    second = train_model(entry, data=changed, until=until.isoformat()).save(tmp_path / "b")
    assert (first / "model.txt").read_bytes() == (second / "model.txt").read_bytes()
    manifest = json.loads((first / "manifest.json").read_text())["data"]
    assert manifest["last_bar"] == until.isoformat() and manifest["source"] == "<DataFrame>"
    changed_too = train_model(entry, data=changed, until=ohlcv.index[5_300]).save(tmp_path / "c")
    assert (changed_too / "model.txt").read_bytes() != (first / "model.txt").read_bytes()


def test_saving_replaces_a_model_but_refuses_any_other_folder(holdout_models, tmp_path):
    model = holdout_models["lightgbm"]
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine")
    with pytest.raises(ModelError, match="not a cryptosweep model folder"):
        model.save(other)
    assert [p.name for p in other.iterdir()] == ["todo.txt"]
    folder = model.save(tmp_path / "model")
    (folder / "extra.txt").write_text("left by someone")
    model.save(folder)  # a model folder is replaced as a whole
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model.txt",
                                                       "model.txt.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "notes"]


def test_a_changed_or_foreign_model_folder_is_refused(holdout_models, tmp_path):
    folder = holdout_models["xgboost"].save(tmp_path / "model")
    load_model(folder)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())

    def rewrite(change) -> None:
        edited = json.loads(json.dumps(manifest))
        change(edited)
        edited["digest"] = manifest_digest(edited)
        manifest_path.write_text(pretty_json(edited))

    rewrite(lambda m: m["versions"].update(xgboost="1.7.0"))  # saved by another version
    with pytest.raises(ModelError, match=r"saved with xgboost 1\.7\.0, this environment has"):
        load_model(folder)
    rewrite(lambda m: m.update(format="cryptosweep-model/0"))
    with pytest.raises(ModelError, match="manifest format 'cryptosweep-model/0'"):
        load_model(folder)
    edited = json.loads(json.dumps(manifest))
    edited["trading_params"]["threshold"] = 0.9  # an edit without a new digest
    manifest_path.write_text(pretty_json(edited))
    with pytest.raises(ModelError, match=r"manifest\.json was changed"):
        load_model(folder)
    manifest_path.write_text(pretty_json(manifest))
    with open(folder / "model.ubj", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelError, match=r"model\.ubj was changed after the model was saved"):
        load_model(folder)
    with pytest.raises(ModelError, match=r"no manifest\.json"):
        load_model(tmp_path)


def test_bad_configurations_and_candles_are_one_clear_error(winners, holdout_models, ohlcv):
    run_dir, entry = winners["lightgbm"]
    best, _ = read_best_configs(run_dir)
    with pytest.raises(ConfigError, match=r"has no schema.*cryptosweep run --resume"):
        train_model({k: v for k, v in best.items() if k != "schema"})
    with pytest.raises(ConfigError, match="lacks objective_spec"):
        train_model({k: v for k, v in entry.items() if k != "objective_spec"})
    with pytest.raises(ConfigError, match="rank 3 is out of range"):
        train_model(best, rank=3)
    with pytest.raises(ConfigError, match=r"metrics\.rounds is 11"):
        train_model({**entry, "metrics": {**entry["metrics"], "rounds": 11}})
    for seed in (-1, 2**31, 2**64, True):  # LightGBM would wrap a wider seed silently
        with pytest.raises(ConfigError, match=r"seed must be an integer in \[0, 2\*\*31\)"):
            train_model({**entry, "seed": seed})
    model = holdout_models["lightgbm"]
    with pytest.raises(DataError, match=f"fewer than the {MIN_BARS} a decision needs"):
        model.decide(ohlcv.iloc[: MIN_BARS - 1])
    model.decide(ohlcv.iloc[:MIN_BARS])  # one complete bar is enough
    with pytest.raises(DataError, match="bars are 4h apart, but the model was trained on 1h"):
        model.decide(ohlcv.iloc[::4])
    with pytest.raises(DataError, match="is outside the data"):
        model.backtest(ohlcv, start="2030-01-01")
    with pytest.raises(DataError, match="too few to train"):
        train_model(entry, until=ohlcv.index[50])


def test_the_same_instants_in_another_time_zone_give_the_same_decisions(holdout_models, ohlcv):
    """The features read the hour of the day in UTC: candles indexed in Tokyo time (the same
    instants) used to move 156 of 9,504 decisions and a backtest's Sharpe ratio from -2.07 to
    -0.10."""
    model = holdout_models["lightgbm"]
    tokyo = ohlcv.tz_convert("Asia/Tokyo")
    pd.testing.assert_frame_equal(model.decide(tokyo), model.decide(ohlcv))
    start = ohlcv.index[-500]
    assert model.backtest(tokyo, start=start) == model.backtest(ohlcv, start=start)


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("open", -1.0, "prices must be positive"),
    ("close", -5.0, "prices must be positive"),
    ("high", 1.0, "high is below low"),
    ("open", 1e9, "open is outside"),
    ("volume", -1.0, "volume is negative"),
])
def test_candles_in_memory_that_could_not_have_traded_are_refused(holdout_models, ohlcv, column,
                                                                   value, reason):
    """As ``load_ohlcv`` refuses such rows in a file: a negative close used to give a NaN
    probability and "no action" without a word."""
    bad = ohlcv.iloc[-300:].copy()
    bad.iloc[-1, bad.columns.get_loc(column)] = value
    with pytest.raises(DataError, match=re.escape(f"the bar at {bad.index[-1].isoformat()}: "
                                                  f"{reason}")):
        holdout_models["lightgbm"].decide(bad)


@pytest.mark.filterwarnings("ignore::cryptosweep.production.model.InSampleWarning")
def test_a_backtest_on_a_market_of_another_calendar_is_annualised_by_its_own(
        holdout_models, ohlcv, tmp_path):
    """`evaluate` of a model trained on BTC (open around the clock) on candles closed at
    weekends (the real BTC candles, Saturdays and Sundays UTC removed) annualised with the
    training's 8,760 bars a year: Sharpe, Sortino and turnover 18 % high, without a word. Now
    with the candles' own density and a note; the same calendar keeps the training's count."""
    from cryptosweep.production.evaluation import evaluate
    from cryptosweep.production.model import CalendarWarning, TrainedModel

    model = holdout_models["lightgbm"]
    weekdays = ohlcv[ohlcv.index.day_of_week < 5]
    own = weekday_market_bars_per_year(weekdays.index)
    with pytest.warns(CalendarWarning, match="closed at weekends"):  # as evaluate's note
        details = model.backtest_details(weekdays)
    returns = details.result.returns
    assert details.metrics["trades"] > 0
    assert details.metrics["sharpe"] == pytest.approx(
        returns.mean() / returns.std(ddof=1) * np.sqrt(own), rel=1e-9)
    note = model.calendar_note(weekdays)
    assert note is not None and "closed at weekends" in note and f"{own:,.0f}" in note
    assert model.calendar_note(ohlcv) is None
    path = tmp_path / "weekdays.csv"
    weekdays.rename_axis("timestamp").to_csv(path)
    notes = evaluate(model, path).notes
    assert note in notes
    # Trained on a market closed at weekends (its recorded count), backtested on BTC: 8,760.
    manifest = model.manifest
    manifest["data"]["periods_per_year"] = 6200.0
    fx_trained = TrainedModel(model._entry_model, manifest)
    with pytest.warns(CalendarWarning, match="open around the clock"):
        assert fx_trained.backtest(ohlcv)["sharpe"] == model.backtest(ohlcv)["sharpe"]
    assert "open around the clock" in fx_trained.calendar_note(ohlcv)
    # The same calendar, or candles too short to read one from: the training's count.
    assert fx_trained.calendar_note(weekdays) is None
    recent = ohlcv.iloc[-400:]  # 16 days
    assert fx_trained.calendar_note(recent) is None
    fx_returns = fx_trained.backtest_details(recent).result.returns
    assert fx_trained.backtest(recent)["sharpe"] == pytest.approx(
        fx_returns.mean() / fx_returns.std(ddof=1) * np.sqrt(6200.0), rel=1e-9)


def test_candles_in_memory_train_on_the_configured_range_and_its_holdout(tmp_path):
    """With data.start/data.end, train_model(data=<DataFrame>) trained on the whole frame up
    to the file's holdout, the sweep's holdout bars included: not the model the holdout
    evaluation scored. The frame now gives the range and its holdout, as the file does."""
    from cryptosweep.core.config_files import load_config
    from cryptosweep.sweep.runner import run_sweep
    from tests.support import tiny_config

    config = tiny_config(name="ranged", random__n_trials=1, reporting__top_k=1,
                         data__start="2022-01-01", data__end="2022-07-01")
    run = run_sweep(config=load_config(raw=config), seed=5, log_dir=tmp_path,
                    run_name="ranged", show_progress=False)
    best, _ = read_best_configs(Path(run.run_dir))
    holdout_first_bar = best["configurations"][0]["data"]["holdout_first_bar"]
    candles = load_ohlcv()
    before_holdout = candles.index[candles.index < pd.Timestamp(holdout_first_bar)][-1]
    from_file = train_model(best, data=sample_data_path(), until="holdout")
    from_frame = train_model(best, data=candles, until="holdout")
    for model in (from_file, from_frame):
        data = model.manifest["data"]
        assert (data["first_bar"], data["last_bar"]) == (
            "2022-01-01T00:00:00+00:00", before_holdout.isoformat())
    assert from_frame.manifest["data"]["training_rows"] == from_file.manifest["data"][
        "training_rows"]
    file_folder, frame_folder = from_file.save(tmp_path / "a"), from_frame.save(tmp_path / "b")
    assert (file_folder / "model.txt").read_bytes() == (frame_folder / "model.txt").read_bytes()
    everything = train_model(best, data=candles).manifest["data"]
    assert everything["last_bar"] == "2022-06-30T23:00:00+00:00"  # the range's last bar
