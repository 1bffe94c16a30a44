"""CSV injection (issue 12, deliverable 5; OWASP CSV-injection guidance): every CSV ptanalytics
writes neutralises text cells that a spreadsheet would run as a formula; numbers stay numbers and
our own CSVs read back exactly."""

import csv
import json
import re
from pathlib import Path

import pandas as pd
import pytest

import ptanalytics as pt
from ptanalytics.cohort.io import safe_csv
from ptanalytics.ingestion.pipeline import ingest

SRC = Path(pt.__file__).parent
HOSTILE = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "'=quoted"]
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def dangerous_cells(path: Path) -> list[str]:
    """Cells a spreadsheet would take as a formula: a trigger start that is not a plain number."""
    found = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            for cell in row:
                if cell.startswith(TRIGGERS) and not re.fullmatch(r"[-+]?\d+(\.\d+)?", cell):
                    found.append(cell)
    return found


@pytest.fixture
def hostile():
    cohort = pt.simulate_cohort(12, seed=1)
    pts = cohort.patients.copy()
    n = len(pts)
    pts["arm"] = [HOSTILE[i % len(HOSTILE)] for i in range(n)]
    pts["note"] = pd.array(["-3"] * n, dtype="str")  # text that looks like a number
    pts["delta"] = -3  # a number
    pts.loc[0, "clinic_id"] = "=cmd|' /C calc'!A0"
    cohort.patients = pts
    cohort.quarantine = {
        "outcomes": pd.DataFrame({"score": ["=1+1", "-5", "ok"], "=header": ["a", "b", "@c"]})
    }
    return cohort


def test_safe_csv_prefixes_text_only_and_leaves_the_callers_frame(hostile):
    df = pd.DataFrame(
        {"t": pd.array(["=1", "-3", "ok", None], dtype="str"), "n": [-3, 1, 2, 3], "x": 1.5}
    )
    out = safe_csv(df)
    assert out["t"].tolist()[:3] == ["'=1", "'-3", "ok"] and pd.isna(out["t"].iloc[3])
    assert out["n"].tolist() == [-3, 1, 2, 3] and out["n"].dtype == df["n"].dtype
    assert df["t"].tolist()[:3] == ["=1", "-3", "ok"]  # not mutated
    cat = pd.DataFrame({"c": pd.Categorical(["-x", "y"])})
    assert safe_csv(cat)["c"].tolist() == ["'-x", "y"]
    assert list(safe_csv(pd.DataFrame({"=h": [1]})).columns) == ["'=h"]


def test_cohort_and_quarantine_csvs_hold_no_formula_and_numbers_stay(hostile, tmp_path):
    folder = hostile.write(tmp_path / "c", format="csv")
    for path in [*folder.glob("*.csv"), *folder.glob("quarantine/*.csv")]:
        assert dangerous_cells(path) == [], path.name
    with open(folder / "patients.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    text = (folder / "patients.csv").read_text()
    assert {r["delta"] for r in rows} == {"-3"}  # a number: untouched
    assert {r["note"] for r in rows} == {"'-3"}  # text "-3": prefixed (OWASP)
    assert "'=HYPERLINK" in text and "''=quoted" in text
    meta = json.loads((folder / "cohort.json").read_text())
    assert meta["csv_neutralised"] == "quote-prefix-v1"


def test_our_csvs_read_back_exactly(hostile, tmp_path):
    folder = hostile.write(tmp_path / "c", format="csv")
    back = pt.load_cohort(folder)
    assert back.patients["arm"].tolist() == hostile.patients["arm"].tolist()
    assert back.patients["note"].tolist() == ["-3"] * len(back.patients)
    assert back.patients["delta"].tolist() == [-3] * len(back.patients)
    assert back.patients.loc[0, "clinic_id"] == "=cmd|' /C calc'!A0"
    q = back.quarantine["outcomes"]
    assert list(q.columns) == ["score", "=header"]
    assert q["score"].tolist() == ["=1+1", "-5", "ok"] and q["=header"].tolist()[2] == "@c"
    # and the round trip is stable: writing the loaded cohort again gives the same bytes
    again = back.write(tmp_path / "d", format="csv")
    assert (again / "patients.csv").read_bytes() == (folder / "patients.csv").read_bytes()


def test_a_folder_written_before_neutralisation_is_read_as_it_is(hostile, tmp_path):
    folder = hostile.write(tmp_path / "c", format="csv")
    meta = json.loads((folder / "cohort.json").read_text())
    del meta["csv_neutralised"]
    (folder / "cohort.json").write_text(json.dumps(meta))
    back = pt.load_cohort(folder)
    assert back.patients.loc[0, "clinic_id"] == "'=cmd|' /C calc'!A0"  # nothing stripped


def test_parquet_cohorts_keep_values_and_their_quarantine_csv_is_neutralised(hostile, tmp_path):
    folder = hostile.write(tmp_path / "p", format="parquet")
    assert dangerous_cells(folder / "quarantine" / "outcomes.csv") == []
    back = pt.load_cohort(folder)
    assert back.patients["arm"].tolist() == hostile.patients["arm"].tolist()
    assert back.quarantine["outcomes"]["score"].tolist() == ["=1+1", "-5", "ok"]


def test_ingested_formula_cells_are_neutralised_in_cohort_and_quarantine(tmp_path):
    (tmp_path / "patients.csv").write_text(
        "patient_id,enrolled_on,clinic_id\nP1,2024-01-08,=cmd()\nP2,2024-01-09,@x\n"
    )
    (tmp_path / "outcomes.csv").write_text(
        "patient_id,assessed_on,instrument,score\n"
        "P1,2024-01-08,NPRS,7\nP1,2024-02-08,NPRS,=1+1\nP2,2024-01-09,@SUM(A1),5\n"
    )
    r = ingest(sorted(tmp_path.glob("*.csv")))
    out = r.cohort.write(tmp_path / "cohort", format="csv")
    files = [*out.glob("*.csv"), *out.glob("quarantine/*.csv")]
    assert any(f.parent.name == "quarantine" for f in files)
    for path in files:
        assert dangerous_cells(path) == [], path.name
    back = pt.load_cohort(out)
    assert set(back.patients["clinic_id"]) == {"=cmd()", "@x"}
    assert len(back.outcomes) + r.quarantined >= 3


def test_every_csv_writer_in_src_goes_through_safe_csv():
    allowed = {
        # a temporary file handed to R and deleted; neutralising would change R's input
        ("studies/lme4.py", "data.to_csv("),
        # the one cohort writer: ``safe = safe_csv(df)`` on the line above
        ("cohort/io.py", "safe.to_csv("),
    }
    offenders = []
    for path in SRC.rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if ".to_csv(" not in line or line.lstrip().startswith("#"):
                continue
            call = line.strip()
            if "safe_csv(" in call or any(
                path.relative_to(SRC).as_posix() == name and call.startswith(start)
                for name, start in allowed
            ):
                continue
            offenders.append(f"{path.relative_to(SRC)}: {call}")
    assert offenders == []
