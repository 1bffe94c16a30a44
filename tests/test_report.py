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
    # The medium attendance band (46 patients) is hidden, the low band (165) shown.
    assert ">46<" not in text and ">165<" in text


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
    assert "(tipping point)" in text and "delta (NPRS points)" in text
    assert "first includes 0 at delta = -4 points" in tipping_text(-4.0, m=5, seed=1)
    assert "never includes 0" in tipping_text(None, m=5, seed=1)
