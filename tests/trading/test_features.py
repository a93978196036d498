"""Features: no look-ahead, warm-up NaNs, hand-checked values, and the per-process cache."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

from cryptosweep.trading.data import load_ohlcv, sample_data_path
from cryptosweep.trading.features import (
    FEATURE_COLUMNS,
    WARM_UP_BARS,
    build_features,
    cached_features,
    clear_feature_cache,
    feature_cache_key,
    wilder_rsi,
)


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return load_ohlcv()


def _scramble_after(ohlcv: pd.DataFrame, t: int, seed: int) -> pd.DataFrame:
    """A copy whose bars after ``t`` are replaced by other random (valid) candles."""
    rng = np.random.default_rng(seed)
    out = ohlcv.copy()
    n = len(out) - t - 1
    open_ = rng.uniform(1_000.0, 90_000.0, n)
    close = open_ * rng.uniform(0.8, 1.2, n)
    out.iloc[t + 1 :, 0] = open_
    out.iloc[t + 1 :, 1] = np.maximum(open_, close) * rng.uniform(1.0, 1.1, n)
    out.iloc[t + 1 :, 2] = np.minimum(open_, close) * rng.uniform(0.9, 1.0, n)
    out.iloc[t + 1 :, 3] = close
    out.iloc[t + 1 :, 4] = rng.uniform(0.0, 1e5, n)
    return out


@pytest.mark.parametrize("t", [0, 30, 170, 2_000, 9_000, 9_502])
def test_features_at_or_before_t_ignore_every_later_bar(sample, t):
    original = build_features(sample)
    scrambled = build_features(_scramble_after(sample, t, seed=t))
    assert not scrambled.iloc[t + 1 :].equals(original.iloc[t + 1 :])  # the scramble took effect
    pd.testing.assert_frame_equal(scrambled.iloc[: t + 1], original.iloc[: t + 1], rtol=0, atol=0)


def test_bars_out_of_time_order_are_refused_not_read_backwards(sample):
    """Bars newest first (as CryptoDataDownload writes them) were taken in row order: a
    one-bar return at t was the move from the bar after t, a look at the future."""
    bars = sample.iloc[:300]
    with pytest.raises(ValueError, match="ascending time order"):
        build_features(bars.iloc[::-1])
    with pytest.raises(ValueError, match="repeated"):
        build_features(pd.concat([bars.iloc[:5], bars.iloc[4:]]))


def test_shape_dtype_and_warm_up(sample):
    features = build_features(sample)
    assert list(features.columns) == list(FEATURE_COLUMNS)
    assert features.index.equals(sample.index)
    assert all(dtype == np.float64 for dtype in features.dtypes)
    warm_up = features.isna().to_numpy().argmin(axis=0)  # first non-NaN row of each column
    expected = {
        "log_ret_1": 1, "log_ret_72": 72, "realised_vol_24": 24, "realised_vol_72": 72,
        "hl_range": 0, "rsi_14": 14, "macd": 25, "macd_signal": 33, "bollinger_pct_b": 19,
        "volume_z_24": 23, "volume_z_168": 167, "hour_sin": 0, "dow_cos": 0,
    }  # fmt: skip
    for column, first in expected.items():
        assert warm_up[FEATURE_COLUMNS.index(column)] == first, column
    complete = features.notna().all(axis=1).to_numpy()
    assert int(complete.argmax()) == WARM_UP_BARS == max(warm_up)  # the first complete bar
    assert not features.iloc[200:].isna().any().any()  # nothing missing after the warm-up
    assert np.isfinite(features.iloc[200:].to_numpy()).all()


def test_values_by_hand():
    index = pd.date_range("2024-01-01 00:00", periods=30, freq="h", tz="UTC", name="open_time")
    close = np.linspace(100.0, 129.0, 30)
    ohlcv = pd.DataFrame(
        {"open": close, "high": close + 1.0, "low": close - 1.0, "close": close,
         "volume": np.arange(30.0) + 1.0},
        index=index,
    )  # fmt: skip
    features = build_features(ohlcv)
    assert features["log_ret_3"].iloc[10] == pytest.approx(np.log(110.0 / 107.0))
    assert features["hl_range"].iloc[5] == pytest.approx(2.0 / 105.0)
    assert features["rsi_14"].iloc[14:].eq(100.0).all()  # only gains
    # 2024-01-01 is a Monday (dayofweek 0); bar 6 is 06:00
    assert features["hour_sin"].iloc[6] == pytest.approx(1.0)
    assert features["hour_cos"].iloc[0] == pytest.approx(1.0)
    assert features["dow_sin"].iloc[0] == pytest.approx(0.0)
    # a straight line sits at the same place in its Bollinger band every bar
    window = close[0:20]
    expected_b = (close[19] - (window.mean() - 2 * window.std())) / (4 * window.std())
    assert features["bollinger_pct_b"].iloc[19] == pytest.approx(expected_b)
    vol = ohlcv["volume"].iloc[:24]
    assert features["volume_z_24"].iloc[23] == pytest.approx((24 - vol.mean()) / vol.std())


def test_wilder_rsi_matches_the_textbook_recursion():
    rng = np.random.default_rng(3)
    close = pd.Series(100.0 + np.cumsum(rng.normal(0, 1, 60)))
    delta = np.diff(close.to_numpy())
    gain, loss = np.clip(delta, 0, None), np.clip(-delta, 0, None)
    avg_gain, avg_loss = gain[:14].mean(), loss[:14].mean()
    expected = [100 - 100 / (1 + avg_gain / avg_loss)]
    for g, l_ in zip(gain[14:], loss[14:], strict=True):
        avg_gain = (avg_gain * 13 + g) / 14
        avg_loss = (avg_loss * 13 + l_) / 14
        expected.append(100 - 100 / (1 + avg_gain / avg_loss))
    rsi = wilder_rsi(close, 14)
    assert rsi.iloc[:14].isna().all()
    np.testing.assert_allclose(rsi.iloc[14:].to_numpy(), expected, rtol=1e-12)


def test_cache_builds_once_per_file_version(tmp_path):
    clear_feature_cache()
    path = tmp_path / "copy.csv.gz"
    shutil.copyfile(sample_data_path(), path)
    first = cached_features(path)
    assert cached_features(str(path)) is first
    assert feature_cache_key(path)[0] == str(path.resolve())
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    rebuilt = cached_features(path)
    assert rebuilt is not first
    pd.testing.assert_frame_equal(rebuilt[1], first[1])
    clear_feature_cache()
