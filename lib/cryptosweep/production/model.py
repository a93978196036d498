"""From a best configuration to the model that trades: :func:`train_model`, the saved model
folder (:meth:`TrainedModel.save`, :func:`load_model`), decisions on new candles
(:meth:`TrainedModel.decide`) and backtests of other periods or assets
(:meth:`TrainedModel.backtest`).

Training, decisions and backtests go through the objective's own functions
(:func:`~cryptosweep.trading.steps.train_before`,
:func:`~cryptosweep.trading.steps.predict_probabilities`,
:func:`~cryptosweep.trading.steps.backtest_bars`, the feature and label code), so the model
trained until the holdout decides, bit for bit, what the sweep's holdout evaluation scored.

A model folder holds the entry model in its library's own format (LightGBM text, XGBoost
UBJSON, CatBoost ``.cbm`` with its training snapshot, torch ``.npz`` read without pickle), the
model's sidecar, and ``manifest.json`` (:data:`MODEL_FORMAT`; fields in
``docs/production.md``), whose ``files`` give every other file's SHA-256.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import shutil
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptosweep.core.config import ObjectiveSpec
from cryptosweep.core.errors import ConfigError, DataError, ModelError
from cryptosweep.core.files import (
    canonical_json,
    file_sha256,
    pretty_json,
    sync_folder,
    write_text_atomic,
)
from cryptosweep.core.intervals import (
    CALENDAR_MIN_SPAN,
    bars_per_year,
    closed_at_weekends,
    format_interval,
    parse_interval,
    periods_per_year,
)
from cryptosweep.core.locking import LOCK_NAME
from cryptosweep.core.version import __version__
from cryptosweep.production.candles import (
    check_candles,
    data_source,
    frame_fingerprint,
    parse_time,
)
from cryptosweep.production.configuration import Configuration, check_entry, configuration_of
from cryptosweep.production.decisions import decisions_frame
from cryptosweep.records.ledger import DEMOTED_FOLDER, LEDGER_NAME
from cryptosweep.records.results import CHAMPION_HISTORY
from cryptosweep.trading.backtest import BacktestResult
from cryptosweep.trading.features import FEATURE_COLUMNS, WARM_UP_BARS, build_features
from cryptosweep.trading.metrics import performance
from cryptosweep.trading.models import ContinuableEntryModel, checkpoint_path, make_entry_model
from cryptosweep.trading.objective import data_fingerprint, trial_reproducibility
from cryptosweep.trading.steps import (
    Market,
    TradingParams,
    backtest_bars,
    load_market,
    market_from_candles,
    predict_probabilities,
    ranged_market,
    train_before,
)

#: The ``format`` of a model folder's manifest.
MODEL_FORMAT = "cryptosweep-model/1"
MANIFEST = "manifest.json"
#: The distribution whose version a model of each family needs (the same as it was saved by).
FAMILY_LIBRARIES = {"lightgbm": "lightgbm", "xgboost": "xgboost", "catboost": "catboost",
                    "torch": "torch"}


class InSampleWarning(UserWarning):
    """A decision or backtest period overlaps the bars the model was trained on."""


class CalendarWarning(UserWarning):
    """A backtest annualised with the candles' calendar, not the training's
    (:meth:`TrainedModel.calendar_note`)."""


class SummaryMismatchWarning(UserWarning):
    """A best-configs file's winner summary says otherwise than the entry that is trained."""


@dataclass(frozen=True)
class Backtest:
    """A backtest of a period: ``metrics`` (the sweep's ``performance``), ``result`` (per-bar
    returns, positions and trades of the simulation), ``times`` (the bars' open times) and
    ``proba`` (P(entry pays) per bar)."""

    metrics: dict[str, Any]
    result: BacktestResult
    times: pd.DatetimeIndex
    proba: np.ndarray


