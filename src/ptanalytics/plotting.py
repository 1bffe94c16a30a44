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
def plot_trajectories(pred: pd.DataFrame, *, ax=None):
    """Predicted mean NPRS by attendance band with confidence bands.

    Parameters
    ----------
    pred : DataFrame
        :func:`ptanalytics.models.trajectory.predicted_trajectories` output
        (``attendance_band``, ``week``, ``estimate``, ``ci_low``, ``ci_high``).
    ax : matplotlib Axes, optional
    """
    fig, ax = _axes(ax, figsize=(7, 4))
    for band, part in pred.groupby("attendance_band", sort=False):
        line = ax.plot(part["week"], part["estimate"], label=f"{band} attendance")[0]
        ax.fill_between(
            part["week"], part["ci_low"], part["ci_high"], alpha=0.2, color=line.get_color()
        )
    ax.set_xlabel("Weeks since enrolment")
    ax.set_ylabel("Predicted mean NPRS (0-10)")
    ax.set_title("Pain trajectories by attendance band (association, not effect)")
    ax.legend(frameon=False)
    return fig


def plot_dose_response(result, *, ax=None):
    """The dose-response curve with its confidence band.

    Parameters
    ----------
    result : DoseResponse
        :func:`ptanalytics.models.outcomes.dose_response` output (its ``curve`` and ``n``).
    ax : matplotlib Axes, optional
    """
    fig, ax = _axes(ax, figsize=(6, 4))
    c = result.curve
    ax.plot(100 * c["adherence"], c["estimate"], color="C0")
    ax.fill_between(100 * c["adherence"], c["ci_low"], c["ci_high"], alpha=0.25, color="C0")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("Adherence (% of prescribed sessions)")
    ax.set_ylabel("Difference in NPRS change vs 0% (points)")
    label = "end of guided phase" if c["timepoint"].iloc[0] == "end_guided" else "follow-up"
    ax.set_title(f"Dose-response at the {label} (n = {result.n}; association)")
    return fig


def plot_substitutions(result, *, ax=None):
    """Substitution effects as a from x to grid of estimates.

    Parameters
    ----------
    result : Substitutions or DataFrame
        :func:`ptanalytics.models.outcomes.category_substitution` output or its ``table``
        (``term`` as ``from->to``, ``estimate``, ``amount``).
    ax : matplotlib Axes, optional
    """
    from ptanalytics.vocab import CATEGORIES

    subs = getattr(result, "table", result)
    fig, ax = _axes(ax, figsize=(6, 5))
    grid = pd.DataFrame(np.nan, index=list(CATEGORIES), columns=list(CATEGORIES))
    for row in subs.itertuples():
        a, b = row.term.split("->")
        grid.loc[a, b] = row.estimate
    limit = np.nanmax(np.abs(grid.to_numpy())) or 1.0
    image = ax.imshow(grid.to_numpy(), cmap="RdBu", vmin=-limit, vmax=limit)
    labels = [c.replace("_", " ") for c in CATEGORIES]
    ax.set_xticks(range(len(labels)), labels, rotation=40, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("time moved to")
    ax.set_ylabel("time moved from")
    amount = subs["amount"].iloc[0] if len(subs) else 0.1
    ax.set_title(f"Change in NPRS when {amount:.0%} of exercise time moves")
    fig.colorbar(image, ax=ax, label="NPRS points (negative = less pain)")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- dropout, survival
