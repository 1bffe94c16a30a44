"""Privacy: identifier detection, de-identification, k-anonymity and small-count suppression."""

from ptanalytics.privacy.deidentification import (
    deidentify,
    deidentify_directory,
    generalise,
    k_anonymity,
)
from ptanalytics.privacy.identifiers import find_identifier_columns
from ptanalytics.privacy.suppression import complementary_suppression, suppress_small_counts

__all__ = [
    "complementary_suppression",
    "deidentify",
    "deidentify_directory",
    "find_identifier_columns",
    "generalise",
    "k_anonymity",
    "suppress_small_counts",
]