class TrainedModel:
    """An entry model with its trading rules and the record of how it was made
    (:attr:`manifest`). Made by :func:`train_model` or :func:`load_model`."""

    def __init__(self, entry_model: ContinuableEntryModel, manifest: dict[str, Any]) -> None:
        self._entry_model = entry_model
        self._manifest = manifest
        self.spec = ObjectiveSpec.of(manifest["objective_spec"])
        self.trading = TradingParams.from_params(manifest["configuration"]["params"])
        self.bar_interval = str(manifest["data"]["bar_interval"])

    @property
    def manifest(self) -> dict[str, Any]:
        """What ``manifest.json`` holds (a copy): ``format``, ``family``, ``model_file``,
        ``rounds``, ``seed``, ``configuration`` (the best-configs entry), ``trading_params``,
        ``objective_spec``, ``features``, ``warm_up_bars``, ``data``, ``versions``, ``files``
        (empty until the model is saved) and, once saved, ``digest`` (of the manifest
        itself: :func:`manifest_digest`)."""
        return copy.deepcopy(self._manifest)

    @property
    def family(self) -> str:
        return str(self._manifest["family"])

    def same_market(self, ohlcv: pd.DataFrame) -> bool | None:
        """Whether ``ohlcv`` are candles of the market this model was trained on: the closes at
        the manifest's probe bars (training bars), where ``ohlcv`` has those bars, are the same
        (True) or none is (False: another exchange, asset or a transformed series, whatever
        the file is called); None when ``ohlcv`` has none of them or the manifest none (an
        older model)."""
        probe = (self._manifest.get("data") or {}).get("probe")
        if not isinstance(probe, dict) or not probe:
            return None
        index = ohlcv.index if ohlcv.index.tz is not None else ohlcv.index.tz_localize("UTC")
        closes = ohlcv["close"].to_numpy(dtype="float64")
        seen = same = 0
        for when, close in probe.items():
            position = index.get_indexer([pd.Timestamp(when)])[0]
            if position >= 0:
                seen += 1
                same += bool(np.isclose(closes[position], float(close), rtol=1e-9, atol=0.0))
        return bool(same) if seen else None

    def reaches_holdout(self, ohlcv: pd.DataFrame, last: Any) -> bool:
        """Whether a period of ``ohlcv`` ending at ``last`` looks at the holdout of the sweep
        this model's configuration won: its last bar at or after that holdout's first bar,
        on candles that are not another market (:meth:`same_market`; when it cannot tell, the
        look counts: the holdout is a budget). False for a configuration without a holdout."""
        first_holdout = ((self._manifest.get("configuration") or {}).get("data")
                         or {}).get("holdout_first_bar")
        if not first_holdout:
            return False
        return (parse_time(last, "last") >= parse_time(first_holdout, "holdout_first_bar")
                and self.same_market(ohlcv) is not False)

    def in_sample_note(self, ohlcv: pd.DataFrame, first: Any, last: Any) -> str | None:
        """One line when the bars from ``first`` to ``last`` (times) of ``ohlcv`` overlap the
        bars this model was trained on, else None. Only then: an earlier or later period does
        not overlap, and another market (other closes at the manifest's probe bars: another
        exchange, asset or a transformed series) is not in-sample whatever its dates. A
        manifest without probe bars (an older model) is taken at its dates."""
        data = self._manifest.get("data") or {}
        try:
            train_first = parse_time(data["first_training_bar"], "first_training_bar")
            train_last = parse_time(data["last_training_bar"], "last_training_bar")
        except (KeyError, ConfigError, DataError):
            return None
        first, last = parse_time(first, "first"), parse_time(last, "last")
        if last < train_first or first > train_last:
            return None
        if self.same_market(ohlcv) is False:
            return None  # the same dates, another market
        overlap_first, overlap_last = max(first, train_first), min(last, train_last)
        return (f"in-sample: the bars {overlap_first.isoformat()} .. {overlap_last.isoformat()}"
                f" of this period are bars the model was trained on ({data.get('source')}, "
                f"{train_first.isoformat()} .. {train_last.isoformat()}); their results say "
                "nothing about how it trades")

    def _warn_in_sample(self, market: Market, first: int, last: int, stacklevel: int = 3
                        ) -> None:  # fmt: skip
        """``stacklevel``: as :func:`warnings.warn` counts it from here; 3 is the caller of
        the public method that calls this one (the warning names the user's line)."""
        index = market.ohlcv.index
        note = self.in_sample_note(market.ohlcv, index[first], index[last])
        if note is not None:
            warnings.warn(note, InSampleWarning, stacklevel=stacklevel)

    # ------------------------------------------------------------------------ decisions

    def decide(self, ohlcv: pd.DataFrame, *, start: Any = None) -> pd.DataFrame:
        """What the model decides at the close of every bar of ``ohlcv`` (from ``start`` on,
        flat there; default: the first bar), by the backtest's rules: see
        :func:`~cryptosweep.production.decisions.decisions_frame` for the columns.

        The features are computed from the candles given. For the probabilities of the
        backtest, bit for bit, pass the series from the same first bar as the data the model
        was trained or validated on (new bars appended); a shorter history changes the
        recursive and rolling features slightly (``docs/production.md`` has the measurement).
        Appending later bars never changes an earlier row. A ``DataError`` for fewer bars than
        the features' warm-up needs or bars of another interval than the model's."""
        market, _ = self._market(ohlcv)
        first = self._position(market, start, "start", default=0)
        bars = np.arange(first, len(market.open_), dtype="int64")
        self._warn_in_sample(market, first, len(market.open_) - 1)
        proba = predict_probabilities(self._entry_model, market.features, bars)
        return decisions_frame(market, first, proba, self.trading, self.spec.objective)

    def backtest(self, ohlcv: pd.DataFrame, start: Any = None, end: Any = None) -> dict[str, Any]:
        """The sweep's metrics (:func:`~cryptosweep.trading.metrics.performance`: Sharpe,
        Sortino, drawdown, Calmar, total return, hit rate, trades, exposure, turnover) of the
        backtest of the bars from ``start`` to ``end`` (both included; default: all), flat at
        ``start``, with the features of the whole series given. With the sweep's data and
        ``start`` its holdout's first bar, a model trained until the holdout gives the
        sweep's holdout metrics exactly."""
        return self._simulate(ohlcv, start, end).metrics

    def backtest_details(self, ohlcv: pd.DataFrame, start: Any = None, end: Any = None
                         ) -> Backtest:  # fmt: skip
        """:meth:`backtest` with the simulation's returns, positions and trades."""
        return self._simulate(ohlcv, start, end)

    def _simulate(self, ohlcv: pd.DataFrame, start: Any, end: Any) -> Backtest:
        """What :meth:`backtest` and :meth:`backtest_details` run; called by them alone, so
        that a warning names the line that called them (``stacklevel=3``), not this module."""
        market, calendar = self._market(ohlcv)
        if calendar is not None:
            warnings.warn(calendar, CalendarWarning, stacklevel=3)
        first = self._position(market, start, "start", default=0)
        stop = self._position(market, end, "end", default=len(market.open_) - 1, after=True) + 1
        if stop - first < 2:
            raise DataError(f"the backtest period holds {max(stop - first, 0)} bars; give a "
                            "--start before --end and at least 2 bars")
        bars = np.arange(first, stop, dtype="int64")
        self._warn_in_sample(market, first, stop - 1, stacklevel=4)
        proba = predict_probabilities(self._entry_model, market.features, bars)
        result = backtest_bars(market, bars, proba, self.trading, self.spec.objective)
        metrics = performance(result.returns, result.trades, result.positions,
                              periods_per_year=market.periods_per_year)
        return Backtest(metrics=metrics, result=result, times=market.ohlcv.index[bars],
                        proba=proba)

    def _market(self, ohlcv: pd.DataFrame) -> tuple[Market, str | None]:
        """The market of ``ohlcv``, annualised as :meth:`_bars_per_year` says, and its note."""
        candles = check_candles(ohlcv, self.bar_interval)
        year, calendar = self._bars_per_year(candles.index)
        return market_from_candles(candles, declared_interval=self.bar_interval,
                                   periods_per_year=year), calendar

    def _bars_per_year(self, index: pd.DatetimeIndex) -> tuple[float | None, str | None]:
        """The bars per year that annualise backtests of candles at ``index``, and a note when
        they are not the training's. As its training counted them (a recent slice of a market
        closed at weekends is too short to read the calendar from), unless the candles span
        enough to read their calendar and it is another one (a model trained around the clock
        backtested on a market closed at weekends, or the reverse): then theirs, with the note
        (annualised as the training, EURUSD's Sharpe ratios read 19 % high). An older
        manifest (no ``periods_per_year``): the candles'."""
        recorded = self._manifest["data"].get("periods_per_year")
        if recorded is None:
            return None, None
        trained = float(recorded)
        interval = parse_interval(self.bar_interval)
        if len(index) < 2 or index[-1] - index[0] + interval < CALENDAR_MIN_SPAN:
            return trained, None
        closed = closed_at_weekends(index, interval)
        if closed == (trained < periods_per_year(interval) * (1 - 1e-9)):
            return trained, None
        own = bars_per_year(index, interval)
        calendar = "closed at weekends" if closed else "open around the clock"
        return own, (f"these candles are a market {calendar}, and the model's training counted "
                     f"{trained:,.0f} bars a year: annualised with their own {own:,.0f}")

    def calendar_note(self, ohlcv: pd.DataFrame) -> str | None:
        """One line when backtests of ``ohlcv`` are annualised with another calendar than the
        training's (:meth:`_bars_per_year`), else None."""
        return self._bars_per_year(check_candles(ohlcv, self.bar_interval).index)[1]

    @staticmethod
    def _position(market: Market, when: Any, what: str, default: int,
                  after: bool = False) -> int:  # fmt: skip
        """The bar position of ``when``: the first bar at or after it (``after``: the last
        bar at or before it). A start before the first bar is a ``DataError``: the period
        asked for is not in the data (it was silently cut to the data's first bar)."""
        if when is None:
            return default
        stamp = parse_time(when, what)
        index = market.ohlcv.index
        if not after and stamp < index[0]:
            raise DataError(f"{what} {stamp.isoformat()} is before the first bar of the data "
                            f"({index[0].isoformat()}); give a {what} from "
                            f"{index[0].isoformat()} on, or candles that reach back to it")
        if after:
            position = int(index.searchsorted(stamp, side="right")) - 1
        else:
            position = int(index.searchsorted(stamp, side="left"))
        if not 0 <= position < len(index):
            raise DataError(f"{what} {stamp.isoformat()} is outside the data "
                            f"({index[0].isoformat()} .. {index[-1].isoformat()})")
        return position

    # ------------------------------------------------------------------------ saving

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the model folder ``directory`` (see the module docstring) and return it.

        Atomic: everything is written into a temporary sibling folder, which is renamed into
        place; an existing model folder there is replaced, anything else there is refused
        (``ModelError``) and left as it was."""
        target = Path(directory)
        check_output_folder(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            model_file = checkpoint_path(staging, "model", self.family)
            self._entry_model.save(model_file)
            files = {file.name: file_sha256(file) for file in sorted(staging.iterdir())}
            manifest = {**self._manifest, "model_file": model_file.name, "files": files}
            manifest["digest"] = manifest_digest(manifest)
            write_text_atomic(staging / MANIFEST, pretty_json(manifest))
            _replace_folder(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self._manifest = manifest
        return target


def manifest_digest(manifest: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a manifest without its ``digest`` field: the
    manifest's own check (the files it lists have theirs in ``files``)."""
    body = {key: value for key, value in manifest.items() if key != "digest"}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


