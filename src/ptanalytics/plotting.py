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


# ---------------------------------------------- dropout, survival, responders, missing data
def _table(result, columns, name: str, source: str) -> pd.DataFrame:
    """The table of ``result`` (a result or its table), or a ConfigError naming what is missing."""
    from ptanalytics.exceptions import ConfigError

    table = getattr(result, "table", result)
    missing = [c for c in columns if not isinstance(table, pd.DataFrame) or c not in table]
    if missing:
        raise ConfigError(
            f"{name} lacks column(s) {missing}; allowed: the result of {source} or its table."
        )
    return table


def plot_kaplan_meier(km, *, ax=None):
    """Step curves of survival (staying in the program) with their confidence bands, per group.

    Parameters
    ----------
    km : KaplanMeier or DataFrame
        From :func:`ptanalytics.models.dropout.kaplan_meier` (weeks in ``week``: time to
        dropout) or :func:`ptanalytics.models.survival.km_estimate` (``time``), or its table.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made when omitted (the caller owns it, close it with
        ``matplotlib.pyplot.close(fig)``).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes: one step line and one shaded band per group, axis labels,
        a legend, and the log-rank p-value in the title when ``km`` has one.
    """
    table = getattr(km, "table", km)
    dropout = isinstance(table, pd.DataFrame) and "time" not in table
    when = "week" if dropout else "time"
    source = "ptanalytics.models.dropout.kaplan_meier or ptanalytics.models.survival.km_estimate"
    table = _table(km, ["group", when, "survival", "ci_low", "ci_high"], "km", source)
    fig, ax = _axes(ax, figsize=(7, 4.5))
    groups = list(dict.fromkeys(table["group"].astype("str")))
    for name in groups:
        g = table[table["group"].astype("str") == name]
        x = g[when].to_numpy(dtype=float)
        (line,) = ax.step(x, g["survival"].to_numpy(dtype=float), where="post", label=name)
        lo = g["ci_low"].to_numpy(dtype=float)
        hi = g["ci_high"].to_numpy(dtype=float)
        band = np.isfinite(lo) & np.isfinite(hi)
        if band.any():
            ax.fill_between(
                x[band],
                lo[band],
                hi[band],
                step="post",
                alpha=0.2,
                color=line.get_color(),
                linewidth=0,
            )
    landmark = table.attrs.get("landmark_week")
    if dropout:
        ax.set_xlabel(
            "Weeks since enrolment"
            if landmark is None
            else f"Weeks since the week-{landmark} landmark"
        )
        ax.set_ylabel("Still in the program")
        title = "Time to dropout (Kaplan-Meier)"
    else:
        ax.set_xlabel("Time")
        ax.set_ylabel("Survival")
        title = "Kaplan-Meier estimate"
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    p = table.attrs.get("logrank_p")
    if p is None and "logrank_p" in table.columns and len(table):
        p = table["logrank_p"].iloc[0]
    if p is not None and np.isfinite(p):
        title += f"; log-rank p = {p:.3g}" if p >= 1e-4 else "; log-rank p < 0.0001"
    ax.set_title(title)
    if groups:
        by = table.attrs.get("by")
        ax.legend(
            title=(by if isinstance(by, str) else ", ".join(by or [])) or None, loc="lower left"
        )
    return fig


def _intervals(ax, labels, estimate, low, high) -> None:
    """One point per row with its interval (missing ends drawn as far as they are known)."""
    y = np.arange(len(labels))[::-1]
    est = np.asarray(estimate, dtype=float)
    lo = np.nan_to_num(est - np.asarray(low, dtype=float), nan=0.0)
    hi = np.nan_to_num(np.asarray(high, dtype=float) - est, nan=0.0)
    ax.errorbar(est, y, xerr=[lo, hi], fmt="o", color="black", capsize=3)
    ax.set_yticks(y, [str(v) for v in labels])


def plot_survival_medians(medians, *, ax=None):
    """Median survival per group with its interval (:func:`ptanalytics.models.survival.km_median`).

    An interval end that is not reached (the band stays above 0.5) is left out; a group whose
    median is not reached has no point but the words "median not reached".
    """
    source = "ptanalytics.models.survival.km_median"
    table = _table(medians, ["group", "median", "ci_low", "ci_high"], "medians", source)
    fig, ax = _axes(ax, figsize=(6.4, 0.45 * max(len(table), 2) + 1.2))
    _intervals(ax, table["group"], table["median"], table["ci_low"], table["ci_high"])
    y = np.arange(len(table))[::-1]
    for row, median in zip(y, table["median"].to_numpy(dtype=float), strict=True):
        if np.isnan(median):
            ax.text(0.02, row, "median not reached", transform=ax.get_yaxis_transform())
    ax.set_xlabel("Median survival time")
    fig.tight_layout()
    return fig


