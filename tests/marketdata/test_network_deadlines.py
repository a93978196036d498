"""What a slow, rate-limiting, lagging or wrong exchange and a slow or password-protected
webhook do to the candle update and the nightly's notification: real local HTTP servers on
127.0.0.1 (the Binance of ``tests/marketdata/binance_stub.py``, answering from the bundled real
candles, with faults added here: answers dripped one byte at a time, HTTP 429/418 with
``Retry-After``, klines of another interval, a clock days behind), no mocks.

Every time asserted is a generous bound (a deadline of 1.5 s must end well under 15 s; a
``Retry-After: 1`` must be waited at least 0.9 s), so that a loaded machine passes them."""

from __future__ import annotations

import base64
import http.server
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cryptosweep.core.errors import InfrastructureError
from cryptosweep.marketdata.exchange import fetch_closed_candles
from cryptosweep.marketdata.store import UpdateSummary, update_candles
from cryptosweep.nightly import notifications
from cryptosweep.trading.data import load_ohlcv
from tests.marketdata.binance_stub import (
    HOUR_MS,
    BinanceStub,
    QuietServer,
    _decimals,
    serving,
    write_store,
)

SECRET = "dr1p-p4ss-5ecret"
TOKEN = "XoXb-9f8e7d6c5b4a"
STORED = 200  # bars the store starts with
DRIP_S = 0.2  # one byte this often: well inside any per-read timeout used here
DRIP_FOR_S = 25.0  # how long a dripping answer goes on (then the server hangs up)


# --------------------------------------------------------------------------- servers


@dataclass
class Answer:
    """A scripted answer to one klines request: ``status`` and ``headers`` with ``body``
    (None: the stub's own candles), the whole of it dripped a byte every DRIP_S with ``drip``,
    the connection closed after it with ``hang_up``."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    drip: bool = False
    hang_up: bool = False  # the connection is closed once the body is sent (a cut answer)


@dataclass
class FaultyBinance(BinanceStub):
    """The stub Binance with scripted klines answers (``faults``, used in order, then the
    stub's own), klines of another length than asked (``wrong_ms``, each with its own close
    time, or ``claimed_ms`` as their close time), and every klines request's arrival time."""

    faults: list[Answer] = field(default_factory=list)
    wrong_ms: int | None = None
    claimed_ms: int | None = None
    arrived: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    #: open times whose kline closes 14,838 ms after it opens (as one of Binance's 2018 ones)
    odd_close: set[int] = field(default_factory=set)

    def klines(self, query: dict[str, str]) -> tuple[int, Any] | None:
        if self.wrong_ms is None:
            answer = super().klines(query)
            if answer is not None and self.odd_close:
                status, rows = answer
                answer = status, [[*r[:6], r[0] + 14_838 if r[0] in self.odd_close else r[6],
                                   *r[7:]] for r in rows]
            return answer
        start, out = int(query.get("startTime", 0)), []
        for row in self.rows:
            open_ms = int(row[0])
            if open_ms % self.wrong_ms or open_ms < start or open_ms > self.now_ms:
                continue  # a candle of wrong_ms opens on its grid; the forming one is sent
            close_ms = open_ms + (self.claimed_ms or self.wrong_ms) - 1
            out.append([open_ms, *(_decimals(v) for v in row[1:6]), close_ms, "0.00000000", 0,
                        "0.00000000", "0.00000000", "0"])
        return 200, out[: int(query.get("limit", 500))]


def faulty_handler(stub: FaultyBinance) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path, query = stub.record(self.path, self.headers.get("Authorization"))
            scripted = None
            if path == "/api/v3/klines":
                with stub.lock:
                    stub.arrived.append(time.monotonic())
                    scripted = stub.faults.pop(0) if stub.faults else None
            status, headers, body = 200, {}, b""
            if scripted is None or scripted.body is None:
                answer = stub.answer(path, query)
                assert answer is not None
                status, value = answer
                body = value if isinstance(value, bytes) else json.dumps(value).encode()
            if scripted is not None:
                status, headers = scripted.status, scripted.headers
                body = body if scripted.body is None else scripted.body
                self.close_connection = self.close_connection or scripted.hang_up
            send(self, status, headers, body, scripted is not None and scripted.drip,
                 stub.stop)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    return Handler


