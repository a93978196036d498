"""The trial ledger: what counts as a trial against a winner, across runs and nights."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from cryptosweep.records.ledger import LedgerTrial, Market, TrialLedger, config_key

DAY = 86_400.0
BTC = Market("btc.csv.gz@1h", "2021-10-01T00:00:00+00:00", "2022-08-01T00:00:00+00:00")


def trials(prefix: str, configs: list[dict], kind: str = "search", seed: int = 1,
           sharpe: float = 0.01) -> list[LedgerTrial]:
    return [LedgerTrial(kind, f"{prefix}:{i}", config_key(c), seed, 9.0, sharpe + i / 1000)
            for i, c in enumerate(configs)]


def configs(n: int, offset: int = 0) -> list[dict]:
    return [{"model": "lightgbm", "entry_model": {"num_leaves": i + offset}} for i in range(n)]


def test_the_count_grows_across_nights_and_a_resumed_night_adds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "trials.db"
    with TrialLedger(path) as ledger:
        assert ledger.record_trials("night1", BTC, trials("a", configs(5)), now=0.0) == 5
        first = ledger.trials_on(BTC, window_days=30, now=0.0)
    with TrialLedger(path) as ledger:  # another process, the next night
        assert ledger.record_trials("night1", BTC, trials("a", configs(5)), now=DAY) == 0
        ledger.record_trials("night2", BTC, trials("a", configs(4, offset=3)), now=DAY)
        second = ledger.trials_on(BTC, window_days=30, now=DAY)
    assert (first.n_trials, first.n_runs) == (5, 1)
    # 4 more configurations of which 2 were tried the night before: 7 distinct ones.
    assert (second.n_trials, second.n_rows, second.n_runs) == (7, 9, 2)
    assert second.sharpe_variance is not None and second.sharpe_variance > 0


def test_extra_seeds_count_and_the_first_seed_is_the_configuration(tmp_path: Path) -> None:
    config = configs(1)
    with TrialLedger(tmp_path / "t.db") as ledger:
        ledger.record_trials("n", BTC, trials("s", config), now=0.0)
        ledger.record_trials("n", BTC, [
            LedgerTrial("rescore", f"r{seed}", config_key(config[0]), seed, 9.0, 0.02)
            for seed in (1, 77, 78)], now=0.0)
        count = ledger.trials_on(BTC, 30, now=0.0)
    # One configuration tried with seed 1, re-scored with seeds 1 (the same trial), 77, 78.
    assert count.n_trials == 3


def test_only_overlapping_bars_of_the_same_market_within_the_window_count(tmp_path: Path) -> None:
    earlier = Market(BTC.name, "2020-01-01T00:00:00+00:00", "2021-01-01T00:00:00+00:00")
    other = Market("eth.csv@1h", BTC.first_bar, BTC.last_bar)
    with TrialLedger(tmp_path / "t.db") as ledger:
        ledger.record_trials("old", BTC, trials("o", configs(3, 100)), now=0.0)
        ledger.record_trials("before", earlier, trials("b", configs(3, 200)), now=40 * DAY)
        ledger.record_trials("eth", other, trials("e", configs(3, 300)), now=40 * DAY)
        ledger.record_trials("now", BTC, trials("n", configs(2)), now=40 * DAY)
        count = ledger.trials_on(BTC, window_days=30, now=40 * DAY)
        wide = ledger.trials_on(BTC, window_days=60, now=40 * DAY)
    assert count.n_trials == 2  # the 40-day-old night is outside the 30-day window
    assert wide.n_trials == 5


def test_looks_at_a_holdout_are_counted_once_per_run_and_source(tmp_path: Path) -> None:
    holdout = Market(BTC.name, "2022-08-01T00:00:00+00:00", "2022-10-31T23:00:00+00:00")
    with TrialLedger(tmp_path / "t.db") as ledger:
        for _ in range(2):
            ledger.record_look("night1", "sweep", "top 5", holdout, now=0.0)
        ledger.record_look("night2", "sweep", "top 5", holdout, now=DAY)
        ledger.record_look("night2", "explorer", "unlock", holdout, now=DAY)
        later = Market(BTC.name, "2023-01-01T00:00:00+00:00", "2023-03-01T00:00:00+00:00")
        assert len(ledger.looks_at(holdout)) == 3
        assert ledger.looks_at(later) == []


def test_market_of_a_runs_data_description() -> None:
    data = {"path": "/x/BTCUSDT.csv.gz", "bar_interval": "1h", "first_bar": "a",
            "last_bar": "z", "holdout_first_bar": "m"}
    assert Market.of(data) == Market("BTCUSDT.csv.gz@1h", "a", "m")
    assert Market.of(data, "holdout") == Market("BTCUSDT.csv.gz@1h", "m", "z")


def test_trials_none_of_the_clustered_series_is_are_counted_outside(tmp_path: Path) -> None:
    """The effective number of trials clusters tonight's series; every ledger trial that none
    of them is (another night's configuration, an extra seed not clustered) counts beside."""
    tonight, before = configs(3), configs(2, offset=50)
    with TrialLedger(tmp_path / "t.db") as ledger:
        ledger.record_trials("before", BTC, trials("b", before), now=0.0)
        ledger.record_trials("now", BTC, trials("n", tonight) + [
            LedgerTrial("rescore", f"r{seed}", config_key(tonight[0]), seed, 9.0, 0.02)
            for seed in (77, 78)], now=DAY)
        count = ledger.trials_on(BTC, 30, now=DAY,
                                 clustered_configs={config_key(c) for c in tonight},
                                 clustered_seeds={(config_key(tonight[0]), 77)})
        nothing = ledger.trials_on(BTC, 30, now=DAY)
    assert count.n_trials == nothing.n_trials == 3 + 2 + 2
    # The 2 configurations of the night before and the seed-78 re-score were not clustered.
    assert count.n_unclustered == 3
    assert nothing.n_unclustered == nothing.n_trials
    assert "n_unclustered" not in count.to_dict()


def test_a_run_is_its_name_and_when_it_was_created() -> None:
    """Two runs of one name (two log folders, two walk-forwards' window_01) are two runs; a
    resumed run, created once, is the same one."""
    from cryptosweep.records.ledger import run_key

    first, second = run_key("window_01", 1_765_000_000.25), run_key("window_01", 1_765_000_500.0)
    assert first != second and first == run_key("window_01", 1_765_000_000.25)
    assert first == "window_01@2025-12-06T05:46:40.250000Z"
    assert run_key("night1", None) == "night1"


def test_a_run_recorded_under_its_bare_name_is_not_recorded_again(tmp_path: Path) -> None:
    """A ledger written before runs carried their creation time keys a run by its name: the
    same run recorded again (a resume, a finished run's end redone) under its full key added
    every row twice, counting the run twice in the variance."""
    from cryptosweep.records.ledger import run_key

    with TrialLedger(tmp_path / "t.db") as ledger:
        assert ledger.record_trials("night1", BTC, trials("a", configs(3)), now=0.0) == 3
        ledger.record_look("night1", "sweep", "top 2", BTC, now=0.0)
        again = run_key("night1", 0.0)
        assert ledger.record_trials(again, BTC, trials("a", configs(4)), now=0.0) == 1
        ledger.record_look(again, "sweep", "top 2", BTC, now=0.0)
        count = ledger.trials_on(BTC, window_days=30, now=0.0)
        assert (count.n_rows, count.n_runs) == (4, 2)  # the new row under the full key
        assert len(ledger.looks_at(BTC)) == 1
        # Another run of that name (created later) is another run: all of it counts.
        later = run_key("night1", DAY)
        assert ledger.record_trials(later, BTC, trials("a", configs(3, offset=7)), now=DAY) == 3
        ledger.record_look(later, "sweep", "top 2", BTC, now=DAY)
        assert ledger.trials_on(BTC, window_days=30, now=DAY).n_trials == 4 + 3
        assert len(ledger.looks_at(BTC)) == 2


def test_a_market_is_its_candles_not_its_file_name(tmp_path: Path) -> None:
    """The ledger knew a market by its file's name: the bundled candles copied under another
    name were another market (their trials not counted against each other: N too small), and
    another series under the same name the same one. With a probe of their closes (00:00 UTC
    on each month's first day) a row is the market its candles are; without one (a row
    recorded before probes), its name."""
    from cryptosweep.records.ledger import market_probe
    from cryptosweep.trading.data import load_ohlcv

    candles = load_ohlcv()
    rolled = candles.copy()
    rolled["close"] = candles["close"].to_numpy()[::-1]  # another series, the same stamps
    first, last = BTC.first_bar, BTC.last_bar
    named = Market("BTCUSDT-1h.csv.gz@1h", first, last)
    original = named.probed(candles)
    assert len(original.probe) == 11  # October 2021 .. August 2022, both bars included
    copy = Market("copy.csv@1h", first, last).probed(candles)
    other = Market("BTCUSDT-1h.csv.gz@1h", first, last).probed(rolled)
    assert market_probe(candles, first, last) == original.probe
    with TrialLedger(tmp_path / "t.db") as ledger:
        ledger.record_trials("a", original, trials("a", configs(3)), now=0.0)
        ledger.record_trials("b", copy, trials("b", configs(2, offset=10)), now=0.0)
        ledger.record_trials("c", other, trials("c", configs(4, offset=20)), now=0.0)
        ledger.record_trials("d", named, trials("d", configs(1, offset=30)), now=0.0)
        assert ledger.trials_on(original, 30, now=0.0).n_trials == 3 + 2 + 1
        assert ledger.trials_on(copy, 30, now=0.0).n_trials == 3 + 2  # d: by name only
        assert ledger.trials_on(other, 30, now=0.0).n_trials == 4 + 1
        assert ledger.trials_on(named, 30, now=0.0).n_trials == 3 + 4 + 1  # by name
        hourly_as_daily = Market("copy.csv@1d", first, last).probed(candles)
        assert ledger.trials_on(hourly_as_daily, 30, now=0.0).n_trials == 0


def test_a_ledger_made_before_probes_is_read_and_extended(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE trials (run TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT "
                   "NULL, config_key TEXT NOT NULL, seed INTEGER NOT NULL, budget REAL NOT "
                   "NULL, market TEXT NOT NULL, first_bar TEXT NOT NULL, last_bar TEXT NOT "
                   "NULL, sharpe REAL, recorded_at REAL NOT NULL, PRIMARY KEY (run, kind, key))")
        db.execute("CREATE TABLE looks (run TEXT NOT NULL, source TEXT NOT NULL, what TEXT NOT "
                   "NULL, market TEXT NOT NULL, first_bar TEXT NOT NULL, last_bar TEXT NOT "
                   "NULL, looked_at REAL NOT NULL, PRIMARY KEY (run, source, what))")
        db.execute("INSERT INTO trials VALUES ('old', 'search', 'k', 'c', 1, 9.0, ?, ?, ?, "
                   "0.01, 0.0)", (BTC.name, BTC.first_bar, BTC.last_bar))
    with TrialLedger(path) as ledger:
        ledger.record_trials("new", BTC, trials("n", configs(2, offset=5)), now=0.0)
        ledger.record_look("new", "sweep", "top 1", BTC, now=0.0)
        assert ledger.trials_on(BTC, 30, now=0.0).n_trials == 3
        assert len(ledger.looks_at(BTC)) == 1


def test_the_variance_does_not_depend_on_the_order_the_trials_were_written_in(
        tmp_path: Path) -> None:
    """Evaluations are written as they finish, in an order that depends on the number of
    workers; the variance the DSR takes must not (plain sums over these three in two orders
    differ in the last bit)."""
    sharpes = [0.022, -0.027, 0.045]
    variances = []
    for name, order in (("forward", sharpes), ("backward", sharpes[::-1])):
        with TrialLedger(tmp_path / f"{name}.db") as ledger:
            for value in order:
                ledger.record_trials("n", BTC, [LedgerTrial(
                    "search", f"e{value}", config_key({"x": value}), 1, 9.0, value)], now=0.0)
            variances.append(ledger.trials_on(BTC, 30, now=0.0).sharpe_variance)
    assert variances[0] == variances[1]
    assert variances[0] == pytest.approx(statistics.variance(sharpes), rel=1e-12)
