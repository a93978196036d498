"""What to conclude from a run, in words and numbers: the one function the report, the text
report, the index (and the nightly notification) share, so that they all say the same thing.

:func:`verdict` is pure: a results dict (``sweep_results_*.json``) in, a :class:`Verdict` out.

* When the results carry a ``deployment`` block (the deployment gate: ``decision`` approved /
  rejected, ``criteria`` and ``reason``), the decision is the gate's: **deployable** or **not
  deployable**, with its reason and criteria.
* Otherwise it is the **edge test**: **edge** when the winner, on the untouched holdout,

  1. beats flat (a score above 0) and buy-and-hold (when the results carry that baseline),
  2. on at least ``reporting.min_trades`` trades,

  and its deflated Sharpe ratio is at least
  :data:`~cryptosweep.core.settings.DSR_CONFIDENCE`, the probability of backtest overfitting
  below :data:`~cryptosweep.core.settings.PBO_LIMIT` (fixed: not the deployment gate's
  settings), and its reproducibility re-run passed; else **no edge**, with every failed
  condition in the reason. A criterion that cannot be evaluated (no holdout, no DSR) is not
  counted as passed: it is named among the flags.

Either way the headline numbers are the winner's holdout score (the config's metric) with its
trade count, the DSR and the PBO, and the flags name every caveat: small samples, a
validation mean carried by one fold, a failed re-run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptosweep.core.formatting import metric_name, share, signed
from cryptosweep.core.settings import DSR_CONFIDENCE, PBO_LIMIT
from cryptosweep.judging.caveats import fold_scores, fold_stability, min_trades_of, small_sample
from cryptosweep.judging.selection import gate_dsr

DEPLOYABLE, NOT_DEPLOYABLE = "deployable", "not deployable"
EDGE, NO_EDGE = "edge", "no edge"
NO_RESULT = "no result"


@dataclass(frozen=True)
class Criterion:
    """One condition of the decision: its value, threshold and outcome."""

    name: str
    value: Any
    threshold: Any
    passed: bool
    #: The criterion as people read it (the deployment gate's ``text``: ``"PBO 0.68 > 0.5"``);
    #: empty where ``name`` says it already (the edge test's criteria).
    text: str = ""


@dataclass(frozen=True)
class Verdict:
    """The decision, the numbers that carry it, the one-sentence reason and the caveats."""

    decision: str  # deployable | not deployable | edge | no edge | no result
    positive: bool
    basis: str  # "deployment gate" | "edge test" | "no winner"
    reason: str
    metric: str
    holdout_score: float | None
    holdout_trades: int | None
    holdout_small_sample: bool
    validation_score: float | None
    dsr: float | None
    pbo: float | None
    min_trades: int
    flags: tuple[str, ...] = ()
    criteria: tuple[Criterion, ...] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        """The decision in capitals, for the top of a page: ``NO EDGE``."""
        return self.decision.upper()

    def headline(self) -> str:
        """The three numbers: ``holdout sharpe -3.08 (11 trades, small sample) · DSR 0.03 ·
        PBO 0.63``."""
        if self.holdout_score is None:
            holdout = f"holdout {metric_name(self.metric)} {signed(None)}"
        else:
            trades = "" if self.holdout_trades is None else (
                f" ({self.holdout_trades} trades"
                + (", small sample)" if self.holdout_small_sample else ")"))
            holdout = f"holdout {metric_name(self.metric)} {signed(self.holdout_score)}{trades}"
        return f"{holdout} · DSR {share(self.dsr)} · PBO {share(self.pbo)}"

    def line(self) -> str:
        """One line for an index row or a chat message: ``NO EDGE: <reason>``."""
        return f"{self.label}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        out = asdict(self)
        out["flags"] = list(self.flags)
        out["criteria"] = [asdict(c) for c in self.criteria]
        out["label"] = self.label
        out["headline"] = self.headline()
        return out


def verdict(results: Mapping[str, Any]) -> Verdict:
    """The verdict of a run from its results dict (see the module docstring)."""
    metric = ((results.get("config") or {}).get("objective") or {}).get("metric", "sharpe")
    min_trades = min_trades_of(results)
    best = results.get("best") or None
    overfitting = results.get("overfitting") or {}
    dsr = _number(gate_dsr(results).get("dsr"))
    pbo = _number((overfitting.get("pbo") or {}).get("pbo"))
    if not best:
        return Verdict(
            decision=NO_RESULT, positive=False, basis="no winner",
            reason="No evaluation finished at the full budget, so there is nothing to judge.",
            metric=metric, holdout_score=None, holdout_trades=None, holdout_small_sample=False,
            validation_score=None, dsr=dsr, pbo=pbo, min_trades=min_trades,
            flags=tuple(_failure_flags(results)),
        )
    holdout = best.get("holdout") or {}
    score = _number(holdout.get(f"holdout_{metric}"))
    trades = holdout.get("holdout_trades")
    trades = int(trades) if isinstance(trades, int | float) else None
    few = small_sample(trades, min_trades)
    flags = _flags(results, best, metric, score, trades, few, min_trades)
    common = dict(metric=metric, holdout_score=score, holdout_trades=trades,
                  holdout_small_sample=few, validation_score=_number(best.get("score")),
                  dsr=dsr, pbo=pbo, min_trades=min_trades, flags=tuple(flags))
    gate = results.get("deployment")
    if isinstance(gate, Mapping) and gate.get("decision") in ("approved", "rejected"):
        approved = gate["decision"] == "approved"
        criteria = tuple(
            Criterion(str(c.get("name")), c.get("value"), c.get("threshold"), bool(c.get("passed")),
                      str(c.get("text") or ""))
            for c in gate.get("criteria") or [])
        reason = str(gate.get("reason") or "").strip() or _criteria_reason(criteria, approved)
        return Verdict(decision=DEPLOYABLE if approved else NOT_DEPLOYABLE, positive=approved,
                       basis="deployment gate", reason=reason, criteria=criteria, **common)
    return _edge_test(results, best, common, score, trades, few, dsr, pbo, min_trades, metric)


def _edge_test(results: Mapping[str, Any], best: Mapping[str, Any], common: dict[str, Any],
               score: float | None, trades: int | None, few: bool, dsr: float | None,
               pbo: float | None, min_trades: int, metric: str) -> Verdict:
    name = metric_name(metric)
    criteria: list[Criterion] = []
    failures: list[str] = []
    if score is not None:
        criteria.append(Criterion(f"holdout {name} above flat", score, 0.0, score > 0))
        if score <= 0:
            failures.append(f"it did not beat flat on the holdout ({name} {signed(score)})")
        hold = buy_and_hold_holdout(results, metric)
        if hold is not None:
            criteria.append(Criterion(f"holdout {name} above buy-and-hold", score, hold,
                                      score > hold))
            if score <= hold:
                failures.append(f"it did not beat buy-and-hold on the holdout "
                                f"({signed(score)} vs {signed(hold)})")
        if trades is not None:
            criteria.append(Criterion("holdout trades", trades, min_trades, not few))
            if few:
                failures.append(f"its holdout has only {trades} trades (fewer than "
                                f"{min_trades})")
    else:
        failures.append("there is no holdout score to judge it on")
    if dsr is not None:
        criteria.append(Criterion("deflated Sharpe ratio", dsr, DSR_CONFIDENCE,
                                  dsr >= DSR_CONFIDENCE))
        if dsr < DSR_CONFIDENCE:
            failures.append(f"its DSR {share(dsr)} is below {DSR_CONFIDENCE:g}")
    else:
        failures.append("its deflated Sharpe ratio could not be computed")
    if pbo is not None:
        criteria.append(Criterion("probability of backtest overfitting", pbo, PBO_LIMIT,
                                  pbo < PBO_LIMIT))
        if pbo >= PBO_LIMIT:
            failures.append(f"PBO {share(pbo)} is at least {PBO_LIMIT:g}")
    repro = _reproduced(results, best)
    if repro is not None:
        criteria.append(Criterion("reproducibility re-run", "PASS" if repro else "FAIL",
                                  "PASS", repro))
        if not repro:
            failures.append("its reproducibility re-run did not match")
    if failures:
        reason = f"{_capital(_sentence(failures))}."
        return Verdict(decision=NO_EDGE, positive=False, basis="edge test", reason=reason,
                       criteria=tuple(criteria), **common)
    against = "flat and buy-and-hold" if buy_and_hold_holdout(results, metric) is not None \
        else "flat"
    reason = (f"The winner beat {against} on the holdout ({name} {signed(score)} on {trades} "
              f"trades) with DSR {share(dsr)}"
              + (f" and PBO {share(pbo)}." if pbo is not None else "."))
    return Verdict(decision=EDGE, positive=True, basis="edge test", reason=reason,
                   criteria=tuple(criteria), **common)


def buy_and_hold_holdout(results: Mapping[str, Any], metric: str) -> float | None:
    """Buy-and-hold's holdout score in ``metric`` when the results carry baselines."""
    baselines = results.get("baselines")
    if not isinstance(baselines, Mapping):
        return None
    hold = baselines.get("buy_and_hold")
    if not isinstance(hold, Mapping):
        return None
    holdout = hold.get("holdout")
    if isinstance(holdout, Mapping):
        return _number(holdout.get(metric, holdout.get(f"holdout_{metric}")))
    return None


