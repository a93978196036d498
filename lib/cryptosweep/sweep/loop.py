"""The search loop: ask -> journal -> submit -> gather -> ledger -> journal -> tell, with resume by
replay.

Results are told as they complete; the strategies' base class decides in which order they are
observed (eval-id order unless the strategy does not depend on it).

Resume is deterministic replay: the strategy is rebuilt from the journaled config and seed and
asked again from the start; every evaluation the journal already holds as finished is told from
the journal instead of being run, so the strategy sees exactly the history it saw before the
interruption and proposes exactly the same evaluations afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from typing import Any

from cryptosweep.core.config import SweepConfig
from cryptosweep.core.errors import InfrastructureError, ResumeError, SweepFailedError
from cryptosweep.execution.checkpoints import checkpoint_spec
from cryptosweep.execution.executors import Executor
from cryptosweep.execution.progress import Progress
from cryptosweep.execution.worker import Outcome
from cryptosweep.records.evaluations import EvaluationRow
from cryptosweep.records.journal import Journal
from cryptosweep.strategies import EvalRequest, EvalResult, Strategy, make_strategy
from cryptosweep.sweep.evidence import SearchLedger
from cryptosweep.sweep.opening import LOG_FILE

log = logging.getLogger(__name__)

MIN_EVALS_FOR_FAILURE_CHECK = 5


class SweepLoop:
    """Drives one strategy against one executor, journaling every step."""

    def __init__(
        self, config: SweepConfig, seed: int, journal: Journal, executor: Executor,
        show_progress: bool = True, use_gpu: bool = False, ledger: SearchLedger | None = None,
    ) -> None:
        self.config, self.seed, self.journal, self.executor = config, seed, journal, executor
        self.show_progress, self.use_gpu, self.ledger = show_progress, use_gpu, ledger
        self.spec = config.objective_spec().to_payload()
        self._requests: dict[int, EvalRequest] = {}
        self._payloads: dict[int, dict[str, Any]] = {}
        self._finished = self._failed = 0  # every finished evaluation, journaled ones included

    def run(self) -> Strategy:
        strategy = make_strategy(self.config, self.seed)
        journal = {row.eval_id: row for row in self.journal.evaluations()}
        finished_before = sum(row.status in ("done", "failed") for row in journal.values())
        self._finished = finished_before
        self._failed = sum(row.status == "failed" for row in journal.values())
        if journal:
            log.info("resuming: %d evaluations in the journal, %d finished (%d failed)",
                     len(journal), finished_before, self._failed)
        progress = Progress(strategy.total_evaluations, self.show_progress, finished_before,
                            full_budget=float(self.config.full_budget_units))
        try:
            while True:
                # Read once a round (with a trial timeout it asks the scheduler which workers
                # are up): it changes only as results come back, between rounds.
                capacity = max(1, self.executor.capacity)
                while self.executor.in_flight < capacity:
                    request = strategy.ask()
                    if request is None:
                        break
                    replayed = self._journal_or_submit(request, journal.get(request.eval_id))
                    if replayed is not None:  # finished before an interruption: told again
                        strategy.tell(replayed)
                        progress.observe(replayed.score, request.budget)
                if self.executor.in_flight == 0:
                    if strategy.finished:
                        break
                    raise RuntimeError(f"strategy {strategy.name} stalled with nothing running")
                for outcome in self.executor.wait():
                    if outcome.status == "infrastructure":
                        self._stop_for_infrastructure(outcome)
                    if outcome.status == "lost" and self._retry(outcome):
                        continue
                    strategy.tell(self._record(outcome))
                    progress.update(outcome.score, self._requests[outcome.eval_id].budget,
                                    failed=outcome.status != "done")
                    self._check_failures()
        finally:
            progress.close()
        return strategy

    def _journal_or_submit(
        self, request: EvalRequest, row: EvaluationRow | None
    ) -> EvalResult | None:
        """A finished journaled evaluation is returned as its result; anything else is run."""
        self._requests[request.eval_id] = request
        if row is not None:
            _check_replay(row, request)
            if row.status in ("done", "failed"):
                return EvalResult(row.eval_id, row.trial_id, row.status, row.score)  # type: ignore[arg-type]
        self._payloads[request.eval_id] = {
            "eval_id": request.eval_id, "params": request.params, "budget": request.budget,
            "seed": request.seed, "spec": self.spec, "use_gpu": self.use_gpu,
            "checkpoint": checkpoint_spec(self.config, self.journal.path.parent, request.trial_id,
                                          request.tags),
        }
        if row is not None:  # journaled but unfinished (interrupted): one more attempt
            self._submit(request.eval_id)
            return None
        # Committed with the next transaction (normally this evaluation's finish): one commit
        # per trial. A crash before loses only the record that it had started.
        self.journal.add_evaluation(
            request.eval_id, request.trial_id, request.params, request.seed, request.budget,
            request.tags, submitted_at=time.time(), defer=True,
        )
        self.executor.submit({**self._payloads[request.eval_id], "attempt": 1})
        log.debug("eval %d submitted: trial %d, budget %g, seed %d", request.eval_id,
                  request.trial_id, request.budget, request.seed)
        return None

    def _submit(self, eval_id: int) -> int:
        attempt = self.journal.mark_submitted(eval_id, time.time())
        self.executor.submit({**self._payloads[eval_id], "attempt": attempt})
        log.debug("eval %d submitted again: attempt %d", eval_id, attempt)
        return attempt

    def _retry(self, outcome: Outcome) -> bool:
        """Re-run a trial whose worker died, with the same seed, while retries are left.
        Only the attempts whose worker died count: one stopped by the machine (a full disk)
        or by the sweep's own end (killed, interrupted) says nothing about the trial."""
        self.journal.mark_attempt_outcome(outcome.eval_id, "lost")
        deaths = sum(1 for eval_id, _, what in self.journal.attempt_outcomes()
                     if eval_id == outcome.eval_id and what == "lost")
        if deaths > self.config.execution.max_retries:
            log.error("evaluation %d: its worker died in %d attempts", outcome.eval_id, deaths)
            return False
        log.warning("evaluation %d: %s; retrying (retry %d of %d)", outcome.eval_id,
                    outcome.error, deaths, self.config.execution.max_retries)
        self._submit(outcome.eval_id)
        return True

    def _stop_for_infrastructure(self, outcome: Outcome) -> None:
        """A worker's evaluation hit an infrastructure fault: not a result. Its attempt is
        closed as such (if the journal can still be written) and the evaluation stays
        unfinished, so that a resume runs it again; the sweep stops."""
        with contextlib.suppress(Exception):
            self.journal.mark_attempt_outcome(outcome.eval_id, "infrastructure")
        raise InfrastructureError(
            f"evaluation {outcome.eval_id} could not be stored by its worker ({outcome.error}); "
            "it is not counted as a result"
        )

    def _check_failures(self) -> None:
        limit = self.config.execution.max_failure_fraction
        if self._finished >= MIN_EVALS_FOR_FAILURE_CHECK and self._failed > limit * self._finished:
            raise SweepFailedError(
                f"{self._failed} of {self._finished} evaluations failed, more than "
                f"execution.max_failure_fraction={limit:g}; stopping. Everything finished is in "
                f"the journal; see the failures in {LOG_FILE} and resume with --resume once fixed"
            )

    def _record(self, outcome: Outcome) -> EvalResult:
        self._finished += 1
        if outcome.status != "done":
            self._failed += 1
            log.warning("evaluation %d failed: %s", outcome.eval_id, outcome.error)
            outcome = dataclasses.replace(outcome, status="failed")
        else:
            if self.ledger is not None:  # first: every trial the journal holds is counted
                self.ledger.record(self._requests[outcome.eval_id], outcome)
            log.debug("eval %d done: score %+.4f in %.2f s on %s (%s)", outcome.eval_id,
                      outcome.score, outcome.finished_at - outcome.started_at, outcome.worker,
                      outcome.device)
        self.journal.finish_evaluation(
            outcome.eval_id, status=outcome.status, score=outcome.score, metrics=outcome.metrics,
            error=outcome.error, worker=outcome.worker, device=outcome.device,
            started_at=outcome.started_at, finished_at=outcome.finished_at,
            returns=outcome.returns,
        )
        trial_id = self._requests[outcome.eval_id].trial_id
        return EvalResult(outcome.eval_id, trial_id, outcome.status, outcome.score)  # type: ignore[arg-type]


def _check_replay(row: EvaluationRow, request: EvalRequest) -> None:
    if row.request() != dataclasses.replace(request, tags=row.tags):
        raise ResumeError(
            f"journal diverges from the strategy at evaluation {request.eval_id}: the run was "
            "made by another version of cryptosweep or its journal was edited"
        )
