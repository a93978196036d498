"""The nightly in the field: fresh candles every night from a local Binance (the stub of
``tests/marketdata``, releasing the bundled REAL candles one day at a time), the sweep re-run
on them, three simulated nights (marked slow: each night is a real nightly job)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from cryptosweep.trading.data import load_ohlcv
from tests.marketdata.binance_stub import BinanceStub, sample_lines, serving, write_store
from tests.nightly.test_pipeline import LENIENT_GATE, cron_env, nightly_runs, run_nightly, tiny
from tests.support import REPO, results_file

slow = pytest.mark.slow

DAY_MS = 86_400_000
#: Bars the candle file holds before the first night: the bundled sample less three days.
HELD_BACK_DAYS = 3


@pytest.fixture(scope="module")
def exchange() -> Iterator[BinanceStub]:
    header, lines = sample_lines()
    rows = [line.split(",") for line in lines]
    stub = BinanceStub(rows=rows, now_ms=int(rows[-1][6]) + 1)
    stub.header = header  # type: ignore[attr-defined]
    with serving(stub):
        yield stub


@pytest.fixture(scope="module")
def three_nights(exchange: BinanceStub, tmp_path_factory: pytest.TempPathFactory
                 ) -> SimpleNamespace:
    """Three nights on a candle file that starts three days short of the bundled sample; the
    exchange's clock moves one day between nights, so each night's update brings 24 closed
    candles."""
    tmp = tmp_path_factory.mktemp("field")
    held = HELD_BACK_DAYS * 24
    stored = [",".join(row) for row in exchange.rows[:-held]]
    candles = write_store(tmp / "BTCUSDT-1h.csv", exchange.header, stored)  # type: ignore[attr-defined]
    config = tmp / "field.json"
    update = {"exchange": "binance", "symbol": "BTC/USDT", "interval": "1h",
              "base_url": exchange.base_url, "retries": 0, "timeout_s": 5.0}
    config.write_text(json.dumps(tiny(data__path=str(candles), data__update=update,
                                      **LENIENT_GATE)), encoding="utf-8")
    first_close = int(exchange.rows[-held][0])  # the first held-back bar opens here
    nights = []
    for night in range(3):
        exchange.now_ms = first_close + (night + 1) * DAY_MS  # one more day closed
        before = candles.read_bytes()
        done = run_nightly(cron_env(tmp, SWEEP_CONFIG=config), tmp)
        run = nightly_runs(tmp / "reports")[-1]
        if night == 0:  # from the second night on, the gate keeps the first night's champion
            config.write_text(json.dumps(tiny(
                data__path=str(candles), data__update=update,
                **{**LENIENT_GATE, "deployment__min_holdout_trades": 10**6})), encoding="utf-8")
        nights.append(SimpleNamespace(done=done, run=run, before=before,
                                      after=candles.read_bytes(),
                                      summary=json.loads((run / "nightly_summary.json")
                                                         .read_text())))
    return SimpleNamespace(tmp=tmp, candles=candles, nights=nights, models=tmp / "models",
                           exchange=exchange)


@slow
def test_each_night_appends_a_day_of_candles_and_sweeps_them(three_nights):
    rows = three_nights.exchange.rows
    held = HELD_BACK_DAYS * 24
    assert len({n.run for n in three_nights.nights}) == 3
    for k, night in enumerate(three_nights.nights, start=1):
        assert night.done.rc == 0, night.done.output[-4000:]
        assert night.after.startswith(night.before)  # appended, never rewritten
        update = night.summary["data_update"]
        assert update["bars_added"] == 24
        last = int(rows[-held + 24 * k - 1][0])
        assert pd.Timestamp(update["last_bar"]).value // 10**6 == last
        # The stub's clock is the replayed candles' (years behind this machine's): the update
        # says so, loudly, on its own line and in the summary.
        assert "WARNING nightly: data update: " in night.done.output
        assert any("the exchange is" in w and "behind" in w for w in update["warnings"])
        assert "appended 24 BTC/USDT 1h from binance" in night.done.output
        results = json.loads(results_file(night.run).read_text())
        assert results["data"]["last_bar"] == update["last_bar"]  # the sweep read them
    # The champion in the field: deployed by the first night (trained on every bar it had),
    # watched on the bars that arrived after it: 24 on the second night, 48 on the third.
    first, second, third = three_nights.nights
    assert first.summary["promoted"] is True and first.summary["field"] is None
    for night, bars in ((second, 24), (third, 48)):
        field = night.summary["field"]
        assert field["live_bars"] == bars and field["state"] in ("ok", "waiting"), field
        assert field["trained_until"] == first.summary["data_update"]["last_bar"]
        assert "champion in the field: " in night.done.output
        assert json.loads((night.run / "champion_field.json").read_text()) == field
        assert "Champion in the field: " in night.summary["text"]
    index = (three_nights.tmp / "reports" / "index.html").read_text()
    assert "champion in the field</th>" in index and "48 bars, " in index
    assert load_ohlcv(three_nights.candles).index[-1] == pd.Timestamp(
        three_nights.nights[-1].summary["data_update"]["last_bar"])
    assert three_nights.exchange.unexpected == []


def readme_integration_example(readme: Path) -> str:
    """The README's Python integration example ("From sweep to production"), as written."""
    text = readme.read_text(encoding="utf-8")
    section = text[text.index("## From sweep to production"):]
    start = section.index("```python\n") + len("```python\n")
    return section[start:section.index("```", start)]


@slow
def test_the_readme_integration_example_runs_after_a_rejected_first_night(tmp_path):
    """A clone-like copy of the repository (its tracked files only), one nightly whose gate
    rejects the winner (so no champion and no best_configs_latest.json), then the README's
    Python example exactly as written, from the copy's root: it runs, on the last run's best
    configs, and says that they were rejected."""
    clone = tmp_path / "clone"
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True,
                             check=True).stdout.decode().split("\0")
    for name in filter(None, tracked):
        source = REPO / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    config = tmp_path / "strict.json"
    config.write_text(json.dumps(tiny(**{**LENIENT_GATE,
                                         "deployment__min_holdout_trades": 10**6})))
    done = run_nightly(cron_env(tmp_path, SWEEP_CONFIG=config, MODELS_DIR=clone / "models",
                                REPORTS_DIR=clone / "reports"), tmp_path)
    assert done.rc == 0, done.output[-4000:]
    assert "not promoted" in done.output
    models = clone / "models"
    assert not (models / "best_configs_latest.json").exists()
    assert (models / "best_configs_last_run.json").is_file()
    env = {**os.environ, "PYTHONPATH": str(clone / "lib")}
    ran = subprocess.run([sys.executable, "-c", readme_integration_example(clone / "README.md")],
                         cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-4000:]
    assert ran.stdout.splitlines()[0] == "rejected"
    assert (models / "my_model" / "manifest.json").is_file()
    assert "InSampleWarning" in ran.stderr  # decide() on the bars it was trained on
