"""The search loop's journal: one transaction per trial, and what a crash can cost."""

from __future__ import annotations

import time

from cryptosweep.core.config_files import validate_config
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
