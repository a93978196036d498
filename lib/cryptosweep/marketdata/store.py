"""Keeping a local candle file current: :func:`update_candles` appends the exchange's newest
closed candles to the Binance kline CSV the config's ``data.path`` names.

The file stays in the format it is in (read with the project's own loader,
:func:`cryptosweep.trading.data.load_ohlcv`): a Binance kline CSV, plain or ``.gz``, with the
header ``open_time,open,high,low,close,volume[,close_time]`` (the bundled sample's) or without a
header (6 or 7 columns); times in ms (or µs, as the file has them), ``close_time`` as Binance
writes it (open time + interval - 1 unit), numbers in the file's own style (the shortest text
that reads back to the same float, or the fixed decimals its last row uses), its line endings.

Every new candle is checked against what is stored before anything is written; each refusal is
one :class:`~cryptosweep.core.errors.DataError` line (exit 2) and leaves the file as it was:

* the file's bar interval is not the one asked for (a bar of another interval), or a new bar is
  off the stored bars' time grid;
* an overlapping candle (the update re-reads the last stored bar) disagrees with the stored one
  (any of open, high, low, close, volume: exact float comparison, the text of both sides being
  Binance's decimals), or a non-empty answer leaves that bar out (nothing could be compared:
  another exchange, mirror or symbol);
* a new bar's open, high, low or close beyond a factor ``1 + max_jump`` of the close before
  it, either way (another market behind a correct re-read bar, a broken feed);
* a gap: the first new bar is not the one right after the stored last bar, or new bars skip
  one (``allow_gaps=True`` accepts gaps the exchange itself has, e.g. maintenance hours);
* a candle that is not closed at ``now`` (:func:`append_candles`; the fetch drops those; a
  given ``now`` later than this machine's clock is taken as that clock).

Before any of these, the fetch refuses an answer of another interval than the one asked for,
``allow_gaps`` or not (:func:`~cryptosweep.marketdata.exchange.fetch_closed_candles`:
:class:`~cryptosweep.core.errors.InfrastructureError`, exit 6): a 4h candle answered for 1h
is never stored as an hourly bar, let alone while it still forms.

The write is atomic (:func:`cryptosweep.core.files.atomic_path`: a temporary sibling, fsync, rename,
folder fsync) after the temporary file was read back with the loader and found equal to the
stored bars plus the new ones. A ``.gz`` file gets the new rows as one more gzip member (RFC
1952 allows several; gzip, zcat and pandas read them as one stream), so every byte already
stored stays as it was; a plain file gets them appended. An exclusive ``flock`` on a sibling
``.<name>.lock`` keeps two updates of one file apart (the second is refused, exit 2), and the
file is checked unchanged (SHA-256) just before the rename. A symbolic link is followed: the file
it points to is updated, the link kept. On ANY failure (refusal, network,
disk, interruption) the file is byte-identical to before and no temporary file is left (a
process killed outright leaves one: the next update of the file removes it, holding the lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import logging
import os
import re
import stat
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptosweep.core.data_settings import (
    DEFAULT_LIMIT,
    DEFAULT_MAX_BARS,
    DEFAULT_MAX_JUMP,
    DEFAULT_RETRIES,
    DEFAULT_SETTLE_BARS,
    DEFAULT_TIMEOUT_S,
    MAX_SETTLE_BARS,
)
from cryptosweep.core.errors import ConfigError, DataError, InfrastructureError
from cryptosweep.core.files import atomic_path, unwritable
from cryptosweep.core.intervals import detect_interval, format_interval
from cryptosweep.marketdata.exchange import (
    DEFAULT_RETRY_WAIT_S,
    check_exchange_id,
    check_interval,
    fetch_closed_candles,
)
from cryptosweep.trading.candle_formats import KLINE_COLUMNS, OHLCV_COLUMNS
from cryptosweep.trading.data import DuplicateRowsWarning, load_ohlcv, sample_data_path

log = logging.getLogger(__name__)

_US_MIN = 10**14  # an open_time this large is in µs (Binance's spot files since 2025)


@dataclass(frozen=True)
class UpdateSummary:
    """What an update did. ``bars_added`` new bars from ``first_new`` to ``last_new`` (both
    ``None`` when none), ``last_bar`` the file's last bar afterwards, ``dropped_unclosed`` the
    candles left for later because they close after ``now``, ``settling`` the closed ones left
    for later because they closed less than ``settle_bars`` bars before it, ``complete`` False when
    ``max_bars`` stopped the update early (run it again), ``requests`` candle requests made,
    ``warnings`` what must be shown loudly, each also in the summary's line: the exchange's
    clock far from this machine's (see :mod:`cryptosweep.marketdata.exchange`), an empty
    answer, candles stopping two or more closed bars before ``now`` (no new bar at all, or an
    exchange that stopped answering part-way: a stale source), a stored last bar closing after
    ``now`` (the file's times ahead), gaps appended across with ``allow_gaps``."""

    path: Path
    interval: str
    bars_added: int
    first_new: pd.Timestamp | None
    last_new: pd.Timestamp | None
    last_bar: pd.Timestamp
    now: pd.Timestamp
    exchange: str | None = None
    symbol: str | None = None
    dropped_unclosed: int = 0
    settling: int = 0
    complete: bool = True
    requests: int = 0
    warnings: tuple[str, ...] = ()

    def __str__(self) -> str:
        source = f"{self.symbol} {self.interval} from {self.exchange}" if self.exchange else (
            f"{self.interval} candles")
        if not self.bars_added:
            text = f"{self.path}: no new closed {source} (last bar {self.last_bar.isoformat()})"
        else:
            assert self.first_new is not None and self.last_new is not None
            text = (f"{self.path}: appended {self.bars_added} {source}, "
                    f"{self.first_new.isoformat()} to {self.last_new.isoformat()}")
        if self.settling:
            text += f"; {self.settling} closed candle(s) left to settle (settle_bars)"
        if not self.complete:
            text += "; more closed candles are waiting (max_bars reached): run the update again"
        for warning in self.warnings:
            text += f"; WARNING: {warning}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO 8601 strings), for logs and the nightly's status."""
        def iso(t: pd.Timestamp | None) -> str | None:
            return None if t is None else t.isoformat()

        return {
            "path": str(self.path), "exchange": self.exchange, "symbol": self.symbol,
            "interval": self.interval, "bars_added": self.bars_added,
            "first_new": iso(self.first_new), "last_new": iso(self.last_new),
            "last_bar": iso(self.last_bar), "now": iso(self.now),
            "dropped_unclosed": self.dropped_unclosed, "settling": self.settling,
            "complete": self.complete,
            "requests": self.requests, "warnings": list(self.warnings),
        }  # fmt: skip


def update_configured(config: Any, *, now: pd.Timestamp | str | int | None = None,
                      environ: Mapping[str, str] | None = None) -> UpdateSummary:
    """:func:`update_candles` as a config's ``data.update`` section says, on its ``data.path``
    (``cryptosweep data update --config CONFIG``, and the nightly before its sweep). A config
    without the section or without a ``data.path`` is a :class:`ConfigError` (exit 2)."""
    settings = config.data.update
    if settings is None:
        raise ConfigError("data.update: the config has no data.update section (exchange, symbol, "
                          "interval); see docs/data_update.md")
    return update_candles(_path_to_update(config), now=now, **settings.call_kwargs(environ))


def check_update_settings(config: Any, environ: Mapping[str, str] | None = None) -> None:
    """What :func:`update_configured` needs, checked without a request or a write (the
    nightly's ``--check``, and the night before it creates anything): a ``data.update``
    section (else nothing to check) with a ``data.path``, the base URL the variable
    ``base_url_env`` names, an exchange id ccxt knows, a fixed interval, a file an update can
    append to holding bars of that interval. A :class:`ConfigError` or :class:`DataError`
    (exit 2) naming what is wrong; :class:`InfrastructureError` for a read-only file system."""
    settings = config.data.update
    if settings is None:
        return
    path = _followed(Path(_path_to_update(config)))
    settings.resolved_base_url(environ)
    check_exchange_id(settings.exchange)
    check_interval(settings.interval)
    _check_updatable(path)
    _Stored.read(path, settings.interval)


def _path_to_update(config: Any) -> str:
    """The config's ``data.path``; a :class:`ConfigError` without one (the bundled sample)."""
    if config.data.path is None:
        raise ConfigError("data.update needs data.path: the bundled sample is never updated; "
                          "copy it and point data.path at the copy")
    return str(config.data.path)


def update_candles(
    path: str | os.PathLike[str],
    exchange: str,
    symbol: str,
    interval: str,
    *,
    now: pd.Timestamp | str | int | None = None,
    base_url: str | None = None,
    limit: int = DEFAULT_LIMIT,
    max_bars: int | None = DEFAULT_MAX_BARS,
    allow_gaps: bool = False,
    max_jump: float = DEFAULT_MAX_JUMP,
    settle_bars: int = DEFAULT_SETTLE_BARS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
    retry_wait_s: float = DEFAULT_RETRY_WAIT_S,
) -> UpdateSummary:
    """Append to the candle file ``path`` the closed ``interval`` candles of ``symbol`` on
    ``exchange`` (a ccxt id) that come after its last bar (see the module docstring).

    ``now``: closed means closing at or before it (default: the earlier of this machine's
    clock and the exchange's). ``base_url``: another host for the exchange's REST API (a
    mirror, a test server). ``limit``: candles a request; ``max_bars``: the most appended in
    one call (``None``: no cap). ``settle_bars``: closed candles younger than this many bar
    intervals at ``now`` are left for a later update (an exchange that revises a candle after
    its close: each is stored once, settled; the stored last bar, re-read, then agrees).
    ``timeout_s``, ``retries``, ``retry_wait_s``: per request, see
    :func:`~cryptosweep.marketdata.exchange.fetch_closed_candles`.

    Raises :class:`~cryptosweep.core.errors.ConfigError` (exit 2) for an exchange, symbol or
    interval the exchange does not know, :class:`~cryptosweep.core.errors.DataError` (exit 2)
    for a file that cannot be updated or candles that do not fit it,
    :class:`~cryptosweep.core.errors.InfrastructureError` (exit 6) for the exchange or the disk
    failing. The file is untouched by any failure and by an update that finds nothing new.
    """
    path = _followed(Path(path))
    check_exchange_id(exchange)
    check_interval(interval)
    if (isinstance(settle_bars, bool) or not isinstance(settle_bars, int)
            or not 0 <= settle_bars <= MAX_SETTLE_BARS):
        raise ConfigError(f"settle_bars must be a whole number of bars from 0 to "
                          f"{MAX_SETTLE_BARS}, got {settle_bars!r}")
    if max_bars is not None and (isinstance(max_bars, bool) or not isinstance(max_bars, int)
                                 or max_bars < 1):
        raise ConfigError(f"max_bars must be a positive number of candles, got {max_bars!r}")
    _check_updatable(path)
    with _update_lock(path):
        _remove_stale_temporaries(path)
        stored = _Stored.read(path, interval)
        # From the stored last bar on: that bar comes back and is checked against the file
        # (one more than max_bars, then).
        fetched = fetch_closed_candles(
            exchange, symbol, interval, stored.last_bar, now=now, base_url=base_url,
            limit=limit, max_bars=None if max_bars is None else max_bars + 1,
            timeout_s=timeout_s, retries=retries, retry_wait_s=retry_wait_s,
        )  # fmt: skip
        settled_by = fetched.now - settle_bars * stored.step
        settled = fetched.candles[fetched.candles.index + stored.step <= settled_by]
        summary = _append(stored, settled, settled_by, allow_gaps=allow_gaps,
                          max_jump=max_jump, reread_last_bar=True)
    silent = _silent_source_warning(stored, fetched.candles, settled_by, fetched.requests,
                                    summary.last_bar, fetched.complete)
    summary = _with(summary, exchange=exchange, symbol=symbol, now=fetched.now,
                    dropped_unclosed=len(fetched.dropped),
                    settling=len(fetched.candles) - len(settled), complete=fetched.complete,
                    requests=fetched.requests,
                    warnings=(*fetched.warnings, *summary.warnings,
                              *filter(None, [silent, _ahead_warning(stored, fetched.now)])))
    log.log(logging.WARNING if summary.warnings else logging.INFO, "%s", summary)
    return summary


def append_candles(
    path: str | os.PathLike[str],
    candles: pd.DataFrame,
    interval: str,
    *,
    now: pd.Timestamp | str | int | None = None,
    allow_gaps: bool = False,
    max_jump: float = DEFAULT_MAX_JUMP,
) -> UpdateSummary:
    """Append ``candles`` (a frame as ``load_ohlcv`` gives: a UTC ``open_time`` index, float
    ``open, high, low, close, volume``) to the candle file ``path``, with every check and
    guarantee of :func:`update_candles`; candles the file already holds must equal the stored
    ones and are not written again. ``now`` (default, and at the latest: this machine's
    clock): a candle closing after it is refused."""
    path = _followed(Path(path))
    check_interval(interval)
    _check_updatable(path)
    local = pd.Timestamp.now(tz="UTC")
    stamp = local if now is None else min(_utc(now, "now"), local)
    with _update_lock(path):
        _remove_stale_temporaries(path)
        stored = _Stored.read(path, interval)
        summary = _append(stored, _checked_frame(candles), stamp, allow_gaps=allow_gaps,
                          max_jump=max_jump)
    for warning in summary.warnings:
        log.warning("%s: %s", path, warning)
    return summary


# --------------------------------------------------------------------------- the stored file


@dataclass(frozen=True)
class _Layout:
    """How the file writes a row: header or not, 6 or 7 columns, time unit, number style,
    line ending, whether its text ends with a line ending, gzip or not."""

    gzip: bool
    columns: int
    unit_ns: int  # 10**6 for ms, 10**3 for µs
    decimals: tuple[int | None, ...]  # per OHLCV column: fixed decimals, or None (shortest)
    newline: str
    ends_with_newline: bool


@dataclass(frozen=True)
class _Stored:
    path: Path
    interval: str
    step: pd.Timedelta
    frame: pd.DataFrame
    layout: _Layout
    raw: bytes  # the file's bytes as read (compressed for .gz)
    digest: str
    mode: int

    @property
    def last_bar(self) -> pd.Timestamp:
        return self.frame.index[-1]

    @classmethod
    def read(cls, path: Path, interval: str) -> _Stored:
        step = check_interval(interval)
        raw = path.read_bytes()
        layout = _layout(path, raw)
        frame = load_ohlcv(path, format="binance")
        if path.read_bytes() != raw:
            raise DataError(f"{path}: changed while it was read; try again")
        detected = detect_interval(frame.index, path)
        if detected is not None and detected != step:
            raise DataError(
                f"{path}: holds {format_interval(detected)} bars, not {interval}: an update "
                f"would append bars of another interval (set the update's interval to "
                f"{format_interval(detected)}, or use another file)"
            )
        return cls(path=path, interval=interval, step=step, frame=frame, layout=layout,
                   raw=raw, digest=hashlib.sha256(raw).hexdigest(),
                   mode=stat.S_IMODE(os.stat(path).st_mode))


def _followed(path: Path) -> Path:
    """The file a symbolic link ``path`` points to (``path`` itself when it is none): the
    update writes that file, next to it, and locks it; renaming the new file over the link
    made the link a file of its own and left the file it pointed to without the new bars."""
    if not path.is_symlink():
        return path
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a loop of links: "no such file", as a dangling one
        return path


def _check_updatable(path: Path) -> None:
    if path.exists() and path.resolve() == sample_data_path().resolve():
        raise DataError(f"{path}: the bundled sample is part of the package and is never "
                        "updated; copy it and set data.path to the copy")
    if not path.exists():
        raise DataError(f"{path}: no such file (an update appends to an existing candle file "
                        "holding at least one bar)")
    if not path.is_file():
        raise DataError(f"{path}: not a file; an update appends to one candle file (a folder "
                        "of files is read, never updated)")
    name = path.name.lower()
    if name.endswith((".zip", ".parquet", ".bz2", ".xz")):
        raise DataError(f"{path}: cannot append to a {name.rsplit('.', 1)[1]} file; an update "
                        "writes a Binance kline CSV, plain or .gz")
    for target in (path, path.parent):
        why = unwritable(target)
        if why == "read-only file system":
            raise InfrastructureError(f"{target}: cannot update {path.name}: {why}")
        if why is not None:
            raise DataError(f"{target}: cannot update {path.name}: {why}")


def _text_of(path: Path, raw: bytes) -> str:
    try:
        data = gzip.decompress(raw) if path.name.lower().endswith(".gz") else raw
        return data.decode("utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read as a kline CSV "
                        f"({' '.join(str(exc).split()) or type(exc).__name__})") from None


def _layout(path: Path, raw: bytes) -> _Layout:
    text = _text_of(path, raw)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path}: empty file")
    first = [c.strip().lower() for c in lines[0].split(",")]
    header = not _is_number(first[0])
    if header:
        if tuple(first) not in (KLINE_COLUMNS[:6], KLINE_COLUMNS[:7]):
            raise DataError(
                f"{path}: header {','.join(first)!r}: an update writes the columns "
                f"{','.join(KLINE_COLUMNS[:7])} (or the first six), as the bundled sample has"
            )
        columns = len(first)
        if len(lines) < 2:
            raise DataError(f"{path}: empty file (a header but no data rows)")
    last = [c.strip() for c in lines[-1].split(",")]
    if not header:
        columns = len(last)
        if columns not in (6, 7):
            raise DataError(
                f"{path}: rows of {columns} columns; an update writes headerless rows of 6 or 7 "
                f"({','.join(KLINE_COLUMNS[:7])}), not Binance's full 12-column export"
            )
    if len(last) != columns:
        raise DataError(f"{path}: its last row has {len(last)} columns, not {columns}")
    try:
        unit_ns = 1_000 if float(last[0]) >= _US_MIN else 1_000_000
    except ValueError:
        raise DataError(f"{path}: last row's open_time {last[0]!r} is not a number") from None
    decimals = tuple(_decimals_of(cell) for cell in last[1:6])
    newline = "\r\n" if "\r\n" in text[: text.find("\n") + 1 or len(text)] else "\n"
    return _Layout(gzip=path.name.lower().endswith(".gz"), columns=columns, unit_ns=unit_ns,
                   decimals=decimals, newline=newline, ends_with_newline=text.endswith("\n"))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _decimals_of(cell: str) -> int | None:
    """Fixed decimals where the cell shows trailing zeros (``43820.01000000``: 8), else None
    (the shortest text, as the bundled sample writes: ``44059``, ``993.1198``)."""
    if "." in cell and cell.endswith("0") and "e" not in cell.lower():
        return len(cell.split(".", 1)[1])
    return None


