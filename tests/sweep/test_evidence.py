"""Evidence beyond one path, end to end from the README's example: CPCV of the top-k, regimes,
another market (the ``backtesting`` package's EURUSD hourly test data, read where it is
installed), the same results with 1 and 2 dask workers as in process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from cryptosweep.reporting.tables import cpcv_table, markets_table, regime_table
from cryptosweep.trading.cpcv import n_paths
from tests.support import REPO, cli, deterministic_bytes, results_file, tiny_config

pytestmark = pytest.mark.slow


def readme_evidence() -> dict:
    """The ``evidence`` section of the README's example, its market read where the
    ``backtesting`` package is installed."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- evidence-example[^>]*-->\n```yaml\n(.*?)```", text, re.S)
    assert block, "the README's evidence example is missing"
    evidence = yaml.safe_load(block.group(1))["evidence"]
    backtesting_test = pytest.importorskip("backtesting.test")
    eurusd = Path(backtesting_test.__file__).parent / "EURUSD.csv"
    assert eurusd.is_file()
    (market,) = evidence["markets"]
    market["data"]["path"] = str(eurusd)
    return evidence


def run(config_path: Path, log_dir: Path, name: str, *extra: str) -> Path:
    done = cli("run", "--config", str(config_path), "--log-dir", str(log_dir),
               "--run-name", name, "--seed", "11", *extra)
    assert done.returncode == 0, done.stderr
    return log_dir / name


def test_readme_evidence_end_to_end_and_the_same_on_1_and_2_workers(tmp_path):
    evidence = readme_evidence()
    evidence["cpcv"]["min_path_quantile"] = -100.0  # the criterion on, and passable
    config_path = tmp_path / "sweep.json"
    config_path.write_text(json.dumps(tiny_config(evidence=evidence)))
    in_process = run(config_path, tmp_path, "in_process")
    results = json.loads(results_file(in_process).read_text())
    stats = results["statistics"]
    top = [item["eval_id"] for item in results["top_k"]]

    cpcv = stats["cpcv"]
    assert (cpcv["groups"], cpcv["test_groups"]) == (4, 2)
    assert [entry["eval_id"] for entry in cpcv["entries"]] == top
    for entry in cpcv["entries"]:
        assert entry["n_paths"] == n_paths(4, 2) == len(entry["path_sharpe"]) == 3
        assert entry["n_splits"] == 6
    criterion = next(c for c in results["deployment"]["criteria"] if c["name"] == "cpcv")
    assert criterion["passed"] and criterion["value"] == cpcv["entries"][0]["gate_quantile"]

    markets = stats["markets"]
    assert markets["markets"] == ["EURUSD-1h"]
    for entry in markets["entries"]:
        assert entry["scores"]["EURUSD-1h"] is not None
        assert entry["line"] == f"holds on {entry['holds']} of 1 market"

    regimes = stats["regimes"]
    for kind in ("validation", "holdout"):
        assert set(regimes[kind]) == {"winner", "flat", "buy_and_hold"}
        bars = sum(row["bars"] for row in regimes[kind]["winner"])
        expected = (sum(f["stop"] - f["start"] for f in results["data"]["folds"])
                    if kind == "validation" else results["data"]["holdout_bars"])
        assert bars == expected
    for table in (cpcv_table(results), regime_table(results), markets_table(results)):
        assert table and "<table" in table
    report = next(in_process.glob("sweep_report_*.txt")).read_text()
    assert "CPCV path Sharpe ratios" in report and "other markets" in report

    one = run(config_path, tmp_path, "one", "--workers", "1")
    two = run(config_path, tmp_path, "two", "--workers", "2")
    assert deterministic_bytes(one) == deterministic_bytes(in_process)
    assert deterministic_bytes(two) == deterministic_bytes(in_process)
    log = (two / "sweep_output.log").read_text()
    assert re.search(r"end of the sweep: \d+ evaluation\(s\) on dask LocalCluster of 2 CPU "
                     r"worker\(s\): .*cpcv-\d+.*market-EURUSD-1h-\d+", log)


def test_another_market_that_cannot_be_read_is_refused_before_the_run(tmp_path):
    evidence = readme_evidence()
    del evidence["markets"][0]["data"]["columns"]  # EURUSD's header needs the mapping
    config_path = tmp_path / "sweep.json"
    config_path.write_text(json.dumps(tiny_config(evidence=evidence)))
    done = cli("validate", "--config", str(config_path))
    assert done.returncode == 2
    assert "evidence.markets (EURUSD-1h)" in done.stderr


