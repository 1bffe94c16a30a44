"""Ingestion: one test per fault in tests/data/, readers, mappings, FHIR and row conservation."""

import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ptanalytics as pt
from ptanalytics.cli import main
from ptanalytics.exceptions import IngestError, MappingError
from ptanalytics.ingestion.mapping import parse_mapping
from ptanalytics.ingestion.pipeline import ingest, validate_cohort_dir

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]
TODAY = dt.date(2026, 11, 23)
PATIENTS = DATA / "patients.csv"


def run(*files, mapping=None):
    return ingest([PATIENTS, *(DATA / f for f in files)], mapping=mapping, today=TODAY)


def quarantined(result, table):
    q = result.cohort.quarantine or {}
    return q.get(table, pd.DataFrame(columns=["_source_row", "reason_code", "reason"]))


def conserved(result):
    """Rows read = used + set aside per source; records = accepted + quarantined per table."""
    s = result.sources
    assert (s["rows_read"] == s["rows_used"] + s["rows_set_aside"]).all()
    t = result.tables
    assert (t["records"] == t["accepted"] + t["quarantined"]).all()
    q = result.cohort.quarantine or {}
    for row in t.itertuples():
        assert len(q.get(row.table, ())) == row.quarantined
        assert len(getattr(result.cohort, row.table)) == row.accepted
    return True


# ------------------------------------------------------------------------------ the corpus
def test_wrong_delimiter_is_detected():
    r = run("sessions_semicolon.csv")
    assert r.sources.set_index("file").loc["sessions_semicolon.csv", "delimiter"] == ";"
    assert len(r.cohort.sessions) == 2 and conserved(r)
    assert list(r.cohort.sessions["category"]) == ["flexibility", "flexibility"]


def test_forced_wrong_delimiter_is_fatal_with_a_hint():
    mapping = parse_mapping(
        {
            "sources": [
                {
                    "match": "patients.csv",
                    "patients": {"patient_id": "patient_id", "enrolled_on": "enrolled_on"},
                },
                {"match": "sessions_*.csv", "delimiter": ",", "sessions": {}},
            ]
        }
    )
    with pytest.raises(
        IngestError,
        match=r"sessions_semicolon\.csv: feeds 'sessions' but has no "
        r"column for required .*delimiter looks wrong",
    ):
        run("sessions_semicolon.csv", mapping=mapping)


def test_utf8_bom_is_not_part_of_the_header():
    r = ingest([DATA / "patients_bom.csv"], today=TODAY)
    assert r.sources.loc[0, "encoding"] == "utf-8-sig"
    assert list(r.cohort.patients["patient_id"]) == ["P001", "P002"]


def test_latin1_is_decoded():
    r = ingest([DATA / "patients_latin1.csv"], today=TODAY)
    assert r.sources.loc[0, "encoding"] in ("cp1252", "latin-1")
    assert r.cohort.patients.loc[0, "clinic_name"] == "Clínica Sévèrine"


def test_mixed_date_formats_are_quarantined_unless_declared():
    r = run("outcomes_mixed_dates.csv")
    q = quarantined(r, "outcomes")
    assert list(q["_source_row"]) == [3] and list(q["reason_code"]) == ["bad_date"]
    assert "assessed_on '15/01/2024' is not a date in the form %Y-%m-%d" in q.loc[0, "reason"]
    mapping = parse_mapping(
        {
            "sources": [
                {
                    "match": "patients.csv",
                    "patients": {"patient_id": "patient_id", "enrolled_on": "enrolled_on"},
                },
                {
                    "match": "outcomes_*.csv",
                    "date_formats": ["%Y-%m-%d", "%d/%m/%Y"],
                    "outcomes": {
                        "patient_id": "patient_id",
                        "assessed_on": "assessed_on",
                        "instrument": "instrument",
                        "score": "score",
                    },
                },
            ]
        }
    )
    r = run("outcomes_mixed_dates.csv", mapping=mapping)
    assert len(r.cohort.outcomes) == 3 and conserved(r)
    assert str(r.cohort.outcomes.loc[1, "assessed_on"].date()) == "2024-01-15"


