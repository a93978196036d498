"""Glue between :class:`~cryptosweep.strategies.space.SearchSpace` and Optuna (Akiba, Sano, Yanase,
Ohta,
Koyama, "Optuna: A Next-generation Hyperparameter Optimization Framework", KDD 2019).

Optuna is used *statelessly*: :func:`propose` builds a fresh in-memory study from the told
history every time, asks ``count`` trials and throws the study away. What it proposes is then a
pure function of (space, history, sampler name, seed, count): nothing survives between calls, no
global random generator is touched, and a resumed sweep that replays the same history gets the
same points (the determinism the runner's resume relies on).

The space is *define-by-run* and conditional: ``model`` (only when there are several families),
then only the chosen family's dimensions, named ``"<family>.<name>"``, then ``"trading.<name>"``.

Samplers (:func:`make_sampler`):

- ``"tpe"``: multivariate TPE with ``group=True`` (one joint Parzen estimator per group of
  parameters that appear together, which is how TPE models a conditional space),
  ``n_startup_trials=10`` random trials first, and ``constant_liar=True`` so that the trials of
  one batch, asked together while none of them is told, spread out instead of piling up.
- ``"gp"``: Optuna's GPSampler (Matern-5/2 ARD GP, logEI; qLogEI for the trials asked while
  others of the batch are still running). It handles categorical parameters (``model`` and
  categorical dimensions) in its kernel, but not a conditional space: it models the intersection
  of the parameters of all complete trials (``model`` and the trading dimensions when there are
  several families, everything with one family); the other parameters are drawn by its
  independent sampler (uniform random, seeded). Its first 10 trials are random.
- ``"cmaes"``: Optuna's CmaEsSampler works on the float/int dimensions that every complete trial
  shares; categoricals and the family-specific dimensions of a several-family space come from an
  independent seeded RandomSampler. CmaEsSampler keeps its evolution state in the system
  attributes of the trials *it* asked, which a study rebuilt from the journal does not have, so a
  plain CMA-ES would restart at the centre of the space at every batch and never learn. Each
  batch is therefore drawn from a CMA-ES warm-started on the history (WS-CMA-ES, Nomura,
  Watanabe, Akimoto, Ozaki, Onishi, AAAI 2021; Optuna's ``source_trials``): mean and covariance
  estimated from the best 10 % of the complete trials. The first 10 trials are random.

Failed observations (score ``None`` or NaN) are added as FAIL trials; the samplers skip them.
Infinite scores are kept: TPE and CMA-ES rank them, GPSampler clips them to the finite range
(with Optuna's warning).

Categorical choices are matched by ``==`` (Optuna's rule), so a dimension whose choices include
both ``1`` and ``True`` (or ``1`` and ``1.0``) cannot tell them apart in the history.
"""

from __future__ import annotations

import contextlib
import decimal
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.exceptions import ExperimentalWarning
from optuna.samplers import BaseSampler, CmaEsSampler, GPSampler, RandomSampler, TPESampler
from optuna.trial import FrozenTrial, TrialState

from cryptosweep.core.reproducibility import derive_seed
from cryptosweep.core.settings import CategoricalDimension, FloatDimension, IntDimension
from cryptosweep.strategies.base import Observation
from cryptosweep.strategies.space import DimensionSpec, Point, SearchSpace

__all__ = [
    "MODEL_PARAM",
    "SAMPLERS",
    "STARTUP_TRIALS",
    "configuration_study",
    "distributions",
    "family_study",
    "frozen_trial",
    "make_sampler",
    "propose",
    "quiet_optuna",
    "suggest_point",
]

SAMPLERS = ("tpe", "gp", "cmaes")
#: random trials before a model is fitted (TPE, GP, CMA-ES); Optuna's TPE/GP default is 10
STARTUP_TRIALS = 10
#: Optuna parameter holding the model family (present only when there are several)
MODEL_PARAM = "model"


# ----------------------------------------------------------------------------- space <-> optuna


def _float_high(dim: FloatDimension) -> float:
    """``high`` snapped down to the step grid, exactly as Optuna would (but without its warning)."""
    if dim.step is None:
        return float(dim.high)
    low, high, step = (decimal.Decimal(str(v)) for v in (dim.low, dim.high, dim.step))
    return float((high - low) // step * step + low)


def _distribution(dim: DimensionSpec) -> BaseDistribution:
    if isinstance(dim, CategoricalDimension):
        return CategoricalDistribution(list(dim.choices))
    if isinstance(dim, IntDimension):
        high = dim.low + (dim.high - dim.low) // dim.step * dim.step
        return IntDistribution(int(dim.low), int(high), log=dim.log, step=int(dim.step))
    return FloatDistribution(float(dim.low), _float_high(dim), log=dim.log, step=dim.step)


def _dims(space: SearchSpace, family: str) -> Iterator[tuple[str, DimensionSpec]]:
    for name, dim in space.families[family].items():
        yield f"{family}.{name}", dim
    for name, dim in space.trading.items():
        yield f"trading.{name}", dim


def distributions(space: SearchSpace, family: str) -> dict[str, BaseDistribution]:
    """The Optuna distributions of a point of ``family``, in the order they are suggested."""
    if family not in space.families:
        raise ValueError(f"model family {family!r} is not in the search space "
                         f"({', '.join(space.families)})")
    out: dict[str, BaseDistribution] = {}
    if len(space.families) > 1:
        out[MODEL_PARAM] = CategoricalDistribution(list(space.families))
    out.update((name, _distribution(dim)) for name, dim in _dims(space, family))
    return out


def _suggest(trial: optuna.Trial, name: str, dim: DimensionSpec) -> Any:
    if isinstance(dim, CategoricalDimension):
        return trial.suggest_categorical(name, list(dim.choices))
    dist = _distribution(dim)
    if isinstance(dist, IntDistribution):
        return int(trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log))
    assert isinstance(dist, FloatDistribution)
    return float(trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log))


