"""From a finished run folder to what people read: ``report.html`` (the analysis notebook run
by papermill, then converted by nbconvert without its code) and the cross-night
``index.html`` of a reports folder. Both work offline: plotly.js is embedded, nothing is loaded
from a CDN.
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

from cryptosweep.errors import ReportError, UserError
from cryptosweep.files import write_text_atomic
from cryptosweep.paths import NOTEBOOKS
from cryptosweep.results import latest_file

log = logging.getLogger(__name__)

ANALYSIS_NOTEBOOK = NOTEBOOKS / "analysis.ipynb"
KERNEL = "cryptosweep"


def render_report(run_dir: str | Path, kernel: str = KERNEL, timeout: int = 900) -> Path:
    """Execute ``notebooks/analysis.ipynb`` on ``run_dir`` into ``run_dir/notebooks/`` and
    convert it to ``run_dir/report.html`` (``nbconvert --to html --no-input``)."""
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    run_dir = Path(run_dir).resolve()
    latest_file(run_dir, "sweep_results_*.json")  # a clear error for a folder that is not a run
    if not ANALYSIS_NOTEBOOK.is_file():
        raise UserError(f"analysis notebook not found at {ANALYSIS_NOTEBOOK}")
    executed = run_dir / "notebooks" / "analysis.ipynb"
    executed.parent.mkdir(exist_ok=True)
    try:
        papermill.execute_notebook(
            str(ANALYSIS_NOTEBOOK), str(executed), parameters={"run_dir": str(run_dir)},
            kernel_name=kernel, progress_bar=False, execution_timeout=timeout,
            cwd=str(run_dir),
        )
    except papermill.PapermillExecutionError as exc:
        raise ReportError(
            f"analysis notebook failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue} "
            f"(see {executed})") from None
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    target = run_dir / "report.html"
    write_text_atomic(target, offline_html(body))
    log.info("wrote report: %s", target)
    return target


EXTERNAL_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=[\"']https?://[^>]*>\s*</script>", re.I)


def offline_html(page: str) -> str:
    """Drop ``<script src="https://...">`` tags: nbconvert's template links require.js and
    MathJax from a CDN, and plotly's notebook output links MathJax per chart. The charts use no
    LaTeX, and plotly.js itself is embedded, so nothing is lost offline."""
    return EXTERNAL_SCRIPT.sub("", page)


def run_summaries(log_dir: Path) -> list[dict[str, Any]]:
    """One row per run folder under ``log_dir`` that has a results file, oldest first."""
    rows = []
    for results_path in sorted(log_dir.glob("*/sweep_results_*.json")):
        run_dir = results_path.parent
        try:
            results = json.loads(results_path.read_text())
            created_at = results["run"]["created_at"]
            sweep_type = results["sweep_type"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            continue  # half-written, or written by a version without these fields
        best = results.get("best") or {}
        holdout = best.get("holdout") or {}
        overfitting = results.get("overfitting") or {}
        dsr = (overfitting.get("dsr") or {}).get("dsr")
        pbo = (overfitting.get("pbo") or {}).get("pbo")
        checks = results.get("reproducibility_check") or []
        rows.append({
            "run": run_dir.name,
            "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime(created_at)),
            "created_at": created_at,
            "strategy": sweep_type,
            "best": best.get("score"),
            "holdout": holdout.get("holdout_sharpe"),
            "dsr": dsr,
            "pbo": pbo,
            "status": "ok" if all(c["status"] == "PASS" for c in checks) else "repro FAIL",
            "report": (f"{run_dir.name}/report.html" if (run_dir / "report.html").exists()
                       else f"{run_dir.name}/{results_path.name}"),
        })
    return sorted(rows, key=lambda row: row["created_at"])


def write_index(log_dir: str | Path) -> Path:
    """``log_dir/index.html``: every run with its scores and a link, and the best score and
    DSR over time."""
    import plotly.graph_objects as go

    log_dir = Path(log_dir)
    rows = run_summaries(log_dir)
    figure = go.Figure()
    dates = [row["date"] for row in rows]
    figure.add_scatter(x=dates, y=[row["best"] for row in rows], name="best validation score",
                       mode="lines+markers")
    figure.add_scatter(x=dates, y=[row["dsr"] for row in rows], name="DSR of the winner",
                       mode="lines+markers", yaxis="y2")
    figure.update_layout(
        title="Across nights", template="plotly_white", xaxis_title="run (UTC)",
        yaxis_title="Sharpe (annualised)", yaxis2={"title": "DSR", "overlaying": "y",
                                                   "side": "right", "range": [0, 1]},
    )
    chart = figure.to_html(full_html=False, include_plotlyjs=True)
    body = "\n".join(_index_row(row) for row in reversed(rows))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>cryptosweep runs</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}
</style></head><body>
<h1>cryptosweep runs</h1>
<p>{len(rows)} run(s) in {html.escape(str(log_dir))}; regenerated
{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}.</p>
<table><thead><tr><th>run</th><th>date (UTC)</th><th>strategy</th><th>best</th>
<th>holdout</th><th>DSR</th><th>PBO</th><th>status</th></tr></thead>
<tbody>
{body}
</tbody></table>
{chart}
</body></html>
"""
    target = log_dir / "index.html"
    write_text_atomic(target, page)
    return target


def _index_row(row: dict[str, Any]) -> str:
    def number(value: float | None) -> str:
        return "–" if value is None else f"{value:+.3f}"

    def share(value: float | None) -> str:
        return "–" if value is None else f"{value:.2f}"

    link = html.escape(row["report"])
    return (f"<tr><td><a href=\"{link}\">{html.escape(row['run'])}</a></td>"
            f"<td>{row['date']}</td><td>{html.escape(row['strategy'])}</td>"
            f"<td>{number(row['best'])}</td><td>{number(row['holdout'])}</td>"
            f"<td>{share(row['dsr'])}</td><td>{share(row['pbo'])}</td>"
            f"<td>{html.escape(row['status'])}</td></tr>")


def export_optuna(run_dir: str | Path, target: str | Path | None = None) -> Path:
    """Write the run's finished evaluations as Optuna studies in SQLite (one study per model
    family, since their parameters differ), for ``optuna-dashboard sqlite:///<file>``."""
    from cryptosweep.config import validate_config
    from cryptosweep.space import SearchSpace
    from cryptosweep.store import TrialStore
    from cryptosweep.strategies.optuna_space import family_study, quiet_optuna

    run_dir = Path(run_dir)
    store = TrialStore.open_existing(run_dir)
    try:
        config = validate_config(store.get_meta("config"), f"journal {store.path}")
        space = SearchSpace.from_config(config)
        rows = [r for r in store.evaluations() if r.status in ("done", "failed")]
    finally:
        store.close()
    target = Path(target) if target else run_dir / "optuna.db"
    target.unlink(missing_ok=True)
    storage = f"sqlite:///{target}"
    with quiet_optuna():
        for family in space.families:
            family_study([row for row in rows if row.params["model"] == family], space, family,
                         storage=storage, study_name=f"{run_dir.name}-{family}")
    log.info("wrote Optuna study: %s (optuna-dashboard %s)", target, storage)
    return target
