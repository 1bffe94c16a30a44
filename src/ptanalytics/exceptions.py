"""Exceptions raised by ptanalytics.

Every error raised on bad user input is a ``ValueError`` (or ``TypeError``) subclass whose message
names what was given, where, what was expected and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "CohortFormatError",
    "ConfigError",
    "IngestError",
    "MappingError",
    "PtAnalyticsError",
]


class PtAnalyticsError(Exception):
    """Base class of every error ptanalytics raises on purpose."""


class ConfigError(PtAnalyticsError, ValueError):
    """A simulation or analysis parameter is missing, unknown, of the wrong type or out of range."""


class CohortFormatError(PtAnalyticsError, ValueError):
    """A cohort directory is incomplete or its files do not match the canonical format."""


class IngestError(PtAnalyticsError, ValueError):
    """A source file cannot be used at all (unreadable, empty, missing a required column).

    Row-level problems never raise: those rows are quarantined with their reason.
    """


class MappingError(PtAnalyticsError, ValueError):
    """A mapping file is malformed or names a column the source does not have."""
