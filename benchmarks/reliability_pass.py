"""The adversarial pass of issue #13, re-run: bad configs and flags, bad data files, kills and
resumes, damaged journals, concurrent writers, a full disk, broken notifiers and scheduler
addresses that are not schedulers, each tried against the real ``cryptosweep`` command.

Every case is a fresh process with a time limit and an expectation, and ends in one verdict:

- ``clean``: what the README promises (bad input: exit 2, one ``cryptosweep: error:`` line,
  nothing created; a full disk: exit 6; a resume: the uninterrupted run's bytes);
- ``traceback``: a Python traceback on the way out (or exit 1);
- ``hang``: still running at the time limit (killed);
- ``silent``: exit 0 where the input could not give a right result, or a result that differs
  from the uninterrupted run's;
- ``other``: anything else (the wrong exit code, several lines, a folder left behind).

    .venv/bin/python benchmarks/reliability_pass.py [--jobs 2] [--json out.json]

prints a Markdown table per category (the figures of ``docs/reliability.md``) and every case
that was not clean. About 30 minutes on two cores with ``--jobs 1`` (the measured figures:
``docs/reliability.md``).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

from tests.support import deterministic_bytes, done_count, tiny_config  # noqa: E402

from machine import machine  # noqa: E402

VERDICTS = ("clean", "traceback", "hang", "silent", "other")


@dataclass
class Case:
    category: str
    name: str
    run: Callable[[Path], str]  # the case's own folder -> verdict
    detail: str = ""


@dataclass
class Outcome:
    category: str
    name: str
    verdict: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Done:
    rc: int | None
    stdout: str
    stderr: str
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def cryptosweep(*args: str, timeout: float = 90, cwd: Path | None = None,
                env: dict[str, str] | None = None) -> Done:
    """``python -m cryptosweep ARGS`` in its own process group, killed at ``timeout``."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "cryptosweep", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, errors="replace", cwd=cwd, start_new_session=True,
        env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"})
    try:
        out, err = process.communicate(timeout=timeout)
        rc: int | None = process.returncode
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        rc = None
    return Done(rc, out, err, time.monotonic() - started)


def judge(done: Done, expect: int, created: Path | None = None) -> tuple[str, str]:
    """The verdict of a command that should fail with ``expect`` (2, 6) in one line, leaving
    ``created`` absent."""
    last = done.stderr.strip().splitlines()[-1:] or [""]
    if done.rc is None:
        return "hang", f"killed after {done.seconds:.0f} s"
    if "Traceback (most recent call last)" in done.stderr + done.stdout or done.rc == 1:
        tail = [line for line in done.stderr.strip().splitlines() if line.strip()][-1:]
        return "traceback", tail[0][:200] if tail else ""
    if done.rc == 0:
        return "silent", "exit 0"
    errors = [line for line in done.stderr.splitlines() if line.startswith("cryptosweep: ")]
    if done.rc != expect or len(errors) != 1 or not last[0].startswith("cryptosweep: "):
        return "other", f"exit {done.rc}: {last[0][:200]}"
    if created is not None and created.exists():
        return "other", f"left {created.name} behind: {last[0][:160]}"
    return "clean", last[0][:200]


def write_yaml(path: Path, config: Any) -> Path:
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def changed(**changes: Any) -> dict[str, Any]:
    return tiny_config(**changes)


def without(*dotted: str) -> dict[str, Any]:
    config = tiny_config()
    for key in dotted:
        node = config
        *parents, last = key.split(".")
        for part in parents:
            node = node[part]
        node.pop(last)
    return config


def with_range(family: str, **dims: Any) -> dict[str, Any]:
    config = tiny_config()
    if family != "lightgbm":
        config["objective"]["models"] = [family]
        config["parameter_ranges"].pop("lightgbm")
        config["parameter_ranges"][family] = {}
    config["parameter_ranges"][family].update(dims)
    return config


def trading(**dims: Any) -> dict[str, Any]:
    config = tiny_config()
    for key, value in dims.items():
        if value is None:
            config["parameter_ranges"]["trading"].pop(key)
        else:
            config["parameter_ranges"]["trading"][key] = value
    return config


FLOAT = {"type": "float", "low": 0.1, "high": 0.2}
INT = {"type": "int", "low": 4, "high": 8}


# ------------------------------------------------------------------------- bad configs


