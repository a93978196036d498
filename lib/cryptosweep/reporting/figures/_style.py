"""The look every report figure shares: template, palette, colours by status, number formats."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from plotly.colors import qualitative

TEMPLATE = "plotly_white"


_PALETTE = qualitative.Plotly


_STATUS_COLOURS = {"done": "#2ca02c", "failed": "#d62728", "running": "#ff7f0e",
                   "pending": "#7f7f7f"}


def _color(index: int) -> str:
    return _PALETTE[index % len(_PALETTE)]


def _utc(ts: float) -> dt.datetime:
    """A POSIX timestamp as a naive UTC datetime (what plotly.js date axes understand)."""
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).replace(tzinfo=None)


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _fmt(value: Any, spec: str = ".3f") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)
