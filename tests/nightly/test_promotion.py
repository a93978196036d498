"""The champion step of the nightly: a rejected run leaves the champion alone, and a kill at
any step of a promotion leaves a whole champion, which the next night's recovery finishes or
restores. Real folders, real renames; the rotation is run step by step as the job runs it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cryptosweep.core.errors import FolderInUseError, UserError
from cryptosweep.nightly import promotion
from cryptosweep.nightly.promotion import (
    CHAMPION,
    HISTORY,
    MARKER,
    NEW,
    OLD,
    PREVIOUS,
    ROTATION,
    decide_and_act,
    manifest_digest,
    read_history,
    recover,
)
from cryptosweep.records.results import BEST_CONFIGS_LATEST


def model_folder(path: Path, name: str) -> dict[str, str]:
    """A model folder (a manifest and a model file) whose content names it; returns its tree."""
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({"format": "cryptosweep-model/1",
                                                    "name": name}))
    (path / "model.txt").write_text(f"the weights of {name}\n" * 100)
    return tree(path)


def tree(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.iterdir()) if p.is_file()}


def finished_run(folder: Path, decision: str) -> Path:
    """A run folder as the nightly leaves it before the champion step."""
    folder.mkdir(parents=True)
    criteria = [{"name": "dsr", "value": 0.03, "threshold": 0.95, "passed": False,
                 "text": "DSR 0.03 < 0.95"}] if decision == "rejected" else []
    (folder / "sweep_results_20200101_000000.json").write_text(json.dumps({
        "best": {"eval_id": 4, "score": 0.5, "params": {"model": "lightgbm"},
                 "holdout": {"holdout_sharpe": -3.08}},
        "deployment": {"decision": decision, "criteria": criteria, "champion": None,
                       "reason": f"{decision.capitalize()}: DSR 0.03 < 0.95."}}))
    (folder / "best_configs_20200101_000000.json").write_text(
        json.dumps({"configurations": [folder.name]}))
    return folder


def judged_run(folder: Path, champion_sharpe: float) -> Path:
    """A rejected run whose finalize re-evaluated the deployed champion on its holdout."""
    run = finished_run(folder, "rejected")
    results_path = run / "sweep_results_20200101_000000.json"
    results = json.loads(results_path.read_text())
    results["config"] = {"objective": {"metric": "sharpe"}, "deployment": {"demote_after": 3}}
    results["deployment"]["champion"] = {"holdout": {"holdout_sharpe": champion_sharpe},
                                         "error": None, "notes": []}
    results_path.write_text(json.dumps(results))
    return run


def test_a_champion_failing_its_keep_gate_three_nights_in_a_row_is_demoted(tmp_path):
    models = tmp_path / "models"
    champion = model_folder(models / CHAMPION, "the champion")
    reports = tmp_path / "reports"
    decide_and_act(judged_run(reports / "nightly_1", -0.5), models, now=0)
    decide_and_act(judged_run(reports / "nightly_2", 0.3), models, now=1)  # passes: reset
    for night in (3, 4):
        done = decide_and_act(judged_run(reports / f"nightly_{night}", -0.5), models, now=night)
        assert (models / CHAMPION).exists() and "night(s) in a row of 3" in done.message
    done = decide_and_act(judged_run(reports / "nightly_5", -1.2), models, now=5)
    assert not (models / CHAMPION).exists(), "demoted: nothing is deployed"
    (demoted,) = (models / "demoted").glob("*/champion")
    assert tree(demoted) == champion  # moved aside whole, not deleted
    assert "the champion was demoted" in done.message
    history = read_history(models)
    assert [r["keep"]["failures_in_a_row"] for r in history if "keep" in r] == [1, 0, 1, 2, 3]
    assert history[-1]["decision"] == "demoted" and history[-1]["demoted_to"] == str(demoted)
    assert history[-1]["evidence"]["failures_in_a_row"] == 3
    # The next nights have no champion to keep or demote.
    for night in (6, 7):  # not "yet"
        after = decide_and_act(judged_run(reports / f"nightly_{night}", -1.0), models,
                               now=night)
        assert "; no champion is deployed (the last one was demoted 1970-01-01T00:00:05Z); " \
            in after.message


def deployed(models: Path) -> dict[str, Any]:
    """The champion, its predecessor and the published best configs, as they are now."""
    return {
        "champion": tree(models / CHAMPION) if (models / CHAMPION).exists() else None,
        "prev": tree(models / PREVIOUS) if (models / PREVIOUS).exists() else None,
        "latest": ((models / BEST_CONFIGS_LATEST).read_bytes()
                   if (models / BEST_CONFIGS_LATEST).exists() else None),
    }


def test_a_rejected_run_leaves_the_champion_and_latest_untouched(tmp_path):
    models = tmp_path / "models"
    model_folder(models / CHAMPION, "old champion")
    model_folder(models / PREVIOUS, "older champion")
    (models / BEST_CONFIGS_LATEST).write_text('{"configurations": ["old"]}')
    before = deployed(models)
    run = finished_run(tmp_path / "reports" / "nightly_20200101_020000", "rejected")
    done = decide_and_act(run, models, now=0)
    assert not done.promoted and deployed(models) == before
    assert done.message == (f"not promoted: DSR 0.03 < 0.95; the previous champion stays; "
                            f"see {run / 'report.html'}")
    copy = models / "rejected" / run.name / "best_configs_20200101_000000.json"
    assert copy.read_bytes() == (run / "best_configs_20200101_000000.json").read_bytes()
    # The last run's winner, approved or not, always at one stable name.
    assert (models / promotion.BEST_CONFIGS_LAST_RUN).read_bytes() == copy.read_bytes()
    (record,) = read_history(models)
    assert record == {**done.record, "rejected_copy": str(copy)}
    assert (record["run"], record["decision"], record["promoted"], record["champion"]) == (
        run.name, "rejected", False, None)
    assert record["time"] == "1970-01-01T00:00:00Z" and record["criteria"][0]["name"] == "dsr"
    second = decide_and_act(run, tmp_path / "empty models")
    assert "; no champion is deployed yet; see " in second.message


def _promotion_in_progress(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A models folder with an old champion and its predecessor, and a trained new champion
    with the marker of its promotion: the state just before :data:`ROTATION` runs."""
    models = tmp_path / "models"
    old = {"champion": model_folder(models / CHAMPION, "old champion"),
           "prev": model_folder(models / PREVIOUS, "older champion")}
    (models / BEST_CONFIGS_LATEST).write_text('{"configurations": ["old"]}')
    new = model_folder(models / NEW, "new champion")
    run = finished_run(tmp_path / "nightly_20200102_020000", "approved")
    best = run / "best_configs_20200101_000000.json"
    record = {"run": run.name, "decision": "approved", "promoted": True}
    (models / MARKER).write_text(json.dumps({
        "manifest_sha256": manifest_digest(models / NEW), "best_configs": str(best),
        "record": record}))
    return models, {"old": old, "new": new, "best": best.read_bytes(), "record": record}


