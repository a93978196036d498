"""Recorded statistics do not depend on the BLAS kernel: the same numbers on every CPU.

OpenBLAS picks its kernels by CPU, or by ``OPENBLAS_CORETYPE``; a night run from cron (that
variable unset) recorded a Newey–West t-statistic one bit away from the same night run from a
shell that set it. Each kernel the machine can run computes the statistics in a fresh
interpreter; every one must print the same bytes.
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from cryptosweep.judging.exact_sums import exact_dot, exact_mean, exact_sum

# Each OpenBLAS core type with the CPU flags it needs (x86-64; SSE3 is "pni" in /proc/cpuinfo).
CORE_TYPES = {"Prescott": {"pni"}, "Nehalem": {"sse4_2"}, "Sandybridge": {"avx"},
              "Haswell": {"avx2", "fma"}, "SkylakeX": {"avx512f"}}

# On the bundled BTC sample's last 1,900 hours: buy-and-hold, a strategy long for two hours
# from 14:00 UTC each day (its returns those bars, 0 elsewhere), another, and twelve trials
# made of such hours (the effective number of trials and their Sharpe ratios' variance).
STATISTICS = """
import json, sys
import numpy as np
from cryptosweep.judging.comparison import jobson_korkie_memmel
from cryptosweep.judging.effective_trials import effective_number_of_trials
from cryptosweep.judging.permutation import alpha_tstat
from cryptosweep.trading.data import load_ohlcv
close = load_ohlcv()["close"].iloc[-1901:]
market = (close.to_numpy()[1:] / close.to_numpy()[:-1]) - 1.0
hours = close.index[1:].hour
strategy = np.where((hours == 14) | (hours == 15), market, 0.0)
other = np.where(hours % 3 == 0, market, 0.0)
out = {}
for covariance in ("hac", "ols"):
    result = alpha_tstat(strategy, market, covariance=covariance)
    out[covariance] = [repr(result.alpha), repr(result.beta), repr(result.se_alpha)]
test = jobson_korkie_memmel(strategy, other)
out["jobson_korkie"] = [repr(test.statistic), repr(test.p_value)]
trials = np.column_stack([np.roll(market, 5 * (k % 3)) + 0.3 * np.roll(market, 50 + k)
                          for k in range(12)])
clusters = effective_number_of_trials(trials, seed=1)
out["effective_trials"] = [clusters.n_effective, repr(clusters.sharpe_variance)]
print(json.dumps(out))
"""


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def test_the_recorded_statistics_are_the_same_bytes_on_every_blas_kernel():
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("OpenBLAS core types are named here for x86-64")
    flags = _cpu_flags()
    runnable = [core for core, needs in CORE_TYPES.items() if needs <= flags]
    assert len(runnable) >= 2, f"this CPU runs fewer than two OpenBLAS kernels ({flags})"
    # The generic kernel, the next one and the CPU's best (three interpreters, not five: the
    # suite's time): on an AVX-512 machine the three gave three different t-statistics.
    cores = list(dict.fromkeys([*runnable[:2], runnable[-1]]))
    printed = {}
    for core in cores:
        env = {"PATH": "/usr/bin:/bin", "OPENBLAS_CORETYPE": core, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "lib")}
        done = subprocess.run([sys.executable, "-c", STATISTICS], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        printed[core] = json.loads(done.stdout)
    first = printed[cores[0]]
    assert all(values == first for values in printed.values()), printed


def test_exact_sums_do_not_depend_on_the_order_of_their_terms():
    rng = np.random.default_rng(3)
    values = rng.standard_t(3, 10_001) * 10.0 ** rng.integers(-8, 8, 10_001)
    order = rng.permutation(values.size)
    assert exact_sum(values) == exact_sum(values[order]) == math.fsum(values.tolist())
    other = rng.standard_normal(values.size)
    assert exact_dot(values, other) == exact_dot(values[order], other[order])
    assert exact_mean(values) == exact_sum(values) / values.size
    # One rounding of the exact sum (as rationals compute it).
    products = np.multiply(values[:500], other[:500])
    assert exact_sum(products) == float(sum(Fraction(float(p)) for p in products))
