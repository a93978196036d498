"""The nightly job: ``scheduled/nightly_sweep.sh`` end to end on a tiny config (marked slow),
and the decisions of :mod:`cryptosweep.nightly` it relies on (fast unit tests).

The end-to-end tests run the script as cron does: from ``/`` (or a temporary folder), with a
bare environment whose PATH does not hold the venv, with ``REPORTS_DIR``/``MODELS_DIR`` under
``tmp_path``. One nightly run (module fixture) serves the success, cron, webhook, command and
retention checks.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import http.server
import io
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat
import pytest

from cryptosweep import nightly
from cryptosweep.judging.selection import gate_dsr
from cryptosweep.nightly import notifications, promotion
from cryptosweep.nightly.pipeline import Night, NightLog, NightlyFailure, Notifiers, Settings
from tests.support import REPO, deterministic_bytes, done_count, results_file, tiny_config

slow = pytest.mark.slow

SCRIPT = REPO / "scheduled" / "nightly_sweep.sh"
TOKEN = "xoxT0KEN-s3cr3t-4f8e2a"
DAY = 86400.0


# ------------------------------------------------------------------------------------ helpers


def cron_env(tmp: Path, **settings: Any) -> dict[str, str]:
    """What cron gives a job: a bare PATH without the venv, HOME, a locale; plus settings."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "SHELL": "/bin/sh",
           "REPORTS_DIR": str(tmp / "reports"), "MODELS_DIR": str(tmp / "models")}
    env.update({key: str(value) for key, value in settings.items()})
    return env


