"""What a run records: the journal (``sweep.db``), the results files, the ranking."""

from __future__ import annotations

from cryptosweep.core.lazy import lazy_exports

_EXPORTS = {
    "Journal": "cryptosweep.records.journal",
    "load_run": "cryptosweep.records.results",
    "ranked": "cryptosweep.records.ranking",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
