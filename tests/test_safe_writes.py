"""Safe writes (issue 12, deliverable 1): --overwrite only over our own outputs, atomic
replacement that survives a kill at every rename and removal, recovery, locks, the report file."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import ptanalytics as pt
from ptanalytics.cli import main
from ptanalytics.cohort import _atomic
from ptanalytics.cohort.io import REPORT_MARKER, atomic_folder
from ptanalytics.exceptions import CohortFormatError
from ptanalytics.report._file import report_destination, write_report

DATA = Path(__file__).parent / "data"


def tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` with its bytes (to prove nothing was touched)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def is_complete(dest: Path, seed: int) -> bool:
    cohort = pt.load_cohort(dest)
    return cohort.metadata["seed"] == seed and len(cohort.patients) == 12


def siblings(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}."))


def simulate_args(out: Path, seed: int = 1) -> list[str]:
    return ["simulate", "--patients", "12", "--seed", str(seed), "--out", str(out)]


# ------------------------------------------------------------------------------ what is replaced
def test_overwrite_refuses_a_documents_folder_with_a_key_file(tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "thesis.docx").write_bytes(b"chapter 1")
    (docs / "clinic.key").write_text("ab" * 32)
    before = tree(docs)
    assert main([*simulate_args(docs), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{docs}: --overwrite replaces only a folder written by ptanalytics" in err
    assert "has no cohort.json" in err and "Nothing was changed. Fix:" in err
    assert tree(docs) == before and siblings(docs) == []


def test_ingest_into_the_exports_folder_deletes_nothing(tmp_path, capsys):
    exports = tmp_path / "exports"
    exports.mkdir()
    for name in ("patients.csv", "outcomes_nprs_range.csv"):
        shutil.copy(DATA / name, exports / name)
    before = tree(exports)
    args = ["ingest", *map(str, sorted(exports.glob("*.csv"))), "--out", str(exports)]
    assert main([*args, "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "exports: holds the input" in err and "Nothing was changed" in err
    assert tree(exports) == before and siblings(exports) == []
    assert main(args) == 2  # without --overwrite: not empty
    assert tree(exports) == before


def test_ingest_refuses_a_cohort_folder_that_holds_its_sources(tmp_path, capsys):
    cohort = pt.simulate_cohort(12, seed=1).write(tmp_path / "c", format="csv")
    before = tree(cohort)
    sources = [str(cohort / "patients.csv"), str(cohort / "outcomes.csv")]
    assert main(["ingest", *sources, "--out", str(cohort), "--overwrite"]) == 2
    assert "holds the input" in capsys.readouterr().err
    assert tree(cohort) == before


def test_overwrite_refuses_a_cohort_with_files_we_did_not_write(tmp_path):
    dest = pt.simulate_cohort(12, seed=1).write(tmp_path / "c", format="csv")
    (dest / "notes.txt").write_text("my notes")
    before = tree(dest)
    with pytest.raises(CohortFormatError, match=r"also holds 1 file\(s\) or folder\(s\) that"):
        pt.simulate_cohort(12, seed=2).write(dest, format="csv", overwrite=True)
    assert tree(dest) == before


@pytest.mark.parametrize(
    ("meta", "reason"),
    [
        ("{broken", "has a cohort.json that is not valid JSON"),
        ('{"format_version": 1}', "has a cohort.json without the ptanalytics marker"),
    ],
)
def test_overwrite_refuses_a_folder_whose_cohort_json_is_not_ours(tmp_path, meta, reason):
    dest = tmp_path / "c"
    dest.mkdir()
    (dest / "cohort.json").write_text(meta)
    with pytest.raises(CohortFormatError, match=reason):
        pt.simulate_cohort(12, seed=2).write(dest, overwrite=True)
    assert (dest / "cohort.json").read_text() == meta


def test_overwrite_replaces_our_cohorts_including_ones_written_before_the_marker(tmp_path):
    dest = pt.simulate_cohort(12, seed=1).write(tmp_path / "c", format="csv")
    meta = json.loads((dest / "cohort.json").read_text())
    assert meta["written_by"] == "ptanalytics" and meta["format_version"] == 1
    del meta["written_by"]  # as written by ptanalytics before the marker existed
    (dest / "cohort.json").write_text(json.dumps(meta))
    pt.simulate_cohort(12, seed=2).write(dest, format="parquet", overwrite=True)
    assert is_complete(dest, 2) and not list(dest.glob("*.csv")) and siblings(dest) == []


def test_empty_folder_is_replaced_and_a_symlink_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    pt.simulate_cohort(12, seed=1).write(tmp_path / "empty")
    assert is_complete(tmp_path / "empty", 1)
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    with pytest.raises(CohortFormatError, match=r"link: is a symbolic link.*Fix: give the real"):
        pt.simulate_cohort(12, seed=2).write(tmp_path / "link", overwrite=True)
    assert is_complete(tmp_path / "empty", 1)


# ------------------------------------------------------------------------------ kills
DRIVER = textwrap.dedent(
    """
    import os, shutil, sys
    import ptanalytics as pt
    import ptanalytics.cohort.io as cohort_io

    dest, step = sys.argv[1], sys.argv[2]
    real_rename, real_rmtree, real_json = os.rename, shutil.rmtree, cohort_io._write_json

    def rename(src, dst):
        if step == "rename-aside" and str(src) == dest:
            os._exit(9)
        if step == "rename-in" and "-new-" in str(src) and str(dst) == dest:
            os._exit(9)
        return real_rename(src, dst)

    def rmtree(path, *args, **kwargs):
        if step == "rmtree-old" and "-old-" in str(path):
            os.remove(sorted(e.path for e in os.scandir(path) if e.is_file())[0])
            os._exit(9)  # killed halfway through deleting the old output
        return real_rmtree(path, *args, **kwargs)

    def write_json(path, obj):
        if step == "write" and path.name == "cohort.json":
            os._exit(9)  # killed while the new folder is being written
        return real_json(path, obj)

    os.rename, shutil.rmtree, cohort_io._write_json = rename, rmtree, write_json
    pt.simulate_cohort(12, seed=2).write(dest, format="csv", overwrite=True)
    """
)


def run_killed(tmp_path: Path, dest: Path, step: str) -> subprocess.CompletedProcess:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.run(
        [sys.executable, str(driver), str(dest), step], capture_output=True, text=True
    )
    assert proc.returncode == 9, proc.stderr
    return proc


@pytest.mark.parametrize("step", ["write", "rename-aside", "rename-in", "rmtree-old"])
def test_a_kill_at_any_step_leaves_the_old_or_the_new_output(tmp_path, capsys, step):
    dest = pt.simulate_cohort(12, seed=1).write(tmp_path / "c", format="csv")
    run_killed(tmp_path, dest, step)
    assert ".c.ptanalytics-lock" in siblings(dest)  # the killed run could not release its lock
    if step in ("write", "rename-aside"):
        assert is_complete(dest, 1)  # the old output, untouched
    elif step == "rename-in":
        assert not dest.exists()  # between the renames: the old output waits, complete, aside
        (old,) = [tmp_path / n for n in siblings(dest) if "-old-" in n]
        assert is_complete(old, 1)
        with pytest.raises(CohortFormatError, match=r"An interrupted ptanalytics write left"):
            pt.load_cohort(dest)
    else:
        assert is_complete(dest, 2)  # the new output is in place; the old one half deleted
    # The next run (here without --overwrite) cleans up or restores, and says so.
    code = main(["simulate", "--patients", "12", "--seed", "3", "--out", str(dest)])
    err = capsys.readouterr().err
    assert "removed the stale lock" in err and "is no longer running" in err
    assert code == 2 and "folder exists and is not empty" in err
    assert is_complete(dest, 2 if step == "rmtree-old" else 1)
    assert siblings(dest) == []
    if step == "rename-in":
        assert "restored" in err and "-old-" in err
    else:
        assert "left by an interrupted ptanalytics run" in err


def test_failing_renames_and_removal_restore_or_keep_a_complete_output(tmp_path, monkeypatch):
    dest = pt.simulate_cohort(12, seed=1).write(tmp_path / "c", format="csv")
    real_rename = os.rename

    def refuse_rename_in(src, dst):
        if "-new-" in str(src):
            raise OSError(5, "Input/output error")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", refuse_rename_in)
    with pytest.raises(OSError, match="Input/output error"):
        pt.simulate_cohort(12, seed=2).write(dest, format="csv", overwrite=True)
    assert is_complete(dest, 1) and siblings(dest) == []
    monkeypatch.setattr(os, "rename", real_rename)

    real_rmtree = shutil.rmtree

    def refuse_rmtree(path, *args, **kwargs):
        if "-old-" in str(path):
            raise PermissionError(13, "Permission denied")
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", refuse_rmtree)
    pt.simulate_cohort(12, seed=2).write(dest, format="csv", overwrite=True)
    assert is_complete(dest, 2)
    assert [n for n in siblings(dest) if "-old-" in n]  # reported, left for the next run
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    pt.simulate_cohort(12, seed=3).write(dest, format="csv", overwrite=True)
    assert is_complete(dest, 3) and siblings(dest) == []


# ------------------------------------------------------------------------------ locks
def test_a_second_writer_to_the_same_destination_is_refused(tmp_path, capsys):
    dest = tmp_path / "c"
    with atomic_folder(dest, overwrite=False) as tmp:
        assert main(simulate_args(dest)) == 2
        err = capsys.readouterr().err
        assert f"{dest}: another ptanalytics run is writing to it" in err
        assert f"pid {os.getpid()}" in err and "Fix: wait for that run to finish" in err
        (tmp / "cohort.json").write_text("{}")
    assert not (tmp_path / ".c.ptanalytics-lock").exists()


def test_two_concurrent_simulate_runs_one_succeeds_one_exits_2(tmp_path):
    dest = tmp_path / "c"
    slow = tmp_path / "slow.py"
    slow.write_text(
        textwrap.dedent(
            """
            import sys, time
            import ptanalytics.cohort.io as c
            from ptanalytics.cli import main
            real = c._write_json
            def slow(path, obj):
                time.sleep(3)
                real(path, obj)
            c._write_json = slow
            sys.exit(main(sys.argv[1:]))
            """
        )
    )
    first = subprocess.Popen(
        [sys.executable, str(slow), *simulate_args(dest, 1)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not (tmp_path / ".c.ptanalytics-lock").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run(
        [sys.executable, "-m", "ptanalytics.cli", *simulate_args(dest, 2)],
        capture_output=True,
        text=True,
    )
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert second.returncode == 2 and "another ptanalytics run is writing to" in second.stderr
    assert is_complete(dest, 1) and siblings(dest) == []


def test_unreadable_fresh_lock_is_respected_and_old_one_is_stale(tmp_path, capsys):
    dest = tmp_path / "c"
    lock = tmp_path / ".c.ptanalytics-lock"
    lock.write_text("")
    with pytest.raises(CohortFormatError, match="another ptanalytics run is writing"):
        pt.simulate_cohort(12, seed=1).write(dest)
    old = time.time() - 3600
    os.utime(lock, (old, old))
    pt.simulate_cohort(12, seed=1).write(dest)
    assert "removed the unreadable stale lock" in capsys.readouterr().err
    assert is_complete(dest, 1) and not lock.exists()


# ------------------------------------------------------------------------------ the report file
@pytest.fixture
def cohort_dir(tmp_path):
    return pt.simulate_cohort(12, seed=1).write(tmp_path / "c", format="csv")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("cohort.json", r"lies inside the cohort folder .* and is one of its files"),
        ("patients.csv", r"lies inside the cohort folder .* and is one of its files"),
        ("notes.txt", r"lies inside the cohort folder .* and is not an .html file"),
        ("quarantine/x.html", r"lies inside the cohort folder .* in its quarantine/ folder"),
    ],
)
def test_report_never_replaces_a_cohorts_files(cohort_dir, target, message):
    (cohort_dir / "quarantine").mkdir(exist_ok=True)
    before = tree(cohort_dir)
    with pytest.raises(CohortFormatError, match=message):
        report_destination(cohort_dir / target)
    with pytest.raises(CohortFormatError, match=message):
        write_report(cohort_dir / target, "<html><head></head></html>")
    assert tree(cohort_dir) == before


def test_report_cli_refuses_cohort_json_before_running_the_notebook(cohort_dir, capsys):
    code = main(["report", "--data", str(cohort_dir), "--out", str(cohort_dir / "cohort.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "one of its files" in err
    assert is_complete(cohort_dir, 1)


def test_report_refuses_folders_symlinks_and_files_it_did_not_write(tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(CohortFormatError, match=r"dir: is a folder; the report is one HTML"):
        write_report(tmp_path / "dir", "<html></html>")
    target = tmp_path / "elsewhere.html"
    target.write_text("<p>someone's page</p>")
    (tmp_path / "link.html").symlink_to(target)
    with pytest.raises(CohortFormatError, match=r"link.html: is a symbolic link"):
        write_report(tmp_path / "link.html", "<html></html>")
    with pytest.raises(CohortFormatError, match=r"exists and is not a ptanalytics report"):
        write_report(target, "<html></html>")
    assert target.read_text() == "<p>someone's page</p>"


def test_report_is_marked_replaced_and_a_legacy_report_is_recognised(tmp_path):
    out = tmp_path / "reports" / "report.html"
    write_report(out, "<!DOCTYPE html>\n<html><head><title>t</title></head><body>1</body></html>")
    assert REPORT_MARKER in out.read_bytes()[:200]
    write_report(out, "<!DOCTYPE html>\n<html><head></head><body>2</body></html>")
    assert b"<body>2</body>" in out.read_bytes()
    out.write_text("<!DOCTYPE html>\n<html><head></head><body>ptanalytics 0.1</body></html>")
    write_report(out, "<!DOCTYPE html>\n<html><head></head><body>3</body></html>")
    assert b"<body>3</body>" in out.read_bytes() and siblings(out) == []
    beside = tmp_path / "c"
    pt.simulate_cohort(12, seed=1).write(beside)
    write_report(beside / "report.html", "<html><head></head></html>")  # beside a cohort: fine
    pt.simulate_cohort(12, seed=2).write(beside, overwrite=True)  # our report is ours
    assert is_complete(beside, 2)


def test_a_kill_during_the_report_write_leaves_the_old_report(tmp_path, capsys):
    out = tmp_path / "report.html"
    write_report(out, "<html><head></head><body>old</body></html>")
    old = out.read_bytes()
    driver = tmp_path / "kill.py"
    driver.write_text(
        textwrap.dedent(
            f"""
            import os
            from ptanalytics.report._file import write_report
            os.replace = lambda a, b: os._exit(9)
            write_report({str(out)!r}, "<html><head></head><body>new</body></html>")
            """
        )
    )
    proc = subprocess.run([sys.executable, str(driver)], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    assert out.read_bytes() == old
    assert [n for n in siblings(out) if "-new-" in n]  # the half-done temporary file
    write_report(out, "<html><head></head><body>next</body></html>")
    err = capsys.readouterr().err
    assert "removed the stale lock" in err and "left by an interrupted ptanalytics run" in err
    assert b"next" in out.read_bytes() and siblings(out) == []


def test_root_is_refused():
    with pytest.raises(CohortFormatError, match="it is the root folder"):
        _atomic.absolute("/")
