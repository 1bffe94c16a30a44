from pathlib import Path

import pandas as pd
import pytest

from ptanalytics.cohort.schema import TABLES, coerce_table, data_dictionary_markdown, empty_table
from ptanalytics.exceptions import CohortFormatError

ROOT = Path(__file__).resolve().parents[1]


def test_data_dictionary_doc_is_generated_from_the_schema():
    doc = (ROOT / "docs" / "data_dictionary.md").read_text(encoding="utf-8")
    assert doc == data_dictionary_markdown(), "docs/data_dictionary.md is stale: run 'make docs'"


def test_empty_tables_have_canonical_columns():
    for name, table in TABLES.items():
        df = empty_table(name)
        assert list(df.columns) == table.names
        assert len(df) == 0


def _outcomes(**cols):
    base = {
        "patient_id": ["P1", "P2"],
        "assessed_on": ["2024-01-01", "2024-01-08"],
        "instrument": ["NPRS", "NPRS"],
        "score": [5, 6],
    }
    base.update(cols)
    return pd.DataFrame(base)


def test_coerce_keeps_extra_columns_and_types_known_ones():
    df = _outcomes(arm=["a", "b"])
    out = coerce_table("outcomes", df, source="x.csv")
    assert out["assessed_on"].dtype == "datetime64[s]"
    assert out["score"].dtype == "float64"
    assert list(out["arm"]) == ["a", "b"]
    assert df["assessed_on"].dtype != "datetime64[s]"  # the caller's frame is untouched


def test_missing_required_column_is_named():
    df = _outcomes().drop(columns="score")
    with pytest.raises(
        CohortFormatError,
        match=r"x\.csv: table 'outcomes' lacks required "
        r"column\(s\) \['score'\]",
    ):
        coerce_table("outcomes", df, source="x.csv")


def test_bad_date_names_row_column_value_and_fix():
    df = _outcomes(assessed_on=["2024-01-01", "01/08/2024"])
    with pytest.raises(
        CohortFormatError,
        match=r"column 'assessed_on', row 2: '01/08/2024' is "
        r"not a date in YYYY-MM-DD form\. Fix",
    ):
        coerce_table("outcomes", df, source="x.csv")


def test_non_integer_is_never_rounded():
    df = pd.DataFrame({"patient_id": ["P1"], "enrolled_on": ["2024-01-01"], "age": [41.5]})
    with pytest.raises(
        CohortFormatError,
        match=r"column 'age', row 1: 41\.5 is not a whole "
        r"number.*never rounds",
    ):
        coerce_table("patients", df)


def test_unknown_category_value_is_named():
    df = pd.DataFrame(
        {
            "patient_id": ["P1"],
            "kind": ["reiki"],
            "start_on": ["2024-01-01"],
            "end_on": ["2024-01-02"],
        }
    )
    with pytest.raises(CohortFormatError, match=r"column 'kind', row 1: 'reiki' is not one of"):
        coerce_table("cointerventions", df)


def test_bad_boolean_and_number():
    row = {
        "patient_id": ["P1"],
        "performed_on": ["2024-01-01"],
        "phase": ["guided"],
        "exercise": ["cat_cow"],
        "category": ["flexibility"],
        "supervised": ["maybe"],
    }
    with pytest.raises(CohortFormatError, match=r"'maybe' is not true/false"):
        coerce_table("sessions", pd.DataFrame(row))
    with pytest.raises(CohortFormatError, match=r"column 'score', row 2: 'n/a' is not a number"):
        coerce_table("outcomes", _outcomes(score=["4", "n/a"]))


def test_coercion_fast_paths_give_the_same_table_and_still_refuse_bad_values():
    """Typed columns (Parquet written by ptanalytics) skip the per-value checks only where
    every value is already allowed: categories within the vocabulary, integers within range,
    finite floats; the input frame is never changed."""
    import numpy as np
    import pandas as pd
    import pytest

    from ptanalytics.cohort.schema import coerce_table
    from ptanalytics.exceptions import CohortFormatError

    typed = pd.DataFrame(
        {
            "patient_id": pd.Series(["p1", "p1", "p2"], dtype="str"),
            "performed_on": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "phase": pd.Categorical(["guided", "maintenance", "guided"]),
            "exercise": pd.Categorical(["front_plank", "front_plank", "cat_cow"]),
            "category": pd.Categorical(["core_strengthening"] * 2 + ["flexibility"]),
            "supervised": [True, False, True],
            "sets": pd.array([3, 2, None], dtype="Int64"),
            "duration_min": [10.0, np.nan, 5.5],
        }
    )
    text = typed.astype(
        {c: "string" for c in ["phase", "exercise", "category", "sets", "duration_min"]}
    )
    fast, slow = coerce_table("sessions", typed), coerce_table("sessions", text)
    pd.testing.assert_frame_equal(fast, slow)
    assert typed["sets"].dtype == "Int64"  # the input is unchanged
    bad = {
        "phase": typed.assign(phase=pd.Categorical(["guided", "warmup", "guided"])),
        "sets": typed.assign(sets=pd.array([3, 70_000, None], dtype="Int64")),
        "duration_min": typed.assign(duration_min=[10.0, np.inf, 5.5]),
    }
    for column, frame in bad.items():
        with pytest.raises(CohortFormatError, match=f"column '{column}', row 2"):
            coerce_table("sessions", frame)
