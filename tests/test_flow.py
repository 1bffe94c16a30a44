"""The participant flow: known answers, the box = sum of its children rule, reasons from a status
column, outcomes-only cohorts, linked suppression and the figure."""

import matplotlib.figure
import numpy as np
import pandas as pd
import pytest

import ptanalytics as pt
from ptanalytics.exceptions import ConfigError
from ptanalytics.metrics.flow import flow_membership, participant_flow, suppress_flow
from ptanalytics.plotting import alt_text, plot_flow
from ptanalytics.privacy.suppression import complementary_suppression, recoverable

D = pd.Timestamp
START = D("2024-01-01")


def _days(*days):
    return [START + pd.Timedelta(days=d) for d in days]


def five(*, status=None, scores=None) -> pt.Cohort:
    """Five patients, guided weeks 0-1 (2 sessions a week), maintenance weeks 2-3, follow-up at
    week 4 (NPRS targets: day 0, day 14, day 28).

    P1 attends throughout, scored at 0, 14 and 28: assessed at follow-up. P2 never attends: did
    not start. P3 attends days 0 and 3 only: a dropout in week 1, before the guided phase ends.
    P4 attends weeks 0-1 and stops (dropout week 2 = the end of the guided phase): completed it,
    scored at 0 and 14, not at follow-up. P5 attends throughout, scored at 0 and 28 only: not
    assessed at the end of the guided phase.
    """
    ids = ["P1", "P2", "P3", "P4", "P5"]
    patients = pd.DataFrame(
        {
            "patient_id": ids,
            "enrolled_on": [START] * 5,
            "guided_weeks": [2] * 5,
            "followup_weeks": [4] * 5,
        }
    )
    if status is not None:
        patients["status"] = status
    rx = pd.DataFrame(
        {
            "patient_id": [p for p in ids for _ in range(2)],
            "phase": ["guided", "maintenance"] * 5,
            "exercise": ["cat_cow"] * 10,
            "category": ["flexibility"] * 10,
            "sessions_per_week": [2, 1] * 5,
            "supervised_per_week": [1, 0] * 5,
            "sets": [1] * 10,
            "start_on": _days(0, 14) * 5,
            "end_on": _days(13, 27) * 5,
        }
    )
    attended = {
        "P1": (0, 3, 7, 10, 14, 21, 25),
        "P3": (0, 3),
        "P4": (0, 3, 7, 10),
        "P5": (0, 3, 7, 10, 14, 21, 25),
    }
    rows = [(p, d) for p, days in attended.items() for d in days]
    sessions = pd.DataFrame(
        {
            "patient_id": [p for p, _ in rows],
            "performed_on": [START + pd.Timedelta(days=d) for _, d in rows],
            "phase": ["guided" if d < 14 else "maintenance" for _, d in rows],
            "exercise": "cat_cow",
            "category": "flexibility",
            "supervised": False,
            "sets": 1,
            "reps": 10,
            "hold_s": 0,
            "duration_min": 2.0,
        }
    )
    scores = scores or {"P1": (0, 14, 28), "P2": (0,), "P3": (0,), "P4": (0, 14), "P5": (0, 28)}
    pairs = [(p, d) for p, days in scores.items() for d in days]
    outcomes = pd.DataFrame(
        {
            "patient_id": [p for p, _ in pairs],
            "assessed_on": [START + pd.Timedelta(days=d) for _, d in pairs],
            "instrument": "NPRS",
            "score": [6.0 - d / 14 for _, d in pairs],
        }
    )
    return pt.Cohort(patients=patients, prescriptions=rx, sessions=sessions, outcomes=outcomes)


def counts(flow: pd.DataFrame) -> dict:
    return {
        b: (None if pd.isna(n) else int(n)) for b, n in zip(flow["box"], flow["n"], strict=True)
    }


def assert_sums(flow: pd.DataFrame) -> int:
    """Every recorded box with children is the sum of its recorded children; returns how many
    boxes were checked."""
    recorded = flow[flow["n"].notna()]
    checked = 0
    for _, box in recorded.iterrows():
        children = recorded[recorded["parent"] == box["box"]]
        if len(children):
            assert int(children["n"].sum()) == int(box["n"]), box["box"]
            checked += 1
    return checked


