"""Argument checks shared by every public function: one mechanism, one message format.

Each check returns the cleaned value or raises :class:`~ptanalytics.exceptions.ConfigError` with
a message of the form ``"<name>=<value>; allowed: <what>."`` (plus ``Fix: ...`` where a fix is not
obvious), as scikit-learn's ``_param_validation`` does with its declarative constraints.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ptanalytics.exceptions import ConfigError

__all__ = [
    "check_alpha",
    "check_choice",
    "check_columns",
    "check_frame",
    "check_int",
    "check_number",
    "check_rng",
    "check_seed",
    "columns_of",
]


def check_alpha(alpha: Any, name: str = "alpha") -> float:
    """Significance level: a real number strictly between 0 and 1 (``0.05`` for 95% intervals)."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise ConfigError(f"{name}={alpha!r}; allowed: a number strictly between 0 and 1.")
    return float(alpha)


def check_seed(seed: Any, name: str = "seed") -> int:
    """A seed for ``numpy.random.default_rng``: a non-negative integer (not a bool)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ConfigError(f"{name}={seed!r}; allowed: a non-negative integer.")
    return int(seed)


def check_rng(seed: Any = None, *, rng: np.random.Generator | None = None) -> np.random.Generator:
    """One Generator from ``seed`` (a non-negative integer) or ``rng`` (a Generator), never both.

    Same seed, same stream: ``numpy.random.default_rng(seed)``.
    """
    if rng is not None:
        if seed is not None:
            raise ConfigError("seed and rng were both given; allowed: one of them.")
        if not isinstance(rng, np.random.Generator):
            raise ConfigError(
                f"rng={rng!r}; allowed: a numpy.random.Generator (numpy.random.default_rng(seed))."
            )
        return rng
    if seed is None:
        raise ConfigError("seed=None; allowed: a non-negative integer, so that runs repeat.")
    return np.random.default_rng(check_seed(seed))


def check_int(value: Any, name: str, *, minimum: int | None = None) -> int:
    """A whole number (not a bool), at least ``minimum`` when given."""
    ok = not isinstance(value, bool) and isinstance(value, numbers.Integral)
    if not ok or (minimum is not None and value < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise ConfigError(f"{name}={value!r}; allowed: a whole number{bound}.")
    return int(value)


def check_number(
    value: Any, name: str, *, low: float | None = None, high: float | None = None
) -> float:
    """A finite real number (not a bool) in ``[low, high]`` where given."""
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and np.isfinite(value)
    if not ok or (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ConfigError(f"{name}={value!r}; allowed: a finite number from {lo} to {hi}.")
    return float(value)


def check_choice(value: Any, name: str, allowed: Iterable[Any]) -> Any:
    """One of ``allowed``."""
    options = list(allowed)
    if value not in options:
        raise ConfigError(f"{name}={value!r}; allowed: one of {options}.")
    return value


def check_frame(data: Any, name: str = "data", *, what: str = "a pandas DataFrame") -> pd.DataFrame:
    """A pandas DataFrame (``what`` says which one, e.g. ``"the frame of patient_summary()"``)."""
    if not isinstance(data, pd.DataFrame):
        raise ConfigError(f"{name} is a {type(data).__name__}; allowed: {what}.")
    return data


def columns_of(by: str | Sequence[str] | None, name: str = "by") -> list[str]:
    """``by`` as a list of column names: ``None`` is ``[]``, a string is one column."""
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    if isinstance(by, Sequence) and all(isinstance(b, str) for b in by):
        return list(by)
    raise ConfigError(f"{name}={by!r}; allowed: a column name or a list of column names.")


def check_columns(data: pd.DataFrame, columns: Iterable[str], name: str = "data") -> None:
    """Every column in ``columns`` is in ``data``."""
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise ConfigError(
            f"{name} lacks column(s) {missing}; it has {list(data.columns)[:20]}. "
            "Fix: pass the frame the function documents, or name its columns with the keywords."
        )
