"""Progress of a sweep: a tqdm bar (trials done, best so far, ETA) or plain log lines.

"Best" is the best score among evaluations at the full budget only, the same rule as
:mod:`cryptosweep.records.ranking`: with Hyperband a configuration scored at a low rung is not
comparable with one trained for the full budget, so a high low-rung score is never shown as
the sweep's best. Until the first full-budget evaluation finishes, the best is ``-``.

Under papermill (``show_progress=False``) a bar would bloat the notebook with widget or carriage
return output, so it logs one line every ~10% instead. Interactive notebooks get ``tqdm.auto``.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("cryptosweep.execution.progress")

#: Budgets within this of the full budget count as the full budget (budgets are floats).
_BUDGET_TOLERANCE = 1e-9


class Progress:
    """Counts finished evaluations; shows them as a bar or as log lines every ~10%."""

    def __init__(self, total: int | None, show_bar: bool, already_done: int = 0,
                 full_budget: float | None = None) -> None:
        self.total, self.done, self.failed = total, already_done, 0
        self.full_budget = full_budget
        self.best: float | None = None
        self._started = time.monotonic()
        self._started_done = already_done
        self._next_log_fraction = 0.1
        self._bar = None
        if show_bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=already_done, unit="trial", desc="sweep",
                             dynamic_ncols=True)

    def at_full_budget(self, budget: float | None) -> bool:
        """Whether an evaluation of ``budget`` competes for best (every budget does when the
        full budget is unknown)."""
        return (self.full_budget is None or budget is None
                or float(budget) >= self.full_budget - _BUDGET_TOLERANCE)

    def observe(self, score: float | None, budget: float | None) -> None:
        """Take a score into the best (when at the full budget) without counting it as done:
        what resume does for evaluations the journal already holds."""
        if score is not None and self.at_full_budget(budget) and (
                self.best is None or score > self.best):
            self.best = score

    def update(self, score: float | None, budget: float | None = None,
               failed: bool = False) -> None:
        self.done += 1
        self.failed += int(failed)
        self.observe(None if failed else score, budget)
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix_str(self.postfix(), refresh=False)
        elif self.total:
            fraction = self.done / self.total
            if fraction + 1e-12 >= self._next_log_fraction or self.done == self.total:
                log.info("progress: %d/%d evaluations (%.0f%%), %s, failed %d, ETA %s",
                         self.done, self.total, 100 * fraction, self.best_text(), self.failed,
                         self.eta_text())
                while self._next_log_fraction <= fraction + 1e-12:
                    self._next_log_fraction += 0.1

    def best_text(self) -> str:
        """``best at full budget (9) 0.6680``: what the best is, with its number."""
        where = "" if self.full_budget is None else f" ({self.full_budget:g})"
        return f"best at full budget{where} {_fmt(self.best)}"

    def postfix(self) -> str:
        return f"{self.best_text()}, failed {self.failed}"

    def eta_text(self) -> str:
        ran = self.done - self._started_done
        if not self.total or ran <= 0:
            return "?"
        remaining = (time.monotonic() - self._started) / ran * (self.total - self.done)
        return time.strftime("%H:%M:%S", time.gmtime(max(0.0, remaining)))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
