"""Fixtures of the market-data tests: a running local Binance (:mod:`binance_stub`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.marketdata.binance_stub import BinanceStub, sample_lines, serving


@pytest.fixture(scope="session")
def sample() -> tuple[str, list[list[str]]]:
    header, lines = sample_lines()
    return header, [line.split(",") for line in lines]


@pytest.fixture
def binance(sample: tuple[str, list[list[str]]]) -> Iterator[BinanceStub]:
    """A running local Binance holding the whole bundled sample; its clock is set by tests
    (default: just after the sample's last candle closed)."""
    _, rows = sample
    with serving(BinanceStub(rows=rows, now_ms=int(rows[-1][6]) + 1)) as stub:
        yield stub


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests go straight to 127.0.0.1, whatever proxy the environment names."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


