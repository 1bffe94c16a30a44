"""Read tabular source files (CSV/TSV, Excel, Parquet) into frames of raw text, row by row.

Every value comes back as text exactly as the file has it (no type guessing, no missing-value
handling: that is the mapping's job), with the row's number in the source so that every rejected
row can be traced. Rows a reader cannot split into the header's fields (a truncated last line, an
extra delimiter, a blank line) are returned separately as *unparsed* rows with their reason, so
that rows read = rows parsed + rows unparsed.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import difflib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from openpyxl.utils.cell import range_boundaries

from ptanalytics.exceptions import IngestError
from ptanalytics.ingestion.validate import FILE, ROW

__all__ = [
    "SourceTable",
    "header_looks_like_data",
    "is_workbook",
    "read_source_table",
    "sheets_with_data",
    "workbook_sheets",
]

_DELIMITERS = [",", ";", "\t", "|"]
#: Numbers, dates and identifier-like codes (P001, MRN-12345): values, not column names.
_DATA_LIKE = re.compile(
    r"[+-]?\d+([.,]\d+)?|\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T].*)?|[A-Za-z]{0,5}[-_ ]?\d{3,}"
)


def header_looks_like_data(columns: list[str]) -> bool:
    """Whether header names hold numbers or dates (also inside a name joined by a delimiter):
    then the 'header' is a headerless file's first record, and messages must not show it."""
    pieces = (p.strip() for c in columns for p in re.split(r"[,;\t|]", str(c)))
    return any(_DATA_LIKE.fullmatch(p) for p in pieces)


@dataclass
class SourceTable:
    """One source file read as text.

    Attributes
    ----------
    path : Path
        The file.
    data : pandas.DataFrame
        One row per parsed record: the file's columns as text (missing cells are ``<NA>``), plus
        ``_source_file`` (file name) and ``_source_row`` (the row number a spreadsheet shows:
        the header is row 1, the first record row 2; for Parquet, the record number + 1).
    unparsed : pandas.DataFrame
        Rows that could not be split into the header's fields: ``_source_file``, ``_source_row``,
        ``reason``, ``text``.
    encoding, delimiter : str
        What was detected (CSV only; empty otherwise).
    sheet : str
        The workbook sheet read (Excel only; empty otherwise). ``_source_file`` is then
        ``book.xlsx[Sheet]``, so that every message names the file and the sheet.
    warnings : list of str
        What the reader did that a user should know (Excel: merged ranges filled with their
        top-left value; formula cells without a saved value, read as empty, with their cells).
    """

    path: Path
    data: pd.DataFrame
    unparsed: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=[FILE, ROW, "reason", "text"])
    )
    encoding: str = ""
    delimiter: str = ""
    sheet: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return len(self.data) + len(self.unparsed)


def read_source_table(
    path: str | Path,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
    sheet: str | int | None = None,
) -> SourceTable:
    """Read a CSV/TSV, Excel (``.xlsx``) or Parquet file as text.

    Parameters
    ----------
    path : path-like
        The file. The format comes from the extension (``.csv``, ``.tsv``, ``.txt``, ``.xlsx``,
        ``.parquet``).
    delimiter : str, optional
        CSV delimiter; detected from the header and first lines when not given.
    encoding : str, optional
        CSV encoding; detected when not given (UTF-8 with or without BOM, else Windows-1252, else
        Latin-1).
    sheet : str or int, optional
        Excel sheet, by name or 0-based number (default: the first).

    Raises
    ------
    IngestError
        When the file cannot be read at all: missing, empty, no header, duplicate column names.
    """
    p = Path(path)
    if not p.is_file():
        raise IngestError(f"{p}: file not found. Fix: check the path.")
    suffix = p.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return _read_csv(p, delimiter, encoding)
    if suffix in _EXCEL_SUFFIXES:
        return _read_excel(p, sheet)
    if suffix in (".parquet", ".pq"):
        return _read_parquet(p)
    raise IngestError(
        f"{p}: unsupported file type '{suffix}'. Fix: export as .csv, .tsv, .xlsx or .parquet "
        f"(or FHIR .json/.ndjson)."
    )