def run_nightly(env: dict[str, str], cwd: Path | str = "/", timeout: float = 300,
                *args: str) -> SimpleNamespace:
    done = subprocess.run([str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    return SimpleNamespace(rc=done.returncode, output=done.stdout + done.stderr)


def last_nightly_line(output: str) -> str:
    """The job's own last line (its stdout comes before the stderr of what it ran)."""
    return [line for line in output.splitlines() if " nightly: " in line][-1]


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def tiny(**changes: Any) -> dict[str, Any]:
    """The issue's tiny nightly: random, 3 trials, max_iter 2, 2 folds, 3 rounds per unit,
    in-process, top 2."""
    return tiny_config(**{"random__n_trials": 3, "objective__rounds_per_unit": 3, **changes})


#: A deployment gate the tiny nightly's winner passes (it checks nothing).
LENIENT_GATE = {"deployment__min_dsr": 0.0, "deployment__max_pbo": 1.0,
                "deployment__min_holdout_score": -1e9, "deployment__min_holdout_trades": 0,
                "deployment__min_improvement": -1e9, "deployment__max_holdout_pvalue": 1.0,
                "deployment__min_stress_score": None, "deployment__champion_alpha": 1.0}


def nightly_runs(reports: Path) -> list[Path]:
    return sorted(p for p in reports.glob("nightly_*") if p.is_dir())


def fake_run(reports: Path, name: str, status: str | None = None, *, results: bool = False,
             report: bool = False, meta: dict[str, Any] | None = None) -> Path:
    """A run folder with a journal holding only ``meta`` (status and whatever else is given);
    ``status=None`` leaves the journal out. ``results``: a minimal results file that the
    report index can read."""
    run = reports / name
    run.mkdir(parents=True)
    if status is not None:
        conn = sqlite3.connect(run / "sweep.db")
        with conn:
            conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.executemany("INSERT INTO meta VALUES (?, ?)",
                             [(k, json.dumps(v)) for k, v in {"status": status,
                                                               **(meta or {})}.items()])
        conn.close()
    if results:
        write_json(run / "sweep_results_20200101_000000.json", {
            "run": {"created_at": 1577836800.0}, "sweep_type": "random",
            "best": {"score": 1.25, "holdout": {"holdout_sharpe": 0.5}},
            "overfitting": {"dsr": {"dsr": 0.9}, "pbo": {"pbo": 0.1}},
            "reproducibility_check": [],
        })
        write_json(run / "best_configs_20200101_000000.json", {"configurations": [name]})
    if report:
        (run / "report.html").write_text("<html></html>")
    return run


def age(path: Path, days: float) -> None:
    then = time.time() - days * DAY
    os.utime(path, (then, then))


class Webhook:
    """An HTTP server on 127.0.0.1 (port 0) recording every POST; answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[dict[str, Any]] = []
        received, answer = self.requests, status

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append({"path": self.path, "body": body,
                                 "content_type": self.headers.get("Content-Type")})
                self.send_response(answer)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.secret_url = f"{self.url}/services/T000/B000/{TOKEN}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), whatever its session."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def wait_until_unlocked(lock: Path, timeout: float = 30) -> None:
    """Killed processes close their files when they are gone, a moment after SIGKILL."""
    deadline = time.monotonic() + timeout
    with open(lock, "a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                assert time.monotonic() < deadline, f"{lock} still held"
                time.sleep(0.05)
                continue
            fcntl.flock(handle, fcntl.LOCK_UN)
            return


def files_text(folder: Path) -> str:
    """Everything under ``folder`` as text (binary files decoded leniently)."""
    return "\n".join(p.read_bytes().decode("utf-8", "replace")
                     for p in folder.rglob("*") if p.is_file())


# ------------------------------------------------------------ one nightly run, checked 5 ways


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A successful nightly from ``/`` with cron's environment, a webhook and a command
    notifier, and earlier run folders for retention (RUN_RETENTION=3, LOG_RETENTION_DAYS=14).
    Its gate is lenient: the winner is approved and becomes the first champion."""
    tmp = tmp_path_factory.mktemp("night")
    # Hyperband with the rounds fidelity (promotions continue from checkpoints), so that the
    # night has checkpoints to remove once it is complete.
    config = write_json(tmp / "tiny.json", tiny(sweep_type="hyperband",
                                                hyperband={"max_iter": 2, "eta": 2},
                                                objective__fidelity="rounds", **LENIENT_GATE))
    reports = tmp / "reports"
    old = {
        # newest first; the new run makes four with these three, so the newest 3 are kept
        "finished_recent": fake_run(reports, "nightly_20200105_020000", "complete",
                                    results=True, report=True),
        "finished_kept": fake_run(reports, "nightly_20200104_020000", "complete",
                                  results=True, report=True),
        "running": fake_run(reports, "nightly_20200103_020000", "running"),
        "no_report": fake_run(reports, "nightly_20200102_020000", "complete", results=True),
        "failed": fake_run(reports, "nightly_20200101_020000", "failed"),
        "finished_old": fake_run(reports, "nightly_20191231_020000", "complete",
                                 results=True, report=True),
        "never_started": fake_run(reports, "nightly_20191230_020000", None),
        "not_nightly": fake_run(reports, "demo_20190101_000000", "complete", report=True),
    }
    for name in ("finished_recent", "running", "not_nightly"):
        (old[name] / "sweep_output.log").write_text(f"old log of {name}\n")
        age(old[name] / "sweep_output.log", 30)
    (old["finished_recent"] / "recent.log").write_text("recent\n")
    age(old["finished_recent"] / "recent.log", 3)
    os.symlink(old["finished_recent"].name, reports / "latest")  # what the last night left
    stdin_copy = tmp / "command_stdin.json"
    with Webhook() as hook:
        env = cron_env(tmp, SWEEP_CONFIG=config, RUN_RETENTION=3, LOG_RETENTION_DAYS=14,
                       NOTIFY_WEBHOOK_URL=hook.secret_url,
                       NOTIFY_COMMAND=f"cat > '{stdin_copy}'")
        assert str(REPO / ".venv") not in env["PATH"]
        done = run_nightly(env, "/")
    runs = nightly_runs(reports)
    yield SimpleNamespace(done=done, tmp=tmp, config=config, reports=reports,
                          models=tmp / "models", run=runs[-1], old=old, hook=hook,
                          stdin_copy=stdin_copy)


@slow
def test_success_publishes_report_latest_and_index(night):
    assert night.done.rc == 0, night.done.output[-4000:]
    # The kernels run on Unix sockets: ipykernel's warning about TCP without encryption
    # was printed twice a night.
    assert "without encryption" not in night.done.output
    run = night.run
    assert run.name.startswith("nightly_20") and run.name > "nightly_2020"
    assert (run / "report.html").is_file() and (run / "notebooks" / "analysis.ipynb").is_file()
    assert nightly.run_status(run) == "complete"
    latest = night.reports / "latest"
    assert latest.is_symlink() and os.readlink(latest) == run.name  # relative: movable
    index = (night.reports / "index.html").read_text()
    assert f"{run.name}/report.html" in index
    assert not list(night.reports.glob(".latest*")), "no temporary link left behind"
    runs = [p for p in night.reports.iterdir()
            if p.is_dir() and not p.is_symlink() and list(p.glob("sweep_results_*.json"))]
    assert index.count('<tr><td class="text"><a href=') == len(runs) == 4, (
        "one row per run folder: the latest link is not a run")


MAX_NIGHT_BYTES = 5_000_000  # 5 MB


@slow
def test_a_night_takes_at_most_5_mb(night):
    """What one night adds to the reports folder: its run folder, without checkpoints and
    without a copy of plotly.js (one per reports folder, shared by every page)."""
    assert night.done.rc == 0, night.done.output[-4000:]
    sizes = {str(p.relative_to(night.run)): p.stat().st_size
             for p in night.run.rglob("*") if p.is_file()}
    total = sum(sizes.values())
    print(f"night {night.run.name}: {total / 1e6:.2f} MB", sorted(sizes.items()))
    assert total <= MAX_NIGHT_BYTES, sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
    assert not (night.run / "checkpoints").exists()
    library = re.compile(rb"plotly\.js v\d")
    for page in (night.run / "report.html", *night.run.glob("notebooks/*.ipynb")):
        assert not library.search(page.read_bytes()), f"{page.name} embeds plotly.js"
    (shared,) = night.reports.glob("plotly-*.min.js")
    assert f'src="../{shared.name}"'.encode() in (night.run / "report.html").read_bytes()


@slow
def test_an_approved_run_becomes_the_champion(night):
    """Approved: the winner is trained into models/champion (a model folder whose manifest
    is the winner's configuration and seed), best_configs_latest.json is the run's, the
    decision is in champions.jsonl, the summary and the job's last line."""
    assert night.done.rc == 0, night.done.output[-4000:]
    results = json.loads(results_file(night.run).read_text())
    assert results["deployment"]["decision"] == "approved"
    assert results["deployment"]["champion"] is None  # nothing was deployed before
    (best,) = night.run.glob("best_configs_*.json")
    assert (night.models / "best_configs_latest.json").read_bytes() == best.read_bytes()
    manifest = json.loads((night.models / "champion" / "manifest.json").read_text())
    assert manifest["format"] == "cryptosweep-model/1"
    assert manifest["configuration"]["params"] == results["best"]["params"]
    assert manifest["seed"] == results["best"]["seed"]
    assert not (night.models / "champion.prev").exists()
    assert sorted(p.name for p in night.models.iterdir()) == [
        ".lock", "best_configs_last_run.json", "best_configs_latest.json", "champion",
        "champions.jsonl", "trials.db"]
    assert (night.models / "best_configs_last_run.json").read_bytes() == best.read_bytes()
    (record,) = promotion.read_history(night.models)
    assert (record["run"], record["decision"], record["promoted"]) == (
        night.run.name, "approved", True)
    assert record["criteria"] == results["deployment"]["criteria"]
    summary = json.loads(night.hook.requests[0]["body"])
    assert summary["decision"] == "approved" and summary["promoted"] is True
    assert f"deployed to {night.models / 'champion'}" in summary["text"]
    last = last_nightly_line(night.done.output)
    assert last.endswith(f"INFO nightly: approved: eval {results['best']['eval_id']} "
                         f"({results['best']['params']['model']}) deployed to "
                         f"{night.models / 'champion'}")


@pytest.fixture(scope="module")
def night_rejected(night: SimpleNamespace) -> SimpleNamespace:
    """The next night, in another reports folder but the same models folder: its winner is
    compared with the champion the first night deployed, and rejected (it cannot make the
    million holdout trades its gate asks for). Its DSR takes the trials' variance
    (``deployment.dsr_variance: trials``), the first night's the default."""
    tmp = night.tmp / "rejected"
    tmp.mkdir()
    config = write_json(tmp / "tiny.json", tiny(**{**LENIENT_GATE,
                                                   "deployment__min_holdout_trades": 10**6,
                                                   "deployment__dsr_variance": "trials"}))
    before = {p.relative_to(night.models): p.read_bytes()
              for p in night.models.rglob("*") if p.is_file()}
    stdin_copy = tmp / "stdin.json"
    env = cron_env(tmp, SWEEP_CONFIG=config, MODELS_DIR=night.models,
                   NOTIFY_COMMAND=f"cat > '{stdin_copy}'")
    done = run_nightly(env, tmp)
    (run,) = nightly_runs(tmp / "reports")
    return SimpleNamespace(done=done, run=run, before=before, models=night.models,
                           summary=json.loads(stdin_copy.read_text()))


@slow
def test_the_trial_ledger_survives_two_nights_and_the_count_grows(night, night_rejected):
    """The second night's winner is judged against every trial of both nights on the same
    bars: the ledger beside the champion holds both, and N grows."""
    first = json.loads(results_file(night.run).read_text())["statistics"]
    second = json.loads(results_file(night_rejected.run).read_text())["statistics"]
    assert (first["ledger"]["n_runs"], second["ledger"]["n_runs"]) == (1, 2)
    assert second["ledger"]["n_evaluations"] > first["ledger"]["n_evaluations"]
    assert second["ledger"]["n_trials"] > first["ledger"]["n_trials"]
    assert second["selection"]["dsr"]["n_trials"] == second["ledger"]["n_trials"]
    # The first night's trials have no series tonight: they count beside tonight's clusters.
    assert (second["selection"]["effective_trials"].get("n_unclustered", 0)
            > first["selection"]["effective_trials"].get("n_unclustered", 0))
    assert second["holdout_looks"] == 2  # both nights looked at the same holdout bars
    # Each night's DSRs rest on the variance its config named, recorded with it.
    assert (first["selection"]["dsr_variance"], second["selection"]["dsr_variance"]) == (
        "no_skill", "trials")
    for block in ("dsr", "dsr_effective"):
        assert first["selection"][block]["sharpe_variance"] == pytest.approx(
            1 / (first["selection"][block]["n_obs"] - 1), rel=1e-12)
        assert second["selection"][block]["sharpe_variance"] == second["ledger"][
            "sharpe_variance"]
    with sqlite3.connect(night.models / "trials.db") as db:
        runs = {row[0] for row in db.execute("SELECT DISTINCT run FROM trials")}
    # Each run by its folder's name and when it was created (records.ledger.run_key).
    assert {run.partition("@")[0] for run in runs} == {night.run.name, night_rejected.run.name}
    assert len(runs) == 2 and all("@" in run for run in runs)


@slow
def test_a_rejected_run_leaves_the_champion_untouched(night, night_rejected):
    """Rejected: champion and best_configs_latest.json are byte for byte what they were, the
    run's best configs go to models/rejected/<run>/, the decision is appended to
    champions.jsonl, and the summary and the job's last line say why."""
    night_ = night_rejected
    assert night_.done.rc == 0, night_.done.output[-4000:]
    results = json.loads(results_file(night_.run).read_text())
    deployment = results["deployment"]
    assert deployment["decision"] == "rejected"
    after = {p.relative_to(night_.models): p.read_bytes()
             for p in night_.models.rglob("*") if p.is_file()}
    for path, content in night_.before.items():
        # What every night writes: its decision, its trials, its best configs, its lock's pid.
        if path.name not in ("champions.jsonl", "trials.db", "best_configs_last_run.json",
                             ".lock"):
            assert after[path] == content, f"{path} changed"
    (best,) = night_.run.glob("best_configs_*.json")
    assert after[Path("rejected") / night_.run.name / best.name] == best.read_bytes()
    _, second = promotion.read_history(night_.models)
    assert (second["run"], second["decision"], second["promoted"]) == (
        night_.run.name, "rejected", False)
    # The champion was re-evaluated on this run's holdout bars, with its recorded seed.
    (versus,) = [c for c in deployment["criteria"] if c["name"] == "champion"]
    champion = deployment["champion"]
    manifest = json.loads((night_.models / "champion" / "manifest.json").read_text())
    assert champion["seed"] == manifest["seed"]
    assert champion["configuration"] == manifest["configuration"]["params"]
    assert champion["holdout"]["holdout_bars"] == results["data"]["holdout_bars"]
    assert versus["threshold"] == champion["holdout"]["holdout_sharpe"] - 1e9
    failed = [c["text"] for c in deployment["criteria"] if not c["passed"]]
    assert failed == [f"holdout trades {results['best']['holdout']['holdout_trades']} < "
                      "1000000"]
    # The keep-gate: the champion's own re-evaluation on tonight's holdout, recorded.
    keep = second["keep"]
    assert keep["score"] == champion["holdout"]["holdout_sharpe"] and not keep["demote"]
    line = f"not promoted: {failed[0]}; the previous champion stays ({keep['text']}); see "
    assert night_.summary["deployment"] == f"not promoted: {failed[0]}"
    assert night_.summary["promoted"] is False and "Not promoted: holdout trades" in (
        night_.summary["text"])
    last = last_nightly_line(night_.done.output)
    assert last.endswith(f"INFO nightly: {line}{night_.run / 'report.html'}")


@slow
@pytest.mark.parametrize("moment", ["training", "saving"])
def test_a_killed_promotion_never_leaves_a_half_written_champion(night, night_rejected,
                                                                 tmp_path, moment):
    """SIGKILL as the champion's training starts, or once its files are being written, then
    the next night's recovery: the deployed champion is the one before, whole, and nothing
    of the training is left; the decision is not lost (it was: nothing retried it), the next
    champion step acts on it, once."""
    models = tmp_path / "models"
    shutil.copytree(night.models, models)
    # The first night's run, as if its champion step had not run yet on this models folder.
    history = models / promotion.HISTORY
    history.write_text("".join(line for line in history.read_text().splitlines(True)
                               if json.loads(line)["run"] != night.run.name))
    before = {p.relative_to(models): p.read_bytes() for p in models.rglob("*") if p.is_file()}
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from cryptosweep.nightly.promotion import "
         "decide_and_act; decide_and_act(sys.argv[1], sys.argv[2])", str(night.run),
         str(models)], start_new_session=True)

    def reached() -> bool:
        workspaces = list(models.glob(f"{promotion.TRAINING_PREFIX}*"))
        return bool(workspaces) and (moment == "training" or any(workspaces[0].iterdir()))

    deadline = time.monotonic() + 120
    try:
        while not reached():
            assert process.poll() is None, "the promotion ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.001)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert not (models / "champion.prev").exists(), "killed too late"
    assert any("interrupted training" in line for line in nightly.recover(models))
    after = {p.relative_to(models): p.read_bytes() for p in models.rglob("*") if p.is_file()}
    # The last run's best configs are published before its promotion, approved or not.
    after.pop(Path("best_configs_last_run.json"), None)
    before.pop(Path("best_configs_last_run.json"), None)
    assert promotion.read_pending(models) == promotion.Pending(night.run.resolve(), 1)
    assert after.pop(Path(promotion.PENDING))
    for files in (before, after):  # the lock names the last process that took it
        files.pop(Path(".lock"), None)
    assert after == before
    # The next night acts on it before its sweep: promoted once, and only once.
    next_night, stream, _ = _night_on(tmp_path)  # on the same models folder
    next_night._finish_pending(promotion.read_pending(models))
    assert next_night.earlier_promotion is not None and next_night.earlier_promotion.promoted
    assert next_night.earlier_promotion.message.startswith(
        f"the interrupted champion step of {night.run.name}: approved: eval ")
    assert f"the step acting on {night.run.name}'s decision was interrupted" in (
        stream.getvalue())
    assert promotion.read_pending(models) is None
    assert (models / "champion.prev").is_dir()
    again = promotion.decide_and_act(night.run, models)
    assert not again.promoted and "already decided (approved)" in again.message
    assert [r["run"] for r in promotion.read_history(models)].count(night.run.name) == 1


