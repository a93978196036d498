"""OHLCV loaders: Binance, CryptoDataDownload and generic CSV/Parquet files into one frame.

The output is what every other part of :mod:`cryptosweep.trading` expects: a UTC
``DatetimeIndex`` named ``open_time`` (nanosecond resolution), ascending and unique, and
float64 columns exactly ``open, high, low, close, volume``. Validation fails fast with one
:class:`DataError` line that names the file and the first bad row (its line number, or
``row N`` for Parquet, and its timestamp); gaps are logged and reported by :func:`gap_report`,
never filled (filling would invent prices). Nothing is cached here:
:func:`cryptosweep.trading.features.cached_features` caches.

Formats (``format=``; ``"auto"`` sniffs each file, see :func:`detect_format`):

``binance``
    Binance kline CSV (https://data.binance.vision): with the header
    ``open_time,open,high,low,close,volume,...`` or without one (then the first six of the 12
    kline columns are used); ``open_time`` in ms or µs since the epoch, told apart row by row by
    magnitude (Binance moved spot files from ms to µs in 2025). Plain, ``.csv.gz`` or the
    monthly ``.zip`` dumps exactly as published (a zip holding one headerless CSV named like
    ``BTCUSDT-1h-2024-01.csv``).
``cryptodatadownload``
    CryptoDataDownload CSV: an optional notice line (``https://www.CryptoDataDownload.com``)
    above the header ``unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT[,tradecount]``
    (older files: ``Date,Symbol,Open,High,Low,Close,Volume BTC,Volume USD``, no ``unix``).
    Header names are matched case-insensitively. The time is ``unix`` where that parses (an epoch
    in s, ms or µs, told apart row by row by magnitude), else ``date``: ISO 8601
    (``2020-01-01 00:00:00``, daily ``2020-01-01``) or CDD's hour stamps ``2019-10-17 09-AM``
    on the 12-hour clock (``12-AM`` is midnight, ``12-PM`` noon), all UTC. Rows come newest
    first and are sorted. ``volume`` is the base-asset volume: the first ``Volume <X>`` column
    whose ``<X>`` is not the quote currency (the end of the symbol, e.g. ``USDT`` of
    ``BTC/USDT``, or one of :data:`QUOTE_CURRENCIES`); CDD writes base volume first.
``generic``
    A CSV with a header, or a Parquet file (``.parquet``), whose columns are named by
    ``columns`` (keys ``timestamp, open, high, low, close, volume``; a missing key means the
    column of that very name; names match exactly, else case-insensitively). Timestamps are
    ISO 8601 strings (naive ones are UTC, ones with an offset are converted to UTC), Parquet
    timestamps (naive = UTC), or numbers in ``timestamp_unit`` (``s, ms, us, ns``) since the
    epoch; numbers without a ``timestamp_unit`` are an error, never guessed.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptosweep.core.errors import DataError
from cryptosweep.core.intervals import detect_interval, format_interval
from cryptosweep.trading.candle_formats import (
    _NA_TEXT,
    DATA_SUFFIXES,
    OHLCV_COLUMNS,
    PRICE_COLUMNS,
    LoadOptions,
    _Parsed,
    _read_binance,
    _read_cdd,
    _read_generic,
    detect_format,
)

log = logging.getLogger(__name__)

SAMPLE_FILE = "BTCUSDT-1h-2021-10_2022-10.csv.gz"


class DuplicateRowsWarning(UserWarning):
    """Rows with the same ``open_time`` and identical values were dropped."""


def sample_data_path() -> Path:
    """The bundled sample: Binance BTC/USDT 1h candles, 2021-10 to 2022-10 (9,504 rows)."""
    return Path(__file__).resolve().parent.parent / "data" / SAMPLE_FILE


def data_files(source: Path) -> list[Path]:
    """The files ``source`` stands for: itself, or a folder's ``.csv``/``.csv.gz``/``.zip``/
    ``.parquet`` files in name order (Binance names sort chronologically; the loader sorts by
    time anyway)."""
    if not source.exists():
        raise DataError(f"{source}: no such file or folder")
    if not source.is_dir():
        return [source]
    try:
        files = sorted(
            p for p in source.iterdir() if p.is_file() and p.name.lower().endswith(DATA_SUFFIXES)
        )
    except OSError as exc:  # a folder that cannot be listed
        raise DataError(f"{source}: cannot be read ({exc.strerror or exc})") from None
    if not files:
        raise DataError(f"{source}: folder holds no {', '.join(DATA_SUFFIXES)} files")
    return files


def load_ohlcv(
    path: str | Path | None = None,
    *,
    format: str = "auto",
    columns: Mapping[str, str] | Any | None = None,
    timestamp_unit: str | None = None,
) -> pd.DataFrame:
    """Load and validate OHLCV candles; ``None`` loads :func:`sample_data_path`.

    ``path`` is a file or a folder of files (concatenated; see :func:`data_files`) in one of the
    formats of this module's docstring: ``format`` is ``"auto"`` (sniff each file, see
    :func:`detect_format`), ``"binance"``, ``"cryptodatadownload"`` or ``"generic"``.
    ``columns`` (keys ``timestamp, open, high, low, close, volume``) and ``timestamp_unit``
    (``s, ms, us, ns``; ``None``: timestamps are dates) describe generic files only.

    Rows are sorted by time whatever the file order. Every bar must be a whole number of bar
    intervals after the previous one (:func:`~cryptosweep.core.intervals.detect_interval`): files
    of different intervals, or irregular stamps, are a :class:`DataError`. Rows with the same
    ``open_time`` and identical values are dropped with a :class:`DuplicateRowsWarning`; the
    same ``open_time`` with different values is a :class:`DataError`. A NaN or unparseable
    value, a non-positive price, a negative volume, ``high < low`` or ``open``/``close``
    outside ``[low, high]`` is a :class:`DataError` naming the file and the first bad row in
    file order, and so is an infinite price or volume, or an epoch after 2262-04-11 (it would
    wrap around). Gaps (see
    :func:`gap_report`) are logged as a warning, never filled.
    """
    source = sample_data_path() if path is None else Path(path)
    options = LoadOptions.of(
        format=format, columns=columns, timestamp_unit=timestamp_unit, source=source
    )
    files = data_files(source)
    _check_one_market(files, source)
    frames = [_read_file(file, options) for file in files]
    if len(frames) > 1:
        _check_one_interval(files, frames, source)
    frame = pd.concat(frames) if len(frames) > 1 else frames[0]
    frame = frame.sort_index(kind="stable")
    frame = _drop_duplicates(frame, source, files, frames)
    detect_interval(frame.index, source)  # mixed or irregular intervals: a DataError
    _log_gaps(gap_report(frame), source)
    log.debug("loaded %d bars from %s", len(frame), source)
    return frame


def gap_report(ohlcv: pd.DataFrame | pd.DatetimeIndex) -> dict[str, Any]:
    """Gaps in a loaded series: ``{"count", "longest", "longest_at", "missing", "bar"}``.

    The bar length ``bar`` is the median step between consecutive ``open_time`` values; a gap
    is any longer step. ``count`` is the number of gaps, ``longest`` the longest step
    (a ``pd.Timedelta``: 4 h for three missing hourly bars), ``longest_at`` the ``open_time``
    of the last bar before it (the first such gap if several are as long), ``missing`` the
    number of missing bars, roughly (each gap's step over ``bar``, rounded, minus one).
    Without gaps (or with under 3 bars, where no bar length can be told) ``count`` and
    ``missing`` are 0 and ``longest``/``longest_at`` are ``None`` (``bar`` ``None`` under 2).
    """
    index = ohlcv if isinstance(ohlcv, pd.DatetimeIndex) else ohlcv.index
    report: dict[str, Any] = {
        "count": 0, "longest": None, "longest_at": None, "missing": 0, "bar": None,
    }  # fmt: skip
    if len(index) < 2:
        return report
    steps = np.diff(index.as_unit("ns").asi8)
    bar = float(np.median(steps))
    report["bar"] = pd.Timedelta(int(bar), unit="ns")
    if len(index) < 3:
        return report
    gaps = steps > bar
    if gaps.any():
        where = int(np.argmax(np.where(gaps, steps, np.iinfo(np.int64).min)))
        report.update(
            count=int(gaps.sum()),
            longest=pd.Timedelta(int(steps[where]), unit="ns"),
            longest_at=index[where],
            missing=int(np.sum(np.round(steps[gaps] / bar) - 1)),
        )
    return report


# --------------------------------------------------------------------------- reading a file


def _read_file(file: Path, options: LoadOptions) -> pd.DataFrame:
    if file.stat().st_size == 0:
        raise DataError(f"{file}: empty file")
    kind = options.format
    if kind == "auto":
        kind = detect_format(file, options.mapping)
    if kind == "binance":
        parsed = _read_binance(file)
    elif kind == "cryptodatadownload":
        parsed = _read_cdd(file)
    else:
        parsed = _read_generic(file, options)
    _validate(file, parsed)
    index = pd.DatetimeIndex(parsed.times.astype("datetime64[ns]"), name="open_time")
    index = index.tz_localize("UTC")
    return pd.DataFrame(
        {col: parsed.numbers[col] for col in OHLCV_COLUMNS}, index=index, dtype="float64"
    )


# --------------------------------------------------------------------------- Binance


# --------------------------------------------------------------------------- CryptoDataDownload


# --------------------------------------------------------------------------- generic


# --------------------------------------------------------------------------- parsing helpers


# --------------------------------------------------------------------------- validation


Check = tuple[np.ndarray, Callable[[int], str]]


def _validate(file: Path, parsed: _Parsed) -> None:
    """Raise one DataError for the earliest row (in file order) that fails any check."""
    checks = _row_checks(parsed)
    first_bad = [(int(np.argmax(mask)), order) for order, (mask, _) in enumerate(checks)
                 if mask.any()]  # fmt: skip
    if not first_bad:
        return
    row, order = min(first_bad)
    reason = checks[order][1](row)
    if parsed.time_ok[row]:
        stamp = pd.Timestamp(int(parsed.times[row]), unit="ns", tz="UTC").isoformat()
    else:
        stamp = repr(str(parsed.cells["time"].iat[row]).strip())
    where = f"row {row + 1}" if parsed.first_line is None else f"line {parsed.first_line + row}"
    raise DataError(f"{file}: {where} (open_time {stamp}): {reason}")


def _row_checks(parsed: _Parsed) -> list[Check]:
    """(bad-row mask, reason for a row) pairs, in the order a row's first failure is reported."""
    data, numbers = parsed.cells, parsed.numbers
    o, h, low, c, v = (numbers[col] for col in OHLCV_COLUMNS)
    checks: list[Check] = [(~parsed.time_ok, parsed.time_reason)]
    with np.errstate(invalid="ignore"):
        for col in OHLCV_COLUMNS:
            if pd.api.types.is_numeric_dtype(data[col].dtype):
                continue  # numbers (Parquet) cannot be unparseable; NaN is "missing" below
            text = data[col].astype(str).str.strip()
            unparsed = np.isnan(numbers[col]) & ~text.str.lower().isin(_NA_TEXT).to_numpy()
            checks.append((unparsed, _reason(col, data, "unparseable value '{}'")))
        for col in PRICE_COLUMNS:
            checks.append((np.isnan(numbers[col]), _reason(col, data, "missing/NaN value '{}'")))
            checks.append((numbers[col] <= 0, _reason(col, data, "non-positive price {}")))
            checks.append((np.isinf(numbers[col]), _reason(col, data, "infinite price '{}'")))
        checks += [
            (np.isnan(v) | (v < 0), _reason("volume", data, "missing or negative volume '{}'")),
            (np.isinf(v), _reason("volume", data, "infinite volume '{}'")),
            (h < low, lambda r: f"high {float(h[r])!r} < low {float(low[r])!r}"),
            ((o < low) | (o > h), _outside("open", o, low, h)),
            ((c < low) | (c > h), _outside("close", c, low, h)),
        ]
    return checks


def _reason(col: str, data: pd.DataFrame, template: str) -> Callable[[int], str]:
    return lambda row: f"{col}: " + template.format(str(data[col].iat[row]).strip())


def _outside(
    name: str, price: np.ndarray, low: np.ndarray, high: np.ndarray
) -> Callable[[int], str]:
    return lambda r: (
        f"{name} {float(price[r])!r} outside [low {float(low[r])!r}, high {float(high[r])!r}]"
    )


# --------------------------------------------------------------------------- whole series


def _drop_duplicates(
    frame: pd.DataFrame, source: Path, files: list[Path], frames: list[pd.DataFrame]
) -> pd.DataFrame:
    if frame.index.is_unique:
        return frame
    repeated = frame.index.duplicated(keep=False)
    conflicting = frame[repeated].groupby(level=0).nunique(dropna=False).gt(1).any(axis=1)
    if conflicting.any():
        stamp = conflicting.index[conflicting.to_numpy()][0]
        where = [str(f) for f, part in zip(files, frames, strict=True) if stamp in part.index]
        raise DataError(
            f"{', '.join(where)}: open_time {stamp.isoformat()} appears more than once with "
            "different values"
        )
    duplicated = frame.index.duplicated(keep="first")
    first = frame.index[duplicated][0].isoformat()
    message = (
        f"{source}: dropped {int(duplicated.sum())} duplicate row(s) with identical values "
        f"(first at open_time {first})"
    )
    warnings.warn(message, DuplicateRowsWarning, stacklevel=3)
    log.warning(message)
    return frame[~duplicated]


#: The symbol in a file name by Binance's rule (``BTCUSDT-1h-2024-01.zip``, daily dumps
#: ``BTCUSDT-1h-2024-01-15.zip``) or CryptoDataDownload's (``Binance_BTCUSDT_1h.csv``,
#: ``Bitstamp_BTCUSD_2021_minute.csv``); other names say nothing of the market.
_MARKET_NAMES = (  # a symbol holds a letter: btc_2021_1h.csv names a year, not a market
    re.compile(r"^((?=[A-Z0-9]*[A-Z])[A-Z0-9]{2,30})-\d+[smhdwM]o?-\d{4}-\d{2}"),
    re.compile(r"^[A-Za-z]+_((?=[A-Z0-9]*[A-Z])[A-Z0-9]{4,30})_(?:\d{4}_)?"
               r"(?:\d*[mhd]|minute|hour|day)\."),
)


def _check_one_market(files: list[Path], source: Path) -> None:
    """A folder's files named by Binance's or CryptoDataDownload's rule must name one symbol:
    another market's month among them was read as one series, its join a crash or a rally."""
    markets: dict[str, int] = {}
    for file in files:
        match = next((m for p in _MARKET_NAMES if (m := p.match(file.name))), None)
        if match is not None:
            markets[match[1]] = markets.get(match[1], 0) + 1
    if len(markets) > 1:
        listed = ", ".join(f"{symbol}: {count} file{'s' if count > 1 else ''}"
                           for symbol, count in sorted(markets.items()))
        raise DataError(f"{source}: its files are of different markets ({listed}); one data "
                        "set must be one market (a folder per market)")


def _check_one_interval(files: list[Path], frames: list[pd.DataFrame], source: Path) -> None:
    """Files of one data set must share one bar interval (an hourly and a daily file would
    otherwise pass as hourly bars with long gaps)."""
    intervals = {}
    for file, frame in zip(files, frames, strict=True):
        interval = detect_interval(frame.index.sort_values(), file)
        if interval is not None:
            intervals[file.name] = interval
    if len(set(intervals.values())) > 1:
        listed = ", ".join(f"{name} {format_interval(i)}" for name, i in intervals.items())
        raise DataError(f"{source}: its files have different bar intervals ({listed}); one data "
                        "set must have one interval")


def _log_gaps(report: dict[str, Any], source: Path) -> None:
    if report["count"]:
        log.warning(
            "%s: %d gap(s) in open_time (about %d missing bars of %s), longest %s after %s; "
            "gaps are not filled", source, report["count"], report["missing"], report["bar"],
            report["longest"], report["longest_at"].isoformat(),
        )  # fmt: skip