def _names(names: list[str]) -> str:
    """Header names for a message, unless they look like a data row's values."""
    if header_looks_like_data(names):
        return f"({len(names)}, not shown: the header row looks like data)"
    return str(names)


# ------------------------------------------------------------------------------------------ CSV
def _detect_encoding(raw: bytes, path: Path) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        raw.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _detect_delimiter(sample: str, path: Path) -> str:
    lines = [ln for ln in sample.splitlines()[:50] if ln.strip()]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters="".join(_DELIMITERS)).delimiter
    except csv.Error:
        pass
    # Fall back to the delimiter that splits the header into the most fields consistently.
    counts = {d: lines[0].count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.get)
    if counts[best] > 0:
        return best
    return "\t" if path.suffix.lower() == ".tsv" else ","


def _read_csv(p: Path, delimiter: str | None, encoding: str | None) -> SourceTable:
    raw, enc, read_enc = _csv_bytes(p, encoding)
    header_line, end = _csv_header_line(p, raw, enc, read_enc)
    delim = delimiter or _detect_delimiter(_delimiter_sample(raw, end, read_enc), p)
    header = [h.strip() for h in next(csv.reader([header_line], delimiter=delim))]
    if any(h == "" for h in header):
        blank = header.index("") + 1
        raise IngestError(
            f"{p}: header field {blank} is empty. Fix: give every column a name in the header row."
        )
    _refuse_duplicate_names(header, str(p), "file")
    table, unparsed = _parse_csv_body(p, raw, read_enc, header, delim)
    data, blank = _csv_frame(p, table, header, unparsed)
    for line in data.loc[blank, ROW]:
        unparsed.append({FILE: p.name, ROW: int(line), "reason": "blank row", "text": ""})
    unparsed_df = pd.DataFrame(unparsed, columns=[FILE, ROW, "reason", "text"])
    unparsed_df = unparsed_df.sort_values(ROW, kind="stable").reset_index(drop=True)
    return SourceTable(p, data[~blank].reset_index(drop=True), unparsed_df, enc, delim)


def _csv_bytes(p: Path, encoding: str | None) -> tuple[bytes, str, str]:
    """The file's bytes ending in a newline, its encoding, and the encoding to read them with
    (UTF-16/32 exports are re-encoded as UTF-8)."""
    raw = p.read_bytes()
    if not raw.strip():
        raise IngestError(f"{p}: the file is empty (no header row). Fix: export it again.")
    enc = encoding or _detect_encoding(raw, p)
    try:
        wide = codecs.lookup(enc).name.startswith(("utf-16", "utf-32"))
    except LookupError:
        raise IngestError(
            f"{p}: unknown encoding {enc!r}. Fix: use e.g. utf-8 or latin-1."
        ) from None
    read_enc = enc
    if wide:  # UTF-16/32 exports: read as UTF-8 text from here on
        try:
            raw, read_enc = raw.decode(enc).lstrip("\ufeff").encode("utf-8"), "utf-8"
        except UnicodeDecodeError as exc:
            raise IngestError(
                f"{p}: byte {exc.start} is not {enc} text. Fix: export it again, or give the "
                f"right encoding in the mapping."
            ) from None
    if not raw.endswith((b"\n", b"\r")):
        raw += b"\n"  # a last line without its newline (or a header-only file)
    return raw, enc, read_enc


def _csv_header_line(p: Path, raw: bytes, enc: str, read_enc: str) -> tuple[str, int]:
    """The whole first line as text, however long (a sample would cut a wide header), and the
    offset of its end; a first line that is not text is refused."""
    end = min((i for i in (raw.find(b"\n"), raw.find(b"\r")) if i >= 0), default=len(raw))
    header_line = raw[:end].decode(read_enc, errors="replace").lstrip("\ufeff")
    if re.search(r"[\x00-\x08\x0b-\x1f\x7f\ufffd]", header_line):
        raise IngestError(
            f"{p}: the first line is not text (control characters or bytes that are not "
            f"{enc}; the line is not shown). Fix: export the table as CSV, or give its encoding "
            f"in the mapping (encoding = 'utf-16')."
        )
    return header_line, end