def send(handler: http.server.BaseHTTPRequestHandler, status: int, headers: dict[str, str],
         body: bytes, drip: bool, stop: threading.Event) -> None:
    """An HTTP/1.1 answer, whole or dripped a byte every DRIP_S for at most DRIP_FOR_S (then
    the connection is dropped: a server that never finishes)."""
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    head = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json;charset=UTF-8",
            f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    data = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    if not drip:
        handler.wfile.write(data)
        return
    handler.close_connection = True
    ends = time.monotonic() + DRIP_FOR_S
    for byte in data:
        if stop.is_set() or time.monotonic() > ends:
            break
        handler.wfile.write(bytes([byte]))
        time.sleep(DRIP_S)


class Hook:
    """A webhook on 127.0.0.1 recording each POST (path, body, Authorization) and answering
    ``status``, its answer dripped with ``drip``."""

    def __init__(self, status: int = 200, drip: bool = False) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status, self.drip, self.stop = status, drip, threading.Event()
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.requests.append({"path": self.path, "body": body,
                                      "auth": self.headers.get("Authorization")})
                send(self, hook.status, {}, b'{"ok": true}', hook.drip, hook.stop)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Hook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests go straight to 127.0.0.1, whatever proxy the environment names."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def binance(sample: tuple[str, list[list[str]]]) -> Iterator[FaultyBinance]:
    _, rows = sample
    with serving(FaultyBinance(rows=rows, now_ms=int(rows[-1][6]) + 1),
                 faulty_handler) as stub:
        yield stub


@pytest.fixture
def store(tmp_path: Path, sample: tuple[str, list[list[str]]]) -> Path:
    header, rows = sample
    return write_store(tmp_path / "candles.csv.gz", header,
                       [",".join(r) for r in rows[:STORED]])


def opens(stub: BinanceStub, i: int) -> int:
    return int(stub.rows[i][0])


def update(stub: BinanceStub, path: Path, **kwargs: Any) -> UpdateSummary:
    kwargs.setdefault("base_url", stub.base_url)
    kwargs.setdefault("retries", 0)
    kwargs.setdefault("timeout_s", 3.0)
    return update_candles(path, "binance", "BTC/USDT", "1h", **kwargs)


def fetch(stub: BinanceStub, since: int, **kwargs: Any) -> Any:
    kwargs.setdefault("base_url", stub.base_url)
    kwargs.setdefault("retries", 0)
    kwargs.setdefault("timeout_s", 3.0)
    return fetch_closed_candles("binance", "BTC/USDT", "1h", since, **kwargs)


def one_line(error: BaseException) -> str:
    text = str(error)
    assert text and "\n" not in text and "Traceback" not in text
    return text


# --------------------------------------------------------------------------- 1. deadlines


def test_a_dripping_exchange_times_out_as_a_whole_and_is_retried(binance, store) -> None:
    """A byte every 0.2 s keeps each read inside ccxt's 1.5 s timeout: only a deadline on the
    whole request ends it. Both tries time out; the file is untouched."""
    before = store.read_bytes()
    binance.now_ms = opens(binance, 260)
    binance.faults = [Answer(drip=True), Answer(drip=True)]
    started = time.monotonic()
    with pytest.raises(InfrastructureError) as caught:
        update(binance, store, timeout_s=1.5, retries=1, retry_wait_s=0.01)
    assert time.monotonic() - started < 15  # two deadlines of 1.5 s, not 2 x 20 s of drip
    text = one_line(caught.value)
    assert caught.value.exit_code == 6
    assert "timed out" in text and "after 2 tries" in text, text
    assert len(binance.klines_requests()) == 2
    assert store.read_bytes() == before


