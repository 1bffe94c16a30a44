"""The report's provenance: pseudonymous sources, hashes, the ingest summary, every parameter."""

import datetime as dt
import hashlib
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

import ptanalytics as pt
from clinic_workbook import TODAY, build_clinic_workbook
from ptanalytics.exceptions import IngestError
from ptanalytics.ingestion import pipeline
from ptanalytics.ingestion.mapping import load_mapping, parse_mapping
from ptanalytics.privacy.deidentification import deidentify
from ptanalytics.report import render_report
from ptanalytics.report.provenance import (
    NOT_RECORDED,
    add_provenance,
    file_sha256,
    folder_hashes,
    ingest_sources,
    ingest_summary,
    mapping_row,
    report_parameters,
)
from ptanalytics.report.render import Blocks
from ptanalytics.report.sections import ReportSettings, software_versions

ROOT = Path(__file__).resolve().parents[1]
ASHAR = ROOT / "examples" / "ashar2022"
DATA = Path(__file__).parent / "data"
KEY = bytes.fromhex("5d1c0a3e9b7f24c68e01d2a4b3c5f7e9a0b1c2d3e4f5061728394a5b6c7d8e9f")

#: An ingest summary as ingest writes it, from files named after a patient (two sheets of a
#: workbook, one CSV), with a recorded hash on one source only.
INGEST = {
    "mapping": "smith_john_mapping.toml",
    "today": "2026-03-04",
    "sources": [
        {"file": "Smith_John.xlsx", "sheet": "Jan", "format": "xlsx", "rows_read": 40,
         "rows_used": 37, "rows_set_aside": 3},
        {"file": "Smith_John.xlsx", "sheet": "Feb", "format": "xlsx", "rows_read": 25,
         "rows_used": 25, "rows_set_aside": 0},
        {"file": "doe.csv", "sheet": "", "format": "csv", "rows_read": 12, "rows_used": 12,
         "rows_set_aside": 0, "sha256": "ab" * 32},
    ],
    "tables": [
        {"table": "patients", "records": 20, "accepted": 18, "quarantined": 2},
        {"table": "outcomes", "records": 54, "accepted": 54, "quarantined": 0},
    ],
    "imputed": {"sessions.duration_min": {"rows": 0, "imputed": 0, "still_missing": 0}},
    "warnings": ["one", "two"],
}  # fmt: skip


def test_file_sha256_known_answer(tmp_path):
    f = tmp_path / "abc.txt"
    f.write_bytes(b"abc")
    assert file_sha256(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 5000)  # more than one chunk
    assert file_sha256(big, chunk=1000) == hashlib.sha256(big.read_bytes()).hexdigest()


def test_ingest_sources_are_pseudonymous_numbered_and_keep_recorded_hashes():
    t = ingest_sources(INGEST)
    assert t["source"].tolist() == ["source 1 (.xlsx)", "source 1 (.xlsx)", "source 2 (.csv)"]
    assert t["sheet"].tolist() == ["sheet 1", "sheet 2", ""]
    assert t["rows read"].tolist() == [40, 25, 12] and t["rows set aside"].sum() == 3
    assert t["sha256"].tolist() == [NOT_RECORDED, NOT_RECORDED, "ab" * 32]
    text = t.to_csv()
    assert "Smith" not in text and "Jan" not in text and "doe" not in text


def test_ingest_sources_of_an_ingest_without_sources():
    t = ingest_sources({})
    assert len(t) == 0 and "sha256" in t


def test_mapping_row_without_a_mapping_with_one_and_with_its_hash():
    assert mapping_row({})["mapping"].startswith("none")
    assert mapping_row(INGEST) == {"mapping": "mapping file (.toml)", "sha256": NOT_RECORDED}
    hashed = mapping_row({**INGEST, "mapping_sha256": "cd" * 32})
    assert hashed["sha256"] == "cd" * 32


