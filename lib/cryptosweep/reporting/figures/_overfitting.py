"""Overfitting figures: the PBO logit distribution and the deflated Sharpe ratio bars."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go

from cryptosweep.reporting.figures._style import TEMPLATE, _color, _fmt


def overfitting_figure(pbo_result: Any) -> go.Figure | None:
    """Distribution of the CSCV logits ``λ`` of the probability of backtest overfitting, with a
    line at ``λ = 0`` (at or left of it: the in-sample winner is at or below the out-of-sample
    median); PBO in the title. A logit comes from a rank among N configurations, so it takes at
    most N values: one bar per distinct value with its count of combinations (exact, and a few
    hundred bytes instead of every logit). Takes a
    :class:`~cryptosweep.judging.overfitting.PBOResult` or its ``to_dict()`` form
    (``results["overfitting"]["pbo"]``); ``None`` for ``None``."""
    if pbo_result is None:
        return None
    if isinstance(pbo_result, Mapping):
        pbo, logits = pbo_result["pbo"], pbo_result["logits"]
        n_combinations = pbo_result.get("n_combinations", len(logits))
    else:
        pbo, logits, n_combinations = pbo_result.pbo, pbo_result.logits, pbo_result.n_combinations
    values, counts = np.unique(np.asarray(logits, dtype=float), return_counts=True)
    fig = go.Figure(go.Bar(x=values, y=counts, name="logits", marker={"color": _color(0)},
                           hovertemplate="λ %{x:.3f}<br>%{y} combinations<extra></extra>"))
    fig.add_vline(x=0.0, line={"color": "#d62728", "dash": "dash", "width": 2},
                  annotation_text="λ = 0", annotation_position="top right")
    fig.update_layout(
        template=TEMPLATE, bargap=0.05, showlegend=False,
        title=f"Probability of backtest overfitting: PBO = {pbo:.3f} "
              f"({n_combinations} CSCV combinations)",
        xaxis_title="logit λ of the in-sample winner's out-of-sample rank",
        yaxis_title="combinations",
    )
    return fig


def dsr_bars(dsr_info: Mapping[str, Any] | None) -> go.Figure | None:
    """Horizontal bars of the search's best's diagnostic deflated Sharpe ratio (N = the
    full-budget configurations; PSR against the expected maximum Sharpe of the trials under no
    skill) and PSR against 0, on [0, 1], with the customary 0.95 line; the gate's DSR (the
    winner's, with the ledger's trials) is the verdict's. Takes the dict of
    :func:`~cryptosweep.judging.overfitting.deflated_sharpe_from_returns`
    (``results["overfitting"]["dsr"]`` or ``results["top_k"][i]["dsr"]``); ``None`` when it is
    missing or has no DSR."""
    if not dsr_info or dsr_info.get("dsr") is None:
        return None
    labels = ["DSR (vs SR0)", "PSR (vs 0)"]
    values = [float(dsr_info["dsr"]), float(dsr_info.get("psr", np.nan))]
    fig = go.Figure(go.Bar(
        x=values, y=labels, orientation="h", text=[f"{v:.3f}" for v in values],
        textposition="auto", marker={"color": [_color(0), _color(1)]},
        hovertemplate="%{y}: %{x:.4f}<extra></extra>",
    ))
    fig.add_vline(x=0.95, line={"color": "#7f7f7f", "dash": "dot"},
                  annotation_text="0.95", annotation_position="top")
    details = ", ".join(
        f"{name} {_fmt(dsr_info.get(key), spec)}"
        for name, key, spec in (("N", "n_trials", "d"), ("T", "n_obs", "d"),
                                ("SR", "sr", ".4f"), ("SR0", "sr0", ".4f"))
        if dsr_info.get(key) is not None
    )
    fig.update_layout(
        template=TEMPLATE, showlegend=False, height=300,
        title=f"Diagnostic DSR of the search's best (full-budget N): {values[0]:.3f}"
              + (f" ({details}; Sharpe per bar)" if details else ""),
        xaxis={"title": "probability that the true Sharpe ratio exceeds the benchmark",
               "range": [0, 1]},
        yaxis_title="",
    )
    return fig
