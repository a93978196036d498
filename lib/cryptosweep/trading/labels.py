"""Fixed-horizon labels for a long entry decided at a bar's close.

The fixed-time-horizon method of López de Prado (2018), *Advances in Financial Machine
Learning* (AFML), ch. 3.2, with the threshold set to the round-trip fee, and the entry at the
next bar's open: a signal at bar ``t`` is known only at ``t``'s close, so the earliest fill is
``open[t + 1]``. Each label records where its information ends (``label_end``), which the
purged walk-forward split needs (AFML ch. 7.4).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def fixed_horizon_labels(
    ohlcv: pd.DataFrame, holding_period: int, fees_bps: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(label, label_end)`` for every bar ``t`` of ``ohlcv``.

    ``label[t]`` is 1.0 when ``open[t+1+H] / open[t+1] - 1 > 2 * fees_bps / 1e4`` (a long
    opened at the next open and closed ``H`` bars later beats the round-trip fee), else 0.0, and
    NaN where ``t + 1 + H`` is past the last bar. ``label_end[t] = t + 1 + H`` (int64) is the
    position of the last bar whose data the label uses.
    """
    if isinstance(holding_period, bool) or int(holding_period) != holding_period:
        raise ValueError(f"holding_period must be an integer, got {holding_period!r}")
    horizon = int(holding_period)
    if horizon < 1:
        raise ValueError(f"holding_period must be >= 1 bar, got {horizon}")
    if fees_bps < 0:
        raise ValueError(f"fees_bps must be >= 0, got {fees_bps}")
    open_ = ohlcv["open"].to_numpy(dtype="float64")
    n = len(open_)
    label_end = np.arange(n, dtype="int64") + 1 + horizon
    label = np.full(n, np.nan)
    usable = max(n - 1 - horizon, 0)
    if usable:
        gross = open_[1 + horizon : n] / open_[1 : n - horizon] - 1.0
        label[:usable] = (gross > 2.0 * fees_bps / 1e4).astype("float64")
    return label, label_end
