"""The HTML report and the cross-night index, checked in a real headless Chromium with the
network off (the verdict first, every chart drawn, no JavaScript error, still drawn once the
reports folder is moved); the Optuna export opened by Optuna."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from cryptosweep.core.formatting import share, signed
from cryptosweep.core.plotly_library import plotly_js_name
from cryptosweep.judging.verdict import verdict
from tests.support import cli, cli_in_process, results_file, tiny_config

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


@pytest.fixture(scope="module")
def reported(finished_run):
    """The finished run after ``cryptosweep report``."""
    done = cli("report", str(finished_run), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return finished_run


def drawn_charts(dom: str) -> tuple[int, int]:
    return dom.count('class="plotly-graph-div'), dom.count('class="main-svg"')


def test_report_html_works_offline_with_every_chart_drawn(reported, tmp_path):
    report = reported / "report.html"
    text = report.read_text()
    assert not re.search(r"<script[^>]*src=[\"']?https?:", text), "nothing loaded from a CDN"
    assert not re.search(r"<link[^>]*href=[\"']?https?:", text)
    assert text.count("Plotly.newPlot") >= 8, "expected every chart of the analysis notebook"
    library = reported.parent / plotly_js_name()
    assert library.is_file() and f'<script src="../{library.name}"' in text
    assert not re.search(r"plotly\.js v\d", text), "the library is not embedded in the page"
    executed = (reported / "notebooks" / "analysis.ipynb").read_text()
    assert not re.search(r"plotly\.js v\d", executed), "nor in the executed notebook"
    assert "from cryptosweep.reporting import figures" not in text, "code is hidden (--no-input)"
    assert "tables.top_k_table(results)" not in text
    dom, console = render_in_chromium(report, tmp_path)
    charts, drawn = drawn_charts(dom)
    assert charts >= 8 and drawn >= charts, f"{charts} chart containers but {drawn} drawn"
    assert javascript_errors(console) == []
    assert 'id="plotly-missing"' not in dom
    # the equity charts' x axes are the data's dates (the bundled sample: 2021-10 to 2022-10)
    data = json.loads(results_file(reported).read_text())["data"]
    assert data["folds"][0]["first_bar"].startswith(("2021", "2022"))
    dated = r'class="x\d*tick"><text[^>]*data-unformatted="[^"]*\b202[12]"'
    assert len(re.findall(dated, dom)) >= 2
    results = json.loads(results_file(reported).read_text())
    for check in results["reproducibility_check"]:
        assert f"eval {check['eval_id']}" in dom


def test_the_verdict_comes_first(reported, tmp_path):
    dom, _ = render_in_chromium(reported / "report.html", tmp_path)
    decided = verdict(json.loads(results_file(reported).read_text()))
    start = dom.index('id="verdict"')
    body = dom[dom.index("<body"):]
    first_section = min(body.index(marker) for marker in ("<h2", 'class="plotly-graph-div',
                                                          'class="cs-table'))
    assert body.index('id="verdict"') < first_section, "the verdict opens the page"
    numbers = dom.index('class="cs-numbers"')
    block = dom[start:min(dom.index(end, numbers) for end in ("Decided by", 'class="cs-flags"',
                                                               "</body>") if end in dom[numbers:])]
    assert decided.label in block and html.escape(decided.reason) in block
    for number in (signed(decided.holdout_score), share(decided.dsr), share(decided.pbo)):
        assert number in block


def test_the_report_still_renders_after_its_reports_folder_moved(reported, tmp_path):
    moved = tmp_path / "elsewhere" / "reports"
    shutil.copytree(reported.parent, moved, symlinks=True)
    dom, console = render_in_chromium(moved / reported.name / "report.html", tmp_path)
    charts, drawn = drawn_charts(dom)
    assert charts >= 8 and drawn >= charts and javascript_errors(console) == []
    page = (moved / reported.name / "report.html").read_text()
    assert not re.search(r"""(src|href)=["'](/|file:)""", page), "no absolute references"
    # a run folder copied without its reports folder says why its charts are missing
    alone = tmp_path / "alone" / reported.name
    shutil.copytree(reported, alone)
    dom, _ = render_in_chromium(alone / "report.html", tmp_path)
    assert 'id="plotly-missing"' in dom and plotly_js_name() in dom


