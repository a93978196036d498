"""The deployment gate: is a run's winner fit for production? A pure function of the results
(and, when a champion is deployed, of its re-evaluation on this run's holdout), so that the
results files, the text report, the HTML report, the nightly and its notification all say the
same thing in the same words.

The winner (``results["best"]``) is **approved** when every criterion passes, else
**rejected**. The thresholds are the config's ``deployment`` section
(:class:`~cryptosweep.core.config.DeploymentSettings`, as recorded in ``results["config"]``):

=================  ==============================================================  ==========
criterion          passes when                                                     default
=================  ==============================================================  ==========
``reproducible``   the replay of the winner's deployed path (from scratch, its      PASS
                   recorded seed) gave bitwise-equal metrics
``dsr``            its deflated Sharpe ratio >= ``min_dsr``, N = the effective     0.95
                   number of the trials (``trial_count: effective``) or every
                   configuration and seed of the trial ledger on overlapping bars
                   (``trial_count: ledger``)
``pbo``            the run's probability of backtest overfitting <= ``max_pbo``    0.5
``holdout_score``  its holdout ``objective.metric`` >= ``min_holdout_score``       0
``holdout_trades`` its holdout trades >= the small-sample threshold                30
                   (``min_holdout_trades``, else ``reporting.min_trades``)
``holdout_test``   its entries beat exposure-matched random entries on the         0.05
                   holdout: permutation p-value <= ``max_holdout_pvalue``
``stress``         its holdout ``objective.metric`` at ``stress_multiplier`` x     0
                   fees and slippage >= ``min_stress_score``
``champion``       (only with a deployed champion) its holdout score >= the        0, 0.05
                   champion's + ``min_improvement`` and a paired test on the same
                   bars says it is better at level ``champion_alpha``
=================  ==============================================================  ==========

``docs/statistics.md`` says what each number means and why these thresholds.

A criterion that cannot be evaluated (no holdout, a DSR that could not be computed, a champion
that could not be re-evaluated) does not pass: the gate approves only what it has checked.

The block (``results["deployment"]``, copied into ``best_configs_*.json``)::

    {"decision": "approved" | "rejected",
     "criteria": [{"name", "value", "threshold", "passed", "text"}, ...],
     "reason": "<one sentence>", "champion": {...} | None}

``text`` is the criterion as people read it (``"DSR 0.03 < 0.95"``); :func:`summary_line`
joins the failed ones for a notification (``"not promoted: DSR 0.03 < 0.95, holdout Sharpe
-3.08 < 0"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptosweep.core.formatting import against
from cryptosweep.core.settings import CPCVSettings, DeploymentSettings
from cryptosweep.core.vocabulary import APPROVED, METRIC_LABELS, REJECTED
from cryptosweep.judging.caveats import min_trades_of
from cryptosweep.judging.edge import holdout_score
from cryptosweep.judging.selection import gate_dsr

#: The criteria's names, in the order they are checked and listed.
CRITERIA = ("reproducible", "dsr", "pbo", "holdout_score", "holdout_trades", "holdout_test",
            "stress", "cpcv", "champion")


def decide(results: Mapping[str, Any], champion: Mapping[str, Any] | None = None
           ) -> dict[str, Any]:
    """The gate's decision on ``results`` (a ``sweep_results_*.json`` dict without its
    ``deployment`` block). ``champion``: None when no champion is deployed, else the
    champion's re-evaluation on this run's holdout (:func:`cryptosweep.sweep.champion.comparison`:
    ``holdout`` metrics or an ``error``, and ``notes``)."""
    settings = _settings(results)
    metric = results["config"]["objective"]["metric"]
    best = results.get("best")
    if not best:
        return {"decision": REJECTED, "criteria": [],
                "reason": "Rejected: no evaluation finished at the full budget, so there is "
                          "no winner to deploy.", "champion": _champion_block(champion)}
    overfitting = results.get("overfitting") or {}
    statistics = results.get("statistics") or {}
    criteria = [
        _reproducible(results, best),
        _dsr(gate_dsr(results), settings.min_dsr),
        _pbo(overfitting, settings.max_pbo),
        _holdout_score(best, metric, settings.min_holdout_score, results),
        _holdout_trades(best, min_trades_of(results), results),
    ]
    if "holdout" in statistics and settings.max_holdout_pvalue < 1:
        criteria.append(_holdout_test(statistics["holdout"], settings.max_holdout_pvalue))
    if "holdout" in statistics and settings.min_stress_score is not None:
        criteria.append(_stress(best, metric, settings.min_stress_score, results))
    cpcv = CPCVSettings.model_validate(
        ((results.get("config") or {}).get("evidence") or {}).get("cpcv") or {})
    if cpcv.enabled and cpcv.min_path_quantile is not None:
        criteria.append(_cpcv(statistics.get("cpcv") or {}, best, cpcv))
    if champion is not None:
        criteria.append(_beats_champion(best, metric, champion, settings.min_improvement,
                                        settings.champion_alpha))
    failed = [c["text"] for c in criteria if not c["passed"]]
    decision = REJECTED if failed else APPROVED
    if failed:
        reason = f"Rejected: {', '.join(failed)}."
    else:
        reason = f"Approved: {', '.join(c['text'] for c in criteria)}."
    return {"decision": decision, "criteria": criteria, "reason": reason,
            "champion": _champion_block(champion)}


def summary_line(deployment: Mapping[str, Any] | None) -> str:
    """One line for a notification: ``promoted`` or ``not promoted: <failed criteria>``."""
    if not deployment:
        return "no deployment decision"
    if deployment.get("decision") == APPROVED:
        return "promoted"
    failed = [c["text"] for c in deployment.get("criteria") or [] if not c.get("passed")]
    if not failed:  # rejected without criteria: no winner
        return f"not promoted: {str(deployment.get('reason', '')).removeprefix('Rejected: ')}"
    return f"not promoted: {', '.join(failed)}"


def criterion_lines(deployment: Mapping[str, Any] | None) -> list[str]:
    """Every criterion with its outcome, for the first lines of the text report (under the
    verdict, :func:`cryptosweep.judging.verdict.verdict`, which states the decision)."""
    if not deployment:
        return []
    return [f"  [{'pass' if c['passed'] else 'FAIL'}] {c['text']}"
            for c in deployment.get("criteria") or []]


# ------------------------------------------------------------------------------- criteria


def _settings(results: Mapping[str, Any]) -> DeploymentSettings:
    """The recorded thresholds, typed; the defaults for a run made before the section
    existed."""
    given = (results.get("config") or {}).get("deployment") or {}
    return DeploymentSettings.model_validate(given)


def _criterion(name: str, value: Any, threshold: Any, passed: bool, text: str
               ) -> dict[str, Any]:
    return {"name": name, "value": value, "threshold": threshold, "passed": bool(passed),
            "text": text}


def _reproducible(results: Mapping[str, Any], best: Mapping[str, Any]) -> dict[str, Any]:
    status = next((c.get("status") for c in results.get("reproducibility_check") or []
                   if c.get("eval_id") == best.get("eval_id")), None)
    if status is None:
        return _criterion("reproducible", None, "PASS", False,
                          "no reproducibility re-run of the winner")
    return _criterion("reproducible", status, "PASS", status == "PASS",
                      f"reproducibility re-run {status}")


def _dsr(block: Mapping[str, Any], minimum: float) -> dict[str, Any]:
    """``block``: :func:`~cryptosweep.judging.selection.gate_dsr`'s."""
    value = block.get("dsr")
    if value is None:
        return _criterion("dsr", None, minimum, False,
                          f"DSR not computed ({block.get('why_not') or 'no returns'})")
    passed = value >= minimum
    basis = (f" (effective N {block['n_trials']})" if block.get("basis") == "effective"
             else "")
    return _criterion("dsr", value, minimum, passed,
                      f"DSR {against(value, minimum)} {'>=' if passed else '<'} {minimum:g}{basis}")


