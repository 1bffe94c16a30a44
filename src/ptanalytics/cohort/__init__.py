"""The cohort: its tables' schema, the exercise catalogue, the ``Cohort`` container and its files.

``cohort.io`` is the one place that finds, reads and writes a cohort folder's tables and
``cohort.json`` (atomic folders in ``cohort._atomic``).
"""

from ptanalytics.cohort.catalogue import CATEGORIES, exercise_catalogue
from ptanalytics.cohort.io import TABLE_NAMES, Cohort, load_cohort
from ptanalytics.cohort.schema import TABLES

__all__ = ["CATEGORIES", "TABLES", "TABLE_NAMES", "Cohort", "exercise_catalogue", "load_cohort"]
