"""Search efficiency on planted-edge markets (issue #27, part 1): at equal compute, which
search strategy finds a real edge, how fast, and does its winner hold up on the holdout?

Markets (``gate_calibration.py``'s builders, never synthetic prices): the bundled real BTC/USDT
hourly candles with each bar's direction flipped at random (``null_market``, seed
``3000 + market``), then ``edge`` added to the log return of the ``--hour`` UTC bar of every day
(``plant_edge``). Market ``i`` gets the ``i % len(--edges)``-th strength (default +0.5 %,
+0.75 %, +1.0 %). Each market's oracle (buy that bar's open, sell its close, every day, after a
round trip's costs: ``oracle_sharpe``) has the net annualised Sharpe ratio printed with it:
what the planted edge allows at most.

Strategies, each with its own master seed per run (``--seeds``: 1, 2, ...), on the same
objective and space as ``search_efficiency.py`` (``CONFIG``: LightGBM + 4 trading parameters,
4 purged folds, 4 rounds a unit, every rung retrained from scratch) with **R shrunk from 27 to
9 units** (36 boosting rounds at the full budget instead of 108) and ``--iterations`` (3)
Hyperband passes, so a sweep takes seconds:

* ours through ``run_sweep`` (in-process, ``execution.workers: 0``): ``hyperband`` (Hyperband's
  default fidelity, ``folds``), ``hyperband_rounds`` (``objective.fidelity: rounds``),
  ``bohb_rounds`` (BOHB with ``rounds``), ``random``, ``bayesian_tpe`` (batches of 4);
* Optuna's: ``optuna_default`` (``create_study`` with the default sampler, ``TPESampler``,
  seeded, and no pruning: in Optuna 5 that is multivariate TPE with the constant liar, 10
  random start-up trials; each trial at the full budget) and ``optuna_tpe_hyperband``
  (``TPESampler`` + ``HyperbandPruner``, as ``search_efficiency.py`` runs it).

Compute is counted in budget units as ``search_efficiency.py`` counts it; every strategy gets
one Hyperband run's compute (``--iterations`` x 78 units = 26 full-budget trials at the
defaults). Only scores at the full budget count as a "best". Per market x seed x strategy:
the final best validation score, the compute to reach it, the compute to reach random
search's final best on the same market and seed, the winner's holdout Sharpe ratio
(``evaluate_holdout`` at the full budget with the seed it was scored with, as the sweep does)
and, for ours, the deployment gate's decision (``run_sweep``'s; the winner's neighbourhood
is not re-scored, as in ``gate_calibration.py``: it is no criterion of the gate). Optuna's
winners (best full-budget score) get a holdout score but no gate: the gate judges a sweep's
ledger, re-scores, reproducibility re-run, PBO and permutation test, which a study does not
produce.

    .venv/bin/python benchmarks/planted_search.py [--markets 10] [--seeds 3] [--jobs 2]
    .venv/bin/python benchmarks/planted_search.py --table   # tables + plot of the last results

Writes ``benchmarks/results/planted_search.json`` (after every finished run) and
``benchmarks/results/planted_search.html`` (plotly; loads plotly.js from the copy the project
writes into ``reports/``: ``cryptosweep.reporting.offline``) and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import logging
import math
import multiprocessing
import statistics
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cryptosweep import load_ohlcv  # noqa: E402
from cryptosweep.core.config_files import load_config  # noqa: E402
from cryptosweep.trading.data import sample_data_path  # noqa: E402
from cryptosweep.trading.objective import evaluate_holdout  # noqa: E402
from gate_calibration import null_market, oracle_sharpe, plant_edge, write_csv  # noqa: E402
from machine import machine, machine_line  # noqa: E402
from search_efficiency import (  # noqa: E402
    CONFIG,
    best_at,
    compute_to_reach,
    hyperband_budget,
    optuna_search,
    sweep_ours,
)

#: Our strategies: overrides of ``search_efficiency.CONFIG`` (merged per section).
OURS: dict[str, dict[str, Any]] = {
    "hyperband": {"sweep_type": "hyperband"},  # the default fidelity: folds
    "hyperband_rounds": {"sweep_type": "hyperband", "objective": {"fidelity": "rounds"}},
    "bohb_rounds": {"sweep_type": "hyperband", "hyperband": {"sampler": "tpe"},
                    "objective": {"fidelity": "rounds"}},
    "random": {"sweep_type": "random"},
    "bayesian_tpe": {"sweep_type": "bayesian"},
}
#: Optuna's, each: whether ``HyperbandPruner`` prunes it.
PEERS: dict[str, bool] = {"optuna_default": False, "optuna_tpe_hyperband": True}
STRATEGIES = (*OURS, *PEERS)
#: The multi-fidelity strategy with the library's defaults (Hyperband, fidelity ``folds``).
DEFAULT_MULTI_FIDELITY = "hyperband"
NULL_SEED = 3000
OUT = HERE / "results" / "planted_search.json"


def base_config(path: Path, max_iter: int) -> dict[str, Any]:
    """``search_efficiency.CONFIG`` on the market at ``path``, R = ``max_iter``, in-process."""
    raw = copy.deepcopy(CONFIG)
    raw["name"] = "planted_search"
    raw["hyperband"]["max_iter"] = max_iter
    raw["data"] = {**raw["data"], "path": str(path), "format": "generic"}
    raw["execution"] = {"workers": 0}
    raw["deployment"] = {"neighbourhood": False}
    return raw


def optuna_default_sampler() -> dict[str, Any]:
    """What the installed Optuna's ``create_study()`` samples with, and its defaults."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.create_study(direction="maximize").sampler
    defaults = {name: p.default for name, p in
                inspect.signature(type(sampler).__init__).parameters.items()
                if name in ("multivariate", "constant_liar", "n_startup_trials", "group")}
    return {"optuna": optuna.__version__, "sampler": type(sampler).__name__,
            "defaults": defaults,
            "note": "multivariate=None means multivariate TPE for a single objective"}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """One strategy on one market with one seed (in a worker process)."""
    logging.getLogger("cryptosweep").setLevel(logging.WARNING)
    name, seed, budget = job["strategy"], job["seed"], job["budget"]
    base = base_config(Path(job["path"]), job["max_iter"])
    started = time.perf_counter()
    row: dict[str, Any] = {key: job[key] for key in ("market", "edge", "seed", "strategy")}
    if name in OURS:
        curve, result = sweep_ours(name, seed, budget, Path(job["workdir"]), base, OURS,
                                   workers=0, run_name=f"m{job['market']}_{name}_{seed}")
        results = result.results
        winner = (results.get("top_k") or [None])[0]
        holdout = (winner or {}).get("holdout") or {}
        deployment = results["deployment"]
        row.update({
            "evaluations": len(results["evaluations"]),
            "winner_score": None if winner is None else winner["score"],
            "holdout_sharpe": holdout.get("holdout_sharpe"),
            "holdout_trades": holdout.get("holdout_trades"),
            "gate": deployment["decision"],
            "gate_failed": [c["name"] for c in deployment["criteria"] if not c["passed"]],
        })
    else:
        run = optuna_search(seed, budget, base, pruned=PEERS[name],
                            study_name=f"planted_search_m{job['market']}_{seed}")
        curve = run.curve
        holdout = ({} if run.best_params is None else evaluate_holdout(
            run.best_params, float(job["max_iter"]), run.best_seed,
            load_config(raw=base).objective_spec()))
        row.update({"evaluations": len(curve), "trials": run.n_trials,
                    "winner_score": None if run.best_params is None else run.best_score,
                    "holdout_sharpe": holdout.get("holdout_sharpe"),
                    "holdout_trades": holdout.get("holdout_trades"),
                    "gate": None, "gate_failed": None})
    row["seconds"] = time.perf_counter() - started
    within = [(spent, best) for spent, best in curve if spent <= budget + 1e-9]
    final = best_at(within, budget)
    row.update({"final_best": final if math.isfinite(final) else None,
                "compute_to_final": compute_to_reach(within, final) if math.isfinite(final)
                else None,
                "curve": [[spent, best if math.isfinite(best) else None]
                          for spent, best in within]})
    return row


