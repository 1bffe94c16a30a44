"""Table 1 in numbers: baseline characteristics overall and by group, with standardised mean
differences (:func:`table_one_stats`, a tidy long table), and the patients behind every count
(:func:`table_one_cells`, for disclosure control).

Categorical characteristics are counted per level (levels in the order of
:mod:`ptanalytics.vocab`, numbers in numeric order) with the patients whose value is unknown as a
``missing`` level of their own; continuous ones get mean, SD, median and quartiles over the
patients with a value, and a ``missing`` count. The standardised mean difference (SMD) of a
continuous characteristic is the absolute difference in means over the pooled SD
``sqrt((sd1**2 + sd2**2) / 2)``; of a categorical one, the multi-level SMD of Yang & Dalton
(2012) on the proportions among patients with a value (first level dropped), as tableone and R's
tableone compute it. With more than two groups, the SMD is the largest over every pair of groups.
Formatting and small-count suppression are :func:`ptanalytics.report.tables.table_one`.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from ptanalytics.vocab import ATTENDANCE_BANDS, CHRONICITIES, SEXES

__all__ = [
    "LEVEL_ORDERS",
    "MISSING",
    "OVERALL",
    "TABLE_ONE_VARIABLES",
    "level_order",
    "smd_categorical",
    "smd_continuous",
    "table_one_cells",
    "table_one_stats",
]

#: Table 1's characteristics: (column of the patient summary, label, kind), in table order.
TABLE_ONE_VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("age", "Age, years", "continuous"),
    ("sex", "Sex", "categorical"),
    ("chronicity", "Chronicity", "categorical"),
    ("guided_weeks", "Planned guided weeks", "categorical"),
    ("nprs_baseline", "Baseline NPRS (0-10)", "continuous"),
    ("odi_baseline", "Baseline ODI (0-100)", "continuous"),
)
#: Level orders of the categorical columns (and group columns) that have a meaningful one.
LEVEL_ORDERS: dict[str, tuple[str, ...]] = {
    "sex": SEXES,
    "chronicity": CHRONICITIES,
    "attendance_band": ATTENDANCE_BANDS,
}
#: The group name of the column over every patient.
OVERALL = "Overall"
#: The level of the patients whose value is unknown (and of patients without a group).
MISSING = "missing"
_CONTINUOUS_STATS = ("n", "mean", "sd", "median", "q1", "q3")


def level_order(values: pd.Series, column: str | None = None) -> list[str]:
    """The distinct known values of ``values`` as text, in a meaningful order.

    Levels named in :data:`LEVEL_ORDERS` for ``column`` come first in that order; numbers sort
    numerically (planned weeks 6, 8, 10, 12); any other level follows in text order.
    """
    known = values.dropna()
    if pd.api.types.is_numeric_dtype(known) and not pd.api.types.is_bool_dtype(known):
        return [_text(v) for v in sorted(known.unique())]
    seen = sorted({str(v) for v in known})
    vocab = [v for v in LEVEL_ORDERS.get(column or "", ()) if v in seen]
    return vocab + [v for v in seen if v not in vocab]


def _text(value) -> str:
    """A level as text: whole numbers without a decimal point (8, not 8.0)."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _as_text(values: pd.Series) -> pd.Series:
    return values.map(lambda v: None if pd.isna(v) else _text(v)).astype("string")


def _groups(frame: pd.DataFrame, group: str | None) -> list[tuple[str, np.ndarray]]:
    """``Overall`` and each level of ``group`` (patients without one: a ``missing`` group)."""
    out = [(OVERALL, np.ones(len(frame), dtype=bool))]
    if group is None:
        return out
    values = _as_text(frame[group])
    for level in level_order(frame[group], group):
        out.append((level, (values == level).fillna(False).to_numpy(dtype=bool)))
    if values.isna().any():
        out.append((MISSING, values.isna().to_numpy(dtype=bool)))
    return out


def _present(frame: pd.DataFrame, variables) -> list[tuple[str, str, str]]:
    """The characteristics the data has (a column with at least one known value)."""
    return [v for v in variables if v[0] in frame and frame[v[0]].notna().any()]


def table_one_cells(
    frame: pd.DataFrame,
    *,
    group: str | None = None,
    variables=TABLE_ONE_VARIABLES,
    patient: str = "patient_id",
) -> list[tuple[str, str, str, pd.Series]]:
    """Every count of Table 1 with the patients it counts.

    Returns
    -------
    list of (variable, level, group, ids)
        In table order: ``("patients", "", group)`` first for ``Overall`` and each group; then
        per characteristic its levels (categorical only) and ``missing``, each for ``Overall``
        and every group. ``ids`` are the counted patients' ``patient`` values.
    """
    groups = _groups(frame, group)
    ids = frame[patient]
    cells = [("patients", "", name, ids[mask]) for name, mask in groups]
    for column, _, kind in _present(frame, variables):
        values = _as_text(frame[column])
        levels = level_order(frame[column], column) if kind == "categorical" else []
        for level in [*levels, MISSING]:
            hit = values.isna() if level == MISSING else values == level
            hit = hit.fillna(False).to_numpy(dtype=bool)
            cells += [(column, level, name, ids[hit & mask]) for name, mask in groups]
    return cells


def smd_continuous(mean1: float, sd1: float, mean2: float, sd2: float) -> float:
    """``|mean1 - mean2| / sqrt((sd1**2 + sd2**2) / 2)`` (NaN when both SDs are 0 or NaN)."""
    pooled = np.sqrt((sd1**2 + sd2**2) / 2)
    return float(abs(mean1 - mean2) / pooled) if pooled > 0 else float("nan")


