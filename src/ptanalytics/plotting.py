"""Every figure ptanalytics draws, in one place and one style.

Each function takes the result (or its tidy table) it draws, an optional matplotlib ``ax`` to draw
on, and returns the :class:`matplotlib.figure.Figure`. Computation stays in the model and metric
modules; nothing here fits or aggregates beyond arranging what it is given. The model results'
``figure()`` methods call these functions; the notebooks call the descriptive figures (a
figure of two panels takes ``axes``, a pair of Axes, in place of ``ax``).

Every figure is drawn in one style (:func:`style`: seaborn's ``whitegrid`` look and its
colour-blind-safe ``colorblind`` palette, applied in a context, never globally) and carries a
description for screen readers (:func:`describe`, read back by :func:`alt_text`), which the
report puts in the image's ``alt``. No figure suppresses small groups itself: the caller passes
only groups (bands, weeks, curves, substitutions) of at least ``min_cell`` patients.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

import numpy as np
import pandas as pd

__all__ = [
    "alt_text",
    "describe",
    "plot_adherence_distribution",
    "plot_band_trajectories",
    "plot_cohort_overview",
    "plot_dose_response",
    "plot_dropout_weeks",
    "plot_flow",
    "plot_forest",
    "plot_hazard_ratios",
    "plot_kaplan_meier",
    "plot_logrank",
    "plot_outcomes_by_group",
    "plot_patient_slopes",
    "plot_power",
    "plot_proportions",
    "plot_responders_by_group",
    "plot_substitutions",
    "plot_survival_medians",
    "plot_terms",
    "plot_tipping_point",
    "plot_trajectories",
    "plot_weekly_adherence",
    "plot_weekly_adherence_by_phase",
    "plot_weekly_means",
    "plot_weekly_minutes",
    "plot_weekly_missing",
    "sample_band_patients",
    "style",
    "term_labels",
]

#: The seaborn palette of every figure (colour-blind safe).
PALETTE = "colorblind"


@contextmanager
def style():
    """The one style of every ptanalytics figure, as a context (``matplotlib.rc_context``).

    seaborn's ``whitegrid`` axes style and ``notebook`` context (fonts at 0.9) with the
    colour-blind-safe ``colorblind`` palette as the colour cycle (``C0``, ``C1``, ... name its
    colours inside the context). Nothing global is changed: ``sns.set_theme`` is not called.

    Examples
    --------
    >>> from ptanalytics import plotting
    >>> with plotting.style():
    ...     fig = plotting.plot_patient_slopes([0.1, -0.2, -0.4], average=-0.2)
    """
    import matplotlib as mpl
    import seaborn as sns
    from cycler import cycler

    rc = {
        **sns.axes_style("whitegrid"),
        **sns.plotting_context("notebook", font_scale=0.9),
        "axes.prop_cycle": cycler(color=sns.color_palette(PALETTE)),
        "figure.facecolor": "white",
        "savefig.facecolor": "white",
    }
    with mpl.rc_context(rc):
        yield


def _styled(fn):
    """Draw ``fn``'s figure in :func:`style`."""

    @functools.wraps(fn)
    def styled(*args, **kwargs):
        with style():
            return fn(*args, **kwargs)

    return styled


def describe(fig, alt: str, *, caption: str | None = None):
    """Attach the description of ``fig`` (``alt``: what it shows, for the image's ``alt``) and
    optionally a caption (shown under it in the report); returns ``fig``."""
    fig._pt_alt = " ".join(str(alt).split())
    if caption is not None:
        fig._pt_caption = " ".join(str(caption).split())
    return fig


def alt_text(fig) -> str:
    """The description of ``fig``: the one :func:`describe` attached, else one made from its
    titles and axis labels ("Figure: <title>; x axis: ...; y axis: ...")."""
    alt = getattr(fig, "_pt_alt", None)
    if alt:
        return alt
    parts = [fig._suptitle.get_text()] if getattr(fig, "_suptitle", None) else []
    for ax in fig.axes:
        words = [ax.get_title()]
        words += [f"{k} axis: {v}" for k, v in (("x", ax.get_xlabel()), ("y", ax.get_ylabel()))]
        parts.append("; ".join(w for w in words if w and not w.endswith(": ")))
    return "Figure: " + " | ".join(p for p in parts if p) if any(parts) else "Figure."


def _axes(ax, figsize=(6.4, 4.0)):
    """``(figure, ax)``: the given ax and its figure, or a new figure with one ax."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _panels(axes, shape: tuple[int, int], figsize, **layout):
    """``(figure, axes)`` for a figure of ``shape`` panels: the given Axes (as many as the
    panels, all on one figure) or a new figure laid out by ``plt.subplots(*shape, **layout)``."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(*shape, figsize=figsize, **layout)
        return fig, tuple(np.ravel(axes))
    axes = tuple(np.ravel(np.asarray(axes, dtype=object)))
    n = shape[0] * shape[1]
    if len(axes) != n or not all(hasattr(a, "figure") for a in axes):
        from ptanalytics.exceptions import ConfigError

        raise ConfigError(
            f"axes={len(axes)} object(s); allowed: {n} matplotlib Axes ({shape[0]} x {shape[1]}). "
            "Fix: pass axes=None for a new figure, or the Axes of plt.subplots"
            f"({shape[0]}, {shape[1]})."
        )
    return axes[0].figure, axes


# ------------------------------------------------------------------------------------- generic
@_styled
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


_TERM_WORDS = {
    "Intercept": "intercept",
    "months_guided": "pain change per 4 weeks, guided phase",
    "months_maintenance": "pain change per 4 weeks, maintenance phase",
    "maintenance_step": "step at the start of maintenance",
    "adherence_between": "adherence, between patients (per 10 points above the mean)",
    "adherence_between:months_guided": "adherence (per 10 points) x guided-phase slope",
    "adherence_between:months_maintenance": "adherence (per 10 points) x maintenance slope",
    "adherence_within": "a week 10 points above the patient's usual adherence (next week)",
    "planned_weeks_c": "planned guided length (per week above 8)",
    "age_c": "age (per 10 years above the mean)",
    "I(10 * adh)": "adherence (per 10 points)",
    "age": "age (per year)",
    "nprs_baseline": "baseline NPRS (per point)",
    "nprs_end_guided": "NPRS at the end of the guided phase (per point)",
    "pain_change": "pain change since baseline (per NPRS point)",
    "maintenance": "maintenance phase",
}


def _ilr_words(k: int) -> str:
    """Words for ``ilr_k``: the pivot category against the ones after it (the basis of
    :mod:`ptanalytics.metrics.composition`)."""
    from ptanalytics.vocab import CATEGORIES

    names = [c.replace("_", " ") for c in CATEGORIES]
    if not 1 <= k < len(names):
        return f"ilr {k}"
    rest = "the rest" if k == 1 else ", ".join(names[k:])
    return f"{names[k - 1]} vs {rest} (ilr {k})"