def assert_one_leaf_each(flow: pd.DataFrame, members: pd.DataFrame) -> None:
    """Every patient lies in exactly one leaf box."""
    recorded = flow[flow["n"].notna() & (flow["kind"] != "summary")]
    leaves = [b for b in recorded["box"] if not (recorded["parent"] == b).any()]
    np.testing.assert_array_equal(members[leaves].sum(axis=1).to_numpy(), 1)


# ------------------------------------------------------------------------------ known answers
def test_five_patients_by_hand():
    flow, members = flow_membership(five())
    assert counts(flow) == {
        "enrolled": 5,
        "not_started": 1,
        "started": 4,
        "left_guided": 1,
        "completed_guided": 3,
        "missed_end_guided": 1,
        "assessed_end_guided": 2,
        "missed_followup": 1,
        "assessed_followup": 1,
        "followup_any": 2,  # P1, and P5 who missed the end of the guided phase
    }
    m = members.set_index("patient_id")
    assert m.index[m["not_started"]].tolist() == ["P2"]
    assert m.index[m["left_guided"]].tolist() == ["P3"]
    assert m.index[m["missed_end_guided"]].tolist() == ["P5"]
    assert m.index[m["missed_followup"]].tolist() == ["P4"]
    assert m.index[m["assessed_followup"]].tolist() == ["P1"]
    assert assert_sums(flow) == 4  # enrolled, started, completed, assessed at the end of guided
    assert_one_leaf_each(flow, members)
    row = flow.set_index("box")
    assert row.loc["not_started", "reason"] == "no session recorded"
    assert row.loc["left_guided", "parent"] == "started"
    assert row.loc["assessed_followup", "label"] == "Assessed at follow-up"
    assert flow["stage"].tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5]
    assert (
        pd.isna(row.loc["followup_any", "parent"]) and row.loc["followup_any", "kind"] == "summary"
    )
    assert set(flow.columns) >= {"box", "parent", "label", "n", "reason", "stage", "kind"}


def test_default_cohort_boxes_are_sums_and_match_the_summary():
    cohort = pt.default_cohort()
    summary = pt.patient_summary(cohort)
    flow, members = flow_membership(cohort, summary=summary)
    assert assert_sums(flow) == 4
    assert_one_leaf_each(flow, members)
    c = counts(flow)
    assert c["enrolled"] == 300
    assert c["started"] == int(summary["last_active_week"].notna().sum())
    chain = members["assessed_followup"].to_numpy()
    assert c["assessed_followup"] == int(
        (chain & summary["nprs_followup"].notna() & summary["nprs_end_guided"].notna()).sum()
    )
    # The default cohort's numbers (data/synthetic/default).
    assert c == {
        "enrolled": 300,
        "not_started": 3,
        "started": 297,
        "left_guided": 80,
        "completed_guided": 217,
        "missed_end_guided": 2,
        "assessed_end_guided": 215,
        "missed_followup": 39,
        "assessed_followup": 176,
        "followup_any": 198,  # 22 who left the chain earlier came to the follow-up assessment
    }
    assert c["followup_any"] == int(summary["nprs_followup"].notna().sum())
    assert counts(participant_flow(cohort)) == c  # the summary is computed when not given


def test_missing_followup_gives_zero_assessed_not_missing():
    scores = {"P1": (0, 14), "P2": (0,), "P3": (0,), "P4": (0, 14), "P5": (0,)}
    c = counts(participant_flow(five(scores=scores)))
    assert c["assessed_end_guided"] == 2 and c["missed_end_guided"] == 1
    assert c["assessed_followup"] == 0 and c["missed_followup"] == 2


def test_no_end_of_guided_scores_leave_that_step_not_recorded():
    scores = {"P1": (0, 28), "P2": (0,), "P3": (0,), "P4": (0,), "P5": (0, 28)}
    flow = participant_flow(five(scores=scores))
    c = counts(flow)
    assert c["assessed_end_guided"] is None and "missed_end_guided" not in c
    assert c["assessed_followup"] == 2 and c["missed_followup"] == 1
    assert flow.set_index("box").loc["assessed_followup", "parent"] == "completed_guided"
    assert assert_sums(flow) == 3