def _pbo(overfitting: Mapping[str, Any], maximum: float) -> dict[str, Any]:
    value = (overfitting.get("pbo") or {}).get("pbo")
    if value is None:
        why = overfitting.get("why_not")
        return _criterion("pbo", None, maximum, False,
                          f"PBO not computed ({why or 'no returns'})")
    passed = value <= maximum
    return _criterion("pbo", value, maximum, passed,
                      f"PBO {against(value, maximum)} {'<=' if passed else '>'} {maximum:g}")


def _no_holdout(results: Mapping[str, Any]) -> str:
    fraction = ((results.get("config") or {}).get("data") or {}).get("holdout_fraction")
    return "data.holdout_fraction is 0" if fraction == 0 else "the holdout was not evaluated"


def _holdout_score(best: Mapping[str, Any], metric: str, minimum: float,
                   results: Mapping[str, Any]) -> dict[str, Any]:
    label = METRIC_LABELS.get(metric, metric)
    value = holdout_score(best.get("holdout"), metric)
    if value is None:
        return _criterion("holdout_score", None, minimum, False,
                          f"no holdout {label} ({_no_holdout(results)})")
    passed = value >= minimum
    return _criterion("holdout_score", value, minimum, passed,
                      f"holdout {label} {against(value, minimum, sign=True)} "
                      f"{'>=' if passed else '<'} {minimum:g}")


