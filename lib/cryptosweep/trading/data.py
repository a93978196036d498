"""OHLCV loaders: Binance kline CSV files (or a folder of them) into one validated frame.

The output is what every other part of :mod:`cryptosweep.trading` expects: a UTC
``DatetimeIndex`` named ``open_time``, ascending and unique, and float64 columns exactly
``open, high, low, close, volume``. Validation fails fast with one :class:`DataError` line that
names the file and the first bad row; gaps are logged and never filled (filling would invent
prices). Nothing is cached here: :func:`cryptosweep.trading.features.cached_features` caches.
"""

from __future__ import annotations

import logging
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from cryptosweep.errors import DataError

log = logging.getLogger(__name__)

SAMPLE_FILE = "BTCUSDT-1h-2021-10_2022-10.csv.gz"
OHLCV_COLUMNS = ("open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
#: The 12 columns of a Binance kline export, in order (files without a header).
KLINE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "trades", "taker_buy_base_volume", "taker_buy_quote_volume", "ignore",
)  # fmt: skip
DATA_SUFFIXES = (".csv", ".csv.gz", ".zip")
# Epoch magnitudes today: ms ~1.7e12, µs ~1.7e15. ms stays below 1e14 until the year 5138.
_MS_MIN, _US_MIN, _US_MAX = 10**11, 10**14, 10**17
_NA_TEXT = frozenset({"", "nan", "na", "n/a", "null", "none"})


class DuplicateRowsWarning(UserWarning):
    """Rows with the same ``open_time`` and identical values were dropped."""


def sample_data_path() -> Path:
    """The bundled sample: Binance BTC/USDT 1h candles, 2021-10 to 2022-10 (9,504 rows)."""
    return Path(__file__).resolve().parent.parent / "data" / SAMPLE_FILE


def data_files(source: Path) -> list[Path]:
    """The files ``source`` stands for: itself, or a folder's ``.csv``/``.csv.gz``/``.zip`` files
    in name order (Binance names sort chronologically)."""
    if not source.exists():
        raise DataError(f"{source}: no such file or folder")
    if not source.is_dir():
        return [source]
    files = sorted(
        p for p in source.iterdir() if p.is_file() and p.name.lower().endswith(DATA_SUFFIXES)
    )
    if not files:
        raise DataError(f"{source}: folder holds no {', '.join(DATA_SUFFIXES)} files")
    return files


def load_ohlcv(path: str | Path | None = None) -> pd.DataFrame:
    """Load and validate OHLCV candles; ``None`` loads :func:`sample_data_path`.

    ``path`` is a Binance kline CSV (with the header ``open_time,open,high,low,close,volume,...``
    or without one, in which case the first six of the 12 kline columns are used), plain or
    compressed (``.csv.gz``, ``.zip``), with ``open_time`` in ms or µs since the epoch (told
    apart by magnitude, row by row, since Binance moved spot files from ms to µs in 2025), or a
    folder of such files, concatenated.

    Rows with the same ``open_time`` and identical values are dropped with a
    :class:`DuplicateRowsWarning`; the same ``open_time`` with different values is a
    :class:`DataError`. Gaps are logged (count and longest), never filled.
    """
    source = sample_data_path() if path is None else Path(path)
    files = data_files(source)
    frames = [_read_file(file) for file in files]
    frame = pd.concat(frames) if len(frames) > 1 else frames[0]
    frame = frame.sort_index(kind="stable")
    frame = _drop_duplicates(frame, source, files, frames)
    _log_gaps(frame.index, source)
    log.debug("loaded %d bars from %s", len(frame), source)
    return frame


# --------------------------------------------------------------------------- one file


def _read_file(file: Path) -> pd.DataFrame:
    raw = _read_text_table(file)
    data, first_line = _select_columns(raw, file)
    numbers = {col: _to_float(data[col]) for col in ("open_time", *OHLCV_COLUMNS)}
    _validate(file, data, numbers, first_line)
    index = _to_index(numbers["open_time"])
    return pd.DataFrame({col: numbers[col] for col in OHLCV_COLUMNS}, index=index, dtype="float64")


