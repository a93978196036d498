"""Continuation from checkpoints, per model family: reproducible? equal to scratch? faster?

Hyperband promotes a configuration from budget b to B. For each case below this script trains
b rounds/epochs on the bundled BTC/USDT hourly sample (real candles; triple-barrier labels as
the objective builds them) and saves the checkpoint with the adapter's ``save``; then it

(a) continues from that checkpoint to B ``--repeats`` times, with a model of another seed
    trained in between each time, and checks that the predictions on the held-out bars (the
    last 20%) are the same bytes every time;
(b) trains B from scratch and checks whether that gives the same bytes as continuing;
(c) times continuing and training from scratch (interleaved; the fastest of
    ``--repeats``, as the machine may be shared).

Cases that the adapters do not continue (``supports_continuation`` is False) are measured too,
continuing as the adapter would if allowed, to show why. Also one row for CatBoost's
``init_model`` (what the adapter does not use: it resumes CatBoost's snapshot instead).

    .venv/bin/python benchmarks/continuation.py [--repeats 5] [--rounds 100 300]
        [--epochs 10 30] [--threads 1]

Prints a markdown table (docs/continuation.md holds the last one).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from cryptosweep.core.reproducibility import ReproducibilityManager
from cryptosweep.trading import models
from cryptosweep.trading.features import cached_features
from cryptosweep.trading.labels import triple_barrier_labels
from cryptosweep.trading.models import (
    CONTINUATION,
    checkpoint_path,
    make_entry_model,
    supports_continuation,
)
from machine import cpu_name  # benchmarks/ is on sys.path (the script's folder)

SEED, OTHER_SEED = 20240607, 99
LGB = {"num_leaves": 31, "learning_rate": 0.05, "min_data_in_leaf": 50}
XGB = {"max_depth": 6, "learning_rate": 0.05}
CAT = {"depth": 6, "learning_rate": 0.05}
MLP = {"hidden_units": 64, "layers": 2, "learning_rate": 1e-3, "batch_size": 256}
#: label, family, entry_model parameters
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("gbdt, no sampling", "lightgbm", LGB),
    ("gbdt, feature_fraction 0.8", "lightgbm", {**LGB, "feature_fraction": 0.8}),
    ("gbdt, bagging 0.8", "lightgbm", {**LGB, "bagging_fraction": 0.8, "bagging_freq": 1}),
    ("gbdt, goss", "lightgbm", {**LGB, "data_sample_strategy": "goss"}),
    ("dart", "lightgbm", {**LGB, "boosting": "dart"}),
    ("rf, bagging 0.632", "lightgbm", {**LGB, "boosting": "rf"}),
    ("rf, feature_fraction 0.5", "lightgbm", {**LGB, "boosting": "rf", "feature_fraction": 0.5,
                                              "bagging_freq": 0}),
    ("hist, no sampling", "xgboost", XGB),
    ("hist, subsample 0.8", "xgboost", {**XGB, "subsample": 0.8}),
    ("hist, colsample_bytree 0.8", "xgboost", {**XGB, "colsample_bytree": 0.8}),
    ("defaults (MVS, random_strength 1)", "catboost", CAT),
    ("Bernoulli subsample 0.8", "catboost", {**CAT, "bootstrap_type": "Bernoulli",
                                             "subsample": 0.8}),
    ("no randomness", "catboost", {**CAT, "random_strength": 0, "bootstrap_type": "No"}),
    ("MLP, dropout 0", "torch", {**MLP, "dropout": 0.0}),
    ("MLP, dropout 0.1", "torch", {**MLP, "dropout": 0.1}),
]
#: library messages when it refuses to continue -> what they mean
REFUSALS = {"init_score()) == (nullptr)": "no initial score allowed in rf mode"}
MECHANISM = {"lightgbm": "init_model (text model)", "xgboost": "xgb_model (.ubj)",
             "catboost": "snapshot (.cbsnapshot)", "torch": "full state (.npz)"}  # fmt: skip


def real_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features and triple-barrier labels of the bundled sample: (x_train, y_train, x_test)."""
    ohlcv, features = cached_features(None)
    prices = [ohlcv[c].to_numpy("float64") for c in ("open", "high", "low", "close")]
    label, _ = triple_barrier_labels(*prices, take_profit=0.05, stop_loss=0.03, max_holding=24,
                                     fees_bps=10.0, slippage_bps=2.0)  # fmt: skip
    x = features.to_numpy("float64")
    keep = np.isfinite(x).all(axis=1) & np.isfinite(label)
    x, y = x[keep], label[keep]
    cut = int(len(x) * 0.8)
    return x[:cut], y[:cut], x[cut:]


