"""The report's words and tables, as HTML: the verdict block that opens it, the run summary,
the environment, the top-k table, the fold-by-fold table and the reproducibility check.

Plain HTML (no JavaScript) so that a table wraps its text instead of scrolling inside a
canvas, needs no chart library, and takes exactly the room it needs. Every builder takes the
plain dicts of a run folder (``sweep_results_*.json``, ``gpu_repro_*.json``) and returns an
HTML string, or ``None`` when the run has nothing to show there; the analysis notebook shows
them with :func:`cryptosweep.reporting.display.show`. Numbers are written by
:mod:`cryptosweep.core.formatting`, flags come from :mod:`cryptosweep.judging.caveats`, and the
decision from
:func:`cryptosweep.judging.verdict.verdict`.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from typing import Any

from cryptosweep.core.formatting import (
    MISSING,
    count,
    metric_name,
    param_lines,
    param_value,
    percent,
    share,
    signed,
    wall_time,
)
from cryptosweep.judging.caveats import (
    fold_scores,
    fold_stability,
    fold_trades,
    min_trades_of,
    small_sample,
)
from cryptosweep.judging.explained import explained
from cryptosweep.judging.selection import gate_dsr
from cryptosweep.judging.verdict import Verdict, verdict

#: The marker of a score measured on fewer than ``reporting.min_trades`` trades.
SMALL_SAMPLE_MARK = "†"

STYLE = """<style>
.cs-verdict{border:2px solid #888;border-left-width:10px;border-radius:4px;padding:.6em 1em;
 margin:.5em 0 1.2em;font-family:sans-serif;max-width:70em}
