"""The candles production reads: loading them as the sweep did, checking that a model can use
them (enough bars for the features' warm-up, the bar interval it was trained on), their
fingerprint, and times given as text."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptosweep.core.config import ObjectiveSpec
from cryptosweep.core.errors import DataError
from cryptosweep.core.intervals import detect_interval, format_interval, parse_interval
from cryptosweep.trading.candle_formats import OHLCV_COLUMNS
from cryptosweep.trading.data import load_ohlcv, sample_data_path
from cryptosweep.trading.features import WARM_UP_BARS
from cryptosweep.trading.steps import data_options

#: The fewest bars a model can decide on: the features' warm-up, then one complete bar.
MIN_BARS = WARM_UP_BARS + 1


def load_candles(path: str | Path, spec: ObjectiveSpec, *, format: str | None = None,
                 columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Candles from ``path`` with the loader options the model's sweep used (``data.format``,
    ``data.columns``, ``data.timestamp_unit``); a bad file is a ``DataError``. ``format`` and
    ``columns`` (``signals --format/--columns``) describe a file laid out otherwise, as the
    config's data section would: ``columns`` maps ``timestamp, open, high, low, close,
    volume`` to the file's column names (keys not given map to themselves) and implies the
    generic format unless ``format`` says otherwise."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"--data: data path not found: {path}")
    options = dict(data_options(spec.data))
    if format is not None or columns is not None:
        options.pop("columns", None)
        options["format"] = format or ("generic" if columns else options.get("format", "auto"))
        if columns:
            if options["format"] not in ("generic", "auto"):
                raise DataError(f"--columns describes a generic CSV or Parquet file, not the "
                                f"{options['format']} format")
            options["columns"] = columns
    return load_ohlcv(path, **options)


def data_source(path: str | None) -> str:
    """How a data path is recorded: the path, or the bundled sample's name."""
    return path or f"<bundled sample>/{sample_data_path().name}"


def check_candles(ohlcv: Any, bar_interval: str, what: str = "data") -> pd.DataFrame:
    """``ohlcv`` if a model trained on ``bar_interval`` bars can use it, else one
    ``DataError`` line: a frame as :func:`~cryptosweep.trading.data.load_ohlcv` gives it
    (a sorted, unique ``DatetimeIndex`` and finite ``open, high, low, close, volume``), at
    least :data:`MIN_BARS` bars, bars ``bar_interval`` apart, and bars that could have traded
    (positive prices, open and close within [low, high], volume at least 0). Times without a
    zone are taken as UTC; times in another zone are converted to UTC."""
    if not isinstance(ohlcv, pd.DataFrame) or not isinstance(ohlcv.index, pd.DatetimeIndex) \
            or not set(OHLCV_COLUMNS) <= set(ohlcv.columns):  # fmt: skip
        raise DataError(f"{what}: expected candles as load_ohlcv gives them, a DataFrame with a "
                        f"DatetimeIndex and columns {', '.join(OHLCV_COLUMNS)}")
    if not ohlcv.index.is_monotonic_increasing or not ohlcv.index.is_unique:
        raise DataError(f"{what}: the bars' times must be unique and in ascending order")
    if len(ohlcv) < MIN_BARS:
        raise DataError(
            f"{what}: {len(ohlcv)} bars, fewer than the {MIN_BARS} a decision needs (the "
            f"features' warm-up is {WARM_UP_BARS} bars before the first complete bar)"
        )
    prices = ohlcv[list(OHLCV_COLUMNS)].to_numpy(dtype="float64")
    if not np.isfinite(prices).all():
        raise DataError(f"{what}: prices and volumes must be finite (no NaN or inf)")
    _check_bars(ohlcv, what)
    detected = detect_interval(ohlcv.index, what)
    expected = parse_interval(bar_interval)
    if detected != expected:
        raise DataError(f"{what}: bars are {format_interval(detected)} apart, but the model was "
                        f"trained on {format_interval(expected)} bars")
    if ohlcv.index.tz is None:
        return ohlcv.tz_localize("UTC")
    return ohlcv if str(ohlcv.index.tz) == "UTC" else ohlcv.tz_convert("UTC")