@pytest.mark.parametrize("steps", range(len(ROTATION) + 1))
def test_a_kill_after_any_step_of_the_rotation_leaves_a_whole_champion(tmp_path, steps):
    models, expected = _promotion_in_progress(tmp_path)
    for _, step in ROTATION[:steps]:
        step(models)
    # Killed here. Whatever is called champion is whole; when nothing is, the new one is.
    champion = tree(models / CHAMPION) if (models / CHAMPION).exists() else None
    assert champion in (expected["old"]["champion"], expected["new"], None)
    if champion is None:
        assert tree(models / NEW) == expected["new"]
        assert tree(models / PREVIOUS) == expected["old"]["champion"]
    lines = recover(models)
    state = deployed(models)
    if steps < 2:  # the champion had not moved: the promotion is undone
        assert state == {**expected["old"], "latest": b'{"configurations": ["old"]}'}
        assert read_history(models) == [] and lines
    else:  # it had: the promotion is finished, with its bookkeeping
        assert state == {"champion": expected["new"], "prev": expected["old"]["champion"],
                         "latest": expected["best"]}
        assert read_history(models) == [expected["record"]]
    leftovers = {NEW, OLD, MARKER} & {p.name for p in models.iterdir()}
    assert not leftovers, leftovers
    assert recover(models) == [] and read_history(models) == ([] if steps < 2
                                                              else [expected["record"]])


def test_recover_removes_a_killed_training_and_finishes_a_first_promotion(tmp_path):
    models = tmp_path / "models"
    model_folder(models / f"{promotion.TRAINING_PREFIX}4242" / CHAMPION, "half trained")
    new = model_folder(models / NEW, "first champion")  # no champion yet: install it
    lines = recover(models)
    assert tree(models / CHAMPION) == new and not (models / PREVIOUS).exists()
    assert sorted(p.name for p in models.iterdir()) == [".lock", CHAMPION]
    assert any("interrupted training" in line for line in lines)
    assert recover(tmp_path / "absent") == []


