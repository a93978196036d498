"""The proposed ``data.update`` config section: which exchange, symbol and interval keep the
candle file of ``data.path`` current (``cryptosweep data update --config CONFIG``).

```yaml
data:
  path: data/BTCUSDT-1h.csv.gz
  update: {exchange: binance, symbol: BTC/USDT, interval: 1h}
```

The strings are checked here by shape only (this module does not import ccxt, so that loading
a config stays cheap for every worker); whether the exchange knows them is checked when the
update runs (:func:`cryptosweep.marketdata.store.update_candles`: a
:class:`~cryptosweep.core.errors.ConfigError`, exit 2). The section changes no result (the data
file's digest does), so it belongs with the config's execution-only settings.

Called as::

    from cryptosweep.marketdata.store import update_candles

    summary = update_candles(config.data.path, **config.data.update.call_kwargs())
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cryptosweep.core.errors import ConfigError
from cryptosweep.core.intervals import format_interval, parse_interval

_EXCHANGE_ID = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,29}/[A-Za-z0-9][A-Za-z0-9._-]{0,29}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class DataUpdateSettings(BaseModel):
    """``data.update``: where new candles for ``data.path`` come from."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

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
