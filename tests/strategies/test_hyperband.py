"""Hyperband (Li et al., JMLR 2018): the bracket table, synchronous successive halving, and
determinism under replay and interleaving, driven directly with a synthetic score function."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import pytest

from cryptosweep import HyperbandRunner
from cryptosweep.core.config_files import load_config
from cryptosweep.core.errors import ConfigError
from cryptosweep.strategies.base import EvalResult
from cryptosweep.strategies.hyperband import (
    Bracket,
    HyperbandSearch,
    Rung,
    hyperband_brackets,
)
from cryptosweep.strategies.space import SearchSpace
from tests.support import tiny_config

SPACE = SearchSpace.from_config(load_config(raw=tiny_config()))


def synthetic_score(params):
    """Deterministic stand-in for an objective: closer to a fixed point is better."""
    trading = params["trading"]
    return -math.hypot(trading["threshold"] - 0.55, trading["stop_loss"] - 0.04)


def done(request, score):
    return EvalResult(request.eval_id, request.trial_id, "done", score)


def failed(request):
    return EvalResult(request.eval_id, request.trial_id, "failed", None)


def drain(strategy):
    requests = []
    while (request := strategy.ask()) is not None:
        requests.append(request)
    return requests


def run_batched(strategy, score=synthetic_score, result_of=None):
    """Ask everything that can be asked, tell it all in reverse order, repeat."""
    result_of = result_of or (lambda request: done(request, score(request.params)))
    asked = []
    while batch := drain(strategy):
        asked += batch
        for request in reversed(batch):
            strategy.tell(result_of(request))
    assert strategy.finished
    return asked


def run_one_by_one(strategy, score=synthetic_score):
    asked = []
    while (request := strategy.ask()) is not None:
        asked.append(request)
        strategy.tell(done(request, score(request.params)))
    assert strategy.finished
    return asked


class IdSampler:
    """Params that name the trial and how much history the sampler saw."""

    def sample(self, trial_id, history):
        return {"x": trial_id, "seen": len(history),
                "trading": {"threshold": 0.5 + trial_id / 1000, "stop_loss": 0.04}}


# ------------------------------------------------------------------------------ bracket table


def table(brackets):
    return {b.s: [(r.n_configs, r.resource) for r in b.rungs] for b in brackets}


def test_bracket_table_for_81_3_is_the_papers_table_1():
    brackets = hyperband_brackets(81, 3)
    assert [b.s for b in brackets] == [4, 3, 2, 1, 0]
    assert table(brackets) == {
        4: [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        3: [(34, 3), (11, 9), (3, 27), (1, 81)],
        2: [(15, 9), (5, 27), (1, 81)],
        1: [(8, 27), (2, 81)],
        0: [(5, 81)],
    }
    assert brackets[0] == Bracket(4, (Rung(81, 1.0), Rung(27, 3.0), Rung(9, 9.0), Rung(3, 27.0),
                                      Rung(1, 81.0)))


def reference_table(max_iter, eta):
    s_max = max(s for s in range(64) if Fraction(eta) ** s <= max_iter)
    out = {}
    for s in range(s_max, -1, -1):
        n = math.ceil(Fraction((s_max + 1) * eta**s, s + 1))
        r = Fraction(max_iter) / Fraction(eta) ** s
        out[s] = [(math.floor(Fraction(n, eta**i)), float(r * eta**i)) for i in range(s + 1)]
    return s_max, out


@pytest.mark.parametrize(
    ("max_iter", "eta", "s_max"),
    [(243, 3, 5), (27, 3, 3), (100, 4, 3), (1, 2, 0), (16, 2, 4), (10, 3, 2), (81, 3, 4),
     (26, 3, 2), (1000, 10, 3)],
)
def test_bracket_table_matches_the_formulas(max_iter, eta, s_max):
    brackets = hyperband_brackets(max_iter, eta)
    expected_s_max, expected = reference_table(max_iter, eta)
    assert expected_s_max == s_max == brackets[0].s
    assert table(brackets) == expected
    for bracket in brackets:
        assert bracket.rungs[-1].resource == max_iter
        assert all(rung.n_configs >= 1 for rung in bracket.rungs)


def test_floating_log_pitfall_and_fractional_resources():
    assert math.log(243, 3) < 5  # the trap the integer computation avoids
    assert hyperband_brackets(243, 3)[0].s == 5
    assert hyperband_brackets(10, 3)[0].rungs[0].resource == 10 / 9


@pytest.mark.parametrize(
    ("max_iter", "eta"), [(0, 3), (-1, 3), (27, 1), (27, 0), (27.0, 3), (27, 3.0), (True, 3)]
)
def test_bad_bracket_arguments_are_rejected(max_iter, eta):
    with pytest.raises(ValueError):
        hyperband_brackets(max_iter, eta)


def test_bad_iterations_are_rejected():
    with pytest.raises(ValueError, match="iterations"):
        HyperbandSearch(SPACE, 1, 9, 3, 0)


# ------------------------------------------------------------------------ successive halving


def test_promotion_by_score_with_ties_and_failures():
    # max_iter 9, eta 3: s=2 (9,1),(3,3),(1,9); s=1 (5,3),(1,9); s=0 (3,9)
    strategy = HyperbandSearch(SPACE, 7, 9, 3, 1, sampler=IdSampler(), overlap_brackets=False)
    rung0 = drain(strategy)
    assert [r.trial_id for r in rung0] == list(range(9))
    scores = {0: 0.5, 1: None, 2: 0.9, 3: 0.7, 4: 0.7, 5: float("nan"), 6: 0.1, 7: 0.7, 8: None}
    for request in rung0:
        score = scores[request.trial_id]
        strategy.tell(failed(request) if score is None else done(request, score))
    rung1 = drain(strategy)  # 0.9 first, then the 0.7 tie goes to the smaller ids
    assert [r.trial_id for r in rung1] == [2, 3, 4]
    strategy.tell(failed(rung1[0]))
    strategy.tell(done(rung1[1], 0.1))
    strategy.tell(done(rung1[2], 0.1))
    (rung2,) = drain(strategy)
    assert rung2.trial_id == 3 and rung2.budget == 9.0
    assert rung2.tags == {"iteration": 0, "bracket": 2, "rung": 2, "previous_budget": 3.0}
    strategy.tell(done(rung2, 1.0))
    bracket1 = drain(strategy)
    assert [r.trial_id for r in bracket1] == [9, 10, 11, 12, 13]
    for request in bracket1:  # all failed: failures still fill the next rung, by trial id
        strategy.tell(failed(request))
    (promoted,) = drain(strategy)
    assert promoted.trial_id == 9
    summary = strategy.summary()
    first = summary["brackets"][0]
    assert [rung["trial_ids"] for rung in first["rungs"]] == [list(range(9)), [2, 3, 4], [3]]
    assert [rung["promoted"] for rung in first["rungs"]] == [[2, 3, 4], [3], []]
    assert summary["brackets"][1]["rungs"][0]["promoted"] == [9]


def test_a_rung_is_never_asked_before_the_previous_one_is_fully_told():
    strategy = HyperbandSearch(SPACE, 3, 9, 3, 1, overlap_brackets=False)
    rung0 = drain(strategy)
    assert len(rung0) == 9 and all(r.budget == 1.0 for r in rung0)
    for request in rung0[:-1]:
        strategy.tell(done(request, synthetic_score(request.params)))
        assert strategy.ask() is None
    assert not strategy.exhausted and not strategy.finished
    strategy.tell(done(rung0[-1], synthetic_score(rung0[-1].params)))
    rung1 = drain(strategy)
    assert len(rung1) == 3 and all(r.budget == 3.0 for r in rung1)
    first = {r.trial_id: r for r in rung0}
    for request in rung1:  # same trial, params and seed, at the larger budget
        assert request.params == first[request.trial_id].params
        assert request.seed == first[request.trial_id].seed
        assert request.tags == {"iteration": 0, "bracket": 2, "rung": 1, "previous_budget": 1.0}
    best3 = sorted(rung0, key=lambda r: (-synthetic_score(r.params), r.trial_id))[:3]
    assert sorted(r.trial_id for r in best3) == [r.trial_id for r in rung1]
    assert [r.eval_id for r in rung0 + rung1] == list(range(12))
    assert all(r.tags["previous_budget"] is None for r in rung0)


def test_replay_with_the_same_tells_gives_the_same_asks():
    first = run_batched(HyperbandSearch(SPACE, 11, 27, 3, 1))
    again = run_batched(HyperbandSearch(SPACE, 11, 27, 3, 1))
    assert first == again
    other_seed = run_batched(HyperbandSearch(SPACE, 12, 27, 3, 1))
    assert [r.params for r in first] != [r.params for r in other_seed]


def by_eval_id(requests):
    return sorted(requests, key=lambda r: r.eval_id)


@pytest.mark.parametrize("overlap", [True, False])
def test_asks_do_not_depend_on_how_asks_and_tells_interleave(overlap):
    for sampler in (None, IdSampler()):
        batched = run_batched(HyperbandSearch(SPACE, 5, 27, 3, 1, sampler, overlap))
        one_by_one = run_one_by_one(HyperbandSearch(SPACE, 5, 27, 3, 1, sampler, overlap))
        assert by_eval_id(batched) == one_by_one
        assert [r.eval_id for r in one_by_one] == list(range(len(one_by_one)))
    # the sampler sees a fixed prefix of the history: everything before the bracket without
    # overlap; with overlap, all but the previous bracket's last rung (here one evaluation)
    first_bracket = hyperband_brackets(27, 3)[0].n_evaluations
    seen = {r.trial_id: r.params["seen"] for r in batched}
    assert seen[0] == 0 and seen[27] == first_bracket - (1 if overlap else 0)


def test_iterations_run_every_bracket_again_with_new_configurations():
    strategy = HyperbandSearch(SPACE, 2, 9, 3, 2)
    asked = by_eval_id(run_batched(strategy))
    assert len(asked) == strategy.total_evaluations == 2 * (13 + 6 + 3)
    order = []
    for r in asked:
        key = (r.tags["iteration"], r.tags["bracket"])
        if not order or order[-1] != key:
            order.append(key)
    assert order == [(0, 2), (0, 1), (0, 0), (1, 2), (1, 1), (1, 0)]
    by_iteration = {0: set(), 1: set()}
    for r in asked:
        by_iteration[r.tags["iteration"]].add(r.trial_id)
    assert not by_iteration[0] & by_iteration[1]
    assert sorted(by_iteration[0] | by_iteration[1]) == list(range(2 * (9 + 5 + 3)))
    params = {r.trial_id: json.dumps(r.params, sort_keys=True) for r in asked}
    assert len(set(params.values())) == len(params)
    assert strategy.exhausted and strategy.finished and strategy.ask() is None


# ------------------------------------------------------------------------ overlapping brackets


def test_with_overlap_workers_run_the_next_brackets_while_a_rung_waits():
    # max_iter 9, eta 3: run 0 = s=2, eval ids 0-8 (rung 0), 9-11, 12; run 1 = s=1, 13-17, 18;
    # run 2 = s=0, 19-21. Random configurations need no history: every first rung at once.
    strategy = HyperbandSearch(SPACE, 3, 9, 3, 1)
    first = drain(strategy)
    assert [r.eval_id for r in first] == [*range(9), *range(13, 18), *range(19, 22)]
    assert [r.trial_id for r in first] == list(range(17))
    assert all(r.tags["rung"] == 0 for r in first)
    sequential = HyperbandSearch(SPACE, 3, 9, 3, 1, overlap_brackets=False)
    rest = run_one_by_one(sequential)
    assert {r.eval_id: r for r in rest}.items() >= {r.eval_id: r for r in first}.items()
    for request in first[:9]:  # run 0's first rung told: its second rung comes next
        strategy.tell(done(request, synthetic_score(request.params)))
    assert [r.eval_id for r in drain(strategy)] == [9, 10, 11]
    assert not strategy.exhausted


def test_a_model_based_sampler_waits_for_all_but_the_last_rung_of_the_previous_bracket():
    strategy = HyperbandSearch(SPACE, 3, 9, 3, 1, sampler=IdSampler())
    rung0 = drain(strategy)
    assert [r.eval_id for r in rung0] == list(range(9))
    for request in rung0:
        strategy.tell(done(request, synthetic_score(request.params)))
    rung1 = drain(strategy)
    assert [r.eval_id for r in rung1] == [9, 10, 11]
    for request in rung1:
        strategy.tell(done(request, synthetic_score(request.params)))
    ahead = drain(strategy)  # run 0's last rung, and run 1 sampled from 12 results
    assert [r.eval_id for r in ahead] == [12, *range(13, 18)]
    assert [r.params["seen"] for r in ahead[1:]] == [12] * 5
    assert strategy.ask() is None


def simulate(strategy, workers, rng):
    """Run a strategy as the runner does: up to ``workers`` in flight, evaluations finishing in a
    random order, each told as it finishes. Returns every request by eval id."""
    asked, in_flight = {}, []
    while not strategy.finished:
        while len(in_flight) < workers and (request := strategy.ask()) is not None:
            asked[request.eval_id] = request
            in_flight.append(request)
        finished = in_flight.pop(rng.randrange(len(in_flight)))
        strategy.tell(done(finished, synthetic_score(finished.params)))
    return asked


@pytest.mark.parametrize("sampler", [None, IdSampler()], ids=["random", "history"])
def test_requests_are_the_same_for_any_workers_and_completion_order(sampler):
    import random

    strategy = HyperbandSearch(SPACE, 9, 27, 3, 2, sampler)
    reference = simulate(strategy, 1, random.Random(0))
    assert sorted(reference) == list(range(strategy.total_evaluations)) == list(range(2 * 69))
    summary = strategy.summary()
    for workers, order_seed in [(2, 1), (3, 2), (7, 3), (50, 4)]:
        strategy = HyperbandSearch(SPACE, 9, 27, 3, 2, sampler)
        assert simulate(strategy, workers, random.Random(order_seed)) == reference
        assert strategy.summary() == summary
    if sampler is None:  # random configurations: overlap changes the schedule, not the sweep
        sequential = HyperbandSearch(SPACE, 9, 27, 3, 2, overlap_brackets=False)
        assert simulate(sequential, 4, random.Random(5)) == reference


def makespan(strategy, workers):
    """Wall clock of a sweep whose evaluations take ``budget`` time units on ``workers``."""
    clock, running = 0.0, []
    while not strategy.finished:
        while len(running) < workers and (request := strategy.ask()) is not None:
            running.append((clock + request.budget, request.eval_id, request))
        running.sort(key=lambda item: item[:2])
        clock, _, request = running.pop(0)
        strategy.tell(done(request, synthetic_score(request.params)))
    return clock


@pytest.mark.parametrize("sampler", [None, IdSampler()], ids=["random", "history"])
def test_overlap_keeps_several_workers_busy(sampler):
    total = HyperbandSearch(SPACE, 1, 27, 3, 2).total_budget
    assert makespan(HyperbandSearch(SPACE, 1, 27, 3, 2, sampler), 1) == total
    for workers in (2, 4, 8):
        overlapping = makespan(HyperbandSearch(SPACE, 1, 27, 3, 2, sampler), workers)
        sequential = makespan(HyperbandSearch(SPACE, 1, 27, 3, 2, sampler, False), workers)
        assert overlapping < sequential, (workers, overlapping, sequential)
        if sampler is None:  # Hyperband proper: >= 95% busy (one bracket at a time: 35-86%)
            assert total / (workers * overlapping) >= 0.95, (workers, overlapping)
    assert overlapping < 0.6 * sequential  # BOHB on 8 workers: waits one rung, still ahead


def test_summary_sums_the_budget_told_failed_included():
    strategy = HyperbandSearch(SPACE, 4, 27, 3, 1)
    assert strategy.total_budget == sum(b.budget for b in hyperband_brackets(27, 3))
    asked = []
    while batch := drain(strategy):
        asked += batch
        for i, request in enumerate(batch):  # every third evaluation fails
            strategy.tell(failed(request) if i % 3 == 0 else
                          done(request, synthetic_score(request.params)))
    summary = json.loads(json.dumps(strategy.summary()))  # JSON-able, as the results file needs
    assert summary["name"] == "hyperband" and summary["evaluations"] == len(asked)
    assert summary["budget_spent"] == pytest.approx(strategy.total_budget)
    assert summary["total_evaluations"] == len(asked)
    for entry in summary["brackets"]:
        spent = sum(r.budget for r in asked if (r.tags["iteration"], r.tags["bracket"])
                    == (entry["iteration"], entry["bracket"]))
        assert entry["budget_spent"] == pytest.approx(spent)
        for rung in entry["rungs"]:
            assert len(rung["trial_ids"]) == rung["n_configs"]
    best = strategy.best_observation()
    assert best is not None and best.budget == 27.0


def test_partial_summary_counts_only_what_was_told():
    strategy = HyperbandSearch(SPACE, 4, 9, 3, 1)
    rung0 = drain(strategy)
    strategy.tell(done(rung0[0], 0.0))
    strategy.tell(failed(rung0[1]))
    summary = strategy.summary()
    assert summary["budget_spent"] == 2.0
    assert summary["brackets"][0]["rungs"][1]["trial_ids"] == []


# ------------------------------------------------------------------------------ the old API


def test_runner_wires_config_seed_and_gpu_fallback(monkeypatch, tmp_path, caplog):
    import cryptosweep.api

    calls = []

    def fake_run_sweep(**kwargs):
        calls.append(kwargs)
        return SimpleNamespace(run_dir=tmp_path / "run", results={
            "best": {"trial_id": 1}, "evaluations": [1, 2], "strategy": {"name": "x"}})

    monkeypatch.setattr(cryptosweep.api, "run_sweep", fake_run_sweep)
    monkeypatch.setattr(cryptosweep.api, "cuda_device_count", lambda: 0)
    with caplog.at_level("INFO", logger="cryptosweep"):
        out = HyperbandRunner(seed=5, log_dir=tmp_path).run_hyperband_optimization(3)
    assert "falling back to CPU" in caplog.text
    assert out == {"best": {"trial_id": 1}, "trials": [1, 2], "brackets": {"name": "x"},
                   "run_dir": str(tmp_path / "run")}
    config = calls[0]["config"]
    assert config.name == "template" and config.sweep_type == "hyperband"
    assert config.hyperband.iterations == 3
    assert calls[0]["seed"] == 5 and calls[0]["log_dir"] == tmp_path
    assert calls[0]["gpu_ids"] is None

    monkeypatch.setattr(cryptosweep.api, "cuda_device_count", lambda: 2)
    given = load_config(raw=tiny_config())
    HyperbandRunner(config=given, workers=0).run_hyperband_optimization(1)
    assert calls[1]["gpu_ids"] == [0, 1] and calls[1]["workers"] == 0
    assert given.sweep_type == "random"  # the caller's config is left alone
    # Made Hyperband here: Hyperband's default fidelity unless the config names one.
    assert config.objective.fidelity == "folds"  # the template's
    assert calls[1]["config"].objective.fidelity == "folds"
    assert given.objective.fidelity == "rounds"
    named = load_config(raw=tiny_config(objective__fidelity="rounds"))
    HyperbandRunner(config=named, workers=0).run_hyperband_optimization(1)
    assert calls[2]["config"].objective.fidelity == "rounds"
    del calls[2]
    HyperbandRunner(config=given, enable_gpu=False).run_hyperband_optimization(1)
    assert calls[2]["gpu_ids"] is None

    with pytest.raises(ConfigError, match="n_iterations"):
        HyperbandRunner(config=given).run_hyperband_optimization(0)
    monkeypatch.setattr(cryptosweep.api, "TEMPLATE_CONFIG", tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="template"):
        HyperbandRunner().run_hyperband_optimization(1)


def test_runner_runs_a_tiny_real_sweep(monkeypatch, tmp_path):
    import cryptosweep.api

    config = load_config(raw=tiny_config(
        sweep_type="hyperband", hyperband={"max_iter": 3, "eta": 3},
        objective__folds=2, execution__workers=0,
    ))
    monkeypatch.setattr(cryptosweep.api, "cuda_device_count", lambda: 0)
    out = HyperbandRunner(seed=9, config=config, log_dir=tmp_path, show_progress=False,
                          run_name="hb").run_hyperband_optimization(n_iterations=1)
    assert Path(out["run_dir"]) == tmp_path / "hb"
    # max_iter 3, eta 3: s=1 (3,1),(1,3); s=0 (2,3)
    assert len(out["trials"]) == 6
    assert [b["bracket"] for b in out["brackets"]["brackets"]] == [1, 0]
    assert out["best"]["budget"] == 3.0