def _flags(results: Mapping[str, Any], best: Mapping[str, Any], metric: str,
           score: float | None, trades: int | None, few: bool, min_trades: int) -> list[str]:
    flags = []
    if score is None:
        flags.append("no holdout: data.holdout_fraction is 0 or the holdout was not evaluated")
    elif few:
        flags.append(f"small sample: the winner's holdout {metric_name(metric)} comes from "
                     f"{trades} trades "
                     f"(fewer than {min_trades})")
    scores = fold_scores(best.get("metrics"), metric)
    if len(scores) >= 2:
        note = fold_stability(scores).note()
        if note:
            flags.append(f"unstable: {note}")
    folds_few = [i + 1 for i, t in enumerate((best.get("metrics") or {}).get("fold_trades") or [])
                 if small_sample(t, min_trades)]
    if folds_few:
        flags.append(f"small sample: validation fold(s) {', '.join(map(str, folds_few))} have "
                     f"fewer than {min_trades} trades")
    if (best.get("metrics") or {}).get("penalty"):
        flags.append(f"penalised: {best['metrics']['penalty']}")
    repro = _reproduced(results, best)
    if repro is False:
        flags.append(f"not reproducible: the re-run of eval {best.get('eval_id')} differs")
    regimes = (results.get("statistics") or {}).get("regimes") or {}
    flags += [f"one regime: {note}" for note in regimes.get("caveats") or []]
    overfitting = results.get("overfitting") or {}
    if overfitting.get("why_not"):
        flags.append(f"overfitting diagnostics: {overfitting['why_not']}")
    return flags + _failure_flags(results)


def _failure_flags(results: Mapping[str, Any]) -> list[str]:
    counts = results.get("counts") or {}
    failed, total = counts.get("failed") or 0, counts.get("evaluations") or 0
    return [f"{failed} of {total} evaluations failed"] if failed else []


def _reproduced(results: Mapping[str, Any], best: Mapping[str, Any]) -> bool | None:
    for check in results.get("reproducibility_check") or []:
        if check.get("eval_id") == best.get("eval_id"):
            return check.get("status") == "PASS"
    return None


def _criteria_reason(criteria: tuple[Criterion, ...], approved: bool) -> str:
    failed = [c.name for c in criteria if not c.passed]
    if approved or not failed:
        return "Every deployment criterion passed." if approved else "The gate rejected it."
    return f"Failed {_sentence(failed)}."


def _sentence(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