def suggest_point(trial: optuna.Trial, space: SearchSpace) -> Point:
    """Define-by-run: the family (when there are several), then only its dimensions, then the
    trading dimensions; returns our point dict with plain Python values."""
    names = list(space.families)
    family = str(trial.suggest_categorical(MODEL_PARAM, names)) if len(names) > 1 else names[0]
    entry = {name: _suggest(trial, f"{family}.{name}", dim)
             for name, dim in space.families[family].items()}
    trading = {name: _suggest(trial, f"trading.{name}", dim) for name, dim in space.trading.items()}
    return {"model": family, "entry_model": entry, "trading": trading}


def _flat_params(point: Point, space: SearchSpace) -> dict[str, Any]:
    family = point["model"]
    params: dict[str, Any] = {}
    if len(space.families) > 1:
        params[MODEL_PARAM] = family
    params.update((f"{family}.{name}", point["entry_model"][name])
                  for name in space.families[family])
    params.update((f"trading.{name}", point["trading"][name]) for name in space.trading)
    return params


def _failed(score: float | None) -> bool:
    return score is None or math.isnan(score)


def frozen_trial(number: int, point: Point, score: float | None, space: SearchSpace
                 ) -> FrozenTrial:
    """A finished Optuna trial for a told point: COMPLETE with ``score``, or FAIL when the score
    is ``None`` (or NaN). Only the chosen family's distributions are attached."""
    try:
        dists = distributions(space, point["model"])
        params = _flat_params(point, space)
        trial = optuna.trial.create_trial(
            state=TrialState.FAIL if _failed(score) else TrialState.COMPLETE,
            value=None if _failed(score) else float(score),  # type: ignore[arg-type]
            params=params, distributions=dists,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"trial {number}: its parameters do not fit the search space ({exc!r}); "
            "was the sweep's parameter_ranges changed?"
        ) from exc
    trial.number = number
    return trial


def family_study(rows: Iterable[Any], space: SearchSpace, family: str, *,
                 storage: str | None = None, study_name: str | None = None) -> optuna.Study:
    r"""An Optuna study of the journal's finished evaluations (``EvaluationRow``\ s) of one
    model family: the one place a study is built from a journal (the report's parameter
    analysis, ``cryptosweep export-optuna``).

    Each row becomes a frozen trial with the family's and the trading dimensions as parameters
    (not the model choice, constant within a family): COMPLETE with its score, or FAIL; its
    ``eval_id``, budget and seed are user attributes. In memory, or in ``storage`` (an Optuna
    storage URL) under ``study_name``.
    """
    dists = {name: dist for name, dist in distributions(space, family).items()
             if name != MODEL_PARAM}
    study = optuna.create_study(
        storage=storage, study_name=study_name, direction="maximize",
        sampler=RandomSampler(seed=0),
    )
    study.set_user_attr("family", family)
    with quiet_optuna():
        for row in rows:
            params = {name: value for name, value in _flat_params(row.params, space).items()
                      if name != MODEL_PARAM}
            failed = row.status != "done" or _failed(row.score)
            trial = optuna.trial.create_trial(
                state=TrialState.FAIL if failed else TrialState.COMPLETE,
                value=None if failed else float(row.score), params=params, distributions=dists,
                user_attrs={"eval_id": row.eval_id, "budget": row.budget, "seed": row.seed},
            )
            study.add_trial(trial)
    return study


