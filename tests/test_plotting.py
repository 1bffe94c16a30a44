"""The descriptive figures of :mod:`ptanalytics.plotting`: each returns its Figure, draws on the
Axes it is given, draws what its data holds, and refuses input it cannot draw with a ConfigError
that names the fix."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from ptanalytics import plotting
from ptanalytics.exceptions import ConfigError
from ptanalytics.metrics.describe import patient_shares
from ptanalytics.vocab import CATEGORIES


@pytest.fixture
def summary(rng):
    n = 40
    return pd.DataFrame(
        {
            "patient_id": [f"P{i:02d}" for i in range(n)],
            "age": rng.integers(20, 80, n).astype(float),
            "nprs_baseline": rng.integers(3, 9, n).astype(float),
            "dropout": np.arange(n) % 4 == 0,
            "dropout_week": np.where(np.arange(n) % 4 == 0, np.arange(n) % 7 + 1, np.nan),
            "band": np.where(np.arange(n) % 2 == 0, "low", "high"),
        }
    )


def _weekly(groups, column="phase", weeks=5):
    rows = [
        {"week": w, column: g, "mean": 0.5 + 0.05 * w + 0.1 * i, "n": 10}
        for i, g in enumerate(groups)
        for w in range(weeks)
    ]
    return pd.DataFrame(rows)


def _responders(groups=("high", "low")):
    return pd.DataFrame(
        {
            "band": list(groups),
            "proportion": [0.4, 0.6],
            "ci_low": [0.3, 0.5],
            "ci_high": [0.5, 0.7],
            "n": [20, 20],
        }
    )


def _odi():
    return pd.DataFrame(
        {"odi_baseline": [30.0, 32.0], "odi_end_guided": [22.0, 25.0], "odi_followup": [20, 24]},
        index=pd.Index(["high", "low"], name="band"),
    )


def _texts(ax):
    return ax.get_xlabel(), ax.get_ylabel(), ax.get_title()


# ------------------------------------------------------------------------------ one panel
def test_weekly_missing_draws_one_bar_per_week_in_percent():
    table = pd.DataFrame({"missing": [0.0, 0.25, 0.5]}, index=pd.Index([0, 1, 2], name="week"))
    fig = plotting.plot_weekly_missing(table)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == [0.0, 25.0, 50.0]
    assert _texts(ax) == (
        "Week since enrolment",
        "NPRS missing (% of patients)",
        "Weekly NPRS missing, by week (weeks after dropout included)",
    )
    assert ax.get_ylim() == (0, 100)
    assert (
        plotting.plot_weekly_missing(table, instrument="ODI").axes[0].get_ylabel().startswith("ODI")
    )


def test_weekly_minutes_stacks_one_area_per_category():
    minutes = pd.DataFrame(
        {c: [1.0 + i, 2.0, 3.0] for i, c in enumerate(CATEGORIES)},
        index=pd.Index([0, 1, 2], name="week"),
    )
    fig = plotting.plot_weekly_minutes(minutes)
    ax = fig.axes[0]
    assert len(ax.collections) == len(CATEGORIES)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(CATEGORIES)
    assert ax.get_title() == "Exercise minutes by category (patients still in the program)"


def test_dropout_weeks_draws_one_bar_per_week(summary):
    counts = patient_shares(summary[summary["dropout"]], "dropout_week")
    fig = plotting.plot_dropout_weeks(counts, rule="inactivity")
    ax = fig.axes[0]
    assert len(ax.patches) == len(counts)
    assert sum(p.get_height() for p in ax.patches) == summary["dropout"].sum()
    assert _texts(ax) == ("Dropout week", "Patients", "When patients dropped out (inactivity rule)")


def test_responders_by_group_one_series_per_analysis():
    mi = _responders().rename(columns={"proportion": "estimate"})
    tables = {"ITT": _responders(), "completers": _responders(), "multiple imputation": mi}
    fig = plotting.plot_responders_by_group(
        tables, by="band", preset="ostelo", timepoint="followup"
    )
    ax = fig.axes[0]
    assert len(ax.containers) == 3  # one errorbar container per analysis
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(tables)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["high", "low"]
    xs = [c.lines[0].get_xdata().tolist() for c in ax.containers]
    assert xs == [[-0.2, 0.8], [0.0, 1.0], [0.2, 1.2]]
    assert _texts(ax) == (
        "Band",
        "Responders (95% CI)",
        "ostelo responders at followup (association, not effect)",
    )


def test_patient_slopes_histogram_and_average(rng):
    slopes = pd.Series(rng.normal(-0.3, 0.2, 200))
    fig = plotting.plot_patient_slopes(slopes, average=-0.3)
    ax = fig.axes[0]
    assert len(ax.patches) == 40
    assert sum(p.get_height() for p in ax.patches) == 200
    assert ax.lines[0].get_xdata()[0] == -0.3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["average"]
    assert ax.get_xlabel() == "Change in NPRS per 4 weeks (patient-specific)"


@pytest.mark.parametrize(
    "draw",
    [
        lambda ax: plotting.plot_weekly_missing(pd.DataFrame({"missing": [0.1]}, index=[0]), ax=ax),
        lambda ax: plotting.plot_weekly_minutes(
            pd.DataFrame({c: [1.0] for c in CATEGORIES}), ax=ax
        ),
        lambda ax: plotting.plot_dropout_weeks(
            pd.DataFrame({"patients": [2]}, index=[3.0]), rule="inactivity", ax=ax
        ),
        lambda ax: plotting.plot_responders_by_group(
            {"ITT": _responders()}, by="band", preset="p", timepoint="t", ax=ax
        ),
        lambda ax: plotting.plot_patient_slopes([0.1, 0.2], average=0.15, ax=ax),
    ],
    ids=["missing", "minutes", "dropout", "responders", "slopes"],
)
def test_one_panel_figures_draw_on_the_given_ax(draw):
    fig, (_, ax) = plt.subplots(1, 2)
    assert draw(ax) is fig
    assert ax.has_data()
    assert not fig.axes[0].has_data()


# ------------------------------------------------------------------------------ two panels
def test_cohort_overview_age_histogram_and_baseline_bars(summary):
    baseline = patient_shares(summary, "nprs_baseline", dropna=True)
    fig = plotting.plot_cohort_overview(summary["age"], baseline)
    ax_age, ax_pain = fig.axes
    assert len(ax_age.patches) == 20
    assert sum(p.get_height() for p in ax_age.patches) == len(summary)
    assert [p.get_height() for p in ax_pain.patches] == baseline["patients"].tolist()
    assert _texts(ax_age) == ("Age at enrolment (years)", "Patients", "Age")
    assert _texts(ax_pain) == ("NPRS at baseline (0-10)", "Patients", "Baseline pain")
    no_ages = plotting.plot_cohort_overview(None, baseline)  # a cohort without ages
    assert not no_ages.axes[0].patches and no_ages.axes[0].get_title() == "Age"


def test_weekly_adherence_lines_by_phase_and_patients_below():
    by_week = _weekly(["guided", "maintenance", "none"])
    patients = pd.Series([40, 38, 35, 30, 28], index=range(5))
    fig = plotting.plot_weekly_adherence(by_week, patients)
    ax, ax_n = fig.axes
    assert [line.get_label() for line in ax.lines] == ["guided", "maintenance"]  # no "none"
    assert ax.lines[0].get_ydata()[0] == pytest.approx(50.0)  # in percent
    assert ax_n.lines[0].get_ydata().tolist() == patients.tolist()
    assert ax.get_title() == "Weekly adherence by phase"
    assert ax_n.get_ylabel() == "Patients in program"


def test_outcomes_by_group_nprs_by_week_and_odi_by_timepoint():
    fig = plotting.plot_outcomes_by_group(_weekly(["high", "low"], "band"), _odi(), by="band")
    ax, ax_odi = fig.axes
    assert [line.get_label() for line in ax.lines] == ["high", "low"]
    assert [line.get_label() for line in ax_odi.lines] == ["high", "low"]
    assert ax_odi.lines[0].get_ydata().tolist() == [30.0, 22.0, 20.0]
    assert [t.get_text() for t in ax_odi.get_xticklabels()] == [
        "baseline",
        "end of guided",
        "follow-up",
    ]
    assert fig.get_suptitle() == "Observed outcomes by band (association, not effect)"
    assert ax.get_title() == "NPRS by week" and ax_odi.get_title() == "ODI"


@pytest.mark.parametrize(
    "draw",
    [
        lambda axes, s: plotting.plot_cohort_overview(
            s["age"], patient_shares(s, "nprs_baseline"), axes=axes
        ),
        lambda axes, s: plotting.plot_weekly_adherence(
            _weekly(["guided"]), pd.Series([1, 2], index=[0, 1]), axes=axes
        ),
        lambda axes, s: plotting.plot_outcomes_by_group(
            _weekly(["high", "low"], "band"), _odi(), by="band", axes=axes
        ),
    ],
    ids=["overview", "adherence", "outcomes"],
)
def test_two_panel_figures_draw_on_the_given_axes(draw, summary):
    fig, axes = plt.subplots(1, 3)
    assert draw(axes[1:], summary) is fig
    assert not axes[0].has_data() and axes[1].has_data() and axes[2].has_data()
    with pytest.raises(ConfigError, match=r"axes=3 object\(s\); allowed: 2 matplotlib Axes.*Fix:"):
        draw(axes, summary)


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("draw", "message"),
    [
        (
            lambda: plotting.plot_cohort_overview([50.0], pd.DataFrame({"count": [1]})),
            r"baseline lacks column\(s\) \['patients'\].*Fix: pass patient_shares",
        ),
        (
            lambda: plotting.plot_cohort_overview(["old"], pd.DataFrame({"patients": [1]})),
            r"ages=a list holding non-numbers.*Fix: pass the patients table's age column",
        ),
        (
            lambda: plotting.plot_weekly_missing(pd.DataFrame({"patients": [3]})),
            r"assessments lacks column\(s\) \['missing'\].*Fix: pass weekly_assessments",
        ),
        (
            lambda: plotting.plot_weekly_adherence(_weekly(["guided"]).drop(columns="phase"), []),
            r"by_week lacks column\(s\) \['phase'\].*Fix: pass weekly_means",
        ),
        (
            lambda: plotting.plot_weekly_adherence(_weekly(["guided"]), ["many"]),
            r"patients=a list holding non-numbers.*Fix: pass a Series",
        ),
        (
            lambda: plotting.plot_weekly_minutes(pd.DataFrame({"aerobic": [1.0]})),
            r"minutes lacks column\(s\).*Fix: pass weekly_minutes\(weeks\)",
        ),
        (
            lambda: plotting.plot_dropout_weeks(pd.Series([1, 2]), rule="inactivity"),
            r"counts lacks column\(s\) \['patients'\].*Fix: pass patient_shares",
        ),
        (
            lambda: plotting.plot_outcomes_by_group(_weekly(["a"], "band"), _odi(), by="arm"),
            r"weekly lacks column\(s\) \['arm'\].*Fix: pass weekly_means\(weeks, 'nprs', by='arm'",
        ),
        (
            lambda: plotting.plot_outcomes_by_group(
                _weekly(["a"], "band"), _odi().drop(columns="odi_followup"), by="band"
            ),
            r"odi lacks column\(s\) \['odi_followup'\].*Fix: pass group_means",
        ),
        (
            lambda: plotting.plot_responders_by_group(
                [_responders()], by="band", preset="p", timepoint="t"
            ),
            r"tables=list; allowed: a non-empty dict.*Fix:",
        ),
        (
            lambda: plotting.plot_responders_by_group(
                {"ITT": _responders()}, by="arm", preset="p", timepoint="t"
            ),
            r"tables\['ITT'\] lacks column\(s\) \['arm'\].*Fix: pass responder_table",
        ),
        (
            lambda: plotting.plot_patient_slopes([0.1], average="mean"),
            r"average='mean'; allowed: a number\. Fix: pass the fixed-effect slope",
        ),
    ],
    ids=[
        "baseline",
        "ages",
        "assessments",
        "by_week",
        "patients",
        "minutes",
        "dropout",
        "weekly",
        "odi",
        "tables",
        "table",
        "average",
    ],
)
def test_bad_input_is_refused_with_the_fix(draw, message):
    with pytest.raises(ConfigError, match=message):
        draw()


# ------------------------------------------------------------- seaborn figures that explain
def test_style_is_a_context_with_the_colorblind_palette():
    import matplotlib as mpl
    import seaborn as sns

    before = mpl.rcParams["axes.prop_cycle"]
    with plotting.style():
        colours = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
        assert mpl.colors.to_hex(colours[0]) == sns.color_palette("colorblind").as_hex()[0]
    assert mpl.rcParams["axes.prop_cycle"] == before  # nothing global changed


def test_alt_text_is_attached_or_made_from_the_labels():
    fig, ax = plt.subplots()
    ax.set(title="T", xlabel="weeks")
    assert plotting.alt_text(fig) == "Figure: T; x axis: weeks"
    plotting.describe(fig, "A  line\nchart.", caption="What it shows.")
    assert plotting.alt_text(fig) == "A line chart." and fig._pt_caption == "What it shows."


def test_figure_html_embeds_the_png_with_its_alt_and_is_deterministic():
    from ptanalytics.report.render import figure_html

    def draw():
        return plotting.plot_adherence_distribution(pd.Series([0.2, 0.6, 0.9, 0.95]))

    one, two = figure_html(draw()), figure_html(draw())
    assert one == two and one.startswith("<figure") and 'src="data:image/png;base64,' in one
    assert 'alt="Histogram of adherence over the planned program for 4 patients' in one


def test_adherence_distribution_bins_and_cuts():
    adherence = pd.Series([0.1, 0.12, 0.55, 0.8, 1.3, np.nan])  # above 1 in the last bin
    fig = plotting.plot_adherence_distribution(adherence, binwidth=10)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert len(heights) == 10 and heights[1] == 2 and heights[5] == heights[8] == heights[9] == 1
    cuts = [ln.get_xdata()[0] for ln in ax.get_lines()]
    assert cuts == [50.0, 75.0]
    assert [t.get_text() for t in ax.texts] == ["low", "medium", "high"]
    assert "5 patients" in ax.get_title() and "median 55%" in plotting.alt_text(fig)
    fig2, ax2 = plt.subplots()
    assert plotting.plot_adherence_distribution([0.5], ax=ax2) is fig2
    with pytest.raises(ConfigError, match="Fix: pass summary"):
        plotting.plot_adherence_distribution(pd.Series([], dtype=float))
    with pytest.raises(ConfigError, match="Fix:"):
        plotting.plot_adherence_distribution(["a", "b"])


def _weeks_and_summary():
    """Three patients: A stays 3 weeks (1, 1, 0.5), B drops out in week 1, C has no minutes."""
    weeks = pd.DataFrame(
        {
            "patient_id": ["A", "A", "A", "B", "B", "C", "C", "C"],
            "week": [0, 1, 2, 0, 1, 0, 1, 2],
            "phase": ["guided", "guided", "maintenance", "guided", "guided"]
            + ["guided"] * 2
            + ["maintenance"],
            "sessions_prescribed": [2.0] * 8,
            "adherence_capped": [1.0, 1.0, 0.5, 1.0, 0.0, 0.5, 0.5, 0.5],
        }
    )
    summary = pd.DataFrame(
        {
            "patient_id": ["A", "B", "C"],
            "dropout": [False, True, False],
            "dropout_week": [np.nan, 1.0, np.nan],
            "weeks_planned": [3, 3, 3],
            "guided_weeks_actual": [2.0, np.nan, 2.0],
            "guided_weeks": [2, 2, 2],
        }
    )
    return weeks, summary


def test_weekly_adherence_still_in_and_everyone():
    from ptanalytics.metrics.describe import weekly_adherence

    weeks, summary = _weeks_and_summary()
    still = weekly_adherence(weeks, min_patients=1)
    everyone = weekly_adherence(weeks, summary=summary, dropouts_as_zero=True, min_patients=1)
    last = still[still["week"] == 2].iloc[0]
    assert (last["phase"], last["mean"], last["n"]) == ("maintenance", 0.5, 2)
    last = everyone[everyone["week"] == 2].iloc[0]
    assert (last["phase"], last["mean"], last["n"]) == ("maintenance", pytest.approx(1 / 3), 3)
    assert everyone["n"].tolist() == [3, 3, 3]
    assert weekly_adherence(weeks, min_patients=3)["week"].tolist() == [0, 1]
    with pytest.raises(ConfigError, match="Fix: pass summary=patient_summary"):
        weekly_adherence(weeks, dropouts_as_zero=True)


def test_weekly_adherence_by_phase_draws_both_populations():
    from ptanalytics.metrics.describe import weekly_adherence

    weeks, summary = _weeks_and_summary()
    still = weekly_adherence(weeks, min_patients=1)
    everyone = weekly_adherence(weeks, summary=summary, dropouts_as_zero=True, min_patients=1)
    fig = plotting.plot_weekly_adherence_by_phase(still, everyone)
    ax, ax_n = fig.axes
    assert "drop out" in ax.get_title() and ax_n.get_ylabel() == "Patients"
    drawn = [ln for ln in ax.get_lines() if len(ln.get_xdata())]
    assert len(drawn) >= 4  # two phases x two populations
    counts = sorted(tuple(ln.get_ydata()) for ln in ax_n.get_lines() if len(ln.get_xdata()))
    assert counts[0] == (3.0, 3.0, 2.0) and counts[1] == (3.0, 3.0, 3.0)
    assert "everyone (dropouts as 0): 33% in week 2 (n = 3)" in plotting.alt_text(fig)
    _, axes = plt.subplots(2, 1)
    assert plotting.plot_weekly_adherence_by_phase(still, everyone, axes=axes) is axes[0].figure
    with pytest.raises(ConfigError, match="Fix: pass weekly_adherence"):
        plotting.plot_weekly_adherence_by_phase(still.drop(columns="n"), everyone)


def test_term_labels_in_words():
    labels = plotting.term_labels(
        [
            *("ilr_1", "ilr_4", "C(guided_weeks)[T.6]", "C(guided_weeks, Treatment(8))[T.12]"),
            *("adherence_between", "C(sex)[T.male]", "co_manual_therapy", "mystery_term"),
        ]
    )
    assert labels == [
        "core strengthening vs the rest (ilr 1)",
        "posture vs flexibility (ilr 4)",
        "planned 6 vs 8 weeks",
        "planned 12 vs 8 weeks",
        "adherence, between patients (per 10 points above the mean)",
        "sex: male vs reference",
        "co-intervention: manual therapy",
        "mystery term",
    ]


def test_forest_plot_uses_plain_labels():
    table = pd.DataFrame(
        {"term": ["ilr_1", "adherence_within"], "estimate": [-0.2, 0.1]}
        | {"ci_low": [-0.4, -0.1], "ci_high": [0.0, 0.3]}
    )
    fig = plotting.plot_forest(table, title="Terms")
    ax = fig.axes[0]
    first = ax.get_yticklabels()[0].get_text()
    assert first == "core strengthening vs the rest (ilr 1)"
    assert ax.get_title() == "Terms" and "-0.20 (-0.40 to 0.00)" in plotting.alt_text(fig)
    from ptanalytics.report.render import figure_html

    assert "<figcaption>Each term adjusted for the others" in figure_html(fig)
    assert plotting.term_labels(["co_heat_cold"]) == ["co-intervention: heat or cold"]
    with pytest.raises(ConfigError, match="Fix: pass the model's table"):
        plotting.plot_forest(table.drop(columns="ci_low"))


def _substitutions():
    rows = [(a, b) for a in CATEGORIES for b in CATEGORIES if a != b][:3]
    return pd.DataFrame(
        {
            "term": [f"{a}->{b}" for a, b in rows],
            "estimate": [-0.3, 0.1, 0.2],
            "ci_low": [-0.5, -0.1, 0.0],
            "ci_high": [-0.1, 0.3, 0.4],
            "amount": 0.1,
        }
    )


def test_substitution_heat_map_diverges_and_has_intervals():
    fig = plotting.plot_substitutions(_substitutions())
    ax_map, ax_ci, cbar = fig.axes
    assert cbar.get_ylabel() == "NPRS change (negative = less pain)"
    mesh = ax_map.collections[0]
    assert mesh.get_clim() == (-0.3, 0.3)  # symmetric: white is no change
    assert [t.get_text() for t in ax_map.texts] == ["-0.30", "0.10", "0.20"]
    assert len(ax_ci.get_yticklabels()) == 3 and "\u2192" in ax_ci.get_yticklabels()[0].get_text()
    _, ax = plt.subplots()
    assert len(plotting.plot_substitutions(_substitutions(), ax=ax).axes) == 2  # map + colour bar
    with pytest.raises(ConfigError, match="Fix: pass category_substitution"):
        plotting.plot_substitutions(_substitutions().drop(columns="ci_high"))


def test_kaplan_meier_numbers_at_risk_and_legend_title():
    table = pd.DataFrame(
        {
            "group": ["low"] * 3 + ["high"] * 3,
            "week": [0.0, 4.0, 8.0, 0.0, 5.0, 10.0],
            "n_at_risk": [20, 15, 12, 30, 25, 21],
            "survival": [1.0, 0.8, 0.6, 1.0, 0.9, 0.8],
            "ci_low": [1.0, 0.6, 0.4, 1.0, 0.8, 0.7],
            "ci_high": [1.0, 0.9, 0.8, 1.0, 1.0, 0.9],
        }
    )
    table.attrs["by"] = "early_band"
    fig = plotting.plot_kaplan_meier(table, legend_title="adherence in weeks 0-3")
    ax = fig.axes[0]
    assert ax.get_legend().get_title().get_text() == "adherence in weeks 0-3"
    texts = [t.get_text() for t in ax.texts]
    assert texts[:2] == ["At risk", "low"] and "high" in texts
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    low = texts[2 : texts.index("high")]
    assert low[0] == "20" and len(low) == sum(t <= 8 for t in ticks)  # blank after the last row
    plain = plotting.plot_kaplan_meier(table)
    assert plain.axes[0].get_legend().get_title().get_text() == "early band"
    assert not plotting.plot_kaplan_meier(table, at_risk=False).axes[0].texts


def test_dose_response_against_the_median_with_a_rug(small_cohort):
    from ptanalytics.models import outcomes

    summary = pt_summary(small_cohort)
    zero = outcomes.dose_response(summary, timepoint="followup")
    same = outcomes.dose_response(summary, timepoint="followup", reference=0.0)
    pd.testing.assert_frame_equal(zero.curve, same.curve)
    assert zero.curve["estimate"].iloc[0] == 0 and zero.reference == 0.0
    median = outcomes.dose_response(summary, timepoint="followup", reference="median")
    assert median.reference == pytest.approx(float(median.patient_adherence.median()))
    shift = median.curve["estimate"] - zero.curve["estimate"]  # exact for the point estimate
    np.testing.assert_allclose(shift, shift.iloc[0], atol=1e-12)
    width = median.curve["ci_high"] - median.curve["ci_low"]
    near = (median.curve["adherence"] - median.reference).abs().idxmin()
    assert width[near] < (zero.curve["ci_high"] - zero.curve["ci_low"])[near]
    assert width[near] < width.iloc[0]  # narrowest near the median, not at 0
    fig = median.figure()
    ax = fig.axes[0]
    assert "median" in ax.get_ylabel() and len(ax.collections) >= 2  # band and rug
    assert "rug of the" in plotting.alt_text(fig)
    with pytest.raises(ConfigError, match="Fix: pass an adherence between 0 and 1"):
        outcomes.dose_response(summary, timepoint="followup", reference=1.5)
    with pytest.raises(ConfigError, match="median"):
        outcomes.dose_response(summary, timepoint="followup", reference="mean")


def pt_summary(cohort):
    import ptanalytics as pt

    return pt.patient_summary(cohort)


def test_weekly_means_one_line_per_group():
    table = _weekly(["high", "low"], column="band", weeks=4)
    fig = plotting.plot_weekly_means(table, by="band", ylabel="Mean NPRS", title="Pain")
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 4]
    assert len(lines) == 2 and list(lines[0].get_ydata()) == pytest.approx([0.5, 0.55, 0.6, 0.65])
    assert ax.get_legend().get_title().get_text() == "band" and ax.get_title() == "Pain"
    assert "(high, low)" in plotting.alt_text(fig)
    one = plotting.plot_weekly_means(table[table["band"] == "low"], by=None, ylabel="y", title="t")
    assert one.axes[0].get_legend() is None
    with pytest.raises(ConfigError, match="Fix: pass weekly_means"):
        plotting.plot_weekly_means(table.drop(columns="band"), by="band", ylabel="y", title="t")


def _band_data(sizes, weeks=6):
    """Observed weekly NPRS of ``sizes[band]`` patients per band, and a predicted mean per band."""
    rows, pred = [], []
    start = 0
    for band, n in sizes.items():
        for i in range(start, start + n):
            rows += [
                {"patient_id": f"P{i:03d}", "week": w, "nprs": float((i + w) % 11)}
                for w in range(weeks)
            ]
        start += n
        pred += [
            {"attendance_band": band, "week": w, "estimate": 6.0 - 0.3 * w}
            | {"ci_low": 5.5 - 0.3 * w, "ci_high": 6.5 - 0.3 * w}
            for w in range(weeks)
        ]
    observed = pd.DataFrame(rows)
    band_of = {f"P{i:03d}": b for b, lo, hi in _ranges(sizes) for i in range(lo, hi)}
    observed["attendance_band"] = observed["patient_id"].map(band_of)
    observed.loc[observed["week"] % 2 == 1, "nprs"] = np.nan  # weeks without an assessment
    pred = pd.DataFrame(pred)
    pred.attrs["guided_weeks"] = 3.0
    return observed, pred


def _ranges(sizes):
    start = 0
    for band, n in sizes.items():
        yield band, start, start + n
        start += n


def _thin_lines(ax):
    return [ln for ln in ax.get_lines() if ln.get_linewidth() < 1]


def test_band_trajectories_sample_panels_and_means():
    observed, pred = _band_data({"low": 45, "medium": 5, "high": 20})
    fig = plotting.plot_band_trajectories(observed, pred, min_cell=11, per_band=30, seed=3)
    # One panel per band of at least min_cell patients (medium, 5 patients, left out).
    assert [ax.get_title() for ax in fig.axes] == [
        "low attendance (n = 45)",
        "high attendance (n = 20)",
    ]
    low, high = fig.axes
    # At most per_band observed lines per band, one per sampled patient, and one bold mean.
    assert len(_thin_lines(low)) == 30 and len(_thin_lines(high)) == 20
    for ax in fig.axes:
        bold = [ln for ln in ax.get_lines() if ln.get_linewidth() > 2]
        assert len(bold) == 1 and list(bold[0].get_ydata()) == pytest.approx(
            [6.0 - 0.3 * w for w in range(6)]
        )
        dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert [ln.get_xdata()[0] for ln in dashed] == [3.0]  # the end of the guided phase
    # The observed lines are the sampled patients' scores, missing weeks skipped.
    drawn = plotting.sample_band_patients(observed, min_cell=11, per_band=30, seed=3)
    assert list(drawn) == ["low", "high"] and drawn["high"][0] == 20
    ids = drawn["low"][1]
    first = observed[(observed["patient_id"] == ids[0])].dropna(subset=["nprs"])
    ys = sorted(tuple(ln.get_ydata()) for ln in _thin_lines(low))
    assert tuple(first["nprs"]) in ys
    # Described for screen readers and captioned; no patient id anywhere in the figure.
    from matplotlib.text import Text

    alt = plotting.alt_text(fig)
    assert alt.startswith("Line charts, one panel per attendance band (low, high)")
    assert "low: 30 patients' observed lines; high: 20" in alt and "week 3" in alt
    assert "associations, not effects" in fig._pt_caption and "model" in fig._pt_caption
    texts = " ".join(t.get_text() for t in fig.findobj(Text)) + alt + fig._pt_caption
    assert not re.search(r"P\d{3}", texts)


def test_band_trajectories_sampling_is_reproducible():
    observed, pred = _band_data({"low": 45, "high": 40})
    one = plotting.sample_band_patients(observed, min_cell=11, per_band=30, seed=3)
    shuffled = observed.sample(frac=1.0, random_state=0)
    two = plotting.sample_band_patients(shuffled, min_cell=11, per_band=30, seed=3)
    other = plotting.sample_band_patients(observed, min_cell=11, per_band=30, seed=4)
    for band in ("low", "high"):
        assert list(one[band][1]) == list(two[band][1])  # same patients, whatever the row order
        assert len(set(one[band][1])) == 30
    assert any(list(one[b][1]) != list(other[b][1]) for b in one)
    from ptanalytics.report.render import figure_html

    draw = plotting.plot_band_trajectories
    first = figure_html(draw(observed, pred, min_cell=11))
    assert figure_html(draw(shuffled, pred, min_cell=11)) == first  # same bytes


def test_band_trajectories_withheld_counts_and_nothing_to_draw():
    observed, pred = _band_data({"low": 45, "high": 12})
    fig = plotting.plot_band_trajectories(
        observed, pred, min_cell=11, counts={"low": 45, "high": None}
    )
    low, high = fig.axes
    # A band whose size is withheld shows no n and no lines (their number would give it away).
    assert high.get_title() == "high attendance" and _thin_lines(high) == []
    assert low.get_title() == "low attendance (n = 45)" and len(_thin_lines(low)) == 30
    assert "high: mean only" in plotting.alt_text(fig)
    with pytest.raises(ConfigError, match="no attendance band has 50 patients"):
        plotting.plot_band_trajectories(observed, pred, min_cell=50)
    with pytest.raises(ConfigError, match="Fix: merge summary"):
        plotting.plot_band_trajectories(observed.drop(columns="attendance_band"), pred, min_cell=11)
