"""The sweep configuration, typed: a pydantic model whose sections stay typed wherever they
travel (:class:`SweepConfig`, :class:`ObjectiveSpec` for the workers), the hash of what decides
results, and the seed rule. Files and ``--set`` are read by :mod:`.config_files`.

Every user mistake (unknown key, wrong type, ``low > high``, unknown model family, a trading
parameter missing or with values a backtest cannot use, a size past its bound) becomes one
:class:`~cryptosweep.core.errors.ConfigError` whose message names the field; the CLI prints it
on one line and exits with code 2. Counts are strict integers (``true`` or ``3.5`` is not a
count) and every size has a bound (:data:`MAX_EVALUATIONS`, :data:`MAX_ROUNDS`,
:data:`MAX_SEED`), so a typo can never ask for more than a machine can hold.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import operator
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cryptosweep.core.errors import ConfigError
from cryptosweep.core.files import canonical_json
from cryptosweep.core.vocabulary import LABEL_KINDS, MODEL_FAMILIES, SCORE_METRICS, SWEEP_TYPES

ModelFamily = Literal[MODEL_FAMILIES]  # type: ignore[valid-type]
SweepType = Literal[SWEEP_TYPES]  # type: ignore[valid-type]
ScoreMetric = Literal[SCORE_METRICS]  # type: ignore[valid-type]
LabelKind = Literal[LABEL_KINDS]  # type: ignore[valid-type]


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
#: The trading parameters every configuration sets (``parameter_ranges.trading``): their
#: allowed values, as (smallest, largest, whether the bounds themselves are allowed, integer).
TRADING_PARAMETERS: dict[str, tuple[float, float, bool, bool]] = {
    "threshold": (0.0, 1.0, False, False),  # a probability strictly inside (0, 1)
    "holding_period": (1, MAX_HOLDING_BARS, True, True),  # whole bars, at least one
    "stop_loss": (0.0, 1.0, False, False),  # a fraction of the entry price, in (0, 1)
    "take_profit": (0.0, math.inf, False, False),  # a fraction of the entry price, > 0
}


class _Strict(BaseModel):
    """Unknown keys are errors, and types are strict: ``true`` is not a number, ``3.0`` not a
    count and ``"3"`` neither (an integer is still a valid float)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# ------------------------------------------------------------------------------------ dimensions


class FloatDimension(_Strict):
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
        return self


class IntDimension(_Strict):
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
        return self


class CategoricalDimension(_Strict):
    """One of a list of choices (strings, numbers or booleans)."""

    type: Literal["categorical"]
    choices: list[str | bool | int | float] = Field(min_length=1)

    @field_validator("choices")
    @classmethod
    def _unique(cls, choices: list[Any]) -> list[Any]:
        keys = [json.dumps(c) for c in choices]
        if len(set(keys)) != len(keys):
            raise ValueError("choices must be unique")
        return choices


Dimension = Annotated[
    FloatDimension | IntDimension | CategoricalDimension, Field(discriminator="type")
]


def _check_range(low: float, high: float, log: bool) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("low and high must be finite")
    if low > high:
        raise ValueError(f"low ({low}) > high ({high})")
    if log and low <= 0:
        raise ValueError(f"log scale needs low > 0, got {low}")


class ParameterRanges(_Strict):
    """Search ranges: one block per entry-model family, plus the trading parameters."""

    catboost: dict[str, Dimension] | None = None
    lightgbm: dict[str, Dimension] | None = None
    xgboost: dict[str, Dimension] | None = None
    torch: dict[str, Dimension] | None = None
    trading: dict[str, Dimension]

    def family(self, name: str) -> dict[str, Any]:
        block = getattr(self, name)
        return dict(block) if block else {}


# -------------------------------------------------------------------------------------- sections


