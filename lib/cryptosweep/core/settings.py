"""The sections of a sweep configuration, each a strict pydantic model (unknown keys are
errors, types are strict, every size bounded): the search-space dimensions, the strategies'
settings, data (with its update from an exchange), objective, execution, reporting,
walk-forward, deployment gate and evidence sections. :mod:`.config` assembles them into a
:class:`~cryptosweep.core.config.SweepConfig`."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from cryptosweep.core.data_settings import DataSettings
from cryptosweep.core.strict import Strict
from cryptosweep.core.vocabulary import (
    FIDELITIES,
    LABEL_KINDS,
    MODEL_FAMILIES,
    SCORE_METRICS,
    SWEEP_TYPES,
)

ModelFamily = Literal[MODEL_FAMILIES]  # type: ignore[valid-type]


SweepType = Literal[SWEEP_TYPES]  # type: ignore[valid-type]


ScoreMetric = Literal[SCORE_METRICS]  # type: ignore[valid-type]


LabelKind = Literal[LABEL_KINDS]  # type: ignore[valid-type]


Fidelity = Literal[FIDELITIES]  # type: ignore[valid-type]


#: The most evaluations one sweep may plan (every strategy, counted before anything is built).
MAX_EVALUATIONS = 100_000


#: The most boosting rounds (epochs for torch) one evaluation may train: the full budget times
#: ``objective.rounds_per_unit``.
MAX_ROUNDS = 1_000_000


#: The largest master seed: what every framework (``torch.manual_seed``), SQLite's INTEGER and
#: JSON all hold exactly.
MAX_SEED = 2**63 - 1


#: The most worker processes one sweep may start (``execution.workers``, ``--workers``).
MAX_WORKERS = 1024


#: Fees plus slippage per side, in basis points, must stay below the whole price (10,000 bps):
#: a cost of 100% of the price or more is not a cost.
MAX_COST_BPS = 10_000.0


#: The longest holding period, in bars (a million hourly bars are 114 years).
MAX_HOLDING_BARS = 1_000_000


#: The most entry thresholds one trial's inner search may backtest
#: (``objective.threshold_search``).
MAX_THRESHOLD_VALUES = 1_000


#: ``reporting.min_trades``'s default: a score from fewer trades is a small sample (also what
#: :mod:`cryptosweep.judging.caveats` assumes of a results file that predates the setting).
DEFAULT_MIN_TRADES = 30


#: ``reporting.min_importance_trials``'s default (also what the importance figure assumes of a
#: results file that predates the setting).
DEFAULT_MIN_IMPORTANCE_TRIALS = 20


#: The deflated Sharpe ratio the winner must reach: 95% confidence that its Sharpe ratio
#: exceeds the best one expected from this many trials without skill (Bailey & López de Prado
#: 2014). ``deployment.min_dsr``'s default, and the edge verdict's fixed threshold
#: (:mod:`cryptosweep.judging.verdict`).
DSR_CONFIDENCE = 0.95


#: The probability of backtest overfitting the winner must stay under: at or above one half,
#: the in-sample winner is as likely as not to fall below the median out of sample (Bailey,
#: Borwein, López de Prado & Zhu 2017). ``deployment.max_pbo``'s default, and the edge
#: verdict's fixed limit (:mod:`cryptosweep.judging.verdict`).
PBO_LIMIT = 0.5


#: The trading parameters every configuration sets (``parameter_ranges.trading``): their
#: allowed values, as (smallest, largest, whether the bounds themselves are allowed, integer).
TRADING_PARAMETERS: dict[str, tuple[float, float, bool, bool]] = {
    "threshold": (0.0, 1.0, False, False),  # a probability strictly inside (0, 1)
    "holding_period": (1, MAX_HOLDING_BARS, True, True),  # whole bars, at least one
    "stop_loss": (0.0, 1.0, False, False),  # a fraction of the entry price, in (0, 1)
    "take_profit": (0.0, math.inf, False, False),  # a fraction of the entry price, > 0
}


class FloatDimension(Strict):
    """A real-valued dimension on ``[low, high]``, uniform or log-uniform, optionally stepped."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check_bounds(self) -> FloatDimension:
        _check_range(self.low, self.high, self.log)
        if self.log and self.step is not None:
            raise ValueError("step and log cannot be combined")
        if self.step is not None:
            _check_step(self.low, self.high, self.step)
            # snap() keeps 12 decimals and Optuna counts the steps in 28-digit decimals: a
            # step of 1e-300 passed validate and the Bayesian search died in a traceback.
            if self.step < 1e-12 or (self.high - self.low) / self.step > 1e12:
                raise ValueError(f"step ({self.step!r}) must be at least 1e-12 and divide "
                                 "high - low into at most 1e12 steps (values keep 12 decimals)")
        return self


