"""Tidy result tables shared by every model: one row per term."""

from __future__ import annotations

import numpy as np
import pandas as pd

TIDY_COLUMNS = ["term", "estimate", "std_error", "ci_low", "ci_high", "p_value"]


def tidy(result, *, exponentiate: bool = False, alpha: float = 0.05, extra=None) -> pd.DataFrame:
    """A statsmodels result as a tidy table.

    Returns
    -------
    pandas.DataFrame
        ``term``, ``estimate``, ``std_error``, ``ci_low``, ``ci_high``, ``p_value`` (and any
        ``extra`` columns given as a dict of constants). With ``exponentiate``, estimates and
        interval ends are exponentiated (odds or hazard ratios) and ``std_error`` stays on the
        log scale.
    """
    params = pd.Series(result.params)
    bse = pd.Series(result.bse, index=params.index)
    ci = pd.DataFrame(np.asarray(result.conf_int(alpha=alpha)), index=params.index)
    pvalues = pd.Series(result.pvalues, index=params.index)
    out = pd.DataFrame(
        {
            "term": params.index.astype(str),
            "estimate": params.to_numpy(dtype=float),
            "std_error": bse.to_numpy(dtype=float),
            "ci_low": ci.iloc[:, 0].to_numpy(dtype=float),
            "ci_high": ci.iloc[:, 1].to_numpy(dtype=float),
            "p_value": pvalues.to_numpy(dtype=float),
        }
    )
    if exponentiate:
        for col in ("estimate", "ci_low", "ci_high"):
            out[col] = np.exp(out[col])
    for key, value in (extra or {}).items():
        out[key] = value
    return out


def linear_contrast(result, weights: pd.Series, *, alpha: float = 0.05) -> dict:
    """Estimate, SE, CI and p of ``weights @ params`` (weights indexed by term)."""
    from scipy import stats

    params = pd.Series(result.params)
    w = weights.reindex(params.index).fillna(0.0).to_numpy()
    cov = np.asarray(result.cov_params())[: len(params), : len(params)]
    est = float(w @ params.to_numpy())
    se = float(np.sqrt(w @ cov @ w))
    z = stats.norm.ppf(1 - alpha / 2)
    p = float(2 * stats.norm.sf(abs(est / se))) if se > 0 else float("nan")
    return {
        "estimate": est,
        "std_error": se,
        "ci_low": est - z * se,
        "ci_high": est + z * se,
        "p_value": p,
    }
