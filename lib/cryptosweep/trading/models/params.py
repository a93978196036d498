"""What a trial may set for each model family: defaults laid under its parameters, the keys it
may not set (seeds, threads, devices and budgets come from the run), and parameter aliases."""

from __future__ import annotations

from typing import Any

from cryptosweep.core.errors import ConfigError

#: Default bagging of LightGBM's random-forest mode when the trial does not set it.
RF_BAGGING_FRACTION = 0.632
RF_BAGGING_FREQ = 1
#: CatBoost's learning rate when the trial does not give one (never CatBoost's automatic one).
CATBOOST_LEARNING_RATE = 0.05
#: CatBoost parameters whose automatic value depends on the iteration count (and the data), set
#: when the trial does not give them, to the values CatBoost picks for long trainings on CPU:
#: the same configuration is then the same algorithm at every budget, and CatBoost, which
#: refuses to resume a snapshot whose parameters differ, can resume one from a smaller budget.
#: ``max_ctr_complexity`` changes nothing without categorical features;
#: ``leaf_estimation_iterations`` (Newton steps per leaf) is set only when
#: ``leaf_estimation_method`` is Newton, CatBoost's default for Logloss.
CATBOOST_FIXED: dict[str, Any] = {"max_ctr_complexity": 4, "leaf_estimation_iterations": 10}
#: Seconds between CatBoost's snapshots while training: never, in practice; CatBoost also
#: writes one when training ends, which is the one a checkpoint keeps.
CATBOOST_SNAPSHOT_INTERVAL = 10**9
#: The torch MLP's parameters and their defaults; these are the only keys it accepts.
TORCH_DEFAULTS: dict[str, Any] = {
    "hidden_units": 64,
    "layers": 2,
    "dropout": 0.0,
    "learning_rate": 1e-3,
    "weight_decay": 0.0,
    "batch_size": 256,
}
#: Parameters each adapter sets itself (the trial's values are laid under these or, for
#: learning_rate, replace it).
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "lightgbm": {"objective": "binary"},
    "xgboost": {"objective": "binary:logistic"},
    "catboost": {
        "loss_function": "Logloss",
        "learning_rate": CATBOOST_LEARNING_RATE,
        **CATBOOST_FIXED,
    },
    "torch": TORCH_DEFAULTS,
}

#: Keys that would override the seed, thread count, device or budget the run derives (and so
#: break reproducibility or budget comparisons); they may not appear in a trial's parameters.
RESERVED_LIGHTGBM_KEYS = frozenset({
    "seed", "random_seed", "random_state", "bagging_seed", "feature_fraction_seed",
    "data_random_seed", "extra_seed", "drop_seed", "objective_seed", "deterministic",
    "num_threads", "num_thread", "nthread", "nthreads", "n_jobs",
    "device_type", "device", "gpu_platform_id", "gpu_device_id", "num_gpu",
    "num_iterations", "num_iteration", "n_iter", "num_tree", "num_trees", "num_round",
    "num_rounds", "nrounds", "num_boost_round", "n_estimators", "max_iter",
})  # fmt: skip
RESERVED_XGBOOST_KEYS = frozenset({
    "seed", "random_state", "seed_per_iteration", "nthread", "n_jobs", "device", "gpu_id",
    "tree_method", "num_boost_round", "n_estimators", "num_round",
})  # fmt: skip
RESERVED_CATBOOST_KEYS = frozenset({
    "random_seed", "random_state", "thread_count", "n_jobs", "task_type", "devices",
    "iterations", "num_boost_round", "n_estimators", "num_trees",
    "train_dir", "save_snapshot", "snapshot_file", "snapshot_interval", "gpu_ram_part",
})  # fmt: skip
RESERVED_TORCH_KEYS = frozenset({
    "seed", "random_seed", "random_state", "device", "num_threads", "threads", "n_jobs",
    "epochs", "max_epochs",
})  # fmt: skip
RESERVED_KEYS: dict[str, frozenset[str]] = {
    "lightgbm": RESERVED_LIGHTGBM_KEYS,
    "xgboost": RESERVED_XGBOOST_KEYS,
    "catboost": RESERVED_CATBOOST_KEYS,
    "torch": RESERVED_TORCH_KEYS,
}
#: The learning task each adapter sets itself (binary classification, with the probability it
#: predicts): a trial's ``objective`` (or one of its aliases) would be overridden, or change
#: what the probabilities mean; it may not appear in a trial's parameters.
OBJECTIVE_KEYS: dict[str, frozenset[str]] = {
    "lightgbm": frozenset({"objective", "app", "loss", "application", "objective_type",
                           "num_class", "num_classes"}),
    "xgboost": frozenset({"objective", "num_class"}),
    "catboost": frozenset({"loss_function", "objective"}),
    "torch": frozenset(),
}
#: LightGBM's distributed-training (network) parameters, every alias: a trial trains on one
#: machine, and a probe or trial that sets one opens LightGBM's socket code (which can crash
#: the process). ``tree_learner`` (and its aliases) may only be ``serial``.
LIGHTGBM_NETWORK_KEYS = frozenset({
    "machines", "nodes", "workers", "local_listen_port", "port", "local_port", "num_machines",
    "num_machine", "machine_list_filename", "mlist", "machine_list", "machine_list_file",
    "time_out", "pre_partition", "is_pre_partition",
})  # fmt: skip
LIGHTGBM_TREE_LEARNER_KEYS = ("tree_learner", "tree", "tree_type", "tree_learner_type")

