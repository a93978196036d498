"""The ``cryptosweep`` command (also ``python -m cryptosweep``): a thin layer over the API.

Exit codes (:mod:`cryptosweep.core.errors`): 0 ok, 2 bad input (config, data, flags, paths), 3 GPUs
asked for but absent, 4 the sweep stopped itself (too many failed trials), 5 the report failed,
6 the machine failed the sweep (disk full, I/O error; resume once fixed), 130 interrupted
(Ctrl-C), 143 terminated (SIGTERM). A user error prints one line,
``cryptosweep: error: ...``, and no traceback; an interruption prints the command that resumes.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptosweep.core.errors import (
    EXIT_USAGE,
    CryptosweepError,
    InfrastructureError,
    SweepInterrupted,
    UserError,
    sigterm_interrupts,
)
from cryptosweep.core.paths import KERNEL, SWEEP_LOG_DIR, WALKFORWARD_LOG_DIR
from cryptosweep.core.version import __version__
from cryptosweep.logs import configure_logging
from cryptosweep.reporting.notebook_imports import skip_iri_grammars

DESCRIPTION = "Reproducible hyperparameter sweeps for crypto trading models."
EPILOG = """exit codes: 0 ok, 2 bad input (config, data, flags, paths), 3 GPUs asked for but
absent, 4 the sweep stopped itself, 5 the report failed, 6 the machine failed the sweep (disk
full, I/O error: fix it, then --resume), 130 interrupted, 143 terminated.
Each command is also `python -m cryptosweep COMMAND`; see README.md."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and still exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"cryptosweep: error: {message} (see {self.prog} --help)\n")


def _gpu_ids(text: str) -> list[int]:
    from cryptosweep.execution.executors import parse_gpu_ids

    try:
        ids = parse_gpu_ids(text)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--gpu-ids: ")) from None
    if ids is None:
        raise argparse.ArgumentTypeError("expected GPU indices like 0,1")
    return ids