def test_nprs_out_of_range_and_non_integer_are_never_clipped_or_rounded():
    r = run("outcomes_nprs_range.csv")
    q = quarantined(r, "outcomes").set_index("_source_row")
    assert q.loc[3, "reason"] == (
        "NPRS score '11' is outside integers 0-10; fix: correct it (never clipped)"
    )
    assert q.loc[4, "reason_code"] == "not_integer" and "'7.5'" in q.loc[4, "reason"]
    assert q.loc[5, "reason_code"] == "out_of_range"
    assert sorted(r.cohort.outcomes["score"]) == [7.0, 42.0]  # ODI 42 is fine
    assert conserved(r)


def test_duplicate_rows():
    r = run("sessions_duplicates.csv")
    q = quarantined(r, "sessions")
    assert list(q["_source_row"]) == [3]
    assert q.loc[0, "reason"].startswith("duplicate of sessions_duplicates.csv row 2")
    assert conserved(r)


def test_unknown_patient():
    q = quarantined(run("outcomes_unknown_patient.csv"), "outcomes")
    assert list(q["reason_code"]) == ["unknown_patient"]
    assert "patient_id 'P999' is not in patients" in q.loc[0, "reason"]


def test_unknown_exercise_suggests_the_closest_names():
    r = run("sessions_unknown_exercise.csv")
    assert list(r.cohort.sessions["exercise"]) == ["hamstring_stretch"]  # display name matched
    q = quarantined(r, "sessions")
    assert q.loc[0, "reason"].startswith(
        "exercise 'hamstrung strech' is not in the catalogue (closest: hamstring_stretch"
    )


def test_unknown_exercise_mapped_by_the_mapping():
    mapping = parse_mapping(
        {
            "sources": [
                {
                    "match": "patients.csv",
                    "patients": {"patient_id": "patient_id", "enrolled_on": "enrolled_on"},
                },
                {
                    "match": "sessions_*.csv",
                    "sessions": {
                        "patient_id": "patient_id",
                        "performed_on": "performed_on",
                        "phase": "phase",
                        "supervised": "supervised",
                        "exercise": {
                            "column": "exercise",
                            "values": {"hamstrung strech": "hamstring_stretch"},
                        },
                    },
                },
            ]
        }
    )
    r = run("sessions_unknown_exercise.csv", mapping=mapping)
    assert len(r.cohort.sessions) == 2 and conserved(r)


def test_session_before_enrolment():
    q = quarantined(run("sessions_before_enrolment.csv"), "sessions")
    assert list(q["_source_row"]) == [2]
    assert q.loc[0, "reason"] == (
        "performed_on '2024-01-10' is before enrolment (2024-01-15); "
        "fix: correct the date or the enrolment date"
    )


def test_empty_file_is_fatal():
    with pytest.raises(IngestError, match=r"outcomes_empty\.csv: the file is empty"):
        run("outcomes_empty.csv")


def test_header_only_is_a_warning():
    r = run("outcomes_header_only.csv")
    assert any("outcomes_header_only.csv: no data rows" in w for w in r.warnings)
    assert len(r.cohort.outcomes) == 0 and conserved(r)


def test_truncated_last_line_is_set_aside_with_its_line_number():
    r = run("outcomes_truncated.csv")
    q = quarantined(r, "source_rows")
    assert list(q["_source_row"]) == [4]
    assert q.loc[0, "reason"] == (
        "row has 2 field(s) but the header has 4 (truncated line or stray delimiter)"
    )
    assert len(r.cohort.outcomes) == 2 and conserved(r)


def test_future_date_and_bad_boolean():
    q = quarantined(run("sessions_future_date.csv"), "sessions")
    assert q.loc[0, "reason"].startswith("performed_on '2031-01-08' is in the future")
    q = quarantined(run("sessions_bad_boolean.csv"), "sessions")
    assert q.loc[0, "reason"] == "supervised 'maybe' is not true/false; fix: use true or false"


