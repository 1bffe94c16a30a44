import json

import pandas as pd
import pytest

import ptanalytics as pt
from ptanalytics.cohort.io import FORMAT_VERSION
from ptanalytics.cohort.schema import coerce_table
from ptanalytics.exceptions import CohortFormatError


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_round_trip_is_exact(small_cohort, tmp_path, fmt):
    folder = small_cohort.write(tmp_path / "c", format=fmt)
    back = pt.load_cohort(folder)
    for name, df in small_cohort.tables.items():
        pd.testing.assert_frame_equal(back.tables[name], coerce_table(name, df))
    pd.testing.assert_frame_equal(back.truth_patients, small_cohort.truth_patients)
    assert back.truth == json.loads(json.dumps(small_cohort.truth))
    meta = json.loads((folder / "cohort.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["file_format"] == fmt
    assert meta["source"] == "simulated"
    assert meta["seed"] == 7
    assert meta["row_counts"] == small_cohort.row_counts()


def test_write_refuses_to_clobber_and_overwrites_on_request(small_cohort, tmp_path):
    dest = tmp_path / "c"
    small_cohort.write(dest, format="csv")
    with pytest.raises(CohortFormatError, match="folder exists and is not empty"):
        small_cohort.write(dest, format="csv")
    small_cohort.write(dest, format="parquet", overwrite=True)
    assert not list(dest.glob("*.csv"))
    assert pt.load_cohort(dest).row_counts() == small_cohort.row_counts()


def test_failed_write_leaves_nothing_behind(small_cohort, tmp_path):
    bad = pt.Cohort(patients=small_cohort.patients, outcomes=pd.DataFrame({"patient_id": ["P1"]}))
    with pytest.raises(CohortFormatError, match="lacks required column"):
        bad.write(tmp_path / "c", format="csv")
    assert list(tmp_path.iterdir()) == []


def test_outcomes_only_cohort_is_valid(tmp_path):
    outcomes = pd.DataFrame(
        {
            "patient_id": ["A", "A", "B"],
            "assessed_on": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-01-05"]),
            "instrument": ["NPRS"] * 3,
            "score": [7.0, 4.0, 6.0],
        }
    )
    patients = pd.DataFrame(
        {
            "patient_id": ["A", "B"],
            "enrolled_on": pd.to_datetime(["2024-01-01", "2024-01-05"]),
            "arm": ["PRT", "usual care"],
        }
    )
    folder = pt.Cohort(patients=patients, outcomes=outcomes, metadata={"source": "test"}).write(
        tmp_path / "c", format="csv"
    )
    for table in ("sessions", "prescriptions", "cointerventions"):
        (folder / f"{table}.csv").unlink()
    back = pt.load_cohort(folder)
    assert len(back.sessions) == 0
    assert list(back.sessions.columns)[:3] == ["patient_id", "performed_on", "phase"]
    assert list(back.patients["arm"]) == ["PRT", "usual care"]


def test_load_errors_name_the_problem_and_fix(small_cohort, tmp_path):
    with pytest.raises(CohortFormatError, match=r"not a cohort folder \(no cohort\.json\)"):
        pt.load_cohort(tmp_path)
    folder = small_cohort.write(tmp_path / "c", format="csv")
    sessions = folder / "sessions.csv"
    lines = sessions.read_text().splitlines()
    sessions.write_text("\n".join(lines[:-5]) + "\n")
    with pytest.raises(
        CohortFormatError,
        match=r"sessions\.csv: has \d+ rows but cohort\.json "
        r"lists \d+.*truncated",
    ):
        pt.load_cohort(folder)
    sessions.unlink()
    with pytest.raises(CohortFormatError, match=r"lists \d+ rows of 'sessions' but there is no"):
        pt.load_cohort(folder)
    (folder / "patients.parquet").write_bytes(b"")
    with pytest.raises(CohortFormatError, match=r"both patients\.parquet and patients\.csv exist"):
        pt.load_cohort(folder)


def test_wrong_format_version(small_cohort, tmp_path):
    folder = small_cohort.write(tmp_path / "c", format="csv")
    meta = json.loads((folder / "cohort.json").read_text())
    meta["format_version"] = 99
    (folder / "cohort.json").write_text(json.dumps(meta))
    with pytest.raises(CohortFormatError, match="format_version 99 is not supported"):
        pt.load_cohort(folder)


def test_unknown_write_format(small_cohort, tmp_path):
    with pytest.raises(CohortFormatError, match="format='xlsx' is not supported"):
        small_cohort.write(tmp_path / "c", format="xlsx")
