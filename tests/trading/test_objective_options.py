"""The objective's options closer to trading, with known answers: the expected-value entry rule
inside a backtest, uniqueness weights reaching the model's fit (AFML's worked example), a trade
across a gap in the candles closing at the last bar before it, sizes and funding; every bad
value is one line, exit 2; the defaults leave the objective as it was."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cryptosweep.core.config import TRADING_OPTIONS, drop_default_options
from cryptosweep.core.reproducibility import ReproducibilityManager
from cryptosweep.core.settings import ObjectiveSettings
from cryptosweep.trading import steps
from cryptosweep.trading.backtest import simulate
from cryptosweep.trading.steps import (
    TradingParams,
    backtest_bars,
    entry_decisions,
    entry_signals,
    market_from_candles,
    train_before,
)
from tests.support import cli, tiny_config

TRADING = TradingParams(threshold=0.55, holding_period=5, stop_loss=0.01, take_profit=0.02)


def candles(n: int = 200, gap_after: int | None = None) -> pd.DataFrame:
    """A gentle random walk of hourly candles; ``gap_after``: a 5-hour hole after that bar."""
    rng = np.random.default_rng(3)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    times = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    if gap_after is not None:
        shift = np.where(np.arange(n) > gap_after, pd.Timedelta(hours=5), pd.Timedelta(0))
        times = pd.DatetimeIndex(times + pd.to_timedelta(shift))
    return pd.DataFrame({"open": open_, "high": np.maximum(open_, close) * 1.0005,
                         "low": np.minimum(open_, close) * 0.9995, "close": close,
                         "volume": rng.uniform(1.0, 2.0, n)}, index=times)


def test_the_defaults_are_the_behaviour_before_and_left_out_of_canonical_configs():
    settings = ObjectiveSettings()
    assert {key: getattr(settings, key) for key in TRADING_OPTIONS} == TRADING_OPTIONS
    assert drop_default_options(settings.model_dump(mode="json")).keys().isdisjoint(
        TRADING_OPTIONS)
    changed = ObjectiveSettings(entry_rule="expected_value").model_dump(mode="json")
    assert drop_default_options(changed)["entry_rule"] == "expected_value"


def test_the_expected_value_rule_enters_exactly_above_the_hand_computed_break_even():
    # tp 2 %, sl 1 %, fees 10 bps a side: cost 0.002, break-even p* = (0.01 + 0.002) / 0.03
    # = 0.4: 0.41 pays (0.41*0.02 - 0.59*0.01 - 0.002 = +0.0003), 0.39 does not (-0.0003).
    settings = ObjectiveSettings(entry_rule="expected_value", fees_bps=10.0)
    market = market_from_candles(candles())
    bars = np.arange(100, 160)
    proba = np.full(len(bars), 0.39)
    proba[[10, 30]] = 0.41
    proba[20] = np.nan
    signal = entry_decisions(proba, TRADING, settings)
    assert np.flatnonzero(signal).tolist() == [10, 30]
    result = backtest_bars(market, bars, proba, TRADING, settings)
    assert [t.entry_bar for t in result.trades] == [11, 31]  # filled at the next open
    # The threshold rule (0.55) enters nowhere on the same probabilities.
    assert backtest_bars(market, bars, proba, TRADING, ObjectiveSettings()).n_trades == 0
    # With shorts: 0.30 shorts (0.7*0.02 - 0.3*0.01 - 0.002 > 0); at 0.45 both sides pay
    # (long +0.0015, short +0.0025): the larger, short; 0.61 is long.
    both = entry_decisions(np.array([0.30, 0.45, 0.61, 0.5, np.nan]), TRADING, ObjectiveSettings(
        entry_rule="expected_value", fees_bps=10.0, allow_short=True))
    assert both.tolist() == [-1, -1, 1, 1, 0]


def test_a_threshold_below_a_half_with_shorts_enters_the_likelier_side():
    """With shorts and a threshold below 0.5 both rules hold between the threshold and its
    mirror; the short was written last and won, so P(long pays) = 0.65 entered a short."""
    proba = np.array([0.2, 0.35, 0.45, 0.5, 0.55, 0.65, 0.8, np.nan])
    assert entry_signals(proba, 0.3, True).tolist() == [-1, -1, -1, 1, 1, 1, 1, 0]
    assert entry_signals(proba, 0.3, False).tolist() == [0, 1, 1, 1, 1, 1, 1, 0]
    # from 0.5 up the two never overlap: as before
    assert entry_signals(proba, 0.6, True).tolist() == [-1, -1, 0, 0, 0, 1, 1, 0]
    assert entry_signals(proba, 0.5, True).tolist() == [-1, -1, -1, 0, 1, 1, 1, 0]


def test_uniqueness_weights_of_afmls_worked_example_reach_the_fit(monkeypatch):
    # AFML 4.5.3: y1 spans bars 1-3, y2 bars 3-4, y3 bars 5-6: average uniqueness 5/6, 3/4,
    # 1; as weights of mean 1: 30/31, 27/31, 36/31 (here at bars 300.., labels elsewhere NaN).
    market = market_from_candles(candles(400))
    labels = np.full(len(market.open_), np.nan)
    label_end = np.full(len(market.open_), 10**6, dtype="int64")
    for start, end, label in ((300, 302, 1.0), (302, 303, 0.0), (304, 305, 1.0)):
        labels[start], label_end[start] = label, end
    monkeypatch.setattr(steps, "training_labels", lambda *a, **k: (labels, label_end))
    seen = {}

    class Fake:
        continues = False

        def fit(self, x, y, rounds, init_from=None, sample_weight=None):
            seen["rows"], seen["weight"] = len(x), sample_weight

    monkeypatch.setattr(steps, "make_entry_model", lambda *a, **k: Fake())
    params = {"model": "lightgbm", "entry_model": {},
              "trading": {"threshold": 0.5, "holding_period": 2, "stop_loss": 0.01,
                          "take_profit": 0.01}}
    repro = ReproducibilityManager(1)
    train_before(market, 350, params, 1, repro, ObjectiveSettings(sample_weights="uniqueness"),
                 "test")
    assert seen["rows"] == 3
    np.testing.assert_allclose(seen["weight"], [30 / 31, 27 / 31, 36 / 31], rtol=1e-12)
    train_before(market, 350, params, 1, repro, ObjectiveSettings(), "test")
    assert seen["weight"] is None  # the default fits as before


def test_the_weights_reach_lightgbms_fit_and_change_the_model():
    from cryptosweep.trading.models import make_entry_model

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] + rng.normal(size=400) > 0).astype(float)
    weight = np.where(x[:, 1] > 0, 3.0, 0.2)
    models = []
    for w in (None, weight):
        model = make_entry_model("lightgbm", {"num_leaves": 4}, ReproducibilityManager(1))
        model.fit(x, y, 5, **({} if w is None else {"sample_weight": w}))
        models.append(model.predict_proba(x))
    assert not np.allclose(models[0], models[1])
    with pytest.raises(ValueError, match="sample_weight"):
        make_entry_model("lightgbm", {}, ReproducibilityManager(1)).fit(
            x, y, 5, sample_weight=weight[:10])


def test_a_trade_across_a_gap_closes_at_the_last_bar_before_it():
    n = 10
    price = np.linspace(100.0, 101.0, n)
    signal = np.zeros(n, dtype=int)
    signal[2] = 1  # entered at bar 3's open, holding 5 bars: would exit at bar 8's open
    last_bar = np.array([4, 4, 4, 4, 4, 9, 9, 9, 9, 9])  # a gap after bar 4
    kwargs = dict(holding_period=5, stop_loss=0.5, take_profit=0.5, fees_bps=0.0)
    plain = simulate(price, price, price, price, signal, **kwargs)
    assert (plain.trades[0].exit_bar, plain.trades[0].exit_reason) == (8, "time")
    gapped = simulate(price, price, price, price, signal, last_bar=last_bar, **kwargs)
    trade = gapped.trades[0]
    assert (trade.entry_bar, trade.exit_bar, trade.exit_reason) == (3, 4, "gap")
    assert trade.exit_price == price[4]  # at the close of the last bar before the gap
    assert gapped.positions[5:].tolist() == [0] * 5 and not np.any(gapped.returns[5:])
    # Through the objective: the market's own times say where the gap is.
    market = market_from_candles(candles(200, gap_after=120))
    bars = np.arange(110, 140)
    proba = np.zeros(len(bars))
    proba[8] = 0.9  # signal at bar 118, entry at 119, the gap after bar 120
    result = backtest_bars(market, bars, proba, TradingParams(0.5, 10, 0.5, 0.5),
                           ObjectiveSettings())
    (trade,) = result.trades
    assert (bars[trade.entry_bar], bars[trade.exit_bar], trade.exit_reason) == (119, 120, "gap")


@pytest.mark.parametrize("unit", ["ns", "us", "s"])
def test_a_gap_is_found_whatever_the_resolution_of_the_times(unit):
    """In-memory candles indexed in microseconds (pandas' default for a date range since 3.0)
    had their gaps read in nanoseconds: none was found, and trades ran across them."""
    frame = candles(200, gap_after=120)
    frame.index = frame.index.as_unit(unit)
    ends = steps.gap_ends(market_from_candles(frame), np.arange(110, 140))
    assert ends is not None and ends[0] == 10 and ends[-1] == 29


def test_sizes_scale_the_trades_and_shorts_pay_funding():
    market = market_from_candles(candles())
    bars = np.arange(100, 160)
    proba = np.full(len(bars), 0.5)
    proba[5] = 0.8
    full = backtest_bars(market, bars, proba, TRADING, ObjectiveSettings())
    sized = backtest_bars(market, bars, proba, TRADING, ObjectiveSettings(bet_sizing="afml"))
    (a,), (b,) = full.trades, sized.trades
    # bet size of p = 0.8: 2*Phi((0.8 - 0.5) / sqrt(0.16)) - 1 = 2*Phi(0.75) - 1
    from scipy.stats import norm
    size = 2 * norm.cdf(0.75) - 1
    assert b.gross_return == pytest.approx(size * a.gross_return)
    assert abs(b.net_return) < abs(a.net_return)
    short = np.full(len(bars), 0.5)
    short[5] = 0.2
    free = backtest_bars(market, bars, short, TRADING, ObjectiveSettings(allow_short=True))
    paying = backtest_bars(market, bars, short, TRADING, ObjectiveSettings(
        allow_short=True, funding_bps_per_8h=8.0))
    (f,), (g,) = free.trades, paying.trades
    held = int(np.count_nonzero(free.positions))
    assert f.net_return - g.net_return == pytest.approx(held * 1e-4, rel=0.05)  # 1 bp an hour
    vol = backtest_bars(market, bars, proba, TRADING, ObjectiveSettings(vol_target=0.0001))
    assert abs(vol.trades[0].net_return) < abs(a.net_return)


@pytest.mark.parametrize("setting", [
    "objective.entry_rule=maybe", "objective.bet_sizing=kelly",
    "objective.sample_weights=time", "objective.vol_target=-0.2",
    "objective.vol_target=nan", "objective.funding_bps_per_8h=abc",
    "objective.funding_bps_per_8h=1e9"])
def test_each_bad_value_is_one_line_exit_2(tmp_path, setting):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(tiny_config()), encoding="utf-8")
    done = cli("validate", "--config", str(path), "--set", setting)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and setting.split("=")[0] in lines[0], lines


@pytest.mark.parametrize("family", ["xgboost", "catboost", "torch"])
def test_every_family_fits_with_weights(family):
    from cryptosweep.trading.models import make_entry_model

    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3))
    y = (x[:, 0] + rng.normal(size=300) > 0).astype(float)
    weight = np.where(x[:, 1] > 0, 3.0, 0.2)
    params = {"torch": {"hidden_units": 8, "batch_size": 64}}.get(family, {})
    out = []
    for w in (None, weight):
        model = make_entry_model(family, params, ReproducibilityManager(1))
        model.fit(x, y, 3, **({} if w is None else {"sample_weight": w}))
        out.append(model.predict_proba(x))
    assert not np.allclose(out[0], out[1])


def test_a_triple_barrier_label_ends_at_the_last_bar_before_a_gap():
    from cryptosweep.trading.labels import triple_barrier_labels

    price = np.linspace(100.0, 101.0, 10)
    kwargs = dict(take_profit=0.5, stop_loss=0.5, max_holding=5, fees_bps=0.0)
    _, plain_end = triple_barrier_labels(price, price, price, price, **kwargs)
    label, end = triple_barrier_labels(price, price, price, price,
                                       last_bar=np.array([4] * 5 + [9] * 5), **kwargs)
    assert plain_end[2] == 8 and end[2] == 4 and label[2] == 1.0  # rising: a gain to bar 4
