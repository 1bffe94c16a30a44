"""The report in print: headless Chromium prints it to PDF; the PDF keeps every figure, breaks
into pages and leaves no heading alone at the bottom of a page. The kernel runs over IPC.

The PDF is read by a minimal reader below (stdlib only: objects, Flate streams, the pages'
content streams with their text positions and the fonts' ToUnicode maps), enough for the PDFs
Chromium writes (Skia, no object streams); pypdf is not a dependency of the package.
"""

import base64
import contextlib
import io
import os
import re
import shutil
import subprocess
import tempfile
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

import ptanalytics as pt
from ptanalytics.report import render_report
from ptanalytics.report.render import PRINT_CSS, kernel_config

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian package 'chromium'; .ci/run installs it)",
)


@contextlib.contextmanager
def _captured_fd2():
    """Capture what anything (the kernel's child process too) writes to file descriptor 2."""
    with tempfile.TemporaryFile() as buf:
        saved = os.dup(2)
        os.dup2(buf.fileno(), 2)
        log: list[str] = []
        try:
            yield log
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            buf.seek(0)
            log.append(buf.read().decode("utf-8", "replace"))


@pytest.fixture(scope="module", params=["default", "clinic60"])
def rendered(request, tmp_path_factory):
    """The default report and a 60-patient clinic's (read from a cohort folder, so that its
    provenance lists file hashes), each rendered once, and what the render wrote to stderr."""
    work = tmp_path_factory.mktemp("print")
    data = None
    if request.param == "clinic60":
        data = pt.simulate_cohort(60, seed=12).write(work / "cohort", format="csv")
    out = work / "report.html"
    with _captured_fd2() as log:
        render_report(data, out, progress=False)
    return out, out.read_text(encoding="utf-8"), log[0]


@pytest.fixture(scope="module")
def printed(rendered, tmp_path_factory):
    """The report printed to PDF by headless Chromium, read by :class:`MiniPdf`."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed")
    path, _, _ = rendered
    work = tmp_path_factory.mktemp("pdf")
    pdf = work / "report.pdf"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={work / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            path.as_uri(),
        ],
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert pdf.is_file() and pdf.stat().st_size > 10_000, "Chromium wrote no PDF"
    return MiniPdf(pdf.read_bytes())


# ----------------------------------------------------------------------------- the kernel
def test_render_runs_the_kernel_over_ipc_without_a_tcp_warning(rendered):
    _, _, stderr = rendered
    assert "without encryption" not in stderr and "TCP" not in stderr, stderr[-2000:]


def test_kernel_config_asks_for_ipc_sockets_in_the_given_folder(tmp_path):
    cfg = kernel_config(tmp_path)
    assert cfg.KernelManager.transport == "ipc"
    assert cfg.KernelManager.ip == str(tmp_path / "kernel")


def test_kernel_config_on_windows_keeps_the_default_transport(monkeypatch, tmp_path):
    from ptanalytics.report import render

    monkeypatch.setattr(render.os, "name", "nt")  # ZeroMQ has no IPC transport there
    assert kernel_config(tmp_path) is None


# ----------------------------------------------------------------------------- the stylesheet
def test_print_stylesheet_is_in_the_report(rendered):
    _, text, _ = rendered
    assert text.count(PRINT_CSS) == 1
    css = PRINT_CSS
    assert "@media print" in css and "@page" in css
    assert re.search(r"h1, h2, h3, h4 \{ break-after: avoid", css)
    assert re.search(r"img[^{]*\{\s*break-inside: avoid", css)
    assert re.search(r"tr, thead[^{]*\{ break-inside: avoid", css)
    assert "overflow: visible !important" in css


# ----------------------------------------------------------------------------- the PDF
class _Html(HTMLParser):
    """The report's headings (h1-h4, text) and images."""

    def __init__(self):
        super().__init__()
        self.headings: list[str] = []
        self.images = 0
        self._in: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in ("h1", "h2", "h3", "h4"):
            self._in = []
        elif tag == "img":
            self.images += 1

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3", "h4") and self._in is not None:
            self.headings.append("".join(self._in).replace("¶", "").strip())
            self._in = None

    def handle_data(self, data):
        if self._in is not None:
            self._in.append(data)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@needs_chromium
def test_printed_report_has_pages_and_every_figure(rendered, printed):
    _, text, _ = rendered
    html = _Html()
    html.feed(text)
    assert html.images >= 6
    assert len(printed.pages) > 1
    drawn = [len(page.images) for page in printed.pages]
    assert sum(drawn) == html.images, drawn
    # Each figure whole on one page: an image is drawn once, inside the page's media box.
    for page in printed.pages:
        for y_low, y_high in page.images:
            assert 0 <= y_low < y_high <= page.height + 0.5