def finish_rows(rows: list[dict[str, Any]]) -> None:
    """Each row's compute to reach random search's final best on its market and seed."""
    random_final = {(r["market"], r["seed"]): r["final_best"] for r in rows
                    if r["strategy"] == "random"}
    for row in rows:
        target = random_final.get((row["market"], row["seed"]))
        row["random_final"] = target
        curve = [(s, -math.inf if b is None else b) for s, b in row["curve"]]
        row["compute_to_random_final"] = (None if target is None
                                          else compute_to_reach(curve, target))


def summarise(rows: list[dict[str, Any]], budget: float) -> dict[str, Any]:
    """Per strategy over the market-seed pairs; the issue's two targets."""
    out: dict[str, Any] = {"per_strategy": {}}
    pairs = sorted({(r["market"], r["seed"]) for r in rows})
    for name in STRATEGIES:
        mine = [r for r in rows if r["strategy"] == name]
        if not mine:
            continue
        finals = [r["final_best"] for r in mine if r["final_best"] is not None]
        holdouts = [r["holdout_sharpe"] for r in mine if r["holdout_sharpe"] is not None]
        reach = [r["compute_to_random_final"] for r in mine]
        gated = [r for r in mine if r["gate"] is not None]
        out["per_strategy"][name] = {
            "runs": len(mine),
            "final_best_median": statistics.median(finals) if finals else None,
            "holdout_sharpe_median": statistics.median(holdouts) if holdouts else None,
            "holdout_positive": sum(h > 0 for h in holdouts),
            "reach_random_final": sum(c is not None for c in reach),
            "reach_random_final_third": sum(c is not None and c <= budget / 3 + 1e-9
                                            for c in reach),
            "gate_approved": (sum(r["gate"] == "approved" for r in gated) if gated else None),
            "seconds_median": statistics.median(r["seconds"] for r in mine),
        }
    default = out["per_strategy"].get(DEFAULT_MULTI_FIDELITY)
    peer = out["per_strategy"].get("optuna_default")
    by_pair = {(r["market"], r["seed"], r["strategy"]): r for r in rows}
    paired = [(by_pair[(m, s, DEFAULT_MULTI_FIDELITY)]["final_best"],
               by_pair[(m, s, "optuna_default")]["final_best"]) for m, s in pairs
              if (m, s, DEFAULT_MULTI_FIDELITY) in by_pair and (m, s, "optuna_default") in by_pair]
    out["targets"] = {
        "pairs": len(pairs),
        "default_strategy": DEFAULT_MULTI_FIDELITY,
        "reach_random_final_within_third": None if default is None else
        default["reach_random_final_third"],
        "share_within_third": None if default is None or not pairs else
        default["reach_random_final_third"] / len(pairs),
        "share_target": 0.8,
        "median_final_default": None if default is None else default["final_best_median"],
        "median_final_optuna_default": None if peer is None else peer["final_best_median"],
        "pairs_default_at_or_above_optuna_default": sum(
            a is not None and (b is None or a >= b) for a, b in paired),
        "pairs_compared_with_optuna_default": len(paired),
    }
    return out


