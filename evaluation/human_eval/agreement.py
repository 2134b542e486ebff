"""Krippendorff's alpha, implemented from the coincidence matrix (Krippendorff 2011, "Computing
Krippendorff's Alpha-Reliability", §A–C), for nominal, ordinal and interval data with missing values.

    alpha = 1 − D_o / D_e
    o_ck  = Σ_u (number of c–k pairs in unit u) / (m_u − 1)        coincidences, units with m_u ≥ 2
    n_c   = Σ_k o_ck,   n = Σ_c n_c                                 pairable values
    D_o   = Σ_ck o_ck δ²_ck / n,   D_e = Σ_ck n_c n_k δ²_ck / (n (n − 1))
    δ²    nominal:  0 if c = k else 1
          ordinal:  (Σ_{g=c..k} n_g − (n_c + n_k)/2)²   (ranks by the sorted values)
          interval: (c − k)²
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Level = Literal["nominal", "ordinal", "interval"]


class AgreementError(ValueError):
    """Reliability data is malformed (not 2-D) or has fewer than two pairable values."""


def coincidence_matrix(reliability_data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values (V,) and coincidences (V, V) from data shaped (raters, units) with NaN = missing."""
    data = np.asarray(reliability_data, dtype=np.float64)
    if data.ndim != 2:
        raise AgreementError(f"reliability data must be (raters, units), got shape {data.shape}")
    values = np.unique(data[~np.isnan(data)])
    if len(values) == 0:
        return values, np.zeros((0, 0))
    # counts[u, c]: how many raters gave value c to unit u, shape (U, V).
    counts = np.stack([(data == value).sum(axis=0) for value in values], axis=1).astype(np.float64)
    counts = counts.reshape(data.shape[1], len(values))
    m_u = counts.sum(axis=1)
    pairable = m_u >= 2  # a value nobody else coded for this unit cannot be paired
    weighted = counts[pairable] / (m_u[pairable] - 1.0)[:, None]
    # Ordered pairs of distinct coders per unit: c≠k → n_c n_k, c=k → n_c (n_c − 1); each / (m_u − 1).
    coincidences = weighted.T @ counts[pairable] - np.diag(weighted.sum(axis=0))
    return values, coincidences


def _delta_squared(values: np.ndarray, totals: np.ndarray, level: Level) -> np.ndarray:
    if level == "nominal":
        return 1.0 - np.eye(len(values))
    if level == "interval":
        return np.subtract.outer(values, values) ** 2
    if level == "ordinal":
        cumulative = np.concatenate([[0.0], np.cumsum(totals)])
        low = np.minimum.outer(np.arange(len(values)), np.arange(len(values)))
        high = np.maximum.outer(np.arange(len(values)), np.arange(len(values)))
        between = cumulative[high + 1] - cumulative[low]  # Σ_{g=c..k} n_g
        return (between - (totals[:, None] + totals[None, :]) / 2.0) ** 2
    raise AgreementError(f"level of measurement {level!r} is not one of nominal, ordinal, interval")


def krippendorff_alpha(reliability_data: np.ndarray, level: Level = "nominal") -> float:
    """Krippendorff's alpha of data shaped (raters, units), NaN for missing, numeric codes.

    Returns a value ≤ 1 (1: perfect agreement, 0: chance, < 0: systematic disagreement), or NaN
    when all pairable values are identical (expected disagreement is zero, alpha is undefined).
    Raises `AgreementError` when fewer than two pairable values exist.
    """
    values, coincidences = coincidence_matrix(reliability_data)
    totals = coincidences.sum(axis=1)
    n = totals.sum()
    if n < 2:
        raise AgreementError("alpha needs at least one unit coded by two or more raters")
    delta = _delta_squared(values, totals, level)
    observed = (coincidences * delta).sum() / n
    expected = (np.outer(totals, totals) * delta).sum() / (n * (n - 1))
    if expected == 0:
        return float("nan")
    return float(1.0 - observed / expected)
