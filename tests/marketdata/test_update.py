"""cryptosweep.marketdata.store.update_candles: a local candle file (the first part of the
bundled real candles) kept current from a real local HTTP server speaking Binance's REST
formats (binance_stub), which releases the later bundled candles."""

from __future__ import annotations

import errno
import fcntl
import gzip
import logging
import os
from pathlib import Path

import pandas as pd
import pytest

from cryptosweep.core.errors import ConfigError, DataError, InfrastructureError
from cryptosweep.marketdata.store import UpdateSummary, append_candles, update_candles
from cryptosweep.trading.data import load_ohlcv, sample_data_path
from tests.marketdata.binance_stub import HOUR_MS, BinanceStub, write_store

SECRET = "hook-p4ss-77ab"
STORED = 200  # bars the store starts with


@pytest.fixture(scope="module")
def bundled() -> pd.DataFrame:
    return load_ohlcv(sample_data_path())


@pytest.fixture(params=["candles.csv", "candles.csv.gz"])
def store(request, tmp_path: Path, sample) -> Path:
    """The first STORED bundled bars, in the bundled format, plain and gzip."""
    header, rows = sample
    return write_store(tmp_path / request.param, header, [",".join(r) for r in rows[:STORED]])


def opens(stub: BinanceStub, i: int) -> int:
    return int(stub.rows[i][0])


def update(stub: BinanceStub, path: Path, **kwargs) -> UpdateSummary:
    kwargs.setdefault("base_url", stub.base_url)
    kwargs.setdefault("retries", 0)
    kwargs.setdefault("timeout_s", 3.0)
    kwargs.setdefault("exchange", "binance")
    kwargs.setdefault("symbol", "BTC/USDT")
    kwargs.setdefault("interval", "1h")
    return update_candles(path, **kwargs)


def text_of(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.name.endswith(".gz") else data).decode()


def left_alone(path: Path, before: bytes, stat: os.stat_result) -> None:
    """The file is byte-identical, not rewritten, and no temporary file is left."""
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == stat.st_mtime_ns and path.stat().st_ino == stat.st_ino
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        [path.name, f".{path.name}.lock"])


def test_appends_the_new_closed_bars(binance, store, bundled, sample) -> None:
    before = store.read_bytes()
    binance.now_ms = opens(binance, 450) + 25 * 60_000  # bar 450 is forming
    summary = update(binance, store, limit=100)
    assert summary.bars_added == 250 and summary.complete
    assert summary.first_new == bundled.index[STORED] and summary.last_new == bundled.index[449]
    assert summary.dropped_unclosed == 1 and summary.path == store
    assert summary.requests == 3  # from the stored last bar: 200-299, 300-399, 400-450
    data = store.read_bytes()
    assert len(data) > len(before) and data.startswith(before)  # every stored byte intact
    back = load_ohlcv(store)
    pd.testing.assert_frame_equal(back, bundled.iloc[:450], check_freq=False)
    header, rows = sample
    assert text_of(store) == "\n".join([header, *(",".join(r) for r in rows[:450])]) + "\n"
    assert "appended 250 BTC/USDT 1h from binance" in str(summary)
    assert summary.to_dict()["last_new"] == bundled.index[449].isoformat()
    assert binance.unexpected == []


def test_the_unclosed_last_candle_is_left_for_later(binance, store, bundled) -> None:
    forming = opens(binance, 205)
    binance.now_ms = forming + 59 * 60_000
    summary = update(binance, store)
    assert summary.bars_added == 5 and summary.dropped_unclosed == 1
    assert load_ohlcv(store).index[-1] == bundled.index[204]
    assert forming + HOUR_MS > binance.now_ms  # the dropped candle closes after now
    assert summary.last_bar + pd.Timedelta(hours=1) <= summary.now
    binance.now_ms = forming + HOUR_MS  # closed now: the next update takes it
    assert update(binance, store).bars_added == 1
    assert load_ohlcv(store).index[-1] == bundled.index[205]


def test_nothing_new_leaves_the_file_alone(binance, store) -> None:
    before, stat = store.read_bytes(), store.stat()
    binance.now_ms = opens(binance, STORED) + 10 * 60_000  # the next bar is still forming
    summary = update(binance, store)
    assert summary.bars_added == 0 and summary.first_new is None
    assert "no new closed" in str(summary)
    left_alone(store, before, stat)


