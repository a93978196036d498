"""The ``evidence`` section against the data, before anything is created: CPCV splits that
would train on too few bars, regime windows that leave no bar labelled
(``sweep/preflight.py``'s ``check_evidence``)."""

from __future__ import annotations

import json
import re

import pytest

from cryptosweep.core.config_files import load_config
from cryptosweep.core.errors import ConfigError
from cryptosweep.sweep.preflight import preflight
from tests.support import cli, cli_in_process, tiny_config

# The bundled sample: 9,504 hourly bars, 7,604 of them development bars (holdout 0.2); the
# features need 167 bars of warm-up; tiny_config draws holding periods of up to 24 bars.


def _cpcv(groups: int, test_groups: int, **changes) -> dict:
    return tiny_config(evidence={"cpcv": {"enabled": True, "groups": groups,
                                          "test_groups": test_groups}}, **changes)


def test_a_cpcv_split_that_trains_on_feature_warm_up_only_is_refused():
    """16 groups, 15 tested: the split testing groups 1..15 trains on group 0 (476 bars), less
    25 purged and the 167 bars of feature warm-up: 284 < 300. ``validate`` said ok and
    ``run`` failed after the search, blaming ``objective``."""
    config = load_config(raw=_cpcv(16, 15, objective__min_train_bars=300))
    with pytest.raises(ConfigError, match=r"^evidence\.cpcv\.test_groups: ") as error:
        preflight(config)
    message = str(error.value)
    assert "the split that trains on group 0 (testing the other 15 of 16)" in message
    assert "keeps 451 bars, 167 of them in the features' warm-up" in message
    assert "284 bars with complete features, fewer than objective.min_train_bars=300" in message


def test_an_embargo_that_empties_a_cpcv_split_is_refused_naming_the_embargo():
    """16 groups, 14 tested: a split that trains on two groups, each right after a test group
    (e.g. 13 and 15), keeps nothing after a 500-bar embargo (a ValueError in the run)."""
    config = load_config(raw=_cpcv(16, 14, objective__embargo_bars=500))
    with pytest.raises(ConfigError, match=r"^objective\.embargo_bars: ") as error:
        preflight(config)
    assert re.search(r"the split that trains on groups \d+, \d+ \(testing the other 14 of 16\)"
                     r".* keeps 0 bars", str(error.value))


def test_cpcv_settings_that_train_on_enough_bars_pass():
    config = load_config(raw=_cpcv(16, 15, objective__min_train_bars=280))
    assert preflight(config).data["development_bars"] == 7604
    assert preflight(load_config(raw=_cpcv(4, 2))).data["bars"] == 9504


@pytest.mark.parametrize(("key", "value", "needs"), [
    ("volatility_min_history", 10_000_000, "10000024 bars"),
    ("trend_lookback", 100_000, "100000 bars"),
    ("volatility_window", 9_500, "9668 bars"),
])  # fmt: skip
def test_regime_windows_that_label_no_bar_are_refused(key, value, needs):
    """Every bar was ``warmup``, and the report said the regime warmup carried the return."""
    config = load_config(raw=tiny_config(evidence={"regimes": {key: value}}))
    with pytest.raises(ConfigError, match=rf"^evidence\.regimes\.{key}: ") as error:
        preflight(config)
    message = str(error.value)
    assert needs in message and "9504 bars" in message


def test_regime_windows_that_label_some_bars_pass():
    config = load_config(raw=tiny_config(evidence={"regimes": {"volatility_min_history": 7000}}))
    assert preflight(config).data["bars"] == 9504
    # Only holdout bars get a regime (the first 9,168 bars are warm-up): tabulated, as before.
    late = load_config(raw=tiny_config(evidence={"regimes": {"volatility_window": 9_000}}))
    assert preflight(late).data["development_bars"] < 9168 < preflight(late).data["bars"]
    off = tiny_config(evidence={"regimes": {"enabled": False, "trend_lookback": 100_000}})
    assert preflight(load_config(raw=off)).data["bars"] == 9504


def test_run_refuses_an_impossible_cpcv_split_before_the_run_folder(tmp_path):
    config_path = tmp_path / "sweep.json"
    config_path.write_text(json.dumps(_cpcv(16, 15, objective__min_train_bars=300)))
    done = cli("run", "--config", str(config_path), "--log-dir", str(tmp_path / "logs"),
               "--run-name", "never")
    assert done.returncode == 2, done.stderr
    assert "evidence.cpcv.test_groups: " in done.stderr
    assert not (tmp_path / "logs" / "never").exists()


def test_another_market_of_another_bar_interval_is_refused_before_the_run_folder(
        tmp_path, capsys):
    """4-hour candles as another market of an hourly sweep: validated, and each top-k
    configuration's holding period of 4..24 bars traded 16..96 hours there, scored beside the
    hourly ones in one table ("holds on 1 of 1 market"); now one line, exit 2."""
    from cryptosweep.trading.data import load_ohlcv

    hourly = load_ohlcv(None)
    four_hours = hourly.resample("4h").agg({"open": "first", "high": "max", "low": "min",
                                            "close": "last", "volume": "sum"})
    four_hours.index.name = "timestamp"
    path = tmp_path / "btc_4h.csv"
    four_hours.to_csv(path)
    market = {"name": "btc-4h", "data": {"path": str(path), "format": "generic",
                                         "columns": {"timestamp": "timestamp"}}}
    config_path = tmp_path / "sweep.json"
    config_path.write_text(json.dumps(tiny_config(evidence={"markets": [market]})))
    done = cli_in_process(capsys, "run", "--config", str(config_path), "--log-dir",
                          str(tmp_path / "logs"), "--run-name", "never")
    assert done.returncode == 2, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "error" in line]
    assert ("evidence.markets (btc-4h): its candles are 4h bars and the sweep's are 1h bars"
            in line), line
    assert "give it 1h candles of that market" in line
    assert not (tmp_path / "logs").exists()
    # The same candles at the sweep's interval pass.
    hourly_market = {"name": "btc-1h", "data": {"path": None}}
    assert preflight(load_config(raw=tiny_config(
        evidence={"markets": [hourly_market]}))).data["bars"] == 9504


def test_checking_cpcv_splits_holds_one_split_at_a_time():
    """16 groups, 8 tested: ``validate`` held all C(16, 8) = 12,870 training sets at once (1 GB
    for the 7,604 development bars of the bundled sample; tens of GB for a year of minute
    bars). 14 of 7 here (3,432 splits, 200 MB at once): now a few MB."""
    import tracemalloc

    from cryptosweep.trading.objective import check_cpcv
    from cryptosweep.trading.steps import load_market

    config = load_config(raw=_cpcv(14, 7))
    load_market(config.objective_spec())  # the candles and features, cached: not counted
    tracemalloc.start()
    try:
        check_cpcv(config.objective_spec(), 14, 7, 24)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20e6, f"{peak / 1e6:.0f} MB"
