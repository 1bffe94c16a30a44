"""Time to dropout: Kaplan-Meier, log-rank, landmark, counting-process rows and the Cox model."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy import stats

import ptanalytics as pt
from ptanalytics.exceptions import ConfigError
from ptanalytics.models._result import ModelResult
from ptanalytics.models.dropout import (
    category_emphasis,
    cox_dropout,
    dropout_intervals,
    early_adherence_band,
    kaplan_meier,
)
from ptanalytics.models.survival import (
    cox_ph,
    group_labels,
    km_estimate,
    km_median,
    logrank_test,
)
from ptanalytics.plotting import plot_kaplan_meier

D = pd.Timestamp


def _summary(times, events, **extra) -> pd.DataFrame:
    """A hand-made summary: dropouts at their time, the others censored at weeks_planned."""
    n = len(times)
    return pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(n)],
            "dropout": [bool(e) for e in events],
            "dropout_week": pd.array(
                [t if e else None for t, e in zip(times, events, strict=True)], dtype="Int64"
            ),
            "weeks_planned": [t if not e else 26 for t, e in zip(times, events, strict=True)],
            **extra,
        }
    )


@pytest.fixture(scope="module")
def sim():
    cohort = pt.simulate_cohort(3000, seed=5)
    return cohort, pt.patient_weeks(cohort), pt.patient_summary(cohort)


@pytest.fixture
def close_figures():
    yield
    plt.close("all")


# ------------------------------------------------------------------------------------ Kaplan-Meier
def test_kaplan_meier_known_answer():
    # Times 2, 3, 3+, 5, 6+ (+ = censored). At risk / events / survival:
    #   week 2: 5 at risk, 1 event -> S = 4/5 = 0.8
    #   week 3: 4 at risk, 1 event, 1 censored -> S = 0.8 * 3/4 = 0.6
    #   week 5: 2 at risk, 1 event -> S = 0.6 * 1/2 = 0.3
    #   week 6: 1 at risk, censored -> S stays 0.3
    # Greenwood at week 2: var(log S) = 1/(5*4) = 0.05, SE(S) = 0.8 sqrt(0.05) = 0.17889.
    # Log 95% interval (the default, R's): S exp(+-1.96 sqrt(0.05)) = (0.51613, 1.24 -> 1).
    # Log-log: v = sqrt(0.05)/|log 0.8|, S^exp(+-1.96 v) = (0.2038, 0.9692); at week 3 the sum
    #   adds 1/(4*3): (0.1257, 0.8818).
    km = kaplan_meier(_summary([2, 3, 3, 5, 6], [1, 1, 0, 1, 0])).table
    assert list(km["group"]) == ["all"] * 5
    assert list(km["week"]) == [0, 2, 3, 5, 6] and km["week"].dtype == float
    assert list(km["n_at_risk"]) == [5, 5, 4, 2, 1]
    assert list(km["events"]) == [0, 1, 1, 1, 0]
    assert list(km["censored"]) == [0, 0, 1, 0, 1]
    np.testing.assert_allclose(km["survival"], [1, 0.8, 0.6, 0.3, 0.3])
    np.testing.assert_allclose(km["std_error"].iloc[:2], [0, 0.8 * np.sqrt(0.05)])
    np.testing.assert_allclose(km["ci_low"].iloc[:2], [1, 0.8 * np.exp(-1.959964 * 0.2236068)])
    np.testing.assert_allclose(km["ci_high"].iloc[:3], [1, 1, 1])
    assert km.attrs["conf_type"] == "log"
    loglog = kaplan_meier(_summary([2, 3, 3, 5, 6], [1, 1, 0, 1, 0]), conf_type="log-log").table
    np.testing.assert_allclose(loglog["ci_low"].iloc[:3], [1, 0.2038, 0.1257], atol=1e-4)
    np.testing.assert_allclose(loglog["ci_high"].iloc[:3], [1, 0.9692, 0.8818], atol=1e-4)
    for table in (km, loglog):
        assert (table["ci_low"] <= table["survival"]).all()
        assert (table["survival"] <= table["ci_high"]).all()
    assert "logrank_p" not in km and "logrank_p" not in km.attrs


def test_kaplan_meier_week_zero_dropouts_follow_the_origin_row():
    # Two of four never started (dropout week 0): origin S = 1, then S(0) = 2/4.
    km = kaplan_meier(_summary([0, 0, 4, 8], [1, 1, 1, 0])).table
    assert list(km["week"]) == [0, 0, 4, 8]
    np.testing.assert_allclose(km["survival"], [1, 0.5, 0.25, 0.25])
    assert list(km["n_at_risk"]) == [4, 4, 2, 1]


def test_logrank_separates_different_groups_and_not_identical_ones(rng):
    early = np.minimum(rng.geometric(0.3, 60), 26)
    late = np.minimum(rng.geometric(0.03, 60), 26)
    times = np.concatenate([early, late])
    s = _summary(list(times), list(times < 26), arm=["a"] * 60 + ["b"] * 60)
    km = kaplan_meier(s, by="arm").table
    assert set(km["group"]) == {"a", "b"}
    assert km.attrs["logrank_p"] < 0.05
    assert (km["logrank_p"] == km.attrs["logrank_p"]).all()
    same = _summary(list(early) * 2, list(early < 26) * 2, arm=["a"] * 60 + ["b"] * 60)
    assert kaplan_meier(same, by="arm").table.attrs["logrank_p"] > 0.5


def test_kaplan_meier_by_keeps_category_order_and_drops_missing_groups():
    s = _summary(
        [1, 2, 3, 4, 5],
        [1, 1, 1, 1, 0],
        band=pd.Categorical(["high", "low", None, "low", "high"], categories=["low", "high"]),
    )
    km = kaplan_meier(s, by="band").table
    assert list(dict.fromkeys(km["group"])) == ["low", "high"]
    assert km.groupby("group", sort=False)["n_at_risk"].first().to_dict() == {"low": 2, "high": 2}


def test_landmark_excludes_early_dropouts_and_counts_from_the_landmark():
    # Dropouts at 1, 3 (before week 4: excluded), 4 (kept, time 0), 6 (time 2); two completers
    # censored at 10 (time 6); one completer planned for 3 weeks (censored before: excluded).
    s = _summary([1, 3, 4, 6, 10, 10, 3], [1, 1, 1, 1, 0, 0, 0])
    km = kaplan_meier(s, landmark_week=4).table
    assert km["n_at_risk"].iloc[0] == 4
    assert list(km["week"]) == [0, 0, 2, 6]
    assert list(km["events"]) == [0, 1, 1, 0]
    np.testing.assert_allclose(km["survival"], [1, 0.75, 0.5, 0.5])
    assert km.attrs["landmark_week"] == 4


def test_landmark_on_a_simulated_cohort(sim):
    _cohort, weeks, summary = sim
    early = early_adherence_band(weeks)
    merged = summary.merge(early, on="patient_id")
    km = kaplan_meier(merged, by="early_band", landmark_week=4).table
    still_in = (~summary["dropout"]) | (summary["dropout_week"] >= 4)
    assert km.loc[km["week"].eq(0) & km["events"].eq(0), "n_at_risk"].sum() == still_in.sum()
    assert km.attrs["logrank_p"] < 0.05  # low early adherence: more dropout later
    last = km.groupby("group", sort=False)["survival"].last()
    assert last["low"] < last["high"]


def test_early_adherence_band_by_hand():
    weeks = pd.DataFrame(
        {
            "patient_id": ["A"] * 6 + ["B"] * 2 + ["C"] * 2,
            "week": [0, 1, 2, 3, 4, 5, 0, 1, 0, 1],
            "sessions_prescribed": [2, 2, 2, 2, 2, 2, 2, 2, 0, 0],
            "sessions_completed": [2, 2, 1, 1, 0, 0, 1, 0, 0, 0],
        }
    )
    out = early_adherence_band(weeks)
    assert list(out.columns) == ["patient_id", "early_adherence", "early_band"]
    # A: (2+2+1+1)/8 = 0.75 over weeks 0-3 (weeks 4-5 ignored); B: 1/4; C: nothing prescribed.
    np.testing.assert_allclose(out["early_adherence"], [0.75, 0.25, np.nan])
    assert list(out["early_band"].astype("object").fillna("?")) == ["high", "low", "?"]
    assert early_adherence_band(weeks, landmark_week=2)["early_band"].iloc[0] == "high"
    assert early_adherence_band(weeks, bands=(0.7, 0.8))["early_band"].iloc[0] == "medium"


def test_category_emphasis():
    shares = {f"share_{c}": [0.0, 0.1, np.nan] for c in pt.CATEGORIES}
    shares["share_aerobic"] = [0.0, 0.6, np.nan]
    out = category_emphasis(pd.DataFrame(shares, index=[5, 6, 7]))
    assert out.name == "category_emphasis"
    assert out.to_dict() == {5: "none", 6: "aerobic", 7: "none"}


# ------------------------------------------------------------------------------------ intervals
@pytest.fixture
def two_patients():
    """A: a session every week of weeks 0-4 (completer, 5 weeks planned), NPRS in weeks 0, 1, 3.
    B: sessions in weeks 0-1 only, program to week 4: dropout in week 2; NPRS in weeks 0, 1."""
    patients = pd.DataFrame(
        {
            "patient_id": ["A", "B"],
            "enrolled_on": [D("2024-01-01"), D("2024-01-01")],
            "guided_weeks": [5, 5],
            "followup_weeks": [5, 5],
            "age": [40, 60],
        }
    )
    rx = pd.DataFrame(
        {
            "patient_id": ["A", "B"],
            "phase": ["guided", "guided"],
            "exercise": ["cat_cow", "cat_cow"],
            "category": ["flexibility", "flexibility"],
            "sessions_per_week": [1, 1],
            "supervised_per_week": [0, 0],
            "sets": [1, 1],
            "start_on": [D("2024-01-01"), D("2024-01-01")],
            "end_on": [D("2024-02-04"), D("2024-02-04")],
        }
    )
    days = [0, 7, 14, 21, 28, 0, 7]
    sessions = pd.DataFrame(
        {
            "patient_id": ["A"] * 5 + ["B"] * 2,
            "performed_on": [D("2024-01-01") + pd.Timedelta(days=d) for d in days],
            "phase": ["guided"] * 7,
            "exercise": ["cat_cow"] * 7,
            "category": ["flexibility"] * 7,
            "supervised": [False] * 7,
            "sets": [1] * 7,
            "reps": [10] * 7,
            "hold_s": [0] * 7,
            "duration_min": [2.0] * 7,
        }
    )
    outcomes = pd.DataFrame(
        {
            "patient_id": ["A", "A", "A", "A", "B", "B"],
            "assessed_on": [D("2024-01-01") + pd.Timedelta(days=d) for d in (0, 8, 22, 35, 0, 9)],
            "instrument": ["NPRS"] * 6,
            "score": [6.0, 5.0, 2.0, 1.0, 8.0, 9.0],
        }
    )
    return pt.Cohort(patients=patients, prescriptions=rx, sessions=sessions, outcomes=outcomes)


def test_dropout_intervals_by_hand(two_patients):
    weeks, summary = pt.patient_weeks(two_patients), pt.patient_summary(two_patients)
    assert list(summary["dropout"]) == [False, True] and summary["dropout_week"].iloc[1] == 2
    iv = dropout_intervals(weeks, summary)
    assert list(iv.columns[:6]) == [
        "patient_id",
        "start",
        "stop",
        "event",
        "pain_change",
        "nprs_locf",
    ]
    # A: weeks 0-4 (censored at weeks_planned = 5). Interval w uses NPRS of weeks 1 .. w-1:
    #   w=0,1: none yet -> 0; w=2: week 1 (5) - 6 = -1; w=3: carried forward -1;
    #   w=4: week 3 (2) - 6 = -4. The follow-up score (week 5) is outside the rows.
    a = iv[iv["patient_id"] == "A"]
    assert list(a["start"]) == [0, 1, 2, 3, 4] and list(a["stop"]) == [1, 2, 3, 4, 5]
    assert list(a["event"]) == [0, 0, 0, 0, 0]
    assert list(a["pain_change"]) == [0, 0, -1, -1, -4]
    # B: weeks 0-2, the event in the dropout week's interval [2, 3); w=2: week 1 (9) - 8 = +1.
    b = iv[iv["patient_id"] == "B"]
    assert list(b["start"]) == [0, 1, 2] and list(b["event"]) == [0, 0, 1]
    assert list(b["pain_change"]) == [0, 0, 1]
    assert (iv["nprs_baseline"] == iv["patient_id"].map({"A": 6.0, "B": 8.0})).all()
    # The same rows from an untruncated weeks frame.
    full = pt.patient_weeks(two_patients, truncate_at_dropout=False)
    pd.testing.assert_frame_equal(dropout_intervals(full, summary), iv)


def test_dropout_intervals_on_a_simulated_cohort(sim):
    _cohort, weeks, summary = sim
    iv = dropout_intervals(weeks, summary, covariates=("age", "sex"))
    events = iv.groupby("patient_id", sort=False)["event"].sum()
    dropped = summary.set_index("patient_id")["dropout"]
    assert (events[dropped[dropped].index] == 1).all()
    assert (events.reindex(dropped[~dropped].index, fill_value=0) == 0).all()
    ev = iv[iv["event"] == 1].set_index("patient_id")["start"]
    assert (ev == summary.set_index("patient_id").loc[ev.index, "dropout_week"]).all()
    last = iv.groupby("patient_id", sort=False)["stop"].max()
    completers = summary.loc[~summary["dropout"]].set_index("patient_id")["weeks_planned"]
    assert (last[completers.index] == completers).all()
    assert iv["pain_change"].notna().all() and iv["sex"].dtype == summary["sex"].dtype


# ------------------------------------------------------------------------------------ Cox
def test_cox_dropout_recovers_a_pain_effect(sim):
    cohort, weeks, summary = sim
    truth = {e["term"]: e["value"] for e in cohort.truth["effects"]}
    assert truth["pain_change_from_baseline"] == 0.4
    before = (weeks.copy(), summary.copy())
    result = cox_dropout(weeks, summary)
    table = result.table
    pd.testing.assert_frame_equal(weeks, before[0])
    pd.testing.assert_frame_equal(summary, before[1])
    assert list(table["term"]) == ["pain_change", "nprs_baseline", "age"]
    assert set(table["scale"]) == {"hazard ratio"} and set(table["model"]) == {"cox_dropout"}
    assert table["n_events"].iloc[0] == summary["dropout"].sum()
    pain = table.set_index("term").loc["pain_change"]
    assert pain["ci_low"] > 1  # worse pain, more dropout
    assert pain["estimate"] < np.exp(0.4) * 1.2  # observed pain attenuates the latent effect
    assert result.n == table["n_patients"].iloc[0] and result.fit.n_events == table["n_events"][0]
    assert any("association" in note for note in result.notes)


def test_cox_dropout_categorical_and_time_varying_covariates(sim):
    _cohort, weeks, summary = sim
    table = cox_dropout(weeks, summary, covariates=("sex", "maintenance"), alpha=0.1).table
    assert list(table["term"]) == ["pain_change", "sex[T.male]", "maintenance"]
    assert table.set_index("term").loc["maintenance", "ci_high"] < 1  # odds ratio 0.35


def test_cox_known_answer_hazard_ratio_two():
    rng = np.random.default_rng(2024)
    n = 2000
    x = rng.integers(0, 2, n)
    t = rng.exponential(1 / np.where(x == 1, 2.0, 1.0))  # hazard 1 or 2: HR 2, no censoring
    intervals = pd.DataFrame({"start": 0.0, "stop": t, "event": 1, "x": x})
    table = cox_ph(intervals, time="stop", start="start", event="event", covariates=["x"]).table
    assert table["estimate"].iloc[0] == pytest.approx(2.0, rel=0.10)
    assert table["ci_low"].iloc[0] < 2 < table["ci_high"].iloc[0]


# ------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s, w: kaplan_meier(s, by="nope"), "by='nope'"),
        (lambda s, w: kaplan_meier(s, landmark_week=-1), "landmark_week=-1"),
        (lambda s, w: kaplan_meier(s, landmark_week=2.5), "landmark_week=2.5"),
        (lambda s, w: kaplan_meier(s, alpha=1.5), "alpha=1.5"),
        (lambda s, w: kaplan_meier(s.drop(columns="dropout")), "dropout"),
        (lambda s, w: early_adherence_band(w, landmark_week=0), "landmark_week=0"),
        (lambda s, w: early_adherence_band(w, bands=(0.8, 0.5)), "bands="),
        (lambda s, w: cox_dropout(w, s, covariates=("nope",)), "covariates="),
        (lambda s, w: dropout_intervals(w.drop(columns="nprs"), s), "nprs"),
        (lambda s, w: category_emphasis(s.drop(columns="share_aerobic")), "share_aerobic"),
    ],
)
def test_bad_arguments_raise_config_error(two_patients, call, match):
    summary, weeks = pt.patient_summary(two_patients), pt.patient_weeks(two_patients)
    with pytest.raises(ConfigError, match=match):
        call(summary, weeks)


# ------------------------------------------------------------------------------------ plot
def test_plot_kaplan_meier(close_figures):
    s = _summary([2, 3, 3, 5, 6, 1, 1, 2], [1, 1, 0, 1, 0, 1, 1, 1], arm=list("aaaaabbb"))
    km = kaplan_meier(s, by="arm")
    fig = plot_kaplan_meier(km)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.get_lines()) >= 2
    assert ax.get_xlabel() == "Weeks since enrolment"
    assert ax.get_ylabel() == "Still in the program"
    assert "log-rank p" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    fig.canvas.draw()


def test_plot_kaplan_meier_on_given_axes(close_figures):
    fig, ax = plt.subplots()
    out = plot_kaplan_meier(kaplan_meier(_summary([2, 3, 5], [1, 0, 1])), ax=ax)
    assert out is fig and len(ax.get_lines()) == 1 and "log-rank" not in ax.get_title()
    assert plt.fignum_exists(fig.number)


# ------------------------------------------------------------------------------------ any data
def test_km_estimate_keeps_real_valued_times_and_does_not_mutate():
    data = pd.DataFrame({"t": [0.5, 1.25, 1.25, 2.75, 3.1], "e": [1, 1, 0, True, 0]})
    before = data.copy()
    result = km_estimate(data, time="t", event="e")
    km = result.table
    pd.testing.assert_frame_equal(data, before)
    assert result.n == 5 and result.notes == []
    assert list(km.columns) == [
        "group",
        "time",
        "n_at_risk",
        "events",
        "censored",
        "survival",
        "std_error",
        "ci_low",
        "ci_high",
    ]
    assert list(km["time"]) == [0.5, 1.25, 2.75, 3.1]
    np.testing.assert_allclose(km["survival"], [0.8, 0.6, 0.3, 0.3])
    assert km.attrs == {"by": None, "conf_type": "log", "alpha": 0.05}


def test_km_median_midpoint_rule_and_interval():
    # Four deaths at 1, 2, 3, 4: S = 0.75, 0.5, 0.25, 0 -> flat at exactly 0.5 on [2, 3): the
    # median is (2 + 3) / 2 = 2.5 (R: print(survfit(Surv(1:4, rep(1, 4)) ~ 1)) gives 2.5).
    # Arm b: 1.5, 2.5, 2.5+, 6: flat at 0.5 from 2.5 to 6 -> (2.5 + 6) / 2 = 4.25.
    data = pd.DataFrame(
        {
            "time": [1, 2, 3, 4, 1.5, 2.5, 2.5, 6],
            "dead": [1, 1, 1, 1, 1, 1, 0, 1],
            "arm": list("aaaabbbb"),
        }
    )
    med = km_median(km_estimate(data, time="time", event="dead", by="arm")).table
    assert list(med.columns) == ["group", "n", "events", "median", "ci_low", "ci_high"]
    assert list(med["median"]) == [2.5, 4.25]
    assert list(med["n"]) == [4, 4] and list(med["events"]) == [4, 3]
    # The lower band reaches 0.5 first: at 1 for arm a (R: 0.95LCL = 1); the upper never does.
    assert med["ci_low"].iloc[0] == 1 and np.isnan(med["ci_high"]).all()
    never = km_median(km_estimate(data.assign(dead=0), time="time", event="dead")).table
    assert np.isnan(never["median"].iloc[0])


def test_logrank_known_answer():
    # a dies at 1 and 3, b at 2 and 4. O_a = 2, E_a = 2/4 + 1/3 + 1/2 + 0 = 4/3,
    # V = 1/4 + 2/9 + 1/4 = 13/18: chisq = (2/3)^2 / (13/18) = 8/13, df 1.
    data = pd.DataFrame({"t": [1, 3, 2, 4], "e": [1, 1, 1, 1], "g": ["a", "a", "b", "b"]})
    result = logrank_test(data, time="t", event="e", group="g")
    out = result.table
    assert (result.chisq, result.df, result.p_value, result.n) == pytest.approx(
        (8 / 13, 1, stats.chi2.sf(8 / 13, 1), 4)
    )
    assert list(out["group"]) == ["a", "b"] and list(out["observed"]) == [2, 2]
    np.testing.assert_allclose(out["expected"], [4 / 3, 8 / 3])
    np.testing.assert_allclose(out["chisq"], 8 / 13)
    assert (out["df"] == 1).all()
    np.testing.assert_allclose(out["p_value"], stats.chi2.sf(8 / 13, 1))


def test_cox_split_rows_equal_one_row_per_subject():
    # The bug this module fixed: back-to-back (start, stop] rows of one subject must give the
    # same fit as one row (0, stop]. entry=start in statsmodels' PHReg counted them twice.
    rng = np.random.default_rng(11)
    n = 300
    x = rng.normal(size=n)
    t = np.ceil(rng.exponential(8 * np.exp(-0.5 * x)))
    e = (t <= 10).astype(int)
    t = np.minimum(t, 10)
    whole = pd.DataFrame({"id": range(n), "stop": t, "event": e, "x": x})
    split = whole.loc[whole.index.repeat(t.astype(int))].reset_index(drop=True)
    split["start"] = split.groupby("id").cumcount().astype(float)
    split["event"] = np.where(split["start"] + 1 == split["stop"], split["event"], 0)
    split["stop"] = split["start"] + 1
    for ties in ("efron", "breslow"):
        a = cox_ph(whole, time="stop", event="event", covariates=["x"], ties=ties)
        b = cox_ph(split, time="stop", start="start", event="event", covariates=["x"], ties=ties)
        np.testing.assert_allclose(b.coef, a.coef, rtol=1e-10)
        np.testing.assert_allclose(b.table["std_error"], a.table["std_error"], rtol=1e-10)
        np.testing.assert_allclose(b.loglik, a.loglik, rtol=1e-12)
        assert b.n == len(split) and b.n_events == a.n_events == e.sum()


def test_cox_ph_result_and_factor_coding():
    rng = np.random.default_rng(3)
    n = 400
    arm = rng.choice(["placebo", "low", "high"], n)
    hazard = np.select([arm == "low", arm == "high"], [1.5, 2.5], 1.0)
    data = pd.DataFrame(
        {
            "t": rng.exponential(1 / hazard),
            "e": rng.random(n) < 0.8,
            "arm": pd.Categorical(arm, categories=["placebo", "low", "high"]),
            "flag": rng.random(n) < 0.5,
        }
    )
    before = data.copy()
    fit = cox_ph(data, time="t", event="e", covariates=["arm", "flag"])
    pd.testing.assert_frame_equal(data, before)
    assert list(fit.table["term"]) == ["arm[T.low]", "arm[T.high]", "flag"]
    assert list(fit.table.columns) == [
        "term",
        "estimate",
        "coef",
        "std_error",
        "statistic",
        "ci_low",
        "ci_high",
        "p_value",
    ]
    np.testing.assert_allclose(fit.table["estimate"], np.exp(fit.coef))
    assert fit.converged and fit.n == n and fit.n_events == data["e"].sum()
    assert fit.lr_df == 3 and fit.lr_chisq == pytest.approx(2 * (fit.loglik - fit.loglik_null))
    assert 1.2 < fit.table["estimate"].iloc[1] / fit.table["estimate"].iloc[0] < 2.5
    # Text is coded against its first value in sorted order ('high'), as R's factor().
    text = cox_ph(data.assign(arm=arm), time="t", event="e", covariates=["arm"])
    assert list(text.table["term"]) == ["arm[T.low]", "arm[T.placebo]"]
    assert text.loglik == pytest.approx(cox_ph(data, time="t", event="e", covariates="arm").loglik)


def test_cox_ph_infinite_coefficient_is_a_note():
    # Every x = 1 subject dies before any x = 0 subject: the likelihood is monotone in beta.
    data = pd.DataFrame({"t": np.arange(1.0, 11.0), "e": 1, "x": [1] * 5 + [0] * 5})
    fit = cox_ph(data, time="t", event="e", covariates=["x"])
    assert any("may be infinite" in note for note in fit.notes)
    assert fit.coef["x"] > 5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(time="nope"), "time='nope' is not a column"),
        (dict(event="when"), "event='when' has dtype|event='when' has values"),
        (dict(covariates=["nope"]), "covariates=\\('nope',\\)"),
        (dict(covariates=["const"]), "covariate 'const' is constant"),
        (dict(covariates=["x", "x2"]), "'x2' is a linear combination"),
        (dict(covariates=["mixed"]), "covariate 'mixed' mixes text"),
        (dict(covariates=["when"]), "covariate 'when' has dtype"),
        (dict(start="late"), "start='late' is not before time='t' in 1 row"),
        (dict(ties="exact"), "ties='exact'"),
        (dict(event="none"), "event='none' has no event"),
        (dict(max_iter=0), "max_iter=0"),
    ],
)
def test_cox_ph_errors_name_the_argument(kwargs, match):
    data = pd.DataFrame(
        {
            "t": [1.0, 2, 3, 4, 5, 6],
            "e": [1, 0, 1, 1, 0, 1],
            "none": 0,
            "x": [0.1, 0.4, 0.2, 0.9, 0.5, 0.3],
            "const": 2.0,
            "mixed": ["a", 1, "b", "a", 2, "b"],
            "when": pd.date_range("2024-01-01", periods=6),
            "late": [0, 0, 0, 4, 0, 0],
        }
    )
    data["x2"] = 2 * data["x"] + 1
    args = dict(time="t", event="e", covariates=["x"]) | kwargs
    with pytest.raises(ConfigError, match=match):
        cox_ph(data, **args)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda d: km_estimate(d, time="t", event="status"), "event='status' has values \\[2.0\\]"),
        (lambda d: km_estimate(d, time="g", event="e"), "time='g' has dtype"),
        (lambda d: km_estimate(d, time="t", event="e", conf_type="logit"), "conf_type='logit'"),
        (lambda d: km_estimate(d.to_numpy(), time="t", event="e"), "data is a ndarray"),
        (lambda d: km_estimate(d, time="t", event="e", by="nope"), "by='nope'"),
        (lambda d: km_median(d), "km is a DataFrame"),
        (lambda d: logrank_test(d, time="t", event="e", group="one"), "at least two groups"),
        (lambda d: logrank_test(d.assign(e=0), time="t", event="e", group="g"), "no event"),
    ],
)
def test_km_and_logrank_errors(call, match):
    data = pd.DataFrame(
        {"t": [1.0, 2, 3, 4], "e": [1, 0, 1, 1], "status": [1, 2, 2, 1], "g": list("abab")}
    )
    data["one"] = "x"
    with pytest.raises(ConfigError, match=match):
        call(data)


# ------------------------------------------------------------------------------------ protocol
def test_every_result_follows_the_protocol(close_figures, sim):
    _cohort, weeks, summary = sim
    data = pd.DataFrame(
        {"t": [1.0, 2, 3, 4, 5, 6], "e": [1, 0, 1, 1, 0, 1], "g": list("ababab"), "x": range(6)}
    )
    km = km_estimate(data, time="t", event="e", by="g")
    results = [
        km,
        km_median(km),
        logrank_test(data, time="t", event="e", group="g"),
        cox_ph(data, time="t", event="e", covariates=["x"]),
        kaplan_meier(summary, by="sex"),
        cox_dropout(weeks, summary),
    ]
    for result in results:
        assert isinstance(result, ModelResult)
        assert isinstance(result.table, pd.DataFrame) and isinstance(result.notes, list)
        assert result.n > 0
        assert isinstance(result.figure(), Figure)
        fig, ax = plt.subplots()
        assert result.figure(ax=ax) is fig
    assert results[4].n == len(summary)
    assert km.figure().axes[0].get_ylabel() == "Survival"


def test_by_takes_a_list_of_columns():
    s = _summary(
        [1, 2, 3, 4, 5, 6],
        [1, 1, 1, 0, 1, 0],
        band=pd.Categorical(["high", "low", "low", "high", None, "low"], ["low", "high"]),
        sex=["m", "f", "m", "f", "f", "m"],
    )
    km = kaplan_meier(s, by=["band", "sex"])
    assert list(dict.fromkeys(km.table["group"])) == ["low, f", "low, m", "high, f", "high, m"]
    assert km.n == 5 and km.notes == [
        "1 patient(s) with a missing by=['band', 'sex'] were left out."
    ]
    pd.testing.assert_frame_equal(
        kaplan_meier(s, by=["band"]).table, kaplan_meier(s, by="band").table
    )
    labels = group_labels(s, ["band", "sex"])
    assert labels.name == "band, sex" and labels.isna().sum() == 1
    data = s.assign(t=[1.0, 2, 3, 4, 5, 6], e=[1, 1, 1, 0, 1, 0])
    table = km_estimate(data, time="t", event="e", by=["band", "sex"]).table
    assert set(table["group"]) == {"low, f", "low, m", "high, f", "high, m"}
    with pytest.raises(ConfigError, match=r"by=\['band', 'nope'\] is not a column of summary"):
        kaplan_meier(s, by=["band", "nope"])


def test_km_median_of_time_to_dropout_and_landmark_notes():
    s = _summary([1, 3, 4, 6, 10, 10, 3], [1, 1, 1, 1, 0, 0, 0])
    km = kaplan_meier(s, landmark_week=4)
    assert km.n == 4 and km.notes[0].startswith("3 patient(s) no longer in the program")
    med = km_median(km).table
    # Landmark curve: S = 0.75 at 0, 0.5 at 2 (flat to the censoring at 6): midpoint rule, but
    # the curve never drops below 0.5, so the median is 2.
    assert med["median"].iloc[0] == 2 and med["n"].iloc[0] == 4 and med["events"].iloc[0] == 2