def test_ingest_summary_totals():
    t = ingest_summary(INGEST).set_index("step")["count"]
    assert t.tolist() == [74, 72, 2, 3, 0]
    empty = ingest_summary({"tables": [], "sources": []})["count"].tolist()
    assert empty == [0, 0, 0, 0, 0]


def test_report_parameters_list_every_setting_and_the_schedule():
    settings = ReportSettings(mi_imputations=7, mi_seed=99, landmark_week=3)
    t = report_parameters(settings, min_cell=5, group=None, schedule={"followup_weeks": 26})
    values = dict(zip(t["parameter"], t["value"], strict=True))
    for field in ("timepoint", "mi_imputations", "mi_seed", "landmark_week"):
        assert field in values
    assert values["mi_imputations"] == "7" and values["mi_seed"] == "99"
    assert values["landmark_week"] == "3" and values["min_cell"] == "5"
    assert values["group"] == "none" and values["schedule.followup_weeks"] == "26"
    assert values["window_days"] == "7" and values["inactivity_days"] == "14"
    assert (t["meaning"] != "").all()


def _provenance(meta, **kw) -> str:
    out = Blocks()
    add_provenance(
        out,
        meta,
        settings=ReportSettings(),
        min_cell=11,
        group="arm",
        versions=software_versions(),
        **kw,
    )
    return out.text()


def test_provenance_suppresses_small_counts_and_prints_no_name_or_date():
    text = _provenance({"source": "ingested: Smith_John.xlsx, doe.csv", "ingest": INGEST})
    assert "Smith" not in text and "doe" not in text and "2026-03-04" not in text
    assert "Ingested by ptanalytics from 2 source file(s)." in text
    # 3 rows set aside and 2 quarantined records are below 11: shown as <11.
    assert "<td>&lt;11</td>" in text and "<td>74</td>" in text
    assert "Ingest warnings recorded in cohort.json: 2." in text
    assert "not a hash of their contents" in text  # hashes partly unrecorded: said so
    assert "generated in memory" in text and "Software: python " in text
    assert _provenance({"source": "x", "ingest": INGEST}) == _provenance(
        {"source": "x", "ingest": INGEST}
    )  # deterministic


def test_provenance_of_a_cohort_without_metadata_and_of_recorded_hashes():
    text = _provenance({})
    assert "does not record where this cohort came from" in text
    hashed = {
        **INGEST,
        "mapping_sha256": "cd" * 32,
        "sources": [{**s, "sha256": "ef" * 32} for s in INGEST["sources"]],
    }
    text = _provenance({"source": "ingested", "ingest": hashed})
    assert "not a hash of their contents" not in text and "ef" * 32 in text
    assert NOT_RECORDED not in text


@pytest.fixture(scope="module")
def ashar_folder(tmp_path_factory):
    result = pt.ingest(
        [ASHAR / "Ashar2022_outcomes_demographics.csv"], mapping=ASHAR / "mapping.toml"
    )
    return result.cohort.write(tmp_path_factory.mktemp("prov") / "ashar", format="csv")


def test_folder_hashes_are_the_files_hashes_in_order(ashar_folder, tmp_path):
    t = folder_hashes(ashar_folder)
    assert t["file"].tolist() == [
        "cohort.json",
        "patients.csv",
        "prescriptions.csv",
        "sessions.csv",
        "outcomes.csv",
        "cointerventions.csv",
        "quarantine/source_rows.csv",
    ]
    for name, digest in t.itertuples(index=False):
        assert digest == hashlib.sha256((ashar_folder / name).read_bytes()).hexdigest()
    # A table stored as a folder of Parquet parts: one row per part, in part order.
    parts = tmp_path / "parts"
    pt.simulate_cohort(12, seed=2).write(parts, format="parquet")
    (parts / "sessions").mkdir()
    shutil.move(parts / "sessions.parquet", parts / "sessions" / "part-00000.parquet")
    files = folder_hashes(parts)["file"].tolist()
    assert "sessions/part-00000.parquet" in files and "sessions.parquet" not in files
    assert files[-1] == "truth.json" and not any(str(tmp_path) in f for f in files)


