import subprocess
import sys

import pytest

import ptanalytics as pt
from ptanalytics.cli import main


def test_simulate_then_load(tmp_path, capsys):
    out = tmp_path / "sim"
    assert main(["simulate", "--patients", "50", "--seed", "1", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    cohort = pt.load_cohort(out)
    assert len(cohort.patients) == 50
    assert (out / "sessions.parquet").exists() and (out / "truth.json").exists()
    assert cohort.metadata["seed"] == 1


def test_simulate_refuses_existing_folder(tmp_path, capsys):
    out = tmp_path / "sim"
    args = ["simulate", "--patients", "5", "--seed", "1", "--out", str(out), "--format", "csv"]
    assert main(args) == 0
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "folder exists and is not empty" in err and "--overwrite" in err
    assert main([*args, "--overwrite"]) == 0


def test_bad_config_exits_2_with_one_line(tmp_path, capsys):
    cfg = tmp_path / "p.toml"
    cfg.write_text("dropout_by_week8 = 1.5\n")
    code = main(
        [
            "simulate",
            "--patients",
            "5",
            "--seed",
            "1",
            "--out",
            str(tmp_path / "x"),
            "--config",
            str(cfg),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "p.toml: dropout_by_week8=1.5 is out of range; allowed: 0 to 0.95" in err
    assert not (tmp_path / "x").exists()


def test_summary_prints_calibration(tmp_path, capsys):
    pt.simulate_cohort(60, seed=2).write(tmp_path / "c", format="csv")
    assert main(["summary", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "baseline NPRS mean" in out and "dropout_by_week8" in out and "(target 0.27)" in out


def test_summary_of_missing_folder(tmp_path, capsys):
    assert main(["summary", str(tmp_path / "nope")]) == 2
    assert "not a cohort folder" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--version"], ["--help"]])
def test_console_script_runs(argv):
    done = subprocess.run(
        [sys.executable, "-m", "ptanalytics.cli", *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.strip()