def config_cases() -> list[tuple[str, Any]]:
    """(name, config dict or raw bytes with a suffix) for configs that cannot run."""
    cases: list[tuple[str, Any]] = []
    counts = {"random.n_trials": 1, "hyperband.iterations": 1, "hyperband.max_iter": 1,
              "grid.points": 1, "grid.max_trials": 1, "bayesian.n_trials": 1,
              "bayesian.batch_size": 1, "objective.folds": 1, "objective.min_train_bars": 10,
              "reporting.top_k": 1, "gpu_settings.trials_per_gpu": 1, "full_budget": 1,
              "objective.threads_per_trial": 1}
    bounded = {"random.n_trials", "hyperband.iterations", "hyperband.max_iter", "grid.points",
               "bayesian.n_trials", "full_budget", "objective.threads_per_trial",
               "objective.folds", "objective.min_train_bars"}
    for key, minimum in counts.items():
        values: list[Any] = ["many", True, 2.5, minimum - 1, [3]]
        if key in bounded:
            values.append(10**30)
        for value in values:
            cases.append((f"{key}={value!r}", changed(**{key.replace(".", "__"): value})))
    floats = {"objective.fees_bps": -1.0, "objective.slippage_bps": -0.5,
              "objective.rounds_per_unit": 0.0, "data.holdout_fraction": 0.95,
              "execution.max_failure_fraction": 1.5, "gpu_settings.memory_fraction": 0.0,
              "execution.trial_timeout": -3.0}
    for key, bad in floats.items():
        for value in ("lots", True, bad, float("nan")):
            cases.append((f"{key}={value!r}", changed(**{key.replace(".", "__"): value})))
    for key in ("sweep_type", "objective.metric", "objective.labels", "hyperband.sampler",
                "bayesian.sampler", "data.format", "data.timestamp_unit"):
        for value in ("bogus", 3):
            cases.append((f"{key}={value!r}", changed(**{key.replace(".", "__"): value})))
    for key in ("objective.allow_short", "gpu_settings.deterministic",
                "hyperband.continue_training"):
        cases.append((f"{key}='maybe'", changed(**{key.replace(".", "__"): "maybe"})))
    for key in ("random.n_trails", "objective.metrik", "sweeptype", "data.pth",
                "execution.wokers", "reporting.topk", "hyperband.max_iters", "grid.point"):
        cases.append((f"unknown key {key}", changed(**{key.replace(".", "__"): 1})))
    dims = {
        "low > high": {"type": "float", "low": 0.3, "high": 0.1},
        "log with low 0": {"type": "float", "low": 0.0, "high": 0.1, "log": True},
        "no type": {"low": 0.1, "high": 0.2},
        "unknown type": {"type": "normal", "low": 0.1, "high": 0.2},
        "empty choices": {"type": "categorical", "choices": []},
        "duplicate choices": {"type": "categorical", "choices": [1, 1]},
        "negative step": {"type": "float", "low": 0.1, "high": 0.2, "step": -0.1},
        "step with log": {"type": "float", "low": 0.1, "high": 0.2, "step": 0.01, "log": True},
        "string bound": {"type": "float", "low": "a", "high": 0.2},
        "fractional int bound": {"type": "int", "low": 4.5, "high": 8},
        "infinite bound": {"type": "float", "low": 0.1, "high": float("inf")},
        "unknown dimension key": {"type": "float", "low": 0.1, "high": 0.2, "prior": "x"},
    }
    for name, dim in dims.items():
        cases.append((f"dimension: {name}", with_range("lightgbm", learning_rate=dim)))
    cases += [
        ("trading: empty block", changed(parameter_ranges__trading={})),
        ("trading: no threshold", trading(threshold=None)),
        ("trading: no holding_period", trading(holding_period=None)),
        ("trading: no stop_loss", trading(stop_loss=None)),
        ("trading: no take_profit", trading(take_profit=None)),
        ("trading: unknown key", trading(stop_los=FLOAT)),
        ("trading: negative stop_loss", trading(stop_loss={"type": "float", "low": -0.1,
                                                           "high": 0.1})),
        ("trading: stop_loss of 1", trading(stop_loss={"type": "float", "low": 0.5,
                                                       "high": 1.0})),
        ("trading: threshold 0", trading(threshold={"type": "float", "low": 0.0, "high": 0.6})),
        ("trading: threshold 1.5", trading(threshold={"type": "float", "low": 0.5,
                                                      "high": 1.5})),
        ("trading: holding_period 0", trading(holding_period={"type": "int", "low": 0,
                                                              "high": 4})),
        ("trading: holding_period float", trading(holding_period=FLOAT)),
        ("trading: take_profit 0", trading(take_profit={"type": "float", "low": 0.0,
                                                        "high": 0.1})),
        ("trading: string choices", trading(threshold={"type": "categorical",
                                                       "choices": ["high"]})),
        ("lightgbm: num_leavs", with_range("lightgbm", num_leavs=INT)),
        ("lightgbm: reserved seed", with_range("lightgbm", seed=INT)),
        ("lightgbm: reserved n_estimators", with_range("lightgbm", n_estimators=INT)),
        ("lightgbm: boosting bogus", with_range("lightgbm", boosting={
            "type": "categorical", "choices": ["gbdt", "bogus"]})),
        ("lightgbm: num_leaves 1", with_range("lightgbm", num_leaves={
            "type": "int", "low": 1, "high": 8})),
        ("lightgbm: feature_fraction 0", with_range("lightgbm", feature_fraction={
            "type": "float", "low": 0.0, "high": 0.5})),
        ("xgboost: max_dept", with_range("xgboost", max_dept=INT)),
        ("xgboost: booster foo", with_range("xgboost", booster={"type": "categorical",
                                                                "choices": ["foo"]})),
        ("xgboost: max_depth -1", with_range("xgboost", max_depth={"type": "int", "low": -1,
                                                                   "high": 4})),
        ("catboost: deph", with_range("catboost", deph=INT)),
        ("catboost: depth 20", with_range("catboost", depth={"type": "int", "low": 4,
                                                             "high": 20})),
        ("catboost: boosting_type X", with_range("catboost", boosting_type={
            "type": "categorical", "choices": ["X"]})),
        ("torch: hidden", with_range("torch", hidden=INT)),
        ("torch: hidden_units 0", with_range("torch", hidden_units={"type": "int", "low": 0,
                                                                    "high": 8})),
        ("models: family without ranges", changed(objective__models=["xgboost"])),
        ("models: unknown family", changed(objective__models=["randomforest"])),
        ("models: duplicate family", changed(objective__models=["lightgbm", "lightgbm"])),
        ("models: empty", changed(objective__models=[])),
        ("parameter_ranges: unknown family", changed(parameter_ranges__forest={})),
        ("no parameter_ranges", without("parameter_ranges")),
        ("sizes: hyperband max_iter 1e9", changed(sweep_type="hyperband",
                                                  hyperband__max_iter=10**9)),
        ("sizes: hyperband iterations 1e12", changed(sweep_type="hyperband",
                                                     hyperband__iterations=10**12)),
        ("sizes: random n_trials 1e12 (float)", changed(random__n_trials=1e12)),
        ("sizes: grid of 1e6 points", changed(sweep_type="grid", grid__points=10**6)),
        ("sizes: grid past max_trials", changed(sweep_type="grid", grid__points=30,
                                                grid__max_trials=10)),
        ("sizes: full_budget x rounds", changed(full_budget=10**5, objective__rounds_per_unit=50,
                                                hyperband__max_iter=10**5)),
        ("seed 2**64", changed(seed=2**64)),
        ("seed -1", changed(seed=-1)),
        ("seed 'abc'", changed(seed="abc")),
        ("threads_per_trial 1000", changed(objective__threads_per_trial=1000)),
        ("name with a slash", changed(name="a/b")),
        ("folds that do not fit", changed(objective__folds=50, objective__min_train_bars=5000)),
    ]
    files: list[tuple[str, bytes, str]] = [
        ("file: Latin-1", "name: caf\xe9\n".encode("latin-1"), ".yaml"),
        ("file: UTF-16", yaml.safe_dump(tiny_config()).encode("utf-16"), ".yaml"),
        ("file: deep YAML", ("a: " + "[" * 5000 + "]" * 5000).encode(), ".yaml"),
        ("file: deep JSON", ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}").encode(), ".json"),
        ("file: duplicate YAML key", yaml.safe_dump(tiny_config()).encode() + b"name: again\n",
         ".yaml"),
        ("file: duplicate JSON key", b'{"name": "a", "name": "b"}', ".json"),
        ("file: impossible YAML date", b"name: 2024-13-45\n", ".yaml"),
        ("file: 5000-digit integer", b'{"seed": ' + b"9" * 5000 + b"}", ".json"),
        ("file: python tag", b"name: !!python/object/apply:os.system ['true']\n", ".yaml"),
        ("file: a list at the top", b"- 1\n- 2\n", ".yaml"),
        ("file: empty", b"", ".yaml"),
        ("file: binary garbage", bytes(range(256)) * 8, ".yaml"),
        ("file: unknown extension", b"name: x\n", ".toml"),
        ("file: malformed JSON", b'{"name": "x",}', ".json"),
        ("file: malformed YAML", b"random:\n  n_trials: [1, 2\n", ".yaml"),
        ("file: billion laughs", b"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
         b"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
         b"e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
         b"description: *f\n", ".yaml"),
    ]
    cases += [(name, (data, suffix)) for name, data, suffix in files]
    return cases


def config_case(name: str, config: Any) -> Case:
    def run(folder: Path) -> str:
        if isinstance(config, tuple):
            data, suffix = config
            path = folder / f"sweep{suffix}"
            path.write_bytes(data)
        else:
            path = write_yaml(folder / "sweep.yaml", config)
        logs = folder / "logs"
        done = cryptosweep("run", "--config", str(path), "--log-dir", str(logs), "--workers",
                           "0", "--no-progress", timeout=120)
        verdict, detail = judge(done, 2, logs)
        return f"{verdict}\t{detail}"

    return Case("configs and flags", name, run)


