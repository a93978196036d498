"""Fixtures every test folder shares: real sweeps run once per session."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import (
    EXPLORE_SEED,
    FAMILY_RANGES,
    explore_config,
    results_file,
    tiny_config,
)

# A suite started in the background by a non-interactive shell (`make test &`, nohup, some CI
# runners) inherits SIGINT ignored, and so would every CLI the tests start: their Ctrl-C tests
# would then test nothing. Handled here, the CLIs start with SIGINT at its default again.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

#: The test files that take longest, slowest first: the seconds one worker spends on each (a
#: full run on 2 cores, 2026-12-08). ``make test`` gives each of its workers a whole file at a
#: time, in collection order (``--no-loadscope-reorder``); these go first, so that the last
#: files handed out are short ones. xdist's own order (most tests first) left the three-night
#: field test to the end, and one worker idle for a minute and a half. Only the wall time
#: depends on this list; a test checks that every file it names exists.
SLOWEST_FILES = (
    "nightly/test_pipeline.py",  # 126 s
    "strategies/test_determinism.py",  # 116 s
    "nightly/test_field.py",  # 85 s
    "core/test_faults.py",  # 80 s
    "nightly/test_nightly_hostile.py",  # 67 s
    "sweep/test_resume.py",  # 65 s
    "test_entry_points.py",  # 62 s
    "explore/test_notebook.py",  # 61 s
    "reporting/test_report.py",  # 55 s
    "sweep/test_runner.py",  # 48 s
    "walkforward/test_driver.py",  # 41 s
    "execution/test_executors_cluster.py",  # 40 s
    "test_notebooks.py",  # 33 s
    "sweep/test_evidence.py",  # 25 s
    "production/test_model.py",  # 18 s
    "marketdata/test_update.py",  # 17 s
    "core/test_config.py",  # 13 s
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The files of :data:`SLOWEST_FILES` first, in its order; the others after them, as
    collected. Within a file, the tests keep their order."""
    tests = Path(__file__).parent
    rank = {tests / name: position for position, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path, len(rank)))


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a config dict as YAML and return its path."""

    def write(config: dict[str, Any], name: str = "sweep.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def family_sweep(tmp_path_factory):
    """``family_sweep(family)``: the run folder of a finished one-configuration sweep of that
    model family on the bundled data (real, in-process; run once per session and family).
    Shorts are allowed for XGBoost and torch, slippage is 2 bps, and entry thresholds below
    0.5 make sure that every family trades on the holdout."""
    from cryptosweep.core.config_files import load_config
    from cryptosweep.sweep.runner import run_sweep

    base = tmp_path_factory.mktemp("family_sweeps")
    runs: dict[str, Path] = {}

    def run(family: str) -> Path:
        if family not in runs:
            config = tiny_config(
                name=f"one_{family}", random__n_trials=1, reporting__top_k=1,
                parameter_ranges={family: FAMILY_RANGES[family], "trading": {
                    **tiny_config()["parameter_ranges"]["trading"],
                    "threshold": {"type": "float", "low": 0.40, "high": 0.48},  # trades
                }},
                objective__models=[family], objective__slippage_bps=2.0,
                objective__allow_short=family in ("xgboost", "torch"),
            )
            result = run_sweep(config=load_config(raw=config), seed=17, log_dir=base,
                               run_name=family, show_progress=False)
            runs[family] = Path(result.run_dir)
        return runs[family]

    return run


@pytest.fixture(scope="session")
def explore_reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reports folder as the explorer finds one: two real finished runs, ``night1``
    (Hyperband, :func:`explore_config`, seed :data:`EXPLORE_SEED`) and ``night2`` (random), a
    ``latest`` link, and copies of them that cannot be opened as they are: ``half_written``
    (results cut off mid-file), ``other_version`` (results of an older schema), ``running``
    (its journal says running, no results yet) and ``incomplete`` (the journal says complete,
    no results)."""
    from cryptosweep.core.config_files import validate_config
    from cryptosweep.sweep.runner import run_sweep

    reports = tmp_path_factory.mktemp("explore") / "reports"
    run_sweep(config=validate_config(explore_config()), seed=EXPLORE_SEED, log_dir=reports,
              run_name="night1", show_progress=False)
    run_sweep(config=validate_config(tiny_config()), seed=3, log_dir=reports,
              run_name="night2", show_progress=False)
    (reports / "latest").symlink_to("night2")
    for name, source in (("half_written", "night2"), ("other_version", "night2"),
                         ("running", "night1"), ("incomplete", "night1")):
        shutil.copytree(reports / source, reports / name)
    results = results_file(reports / "half_written")
    results.write_bytes(results.read_bytes()[: results.stat().st_size // 2])
    older = json.loads(results_file(reports / "other_version").read_text())
    older["schema"] = "cryptosweep.sweep_results/0"
    del older["run"]
    results_file(reports / "other_version").write_text(json.dumps(older))
    for name, status in (("running", "running"), ("incomplete", "complete")):
        results_file(reports / name).unlink()
        conn = sqlite3.connect(reports / name / "sweep.db")
        with conn:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'status'", (json.dumps(status),))
        conn.close()
    return reports