def test_index_has_one_row_per_run_with_its_verdict(reported, tmp_path):
    """Two nights and the ``latest`` link the nightly leaves: two rows, never three."""
    reports = reported.parent
    config = tmp_path / "sweep.json"
    config.write_text(json.dumps(tiny_config(objective__rounds_per_unit=3)))
    done = cli("run", "--config", str(config), "--log-dir", str(reports), "--run-name",
               "night2", "--seed", "3")
    assert done.returncode == 0, done.stderr
    (reports / "latest").symlink_to("night2")
    done = cli("report", str(reports / "night2"), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    text = (reports / "index.html").read_text()
    assert text.count('<tr><td class="text"><a href=') == 2, "latest is not a run"
    assert 'href="night1/report.html"' in text and 'href="night2/report.html"' in text
    assert "latest/" not in text and ">ok<" not in text
    for night in ("night1", "night2"):
        results = json.loads(results_file(reports / night).read_text())
        decided = verdict(results)
        assert html.escape(decided.label) in text and html.escape(decided.reason) in text
        started = time.strftime("%Y-%m-%d %H:%M", time.gmtime(results["run"]["created_at"]))
        assert f"<td>{started}</td>" in text
    assert f'<script src="{plotly_js_name()}"' in text
    dom, console = render_in_chromium(reports / "index.html", tmp_path)
    assert dom.count('class="main-svg"') >= 1 and javascript_errors(console) == []


def test_the_index_shows_a_hand_edited_field_file_as_text():
    """The nightly's field file of a run is JSON a person can edit: the index's cell for a
    champion still waiting for live bars shows its count escaped, never as markup."""
    from cryptosweep.reporting.index_page import _field_cell

    cell = _field_cell({"state": "waiting", "live_bars": "<x-evil>"})
    assert "<x-evil>" not in cell and "&lt;x-evil&gt; live bars" in cell


@pytest.mark.parametrize("damaged", ["sweep_results_20260101_000000.json",
                                     "champion_field.json"])
def test_the_index_leaves_out_a_file_that_is_not_utf8(finished_run, tmp_path, damaged):
    """A results or field file of bytes that are not UTF-8 (a damaged disk, a file copied
    over it) in one run folder made every report of the reports folder end in a traceback
    (exit 1) while writing the index: its row is left out (results) or shown without the field,
    as for a half-written file."""
    from cryptosweep.reporting.index_page import write_index

    reports = tmp_path / "reports"
    shutil.copytree(finished_run, reports / "night1")
    (reports / "night2").mkdir()
    target = (reports / "night2" if damaged.startswith("sweep") else reports / "night1")
    (target / damaged).write_bytes(b"\xff\xfe\x00 not text")
    text = write_index(reports).read_text(encoding="utf-8")
    assert "night1/" in text and "night2/" not in text


def test_the_index_links_to_a_run_whose_name_a_url_would_read_otherwise(finished_run,
                                                                        tmp_path):
    """A run named 'night#1?x=%41' got href="night#1?x=%41/report.html": the browser read
    a fragment and a query and opened a file that does not exist."""
    from urllib.parse import urljoin, urlsplit
    from urllib.request import url2pathname

    from cryptosweep.reporting.index_page import write_index

    reports = tmp_path / "reports"
    names = ["night#1?x=%41", "nuit d'été & <b>", "plain"]
    for name in names:
        shutil.copytree(finished_run, reports / name)
        (reports / name / "report.html").unlink(missing_ok=True)  # linked: its results
    (reports / names[0] / "report.html").write_text("<p>the report</p>")
    index = write_index(reports)
    links = [html.unescape(href) for href in
             re.findall(r'<tr><td class="text"><a href="([^"]*)">', index.read_text())]
    assert len(links) == len(names)
    targets = []
    for href in links:
        url = urlsplit(urljoin(index.as_uri(), href))  # as the browser resolves it
        assert url.query == "" and url.fragment == "", href
        target = Path(url2pathname(url.path))
        assert target.is_file(), href
        targets.append(target.relative_to(reports).parts[0])
    assert sorted(targets) == sorted(names)
    assert (reports / names[0] / "report.html").as_uri() == urljoin(
        index.as_uri(), next(href for href in links if href.endswith("report.html")))


def test_export_optuna_writes_a_study_optuna_can_load(finished_run, tmp_path):
    import optuna

    target = tmp_path / "study.db"
    done = cli("export-optuna", str(finished_run), "--output", str(target))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"sqlite:///{target}"
    summaries = optuna.get_all_study_summaries(f"sqlite:///{target}")
    assert [s.study_name for s in summaries] == ["night1-lightgbm"]
    study = optuna.load_study(study_name="night1-lightgbm", storage=f"sqlite:///{target}")
    results = json.loads(results_file(finished_run).read_text())
    evaluations = results["evaluations"]
    # Optuna's semantics for Hyperband: a trial per configuration, COMPLETE only at the full
    # budget, a configuration stopped at a lower rung PRUNED, its rungs intermediate values.
    # Before the fix every rung was a COMPLETE trial: Optuna's "best" was a budget-1 score.
    full = max(e["budget"] for e in evaluations)
    assert len({e["budget"] for e in evaluations}) > 1, "the tiny hyperband has rungs"
    configurations = {e["trial_id"] for e in evaluations}
    assert len(study.trials) == len(configurations) < len(evaluations)
    states = {t.user_attrs["trial_id"]: t.state for t in study.trials}
    for trial_id in configurations:
        budgets = [e["budget"] for e in evaluations if e["trial_id"] == trial_id]
        assert states[trial_id] == (optuna.trial.TrialState.COMPLETE if max(budgets) == full
                                    else optuna.trial.TrialState.PRUNED)
    assert optuna.trial.TrialState.PRUNED in states.values()
    best_full = max(e["score"] for e in evaluations
                    if e["status"] == "done" and e["budget"] == full)
    assert study.best_trial.value == best_full
    assert study.best_trial.user_attrs["budgets"][-1] == full
    best_eval = next(e for e in evaluations if e["eval_id"] == study.best_trial.user_attrs[
        "eval_ids"][-1])
    assert best_eval["score"] == best_full and best_eval["budget"] == full
    rungs = {e["budget"]: e["score"] for e in evaluations
             if e["trial_id"] == study.best_trial.user_attrs["trial_id"]}
    assert study.best_trial.intermediate_values == {int(b): v for b, v in rungs.items()}


def export_refused(capsys, run_dir: Path, target: Path) -> str:
    """The one line with which ``export-optuna RUN_DIR --output TARGET`` exits 2."""
    done = cli_in_process(capsys, "export-optuna", str(run_dir), "--output", str(target))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    return lines[0]


def _bytes_of(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*"))
            if f.is_file()}


def test_export_optuna_never_replaces_a_file_it_did_not_write(finished_run, tmp_path, capsys):
    """`export-optuna --output` unlinked whatever it was given (another run's sweep.db, its own
    journal, a text file) and exited 0."""
    other = tmp_path / "other"
    shutil.copytree(finished_run, other)
    text = tmp_path / "notes.txt"
    text.write_text("mine\n")
    before = _bytes_of(finished_run)
    for target in (other / "sweep.db", finished_run / "sweep.db", text):
        kept = target.read_bytes()
        line = export_refused(capsys, finished_run, target)
        assert "is not an Optuna export written by this command" in line
        assert target.read_bytes() == kept
    assert _bytes_of(finished_run) == before
    for target, why in ((tmp_path, "it is a folder"), (text / "study.db", "is a file, not a"),
                        (Path("/proc/study.db"), "pseudo file system"),
                        (tmp_path / ("x" * 300) / "study.db", "longer than 255 bytes")):
        assert why in export_refused(capsys, finished_run, target)
    again = tmp_path / "study.db"  # its own export is replaced
    for _ in range(2):
        done = cli_in_process(capsys, "export-optuna", str(finished_run), "--output", str(again))
        assert done.returncode == 0, done.stderr
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".partial")]


