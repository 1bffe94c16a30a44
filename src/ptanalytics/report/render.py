"""Rendering: a section's blocks into notebook output, and the report notebook into one HTML file.

:func:`render_report` runs the package's report notebook (``report/report.ipynb``) on a cohort
with papermill and converts it with nbconvert: one self-contained HTML file, figures embedded, no
script, style or font fetched from the network, a table of contents, code hidden unless asked.
The notebook calls :mod:`ptanalytics.report.sections`, whose functions add what they show to a
:class:`Blocks` (Markdown, HTML, figures), displayed as they come in the notebook.
"""

from __future__ import annotations

import html
import os
import re
import sys
import tempfile
from importlib import resources
from pathlib import Path

from ptanalytics._checks import check_number
from ptanalytics.exceptions import ConfigError
from ptanalytics.privacy.suppression import MIN_CELL
from ptanalytics.report._file import report_destination, write_report

__all__ = ["Blocks", "figure_html", "render_report"]


class Blocks:
    """What report sections show, in order: Markdown, HTML and matplotlib figures.

    Parameters
    ----------
    live : bool
        Display each block at once in the running notebook (IPython's ``display``), closing each
        figure after it is drawn; otherwise keep them in :attr:`items` (for tests and scripts).
    """

    def __init__(self, *, live: bool = False):
        self.live = live
        self.items: list[tuple[str, object]] = []

    def markdown(self, text: str) -> None:
        """Add Markdown text."""
        self._add("markdown", text)

    def html(self, text: str) -> None:
        """Add HTML (a table)."""
        self._add("html", text)

    def figure(self, fig) -> None:
        """Add a matplotlib figure (closed once shown; shown as :func:`figure_html`)."""
        self._add("figure", fig)

    def text(self) -> str:
        """The Markdown and HTML kept so far, one block a line (figures as ``<figure>``)."""
        return "\n".join(
            "<figure>" if kind == "figure" else str(value) for kind, value in self.items
        )

    def _add(self, kind: str, value) -> None:
        import matplotlib.pyplot as plt

        if not self.live:
            self.items.append((kind, value))
            if kind == "figure":
                plt.close(value)
            return
        from IPython.display import HTML, Markdown, display

        if kind == "figure":
            display(HTML(figure_html(value)))
            plt.close(value)
            return
        display({"markdown": Markdown, "html": HTML}[kind](value))


def figure_html(fig) -> str:
    """A figure as ``<figure>``: its PNG embedded (100 dpi, cropped to what is drawn), its
    description (:func:`ptanalytics.plotting.alt_text`) as the image's ``alt`` and its caption,
    if :func:`ptanalytics.plotting.describe` gave one, as ``<figcaption>``. The same figure gives
    the same bytes (Agg draws deterministically; the PNG holds no date)."""
    import base64
    import io

    from ptanalytics.plotting import alt_text

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", facecolor="white")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    alt = html.escape(alt_text(fig), quote=True)
    caption = getattr(fig, "_pt_caption", None)
    below = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (
        f'<figure style="margin: 1em 0"><img src="data:image/png;base64,{data}" alt="{alt}" '
        f'style="max-width: 100%; height: auto">{below}</figure>'
    )