def test_rendered_report_of_an_ingested_folder_has_its_provenance(ashar_folder, tmp_path):
    out = render_report(ashar_folder, tmp_path / "a.html", title="Ashar", progress=False)
    text = out.read_text(encoding="utf-8")
    assert "9. Provenance" in text and "source 1 (.csv)" in text
    assert "mapping file (.toml)" in text and NOT_RECORDED not in text
    assert f"<td>{sha(ASHAR / 'Ashar2022_outcomes_demographics.csv')}</td>" in text
    assert f"<td>{sha(ASHAR / 'mapping.toml')}</td>" in text and "sha256sum" in text
    for name, digest in folder_hashes(ashar_folder).itertuples(index=False):
        assert f"<td>{name}</td>" in text and f"<td>{digest}</td>" in text
    assert "Ashar2022_outcomes" not in text and "mapping.toml" not in text
    assert str(ashar_folder) not in text and str(tmp_path) not in text
    for parameter in ("min_cell", "mi_imputations", "mi_seed", "landmark_week", "window_days"):
        assert f"<td>{parameter}</td>" in text
    assert not re.search(r"\b20\d{2}-\d{2}-\d{2}\b", text)  # no calendar date (ingest's today)


# ------------------------------------------------------------------ hashes recorded at ingest
def sha(path) -> str:
    """The reference hash: the whole file read at once (not chunked as file_sha256 reads it)."""
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


#: Names of the files below: a clinic's export may be named after a patient.
NAMES = ("Doe_Jane", "Jane", "export", "extra", "Patients", "Visits")


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    """A four-sheet workbook, a CSV and their mapping, named after a patient; ingested.

    Returns (folder, workbook, csv, mapping, IngestResult).
    """
    folder = tmp_path_factory.mktemp("named")
    export = build_clinic_workbook(folder / "build")
    book = folder / "Doe_Jane_export.xlsx"
    shutil.copyfile(export.workbook, book)
    ids = pd.read_excel(book, sheet_name="Patients", dtype=str)["Pt ID"].dropna()
    csv = folder / "Doe_Jane_extra.csv"
    csv.write_text(
        f"patient_id,kind,start_on,end_on\n{ids.iloc[-1].strip()},massage,2026-10-01,2026-10-05\n",
        encoding="utf-8",
    )
    mapping = folder / "Doe_Jane_mapping.toml"
    text = export.mapping.read_text(encoding="utf-8").replace("clinic_export.xlsx", book.name)
    mapping.write_text(
        text
        + f"""
[[sources]]
match = "{csv.name}"
  [sources.cointerventions]
  patient_id = "patient_id"
  kind = "kind"
  start_on = "start_on"
  end_on = "end_on"
""",
        encoding="utf-8",
    )
    today = dt.date.fromisoformat(TODAY)
    return folder, book, csv, mapping, pt.ingest([book, csv], mapping=mapping, today=today)


def test_ingest_records_the_sha256_of_every_source_file_and_of_the_mapping(named):
    folder, book, csv, mapping, result = named
    sources = result.sources
    assert "sha256" in sources and list(sources.columns[:10]) == [
        "file", "sheet", "format", "encoding", "delimiter", "rows_read", "rows_used",
        "rows_set_aside", "tables", "mapped",
    ]  # fmt: skip
    for row in sources.itertuples():
        assert row.sha256 == sha(folder / row.file)
    sheets = sources[sources["file"] == book.name]
    assert len(sheets) == 4 and sheets["sha256"].nunique() == 1  # one hash for the workbook
    assert set(sources["sha256"]) == {sha(book), sha(csv)} and sha(book) != sha(csv)
    ingest = result.cohort.metadata["ingest"]
    assert [s["sha256"] for s in ingest["sources"]] == sources["sha256"].tolist()
    assert ingest["mapping"] == mapping.name and ingest["mapping_sha256"] == sha(mapping)