def _warned(summary: UpdateSummary, text: str) -> bool:
    """Whether ``text`` is in one of the summary's warnings, its line and its dict's."""
    return (any(text in w for w in summary.warnings) and text in str(summary)
            and any(text in w for w in summary.to_dict()["warnings"]))


def test_a_stale_source_is_a_warning_in_the_summary(binance, store) -> None:
    """An exchange or mirror whose candles stop at the stored last bar found "no new closed
    candles" every night, exit 0, without a word in the summary's warnings."""
    binance.now_ms = opens(binance, STORED + 5)
    binance.missing = {opens(binance, i) for i in range(STORED, STORED + 6)}
    summary = update(binance, store)
    assert summary.bars_added == 0
    assert _warned(summary, "no new closed candle, though 5 bars have closed since the stored "
                            "last bar"), summary.warnings
    binance.now_ms = opens(binance, STORED) + HOUR_MS + 30 * 60_000  # one bar closed since
    assert not _warned(update(binance, store), "no new closed candle")


def test_candles_stopping_part_way_are_a_warning_in_the_summary(binance, store) -> None:
    """An exchange or mirror that stops answering part-way (an empty page in the middle of
    the range, candles that end hours before now) appended what it gave and said nothing: only
    an update with no new bar at all was warned of."""
    binance.now_ms = opens(binance, STORED + 10)
    binance.missing = {opens(binance, i) for i in range(STORED + 5, STORED + 10)}
    summary = update(binance, store, limit=3)
    assert summary.bars_added == 5 and summary.complete
    assert _warned(summary, f"the exchange's candles stop at {summary.last_bar.isoformat()}, "
                            "though 5 more bars have closed since"), summary.warnings
    binance.missing = set()
    binance.now_ms = opens(binance, STORED + 20) + 30 * 60_000
    summary = update(binance, store, limit=3)
    assert summary.bars_added == 15 and not _warned(summary, "more bars have closed since")
    binance.now_ms = opens(binance, STORED + 40)
    summary = update(binance, store, max_bars=5)  # max_bars says so itself
    assert not summary.complete and not _warned(summary, "more bars have closed since")


def test_a_stored_last_bar_after_now_is_a_warning_in_the_summary(binance, store) -> None:
    """A file whose times are ahead (written in another time zone): its last bar closing
    after now, nothing was asked for and the update said "no new closed candle", no warning,
    every night until the exchange caught up with the file's times."""
    binance.now_ms = opens(binance, STORED - 9)
    summary = update(binance, store)
    assert summary.bars_added == 0 and summary.requests == 0
    assert _warned(summary, f"the file's last bar {summary.last_bar.isoformat()} closes at "), \
        summary.warnings
    binance.now_ms = opens(binance, STORED)  # the last bar has just closed
    assert not _warned(update(binance, store), "the file's last bar")


def test_an_empty_answer_is_a_warning_in_the_summary(binance, store) -> None:
    before = store.read_bytes()
    binance.now_ms = opens(binance, STORED + 5)
    binance.garbage, binance.garbage_body = "/api/v3/klines", b"[]"
    summary = update(binance, store)
    assert summary.bars_added == 0 and store.read_bytes() == before
    assert _warned(summary, "the exchange answered no closed candle from the stored last bar"), \
        summary.warnings


def test_a_gap_appended_with_allow_gaps_is_a_warning_in_the_summary(binance, store) -> None:
    binance.now_ms = opens(binance, STORED + 20)
    binance.missing = {opens(binance, i) for i in (STORED + 3, STORED + 4, STORED + 9)}
    summary = update(binance, store, allow_gaps=True)
    assert summary.bars_added == 17
    assert _warned(summary, "appended across 2 gap(s) the exchange has (3 missing bar(s) in "
                            "all)"), summary.warnings
    binance.now_ms = opens(binance, STORED + 30)
    assert not _warned(update(binance, store, allow_gaps=True), "gap(s)")


def test_max_bars_appends_part_and_says_so(binance, store, bundled) -> None:
    binance.now_ms = opens(binance, 400)
    first = update(binance, store, limit=50, max_bars=120)
    assert first.bars_added == 120 and not first.complete and "run the update again" in str(first)
    second = update(binance, store, limit=50, max_bars=120)
    assert second.bars_added == 80 and second.complete
    pd.testing.assert_frame_equal(load_ohlcv(store), bundled.iloc[:400], check_freq=False)


