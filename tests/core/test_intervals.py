"""Every annualised number knows the bar interval of its candles: detected from the data,
declared or not, recorded in the results; mixed intervals are refused."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptosweep.core.config_files import load_config, validate_config
from cryptosweep.core.errors import ConfigError, DataError
from cryptosweep.core.intervals import (
    bars_per_year,
    closed_at_weekends,
    detect_interval,
    format_interval,
    parse_interval,
    periods_per_year,
    resolve_interval,
)
from cryptosweep.trading.backtest import annualised_sharpe
from cryptosweep.trading.data import load_ohlcv
from cryptosweep.trading.objective import check_spec, evaluate_holdout
from tests.support import (
    cli,
    cli_in_process,
    results_file,
    tiny_config,
    weekday_market_bars_per_year,
)

PARAMS = {
    "model": "lightgbm",
    "entry_model": {"num_leaves": 7, "learning_rate": 0.1, "min_data_in_leaf": 10},
    "trading": {"threshold": 0.5, "holding_period": 3, "stop_loss": 0.05, "take_profit": 0.08},
}


def _write(frame: pd.DataFrame, path) -> str:
    out = frame.reset_index()
    out.columns = ["timestamp", *frame.columns]
    out.to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def hourly() -> pd.DataFrame:
    return load_ohlcv()


@pytest.fixture(scope="module")
def daily_file(hourly, tmp_path_factory) -> str:
    """The bundled BTC/USDT candles aggregated to daily bars (real prices, another interval)."""
    daily = hourly.resample("1D").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    return _write(daily, tmp_path_factory.mktemp("daily") / "BTCUSDT-1d.csv")


def test_interval_texts_and_bars_per_year():
    assert [format_interval(parse_interval(t)) for t in ("1h", "60m", "15m", "1d", "24h", "1w")] \
        == ["1h", "1h", "15m", "1d", "1d", "1w"]
    assert periods_per_year(parse_interval("1h")) == 8760
    assert periods_per_year(parse_interval("1d")) == 365
    assert periods_per_year(parse_interval("1m")) == 525_600
    for bad in ("1M", "0h", "h", "1.5h", "hourly"):
        with pytest.raises(ValueError, match="bar interval"):
            parse_interval(bad)


def test_detected_from_the_most_common_step_with_gaps_allowed():
    minutes = pd.date_range("2024-01-01", periods=100, freq="1min", tz="UTC")
    assert detect_interval(minutes.delete([10, 11, 50])) == pd.Timedelta("1min")  # gaps
    assert detect_interval(minutes[:1]) is None


def test_mixed_or_irregular_steps_are_refused():
    hours = pd.date_range("2024-01-01", periods=48, freq="1h", tz="UTC")
    with pytest.raises(DataError, match="1h apart, but 30m between"):
        detect_interval(hours.insert(5, hours[4] + pd.Timedelta("30min")))


def test_a_stretch_of_coarser_candles_in_one_file_is_refused(hourly, daily_file, tmp_path):
    """Real hourly candles followed by the daily candles of the following months, in one file,
    loaded as hourly bars with a hundred one-day "gaps" (the same candles as a folder of two
    files were refused): the daily returns were annualised with sqrt(8760). A day of coarser
    steps in a row is refused; outages (one long step each), a market's weekends and a thin
    feed's missing bars stay gaps."""
    daily = pd.read_csv(daily_file, index_col="timestamp", parse_dates=True)
    later = daily[daily.index > hourly.index[7000]]
    mixed = pd.concat([hourly.iloc[:7001], later])
    with pytest.raises(DataError, match=r"1h apart, but 1d apart for \d+ bars in a row from "
                                        + re.escape(later.index[0].isoformat())):
        detect_interval(mixed.index)
    path = tmp_path / "mixed.csv"
    _write(mixed, path)
    config = tmp_path / "sweep.json"
    config.write_text(json.dumps(tiny_config()))
    done = cli("validate", "--config", str(config), "--data", str(path))
    assert done.returncode == 2 and "candles of a coarser interval" in done.stderr, done.stderr
    # 23 one-day steps in a row are still gaps, as are a thin feed missing every other bar
    # for a few hours, an outage and FX weekends.
    hour = pd.Timedelta(hours=1)
    before = hourly.index[:50]
    days = before[-1] + pd.to_timedelta(np.arange(1, 24), unit="D")
    after = days[-1] + pd.to_timedelta(np.arange(1, 51), unit="h")
    assert detect_interval(before.append(days).append(after)) == hour
    outage = before[-1] + pd.Timedelta(days=7) + pd.to_timedelta(np.arange(50), unit="h")
    assert detect_interval(before.append(outage)) == hour
    assert detect_interval(hourly.index.delete(range(101, 119, 2))) == hour
    assert detect_interval(_fx_market().index) == hour