@slow
def test_runs_from_root_with_cron_environment(night):
    """cwd=/ and a PATH without the venv: the script finds everything by absolute path and
    logs its own timestamped lines into the run's sweep_output.log and stdout."""
    assert night.done.rc == 0, night.done.output[-4000:]
    executed = nbformat.read(night.run / "notebooks" / "sweep.ipynb", as_version=4)
    injected = next(c.source for c in executed.cells
                    if "injected-parameters" in c.metadata.get("tags", []))
    assert f'config_path = "{night.config}"' in injected and "seed = 123456" in injected
    assert f'log_dir = "{night.reports}"' in injected and 'gpu_ids = ""' in injected
    assert "show_progress = False" in injected
    log = (night.run / "sweep_output.log").read_text()
    for text in ("INFO nightly: start:", "INFO nightly: new run:", "cryptosweep.sweep.runner: run",
                 "INFO nightly: success:", "INFO nightly: webhook: sent",
                 "INFO nightly: finished with exit code 0"):
        assert text in log, text
    assert "trials run on CPU" in log  # GPU_POLICY=fallback on a GPU-less machine
    assert "INFO nightly: success:" in night.done.output


@slow
def test_webhook_gets_the_summary_and_the_token_is_never_logged(night):
    assert night.done.rc == 0, night.done.output[-4000:]
    (request,) = night.hook.requests
    assert request["path"].endswith(TOKEN) and request["content_type"] == "application/json"
    summary = json.loads(request["body"])
    results = json.loads(results_file(night.run).read_text())
    assert summary["run"] == night.run.name and summary["status"] == "success"
    assert summary["exit_code"] == 0
    assert summary["best_score"] == results["best"]["score"]
    assert summary["holdout_sharpe"] == results["best"]["holdout"]["holdout_sharpe"]
    # The DSR the gate judged (the ledger's count, or the effective one), not the search's.
    gate = next(c for c in results["deployment"]["criteria"] if c["name"] == "dsr")
    assert summary["dsr"] == gate["value"] == gate_dsr(results)["dsr"]
    assert summary["pbo"] == results["overfitting"]["pbo"]["pbo"]
    assert summary["report"] == str(night.run / "report.html")
    assert night.run.name in summary["text"] and "success" in summary["text"]
    for where in (night.done.output, files_text(night.run), files_text(night.models)):
        assert TOKEN not in where and "/services/T000" not in where


@slow
def test_logs_the_summary_and_the_journal_are_private(night):
    """What may hold secrets or private results is not world-readable (issue #13)."""
    assert night.done.rc == 0, night.done.output[-4000:]
    for name in ("sweep_output.log", "nightly_summary.json", "sweep.db"):
        mode = (night.run / name).stat().st_mode & 0o777
        assert mode == 0o600, f"{name} is {oct(mode)}"
    (repro,) = night.run.glob("gpu_repro_*.json")
    assert "NOTIFY" not in repro.read_text() and TOKEN not in repro.read_text()


@slow
def test_notify_command_gets_the_summary_on_stdin(night):
    assert night.done.rc == 0, night.done.output[-4000:]
    summary = json.loads(night.stdin_copy.read_text())
    assert summary == json.loads(night.hook.requests[0]["body"])
    assert "command: ok" in night.done.output


