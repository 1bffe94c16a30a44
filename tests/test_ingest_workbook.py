"""Ingest of a one-workbook clinic export (tests/clinic_workbook.py) and of real-export gaps.

The workbook is built at test time: a sheet per table, local column names, dd/mm/yyyy dates,
typos, blank rows, a footer line, no minutes for the strength exercises, a 12-week program.
"""

import contextlib
import datetime as dt
import io
import json

import pandas as pd
import pytest

import ptanalytics.ingestion.pipeline as ingestion
from clinic_workbook import FOLLOWUP_WEEKS, GUIDED_WEEKS, MAPPING, TODAY, build_clinic_workbook
from ptanalytics.cli import main
from ptanalytics.cohort.catalogue import exercise_catalogue
from ptanalytics.exceptions import IngestError, MappingError
from ptanalytics.ingestion.mapping import parse_mapping
from ptanalytics.ingestion.pipeline import impute_session_minutes, ingest

DAY = dt.date.fromisoformat(TODAY)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return build_clinic_workbook(tmp_path_factory.mktemp("clinic"))


@pytest.fixture(scope="module")
def ingested(export, tmp_path_factory):
    """The workbook ingested once through the CLI; (exit code, stdout, stderr, cohort folder)."""
    out = tmp_path_factory.mktemp("cohort") / "c"
    so, se = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
        args = ["ingest", str(export.workbook), "--mapping", str(export.mapping)]
        code = main([*args, "--out", str(out), "--today", TODAY, "--format", "csv"])
    return code, so.getvalue(), se.getvalue(), out


def _mapping(export, tmp_path, text):
    m = tmp_path / "m.toml"
    m.write_text(text, encoding="utf-8")
    return ["ingest", str(export.workbook), "--mapping", str(m), "--today", TODAY]


# --------------------------------------------------------------------------- end to end
def test_workbook_rows_are_conserved_for_every_sheet_and_table(export, ingested):
    code, stdout, _, out = ingested
    assert code == 0
    meta = json.loads((out / "cohort.json").read_text())["ingest"]
    sources = {s["sheet"]: s for s in meta["sources"]}
    assert set(sources) == {"Patients", "Prescriptions", "Visits", "Outcomes"}
    planted = pd.Series(export.planted)
    for sheet, expect in export.sheets.items():
        src = sources[sheet]
        # rows read = rows used + rows set aside (blank rows and the footer line)
        assert src["rows_read"] == expect["rows"]
        assert src["rows_set_aside"] == expect["blank"] + expect["footer"]
        assert src["rows_read"] == src["rows_used"] + src["rows_set_aside"]
        table = {t["table"]: t for t in meta["tables"]}[expect["table"]]
        assert table["records"] == src["rows_used"]
        # records = accepted + quarantined, and exactly the planted rows are quarantined
        assert table["records"] == table["accepted"] + table["quarantined"]
        assert table["quarantined"] == int((planted.index.get_level_values(0) == sheet).sum())
    assert meta["emptied_tables"] == []
    assert "P0" not in stdout  # no patient ids on the terminal


def test_workbook_quarantines_the_planted_rows_with_clear_reasons(export, ingested):
    out = ingested[3]
    q = pd.concat(
        [pd.read_csv(out / "quarantine" / f"{t}.csv") for t in ("sessions", "outcomes")],
        ignore_index=True,
    )
    got = {
        (f.split("[")[1].rstrip("]"), r): c
        for f, r, c in zip(q["_source_file"], q["_source_row"], q["reason_code"], strict=True)
    }
    assert got == export.planted
    reasons = dict(
        zip(zip(q["_source_file"], q["_source_row"], strict=True), q["reason"], strict=True)
    )
    row = {v: k for k, v in export.planted.items()}
    visits = "clinic_export.xlsx[Visits]"
    first_unknown = min(r for (s, r), c in export.planted.items() if c == "unknown_patient")
    assert reasons[(visits, first_unknown)] == (
        "patient_id 'p003' is not in patients (did you mean 'P003'?); fix: add the patient or "
        "correct the id"
    )
    assert "(did you mean 'P005'?)" in reasons[(visits, first_unknown + 1)]
    assert reasons[(visits, row["unknown_exercise"][1])].startswith(
        "exercise 'Plnak' is not in the catalogue (closest: side_plank, front_plank)"
    )
    assert (
        "'31/02/2024' is not a date in the form %d/%m/%Y" in reasons[(visits, row["bad_date"][1])]
    )
    seven = reasons[("clinic_export.xlsx[Outcomes]", row["no_pattern_match"][1])]
    assert seven.startswith("score 'seven' (column 'Result') does not match the pattern '^")
    assert "[sources.outcomes].score.extract" in seven and "not a number" not in seven
    aside = pd.read_csv(out / "quarantine" / "source_rows.csv")
    footers = aside[aside["reason_code"] == "footer_row"]
    assert sorted(f.split("[")[1] for f in footers["_source_file"]) == [
        "Outcomes]",
        "Patients]",
        "Prescriptions]",
        "Visits]",
    ]
    assert footers["text"].str.startswith("Exported by").all()


