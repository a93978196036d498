"""Telling people how the night went: the summary (JSON, with a chat ``text`` line), a webhook
and a command. A notifier that fails is one log line without the secret, never an exception,
and never stops the other notifier: whatever goes wrong (a malformed URL or port, a space in
its path, a refused connection, a command that cannot start), the line names the kind of
failure and never the URL's credentials, path or query.

The webhook's ``timeout`` bounds the whole request (connecting, sending, the answer to its last
byte), not each socket read: a server dripping its answer a byte at a time times out like a
silent one. A user and password in the webhook URL (``https://user:pass@host/...``, percent-
encoded as RFC 3986 has them) are taken out of the URL and sent as HTTP basic auth (never on
to where a redirect points)."""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptosweep.core.errors import (
    EXIT_GPU,
    EXIT_INFRASTRUCTURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REPORT,
    EXIT_SWEEP,
    EXIT_TERMINATED,
    EXIT_USAGE,
)
from cryptosweep.core.redaction import redact
from cryptosweep.judging.deployment import summary_line
from cryptosweep.judging.selection import gate_dsr
from cryptosweep.records.results import RESULTS_GLOB
from cryptosweep.reporting.index_page import REPORT_FILE

if TYPE_CHECKING:
    from cryptosweep.nightly.promotion import Promotion