def flag_cases(tiny: Path) -> list[Case]:
    flags = [
        ("--seed -1", ["--seed", "-1"]), ("--seed 2**64", ["--seed", str(2**64)]),
        ("--seed abc", ["--seed", "abc"]), ("--workers -1", ["--workers", "-1"]),
        ("--workers x", ["--workers", "x"]), ("--gpu-ids x", ["--gpu-ids", "x"]),
        ("--gpu-ids 0,0", ["--gpu-ids", "0,0"]), ("--set without =", ["--set", "a.b"]),
        ("--set unknown key", ["--set", "objective.fee_bps=3"]),
        ("--set deep value", ["--set", "x=" + "[" * 3000 + "]" * 3000]),
        ("--set into a scalar", ["--set", "seed.x=1"]),
        ("--run-name ../../escape", ["--run-name", "../../escape"]),
        ("--run-name absolute", ["--run-name", "/tmp/cryptosweep-escape"]),
        ("--run-name newline", ["--run-name", "a\nb"]), ("--run-name ..", ["--run-name", ".."]),
        ("--run-name empty", ["--run-name", ""]),
        ("--log-dir under /proc", ["--log-dir", "/proc/cryptosweep"]),
        ("--data missing", ["--data", "/nonexistent/candles.csv"]),
        ("--resume nowhere", ["--resume", "/nonexistent/run"]),
        ("--scheduler-address nonsense", ["--scheduler-address", "nonsense"]),
        ("--scheduler-address http://", ["--scheduler-address", "http://127.0.0.1:8786"]),
        ("--scheduler-address refused", ["--scheduler-address", "tcp://127.0.0.1:9"]),
        ("--log-level bogus", ["--log-level", "bogus"]), ("unknown flag", ["--frobnicate"]),
        ("no --config", ["--config"]),
    ]
    cases = []
    for name, extra in flags:
        def run(folder: Path, extra: list[str] = extra) -> str:
            logs = folder / "logs"
            args = ["run", "--config", str(tiny), "--log-dir", str(logs), "--workers", "0",
                    "--no-progress", *extra]
            if "--log-dir" in extra[:1]:
                args = ["run", "--config", str(tiny), "--workers", "0", *extra]
            done = cryptosweep(*args, timeout=120)
            verdict, detail = judge(done, 2, logs)
            if Path("/tmp/cryptosweep-escape").exists() or (folder.parent / "escape").exists():
                verdict, detail = "other", "wrote outside --log-dir"
            return f"{verdict}\t{detail}"

        cases.append(Case("configs and flags", name, run))
    return cases


# ------------------------------------------------------------------------------ bad data