def test_recorded_hashes_survive_write_and_load(named, tmp_path):
    *_, result = named
    out = result.cohort.write(tmp_path / "cohort", format="csv")
    on_disk = json.loads((out / "cohort.json").read_text(encoding="utf-8"))["ingest"]
    loaded = pt.load_cohort(out).metadata["ingest"]
    for ingest in (on_disk, loaded):
        assert [s["sha256"] for s in ingest["sources"]] == result.sources["sha256"].tolist()
        assert ingest["mapping_sha256"] == result.cohort.metadata["ingest"]["mapping_sha256"]


def test_deidentify_keeps_the_hashes_and_pseudonymises_the_names(named, tmp_path):
    _, book, csv, mapping, result = named
    cohort = pt.load_cohort(result.cohort.write(tmp_path / "cohort", format="csv"))
    shared, _ = deidentify(cohort, key=KEY)
    ingest = shared.metadata["ingest"]
    assert [s["sha256"] for s in ingest["sources"]] == result.sources["sha256"].tolist()
    assert ingest["mapping_sha256"] == sha(mapping)
    for s in ingest["sources"]:
        assert re.fullmatch(r"source-[0-9a-f]{10}\.(csv|xlsx)", s["file"])
        assert s["sha256"] == sha(book if s["file"].endswith(".xlsx") else csv)
    assert re.fullmatch(r"source-[0-9a-f]{10}\.toml", ingest["mapping"])
    text = json.dumps(shared.metadata)
    assert not any(name in text for name in ("Doe_Jane", "Jane"))


def test_provenance_of_an_ingested_cohort_shows_its_hashes_not_its_names(named):
    _, book, csv, mapping, result = named
    shared, _ = deidentify(result.cohort, key=KEY)
    for meta in (result.cohort.metadata, shared.metadata):
        text = _provenance(meta)
        for digest in {sha(book), sha(csv), sha(mapping)}:
            assert f"<td>{digest}</td>" in text
        assert text.count(f"<td>{sha(book)}</td>") == 4  # every sheet shows its file's hash
        assert "source 1 (.xlsx)" in text and "source 2 (.csv)" in text
        assert "sheet 4" in text and "mapping file (.toml)" in text
        assert NOT_RECORDED not in text and "not a hash of their contents" not in text
        assert "sha256sum" in text
        assert not any(name in text for name in NAMES)
        assert "source-" not in text  # nor the de-identified cohort's pseudonymous names


def test_an_ingest_without_a_mapping_records_no_mapping_hash():
    patients = DATA / "patients.csv"
    result = pt.ingest([patients], today=dt.date.fromisoformat(TODAY))
    ingest = result.cohort.metadata["ingest"]
    assert ingest["mapping"] is None and "mapping_sha256" not in ingest
    assert [s["sha256"] for s in ingest["sources"]] == [sha(patients)]
    text = _provenance(result.cohort.metadata)
    assert "<td>none (columns named as the data dictionary)</td>" in text
    assert f"<td>{sha(patients)}</td>" in text and NOT_RECORDED not in text


def test_fhir_sources_are_hashed():
    fhir = DATA / "fhir_bundle.json"
    result = pt.ingest([fhir], today=dt.date.fromisoformat(TODAY))
    assert result.sources["sha256"].tolist() == [sha(fhir)]


