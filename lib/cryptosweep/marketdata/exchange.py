"""The newest closed candles of one exchange, symbol and interval, fetched with ccxt.

:func:`fetch_closed_candles` pages through ccxt's unified ``fetch_ohlcv`` from a given open
time (``since``, ``limit`` candles a request, ccxt's own rate limiter on) up to ``now``, and
returns the closed candles as a frame shaped like :func:`cryptosweep.trading.data.load_ohlcv`'s
(a UTC ``open_time`` index, float64 ``open, high, low, close, volume``).

Closed means: the candle's close time (its open time plus the interval) is at or before
``now``. ``now`` defaults to the earlier of this machine's clock and the exchange's own
(``fetchTime``, where the exchange has it; else the HTTP ``Date`` of its market listing's
answer, plus its ``Age``), so that a machine clock running ahead cannot take a forming candle
for a closed one. Candles closing after ``now`` (the one still forming, and
any the exchange sends from after a given ``now``) are dropped, never returned: the next
update fetches them once they are closed. ccxt's unified candles carry no "closed" flag of the
exchange, so no exchange's word is trusted over the clock here;
:func:`cryptosweep.marketdata.store.append_candles` refuses any candle closing after ``now``
that reaches it anyway.

Errors, each one line (no traceback, no credentials, no API key, no user, password, path or
query of ``base_url``, no ``Authorization`` header made of them):

* :class:`~cryptosweep.core.errors.ConfigError` (exit 2): an exchange id ccxt does not know, an
  interval that is not a fixed length (``1m`` ... ``1w``; not ``1M``) or that the exchange does
  not offer, a symbol the exchange does not list.
* :class:`~cryptosweep.core.errors.InfrastructureError` (exit 6): the exchange unreachable, timing
  out, cutting its answer short, failing (HTTP 5xx, rate limited) after ``retries`` retries, or
  answering something that is not candles (garbage JSON, rows of the wrong shape, non-numbers,
  impossible prices, times out of order, candles of another interval than the one asked for,
  more candles than the ``limit`` a request asks for).

Deadlines: ``timeout_s`` bounds each HTTP request as a whole, from connecting to the answer's
last byte (every request runs in a daemon thread joined with that deadline), not only each
socket read: a server dripping a byte a second times out like a silent one (ccxt's
``RequestTimeout``: "timed out", retried).

Rate limits: an HTTP 429 with ``Retry-After`` (seconds or an HTTP date) is retried after that
wait (at least the back-off) when a retry is left and the wait is at most
:data:`RETRY_AFTER_LIMIT_S`; a longer wait gives up at once, saying how long the exchange
asked to wait. An HTTP 418 (Binance: this IP is banned for ignoring 429s; each request during
the ban lengthens it) gives up at once, never retried.

Clocks: when the exchange's clock (``fetchTime``) and this machine's differ by more than
:data:`CLOCK_SKEW_LIMIT_S` or one bar interval, whichever is longer, a warning names both times
(logged, and in :attr:`FetchResult.warnings`): with the exchange behind (a stale mirror) an
update would otherwise quietly find "no new closed candles" every day. It is a warning, not an
error: the earlier clock is ``now``, so no unclosed candle is taken either way.

Intervals: every candle must be of the interval asked for, ``allow_gaps`` or not: a Binance
page holding a kline without its own close time (field 6, a JSON number or a string of one),
or one running longer than the interval (close time after open time + interval - 1 ms: a
longer candle, maybe still forming), or mostly klines closing early, is refused (a single
kline closing early is not: Binance's history has a few); so is a page of four or more candles
all the same multiple of the interval apart (candles of a longer interval), and, on any
exchange, two candles closer than the interval (a shorter one). Refused answers are
InfrastructureErrors, so a 4h candle still forming never passes for a closed 1h one. Candles
off the file's time grid are the store's to refuse (exit 2).

``base_url`` points every REST endpoint of the exchange (each string of ccxt's ``urls['api']``)
at another scheme, host and port (a mirror, a proxy, a test server); the path of each endpoint
is kept. A user and password in it are sent as HTTP basic auth by ``requests``; they (as
written, percent-decoded, and as the base64 of that header, which a proxy may echo), and the
path of ``base_url`` (a proxy's token, say), never appear in an error or a log line of this
module: ``base_url`` is shown as ``scheme://host:port`` only (ccxt's own debug log of request
URLs goes through a redacting logger).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import logging
import math
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

import numpy as np
import pandas as pd

from cryptosweep.core.data_settings import (
    DEFAULT_LIMIT,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    base_url_problem,
)
from cryptosweep.core.errors import ConfigError, InfrastructureError
from cryptosweep.core.intervals import format_interval, parse_interval
from cryptosweep.core.redaction import redact_url as core_redact_url
from cryptosweep.core.redaction import secret_pieces, split_url

log = logging.getLogger(__name__)

OHLCV_COLUMNS = ("open", "high", "low", "close", "volume")
#: Seconds before the first retry of a failed request (doubling with each retry).
DEFAULT_RETRY_WAIT_S = 1.0
#: The longest ``Retry-After`` (s) of an HTTP 429 an update waits for before its retry; a longer
#: one gives up at once (the next update, hours later, tries again).
RETRY_AFTER_LIMIT_S = 60.0
#: The exchange's clock and this machine's differing by more than this (or one bar interval,
#: whichever is longer) is a warning naming both times.
CLOCK_SKEW_LIMIT_S = 3600.0
#: A long range (a file months behind: 100 requests and more, a minute or two) logs how far it
#: got every this many candle requests (INFO), so that it is not taken for a hang.
PROGRESS_EVERY = 10
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
#: A page of at least this many candles, all the same multiple (> 1) of the interval apart, is
#: candles of another interval (fewer may be an illiquid market's gaps).
_REGULAR_GAPS = 4
#: The open times (ms since the epoch) a candle may have: 1973 to 5138; seconds or
#: microseconds since the epoch fall outside.
_MS_MIN, _MS_MAX = 10**11, 10**14
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
    ``notes``: where ``now`` came from. ``warnings``: what the caller must show loudly (the
    exchange's clock far from this machine's).
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
    warnings: tuple[str, ...] = ()


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
    """A ccxt exchange object for public market data: rate limiter on, ``timeout_s`` the
    deadline of each whole HTTP request (see the module docstring), spot endpoints only where
    :data:`SPOT_ONLY_OPTIONS` says how, no API key, and every REST endpoint moved to
    ``base_url`` when given."""
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
    _Requests.install(exchange, timeout_s)
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
    retry_wait_s: float = DEFAULT_RETRY_WAIT_S,
) -> FetchResult:
    """The closed candles of ``symbol`` on ``exchange`` from open time ``since`` (included) up
    to ``now`` (see the module docstring), ``limit`` a request.

    ``since`` and ``now`` are ``pd.Timestamp``-able (an int is ms since the epoch; naive times
    are UTC). ``max_bars`` caps the candles returned (the paging stops there and
    ``complete`` is False). ``timeout_s`` bounds each HTTP request as a whole. A network
    failure, timeout, HTTP 5xx or 429 is retried ``retries`` times, ``retry_wait_s`` doubling
    each time (a 429's ``Retry-After`` waited instead when longer; an answer the connection
    cut short is a network failure), before it becomes an
    :class:`InfrastructureError`; a garbage answer, an HTTP 418 (an IP ban) and a 429 asking
    to wait more than :data:`RETRY_AFTER_LIMIT_S` are not retried.
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
    where = f"{exchange} ({core_redact_url(base_url)})" if base_url is not None else exchange
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
    listed_ms = call.last_date_ms  # the exchange's clock by its answer's HTTP Date, if any
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
    warnings: list[str] = []
    if now is None:
        now_ms, note = local_ms, "now: this machine's clock"
        server_ms: int | float | None = None
        clock = "the exchange's clock"
        if (client.has or {}).get("fetchTime"):
            server_ms = call("reading the exchange's clock", client.fetch_time)
            if not isinstance(server_ms, int | float) or isinstance(server_ms, bool) \
                    or not math.isfinite(server_ms) or server_ms <= 0:
                raise InfrastructureError(f"{where}: reading the exchange's clock gave "
                                          f"{_clip(repr(server_ms))}, not a time")
        elif listed_ms is not None:
            # No time endpoint (Bitstamp, Bitfinex, Gemini...): the Date its market listing
            # was answered with (whole seconds, never later than the exchange's time when the
            # candles are asked for), so that a machine clock running ahead does not take the
            # candle forming at the exchange for a closed one either.
            server_ms, clock = listed_ms, "the exchange's clock (its HTTP Date)"
        if server_ms is not None:
            if int(server_ms) < now_ms:
                now_ms, note = int(server_ms), f"now: {clock} (behind this machine's)"
            skew = _clock_skew(int(server_ms), int(time.time() * 1000), step_ms)
            if skew is not None:
                log.warning("%s %s %s: %s", where, symbol, interval, skew)
                warnings.append(skew)
    else:
        now_ms, note = _ms(now, "now"), "now: given"
        if now_ms > local_ms:  # a candle closing after this machine's clock is not closed
            now_ms, note = local_ms, "now: this machine's clock (the given now is later)"

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
        _check_page_length(call.last_json, page, limit, where, symbol, interval)
        _check_raw_klines(client, call.last_json, where, symbol, interval, step_ms)
        candles = [c for c in _check_page(page, where, symbol, interval, step_ms)
                   if c[0] >= cursor]
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
        if requests % PROGRESS_EVERY == 0 and rows:  # a long range: say how far it got
            log.info("%s %s %s: %d closed candle(s) fetched so far, up to %s (%d requests; now "
                     "%s)", where, symbol, interval, len(rows), _iso(int(rows[-1][0])),
                     requests, _iso(now_ms))
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
        complete=complete, requests=requests, notes=(note,), warnings=tuple(warnings),
    )  # fmt: skip