def data_cases(tiny: Path) -> list[Case]:
    from cryptosweep.trading.data import sample_data_path

    lines = gzip.decompress(sample_data_path().read_bytes()).decode().splitlines()
    header, rows = lines[0], [line.split(",") for line in lines[1:]]

    def table(rows_: list[list[str]], head: str = header) -> bytes:
        return ("\n".join([head, *(",".join(r) for r in rows_)]) + "\n").encode()

    def edit(index: int, column: int, value: str) -> bytes:
        copy = [list(r) for r in rows]
        copy[index][column] = value
        return table(copy)

    def scaled(columns: range, factor: float) -> bytes:
        return table([[repr(float(v) * factor) if i in columns else v for i, v in enumerate(r)]
                      for r in rows])

    bad: list[tuple[str, bytes, str]] = [
        ("high = inf", edit(500, 2, "inf"), ".csv"), ("low = -inf", edit(10, 3, "-inf"), ".csv"),
        ("close = nan", edit(10, 4, "nan"), ".csv"), ("open empty", edit(10, 1, ""), ".csv"),
        ("close text", edit(10, 4, "abc"), ".csv"), ("zero price", edit(10, 1, "0"), ".csv"),
        ("negative price", edit(10, 3, "-5"), ".csv"),
        ("high < low", edit(10, 2, "1.0"), ".csv"), ("open above high", edit(10, 1, "1e9"),
                                                     ".csv"),
        ("negative volume", edit(10, 5, "-1"), ".csv"), ("volume inf", edit(10, 5, "inf"),
                                                         ".csv"),
        ("open_time text", edit(10, 0, "yesterday"), ".csv"),
        ("open_time fractional", edit(10, 0, "1633046400000.5"), ".csv"),
        ("open times + 1e13 ms", table([[str(int(r[0]) + 10**13), *r[1:]] for r in rows]),
         ".csv"),
        ("open times in year 1970", table([[str(int(r[0]) // 10**6), *r[1:]] for r in rows]),
         ".csv"),
        ("constant prices", table([[r[0], "100", "100", "100", "100", *r[5:]] for r in rows]),
         ".csv"),
        ("prices x 1e300", scaled(range(1, 5), 1e300), ".csv"),
        ("prices x 1e-300", scaled(range(1, 5), 1e-300), ".csv"),
        ("volumes x 1e300", scaled(range(5, 6), 1e300), ".csv"),
        ("conflicting duplicate", table([*rows[:100], [rows[50][0], *rows[51][1:]],
                                         *rows[100:]]), ".csv"),
        ("mixed intervals", table(rows[:3000] + [[str(int(r[0]) + 1800_000), *r[1:]]
                                                 for r in rows[3000:3001]] + rows[3001:]),
         ".csv"),
        ("one row", table(rows[:1]), ".csv"), ("two rows", table(rows[:2]), ".csv"),
        ("300 rows", table(rows[:300]), ".csv"),
        ("header only", (header + "\n").encode(), ".csv"), ("empty", b"", ".csv"),
        ("binary garbage", os.urandom(4096), ".csv"),
        ("gzip garbage", b"\x1f\x8b" + os.urandom(512), ".csv.gz"),
        ("truncated gzip", gzip.compress(table(rows))[:5000], ".csv.gz"),
        ("zip garbage", b"PK\x03\x04" + os.urandom(512), ".zip"),
        ("UTF-16 CSV", table(rows).decode().encode("utf-16"), ".csv"),
        ("missing column", table([r[:5] for r in rows], ",".join(header.split(",")[:5])),
         ".csv"),
        ("semicolons", table(rows).replace(b",", b";"), ".csv"),
        ("header lacks open_time", table(rows, header.replace("open_time", "time")), ".csv"),
        ("narrow headerless", b"1633046400000,1,2\n", ".csv"),
        ("parquet garbage", b"PAR1" + os.urandom(256) + b"PAR1", ".parquet"),
        ("a folder without data", b"", "/"),
    ]
    good: list[tuple[str, bytes, str]] = [
        ("rows newest first", table(rows[::-1]), ".csv"),
        ("CRLF line ends", table(rows).replace(b"\n", b"\r\n"), ".csv"),
        ("exact duplicate rows", table(rows[:200] + rows[100:]), ".csv"),
        ("a gap of a day", table(rows[:3000] + rows[3024:]), ".csv"),
        ("gzip", gzip.compress(table(rows)), ".csv.gz"),
        ("headerless klines", table(rows, "").lstrip(b"\n"), ".csv"),
    ]
    cases = []
    for name, data, suffix in bad + good:
        expect_ok = (name, data, suffix) in good

        def run(folder: Path, data: bytes = data, suffix: str = suffix,
                expect_ok: bool = expect_ok) -> str:
            if suffix == "/":
                path = folder / "candles"
                path.mkdir()
                (path / "notes.txt").write_text("nothing here")
            else:
                path = folder / f"candles{suffix}"
                path.write_bytes(data)
            done = cryptosweep("validate", "--config", str(tiny), "--data", str(path),
                               timeout=120)
            if expect_ok:
                ok = done.rc == 0 and done.stdout.startswith("ok: ")
                verdict, detail = judge(done, 0) if not ok else ("clean", "ok")
                return f"{verdict}\t{detail}"
            verdict, detail = judge(done, 2)
            return f"{verdict}\t{detail}"

        cases.append(Case("data files", name + ("" if not expect_ok else " (valid)"), run))
    return cases


# ------------------------------------------------------------- kills, journals, writers


@dataclass
class Reference:
    config: Path
    run_dir: Path
    seed: str = "5"


def make_reference(base: Path) -> Reference:
    config = write_yaml(base / "ref.yaml", tiny_config(
        sweep_type="hyperband", hyperband__max_iter=9, objective__rounds_per_unit=5))
    done = cryptosweep("run", "--config", str(config), "--log-dir", str(base), "--run-name",
                       "reference", "--seed", "5", "--workers", "0", "--no-progress",
                       timeout=900)
    if done.rc != 0:
        raise SystemExit(f"the reference sweep failed: {done.stderr[-2000:]}")
    return Reference(config, base / "reference")


def start_killable_run(reference: Reference, folder: Path, workers: str,
                       until_done: int) -> subprocess.Popen[bytes]:
    """The reference sweep started again as run ``killed`` in ``folder`` (its own process
    group), returned once ``until_done`` evaluations are journaled as finished, it ended, or
    10 minutes passed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cryptosweep", "run", "--config", str(reference.config),
         "--log-dir", str(folder), "--run-name", "killed", "--seed", reference.seed,
         "--workers", workers, "--no-progress"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    db = folder / "killed" / "sweep.db"
    while done_count(db) < until_done and process.poll() is None:
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return process


def kill_and_resume(process: subprocess.Popen[bytes], run_dir: Path, workers: str) -> Done:
    """SIGKILL the killable run's process group, then resume it on ``workers``: the resume's
    result (``rc`` None: killed at its time limit)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return cryptosweep("run", "--resume", str(run_dir), "--workers", workers, "--no-progress",
                       timeout=900)


def differs_from_reference(run_dir: Path, reference: Reference) -> str | None:
    """The ``silent`` verdict when a resumed run's results differ from the reference's or an
    evaluation finished twice; None when neither."""
    same = deterministic_bytes(run_dir) == deterministic_bytes(reference.run_dir)
    with contextlib.closing(sqlite3.connect(run_dir / "sweep.db")) as db:
        twice = db.execute("SELECT COUNT(*) FROM (SELECT eval_id FROM attempts WHERE "
                           "outcome = 'done' GROUP BY eval_id HAVING COUNT(*) > 1)"
                           ).fetchone()[0]
    if not same or twice:
        return f"silent\tresults differ ({twice} evaluations finished twice)"
    return None


def kill_cases(reference: Reference, count: int) -> list[Case]:
    rng = random.Random(13)
    cases = []
    for index in range(count):
        workers = "0" if index % 2 == 0 else "2"
        kill_at = rng.randint(1, 20)

        def run(folder: Path, workers: str = workers, kill_at: int = kill_at) -> str:
            run_dir = folder / "killed"
            process = start_killable_run(reference, folder, workers, until_done=kill_at)
            resumed = kill_and_resume(process, run_dir, workers)
            if resumed.rc is None:
                return "hang\tresume killed at its time limit"
            if resumed.rc != 0:
                return f"other\tresume exit {resumed.rc}: {resumed.stderr[-200:]}"
            differs = differs_from_reference(run_dir, reference)
            if differs:
                return differs
            return f"clean\tidentical after SIGKILL at {kill_at} (workers {workers})"

        cases.append(Case("kills and resumes",
                          f"SIGKILL at {kill_at} finished, --workers {workers}", run))

    for workers in ("0", "2"):
        def wal_lost(folder: Path, workers: str = workers) -> str:
            """Issue #26: `sweep.db-wal` deleted mid-run, then SIGKILL: the resume must keep
            what was checkpointed and end with the uninterrupted results."""
            run_dir = folder / "killed"
            process = start_killable_run(reference, folder, workers, until_done=4)
            with contextlib.suppress(FileNotFoundError):
                (run_dir / "sweep.db-wal").unlink()
            time.sleep(3)  # the run goes on writing into the deleted file
            resumed = kill_and_resume(process, run_dir, workers)
            if resumed.rc is None:
                return "hang\tresume killed at its time limit"
            if resumed.rc != 0:
                log = run_dir / "sweep_output.log"
                tail = log.read_text(errors="replace")[-1500:] if log.is_file() else ""
                return (f"other\tresume exit {resumed.rc}: {resumed.stderr[-300:]} | "
                        f"sweep_output.log ends: {tail}")
            differs = differs_from_reference(run_dir, reference)
            if differs:
                return differs
            said = [line for line in resumed.stderr.splitlines() if "write-ahead log" in line]
            return (f"clean\tidentical after the WAL was deleted and SIGKILL (workers "
                    f"{workers}){': ' + said[0][-120:] if said else ''}")

        cases.append(Case("kills and resumes",
                          f"sweep.db-wal deleted mid-run, then SIGKILL, --workers {workers}",
                          wal_lost))
    return cases


def journal_cases(reference: Reference) -> list[Case]:
    def garbage_page(db: Path) -> None:
        data = bytearray(db.read_bytes())
        middle = len(data) // 2 // 4096 * 4096
        data[middle:middle + 4096] = bytes(range(256)) * 16
        db.write_bytes(bytes(data))

    def sql(statement: str) -> Callable[[Path], None]:
        def apply(db: Path) -> None:
            with sqlite3.connect(db) as conn:
                conn.execute(statement)
            conn.close()
        return apply

    def foreign(db: Path) -> None:
        db.unlink()
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE customers (id INTEGER)")
        conn.close()

    damages: dict[str, Callable[[Path], None]] = {
        "truncated to half": lambda db: db.write_bytes(db.read_bytes()[:len(db.read_bytes())
                                                                       // 2]),
        "header zeroed": lambda db: db.write_bytes(b"\0" * 100 + db.read_bytes()[100:]),
        "garbage page in the middle": garbage_page,
        "garbage appended": lambda db: db.write_bytes(db.read_bytes() + os.urandom(8192)),
        "config row deleted": sql("DELETE FROM meta WHERE key = 'config'"),
        "evaluations table dropped": sql("DROP TABLE evaluations"),
        "config is not JSON": sql("UPDATE meta SET value = '{' WHERE key = 'config'"),
        "params are not JSON": sql("UPDATE trials SET params = 'x' WHERE trial_id = 0"),
        "foreign SQLite file": foreign,
        "empty file": lambda db: db.write_bytes(b""),
        "a text file": lambda db: db.write_text("hello\n"),
        # Rows changed on disk (issue #26): each must be named by its checksum, and either
        # repaired (resume re-runs it with its recorded seed: the uninterrupted results) or
        # refused with one line and the folder unchanged, never resumed as if intact.
        "a score + 1e-4": sql("UPDATE evaluations SET score = score + 1e-4 WHERE eval_id = "
                              "(SELECT MIN(eval_id) FROM evaluations WHERE score IS NOT NULL)"),
        "a returns blob of random bytes": sql(
            "UPDATE returns SET data = randomblob(64) WHERE rowid = (SELECT MIN(rowid) FROM "
            "returns WHERE kind = 'validation')"),
        "a params row rewritten (valid JSON)": sql(
            "UPDATE trials SET params = json_set(params, '$.trading.threshold', 0.55) WHERE "
            "trial_id = (SELECT MIN(trial_id) FROM trials)"),
    }
    # Bytes past the page count in SQLite's header are not part of the database: a journal
    # with garbage appended is intact, and resuming it must give the uninterrupted results.
    # A row that fails its checksum is repaired by the resume, with the same results.
    intact = {"garbage appended", "a score + 1e-4", "a returns blob of random bytes"}
    cases = []
    for name, damage in damages.items():
        def run(folder: Path, damage: Callable[[Path], None] = damage,
                intact: bool = name in intact) -> str:
            run_dir = folder / "run"
            run_dir.mkdir()
            db = run_dir / "sweep.db"
            shutil.copy2(reference.run_dir / "sweep.db", db)
            damage(db)
            before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
            done = cryptosweep("run", "--resume", str(run_dir), "--workers", "0", timeout=300)
            if intact and done.rc == 0:
                same = deterministic_bytes(run_dir) == deterministic_bytes(reference.run_dir)
                return ("clean\tintact: resumed to the uninterrupted results" if same
                        else "silent\tresumed results differ")
            verdict, detail = judge(done, 2)
            after = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
            if verdict == "clean" and after != before:
                verdict, detail = "other", "the refused journal's folder was changed"
            return f"{verdict}\t{detail}"

        cases.append(Case("damaged journals", name, run))

    for name in ("a score + 1e-4", "a returns blob of random bytes"):
        def report(folder: Path, damage: Callable[[Path], None] = damages[name]) -> str:
            run_dir = folder / "run"
            shutil.copytree(reference.run_dir, run_dir)
            damage(run_dir / "sweep.db")
            before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
            done = cryptosweep("report", str(run_dir), "--no-index", timeout=300)
            verdict, detail = judge(done, 2)
            after = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
            if verdict == "clean" and after != before:
                verdict, detail = "other", "the refused journal's folder was changed"
            return f"{verdict}\t{detail}"

        cases.append(Case("damaged journals", f"report on {name}", report))

    def read_only(folder: Path) -> str:
        try:
            mount = _tmpfs(folder / "ro", "64m")
            disk = mount.__enter__()
        except OSError:
            return "clean\tskipped: cannot mount a tmpfs here"
        try:
            shutil.copytree(reference.run_dir, disk / "run")
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
            resume = cryptosweep("run", "--resume", str(disk / "run"), "--workers", "0",
                                 timeout=300)
            report = cryptosweep("report", str(disk / "run"), timeout=300)
        finally:
            mount.__exit__(None, None, None)
        first, detail = judge(resume, 2)
        second, detail2 = judge(report, 2)
        return f"{first if first != 'clean' else second}\t{detail} | {detail2}"

    cases.append(Case("damaged journals", "read-only run folder (resume and report)",
                      read_only))
    return cases


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)
    if done.returncode:
        raise OSError("cannot mount a tmpfs here")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def writer_cases(reference: Reference) -> list[Case]:
    def two_resumes(folder: Path) -> str:
        run_dir = folder / "run"
        run_dir.mkdir()
        shutil.copy2(reference.run_dir / "sweep.db", run_dir / "sweep.db")
        with sqlite3.connect(run_dir / "sweep.db") as db:
            last = db.execute("SELECT MAX(eval_id) FROM evaluations").fetchone()[0]
            for table in ("attempts", "returns", "evaluations"):
                db.execute(f"DELETE FROM {table} WHERE eval_id > ?", (last - 6,))
        args = ["run", "--resume", str(run_dir), "--workers", "0", "--no-progress"]
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda _: cryptosweep(*args, timeout=600), range(2)))
        codes = sorted(r.rc for r in results)
        if None in codes:
            return "hang\ta resume did not end"
        if codes != [0, 2]:
            return f"other\texit codes {codes}"
        loser = next(r for r in results if r.rc == 2)
        verdict, detail = judge(loser, 2)
        if verdict == "clean" and deterministic_bytes(run_dir) != deterministic_bytes(
                reference.run_dir):
            return "silent\tthe winner's results differ"
        return f"{verdict}\t{detail}"

    def two_new_runs(folder: Path) -> str:
        args = ["run", "--config", str(reference.config), "--log-dir", str(folder),
                "--run-name", "same", "--seed", reference.seed, "--workers", "0",
                "--no-progress"]
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda _: cryptosweep(*args, timeout=900), range(2)))
        codes = sorted(r.rc for r in results)
        if None in codes:
            return "hang\ta run did not end"
        if codes != [0, 2]:
            return f"other\texit codes {codes}"
        loser = next(r for r in results if r.rc == 2)
        verdict, detail = judge(loser, 2)
        if verdict == "clean" and deterministic_bytes(folder / "same") != deterministic_bytes(
                reference.run_dir):
            return "silent\tthe winner's results differ"
        return f"{verdict}\t{detail}"

    return [Case("concurrent writers", "two --resume of one run at once", two_resumes),
            Case("concurrent writers", "two new runs of one --run-name at once", two_new_runs)]


def disk_cases(reference: Reference) -> list[Case]:
    def full_disk(folder: Path, after: int) -> str:
        try:
            mount = _tmpfs(folder / "disk", "24m")
            disk = mount.__enter__()
        except OSError:
            return "clean\tskipped: cannot mount a tmpfs here"
        try:
            run_dir = disk / "full"
            process = subprocess.Popen(
                [sys.executable, "-m", "cryptosweep", "run", "--config", str(reference.config),
                 "--log-dir", str(disk), "--run-name", "full", "--seed", reference.seed,
                 "--workers", "0", "--no-progress"], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, start_new_session=True)
            while done_count(run_dir / "sweep.db") < after and process.poll() is None:
                time.sleep(0.01)
            filler = disk / "filler"
            with open(filler, "wb", buffering=0) as out, contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * 4096)
            try:
                _, stderr = process.communicate(timeout=600)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                return "hang\tthe sweep on a full disk did not stop"
            verdict, detail = judge(Done(process.returncode, "", stderr, 0), 6)
            if verdict != "clean":
                return f"{verdict}\t{detail}"
            with sqlite3.connect(f"file:{run_dir / 'sweep.db'}?mode=ro", uri=True) as db:
                failed = db.execute("SELECT COUNT(*) FROM evaluations WHERE status = 'failed'"
                                    ).fetchone()[0]
            if failed:
                return f"silent\t{failed} evaluations journaled as failed by a full disk"
            filler.unlink()
            resumed = cryptosweep("run", "--resume", str(run_dir), "--workers", "0",
                                  "--no-progress", timeout=900)
            if resumed.rc != 0:
                return f"other\tresume exit {resumed.rc}"
            if deterministic_bytes(run_dir) != deterministic_bytes(reference.run_dir):
                return "silent\tresumed results differ from the uninterrupted run"
            return f"clean\texit 6, then identical after resume: {detail[:120]}"
        finally:
            mount.__exit__(None, None, None)

    # 22: every evaluation of the reference is done; the disk fills during the end of the
    # sweep (holdout, re-runs, baselines on the executor).
    return [Case("full disk", f"disk filled after {n} evaluations", lambda f, n=n:
                 full_disk(f, n)) for n in (2, 8, 15, 22)]


