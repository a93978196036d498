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
``reproducible``   the winner's reproducibility re-run gave bitwise-equal metrics  PASS
``dsr``            its deflated Sharpe ratio >= ``min_dsr``                        0.95
``pbo``            the run's probability of backtest overfitting <= ``max_pbo``    0.5
``holdout_score``  its holdout ``objective.metric`` >= ``min_holdout_score``       0
``holdout_trades`` its holdout trades >= ``min_holdout_trades``                    20
``champion``       (only with a deployed champion) its holdout score >= the        0
                   champion's on the same bars + ``min_improvement``
=================  ==============================================================  ==========

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

from cryptosweep.core.config import DeploymentSettings
from cryptosweep.core.vocabulary import APPROVED, METRIC_LABELS, REJECTED
from cryptosweep.judging.edge import holdout_score

#: The criteria's names, in the order they are checked and listed.
CRITERIA = ("reproducible", "dsr", "pbo", "holdout_score", "holdout_trades", "champion")


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
    criteria = [
        _reproducible(results, best),
        _dsr(overfitting, settings.min_dsr),
        _pbo(overfitting, settings.max_pbo),
        _holdout_score(best, metric, settings.min_holdout_score, results),
        _holdout_trades(best, settings.min_holdout_trades, results),
    ]
    if champion is not None:
        criteria.append(_beats_champion(best, metric, champion, settings.min_improvement))
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


def _dsr(overfitting: Mapping[str, Any], minimum: float) -> dict[str, Any]:
    value = (overfitting.get("dsr") or {}).get("dsr")
    if value is None:
        why = (overfitting.get("dsr") or {}).get("why_not") or overfitting.get("why_not")
        return _criterion("dsr", None, minimum, False,
                          f"DSR not computed ({why or 'no returns'})")
    passed = value >= minimum
    return _criterion("dsr", value, minimum, passed,
                      f"DSR {value:.2f} {'>=' if passed else '<'} {minimum:g}")


def _pbo(overfitting: Mapping[str, Any], maximum: float) -> dict[str, Any]:
    value = (overfitting.get("pbo") or {}).get("pbo")
    if value is None:
        why = overfitting.get("why_not")
        return _criterion("pbo", None, maximum, False,
                          f"PBO not computed ({why or 'no returns'})")
    passed = value <= maximum
    return _criterion("pbo", value, maximum, passed,
                      f"PBO {value:.2f} {'<=' if passed else '>'} {maximum:g}")


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
                      f"holdout {label} {value:+.2f} {'>=' if passed else '<'} {minimum:g}")


def _holdout_trades(best: Mapping[str, Any], minimum: int,
                    results: Mapping[str, Any]) -> dict[str, Any]:
    value = (best.get("holdout") or {}).get("holdout_trades")
    if value is None:
        return _criterion("holdout_trades", None, minimum, False,
                          f"no holdout trades ({_no_holdout(results)})")
    passed = value >= minimum
    return _criterion("holdout_trades", int(value), minimum, passed,
                      f"holdout trades {int(value)} {'>=' if passed else '<'} {minimum}")


def _beats_champion(best: Mapping[str, Any], metric: str, champion: Mapping[str, Any],
                    improvement: float) -> dict[str, Any]:
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
    passed = mine >= threshold
    margin = f" + {improvement:g}" if improvement else ""
    return _criterion("champion", mine, threshold, passed,
                      f"holdout {label} {mine:+.2f} {'>=' if passed else '<'} the champion's "
                      f"{theirs:+.2f}{margin}{notes}")


def _champion_block(champion: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if champion is None else dict(champion)
