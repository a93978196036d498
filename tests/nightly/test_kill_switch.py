"""The kill switch (nightly/field.py): a champion deployed at the end of September 2022 meets,
in October, a market whose behaviour changed after its deployment, and is demoted; the same
champion on the real October candles is judged on the same scale.

The changed market is built from the REAL bundled candles by one documented transformation:
after the deployment bar, every hourly close-to-close log return ``r`` becomes ``-|r|`` (the
real magnitudes, every one down: a market that only falls), each bar opening at the previous
close, its high and low kept at the real ratio to the bar's body. The champion is the one-trial
LightGBM sweep's winner with its entry threshold set to 0.01 (always long while flat), so that
the test hinges on the market, not on whether the model happens to trade.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cryptosweep.cli import main
from cryptosweep.core.settings import KillSwitchSettings
from cryptosweep.nightly import promotion
from cryptosweep.nightly.field import read_ledger, watch_champion
from cryptosweep.production import read_best_configs, train_model
from cryptosweep.trading.data import load_ohlcv

DEPLOYED = pd.Timestamp("2022-09-30T23:00:00Z")


def falling_after(candles: pd.DataFrame, when: pd.Timestamp) -> pd.DataFrame:
    """The transformation of the module docstring."""
    out = candles.copy()
    after = out.index > when
    close = candles["close"].to_numpy()
    returns = np.diff(np.log(close))[after[1:]]
    start = close[np.argmax(after) - 1]
    new_close = start * np.exp(np.cumsum(-np.abs(returns)))
    new_open = np.concatenate([[start], new_close[:-1]])
    real = candles.loc[after]
    top = np.maximum(real["open"], real["close"]).to_numpy()
    bottom = np.minimum(real["open"], real["close"]).to_numpy()
    out.loc[after, "open"] = new_open
    out.loc[after, "close"] = new_close
    out.loc[after, "high"] = np.maximum(new_open, new_close) * real["high"].to_numpy() / top
    out.loc[after, "low"] = np.minimum(new_open, new_close) * real["low"].to_numpy() / bottom
    return out


def write_candles(frame: pd.DataFrame, path: Path) -> Path:
    out = frame.copy()
    out.index = out.index.as_unit("ms").asi8
    out.to_csv(path, index_label="open_time")
    return path


def deploy(family_sweep, models: Path) -> None:
    best, _ = read_best_configs(family_sweep("lightgbm"))
    best["configurations"][0]["params"]["trading"]["threshold"] = 0.01
    best["deployment"] = {"decision": "approved", "reason": "test"}
    model = train_model(best, until=DEPLOYED.isoformat())
    model.save(models / promotion.CHAMPION)
    (models / "best_configs_latest.json").write_text(json.dumps(best))


def test_the_kill_switch_demotes_a_champion_whose_market_changed(family_sweep, tmp_path,
                                                                  capsys):
    candles = load_ohlcv()
    models = tmp_path / "models"
    deploy(family_sweep, models)
    real = watch_champion(models, write_candles(candles, tmp_path / "real.csv"), demote=False)
    assert real is not None and real["state"] == "ok" and real["live_bars"] == 31 * 24
    ledger_real = read_ledger(models)
    assert ledger_real and len(ledger_real) == real["trades"]

    changed = write_candles(falling_after(candles, DEPLOYED), tmp_path / "changed.csv")
    # The config's deployment.kill_switch decides: asking for more live trades than there
    # are keeps the champion on the same evidence.
    patient = KillSwitchSettings(min_live_trades=10_000)
    held = watch_champion(models, changed, kill_switch=patient)
    assert held is not None and held["state"] == "ok" and (models / "champion").is_dir()
    status = watch_champion(models, changed, now=1_700_000_000)
    assert status is not None and status["state"] == "demoted", status
    assert status["psr_vs_validated"] < KillSwitchSettings().max_psr < real["psr_vs_validated"]
    assert status["live_sharpe"] < 0 and status["total_return"] < 0
    demotion = status["demotion"]
    assert demotion["decision"] == "demoted" and "kill switch: live PSR" in demotion["reason"]
    assert demotion["evidence"]["trades"] == status["trades"] >= 5
    assert not (models / "champion").exists() and not (models / "best_configs_latest.json").exists()
    folder = Path(demotion["demoted_to"]).parent
    assert (folder / "champion" / "manifest.json").is_file()
    assert promotion.read_history(models)[-1] == demotion
    # The paper trades of the changed market: every long loses (the market only falls).
    changed_trades = [t for t in read_ledger(models) if t not in ledger_real]
    assert changed_trades and all(t["net_return"] < 0 for t in changed_trades)
    # Nothing deployed: signals is flat, and tomorrow's watch has nothing to watch.
    assert main(["signals", str(models / "champion"), "--data", str(changed)]) == 0
    assert capsys.readouterr().out.startswith("flat: no champion deployed (demoted ")
    assert watch_champion(models, changed) is None
