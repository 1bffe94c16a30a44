"""Compositions of exercise time: closure, zero replacement and isometric log-ratio coordinates.

The five parts are the categories in :data:`ptanalytics.catalogue.CATEGORIES` order (core
strengthening, lumbar stabilisation, aerobic, posture, flexibility).

**Zero replacement.** Log-ratios need strictly positive parts, but many patients do no aerobic or
posture work at all. Zeros are replaced multiplicatively (Martín-Fernández, Barceló-Vidal and
Pawlowsky-Glahn 2003): each zero becomes ``delta`` and the non-zero parts are shrunk by the same
factor so that the parts still sum to 1 and their ratios are unchanged. The default ``delta`` is
65% of the smallest non-zero share in the data (the usual 65%-of-detection-limit rule, with the
smallest observed share standing in for the detection limit).

**ilr coordinates.** Pivot (sequential binary partition) coordinates::

    ilr_k = sqrt((D - k) / (D - k + 1)) * ln(x_k / geometric_mean(x_{k+1}, ..., x_D)),  k = 1..D-1

so ``ilr_1`` contrasts core strengthening with the other four categories, ``ilr_2`` lumbar
stabilisation with aerobic, posture and flexibility, and so on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptanalytics.catalogue import CATEGORIES

__all__ = ["closure", "ilr", "ilr_inverse", "replace_zeros"]


def closure(parts: pd.DataFrame) -> pd.DataFrame:
    """Rows rescaled to sum to 1 (rows summing to 0 become missing)."""
    total = parts.sum(axis=1)
    return parts.div(total.where(total > 0), axis=0)


def replace_zeros(shares: pd.DataFrame, *, delta: float | None = None) -> pd.DataFrame:
    """Multiplicative zero replacement of closed compositions (see the module docstring).

    Parameters
    ----------
    shares : DataFrame
        One composition per row, summing to 1 (rows with missing values pass through).
    delta : float, optional
        Value given to zeros; default 0.65 x the smallest positive share in ``shares``.
    """
    x = shares.to_numpy(dtype=float)
    if delta is None:
        positive = x[np.isfinite(x) & (x > 0)]
        delta = 0.65 * positive.min() if positive.size else 0.0
    zeros = x == 0
    n_zero = zeros.sum(axis=1, keepdims=True)
    out = np.where(zeros, delta, x * (1 - n_zero * delta))
    return pd.DataFrame(out, index=shares.index, columns=shares.columns)


def _basis(d: int) -> np.ndarray:
    """(d-1) x d pivot-coordinate contrast matrix applied to log parts."""
    v = np.zeros((d - 1, d))
    for k in range(d - 1):
        rest = d - k - 1
        v[k, k] = np.sqrt(rest / (rest + 1))
        v[k, k + 1 :] = -np.sqrt(rest / (rest + 1)) / rest
    return v


def ilr(shares: pd.DataFrame, *, prefix: str = "ilr") -> pd.DataFrame:
    """Pivot ilr coordinates of strictly positive compositions (columns ``ilr_1`` ...).

    Rows with a zero or missing part give missing coordinates; replace zeros first.
    """
    x = shares.to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(np.where(x > 0, x, np.nan))
    coords = logs @ _basis(x.shape[1]).T
    cols = [f"{prefix}_{k}" for k in range(1, x.shape[1])]
    return pd.DataFrame(coords, index=shares.index, columns=cols)


def ilr_inverse(coords: pd.DataFrame, *, parts: list[str] | None = None) -> pd.DataFrame:
    """Compositions from pivot ilr coordinates (the inverse of :func:`ilr`)."""
    z = coords.to_numpy(dtype=float)
    logs = z @ _basis(z.shape[1] + 1)
    x = np.exp(logs - logs.max(axis=1, keepdims=True))
    x /= x.sum(axis=1, keepdims=True)
    names = parts or [f"share_{c}" for c in CATEGORIES]
    return pd.DataFrame(x, index=coords.index, columns=names)