# --------------------------------------------------------------------------- appending


def _append(stored: _Stored, candles: pd.DataFrame, now: pd.Timestamp, *,
            allow_gaps: bool, max_jump: float = DEFAULT_MAX_JUMP,
            reread_last_bar: bool = False) -> UpdateSummary:
    """Write the new bars of ``candles`` (``reread_last_bar``: ``candles`` were fetched from
    the stored last bar on, so a non-empty one must start with it)."""
    new = _new_bars(stored, candles, now, allow_gaps=allow_gaps, reread_last_bar=reread_last_bar)
    _check_jumps(stored, new, max_jump)
    if new.empty:
        return UpdateSummary(path=stored.path, interval=stored.interval, bars_added=0,
                             first_new=None, last_new=None, last_bar=stored.last_bar, now=now)
    text = _rows_text(new, stored)
    _write(stored, text, new)
    gaps = _gap_warning(stored, new)
    return UpdateSummary(path=stored.path, interval=stored.interval, bars_added=len(new),
                         first_new=new.index[0], last_new=new.index[-1],
                         last_bar=new.index[-1], now=now,
                         warnings=() if gaps is None else (gaps,))


def _check_jumps(stored: _Stored, new: pd.DataFrame, max_jump: float) -> None:
    """Every price of each new bar within a factor ``1 + max_jump`` of the close before it
    (the stored last close for the first), else a :class:`DataError` naming the bar: prices a
    thousand times the stored ones (another market behind a correct re-read bar) or a high of
    1e308 were appended."""
    if new.empty:
        return
    factor = 1.0 + max_jump
    before = np.concatenate([[float(stored.frame["close"].iloc[-1])],
                             new["close"].to_numpy(dtype="float64")[:-1]])
    for column in ("open", "high", "low", "close"):
        ratio = new[column].to_numpy(dtype="float64") / before
        bad = ~((ratio <= factor) & (ratio >= 1.0 / factor))
        if bad.any():
            at = int(np.argmax(bad))
            raise DataError(
                f"{stored.path}: the candle at {new.index[at].isoformat()} has {column} "
                f"{new[column].iloc[at]:.10g}, {ratio[at]:.4g} times the close before it "
                f"({before[at]:.10g}): a move beyond data.update.max_jump {max_jump:g} is "
                "taken for another market or a broken feed; the file is left as it is (if the "
                "move is real, raise data.update.max_jump)"
            )


