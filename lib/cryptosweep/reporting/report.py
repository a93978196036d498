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

import contextlib
import copy
import json
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

from cryptosweep.core.errors import ReportError, UserError
from cryptosweep.core.files import (
    SQLITE_HEADER,
    output_problem,
    unwritable,
    write_text_atomic,
)
from cryptosweep.core.paths import KERNEL, NOTEBOOKS
from cryptosweep.core.plotly_library import ensure_plotly_js, plotly_js_name, plotly_js_present
from cryptosweep.records.inspection import inspect_journal, read_only_uri
from cryptosweep.records.results import (
    RESULTS_GLOB,
    RESULTS_SCHEMA,
    RUN_VIEW_GLOBS,
    latest_file,
)
from cryptosweep.reporting.index_page import (
    INDEX_FILE,
    REPORT_FILE,
    run_summaries,
    write_index,
)
from cryptosweep.reporting.offline import (
    PLOTLY_MIME,
    library_tags,
    with_library,
    without_cdn_scripts,
)

log = logging.getLogger(__name__)

__all__ = ["charts_as_html", "export_optuna", "render_notebook", "render_report",
           "run_summaries", "write_index"]

#: SQLite's ``application_id`` of a file ``export-optuna`` wrote ("CSOX"): the one kind of
#: existing file it replaces.
OPTUNA_EXPORT_ID = 0x43534F58
ANALYSIS_NOTEBOOK = NOTEBOOKS / "analysis.ipynb"
#: A chart's height when its layout does not set one (what plotly's notebook output used).
DEFAULT_CHART_HEIGHT = "525px"


def _is_optuna_export(path: Path) -> bool:
    """Whether ``path`` is an SQLite file marked as an export of this command."""
    try:
        with open(path, "rb") as file:
            header = file.read(100)
    except OSError:
        return False
    return (len(header) == 100 and header.startswith(SQLITE_HEADER)
            and int.from_bytes(header[68:72], "big") == OPTUNA_EXPORT_ID)


def _export_studies(path: Path) -> list[str]:
    """The study names in an export of this command (read-only)."""
    try:
        uri = read_only_uri(path, immutable_without_wal=False)  # quoted: "#" in a folder
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            return [name for (name,) in db.execute("SELECT study_name FROM studies")]
    except sqlite3.Error as exc:
        raise UserError(f"export-optuna: {path} cannot be read as an Optuna export "
                        f"({exc}); remove it or pass another --output") from None


def check_kernel(kernel: str) -> None:
    """A :class:`~cryptosweep.core.errors.UserError` naming ``kernel`` unless Jupyter knows a
    kernel of that name (checked before a sweep or a notebook runs)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        manager.get_kernel_spec(kernel)
    except (NoSuchKernel, ValueError, OSError):
        known = ", ".join(sorted(manager.find_kernel_specs())) or "none"
        raise UserError(f"--kernel {kernel!r}: no Jupyter kernel of that name (installed: "
                        f"{known}; see README.md for installing the cryptosweep kernel)"
                        ) from None


def check_report_targets(run_dir: Path, index: bool = True) -> None:
    """Before anything runs: the run folder exists, and the report can be written there; so
    can, in the folder above, plotly.js (unless it is already there) and, with ``index``, the
    ``index.html``; else one :class:`UserError` saying why."""
    if not run_dir.is_dir():
        raise UserError(f"report: {run_dir} is a file, not a run folder" if run_dir.exists()
                        else f"report: run folder not found: {run_dir}")
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
    # The folders can be written: the index file itself may still be in the way (a folder).
    index_file = run_dir.parent / INDEX_FILE
    why_index = output_problem(index_file) if index else None
    if why_index is not None:
        raise UserError(f"report: cannot write {index_file} ({why_index}): move it away, or "
                        "pass --no-index")


def _check_run_file(path: Path) -> dict[str, Any]:
    """A file of the run the report reads (results, resource usage, environment) is whole
    JSON (an object), else one :class:`UserError` before the notebook runs (it failed in its
    third cell, exit 5, and left a notebook behind)."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"report: {path} cannot be read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"report: {path} is not complete JSON (half-written, or damaged): "
                        f"{exc}") from None
    except RecursionError:
        raise UserError(f"report: {path} is not a file of a run: nested too deep") from None
    if not isinstance(content, dict):
        raise UserError(f"report: {path} is not a file of a run (expected a JSON object)")
    return content


