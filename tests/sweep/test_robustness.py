"""The end of a sweep's evidence: what the journal holds is not run again (a resume), what
was journaled with other settings is; each bar's return in the regime known before it."""

from __future__ import annotations

import pytest

from cryptosweep.core.config_files import load_config
from cryptosweep.judging.explained import explained
from cryptosweep.records.journal import Journal
from cryptosweep.reporting.tables import markets_table
from cryptosweep.sweep.robustness import (
    CPCV,
    MARKET,
    cpcv_block,
    cpcv_tasks,
    journal_result,
    market_tasks,
    markets_block,
    regimes_block,
)
from cryptosweep.trading.data import sample_data_path
from cryptosweep.trading.regimes import RegimeSettings, label_regimes
from cryptosweep.trading.steps import load_market
from tests.support import tiny_config
from tests.sweep.test_rescoring import row

EVIDENCE = {"cpcv": {"enabled": True, "groups": 4, "test_groups": 2},
            "markets": [{"name": "other", "data": {"path": None}}]}


def test_a_resume_runs_only_what_the_journal_lacks(tmp_path):
    config = load_config(raw=tiny_config(evidence=EVIDENCE))
    leaders = [row(1, 0.9), row(2, 0.8)]
    journal = Journal(tmp_path / "sweep.db")
    cpcv, markets = cpcv_tasks(config, journal, leaders), market_tasks(config, journal,
                                                                       leaders)
    assert [t["task"] for t in cpcv] == ["cpcv-1", "cpcv-2"]
    assert [t["task"] for t in markets] == ["market-other-1", "market-other-2"]
    journal_result(journal, cpcv[0], {"groups": 4, "test_groups": 2, "n_splits": 6,
                                      "path_sharpe": [1.0, -1.0, 0.5],
                                      "path_trades": [3, 4, 5]})
    journal_result(journal, markets[1], {"score": 0.4, "n_trades": 9})
    assert [t["task"] for t in cpcv_tasks(config, journal, leaders)] == ["cpcv-2"]
    assert [t["task"] for t in market_tasks(config, journal, leaders)] == ["market-other-1"]
    other = load_config(raw=tiny_config(evidence={**EVIDENCE, "cpcv": {
        "enabled": True, "groups": 5, "test_groups": 2}}))
    assert len(cpcv_tasks(other, journal, leaders)) == 2  # other groups: run again
    block = cpcv_block(config, journal, leaders)
    (entry,) = block["entries"]
    assert entry["eval_id"] == 1 and entry["n_paths"] == 3
    assert entry["fraction_positive"] == 2 / 3 and entry["quantiles"]["0.5"] == 0.5
    table = markets_block(config, journal, leaders)
    assert [e["scores"]["other"] for e in table["entries"]] == [None, 0.4]
    journal.put_extra(MARKET.format("other"), 1, {"market_data": {}, "error": "DataError: x"})
    failed = markets_block(config, journal, leaders)["entries"][0]
    assert failed["errors"] == {"other": "DataError: x"} and failed["scores"]["other"] is None
    assert "failed: DataError: x" in markets_table({"statistics": {"markets": {
        **markets_block(config, journal, leaders)}}, "config": {}})
    assert journal.get_extra(MARKET.format("other"))[2]["metrics"]["n_trades"] == 9
    assert 1 in journal.get_extra(CPCV)
    off = load_config(raw=tiny_config())
    assert cpcv_tasks(off, journal, leaders) == [] == market_tasks(off, journal, leaders)
    assert cpcv_block(off, journal, leaders) is None is markets_block(off, journal, leaders)
    journal.close()


def test_a_market_whose_candles_changed_since_is_scored_again_for_every_configuration(
        tmp_path):
    """A market file replaced between a run and its resume: the configurations scored before
    kept their scores on the old candles while the rest were scored on the new ones, and one
    table compared them (a real run: -1.68 on the old EURUSD, 0.0 on the new, with exit 0)."""
    from cryptosweep.trading.data import sample_data_path

    candles = tmp_path / "other.csv.gz"
    candles.write_bytes(sample_data_path().read_bytes())
    config = load_config(raw=tiny_config(evidence={"markets": [
        {"name": "other", "data": {"path": str(candles)}}]}))
    leaders = [row(1, 0.9), row(2, 0.8)]
    journal = Journal(tmp_path / "sweep.db")
    first = market_tasks(config, journal, leaders)
    journal_result(journal, first[0], {"score": 0.4, "n_trades": 9})  # then the run stopped
    assert [t["task"] for t in market_tasks(config, journal, leaders)] == ["market-other-2"]
    candles.write_bytes(candles.read_bytes()[:-1000])  # new candles at the same path
    again = market_tasks(config, journal, leaders)
    journal.close()
    assert [t["task"] for t in again] == ["market-other-1", "market-other-2"]
    assert again[0]["market_sha256"] != first[0]["market_sha256"]


def test_cpcv_paths_fitted_before_the_sample_weights_counted_are_made_again(tmp_path):
    """CPCV's splits were fitted unweighted while the folds were weighted: a resume with
    objective.sample_weights: uniqueness kept such paths beside weighted ones (a review)."""
    weighted = load_config(raw=tiny_config(evidence=EVIDENCE,
                                           objective__sample_weights="uniqueness"))
    uniform = load_config(raw=tiny_config(evidence=EVIDENCE))
    leaders = [row(1, 0.9), row(2, 0.8)]
    journal = Journal(tmp_path / "sweep.db")
    paths = {"groups": 4, "test_groups": 2, "n_splits": 6, "path_sharpe": [1.0, -1.0, 0.5],
             "path_trades": [3, 4, 5]}
    journal.put_extra(CPCV, 1, paths)  # as the code before the weights journaled it
    journal_result(journal, cpcv_tasks(weighted, journal, leaders)[1], paths)
    assert [t["task"] for t in cpcv_tasks(weighted, journal, leaders)] == ["cpcv-1"]
    assert cpcv_tasks(uniform, journal, leaders) == []  # unweighted: the same fits
    journal.close()