# --------------------------------------------------------------------------- calls and errors


@dataclass
class _Answer:
    """What one HTTP request of a ccxt client got, written by that request's own thread:
    the HTTP status and headers (lower-case names; none when no answer came) and the JSON
    value (None when the body was not JSON, or no answer came)."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None


class _Requests:
    """Every HTTP request of one ccxt client under a deadline for the whole request.

    ccxt's ``timeout`` (that of ``requests``) bounds each socket read, so a server sending a
    byte now and then holds a request for ever. :meth:`install` replaces the client's
    ``fetch`` (the one method every REST request of ccxt goes through, after its rate
    limiter) by :meth:`request`, which runs it in a daemon thread and joins that with the
    deadline; past it, ccxt's :class:`RequestTimeout` is raised, as a silent server gives.
    The abandoned thread ends when its server gives up or the process ends. What is read here
    of an answer (status, headers, JSON) is recorded per request in its own :class:`_Answer`
    (through ccxt's ``on_rest_response`` hook, in the request's thread), never in ccxt's
    shared ``last_*`` attributes, which a late thread may still write: a late answer is never
    taken for a later request's.
    """

    def __init__(self, client: Any, timeout_s: float) -> None:
        self.client_id = str(getattr(client, "id", "exchange"))
        self.timeout_s = timeout_s
        self.fetch = client.fetch
        self.hook = client.on_rest_response
        self.local = threading.local()
        self.last: _Answer | None = None

    @classmethod
    def install(cls, client: Any, timeout_s: float) -> _Requests:
        requests = cls(client, timeout_s)
        client.fetch = requests.request
        client.on_rest_response = requests.on_rest_response
        client._cryptosweep_requests = requests
        return requests

    def on_rest_response(self, code: Any, reason: Any, url: Any, method: Any, headers: Any,
                         body: Any, *rest: Any) -> Any:
        answer = getattr(self.local, "answer", None)
        if answer is not None:
            answer.status = int(code) if isinstance(code, int) else None
            answer.headers = {str(k).lower(): str(v) for k, v in dict(headers or {}).items()}
        return self.hook(code, reason, url, method, headers, body, *rest)

    def request(self, url: str, method: str = "GET", headers: Any = None,
                body: Any = None) -> Any:
        import ccxt

        answer = _Answer()
        self.last = answer
        outcome: dict[str, Any] = {}

        def run() -> None:
            self.local.answer = answer
            try:
                outcome["result"] = self.fetch(url, method, headers, body)
            except BaseException as exc:  # handed to the caller's thread below
                outcome["error"] = exc

        worker = threading.Thread(target=run, name=f"{self.client_id}-request", daemon=True)
        worker.start()
        worker.join(self.timeout_s)
        if worker.is_alive():
            raise ccxt.RequestTimeout(f"{self.client_id} {method}: no whole answer within "
                                      f"{self.timeout_s:g} s")
        if "error" in outcome:
            raise outcome["error"]
        result = outcome.get("result")
        # ccxt returns the parsed JSON (an object or array) or, for any other body, its text.
        answer.json = result if isinstance(result, dict | list) else None
        return result


class _Caller:
    """Calls into ccxt, turning whatever goes wrong into one redacted line."""

    def __init__(self, client: Any, where: str, secrets: list[str], retries: int,
                 wait_s: float) -> None:
        if not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"retries must be 0 or more, got {retries!r}")
        self.client, self.where, self.secrets = client, where, secrets
        self.retries, self.wait_s = retries, wait_s
        self.requests: _Requests = getattr(client, "_cryptosweep_requests", None) or \
            _Requests.install(client, float(client.timeout) / 1000)

    @property
    def last_date_ms(self) -> int | None:
        """The time (ms) in the HTTP ``Date`` header of the last request's answer, plus its
        ``Age`` (seconds a cache held it), or None (no answer, no header, not an HTTP date)."""
        answer = self.requests.last
        value = answer.headers.get("date", "").strip() if answer is not None else ""
        if not value:
            return None
        age = answer.headers.get("age", "").strip() if answer is not None else ""
        when = _http_date(value)
        if when is None:
            return None
        stamp = when + (int(age) if age.isascii() and age.isdigit() else 0)
        return int(stamp * 1000) if math.isfinite(stamp) and stamp > 0 else None

    @property
    def last_json(self) -> Any:
        """The JSON value of the last HTTP request's answer (None: not JSON, or none)."""
        return self.requests.last.json if self.requests.last is not None else None

    def __call__(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        import ccxt

        attempt = 0
        while True:
            try:
                self.requests.last = None
                result = fn(*args)
                # ccxt hands a body that is not JSON on as text, and its parsers can make an
                # empty list of it: an answer that was not JSON is garbage, not "no data".
                if self.last_json is None:
                    raise InfrastructureError(
                        f"{self.where}: {what}: unexpected answer (not JSON)"
                    )
                return result
            except ccxt.BadSymbol as exc:
                raise ConfigError(f"{self.where}: {what}: the exchange refused the symbol "
                                  f"({self._text(exc)})") from None
            except ccxt.BaseError as exc:
                answer = self.requests.last
                status = answer.status if answer is not None else None
                if answer is not None and status in (418, 429):
                    delay = self._rate_limited(what, exc, status, answer.headers, attempt)
                elif _network_fault(exc):  # timeouts, refused/reset, cut answers, 5xx
                    if attempt >= self.retries:
                        raise InfrastructureError(
                            f"{self.where}: {what} failed{_tries(attempt)}: {_kind(exc)} "
                            f"({self._text(exc)})"
                        ) from None
                    delay = self.wait_s * 2**attempt
                    log.warning("%s: %s failed (%s); retrying in %.1f s", self.where, what,
                                self._text(exc), delay)
                else:  # an answer ccxt could not make sense of, HTTP 4xx
                    raise InfrastructureError(
                        f"{self.where}: {what}: unexpected answer: {_kind(exc)} "
                        f"({self._text(exc)})"
                    ) from None
                time.sleep(delay)
                attempt += 1
            except (TypeError, ValueError, KeyError, IndexError, AttributeError,
                    ArithmeticError) as exc:  # ccxt's parsers on garbage
                raise InfrastructureError(
                    f"{self.where}: {what}: unexpected answer ccxt could not parse: "
                    f"{type(exc).__name__} ({self._text(exc)})"
                ) from None

    def _rate_limited(self, what: str, exc: BaseException, status: int,
                      headers: Mapping[str, str], attempt: int) -> float:
        """The wait before retrying an HTTP 429, or the InfrastructureError that gives up:
        at once for a 418 (a ban) and for a 429 asking to wait longer than
        :data:`RETRY_AFTER_LIMIT_S`, else once the retries are spent."""
        wait = _retry_after(headers)
        asked = "" if wait is None else f", the exchange asked to wait {wait:.0f} s"
        if status == 418:
            raise InfrastructureError(
                f"{self.where}: {what}: the exchange has banned this IP address for too many "
                f"requests (HTTP 418{asked}); not retried, as every request during a ban "
                f"lengthens it: update again once it is over ({self._text(exc)})"
            )
        if wait is not None and wait > RETRY_AFTER_LIMIT_S:
            raise InfrastructureError(
                f"{self.where}: {what}: rate limited (HTTP 429{asked}, more than the "
                f"{RETRY_AFTER_LIMIT_S:g} s an update waits); not retried: update again later"
            )
        if attempt >= self.retries:
            raise InfrastructureError(
                f"{self.where}: {what} failed{_tries(attempt)}: rate limited (HTTP 429{asked}) "
                f"({self._text(exc)})"
            )
        delay = self.wait_s * 2**attempt
        if wait is not None and wait > delay:
            delay = wait
        log.warning("%s: %s: rate limited (HTTP 429%s); retrying in %.1f s", self.where, what,
                    asked, delay)
        return delay

    def _text(self, exc: BaseException) -> str:
        return _clip(_redact(str(exc), self.secrets)) or type(exc).__name__


def _tries(attempt: int) -> str:
    return f" after {attempt + 1} tries" if attempt else ""


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """The seconds an HTTP ``Retry-After`` header asks to wait (RFC 9110: seconds, or an HTTP
    date), or None when there is none or it is neither."""
    value = str(headers.get("retry-after", "")).strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        when = _http_date(value)
        if when is None:
            return None
        seconds = when - time.time()
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _http_date(value: str) -> float | None:
    """The POSIX time of an HTTP date (RFC 9110's IMF-fixdate, in GMT, or an obsolete form),
    or None when ``value`` is not one."""
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110's IMF-fixdate is in GMT
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _clock_skew(server_ms: int, local_ms: int, step_ms: int) -> str | None:
    """A warning when the exchange's clock and this machine's differ by more than
    :data:`CLOCK_SKEW_LIMIT_S` or one bar interval (whichever is longer), else None."""
    skew = server_ms - local_ms
    if abs(skew) <= max(CLOCK_SKEW_LIMIT_S * 1000, step_ms):
        return None
    limit = format_interval(pd.Timedelta(max(int(CLOCK_SKEW_LIMIT_S * 1000), step_ms), "ms"))
    times = f"the exchange's clock reads {_iso(server_ms)}, this machine's {_iso(local_ms)}"
    if skew < 0:
        return (f"{times}: the exchange is {_span(-skew)} behind (more than {limit}); candles "
                "closing after its time are not fetched, so the candles stop at its time (a "
                "stale mirror or exchange? check base_url and the exchange's status)")
    return (f"{times}: the exchange is {_span(skew)} ahead (more than {limit}); candles "
            "closing after this machine's time are not fetched (is this machine's clock "
            "behind? check NTP)")


def _span(ms: int) -> str:
    if ms >= 2 * 86_400_000:
        return f"{ms / 86_400_000:.1f} days"
    if ms >= 3_600_000:
        return f"{ms / 3_600_000:.1f} h"
    return f"{ms / 60_000:.0f} min"


def _network_fault(exc: BaseException) -> bool:
    """Whether a ccxt error is the network's (retried, then exit 6): ccxt's NetworkError, or
    the ExchangeError ccxt makes of an answer the connection cut short (``requests``'
    ChunkedEncodingError: a chunked body ended early) or of a broken connection."""
    import ccxt
    import requests

    cut_short = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)
    return isinstance(exc, ccxt.NetworkError) or isinstance(exc.__cause__, cut_short)


