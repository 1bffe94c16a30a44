"""`ptanalytics validate` checks everything load_cohort relies on (issue 12, deliverable 7)."""

import datetime as dt
import json

import pytest

import ptanalytics as pt
from ptanalytics.cli import main
from ptanalytics.exceptions import CohortFormatError
from ptanalytics.ingestion.pipeline import validate_cohort_dir

TODAY = "2030-01-01"


@pytest.fixture(scope="module")
def sim():
    return pt.simulate_cohort(40, seed=3)


@pytest.fixture
def csv_cohort(sim, tmp_path):
    return sim.write(tmp_path / "c", format="csv")


def _validate(folder, capsys):
    code = main(["validate", str(folder), "--today", TODAY])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def test_intact_cohort_passes(csv_cohort, capsys):
    code, out, _ = _validate(csv_cohort, capsys)
    assert code == 0 and "all records pass validation" in out


def test_cohort_json_that_is_not_json_exits_2(csv_cohort, capsys):
    (csv_cohort / "cohort.json").write_text("{not json")
    code, _, err = _validate(csv_cohort, capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "cohort.json: not valid JSON" in err and "Fix:" in err


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.pop("format_version"), r"format_version None is not supported"),
        (lambda m: m.update(format_version=99), r"format_version 99 is not supported"),
        (lambda m: m.pop("row_counts"), r"no row_counts entry for 'patients'"),
        (lambda m: m["row_counts"].pop("sessions"), r"no row_counts entry for 'sessions'"),
        (lambda m: m["row_counts"].update(sessions="many"), r"row_counts\.sessions must map"),
        (lambda m: m.update(row_counts=[1, 2]), r"row_counts must map the tables"),
    ],
)
def test_damaged_cohort_json_exits_2_naming_the_key(csv_cohort, capsys, edit, message):
    meta = json.loads((csv_cohort / "cohort.json").read_text())
    edit(meta)
    (csv_cohort / "cohort.json").write_text(json.dumps(meta))
    with pytest.raises(CohortFormatError, match=message):
        validate_cohort_dir(csv_cohort)
    code, _, err = _validate(csv_cohort, capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "Fix:" in err


def test_cohort_json_that_is_a_list_exits_2(csv_cohort, capsys):
    (csv_cohort / "cohort.json").write_text("[1, 2]")
    code, _, err = _validate(csv_cohort, capsys)
    assert code == 2 and "holds a JSON list, not an object" in err


def test_cut_session_rows_are_caught(sim, tmp_path, capsys):
    big = pt.simulate_cohort(60, seed=4).write(tmp_path / "c", format="csv")
    lines = (big / "sessions.csv").read_text().splitlines(keepends=True)
    assert len(lines) > 2001
    (big / "sessions.csv").write_text("".join(lines[:-2000]))
    code, _, err = _validate(big, capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert f"sessions.csv: has {len(lines) - 2001} rows but cohort.json lists" in err
    assert "Fix:" in err and "P0" not in err  # no patient id in the message


def test_file_cut_mid_line_or_missing_exits_2(csv_cohort, capsys):
    text = (csv_cohort / "outcomes.csv").read_text()
    (csv_cohort / "outcomes.csv").write_text(text[: len(text) // 2])
    code, _, err = _validate(csv_cohort, capsys)
    assert code == 2 and "outcomes.csv" in err and "Fix:" in err
    (csv_cohort / "outcomes.csv").unlink()
    code, _, err = _validate(csv_cohort, capsys)
    assert code == 2 and "lists" in err and "rows of 'outcomes' but there is no" in err


def test_schema_mismatch_exits_2(csv_cohort, capsys):
    lines = (csv_cohort / "sessions.csv").read_text().splitlines()
    header = lines[0].split(",")
    col = header.index("performed_on")
    row = lines[1].split(",")
    row[col] = "not-a-date"
    lines[1] = ",".join(row)
    (csv_cohort / "sessions.csv").write_text("\n".join(lines) + "\n")
    code, _, err = _validate(csv_cohort, capsys)
    assert code == 2 and "column 'performed_on', row 1" in err and "Fix:" in err


def test_failing_records_still_exit_1(csv_cohort, capsys):
    lines = (csv_cohort / "outcomes.csv").read_text().splitlines()
    nprs = next(i for i, line in enumerate(lines) if ",NPRS," in line)
    lines[nprs] = lines[nprs].rsplit(",", 1)[0] + ",12"  # out of NPRS's 0-10
    (csv_cohort / "outcomes.csv").write_text("\n".join(lines) + "\n")
    result = validate_cohort_dir(csv_cohort, today=dt.date(2030, 1, 1))
    assert result.quarantined == 1
    code, out, _ = _validate(csv_cohort, capsys)
    assert code == 1 and "1 record(s) fail validation" in out


def test_tables_in_parquet_parts_are_seen(tmp_path, capsys):
    folder = pt.simulate_to_disk(tmp_path / "big", 30, seed=1, chunk_patients=10)
    code, out, _ = _validate(folder, capsys)
    assert code == 0 and "all records pass validation" in out
    assert "sessions_part-00002.parquet" in out  # every part was read
    meta = json.loads((folder / "cohort.json").read_text())
    meta["row_counts"]["sessions"] += 1
    (folder / "cohort.json").write_text(json.dumps(meta))
    code, _, err = _validate(folder, capsys)
    assert code == 2 and "sessions: has" in err and "rows but cohort.json lists" in err


def test_not_a_cohort_folder_exits_2(tmp_path, capsys):
    code, _, err = _validate(tmp_path, capsys)
    assert code == 2 and "not a cohort folder (no cohort.json)" in err


# ------------------------------------------------- argument checks (ptanalytics._checks)
def test_check_option_names_the_value_and_the_options():
    from ptanalytics._checks import check_option
    from ptanalytics.exceptions import ConfigError

    assert check_option("analysis", "itt", ("itt", "completers")) == "itt"
    with pytest.raises(
        ConfigError, match=r"^analysis='pp'; allowed: one of 'itt', 'completers'\.$"
    ):
        check_option("analysis", "pp", ("itt", "completers"))
    with pytest.raises(
        ConfigError, match=r"flag=1; allowed: one of True, False\. Fix: use a bool\."
    ):
        check_option("flag", 1, (True, False), fix="use a bool")


@pytest.mark.parametrize(
    ("kwargs", "value", "message"),
    [
        ({"low": 1, "integer": True}, 0, r"^n=0; allowed: a whole number >= 1\.$"),
        ({"low": 1, "integer": True}, 2.0, r"^n=2\.0; allowed: a whole number >= 1\.$"),
        ({"low": 0, "high": 10}, 11, r"^n=11; allowed: a number from 0 to 10\.$"),
        ({"low": 0, "high": 1, "inclusive": False}, 1, r"strictly between 0 and 1\.$"),
        ({"low": 0}, float("nan"), r"^n=nan; allowed: a number >= 0\.$"),
        ({"low": 0}, True, r"^n=True; allowed: a number >= 0\.$"),
        ({"low": 1, "integer": True, "allow_none": True}, 0, r"allowed: None or a whole number"),
        ({"high": 5, "fix": "use 5 or less."}, 6, r"^n=6; allowed: a number <= 5\. Fix: use 5"),
    ],
)
def test_check_number_refuses_with_one_message_format(kwargs, value, message):
    from ptanalytics._checks import check_number
    from ptanalytics.exceptions import ConfigError

    with pytest.raises(ConfigError, match=message):
        check_number("n", value, **kwargs)


def test_check_number_returns_the_cleaned_value():
    from ptanalytics._checks import check_alpha, check_number, check_seed

    assert check_number("n", 3, low=1, integer=True) == 3
    assert check_number("n", None, allow_none=True) is None
    assert check_number("n", 10**30, low=0, integer=True) == 10**30
    assert check_alpha(0.05) == 0.05 and check_seed(7) == 7
