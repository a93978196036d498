"""The ways in: the CLI, the notebooks (under papermill and from JupyterLab's working
directory), a plain script with the original API. They agree on the seed, say how to resume
when interrupted, and fail at once where a script would hang."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cryptosweep.core.config import DEFAULT_SEED
from cryptosweep.core.paths import resolve
from cryptosweep.nightly.pipeline import Settings
from tests.support import REPO, cli, done_count, results_file, tiny_config

pytestmark = pytest.mark.slow

PAPERMILL = str(Path(sys.executable).parent / "papermill")


# ------------------------------------------------------------------------------------ the seed


def test_a_config_seed_is_used_by_the_notebook_as_by_the_cli(tmp_path):
    """One rule everywhere: an explicit seed, else the config's ``seed``, else 123456. The
    notebook's parameter (and so the nightly and ``make sweep``) used to pass 123456 always."""
    config = tmp_path / "sweep.json"
    config.write_text(json.dumps(tiny_config(seed=99, random__n_trials=2)))
    done = subprocess.run(
        [PAPERMILL, "-k", "cryptosweep", str(REPO / "notebooks" / "sweep.ipynb"),
         str(tmp_path / "out.ipynb"), "-p", "config_path", str(config),
         "-p", "log_dir", str(tmp_path), "-p", "run_name", "nb", "-p", "show_progress", "False"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(results_file(tmp_path / "nb").read_text())["seed"] == 99


def test_the_nightly_reads_the_seed_by_the_same_rule():
    assert Settings.from_environment({}).seed is None  # then: the config's seed, else default
    assert Settings.from_environment({"SWEEP_SEED": "7"}).seed == 7
    assert DEFAULT_SEED == 123456


# ---------------------------------------------------------------- notebooks from JupyterLab


def test_the_sweep_notebook_runs_with_notebooks_as_its_working_directory(tmp_path):
    """JupyterLab starts the kernel in ``notebooks/``: the default ``config_path``
    (``parameters/demo.yaml``, relative to the repository) must still be found."""
    done = subprocess.run(
        [PAPERMILL, "-k", "cryptosweep", "sweep.ipynb", str(tmp_path / "out.ipynb"),
         "-p", "log_dir", str(tmp_path), "-p", "run_name", "lab", "-p", "show_progress", "False",
         "-y", "overrides: [sweep_type=random, random.n_trials=2, hyperband.max_iter=1, "
               "objective.folds=2, objective.rounds_per_unit=3, execution.workers=0]"],
        capture_output=True, text=True, timeout=300, cwd=REPO / "notebooks")
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(results_file(tmp_path / "lab").read_text())
    assert results["counts"]["done"] == 2 and results["config"]["name"] == "demo"


def test_relative_paths_resolve_from_the_working_directory_then_the_repository(tmp_path,
                                                                              monkeypatch):
    monkeypatch.chdir(REPO / "notebooks")
    assert resolve("parameters/demo.yaml") == REPO / "parameters" / "demo.yaml"
    assert resolve("sweep.ipynb") == REPO / "notebooks" / "sweep.ipynb"
    assert resolve("nowhere/x.yaml") == REPO / "notebooks" / "nowhere" / "x.yaml"
    assert resolve(tmp_path) == tmp_path and resolve(None) is None


# ------------------------------------------------------------- the original API in a script


HEADER = """import json
from cryptosweep import HyperbandRunner
from cryptosweep.core.config_files import load_config
config = load_config(raw=json.loads({config!r}))
"""
CALL = """HyperbandRunner(seed=1, config=config, log_dir={log_dir!r}, enable_gpu=False, workers=2,
                show_progress=False).run_hyperband_optimization(1)
print("done")
"""


def _script(tmp_path: Path, guarded: bool) -> str:
    """The original API in a plain script, with or without the ``__main__`` guard."""
    config = json.dumps(tiny_config(hyperband={"max_iter": 2, "eta": 2},
                                    objective__rounds_per_unit=2))
    call = CALL.format(log_dir=str(tmp_path / "logs"))
    if guarded:
        call = 'if __name__ == "__main__":\n' + "".join(
            f"    {line}\n" for line in call.splitlines())
    return HEADER.format(config=config) + call


def test_an_unguarded_script_fails_at_once_with_what_to_do(tmp_path):
    """Worker processes re-import the main script: an unguarded one used to print bootstrap
    tracebacks and hang; piped through ``python -`` it failed with "Nanny failed to start"."""
    script = tmp_path / "sweep_script.py"
    script.write_text(_script(tmp_path, guarded=False))
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode != 0 and time.monotonic() - started < 60
    assert 'if __name__ == "__main__":' in done.stderr and "workers=0" in done.stderr
    assert not (tmp_path / "logs").exists(), "nothing is created before the check"
    piped = subprocess.run([sys.executable, "-"], input=_script(tmp_path, guarded=False),
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert piped.returncode != 0 and "read from <stdin>" in piped.stderr


def test_a_guarded_script_runs_the_original_api_on_worker_processes(tmp_path):
    script = tmp_path / "sweep_script.py"
    script.write_text(_script(tmp_path, guarded=True))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("done")


# ------------------------------------------------------------------------------ interruption


@pytest.mark.parametrize(("sig", "code", "name"), [(signal.SIGINT, 130, "SIGINT"),
                                                   (signal.SIGTERM, 143, "SIGTERM")])
def test_interrupting_says_once_how_to_resume_the_real_run(tmp_path, write_config, sig, code,
                                                           name):
    """Ctrl-C reaches the whole process group (the workers too); SIGTERM only the CLI. Either
    way: one line with the real resume command, no worker tracebacks, and the resume ends the
    sweep."""
    trials = 30  # the signal comes after 2: the rest leaves seconds to spare, even under load
    config = write_config(tiny_config(random__n_trials=trials, execution__workers=2))
    run_dir = tmp_path / "stopped"
    process = subprocess.Popen(
        [sys.executable, "-m", "cryptosweep", "run", "--config", str(config), "--log-dir",
         str(tmp_path), "--run-name", "stopped"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while done_count(run_dir / "sweep.db") < 2:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    if sig == signal.SIGINT:
        os.killpg(process.pid, sig)  # what a terminal's Ctrl-C does
    else:
        process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr[-3000:]
    expected = f"cryptosweep: interrupted ({name}); resume with: cryptosweep run --resume {run_dir}"
    assert stderr.count("resume with") == 1 and stderr.strip().splitlines()[-1] == expected
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    assert 2 <= done_count(run_dir / "sweep.db") < trials
    if sig == signal.SIGTERM:  # and the resume it names ends the sweep (--set on a resume
        resumed = cli("run", "--resume", str(run_dir), "--set", "execution.workers=0")
        assert resumed.returncode == 0, resumed.stderr[-2000:]  # changes how it executes)
        assert done_count(run_dir / "sweep.db") == trials


# ---------------------------------------------------------------------- logs, version, resume


def test_debug_logs_every_evaluation_and_info_shows_the_end_of_the_sweep(tmp_path,
                                                                        write_config):
    config = write_config(tiny_config(random__n_trials=3))
    done = cli("run", "--config", str(config), "--log-dir", str(tmp_path), "--run-name", "dbg",
               "--log-level", "DEBUG", "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    for eval_id in range(3):
        assert f"eval {eval_id} submitted: trial {eval_id}" in done.stderr
        assert f"eval {eval_id} done: score" in done.stderr
    # The end of the sweep: first the top 2's holdout evaluations, their re-scores with two
    # more seeds and the baselines; then the winner's replay and its neighbourhood.
    assert "end of the sweep: 7 evaluation(s) on in-process: " in done.stderr
    finished = re.findall(r"end of the sweep (\d)/7: (\S+) done", done.stderr)
    assert [k for k, _ in finished] == ["1", "2", "3", "4", "5", "6", "7"]
    assert sorted(re.sub(r"-\d+$", "", task) for _, task in finished) == [
        "baselines", "holdout", "holdout", "rescore1", "rescore1", "rescore2", "rescore2"]
    assert re.search(r"end of the sweep 1/\d+: rerun-\d+ done", done.stderr)


def test_version_and_plain_help():
    from cryptosweep import __version__

    done = cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"cryptosweep {__version__}"
    helped = cli("--help")
    assert helped.returncode == 0 and "``" not in helped.stdout
    assert "exit codes:" in helped.stdout


def test_a_resume_may_change_how_it_executes_but_not_what_it_computes(tmp_path, write_config):
    config = tiny_config(random__n_trials=3, execution__workers=0)
    first = cli("run", "--config", str(write_config(config)), "--log-dir", str(tmp_path),
                "--run-name", "r")
    assert first.returncode == 0, first.stderr[-2000:]
    run_dir = tmp_path / "r"
    again = cli("run", "--resume", str(run_dir), "--config",
                str(write_config(tiny_config(random__n_trials=3, execution__workers=2),
                                 "two_workers.yaml")))
    assert again.returncode == 0, again.stderr[-2000:]
    refused = cli("run", "--resume", str(run_dir), "--config",
                  str(write_config(tiny_config(random__n_trials=3, objective__folds=3),
                                   "three_folds.yaml")))
    assert refused.returncode == 2 and "decides its results" in refused.stderr
