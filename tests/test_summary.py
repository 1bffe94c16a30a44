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


# ------------------------------------------------------------------ descriptive aggregates
def _weeks():
    return pd.DataFrame(
        {
            "patient_id": ["A", "A", "B", "B", "C"],
            "week": [0, 1, 0, 1, 0],
            "phase": pd.Categorical(["guided"] * 4 + ["maintenance"]),
            "sessions_prescribed": [2.0, 2.0, 2.0, 0.0, 1.0],
            "sessions_completed": [2, 1, 0, 0, 1],
            "adherence_capped": [1.0, 0.5, 0.0, float("nan"), 1.0],
            "nprs": [6.0, float("nan"), 4.0, 3.0, 8.0],
            "minutes_aerobic": [10.0, 20.0, 30.0, 99.0, 0.0],
        }
    )


def test_weekly_means_counts_only_values_and_drops_small_weeks():
    from ptanalytics.metrics.describe import weekly_means

    out = weekly_means(_weeks(), "adherence_capped", by="phase", min_patients=1)
    assert out.columns.tolist() == ["week", "phase", "mean", "n"]
    assert out[["week", "mean", "n"]].values.tolist() == [[0, 0.5, 2], [1, 0.5, 1], [0, 1.0, 1]]
    assert weekly_means(_weeks(), "adherence_capped", by="phase", min_patients=2)["n"].tolist() == [
        2
    ]
    summary = pd.DataFrame({"patient_id": ["A", "B", "C"], "band": ["x", "y", "y"]})
    by_band = weekly_means(_weeks(), "nprs", by="band", summary=summary, min_patients=1)
    assert by_band.values.tolist() == [[0, "x", 6.0, 1], [0, "y", 6.0, 2], [1, "y", 3.0, 1]]
    overall = weekly_means(_weeks(), "nprs", min_patients=3)
    assert overall.values.tolist() == [[0, 6.0, 3]]


def test_weekly_assessments_minutes_and_totals():
    from ptanalytics.metrics.describe import phase_totals, weekly_assessments, weekly_minutes

    got = weekly_assessments(_weeks())
    assert got["patients"].tolist() == [3, 2] and got["assessed"].tolist() == [3, 1]
    assert got["missing"].tolist() == pytest.approx([0.0, 0.5])
    weeks = _weeks().assign(**{f"minutes_{c}": 0.0 for c in pt.CATEGORIES if c != "aerobic"})
    minutes = weekly_minutes(weeks)  # week 1 of B prescribed nothing: left out
    assert minutes.columns.tolist() == list(pt.CATEGORIES)
    assert minutes["aerobic"].tolist() == pytest.approx([40 / 3, 20.0])
    totals = phase_totals(_weeks())
    assert totals.loc["guided"].tolist() == [6.0, 3] and totals.loc["maintenance"].tolist() == [
        1,
        1,
    ]


def test_group_counts_means_and_the_comparison_group():
    from ptanalytics.metrics.describe import comparison_group, group_means, patient_counts

    summary = pd.DataFrame(
        {
            "band": ["low", "low", "high", None],
            "traj": ["stable", "declining", "stable", "stable"],
            "score": [1.0, 3.0, float("nan"), 5.0],
        }
    )
    counts = patient_counts(summary, "band", "traj")
    assert counts.loc["low"].tolist() == [1, 1] and counts.loc["high", "stable"] == 1
    means = group_means(summary, ["score"], by="band")
    assert (
        means.loc["low", "score"] == 2.0
        and means.loc["high", "score"] != means.loc["high", "score"]
    )
    assert len(means) == 3  # the missing band is a group of its own
    both = group_means(summary, ["score"], by="band", counts=True)
    assert both.loc["low", ("score", "count")] == 2
    assert comparison_group(pd.DataFrame(columns=["arm", "attendance_band"])) == "arm"
    bands = pd.DataFrame(columns=["attendance_band"])
    assert comparison_group(bands) == "attendance_band"
    assert comparison_group(bands, has_sessions=False) is None


def test_patient_shares_counts_levels_and_percent_of_every_patient():
    from ptanalytics.metrics.describe import patient_shares

    data = pd.DataFrame({"band": ["low", "high", "low", None, "low"]})
    got = patient_shares(data, "band")
    assert got.index.name == "band" and got.columns.tolist() == ["patients", "percent"]
    assert got["patients"].tolist() == [1, 3, 1]  # by level, the missing level last
    assert got["percent"].tolist() == pytest.approx([20.0, 60.0, 20.0])
    kept = patient_shares(data, "band", dropna=True, order="count")
    assert kept.index.tolist() == ["low", "high"] and kept["patients"].tolist() == [3, 1]
    assert kept["percent"].tolist() == pytest.approx([60.0, 20.0])  # of all five patients
    with pytest.raises(pt.ConfigError, match=r"order='size'; allowed: one of 'level', 'count'"):
        patient_shares(data, "band", order="size")
