"""The proposed ``data.update`` section (cryptosweep.marketdata.settings.DataUpdateSettings)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from cryptosweep.core.errors import ConfigError
from cryptosweep.marketdata.settings import DataUpdateSettings
from cryptosweep.marketdata.store import update_candles
from tests.marketdata.binance_stub import write_store

BASE = {"exchange": "binance", "symbol": "BTC/USDT", "interval": "1h"}


def test_defaults_and_call_kwargs() -> None:
    settings = DataUpdateSettings(**BASE)
    assert settings.call_kwargs() == {
        **BASE, "base_url": None, "limit": 1000, "max_bars": 100_000, "allow_gaps": False,
        "max_jump": 0.5, "settle_bars": 0, "timeout_s": 10.0, "retries": 2,
    }  # fmt: skip


@pytest.mark.parametrize("change", [
    {"exchange": "Binance"}, {"exchange": "binance.com"}, {"symbol": "BTCUSDT"},
    {"symbol": "BTC/USDT:USDT"}, {"interval": "60m"}, {"interval": "1M"}, {"interval": 1},
    {"base_url": "ftp://mirror"}, {"base_url": "https://user:pw@mirror"},
    {"base_url": "https://mirror/?key=1"}, {"base_url_env": "NOT A NAME"},
    {"base_url": "https://mirror..example"}, {"base_url": f"https://{'a' * 64}.example"},
    {"base_url": "https://mirror", "base_url_env": "MIRROR"}, {"limit": 0}, {"limit": "5"},
    {"max_bars": 0}, {"max_jump": 0}, {"max_jump": float("inf")}, {"timeout_s": 0},
    {"retries": -1}, {"settle_bars": -1}, {"settle_bars": 1001}, {"settle_bars": "2"},
    {"unknown": True},
])  # fmt: skip
def test_bad_values_are_refused(change: dict) -> None:
    with pytest.raises(ValidationError):
        DataUpdateSettings(**{**BASE, **change})


def test_base_url_from_the_environment_never_shows_its_value() -> None:
    settings = DataUpdateSettings(**BASE, base_url_env="MIRROR_URL")
    assert settings.resolved_base_url({"MIRROR_URL": "https://u:secret@m"}) == (
        "https://u:secret@m")
    with pytest.raises(ConfigError, match="MIRROR_URL is not set"):
        settings.call_kwargs({})


@pytest.mark.parametrize(("value", "problem"), [
    ("ftp://u:hidden-pw@127.0.0.1:1/", "must be an http(s) URL with a host"),
    ("http://u:hidden-pw@127.0.0.1:99999", "is not a URL"),
    ("http://127.0.0.1:8080/?key=hidden-pw", "no query or fragment"),
    ("http://alice:hidden-pw\u20ac@127.0.0.1:8080", "outside Latin-1"),
    ("http://alice:hidden-pw%E2%82%AC@127.0.0.1:8080", "outside Latin-1"),
    ("http://alice:hidden-pw@mirror..example:8080", "empty label"),
])  # fmt: skip
def test_a_bad_base_url_in_the_environment_is_named_by_its_variable(value: str,
                                                                    problem: str) -> None:
    settings = DataUpdateSettings(**BASE, base_url_env="MIRROR_URL")
    with pytest.raises(ConfigError) as caught:
        settings.call_kwargs({"MIRROR_URL": value})
    message = str(caught.value)
    assert caught.value.exit_code == 2 and "\n" not in message
    assert "data.update.base_url_env: the environment variable MIRROR_URL " in message
    assert problem in message and "hidden-pw" not in message and "alice" not in message


def test_credentials_outside_latin_1_are_bad_input_before_any_request(binance, sample,
                                                                      tmp_path: Path) -> None:
    """requests cannot send them as basic auth: the update failed at its first request, and
    that was reported as a network fault (exit 6)."""
    from cryptosweep.core.config import SweepConfig
    from cryptosweep.marketdata.store import update_configured
    from tests.support import tiny_config

    header, rows = sample
    path = write_store(tmp_path / "c.csv", header, [",".join(r) for r in rows[:30]])
    before = path.read_bytes()
    url = binance.base_url.replace("http://", "http://alice:s3cr\u20acT@")
    config = SweepConfig.model_validate(tiny_config(data__path=str(path), data__update={
        **BASE, "base_url_env": "CANDLES_URL", "retries": 0}))
    with pytest.raises(ConfigError, match=r"CANDLES_URL .*outside Latin-1") as caught:
        update_configured(config, environ={"CANDLES_URL": url})
    assert caught.value.exit_code == 2
    with pytest.raises(ConfigError, match="outside Latin-1") as direct:
        update_candles(path, **BASE, base_url=url, retries=0)
    assert "s3cr" not in str(caught.value) + str(direct.value)
    assert binance.requests == [] and path.read_bytes() == before


def test_loading_the_settings_does_not_import_ccxt() -> None:
    code = ("import sys, cryptosweep.marketdata.settings; "
            "sys.exit('ccxt' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0


def test_the_settings_drive_an_update(binance, sample, tmp_path: Path) -> None:
    header, rows = sample
    path = write_store(tmp_path / "c.csv", header, [",".join(r) for r in rows[:30]])
    binance.now_ms = int(rows[40][0])
    settings = DataUpdateSettings(**BASE, base_url_env="CANDLES_URL", retries=0)
    summary = update_candles(path, **settings.call_kwargs({"CANDLES_URL": binance.base_url}))
    assert summary.bars_added == 10


def test_the_section_lives_in_the_config_and_out_of_the_results_hash(tmp_path: Path) -> None:
    """``data.update`` is a typed section of DataSettings (extra keys refused) that changes
    no result: two configs differing only in it hash alike."""
    from cryptosweep.core import data_settings
    from cryptosweep.core.config import config_hash
    from cryptosweep.core.config_files import validate_config
    from tests.support import tiny_config

    assert DataUpdateSettings is data_settings.DataUpdateSettings
    plain = validate_config(tiny_config())
    updated = validate_config(tiny_config(data__update=dict(BASE)))
    assert isinstance(updated.data.update, DataUpdateSettings)
    assert updated.data.update.symbol == "BTC/USDT" and plain.data.update is None
    assert config_hash(plain.canonical()) == config_hash(updated.canonical())
    with pytest.raises(ConfigError, match=r"data\.update"):
        validate_config(tiny_config(data__update={**BASE, "exchnage": "kraken"}))


def test_a_base_url_with_a_path_is_refused_without_showing_it() -> None:
    """A proxy's token in the path of the config's base_url was accepted, and the config is
    journaled whole into every run folder (sweep.db, results), though no message ever shows
    that path; it belongs in the variable base_url_env names, as credentials do."""
    from cryptosweep.core.config_files import validate_config
    from tests.support import tiny_config

    token = "XoXb-9f8e7d6c5b4a"
    with pytest.raises(ConfigError, match=r"data\.update\.base_url: .*without a path") as caught:
        validate_config(tiny_config(data__update={
            **BASE, "base_url": f"https://proxy.example:8443/k/{token}"}))
    assert token not in str(caught.value) and "\n" not in str(caught.value)
    for allowed in ("https://proxy.example:8443", "https://proxy.example:8443/"):
        assert DataUpdateSettings(**BASE, base_url=allowed).base_url == allowed
    settings = DataUpdateSettings(**BASE, base_url_env="MIRROR_URL")
    url = f"https://proxy.example/k/{token}"
    assert settings.resolved_base_url({"MIRROR_URL": url}) == url


def test_a_journaled_base_url_this_version_refuses_does_not_lock_its_run_out() -> None:
    """A run journaled before a base_url with a path (or an empty host label) was refused kept
    it in its journaled config: resuming it, the nightly's plan and the explorer validate that
    config, and were refused for good ("data.update.base_url: ... without a path"). The update
    is never part of a resume and is not what a resume compares (results_identity): the
    journaled config reads without that base_url."""
    from cryptosweep.core.config import results_identity
    from cryptosweep.core.config_files import config_as_made, validate_config
    from tests.support import tiny_config

    for old in ("https://proxy.example:8443/k/token", "https://mirror..example"):
        journaled = tiny_config(data__update={**BASE, "base_url": old})
        config = validate_config(config_as_made(journaled))
        assert config.data.update is not None and config.data.update.base_url is None
        assert results_identity(config.canonical()) == results_identity(validate_config(
            config_as_made(tiny_config(data__update={**BASE, "base_url": "https://b.example"})))
            .canonical())
        assert journaled["data"]["update"]["base_url"] == old  # (the journal's dict untouched)
    kept = tiny_config(data__update={**BASE, "base_url": "https://proxy.example:8443"})
    assert validate_config(config_as_made(kept)).data.update.base_url == "https://proxy.example:8443"
