"""Exceptions raised by ptanalytics.

Every error raised on bad user input is a ``ValueError`` (or ``TypeError``) subclass whose message
names what was given, where, what was expected and how to fix it.
"""

from __future__ import annotations

__all__ = ["CohortFormatError", "ConfigError", "PtAnalyticsError"]


class PtAnalyticsError(Exception):
    """Base class of every error ptanalytics raises on purpose."""


class ConfigError(PtAnalyticsError, ValueError):
    """A simulation or analysis parameter is missing, unknown, of the wrong type or out of range."""


class CohortFormatError(PtAnalyticsError, ValueError):
    """A cohort directory is incomplete or its files do not match the canonical format."""
