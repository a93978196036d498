"""The cross-night ``index.html`` of a reports folder: one row per run folder (links such as
``latest`` are never counted), newest first, with its date (UTC), strategy, verdict
(:func:`cryptosweep.judging.verdict.verdict`), holdout score with its trades, DSR, PBO and a link
to its
report; and the trends of the winner's holdout score and DSR across nights.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

from cryptosweep.core.files import write_text_atomic
from cryptosweep.core.formatting import metric_name, share, signed
from cryptosweep.core.plotly_library import ensure_plotly_js
from cryptosweep.judging.verdict import verdict
from cryptosweep.records.results import RESULTS_GLOB
from cryptosweep.reporting.offline import library_tags

INDEX_FILE = "index.html"
#: A run folder's report page (the analysis notebook run into HTML).
REPORT_FILE = "report.html"
#: What the nightly's champion-in-the-field watch found (written by the nightly).
FIELD_FILE = "champion_field.json"


def run_summaries(log_dir: Path) -> list[dict[str, Any]]:
    """One row per run folder directly under ``log_dir`` with a results file, oldest first.
    Symbolic links (``latest``) are skipped: they point at a run that has its own row."""
    rows = []
    for run_dir in sorted(Path(log_dir).iterdir()):
        if run_dir.is_symlink() or not run_dir.is_dir():
            continue
        found = sorted(run_dir.glob(RESULTS_GLOB))
        if not found:
            continue
        try:
            results = json.loads(found[-1].read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):  # ValueError: JSON and UTF-8 errors
            continue  # half-written, or damaged
        created = (results.get("run") or {}).get("created_at") if isinstance(results, dict) \
            else None
        if not isinstance(created, int | float):
            continue  # not a results file of a run, or one without its start
        try:
            decided = verdict(results)
            checks = results.get("reproducibility_check") or []
            reproducible = None if not checks else all(c.get("status") == "PASS"
                                                       for c in checks)
        except (AttributeError, KeyError, TypeError, ValueError):
            continue  # a field of another type than this version writes: damaged, no row
        field = None
        with contextlib.suppress(OSError, ValueError, RecursionError):
            field = json.loads((run_dir / FIELD_FILE).read_text(encoding="utf-8"))
        rows.append({
            "field": field if isinstance(field, dict) else None,
            "run": run_dir.name,
            "created_at": float(created),
            "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime(created)),
            "strategy": str(results.get("sweep_type", "?")),
            "metric": decided.metric,
            "verdict": decided,
            "validation": decided.validation_score,
            "best": decided.validation_score,  # the name earlier readers of these rows use
            "holdout": decided.holdout_score,
            "holdout_trades": decided.holdout_trades,
            "small_sample": decided.holdout_small_sample,
            "dsr": decided.dsr,
            "pbo": decided.pbo,
            "reproducible": reproducible,
            "status": {None: "-", True: "ok", False: "repro FAIL"}[reproducible],  # re-runs
            "report": (f"{run_dir.name}/{REPORT_FILE}" if (run_dir / REPORT_FILE).exists()
                       else f"{run_dir.name}/{found[-1].name}"),
        })
    return sorted(rows, key=lambda row: (row["created_at"], row["run"]))


def trend_chart(rows: list[dict[str, Any]]) -> Any:
    """The winner's holdout score (left axis) and DSR (right axis, [0, 1]) across nights, one
    point per run at its date (UTC); ``None`` without runs."""
    import plotly.graph_objects as go

    if not rows:
        return None
    dates = [dt.datetime.fromtimestamp(row["created_at"], tz=dt.UTC).replace(tzinfo=None)
             for row in rows]
    names = [row["run"] for row in rows]
    metrics = {metric_name(row["metric"]) for row in rows}
    score = metrics.pop() if len(metrics) == 1 else "score"
    figure = go.Figure()
    figure.add_scatter(x=dates, y=[row["holdout"] for row in rows], mode="lines+markers",
                       name=f"holdout {score} of the winner", customdata=names,
                       hovertemplate="%{customdata}<br>%{y:+.2f}<extra></extra>")
    figure.add_scatter(x=dates, y=[row["dsr"] for row in rows], mode="lines+markers",
                       name="DSR of the winner", yaxis="y2", customdata=names,
                       line={"dash": "dot"},
                       hovertemplate="%{customdata}<br>DSR %{y:.2f}<extra></extra>")
    figure.add_hline(y=0, line={"color": "#888", "width": 1})
    # The deployment gate's default DSR threshold, on the DSR axis.
    figure.add_shape(type="line", xref="paper", x0=0, x1=1, yref="y2", y0=0.95, y1=0.95,
                     line={"color": "#c62828", "width": 1, "dash": "dash"})
    figure.update_layout(
        title="Across nights: the winner on the holdout", template="plotly_white",
        xaxis={"title": "run started (UTC)", "type": "date", "tickformat": "%Y-%m-%d %H:%M"},
        yaxis={"title": f"holdout {score}"},
        yaxis2={"title": "DSR", "overlaying": "y", "side": "right", "range": [0, 1]},
        legend={"orientation": "h", "y": -0.25}, height=420,
    )
    return figure


def write_index(log_dir: str | Path) -> Path:
    """``log_dir/index.html`` (see the module docstring); plotly.js from
    ``log_dir/plotly-<version>.min.js``."""
    import plotly.io as pio

    log_dir = Path(log_dir)
    rows = run_summaries(log_dir)
    target = log_dir / INDEX_FILE
    chart = trend_chart(rows)
    chart_html = "" if chart is None else pio.to_html(
        chart, include_plotlyjs=False, full_html=False, div_id="trend", default_height="420px")
    library = ensure_plotly_js(log_dir)
    body = "\n".join(_row(row) for row in reversed(rows))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>cryptosweep runs</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right;vertical-align:top}}
td.text,th.text{{text-align:left}}th{{background:#e8eef7}}
.positive{{color:#1a7f37;font-weight:bold}}.negative{{color:#c62828;font-weight:bold}}
.reason{{font-size:.85em;color:#444;max-width:40em}}.small{{color:#b35c00;font-weight:bold}}
</style>
{library_tags(target, library)}
</head><body>
<h1>cryptosweep runs</h1>
<p>{len(rows)} run(s) in {html.escape(str(log_dir))}; regenerated
{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}. Verdict: deployable / not deployable
under the deployment gate when a run has one, else edge / no edge against flat and
buy-and-hold on the holdout (see each report). † = a holdout score from too few trades.</p>
<table><thead><tr><th class="text">run</th><th>started (UTC)</th><th class="text">strategy</th>
<th class="text">verdict</th><th>holdout (trades)</th><th>DSR</th><th>PBO</th>
<th>validation</th><th>re-run</th><th class="text">champion in the field</th></tr></thead>
<tbody>
{body}
</tbody></table>
{chart_html}
</body></html>
"""
    write_text_atomic(target, page)
    return target


