"""The DuckDB path (ptanalytics.metrics.sql) gives the frame of patient_weeks, row for row."""

import re

import pandas as pd
import pyarrow.parquet as pq
import pytest

import ptanalytics as pt
from ptanalytics.metrics import patient_weeks
from ptanalytics.metrics.sql import DIALECTS, patient_weeks_query, patient_weeks_sql

D = pd.Timestamp
OPTIONS = [
    {},
    {"dropout_rule": "missed_supervised"},
    {"min_exercises": 3, "truncate_at_dropout": False},
    {"inactivity_days": 7, "truncate_at_dropout": False},
    {"dropout_rule": "missed_supervised", "missed_sessions": 2, "min_exercises": 2},
]


def _ids(options: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in options.items()) or "defaults"


def assert_same(expected: pd.DataFrame, got: pd.DataFrame) -> None:
    """Identical columns, dtypes, order and integers; floats equal up to summation order."""
    pd.testing.assert_frame_equal(expected, got, check_exact=False, rtol=1e-12, atol=1e-12)


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    """Two simulated cohorts, each written as Parquet and as CSV."""
    root = tmp_path_factory.mktemp("columnar")
    out = {}
    for n, seed in ((150, 1), (400, 2)):
        cohort = pt.simulate_cohort(n, seed=seed)
        for fmt in ("parquet", "csv"):
            out[(seed, fmt)] = cohort.write(root / f"c{seed}-{fmt}", format=fmt)
    return out


@pytest.mark.parametrize("options", OPTIONS, ids=_ids)
@pytest.mark.parametrize("key", [(1, "parquet"), (1, "csv"), (2, "parquet"), (2, "csv")])
def test_same_frame_as_pandas(cohorts, key, options):
    folder = cohorts[key]
    assert_same(
        patient_weeks(pt.load_cohort(folder), **options), patient_weeks_sql(folder, **options)
    )


@pytest.fixture
def odd():
    """Hand-made corner cases, each a patient:

    A: prescriptions starting mid-week (fractional sessions), a session before enrolment and one
       after the follow-up, two assessments in one week; B: no followup_weeks (horizon from the
       prescriptions), a day with two exercises; C: no prescriptions, no sessions, outcomes only
       (horizon 0 because the cohort has prescriptions); E: nothing at all; F: no followup_weeks,
       sessions but no prescriptions.
    """
    patients = pd.DataFrame(
        {
            "patient_id": ["B", "A", "C", "E", "F"],  # not sorted: the file order is kept
            "enrolled_on": [D("2024-01-08"), D("2024-01-01"), D("2024-02-01")]
            + [D("2024-03-01")] * 2,
            "followup_weeks": pd.array([None, 3, None, 2, None], dtype="Int64"),
        }
    )
    rx = pd.DataFrame(
        {
            "patient_id": ["A", "A", "A", "B", "B"],
            "phase": ["guided", "guided", "maintenance", "guided", "maintenance"],
            "exercise": ["cat_cow", "curl_up", "cat_cow", "cat_cow", "cat_cow"],
            "category": [
                "flexibility",
                "core_strengthening",
                "flexibility",
                "flexibility",
                "flexibility",
            ],
            "sessions_per_week": [3, 2, 2, 2, 1],
            "supervised_per_week": [2, 1, 0, 1, 0],
            "sets": pd.array([2, None, 1, 1, 1], dtype="Int64"),
            "start_on": [
                D("2024-01-03"),
                D("2024-01-03"),
                D("2024-01-12"),
                D("2024-01-08"),
                D("2024-01-22"),
            ],
            "end_on": [
                D("2024-01-11"),
                D("2024-01-11"),
                D("2024-01-19"),
                D("2024-01-21"),
                D("2024-02-01"),
            ],
        }
    )
    day = [D("2023-12-30"), D("2024-01-03"), D("2024-01-10"), D("2024-02-20"), D("2024-01-09")]
    sessions = pd.DataFrame(
        {
            "patient_id": ["A", "A", "A", "A", "B", "B", "F"],
            "performed_on": [*day, D("2024-01-09"), D("2024-03-02")],
            "phase": ["guided"] * 7,
            "exercise": ["cat_cow"] * 5 + ["curl_up", "brisk_walking"],
            "category": ["flexibility"] * 5 + ["core_strengthening", "aerobic"],
            "supervised": [True, True, False, False, True, False, False],
            "sets": pd.array([1, 2, None, 1, 1, 3, 1], dtype="Int64"),
            "reps": [10] * 7,
            "hold_s": [0] * 7,
            "duration_min": [1.5, 2.0, None, 4.0, 1.5, 5.0, 20.0],
        }
    )
    outcomes = pd.DataFrame(
        {
            "patient_id": ["A", "A", "A", "A", "C", "C", "B"],
            "assessed_on": [
                D("2023-12-25"),
                D("2024-01-15"),
                D("2024-01-17"),
                D("2024-01-22"),
                D("2024-02-01"),
                D("2024-03-20"),
                D("2024-01-08"),
            ],
            "instrument": ["NPRS", "NPRS", "NPRS", "ODI", "NPRS", "NPRS", "NPRS"],
            "score": [7.0, 4.0, 3.0, 30.0, 5.0, 2.0, 8.0],
        }
    )
    return pt.Cohort(patients=patients, prescriptions=rx, sessions=sessions, outcomes=outcomes)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("options", OPTIONS, ids=_ids)