def test_the_deadline_lets_a_normal_answer_through(binance, sample) -> None:
    binance.now_ms = opens(binance, 120)
    got = fetch(binance, opens(binance, 0), timeout_s=5.0, limit=50)
    assert len(got.candles) == 120 and got.requests == 3


def test_a_dripping_webhook_times_out_as_a_whole_and_the_command_still_runs(tmp_path) -> None:
    summary = notifications.build_summary(None, 0)
    target = tmp_path / "got.json"
    with Hook(drip=True) as hook:
        url = f"http://127.0.0.1:{hook.port}/services/T000/{TOKEN}"
        started = time.monotonic()
        line = notifications.send_webhook(url, summary, timeout=1.5)
        assert time.monotonic() - started < 15  # a deadline of 1.5 s, not 20 s of drip
        assert line == "WARNING webhook: failed (timed out after 1.5 s)"
        started = time.monotonic()
        lines = notifications.notify(summary, url, f"cat > '{target}'", timeout=1.5)
        assert time.monotonic() - started < 15
    assert lines == ["WARNING webhook: failed (timed out after 1.5 s)", "INFO command: ok"]
    assert json.loads(target.read_text()) == summary
    assert len(hook.requests) == 2 and TOKEN in hook.requests[0]["path"]


# --------------------------------------------------------------------------- 2. 429 and 418

TOO_MANY = b'{"code":-1003,"msg":"Too many requests; current limit is 6000 request weight."}'
BANNED = b'{"code":-1003,"msg":"Way too many requests; IP banned until 1700000000000."}'


def test_retry_after_is_waited_before_the_retry(binance) -> None:
    binance.now_ms = opens(binance, 50)
    binance.faults = [Answer(429, {"Retry-After": "1"}, TOO_MANY)]
    got = fetch(binance, opens(binance, 0), retries=2, retry_wait_s=0.01)
    assert len(got.candles) == 50
    assert len(binance.arrived) == 2
    assert binance.arrived[1] - binance.arrived[0] >= 0.9  # not the 0.01 s back-off


def _in_an_hour() -> str:
    from email.utils import format_datetime

    return format_datetime(pd.Timestamp.now(tz="UTC").to_pydatetime()
                           + pd.Timedelta(hours=1).to_pytimedelta(), usegmt=True)


@pytest.mark.parametrize("retry_after", ["3600", "http-date"])
def test_a_long_retry_after_gives_up_at_once_and_says_how_long(binance, retry_after) -> None:
    value = _in_an_hour() if retry_after == "http-date" else retry_after
    binance.now_ms = opens(binance, 50)
    binance.faults = [Answer(429, {"Retry-After": value}, TOO_MANY) for _ in range(3)]
    started = time.monotonic()
    with pytest.raises(InfrastructureError) as caught:
        fetch(binance, opens(binance, 0), retries=2, retry_wait_s=0.5)
    assert time.monotonic() - started < 15
    text = one_line(caught.value)
    assert caught.value.exit_code == 6
    assert "HTTP 429" in text and "asked to wait" in text, text
    assert "3600 s" in text or "3599 s" in text, text
    assert len(binance.klines_requests()) == 1  # not retried


def test_an_ip_ban_is_never_retried(binance) -> None:
    binance.now_ms = opens(binance, 50)
    binance.faults = [Answer(418, {"Retry-After": "120"}, BANNED) for _ in range(3)]
    with pytest.raises(InfrastructureError) as caught:
        fetch(binance, opens(binance, 0), retries=2, retry_wait_s=0.01)
    text = one_line(caught.value)
    assert caught.value.exit_code == 6
    assert "HTTP 418" in text and "banned" in text and "120 s" in text, text
    assert len(binance.klines_requests()) == 1


