"""The candle file formats: Binance klines, CryptoDataDownload and generic CSV/Parquet, each
read into source cells, parsed numbers and times (:class:`_Parsed`) for :mod:`.data` to
validate; sniffing a file's format (:func:`detect_format`); the loader options."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from cryptosweep.core.data_settings import shared_column
from cryptosweep.core.errors import DataError

# Epoch magnitudes today: s ~1.7e9, ms ~1.7e12, µs ~1.7e15. ms stays below 1e14 until the
# year 5138, s below 1e11 until 5138; s from 1e8 (1973) so that small numbers are not dates.
_S_MIN, _MS_MIN, _US_MIN, _US_MAX = 10**8, 10**11, 10**14, 10**17


OHLCV_COLUMNS = ("open", "high", "low", "close", "volume")


PRICE_COLUMNS = ("open", "high", "low", "close")


#: The 12 columns of a Binance kline export, in order (files without a header).
KLINE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "trades", "taker_buy_base_volume", "taker_buy_quote_volume", "ignore",
)  # fmt: skip


#: What ``format=`` names: the file formats, after ``"auto"`` (sniff each file).
FORMATS = ("binance", "cryptodatadownload", "generic")


TIMESTAMP_UNITS = ("s", "ms", "us", "ns")


#: Keys of the ``columns`` mapping of a generic file (the default maps each to itself).
MAPPING_KEYS = ("timestamp", *OHLCV_COLUMNS)


#: Quote currencies whose ``Volume <X>`` column of a CryptoDataDownload file is never the
#: base-asset volume.
QUOTE_CURRENCIES = frozenset({"USD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "FDUSD", "DAI"})


DATA_SUFFIXES = (".csv", ".csv.gz", ".zip", ".parquet")


# The latest time a nanosecond timestamp holds (2262-04-11): later epochs would wrap around.
_MAX_NS = float(np.iinfo(np.int64).max)


_UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


_NA_TEXT = frozenset({"", "nan", "na", "n/a", "null", "none"})


_CDD_HOUR = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{1,2})-([AP]M)$", re.IGNORECASE)


_FORMAT_HELP = (
    "binance (headerless numeric kline rows, or a header with open_time), cryptodatadownload "
    "(a CryptoDataDownload notice line, or a header with unix, or date and symbol), generic "
    "(.parquet, or a CSV header holding the columns mapping {mapping})"
)


_READ_ERRORS = (
    pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, ValueError, KeyError,
    zipfile.BadZipFile, lzma.LZMAError,
)  # fmt: skip


@dataclass(frozen=True)
class LoadOptions:
    """The loader options, checked and normalised (hashable: part of the feature-cache key).

    ``columns`` holds the full generic mapping as ``((key, source column), ...)`` in the order
    of :data:`MAPPING_KEYS`, so that ``None``, ``{}`` and the explicit default are equal.
    """

    format: str = "auto"
    columns: tuple[tuple[str, str], ...] = tuple((key, key) for key in MAPPING_KEYS)
    timestamp_unit: str | None = None

    @classmethod
    def of(
        cls,
        *,
        format: str = "auto",
        columns: Mapping[str, str] | Any | None = None,
        timestamp_unit: str | None = None,
        source: str | Path | None = None,
    ) -> LoadOptions:
        """Check the options (a bad one is a :class:`DataError` naming ``source``).

        ``columns`` is a mapping or the config's ``ColumnMapping`` (anything with
        ``model_dump()``); keys not given map to themselves.
        """
        where = f"{source}: " if source is not None else ""
        if format not in ("auto", *FORMATS):
            raise DataError(
                f"{where}unknown format {format!r}; known formats: auto, {', '.join(FORMATS)}"
            )
        if timestamp_unit is not None and timestamp_unit not in TIMESTAMP_UNITS:
            raise DataError(
                f"{where}unknown timestamp_unit {timestamp_unit!r}; "
                f"known: {', '.join(TIMESTAMP_UNITS)} or None (dates)"
            )
        given = columns.model_dump() if hasattr(columns, "model_dump") else dict(columns or {})
        unknown = sorted(set(given) - set(MAPPING_KEYS))
        if unknown:
            raise DataError(
                f"{where}unknown columns key(s) {', '.join(map(str, unknown))}; "
                f"known: {', '.join(MAPPING_KEYS)}"
            )
        mapping = tuple((key, str(given.get(key, key))) for key in MAPPING_KEYS)
        clash = shared_column(dict(mapping))  # {open: close}: every open read as the close
        if clash is not None:
            raise DataError(f"{where}columns: {clash}")
        return cls(format=format, columns=mapping, timestamp_unit=timestamp_unit)

    @property
    def mapping(self) -> dict[str, str]:
        return dict(self.columns)


def detect_format(file: str | Path, columns: Mapping[str, str] | Any | None = None) -> str:
    """Which of :data:`FORMATS` a single file is in, from its name and first lines.

    In order: ``.parquet`` (or Parquet magic bytes) → generic; a first cell that is a number →
    headerless Binance; a first line mentioning ``cryptodatadownload`` (any case) →
    CryptoDataDownload; a header with ``open_time`` → Binance; a header with ``unix``, or with
    ``date`` and ``symbol`` → CryptoDataDownload; a header holding every column of the
    ``columns`` mapping → generic. Anything else is a :class:`DataError` listing the formats.
    """
    file = Path(file)
    options = LoadOptions.of(columns=columns, source=file)
    if _is_parquet(file):
        return "generic"
    head = _head_lines(file, 2)
    first = _cells(head[0])
    if _is_number(first[0]):
        return "binance"
    if "cryptodatadownload" in head[0].lower():
        return "cryptodatadownload"
    names = {name.lower() for name in first}
    if "open_time" in names:
        return "binance"
    if ("unix" in names or "unix timestamp" in names) or {"date", "symbol"} <= names:
        return "cryptodatadownload"
    if _resolve(first, options.mapping) is not None:
        return "generic"
    separator = next((c for c in ";\t|" if c in head[0] and "," not in head[0]), None)
    hint = (f"; its first line is separated by {separator!r}, not commas: only comma-separated "
            "files are read" if separator else "")
    raise DataError(
        f"{file}: unknown data format (first line {_clip(head[0])!r}){hint}; known formats: "
        + _FORMAT_HELP.format(mapping=",".join(options.mapping.values()))
        + "; or pass format explicitly"
    )


@dataclass
class _Parsed:
    """One file's rows, before validation: source cells, parsed numbers and times."""

    cells: pd.DataFrame  # columns "time" and OHLCV_COLUMNS: the source values (text or numbers)
    numbers: dict[str, np.ndarray]  # float64 OHLCV
    times: np.ndarray  # int64 ns since the epoch, meaningful where time_ok
    time_ok: np.ndarray  # bool
    time_reason: Callable[[int], str]  # why a row's time is bad
    first_line: int | None  # file line number of row 0; None: a Parquet file ("row N")