def test_export_optuna_keeps_another_run_s_export_and_refuses_an_empty_output(finished_run,
                                                                              tmp_path, capsys):
    """Exporting run B onto run A's export replaced A's study without a word; `--output ""`
    wrote the default file. A "#" in a folder's name ended the path of the URI that read the
    export ("cannot be read as an Optuna export")."""
    other = tmp_path / "night2"
    shutil.copytree(finished_run, other)
    (tmp_path / "exports#1").mkdir()
    target = tmp_path / "exports#1" / "study.db"
    exported = cli_in_process(capsys, "export-optuna", str(finished_run), "--output", str(target))
    assert exported.returncode == 0, exported.stderr
    kept = target.read_bytes()
    assert "holds another run's export (night1-" in export_refused(capsys, other, target)
    assert target.read_bytes() == kept
    done = cli_in_process(capsys, "export-optuna", str(other), "--output", "")
    assert done.returncode == 2 and "--output is empty" in done.stderr
    assert not (other / "optuna.db").exists()


def test_export_optuna_through_the_latest_link_exports_the_run_it_names(finished_run,
                                                                        tmp_path, capsys):
    """`export-optuna reports/latest` (the nightly's published link) named the studies
    "latest-lightgbm" and printed sqlite:///reports/latest/optuna.db, a URL that names another
    run's folder once `latest` moves; exporting the same run by its own name was then refused
    as "another run's export (latest-lightgbm)". Found following the README as a new user."""
    import optuna

    run = tmp_path / "night1"
    shutil.copytree(finished_run, run)
    (tmp_path / "latest").symlink_to("night1")
    done = cli_in_process(capsys, "export-optuna", str(tmp_path / "latest"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"sqlite:///{run.resolve() / 'optuna.db'}"
    summaries = optuna.get_all_study_summaries(f"sqlite:///{run / 'optuna.db'}")
    assert [s.study_name for s in summaries] == ["night1-lightgbm"]
    again = cli_in_process(capsys, "export-optuna", str(run))
    assert again.returncode == 0, again.stderr


def test_report_of_a_half_written_results_file_is_one_line_before_anything_runs(finished_run,
                                                                                 tmp_path):
    """A truncated sweep_results_*.json ran the notebook, which failed in its third cell
    (exit 5) and left a notebook in the run folder."""
    copy = tmp_path / "night1"
    shutil.copytree(finished_run, copy)
    shutil.rmtree(copy / "notebooks", ignore_errors=True)
    results = results_file(copy)
    results.write_bytes(results.read_bytes()[:500])
    before = _bytes_of(copy)
    done = cli("report", str(copy), "--no-index")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "is not complete JSON" in lines[0]
    assert _bytes_of(copy) == before and not (copy / "notebooks").exists()


@pytest.mark.parametrize(("damage", "says"), [
    ("rm resource_usage_*.json", "no resource_usage_*.json"),
    ("rm gpu_repro_*.json", "no gpu_repro_*.json"),
    ("cut resource_usage_*.json", "resource_usage_"),
    ("list gpu_repro_*.json", "(expected a JSON object)"),
    # An older version's results rendered without a word (exit 0), on fields it may lack.
    ("schema sweep_results_*.json", "written by another version of cryptosweep (schema "
                                    "'cryptosweep.sweep_results/0'"),
])
def test_report_of_a_run_missing_a_file_the_notebook_reads_is_one_line_before_anything_runs(
        finished_run, tmp_path, damage, says):
    """Without its resource_usage_*.json (or gpu_repro_*.json) the report ran the notebook,
    whose load_run failed (exit 5), and left a notebook in the run folder: every file
    load_run reads is checked first."""
    copy = tmp_path / "night1"
    shutil.copytree(finished_run, copy)
    shutil.rmtree(copy / "notebooks", ignore_errors=True)
    (copy / "report.html").unlink(missing_ok=True)
    action, pattern = damage.split(" ")
    (path,) = copy.glob(pattern)
    if action == "rm":
        path.unlink()
    elif action == "cut":
        path.write_bytes(path.read_bytes()[:40])
    elif action == "schema":
        path.write_text(json.dumps({**json.loads(path.read_text()),
                                    "schema": "cryptosweep.sweep_results/0"}))
    else:
        path.write_text("[1, 2]")
    before = _bytes_of(copy)
    done = cli("report", str(copy), "--no-index")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert says in lines[0] and (action == "rm" or path.name in lines[0]), lines[0]
    if action == "cut":
        assert "is not complete JSON" in lines[0]
    assert _bytes_of(copy) == before and not (copy / "notebooks").exists()
    assert not (copy / "report.html").exists()


@pytest.mark.parametrize("kind", ["file", "dangling link"])
def test_report_where_notebooks_is_not_a_folder_is_one_line(finished_run, tmp_path, capsys,
                                                            kind):
    """A file (or a link to nothing) named 'notebooks' in the run folder ended the report in a
    FileExistsError traceback, exit 1."""
    copy = tmp_path / "night1"
    shutil.copytree(finished_run, copy)
    shutil.rmtree(copy / "notebooks", ignore_errors=True)
    (copy / "report.html").unlink(missing_ok=True)
    if kind == "file":
        (copy / "notebooks").write_text("notes\n")
    else:
        (copy / "notebooks").symlink_to(tmp_path / "gone")
    done = cli_in_process(capsys, "report", str(copy), "--no-index")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "notebooks is not a folder" in lines[0]
    assert not (copy / "report.html").exists()


@pytest.mark.parametrize("folder", ["report.html", "index.html", "plotly.js"])
def test_report_whose_page_is_a_folder_is_one_line_before_the_notebook_runs(
        finished_run, tmp_path, capsys, folder):
    """A folder named report.html (or index.html or plotly-<version>.min.js in the reports
    folder) ended the report in an IsADirectoryError traceback, exit 1, after the whole notebook
    ran."""
    from cryptosweep.core.plotly_library import plotly_js_name

    folder = plotly_js_name() if folder == "plotly.js" else folder
    copy = tmp_path / "reports" / "night1"
    shutil.copytree(finished_run, copy)
    shutil.rmtree(copy / "notebooks", ignore_errors=True)
    (copy / "report.html").unlink(missing_ok=True)
    in_the_way = (copy if folder == "report.html" else copy.parent) / folder
    in_the_way.mkdir()
    done = cli_in_process(capsys, "report", str(copy))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert f"cannot write {in_the_way} (it is a folder, not a file)" in lines[0]
    assert not (copy / "notebooks").exists()


def test_report_with_an_unknown_kernel_is_one_line_before_anything_runs(finished_run):
    before = _bytes_of(finished_run)
    done = cli("report", str(finished_run), "--kernel", "no-such-kernel", "--no-index")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "--kernel 'no-such-kernel': no Jupyter kernel of that name" in lines[0]
    assert _bytes_of(finished_run) == before


def test_report_of_a_folder_that_is_not_a_run_is_exit_2(tmp_path):
    done = cli("report", str(tmp_path))
    assert done.returncode == 2
    assert "no sweep_results_*.json" in done.stderr and "Traceback" not in done.stderr
