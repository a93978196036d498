"""The nightly job: run a sweep from cron or systemd, report, publish, tidy up and notify.

One module per concern — :mod:`.runs` (run folders, what tonight does), :mod:`.gpus`,
:mod:`.publishing`, :mod:`.promotion` (the champion: trained and rotated in when the deployment
gate approves), :mod:`.retention`, :mod:`.notifications` — and :mod:`.pipeline`, which runs them
in order. ``scheduled/nightly_sweep.sh`` holds the lock and starts
``python -m cryptosweep.nightly``.

Only run folders named as the night names them, ``nightly_<UTC time>``
(``nightly_20261127_020000``), are the nightly's: planning and retention never touch another
folder of the reports directory.
"""

from __future__ import annotations

from cryptosweep.nightly.gpus import GPU_POLICIES, GpuChoice, detect_gpus, resolve_gpus
from cryptosweep.nightly.notifications import (
    EXIT_REASONS,
    NOTIFY_TIMEOUT_S,
    SUMMARY_FILE,
    build_summary,
    notify,
    run_notify_command,
    send_webhook,
    summary_text,
)
from cryptosweep.nightly.promotion import (
    Promotion,
    decide_and_act,
    demote_champion,
    last_demotion,
    read_history,
    recover,
)
from cryptosweep.nightly.publishing import (
    BEST_CONFIGS_LATEST,
    LATEST_LINK,
    publish,
    update_latest_link,
)
from cryptosweep.nightly.retention import compress_old_logs, housekeep, select_for_deletion
from cryptosweep.nightly.runs import (
    RUN_PREFIX,
    Plan,
    RunState,
    check_sweep,
    notebook_error,
    plan_run,
    read_meta,
    run_status,
    scan_runs,
)

__all__ = [
    "BEST_CONFIGS_LATEST", "EXIT_REASONS", "GPU_POLICIES", "LATEST_LINK", "NOTIFY_TIMEOUT_S",
    "RUN_PREFIX", "SUMMARY_FILE", "GpuChoice", "Plan", "Promotion", "RunState", "build_summary",
    "check_sweep", "compress_old_logs", "decide_and_act", "demote_champion", "detect_gpus",
    "housekeep", "last_demotion",
    "notebook_error", "notify", "plan_run", "publish", "read_history", "read_meta", "recover",
    "resolve_gpus", "run_notify_command", "run_status", "scan_runs", "select_for_deletion",
    "send_webhook", "summary_text", "update_latest_link",
]  # fmt: skip
