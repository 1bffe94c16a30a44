"""The cohort: its tables' schema, the exercise catalogue, the ``Cohort`` container and its files.

``cohort.container`` holds the in-memory ``Cohort``; ``cohort.io`` is the one place that finds,
reads and writes a cohort folder's tables and ``cohort.json`` (atomic folders in
``cohort._atomic``).
"""

from ptanalytics.cohort.catalogue import CATEGORIES, exercise_catalogue
from ptanalytics.cohort.container import TABLE_NAMES, Cohort
from ptanalytics.cohort.io import load_cohort
from ptanalytics.cohort.schema import TABLES

__all__ = ["CATEGORIES", "TABLES", "TABLE_NAMES", "Cohort", "exercise_catalogue", "load_cohort"]