def _delimiter_sample(raw: bytes, end: int, read_enc: str) -> str:
    """The text the delimiter is detected from: the first 64 KiB, or the header and the 64 KiB
    after it when the header is longer."""
    text_head = raw[:65536].decode(read_enc, errors="replace")
    if len(raw) > end + 1 and len(text_head) < end + 65536:
        text_head = raw[: end + 65536].decode(read_enc, errors="replace")
    return text_head


def _parse_csv_body(
    p: Path, raw: bytes, read_enc: str, header: list[str], delim: str
) -> tuple[pa.Table, list[dict]]:
    """The records after the header as Arrow text columns, and the lines that do not split into
    the header's fields (with their reason)."""
    unparsed: list[dict] = []

    def on_invalid(row) -> str:
        text = row.text or ""
        reason = (
            "blank row"
            if not text.strip()
            else f"row has {row.actual_columns} field(s) but the header has "
            f"{row.expected_columns} (truncated line or stray delimiter)"
        )
        unparsed.append({FILE: p.name, ROW: row.number, "reason": reason, "text": text[:500]})
        return "skip"

    # Pass to the reader data without a BOM, as UTF-8.
    body = raw.decode(read_enc).lstrip("\ufeff").encode("utf-8") if read_enc != "utf-8" else raw
    read_opts = pacsv.ReadOptions(column_names=header, skip_rows=1, use_threads=False)
    parse_opts = pacsv.ParseOptions(
        delimiter=delim,
        newlines_in_values=False,
        ignore_empty_lines=False,
        invalid_row_handler=on_invalid,
    )
    convert_opts = pacsv.ConvertOptions(
        column_types=dict.fromkeys(header, pa.string()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        null_values=[],
    )
    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=read_opts,
            parse_options=parse_opts,
            convert_options=convert_opts,
        )
    except pa.ArrowInvalid as exc:
        raise IngestError(f"{p}: cannot be parsed as CSV ({exc}). Fix: check quoting.") from None
    return table, unparsed


def _csv_frame(
    p: Path, table: pa.Table, header: list[str], unparsed: list[dict]
) -> tuple[pd.DataFrame, np.ndarray]:
    """The parsed records as trimmed text with ``_source_file`` and ``_source_row``, and a mask
    of the blank ones."""
    # Blank rows and surrounding white space are found in Arrow, column by column, which stays
    # fast for exports with thousands of columns.
    blank = np.ones(table.num_rows, dtype=bool)
    for column in table.columns:
        blank &= pc.equal(column, "").to_numpy(zero_copy_only=False).astype(bool)
    table = pa.table(
        {n: pc.utf8_trim_whitespace(col) for n, col in zip(header, table.columns, strict=True)}
    )
    data = table.to_pandas(types_mapper=lambda t: pd.StringDtype() if t == pa.string() else None)
    # Rows are one per line (newlines in values are not allowed), so the parsed rows are the file's
    # lines after the header minus the unparsed ones.
    bad_lines = {u[ROW] for u in unparsed}
    n_lines = len(data) + len(unparsed)
    lines = [ln for ln in range(2, n_lines + 2) if ln not in bad_lines]
    data.insert(0, ROW, pd.array(lines[: len(data)], dtype="int64"))
    data.insert(0, FILE, p.name)
    return data, blank


def _refuse_duplicate_names(header: list[str], where: str, kind: str) -> None:
    """Refuse a header that names a column twice; ``kind`` is ``file`` or ``sheet``."""
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise IngestError(
            f"{where}: duplicate column name(s) {_names(dupes)} in the header. Fix: rename them "
            f"so each is unique (or add a header row if the {kind} has none)."
        )


def _strip(data: pd.DataFrame) -> pd.DataFrame:
    """Strip surrounding white space of text cells (a common export artefact)."""
    for col in data.columns:
        if col not in (FILE, ROW):
            data[col] = data[col].str.strip()
    return data