@slow
def test_retention_keeps_exactly_what_it_must(night):
    assert night.done.rc == 0, night.done.output[-4000:]
    old = night.old
    assert not old["failed"].exists() and not old["finished_old"].exists()
    assert not old["never_started"].exists()
    for kept in ("finished_recent", "finished_kept", "running", "no_report", "not_nightly"):
        assert old[kept].is_dir(), f"{kept} must be kept"
    # Old logs of the nightly's runs are gzipped (content and mtime kept); recent ones and
    # other runs' logs are not touched, nor is tonight's log.
    for name in ("finished_recent", "running"):
        gz = old[name] / "sweep_output.log.gz"
        assert not (old[name] / "sweep_output.log").exists()
        assert gzip.decompress(gz.read_bytes()).decode() == f"old log of {name}\n"
        assert time.time() - gz.stat().st_mtime > 29 * DAY
    assert (old["finished_recent"] / "recent.log").is_file()
    assert (old["not_nightly"] / "sweep_output.log").is_file()
    assert (night.run / "sweep_output.log").is_file()
    index = (night.reports / "index.html").read_text()
    assert "nightly_20191231_020000" not in index, "the index drops deleted runs"
    assert "nightly_20200105_020000" in index


# --------------------------------------------------------------------- interruption and lock


@slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_night_says_so_in_one_line_and_is_resumed_next_night(tmp_path, signum,
                                                                            code):
    # Before the fix: ~100 lines of asyncio tracebacks, SIGINT named for a SIGTERM, the way out
    # `cryptosweep run --resume`, and a notification "FAILED, exit 130 (unexpected error)".
    config = write_json(tmp_path / "longer.json", tiny(random__n_trials=12))
    stdin_copy = tmp_path / "command_stdin.json"
    env = cron_env(tmp_path, SWEEP_CONFIG=config, NOTIFY_COMMAND=f"cat > '{stdin_copy}'")
    reports = tmp_path / "reports"
    process = subprocess.Popen([str(SCRIPT)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 180
    try:
        while not any(done_count(db) >= 1 for db in reports.glob("nightly_*/sweep.db")):
            assert process.poll() is None, "the nightly ended before it could be interrupted"
            assert time.monotonic() < deadline, "the sweep made no progress"
            time.sleep(0.01)
        os.killpg(process.pid, signum)  # Ctrl-C in a terminal, or systemd's stop
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            for pid in descendants(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    name = signal.Signals(signum).name
    lines = output.rstrip().splitlines()
    assert process.returncode == code, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    assert "cryptosweep run --resume" not in output
    assert re.fullmatch(rf".* nightly: interrupted \({name}\), exit {code}; the next night "
                        rf"resumes {reports}/nightly_\w+", lines[-1]), lines[-5:]
    assert sum(f"interrupted ({name})" in line for line in lines) == 1, output[-4000:]
    summary = json.loads(stdin_copy.read_text())
    assert summary["exit_code"] == code and summary["status"] == "interrupted"
    assert summary["reason"] == f"interrupted ({name}); the next night resumes it"
    assert "interrupted" in summary["text"] and "FAILED" not in summary["text"]
    assert "unexpected error" not in summary["text"]
    (run,) = nightly_runs(reports)
    assert nightly.run_status(run) == "running", "left for the next night to resume"


@slow
def test_killed_run_is_resumed_to_the_results_of_an_uninterrupted_run(tmp_path):
    config = write_json(tmp_path / "longer.json", tiny(random__n_trials=12))
    env = cron_env(tmp_path, SWEEP_CONFIG=config)
    reports = tmp_path / "reports"
    reference = subprocess.Popen(  # the nightly's config: with where its champion would be
        [sys.executable, "-m", "cryptosweep", "run", "--config", str(config), "--seed",
         "123456", "--log-dir", str(tmp_path / "ref"), "--run-name", "ref", "--set",
         f"deployment.champion_dir={tmp_path / 'models' / 'champion'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert reference.wait(timeout=300) == 0, reference.stderr.read() if reference.stderr else ""
    # The reference counted its trials in the ledger beside that champion; the nightly must
    # count only its own (each counted as it finished, the killed session's too), as it would
    # on a machine where the reference never ran.
    for ledger in (tmp_path / "models").glob("trials.db*"):
        ledger.unlink()
    first = subprocess.Popen([str(SCRIPT)], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 180
    try:
        while not any(done_count(db) >= 1 for db in reports.glob("nightly_*/sweep.db")):
            assert first.poll() is None, "the nightly ended before it could be killed"
            assert time.monotonic() < deadline, "the sweep made no progress"
            time.sleep(0.01)
    finally:
        # The whole process group, and the kernel that jupyter starts in its own session.
        below = descendants(first.pid)
        os.killpg(first.pid, signal.SIGKILL)
        for pid in below:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        first.wait()
    wait_until_unlocked(reports / ".nightly.lock")
    (run,) = nightly_runs(reports)
    assert nightly.run_status(run) == "running"
    assert 1 <= done_count(run / "sweep.db") < 12

    second = run_nightly(env, tmp_path)
    assert second.rc == 0, second.output[-4000:]
    assert nightly_runs(reports) == [run], "the same folder is resumed, no new one started"
    assert f"INFO nightly: resuming the sweep: {run}" in second.output
    assert "resuming:" in (run / "sweep_output.log").read_text()
    assert (run / "report.html").is_file() and os.readlink(reports / "latest") == run.name
    assert deterministic_bytes(run) == deterministic_bytes(tmp_path / "ref" / "ref")


@slow
def test_second_invocation_while_one_runs_is_refused(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    with open(reports / ".nightly.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # what flock(1) takes: flock(2) on the same file
        started = time.monotonic()
        done = run_nightly(cron_env(tmp_path, SWEEP_CONFIG=tmp_path / "absent.json"), tmp_path)
    assert done.rc == 0 and "already running" in done.output
    assert time.monotonic() - started < 30
    assert not nightly_runs(reports)


# -------------------------------------------------------------------------------- exit codes


@slow
def test_exit_2_on_a_bad_config_and_notified(tmp_path):
    bad = write_json(tmp_path / "bad.json", {**tiny(), "sweep_typo": "random"})
    stdin_copy = tmp_path / "stdin.json"
    done = run_nightly(cron_env(tmp_path, NOTIFY_COMMAND=f"cat > '{stdin_copy}'"), tmp_path,
                       300, str(bad))
    assert done.rc == 2, done.output[-3000:]
    assert "invalid config or data" in done.output and "sweep_typo" in done.output
    assert not nightly_runs(tmp_path / "reports")
    summary = json.loads(stdin_copy.read_text())
    assert summary["exit_code"] == 2 and summary["status"] == "failed" and summary["run"] is None
    assert "sweep_typo" in summary["message"]


@slow
def test_exit_3_when_gpus_are_required_but_absent(tmp_path):
    if nightly.detect_gpus()[0]:
        pytest.skip("this machine has a GPU")
    config = write_json(tmp_path / "tiny.json", tiny())
    done = run_nightly(cron_env(tmp_path, SWEEP_CONFIG=config, GPU_POLICY="require"), tmp_path)
    assert done.rc == 3, done.output[-3000:]
    assert "GPU_POLICY=require but no GPU found" in done.output
    assert not nightly_runs(tmp_path / "reports")


@slow
def test_exit_4_when_every_trial_fails_and_a_failing_webhook_is_not_fatal(tmp_path):
    config = tiny(random__n_trials=12)
    config["parameter_ranges"]["lightgbm"] = {  # rf without any bagging: LightGBM refuses
        "boosting": {"type": "categorical", "choices": ["rf"]},
        "bagging_fraction": {"type": "categorical", "choices": [1.0]},
        "feature_fraction": {"type": "categorical", "choices": [1.0]},
    }
    path = write_json(tmp_path / "failing.json", config)
    stdin_copy = tmp_path / "stdin.json"
    with Webhook(status=500) as hook:
        env = cron_env(tmp_path, SWEEP_CONFIG=path, NOTIFY_WEBHOOK_URL=hook.secret_url,
                       NOTIFY_COMMAND=f"cat > '{stdin_copy}'; exit 7")
        done = run_nightly(env, tmp_path)
    assert done.rc == 4, done.output[-3000:]
    (run,) = nightly_runs(tmp_path / "reports")
    assert nightly.run_status(run) == "failed"
    log = (run / "sweep_output.log").read_text()
    assert "sweep failed: SweepFailedError" in log
    assert "webhook: failed (HTTP 500)" in log and "command: failed (exit 7)" in log
    assert TOKEN not in log and TOKEN not in done.output
    assert len(hook.requests) == 1
    summary = json.loads(stdin_copy.read_text())
    assert (summary["exit_code"], summary["status"], summary["run"]) == (4, "failed", run.name)
    assert not (tmp_path / "reports" / "latest").exists()
    assert not (tmp_path / "models" / "best_configs_latest.json").exists()


@slow
def test_exit_5_when_the_report_fails(night, tmp_path):
    """A complete sweep whose report is missing is finished tonight (report only); its
    results file is truncated, so the report refuses it (before its notebook runs): exit 5,
    nothing published."""
    assert night.done.rc == 0
    reports = tmp_path / "reports"
    run = reports / "nightly_20200101_020000"
    shutil.copytree(night.run, run)
    (run / "report.html").unlink()
    results = results_file(run)
    results.write_text(results.read_text()[:1000])
    config = write_json(tmp_path / "tiny.json", tiny())
    done = run_nightly(cron_env(tmp_path, SWEEP_CONFIG=config), tmp_path)
    assert done.rc == 5, done.output[-3000:]
    assert f"INFO nightly: report only: {run}" in done.output
    assert "ERROR nightly: report failed (exit 5): " in done.output
    assert "is not complete JSON" in done.output
    assert nightly_runs(reports) == [run] and not (run / "report.html").exists()
    assert not (reports / "latest").exists()
    assert not (tmp_path / "models" / "best_configs_latest.json").exists()
    assert json.loads((run / nightly.SUMMARY_FILE).read_text())["exit_code"] == 5


# ------------------------------------------------------------------ unit tests (not slow)


def test_build_summary_from_results_and_without_a_run(tmp_path):
    run = fake_run(tmp_path, "nightly_20200101_020000", "complete", results=True, report=True)
    summary = nightly.build_summary(run, 0)
    assert summary["run"] == run.name and summary["status"] == "success"
    assert (summary["best_score"], summary["holdout_sharpe"], summary["dsr"], summary["pbo"]) == (
        1.25, 0.5, 0.9, 0.1)
    assert summary["report"] == str(run / "report.html")
    assert summary["text"].startswith(":white_check_mark:") and "+1.250" in summary["text"]
    # the winner's score, not the search's best (which the sweep's log shows, often higher)
    assert "success. Winner's validation score +1.250, holdout Sharpe +0.500" in summary["text"]
    failed = nightly.build_summary(None, 4, "sweep failed: SweepFailedError: 5 of 5")
    assert failed["status"] == "failed" and failed["reason"] == "sweep failed"
    assert failed["run"] is None and failed["best_score"] is None and failed["report"] is None
    assert "exit 4" in failed["text"] and "5 of 5" in failed["text"]
    json.dumps(failed)  # plain JSON


def test_the_chat_line_says_the_candles_were_not_updated(tmp_path):
    """An exchange that could not be reached is a warning and the night sweeps the stored
    candles: the chat line said "success ... Approved" as on fresh candles, the failure only
    in the JSON's data_update."""
    run = fake_run(tmp_path, "nightly_20200101_020000", "complete", results=True, report=True)
    error = "binance (https://api.binance.com:443): fetching BTC/USDT 1h candles failed: timed out"
    failed = nightly.build_summary(run, 0, data_update={"error": error, "exit_code": 6})
    assert failed["status"] == "success"
    assert (f"PBO 0.10. Candles NOT updated (data update failed, exit 6: {error}); the sweep ran "
            "on the candles already stored. Report: ") in failed["text"]
    stale = "no new closed candle, though 30 bars have closed since the stored last bar"
    warned = nightly.build_summary(run, 0, data_update={"bars_added": 0, "warnings": [stale]})
    assert f"PBO 0.10. Data update WARNING: {stale}. Report: " in warned["text"]
    last = "2024-05-01T00:00:00+00:00"
    capped = nightly.build_summary(run, 0, data_update={"bars_added": 100_000, "warnings": [],
                                                        "complete": False, "last_bar": last})
    assert (f"PBO 0.10. Data update WARNING: the candles end at {last}, more closed ones are "
            "waiting (max_bars reached; the next update brings them). Report: ") in capped["text"]
    fine = nightly.build_summary(run, 0, data_update={"bars_added": 24, "warnings": [],
                                                      "complete": True, "last_bar": last})
    assert fine["text"] == nightly.build_summary(run, 0)["text"]


def test_summary_carries_the_deployment_decision(tmp_path):
    run = fake_run(tmp_path, "nightly_20200101_020000", "complete", results=True, report=True)
    results = results_file(run)
    data = json.loads(results.read_text())
    data["deployment"] = {"decision": "rejected", "reason": "Rejected: DSR 0.03 < 0.95.",
                          "criteria": [{"name": "dsr", "value": 0.03, "threshold": 0.95,
                                        "passed": False, "text": "DSR 0.03 < 0.95"}]}
    results.write_text(json.dumps(data))
    summary = nightly.build_summary(run, 0)
    assert (summary["decision"], summary["deployment"], summary["promoted"]) == (
        "rejected", "not promoted: DSR 0.03 < 0.95", None)
    assert summary["text"].endswith("PBO 0.10. Not promoted: DSR 0.03 < 0.95. Report: "
                                    f"{run / 'report.html'}")
    kept = nightly.Promotion(False, {}, "not promoted: DSR 0.03 < 0.95; the previous champion "
                                        "stays; see report.html")
    summary = nightly.build_summary(run, 0, promotion=kept)
    assert summary["promoted"] is False and summary["champion"] == kept.message
    assert "Not promoted: DSR 0.03 < 0.95; the previous champion stays" in summary["text"]


def test_select_for_deletion_keeps_newest_unfinished_and_latest(tmp_path):
    make = {
        "nightly_20200106_020000": ("complete", True, True),
        "nightly_20200105_020000": ("complete", True, True),
        "nightly_20200104_020000": ("complete", True, True),  # latest points here
        "nightly_20200103_020000": ("running", False, False),
        "nightly_20200102_020000": ("complete", True, False),  # report missing
        "nightly_20200101_020000": ("failed", False, False),
        "nightly_20191231_020000": ("complete", True, True),
    }
    for name, (status, results, report) in make.items():
        fake_run(tmp_path, name, status, results=results, report=report)
    fake_run(tmp_path, "nightly_20191230_020000", None)  # never got a journal
    runs = nightly.scan_runs(tmp_path)
    assert runs[0].path.name == "nightly_20191230_020000"
    doomed = nightly.select_for_deletion(runs, 2, [tmp_path / "nightly_20200104_020000"])
    assert [r.path.name for r in doomed] == [
        "nightly_20200101_020000", "nightly_20191231_020000", "nightly_20191230_020000"]
    assert nightly.select_for_deletion(runs, 10) == []


def test_housekeep_compresses_old_logs_and_protects_latest_and_current(tmp_path):
    kept = fake_run(tmp_path, "nightly_20200103_020000", "complete", results=True, report=True)
    current = fake_run(tmp_path, "nightly_20200102_020000", "running")
    linked = fake_run(tmp_path, "nightly_20200101_020000", "complete", results=True, report=True)
    gone = fake_run(tmp_path, "nightly_20191231_020000", "complete", results=True, report=True)
    os.symlink(linked.name, tmp_path / "latest")
    for run in (kept, current, linked):
        (run / "sweep_output.log").write_text("log\n")
        age(run / "sweep_output.log", 20)
    (kept / "fresh.log").write_text("fresh\n")
    lines = nightly.housekeep(tmp_path, log_days=14, keep=1, current=current)
    assert kept.is_dir() and current.is_dir() and linked.is_dir() and not gone.exists()
    assert (kept / "sweep_output.log.gz").is_file() and (linked / "sweep_output.log.gz").exists()
    assert (current / "sweep_output.log").is_file(), "the current run's log is still written"
    assert (kept / "fresh.log").is_file()
    assert any("deleted nightly_20191231_020000" in line for line in lines)
    assert nightly.housekeep(tmp_path, log_days=14, keep=1, current=current) == []


def test_notifier_failures_are_log_lines_without_the_secret(tmp_path):
    summary = nightly.build_summary(None, 0)
    with Webhook(status=500) as hook:
        assert nightly.send_webhook(hook.secret_url, summary) == (
            "WARNING webhook: failed (HTTP 500)")
    with Webhook() as hook:
        assert nightly.send_webhook(hook.secret_url, summary).startswith("INFO webhook: sent")
        assert json.loads(hook.requests[0]["body"])["text"] == summary["text"]
    refused = nightly.send_webhook(hook.secret_url, summary, timeout=2)  # server gone
    assert refused.startswith("WARNING webhook: failed (") and TOKEN not in refused
    assert "not an http(s) URL" in nightly.send_webhook(f"file:///{TOKEN}", summary)
    assert nightly.run_notify_command("exit 3", summary) == "WARNING command: failed (exit 3)"
    started = time.monotonic()
    assert nightly.run_notify_command("sleep 30", summary, timeout=0.5) == (
        "WARNING command: failed (timed out after 0.5 s)")
    assert time.monotonic() - started < 10
    target = tmp_path / "got.json"
    assert nightly.run_notify_command(f"cat > '{target}'", summary) == "INFO command: ok"
    assert json.loads(target.read_text()) == summary
    assert nightly.run_notify_command("true", summary) == "INFO command: ok"  # stdin unread
    lines = nightly.notify(summary, f"http://127.0.0.1:9/{TOKEN}", "exit 1", timeout=2)
    assert len(lines) == 2 and all(TOKEN not in line for line in lines)
    assert nightly.notify(summary) == ["INFO notify: no NOTIFY_WEBHOOK_URL or NOTIFY_COMMAND set"]


BROKEN_WEBHOOKS = {  # each once ended in a traceback (the first two with the secret in it)
    "credentials and a malformed port":
        f"https://bob:hunter2pass@hooks.example.com:80x/services/{TOKEN}",
    "a space in the path": f"https://hooks.example.com/services/T0 {TOKEN}/x",
    "a broken IPv6 host": f"https://[::1/services/{TOKEN}",
    "a percent-encoded token": f"https://hooks.example.com:99999/s/{TOKEN.replace('-', '%2D')}",
    "a control character": f"https://hooks.example.com/{TOKEN}\x01",  # quoted as \\x01
}


@pytest.mark.parametrize("url", list(BROKEN_WEBHOOKS.values()), ids=list(BROKEN_WEBHOOKS))
def test_a_broken_webhook_url_is_one_redacted_line_and_the_command_still_runs(tmp_path, url):
    summary = nightly.build_summary(None, 2, "bad config")
    target = tmp_path / "got.json"
    lines = nightly.notify(summary, url, f"cat > '{target}'", timeout=2)
    assert len(lines) == 2 and lines[0].startswith("WARNING webhook: failed ("), lines
    assert lines[1] == "INFO command: ok" and json.loads(target.read_text()) == summary
    for secret in (TOKEN, "hunter2pass", "bob:", "T0 ", TOKEN.replace("-", "%2D")):
        assert secret not in lines[0], lines[0]


@slow
def test_bad_notifier_settings_never_stop_the_notification(tmp_path):
    """NOTIFY_TIMEOUT=abc and a webhook URL with a password and a malformed port: the night
    still ends with its own exit code, the webhook failure is one line without the password,
    and the command is notified."""
    stdin_copy = tmp_path / "stdin.json"
    env = cron_env(tmp_path, NOTIFY_TIMEOUT="abc",
                   NOTIFY_WEBHOOK_URL=f"https://bob:hunter2pass@hooks.example.com:80x/{TOKEN}",
                   NOTIFY_COMMAND=f"cat > '{stdin_copy}'")
    done = run_nightly(env, tmp_path, 120, str(tmp_path / "missing.json"))
    assert done.rc == 2, done.output[-3000:]
    assert "Traceback" not in done.output
    assert "NOTIFY_TIMEOUT must be seconds" in done.output
    assert ("WARNING nightly: webhook: failed (InvalidURL: nonnumeric port: '<redacted>')"
            in done.output)  # what cannot be parsed is masked whole
    assert "INFO nightly: command: ok" in done.output
    assert json.loads(stdin_copy.read_text())["exit_code"] == 2
    for where in (done.output, files_text(tmp_path / "reports") if (tmp_path / "reports")
                  .exists() else ""):
        assert "hunter2pass" not in where and TOKEN not in where


def test_redact_removes_url_path_and_query():
    url = f"https://hooks.example.com/services/{TOKEN}?key={TOKEN}"
    assert TOKEN not in notifications._redact(f"error talking to {url} at /services/{TOKEN}", url)


def test_resolve_gpus_by_policy():
    resolve = nightly.resolve_gpus
    assert resolve("fallback", "", []).ids == [] and resolve("fallback", "", []).exit_code == 0
    assert "trials run on CPU" in resolve("fallback", "", [], "no driver").message
    assert resolve("fallback", "", [0, 1]).ids == [0, 1]
    assert resolve("fallback", "1,3", [0, 1]).ids == [1]
    assert resolve("fallback", "3", [0, 1]).ids == []
    assert resolve("require", "", []).exit_code == 3
    assert resolve("require", "0,2", [0, 1]).exit_code == 3
    assert resolve("require", "", [0, 1]).ids == [0, 1]
    assert resolve("require", "1", [0, 1]).ids == [1]
    assert resolve("use", "", None).ids == [] and resolve("use", "2,3", None).ids == [2, 3]
    assert resolve("sometimes", "", []).exit_code == 2
    assert resolve("fallback", "a,b", [0]).exit_code == 2


def test_plan_resumes_only_what_can_be_continued(tmp_path):
    from cryptosweep.core.config_files import load_config
    from cryptosweep.trading.objective import check_spec

    config = write_json(tmp_path / "tiny.json", tiny())
    loaded = load_config(config)
    meta = {"config": loaded.canonical(), "seed": 123456,
            "data": {"sha256": check_spec(loaded.objective_spec())["sha256"]}}
    other_folds = load_config(raw=tiny(objective__folds=3)).canonical()
    other_workers = load_config(raw=tiny(execution__workers=2)).canonical()
    reports = tmp_path / "reports"

    def plan(seed: int = 123456) -> nightly.Plan:
        return nightly.plan_run(reports, config, seed)

    assert plan().mode == "new"
    fake_run(reports, "nightly_20200101_020000", "complete", results=True, report=True)
    assert plan().mode == "new"
    no_report = fake_run(reports, "nightly_20200102_020000", "complete", results=True)
    assert (plan().mode, plan().run_dir) == ("report", no_report)
    fake_run(reports, "nightly_20200103_020000", "failed")
    assert plan().mode == "new" and "status failed" in plan().reason
    running = fake_run(reports, "nightly_20200104_020000", "running", meta=meta)
    assert (plan().mode, plan().run_dir) == ("resume", running)
    assert plan(seed=7).mode == "new" and "seed" in plan(seed=7).reason
    changed = fake_run(reports, "nightly_20200105_020000", "running",
                       meta={**meta, "config": other_folds})
    assert plan().mode == "new" and "config changed" in plan().reason
    shutil.rmtree(changed)
    # How it executes (workers, cluster, GPUs) is not what it computes: resumed.
    executes_differently = fake_run(reports, "nightly_20200105_020000", "running",
                                    meta={**meta, "config": other_workers})
    assert (plan().mode, plan().run_dir) == ("resume", executes_differently)
    shutil.rmtree(executes_differently)
    fake_run(reports, "nightly_20200105_020000", "running",
             meta={**meta, "data": {"sha256": "0" * 64}})
    assert plan().mode == "new" and "data changed" in plan().reason
    fake_run(reports, "nightly_20200106_020000", None)
    assert plan().mode == "new" and "never started" in plan().reason


def test_a_hyperband_night_begun_with_rounds_is_resumed_after_the_default_became_folds(
        tmp_path):
    """A Hyperband night interrupted before Hyperband's default fidelity became folds was made
    with rounds from the same file (its journaled config has no fidelity): the next night
    resumes it as it was made; a file that names another fidelity, or changed otherwise, does
    not."""
    from cryptosweep.core.config_files import load_config
    from cryptosweep.trading.objective import check_spec

    config = write_json(tmp_path / "hyperband.json", tiny(sweep_type="hyperband"))
    as_made = load_config(config, stored=True)  # what the code before the change loaded
    assert as_made.objective.fidelity == "rounds"
    assert "fidelity" not in as_made.canonical()["objective"]
    meta = {"config": as_made.canonical(), "seed": 123456,
            "data": {"sha256": check_spec(as_made.objective_spec())["sha256"]}}
    reports = tmp_path / "reports"
    running = fake_run(reports, "nightly_20200104_020000", "running", meta=meta)
    plan = nightly.plan_run(reports, config, 123456)
    assert (plan.mode, plan.run_dir) == ("resume", running), plan.reason
    for changed in (tiny(sweep_type="hyperband", objective__fidelity="bars"),
                    tiny(sweep_type="hyperband", objective__folds=3)):
        write_json(config, changed)
        plan = nightly.plan_run(reports, config, 123456)
        assert plan.mode == "new" and "config changed" in plan.reason


def test_check_sweep_judges_by_journal_and_notebook(tmp_path):
    run = fake_run(tmp_path, "nightly_20200101_020000", "running")
    notebook = tmp_path / "out.ipynb"

    def with_error(ename: str) -> Path:
        cell = nbformat.v4.new_code_cell("run_sweep()")
        cell.outputs = [nbformat.v4.new_output("error", ename=ename, evalue="boom\nmore",
                                               traceback=[])]
        nbformat.write(nbformat.v4.new_notebook(cells=[cell]), notebook)
        return notebook

    code, message = nightly.check_sweep(run, with_error("SweepFailedError"), 1)
    assert code == 4 and message.startswith("sweep failed: SweepFailedError: boom; the next")
    assert nightly.check_sweep(run, with_error("DataError"), 1)[0] == 2
    assert nightly.check_sweep(run, with_error("GPUUnavailableError"), 1)[0] == 3
    assert nightly.check_sweep(run, with_error("CellTimeoutError"), 1)[0] == 4
    # papermill said 0 but the journal is not complete (e.g. a timed-out, killed kernel)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), notebook)
    code, message = nightly.check_sweep(run, notebook, 0)
    assert code == 4 and "not complete" in message
    done = fake_run(tmp_path, "nightly_20200102_020000", "complete", results=True)
    assert nightly.check_sweep(done, notebook, 0) == (0, "sweep complete")
    assert nightly.check_sweep(done, notebook, 1)[0] == 4, "a failed papermill is a failure"


def test_publish_replaces_latest_atomically_and_leaves_models_alone(tmp_path):
    reports = tmp_path / "reports"
    first = fake_run(reports, "nightly_20200101_020000", "complete", results=True, report=True)
    second = fake_run(reports, "nightly_20200102_020000", "complete", results=True, report=True)
    nightly.publish(first, reports)
    link = nightly.publish(second, reports)
    assert os.readlink(link) == second.name and link.resolve() == second.resolve()
    assert sorted(p.name for p in reports.iterdir()) == [
        "latest", "nightly_20200101_020000", "nightly_20200102_020000"]
    unfinished = fake_run(reports, "nightly_20200103_020000", "running")
    with pytest.raises(RuntimeError, match="not a finished run"):
        nightly.publish(unfinished, reports)


def test_script_passes_bash_syntax_check():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    assert os.access(SCRIPT, os.X_OK)


def _night_on(tmp_path: Path) -> tuple[Night, io.StringIO, Path]:
    """A nightly job (not run) on a models folder under ``tmp_path``, logging to a string."""
    stream = io.StringIO()
    config = write_json(tmp_path / "tiny.json", tiny())
    settings = Settings.from_environment({"MODELS_DIR": str(tmp_path / "models"),
                                          "REPORTS_DIR": str(tmp_path / "reports")},
                                         str(config))
    return Night(settings, Notifiers(), NightLog(stream)), stream, tmp_path / "models"


def test_a_champion_step_killed_twice_is_given_up_and_a_failing_one_lets_the_night_go_on(
        tmp_path, monkeypatch):
    """A training killed every time (out of memory, say) would stop every night before its
    sweep, and a deferred step that failed ended tonight's night: given up after one more
    attempt, and a failure is a warning."""
    night, stream, models = _night_on(tmp_path)
    run = fake_run(tmp_path / "reports", "nightly_20200101_020000", "complete", results=True,
                   report=True)
    models.mkdir()
    write_json(models / promotion.PENDING, {"run": str(run), "attempts": 2})
    night._finish_pending(promotion.read_pending(models))
    assert night.earlier_promotion is not None and not night.earlier_promotion.promoted
    said = night.earlier_promotion.message
    assert said == (f"the interrupted champion step of {run.name}: NOT acted on: it was "
                    "interrupted 2 times; tonight's sweep goes on")
    assert f"WARNING nightly: champion: {said}" in stream.getvalue()
    summary = notifications.build_summary(None, 0, earlier=night.earlier_promotion)
    assert summary["earlier_champion_step"]["champion"] == said
    assert f"The interrupted champion step of {run.name}: NOT acted on" in summary["text"]
    assert promotion.read_pending(models) is None

    def fails(self: Night, run_dir: Path) -> None:
        raise NightlyFailure(5, "promotion failed: OSError: no space left on device")

    monkeypatch.setattr(Night, "_promote", fails)
    write_json(models / promotion.PENDING, {"run": str(run), "attempts": 1})
    night._finish_pending(promotion.read_pending(models))  # does not raise
    assert night.earlier_promotion is not None and (
        "NOT acted on: promotion failed: OSError: no space left on device; tonight's sweep "
        "goes on") in night.earlier_promotion.message
    assert promotion.read_pending(models) is None


def test_a_champion_step_the_recovery_completed_is_reported_as_what_it_did(tmp_path):
    """Killed mid-rotation: the recovery finished the rotation and its history line; the
    pending step then read "already decided; nothing done again", and the notification said
    nothing was deployed while production changed."""
    night, _, models = _night_on(tmp_path)
    run = fake_run(tmp_path / "reports", "nightly_20200101_020000", "complete", results=True,
                   report=True)
    (run / "best_configs_20200101_000000.json").write_text("{}")
    record = {"run": run.name, "decision": "approved", "promoted": True,
              "best_configs": str((run / "best_configs_20200101_000000.json").resolve())}
    models.mkdir()
    promotion.append_record(models, record)
    write_json(models / promotion.PENDING, {"run": str(run), "attempts": 1})
    night._finish_pending(promotion.read_pending(models))
    assert night.earlier_promotion is not None and night.earlier_promotion.promoted
    assert night.earlier_promotion.message == (
        f"the interrupted champion step of {run.name}: completed at the start of the night "
        "(approved; its champion deployed)")
    assert promotion.read_pending(models) is None and night.promotion is None


def test_a_file_system_that_cannot_lock_the_models_folder_is_one_line(tmp_path, monkeypatch):
    """Over NFS an exclusive flock needs a file open for writing; any lock the file system
    refuses was a traceback and the unexpected-error exit every night."""
    import errno

    from cryptosweep.core import locking

    def refused(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(locking.fcntl, "flock", refused)
    night, stream, models = _night_on(tmp_path)
    assert night.run() == 6
    lines = [line for line in stream.getvalue().splitlines() if " ERROR nightly: " in line]
    assert len(lines) == 1 and f"cannot lock the models folder {models}" in lines[0]
    assert "No locks available" in lines[0] and "Traceback" not in stream.getvalue()


def test_help_says_what_the_night_does_in_whole_sentences(capsys):
    """`scheduled/nightly_sweep.sh --help` printed the first line of a wrapped sentence: "The
    nightly job from start to notification, in one process: validate, pick GPUs, plan" (a new
    user reading it). It prints the whole first paragraph, without reST's quotes."""
    from cryptosweep.nightly.pipeline import main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    summary = out.split("\n\n")[1]
    assert summary.startswith("The nightly job from start to notification")
    assert summary.rstrip().endswith("keep the reports folder tidy, notify.")
    assert "``" not in out and "exit codes:" in out


def _decided_run(reports: Path) -> Path:
    """A nightly run whose sweep is complete (results, best configs, a rejected decision) and
    whose report is still to come."""
    run = fake_run(reports, "nightly_20200101_020000", "complete", results=True)
    results = results_file(run)
    data = json.loads(results.read_text())
    data["best"].update(eval_id=4, params={"model": "lightgbm"})
    data["deployment"] = {"decision": "rejected", "reason": "Rejected: DSR 0.03 < 0.95.",
                          "criteria": [{"name": "dsr", "value": 0.03, "threshold": 0.95,
                                        "passed": False, "text": "DSR 0.03 < 0.95"}]}
    results.write_text(json.dumps(data))
    return run


def test_a_night_stopped_between_its_report_and_its_champion_step_is_acted_on_next_night(
        tmp_path, monkeypatch):
    """A SIGTERM while the index was written (after report.html), or a `latest` that could
    not be replaced, stopped the night before its champion step: the run was finished, so the
    next night started a new run and nobody ever acted on its decision (an approved winner
    never deployed; reproduced with a real night whose models folder was put back as before
    its champion step). The run is now marked pending before its report; the next night acts
    on it first. A night stopped before report.html leaves the step to tonight's report."""
    from cryptosweep.reporting.index_page import REPORT_FILE

    reports = tmp_path / "reports"
    run = _decided_run(reports)

    def report(self: Night, run_dir: Path, written: bool) -> None:
        if written:
            (run_dir / REPORT_FILE).write_text("<html></html>")
        raise KeyboardInterrupt  # what the SIGTERM raises (sigterm_interrupts)

    monkeypatch.setattr(Night, "_report", lambda self, run_dir: report(self, run_dir, False))
    night, _, models = _night_on(tmp_path)
    assert night.run() == 130
    assert promotion.read_pending(models) == promotion.Pending(run.resolve(), 0)
    second, stream, _ = _night_on(tmp_path)
    second._finish_pending(promotion.read_pending(models))  # tonight's report acts on it
    assert second.earlier_promotion is None and "has no report yet" in stream.getvalue()
    assert promotion.read_pending(models) == promotion.Pending(run.resolve(), 0)

    monkeypatch.setattr(Night, "_report", lambda self, run_dir: report(self, run_dir, True))
    assert second.run() == 130 and (run / REPORT_FILE).is_file()
    assert promotion.read_pending(models) == promotion.Pending(run.resolve(), 0)
    assert promotion.read_history(models) == []
    third, stream, _ = _night_on(tmp_path)
    third._finish_pending(promotion.read_pending(models))
    assert "never started (its night stopped after its report); acting on it now" in (
        stream.getvalue())
    (record,) = promotion.read_history(models)
    assert record["run"] == run.name and record["decision"] == "rejected"
    assert third.earlier_promotion is not None and not third.earlier_promotion.promoted
    assert promotion.read_pending(models) is None


@pytest.mark.parametrize("name", ["a#b", "a?b", "a%20b"])
def test_a_reports_folder_with_a_uri_character_is_read_as_it_is(tmp_path, name):
    """REPORTS_DIR=/srv/a#b: the journal was opened as the URI file:/srv/a#b/...?mode=ro, whose
    path ends at "#": the night read (and created, empty) /srv/a, found no status in its
    complete run, and ended "sweep not complete although papermill succeeded (journal status
    unknown, results file present)", exit 4, every night (a real night)."""
    reports = tmp_path / name / "reports"
    run = fake_run(reports, "nightly_20200101_020000", "complete", results=True, report=True,
                   meta={"seed": 7})
    assert nightly.run_status(run) == "complete"
    assert nightly.read_meta(run, "seed") == {"seed": 7}
    assert nightly.RunState.of(run).finished
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert nightly.plan_run(reports, "unused.yaml", 7).mode == "new"


def test_reading_a_finished_run_s_status_leaves_nothing_in_its_folder(tmp_path):
    """Every night read the previous and its own finished run's status with a plain
    mode=ro connection, which made SQLite leave sweep.db-wal and sweep.db-shm beside a
    finished WAL journal: the explorer then read it as a journal still being written, not as
    immutable, and the folder was no longer as the sweep left it. Found looking at the
    README's demo nights' run folders. A journal being written (a -wal there) still reads."""
    run = tmp_path / "nightly_20200101_020000"
    run.mkdir()
    writer = sqlite3.connect(run / "sweep.db")
    writer.execute("PRAGMA journal_mode=WAL")
    with writer:
        writer.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        writer.execute("INSERT INTO meta VALUES ('status', '\"running\"')")
    assert (run / "sweep.db-wal").exists()
    assert nightly.run_status(run) == "running"
    with writer:
        writer.execute("UPDATE meta SET value = '\"complete\"' WHERE key = 'status'")
    writer.close()
    assert sorted(p.name for p in run.iterdir()) == ["sweep.db"]
    assert nightly.run_status(run) == "complete"
    assert nightly.read_meta(run, "status") == {"status": "complete"}
    assert sorted(p.name for p in run.iterdir()) == ["sweep.db"]


def test_a_copy_named_like_a_run_is_neither_the_newest_run_nor_deleted(tmp_path):
    """A user's copy of a finished run in the reports folder, named nightly_backup, sorted
    after every night's name and was taken for the newest run: the real newest one (its sweep
    complete, its report missing here; a killed sweep alike) was never finished again ("last
    run nightly_backup finished"); a copy named nightly_<time>.bak was deleted by the
    retention. Only the names the night gives its runs are runs."""
    real = fake_run(tmp_path, "nightly_20200101_020000", "complete", results=True)
    backup = fake_run(tmp_path, "nightly_backup", "complete", results=True, report=True)
    shutil.copytree(backup, tmp_path / "nightly_20191231_020000.bak")
    plan = nightly.plan_run(tmp_path, "unused.yaml", 7)
    assert (plan.mode, plan.run_dir) == ("report", real)
    assert [run.path.name for run in nightly.scan_runs(tmp_path)] == [real.name]
    nightly.housekeep(tmp_path, 14, 0, current=real)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "nightly_20191231_020000.bak", "nightly_20200101_020000", "nightly_backup"]