class IntDimension(Strict):
    """An integer dimension on ``[low, high]`` (both included), optionally log-scaled or stepped."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _check_bounds(self) -> IntDimension:
        _check_range(self.low, self.high, self.log)
        if self.log and self.step != 1:
            raise ValueError("step and log cannot be combined")
        _check_step(self.low, self.high, self.step)
        return self


class CategoricalDimension(Strict):
    """One of a list of choices (strings, numbers or booleans)."""

    type: Literal["categorical"]
    choices: list[str | bool | int | float] = Field(min_length=1)

    @field_validator("choices")
    @classmethod
    def _unique(cls, choices: list[Any]) -> list[Any]:
        for choice in choices:
            # A run stores its config and every trial's parameters as strict JSON, which has
            # no NaN or infinity: `.inf` passed validate and the run died in a traceback
            # after its folder was made.
            if isinstance(choice, float) and not math.isfinite(choice):
                raise ValueError(f"a numeric choice must be finite, got {choice!r} (a run "
                                 "is stored as JSON, which has no NaN or infinity)")
        keys = [json.dumps(c) for c in choices]
        if len(set(keys)) != len(keys):
            raise ValueError("choices must be unique")
        return choices


Dimension = Annotated[
    FloatDimension | IntDimension | CategoricalDimension, Field(discriminator="type")
]


def grid_values(dim: FloatDimension | IntDimension | CategoricalDimension,
                points: int) -> list[Any]:
    """The grid axis of ``dim``: ``points`` evenly spaced values (geometric on a log scale; the
    midpoint when ``points`` is 1), snapped to the step, duplicates removed; a categorical's
    choices as they are. The grid strategy's axes and the inner threshold search's values."""
    import numpy as np

    if isinstance(dim, CategoricalDimension):
        return list(dim.choices)
    if dim.low == dim.high:
        raw = [dim.low]
    elif points == 1:
        raw = [math.sqrt(dim.low * dim.high) if dim.log else (dim.low + dim.high) / 2]
    elif dim.log:
        raw = list(np.geomspace(dim.low, dim.high, points))
    else:
        raw = list(np.linspace(dim.low, dim.high, points))
    if isinstance(dim, IntDimension):
        # The largest value on the step's lattice (what random and Bayesian search draw):
        # capping at high put `high` itself in the grid when high - low is not a multiple of
        # the step (low 8, high 64, step 10 gave 8, 38, 64; the others draw 8, 18, ..., 58).
        top = dim.low + (dim.high - dim.low) // dim.step * dim.step
        values = [dim.low + dim.step * round((v - dim.low) / dim.step) for v in raw]
        values = [int(min(v, top)) for v in values]
    elif dim.step is not None:
        values = [snap(float(v), dim) for v in raw]
    else:
        values = [float(v) for v in raw]
    return list(dict.fromkeys(values))


def snap(value: float, dim: FloatDimension) -> float:
    """``value`` on the stepped float dimension's nearest step, within its bounds."""
    return step_from(value, dim, 0, clip=True)  # type: ignore[return-value]


