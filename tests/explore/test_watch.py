"""``explore.watch``: the live view of a sweep, against a real sweep run by the CLI in another
process and one started in a thread of this process; the sweep's results must be exactly those
of the same sweep run without a watcher."""

from __future__ import annotations

import concurrent.futures
import json
import math
import subprocess
import sys
import time
from collections import Counter

import pytest

from cryptosweep.core.config_files import validate_config
from cryptosweep.core.errors import ConfigError
from cryptosweep.explore import start_sweep, watch
from cryptosweep.explore.watch import (
    BackgroundSweep,
    Snapshot,
    WatchedPlan,
    Watcher,
    take_snapshot,
)
from cryptosweep.records.journal import EvaluationRow, Journal
from tests.support import EXPLORE_SEED, deterministic_bytes, explore_config, tiny_config

pytestmark = pytest.mark.slow


def test_watch_follows_a_cli_sweep_in_another_process_without_changing_it(
        explore_reports, tmp_path):
    config = tmp_path / "sweep.json"
    config.write_text(json.dumps(explore_config()))
    run_dir = tmp_path / "reports" / "watched"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "cryptosweep", "run", "--config", str(config), "--seed",
         str(EXPLORE_SEED), "--log-dir", str(tmp_path / "reports"), "--run-name", "watched",
         "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watcher = watch(run_dir, interval=0.05)  # before the run folder exists
    try:
        assert watcher.join(timeout=300), "the watcher stops by itself"
        _, stderr = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    assert sweep.returncode == 0, stderr[-3000:]
    assert watcher.error is None and watcher.reason == "the sweep is complete: watching stopped"

    total = watcher.plan.total
    done = [d for _, d, _ in watcher.history]
    assert total == 22 and done[0] == 0 and done[-1] == total
    assert done == sorted(done), "finished evaluations never go back"
    assert any(0 < d < total for d in done), "it saw the sweep in progress"
    assert watcher.last.status == "complete" and watcher.last.failed == 0

    # the sweep did exactly what it does unwatched (night1: same config and seed, no watcher)
    assert deterministic_bytes(run_dir) == deterministic_bytes(explore_reports / "night1")
    log = (run_dir / "sweep_output.log").read_text()
    assert "locked" not in log and "locked" not in stderr

    # the last figures drawn are the journal's
    journal = Journal(run_dir / "sweep.db")
    rows = journal.evaluations()
    journal.close()
    figures = watcher.figures
    markers = [t for t in figures["history"].data if t.mode == "markers"]
    assert sorted(i for t in markers for i, _ in t.customdata) == [r.eval_id for r in rows]
    best_line = next(t for t in figures["history"].data if t.mode == "lines")
    top = max(r.budget for r in rows)
    assert best_line.y[-1] == max(r.score for r in rows if r.budget == top)
    per_rung = Counter((r.tags["iteration"], r.tags["bracket"], r.tags["rung"]) for r in rows)
    done_bars = next(t for t in figures["rungs"].data if t.name == "done")
    assert list(done_bars.y) == [per_rung[key] for key in sorted(
        per_rung, key=lambda k: (k[0], -k[1], k[2]))]
    assert sorted(e for t in figures["workers"].data for e, *_ in t.customdata) == [
        r.eval_id for r in rows]
    status = watcher.widget.children[0].value
    assert "22 of 22 evaluations finished" in status and "watching stopped" in status


def test_watch_follows_a_sweep_started_in_a_thread_of_this_process(tmp_path):
    sweep = start_sweep(config=validate_config(tiny_config(random__n_trials=8)), seed=3,
                        log_dir=tmp_path, run_name="here")
    watcher = watch(sweep, interval=0.05)
    assert watcher.join(timeout=300)
    result = sweep.result(timeout=60)
    assert result.run_dir == sweep.run_dir == tmp_path / "here"
    assert watcher.last.done == 8 and watcher.last.status == "complete"
    assert watcher.reason == "the sweep is complete: watching stopped", (
        "the last poll is taken after the sweep returned")

    broken = start_sweep(tmp_path / "no-such-config.yaml", log_dir=tmp_path, run_name="broken")
    failed = watch(broken, interval=0.05)
    assert failed.join(timeout=60)
    assert failed.reason.startswith("the sweep raised") and "no-such-config" in failed.reason
    assert not (tmp_path / "broken").exists()