def test_history_skips_a_torn_line_and_keeps_the_record_after_it(tmp_path):
    promotion.append_record(tmp_path, {"run": "a"})
    with open(tmp_path / HISTORY, "a") as out:
        out.write('{"run": "b", "deci')  # a kill in the middle of a write
    promotion.append_record(tmp_path, {"run": "c"})  # on a line of its own
    assert [r["run"] for r in read_history(tmp_path)] == ["a", "c"]


def test_demote_champion_moves_it_aside_and_records_why(tmp_path):
    """demote_champion: champion/ and best_configs_latest.json go to demoted/<stamp>/ with the
    evidence, one 'demoted' line is appended to champions.jsonl, no champion is deployed; a
    second call finds none and writes nothing."""
    models = tmp_path / "models"
    champion = model_folder(models / CHAMPION, "the champion")
    (models / BEST_CONFIGS_LATEST).write_text('{"configurations": ["x"]}')
    (models / PREVIOUS).mkdir()
    evidence = {"psr": 0.01, "live_bars": 240}
    record = promotion.demote_champion(models, "live PSR 0.01 < 0.05", evidence,
                                       now=1_700_000_000)
    folder = models / "demoted" / "20231114T221320Z"
    assert record is not None and record["decision"] == "demoted"
    assert record["evidence"] == evidence and record["demoted_to"] == str(folder / CHAMPION)
    assert not (models / CHAMPION).exists() and not (models / BEST_CONFIGS_LATEST).exists()
    assert tree(folder / CHAMPION) == champion
    assert (folder / BEST_CONFIGS_LATEST).is_file() and (models / PREVIOUS).is_dir()
    assert json.loads((folder / "demotion.json").read_text()) == record
    assert read_history(models)[-1] == record == promotion.last_demotion(models)
    assert promotion.demote_champion(models, "again", {}, now=1_700_000_001) is None
    assert len(read_history(models)) == 1


class Killed(KeyboardInterrupt):
    """A kill at a chosen step: nothing after it runs, no handler tidies up."""


@pytest.mark.parametrize("killed_before", ["move champion", "move latest", "history line"])
def test_a_demotion_a_kill_interrupted_is_finished_by_recover(tmp_path, monkeypatch,
                                                               killed_before):
    """demote_champion moved the champion, then best_configs_latest.json, then appended its
    line; killed in between, nothing finished it: no champion deployed, the history still
    saying approved, signals answering "none approved yet", recover doing nothing."""
    models = tmp_path / "models"
    champion = model_folder(models / CHAMPION, "the champion")
    (models / BEST_CONFIGS_LATEST).write_text('{"configurations": ["x"]}')
    promotion.append_record(models, {"run": "r", "decision": "approved", "promoted": True})
    steps = {"move champion": 0, "move latest": 1}
    moves = []
    real_replace, real_append = promotion._replace, promotion.append_record

    def replace(source: Path, target: Path) -> None:
        if len(moves) == steps.get(killed_before):
            raise Killed
        moves.append(source.name)
        real_replace(source, target)

    def append(models_dir: Path, record: dict[str, Any]) -> Path:
        if killed_before == "history line":
            raise Killed
        return real_append(models_dir, record)

    monkeypatch.setattr(promotion, "_replace", replace)
    monkeypatch.setattr(promotion, "append_record", append)
    with pytest.raises(Killed):
        promotion.demote_champion(models, "live PSR 0.01 < 0.05", {"psr": 0.01}, now=7)
    monkeypatch.setattr(promotion, "_replace", real_replace)
    monkeypatch.setattr(promotion, "append_record", real_append)

    lines = recover(models)
    assert any("finished a demotion a kill had interrupted" in line for line in lines)
    (folder,) = (models / "demoted").iterdir()
    assert not (models / CHAMPION).exists() and tree(folder / CHAMPION) == champion
    assert not (models / BEST_CONFIGS_LATEST).exists()
    assert (folder / BEST_CONFIGS_LATEST).is_file()
    last = promotion.last_demotion(models)
    assert last == json.loads((folder / "demotion.json").read_text())
    assert recover(models) == [] and len(read_history(models)) == 2


