"""find_table: the one place that says where a cohort folder's table is, and its callers."""

import datetime as dt
import json
import re
import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest

import ptanalytics as pt
from ptanalytics.cohort.io import TableLocation, find_table
from ptanalytics.exceptions import CohortFormatError
from ptanalytics.ingestion.pipeline import validate_cohort_dir
from ptanalytics.metrics.sql import patient_weeks_sql
from ptanalytics.privacy.deidentification import _file_format

N, CHUNK, SEED = 30, 10, 4


@pytest.fixture(scope="module")
def parted(tmp_path_factory):
    """simulate_to_disk's layout: every table a folder of three Parquet parts."""
    return pt.simulate_to_disk(
        tmp_path_factory.mktemp("disk") / "c", N, seed=SEED, chunk_patients=CHUNK
    )


@pytest.fixture(scope="module")
def small():
    return pt.simulate_cohort(12, seed=SEED)


def _frame(n=3):
    return pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)], "x": range(n)})


# ------------------------------------------------------------------------------ layouts
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_one_file_per_table(small, tmp_path, fmt):
    folder = small.write(tmp_path / "c", format=fmt)
    found = find_table(folder, "sessions")
    assert found == TableLocation("sessions", folder / f"sessions.{fmt}", fmt, (found.path,))
    assert not found.in_parts
    assert find_table(str(folder), "sessions") == found  # a str folder is fine


def test_folder_of_parts_in_part_order(tmp_path):
    folder = tmp_path / "c"
    (folder / "sessions").mkdir(parents=True)
    for name in ("part-00010.parquet", "part-00009.parquet", "part-100000.parquet"):
        _frame().to_parquet(folder / "sessions" / name)
    (folder / "sessions" / "notes.txt").write_text("not a part")
    found = find_table(folder, "sessions")
    assert found.format == "parquet" and found.in_parts and found.path == folder / "sessions"
    assert [p.name for p in found.files] == [
        "part-00009.parquet",
        "part-00010.parquet",
        "part-100000.parquet",
    ]


def test_simulate_to_disk_layout(parted):
    for name in (*pt.cohort.TABLE_NAMES, "truth_patients"):
        found = find_table(parted, name)
        assert found.in_parts and len(found.files) == 3, name


def test_missing_table_is_none_unless_cohort_json_lists_rows(tmp_path):
    assert find_table(tmp_path, "sessions") is None
    assert find_table(tmp_path / "no such folder", "sessions") is None
    (tmp_path / "sessions").write_text("a file without a suffix is not a table")
    assert find_table(tmp_path, "sessions") is None
    with pytest.raises(
        CohortFormatError,
        match=r"lists 7 rows of 'outcomes' but there is no outcomes\.parquet, outcomes\.csv "
        r"or outcomes/ folder of parts\. Fix: restore it",
    ):
        find_table(tmp_path, "outcomes", rows=7)


def test_empty_folder_of_parts(tmp_path):
    (tmp_path / "sessions").mkdir()
    (tmp_path / "sessions" / "part-00000.csv").write_text("patient_id\nP1\n")
    with pytest.raises(
        CohortFormatError, match=r"sessions: the folder of table 'sessions' holds no \.parquet"
    ):
        find_table(tmp_path, "sessions")


# ------------------------------------------------------------------------------ ambiguity
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("patients.parquet", "patients.csv"),
        ("patients.parquet", "patients/"),
        ("patients.csv", "patients/"),
    ],
)
def test_a_table_stored_twice_is_refused(tmp_path, first, second):
    for entry in (first, second):
        if entry.endswith("/"):
            (tmp_path / entry).mkdir()
            _frame().to_parquet(tmp_path / entry / "part-00000.parquet")
        else:
            (tmp_path / entry).write_bytes(b"")
    second = second.rstrip("/")
    match = rf"both {re.escape(first)} and {re.escape(second)} exist\. Fix: "
    with pytest.raises(CohortFormatError, match=match):
        find_table(tmp_path, "patients")


