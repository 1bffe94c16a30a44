"""One definition of each timepoint (ptanalytics.metrics.timepoints), used everywhere.

Hand-made cohorts the simulator would never make: baseline assessed a few days after enrolment,
missing follow-up, irregular visits, a 12-week program, outcomes only, end of guided phase on the
follow-up day, same-day duplicates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ptanalytics as pt
from ptanalytics.exceptions import ConfigError
from ptanalytics.metrics.describe import describe_cohort
from ptanalytics.metrics.timepoints import (
    TIMEPOINTS,
    assessment_timepoints,
    canonical_instrument,
    timepoint_counts,
    timepoint_scores,
    timepoint_targets,
)
from ptanalytics.report.tables import table_one

DAY0 = pd.Timestamp("2024-03-04")


def _day(n: int) -> pd.Timestamp:
    return DAY0 + pd.Timedelta(days=n)


def _outcomes(rows) -> pd.DataFrame:
    """rows: (patient, day, instrument, score)."""
    return pd.DataFrame(
        {
            "patient_id": [r[0] for r in rows],
            "assessed_on": pd.to_datetime([_day(r[1]) for r in rows]).astype("datetime64[s]"),
            "instrument": [r[2] for r in rows],
            "score": [float(r[3]) for r in rows],
        }
    )


def _patients(ids, **cols) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "patient_id": ids,
            "enrolled_on": pd.to_datetime([DAY0] * len(ids)).astype("datetime64[s]"),
        }
    )
    for name, values in cols.items():
        frame[name] = pd.array(values, dtype="Int64")
    return frame


def test_baseline_is_the_same_everywhere():
    # Baseline assessed 3 days after enrolment (a real clinic): Table 1, `ptanalytics summary`
    # and patient_summary must all see it (the old Table 1 took the enrolment day only).
    pts = _patients(["A", "B", "C"], followup_weeks=[12, 12, 12])
    out = _outcomes(
        [("A", 3, "NPRS", 7), ("B", 0, "NPRS", 5), ("C", -2, "NPRS", 9), ("A", 84, "NPRS", 3)]
    )
    cohort = pt.Cohort(patients=pts, outcomes=out)
    summary = pt.patient_summary(cohort)
    assert summary["nprs_baseline"].tolist() == [7.0, 5.0, 9.0]
    described = describe_cohort(cohort).set_index("metric")["value"]
    assert described["NPRS observed at baseline"] == 3
    assert described["NPRS observed at follow-up"] == 1  # only A, at day 84
    assert described["baseline NPRS mean"] == pytest.approx(7.0)
    assert described["baseline NPRS SD"] == pytest.approx(2.0)
    scores = timepoint_scores(cohort)
    assert scores["nprs_baseline"].tolist() == summary["nprs_baseline"].tolist()
    t1 = table_one(cohort, min_cell=1).set_index(["characteristic", "level"])
    assert t1.loc[("Baseline NPRS (0-10)", "mean (SD)"), "Overall"] == "7.0 (2.0)"


def test_missing_followup_stays_missing():
    # Outcomes only, a 4-week schedule; patient B was never assessed after baseline. The old code
    # gave B its baseline as follow-up (horizon 0 -> target day 0).
    pts = _patients(["A", "B", "C"])
    out = _outcomes(
        [
            ("A", 0, "NPRS", 6),
            ("A", 28, "NPRS", 2),
            ("B", 0, "NPRS", 8),
            ("C", 0, "NPRS", 5),
            ("C", 30, "NPRS", 4),
        ]
    )
    cohort = pt.Cohort(patients=pts, outcomes=out)
    targets = timepoint_targets(cohort).set_index(["patient_id", "timepoint"])
    assert targets.loc[("B", "followup"), "target_day"] == 28.0
    assert targets.loc[("B", "followup"), "target_source"] == "inferred from assessments"
    assert targets.loc[("B", "end_guided"), "target_source"] == "none"
    summary = pt.patient_summary(cohort)
    assert summary["nprs_followup"].tolist()[0] == 2.0
    assert np.isnan(summary["nprs_followup"].iloc[1])
    assert summary["nprs_followup"].iloc[2] == 4.0
    assert summary["nprs_end_guided"].isna().all()
    itt = pt.responder_table(pt.flag_responders(summary, analysis="itt")).table
    comp = pt.responder_table(pt.flag_responders(summary, analysis="completers")).table
    assert itt["n"].iloc[0] == 3 and itt["missing_followup"].iloc[0] == 1
    assert comp["n"].iloc[0] == 2


def test_schedule_from_cohort_json_and_column():
    pts = _patients(["A", "B"], followup_weeks=[None, 6])
    out = _outcomes([("A", 0, "NPRS", 6), ("A", 57, "NPRS", 2), ("B", 0, "NPRS", 5)])
    cohort = pt.Cohort(patients=pts, outcomes=out, metadata={"schedule": {"followup_weeks": 8}})
    targets = timepoint_targets(cohort).set_index(["patient_id", "timepoint"])
    assert targets.loc[("A", "followup"), "target_day"] == 56.0
    assert targets.loc[("A", "followup"), "target_source"] == "cohort.json schedule"
    assert targets.loc[("B", "followup"), "target_day"] == 42.0
    assert targets.loc[("B", "followup"), "target_source"] == "patients.followup_weeks"
    assert timepoint_scores(cohort)["nprs_followup"].tolist()[0] == 2.0


def test_twelve_week_program_and_irregular_visits():
    # A 12-week guided program (not the simulator's 8), no maintenance, follow-up at 26 weeks.
    pts = _patients(["A"], guided_weeks=[12], followup_weeks=[26])
    out = _outcomes(
        [
            ("A", 1, "NPRS", 7),
            ("A", 37, "NPRS", 6),  # irregular visit, in no window
            ("A", 80, "NPRS", 4),  # 4 days before day 84
            ("A", 88, "NPRS", 5),  # 4 days after: equally near, the earlier wins
            ("A", 190, "NPRS", 3),  # 8 days after day 182: outside the 7-day window
        ]
    )
    cohort = pt.Cohort(patients=pts, outcomes=out)
    long = assessment_timepoints(cohort, instruments="nprs").set_index("timepoint")
    assert long.loc["end_guided", "target_day"] == 84.0
    assert long.loc["end_guided", "target_source"] == "patients.guided_weeks"
    assert long.loc["end_guided", "score"] == 4.0 and long.loc["end_guided", "day"] == 80.0
    assert not long.loc["followup", "observed"]
    wider = assessment_timepoints(cohort, window_days={"followup": 10}).set_index("timepoint")
    assert wider.loc["followup", "score"] == 3.0
    assert wider.loc["end_guided", "score"] == 4.0  # other windows keep the default 7 days


def test_one_assessment_serves_one_timepoint():
    # End of the guided phase on the follow-up day: the assessment is the follow-up, and the
    # end-of-guided score is missing rather than the same number counted twice.
    pts = _patients(["A", "B"], guided_weeks=[8, 8], followup_weeks=[8, 10])
    out = _outcomes(
        [
            ("A", 0, "NPRS", 6),
            ("A", 56, "NPRS", 3),
            ("B", 0, "NPRS", 6),
            ("B", 63, "NPRS", 4),  # equally near day 56 and day 70: the follow-up wins ties
            ("B", 57, "NPRS", 5),  # nearer day 56: end of guided phase
        ]
    )
    scores = timepoint_scores(pt.Cohort(patients=pts, outcomes=out))
    assert np.isnan(scores["nprs_end_guided"].iloc[0]) and scores["nprs_followup"].iloc[0] == 3.0
    assert scores["nprs_end_guided"].iloc[1] == 5.0 and scores["nprs_followup"].iloc[1] == 4.0
    # An early baseline-window assessment is never a follow-up, even with a follow-up at week 1.
    pts = _patients(["C"], followup_weeks=[1])
    out = _outcomes([("C", 3, "NPRS", 6)])
    scores = timepoint_scores(pt.Cohort(patients=pts, outcomes=out))
    assert scores["nprs_baseline"].iloc[0] == 6.0 and np.isnan(scores["nprs_followup"].iloc[0])


def test_same_day_scores_are_averaged_and_instruments_any_case():
    pts = _patients(["A"], followup_weeks=[4])
    out = _outcomes([("A", 0, "NPRS", 6), ("A", 0, "NPRS", 7), ("A", 28, "nprs", 2)])
    cohort = pt.Cohort(patients=pts, outcomes=out)
    scores = timepoint_scores(cohort, instruments=["Nprs"])
    assert scores["nprs_baseline"].iloc[0] == 6.5
    assert scores["nprs_followup"].iloc[0] == 2.0
    assert canonical_instrument(" odi ") == "ODI"
    with pytest.raises(ConfigError, match="not in this cohort; allowed: NPRS"):
        canonical_instrument("RMDQ", available=["NPRS"])
    with pytest.raises(ConfigError, match="window_days"):
        assessment_timepoints(cohort, window_days=-1)
    with pytest.raises(ConfigError, match="unknown timepoint"):
        assessment_timepoints(cohort, window_days={"follow": 3})


def test_counts_per_timepoint_add_up(small_cohort):
    long = assessment_timepoints(small_cohort)
    counts = timepoint_counts(long)
    assert (counts["observed"] + counts["missing"] == counts["patients"]).all()
    assert list(counts["timepoint"].iloc[:3]) == ["baseline", "end of guided phase", "follow-up"]
    summary = pt.patient_summary(small_cohort)
    nprs = counts[counts["instrument"] == "NPRS"].set_index("timepoint")["observed"]
    assert nprs["follow-up"] == summary["nprs_followup"].notna().sum()
    assert nprs["end of guided phase"] == summary["nprs_end_guided"].notna().sum()
    assert set(long["timepoint"]) == set(TIMEPOINTS)


def test_ashar_example_itt_and_completers_differ(ashar_dir):
    """The real trial export: 17 of 152 patients have no post-treatment assessment."""
    cohort = pt.load_cohort(ashar_dir)
    summary = pt.patient_summary(cohort)
    assert summary["nprs_baseline"].notna().sum() == 152
    assert summary["nprs_followup"].notna().sum() == 135
    long = assessment_timepoints(cohort).merge(cohort.patients[["patient_id", "arm"]])
    counts = timepoint_counts(long[long["instrument"] == "NPRS"], by="arm")
    follow = counts[counts["timepoint"] == "follow-up"].set_index("arm")
    assert follow["missing"].sum() == 17
    itt = pt.responder_table(pt.flag_responders(summary, analysis="itt"), by="arm").table.set_index(
        "arm"
    )
    comp = pt.responder_table(
        pt.flag_responders(summary, analysis="completers"), by="arm"
    ).table.set_index("arm")
    for arm in ("pain_reprocessing_therapy", "placebo_injection", "usual_care"):
        assert itt.loc[arm, "missing_followup"] == follow.loc[arm, "missing"]
        assert comp.loc[arm, "n"] == follow.loc[arm, "observed"]
        assert itt.loc[arm, "n"] > comp.loc[arm, "n"]
        assert comp.loc[arm, "missing_followup"] == 0


def test_instrument_names_any_case(small_cohort):
    summary = pt.patient_summary(small_cohort)
    lower = pt.responder_table(pt.flag_responders(summary, instrument="odi"))
    upper = pt.responder_table(pt.flag_responders(summary, instrument=" ODI"))
    pd.testing.assert_frame_equal(lower.table, upper.table)
    with pytest.raises(ConfigError, match="instrument="):
        pt.flag_responders(summary, instrument="")


def test_mapping_schedule_reaches_cohort_json(tmp_path):
    from ptanalytics.cli import main
    from ptanalytics.ingestion.mapping import MappingError, parse_mapping

    export = tmp_path / "trial.csv"
    export.write_text("id,visit,pain\n1,1,7\n1,2,3\n2,1,6\n", encoding="utf-8")
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        "[schedule]\nfollowup_weeks = 6\n\n"
        '[[sources]]\nmatch = "trial.csv"\n'
        '  [sources.patients]\n  patient_id = "id"\n'
        '  timepoint = { column = "visit", weeks = { "1" = 0, "2" = 6 }, start = "2000-01-03" }\n'
        '  [sources.outcomes]\n  patient_id = "id"\n'
        '  timepoint = { column = "visit", weeks = { "1" = 0, "2" = 6 }, start = "2000-01-03" }\n'
        '  instruments = { NPRS = "pain" }\n',
        encoding="utf-8",
    )
    out = tmp_path / "cohort"
    assert main(["ingest", str(export), "--mapping", str(mapping), "--out", str(out)]) == 0
    cohort = pt.load_cohort(out)
    assert cohort.metadata["schedule"] == {"followup_weeks": 6}
    targets = timepoint_targets(cohort)
    follow = targets[targets["timepoint"] == "followup"]
    assert (follow["target_source"] == "cohort.json schedule").all()
    assert timepoint_scores(cohort)["nprs_followup"].tolist()[0] == 3.0
    assert np.isnan(timepoint_scores(cohort)["nprs_followup"].iloc[1])
    base = {"sources": [{"match": "x.csv", "patients": {"patient_id": "id"}}]}
    with pytest.raises(
        MappingError, match=r"schedule: unknown key 'followup_week'.*followup_weeks"
    ):
        parse_mapping({**base, "schedule": {"followup_week": 4}})
    with pytest.raises(MappingError, match=r"schedule.followup_weeks = '4' is"):
        parse_mapping({**base, "schedule": {"followup_weeks": "4"}})
