"""The HTML report: a parameterised notebook executed by papermill, converted by nbconvert.

:func:`render_report` runs the package's report notebook (``data/report.ipynb``) on a cohort and
writes one self-contained HTML file: figures embedded, no script, style or font fetched from the
network, a table of contents, code hidden unless asked. Counts below ``min_cell`` are shown as
``<min_cell`` in every table; no patient identifier, birth date or calendar date is printed.

The notebook calls the helpers below (and the package's models); it holds no analysis of its own.
"""

from __future__ import annotations

import hashlib
import html
import platform
import re
import sys
import tempfile
from importlib import metadata, resources
from pathlib import Path

import pandas as pd

from ptanalytics.cohort import Cohort
from ptanalytics.exceptions import ConfigError
from ptanalytics.privacy import suppress_small_counts
from ptanalytics.timepoints import timepoint_scores

__all__ = ["cohort_fingerprint", "render_report", "software_versions", "table_one"]


def cohort_fingerprint(cohort: Cohort) -> str:
    """SHA-256 of the cohort's tables (as canonical CSV), to tell which data a report used."""
    digest = hashlib.sha256()
    for name, df in cohort.tables.items():
        digest.update(name.encode())
        digest.update(
            df.to_csv(
                index=False, date_format="%Y-%m-%d", float_format="%.10g", lineterminator="\n"
            ).encode()
        )
    return digest.hexdigest()


def software_versions() -> pd.DataFrame:
    """Versions of Python and of the packages the analysis used (``package``, ``version``)."""
    rows = [("python", platform.python_version())]
    for pkg in (
        "ptanalytics",
        "numpy",
        "pandas",
        "scipy",
        "statsmodels",
        "matplotlib",
        "pyarrow",
        "papermill",
        "nbconvert",
    ):
        try:
            rows.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            rows.append((pkg, "not installed"))
    return pd.DataFrame(rows, columns=["package", "version"])


def table_one(cohort: Cohort, *, min_cell: int = 11) -> pd.DataFrame:
    """Baseline characteristics (Table 1) with small counts suppressed.

    Returns
    -------
    pandas.DataFrame
        ``characteristic``, ``level``, ``n`` and ``percent`` (counts below ``min_cell`` shown as
        ``<min_cell``) for sex, chronicity and planned guided weeks, and ``mean (SD)`` rows for
        age and baseline NPRS / ODI.
    """
    pts = cohort.patients
    total = len(pts)
    rows = [{"characteristic": "patients", "level": "", "n": total, "percent": 100.0}]
    for col in ("sex", "chronicity", "guided_weeks", "arm"):
        if col not in pts or pts[col].isna().all():
            continue
        counts = pts[col].astype("string").fillna("missing").value_counts()
        counts = counts.sort_index(key=lambda idx: [(len(v), v) for v in idx])
        for level, n in counts.items():
            rows.append(
                {
                    "characteristic": col.replace("_", " "),
                    "level": str(level),
                    "n": int(n),
                    "percent": round(100 * n / total, 1),
                }
            )
    table = pd.DataFrame(rows)
    table = suppress_small_counts(table, counts=["n"], derived=["percent"], min_cell=min_cell)
    extra = []
    if "age" in pts and pts["age"].notna().any():
        age = pts["age"].astype(float)
        extra.append(("age, years", "mean (SD)", f"{age.mean():.1f} ({age.std():.1f})"))
    scores = timepoint_scores(cohort, instruments=("NPRS", "ODI"))
    for inst in ("NPRS", "ODI"):
        s = scores[f"{inst.lower()}_baseline"].dropna()
        if len(s) >= min_cell:
            extra.append((f"baseline {inst}", "mean (SD)", f"{s.mean():.1f} ({s.std():.1f})"))
    for name, level, value in extra:
        table.loc[len(table)] = {"characteristic": name, "level": level, "n": value, "percent": ""}
    return table


def _notebook_template() -> Path:
    return Path(str(resources.files("ptanalytics").joinpath("data/report.ipynb")))


_EXTERNAL = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.I)
_HEADING = re.compile(r"<h2 id=\"([^\"]+)\">(.*?)<a class=\"anchor-link\"", re.S)


def _self_contained(text: str, title: str) -> str:
    """Drop network scripts (MathJax, require.js; the report needs neither) and add a TOC."""
    text = _EXTERNAL.sub("", text)
    text = re.sub(r"<link[^>]*href=\"https?://[^\"]*\"[^>]*>", "", text, flags=re.I)
    headings = _HEADING.findall(text)
    if headings:
        items = "".join(
            f'<li><a href="#{hid}">{re.sub("<[^>]+>", "", label).strip()}</a></li>'
            for hid, label in headings
        )
        toc = (
            '<nav id="toc" aria-label="Contents" style="font-family: sans-serif; '
            'margin: 1em 2em"><h2>Contents</h2><ul style="list-style: none; padding-left: 0">'
            f"{items}</ul></nav>"
        )
        text = (
            text.replace("<main>", f"<main>{toc}", 1)
            if "<main>" in text
            else text.replace("<body>", f"<body>{toc}", 1)
        )
    return re.sub(
        r"<title>.*?</title>", f"<title>{html.escape(title)}</title>", text, count=1, flags=re.S
    )


def render_report(
    data: str | Path | None = None,
    out: str | Path | None = None,
    *,
    title: str = "ptanalytics report",
    min_cell: int = 11,
    show_code: bool = False,
    progress: bool = True,
) -> Path:
    """Execute the report notebook on a cohort and write a self-contained HTML file.

    Parameters
    ----------
    data : path, optional
        A cohort folder; the default synthetic cohort when not given.
    out : path, optional
        The HTML file (default ``reports/report.html``).
    title : str
        Report title.
    min_cell : int
        Counts below this are shown as ``<min_cell`` (default 11).
    show_code : bool
        Keep the code cells in the HTML.
    progress : bool
        Show papermill's progress bar on the terminal.

    Returns
    -------
    Path
        The HTML file written.
    """
    import papermill as pm
    from nbconvert import HTMLExporter

    if min_cell < 1:
        raise ConfigError(f"min_cell={min_cell}; allowed: a whole number >= 1.")
    if data is not None and not (Path(data) / "cohort.json").is_file():
        raise ConfigError(
            f"{data}: not a cohort folder (no cohort.json). Fix: point --data to a "
            f"folder written by 'ptanalytics ingest' or 'simulate'."
        )
    dest = Path(out) if out else Path("reports") / "report.html"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        executed = Path(tmp) / "report.ipynb"
        pm.execute_notebook(
            str(_notebook_template()),
            str(executed),
            parameters={
                "data_dir": None if data is None else str(Path(data).resolve()),
                "title": title,
                "min_cell": int(min_cell),
            },
            kernel_name="python3",
            progress_bar=progress,
            cwd=tmp,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
        )
        exporter = HTMLExporter(template_name="lab")
        exporter.exclude_input = not show_code
        exporter.exclude_input_prompt = True
        exporter.exclude_output_prompt = True
        body, _ = exporter.from_filename(str(executed))
    dest.write_text(_self_contained(body, title), encoding="utf-8")
    if progress:
        print(f"report written to {dest}", file=sys.stderr)
    return dest