def _term_words(term: str, guided_reference: int) -> str:
    import re

    if term in _TERM_WORDS:
        return _TERM_WORDS[term]
    if m := re.fullmatch(r"ilr_(\d+)", term):
        return _ilr_words(int(m.group(1)))
    if m := re.fullmatch(r"C\(guided_weeks(?:, Treatment\((\d+)\))?\)\[T\.(\d+)\]", term):
        return f"planned {m.group(2)} vs {m.group(1) or guided_reference} weeks"
    if m := re.fullmatch(r"C\((\w+)(?:, [^)]*\))?\)\[T\.(.+)\]", term):
        return f"{m.group(1).replace('_', ' ')}: {m.group(2).replace('_', ' ')} vs reference"
    if m := re.fullmatch(r"C\((\w+)(?:, [^)]*\))?\)", term):  # a factor as a whole
        return _term_words(m.group(1), guided_reference)
    if m := re.fullmatch(r"co_(\w+)", term):
        kind = m.group(1).replace("heat_cold", "heat or cold").replace("_", " ")
        return f"co-intervention: {kind}"
    if m := re.fullmatch(r"ns\(adh\)(\d+)", term):
        return f"adherence spline basis {m.group(1)}"
    return term.replace("_", " ")


def term_labels(terms, *, guided_reference: int = 8) -> list[str]:
    """Plain words for model terms, in order (unknown terms with spaces for underscores).

    ``ilr_1`` is "core strengthening vs the rest (ilr 1)", ``ilr_2`` "lumbar stabilization vs
    aerobic, posture, flexibility (ilr 2)" (the pivot basis of
    :mod:`ptanalytics.metrics.composition`), ``C(guided_weeks)[T.6]`` "planned 6 vs 8 weeks"
    (``guided_reference``, or the ``Treatment(k)`` of the term), ``C(sex)[T.male]`` "sex: male
    vs reference", ``co_massage`` "co-intervention: massage"; the mixed model's time and
    adherence terms (:mod:`ptanalytics.models.trajectory`) in words with their units.

    Examples
    --------
    >>> term_labels(["ilr_1", "C(guided_weeks)[T.6]"])
    ['core strengthening vs the rest (ilr 1)', 'planned 6 vs 8 weeks']
    """
    return [_term_words(str(t), guided_reference) for t in terms]


@_styled
def plot_forest(table: pd.DataFrame, *, ax=None, reference: float = 0.0, title: str | None = None):
    """A forest plot of a model's terms in plain words (:func:`term_labels`).

    Parameters
    ----------
    table : DataFrame
        Tidy rows ``term``, ``estimate``, ``ci_low``, ``ci_high`` (the caller leaves out the
        intercept and terms of groups below ``min_cell``).
    ax : matplotlib Axes, optional
    reference : float
        The no-difference line (0 for differences, 1 for ratios).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        One point with its interval per term, labelled in words, the dashed reference line.
    """
    fix = "pass the model's table (term, estimate, ci_low, ci_high)"
    checked = _table(table, ["term", "estimate", "ci_low", "ci_high"], "table", "a model", fix)
    fig, ax = _axes(ax, figsize=(9, 0.4 * max(len(checked), 2) + 1.4))
    plot_terms(checked.assign(term=term_labels(checked["term"])), ax=ax, reference=reference)
    ax.set_xlabel("Estimate with 95% CI (NPRS points; association)")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    rows = "; ".join(
        f"{label} {e:.2f} ({lo:.2f} to {hi:.2f})"
        for label, e, lo, hi in zip(
            term_labels(checked["term"]),
            checked["estimate"],
            checked["ci_low"],
            checked["ci_high"],
            strict=True,
        )
    )
    caption = "Each term adjusted for the others in the model; associations, not effects."
    alt = f"Forest plot of {len(checked)} model terms, estimate (95% CI): {rows}."
    return describe(fig, alt, caption=caption)


# ---------------------------------------------------------------- trajectories, dose, mix, length
@_styled
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


#: Seed of the patients sampled by :func:`plot_band_trajectories` (the same input draws the same
#: patients, so the same report bytes).
SAMPLE_SEED = 20240108


def sample_band_patients(
    observed: pd.DataFrame, *, min_cell: int, per_band: int = 30, seed: int = SAMPLE_SEED
) -> dict:
    """The patients :func:`plot_band_trajectories` draws: per attendance band of at least
    ``min_cell`` patients (in band order), at most ``per_band`` of them drawn without
    replacement, reproducibly (``seed``; ids sorted first, so row order does not matter).

    Returns
    -------
    dict
        band -> (patients of the band, sorted array of the sampled patient ids).
    """
    from ptanalytics.vocab import ATTENDANCE_BANDS

    rng = np.random.default_rng(seed)
    bands = observed.dropna(subset=["attendance_band"])
    sizes = bands.groupby("attendance_band", observed=True)["patient_id"].nunique()
    order = [b for b in ATTENDANCE_BANDS if b in sizes.index]
    order += sorted(str(b) for b in sizes.index if b not in ATTENDANCE_BANDS)
    out = {}
    for band in order:
        if int(sizes[band]) < min_cell:
            continue
        ids = np.sort(bands.loc[bands["attendance_band"] == band, "patient_id"].unique())
        k = min(per_band, len(ids))
        out[band] = (int(sizes[band]), np.sort(rng.choice(ids, size=k, replace=False)))
    return out