def step_from(value: float, dim: FloatDimension, moves: int, *, clip: bool = False
              ) -> float | None:
    """The value ``moves`` steps from ``value``'s nearest step of the stepped float dimension
    (counted in steps from ``low``, not added: 0.2 + 0.1 is 0.30000000000000004, past a high of
    0.3); past its bounds the bound with ``clip``, else None."""
    assert dim.step is not None
    steps = math.floor((dim.high - dim.low) / dim.step + 1e-9)
    index = round((value - dim.low) / dim.step) + moves
    if not 0 <= index <= steps:
        if not clip:
            return None
        index = min(max(index, 0), steps)
    return float(round(dim.low + index * dim.step, 12))


def _check_step(low: float, high: float, step: float) -> None:
    """A step longer than the range leaves one value, ``low``, whatever is drawn: a range
    that says otherwise is a mistake (a step meant in other units, say), not a constant."""
    if low < high and (high - low) / step + 1e-9 < 1:  # snap's tolerance: 0.1 to 0.3 by 0.2
        raise ValueError(f"step ({step!r}) is longer than high - low ({high - low:.10g}): "
                         f"only low ({low!r}) could be drawn; lower the step, or give a "
                         "categorical with that one choice")


def _check_range(low: float, high: float, log: bool) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("low and high must be finite")
    if low > high:
        raise ValueError(f"low ({low}) > high ({high})")
    if log and low <= 0:
        raise ValueError(f"log scale needs low > 0, got {low}")


class ParameterRanges(Strict):
    """Search ranges: one block per entry-model family, plus the trading parameters."""

    catboost: dict[str, Dimension] | None = None
    lightgbm: dict[str, Dimension] | None = None
    xgboost: dict[str, Dimension] | None = None
    torch: dict[str, Dimension] | None = None
    trading: dict[str, Dimension]

    def family(self, name: str) -> dict[str, Any]:
        block = getattr(self, name)
        return dict(block) if block else {}


class HyperbandSettings(Strict):
    iterations: int = Field(default=1, ge=1, le=MAX_EVALUATIONS)
    max_iter: int = Field(default=27, ge=1, le=MAX_ROUNDS, description="full resource R of one "
                          "configuration (kept for older configs: the top-level full_budget says "
                          "the same)")
    eta: int = Field(default=3, ge=2)
    sampler: Literal["random", "tpe"] = Field(
        default="random", description="tpe: BOHB (Falkner et al., 2018)"
    )
    continue_training: bool = Field(
        default=True, description="promoted configurations continue from their checkpoints "
        "where the family allows it (docs/continuation.md) and objective.fidelity is rounds; "
        "the workers must share the run folder's file system"
    )
    overlap_brackets: bool = Field(
        default=True, description="while a bracket waits at a rung barrier, workers run the "
        "next bracket; results are the same either way, false runs brackets one after another"
    )


class RandomSettings(Strict):
    n_trials: int = Field(default=20, ge=1, le=MAX_EVALUATIONS)


class GridSettings(Strict):
    points: int = Field(default=3, ge=1, le=MAX_EVALUATIONS,
                        description="values per numeric dimension")
    max_trials: int = Field(default=MAX_EVALUATIONS, ge=1, le=MAX_EVALUATIONS)


class BayesianSettings(Strict):
    n_trials: int = Field(default=30, ge=1, le=MAX_EVALUATIONS)
    sampler: Literal["tpe", "gp", "cmaes"] = "tpe"
    batch_size: int = Field(
        default=4, ge=1, description="trials asked per synchronous batch (fixed, not the "
        "number of workers, so that results do not depend on the workers)"
    )


class GPUSettings(Strict):
    memory_fraction: float = Field(
        default=0.9, gt=0, le=1, description="share of a GPU's memory its worker may use: "
        "torch's per-process cap, CatBoost's gpu_ram_part (split between trials_per_gpu); "
        "XGBoost has no such setting"
    )
    deterministic: bool = True
    trials_per_gpu: int = Field(default=1, ge=1, description="trials run at once on one GPU")


