"""Argument checks shared by every public function: one mechanism, one message format.

Each check returns the cleaned value or raises :class:`~ptanalytics.exceptions.ConfigError` with
a message of the form ``"<name>=<value>; allowed: <what>."`` plus ``" Fix: <fix>"`` where a fix
is not obvious, as scikit-learn's ``utils/_param_validation`` does with its declarative
constraints::

    check_option("analysis", analysis, ("itt", "completers"))
    # analysis='pp'; allowed: one of 'itt', 'completers'.
    check_number("threads", threads, low=1, integer=True, allow_none=True)
    # threads=0; allowed: None or a whole number >= 1.
    check_bool("overwrite", overwrite)
    # overwrite='yes'; allowed: True or False.

:func:`type_words` names a value's type in messages ("a string", "a list").
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

from ptanalytics.exceptions import ConfigError

__all__ = [
    "check_alpha",
    "check_bool",
    "check_number",
    "check_option",
    "check_seed",
    "type_words",
]


def _refuse(name: str, value: Any, allowed: str, fix: str | None) -> ConfigError:
    """The one message format: ``name=value; allowed: ... [Fix: ...]``."""
    message = f"{name}={value!r}; allowed: {allowed}."
    if fix:
        message += f" Fix: {fix}" + ("" if fix.endswith(".") else ".")
    return ConfigError(message)


def check_option(
    name: str,
    value: Any,
    allowed: Iterable[Any],
    *,
    what: str | None = None,
    fix: str | None = None,
) -> Any:
    """``value`` if it is one of ``allowed``, else a :class:`ConfigError`.

    Parameters
    ----------
    name : str
        The argument's name, as the caller wrote it.
    value : object
        What was given.
    allowed : iterable
        The allowed values (compared with ``==``; a bool never matches ``0``/``1``).
    what : str, optional
        Words for the allowed values in the message (default ``one of 'a', 'b'``).
    fix : str, optional
        How to fix it, appended as ``Fix: ...``.

    Returns
    -------
    object
        ``value`` unchanged.
    """
    options = tuple(allowed)
    if not any(_same(value, a) for a in options):
        words = what or "one of " + ", ".join(repr(a) for a in options)
        raise _refuse(name, value, words, fix)
    return value


def _same(value: Any, option: Any) -> bool:
    """``value == option``, a bool matching only a bool; False where ``==`` gives no answer."""
    if isinstance(value, bool) != isinstance(option, bool):
        return False
    try:
        return bool(value == option)
    except (TypeError, ValueError):  # an array compared elementwise, or an odd __eq__
        return False


def check_bool(name: str, value: Any, *, fix: str | None = None) -> bool:
    """``value`` if it is ``True`` or ``False`` (a Python bool: not ``1``, ``"yes"`` or
    ``numpy.True_``), else a :class:`ConfigError` ``name=value; allowed: True or False.``"""
    if not isinstance(value, bool):
        raise _refuse(name, value, "True or False", fix)
    return value


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    inclusive: bool = True,
    integer: bool = False,
    allow_none: bool = False,
    what: str | None = None,
    fix: str | None = None,
) -> float | int | None:
    """``value`` as a number inside ``[low, high]`` (or ``(low, high)``), else a ConfigError.

    Booleans, NaN and infinities are refused; with ``integer=True`` only integral values are
    accepted (``3.0`` is not a whole number here: the caller asked for an ``int``).

    Parameters
    ----------
    name, value : str, object
        As :func:`check_option`.
    low, high : float, optional
        Bounds (either may be left open).
    inclusive : bool, default True
        Whether the bounds themselves are allowed.
    integer : bool, default False
        Require an integral number (``numbers.Integral``, e.g. ``int`` or ``numpy.int64``).
    allow_none : bool, default False
        Accept ``None`` (returned as is).
    what : str, optional
        Words for what is allowed (default built from the bounds, e.g. ``a whole number >= 1``).
    fix : str, optional
        How to fix it, appended as ``Fix: ...``.

    Returns
    -------
    int, float or None
        ``int(value)`` when ``integer``, else ``float(value)``; ``None`` when allowed and given.
    """
    if value is None and allow_none:
        return None
    kind = numbers.Integral if integer else numbers.Real
    ok = not isinstance(value, bool) and isinstance(value, kind)
    if ok and not isinstance(value, numbers.Integral):  # an int may exceed any float
        ok = math.isfinite(value)
    if ok and low is not None:
        ok = value >= low if inclusive else value > low
    if ok and high is not None:
        ok = value <= high if inclusive else value < high
    if not ok:
        words = what or _number_words(low, high, inclusive, integer)
        raise _refuse(name, value, ("None or " if allow_none else "") + words, fix)
    return int(value) if integer else float(value)


def _number_words(low: float | None, high: float | None, inclusive: bool, integer: bool) -> str:
    """``a whole number >= 1``, ``a number strictly between 0 and 1``, ``a number from 0 to 10``."""
    words = "a whole number" if integer else "a number"
    if low is not None and high is not None:
        if inclusive:
            return f"{words} from {low:g} to {high:g}"
        return f"{words} strictly between {low:g} and {high:g}"
    if low is not None:
        return f"{words} {'>=' if inclusive else '>'} {low:g}"
    if high is not None:
        return f"{words} {'<=' if inclusive else '<'} {high:g}"
    return words


def check_alpha(alpha: Any, name: str = "alpha") -> float:
    """Significance level: a real number strictly between 0 and 1 (``0.05`` for 95% intervals)."""
    return check_number(name, alpha, low=0, high=1, inclusive=False)


def check_seed(seed: Any, name: str = "seed") -> int:
    """A seed for ``numpy.random.default_rng``: a non-negative integer (not a bool)."""
    return check_number(name, seed, low=0, integer=True, what="a non-negative integer")


def type_words(value: Any, *, mapping: str = "a table") -> str:
    """A value's type in words for messages: ``a boolean``, ``a string``, ``a number``,
    ``a list``, ``mapping`` for a dict (``a table`` in TOML, ``an object`` in JSON), else
    ``a <type name>``."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return mapping
    return f"a {type(value).__name__}"
