"""``notebooks/explore.ipynb``: executed headless by nbclient (its callbacks driven from Python
inside the kernel and their figures checked against the journal), under papermill from the
repository root with its defaults, and in a real JupyterLab opened by Debian's headless
Chromium (driven by Selenium through Debian's chromedriver) with every request that would
leave the machine sent to a dead proxy."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from cryptosweep.explore.trial import read_trial
from cryptosweep.explore.whatif import PREDICTIONS, what_if
from cryptosweep.trading.steps import TradingParams
from tests.explore.test_runs import expected_points, journal
from tests.explore.test_trial import equity_and_drawdown, journaled_returns, values
from tests.support import REPO, explore_config

pytestmark = pytest.mark.slow

NOTEBOOK = REPO / "notebooks" / "explore.ipynb"
BIN = Path(sys.executable).parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOT = REPO / "docs" / "explore.png"
TRIAL_SCREENSHOT = REPO / "docs" / "explore_trial.png"

#: Appended to the notebook for the headless run: drives the callbacks as a click would, in the
#: notebook's own kernel, and prints what the figures hold.
DRIVE_CALLBACKS = """
import json
top = max(value for _, value in ui.budget_filter.options)
ui.budget_filter.value = (top,)
points = [[int(e), t.meta, x, y] for t in ui.figures["parameters"].data
          for e, x, y in zip(t.customdata, t.x, t.y)]
ui.compare_first.value, ui.compare_second.value = "night2", "night1"
trial = ui.trial
assert trial.wait(300), "the trial's models retrained"
picked = trial.trial_picker.value
swept = [t["y"] for t in trial.figures["equity"]["data"]
         if t["meta"] == "as swept validation equity"][0]
for name, value in {"threshold": 0.52, "holding_period": 6}.items():
    trial.sliders[name].value = value  # a release in the page
whatif = {t["meta"]: t["y"] for t in trial.figures["equity"]["data"]
          if t["meta"].startswith("what-if") and t["meta"].endswith("equity")}
print(json.dumps({"run": ui.run_picker.value, "top": top, "points": points,
                  "compared": [ui.comparison.first, ui.comparison.second],
                  "shown": len(ui.shown), "trial": picked,
                  "parity": [trial.parity.validation, trial.parity.holdout],
                  "swept": swept, "whatif": whatif, "summary": trial.whatif_summary.value}))
"""


def parameterised(reports_dir: Path, **extra: Any) -> nbformat.NotebookNode:
    """The notebook with a cell of parameters after its ``parameters`` cell, as papermill
    injects them."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    values = {"reports_dir": str(reports_dir), **extra}
    injected = nbformat.v4.new_code_cell(
        "\n".join(f"{name} = {value!r}" for name, value in values.items()))
    injected.metadata["tags"] = ["injected-parameters"]
    position = next(i for i, cell in enumerate(notebook.cells)
                    if "parameters" in cell.metadata.get("tags", []))
    notebook.cells.insert(position + 1, injected)
    return notebook


def outputs_of(notebook: nbformat.NotebookNode) -> list[dict[str, Any]]:
    return [output for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.get("outputs", [])]