def smd_categorical(p1, p2) -> float:
    """Yang & Dalton's multi-level SMD of two vectors of level proportions (each summing to 1).

    ``sqrt(d' S^-1 d)`` with ``d`` the differences and ``S`` the mean of the two multinomial
    covariance matrices, over every level but the first; levels absent from both groups are
    left out first. Identical distributions give 0; a singular ``S`` (a level that is all of one
    group and none of the other) gives NaN, as in tableone.
    """
    p1, p2 = np.asarray(p1, dtype=float), np.asarray(p2, dtype=float)
    keep = (p1 > 0) | (p2 > 0)
    p1, p2 = p1[keep][1:], p2[keep][1:]
    d = p1 - p2
    if not len(d) or not np.any(d):
        return 0.0
    cov = [np.diag(p * (1 - p)) - np.outer(p, p) * (1 - np.eye(len(p))) for p in (p1, p2)]
    s = (cov[0] + cov[1]) / 2
    try:
        return float(np.sqrt(d @ np.linalg.solve(s, d)))
    except np.linalg.LinAlgError:
        return float("nan")


def _numbers(values: pd.Series) -> pd.Series:
    """Values as float64, unknowns NaN (nullable Int64 / Float64 would give pd.NA statistics)."""
    return pd.to_numeric(values, errors="coerce").astype("float64").reset_index(drop=True)


def _continuous_rows(values: pd.Series, groups) -> list[tuple[str, str, float]]:
    rows = []
    for name, mask in groups:
        s = values[mask].dropna()
        q = s.quantile([0.25, 0.5, 0.75]) if len(s) else pd.Series([np.nan] * 3)
        stats = (len(s), s.mean(), s.std(ddof=1), q.iloc[1], q.iloc[0], q.iloc[2])
        rows += [(name, st, float(v)) for st, v in zip(_CONTINUOUS_STATS, stats, strict=True)]
    return rows


def _smd(column: str, kind: str, frame: pd.DataFrame, groups) -> float:
    """The SMD of one characteristic: of the two groups, or the largest over pairs of groups."""
    parts = [mask for name, mask in groups if name not in (OVERALL, MISSING)]
    if len(parts) < 2:
        return float("nan")
    if kind == "continuous":
        values = _numbers(frame[column])
        stats = [(values[m].mean(), values[m].std(ddof=1)) for m in parts]
        pairs = [smd_continuous(*a, *b) for a, b in combinations(stats, 2)]
    else:
        values = _as_text(frame[column])
        levels = level_order(frame[column], column)
        props = []
        for m in parts:
            counts = values[m].value_counts().reindex(levels, fill_value=0).to_numpy(float)
            props.append(counts / counts.sum() if counts.sum() else counts * np.nan)
        pairs = [smd_categorical(a, b) for a, b in combinations(props, 2)]
    pairs = [p for p in pairs if not np.isnan(p)]
    return max(pairs) if pairs else float("nan")


def table_one_stats(
    frame: pd.DataFrame,
    *,
    group: str | None = None,
    variables=TABLE_ONE_VARIABLES,
    patient: str = "patient_id",
) -> pd.DataFrame:
    """Table 1's numbers, overall and by ``group``, as one tidy long table (nothing suppressed).

    Parameters
    ----------
    frame : DataFrame
        One row per patient: the patient summary (:func:`~ptanalytics.patient_summary`), which
        has the patients' attributes and baseline scores, or any frame with those columns.
    group : str, optional
        The grouping column (``arm``, ``attendance_band``; see
        :func:`~ptanalytics.metrics.describe.comparison_group`); patients without a value form
        a ``missing`` group. None: overall only.
    variables : sequence of (column, label, kind)
        The characteristics (default :data:`TABLE_ONE_VARIABLES`); ``kind`` is
        ``categorical`` or ``continuous``. Columns absent or never known are left out.

    Returns
    -------
    pandas.DataFrame
        Columns ``variable`` (a column name, or ``patients``), ``level`` (a categorical
        level, ``missing``, or ``""``), ``group`` (``Overall``, a group level, or ``SMD``),
        ``statistic`` and ``value`` (float):

        - ``patients``: ``n`` per group;
        - categorical levels and every ``missing`` row: ``n``, and for categorical levels
          ``percent`` (of the group's patients, missing ones included);
        - continuous characteristics (level ``""``): ``n`` (patients with a value), ``mean``,
          ``sd`` (ddof 1), ``median``, ``q1``, ``q3`` (linear interpolation);
        - group ``SMD``: statistic ``smd`` (level ``""``), over the groups with a value of
          ``group`` (not the ``missing`` group); NaN with fewer than two groups.

        ``attrs["smd"]`` says which SMD: ``"two groups"``, ``"largest over pairs of groups"``
        or ``"none"``.
    """
    groups = _groups(frame, group)
    sizes = {name: int(mask.sum()) for name, mask in groups}
    rows = []
    for variable, level, name, ids in table_one_cells(
        frame, group=group, variables=variables, patient=patient
    ):
        rows.append((variable, level, name, "n", float(len(ids))))
        if variable != "patients" and level not in (MISSING, ""):
            pct = 100 * len(ids) / sizes[name] if sizes[name] else float("nan")
            rows.append((variable, level, name, "percent", pct))
    for column, _, kind in _present(frame, variables):
        if kind == "continuous":
            rows += [(column, "", *r) for r in _continuous_rows(_numbers(frame[column]), groups)]
        rows.append((column, "", "SMD", "smd", _smd(column, kind, frame, groups)))
    out = pd.DataFrame(rows, columns=["variable", "level", "group", "statistic", "value"])
    n_groups = sum(name not in (OVERALL, MISSING) for name, _ in groups)
    which = "two groups" if n_groups == 2 else "largest over pairs of groups"
    out.attrs["smd"] = which if n_groups >= 2 else "none"
    return out
