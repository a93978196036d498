"""Where each walk-forward window's in-sample and out-of-sample bars lie.

The out-of-sample (OOS) segments are consecutive, of ``out_of_sample_bars`` each, and end at
the last bar of the data: segment ``k`` is ``[N - (W - k) L, N - (W - k - 1) L)`` for ``W``
windows of ``L`` bars in ``N``. Window ``k``'s in-sample (IS) period ends ``embargo_bars``
before its segment starts, and starts at bar 0 (anchored: the IS expands window by window) or
``in_sample_bars`` before its end (rolling). So segments never overlap, never precede their
in-sample data, and no in-sample bar lies within ``embargo_bars`` of the segment it is traded
on — the embargo keeps labels that span several bars from straddling the boundary (AFML
ch. 7.4).

Either ``windows`` is given (the OOS segments cover the last ``W L`` bars) or, without it, as
many windows as fit after a first in-sample period of ``in_sample_bars``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptosweep.core.errors import ConfigError


@dataclass(frozen=True)
class Window:
    """Bar positions (``stop`` excluded) of one walk-forward window on the whole data set."""

    index: int
    is_start: int
    is_stop: int
    oos_start: int
    oos_stop: int

    @property
    def in_sample_bars(self) -> int:
        return self.is_stop - self.is_start

    @property
    def out_of_sample_bars(self) -> int:
        return self.oos_stop - self.oos_start

    def as_dict(self) -> dict[str, Any]:
        return {"window": self.index, "is_start": self.is_start, "is_stop": self.is_stop,
                "oos_start": self.oos_start, "oos_stop": self.oos_stop}


def plan_windows(n_bars: int, out_of_sample_bars: int, *, windows: int | None = None,
                 in_sample_bars: int | None = None, anchored: bool = True,
                 embargo_bars: int = 0) -> list[Window]:
    """The windows over ``n_bars`` bars (see the module docstring); a layout that does not fit
    the data is a :class:`~cryptosweep.core.errors.ConfigError` naming the setting."""
    length, embargo = out_of_sample_bars, embargo_bars
    if length < 1:
        raise ConfigError(f"walk_forward.out_of_sample_bars must be >= 1, got {length}")
    if anchored and windows is not None and in_sample_bars is not None:
        raise ConfigError(
            "walk_forward: anchored windows take in_sample_bars only to count the windows "
            "(the first in-sample period's length); with windows given too, one of the two "
            "would be ignored: set windows or in_sample_bars, not both")
    if not anchored and in_sample_bars is None:
        raise ConfigError("walk_forward.in_sample_bars is required for rolling windows "
                          "(anchored: false): the length of every in-sample period")
    if windows is None:
        if in_sample_bars is None:
            raise ConfigError("walk_forward: set windows (how many) or in_sample_bars (the "
                              "first in-sample period; as many windows as fit follow)")
        windows = (n_bars - in_sample_bars - embargo) // length
        if windows < 1:
            raise ConfigError(
                f"walk_forward: {n_bars} bars hold no window of in_sample_bars={in_sample_bars}"
                f" + embargo_bars={embargo} + out_of_sample_bars={length}")
    first_oos = n_bars - windows * length
    first_is_stop = first_oos - embargo
    needed = in_sample_bars if in_sample_bars is not None else 1
    if first_is_stop < needed:
        raise ConfigError(
            f"walk_forward: {windows} windows of out_of_sample_bars={length} and "
            f"embargo_bars={embargo} leave {max(first_is_stop, 0)} in-sample bars for the first "
            f"window of {n_bars} bars (need {needed}); use fewer or shorter windows")
    out = []
    for k in range(windows):
        oos_start = first_oos + k * length
        is_stop = oos_start - embargo
        is_start = 0 if anchored else is_stop - int(in_sample_bars or 0)
        out.append(Window(k, is_start, is_stop, oos_start, oos_start + length))
    return out


def check_against_labels(windows: list[Window], embargo_bars: int, max_holding: int) -> None:
    """A segment shorter than the longest holding period cannot hold one full trade, and
    without an embargo the last in-sample labels (up to ``max_holding`` bars long) end where
    the segment starts: both are refused."""
    shortest = min(w.out_of_sample_bars for w in windows)
    if shortest < max_holding:
        raise ConfigError(
            f"walk_forward.out_of_sample_bars={shortest} is shorter than the longest holding "
            f"period the search may choose ({max_holding} bars): a segment could not hold one "
            "trade to its time exit")
    if embargo_bars < max_holding and max_holding > 1:
        raise ConfigError(
            f"walk_forward.embargo_bars is {embargo_bars} but labels span up to {max_holding} "
            f"bars: the last in-sample labels would reach into the out-of-sample segment; set "
            f"embargo_bars >= {max_holding}")