class ObjectiveSettings(Strict):
    metric: ScoreMetric = "sharpe"
    models: list[ModelFamily] = Field(
        default_factory=lambda: ["lightgbm"], min_length=1
    )
    folds: int = Field(default=4, ge=1)
    labels: LabelKind = "triple_barrier"
    fees_bps: float = Field(default=10.0, ge=0, lt=MAX_COST_BPS, allow_inf_nan=False,
                            description="per side")
    slippage_bps: float = Field(default=0.0, ge=0, lt=MAX_COST_BPS, allow_inf_nan=False,
                                description="per side")
    allow_short: bool = False
    rounds_per_unit: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    embargo_bars: int = Field(default=0, ge=0)
    min_train_bars: int = Field(default=500, ge=10)
    threads_per_trial: int = Field(default=1, ge=1)
    # What a budget below the full one buys (Hyperband's and BOHB's lower rungs; every other
    # strategy evaluates at the full budget, where all three are the same evaluation). Left out
    # of the canonical config when "rounds", as the options below: the value a stored config
    # without the key was made with. A new Hyperband or BOHB run whose config names none gets
    # MULTI_FIDELITY_DEFAULT (folds) from the loader (config_files.load_config).
    fidelity: Fidelity = Field(
        default="rounds", description="rounds: budget x rounds_per_unit boosting rounds on every "
        "fold; folds: the full budget's rounds on the most recent ceil(folds x r / R) folds; "
        "bars: the full budget's rounds on every fold, trained on its most recent r / R of "
        "training bars (at least min_train_bars). Not named in a config file: folds for "
        "sweep_type hyperband (Hyperband and BOHB: it ranks best, "
        "benchmarks/fidelity_ranks.py), else rounds")
    # The entry threshold searched inside each trial over its fold models' predictions (no
    # retraining) instead of by the strategy; left out of the canonical config when None.
    threshold_search: int | None = Field(
        default=None, ge=2, le=MAX_THRESHOLD_VALUES, description="null: the strategy samples "
        "trading.threshold; k: each trial backtests its validation folds' predictions at k "
        "evenly spaced values of parameter_ranges.trading.threshold (a categorical's choices) "
        "and keeps the best (ties: the lowest); every value is a trial in the ledger")
    # The objective closer to trading (:data:`TRADING_OPTIONS`; each default is the behaviour
    # before it existed, and a default is left out of the canonical config, so results made
    # without the options keep their bytes and hash).
    entry_rule: Literal["threshold", "expected_value"] = Field(
        default="threshold", description="threshold: enter when P > trading.threshold; "
        "expected_value: enter when p*take_profit - (1-p)*stop_loss - round-trip costs > 0")
    bet_sizing: Literal["none", "afml"] = Field(
        default="none", description="none: the whole equity in each trade; afml: the size "
        "from the entry's probability (AFML ch. 10, 2*Phi(z)-1)")
    sample_weights: Literal["none", "uniqueness"] = Field(
        default="none", description="uniqueness: each training label weighted by its average "
        "uniqueness among overlapping triple-barrier labels (AFML ch. 4)")
    vol_target: float | None = Field(
        default=None, gt=0, le=10, allow_inf_nan=False, description="annualised volatility "
        "each position is scaled to (at most the whole equity); null: no targeting")
    funding_bps_per_8h: float = Field(
        default=0.0, ge=-100, le=100, allow_inf_nan=False, description="what a short pays "
        "per 8 hours held (funding or borrow, bps of its notional), pro-rated per bar")

    @field_validator("models")
    @classmethod
    def _unique_models(cls, models: list[str]) -> list[str]:
        if len(set(models)) != len(models):
            raise ValueError("model families must be unique")
        return models

    @model_validator(mode="after")
    def _costs_below_the_price(self) -> ObjectiveSettings:
        if self.fees_bps + self.slippage_bps >= MAX_COST_BPS:
            raise ValueError(
                f"fees_bps + slippage_bps ({self.fees_bps:g} + {self.slippage_bps:g}) must be "
                f"below {MAX_COST_BPS:g} bps per side: a cost of the whole price is not a cost"
            )
        return self


