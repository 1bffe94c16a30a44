"""End to end on data the simulator would never make: a clinic's one-workbook export (12-week
guided program, dd/mm/yyyy dates, typos, blank rows, a footer, no minutes for strength exercises,
missing follow-up) and the Ashar 2022 trial's outcomes-only export.

Each is ingested with the CLI, its rows are conserved, and the report renders with the design taken
from the data: trajectories inside the program's own weeks, observed counts per timepoint, and ITT
and completer tables that differ where follow-up is missing.
"""

from __future__ import annotations

import html as html_module
import re
from pathlib import Path

import pytest

import ptanalytics as pt
from clinic_workbook import build_clinic_workbook
from ptanalytics.cli import main
from ptanalytics.metrics.timepoints import (
    assessment_timepoints,
    timepoint_counts,
    timepoint_targets,
)
from ptanalytics.models import trajectory
from ptanalytics.report import render_report

ROOT = Path(__file__).resolve().parents[1]


def _text(html: str) -> str:
    """The report's visible text (tags and embedded images dropped)."""
    html = re.sub(r"<(style|script)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r"<[^>]+>", " ", html)
    return html_module.unescape(re.sub(r"\s+", " ", html))


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clinic")
    export = build_clinic_workbook(folder)
    out = folder / "cohort"
    code = main(
        [
            "ingest",
            str(export.workbook),
            "--mapping",
            str(export.mapping),
            "--out",
            str(out),
            "--today",
            "2026-11-23",
        ]
    )
    assert code == 0
    return export, pt.load_cohort(out), out


def test_clinic_workbook_rows_are_conserved(clinic):
    _, cohort, _ = clinic
    ingest = cohort.metadata["ingest"]
    for table in ingest["tables"]:
        assert table["records"] == table["accepted"] + table["quarantined"]
    for source in ingest["sources"]:
        assert source["rows_read"] == source["rows_used"] + source["rows_set_aside"]
    rows = {t["table"]: t for t in ingest["tables"]}
    for name in ("patients", "prescriptions", "sessions", "outcomes"):
        assert rows[name]["accepted"] == len(cohort.tables[name]) > 0


def test_clinic_design_comes_from_the_data(clinic):
    _, cohort, _ = clinic
    targets = timepoint_targets(cohort)
    guided = targets[targets["timepoint"] == "end_guided"]
    assert (guided["target_source"] == "prescriptions").all()
    # The clinic's guided phase is 12 weeks (not the simulator's 8): the day after its last day.
    assert guided["target_day"].median() == pytest.approx(84, abs=7)
    model = trajectory.fit_pain_model(trajectory.pain_model_frame(cohort))
    pred = trajectory.predicted_trajectories(model)
    last_observed = int(model.frame["week"].max())
    assert pred["week"].max() == last_observed == pred.attrs["weeks"]
    assert pred.attrs["guided_weeks"] == 12
    assert pred["estimate"].between(0, 10).all()
    assert pred["ci_low"].between(0, 10).all() and pred["ci_high"].between(0, 10).all()
    with pytest.raises(pt.ConfigError, match="not extrapolated"):
        trajectory.predicted_trajectories(model, weeks=last_observed + 1)
    # Follow-up missing for some patients stays missing.
    summary = pt.patient_summary(cohort)
    counts = timepoint_counts(assessment_timepoints(cohort, instruments="NPRS"))
    follow = counts.set_index("timepoint").loc["follow-up"]
    assert 0 < follow["missing"] < follow["patients"]
    assert follow["observed"] == summary["nprs_followup"].notna().sum()


def test_clinic_report_renders(clinic, tmp_path):
    _, cohort, folder = clinic
    out = render_report(folder, tmp_path / "clinic.html", progress=False)
    text = _text(out.read_text(encoding="utf-8"))
    assert "Patients assessed at each timepoint" in text
    model = trajectory.fit_pain_model(trajectory.pain_model_frame(cohort))
    last = int(model.frame["week"].max())
    assert f"from week 0 to week {last}, the last week with an assessment" in text
    assert "phase change at 12 weeks" in text
    assert "logged exercises had no minutes and took the catalogue's default" in text
    for population in ("intention to treat (ITT)", "completers", "Multiple imputation (MAR)"):
        assert population in text
    assert "P001" not in text and "P040" not in text  # no patient identifier in the report


@pytest.fixture(scope="module")
def ashar(ashar_dir):
    return ashar_dir


def test_ashar_report_shows_missing_followup(ashar, tmp_path):
    cohort = pt.load_cohort(ashar)
    summary = pt.patient_summary(cohort)
    itt = pt.responder_table(pt.flag_responders(summary, analysis="itt"), by="arm").table
    comp = pt.responder_table(pt.flag_responders(summary, analysis="completers"), by="arm").table
    merged = itt.merge(comp, on="arm", suffixes=("_itt", "_completers"))
    assert (merged["n_itt"] > merged["n_completers"]).all()
    # 17 patients without a post-treatment score: 16 in the three arms, 1 whose arm is missing.
    assert merged["missing_followup_itt"].sum() == 16
    overall = pt.responder_table(pt.flag_responders(summary, analysis="itt")).table
    assert overall["missing_followup"].iloc[0] == 17 and overall["n"].iloc[0] == 152
    assert (merged["n_itt"] - merged["n_completers"] == merged["missing_followup_itt"]).all()
    # examples/ashar2022/README.md: pain-free (NPRS <= 1) after treatment, ITT = the trial's
    # published 66% / 20% / 10%; completers 33/44, 10/44, 5/47.
    flags = {
        a: pt.flag_responders(summary, preset="pain_free", analysis=a)
        for a in ("itt", "completers")
    }
    free = {a: pt.responder_table(f, by="arm").table.set_index("arm") for a, f in flags.items()}
    expected = {
        "pain_reprocessing_therapy": ((33, 50), (33, 44)),
        "placebo_injection": ((10, 51), (10, 44)),
        "usual_care": ((5, 50), (5, 47)),
    }
    for arm, (itt_counts, completer_counts) in expected.items():
        assert tuple(free["itt"].loc[arm, ["responders", "n"]]) == itt_counts
        assert tuple(free["completers"].loc[arm, ["responders", "n"]]) == completer_counts
    out = render_report(ashar, tmp_path / "ashar.html", progress=False)
    text = _text(out.read_text(encoding="utf-8"))
    assert "Multiple imputation (MAR)" in text
    assert "No follow-up score was observed" not in text
    # Observed follow-up per arm is 44 / 44 / 47 of 50 / 51 / 50, not 100%: each row shows its
    # missing count as "<11" and its observed count as the true number or, where that would
    # reveal the small missing count by subtraction, "suppressed" (secondary suppression).
    for arm, observed in (
        ("pain_reprocessing_therapy", "44"),
        ("placebo_injection", "44"),
        ("usual_care", "47"),
    ):
        row = re.search(rf"NPRS follow-up {arm} (\S+) (\S+) (\S+) (\S+)", text)
        assert row is not None
        patients, _with_target, shown, missing = row.groups()
        assert missing == "<11"
        assert shown in (observed, "suppressed") and shown != patients


NOTEBOOKS = ROOT / "notebooks"


def _run_notebook(name: str, data_dir: Path, out: Path):
    import papermill as pm

    return pm.execute_notebook(
        str(NOTEBOOKS / name),
        str(out),
        parameters={"data_dir": str(data_dir)},
        progress_bar=False,
        kernel_name="python3",
    )


@pytest.mark.parametrize(
    "name",
    [
        "01_cohort.ipynb",
        "02_data_quality.ipynb",
        "03_adherence.ipynb",
        "04_outcomes.ipynb",
        "05_models.ipynb",
        "06_dropout.ipynb",
        "09_power.ipynb",
    ],
)
def test_notebooks_run_on_the_clinic_workbook(clinic, name, tmp_path):
    """Every analysis notebook, in-cell asserts included, on the 12-week clinic cohort."""
    _, _, folder = clinic
    _run_notebook(name, folder, tmp_path / name)


@pytest.mark.parametrize("name", ["01_cohort.ipynb", "02_data_quality.ipynb", "04_outcomes.ipynb"])
def test_outcome_notebooks_run_on_the_ashar_export(ashar, name, tmp_path):
    _run_notebook(name, ashar, tmp_path / name)


def test_session_notebooks_refuse_an_outcomes_only_cohort_clearly(ashar, tmp_path):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError, match=r"no session data.*use notebooks 01"):
        _run_notebook("03_adherence.ipynb", ashar, tmp_path / "03.ipynb")


