"""The nightly job's decisions, kept out of the shell: which run to resume, which GPUs to use,
whether a sweep really finished, what to publish, what to keep, and whom to tell.

``scheduled/nightly_sweep.sh`` is a thin driver around papermill and ``cryptosweep report``;
every decision it needs is a function here, reachable from the shell as
``python -m cryptosweep.nightly SUBCOMMAND`` (``gpus``, ``plan``, ``check-sweep``, ``publish``,
``housekeep``, ``notify``). A subcommand prints its answer on stdout and its log lines on
stderr as ``LEVEL message``; its exit status follows the ``cryptosweep`` convention (0 ok,
2 config or data, 3 GPU, 4 sweep, 5 report).

Only run folders named ``nightly_*`` are the nightly's: ``plan`` and ``housekeep`` never touch
another folder of the reports directory (``make sweep``'s ``demo_*`` runs, say).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUN_PREFIX = "nightly_"
LATEST_LINK = "latest"
BEST_CONFIGS_LATEST = "best_configs_latest.json"
SUMMARY_FILE = "nightly_summary.json"
DB_NAME = "sweep.db"
NOTIFY_TIMEOUT_S = 5.0

EXIT_OK, EXIT_CONFIG, EXIT_GPU, EXIT_SWEEP, EXIT_REPORT = 0, 2, 3, 4, 5
EXIT_REASONS = {
    EXIT_OK: "ok",
    EXIT_CONFIG: "config or data error",
    EXIT_GPU: "GPU required but absent",
    EXIT_SWEEP: "sweep failed",
    EXIT_REPORT: "report failed",
}
#: Exceptions raised by the sweep notebook, by class name, and the exit code each one means.
_ERROR_EXIT = {
    "UserError": EXIT_CONFIG, "ConfigError": EXIT_CONFIG, "DataError": EXIT_CONFIG,
    "ResumeError": EXIT_CONFIG, "GPUUnavailableError": EXIT_GPU,
    "SweepFailedError": EXIT_SWEEP,
}
GPU_POLICIES = ("use", "fallback", "require")


# ------------------------------------------------------------------------------- run folders


def read_meta(run_dir: Path, *keys: str) -> dict[str, Any]:
    """Values of the journal's ``meta`` table (JSON-decoded) for ``keys``; absent keys are
    left out. Opens ``sweep.db`` read-only: never changes a run. Raises ``sqlite3.Error``."""
    db = Path(run_dir) / DB_NAME
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        marks = ",".join("?" * len(keys))
        rows = conn.execute(f"SELECT key, value FROM meta WHERE key IN ({marks})", keys)
        return {key: json.loads(value) for key, value in rows.fetchall()}
    finally:
        conn.close()


def run_status(run_dir: Path) -> str | None:
    """The journal's ``status`` (``running``, ``complete``, ``failed``), or None when there is
    no readable journal or no status in it."""
    if not (Path(run_dir) / DB_NAME).is_file():
        return None
    try:
        value = read_meta(run_dir, "status").get("status")
    except (sqlite3.Error, json.JSONDecodeError):
        return None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class RunState:
    """What the nightly needs to know about one run folder."""

    path: Path
    status: str | None  # the journal's status; None without a readable journal
    has_journal: bool
    has_results: bool
    has_report: bool

    @classmethod
    def of(cls, path: Path) -> RunState:
        path = Path(path)
        return cls(
            path=path, status=run_status(path), has_journal=(path / DB_NAME).is_file(),
            has_results=any(path.glob("sweep_results_*.json")),
            has_report=(path / "report.html").is_file(),
        )

    @property
    def sweep_complete(self) -> bool:
        return self.status == "complete" and self.has_results

    @property
    def finished(self) -> bool:
        """The sweep completed and its report exists: what ``latest`` may point to."""
        return self.sweep_complete and self.has_report

    @property
    def terminal(self) -> bool:
        """Nothing left to do for this run: finished, stopped by itself (``failed``), or never
        got as far as a journal. Anything else may still be resumed and is kept."""
        return self.finished or self.status == "failed" or not self.has_journal


def scan_runs(reports_dir: Path, prefix: str = RUN_PREFIX) -> list[RunState]:
    """The nightly's run folders, oldest first (their names are UTC timestamps)."""
    reports_dir = Path(reports_dir)
    if not reports_dir.is_dir():
        return []
    folders = [p for p in reports_dir.iterdir()
               if p.name.startswith(prefix) and p.is_dir() and not p.is_symlink()]
    return [RunState.of(p) for p in sorted(folders, key=lambda p: p.name)]