class HyperbandSettings(_Strict):
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
        "where the family allows it (docs/continuation.md); the workers must share the run "
        "folder's file system"
    )
    overlap_brackets: bool = Field(
        default=True, description="while a bracket waits at a rung barrier, workers run the "
        "next bracket; results are the same either way, false runs brackets one after another"
    )


class RandomSettings(_Strict):
    n_trials: int = Field(default=20, ge=1, le=MAX_EVALUATIONS)


class GridSettings(_Strict):
    points: int = Field(default=3, ge=1, le=MAX_EVALUATIONS,
                        description="values per numeric dimension")
    max_trials: int = Field(default=MAX_EVALUATIONS, ge=1, le=MAX_EVALUATIONS)


class BayesianSettings(_Strict):
    n_trials: int = Field(default=30, ge=1, le=MAX_EVALUATIONS)
    sampler: Literal["tpe", "gp", "cmaes"] = "tpe"
    batch_size: int = Field(
        default=4, ge=1, description="trials asked per synchronous batch (fixed, not the "
        "number of workers, so that results do not depend on the workers)"
    )


class GPUSettings(_Strict):
    memory_fraction: float = Field(
        default=0.9, gt=0, le=1, description="share of a GPU's memory its worker may use: "
        "torch's per-process cap, CatBoost's gpu_ram_part (split between trials_per_gpu); "
        "XGBoost has no such setting"
    )
    deterministic: bool = True
    trials_per_gpu: int = Field(default=1, ge=1, description="trials run at once on one GPU")


class ColumnMapping(_Strict):
    """Column names of a generic CSV or Parquet file (``data.format: generic``)."""

    timestamp: str = "timestamp"
    open: str = "open"
    high: str = "high"
    low: str = "low"
    close: str = "close"
    volume: str = "volume"


# ------------------------------------------------------------------------ data.update


