"""What a worker runs: one evaluation of a trial (:func:`run_evaluation`) or one end-of-sweep task
(:func:`run_final_task`), each returning a plain dict; an infrastructure fault is its own outcome,
never a trial's result. Imported by every dask worker, so it stays light."""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

from cryptosweep.core.faults import infrastructure_fault
from cryptosweep.core.files import finite_or_none

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """A finished evaluation as the worker saw it."""

    eval_id: int
    status: str  # "done" | "failed" | "lost" (its worker died) | "infrastructure" (disk full...)
    score: float | None
    metrics: dict[str, Any] | None
    error: str | None
    worker: str
    device: str
    started_at: float
    finished_at: float
    returns: list[float] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        return cls(**data)


def worker_name() -> str:
    """``dask-worker-address`` inside a dask worker, else ``host:pid``. A dask worker has
    ``distributed`` imported already; an in-process run does not import it only to ask."""
    distributed = sys.modules.get("distributed")
    if distributed is not None:
        try:
            return str(distributed.get_worker().address)
        except ValueError:  # not inside a worker
            pass
    return f"{socket.gethostname()}:{os.getpid()}"


def trial_device(use_gpu: bool) -> str:
    """The device a trial runs on. dask-cuda puts the worker's own GPU first in
    ``CUDA_VISIBLE_DEVICES``, so inside the process it is always ``cuda:0``."""
    return "cuda:0" if use_gpu else "cpu"


def run_evaluation(payload: dict[str, Any]) -> dict[str, Any]:
    """Evaluate one request (runs on a worker). Exceptions and NaN scores become failures."""
    from cryptosweep.trading.objective import evaluate_trial

    started = time.time()
    device = trial_device(bool(payload.get("use_gpu")))
    status, score, metrics, error, returns = "done", None, None, None, None
    try:
        metrics = evaluate_trial(
            payload["params"], payload["budget"], payload["seed"], payload["spec"], device=device,
            checkpoint=payload.get("checkpoint"),
        )
        returns = metrics.pop("oos_returns", None)
        score = metrics.get("score")
        if score is None or not math.isfinite(score):
            status, error = "failed", f"objective returned a non-finite score: {score!r}"
            score, metrics, returns = None, None, None
        # A metric beside the score may be infinite (a Calmar ratio whose annualised return
        # overflows on a short fold of fast bars): null, as the journal and results hold it.
        metrics = finite_or_none(metrics)
    except Exception as exc:  # a failing trial must not stop the sweep
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        fault = infrastructure_fault(exc)
        if fault is not None:  # the machine's fault, not the trial's: not a result
            status, error = "infrastructure", fault
        log.debug("evaluation %s failed:\n%s", payload["eval_id"], traceback.format_exc())
    physical = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0]
    return {
        "eval_id": payload["eval_id"],
        "status": status,
        "score": score,
        "metrics": metrics,
        "error": error,
        "worker": worker_name(),
        "device": f"{device} (GPU {physical})" if device != "cpu" and physical else device,
        "started_at": started,
        "finished_at": time.time(),
        "returns": returns,
    }


@dataclass(frozen=True)
class TaskOutcome:
    """A finished end-of-sweep task: its payload and its result, or the exception it raised
    (on the worker; re-raised by nothing: the caller decides)."""

    payload: dict[str, Any]
    result: Any = None
    error: BaseException | None = None


#: The kinds of end-of-sweep task :func:`run_final_task` runs.
FINAL_TASKS = ("holdout", "rerun", "validation", "baselines", "champion", "cpcv", "market")


def run_final_task(payload: dict[str, Any]) -> dict[str, Any]:
    """One end-of-sweep task (runs on a worker), on a plain-JSON payload with ``kind``:

    * ``holdout``, ``champion``: :func:`~cryptosweep.trading.objective.evaluate_holdout` of
      ``params``/``budget``/``seed`` (the champion: its recorded ones, under this run's spec);
    * ``rerun``: :func:`~cryptosweep.trading.objective.evaluate_trial` again with the recorded
      seed (and ``checkpoint``), without its per-bar returns (their digest is in the metrics);
    * ``validation``: :func:`~cryptosweep.trading.objective.evaluate_trial` from scratch at
      ``budget`` with ``seed`` (the top-k re-scored with other seeds, the winner's
      neighbourhood), with its per-bar returns;
    * ``baselines``: :func:`~cryptosweep.trading.objective.evaluate_baselines`;
    * ``cpcv``: :func:`~cryptosweep.trading.objective.evaluate_cpcv` with ``groups`` and
      ``test_groups`` (the path Sharpe ratios of a top-k configuration);
    * ``market``: :func:`~cryptosweep.trading.objective.evaluate_trial` from scratch on another
      market (the spec's data replaced by ``market_data``), without its per-bar returns.

    On the device a trial of this worker runs on. Exceptions propagate to the caller. Strict
    JSON, as the journal stores it: a metric that is not finite is null.
    """
    return finite_or_none(_final_task(payload))


def _final_task(payload: dict[str, Any]) -> dict[str, Any]:
    from cryptosweep.trading.objective import (
        evaluate_baselines,
        evaluate_cpcv,
        evaluate_holdout,
        evaluate_trial,
    )

    kind, spec = payload["kind"], payload["spec"]
    device = trial_device(bool(payload.get("use_gpu")))
    if kind in ("holdout", "champion"):
        return evaluate_holdout(payload["params"], payload["budget"], payload["seed"], spec,
                                device=device, stress_multiplier=payload.get("stress_multiplier"))
    if kind == "validation":
        return evaluate_trial(payload["params"], payload["budget"], payload["seed"], spec,
                              device=device)
    if kind == "rerun":
        rerun = evaluate_trial(payload["params"], payload["budget"], payload["seed"], spec,
                               device=device, checkpoint=payload.get("checkpoint"))
        rerun.pop("oos_returns")
        return rerun
    if kind == "baselines":
        return evaluate_baselines(spec)
    if kind == "cpcv":
        return evaluate_cpcv(payload["params"], payload["budget"], payload["seed"], spec,
                             payload["groups"], payload["test_groups"], device=device)
    if kind == "market":
        scored = evaluate_trial(payload["params"], payload["budget"], payload["seed"],
                                {**spec, "data": payload["market_data"]}, device=device)
        scored.pop("oos_returns")
        return scored
    raise ValueError(f"unknown end-of-sweep task kind {kind!r} (known: {FINAL_TASKS})")
