"""Progress of a sweep: a tqdm bar (trials done, best so far, ETA) or plain log lines.

Under papermill (``show_progress=False``) a bar would bloat the notebook with widget or carriage
return output, so it logs one line every ~10% instead. Interactive notebooks get ``tqdm.auto``.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("cryptosweep.progress")


class Progress:
    """Counts finished evaluations; shows them as a bar or as log lines every ~10%."""

    def __init__(self, total: int | None, show_bar: bool, already_done: int = 0) -> None:
        self.total, self.done, self.failed = total, already_done, 0
        self.best: float | None = None
        self._started = time.monotonic()
        self._started_done = already_done
        self._next_log_fraction = 0.1
        self._bar = None
        if show_bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=already_done, unit="trial", desc="sweep",
                             dynamic_ncols=True)

    def update(self, score: float | None, failed: bool = False) -> None:
        self.done += 1
        self.failed += int(failed)
        if score is not None and (self.best is None or score > self.best):
            self.best = score
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(best=_fmt(self.best), failed=self.failed, refresh=False)
        elif self.total:
            fraction = self.done / self.total
            if fraction + 1e-12 >= self._next_log_fraction or self.done == self.total:
                log.info("progress: %d/%d evaluations (%.0f%%), best %s, failed %d, ETA %s",
                         self.done, self.total, 100 * fraction, _fmt(self.best), self.failed,
                         self.eta_text())
                while self._next_log_fraction <= fraction + 1e-12:
                    self._next_log_fraction += 0.1

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