def _holdout_trades(best: Mapping[str, Any], minimum: int,
                    results: Mapping[str, Any]) -> dict[str, Any]:
    value = (best.get("holdout") or {}).get("holdout_trades")
    if value is None:
        return _criterion("holdout_trades", None, minimum, False,
                          f"no holdout trades ({_no_holdout(results)})")
    passed = value >= minimum
    return _criterion("holdout_trades", int(value), minimum, passed,
                      f"holdout trades {int(value)} {'>=' if passed else '<'} {minimum}")


def _holdout_test(evidence: Mapping[str, Any], maximum: float) -> dict[str, Any]:
    permutation = evidence.get("permutation")
    if not permutation:
        why = "; ".join(evidence.get("why_not") or []) or "not computed"
        return _criterion("holdout_test", None, maximum, False,
                          f"no holdout permutation test ({why})")
    value = float(permutation["p_value"])
    passed = value <= maximum
    return _criterion("holdout_test", value, maximum, passed,
                      f"holdout vs random entries p {against(value, maximum, 3)} "
                      f"{'<=' if passed else '>'} {maximum:g}")


def _stress(best: Mapping[str, Any], metric: str, minimum: float,
            results: Mapping[str, Any]) -> dict[str, Any]:
    label = METRIC_LABELS.get(metric, metric)
    stress = (best.get("holdout") or {}).get("holdout_stress")
    if not stress or stress.get(metric) is None:
        return _criterion("stress", None, minimum, False,
                          f"no cost-stressed holdout {label} ({_no_holdout(results)})")
    value = float(stress[metric])
    passed = value >= minimum
    return _criterion("stress", value, minimum, passed,
                      f"holdout {label} at {stress['multiplier']:g}x costs "
                      f"{against(value, minimum, sign=True)} "
                      f"{'>=' if passed else '<'} {minimum:g}")


def _cpcv(block: Mapping[str, Any], best: Mapping[str, Any], settings: CPCVSettings
          ) -> dict[str, Any]:
    """The winner's ``gate_quantile`` of its annualised CPCV path Sharpe ratios at least
    ``min_path_quantile``."""
    minimum = settings.min_path_quantile
    entry = next((e for e in block.get("entries") or [] if e.get("eval_id") == best.get("eval_id")),
                 None)
    level = f"{100 * settings.gate_quantile:g}th percentile"
    if entry is None or entry.get("gate_quantile") is None:
        return _criterion("cpcv", None, minimum, False,
                          "no CPCV paths of the winner to judge")
    value = float(entry["gate_quantile"])
    trades = entry.get("path_trades")
    if trades and not any(trades):
        # A path that never trades has a Sharpe ratio of 0, which passed min_path_quantile 0
        # ("0.00 >= 0 over 3 paths") on no evidence at all, as the DSR of flat returns is not.
        return _criterion("cpcv", value, minimum, False,
                          "CPCV paths not judged (no trade on "
                          + (f"any of the winner's {len(trades)} paths)" if len(trades) > 1
                             else "the winner's 1 path)"))
    passed = value >= minimum
    return _criterion("cpcv", value, minimum, passed,
                      f"CPCV path Sharpe {level} {against(value, minimum)} "
                      f"{'>=' if passed else '<'} {minimum:g} over {entry.get('n_paths')} "
                      f"path{'' if entry.get('n_paths') == 1 else 's'}")


