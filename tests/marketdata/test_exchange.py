"""cryptosweep.marketdata.exchange against a real local HTTP server speaking Binance's REST
formats (binance_stub), answering from the bundled real candles."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from cryptosweep.core.errors import ConfigError, InfrastructureError, UserError
from cryptosweep.marketdata.exchange import fetch_closed_candles, redact_url
from cryptosweep.trading.data import load_ohlcv, sample_data_path
from tests.marketdata.binance_stub import HOUR_MS, BinanceStub

SECRET = "s3cr3t-T0KEN-9f2"


@pytest.fixture(scope="module")
def bundled() -> pd.DataFrame:
    return load_ohlcv(sample_data_path())


def opens(stub: BinanceStub, i: int) -> int:
    return int(stub.rows[i][0])


def fetch(stub: BinanceStub, since: int, **kwargs) -> object:
    kwargs.setdefault("base_url", stub.base_url)
    kwargs.setdefault("retries", 0)
    kwargs.setdefault("timeout_s", 3.0)
    return fetch_closed_candles("binance", "BTC/USDT", "1h", since, **kwargs)


def assert_one_line(error: BaseException) -> None:
    text = str(error)
    assert text and "\n" not in text and "Traceback" not in text


def test_pages_through_closed_candles_equal_to_the_source(binance, bundled) -> None:
    binance.now_ms = opens(binance, 250) + 1  # bar 250 is forming
    got = fetch(binance, opens(binance, 10), limit=100)
    assert len(got.candles) == 240  # bars 10..249
    pd.testing.assert_frame_equal(got.candles, bundled.iloc[10:250], check_freq=False)
    klines = binance.klines_requests()
    assert [int(q["startTime"]) for q in klines] == [opens(binance, i) for i in (10, 110, 210)]
    assert all(q["symbol"] == "BTCUSDT" and q["interval"] == "1h" and q["limit"] == "100"
               for q in klines)
    assert got.requests == 3 and got.complete
    assert binance.unexpected == []
    assert {path for path, _ in binance.requests} == {
        "/api/v3/exchangeInfo", "/api/v3/time", "/api/v3/klines"}


def test_a_long_range_says_how_far_it_got(binance, caplog) -> None:
    """A file months behind pages for a minute or more (100 requests of Binance's 1000): it
    said nothing until the end, as a hang would."""
    binance.now_ms = opens(binance, 250) + 1
    with caplog.at_level(logging.INFO, logger="cryptosweep.marketdata.exchange"):
        got = fetch(binance, opens(binance, 0), limit=10)
    assert got.requests == 25 and len(got.candles) == 250
    said = [r.getMessage() for r in caplog.records if "fetched so far" in r.getMessage()]
    assert len(said) == 2, said
    assert said[0].endswith(f"BTC/USDT 1h: 100 closed candle(s) fetched so far, up to "
                            f"{got.candles.index[99].isoformat()} (10 requests; now "
                            f"{got.now.isoformat()})"), said


def test_the_unclosed_last_candle_is_dropped(binance, bundled) -> None:
    now = opens(binance, 60) + 20 * 60_000  # 20 minutes into bar 60
    got = fetch(binance, opens(binance, 50), now=now)
    assert got.candles.index[-1] == bundled.index[59]
    assert got.dropped == (bundled.index[60],)
    dropped_close = got.dropped[0] + pd.Timedelta(hours=1)
    assert dropped_close > got.now == pd.Timestamp(now, unit="ms", tz="UTC")
    assert (got.candles.index + pd.Timedelta(hours=1) <= got.now).all()


def test_now_defaults_to_the_earlier_clock(binance) -> None:
    binance.now_ms = opens(binance, 30) + HOUR_MS // 2  # the stub lives in 2021
    got = fetch(binance, opens(binance, 20))
    assert got.now == pd.Timestamp(binance.now_ms, unit="ms", tz="UTC")
    assert len(got.candles) == 10 and len(got.dropped) == 1
    assert "/api/v3/time" in {path for path, _ in binance.requests}


def test_without_a_time_endpoint_the_http_date_is_the_exchange_s_clock(binance, bundled,
                                                                       monkeypatch) -> None:
    """An exchange without a time endpoint (30 of ccxt's with candles: Bitstamp, Bitfinex,
    Gemini...) and this machine's clock ahead of it, if only by a minute at the hour a cron
    job starts: the candle still forming at the exchange closed by this machine's clock, and
    was stored with its values so far (the next update then refused the file for good)."""
    from cryptosweep.marketdata import exchange

    opened = exchange.open_exchange

    def without_fetch_time(*args, **kwargs):
        client = opened(*args, **kwargs)
        client.has = {**client.has, "fetchTime": False}
        return client

    monkeypatch.setattr(exchange, "open_exchange", without_fetch_time)
    binance.now_ms = opens(binance, 30) + HOUR_MS // 2  # years behind this machine's clock
    got = fetch(binance, opens(binance, 20))
    assert len(got.candles) == 10 and got.dropped == (bundled.index[30],)
    assert got.now == pd.Timestamp(binance.now_ms // 1000 * 1000, unit="ms", tz="UTC")
    assert got.notes == ("now: the exchange's clock (its HTTP Date) (behind this machine's)",)
    assert any("behind" in w for w in got.warnings)
    assert "/api/v3/time" not in {path for path, _ in binance.requests}


def test_max_bars_stops_early_and_says_so(binance) -> None:
    binance.now_ms = opens(binance, 100) + 1
    got = fetch(binance, opens(binance, 0), limit=30, max_bars=45)
    assert len(got.candles) == 45 and not got.complete
    assert got.requests == 2


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"symbol": "DOGE/EUR"}, "'DOGE/EUR'"),
    ({"interval": "7m"}, "'7m'"),
    ({"interval": "1M"}, "'1M'"),
    ({"exchange": "notanexchange"}, "'notanexchange'"),
])  # fmt: skip
def test_what_the_exchange_does_not_know_is_a_user_error(binance, kwargs, named) -> None:
    args = {"exchange": "binance", "symbol": "BTC/USDT", "interval": "1h", **kwargs}
    with pytest.raises(UserError) as caught:
        fetch_closed_candles(since=opens(binance, 0), base_url=binance.base_url, retries=0,
                             **args)
    assert isinstance(caught.value, ConfigError) and caught.value.exit_code == 2
    assert named in str(caught.value)
    assert_one_line(caught.value)
    assert binance.klines_requests() == []


def test_a_market_id_gets_a_hint(binance) -> None:
    with pytest.raises(ConfigError, match="use the unified symbol 'BTC/USDT'"):
        fetch_closed_candles("binance", "BTCUSDT", "1h", opens(binance, 0),
                             base_url=binance.base_url)


@pytest.mark.parametrize("kind", ["500", "close"])
def test_an_outage_after_the_first_page_is_an_infrastructure_error(binance, kind) -> None:
    binance.now_ms = opens(binance, 300)
    binance.fail_after, binance.fail_kind = 1, kind
    with pytest.raises(InfrastructureError) as caught:
        fetch(binance, opens(binance, 0), limit=100, retries=1, retry_wait_s=0.01)
    assert caught.value.exit_code == 6
    assert "failed after 2 tries" in str(caught.value)
    assert_one_line(caught.value)
    assert len(binance.klines_requests()) == 3  # one page, one failure, one retry


def test_a_transient_failure_is_retried(binance, bundled) -> None:
    binance.now_ms = opens(binance, 150)
    binance.fail_after, binance.fail_times = 1, 1
    got = fetch(binance, opens(binance, 0), limit=100, retries=2, retry_wait_s=0.01)
    pd.testing.assert_frame_equal(got.candles, bundled.iloc[:150], check_freq=False)
    assert len(binance.klines_requests()) == 3


def test_a_timeout_is_an_infrastructure_error(binance) -> None:
    binance.delay_s = 1.0
    with pytest.raises(InfrastructureError, match="timed out") as caught:
        fetch(binance, opens(binance, 0), timeout_s=0.2)
    assert_one_line(caught.value)


@pytest.mark.parametrize(("path", "body"), [
    ("/api/v3/klines", b'[[1633046400000, "43820.01", '),  # cut off
    ("/api/v3/klines", b"<html>502 Bad Gateway</html>"),
    ("/api/v3/klines", b'{"candles": "soon"}'),  # JSON, not klines
    ("/api/v3/klines", b'[[1633046400000, "1", "2", "3", "0.5", "1", 1633049999999]]'),  # h < l
    ("/api/v3/klines", b'[[1633046400000, null, null, null, null, null, 0]]'),
    ("/api/v3/exchangeInfo", b'{"symbols": [{"symbol": "BTCUSDT", "status": '),
    ("/api/v3/exchangeInfo", b'{"symbols": "none"}'),
])  # fmt: skip
def test_garbage_answers_are_an_infrastructure_error(binance, path, body) -> None:
    binance.garbage, binance.garbage_body = path, body
    with pytest.raises(InfrastructureError) as caught:
        fetch(binance, opens(binance, 0))
    assert caught.value.exit_code == 6
    assert_one_line(caught.value)


def test_credentials_in_the_base_url_are_sent_but_never_shown(binance, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    # Whatever level an earlier test's logging setup left on the package's logger: debug on.
    caplog.set_level(logging.DEBUG, logger="cryptosweep")
    port = binance.base_url.rsplit(":", 1)[1]
    url = f"http://hookuser:{SECRET}@127.0.0.1:{port}"
    binance.now_ms = opens(binance, 40)
    got = fetch(binance, opens(binance, 0), base_url=url)
    assert len(got.candles) == 40
    assert binance.auth and all(a and a.startswith("Basic ") for a in binance.auth)
    binance.fail_after = 0
    with pytest.raises(InfrastructureError) as caught:
        fetch(binance, opens(binance, 0), base_url=url, retries=1, retry_wait_s=0.01)
    shown = str(caught.value) + caplog.text + "".join(capsys.readouterr())
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "ccxt" in {r.name.split(".")[-1] for r in caplog.records}  # its debug log was on
    assert SECRET not in shown and "hookuser" not in shown


def test_redact_url() -> None:
    assert redact_url(f"https://u:{SECRET}@h.example:8443/a/b?key={SECRET}#f") == (
        "https://h.example:8443/a/b")