def test_a_market_whose_candles_cannot_be_read_is_its_cells_failure_not_the_runs(tmp_path):
    """Its candles' digest is taken where the tasks are made: a market folder that lost its
    files stopped the whole end of the sweep there (a review); its task now fails in the
    market's cell, as the README says."""
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "candles.csv.gz").write_bytes(sample_data_path().read_bytes())
    config = load_config(raw=tiny_config(evidence={"markets": [
        {"name": "other", "data": {"path": str(folder)}}]}))
    (folder / "candles.csv.gz").unlink()
    journal = Journal(tmp_path / "sweep.db")
    tasks = market_tasks(config, journal, [row(1, 0.9)])
    journal.close()
    assert [(t["task"], t["market_sha256"]) for t in tasks] == [("market-other-1", None)]


def test_a_bars_return_goes_to_the_regime_known_at_the_close_before(tmp_path):
    config = load_config(raw=tiny_config())
    market = load_market(config.objective_spec())
    labels = label_regimes(market.close)["regime"].to_numpy()
    folds = [{"start": 1000, "stop": 1500}, {"start": 1500, "stop": 2000}]
    bars = list(range(1000, 2000))
    # 1 on every bar whose previous bar is labelled up_*, else 0: all of it must land in up_*.
    returns = [1.0 if str(labels[t - 1]).startswith("up") else 0.0 for t in bars]
    journal = Journal(tmp_path / "sweep.db")
    journal.put_returns("validation", 1, returns)
    block = regimes_block(config, journal, row(1, 0.5), {"folds": folds,
                                                         "periods_per_year": 8766.0})
    journal.close()
    table = {r["regime"]: r for r in block["validation"]["winner"]}
    assert sum(r["bars"] for r in table.values()) == len(bars)
    for regime, r in table.items():
        expected = r["bars"] if regime.startswith("up") else 0
        assert r["total_return"] == expected, regime


def test_warm_up_bars_are_never_the_regime_that_carries_the_return(tmp_path):
    """All of the return on bars without a regime (warm-up) and none on the labelled bars:
    the flag said "the regime warmup carries the return" and the report counted it."""
    config = load_config(raw=tiny_config(evidence={"regimes": {"volatility_min_history": 1200}}))
    market = load_market(config.objective_spec())
    regimes = config.evidence.regimes
    labels = label_regimes(market.close, RegimeSettings(
        trend_lookback=regimes.trend_lookback, volatility_window=regimes.volatility_window,
        volatility_min_history=regimes.volatility_min_history))["regime"].to_numpy()
    folds = [{"start": 1000, "stop": 1500}, {"start": 1500, "stop": 2000}]
    returns = [0.01 if labels[t - 1] == "warmup" else 0.0 for t in range(1000, 2000)]
    assert sum(returns) > 0 and 0.0 in returns
    journal = Journal(tmp_path / "sweep.db")
    journal.put_returns("validation", 1, returns)
    block = regimes_block(config, journal, row(1, 0.5), {"folds": folds,
                                                         "periods_per_year": 8766.0})
    journal.close()
    assert block["caveats"] == []
    (line,) = [r for r in explained({"statistics": {"regimes": block}})
               if r.name == "validation by regime"]
    labelled = sum(r["regime"] != "warmup" for r in block["validation"]["winner"])
    assert line.value == f"positive in 0 of {labelled} regimes"
    assert "225 bars without a regime (warm-up)" in line.meaning
    assert "carries" not in line.meaning


def test_a_cpcv_task_whose_worker_died_on_every_attempt_stops_the_run_in_one_line(tmp_path):
    """dask's KilledWorker (a worker OOM-killed while fitting C(N, k) splits, max_retries + 1
    times) came back from the end of the sweep as a traceback, exit 1; now one line naming
    the task, exit 6, and nothing of it journaled (a resume runs it again)."""
    from types import SimpleNamespace

    from distributed.scheduler import KilledWorker

    from cryptosweep.core.errors import InfrastructureError
    from cryptosweep.execution.worker import TaskOutcome
    from cryptosweep.sweep.finalize import _journal

    killed = KilledWorker("final-cpcv-3-3", SimpleNamespace(address="tcp://127.0.0.1:4"), 3)
    payload = {"task": "cpcv-3", "kind": "cpcv", "eval_id": 3, "groups": 4, "test_groups": 2}
    journal = Journal(tmp_path / "sweep.db")
    with pytest.raises(InfrastructureError) as error:
        _journal(iter([TaskOutcome(payload, error=killed)]), journal, 1)
    held = journal.get_extra(CPCV)
    journal.close()
    message = str(error.value)
    assert error.value.exit_code == 6 and "\n" not in message
    assert message.startswith("end of the sweep: cpcv-3: its worker process died on every "
                              "attempt (out of memory? give the workers more memory, or run "
                              "fewer of them; dask: Attempted to run task 'final-cpcv-3-3'")
    assert message.endswith("killed.html)") and held == {}