def test_fhir_missing_subject():
    r = ingest([DATA / "fhir_missing_subject.ndjson"], today=TODAY)
    q = quarantined(r, "outcomes")
    assert list(q["_source_row"]) == [3]
    assert q.loc[0, "reason_code"] == "missing_subject;missing_value"
    assert len(r.cohort.outcomes) == 1 and conserved(r)


def test_fhir_value_quantity_with_wrong_unit():
    r = ingest([DATA / "fhir_wrong_unit.ndjson"], today=TODAY)
    q = quarantined(r, "outcomes")
    assert q.loc[0, "reason"].startswith("valueQuantity unit 'mm' is not a 0-10 pain score")
    assert list(r.cohort.outcomes["score"]) == [5.0]  # {score} unit accepted


def test_fhir_bundle_feeds_every_table():
    r = ingest([DATA / "fhir_bundle.json"], today=TODAY)
    c = r.cohort
    assert c.patients.loc[0, "age"] == 53 and str(c.patients.loc[0, "enrolled_on"].date()) == (
        "2024-03-04"
    )
    assert "birthDate" not in c.patients.columns
    assert list(c.outcomes["score"]) == [7.0, 4.0]
    assert list(c.sessions["exercise"]) == ["bird_dog", "bird_dog"]
    assert list(c.sessions["supervised"]) == [True, False]
    assert list(c.sessions["phase"]) == ["guided", "guided"]
    assert c.sessions.loc[0, "duration_min"] == 6.0
    rx = c.prescriptions.iloc[0]
    assert (rx["exercise"], rx["sessions_per_week"], rx["phase"]) == ("bird_dog", 3, "guided")
    aside = quarantined(r, "source_rows")
    assert set(aside["reason_code"]) == {"unsupported_code", "unsupported_resource"}
    assert conserved(r)


# ------------------------------------------------------------------------------ readers
def test_excel_and_parquet_sources(tmp_path):
    sessions = pd.read_csv(DATA / "sessions_duplicates.csv", dtype=str)
    sessions.to_excel(tmp_path / "sessions.xlsx", index=False)
    sessions.to_parquet(tmp_path / "sessions_p.parquet", index=False)
    for name in ("sessions.xlsx", "sessions_p.parquet"):
        r = ingest([PATIENTS, tmp_path / name], today=TODAY)
        q = quarantined(r, "sessions")
        assert list(q["_source_row"]) == [3] and list(q["reason_code"]) == ["duplicate_row"]
        assert conserved(r)


def test_unsupported_and_missing_files(tmp_path):
    with pytest.raises(IngestError, match=r"unsupported file type '\.docx'"):
        ingest([PATIENTS, tmp_path / "x.docx"]) if (tmp_path / "x.docx").write_text("x") else None
    with pytest.raises(IngestError, match=r"nope\.csv: file not found"):
        ingest([tmp_path / "nope.csv"])
    with pytest.raises(IngestError, match=r"no source feeds the 'patients' table"):
        ingest([DATA / "outcomes_unknown_patient.csv"])


# ------------------------------------------------------------------------------ mappings
def test_mapping_naming_an_absent_column(tmp_path):
    m = tmp_path / "m.toml"
    m.write_text(
        '[[sources]]\nmatch = "patients.csv"\n[sources.patients]\n'
        'patient_id = "PatientID"\nenrolled_on = "enrolled_on"\n'
    )
    with pytest.raises(
        MappingError,
        match=r"m\.toml: \[sources\.patients\]\.patient_id names "
        r"column 'PatientID', which patients\.csv does not "
        r"have",
    ):
        ingest([PATIENTS], mapping=m)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, r"needs a non-empty list 'sources'"),
        ({"sources": [{"patients": {}}]}, r"sources\[0\]\.match is required"),
        ({"sources": [{"match": "*", "visits": {}}]}, r"unknown key 'visits'"),
        ({"sources": [{"match": "*", "outcomes": {"pain": "x"}}]}, r"'pain' is not a column of"),
        ({"sources": [{"match": "*"}]}, r"feeds no table"),
    ],
)
def test_malformed_mappings(raw, message):
    with pytest.raises(MappingError, match=message):
        parse_mapping(raw)


