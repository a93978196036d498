#!/usr/bin/env bash
# The nightly sweep, for cron or systemd: validate, (resume or) run notebooks/sweep.ipynb with
# papermill, build the report, publish reports/latest and models/best_configs_latest.json,
# compress and prune old runs, notify. See scheduled/README.md.
#
#   scheduled/nightly_sweep.sh [CONFIG]
#
# Works from any directory with cron's bare environment: it uses <repo>/.venv and absolute
# paths only, and needs no TTY. Settings (environment):
#   SWEEP_CONFIG        config when no CONFIG argument (default parameters/sweep_config_template.json)
#   SWEEP_SEED          master seed (default 123456)
#   REPORTS_DIR         run folders, index.html, latest (default <repo>/reports)
#   MODELS_DIR          best_configs_latest.json (default <repo>/models)
#   GPU_IDS             GPUs to use, e.g. 0,1 (empty: CPU under "use", every GPU found otherwise)
#   GPU_POLICY          use | fallback | require (default fallback)
#   LOG_RETENTION_DAYS  gzip run logs older than this (default 14)
#   RUN_RETENTION       keep the newest N nightly run folders (default 30)
#   SWEEP_TIMEOUT       seconds the sweep may take; 0 = no limit (default 0)
#   NOTIFY_WEBHOOK_URL  POST the JSON summary here (Slack-compatible); never logged
#   NOTIFY_COMMAND      run with `sh -c`, the JSON summary on stdin
#   NOTIFY_TIMEOUT      seconds per notifier (default 5)
# Relative CONFIG paths: the current directory if the file is there, else the repository.
# Relative REPORTS_DIR / MODELS_DIR: the repository.
# Exit codes: 0 ok (or already running), 2 config or data error, 3 GPU required but absent,
# 4 sweep failed, 5 report failed.
set -euo pipefail
umask 022

REPO="$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/.." && pwd -P)"
VENV="$REPO/.venv"
PY="$VENV/bin/python"
CALLER_DIR="$(pwd -P 2>/dev/null || echo /)"
cd "$REPO"
export PATH="$VENV/bin:/usr/local/bin:/usr/bin:/bin"
# PYTHONHASHSEED is fixed for the kernel too (cryptosweep does not depend on it, but then
# gpu_repro_*.json has nothing to report under not_set).
export PYTHONUNBUFFERED=1 PYTHONHASHSEED=0 MPLBACKEND=Agg

ts() { date '+%Y-%m-%d %H:%M:%S,%3N'; }
die_early() { echo "$(ts) ERROR nightly: $2" >&2; exit "$1"; }

