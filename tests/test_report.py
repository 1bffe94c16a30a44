"""The HTML report: content, privacy, self-containment, and a real browser."""

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ptanalytics as pt
from ptanalytics.cli import main
from ptanalytics.report import render_report

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    render_report(None, out, progress=False)
    return out, out.read_text(encoding="utf-8")


def test_report_has_every_section_and_a_table_of_contents(report):
    _, text = report
    assert '<nav id="toc"' in text
    for section in (
        "1. Cohort summary",
        "2. Data quality",
        "3. Adherence",
        "4. Outcomes and responders",
        "5. Models",
        "6. Dropout",
        "7. Methods and limitations",
        "8. Software and data",
    ):
        assert section in text
    assert "associations" in text and "Pain-trajectory mixed model" in text
    assert text.count("data:image/png;base64,") >= 6  # figures embedded
    assert "prepare_report" not in text  # code hidden by default


def test_report_is_self_contained(report):
    _, text = report
    assert not re.search(r'(src|href)="https?://', text)
    assert "<script src=" not in text


def test_report_leaks_no_patient_identifier_or_date(report):
    _, text = report
    cohort = pt.default_cohort()
    for pid in cohort.patients["patient_id"]:
        assert pid not in text
    assert not re.search(r"\b(19|20)\d{2}-\d{2}-\d{2}\b", text)


def test_small_counts_are_suppressed_everywhere(tmp_path):
    out = render_report(None, tmp_path / "r.html", min_cell=100, progress=False)
    text = out.read_text(encoding="utf-8")
    assert "&lt;100" in text
    # The attendance bands below 100 patients are hidden, those of 100 or more shown. On the
    # default cohort (data/synthetic/default): low 150 shown, medium 55 and high 95 hidden. The
    # sizes are read from the summary so that a regenerated cohort cannot leave the check empty.
    bands = pt.patient_summary(pt.default_cohort())["attendance_band"].value_counts()
    small, large = bands[bands < 100], bands[bands >= 100]
    assert len(small) and len(large)  # the check needs a band on each side of min_cell
    assert not [n for n in small if f">{n}<" in text]
    assert all(f">{n}<" in text for n in large)


def test_outcomes_only_cohort_report(tmp_path):
    ex = ROOT / "examples" / "ashar2022"
    result = pt.ingest([ex / "Ashar2022_outcomes_demographics.csv"], mapping=ex / "mapping.toml")
    folder = result.cohort.write(tmp_path / "ashar", format="csv")
    out = render_report(
        folder, tmp_path / "ashar.html", title="Ashar 2022", show_code=True, progress=False
    )
    text = out.read_text(encoding="utf-8")
    assert "no session data" in text and "<title>Ashar 2022</title>" in text
    assert "prepare_report" in text  # --show-code keeps the code
    # The ingest accounting in words: its tables and reasons under plain headers, codes spelt
    # out (the reasons recorded by ingest, e.g. excluded_by_filter).
    heads, cells = _headers_and_cells(text)
    assert {"Table", "Records", "Accepted", "Quarantined", "Reason", "Rows"} <= set(heads)
    arms = set(result.cohort.patients["arm"].dropna())  # Table 1's columns: the data's arms
    assert not [h for h in heads if re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", h) and h not in arms]
    for reason in result.reasons["reason_code"]:
        assert reason.replace("_", " ") in cells and reason not in cells


def test_cli_report_errors(tmp_path, capsys):
    assert main(["report", "--data", str(tmp_path), "--out", str(tmp_path / "x.html")]) == 2
    assert "not a cohort folder" in capsys.readouterr().err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian package 'chromium'; .ci/run installs it)",
)
def test_report_in_a_real_browser(report, tmp_path):
    path, _ = report
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,2400",
            f"--screenshot={shot}",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    log = done.stderr
    console = [
        ln for ln in log.splitlines() if "CONSOLE" in ln and ("rror" in ln or "Uncaught" in ln)
    ]
    failed = [ln for ln in log.splitlines() if "net::ERR" in ln]
    assert console == [], console
    assert failed == [], failed
    assert shot.exists() and shot.stat().st_size > 20_000
    keep = ROOT / "reports" / "screenshot.png"
    if keep.parent.exists():
        shutil.copy(shot, keep)  # the latest screenshot, for a look (reports/ is not committed)


