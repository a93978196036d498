"""The search loop's journal: one transaction per trial, and what a crash can cost."""

from __future__ import annotations

import time

import pytest

from cryptosweep.core.config_files import validate_config
from cryptosweep.core.errors import InfrastructureError
from cryptosweep.execution.executors import InProcessExecutor
from cryptosweep.execution.worker import Outcome
from cryptosweep.records.journal import Journal
from cryptosweep.sweep.loop import SweepLoop
from tests.support import tiny_config


class _Instant(InProcessExecutor):
    """Trials that return at once (the loop's and the journal's cost alone)."""

    def wait(self) -> list[Outcome]:
        payload = self._queue.popleft()
        now = time.time()
        score = (payload["seed"] % 1000) / 1000
        return [Outcome(eval_id=payload["eval_id"], status="done", score=score,
                        metrics={"score": score}, error=None, worker="w", device="cpu",
                        started_at=now, finished_at=now, returns=[0.0, score, 0.0])]


def test_a_trial_costs_one_committed_transaction(tmp_path):
    """A trial cost two commits (its running row, then its result), each synced to disk."""
    n = 25
    journal = Journal(tmp_path / "sweep.db")
    statements: list[str] = []
    journal._conn.set_trace_callback(statements.append)
    SweepLoop(validate_config(tiny_config(random__n_trials=n)), 1, journal, _Instant(),
              show_progress=False).run()
    commits = sum(s.strip().upper() == "COMMIT" for s in statements)
    assert commits == n == journal.commits
    assert journal._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    rows = journal.evaluations()
    assert len(rows) == n and all(r.status == "done" and r.attempts == 1 for r in rows)
    assert len(journal.get_returns("validation")) == n
    journal.close()


class _Scripted(_Instant):
    """Trials that return at once, except the attempts ``script`` names: ``(eval_id,
    attempt) -> status`` (``lost``: its worker died; ``infrastructure``: a full disk)."""

    def __init__(self, script: dict[tuple[int, int], str]) -> None:
        super().__init__()
        self.script = script

    def wait(self) -> list[Outcome]:
        payload = self._queue[0]
        status = self.script.get((payload["eval_id"], payload["attempt"]))
        if status is None:
            return super().wait()
        self._queue.popleft()
        now = time.time()
        return [Outcome(eval_id=payload["eval_id"], status=status, score=None, metrics=None,
                        error=f"{status} (scripted)", worker="w", device="cpu", started_at=now,
                        finished_at=now)]


def test_only_a_dead_worker_spends_a_retry_not_a_full_disk_or_a_killed_sweep(tmp_path):
    """An attempt stopped by a full disk (or by the sweep's own kill) was counted as a retry:
    with execution.max_retries 1, a full disk, a resume and then one worker death recorded the
    trial as failed ("worker died in all 2 attempts"), where an uninterrupted run retries it
    (a helper's attack)."""
    config = validate_config(tiny_config(random__n_trials=2, execution__max_retries=1))
    journal = Journal(tmp_path / "sweep.db")
    with pytest.raises(InfrastructureError):
        SweepLoop(config, 1, journal, _Scripted({(0, 1): "infrastructure"}),
                  show_progress=False).run()
    # Resumed: the sweep is killed during attempt 2, then resumed again.
    journal.mark_submitted(0, time.time())
    SweepLoop(config, 1, journal, _Scripted({(0, 3): "lost"}), show_progress=False).run()
    rows = {row.eval_id: row for row in journal.evaluations()}
    assert rows[0].status == "done", rows[0].error
    assert [what for e, _, what in journal.attempt_outcomes() if e == 0] == [
        "infrastructure", None, "lost", "done"]
    journal.close()
