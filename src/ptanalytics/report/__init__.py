"""The HTML report: its sections (tables, figures and sentences as functions) and the renderer.

* :mod:`~ptanalytics.report.sections` — one function per section of the report, over one
  prepared :class:`~ptanalytics.report.sections.Report`;
* :mod:`~ptanalytics.report.tables` — Table 1 and the linked count tables;
* :mod:`~ptanalytics.report.disclosure` — disclosure control over every published count;
* :mod:`~ptanalytics.report.text` — the sentences that read no model;
* :mod:`~ptanalytics.report.render` — blocks into notebook output, the notebook into HTML.
"""

from ptanalytics.report.render import render_report

__all__ = ["render_report"]