def test_yaml_mapping_equals_toml(tmp_path):
    (tmp_path / "m.yaml").write_text(
        "sources:\n  - match: patients.csv\n    patients:\n      patient_id: patient_id\n"
        "      enrolled_on: enrolled_on\n      age: {column: age}\n"
    )
    r = ingest([PATIENTS], mapping=tmp_path / "m.yaml", today=TODAY)
    assert list(r.cohort.patients["age"]) == [54, 61, 38]


def test_no_rule_for_a_file(tmp_path):
    m = tmp_path / "m.toml"
    m.write_text('[[sources]]\nmatch = "other.csv"\n[sources.patients]\npatient_id = "id"\n')
    with pytest.raises(MappingError, match=r"no \[\[sources\]\] entry matches patients\.csv"):
        ingest([PATIENTS], mapping=m)


# ------------------------------------------------------------------------------ the real export
def test_ashar_example_ingests_with_the_documented_counts():
    ex = ROOT / "examples" / "ashar2022"
    r = ingest(
        [ex / "Ashar2022_outcomes_demographics.csv"], mapping=ex / "mapping.toml", today=TODAY
    )
    src = r.sources.iloc[0]
    assert (src.rows_read, src.rows_used, src.rows_set_aside) == (341, 287, 54)
    c = r.cohort
    assert len(c.patients) == 152
    assert c.patients["arm"].value_counts().to_dict() == {
        "placebo_injection": 51,
        "pain_reprocessing_therapy": 50,
        "usual_care": 50,
    }
    counts = c.outcomes.groupby("instrument").size().to_dict()
    assert counts == {"NPRS": 287, "ODI": 287}
    assert r.tables["quarantined"].sum() == 0
    assert set(quarantined(r, "source_rows")["reason_code"]) == {"excluded_by_filter"}
    # Post-treatment pain by arm matches the published results (PRT lowest).
    post = c.outcomes[
        (c.outcomes["instrument"] == "NPRS")
        & (c.outcomes["assessed_on"] == pd.Timestamp("2000-01-31"))
    ]
    by_arm = post.merge(c.patients, on="patient_id").groupby("arm")["score"].mean().round(2)
    assert by_arm.to_dict() == {
        "pain_reprocessing_therapy": 1.18,
        "placebo_injection": 2.84,
        "usual_care": 3.13,
    }
    readme = (ex / "README.md").read_text()
    for figure in ("341", "287", "54", "152", "574"):
        assert figure in readme


