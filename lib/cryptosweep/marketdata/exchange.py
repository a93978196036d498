"""The newest closed candles of one exchange, symbol and interval, fetched with ccxt.

:func:`fetch_closed_candles` pages through ccxt's unified ``fetch_ohlcv`` from a given open
time (``since``, ``limit`` candles a request, ccxt's own rate limiter on) up to ``now``, and
returns the closed candles as a frame shaped like :func:`cryptosweep.trading.data.load_ohlcv`'s
(a UTC ``open_time`` index, float64 ``open, high, low, close, volume``).

Closed means: the candle's close time (its open time plus the interval) is at or before
``now``. ``now`` defaults to the earlier of this machine's clock and the exchange's own
(``fetchTime``, where the exchange has it), so that a machine clock running ahead cannot take
a forming candle for a closed one. Candles closing after ``now`` (the one still forming, and
any the exchange sends from after a given ``now``) are dropped, never returned: the next
update fetches them once they are closed. ccxt's unified candles carry no "closed" flag of the
exchange, so no exchange's word is trusted over the clock here;
:func:`cryptosweep.marketdata.store.append_candles` refuses any candle closing after ``now``
that reaches it anyway.

Errors, each one line (no traceback, no credentials, no API key, no URL user or query):

* :class:`~cryptosweep.core.errors.ConfigError` (exit 2): an exchange id ccxt does not know, an
  interval that is not a fixed length (``1m`` ... ``1w``; not ``1M``) or that the exchange does
  not offer, a symbol the exchange does not list.
* :class:`~cryptosweep.core.errors.InfrastructureError` (exit 6): the exchange unreachable, timing
  out, failing (HTTP 5xx, rate limited) after ``retries`` retries, or answering something that is
  not candles (garbage JSON, rows of the wrong shape, non-numbers, impossible prices, times out
  of order).

``base_url`` points every REST endpoint of the exchange (each string of ccxt's ``urls['api']``)
at another scheme, host and port (a mirror, a proxy, a test server); the path of each endpoint
is kept. A user and password in it are sent as HTTP basic auth by ``requests`` and never
appear in an error or a log line of this module (ccxt's own debug log of request URLs goes
through a redacting logger).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import SplitResult, urlsplit, urlunsplit

import numpy as np
import pandas as pd

from cryptosweep.core.errors import ConfigError, InfrastructureError
from cryptosweep.core.intervals import format_interval, parse_interval
from cryptosweep.core.redaction import redact_url as core_redact_url
from cryptosweep.core.redaction import split_url

log = logging.getLogger(__name__)

OHLCV_COLUMNS = ("open", "high", "low", "close", "volume")
#: Candles a request asks for by default (Binance's maximum for spot klines).
DEFAULT_LIMIT = 1000
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_RETRIES = 2
#: Options that keep ccxt to the spot market's public endpoints (no futures, options, margin
#: or currency calls, which need other hosts or API keys), per exchange id.
SPOT_ONLY_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {
        "fetchMarkets": {"types": ["spot"]},
        "fetchMargins": False,
        "fetchCurrencies": False,
        "defaultType": "spot",
        "adjustForTimeDifference": False,
    },
}
_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s'\"<>]*)")
_MESSAGE_LIMIT = 240
T = TypeVar("T")


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch_closed_candles` got.

    ``candles``: the closed candles from ``since`` on, ascending, unique (a frame as
    ``load_ohlcv`` gives, possibly empty). ``dropped``: the open time of the candle dropped
    because it was still forming at ``now`` (open before, close after; none when the answers
    ended before it). Candles opening after ``now`` are not kept either (not listed).
    ``now``: the cut-off used. ``complete``: False when ``max_bars`` stopped the paging before
    ``now`` (more closed candles are waiting).
    ``requests``: HTTP requests made for candles (market listing and time not counted).
    ``notes``: where ``now`` came from.
    """

    exchange: str
    symbol: str
    interval: str
    since: pd.Timestamp
    now: pd.Timestamp
    candles: pd.DataFrame
    dropped: tuple[pd.Timestamp, ...] = ()
    complete: bool = True
    requests: int = 0
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------- public helpers