@contextmanager
def _open_text(file: Path) -> Iterator[TextIO]:
    """The file as text (UTF-8, a BOM dropped), decompressing ``.gz/.bz2/.xz`` and a ``.zip``
    holding one file (Binance's monthly dumps)."""
    name = file.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(file) as archive:
            members = [
                m for m in archive.infolist()
                if not m.is_dir() and not m.filename.startswith("__MACOSX/")
                and not Path(m.filename).name.startswith(".")
            ]  # fmt: skip
            if len(members) != 1:
                raise DataError(
                    f"{file}: a data zip must hold exactly one CSV (like Binance's monthly "
                    f"dumps); it holds {len(members)} files"
                )
            with archive.open(members[0]) as raw:
                yield io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        return
    opener: Callable[..., Any] = open
    if name.endswith(".gz"):
        opener = gzip.open
    elif name.endswith(".bz2"):
        opener = bz2.open
    elif name.endswith(".xz"):
        opener = lzma.open
    with opener(file, "rt", encoding="utf-8-sig", newline="") as text:
        yield text


@contextmanager
def _reading(file: Path, what: str) -> Iterator[None]:
    """Turn a failure to read or parse ``file`` into one DataError line."""
    try:
        yield
    except pd.errors.EmptyDataError:
        raise DataError(f"{file}: empty file") from None
    except _READ_ERRORS as exc:
        raise DataError(f"{file}: cannot parse as {what} ({_one_line(exc)})") from None