def test_every_caller_refuses_a_table_stored_twice(small, tmp_path):
    folder = small.write(tmp_path / "c", format="csv")
    shutil.copy(folder / "sessions.csv", folder / "sessions.parquet")
    match = r"both sessions\.parquet and sessions\.csv exist"
    with pytest.raises(CohortFormatError, match=match):
        pt.load_cohort(folder)
    with pytest.raises(CohortFormatError, match=match):
        patient_weeks_sql(folder)
    with pytest.raises(CohortFormatError, match=match):
        validate_cohort_dir(folder)


# ------------------------------------------------------------------------------ hostile names
@pytest.mark.parametrize("name", ["", ".", "..", "../patients", "a/b", "a\\b", "pat\0ients", 3])
def test_a_table_name_is_never_a_path(tmp_path, name):
    with pytest.raises(ValueError, match=r"name=.*; allowed: a table name such as 'sessions'"):
        find_table(tmp_path, name)


@pytest.mark.parametrize("folder_name", ["with space", "quote'd", "glob[x]*?", "ünïcødé", "-dash"])
def test_hostile_folder_names_are_literal(small, tmp_path, folder_name):
    folder = small.write(tmp_path / folder_name / "c", format="csv")
    assert find_table(folder, "patients").path == folder / "patients.csv"
    (folder / "sessions.csv").unlink()
    (folder / "sessions").mkdir()
    small.sessions.to_parquet(folder / "sessions" / "part-'0.parquet")
    assert find_table(folder, "sessions").files == (folder / "sessions" / "part-'0.parquet",)
    assert len(pt.load_cohort(folder).sessions) == len(small.sessions)
    sql = patient_weeks_sql(folder)
    assert sql.equals(patient_weeks_sql(small.write(tmp_path / "plain", format="csv")))


def test_glob_characters_in_a_table_name_match_only_themselves(tmp_path):
    (tmp_path / "patients.parquet").write_bytes(b"")
    assert find_table(tmp_path, "pat*") is None
    assert find_table(tmp_path, "patient?") is None


# ------------------------------------------------------------------------------ callers
def test_deidentify_keeps_the_format_of_the_patients_table(small, tmp_path):
    for fmt in ("csv", "parquet"):
        folder = small.write(tmp_path / fmt, format=fmt)
        cohort = pt.load_cohort(folder)
        cohort.metadata.pop("file_format")
        assert _file_format(folder, cohort) == fmt
    cohort.metadata["file_format"] = "csv"
    assert _file_format(tmp_path / "parquet", cohort) == "csv"  # cohort.json decides first


def test_sql_reads_parts_like_load_cohort(parted):
    expected = pt.patient_weeks(pt.load_cohort(parted))
    pd.testing.assert_frame_equal(patient_weeks_sql(parted), expected, check_exact=False)


def test_validate_reads_every_part_of_a_simulate_to_disk_folder(parted, tmp_path):
    folder = tmp_path / "c"
    shutil.copytree(parted, folder)
    part = folder / "outcomes" / "part-00001.parquet"
    outcomes = pq.read_table(part).to_pandas()
    nprs = outcomes.index[outcomes["instrument"] == "NPRS"][0]
    outcomes.loc[nprs, "score"] = 99.0  # out of NPRS's 0-10: quarantined
    outcomes.to_parquet(part, index=False)
    result = validate_cohort_dir(folder, today=dt.date(2040, 1, 1))
    counts = json.loads((folder / "cohort.json").read_text())["row_counts"]
    read = result.sources.groupby("tables")["rows_read"].sum()
    assert len(result.sources) == 3 * len(counts)  # one source per part of every table
    tables = result.tables.set_index("table")
    for name, n in counts.items():
        assert read[name] == n == tables.loc[name, "accepted"] + tables.loc[name, "quarantined"]
    assert tables.loc["outcomes", "quarantined"] == 1 and result.quarantined == 1
    assert sum(counts.values()) == tables["accepted"].sum() + result.quarantined