case "${1:-}" in -h | --help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
[[ $# -le 1 ]] || die_early 2 "usage: $0 [CONFIG]"
[[ -x $PY ]] || die_early 2 "no virtualenv at $VENV (create it with: make -C $REPO venv)"
command -v flock >/dev/null || die_early 2 "flock (util-linux) is not installed"

abs_dir() { if [[ $1 == /* ]]; then echo "$1"; else echo "$REPO/$1"; fi; }
CONFIG="${1:-${SWEEP_CONFIG:-parameters/sweep_config_template.json}}"
if [[ $CONFIG != /* ]]; then
    if [[ -e "$CALLER_DIR/$CONFIG" ]]; then CONFIG="$CALLER_DIR/$CONFIG"; else CONFIG="$REPO/$CONFIG"; fi
fi
SWEEP_SEED="${SWEEP_SEED:-123456}"
REPORTS_DIR="$(abs_dir "${REPORTS_DIR:-reports}")"
MODELS_DIR="$(abs_dir "${MODELS_DIR:-models}")"
GPU_IDS="${GPU_IDS:-}"
GPU_POLICY="${GPU_POLICY:-fallback}"
LOG_RETENTION_DAYS="${LOG_RETENTION_DAYS:-14}"
RUN_RETENTION="${RUN_RETENTION:-30}"
SWEEP_TIMEOUT="${SWEEP_TIMEOUT:-0}"
# Secrets stay in this shell: no child but the notifier ever sees them.
WEBHOOK="${NOTIFY_WEBHOOK_URL:-}"
NOTIFY_CMD="${NOTIFY_COMMAND:-}"
unset NOTIFY_WEBHOOK_URL NOTIFY_COMMAND

mkdir -p "$REPORTS_DIR" "$MODELS_DIR" || die_early 2 "cannot create $REPORTS_DIR or $MODELS_DIR"
LOCK="$REPORTS_DIR/.nightly.lock"
exec 9>>"$LOCK"
if ! flock -n 9; then
    echo "$(ts) INFO nightly: already running (lock $LOCK is held); nothing to do"
    exit 0
fi

# ---------------------------------------------------------------- logging, exit and notification
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cryptosweep-nightly.XXXXXX")"
export JUPYTER_RUNTIME_DIR="$WORK/jupyter-runtime"   # private kernel connection files
if [[ -z ${HOME:-} || ! -w ${HOME:-/nonexistent} ]]; then export HOME="$WORK/home"; mkdir -p "$HOME"; fi
RUN_DIR="" RUN_LOG="" FAIL_MSG="" PENDING=()

log() {  # LEVEL message: to stdout and the run's sweep_output.log (buffered until it exists)
    local line
    line="$(ts) $1 nightly: ${*:2}"
    printf '%s\n' "$line"
    if [[ -n $RUN_LOG ]]; then printf '%s\n' "$line" >>"$RUN_LOG" || true; else PENDING+=("$line"); fi
}

attach_run_log() {
    mkdir -p "$RUN_DIR/notebooks"
    RUN_LOG="$RUN_DIR/sweep_output.log"
    if ((${#PENDING[@]})); then printf '%s\n' "${PENDING[@]}" >>"$RUN_LOG"; fi
    PENDING=()
}

HELPER_OUT="" HELPER_ERR=""
helper() {  # python -m cryptosweep.nightly ARGS: stdout -> HELPER_OUT, its "LEVEL msg" lines
    local rc=0 level msg  # are logged, except that a failure's ERROR lines go to HELPER_ERR
    HELPER_ERR=""
    HELPER_OUT="$("$PY" -m cryptosweep.nightly "$@" 2>"$WORK/helper.err")" || rc=$?
    while read -r level msg; do
        case "$level" in
            INFO | WARNING) log "$level" "$msg" ;;
            ERROR) if ((rc)); then HELPER_ERR="${HELPER_ERR:+$HELPER_ERR; }$msg"; else log ERROR "$msg"; fi ;;
            *) log WARNING "$level $msg" ;;
        esac
    done <"$WORK/helper.err"
    if ((rc)) && [[ -z $HELPER_ERR ]]; then HELPER_ERR="cryptosweep.nightly $1 exited $rc"; fi
    return "$rc"
}

fail() {  # CODE message
    FAIL_MSG="$2"
    log ERROR "$2"
    exit "$1"
}

finish() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if ((rc != 0)) && [[ -z $FAIL_MSG ]]; then
        FAIL_MSG="stopped unexpectedly (exit $rc)"
        log ERROR "$FAIL_MSG"
    fi
    if [[ $LOG_RETENTION_DAYS =~ ^[0-9]+$ && $RUN_RETENTION =~ ^[0-9]+$ ]]; then
        helper housekeep --reports-dir "$REPORTS_DIR" --log-days "$LOG_RETENTION_DAYS" \
            --keep "$RUN_RETENTION" ${RUN_DIR:+--current "$RUN_DIR"} \
            || log WARNING "housekeeping failed: $HELPER_ERR"
    fi
    local notify_args=(notify --exit-code "$rc" --message "$FAIL_MSG")
    [[ -n $RUN_DIR && -d $RUN_DIR ]] && notify_args+=(--run-dir "$RUN_DIR")
    NOTIFY_WEBHOOK_URL="$WEBHOOK" NOTIFY_COMMAND="$NOTIFY_CMD" helper "${notify_args[@]}" 9>&- \
        || log WARNING "notification failed: $HELPER_ERR"
    log INFO "finished with exit code $rc${RUN_DIR:+ ($RUN_DIR)}"
    rm -rf "$WORK"
    exit "$rc"
}
trap finish EXIT
trap 'FAIL_MSG="interrupted (SIGTERM)"; log ERROR "$FAIL_MSG"; exit 143' TERM
trap 'FAIL_MSG="interrupted (SIGINT)"; log ERROR "$FAIL_MSG"; exit 130' INT

# -------------------------------------------------------------------------------------- the job
log INFO "start: config $CONFIG, seed $SWEEP_SEED, reports $REPORTS_DIR, models $MODELS_DIR"
for var in SWEEP_SEED LOG_RETENTION_DAYS RUN_RETENTION SWEEP_TIMEOUT; do
    [[ ${!var} =~ ^[0-9]+$ ]] || fail 2 "$var must be a whole number, got '${!var}'"
done

out="$("$VENV/bin/cryptosweep" validate --config "$CONFIG" 2>&1)" || fail 2 "invalid config or data: $(
    tail -n1 <<<"$out" | sed 's/^cryptosweep: error: //')"
log INFO "validate: $(tail -n1 <<<"$out")"

helper gpus --policy "$GPU_POLICY" --ids "$GPU_IDS" || fail "$?" "$HELPER_ERR"
GPU_LIST="$HELPER_OUT"

helper plan --reports-dir "$REPORTS_DIR" --config "$CONFIG" --seed "$SWEEP_SEED" \
    || fail "$?" "$HELPER_ERR"
MODE="${HELPER_OUT%%$'\t'*}"
if [[ $MODE == new ]]; then
    RUN_DIR="$REPORTS_DIR/nightly_$(date -u +%Y%m%d_%H%M%S)"
else
    RUN_DIR="${HELPER_OUT#*$'\t'}"
fi
attach_run_log
case "$MODE" in
    new) log INFO "new run: $RUN_DIR" ;;
    resume) log INFO "resuming the sweep: $RUN_DIR" ;;
    report) log INFO "report only: $RUN_DIR" ;;
    *) fail 1 "unknown plan '$HELPER_OUT'" ;;
esac

if [[ $MODE != report ]]; then
    NOTEBOOK="$RUN_DIR/notebooks/sweep.ipynb"
    pm_args=(-k cryptosweep --log-output --no-progress-bar --cwd "$REPO"
             -r config_path "$CONFIG" -p seed "$SWEEP_SEED" -r gpu_ids "$GPU_LIST"
             -r log_dir "$REPORTS_DIR" -r run_name "${RUN_DIR##*/}" -p show_progress False)
    [[ $MODE == resume ]] && pm_args+=(-r resume "$RUN_DIR")
    ((SWEEP_TIMEOUT > 0)) && pm_args+=(--execution-timeout "$SWEEP_TIMEOUT")
    log INFO "sweep: papermill notebooks/sweep.ipynb -> $NOTEBOOK (GPUs: ${GPU_LIST:-none, CPU})"
    pm_status=0
    "$VENV/bin/papermill" "${pm_args[@]}" "$REPO/notebooks/sweep.ipynb" "$NOTEBOOK" 2>&1 || pm_status=$?
    helper check-sweep "$RUN_DIR" --notebook "$NOTEBOOK" --papermill-status "$pm_status" \
        || fail "$?" "$HELPER_ERR"
fi

log INFO "report: cryptosweep report $RUN_DIR"
rep_status=0
"$VENV/bin/cryptosweep" report "$RUN_DIR" 2>&1 | tee "$WORK/report.out" || rep_status=$?
if ((rep_status != 0)) || [[ ! -f $RUN_DIR/report.html ]]; then
    why="$(grep -m1 'cryptosweep: error:' "$WORK/report.out" || true)"
    fail 5 "report failed (exit $rep_status)${why:+: ${why#cryptosweep: error: }}"
fi

helper publish "$RUN_DIR" --reports-dir "$REPORTS_DIR" --models-dir "$MODELS_DIR" \
    || fail 5 "publishing latest / best_configs_latest.json failed: $HELPER_ERR"
log INFO "success: $RUN_DIR/report.html"