def test_a_keep_gate_demotion_a_kill_interrupted_is_carried_out_next_night(tmp_path,
                                                                           monkeypatch):
    """The third failed keep-gate's line (saying demote) was appended, then the kill: the
    champion stayed deployed, and the next night's keep-gate counted from the demotion's
    reset... nothing ever demoted it."""
    models = tmp_path / "models"
    champion = model_folder(models / CHAMPION, "the champion")
    reports = tmp_path / "reports"
    for night in (1, 2):
        decide_and_act(judged_run(reports / f"nightly_{night}", -0.5), models, now=night)

    def killed(*args: Any, **kwargs: Any) -> None:
        raise Killed

    monkeypatch.setattr(promotion, "demote_champion", killed)
    third = judged_run(reports / "nightly_3", -0.5)
    with pytest.raises(Killed):
        decide_and_act(third, models, now=3)
    monkeypatch.undo()
    assert read_history(models)[-1]["keep"]["demote"] and (models / CHAMPION).is_dir()
    assert promotion.read_pending(models) == promotion.Pending(third.resolve(), 1)

    lines = recover(models)
    assert any("carried out the keep-gate's demotion" in line for line in lines)
    assert not (models / CHAMPION).exists()
    assert tree(next((models / "demoted").glob("*/champion"))) == champion
    # The interrupted step itself, acted on again, decides nothing twice.
    again = decide_and_act(third, models, now=4)
    assert "already decided (rejected)" in again.message
    assert promotion.read_pending(models) is None
    assert [r["decision"] for r in read_history(models)] == ["rejected"] * 3 + ["demoted"]


def test_a_training_that_fails_is_reported_and_not_retried_every_night(tmp_path, monkeypatch):
    """A kill leaves the step pending for the next night; an error (a bug, a model that
    cannot be trained) is tonight's failure, and is not acted on again before every sweep."""
    models = tmp_path / "models"
    run = finished_run(tmp_path / "reports" / "nightly_1", "approved")

    def fails(best: dict[str, Any], folder: Path) -> None:
        raise ValueError("cannot train this")

    monkeypatch.setattr(promotion, "train_champion", fails)
    with pytest.raises(ValueError, match="cannot train this"):
        decide_and_act(run, models)
    assert promotion.read_pending(models) is None and read_history(models) == []
    assert not (models / CHAMPION).exists()


def test_one_process_at_a_time_writes_a_models_folder(tmp_path):
    """Two nightlies on one models folder (two reports folders): one recovered (deleted) the
    other's half-made champion, then rotated its own into a folder the other moved: no
    champion left, and the original deleted by the next recovery."""
    models = tmp_path / "models"
    model_folder(models / CHAMPION, "the champion")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from cryptosweep.core.locking import "
         "hold_folder\nwith hold_folder(sys.argv[1], 'models folder'):\n print('held', "
         "flush=True); time.sleep(60)", str(models)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        run = finished_run(tmp_path / "reports" / "nightly_1", "rejected")
        for step in (lambda: recover(models), lambda: decide_and_act(run, models),
                     lambda: promotion.demote_champion(models, "why", {})):
            with pytest.raises(FolderInUseError, match=f"models folder {models} is in use"):
                step()
        assert read_history(models) == [] and (models / CHAMPION).is_dir()
    finally:
        holder.kill()
        holder.wait()
    assert not decide_and_act(run, models).promoted  # free again
    assert len(read_history(models)) == 1


def test_a_champion_step_killed_again_counts_its_attempts(tmp_path, monkeypatch):
    """The next night gives a killed step one more try: the marker must count the tries (a
    count stuck at 1 would retry a training killed every time, every night)."""
    models = tmp_path / "models"
    run = finished_run(tmp_path / "reports" / "nightly_1", "approved")

    def killed(best: dict[str, Any], folder: Path) -> None:
        raise Killed

    monkeypatch.setattr(promotion, "train_champion", killed)
    for attempts in (1, 2):
        with pytest.raises(Killed):
            decide_and_act(run, models)
        assert promotion.read_pending(models) == promotion.Pending(run.resolve(), attempts)
    other = finished_run(tmp_path / "reports" / "nightly_2", "approved")
    with pytest.raises(Killed):
        decide_and_act(other, models)  # another run's step starts its own count
    assert promotion.read_pending(models) == promotion.Pending(other.resolve(), 1)


def test_the_champion_steps_refuse_damaged_files_before_making_anything(tmp_path):
    """decide_and_act took the folder's lock (making .lock) before reading what it refused."""
    models = tmp_path / "models"
    models.mkdir()
    (models / promotion.PENDING).write_text('{"run": 5}')
    run = finished_run(tmp_path / "reports" / "nightly_1", "rejected")
    with pytest.raises(UserError, match="naming a run folder"):
        decide_and_act(run, models)
    assert [p.name for p in models.iterdir()] == [promotion.PENDING]