@_styled
def plot_band_trajectories(
    observed: pd.DataFrame,
    pred: pd.DataFrame,
    *,
    min_cell: int,
    counts: dict | None = None,
    per_band: int = 30,
    seed: int = SAMPLE_SEED,
    axes=None,
):
    """Observed NPRS of a sample of patients and the model's mean trajectory, by attendance band.

    One panel per attendance band of at least ``min_cell`` patients: thin translucent lines, the
    observed weekly NPRS of at most ``per_band`` patients of the band drawn at random
    (:func:`sample_band_patients`, reproducible with ``seed``), and the bold line of the model's
    predicted mean NPRS with its confidence band; a dashed line marks the change from the guided
    phase to maintenance. No patient id, date or label of a single line is drawn.

    Parameters
    ----------
    observed : DataFrame
        One row per patient and week: ``patient_id``, ``week``, ``nprs`` (missing where not
        assessed), ``attendance_band`` (:func:`ptanalytics.patient_weeks` with the patient
        summary's band merged on).
    pred : DataFrame
        :func:`ptanalytics.models.trajectory.predicted_trajectories` (``attendance_band``,
        ``week``, ``estimate``, ``ci_low``, ``ci_high``; ``attrs["guided_weeks"]``: where the
        phase changes).
    min_cell : int
        Bands with fewer patients are left out.
    counts : dict, optional
        Band -> its number of patients as a report may print it (None where withheld). A
        panel's title shows n only where it is a number of at least ``min_cell``, and a band
        whose n is withheld shows its mean line only (the number of its lines would give a small
        band away). Default: the band sizes of ``observed``.
    per_band : int
        The most patients drawn per band.
    seed : int
    axes : sequence of matplotlib Axes, optional
        One per band drawn.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import seaborn as sns

    from ptanalytics.exceptions import ConfigError

    source = "ptanalytics.patient_weeks with attendance_band merged on"
    fix = "merge summary[['patient_id', 'attendance_band']] onto the weeks frame"
    columns = ["patient_id", "week", "nprs", "attendance_band"]
    observed = _table(observed, columns, "observed", source, fix)
    pred = _table(
        pred,
        ["attendance_band", "week", "estimate", "ci_low", "ci_high"],
        "pred",
        "ptanalytics.models.trajectory.predicted_trajectories",
    )
    drawn = sample_band_patients(observed, min_cell=min_cell, per_band=per_band, seed=seed)
    if not drawn:
        raise ConfigError(
            f"no attendance band has {min_cell} patients or more; nothing to draw. Fix: draw "
            "this figure only for a cohort with a band of at least min_cell patients."
        )
    sizes = {b: n for b, (n, _) in drawn.items()}
    counts = sizes if counts is None else counts
    fig, panels = _panels(axes, (1, len(drawn)), (3.6 * len(drawn) + 0.6, 4.0), sharey=True)
    guided = pred.attrs.get("guided_weeks")
    means, lines = {}, {}
    for i, (ax, (band, (_, ids))) in enumerate(zip(panels, drawn.items(), strict=True)):
        colour = f"C{i}"
        n = counts.get(band)
        shown = n is not None and not isinstance(n, str) and int(n) >= min_cell
        lines[band] = 0
        if shown:
            mine = observed[observed["patient_id"].isin(ids)].dropna(subset=["nprs"])
            mine = mine.assign(patient=pd.factorize(mine["patient_id"], sort=True)[0])
            sns.lineplot(
                mine.sort_values(["patient", "week"]),
                x="week",
                y="nprs",
                units="patient",
                estimator=None,
                color=colour,
                alpha=0.3,
                linewidth=0.7,
                legend=False,
                ax=ax,
            )
            lines[band] = int(mine["patient"].nunique())
        part = pred[pred["attendance_band"] == band].sort_values("week")
        if len(part):
            ax.fill_between(part["week"], part["ci_low"], part["ci_high"], color=colour, alpha=0.2)
            ax.plot(part["week"], part["estimate"], color="black", linewidth=2.6)
            means[band] = float(part["estimate"].iloc[-1])
        if guided is not None:
            ax.axvline(float(guided), color="0.35", linestyle="--", linewidth=1)
        title = f"{band} attendance" + (f" (n = {int(n):,})" if shown else "")
        ax.set(title=title, xlabel="Weeks since enrolment", ylim=(0, 10.3))
        ax.set_ylabel("NPRS (0-10)" if i == 0 else "")
    if guided is not None:
        panels[0].annotate(
            "end of guided phase",
            (float(guided), 10.1),
            xytext=(3, 0),
            textcoords="offset points",
            fontsize="small",
            color="0.35",
            va="top",
        )
    from matplotlib.lines import Line2D

    keys = [
        Line2D([], [], color="0.4", alpha=0.6, linewidth=0.7, label="observed (one patient)"),
        Line2D([], [], color="black", linewidth=2.6, label="model mean (95% band)"),
    ]
    fig.legend(handles=keys, frameon=False, fontsize="small", loc="upper center", ncol=2)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    weeks = int(pred["week"].max()) if len(pred) else int(observed["week"].max())
    parts = [
        f"{band}: {lines[band]} patients' observed lines" if lines[band] else f"{band}: mean only"
        for band in drawn
    ]
    ends = ", ".join(f"{b} {m:.1f}" for b, m in means.items())
    alt = (
        f"Line charts, one panel per attendance band ({', '.join(map(str, drawn))}), NPRS from "
        f"0 to 10 by week since enrolment, weeks 0 to {weeks}. Thin translucent lines are the "
        f"observed weekly NPRS of up to {per_band} patients of the band drawn at random "
        f"({'; '.join(parts)}); the bold black line is the mixed model's predicted mean NPRS "
        "with its 95% band"
        + (f", which ends at week {weeks} at {ends}" if ends else "")
        + (
            f"; a dashed line at week {float(guided):g} marks the end of the guided phase"
            if guided is not None
            else ""
        )
        + "."
    )
    caption = (
        f"Observed pain scores (thin lines: up to {per_band} randomly drawn patients per band, "
        "each line one patient's weekly NPRS while in the program) and the model's mean "
        "trajectory (bold, with its 95% band), by attendance band; dashed: the end of the "
        "guided phase. Bands differ in more than adherence, so differences between them are "
        "associations, not effects."
    )
    return describe(fig, alt, caption=caption)


@_styled
def plot_dose_response(result, *, ax=None):
    """The dose-response curve with its confidence band and a rug of the patients' adherence.

    Parameters
    ----------
    result : DoseResponse
        :func:`ptanalytics.models.outcomes.dose_response` output (its ``curve``, ``n``,
        ``reference`` and ``patient_adherence``). The curve is drawn as the model made it: against
        ``reference`` adherence (build it with ``reference="median"`` for a band that is
        narrow where the patients are; its intervals are the model's, not re-referenced here).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        The curve (seaborn line), its shaded band, the zero line, a dotted line at the
        reference adherence when it is not 0, and a rug of the patients' adherence (one tick per
        distinct value to 0.1 percentage point, below a pixel: 10^5 patients draw as fast as
        a few hundred).
    """
    import seaborn as sns

    fig, ax = _axes(ax, figsize=(6.4, 4.2))
    c = result.curve
    x = 100 * c["adherence"].to_numpy(dtype=float)
    sns.lineplot(x=x, y=c["estimate"].to_numpy(dtype=float), ax=ax, color="C0", label="estimate")
    ax.fill_between(x, c["ci_low"], c["ci_high"], alpha=0.25, color="C0", label="95% CI")
    ax.axhline(0, color="grey", lw=0.8)
    ref = float(getattr(result, "reference", 0.0) or 0.0)
    adherence = getattr(result, "patient_adherence", None)
    against = f"{ref:.0%} adherence"
    if adherence is not None and len(adherence):
        ticks = np.unique(np.round(100 * np.asarray(adherence, dtype=float), 1))
        sns.rugplot(x=ticks, ax=ax, color="0.3", alpha=0.4)
        if np.isclose(ref, float(np.median(adherence))):
            against = f"the median adherence ({ref:.0%})"
    if ref > 0:
        ax.axvline(100 * ref, color="0.3", linestyle=":", lw=1, label="reference")
    ax.set_xlabel("Adherence (% of prescribed sessions); ticks: patients")
    ax.set_ylabel(f"NPRS change vs {against.split(' (')[0]}")
    label = "end of guided phase" if c["timepoint"].iloc[0] == "end_guided" else "follow-up"
    ax.set_title(f"Dose-response at the {label} (n = {result.n}; association)")
    ax.legend(frameon=False, loc="best")
    return describe(
        fig,
        f"Line chart: difference in NPRS change at the {label} against {against}, by "
        f"adherence from {x.min():.0f}% to {x.max():.0f}%, with a 95% confidence band and a "
        f"rug of the {result.n} patients' adherence. Below zero means more pain relief than "
        "at the reference; an association, not an effect.",
        caption=f"Adjusted difference in NPRS change against {against}, with its 95% band "
        "(narrowest at the reference); ticks under the axis are patients. Patients who adhere "
        "more differ in other ways too: an association, not the effect of adhering more.",
    )


def _arrow(term: str) -> str:
    """``flexibility->core_strengthening`` as ``flexibility → core strengthening``."""
    return " \u2192 ".join(part.replace("_", " ") for part in str(term).split("->"))


@_styled
def plot_substitutions(result, *, ax=None, axes=None):
    """Substitution effects: a from x to heat map in a diverging palette, intervals alongside.

    Parameters
    ----------
    result : Substitutions or DataFrame
        :func:`ptanalytics.models.outcomes.category_substitution` output or its ``table``
        (``term`` as ``from->to``, ``estimate``, ``ci_low``, ``ci_high``, ``amount``). Rows of
        substitutions over fewer than ``min_cell`` patients must be left out by the caller.
    ax : matplotlib Axes, optional
        Draw the heat map alone on this Axes.
    axes : pair of matplotlib Axes, optional
        Axes for the heat map (left) and the intervals (right); a new 1 x 2 figure when both
        ``ax`` and ``axes`` are omitted.

    Returns
    -------
    matplotlib.figure.Figure
        The heat map (seaborn ``vlag``: blue = less pain, red = more; symmetric about 0; each
        cell annotated; its colour bar saying so) and, beside it, one point with its 95%
        interval per substitution.
    """
    import seaborn as sns

    from ptanalytics.vocab import CATEGORIES

    source = "ptanalytics.models.outcomes.category_substitution"
    fix = "pass category_substitution(summary) or its table"
    subs = _table(
        result, ["term", "estimate", "ci_low", "ci_high", "amount"], "result", source, fix
    )
    if ax is not None:
        fig, ax_map, ax_ci = ax.figure, ax, None
    else:
        layout = {"width_ratios": [1.2, 1]}
        fig, (ax_map, ax_ci) = _panels(axes, (1, 2), figsize=(13, 5.5), **layout)
    grid = pd.DataFrame(np.nan, index=list(CATEGORIES), columns=list(CATEGORIES))
    for row in subs.itertuples():
        a, b = row.term.split("->")
        grid.loc[a, b] = row.estimate
    est = subs["estimate"].to_numpy(dtype=float)
    limit = float(np.max(np.abs(est))) if len(est) and np.isfinite(est).any() else 1.0
    labels = [c.replace("_", " ") for c in CATEGORIES]
    sns.heatmap(
        grid.set_axis(labels, axis=0).set_axis(labels, axis=1),
        ax=ax_map,
        cmap="vlag",
        vmin=-(limit or 1.0),
        vmax=limit or 1.0,
        mask=grid.isna().to_numpy(),
        annot=True,
        fmt=".2f",
        square=True,
        linewidths=0.5,
        cbar_kws={"label": "NPRS change (negative = less pain)"},
    )
    ax_map.grid(False)
    ax_map.set_xlabel("time moved to")
    ax_map.set_ylabel("time moved from")
    amount = subs["amount"].iloc[0] if len(subs) else 0.1
    ax_map.set_title(f"NPRS change when {amount:.0%} of exercise time moves (association)")
    if ax_ci is not None:
        _intervals(ax_ci, [_arrow(t) for t in subs["term"]], est, subs["ci_low"], subs["ci_high"])
        ax_ci.axvline(0, color="grey", linestyle="--", linewidth=1)
        ax_ci.set_xlabel("NPRS change, 95% CI (negative = less pain)")
        ax_ci.set_title("Each substitution with its interval")
    fig.tight_layout()
    best = subs.iloc[int(np.argmin(est))] if len(subs) else None
    return describe(
        fig,
        f"Heat map of {len(subs)} substitutions of {amount:.0%} of exercise time between five "
        "categories (rows: from, columns: to), blue for less pain and red for more"
        + (
            f"; the largest reduction, {_arrow(best['term'])}, is {best['estimate']:.2f} points "
            f"(95% CI {best['ci_low']:.2f} to {best['ci_high']:.2f})"
            if best is not None
            else ""
        )
        + ". Intervals of every substitution alongside. Associations, not effects.",
        caption=f"Moving {amount:.0%} of a patient's exercise time from one category (row) to "
        "another (column), adjusted; blue is less pain, red more. Associations between "
        "patients, not the effect of changing a program.",
    )


# ---------------------------------------------- dropout, survival, responders, missing data
def _table(result, columns, name: str, source: str, fix: str | None = None) -> pd.DataFrame:
    """The table of ``result`` (a result or its table), or a ConfigError naming what is missing
    (and, given ``fix``, how to mend it: ``... Fix: <fix>.``)."""
    from ptanalytics.exceptions import ConfigError

    table = getattr(result, "table", result)
    missing = [c for c in columns if not isinstance(table, pd.DataFrame) or c not in table]
    if missing:
        message = f"{name} lacks column(s) {missing}; allowed: the result of {source} or its table."
        raise ConfigError(message + (f" Fix: {fix}." if fix else ""))
    return table


@_styled
def plot_kaplan_meier(km, *, ax=None, legend_title: str | None = None, at_risk: bool = True):
    """Step curves of survival (staying in the program) with their confidence bands, per group,
    and the numbers at risk under the axis.

    Parameters
    ----------
    km : KaplanMeier or DataFrame
        From :func:`ptanalytics.models.dropout.kaplan_meier` (weeks in ``week``: time to
        dropout) or :func:`ptanalytics.models.survival.km_estimate` (``time``), or its table.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made when omitted (the caller owns it, close it with
        ``matplotlib.pyplot.close(fig)``).
    legend_title : str, optional
        The legend's title in words (default: the ``by`` column with spaces for underscores).
    at_risk : bool
        Write the numbers at risk at the x ticks under the axis (one row per group; needs
        ``n_at_risk``). A curve cut early (as the report cuts where fewer than ``min_cell``
        remain) has no number after its last row.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes: one step line and one shaded band per group, axis labels,
        a legend, the log-rank p-value in the title when ``km`` has one, and the numbers at
        risk (texts under the axis).
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
        title += f"; log-rank p = {p:.3f}" if p >= 1e-3 else "; log-rank p < 0.001"
    ax.set_title(title)
    by = table.attrs.get("by")
    by = (by if isinstance(by, str) else ", ".join(by or [])).replace("_", " ")
    if groups:
        ax.legend(title=legend_title or by or None, loc="lower left")
    if at_risk and "n_at_risk" in table:
        _numbers_at_risk(ax, table, groups, when)
    return describe(
        fig,
        f"Kaplan-Meier curves ({title.replace(' (Kaplan-Meier)', '')}) for {len(groups)} "
        "group(s)"
        + (f" of {legend_title or by}: " + ", ".join(groups) if by or legend_title else "")
        + ", with 95% confidence bands and the numbers at risk under the axis.",
    )


