"""How well a low budget ranks configurations as the full budget does: the question a
multi-fidelity search (Hyperband, BOHB) bets on. Successive halving keeps the configurations
that score best at a low budget; that pays only if their order at the low budget is close to
their order at the full one.

:func:`fidelity_rank_correlation` evaluates each configuration with the objective
(:func:`~cryptosweep.trading.objective.evaluate_trial`, from scratch, no checkpoint) at a low
budget and at the full budget, under the spec's ``objective.fidelity``
(:mod:`cryptosweep.trading.fidelity`), and gives Spearman's rho and Kendall's tau (tau-b, ties
counted) between the two score vectors (``scipy.stats``). Configuration ``i`` is evaluated
with seed ``derive_seed(seed, "trial", i)`` at both budgets, as a Hyperband trial keeps its
seed from rung to rung. ``benchmarks/fidelity_ranks.py`` runs it on planted-edge markets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from cryptosweep.core.config import ObjectiveSpec
from cryptosweep.core.reproducibility import derive_seed
from cryptosweep.trading.objective import evaluate_trial

__all__ = ["FidelityRanking", "budget_scores", "fidelity_rank_correlation"]


@dataclass(frozen=True)
class FidelityRanking:
    """The rank agreement of one fidelity at one low budget with the full budget:
    ``spearman_rho`` and ``kendall_tau`` (None where undefined: fewer than 2 configurations,
    or a score vector without variation), over ``n_configurations``, and both score vectors
    in the configurations' order."""

    fidelity: str
    low_budget: float
    full_budget: int
    n_configurations: int
    spearman_rho: float | None
    kendall_tau: float | None
    low_scores: tuple[float, ...]
    full_scores: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["low_scores"], out["full_scores"] = list(self.low_scores), list(self.full_scores)
        return out


def budget_scores(
    configurations: Sequence[dict[str, Any]], spec: ObjectiveSpec | dict[str, Any],
    budget: float, full_budget: int, seed: int, device: str = "cpu",
) -> list[float]:
    """The objective's score of each configuration at ``budget`` of ``full_budget`` under the
    spec's fidelity, configuration ``i`` with seed ``derive_seed(seed, "trial", i)``. An
    evaluation that raises propagates (a measurement does not hide a failure)."""
    spec = ObjectiveSpec.of(spec).model_copy(update={"full_budget": int(full_budget)})
    return [float(evaluate_trial(params, budget, derive_seed(seed, "trial", index), spec,
                                 device=device)["score"])
            for index, params in enumerate(configurations)]


def fidelity_rank_correlation(
    configurations: Sequence[dict[str, Any]], spec: ObjectiveSpec | dict[str, Any],
    low_budget: float, full_budget: int, seed: int, *,
    full_scores: Sequence[float] | None = None, device: str = "cpu",
) -> FidelityRanking:
    """Spearman's rho and Kendall's tau between the configurations' scores at ``low_budget``
    and at ``full_budget`` (both in budget units, ``R`` = ``full_budget``), under the spec's
    ``objective.fidelity``. ``full_scores``: the full-budget scores when already measured
    (:func:`budget_scores`; they are the same for every fidelity, which all train every fold
    with every bar and ``R``'s rounds at ``R``), so that several fidelities or low budgets
    share them."""
    from scipy.stats import kendalltau, spearmanr

    settings = ObjectiveSpec.of(spec).objective
    if full_scores is not None and len(full_scores) != len(configurations):
        raise ValueError(f"{len(full_scores)} full-budget scores for {len(configurations)} "
                         "configurations")
    low = budget_scores(configurations, spec, low_budget, full_budget, seed, device)
    full = (list(map(float, full_scores)) if full_scores is not None
            else budget_scores(configurations, spec, full_budget, full_budget, seed, device))
    rho = tau = None
    if len(low) >= 2 and len(set(low)) > 1 and len(set(full)) > 1:
        rho = _finite(spearmanr(low, full).statistic)
        tau = _finite(kendalltau(low, full).statistic)
    return FidelityRanking(settings.fidelity, float(low_budget), int(full_budget), len(low),
                           rho, tau, tuple(low), tuple(full))


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
