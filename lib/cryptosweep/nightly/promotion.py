"""After the report: act on the deployment gate's decision (:mod:`cryptosweep.judging.deployment`).

* **Approved**: the winner is trained for production (:func:`cryptosweep.production.
  train_model`) into a temporary folder beside ``models/champion``, then rotated in with
  renames — ``champion`` becomes ``champion.prev`` (the one before it is dropped) and the new
  model becomes ``champion`` — and ``best_configs_latest.json`` is updated. Without a
  champion to retire (a demoted one), ``champion.prev`` is kept as it is.
* **Rejected**: ``champion`` and ``best_configs_latest.json`` are left as they are; the run's
  best configs are copied to ``models/rejected/<run>/`` for whoever wants to look.

Either way the run's best configs are copied to ``models/best_configs_last_run.json``
(:data:`BEST_CONFIGS_LAST_RUN`: the last run's winner, approved or not, at one stable name;
``best_configs_latest.json`` is the approved champion's only), and one JSON line is appended to
``models/champions.jsonl``: the time, the run, the
decision, its reason and criteria, and where the champion is.

A kill at any moment leaves the champion whole: training writes only its temporary folder,
and the rotation (:data:`ROTATION`) is a few renames, each atomic, of folders that are already
complete. :func:`recover` — run at the start of every night, before the sweep reads the
champion — finishes a rotation that had already moved the old champion aside (the new one is
complete), or undoes one that had not, removes what a killed training left, and finishes a
demotion that was decided (its ``demotion.json`` written, or a keep-gate's line saying so) but
not carried out. A decision a kill interrupted before its history line (a training killed) is
not lost: :data:`PENDING` names its run, and the next night acts on it again
(:func:`read_pending`) before its own sweep; a run whose line is in the history is never
acted on twice. One process at a time works on the champion (its ``.lock``:
:func:`~cryptosweep.core.locking.hold_folder`).

Layout of the models folder::

    champion/               the deployed model (its manifest.json names what it is)
    champion.prev/          the one it replaced (after a demotion: the one before that)
    best_configs_latest.json    the deployed champion's run's best configs (approved only)
    best_configs_last_run.json  the last run's best configs, approved or not
    champions.jsonl         one line per decision
    rejected/<run>/         best configs of rejected runs
    demoted/<stamp>/        a champion the live evidence demoted (:func:`demote_champion`):
                            champion/, best_configs_latest.json, demotion.json
    .champion.train-<pid>/  a training in progress (removed by recover)
    .champion.new/          a trained champion about to be rotated in
    .champion.old/          the champion.prev being dropped
    .promotion.json         what a rotation in progress promotes (for recover)
    .decision.json          the run whose champion step is to come (its sweep complete) or
                            under way (for the next night: :func:`mark_pending`)
    .lock                   held by the process working on the champion (one at a time)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptosweep.core.errors import UserError
from cryptosweep.core.files import (
    append_lines,
    copy_atomic,
    read_json_lines,
    sync_folder,
    write_json_atomic,
)
from cryptosweep.core.locking import hold_folder
from cryptosweep.core.settings import DeploymentSettings
from cryptosweep.core.vocabulary import APPROVED
from cryptosweep.judging.deployment import keep_champion, summary_line
from cryptosweep.production.model import (
    CHAMPION_FOLDER,
    MANIFEST,
    NEW_FOLDER,
    OLD_FOLDER,
    PREVIOUS_FOLDER,
)
from cryptosweep.records.ledger import DEMOTED_FOLDER, REJECTED_FOLDER
from cryptosweep.records.results import (
    BEST_CONFIGS_GLOB,
    BEST_CONFIGS_LAST_RUN,
    BEST_CONFIGS_LATEST,
    CHAMPION_HISTORY,
    RESULTS_GLOB,
)
from cryptosweep.reporting.index_page import REPORT_FILE

CHAMPION = CHAMPION_FOLDER
PREVIOUS = PREVIOUS_FOLDER
NEW = NEW_FOLDER
OLD = OLD_FOLDER
TRAINING_PREFIX = ".champion.train-"
MARKER = ".promotion.json"
#: The run whose champion step is under way (:func:`decide_and_act`), for the next night to
#: finish when a kill interrupted it.
PENDING = ".decision.json"
#: How many times a run's champion step may be started (a kill interrupting each) before the
#: next night gives it up: once more after the first (a training killed twice, out of memory
#: say, would otherwise stop every night before its sweep).
MAX_PENDING_ATTEMPTS = 2
#: What :func:`~cryptosweep.core.locking.hold_folder` calls the folder in its message.
MODELS_FOLDER = "models folder"
HISTORY = CHAMPION_HISTORY
REJECTED = REJECTED_FOLDER
DEMOTED = DEMOTED_FOLDER
DEMOTION = "demotion.json"


@dataclass(frozen=True)
class Promotion:
    """What the champion step did: ``promoted`` (a new champion is deployed), the decision's
    record (the line appended to ``champions.jsonl``) and the message for people."""

    promoted: bool
    record: dict[str, Any]
    message: str


def champion_dir(models_dir: Path) -> Path:
    """Where the deployed champion lives (what the sweep compares its winner with)."""
    return Path(models_dir) / CHAMPION


# -------------------------------------------------------------------------- the rotation


def _replace(source: Path, target: Path) -> None:
    os.replace(source, target)
    sync_folder(target.parent)


def _drop_previous(models: Path) -> None:
    # Without a champion to retire (none yet, or demoted), champion.prev is kept: dropping it
    # deleted the last champion that was not demoted, and put nothing in its place.
    if (models / PREVIOUS).exists() and (models / CHAMPION).exists():
        _replace(models / PREVIOUS, models / OLD)


def _retire_champion(models: Path) -> None:
    if (models / CHAMPION).exists():
        _replace(models / CHAMPION, models / PREVIOUS)


def _install_new(models: Path) -> None:
    _replace(models / NEW, models / CHAMPION)


def _remove_old(models: Path) -> None:
    shutil.rmtree(models / OLD, ignore_errors=True)


#: The rotation of a complete ``.champion.new`` into ``champion``, one atomic rename (or a
#: removal of what is no longer needed) per step; :func:`recover` knows the state after each.
ROTATION: tuple[tuple[str, Callable[[Path], None]], ...] = (
    ("drop champion.prev", _drop_previous),
    ("champion -> champion.prev", _retire_champion),
    ("new -> champion", _install_new),
    ("remove the dropped champion.prev", _remove_old),
)


def recover(models_dir: Path) -> list[str]:
    """Bring a models folder that a kill interrupted back to a whole champion (see the module
    docstring); returns ``LEVEL message`` lines of what it did (none when nothing was to do).

    A rotation that had moved the champion aside is finished (the new champion is complete
    before any rename), and its bookkeeping (``best_configs_latest.json``, the history line)
    completed; one that had not is undone. Killed trainings are removed.
    """
    models = Path(models_dir)
    if not models.is_dir():
        return []
    read_marker(models)  # a damaged one stops here, before anything is made or changed
    read_pending(models)  # as does this
    with hold_folder(models, MODELS_FOLDER):
        return _recover(models)


def _recover(models: Path) -> list[str]:
    lines: list[str] = []
    marker = read_marker(models)
    for training in models.glob(f"{TRAINING_PREFIX}*"):
        shutil.rmtree(training, ignore_errors=True)
        lines.append(f"WARNING promotion: removed an interrupted training ({training.name})")
    if (models / NEW).exists():
        if (models / CHAMPION).exists():  # killed before the champion moved: undo
            shutil.rmtree(models / NEW, ignore_errors=True)
            lines.append("WARNING promotion: a promotion was interrupted before the champion "
                         "was replaced; the champion stays")
        else:  # killed after the champion moved aside: finish
            _install_new(models)
            lines.append("WARNING promotion: finished a promotion a kill had interrupted")
    if (models / OLD).exists():
        if (models / PREVIOUS).exists():
            _remove_old(models)
        else:  # killed between dropping champion.prev and retiring the champion: undo
            _replace(models / OLD, models / PREVIOUS)
    if marker is not None:
        if manifest_digest(models / CHAMPION) == marker.get("manifest_sha256"):
            _bookkeeping(models, marker)
        (models / MARKER).unlink(missing_ok=True)
        sync_folder(models)
    lines += _finish_demotions(models)
    return lines


def _finish_demotions(models: Path) -> list[str]:
    """Carry out the demotions a kill interrupted: one whose folder has its ``demotion.json``
    but no history line (the champion moved there, or still deployed as the one judged), and
    one a keep-gate decided (the history's last line says ``demote``) before any step of it."""
    lines: list[str] = []
    history = read_history(models)
    for folder in sorted((models / DEMOTED).glob("*")) if (models / DEMOTED).is_dir() else []:
        record = _read_json(folder / DEMOTION)
        if record is None or record.get("decision") != "demoted" or record in history:
            continue
        if not (folder / CHAMPION).exists():
            judged = record.get("demoted_manifest_sha256")
            if judged is None or manifest_digest(models / CHAMPION) != judged:
                continue  # not the deployed champion: nothing of it was carried out
            _replace(models / CHAMPION, folder / CHAMPION)
        if not (models / CHAMPION).exists() and (models / BEST_CONFIGS_LATEST).exists():
            _replace(models / BEST_CONFIGS_LATEST, folder / BEST_CONFIGS_LATEST)
        append_record(models, record)
        history.append(record)
        lines.append(f"WARNING promotion: finished a demotion a kill had interrupted "
                     f"({record.get('reason')}); the champion is in {folder / CHAMPION}")
    last = history[-1] if history else {}
    if (last.get("keep") or {}).get("demote") and (models / CHAMPION).is_dir():
        demoted = demote_champion(models, f"keep-gate: {last['keep'].get('text')}",
                                  last["keep"])
        if demoted is not None:
            lines.append(f"WARNING promotion: carried out the keep-gate's demotion a kill had "
                         f"interrupted; the champion is in {demoted['demoted_to']}")
    return lines


def manifest_digest(model_dir: Path) -> str | None:
    """SHA-256 of a model folder's manifest (None when it has none)."""
    try:
        return hashlib.sha256((Path(model_dir) / MANIFEST).read_bytes()).hexdigest()
    except OSError:
        return None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def read_marker(models_dir: Path) -> dict[str, Any] | None:
    """The models folder's :data:`MARKER` (what an interrupted rotation promotes), or None
    when there is none. A damaged one (not a JSON object, a key missing or of the wrong type)
    is a :class:`UserError` (exit 2) naming the file: it is only ever written whole
    (atomically), so damage is not a kill's doing, and :func:`recover` cannot finish the
    promotion's bookkeeping without it."""
    path = Path(models_dir) / MARKER
    if not path.exists():
        return None
    problem = None
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror or exc})"
    except UnicodeDecodeError:
        problem = "not UTF-8 text"
    except ValueError as exc:
        problem = f"not JSON ({exc})"
    else:
        problem = _marker_problem(value)
    if problem is not None:
        raise UserError(
            f"{path}: {problem}; it records a promotion a kill interrupted (keys "
            "manifest_sha256, best_configs, record): restore it, or delete it to leave that "
            f"promotion's bookkeeping ({BEST_CONFIGS_LATEST}, the {HISTORY} line) undone")
    return value  # an object with those keys: _marker_problem checked it