# ------------------------------------------------------------------ sections, without a notebook
@pytest.fixture(scope="module")
def prepared():
    from ptanalytics.report.sections import prepare_report

    return prepare_report(pt.default_cohort(), min_cell=11)


def test_prepare_report_groups_and_protects(prepared):
    assert prepared.group == "attendance_band"  # no arm in the default cohort
    assert prepared.disclosure.count(("table_one", 0, "n")) == "300"
    assert prepared.disclosure.has_table("bands") and prepared.disclosure.has_table("itt")
    assert prepared.out.items == []


def test_sections_add_blocks_in_order(prepared):
    from ptanalytics.report import sections

    sections.title_section(prepared)
    sections.adherence_section(prepared)
    kinds = [kind for kind, _ in prepared.out.items]
    assert kinds[:2] == ["html", "markdown"] and "figure" in kinds
    text = prepared.out.text()
    assert "<h1>ptanalytics report</h1>" in text and "Mean adherence over the planned" in text
    assert "last 14 days or more" in text


def test_estimable_says_not_estimable_only_for_sparse_data_errors():
    from ptanalytics.report.render import Blocks
    from ptanalytics.report.sections import estimable

    out = Blocks()

    def singular():
        raise np.linalg.LinAlgError("singular")

    assert estimable(out, "Model", singular) is None
    assert out.items == [("markdown", "**Model**: not estimable on this cohort (LinAlgError).")]
    with pytest.raises(KeyError):
        estimable(out, "Model", lambda: {}["bug"])


def test_methods_text_quotes_the_parameters_used():
    from ptanalytics.report.text import methods_text, populations_text

    text = methods_text(inactivity_days=21, window_days=10)
    assert "last 21 days or more" in text and "within 10 days of" in text
    assert "m = 5, seed 3" in populations_text(m=5, seed=3)


def test_model_tables_speak_in_words(report):
    from ptanalytics.report.tables import format_p, terms_table

    assert [format_p(p) for p in (0.0, 0.000999, 0.001, 0.0456, None, np.nan)] == [
        "< 0.001",
        "< 0.001",
        "0.001",
        "0.046",
        "",
        "",
    ]
    rows = pd.DataFrame(
        {
            "term": ["C(guided_weeks)[T.6]", "adherence_within"],
            "estimate": [0.51234, -0.2],
            "ci_low": [0.1, np.nan],
            "ci_high": [0.9, np.nan],
            "p_value": [0.02, 1e-9],
        }
    )
    shown = terms_table(rows, estimate="Hazard ratio", digits=2)
    assert list(shown.columns) == ["Term", "Hazard ratio", "95% CI", "p"]
    assert shown["Term"].iloc[0] == "planned 6 vs 8 weeks"
    assert shown["Hazard ratio"].tolist() == [0.51, -0.2]
    assert shown["95% CI"].tolist() == ["0.10 to 0.90", ""]
    assert shown["p"].tolist() == ["0.020", "< 0.001"]
    # The rendered report: model tables with plain headers, no raw column names or 0.000 p-values.
    _, text = report
    assert "<th>Hazard ratio</th>" in text and "<th>NPRS points</th>" in text
    assert "<th>p_value</th>" not in text


def test_report_defines_bands_and_shows_the_tipping_point(report):
    from ptanalytics.report.text import definitions_text, tipping_text

    _, text = report
    assert "low below 50%, medium 50% to below 75%, high 75% or more" in definitions_text()
    assert "declining at -2 percentage point" in definitions_text(threshold=0.02)
    assert "Attendance bands" in text and "Adherence trajectories" in text
    assert "(tipping point)" in text and "<th>Delta (NPRS points)</th>" in text
    assert "first includes 0 at delta = -4 points" in tipping_text(-4.0, m=5, seed=1)
    assert "never includes 0" in tipping_text(None, m=5, seed=1)


