"""The deployment gate and the edge over the baselines: pure functions of the results, so the
results files, the text report, the nightly and its notification all say the same thing."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import numpy as np
import pytest

from cryptosweep.core.config_files import load_config
from cryptosweep.judging.deployment import (
    CRITERIA,
    criterion_lines,
    decide,
    keep_champion,
    summary_line,
)
from cryptosweep.judging.edge import beats, edge
from cryptosweep.judging.selection import gate_dsr
from cryptosweep.judging.verdict import verdict
from tests.support import tiny_config


def results(*, dsr: float | None = 0.97, pbo: float | None = 0.2, holdout: float | None = 1.5,
            trades: int | None = 40, repro: str | None = "PASS", metric: str = "sharpe",
            **deployment: Any) -> dict[str, Any]:
    """A results dict as finalize builds it, around the numbers the gate reads."""
    config = load_config(raw=tiny_config(objective__metric=metric,
                                         **{f"deployment__{k}": v for k, v in deployment.items()}))
    best = {"eval_id": 7, "score": 0.8,
            "holdout": None if holdout is None else {f"holdout_{metric}": holdout,
                                                     "holdout_trades": trades}}
    return {
        "config": config.canonical(), "best": best, "top_k": [best],
        "overfitting": {"dsr": None if dsr is None else {"dsr": dsr},
                        "pbo": None if pbo is None else {"pbo": pbo},
                        "why_not": None if dsr is not None else "fewer than 2 finished "
                                                                 "full-budget configurations"},
        "reproducibility_check": [] if repro is None else [{"eval_id": 7, "status": repro}],
    }


def test_a_winner_that_passes_everything_is_approved():
    decision = decide(results())
    assert decision["decision"] == "approved" and decision["champion"] is None
    assert [c["name"] for c in decision["criteria"]] == list(CRITERIA[:5])
    assert all(c["passed"] for c in decision["criteria"])
    assert decision["reason"].startswith("Approved: reproducibility re-run PASS, DSR 0.97 >= 0.95")
    assert summary_line(decision) == "promoted"
    assert criterion_lines(decision)[0] == "  [pass] reproducibility re-run PASS"


def test_the_issues_winner_is_rejected_criterion_by_criterion():
    decision = decide(results(dsr=0.03, pbo=0.63, holdout=-3.08, trades=11))
    assert decision["decision"] == "rejected"
    by_name = {c["name"]: c for c in decision["criteria"]}
    assert by_name["dsr"] == {"name": "dsr", "value": 0.03, "threshold": 0.95, "passed": False,
                              "text": "DSR 0.03 < 0.95"}
    assert by_name["pbo"]["text"] == "PBO 0.63 > 0.5" and not by_name["pbo"]["passed"]
    assert by_name["holdout_score"]["text"] == "holdout Sharpe -3.08 < 0"
    assert by_name["holdout_trades"] == {"name": "holdout_trades", "value": 11, "threshold": 30,
                                         "passed": False, "text": "holdout trades 11 < 30"}
    assert by_name["reproducible"]["passed"]
    assert summary_line(decision) == ("not promoted: DSR 0.03 < 0.95, PBO 0.63 > 0.5, "
                                      "holdout Sharpe -3.08 < 0, holdout trades 11 < 30")
    assert decision["reason"] == ("Rejected: DSR 0.03 < 0.95, PBO 0.63 > 0.5, holdout Sharpe "
                                  "-3.08 < 0, holdout trades 11 < 30.")
    lines = criterion_lines(decision)
    assert "  [FAIL] DSR 0.03 < 0.95" in lines and "  [pass] reproducibility re-run PASS" in lines
    assert criterion_lines(None) == []


@pytest.mark.parametrize("change, name", [
    ({"dsr": 0.9499}, "dsr"), ({"pbo": 0.5001}, "pbo"), ({"holdout": -0.0001}, "holdout_score"),
    ({"trades": 29}, "holdout_trades"), ({"repro": "FAIL"}, "reproducible"),
])
def test_each_criterion_alone_rejects_and_its_threshold_itself_passes(change, name):
    at_threshold = decide(results(dsr=0.95, pbo=0.5, holdout=0.0, trades=30))
    assert at_threshold["decision"] == "approved", at_threshold["reason"]
    decision = decide(results(**{"dsr": 0.95, "pbo": 0.5, "holdout": 0.0, "trades": 30,
                                 **change}))
    assert decision["decision"] == "rejected"
    assert [c["name"] for c in decision["criteria"] if not c["passed"]] == [name]


def test_thresholds_come_from_the_recorded_config_and_the_metric_is_the_configured_one():
    lenient = results(dsr=0.5, pbo=0.7, holdout=-0.1, trades=5, metric="total_return",
                      min_dsr=0.4, max_pbo=0.8, min_holdout_score=-0.2, min_holdout_trades=5)
    decision = decide(lenient)
    assert decision["decision"] == "approved", decision["reason"]
    assert "holdout total return -0.10 >= -0.2" in decision["reason"]
    old = copy.deepcopy(results(dsr=0.9))
    del old["config"]["deployment"]  # a run made before the section existed: the defaults
    assert summary_line(decide(old)) == "not promoted: DSR 0.90 < 0.95"


def test_what_cannot_be_checked_does_not_pass():
    decision = decide(results(dsr=None, pbo=None, holdout=None, repro=None))
    failed = {c["name"]: c["text"] for c in decision["criteria"] if not c["passed"]}
    assert failed == {
        "reproducible": "no reproducibility re-run of the winner",
        "dsr": "DSR not computed (fewer than 2 finished full-budget configurations)",
        "pbo": "PBO not computed (fewer than 2 finished full-budget configurations)",
        "holdout_score": "no holdout Sharpe (the holdout was not evaluated)",
        "holdout_trades": "no holdout trades (the holdout was not evaluated)",
    }
    none = decide({**results(), "best": None, "top_k": []})
    assert none["decision"] == "rejected" and "no winner" in none["reason"]
    assert summary_line(none).startswith("not promoted: no evaluation finished")


def test_the_challenger_must_beat_the_champion_on_the_same_bars():
    champion = {"holdout": {"holdout_sharpe": 1.2, "holdout_trades": 30}, "error": None,
                "notes": [], "source_run": "nightly_1"}
    better = decide(results(holdout=1.5, champion_alpha=1), champion)
    assert better["decision"] == "approved"
    assert better["criteria"][-1] == {
        "name": "champion", "value": 1.5, "threshold": 1.2, "passed": True,
        "text": "holdout Sharpe +1.50 >= the champion's +1.20"}
    assert better["champion"] == champion
    margin = decide(results(holdout=1.5, min_improvement=0.5, champion_alpha=1), champion)
    assert summary_line(margin) == "not promoted: holdout Sharpe +1.50 < the champion's +1.20 + 0.5"
    noted = decide(results(holdout=1.0, champion_alpha=1), {**champion, "notes": [
        "the champion was made with objective.fees_bps = 5.0, re-evaluated with this run's 10.0"]})
    assert noted["criteria"][-1]["text"] == (
        "holdout Sharpe +1.00 < the champion's +1.20; the champion was made with "
        "objective.fees_bps = 5.0, re-evaluated with this run's 10.0")
    broken = decide(results(), {"holdout": None, "error": "manifest.json cannot be read",
                                "notes": []})
    assert summary_line(broken) == (
        "not promoted: the champion could not be re-evaluated (manifest.json cannot be read)")


def test_edge_over_the_baselines_needs_validation_and_holdout():
    baselines = {"flat": {"score": 0.0, "holdout": {"holdout_sharpe": 0.0}},
                 "buy_and_hold": {"score": 0.5, "holdout": {"holdout_sharpe": 2.0}}}
    item = {"score": 0.8, "holdout": {"holdout_sharpe": 1.0}}
    assert edge(item, baselines, "sharpe") == {"beats_flat": True, "beats_buy_and_hold": False,
                                               "label": None}
    lost_on_holdout = {"score": 0.8, "holdout": {"holdout_sharpe": -3.08}}
    assert edge(lost_on_holdout, baselines, "sharpe") == {
        "beats_flat": False, "beats_buy_and_hold": False, "label": "no edge"}
    tie = {"score": 0.0, "holdout": {"holdout_sharpe": 0.0}}  # never traded: flat itself
    assert not beats(tie, baselines["flat"], "sharpe")
    no_holdout = {"flat": {"score": 0.0, "holdout": None}, "buy_and_hold": {"score": 0.5,
                                                                            "holdout": None}}
    assert edge({"score": 0.8, "holdout": None}, no_holdout, "sharpe")["beats_buy_and_hold"]


def test_the_champion_is_compared_under_this_runs_settings_and_differences_are_named():
    from cryptosweep.core.config import ObjectiveSpec
    from cryptosweep.sweep.champion import champion_request, comparability_notes

    spec = ObjectiveSpec.of({"objective": {"fees_bps": 10.0, "rounds_per_unit": 10.0}})
    params = {"model": "lightgbm", "entry_model": {}, "trading": {}}
    manifest = {"format": "cryptosweep-model/1", "seed": 9, "rounds": 45,
                "configuration": {"params": params, "budget": 9, "metrics": {"rounds": 45}},
                "objective_spec": {"objective": {"fees_bps": 5.0, "rounds_per_unit": 5.0,
                                                 "labels": "triple_barrier"}},
                "data": {"bar_interval": "15m"}}
    request = champion_request(manifest, spec)
    assert request == {"params": params, "seed": 9, "budget": 4.5}  # its 45 rounds, here
    assert comparability_notes(manifest, spec, "1h") == [
        "the champion was made with objective.fees_bps = 5.0, re-evaluated with this run's "
        "10.0",
        "the champion was trained on 15m bars, this run's are 1h: not comparable"]
    assert comparability_notes(manifest, ObjectiveSpec.of(
        {"objective": {"fees_bps": 5.0}}), "15m") == []


def test_reading_the_deployed_champion(tmp_path):
    from cryptosweep.core.files import file_sha256
    from cryptosweep.production.model import manifest_digest
    from cryptosweep.sweep.champion import read_champion

    assert read_champion(None) is None and read_champion(tmp_path / "none yet") is None
    folder = tmp_path / "champion"
    folder.mkdir()
    assert "manifest.json cannot be read" in read_champion(folder).error
    (folder / "manifest.json").write_text("{not json")
    assert "manifest.json cannot be read" in read_champion(folder).error
    (folder / "manifest.json").write_text(json.dumps({"format": "something/2"}))
    assert "is not a cryptosweep-model/1 manifest" in read_champion(folder).error
    (folder / "model.json").write_text("{}")
    manifest = {"format": "cryptosweep-model/1", "seed": 3, "rounds": 20,
                "configuration": {"params": {"model": "xgboost", "entry_model": {},
                                             "trading": {}}},
                "model_file": "model.json", "files": {"model.json": file_sha256(
                    folder / "model.json")}}
    saved = {**manifest, "seed": None}
    (folder / "manifest.json").write_text(json.dumps({**saved, "digest": manifest_digest(
        saved)}))
    assert read_champion(folder).error.endswith("the manifest records no seed")
    manifest["digest"] = manifest_digest(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    champion = read_champion(folder)
    assert champion.error is None and champion.manifest == manifest
    assert champion.digest == hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    # What trades is what was saved: a hand-edited manifest (the gate would have judged a
    # configuration that signals refuses to load) or a changed model file cannot be read.
    (folder / "manifest.json").write_text(json.dumps({**manifest, "seed": 4}))
    assert "manifest.json was changed after the model was saved" in read_champion(folder).error
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "model.json").write_text("{ }")
    assert "model.json was changed after the model was saved" in read_champion(folder).error


def test_the_gate_judges_results_without_changing_their_hash():
    """A run can be resumed (or re-judged) with other thresholds or another champion folder."""
    strict = load_config(raw=tiny_config())
    lenient = load_config(raw=tiny_config(deployment__min_dsr=0.0,
                                          deployment__champion_dir="/models/champion"))
    assert strict.results_hash() == lenient.results_hash()
    assert strict.canonical() != lenient.canonical()


def test_a_challenger_replaces_the_champion_only_when_significantly_better():
    champion = {"holdout": {"holdout_sharpe": 1.2, "holdout_trades": 30}, "error": None,
                "notes": [], "source_run": "nightly_1"}
    significant = decide(results(holdout=2.5),
                         {**champion, "paired_test": {"p_value": 0.01}})
    assert significant["decision"] == "approved"
    assert significant["criteria"][-1]["text"].startswith("significantly better than the "
                                                          "champion")
    noise = decide(results(holdout=1.5), {**champion, "paired_test": {"p_value": 0.31}})
    assert summary_line(noise) == (
        "not promoted: not significantly better than the champion (holdout Sharpe +1.50 vs "
        "+1.20, paired test p 0.310 > 0.05)")
    untested = decide(results(holdout=1.5), {**champion, "paired_test": {
        "p_value": None, "why_not": "the two holdouts are not the same bars"}})
    assert "no paired test against the champion (the two holdouts" in summary_line(untested)


def test_the_holdout_test_and_the_cost_stress_are_criteria_when_measured():
    measured = results(holdout=1.0)
    measured["best"]["holdout"]["holdout_stress"] = {"multiplier": 2.0, "sharpe": -0.4}
    measured["statistics"] = {"holdout": {"permutation": {"p_value": 0.2}}}
    decision = decide(measured)
    failed = {c["name"]: c["text"] for c in decision["criteria"] if not c["passed"]}
    assert failed == {"holdout_test": "holdout vs random entries p 0.200 > 0.05",
                      "stress": "holdout Sharpe at 2x costs -0.40 < 0"}
    measured["statistics"]["holdout"]["permutation"]["p_value"] = 0.01
    measured["best"]["holdout"]["holdout_stress"]["sharpe"] = 0.3
    assert decide(measured)["decision"] == "approved"
    off = results(holdout=1.0, max_holdout_pvalue=1, min_stress_score=None)
    off["statistics"] = {"holdout": {"permutation": None, "why_not": ["x"]}}
    assert [c["name"] for c in decide(off)["criteria"]] == list(CRITERIA[:5])


def test_the_gate_uses_the_ledgers_dsr_when_the_results_have_one():
    counted = results(dsr=0.99)
    counted["statistics"] = {"selection": {"dsr": {"dsr": 0.40, "n_trials": 350}}}
    assert summary_line(decide(counted)) == "not promoted: DSR 0.40 < 0.95"


def test_the_keep_gate_demotes_after_the_configured_failures_in_a_row():
    failing = {"holdout": {"holdout_sharpe": -0.8}, "error": None}
    history: list[dict[str, Any]] = []
    for night in range(1, 4):
        keep = keep_champion(history, failing, "sharpe", 0.0, 3)
        assert keep["failures_in_a_row"] == night and keep["demote"] is (night == 3)
        history.append({"keep": keep, "promoted": False})
    assert "3 night(s) in a row; demoted" in keep["text"]
    # A passing night, or a night without a re-evaluation, changes the count as it should.
    passing = keep_champion(history[:2], {"holdout": {"holdout_sharpe": 0.4}}, "sharpe", 0.0, 3)
    assert passing["passed"] and passing["failures_in_a_row"] == 0 and not passing["demote"]
    skipped = [*history[:2], {"keep": {"passed": None}}]
    assert keep_champion(skipped, failing, "sharpe", 0.0, 3)["demote"]
    reset = [*history[:2], {"promoted": True}]
    assert keep_champion(reset, failing, "sharpe", 0.0, 3)["failures_in_a_row"] == 1
    demoted = [*history[:2], {"decision": "demoted"}]
    assert keep_champion(demoted, failing, "sharpe", 0.0, 3)["failures_in_a_row"] == 1
    # A champion whose re-evaluation raised fails (it blocked every winner, never demoted);
    # one this run had no holdout for is still not judged.
    raised = {"holdout": None, "error": "LightGBMError: bad num_leaves",
              "reevaluation_failed": True}
    keep = keep_champion(history[:2], raised, "sharpe", 0.0, 3)
    assert keep["passed"] is False and keep["demote"] and keep["text"].startswith(
        "champion's re-evaluation failed (LightGBMError: bad num_leaves; 3 night(s) in a row")
    no_holdout = {"holdout": None, "error": "this run has no holdout"}
    assert keep_champion(history[:2], no_holdout, "sharpe", 0.0, 3)["passed"] is None


def test_the_cpcv_criterion_reads_the_winners_lower_path_quantile():
    base = results()
    assert "cpcv" not in [c["name"] for c in decide(base)["criteria"]]  # off by default
    gated = copy.deepcopy(base)
    gated["config"]["evidence"]["cpcv"].update(enabled=True, min_path_quantile=0.0)
    missing = {c["name"]: c for c in decide(gated)["criteria"]}["cpcv"]
    assert not missing["passed"] and missing["text"] == "no CPCV paths of the winner to judge"
    for quantile, passed in ((-0.4, False), (0.3, True)):
        gated["statistics"] = {"cpcv": {"entries": [
            {"eval_id": 3, "gate_quantile": 9.0, "n_paths": 5},
            {"eval_id": 7, "gate_quantile": quantile, "n_paths": 5}]}}
        criterion = {c["name"]: c for c in decide(gated)["criteria"]}["cpcv"]
        assert criterion["passed"] is passed and criterion["value"] == quantile
        assert criterion["text"] == (f"CPCV path Sharpe 25th percentile {quantile:.2f} "
                                     f"{'>=' if passed else '<'} 0 over 5 paths")


def test_the_cpcv_criterion_fails_a_winner_that_trades_on_no_path():
    """Every path without a trade has a Sharpe ratio of 0: the gate said "[pass] CPCV path
    Sharpe 25th percentile 0.00 >= 0 over 3 paths" (a real run on the EURUSD candles)."""
    gated = results()
    gated["config"]["evidence"]["cpcv"].update(enabled=True, min_path_quantile=0.0)
    entry = {"eval_id": 7, "gate_quantile": 0.0, "n_paths": 3, "path_trades": [0, 0, 0]}
    gated["statistics"] = {"cpcv": {"entries": [entry]}}
    criterion = {c["name"]: c for c in decide(gated)["criteria"]}["cpcv"]
    assert not criterion["passed"]
    assert criterion["text"] == "CPCV paths not judged (no trade on any of the winner's 3 paths)"
    entry["path_trades"] = [0, 4, 0]  # one path traded: its quantile is judged as before
    criterion = {c["name"]: c for c in decide(gated)["criteria"]}["cpcv"]
    assert criterion["passed"] and criterion["text"].startswith("CPCV path Sharpe 25th")
    entry.update(n_paths=1, path_trades=[4])  # k = 1: one path ("over 1 paths")
    criterion = {c["name"]: c for c in decide(gated)["criteria"]}["cpcv"]
    assert criterion["text"] == "CPCV path Sharpe 25th percentile 0.00 >= 0 over 1 path"
    entry["path_trades"] = [0]  # one path that never traded: "1 path" too
    criterion = {c["name"]: c for c in decide(gated)["criteria"]}["cpcv"]
    assert criterion["text"] == "CPCV paths not judged (no trade on the winner's 1 path)"


