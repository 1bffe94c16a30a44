import pandas as pd
import pytest

import ptanalytics as pt
from ptanalytics.metrics.describe import describe_cohort


def test_describe_simulated_cohort(small_cohort):
    table = describe_cohort(small_cohort)
    assert list(table.columns) == ["section", "metric", "value", "target_low", "target_high"]
    got = table.set_index("metric")
    assert got.loc["patients rows", "value"] == 400
    assert got.loc["sessions rows", "value"] == len(small_cohort.sessions)
    resp = got.loc["responder_share_end_guided_completers"]
    assert (resp["target_low"], resp["target_high"]) == (0.5, 0.7)
    assert got.loc["baseline NPRS mean", "value"] == pytest.approx(6.0, abs=0.3)


def test_describe_outcomes_only_cohort():
    patients = pd.DataFrame(
        {"patient_id": ["A", "B"], "enrolled_on": pd.to_datetime(["2024-01-01", "2024-01-02"])}
    )
    outcomes = pd.DataFrame(
        {
            "patient_id": ["A", "B", "A"],
            "assessed_on": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-02-01"]),
            "instrument": ["NPRS"] * 3,
            "score": [6.0, 8.0, 3.0],
        }
    )
    table = describe_cohort(pt.Cohort(patients=patients, outcomes=outcomes))
    got = table.set_index("metric")["value"]
    assert got["baseline NPRS mean"] == 7.0
    assert got["NPRS assessments"] == 3
    assert "session days" not in got.index
    assert (table["section"] != "calibration").all()