def _numbers_at_risk(ax, table: pd.DataFrame, groups: list[str], when: str) -> None:
    """The numbers at risk of each group at the x ticks, as rows of text under ``ax``: at tick
    t, ``n_at_risk`` of the group's first row at or after t (exact: nobody leaves between rows);
    blank after the group's last row."""
    ax.figure.canvas.draw()  # fixes the ticks
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    left = {"xycoords": "axes fraction", "xytext": (-14, 0), "textcoords": "offset points"}
    ax.annotate("At risk", (0, -0.2), ha="right", va="top", weight="bold", **left)
    for i, name in enumerate(groups):
        g = table[table["group"].astype("str") == name]
        times = g[when].to_numpy(dtype=float)
        counts = g["n_at_risk"].to_numpy()
        y = -0.2 - 0.075 * (i + 1)
        ax.annotate(name, (0, y), ha="right", va="top", color=f"C{i}", **left)
        for t in ticks:
            at = np.searchsorted(times, t, side="left")
            if at < len(times):
                ax.annotate(
                    f"{int(counts[at])}",
                    (t, y),
                    xycoords=("data", "axes fraction"),
                    ha="center",
                    va="top",
                    fontsize="small",
                )


def _intervals(ax, labels, estimate, low, high) -> None:
    """One point per row with its interval (missing ends drawn as far as they are known)."""
    y = np.arange(len(labels))[::-1]
    est = np.asarray(estimate, dtype=float)
    lo = np.nan_to_num(est - np.asarray(low, dtype=float), nan=0.0)
    hi = np.nan_to_num(np.asarray(high, dtype=float) - est, nan=0.0)
    ax.errorbar(est, y, xerr=[lo, hi], fmt="o", color="black", capsize=3)
    ax.set_yticks(y, [str(v) for v in labels])


