"""The one result protocol shared by every model in :mod:`ptanalytics.models`.

Every public fitting function returns an object with

``table``
    a tidy :class:`pandas.DataFrame`, one row per term or estimate, with at least ``term``,
    ``estimate`` and, where the method has them, ``std_error``, ``ci_low``, ``ci_high`` and
    ``p_value`` (intervals at the ``1 - alpha`` level the function was called with);
``n``
    the number of patients (independent units) the estimate rests on;
``notes``
    plain-language sentences: rows left out and why, convergence, boundary fits, and the
    reminder that an adherence or exercise-mix estimate is an association;
``figure(ax=None)``
    a matplotlib figure of the result, drawn by :mod:`ptanalytics.plotting` (on ``ax`` when one
    is given); results without a figure of their own draw a forest plot of ``table``.

Model-specific results are dataclasses that add their own fields (``curve``, ``variance``,
``coef`` ...) on top of these four; :class:`ModelResult` is the protocol and :class:`Estimates`
the plain implementation for results that are a table and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import pandas as pd


@runtime_checkable
class ModelResult(Protocol):
    """What every model result offers: ``table``, ``n``, ``notes`` and ``figure()``."""

    table: pd.DataFrame
    n: int
    notes: list[str]

    def figure(self, ax=None):  # pragma: no cover - protocol
        ...


@dataclass
class Estimates:
    """A model result that is a tidy table: the base of the table-only results.

    Attributes
    ----------
    table : DataFrame
        Tidy estimates (see the module docstring).
    n : int
        Patients the estimates rest on.
    notes : list of str
        Plain-language messages.
    """

    table: pd.DataFrame
    n: int
    notes: list[str] = field(default_factory=list)

    def figure(self, ax=None):
        """A forest plot of ``table`` (:func:`ptanalytics.plotting.plot_terms`)."""
        from ptanalytics.plotting import plot_terms

        return plot_terms(self.table, ax=ax)