def complete(summary: dict[str, Any]) -> None:
    """Sort the rows, add what compares runs with each other and the summary."""
    order = {name: i for i, name in enumerate(STRATEGIES)}
    summary["rows"].sort(key=lambda r: (r["market"], r["seed"], order[r["strategy"]]))
    finish_rows(summary["rows"])
    summary["summary"] = summarise(summary["rows"], summary["budget"])


def _num(value: float | None, spec: str = "+.2f") -> str:
    return "–" if value is None else format(value, spec)


def _units(value: float | None, budget: float) -> str:
    return "never" if value is None else f"{value:.0f} ({value / budget:.0%})"


def tables(summary: dict[str, Any]) -> str:
    """A table per strength (every market x seed x strategy), then the summary."""
    budget, rows = summary["budget"], summary["rows"]
    markets = {m["index"]: m for m in summary["markets"]}
    lines = []
    for edge in sorted({m["edge"] for m in summary["markets"]}):
        lines += [f"\n**Planted edge {edge:+.2%}** (compute in budget units of {budget:g}; "
                  "share of the budget in brackets)\n",
                  "| market (oracle net Sharpe/yr) | seed | strategy | final best validation "
                  "Sharpe | compute to reach it | compute to reach random's final best "
                  "| winner's holdout Sharpe (trades) | gate | wall s |",
                  "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: |"]
        for row in rows:
            if row["edge"] != edge:
                continue
            market = markets[row["market"]]
            trades = row.get("holdout_trades")
            lines.append(
                f"| {row['market']} ({market['oracle_net_sharpe']:.1f}) | {row['seed']} | "
                f"{row['strategy']} | {_num(row['final_best'])} | "
                f"{_units(row['compute_to_final'], budget)} | "
                f"{_units(row['compute_to_random_final'], budget)} | "
                f"{_num(row['holdout_sharpe'])} ({'–' if trades is None else int(trades)}) | "
                f"{row['gate'] or 'not judged'} | {row['seconds']:.0f} |")
    stats = summary["summary"]
    pairs = stats["targets"]["pairs"]
    lines += ["\n**Over all market-seed pairs**\n",
              "| strategy | runs | median final best validation Sharpe | median winner's "
              "holdout Sharpe | holdout > 0 | reaches random's final best | ... with <= 1/3 of "
              "the budget | gate approves | median wall s |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, s in stats["per_strategy"].items():
        gate = "not judged" if s["gate_approved"] is None else f"{s['gate_approved']}/{s['runs']}"
        lines.append(f"| {name} | {s['runs']} | {_num(s['final_best_median'])} | "
                     f"{_num(s['holdout_sharpe_median'])} | {s['holdout_positive']}/{s['runs']} "
                     f"| {s['reach_random_final']}/{s['runs']} | "
                     f"{s['reach_random_final_third']}/{s['runs']} | {gate} | "
                     f"{s['seconds_median']:.0f} |")
    t = stats["targets"]
    share = t["share_within_third"]
    lines += ["",
              f"Target 1 ({t['default_strategy']}, the default multi-fidelity strategy, reaches "
              f"random search's final best with <= 1/3 of the compute in >= 80 % of market-seed "
              f"pairs): {t['reach_random_final_within_third']} of {pairs} pairs = "
              f"{'–' if share is None else f'{share:.0%}'} "
              f"({'met' if share is not None and share >= t['share_target'] else 'not met'}).",
              f"Target 2 ({t['default_strategy']} ends at or above Optuna's default sampler in "
              f"the median at equal compute): median final best {_num(t['median_final_default'])}"
              f" against {_num(t['median_final_optuna_default'])} "
              f"({_verdict(_at_or_above(t))}); at or above it in "
              f"{t['pairs_default_at_or_above_optuna_default']} of "
              f"{t['pairs_compared_with_optuna_default']} pairs."]
    return "\n".join(lines)


def _at_or_above(targets: dict[str, Any]) -> bool | None:
    ours, peer = targets["median_final_default"], targets["median_final_optuna_default"]
    if ours is None or peer is None:
        return None
    return ours >= peer


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else "met" if met else "not met"


def plot(summary: dict[str, Any], path: Path) -> Path:
    """Median (over market-seed pairs) best full-budget validation Sharpe against compute, a
    panel per strength; the page loads plotly.js from ``reports/`` (written there if missing)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from cryptosweep.core.plotly_library import ensure_plotly_js
    from cryptosweep.reporting.offline import library_tags, with_library

    budget, rows = summary["budget"], summary["rows"]
    edges = sorted({m["edge"] for m in summary["markets"]})
    figure = make_subplots(rows=1, cols=len(edges), shared_xaxes=True,
                           subplot_titles=[f"planted {e:+.2%}" for e in edges])
    grid = np.linspace(0, budget, 120)
    colours = ["#1f77b4", "#17becf", "#ff7f0e", "#7f7f7f", "#2ca02c", "#d62728", "#9467bd"]
    for col, edge in enumerate(edges, start=1):
        for colour, name in zip(colours, STRATEGIES, strict=True):
            runs = [r for r in rows if r["edge"] == edge and r["strategy"] == name]
            if not runs:
                continue
            values = np.array([[_best_at_row(r, x) for x in grid] for r in runs])
            if not np.isfinite(values).any():
                continue
            with warnings.catch_warnings():  # before any full-budget result: no point
                warnings.simplefilter("ignore", RuntimeWarning)
                median = np.nanmedian(values, axis=0)
            figure.add_trace(go.Scatter(
                x=grid, y=median, mode="lines", name=name, legendgroup=name,
                showlegend=col == 1, line={"color": colour}), row=1, col=col)
        figure.update_xaxes(title_text="compute spent (budget units)", row=1, col=col)
    figure.update_yaxes(title_text="best full-budget validation Sharpe (median)", row=1, col=1)
    figure.update_layout(title=f"Search efficiency on planted-edge markets "
                         f"({len({(r['market'], r['seed']) for r in rows})} market-seed pairs)",
                         height=450, width=420 * len(edges) + 200)
    reports = HERE.parent / "reports"
    library = ensure_plotly_js(reports)
    page = figure.to_html(include_plotlyjs=False, full_html=True)
    path.write_text(with_library(page, library_tags(path, library)), encoding="utf-8")
    return path


def _best_at_row(row: dict[str, Any], compute: float) -> float:
    reached = [best for spent, best in row["curve"] if spent <= compute + 1e-9]
    return float("nan") if not reached or reached[-1] is None else float(reached[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3, help="master seeds 1..N per market")
    parser.add_argument("--edges", type=float, nargs="+", default=[0.005, 0.0075, 0.01],
                        help="planted log returns; market i gets edges[i %% len(edges)]")
    parser.add_argument("--hour", type=int, default=14)
    parser.add_argument("--max-iter", type=int, default=9, help="R (search_efficiency: 27)")
    parser.add_argument("--iterations", type=int, default=3,
                        help="Hyperband passes: everyone's compute budget")
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES),
                        choices=STRATEGIES)
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (processes)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--plot", type=Path, default=OUT.with_suffix(".html"))
    parser.add_argument("--table", action="store_true",
                        help="print the tables of the results in --out, measure nothing")
    args = parser.parse_args()
    if args.table:
        saved = json.loads(args.out.read_text())
        if "summary" not in saved:  # an interrupted run: the pairs it finished
            wanted = set(saved["args"]["strategies"])
            done: dict[tuple[int, int], set[str]] = {}
            for row in saved["rows"]:
                done.setdefault((row["market"], row["seed"]), set()).add(row["strategy"])
            kept = [r for r in saved["rows"] if done[(r["market"], r["seed"])] == wanted]
            print(f"(interrupted: {len(saved['rows'])} runs finished; the "
                  f"{len(kept) // len(wanted)} market-seed pairs with every strategy are "
                  f"shown, {len(saved['rows']) - len(kept)} runs of unfinished pairs left out)")
            saved["rows"] = kept
            complete(saved)
        print(tables(saved))
        print(f"\nplot: {plot(saved, args.plot)}")
        return 0
    budget = hyperband_budget(args.iterations, args.max_iter, CONFIG["hyperband"]["eta"])
    candles = load_ohlcv(sample_data_path())
    started = time.perf_counter()
    summary: dict[str, Any] = {
        "machine": machine(), "command": " ".join(sys.argv),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "budget": budget, "full_budget": args.max_iter,
        "full_budget_trials": math.floor(budget / args.max_iter),
        "optuna_default_sampler": optuna_default_sampler(), "markets": [], "rows": []}
    print(f"{machine_line()}\nbudget {budget:g} units (= {budget / args.max_iter:.1f} "
          f"full-budget trials of R = {args.max_iter}); Optuna's default: "
          f"{summary['optuna_default_sampler']}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for index in range(args.markets):
            edge = args.edges[index % len(args.edges)]
            market = plant_edge(null_market(candles, seed=NULL_SEED + index), args.hour, edge)
            path = Path(tmp) / f"planted_{index}.csv"
            write_csv(market, path)
            summary["markets"].append({"index": index, "edge": edge,
                                       "null_seed": NULL_SEED + index,
                                       "oracle_net_sharpe": oracle_sharpe(market, args.hour)})
            print(f"market {index}: edge {edge:+.2%}, oracle net Sharpe "
                  f"{summary['markets'][-1]['oracle_net_sharpe']:.2f}/yr", flush=True)
            jobs += [{"market": index, "edge": edge, "seed": seed, "strategy": name,
                      "path": str(path), "workdir": str(Path(tmp) / "runs"),
                      "max_iter": args.max_iter, "budget": budget}
                     for seed in range(1, args.seeds + 1) for name in args.strategies]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
            futures = [pool.submit(run_job, job) for job in jobs]
            for future in as_completed(futures):
                row = future.result()
                summary["rows"].append(row)
                print(f"market {row['market']} seed {row['seed']} {row['strategy']:>20}: "
                      f"final {_num(row['final_best'])} holdout {_num(row['holdout_sharpe'])} "
                      f"gate {row['gate'] or '-'} ({row['seconds']:.0f} s)", flush=True)
                _save(summary, args.out)
    complete(summary)
    summary["seconds"] = time.perf_counter() - started
    _save(summary, args.out)
    print(tables(summary))
    print(f"\nplot: {plot(summary, args.plot)}; wall {summary['seconds'] / 60:.1f} min")
    return 0


def _save(summary: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
