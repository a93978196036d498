"""How well a low budget ranks (``fidelity_rank_correlation``): a known answer (a "low" budget
that is the full one gives identical scores: rho = tau = 1), a small real case, the full-budget
scores reused, and undefined correlations said so."""

from __future__ import annotations

import pytest

from cryptosweep.core.config_files import load_config
from cryptosweep.core.reproducibility import derive_seed
from cryptosweep.strategies.fidelity import budget_scores, fidelity_rank_correlation
from cryptosweep.strategies.random import RandomConfigSampler
from cryptosweep.strategies.space import SearchSpace
from cryptosweep.trading.objective import evaluate_trial
from tests.support import tiny_config

FULL = 4
SEED = 11


@pytest.fixture(scope="module")
def case():
    """Four random configurations of the tiny config's space, its spec with ``folds``, and
    their full-budget scores."""
    config = load_config(raw=tiny_config(sweep_type="hyperband",
                                         hyperband={"max_iter": FULL, "eta": 2},
                                         objective__folds=3, objective__fidelity="folds"))
    sampler = RandomConfigSampler(SearchSpace.from_config(config), seed=3)
    configurations = [sampler.sample(i) for i in range(4)]
    spec = config.objective_spec()
    full = budget_scores(configurations, spec, FULL, FULL, SEED)
    return configurations, spec, full


def test_identical_scores_rank_identically(case):
    configurations, spec, full = case
    same = fidelity_rank_correlation(configurations, spec, FULL, FULL, SEED)
    assert same.low_scores == same.full_scores == tuple(full)
    assert len(set(full)) > 1  # scores that vary: the correlation is defined
    assert same.spearman_rho == pytest.approx(1.0) and same.kendall_tau == pytest.approx(1.0)
    assert same.n_configurations == 4 and same.fidelity == "folds"


def test_a_low_budget_is_measured_against_the_given_full_scores(case):
    from scipy.stats import kendalltau, spearmanr

    configurations, spec, full = case
    low = fidelity_rank_correlation(configurations, spec, 1.0, FULL, SEED, full_scores=full)
    # configuration i is evaluated with its own trial seed, on the most recent fold only
    first = evaluate_trial(configurations[0], 1.0, derive_seed(SEED, "trial", 0), spec)
    assert low.low_scores[0] == first["score"] and first["fidelity"]["folds_evaluated"] == [2]
    assert low.spearman_rho == pytest.approx(spearmanr(low.low_scores, full).statistic)
    assert low.kendall_tau == pytest.approx(kendalltau(low.low_scores, full).statistic)
    assert -1.0 <= low.spearman_rho <= 1.0 and low.to_dict()["full_scores"] == list(full)


def test_an_undefined_correlation_is_none(case):
    configurations, spec, full = case
    constant = fidelity_rank_correlation(configurations[:1], spec, FULL, FULL, SEED,
                                         full_scores=full[:1])
    assert constant.spearman_rho is None and constant.kendall_tau is None
    with pytest.raises(ValueError, match="3 full-budget scores for 4"):
        fidelity_rank_correlation(configurations, spec, FULL, FULL, SEED, full_scores=full[:3])