def test_a_declared_interval_must_agree_with_the_data():
    assert resolve_interval(pd.Timedelta("1h"), "1h") == pd.Timedelta("1h")
    assert resolve_interval(None, "1d") == pd.Timedelta(days=1)
    with pytest.raises(DataError, match=r"data\.bar_interval is 1h but the candles are 1d apart"):
        resolve_interval(pd.Timedelta(days=1), "1h")
    with pytest.raises(DataError, match=r"set data\.bar_interval"):
        resolve_interval(None, None)
    with pytest.raises(ConfigError, match=r"data\.bar_interval"):
        load_config(raw=tiny_config(data__bar_interval="hourly"))


def test_daily_candles_are_annualised_with_365_days_not_8760_hours(daily_file):
    """Daily candles once reported a Sharpe √(8760/365) ≈ 4.9× too high."""
    spec = {"data": {"path": daily_file, "holdout_fraction": 0.05},
            "objective": {"folds": 1, "min_train_bars": 10, "rounds_per_unit": 5}}
    summary = check_spec(spec)
    assert (summary["bar_interval"], summary["periods_per_year"]) == ("1d", 365)
    result = evaluate_holdout(PARAMS, 1.0, 7, spec)
    returns = np.asarray(result["holdout_returns"])
    assert result["holdout_sharpe"] == annualised_sharpe(returns, 365)
    if returns.std() > 0:
        assert result["holdout_sharpe"] != pytest.approx(annualised_sharpe(returns, 8760))
        assert annualised_sharpe(returns, 8760) / result["holdout_sharpe"] \
            == pytest.approx(math.sqrt(24))


