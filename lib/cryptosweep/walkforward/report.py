"""A walk-forward folder as people read it: its combined results loaded back, the tables of
``notebooks/walkforward_analysis.ipynb`` (HTML strings), and ``report.html`` rendered from that
notebook like a sweep's report (:func:`cryptosweep.reporting.report.render_notebook`: papermill,
then
nbconvert without code, charts loading the one plotly.js of the folder above)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from cryptosweep.core.errors import UserError
from cryptosweep.core.formatting import metric_name, percent, signed
from cryptosweep.core.paths import KERNEL, NOTEBOOKS
from cryptosweep.records.results import latest_file
from cryptosweep.walkforward.combine import RESULTS_SCHEMA, RESULTS_VERSION

WALKFORWARD_NOTEBOOK = NOTEBOOKS / "walkforward_analysis.ipynb"


def load_walkforward(wf_dir: str | Path) -> dict[str, Any]:
    """The newest ``walkforward_results_*.json`` of a walk-forward folder; one that cannot be
    read, is not valid JSON (cut off, empty) or not walk-forward results is a
    :class:`~cryptosweep.core.errors.UserError` naming it (exit 2)."""
    wf_dir = Path(wf_dir)
    if not wf_dir.is_dir():
        raise UserError(f"walk-forward folder not found: {wf_dir}")
    path = latest_file(wf_dir, "walkforward_results_*.json")
    try:
        results = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise UserError(f"{path} cannot be read ({exc.strerror})") from None
    except ValueError as exc:  # JSONDecodeError (cut off, empty), UnicodeDecodeError
        raise UserError(f"{path} is damaged (not valid JSON: {' '.join(str(exc).split())[:200]});"
                        f" resume the walk-forward to write it again: cryptosweep walkforward "
                        f"--resume {wf_dir}") from None
    if not isinstance(results, dict) or results.get("schema") != RESULTS_SCHEMA:
        raise UserError(f"{path} is not walk-forward results (schema {RESULTS_SCHEMA}); resume "
                        f"the walk-forward to write it again: cryptosweep walkforward --resume "
                        f"{wf_dir}")
    if results.get("schema_version") != RESULTS_VERSION:  # (the notebook failed on a key)
        raise UserError(f"{path} was written by another version (schema_version "
                        f"{results.get('schema_version')!r}; this version reads "
                        f"{RESULTS_VERSION}); resume the walk-forward to write it again: "
                        f"cryptosweep walkforward --resume {wf_dir}")
    return results


def render_walkforward_report(wf_dir: str | Path, kernel: str = KERNEL,
                              timeout: int = 900) -> Path:
    """``wf_dir/report.html`` from ``notebooks/walkforward_analysis.ipynb``."""
    from cryptosweep.reporting.report import render_notebook

    wf_dir = Path(wf_dir).resolve()
    load_walkforward(wf_dir)  # a clear error for a folder that is not a finished walk-forward
    return render_notebook(WALKFORWARD_NOTEBOOK, wf_dir, {"wf_dir": str(wf_dir)}, kernel,
                           timeout)


def verdict_block(results: dict[str, Any]) -> str:
    """The verdict, its reason and its headline numbers, for the top of the page."""
    verdict = results["verdict"]
    return (f"<h2>{html.escape(verdict['label'])}</h2><p>{html.escape(verdict['reason'])}</p>"
            f"<p><b>{html.escape(verdict['headline'])}</b></p>")


def track_table(results: dict[str, Any]) -> str:
    """The out-of-sample track against flat and buy-and-hold on the same segments."""
    metric = results["metric"]
    oos = results["out_of_sample"]
    rows = [("walk-forward process", oos["metrics"])] + [
        (name.replace("_", "-"), block["metrics"]) for name, block in oos["baselines"].items()]
    frame = pd.DataFrame([{
        "": label, metric_name(metric): signed(m[metric]), "total return":
        percent(m["total_return"]), "max drawdown": percent(m["max_drawdown"]),
        "trades": m["trades"], "exposure": percent(m["exposure"])} for label, m in rows])
    return frame.to_html(index=False, escape=True)


def window_table(results: dict[str, Any]) -> str:
    """One row per window: its bars, in-sample and out-of-sample scores, buy-and-hold, trades,
    walk-forward efficiency, the gate's decision and what the process traded (and why)."""
    frame = pd.DataFrame([{
        "window": row["window"], "in-sample": f"{row['is_first_bar'][:10]} .. "
        f"{row['is_last_bar'][:10]}", "out-of-sample": f"{row['oos_first_bar'][:10]} .. "
        f"{row['oos_last_bar'][:10]}", "IS score": signed(row["is_score"]),
        "OOS score": signed(row["oos_score"]), "buy-and-hold": signed(row["buy_and_hold_score"]),
        "OOS trades": row["oos_trades"],
        "WFE": "undefined" if row["efficiency"] is None else signed(row["efficiency"]),
        "gate": row["decision"] or "-", "traded": row["process"]["text"],
        "configurations": row["configurations"], "run folder": row["run"]}
        for row in results["windows"]])
    return frame.to_html(index=False, escape=True)