def check_exchange_id(exchange_id: str) -> str:
    """``exchange_id`` if ccxt knows it, else a :class:`ConfigError` naming it."""
    import ccxt

    if not isinstance(exchange_id, str) or exchange_id not in ccxt.exchanges:
        raise ConfigError(
            f"unknown exchange {exchange_id!r}: not one of ccxt's {len(ccxt.exchanges)} exchange "
            "ids (e.g. binance, kraken, coinbase; see ccxt.exchanges)"
        )
    return exchange_id


def check_interval(interval: str) -> pd.Timedelta:
    """The length of a fixed bar interval (``1m``, ``15m``, ``1h``, ``4h``, ``1d``, ``1w``), or
    a :class:`ConfigError` naming it (months have no fixed length)."""
    try:
        return parse_interval(interval)
    except ValueError:
        raise ConfigError(
            f"unsupported interval {interval!r}: expected a fixed bar length like 1m, 15m, 1h, "
            "4h, 1d or 1w"
        ) from None


def redact_url(url: str) -> str:
    """``url`` without its user, password, query and fragment (``scheme://host:port/path``):
    :func:`cryptosweep.core.redaction.redact_url`, which a password holding ``#``, ``?`` or
    ``/`` does not fool."""
    return core_redact_url(url, keep_path=True)


