"""What the nightly keeps: the newest ``RUN_RETENTION`` run folders (never an unfinished one,
``latest``'s target or tonight's), and run logs gzipped after ``LOG_RETENTION_DAYS``."""

from __future__ import annotations

import gzip
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptosweep.core.errors import ResumeError
from cryptosweep.core.files import write_with
from cryptosweep.core.locking import RunLock
from cryptosweep.nightly.publishing import LATEST_LINK
from cryptosweep.nightly.runs import RUN_PREFIX, RunState, scan_runs
from cryptosweep.reporting.index_page import INDEX_FILE

#: The suffix of a run folder being deleted (``.<run>.deleting``), out of the runs' sight.
DELETING = ".deleting"


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
    ``older_than_days`` ago (the ``.gz`` keeps its mtime; an existing ``.gz`` of the same log
    keeps its content, the log appended as a new member). Returns the ``.gz`` files written."""
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
            # A log written again after its .gz (a run resumed by hand, weeks later) is added
            # to it as a member of its own (zcat and gzip.open read them in order); replacing
            # the .gz lost the earlier nights' lines.
            earlier = target if target.is_file() and not target.is_symlink() else None
            if earlier is not None and _ends_with(earlier, log):
                # Compressed already: a kill came between writing the .gz and removing the
                # log, whose lines the next pass appended a second time.
                log.unlink()
                continue

            def compress(tmp: Path, log: Path = log, mtime: float = stat.st_mtime,
                         earlier: Path | None = earlier) -> None:
                with open(tmp, "wb") as raw:
                    if earlier is not None:
                        with open(earlier, "rb") as old:
                            shutil.copyfileobj(old, raw)
                    with gzip.GzipFile(filename=log.name, mode="wb", fileobj=raw,
                                       mtime=int(mtime)) as out, open(log, "rb") as src:
                        shutil.copyfileobj(src, out)

            write_with(target, compress, mode=stat.st_mode & 0o777)
            os.utime(target, (stat.st_atime, stat.st_mtime))
            log.unlink()
            written.append(target)
    return written


def _ends_with(compressed: Path, log: Path) -> bool:
    """Whether the gzip file ``compressed`` ends with the bytes of ``log`` (a damaged one does
    not)."""
    try:
        content = log.read_bytes()
        with gzip.open(compressed, "rb") as members:
            whole = members.read()
    except (OSError, EOFError):
        return False
    return bool(content) and whole.endswith(content)


def housekeep(reports_dir: Path, log_days: float, keep: int, current: Path | None = None,
              prefix: str = RUN_PREFIX, now: float | None = None) -> list[str]:
    """Compress old logs and delete run folders beyond the newest ``keep``; returns log lines.
    Never touches the current run, ``latest``'s target, an unfinished run, or a run folder
    whose lock another process holds."""
    reports_dir = Path(reports_dir)
    for leftover in reports_dir.glob(f".{prefix}*{DELETING}"):  # a deletion a kill stopped
        shutil.rmtree(leftover, ignore_errors=True)
    runs = scan_runs(reports_dir, prefix)
    protected = [p for p in (current,) if p is not None]
    link = reports_dir / LATEST_LINK
    if link.is_symlink():
        protected.append(link.resolve())
    lines = []
    gone = set()
    for run in select_for_deletion(runs, keep, protected):
        # A run another process is writing (``cryptosweep run --resume`` by hand of an old
        # run whose journal still says failed) holds its folder's lock: deleting it pulled the
        # folder from under that sweep. Held while deleting, so that none starts meanwhile.
        try:
            with RunLock.acquire(run.path):
                # Out of sight first (one rename), then deleted: a kill in the middle of
                # deleting left a folder with its journal (status complete) and without its
                # results, which no later night deleted (no longer finished: kept as
                # unfinished, for ever).
                doomed = run.path.with_name(f".{run.path.name}{DELETING}")
                os.rename(run.path, doomed)
                shutil.rmtree(doomed)
        except ResumeError:
            lines.append(f"INFO retention: kept {run.path.name}: another process is writing "
                         "it")
            continue
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
    if gone and (reports_dir / INDEX_FILE).is_file():
        from cryptosweep.reporting.report import write_index

        try:
            write_index(reports_dir)
            lines.append("INFO retention: index.html regenerated without the deleted runs")
        except Exception as exc:  # the index is a convenience; never fail the night for it
            lines.append(f"WARNING retention: index.html not regenerated: {exc}")
    return lines
