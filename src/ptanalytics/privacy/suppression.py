"""Small-cell suppression for tables that leave the analyst's machine (reports, exports).

Two layers:

* :func:`suppress_small_counts` — *primary* suppression of one table: counts from 1 to
  ``min_cell - 1`` are shown as ``"<min_cell"`` and what is computed from them is blanked.
* :func:`complementary_suppression` — *secondary* (complementary) suppression across every table
  of a report at once. Each published count is described by the set of units (patients) it counts;
  counts that share units are linked (a row's total, ITT and completers, counts and percentages,
  the cohort total shown elsewhere). An auditor then plays the attacker with linear programming:
  from every shown count and the knowledge that a ``"<min_cell"`` cell lies in
  ``[1, min_cell - 1]`` and a ``"suppressed"`` one is at least ``min_cell``, it bounds every
  suppressed count and every *derivable* count (the finest cells formed by the published sets,
  e.g. the non-responders among completers = completers − responders). While one of them is
  pinned to a single whole number, the smallest shown count whose suppression unpins it is
  suppressed too (a count that could be any of the others' value is never chosen), and the audit
  runs again.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = [
    "MIN_CELL",
    "PRIMARY",
    "SECONDARY",
    "SHOWN",
    "complementary_suppression",
    "recoverable",
    "suppress_small_counts",
]

SHOWN, PRIMARY, SECONDARY = "shown", "primary", "secondary"

#: The smallest count a published table may show (a common rule for health data). Every
#: ``min_cell`` default in the package, the report and the notebooks is this one constant.
MIN_CELL = 11


def suppress_small_counts(
    table: pd.DataFrame,
    *,
    counts: list[str],
    derived: list[str] | tuple[str, ...] = (),
    min_cell: int = MIN_CELL,
) -> pd.DataFrame:
    """Replace counts from 1 to ``min_cell - 1`` by ``"<min_cell"`` (e.g. ``"<11"``).

    This is primary suppression of one table only; a report that shows several linked tables
    needs :func:`complementary_suppression` as well.

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
        The smallest count that may be shown (default :data:`MIN_CELL`, 11, a common rule for
        health data). Zero is
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


def _pinned(lo: float, hi: float) -> bool:
    """At most one whole number lies in [lo, hi] (the attacker knows counts are integers)."""
    return math.floor(hi + 1e-7) - math.ceil(lo - 1e-7) < 1


def _apart(values: np.ndarray) -> np.ndarray:
    """Per row of (targets x feasible points): two whole numbers lie between its values."""
    return np.floor(values.max(axis=1) + 1e-7) - np.ceil(values.min(axis=1) - 1e-7) >= 1