@_styled
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


@_styled
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


@_styled
def plot_hazard_ratios(cox, *, ax=None):
    """A forest plot of hazard ratios on a log axis (a Cox result or its table)."""
    source = "ptanalytics.models.survival.cox_ph or ptanalytics.models.dropout.cox_dropout"
    fig = plot_terms(_table(cox, ["term", "estimate"], "cox", source), ax=ax, reference=1.0)
    ax = fig.axes[0] if ax is None else ax
    ax.set_xscale("log")
    ax.set_xlabel("Hazard ratio")
    return fig


_PROPORTION_SOURCES = "ptanalytics.responder_table or ptanalytics.models.missing_data.mi_responders"


def _proportion_column(result) -> str:
    """``proportion`` (a responder table) or ``estimate`` (multiple imputation's table)."""
    table = getattr(result, "table", result)
    return "proportion" if isinstance(table, pd.DataFrame) and "proportion" in table else "estimate"


@_styled
def plot_proportions(result, *, ax=None):
    """Proportions per group with their intervals, on [0, 1].

    Parameters
    ----------
    result : result or DataFrame
        From :func:`ptanalytics.responder_table` (``proportion``, the ``by`` columns) or
        :func:`ptanalytics.models.missing_data.mi_responders` (``estimate``, ``group``), or its
        table.
    """
    value = _proportion_column(result)
    table = _table(result, [value, "ci_low", "ci_high", "n"], "result", _PROPORTION_SOURCES)
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


@_styled
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


@_styled
def plot_power(table: pd.DataFrame, *, target: float = 0.8, ax=None):
    """A power curve: simulated power by sample size with its 95% Monte Carlo interval, the
    analytic power where the design has it, and the ``target`` power as a dashed line."""
    source = "ptanalytics.studies.power.power"
    table = _table(table, ["n", "power", "ci_low", "ci_high"], "table", source).sort_values("n")
    fig, ax = _axes(ax)
    n = table["n"].to_numpy(dtype=float)
    p = table["power"].to_numpy(dtype=float)
    err = [p - table["ci_low"].to_numpy(dtype=float), table["ci_high"].to_numpy(dtype=float) - p]
    ax.errorbar(n, p, yerr=err, fmt="o-", color="black", capsize=3, label="simulated (95% MC)")
    if "analytic_power" in table and table["analytic_power"].notna().any():
        ax.plot(n, table["analytic_power"].to_numpy(dtype=float), "--", color="tab:blue",
                label="analytic (known variances)")  # fmt: skip
    ax.axhline(target, color="grey", linestyle=":", linewidth=1, label=f"target {target:g}")
    ax.set_ylim(0, 1)
    ax.set_xlabel("patients in all")
    ax.set_ylabel("power")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return describe(
        fig,
        "Power curve: simulated power against the number of patients, "
        + ", ".join(f"{int(a)} patients {b:.0%}" for a, b in zip(n, p, strict=True))
        + f"; target {target:.0%}.",
    )


# ------------------------------------------------------------------------ descriptive figures
_DESCRIBE = "ptanalytics.metrics.describe"


def _numbers(values, name: str, fix: str) -> pd.Series:
    """``values`` as a float Series without its missing values, or a ConfigError naming the fix."""
    from ptanalytics._checks import type_words
    from ptanalytics.exceptions import ConfigError

    try:
        return pd.Series(values).dropna().astype(float)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name}={type_words(values)} holding non-numbers; allowed: a Series or array of "
            f"numbers. Fix: {fix}."
        ) from None


def _bars(ax, x, heights, color: str, **labels) -> None:
    """One bar per ``x`` (counts, shares), then the axis labels and title (``ax.set``)."""
    ax.bar(x, np.asarray(heights, dtype=float), color=color)
    ax.set(**labels)


@_styled
def plot_cohort_overview(ages, baseline: pd.DataFrame, *, axes=None):
    """Two panels: the age histogram and patients by baseline NPRS.

    Parameters
    ----------
    ages : Series or array of numbers, or None
        Age at enrolment of each patient (the patients table's ``age``; missing values are left
        out). None (a cohort without ages) leaves the age panel empty but labelled.
    baseline : DataFrame
        Patients by baseline NPRS: :func:`ptanalytics.metrics.describe.patient_shares` of the
        patient summary's ``nprs_baseline`` (indexed by score, column ``patients``).
    axes : pair of matplotlib Axes, optional
        Axes to draw the two panels on; a new 1 x 2 figure is made when omitted.

    Returns
    -------
    matplotlib.figure.Figure
        The figure: a 20-bin age histogram and one bar per baseline score, each titled.
    """
    fix = "pass patient_shares(summary, 'nprs_baseline', dropna=True)"
    baseline = _table(baseline, ["patients"], "baseline", f"{_DESCRIBE}.patient_shares", fix)
    fig, (ax_age, ax_pain) = _panels(axes, (1, 2), figsize=(10, 3.5))
    if ages is not None:
        values = _numbers(ages, "ages", "pass the patients table's age column")
        ax_age.hist(values, bins=20, color="C0")
    ax_age.set(xlabel="Age at enrolment (years)", ylabel="Patients", title="Age")
    labels = {"xlabel": "NPRS at baseline (0-10)", "ylabel": "Patients", "title": "Baseline pain"}
    _bars(ax_pain, baseline.index, baseline["patients"], "C1", **labels)
    fig.tight_layout()
    return fig


@_styled
def plot_weekly_missing(assessments: pd.DataFrame, *, instrument: str = "NPRS", ax=None):
    """The share of patients without a score, week by week, as bars (in percent).

    Parameters
    ----------
    assessments : DataFrame
        :func:`ptanalytics.metrics.describe.weekly_assessments` output (indexed by ``week``,
        column ``missing``: the share of patients without a score).
    instrument : str
        The instrument's name in the labels (default ``NPRS``).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        One bar per week on a 0-100 % axis, labelled and titled.
    """
    fix = "pass weekly_assessments(weeks, column) of the patient-week frame"
    source = f"{_DESCRIBE}.weekly_assessments"
    table = _table(assessments, ["missing"], "assessments", source, fix)
    fig, ax = _axes(ax, figsize=(9, 3.5))
    labels = {"xlabel": "Week since enrolment", "ylabel": f"{instrument} missing (% of patients)"}
    title = f"Weekly {instrument} missing, by week (weeks after dropout included)"
    _bars(ax, table.index, 100 * table["missing"], "C3", **labels, ylim=(0, 100), title=title)
    return fig