def test_a_429_without_retry_after_backs_off_as_before(binance) -> None:
    binance.now_ms = opens(binance, 50)
    binance.faults = [Answer(429, {}, TOO_MANY)]
    got = fetch(binance, opens(binance, 0), retries=1, retry_wait_s=0.01)
    assert len(got.candles) == 50 and len(binance.klines_requests()) == 2


# --------------------------------------------------------------------------- 3. webhook login


def test_webhook_credentials_are_sent_as_basic_auth_and_never_shown() -> None:
    from urllib.parse import quote

    summary = notifications.build_summary(None, 0)
    password = f"p@ss/w#rd?{SECRET}"  # percent-encoded in the URL, as RFC 3986 has it
    with Hook() as hook:
        url = f"http://hookuser:{quote(password, safe='')}@127.0.0.1:{hook.port}/s/{TOKEN}"
        assert notifications.send_webhook(url, summary) == "INFO webhook: sent (HTTP 200)"
        sent = hook.requests[0]
        assert sent["path"] == f"/s/{TOKEN}"
        assert sent["auth"] == "Basic " + base64.b64encode(
            f"hookuser:{password}".encode()).decode()
        assert json.loads(sent["body"]) == summary
        hook.status = 500
        failed = notifications.send_webhook(url, summary)
    gone = notifications.send_webhook(url, summary, timeout=2)  # the server is gone
    assert failed == "WARNING webhook: failed (HTTP 500)"
    assert gone.startswith("WARNING webhook: failed (")
    for line in (failed, gone):
        assert SECRET not in line and "hookuser" not in line and TOKEN not in line, line


def test_an_at_sign_in_the_webhook_s_path_or_query_is_not_a_user() -> None:
    """`https://hooks/T0/secret?cc=ops@example.com` was POSTed to example.com with
    "hooks/T0/secret?cc=ops:" as a basic-auth user: the token went to another host."""
    summary = notifications.build_summary(None, 0)
    with Hook() as hook:
        for tail in (f"/@team/{TOKEN}", f"/s/{TOKEN}?cc=ops@127.0.0.2"):
            url = f"http://127.0.0.1:{hook.port}{tail}"
            assert notifications.send_webhook(url, summary) == "INFO webhook: sent (HTTP 200)"
            sent = hook.requests[-1]
            assert sent["path"] == tail and sent["auth"] is None, sent


@pytest.mark.parametrize("status", [500, 400])
def test_proxy_credentials_echoed_by_the_server_are_never_shown(binance, store, status, caplog,
                                                               capsys) -> None:
    """A proxy echoing the request's ``Authorization: Basic ...`` in its error body showed the
    base64 of the user and password; a percent-encoded password was shown decoded."""
    from urllib.parse import quote

    caplog.set_level(logging.DEBUG)
    password = f"p@ss/w\u00f6rd-{SECRET}"  # percent-encoded in the URL, decoded by requests
    token = base64.b64encode(f"proxyuser:{password}".encode("latin-1")).decode()
    binance.now_ms = opens(binance, 260)
    echo = f"proxy error, request headers: Authorization=Basic {token}; user proxyuser, "
    echo += f"password {password}"
    binance.faults = [Answer(status=status, body=echo.encode())]
    port = binance.base_url.rsplit(":", 1)[1]
    url = f"http://proxyuser:{quote(password, safe='')}@127.0.0.1:{port}"
    with pytest.raises(InfrastructureError) as caught:
        update(binance, store, base_url=url)
    assert binance.auth[-1] == f"Basic {token}"  # sent as basic auth, as requests does
    shown = one_line(caught.value) + caplog.text + "".join(capsys.readouterr())
    assert f"127.0.0.1:{port}" in str(caught.value)
    for secret in (token, password, SECRET, quote(password, safe=""), "proxyuser"):
        assert secret not in shown, secret