def configuration_study(rows: Iterable[Any], space: SearchSpace, family: str,
                        full_budget: float, *, storage: str | None = None,
                        study_name: str | None = None) -> optuna.Study:
    r"""An Optuna study of the journal's finished evaluations of one model family with
    Optuna's semantics for Hyperband (``HyperbandPruner``): one trial per configuration (the
    journal's ``trial_id``), its rungs' scores its intermediate values (step: the budget),
    **COMPLETE** with its score at ``full_budget``, **PRUNED** when it was stopped at a lower
    rung (its value the last rung's score, as Optuna records a pruned trial), **FAIL** when
    its last evaluation failed. So the study's ``best_trial`` is the best full-budget
    configuration, never a low-budget score. A sweep without rungs (every evaluation at the
    full budget) gives one COMPLETE or FAIL trial per evaluation. ``user_attrs``: the
    configuration's ``trial_id``, its ``eval_ids`` and ``budgets``, its last evaluation's
    ``seed``."""
    rows = list(rows)
    dists = {name: dist for name, dist in distributions(space, family).items()
             if name != MODEL_PARAM}
    budgets = sorted({float(row.budget) for row in rows})
    integral = all(budget.is_integer() for budget in budgets)

    def step(budget: float) -> int:
        return int(budget) if integral else budgets.index(float(budget))

    configurations: dict[int, dict[float, Any]] = {}
    for row in sorted(rows, key=lambda row: row.eval_id):
        configurations.setdefault(row.trial_id, {}).setdefault(float(row.budget), row)
    study = optuna.create_study(
        storage=storage, study_name=study_name, direction="maximize",
        sampler=RandomSampler(seed=0),
    )
    study.set_user_attr("family", family)
    study.set_user_attr("full_budget", full_budget)
    with quiet_optuna():
        for trial_id, by_budget in sorted(configurations.items(),
                                          key=lambda item: min(r.eval_id
                                                               for r in item[1].values())):
            rungs = [by_budget[budget] for budget in sorted(by_budget)]
            last = rungs[-1]
            params = {name: value for name, value in _flat_params(last.params, space).items()
                      if name != MODEL_PARAM}
            scores = {step(row.budget): float(row.score) for row in rungs
                      if row.status == "done" and not _failed(row.score)}
            if last.status != "done" or _failed(last.score):
                state, value = TrialState.FAIL, None
            elif float(last.budget) >= float(full_budget):
                state, value = TrialState.COMPLETE, float(last.score)
            else:
                state, value = TrialState.PRUNED, float(last.score)
            study.add_trial(optuna.trial.create_trial(
                state=state, value=value, params=params, distributions=dists,
                intermediate_values=scores,
                user_attrs={"trial_id": trial_id, "eval_ids": [r.eval_id for r in rungs],
                            "budgets": [r.budget for r in rungs], "seed": last.seed},
            ))
    return study


# --------------------------------------------------------------------------------- samplers


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's INFO logging and ExperimentalWarnings off for the duration (then restored)."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def make_sampler(
    name: str, seed: int, *, n_startup_trials: int = STARTUP_TRIALS,
    source_trials: Sequence[FrozenTrial] = (),
) -> BaseSampler:
    """A seeded Optuna sampler (see the module docstring for the settings and why).

    ``source_trials`` (complete trials, only used by ``"cmaes"``) warm-start CMA-ES
    (WS-CMA-ES); it needs ``>= 10`` of them (its top 10 % must not be empty) and ignores them
    otherwise.
    """
    if name == "tpe":
        return TPESampler(
            seed=seed, multivariate=True, group=True, constant_liar=True,
            n_startup_trials=n_startup_trials,
        )
    if name == "gp":
        return GPSampler(
            seed=seed, n_startup_trials=n_startup_trials, warn_independent_sampling=False,
            independent_sampler=RandomSampler(seed=derive_seed(seed, "gp-independent")),
        )
    if name == "cmaes":
        sources = list(source_trials) if len(source_trials) >= STARTUP_TRIALS else None
        return CmaEsSampler(
            seed=seed, n_startup_trials=n_startup_trials, warn_independent_sampling=False,
            independent_sampler=RandomSampler(seed=derive_seed(seed, "cmaes-independent")),
            source_trials=sources,
        )
    raise ValueError(f"unknown sampler {name!r}: use one of {', '.join(SAMPLERS)}")


def _cma_sources(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The complete trials restricted to the float/int dimensions CmaEsSampler will model (the
    non-constant numeric parameters shared by all complete trials): Optuna accepts a source
    trial only when its parameters are exactly that space."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        return []
    shared = optuna.search_space.intersection_search_space(complete)
    numeric = {name: dist for name, dist in shared.items()
               if isinstance(dist, FloatDistribution | IntDistribution) and not dist.single()}
    if not numeric:
        return []
    return [
        optuna.trial.create_trial(
            value=t.value, params={name: t.params[name] for name in numeric},
            distributions=numeric,
        )
        for t in complete
    ]


def propose(
    space: SearchSpace, history: Sequence[Observation], sampler_name: str, seed: int,
    count: int, direction: str = "maximize", *, n_startup_trials: int = STARTUP_TRIALS,
) -> list[Point]:
    """``count`` new points from a fresh study holding ``history`` (in the given order).

    The asked trials are never told (they stay running, which TPE's constant liar and GP's
    qLogEI take into account). The sampler draws at random until ``n_startup_trials`` complete
    trials are in the history. Deterministic given the arguments.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    with quiet_optuna():
        trials = [frozen_trial(i, obs.params, obs.score, space) for i, obs in enumerate(history)]
        sources = _cma_sources(trials) if sampler_name == "cmaes" else ()
        study = optuna.create_study(
            direction=direction,
            sampler=make_sampler(
                sampler_name, seed, n_startup_trials=n_startup_trials, source_trials=sources
            ),
        )
        for trial in trials:
            study.add_trial(trial)
        return [suggest_point(study.ask(), space) for _ in range(count)]
