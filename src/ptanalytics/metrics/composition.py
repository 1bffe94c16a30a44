"""Compositions of exercise time: closure, zero replacement and isometric log-ratio coordinates.

The five parts are the categories in :data:`ptanalytics.cohort.catalogue.CATEGORIES` order (core
strengthening, lumbar stabilisation, aerobic, posture, flexibility).

**Zero replacement.** Log-ratios need strictly positive parts, but many patients do no aerobic or
posture work at all. Zeros are replaced multiplicatively (Martín-Fernández, Barceló-Vidal and
Pawlowsky-Glahn 2003): each zero becomes ``delta`` and the non-zero parts are shrunk by the same
factor so that the parts still sum to 1 and their ratios are unchanged. The default ``delta`` is
65% of the smallest non-zero share in the data (the usual 65%-of-detection-limit rule, with the
smallest observed share standing in for the detection limit). In a row where that would leave
too little for the non-zero parts (many zeros and a large ``delta``), ``delta`` is capped for that
row so that every part stays strictly positive (:func:`replace_zeros`). A row with no exercise
time at all (every part zero or missing) has no composition: it stays missing.

**ilr coordinates.** Pivot (sequential binary partition) coordinates::

    ilr_k = sqrt((D - k) / (D - k + 1)) * ln(x_k / geometric_mean(x_{k+1}, ..., x_D)),  k = 1..D-1

so ``ilr_1`` contrasts core strengthening with the other four categories, ``ilr_2`` lumbar
stabilisation with aerobic, posture and flexibility, and so on.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from ptanalytics.cohort.catalogue import CATEGORIES
from ptanalytics.exceptions import ConfigError

__all__ = ["closure", "has_composition", "ilr", "ilr_inverse", "replace_zeros"]


def closure(parts: pd.DataFrame) -> pd.DataFrame:
    """Rows rescaled to sum to 1 (rows summing to 0 become missing)."""
    total = parts.sum(axis=1)
    return parts.div(total.where(total > 0), axis=0)


def replace_zeros(shares: pd.DataFrame, *, delta: float | None = None) -> pd.DataFrame:
    """Multiplicative zero replacement of compositions (see the module docstring).

    Every row that has exercise time comes back strictly positive and summing to 1, whatever its
    pattern of zeros (all parts but one zero, several zeros, tiny shares): each zero becomes
    ``delta_r`` and the non-zero parts are multiplied by ``1 - z delta_r`` (``z`` zeros in the
    row), which keeps their ratios. ``delta_r = min(delta, p / (1 + z p))`` with ``p`` the row's
    smallest non-zero share: the cap (active only when ``z p`` is large, e.g. a one-part row and
    a large ``delta``) keeps a replaced zero no larger than the row's smallest non-zero part after
    shrinking, so nothing can become negative. Rows are closed first (divided by their sum).

    Rows with no exercise time (every part zero or missing) or with a missing part come back
    all missing, so their ilr coordinates are missing; the caller leaves them out and counts
    them (:func:`has_composition`).

    Parameters
    ----------
    shares : DataFrame
        One composition per row (shares or minutes; non-negative).
    delta : float, optional
        Value given to zeros, in (0, 1); default 0.65 x the smallest positive share in ``shares``.

    Returns
    -------
    pandas.DataFrame
        Same index and columns as ``shares``.
    """
    x = shares.to_numpy(dtype=float)
    if (x < 0).any():
        raise ConfigError(
            "shares has negative values; a composition's parts must be >= 0 (minutes or shares)."
        )
    total = x.sum(axis=1, keepdims=True)
    usable = np.isfinite(total[:, 0]) & (total[:, 0] > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.where(usable[:, None], x / np.where(usable, total[:, 0], 1.0)[:, None], np.nan)
    if delta is None:
        positive = x[np.isfinite(x) & (x > 0)]
        # No positive share anywhere: every row is missing and delta is not used.
        delta = 0.65 * positive.min() if positive.size else 0.5
    elif isinstance(delta, bool) or not isinstance(delta, numbers.Real) or not 0 < delta < 1:
        raise ConfigError(
            f"delta={delta!r}; expected a share strictly between 0 and 1, e.g. delta=0.001."
        )
    zeros = x == 0
    n_zero = zeros.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        smallest = np.where(zeros | ~np.isfinite(x), np.inf, x).min(axis=1, keepdims=True)
        d = np.minimum(delta, smallest / (1 + n_zero * smallest))
    out = np.where(zeros, d, x * (1 - n_zero * d))
    return pd.DataFrame(out, index=shares.index, columns=shares.columns)


def has_composition(parts: pd.DataFrame) -> pd.Series:
    """True for rows with exercise time: no part missing and a positive total.

    Rows that are False (no sessions, or minutes unknown) have no composition: mix analyses leave
    them out and report how many.
    """
    x = parts.to_numpy(dtype=float)
    ok = np.isfinite(x).all(axis=1) & (np.nan_to_num(x).sum(axis=1) > 0)
    return pd.Series(ok, index=parts.index)


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