# ------------------------------------------------------------ notifiers and schedulers


def notifier_cases() -> list[Case]:
    token = "xoxT0KEN-s3cr3t-4f8e2a"
    urls = {
        "credentials and a malformed port": f"https://bob:hunter2@hooks.example.com:80x/{token}",
        "a space in the path": f"https://hooks.example.com/services/T0 {token}",
        "a broken IPv6 host": f"https://[::1/{token}",
        "a port past 65535": f"https://hooks.example.com:99999/{token}",
        "no scheme": f"hooks.example.com/{token}",
        "a refused port": f"http://127.0.0.1:9/{token}",
        "a control character": f"https://hooks.example.com/{token}\x01",
        "a NUL byte in the command": None,
    }
    cases = []
    for name, url in urls.items():
        def run(folder: Path, url: str | None = url) -> str:
            from cryptosweep.nightly import notifications

            target = folder / "stdin.json"
            summary = notifications.build_summary(None, 2, "bad config")
            try:
                command = "a\0b" if url is None else f"cat > '{target}'"
                lines = notifications.notify(summary, url, command, timeout=2)
            except Exception as exc:  # the very thing that must not happen
                return f"traceback\t{type(exc).__name__}: {exc}"
            text = "\n".join(lines)
            if any(secret in text for secret in (token, "hunter2", "bob:")):
                return f"silent\tthe secret is in the line: {text[:160]}"
            if url is not None and not target.exists():
                return "silent\tthe command was skipped after the webhook failed"
            return f"clean\t{' | '.join(lines)[:200]}"

        cases.append(Case("notifications", f"webhook with {name}" if url else name, run))

    def bad_timeout(folder: Path) -> str:
        from cryptosweep.nightly.pipeline import Notifiers

        notifiers = Notifiers.from_environment({"NOTIFY_TIMEOUT": "abc"})
        if notifiers.timeout != 5.0 or not notifiers.problems:
            return "other\tNOTIFY_TIMEOUT=abc not reported"
        return f"clean\t{notifiers.problems[0][:160]}"

    cases.append(Case("notifications", "NOTIFY_TIMEOUT=abc", bad_timeout))

    def whole_night(folder: Path) -> str:
        """The nightly entry point, with cron's bare environment, a tiny sweep and a webhook
        whose URL holds a password and a token (and fails): the night must succeed and no
        piece of either secret may appear in its output or in any file it wrote."""
        # Pieces long enough not to occur by chance in what a night writes (plotly.js).
        secrets = ("Qx7kZ#Vb9Lm2W", "Qx7kZ", "Vb9Lm2W", "bob:", token)
        url = f"https://bob:Qx7kZ#Vb9Lm2W@127.0.0.1:9/services/{token}"
        config = write_yaml(folder / "night.yaml", tiny_config(random__n_trials=2,
                                                               reporting__top_k=1))
        env = {"PATH": "/usr/bin:/bin", "HOME": str(folder), "LANG": "C.UTF-8",
               "SHELL": "/bin/sh", "REPORTS_DIR": str(folder / "reports"),
               "MODELS_DIR": str(folder / "models"), "SWEEP_CONFIG": str(config),
               "NOTIFY_WEBHOOK_URL": url, "NOTIFY_TIMEOUT": "2",
               **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ
                  else {})}
        try:
            done = subprocess.run([str(REPO / "scheduled" / "nightly_sweep.sh")], cwd="/",
                                  env=env, capture_output=True, text=True, errors="replace",
                                  timeout=900)
        except subprocess.TimeoutExpired:
            return "hang\tthe night ran past 900 s"
        output = done.stdout + done.stderr
        files = "\n".join(p.read_bytes().decode("utf-8", "replace")
                          for p in folder.rglob("*") if p.is_file() and p.name != "night.yaml")
        leaked = sorted({s for s in secrets for where in (output, files) if s in where})
        if leaked:
            return f"silent\tleaked {leaked} (output or files)"
        if "Traceback (most recent call last)" in output:
            return "traceback\ta traceback in the night's output"
        if done.returncode != 0 or "webhook: failed" not in output:
            return f"other\texit {done.returncode}: {output.strip().splitlines()[-1:]}"
        written = sum(1 for p in folder.rglob("*") if p.is_file())
        return (f"clean\tnight exit 0, webhook failed in one line, {written} files and the "
                "output free of the password and the token")

    cases.append(Case("notifications", "a whole night, secret webhook: output and files",
                      whole_night))
    return cases