def _stable_notebook(path: Path) -> None:
    """Make an executed notebook reproducible: cell ids from the cell's position (nbformat and
    papermill draw random ones) and no execution timestamps, so the same cohort and options give
    byte-identical HTML."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"
        cell.metadata.pop("execution", None)
        cell.metadata.get("papermill", {}).clear()
    nb.metadata.get("papermill", {}).clear()
    nbformat.write(nb, str(path))


def kernel_config(folder: str | Path):
    """Kernel settings of the report: local IPC (Unix sockets in ``folder``), never TCP.

    Over TCP the kernel's messages travel through 127.0.0.1 ports in plain text (signed, not
    encrypted), and ipykernel warns that it runs "over TCP without encryption". Over IPC its
    sockets are files in ``folder`` (the render's private temporary folder): no port is opened
    and the warning has no cause. ``folder`` must be short: a socket path has at most ~100 bytes.
    On Windows, where ZeroMQ has no IPC transport, None (jupyter_client's default, TCP on
    127.0.0.1).
    """
    from traitlets.config import Config

    if os.name == "nt":
        return None
    return Config({"KernelManager": {"transport": "ipc", "ip": str(Path(folder) / "kernel")}})


def _notebook_template() -> Path:
    return Path(str(resources.files("ptanalytics").joinpath("report/report.ipynb")))


_EXTERNAL = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.I)
_HEADING = re.compile(r"<h2 id=\"([^\"]+)\">(.*?)<a class=\"anchor-link\"", re.S)


#: The report's print stylesheet: a heading stays with what follows it, figures and table rows
#: are never cut across pages, and tables and output areas print whole instead of as a box
#: with a scrollbar. tests/test_report_print.py prints the report with Chromium and checks it.
PRINT_CSS = """
@page { size: A4; margin: 18mm 16mm 20mm 16mm; }
@media print {
  h1, h2, h3, h4 { break-after: avoid; page-break-after: avoid; break-inside: avoid; }
  .jp-MarkdownCell { break-after: avoid; page-break-after: avoid; }
  /* A heading inside a table cell or an overflow-hidden box cannot pass "avoid" on to the
     page break after its cell: print the markdown cell's wrappers as plain blocks. */
  .jp-InputArea, .jp-InputArea-editor, .jp-MarkdownOutput {
    display: block !important; overflow: visible !important;
  }
  /* A sentence that introduces a table or a figure stays on its page. */
  .jp-OutputArea-child:has(> .jp-RenderedMarkdown) { break-after: avoid; }
  img, svg, figure, .jp-RenderedImage {
    break-inside: avoid; page-break-inside: avoid; max-width: 100% !important; height: auto;
  }
  tr, thead, caption { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  .jp-Cell, .jp-Cell-outputWrapper, .jp-OutputArea, .jp-OutputArea-child,
  .jp-OutputArea-output, .jp-RenderedHTMLCommon, pre {
    overflow: visible !important; max-height: none !important;
  }
  table { max-width: 100%; }
  p, li { orphans: 3; widows: 3; }
  a.anchor-link { display: none; }
}
"""


def _self_contained(text: str, title: str) -> str:
    """Drop network scripts (MathJax, require.js; the report needs neither), add a TOC and the
    print stylesheet (:data:`PRINT_CSS`)."""
    text = _EXTERNAL.sub("", text)
    text = text.replace("</head>", f"<style>{PRINT_CSS}</style>\n</head>", 1)
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
    min_cell: int = MIN_CELL,
    show_code: bool = False,
    progress: bool = True,
    active_arm: str | None = None,
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
    active_arm : str, optional
        The randomised active level of ``patients.arm`` (``ReportSettings.active_arm``): the
        effects section then estimates the complier effect of adherence.

    Returns
    -------
    Path
        The HTML file written.

    Raises
    ------
    CohortFormatError
        Before anything runs, when ``out`` is a folder, a symbolic link (refused, not followed),
        one of a cohort's own files, or an existing file that is not a ptanalytics report. The
        file is written to a temporary sibling and renamed, so a kill leaves the old report.

    Examples
    --------
    >>> from ptanalytics.report import render_report
    >>> render_report("data/synthetic/default", "reports/default.html")  # doctest: +SKIP
    PosixPath('reports/default.html')
    """
    import papermill as pm
    from nbconvert import HTMLExporter

    check_number("min_cell", min_cell, low=1, what="a whole number >= 1")
    if data is not None and not (Path(data) / "cohort.json").is_file():
        raise ConfigError(
            f"{data}: not a cohort folder (no cohort.json). Fix: point --data to a "
            f"folder written by 'ptanalytics ingest' or 'simulate'."
        )
    dest = Path(out) if out else Path("reports") / "report.html"
    report_destination(dest)  # refused before the notebook runs: see ptanalytics.report._file
    with tempfile.TemporaryDirectory() as tmp:
        executed = Path(tmp) / "report.ipynb"
        pm.execute_notebook(
            str(_notebook_template()),
            str(executed),
            parameters={
                "data_dir": None if data is None else str(Path(data).resolve()),
                "title": title,
                "min_cell": int(min_cell),
                "active_arm": None if active_arm is None else str(active_arm),
            },
            kernel_name="python3",
            progress_bar=progress,
            cwd=tmp,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            config=kernel_config(tmp),
        )
        _stable_notebook(executed)
        exporter = HTMLExporter(template_name="lab")
        exporter.exclude_input = not show_code
        exporter.exclude_input_prompt = True
        exporter.exclude_output_prompt = True
        body, _ = exporter.from_filename(str(executed))
    write_report(dest, _self_contained(body, title))  # temporary file beside dest, renamed
    if progress:
        print(f"report written to {dest}", file=sys.stderr)
    return dest