#: Why a dask scheduler address with ``USER:PASSWORD@`` is refused (the config's and
#: ``--scheduler-address``'s one message; the address itself is never echoed).
NO_CREDENTIALS_IN_ADDRESS = (
    "a dask address holds no user or password (USER:PASSWORD@ is not shown here); dask "
    "authenticates with TLS certificates: tls:// and the distributed.comm.tls settings")


class ExecutionSettings(Strict):
    workers: int | None = Field(
        default=None, ge=0, le=MAX_WORKERS,
        description="None: one per CPU core; 0: in-process; N: N workers"
    )
    scheduler_address: str | None = None
    trial_timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False,
                                        description="seconds per trial")
    max_retries: int = Field(default=2, ge=0, description="re-runs of a trial whose worker died")
    max_failure_fraction: float = Field(default=0.5, gt=0, le=1)

    @field_validator("scheduler_address")
    @classmethod
    def _no_credentials(cls, address: str | None) -> str | None:
        # Checked here so that `validate` refuses it too; never echoed (a password).
        if address is not None and "@" in address:
            raise ValueError(NO_CREDENTIALS_IN_ADDRESS)
        return address


class ReportingSettings(Strict):
    top_k: int = Field(default=5, ge=1)
    min_trades: int = Field(
        default=DEFAULT_MIN_TRADES, ge=1,
        description="a holdout or fold score from fewer trades is flagged as "
        "a small sample wherever it appears (report, text report, index, verdict)"
    )
    min_importance_trials: int = Field(
        default=DEFAULT_MIN_IMPORTANCE_TRIALS, ge=2,
        description="fANOVA importances are shown only from at least this "
        "many full-budget trials of one model family"
    )
    keep_checkpoints: bool = Field(
        default=False, description="keep the Hyperband checkpoints of a finished run (else "
        "removed once its results are written)"
    )


class WalkForwardSettings(Strict):
    """Walk-forward optimisation (``cryptosweep walkforward``): the windows' layout on the data
    (:mod:`cryptosweep.walkforward.windows`)."""

    out_of_sample_bars: int = Field(ge=1, description="bars each window's winner is traded on")
    windows: int | None = Field(default=None, ge=1, description="how many windows; None: as "
                                "many as fit after in_sample_bars")
    in_sample_bars: int | None = Field(default=None, ge=1, description="rolling: every "
                                       "in-sample period's length; anchored: the first one's")
    anchored: bool = Field(default=True, description="true: in-sample periods start at the "
                           "first bar and grow; false: they roll, in_sample_bars long")
    embargo_bars: int = Field(default=0, ge=0, description="bars between an in-sample period "
                              "and its out-of-sample segment")
    trade_rejected: bool = Field(default=False, description="false: a winner the deployment "
                                 "gate rejects is not traded: the previous window's champion "
                                 "trades the segment (flat without one), as the nightly would; "
                                 "true: every window's winner is traded, its decision recorded")


class KillSwitchSettings(Strict):
    """When the nightly demotes a deployed champion on its live paper trades
    (:mod:`cryptosweep.nightly.field`): the probabilistic Sharpe ratio of its live returns
    against the Sharpe ratio it was validated with (Bailey & Lopez de Prado 2012), once enough
    live evidence exists."""

    max_psr: float = Field(
        default=0.05, gt=0, lt=1, description="demote when P(true live Sharpe ratio >= the "
        "validated one) falls below this (0.05: the validated Sharpe is rejected at 95% "
        "confidence)"
    )
    min_live_bars: int = Field(default=48, ge=2, description="the fewest live bars before the "
                               "kill switch may act")
    min_live_trades: int = Field(default=5, ge=1, description="the fewest closed live trades "
                                 "before the kill switch may act")


