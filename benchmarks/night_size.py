"""What one night costs on disk: the run folder of the demo nightly (``make sweep``: Hyperband
over LightGBM/XGBoost on the bundled BTC/USDT candles), file by file, and what the reports
folder shares between nights (``index.html``, ``plotly-<version>.min.js``).

Either runs the nightly once into a temporary reports folder (default), or measures an existing
reports folder (``--reports DIR``, e.g. one made by an older version, to compare):

    .venv/bin/python benchmarks/night_size.py [--reports DIR] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_line

REPO = Path(__file__).resolve().parents[1]
MB = 1_000_000  # decimal megabytes, as the issue and `du --si` count


def run_demo_night(reports: Path) -> Path:
    """``scheduled/nightly_sweep.sh parameters/demo.yaml`` with ``REPORTS_DIR=reports``."""
    env = {**os.environ, "REPORTS_DIR": str(reports), "MODELS_DIR": str(reports.parent / "m")}
    done = subprocess.run([str(REPO / "scheduled" / "nightly_sweep.sh"), "parameters/demo.yaml"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode:
        raise SystemExit(f"the nightly failed (exit {done.returncode}):\n{done.stdout[-3000:]}")
    return reports


def sizes(folder: Path) -> dict[str, int]:
    """Bytes per file under ``folder`` (links not followed), by relative path."""
    return {str(p.relative_to(folder)): p.stat().st_size
            for p in folder.rglob("*") if p.is_file() and not p.is_symlink()}


def groups(files: dict[str, int]) -> dict[str, int]:
    """Files grouped the way a reader thinks of them."""
    out: dict[str, int] = {}
    for name, size in files.items():
        key = "checkpoints/" if name.startswith("checkpoints/") else name
        for prefix in ("sweep_results_", "sweep_report_", "best_configs_", "resource_usage_",
                       "gpu_repro_"):
            if name.startswith(prefix):
                key = f"{prefix}*"
        out[key] = out.get(key, 0) + size
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def report(reports: Path) -> str:
    runs = sorted(p for p in reports.iterdir() if p.is_dir() and not p.is_symlink()
                  and list(p.glob("sweep_results_*.json")))
    if not runs:
        raise SystemExit(f"{reports}: no run folder with results")
    run = runs[-1]
    files = sizes(run)
    shared = {p.name: p.stat().st_size for p in reports.iterdir() if p.is_file()}
    lines = [machine_line(), "", f"run folder {run.name}: {sum(files.values()) / MB:.2f} MB", "",
             "| file | MB |", "| --- | ---: |"]
    lines += [f"| {name} | {size / MB:.2f} |" for name, size in groups(files).items()]
    lines += ["", "shared by every night of the reports folder:", "", "| file | MB |",
              "| --- | ---: |"]
    lines += [f"| {name} | {size / MB:.2f} |" for name, size in sorted(shared.items())]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=Path, help="measure this reports folder instead")
    parser.add_argument("--markdown", type=Path, help="append the tables to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="night-size.") as tmp:
        reports = args.reports or run_demo_night(Path(tmp) / "reports")
        text = report(reports)
    print(text)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as out:
            out.write("\n" + text)


if __name__ == "__main__":
    main()
