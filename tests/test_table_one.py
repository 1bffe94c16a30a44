"""Table 1 by group: known answers by hand, missing values counted, small groups suppressed,
outcomes-only cohorts, an arm column, and the SMDs and summaries cross-checked with tableone."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import ptanalytics as pt
from ptanalytics.metrics.table_one import (
    level_order,
    smd_categorical,
    smd_continuous,
    table_one_cells,
    table_one_stats,
)
from ptanalytics.report.disclosure import Disclosure
from ptanalytics.report.tables import group_totals, table_one, table_one_html

DAY0 = pd.Timestamp("2024-03-04")


def _frame() -> pd.DataFrame:
    """Six patients in two arms; one unknown age (A), one unknown sex (B)."""
    return pd.DataFrame(
        {
            "patient_id": [f"p{i}" for i in range(1, 7)],
            "arm": ["A", "A", "A", "B", "B", "B"],
            "age": [30, 40, None, 50, 60, 70],
            "sex": ["female", "male", "female", "male", "male", None],
            "chronicity": ["acute", "acute", "chronic", "subacute", "chronic", "chronic"],
            "nprs_baseline": [4.0, 6.0, 8.0, 5.0, 6.0, 10.0],
        }
    )


def _get(stats, variable, group, statistic, level=""):
    hit = stats[
        (stats["variable"] == variable)
        & (stats["group"] == group)
        & (stats["statistic"] == statistic)
        & (stats["level"] == level)
    ]
    assert len(hit) == 1, (variable, group, statistic, level)
    return float(hit["value"].iloc[0])


def _cohort(frame: pd.DataFrame) -> pt.Cohort:
    """An outcomes-only cohort: the frame's patients, NPRS at enrolment as their baseline."""
    pts = frame.drop(columns=["nprs_baseline"]).assign(
        enrolled_on=pd.to_datetime([DAY0] * len(frame)).astype("datetime64[s]")
    )
    pts["age"] = pd.array(pts["age"], dtype="Int64")
    out = pd.DataFrame(
        {
            "patient_id": frame["patient_id"],
            "assessed_on": pd.to_datetime([DAY0] * len(frame)).astype("datetime64[s]"),
            "instrument": "NPRS",
            "score": frame["nprs_baseline"].astype(float),
        }
    )
    return pt.Cohort(patients=pts, outcomes=out)


# ------------------------------------------------------------------------- numbers, by hand
def test_continuous_known_answers_and_missing_counted():
    stats = table_one_stats(_frame(), group="arm")
    # Age: A has 30, 40 (one unknown); B has 50, 60, 70.
    assert _get(stats, "age", "A", "n") == 2
    assert _get(stats, "age", "A", "n", level="missing") == 1
    assert _get(stats, "age", "Overall", "n", level="missing") == 1
    assert _get(stats, "age", "B", "n", level="missing") == 0
    assert _get(stats, "age", "A", "mean") == pytest.approx(35.0)
    assert _get(stats, "age", "A", "sd") == pytest.approx(math.sqrt(50))  # (25 + 25) / 1
    assert _get(stats, "age", "A", "median") == pytest.approx(35.0)
    assert _get(stats, "age", "A", "q1") == pytest.approx(32.5)  # 30 + 0.25 * 10
    assert _get(stats, "age", "A", "q3") == pytest.approx(37.5)
    assert _get(stats, "age", "B", "sd") == pytest.approx(10.0)
    assert _get(stats, "age", "Overall", "mean") == pytest.approx(50.0)  # the unknown is out
    assert _get(stats, "age", "Overall", "sd") == pytest.approx(math.sqrt(250))
    assert (_get(stats, "age", "Overall", "q1"), _get(stats, "age", "Overall", "q3")) == (40, 60)
    # SMD: |35 - 60| / sqrt((50 + 100) / 2)
    assert _get(stats, "age", "SMD", "smd") == pytest.approx(25 / math.sqrt(75))
    # NPRS: A 4, 6, 8 (mean 6, SD 2); B 5, 6, 10 (mean 7, SD sqrt(7)).
    assert _get(stats, "nprs_baseline", "B", "sd") == pytest.approx(math.sqrt(7))
    assert _get(stats, "nprs_baseline", "SMD", "smd") == pytest.approx(1 / math.sqrt(5.5))
    assert stats.attrs["smd"] == "two groups"