# ------------------------------------------------------------------------------------ plan


@dataclass(frozen=True)
class Plan:
    """``new`` (start a run), ``resume`` (continue the sweep, then report) or ``report`` (the
    sweep is complete, only the report is missing), with the run folder and why."""

    mode: str
    run_dir: Path | None
    reason: str


def plan_run(reports_dir: Path, config_path: str | Path, seed: int,
             prefix: str = RUN_PREFIX) -> Plan:
    """Decide what tonight does: continue the newest nightly run when it is unfinished and
    can be continued as it was started, else start a new one.

    A run stopped by itself (status ``failed``: too many failed trials) is not resumed: it
    would stop again. A run whose config, seed or data changed since it started cannot be
    resumed (``cryptosweep`` refuses), so tonight starts afresh and the old folder is kept.
    """
    runs = scan_runs(reports_dir, prefix)
    if not runs:
        return Plan("new", None, "no earlier nightly run")
    last = runs[-1]
    name = last.path.name
    if last.finished:
        return Plan("new", None, f"last run {name} finished")
    if last.sweep_complete:
        return Plan("report", last.path, f"last run {name}: sweep complete, report missing")
    if last.status == "failed":
        return Plan("new", None, f"last run {name} stopped itself (status failed); not resumed")
    if not last.has_journal:
        return Plan("new", None, f"last run {name} never started its journal; not resumed")
    if last.status == "complete":  # complete but its results file is gone
        return Plan("new", None, f"last run {name} has no results file; not resumed")
    why_not = _resume_refusal(last.path, config_path, seed)
    if why_not:
        return Plan("new", None, f"last run {name} is unfinished but {why_not}; not resumed")
    return Plan("resume", last.path, f"last run {name} is unfinished (status {last.status})")


def _resume_refusal(run_dir: Path, config_path: str | Path, seed: int) -> str | None:
    """Why ``cryptosweep`` would refuse to resume ``run_dir`` with tonight's config and seed
    (None when it would not)."""
    from cryptosweep.config import load_config
    from cryptosweep.reproducibility import config_hash
    from cryptosweep.trading.objective import check_spec

    try:
        meta = read_meta(run_dir, "config_hash", "seed", "data")
    except (sqlite3.Error, json.JSONDecodeError) as exc:
        return f"its journal cannot be read ({exc})"
    stored_hash, stored_seed = meta.get("config_hash"), meta.get("seed")
    stored_data = meta.get("data") if isinstance(meta.get("data"), dict) else {}
    if stored_hash is None or stored_seed is None:
        return "its journal lacks the config hash or seed"
    config = load_config(config_path)
    if config_hash(config.canonical()) != stored_hash:
        return "the config changed since it started"
    if int(stored_seed) != int(seed):
        return f"it was started with seed {stored_seed}, tonight's is {seed}"
    recorded = stored_data.get("sha256")
    if recorded is not None and check_spec(config.objective_spec())["sha256"] != recorded:
        return "the data changed since it started"
    return None


# ------------------------------------------------------------------------------------ GPUs


@dataclass(frozen=True)
class GpuChoice:
    ids: list[int]  # empty: CPU
    exit_code: int  # 0, or EXIT_GPU / EXIT_CONFIG
    message: str


