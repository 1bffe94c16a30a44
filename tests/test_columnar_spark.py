"""The same SQL on Spark (local[2]) gives the frame DuckDB gives; one session for the module."""

import shutil

import pandas as pd
import pytest

import ptanalytics as pt
from ptanalytics.metrics.sql import patient_weeks_spark, patient_weeks_sql

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java (java not on PATH)"),
    # pyspark 4.x warns that it does not fully support pandas 3; the conversions used here work.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("ptanalytics-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return pt.simulate_cohort(120, seed=4).write(
        tmp_path_factory.mktemp("spark") / "cohort", format="parquet"
    )


@pytest.mark.parametrize(
    "options", [{}, {"dropout_rule": "missed_supervised", "truncate_at_dropout": False}]
)
def test_spark_equals_duckdb(spark, folder, options):
    expected = patient_weeks_sql(folder, **options)
    got = patient_weeks_spark(folder, spark=spark, **options)
    pd.testing.assert_frame_equal(expected, got, check_exact=False, rtol=1e-12, atol=1e-12)


def test_spark_from_dataframes(spark, folder):
    """Warehouse-style input: Spark DataFrames per table (patients ordered by id)."""
    tables = {
        name: spark.read.parquet(str(folder / f"{name}.parquet"))
        for name in ("patients", "prescriptions", "sessions", "outcomes")
    }
    got = patient_weeks_spark(tables, spark=spark)
    expected = patient_weeks_sql(folder)  # simulated ids are in id order already
    pd.testing.assert_frame_equal(expected, got, check_exact=False, rtol=1e-12, atol=1e-12)


def test_spark_from_dataframes_without_followup_weeks(spark, folder, tmp_path):
    """Without the column, horizons come from the prescriptions in Spark too (as in pandas)."""
    tables = {
        name: spark.read.parquet(str(folder / f"{name}.parquet"))
        for name in ("patients", "prescriptions", "sessions", "outcomes")
    }
    tables["patients"] = tables["patients"].drop("followup_weeks")
    got = patient_weeks_spark(tables, spark=spark)
    cohort = pt.load_cohort(folder)
    cohort.patients = cohort.patients.drop(columns="followup_weeks")
    expected = patient_weeks_sql(cohort.write(tmp_path / "nofw"))
    pd.testing.assert_frame_equal(expected, got, check_exact=False, rtol=1e-12, atol=1e-12)
    assert got["week"].max() > 0
