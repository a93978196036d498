"""How numbers and parameters are written for people: one set of rounding rules for the
report, the text report, the index and the verdict. Full precision stays in the JSON files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: Written where a value is missing.
MISSING = "–"
#: Significant digits of a parameter value (0.023436176 → 0.0234).
PARAM_DIGITS = 3


#: How each score metric is named in a sentence.
METRIC_NAMES = {"sharpe": "Sharpe", "sortino": "Sortino", "calmar": "Calmar",
                "total_return": "total return"}


def metric_name(metric: str) -> str:
    """``sharpe`` → ``Sharpe``; an unknown metric as it is."""
    return METRIC_NAMES.get(metric, metric)


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def signed(value: Any, places: int = 2) -> str:
    """A score with its sign: ``-3.08``, ``+0.75`` (a true minus sign is not used, so the text
    stays ASCII-searchable)."""
    number = _finite(value)
    return MISSING if number is None else f"{number:+.{places}f}"


def share(value: Any, places: int = 2) -> str:
    """A probability or fraction as a plain decimal: DSR ``0.03``, PBO ``0.63``."""
    number = _finite(value)
    return MISSING if number is None else f"{number:.{places}f}"


def against(value: float, threshold: float, places: int = 2, sign: bool = False) -> str:
    """``value`` beside the ``threshold`` it is compared with: ``places`` decimals, more (up to
    6) where those would show a value that differs from the threshold as equal to it. A PBO
    of 0.50179 refused by a maximum of 0.5 read "PBO 0.50 > 0.5"; it reads "PBO 0.502 > 0.5"."""
    for digits in range(places, 7):
        text = f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"
        if value == threshold or float(text) != threshold:
            return text
    return text


def percent(value: Any, places: int = 1) -> str:
    """A fraction as a percentage: ``0.1234`` → ``12.3%``."""
    number = _finite(value)
    return MISSING if number is None else f"{100 * number:.{places}f}%"


def count(value: Any) -> str:
    """A whole number, or the missing mark."""
    number = _finite(value)
    return MISSING if number is None else str(int(number))


def param_value(value: Any, digits: int = PARAM_DIGITS) -> str:
    """A parameter value rounded for reading: integers and strings as they are, floats to
    ``digits`` significant digits (``0.00163``, ``0.511``, ``1235``), tiny ones in scientific
    notation (``3.2e-05``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    if abs(value) >= 10 ** digits:
        return f"{value:.0f}"
    if abs(value) < 1e-4:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def param_lines(params: Mapping[str, Any]) -> list[str]:
    """``name = value`` for each parameter, sorted by name, values by :func:`param_value`."""
    return [f"{name} = {param_value(params[name])}" for name in sorted(params)]


def wall_time(run: Mapping[str, Any]) -> str | None:
    """A results file's ``run`` block's wall time in words: from creation to the end, and for
    a resumed run how often it was resumed and its last session's own seconds (the pauses
    between sessions are in the first figure, not work); ``None`` without one."""
    wall = _finite(run.get("wall_time_s"))
    if wall is None:
        return None
    resumed = run.get("resumed_at") or []
    session = _finite(run.get("session_s"))
    if not resumed or session is None:
        return f"{wall:.1f} s"
    times = "1 time" if len(resumed) == 1 else f"{len(resumed)} times"
    return (f"{wall:.1f} s from creation to the end, pauses included (resumed {times}; the last "
            f"session {session:.1f} s)")
