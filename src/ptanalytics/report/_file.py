"""Where and how the HTML report is written (see :func:`ptanalytics.report.render.render_report`).

* The report goes to a temporary file beside ``out`` and is renamed over it, so a kill during the
  write leaves the previous report intact (:func:`ptanalytics.cohort._atomic.replace_file`); a lock
  refuses a second writer and a leftover temporary file is removed by the next run.
* An existing ``out`` is replaced only when it is empty or a report ptanalytics wrote (it carries
  :data:`~ptanalytics.cohort.io.REPORT_MARKER` in its head; a report written before the marker is
  recognised by its doctype and the word ``ptanalytics``).
* Refused, before the notebook runs: ``out`` is a folder; ``out`` is a symbolic link (refused,
  not followed: give the real path); ``out`` is one of a cohort's own files (``cohort.json``, a
  table, anything in ``quarantine/`` or a folder of parts) or any non-``.html`` file inside a
  cohort folder. A report ``cohorts/x/report.html`` beside a cohort is allowed.
"""

from __future__ import annotations

import os
from pathlib import Path

from ptanalytics.cohort._atomic import absolute, check_file, replace_file
from ptanalytics.cohort.container import TABLE_NAMES
from ptanalytics.cohort.io import _TRUTH_PATIENTS, REPORT_MARKER
from ptanalytics.exceptions import CohortFormatError

__all__: list[str] = []

_SUBFOLDERS = frozenset({"quarantine", *TABLE_NAMES, _TRUTH_PATIENTS})


def _not_report(path: Path) -> str | None:
    """``None`` when ``path`` is a report this package wrote, else why it is not."""
    try:
        with open(path, "rb") as fh:
            text = fh.read()
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if REPORT_MARKER in text[:4096]:
        return None
    if text.lstrip()[:15].lower() == b"<!doctype html>" and b"ptanalytics" in text:
        return None  # a report written before the marker existed
    return "is not a ptanalytics report"


def _inside(out, folder: Path, what: str) -> str:
    return (
        f"{out}: lies inside the cohort folder {folder} and is {what}; a report may sit beside "
        f"a cohort's files but never replace them. Fix: give --out a new .html file, e.g. "
        f"{folder / 'report.html'} or reports/report.html."
    )


def report_destination(out: str | os.PathLike) -> Path:
    """Check ``out`` before the report is rendered; return it (absolute).

    Raises
    ------
    CohortFormatError
        ``out`` is a folder, a symlink, a cohort's own file, a non-HTML file in a cohort folder,
        or an existing file that is not a ptanalytics report.
    """
    dest = absolute(out)
    parent = dest.parent
    if (parent / "cohort.json").is_file() and dest.suffix.lower() != ".html":
        what = "one of its files" if os.path.lexists(dest) else "not an .html file"
        raise CohortFormatError(_inside(out, parent, what))
    if parent.name in _SUBFOLDERS and (parent.parent / "cohort.json").is_file():
        raise CohortFormatError(_inside(out, parent.parent, f"in its {parent.name}/ folder"))
    if dest.is_symlink():
        raise CohortFormatError(
            f"{out}: is a symbolic link; the report is not written through links (that would "
            f"write wherever it points). Fix: give the real path ({os.path.realpath(dest)})."
        )
    return check_file(out, owned=_not_report, what="report")


def write_report(out: str | os.PathLike, html: str) -> Path:
    """Write the report's HTML to ``out`` (checked again, marked, atomically); return ``out``."""
    dest = report_destination(out)
    marker = REPORT_MARKER.decode()
    text = html.replace("<head>", f"<head>\n{marker}", 1) if "<head>" in html else html
    if marker not in text[:4096]:
        text = f"<!-- ptanalytics report -->\n{marker}\n{text}"
    replace_file(dest, text.encode("utf-8"), owned=_not_report)
    return Path(out)
