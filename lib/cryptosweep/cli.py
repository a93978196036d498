"""The ``cryptosweep`` command (also ``python -m cryptosweep``): a thin layer over the API.

Exit codes (:mod:`cryptosweep.errors`): 0 ok, 2 bad input (config, data, flags, paths), 3 GPUs
asked for but absent, 4 the sweep stopped itself (too many failed trials), 5 the report failed,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM). A user error prints one line,
``cryptosweep: error: ...``, and no traceback; an interruption prints the command that resumes.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from cryptosweep import __version__
from cryptosweep.errors import (
    EXIT_USAGE,
    GPUUnavailableError,
    ReportError,
    SweepFailedError,
    SweepInterrupted,
    UserError,
)
from cryptosweep.logs import configure_logging

DESCRIPTION = "Reproducible hyperparameter sweeps for crypto trading models."
EPILOG = """exit codes: 0 ok, 2 bad input (config, data, flags, paths), 3 GPUs asked for but
absent, 4 the sweep stopped itself, 5 the report failed, 130 interrupted, 143 terminated.
Each command is also `python -m cryptosweep COMMAND`; see README.md."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and still exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"cryptosweep: error: {message} (see {self.prog} --help)\n")


def _gpu_ids(text: str) -> list[int]:
    from cryptosweep.executors import parse_gpu_ids

    try:
        ids = parse_gpu_ids(text)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--gpu-ids: ")) from None
    if ids is None:
        raise argparse.ArgumentTypeError("expected GPU indices like 0,1")
    return ids


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cryptosweep", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"cryptosweep {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                     metavar="COMMAND")

    run = commands.add_parser("run", help="run or resume a sweep")
    run.add_argument("--config", help="sweep configuration (JSON or YAML)")
    run.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="KEY=VALUE", help="override a config value (dotted key; repeatable)")
    run.add_argument("--data", help="OHLCV file or folder (overrides data.path)")
    run.add_argument("--seed", type=_non_negative,
                     help="master seed (default: the config's seed, else 123456)")
    run.add_argument("--gpu-ids", type=_gpu_ids, help="GPUs to use, e.g. 0,1,2,3")
    run.add_argument("--workers", type=_non_negative,
                     help="CPU worker processes (0: in-process; default: one per core)")
    run.add_argument("--scheduler-address", help="existing dask scheduler, tcp://HOST:PORT")
    run.add_argument("--log-dir", default="sweep_logs", help="where run folders go")
    run.add_argument("--run-name", help="run folder name (default: <config name>_<UTC time>)")
    run.add_argument("--resume", metavar="RUN_DIR_OR_DB", help="continue an interrupted run")
    run.add_argument("--log-level", default="INFO",
                     choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper,
                     help="DEBUG adds a line per evaluation submitted and finished")
    run.add_argument("--no-progress", action="store_true", help="log lines instead of a bar")

    validate = commands.add_parser(
        "validate", help="check a config and its data without running anything (exit 2 if bad)")
    validate.add_argument("--config", required=True, help="sweep configuration")
    validate.add_argument("--set", dest="overrides", action="append", default=[],
                          metavar="KEY=VALUE", help="override a config value (repeatable)")
    validate.add_argument("--data", help="OHLCV file or folder (overrides data.path)")

    report = commands.add_parser(
        "report", help="run the analysis notebook on a finished run: report.html + index.html")
    report.add_argument("run_dir", help="a finished run folder")
    report.add_argument("--kernel", default="cryptosweep", help="Jupyter kernel name")
    report.add_argument("--no-index", action="store_true",
                        help="do not regenerate index.html of the run's parent folder")

    export = commands.add_parser(
        "export-optuna", help="write a run's trials as an Optuna study (SQLite)")
    export.add_argument("run_dir", help="a run folder")
    export.add_argument("--output", help="the SQLite file (default RUN_DIR/optuna.db)")

    check = commands.add_parser(
        "check-gpu", help="GPUs, driver and CUDA versions, free memory, framework support")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _run(args: argparse.Namespace) -> int:
    from cryptosweep.runner import run_sweep

    if args.config is None and args.resume is None:
        raise UserError("run: --config PATH is required (or --resume RUN_DIR)")
    result = run_sweep(
        args.config, seed=args.seed, overrides=args.overrides, data_path=args.data,
        log_dir=args.log_dir, run_name=args.run_name, gpu_ids=args.gpu_ids,
        workers=args.workers, scheduler_address=args.scheduler_address, resume=args.resume,
        show_progress=not args.no_progress and sys.stderr.isatty(),
    )
    print(result.run_dir)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from cryptosweep.config import load_config
    from cryptosweep.strategies import make_strategy
    from cryptosweep.trading.objective import check_spec

    config = load_config(args.config, args.overrides, args.data)
    data = check_spec(config.objective_spec())
    strategy = make_strategy(config, config.seed or 0)
    print(f"ok: {config.name}: {config.sweep_type}, {strategy.total_evaluations} evaluations, "
          f"data {data['first_bar']} .. {data['last_bar']} ({data['bars']} bars, "
          f"{data['holdout_bars']} held out)")
    return 0


def _report(args: argparse.Namespace) -> int:
    from cryptosweep.report import render_report, write_index

    print(render_report(args.run_dir, kernel=args.kernel))
    if not args.no_index:
        print(write_index(Path(args.run_dir).resolve().parent))
    return 0


def _export_optuna(args: argparse.Namespace) -> int:
    from cryptosweep.report import export_optuna

    target = export_optuna(args.run_dir, args.output)
    print(f"sqlite:///{target}")
    return 0


def _check_gpu(as_json: bool) -> int:
    from cryptosweep.environment import framework_gpu_support, gpu_info

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
    args = build_parser().parse_args(argv)
    if args.command == "check-gpu":
        return _check_gpu(args.json)
    configure_logging(getattr(args, "log_level", "INFO"))
    commands = {"run": _run, "validate": _validate, "report": _report,
                "export-optuna": _export_optuna}
    try:
        with _sigterm_interrupts():
            return commands[args.command](args)
    except (UserError, GPUUnavailableError, SweepFailedError, ReportError) as exc:
        print(f"cryptosweep: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        interrupted = exc if isinstance(exc, SweepInterrupted) else SweepInterrupted()
        print(f"cryptosweep: {interrupted}", file=sys.stderr)
        return interrupted.exit_code


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (systemd stop, ``kill``) interrupts like Ctrl-C: the sweep unwinds, closes its
    workers and journal, and says how to resume; the exit code is 143."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise SweepInterrupted(None, "SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
