"""The sweep notebook under papermill, with the named kernel, writes a complete run folder."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.support import REPO, deterministic_bytes, tiny_config

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebooks_are_committed_thin_and_parameterised(path: Path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "first code cell must be parameters"
    assert all(not cell.get("outputs") and cell.get("execution_count") is None for cell in code)
    assert notebook.metadata["kernelspec"]["name"] == "cryptosweep"
    for cell in code:
        assert "def " not in cell.source and "class " not in cell.source, "logic belongs in lib/"
    # nbformat 4.5 cells carry an id: without one, every papermill run of the notebook warns
    # (MissingIDFieldWarning on the report's stderr) and writes ids of its own.
    raw = json.loads(path.read_text(encoding="utf-8"))
    ids = [cell.get("id") for cell in raw["cells"]]
    assert all(ids) and len(set(ids)) == len(ids), "every cell needs its own id"


def test_papermill_run_of_sweep_notebook_writes_a_complete_run_folder(tmp_path):
    config = tmp_path / "sweep.json"
    config.write_text(json.dumps(tiny_config(random__n_trials=4)))
    output = tmp_path / "out.ipynb"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "papermill"), "-k", "cryptosweep",
         str(REPO / "notebooks" / "sweep.ipynb"), str(output), "-p", "seed", "7",
         "-p", "config_path", str(config), "-p", "log_dir", str(tmp_path / "reports"),
         "-p", "run_name", "nb", "-p", "show_progress", "False"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = tmp_path / "reports" / "nb"
    for pattern in ("sweep.db", "sweep_output.log", "gpu_repro_*.json", "sweep_results_*.json",
                    "sweep_report_*.txt", "best_configs_*.json", "resource_usage_*.json"):
        assert list(run_dir.glob(pattern)), f"{pattern} missing"
    results = json.loads(next(run_dir.glob("sweep_results_*.json")).read_text())
    assert results["seed"] == 7 and results["counts"]["done"] == 4
    executed = nbformat.read(output, as_version=4)
    printed = "".join(
        o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert "reproducibility (the winner's deployed path replayed from scratch" in printed
    assert "application/vnd.jupyter.widget-view+json" not in output.read_text(), (
        "show_progress=False must not put widgets into the notebook")

    # The same seed from the CLI gives the same bytes as the notebook run.
    cli_run = subprocess.run(
        [sys.executable, "-m", "cryptosweep", "run", "--config", str(config), "--seed", "7",
         "--log-dir", str(tmp_path / "cli"), "--run-name", "cli"],
        capture_output=True, text=True, timeout=300,
    )
    assert cli_run.returncode == 0, cli_run.stderr
    assert deterministic_bytes(tmp_path / "cli" / "cli") == deterministic_bytes(run_dir)


def test_sweep_notebook_logs_to_stdout_without_a_dashboard_port_warning(tmp_path):
    # Before the fix every INFO line was a red stderr block, and a second cluster on the
    # machine (port 8787 taken) added "Port 8787 is already in use" to every run.
    config = tmp_path / "sweep.json"
    config.write_text(json.dumps(tiny_config(random__n_trials=2)))
    output = tmp_path / "out.ipynb"
    with contextlib.ExitStack() as stack:
        taken = stack.enter_context(socket.socket())
        with contextlib.suppress(OSError):  # else another process holds it: just as well
            taken.bind(("", 8787))
            taken.listen()
        done = subprocess.run(
            [str(Path(sys.executable).parent / "papermill"), "-k", "cryptosweep",
             str(REPO / "notebooks" / "sweep.ipynb"), str(output), "-p", "seed", "7",
             "-p", "config_path", str(config), "-p", "log_dir", str(tmp_path / "reports"),
             "-p", "run_name", "nb", "-p", "show_progress", "False", "-p", "workers", "1"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = [o for c in nbformat.read(output, as_version=4).cells
               if c.cell_type == "code" for o in c.outputs]
    stdout = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    assert " INFO run nb: random sweep" in stdout
    assert " INFO " not in stderr, stderr[:2000]
    everything = json.dumps([dict(o) for o in outputs]) + done.stderr
    assert "8787" not in everything and "already in use" not in everything


@pytest.mark.parametrize("parameter", ["config_path", "data_path", "resume"])
def test_an_empty_path_is_an_error_naming_its_parameter(parameter):
    """What the notebook's other path parameters resolve with (the one run below shows it
    through papermill): their error named the working directory, not the parameter."""
    from cryptosweep.core.errors import ConfigError
    from cryptosweep.core.paths import resolve

    for empty in ("", "  "):
        with pytest.raises(ConfigError, match=f"^{parameter}: expected a path, got an empty"):
            resolve(empty, parameter)


@pytest.mark.parametrize("parameter", ["log_dir"])
def test_an_empty_path_parameter_is_one_error_naming_it_and_makes_nothing(tmp_path, parameter):
    """``papermill -p log_dir ""``: ``Path("")`` is the working directory, and the sweep made
    its run folder there without a word (the other path parameters named the working
    directory in their error, not the parameter)."""
    config = tmp_path / "sweep.json"
    config.write_text(json.dumps(tiny_config(random__n_trials=2)))
    work = tmp_path / "work"
    work.mkdir()
    parameters = {"config_path": str(config), "log_dir": str(tmp_path / "reports"),
                  "show_progress": "False", parameter: ""}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "papermill"), "-k", "cryptosweep",
         str(REPO / "notebooks" / "sweep.ipynb"), str(tmp_path / "out.ipynb"),
         *[part for name, value in parameters.items() for part in ("-p", name, value)]],
        capture_output=True, text=True, timeout=300, cwd=work,
    )
    assert done.returncode != 0
    assert f"ConfigError: {parameter}: expected a path, got an empty one ('')" in done.stderr, (
        done.stderr[-3000:])
    assert list(work.iterdir()) == [] and not (tmp_path / "reports").exists()


@pytest.mark.parametrize(("notebook", "switch", "text"), [
    ("sweep.ipynb", "show_progress", "false"), ("walkforward.ipynb", "report", "no")])
def test_a_switch_papermill_passed_as_text_is_refused_before_anything_runs(
        tmp_path, notebook, switch, text):
    """``papermill -p show_progress false`` passes the text "false", which Python reads as
    true: the switch did the opposite of what was asked, without a word (a helper's attack)."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "papermill"), "-k", "cryptosweep",
         str(REPO / "notebooks" / notebook), str(tmp_path / "out.ipynb"),
         "-p", "log_dir", str(tmp_path / "logs"), "-p", switch, text],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert done.returncode != 0
    assert f"ConfigError: {switch}: expected True or False, got '{text}'" in done.stderr, (
        done.stderr[-3000:])
    assert not (tmp_path / "logs").exists()
