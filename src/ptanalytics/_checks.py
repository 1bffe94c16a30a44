"""Argument checks shared by every public function: one mechanism, one message format.

Each check returns the cleaned value or raises :class:`~ptanalytics.exceptions.ConfigError` with
a message of the form ``"<name>=<value>; allowed: <what>."`` (plus ``Fix: ...`` where a fix is not
obvious), as scikit-learn's ``_param_validation`` does with its declarative constraints.
"""

from __future__ import annotations

import numbers
from typing import Any

from ptanalytics.exceptions import ConfigError

__all__ = [
    "check_alpha",
    "check_seed",
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