def _kind(exc: BaseException) -> str:
    import ccxt

    if isinstance(exc, ccxt.RequestTimeout):
        return "timed out"
    if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        return "rate limited"
    if isinstance(exc, ccxt.ExchangeNotAvailable):
        return "exchange not available"
    if _network_fault(exc):
        cause = exc.__cause__
        return f"network error ({type(cause).__name__})" if cause is not None else "network error"
    return type(exc).__name__


def _url_secrets(url: str) -> list[str]:
    """The strings of ``url`` that must never be shown: its user, password, path, query and
    fragment and their pieces (:func:`cryptosweep.core.redaction.secret_pieces`: as written,
    percent-decoded, escaped), and the ``Authorization: Basic`` token ``requests`` makes of the
    user and password (a server may echo that header in an error); not its host or port."""
    host_and_port = split_url(url)[2]
    shown = {host_and_port, *host_and_port.rsplit(":", 1), core_redact_url(url),
             core_redact_url(url) + "/"}
    pieces = {piece for piece in secret_pieces(url) if piece not in shown and len(piece) >= 3}
    pieces |= _basic_auth_tokens(url)
    return sorted(pieces, key=len, reverse=True)


def _basic_auth_tokens(url: str) -> set[str]:
    """The base64 of ``user:password`` (percent-decoded, as ``requests`` sends it; in Latin-1
    and UTF-8) of a URL holding credentials; none without."""
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return set()
    if user is None and password is None:
        return set()
    pair = f"{unquote(user or '')}:{unquote(password or '')}"
    tokens = set()
    for encoding in ("latin-1", "utf-8"):
        with contextlib.suppress(UnicodeEncodeError):
            tokens.add(base64.b64encode(pair.encode(encoding)).decode("ascii"))
    return tokens