def _check_last_bar_reread(stored: _Stored, candles: pd.DataFrame) -> None:
    """An answer fetched from the stored last bar on holds that bar first, to be compared with
    the stored one: a non-empty answer leaving it out cannot be checked against the file (an
    exchange, mirror or symbol that is not the file's) and is refused (:class:`DataError`, as
    a disagreeing bar is)."""
    if candles.empty or candles.index[0] == stored.last_bar:
        return
    raise DataError(
        f"{stored.path}: the exchange's answer from the stored last bar "
        f"{stored.last_bar.isoformat()} on starts at {candles.index[0].isoformat()}, without "
        "that bar: the new candles cannot be checked against the stored ones; the file is left "
        "as it is (check the file, the exchange and the symbol)"
    )


def _new_bars(stored: _Stored, candles: pd.DataFrame, now: pd.Timestamp, *,
              allow_gaps: bool, reread_last_bar: bool = False) -> pd.DataFrame:
    """The candles after the stored last bar, every check of the module docstring passed."""
    path, step, frame = stored.path, stored.step, stored.frame
    if candles.empty:
        return candles
    closes = candles.index + step
    late = closes > now
    if late.any():
        at = candles.index[np.argmax(late)]
        raise DataError(
            f"{path}: the candle at {at.isoformat()} closes at {(at + step).isoformat()}, after "
            f"now ({now.isoformat()}): an unclosed candle is never stored"
        )
    last = stored.last_bar
    offsets = (candles.index - last) // pd.Timedelta(1, "ns")
    off_grid = np.asarray(offsets % step.value != 0)
    if off_grid.any():
        at = candles.index[np.argmax(off_grid)]
        raise DataError(
            f"{path}: the candle at {at.isoformat()} is not on the stored bars' {stored.interval} "
            f"grid (last stored bar {last.isoformat()}): a bar of another interval or alignment"
        )
    if reread_last_bar:
        _check_last_bar_reread(stored, candles)
    old = candles[candles.index <= last]
    for stamp, row in old.iterrows():
        if stamp not in frame.index:
            raise DataError(
                f"{path}: the exchange has a candle at {stamp.isoformat()} where the file has "
                "none (a gap inside the stored bars); an update only appends"
            )
        mine = frame.loc[stamp]
        differing = [c for c in OHLCV_COLUMNS if float(row[c]) != float(mine[c])]
        if differing:
            pairs = ", ".join(f"{c} {_number(float(mine[c]))} stored, "
                              f"{_number(float(row[c]))} now" for c in differing)
            raise DataError(
                f"{path}: the exchange's candle at {stamp.isoformat()} disagrees with the stored "
                f"one ({pairs}); the file is left as it is (check the file, the exchange and the "
                "symbol; an exchange that revises candles after their close needs "
                "data.update.settle_bars, and the revised bars removed from the file once)"
            )
    new = candles[candles.index > last]
    if new.empty:
        return new
    times = pd.DatetimeIndex([last]).append(new.index)
    steps = np.diff(times.as_unit("ns").asi8)
    gaps = steps > step.value
    if gaps.any() and not allow_gaps:
        at = int(np.argmax(gaps))
        missing = int(steps[at] // step.value) - 1
        where = ("between the stored last bar" if at == 0 else "between new bars")
        raise DataError(
            f"{path}: a gap of {missing} bar(s) {where} {times[at].isoformat()} and "
            f"{times[at + 1].isoformat()}; refusing to append across it (allow_gaps accepts gaps "
            "the exchange itself has)"
        )
    return new


def _gap_warning(stored: _Stored, new: pd.DataFrame) -> str | None:
    """What the summary says of the gaps between the stored last bar and the new bars it
    appends (only ``allow_gaps`` lets them through), or None without any."""
    times = pd.DatetimeIndex([stored.last_bar]).append(new.index)
    steps = np.diff(times.as_unit("ns").asi8)
    gaps = steps > stored.step.value
    if not gaps.any():
        return None
    missing = int((steps[gaps] // stored.step.value - 1).sum())
    at = int(np.argmax(gaps))
    return (f"appended across {int(gaps.sum())} gap(s) the exchange has ({missing} missing "
            f"bar(s) in all), the first between {times[at].isoformat()} and "
            f"{times[at + 1].isoformat()} (allow_gaps)")


def _ahead_warning(stored: _Stored, now: pd.Timestamp) -> str | None:
    """What the summary must say when the stored last bar closes after ``now`` (the clock the
    fetch used): no candle after it can have closed, so none is even asked for, and the update
    would find "no new closed candle" without a word until the clock caught up with the file's
    times (written in another time zone?). None otherwise."""
    closes = stored.last_bar + stored.step
    if closes <= now:
        return None
    return (f"the file's last bar {stored.last_bar.isoformat()} closes at {closes.isoformat()}, "
            f"after now ({now.isoformat()}): no candle after it can have closed, so none is "
            "fetched; are the file's times ahead (another time zone?), or did this machine's "
            "clock go back?")


def _silent_source_warning(stored: _Stored, candles: pd.DataFrame, now: pd.Timestamp,
                           requests: int, last_bar: pd.Timestamp, complete: bool) -> str | None:
    """What the summary must say when the exchange gave less than it should have: no closed
    candle (not even the stored last bar, which an answer from it on holds first), or candles
    that stop two or more closed bars before ``now`` (``last_bar``: the file's last bar after
    the update) though ``max_bars`` did not stop the paging: a stale exchange or mirror,
    which would otherwise find "no new closed candles" every night without a word, or an
    empty page in the middle of the range, which ends the paging where it is. None
    otherwise."""
    last = stored.last_bar
    if requests and candles.empty:
        return (f"the exchange answered no closed candle from the stored last bar "
                f"{last.isoformat()} on, not even that bar: check the symbol, base_url and the "
                "exchange")
    closed_since = (now - (last_bar + stored.step)) // stored.step
    if not complete or closed_since < 2:
        return None
    if last_bar == last:
        return (f"no new closed candle, though {closed_since} bars have closed since the stored "
                f"last bar {last.isoformat()} (now {now.isoformat()}): a stale exchange or "
                "mirror? check base_url and the exchange's status")
    return (f"the exchange's candles stop at {last_bar.isoformat()}, though {closed_since} more "
            f"bars have closed since (now {now.isoformat()}): it answered no candle after that "
            "one (a stale exchange or mirror? check base_url and the exchange's status; the "
            "next update continues from there)")


def _checked_frame(candles: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(candles, pd.DataFrame) or not isinstance(candles.index, pd.DatetimeIndex):
        raise DataError("candles: expected a frame with a DatetimeIndex, as load_ohlcv gives")
    missing = [c for c in OHLCV_COLUMNS if c not in candles.columns]
    if missing:
        raise DataError(f"candles: missing column(s) {', '.join(missing)}")
    index = candles.index
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    frame = pd.DataFrame(candles[list(OHLCV_COLUMNS)].to_numpy(dtype="float64"),
                         index=index.as_unit("ns").rename("open_time"),
                         columns=list(OHLCV_COLUMNS))
    if not frame.index.is_monotonic_increasing or not frame.index.is_unique:
        raise DataError("candles: open times must be ascending and unique")
    values = frame.to_numpy()
    if not np.isfinite(values).all() or (values[:, :4] <= 0).any() or (values[:, 4] < 0).any():
        raise DataError("candles: prices must be finite and positive, volumes finite, >= 0")
    return frame


def _rows_text(new: pd.DataFrame, stored: _Stored) -> str:
    layout, step = stored.layout, stored.step
    per_unit = layout.unit_ns
    step_units = step.value // per_unit
    rows = []
    for stamp, values in zip(new.index.as_unit("ns").asi8, new.to_numpy(), strict=True):
        open_units = int(stamp) // per_unit
        cells = [str(open_units)]
        cells += [_number(float(v), d) for v, d in zip(values, layout.decimals, strict=True)]
        if layout.columns == 7:
            cells.append(str(open_units + step_units - 1))
        rows.append(",".join(cells))
    lead = "" if layout.ends_with_newline else layout.newline
    return lead + layout.newline.join(rows) + layout.newline


def _number(value: float, decimals: int | None = None) -> str:
    """The text of a price or volume: ``decimals`` fixed places where that reads back to the
    same float, else the shortest text that does (no exponent)."""
    if decimals is not None:
        text = f"{value:.{decimals}f}"
        if float(text) == value:
            return text
    return np.format_float_positional(value, trim="-")


def _write(stored: _Stored, text: str, new: pd.DataFrame) -> None:
    path = stored.path
    data = text.encode("utf-8")
    addition = gzip.compress(data, mtime=0) if stored.layout.gzip else data
    try:
        with atomic_path(path, mode=stored.mode) as tmp:
            with open(tmp, "wb") as out:
                out.write(stored.raw)
                out.write(addition)
            _verify(stored, tmp, new)
            if _digest(path) != stored.digest:
                raise DataError(f"{path}: changed by something else during the update; left as "
                                "that left it, try again")
    except OSError as exc:
        raise InfrastructureError(
            f"{path}: writing the update failed, the file is unchanged: "
            f"{exc.strerror or type(exc).__name__}"
        ) from None


def _verify(stored: _Stored, tmp: Path, new: pd.DataFrame) -> None:
    """The temporary file, read back with the loader, is the stored bars plus the new ones."""
    try:
        with _quiet_loader():
            back = load_ohlcv(tmp, format="binance")
    except DataError as exc:
        message = str(exc).replace(str(tmp), str(stored.path))
        raise DataError(f"{stored.path}: the updated file would not load, left unchanged "
                        f"({message})") from None
    expected = pd.concat([stored.frame, new])
    if not (back.index.equals(expected.index)
            and np.array_equal(back.to_numpy(), expected.to_numpy())):
        raise DataError(f"{stored.path}: the updated file does not read back as the stored "
                        "bars plus the new ones; left unchanged")


@contextlib.contextmanager
def _quiet_loader() -> Iterator[None]:
    """While the temporary file is read back: the loader's words about it (its gaps and
    duplicate rows, under a temporary name nobody will find) are not said. Reading the stored
    file said them of the stored bars, and the update says what it adds (a gap it appends
    across with ``allow_gaps``; it never writes a duplicate)."""
    loader = logging.getLogger(load_ohlcv.__module__)
    disabled = loader.disabled
    loader.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DuplicateRowsWarning)
            yield
    finally:
        loader.disabled = disabled


def _digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@contextlib.contextmanager
def _update_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``.<name>.lock`` next to the file, held for the update."""
    lock = path.with_name(f".{path.name}.lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise InfrastructureError(f"{lock}: cannot open the update lock: "
                                  f"{exc.strerror or type(exc).__name__}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataError(f"{path}: another update of this file is running (lock {lock}); "
                            "wait for it to finish") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _remove_stale_temporaries(path: Path) -> None:
    """Remove the temporary files an update of ``path`` killed mid-write left next to it
    (SIGKILL, power loss: no ``finally`` ran), called holding the update lock: only files
    named exactly as :func:`cryptosweep.core.files.atomic_path` names ``path``'s
    (``.<name>.<pid>-<12 hex digits>.tmp<suffix>``), plain files, whose process is gone."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)-[0-9a-f]{{12}}\.tmp"
                         rf"{re.escape(path.suffix)}")
    for entry in path.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if match is None or not entry.is_file() or entry.is_symlink():
            continue
        if _process_alive(int(match.group(1))):
            continue
        with contextlib.suppress(FileNotFoundError):
            entry.unlink()
            log.info("%s: removed %s, left by an update that was killed mid-write", path,
                     entry.name)


def _process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user's included)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # none, or a number no pid can be
        return False
    except PermissionError:  # another user's
        return True
    return True


# --------------------------------------------------------------------------- small helpers


def _utc(value: pd.Timestamp | str | int, name: str) -> pd.Timestamp:
    if isinstance(value, bool):
        raise DataError(f"{name}: expected a time, got {value!r}")
    try:
        stamp = (pd.Timestamp(int(value), unit="ms") if isinstance(value, int | np.integer)
                 else pd.Timestamp(value))
    except (TypeError, ValueError):
        raise DataError(f"{name}: not a time: {value!r}") from None
    if pd.isna(stamp):
        raise DataError(f"{name}: not a time: {value!r}")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _with(summary: UpdateSummary, **changes: Any) -> UpdateSummary:
    return replace(summary, **changes)
