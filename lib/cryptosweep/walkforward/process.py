"""What trades each out-of-sample segment of a walk-forward when the deployment gate and the
nightly's champion rules run between windows: the walk-forward of the *process* a trader runs,
not of "always trade the latest winner".

Window by window, in time order (a pure function of the windows' records, :func:`step`):

* **approved winner**: the window's gate (:func:`cryptosweep.judging.deployment.decide`, its
  ``deployment`` block) approved the winner: it becomes the champion and trades the segment.
  A window's gate holds the paired test against the champion only when its sweep was given
  one (``deployment.champion`` block); walk-forward windows are not (there is no model folder
  between windows), so approval alone replaces the champion, as the nightly's rotation does.
* **rejected winner traded** (``walk_forward.trade_rejected: true``): the winner trades whatever
  the gate said (the behaviour before the process existed); the champion is left as it is.
* **kept champion**: the winner was rejected and a champion exists: the champion (trained on
  its own window's in-sample bars, untouched since) trades the segment, unless the keep-gate
  demotes it.
* **demoted**: the keep-gate (:func:`cryptosweep.judging.deployment.keep_champion`,
  ``deployment.min_holdout_score`` and ``deployment.demote_after``) failed ``demote_after``
  windows in a row: no champion any more, flat. The champion's re-evaluation the keep-gate
  reads is the window's ``deployment.champion`` block when the window's sweep re-evaluated
  one, else the champion's own score on the last segment it traded (its live track, known
  before the next segment starts); a champion that did not trade the previous segment is not
  re-evaluated (neither fails nor passes).
* **flat: no champion**: the winner was rejected and nothing was ever approved (or the last
  champion was demoted).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptosweep.core.formatting import metric_name, signed
from cryptosweep.core.vocabulary import APPROVED
from cryptosweep.judging.deployment import keep_champion

#: What traded a segment, and why (``process.kind`` of a window row).
APPROVED_WINNER = "approved_winner"
REJECTED_TRADED = "rejected_winner_traded"
KEPT_CHAMPION = "kept_champion"
DEMOTED = "demoted"
NO_CHAMPION = "no_champion"

KIND_TEXT = {
    APPROVED_WINNER: "approved winner",
    REJECTED_TRADED: "rejected winner traded (walk_forward.trade_rejected)",
    KEPT_CHAMPION: "kept champion",
    DEMOTED: "flat: champion demoted",
    NO_CHAMPION: "flat: no champion",
}


@dataclass
class ProcessState:
    """Between windows: the champion's window (None: none deployed), the champion's score on
    the last segment it traded (None: it did not trade the previous one) and the keep-gate's
    history (``keep_champion``'s records: ``promoted``, ``decision``, ``keep``)."""

    champion: int | None = None
    champion_score: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def step(state: ProcessState, index: int, record: Mapping[str, Any], *, trade_rejected: bool,
         metric: str, min_score: float, demote_after: int) -> dict[str, Any]:
    """Window ``index``'s decision (``record``: its walk-forward record, with ``winner`` and
    ``deployment``); updates ``state``. Returns ``{"kind", "trades": "winner" | "champion" |
    "flat", "champion_window", "text", "keep"}``."""
    deployment = record.get("deployment") or {}
    has_winner = bool(record.get("winner"))
    approved = has_winner and deployment.get("decision") == APPROVED
    keep, on_segment = None, False
    if approved:
        state.champion, state.champion_score = index, None
        state.history.append({"promoted": True, "decision": APPROVED})
        kind, trades = APPROVED_WINNER, "winner"
    elif trade_rejected and has_winner:
        kind, trades = REJECTED_TRADED, "winner"
        state.champion_score = None  # the champion did not trade this segment
        state.history.append({"promoted": False, "decision": deployment.get("decision")})
    elif state.champion is not None:
        reevaluation = deployment.get("champion")
        on_segment = reevaluation is None
        if reevaluation is None and state.champion_score is not None:
            reevaluation = {"holdout": {f"holdout_{metric}": state.champion_score}}
        keep = keep_champion(state.history, reevaluation, metric, min_score, demote_after)
        state.history.append({"promoted": False, "decision": deployment.get("decision"),
                              "keep": keep})
        if keep["demote"]:
            state.history.append({"promoted": False, "decision": "demoted"})
            state.champion, state.champion_score = None, None
            kind, trades = DEMOTED, "flat"
        else:
            kind, trades = KEPT_CHAMPION, "champion"
    else:
        kind, trades = NO_CHAMPION, "flat"
        state.history.append({"promoted": False, "decision": deployment.get("decision")})
    text = KIND_TEXT[kind]
    if kind == KEPT_CHAMPION:
        text += f" (window {state.champion})"
    if keep is not None and keep["passed"] is not None:
        text += f"; {_keep_text(keep, on_segment, metric, min_score, demote_after)}"
    return {"kind": kind, "trades": trades,
            "champion_window": state.champion if trades != "flat" else None,
            "text": text, "keep": keep}


def traded_score(state: ProcessState, decision: Mapping[str, Any], score: float | None) -> None:
    """After the segment: remember the champion's score on it (``score``: the traded
    segment's ``objective.metric``) when the champion traded it."""
    if decision["trades"] == "champion" or decision["kind"] == APPROVED_WINNER:
        state.champion_score = score
    else:
        state.champion_score = None


def _keep_text(keep: Mapping[str, Any], on_segment: bool, metric: str, min_score: float,
               demote_after: int) -> str:
    """The keep-gate's verdict in a walk-forward's words. The nightly's (``keep["text"]``)
    called the champion's score on the last segment it traded its "own holdout" score and
    counted "night(s) in a row": the report then set a score the window's sweep never
    measured beside that champion's real holdout score."""
    where = "on the last segment it traded" if on_segment else "on this window's holdout"
    text = (f"champion's {metric_name(metric)} {where} {signed(keep['score'])} "
            f"{'>=' if keep['passed'] else '<'} {min_score:g}")
    if not keep["passed"]:
        text += (f" ({keep['failures_in_a_row']} window(s) in a row"
                 f"{'; demoted' if keep['demote'] else f' of {demote_after}'})")
    return text