def _redact(text: str, secrets: list[str]) -> str:
    """``text`` on one line, every URL in it without user/password/query, every secret string
    replaced by ``***``, and every control or format character (a terminal escape, a carriage
    return, a bidi override: text from the server) shown as ``?``."""
    text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    for secret in secrets:
        text = text.replace(secret, "***")
    return _printable(" ".join(text.split()))


def _printable(text: str) -> str:
    """``text`` with each control or format character (Unicode Cc, Cf) replaced by ``?``."""
    return "".join("?" if unicodedata.category(c) in ("Cc", "Cf") else c for c in text)


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
    """``base_url`` split, or a :class:`ConfigError` saying why it cannot be one
    (:func:`cryptosweep.core.data_settings.base_url_problem`), showing only its scheme, host
    and port."""
    problem = base_url_problem(base_url)
    if problem is not None:
        raise ConfigError(f"base_url {problem}: {core_redact_url(base_url)!r}")
    return urlsplit(base_url)


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


def _check_page_length(raw: Any, page: Any, limit: int, where: str, symbol: str,
                       interval: str) -> None:
    """An answer holds at most ``limit`` candles, as asked (Binance's klines never more): one
    of more rows (the answer as sent, or ccxt's candles of it) is not an answer to the
    request, and would be parsed whole before any other check, however long."""
    rows = max(len(value) if isinstance(value, list) else 0 for value in (raw, page))
    if rows > limit:
        raise InfrastructureError(
            f"{where}: {symbol} {interval} candles: unexpected answer ({rows} rows to a request "
            f"for at most {limit})"
        )


