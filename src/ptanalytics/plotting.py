"""Every figure ptanalytics draws, in one place and one style.

Each function takes the result (or its tidy table) it draws, an optional matplotlib ``ax`` to draw
on, and returns the :class:`matplotlib.figure.Figure`. Computation stays in the model and metric
modules; nothing here fits or aggregates beyond arranging what it is given. The model results'
``figure()`` methods call these functions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _axes(ax, figsize=(6.4, 4.0)):
    """``(figure, ax)``: the given ax and its figure, or a new figure with one ax."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


# ------------------------------------------------------------------------------------- generic
def plot_terms(table: pd.DataFrame, *, ax=None, reference: float = 0.0):
    """A forest plot of a tidy table: one row per term, estimate with its interval.

    Parameters
    ----------
    table : DataFrame
        ``term``, ``estimate`` and, when present, ``ci_low`` and ``ci_high``.
    ax : matplotlib Axes, optional
    reference : float
        Where the dashed no-difference line is drawn (0 for differences, 1 for ratios).
    """
    fig, ax = _axes(ax, figsize=(6.4, 0.45 * max(len(table), 2) + 1.2))
    y = np.arange(len(table))[::-1]
    est = table["estimate"].to_numpy(dtype=float)
    if {"ci_low", "ci_high"} <= set(table.columns):
        lo = est - table["ci_low"].to_numpy(dtype=float)
        hi = table["ci_high"].to_numpy(dtype=float) - est
        ax.errorbar(est, y, xerr=[lo, hi], fmt="o", color="black", capsize=3)
    else:
        ax.plot(est, y, "o", color="black")
    ax.axvline(reference, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(y, table["term"].astype(str).tolist())
    ax.set_xlabel("estimate")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- trajectories, dose, mix, length

# ----------------------------------------------------------------------------- dropout, survival