class DeploymentSettings(Strict):
    """The deployment gate (:mod:`cryptosweep.judging.deployment`): what the winner of a run
    must show to be approved for production. The decision judges results, it does not change
    them: the whole section is left out of the results hash (:data:`EXECUTION_ONLY`)."""

    min_dsr: float = Field(
        default=DSR_CONFIDENCE, ge=0, le=1,
        description="deflated Sharpe ratio of the winner at least "
        "this: 95% confidence that its Sharpe ratio beats the best one this many trials would "
        "show without skill (Bailey & Lopez de Prado 2014)"
    )
    max_pbo: float = Field(
        default=PBO_LIMIT, ge=0, le=1, description="probability of backtest overfitting at most "
        "this: above one half, the search's winner falls below the median out of sample more "
        "often than not (Bailey et al. 2017)"
    )
    min_holdout_score: float = Field(
        default=0.0, allow_inf_nan=False, description="the winner's holdout objective.metric "
        "at least this (0: it does not lose to never trading)"
    )
    min_holdout_trades: int | None = Field(
        default=None, ge=0, description="the winner made at least this many trades on the "
        "holdout: with fewer, its holdout score is mostly noise. None: reporting.min_trades, "
        "the one small-sample threshold the report flags with too"
    )
    max_holdout_pvalue: float = Field(
        default=0.05, gt=0, le=1, description="the winner's holdout beats random entries of "
        "the same exposure (same number and lengths of trades at random times): permutation "
        "p-value at most this (1: criterion off)"
    )
    stress_multiplier: float = Field(
        default=2.0, ge=1, le=100, allow_inf_nan=False, description="fees and slippage are "
        "multiplied by this for the cost stress of the winner's holdout"
    )
    min_stress_score: float | None = Field(
        default=0.0, allow_inf_nan=False, description="the winner's holdout objective.metric "
        "at stress_multiplier x costs at least this (None: criterion off)"
    )
    trial_count: Literal["effective", "ledger"] = Field(
        default="effective", description="the N the gate's DSR deflates by: 'effective', "
        "tonight's trials clustered by their validation returns (near copies count once, "
        "Lopez de Prado 2019; without clusters, discounted by their mean correlation) plus "
        "every other trial of the ledger; 'ledger', every configuration and extra seed of the "
        "trial ledger (benchmarks/gate_calibration.py "
        "measured both: the same false approvals, more power with 'effective')"
    )
    dsr_variance: Literal["no_skill", "trials"] = Field(
        default="no_skill", description="the variance of Sharpe ratios behind the DSR's SR0 (the "
        "best Sharpe ratio N trials without skill show by luck): 'no_skill', what a Sharpe ratio "
        "estimated on the winner's T bars varies by when the true one is 0, 1/(T-1) per bar "
        "(Lo 2002; Mertens 2002), the luck the N counted trials have; 'trials', the variance "
        "across the ledger's trials' Sharpe ratios (Bailey & Lopez de Prado 2014 as written), "
        "which also grows with the real differences between them: with an edge that some "
        "trials find and others miss, or costs that some pay more of "
        "(benchmarks/gate_calibration.py measured both)"
    )
    rescore_seeds: int = Field(
        default=3, ge=1, le=20, description="the top-k are re-scored at the full budget from "
        "scratch with this many seeds (the first is the recorded one); the winner is the best "
        "mean, and every seed counts as a trial"
    )
    neighbourhood: bool = Field(
        default=True, description="re-score the winner's neighbours (each trading parameter "
        "one step either way, each numeric model parameter +-10%) from scratch on validation"
    )
    ledger: str | None = Field(
        default=None, description="the trial ledger (SQLite) that counts every configuration "
        "and seed tried on overlapping bars across nights; None: trials.db beside "
        "champion_dir, else in the run folder"
    )
    trial_window_days: float = Field(
        default=30.0, gt=0, le=36_500, allow_inf_nan=False, description="trials recorded in "
        "the ledger within this many days, on overlapping bars of the same market, count"
    )
    min_improvement: float = Field(
        default=0.0, allow_inf_nan=False, description="when a champion is deployed, the "
        "winner's holdout score must be at least the champion's (re-evaluated on the same "
        "bars) plus this"
    )
    champion_alpha: float = Field(
        default=0.05, gt=0, le=1, description="a challenger replaces the champion only when "
        "a paired test on the same holdout bars (Jobson-Korkie with Memmel's correction) says "
        "its Sharpe ratio is higher at this level (1: any higher score)"
    )
    demote_after: int = Field(
        default=3, ge=1, le=365, description="a champion whose own re-evaluation fails its "
        "keep criterion (holdout score >= min_holdout_score) this many nights in a row is "
        "demoted"
    )
    champion_dir: str | None = Field(
        default=None, description="the deployed champion's model folder (its manifest.json); "
        "None: no champion to compare with. The nightly sets MODELS_DIR/champion"
    )
    kill_switch: KillSwitchSettings = KillSwitchSettings()