def resolve_gpus(policy: str, requested: str, detected: Sequence[int] | None,
                 why_none: str = "") -> GpuChoice:
    """Which GPUs tonight's sweep gets.

    ``requested`` is ``GPU_IDS`` ("0,1", or empty), ``detected`` the indices NVML sees (None
    when not probed). ``use``: exactly ``GPU_IDS``, not probed (empty: CPU; an absent GPU makes
    the sweep itself exit 3). ``fallback``: the requested GPUs (empty: every GPU seen) that are
    present, else CPU with a log line. ``require``: the requested GPUs (empty: every GPU seen)
    must all be present, else exit 3.
    """
    from cryptosweep.errors import UserError
    from cryptosweep.executors import parse_gpu_ids

    if policy not in GPU_POLICIES:
        return GpuChoice([], EXIT_CONFIG,
                         f"GPU_POLICY={policy!r}: expected one of {', '.join(GPU_POLICIES)}")
    try:
        wanted = parse_gpu_ids(requested or "") or []
    except UserError as exc:
        return GpuChoice([], EXIT_CONFIG, f"GPU_IDS: {exc}".replace("--gpu-ids: ", ""))
    listed = ",".join(map(str, wanted))
    if policy == "use":
        if not wanted:
            return GpuChoice([], EXIT_OK, "GPU_POLICY=use, GPU_IDS empty: trials run on CPU")
        return GpuChoice(wanted, EXIT_OK, f"GPU_POLICY=use: GPUs {listed} as given")
    seen = list(detected or [])
    none_seen = f"no GPU found ({why_none})" if why_none else "no GPU found"
    if policy == "require":
        if not seen:
            return GpuChoice([], EXIT_GPU, f"GPU_POLICY=require but {none_seen}")
        missing = [i for i in wanted if i not in seen]
        if missing:
            return GpuChoice([], EXIT_GPU, f"GPU_POLICY=require but GPU(s) "
                             f"{','.join(map(str, missing))} absent (found {_ids(seen)})")
        ids = wanted or seen
        return GpuChoice(ids, EXIT_OK, f"GPU_POLICY=require: GPUs {_ids(ids)}")
    if not seen:
        return GpuChoice([], EXIT_OK, f"GPU_POLICY=fallback: {none_seen}; trials run on CPU")
    ids = [i for i in wanted if i in seen] if wanted else seen
    if not ids:
        return GpuChoice([], EXIT_OK, f"GPU_POLICY=fallback: GPU(s) {listed} absent (found "
                         f"{_ids(seen)}); trials run on CPU")
    missing = [i for i in wanted if i not in seen]
    note = f" (GPU(s) {_ids(missing)} absent)" if missing else ""
    return GpuChoice(ids, EXIT_OK, f"GPU_POLICY=fallback: GPUs {_ids(ids)}{note}")


def _ids(ids: Iterable[int]) -> str:
    return ",".join(map(str, ids)) or "none"


def detect_gpus() -> tuple[list[int], str]:
    """GPU indices NVML sees (what ``cryptosweep check-gpu`` lists), and why none when empty."""
    from cryptosweep.reproducibility import gpu_info

    info = gpu_info()
    return [int(d["index"]) for d in info.get("devices", [])], str(info.get("reason") or "")


# ----------------------------------------------------------------------- did the sweep finish


def notebook_error(notebook: Path) -> tuple[str, str] | None:
    """The first error an executed notebook recorded, as (exception name, message)."""
    try:
        cells = json.loads(Path(notebook).read_text(encoding="utf-8")).get("cells", [])
    except (OSError, json.JSONDecodeError):
        return None
    for cell in cells:
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if output.get("output_type") == "error":
                return str(output.get("ename", "")), str(output.get("evalue", ""))
    return None