def _head_lines(file: Path, count: int) -> list[str]:
    """The first ``count`` non-blank lines (at least one, else the file is empty)."""
    lines: list[str] = []
    with _reading(file, "a text table"), _open_text(file) as text:
        for _ in range(1000):
            line = text.readline(1 << 16)
            if not line:
                break
            if line.strip():
                lines.append(line.strip())
                if len(lines) == count:
                    break
    if not lines:
        raise DataError(f"{file}: empty file")
    return lines


def _read_csv(file: Path, what: str, **kwargs: Any) -> pd.DataFrame:
    with _reading(file, what), _open_text(file) as text:
        return pd.read_csv(text, dtype=str, keep_default_na=False, **kwargs)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in next(csv.reader([line]), [""])] or [""]


def _is_parquet(file: Path) -> bool:
    if file.name.lower().endswith(".parquet"):
        return True
    try:  # the first read of a file: one without read permission was a traceback
        with open(file, "rb") as handle:
            return handle.read(4) == b"PAR1"
    except OSError as exc:
        raise DataError(f"{file}: cannot be read ({exc.strerror or exc})") from None


def _clip(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _read_binance(file: Path) -> _Parsed:
    raw = _read_csv(file, "a kline CSV", header=None)
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
    data = data.reset_index(drop=True)
    t = _to_float(data["open_time"])
    factors = np.where(t >= _US_MIN, 1_000, 1_000_000)
    with np.errstate(invalid="ignore", over="ignore"):
        ok = (t >= _MS_MIN) & (t < _US_MAX) & (np.floor(t) == t) & (t * factors < _MAX_NS)
    cells = data[["open_time", *OHLCV_COLUMNS]].rename(columns={"open_time": "time"})
    return _Parsed(
        cells=cells,
        numbers=_numbers(cells),
        times=_epoch_ns(t, factors, ok),
        time_ok=ok,
        time_reason=lambda r: "open_time is not an epoch in ms or µs up to 2262-04-11",
        first_line=first_line,
    )


def _read_cdd(file: Path) -> _Parsed:
    head = _head_lines(file, 2)
    # The notice line is whatever precedes a header naming an "open" column.
    skip = 0 if "open" in {c.lower() for c in _cells(head[0])} else 1
    raw = _read_csv(file, "a CryptoDataDownload CSV", skiprows=skip, header=0)
    if raw.empty:
        raise DataError(f"{file}: empty file (a header but no data rows)")
    by_lower: dict[str, str] = {}
    for name in raw.columns:
        by_lower.setdefault(str(name).strip().lower(), name)
    unix = by_lower.get("unix", by_lower.get("unix timestamp"))
    date = by_lower.get("date")
    volume = _cdd_volume(raw, by_lower)
    missing = [c for c in PRICE_COLUMNS if c not in by_lower]
    if unix is None and date is None:
        missing.insert(0, "unix or date")
    if volume is None:
        missing.append("a base-asset 'Volume <X>' column")
    if missing:
        raise DataError(
            f"{file}: CryptoDataDownload header lacks {', '.join(missing)} "
            f"(columns: {', '.join(map(str, raw.columns))})"
        )
    n = len(raw)
    times, ok = np.zeros(n, dtype="int64"), np.zeros(n, dtype=bool)
    if unix is not None:
        t = _to_float(raw[unix])
        factors = np.select([t < _MS_MIN, t < _US_MIN], [10**9, 10**6], 10**3)
        with np.errstate(invalid="ignore", over="ignore"):
            ok = (t >= _S_MIN) & (t < _US_MAX) & (np.floor(t) == t) & (t * factors < _MAX_NS)
        times = _epoch_ns(t, factors, ok)
    if date is not None and not ok.all():
        date_ns, date_ok = _parse_dates(raw[date])
        use = ~ok & date_ok
        times, ok = np.where(use, date_ns, times), ok | use
    time_source = unix if unix is not None else date
    cells = pd.DataFrame(
        {"time": raw[time_source], **{c: raw[by_lower[c]] for c in PRICE_COLUMNS},
         "volume": raw[volume]}
    )  # fmt: skip
    if unix is not None and date is not None:
        reason = f"{unix}: not an epoch in s, ms or µs up to 2262-04-11, and {date}: not a date"
    elif unix is not None:
        reason = f"{unix}: not an epoch in s, ms or µs up to 2262-04-11"
    else:
        reason = f"{date}: not an ISO 8601 date or a 'YYYY-MM-DD HH-AM/PM' hour"
    return _Parsed(
        cells=cells, numbers=_numbers(cells), times=times, time_ok=ok,
        time_reason=lambda r: reason, first_line=skip + 2,
    )  # fmt: skip


def _cdd_volume(raw: pd.DataFrame, by_lower: dict[str, str]) -> str | None:
    """The base-asset volume column: the first ``Volume <X>`` (or ``volume_<X>``) whose ``<X>``
    is not the quote (a known quote currency, or where the symbol ends with ``<X>``), else a
    plain ``volume``. A file with both a plain ``volume`` and ``volume_<base>`` has the quote
    volume in the plain one, so the named base column comes first."""
    symbol_col = by_lower.get("symbol")
    symbol = ""
    if symbol_col is not None and len(raw):
        symbol = re.sub(r"[^A-Z0-9]", "", str(raw[symbol_col].iat[0]).upper())
    for lower, name in by_lower.items():
        prefix = next((p for p in ("volume ", "volume_") if lower.startswith(p)), None)
        if prefix is None:
            continue
        asset = re.sub(r"[^A-Z0-9]", "", lower[len(prefix):].upper())
        is_quote = asset in QUOTE_CURRENCIES or (
            bool(symbol) and symbol != asset and symbol.endswith(asset)
            and not symbol.startswith(asset)
        )  # fmt: skip
        if asset and not is_quote:
            return name
    return by_lower.get("volume")


def _read_generic(file: Path, options: LoadOptions) -> _Parsed:
    mapping = options.mapping
    if _is_parquet(file):
        import pyarrow.parquet as pq

        with _reading(file, "Parquet"):
            names = list(pq.read_schema(file).names)
        resolved = _resolve(names, mapping)
        if resolved is None:
            raise _missing_columns(file, names, mapping)
        with _reading(file, "Parquet"):
            # The columns as the file names them: pandas' metadata would make a column that was
            # a frame's index (to_parquet's default) the index again, and no column.
            raw = pq.read_table(file, columns=list(dict.fromkeys(resolved.values()))).to_pandas(
                ignore_metadata=True)
        first_line = None
    else:
        raw = _read_csv(file, "a CSV", header=0)
        names = [str(name) for name in raw.columns]
        resolved = _resolve(names, mapping)
        if resolved is None:
            raise _missing_columns(file, names, mapping)
        first_line = 2
    if raw.empty:
        raise DataError(f"{file}: empty file (a header but no data rows)")
    cells = pd.DataFrame({("time" if k == "timestamp" else k): raw[v] for k, v in resolved.items()})
    cells = cells.reset_index(drop=True)
    times, ok, reason = _generic_times(file, cells["time"], resolved["timestamp"], options)
    return _Parsed(
        cells=cells, numbers=_numbers(cells), times=times, time_ok=ok,
        time_reason=lambda r: reason, first_line=first_line,
    )  # fmt: skip


def _generic_times(
    file: Path, column: pd.Series, name: str, options: LoadOptions
) -> tuple[np.ndarray, np.ndarray, str]:
    unit = options.timestamp_unit
    if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(column):
        values = pd.DatetimeIndex(column)
        if values.tz is None:
            values = values.tz_localize("UTC")
        ns, ok = _datetimes_ns(values)
        return ns, ok, f"{name}: missing timestamp"
    numeric = pd.api.types.is_numeric_dtype(column.dtype)
    if unit is None:
        first = next((str(v).strip() for v in column if str(v).strip()), "")
        if numeric or _is_number(first):
            raise DataError(
                f"{file}: column {name!r} holds numbers; set timestamp_unit "
                f"({', '.join(TIMESTAMP_UNITS)}) to read them as an epoch"
            )
        ns, ok = _parse_dates(column)
        return ns, ok, f"{name}: not an ISO 8601 date from 1677-09-22 to 2262-04-11"
    values = _to_float(column)
    factor = _UNIT_NS[unit]
    with np.errstate(invalid="ignore", over="ignore"):
        ok = np.isfinite(values) & (np.abs(values * factor) < _MAX_NS)
    return _epoch_ns(values, factor, ok), ok, f"{name}: not a number of {unit} since the epoch"


def _resolve(names: list[str], mapping: dict[str, str]) -> dict[str, str] | None:
    """Mapping key -> actual column name (exact match, else case-insensitive); None if any
    mapped column is missing."""
    resolved = {}
    lowered: dict[str, str] = {}
    for name in names:
        lowered.setdefault(str(name).strip().lower(), name)
    for key, wanted in mapping.items():
        if wanted in names:
            resolved[key] = wanted
        elif wanted.strip().lower() in lowered:
            resolved[key] = lowered[wanted.strip().lower()]
        else:
            return None
    return resolved


def _missing_columns(file: Path, names: list[str], mapping: dict[str, str]) -> DataError:
    lowered = {str(n).strip().lower() for n in names}
    missing = [
        f"{wanted!r} ({key})" for key, wanted in mapping.items()
        if wanted not in names and wanted.strip().lower() not in lowered
    ]  # fmt: skip
    return DataError(
        f"{file}: generic format: no column(s) {', '.join(missing)} "
        f"(columns: {', '.join(map(str, names))}); set data.columns to map them"
    )


def _to_float(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype="float64", na_value=np.nan)
    text = values.astype(str).str.strip()
    return pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _numbers(cells: pd.DataFrame) -> dict[str, np.ndarray]:
    return {col: _to_float(cells[col]) for col in OHLCV_COLUMNS}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _epoch_ns(values: np.ndarray, factors: np.ndarray | int, ok: np.ndarray) -> np.ndarray:
    """Epoch numbers times ``factors`` (ns per unit) as int64 ns, exact for whole numbers (no
    float rounding of e.g. ms * 1e6); rows not ``ok`` are 0."""
    factors = np.broadcast_to(np.asarray(factors, dtype="int64"), values.shape)
    ns = np.zeros(values.shape, dtype="int64")
    whole = np.floor(values[ok])
    ns[ok] = whole.astype("int64") * factors[ok] + np.round(
        (values[ok] - whole) * factors[ok]
    ).astype("int64")
    return ns


def _datetimes_ns(values: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """int64 ns since the epoch of UTC datetimes of any resolution, and which are valid (not
    NaT and within the ns range, 1677-2262)."""
    raw = values.asi8
    factor = _UNIT_NS[values.unit]
    ok = ~values.isna() & (np.abs(raw) <= np.iinfo(np.int64).max // factor)
    ns = np.zeros(len(raw), dtype="int64")
    ns[ok] = raw[ok] * factor
    return ns, np.asarray(ok)


def _parse_dates(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """ISO 8601 dates (naive: UTC; with an offset: converted to UTC), or CryptoDataDownload
    hour stamps ``YYYY-MM-DD HH-AM/PM`` (12-hour clock: ``12-AM`` = 00:00, ``12-PM`` = 12:00),
    as int64 ns and a validity mask."""
    text = text.astype(str).str.strip()
    ns, ok = _datetimes_ns(
        pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce"))
    )
    if ok.all():
        return ns, ok
    parts = text.str.extract(_CDD_HOUR)
    hour = pd.to_numeric(parts[1], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    day_ns, day_ok = _datetimes_ns(
        pd.DatetimeIndex(pd.to_datetime(parts[0], format="%Y-%m-%d", utc=True, errors="coerce"))
    )
    with np.errstate(invalid="ignore"):
        hour_ok = day_ok & (hour >= 1) & (hour <= 12)
    pm = parts[2].str.upper().eq("PM").to_numpy(dtype=bool, na_value=False)
    hour24 = np.where(hour_ok, np.nan_to_num(hour), 0).astype("int64") % 12 + 12 * pm
    use = ~ok & hour_ok
    ns = np.where(use, day_ns + hour24 * 3_600 * 10**9, ns)
    return ns, ok | use


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