def test_every_inner_threshold_is_a_trial_in_the_ledger(tmp_path):
    """A trial whose inner search backtested k thresholds counts k against the winner (N and
    ``n_inner``), and every inner evaluation's Sharpe ratio is in the variance."""
    import numpy as np

    from cryptosweep.records.evaluations import EvaluationRow, configured
    from cryptosweep.records.ledger import LedgerTrial, Market, TrialLedger, config_key
    from cryptosweep.sweep.evidence import inner_trials

    def row(eval_id: int, sharpes: list[float]) -> EvaluationRow:
        evaluations = [{"threshold": t, "score": 10 * s, "sharpe": s, "n_trades": 5}
                       for t, s in zip((0.5, 0.55, 0.6), sharpes, strict=True)]
        chosen = evaluations[int(np.argmax(sharpes))]["threshold"]
        return configured(EvaluationRow(
            eval_id=eval_id, trial_id=eval_id, budget=2.0, seed=eval_id,
            params={"model": "lightgbm", "entry_model": {"num_leaves": eval_id},
                    "trading": {"holding_period": 4}},
            status="done", score=max(sharpes) * 10, error=None, worker=None, device=None,
            started_at=None, finished_at=None, attempts=1,
            metrics={"threshold_search": {"chosen": chosen, "evaluations": evaluations}}))

    rows = [row(1, [0.01, 0.03, 0.02]), row(2, [0.02, -0.01, 0.00])]
    assert [r.params["trading"]["threshold"] for r in rows] == [0.55, 0.5]
    inner = inner_trials(rows)
    assert [t.key for t in inner] == ["eval:1:threshold:0", "eval:1:threshold:2",
                                      "eval:2:threshold:1", "eval:2:threshold:2"]
    search = [LedgerTrial("search", f"eval:{r.eval_id}", config_key(r.params), r.seed,
                          r.budget, max(e["sharpe"] for e in r.metrics["threshold_search"]
                                        ["evaluations"])) for r in rows]
    market = Market("btc@1h", "2021-01-01", "2021-06-01")
    with TrialLedger(tmp_path / "trials.db") as ledger:
        ledger.record_trials("night", market, search + inner, now=0.0)
        count = ledger.trials_on(market, 30, now=0.0)
        without = TrialLedger(tmp_path / "alone.db")
        without.record_trials("night", market, search, now=0.0)
        alone = without.trials_on(market, 30, now=0.0)
        without.close()
    assert (alone.n_trials, count.n_trials, count.n_inner) == (2, 6, 4)
    assert count.to_dict()["n_inner"] == 4 and "n_inner" not in alone.to_dict()
    every = [0.01, 0.03, 0.02, 0.02, -0.01, 0.00]
    assert count.sharpe_variance == pytest.approx(np.var(every, ddof=1), rel=1e-12)


def test_the_effective_count_clusters_one_series_per_configuration():
    """A configuration promoted through Hyperband's rungs is one trial: its largest budget's
    series alone is clustered (its rungs' near copies would fake a cluster structure). A
    re-scored leader's other seeds count in its cluster only when its series is there."""
    import numpy as np

    from cryptosweep.core.config_files import load_config
    from cryptosweep.records.evaluations import EvaluationRow, configured
    from cryptosweep.records.ledger import config_key
    from cryptosweep.sweep.evidence import clustered_series
    from cryptosweep.sweep.rescoring import rescore_seed
    from tests.support import tiny_config

    def row(eval_id: int, leaves: int, budget: float) -> EvaluationRow:
        return configured(EvaluationRow(
            eval_id=eval_id, trial_id=leaves, budget=budget, seed=leaves,
            params={"model": "lightgbm", "entry_model": {"num_leaves": leaves},
                    "trading": {"threshold": 0.55, "holding_period": 4}},
            status="done", score=0.1, error=None, worker=None, device=None,
            started_at=None, finished_at=None, attempts=1, metrics={}))

    rows = [row(0, 5, 1.0), row(1, 6, 1.0), row(2, 5, 3.0), row(3, 5, 9.0), row(4, 7, 9.0)]
    rng = np.random.default_rng(0)
    validation = {r.eval_id: rng.normal(0, 0.01, 50) for r in rows if r.eval_id != 4}
    config = load_config(raw=tiny_config())
    leaders = [rows[3], rows[4]]  # eval 4 has no validation series (damaged)
    series, configs, seeds = clustered_series(config, 11, rows, leaders, validation)
    assert configs == {config_key(rows[0].params), config_key(rows[1].params)}
    by_config = dict(zip(sorted(configs), series, strict=True))
    assert by_config[config_key(rows[3].params)] is validation[3]  # its largest budget
    assert seeds == {(config_key(rows[3].params), rescore_seed(11, rows[3], index))
                     for index in range(config.deployment.rescore_seeds)}
