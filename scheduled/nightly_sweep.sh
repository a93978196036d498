#!/usr/bin/env bash
# The nightly sweep, for cron or systemd: holds the lock, sets the environment, and runs the job
# (`python -m cryptosweep.nightly`: validate, run or resume notebooks/sweep.ipynb with papermill,
# build the report, publish reports/latest and models/best_configs_latest.json, compress and
# prune old runs, notify). See scheduled/README.md.
#
#   scheduled/nightly_sweep.sh [CONFIG]
#   scheduled/nightly_sweep.sh --check [CONFIG]   # settings, config, data, models folder only
#
# Works from any directory with cron's bare environment: it uses <repo>/.venv by absolute path
# and needs no TTY. `scheduled/nightly_sweep.sh --help` lists the settings (environment
# variables) and exit codes. A second run while one holds the lock exits 0 at once.
set -euo pipefail
umask 022

REPO="$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/.." && pwd -P)"
VENV="$REPO/.venv"
PY="$VENV/bin/python"

die() { echo "$(date '+%Y-%m-%d %H:%M:%S,%3N') ERROR nightly: $1" >&2; exit 2; }
[[ -x $PY ]] || die "no virtualenv at $VENV (create it with: make -C $REPO venv)"
command -v flock >/dev/null || die "flock (util-linux) is not installed"

export PATH="$VENV/bin:/usr/local/bin:/usr/bin:/bin"
# PYTHONHASHSEED is fixed for the kernel too (cryptosweep does not depend on it, but then
# gpu_repro_*.json has nothing to report under not_set).
export PYTHONUNBUFFERED=1 PYTHONHASHSEED=0 MPLBACKEND=Agg

case "${1:-}" in
    -h | --help) exec "$PY" -m cryptosweep.nightly --help ;;
    --check) exec "$PY" -m cryptosweep.nightly "$@" ;; # the checks only: no lock, no folder
esac

# "reports": the shell's copy of cryptosweep.core.paths.REPORTS_DIR (the lock lives in the
# folder before Python starts); change both together.
REPORTS_DIR="${REPORTS_DIR:-reports}"
# "~/reports" is the home folder's, as Python (os.path.expanduser) and MODELS_DIR take it; it
# was "<repo>/~/reports" here, while --check, started before, checked the home folder's.
if [[ $REPORTS_DIR == "~"* ]]; then
    home='import os, sys; print(os.path.expanduser(sys.argv[1]))'
    REPORTS_DIR="$("$PY" -c "$home" "$REPORTS_DIR")"
fi
[[ $REPORTS_DIR == /* ]] || REPORTS_DIR="$REPO/$REPORTS_DIR"
export REPORTS_DIR
LOCK="$REPORTS_DIR/.nightly.lock"
already_running() {
    echo "$(date '+%Y-%m-%d %H:%M:%S,%3N') INFO nightly: already running (lock $LOCK is held); nothing to do"
    exit 0
}
# A run in progress is answered at once, whatever tonight's settings; then the settings, config,
# data and models folder are checked (exit 2, notified) before the lock or a folder is created.
if [[ -f $LOCK ]]; then
    held=0
    flock -n -E 75 "$LOCK" true || held=$?
    if ((held == 75)); then already_running; fi
fi
checked=0
check_output="$("$PY" -m cryptosweep.nightly --check "$@" 2>&1)" || checked=$?
if ((checked)); then
    printf '%s\n' "$check_output"
    exit "$checked"
fi
mkdir -p "$REPORTS_DIR" || die "cannot create $REPORTS_DIR"
# (A folder of that name, or a file another user made, ended the script in bash's own line, exit 1;
# the braces keep that line off stderr, fd 9 stays open.)
{ exec 9>>"$LOCK"; } 2>/dev/null || die "cannot open the lock file $LOCK for writing: move it away, or make it writable"
# Held by another night (exit 75) is "already running"; any other failure (a file system
# without flock: "No locks available") was taken for it too, and every night did nothing, exit 0.
locked=0
flock -n -E 75 9 || locked=$?
if ((locked == 75)); then already_running; fi
if ((locked)); then
    echo "$(date '+%Y-%m-%d %H:%M:%S,%3N') ERROR nightly: cannot lock $LOCK (flock exit" \
        "$locked): the file system of REPORTS_DIR must support flock" >&2
    exit 6
fi
# The job inherits the lock (fd 9) and holds it until it exits; signals reach it directly.
exec "$PY" -m cryptosweep.nightly "$@"
