"""The nightly and the champion's history files under hostile input: a torn JSON line, a
damaged ``champions.jsonl``, ``paper_trades.jsonl`` or ``.promotion.json``, bad settings in the
environment, a missing credentials variable. Each is one line naming what is wrong and exit 2,
before anything is created or changed; a line a kill tore loses nothing but itself.

Real files and real runs of ``python -m cryptosweep.nightly``, ``scheduled/nightly_sweep.sh``
and ``cryptosweep signals``; every bad input is caught before the sweep would start, so each
run takes a second or two."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cryptosweep.core.errors import UserError
from cryptosweep.core.files import append_lines, read_json_lines
from cryptosweep.nightly import promotion
from cryptosweep.nightly.field import LEDGER, read_ledger
from cryptosweep.nightly.promotion import HISTORY, MARKER, NEW, last_demotion, read_history
from tests.support import REPO, tiny_config

slow = pytest.mark.slow

SCRIPT = REPO / "scheduled" / "nightly_sweep.sh"
SAMPLE = REPO / "lib" / "cryptosweep" / "data" / "BTCUSDT-1h-2021-10_2022-10.csv.gz"
REJECTED = {"time": "2024-01-01T00:00:00Z", "run": "nightly_1", "decision": "rejected",
            "reason": "Rejected: DSR 0.03 < 0.95.", "promoted": False,
            "keep": {"passed": False, "score": -1.0}}
DEMOTED = {"time": "2024-01-02T00:00:00Z", "decision": "demoted", "promoted": False,
           "reason": "keep-gate: 3 nights in a row", "champion": None}


# ------------------------------------------------------------------------------ helpers


def config_file(tmp: Path, **data: Any) -> Path:
    """A tiny nightly config (as JSON), its ``data`` section updated with ``data``."""
    config = tiny_config(random__n_trials=3, objective__rounds_per_unit=3)
    if data:
        config["data"] = {**config.get("data", {}), **data}
    path = tmp / "tiny.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def nightly_env(tmp: Path, **settings: Any) -> dict[str, str]:
    """The job's environment: REPORTS_DIR and MODELS_DIR under ``tmp``, CPU only."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("SWEEP_CONFIG", "MIRROR_URL", "RUN_RETENTION")
           and not key.startswith("NOTIFY_")}
    env.update(REPORTS_DIR=str(tmp / "reports"), MODELS_DIR=str(tmp / "models"),
               GPU_POLICY="use", PYTHONUNBUFFERED="1")
    env.update({key: str(value) for key, value in settings.items()})
    return env


def run_job(env: dict[str, str], *args: str, script: bool = False,
            timeout: float = 300) -> SimpleNamespace:
    command = [str(SCRIPT)] if script else [sys.executable, "-m", "cryptosweep.nightly"]
    done = subprocess.run([*command, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd="/")
    return SimpleNamespace(rc=done.returncode, output=done.stdout + done.stderr)


def errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if " ERROR nightly: " in line]


def assert_one_clear_line(done: SimpleNamespace, *words: str) -> None:
    """Exit 2 with one ERROR line holding ``words`` and no traceback."""
    assert done.rc == 2, done.output[-3000:]
    assert "Traceback" not in done.output, done.output[-3000:]
    lines = errors(done.output)
    assert len(lines) == 1, done.output[-3000:]
    for word in words:
        assert word in lines[0], lines[0]


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (what must not change)."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def jsonl(*records: Any) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


# ----------------------------------------------------------------- a torn line (defect 1)


def test_an_append_after_a_torn_line_starts_a_line_of_its_own(tmp_path):
    """A kill tore the last line of champions.jsonl; the next night's demotion must still be
    read back: it is what makes `signals` flat and resets the keep-gate's count."""
    models = tmp_path / "models"
    promotion.append_record(models, REJECTED)
    with open(models / HISTORY, "a", encoding="utf-8") as out:
        out.write('{"decision": "rejected", "time": "2024-01-0')  # killed mid-write
    promotion.append_record(models, DEMOTED)
    assert read_history(models) == [REJECTED, DEMOTED]
    assert last_demotion(models) == DEMOTED
    promotion.append_record(models, REJECTED)  # a complete last line: no blank line added
    assert "\n\n" not in (models / HISTORY).read_text()
    assert read_history(models) == [REJECTED, DEMOTED, REJECTED]


def test_the_ledger_keeps_a_trade_appended_after_a_torn_line(tmp_path):
    trade = {"champion": "abc", "entry_time": "2024-01-01T00:00:00+00:00", "net_return": 0.01}
    (tmp_path / LEDGER).write_text(jsonl(trade) + '{"champion": "abc", "entry_ti')
    later = {**trade, "entry_time": "2024-01-02T00:00:00+00:00"}
    append_lines(tmp_path / LEDGER, [json.dumps(later) + "\n"])
    assert read_ledger(tmp_path) == [trade, later]