@contextlib.contextmanager
def impostor_servers() -> Iterator[dict[str, str]]:
    import http.server

    http_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                  http.server.SimpleHTTPRequestHandler)
    garbage = socket.create_server(("127.0.0.1", 0))
    banner = socket.create_server(("127.0.0.1", 0))
    silent = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def answer(server: socket.socket, payload: bytes) -> None:
        server.settimeout(0.2)
        kept = []
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            if payload:
                with contextlib.suppress(OSError):
                    connection.sendall(payload)
            kept.append(connection)

    threads = [threading.Thread(target=http_server.serve_forever, daemon=True),
               threading.Thread(target=answer, args=(garbage, b"\xff" * 8 + b"junk"),
                                daemon=True),
               threading.Thread(target=answer, args=(banner, b"SSH-2.0-OpenSSH_9.2\r\n"),
                                daemon=True),
               threading.Thread(target=answer, args=(silent, b""), daemon=True)]
    for thread in threads:
        thread.start()
    try:
        yield {"a plain HTTP server": f"tcp://127.0.0.1:{http_server.server_address[1]}",
               "a server sending 0xff bytes": f"tcp://127.0.0.1:{garbage.getsockname()[1]}",
               "a server that never speaks": f"tcp://127.0.0.1:{silent.getsockname()[1]}",
               "an SSH banner": f"tcp://127.0.0.1:{banner.getsockname()[1]}",
               "nothing listening": "tcp://127.0.0.1:9"}
    finally:
        stop.set()
        http_server.shutdown()
        for server in (garbage, banner, silent):
            server.close()


def scheduler_cases(tiny: Path, servers: dict[str, str]) -> list[Case]:
    cases = []
    for name, address in servers.items():
        def run(folder: Path, address: str = address) -> str:
            logs = folder / "logs"
            done = cryptosweep("run", "--config", str(tiny), "--log-dir", str(logs),
                               "--scheduler-address", address, timeout=120)
            verdict, detail = judge(done, 2, logs)
            return f"{verdict}\t{detail} ({done.seconds:.0f} s)"

        cases.append(Case("scheduler addresses", name, run))
    return cases


# ------------------------------------------------------- hostile inputs (input, paths, secrets)

HOSTILE = "hostile inputs"


def alias_bomb() -> bytes:
    """Ten levels of ten aliases: 600 bytes that expand to 10^10 values."""
    lines = ["x0: &x0 [a, b, c, d, e, f, g, h, i, j]"]
    lines += [f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 10) + "]" for i in range(1, 10)]
    return ("\n".join(lines) + "\ndescription: *x9\n").encode()


def hostile_config_cases() -> list[tuple[str, Any]]:
    """Configs that hung, crashed or ran wrongly before the hardening pass."""
    cat = {"type": "categorical"}
    return [
        ("alias bomb (600 bytes)", (alias_bomb(), ".yaml")),
        ("lightgbm: machines searched", with_range("lightgbm", machines={
            **cat, "choices": ["127.0.0.1:12400,127.0.0.1:12401"]})),
        ("lightgbm: local_listen_port", with_range("lightgbm", local_listen_port=INT)),
        ("lightgbm: tree_learner data", with_range("lightgbm", tree_learner={
            **cat, "choices": ["serial", "data"]})),
        ("lightgbm: application regression", with_range("lightgbm", application={
            **cat, "choices": ["regression"]})),
        ("xgboost: objective binary:logitraw", with_range("xgboost", objective={
            **cat, "choices": ["binary:logitraw"]})),
        ("fees_bps inf", changed(objective__fees_bps=float("inf"))),
        ("slippage_bps inf", changed(objective__slippage_bps=float("inf"))),
        ("trial_timeout inf", changed(execution__trial_timeout=float("inf"))),
        ("slippage_bps 1e6", changed(objective__slippage_bps=1e6)),
        ("fees_bps 1e308", changed(objective__fees_bps=1e308)),
        ("rounds_per_unit rounds to 0", changed(objective__rounds_per_unit=0.01)),
        ("holding_period 1e12", trading(holding_period={"type": "int", "low": 4,
                                                        "high": 10**12})),
        ("data.start in 9999", changed(data__start="9999-01-01")),
        ("name of 300 bytes", changed(name="n" * 300)),
        ("execution.workers 100000", changed(execution__workers=100_000)),
        ("holding_period 4,000-9,000 (longer than a fold)", trading(holding_period={
            "type": "int", "low": 4000, "high": 9000})),
        ("lightgbm: monotone_constraints sized for 4 features",
         with_range("lightgbm", monotone_constraints={**cat, "choices": ["1,1,1,1"]})),
    ]


_BEST: dict[str, Path] = {}
_BEST_LOCK = threading.Lock()


def best_configs(base: Path) -> Path:
    """The best configs of a one-trial sweep (run once, shared by the production cases)."""
    with _BEST_LOCK:
        if "file" not in _BEST:
            config = write_yaml(base / "one.yaml", tiny_config(random__n_trials=1,
                                                               reporting__top_k=1))
            done = cryptosweep("run", "--config", str(config), "--log-dir", str(base),
                               "--run-name", "one", "--workers", "0", "--no-progress",
                               timeout=600)
            if done.rc != 0:
                raise RuntimeError(f"the one-trial sweep failed: {done.stderr[-500:]}")
            _BEST["file"] = sorted((base / "one").glob("best_configs_*.json"))[-1]
        return _BEST["file"]