_EXCHANGE_ID = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,29}/[A-Za-z0-9][A-Za-z0-9._-]{0,29}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class DataUpdateSettings(_Strict):
    """``data.update``: where new candles for ``data.path`` come from
    (``cryptosweep data update --config CONFIG``; the nightly runs it before its sweep). The
    strings are checked by shape only (ccxt is not imported here, so loading a config stays
    cheap for every worker); whether the exchange knows them is checked when the update runs
    (:func:`cryptosweep.marketdata.store.update_candles`: exit 2). The section changes no
    result (the data file's digest does): it is in :data:`EXECUTION_ONLY`."""

    exchange: str = Field(description="ccxt exchange id, e.g. binance, kraken, coinbase")
    symbol: str = Field(description="unified spot symbol BASE/QUOTE, e.g. BTC/USDT")
    interval: str = Field(description="bar interval as the exchange names it: 1m, 15m, 1h, "
                          "4h, 1d, 1w (fixed lengths only); must be the file's interval")
    base_url: str | None = Field(
        default=None, description="another scheme://host[:port] for the exchange's REST API "
        "(a mirror or proxy); no user, password or query: put a URL with credentials in the "
        "environment variable named by base_url_env instead",
    )
    base_url_env: str | None = Field(
        default=None, description="name of an environment variable holding base_url (may hold "
        "credentials; never printed)",
    )
    limit: int = Field(default=1000, ge=1, le=5000, description="candles a request")
    max_bars: int | None = Field(
        default=100_000, ge=1, description="most bars one update appends (the rest come with "
        "the next); None: no cap",
    )
    allow_gaps: bool = Field(
        default=False, description="append across gaps the exchange itself has (missing "
        "candles); off: a gap is refused (exit 2)",
    )
    timeout_s: float = Field(default=10.0, gt=0, le=300, description="seconds a request")
    retries: int = Field(default=2, ge=0, le=10, description="retries of a failed request")

    @field_validator("exchange")
    @classmethod
    def _exchange(cls, value: str) -> str:
        if not _EXCHANGE_ID.match(value):
            raise ValueError(f"expected a ccxt exchange id (lowercase letters, digits, _), "
                             f"got {value!r}")
        return value

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        if not _SYMBOL.match(value):
            raise ValueError(f"expected a unified spot symbol BASE/QUOTE like BTC/USDT, got "
                             f"{value!r}")
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        from cryptosweep.core.intervals import format_interval, parse_interval

        try:
            canonical = format_interval(parse_interval(value))
        except ValueError:
            raise ValueError(f"expected a fixed bar interval like 1m, 15m, 1h, 4h, 1d or 1w, got "
                             f"{value!r}") from None
        if canonical != value:
            raise ValueError(f"write the interval as exchanges name it: {canonical!r}, not "
                             f"{value!r}")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 -- raises ValueError for a bad port
        except ValueError:
            raise ValueError("base_url is not a URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http(s) URL with a host")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("base_url must hold no user, password, query or fragment (config "
                             "files are copied into run folders): name an environment variable "
                             "holding it in base_url_env instead")
        return value

    @field_validator("base_url_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(f"expected an environment variable name, got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_base_url(self) -> DataUpdateSettings:
        if self.base_url is not None and self.base_url_env is not None:
            raise ValueError("set base_url or base_url_env, not both")
        return self

    def resolved_base_url(self, environ: Mapping[str, str] | None = None) -> str | None:
        """``base_url``, or the value of the variable ``base_url_env`` names (a
        :class:`ConfigError` naming the variable, never its value, when it is unset)."""
        if self.base_url_env is None:
            return self.base_url
        env = os.environ if environ is None else environ
        value = env.get(self.base_url_env, "").strip()
        if not value:
            raise ConfigError(f"data.update.base_url_env: the environment variable "
                              f"{self.base_url_env} is not set")
        return value

    def call_kwargs(self, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The keyword arguments of :func:`cryptosweep.marketdata.store.update_candles` after
        its ``path``."""
        return {
            "exchange": self.exchange, "symbol": self.symbol, "interval": self.interval,
            "base_url": self.resolved_base_url(environ), "limit": self.limit,
            "max_bars": self.max_bars, "allow_gaps": self.allow_gaps,
            "timeout_s": self.timeout_s, "retries": self.retries,
        }  # fmt: skip


class DataSettings(_Strict):
    path: str | None = Field(default=None, description="OHLCV file or folder; None: sample data")
    holdout_fraction: float = Field(default=0.2, ge=0, lt=0.9)
    format: Literal["auto", "binance", "cryptodatadownload", "generic"] = "auto"
    columns: ColumnMapping = ColumnMapping()
    timestamp_unit: Literal["s", "ms", "us", "ns"] | None = Field(
        default=None, description="numeric timestamps of a generic file; None: parse dates"
    )
    bar_interval: str | None = Field(
        default=None, description="the candles' interval, e.g. 1m, 15m, 1h, 1d; None: detected "
        "from the data (a declared one must agree with it)"
    )
    start: str | None = Field(
        default=None, description="first bar of the time range the sweep uses (ISO timestamp, "
        "UTC unless it says otherwise; included); None: the data's first bar. Features are "
        "computed on the whole file (a feature reads past bars only), labels, folds and the "
        "holdout lie within the range"
    )
    end: str | None = Field(
        default=None, description="end of the time range (ISO timestamp, UTC unless it says "
        "otherwise; excluded); None: after the data's last bar"
    )
    update: DataUpdateSettings | None = Field(
        default=None, description="where new candles for path come from (`cryptosweep data "
        "update`, and the nightly before its sweep); None: the file is not updated"
    )

    @field_validator("start", "end", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> Any:
        from datetime import date

        if isinstance(value, date):  # an unquoted YAML date or time (also from --set)
            return utc_timestamp(value.isoformat())
        if isinstance(value, str):
            return utc_timestamp(value)
        return value  # None, or a type the field refuses

    @property
    def has_holdout(self) -> bool:
        """Whether the most recent bars are kept out of the sweep as a holdout."""
        return self.holdout_fraction > 0

    @model_validator(mode="after")
    def _range_order(self) -> DataSettings:
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError(f"start ({self.start}) must be before end ({self.end})")
        return self

    @field_validator("bar_interval")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from cryptosweep.core.intervals import format_interval, parse_interval

        return format_interval(parse_interval(value))


def utc_timestamp(value: str) -> str:
    """An ISO 8601 timestamp (``2022-03-01``, ``2022-03-01T12:00``, ``...Z``, ``...+02:00``)
    in the canonical UTC form ``YYYY-MM-DDTHH:MM:SS+00:00`` (one without a zone is UTC);
    anything else is a ``ValueError``."""
    from datetime import UTC, datetime

    try:
        stamp = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"not an ISO timestamp: {value!r} (e.g. 2022-03-01T00:00:00Z)"
                         ) from None
    stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    return stamp.isoformat()


class ObjectiveSettings(_Strict):
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


class ExecutionSettings(_Strict):
    workers: int | None = Field(
        default=None, ge=0, le=MAX_WORKERS,
        description="None: one per CPU core; 0: in-process; N: N workers"
    )
    scheduler_address: str | None = None
    trial_timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False,
                                        description="seconds per trial")
    max_retries: int = Field(default=2, ge=0, description="re-runs of a trial whose worker died")
    max_failure_fraction: float = Field(default=0.5, gt=0, le=1)


class ReportingSettings(_Strict):
    top_k: int = Field(default=5, ge=1)
    min_trades: int = Field(
        default=30, ge=1, description="a holdout or fold score from fewer trades is flagged as "
        "a small sample wherever it appears (report, text report, index, verdict)"
    )
    min_importance_trials: int = Field(
        default=20, ge=2, description="fANOVA importances are shown only from at least this "
        "many full-budget trials of one model family"
    )
    keep_checkpoints: bool = Field(
        default=False, description="keep the Hyperband checkpoints of a finished run (else "
        "removed once its results are written)"
    )


class WalkForwardSettings(_Strict):
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


class DeploymentSettings(_Strict):
    """The deployment gate (:mod:`cryptosweep.judging.deployment`): what the winner of a run
    must show to be approved for production. The decision judges results, it does not change
    them: the whole section is left out of the results hash (:data:`EXECUTION_ONLY`)."""

    min_dsr: float = Field(
        default=0.95, ge=0, le=1, description="deflated Sharpe ratio of the winner at least "
        "this: 95% confidence that its Sharpe ratio beats the best one this many trials would "
        "show without skill (Bailey & Lopez de Prado 2014)"
    )
    max_pbo: float = Field(
        default=0.5, ge=0, le=1, description="probability of backtest overfitting at most "
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


class CPCVSettings(_Strict):
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


class RegimeLabelSettings(_Strict):
    """The market regimes the holdout and validation bars are sliced by
    (:class:`cryptosweep.trading.regimes.RegimeSettings`, whose defaults these are)."""

    enabled: bool = True
    trend_lookback: int = Field(default=24, ge=1)
    trend_threshold: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    volatility_window: int = Field(default=24, ge=2)
    volatility_min_history: int = Field(default=168, ge=1)


class OtherMarket(_Strict):
    """Another market's candles the top-k are re-fitted and scored on, each with its own
    purged walk-forward folds (the sweep's objective settings)."""

    name: str = Field(min_length=1, max_length=100, description="how the report names it")
    data: DataSettings = Field(description="its candles, as the data section reads them "
                               "(path, format, columns, ...); update is not used")


class EvidenceSettings(_Strict):
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


class SweepConfig(_Strict):
    """A whole sweep. Unknown keys anywhere are errors, so typos never pass silently."""

    name: str = Field(default="sweep", pattern=r"^[A-Za-z0-9_.-]+$", max_length=200,
                      description="the run folder is <name>_<UTC time>: one folder name")
    description: str = ""
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    sweep_type: SweepType = "hyperband"
    full_budget: int | None = Field(
        default=None, ge=1, le=MAX_ROUNDS, description="the full budget R of one configuration, "
        "in units of objective.rounds_per_unit boosting rounds (epochs for torch), for every "
        "strategy; None: hyperband.max_iter"
    )
    hyperband: HyperbandSettings = HyperbandSettings()
    random: RandomSettings = RandomSettings()
    grid: GridSettings = GridSettings()
    bayesian: BayesianSettings = BayesianSettings()
    parameter_ranges: ParameterRanges
    gpu_settings: GPUSettings = GPUSettings()
    data: DataSettings = DataSettings()
    objective: ObjectiveSettings = ObjectiveSettings()
    execution: ExecutionSettings = ExecutionSettings()
    reporting: ReportingSettings = ReportingSettings()
    walk_forward: WalkForwardSettings | None = None
    deployment: DeploymentSettings = DeploymentSettings()
    evidence: EvidenceSettings = EvidenceSettings()

    @model_validator(mode="after")
    def _models_have_ranges(self) -> SweepConfig:
        for family in self.objective.models:
            if not self.parameter_ranges.family(family):
                raise ValueError(
                    f"objective.models lists '{family}' but parameter_ranges.{family} is missing"
                )
        return self

    @model_validator(mode="after")
    def _one_full_budget(self) -> SweepConfig:
        if (self.full_budget is not None and "max_iter" in self.hyperband.model_fields_set
                and self.hyperband.max_iter != self.full_budget):
            raise ValueError(
                f"full_budget ({self.full_budget}) and hyperband.max_iter "
                f"({self.hyperband.max_iter}) disagree; set only full_budget"
            )
        return self

    @model_validator(mode="after")
    def _bounded_rounds(self) -> SweepConfig:
        rounds = self.full_budget_units * self.objective.rounds_per_unit
        if rounds > MAX_ROUNDS:
            key = "full_budget" if self.full_budget is not None else "hyperband.max_iter"
            raise ValueError(
                f"{key} ({self.full_budget_units}) x objective.rounds_per_unit "
                f"({self.objective.rounds_per_unit:g}) = {rounds:g} rounds per evaluation, more "
                f"than {MAX_ROUNDS:,}"
            )
        return self

    @model_validator(mode="after")
    def _rounds_at_the_smallest_budget(self) -> SweepConfig:
        units = self.full_budget_units
        if self.sweep_type == "hyperband":  # the first rung of the widest bracket
            eta, shrink = self.hyperband.eta, 1
            while shrink * eta <= units:
                shrink *= eta
            smallest = units / shrink
        else:
            smallest = float(units)
        if smallest * self.objective.rounds_per_unit < 0.5:
            raise ValueError(
                f"objective.rounds_per_unit ({self.objective.rounds_per_unit:g}) x the smallest "
                f"budget ({smallest:g}) rounds to 0 boosting rounds: every evaluation would "
                "train one round whatever its budget"
            )
        return self

    @property
    def full_budget_units(self) -> int:
        """The full budget R of one configuration: ``full_budget``, else ``hyperband.max_iter``
        (the key older configs use)."""
        return self.full_budget if self.full_budget is not None else self.hyperband.max_iter

    def canonical(self) -> dict[str, Any]:
        """Plain JSON-able dict, the form stored in the journal. With ``full_budget`` set,
        ``hyperband.max_iter`` is written as the same number (the budget in force), so that
        the dict validates again (else its default would contradict ``full_budget``). The
        objective's :data:`TRADING_OPTIONS` at their defaults are left out."""
        out = self.model_dump(mode="json")
        drop_default_options(out["objective"])
        if self.full_budget is not None:
            out["hyperband"]["max_iter"] = self.full_budget
        return out

    def results_hash(self) -> str:
        """The hash of what decides the results (:func:`config_hash`)."""
        return config_hash(self.canonical())

    def objective_spec(self) -> ObjectiveSpec:
        """What a worker needs to evaluate a trial."""
        return ObjectiveSpec(
            data=self.data, objective=self.objective,
            deterministic=self.gpu_settings.deterministic,
            gpu_memory_fraction=self.gpu_settings.memory_fraction,
            trials_per_gpu=self.gpu_settings.trials_per_gpu,
        )


class ObjectiveSpec(_Strict):
    """The data and objective settings a worker evaluates trials with: the one typed source of
    truth, built from the validated config by :meth:`SweepConfig.objective_spec`. It travels to
    workers as plain JSON (:meth:`to_payload`) and is validated again there by the same models
    (:meth:`of`), so a worker never falls back on defaults of its own."""

    data: DataSettings = DataSettings()
    objective: ObjectiveSettings = ObjectiveSettings()
    deterministic: bool = True
    gpu_memory_fraction: float = Field(default=0.9, gt=0, le=1)
    trials_per_gpu: int = Field(default=1, ge=1)

    @classmethod
    def of(cls, spec: ObjectiveSpec | dict[str, Any]) -> ObjectiveSpec:
        """``spec`` itself, or validated from its plain-JSON form (a bad one is a
        :class:`~cryptosweep.core.errors.ConfigError` naming the field)."""
        if isinstance(spec, ObjectiveSpec):
            return spec
        try:
            return cls.model_validate(spec)
        except ValidationError as exc:
            raise ConfigError(_one_line(exc, "objective spec")) from None

    def to_payload(self) -> dict[str, Any]:
        """Plain JSON types, for a task payload or a file (the objective's
        :data:`TRADING_OPTIONS` at their defaults left out)."""
        out = self.model_dump(mode="json")
        drop_default_options(out["objective"])
        return out


#: The objective's options closer to trading, with the defaults that keep the behaviour before
#: them: left out of canonical configs and payloads when at their default.
TRADING_OPTIONS: dict[str, Any] = {"entry_rule": "threshold", "bet_sizing": "none",
                                   "sample_weights": "none", "vol_target": None,
                                   "funding_bps_per_8h": 0.0}


def drop_default_options(objective: dict[str, Any]) -> dict[str, Any]:
    """``objective`` (a dumped :class:`ObjectiveSettings`) without the
    :data:`TRADING_OPTIONS` at their defaults, in place."""
    for key, default in TRADING_OPTIONS.items():
        if key in objective and objective[key] == default:
            del objective[key]
    return objective


#: The master seed when neither ``--seed`` (or the notebook's ``seed``) nor the config gives one.
DEFAULT_SEED = 123456


def resolve_seed(seed: int | None, config: SweepConfig) -> int:
    """The one rule for the master seed, the same for the CLI, the notebook, the nightly job
    and the API: an explicit ``seed`` wins, else the config's ``seed``, else
    :data:`DEFAULT_SEED`."""
    if seed is not None:
        try:
            value = operator.index(seed)  # ints and NumPy integers; not floats, not text
        except TypeError:
            value = None
        if isinstance(seed, bool) or value is None or not 0 <= value <= MAX_SEED:
            raise ConfigError(f"seed: expected a whole number in [0, {MAX_SEED}], got {seed!r}")
        return int(value)
    return int(config.seed) if config.seed is not None else DEFAULT_SEED


#: Settings that decide how a sweep executes, not what it computes: left out of
#: :func:`config_hash`, so a resume may change them (workers, cluster, GPUs).
EXECUTION_ONLY: tuple[tuple[str, ...], ...] = (
    ("name",), ("description",), ("seed",), ("execution",), ("gpu_settings", "memory_fraction"),
    ("gpu_settings", "trials_per_gpu"), ("reporting", "min_trades"),
    ("reporting", "min_importance_trials"), ("reporting", "keep_checkpoints"), ("deployment",),
    ("data", "update"), ("evidence",),
)


def results_identity(canonical: dict[str, Any]) -> dict[str, Any]:
    """A canonical config without its :data:`EXECUTION_ONLY` settings. The master seed is
    compared on its own (it comes from ``--seed`` or the config's ``seed``)."""
    identity = json.loads(json.dumps(canonical))
    for path in EXECUTION_ONLY:
        node = identity
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return identity


def config_hash(canonical: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of what decides a sweep's results: equal for configs that
    differ only in how they execute (workers, cluster, GPU packing, name), so those resume each
    other and carry one hash."""
    return hashlib.sha256(canonical_json(results_identity(canonical)).encode()).hexdigest()


# ------------------------------------------------------------------------------------- loading


def trading_ranges_problem(trading: dict[str, Any]) -> str | None:
    """What is wrong with the trading ranges (``.key: message``, or ``: message`` for the block),
    or ``None``: every key of :data:`TRADING_PARAMETERS` present, no other, and every value a
    range can produce (its bounds, or each choice) allowed for that parameter."""
    missing = [name for name in TRADING_PARAMETERS if name not in trading]
    if missing:
        return (f": missing {', '.join(missing)} (every configuration needs "
                f"{', '.join(TRADING_PARAMETERS)})")
    for name in trading:
        if name not in TRADING_PARAMETERS:
            return f".{name}: unknown trading parameter (known: {', '.join(TRADING_PARAMETERS)})"
    for name, (low, high, inclusive, integer) in TRADING_PARAMETERS.items():
        dim = trading[name]
        if isinstance(dim, CategoricalDimension):
            values = list(dim.choices)
        elif integer and isinstance(dim, FloatDimension):
            return f".{name}: whole bars: use an int dimension or integer choices"
        else:
            values = [dim.low, dim.high]
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int | float) or (
                    integer and not isinstance(value, int)):
                kind = "whole numbers" if integer else "numbers"
                return f".{name}: choices must be {kind}, got {value!r}"
            inside = low <= value <= high if inclusive else low < value < high
            if not inside:
                lo, hi = ("[", "]") if inclusive else ("(", ")")
                span = f">= {low:g}" if math.isinf(high) and inclusive else (
                    f"> {low:g}" if math.isinf(high) else f"in {lo}{low:g}, {high:g}{hi}")
                return f".{name}: values must be {span}, got {value!r}"
    return None


def _one_line(exc: ValidationError, source: str) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    location = ".".join(str(part) for part in first["loc"] if not _is_union_tag(part))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = _unknown_key_message(first["loc"])
    elif first["type"] == "union_tag_invalid":
        message = "type must be one of 'float', 'int', 'categorical'"
    elif first["type"].endswith("_type") and isinstance(first.get("input"), bool | int | float
                                                         | str) and len(repr(first["input"])) < 60:
        message += f", got {first['input']!r}"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{source}: {location or '<top level>'}: {message}{more}"


def _known_keys(path: tuple[Any, ...]) -> list[str]:
    """The keys the config section at ``path`` accepts (empty when it is not a section)."""
    import typing

    model: Any = SweepConfig
    for part in path:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return []
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        model = next((c for c in candidates if isinstance(c, type)
                      and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields)


def _is_union_tag(part: object) -> bool:
    return isinstance(part, str) and part in ("float", "int", "categorical")


def _unknown_key_message(loc: tuple[Any, ...]) -> str:
    if len(loc) == 2 and loc[0] == "parameter_ranges":
        known = ", ".join([*MODEL_FAMILIES, "trading"])
        return f"unknown model family '{loc[1]}' (known: {known})"
    close = difflib.get_close_matches(str(loc[-1]), _known_keys(loc[:-1]), n=1, cutoff=0.6)
    return f"unknown key (did you mean '{close[0]}'?)" if close else "unknown key"