def test_a_folder_mixing_hourly_and_daily_files_is_exit_2(hourly, daily_file, tmp_path):
    """It used to load as hourly bars with a long gap."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    _write(hourly.iloc[:500], folder / "a-hourly.csv")
    daily = pd.read_csv(daily_file)
    daily[daily["timestamp"] > str(hourly.index[600])].to_csv(folder / "b-daily.csv", index=False)
    with pytest.raises(DataError, match=r"different bar intervals .*a-hourly\.csv 1h, "
                                        r"b-daily\.csv 1d"):
        load_ohlcv(folder)
    config = tmp_path / "sweep.json"
    config.write_text(json.dumps(tiny_config()))
    done = cli("validate", "--config", str(config), "--data", str(folder))
    assert done.returncode == 2 and "different bar intervals" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_fold_that_would_train_on_warm_up_bars_only_fails_validate(daily_file, tmp_path):
    """Daily candles leave few bars after the features' warm-up: validate says so, instead of
    a run where every trial fails."""
    config = tmp_path / "sweep.json"
    config.write_text(json.dumps(tiny_config(objective__folds=2, objective__min_train_bars=10)))
    done = cli("validate", "--config", str(config), "--data", daily_file)
    assert done.returncode == 2 and "bars of warm-up" in done.stderr


def test_a_run_records_its_interval_and_the_dated_folds(daily_file, tmp_path):
    config = tiny_config(random__n_trials=2, objective__min_train_bars=10, objective__folds=1,
                         data__holdout_fraction=0.1)  # 39 holdout bars: above a 24-bar hold
    path = tmp_path / "daily.json"
    path.write_text(json.dumps(config))
    done = cli("run", "--config", str(path), "--data", daily_file, "--log-dir", str(tmp_path),
               "--run-name", "daily")
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(results_file(tmp_path / "daily").read_text())
    data = results["data"]
    assert (data["bar_interval"], data["periods_per_year"]) == ("1d", 365)
    assert [f["stop"] - f["start"] for f in data["folds"]] and data["holdout"]["stop"] == \
        data["bars"]
    assert data["folds"][-1]["stop"] == data["holdout"]["start"]
    assert "365 bars of 1d a year" in next((tmp_path / "daily").glob("sweep_report_*.txt")) \
        .read_text()
    winner = results["top_k"][0]
    assert winner["dsr"] is None or winner["dsr"].get("dsr") is None \
        or winner["dsr"]["sr_annualised"] == pytest.approx(winner["dsr"]["sr"] * math.sqrt(365))


def _fx_market() -> pd.DataFrame:
    """The real EURUSD hourly candles the ``backtesting`` package ships (read from the
    installed package)."""
    import backtesting

    path = Path(backtesting.__file__).parent / "test" / "EURUSD.csv"
    frame = pd.read_csv(path, index_col=0, parse_dates=True)
    frame.index = frame.index.tz_localize("UTC")
    frame.columns = [str(c).lower() for c in frame.columns]
    return frame


def test_a_market_closed_at_weekends_is_annualised_with_its_own_bars() -> None:
    """EURUSD trades about 24 hours on 5 days: its hourly bars were annualised with 8760, as
    if it traded every hour of the year, lifting its Sharpe ratios by sqrt(8760/6199) = 1.19."""
    fx = _fx_market()
    hour = parse_interval("1h")
    assert closed_at_weekends(fx.index, hour)
    assert bars_per_year(fx.index, hour) == pytest.approx(weekday_market_bars_per_year(fx.index),
                                                          rel=1e-12)
    assert 6000 < bars_per_year(fx.index, hour) < 6300  # about 24 x 5 x 52, less holidays
    # Over fewer than 28 days the calendar cannot be read: round the clock.
    short = fx.index[fx.index < fx.index[0] + pd.Timedelta(days=20)]
    assert bars_per_year(short, hour) == 8760


@pytest.mark.parametrize("opens", ["Mon 00:00", "Sun 22:00"])
def test_a_market_closed_at_weekends_counts_its_bars_per_weekday_not_over_its_span(opens):
    """Twelve weeks of a market open 24 hours on 5 days (from Monday's midnight, or from the
    Sunday 22:00 UTC of FX's open) have 24 bars a weekday: 24 x 365 x 5/7 = 6257 a year. Bars
    over the time from the first open to the last close counted 6410 (2.4 % more), leaving out
    the weekends at both ends; over six weeks 5 % more."""
    hour = parse_interval("1h")
    start = pd.Timestamp("2024-01-01" if opens == "Mon 00:00" else "2023-12-31 22:00", tz="UTC")
    stamps = pd.date_range(start, periods=12 * 7 * 24, freq="h")
    week = stamps - pd.Timedelta(hours=0 if opens == "Mon 00:00" else -2)  # Sun 22:00 -> Mon
    index = stamps[week.day_of_week < 5]  # 120 bars a week, the FX week shifted 2 hours
    assert len(index) == 12 * 120 and closed_at_weekends(index, hour)
    assert bars_per_year(index, hour) == pytest.approx(24 * 365 * 5 / 7, rel=1e-12)
    assert bars_per_year(index[: 6 * 120], hour) == pytest.approx(24 * 365 * 5 / 7, rel=1e-12)


def test_a_market_open_around_the_clock_keeps_its_count_whatever_its_gaps() -> None:
    """An exchange outage is a gap, not a closed market: the bundled BTC candles with a
    missing month are still annualised with 8760."""
    btc = load_ohlcv()
    hour = parse_interval("1h")
    assert bars_per_year(btc.index, hour) == 8760
    holed = btc.index[(btc.index < "2022-03-01") | (btc.index >= "2022-04-01")]
    assert not closed_at_weekends(holed, hour) and bars_per_year(holed, hour) == 8760
    daily = btc.resample("1D").last().index
    assert bars_per_year(daily, parse_interval("1d")) == 365


def test_the_sweep_and_a_trained_model_annualise_a_weekday_market_alike() -> None:
    """market_from_candles counts a market's own bars; a model passes the count its training
    recorded, so a recent slice (too short to read the calendar from) is annualised alike."""
    from cryptosweep.trading.steps import market_from_candles

    fx = _fx_market()
    market = market_from_candles(fx)
    assert market.periods_per_year == bars_per_year(fx.index, parse_interval("1h"))
    recent = market_from_candles(fx.iloc[-300:])
    assert recent.periods_per_year == 8760  # 12 days: no calendar to read
    given = market_from_candles(fx.iloc[-300:], periods_per_year=market.periods_per_year)
    assert given.periods_per_year == market.periods_per_year


def test_a_range_of_the_data_is_annualised_as_the_whole_market() -> None:
    """A walk-forward window (data.start .. data.end) of EURUSD shorter than 28 days was
    annualised round the clock (8760), one of 450 bars with its own density (about 5,700), while
    the out-of-sample track used the market's 6,201: the windows' Sharpe ratios, their gates
    and the walk-forward efficiency were off by up to 19 %. Every range uses the file's."""
    import backtesting

    from cryptosweep.core.config import ObjectiveSpec
    from cryptosweep.trading.steps import load_market

    fx = _fx_market()
    whole = bars_per_year(fx.index, parse_interval("1h"))
    path = Path(backtesting.__file__).parent / "test" / "EURUSD.csv"
    columns = {"timestamp": "Unnamed: 0", "open": "Open", "high": "High", "low": "Low",
               "close": "Close", "volume": "Volume"}
    for first, bars in ((1000, 300), (2000, 450), (0, len(fx))):
        end = None if first + bars >= len(fx) else fx.index[first + bars].isoformat()
        spec = ObjectiveSpec.of(validate_config(tiny_config(data={
            "path": str(path), "format": "generic", "columns": columns,
            "start": fx.index[first].isoformat(), "end": end}), "test").objective_spec())
        market = load_market(spec)
        assert len(market.open_) == min(bars, len(fx) - first)
        assert market.periods_per_year == pytest.approx(whole, rel=1e-12)


def test_scattered_bars_and_odd_intervals_are_not_a_weekend_calendar() -> None:
    """Two short weekday chunks of a round-the-clock market five weeks apart (no Saturday
    among them) read as a market closed at weekends, annualised with about 1,600 bars a year;
    84-hour bars from a Monday never open on a Saturday by their own rhythm."""
    hour = parse_interval("1h")
    chunks = pd.date_range("2022-01-03", periods=72, freq="1h", tz="UTC").append(
        pd.date_range("2022-02-07", periods=72, freq="1h", tz="UTC"))
    assert not closed_at_weekends(chunks, hour) and bars_per_year(chunks, hour) == 8760
    rhythm = pd.date_range("2022-01-03", periods=200, freq="84h", tz="UTC")
    assert not closed_at_weekends(rhythm, pd.Timedelta(hours=84))
    stocks = pd.bdate_range("2021-01-01", "2022-12-31", tz="UTC")
    assert closed_at_weekends(stocks, pd.Timedelta(days=1))
    assert 250 < bars_per_year(stocks, pd.Timedelta(days=1)) < 262


def test_a_market_open_a_few_hours_on_weekdays_is_annualised_with_its_own_bars() -> None:
    """A stock exchange's session (7 hourly or 28 fifteen-minute bars a weekday) was read as a
    round-the-clock market, since its weekdays hold fewer than half of a round-the-clock
    market's bars: annualised with 8,760 (35,040) bars, its Sharpe ratios 2.2 times too high
    (an audit). It opens on every weekday and never on a Saturday: a calendar."""
    days = pd.bdate_range("2021-01-04", "2022-12-30")
    for interval, bars_a_day in ((parse_interval("1h"), 7), (parse_interval("15m"), 28)):
        session = pd.DatetimeIndex(np.concatenate([
            (days + pd.Timedelta(hours=14, minutes=30) + k * interval).to_numpy()
            for k in range(bars_a_day)])).sort_values().tz_localize("UTC")
        assert closed_at_weekends(session, interval)
        expected = bars_a_day * 261  # weekdays in a 365-day year
        assert expected * 0.99 < bars_per_year(session, interval) < expected * 1.01


def test_validate_shows_the_bar_interval_and_bars_per_year(hourly, tmp_path, capsys):
    """`cryptosweep validate` printed the bars and their dates but not the interval it had
    detected nor the bars a year every Sharpe ratio is annualised with: a file of another
    interval, or a market closed at weekends, passed without the user seeing what the numbers
    would be annualised with (a helper's attack)."""
    config = tmp_path / "sweep.json"
    config.write_text(json.dumps(tiny_config()))
    one = cli_in_process(capsys, "validate", "--config", str(config))
    assert one.returncode == 0, one.stderr
    assert "(9504 bars, 1900 held out); 1h bars, 8760 a year" in one.stdout, one.stdout
    four = _write(hourly.resample("4h").agg({"open": "first", "high": "max", "low": "min",
                                                   "close": "last", "volume": "sum"}),
                  tmp_path / "BTCUSDT-4h.csv")
    four_hourly = cli_in_process(capsys, "validate", "--config", str(config), "--data", four)
    assert "; 4h bars, 2190 a year" in four_hourly.stdout, four_hourly.stdout + four_hourly.stderr
    fx = _fx_market().reset_index()
    fx.columns = ["timestamp", "open", "high", "low", "close", "volume"]
    fx.to_csv(tmp_path / "EURUSD.csv", index=False)
    weekdays = cli_in_process(capsys, "validate", "--config", str(config), "--data",
                              str(tmp_path / "EURUSD.csv"))
    per_year = round(bars_per_year(pd.DatetimeIndex(fx["timestamp"]), parse_interval("1h")))
    assert per_year == 6199
    assert (f"; 1h bars, {per_year} a year (a market closed at weekends: the candles' own "
            "density, not 8760)") in weekdays.stdout, weekdays.stdout + weekdays.stderr


def test_epoch_seconds_read_as_milliseconds_are_refused_not_annualised(hourly, tmp_path, capsys):
    """Hourly candles stamped in seconds, with ``data.timestamp_unit: ms``, passed validate as
    bars 3.6 s apart in January 1970 (written "3s"; as µs, "0w"), annualised with 8,760,000
    bars a year: every Sharpe ratio sqrt(1000) = 32 times too high (a helper's attack). A bar
    interval must be a whole number of seconds."""
    frame = hourly.iloc[:1000].reset_index()
    frame["open_time"] = frame["open_time"].astype("int64") // 10**9  # seconds
    frame.columns = ["timestamp", *hourly.columns]
    path = tmp_path / "seconds.csv"
    frame.to_csv(path, index=False)
    stamps = pd.to_datetime(frame["timestamp"], unit="ms", utc=True)
    with pytest.raises(DataError, match=r"3\.6s apart, not a whole number of seconds.*"
                                        r"data\.timestamp_unit"):
        detect_interval(pd.DatetimeIndex(stamps))
    assert format_interval(pd.Timedelta(milliseconds=3600)) == "3.6s"  # was "3s"
    assert format_interval(pd.Timedelta(microseconds=3600)) == "0.0036s"  # was "0w"
    config = tmp_path / "sweep.json"
    config.write_text(json.dumps(tiny_config()))
    for unit in ("ms", "us", "ns"):
        done = cli_in_process(capsys, "validate", "--config", str(config), "--data", str(path),
                              "--set", f"data.timestamp_unit={unit}")
        assert done.returncode == 2, done.stdout
        assert "data.timestamp_unit" in done.stderr and len(done.stderr.splitlines()) == 1
    right = cli_in_process(capsys, "validate", "--config", str(config), "--data", str(path),
                           "--set", "data.timestamp_unit=s",
                           "--set", "objective.min_train_bars=100")
    assert right.returncode == 0 and "1h bars, 8760 a year" in right.stdout, right.stderr


def test_daily_candles_at_local_midnight_are_refused_with_the_reason(daily_file, tmp_path):
    """Daily candles stamped at midnight in Berlin (ISO with their +01:00/+02:00 offsets) are
    23 or 25 hours apart in UTC at each daylight saving change: refused as "mixed or
    irregular intervals" without a word of the cause (a helper's attack). The message now says
    the step is an hour off and why."""
    daily = pd.read_csv(daily_file)
    local = pd.date_range("2021-10-01", periods=len(daily), freq="1D", tz="Europe/Berlin")
    daily["timestamp"] = [stamp.isoformat() for stamp in local]
    path = tmp_path / "berlin_days.csv"
    daily.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"but 25h between 2021-10-30T22:00:00\+00:00 .*an hour "
                                        r"off: daylight saving time\?"):
        load_ohlcv(path)
    with pytest.raises(DataError, match=r"1h apart, but 30m between") as caught:
        hours = pd.date_range("2024-01-01", periods=48, freq="1h", tz="UTC")
        detect_interval(hours.insert(5, hours[4] + pd.Timedelta("30min")))
    assert "daylight" not in str(caught.value)


def test_fx_candles_stamped_at_an_asian_local_time_are_still_a_weekday_market() -> None:
    """EURUSD hourly candles stamped at Tokyo's or Sydney's time without an offset (a broker's
    server time) open Monday morning and close Saturday morning: 5-6 % of their bars on a
    Saturday, so they were annualised round the clock, 8760 bars a year instead of about
    6,200, their Sharpe ratios 19 % high without a word (a helper's attack). The week's
    quietest 24 hours, whatever hour they start at, tell the calendar."""
    fx = _fx_market()
    hour = parse_interval("1h")
    expected = bars_per_year(fx.index, hour)
    for shift in (9, 10, -5, 2):
        shifted = fx.index + pd.Timedelta(hours=shift)
        assert closed_at_weekends(shifted, hour), shift
        assert bars_per_year(shifted, hour) == pytest.approx(expected, rel=1e-12)
    # Round the clock stays round the clock, whatever the stamps' zone.
    btc = load_ohlcv().index
    assert bars_per_year(btc + pd.Timedelta(hours=9), hour) == 8760