def test_the_path_of_a_base_url_is_never_shown(binance, store, caplog, capsys) -> None:
    """The value of the variable base_url_env names is never printed (docs/data_update.md):
    its path (a proxy's token) was, in the error's "binance (...)" and in ccxt's messages.
    (urllib3's own DEBUG log names each request's path: the package's loggers are checked.)"""
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="cryptosweep")
    port = binance.base_url.rsplit(":", 1)[1]
    with pytest.raises(InfrastructureError) as caught:  # the stub has no such path: HTTP 404
        update(binance, store, base_url=f"http://127.0.0.1:{port}/k/{TOKEN}")
    assert binance.requests and all(path.startswith(f"/k/{TOKEN}/")
                                    for path, _ in binance.requests)
    message = one_line(caught.value)
    assert f"binance (http://127.0.0.1:{port})" in message, message
    shown = message + caplog.text + "".join(capsys.readouterr())
    assert TOKEN not in shown and "/k/" not in shown


def test_control_characters_from_the_server_never_reach_the_terminal(binance, store,
                                                                     caplog) -> None:
    """An error body's terminal escapes (erase the line, hide text), carriage return and bidi
    override were printed as they came, on stderr and in the logs."""
    import unicodedata

    caplog.set_level(logging.WARNING)
    binance.now_ms = opens(binance, 260)
    body = "\x1b[2K\rcryptosweep: appended 24 BTC/USDT 1h \x1b[8m hidden \u202edetacilpmoc\x07"
    binance.faults = [Answer(status=500, body=body.encode()) for _ in range(2)]
    with pytest.raises(InfrastructureError) as caught:
        update(binance, store, retries=1, retry_wait_s=0.01)
    said = [one_line(caught.value), *(r.getMessage() for r in caplog.records)]
    assert any("retrying" in line for line in said), said
    for line in said:
        assert "\x1b" not in line and "\r" not in line
        assert not [c for c in line if unicodedata.category(c) in ("Cc", "Cf")], repr(line)
    assert "?[2K cryptosweep: appended" in said[0] and "hidden ?detacilpmoc?" in said[0]
    assert f"GET {binance.base_url}/api/v3/klines" in said[0]