def test_corner_cases(odd, tmp_path, fmt, options):
    folder = odd.write(tmp_path / "odd", format=fmt)
    expected = patient_weeks(pt.load_cohort(folder), **options)
    got = patient_weeks_sql(folder, **options)
    assert_same(expected, got)
    assert list(got["patient_id"].unique()) == ["B", "A", "C", "E", "F"]
    a = got[got["patient_id"] == "A"].set_index("week")
    assert a.loc[0, "sessions_prescribed"] == pytest.approx(3 * 5 / 7)  # max(3, 2) x days 2-6


def test_patients_without_sessions(tmp_path):
    cohort = pt.simulate_cohort(120, seed=5)
    idle = set(cohort.patients["patient_id"].iloc[::3])
    cohort.sessions = cohort.sessions[~cohort.sessions["patient_id"].isin(idle)]
    folder = cohort.write(tmp_path / "idle")
    got = patient_weeks_sql(folder)
    assert_same(patient_weeks(pt.load_cohort(folder)), got)
    assert got.loc[got["patient_id"].isin(idle), "sessions_completed"].eq(0).all()


def test_sessions_without_prescriptions(tmp_path):
    cohort = pt.simulate_cohort(80, seed=6)
    cohort.prescriptions = cohort.prescriptions.iloc[:0]
    folder = cohort.write(tmp_path / "norx")
    for options in OPTIONS:
        assert_same(
            patient_weeks(pt.load_cohort(folder), **options), patient_weeks_sql(folder, **options)
        )


def test_outcomes_only_cohort(tmp_path):
    cohort = pt.simulate_cohort(60, seed=8)
    only = pt.Cohort(patients=cohort.patients, outcomes=cohort.outcomes)
    folder = only.write(tmp_path / "outcomes-only", format="csv")
    (folder / "sessions.csv").unlink()  # absent tables are empty, as for load_cohort
    (folder / "prescriptions.csv").unlink()
    got = patient_weeks_sql(folder)
    assert list(got.columns) == ["patient_id", "week", "nprs"]
    assert_same(patient_weeks(pt.load_cohort(folder)), got)


def test_without_followup_weeks_column(tmp_path):
    """Without the column, horizons come from the prescriptions (as documented), in both paths."""
    cohort = pt.simulate_cohort(40, seed=9)
    full = patient_weeks(cohort)
    cohort.patients = cohort.patients.drop(columns="followup_weeks")
    folder = cohort.write(tmp_path / "nofw")
    got = patient_weeks_sql(folder)
    assert_same(patient_weeks(pt.load_cohort(folder)), got)
    # The simulator's prescriptions end with the follow-up: the same weeks as with the column.
    last = got.groupby("patient_id", observed=True)["week"].max()
    assert (last == full.groupby("patient_id", observed=True)["week"].max()).all()
    assert last.max() == 26