class _Auditor:
    """Bounds of linear combinations of the finest cells, given what is published.

    ``truth`` (the real size of every finest cell, optional) is a feasible point of every audit
    problem: the real counts satisfy what is shown, a ``"<min_cell"`` count lies in
    ``[1, min_cell - 1]`` and a complementary one is at least ``min_cell``. Starting from it,
    one LP per direction usually proves most targets free, and an exact bound needs one LP
    instead of two where the first already moves the target a whole number away.
    """

    def __init__(
        self,
        incidence: np.ndarray,
        values: np.ndarray,
        min_cell: int,
        truth: np.ndarray | None = None,
    ):
        self.a = incidence.astype(float)  # quantities x atoms
        self.v = values.astype(float)
        self.m = min_cell
        self.truth = None if truth is None else np.asarray(truth, dtype=float)
        self.lps = 0  # linear programs solved (benchmarks and tests read it)

    def _problem(self, status: np.ndarray) -> dict:
        shown = status == 0
        prim = status == 1
        sec = status == 2
        a_ub = np.vstack([self.a[prim], -self.a[prim], -self.a[sec]])
        b_ub = np.concatenate(
            [
                np.full(prim.sum(), self.m - 1.0),
                np.full(prim.sum(), -1.0),
                np.full(sec.sum(), -float(self.m)),
            ]
        )
        return {
            "A_eq": self.a[shown] if shown.any() else None,
            "b_eq": self.v[shown] if shown.any() else None,
            "A_ub": a_ub if len(b_ub) else None,
            "b_ub": b_ub if len(b_ub) else None,
            "bounds": (0, None),
            "method": "highs",
            # These LPs are small and dense; HiGHS's presolve costs more than it saves on them
            # (the default report's audit: 18 s with it, 10 s without; the same decisions on the
            # default, 30-, 60-, 150- and 600-patient cohorts and at 10^4 and 10^5).
            "options": {"presolve": False},
        }

    def _solve(self, objective: np.ndarray, kw: dict):
        from scipy.optimize import linprog

        self.lps += 1
        return linprog(objective, **kw)

    def bounds(self, target: np.ndarray, status: np.ndarray) -> tuple[float, float]:
        kw = self._problem(status)
        low = self._solve(target, kw)
        high = self._solve(-target, kw)
        lo = low.fun if low.status == 0 else -math.inf
        hi = -high.fun if high.status == 0 else math.inf
        return lo, hi

    def spread(self, targets: np.ndarray, status: np.ndarray, draws: int = 12) -> np.ndarray:
        """True for targets that take values two whole numbers apart at some feasible points:
        those cannot be pinned; the rest get exact LPs.

        The points are the real cell sizes (when known) and the optima of the (randomly
        weighted, seeded) sum of the targets not yet apart, minimised and maximised in turn
        while that frees some; without the real sizes, ``draws`` random objectives first."""
        if len(targets) == 0:
            return np.zeros(0, dtype=bool)
        kw = self._problem(status)
        rng = np.random.default_rng(0)
        points = [] if self.truth is None else [self.truth]
        for _ in range(draws if self.truth is None else 0):
            res = self._solve(rng.normal(size=self.a.shape[1]), kw)
            if res.status == 0:
                points.append(res.x)
        free = np.zeros(len(targets), dtype=bool)
        if self.truth is None and len(points) < 2:
            return free
        free = _apart(targets @ np.array(points).T)
        # A vertex has few non-zero cells, so random objectives leave most small cells at 0:
        # push the unresolved ones down and up together while that frees some.
        progress = True
        while progress and not free.all():
            progress = False
            for sign in (1.0, -1.0):
                weights = rng.uniform(0.5, 1.5, size=int((~free).sum()))
                res = self._solve(sign * (weights @ targets[~free]), kw)
                if res.status != 0:
                    continue
                points.append(res.x)
                now = _apart(targets @ np.array(points).T)
                progress |= bool(now.sum() > free.sum())
                free = now
                if free.all():
                    break
        return free

    def pinned(self, target: np.ndarray, status: np.ndarray) -> bool:
        """Whether at most one whole number is feasible for ``target`` (exact LPs)."""
        if self.truth is None:
            return _pinned(*self.bounds(target, status))
        kw = self._problem(status)
        value = float(target @ self.truth)  # a whole number, feasible
        high = self._solve(-target, kw)
        hi = -high.fun if high.status == 0 else math.inf
        if not _pinned(value, hi):
            return False
        low = self._solve(target, kw)
        lo = low.fun if low.status == 0 else -math.inf
        return _pinned(lo, hi)


