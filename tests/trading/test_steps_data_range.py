"""data.start / data.end: a sweep on a time range of its data."""

from __future__ import annotations

import numpy as np
import pytest

from cryptosweep.core.config import ObjectiveSpec
from cryptosweep.core.data_settings import DataSettings
from cryptosweep.core.errors import ConfigError
from cryptosweep.trading.objective import check_spec
from cryptosweep.trading.steps import load_market


def spec(**data) -> ObjectiveSpec:
    return ObjectiveSpec(data=DataSettings(**data))


def test_a_range_is_its_bars_with_the_files_features_and_its_own_holdout():
    whole = load_market(spec(holdout_fraction=0.0))
    part = load_market(spec(start="2022-03-01", end="2022-04-01T00:00:00Z",
                            holdout_fraction=0.25))
    first = int(whole.ohlcv.index.searchsorted(part.ohlcv.index[0]))
    assert str(part.ohlcv.index[0]) == "2022-03-01 00:00:00+00:00"
    assert str(part.ohlcv.index[-1]) == "2022-03-31 23:00:00+00:00"  # the end is excluded
    n = len(part.close)
    assert n == 31 * 24
    # Computed on the file, then sliced: features at the range start are complete.
    np.testing.assert_array_equal(part.features, whole.features[first:first + n])
    assert np.isfinite(part.features[0]).all()
    assert part.holdout_start == n - n // 4
    described = check_spec(spec(start="2021-12-01", holdout_fraction=0.2))
    assert described["first_bar"] == "2021-12-01T00:00:00+00:00"
    assert described["range"] == {"start": "2021-12-01T00:00:00+00:00", "end": None}


def test_bad_ranges_name_the_setting():
    with pytest.raises(ValueError, match="not an ISO timestamp"):
        DataSettings(start="March")
    with pytest.raises(ValueError, match="must be before end"):
        DataSettings(start="2022-03-01", end="2022-02-01")
    with pytest.raises(ConfigError, match=r"data.start/data.end: the range .* holds 0 bar"):
        load_market(spec(start="2030-01-01"))
