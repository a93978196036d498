"""Hyperband (Li, Jamieson, DeSalvo, Rostamizadeh & Talwalkar, "Hyperband: A Novel Bandit-Based
Approach to Hyperparameter Optimization", JMLR 18(185):1-52, 2018).

Hyperband hedges over how aggressively to stop poor configurations early: it runs *brackets*
``s = s_max, ..., 0``; bracket ``s`` draws ``n`` configurations and runs synchronous successive
halving on them, starting at resource ``r = R / eta**s`` and keeping the best ``1/eta`` of them
at every rung until the survivors get the full resource ``R`` (the paper's Algorithm 1 and
Table 1; ``R`` is the config's full budget: ``full_budget``, or ``hyperband.max_iter``). What a
resource below ``R`` buys an evaluation is the objective's business, not the bracket's: fewer
boosting rounds, fewer folds or fewer training bars (``objective.fidelity``,
:mod:`cryptosweep.trading.fidelity`); the bracket arithmetic is the same for each.

Scheduling is deterministic. Inside a bracket every rung is a barrier: nothing of rung ``i + 1``
is asked before every evaluation of rung ``i`` has been told. Every evaluation has a canonical id
(bracket run by bracket run, rung by rung), so what eval id ``k`` runs depends only on the seed
and on the results told, never on the number of workers or the order in which evaluations
complete, and replaying the journal resumes a sweep exactly. By default brackets overlap: while a
bracket waits at a barrier (its last rungs may hold a single evaluation), the workers run the next
bracket's evaluations instead of idling; ``overlap_brackets=False`` runs them one after another.

New configurations come from a :class:`~cryptosweep.strategies.base.ConfigSampler` (random draws
by default; a model-based sampler gives BOHB). A bracket's configurations are all sampled from a
fixed prefix of the told history (see :class:`HyperbandSearch`), so the asks do not depend on how
ask and tell calls interleave.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from cryptosweep.core.reproducibility import derive_seed
from cryptosweep.records.ranking import ranked
from cryptosweep.strategies.base import (
    ConfigSampler,
    EvalRequest,
    EvalResult,
    Observation,
    Strategy,
)
from cryptosweep.strategies.random import RandomConfigSampler
from cryptosweep.strategies.space import SearchSpace

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

__all__ = [
    "Bracket",
    "HyperbandSearch",
    "Rung",
    "hyperband_brackets",
]


# ------------------------------------------------------------------------------ the bracket table


@dataclass(frozen=True)
class Rung:
    """One rung of successive halving: ``n_configs`` evaluations at ``resource`` each."""

    n_configs: int
    resource: float


@dataclass(frozen=True)
class Bracket:
    """Bracket ``s``: successive halving over ``s + 1`` rungs."""

    s: int
    rungs: tuple[Rung, ...]

    @property
    def n_evaluations(self) -> int:
        return sum(rung.n_configs for rung in self.rungs)

    @property
    def budget(self) -> float:
        return sum(rung.n_configs * rung.resource for rung in self.rungs)


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}: {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def hyperband_brackets(max_iter: int, eta: int) -> list[Bracket]:
    """The brackets of one Hyperband iteration, ``s = s_max`` down to ``0`` (paper, Alg. 1).

    ``s_max`` is the largest ``s`` with ``eta**s <= max_iter``, computed in integers (a
    floating ``log(243, 3)`` is ``4.999...``). Bracket ``s`` starts ``n = ceil((s_max + 1) *
    eta**s / (s + 1))`` configurations at ``r = max_iter / eta**s`` (possibly fractional); rung
    ``i`` runs ``floor(n / eta**i)`` of them at ``r * eta**i``. The last rung is at ``max_iter``.
    """
    _check_int("max_iter", max_iter, 1)
    _check_int("eta", eta, 2)
    s_max = 0
    while eta ** (s_max + 1) <= max_iter:
        s_max += 1
    brackets = []
    for s in range(s_max, -1, -1):
        n = -(-(s_max + 1) * eta**s // (s + 1))  # ceil in integers
        r = Fraction(max_iter, eta**s)
        rungs = tuple(Rung(n // eta**i, float(r * eta**i)) for i in range(s + 1))
        brackets.append(Bracket(s, rungs))
    return brackets


# ------------------------------------------------------------------------------------ the search


def _rank_key(score: float | None, trial_id: int) -> tuple[int, float, int]:
    """Best first: successful by score descending, then failed (None/NaN); ties by trial id."""
    if score is None or math.isnan(score):
        return (1, 0.0, trial_id)
    return (0, -score, trial_id)


@dataclass
class _RungState:
    """What happened at one rung of one bracket of one iteration."""

    trial_ids: list[int]
    scores: dict[int, float | None]
    promoted: list[int] | None = None
    asked: int = 0  # how many of trial_ids were asked


@dataclass
class _BracketRun:
    """One bracket of one iteration, with the fixed eval and trial ids it owns.

    Evaluation ids are canonical: rung ``i`` of this run owns ``rung_starts[i] ...`` (its
    ``n_configs`` positions, in order), whatever the order in which they are asked.
    """

    iteration: int
    bracket: Bracket
    first_eval: int
    first_trial: int
    history_cut: int  # the told evaluations (eval ids < history_cut) its sampler sees
    rungs: list[_RungState] = field(default_factory=list)

    @property
    def budget_spent(self) -> float:
        """Budget of every told evaluation, failed ones included (summed rung by rung, so the
        float sum does not depend on the order of the tells)."""
        return sum(len(state.scores) * planned.resource
                   for state, planned in zip(self.rungs, self.bracket.rungs, strict=False))

    @functools.cached_property
    def rung_starts(self) -> list[int]:
        """The first eval id of each rung."""
        starts, at = [], self.first_eval
        for rung in self.bracket.rungs:
            starts.append(at)
            at += rung.n_configs
        return starts

    @property
    def fully_asked(self) -> bool:
        return (len(self.rungs) == len(self.bracket.rungs)
                and self.rungs[-1].asked == len(self.rungs[-1].trial_ids))


class HyperbandSearch(Strategy):
    """Hyperband over a search space, ``iterations`` passes over all brackets.

    Ids are canonical. Bracket runs are numbered in the paper's order (iteration by iteration,
    ``s = s_max`` down to ``0``); run ``j`` owns a fixed, consecutive range of eval ids (rung by
    rung) and of trial ids. A configuration promoted to the next rung keeps its trial id, params
    and seed (``derive_seed(seed, "trial", trial_id)``) and is asked again at the larger resource.
    Promotion takes the next rung's ``n_configs`` best by score, ties broken by the smaller trial
    id; failed evaluations (score ``None``) rank last and are promoted only when there are not
    enough successful ones.

    **Overlapping brackets** (``overlap_brackets``, the default). Inside a bracket every rung is a
    barrier, so a bracket alone leaves workers idle while its last, small rungs run. With overlap,
    ``ask`` then proposes the next bracket's evaluations instead, always the smallest eval id that
    can be proposed. What a bracket run contains never depends on when it started:

    - with a history-free sampler (random: Hyperband proper), a run's configurations depend only
      on the seed and its trial ids, so a run may start as soon as a worker is free;
    - with a model-based sampler (``uses_history``, e.g. BOHB's TPE), run ``j`` is sampled from
      the evaluations with eval ids below ``history_cut`` (a fixed set, in eval-id order): every
      evaluation of runs ``< j - 1`` and of run ``j - 1`` but its last rung. It starts once those
      are told, i.e. while run ``j - 1``'s final, full-budget rung runs.

    Without overlap a run starts when the previous one is fully told and its sampler sees
    everything before it: the paper's sequential schedule.

    In both modes the evaluation behind every eval id, and the history each tell adds, are the
    same with 1 or N workers and under any completion order, so replaying the journal resumes a
    sweep exactly; only the order in which ids are asked (and so the wall-clock) changes.
    """

    name = "hyperband"
    ordered_tells = False  # a rung's decision and the sampler's history prefix are order-free

    def __init__(
        self, space: SearchSpace, seed: int, max_iter: int, eta: int, iterations: int,
        sampler: ConfigSampler | None = None, overlap_brackets: bool = True,
    ) -> None:
        super().__init__()
        self.brackets = hyperband_brackets(max_iter, eta)
        self.iterations = _check_int("iterations", iterations, 1)
        self.space, self.seed, self.max_iter, self.eta = space, seed, max_iter, eta
        self.overlap_brackets = bool(overlap_brackets)
        self.sampler: ConfigSampler = (
            sampler if sampler is not None else RandomConfigSampler(space, seed)
        )
        self._uses_history = bool(getattr(self.sampler, "uses_history", True))
        self._runs: list[_BracketRun] = []
        first_eval = first_trial = 0
        for iteration in range(iterations):
            for bracket in self.brackets:
                self._runs.append(_BracketRun(
                    iteration, bracket, first_eval, first_trial,
                    self._history_cut(first_eval),
                ))
                first_eval += bracket.n_evaluations
                first_trial += bracket.rungs[0].n_configs
        self._first_open = 0  # every run before it is fully asked
        self._params: dict[int, dict[str, Any]] = {}
        self._budgets: dict[int, list[float]] = {}  # trial id -> budgets asked, in order
        self._placed: dict[int, tuple[int, int]] = {}  # eval id -> (run, rung)
        self._observations: dict[int, Observation] = {}  # eval id -> what was told
        self._told_prefix = 0  # every eval id below it is told

    def _history_cut(self, first_eval: int) -> int:
        """How many told evaluations the next run's sampler sees (see the class docstring)."""
        if not self._runs or not self.overlap_brackets:
            return first_eval
        previous = self._runs[-1]
        return first_eval - previous.bracket.rungs[-1].n_configs

    # -------------------------------------------------------------------------- ask and tell

    def _propose(self, eval_id: int) -> EvalRequest | None:
        """The smallest eval id that can be proposed now (``eval_id``, the count, is unused)."""
        for pos in range(self._first_open, len(self._runs)):
            run = self._runs[pos]
            if not run.rungs and not self._start(run):
                return None  # later runs need at least as much history
            state = run.rungs[-1]
            if state.asked == len(state.trial_ids) and len(state.scores) == len(state.trial_ids):
                self._promote(run)
                state = run.rungs[-1]
            if state.asked < len(state.trial_ids):
                request = self._request(pos, run, state)
                while self._first_open < len(self._runs) and self._runs[self._first_open] \
                        .fully_asked:
                    self._first_open += 1
                return request
            if not self.overlap_brackets:
                return None
        return None

    def _start(self, run: _BracketRun) -> bool:
        """Sample a run's configurations, if the history its sampler needs is told."""
        gated = self._uses_history or not self.overlap_brackets
        if gated and self._told_prefix < run.history_cut:
            return False
        history = tuple(self._observations[eval_id] for eval_id in range(run.history_cut)) \
            if self._uses_history else ()
        n = run.bracket.rungs[0].n_configs
        trial_ids = list(range(run.first_trial, run.first_trial + n))
        for trial_id in trial_ids:
            self._params[trial_id] = self.sampler.sample(trial_id, history)
        run.rungs.append(_RungState(trial_ids, {}))
        return True

    def _promote(self, run: _BracketRun) -> None:
        """Open the next rung of a run whose current rung is fully told (if it has one)."""
        i = len(run.rungs) - 1
        if i + 1 >= len(run.bracket.rungs):
            return
        state = run.rungs[i]
        n_next = run.bracket.rungs[i + 1].n_configs
        order = sorted(state.trial_ids, key=lambda t: _rank_key(state.scores[t], t))
        state.promoted = sorted(order[:n_next])
        run.rungs.append(_RungState(list(state.promoted), {}))

    def _request(self, pos: int, run: _BracketRun, state: _RungState) -> EvalRequest:
        rung = len(run.rungs) - 1
        trial_id = state.trial_ids[state.asked]
        eval_id = run.rung_starts[rung] + state.asked
        state.asked += 1
        budget = run.bracket.rungs[rung].resource
        previous = self._budgets.setdefault(trial_id, [])
        tags = {
            "iteration": run.iteration,
            "bracket": run.bracket.s,
            "rung": rung,
            "previous_budget": previous[-1] if previous else None,
        }
        previous.append(budget)
        self._placed[eval_id] = (pos, rung)
        return EvalRequest(
            eval_id=eval_id,
            trial_id=trial_id,
            params=copy.deepcopy(self._params[trial_id]),
            budget=budget,
            seed=derive_seed(self.seed, "trial", trial_id),
            tags=tags,
        )

    def _observe(self, result: EvalResult) -> None:
        pos, rung = self._placed[result.eval_id]  # the base class checked it was asked
        run = self._runs[pos]
        budget = run.bracket.rungs[rung].resource
        state = run.rungs[rung]
        trial_id = result.trial_id
        if trial_id not in state.trial_ids or trial_id in state.scores:
            raise RuntimeError(
                f"evaluation {result.eval_id}: trial {trial_id} was not asked at this rung"
            )
        score = result.score if result.status == "done" else None
        state.scores[trial_id] = score
        self._observations[result.eval_id] = Observation(
            trial_id, copy.deepcopy(self._params[trial_id]), budget, score)
        while self._told_prefix in self._observations:
            self._told_prefix += 1

    # ------------------------------------------------------------------------------ progress

    @property
    def exhausted(self) -> bool:
        return self._first_open >= len(self._runs)

    @property
    def total_evaluations(self) -> int:
        return self.iterations * sum(bracket.n_evaluations for bracket in self.brackets)

    @property
    def total_budget(self) -> float:
        return self.iterations * sum(bracket.budget for bracket in self.brackets)

    @property
    def history(self) -> tuple[Observation, ...]:
        """Every result told so far, in ``eval_id`` order."""
        return tuple(self._observations[eval_id] for eval_id in sorted(self._observations))

    def best_observation(self) -> Observation | None:
        """The best successful result at the largest budget reached (ties: smaller trial id)."""
        best = ranked(self.history, tie="trial_id")
        return best[0] if best else None

    def summary(self) -> dict[str, Any]:
        """Base summary plus, per (iteration, bracket), its rungs, who ran and who was promoted,
        and the budget spent (every told evaluation, failed ones included)."""
        out = super().summary()
        brackets = []
        for run in self._runs:
            rungs = []
            for i, planned in enumerate(run.bracket.rungs):
                state = run.rungs[i] if i < len(run.rungs) else None
                rungs.append({
                    "rung": i,
                    "n_configs": planned.n_configs,
                    "resource": planned.resource,
                    "trial_ids": list(state.trial_ids) if state else [],
                    "promoted": list(state.promoted) if state and state.promoted is not None
                    else [],
                })
            brackets.append({
                "iteration": run.iteration,
                "bracket": run.bracket.s,
                "rungs": rungs,
                "budget_spent": run.budget_spent,
            })
        out.update(
            max_iter=self.max_iter, eta=self.eta, iterations=self.iterations,
            total_evaluations=self.total_evaluations, total_budget=self.total_budget,
            budget_spent=sum(run.budget_spent for run in self._runs),
            brackets=brackets,
        )
        return out