def test_outcomes_only_cohort_program_steps_are_not_recorded():
    full = five()
    cohort = pt.Cohort(patients=full.patients, outcomes=full.outcomes)
    flow, members = flow_membership(cohort)
    c = counts(flow)
    assert c["started"] is None and c["completed_guided"] is None  # not 0
    assert "not_started" not in c and "left_guided" not in c
    assert c["enrolled"] == 5
    assert (c["missed_end_guided"], c["assessed_end_guided"]) == (3, 2)  # P1, P4 at day 14
    assert (c["missed_followup"], c["assessed_followup"]) == (1, 1)
    row = flow.set_index("box")
    assert row.loc["started", "label"] == "Started the program: not recorded"
    assert row.loc["assessed_end_guided", "parent"] == "enrolled"
    assert assert_sums(flow) == 2
    assert_one_leaf_each(flow, members)
    assert "started" not in members  # nothing to link for a step not recorded


def test_status_column_gives_the_reasons():
    status = ["Completed", "Withdrawn", "Lost to follow-up", None, " Completed "]
    flow, members = flow_membership(five(status=status))
    c = counts(flow)
    assert c["not_started/Withdrawn"] == 1
    assert c["left_guided/Lost to follow-up"] == 1
    assert c["missed_end_guided/Completed"] == 1  # stripped
    assert c["missed_followup/no status recorded"] == 1
    row = flow.set_index("box")
    assert row.loc["left_guided/Lost to follow-up", "kind"] == "reason"
    assert row.loc["left_guided/Lost to follow-up", "reason"] == "Lost to follow-up"
    assert pd.isna(row.loc["left_guided", "reason"])  # the reasons are its children
    assert assert_sums(flow) == 8  # the four steps and the four exits
    assert_one_leaf_each(flow, members)
    ignored = participant_flow(five(status=status), status=None)
    assert counts(ignored) == counts(participant_flow(five()))


def test_arguments_are_checked():
    with pytest.raises(ConfigError, match="instrument='VAS'; allowed"):
        participant_flow(five(), instrument="VAS")
    with pytest.raises(ConfigError, match="flow lacks column"):
        plot_flow(pd.DataFrame({"box": ["enrolled"]}))


# ------------------------------------------------------------------------------ suppression
def _cells(flow, members):
    recorded = flow[flow["n"].notna()]
    return {b: members[b].to_numpy() for b in recorded["box"]}


def test_no_suppressed_box_can_be_derived_on_the_default_cohort():
    flow, members = flow_membership(pt.default_cohort())
    shown = suppress_flow(flow, members).set_index("box")["shown"]
    assert shown["enrolled"] == "300" and shown["not_started"] == "<11"
    assert shown["missed_end_guided"] == "<11"
    # 300 - 297 would give the 3 who did not start: started is hidden, and so is one of its
    # children (else started = left + completed).
    assert shown["started"] == "suppressed"
    assert "suppressed" in (shown["left_guided"], shown["completed_guided"])
    # Parent minus siblings, by hand: never exactly one hidden box in a family with a shown total.
    flow_s = suppress_flow(flow, members)
    for _, box in flow_s.iterrows():
        family = flow_s[flow_s["parent"] == box["box"]]
        if len(family) and box["shown"][0].isdigit():
            assert (~family["shown"].str[0].str.isdigit()).sum() != 1, box["box"]
    # ... and the linear-programming attacker pins none either.
    cells = _cells(flow, members)
    status = complementary_suppression(cells, keep=["enrolled"])
    assert recoverable(cells, status) == []