def open_exchange(exchange_id: str, *, base_url: str | None = None,
                  timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
    """A ccxt exchange object for public market data: rate limiter on, ``timeout_s`` per
    request, spot endpoints only where :data:`SPOT_ONLY_OPTIONS` says how, no API key, and
    every REST endpoint moved to ``base_url`` when given (see the module docstring)."""
    import ccxt

    check_exchange_id(exchange_id)
    if not timeout_s > 0:
        raise ConfigError(f"timeout must be positive, got {timeout_s!r}")
    secrets = _url_secrets(base_url) if base_url is not None else []
    options = {
        "enableRateLimit": True,
        "enableLastJsonResponse": True,
        "timeout": math.ceil(timeout_s * 1000),
        "options": dict(SPOT_ONLY_OPTIONS.get(exchange_id, {})),
    }
    exchange = getattr(ccxt, exchange_id)(options)
    exchange.logger = _RedactingLogger(secrets)
    if base_url is not None:
        target = _check_base_url(base_url)
        exchange.urls["api"] = _rebase(exchange.urls.get("api"), target)
    return exchange


def fetch_closed_candles(
    exchange: str,
    symbol: str,
    interval: str,
    since: pd.Timestamp | str | int,
    *,
    now: pd.Timestamp | str | int | None = None,
    base_url: str | None = None,
    limit: int = DEFAULT_LIMIT,
    max_bars: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
    retry_wait_s: float = 1.0,
) -> FetchResult:
    """The closed candles of ``symbol`` on ``exchange`` from open time ``since`` (included) up
    to ``now`` (see the module docstring), ``limit`` a request.

    ``since`` and ``now`` are ``pd.Timestamp``-able (an int is ms since the epoch; naive times
    are UTC). ``max_bars`` caps the candles returned (the paging stops there and
    ``complete`` is False). A network failure, timeout or HTTP 5xx is retried ``retries``
    times, ``retry_wait_s`` doubling each time, before it becomes an
    :class:`InfrastructureError`; a garbage answer is not retried.
    """
    step = check_interval(interval)
    step_ms = int(step.total_seconds() * 1000)
    if not isinstance(limit, int) or limit < 1:
        raise ConfigError(f"limit must be a positive number of candles, got {limit!r}")
    if max_bars is not None and (not isinstance(max_bars, int) or max_bars < 1):
        raise ConfigError(f"max_bars must be a positive number of candles, got {max_bars!r}")
    since_ms = _ms(since, "since")
    client = open_exchange(exchange, base_url=base_url, timeout_s=timeout_s)
    secrets = _url_secrets(base_url) if base_url is not None else []
    where = f"{exchange} ({redact_url(base_url)})" if base_url is not None else exchange
    call = _Caller(client, where, secrets, retries, retry_wait_s)

    if interval not in (client.timeframes or {}):
        offered = ", ".join(k for k in (client.timeframes or {}) if _fixed(k))
        raise ConfigError(
            f"unsupported interval {interval!r} on {exchange}: it offers {offered or 'none'}"
        )
    if client.parse_timeframe(interval) * 1000 != step_ms:
        raise ConfigError(f"interval {interval!r} means {client.parse_timeframe(interval)} s "
                          f"on {exchange}, not {format_interval(step)}")
    markets = call("listing the markets", client.load_markets)
    if not isinstance(markets, dict) or not markets:
        raise InfrastructureError(f"{where}: listing the markets gave no markets (an answer that "
                                  "is not the exchange's market list)")
    if symbol not in markets:
        hint = ""
        by_id = getattr(client, "markets_by_id", None) or {}
        if symbol in by_id:
            hint = f" (use the unified symbol {by_id[symbol][0]['symbol']!r})"
        raise ConfigError(f"unknown symbol {symbol!r}: {exchange} does not list it{hint}")

    local_ms = int(time.time() * 1000)
    if now is None:
        now_ms, note = local_ms, "now: this machine's clock"
        if (client.has or {}).get("fetchTime"):
            server_ms = call("reading the exchange's clock", client.fetch_time)
            if not isinstance(server_ms, int | float) or isinstance(server_ms, bool) \
                    or not math.isfinite(server_ms) or server_ms <= 0:
                raise InfrastructureError(f"{where}: reading the exchange's clock gave "
                                          f"{_clip(repr(server_ms))}, not a time")
            if int(server_ms) < now_ms:
                now_ms, note = int(server_ms), "now: the exchange's clock (behind this machine's)"
    else:
        now_ms, note = _ms(now, "now"), "now: given"

    rows: list[list[float]] = []
    dropped: list[int] = []
    after_now = 0
    requests = 0
    cursor = since_ms
    complete = True
    # Paging: each page starts at the open time after the last one seen, so the cursor grows
    # every round and the loop ends; it stops at the first candle that is not closed yet.
    while cursor + step_ms <= now_ms:
        if max_bars is not None and len(rows) >= max_bars:
            complete = False
            break
        page = call(
            f"fetching {symbol} {interval} candles from {_iso(cursor)}",
            client.fetch_ohlcv, symbol, interval, cursor, limit,
        )
        requests += 1
        _check_raw_klines(client, where, symbol, interval)
        candles = [c for c in _check_page(page, where, symbol, interval) if c[0] >= cursor]
        if not candles:
            break
        for candle in candles:
            if candle[0] + step_ms <= now_ms:
                if max_bars is not None and len(rows) >= max_bars:
                    complete = False
                    break
                rows.append(candle)
            elif candle[0] <= now_ms:
                dropped.append(int(candle[0]))  # forming at now
            else:
                after_now += 1  # opens after now: a given now in the past, or clocks apart
        if dropped or after_now or not complete:
            break
        cursor = int(candles[-1][0]) + step_ms
    if dropped:
        log.info("%s %s %s: dropped the candle opened at %s, not closed at now (%s)", where,
                 symbol, interval, _iso(dropped[0]), _iso(now_ms))
    if after_now and now is None:
        log.warning("%s %s %s: the exchange sent %d candle(s) opening after now (%s): its clock "
                    "and this machine's disagree; they were left for a later update", where,
                    symbol, interval, after_now, _iso(now_ms))
    return FetchResult(
        exchange=exchange, symbol=symbol, interval=interval,
        since=pd.Timestamp(since_ms, unit="ms", tz="UTC"),
        now=pd.Timestamp(now_ms, unit="ms", tz="UTC"), candles=_frame(rows),
        dropped=tuple(pd.Timestamp(t, unit="ms", tz="UTC") for t in dropped),
        complete=complete, requests=requests, notes=(note,),
    )  # fmt: skip


# --------------------------------------------------------------------------- calls and errors


class _Caller:
    """Calls into ccxt, turning whatever goes wrong into one redacted line."""

    def __init__(self, client: Any, where: str, secrets: list[str], retries: int,
                 wait_s: float) -> None:
        if not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"retries must be 0 or more, got {retries!r}")
        self.client, self.where, self.secrets = client, where, secrets
        self.retries, self.wait_s = retries, wait_s

    def __call__(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        import ccxt

        attempt = 0
        while True:
            try:
                self.client.last_json_response = None
                result = fn(*args)
                # ccxt hands a body that is not JSON on as text, and its parsers can make an
                # empty list of it: an answer that was not JSON is garbage, not "no data".
                if self.client.last_json_response is None:
                    raise InfrastructureError(
                        f"{self.where}: {what}: unexpected answer (not JSON)"
                    )
                return result
            except ccxt.BadSymbol as exc:
                raise ConfigError(f"{self.where}: {what}: the exchange refused the symbol "
                                  f"({self._text(exc)})") from None
            except ccxt.NetworkError as exc:  # timeouts, refused/reset connections, 5xx, 429
                if attempt < self.retries:
                    delay = self.wait_s * 2**attempt
                    log.warning("%s: %s failed (%s); retrying in %.1f s", self.where, what,
                                self._text(exc), delay)
                    time.sleep(delay)
                    attempt += 1
                    continue
                tries = f" after {attempt + 1} tries" if attempt else ""
                raise InfrastructureError(
                    f"{self.where}: {what} failed{tries}: {_kind(exc)} ({self._text(exc)})"
                ) from None
            except ccxt.BaseError as exc:  # an answer ccxt could not make sense of, HTTP 4xx
                raise InfrastructureError(
                    f"{self.where}: {what}: unexpected answer: {_kind(exc)} ({self._text(exc)})"
                ) from None
            except (TypeError, ValueError, KeyError, IndexError, AttributeError,
                    ArithmeticError) as exc:  # ccxt's parsers on garbage
                raise InfrastructureError(
                    f"{self.where}: {what}: unexpected answer ccxt could not parse: "
                    f"{type(exc).__name__} ({self._text(exc)})"
                ) from None

    def _text(self, exc: BaseException) -> str:
        return _clip(_redact(str(exc), self.secrets)) or type(exc).__name__


def _kind(exc: BaseException) -> str:
    import ccxt

    if isinstance(exc, ccxt.RequestTimeout):
        return "timed out"
    if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        return "rate limited"
    if isinstance(exc, ccxt.ExchangeNotAvailable):
        return "exchange not available"
    if isinstance(exc, ccxt.NetworkError):
        cause = exc.__cause__
        return f"network error ({type(cause).__name__})" if cause is not None else "network error"
    return type(exc).__name__


def _url_secrets(url: str) -> list[str]:
    """The parts of ``url`` that must never be shown: user, password (split as
    :func:`cryptosweep.core.redaction.split_url` does, whatever they hold), query values."""
    credentials = split_url(url)[1]
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url, credentials] if credentials else [url]
    found = [parts.username, parts.password, credentials, *credentials.split(":")]
    found += [value for _, _, value in (p.partition("=") for p in parts.query.split("&"))]
    found += [parts.fragment]
    return sorted({s for s in found if s and len(s) >= 3}, key=len, reverse=True)