def _row(row: dict[str, Any]) -> str:
    decided = row["verdict"]
    link = html.escape(urllib.parse.quote(row["report"]))  # a run may be called 'night#1?'
    tone = "positive" if decided.positive else "negative"
    trades = ("" if row["holdout_trades"] is None else
              f" ({row['holdout_trades']}" + ("†" if row["small_sample"] else "") + ")")
    holdout = html.escape(signed(row["holdout"])) + (
        f'<span class="small">{trades}</span>' if row["small_sample"] else trades)
    reproducible = {None: "–", True: "PASS", False: "FAIL"}[row["reproducible"]]
    return (f'<tr><td class="text"><a href="{link}">{html.escape(row["run"])}</a></td>'
            f"<td>{row['date']}</td><td class=\"text\">{html.escape(row['strategy'])}</td>"
            f'<td class="text"><span class="{tone}">{html.escape(decided.label)}</span>'
            f'<div class="reason">{html.escape(decided.reason)}</div></td>'
            f"<td>{holdout}</td><td>{share(row['dsr'])}</td><td>{share(row['pbo'])}</td>"
            f"<td>{html.escape(signed(row['validation']))}</td><td>{reproducible}</td>"
            f'<td class="text">{_field_cell(row.get("field"))}</td></tr>')


def _field_cell(field: dict[str, Any] | None) -> str:
    """The champion as the nightly watched it that night: live bars, trades, return, PSR
    against its validated Sharpe, largest PSI; DEMOTED when the kill switch acted."""
    if not field:
        return "–"
    if field.get("state") == "waiting":
        return html.escape(f"{field.get('live_bars', 0)} live bars")
    psr = field.get("psr_vs_validated")
    psi = field.get("max_psi")
    text = (f"{field.get('live_bars')} bars, {field.get('trades')} trades, "
            f"{signed(field.get('total_return'))} return, PSR "
            f"{'–' if psr is None else f'{psr:.2f}'}, PSI {'–' if psi is None else f'{psi:.2f}'}")
    if field.get("state") == "demoted":
        return f'<span class="negative">DEMOTED</span> {html.escape(text)}'
    return html.escape(text)