# ------------------------------------------------------------------------------ CLI and output
def test_cli_ingest_writes_cohort_and_quarantine(tmp_path, capsys):
    out = tmp_path / "c"
    args = [
        "ingest",
        str(PATIENTS),
        str(DATA / "outcomes_nprs_range.csv"),
        "--out",
        str(out),
        "--today",
        "2026-11-23",
        "--format",
        "csv",
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "outcomes                5          2            3" in text
    assert "P00" not in text  # no patient ids on the terminal
    q = pd.read_csv(out / "quarantine" / "outcomes.csv")
    assert list(q["_source_row"]) == [3, 4, 5]
    meta = json.loads((out / "cohort.json").read_text())
    assert meta["ingest"]["tables"][3] == {
        "table": "outcomes",
        "records": 5,
        "accepted": 2,
        "quarantined": 3,
    }
    back = pt.load_cohort(out)
    assert len(back.outcomes) == 2 and len(back.quarantine["outcomes"]) == 3
    assert main([*args[:-2], "--strict", "--overwrite"]) == 1
    assert main(["validate", str(out), "--today", "2026-11-23"]) == 0


def test_cli_fatal_input_exits_2_with_one_line_and_no_output(tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["ingest", str(PATIENTS), str(DATA / "outcomes_empty.csv"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[1].startswith("ptanalytics ingest: error: ")
    assert "outcomes_empty.csv: the file is empty" in err[1]
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_validate_finds_problems_in_an_edited_cohort(tmp_path):
    folder = pt.simulate_cohort(30, seed=1).write(tmp_path / "c", format="csv")
    assert validate_cohort_dir(folder, today=TODAY).quarantined == 0
    out = folder / "outcomes.csv"
    lines = out.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + ",12"
    out.write_text("\n".join(lines) + "\n")
    r = validate_cohort_dir(folder, today=TODAY)
    assert r.quarantined == 1 and r.reasons.loc[0, "reason_code"] == "out_of_range"


def test_simulated_cohort_round_trips_through_ingest(tmp_path):
    sim = pt.simulate_cohort(80, seed=5)
    folder = sim.write(tmp_path / "c", format="parquet")
    files = sorted(folder.glob("*.parquet"))
    files = [f for f in files if f.stem != "truth_patients"]
    r = ingest(files, today=TODAY)
    assert r.quarantined == 0
    for name in ("patients", "sessions", "outcomes", "prescriptions", "cointerventions"):
        assert len(getattr(r.cohort, name)) == len(getattr(sim, name))


# ------------------------------------------------------------------------------ conservation
GOOD = ["P001,2024-01-08,NPRS,7", "P002,2024-01-22,ODI,30", "P003,2024-02-05,NPRS,0"]
BAD = {
    "P001,2024-01-08,NPRS,11": "out_of_range",
    "P001,2024-01-09,NPRS,6.5": "not_integer",
    "P009,2024-01-08,NPRS,5": "unknown_patient",
    "P002,08/01/2024,NPRS,5": "bad_date",
    "P002,2024-01-20,NPRS,": "missing_value",
    "P003,2030-02-05,NPRS,3": "future_date",
    "P003,2024-02-06,NPRS": "unparseable_row",
    ",,,": "blank_row",
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(GOOD + list(BAD)), min_size=0, max_size=30), st.integers(0, 1000))
def test_rows_are_conserved_for_any_mix(rows, salt):
    # Good rows are made unique (distinct dates) so that none is a duplicate of another.
    lines, expect_bad = [], 0
    for i, row in enumerate(rows):
        if row in GOOD:
            pid, _, inst, score = row.split(",")
            day = dt.date(2024, 3, 1) + dt.timedelta(days=i)
            lines.append(f"{pid},{day},{inst},{score}")
        else:
            lines.append(row if row != ",,," else "")
            expect_bad += 1
    folder = Path(tempfile.mkdtemp())
    try:
        shutil.copy(PATIENTS, folder / "patients.csv")
        (folder / "outcomes.csv").write_text(
            "patient_id,assessed_on,instrument,score\n" + "".join(f"{ln}\n" for ln in lines)
        )
        r = ingest([folder / "patients.csv", folder / "outcomes.csv"], today=TODAY)
    finally:
        shutil.rmtree(folder)
    assert conserved(r)
    src = r.sources.set_index("file").loc["outcomes.csv"]
    assert src.rows_read == len(rows)
    set_aside = src.rows_set_aside
    out = r.tables.set_index("table").loc["outcomes"]
    assert out.records + set_aside == len(rows)
    assert out.quarantined + set_aside == expect_bad
    assert out.accepted == len(rows) - expect_bad


def test_phase_and_category_must_agree_with_prescriptions_and_catalogue():
    r = run("prescriptions.csv", "sessions_phase_mismatch.csv")
    q = quarantined(r, "sessions").set_index("_source_row")
    assert q.loc[3, "reason"] == (
        "phase 'maintenance' but 2024-01-12 falls in the guided prescription (2024-01-08 to "
        "2024-03-03); fix: correct the phase or the date"
    )
    assert q.loc[4, "reason_code"] == "category_mismatch"
    assert (
        "category 'core_strengthening' contradicts the catalogue (flexibility" in q.loc[4, "reason"]
    )
    assert len(r.cohort.sessions) == 1 and conserved(r)