def _cut_chunked(stub: BinanceStub, first: int, last: int) -> Answer:
    """A chunked answer of the klines ``first`` to ``last`` cut after its first chunk (half
    the page): the server hangs up (``requests``' ChunkedEncodingError, which ccxt wraps as an
    ExchangeError)."""
    data = json.dumps([_kline(stub, i) for i in range(first, last)]).encode()
    half = data[: len(data) // 2]
    body = f"{len(half):x}\r\n".encode() + half + b"\r\n"
    return Answer(headers={"Transfer-Encoding": "chunked"}, body=body, hang_up=True)


def test_a_cut_chunked_answer_is_a_network_fault_and_retried(binance, store) -> None:
    """It was "unexpected answer: ExchangeError", never retried."""
    binance.now_ms = opens(binance, 260)
    binance.faults = [_cut_chunked(binance, STORED - 1, 260)]
    summary = update(binance, store, retries=1, retry_wait_s=0.01)
    assert summary.bars_added == 60 and len(binance.arrived) == 2
    binance.now_ms = opens(binance, 300)
    binance.faults = [_cut_chunked(binance, 259, 300)]
    before = store.read_bytes()
    with pytest.raises(InfrastructureError) as caught:
        update(binance, store)
    text = one_line(caught.value)
    assert "failed: network error" in text and "unexpected answer" not in text, text
    assert caught.value.exit_code == 6 and store.read_bytes() == before


def test_a_page_of_more_rows_than_asked_for_is_refused(binance, store) -> None:
    before = store.read_bytes()
    binance.now_ms = opens(binance, 400)
    page = [_kline(binance, i) for i in range(STORED - 1, STORED + 150)]
    binance.faults = [Answer(body=json.dumps(page).encode())]
    with pytest.raises(InfrastructureError) as caught:
        update(binance, store, limit=50)
    text = one_line(caught.value)
    assert "151 rows to a request for at most 50" in text and caught.value.exit_code == 6, text
    assert store.read_bytes() == before


# --------------------------------------------------------------------------- 4. clocks apart


def _recent(sample: tuple[str, list[list[str]]], now_ms: int) -> list[list[str]]:
    """The bundled candles' values moved to hours ending ten days before ``now_ms`` (the
    first STORED of them) and going on past ``now_ms``."""
    _, rows = sample
    last = (now_ms - 10 * 24 * HOUR_MS) // HOUR_MS * HOUR_MS - HOUR_MS
    first = last - (STORED - 1) * HOUR_MS
    return [[str(first + i * HOUR_MS), *row[1:6], str(first + (i + 1) * HOUR_MS - 1)]
            for i, row in enumerate(rows[: STORED + 400])]


def test_an_exchange_clock_ten_days_behind_is_a_loud_warning(sample, tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    # Whatever level an earlier test's logging setup left on the package's logger.
    caplog.set_level(logging.WARNING, logger="cryptosweep")
    local = int(time.time() * 1000)
    rows = _recent(sample, local)
    header, _ = sample
    path = write_store(tmp_path / "c.csv", header, [",".join(r) for r in rows[:STORED]])
    behind = local - 10 * 24 * HOUR_MS
    with serving(FaultyBinance(rows=rows, now_ms=behind), faulty_handler) as stub:
        summary = update(stub, path)
        assert summary.bars_added == 0
        text = str(summary)
        exchange_time = pd.Timestamp(behind, unit="ms", tz="UTC")
        assert "WARNING" in text and "behind" in text and "10.0 days" in text, text
        assert exchange_time.isoformat() in text, text
        assert any(str(pd.Timestamp(local + s, unit="ms", tz="UTC").date()) in text
                   for s in (0, 60_000))  # this machine's time, whatever midnight does
        assert summary.to_dict()["warnings"] == list(summary.warnings) != []
        logged = [r for r in caplog.records if r.levelno >= logging.WARNING
                  and "behind" in r.getMessage()]
        assert logged and exchange_time.isoformat() in logged[0].getMessage()
        # The clocks agreeing: the ten days come, and no warning.
        caplog.clear()
        stub.now_ms = int(time.time() * 1000)
        summary = update(stub, path)
    assert 235 <= summary.bars_added <= 250 and summary.warnings == ()
    assert "WARNING" not in str(summary)
    assert not [r for r in caplog.records if "behind" in r.getMessage()]


# --------------------------------------------------------------------------- 5. wrong interval


def test_an_answer_of_another_interval_is_refused_even_with_allow_gaps(binance, store) -> None:
    before = store.read_bytes()
    binance.now_ms = opens(binance, 261) + 30 * 60_000  # the 4h candle opened at bar 260 forms
    binance.wrong_ms = 4 * HOUR_MS
    with pytest.raises(InfrastructureError) as caught:
        update(binance, store, allow_gaps=True)
    text = one_line(caught.value)
    assert caught.value.exit_code == 6 and "4h" in text and "1h" in text, text
    assert store.read_bytes() == before


def _kline(stub: BinanceStub, i: int, length_ms: int = HOUR_MS, fields: int = 12,
           text_times: bool = False) -> list[Any]:
    """Binance's kline of the stub's bar ``i``, closing ``length_ms`` after it opens, cut to
    ``fields`` fields, its times as JSON strings with ``text_times``."""
    row = stub.rows[i]
    opened, closes = int(row[0]), int(row[0]) + length_ms - 1
    kline = [str(opened) if text_times else opened, *(_decimals(v) for v in row[1:6]),
             str(closes) if text_times else closes, "0.00000000", 0, "0.00000000",
             "0.00000000", "0"]
    return kline[:fields]


@pytest.mark.parametrize("shape", ["times as text", "no close time", "one 4h kline among 1h"])
def test_every_kline_must_be_of_the_interval_even_with_allow_gaps(binance, store, shape) -> None:
    """A 4h kline still forming, answered among 1h ones: its close time as a JSON string or
    left out, or one such kline among many 1h ones, was stored as a closed 1h bar (allow_gaps
    took its missing hours for the exchange's own gaps)."""
    before = store.read_bytes()
    binance.now_ms = opens(binance, STORED + 40) + 30 * 60_000
    four_h = 4 * HOUR_MS
    if shape == "one 4h kline among 1h":
        page = [_kline(binance, i) for i in range(STORED - 1, STORED + 10)]
        page += [_kline(binance, STORED + 10, four_h)]
        page += [_kline(binance, i) for i in range(STORED + 14, STORED + 40)]
    else:  # the stored last bar, then a 4h kline forming at now (as 1h, closed)
        cut, text = (6, False) if shape == "no close time" else (12, True)
        page = [_kline(binance, i, length, cut, text)
                for i, length in ((STORED - 1, HOUR_MS), (STORED + 39, four_h))]
    binance.faults = [Answer(body=json.dumps(page).encode())]
    with pytest.raises(InfrastructureError) as caught:
        update(binance, store, allow_gaps=True)
    text = one_line(caught.value)
    assert caught.value.exit_code == 6 and "1h" in text, text
    assert ("close time" in text) if shape == "no close time" else ("4h candle" in text), text
    assert store.read_bytes() == before


@pytest.mark.parametrize("scale", [1 / 1000, 1000])
def test_klines_timed_in_seconds_or_microseconds_are_named_so(binance, store, scale) -> None:
    """Times in seconds (or µs) were refused as "a 3.6s candle, not 1h; the exchange answered
    another interval", at 1970-01-19: the wrong interval, not the wrong unit."""
    before = store.read_bytes()
    binance.now_ms = opens(binance, STORED + 5)
    page = [[int(k[0] * scale), *k[1:6], int((k[6] + 1) * scale) - 1, *k[7:]]
            for k in (_kline(binance, i) for i in range(STORED - 1, STORED + 5))]
    binance.faults = [Answer(body=json.dumps(page).encode())]
    with pytest.raises(InfrastructureError) as caught:
        update(binance, store)
    text = one_line(caught.value)
    assert caught.value.exit_code == 6 and "not ms since the epoch" in text, text
    assert "interval" not in text.split("candles:")[1], text
    assert store.read_bytes() == before


def test_klines_with_their_times_as_text_are_checked_and_taken(binance, store) -> None:
    binance.now_ms = opens(binance, STORED + 5)
    page = [_kline(binance, i, text_times=True) for i in range(STORED - 1, STORED + 5)]
    binance.faults = [Answer(body=json.dumps(page).encode())]
    assert update(binance, store).bars_added == 5


def test_one_odd_kline_in_binance_s_history_does_not_stop_the_updates(binance, store) -> None:
    """Binance's own history has single klines whose close time is off (BTCUSDT 1h, 2018):
    refusing them stopped every update at that page, for good."""
    binance.now_ms = opens(binance, 260)
    binance.odd_close = {opens(binance, STORED + 10)}
    summary = update(binance, store)
    assert summary.bars_added == 60


def test_klines_spaced_wider_than_the_interval_are_refused(binance, store) -> None:
    """Close times that claim 1h on candles 4 hours apart: the spacing gives them away."""
    before = store.read_bytes()
    binance.now_ms = opens(binance, 300)
    binance.wrong_ms, binance.claimed_ms = 4 * HOUR_MS, HOUR_MS
    with pytest.raises(InfrastructureError) as caught:
        update(binance, store, allow_gaps=True)
    text = one_line(caught.value)
    assert caught.value.exit_code == 6 and "apart" in text, text
    assert store.read_bytes() == before


def test_klines_closer_than_the_interval_are_refused_as_the_exchange_s(binance, store) -> None:
    """Minute candles claiming 1h close times (on exchanges other than Binance there is no
    close time at all): refused by the store as off its grid, exit 2, which stopped the night
    as "invalid config or data" instead of an exchange answering another interval (exit 6, a
    warning, the sweep on the stored candles)."""
    before = store.read_bytes()
    binance.now_ms = opens(binance, STORED + 2)
    first = _kline(binance, STORED - 1)
    page = [[first[0] + m * 60_000, *_kline(binance, STORED - 1 + m)[1:6],
             first[0] + m * 60_000 + HOUR_MS - 1, *first[7:]] for m in range(30)]
    binance.faults = [Answer(body=json.dumps(page).encode())]
    with pytest.raises(InfrastructureError) as caught:
        update(binance, store, allow_gaps=True)
    text = one_line(caught.value)
    assert caught.value.exit_code == 6 and "opens 1 min after the one before it, not 1h" in text
    assert store.read_bytes() == before


def test_gaps_the_exchange_has_are_still_allowed(binance, store) -> None:
    binance.now_ms = opens(binance, 260)
    binance.missing = {opens(binance, i) for i in (STORED, STORED + 5, STORED + 6)}
    summary = update(binance, store, allow_gaps=True)
    assert summary.bars_added == 57
    assert len(load_ohlcv(store)) == STORED + 57


def test_a_given_now_later_than_this_machines_clock_is_not_trusted(sample, tmp_path) -> None:
    """A candle closing after this machine's clock is not closed, whatever ``now`` says."""
    from cryptosweep.core.errors import DataError
    from cryptosweep.marketdata.store import append_candles

    local = int(time.time() * 1000)
    rows = _recent(sample, local)
    future = local + 5 * 24 * HOUR_MS
    with serving(FaultyBinance(rows=rows, now_ms=future), faulty_handler) as stub:
        got = fetch(stub, int(rows[STORED][0]), now=future)
    assert got.now <= pd.Timestamp.now(tz="UTC")
    assert (got.candles.index + pd.Timedelta(hours=1) <= got.now).all()
    header, _ = sample
    path = write_store(tmp_path / "c.csv", header, [",".join(r) for r in rows[:STORED]])
    later = got.candles.index[-1] + pd.Timedelta(hours=1)
    frame = pd.DataFrame(
        [[float(v) for v in r[1:6]] for r in rows[STORED:STORED + 300]],
        index=pd.DatetimeIndex([pd.Timestamp(int(r[0]), unit="ms", tz="UTC")
                                for r in rows[STORED:STORED + 300]], name="open_time"),
        columns=["open", "high", "low", "close", "volume"])
    assert frame.index[-1] > later  # the last ones close after this machine's clock
    with pytest.raises(DataError, match="after now"):
        append_candles(path, frame, "1h", now=pd.Timestamp(future, unit="ms", tz="UTC"))


def test_an_update_names_the_file_and_says_each_thing_once(binance, tmp_path, sample,
                                                           caplog) -> None:
    """The read-back of the temporary file logged the stored file's gaps and duplicate rows
    again, naming the temporary file (``.candles.csv.<pid>-….tmp.csv``); a gap appended across
    with allow_gaps was said only there."""
    header, rows = sample
    lines = [",".join(r) for r in rows[:STORED]]
    lines.insert(50, lines[50])  # a duplicate row in the stored file
    del lines[100]  # and a gap
    store = write_store(tmp_path / "candles.csv", header, lines)
    binance.now_ms = opens(binance, 260)
    binance.missing = {opens(binance, STORED + 5)}
    with caplog.at_level(logging.INFO):
        update(binance, store, allow_gaps=True)
    said = [r.getMessage() for r in caplog.records]
    assert not [m for m in said if ".tmp" in m], said
    assert sum("duplicate row" in m for m in said) == 1, said
    assert sum("appended across 1 gap(s) the exchange has" in m for m in said) == 1, said
    assert next(m for m in said if "appended across" in m).startswith(f"{store}: "), said