def test_a_champion_whose_folder_cannot_be_read_fails_its_keep_gate_and_is_demoted(tmp_path):
    """A deployed champion with a damaged manifest (truncated, hand-edited, an older model
    format): the sweep's gate could not re-evaluate it, so every winner failed the ``champion``
    criterion, while its keep-gate said "not re-evaluated", which never counts: it was never
    demoted, and no winner could ever replace it (``signals`` exit 2 every night). Now each
    such night fails its keep-gate, and after ``demote_after`` it is demoted."""
    from cryptosweep.core.config import ObjectiveSpec
    from cryptosweep.sweep.champion import comparison, read_champion

    models = tmp_path / "models"
    model_folder(models / CHAMPION, "the champion")
    (models / CHAMPION / "manifest.json").write_text('{"format": "cryptosweep-model/1", "na')
    champion = read_champion(models / CHAMPION)
    assert champion is not None and champion.error is not None
    block = comparison(champion, ObjectiveSpec(), "1h", None)
    reports = tmp_path / "reports"
    for night in (1, 2, 3):
        run = judged_run(reports / f"nightly_{night}", 0.0)
        results_path = run / "sweep_results_20200101_000000.json"
        results = json.loads(results_path.read_text())
        results["deployment"]["champion"] = block
        results_path.write_text(json.dumps(results))
        done = decide_and_act(run, models, now=night)
        assert "champion cannot be read" in done.message
        assert (models / CHAMPION).exists() is (night < 3)
    history = read_history(models)
    assert [r["keep"]["failures_in_a_row"] for r in history if "keep" in r] == [1, 2, 3]
    assert history[-1]["decision"] == "demoted"


def test_a_promotion_after_a_demotion_keeps_champion_prev(tmp_path, monkeypatch):
    """With the champion demoted, the next approved run's rotation dropped ``champion.prev``
    (the last champion that was not demoted) with no champion to put in its place, and said
    nothing of it (a helper's attack). Now it stays; the new champion is deployed as usual."""
    models = tmp_path / "models"
    model_folder(models / CHAMPION, "A")
    before = model_folder(models / PREVIOUS, "P")
    promotion.demote_champion(models, "kill switch", {}, now=1)

    def trained(best: dict[str, Any], folder: Path) -> None:
        model_folder(folder, f"trained from {best['configurations'][0]}")

    monkeypatch.setattr(promotion, "train_champion", trained)
    done = decide_and_act(finished_run(tmp_path / "reports" / "nightly_2", "approved"),
                          models, now=2)
    assert done.promoted and "the one before" not in done.message
    assert tree(models / PREVIOUS) == before
    assert "trained from nightly_2" in (models / CHAMPION / "manifest.json").read_text()
    again = decide_and_act(finished_run(tmp_path / "reports" / "nightly_3", "approved"),
                           models, now=3)  # with a champion to retire: as before
    assert f"(the one before is in {models / PREVIOUS})" in again.message
    assert "trained from nightly_2" in (models / PREVIOUS / "manifest.json").read_text()


def test_a_sigterm_during_the_rotation_waits_until_the_champion_is_in(tmp_path, monkeypatch):
    """systemd's stop (SIGTERM, which the night turns into an exception at once) between the
    champion's move to champion.prev and the new one's move in: production had no champion
    until the next night's recovery. The rotation now finishes first; the signal follows."""
    import os
    import signal

    from cryptosweep.core.errors import SweepInterrupted, sigterm_interrupts

    models = tmp_path / "models"
    old = model_folder(models / CHAMPION, "A")

    def trained(best: dict[str, Any], folder: Path) -> None:
        model_folder(folder, f"trained from {best['configurations'][0]}")

    def retire_then_stopped(models: Path) -> None:
        promotion._retire_champion(models)
        os.kill(os.getpid(), signal.SIGTERM)  # handled before the next step, unless held

    rotation = tuple((name, retire_then_stopped if step is promotion._retire_champion
                      else step) for name, step in ROTATION)
    monkeypatch.setattr(promotion, "train_champion", trained)
    monkeypatch.setattr(promotion, "ROTATION", rotation)
    run = finished_run(tmp_path / "reports" / "nightly_2", "approved")
    with sigterm_interrupts(), pytest.raises(SweepInterrupted):
        decide_and_act(run, models, now=2)
    assert "trained from nightly_2" in (models / CHAMPION / "manifest.json").read_text()
    assert tree(models / PREVIOUS) == old and not (models / NEW).exists()
    assert [record["run"] for record in read_history(models)] == ["nightly_2"]