def test_a_record_an_older_writer_glued_onto_a_torn_line_is_read_back(tmp_path):
    """Files written before the fix hold the torn line and the next record on one line."""
    (tmp_path / HISTORY).write_text(jsonl(REJECTED) + '{"decision": "rej'
                                    + json.dumps(DEMOTED) + "\n")
    assert read_history(tmp_path) == [REJECTED, DEMOTED]


def test_a_record_torn_before_its_last_brace_does_not_leave_a_phantom(tmp_path):
    """A record torn just before its final "}" ends in one of its nested objects, which
    parses: it was read back as a record of its own (a phantom last decision)."""
    whole = json.dumps({**REJECTED, "winner": {"eval_id": 3, "score": 0.5}}, sort_keys=True)
    assert whole.endswith("}}")
    (tmp_path / HISTORY).write_text(jsonl(DEMOTED) + whole[:-1] + "\n")
    assert read_history(tmp_path) == [DEMOTED]


# ------------------------------------------------------- a damaged history file (defect 2)


DAMAGED_LINES = {
    "a list": (b"[]", "not a JSON object"),
    "a string": (b'"x"', "not a JSON object"),
    "a demotion without its time": (b'{"decision": "demoted"}', "'time'"),
    "bytes that are not UTF-8": (b"\xff\xfe{}", "not UTF-8"),
    "not JSON": (b"decision=demoted", "not JSON"),
    "a keep block that is not one": (b'{"decision": "rejected", "keep": "yes"}', "'keep'"),
}


@pytest.mark.parametrize("name", DAMAGED_LINES)
def test_a_damaged_history_line_is_named_by_file_and_line(tmp_path, name):
    line, why = DAMAGED_LINES[name]
    (tmp_path / HISTORY).write_bytes(jsonl(REJECTED).encode() + line + b"\n"
                                     + jsonl(DEMOTED).encode() + b'{"time": "torn')
    with pytest.raises(UserError) as caught:
        read_history(tmp_path)
    message = str(caught.value)
    assert f"{tmp_path / HISTORY}, line 2: " in message and why in message
    assert "\n" not in message


def test_a_torn_last_line_is_still_skipped_and_blank_lines_are_harmless(tmp_path):
    (tmp_path / HISTORY).write_text(jsonl(REJECTED) + "\n" + jsonl(DEMOTED) + '{"time": "2')
    assert read_history(tmp_path) == [REJECTED, DEMOTED]
    assert read_json_lines(tmp_path / "absent.jsonl") == []


@slow
@pytest.mark.parametrize("name", ["a list", "a demotion without its time",
                                  "bytes that are not UTF-8"])