def _check_raw_klines(client: Any, raw: Any, where: str, symbol: str, interval: str,
                      step_ms: int) -> None:
    """Binance (and its ccxt subclasses) answer klines as a JSON list of arrays; ccxt's parser
    turns other JSON into an empty list, which would read as "no new candles". Each kline's
    own close time (field 6, a number or a string of one) must be its open time (field 0) + the
    interval - 1 ms: ccxt's unified candles drop it, and a kline of another interval (a 4h one
    answered for 1h, still forming when a 1h one would be closed) would pass for one of the
    interval asked for. A kline without a close time cannot be checked and is refused."""
    import ccxt

    if not isinstance(client, ccxt.binance):
        return  # other exchanges' raw shapes vary: their values are checked in _check_page
    if not isinstance(raw, list) or not all(isinstance(r, list) and len(r) >= 7 for r in raw):
        raise InfrastructureError(
            f"{where}: {symbol} {interval} candles: unexpected answer (not a list of kline "
            f"arrays with their close times: {_clip(repr(raw))[:80]})"
        )
    times = _kline_times(raw, where, symbol, interval)
    # Binance's own history has single klines closing early (BTCUSDT 1h in 2018,
    # binance-public-data#77: close time 14,838 ms after the open): refusing one would stop
    # every update there for good. A kline running longer than the interval (another interval,
    # maybe still forming), or closing before it opens, is refused wherever it is; early ones
    # only where they are most of the page (another, shorter interval).
    longer = [(o, c) for o, c in times if c > o + step_ms - 1 or c < o]
    shorter = [(o, c) for o, c in times if o <= c < o + step_ms - 1]
    if longer or 2 * len(shorter) > len(times):
        opened, closes = longer[0] if longer else shorter[0]
        length = closes - opened + 1
        what = (f"a {format_interval(pd.Timedelta(length, 'ms'))} candle" if length > 0
                else "not a candle")
        raise InfrastructureError(
            f"{where}: {symbol} {interval} candles: unexpected answer (the candle at "
            f"{_iso(opened)} closes at {_iso(closes + 1)}: {what}, not {interval}; the "
            "exchange answered another interval)"
        )


