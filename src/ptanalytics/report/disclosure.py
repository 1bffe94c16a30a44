"""Disclosure control of a whole report: every published count, linked through its patients.

:class:`Disclosure` holds the tables and the counts quoted in sentences, runs primary and
complementary suppression over all of them at once (:mod:`ptanalytics.privacy.suppression`) and
gives back what may be shown. Which tables the report registers is
:func:`ptanalytics.report.tables.report_disclosure`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptanalytics.exceptions import ConfigError
from ptanalytics.privacy.suppression import (
    MIN_CELL,
    PRIMARY,
    SECONDARY,
    complementary_suppression,
)

__all__ = ["Disclosure"]


def _as_text(ids) -> np.ndarray:
    """Patient ids as an object array of str (missing ids as None)."""
    series = ids if isinstance(ids, pd.Series) else pd.Series(list(ids), dtype="string")
    return series.astype("string").astype(object).where(series.notna(), None).to_numpy()


class Disclosure:
    """Every count a report publishes, linked through the patients it counts.

    Register tables (:meth:`add_table`, :meth:`link_table`) and counts quoted in sentences
    (:meth:`add`), then :meth:`protect` once: primary and complementary suppression run over all
    of them together (:func:`ptanalytics.privacy.complementary_suppression`), so that no count
    below ``min_cell`` can be derived from a row's total, a linked table or a percentage.
    :meth:`table` and :meth:`count` then give what may be shown: ``"<min_cell"`` for a small
    count, ``"suppressed"`` for a complementary one and for what derives from either.

    Parameters
    ----------
    patients : sequence of str
        The population every count is over (patient ids).
    min_cell : int
        The smallest count that may be shown.
    """

    def __init__(self, patients, *, min_cell: int = MIN_CELL):
        # Object strings: pandas' Arrow-backed string isin loops in Python (10^5 ids: 0.1 s a
        # count); an object Index looks ids up in its hash table (the same mask).
        self.index = pd.Index(_as_text(patients), dtype=object)
        self.min_cell = int(min_cell)
        self._cells: dict = {}
        self._values: dict = {}
        self._tables: dict = {}
        self._status: dict | None = None

    def _mask(self, ids) -> np.ndarray:
        return np.asarray(self.index.isin(_as_text(ids)), dtype=bool)

    def add(self, key, ids, value: int | None = None) -> None:
        """Register one published count: the patients (ids) it counts; ``value`` is checked."""
        mask = self._mask(ids)
        if value is not None and int(mask.sum()) != int(value):
            raise ConfigError(
                f"count {key!r} is {value} but its patients number {int(mask.sum())}; "
                "the report's disclosure control needs the exact set of patients it counts."
            )
        self._cells[key] = mask
        self._values[key] = int(mask.sum())
        self._status = None

    def add_table(self, name: str, table: pd.DataFrame, masks: dict, derived=None) -> None:
        """Register a table: ``masks`` maps ``(row position, column)`` to the patients counted."""
        for (row, col), ids in masks.items():
            self.add((name, row, col), ids, value=table[col].iloc[row])
        self._tables[name] = (table.reset_index(drop=True), dict(derived or {}))

    def link_table(
        self,
        name: str,
        table: pd.DataFrame,
        frame: pd.DataFrame,
        *,
        keys: list[str],
        counts: dict[str, str | None],
        derived: dict[str, list[str]] | None = None,
        patient: str = "patient_id",
    ) -> None:
        """Register a table of counts of ``frame``'s rows grouped by ``keys``.

        ``counts`` maps each count column to the boolean column of ``frame`` that a row must
        have True to be counted (None: every row of the group). ``derived`` maps a column
        computed from counts (proportion, interval) to the count columns it comes from.
        """

        def key_frame(df):
            return pd.DataFrame(
                {k: df[k].astype("string").fillna("<missing>").astype(object) for k in keys},
                index=pd.RangeIndex(len(df)),
            )

        table = table.reset_index(drop=True)
        found = key_frame(frame).groupby(list(keys), sort=False).indices
        groups = {(k if isinstance(k, tuple) else (k,)): pos for k, pos in found.items()}
        masks = {}
        for row, k in enumerate(key_frame(table).itertuples(index=False, name=None)):
            part = frame.iloc[groups.get(k, [])]
            for col, flag in counts.items():
                sel = part if flag is None else part[part[flag].fillna(False).astype(bool)]
                masks[(row, col)] = sel[patient]
        self.add_table(name, table, masks, derived)

    def has_table(self, name: str) -> bool:
        """Whether a table of this name is registered."""
        return name in self._tables

    def raw(self, name: str) -> pd.DataFrame:
        """The registered table as given (every count, none suppressed)."""
        return self._tables[name][0]

    def drop_columns(self, name: str, columns: list[str]) -> None:
        """Leave columns out of a registered table (key columns used only to link it)."""
        table, derived = self._tables[name]
        self._tables[name] = (table.drop(columns=columns), derived)

    def protect(self, keep=()) -> dict:
        """Decide every count's fate (``keep``: keys shown elsewhere regardless)."""
        self._status = complementary_suppression(self._cells, min_cell=self.min_cell, keep=keep)
        return self._status

    def _fate(self, key) -> str:
        if self._status is None:
            self.protect()
        return self._status[key]

    def label(self, fate: str) -> str:
        return f"<{self.min_cell}" if fate == PRIMARY else "suppressed"

    def count(self, key, fmt: str = "{:,}") -> str:
        """A registered count as it may be printed in a sentence."""
        fate = self._fate(key)
        if fate in (PRIMARY, SECONDARY):
            return "fewer than " + str(self.min_cell) if fate == PRIMARY else "a suppressed number"
        return fmt.format(self._values[key])

    def shown(self, key) -> bool:
        return self._fate(key) not in (PRIMARY, SECONDARY)

    def table(self, name: str) -> pd.DataFrame:
        """The table as it may be shown."""
        table, derived = self._tables[name]
        out = table.astype(object).copy()
        for key in self._cells:
            if not (isinstance(key, tuple) and len(key) == 3 and key[0] == name):
                continue
            _, row, col = key
            fate = self._fate(key)
            if fate in (PRIMARY, SECONDARY):
                out.iloc[row, out.columns.get_loc(col)] = self.label(fate)
                for dcol, sources in derived.items():
                    if col in sources:
                        out.iloc[row, out.columns.get_loc(dcol)] = "suppressed"
        return out

    def html(self, name: str, *, labels: dict | None = None, **kwargs) -> str:
        """The shown table in words, as escaped HTML.

        :meth:`table` (its withheld cells as text), then
        :func:`ptanalytics.report.tables.readable_table` (headers in words, proportions as
        percentages, ``"95% CI"`` as "a to b"; ``labels``: headers of this table's own).
        """
        from ptanalytics.report.tables import readable_table

        shown = readable_table(self.table(name), labels=labels)
        return shown.to_html(index=False, na_rep="", escape=True, **kwargs)