def test_workbook_minutes_are_imputed_and_flagged(export, ingested):
    _, stdout, _, out = ingested
    s = pd.read_csv(out / "sessions.csv")
    strength = s["category"] == "core_strengthening"
    assert int(s["duration_imputed"].sum()) == export.strength_rows == int(strength.sum())
    assert (s["duration_imputed"] == strength).all()
    assert set(s.loc[strength, "duration_min"]) == {3.0}  # front plank and glute bridge defaults
    assert s["duration_min"].notna().all() and s["hold_s"].isna().all()  # empty column accepted
    meta = json.loads((out / "cohort.json").read_text())["ingest"]
    counts = meta["imputed"]["sessions.duration_min"]
    assert counts == {"rows": len(s), "imputed": export.strength_rows, "still_missing": 0}
    assert f"session minutes: {export.strength_rows} of {len(s)} imputed" in stdout


def test_workbook_program_instruments_and_followup(export, ingested):
    out = ingested[3]
    p = pd.read_csv(out / "patients.csv")
    assert (p["guided_weeks"] == GUIDED_WEEKS).all() and (
        p["followup_weeks"] == FOLLOWUP_WEEKS
    ).all()
    assert p["age"].isna().sum() == 1 and set(p["sex"]) == {"female", "male"}
    o = pd.read_csv(out / "outcomes.csv", parse_dates=["assessed_on"])
    assert set(o["instrument"]) == {"NPRS", "ODI"}  # nprs, Nprs, odi -> canonical names
    assert o.loc[o["instrument"] == "NPRS", "score"].between(0, 10).all()
    start = p.set_index("patient_id")["enrolled_on"].map(pd.Timestamp)
    weeks = (o["assessed_on"] - o["patient_id"].map(start)).dt.days // 7
    followed = o.loc[weeks == FOLLOWUP_WEEKS, "patient_id"].nunique()
    assert 0 < followed < len(p)  # follow-up missing for some patients
    rx = pd.read_csv(out / "prescriptions.csv")
    assert set(rx["exercise"]) <= {"front_plank", "glute_bridge", "bird_dog", "hamstring_stretch",
                                   "brisk_walking"}  # fmt: skip


def test_check_is_a_dry_run_that_writes_nothing(export, tmp_path, capsys):
    out = tmp_path / "never"
    args = ["ingest", str(export.workbook), "--mapping", str(export.mapping), "--today", TODAY]
    assert main([*args, "--check", "--out", str(out)]) == 0
    assert not out.exists() and list(tmp_path.iterdir()) == []
    text = capsys.readouterr().out
    assert text.startswith("dry run (--check): nothing is written")
    visits = export.sheets["Visits"]
    used = visits["rows"] - visits["blank"] - visits["footer"]
    assert (
        f"clinic_export.xlsx[Visits]: {visits['rows']} rows read = {used} used + "
        f"{visits['blank'] + visits['footer']} set aside"
    ) in text
    assert "maps sessions: patient_id <- 'Pt ID', performed_on <- 'Date of visit'" in text
    assert "exercise <- 'Übung'" in text
    assert (
        "would be sessions quarantined: 5 (bad_date 1, before_enrolment 1, unknown_exercise 1, "
        "unknown_patient 2)"
    ) in text
    assert "would be set aside: 8 (blank_row 7, footer_row 1)" in text
    assert "would be outcomes quarantined: 3" in text
    assert text.rstrip().splitlines()[-1].startswith("checked, nothing written: ")
    assert "P0" not in text
    assert main([*args, "--check"]) == 0  # --out is not needed


def test_out_is_required_without_check(export, capsys):
    assert main(["ingest", str(export.workbook), "--mapping", str(export.mapping)]) == 2
    assert "--out is missing" in capsys.readouterr().err


