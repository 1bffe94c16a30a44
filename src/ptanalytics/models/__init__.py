"""Statistical models of pain, adherence, exercise mix, program length, response and dropout.

Results are associations: adherence and the exercise mix are not randomised.

The result protocol
-------------------
Every public fitting function returns a result (:mod:`ptanalytics.models._result`) with
``table`` (tidy: ``term``, ``estimate``, ``std_error``, ``ci_low``, ``ci_high``, ``p_value`` plus
model-specific columns, intervals at the ``1 - alpha`` level the function was called with),
``n`` (patients), ``notes`` (plain-language messages) and ``figure(ax=None)`` (drawn by
:mod:`ptanalytics.plotting`). Model-specific results add their own fields (``curve``,
``variance``, ``planned_vs_actual`` ...).

What a model takes
------------------
A model takes a tidy DataFrame and, as keywords, the roles of its columns and its settings
(``alpha`` everywhere for the interval level):

* the **patient summary** (:func:`ptanalytics.patient_summary`, one row per patient):
  :func:`dose_response`, :func:`category_substitution`, :func:`program_length`,
  :func:`responder_logistic`, :func:`kaplan_meier`, :func:`impute_followup`,
  :func:`mi_responders`, :func:`tipping_point`;
* the **model frame** of repeated assessments
  (:func:`ptanalytics.models.trajectory.pain_model_frame`, one row per NPRS assessment):
  :func:`fit_pain_model`, :func:`responder_gee`;
* the **patient-week frame and the summary** (:func:`ptanalytics.patient_weeks`), for the
  time-varying dropout models: :func:`dropout_intervals`, :func:`cox_dropout`
  (``weeks, summary``);
* **any long frame** with the column roles named: :func:`fit_lmm` (``data, formula, *,
  group=``), :func:`km_estimate`, :func:`logrank_test`, :func:`cox_ph` (``data, *, time=,
  event=, ...``).

A :class:`~ptanalytics.Cohort` is taken only where several of its tables are genuinely needed to
build a frame (``pain_model_frame(cohort)``), never by a model. A function of a fitted result
takes the result (:func:`predicted_trajectories`, :func:`km_median`).

The names below are imported from their modules on first use, so importing one model module
(``ptanalytics.models.lmm``) does not import the others, and no import cycle can form here.
"""

from __future__ import annotations

import importlib

# name -> the module of ptanalytics.models that defines it
_EXPORTS = {
    "ModelResult": "_result",
    "Estimates": "_result",
    "fit_lmm": "lmm",
    "complier_effect": "causal",
    "e_value": "causal",
    "ipw_msm": "causal",
    "gformula": "causal",
    "target_trial": "causal",
    "weekly_history": "causal_frames",
    "extension_rule_trial": "causal_frames",
    "pain_model_frame": "trajectory",
    "fit_pain_model": "trajectory",
    "predicted_trajectories": "trajectory",
    "dose_response": "outcomes",
    "category_substitution": "outcomes",
    "program_length": "outcomes",
    "responder_logistic": "outcomes",
    "responder_gee": "outcomes",
    "km_estimate": "survival",
    "km_median": "survival",
    "logrank_test": "survival",
    "cox_ph": "survival",
    "kaplan_meier": "dropout",
    "cox_dropout": "dropout",
    "dropout_intervals": "dropout",
    "impute_followup": "missing_data",
    "mi_responders": "missing_data",
    "tipping_point": "missing_data",
    "rubin": "missing_data",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ptanalytics.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ptanalytics.models.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