# ---------------------------------------------------------------------------------------- Excel
_EXCEL_SUFFIXES = (".xlsx", ".xlsm")


def is_workbook(path: str | Path) -> bool:
    """Whether ``path`` is an Excel workbook (by its extension)."""
    return Path(path).suffix.lower() in _EXCEL_SUFFIXES


def workbook_sheets(path: str | Path) -> list[str]:
    """The sheet names of an Excel workbook, in order."""
    book = _open_workbook(Path(path))
    try:
        return list(book.sheetnames)
    finally:
        book.close()


def sheets_with_data(path: str | Path) -> list[str]:
    """The sheets of a workbook that hold at least one non-blank cell, in order."""
    book = _open_workbook(Path(path))
    try:
        return [
            ws.title
            for ws in book.worksheets
            if any(
                v is not None and str(v).strip() != ""
                for row in ws.iter_rows(values_only=True)
                for v in row
            )
        ]
    finally:
        book.close()


def _open_workbook(p: Path):
    """The workbook, read-only with cached values; anything that is not one is refused."""
    try:
        with p.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise IngestError(f"{p}: cannot be read ({exc.strerror}). Fix: check the path.") from None
    if magic != b"PK\x03\x04":
        looks = "an old binary .xls workbook" if magic == b"\xd0\xcf\x11\xe0" else "not a workbook"
        raise IngestError(
            f"{p}: is {looks} (an .xlsx file is a zip archive; this one is not). Fix: open it "
            f"in Excel and save it as .xlsx, or give it its real extension (e.g. .csv)."
        )
    try:
        return openpyxl.load_workbook(p, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types on a damaged archive
        raise IngestError(
            f"{p}: cannot be read as an Excel workbook ({type(exc).__name__}: the archive is "
            f"damaged or not a workbook). Fix: open it in Excel and save it again as .xlsx."
        ) from None


def _cell_text(value) -> str | None:
    """A cell as the text a user sees: dates as ISO days, whole numbers without '.0'."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _read_excel(p: Path, sheet: str | int | None) -> SourceTable:
    """One sheet as text, row numbers as Excel shows them.

    The header is the first non-blank row. Blank rows are set aside; so are *footer* rows: rows
    after the last data row with a single filled cell (``Exported by ... on ...``). A row with
    values beyond the header's columns is set aside like a CSV line with too many fields.

    Merged cells take the value of their range's top-left cell (what Excel shows across the
    merged area, e.g. a patient id merged over its visits), with a warning. Formula cells the
    file holds no calculated value for (written by a program that does not calculate) are read
    as empty, with a warning naming the sheet and the cells.
    """
    book = _open_workbook(p)
    try:
        name = _sheet_name(p, list(book.sheetnames), sheet)
        ws = book[name]
        try:
            rows = [[_cell_text(v) for v in row] for row in ws.iter_rows(values_only=True)]
        except Exception as exc:  # a damaged cell (bad date serial, string index, XML)
            raise IngestError(
                f"{p.name}[{name}]: a cell cannot be read ({type(exc).__name__}; the sheet is "
                f"damaged). Fix: open the workbook in Excel and save it again."
            ) from None
        xml = _sheet_xml(ws)
    finally:
        book.close()
    label = f"{p.name}[{name}]"
    warnings = _fill_merged(rows, xml, label) + _formulas_without_values(rows, xml, label)
    filled = [[v is not None and v.strip() != "" for v in row] for row in rows]
    start, header = _sheet_header(rows, filled, label)
    records, unparsed = _sheet_records(rows, filled, start, len(header), label)
    data = pd.DataFrame(records, columns=[ROW, *header])
    data = data.astype({c: "string" for c in header}).astype({ROW: "int64"})
    data.insert(0, FILE, label)
    unparsed_df = pd.DataFrame(unparsed, columns=[FILE, ROW, "reason", "text"])
    return SourceTable(p, _strip(data), unparsed_df, sheet=name, warnings=warnings)


def _sheet_name(p: Path, names: list[str], sheet: str | int | None) -> str:
    """The sheet asked for (by name or 0-based number; default the first), or a message naming
    the sheets and the closest name."""
    if sheet is None:
        return names[0]
    if isinstance(sheet, int):
        if sheet >= len(names):
            raise IngestError(
                f"{p}: has no sheet number {sheet} (sheets, from 0: {names}). Fix: correct "
                f"'sheet' in the mapping."
            )
        return names[sheet]
    if sheet in names:
        return sheet
    close = [n for n in names if n.strip().casefold() == sheet.strip().casefold()]
    close = close or difflib.get_close_matches(sheet, names, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise IngestError(
        f"{p}: has no sheet {sheet!r}.{hint} Sheets: {names}. Fix: correct 'sheet' in the mapping."
    )


def _sheet_header(rows: list[list], filled: list[list[bool]], label: str) -> tuple[int, list]:
    """The index of the header row (the first non-blank one) and its names, trailing blanks
    dropped; a sheet without one, or with a blank or repeated name, is refused."""
    start = next((i for i, f in enumerate(filled) if any(f)), None)
    if start is None:
        raise IngestError(
            f"{label}: the sheet is empty (no header row). Fix: export it again or correct "
            f"'sheet' in the mapping."
        )
    header = list(rows[start])
    while header and (header[-1] is None or not header[-1].strip()):
        header.pop()
    header = [("" if h is None else h.strip()) for h in header]
    if "" in header:
        raise IngestError(
            f"{label}: header cell {header.index('') + 1} (row {start + 1}) is empty. Fix: "
            f"give every column a name in the header row."
        )
    _refuse_duplicate_names(header, label, "sheet")
    return start, header


def _sheet_records(
    rows: list[list], filled: list[list[bool]], start: int, width: int, label: str
) -> tuple[list[list], list[dict]]:
    """The rows after the header: records (row number, then ``width`` cells) and the rows set
    aside (blank, footer, values beyond the header) with their reason."""
    body = list(range(start + 1, len(rows)))
    data_rows = [i for i in body if sum(filled[i]) >= 2 or (width == 1 and any(filled[i]))]
    last = data_rows[-1] if data_rows else start
    records, unparsed = [], []
    for i in body:
        cells, number = rows[i], i + 1
        text = " | ".join(v for v in cells if v is not None and v.strip())[:500]
        if not any(filled[i]):
            unparsed.append({FILE: label, ROW: number, "reason": "blank row", "text": ""})
        elif i > last and sum(filled[i]) == 1:
            reason = "footer line after the data (one cell filled, not a record)"
            unparsed.append({FILE: label, ROW: number, "reason": reason, "text": text})
        elif any(filled[i][width:]):
            n = max(j for j, f in enumerate(filled[i]) if f) + 1
            reason = f"row has values in {n} column(s) but the header has {width}"
            unparsed.append({FILE: label, ROW: number, "reason": reason, "text": text})
        else:
            records.append([number, *(list(cells[:width]) + [None] * (width - len(cells)))])
    return records, unparsed


def _sheet_xml(ws) -> bytes:
    """The sheet's XML, for what the read-only reader does not give (merges, formulas)."""
    try:
        source = ws._get_source()  # openpyxl's read-only sheet; no public API offers this
        try:
            return source.read()
        finally:
            source.close()
    except Exception:  # pragma: no cover - an openpyxl without it: checks are skipped
        return b""