def _kline_times(raw: list[list[Any]], where: str, symbol: str,
                 interval: str) -> list[tuple[int, int]]:
    """Each Binance kline's open time (field 0) and close time (field 6), as ints; a time that
    is not a whole number of ms is an InfrastructureError."""
    times = []
    for n, row in enumerate(raw):
        opened, closes = _kline_time(row[0]), _kline_time(row[6])
        if opened is None or closes is None:
            raise InfrastructureError(
                f"{where}: {symbol} {interval} candles: unexpected answer (kline {n + 1}'s open "
                f"or close time is not a whole number of ms: {_clip(repr(row[:7]))[:120]})"
            )
        if not _MS_MIN <= opened <= _MS_MAX:  # before the interval check, which it would fool
            raise InfrastructureError(
                f"{where}: {symbol} {interval} candles: unexpected answer (kline {n + 1}'s open "
                f"time {opened} is not ms since the epoch: seconds or microseconds?)"
            )
        times.append((opened, closes))
    return times


def _kline_time(value: Any) -> int | None:
    """A Binance kline's time (ms) as an int: a JSON integer, an integral float or a string
    of digits; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value == int(value) else None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


def _check_page(page: Any, where: str, symbol: str, interval: str,
                step_ms: int) -> list[list[float]]:
    """ccxt's unified candles ``[ms, open, high, low, close, volume]``, checked: a list of
    rows of six finite numbers, whole ms, strictly ascending, positive prices with ``low <=
    open, close <= high``, volume >= 0, none closer than the interval (``step_ms``) to the one
    before it and, for :data:`_REGULAR_GAPS` candles or more, not all the same multiple (> 1)
    of the interval apart (candles of a longer interval; gaps the exchange has are not that
    regular). Anything else is an
    InfrastructureError."""

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
        if stamp != int(stamp) or not _MS_MIN <= stamp <= _MS_MAX:
            raise bad(f"candle {n + 1}: time {stamp!r} is not ms since the epoch")
        stamp = int(stamp)
        if previous is not None and stamp <= previous:
            raise bad(f"candle {n + 1} at {_iso(stamp)} is not after {_iso(previous)}")
        if min(o, h, low, c) <= 0 or low > h or not (low <= o <= h and low <= c <= h) or v < 0:
            raise bad(f"candle at {_iso(stamp)} has impossible values open {o!r} high {h!r} "
                      f"low {low!r} close {c!r} volume {v!r}")
        previous = stamp
        out.append([stamp, float(o), float(h), float(low), float(c), float(v)])
    spacing = {b[0] - a[0] for a, b in itertools.pairwise(out)}
    if spacing and min(spacing) < step_ms:  # two candles of the interval cannot be this close
        at = next(b for a, b in itertools.pairwise(out) if b[0] - a[0] == min(spacing))
        raise bad(f"the candle at {_iso(int(at[0]))} opens {_span(min(spacing))} after the one "
                  f"before it, not {interval}: candles of another interval")
    if len(out) >= _REGULAR_GAPS and len(spacing) == 1 and min(spacing) > step_ms:
        raise bad(f"every candle is {_span(min(spacing))} apart, not {interval}: candles of "
                  "another interval")
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

