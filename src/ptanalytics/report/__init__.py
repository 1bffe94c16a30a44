"""The HTML report: its sections (tables, figures and sentences as functions) and the renderer."""

from ptanalytics.report.sections import render_report

__all__ = ["render_report"]