def test_watch_of_a_finished_run_draws_once_and_of_a_missing_one_gives_up(
        explore_reports, tmp_path):
    finished = watch(explore_reports / "night1", interval=60)
    assert not finished.running and len(finished.history) == 1
    assert finished.reason == "the sweep is complete: watching stopped"
    assert finished.figures["rungs"] is not None and finished.figures["workers"] is not None
    charts = [output.outputs for output in finished.widget.children[1:]]
    finished.poll()  # nothing changed: the page's charts are not redrawn (no flicker)
    assert [output.outputs for output in finished.widget.children[1:]] == charts
    assert all(a is b for a, b in zip(charts, [o.outputs for o in finished.widget.children[1:]],
                                      strict=True))

    missing = watch(tmp_path / "never", interval=0.05, timeout=0.3)
    assert missing.join(timeout=10) and missing.reason == "watched for 0.3 s: watching stopped"
    assert missing.last.status is None
    assert "waiting for the journal" in missing.widget.children[0].value


def test_watch_refuses_an_interval_or_timeout_that_is_not_a_number_of_seconds(tmp_path):
    """Bad values are a ConfigError naming them, before anything polls: a NaN interval polled
    in a busy loop (20,000 journal reads in half a second), an infinite one killed the
    poller's thread, text raised a TypeError."""
    for bad in ({"interval": 0}, {"interval": math.nan}, {"interval": math.inf},
                {"interval": "3"}, {"interval": True}, {"timeout": -1}, {"timeout": "10"}):
        name = next(iter(bad))
        with pytest.raises(ConfigError, match=f"watch: {name} must be a finite number"):
            watch(tmp_path / "never", **bad)


def test_a_watcher_that_sees_its_sweep_return_reads_the_journal_once_more(explore_reports):
    # the race: a poll reads "running", then the sweep finishes and its thread returns before
    # the watcher checks; the watcher must show the journal as the sweep left it
    returned: concurrent.futures.Future[None] = concurrent.futures.Future()
    returned.set_result(None)
    run_dir = explore_reports / "night1"
    watcher = Watcher(BackgroundSweep(run_dir, returned), interval=60)
    stale = Snapshot(run_dir, time.time(), "running")
    assert watcher._finish_if_ended(stale)
    assert watcher.reason == "the sweep is complete: watching stopped"
    assert watcher.last.status == "complete" and watcher.last.done == 22
    assert "complete — 22 of 22" in watcher.widget.children[0].value


def _row(eval_id: int, budget: float, status: str, score: float | None = None) -> EvaluationRow:
    return EvaluationRow(eval_id=eval_id, trial_id=eval_id, params={}, budget=budget, seed=1,
                         status=status, score=score, metrics=None, error=None, worker=None,
                         device=None, started_at=None, finished_at=None, attempts=1)


def test_the_status_line_shows_a_best_only_at_full_budget_and_running_at_most_the_slots(
        explore_reports, tmp_path):
    # Before the fix: "best +1.2345" from a budget-1 rung, and "4 running" on 2 workers (the
    # runner keeps a queue of submitted evaluations ahead of the workers).
    plan = WatchedPlan(total=10, full_budget=4.0)
    low = [_row(0, 1.0, "done", 1.2345), _row(1, 1.0, "done", 0.5)]
    queued = [_row(i, 1.0, "running") for i in range(2, 6)]
    early = Snapshot(tmp_path, time.time(), "running", rows=(*low, *queued), slots=2)
    line = early.text(plan)
    assert line.endswith("best at full budget: –") and "1.2345" not in line
    assert "2 running, 2 queued" in line and "4 running" not in line
    later = Snapshot(tmp_path, time.time(), "running", slots=2,
                     rows=(*low, _row(6, 4.0, "done", 0.25), _row(7, 4.0, "running")))
    assert later.text(plan).endswith("best at full budget: +0.2500")
    assert "1 running;" in later.text(plan)
    # the runner records the slots: night1 ran in-process, one at a time
    assert take_snapshot(explore_reports / "night1").slots == 1


def test_a_sweep_started_from_a_kernel_in_notebooks_lands_where_the_explorer_looks(
        tmp_path, monkeypatch):
    """JupyterLab starts kernels in notebooks/: start_sweep read its config path and made
    its run folder against that directory (notebooks/reports/...), while the explorer reads
    the repository's reports folder; the parameters/ config was not found."""
    import yaml

    import cryptosweep.core.paths
    from cryptosweep.explore import Explorer

    repository = tmp_path / "repo"
    (repository / "reports").mkdir(parents=True)
    (repository / "parameters").mkdir()
    (repository / "notebooks").mkdir()
    (repository / "parameters" / "tiny.yaml").write_text(yaml.safe_dump(
        tiny_config(random__n_trials=1, reporting__top_k=1)))
    monkeypatch.setattr(cryptosweep.core.paths, "REPOSITORY", repository)
    monkeypatch.chdir(repository / "notebooks")
    sweep = start_sweep("parameters/tiny.yaml", run_name="from_lab", seed=1)
    sweep.result(timeout=120)
    assert sweep.run_dir == repository / "reports" / "from_lab"
    assert [run.name for run in Explorer("reports").runs] == ["from_lab"]
    assert not list((repository / "notebooks").iterdir())