_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s[^>]*ref="([A-Z]+[0-9]+:[A-Z]+[0-9]+)"')
_CELL = re.compile(rb"<(?:\w+:)?c\b([^>]*?)(?<!/)>(.*?)</(?:\w+:)?c>", re.S)
_REF = re.compile(rb'\br="([A-Z]+)([0-9]+)"')


def _fill_merged(rows: list[list], xml: bytes, label: str) -> list[str]:
    """Merged cells take their range's top-left value (what Excel shows in the merged area)."""
    ranges = [m.decode() for m in _MERGE.findall(xml)]
    for ref in ranges:
        c1, r1, c2, r2 = range_boundaries(ref)
        if r1 > len(rows):
            continue
        value = rows[r1 - 1][c1 - 1] if c1 <= len(rows[r1 - 1]) else None
        for r in range(r1, min(r2, len(rows)) + 1):
            row = rows[r - 1]
            row.extend([None] * (c2 - len(row)))
            for c in range(c1, c2 + 1):
                if (r, c) != (r1, c1):
                    row[c - 1] = value
    if not ranges:
        return []
    return [
        f"{label}: {len(ranges)} merged cell range(s) (e.g. {ranges[0]}) were read with their "
        f"top-left value in every cell of the range; check that this is what they mean"
    ]


