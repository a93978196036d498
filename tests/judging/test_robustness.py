"""Evidence beyond one path, pure: CPCV path distributions, per-regime tables by hand, the
one-regime flag, the other markets' spread."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cryptosweep.judging.robustness import (
    carried_by_one_regime,
    market_spread,
    path_distribution,
    per_regime,
    quantile_of,
)


def test_path_distribution_by_hand():
    out = path_distribution([-1.0, 0.5, 1.0, 2.0, 3.0])
    assert out["n_paths"] == 5
    assert out["mean"] == pytest.approx(1.1)
    assert out["fraction_positive"] == pytest.approx(0.8)
    assert out["quantiles"]["0.5"] == 1.0
    assert out["quantiles"]["0.25"] == 0.5  # linear: position 1 of 0..4
    assert out["quantiles"]["0.1"] == pytest.approx(-1.0 + 0.4 * 1.5)
    assert quantile_of([-1.0, 0.5, 1.0, 2.0, 3.0], 0.75) == 2.0
    assert out["std"] == pytest.approx(np.std([-1.0, 0.5, 1.0, 2.0, 3.0], ddof=1))
    assert path_distribution([0.3])["std"] is None
    with pytest.raises(ValueError):
        path_distribution([])
    with pytest.raises(ValueError):
        path_distribution([float("nan")])


def test_per_regime_table_by_hand():
    # bars:     0     1     2     3     4     5     6     7
    returns = [0.0, 0.01, 0.02, 0.0, -0.01, 0.0, 0.03, -0.005]
    regimes = ["up", "up", "up", "down", "down", "up", "up", "up"]
    rows = {row["regime"]: row for row in per_regime(np.array(returns), regimes, 4.0)}
    up, down = rows["up"], rows["down"]
    assert up["bars"] == 6 and down["bars"] == 2
    up_r = [0.0, 0.01, 0.02, 0.0, 0.03, -0.005]
    assert up["total_return"] == pytest.approx(sum(up_r))
    assert up["sharpe"] == pytest.approx(np.mean(up_r) / np.std(up_r, ddof=1) * 2.0)
    # up's trades: bars 1-2 (+0.03) and bars 6-7 (+0.025); down's: bar 4 (-0.01)
    assert up["trades"] == 2 and up["hit_rate"] == 1.0 and up["active_bars"] == 4
    assert down["trades"] == 1 and down["hit_rate"] == 0.0
    assert down["sharpe"] == pytest.approx(-0.005 / math.sqrt(0.00005) * 2.0)
    flat = per_regime(np.zeros(3), ["a", "a", "b"], None)
    assert [row["sharpe"] for row in flat] == [None, None]
    assert [row["hit_rate"] for row in flat] == [None, None]
    with pytest.raises(ValueError):
        per_regime(np.zeros(3), ["a"], None)


def test_a_run_cut_at_a_regime_border_counts_in_both():
    rows = {r["regime"]: r for r in per_regime(np.array([0.01, 0.02, -0.01]), ["a", "a", "b"],
                                                None)}
    assert rows["a"]["trades"] == 1 and rows["b"]["trades"] == 1


def test_one_regime_carries_the_return():
    rows = [{"regime": "up", "total_return": 0.3}, {"regime": "down", "total_return": -0.2}]
    assert "up carries the return" in carried_by_one_regime(rows)
    # The others lost 0.2: said so (it said they "made nothing" beside "+0.3000 of +0.1000")
    assert carried_by_one_regime(rows).endswith(
        "(+0.3000 of +0.1000, sums of per-bar returns, not compounded): the other regimes "
        "together lost 0.2000")
    alone = [{"regime": "up", "total_return": 0.3}, {"regime": "down", "total_return": 0.0}]
    assert carried_by_one_regime(alone).endswith("the other regimes together made nothing")
    spread = [{"regime": "up", "total_return": 0.2}, {"regime": "down", "total_return": 0.1}]
    assert carried_by_one_regime(spread) is None
    losing = [{"regime": "up", "total_return": 0.1}, {"regime": "down", "total_return": -0.2}]
    assert carried_by_one_regime(losing) is None  # no positive return to explain
    assert carried_by_one_regime([]) is None


def test_market_spread():
    out = market_spread({"a": 1.0, "b": -0.5, "c": 0.25})
    assert out["holds"] == 2 and out["n_markets"] == 3
    assert out["line"] == "holds on 2 of 3 markets"
    assert out["mean"] == pytest.approx(0.25) and out["min"] == -0.5
    assert out["std"] == pytest.approx(np.std([1.0, -0.5, 0.25], ddof=1))
    failed = market_spread({"a": None})
    assert failed["line"] == "holds on 0 of 1 market" and failed["mean"] is None