@needs_chromium
def test_no_heading_is_the_last_line_of_a_page(rendered, printed):
    _, text, _ = rendered
    html = _Html()
    html.feed(text)
    headings = {_squash(h) for h in html.headings if h}
    assert any("9.Provenance" in h for h in headings)
    found = 0
    for number, page in enumerate(printed.pages[:-1], start=1):
        lines = page.lines()
        found += sum(_squash(t) in headings for _, t in lines)
        last = page.last_item()
        assert last is not None, f"page {number} is empty"
        kind, line = last
        assert kind == "image" or _squash(line) not in headings, (number, line)
        assert not line.rstrip().endswith(":"), (number, line)  # an introduction stays with it
    assert found >= len(headings) - 1  # the text extraction does read the headings


def _print(html: str, work: Path) -> "MiniPdf":
    page = work / "page.html"
    page.write_text(html, encoding="utf-8")
    pdf = work / "page.pdf"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            f"--user-data-dir={work / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    return MiniPdf(pdf.read_bytes())


@needs_chromium
def test_print_stylesheet_moves_an_orphaned_heading_to_the_next_page(tmp_path):
    # A heading that fits at the bottom of page 1, followed by a figure that does not: without
    # the stylesheet the heading is page 1's last line; with it, it goes to page 2 with the figure.
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1])
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=30)
    plt.close(fig)
    src = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    results = []
    for css in ("", PRINT_CSS):
        doc = _print(
            "<!DOCTYPE html><html><head><style>@page { size: A4; margin: 18mm 16mm 20mm 16mm; }"
            f" body {{ margin: 0 }}</style><style>{css}</style></head><body>"
            '<div style="height: 235mm"></div>'
            '<div class="jp-MarkdownCell"><h2>Orphan heading</h2></div>'
            f'<div><img alt="a figure" src="{src}" style="width: 120mm; height: 90mm"></div>'
            "</body></html>",
            tmp_path,
        )
        results.append([page.last_item() for page in doc.pages])
    assert results[0] == [("text", "Orphan heading"), ("image", "")]
    assert results[1] == [None, ("image", "")]


def test_mini_pdf_reads_a_hand_made_pdf():
    # Two pages; page 1 ends with a heading-like line "Title" below "Body"; one image on page 2.
    pdf = _hand_made_pdf()
    doc = MiniPdf(pdf)
    assert len(doc.pages) == 2
    assert [t for _, t in doc.pages[0].lines()] == ["Body", "Title"]
    assert doc.pages[0].last_item() == ("text", "Title")
    assert doc.pages[1].images == [(100.0, 300.0)]
    assert doc.pages[1].last_item() == ("image", "")


# ----------------------------------------------------------------------------- a minimal reader
_OBJ = re.compile(rb"(\d+) 0 obj\s*")