def test_tiny_cohort_every_nonzero_count_hidden():
    status = ["Completed", "Withdrawn", "Lost to follow-up", None, "Completed"]
    flow, members = flow_membership(five(status=status))
    shown = suppress_flow(flow, members)
    assert set(shown["shown"]) == {"<11"}
    zero = suppress_flow(*flow_membership(five(scores={"P1": (0, 14), "P4": (0, 14)})))
    assert zero.set_index("box").loc["assessed_followup", "shown"] == "0"
    only = pt.Cohort(patients=five().patients, outcomes=five().outcomes)
    out = suppress_flow(*flow_membership(only)).set_index("box")["shown"]
    assert out["started"] == "not recorded"


# ------------------------------------------------------------------------------ figure, report
def boxes_of(fig) -> list[str]:
    """The texts of the figure's boxes (arrows are empty annotations)."""
    return [t.get_text() for t in fig.axes[0].texts if t.get_text()]


def test_figure_draws_boxes_counts_and_reasons():
    status = ["Completed", "Withdrawn", "Lost to follow-up", None, "Completed"]
    flow, members = flow_membership(five(status=status))
    fig = plot_flow(suppress_flow(flow, members))
    assert isinstance(fig, matplotlib.figure.Figure)
    texts = boxes_of(fig)
    assert len(texts) == 10  # five steps, four exit boxes and every follow-up score
    assert texts[-1].replace("\n", " ") == (
        "With a follow-up score (whatever step they left at) n = <11"
    )
    assert texts[0] == "Enrolled\nn = <11"
    assert any("Withdrawn: <11" in t for t in texts)
    assert not any("5" in t for t in texts)  # no raw count below 11 is drawn
    alt = alt_text(fig)  # the image's alt text in the report: every box in words
    assert alt.startswith("Participant flow (CONSORT-style), box by box: Enrolled n = <11;")
    assert "Withdrawn: <11" in alt and "5" not in alt
    raw = plot_flow(flow)  # without suppression, the numbers as they are
    assert "Enrolled\nn = 5" in boxes_of(raw)
    only = pt.Cohort(patients=five().patients, outcomes=five().outcomes)
    grey = boxes_of(plot_flow(participant_flow(only)))
    assert "Started the program: not recorded" in grey


def test_report_links_the_flow_with_the_other_tables():
    from ptanalytics.report import sections

    r = sections.prepare_report(pt.default_cohort())
    assert r.disclosure.has_table("flow")
    # The enrolled box counts the same patients as Table 1's total: one quantity, kept shown.
    assert r.disclosure.count(("flow", 0, "n")) == r.disclosure.count(sections.TOTAL) == "300"
    shown = r.disclosure.table("flow").set_index("box")["n"]
    assert shown["not_started"] == "<11" and shown["started"] == "suppressed"
    sections.flow_section(r)
    kinds = [k for k, _ in r.out.items]
    assert kinds == ["figure", "markdown"]
    assert "no status column was mapped" in r.out.items[1][1]


def test_a_status_column_mapped_at_ingest_gives_the_reasons(tmp_path):
    (tmp_path / "pts.csv").write_text(
        "PatientID,StartDate,Status\nA1,2024-01-01,Completed\nA2,2024-01-01,Withdrawn\n"
    )
    (tmp_path / "outcomes.csv").write_text(
        "patient_id,assessed_on,instrument,score\n"
        "A1,2024-01-01,NPRS,5\nA1,2024-01-29,NPRS,3\nA2,2024-01-01,NPRS,6\n"
    )
    (tmp_path / "map.toml").write_text(
        '[[sources]]\nmatch = "pts.csv"\n[sources.patients]\npatient_id = "PatientID"\n'
        'enrolled_on = "StartDate"\n[sources.patients.attributes]\n'
        'status = { column = "Status" }\n\n'
        '[[sources]]\nmatch = "outcomes.csv"\n[sources.outcomes]\npatient_id = "patient_id"\n'
        'assessed_on = "assessed_on"\ninstrument = "instrument"\nscore = "score"\n'
    )
    result = pt.ingest(
        [tmp_path / "pts.csv", tmp_path / "outcomes.csv"], mapping=tmp_path / "map.toml"
    )
    c = counts(participant_flow(result.cohort))
    assert c["started"] is None  # outcomes only
    assert (c["assessed_followup"], c["missed_followup/Withdrawn"]) == (1, 1)
