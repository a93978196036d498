"""Whether to enter, and how much: an expected-value entry rule, bet sizes from a classifier's
probability, and volatility-targeted sizes.

* :func:`expected_value_entries` — enter when the trade's expected net return is positive,
  treating it as a bet with two outcomes (take profit or stop loss), the asymmetric-payout
  setting of López de Prado (2018), *Advances in Financial Machine Learning* (AFML), ch. 15.4:
  ``E = p·tp − (1 − p)·sl − cost``, break-even precision ``p* = (sl + cost) / (tp + sl)``.
* :func:`bet_size` — AFML ch. 10.3 (snippet 10.1), the size from the predicted probability of
  the chosen class, with the discretisation of AFML 10.5 (snippet 10.3).
* :func:`volatility_target_size` — leverage that scales a position to a target annualised
  volatility, ``min(σ_target / (σ_bar·√P), L_max)``: Harvey, Hoyle, Korgaonkar, Rattray,
  Sargaison & Van Hemert, "The Impact of Volatility Targeting", *Journal of Portfolio
  Management* 45(1), 2018.

All price moves are fractions of the entry price (``0.02`` = 2 %), as ``stop_loss`` and
``take_profit`` of :func:`cryptosweep.trading.backtest.simulate`. NaN inputs mean "no estimate"
(e.g. the warm-up of a rolling window); each function says what it returns for them.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def break_even_probability(
    take_profit: np.ndarray | float, stop_loss: np.ndarray | float, cost: np.ndarray | float
) -> np.ndarray:
    """``p* = (sl + cost) / (tp + sl)``: the probability of hitting the take profit at which
    :func:`expected_value_entries`'s expected return is exactly 0 (AFML 15.4's implied
    precision with a zero target; above 1 when no probability can pay the cost)."""
    tp, sl, c = _check_payoffs(take_profit, stop_loss, cost)
    return (sl + c) / (tp + sl)


def expected_value_entries(
    probability: np.ndarray | float,
    take_profit: np.ndarray | float,
    stop_loss: np.ndarray | float,
    cost: np.ndarray | float,
) -> np.ndarray:
    """Boolean entries: ``p·tp − (1 − p)·sl − cost > 0`` (broadcast over the arguments).

    ``probability`` is the model's probability that the trade ends at the take profit rather
    than the stop; the payoff is ``+tp`` or ``−sl`` (fractions of the entry price) less the
    round-trip ``cost`` (fees and slippage of both sides, also a fraction). Equivalently ``p >
    p*`` with ``p* = (sl + cost) / (tp + sl)`` (:func:`break_even_probability`); at exactly
    ``p*`` nothing is entered. Time exits (neither level reached) are outside this two-outcome
    model. A NaN probability gives False (no estimate, no entry).

    Raises ``ValueError`` for a probability outside ``[0, 1]``, a ``take_profit`` or
    ``stop_loss`` not finite and > 0, or a ``cost`` not finite and >= 0.
    """
    p = _check_probability(probability)
    tp, sl, c = _check_payoffs(take_profit, stop_loss, cost)
    with np.errstate(invalid="ignore"):
        return np.asarray(p * tp - (1.0 - p) * sl - c > 0.0)


def bet_size(
    probability: np.ndarray | float, n_classes: int = 2, step: float | None = None
) -> np.ndarray:
    """AFML 10.3 (snippet 10.1) for a long-only classifier: from the predicted probability
    ``p`` of the long class, ``z = (p − 1/n) / √(p(1 − p))`` and ``m = 2Φ(z) − 1``, clipped to
    ``[0, 1]`` (float64, the shape of ``probability``).

    So ``p = 1/n`` gives 0 (0.5 for a binary classifier), ``p → 1`` gives 1, and below ``1/n``
    the size is 0, not a short. ``m`` rises monotonically with ``p``. The endpoints are the
    limits: ``p = 1`` gives 1, ``p = 0`` gives 0.

    ``step`` (in ``(0, 1]``) discretises as AFML 10.5 (snippet 10.3): ``m* = round(m / step) ·
    step``, capped at 1 (``np.round``, halves to even, as the pandas ``round`` of the snippet).
    A NaN probability gives NaN (no estimate: the caller decides, e.g. no position).

    Raises ``ValueError`` for a probability outside ``[0, 1]``, ``n_classes`` not an integer
    >= 2, or a bad ``step``.
    """
    p = _check_probability(probability)
    if isinstance(n_classes, bool) or int(n_classes) != n_classes or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    if step is not None and not (math.isfinite(step) and 0.0 < step <= 1.0):
        raise ValueError(f"step must be in (0, 1], got {step!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p - 1.0 / int(n_classes)) / np.sqrt(p * (1.0 - p))  # ±inf at p = 0 and p = 1
    size = np.clip(2.0 * stats.norm.cdf(z) - 1.0, 0.0, 1.0)
    if step is not None:
        size = np.minimum(np.round(size / step) * step, 1.0)
    return np.asarray(size, dtype="float64")


def volatility_target_size(
    realised_vol_per_bar: np.ndarray | float,
    target_annual_vol: float,
    bars_per_year: float,
    max_leverage: float = 1.0,
) -> np.ndarray:
    """Position size (leverage, float64) ``min(σ_target / (σ_t · √P), max_leverage)`` that
    scales a position to ``target_annual_vol`` (Harvey et al., JPM 2018).

    ``realised_vol_per_bar[t]`` is the standard deviation of one-bar returns estimated from
    bars ``<= t`` only (e.g. ``realised_vol_24`` of :mod:`cryptosweep.trading.features`), so the
    size is known at ``t``'s close, for an entry at ``t + 1``'s open. ``σ_t · √P`` annualises it
    with ``P = bars_per_year`` bars a year (8760 for hourly bars traded around the clock),
    which assumes serially uncorrelated returns. ``σ_t = 0`` gives ``max_leverage``; NaN (the
    warm-up) gives NaN.

    Raises ``ValueError`` for a negative or infinite volatility, or a ``target_annual_vol``,
    ``bars_per_year`` or ``max_leverage`` not finite and > 0.
    """
    sigma = np.asarray(realised_vol_per_bar, dtype="float64")
    if np.any(sigma < 0.0) or np.any(np.isinf(sigma)):
        raise ValueError("realised_vol_per_bar must be >= 0 and finite (NaN allowed)")
    for name, value in (
        ("target_annual_vol", target_annual_vol),
        ("bars_per_year", bars_per_year),
        ("max_leverage", max_leverage),
    ):
        if not (math.isfinite(value) and value > 0.0):
            raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    annual = sigma * math.sqrt(bars_per_year)
    with np.errstate(divide="ignore"):
        raw = target_annual_vol / annual  # inf where sigma = 0, NaN stays NaN
    return np.asarray(np.minimum(raw, max_leverage), dtype="float64")


def _check_probability(probability: np.ndarray | float) -> np.ndarray:
    p = np.asarray(probability, dtype="float64")
    if np.any((p < 0.0) | (p > 1.0)):
        raise ValueError("probability must lie in [0, 1] (NaN allowed)")
    return p


def _check_payoffs(
    take_profit: np.ndarray | float, stop_loss: np.ndarray | float, cost: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tp = np.asarray(take_profit, dtype="float64")
    sl = np.asarray(stop_loss, dtype="float64")
    c = np.asarray(cost, dtype="float64")
    for name, values in (("take_profit", tp), ("stop_loss", sl)):
        if not np.all(np.isfinite(values) & (values > 0.0)):
            raise ValueError(f"{name} must be finite and > 0 (a fraction of the entry price)")
    if not np.all(np.isfinite(c) & (c >= 0.0)):
        raise ValueError("cost must be finite and >= 0 (a fraction of the entry price)")
    return tp, sl, c
