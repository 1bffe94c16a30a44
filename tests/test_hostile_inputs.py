"""A hostile-input corpus: every malformed source ends in a quarantined record with its reason, or
in exit 2 with one line naming the file, the place and the fix; never a traceback, never silent
loss, never a data row or a patient identifier in a message (issue 12, deliverables 2 and 8).

The text corpus is in ``tests/data/hostile/``; binary inputs (Parquet, xlsx) and large ones (deep
JSON, wide headers) are made here. End-to-end cases run the CLI (``ptanalytics ingest``) and check
rows read = records accepted + quarantined + source rows set aside.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ptanalytics import cli
from ptanalytics.cli import main
from ptanalytics.exceptions import IngestError, MappingError
from ptanalytics.ingestion import fhir
from ptanalytics.ingestion.fhir import read_fhir
from ptanalytics.ingestion.mapping import load_mapping

HOSTILE = Path(__file__).parent / "data" / "hostile"
#: Patient identifiers of the corpus: no message on stderr may show one.
IDS = ("P001", "P002", "F1")


def _ingest(tmp_path: Path, capsys, *sources: Path | str, extra: tuple[str, ...] = ()):
    """Run ``ptanalytics ingest``; returns (exit code, stderr, output folder)."""
    out = tmp_path / "out"
    args = ["ingest", *map(str, sources), "--out", str(out), "--format", "csv", *extra]
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.err, out


def _quarantine(out: Path, table: str) -> pd.DataFrame:
    path = out / "quarantine" / f"{table}.csv"
    return pd.read_csv(path, dtype=str, keep_default_na=False) if path.is_file() else None


def _check_accounting(out: Path) -> dict:
    """Rows read = used + set aside per source; records = accepted + quarantined per table; and
    what each quarantine file holds matches those counts."""
    meta = json.loads((out / "cohort.json").read_text(encoding="utf-8"))["ingest"]
    for s in meta["sources"]:
        assert s["rows_read"] == s["rows_used"] + s["rows_set_aside"], s["file"]
    aside = _quarantine(out, "source_rows")
    assert (0 if aside is None else len(aside)) == sum(s["rows_set_aside"] for s in meta["sources"])
    for t in meta["tables"]:
        assert t["records"] == t["accepted"] + t["quarantined"], t["table"]
        q = _quarantine(out, t["table"])
        assert (0 if q is None else len(q)) == t["quarantined"], t["table"]
        accepted = pd.read_csv(out / f"{t['table']}.csv", dtype=str)
        assert len(accepted) == t["accepted"], t["table"]
    return meta


def _one_clean_line(err: str) -> str:
    """stderr of a refused run: a progress line and one error line, no traceback, no id."""
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("ingesting")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for pid in IDS:
        assert pid not in err, f"{pid} shown in {err!r}"
    return lines[0]


# --------------------------------------------------------------- exit 2: unusable input
def _nested_parquet(tmp_path: Path, kind: str) -> Path:
    values = {
        "struct": pa.array([{"a": 1}, {"a": 2}]),
        "list": pa.array([[1], [2]]),
        "map": pa.array([[("k", 1)], [("k", 2)]], type=pa.map_(pa.string(), pa.int64())),
    }[kind]
    path = tmp_path / f"outcomes_{kind}.parquet"
    table = pa.table(
        {
            "patient_id": ["P001", "P002"],
            "assessed_on": ["2024-02-01", "2024-02-01"],
            "instrument": ["NPRS", "NPRS"],
            "score": values,
        }
    )
    pq.write_table(table, path)
    return path


def _random_bytes_xlsx(tmp_path: Path) -> Path:
    path = tmp_path / "sessions.xlsx"
    path.write_bytes(bytes(range(256)) * 4)
    return path


def _zip_xlsx(tmp_path: Path) -> Path:
    path = tmp_path / "sessions.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "not a workbook")
    return path


def _old_xls(tmp_path: Path) -> Path:
    path = tmp_path / "sessions.xlsx"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    return path


def _deep_bundle(tmp_path: Path) -> Path:
    path = tmp_path / "deep.json"
    path.write_text('{"resourceType": "Bundle", "entry": ' + "[" * 5000 + "]" * 5000 + "}")
    return path


def _binary_csv(tmp_path: Path) -> Path:
    path = tmp_path / "outcomes.csv"
    path.write_bytes(b"\x00\x01\x02P001\x00" + bytes(range(256)) * 8)
    return path


def _corpus(name: str):
    return lambda tmp_path: HOSTILE / name


#: (case, source builder, extra CLI arguments, pattern of the one error line).
EXIT_2 = [
    (
        "csv renamed .xlsx",
        _corpus("not_a_workbook.xlsx"),
        (),
        r"not_a_workbook\.xlsx: is not a workbook .*Fix: open it in Excel and save it as .xlsx",
    ),
    ("random bytes .xlsx", _random_bytes_xlsx, (), r"sessions\.xlsx: is not a workbook"),
    (
        "binary .csv",
        _binary_csv,
        (),
        r"outcomes\.csv: the first line is not text .*the line is not shown\)\. Fix: export",
    ),
    ("zip without workbook", _zip_xlsx, (), r"sessions\.xlsx: cannot be read as an Excel workbook"),
    ("old .xls renamed", _old_xls, (), r"sessions\.xlsx: is an old binary \.xls workbook"),
    *[
        (
            f"parquet {kind} column",
            lambda tmp_path, kind=kind: _nested_parquet(tmp_path, kind),
            (),
            rf"outcomes_{kind}\.parquet: column 'score' is a nested Parquet column .*Fix: "
            r"flatten it",
        )
        for kind in ("struct", "list", "map")
    ],
    (
        "deeply nested bundle",
        _deep_bundle,
        (),
        r"deep\.json: the JSON is nested deeper than 64 levels",
    ),
    (
        "headerless file",
        _corpus("patients_headerless.csv"),
        (),
        r"patients_headerless\.csv: .*look like values: the first line seems to be a data row",
    ),
    (
        "yaml billion laughs",
        _corpus("patients.csv"),
        ("--mapping", str(HOSTILE / "mapping_aliases.yaml")),
        r"mapping_aliases\.yaml: line 3: YAML aliases \(\*name\) are not allowed",
    ),
    (
        "toml list of lists as missing tokens",
        _corpus("patients.csv"),
        ("--mapping", str(HOSTILE / "mapping_wrong_types.toml")),
        r"mapping_wrong_types\.toml: sources\[0\]\.missing = .* is a list; expected a list of "
        r"tokens\. Fix:",
    ),
    (
        "toml date as a number of weeks",
        _corpus("patients.csv"),
        ("--mapping", str(HOSTILE / "mapping_date_value.toml")),
        r"mapping_date_value\.toml: schedule\.followup_weeks = .* is a date; expected a number",
    ),
]


@pytest.mark.parametrize(("case", "build", "extra", "pattern"), EXIT_2, ids=[c[0] for c in EXIT_2])
def test_unusable_input_exits_2_with_one_line(tmp_path, capsys, case, build, extra, pattern):
    source = build(tmp_path)
    patients = source.name.startswith("patients")
    sources = [source] if patients else [HOSTILE / "patients.csv", source]
    code, err, out = _ingest(tmp_path, capsys, *sources, extra=extra)
    assert code == 2, err
    line = _one_clean_line(err)
    assert re.search(pattern, line), line
    assert not out.exists()


def test_headerless_message_shows_no_value_of_the_first_row(tmp_path, capsys):
    code, err, _ = _ingest(tmp_path, capsys, HOSTILE / "patients_headerless.csv")
    assert code == 2
    for value in ("P001", "2024-01-08", "54", "female"):
        assert value not in err


def test_yaml_aliases_are_refused_before_expansion():
    with pytest.raises(MappingError, match=r"YAML aliases .* are not allowed .*Fix: write the"):
        load_mapping(HOSTILE / "mapping_aliases.yaml")


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("sources: !!python/object/apply:os.system ['true']\n", r"not valid YAML"),
        ("sources: " + "[" * 3000 + "]" * 3000 + "\n", r"nested too deeply"),
        ("sources:\n  - match: !!binary aGVsbG8=\n", r"match = b'hello' is a bytes; expected"),
        ("sources:\n  - match: 2024-01-01\n", r"match = .* is a date; expected a file-name"),
    ],
    ids=["python tag", "deep nesting", "binary match", "date match"],
)
def test_hostile_yaml_mappings(tmp_path, text, pattern):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(MappingError, match=pattern):
        load_mapping(path)


def test_mapping_size_limit(tmp_path, monkeypatch):
    import ptanalytics.ingestion.mapping as mapping

    monkeypatch.setattr(mapping, "MAX_MAPPING_BYTES", 100)
    path = tmp_path / "m.toml"
    path.write_text("# " + "x" * 200 + "\n")
    with pytest.raises(MappingError, match=r"over the limit of 100\. Fix:"):
        load_mapping(path)


def test_fhir_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(fhir, "MAX_BYTES", 100)
    with pytest.raises(IngestError, match=r"over the limit of 100 bytes .*Fix: export it as sev"):
        read_fhir(HOSTILE / "fhir_string_subject.ndjson")


# ------------------------------------------------------------ quarantined with a reason
#: (case, sources, table of the quarantine file, reason code, pattern of its reason, count).
QUARANTINED = [
    (
        "FHIR string subject",
        ["fhir_string_subject.ndjson"],
        "source_rows",
        "wrong_json_type",
        r"Observation: 'subject' is a string, expected an object such as \{\"reference\"",
        1,
    ),
    (
        "FHIR integer reference",
        ["fhir_integer_reference.ndjson"],
        "source_rows",
        "wrong_json_type",
        r"'subject\.reference' is a number, expected a string",
        1,
    ),
    (
        "FHIR coding not a list",
        ["fhir_coding_not_list.ndjson"],
        "source_rows",
        "wrong_json_type",
        r"'code\.coding' is an object, expected a list",
        1,
    ),
    (
        "FHIR duration 'ten'",
        ["fhir_duration_ten.ndjson"],
        "source_rows",
        "wrong_json_type",
        r"'valueQuantity\.value' is a string, expected a number",
        1,
    ),
    (
        "FHIR CarePlan activity a string",
        ["fhir_careplan_strings.ndjson"],
        "source_rows",
        "wrong_json_type",
        r"CarePlan: 'category' is a string, expected a list",
        1,
    ),
    (
        "FHIR period mixing timezones",
        ["fhir_mixed_timezone.ndjson"],
        "sessions",
        "mixed_timezone",
        r"performedPeriod mixes a time with a timezone and one without.*fix: export both",
        1,
    ),
    (
        "outcome dates out of range",
        ["patients.csv", "outcomes_dates.csv"],
        "outcomes",
        "date_out_of_range",
        r"assessed_on '1200-01-01' is before 1900-01-01; fix: correct the date",
        1,
    ),
    (
        "outcome date 9999-12-31",
        ["patients.csv", "outcomes_dates.csv"],
        "outcomes",
        "future_date",
        r"assessed_on '9999-12-31' is in the future",
        1,
    ),
    (
        "outcome date 10000-01-01",
        ["patients.csv", "outcomes_dates.csv"],
        "outcomes",
        "bad_date",
        r"assessed_on '10000-01-01' is not a date",
        1,
    ),
    (
        "session dates year 1200 and 0001",
        ["patients.csv", "sessions_dates.csv"],
        "sessions",
        "date_out_of_range",
        r"performed_on '(1200|0001)-01-01' is before 1900-01-01",
        2,
    ),
    (
        "scores inf, -inf, Infinity, 1e400",
        ["patients.csv", "outcomes_nonfinite.csv"],
        "outcomes",
        "non_finite",
        r"score '(inf|-inf|Infinity|1e400)' is not a finite number",
        4,
    ),
    (
        "score 1e308 of an instrument without a range",
        ["patients.csv", "outcomes_nonfinite.csv"],
        "outcomes",
        "out_of_range",
        r"score '1e308' is above 1000",
        1,
    ),
    (
        "score nan (a missing-value token; the score is required)",
        ["patients.csv", "outcomes_nonfinite.csv"],
        "outcomes",
        "missing_value",
        r"score is missing",
        1,
    ),
    (
        "ages inf and 1e308",
        ["patients_nonfinite.csv"],
        "patients",
        "non_finite|out_of_range",
        r"age '(inf|1e308)' is (not a finite number|outside 0-120)",
        2,
    ),
]


@pytest.mark.parametrize(
    ("case", "files", "table", "code", "pattern", "count"),
    QUARANTINED,
    ids=[c[0] for c in QUARANTINED],
)
def test_malformed_records_are_quarantined_with_their_reason(
    tmp_path, capsys, case, files, table, code, pattern, count
):
    sources = []
    for name in files:  # file names decide the table: copy under a canonical name
        target = tmp_path / ("patients.csv" if name.startswith("patients") else name)
        shutil.copy(HOSTILE / name, target)
        sources.append(target)
    exit_code, err, out = _ingest(tmp_path, capsys, *sources)
    assert exit_code == 0, err
    assert "Traceback" not in err
    _check_accounting(out)
    q = _quarantine(out, table)
    assert q is not None, f"nothing in quarantine/{table}.csv"
    mine = q[q["reason_code"].str.fullmatch(code)]
    assert len(mine) == count, q[["reason_code", "reason"]].to_string()
    assert all(re.search(pattern, r) for r in mine["reason"]), mine["reason"].tolist()


def test_strict_keeps_exit_1_for_quarantined_rows(tmp_path, capsys):
    shutil.copy(HOSTILE / "patients.csv", tmp_path / "patients.csv")
    shutil.copy(HOSTILE / "outcomes_nonfinite.csv", tmp_path / "outcomes.csv")
    code, _, _ = _ingest(
        tmp_path, capsys, tmp_path / "patients.csv", tmp_path / "outcomes.csv", extra=("--strict",)
    )
    assert code == 1


def test_only_finite_scores_are_accepted(tmp_path, capsys):
    code, _, out = _ingest(
        tmp_path, capsys, HOSTILE / "patients.csv", HOSTILE / "outcomes_nonfinite.csv"
    )
    assert code == 0
    accepted = pd.read_csv(out / "outcomes.csv")
    assert accepted["score"].tolist() == [5.0]


def test_fhir_deep_ndjson_line_is_set_aside(tmp_path, capsys):
    path = tmp_path / "deep.ndjson"
    lines = (HOSTILE / "fhir_string_subject.ndjson").read_text().splitlines()[:3]
    lines.append('{"resourceType": "Observation", "note": ' + "[" * 5000 + "]" * 5000 + "}")
    lines.append('{"resourceType": "Observation", "note": ' + "[" * 70 + "]" * 70 + "}")
    path.write_text("\n".join(lines) + "\n")
    code, err, out = _ingest(tmp_path, capsys, path)
    assert code == 0, err
    meta = _check_accounting(out)
    aside = _quarantine(out, "source_rows")
    deep = aside[aside["reason_code"] == "too_deeply_nested"]
    assert deep["_source_row"].tolist() == ["4", "5"]
    assert deep["reason"].str.contains("nested deeper than 64 levels").all()
    assert meta["sources"][0]["rows_read"] == 5


def test_fhir_wrong_types_never_lose_the_good_resources(tmp_path):
    """A wrong-typed resource is set aside alone: the others of the file are read."""
    result = read_fhir(HOSTILE / "fhir_careplan_strings.ndjson")
    assert result.resources == 4
    assert len(result.set_aside) == 1
    assert len(result.records["patients"]) == 1
    assert len(result.records["outcomes"]) == 1


def test_fhir_unexpected_shape_is_rolled_back_and_set_aside(tmp_path, monkeypatch):
    """A shape the type checks do not know still ends set aside, with what it added undone."""

    def boom(c, row, res, pid):
        c.add("prescriptions", row, None, patient_id=pid)
        raise TypeError("unexpected")

    monkeypatch.setattr(fhir, "_careplan", boom)
    path = tmp_path / "cp.ndjson"
    lines = (HOSTILE / "fhir_mixed_timezone.ndjson").read_text().splitlines()
    path.write_text("\n".join(lines[:4]) + "\n")
    result = read_fhir(path)
    assert "prescriptions" not in result.records
    assert result.set_aside["reason_code"].tolist() == ["wrong_json_type"]
    assert result.set_aside["reason"].str.contains(r"CarePlan: .*\(TypeError\)").all()


# ------------------------------------------------------------------------ reading edges
def test_header_over_64_kib_is_read_whole(tmp_path, capsys):
    extra = [f"extra_{i:03d}_" + "x" * 240 for i in range(300)]
    header = ",".join(["patient_id", "assessed_on", "instrument", "score", *extra])
    assert len(header) > 65536
    rows = [f"P001,2024-02-0{d},NPRS,{d}" + "," * len(extra) for d in (1, 2)]
    path = tmp_path / "outcomes.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    code, err, out = _ingest(tmp_path, capsys, HOSTILE / "patients.csv", path)
    assert code == 0, err
    meta = _check_accounting(out)
    outcomes = next(s for s in meta["sources"] if s["file"] == "outcomes.csv")
    assert (outcomes["rows_read"], outcomes["rows_set_aside"]) == (2, 0)
    assert pd.read_csv(out / "outcomes.csv")["score"].tolist() == [1.0, 2.0]


def test_parquet_binary_column(tmp_path, capsys):
    """UTF-8 bytes are read as text; other bytes set the row aside naming the column."""
    path = tmp_path / "outcomes.parquet"
    table = pa.table(
        {
            "patient_id": pa.array([b"P001", b"P002", b"P001"], type=pa.binary()),
            "assessed_on": ["2024-02-01", "2024-02-01", "2024-02-02"],
            "instrument": ["NPRS", "NPRS", "NPRS"],
            "score": ["4", "5", "6"],
        }
    )
    table = table.set_column(0, "patient_id", pa.array([b"P001", b"\xff\xfe", b"P001"]))
    pq.write_table(table, path)
    code, err, out = _ingest(tmp_path, capsys, HOSTILE / "patients.csv", path)
    assert code == 0, err
    _check_accounting(out)
    aside = _quarantine(out, "source_rows")
    assert aside["_source_row"].tolist() == ["3"]
    assert aside["reason"].str.contains("column 'patient_id' holds bytes that are not UTF-8").all()
    assert len(pd.read_csv(out / "outcomes.csv")) == 2


def _workbook(tmp_path: Path) -> Path:
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "patients"
    ws.append(["patient_id", "enrolled_on", "age", "sex"])
    ws.append(["P001", "2024-01-08", "=50+4", "female"])  # a formula, never calculated
    ws.append(["P002", "2024-01-15", 61, "male"])
    ws.append(["P003", "2024-01-15", 40, None])
    ws.merge_cells("D3:D4")  # 'male' shown for P002 and P003
    visits = book.create_sheet("Visits 2")
    visits.append(["patient_id", "visit"])
    visits.append(["P001", "2024-01-09"])
    book.create_sheet("Notes")  # empty: not worth a warning
    path = tmp_path / "clinic.xlsx"
    book.save(path)
    return path


def test_workbook_formulas_merged_cells_and_unread_sheets_are_flagged(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["ingest", str(_workbook(tmp_path)), "--out", str(out), "--format", "csv"])
    printed = capsys.readouterr().out
    assert code == 0
    meta = _check_accounting(out)
    warnings = meta["warnings"]
    expected = [
        r"clinic\.xlsx\[patients\]: 1 formula cell\(s\) have no saved value \(C2\) and were read "
        r"as empty; fix: open the workbook",
        r"clinic\.xlsx\[patients\]: 1 merged cell range\(s\) \(e\.g\. D3:D4\) were read with their "
        r"top-left value",
        r"clinic\.xlsx: sheet 'Visits 2' was not read",
    ]
    for pattern in expected:
        assert any(re.search(pattern, w) for w in warnings), (pattern, warnings)
        assert re.search(pattern, printed)
    assert not any("'Notes'" in w for w in warnings)
    patients = pd.read_csv(out / "patients.csv", dtype=str)
    assert patients.set_index("patient_id")["sex"].to_dict() == {
        "P001": "female",
        "P002": "male",
        "P003": "male",
    }
    assert patients.set_index("patient_id")["age"].isna().to_dict()["P001"]


# ------------------------------------------------------------------- internal errors
def test_internal_error_exits_3_with_one_line_and_a_hint(tmp_path, capsys, monkeypatch):
    def boom(args):
        raise RuntimeError("P001 2024-01-08 54 female")  # text that could hold patient data

    monkeypatch.setattr(cli, "_ingest", boom)
    code = main(["ingest", str(HOSTILE / "patients.csv"), "--check"])
    err = capsys.readouterr().err
    assert code == 3
    line = _one_clean_line(err)
    assert re.fullmatch(
        r"ptanalytics ingest: internal error \(RuntimeError\); this is a bug in ptanalytics, not "
        r"in your data\. Rerun with --debug .* for the traceback, and report it\.",
        line,
    )


def test_debug_prints_the_traceback(capsys, monkeypatch):
    def boom(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "_ingest", boom)
    code = main(["--debug", "ingest", str(HOSTILE / "patients.csv"), "--check"])
    err = capsys.readouterr().err
    assert code == 3
    assert "Traceback (most recent call last)" in err
    assert "RuntimeError: boom" in err


def test_unreadable_file_exits_2(tmp_path, capsys, monkeypatch):
    def denied(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x.csv"))

    monkeypatch.setattr(cli, "_ingest", denied)
    code = main(["ingest", str(HOSTILE / "patients.csv"), "--check"])
    err = capsys.readouterr().err
    assert code == 2
    assert re.search(r"x\.csv: Permission denied\. Fix: check the path", err)


@pytest.mark.parametrize(
    ("encoding", "newline"),
    [("utf-16", "\n"), ("utf-8", ""), ("utf-8", "\r")],
    ids=["utf-16 with BOM", "last line without newline", "old Mac line ends"],
)
def test_csv_encodings_and_line_ends(tmp_path, capsys, encoding, newline):
    text = "patient_id,assessed_on,instrument,score\nP001,2024-02-01,NPRS,5"
    path = tmp_path / "outcomes.csv"
    path.write_bytes((text.replace("\n", newline or "\n") + newline).encode(encoding))
    code, err, out = _ingest(tmp_path, capsys, HOSTILE / "patients.csv", path)
    assert code == 0, err
    _check_accounting(out)
    assert pd.read_csv(out / "outcomes.csv")["score"].tolist() == [5.0]


def test_header_only_file_without_newline(tmp_path, capsys):
    path = tmp_path / "outcomes.csv"
    path.write_text("patient_id,assessed_on,instrument,score")
    code, err, out = _ingest(tmp_path, capsys, HOSTILE / "patients.csv", path)
    assert code == 0, err
    meta = _check_accounting(out)
    assert any("outcomes.csv: no data rows" in w for w in meta["warnings"])


@pytest.mark.parametrize(
    ("table", "column", "value", "pattern"),
    [
        ("outcomes", "score", "inf", r"column 'score', row 2: 'inf' is not a finite number"),
        ("outcomes", "score", "-Infinity", r"row 2: '-Infinity' is not a finite number"),
        ("patients", "age", "inf", r"column 'age', row 2: 'inf' is not a finite number"),
        ("outcomes", "assessed_on", "1200-01-01", r"'1200-01-01' is before 1900-01-01"),
    ],
)
def test_cohort_tables_refuse_non_finite_numbers_and_early_dates(table, column, value, pattern):
    from ptanalytics.cohort.schema import coerce_table
    from ptanalytics.exceptions import CohortFormatError

    frames = {
        "outcomes": {
            "patient_id": ["A", "A"],
            "assessed_on": ["2024-01-01", "2024-01-02"],
            "instrument": ["NPRS", "NPRS"],
            "score": ["5", "6"],
        },
        "patients": {"patient_id": ["A", "B"], "enrolled_on": ["2024-01-01"] * 2, "age": ["5"] * 2},
    }
    df = pd.DataFrame(frames[table])
    df.loc[1, column] = value
    with pytest.raises(CohortFormatError, match=pattern):
        coerce_table(table, df, source="cohort.csv")