def _non_negative(text: str) -> int:
    """A whole number >= 0 in ASCII digits (:func:`~cryptosweep.core.strict.whole_number`)."""
    from cryptosweep.core.strict import whole_number

    try:
        value = whole_number(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {value}")
    return value


def _seed(text: str) -> int:
    from cryptosweep.core.settings import MAX_SEED

    value = _non_negative(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(
            f"expected a whole number in [0, {MAX_SEED}], got {value}")
    return value


def _workers(text: str) -> int:
    from cryptosweep.core.settings import MAX_WORKERS

    value = _non_negative(text)
    if value > MAX_WORKERS:
        raise argparse.ArgumentTypeError(
            f"expected a whole number in [0, {MAX_WORKERS}], got {value}")
    return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _add_sweep_arguments(parser: argparse.ArgumentParser, config_help: str,
                         workers_help: str) -> None:
    """What a sweep is made of and where it runs, the same for ``run`` and ``walkforward``:
    ``--config --set --data --seed`` (one seed rule) and ``--gpu-ids --workers
    --scheduler-address``."""
    parser.add_argument("--config", help=config_help)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a config value (dotted key; repeatable)")
    parser.add_argument("--data", help="OHLCV file or folder (overrides data.path)")
    parser.add_argument("--seed", type=_seed,
                        help="master seed (default: the config's seed, else 123456)")
    parser.add_argument("--gpu-ids", type=_gpu_ids, help="GPUs to use, e.g. 0,1,2,3")
    parser.add_argument("--workers", type=_workers, help=workers_help)
    parser.add_argument("--scheduler-address", help="existing dask scheduler, tcp://HOST:PORT")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cryptosweep", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"cryptosweep {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                     metavar="COMMAND")

    run = commands.add_parser("run", help="run or resume a sweep")
    _add_sweep_arguments(run, "sweep configuration (JSON or YAML)",
                         "CPU worker processes (0: in-process; default: one per core)")
    run.add_argument("--log-dir", help=f"where run folders go (default: {SWEEP_LOG_DIR})")
    run.add_argument("--run-name", help="run folder name (default: <config name>_<UTC time>)")
    run.add_argument("--resume", metavar="RUN_DIR_OR_DB", help="continue an interrupted run")
    run.add_argument("--log-level", default="INFO", choices=LOG_LEVELS, type=str.upper,
                     help="DEBUG adds a line per evaluation submitted and finished")
    run.add_argument("--no-progress", action="store_true", help="log lines instead of a bar")

    validate = commands.add_parser(
        "validate", help="check a config and its data without running anything (exit 2 if bad)")
    validate.add_argument("--config", required=True, help="sweep configuration")
    validate.add_argument("--set", dest="overrides", action="append", default=[],
                          metavar="KEY=VALUE", help="override a config value (repeatable)")
    validate.add_argument("--data", help="OHLCV file or folder (overrides data.path)")

    report = commands.add_parser(
        "report", help="run the analysis notebook on a finished run: report.html + index.html "
        "(a walk-forward folder: its walk-forward report)")
    report.add_argument("run_dir", help="a finished run folder (or walk-forward folder)")
    report.add_argument("--kernel", default=KERNEL, help="Jupyter kernel name")
    report.add_argument("--no-index", action="store_true",
                        help="do not regenerate index.html of the run's parent folder")

    export = commands.add_parser(
        "export-optuna", help="write a run's trials as an Optuna study (SQLite)")
    export.add_argument("run_dir", help="a run folder")
    export.add_argument("--output", help="the SQLite file (default RUN_DIR/optuna.db)")

    _add_production_commands(commands)
    _add_walkforward_command(commands)
    _add_data_command(commands)

    check = commands.add_parser(
        "check-gpu", help="GPUs, driver and CUDA versions, free memory, framework support")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _add_walkforward_command(commands: argparse._SubParsersAction) -> None:
    walk = commands.add_parser(
        "walkforward", help="walk-forward optimisation: re-optimise in each window, trade the "
        "next segment, judge the concatenated out-of-sample track")
    _add_sweep_arguments(walk, "sweep configuration with a walk_forward section",
                         "CPU worker processes shared by the windows (0: in-process, windows "
                         "one after another; default: one per core)")
    walk.add_argument("--log-dir",
                      help=f"where walk-forward folders go (default: {WALKFORWARD_LOG_DIR})")
    walk.add_argument("--run-name",
                      help="walk-forward folder name (default: <name>_walkforward_<UTC time>)")
    walk.add_argument("--resume", metavar="WALKFORWARD_DIR",
                      help="continue an interrupted walk-forward (finished windows are read "
                      "back, never re-run)")
    walk.add_argument("--no-report", action="store_true",
                      help="do not render report.html (cryptosweep report WALKFORWARD_DIR does)")
    walk.add_argument("--kernel", default=KERNEL, help="Jupyter kernel of the report")
    walk.add_argument("--log-level", default="INFO", choices=LOG_LEVELS, type=str.upper)


def _add_data_command(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="the candles a config reads: `data update` appends "
                               "the exchange's new closed candles (docs/data_update.md)")
    verbs = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser,
                                metavar="VERB")
    update = verbs.add_parser("update", help="append the new closed candles of the config's "
                              "data.update exchange, symbol and interval to data.path")
    update.add_argument("--config", required=True, help="a config with data.path and a "
                        "data.update section")
    update.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config value (repeatable)")


def _data(args: argparse.Namespace) -> int:
    from cryptosweep.core.config_files import load_config
    from cryptosweep.marketdata.store import update_configured

    config = load_config(args.config, args.overrides)
    try:
        summary = update_configured(config)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM: no run folder, nothing to resume
        stop = exc if isinstance(exc, SweepInterrupted) else SweepInterrupted()
        print(f"cryptosweep: data update interrupted ({stop.signal_name}); {config.data.path} "
              "is as it was: run the update again", file=sys.stderr)
        return stop.exit_code
    print(summary)
    return 0


def _walkforward(args: argparse.Namespace) -> int:
    from cryptosweep.walkforward.driver import run_walkforward

    if args.config is None and args.resume is None:
        raise UserError("walkforward: --config PATH is required (or --resume WALKFORWARD_DIR)")
    if args.resume is not None and args.data is not None:
        raise UserError(f"walkforward: --data cannot change on --resume (the walk-forward keeps "
                        f"the data it started with: {args.resume}); resume without --data, or "
                        "start a new walk-forward with --config and --data")
    log_dir = _log_dir(args, "walkforward", "walk-forward", WALKFORWARD_LOG_DIR)
    if not args.no_report:
        from cryptosweep.reporting.report import check_kernel

        check_kernel(args.kernel)
    result = run_walkforward(
        args.config, seed=args.seed, overrides=args.overrides, data_path=args.data,
        log_dir=log_dir, run_name=args.run_name, gpu_ids=args.gpu_ids,
        workers=args.workers, scheduler_address=args.scheduler_address, resume=args.resume,
    )
    print(result.files["report"].read_text(encoding="utf-8").split("\n", 1)[0])
    if not args.no_report:
        from cryptosweep.walkforward.report import render_walkforward_report

        print(render_walkforward_report(result.run_dir, kernel=args.kernel))
    print(result.run_dir)
    return 0


def _positive(text: str) -> int:
    """A whole number >= 1 (``--rank -1`` was told "expected a non-negative number", which
    0 is, and is refused too)."""
    from cryptosweep.core.strict import whole_number

    try:
        value = whole_number(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _add_production_commands(commands: argparse._SubParsersAction) -> None:
    """``train``, ``signals`` and ``evaluate``: from a sweep's best configuration to the model
    that trades (README, "From sweep to production")."""
    train = commands.add_parser(
        "train", help="train a best configuration into a model folder (library format + "
        "manifest.json)")
    train.add_argument("source", metavar="BEST_CONFIGS_OR_RUN_DIR",
                       help="a best_configs JSON file, a run folder or a models folder")
    train.add_argument("--rank", type=_positive, default=1,
                       help="which configuration (1 = the winner)")
    train.add_argument("--data", help="OHLCV file or folder to train on (default: the "
                       "configuration's data)")
    train.add_argument("--until", help="last bar to train on (a time, or 'holdout': the bars "
                       "before the sweep's holdout); default: every bar")
    train.add_argument("--out", required=True, help="the model folder to write")

    signals = commands.add_parser(
        "signals", help="what a model decides at the close of the latest bars")
    signals.add_argument("model_dir", help="a model folder written by `cryptosweep train`")
    signals.add_argument("--data", required=True,
                         help="OHLCV file or folder, from the same first bar as the training "
                         "data for exact parity (docs/production.md)")
    _add_layout_flags(signals)
    signals.add_argument("--last", type=_positive, default=1,
                         help="how many of the latest bars to show (default 1)")
    signals.add_argument("--json", action="store_true", help="JSON records instead of a table")

    evaluate = commands.add_parser(
        "evaluate", help="backtest a model on another period or asset: metrics and an "
        "offline HTML page")
    evaluate.add_argument("source", metavar="MODEL_DIR_OR_BEST_CONFIGS",
                          help="a model folder, or best configs to train first")
    evaluate.add_argument("--data", required=True, help="OHLCV file or folder")
    _add_layout_flags(evaluate)
    evaluate.add_argument("--start", help="first bar of the period (default: the first)")
    evaluate.add_argument("--end", help="last bar of the period (default: the last)")
    evaluate.add_argument("--rank", type=_positive,
                          help="with best configs: which configuration (default 1, the winner)")
    evaluate.add_argument("--until", help="with best configs: last bar to train on")
    evaluate.add_argument("--html", help="write an offline page of the backtest here "
                          "(plotly.js goes next to it, once a folder); default: no page")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")


def _train(args: argparse.Namespace) -> int:
    from cryptosweep.production import configuration_of, train_model
    from cryptosweep.production.model import check_output_folder

    out = Path(args.out)
    _check_output(out, "--out", folder=True)
    _check_data(args.data)
    configuration = configuration_of(args.source, rank=args.rank)  # bad input: before training
    check_output_folder(out)
    for note in (configuration.rejected_note, configuration.summary_note):
        if note:
            print(f"warning: {note}", file=sys.stderr)
    # --until and --data's candles are read by the training: bad ones fail there, before a
    # look is recorded (the output folder was checked above)
    model = train_model(configuration, data=args.data, until=args.until)
    if args.rank > 1:  # choosing another than the winner is choosing by what came after it
        _count_look(args.source, configuration.entry, "train", f"--rank {args.rank}")
    target = model.save(out)
    data = model.manifest["data"]
    print(f"{target}: {model.family}, {model.manifest['rounds']} rounds/epochs, seed "
          f"{model.manifest['seed']}, trained on {data['training_rows']} bars of "
          f"{data['source']} ({data['first_training_bar']} .. {data['last_training_bar']})")
    return 0


def _signals(args: argparse.Namespace) -> int:
    import pandas as pd

    from cryptosweep.production import decisions_json, decisions_table, load_model
    from cryptosweep.production.candles import (
        check_candles,
        check_warm_up,
        closed_bars,
        load_candles,
    )
    from cryptosweep.production.configuration import gate_note
    from cryptosweep.production.model import InSampleWarning

    flat = _no_champion(Path(args.model_dir))
    if flat is not None:  # --json: no decision, and the line where warnings go
        print("[]" if args.json else flat)
        if args.json:
            print(f"warning: {flat}", file=sys.stderr)
        return 0
    columns = None if args.columns is None else _column_mapping(args.columns)
    model = load_model(args.model_dir)
    candles = load_candles(args.data, model.spec, format=args.format, columns=columns)
    candles, forming = closed_bars(check_candles(candles, model.bar_interval),
                                   model.bar_interval, pd.Timestamp.now(tz="UTC"))
    check_warm_up(check_candles(candles, model.bar_interval), args.last)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InSampleWarning)  # said below, of the bars shown
        decisions = model.decide(candles).tail(args.last)
    sys.stdout.write(decisions_json(decisions) if args.json else decisions_table(decisions))
    for note in (forming, gate_note(model.manifest.get("deployment")),
                 model.in_sample_note(candles, decisions.index[0], decisions.index[-1])):
        if note:
            print(f"warning: {note}", file=sys.stderr)
    return 0


def _add_layout_flags(command: argparse.ArgumentParser) -> None:
    """``--format`` and ``--columns``: how a --data file laid out otherwise than the sweep's
    is read (``signals``, ``evaluate``)."""
    command.add_argument("--format", choices=("auto", "binance", "cryptodatadownload",
                                              "generic"),
                         help="the --data file's format, as the config's data.format (default: "
                         "the model's sweep's)")
    command.add_argument("--columns", metavar="KEY=COLUMN,...",
                         help="a generic file's column names, as the config's data.columns: "
                         "e.g. timestamp=time,open=o (implies --format generic)")


def _column_mapping(text: str) -> dict[str, str]:
    """``--columns timestamp=time,open=o`` as a mapping; a malformed one is one line, exit 2."""
    from cryptosweep.core.data_settings import shared_column
    from cryptosweep.trading.candle_formats import MAPPING_KEYS

    mapping: dict[str, str] = {}
    for item in text.split(","):
        key, sep, column = (part.strip() for part in item.partition("="))
        if not sep or not key or not column:
            raise UserError(f"--columns: {item.strip()!r} is not KEY=COLUMN (e.g. "
                            "--columns timestamp=time,open=o)")
        if key not in MAPPING_KEYS:
            raise UserError(f"--columns: unknown key {key!r}; known: {', '.join(MAPPING_KEYS)}")
        if key in mapping:
            raise UserError(f"--columns: {key} is given twice")
        mapping[key] = column
    # a key not given reads the column of its own name
    clash = shared_column({key: mapping.get(key, key) for key in MAPPING_KEYS})
    if clash is not None:
        raise UserError(f"--columns: {clash}")
    return mapping


def _no_champion(model_dir: Path) -> str | None:
    """"flat: no champion deployed" when ``model_dir`` is a nightly models folder's
    ``champion`` that is not there and its history agrees (none approved yet, or the last
    approval demoted since), else None. A champion the history says was promoted and not
    demoted, or a promotion under way or interrupted (its ``.promotion.json`` or
    ``.champion.new``), is a :class:`UserError` (exit 2): never flat for a champion that is
    deployed."""
    from cryptosweep.nightly.promotion import (
        CHAMPION,
        HISTORY,
        MARKER,
        NEW,
        last_change,
        read_history,
    )

    if model_dir.exists() or model_dir.name != CHAMPION:
        return None
    models = model_dir.parent
    finish = ("the nightly finishes an interrupted promotion before its sweep (its recover "
              "step: scheduled/nightly_sweep.sh, or python -m cryptosweep.nightly); wait for "
              "it or run it, then ask again")
    unfinished = [name for name in (MARKER, NEW) if (models / name).exists()]
    if unfinished:
        raise UserError(f"{model_dir} is not there: a promotion of a new champion is under way "
                        f"or was interrupted ({', '.join(unfinished)} in {models}); {finish}")
    if not (models / HISTORY).is_file():
        return None
    last = last_change(read_history(models))
    if last is not None and last.get("decision") != "demoted":
        raise UserError(f"{model_dir} is not there, but {models / HISTORY} says the gate "
                        f"promoted run {last.get('run')}'s champion ({last.get('time')}) and "
                        f"none was demoted since; {finish}, or restore {model_dir}")
    why = (f" (demoted {last['time']}: {last['reason']})" if last is not None
           else " (the deployment gate has approved none yet)")
    return f"flat: no champion deployed{why}"


def _source_run(source: Path) -> str | None:
    """The run a best-configs file names (its ``source_run``; a copy's file name is not the
    run), None when it names none or cannot be read."""
    from cryptosweep.production.configuration import read_best_configs

    try:
        run = read_best_configs(source)[0].get("source_run")
    except (UserError, OSError, AttributeError):
        return None
    return run if isinstance(run, str) and run else None


def _count_look(source: str | Path, entry: dict[str, Any], kind: str, what: str) -> None:
    """A look at the holdout, recorded in the trial ledger of the run ``source`` belongs to
    (where its sweep counted its trials: its config's; the report of the next sweep counts
    it), else in the one beside ``source``, or said to be unrecorded."""
    from cryptosweep.records.ledger import record_look_beside
    from cryptosweep.sweep.evidence import run_ledger

    data = entry.get("data") or {}
    source = Path(source)
    found = run_ledger(source if source.is_dir() else source.parent)
    if found is not None and data.get("holdout_first_bar"):
        found.record_look(kind, what)
        return
    run = str(entry.get("source_run") or _source_run(source) or source.resolve().name)
    where = record_look_beside(source, run, kind, what, data)
    if where is None and data.get("holdout_first_bar"):
        # A model folder's manifest does not name its run: "the holdout of winner" named the
        # model folder as if it were the run.
        whose = (f"the run {source} was trained from" if not entry.get("source_run")
                 and (source / "manifest.json").is_file() else run)
        print(f"warning: {what} looks at the holdout of {whose}; no trial ledger beside "
              f"{source} to record it in", file=sys.stderr)


def _evaluate(args: argparse.Namespace) -> int:

    from cryptosweep.core.files import finite_or_none, pretty_json
    from cryptosweep.production.evaluation import check_html_target, evaluate, model_for

    if args.html is not None:
        check_html_target(args.html)  # before a model is trained
    _check_data(args.data)
    columns = None if args.columns is None else _column_mapping(args.columns)
    model = model_for(args.source, rank=args.rank, until=args.until)
    entry = model.manifest.get("configuration") or {}
    rank = args.rank or entry.get("rank") or 1  # a model folder's: what it was trained from
    backtest, page, notes, reaches_holdout = evaluate(
        model, args.data, start=args.start, end=args.end, html_path=args.html,
        format=args.format, columns=columns)
    if reaches_holdout:  # the market by its candles, not its file's name
        _count_look(args.source, entry, "evaluate",
                    f"evaluate {args.data} (rank {rank}, {backtest.times[0].isoformat()} "
                    f".. {backtest.times[-1].isoformat()})")
    if args.json:
        sys.stdout.write(pretty_json(finite_or_none(backtest.metrics)))  # an inf Calmar: null
    else:
        times = backtest.times
        print(f"{model.family} model, {len(times)} bars {times[0].isoformat()} .. "
              f"{times[-1].isoformat()}")
        for name, value in backtest.metrics.items():
            print(f"  {name:<13} {value:.6g}" if isinstance(value, float)
                  else f"  {name:<13} {value}")
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    if page is not None:
        print(f"wrote {page}", file=sys.stderr)
    return 0


def _log_dir(args: argparse.Namespace, command: str, what: str, default: str) -> str:
    """``--log-dir`` (checked) for a new run or walk-forward, its default when not given; on
    ``--resume``, where the folder is the one resumed, ``--log-dir`` and ``--run-name`` would
    be ignored: one line, exit 2."""
    if args.resume is not None:
        for flag, value in (("--log-dir", args.log_dir), ("--run-name", args.run_name)):
            if value is not None:
                raise UserError(f"{command}: {flag} has no effect on --resume (the {what} keeps "
                                f"its folder: {args.resume}); resume without {flag}")
        return default
    log_dir = args.log_dir if args.log_dir is not None else default
    _check_output(Path(log_dir), "--log-dir", folder=True)
    return log_dir


def _run(args: argparse.Namespace) -> int:
    from cryptosweep.sweep.runner import run_sweep

    if args.config is None and args.resume is None:
        raise UserError("run: --config PATH is required (or --resume RUN_DIR)")
    if args.resume is not None and args.data is not None:
        raise UserError(f"run: --data cannot change on --resume (the run keeps the data it "
                        f"started with: {args.resume}); resume without --data, or start a new "
                        "run with --config and --data")
    log_dir = _log_dir(args, "run", "run", SWEEP_LOG_DIR)
    result = run_sweep(
        args.config, seed=args.seed, overrides=args.overrides, data_path=args.data,
        log_dir=log_dir, run_name=args.run_name, gpu_ids=args.gpu_ids,
        workers=args.workers, scheduler_address=args.scheduler_address, resume=args.resume,
        show_progress=not args.no_progress and sys.stderr.isatty(),
    )
    print(result.run_dir, flush=True)
    # The run's last line is its verdict (the text report's first line and its reason), on
    # stderr after everything else, so that stdout stays the run folder for scripts.
    sys.stderr.flush()
    print(_verdict_line(result.results), file=sys.stderr, flush=True)
    return 0


def _verdict_line(results: dict[str, Any]) -> str:
    """``VERDICT: NOT DEPLOYABLE (deployment gate): Rejected: DSR 0.01 < 0.95, ...``."""
    from cryptosweep.judging.verdict import verdict

    decided = verdict(results)
    return f"VERDICT: {decided.label} ({decided.basis}): {decided.reason}"


def _validate(args: argparse.Namespace) -> int:
    from cryptosweep.core.config_files import load_config
    from cryptosweep.sweep.preflight import preflight

    config = load_config(args.config, args.overrides, args.data)
    plan = preflight(config, local=not config.execution.scheduler_address)
    print(f"ok: {plan.describe(config)}")
    if not config.data.has_holdout:  # valid, and the gate can then approve nothing
        print("warning: data.holdout_fraction is 0: no holdout, so the deployment gate rejects "
              "every winner (what cannot be checked does not pass)", file=sys.stderr)
    if config.walk_forward is not None:  # what `cryptosweep walkforward` would run
        from cryptosweep.core.config import resolve_seed
        from cryptosweep.trading.validation import holdout_split
        from cryptosweep.walkforward.layout import plan as plan_windows

        plans = plan_windows(config, resolve_seed(None, config))

        def span(values: set[int]) -> str:
            return f"{min(values)}" if len(values) == 1 else f"{min(values)}-{max(values)}"

        in_sample = {p.window.in_sample_bars for p in plans}
        held = {p.window.in_sample_bars - holdout_split(p.window.in_sample_bars,
                                                        p.sweep_config.data.holdout_fraction)
                for p in plans}
        segments = {p.window.out_of_sample_bars for p in plans}
        # The line above is the config on the whole file; each window sweeps its own bars.
        print(f"ok: walk_forward: {len(plans)} windows, each sweeping {span(in_sample)} "
              f"in-sample bars ({span(held)} of them its holdout) and trading "
              f"{span(segments)} out-of-sample bars; out of sample "
              f"{plans[0].oos_first_bar} .. {plans[-1].oos_last_bar}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from cryptosweep.reporting.report import (
        check_kernel,
        check_report_targets,
        render_report,
        write_index,
    )
    from cryptosweep.walkforward.driver import MANIFEST

    if (Path(args.run_dir) / MANIFEST).is_file():  # a walk-forward folder: its own report
        from cryptosweep.walkforward.report import render_walkforward_report

        print(render_walkforward_report(args.run_dir, kernel=args.kernel))
        return 0

    try:
        run_dir = Path(args.run_dir).resolve()
    except (RuntimeError, OSError) as exc:  # RuntimeError: a symbolic link loop (3.11)
        raise UserError(f"{args.run_dir}: cannot be resolved "
                        f"({getattr(exc, 'strerror', None) or exc})") from None
    check_report_targets(run_dir, index=not args.no_index)
    check_kernel(args.kernel)
    print(render_report(run_dir, kernel=args.kernel))
    if not args.no_index:
        print(write_index(run_dir.parent))
    return 0


def _check_data(data: str | None) -> None:
    """A ``--data`` path that is not there, checked first: one line before a best-configs
    file is read, a warning printed or a model trained."""
    from cryptosweep.core.errors import DataError

    if data is not None and (not data.strip() or not Path(data).exists()):
        raise DataError(f"--data: data path not found: {data!r}")


def _check_output(path: Path, flag: str, *, folder: bool = False) -> None:
    """A path the user gave for an output, checked before anything runs: exit 2 if it cannot
    be written (:func:`~cryptosweep.core.files.output_problem`)."""
    from cryptosweep.core.files import output_problem

    why = output_problem(path, folder=folder)
    if why is not None:
        raise UserError(f"{flag} {path}: cannot write there ({why})")


def _export_optuna(args: argparse.Namespace) -> int:
    from cryptosweep.reporting.report import export_optuna

    target = export_optuna(args.run_dir, args.output)
    print(f"sqlite:///{target}")
    return 0


def _check_gpu(as_json: bool) -> int:
    from cryptosweep.execution.environment import framework_gpu_support, gpu_info

    info, frameworks = gpu_info(), framework_gpu_support()
    if as_json:
        print(json.dumps({"gpus": info, "frameworks": frameworks}, indent=2))
        return 0
    if info["available"]:
        print(f"NVIDIA driver {info['driver_version']}, CUDA driver API "
              f"{info['cuda_driver_version']}")
        for gpu in info["devices"]:
            print(f"  GPU {gpu['index']}: {gpu['name']}, {gpu['memory_free_mib']} of "
                  f"{gpu['memory_total_mib']} MiB free, {gpu['uuid']}")
    else:
        print(f"no GPU: {info['reason']}")
    for name, support in frameworks.items():
        state = "GPU" if support["gpu"] else f"CPU only ({support['why_not']})"
        print(f"  {name:<9} {state}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    skip_iri_grammars()  # report and walkforward run notebooks
    args = build_parser().parse_args(argv)
    if args.command == "check-gpu":
        return _check_gpu(args.json)
    configure_logging(getattr(args, "log_level", "INFO"))
    commands = {"run": _run, "validate": _validate, "report": _report,
                "export-optuna": _export_optuna, "train": _train, "signals": _signals,
                "evaluate": _evaluate, "walkforward": _walkforward, "data": _data}
    from cryptosweep.trading.data import DuplicateRowsWarning

    try:
        with sigterm_interrupts(), warnings.catch_warnings():
            # Said once, on the log (a Python warning would repeat it with a source line).
            warnings.simplefilter("ignore", DuplicateRowsWarning)
            return commands[args.command](args)
    except CryptosweepError as exc:
        print(f"cryptosweep: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        interrupted = exc if isinstance(exc, SweepInterrupted) else SweepInterrupted()
        print(f"cryptosweep: {interrupted}", file=sys.stderr)
        return interrupted.exit_code
    except Exception as exc:  # a full disk while writing a report or an export is no bug
        from cryptosweep.core.faults import infrastructure_fault

        why = infrastructure_fault(exc)
        if why is None:
            raise
        error = InfrastructureError(f"{args.command}: the machine failed: {why}")
        print(f"cryptosweep: error: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