def _check_bars(ohlcv: pd.DataFrame, what: str) -> None:
    """The checks :func:`~cryptosweep.trading.data.load_ohlcv` makes of each row of a file,
    for candles in memory: positive prices, high at least low, open and close within them, a
    volume at least 0; one ``DataError`` naming the first bar that fails."""
    o, h, low, c, v = (ohlcv[column].to_numpy(dtype="float64") for column in OHLCV_COLUMNS)
    checks = [
        ((o <= 0) | (h <= 0) | (low <= 0) | (c <= 0), "prices must be positive"),
        (h < low, "high is below low"),
        ((o < low) | (o > h), "open is outside [low, high]"),
        ((c < low) | (c > h), "close is outside [low, high]"),
        (v < 0, "volume is negative"),
    ]
    failures = [(int(np.argmax(mask)), order) for order, (mask, _) in enumerate(checks)
                if mask.any()]
    if failures:
        row, order = min(failures)  # the earliest bar, its first failure in the list's order
        reason = checks[order][1]
        values = ", ".join(f"{name} {float(ohlcv[name].iat[row])!r}" for name in OHLCV_COLUMNS)
        raise DataError(f"{what}: the bar at {ohlcv.index[row].isoformat()}: {reason} "
                        f"({values})")


def closed_bars(ohlcv: pd.DataFrame, bar_interval: str, now: pd.Timestamp,
                what: str = "--data") -> tuple[pd.DataFrame, str | None]:
    """``ohlcv`` (UTC, as :func:`check_candles` gives it) without a last bar that has not
    closed at ``now`` (an exporter's candle still forming: a decision "at its close" would be
    made before the close), with a note saying so; a bar that opens after ``now`` is a wrong
    clock or time zone: one ``DataError`` line."""
    interval = pd.Timedelta(parse_interval(bar_interval))
    now = now.tz_convert("UTC") if now.tzinfo is not None else now.tz_localize("UTC")
    if ohlcv.index[-1] > now:
        first = ohlcv.index[ohlcv.index > now][0]
        raise DataError(f"{what}: the bar at {first.isoformat()} opens after now "
                        f"({now.floor('s').isoformat()}): times in the future (a wrong time zone "
                        f"or clock?)")
    if ohlcv.index[-1] + interval <= now:
        return ohlcv, None
    last = ohlcv.index[-1]
    return ohlcv.iloc[:-1], (f"{what}: left out the last bar (opening {last.isoformat()}): it "
                             f"closes at {(last + interval).isoformat()}, after now")


def check_warm_up(ohlcv: pd.DataFrame, shown: int, what: str = "--data") -> None:
    """Each of the ``shown`` latest bars of ``ohlcv`` needs the features' warm-up
    (:data:`~cryptosweep.trading.features.WARM_UP_BARS` bars) before it, else its features
    are incomplete and its decision says nothing: one ``DataError`` line naming how many bars
    are needed."""
    before = len(ohlcv) - shown
    if before < WARM_UP_BARS:
        raise DataError(
            f"{what}: {len(ohlcv)} bars, so the first of the {shown} bars shown has "
            f"{max(before, 0)} bars before it, fewer than the {WARM_UP_BARS} bars of warm-up "
            f"the features need; give at least {WARM_UP_BARS + shown} bars or a smaller --last"
        )


def frame_fingerprint(ohlcv: pd.DataFrame) -> str:
    """SHA-256 of candles in memory: the open times (int64 ns, UTC) and the OHLCV columns as
    little-endian float64, row after row."""
    times = ohlcv.index.tz_convert("UTC").as_unit("ns").asi8.astype("<i8")
    values = np.ascontiguousarray(ohlcv[list(OHLCV_COLUMNS)].to_numpy(dtype="<f8"))
    digest = hashlib.sha256()
    digest.update(times.tobytes())
    digest.update(values.tobytes())
    return digest.hexdigest()


def parse_time(value: Any, what: str) -> pd.Timestamp:
    """A time given as text, ``datetime`` or ``Timestamp`` as a UTC ``Timestamp`` (a time
    without a zone is UTC); a ``DataError`` naming ``what`` when it is not a time."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise DataError(f"{what}: {value!r} is not a time (e.g. 2022-08-01 or "
                        "2022-08-01T13:00Z)") from None
    if stamp is pd.NaT:
        raise DataError(f"{what}: {value!r} is not a time")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