class MiniPdf:
    """Pages of a PDF: text lines (with their heights on the page) and images drawn.

    Handles what Chromium's PDFs use: uncompressed object dictionaries, Flate streams with a
    direct ``/Length``, a ``/Pages`` tree, Type0 fonts with a ``/ToUnicode`` CMap (two-byte
    codes), ``q Q cm BT ET Tf Tm Td TD T* Tj TJ Do`` in content streams.
    """

    def __init__(self, data: bytes):
        self.objects: dict[int, bytes] = {}
        self.streams: dict[int, bytes] = {}
        pos = 0
        while m := _OBJ.search(data, pos):
            num, start = int(m.group(1)), m.end()
            end = data.index(b"endobj", start)
            body = data[start:end]
            s = re.match(rb"(<<.*?>>)\s*stream\r?\n", body, re.S)
            if s:
                length = int(re.search(rb"/Length (\d+)", s.group(1)).group(1))
                raw = data[start + s.end() : start + s.end() + length]
                self.streams[num] = zlib.decompress(raw) if b"/FlateDecode" in s.group(1) else raw
                body = s.group(1)
                end = data.index(b"endobj", start + s.end() + length)
            self.objects[num] = body
            pos = end + len(b"endobj")
        catalog = next(v for v in self.objects.values() if re.search(rb"/Type /Catalog\b", v))
        root = int(re.search(rb"/Pages (\d+) 0 R", catalog).group(1))
        self.pages = [_Page(self, n) for n in self._kids(root)]

    def _kids(self, num: int) -> list[int]:
        body = self.objects[num]
        if not re.search(rb"/Type /Pages\b", body):
            return [num]
        kids = re.search(rb"/Kids \[([^\]]*)\]", body).group(1)
        return [p for k in re.findall(rb"(\d+) 0 R", kids) for p in self._kids(int(k))]

    def resources(self, body: bytes, kind: bytes) -> dict[bytes, int]:
        """Name -> object of a page's ``/Font`` or ``/XObject`` resources (inline or referred)."""
        m = re.search(rb"/" + kind + rb" (?:<<(.*?)>>|(\d+) 0 R)", body, re.S)
        if not m:
            return {}
        inner = m.group(1) if m.group(1) is not None else self.objects[int(m.group(2))]
        return {name: int(n) for name, n in re.findall(rb"/(\S+?) (\d+) 0 R", inner)}

    def cmap(self, font: int) -> dict[int, str]:
        ref = re.search(rb"/ToUnicode (\d+) 0 R", self.objects[font])
        out: dict[int, str] = {}
        if not ref:
            return out
        text = self.streams[int(ref.group(1))].decode("latin-1")
        for block in re.findall(r"beginbfchar(.*?)endbfchar", text, re.S):
            for src, dst in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
                out[int(src, 16)] = bytes.fromhex(dst).decode("utf-16-be")
        for block in re.findall(r"beginbfrange(.*?)endbfrange", text, re.S):
            for lo, hi, dst in re.findall(
                r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*(<[0-9A-Fa-f]+>|\[[^\]]*\])", block
            ):
                targets = re.findall(r"<([0-9A-Fa-f]+)>", dst)
                for i, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                    if dst.startswith("["):
                        out[code] = bytes.fromhex(targets[i]).decode("utf-16-be")
                    else:
                        first = int(targets[0], 16) + i
                        out[code] = chr(first)
        return out


_TOKEN = re.compile(
    rb"<[0-9A-Fa-f\s]*>|\((?:\\.|[^\\)])*\)|\[|\]|/[^\s/<>\[\]()]+|[-+]?\d*\.?\d+|[A-Za-z*'\"]+",
    re.S,
)


def _mul(a, b):
    """Product of two PDF matrices ``[a b c d e f]`` (``a`` applied first)."""
    return [
        a[0] * b[0] + a[1] * b[2],
        a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2],
        a[2] * b[1] + a[3] * b[3],
        a[4] * b[0] + a[5] * b[2] + b[4],
        a[4] * b[1] + a[5] * b[3] + b[5],
    ]


class _Page:
    """One page: ``runs`` (y on the page from the bottom, x, text), ``images`` (low, high y)."""

    def __init__(self, doc: MiniPdf, num: int):
        body = doc.objects[num]
        self.height = float(re.search(rb"/MediaBox \[\S+ \S+ \S+ (\S+)\]", body).group(1))
        contents = re.search(rb"/Contents (?:(\d+) 0 R|\[([^\]]*)\])", body)
        refs = re.findall(rb"(\d+) 0 R", contents.group(0))
        stream = b"\n".join(doc.streams[int(r)] for r in refs)
        fonts = {name: doc.cmap(n) for name, n in doc.resources(body, b"Font").items()}
        xobjects = doc.resources(body, b"XObject")
        images = {k for k, n in xobjects.items() if b"/Subtype /Image" in doc.objects[n]}
        self.runs: list[tuple[float, float, str]] = []
        self.images: list[tuple[float, float]] = []
        self._run(stream, fonts, images)

    def _run(self, stream: bytes, fonts, images) -> None:
        ctm, stack, args = [1.0, 0, 0, 1.0, 0, 0], [], []
        tm = line = [1.0, 0, 0, 1.0, 0, 0]
        font: dict[int, str] = {}
        leading = 0.0
        for tok in _TOKEN.findall(stream):
            op = tok.decode("latin-1")
            if not re.fullmatch(r"[A-Za-z*'\"]+", op):
                args.append(tok)
                continue
            nums = [float(a) for a in args if re.fullmatch(rb"[-+]?\d*\.?\d+", a)]
            if op == "q":
                stack.append(ctm)
            elif op == "Q" and stack:
                ctm = stack.pop()
            elif op == "cm" and len(nums) >= 6:
                ctm = _mul(nums[-6:], ctm)
            elif op == "BT":
                tm = line = [1.0, 0, 0, 1.0, 0, 0]
            elif op == "Tm" and len(nums) >= 6:
                tm = line = nums[-6:]
            elif op in ("Td", "TD") and len(nums) >= 2:
                tm = line = _mul([1, 0, 0, 1, nums[-2], nums[-1]], line)
                leading = -nums[-1] if op == "TD" else leading
            elif op == "T*":
                tm = line = _mul([1, 0, 0, 1, 0, -leading], line)
            elif op == "Tf" and args:
                font = fonts.get(args[0].lstrip(b"/"), {})
            elif op in ("Tj", "TJ", "'", '"'):
                text = "".join(_decode(a, font) for a in args if a[:1] in (b"<", b"("))
                m = _mul(tm, ctm)
                self.runs.append((m[5], m[4], text))
            elif op == "Do" and args and args[-1].lstrip(b"/") in images:
                ys = [ctm[5], ctm[3] + ctm[5], ctm[1] + ctm[5], ctm[1] + ctm[3] + ctm[5]]
                self.images.append((round(min(ys), 3), round(max(ys), 3)))
            args = []

    def lines(self) -> list[tuple[float, str]]:
        """Text lines from the top of the page down: runs within 2 points of height joined."""
        out: list[tuple[float, list]] = []
        for y, x, text in sorted(self.runs, key=lambda r: (-r[0], r[1])):
            if out and abs(out[-1][0] - y) <= 2:
                out[-1][1].append((x, text))
            else:
                out.append((y, [(x, text)]))
        return [(y, "".join(t for _, t in sorted(parts))) for y, parts in out if parts]

    def last_item(self) -> tuple[str, str] | None:
        """The lowest thing on the page: ``("text", line)`` or ``("image", "")``."""
        lines = [(y, "text", t) for y, t in self.lines() if t.strip()]
        items = lines + [(low, "image", "") for low, _ in self.images]
        if not items:
            return None
        _, kind, text = min(items, key=lambda i: i[0])
        return kind, text