def _headers_and_cells(text):
    """Every table's header texts and data-cell texts of a rendered page."""
    from html import unescape

    def texts(tag):
        found = re.findall(rf"<{tag}(?:\s[^>]*)?>(.*?)</{tag}>", text, flags=re.S)
        return [unescape(v).strip() for v in found]

    heads, cells = texts("th"), texts("td")
    assert not [h for h in heads if "<" in h]  # every header is text
    return heads, cells


def test_every_table_speaks_in_words(report, prepared):
    from ptanalytics.vocab import COLUMN_LABELS

    _, text = report
    heads, cells = _headers_and_cells(text)
    raw = {"ci_low", "ci_high", "attendance_band", "n_patients", "missing_followup"}
    raw |= {"reason_code", "n_imputed", "mean_actual", "with_target", "proportion", "p_value"}
    assert not raw & set(heads)
    snake = [h for h in heads if re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", h)]
    assert snake == []
    # Headers of the count tables are the vocabulary's words.
    for name in ("attendance_band", "missing_followup", "n_imputed", "proportion", "share"):
        assert COLUMN_LABELS[name] in heads
    assert "95% CI" in heads
    # Every percentage has one decimal, the bands' from their counts (300 patients).
    percents = [c for c in cells if c.endswith("%")]
    assert percents and all(re.fullmatch(r"-?\d+\.\d%( to -?\d+\.\d%)?", c) for c in percents), (
        percents
    )
    disc, total = prepared.disclosure, len(prepared.summary)
    bands = disc.raw("bands")
    for i, k in enumerate(bands["patients"]):
        shown = f"<td>{100 * k / total:.1f}%</td>" in text
        assert shown == disc.shown(("bands", i, "patients"))
    # The pooled responder percentages of the multiple imputation, from the model itself (the
    # report's settings), beside every shown group size.
    from ptanalytics.models import missing_data

    s = prepared.settings
    mi = missing_data.mi_responders(
        prepared.summary, m=s.mi_imputations, seed=s.mi_seed, by=prepared.group
    ).table
    itt = disc.raw("itt")
    for _, row in mi.iterrows():
        j = int(np.flatnonzero(itt[prepared.group] == row[prepared.group])[0])
        pct = f"{100 * row['estimate']:.1f}%"
        ci = f"{100 * row['ci_low']:.1f}% to {100 * row['ci_high']:.1f}%"
        assert (pct in cells and ci in cells) == disc.shown(("itt", j, "n"))
    # Codes in words: no timepoint code in a cell of the results (the provenance's parameter
    # table lists the settings as given, e.g. timepoint followup).
    _, results = _headers_and_cells(text[: text.index('id="8.-Software')])
    assert "end of guided phase" in results and "follow-up" in results
    assert not {"end_guided", "followup"} & set(results)


def test_tables_are_put_in_words_after_suppression():
    from ptanalytics.report.disclosure import Disclosure
    from ptanalytics.report.tables import column_label, readable_table

    ids = [f"p{i}" for i in range(40)]
    disc = Disclosure(ids, min_cell=11)
    table = pd.DataFrame(
        {
            "attendance_band": ["low", "high"],
            "n": [35, 5],
            "responders": [14, 3],
            "proportion": [14 / 35, 3 / 5],
            "ci_low": [0.25, 0.1],
            "ci_high": [0.57, 0.8],
        }
    )
    masks = {(0, "n"): ids[:35], (1, "n"): ids[35:], (0, "responders"): ids[:14]}
    masks[(1, "responders")] = ids[35:38]
    derived = {c: ["n", "responders"] for c in ("proportion", "ci_low", "ci_high")}
    disc.add_table("t", table, masks, derived)
    disc.protect()
    shown = readable_table(disc.table("t"))
    heads = ["Attendance band", "Patients", "Responders", "Responders (%)", "95% CI"]
    assert list(shown.columns) == heads
    low, high = shown.to_dict("records")
    # The small group's count and everything derived from it stay withheld, never a number.
    assert high == {
        "Attendance band": "high",
        "Patients": "<11",
        "Responders": "<11",
        "Responders (%)": "suppressed",
        "95% CI": "suppressed",
    }
    assert low["Responders (%)"] in (f"{100 * 14 / 35:.1f}%", "suppressed")
    assert "60.0%" not in disc.html("t") and "<th>Responders (%)</th>" in disc.html("t")
    assert column_label("mean_nprs_change_end_guided") == (
        "Mean NPRS change at the end of the guided phase"
    )
    assert readable_table(pd.DataFrame({"timepoint": ["end_guided"], "delta": [-2.0]})).iloc[
        0
    ].tolist() == ["end of guided phase", "-2"]


def test_each_model_says_what_it_is_adjusted_for(report, prepared):
    from ptanalytics.models import dropout, missing_data, trajectory
    from ptanalytics.models import outcomes as om
    from ptanalytics.report.text import adjusted_for_text, covariate_words

    _, text = report
    r, summary = prepared, prepared.summary
    model = trajectory.fit_pain_model(trajectory.pain_model_frame(r.cohort, summary=summary))
    # The covariates are the fitted formula's terms that are not time or adherence.
    assert model.covariates and set(model.covariates) < set(model.terms)
    for term in model.covariates:
        assert term in model.formula and not set(term.split(":")) & set(
            trajectory.TIME_AND_ADHERENCE
        )
    lead = "The time and adherence estimates are adjusted for each other and for"
    sentences = [adjusted_for_text(model.covariates, lead=lead)]
    for tp in ("end_guided", "followup"):
        dr = om.dose_response(summary, timepoint=tp, reference="median")
        sentences.append(adjusted_for_text(dr.covariates))
    subs = om.category_substitution(summary)
    sentences.append(
        adjusted_for_text(subs.covariates, lead="Besides the exercise mix, adjusted for")
    )
    usable = summary.dropna(subset=["guided_weeks", "nprs_change_followup"])
    sizes = usable["guided_weeks"].value_counts()
    big = sizes[sizes >= r.min_cell].index
    length = om.program_length(summary[summary["guided_weeks"].isin(big)])
    sentences.append(adjusted_for_text(length.covariates))
    cox = dropout.cox_dropout(r.weeks, summary)
    lead = "The pain-change hazard ratio is adjusted for"
    sentences.append(adjusted_for_text(cox.covariates, lead=lead))
    predictors = missing_data.imputation_predictors(summary)
    lead = "The missing follow-up NPRS scores are imputed (MAR) given"
    sentences.append(adjusted_for_text(predictors, lead=lead))
    for sentence in sentences:
        assert sentence in text, sentence
    # In words, never the formula's names; every covariate named.
    assert "baseline NPRS" in sentences[1] and "nprs_baseline" not in text
    assert len(covariate_words(cox.covariates)) == len(cox.covariates) >= 1
    assert "adjusted for baseline NPRS and age" in text  # the tipping point's own model


def test_effects_section_gives_the_e_value_and_says_there_is_no_instrument(report):
    """The default cohort has no randomised arm: the section gives the E-value of the follow-up
    dose-response (recomputed here from the model) and says why no effect is estimated."""
    from ptanalytics.models import dose_response, e_value

    _, text = report
    assert "Effects under assumptions" in text
    summary = pt.patient_summary(pt.default_cohort())
    row = dose_response(summary, timepoint="followup", reference="median").linear.iloc[0]
    sd = summary["nprs_change_followup"].std()
    ev = e_value(row["estimate"] / sd, row["ci_low"] / sd, row["ci_high"] / sd, scale="SMD")
    assert f"a risk ratio of <strong>{ev.loc[0, 'e_value']:.2f}</strong> each" in text
    assert "The cohort has no randomised arm" in text


def test_effects_section_emulates_the_review_rule_and_refuses_the_unsupported_one(report):
    """The review's extension rule at 10% is emulated as a target trial (the estimate recomputed
    here), with its E-value and assumptions; at 30%, which the clinic never followed for patients
    10-30% better, the report says the data cannot support it."""
    from ptanalytics.models import extension_rule_trial, target_trial
    from ptanalytics.models.causal_frames import RULE_TRIAL

    _, text = report
    cohort = pt.default_cohort()
    fit = target_trial(extension_rule_trial(cohort, 0.1), seed=1, **RULE_TRIAL)
    row = fit.table.set_index("term").loc["rule vs fixed"]
    assert "emulated as a target trial" in text
    assert f"Difference in follow-up NPRS {row['estimate']:.2f} (95% CI" in text
    assert "no unmeasured confounding of the decision" in text and "E-value" in text
    assert "cannot be estimated from these data" in text


class _Out:
    """A report output that keeps what a block writes."""

    def __init__(self):
        self.items = []

    def markdown(self, text):
        self.items.append(text)

    def html(self, text):
        self.items.append(text)


def test_gformula_block_needs_weekly_pain_and_gives_regimes_with_e_values():
    """The default cohort scores pain every 4 weeks in maintenance: the g-formula is not
    estimated and the report says why; a simulated registry with weekly scores gets the three
    regimes against the patients' own adherence, each with its interval and E-value."""
    from ptanalytics.report.sections import _gformula_block, prepare_report
    from ptanalytics.simulate import scenario_config
    from ptanalytics.studies.causal_recovery import REGISTRY

    r = prepare_report(pt.default_cohort(), out=_Out())
    _gformula_block(r)
    assert "not estimated" in r.out.items[-1] and "Record the NPRS weekly" in r.out.items[-1]
    registry = pt.simulate_cohort(600, seed=3, config=scenario_config("optimistic", **REGISTRY))
    r = prepare_report(registry, out=_Out())
    _gformula_block(r)
    text = r.out.items[-1]
    for words in ("a quarter of the missed sessions made up", "adherence kept at 80%",
                  "every prescribed session"):  # fmt: skip
        assert words in text
    assert text.count("E-value") == 3 and "no unmeasured confounding" in text


def test_effects_section_of_a_simulated_trial_with_its_active_arm(tmp_path):
    """A simulated encouragement trial rendered with --active-arm: the complier effect with its
    first-stage F and assumptions, beside the association; no patient count leaks."""
    cohort = pt.simulate_cohort(600, seed=51, encouragement_share=0.5)
    cohort.write(tmp_path / "trial", format="parquet")
    out = tmp_path / "trial.html"
    assert (
        main(
            [
                "report",
                "--data",
                str(tmp_path / "trial"),
                "--out",
                str(out),
                "--active-arm",
                "encouraged",
            ]
        )
        == 0
    )
    text = out.read_text(encoding="utf-8")
    assert "Effect of adherence among the patients the 'encouraged' arm moved" in text
    assert "first-stage F = " in text and "exclusion restriction" in text
    assert "complier effect (2SLS, arm as instrument)" in text and "association (OLS)" in text
    for pid in cohort.patients["patient_id"].head(50):
        assert pid not in text


def test_gformula_block_without_patients_followup_weeks():
    """An export without ``patients.followup_weeks`` (the follow-up from the prescriptions): the
    g-formula block gives the same regimes as with the column (it raised KeyError)."""
    from ptanalytics.report.sections import _gformula_block, prepare_report
    from ptanalytics.simulate import scenario_config
    from ptanalytics.studies.causal_recovery import REGISTRY

    registry = pt.simulate_cohort(600, seed=3, config=scenario_config("optimistic", **REGISTRY))
    r = prepare_report(registry, out=_Out())
    _gformula_block(r)
    registry.patients = registry.patients.drop(columns="followup_weeks")
    r2 = prepare_report(registry, out=_Out())
    _gformula_block(r2)
    assert r2.out.items[-1] == r.out.items[-1] and "adherence kept at 80%" in r.out.items[-1]
