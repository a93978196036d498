"""What a sweep checks before anything is created (``sweep/preflight.py``)."""

from __future__ import annotations

import pytest

from cryptosweep.core.config_files import load_config
from cryptosweep.core.errors import ConfigError
from cryptosweep.sweep.preflight import preflight
from tests.support import tiny_config


def _holding(high: int, **changes) -> dict:
    config = tiny_config(**changes)
    config["parameter_ranges"]["trading"]["holding_period"] = {"type": "int", "low": 4,
                                                               "high": high}
    return config


@pytest.mark.parametrize(("config", "message"), [
    (_holding(9000), "up to 9000 bars, longer than the holdout (1900 bars; the data hold "
                     "9504 bars in all)"),
    (_holding(4000, data__holdout_fraction=0.0),
     "up to 4000 bars, longer than fold 0's test block (3168 bars; the data hold 9504"),
    (_holding(10_000, data__holdout_fraction=0.0), "up to 10000 bars, longer than fold 0's"),
])  # fmt: skip
def test_a_holding_period_longer_than_a_backtested_block_is_refused(config, message):
    """4,000 to 9,000 bars on the 9,504-bar sample ran and exited 0."""
    with pytest.raises(ConfigError, match=r"parameter_ranges\.trading\.holding_period: ") as error:
        preflight(load_config(raw=config))
    assert message in str(error.value)


def test_a_holding_period_that_fits_every_block_passes():
    config = tiny_config()
    config["parameter_ranges"]["trading"]["holding_period"] = {
        "type": "categorical", "choices": [4, 1900]}
    assert preflight(load_config(raw=config)).data["holdout_bars"] == 1900