def test_a_mapping_given_as_an_object_is_hashed_from_its_file_when_it_has_one(named):
    _, book, csv, mapping, _ = named
    today = dt.date.fromisoformat(TODAY)
    loaded = pt.ingest([book, csv], mapping=load_mapping(mapping), today=today)
    assert loaded.cohort.metadata["ingest"]["mapping_sha256"] == sha(mapping)
    columns = {"patient_id": "patient_id", "enrolled_on": "enrolled_on"}
    rules = {"sources": [{"match": "patients.csv", "patients": columns}]}
    built = parse_mapping(rules)  # no file behind it: no hash, and the report says so
    result = pt.ingest([DATA / "patients.csv"], mapping=built, today=today)
    ingest = result.cohort.metadata["ingest"]
    assert "mapping_sha256" not in ingest
    assert [s["sha256"] for s in ingest["sources"]] == [sha(DATA / "patients.csv")]
    text = _provenance(result.cohort.metadata)
    assert f"<td>{NOT_RECORDED}</td>" in text and "not a hash of their contents" in text


def test_a_source_that_changes_while_it_is_read_is_refused(tmp_path, monkeypatch):
    f = tmp_path / "patients.csv"
    shutil.copyfile(DATA / "patients.csv", f)
    read = pipeline._read_sources

    def read_then_append(path, mapping, used):
        out = read(path, mapping, used)
        with open(path, "a", encoding="utf-8") as fh:  # the export is still being written
            fh.write("\n")
        return out

    monkeypatch.setattr(pipeline, "_read_sources", read_then_append)
    with pytest.raises(IngestError, match=r"patients\.csv: changed while ingest read it"):
        pt.ingest([f], today=dt.date.fromisoformat(TODAY))


# ------------------------------------------------------------------ the fingerprint of the tables
def test_fingerprint_is_the_same_for_csv_and_parquet_and_any_chunking(tmp_path):
    import ptanalytics as pt
    from ptanalytics._hashing import frame_sha256
    from ptanalytics.report.sections import cohort_fingerprint

    cohort = pt.simulate_cohort(40, seed=3)
    cohort.write(tmp_path / "csv", format="csv")
    cohort.write(tmp_path / "pq", format="parquet")
    from_csv, from_pq = pt.load_cohort(tmp_path / "csv"), pt.load_cohort(tmp_path / "pq")
    assert cohort_fingerprint(from_csv) == cohort_fingerprint(from_pq)
    sessions = from_pq.sessions
    assert frame_sha256(sessions, chunk_rows=7) == frame_sha256(sessions)
    assert frame_sha256(sessions, chunk_rows=len(sessions) + 1) == frame_sha256(sessions)


def test_fingerprint_changes_with_any_value_missing_cell_name_or_order():
    import numpy as np
    import pandas as pd

    from ptanalytics._hashing import frame_sha256

    base = pd.DataFrame(
        {
            "patient_id": pd.Series(["p1", "p2", "p10"], dtype="str"),
            "when": pd.to_datetime(["2024-01-01", "2024-02-01", None]).astype("datetime64[s]"),
            "kind": pd.Categorical(["heat", "massage", "heat"]),
            "score": [1.5, np.nan, 3.0],
            "count": pd.array([1, 2, None], dtype="Int64"),
            "flag": [True, False, True],
        }
    )
    digest = frame_sha256(base)
    variants = {
        "value": base.assign(score=[1.5, np.nan, 3.5]),
        "missing": base.assign(score=[1.5, 0.0, 3.0]),  # 0 is not missing
        "text": base.assign(patient_id=pd.Series(["p1", "p21", "p0"], dtype="str")),
        "split": base.assign(patient_id=pd.Series(["p1p", "2", "p10"], dtype="str")),
        "date": base.assign(when=base["when"].fillna(pd.Timestamp("1970-01-01"))),
        "name": base.rename(columns={"score": "nprs"}),
        "order": base.iloc[[1, 0, 2]],
        "flag": base.assign(flag=[True, True, True]),
    }
    for what, frame in variants.items():
        assert frame_sha256(frame) != digest, what
    # The same values: integers and floats alike, categories in any order, object text.
    same = base.assign(
        kind=base["kind"].cat.reorder_categories(["massage", "heat"]),
        count=pd.array([1.0, 2.0, None], dtype="Float64"),
        patient_id=base["patient_id"].astype(object),
    )
    assert frame_sha256(same) == digest