@contextlib.contextmanager
def every_lightgbm_mode_continues() -> Iterator[None]:
    """Measure what continuing would give in the modes the adapter retrains."""
    saved = dict(models.LIGHTGBM_CONTINUATION)
    models.LIGHTGBM_CONTINUATION.update(dict.fromkeys(saved, True))
    try:
        yield
    finally:
        models.LIGHTGBM_CONTINUATION.update(saved)


def timed(action: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def measure(label: str, family: str, params: dict[str, Any], budgets: tuple[int, int],
            data: tuple[np.ndarray, ...], repeats: int, threads: int, folder: Path
            ) -> dict[str, Any]:  # fmt: skip
    x, y, x_test = data
    small, large = budgets
    repro = ReproducibilityManager(seed=SEED, threads=threads)
    row: dict[str, Any] = {"case": label, "family": family, "b": small, "B": large,
                           "adapter": supports_continuation(family, params)}  # fmt: skip

    def scratch() -> np.ndarray:
        model = make_entry_model(family, params, repro)
        model.fit(x, y, large)
        return model.predict_proba(x_test)

    partial = make_entry_model(family, params, repro)
    partial.fit(x, y, small)
    started = time.perf_counter()
    path = partial.save(checkpoint_path(folder, f"{family}-{len(os.listdir(folder))}", family))
    row["save_ms"] = 1e3 * (time.perf_counter() - started)
    row["size_kb"] = sum(f.stat().st_size for f in folder.glob(f"{path.stem}.*")) / 1024

    def continued() -> np.ndarray:
        model = make_entry_model(family, params, repro)
        model.fit(x, y, large, init_from=path)
        if not model.last_fit_continued:
            raise RuntimeError("the adapter retrained from scratch (the library refused)")
        return model.predict_proba(x_test)

    def other() -> None:  # another seed's model between two continuations, in this thread
        make_entry_model(family, params, repro.for_trial(OTHER_SEED)).fit(x, y, small)

    scratch_runs: list[tuple[float, np.ndarray]] = []
    runs: list[tuple[float, np.ndarray]] = []
    try:
        with every_lightgbm_mode_continues():
            for _ in range(repeats):  # interleaved, so that both see the same machine load
                scratch_runs.append(timed(scratch))
                runs.append(timed(continued))
                other()
    except Exception as exc:  # the library refuses to continue (LightGBM rf)
        message = str(exc).splitlines()[0]
        row["refused"] = (f"{type(exc).__name__} ({REFUSALS[key]})" if (key := next(
            (k for k in REFUSALS if k in message), None)) else f"{type(exc).__name__}: {message}")
        row["scratch_s"] = min(t for t, _ in scratch_runs)
        return row
    reference = scratch_runs[0][1]
    row["scratch_stable"] = all(p.tobytes() == reference.tobytes() for _, p in scratch_runs)
    row["twice"] = all(p.tobytes() == runs[0][1].tobytes() for _, p in runs)
    row["equal"] = runs[0][1].tobytes() == reference.tobytes()
    row["max_diff"] = float(np.max(np.abs(runs[0][1] - reference)))
    row["scratch_s"] = min(t for t, _ in scratch_runs)
    row["continue_s"] = min(t for t, _ in runs)
    return row


def catboost_init_model(budgets: tuple[int, int], data: tuple[np.ndarray, ...], repeats: int,
                        threads: int, folder: Path) -> dict[str, Any]:  # fmt: skip
    """CatBoost's ``init_model`` (not what the adapter uses), for comparison."""
    from catboost import CatBoostClassifier

    x, y, x_test = data
    small, large = budgets
    adapter = make_entry_model("catboost", CAT, ReproducibilityManager(seed=SEED, threads=threads))
    settings = adapter.params
    labels = y.astype("int64")
    CatBoostClassifier(**settings, iterations=small).fit(x, labels).save_model(
        str(folder / "init.cbm"))  # fmt: skip

    def scratch() -> np.ndarray:
        return CatBoostClassifier(**settings, iterations=large).fit(x, labels).predict_proba(
            x_test)[:, 1]  # fmt: skip

    def once() -> np.ndarray:
        model = CatBoostClassifier(**settings, iterations=large - small)
        model.fit(x, labels, init_model=str(folder / "init.cbm"))
        return model.predict_proba(x_test)[:, 1]

    scratch_runs, runs = [], []
    for _ in range(repeats):
        scratch_runs.append(timed(scratch))
        runs.append(timed(once))
    reference = scratch_runs[0][1]
    return {"case": "defaults, via init_model (not used)", "family": "catboost", "b": small,
            "B": large, "adapter": None, "mechanism": "init_model (.cbm)",
            "twice": all(p.tobytes() == runs[0][1].tobytes() for _, p in runs),
            "equal": runs[0][1].tobytes() == reference.tobytes(),
            "max_diff": float(np.max(np.abs(runs[0][1] - reference))),
            "scratch_s": min(t for t, _ in scratch_runs),
            "continue_s": min(t for t, _ in runs)}  # fmt: skip


def yes(value: bool) -> str:
    return "yes" if value else "**no**"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| family | case | b → B | mechanism | (a) twice identical | (b) = scratch "
        "| max \\|Δp\\| vs scratch | scratch s | continue s | saved | checkpoint | adapter |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        mechanism = row.get("mechanism", MECHANISM[row["family"]])
        adapter = {True: "continues", False: "retrains", None: "not used"}[row["adapter"]]
        head = f"| {row['family']} | {row['case']} | {row['b']} → {row['B']} | {mechanism} |"
        if "refused" in row:
            lines.append(f"{head} refused: {row['refused']} | – | – | {row['scratch_s']:.2f} "
                         f"| – | – | – | {adapter} |")  # fmt: skip
            continue
        saved = 1.0 - row["continue_s"] / row["scratch_s"]
        size = (f"{row['size_kb']:.0f} KB, {row['save_ms']:.0f} ms" if "size_kb" in row
                else "–")  # fmt: skip
        lines.append(
            f"{head} {yes(row['twice'])} | {yes(row['equal'])} | {row['max_diff']:.2g} "
            f"| {row['scratch_s']:.2f} | {row['continue_s']:.2f} | {saved:.0%} | {size} "
            f"| {adapter} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per timing (>= 2)")
    parser.add_argument("--rounds", type=int, nargs=2, default=(100, 300), metavar=("b", "B"))
    parser.add_argument("--epochs", type=int, nargs=2, default=(10, 30), metavar=("b", "B"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--families", nargs="*", default=sorted(CONTINUATION))
    args = parser.parse_args()
    if args.repeats < 2:
        parser.error("--repeats must be >= 2 (continuation twice)")
    data = real_data()
    print(f"bundled BTC/USDT 1h sample: {len(data[0])} training bars x {data[0].shape[1]} "
          f"features, {len(data[2])} held-out bars; triple-barrier labels (tp 5%, sl 3%, 24 h)")
    print(f"{cpu_name()}, {args.threads} thread(s), seed {SEED}, best of {args.repeats}; "
          f"Python {platform.python_version()}, "
          + ", ".join(f"{name} {version(name)}" for name in
                      ("lightgbm", "xgboost", "catboost", "torch", "numpy")))  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory(prefix="continuation-") as folder:
        for label, family, params in CASES:
            if family not in args.families:
                continue
            budgets = tuple(args.epochs if family == "torch" else args.rounds)
            rows.append(measure(label, family, params, budgets, data, args.repeats,
                                args.threads, Path(folder)))  # fmt: skip
            print(f"  measured {family}: {label}", flush=True)
        if "catboost" in args.families:
            rows.append(catboost_init_model(tuple(args.rounds), data, args.repeats,
                                            args.threads, Path(folder)))  # fmt: skip
    unstable = [row["case"] for row in rows if row.get("scratch_stable") is False]
    if unstable:
        print(f"WARNING: training from scratch was not reproducible in: {unstable}")
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
