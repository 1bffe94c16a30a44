"""Formulas for patsy and statsmodels, coded fast: the one place that works around patsy's
per-row Python loops (same design matrices, same column names).

* :func:`formula_env` is the evaluation environment of every formula the models build
  (``eval_env=formula_env()``): its ``C()`` hands a pandas categorical to patsy as it is.
  patsy 1.0 codes a categorical *inside* ``C()`` with a Python loop over the rows (its fast path
  for pandas categoricals comes before it unwraps ``C()``'s box); a bare categorical it codes
  from its codes, with the same levels (its categories) and the same columns. ``C(x,
  Treatment(...))`` and ``C(x, levels=...)`` go to patsy's own ``C``.
* :func:`text_as_categorical` codes text columns as categoricals with their sorted values as
  levels: the levels patsy would find itself.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["formula_env", "text_as_categorical"]


def _categorical(data, contrast=None, levels=None):
    """patsy's ``C()``; a pandas categorical without contrast or levels is returned as it is."""
    from patsy.builtins import C

    plain = contrast is None and levels is None
    if plain and isinstance(data, pd.Series) and isinstance(data.dtype, pd.CategoricalDtype):
        return data
    return C(data, contrast, levels)


def formula_env() -> dict:
    """The names the models' formulas see beyond their data and patsy's builtins: the ``C()``
    above. statsmodels takes it as ``eval_env=formula_env()``; patsy as
    ``eval_env=EvalEnvironment([formula_env()])``."""
    return {"C": _categorical}


def text_as_categorical(data: pd.DataFrame, skip=()) -> pd.DataFrame:
    """Text columns (but ``skip``) as categoricals with their sorted values as levels: the
    levels patsy would find itself, and the same design, but coded without patsy's per-row
    Python loop. The caller's frame is not changed."""
    if not isinstance(data, pd.DataFrame):
        return data
    text = {}
    for name, col in data.items():
        if name in skip:
            continue
        if pd.api.types.is_string_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype):
            values = col.dropna().unique()
            if all(isinstance(v, str) for v in values):
                text[name] = pd.Categorical(col, categories=sorted(values))
    return data.assign(**text) if text else data