def check_sweep(run_dir: Path, notebook: Path | None = None,
                papermill_status: int = 0) -> tuple[int, str]:
    """Judge the sweep by what it left, not by papermill's exit status alone: it succeeded
    when the journal says ``complete`` and the results file exists. Otherwise the exception
    recorded in the executed notebook says which exit code (2 config/data, 3 GPU, else 4)."""
    state = RunState.of(run_dir)
    if state.sweep_complete and not papermill_status:
        return EXIT_OK, "sweep complete"
    error = notebook_error(notebook) if notebook is not None else None
    code = EXIT_SWEEP
    if error is not None:
        name, value = error
        first = value.strip().splitlines()[0] if value.strip() else ""
        code, message = _ERROR_EXIT.get(name, EXIT_SWEEP), f"sweep failed: {name}: {first[:500]}"
    elif papermill_status:
        message = (f"sweep failed: papermill exited {papermill_status} (journal status "
                   f"{state.status or 'unknown'})")
    else:
        message = (f"sweep not complete although papermill succeeded (journal status "
                   f"{state.status or 'unknown'}, results file "
                   f"{'present' if state.has_results else 'missing'})")
    if state.status == "running" or state.sweep_complete:
        message += (f"; the next nightly continues it (by hand: cryptosweep run --resume "
                    f"{Path(run_dir).resolve()})")
    return code, message


# ---------------------------------------------------------------------------------- publish


def update_latest_link(reports_dir: Path, run_dir: Path, name: str = LATEST_LINK) -> Path:
    """Point ``reports_dir/latest`` at ``run_dir`` atomically: a relative symlink under a
    temporary name, renamed over the old one (what ``ln -s`` + ``mv -T`` do)."""
    reports_dir, run_dir = Path(reports_dir), Path(run_dir)
    link = reports_dir / name
    target = os.path.relpath(run_dir.resolve(), reports_dir.resolve())
    tmp = reports_dir / f".{name}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return link


