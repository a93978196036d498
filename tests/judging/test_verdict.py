"""The verdict, the stability flag and the small-sample flag: pure functions over a results
dict, checked on hand-made results (fast) — the end-to-end reports use them on real runs."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cryptosweep.core import formatting
from cryptosweep.judging import caveats
from cryptosweep.judging.verdict import DSR_CONFIDENCE, PBO_LIMIT, verdict


def results(holdout_sharpe: float | None = 1.2, holdout_trades: int = 40, dsr: float = 0.97,
            pbo: float = 0.2, folds: tuple[float, ...] = (1.0, 1.1, 0.9, 1.2),
            fold_trades: tuple[int, ...] = (35, 40, 33, 50), repro: str = "PASS",
            **extra: Any) -> dict[str, Any]:
    """The parts of ``sweep_results_*.json`` the verdict reads."""
    holdout = ({} if holdout_sharpe is None else
               {"holdout_sharpe": holdout_sharpe, "holdout_trades": holdout_trades})
    best = {"eval_id": 7, "rank": 1, "score": sum(folds) / len(folds),
            "metrics": {"folds": [{"sharpe": s, "trades": t} for s, t in zip(folds, fold_trades,
                                                                           strict=True)],
                        "fold_trades": list(fold_trades), "penalty": None},
            "holdout": holdout or None}
    out = {"config": {"objective": {"metric": "sharpe"}, "reporting": {"min_trades": 30}},
           "best": best, "top_k": [best],
           "overfitting": {"dsr": {"dsr": dsr}, "pbo": {"pbo": pbo}},
           "reproducibility_check": [{"eval_id": 7, "status": repro}],
           "counts": {"evaluations": 10, "done": 10, "failed": 0}}
    out.update(extra)
    return out


# --------------------------------------------------------------------------- stability flag


def test_one_fold_carrying_the_mean_is_flagged():
    # The run in the issue: a positive mean that rests on fold 2 alone.
    stability = caveats.fold_stability([-0.31, 4.77, -0.87, -1.31])
    assert stability.mean == pytest.approx(0.57)
    assert stability.best_fold == 1
    assert stability.mean_without_best == pytest.approx((-0.31 - 0.87 - 1.31) / 3)
    assert stability.carried_by_one_fold
    assert stability.note().startswith("fold 2 (+4.77) carries the mean +0.57")


@pytest.mark.parametrize("scores", [
    [1.0, 1.1, 0.9, 1.2],      # steady
    [0.1, 0.1, 0.1, 10.0],     # uneven, but positive without its best fold
    [-1.0, -2.0, 0.5],         # negative mean: nothing is carried
    [2.0],                     # one fold: no rule to apply
])
def test_no_flag_when_the_mean_does_not_rest_on_one_fold(scores):
    assert not caveats.fold_stability(scores).carried_by_one_fold
    assert caveats.fold_stability(scores).note() is None


def test_the_boundary_of_the_stability_rule():
    # Without the best fold the mean is exactly 0: carried (<= 0); a hair above: not.
    assert caveats.fold_stability([1.0, 0.5, -0.5]).carried_by_one_fold
    assert not caveats.fold_stability([1.0, 0.5, -0.49]).carried_by_one_fold
    assert caveats.fold_stability([3.0, 3.0, -3.0]).best_fold == 0  # ties: the first
    spread = caveats.fold_stability([1.0, 3.0]).spread
    assert spread == pytest.approx(2 ** 0.5)  # sample standard deviation (ddof=1)
    with pytest.raises(ValueError):
        caveats.fold_stability([])
    with pytest.raises(ValueError):
        caveats.fold_stability([1.0, float("nan")])


# ------------------------------------------------------------------------ small-sample flag


def test_small_sample_is_fewer_than_min_trades():
    assert caveats.small_sample(29, 30) and not caveats.small_sample(30, 30)
    assert caveats.small_sample(0, 1)
    assert not caveats.small_sample(None, 30)  # unknown is not small


def test_small_sample_flags_in_the_verdict():
    decided = verdict(results(holdout_trades=11, fold_trades=(35, 4, 33, 50)))
    assert decided.holdout_small_sample
    assert "11 trades, small sample" in decided.headline()
    assert any("holdout Sharpe comes from 11 trades" in f for f in decided.flags)
    assert any("fold(s) 2 have fewer than 30 trades" in f for f in decided.flags)
    # the threshold is the run's reporting.min_trades
    lenient = results(holdout_trades=11, fold_trades=(35, 4, 33, 50))
    lenient["config"]["reporting"]["min_trades"] = 4
    assert not verdict(lenient).holdout_small_sample
    assert not any("small sample" in f for f in verdict(lenient).flags)


# --------------------------------------------------------------------------------- verdict


def test_edge_when_every_condition_holds():
    decided = verdict(results())
    assert decided.decision == "edge" and decided.positive and decided.basis == "edge test"
    assert decided.reason.startswith("The winner beat flat on the holdout (Sharpe +1.20 on 40")
    assert decided.headline() == "holdout Sharpe +1.20 (40 trades) · DSR 0.97 · PBO 0.20"
    assert all(c.passed for c in decided.criteria)
    assert decided.flags == ()


def test_the_run_of_the_issue_has_no_edge_and_says_why():
    decided = verdict(results(holdout_sharpe=-3.08, holdout_trades=11, dsr=0.03, pbo=0.63,
                              folds=(-0.31, 4.77, -0.87, -1.31)))
    assert decided.decision == "no edge" and not decided.positive
    assert decided.label == "NO EDGE"
    assert decided.reason == (
        "It did not beat flat on the holdout (Sharpe -3.08), its holdout has only 11 trades "
        "(fewer than 30), its DSR 0.03 is below 0.95 and PBO 0.63 is at least 0.5.")
    assert decided.line().startswith("NO EDGE: It did not beat flat")
    assert any(f.startswith("unstable: fold 2 (+4.77) carries the mean") for f in decided.flags)


@pytest.mark.parametrize(("change", "failed"), [
    ({"holdout_sharpe": -0.1}, "holdout Sharpe above flat"),
    ({"holdout_trades": 29}, "holdout trades"),
    ({"dsr": DSR_CONFIDENCE - 0.01}, "deflated Sharpe ratio"),
    ({"pbo": PBO_LIMIT}, "probability of backtest overfitting"),
    ({"repro": "FAIL"}, "reproducibility re-run"),
])
def test_each_condition_alone_turns_edge_into_no_edge(change, failed):
    decided = verdict(results(**change))
    assert decided.decision == "no edge"
    assert [c.name for c in decided.criteria if not c.passed] == [failed]


def test_buy_and_hold_is_a_condition_when_the_results_carry_it():
    beaten = results(baselines={"buy_and_hold": {"holdout": {"sharpe": 0.4}}})
    assert verdict(beaten).decision == "edge"
    assert "beat flat and buy-and-hold" in verdict(beaten).reason
    lost = results(baselines={"buy_and_hold": {"holdout": {"sharpe": 2.0}}})
    assert verdict(lost).decision == "no edge"
    assert "did not beat buy-and-hold on the holdout (+1.20 vs +2.00)" in verdict(lost).reason


def test_the_deployment_gate_decides_when_present():
    gate = {"decision": "rejected", "reason": "Holdout Sharpe below 0.5.",
            "criteria": [{"name": "holdout_sharpe", "value": 0.3, "threshold": 0.5,
                          "passed": False}]}
    decided = verdict(results(deployment=gate))
    assert (decided.decision, decided.basis) == ("not deployable", "deployment gate")
    assert decided.reason == "Holdout Sharpe below 0.5."
    assert [(c.name, c.passed) for c in decided.criteria] == [("holdout_sharpe", False)]
    approved = verdict(results(holdout_trades=3, deployment={**gate, "decision": "approved",
                                                             "reason": ""}))
    assert approved.decision == "deployable" and approved.positive
    assert approved.reason == "Every deployment criterion passed."
    assert approved.holdout_small_sample, "the flags stay, whatever the gate says"


def test_missing_pieces_are_named_not_passed():
    no_holdout = verdict(results(holdout_sharpe=None))
    assert no_holdout.decision == "no edge" and "no holdout score" in no_holdout.reason
    assert any(f.startswith("no holdout") for f in no_holdout.flags)
    run = results()
    run["overfitting"] = {"dsr": None, "pbo": None, "why_not": "fewer than 2 finished"}
    decided = verdict(run)
    assert decided.decision == "no edge" and "could not be computed" in decided.reason
    assert decided.headline().endswith("DSR – · PBO –")
    nothing = verdict({"config": {}, "best": None, "top_k": [], "overfitting": None,
                       "counts": {"evaluations": 5, "failed": 5}})
    assert nothing.decision == "no result" and nothing.flags == ("5 of 5 evaluations failed",)
    older = copy.deepcopy(results())
    del older["config"]["reporting"]
    assert verdict(older).min_trades == caveats.DEFAULT_MIN_TRADES


def test_verdict_is_plain_json():
    import json

    data = verdict(results()).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["label"] == "EDGE" and data["criteria"][0]["name"] == "holdout Sharpe above flat"


# ------------------------------------------------------------------------------ formatting


def test_parameters_are_rounded_for_reading():
    assert formatting.param_lines({"threshold": 0.5111652703238467, "num_leaves": 12,
                                   "lambda_l2": 0.0016306683963855269, "boosting": "gbdt",
                                   "tiny": 3.2e-05, "big": 12345.6}) == [
        "big = 12346", "boosting = gbdt", "lambda_l2 = 0.00163", "num_leaves = 12",
        "threshold = 0.511", "tiny = 3.20e-05"]
    assert formatting.signed(-3.0803) == "-3.08" and formatting.signed(None) == "–"
    assert formatting.percent(0.1234) == "12.3%" and formatting.share(0.026) == "0.03"
