"""Natural cubic spline basis equal to R's ``splines::ns``.

:class:`NaturalSpline` reproduces ``ns(x, df =, knots =, intercept =, Boundary.knots =)``
(R 4.x, ``src/library/splines/R/splines.R``) column for column:

* with ``df`` and no ``knots``, the ``df - 1 - intercept`` interior knots are the type-7 quantiles
  of *all* the values (``quantile(x, seq(0, 1, length = nIknots + 2)[-c(1, nIknots + 2)])``),
  the boundary knots ``range(x)``;
* the cubic B-spline basis on the knots (boundary knots repeated four times) is evaluated with
  scipy; outside the boundary knots it is continued linearly from the boundary (value and first
  derivative there), as ``ns`` does;
* the natural constraint (second derivative 0 at both boundary knots) is imposed as R does: with
  ``C`` the 2 x k matrix of the basis' second derivatives at the boundary knots (first column
  dropped without an intercept), ``Q`` the full orthogonal factor of the Householder QR of ``C'``
  and ``B`` the basis, the result is ``(B Q)[:, 2:]`` (R: ``t(qr.qty(qr(t(const)), t(basis)))[,
  -(1:2)]``). LAPACK's and LINPACK's Householder reflections are the same reflections, so the
  columns equal R's, signs included (``tests/test_r_reference.py``).

The object is stateful: :meth:`NaturalSpline.fit` fixes the knots from the training values and
:meth:`NaturalSpline.transform` evaluates the same basis anywhere (a prediction grid), as
``predict(ns_object, newx)`` does in R.
"""

from __future__ import annotations

import numpy as np
from scipy import interpolate, linalg

from ptanalytics.exceptions import ConfigError

__all__ = ["NaturalSpline", "ns"]


class NaturalSpline:
    """Natural cubic spline basis of one variable (R's ``splines::ns``); see the module docstring.

    Parameters
    ----------
    df : int, optional
        Degrees of freedom (columns); interior knots at quantiles of the training values.
    knots : array-like, optional
        Interior knots (instead of ``df``).
    intercept : bool, default False
        Keep the basis' first column (R's ``intercept = TRUE``).
    boundary_knots : (float, float), optional
        Default: the range of the training values.

    Attributes
    ----------
    knots_ : ndarray
        Interior knots after :meth:`fit`.
    boundary_knots_ : ndarray
        The two boundary knots after :meth:`fit`.
    """

    def __init__(self, df=None, *, knots=None, intercept=False, boundary_knots=None):
        if df is None and knots is None:
            raise ConfigError("NaturalSpline needs df= or knots=; e.g. df=3.")
        if df is not None and (isinstance(df, bool) or int(df) != df or df < 1):
            raise ConfigError(f"df={df!r}; expected a whole number >= 1, e.g. df=3.")
        self.df, self.knots, self.intercept = df, knots, bool(intercept)
        self.boundary_knots = boundary_knots

    def fit(self, x) -> NaturalSpline:
        """Fix the knots from the training values ``x`` (missing values ignored)."""
        x = np.asarray(x, dtype=float)
        x = x[np.isfinite(x)]
        if x.size == 0:
            raise ConfigError("NaturalSpline.fit: x has no finite value to place knots at.")
        bk = np.array(
            (x.min(), x.max()) if self.boundary_knots is None else self.boundary_knots, float
        )
        if self.knots is None:
            n_inner = int(self.df) - 1 - int(self.intercept)
            if n_inner < 0:
                raise ConfigError(
                    f"df={self.df!r} with intercept={self.intercept}: df must be >= "
                    f"{1 + int(self.intercept)}."
                )
            probs = np.linspace(0, 1, n_inner + 2)[1:-1]
            inside = x[(x >= bk[0]) & (x <= bk[1])]
            knots = np.quantile(inside, probs)  # type 7, R's default
        else:
            knots = np.sort(np.asarray(self.knots, dtype=float))
        if not bk[0] < bk[1]:
            raise ConfigError(
                f"boundary knots {bk.tolist()}: x must take at least two distinct values."
            )
        self.knots_, self.boundary_knots_ = knots, bk
        t = np.sort(np.r_[np.repeat(bk, 4), knots])
        k = len(t) - 4
        self._spline = interpolate.BSpline(t, np.eye(k), 3, extrapolate=True)
        const = self._spline.derivative(2)(bk)  # 2 x k
        if not self.intercept:
            const = const[:, 1:]
        q, _ = linalg.qr(const.T, mode="full")
        self._q = q[:, 2:]
        return self

    def transform(self, x) -> np.ndarray:
        """The basis at ``x`` (rows of missing ``x`` are missing), shape ``(len(x), df)``."""
        if not hasattr(self, "_q"):
            raise ConfigError("NaturalSpline.transform before fit: call fit(x) first.")
        x = np.asarray(x, dtype=float)
        out = np.full((x.size, self._q.shape[1]), np.nan)
        ok = np.isfinite(x)
        lo, hi = self.boundary_knots_
        xs = x[ok]
        basis = self._spline(np.clip(xs, lo, hi))
        for side, mask in ((lo, xs < lo), (hi, xs > hi)):
            if mask.any():
                slope = self._spline.derivative(1)(side)
                basis[mask] = self._spline(side) + np.outer(xs[mask] - side, slope)
        if not self.intercept:
            basis = basis[:, 1:]
        out[ok] = basis @ self._q
        return out

    def fit_transform(self, x) -> np.ndarray:
        """:meth:`fit` then :meth:`transform` on the same values."""
        return self.fit(x).transform(x)


def ns(x, df=None, *, knots=None, intercept=False, boundary_knots=None) -> np.ndarray:
    """R's ``splines::ns(x, df, knots, intercept, Boundary.knots)`` as an array (see module)."""
    spline = NaturalSpline(df, knots=knots, intercept=intercept, boundary_knots=boundary_knots)
    return spline.fit_transform(x)
