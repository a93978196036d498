"""What a what-if costs: from a trading slider's release to the updated chart, on the bundled
data.

The run: ``parameters/demo.yaml`` made smaller (``hyperband.iterations=1``: 22 evaluations, 4
walk-forward folds and the holdout of the bundled BTC/USDT hourly sample, 9,504 bars), run
in-process into a temporary reports folder. The trial: the run's winner, opened in the
explorer's trial panel (:class:`cryptosweep.explore.Explorer`, the notebook's object) and
retrained once (timed; a second selection must hit the session cache).

1. **Kernel side.** For each of the four sliders, ``--releases`` values spread over its range
   (the others at the trial's values), each set as a release in the page sets it: the
   callback runs until the metrics, equity and trades figure data are in the widgets
   (``TrialView.timings``: backtest, tables, equity, trades). Beside it, the bare library
   work of one what-if (:func:`cryptosweep.explore.whatif.what_if`: signals, simulation and
   metrics of every block) and the simulation alone
   (:func:`cryptosweep.trading.steps.backtest_bars`), so the ratio shows what the
   explorer adds to the backtest.
2. **In the page** (``--browser``): the notebook ``notebooks/explore.ipynb`` on that run in
   JupyterLab in headless Chromium (the JupyterLab and Chromium helpers of
   ``tests/explore/test_notebook.py``), the threshold slider dragged and released
   ``--drags`` times: milliseconds from the pointer's release to the what-if equity chart
   drawn anew (a MutationObserver in the page), kernel round trip included.

    .venv/bin/python benchmarks/explore_whatif.py [--releases 10] [--browser] [--drags 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cryptosweep.core.config_files import load_config
from cryptosweep.explore import Explorer
from cryptosweep.explore.whatif import PREDICTIONS, what_if
from cryptosweep.sweep.runner import run_sweep
from cryptosweep.trading.steps import backtest_bars
from machine import machine_line

REPO = Path(__file__).resolve().parents[1]
TARGET_MS = 200.0


def quantiles(values: list[float]) -> str:
    """median / p95 / max in milliseconds."""
    ms = sorted(1000 * v for v in values)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"{statistics.median(ms):.1f} / {p95:.1f} / {ms[-1]:.1f}"


def make_run(base: Path) -> Path:
    config = load_config(REPO / "parameters" / "demo.yaml",
                         ["hyperband.iterations=1", "execution.workers=0"])
    started = time.perf_counter()
    result = run_sweep(config=config, seed=11, log_dir=base / "reports", run_name="demo",
                       show_progress=False)
    print(f"sweep: {time.perf_counter() - started:.1f} s", flush=True)
    return Path(result.run_dir)


def kernel_side(run_dir: Path, releases: int) -> dict[str, object]:
    ui = Explorer(run_dir.parent, run=run_dir.name)
    view = ui.trial
    view.background = False
    winner = view.trial_picker.value  # the run's winner, selected
    view.select(winner)  # retrained with its recorded seed
    training_s = view.timings["training"]
    again = time.perf_counter()
    trainings = PREDICTIONS.trainings
    view.select(winner)  # the session cache
    cached_s = time.perf_counter() - again
    assert PREDICTIONS.trainings == trainings and view.predictions is not None
    record, own = view.record, view.own
    assert view.parity is not None and view.parity.ok, view.parity
    totals: list[float] = []
    parts: dict[str, list[float]] = {k: [] for k in ("backtest", "tables", "equity", "trades")}
    library: list[float] = []
    simulation: list[float] = []
    for name, slider in view.sliders.items():
        if hasattr(slider, "options"):
            choices = list(slider.options)
        else:
            choices = list(np.linspace(slider.min, slider.max, releases))
        for value in choices[:releases]:
            value = round(value) if name == "holding_period" else float(value)
            started = time.perf_counter()
            slider.value = value  # what a release in the page triggers in the kernel
            totals.append(time.perf_counter() - started)
            for key in parts:
                parts[key].append(view.timings[key])
            trading = view.whatif.trading
            started = time.perf_counter()
            what_if(view.predictions, trading, record.spec, view.market)
            library.append(time.perf_counter() - started)
            started = time.perf_counter()
            for block in view.predictions:
                backtest_bars(view.market, block.bars, block.proba, trading,
                              record.spec.objective)
            simulation.append(time.perf_counter() - started)
        view.reset()
    bars = sum(len(block.bars) for block in view.predictions)
    return {"eval": record.eval_id, "label": record.label, "bars": bars,
            "blocks": len(own.blocks), "training_s": training_s, "cached_s": cached_s,
            "totals": totals, "parts": parts, "library": library, "simulation": simulation,
            "parity": view.parity.text}


def browser_side(run_dir: Path, drags: int) -> list[float]:
    sys.path.insert(0, str(REPO))
    import nbformat
    from selenium.webdriver.common.action_chains import ActionChains
    from tests.explore.test_notebook import (
        CHROMEDRIVER,
        CHROMIUM,
        TRIAL_READY,
        WATCH_REDRAW,
        lab_session,
        parameterised,
        wait_for,
    )

    if CHROMIUM is None or CHROMEDRIVER is None:
        raise SystemExit("--browser needs chromium and chromedriver")
    elapsed: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, lab_session(Path(tmp)) as lab:
        driver = lab.driver
        nbformat.write(parameterised(run_dir.parent, run=run_dir.name),
                       lab.root / "explore.ipynb")
        lab.open("explore.ipynb")
        wait_for(lambda: (s := driver.execute_script(TRIAL_READY)) and "bit for bit"
                 in s["status"] and s["equity"] and s["trades"], "the trial retrained",
                 timeout=600)
        for i in range(drags):
            handle = driver.execute_script(
                "const h = document.querySelector('.cs-whatif-threshold .noUi-handle');"
                "h.closest('.widget-slider').scrollIntoView({block: 'start'}); return h;")
            time.sleep(1.0)  # the page at rest, as between two moves of a hand
            driver.execute_script(WATCH_REDRAW)
            offset = 40 if i % 2 == 0 else -40
            ActionChains(driver).click_and_hold(handle).move_by_offset(offset, 0) \
                    .release().perform()
            seen = wait_for(lambda: (s := driver.execute_script("return window.csRedraw"))
                            ["drawn"] and s, "the redrawn equity chart", timeout=60)
            elapsed.append((seen["drawn"] - seen["released"]) / 1000)
            print(f"drag {i + 1}: {elapsed[-1] * 1000:.0f} ms", flush=True)
        errors = lab.errors()
        if errors:
            raise SystemExit(f"JavaScript errors in the page: {errors}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=10, help="values per slider")
    parser.add_argument("--browser", action="store_true", help="also time it in the page")
    parser.add_argument("--drags", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = make_run(Path(tmp))
        kernel = kernel_side(run_dir, args.releases)
        page = browser_side(run_dir, args.drags) if args.browser else []
    print()
    print(machine_line())
    print(f"Run: parameters/demo.yaml with hyperband.iterations=1, seed 11 (bundled BTC/USDT "
          f"1h sample); trial: {kernel['label']}; {kernel['blocks']} blocks (folds and "
          f"holdout), {kernel['bars']:,} bars backtested per what-if. Parity: "
          f"{kernel['parity']}.")
    print(f"Retraining the trial (its rungs replayed where it continued): "
          f"{kernel['training_s']:.1f} s; selecting it again (session cache): "
          f"{kernel['cached_s'] * 1000:.0f} ms.")
    print()
    n = len(kernel["totals"])
    print(f"| step ({n} slider releases) | median / p95 / max (ms) |")
    print("| --- | ---: |")
    print(f"| simulation alone (`backtest_bars`, every block) | "
          f"{quantiles(kernel['simulation'])} |")
    print(f"| library what-if (`what_if`: signals, simulation, metrics, score) | "
          f"{quantiles(kernel['library'])} |")
    for key, label in (("backtest", "callback: what-if"), ("tables", "callback: tables"),
                       ("equity", "callback: equity figure"), ("trades", "callback: trades "
                                                                         "figure")):
        print(f"| {label} | {quantiles(kernel['parts'][key])} |")
    print(f"| **release → figure data in the widgets (kernel)** | "
          f"{quantiles(kernel['totals'])} |")
    if page:
        print(f"| **release → equity chart redrawn in the page** ({len(page)} drags) | "
              f"{quantiles(page)} |")
    ratio = statistics.median(kernel["totals"]) / statistics.median(kernel["library"])
    print()
    print(f"Callback / library what-if: {ratio:.1f}x (median). Target: < {TARGET_MS:.0f} ms "
          "from release to updated chart.")
    worst = statistics.median(page) if page else statistics.median(kernel["totals"])
    if worst * 1000 > TARGET_MS:
        raise SystemExit(f"median {worst * 1000:.0f} ms is over the {TARGET_MS:.0f} ms target")


if __name__ == "__main__":
    main()