def test_categorical_known_answers_in_vocab_order():
    stats = table_one_stats(_frame(), group="arm")
    sex = stats[(stats["variable"] == "sex") & (stats["statistic"] == "n")]
    assert list(dict.fromkeys(sex["level"])) == ["female", "male", "missing"]
    assert _get(stats, "sex", "A", "n", "female") == 2
    assert _get(stats, "sex", "B", "n", "female") == 0
    assert _get(stats, "sex", "B", "n", "missing") == 1
    assert _get(stats, "sex", "B", "percent", "male") == pytest.approx(200 / 3)  # of all 3
    assert _get(stats, "sex", "Overall", "percent", "male") == pytest.approx(50.0)
    # Two levels: |2/3 - 0| / sqrt((2/3 * 1/3 + 0) / 2) = (2/3) / (1/3) = 2 (known values only).
    assert _get(stats, "sex", "SMD", "smd") == pytest.approx(2.0)
    chron = stats[(stats["variable"] == "chronicity") & (stats["statistic"] == "n")]
    assert list(dict.fromkeys(chron["level"])) == ["acute", "subacute", "chronic", "missing"]
    # Three levels (Yang & Dalton): A (2/3, 0, 1/3), B (0, 1/3, 2/3); acute dropped:
    # d = (-1/3, -1/3); S = [[1/9, -1/9], [-1/9, 2/9]]; S^-1 = [[18, 9], [9, 9]];
    # d' S^-1 d = (18 + 9 + 9 + 9) / 9 = 5.
    assert _get(stats, "chronicity", "SMD", "smd") == pytest.approx(math.sqrt(5))


def test_smd_functions_and_level_order():
    assert smd_continuous(10, 2, 12, 2) == pytest.approx(1.0)
    assert math.isnan(smd_continuous(1, 0, 2, 0))
    assert smd_categorical([0.5, 0.5], [0.5, 0.5]) == 0.0
    # The level dropped does not matter (Mahalanobis distance of the multinomial).
    a, b = [0.2, 0.3, 0.5], [0.4, 0.4, 0.2]
    assert smd_categorical(a, b) == pytest.approx(smd_categorical(a[::-1], b[::-1]))
    assert smd_categorical([0.5, 0.5, 0.0], [0.2, 0.8, 0.0]) == pytest.approx(
        smd_categorical([0.5, 0.5], [0.2, 0.8])
    )  # a level absent from both is left out
    weeks = pd.Series([10, 8, 12, 6, None, 8], dtype="Int64")
    assert level_order(weeks, "guided_weeks") == ["6", "8", "10", "12"]  # numeric, not text
    bands = pd.Series(["high", "low", None, "medium", "zz"])
    assert level_order(bands, "attendance_band") == ["low", "medium", "high", "zz"]


def test_three_groups_take_the_largest_pairwise_smd_and_a_missing_group():
    f = _frame().assign(arm=["A", "A", "B", "B", "C", None])
    f["age"] = pd.array([30, 40, None, 50, 60, 70], dtype="Int64")  # C: one age, no SD
    stats = table_one_stats(f, group="arm")
    assert stats.attrs["smd"] == "largest over pairs of groups"
    assert set(stats["group"]) == {"Overall", "A", "B", "C", "missing", "SMD"}
    assert _get(stats, "patients", "missing", "n") == 1
    # NPRS: A (4, 6), B (8, 5), C (6) has no SD: the pairs with C are NaN and left out.
    means = {"A": 5.0, "B": 6.5}
    sds = {"A": math.sqrt(2), "B": math.sqrt(4.5)}
    expected = abs(means["A"] - means["B"]) / math.sqrt((sds["A"] ** 2 + sds["B"] ** 2) / 2)
    assert _get(stats, "nprs_baseline", "SMD", "smd") == pytest.approx(expected)
    assert _get(stats, "age", "C", "mean") == 60.0 and math.isnan(_get(stats, "age", "C", "sd"))
    assert math.isnan(_get(stats, "age", "B", "sd"))  # B: one known age (50)
    assert math.isnan(_get(stats, "age", "SMD", "smd"))  # no pair with two SDs
    cells = table_one_cells(f, group="arm")
    assert cells[0][:3] == ("patients", "", "Overall") and len(cells[0][3]) == 6
    assert sorted(cells[4][3]) == ["p6"]  # the patients without an arm


