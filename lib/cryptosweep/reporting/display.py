"""Showing figures and tables in a notebook: what the analysis notebook's cells call, so that a
figure a run cannot have (no full-budget evaluation, no GPU, no Hyperband) is a short note on the
page instead of an error."""

from __future__ import annotations

from typing import Any


def show(*items: Any, missing: str = "not available for this run") -> None:
    """Show each item: a plotly figure (``figure.show()``), an HTML string (as HTML, see
    :mod:`cryptosweep.reporting.tables`), or, for ``None``, a line saying what is missing."""
    for item in items:
        if item is None:
            print(f"({missing})")
        elif isinstance(item, str):
            from IPython.display import HTML, display

            display(HTML(item))
        else:
            item.show()
