"""The progress line's "best" is the best at the full budget, never a low-rung score."""

from __future__ import annotations

import logging
import re

from conftest import tiny_config
from cryptosweep.config import validate_config
from cryptosweep.progress import Progress
from cryptosweep.runner import run_sweep


def test_a_low_rung_score_is_not_the_best(caplog):
    caplog.set_level(logging.INFO, logger="cryptosweep.progress")
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


def test_the_last_progress_line_names_the_winner_of_a_hyperband_sweep(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="cryptosweep.progress")
    config = validate_config(tiny_config(sweep_type="hyperband", objective__rounds_per_unit=3,
                                         hyperband={"max_iter": 4, "eta": 2}))
    result = run_sweep(config=config, seed=5, log_dir=tmp_path, run_name="hb",
                       show_progress=False)
    scores = [e["score"] for e in result.results["evaluations"] if e["score"] is not None]
    winner = result.results["best"]["score"]
    assert max(scores) > winner, "this seed must have a low-rung score above the winner"
    last = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")][-1]
    shown = re.search(r"best at full budget \(4\) (\S+),", last)
    assert shown and float(shown.group(1)) == round(winner, 4), last