@pytest.mark.parametrize("kind", ["500", "close"])
def test_an_outage_mid_fetch_changes_nothing(binance, store, kind) -> None:
    before, stat = store.read_bytes(), store.stat()
    binance.now_ms = opens(binance, 600)
    binance.fail_after, binance.fail_kind = 1, kind
    with pytest.raises(InfrastructureError) as caught:
        update(binance, store, limit=100)
    assert caught.value.exit_code == 6 and "\n" not in str(caught.value)
    assert len(binance.klines_requests()) == 2
    left_alone(store, before, stat)


def test_garbage_json_changes_nothing(binance, store) -> None:
    before, stat = store.read_bytes(), store.stat()
    binance.now_ms = opens(binance, 300)
    binance.garbage, binance.garbage_body = "/api/v3/klines", b'[[1633766400000, "4'
    with pytest.raises(InfrastructureError, match="not JSON") as caught:
        update(binance, store)
    assert caught.value.exit_code == 6
    left_alone(store, before, stat)


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"symbol": "XRP/EUR"}, "'XRP/EUR'"),
    ({"interval": "1M"}, "'1M'"),  # Binance has months; they are no fixed bar length
    ({"interval": "3m"}, "holds 1h bars, not 3m"),  # Binance has 3m; the file is hourly
    ({"exchange": "binance_typo"}, "'binance_typo'"),
])  # fmt: skip
def test_what_does_not_fit_is_exit_2(binance, store, kwargs, named) -> None:
    before = store.read_bytes()
    binance.now_ms = opens(binance, 300)
    with pytest.raises((ConfigError, DataError)) as caught:
        update(binance, store, **kwargs)
    assert caught.value.exit_code == 2 and named in str(caught.value)
    assert "\n" not in str(caught.value)
    assert binance.klines_requests() == [] and store.read_bytes() == before


def test_a_disagreeing_overlap_is_refused(binance, store, bundled) -> None:
    before, stat = store.read_bytes(), store.stat()
    binance.now_ms = opens(binance, 300)
    last = opens(binance, STORED - 1)
    binance.edits[last] = {"close": "54800.5"}  # within its low and high
    with pytest.raises(DataError) as caught:
        update(binance, store)
    message = str(caught.value)
    assert caught.value.exit_code == 2 and "disagrees" in message
    assert bundled.index[STORED - 1].isoformat() in message and "54800.5 now" in message
    left_alone(store, before, stat)


def _revised_after_close(binance, bar: int) -> None:
    """The exchange revises the volume of ``bar`` once it is 2 bars old (as a Kraken-like one
    settling its trades late): before, it answers the bundled value; after, another."""
    binance.edits[opens(binance, bar)] = {"volume": "1234.5"}


def test_settle_bars_stores_a_candle_only_once_the_exchange_stopped_revising_it(
        binance, store, bundled) -> None:
    binance.now_ms = opens(binance, 210) + 10 * 60_000  # bars 200-209 closed, 210 forming
    first = update(binance, store, settle_bars=2)
    assert first.bars_added == 8 and first.settling == 2  # 208 and 209 are too young
    assert load_ohlcv(store).index[-1] == bundled.index[207]
    assert "2 closed candle(s) left to settle" in str(first)
    assert first.to_dict()["settling"] == 2
    _revised_after_close(binance, 209)
    binance.now_ms = opens(binance, 215)
    second = update(binance, store, settle_bars=2)  # the stored last bar (207) re-read: agrees
    assert second.bars_added == 5 and load_ohlcv(store).index[-1] == bundled.index[212]
    assert load_ohlcv(store).loc[bundled.index[209], "volume"] == 1234.5  # stored settled


def test_a_revised_candle_without_settle_bars_is_refused_naming_the_setting(binance,
                                                                           store) -> None:
    binance.now_ms = opens(binance, 210)
    assert update(binance, store).bars_added == 10  # bar 209 stored as first answered
    before = store.read_bytes()
    _revised_after_close(binance, 209)
    binance.now_ms = opens(binance, 215)
    with pytest.raises(DataError) as caught:
        update(binance, store)
    assert "volume" in str(caught.value) and "data.update.settle_bars" in str(caught.value)
    assert store.read_bytes() == before