def _marker_problem(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "not a JSON object"
    for key in ("manifest_sha256", "best_configs", "record"):
        if key not in value:
            return f"{key!r} is missing"
    if not isinstance(value["manifest_sha256"], str | None):
        return f"'manifest_sha256' is not text (got {value['manifest_sha256']!r:.40})"
    if not isinstance(value["best_configs"], str) or not value["best_configs"]:
        return f"'best_configs' is not a path (got {value['best_configs']!r:.40})"
    if not isinstance(value["record"], dict):
        return f"'record' is not an object (got {value['record']!r:.40})"
    problem = history_problem(value["record"])
    return None if problem is None else f"'record': {problem}"


def _bookkeeping(models: Path, marker: dict[str, Any]) -> None:
    """What a promotion does once its champion is in: ``best_configs_latest.json`` and the
    history line (not twice)."""
    source = Path(marker["best_configs"])
    target = models / BEST_CONFIGS_LATEST
    if source.is_file() and (not target.is_file() or
                             target.read_bytes() != source.read_bytes()):
        copy_atomic(source, target)
    record = marker["record"]
    if not _last_record_is(models, record):
        append_record(models, record)


# ------------------------------------------------------------------------------ the step


def append_record(models_dir: Path, record: dict[str, Any]) -> Path:
    """Append one JSON line to ``champions.jsonl`` (one write, then fsync)."""
    path = Path(models_dir) / HISTORY
    append_lines(path, [json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"])
    return path


def read_history(models_dir: Path) -> list[dict[str, Any]]:
    """Every decision in ``champions.jsonl``, oldest first (a line a kill tore is skipped).
    A damaged line (see :func:`history_problem`) is a :class:`UserError` (exit 2) naming the
    file and the line."""
    return read_json_lines(Path(models_dir) / HISTORY, what="the champion history",
                           check=history_problem)


def last_change(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The last record of ``history`` that changed the deployed champion: a promotion or a
    demotion (None when there is none). After a demotion no champion is deployed until the
    next promotion; with none at all, the gate has approved none yet."""
    changes = [record for record in history
               if record.get("promoted") is True or record.get("decision") == "demoted"]
    return changes[-1] if changes else None


def history_problem(record: dict[str, Any]) -> str | None:
    """What is wrong with one line of ``champions.jsonl`` for its readers (None when nothing
    is): ``decision`` is text; a ``demoted`` record has its ``time`` and ``reason`` (text,
    what ``cryptosweep signals`` says of it); ``promoted`` is true or false; a ``keep`` block
    is an object whose ``passed`` is true, false or null (the keep-gate counts them)."""
    decision = record.get("decision")
    if not isinstance(decision, str | None):
        return f"'decision' is not text (got {decision!r:.40})"
    for key in ("time", "reason") if decision == "demoted" else ():
        if not isinstance(record.get(key), str):
            return (f"the 'demoted' record has no {key!r}" if key not in record
                    else f"{key!r} is not text (got {record[key]!r:.40})")
    if not isinstance(record.get("promoted"), bool | None):
        return f"'promoted' is not true or false (got {record['promoted']!r:.40})"
    keep = record.get("keep")
    if not isinstance(keep, dict | None):
        return f"'keep' is not an object (got {keep!r:.40})"
    if keep is not None and not isinstance(keep.get("passed"), bool | None):
        return f"'keep.passed' is not true, false or null (got {keep['passed']!r:.40})"
    return None


def _last_record_is(models: Path, record: dict[str, Any]) -> bool:
    history = read_history(models)
    return bool(history) and history[-1] == record


def decide_and_act(run_dir: Path, models_dir: Path, now: float | None = None) -> Promotion:
    """The champion step for a finished run (see the module docstring). Raises what training
    raises, with the champion untouched; a run already decided (its line in the history) is
    not acted on again."""
    run_dir, models = Path(run_dir), Path(models_dir)
    if models.is_dir():  # damaged files stop here, before anything is made or changed
        read_pending(models)
        read_history(models)
    with hold_folder(models, MODELS_FOLDER):
        decided = decision_of(models, run_dir)
        if decided is not None:
            (models / PENDING).unlink(missing_ok=True)
            return Promotion(False, decided, f"{run_dir.name}: already decided "
                                             f"({decided.get('decision')}); nothing done again")
        earlier = read_pending(models)
        attempts = earlier.attempts + 1 if earlier and earlier.run == run_dir.resolve() else 1
        write_json_atomic(models / PENDING, {"run": str(run_dir.resolve()),
                                             "attempts": attempts})
        try:
            promotion = _decide_and_act(run_dir, models, now)
        except Exception:  # a failure is reported tonight, not retried every night after
            (models / PENDING).unlink(missing_ok=True)
            raise
        (models / PENDING).unlink(missing_ok=True)  # (a kill before this: the next night)
        return promotion


def decision_of(models: Path, run_dir: Path) -> dict[str, Any] | None:
    """The history's line deciding ``run_dir`` (None when there is none)."""
    best = sorted(run_dir.glob(BEST_CONFIGS_GLOB))
    source = str(best[-1].resolve()) if best else None
    for record in reversed(read_history(models)):
        if record.get("run") == run_dir.name and record.get("best_configs") == source:
            return record
    return None


@dataclass(frozen=True)
class Pending:
    """A champion step a kill interrupted (:data:`PENDING`): the run it acted for, and how
    many times it was started (0: not yet; the run's sweep was complete, its report and
    champion step still to come: :func:`mark_pending`)."""

    run: Path
    attempts: int


def mark_pending(models_dir: Path, run_dir: Path) -> None:
    """Record, once its sweep is complete and before its report, that ``run_dir``'s decision
    is still to be acted on (:data:`PENDING`, 0 attempts; one that already names the run is
    kept). A night stopped between its report and its champion step (a SIGTERM while the
    index was written, ``latest`` that could not be replaced) then left a finished run whose
    decision no later night acted on: the next night starts a new run after a finished one."""
    models = Path(models_dir)
    with hold_folder(models, MODELS_FOLDER):
        earlier = read_pending(models)
        if earlier is None or earlier.run != Path(run_dir).resolve():
            write_json_atomic(models / PENDING, {"run": str(Path(run_dir).resolve()),
                                                 "attempts": 0})


def read_pending(models_dir: Path) -> Pending | None:
    """The champion step a kill interrupted (:data:`PENDING`), None when there is none. A
    damaged file is a :class:`UserError` (exit 2) naming it."""
    path = Path(models_dir) / PENDING
    if not path.exists():
        return None
    value = _read_json(path)
    attempts = (value or {}).get("attempts", 1)
    if (value is None or not isinstance(value.get("run"), str) or not value["run"]
            or not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 0):
        raise UserError(f"{path}: not a JSON object naming a run folder (key 'run') and how "
                        "many times its champion step started (key 'attempts'); it records a "
                        "champion step a kill interrupted: restore it, or delete it to leave "
                        "that run's decision unacted on")
    return Pending(Path(value["run"]), attempts)


def _decide_and_act(run_dir: Path, models: Path, now: float | None) -> Promotion:
    results_path = sorted(run_dir.glob(RESULTS_GLOB))[-1]
    best_path = sorted(run_dir.glob(BEST_CONFIGS_GLOB))[-1]
    results = json.loads(results_path.read_text(encoding="utf-8"))
    deployment = results.get("deployment") or {}
    approved = deployment.get("decision") == APPROVED
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "run": run_dir.name, "decision": deployment.get("decision", "none"),
        "reason": deployment.get("reason", "the run has no deployment decision"),
        "criteria": deployment.get("criteria", []),
        "winner": _winner(results), "promoted": approved,
        "champion": str(champion_dir(models)) if approved else None,
        "best_configs": str(best_path.resolve()),
    }
    copy_atomic(best_path, models / BEST_CONFIGS_LAST_RUN)
    if not approved:
        copy = copy_atomic(best_path, models / REJECTED / run_dir.name / best_path.name)
        record["rejected_copy"] = str(copy)
        history = read_history(models)
        if (models / CHAMPION).exists():
            record["keep"] = _keep_gate(results, history)
            kept = ("the previous champion stays" if record["keep"]["passed"] is None
                    else f"the previous champion stays ({record['keep']['text']})")
        else:
            last = last_change(history)  # "yet" misled after a demotion
            kept = ("no champion is deployed yet" if last is None or last.get("promoted")
                    else f"no champion is deployed (the last one was demoted {last['time']})")
        append_record(models, record)
        if record.get("keep", {}).get("demote"):
            demoted = demote_champion(models, f"keep-gate: {record['keep']['text']}",
                                      record["keep"], now)
            if demoted is not None:
                kept = (f"the champion was demoted ({record['keep']['text']}): flat until a "
                        f"new one is approved; it is in {demoted['demoted_to']}")
        return Promotion(False, record, f"{summary_line(deployment)}; {kept}; see "
                                        f"{run_dir / REPORT_FILE}")
    best = json.loads(best_path.read_text(encoding="utf-8"))
    workspace = models / f"{TRAINING_PREFIX}{os.getpid()}"  # whatever training writes
    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir()
    trained = workspace / CHAMPION
    try:
        train_champion(best, trained)
        sync_folder(trained)
        marker = {"manifest_sha256": manifest_digest(trained),
                  "best_configs": str(best_path.resolve()), "record": record}
        write_json_atomic(models / MARKER, marker)
        shutil.rmtree(models / NEW, ignore_errors=True)
        _replace(trained, models / NEW)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    retiring = (models / CHAMPION).exists()
    with _signals_held():  # a SIGTERM between two renames left no champion until next night
        for _, step in ROTATION:
            step(models)
        _bookkeeping(models, marker)
        (models / MARKER).unlink(missing_ok=True)
        sync_folder(models)
    winner = record["winner"] or {}
    return Promotion(True, record, (
        f"approved: eval {winner.get('eval_id')} ({winner.get('model')}) deployed to "
        f"{champion_dir(models)}"
        + (f" (the one before is in {models / PREVIOUS})" if retiring else "")))


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back while the block runs (a few renames and appends), then
    handled as they would have been. The night's SIGTERM raises at once (systemd's stop):
    between the champion's move to champion.prev and the new one's move in, production had no
    champion until the next night's recovery. Only the main thread can set handlers; in
    another, the block runs as it is. A SIGKILL is the recovery's, as before."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, lambda signum, frame: received.append(signum))
                for signum in held}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in received:
            signal.raise_signal(signum)


def _keep_gate(results: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    """The deployed champion's keep-gate on tonight's re-evaluation
    (:func:`cryptosweep.judging.deployment.keep_champion`)."""
    config = results.get("config") or {}
    settings = DeploymentSettings.model_validate(config.get("deployment") or {})
    champion = (results.get("deployment") or {}).get("champion")
    return keep_champion(history, champion, (config.get("objective") or {}).get("metric",
                                                                                 "sharpe"),
                         settings.min_holdout_score, settings.demote_after)


def _winner(results: dict[str, Any]) -> dict[str, Any] | None:
    best = results.get("best")
    if not best:
        return None
    return {"eval_id": best["eval_id"], "model": best["params"]["model"],
            "score": best["score"], "holdout": best.get("holdout")}


def train_champion(best_configs: dict[str, Any], folder: Path) -> None:
    """Train the run's winner (``configurations[0]``) for production into ``folder`` with
    :func:`cryptosweep.production.train_model`: on its run's data, every bar of it."""
    from cryptosweep.production import train_model

    train_model(best_configs).save(folder)


# ------------------------------------------------------------------------------ demotion


def demote_champion(models_dir: Path, reason: str, evidence: dict[str, Any],
                    now: float | None = None) -> dict[str, Any] | None:
    """Take the deployed champion out of service: ``champion/`` is moved (one atomic rename)
    to ``demoted/<stamp>/champion/``, ``best_configs_latest.json`` beside it, ``evidence``
    written there as ``demotion.json``, and a ``demoted`` line appended to
    ``champions.jsonl``. From then on no champion is deployed (``cryptosweep signals
    models/champion`` answers "flat: no champion deployed") until the gate approves another.

    ``reason``: one line for people; ``evidence``: JSON-ready numbers behind it (the kill
    switch's statistics, a keep-gate's criteria); ``now``: seconds since the epoch (default:
    the clock). Returns the line appended to the history, or None when no champion is
    deployed (nothing is written then). ``champion.prev`` is left as it is."""
    models = Path(models_dir)
    if not (models / CHAMPION).is_dir():
        return None
    with hold_folder(models, MODELS_FOLDER):
        return _demote(models, reason, evidence, now)


def _demote(models: Path, reason: str, evidence: dict[str, Any], now: float | None
            ) -> dict[str, Any] | None:
    champion = models / CHAMPION
    if not champion.is_dir():
        return None
    moment = time.time() if now is None else now
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(moment))
    folder = models / DEMOTED / stamp
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = models / DEMOTED / f"{stamp}-{suffix}"
    folder.mkdir(parents=True)
    manifest = _read_json(champion / MANIFEST) or {}
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment)),
        "decision": "demoted", "reason": reason, "evidence": evidence, "promoted": False,
        "champion": None, "demoted_to": str(folder / CHAMPION),
        "demoted_manifest_sha256": manifest_digest(champion),
        "demoted_configuration": (manifest.get("configuration") or {}).get("params"),
    }
    write_json_atomic(folder / DEMOTION, record)
    _replace(champion, folder / CHAMPION)  # from here on, no champion is deployed
    latest = models / BEST_CONFIGS_LATEST
    if latest.exists():
        _replace(latest, folder / BEST_CONFIGS_LATEST)
    append_record(models, record)
    return record


def last_demotion(models_dir: Path) -> dict[str, Any] | None:
    """The history's last line when it is a demotion (no champion deployed since), else
    None."""
    history = read_history(models_dir)
    if history and history[-1].get("decision") == "demoted":
        return history[-1]
    return None
