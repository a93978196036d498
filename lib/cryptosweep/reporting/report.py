"""From a finished run folder to what people read: ``report.html`` (the analysis notebook run
by papermill, then converted by nbconvert without its code) and the cross-night ``index.html``
(:mod:`cryptosweep.reporting.index_page`). Both work offline and share one plotly.js per reports
folder
(:mod:`cryptosweep.reporting.offline`).

The analysis notebook shows its charts as plotly's JSON mimetype only (JupyterLab draws them
with the plotly extension), so the executed notebook stored in the run folder holds each
chart once and no copy of the library. For ``report.html`` each chart becomes a ``<div>`` and a
``Plotly.newPlot`` call with a fixed id, so the same run renders the same page.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from cryptosweep.core.errors import ReportError, UserError
from cryptosweep.core.files import unwritable, write_text_atomic
from cryptosweep.core.paths import NOTEBOOKS
from cryptosweep.records.journal import inspect_journal
from cryptosweep.records.results import latest_file
from cryptosweep.reporting.index_page import run_summaries, write_index
from cryptosweep.reporting.offline import (
    ensure_plotly_js,
    library_tags,
    plotly_js_name,
    plotly_js_present,
    with_library,
    without_cdn_scripts,
)

log = logging.getLogger(__name__)

__all__ = ["charts_as_html", "export_optuna", "render_notebook", "render_report",
           "run_summaries", "write_index"]

ANALYSIS_NOTEBOOK = NOTEBOOKS / "analysis.ipynb"
KERNEL = "cryptosweep"
PLOTLY_MIMETYPE = "application/vnd.plotly.v1+json"
#: A chart's height when its layout does not set one (what plotly's notebook output used).
DEFAULT_CHART_HEIGHT = "525px"


def check_report_targets(run_dir: Path, index: bool = True) -> None:
    """Before anything runs: the run folder exists, and the report can be written there; so
    can, in the folder above, plotly.js (unless it is already there) and, with ``index``, the
    ``index.html``; else one :class:`UserError` saying why."""
    if not run_dir.is_dir():
        raise UserError(f"report: run folder not found: {run_dir}")
    library_written = plotly_js_present(run_dir.parent)
    targets = [run_dir, run_dir / "notebooks"]
    if index or not library_written:
        targets.append(run_dir.parent)
    for target in targets:
        why = unwritable(target)
        if why is None:
            continue
        parent = target == run_dir.parent
        where = f", where the report keeps {plotly_js_name()}" if parent and not library_written \
            else ""
        hint = ", or pass --no-index" if parent and library_written else ""
        raise UserError(f"report: cannot write into {target} ({why}){where}; copy the run "
                        f"folder somewhere writable and report that{hint}")


def render_report(run_dir: str | Path, kernel: str = KERNEL, timeout: int = 900) -> Path:
    """Execute ``notebooks/analysis.ipynb`` on ``run_dir`` into ``run_dir/notebooks/`` and
    convert it to ``run_dir/report.html`` (``nbconvert --to html --no-input``), which loads
    plotly.js from the folder above (written there once)."""
    run_dir = Path(run_dir).resolve()
    latest_file(run_dir, "sweep_results_*.json")  # a clear error for a folder that is not a run
    inspect_journal(run_dir, writable=False, purpose="report")  # every row, before anything
    return render_notebook(ANALYSIS_NOTEBOOK, run_dir, {"run_dir": str(run_dir)}, kernel,
                           timeout)


def render_notebook(notebook_path: Path, folder: Path, parameters: dict[str, Any],
                    kernel: str = KERNEL, timeout: int = 900) -> Path:
    """Execute an analysis notebook with ``parameters`` into ``folder/notebooks/`` and convert
    it to ``folder/report.html`` without its code, its charts as HTML that loads the one
    plotly.js of the folder above (the sweep's report and the walk-forward's)."""
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    if not notebook_path.is_file():
        raise UserError(f"analysis notebook not found at {notebook_path}")
    executed = folder / "notebooks" / notebook_path.name
    executed.parent.mkdir(exist_ok=True)
    try:
        papermill.execute_notebook(
            str(notebook_path), str(executed), parameters=parameters,
            kernel_name=kernel, progress_bar=False, execution_timeout=timeout,
            cwd=str(folder),
        )
    except papermill.PapermillExecutionError as exc:
        raise ReportError(
            f"analysis notebook failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue} "
            f"(see {executed})") from None
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    notebook = charts_as_html(nbformat.read(executed, as_version=4))
    body, _ = exporter.from_notebook_node(notebook)
    target = folder / "report.html"
    library = ensure_plotly_js(folder.parent)
    write_text_atomic(target, with_library(without_cdn_scripts(body),
                                           library_tags(target, library)))
    log.info("wrote report: %s", target)
    return target


def charts_as_html(notebook: Any) -> Any:
    """A copy of an executed notebook in which every plotly chart (JSON mimetype) also has the
    ``text/html`` nbconvert shows: a ``<div>`` with a fixed id (``chart-<n>``, in page order)
    and its ``Plotly.newPlot`` call, without the library."""
    import plotly.io as pio

    notebook = copy.deepcopy(notebook)
    number = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            chart = (output.get("data") or {}).get(PLOTLY_MIMETYPE)
            if chart is None:
                continue
            number += 1
            figure = {"data": chart.get("data", []), "layout": chart.get("layout", {})}
            output["data"]["text/html"] = pio.to_html(
                figure, config=chart.get("config") or {}, include_plotlyjs=False,
                include_mathjax=False, full_html=False, div_id=f"chart-{number}",
                default_height=DEFAULT_CHART_HEIGHT, validate=False,
            )
    return notebook


def export_optuna(run_dir: str | Path, target: str | Path | None = None) -> Path:
    """Write the run's finished evaluations as Optuna studies in SQLite (one study per model
    family, since their parameters differ), for ``optuna-dashboard sqlite:///<file>``."""
    from cryptosweep.core.config_files import validate_config
    from cryptosweep.records.journal import Journal
    from cryptosweep.strategies.optuna_space import family_study, quiet_optuna
    from cryptosweep.strategies.space import SearchSpace

    run_dir = Path(run_dir)
    journal = Journal.open_existing(run_dir, purpose="export-optuna")
    try:
        config = validate_config(journal.get_meta("config"), f"journal {journal.path}")
        space = SearchSpace.from_config(config)
        rows = [r for r in journal.evaluations() if r.status in ("done", "failed")]
    finally:
        journal.close()
    target = Path(target) if target else run_dir / "optuna.db"
    why = unwritable(target.parent)
    if why is not None:
        raise UserError(f"export-optuna: cannot write {target} ({why}); pass --output PATH")
    target.unlink(missing_ok=True)
    storage = f"sqlite:///{target}"
    with quiet_optuna():
        for family in space.families:
            family_study([row for row in rows if row.params["model"] == family], space, family,
                         storage=storage, study_name=f"{run_dir.name}-{family}")
    log.info("wrote Optuna study: %s (optuna-dashboard %s)", target, storage)
    return target