def _partition(folder, table, parts):
    frame = pq.read_table(folder / f"{table}.parquet")
    (folder / table).mkdir()
    step = -(-frame.num_rows // parts)
    for i in range(parts):
        pq.write_table(frame.slice(i * step, step), folder / table / f"part-{i:05d}.parquet")
    (folder / f"{table}.parquet").unlink()


def test_partitioned_tables(cohorts, tmp_path):
    cohort = pt.simulate_cohort(150, seed=1)
    folder = cohort.write(tmp_path / "parts")
    _partition(folder, "sessions", 3)
    _partition(folder, "patients", 2)  # the patients' order across parts is kept
    assert len(list((folder / "sessions").glob("*.parquet"))) == 3
    for options in OPTIONS[:2]:
        assert_same(patient_weeks(cohort, **options), patient_weeks_sql(folder, **options))


def test_out_writes_parquet(cohorts, tmp_path):
    folder = cohorts[(1, "parquet")]
    target = tmp_path / "weeks.parquet"
    assert patient_weeks_sql(folder, out=target, memory_limit="256MB", threads=1) == target
    back = pd.read_parquet(target)
    expected = patient_weeks(pt.load_cohort(folder))
    assert list(back.columns) == list(expected.columns)
    back["patient_id"] = back["patient_id"].astype("string")
    back["phase"] = pd.Categorical(back["phase"], categories=expected["phase"].cat.categories)
    assert_same(expected, back)


def test_spill_directory_and_small_memory(cohorts, tmp_path):
    folder = cohorts[(2, "parquet")]
    got = patient_weeks_sql(
        folder, memory_limit="64MB", threads=1, temp_directory=tmp_path / "spill"
    )
    assert_same(patient_weeks(pt.load_cohort(folder)), got)


# ------------------------------------------------------------------------------------ errors
def test_missing_folder(tmp_path):
    with pytest.raises(pt.CohortFormatError, match=r"nowhere: no such cohort folder\. Fix: pass"):
        patient_weeks_sql(tmp_path / "nowhere")


def test_missing_patients_table(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(pt.CohortFormatError, match=r"empty: no patients table .*Fix: restore"):
        patient_weeks_sql(tmp_path / "empty")


def test_missing_table_listed_in_cohort_json(odd, tmp_path):
    folder = odd.write(tmp_path / "gone")
    (folder / "sessions.parquet").unlink()
    with pytest.raises(
        pt.CohortFormatError, match=r"lists 7 rows of 'sessions' but there is no sessions\.parquet"
    ):
        patient_weeks_sql(folder)


def test_table_twice(odd, tmp_path):
    folder = odd.write(tmp_path / "twice")
    (folder / "sessions").mkdir()
    with pytest.raises(pt.CohortFormatError, match=r"both sessions\.parquet and sessions exist"):
        patient_weeks_sql(folder)


def test_parts_folder_without_parts(odd, tmp_path):
    folder = odd.write(tmp_path / "noparts")
    (folder / "sessions.parquet").unlink()
    (folder / "sessions").mkdir()
    with pytest.raises(
        pt.CohortFormatError,
        match=r"sessions: the folder of table 'sessions' holds no \.parquet parts",
    ):
        patient_weeks_sql(folder)


def test_missing_required_column(odd, tmp_path):
    folder = odd.write(tmp_path / "nocol", format="csv")
    frame = pd.read_csv(folder / "sessions.csv").drop(columns="supervised")
    frame.to_csv(folder / "sessions.csv", index=False)
    with pytest.raises(
        pt.CohortFormatError, match=r"sessions\.csv: table 'sessions' lacks .*'supervised'"
    ):
        patient_weeks_sql(folder)


def test_optional_columns_may_be_absent(odd, tmp_path):
    folder = odd.write(tmp_path / "optional", format="csv")
    for table, cols in (
        ("sessions", ["sets", "duration_min"]),
        ("prescriptions", ["sets", "supervised_per_week"]),
    ):
        frame = pd.read_csv(folder / f"{table}.csv").drop(columns=cols)
        frame.to_csv(folder / f"{table}.csv", index=False)
    assert_same(patient_weeks(pt.load_cohort(folder)), patient_weeks_sql(folder))


def test_orphan_records(odd, tmp_path):
    odd.sessions.loc[0, "patient_id"] = "Z"
    folder = odd.write(tmp_path / "orphan")
    with pytest.raises(
        pt.ConfigError, match=r"missing from the patients table \(sessions: 1 ids, e\.g\. 'Z'\)"
    ):
        patient_weeks_sql(folder)


def test_duplicate_patients(odd, tmp_path):
    odd.patients.loc[1, "patient_id"] = "B"
    folder = odd.write(tmp_path / "dup")
    with pytest.raises(pt.ConfigError, match=r"patients\.patient_id has duplicates"):
        patient_weeks_sql(folder)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_exercises": 0}, r"min_exercises=0; allowed: a whole number >= 1"),
        ({"dropout_rule": "silence"}, r"dropout_rule='silence' is not known"),
        ({"missed_sessions": 0}, r"missed_sessions=0 is not supported by the SQL path"),
        ({"inactivity_days": 1.5}, r"inactivity_days=1\.5; allowed: a whole number"),
        ({"memory_limit": "lots"}, r"memory_limit='lots'; allowed: a size such as '4GB'"),
        ({"threads": 0}, r"threads=0; allowed: a whole number >= 1"),
    ],
)
def test_bad_options(cohorts, kwargs, message):
    with pytest.raises(pt.ConfigError, match=message):
        patient_weeks_sql(cohorts[(1, "parquet")], **kwargs)


# ------------------------------------------------------------------------------------ the SQL
@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_query_is_engine_neutral(dialect):
    sql = patient_weeks_query(dialect=dialect, dropout_rule="missed_supervised")
    assert "::" not in sql and not re.search(r"^\s*FROM\s+\w+\s+SELECT", sql, re.M)
    for table in ("patients", "prescriptions", "sessions", "outcomes"):
        assert re.search(rf"\b{table}\b", sql)
    other = patient_weeks_query(dialect="duckdb" if dialect == "spark" else "spark")
    assert sql != other


def test_query_unknown_dialect():
    with pytest.raises(pt.ConfigError, match=r"dialect='oracle' is not known"):
        patient_weeks_query(dialect="oracle")


def test_cohort_json_optional(odd, tmp_path):
    folder = odd.write(tmp_path / "nojson")
    expected = patient_weeks(pt.load_cohort(folder))
    (folder / "cohort.json").unlink()
    assert_same(expected, patient_weeks_sql(folder))