.cs-verdict.cs-positive{border-color:#1a7f37;background:#f0faf2}
.cs-verdict.cs-negative{border-color:#c62828;background:#fdf1f1}
.cs-verdict .cs-label{font-size:1.6em;font-weight:bold;margin:0 0 .2em}
.cs-verdict .cs-reason{font-size:1.1em;margin:.2em 0 .6em}
.cs-numbers{display:flex;gap:1.5em;flex-wrap:wrap;margin:.4em 0}
.cs-number{flex:1 1 0;min-width:10em}.cs-number b{display:block;font-size:1.4em}
.cs-number span{color:#555;font-size:.9em}
table.cs-table{border-collapse:collapse;font-family:sans-serif;font-size:.9em;margin:.4em 0 1em}
table.cs-table th,table.cs-table td{border:1px solid #ccc;padding:3px 8px;text-align:right;
 vertical-align:top}
table.cs-table th{background:#e8eef7}
table.cs-table td.cs-text,table.cs-table th.cs-text{text-align:left}
table.cs-table td.cs-params{text-align:left;font-family:monospace;font-size:.95em;
 white-space:nowrap}
.cs-small{color:#b35c00;font-weight:bold}
.cs-flags{margin:.3em 0 .2em 1.2em;padding:0}.cs-flags li{margin:.15em 0}
.cs-caption{font-family:sans-serif;color:#444;font-size:.9em;max-width:70em;margin:.2em 0}
.cs-pass{color:#1a7f37;font-weight:bold}.cs-fail{color:#c62828;font-weight:bold}
</style>"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _metric(results: Mapping[str, Any]) -> str:
    return ((results.get("config") or {}).get("objective") or {}).get("metric", "sharpe")


def _table(header: Sequence[str] | None, rows: Sequence[Sequence[str]], *,
           text_columns: Sequence[int] = (0,), caption: str | None = None,
           css: str = "cs-table") -> str:
    """``header`` escaped (``None``: no header row); ``rows`` are HTML cells already (a
    ``<td>`` is added around each unless the cell starts with ``<td``)."""
    head = "".join(f'<th class="cs-text">{_e(h)}</th>' if i in text_columns else f"<th>{_e(h)}</th>"
                   for i, h in enumerate(header or []))
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            if cell.startswith("<td"):
                cells.append(cell)
            elif i in text_columns:
                cells.append(f'<td class="cs-text">{cell}</td>')
            else:
                cells.append(f"<td>{cell}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    title = f'<p class="cs-caption">{caption}</p>' if caption else ""
    thead = f"<thead><tr>{head}</tr></thead>" if header else ""
    return f'{title}<table class="{css}">{thead}<tbody>{"".join(body)}</tbody></table>'


def _score_with_trades(score: Any, trades: Any, min_trades: int) -> str:
    """``-3.08 (11 trades†)`` with the small-sample mark and a tooltip."""
    if score is None:
        return MISSING
    if trades is None:
        return _e(signed(score))
    if small_sample(trades, min_trades):
        return (f'{_e(signed(score))} <span class="cs-small" title="fewer than {min_trades} '
                f'trades: small sample">({int(trades)} trades{SMALL_SAMPLE_MARK})</span>')
    return f"{_e(signed(score))} ({int(trades)} trades)"


# -------------------------------------------------------------------------------- verdict


def verdict_block(results: Mapping[str, Any], decided: Verdict | None = None) -> str:
    """The report's first block: the decision in capitals, its one-sentence reason, the three
    numbers that carry it (holdout score with its trades and dates, DSR, PBO), the criteria and
    the caveats. ``id="verdict"``. It carries the stylesheet of every block here (:data:`STYLE`),
    so it must be shown first."""
    decided = decided or verdict(results)
    run = results.get("run") or {}
    tone = "cs-positive" if decided.positive else "cs-negative"
    when = _when(run.get("created_at"))
    name = metric_name(decided.metric)
    trades = (MISSING if decided.holdout_trades is None else
              f"{decided.holdout_trades} trades" + (
                  f' <span class="cs-small">small sample{SMALL_SAMPLE_MARK}</span>'
                  if decided.holdout_small_sample else ""))
    holdout = (results.get("data") or {}).get("holdout") or {}
    if holdout.get("first_bar") and holdout.get("last_bar"):
        trades += f", {_e(holdout['first_bar'][:10])} to {_e(holdout['last_bar'][:10])}"
    numbers = [
        (signed(decided.holdout_score), f"holdout {_e(name)} of the winner, {trades}"),
        (share(decided.dsr), "deflated Sharpe ratio (≥ 0.95: unlikely to be luck)"),
        (share(decided.pbo), "probability of backtest overfitting (< 0.5 wanted)"),
    ]
    cards = "".join(f'<div class="cs-number"><b>{_e(value)}</b><span>{label}</span></div>'
                    for value, label in numbers)
    criteria = ""
    if decided.criteria:
        # The gate's criteria read as the text report and the nightly's log say them ("holdout
        # Sharpe at 2x costs +0.23 >= 0"), not by their keys ("stress"), which said nothing of
        # what was tested or which way the threshold goes.
        rows = [[_e(c.text or c.name), _e(_criterion_value(c.value)),
                 _e(_criterion_value(c.threshold)),
                 '<span class="cs-pass">pass</span>' if c.passed
                 else '<span class="cs-fail">fail</span>'] for c in decided.criteria]
        criteria = _table(["criterion", "value", "threshold", ""], rows,
                          caption=f"Decided by the {_e(decided.basis)}:")
    flags = ""
    if decided.flags:
        flags = ('<p class="cs-caption">Caveats:</p><ul class="cs-flags">'
                 + "".join(f"<li>{_e(flag)}</li>" for flag in decided.flags) + "</ul>")
    heading = (f"Verdict for {_e(run.get('name', '?'))}" + (f", {when} UTC" if when else ""))
    return (f'{STYLE}<div id="verdict" class="cs-verdict {tone}">'
            f'<p class="cs-caption">{heading}</p>'
            f'<p class="cs-label">{_e(decided.label)}</p>'
            f'<p class="cs-reason">{_e(decided.reason)}</p>'
            f'<div class="cs-numbers">{cards}</div>{criteria}{flags}</div>')


def _criterion_value(value: Any) -> str:
    if isinstance(value, float):
        return param_value(value)
    return MISSING if value is None else str(value)


# ---------------------------------------------------------------------------------- top-k


def top_k_table(results: Mapping[str, Any]) -> str | None:
    """The top-k configurations a person can read: rank, family, validation score ± its
    standard deviation across folds, validation trades, holdout score with its trades, holdout
    max drawdown, hit rate and exposure, DSR, the stability flag, and the parameters as
    ``name = value`` (rounded; full precision is in the JSON). ``None`` without a top-k."""
    top = results.get("top_k") or []
    if not top:
        return None
    metric, min_trades = _metric(results), min_trades_of(results)
    name = metric_name(metric)
    rows = []
    for item in [*top, *_baseline_items(results)]:
        metrics = item.get("metrics") or {}
        holdout = item.get("holdout") or {}
        scores = fold_scores(metrics, metric)
        stability = fold_stability(scores) if scores else None
        validation = _e(signed(item.get("score")))
        if stability is not None and len(scores) > 1:
            validation += f" ± {stability.spread:.2f}"
        note = stability.note() if stability is not None else None
        if metrics.get("penalty"):
            note = f"{note}; {metrics['penalty']}" if note else metrics["penalty"]
        params = item.get("params") or {}
        lines = ([f"<i>{_e(line)}</i>" for line in param_lines(params.get("trading") or {})]
                 + [_e(line) for line in param_lines(params.get("entry_model") or {})])
        if item.get("baseline"):
            note, lines = "baseline", [_e(BASELINE_NOTES.get(item["baseline"], ""))]
        family = _e(params.get("model", "?"))
        if (item.get("edge") or {}).get("label"):  # it does not beat flat (judging/edge.py)
            family += f' <span class="cs-fail">{_e(item["edge"]["label"])}</span>'
        rows.append([
            _e(item.get("rank", MISSING)), _e(item.get("eval_id", MISSING)),
            family, validation, count(metrics.get("n_trades")),
            _score_with_trades(holdout.get(f"holdout_{metric}"), holdout.get("holdout_trades"),
                               0 if item.get("baseline") else min_trades),
            percent(holdout.get("holdout_max_drawdown")),
            percent(holdout.get("holdout_hit_rate"), 0),
            percent(holdout.get("holdout_exposure"), 0),
            share((item.get("dsr") or {}).get("dsr")),
            f'<td class="cs-text">{_e(note) if note else "stable"}</td>',
            f'<td class="cs-params">{"<br>".join(lines)}</td>',
        ])
    header = ["rank", "eval", "family", f"validation {name} ± sd", "validation trades",
              f"holdout {name}", "holdout max DD", "holdout hit rate", "holdout exposure",
              "DSR (full-budget N)", "folds", "parameters (trading in italics)"]
    caption = (f"Validation: mean {_e(name)} over the purged walk-forward folds ± its standard "
               f"deviation across folds. Holdout: the untouched most recent bars. "
               f"{SMALL_SAMPLE_MARK} = fewer than {min_trades} trades (reporting.min_trades). "
               "'folds' flags a mean that only one fold makes positive. Parameters rounded to "
               "3 significant digits; full precision in sweep_results_*.json. Flat and "
               "buy-and-hold, when shown, ran on the same bars; 'no edge': a configuration "
               "that does not beat flat on validation and holdout.")
    return _table(header, rows, text_columns=(2,), caption=caption)


#: What each baseline is, for the top-k table.
BASELINE_NOTES = {
    "flat": "never trades",
    "buy_and_hold": "long from each block's first open to its last close",
}
BASELINE_NAMES = {"flat": "flat", "buy_and_hold": "buy-and-hold"}


def _baseline_items(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The results' baselines (``baselines.flat``, ``baselines.buy_and_hold``: ``score``,
    ``folds`` and ``holdout`` as a trial has them) in the shape of a top-k entry; empty when
    the results carry none."""
    baselines = results.get("baselines")
    if not isinstance(baselines, Mapping):
        return []
    items = []
    for key in ("flat", "buy_and_hold"):
        entry = baselines.get(key)
        if not isinstance(entry, Mapping):
            continue
        folds = entry.get("folds") or []
        items.append({
            "baseline": key, "rank": MISSING, "eval_id": MISSING,
            "params": {"model": BASELINE_NAMES[key]}, "score": entry.get("score"),
            "metrics": {"folds": folds, "n_trades": sum(int(f.get("trades", 0)) for f in folds),
                        "fold_trades": [int(f.get("trades", 0)) for f in folds]},
            "holdout": entry.get("holdout"),
        })
    return items


# ------------------------------------------------------------------------------ per fold


def fold_table(results: Mapping[str, Any], fold_labels: Sequence[str] | None = None
               ) -> str | None:
    """Fold by fold for the top-k: each fold's score (the config's metric) and trades, cells
    shaded from red (negative) to green (positive), small samples marked; then the mean, the
    standard deviation and the stability flag. ``fold_labels`` (e.g. the test blocks' dates)
    head the fold columns. ``None`` when no top-k entry has per-fold metrics."""
    top = [item for item in results.get("top_k") or []
           if fold_scores(item.get("metrics"), _metric(results))]
    if not top:
        return None
    top += [item for item in _baseline_items(results)
            if fold_scores(item.get("metrics"), _metric(results))]
    metric, min_trades = _metric(results), min_trades_of(results)
    n_folds = max(len(fold_scores(item.get("metrics"), metric)) for item in top)
    labels = list(fold_labels or [])
    header = ["rank", "eval"] + [
        f"fold {k + 1}" + (f" ({labels[k]})" if k < len(labels) else "") for k in range(n_folds)
    ] + ["mean", "sd", "carried by one fold?"]
    rows = []
    for item in top:
        scores = fold_scores(item.get("metrics"), metric)
        trades = fold_trades(item.get("metrics"))
        stability = fold_stability(scores)
        cells = ([_e(item["params"]["model"]), MISSING] if item.get("baseline")
                 else [_e(item.get("rank")), _e(item.get("eval_id"))])
        for k in range(n_folds):
            if k >= len(scores):
                cells.append(MISSING)
                continue
            t = trades[k] if k < len(trades) else None
            few = small_sample(t, min_trades) and not item.get("baseline")
            text = (f"{_e(signed(scores[k]))}<br><small"
                    + (' class="cs-small"' if few else "")
                    + f">{count(t)} trades{SMALL_SAMPLE_MARK if few else ''}</small>")
            cells.append(f'<td style="background:{_shade(scores[k])}">{text}</td>')
        cells += [_e(signed(stability.mean)), f"{stability.spread:.2f}",
                  f'<td class="cs-text">{_e(stability.note() or "no")}</td>']
        rows.append(cells)
    caption = (f"{_e(metric_name(metric))} of each walk-forward test block (fold) for the top "
               f"configurations. A mean is 'carried by one fold' when it is positive but the "
               f"mean of the other folds is ≤ 0. {SMALL_SAMPLE_MARK} = fewer than {min_trades} "
               "trades.")
    return _table(header, rows, text_columns=(n_folds + 4,), caption=caption)


def _shade(score: float, scale: float = 3.0) -> str:
    """A background from red (≤ -scale) through white (0) to green (≥ +scale)."""
    level = max(-1.0, min(1.0, score / scale))
    alpha = abs(level) * 0.55
    colour = "26,152,80" if level > 0 else "215,48,39"
    return f"rgba({colour},{alpha:.2f})"


# ---------------------------------------------------------------------- run and machine


def summary_table(results: Mapping[str, Any]) -> str:
    """The run at a glance: name, strategy, seed, config hash, evaluation counts, budget, wall
    time, host, data, the winner, reproducibility and overfitting."""
    run = results.get("run") or {}
    counts = results.get("counts") or {}
    strategy = results.get("strategy") or {}
    rows: list[tuple[str, Any]] = [
        ("run", run.get("name")),
        ("strategy", _strategy_text(results.get("sweep_type"), strategy)),
        ("seed", results.get("seed")),
        ("config hash", results.get("config_hash")),
        ("evaluations", f"{counts.get('evaluations', 0)} ({counts.get('done', 0)} done, "
                        f"{counts.get('failed', 0)} failed, {run.get('retried', 0)} retried)"),
        ("budget spent", f"{results.get('budget_spent', 0):g} units"
                         + (f" of {strategy['total_budget']:g} planned"
                            if strategy.get("total_budget") is not None else "")),
        ("wall time", wall_time(run)),
        ("started (UTC)", _when(run.get("created_at"))),
        ("finished (UTC)", _when(run.get("finished_at"))),
        ("host", run.get("host")),
        ("run folder", run.get("run_dir")),
    ]
    data = results.get("data") or {}
    if data:
        rows.append(("data", f"{data.get('path')} ({data.get('bars')} bars, "
                             f"{data.get('first_bar')} to {data.get('last_bar')})"))
        if data.get("holdout_bars"):
            rows.append(("holdout", f"{data['holdout_bars']} bars from "
                                    f"{data.get('holdout_first_bar')}"))
        rows.append(("data SHA-256", data.get("sha256")))
    best = results.get("best")
    if best:
        rows.append(("best", f"eval {best['eval_id']} ({best['params']['model']}), "
                             f"validation {signed(best.get('score'), 4)}"))
    checks = results.get("reproducibility_check")
    if checks:
        rows.append(("reproducibility re-run",
                     ", ".join(f"eval {c['eval_id']}: {c['status']}" for c in checks)))
    overfitting = results.get("overfitting") or {}
    judged = gate_dsr(results)  # the DSR the gate judged, not the full-budget diagnostic's
    if judged.get("dsr") is not None:
        rows.append(("deflated Sharpe ratio (the gate's)",
                     f"{judged['dsr']:.3f} (N {judged['n_trials']}, {judged['basis']})"))
    if overfitting.get("pbo"):
        rows.append(("PBO", f"{overfitting['pbo']['pbo']:.3f}"))
    if overfitting.get("why_not"):
        rows.append(("overfitting note", overfitting["why_not"]))
    rows = [(k, v) for k, v in rows if v is not None]
    return _table(None, [[f"<b>{_e(k)}</b>", _e(v)] for k, v in rows], text_columns=(0, 1),
                  caption="The run")


def environment_table(environment: Mapping[str, Any]) -> str:
    """What the run ran on (``gpu_repro_*.json``): Python, packages, CPU, GPUs and driver,
    git commit, and the determinism settings that could not be applied."""
    gpus = environment.get("gpus") or {}
    devices = gpus.get("devices") or []
    packages = environment.get("packages") or {}
    rows: list[tuple[str, Any]] = [
        ("python", environment.get("python")),
        ("platform", environment.get("platform")),
        ("CPUs", environment.get("cpu_count")),
        ("GPUs", ", ".join(f"{d['index']}: {d['name']}" for d in devices)
         or f"none ({gpus.get('reason')})"),
        ("driver / CUDA", f"{gpus.get('driver_version')} / {gpus.get('cuda_driver_version')}"
         if devices else MISSING),
        ("git commit", environment.get("git_commit")),
        ("not set", "; ".join(environment.get("not_set") or []) or MISSING),
        ("packages", ", ".join(f"{k} {v}" for k, v in sorted(packages.items()) if v)),
    ]
    return _table(None, [[f"<b>{_e(k)}</b>", _e(MISSING if v is None else v)] for k, v in rows],
                  text_columns=(0, 1), caption="The machine and software")


def statistics_table(results: Mapping[str, Any]) -> str | None:
    """Every statistic of the verdict with what it means, in plain words
    (:func:`cryptosweep.judging.explained.explained`); None for a run without them."""
    rows = explained(results)
    if not rows:
        return None
    return _table(["statistic", "value", "what it means here"],
                  [[_e(row.name), _e(row.value), _e(row.meaning)] for row in rows],
                  text_columns=(0, 2),
                  caption="Statistics of the verdict (docs/statistics.md: formulas and "
                          "references)")


def reproducibility_table(results: Mapping[str, Any]) -> str | None:
    """PASS/FAIL per top-k configuration: each was re-run with its recorded seed and its
    metrics (including the SHA-256 of its per-bar returns) compared bit for bit."""
    checks = results.get("reproducibility_check") or []
    if not checks:
        return None
    rows = [[f"eval {_e(c['eval_id'])}",
             '<span class="cs-pass">PASS</span>' if c["status"] == "PASS"
             else f'<span class="cs-fail">{_e(c["status"])}</span>',
             _e(signed((c.get("original") or {}).get("score"), 6)),
             _e(signed((c.get("rerun") or {}).get("score"), 6)),
             _e(str((c.get("rerun") or {}).get("returns_sha256", ""))[:16])] for c in checks]
    failed = sum(c["status"] != "PASS" for c in checks)
    caption = ("The winner re-ran bit for bit." if len(checks) == 1 and not failed
               else "Every re-run matched bit for bit." if not failed
               else f"{failed} of {len(checks)} re-runs DIFFER.")
    return _table(["configuration", "re-run", "recorded score", "re-run score",
                   "returns SHA-256 (re-run)"], rows, caption=caption)


def _strategy_text(sweep_type: Any, strategy: Mapping[str, Any]) -> str:
    name = strategy.get("name") or sweep_type or "?"
    details = [f"{key} {strategy[key]}" for key in ("max_iter", "eta", "iterations", "sampler",
                                                     "n_trials")
               if strategy.get(key) is not None]
    return f"{name}" + (f" ({', '.join(details)})" if details else "")


def _when(ts: Any) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(float(ts), tz=dt.UTC).strftime("%Y-%m-%d %H:%M")


def _n(value: Any, spec: str = ".2f") -> str:
    return MISSING if value is None else format(float(value), spec)


def cpcv_table(results: Mapping[str, Any]) -> str | None:
    """Per top-k entry the distribution of its CPCV path Sharpe ratios (annualised): the
    quantiles, the share of positive paths; None when the run did not run CPCV."""
    block = (results.get("statistics") or {}).get("cpcv") or {}
    entries = block.get("entries") or []
    if not entries:
        return None
    rows = []
    for entry in entries:
        q = entry.get("quantiles") or {}
        rows.append([_e(entry["rank"]), _e(entry["eval_id"]), _e(entry["n_paths"]),
                     *(_e(_n(q.get(key))) for key in ("0.1", "0.25", "0.5", "0.75", "0.9")),
                     _e(f"{100 * entry['fraction_positive']:.0f}%")])
    return _table(["rank", "eval", "paths", "p10", "p25", "median", "p75", "p90", "positive"],
                  rows, caption=f"CPCV: annualised Sharpe ratio of each backtest path, "
                  f"{block.get('test_groups')} of {block.get('groups')} purged groups tested "
                  "per split (López de Prado 2018, ch. 12)")


def regime_table(results: Mapping[str, Any]) -> str | None:
    """The winner's and the baselines' Sharpe ratio (annualised), stretches in the market
    (:func:`~cryptosweep.judging.robustness.per_regime`'s ``trades``: runs cut at regime
    borders) and the share of them positive per market regime, on the holdout and the
    validation bars; None without regimes."""
    block = (results.get("statistics") or {}).get("regimes") or {}
    rows = []
    for kind in ("holdout", "validation"):
        for name, table in (block.get(kind) or {}).items():
            for row in table:
                rows.append([_e(kind), _e(name), _e(row["regime"]), _e(row["bars"]),
                             _e(_n(row.get("sharpe"))), _e(row["trades"]),
                             _e(_n(row.get("hit_rate")))])
    if not rows:
        return None
    caveats = block.get("caveats") or []
    caption = ("Per market regime (trend up/down/sideways × volatility high/low, from past bars "
               "only): annualised Sharpe ratio; stretches in the market (runs of bars with a "
               "non-zero return, cut where the regime changes, so a trade that spans two "
               "regimes counts in each and back-to-back trades count once: not the trade "
               "count) and the share of them that made money"
               + ("; " + "; ".join(_e(c) for c in caveats) if caveats else ""))
    return _table(["bars", "who", "regime", "n", "Sharpe", "stretches in the market",
                   "share positive"], rows,
                  text_columns=(0, 1, 2), caption=caption)


def markets_table(results: Mapping[str, Any]) -> str | None:
    """Per top-k entry its score on each other market, the spread and how many it holds on;
    None without other markets."""
    block = (results.get("statistics") or {}).get("markets") or {}
    entries, names = block.get("entries") or [], block.get("markets") or []
    if not entries:
        return None
    rows = [[_e(e["rank"]), _e(e["eval_id"]), _e(_n(e.get("home_score"))),
             *(_e(f"failed: {(e.get('errors') or {})[name]}"
                  if name in (e.get("errors") or {})
                  else f"{_n(e['scores'].get(name))} ({e['trades'].get(name) or 0} trades)")
               for name in names),
             _e(_n(e.get("mean"))), _e(_n(e.get("std"))), _e(e["line"])] for e in entries]
    return _table(["rank", "eval", "this market", *names, "mean", "spread (std)", "holds"],
                  rows, text_columns=(len(names) + 5,),
                  caption=f"Other markets: {_metric(results)} of each configuration re-fitted "
                  "with its own purged walk-forward folds on each market")
