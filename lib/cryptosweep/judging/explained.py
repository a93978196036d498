"""Every statistic of a run's verdict in plain words: one row per number, with the value as
people read it and a sentence saying what it means for this run. The text report and the HTML
report both show these rows (``docs/statistics.md`` gives the formulas and references).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptosweep.judging.selection import gate_dsr


@dataclass(frozen=True)
class Explained:
    """One statistic: its name, its value as text, and what it means here."""

    name: str
    value: str
    meaning: str


def _f(value: Any, spec: str = ".2f") -> str:
    return "–" if value is None else format(float(value), spec)


#: How the expected maximum was sized, by ``deployment.dsr_variance`` (a run made before the
#: choice existed used the trials' variance).
_LUCK = {
    "no_skill": "from the luck a Sharpe ratio measured on these bars has when there is no skill",
    "trials": "from how much the Sharpe ratios of the trials differ",
}


def explained(results: Mapping[str, Any]) -> list[Explained]:
    """The rows for ``results`` (empty for a run made before these statistics existed)."""
    stats = results.get("statistics") or {}
    rows: list[Explained] = []
    ledger = stats.get("ledger") or {}
    selection = stats.get("selection") or {}
    gate_basis = gate_dsr(results).get("basis")
    if ledger:
        rows.append(Explained(
            "trials counted", f"{ledger.get('n_trials')} ({ledger.get('n_evaluations')} "
            f"evaluations, {ledger.get('n_runs')} run(s)"
            + (f"; {ledger['n_inner']} of the trials from inner threshold searches"
               if ledger.get("n_inner") else "") + ")",
            f"every configuration and seed tried on overlapping bars of this market in the "
            f"last {ledger.get('window_days', 0):g} days, tonight included: the winner is the "
            "best of all of them"
            + (", and its luck is judged against that many tries" if gate_basis == "ledger"
               else "; the gate judges its luck against the effective number of them (below)")))
    dsr = selection.get("dsr") or {}
    if dsr.get("dsr") is not None:
        luck = _LUCK[selection.get("dsr_variance", "trials")]
        rows.append(Explained(
            "deflated Sharpe ratio" + (" (the gate's)" if gate_basis == "ledger" else ""),
            _f(dsr["dsr"], ".3f"),
            f"the probability that the winner's true Sharpe ratio beats the best of "
            f"{dsr['n_trials']} tries with no skill at all (expected maximum "
            f"{_f(dsr.get('sr0_annualised'))} a year, {luck}); 0.95 or more is needed"))
    effective = selection.get("dsr_effective") or {}
    if effective.get("dsr") is not None:
        clustered = selection.get("effective_trials") or {}
        outside = clustered.get("n_unclustered") or 0
        rows.append(Explained(
            "DSR with the effective number of trials"
            + (" (the gate's)" if gate_basis == "effective" else ""), _f(effective["dsr"], ".3f"),
            f"the same, counting trials whose returns move together as fewer: "
            f"{clustered.get('n_independent', clustered.get('n_effective'))} independent "
            f"trials ({clustered.get('n_effective')} groups) among "
            f"{clustered.get('n_clustered')} return series tonight"
            + (f" (compared on the {clustered['n_bars']} most recent validation bars every "
               "one of them was scored on)" if clustered.get("n_bars") else "")
            + (f", plus {outside} other trial(s) of the ledger" if outside else "")
            + (" (the gate uses this count)" if gate_basis == "effective"
               else " (for reading; the gate uses the full count)")))
    if selection.get("min_backtest_years") is not None:
        rows.append(Explained(
            "minimum backtest length", f"{_f(selection['min_backtest_years'])} years",
            f"with this many trials, fewer years of data than this let an unskilled "
            f"configuration show an annual Sharpe ratio of 1 by chance; the folds cover "
            f"{_f(selection.get('sample_years'))} years"))
    haircut = selection.get("haircut") or {}
    if haircut.get("haircut_sharpe") is not None:
        rows.append(Explained(
            "haircut Sharpe ratio", f"{_f(haircut['haircut_sharpe'])} "
            f"(from {_f(haircut['sharpe'])})",
            f"what the winner's annual Sharpe ratio is worth once {dsr.get('n_trials', '?')} "
            f"tries are accounted for (Holm), a {100 * haircut['haircut']:.0f}% haircut"))
    pbo = (results.get("overfitting") or {}).get("pbo") or {}
    if pbo:
        rows.append(Explained(
            "probability of backtest overfitting", _f(pbo["pbo"]),
            "how often the configuration that looks best on half of the history is below the "
            "median on the other half; above 0.5, choosing by the backtest is worse than a "
            "coin"
            + (f" (every configuration tried, on the {pbo['n_bars']} most recent validation "
               f"bars all of them were scored on, in {pbo.get('n_splits')} blocks)"
               if pbo.get("n_bars") else "")))
        if pbo.get("probability_of_loss") is not None:
            rows.append(Explained(
                "probability of out-of-sample loss", _f(pbo["probability_of_loss"]),
                "how often the in-sample best loses money out of sample"))
        if pbo.get("degradation_slope") is not None:
            rows.append(Explained(
                "out-of-sample / in-sample slope", _f(pbo["degradation_slope"]),
                "below 0: the better a configuration looked in sample, the worse it did out "
                "of sample"))
    holdout = stats.get("holdout") or {}
    if holdout:
        idle = any("do not vary" in why for why in holdout.get("why_not") or [])
        rows.append(Explained(
            "holdout PSR(0)", _f(holdout.get("psr0"), ".3f"),
            "the probability that the winner's true Sharpe ratio on unseen bars is above 0"
            + (": none, the winner did not trade on the holdout" if idle else "")))
        permutation = holdout.get("permutation") or {}
        if permutation:
            rows.append(Explained(
                "holdout vs random entries (p)", _f(permutation["p_value"], ".3f"),
                f"the share of {permutation['n_draws']} random placements of the same "
                f"{permutation['n_trades']} trades that did at least as well, each scored by "
                "the market's return over the bars it held (close to close, less costs; not "
                "its stop or take-profit fill): small means the entries' timing, not the "
                "market's drift, made the return; slightly liberal (docs/statistics.md)"))
        alpha = holdout.get("alpha") or {}
        if alpha:
            rows.append(Explained(
                "alpha t-statistic vs buy-and-hold", _f(alpha["t_stat"]),
                "the return not explained by holding the market, in standard errors "
                "(about 2 or more is evidence)"))
        mintrl = holdout.get("min_track_record_bars")
        sharpe = holdout.get("sharpe_per_bar")
        if idle:
            verdict = ": the winner did not trade on the holdout"
        elif mintrl is None and sharpe is not None and sharpe <= 0:
            verdict = (": the holdout's Sharpe ratio is not above 0, so no length of such a "
                       "record would show it beats 0")
        elif mintrl is None or mintrl > (holdout.get("n_bars") or 0):
            verdict = ": the holdout is too short to tell"
        else:
            verdict = ""
        rows.append(Explained(
            "minimum track record length",
            f"{_f(mintrl, '.0f')} bars (holdout: {holdout.get('n_bars')})",
            "how many bars a record like the holdout's needs before it is 95% sure to "
            "beat 0" + verdict))
    if "holdout_looks" in stats:
        rows.append(Explained(
            "looks at this holdout", str(stats["holdout_looks"]),
            "every end of a sweep, evaluation or unlock that looked at these holdout bars; "
            "each look spends some of its independence"))
    neighbourhood = stats.get("neighbourhood") or {}
    if neighbourhood.get("label"):
        rows.append(Explained(
            "neighbourhood", f"{neighbourhood['label']} (median {_f(neighbourhood['median'])}, "
            f"{100 * neighbourhood['fraction_positive']:.0f}% positive)",
            "the winner's neighbours, each parameter one step away, re-scored from scratch: "
            "a plateau is believable, a spike is a lucky point"))
    rows += _beyond_one_path(stats, (results.get("best") or {}).get("eval_id"))
    best = results.get("best") or {}
    rescore = best.get("rescore") or {}
    if rescore.get("mean") is not None:
        spread = f" ± {_f(rescore['std'])}" if rescore.get("std") is not None else ""
        rows.append(Explained(
            "winner re-scored from scratch", f"{_f(rescore['mean'])}{spread} over "
            f"{rescore['n_seeds']} seed(s)",
            "the score of the model production trains (from scratch), averaged over seeds; "
            "the winner is chosen by this, not by the search's own score "
            f"({_f(best.get('score'))})"))
    return rows


def _beyond_one_path(stats: Mapping[str, Any], winner: Any) -> list[Explained]:
    """The rows of the CPCV paths, the regimes and the other markets (the winner's)."""
    rows = []
    cpcv = stats.get("cpcv") or {}
    entry = next((e for e in cpcv.get("entries") or [] if e.get("eval_id") == winner), None)
    if entry is not None:
        q = entry.get("quantiles") or {}
        rows.append(Explained(
            "CPCV path Sharpe ratios", f"median {_f(q.get('0.5'))}, 25th percentile "
            f"{_f(q.get('0.25'))}, {100 * entry['fraction_positive']:.0f}% positive over "
            f"{entry['n_paths']} path{'' if entry['n_paths'] == 1 else 's'}",
            f"the winner re-fitted on every combination of {cpcv.get('test_groups')} of "
            f"{cpcv.get('groups')} purged groups of the development bars and traded on each "
            "of the backtest paths they form (annualised): one walk-forward path is one draw "
            "of these; a low percentile below 0 says the score depends on the path"))
    regimes = stats.get("regimes") or {}
    for kind in ("holdout", "validation"):
        table = (regimes.get(kind) or {}).get("winner")
        if table:
            # Bars still in the regimes' warm-up ("warmup" rows) have no regime.
            labelled = [row for row in table if row["regime"] != "warmup"]
            unlabelled = sum(int(row["bars"]) for row in table if row["regime"] == "warmup")
            positive = [row["regime"] for row in labelled if (row.get("sharpe") or 0) > 0]
            rows.append(Explained(
                f"{kind} by regime", f"positive in {len(positive)} of {len(labelled)} regimes",
                "the winner's Sharpe ratio in each trend/volatility regime of these bars "
                f"(labelled from past bars only){': ' + ', '.join(positive) if positive else ''}"
                + (f"; {unlabelled} bars without a regime (warm-up)" if unlabelled else "")
                + ("; " + "; ".join(regimes.get("caveats") or []) if regimes.get("caveats")
                   else "")))
            break
    markets = stats.get("markets") or {}
    entry = next((e for e in markets.get("entries") or [] if e.get("eval_id") == winner), None)
    if entry is not None:
        rows.append(Explained(
            "other markets", f"{entry['line']} (mean {_f(entry.get('mean'))}, worst "
            f"{_f(entry.get('min'))})",
            "the winner's configuration re-fitted and scored with its own purged folds on "
            f"each of {', '.join(markets.get('markets') or [])}: an edge that holds only on "
            "the market it was chosen on may be that market's noise"))
    return rows