#: The deployed champion's folder in a nightly models folder (``MODELS_DIR/champion``):
#: :mod:`cryptosweep.nightly.promotion` uses this name.
CHAMPION_FOLDER = "champion"


#: The other folders of a nightly models folder that only its champion steps write
#: (:mod:`cryptosweep.nightly.promotion` uses these names): the champion before the deployed
#: one (what a rollback restores), a promotion's under way (the new one, the old one moved
#: aside) and the demoted champions with their evidence (``DEMOTED_FOLDER``, named in
#: :mod:`cryptosweep.records.ledger`, which finds their ledger).
PREVIOUS_FOLDER = "champion.prev"
NEW_FOLDER = ".champion.new"
OLD_FOLDER = ".champion.old"
#: Every folder of a models folder that only the nightly's champion steps write.
NIGHTLY_FOLDERS = (CHAMPION_FOLDER, PREVIOUS_FOLDER, NEW_FOLDER, OLD_FOLDER, DEMOTED_FOLDER)


def _models_folder(folder: Path) -> bool:
    """Whether ``folder`` is a nightly models folder: it holds the champion history, the
    models folder's lock or its trial ledger."""
    return any((folder / name).exists() for name in (CHAMPION_HISTORY, LOCK_NAME, LEDGER_NAME))