class CPCVSettings(Strict):
    """Combinatorial purged cross-validation of the top-k (AFML ch. 12,
    :mod:`cryptosweep.trading.cpcv`): the development bars cut into ``groups`` groups, every
    choice of ``test_groups`` of them tested by a model trained on the others (purged and
    embargoed), the test predictions stitched into ``φ[groups, test_groups]`` backtest paths.
    It judges the search's results, it does not change them (:data:`EXECUTION_ONLY`)."""

    enabled: bool = Field(default=False, description="re-score each top-k configuration on "
                          "every CPCV path (C(groups, test_groups) fits each)")
    groups: int = Field(default=6, ge=3, le=16, description="N: contiguous groups of the "
                        "development bars")
    test_groups: int = Field(default=2, ge=1, description="k: groups tested by each split")
    gate_quantile: float = Field(default=0.25, gt=0, lt=1, description="the quantile of the "
                                 "winner's path Sharpe ratios that min_path_quantile judges")
    min_path_quantile: float | None = Field(
        default=None, allow_inf_nan=False, description="the gate: the winner's gate_quantile "
        "of its annualised path Sharpe ratios at least this (None: criterion off)")

    @model_validator(mode="after")
    def _fewer_test_groups(self) -> CPCVSettings:
        if self.test_groups >= self.groups:
            raise ValueError(f"test_groups ({self.test_groups}) must be fewer than groups "
                             f"({self.groups}): something must be left to train on")
        return self


class RegimeLabelSettings(Strict):
    """The market regimes the holdout and validation bars are sliced by
    (:class:`cryptosweep.trading.regimes.RegimeSettings`, whose defaults these are)."""

    enabled: bool = True
    trend_lookback: int = Field(default=24, ge=1)
    trend_threshold: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    volatility_window: int = Field(default=24, ge=2)
    volatility_min_history: int = Field(default=168, ge=1)


class OtherMarket(Strict):
    """Another market's candles the top-k are re-fitted and scored on, each with its own
    purged walk-forward folds (the sweep's objective settings)."""

    name: str = Field(min_length=1, max_length=100, description="how the report names it")
    data: DataSettings = Field(description="its candles, as the data section reads them "
                               "(path, format, columns, ...); update is not used")


class EvidenceSettings(Strict):
    """Evidence beyond the one walk-forward path: CPCV paths, regimes, other markets. It
    judges results, it does not change the search's: left out of the results hash."""

    cpcv: CPCVSettings = CPCVSettings()
    regimes: RegimeLabelSettings = RegimeLabelSettings()
    markets: list[OtherMarket] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _distinct_names(self) -> EvidenceSettings:
        names = [market.name for market in self.markets]
        if len(set(names)) != len(names):
            raise ValueError(f"evidence.markets: names must be distinct, got {names}")
        return self