@_styled
def plot_weekly_adherence(by_week: pd.DataFrame, patients, *, axes=None):
    """Mean weekly adherence by phase over the patients still in the program, in two panels.

    Parameters
    ----------
    by_week : DataFrame
        :func:`ptanalytics.metrics.describe.weekly_means` of ``adherence_capped`` by ``phase``
        (``week``, ``phase``, ``mean``); the ``none`` phase (no program) is not drawn.
    patients : Series
        Patients in the program per week (indexed by week), e.g. the ``patients`` column of
        :func:`ptanalytics.metrics.describe.weekly_assessments`.
    axes : pair of matplotlib Axes, optional
        Axes for the adherence (top) and patients (bottom) panels; a new figure is made when
        omitted, its panels sharing the week axis.

    Returns
    -------
    matplotlib.figure.Figure
        One line per phase (in percent, with a legend) above a step line of patients.
    """
    fix = "pass weekly_means(weeks, 'adherence_capped', by='phase')"
    source = f"{_DESCRIBE}.weekly_means"
    table = _table(by_week, ["week", "phase", "mean"], "by_week", source, fix)
    patients = _numbers(patients, "patients", "pass a Series of patients indexed by week")
    layout = {"sharex": True, "height_ratios": [2, 1]}
    fig, (ax, ax_n) = _panels(axes, (2, 1), figsize=(9, 6), **layout)
    by_phase = table.pivot(index="week", columns="phase", values="mean")
    by_phase.drop(columns="none", errors="ignore").mul(100).plot(ax=ax, marker=".")
    ax.set(ylabel="Mean weekly adherence (%)", ylim=(0, 105), title="Weekly adherence by phase")
    patients.plot(ax=ax_n, drawstyle="steps-mid", color="grey")
    ax_n.set(xlabel="Week since enrolment", ylabel="Patients in program")
    fig.tight_layout()
    return fig


@_styled
def plot_adherence_distribution(adherence, *, cuts=None, binwidth: float = 5.0, ax=None):
    """Patients by adherence over the planned program, the attendance-band cuts marked.

    Parameters
    ----------
    adherence : Series or array of numbers
        One adherence per patient (0-1; the patient summary's ``adherence``; missing values
        left out; above 1 shown in the last bin). Pass at least ``min_cell`` patients.
    cuts : (float, float), optional
        The band cuts (default :data:`ptanalytics.vocab.ATTENDANCE_CUTS`: low below the first,
        high at or above the second).
    binwidth : float
        Bin width in percentage points (default 5; a divisor of 100 keeps the cuts on edges).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        A seaborn histogram of ``binwidth``-point bins from 0 to 100 %, a dashed line at each
        cut and each band's name.
    """
    import seaborn as sns

    from ptanalytics.exceptions import ConfigError
    from ptanalytics.vocab import ATTENDANCE_BANDS, ATTENDANCE_CUTS

    values = _numbers(adherence, "adherence", "pass the patient summary's adherence column")
    if not len(values):
        raise ConfigError(
            "adherence=an empty Series; allowed: at least one patient's adherence. "
            "Fix: pass summary['adherence'] of a cohort with session data."
        )
    cuts = tuple(ATTENDANCE_CUTS if cuts is None else cuts)
    fig, ax = _axes(ax, figsize=(7, 3.8))
    percent = 100 * values.clip(lower=0, upper=1)
    from ptanalytics._checks import check_number

    width = check_number("binwidth", binwidth, low=1, high=50, fix="pass a width such as 5 or 10")
    bins = np.arange(0, 100 + width, width)
    sns.histplot(x=percent.to_numpy(), bins=bins, ax=ax, color="C0")
    edges = [0.0, *(100 * c for c in cuts), 100.0]
    for cut in edges[1:-1]:
        ax.axvline(cut, color="0.2", linestyle="--", linewidth=1)
    for name, lo, hi in zip(ATTENDANCE_BANDS, edges[:-1], edges[1:], strict=True):
        ax.annotate(name, ((lo + hi) / 2, 0.97), xycoords=("data", "axes fraction"), ha="center")
    ax.set(xlabel="Adherence over the planned program (% of prescribed sessions)")
    ax.set(ylabel="Patients", xlim=(0, 100))
    ax.set_title(f"Adherence of {len(values)} patients, with the attendance-band cuts")
    spans = zip(ATTENDANCE_BANDS, edges[:-1], edges[1:], strict=True)
    bands = ", ".join(f"{n} {lo:.0f}-{hi:.0f}%" for n, lo, hi in spans)
    return describe(
        fig,
        f"Histogram of adherence over the planned program for {len(values)} patients in "
        f"{width:g}-point bins, median {percent.median():.0f}%, with dashed lines at the band cuts "
        f"({bands}).",
    )


_POPULATIONS = {False: "patients still in", True: "everyone (dropouts as 0)"}


@_styled
def plot_weekly_adherence_by_phase(still_in: pd.DataFrame, everyone: pd.DataFrame, *, axes=None):
    """Weekly adherence by phase, of the patients still in and of everyone (dropouts as 0),
    with the patients per week under it.

    Parameters
    ----------
    still_in, everyone : DataFrame
        :func:`ptanalytics.metrics.describe.weekly_adherence` with ``dropouts_as_zero`` False
        and True (``week``, ``phase``, ``mean``, ``n``; rows below ``min_cell`` already left
        out).
    axes : pair of matplotlib Axes, optional
        Axes for the adherence (top) and patients (bottom) panels; a new figure, its panels
        sharing the week axis, when omitted.

    Returns
    -------
    matplotlib.figure.Figure
        Top: mean adherence (%) by week, colour by phase, solid for the patients still in and
        dashed for everyone; bottom: patients per week of each. The title says why the two
        differ (the less adherent leave, so the mean of those still in rises).
    """
    import seaborn as sns

    from ptanalytics.vocab import PHASES

    fix = "pass weekly_adherence(weeks, summary=summary, dropouts_as_zero=...)"
    parts = []
    for zero, table in ((False, still_in), (True, everyone)):
        name = "everyone" if zero else "still_in"
        checked = _table(
            table, ["week", "phase", "mean", "n"], name, f"{_DESCRIBE}.weekly_adherence", fix
        )
        parts.append(checked.assign(population=_POPULATIONS[zero]))
    data = pd.concat(parts, ignore_index=True).assign(percent=lambda d: 100 * d["mean"])
    data = data[data["phase"].astype(str) != "none"]
    layout = {"sharex": True, "height_ratios": [2, 1]}
    fig, (ax, ax_n) = _panels(axes, (2, 1), figsize=(9, 6.5), **layout)
    order = [p for p in PHASES if p in set(data["phase"].astype(str))]
    styles = list(_POPULATIONS.values())
    common = {"style": "population", "style_order": styles, "errorbar": None}
    sns.lineplot(data, x="week", y="percent", hue="phase", hue_order=order, ax=ax, **common)
    ax.set(ylabel="Mean weekly adherence (%)", ylim=(0, 105))
    ax.set_title(
        "Weekly adherence by phase. Patients still in (solid) look better over time because\n"
        "the less adherent drop out; everyone (dashed) counts a dropout's weeks as 0",
        fontsize="medium",
    )
    ax.legend(frameon=False, fontsize="small", loc="lower left")
    counts = data.groupby(["population", "week"], as_index=False)["n"].sum()
    sns.lineplot(counts, x="week", y="n", ax=ax_n, color="0.3", drawstyle="steps-mid", **common)
    ax_n.set(xlabel="Week since enrolment", ylabel="Patients", ylim=(0, None))
    ax_n.legend(frameon=False, fontsize="small", loc="lower left")
    fig.tight_layout()
    last = {p: data[data["population"] == p].sort_values("week").iloc[-1:] for p in styles}
    ends = "; ".join(
        f"{p}: {row['percent']:.0f}% in week {row['week']} (n = {row['n']})"
        for p, rows in last.items()
        for _, row in rows.iterrows()
    )
    return describe(
        fig,
        "Line chart of mean weekly adherence by phase and week, for the patients still in "
        "and for everyone with dropouts counted as 0, and the patients per week under it. "
        f"Last week shown: {ends}.",
    )