def copy_atomic(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` through a temporary file in the target's folder and a
    rename: a reader sees the old file or the new one, never half of one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def publish(run_dir: Path, reports_dir: Path, models_dir: Path) -> tuple[Path, Path]:
    """After a finished run: ``models_dir/best_configs_latest.json`` (what production loads)
    and the ``latest`` link. The report's ``index.html`` is already regenerated by
    ``cryptosweep report``."""
    state = RunState.of(run_dir)
    if not state.finished:
        raise RuntimeError(f"{run_dir} is not a finished run (status {state.status}, report "
                           f"{'present' if state.has_report else 'missing'})")
    best = sorted(Path(run_dir).glob("best_configs_*.json"))
    if not best:
        raise RuntimeError(f"{run_dir}: no best_configs_*.json")
    target = copy_atomic(best[-1], Path(models_dir) / BEST_CONFIGS_LATEST)
    return update_latest_link(reports_dir, run_dir), target


# -------------------------------------------------------------------------------- retention


def select_for_deletion(runs: Sequence[RunState], keep: int,
                        protected: Iterable[Path] = ()) -> list[RunState]:
    """Run folders beyond the newest ``keep`` that may go: terminal ones only (finished,
    stopped by themselves, or never started), never a protected one (``latest``'s target, the
    current run). ``runs`` in any order; newest by name."""
    shielded = {Path(p).resolve() for p in protected}
    newest_first = sorted(runs, key=lambda r: r.path.name, reverse=True)
    return [run for run in newest_first[max(0, keep):]
            if run.terminal and run.path.resolve() not in shielded]


def compress_old_logs(run_dirs: Iterable[Path], older_than_days: float,
                      now: float | None = None, exclude: Iterable[Path] = ()) -> list[Path]:
    """gzip every ``*.log`` of the given run folders last modified more than
    ``older_than_days`` ago (the ``.gz`` keeps its mtime). Returns the new ``.gz`` files."""
    cutoff = (time.time() if now is None else now) - older_than_days * 86400
    skip = {Path(p).resolve() for p in exclude}
    written = []
    for run_dir in run_dirs:
        if Path(run_dir).resolve() in skip:
            continue
        for log in sorted(Path(run_dir).glob("*.log")):
            if log.is_symlink() or not log.is_file():
                continue
            stat = log.stat()
            if stat.st_mtime >= cutoff:
                continue
            target = log.with_name(log.name + ".gz")
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=log.parent)
            try:
                with os.fdopen(fd, "wb") as raw, gzip.GzipFile(
                        filename=log.name, mode="wb", fileobj=raw, mtime=int(stat.st_mtime)
                ) as out, open(log, "rb") as src:
                    shutil.copyfileobj(src, out)
                os.chmod(tmp, stat.st_mode & 0o777)
                os.utime(tmp, (stat.st_atime, stat.st_mtime))
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            log.unlink()
            written.append(target)
    return written


def housekeep(reports_dir: Path, log_days: float, keep: int, current: Path | None = None,
              prefix: str = RUN_PREFIX, now: float | None = None) -> list[str]:
    """Compress old logs and delete run folders beyond the newest ``keep``; returns log lines.
    Never touches the current run, ``latest``'s target, or an unfinished run."""
    reports_dir = Path(reports_dir)
    runs = scan_runs(reports_dir, prefix)
    protected = [p for p in (current,) if p is not None]
    link = reports_dir / LATEST_LINK
    if link.is_symlink():
        protected.append(link.resolve())
    lines = []
    gone = set()
    for run in select_for_deletion(runs, keep, protected):
        try:
            shutil.rmtree(run.path)
        except OSError as exc:
            lines.append(f"WARNING retention: cannot delete {run.path.name}: {exc}")
            continue
        gone.add(run.path)
        lines.append(f"INFO retention: deleted {run.path.name} (status {run.status or 'none'}; "
                     f"keeping the newest {keep})")
    for gz in compress_old_logs([r.path for r in runs if r.path not in gone], log_days, now,
                                exclude=[current] if current is not None else []):
        lines.append(f"INFO retention: compressed {gz.parent.name}/{gz.name} "
                     f"(older than {log_days:g} days)")
    if gone and (reports_dir / "index.html").is_file():
        from cryptosweep.publish import write_index

        try:
            write_index(reports_dir)
            lines.append("INFO retention: index.html regenerated without the deleted runs")
        except Exception as exc:  # the index is a convenience; never fail the night for it
            lines.append(f"WARNING retention: index.html not regenerated: {exc}")
    return lines


# ----------------------------------------------------------------------------- notification


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def build_summary(run_dir: Path | None, exit_code: int, message: str | None = None,
                  now: float | None = None) -> dict[str, Any]:
    """The notification: run, status, exit code, best score, holdout Sharpe, DSR, PBO, report
    path, and a Slack ``text`` line. Works for a run that never got a folder or results."""
    summary: dict[str, Any] = {
        "run": None, "run_dir": None, "status": "success" if exit_code == 0 else "failed",
        "exit_code": exit_code, "reason": EXIT_REASONS.get(exit_code, "unexpected error"),
        "message": message or None, "best_score": None, "holdout_sharpe": None, "dsr": None,
        "pbo": None, "report": None, "host": socket.gethostname(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                     time.gmtime(time.time() if now is None else now)),
    }
    if run_dir is not None:
        run_dir = Path(run_dir).resolve()
        summary.update(run=run_dir.name, run_dir=str(run_dir))
        results = sorted(run_dir.glob("sweep_results_*.json"))
        if results:
            try:
                data = json.loads(results[-1].read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                data = {}
            best = data.get("best") or {}
            overfitting = data.get("overfitting") or {}
            summary.update(
                best_score=_number(best.get("score")),
                holdout_sharpe=_number((best.get("holdout") or {}).get("holdout_sharpe")),
                dsr=_number((overfitting.get("dsr") or {}).get("dsr")),
                pbo=_number((overfitting.get("pbo") or {}).get("pbo")),
            )
        if (run_dir / "report.html").is_file():
            summary["report"] = str(run_dir / "report.html")
    summary["text"] = summary_text(summary)
    return summary


def summary_text(summary: dict[str, Any]) -> str:
    """One line for chat."""
    def fmt(value: float | None, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    run = summary.get("run") or "(no run folder)"
    if summary["exit_code"] == 0:
        text = (f":white_check_mark: cryptosweep nightly {run}: success. Best score "
                f"{fmt(summary['best_score'], '+.3f')}, holdout Sharpe "
                f"{fmt(summary['holdout_sharpe'], '+.3f')}, DSR {fmt(summary['dsr'], '.2f')}, "
                f"PBO {fmt(summary['pbo'], '.2f')}.")
    else:
        text = (f":x: cryptosweep nightly {run}: FAILED, exit {summary['exit_code']} "
                f"({summary['reason']}).")
        if summary.get("message"):
            text += f" {summary['message']}"
    if summary.get("report"):
        text += f" Report: {summary['report']}"
    return text


def _redact(text: str, secret: str) -> str:
    """Remove the webhook URL from a message, and its path, query and any longish piece of
    them (where tokens live)."""
    parts = urllib.parse.urlsplit(secret)
    pieces = {secret, parts.path, parts.query, f"{parts.path}?{parts.query}"}
    pieces.update(seg for seg in parts.path.split("/") if len(seg) >= 6)
    pieces.update(value for _, value in urllib.parse.parse_qsl(parts.query) if len(value) >= 6)
    for piece in sorted((p for p in pieces if len(p) > 1), key=len, reverse=True):
        text = text.replace(piece, "<redacted>")
    return text


def send_webhook(url: str, summary: dict[str, Any], timeout: float = NOTIFY_TIMEOUT_S) -> str:
    """POST the summary as JSON (Slack-compatible: it has ``text``). Never raises; returns a
    log line that never contains the URL (it carries the token)."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return "WARNING webhook: failed (NOTIFY_WEBHOOK_URL is not an http(s) URL)"
    request = urllib.request.Request(
        url, data=json.dumps(summary).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "cryptosweep-nightly"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(65536)
            return f"INFO webhook: sent (HTTP {response.status})"
    except urllib.error.HTTPError as exc:
        return f"WARNING webhook: failed (HTTP {exc.code})"
    except urllib.error.URLError as exc:
        reason = exc.reason
        why = ("timed out" if isinstance(reason, TimeoutError)
               else _redact(str(getattr(reason, "strerror", None) or reason), url))
        return f"WARNING webhook: failed ({why})"
    except TimeoutError:
        return f"WARNING webhook: failed (timed out after {timeout:g} s)"
    except (OSError, ValueError) as exc:
        return f"WARNING webhook: failed ({type(exc).__name__}: {_redact(str(exc), url)})"


def run_notify_command(command: str, summary: dict[str, Any],
                       timeout: float = NOTIFY_TIMEOUT_S) -> str:
    """Run ``sh -c COMMAND`` with the summary JSON on stdin. Never raises; returns a log line.
    The command runs in its own session, killed with all its children on timeout; it gets
    the environment without ``NOTIFY_WEBHOOK_URL``."""
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_WEBHOOK_URL",)}
    try:
        process = subprocess.Popen(
            ["sh", "-c", command], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, env=env,
        )
    except OSError as exc:
        return f"WARNING command: failed to start ({exc.strerror})"
    try:
        process.communicate(json.dumps(summary, indent=2).encode() + b"\n", timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return f"WARNING command: failed (timed out after {timeout:g} s)"
    except BrokenPipeError:  # the command did not read its stdin
        process.wait()
    if process.returncode:
        return f"WARNING command: failed (exit {process.returncode})"
    return "INFO command: ok"


def notify(summary: dict[str, Any], webhook_url: str | None = None, command: str | None = None,
           timeout: float = NOTIFY_TIMEOUT_S) -> list[str]:
    """Send the summary to every configured notifier; a failing one is a log line, never an
    exception."""
    lines = []
    if webhook_url:
        lines.append(send_webhook(webhook_url, summary, timeout))
    if command:
        lines.append(run_notify_command(command, summary, timeout))
    if not lines:
        lines.append("INFO notify: no NOTIFY_WEBHOOK_URL or NOTIFY_COMMAND set")
    return lines


# ------------------------------------------------------------------------- the shell's entry


def _emit(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cryptosweep.nightly",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gpus = sub.add_parser("gpus", help="print the GPU ids to use (empty: CPU); exit 3 if absent")
    gpus.add_argument("--policy", default="fallback")
    gpus.add_argument("--ids", default="")
    plan = sub.add_parser("plan", help="print 'new', 'resume\\tRUN_DIR' or 'report\\tRUN_DIR'")
    plan.add_argument("--reports-dir", required=True, type=Path)
    plan.add_argument("--config", required=True)
    plan.add_argument("--seed", required=True, type=int)
    check = sub.add_parser("check-sweep", help="exit 0 if the sweep completed, else 2/3/4")
    check.add_argument("run_dir", type=Path)
    check.add_argument("--notebook", type=Path)
    check.add_argument("--papermill-status", type=int, default=0)
    pub = sub.add_parser("publish", help="best_configs_latest.json and the latest link")
    pub.add_argument("run_dir", type=Path)
    pub.add_argument("--reports-dir", required=True, type=Path)
    pub.add_argument("--models-dir", required=True, type=Path)
    keep = sub.add_parser("housekeep", help="compress old logs, delete old run folders")
    keep.add_argument("--reports-dir", required=True, type=Path)
    keep.add_argument("--log-days", required=True, type=float)
    keep.add_argument("--keep", required=True, type=int)
    keep.add_argument("--current", type=Path)
    note = sub.add_parser("notify", help="send the summary (NOTIFY_WEBHOOK_URL, NOTIFY_COMMAND)")
    note.add_argument("--run-dir", type=Path)
    note.add_argument("--exit-code", required=True, type=int)
    note.add_argument("--message", default="")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from cryptosweep.errors import UserError

    try:
        if args.command == "gpus":
            detected, why = ([], "") if args.policy == "use" else detect_gpus()
            choice = resolve_gpus(args.policy, args.ids, detected, why)
            _emit(f"{'ERROR' if choice.exit_code else 'INFO'} {choice.message}")
            print(",".join(map(str, choice.ids)))
            return choice.exit_code
        if args.command == "plan":
            decided = plan_run(args.reports_dir, args.config, args.seed)
            _emit(f"INFO {decided.reason}")
            print(decided.mode if decided.run_dir is None
                  else f"{decided.mode}\t{decided.run_dir}")
            return 0
        if args.command == "check-sweep":
            code, message = check_sweep(args.run_dir, args.notebook, args.papermill_status)
            _emit(f"{'ERROR' if code else 'INFO'} {message}")
            return code
        if args.command == "publish":
            link, best = publish(args.run_dir, args.reports_dir, args.models_dir)
            _emit(f"INFO published: {best} and {link} -> {os.readlink(link)}")
            return 0
        if args.command == "housekeep":
            for line in housekeep(args.reports_dir, args.log_days, args.keep, args.current):
                _emit(line)
            return 0
        if args.command == "notify":
            summary = build_summary(args.run_dir, args.exit_code, args.message)
            if args.run_dir is not None and args.run_dir.is_dir():
                from cryptosweep.reports import write_json_atomic

                write_json_atomic(args.run_dir / SUMMARY_FILE, summary)
            timeout = float(os.environ.get("NOTIFY_TIMEOUT") or NOTIFY_TIMEOUT_S)
            for line in notify(summary, os.environ.get("NOTIFY_WEBHOOK_URL"),
                               os.environ.get("NOTIFY_COMMAND"), timeout):
                _emit(line)
            return 0
    except UserError as exc:
        _emit(f"ERROR {exc}")
        return EXIT_CONFIG
    except (OSError, RuntimeError, sqlite3.Error) as exc:
        _emit(f"ERROR {args.command}: {exc}")
        return 1
    raise AssertionError(args.command)  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
