"""The plotly.js library file a folder of offline pages shares: ``plotly-<version>.min.js``,
the copy bundled with the installed ``plotly`` package, written once per folder (4.8 MB) and
loaded by every page there by a relative path. Here, below every layer that writes pages (the
report and the index, and ``evaluate --html``), so that they all share one copy.
"""

from __future__ import annotations

import functools
from pathlib import Path

from cryptosweep.core.files import write_text_atomic


@functools.cache
def _library() -> str:
    """The installed plotly's library, read once a process (4.8 MB: a report asked for it up
    to four times, to check a folder and to write it)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


@functools.cache
def _library_size() -> int:
    return len(_library().encode("utf-8"))


def plotly_js_name() -> str:
    """``plotly-<version>.min.js``: the file name of the library the installed plotly uses."""
    from plotly.offline import get_plotlyjs_version

    return f"plotly-{get_plotlyjs_version()}.min.js"


def plotly_js_present(folder: Path) -> bool:
    """Whether ``folder`` already holds the installed plotly's library, whole (then
    :func:`ensure_plotly_js` writes nothing there)."""
    target = Path(folder) / plotly_js_name()
    return target.is_file() and target.stat().st_size == _library_size()


def ensure_plotly_js(folder: Path) -> Path:
    """``folder/plotly-<version>.min.js``, written (atomically) only when it is not already
    there with the right size."""
    target = Path(folder) / plotly_js_name()
    if not plotly_js_present(folder):
        write_text_atomic(target, _library())
    return target