def deployed_champion_folder(target: Path) -> bool:
    """Whether ``target`` is a models folder's champion: named :data:`CHAMPION_FOLDER` in a
    folder that holds the champion history, the models folder's lock or its trial ledger."""
    target = Path(target)
    return target.name == CHAMPION_FOLDER and _models_folder(target.absolute().parent)


def nightly_folder(target: Path) -> Path | None:
    """The folder of a nightly models folder that ``target`` is or is inside of and that only
    the champion steps write (:data:`NIGHTLY_FOLDERS`), else None. A promotion's training
    folder (``.champion.train-<pid>``) is not one: the promotion saves its model there."""
    absolute = Path(target).absolute()
    for folder in (absolute, *absolute.parents):
        if folder.name in NIGHTLY_FOLDERS and _models_folder(folder.parent):
            return folder
    return None


def check_output_folder(target: Path) -> None:
    """Refuse (``ModelError``) an output folder that exists and is not a model folder (an
    empty folder is fine), or that is a models folder's deployed champion (only the
    deployment gate changes it) or another folder its champion steps write (the champion
    before it, a demoted one, a promotion's), before anything is trained or written."""
    if deployed_champion_folder(target):
        raise ModelError(f"{target} is the deployed champion of the models folder "
                         f"{Path(target).absolute().parent}: only the deployment gate changes it "
                         "(the nightly, or cryptosweep.nightly.promotion.decide_and_act on a "
                         "run); choose another output folder")
    owned = nightly_folder(target)
    if owned is not None:  # champion.prev (a rollback's), demoted/<stamp>/champion (evidence)
        raise ModelError(f"{target} is {'' if owned == Path(target).absolute() else 'in '}"
                         f"{owned.name} of the models folder {owned.parent}, which only the "
                         "nightly's champion steps write; choose another output folder")
    if not target.exists():
        return
    if not target.is_dir():
        raise ModelError(f"{target} exists and is not a folder; choose another output folder")
    if any(target.iterdir()) and _manifest_format(target) != MODEL_FORMAT:
        raise ModelError(f"{target} exists and is not a cryptosweep model folder (no "
                         f"{MANIFEST} of format {MODEL_FORMAT}); it is left as it is, choose "
                         "another output folder")