def test_notebook_runs_headless_and_its_callbacks_redraw_from_the_journal(explore_reports):
    notebook = parameterised(explore_reports, run="night1")
    notebook.cells.append(nbformat.v4.new_code_cell(DRIVE_CALLBACKS))
    NotebookClient(notebook, kernel_name="cryptosweep", timeout=300,
                   resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    outputs = outputs_of(notebook)
    assert not [o for o in outputs if o["output_type"] == "error"]
    views = [o for o in outputs if "application/vnd.jupyter.widget-view+json"
             in o.get("data", {})]
    assert len(views) == 5, "the runs, compare, trials and trial panels and the live view"
    state = json.dumps(notebook.metadata["widgets"])
    assert state.count("application/vnd.plotly.v1+json") >= 7, "charts drawn into the widgets"
    printed = json.loads(outputs[-1]["text"])
    rows = journal(explore_reports / "night1")
    top = max(row["budget"] for row in rows)
    at_top = [row for row in rows if row["budget"] == top]
    assert printed["run"] == "night1" and printed["top"] == top
    assert printed["shown"] == len(at_top)
    assert {tuple(p) for p in printed["points"]} == expected_points(at_top)
    assert printed["compared"] == ["night2", "night1"]

    # the trial panel: the run's winner, retrained in the kernel to the journal's returns
    winner = max((row for row in at_top if row["score"] is not None),
                 key=lambda row: (row["score"], -row["eval_id"]))
    assert printed["trial"] == winner["eval_id"]
    assert printed["parity"] == [True, True]
    validation = journaled_returns(explore_reports / "night1", "validation")[winner["eval_id"]]
    assert values(printed["swept"]).tobytes() == equity_and_drawdown(validation)[0].tobytes()
    # the sliders moved in the kernel: the what-if is the backtest of the sweep's predictions
    record = read_trial(explore_reports / "night1", winner["eval_id"])
    predictions = PREDICTIONS.get(record)
    moved = TradingParams(0.52, 6, record.trading.stop_loss, record.trading.take_profit)
    oracle = what_if(predictions, moved, record.spec)
    assert what_if(predictions, record.trading, record.spec).validation_returns.tobytes() == \
        validation.tobytes()
    assert values(printed["whatif"]["what-if validation equity"]).tobytes() == \
        equity_and_drawdown(oracle.validation_returns)[0].tobytes()
    assert list(printed["whatif"]) == ["what-if validation equity"], (
        "the holdout is locked: no curve of it")
    assert "threshold" in printed["summary"] and "→ 0.520" in printed["summary"]


def test_papermill_runs_the_notebook_from_the_repository_root_with_its_defaults(tmp_path):
    output = tmp_path / "explore.ipynb"
    done = subprocess.run(
        [str(BIN / "papermill"), "-k", "cryptosweep", str(NOTEBOOK), str(output)],
        capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    executed = nbformat.read(output, as_version=4)
    assert not [o for o in outputs_of(executed) if o["output_type"] == "error"]
    state = json.dumps(executed.metadata["widgets"])
    assert json.dumps(str(REPO / "reports"))[1:-1] in state, (
        "a relative reports folder is the repository's")


# --------------------------------------------------------------------------- the browser


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@contextmanager
def jupyterlab(root: Path, home: Path) -> Iterator[str]:
    """JupyterLab from this environment serving ``root`` on a free 127.0.0.1 port with a
    token, its config, runtime, data, settings and workspaces under ``home``, no news and no
    update checks; yields its URL with the token. The server and its kernels are
    one process group, ended at the end."""
    port, token = _free_port(), secrets.token_hex(16)
    _write_json(home / "config" / "jupyter_server_config.json", {"LabApp": {
        "news_url": None, "expose_app_in_browser": True,
        "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate"}})
    _write_json(home / "settings" / "@jupyterlab" / "apputils-extension" /
                "notification.jupyterlab-settings", {"fetchNews": "false"})
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "IPYTHONDIR": str(home / "ipython")}
    log = (home / "jupyterlab.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--ServerApp.allow_root=True"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (home / "jupyterlab.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}",
                                       timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline, "JupyterLab did not start in 60 s"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/lab?token={token}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """Debian's headless Chromium through Debian's chromedriver (nothing downloaded), with
    its console log kept; every request that is not for 127.0.0.1 goes to a dead proxy."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1400,1300", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--proxy-server=127.0.0.1:9",
                     f"--user-data-dir={profile}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


KERNEL_STATUS = """
const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
const session = panel && panel.sessionContext && panel.sessionContext.session;
return session && session.kernel ? session.kernel.status : null;"""
CURRENT_PATH = """
const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
return panel && panel.context ? panel.context.path : null;"""
#: Make the open document at path ``arguments[0]`` the current one; whether it is. JupyterLab
#: does not always make a document opened by a command current in a headless page (its focus
#: tracking races with the opening), and the notebook commands act on the current one.
ACTIVATE = """
const app = window.jupyterapp;
const panel = [...app.shell.widgets('main')].find(
  w => w.context && w.context.path === arguments[0]);
if (panel && app.shell.currentWidget !== panel) app.shell.activateById(panel.id);
return !!panel && app.shell.currentWidget === panel;"""
PAGE_STATE = """
const page = window.jupyterapp.shell.currentWidget.node;  // the open notebook's panel
const prompts = [...page.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
  .map(p => p.textContent.trim());
const plots = [...page.querySelectorAll('.widget-output .js-plotly-plot')];
const waiting = plots.filter(p => !p.querySelector('.main-svg'));
if (waiting.length) waiting[0].scrollIntoView();  // plotly draws a chart once it is seen
return {executed: prompts.filter(p => /^\\[\\d+\\]:$/.test(p)).length,
        charts: plots.length - waiting.length,
        dropdowns: page.querySelectorAll('.widget-dropdown select').length,
        selects: page.querySelectorAll('.widget-select-multiple select').length,
        sliders: page.querySelectorAll('.widget-hslider, .widget-slider').length,
        text: page.innerText};"""


LIVE_NOTEBOOK = """
from cryptosweep import explore
sweep = explore.start_sweep({config!r}, log_dir={log_dir!r}, run_name="live", seed=5)
watcher = explore.watch(sweep, interval=0.2)
watcher"""


@dataclass
class Lab:
    """A JupyterLab page in Chromium, serving ``root``."""

    driver: Any
    url: str
    root: Path

    def open(self, notebook: str) -> None:
        """Open ``notebook`` of the root in the page (no reload), wait for its kernel, run all
        its cells."""
        self.driver.execute_script(
            "window.jupyterapp.commands.execute('docmanager:open', {path: arguments[0]})",
            notebook)
        wait_for(lambda: self.driver.execute_script(ACTIVATE, notebook)
                 and self.driver.execute_script(KERNEL_STATUS) == "idle",
                 f"the kernel of {notebook}")
        self.driver.execute_script(
            "window.jupyterapp.commands.execute('notebook:run-all-cells')")

    def state(self) -> dict[str, Any]:
        return self.driver.execute_script(PAGE_STATE)

    def text(self) -> str:
        """The text of the open notebook's panel."""
        return self.driver.execute_script(
            "return window.jupyterapp.shell.currentWidget.node.innerText")

    def errors(self) -> list[dict[str, Any]]:
        """The console's errors since the last call."""
        return [entry for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]


@contextmanager
def lab_session(base: Path) -> Iterator[Lab]:
    """JupyterLab serving ``base/root`` in headless Chromium, its page ready to open
    notebooks (also used by ``benchmarks/explore_whatif.py``)."""
    root = base / "root"
    root.mkdir()
    with jupyterlab(root, base / "home") as url, chromium(base / "profile") as driver:
        driver.get(url)
        wait_for(lambda: driver.execute_script(
            "return !!(window.jupyterapp && window.jupyterapp.commands"
            ".hasCommand('docmanager:open'))"), "JupyterLab in the page")
        yield Lab(driver, url, root)


@pytest.fixture(scope="module")
def lab(explore_reports, tmp_path_factory) -> Iterator[Lab]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("chromium or chromedriver is not installed (.ci/run installs Debian's "
                    "chromium and chromium-driver)")
    with lab_session(tmp_path_factory.mktemp("lab")) as session:
        yield session


def test_notebook_in_jupyterlab_in_chromium_draws_widgets_and_charts_offline(
        lab, explore_reports, tmp_path):
    from selenium.webdriver.support.ui import Select

    nbformat.write(parameterised(explore_reports, run="night1"), lab.root / "explore.ipynb")
    code_cells = sum(cell.cell_type == "code" for cell in nbformat.read(
        lab.root / "explore.ipynb", as_version=4).cells)
    lab.open("explore.ipynb")
    state = wait_for(
        lambda: (s := lab.state())["executed"] == code_cells and s["charts"] >= 7
        and lab.driver.execute_script(KERNEL_STATUS) == "idle" and s,
        "every cell run and seven charts drawn (two of the retrained trial)")
    assert state["dropdowns"] >= 6 and state["selects"] >= 3 and state["sliders"] >= 6
    assert "Traceback" not in state["text"]
    assert "Error displaying widget" not in state["text"]
    assert "22 of 22 evaluations kept by the filter" in state["text"]

    # a choice in the page goes through the kernel's callback and back
    picker = Select(lab.driver.execute_script(  # the run picker of the open notebook
        "return window.jupyterapp.shell.currentWidget.node"
        ".querySelector('.widget-dropdown select')"))

    def pick(run: str, evaluations: int) -> None:
        picker.select_by_visible_text(next(option.text for option in picker.options
                                           if option.text.startswith(f"{run} ")))
        wait_for(lambda: f"{evaluations} of {evaluations} evaluations kept by the filter"
                 in lab.text(), f"the trials of {run}, picked in the page")

    pick("night2", 6)
    lab.driver.execute_script(  # the picture: widgets and charts, no code, no file browser
        "const app = window.jupyterapp;"
        "app.commands.execute('notebook:hide-all-cell-code');"
        "if (!app.shell.leftCollapsed) app.commands.execute('application:toggle-left-area');")
    pick("night1", 22)
    lab.driver.execute_script(  # the trials panel: its filters, table and charts
        "document.querySelector('.widget-select-multiple').closest('.jp-Cell')"
        ".scrollIntoView();")
    time.sleep(1.5)  # let the charts draw and settle
    shot = tmp_path / "explore.png"
    lab.driver.save_screenshot(str(shot))
    assert lab.errors() == []
    assert shot.stat().st_size > 20_000
    if os.environ.get("CRYPTOSWEEP_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, SCREENSHOT)


#: Before a slider is released: note when the pointer goes up and when the equity chart of the
#: trial panel is replaced by a newly drawn one (``window.csRedraw``).
WATCH_REDRAW = """
const chart = document.querySelector('.cs-trial-equity');
const old = chart.querySelector('.js-plotly-plot');
const seen = {released: null, drawn: null};
window.csRedraw = seen;
document.addEventListener('pointerup', () => { seen.released = performance.now(); },
                          {capture: true, once: true});
const observer = new MutationObserver(() => {
  const plot = chart.querySelector('.js-plotly-plot');
  if (seen.released !== null && plot && plot !== old && plot.querySelector('.main-svg')) {
    seen.drawn = performance.now();
    observer.disconnect();
  }
});
observer.observe(chart, {childList: true, subtree: true});"""
TRIAL_READY = """
const panel = document.querySelector('.cs-trial-panel');
if (!panel) return null;
const chart = name => panel.querySelector(`.cs-trial-${name}`);
const drawn = name => !!chart(name).querySelector('.js-plotly-plot .main-svg');
const waiting = ['equity', 'trades'].find(
  name => chart(name).querySelector('.js-plotly-plot') && !drawn(name));
if (waiting) chart(waiting).scrollIntoView();  // plotly draws a chart once it is seen
const status = panel.querySelector('.cs-trial-status');
return {status: status ? status.innerText : '', equity: drawn('equity'),
        trades: drawn('trades'), sliders: panel.querySelectorAll('.noUi-handle').length,
        summary: panel.querySelector('.cs-trial-summary').innerText};"""


def test_trial_panel_in_the_page_redraws_the_what_if_when_a_slider_is_released(
        lab, explore_reports, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains

    if lab.driver.execute_script(CURRENT_PATH) != "explore.ipynb":  # run on its own
        nbformat.write(parameterised(explore_reports, run="night1"), lab.root / "explore.ipynb")
        lab.open("explore.ipynb")
    ready = wait_for(lambda: (s := lab.driver.execute_script(TRIAL_READY)) and "bit for bit"
                     in s["status"] and s["equity"] and s["trades"] and s,
                     "the trial retrained in the page's kernel and its two charts drawn")
    assert "NOT" not in ready["status"]
    assert ready["sliders"] >= 5, "threshold, holding period, stop loss, take profit, window"
    assert "the trial's own trading parameters" in ready["summary"], (
        "the sliders show the trial's values without moving them")

    handle = lab.driver.execute_script(
        "const h = document.querySelector('.cs-whatif-threshold .noUi-handle');"
        "h.closest('.widget-slider').scrollIntoView({block: 'start'}); return h;")
    time.sleep(0.5)  # let the page settle after scrolling
    lab.driver.execute_script(WATCH_REDRAW)
    ActionChains(lab.driver).click_and_hold(handle).move_by_offset(60, 0).release().perform()
    seen = wait_for(lambda: (s := lab.driver.execute_script("return window.csRedraw"))["drawn"]
                    and s, "the equity chart redrawn after the slider's release", timeout=60)
    elapsed_ms = seen["drawn"] - seen["released"]
    print(f"slider release to redrawn equity chart in the page: {elapsed_ms:.0f} ms")
    summary = lab.driver.execute_script(TRIAL_READY)["summary"]
    assert "changed: threshold" in summary, summary
    assert lab.errors() == []
    lab.driver.execute_script(  # the picture: the panel from its trial picker down
        "document.querySelector('.cs-trial-panel').scrollIntoView({block: 'start'});")
    time.sleep(1.5)  # let the charts draw and settle
    shot = tmp_path / "explore_trial.png"
    lab.driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000
    if os.environ.get("CRYPTOSWEEP_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, TRIAL_SCREENSHOT)


def test_live_view_of_a_sweep_started_from_the_notebook_updates_the_page(lab, tmp_path):
    config = tmp_path / "sweep.json"
    config.write_text(json.dumps(explore_config()))
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "cryptosweep", "language": "python",
                                       "display_name": "Python (cryptosweep)"}
    notebook.cells = [nbformat.v4.new_code_cell(LIVE_NOTEBOOK.format(
        config=str(config), log_dir=str(tmp_path / "reports")))]
    nbformat.write(notebook, lab.root / "live.ipynb")
    lab.open("live.ipynb")
    lines: list[str] = []

    def finished() -> bool:
        text = lab.text()
        found = re.search(r"Live view — (.*)", text)
        if found and (not lines or lines[-1] != found.group(1)):
            lines.append(found.group(1))
        return bool(found) and "watching stopped" in text

    wait_for(finished, "the live view to follow the sweep to its end", timeout=180)
    assert any(" running — " in line for line in lines), lines
    assert lines[-1].startswith("live: complete — 22 of 22 evaluations finished"), lines
    assert wait_for(lambda: lab.state()["charts"] >= 3, "the three live charts")
    assert lab.errors() == []