def _read_text_table(file: Path) -> pd.DataFrame:
    if file.stat().st_size == 0:
        raise DataError(f"{file}: empty file")
    try:
        return pd.read_csv(file, header=None, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{file}: empty file") from None
    except (
        pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, ValueError,
        zipfile.BadZipFile,
    ) as exc:  # fmt: skip
        raise DataError(f"{file}: cannot parse as a kline CSV ({_one_line(exc)})") from None


def _select_columns(raw: pd.DataFrame, file: Path) -> tuple[pd.DataFrame, int]:
    """The named columns of the data rows, and the file line number of the first data row."""
    first_cell = str(raw.iat[0, 0]).strip()
    if _is_number(first_cell):
        if raw.shape[1] < 6:
            raise DataError(
                f"{file}: line 1 has {raw.shape[1]} columns; a headerless kline CSV needs "
                "at least 6 (open_time, open, high, low, close, volume)"
            )
        data = raw.iloc[:, :6].copy()
        data.columns = list(KLINE_COLUMNS[:6])
        first_line = 1
    else:
        names = [str(name).strip().lower() for name in raw.iloc[0]]
        missing = [col for col in ("open_time", *OHLCV_COLUMNS) if col not in names]
        if missing:
            raise DataError(f"{file}: header lacks column(s) {', '.join(missing)}")
        data = raw.iloc[1:].copy()
        data.columns = names
        first_line = 2
    if data.empty:
        raise DataError(f"{file}: empty file (a header but no data rows)")
    return data.reset_index(drop=True), first_line


def _to_float(text: pd.Series) -> np.ndarray:
    return pd.to_numeric(text.str.strip(), errors="coerce").to_numpy(dtype="float64")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _validate(
    file: Path, data: pd.DataFrame, numbers: dict[str, np.ndarray], first_line: int
) -> None:
    """Raise one DataError for the earliest row that fails any check."""
    checks = _row_checks(data, numbers)
    first_bad = [(int(np.argmax(mask)), order) for order, (mask, _) in enumerate(checks)
                 if mask.any()]  # fmt: skip
    if not first_bad:
        return
    row, order = min(first_bad)
    reason = checks[order][1](row)
    stamp = _stamp(numbers["open_time"][row], data["open_time"].iat[row])
    raise DataError(f"{file}: line {first_line + row} (open_time {stamp}): {reason}")


Check = tuple[np.ndarray, Callable[[int], str]]


def _row_checks(data: pd.DataFrame, numbers: dict[str, np.ndarray]) -> list[Check]:
    """(bad-row mask, reason for a row) pairs, in the order a row's first failure is reported."""
    t = numbers["open_time"]
    o, h, low, c, v = (numbers[col] for col in OHLCV_COLUMNS)
    with np.errstate(invalid="ignore"):
        bad_time = ~((t >= _MS_MIN) & (t < _US_MAX) & (np.floor(t) == t))
        checks: list[Check] = [(bad_time, lambda r: "open_time is not an epoch in ms or µs")]
        for col in OHLCV_COLUMNS:
            text = data[col].str.strip()
            unparsed = np.isnan(numbers[col]) & ~text.str.lower().isin(_NA_TEXT).to_numpy()
            checks.append((unparsed, _reason(col, data, "unparseable value '{}'")))
        for col in PRICE_COLUMNS:
            checks.append((np.isnan(numbers[col]), _reason(col, data, "missing/NaN value '{}'")))
            checks.append((numbers[col] <= 0, _reason(col, data, "non-positive price {}")))
        checks += [
            (np.isnan(v) | (v < 0), _reason("volume", data, "missing or negative volume '{}'")),
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


def _stamp(value: float, text: str) -> str:
    if np.isfinite(value) and _MS_MIN <= value < _US_MAX:
        return _to_index(np.array([value]))[0].isoformat()
    return repr(str(text).strip())


def _to_index(open_time: np.ndarray) -> pd.DatetimeIndex:
    as_int = open_time.astype("int64")
    nanos = np.where(as_int >= _US_MIN, as_int * 1_000, as_int * 1_000_000)
    return pd.DatetimeIndex(pd.to_datetime(nanos, unit="ns", utc=True), name="open_time")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


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


def _log_gaps(index: pd.DatetimeIndex, source: Path) -> None:
    if len(index) < 3:
        return
    steps = np.diff(index.asi8)
    bar = np.median(steps)
    gaps = steps > bar
    if gaps.any():
        longest = pd.Timedelta(int(steps[gaps].max()), unit="ns")
        missing = int(np.sum(np.round(steps[gaps] / bar) - 1))
        log.warning(
            "%s: %d gap(s) in open_time (about %d missing bars of %s), longest %s; "
            "gaps are not filled", source, int(gaps.sum()), missing,
            pd.Timedelta(int(bar), unit="ns"), longest,
        )  # fmt: skip
