"""A local Binance for the tests of ``cryptosweep.marketdata``: a real HTTP server on
127.0.0.1 (a thread, port 0) that speaks the documented spot REST formats ccxt reads,
answering from the bundled REAL candles.

Endpoints (https://developers.binance.com/docs/binance-spot-api-docs/rest-api):

* ``GET /api/v3/exchangeInfo``: the fields of the real schema ccxt's ``binance.parse_market``
  reads, for BTCUSDT (and ETHBTC) only.
* ``GET /api/v3/time``: ``{"serverTime": <the stub's now, ms>}``.
* ``GET /api/v3/klines?symbol&interval&startTime&endTime&limit``: the 12-field kline arrays
  (numbers as strings with 8 decimals), from ``startTime`` on, ``limit`` rows (default 500, at
  most 1000), up to the candle in progress at the stub's ``now`` included, as Binance does; an
  unknown symbol or interval is Binance's HTTP 400 error JSON.

Anything else is a 404 and is recorded in ``unexpected`` (tests assert it stays empty). Faults
are switched on per test: ``fail_after`` (klines requests answered before an outage),
``fail_kind`` (``"close"``: the connection is dropped without an answer; ``"500"``), ``fail_times``
(outage answers before it is back), ``garbage`` (an endpoint answering ``garbage_body``, broken
JSON by default), ``delay_s`` (slow klines answers), ``shift_ms`` (times moved off the hour),
``edits`` (open time -> changed values), ``missing`` (open times without a candle).
"""

from __future__ import annotations

import email.utils
import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from cryptosweep.trading.data import sample_data_path

HOUR_MS = 3_600_000
#: Binance's kline intervals (the server answers data for 1h only, as the bundle holds).
BINANCE_INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
                     "1d", "3d", "1w", "1M")

S = TypeVar("S", bound="BinanceStub")


def sample_lines() -> tuple[str, list[str]]:
    """The bundled CSV's header and data lines (text, without newlines)."""
    with gzip.open(sample_data_path(), "rt", encoding="utf-8", newline="") as handle:
        lines = handle.read().splitlines()
    return lines[0], lines[1:]


def _decimals(text: str) -> str:
    return f"{Decimal(text):.8f}"


def _symbol_info(symbol: str, base: str, quote: str) -> dict[str, Any]:
    return {
        "symbol": symbol, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8,
        "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": True,
        "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01000000",
             "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
             "stepSize": "0.00001000"},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100.00000000",
             "stepSize": "0.00000000"},
        ],
        "permissions": [], "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }  # fmt: skip


@dataclass
class BinanceStub:
    """The server's state: its candles, its clock, its faults, what it was asked."""

    rows: list[list[str]]  # open_ms, open, high, low, close, volume, close_ms (CSV text)
    now_ms: int
    base_url: str = ""
    fail_after: int | None = None
    fail_kind: str = "500"
    fail_times: int | None = None  # outage answers before the server is back (None: forever)
    garbage: str | None = None
    garbage_body: bytes = b'{"symbols": [{"symbol": "BTCUSDT", "status": '
    delay_s: float = 0.0  # klines answers wait this long (a slow exchange)
    missing: set[int] = field(default_factory=set)  # open times the exchange has no candle for
    shift_ms: int = 0
    edits: dict[int, dict[str, str]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, target: str, auth: str | None) -> tuple[str, dict[str, str]]:
        """Note a request (its path and query, its Authorization); its path and query."""
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self.lock:
            self.requests.append((parts.path, query))
            self.auth.append(auth)
        return parts.path, query

    def klines_requests(self) -> list[dict[str, str]]:
        return [q for path, q in self.requests if path == "/api/v3/klines"]

    # ---------------------------------------------------------------- answers

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, Any] | None:
        """(status, JSON value or raw bytes), or None to drop the connection."""
        if self.garbage == path:
            return 200, self.garbage_body
        if path == "/api/v3/time":
            return 200, {"serverTime": self.now_ms}
        if path == "/api/v3/exchangeInfo":
            return 200, {
                "timezone": "UTC", "serverTime": self.now_ms,
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                     "intervalNum": 1, "limit": 6000},
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                     "limit": 100},
                ],
                "exchangeFilters": [],
                "symbols": [_symbol_info("BTCUSDT", "BTC", "USDT"),
                            _symbol_info("ETHBTC", "ETH", "BTC")],
            }  # fmt: skip
        if path == "/api/v3/klines":
            return self.klines(query)
        self.unexpected.append(path)
        return 404, {"code": -1000, "msg": f"unknown path {path}"}

    def klines(self, query: dict[str, str]) -> tuple[int, Any] | None:
        with self.lock:
            served = len(self.klines_requests()) - 1  # this request is recorded already
        if self.fail_after is not None and served >= self.fail_after:
            outage = served - self.fail_after
            if self.fail_times is None or outage < self.fail_times:
                return None if self.fail_kind == "close" else (500, b"Internal Server Error")
        if self.delay_s:
            time.sleep(self.delay_s)
        if query.get("symbol") not in ("BTCUSDT", "ETHBTC"):
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        if query.get("interval") not in BINANCE_INTERVALS:
            return 400, {"code": -1120, "msg": "Invalid interval."}
        if query.get("interval") != "1h" or query["symbol"] != "BTCUSDT":
            return 200, []
        limit = min(int(query.get("limit", 500)), 1000)
        start = int(query.get("startTime", 0))
        end = int(query.get("endTime", 2**62))
        out = []
        for row in self.rows:
            open_ms = int(row[0]) + self.shift_ms
            if int(row[0]) in self.missing:
                continue
            if open_ms < start or open_ms > end or open_ms > self.now_ms:
                continue
            values = dict(zip(("open", "high", "low", "close", "volume"), row[1:6], strict=True))
            values.update(self.edits.get(int(row[0]), {}))
            out.append([
                open_ms, *(_decimals(values[k]) for k in ("open", "high", "low", "close",
                                                          "volume")),
                int(row[6]) + self.shift_ms, "0.00000000", 0, "0.00000000", "0.00000000", "0",
            ])
            if len(out) == limit:
                break
        return 200, out


class QuietServer(ThreadingHTTPServer):
    """A threading HTTP server that does not print the tracebacks of connections the client
    dropped (a timed-out request) or the stub cut (an outage)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def handler(stub: BinanceStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path, query = stub.record(self.path, self.headers.get("Authorization"))
            answer = stub.answer(path, query)
            if answer is None:
                self.close_connection = True
                self.connection.shutdown(2)  # socket.SHUT_RDWR: no status line at all
                return
            status, body = answer
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def date_time_string(self, timestamp: float | None = None) -> str:
            """The ``Date`` header of every answer: the stub's clock, as a server's."""
            return email.utils.formatdate(stub.now_ms / 1000, usegmt=True)

    return Handler


@contextmanager
def serving(stub: S, make_handler: Callable[[S], type] | None = None) -> Iterator[S]:
    """Serve ``stub`` on a free loopback port (its ``base_url`` set) until the block ends,
    with ``make_handler(stub)`` (default :func:`handler`); a stub with a ``stop`` event (one
    that drips its answers) has it set first, so that no answer outlives the block."""
    server = QuietServer(("127.0.0.1", 0), (make_handler or handler)(stub))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    stub.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield stub
    finally:
        stop = getattr(stub, "stop", None)
        if stop is not None:
            stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def write_store(path: Path, header: str, lines: list[str]) -> Path:
    """A store file holding ``header`` and ``lines`` (gzip-compressed for ``.gz``)."""
    text = "\n".join([header, *lines]) + "\n"
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode(), mtime=0))
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path