#: LightGBM's aliases of the parameters the adapters read (the first one present wins).
_LGB_BOOSTING = ("boosting", "boosting_type", "boost")
_LGB_BAGGING_FRACTION = ("bagging_fraction", "sub_row", "subsample", "bagging")
_LGB_BAGGING_FREQ = ("bagging_freq", "subsample_freq")
_LGB_FEATURE_FRACTION = ("feature_fraction", "sub_feature", "colsample_bytree")


def _reject_reserved(family: str, params: dict[str, Any]) -> None:
    reserved = sorted(RESERVED_KEYS[family].intersection(params))
    if reserved:
        raise ConfigError(
            f"{family} entry_model parameters may not set {', '.join(reserved)}: seeds, threads "
            "and devices come from the run's reproducibility settings, rounds/epochs from the "
            "trial budget"
        )
    problem = forbidden_parameter(family, params)
    if problem is not None:
        name, why = problem
        raise ConfigError(f"{family} entry_model parameter {name}: {why}")


def forbidden_parameter(family: str, params: dict[str, Any]) -> tuple[str, str] | None:
    """The first parameter (name, why) the adapter of ``family`` refuses besides the
    :data:`RESERVED_KEYS`: the learning task (:data:`OBJECTIVE_KEYS`) and LightGBM's
    distributed training (:data:`LIGHTGBM_NETWORK_KEYS`, a ``tree_learner`` other than
    ``serial``); ``None`` if there is none. ``params`` may map names to anything (a value, a
    search dimension): only the names, and a tree learner's values, are read."""
    for name in sorted(params):
        if name in OBJECTIVE_KEYS.get(family, ()):
            return name, ("the adapter sets the learning task itself (binary classification); "
                          "a trial may not change it")
        if family == "lightgbm" and name in LIGHTGBM_NETWORK_KEYS:
            return name, ("LightGBM's distributed-training parameters are not allowed: a trial "
                          "trains on one machine")
        if family == "lightgbm" and name in LIGHTGBM_TREE_LEARNER_KEYS:
            value = params[name]
            choices = getattr(value, "choices", None)
            values = list(choices) if choices is not None else [value]
            if any(choice != "serial" for choice in values):
                return name, ("only 'serial' is allowed: the others are LightGBM's "
                              "distributed training, and a trial trains on one machine")
    return None


def _first(params: dict[str, Any], aliases: tuple[str, ...]) -> tuple[str | None, Any]:
    for alias in aliases:
        if alias in params:
            return alias, params[alias]
    return None, None
