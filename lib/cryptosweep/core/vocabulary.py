"""The names every layer shares, defined once: model families, sweep types, score metrics,
label kinds, fidelities and the metrics' keys several layers read. The config's types, the
objective, the models and the reports all read them here.
"""

from __future__ import annotations

#: Entry-model families, each with an adapter in ``trading/models/``.
MODEL_FAMILIES = ("catboost", "lightgbm", "torch", "xgboost")
#: Search strategies (``sweep_type``).
SWEEP_TYPES = ("hyperband", "grid", "random", "bayesian")
#: Metrics a trial can be scored by (``objective.metric``): the mean over folds of one of them.
SCORE_METRICS = ("sharpe", "sortino", "calmar", "total_return")
#: How entries are labelled (``objective.labels``).
LABEL_KINDS = ("triple_barrier", "fixed_horizon")
#: What a budget below the full one buys an evaluation (``objective.fidelity``): fewer boosting
#: rounds, fewer walk-forward folds, or fewer training bars (:mod:`cryptosweep.trading.fidelity`).
FIDELITIES = ("rounds", "folds", "bars")
#: The fidelity a new Hyperband or BOHB run gets when its config names none: the one whose low
#: budgets rank configurations most as the full budget does (benchmarks/fidelity_ranks.py: on 12
#: planted-edge markets, Spearman's rho 0.72 and 0.83 at R/9 and R/3 against 0.53 and 0.72 for
#: rounds). A stored config without the key means "rounds", the default before it
#: (:func:`cryptosweep.core.config_files.load_config`).
MULTI_FIDELITY_DEFAULT = "folds"
#: The key of an evaluation's metrics that holds its inner threshold search
#: (``objective.threshold_search``, :func:`cryptosweep.trading.objective.evaluate_trial`):
#: ``chosen`` (the threshold of its score) and ``evaluations`` (per threshold, ascending:
#: ``threshold``, ``score``, ``sharpe`` (per bar, as the trial ledger records it),
#: ``n_trades``).
THRESHOLD_SEARCH = "threshold_search"
#: How a score metric is named in a sentence ("holdout Sharpe -3.08 < 0").
METRIC_LABELS = {"sharpe": "Sharpe", "sortino": "Sortino", "calmar": "Calmar",
                 "total_return": "total return"}
#: The label of a configuration that does not beat never trading (see
#: :mod:`cryptosweep.judging.edge`).
NO_EDGE = "no edge"
#: The deployment gate's decisions (:mod:`cryptosweep.judging.deployment`).
APPROVED, REJECTED = "approved", "rejected"