def render_report(run_dir: str | Path, kernel: str = KERNEL, timeout: int = 900) -> Path:
    """Execute ``notebooks/analysis.ipynb`` on ``run_dir`` into ``run_dir/notebooks/`` and
    convert it to ``run_dir/report.html`` (``nbconvert --to html --no-input``), which loads
    plotly.js from the folder above (written there once). Everything the notebook's
    :func:`~cryptosweep.records.results.load_run` reads (the results, resource usage and
    environment files, whole JSON objects, and the journal) is checked first: a missing or
    damaged one is one :class:`UserError` naming it, before anything is written."""
    run_dir = Path(run_dir).resolve()
    for pattern in RUN_VIEW_GLOBS:  # what the notebook's load_run reads: results first
        path = latest_file(run_dir, pattern)  # missing: one line naming it
        content = _check_run_file(path)
        schema = content.get("schema")
        if pattern == RESULTS_GLOB and schema != RESULTS_SCHEMA:  # as the explorer refuses it
            raise UserError(f"report: {path} was written by another version of cryptosweep "
                            f"(schema {schema!r}; this version reads {RESULTS_SCHEMA!r})")
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

    from cryptosweep.reporting.kernels import LocalKernelManager

    if not notebook_path.is_file():
        raise UserError(f"analysis notebook not found at {notebook_path}")
    check_kernel(kernel)
    executed = folder / "notebooks" / notebook_path.name
    if os.path.lexists(executed.parent) and not executed.parent.is_dir():
        raise UserError(f"report: {executed.parent} is not a folder (a file, or a link to "
                        "nothing), where the report keeps the notebook it ran: move it away")
    target = folder / REPORT_FILE
    library = folder.parent / plotly_js_name()  # the page loads it; written when absent
    for path in (target, *(() if plotly_js_present(folder.parent) else (library,))):
        why = output_problem(path)
        if why is not None:  # found before the notebook runs, not by its last step
            raise UserError(f"report: cannot write {path} ({why}): move it away")
    executed.parent.mkdir(exist_ok=True)
    try:
        papermill.execute_notebook(
            str(notebook_path), str(executed), parameters=parameters,
            kernel_name=kernel, progress_bar=False, execution_timeout=timeout,
            cwd=str(folder), kernel_manager_class=LocalKernelManager,
        )
    except papermill.PapermillExecutionError as exc:
        raise ReportError(
            f"analysis notebook failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue} "
            f"(see {executed})") from None
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    notebook = charts_as_html(nbformat.read(executed, as_version=4))
    body, _ = exporter.from_notebook_node(notebook)
    ensure_plotly_js(folder.parent)
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
            chart = (output.get("data") or {}).get(PLOTLY_MIME)
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
    family, since their parameters differ), for ``optuna-dashboard sqlite:///<file>``: one
    trial per configuration, COMPLETE only at the full budget, a Hyperband configuration
    stopped at a lower rung PRUNED, its rungs' scores intermediate values
    (:func:`~cryptosweep.strategies.optuna_space.configuration_study`).

    The file is written beside ``target`` and renamed over it; an existing ``target`` is
    replaced only if it is an export this command wrote (marked with
    :data:`OPTUNA_EXPORT_ID`): any other file (a run's ``sweep.db``, a text file) is refused
    with a :class:`~cryptosweep.core.errors.UserError` before anything is written."""
    from cryptosweep.core.config_files import validate_config
    from cryptosweep.records.journal import Journal
    from cryptosweep.strategies.optuna_space import configuration_study, quiet_optuna
    from cryptosweep.strategies.space import SearchSpace

    run_dir = Path(run_dir)
    if run_dir.is_symlink():  # reports/latest: the run it names today, not the link, whose
        run_dir = Path(os.path.realpath(run_dir))  # run changes (studies named "latest-...")
    if target is not None and not str(target).strip():
        raise UserError("export-optuna: --output is empty; give a file path (default: "
                        "RUN_DIR/optuna.db)")
    target = Path(target) if target is not None else run_dir / "optuna.db"
    why = output_problem(target)
    if why is not None:
        raise UserError(f"export-optuna: cannot write {target} ({why}); pass --output PATH")
    if target.exists() and not _is_optuna_export(target):
        raise UserError(f"export-optuna: {target} exists and is not an Optuna export written by "
                        "this command; it is left as it is: remove it or pass another --output")
    others = sorted(name for name in _export_studies(target)
                    if not name.startswith(f"{run_dir.name}-")) if target.exists() else []
    if others:
        raise UserError(f"export-optuna: {target} holds another run's export "
                        f"({', '.join(others)}); it is left as it is: remove it or pass another "
                        "--output")
    journal = Journal.open_existing(run_dir, purpose="export-optuna")
    try:
        config = validate_config(journal.get_meta("config"), f"journal {journal.path}")
        space = SearchSpace.from_config(config)
        rows = [r for r in journal.evaluations() if r.status in ("done", "failed")]
    finally:
        journal.close()
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    storage = f"sqlite:///{target}"
    try:
        with quiet_optuna():
            for family in space.families:
                configuration_study([row for row in rows if row.params["model"] == family],
                                    space, family, config.full_budget_units,
                                    storage=f"sqlite:///{partial}",
                                    study_name=f"{run_dir.name}-{family}")
        with contextlib.closing(sqlite3.connect(partial)) as db:
            db.execute(f"PRAGMA application_id = {OPTUNA_EXPORT_ID}")
            db.commit()
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    log.info("wrote Optuna study: %s (optuna-dashboard %s)", target, storage)
    return target