def _manifest_format(folder: Path) -> Any:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("format")
    except (OSError, ValueError, AttributeError):
        return None


def _replace_folder(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``; a model folder already there is moved aside first
    and removed once the new one is in place (put back if the rename fails)."""
    sync_folder(staging)
    if not target.exists():
        os.replace(staging, target)
    else:
        aside = target.parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.replace(target, aside)
        try:
            os.replace(staging, target)
        except BaseException:
            os.replace(aside, target)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    sync_folder(target.parent)


# ---------------------------------------------------------------------------- training


def train_model(
    configuration: Mapping[str, Any] | str | os.PathLike[str] | Configuration, *,
    data: Any = None,
    until: Any = None, rank: int = 1,
) -> TrainedModel:
    """Train the model a best configuration describes, as the sweep trained it.

    ``configuration`` is one entry of a best-configs file (``best["configurations"][0]``),
    the whole best-configs dict or its path (then ``rank`` picks the entry, 1 = the winner).
    The configuration's family, entry-model parameters, rounds/epochs (``budget`` x
    ``rounds_per_unit``) and recorded seed, with the sweep's threads and determinism switches,
    trained through the sweep's features, labels and purging.

    ``data``: the candles to train on: ``None`` (the configuration's data path, the bundled
    sample when it had none), a path (read with the configuration's loader options), or a
    frame as :func:`~cryptosweep.trading.data.load_ohlcv` gives it. ``until``: the last bar
    to train on (a time; its labels use bars up to it only, and rows whose label ends after it
    are purged); ``"holdout"`` stops before the data's holdout as the sweep cut it, which
    trains the very model the sweep's holdout evaluation scored; default: every bar.
    """
    config = configuration_of(configuration, rank=rank)
    if config.summary_note and config is not configuration:  # read here: said here
        warnings.warn(config.summary_note, SummaryMismatchWarning, stacklevel=2)
    market, source, fingerprint = _training_market(config, data)
    cutoff, until_text = _cutoff(market, until, config)
    repro = trial_reproducibility(config.spec, config.seed)
    entry_model, train = train_before(
        market, cutoff, config.params, config.rounds, repro, config.spec.objective,
        f"training until {market.ohlcv.index[cutoff - 1].isoformat()}",
    )
    if len(train) < config.spec.objective.min_train_bars:
        raise DataError(
            f"data: {len(train)} bars with complete features and labels to train on, fewer "
            f"than objective.min_train_bars={config.spec.objective.min_train_bars}; give more "
            "bars or a later --until"
        )
    index = market.ohlcv.index
    manifest = {
        "format": MODEL_FORMAT,
        "family": config.family,
        "model_file": None,
        "rounds": config.rounds,
        "seed": config.seed,
        "configuration": config.entry,
        "trading_params": dict(config.params["trading"]),
        "objective_spec": config.spec.to_payload(),
        "features": list(FEATURE_COLUMNS),
        "warm_up_bars": WARM_UP_BARS,
        "data": {
            "source": source,
            "sha256": fingerprint,
            "bars": len(index),
            "first_bar": index[0].isoformat(),
            "last_bar": index[cutoff - 1].isoformat(),
            "trained_until": until_text,
            "training_rows": len(train),
            "first_training_bar": index[int(train[0])].isoformat(),
            "last_training_bar": index[int(train[-1])].isoformat(),
            "bar_interval": format_interval(market.bar_interval),
            "periods_per_year": market.periods_per_year,
        },
        "versions": _versions(config.family),
        "files": {},
        "deployment": config.deployment,
    }
    manifest["data"]["probe"] = _probe(market, train)
    return TrainedModel(entry_model, manifest)


#: Training bars whose closes the manifest records, evenly spaced: how a later period is told
#: to be the training market (in-sample) or another one.
PROBE_BARS = 64


def _probe(market: Market, train: np.ndarray) -> dict[str, float]:
    """The close of :data:`PROBE_BARS` training bars, evenly spaced, by open time."""
    rows = np.asarray(train, dtype="int64")
    picks = rows[np.linspace(0, len(rows) - 1, min(PROBE_BARS, len(rows))).astype("int64")]
    index = market.ohlcv.index
    return {index[int(i)].isoformat(): float(market.ohlcv["close"].iloc[int(i)])
            for i in np.unique(picks)}


def _training_market(config: Configuration, data: Any) -> tuple[Market, str, str]:
    """The market to train on, how its source is recorded, and its SHA-256 fingerprint."""
    spec = config.spec
    if isinstance(data, pd.DataFrame):
        candles = check_candles(data, config.bar_interval)
        # the configuration's data.start/data.end and the holdout of that range, as a file
        # of the same candles gives (load_market): the model the holdout evaluation scored
        settings = spec.data.model_copy(update={"bar_interval": config.bar_interval})
        market = ranged_market(candles, build_features(candles), settings, "<DataFrame>")
        return market, "<DataFrame>", frame_fingerprint(candles)
    if data is not None:
        if not isinstance(data, str | os.PathLike):
            raise DataError(f"data must be a path or a DataFrame of candles, got "
                            f"{type(data).__name__}")
        path = Path(data).resolve()
        if not path.exists():
            raise DataError(f"--data: data path not found: {path}")
        spec = spec.model_copy(update={"data": spec.data.model_copy(update={"path": str(path)})})
    elif spec.data.path is not None and not Path(spec.data.path).exists():
        raise DataError(f"the configuration's data path {spec.data.path} is not here; pass "
                        "the candles with --data (data= in Python)")
    market = load_market(spec.model_copy(update={
        "data": spec.data.model_copy(update={"bar_interval": None})}))
    check_candles(market.ohlcv, config.bar_interval)
    return market, data_source(spec.data.path), data_fingerprint(spec.data.path)


def _cutoff(market: Market, until: Any, config: Configuration) -> tuple[int, str | None]:
    """How many bars (from the first) training may read, and ``until`` as recorded."""
    if until is None:
        return len(market.open_), None
    if isinstance(until, str) and until == "holdout":
        if not config.spec.data.has_holdout:
            raise ConfigError("until='holdout': the configuration's data has no holdout "
                              "(data.holdout_fraction is 0)")
        cutoff = market.holdout_start
        text = "holdout"
    else:
        stamp = parse_time(until, "--until")
        cutoff = int(market.ohlcv.index.searchsorted(stamp, side="right"))
        text = stamp.isoformat()
    if cutoff <= WARM_UP_BARS + 1:
        first = market.ohlcv.index[0].isoformat()
        raise DataError(f"--until {text}: {cutoff} bars from the data's first bar ({first}), "
                        f"too few to train after the features' warm-up of {WARM_UP_BARS} bars")
    return cutoff, text


def _versions(family: str) -> dict[str, str]:
    versions = {"cryptosweep": __version__, "python": platform.python_version()}
    for name in ("numpy", "pandas", FAMILY_LIBRARIES[family]):
        versions[name] = _installed(name)
    return versions


def _installed(distribution: str) -> str:
    try:
        return distribution_version(distribution)
    except PackageNotFoundError:
        return "not installed"


# ---------------------------------------------------------------------------- loading


def load_model(directory: str | os.PathLike[str]) -> TrainedModel:
    """The model saved in ``directory``, checked: the manifest's format, every file against
    its SHA-256, the best-configs entry it was trained from by ``train``'s own rules
    (:func:`~cryptosweep.production.configuration.check_entry`: trading parameters, the
    library's names and a probe fit, threads), and the family's library version against the
    installed one. Any problem is one ``ModelError`` line (exit 2 from the CLI)."""
    folder = Path(directory)
    manifest_path = folder / MANIFEST
    if folder.exists() and not folder.is_dir():
        raise ModelError(f"{folder} is a file, not a model folder (`cryptosweep train --out` "
                         "writes one)")
    if not folder.is_dir():
        raise ModelError(f"model folder not found: {folder}")
    if not manifest_path.is_file():
        raise ModelError(f"{folder} is not a cryptosweep model folder: no {MANIFEST}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{manifest_path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MODEL_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ModelError(f"{folder}: manifest format {found!r}, this cryptosweep reads "
                         f"{MODEL_FORMAT!r}; retrain it with `cryptosweep train`")
    check_saved(folder, manifest)
    try:  # the best-configs entry it was trained from, by train's own rules
        check_entry(manifest.get("configuration"), f"{MANIFEST} configuration")
    except ConfigError as exc:
        raise ModelError(f"{folder}: {exc}") from None
    family = manifest.get("family")
    library = FAMILY_LIBRARIES.get(str(family))
    if library is None:
        raise ModelError(f"{folder}: unknown model family {family!r} in {MANIFEST}")
    saved, installed = (manifest.get("versions") or {}).get(library), _installed(library)
    if saved != installed:
        raise ModelError(f"{folder}: the model was saved with {library} {saved}, this "
                         f"environment has {library} {installed}; install {library}=={saved} "
                         "or retrain it with `cryptosweep train`")
    try:
        spec = ObjectiveSpec.of(manifest["objective_spec"])
        params = manifest["configuration"]["params"]
        repro = trial_reproducibility(spec, int(manifest["seed"]))
        entry_model = make_entry_model(str(family), params["entry_model"], repro)
        parse_interval(str(manifest["data"]["bar_interval"]))
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise ModelError(f"{folder}: {MANIFEST} is incomplete or invalid: {exc}") from None
    try:
        entry_model.load(folder / str(manifest["model_file"]))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder}: {exc}") from None
    return TrainedModel(entry_model, manifest)


def check_saved(folder: Path, manifest: dict[str, Any]) -> None:
    """``folder`` holds what was saved: its manifest's digest matches its content and every
    file it lists its SHA-256 (a ``ModelError`` line otherwise). The deployment gate checks a
    champion so before it re-evaluates its manifest's configuration."""
    if manifest.get("digest") != manifest_digest(manifest):
        raise ModelError(f"{folder}: {MANIFEST} was changed after the model was saved (its "
                         "digest does not match its content); retrain or restore it")
    _check_files(folder, manifest)


def _check_files(folder: Path, manifest: dict[str, Any]) -> None:
    files = manifest.get("files")
    if not isinstance(files, dict) or not files or manifest.get("model_file") not in files:
        raise ModelError(f"{folder}: {MANIFEST} lists no files (an unfinished save?)")
    for name, digest in sorted(files.items()):
        file = folder / name
        if Path(name).name != name or not file.is_file():
            raise ModelError(f"{folder}: {name} is missing (listed in {MANIFEST})")
        if file_sha256(file) != digest:
            raise ModelError(f"{folder}: {name} was changed after the model was saved (its "
                             f"SHA-256 differs from {MANIFEST}); retrain or restore it")
