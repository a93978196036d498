"""The walk-forward's text report (``walkforward_report_<ts>.txt``): the verdict first, then
the out-of-sample track against the baselines, walk-forward efficiency, the DSR, one line per
window and the parameters' stability."""

from __future__ import annotations

from typing import Any

from cryptosweep.core.formatting import metric_name, param_value, percent, share, signed


def wfe(value: Any) -> str:
    """Walk-forward efficiency as people read it: ``undefined`` where it is not defined
    (:func:`~cryptosweep.walkforward.analysis.efficiency`)."""
    return "undefined" if value is None else signed(value)


def text_report(results: dict[str, Any]) -> str:
    """The report of a ``walkforward_results_*.json`` dict, as plain text."""
    metric = results["metric"]
    name = metric_name(metric)
    verdict = results["verdict"]
    oos = results["out_of_sample"]
    config = results["config"]
    settings = config["walk_forward"]
    lines = [
        f"VERDICT: {verdict['label']}: {verdict['reason']}",
        f"  {verdict['headline']}",
        "",
        f"walk-forward {results['run']['name']}: {len(results['windows'])} windows "
        f"({'anchored' if settings['anchored'] else 'rolling'} in-sample, "
        f"{settings['out_of_sample_bars']} out-of-sample bars each, embargo "
        f"{settings['embargo_bars']} bars), {config['sweep_type']} search per window, "
        f"master seed {results['seed']}",
        f"out of sample: {oos['first_bar']} .. {oos['last_bar']} ({oos['bars']} bars)",
        "",
        f"  {'':<14}{name:>10}{'total':>10}{'max DD':>10}{'trades':>8}",
    ]
    rows = [("process", oos["metrics"])] + [
        (baseline.replace("_", "-"), block["metrics"])
        for baseline, block in oos["baselines"].items()]
    for label, metrics in rows:
        lines.append(f"  {label:<14}{signed(metrics[metric]):>10}"
                     f"{percent(metrics['total_return']):>10}"
                     f"{percent(metrics['max_drawdown']):>10}{metrics['trades']:>8}")
    dsr = results["dsr"]
    lines += [
        "",
        f"walk-forward efficiency (annualised OOS / IS return): overall "
        f"{wfe(results['efficiency']['overall'])} (defined when both are gains and "
        "IS > 1 %)",
        f"PSR(0) of the out-of-sample track: {share(dsr.get('psr'))}; DSR: "
        f"{share(dsr.get('dsr'))} over N={results.get('n_designs')} walk-forward designs (the "
        f"configurations one window's search tried; {results['n_configurations']} over all "
        "windows)" + (f" ({dsr['why_not']})" if dsr.get("why_not") else "")
        + ({"no_skill": ", SR0 from the variance of a Sharpe ratio without skill",
            "trials": ", SR0 from the spread of the windows' Sharpe ratios"}
           .get(dsr.get("dsr_variance"), "")),
        "",
        "windows (IS: the winner's validation score in its window; OOS: what the process "
        "traded on the segment, and why):",
        f"  {'#':>2} {'out-of-sample from':<26}{'IS':>8}{'OOS':>8}{'B&H':>8}{'trades':>7}"
        f"{'WFE':>10}  gate -> traded",
    ]
    for row in results["windows"]:
        gate = row["decision"] or "-"
        lines.append(f"  {row['window']:>2} {row['oos_first_bar']:<26}{signed(row['is_score']):>8}"
                     f"{signed(row['oos_score']):>8}{signed(row['buy_and_hold_score']):>8}"
                     f"{row['oos_trades']:>7}{wfe(row['efficiency']):>10}  {gate} -> "
                     f"{row['process']['text']}")
    lines += ["", "winners' parameters by window (stability: mean move as a share of the "
              "range; changes between windows):"]
    stability = results["parameters"]["stability"]
    for key, values in results["parameters"]["paths"].items():
        entry = stability.get(key, {})
        moved = (f"mean step {share(entry['mean_step'])}, " if "mean_step" in entry else "")
        shown = ", ".join(param_value(v) if v is not None else "-" for v in values)
        lines.append(f"  {key:<32} {shown}  ({moved}{entry.get('changes', 0)} changes)")
    lines += ["", "each window is a run folder (window_NN) with its own sweep results; the HTML "
              f"report: cryptosweep report {results['run']['run_dir']}", ""]
    return "\n".join(lines)
