"""Pages that work offline and stay small: plotly.js is written once per reports folder
(``<reports>/plotly-<version>.min.js``, the copy bundled with the ``plotly`` package) and every
page refers to it by a relative path, so a night adds no copy of the library (4.8 MB) and the
folder still works when it is copied elsewhere as a whole. Nothing is loaded from a CDN.

A page whose library file is missing (a run folder copied without its reports folder) says so
in a banner instead of showing empty charts.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: The MIME type of a plotly figure in a notebook output (what the jupyterlab-plotly extension
#: draws, and what the report reads its charts from).
PLOTLY_MIME = "application/vnd.plotly.v1+json"

EXTERNAL_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=[\"']https?://[^>]*>\s*</script>", re.I)

_MISSING_LIBRARY = """<script>window.addEventListener("DOMContentLoaded", function () {
  if (window.Plotly) { return; }
  var note = document.createElement("p");
  note.id = "plotly-missing";
  note.style.cssText = "background:#fff3cd;border:1px solid #e0b000;padding:.5em 1em;" +
    "font-family:sans-serif";
  note.textContent = "The charts need %(name)s next to this page's reports folder " +
    "(%(src)s): copy the reports folder as a whole, or run `cryptosweep report` again.";
  document.body.insertBefore(note, document.body.firstChild);
});</script>"""


def library_tags(page: Path, library: Path) -> str:
    """The ``<script>`` that loads ``library`` by its path relative to ``page``'s folder, and
    the banner shown when it cannot be loaded."""
    src = Path(os.path.relpath(library, Path(page).parent)).as_posix()
    return (f'<script src="{src}" charset="utf-8"></script>\n'
            + _MISSING_LIBRARY % {"name": library.name, "src": src})


def without_cdn_scripts(page: str) -> str:
    """Drop ``<script src="https://...">`` tags: nbconvert's template links require.js and
    MathJax from a CDN. The charts use no LaTeX and plotly.js is local, so nothing is lost."""
    return EXTERNAL_SCRIPT.sub("", page)


def with_library(page: str, tags: str) -> str:
    """``page`` with ``tags`` at the end of its ``<head>`` (before every chart's script)."""
    head_end = page.find("</head>")
    if head_end < 0:
        raise ValueError("the page has no </head>")
    return page[:head_end] + tags + "\n" + page[head_end:]
