"""The HTML report and the cross-night index, checked in a real headless Chromium with the
network off; the Optuna export opened by Optuna."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import cli, results_file, tiny_config

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("publish")
    config = tiny_config(objective__rounds_per_unit=3, sweep_type="hyperband",
                         hyperband={"max_iter": 4, "eta": 2})
    path = base / "sweep.json"
    path.write_text(json.dumps(config))
    done = cli("run", "--config", str(path), "--log-dir", str(base / "reports"), "--run-name",
               "night1", "--seed", "2")
    assert done.returncode == 0, done.stderr
    return base / "reports" / "night1"


def render_in_chromium(page: Path, tmp_path: Path) -> tuple[str, str]:
    """The DOM after the page's scripts ran, and Chromium's console log; any request that
    leaves the machine goes to a dead proxy, so a chart that needs a CDN is not drawn."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'chromium-profile'}",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def javascript_errors(console: str) -> list[str]:
    return [line for line in console.splitlines()
            if "Uncaught" in line or ("CONSOLE" in line and "ERROR" in line.upper()
                                       and "source: file://" in line)]


def test_report_html_works_offline_with_every_chart_drawn(finished_run, tmp_path):
    done = cli("report", str(finished_run), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report = finished_run / "report.html"
    text = report.read_text()
    assert not re.search(r"<script[^>]*src=[\"']?https?:", text), "nothing loaded from a CDN"
    assert not re.search(r"<link[^>]*href=[\"']?https?:", text)
    assert text.count("Plotly.newPlot") >= 8, "expected every chart of the analysis notebook"
    assert len(re.findall(r"plotly\.js v\d", text)) == 1, "plotly.js embedded exactly once"
    assert "from cryptosweep import figures" not in text, "code is hidden (--no-input)"
    assert "figures.top_k_table(results).show()" not in text
    dom, console = render_in_chromium(report, tmp_path)
    charts = dom.count('class="plotly-graph-div')
    drawn = dom.count('class="main-svg"')
    assert charts >= 8 and drawn >= charts, f"{charts} chart containers but {drawn} drawn"
    assert javascript_errors(console) == []
    results = json.loads(results_file(finished_run).read_text())
    for check in results["reproducibility_check"]:
        assert f"eval {check['eval_id']}" in dom


def test_index_lists_every_run_and_draws_its_chart(finished_run, tmp_path):
    second = finished_run.parent / "night2"
    shutil.copytree(finished_run, second)
    done = cli("report", str(second), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    index = finished_run.parent / "index.html"
    text = index.read_text()
    assert 'href="night1/' in text and 'href="night2/report.html"' in text
    dom, console = render_in_chromium(index, tmp_path)
    assert dom.count('class="main-svg"') >= 1 and javascript_errors(console) == []


def test_export_optuna_writes_a_study_optuna_can_load(finished_run, tmp_path):
    import optuna

    target = tmp_path / "study.db"
    done = cli("export-optuna", str(finished_run), "--output", str(target))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"sqlite:///{target}"
    summaries = optuna.get_all_study_summaries(f"sqlite:///{target}")
    assert [s.study_name for s in summaries] == ["night1-lightgbm"]
    study = optuna.load_study(study_name="night1-lightgbm", storage=f"sqlite:///{target}")
    evaluations = json.loads(results_file(finished_run).read_text())["evaluations"]
    assert len(study.trials) == len(evaluations)
    best = max(e["score"] for e in evaluations if e["status"] == "done")
    assert study.best_value == best


def test_report_of_a_folder_that_is_not_a_run_is_exit_2(tmp_path):
    done = cli("report", str(tmp_path))
    assert done.returncode == 2
    assert "no sweep_results_*.json" in done.stderr and "Traceback" not in done.stderr