def plot_logrank(logrank, *, ax=None):
    """Observed and expected events per group, the log-rank test in the title."""
    source = "ptanalytics.models.survival.logrank_test"
    table = _table(
        logrank, ["group", "observed", "expected", "chisq", "p_value"], "logrank", source
    )
    fig, ax = _axes(ax)
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["observed"].to_numpy(dtype=float), width=0.4, label="observed")
    ax.bar(x + 0.2, table["expected"].to_numpy(dtype=float), width=0.4, label="expected")
    ax.set_xticks(x, table["group"].astype(str).tolist())
    ax.set_ylabel("Events")
    if len(table):
        chisq, p = table["chisq"].iloc[0], table["p_value"].iloc[0]
        ax.set_title(f"Log-rank chi-square = {chisq:.3g}, p = {p:.3g}")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_hazard_ratios(cox, *, ax=None):
    """A forest plot of hazard ratios on a log axis (a Cox result or its table)."""
    source = "ptanalytics.models.survival.cox_ph or ptanalytics.models.dropout.cox_dropout"
    fig = plot_terms(_table(cox, ["term", "estimate"], "cox", source), ax=ax, reference=1.0)
    ax = fig.axes[0] if ax is None else ax
    ax.set_xscale("log")
    ax.set_xlabel("Hazard ratio")
    return fig


def plot_proportions(result, *, ax=None):
    """Proportions per group with their intervals, on [0, 1].

    Parameters
    ----------
    result : result or DataFrame
        From :func:`ptanalytics.responder_table` (``proportion``, the ``by`` columns) or
        :func:`ptanalytics.models.missing_data.mi_responders` (``estimate``, ``group``), or its
        table.
    """
    table = getattr(result, "table", result)
    value = (
        "proportion" if isinstance(table, pd.DataFrame) and "proportion" in table else "estimate"
    )
    source = "ptanalytics.responder_table or ptanalytics.models.missing_data.mi_responders"
    table = _table(result, [value, "ci_low", "ci_high", "n"], "result", source)
    if "group" in table:
        labels = table["group"]
    else:
        keys = list(table.columns[: list(table.columns).index("n")])
        labels = table[keys].astype(str).agg(", ".join, axis=1) if keys else ["all"] * len(table)
    fig, ax = _axes(ax, figsize=(6.4, 0.45 * max(len(table), 2) + 1.2))
    _intervals(ax, list(labels), table[value], table["ci_low"], table["ci_high"])
    ax.set_xlim(0, 1)
    ax.set_xlabel("Proportion")
    if "definition" in table and len(table):
        ax.set_title(str(table["definition"].iloc[0]))
    fig.tight_layout()
    return fig


def plot_tipping_point(result, *, ax=None):
    """The pooled estimate over the delta grid with its interval, the tipping delta marked."""
    source = "ptanalytics.models.missing_data.tipping_point"
    table = _table(result, ["delta", "estimate", "ci_low", "ci_high"], "result", source)
    table = table.sort_values("delta")
    fig, ax = _axes(ax)
    delta = table["delta"].to_numpy(dtype=float)
    ax.plot(delta, table["estimate"].to_numpy(dtype=float), "o-", color="black")
    ax.fill_between(
        delta,
        table["ci_low"].to_numpy(dtype=float),
        table["ci_high"].to_numpy(dtype=float),
        alpha=0.2,
        color="black",
        linewidth=0,
    )
    ax.axhline(0, color="grey", linestyle="--", linewidth=1)
    tipping = getattr(result, "tipping_delta", table.attrs.get("tipping_delta"))
    if tipping is not None:
        ax.axvline(tipping, color="tab:red", linewidth=1, label=f"tipping delta = {tipping:g}")
        ax.legend()
    ax.set_xlabel("delta (points added to every imputed score)")
    ax.set_ylabel("Pooled estimate")
    fig.tight_layout()
    return fig