@_styled
def plot_weekly_means(table: pd.DataFrame, *, by: str | None, ylabel: str, title: str, ax=None):
    """Weekly means by group, one seaborn line per group (one line without ``by``).

    Parameters
    ----------
    table : DataFrame
        :func:`ptanalytics.metrics.describe.weekly_means` output (``week``, ``by`` when given,
        ``mean``, ``n``), its rows below ``min_cell`` already left out by ``min_patients``.
    by : str or None
        The grouping column (its values label the legend; make them safe for matplotlib's
        mathtext first, as :func:`ptanalytics.report.tables.mathtext_safe` does).
    ylabel, title : str
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        One line with markers per group, the legend titled in words.
    """
    import seaborn as sns

    fix = "pass weekly_means(weeks, column, by=..., summary=summary)"
    columns = ["week", "mean", *([by] if by else [])]
    table = _table(table, columns, "table", f"{_DESCRIBE}.weekly_means", fix)
    fig, ax = _axes(ax, figsize=(7, 3.5))
    hue = {"hue": table[by].astype(str)} if by else {}
    sns.lineplot(table, x="week", y="mean", marker="o", markersize=4, ax=ax, **hue)
    ax.set(xlabel="Weeks since enrolment", ylabel=ylabel, title=title)
    if by and len(table):
        ax.legend(frameon=False, title=by.replace("_", " "))
    groups = list(dict.fromkeys(table[by].astype(str))) if by else ["all patients"]
    return describe(
        fig,
        f"Line chart: {ylabel} by week since enrolment, one line per group ({', '.join(groups)}); "
        f"{title}.",
    )


@_styled
def plot_dropout_weeks(counts: pd.DataFrame, *, rule: str, ax=None):
    """Patients by the week they dropped out, as bars.

    Parameters
    ----------
    counts : DataFrame
        :func:`ptanalytics.metrics.describe.patient_shares` of the dropouts' ``dropout_week``
        (indexed by week, column ``patients``).
    rule : str
        The dropout rule the weeks come from (``inactivity``, ``missed_supervised``), named in
        the title.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        One bar per dropout week, labelled and titled.
    """
    fix = "pass patient_shares(summary[summary['dropout']], 'dropout_week')"
    table = _table(counts, ["patients"], "counts", f"{_DESCRIBE}.patient_shares", fix)
    fig, ax = _axes(ax, figsize=(9, 3.5))
    title = f"When patients dropped out ({rule} rule)"
    x = table.index.astype(int)
    _bars(ax, x, table["patients"], "C3", xlabel="Dropout week", ylabel="Patients", title=title)
    return fig


