"""Small-cell suppression for tables that leave the analyst's machine (reports, exports)."""

from __future__ import annotations

import pandas as pd

__all__ = ["suppress_small_counts"]


def suppress_small_counts(
    table: pd.DataFrame,
    *,
    counts: list[str],
    derived: list[str] | tuple[str, ...] = (),
    min_cell: int = 11,
) -> pd.DataFrame:
    """Replace counts from 1 to ``min_cell - 1`` by ``"<min_cell"`` (e.g. ``"<11"``).

    Parameters
    ----------
    table : DataFrame
        A table of aggregates (never patient rows).
    counts : list of str
        Count columns to suppress.
    derived : list of str
        Columns computed from those counts (proportions, intervals): blanked as ``"suppressed"``
        on every row where a count was suppressed, so that the count cannot be recovered.
    min_cell : int
        The smallest count that may be shown (default 11, a common rule for health data). Zero is
        shown as 0.

    Returns
    -------
    pandas.DataFrame
        A copy, with the suppressed columns as text.
    """
    out = table.copy()
    hidden = pd.Series(False, index=out.index)
    for col in counts:
        values = pd.to_numeric(out[col], errors="coerce")
        small = values.between(1, min_cell - 1)
        hidden |= small
        out[col] = out[col].astype(object).where(~small, f"<{min_cell}")
    for col in derived:
        out[col] = out[col].astype(object).where(~hidden, "suppressed")
    return out