def test_a_power_design_from_the_clinic_workbook_uses_its_12_week_program(clinic):
    """The clinic plans 12 guided weeks and scores NPRS at weeks 0, 6, 12 and 26: the design's
    window is its own guided phase, not the simulator's 8 weeks."""
    _, cohort, _ = clinic
    design = pt.TwoArmSlope.from_cohort(cohort, slope_difference=-0.1)
    assert design.weeks == (0.0, 6.0, 12.0)
    assert design.residual_sd > 0 and design.intercept_sd > 0
    res = pt.power(design, n=[60, 100], replications=20, seed=1, workers=1)
    assert (res.table["failed"] == 0).all() and res.table["power"].between(0, 1).all()


def test_a_power_design_from_an_export_with_two_timepoints_is_refused_clearly(ashar):
    """Ashar 2022 scores pain at two time points: no slope variability to plan from."""
    with pytest.raises(pt.ConfigError, match="2 distinct week"):
        pt.TwoArmSlope.from_cohort(pt.load_cohort(ashar), slope_difference=-0.1)


def test_causal_frames_refuse_an_outcomes_only_export_clearly(ashar):
    """The Ashar export has no session log, no planned follow-up week and no guided phase: the
    g-formula's weekly history and the extension rule's frame say what is missing (they raised
    KeyError: 'followup_weeks')."""
    from ptanalytics.exceptions import ConfigError
    from ptanalytics.models import extension_rule_trial, weekly_history

    cohort = pt.load_cohort(ashar)
    with pytest.raises(ConfigError, match=r"no session records \(an outcomes-only export\)"):
        weekly_history(cohort)
    with pytest.raises(ConfigError, match="no guided_weeks or guided_weeks_actual"):
        extension_rule_trial(cohort, 0.1)