def _decode(token: bytes, font: dict[int, str]) -> str:
    if token[:1] == b"<":
        raw = bytes.fromhex(re.sub(rb"\s", b"", token[1:-1]).decode())
        codes = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw) - 1, 2)]
        return "".join(font.get(c, "") for c in codes)
    return token[1:-1].decode("latin-1")


def _hand_made_pdf() -> bytes:
    """A two-page PDF in Chromium's layout: page 1 text only, page 2 one image."""
    cmap = (
        b"begincmap\n2 beginbfrange\n<0041> <005A> <0041>\n<0061> <007A> <0061>\nendbfrange\n"
        b"endcmap"
    )

    def stream(num: int, data: bytes) -> bytes:
        packed = zlib.compress(data)
        return (
            f"{num} 0 obj\n<</Filter /FlateDecode\n/Length {len(packed)}>> stream\n".encode()
            + packed
            + b"\nendstream\nendobj\n"
        )

    text = (
        b"1 0 0 -1 0 800 cm\nBT\n/F1 12 Tf\n1 0 0 -1 40 700 Tm\n<005400690074006C0065> Tj\nET\n"
        b"BT\n/F1 12 Tf\n1 0 0 -1 40 100 Tm\n<0042006F00640079> Tj\nET\n"
    )
    image = b"q\n200 0 0 200 50 100 cm\n/X1 Do\nQ\n"
    font = b"<</Type /Font\n/Subtype /Type0\n/ToUnicode 8 0 R>>"
    objects = [
        b"1 0 obj\n<</Type /Catalog\n/Pages 2 0 R>>\nendobj\n",
        b"2 0 obj\n<</Type /Pages\n/Count 2\n/Kids [3 0 R 4 0 R]>>\nendobj\n",
        b"3 0 obj\n<</Type /Page\n/Resources <</Font <</F1 7 0 R>>>>\n"
        b"/MediaBox [0 0 600 800]\n/Contents 5 0 R\n/Parent 2 0 R>>\nendobj\n",
        b"4 0 obj\n<</Type /Page\n/Resources <</XObject <</X1 9 0 R>>>>\n"
        b"/MediaBox [0 0 600 800]\n/Contents 6 0 R\n/Parent 2 0 R>>\nendobj\n",
        stream(5, text),
        stream(6, image),
        b"7 0 obj\n" + font + b"\nendobj\n",
        stream(8, cmap),
        b"9 0 obj\n<</Type /XObject\n/Subtype /Image\n/Width 1\n/Height 1\n/Length 3>> stream\n"
        b"\x00\x00\x00\nendstream\nendobj\n",
    ]
    return b"%PDF-1.4\n" + b"".join(objects) + b"trailer\n<</Root 1 0 R>>\n%%EOF\n"
