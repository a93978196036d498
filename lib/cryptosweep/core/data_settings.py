"""The ``data`` section of a sweep configuration: the candles' file, format, columns, bar
interval, time range and holdout, and their update from an exchange (``data.update``: the
exchange, symbol and interval ``cryptosweep data update`` fetches)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator, model_validator

from cryptosweep.core.errors import ConfigError
from cryptosweep.core.strict import Strict


class ColumnMapping(Strict):
    """Column names of a generic CSV or Parquet file (``data.format: generic``)."""

    timestamp: str = "timestamp"
    open: str = "open"
    high: str = "high"
    low: str = "low"
    close: str = "close"
    volume: str = "volume"

    @model_validator(mode="after")
    def _distinct(self) -> ColumnMapping:
        clash = shared_column(self.model_dump())
        if clash is not None:
            raise ValueError(clash)
        return self


def shared_column(mapping: Mapping[str, str]) -> str | None:
    """Why a generic file's full column mapping (every key, in order, to the column it reads)
    reads one column as two keys (``{open: close}`` read every bar's open as its close, without
    a word), else None: the one rule of ``data.columns``, ``--columns`` and
    :func:`~cryptosweep.trading.data.load_ohlcv`'s ``columns``."""
    read_by: dict[str, list[str]] = {}
    for key, column in mapping.items():
        read_by.setdefault(column, []).append(key)
    for column, keys in read_by.items():
        if len(keys) > 1:
            return (f"column {column!r} is read as {' and '.join(keys)}; each key needs a "
                    "column of its own (a key not given reads the column of its own name)")
    return None


#: ``data.update``'s defaults (the one place they are written: :mod:`cryptosweep.marketdata`
#: uses them for its function defaults). Candles a request asks for (Binance's maximum for spot
#: klines):
DEFAULT_LIMIT = 1000
#: The most new candles one update appends (the rest come with the next one).
DEFAULT_MAX_BARS = 100_000
#: The largest move a new candle's prices may make from the close before it, as a fraction
#: (0.5: within 1.5 times it and 1/1.5 of it); a larger one is taken for another market or a
#: broken feed (prices a thousand times the stored ones were appended), unless raised.
DEFAULT_MAX_JUMP = 0.5
#: Seconds a whole HTTP request may take (connect to last byte).
DEFAULT_TIMEOUT_S = 10.0
#: Retries of a failed request.
DEFAULT_RETRIES = 2
#: Closed candles younger than this many bar intervals wait for a later update (0: none wait;
#: Binance's closed klines are final). At most MAX_SETTLE_BARS.
DEFAULT_SETTLE_BARS = 0
MAX_SETTLE_BARS = 1000


_EXCHANGE_ID = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,29}/[A-Za-z0-9][A-Za-z0-9._-]{0,29}$")


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def base_url_problem(value: str) -> str | None:
    """Why ``value`` cannot be the base URL of an exchange's REST API, in words that never
    quote it (it may hold credentials): not an http(s) URL with a host and a valid port, a
    query or fragment (a REST path is appended to it), a user or password that HTTP basic auth
    cannot send (characters outside Latin-1, which ``requests`` refuses at the first request),
    a host name that cannot be one (an empty label: ``exchange..com``);
    None when it can be."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
        user, password = parts.username, parts.password
    except ValueError:
        return "is not a URL (or its port is not a number from 0 to 65535)"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL with a host"
    try:  # what the HTTP client does with it at the first request, there a parse error
        parts.hostname.encode("idna")
    except UnicodeError:
        return "has a host name with an empty label or one longer than 63 characters"
    if parts.query or parts.fragment:
        return "must hold no query or fragment (a REST path is appended to it)"
    try:
        for credential in (user, password):
            unquote(credential or "", errors="strict").encode("latin-1")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return ("holds a user or password that HTTP basic auth cannot send (characters "
                "outside Latin-1)")
    return None


class DataUpdateSettings(Strict):
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
        "(a mirror or proxy); no user, password, path or query: put a URL with credentials or "
        "a path in the environment variable named by base_url_env instead",
    )
    base_url_env: str | None = Field(
        default=None, description="name of an environment variable holding base_url (may hold "
        "credentials; never printed)",
    )
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=5000,
                       description="candles a request")
    max_bars: int | None = Field(
        default=DEFAULT_MAX_BARS, ge=1,
        description="most bars one update appends (the rest come with "
        "the next); None: no cap",
    )
    allow_gaps: bool = Field(
        default=False, description="append across gaps the exchange itself has (missing "
        "candles); off: a gap is refused (exit 2)",
    )
    max_jump: float = Field(
        default=DEFAULT_MAX_JUMP, gt=0, le=1000,
        description="largest move of a new candle's prices from the close before it, as a "
        "fraction (0.5: within 1.5 times it either way); larger is refused (exit 2)",
    )
    settle_bars: int = Field(
        default=DEFAULT_SETTLE_BARS, ge=0, le=MAX_SETTLE_BARS,
        description="closed candles younger than this many bar intervals are left for a later "
        "update: for an exchange that still revises a candle after its close (its volume "
        "settling), each candle is then stored once, settled; 0: every closed candle",
    )
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0, le=300,
                             description="seconds a request")
    retries: int = Field(default=DEFAULT_RETRIES, ge=0, le=10,
                         description="retries of a failed request")

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
        problem = base_url_problem(value)
        if problem is not None:
            raise ValueError(f"base_url {problem}")
        parts = urlsplit(value)
        if parts.username or parts.password:
            raise ValueError("base_url must hold no user, password, query or fragment (config "
                             "files are copied into run folders): name an environment variable "
                             "holding it in base_url_env instead")
        if parts.path not in ("", "/"):
            # The path of a base URL (a proxy's token) is never shown in a message, but the
            # config is journaled whole into every run folder (sweep.db, results).
            raise ValueError("base_url must be scheme://host[:port], without a path (config "
                             "files are copied into run folders, and a path may hold a proxy's "
                             "token): name an environment variable holding a URL with a path "
                             "in base_url_env instead")
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
        :class:`ConfigError` naming the variable, never its value, when it is unset or not a
        usable base URL: :func:`base_url_problem`)."""
        if self.base_url_env is None:
            return self.base_url
        env = os.environ if environ is None else environ
        value = env.get(self.base_url_env, "").strip()
        if not value:
            raise ConfigError(f"data.update.base_url_env: the environment variable "
                              f"{self.base_url_env} is not set")
        problem = base_url_problem(value)
        if problem is not None:
            raise ConfigError(f"data.update.base_url_env: the environment variable "
                              f"{self.base_url_env} {problem} (its value is not shown)")
        return value

    def call_kwargs(self, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The keyword arguments of :func:`cryptosweep.marketdata.store.update_candles` after
        its ``path``."""
        return {
            "exchange": self.exchange, "symbol": self.symbol, "interval": self.interval,
            "base_url": self.resolved_base_url(environ), "limit": self.limit,
            "max_bars": self.max_bars, "allow_gaps": self.allow_gaps,
            "max_jump": self.max_jump, "settle_bars": self.settle_bars,
            "timeout_s": self.timeout_s, "retries": self.retries,
        }  # fmt: skip


def base_url_refused(value: str) -> bool:
    """Whether ``data.update.base_url`` refuses ``value`` (:meth:`DataUpdateSettings._base_url`:
    this version refuses a path and an empty host label that an older one journaled)."""
    try:
        DataUpdateSettings._base_url(value)
    except ValueError:
        return True
    return False


class DataSettings(Strict):
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