@pytest.mark.parametrize("settle_bars", [-1, 1001, 2.0, True])
def test_settle_bars_out_of_range_is_exit_2_before_any_request(binance, store,
                                                               settle_bars) -> None:
    binance.now_ms = opens(binance, 210)
    with pytest.raises(ConfigError) as caught:
        update(binance, store, settle_bars=settle_bars)
    assert caught.value.exit_code == 2 and "settle_bars" in str(caught.value)
    assert binance.klines_requests() == []


@pytest.mark.parametrize("allow_gaps", [False, True])
def test_an_answer_leaving_out_the_stored_last_bar_is_refused(binance, store,
                                                              allow_gaps) -> None:
    """The re-read last bar is what the new candles are checked against: new candles (here of
    another market's prices) without it were appended, exit 0."""
    before, stat = store.read_bytes(), store.stat()
    binance.now_ms = opens(binance, 260)
    binance.missing = {opens(binance, STORED - 1)}
    for i in range(STORED, 260):
        binance.edits[opens(binance, i)] = {"open": "2000", "high": "2010", "low": "1990",
                                            "close": "2005"}
    with pytest.raises(DataError) as caught:
        update(binance, store, allow_gaps=allow_gaps)
    message = str(caught.value)
    assert caught.value.exit_code == 2 and "\n" not in message
    assert "cannot be checked against the stored ones" in message
    assert pd.Timestamp(opens(binance, STORED - 1), unit="ms", tz="UTC").isoformat() in message
    left_alone(store, before, stat)


@pytest.mark.parametrize(("edit", "column"), [
    ({"open": "54800000", "high": "54900000", "low": "54700000", "close": "54850000"}, "open"),
    ({"high": "1e308"}, "high"),
    ({"low": "1"}, "low"),
])
def test_prices_far_from_the_close_before_them_are_refused(binance, store, edit, column) -> None:
    """An attack: behind a correct re-read last bar, candles a thousand times the stored
    prices, a high of 1e308, a low of 1 dollar, were appended with exit 0. A move beyond
    data.update.max_jump from the close before a bar is refused, naming the bar; raising it
    lets a real move in."""
    before, stat = store.read_bytes(), store.stat()
    binance.now_ms = opens(binance, 260)
    binance.edits[opens(binance, STORED + 3)] = edit
    with pytest.raises(DataError) as caught:
        update(binance, store)
    message = str(caught.value)
    assert caught.value.exit_code == 2 and "\n" not in message
    at = pd.Timestamp(opens(binance, STORED + 3), unit="ms", tz="UTC").isoformat()
    assert f"the candle at {at} has {column}" in message and "max_jump" in message
    left_alone(store, before, stat)
    if column == "open":  # a real move of that size goes in once allowed
        summary = update(binance, store, max_jump=2000.0, max_bars=5)
        assert summary.bars_added == 5  # the jump up and the one back down


def test_a_gap_is_refused_unless_allowed(binance, store, bundled) -> None:
    before, stat = store.read_bytes(), store.stat()
    binance.now_ms = opens(binance, 260)
    binance.missing = {opens(binance, i) for i in (STORED, STORED + 1)}
    with pytest.raises(DataError, match=r"gap of 2 bar\(s\) between the stored last bar") as e:
        update(binance, store)
    assert e.value.exit_code == 2
    left_alone(store, before, stat)
    summary = update(binance, store, allow_gaps=True)
    assert summary.bars_added == 58 and summary.first_new == bundled.index[STORED + 2]


def test_a_gap_between_new_bars_is_refused(binance, store) -> None:
    before, stat = store.read_bytes(), store.stat()
    binance.now_ms = opens(binance, 260)
    binance.missing = {opens(binance, 230)}
    with pytest.raises(DataError, match="between new bars"):
        update(binance, store)
    left_alone(store, before, stat)


def test_bars_off_the_stored_grid_are_refused(binance, store) -> None:
    before, stat = store.read_bytes(), store.stat()
    binance.now_ms = opens(binance, 260)
    binance.shift_ms = 30 * 60_000
    with pytest.raises(DataError, match="not on the stored bars' 1h grid"):
        update(binance, store)
    left_alone(store, before, stat)


