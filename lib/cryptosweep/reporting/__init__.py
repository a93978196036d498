"""The report: the analysis notebook run into ``report.html``, the index page, offline plotly,
figures, tables, and showing them in a notebook (``figures`` and ``tables`` are its modules)."""

from __future__ import annotations

from cryptosweep.core.lazy import lazy_exports

_EXPORTS = {
    "show": "cryptosweep.reporting.display",
    "render_report": "cryptosweep.reporting.report",
    "write_index": "cryptosweep.reporting.index_page",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
