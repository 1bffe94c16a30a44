"""The report's provenance: pseudonymous sources, hashes, the ingest summary, every parameter."""

import hashlib
import re
import shutil
from pathlib import Path

import pytest

import ptanalytics as pt
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
    assert "mapping file (.toml)" in text and NOT_RECORDED in text
    for name, digest in folder_hashes(ashar_folder).itertuples(index=False):
        assert f"<td>{name}</td>" in text and f"<td>{digest}</td>" in text
    assert "Ashar2022_outcomes" not in text and "mapping.toml" not in text
    assert str(ashar_folder) not in text and str(tmp_path) not in text
    for parameter in ("min_cell", "mi_imputations", "mi_seed", "landmark_week", "window_days"):
        assert f"<td>{parameter}</td>" in text
    assert not re.search(r"\b20\d{2}-\d{2}-\d{2}\b", text)  # no calendar date (ingest's today)