def test_the_gate_judges_the_dsr_its_trial_count_names():
    """The gate judges the DSR the run's ``deployment.trial_count`` named (recorded with the
    statistics): the effective number of trials, or the ledger's full count when asked, when
    the effective one could not be computed, and for a run made before the choice existed
    (judged then on the full count: reading it again must not change what it says)."""
    def with_selection(effective: float | None, trial_count: str | None) -> dict[str, Any]:
        out = results()
        selection: dict[str, Any] = {
            "dsr": {"dsr": 0.60, "n_trials": 16},
            "dsr_effective": ({"dsr": effective, "n_trials": 7} if effective is not None
                              else {"dsr": None, "why_not": "fewer than 2 trials"})}
        if trial_count is not None:
            selection["trial_count"] = trial_count
        out["statistics"] = {"selection": selection}
        return out

    def dsr(decision: dict[str, Any]) -> dict[str, Any]:
        return {c["name"]: c for c in decision["criteria"]}["dsr"]

    effective = decide(with_selection(0.99, "effective"))
    assert effective["decision"] == "approved"
    assert dsr(effective)["text"] == "DSR 0.99 >= 0.95 (effective N 7)"
    for trial_count, value in (("ledger", 0.99), ("effective", None), (None, 0.99)):
        judged = dsr(decide(with_selection(value, trial_count)))
        assert (judged["value"], judged["passed"], judged["text"]) == (
            0.60, False, "DSR 0.60 < 0.95"), trial_count
    old = with_selection(0.99, None)
    assert gate_dsr(old)["basis"] == "ledger" and verdict(old).dsr == 0.60
    assert gate_dsr(with_selection(0.99, "effective"))["basis"] == "effective"