def test_a_source_that_matches_no_sheet_or_file_is_an_error(export, tmp_path, capsys):
    extra = '\n[[sources]]\nmatch = "clinic_export.xlsx"\nsheet = "Visits 2023"\n' + (
        '  [sources.cointerventions]\n  patient_id = "Pt ID"\n  kind = "Kind"\n'
        '  start_on = "From"\n  end_on = "To"\n'
    )
    out = tmp_path / "c"
    assert main([*_mapping(export, tmp_path, MAPPING + extra), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "has no sheet 'Visits 2023'. Did you mean 'Visits'?" in err and not out.exists()
    extra = '\n[[sources]]\nmatch = "visits_*.csv"\n  [sources.outcomes]\n  patient_id = "id"\n'
    assert main([*_mapping(export, tmp_path, MAPPING + extra), "--check"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "sources[4] (match = 'visits_*.csv') matches no file or sheet given (files: " in err
    assert "clinic_export.xlsx)" in err


def test_an_entry_shadowed_by_another_is_an_error(export, tmp_path, capsys):
    # Four entries for one workbook without 'sheet': only the first could ever be used.
    text = "\n".join(ln for ln in MAPPING.splitlines() if not ln.startswith("sheet = "))
    assert main([*_mapping(export, tmp_path, text), "--check"]) == 2
    err = capsys.readouterr().err
    assert (
        "sources[1] (match = 'clinic_export.xlsx') matches clinic_export.xlsx but is never used: "
        "sources[0] (match = 'clinic_export.xlsx') reads it"
    ) in err
    assert "Fix: give this entry a 'sheet'" in err


def test_a_table_emptied_by_quarantine_is_loud(export, tmp_path, capsys):
    # Without date_formats every dd/mm/yyyy visit date is quarantined.
    text = MAPPING.replace('sheet = "Visits"\ndate_formats = ["%d/%m/%Y"]', 'sheet = "Visits"')
    assert text != MAPPING
    out = tmp_path / "c"
    assert main([*_mapping(export, tmp_path, text), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "ptanalytics ingest: WARNING: TABLE EMPTIED: every one of the" in captured.err
    assert "'sessions' record(s) was quarantined (by reason: bad_date" in captured.err
    assert "Fix: declare the source's date format in the mapping (date_formats" in captured.err
    last = captured.out.strip().splitlines()[-1]
    assert "WARNING: every record of sessions was quarantined (it is empty)" in last
    meta = json.loads((out / "cohort.json").read_text())["ingest"]
    assert meta["emptied_tables"] == ["sessions"]


def test_workbook_without_mapping_reads_sheets_named_after_tables(tmp_path):
    book = tmp_path / "export.xlsx"
    with pd.ExcelWriter(book) as xl:
        pd.DataFrame({"patient_id": ["P1", "P2"], "enrolled_on": ["2024-01-08"] * 2}).to_excel(
            xl, sheet_name="patients", index=False
        )
        pd.DataFrame(
            {
                "patient_id": ["P1", "P2"],
                "assessed_on": ["2024-01-08"] * 2,
                "instrument": ["nprs", "Nprs"],
                "score": ["7", "5"],
            }
        ).to_excel(xl, sheet_name="Outcomes", index=False)
        pd.DataFrame({"notes": ["x"]}).to_excel(xl, sheet_name="Notes", index=False)
    r = ingest([book], today=DAY)
    assert list(r.sources["sheet"]) == ["patients", "Outcomes"]
    assert list(r.cohort.outcomes["instrument"]) == ["NPRS", "NPRS"]


# --------------------------------------------------------------------------- smaller gaps
def _csv(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_all_empty_optional_numeric_columns_are_missing(tmp_path):
    p = _csv(
        tmp_path / "patients.csv", "patient_id,enrolled_on,age\nP1,2024-01-08,\nP2,2024-01-09,\n"
    )
    s = _csv(
        tmp_path / "sessions.csv",
        "patient_id,performed_on,phase,exercise,supervised,sets,duration_min\n"
        "P1,2024-01-10,guided,bird_dog,true,,\nP2,2024-01-10,guided,brisk_walking,false,,\n",
    )
    r = ingest([p, s], today=DAY)
    assert r.cohort.patients["age"].isna().all() and str(r.cohort.patients["age"].dtype) == "Int64"
    assert r.cohort.sessions["sets"].isna().all()
    assert list(r.cohort.sessions["duration_min"]) == [6.0, 20.0]  # catalogue defaults
    assert list(r.cohort.sessions["duration_imputed"]) == [True, True]
    assert r.tables["quarantined"].sum() == 0


def test_logged_minutes_are_kept_and_missing_defaults_stay_missing(monkeypatch):
    sessions = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P1"],
            "exercise": ["bird_dog", "bird_dog", "front_plank"],
            "duration_min": [4.5, None, None],
        }
    )
    before = sessions.copy()
    cat = exercise_catalogue()
    cat.loc[cat["exercise"] == "front_plank", "duration_min"] = float("nan")
    monkeypatch.setattr(ingestion, "exercise_catalogue", lambda: cat)
    out, counts = impute_session_minutes(sessions)
    pd.testing.assert_frame_equal(sessions, before)  # the caller's frame is not changed
    assert out["duration_min"].tolist()[:2] == [4.5, 6.0] and pd.isna(out["duration_min"].iloc[2])
    assert out["duration_imputed"].tolist() == [False, True, False]
    assert counts == {"rows": 3, "imputed": 1, "still_missing": 1}


def test_extract_a_number_from_wide_instruments(tmp_path):
    p = _csv(tmp_path / "patients.csv", "patient_id,enrolled_on\nP1,2024-01-08\nP2,2024-01-08\n")
    o = _csv(
        tmp_path / "visits.csv",
        "id,date,pain,odi\nP1,2024-01-08,7/10,15%\nP2,2024-01-08, 6 / 10 ,n/a\n"
        "P1,2024-02-08,7 of 10,22.5 %\n",
    )
    mapping = parse_mapping(
        {
            "sources": [
                {"match": "patients.csv", "patients": {"patient_id": "patient_id",
                                                       "enrolled_on": "enrolled_on"}},
                {
                    "match": "visits.csv",
                    "missing": ["n/a"],
                    "outcomes": {
                        "patient_id": "id",
                        "assessed_on": "date",
                        "instruments": {
                            "nprs": {"column": "pain", "extract": r"^(\d+)\s*/\s*10$"},
                            "Odi": {"column": "odi", "extract": r"^(\d+(?:\.\d+)?)\s*%$"},
                        },
                    },
                },
            ]
        }
    )  # fmt: skip
    r = ingest([p, o], mapping=mapping, today=DAY)
    acc = r.cohort.outcomes
    assert sorted(zip(acc["instrument"], acc["score"], strict=True)) == [
        ("NPRS", 6.0),
        ("NPRS", 7.0),
        ("ODI", 15.0),
        ("ODI", 22.5),
    ]
    q = r.cohort.quarantine["outcomes"]
    assert list(q["_source_row"]) == [4] and list(q["reason_code"]) == ["no_pattern_match"]
    assert q.loc[0, "reason"] == (
        "score '7 of 10' (column 'pain') does not match the pattern '^(\\d+)\\s*/\\s*10$'; fix: "
        "correct the value, or the pattern ([sources.outcomes].instruments.nprs.extract in the "
        "mapping)"
    )
    t = r.tables.set_index("table").loc["outcomes"]
    assert (t.records, t.accepted, t.quarantined) == (5, 4, 1)


def test_near_match_ids_are_suggested_but_never_printed(tmp_path, capsys):
    p = _csv(
        tmp_path / "patients.csv", "patient_id,enrolled_on\nAB-01,2024-01-08\nab-02,2024-01-08\n"
    )
    o = _csv(
        tmp_path / "outcomes.csv",
        "patient_id,assessed_on,instrument,score\nab-01,2024-01-09,NPRS,5\n"
        "AB - 02,2024-01-09,NPRS,5\nZZ-9,2024-01-09,NPRS,5\n",
    )
    out = tmp_path / "c"
    args = ["ingest", str(p), str(o), "--out", str(out), "--today", TODAY, "--format", "csv"]
    assert main(args) == 0
    text = capsys.readouterr()
    for pid in ("AB-01", "ab-01", "ab-02", "AB - 02", "ZZ-9"):
        assert pid not in text.out and pid not in text.err
    assert "outcomes: 2 record(s) name a patient id that matches one in patients" in text.out
    q = pd.read_csv(out / "quarantine" / "outcomes.csv")
    assert [r.split(";")[0] for r in q["reason"]] == [
        "patient_id 'ab-01' is not in patients (did you mean 'AB-01'?)",
        "patient_id 'AB - 02' is not in patients (did you mean 'ab-02'?)",
        "patient_id 'ZZ-9' is not in patients",
    ]


def test_sheet_on_a_csv_and_unknown_sheet_number(tmp_path, export):
    p = _csv(tmp_path / "patients.csv", "patient_id,enrolled_on\nP1,2024-01-08\n")
    m = parse_mapping(
        {"sources": [{"match": "*.csv", "sheet": "Patients", "patients": {"patient_id": "x"}}]}
    )
    with pytest.raises(MappingError, match=r"names a sheet, but patients\.csv is not an Excel"):
        ingest([p], mapping=m, today=DAY)
    m = parse_mapping(
        {"sources": [{"match": "*.xlsx", "sheet": 7, "patients": {"patient_id": "Pt ID"}}]}
    )
    with pytest.raises(IngestError, match=r"has no sheet number 7 \(sheets, from 0: \['Patients'"):
        ingest([export.workbook], mapping=m, today=DAY)