def test_signals_on_a_damaged_history_is_one_line_and_exit_2(tmp_path, name):
    models = tmp_path / "models"
    models.mkdir()
    (models / HISTORY).write_bytes(DAMAGED_LINES[name][0] + b"\n")
    done = subprocess.run([sys.executable, "-m", "cryptosweep", "signals",
                           str(models / "champion"), "--data", str(SAMPLE)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{models / HISTORY}, line 1: " in lines[0], done.stderr


def test_recover_refuses_a_damaged_marker_before_changing_anything(tmp_path):
    models = tmp_path / "models"
    (models / NEW).mkdir(parents=True)  # an interrupted rotation recover would finish
    (models / NEW / "manifest.json").write_text("{}")
    for marker, why in (({"manifest_sha256": None, "best_configs": 5, "record": {}},
                         "'best_configs'"),
                        ({"manifest_sha256": None, "best_configs": "x.json"}, "'record'"),
                        ([], "not a JSON object"), ("{half", "not JSON")):
        (models / MARKER).write_text(marker if isinstance(marker, str)
                                     else json.dumps(marker))
        before = tree(models)
        with pytest.raises(UserError) as caught:
            promotion.recover(models)
        assert str(caught.value).startswith(f"{models / MARKER}: ") and why in str(caught.value)
        assert tree(models) == before


@slow
@pytest.mark.parametrize("damage", ["history", "ledger", "marker", "pending"])
def test_the_nightly_refuses_a_damaged_models_folder_before_the_sweep(tmp_path, damage):
    """Not "promotion failed" after the whole sweep ran, every night: exit 2 at the start,
    naming the file (and line), with no run folder made and the models folder untouched."""
    models = tmp_path / "models"
    models.mkdir()
    (models / HISTORY).write_text(jsonl(REJECTED))
    if damage == "history":
        (models / HISTORY).write_text(jsonl(REJECTED) + '{"decision": "demoted"}\n')
        words = (f"{models / HISTORY}, line 2: ",)
    elif damage == "ledger":
        (models / LEDGER).write_text('["abc", "2024-01-01"]\n')
        words = (f"{models / LEDGER}, line 1: ", "not a JSON object")
    elif damage == "marker":
        (models / MARKER).write_text('{"manifest_sha256": null, "best_configs": 5, '
                                     '"record": {}}')
        words = (f"{models / MARKER}: ", "'best_configs'")
    else:
        (models / promotion.PENDING).write_text('{"run": 5}')
        words = (f"{models / promotion.PENDING}: ", "naming a run folder")
    before = tree(models)
    done = run_job(nightly_env(tmp_path), str(config_file(tmp_path)))
    assert_one_clear_line(done, *words)
    assert not (tmp_path / "reports").exists()
    assert tree(models) == before


# --------------------------------------------- nothing created before a bad setting (3, 4)


@slow
def test_a_missing_credentials_variable_stops_the_night_before_anything_is_made(tmp_path):
    data = tmp_path / "btc.csv.gz"
    data.write_bytes(SAMPLE.read_bytes())
    config = config_file(tmp_path, path=str(data), update={
        "exchange": "binance", "symbol": "BTC/USDT", "interval": "1h",
        "base_url_env": "MIRROR_URL"})
    done = run_job(nightly_env(tmp_path), str(config))
    assert_one_clear_line(done, "MIRROR_URL")
    assert not (tmp_path / "reports").exists() and not (tmp_path / "models").exists()
    assert "https://" not in done.output


@pytest.mark.parametrize(("update", "url", "words"), [
    ({"base_url_env": "MIRROR_URL"}, "ftp://u:hidden-pw@127.0.0.1:1/",
     ("the environment variable MIRROR_URL", "http(s) URL")),
    ({"base_url_env": "MIRROR_URL"}, "http://u:hidden-pw@127.0.0.1:99999",
     ("the environment variable MIRROR_URL", "not a URL")),
    ({"base_url_env": "MIRROR_URL"}, "http://u:hidden-pw\u20ac@127.0.0.1:1",
     ("the environment variable MIRROR_URL", "outside Latin-1")),
    ({"exchange": "binance_typo"}, None, ("unknown exchange 'binance_typo'",)),
    ({"interval": "4h"}, None, ("holds 1h bars, not 4h",)),
])  # fmt: skip
@pytest.mark.parametrize("check", [True, False], ids=["--check", "the night"])
def test_bad_update_settings_fail_the_check_and_the_night_before_anything_is_made(
        tmp_path, monkeypatch, capsys, update, url, words, check):
    """``--check`` passed these and the night exited 2 only once its run folder existed (the
    base URL from the environment was checked only for being set; the exchange id and the
    file's interval only by the update itself)."""
    from cryptosweep.nightly.pipeline import main

    data = tmp_path / "btc.csv.gz"
    data.write_bytes(SAMPLE.read_bytes())
    where = {} if "base_url_env" in update else {"base_url": "http://127.0.0.1:9"}
    config = config_file(tmp_path, path=str(data), update={
        "exchange": "binance", "symbol": "BTC/USDT", "interval": "1h", "retries": 0,
        **where, **update})
    if url is not None:
        monkeypatch.setenv("MIRROR_URL", url)  # the update reads the process's environment
    env = nightly_env(tmp_path, **({} if url is None else {"MIRROR_URL": url}))
    rc = main(["--check", str(config)] if check else [str(config)], env=env)
    done = SimpleNamespace(rc=rc, output="".join(capsys.readouterr()))
    assert_one_clear_line(done, "data update: ", *words)
    assert "hidden-pw" not in done.output
    assert not (tmp_path / "reports").exists() and not (tmp_path / "models").exists()
    assert data.read_bytes() == SAMPLE.read_bytes()


def test_a_file_too_short_for_the_sweep_says_the_update_comes_after_the_checks(tmp_path,
                                                                               capsys):
    """A candle file of a few bars (the docs' ">= 1 bar" to start an updated file from)
    failed the night's checks every night, "invalid config or data: ... fewer than
    min_train_bars", and the update that would have grown it never ran, without a word of
    it."""
    import gzip

    from cryptosweep.nightly.pipeline import main

    data = tmp_path / "btc.csv"
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as sample:
        data.write_text("".join(sample.readlines()[:51]), encoding="utf-8")
    before = data.read_bytes()
    config = config_file(tmp_path, path=str(data), update={
        "exchange": "binance", "symbol": "BTC/USDT", "interval": "1h",
        "base_url": "http://127.0.0.1:9", "retries": 0})
    rc = main(["--check", str(config)], env=nightly_env(tmp_path))
    done = SimpleNamespace(rc=rc, output="".join(capsys.readouterr()))
    assert_one_clear_line(done, "invalid config or data: ", "min_train_bars",
                          f"run `cryptosweep data update --config {config}` first")
    assert data.read_bytes() == before and not (tmp_path / "reports").exists()


@slow
def test_the_script_takes_no_lock_and_makes_no_folder_for_a_bad_config(tmp_path):
    (tmp_path / "home").mkdir()
    env = nightly_env(tmp_path, HOME=tmp_path / "home", PATH="/usr/bin:/bin")
    done = run_job(env, str(tmp_path / "absent.yaml"), script=True)
    assert_one_clear_line(done, "absent.yaml")
    assert not (tmp_path / "reports").exists()


@slow
def test_the_script_still_answers_already_running_at_once_with_any_config(tmp_path):
    import fcntl

    (tmp_path / "home").mkdir()
    reports = tmp_path / "reports"
    reports.mkdir()
    env = nightly_env(tmp_path, HOME=tmp_path / "home", PATH="/usr/bin:/bin")
    with open(reports / ".nightly.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        done = run_job(env, str(tmp_path / "absent.yaml"), script=True)
    assert done.rc == 0 and "already running" in done.output, done.output
    assert sorted(p.name for p in reports.iterdir()) == [".nightly.lock"]


@slow
def test_a_models_folder_another_process_writes_is_already_running(tmp_path):
    """Two nightlies on one models folder from two reports folders: the shell's lock is the
    reports folder's, so both ran their champion steps into the same folder. The second now
    says so and does nothing, as for a held reports folder."""
    import fcntl

    models = tmp_path / "models"
    models.mkdir()
    with open(models / ".lock", "w") as held:
        held.write("4242\n")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        done = run_job(nightly_env(tmp_path), str(config_file(tmp_path)))
    assert done.rc == 0, done.output[-3000:]
    assert (f"already running: models folder {models} is in use: process 4242 is writing it"
            in done.output)
    assert not (tmp_path / "reports").exists()
    assert [p.name for p in models.iterdir()] == [".lock"]


@slow
@pytest.mark.parametrize("setting", ["RUN_RETENTION", "LOG_RETENTION_DAYS", "SWEEP_SEED"])
def test_superscript_digits_are_not_a_number(tmp_path, setting):
    done = run_job(nightly_env(tmp_path, **{setting: "²"}), str(config_file(tmp_path)))
    assert_one_clear_line(done, f"{setting} must be a whole number, got '²'")
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("text", ["-3", "\uff17", "1_2", "3.0", "1e3"])
def test_whole_number_settings_are_ascii_digits(tmp_path, text):
    """The settings read as whole numbers take ASCII digits only, as the CLI's flags do (one
    rule, core.strict.whole_number): '１_2' is not 12, '-3' days keeps no log."""
    from cryptosweep.nightly.pipeline import NightlyFailure, Settings

    for setting in ("RUN_RETENTION", "LOG_RETENTION_DAYS", "SWEEP_TIMEOUT", "SWEEP_SEED"):
        env = {setting: text, "REPORTS_DIR": str(tmp_path / "r"), "MODELS_DIR": str(tmp_path)}
        with pytest.raises(NightlyFailure, match=f"{setting} must be a whole number, got "):
            Settings.from_environment(env, str(tmp_path / "c.yaml"))
    settings = Settings.from_environment({"RUN_RETENTION": " 7 ", "SWEEP_SEED": "0"}, "c.yaml")
    assert (settings.run_retention, settings.seed) == (7, 0)


@slow
@pytest.mark.parametrize("setting", ["REPORTS_DIR", "MODELS_DIR"])
@pytest.mark.parametrize("where", ["the file", "under the file"])
def test_a_folder_setting_that_is_a_file_is_one_line_before_anything_is_made(tmp_path, setting,
                                                                              where):
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    target = afile if where == "the file" else afile / "sub"
    done = run_job(nightly_env(tmp_path, **{setting: target}), str(config_file(tmp_path)))
    assert_one_clear_line(done, f"{setting}={target}: ", "is a file, not a folder")
    assert afile.read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "tiny.json"]


@slow
def test_a_config_validate_refuses_stops_the_night_before_anything_is_made(tmp_path):
    """The night checked its config with a few of `cryptosweep validate`'s checks only: a
    holding period longer than the holdout (which validate refuses, exit 2) passed --check
    ("check: ok") and the night made its run folder and models folder before the sweep
    notebook failed on it (a new user's config). Now one line, exit 2, nothing made, with
    --check too."""
    config = config_file(tmp_path, holdout_fraction=0.002)  # 19 bars; holding up to 24
    for args in (["--check", str(config)], [str(config)]):
        done = run_job(nightly_env(tmp_path), *args)
        assert_one_clear_line(done, "invalid config or data: ",
                              "parameter_ranges.trading.holding_period: up to 24 bars, "
                              "longer than the holdout (19 bars")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.json"]


@slow
def test_check_only_makes_the_checks_and_creates_nothing(tmp_path):
    done = run_job(nightly_env(tmp_path), "--check", str(config_file(tmp_path)))
    assert done.rc == 0, done.output[-3000:]
    assert "check: ok" in done.output and not errors(done.output)
    by_script = run_job(nightly_env(tmp_path), "--check", str(config_file(tmp_path)),
                        script=True)
    assert by_script.rc == 0 and "check: ok" in by_script.output, by_script.output[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.json"]


def test_a_ledger_the_sweep_cannot_write_stops_the_night_before_anything_is_made(tmp_path):
    """deployment.ledger a CSV file: the sweep ran, then its end died on sqlite3's "file is
    not a database"; now the night's own checks say so before any folder exists."""
    ledger = tmp_path / "prices.csv"
    ledger.write_text("not a database\n")
    config = json.loads(config_file(tmp_path).read_text())
    config["deployment"] = {**config.get("deployment", {}), "ledger": str(ledger)}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(config))
    done = run_job(nightly_env(tmp_path), str(path))
    assert_one_clear_line(done, "deployment.ledger", "is not a SQLite database")
    assert not (tmp_path / "reports").exists() and not (tmp_path / "models").exists()
    assert ledger.read_text() == "not a database\n"


@slow
def test_a_malformed_gpu_ids_is_refused_before_the_models_folder_is_made(tmp_path):
    """GPU_IDS was read only once the night held the models folder: ``--check`` passed it and
    the night made ``MODELS_DIR`` and its lock (and ran the recovery) before exit 2."""
    from cryptosweep.nightly.pipeline import NightlyFailure, Settings

    config = str(config_file(tmp_path))
    for args in (("--check", config), (config,)):
        done = run_job(nightly_env(tmp_path, GPU_IDS="a,b"), *args, script=True)
        assert_one_clear_line(done, "GPU_IDS: expected ", repr("a,b"))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.json"]
    env = {"REPORTS_DIR": str(tmp_path / "r"), "MODELS_DIR": str(tmp_path / "m")}
    for gpu_ids in ("0,0", "-1"):  # with the other settings, as "a,b" above
        with pytest.raises(NightlyFailure, match="GPU_IDS: "):
            Settings.from_environment({**env, "GPU_IDS": gpu_ids}, config)


def test_a_retention_beyond_a_float_of_seconds_is_refused(tmp_path):
    """LOG_RETENTION_DAYS of 400 digits passed the check, the sweep ran, and every night's
    housekeeping then failed ("int too large to convert to float"): nothing compressed or
    deleted, a warning only."""
    from cryptosweep.nightly.pipeline import NightlyFailure, Settings

    env = {"REPORTS_DIR": str(tmp_path / "r"), "MODELS_DIR": str(tmp_path / "m")}
    for text in ("9" * 400, "36501"):
        with pytest.raises(NightlyFailure, match="LOG_RETENTION_DAYS must be at most 36500"):
            Settings.from_environment({**env, "LOG_RETENTION_DAYS": text}, "c.yaml")
    settings = Settings.from_environment({**env, "LOG_RETENTION_DAYS": "36500"}, "c.yaml")
    assert settings.log_retention_days == 36500
    from cryptosweep.nightly.retention import housekeep

    assert housekeep(tmp_path / "r", settings.log_retention_days, 30) == []


@slow
def test_a_reports_dir_under_home_is_the_home_folders_for_the_lock_and_the_night(tmp_path):
    """REPORTS_DIR=~/reports (cron does not expand ``~``): the shell took it for
    ``<repo>/~/reports``, made that folder in the repository and locked it there, while
    ``--check`` and MODELS_DIR=~/... took the home folder's. Now the lock a running night holds
    in ``$HOME/reports`` answers "already running", and nothing is made in the repository."""
    import fcntl

    home = tmp_path / "home"
    (home / "reports").mkdir(parents=True)
    env = nightly_env(tmp_path, HOME=home, REPORTS_DIR="~/reports")
    check = run_job(env, "--check", str(config_file(tmp_path)), script=True)
    assert f"reports {home / 'reports'}," in check.output, check.output[-3000:]
    with open(home / "reports" / ".nightly.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = run_job(env, str(tmp_path / "absent.json"), script=True)
    assert done.rc == 0 and "already running" in done.output, done.output[-3000:]
    assert str(home / "reports" / ".nightly.lock") in done.output
    assert not (REPO / "~").exists()


def test_a_log_compressed_twice_keeps_both_parts(tmp_path):
    """A run's log gzipped, then written again (the run resumed by hand) and gzipped again:
    the second .gz replaced the first, and the earlier nights' lines were gone."""
    import gzip
    import time

    from cryptosweep.nightly.retention import housekeep

    reports = tmp_path / "reports"
    run = reports / "nightly_20260101_000000"
    run.mkdir(parents=True)
    log = run / "sweep_output.log"
    for text in ("the first night\n", "resumed by hand\n"):
        log.write_text(text)
        then = time.time() - 20 * 86400
        os.utime(log, (then, then))
        assert housekeep(reports, 14, 30) == [
            "INFO retention: compressed nightly_20260101_000000/sweep_output.log.gz (older "
            "than 14 days)"]
        assert not log.exists()
    with gzip.open(run / "sweep_output.log.gz", "rt") as compressed:
        assert compressed.read() == "the first night\nresumed by hand\n"


@slow
@pytest.mark.parametrize(("setting", "args", "words"), [
    ({}, ("",), "CONFIG: expected a path, got an empty one ('')"),
    ({}, ("--check", " "), "CONFIG: expected a path, got an empty one (' ')"),
    ({"SWEEP_CONFIG": "  "}, (), "SWEEP_CONFIG: expected a path, got an empty one ('  ')"),
], ids=["empty argument", "blank argument to --check", "blank SWEEP_CONFIG"])
def test_an_empty_config_is_one_line_not_the_template(tmp_path, setting, args, words):
    """``nightly_sweep.sh "$CONFIG"`` with CONFIG unset ran the template config without a
    word; a blank SWEEP_CONFIG ended in a traceback."""
    done = run_job(nightly_env(tmp_path, **setting), *args, script=True)
    assert_one_clear_line(done, words)
    assert list(tmp_path.iterdir()) == []


def test_retention_keeps_a_run_another_process_is_writing(tmp_path):
    """A failed run beyond RUN_RETENTION that ``cryptosweep run --resume`` is writing (its
    journal still says failed) was deleted from under it."""
    import fcntl

    from cryptosweep.nightly.retention import housekeep
    from tests.nightly.test_pipeline import fake_run

    reports = tmp_path / "reports"
    old = fake_run(reports, "nightly_20260101_000000", "failed")
    gone = fake_run(reports, "nightly_20260102_000000", "failed")
    fake_run(reports, "nightly_20260103_000000", "complete", results=True, report=True)
    with open(old / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        lines = housekeep(reports, 14, 1)
    assert "INFO retention: kept nightly_20260101_000000: another process is writing it" in lines
    assert (old / "sweep.db").is_file() and not gone.exists()


@slow
def test_a_sweep_past_sweep_timeout_is_exit_4_and_resumed_the_next_night(tmp_path):
    """SWEEP_TIMEOUT ran out: nbclient's CellTimeoutError ended the night as "stopped
    unexpectedly", exit 1 with a traceback, instead of exit 4 and a resume the next night.
    Nothing the timeout interrupted is recorded as a failed evaluation."""
    import sqlite3

    from cryptosweep.nightly.runs import plan_run

    config = tiny_config(random__n_trials=300, objective__rounds_per_unit=3)  # a minute
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    done = run_job(nightly_env(tmp_path, SWEEP_TIMEOUT=4), str(path), script=True)
    assert done.rc == 4, done.output[-3000:]
    # (The kernel, shut down while it answers the interrupted cell, may print ZMQ's
    # "Socket operation on non-socket" traceback on stderr: ipykernel's, not the job's.)
    assert "nightly job failed" not in done.output, done.output[-3000:]
    lines = errors(done.output)
    assert len(lines) == 1, done.output[-3000:]
    assert "sweep timed out: a notebook cell ran past SWEEP_TIMEOUT=4 s" in lines[0]
    [run] = (tmp_path / "reports").glob("nightly_*")
    if (run / "sweep.db").is_file():  # else the kernel's imports took the 4 s (a busy host)
        conn = sqlite3.connect(f"file:{run / 'sweep.db'}?mode=ro", uri=True)
        statuses = {row[0] for row in conn.execute("SELECT status FROM evaluations")}
        conn.close()
        assert "failed" not in statuses
        assert "the next nightly continues it" in lines[0]
        seed = config.get("seed", 123456)
        assert plan_run(tmp_path / "reports", path, seed).mode == "resume"


@pytest.mark.parametrize(
    ("reports", "models", "refused"),
    [
        ("r", "r/nightly_20200101_020000/m", "MODELS_DIR="),  # a run folder: retention
        ("r", "r/nightly_models", "MODELS_DIR="),  # its prefix
        ("r", "r/latest/m", "MODELS_DIR="),  # the link replaced every night
        ("m/champion", "m", "REPORTS_DIR="),  # moved to champion.prev, then deleted
        ("m/demoted/r", "m", "REPORTS_DIR="),
        ("m/.champion.train-7", "m", "REPORTS_DIR="),
        ("r", "r", None),
        ("r", "r/models", None),
        ("m/reports", "m", None),  # harmless
    ],
)
def test_a_models_folder_inside_a_run_folder_or_reports_inside_the_champion_is_refused(
    tmp_path, reports, models, refused
):
    """MODELS_DIR=reports/nightly_models was taken for the newest run folder: every night
    started a new run instead of resuming a killed one, and RUN_RETENTION deleted it with the
    champion and the trial ledger (shown below). Now such a layout is one line, exit 2, before
    anything is made; folders beside each other's entries stay allowed."""
    from cryptosweep.nightly.pipeline import NightlyFailure, Settings
    from cryptosweep.nightly.retention import housekeep

    env = {"REPORTS_DIR": str(tmp_path / reports), "MODELS_DIR": str(tmp_path / models)}
    if refused is None:
        settings = Settings.from_environment(env, "c.yaml")
        assert settings.models_dir == tmp_path / models
        return
    with pytest.raises(NightlyFailure, match=f"^{refused}") as caught:
        Settings.from_environment(env, "c.yaml")
    assert caught.value.exit_code == 2 and "\n" not in caught.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    if models == "r/nightly_20200101_020000/m":  # what the night did with it
        (tmp_path / models / "champion").mkdir(parents=True)
        (tmp_path / models / "trials.db").write_text("the ledger")
        assert housekeep(tmp_path / reports, 14, 0)
        assert not (tmp_path / models).exists()


@pytest.mark.parametrize("name", ["REPORTS_DIR", "MODELS_DIR"])
def test_a_folder_variable_with_white_space_around_it_is_refused(tmp_path, name):
    """REPORTS_DIR=" /srv/x" (a space after '=') was a relative path: the night made a folder
    named " " in the repository and wrote its runs there, without a word."""
    from cryptosweep.nightly.pipeline import NightlyFailure, Settings

    env = {"REPORTS_DIR": str(tmp_path / "r"), "MODELS_DIR": str(tmp_path / "m")}
    env[name] = " " + env[name]
    with pytest.raises(NightlyFailure, match=f"^{name}=' /") as caught:
        Settings.from_environment(env, "c.yaml")
    assert caught.value.exit_code == 2 and "white space" in caught.value.message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("name", "kind"), [("latest", "folder"), ("latest", "file"),
                                            ("index.html", "folder")])
def test_a_latest_or_index_in_the_way_is_refused_before_the_night(tmp_path, capsys, name,
                                                                   kind):
    """reports/latest a folder (a user's, not the night's link): the whole sweep and report
    ran, then "publishing latest failed: [Errno 21] ... '.latest.<pid>.tmp' -> 'latest'", exit
    5, and the champion step never ran: an approved winner was never deployed, every night.
    A file named latest was replaced without a word; index.html a folder failed the report.
    Now one line, exit 2, before anything is made or changed."""
    from cryptosweep.nightly.pipeline import main

    reports = tmp_path / "reports"
    reports.mkdir()
    if kind == "folder":
        (reports / name).mkdir()
        (reports / name / "notes.txt").write_text("mine\n")
    else:
        (reports / name).write_text("mine\n")
    before = tree(tmp_path)
    env = {"REPORTS_DIR": str(reports), "MODELS_DIR": str(tmp_path / "models"),
           "GPU_POLICY": "use"}
    assert main([str(config_file(tmp_path))], env) == 2
    out = capsys.readouterr().out
    lines = errors(out)
    assert len(lines) == 1 and "Traceback" not in out, out
    assert f"REPORTS_DIR={reports}: {reports / name} is a {kind}" in lines[0]
    assert "move it away" in lines[0]
    assert tree(tmp_path) == {**before, "tiny.json": (tmp_path / "tiny.json").read_bytes()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports", "tiny.json"]


def _ledger(path: Path, damage: str) -> None:
    """A trial ledger with one row, then damaged as ``damage`` says."""
    import sqlite3

    from cryptosweep.records.ledger import LedgerTrial, Market, TrialLedger

    path.parent.mkdir(parents=True, exist_ok=True)
    if damage == "another database":  # a run's journal named as the ledger
        conn = sqlite3.connect(path)
        conn.executescript("CREATE TABLE meta (key TEXT, value TEXT); "
                           "CREATE TABLE evaluations (eval_id INTEGER);")
        conn.close()
        return
    with TrialLedger(path) as ledger:
        ledger.record_trials("nightly_1", Market("btc.csv@1h", "2021-01-01", "2021-06-01"),
                             [LedgerTrial("search", f"eval:{n}", f"c{n}", n, 1.0, 0.1 * n)
                              for n in range(400)])
    if damage == "truncated":  # checkpointed on close: the rows are in the main file
        with open(path, "r+b") as file:
            file.truncate(path.stat().st_size // 2)
    elif damage == "an older layout":
        conn = sqlite3.connect(path)
        conn.execute("ALTER TABLE trials DROP COLUMN sharpe")
        conn.close()


@pytest.mark.parametrize(("damage", "words"), [
    ("truncated", "is damaged (database disk image is malformed): restore it from a backup"),
    ("another database", "is another SQLite database (tables evaluations, meta), not a trial "
                         "ledger"),
    ("an older layout", "is not a trial ledger this version reads: its table trials has no "
                        "column sharpe"),
    ("none", None),
])
def test_a_damaged_trial_ledger_is_refused_by_the_check_not_blamed_on_the_machine(
        tmp_path, capsys, damage, words):
    """models/trials.db damaged by hand (its header intact): --check said ok, the night made
    its run folder and the sweep failed on it with "InfrastructureError: the machine failed
    the sweep: the trial ledger ... could not be opened (database disk image is malformed)
    ... fix the cause (free disk space)", exit 6, every night. Another SQLite file had the
    ledger's tables written into it. Now the check names the file, exit 2, and reads it only."""
    from cryptosweep.nightly.pipeline import main

    ledger = tmp_path / "models" / "trials.db"
    _ledger(ledger, damage)
    before = tree(tmp_path / "models")
    env = {"REPORTS_DIR": str(tmp_path / "reports"), "MODELS_DIR": str(tmp_path / "models"),
           "GPU_POLICY": "use"}
    code = main(["--check", str(config_file(tmp_path))], env)
    out = capsys.readouterr().out
    assert tree(tmp_path / "models") == before and not (tmp_path / "reports").exists()
    if words is None:
        assert code == 0 and "check: ok" in out, out
        return
    assert code == 2 and "Traceback" not in out, out
    (line,) = errors(out)
    assert f"{ledger} {words}" in line


def test_a_run_folder_whose_deletion_a_kill_stopped_is_deleted_the_next_night(tmp_path,
                                                                               monkeypatch):
    """Killed while the retention deleted a finished run (here after its results file): the
    folder was left with its journal saying complete and no results, which no later night
    deleted (kept as unfinished, for ever). The folder is now renamed out of sight first, and
    what a kill leaves is removed the next night."""
    import shutil as real_shutil

    from cryptosweep.nightly import retention
    from cryptosweep.nightly.runs import scan_runs
    from tests.nightly.test_pipeline import fake_run

    reports = tmp_path / "reports"
    old = fake_run(reports, "nightly_20260101_000000", "complete", results=True, report=True)
    fake_run(reports, "nightly_20260102_000000", "complete", results=True, report=True)
    rmtree = real_shutil.rmtree

    def killed(path: Any, *args: Any, **kwargs: Any) -> None:
        for results in Path(path).glob("sweep_results_*.json"):
            results.unlink()  # the first entries went, then the kill
        raise KeyboardInterrupt

    monkeypatch.setattr(retention.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        retention.housekeep(reports, 14, 1)
    monkeypatch.setattr(retention.shutil, "rmtree", rmtree)
    assert not old.exists()  # out of the runs' sight
    assert [run.path.name for run in scan_runs(reports)] == ["nightly_20260102_000000"]
    retention.housekeep(reports, 14, 1)
    assert sorted(p.name for p in reports.iterdir()) == ["nightly_20260102_000000"]


@slow
def test_a_reports_folder_that_cannot_be_locked_is_not_already_running(tmp_path):
    """On a file system without flock ("No locks available", flock exit 71) the script's
    `flock -n 9 || already_running` said "already running (lock ... is held); nothing to do",
    exit 0, every night, and nothing ran. The script runs here from a copy of the repository
    whose venv holds a flock that fails so (and a python that is this one)."""
    repo = tmp_path / "repo"
    (repo / "scheduled").mkdir(parents=True)
    script = repo / "scheduled" / "nightly_sweep.sh"
    shutil.copy2(SCRIPT, script)
    bin_dir = repo / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, body in (("python", f'exec {sys.executable} "$@"'),
                       ("flock", 'echo "flock: 9: No locks available" >&2; exit 71')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = nightly_env(tmp_path, PYTHONPATH=str(REPO / "lib"))
    done = subprocess.run([str(script), str(config_file(tmp_path))], env=env, cwd="/",
                          capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 6, output
    assert "already running" not in output
    (line,) = errors(output)
    assert f"cannot lock {tmp_path / 'reports' / '.nightly.lock'} (flock exit 71)" in line


@slow
def test_a_lock_file_that_cannot_be_opened_is_one_line_and_exit_2(tmp_path):
    """reports/.nightly.lock a folder (or a file another user made, not writable): the script
    ended in bash's own "Is a directory", exit 1. Now one ERROR line naming the lock, exit 2."""
    lock = tmp_path / "reports" / ".nightly.lock"
    lock.mkdir(parents=True)
    done = run_job(nightly_env(tmp_path), str(config_file(tmp_path)), script=True)
    assert done.rc == 2, done.output[-3000:]
    (line,) = errors(done.output)
    assert f"cannot open the lock file {lock} for writing" in line
    assert "Is a directory" not in done.output, done.output  # (bash's own line, beside it)
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [".nightly.lock"]


def test_a_log_whose_removal_a_kill_stopped_is_not_compressed_twice(tmp_path, monkeypatch):
    """Killed between writing sweep_output.log.gz and removing the log: the next night
    appended the log to the .gz a second time (every line of it twice)."""
    import gzip
    import time
    from pathlib import Path as RealPath

    from cryptosweep.nightly.retention import housekeep

    run = tmp_path / "reports" / "nightly_20260101_000000"
    run.mkdir(parents=True)
    log = run / "sweep_output.log"
    log.write_text("the first night\n")
    then = time.time() - 20 * 86400
    os.utime(log, (then, then))
    unlink = RealPath.unlink

    def killed(self: Path, missing_ok: bool = False) -> None:
        if self.name == "sweep_output.log":
            raise KeyboardInterrupt
        unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(RealPath, "unlink", killed)
    with pytest.raises(KeyboardInterrupt):
        housekeep(tmp_path / "reports", 14, 30)
    monkeypatch.setattr(RealPath, "unlink", unlink)
    assert log.exists() and (run / "sweep_output.log.gz").exists()
    housekeep(tmp_path / "reports", 14, 30)
    assert not log.exists()
    with gzip.open(run / "sweep_output.log.gz", "rt") as compressed:
        assert compressed.read() == "the first night\n"