def _beats_champion(best: Mapping[str, Any], metric: str, champion: Mapping[str, Any],
                    improvement: float, alpha: float = 1.0) -> dict[str, Any]:
    label = METRIC_LABELS.get(metric, metric)
    notes = "".join(f"; {note}" for note in champion.get("notes") or [])
    theirs = holdout_score(champion.get("holdout"), metric)
    if champion.get("error") or theirs is None:
        why = champion.get("error") or "it has no holdout score"
        return _criterion("champion", None, None, False,
                          f"the champion could not be re-evaluated ({why}){notes}")
    mine = holdout_score(best.get("holdout"), metric)
    threshold = theirs + improvement
    if mine is None:
        return _criterion("champion", None, threshold, False,
                          f"no holdout {label} to compare with the champion's {theirs:+.2f}"
                          f"{notes}")
    margin = f" + {improvement:g}" if improvement else ""
    if mine < threshold:
        return _criterion("champion", mine, threshold, False,
                          f"holdout {label} {mine:+.2f} < the champion's {theirs:+.2f}{margin}"
                          f"{notes}")
    test = champion.get("paired_test")
    if alpha < 1:
        if not test or test.get("p_value") is None:
            why = (test or {}).get("why_not") or "no per-bar returns of both on the same bars"
            return _criterion("champion", mine, threshold, False,
                              f"no paired test against the champion ({why}){notes}")
        p_value = float(test["p_value"])
        if p_value > alpha:
            return _criterion("champion", mine, threshold, False,
                              f"not significantly better than the champion (holdout {label} "
                              f"{mine:+.2f} vs {theirs:+.2f}, paired test p {p_value:.3f} > "
                              f"{alpha:g}){notes}")
        return _criterion("champion", mine, threshold, True,
                          f"significantly better than the champion (holdout {label} "
                          f"{mine:+.2f} vs {theirs:+.2f}, paired test p {p_value:.3f} <= "
                          f"{alpha:g}){notes}")
    return _criterion("champion", mine, threshold, True,
                      f"holdout {label} {mine:+.2f} >= the champion's {theirs:+.2f}{margin}"
                      f"{notes}")


def keep_champion(history: list[Mapping[str, Any]], champion: Mapping[str, Any] | None,
                  metric: str, minimum: float, demote_after: int) -> dict[str, Any]:
    """The keep-gate of a deployed champion: its own re-evaluation on tonight's holdout
    (``champion``, as in the decision's ``champion`` block) passes when its holdout score is at
    least ``minimum``. ``history``: the earlier nights' records (``champions.jsonl``), oldest
    first, each with its ``keep`` block. Returns ``{"passed", "score", "failures_in_a_row",
    "demote", "text"}``: ``demote`` once ``demote_after`` nights in a row failed (a night
    without a re-evaluation neither fails nor breaks the run). A champion whose folder cannot
    be read (``unreadable``: a damaged or hand-edited manifest, an older model format) or whose
    re-evaluation raised (``reevaluation_failed``: parameters its library now refuses) fails:
    kept, it was never demoted, and every winner failed the gate's ``champion`` criterion."""
    label = METRIC_LABELS.get(metric, metric)
    unusable = {"unreadable": "champion cannot be read",
                "reevaluation_failed": "champion's re-evaluation failed"}
    for key, what in unusable.items():
        if champion and champion.get(key):
            failures = _failures(history) + 1
            demote = failures >= demote_after
            return {"passed": False, "score": None, "failures_in_a_row": failures,
                    "demote": demote, "text": f"{what} ({champion.get('error')}; {failures} "
                    f"night(s) in a row{'; demoted' if demote else f' of {demote_after}'})"}
    score = None if not champion or champion.get("error") else holdout_score(
        champion.get("holdout"), metric)
    if score is None:
        why = (champion or {}).get("error") or "no re-evaluation on this run's holdout"
        return {"passed": None, "score": None, "failures_in_a_row": _failures(history),
                "demote": False, "text": f"champion not re-evaluated ({why})"}
    passed = score >= minimum
    failures = 0 if passed else _failures(history) + 1
    demote = failures >= demote_after
    text = (f"champion's own holdout {label} {against(score, minimum, sign=True)} "
            f"{'>=' if passed else '<'} {minimum:g}"
            + ("" if passed else f" ({failures} night(s) in a row"
                                 f"{'; demoted' if demote else f' of {demote_after}'})"))
    return {"passed": passed, "score": score, "failures_in_a_row": failures, "demote": demote,
            "text": text}


def _failures(history: list[Mapping[str, Any]]) -> int:
    """Keep-gate failures in a row at the end of ``history`` (nights without a verdict on the
    champion are skipped; a promotion or demotion resets the count)."""
    count = 0
    for record in reversed(history):
        if record.get("promoted") or record.get("decision") == "demoted":
            break
        keep = record.get("keep") or {}
        if keep.get("passed") is None:
            continue
        if keep["passed"]:
            break
        count += 1
    return count


def _champion_block(champion: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if champion is None else dict(champion)