@_styled
def plot_weekly_minutes(minutes: pd.DataFrame, *, ax=None):
    """Mean exercise minutes per patient-week by category, stacked.

    Parameters
    ----------
    minutes : DataFrame
        :func:`ptanalytics.metrics.describe.weekly_minutes` output (indexed by ``week``, one
        column per exercise category).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        One stacked area per category, the legend to the right of the axes.
    """
    from ptanalytics.vocab import CATEGORIES

    source = f"{_DESCRIBE}.weekly_minutes"
    table = _table(minutes, list(CATEGORIES), "minutes", source, "pass weekly_minutes(weeks)")
    fig, ax = _axes(ax, figsize=(9, 4))
    table.plot.area(ax=ax, linewidth=0)
    ax.set(xlabel="Week since enrolment", ylabel="Mean minutes per patient-week")
    ax.set_title("Exercise minutes by category (patients still in the program)")
    ax.legend(frameon=False, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig


_ODI_COLUMNS = ["odi_baseline", "odi_end_guided", "odi_followup"]


@_styled
def plot_outcomes_by_group(weekly: pd.DataFrame, odi: pd.DataFrame, *, by: str, axes=None):
    """Observed outcomes by group: mean NPRS by week, and mean ODI at the three timepoints.

    Parameters
    ----------
    weekly : DataFrame
        :func:`ptanalytics.metrics.describe.weekly_means` of ``nprs`` by ``by`` (``week``,
        ``by``, ``mean``).
    odi : DataFrame
        :func:`ptanalytics.metrics.describe.group_means` of ``odi_baseline``,
        ``odi_end_guided`` and ``odi_followup`` by ``by`` (one row per group).
    by : str
        The grouping column (``arm``, ``attendance_band``, ...), named in the title.
    axes : pair of matplotlib Axes, optional
        Axes for the NPRS (left) and ODI (right) panels; a new figure is made when omitted.

    Returns
    -------
    matplotlib.figure.Figure
        One line per group in each panel (weeks with no group's mean left out), a legend each,
        and a title naming the grouping.
    """
    fix = f"pass weekly_means(weeks, 'nprs', by={by!r}, summary=summary)"
    source = f"{_DESCRIBE}.weekly_means"
    weekly = _table(weekly, ["week", by, "mean"], "weekly", source, fix)
    fix = f"pass group_means(summary, {_ODI_COLUMNS}, by={by!r})"
    odi = _table(odi, _ODI_COLUMNS, "odi", f"{_DESCRIBE}.group_means", fix)[_ODI_COLUMNS]
    fig, (ax, ax_odi) = _panels(axes, (1, 2), figsize=(11, 4), width_ratios=[2, 1])
    nprs = weekly.pivot(index="week", columns=by, values="mean")
    nprs.dropna(how="all").plot(ax=ax, marker=".")
    ax.set(
        xlabel="Week since enrolment", ylabel="Mean NPRS (0-10)", ylim=(0, 10), title="NPRS by week"
    )
    odi.T.plot(ax=ax_odi, marker="o")
    ax_odi.set_xticks(range(3), ["baseline", "end of guided", "follow-up"])
    ax_odi.set(ylabel="Mean ODI (0-100)", title="ODI")
    fig.suptitle(f"Observed outcomes by {by.replace('_', ' ')} (association, not effect)")
    fig.tight_layout()
    return fig


@_styled
def plot_responders_by_group(
    tables: dict[str, pd.DataFrame], *, by: str, preset: str, timepoint: str, ax=None
):
    """Responder proportions by group from several analyses, side by side with their intervals.

    Parameters
    ----------
    tables : dict of str to DataFrame
        Analysis name (the legend label) to its table by ``by``: the ``table`` of
        :func:`ptanalytics.responder_table` (``proportion``) or of
        :func:`ptanalytics.models.missing_data.mi_responders` (``estimate``), each with
        ``ci_low`` and ``ci_high``, its groups in the order of the first table.
    by : str
        The grouping column; its levels (of the first table) label the x axis.
    preset, timepoint : str
        The responder definition's preset and the timepoint, named in the title.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        One point with its interval per analysis and group (the analyses side by side, 0.2
        apart), a legend, on a 0-1 axis.
    """
    from ptanalytics.exceptions import ConfigError

    if not isinstance(tables, dict) or not tables:
        raise ConfigError(
            f"tables={type(tables).__name__}; allowed: a non-empty dict of analysis name to its "
            "responder table. Fix: pass {'ITT': responder_table(itt, by=group).table, ...}."
        )
    checked = {}
    for label, result in tables.items():
        value = _proportion_column(result)
        fix = f"pass responder_table(flagged, by={by!r}).table"
        table = _table(
            result, [by, value, "ci_low", "ci_high"], f"tables[{label!r}]", _PROPORTION_SOURCES, fix
        )
        checked[label] = table[value], table
    fig, ax = _axes(ax, figsize=(8, 4))
    middle = (len(checked) - 1) / 2
    for i, (label, (p, table)) in enumerate(checked.items()):
        x = [j + 0.2 * (i - middle) for j in range(len(p))]
        yerr = [p - table["ci_low"], table["ci_high"] - p]
        ax.errorbar(x, p, yerr=yerr, fmt="o", capsize=3, label=label)
    first = next(iter(checked.values()))[1]
    ax.set_xticks(range(len(first)), first[by].astype(str))
    ax.set(xlabel=by.replace("_", " ").capitalize(), ylabel="Responders (95% CI)", ylim=(0, 1))
    ax.set_title(f"{preset} responders at {timepoint} (association, not effect)")
    ax.legend(frameon=False)
    return fig


@_styled
def plot_patient_slopes(slopes, *, average: float, ax=None):
    """The spread of patient-specific pain slopes, the average slope marked.

    Parameters
    ----------
    slopes : Series or array of numbers
        One slope per patient: change in NPRS per 4 weeks (a mixed model's fixed slope plus each
        patient's random slope).
    average : float
        The average (fixed-effect) slope, drawn as a dashed line.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        A 40-bin histogram, the dashed average line and its legend.
    """
    from ptanalytics._checks import check_number

    values = _numbers(slopes, "slopes", "pass one slope per patient (a Series or array)")
    average = check_number("average", average, fix="pass the fixed-effect slope, a number")
    fig, ax = _axes(ax, figsize=(6, 3.5))
    ax.hist(values, bins=40, color="tab:blue", alpha=0.8)
    ax.axvline(average, color="black", linestyle="--", label="average")
    ax.set_xlabel("Change in NPRS per 4 weeks (patient-specific)")
    ax.set_ylabel("Patients")
    ax.legend(frameon=False)
    return fig


# ------------------------------------------------------------------------ participant flow
def _flow_count(row) -> str:
    """A box's count as drawn: its ``shown`` text when the flow was suppressed, else ``n``."""
    if "shown" in row and isinstance(row["shown"], str):
        return row["shown"]
    return "not recorded" if pd.isna(row["n"]) else f"{int(row['n']):,}"


def _flow_box(
    ax, x: float, y: float, text: str, *, side: bool, grey: bool = False, dashed: bool = False
) -> None:
    """One box of the flow: a step (centred on ``x``) or an exit (``side``: starting at ``x``);
    ``dashed`` for a box outside the chain."""
    import textwrap

    lines = "\n".join(textwrap.fill(part, 30 if side else 36) for part in text.split("\n"))
    ax.text(
        x,
        y,
        lines,
        ha="left" if side else "center",
        va="center",
        fontsize=8.5,
        parse_math=False,  # labels and reasons come from the data: no mathtext
        color="0.45" if grey else "black",
        bbox={
            "boxstyle": "round,pad=0.5",
            "facecolor": "0.95" if grey else "white",
            "edgecolor": "0.6" if grey else "0.2",
            "linestyle": "--" if dashed else "-",
        },
    )


@_styled
def plot_flow(flow: pd.DataFrame, *, ax=None):
    """The participant flow (a CONSORT-style diagram): steps down the middle, exits to the side.

    Parameters
    ----------
    flow : DataFrame
        :func:`ptanalytics.metrics.flow.participant_flow`, or (to publish)
        :func:`ptanalytics.metrics.flow.suppress_flow`, whose ``shown`` column is drawn instead
        of ``n`` ("<11", "suppressed").
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        One box per step (a step the cohort does not record in grey, "not recorded"), an arrow
        between steps and one to each exit box, which lists its reasons with their counts; the
        box outside the chain (every patient with a follow-up score) dashed, below the last
        step.
    """
    cols = ["box", "parent", "label", "n", "reason", "stage", "kind"]
    fix = "pass participant_flow(cohort) or suppress_flow(flow, membership)"
    flow = _table(flow, cols, "flow", "ptanalytics.metrics.flow.participant_flow", fix)
    steps = flow[flow["kind"] == "step"].sort_values("stage", kind="stable")
    rows = len(steps) + int((flow["kind"] == "summary").any())
    fig, ax = _axes(ax, figsize=(7.5, 1.25 * rows + 0.3))
    ax.set_xlim(0, 1)
    ax.set_ylim(-rows + 0.5, 0.5)
    ax.axis("off")
    arrow = {"arrowstyle": "-|>", "color": "0.3", "lw": 1}
    for i, (_, row) in enumerate(steps.iterrows()):
        grey = pd.isna(row["n"])
        count = "" if grey else f"\nn = {_flow_count(row)}"
        _flow_box(ax, 0.3, -i, f"{row['label']}{count}", side=False, grey=grey)
        if i:
            ax.annotate("", xy=(0.3, -i + 0.28), xytext=(0.3, -i + 0.72), arrowprops=arrow)
    for _, row in flow[flow["kind"] == "exit"].iterrows():
        i = int(np.flatnonzero((steps["stage"] == row["stage"]).to_numpy())[0])
        reasons = flow[flow["parent"] == row["box"]]
        lines = [f"{row['label']}", f"n = {_flow_count(row)}"]
        if len(reasons):
            lines += [f"{r['label']}: {_flow_count(r)}" for _, r in reasons.iterrows()]
        elif isinstance(row["reason"], str):
            lines.append(f"reason: {row['reason']}")
        _flow_box(ax, 0.6, -i + 0.5, "\n".join(lines), side=True)
        ax.annotate("", xy=(0.585, -i + 0.5), xytext=(0.3, -i + 0.5), arrowprops=arrow)
    for _, row in flow[flow["kind"] == "summary"].iterrows():
        text = f"{row['label']}\nn = {_flow_count(row)}"
        _flow_box(ax, 0.3, -len(steps), text, side=False, dashed=True)
    boxes = [" ".join(t.get_text().split()) for t in ax.texts if t.get_text()]
    return describe(fig, "Participant flow (CONSORT-style), box by box: " + "; ".join(boxes) + ".")