def _redact(text: str, secrets: list[str]) -> str:
    """``text`` on one line, every URL in it without user/password/query, and every secret
    string replaced by ``***``."""
    text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    for secret in secrets:
        text = text.replace(secret, "***")
    return " ".join(text.split())


def _clip(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 3] + "..."


class _RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """ccxt logs each request's URL at debug level: this logger redacts it first."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__(logging.getLogger(f"{__name__}.ccxt"), {})
        self.secrets = secrets

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = " ".join(map(str, (msg, *args)))
        self.logger.log(level, "%s", _redact(text, self.secrets))


# --------------------------------------------------------------------------- base URL


def _check_base_url(base_url: str) -> SplitResult:
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except (ValueError, AttributeError):
        raise ConfigError("base_url is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base_url must be an http(s) URL with a host, got "
                          f"{redact_url(base_url)!r}")
    if parts.query or parts.fragment:
        raise ConfigError("base_url must not hold a query or fragment (a REST path is appended "
                          f"to it): {redact_url(base_url)!r}")
    return parts


def _rebase(api: Any, target: SplitResult) -> Any:
    """``urls['api']`` with every URL string's scheme and host replaced by ``target``'s (its
    path, if any, put before each endpoint's path)."""
    if isinstance(api, str):
        parts = urlsplit(api)
        path = target.path.rstrip("/") + parts.path
        return urlunsplit((target.scheme, target.netloc, path, parts.query, ""))
    if isinstance(api, dict):
        return {key: _rebase(value, target) for key, value in api.items()}
    return api


# --------------------------------------------------------------------------- candles


def _check_raw_klines(client: Any, where: str, symbol: str, interval: str) -> None:
    """Binance (and its ccxt subclasses) answer klines as a JSON list of arrays; ccxt's parser
    turns other JSON into an empty list, which would read as "no new candles"."""
    import ccxt

    if not isinstance(client, ccxt.binance):
        return  # other exchanges' raw shapes vary: their values are checked in _check_page
    raw = client.last_json_response
    if not isinstance(raw, list) or not all(isinstance(r, list) and len(r) >= 6 for r in raw):
        raise InfrastructureError(
            f"{where}: {symbol} {interval} candles: unexpected answer (not a list of kline "
            f"arrays: {_clip(repr(raw))[:80]})"
        )


def _check_page(page: Any, where: str, symbol: str, interval: str) -> list[list[float]]:
    """ccxt's unified candles ``[ms, open, high, low, close, volume]``, checked: a list of
    rows of six finite numbers, whole ms, strictly ascending, positive prices with ``low <=
    open, close <= high``, volume >= 0. Anything else is an InfrastructureError."""

    def bad(reason: str) -> InfrastructureError:
        return InfrastructureError(f"{where}: {symbol} {interval} candles: unexpected answer "
                                   f"({reason})")

    if not isinstance(page, list):
        raise bad(f"a {type(page).__name__}, not a list of candles")
    out: list[list[float]] = []
    previous = None
    for n, row in enumerate(page):
        if not isinstance(row, list | tuple) or len(row) < 6:
            raise bad(f"candle {n + 1} is {_clip(repr(row))[:80]}, not [time, open, high, low, "
                      "close, volume]")
        values = list(row[:6])
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values) or not all(
            math.isfinite(v) for v in values
        ):
            raise bad(f"candle {n + 1} holds a missing or non-numeric value: "
                      f"{_clip(repr(values))[:120]}")
        stamp, o, h, low, c, v = values
        if stamp != int(stamp) or stamp < 10**11 or stamp > 10**14:
            raise bad(f"candle {n + 1}: time {stamp!r} is not ms since the epoch")
        stamp = int(stamp)
        if previous is not None and stamp <= previous:
            raise bad(f"candle {n + 1} at {_iso(stamp)} is not after {_iso(previous)}")
        if min(o, h, low, c) <= 0 or low > h or not (low <= o <= h and low <= c <= h) or v < 0:
            raise bad(f"candle at {_iso(stamp)} has impossible values open {o!r} high {h!r} "
                      f"low {low!r} close {c!r} volume {v!r}")
        previous = stamp
        out.append([stamp, float(o), float(h), float(low), float(c), float(v)])
    return out


def _frame(rows: list[list[float]]) -> pd.DataFrame:
    stamps = np.array([int(r[0]) for r in rows], dtype="int64") * 1_000_000
    index = pd.DatetimeIndex(stamps.astype("datetime64[ns]"), name="open_time").tz_localize("UTC")
    data = {col: np.array([r[i + 1] for r in rows], dtype="float64")
            for i, col in enumerate(OHLCV_COLUMNS)}  # fmt: skip
    return pd.DataFrame(data, index=index, dtype="float64")


def _ms(value: pd.Timestamp | str | int, name: str) -> int:
    """Milliseconds since the epoch of a time (an int is ms already; naive means UTC)."""
    if isinstance(value, bool):
        raise ConfigError(f"{name}: expected a time, got {value!r}")
    if isinstance(value, int | np.integer):
        return int(value)
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ConfigError(f"{name}: not a time: {value!r}") from None
    if stamp is pd.NaT:
        raise ConfigError(f"{name}: not a time: {value!r}")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.as_unit("ns").value // 1_000_000)


def _iso(ms: int) -> str:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").isoformat()


def _fixed(timeframe: str) -> bool:
    try:
        parse_interval(timeframe)
    except ValueError:
        return False
    return True