def test_append_refuses_an_unclosed_candle(store, bundled) -> None:
    before, stat = store.read_bytes(), store.stat()
    new = bundled.iloc[STORED:STORED + 3]
    now = new.index[-1] + pd.Timedelta(minutes=59)  # the third is still forming
    with pytest.raises(DataError, match="after now") as caught:
        append_candles(store, new, "1h", now=now)
    assert caught.value.exit_code == 2
    left_alone(store, before, stat)
    summary = append_candles(store, new, "1h", now=now + pd.Timedelta(minutes=1))
    assert summary.bars_added == 3
    pd.testing.assert_frame_equal(load_ohlcv(store), bundled.iloc[:STORED + 3], check_freq=False)


def test_credentials_in_the_url_are_never_printed(binance, store, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    port = binance.base_url.rsplit(":", 1)[1]
    url = f"https://hooks:{SECRET}@127.0.0.1:{port}"  # a TLS hook: the plain server fails it
    with pytest.raises(InfrastructureError) as caught:
        update(binance, store, base_url=url, retries=1, retry_wait_s=0.01)
    shown = str(caught.value) + caplog.text + "".join(capsys.readouterr())
    url = f"http://hooks:{SECRET}@127.0.0.1:{port}"
    binance.now_ms = opens(binance, 210)
    summary = update(binance, store, base_url=url)
    assert summary.bars_added == 10 and all(binance.auth)
    shown += str(summary) + repr(summary) + str(summary.to_dict()) + caplog.text
    shown += "".join(capsys.readouterr())
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert SECRET not in shown and "hooks:" not in shown


def test_a_failed_write_changes_nothing(binance, store, monkeypatch) -> None:
    before, stat = store.read_bytes(), store.stat()
    binance.now_ms = opens(binance, 260)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("cryptosweep.core.files.os.replace", full)
    with pytest.raises(InfrastructureError, match="No space left on device") as caught:
        update(binance, store)
    assert caught.value.exit_code == 6
    left_alone(store, before, stat)


def test_temporary_files_of_a_killed_update_are_removed_and_nothing_else(binance,
                                                                         store) -> None:
    """An update killed mid-write (SIGKILL) left its temporary copy of the whole file next to
    it, and each such kill one more."""
    suffix = store.suffix
    gone = 4_194_399  # above Linux's largest pid: no process has it
    stale = store.with_name(f".{store.name}.{gone}-0123456789ab.tmp{suffix}")
    kept = [store.with_name(name) for name in (
        f".{store.name}.{os.getppid()}-0123456789ab.tmp{suffix}",  # its writer still runs
        f".{store.name}.{gone}-0123456789ab.tmp{suffix}.bak",
        f".{store.name}.{gone}-0123456789AB.tmp{suffix}",
        f".{store.name}.{gone}-0123456789ab.tmp",
        f".other.csv.{gone}-0123456789ab.tmp{suffix}",
        f"{store.name}.{gone}-0123456789ab.tmp{suffix}",
    )]
    for path in (stale, *kept):
        path.write_bytes(b"partial")
    binance.now_ms = opens(binance, STORED + 10)
    assert update(binance, store).bars_added == 10
    assert not stale.exists()
    assert all(path.read_bytes() == b"partial" for path in kept)


def test_a_second_update_at_once_is_refused(binance, store) -> None:
    before = store.read_bytes()
    fd = os.open(store.with_name(f".{store.name}.lock"), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(DataError, match="another update of this file is running"):
            update(binance, store)
    finally:
        os.close(fd)
    assert store.read_bytes() == before and binance.requests == []


def test_a_symbolic_link_to_the_file_is_followed_and_kept(binance, store, bundled) -> None:
    """A path given to update_candles that is a symbolic link (``current.csv ->
    BTCUSDT-1h.csv``; a config's data.path is resolved when loaded): the new file was renamed
    over the link, which became a file of its own, and the file it pointed to never got the
    new bars (nor did another update of it, through its own name, wait for the lock)."""
    links = store.parent / "links"
    links.mkdir()
    link = links / f"current{''.join(store.suffixes)}"
    link.symlink_to(store)
    binance.now_ms = opens(binance, STORED + 10)
    summary = update(binance, link)
    assert summary.bars_added == 10 and summary.path == store
    assert link.is_symlink() and link.resolve() == store
    pd.testing.assert_frame_equal(load_ohlcv(store), bundled.iloc[:STORED + 10],
                                  check_freq=False)
    assert sorted(p.name for p in links.iterdir()) == [link.name]
    assert sorted(p.name for p in store.parent.iterdir()) == sorted(
        [store.name, f".{store.name}.lock", "links"])


def test_the_bundled_sample_is_never_updated(binance) -> None:
    with pytest.raises(DataError, match="bundled sample"):
        update(binance, sample_data_path())
    assert binance.requests == []


def test_keeps_a_headerless_fixed_decimal_crlf_file_in_its_style(binance, tmp_path, bundled,
                                                                  sample) -> None:
    _, rows = sample
    lines = [",".join([r[0], *(f"{float(v):.8f}" for v in r[1:6]), r[6]]) for r in rows[:50]]
    path = tmp_path / "BTCUSDT-1h.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    before = path.read_bytes()
    binance.now_ms = opens(binance, 60)
    assert update(binance, path).bars_added == 10
    added = path.read_bytes()[len(before):].decode()
    assert path.read_bytes().startswith(before)
    expected = [",".join([r[0], *(f"{float(v):.8f}" for v in r[1:6]), r[6]]) for r in rows[50:60]]
    assert added == "\r\n".join(expected) + "\r\n"
    pd.testing.assert_frame_equal(load_ohlcv(path), bundled.iloc[:60], check_freq=False)


def _update_config(tmp_path: Path, store: Path, base_url: str, name: str = "sweep.json",
                   **update) -> Path:
    import json

    from tests.support import tiny_config

    config = tiny_config(data__path=str(store), data__update={
        "exchange": "binance", "symbol": "BTC/USDT", "interval": "1h", "base_url": base_url,
        "retries": 0, "timeout_s": 3.0, **update})
    path = tmp_path / name
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def test_the_data_update_command(binance, sample, tmp_path: Path) -> None:
    """``cryptosweep data update --config``: the summary line and exit 0; a config without a
    data.update section, a symbol the exchange does not list (exit 2) and an exchange that
    cannot be reached (exit 6) are one line each, the file untouched."""
    from tests.support import cli

    header, rows = sample
    store = write_store(tmp_path / "c.csv", header, [",".join(r) for r in rows[:STORED]])
    binance.now_ms = opens(binance, STORED + 24)
    done = cli("data", "update", "--config", str(_update_config(tmp_path, store,
                                                                   binance.base_url)))
    assert done.returncode == 0, done.stderr
    assert "appended 24 BTC/USDT 1h from binance" in done.stdout
    before = store.read_bytes()
    import json

    from tests.support import tiny_config

    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(tiny_config(data__path=str(store))), encoding="utf-8")
    cases = [(bare, 2, "no data.update section"),
             (_update_config(tmp_path, store, binance.base_url, "doge.json",
                             symbol="DOGE/USDT"), 2,
              "unknown symbol"),
             (_update_config(tmp_path, store, "http://127.0.0.1:9", "down.json"), 6, "binance")]
    for config, code, text in cases:
        done = cli("data", "update", "--config", str(config))
        assert done.returncode == code, (config, done.stderr)
        assert done.stderr.count("\n") == 1 and text in done.stderr
        assert done.stderr.startswith("cryptosweep: error: ")
    assert store.read_bytes() == before


def test_a_data_update_stopped_by_sigterm_says_the_file_is_as_it_was(binance, sample, tmp_path,
                                                                     capsys) -> None:
    """SIGTERM (systemd stop, kill) during ``cryptosweep data update`` said "interrupted
    (SIGTERM) before a run folder was made; nothing to resume", a sweep's words: the update has
    no run folder, and what matters is that the candle file is as it was."""
    import signal
    import time

    from cryptosweep import cli

    header, rows = sample
    store = write_store(tmp_path / "c.csv", header, [",".join(r) for r in rows[:STORED]])
    before = store.read_bytes()
    binance.now_ms = opens(binance, STORED + 24)
    answer = binance.klines

    def stopped(query):  # the process is stopped while its request waits for this answer
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)
        return answer(query)

    binance.klines = stopped
    code = cli.main(["data", "update", "--config",
                     str(_update_config(tmp_path, store, binance.base_url))])
    err = capsys.readouterr().err
    assert code == 143 and store.read_bytes() == before, err
    assert err.endswith(f"cryptosweep: data update interrupted (SIGTERM); {store} is as it was: "
                        "run the update again\n"), err
    assert "run folder" not in err
