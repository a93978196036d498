"""Walk-forward optimisation: re-optimise on each in-sample window, trade the winner untouched
on the out-of-sample segment that follows, and judge the process by the out-of-sample segments
of every window, concatenated (Pardo, *The Evaluation and Optimization of Trading Strategies*,
2nd ed., 2008, ch. 11; López de Prado, *Advances in Financial Machine Learning*, 2018,
ch. 11-12).

:mod:`.windows` lays the windows out on the data and checks them; :mod:`.layout` turns them
into each window's sweep config and seed (every check made before anything is created);
:mod:`.driver` runs the windows side by side on one executor, with a manifest and resume;
:mod:`.segment` trades a window's winner on its segment (a worker task); :mod:`.analysis` and
:mod:`.combine` turn the windows' results into the process's track record (concatenated
out-of-sample equity, walk-forward efficiency, deflated Sharpe ratio, parameter stability,
verdict); :mod:`.text`, :mod:`.figures` and :mod:`.report` show it.
"""

from __future__ import annotations

from cryptosweep.core.lazy import lazy_exports

_EXPORTS = {
    "run_walkforward": "cryptosweep.walkforward.driver",
    "render_walkforward_report": "cryptosweep.walkforward.report",
    "load_walkforward": "cryptosweep.walkforward.report",
    "track_table": "cryptosweep.walkforward.report",
    "verdict_block": "cryptosweep.walkforward.report",
    "window_table": "cryptosweep.walkforward.report",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
