"""The deployed champion, as the deployment gate sees it: read from its model folder's
``manifest.json`` (written by :mod:`cryptosweep.production`), and re-evaluated on *this* run's
holdout bars with its recorded configuration and seed, so that challenger and champion are
scored on exactly the same bars, fees and metric (:mod:`cryptosweep.judging.deployment`'s
``champion`` criterion).

The champion is re-evaluated under this run's objective settings (its training rounds kept):
where its own settings differ in what shapes the model or the score (labels, fees, slippage,
shorts, the metric, the bar interval), the comparison says so in a note. The manifest is read and
the folder checked (the manifest's digest, each file's SHA-256; the library versions are
:func:`cryptosweep.production.load_model`'s): re-evaluating needs the configuration alone, but
a champion whose folder is not what was saved cannot trade, and fails its keep-gate.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptosweep.core.config import ObjectiveSpec
from cryptosweep.core.errors import UserError
from cryptosweep.production.model import MANIFEST, MODEL_FORMAT, check_saved
from cryptosweep.trading.steps import full_rounds

#: The objective settings whose difference makes the champion's deployed model (or its score)
#: differ from what its re-evaluation under this run's settings measures.
SHAPING_SETTINGS = ("labels", "fees_bps", "slippage_bps", "allow_short", "metric")


@dataclass(frozen=True)
class Champion:
    """A deployed champion: its folder, its manifest and the manifest's SHA-256 (which names
    it in the journal), or why it cannot be read (``error``)."""

    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    digest: str | None = None
    error: str | None = None


def read_champion(champion_dir: str | Path | None) -> Champion | None:
    """The champion deployed at ``champion_dir``; None when none is set or the folder does not
    exist (nothing deployed yet). A folder whose manifest cannot be read or is not a
    ``cryptosweep-model/1`` model gives a :class:`Champion` with ``error``."""
    if champion_dir is None:
        return None
    path = Path(champion_dir)
    if not path.exists():
        return None
    manifest_path = path / MANIFEST
    try:
        data = manifest_path.read_bytes()
        manifest = json.loads(data)
    except (OSError, ValueError) as exc:
        return Champion(path, error=f"{manifest_path} cannot be read: {exc}")
    if not isinstance(manifest, dict) or manifest.get("format") != MODEL_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        return Champion(path, error=f"{manifest_path} is not a {MODEL_FORMAT} manifest "
                                    f"(format {found!r})")
    try:  # what trades is what was saved: a hand-edited manifest would be judged otherwise
        check_saved(path, manifest)
        champion_request(manifest, ObjectiveSpec())
    except UserError as exc:
        return Champion(path, error=f"{manifest_path}: {exc}")
    return Champion(path, manifest, hashlib.sha256(data).hexdigest())


def champion_request(manifest: dict[str, Any], spec: ObjectiveSpec) -> dict[str, Any]:
    """What re-evaluating the champion under ``spec`` takes: ``params`` (model family, entry
    model, trading), ``budget`` (in ``spec``'s units, for the champion's own number of
    training rounds) and ``seed`` (its recorded one)."""
    configuration = manifest.get("configuration")
    if not isinstance(configuration, dict):
        raise UserError("the manifest has no configuration")
    params = configuration.get("params")
    if not isinstance(params, dict) or not {"model", "entry_model", "trading"} <= set(params):
        raise UserError("the manifest's configuration has no params (model, entry_model, "
                        "trading)")
    seed = manifest.get("seed", configuration.get("seed"))
    if not isinstance(seed, int):
        raise UserError("the manifest records no seed")
    return {"params": params, "seed": seed,
            "budget": _rounds(manifest, configuration) / spec.objective.rounds_per_unit}


def _rounds(manifest: dict[str, Any], configuration: dict[str, Any]) -> int:
    """The champion's training rounds: recorded, or its budget in its own spec's units."""
    rounds = (configuration.get("metrics") or {}).get("rounds", manifest.get("rounds"))
    if isinstance(rounds, int) and rounds >= 1:
        return rounds
    budget = configuration.get("budget")
    own = ((manifest.get("objective_spec") or {}).get("objective") or {}).get("rounds_per_unit")
    if not isinstance(budget, int | float) or not isinstance(own, int | float):
        raise UserError("the manifest records neither the rounds nor the budget and "
                        "rounds_per_unit of its model")
    return full_rounds(float(budget), float(own))


def comparability_notes(manifest: dict[str, Any], spec: ObjectiveSpec,
                        bar_interval: str | None) -> list[str]:
    """Where the champion was made under other settings than this run's: one note each."""
    notes = []
    own = (manifest.get("objective_spec") or {}).get("objective") or {}
    current = spec.objective.model_dump(mode="json")
    for key in SHAPING_SETTINGS:
        if key in own and own[key] != current[key]:
            notes.append(f"the champion was made with objective.{key} = {own[key]}, "
                         f"re-evaluated with this run's {current[key]}")
    theirs = (manifest.get("data") or {}).get("bar_interval")
    if theirs and bar_interval and theirs != bar_interval:
        notes.append(f"the champion was trained on {theirs} bars, this run's are "
                     f"{bar_interval}: not comparable")
    return notes


def comparison(champion: Champion, spec: ObjectiveSpec, bar_interval: str | None,
               holdout: dict[str, Any] | None, error: str | None = None) -> dict[str, Any]:
    """The champion's side of the gate's ``champion`` criterion (and the ``champion`` block of
    the decision): who it is, its holdout metrics on this run's bars (or why there are
    none), and the notes on comparability."""
    if champion.error is not None:  # ``unreadable``: the keep-gate counts a failed night
        return {"configuration": None, "seed": None, "source_run": None,
                "manifest_sha256": None, "holdout": None, "error": champion.error,
                "unreadable": True, "notes": []}
    manifest = champion.manifest
    request = champion_request(manifest, spec)
    source = manifest.get("source_run") or (manifest.get("configuration") or {}).get(
        "source_run")
    return {
        "configuration": request["params"], "seed": request["seed"],
        "rounds": full_rounds(request["budget"], spec.objective.rounds_per_unit),
        "source_run": source, "manifest_sha256": champion.digest,
        "holdout": holdout, "error": error,
        "notes": comparability_notes(manifest, spec, bar_interval),
    }