SUMMARY_FILE = "nightly_summary.json"
NOTIFY_TIMEOUT_S = 5.0
EXIT_REASONS = {
    EXIT_OK: "ok",
    EXIT_USAGE: "config or data error",
    EXIT_GPU: "GPU required but absent",
    EXIT_SWEEP: "sweep failed",
    EXIT_REPORT: "report, publishing or promotion failed",
    EXIT_INFRASTRUCTURE: "the machine failed the sweep (disk full, I/O error); resumed next run",
    EXIT_INTERRUPTED: "interrupted (SIGINT); the next night resumes it",
    EXIT_TERMINATED: "interrupted (SIGTERM); the next night resumes it",
}
#: The exit codes of a night stopped by a signal: not a failure, the next night resumes it.
INTERRUPTED = {EXIT_INTERRUPTED: "SIGINT", EXIT_TERMINATED: "SIGTERM"}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def build_summary(run_dir: Path | None, exit_code: int, message: str | None = None,
                  now: float | None = None, promotion: Promotion | None = None,
                  data_update: dict[str, Any] | None = None,
                  field: dict[str, Any] | None = None,
                  earlier: Promotion | None = None) -> dict[str, Any]:
    """The notification: run, status, exit code, best score, holdout Sharpe, DSR, PBO, the
    deployment gate's decision (``decision``, ``deployment``: ``promoted`` or ``not promoted:
    <failed criteria>``, ``promoted``: whether a new champion was deployed tonight, None when
    the champion step did not run), report path, and a Slack ``text`` line. Works for a run
    that never got a folder or results. ``data_update``: what tonight's candle update did
    (``UpdateSummary.to_dict()``, or ``{"error": ...}``), None when there was none.
    ``field``: the champion in the field (:func:`cryptosweep.nightly.field.watch_champion`'s
    status; ``demotion`` in it when the kill switch demoted the champion), None when none was
    deployed. ``earlier``: the champion step of an earlier run that a kill had interrupted,
    finished (or given up) tonight before the sweep (``earlier_champion_step``: ``promoted``
    and what became of it; a champion deployed by it changed production tonight too)."""
    summary: dict[str, Any] = {
        "run": None, "run_dir": None, "status": "success" if exit_code == 0
        else "interrupted" if exit_code in INTERRUPTED else "failed",
        "exit_code": exit_code, "reason": EXIT_REASONS.get(exit_code, "unexpected error"),
        "message": message or None, "best_score": None, "holdout_sharpe": None, "dsr": None,
        "pbo": None, "decision": None, "deployment": None,
        "promoted": None if promotion is None else promotion.promoted,
        "champion": None if promotion is None else promotion.message,
        "earlier_champion_step": None if earlier is None else {
            "promoted": earlier.promoted, "champion": earlier.message,
            "run": earlier.record.get("run")},
        "data_update": data_update, "field": field, "report": None, "host": socket.gethostname(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                     time.gmtime(time.time() if now is None else now)),
    }
    if run_dir is not None:
        run_dir = Path(run_dir).resolve()
        summary.update(run=run_dir.name, run_dir=str(run_dir))
        results = sorted(run_dir.glob(RESULTS_GLOB))
        if results:
            try:
                data = json.loads(results[-1].read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                data = {}
            best = data.get("best") or {}
            overfitting = data.get("overfitting") or {}
            deployment = data.get("deployment")
            summary.update(
                decision=(deployment or {}).get("decision"),
                deployment=summary_line(deployment) if deployment else None,
                best_score=_number(best.get("score")),
                holdout_sharpe=_number((best.get("holdout") or {}).get("holdout_sharpe")),
                dsr=_number(gate_dsr(data).get("dsr")),  # the one the gate judged
                pbo=_number((overfitting.get("pbo") or {}).get("pbo")),
            )
        if (run_dir / REPORT_FILE).is_file():
            summary["report"] = str(run_dir / REPORT_FILE)
    summary["text"] = summary_text(summary)
    return summary


def summary_text(summary: dict[str, Any]) -> str:
    """One line for chat."""
    def fmt(value: float | None, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    run = summary.get("run") or "(no run folder)"
    if summary["exit_code"] == 0:
        # best_score is the winner's validation score: "Best score" read as the search's best,
        # which the sweep's log showed higher (the winner is chosen by its re-scored mean).
        text = (f":white_check_mark: cryptosweep nightly {run}: success. Winner's validation "
                f"score {fmt(summary['best_score'], '+.3f')}, holdout Sharpe "
                f"{fmt(summary['holdout_sharpe'], '+.3f')}, DSR {fmt(summary['dsr'], '.2f')}, "
                f"PBO {fmt(summary['pbo'], '.2f')}.")
        if summary.get("champion"):
            text += f" {_capital(summary['champion'])}."
        elif summary.get("deployment"):
            text += f" {_capital(summary['deployment'])}."
    elif summary["exit_code"] in INTERRUPTED:
        text = (f":warning: cryptosweep nightly {run}: interrupted "
                f"({INTERRUPTED[summary['exit_code']]}), exit {summary['exit_code']}; the next "
                "night resumes it.")
    else:
        text = (f":x: cryptosweep nightly {run}: FAILED, exit {summary['exit_code']} "
                f"({summary['reason']}).")
        if summary.get("message"):
            text += f" {summary['message']}"
    text += _data_update_text(summary.get("data_update"))
    earlier = summary.get("earlier_champion_step") or {}
    if earlier.get("champion"):
        text += f" {_capital(earlier['champion'])}."
    field = summary.get("field") or {}
    if field.get("text"):
        text += f" {_capital(field['text'])}."
    if summary.get("report"):
        text += f" Report: {summary['report']}"
    return text


def _data_update_text(update: Any) -> str:
    """What the chat line says of tonight's candle update: nothing when it went as it should;
    a failed one (the exchange unreachable: the sweep ran on the candles already stored), its
    warnings (a stale exchange, clocks apart, gaps appended across) and an update ``max_bars``
    stopped before now, said next to the verdict they qualify, which the line otherwise gave
    as if on fresh candles."""
    if not isinstance(update, dict):
        return ""
    if update.get("error"):
        return (f" Candles NOT updated (data update failed, exit {update.get('exit_code')}: "
                f"{update['error']}); the sweep ran on the candles already stored.")
    warnings = [str(w) for w in update.get("warnings") or []]
    if update.get("complete") is False:  # max_bars stopped it: the candles end before now
        warnings.append(f"the candles end at {update.get('last_bar')}, more closed ones are "
                        "waiting (max_bars reached; the next update brings them)")
    return "".join(f" Data update WARNING: {w}." for w in warnings)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _redact(text: str, secret: str) -> str:
    """Remove the webhook URL from a message (:func:`cryptosweep.core.redaction.redact`): its
    credentials, path, query and fragment, whatever characters they hold. The scheme, host and
    port stay (they say where it failed)."""
    return redact(text, secret)


def send_webhook(url: str, summary: dict[str, Any], timeout: float = NOTIFY_TIMEOUT_S) -> str:
    """POST the summary as JSON (Slack-compatible: it has ``text``), the whole request within
    ``timeout`` seconds (a daemon thread joined with that deadline; one left behind ends with
    its server or the process). Never raises; returns a log line that never contains the URL
    (it carries the token) nor its user and password (sent as basic auth)."""
    try:
        deadline = float(timeout)
    except (TypeError, ValueError):
        deadline = math.nan
    if not (math.isfinite(deadline) and deadline > 0):
        return _send(url, summary, timeout)  # the socket refuses it: one line, as before
    lines: list[str] = []
    worker = threading.Thread(target=lambda: lines.append(_send(url, summary, timeout)),
                              name="webhook", daemon=True)
    worker.start()
    worker.join(deadline)
    if worker.is_alive() or not lines:
        return f"WARNING webhook: failed (timed out after {timeout:g} s)"
    return lines[0]


def _send(url: str, summary: dict[str, Any], timeout: float) -> str:
    try:
        return _post(url, summary, timeout)
    except Exception as exc:  # anything else: still one line, still without the secret
        return f"WARNING webhook: failed ({type(exc).__name__}: {_redact(str(exc), url)})"


def _post(url: str, summary: dict[str, Any], timeout: float) -> str:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return "WARNING webhook: failed (NOTIFY_WEBHOOK_URL is not an http(s) URL)"
    # urllib takes "user:pw@host" for the host name: the credentials go as basic auth. The
    # authority ends at the first "/", "?" or "#" (RFC 3986): an "@" after it (a path or a
    # query) is not a user's, and the request must not go to what follows it.
    parts = urllib.parse.urlsplit(url)
    credentials, at, host = parts.netloc.rpartition("@")
    target = urllib.parse.urlunsplit(parts._replace(netloc=host)) if at else url
    request = urllib.request.Request(
        target, data=json.dumps(summary).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "cryptosweep-nightly"},
    )
    if credentials:
        user, _, password = credentials.partition(":")
        login = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}"
        request.add_unredirected_header(  # not sent on to where a redirect points
            "Authorization", "Basic " + base64.b64encode(login.encode()).decode("ascii"))
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
        try:
            lines.append(run_notify_command(command, summary, timeout))
        except Exception as exc:  # e.g. a NUL byte in the command: never stops the night
            lines.append(f"WARNING command: failed ({type(exc).__name__})")
    if not lines:
        lines.append("INFO notify: no NOTIFY_WEBHOOK_URL or NOTIFY_COMMAND set")
    return lines
