"""Regime labels: past bars only, planted trends and volatility, and the rules by brute force."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from cryptosweep.trading.regimes import REGIMES, RegimeSettings, label_regimes


def _walk(n: int, seed: int, sigma: float = 0.005, drift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(drift + sigma * rng.standard_normal(n)))


def test_labels_up_to_t_ignore_every_later_bar():
    settings = RegimeSettings(volatility_min_history=48)
    close = _walk(400, seed=1)
    labels = label_regimes(close, settings)
    rng = np.random.default_rng(2)
    for t in (0, 30, 71, 72, 73, 150, 398):
        rewritten = close.copy()
        # anything at all after t: huge jumps, a crash, tiny prices
        rewritten[t + 1 :] = np.exp(rng.normal(0.0, 3.0, size=len(close) - t - 1))
        again = label_regimes(rewritten, settings)
        pd.testing.assert_frame_equal(again.iloc[: t + 1], labels.iloc[: t + 1])
        # the rewrite does change later labels (the test could catch a leak)
        if t < 300:
            assert not again.iloc[t + 1 :].equals(labels.iloc[t + 1 :])


def _brute_force(close: np.ndarray, s: RegimeSettings) -> tuple[list[str], list[str]]:
    """The module doc's rules, bar by bar, from close[: t + 1] alone."""
    trend, vol, sigmas = [], [], []
    for t in range(len(close)):
        past = np.log(close[: t + 1])
        if t >= s.volatility_window:
            sigma = float(np.std(np.diff(past)[-s.volatility_window :], ddof=1))
        else:
            sigma = math.nan
        if t < max(s.trend_lookback, s.volatility_window):
            trend.append("warmup")
        else:
            change = past[-1] - past[-1 - s.trend_lookback]
            band = s.trend_threshold * sigma * math.sqrt(s.trend_lookback)
            trend.append("up" if change > band else "down" if change < -band else "sideways")
        earlier = [x for x in sigmas if not math.isnan(x)]
        if len(earlier) < s.volatility_min_history:
            vol.append("warmup")
        else:
            vol.append("high" if sigma > statistics.median(earlier) else "low")
        sigmas.append(sigma)
    return trend, vol


@pytest.mark.parametrize("seed", [3, 4])
def test_rules_match_a_bar_by_bar_brute_force(seed):
    settings = RegimeSettings(
        trend_lookback=5, trend_threshold=0.7, volatility_window=4, volatility_min_history=6
    )
    close = _walk(120, seed, sigma=0.01)
    close[60:] *= np.exp(np.cumsum(np.full(60, 0.004)))  # a trend in the second half
    labels = label_regimes(close, settings)
    trend, vol = _brute_force(close, settings)
    assert labels["trend"].tolist() == trend
    assert labels["volatility"].tolist() == vol
    pairs = zip(trend, vol, strict=True)
    combined = ["warmup" if "warmup" in (a, b) else f"{a}_{b}" for a, b in pairs]
    assert labels["regime"].tolist() == combined
    assert set(labels["regime"]) <= set(REGIMES)
    assert {"up", "sideways"} <= set(trend) and {"high", "low"} <= set(vol)


def test_warmup_bars_by_the_settings():
    settings = RegimeSettings(trend_lookback=30, volatility_window=20, volatility_min_history=50)
    labels = label_regimes(_walk(200, seed=5), settings)
    assert (labels["trend"].iloc[:30] == "warmup").all()
    assert (labels["trend"].iloc[30:] != "warmup").all()
    assert (labels["volatility"].iloc[:70] == "warmup").all()
    assert (labels["volatility"].iloc[70:] != "warmup").all()
    assert (labels["regime"].iloc[:70] == "warmup").all()
    assert (labels["regime"].iloc[70:] != "warmup").all()
    # too short for anything
    assert (label_regimes(_walk(10, seed=6))["regime"] == "warmup").all()


def test_a_planted_up_trend_is_up_and_a_down_trend_down():
    settings = RegimeSettings()
    up = label_regimes(_walk(600, seed=7, drift=0.004), settings)["trend"]
    ready = up != "warmup"
    assert (up[ready] == "up").mean() > 0.95
    down = label_regimes(_walk(600, seed=8, drift=-0.004), settings)["trend"]
    assert (down[ready] == "down").mean() > 0.95


def test_flat_noise_is_mostly_sideways():
    rng = np.random.default_rng(9)
    flat = 100.0 * np.exp(0.005 * rng.standard_normal(2000))  # noise around a constant level
    trend = label_regimes(flat)["trend"]
    assert (trend[trend != "warmup"] == "sideways").mean() > 0.95


def test_a_random_walk_is_sideways_about_68_percent_of_the_time():
    # z-score of a 24-bar return above 1 in absolute value: 2 * (1 - Phi(1)) = 31.7 %
    trend = label_regimes(_walk(20000, seed=10))["trend"]
    share = (trend[trend != "warmup"] == "sideways").mean()
    assert share == pytest.approx(0.683, abs=0.04)


def test_a_volatility_jump_is_labelled_high_after_it():
    calm = _walk(1000, seed=11, sigma=0.002)
    wild = calm[-1] * np.exp(np.cumsum(0.02 * np.random.default_rng(12).standard_normal(300)))
    labels = label_regimes(np.concatenate([calm, wild]))["volatility"]
    # the rolling window holds only post-jump returns from bar 1000 + 24 on
    assert (labels.iloc[1024:1300] == "high").all()
    assert (labels.iloc[1001:1024] == "high").all()  # already far above the calm median
    before = labels.iloc[192:1000]
    assert 0.3 < (before == "high").mean() < 0.7  # calm: around its own median


def test_series_index_is_kept_and_columns_are_strings():
    index = pd.date_range("2024-01-01", periods=300, freq="h", tz="UTC")
    labels = label_regimes(pd.Series(_walk(300, seed=13), index=index))
    assert labels.index.equals(index)
    assert list(labels.columns) == ["trend", "volatility", "regime"]
    assert all(isinstance(v, str) for v in labels["regime"])
    assert label_regimes(_walk(5, seed=13)).index.equals(pd.RangeIndex(5))


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"trend_lookback": 0}, "trend_lookback"),
        ({"trend_lookback": 2.5}, "trend_lookback"),
        ({"volatility_window": 1}, "volatility_window"),
        ({"volatility_min_history": 0}, "volatility_min_history"),
        ({"trend_threshold": -0.1}, "trend_threshold"),
        ({"trend_threshold": math.inf}, "trend_threshold"),
    ],
)
def test_bad_settings_raise(kwargs, word):
    with pytest.raises(ValueError, match=word):
        RegimeSettings(**kwargs)


@pytest.mark.parametrize(
    "close", [np.array([100.0, -1.0, 101.0]), np.array([100.0, np.nan]), np.ones((3, 2))]
)
def test_bad_closes_raise(close):
    with pytest.raises(ValueError, match="close"):
        label_regimes(close)
    with pytest.raises(ValueError, match="settings"):
        label_regimes(np.ones(3), settings={"trend_lookback": 3})