def _formulas_without_values(rows: list[list], xml: bytes, label: str) -> list[str]:
    """Formula cells the file stores no value for (never calculated): read as empty, reported."""
    if b"<f" not in xml and b":f" not in xml:
        return []
    cells = []
    for m in _CELL.finditer(xml):
        body = m.group(2)
        if not re.search(rb"<(?:\w+:)?f[\s>/]", body):
            continue
        if re.search(rb"<(?:\w+:)?v>[^<]", body) or re.search(rb"<(?:\w+:)?is>", body):
            continue
        ref = _REF.search(m.group(1))
        if ref:
            cells.append(ref.group(1).decode() + ref.group(2).decode())
    if not cells:
        return []
    shown = ", ".join(cells[:5]) + (", ..." if len(cells) > 5 else "")
    return [
        f"{label}: {len(cells)} formula cell(s) have no saved value ({shown}) and were read as "
        f"empty; fix: open the workbook in Excel or LibreOffice and save it, so that the values "
        f"are stored, or paste the values over the formulas"
    ]


# -------------------------------------------------------------------------------------- Parquet
def _read_parquet(p: Path) -> SourceTable:
    """A Parquet file as text. Nested columns (struct, list, map, union) are refused naming the
    column; a binary column is read as UTF-8 text, and a row whose bytes are not UTF-8 is set
    aside with the column named."""
    try:
        table = pq.read_table(p)
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"{p}: cannot be read as Parquet ({exc}).") from None
    cols, bad_rows = {}, {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_dictionary(kind):
            column, kind = column.cast(kind.value_type), kind.value_type
        if pa.types.is_nested(kind):
            raise IngestError(
                f"{p}: column '{name}' is a nested Parquet column ({kind}), which holds no single "
                f"value per row. Fix: flatten it into plain columns (one value each), or drop it, "
                f"before export."
            )
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            column, invalid = _binary_as_text(column)
            for i in invalid:
                bad_rows.setdefault(i, name)
        try:
            cols[name] = column.cast(pa.string())
        except pa.ArrowException:
            raise IngestError(
                f"{p}: column '{name}' has the Parquet type {kind}, which cannot be read as "
                f"text. Fix: export it as a string, number or date column."
            ) from None
    data = pa.table(cols).to_pandas(types_mapper=lambda t: pd.StringDtype())
    data.insert(0, ROW, pd.array(range(2, len(data) + 2), dtype="int64"))
    data.insert(0, FILE, p.name)
    unparsed = pd.DataFrame(
        [
            {
                FILE: p.name,
                ROW: i + 2,
                "reason": f"column '{name}' holds bytes that are not UTF-8 text (binary data); "
                f"fix: export it as text",
                "text": "",
            }
            for i, name in sorted(bad_rows.items())
        ],
        columns=[FILE, ROW, "reason", "text"],
    )
    keep = ~data.index.isin(sorted(bad_rows))
    return SourceTable(p, data[keep].reset_index(drop=True), unparsed)


def _binary_as_text(column: pa.ChunkedArray) -> tuple[pa.Array, list[int]]:
    """A binary column as text, and the positions of values that are not UTF-8."""
    values, invalid = [], []
    for i, raw in enumerate(column.to_pylist()):
        if raw is None:
            values.append(None)
            continue
        try:
            values.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            values.append(None)
            invalid.append(i)
    return pa.array(values, type=pa.string()), invalid
