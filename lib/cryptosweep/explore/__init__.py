"""Interactive exploration in JupyterLab (``notebooks/explore.ipynb``).

* :mod:`~cryptosweep.explore.runs` — reading run folders, read-only: the runs of a reports
  folder, a run's evaluations as a table, filters, comparing two runs (no widgets);
* :mod:`~cryptosweep.explore.plots` — the explorer's own plotly figures;
* :mod:`~cryptosweep.explore.render` — a figure into an ``ipywidgets.Output``, offline;
* :mod:`~cryptosweep.explore.widgets` — :class:`Explorer`, the widgets and their callbacks;
* :mod:`~cryptosweep.explore.watch` — :func:`watch`, the live view of a running sweep.

::

    from cryptosweep import explore
    ui = explore.Explorer("reports")          # ui.runs_panel, ui.compare_panel, ui.trials_panel
    explore.watch("reports/nightly_20261127_020000")
"""

from __future__ import annotations

from cryptosweep.explore.runs import (
    RunInfo,
    RunReadError,
    TrialFilter,
    compare_runs,
    list_runs,
    read_evaluations,
    trials_table,
)
from cryptosweep.explore.watch import BackgroundSweep, Watcher, start_sweep, take_snapshot, watch
from cryptosweep.explore.widgets import Explorer

__all__ = [
    "BackgroundSweep",
    "Explorer",
    "RunInfo",
    "RunReadError",
    "TrialFilter",
    "Watcher",
    "compare_runs",
    "list_runs",
    "read_evaluations",
    "start_sweep",
    "take_snapshot",
    "trials_table",
    "watch",
]