def test_a_value_beside_its_threshold_never_reads_as_equal_to_it():
    """A new user: "PBO 0.50 > 0.5" for a PBO of 0.50179, which reads as a pass."""
    from cryptosweep.core.formatting import against
    from cryptosweep.judging.deployment import _dsr, _pbo

    assert _pbo({"pbo": {"pbo": 0.50179}}, 0.5)["text"] == "PBO 0.502 > 0.5"
    assert _dsr({"dsr": 0.9499}, 0.95)["text"] == "DSR 0.9499 < 0.95"
    assert _pbo({"pbo": {"pbo": 0.25}}, 0.5)["text"] == "PBO 0.25 <= 0.5"
    assert against(0.0, 0.0, sign=True) == "+0.00" and against(-0.004, 0.0, sign=True) == "-0.004"


def test_a_champion_that_stayed_flat_on_the_holdout_can_be_replaced():
    """A champion that never traded on tonight's holdout (every return 0: its threshold out of
    reach in a new regime) made the paired test refuse ("returns_b is constant"), so the gate
    refused every winner, however good, while the champion's 0 passed its keep-gate: it was
    never replaced nor demoted (a helper's attack). Its Sharpe ratio is now the flat 0."""
    from cryptosweep.sweep.evidence import paired_test

    rng = np.random.default_rng(3)
    good = rng.normal(0.002, 0.01, 1000)
    test = paired_test(good, np.zeros(1000))
    assert test["p_value"] is not None and test["p_value"] < 0.001
    assert test["sharpe_champion"] == 0.0 and "flat champion" in test["method"]
    sr = good.mean() / good.std(ddof=1)  # Lo (2002): the challenger's own variance
    assert test["z"] == pytest.approx(sr / np.sqrt((1 + sr**2 / 2) / 1000), rel=1e-12)
    champion = {"holdout": {"holdout_sharpe": 0.0, "holdout_trades": 0}, "error": None,
                "notes": [], "paired_test": test}
    assert decide(results(holdout=2.0), champion)["decision"] == "approved"
    assert paired_test(-good, np.zeros(1000))["p_value"] > 0.99  # worse than flat: no
    assert paired_test(good, np.zeros(999))["why_not"] == "the two holdouts are not the same bars"
    from cryptosweep.judging.comparison import sharpe_above_flat

    with pytest.raises(ValueError, match="constant"):
        sharpe_above_flat(np.zeros(10))
