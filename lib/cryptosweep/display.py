"""Showing figures in a notebook: what the analysis notebook's cells call, so that a figure a
run cannot have (no full-budget evaluation, no GPU, no Hyperband) is a short note on the page
instead of an error."""

from __future__ import annotations

from typing import Any


def show(*figures: Any, missing: str = "not available for this run") -> None:
    """``figure.show()`` for each figure; a line saying what is missing for each ``None``."""
    for figure in figures:
        if figure is None:
            print(f"({missing})")
        else:
            figure.show()
