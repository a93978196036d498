"""Interactive exploration in JupyterLab (``notebooks/explore.ipynb``).

* :mod:`~cryptosweep.explore.runs` — reading run folders, read-only: the runs of a reports
  folder, a run's evaluations as a table, filters, comparing two runs (no widgets);
* :mod:`~cryptosweep.explore.plots` — the explorer's own plotly figures;
* :mod:`~cryptosweep.explore.render` — a figure into an ``ipywidgets.Output``, offline;
* :mod:`~cryptosweep.explore.widgets` — :class:`Explorer`, the widgets and their callbacks;
* :mod:`~cryptosweep.explore.watch` — :func:`watch`, the live view of a running sweep;
* :mod:`~cryptosweep.explore.trial` — one evaluation as the sweep recorded it (no widgets);
* :mod:`~cryptosweep.explore.whatif` — its predictions retrained with its recorded seed, and its
  backtest with other trading parameters (no widgets);
* :mod:`~cryptosweep.explore.trial_plots` — its equity/drawdown and trades figures;
* :mod:`~cryptosweep.explore.trial_view` — :class:`TrialView`, the trial panel's widgets.

::

    from cryptosweep import explore
    ui = explore.Explorer("reports")          # ui.runs_panel, ui.compare_panel, ui.trials_panel
    ui.trial_panel                            # one trial in depth, what-if sliders (ui.trial)
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
from cryptosweep.explore.trial import TrialRecord, read_trial
from cryptosweep.explore.trial_view import TrialView
from cryptosweep.explore.watch import BackgroundSweep, Watcher, start_sweep, take_snapshot, watch
from cryptosweep.explore.whatif import PredictionsError, WhatIf, trial_predictions, what_if
from cryptosweep.explore.widgets import Explorer

__all__ = [
    "BackgroundSweep",
    "Explorer",
    "PredictionsError",
    "RunInfo",
    "RunReadError",
    "TrialFilter",
    "TrialRecord",
    "TrialView",
    "Watcher",
    "WhatIf",
    "compare_runs",
    "list_runs",
    "read_evaluations",
    "read_trial",
    "start_sweep",
    "take_snapshot",
    "trial_predictions",
    "trials_table",
    "watch",
    "what_if",
]