def trained_model(base: Path) -> Path:
    """A model folder trained from :func:`best_configs` (once, shared by the cases)."""
    best = best_configs(base)
    with _BEST_LOCK:
        if "model" not in _BEST:
            done = cryptosweep("train", str(best), "--out", str(base / "model"), timeout=600)
            if done.rc != 0:
                raise RuntimeError(f"training the model failed: {done.stderr[-500:]}")
            _BEST["model"] = base / "model"
        return _BEST["model"]


def _damaged_model(base: Path, folder: Path) -> Path:
    """The model with its configuration's threshold set to 7 and its digest recomputed."""
    from cryptosweep.production.model import MANIFEST, manifest_digest

    damaged = folder / "damaged"
    shutil.copytree(trained_model(base), damaged)
    manifest = json.loads((damaged / MANIFEST).read_text())
    manifest["configuration"]["params"]["trading"]["threshold"] = 7
    manifest["digest"] = manifest_digest(manifest)
    (damaged / MANIFEST).write_text(json.dumps(manifest))
    return damaged


def _short_candles(folder: Path, bars: int) -> Path:
    from cryptosweep.trading.data import load_ohlcv

    frame = load_ohlcv(sample_data()).iloc[-bars:].copy()
    frame.index = frame.index.as_unit("ms").asi8
    frame.to_csv(folder / "short.csv", index_label="open_time")
    return folder / "short.csv"


def _bad_entry(best: Path, folder: Path, section: str, key: str, value: Any) -> Path:
    data = json.loads(best.read_text())
    node = data["configurations"][0]
    for part in section.split("."):
        node = node[part]
    node[key] = value
    path = folder / "bad.json"
    path.write_text(json.dumps(data))
    return path


def walkforward_config(**layout: Any) -> dict[str, Any]:
    """The tiny sweep with a walk_forward section (labels up to 24 bars: the tiny range)."""
    return {**tiny_config(random__n_trials=2, reporting__top_k=1, name="wf"),
            "walk_forward": {"out_of_sample_bars": 300, "embargo_bars": 24, **layout}}


def walkforward_cases() -> list[Case]:
    """Walk-forward layouts and resumes that were accepted (or misreported) before: each must
    end in one line, exit 2, with no walk-forward folder made (a resume's folder unchanged)."""
    layouts = {
        "walkforward: embargo 0, labels up to 24 bars": {"windows": 3, "embargo_bars": 0},
        "walkforward: embargo 10, labels up to 24 bars": {"windows": 3, "embargo_bars": 10},
        "walkforward: anchored with windows and in_sample_bars": {
            "windows": 3, "in_sample_bars": 2000, "anchored": True},
        "walkforward: segments of 10 bars, holding up to 24": {
            "windows": 3, "out_of_sample_bars": 10},
        "walkforward: 3 anchored segments of 3,500 bars in 9,504": {
            "windows": 3, "out_of_sample_bars": 3500, "anchored": True},
    }
    cases = []
    for name, layout in layouts.items():
        def run(folder: Path, layout: dict[str, Any] = layout) -> str:
            path = write_yaml(folder / "wf.yaml", walkforward_config(**layout))
            done = cryptosweep("walkforward", "--config", str(path), "--log-dir",
                               str(folder / "logs"), "--workers", "0", "--no-report",
                               timeout=180)
            verdict, detail = judge(done, 2, folder / "logs")
            return f"{verdict}\t{detail}"
        cases.append(Case(HOSTILE, name, run))

    def unstarted(folder: Path) -> Path:  # a walk-forward folder right after its manifest
        from cryptosweep.core.config_files import validate_config
        from cryptosweep.walkforward.driver import MANIFEST, _new_manifest
        from cryptosweep.walkforward.layout import plan

        config = validate_config(walkforward_config(windows=3), "the pass")
        wf_dir = folder / "wf"
        wf_dir.mkdir()
        (wf_dir / MANIFEST).write_text(json.dumps(_new_manifest(config, 7, plan(config, 7),
                                                                "20261206_000000")))
        return wf_dir

    resumes = {"walkforward --resume --set walk_forward.out_of_sample_bars=200": [
                   "--set", "walk_forward.out_of_sample_bars=200"],
               "walkforward --resume --data X": ["--data", str(sample_data())]}
    for name, extra in resumes.items():
        def resume(folder: Path, extra: list[str] = extra) -> str:
            wf_dir = unstarted(folder)
            before = sorted(p.name for p in wf_dir.iterdir())
            done = cryptosweep("walkforward", "--resume", str(wf_dir), "--workers", "0",
                               "--no-report", *extra, timeout=180)
            verdict, detail = judge(done, 2)
            if verdict == "clean" and sorted(p.name for p in wf_dir.iterdir()) != before:
                return f"other\tthe walk-forward folder changed: {detail}"
            return f"{verdict}\t{detail}"
        cases.append(Case(HOSTILE, name, resume))
    return cases


