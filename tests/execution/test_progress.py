"""What a finished Hyperband sweep says and leaves: the progress line's "best" is the best at
the full budget, never a low-rung score; its checkpoints are removed unless
``reporting.keep_checkpoints``, which changes nothing else."""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace

import pytest

from cryptosweep.core.config_files import validate_config
from cryptosweep.execution.progress import Progress
from cryptosweep.sweep.runner import run_sweep
from tests.support import deterministic_bytes, tiny_config


def test_a_low_rung_score_is_not_the_best(caplog):
    caplog.set_level(logging.INFO, logger="cryptosweep.execution.progress")
    progress = Progress(total=4, show_bar=False, full_budget=9.0)
    progress.update(0.668, budget=1.0)
    progress.update(0.9, budget=3.0)
    assert progress.best is None
    progress.update(-0.728, budget=9.0)
    progress.update(None, budget=9.0, failed=True)
    assert progress.best == -0.728
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("progress: 1/4 evaluations (25%), best at full budget (9) -,")
    assert lines[-1].startswith("progress: 4/4 evaluations (100%), best at full budget (9) "
                                "-0.7280, failed 1")
    progress.observe(5.0, budget=1.0)  # a replayed low-rung evaluation (resume)
    progress.observe(0.1, budget=9.0)
    assert progress.best == 0.1


def _hyperband(log_dir, name: str, **changes) -> SimpleNamespace:
    config = validate_config(tiny_config(sweep_type="hyperband", objective__rounds_per_unit=3,
                                         hyperband={"max_iter": 4, "eta": 2}, **changes))
    handler = _Collect()
    logging.getLogger("cryptosweep").addHandler(handler)
    try:
        result = run_sweep(config=config, seed=5, log_dir=log_dir, run_name=name,
                           show_progress=False)
    finally:
        logging.getLogger("cryptosweep").removeHandler(handler)
    return SimpleNamespace(result=result, run_dir=result.run_dir, lines=handler.lines)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def hb(tmp_path_factory):
    return _hyperband(tmp_path_factory.mktemp("hb"), "hb")


def test_the_last_progress_line_names_the_winner_of_a_hyperband_sweep(hb):
    results = hb.result.results
    scores = [e["score"] for e in results["evaluations"] if e["score"] is not None]
    winner = results["best"]["score"]
    assert max(scores) > winner, "this seed must have a low-rung score above the winner"
    last = [line for line in hb.lines if line.startswith("progress:")][-1]
    shown = re.search(r"best at full budget \(4\) (\S+),", last)
    assert shown and float(shown.group(1)) == round(winner, 4), last


def test_checkpoints_are_removed_once_the_run_is_complete_unless_kept(hb, tmp_path):
    assert results_continued(hb.result.results), "promotions used checkpoints in this run"
    assert not (hb.run_dir / "checkpoints").exists()
    assert any(line.startswith("removed the run's checkpoints (") for line in hb.lines)
    kept = _hyperband(tmp_path, "kept", reporting__keep_checkpoints=True)
    assert any((kept.run_dir / "checkpoints").rglob("*.json"))
    assert deterministic_bytes(kept.run_dir).replace(b'"keep_checkpoints": true',
                                                     b'"keep_checkpoints": false') == \
        deterministic_bytes(hb.run_dir), "keeping checkpoints changes no result"


def results_continued(results) -> bool:
    return any((e.get("metrics") or {}).get("continued") for e in results["evaluations"])
