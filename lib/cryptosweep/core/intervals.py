"""The bar interval of a series of candles, and what it annualises to (a leaf: the config
validates ``data.bar_interval`` with it, the loader and the objective detect it).

Every annualised figure (Sharpe, Sortino, Calmar's yearly return, turnover) needs the number of
bars in a year, and that depends on the candles: crypto trades around the clock, every day of
the year, so hourly bars make ``365 * 24 = 8760`` a year, daily bars 365, one-minute bars
525,600. The interval is detected from the data (the most common step between consecutive open
times); a series whose steps are not whole multiples of it (hourly and daily candles mixed, or
irregular stamps) cannot be annualised and is refused, and so is one whose common step is not a
whole number of seconds (epoch seconds read as milliseconds: hourly bars 3.6 s apart in 1970).
Longer steps are gaps, reported by the loader and never filled.

A market that closes at weekends (FX trades about 24 hours on 5 days; a stock exchange a few
hours on weekdays) has fewer bars in a year: annualising its hourly bars with 8760 would lift
its Sharpe ratios by about sqrt(8760 / 6240) = 1.18. :func:`bars_per_year` tells the two apart
by the calendar, not by gaps (an outage of a crypto exchange is a gap, not a closed market):
candles with (almost) no bar in 24 hours of every week (a Saturday in UTC) over at least
:data:`CALENDAR_MIN_SPAN` are a market closed at weekends, annualised with their own density
(bars per year over the span they cover, holidays included); any other series with the
round-the-clock count.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from cryptosweep.core.errors import DataError

#: Seconds in a year of a market open around the clock every day (365 days; leap days are
#: not counted, as is customary for annualising).
SECONDS_PER_YEAR = 365 * 24 * 3600
#: Units an interval may be written in, largest first.
UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_INTERVAL = re.compile(r"^\s*(\d+)\s*([wdhms])\s*$")


#: The shortest span of candles whose calendar (closed at weekends or not) is read from them;
#: shorter series are annualised as a market open around the clock.
CALENDAR_MIN_SPAN = pd.Timedelta(days=28)
#: Consecutive steps of one larger multiple of the interval read as a stretch of coarser
#: candles, not gaps (an outage is one long step; a market's nights or weekends one each):
#: hourly candles followed by daily ones were read as hourly with a hundred one-day gaps, the
#: daily returns annualised with sqrt(8760). A day of hourly steps: a thin market's feed
#: missing every other bar for some hours stays a series with gaps.
COARSE_RUN = 24
#: Below this share of bars in the week's quietest 24 hours (a Saturday, UTC) the market is
#: closed at weekends (a market open around the clock has 1/7 of its bars there, outages or not).
WEEKEND_CLOSED_SHARE = 0.01


def parse_interval(text: str) -> pd.Timedelta:
    """``"1h"``, ``"15m"``, ``"4h"``, ``"1d"``, ``"1w"``, ``"30s"`` → a ``pd.Timedelta``.
    Raises ``ValueError`` for anything else (minutes are ``m``, months are not an interval)."""
    match = _INTERVAL.match(str(text))
    if not match or int(match[1]) == 0:
        raise ValueError(f"expected a bar interval like 1m, 15m, 1h, 4h or 1d, got {text!r}")
    return pd.Timedelta(int(match[1]) * UNIT_SECONDS[match[2]], unit="s")


def format_interval(interval: pd.Timedelta) -> str:
    """The shortest text :func:`parse_interval` reads back: ``1h``, ``15m``, ``1d``; a span
    that is not a whole number of seconds (no bar interval) in seconds: ``3.6s``."""
    if interval % pd.Timedelta(seconds=1) != pd.Timedelta(0):  # 3.6 s was "3s", 3.6 ms "0w"
        return f"{interval.total_seconds():g}s"
    seconds = int(interval.total_seconds())
    for unit, size in UNIT_SECONDS.items():
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise ValueError(f"{interval} is not a whole number of seconds")


def periods_per_year(interval: pd.Timedelta) -> float:
    """Bars of ``interval`` in a year of round-the-clock trading (8760 for hourly bars)."""
    seconds = interval.total_seconds()
    if not seconds > 0:
        raise ValueError(f"a bar interval must be positive, got {interval}")
    return SECONDS_PER_YEAR / seconds


def closed_at_weekends(index: pd.DatetimeIndex, interval: pd.Timedelta) -> bool:
    """Whether candles at ``index`` (sorted; UTC, or without a zone: UTC) of ``interval`` are
    a market closed at weekends: bars of an interval that divides a day (others can step over
    Saturdays by their own rhythm), spanning at least :data:`CALENDAR_MIN_SPAN`, fewer than
    :data:`WEEKEND_CLOSED_SHARE` of them opening in the week's quietest 24 hours (a Saturday
    in UTC; from a Saturday morning for FX candles stamped at Tokyo's time without an
    offset), and open on most
    weekdays (bars on at least half of the weekdays the candles span: a round-the-clock
    market's few weekday chunks over a long span are gaps, not a calendar), however few hours
    a day (a stock exchange's session of 7 hours)."""
    day = pd.Timedelta(days=1)
    if len(index) < 2 or interval > day or day % interval != pd.Timedelta(0):
        return False
    span = index[-1] - index[0] + interval
    if span < CALENDAR_MIN_SPAN:
        return False
    utc = _utc(index)
    weekday = utc.day_of_week.to_numpy()
    if _quietest_day(utc)[1] / len(index) >= WEEKEND_CLOSED_SHARE:
        return False
    weekdays = np.busday_count(utc[0].date(), (utc[-1] + interval).date())
    trading_days = pd.unique(utc[weekday < 5].normalize())
    return len(trading_days) >= 0.5 * weekdays


def bars_per_year(index: pd.DatetimeIndex, interval: pd.Timedelta) -> float:
    """The bars per year every annualised figure of candles at ``index`` uses: for a market
    closed at weekends (:func:`closed_at_weekends`) their own density, the bars of the whole
    weeks they span (weeks cut in the middle of the week's quietest 24 hours: whatever zone
    the stamps are in, between two trading weeks) per week, times the weeks of a 365-day year
    (holidays included); else :func:`periods_per_year`, the round-the-clock count (8760 for
    hourly bars, gaps or not). Whole weeks, not the time from the first open to the last
    close: candles from a Monday to a Friday leave out the weekends at both ends, 2.4 % more
    bars a year over twelve weeks, 5 % over six."""
    if not closed_at_weekends(index, interval):
        return periods_per_year(interval)
    utc = _utc(index)
    quiet_start = _quietest_day(utc)[0]  # hours after Monday 00:00 (UTC)
    cut = pd.Timestamp("1970-01-05") + pd.Timedelta(hours=quiet_start + 12)  # a Monday, + h
    week = ((utc.tz_localize(None) - cut) // pd.Timedelta(weeks=1)).to_numpy()
    whole = (week > week[0]) & (week < week[-1])  # the weeks before and after: partial
    weeks = int(week[-1] - week[0] - 1)  # CALENDAR_MIN_SPAN (28 days): at least 3
    return float(whole.sum()) / weeks * SECONDS_PER_YEAR / (7 * 86400)


def _utc(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """``index`` in UTC (stamps without a zone are UTC)."""
    return index.tz_convert("UTC") if index.tz is not None else index.tz_localize("UTC")


def _quietest_day(utc: pd.DatetimeIndex) -> tuple[int, int]:
    """The week's quietest 24 hours of bars at ``utc``, whatever hour they start at: (their
    first hour, counted from Monday 00:00 UTC; the bars in them). A Saturday (UTC) only missed
    FX candles stamped at Tokyo's time without an offset (Saturday morning open)."""
    counts = np.bincount(utc.day_of_week.to_numpy() * 24 + utc.hour.to_numpy(),
                         minlength=7 * 24)
    days = np.convolve(np.concatenate([counts, counts[:23]]), np.ones(24, dtype=np.int64), "valid")
    start = int(np.argmin(days))
    return start, int(days[start])


def describe_annualisation(interval: pd.Timedelta, per_year: float) -> str:
    """What candles of ``interval`` annualise with, for people: ``1h bars, 8760 a year``; a
    market closed at weekends (``per_year`` is not the round-the-clock count) says so."""
    count = f"{per_year:.0f}" if per_year >= 100 else f"{per_year:.2f}"
    text = f"{_text(interval)} bars, {count} a year"
    around_the_clock = periods_per_year(interval)
    if not np.isclose(per_year, around_the_clock, rtol=1e-9):
        text += (f" (a market closed at weekends: the candles' own density, not "
                 f"{around_the_clock:.0f})")
    return text


def detect_interval(index: pd.DatetimeIndex, source: object = "data") -> pd.Timedelta | None:
    """The bar interval of a sorted series: the most common step between consecutive bars
    (the smallest of equally common ones); ``None`` with fewer than 2 bars.

    Raises :class:`~cryptosweep.core.errors.DataError` naming ``source`` and the first offending
    bar when a step is not a whole multiple of that interval (intervals mixed, or irregular
    stamps): such a series has no single number of bars per year.
    """
    if len(index) < 2:
        return None
    steps = np.diff(index.as_unit("ns").asi8)
    values, counts = np.unique(steps, return_counts=True)
    interval = int(values[np.argmax(counts)])  # np.unique sorts: ties go to the smallest
    if interval <= 0:
        raise DataError(f"{source}: bars are not in time order")
    if interval % 10**9:  # epoch seconds read as ms, µs or ns: 3.6 s hourly bars in 1970
        raise DataError(
            f"{source}: bars are {interval / 1e9:g}s apart, not a whole number of seconds "
            f"(the first at {index[0].isoformat()}); is data.timestamp_unit the unit of its "
            "timestamps (s, ms, us, ns)?"
        )
    off = np.flatnonzero(steps % interval != 0)
    if len(off):
        at = off[0]
        step = pd.Timedelta(int(steps[at]), unit="ns")
        common = pd.Timedelta(interval, unit="ns")
        hour = 3600 * 10**9
        cause = (  # daily bars at local midnight: 23 or 25 hours apart in UTC
            "an hour off: daylight saving time? candles stamped at a local time move by an "
            "hour in UTC at each change (stamp them in UTC)"
            if interval > hour and int(steps[at]) % interval in (hour, interval - hour)
            else "candles of mixed or irregular intervals cannot be annualised (use one "
            "interval per data set)"
        )
        raise DataError(
            f"{source}: bars are {_text(common)} apart, but {_text(step)} between "
            f"{index[at].isoformat()} and {index[at + 1].isoformat()}; {cause}"
        )
    multiples = steps // interval
    stretch = _coarse_stretch(multiples)
    if stretch is not None:
        at, length = stretch
        common = pd.Timedelta(interval, unit="ns")
        coarse = pd.Timedelta(int(steps[at]), unit="ns")
        raise DataError(
            f"{source}: bars are {_text(common)} apart, but {_text(coarse)} apart for {length} "
            f"bars in a row from {index[at].isoformat()} to {index[at + length].isoformat()}: "
            f"candles of a coarser interval (or a feed that thin) cannot be annualised as "
            f"{_text(common)} bars (use one interval per data set)"
        )
    return pd.Timedelta(interval, unit="ns")


def _coarse_stretch(multiples: np.ndarray) -> tuple[int, int] | None:
    """The first run of at least :data:`COARSE_RUN` consecutive steps of one multiple (above 1)
    of the interval, as (first step, steps), else None."""
    change = np.flatnonzero(np.diff(multiples) != 0) + 1
    starts = np.concatenate(([0], change))
    lengths = np.diff(np.concatenate((starts, [len(multiples)])))
    hits = np.flatnonzero((lengths >= COARSE_RUN) & (multiples[starts] > 1))
    return None if not len(hits) else (int(starts[hits[0]]), int(lengths[hits[0]]))


def _text(interval: pd.Timedelta) -> str:
    try:
        return format_interval(interval)
    except ValueError:
        return str(interval)


def resolve_interval(detected: pd.Timedelta | None, declared: str | None,
                     source: object = "data") -> pd.Timedelta:
    """The interval to annualise with: the detected one, which a declared ``data.bar_interval``
    must agree with; the declared one where the data is too short to tell."""
    stated = parse_interval(declared) if declared is not None else None
    if detected is None:
        if stated is None:
            raise DataError(f"{source}: cannot tell the bar interval from fewer than 2 bars; "
                            "set data.bar_interval")
        return stated
    if stated is not None and stated != detected:
        raise DataError(f"{source}: data.bar_interval is {format_interval(stated)} but the "
                        f"candles are {_text(detected)} apart")
    return detected