def hostile_cases(tiny: Path, base: Path) -> list[Case]:
    cases = [Case(HOSTILE, name, config_case(name, config).run)
             for name, config in hostile_config_cases()]

    def accepted(name: str, edit: Callable[[str], str]) -> Case:  # must pass validate
        def run(folder: Path) -> str:
            path = folder / "sweep.yaml"
            path.write_text(edit(yaml.safe_dump(tiny_config())), encoding="utf-8")
            done = cryptosweep("validate", "--config", str(path), timeout=120)
            if done.rc == 0:
                return f"clean\t{done.stdout.strip()[:160]}"
            verdict, detail = judge(done, 0)
            return f"{'other' if verdict == 'clean' else verdict}\trefused: {detail}"
        return Case(HOSTILE, name, run)

    def merge(text: str) -> str:
        text = text.replace("    learning_rate:\n", "    learning_rate: &lr\n", 1)
        old = "    stop_loss:\n      high: 0.06\n      low: 0.02\n      type: float\n"
        assert old in text
        return text.replace(old, "    stop_loss:\n      <<: *lr\n      high: 0.06\n"
                            "      low: 0.02\n", 1)

    cases += [accepted("YAML merge key", merge),
              accepted("unquoted YAML date", lambda t: t + "data:\n  start: 2022-01-01\n")]
    long = "a" * 300

    def command(name: str, make: Callable[[Path], list[str]], expect: int = 2,
                unchanged: Callable[[Path], Path] | None = None) -> Case:
        def run(folder: Path) -> str:
            keep = unchanged(folder) if unchanged else None
            before = keep.read_bytes() if keep else None
            done = cryptosweep(*make(folder), timeout=180)
            verdict, detail = judge(done, expect, folder / "logs")
            if keep is not None and (not keep.exists() or keep.read_bytes() != before):
                return f"silent\t{keep.name} was changed: {detail}"
            return f"{verdict}\t{detail}"
        return Case(HOSTILE, name, run)

    def text_file(folder: Path) -> Path:
        path = folder / "notes.txt"
        if not path.exists():
            path.write_text("mine\n")
        return path

    run = ["run", "--config", str(tiny), "--workers", "0", "--no-progress"]
    cases += [
        command("--workers 100000", lambda f: [*run, "--log-dir", str(f / "logs"),
                                               "--workers", "100000"]),
        command("--log-dir component of 300 bytes", lambda f: [*run, "--log-dir",
                                                             str(f / "logs" / long)]),
        command("--run-name of 300 bytes", lambda f: [*run, "--log-dir", str(f / "logs"),
                                                      "--run-name", long]),
        command("--log-dir under a file", lambda f: [*run, "--log-dir",
                                                     str(text_file(f) / "logs")]),
        command("--log-dir under /proc", lambda f: [*run, "--log-dir", "/proc/cs-logs"]),
        command("--resume RUN --data X", lambda f: ["run", "--resume", str(f / "logs" / "r"),
                                                   "--data", str(tiny)]),
        command("export-optuna --output onto a text file",
                lambda f: ["export-optuna", str(f), "--output", str(text_file(f))],
                unchanged=text_file),
        command("export-optuna --output a folder",
                lambda f: ["export-optuna", str(f), "--output", str(f)]),
        command("export-optuna --output under /proc",
                lambda f: ["export-optuna", str(f), "--output", "/proc/optuna.db"]),
    ]
    entries = [("params.entry_model", "num_leaves", "many"),
               ("params.entry_model", "num_leaves", -3),
               ("params.entry_model", "learning_rate", float("nan")),
               ("params.entry_model", "num_leavs", 8),
               ("params.entry_model", "machines", "127.0.0.1:1"),
               ("params.entry_model", "objective", "regression"),
               ("params.trading", "holding_period", 0),
               ("params.trading", "holding_period", 10**11),
               ("params.trading", "stop_loss", -0.05),
               ("params.trading", "threshold", 7),
               ("objective_spec.objective", "threads_per_trial", 1000)]
    for section, key, value in entries:
        for verb in ("train", "evaluate"):
            def args(folder: Path, section: str = section, key: str = key, value: Any = value,
                     verb: str = verb) -> list[str]:
                bad = str(_bad_entry(best_configs(base), folder, section, key, value))
                if verb == "train":
                    return ["train", bad, "--out", str(folder / "logs")]
                return ["evaluate", bad, "--data", str(sample_data()), "--html",
                        str(folder / "logs" / "e.html")]
            cases.append(command(f"{verb}: {section}.{key} = {value!r}", args))

    def deep(folder: Path) -> list[str]:
        path = folder / "deep.json"
        path.write_text('{"a": ' + "[" * 10_000 + "]" * 10_000 + "}")
        return ["train", str(path), "--out", str(folder / "logs")]

    def evaluate_to(target: Callable[[Path], str]) -> Callable[[Path], list[str]]:
        return lambda f: ["evaluate", str(best_configs(base)), "--data", str(sample_data()),
                          "--html", target(f)]

    cases += [
        command("train: best configs nested 10,000 deep", deep),
        command("train --out under a file", lambda f: ["train", str(best_configs(base)),
                                                       "--out", str(text_file(f) / "m")]),
        command("train --out under /proc", lambda f: ["train", str(best_configs(base)),
                                                      "--out", "/proc/cs-model"]),
        command("evaluate --html a folder", evaluate_to(str)),
        command("evaluate --html onto a text file", evaluate_to(lambda f: str(text_file(f))),
                unchanged=text_file),
        command("evaluate --html under /proc", evaluate_to(lambda f: "/proc/e.html")),
        command("evaluate --start before the data", lambda f: [
            "evaluate", str(trained_model(base)), "--data", str(sample_data()), "--start",
            "2015-01-01"]),
        command("signals with 200 bars, --last 100 (too little warm-up)", lambda f: [
            "signals", str(trained_model(base)), "--data", str(_short_candles(f, 200)),
            "--last", "100"]),
        command("train --data that is not there", lambda f: [
            "train", str(best_configs(base)), "--data", "/nonexistent/candles.csv", "--out",
            str(f / "logs")]),
        command("signals: manifest threshold 7, digest recomputed", lambda f: [
            "signals", str(_damaged_model(base, f)), "--data", str(sample_data())]),
        command("report --kernel unknown", lambda f: [
            "report", str(best_configs(base).parent), "--kernel", "no-such-kernel",
            "--no-index"]),
    ]
    cases += walkforward_cases()
    token = "xoxT0KEN-s3cr3t-4f8e2a"
    for char in "#?/":
        def notify_case(folder: Path, char: str = char) -> str:
            from cryptosweep.nightly import notifications

            url = f"https://bob:hun{char}ter2@hooks.example.com/services/{token}"
            lines = notifications.notify(notifications.build_summary(None, 2, "x"), url, None,
                                         timeout=2)
            text = "\n".join(lines)
            leaked = [s for s in ("hun", "ter2", token) if s in text]
            return f"silent\tleaked {leaked}: {text[:160]}" if leaked else f"clean\t{text[:160]}"
        cases.append(Case(HOSTILE, f"webhook password with {char!r}", notify_case))
    return cases


def sample_data() -> Path:
    from cryptosweep.trading.data import sample_data_path

    return sample_data_path()


# ------------------------------------------------------------------------------- running


def run_case(case: Case, base: Path) -> Outcome:
    folder = Path(tempfile.mkdtemp(prefix="case-", dir=base))
    started = time.monotonic()
    try:
        verdict, _, detail = case.run(folder).partition("\t")
    except Exception as exc:  # the harness's own failure: shown, not hidden
        verdict, detail = "other", f"harness: {type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Outcome(case.category, case.name, verdict, detail, time.monotonic() - started)


def table(outcomes: list[Outcome]) -> str:
    categories = list(dict.fromkeys(o.category for o in outcomes))
    lines = ["| category | cases | clean | tracebacks | hangs | silent wrong | other |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    total: Counter[str] = Counter()
    for category in categories:
        counts = Counter(o.verdict for o in outcomes if o.category == category)
        total.update(counts)
        n = sum(counts.values())
        lines.append(f"| {category} | {n} | " + " | ".join(str(counts[v]) for v in VERDICTS)
                     + " |")
    lines.append(f"| **all** | **{sum(total.values())}** | " + " | ".join(
        f"**{total[v]}**" for v in VERDICTS) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once")
    parser.add_argument("--kills", type=int, default=12, help="SIGKILL + resume cases")
    parser.add_argument("--json", help="write every outcome here")
    parser.add_argument("--only", help="run only the categories whose name contains this "
                        "(e.g. 'hostile': the inputs, paths and secrets of the hardening pass)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="cryptosweep-reliability-"))
    started = time.monotonic()
    try:
        tiny = write_yaml(base / "tiny.yaml", tiny_config())
        print(f"machine: {machine()}", flush=True)
        needs_reference = not args.only or any(
            args.only in category for category in ("kills and resumes", "damaged journals",
                                                    "concurrent writers", "full disk"))
        reference = make_reference(base) if needs_reference else None
        with impostor_servers() as servers:
            cases = ([config_case(name, config) for name, config in config_cases()]
                     + flag_cases(tiny) + data_cases(tiny) + notifier_cases()
                     + scheduler_cases(tiny, servers) + hostile_cases(tiny, base))
            if reference is not None:
                cases += (kill_cases(reference, args.kills) + journal_cases(reference)
                          + writer_cases(reference) + disk_cases(reference))
            if args.only:
                cases = [c for c in cases if args.only in c.category]
            print(f"{len(cases)} cases, {args.jobs} at a time", flush=True)
            with ThreadPoolExecutor(args.jobs) as pool:
                outcomes = []
                for outcome in pool.map(lambda c: run_case(c, base), cases):
                    outcomes.append(outcome)
                    if outcome.verdict != "clean":
                        print(f"  {outcome.verdict}: {outcome.category}: {outcome.name}: "
                              f"{outcome.detail}", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"\n{table(outcomes)}\n\n{len(outcomes)} cases in "
          f"{(time.monotonic() - started) / 60:.1f} min")
    if args.json:
        Path(args.json).write_text(json.dumps([o.__dict__ for o in outcomes], indent=1))
    return 0 if all(o.verdict == "clean" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
