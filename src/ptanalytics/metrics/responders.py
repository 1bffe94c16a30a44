"""Responder definitions (MCID presets) and responder tables with Wilson confidence intervals.

Presets (improvement = baseline - later score, so positive is better):

* ``ostelo`` (Ostelo et al. 2008, the usual MCID for low back pain): NPRS improvement >= 2 points
  or >= 30%; ODI >= 10 points or >= 30%.
* ``immpact`` (Dworkin et al. 2008): ``moderate`` >= 30%, ``substantial`` >= 50% improvement.
* ``pain_free``: a later score at or below ``cutoff`` (default 1).
* ``custom``: ``points`` and/or ``percent`` thresholds of your own.

Missing follow-up is an explicit choice: ``itt`` keeps every patient in the denominator and counts
a missing later score as non-response; ``completers`` drops patients without it. Every result
says which was used.

:func:`flag_responders` prepares data (one row per patient); :func:`responder_table` is a
descriptive estimate and returns a :class:`Proportions` result (``table``, ``n``, ``notes``,
``figure()``: the protocol of :mod:`ptanalytics.models._result`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ptanalytics._checks import check_alpha, check_option
from ptanalytics.exceptions import ConfigError
from ptanalytics.metrics.timepoints import canonical_instrument
from ptanalytics.models._result import Estimates

__all__ = ["PRESETS", "Proportions", "flag_responders", "responder_table", "wilson_interval"]

PRESETS = ("ostelo", "immpact", "pain_free", "custom")
_OSTELO = {"nprs": (2.0, 30.0), "odi": (10.0, 30.0)}
_IMMPACT = {"moderate": 30.0, "substantial": 50.0}


@dataclass
class Proportions(Estimates):
    """Proportions per group with intervals (:func:`responder_table`,
    :func:`ptanalytics.models.missing_data.mi_responders`); ``figure()`` draws them."""

    def figure(self, ax=None):
        """Proportions and intervals (:func:`ptanalytics.plotting.plot_proportions`)."""
        from ptanalytics.plotting import plot_proportions

        return plot_proportions(self, ax=ax)


def wilson_interval(successes, n, *, alpha: float = 0.05):
    """Wilson score interval for a proportion (arrays allowed); missing where ``n`` is 0.

    statsmodels' ``proportion_confint(method="wilson")``, with two conventions it lacks: missing
    (not a warning) where ``n`` is 0, and exactly 0 and 1 at ``successes`` = 0 and = ``n``
    (statsmodels leaves ~1e-17 from rounding). Equals R's ``prop.test(successes, n, conf.level
    = 1 - alpha, correct = FALSE)$conf.int`` (the score interval without continuity correction;
    ``tests/test_r_reference.py``).

    Returns
    -------
    (low, high)
        Arrays (or scalars) of the interval's ends, in [0, 1].
    """
    # Imported here: statsmodels takes 0.7 s to import, and `import ptanalytics` (the CLI) needs
    # this module but not an interval.
    from statsmodels.stats.proportion import proportion_confint

    alpha = check_alpha(alpha)
    k = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    some = n > 0
    low, high = proportion_confint(
        np.where(some, k, 0.0), np.where(some, n, 1.0), alpha=alpha, method="wilson"
    )
    low = np.where(some, np.where(k == 0, 0.0, low), np.nan)
    high = np.where(some, np.where(k == n, 1.0, high), np.nan)
    return np.clip(low, 0, 1), np.clip(high, 0, 1)


def _definition(preset, instrument, level, points, percent, cutoff) -> tuple[str, callable]:
    check_option("preset", preset, PRESETS, what=", ".join(PRESETS))
    if preset == "ostelo":
        check_option("instrument", instrument, _OSTELO, what="'nprs' or 'odi' (the ostelo preset)")
        pts, pct = _OSTELO[instrument]
        return (
            f"{instrument.upper()} improvement >= {pts:g} points or >= {pct:g}%",
            lambda imp, rel, later: (imp >= pts) | (rel >= pct),
        )
    if preset == "immpact":
        check_option(
            "level", level, _IMMPACT, what="'moderate' or 'substantial' (the immpact preset)"
        )
        pct = _IMMPACT[level]
        return (
            f"{instrument.upper()} improvement >= {pct:g}% (IMMPACT {level})",
            lambda imp, rel, later: rel >= pct,
        )
    if preset == "pain_free":
        return (
            f"{instrument.upper()} at or below {cutoff:g}",
            lambda imp, rel, later: later <= cutoff,
        )
    # preset == "custom"
    if points is None and percent is None:
        raise ConfigError("the custom preset needs points= and/or percent=.")
    parts = [
        f">= {points:g} points" if points is not None else None,
        f">= {percent:g}%" if percent is not None else None,
    ]
    text = f"{instrument.upper()} improvement " + " or ".join(p for p in parts if p)

    def rule(imp, rel, later):
        hit = pd.Series(False, index=imp.index)
        if points is not None:
            hit |= imp >= points
        if percent is not None:
            hit |= rel >= percent
        return hit

    return text, rule


def flag_responders(
    summary: pd.DataFrame,
    *,
    preset: str = "ostelo",
    instrument: str = "nprs",
    timepoint: str = "followup",
    analysis: str = "itt",
    level: str = "moderate",
    points: float | None = None,
    percent: float | None = None,
    cutoff: float = 1.0,
) -> pd.DataFrame:
    """Flag responders in a patient summary (see the module docstring for presets).

    Parameters
    ----------
    summary : DataFrame
        From :func:`ptanalytics.patient_summary` (needs ``<instrument>_baseline`` and
        ``<instrument>_<timepoint>``).
    preset, level, points, percent, cutoff
        The definition.
    instrument : {"nprs", "odi"}
        In any case (``"NPRS"`` is ``"nprs"``).
    timepoint : {"end_guided", "followup"}
    analysis : {"itt", "completers"}
        ``itt``: missing later score counts as non-response, everyone stays; ``completers``:
        patients without a baseline or later score are dropped.

    Returns
    -------
    pandas.DataFrame
        ``summary`` (the rows kept) plus ``improvement`` (baseline - later, points),
        ``improvement_pct`` (percent of baseline), ``observed`` (both scores present),
        ``responder`` (bool), and the constant columns ``definition``, ``timepoint`` and
        ``analysis``. The input is not modified.

    Examples
    --------
    >>> import ptanalytics as pt
    >>> summary = pt.patient_summary(pt.simulate_cohort(200, seed=1))
    >>> flags = pt.flag_responders(summary, preset="ostelo", timepoint="followup", analysis="itt")
    >>> int(flags["responder"].sum())
    88
    """
    check_option("analysis", analysis, ("itt", "completers"), what="'itt' or 'completers'")
    instrument = canonical_instrument(instrument).lower()  # "NPRS", "nprs", " Nprs" alike
    base_col, later_col = f"{instrument}_baseline", f"{instrument}_{timepoint}"
    for col in (base_col, later_col):
        if col not in summary:
            raise ConfigError(
                f"summary has no column {col!r}; use patient_summary() output and an instrument "
                f"(nprs, odi) and timepoint (end_guided, followup) it has."
            )
    text, rule = _definition(preset, instrument, level, points, percent, cutoff)
    out = summary.copy()
    base, later = out[base_col].astype(float), out[later_col].astype(float)
    out["improvement"] = base - later
    out["improvement_pct"] = 100 * (base - later) / base.where(base != 0)
    out["observed"] = base.notna() & later.notna()
    hit = rule(out["improvement"], out["improvement_pct"], later)
    out["responder"] = (hit.fillna(False) & out["observed"]).astype(bool)
    if analysis == "completers":
        out = out[out["observed"]].reset_index(drop=True)
    out["definition"] = text
    out["timepoint"] = timepoint
    out["analysis"] = analysis
    return out


def responder_table(
    flags: pd.DataFrame, *, by: str | list[str] | None = None, alpha: float = 0.05
) -> Proportions:
    """Responders per group with Wilson confidence intervals.

    Parameters
    ----------
    flags : DataFrame
        Output of :func:`flag_responders`.
    by : str or list of str, optional
        Grouping column(s) (arm, attendance band, category emphasis...); all patients when None.
    alpha : float, default 0.05
        The intervals are ``1 - alpha`` Wilson intervals.

    Returns
    -------
    Proportions
        ``n``: patients in ``flags``; ``notes``: the definition and how missing later scores
        were counted; ``figure()``: the proportions with their intervals. ``table``: one row per
        group: the ``by`` columns, ``n`` (denominator), ``responders``,
        ``proportion``, ``ci_low``, ``ci_high`` (Wilson), ``missing_followup`` (patients without
        the later score: counted as non-responders under ITT, excluded under completers),
        ``definition``, ``timepoint``, ``analysis``.

    Examples
    --------
    >>> import ptanalytics as pt
    >>> summary = pt.patient_summary(pt.simulate_cohort(200, seed=1))
    >>> flags = pt.flag_responders(summary, preset="ostelo", timepoint="followup", analysis="itt")
    >>> result = pt.responder_table(flags, by="attendance_band")
    >>> result.table[["attendance_band", "n", "responders"]]
      attendance_band    n  responders
    0             low  106          20
    1          medium   29          16
    2            high   65          52
    >>> result.n
    200
    """
    if "responder" not in flags:
        raise ConfigError("flags has no 'responder' column; pass the output of flag_responders().")
    alpha = check_alpha(alpha)
    keys = [by] if isinstance(by, str) else list(by or [])
    frame = flags.assign(_missing=~flags["observed"])
    if keys:
        grouped = frame.groupby(keys, observed=True, dropna=False)
        table = grouped.agg(
            n=("responder", "size"),
            responders=("responder", "sum"),
            missing_followup=("_missing", "sum"),
        ).reset_index()
    else:
        table = pd.DataFrame(
            {
                "n": [len(frame)],
                "responders": [int(frame["responder"].sum())],
                "missing_followup": [int(frame["_missing"].sum())],
            }
        )
    table["proportion"] = table["responders"] / table["n"].where(table["n"] > 0)
    table["ci_low"], table["ci_high"] = wilson_interval(
        table["responders"], table["n"], alpha=alpha
    )
    for col in ("definition", "timepoint", "analysis"):
        table[col] = flags[col].iloc[0] if len(flags) else None
    cols = [
        *keys,
        "n",
        "responders",
        "proportion",
        "ci_low",
        "ci_high",
        "missing_followup",
        "definition",
        "timepoint",
        "analysis",
    ]
    return Proportions(table=table[cols], n=len(flags), notes=_table_notes(flags))


def _table_notes(flags: pd.DataFrame) -> list[str]:
    """The responder rule and how patients without the later score were counted."""
    if not len(flags):
        return ["no patients."]
    missing = int((~flags["observed"]).sum())
    how = (
        f"{missing} patient(s) without the later score counted as non-responders (ITT)"
        if flags["analysis"].iloc[0] == "itt"
        else "patients without both scores left out (completers)"
    )
    return [f"Responder: {flags['definition'].iloc[0]} at {flags['timepoint'].iloc[0]}; {how}."]
