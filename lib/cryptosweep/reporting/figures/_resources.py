"""Resource figures: host and GPU use over time, and each worker's evaluations as a Gantt chart."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cryptosweep.reporting.figures._style import _STATUS_COLOURS, TEMPLATE, _color, _utc


def resource_timeline(resource_usage: Mapping[str, Any]) -> go.Figure | None:
    """Host CPU % and memory used over time, plus, when there are ``gpuN`` samples, each GPU's
    utilisation % and memory used (one trace per GPU): 2 or 4 stacked panels with a shared
    time axis (UTC). ``None`` without samples."""
    samples = sorted(resource_usage.get("samples") or [], key=lambda s: s["ts"])
    if not samples:
        return None
    host = [s for s in samples if s["source"] == "host"]
    gpus: dict[str, list[Mapping[str, Any]]] = {}
    for s in samples:
        if str(s["source"]).startswith("gpu"):
            gpus.setdefault(s["source"], []).append(s)
    gpu_names = sorted(gpus, key=lambda n: (len(n), n))
    titles = ["host CPU", "host memory"] + (["GPU utilisation", "GPU memory"] if gpus else [])
    fig = make_subplots(rows=len(titles), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=titles)
    if host:
        times = [_utc(s["ts"]) for s in host]
        fig.add_trace(go.Scatter(x=times, y=[s.get("cpu_percent") for s in host],
                                 mode="lines+markers", name="CPU %",
                                 line={"color": _color(0)}), row=1, col=1)
        fig.add_trace(go.Scatter(x=times, y=[_gib(s.get("memory_used_mib")) for s in host],
                                 mode="lines+markers", name="memory used",
                                 line={"color": _color(1)}), row=2, col=1)
        totals = [_gib(s.get("memory_total_mib")) for s in host]
        if any(t is not None for t in totals):
            fig.add_trace(go.Scatter(x=times, y=totals, mode="lines", name="memory total",
                                     line={"color": _color(1), "dash": "dot"}), row=2, col=1)
    for i, name in enumerate(gpu_names):
        items = gpus[name]
        times = [_utc(s["ts"]) for s in items]
        colour = _color(i + 2)
        fig.add_trace(go.Scatter(x=times, y=[s.get("gpu_percent") for s in items],
                                 mode="lines+markers", name=f"{name} utilisation %",
                                 legendgroup=name, line={"color": colour}), row=3, col=1)
        fig.add_trace(go.Scatter(x=times, y=[_gib(s.get("memory_used_mib")) for s in items],
                                 mode="lines+markers", name=f"{name} memory used",
                                 legendgroup=name, line={"color": colour}), row=4, col=1)
    fig.update_yaxes(title_text="CPU %", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="GiB", rangemode="tozero", row=2, col=1)
    if gpus:
        fig.update_yaxes(title_text="GPU %", range=[0, 100], row=3, col=1)
        fig.update_yaxes(title_text="GiB", rangemode="tozero", row=4, col=1)
    fig.update_xaxes(title_text="time (UTC)", row=len(titles), col=1)
    fig.update_layout(
        template=TEMPLATE, height=260 * len(titles),
        title=f"Resource usage ({len(host)} host samples"
              + (f", {len(gpu_names)} GPU(s))" if gpus else ", no GPU samples)"),
    )
    return fig


def _gib(mib: Any) -> float | None:
    return None if mib is None else float(mib) / 1024.0


def worker_gantt(resource_usage: Mapping[str, Any],
                 results: Mapping[str, Any] | None = None) -> go.Figure | None:
    """One row per worker and one horizontal bar per evaluation, from its start to its end
    (UTC), from ``resource_usage["timeline"]``. Bars are coloured by status (one trace per
    status) when the timeline items carry one or ``results`` is given, else all alike.
    Each bar's ``customdata`` is ``[eval_id, start_ts, end_ts, status]``. ``None`` without
    timed evaluations."""
    timeline = [t for t in resource_usage.get("timeline") or []
                if t.get("start") is not None and t.get("end") is not None]
    if not timeline:
        return None
    status_of = {e["eval_id"]: e["status"] for e in (results or {}).get("evaluations") or []}
    workers: dict[str, float] = {}
    for item in timeline:
        worker = str(item.get("worker"))
        workers[worker] = min(workers.get(worker, item["start"]), item["start"])
    order = sorted(workers, key=lambda w: (workers[w], w))
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for item in sorted(timeline, key=lambda t: t["eval_id"]):
        status = item.get("status") or status_of.get(item["eval_id"]) or "evaluation"
        groups.setdefault(status, []).append(item)
    fig = go.Figure()
    for i, (status, items) in enumerate(sorted(groups.items())):
        fig.add_trace(go.Bar(
            orientation="h", name=status,
            y=[str(t.get("worker")) for t in items],
            base=[_utc(t["start"]) for t in items],
            x=[(t["end"] - t["start"]) * 1000.0 for t in items],  # ms: a date axis's unit
            marker={"color": _STATUS_COLOURS.get(status, _color(i)),
                    "line": {"color": "white", "width": 0.5}},
            customdata=[[t["eval_id"], t["start"], t["end"], status] for t in items],
            text=[str(t["eval_id"]) for t in items], textposition="inside",
            insidetextanchor="middle",
            hovertemplate="eval %{customdata[0]}<br>%{base|%H:%M:%S.%L} + %{x:.0f} ms"
                          "<br>%{y}<extra>%{customdata[3]}</extra>",
        ))
    utilisation = {
        w: (resource_usage.get("workers") or {}).get(w, {}).get("utilisation") for w in order
    }
    fig.update_layout(
        template=TEMPLATE, barmode="overlay", height=max(300, 60 * len(order) + 160),
        title=f"Worker timeline: {len(timeline)} evaluations on {len(order)} worker(s)",
        xaxis={"title": "time (UTC)", "type": "date"},
        yaxis={"title": "worker", "categoryorder": "array", "categoryarray": order[::-1],
               "tickmode": "array", "tickvals": order,
               "ticktext": [w if utilisation[w] is None else f"{w} ({utilisation[w]:.0%} busy)"
                            for w in order]},
        legend_title="status",
    )
    return fig