# ----------------------------------------------------------------- report table, suppression
def test_report_table_with_an_arm_formats_every_figure():
    cohort = _cohort(_frame())
    t1 = table_one(cohort, min_cell=1)  # arm in the data: grouped by arm
    assert list(t1.columns) == ["characteristic", "level", "Overall", "A", "B", "SMD"]
    rows = t1.set_index(["characteristic", "level"])
    assert rows.loc[("Patients", "n"), ["Overall", "A", "B"]].tolist() == ["6", "3", "3"]
    age = t1.index[t1["characteristic"] == "Age, years"][0]
    assert t1.loc[age, ["level", "A", "B", "SMD"]].tolist() == [
        "mean (SD)",
        "35.0 (7.1)",
        "60.0 (10.0)",
        "2.89",
    ]
    assert t1.loc[age + 1, ["level", "A"]].tolist() == ["median [IQR]", "35.0 [32.5, 37.5]"]
    assert t1.loc[age + 2, ["level", "Overall", "A", "B"]].tolist() == ["missing", "1", "1", "0"]
    sex = t1.index[t1["characteristic"] == "Sex, n (%)"][0]
    assert t1.loc[sex, ["level", "A", "B", "SMD"]].tolist() == [
        "female",
        "2 (66.7)",
        "0 (0.0)",
        "2.00",
    ]
    assert t1.loc[sex + 2, ["level", "B"]].tolist() == ["missing", "1"]
    assert "Chronicity, n (%)" in set(t1["characteristic"])
    assert any("between the two groups" in n for n in t1.attrs["notes"])
    page = table_one_html(t1)
    assert page.count('<td style="text-align: right') == len(t1) * (len(t1.columns) - 2)
    assert "<th" in page and "&lt;" not in page


def test_group_of_three_is_suppressed_and_cannot_be_derived():
    n = 14
    f = pd.DataFrame(
        {
            "patient_id": [f"p{i:02d}" for i in range(n)],
            "arm": ["A"] * 11 + ["B"] * 3,
            "age": [40 + i for i in range(n)],
            "sex": ["female", "male"] * 7,
            "chronicity": ["chronic"] * n,
            "nprs_baseline": [5.0] * n,
        }
    )
    cohort = _cohort(f)
    disc = Disclosure(cohort.patients["patient_id"], min_cell=11)
    t1 = table_one(cohort, disclosure=disc)
    rows = t1.set_index(["characteristic", "level"])
    patients = rows.loc[("Patients", "n")]
    assert patients["Overall"] == "14" and patients["B"] == "<11"
    assert patients["A"] == "suppressed"  # else B = 14 - 11
    assert group_totals(disc) == [("table_one", 0, "n")]  # a group below 11: only the total kept
    age = rows.loc[("Age, years", "mean (SD)")]
    # B's three ages are withheld; so is Overall's mean, which with A's would give B's.
    assert (age["B"], age["Overall"], age["SMD"]) == ("suppressed", "suppressed", "")
    assert age["A"] == "45.0 (3.3)"
    assert t1.loc[t1["characteristic"] == "Chronicity, n (%)", "SMD"].tolist() == [""]
    counts = t1[~t1["level"].isin(["mean (SD)", "median [IQR]"])]
    assert set(counts["B"]) <= {"<11", "suppressed", "0"}  # no count of B is shown