def _unique_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(matrix, axis=0, return_inverse=True, return_counts=True)`` of a boolean
    matrix, in the same (lexicographic) order, on its rows packed to bytes (much faster)."""
    packed = np.ascontiguousarray(np.packbits(matrix, axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, inverse, counts = np.unique(
        keys, return_index=True, return_inverse=True, return_counts=True
    )
    return matrix[first], inverse.ravel(), counts


def complementary_suppression(
    cells: Mapping[Hashable, Iterable[bool] | np.ndarray],
    *,
    min_cell: int = MIN_CELL,
    keep: Iterable[Hashable] = (),
) -> dict[Hashable, str]:
    """Decide which published counts to hide so that no count below ``min_cell`` can be derived.

    Parameters
    ----------
    cells : mapping
        One entry per published count: its key (any hashable, e.g. ``("itt", "low", "n")``) and a
        boolean vector over one common population of units (patients), True for the units it
        counts. Counts of the same set are one quantity and share their fate.
    min_cell : int
        The smallest count that may be shown. Counts from 1 to ``min_cell - 1`` are suppressed
        (primary); 0 is shown.
    keep : iterable of keys
        Counts that are published elsewhere regardless (the cohort total in a sentence): never
        chosen as a complementary cell.

    Returns
    -------
    dict
        Key -> ``"shown"``, ``"primary"`` (show as ``"<min_cell"``) or ``"secondary"`` (show as
        ``"suppressed"``).
    """
    keys = list(cells)
    if not keys:
        return {}
    matrix = np.vstack([np.asarray(cells[k], dtype=bool) for k in keys])
    quant, cell_q, _ = _unique_rows(matrix)
    used = quant.any(axis=0)
    atoms_t, _, atom_size = _unique_rows(np.ascontiguousarray(quant[:, used].T))
    atoms = atoms_t.T
    values = quant.sum(axis=1)
    status = np.where((values >= 1) & (values < min_cell), 1, 0)
    kept = np.zeros(len(quant), dtype=bool)
    for k in keep:
        kept[cell_q[keys.index(k)]] = True
    audit = _Auditor(atoms, values, min_cell, truth=atom_size)
    # Targets: every count that is hidden, and every finest cell that is small.
    targets: list[np.ndarray] = [atoms[q].astype(float) for q in np.flatnonzero(status == 1)]
    for j in np.flatnonzero((atom_size >= 1) & (atom_size < min_cell)):
        unit = np.zeros(atoms.shape[1])
        unit[j] = 1.0
        targets.append(unit)
    if min_cell <= 2:
        targets = []  # "<2" already says 1: there is nothing a complementary cell could hide
    while targets:
        free = audit.spread(np.array(targets), status)
        still = [t for t, f in zip(targets, free, strict=True) if not f and audit.pinned(t, status)]
        if not still:
            break
        target = still[0]
        touched = (atoms @ (target > 0)) > 0  # quantities that share units with the target
        near = (atoms @ (atoms[touched].any(axis=0))) > 0
        candidates = [
            q
            for q in np.argsort(values, kind="stable")
            if status[q] == 0 and not kept[q] and values[q] >= min_cell
        ]
        if not candidates:
            break  # nothing left to hide (every count is hidden or kept)
        candidates.sort(key=lambda q: (not near[q], values[q]))
        chosen = None
        for q in candidates:
            trial = status.copy()
            trial[q] = 2
            if not audit.pinned(target, trial):
                chosen = q
                break
        chosen = candidates[0] if chosen is None else chosen
        status[chosen] = 2
        targets = [*still, atoms[chosen].astype(float)]
    names = {0: SHOWN, 1: PRIMARY, 2: SECONDARY}
    return {k: names[int(status[cell_q[i]])] for i, k in enumerate(keys)}


def recoverable(
    cells: Mapping[Hashable, Iterable[bool] | np.ndarray],
    status: Mapping[Hashable, str],
    *,
    min_cell: int = MIN_CELL,
) -> list[Hashable]:
    """Keys of hidden counts whose value an attacker can pin down from the shown ones (audit)."""
    keys = list(cells)
    matrix = np.vstack([np.asarray(cells[k], dtype=bool) for k in keys])
    used = matrix.any(axis=0)
    atoms = matrix[:, used].astype(float)
    code = {SHOWN: 0, PRIMARY: 1, SECONDARY: 2}
    st = np.array([code[status[k]] for k in keys])
    audit = _Auditor(atoms, atoms.sum(axis=1), min_cell, truth=np.ones(atoms.shape[1]))
    hidden = np.flatnonzero(st != 0)
    free = audit.spread(atoms[hidden], st)
    return [
        keys[i] for i, f in zip(hidden, free, strict=True) if not f and audit.pinned(atoms[i], st)
    ]