def test_a_hidden_group_total_hides_its_percentages():
    arm = ["A"] * 25 + ["B"] * 3 + ["C"] * 40
    n = len(arm)
    f = pd.DataFrame(
        {
            "patient_id": [f"p{i:02d}" for i in range(n)],
            "arm": arm,
            "age": [40 + i % 20 for i in range(n)],
            "sex": ["female", "male"] * (n // 2),
            "chronicity": ["chronic", "chronic", "chronic", "acute"] * (n // 4),
            "nprs_baseline": [5.0] * n,
        }
    )
    cohort = _cohort(f)
    t1 = table_one(cohort, disclosure=Disclosure(cohort.patients["patient_id"], min_cell=11))
    rows = t1.set_index(["characteristic", "level"])
    assert rows.loc[("Patients", "n"), ["A", "B", "C"]].tolist() == ["suppressed", "<11", "40"]
    # A's 19 chronic patients are shown, but not as "19 (76.0)": 19 / 0.76 would give A's 25.
    chronic = t1.index[t1["characteristic"] == "Chronicity, n (%)"][0] + 1
    assert t1.loc[chronic, ["level", "A"]].tolist() == ["chronic", "19"]
    assert rows.loc[("Sex, n (%)", "female"), "C"] == "20 (50.0)"
    assert rows.loc[("Age, years", "mean (SD)"), "A"] == "48.0 (6.1)"  # over 25 values


def test_outcomes_only_cohort_has_one_column_and_its_missing_counts():
    cohort = _cohort(_frame().drop(columns=["arm"]))
    outcomes = cohort.outcomes
    cohort = pt.Cohort(
        patients=cohort.patients, outcomes=outcomes[outcomes["patient_id"] != "p1"]
    )  # p1: no baseline score
    t1 = table_one(cohort, min_cell=1)
    assert list(t1.columns) == ["characteristic", "level", "Overall"]  # no group, no SMD
    nprs = t1.index[t1["characteristic"] == "Baseline NPRS (0-10)"][0]
    assert t1.loc[nprs, "Overall"] == "7.0 (2.0)"  # 6, 8, 5, 6, 10
    assert t1.loc[nprs + 2, ["level", "Overall"]].tolist() == ["missing", "1"]
    assert "Planned guided weeks, n (%)" not in set(t1["characteristic"])  # not in the data
    assert not any("SMD" in n for n in t1.attrs["notes"])


# --------------------------------------------------------------------- tableone cross-check
def test_default_cohort_agrees_with_tableone():
    # tableone 0.9.6 (pandas 3.1.1), in a scratch venv, on the default cohort's patient summary:
    #   TableOne(d, columns=["age", "nprs_baseline", "odi_baseline", "sex", "chronicity",
    #            "guided_weeks"], categorical=["sex", "chronicity", "guided_weeks"],
    #            groupby="attendance_band", smd=True, pval=False, decimals=4)
    # (and nonnormal=[the three continuous] for median [Q1,Q3]); its SMD table per pair:
    #   age -0.260785 (high,medium) 0.036611 (high,low) -0.296148 (low,medium)
    #   nprs_baseline 0.008221 0.029247 -0.02041; odi_baseline 0.008299 0.138769 -0.126465
    #   sex 0.385623 0.056204 0.327699; chronicity 0.089472 0.059833 0.146746
    #   guided_weeks 0.27262 0.259906 0.505531
    summary = pt.patient_summary(pt.default_cohort())
    stats = table_one_stats(summary, group="attendance_band")
    largest = {
        "age": 0.296148,
        "nprs_baseline": 0.029247,
        "odi_baseline": 0.138769,
        "sex": 0.385623,
        "chronicity": 0.146746,
        "guided_weeks": 0.505531,
    }
    for variable, smd in largest.items():
        assert _get(stats, variable, "SMD", "smd") == pytest.approx(smd, abs=5e-7), variable
    # tableone: age 46.1033 (11.9034) overall, 43.3636 (11.8858) medium;
    # median [Q1,Q3] 42.0000 [35.0000,50.5000] medium; ODI 34.3636 (11.2289) medium.
    assert _get(stats, "age", "Overall", "mean") == pytest.approx(46.1033, abs=5e-5)
    assert _get(stats, "age", "Overall", "sd") == pytest.approx(11.9034, abs=5e-5)
    assert _get(stats, "age", "medium", "mean") == pytest.approx(43.3636, abs=5e-5)
    assert _get(stats, "age", "medium", "sd") == pytest.approx(11.8858, abs=5e-5)
    assert [_get(stats, "age", "medium", s) for s in ("median", "q1", "q3")] == [42.0, 35.0, 50.5]
    assert _get(stats, "odi_baseline", "medium", "mean") == pytest.approx(34.3636, abs=5e-5)
    # tableone: guided_weeks 12 -> 1 (1.8182) in medium; chronic 192 (64.0000) overall.
    assert _get(stats, "guided_weeks", "medium", "n", "12") == 1
    assert _get(stats, "guided_weeks", "medium", "percent", "12") == pytest.approx(1.8182, abs=5e-5)
    assert _get(stats, "chronicity", "Overall", "n", "chronic") == 192
    # Our levels are in vocabulary / numeric order (tableone needed order= for this).
    weeks = stats[(stats["variable"] == "guided_weeks") & (stats["statistic"] == "percent")]
    assert list(dict.fromkeys(weeks["level"])) == ["6", "8", "10", "12"]
