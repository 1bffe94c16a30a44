"""simulate_to_disk: chunked simulation written as folders of Parquet parts, and reading them."""

import filecmp
import json
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import ptanalytics as pt
from ptanalytics import cli
from ptanalytics.cohort.container import TABLE_NAMES
from ptanalytics.cohort.schema import coerce_table
from ptanalytics.exceptions import CohortFormatError, ConfigError
from ptanalytics.simulate import simulate_to_disk
from ptanalytics.simulate._truth import pool_effects

N, CHUNK, SEED = 1_100, 400, 5
TABLES = (*TABLE_NAMES, "truth_patients")


@pytest.fixture(scope="module")
def chunked(tmp_path_factory):
    """1,100 patients in chunks of 400 (three parts: 400, 400, 300)."""
    return simulate_to_disk(tmp_path_factory.mktemp("disk") / "c", N, seed=SEED, chunk_patients=400)


@pytest.fixture(scope="module")
def in_memory(tmp_path_factory):
    """simulate_cohort's cohort and the folder Cohort.write makes of it (Parquet)."""
    cohort = pt.simulate_cohort(CHUNK, seed=SEED)
    return cohort, cohort.write(tmp_path_factory.mktemp("mem") / "c", format="parquet")


def _all_files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------ layout
def test_layout_one_part_per_chunk(chunked):
    parts = [f"part-{i:05d}.parquet" for i in range(3)]
    expected = ["cohort.json", "truth.json"] + [f"{t}/{p}" for t in TABLES for p in parts]
    assert _all_files(chunked) == sorted(expected)
    assert not list(chunked.parent.glob(f".{chunked.name}.*"))  # no temporary folder left


def test_schema_equals_cohort_write(chunked, in_memory):
    _, written = in_memory
    for table in TABLES:
        reference = pq.read_schema(written / f"{table}.parquet")
        for part in sorted((chunked / table).iterdir()):
            schema = pq.read_schema(part)
            assert schema.remove_metadata() == reference.remove_metadata(), (table, part.name)


def test_cohort_json_keys_and_row_counts(chunked, in_memory):
    _, written = in_memory
    meta = json.loads((chunked / "cohort.json").read_text())
    reference = json.loads((written / "cohort.json").read_text())
    assert set(reference) <= set(meta)
    assert meta["n_patients"] == N and meta["seed"] == SEED and meta["file_format"] == "parquet"
    assert meta["chunking"]["chunk_patients"] == CHUNK and meta["chunking"]["n_chunks"] == 3
    for table in TABLE_NAMES:
        rows = sum(pq.read_metadata(p).num_rows for p in (chunked / table).iterdir())
        assert meta["row_counts"][table] == rows
    assert meta["row_counts"]["patients"] == N


def test_ids_unique_in_order_across_parts(chunked):
    ids = pd.read_parquet(chunked / "patients")["patient_id"]  # pandas reads the folder
    assert ids.tolist() == [f"P{i:06d}" for i in range(1, N + 1)]
    for table in ("sessions", "outcomes", "prescriptions", "truth_patients"):
        parts = sorted((chunked / table).iterdir())
        firsts = [pq.read_table(p, columns=["patient_id"])["patient_id"] for p in parts]
        assert firsts[1][0].as_py() == "P000401" and firsts[2][0].as_py() == "P000801"
        column = pd.concat([pd.Series(c.to_pylist()) for c in firsts], ignore_index=True)
        assert column.is_monotonic_increasing and set(column) <= set(ids)


# ------------------------------------------------------------------------------ reading
def test_load_cohort_round_trip(chunked):
    back = pt.load_cohort(chunked)
    assert back.row_counts() == json.loads((chunked / "cohort.json").read_text())["row_counts"]
    for name, df in back.tables.items():
        direct = pd.concat(
            [pd.read_parquet(p) for p in sorted((chunked / name).iterdir())], ignore_index=True
        )
        pd.testing.assert_frame_equal(df, coerce_table(name, direct))
    assert len(back.truth_patients) == N and back.truth["n_patients"] == N
    assert back.sessions["performed_on"].dtype == "datetime64[s]"


def test_load_reads_parts_in_numeric_order(chunked, tmp_path):
    copy = tmp_path / "c"
    shutil.copytree(chunked, copy)
    (copy / "patients" / "part-00002.parquet").rename(copy / "patients" / "part-100000.parquet")
    ids = pt.load_cohort(copy).patients["patient_id"]
    assert ids.is_monotonic_increasing  # part-100000 after part-00001, not before


def test_load_checks_parts_against_cohort_json(chunked, tmp_path):
    copy = tmp_path / "c"
    shutil.copytree(chunked, copy)
    (copy / "sessions" / "part-00001.parquet").unlink()
    with pytest.raises(CohortFormatError, match=r"sessions: has \d+ rows but cohort.json lists"):
        pt.load_cohort(copy)
    for part in (copy / "sessions").iterdir():
        part.unlink()
    with pytest.raises(CohortFormatError, match=r"holds no \.parquet parts"):
        pt.load_cohort(copy)
    shutil.rmtree(copy / "sessions")
    with pytest.raises(CohortFormatError, match=r"no sessions.parquet, sessions.csv or sessions/"):
        pt.load_cohort(copy)


def test_load_refuses_a_file_and_a_folder_for_one_table(chunked, tmp_path):
    copy = tmp_path / "c"
    shutil.copytree(chunked, copy)
    shutil.copy(copy / "patients" / "part-00000.parquet", copy / "patients.parquet")
    with pytest.raises(CohortFormatError, match=r"both patients\.parquet and patients exist"):
        pt.load_cohort(copy)


# ------------------------------------------------------------------------------ reproducibility
def test_rerun_is_byte_identical(chunked, tmp_path):
    again = simulate_to_disk(tmp_path / "again", N, seed=SEED, chunk_patients=CHUNK)
    files = _all_files(chunked)
    assert files == _all_files(again)
    match, mismatch, errors = filecmp.cmpfiles(chunked, again, files, shallow=False)
    assert mismatch == [] and errors == [] and match == files


def test_one_chunk_is_simulate_cohort(in_memory, tmp_path):
    cohort, written = in_memory
    disk = simulate_to_disk(tmp_path / "d", CHUNK, seed=SEED, chunk_patients=CHUNK)
    for table in TABLES:
        assert filecmp.cmp(
            disk / table / "part-00000.parquet", written / f"{table}.parquet", shallow=False
        ), table
    assert filecmp.cmp(disk / "truth.json", written / "truth.json", shallow=False)
    back = pt.load_cohort(disk)
    for name, df in cohort.tables.items():
        pd.testing.assert_frame_equal(back.tables[name], coerce_table(name, df))


def test_first_chunk_is_simulate_cohort_later_chunks_differ(chunked, in_memory):
    cohort, _ = in_memory
    truth = pt.load_cohort(chunked).truth_patients
    first = truth.iloc[:CHUNK].reset_index(drop=True)
    pd.testing.assert_frame_equal(first, cohort.truth_patients, check_dtype=False)
    second = truth["baseline_nprs_latent"].iloc[CHUNK : 2 * CHUNK].to_numpy()
    assert not np.isclose(second, first["baseline_nprs_latent"].to_numpy()).any()


# ------------------------------------------------------------------------------ truth
def test_pooled_calibration_matches_the_tables(chunked):
    back = pt.load_cohort(chunked)
    cal = back.truth["calibration"]
    nprs = back.outcomes[back.outcomes["instrument"] == "NPRS"]
    enrolled = nprs["patient_id"].map(back.patients.set_index("patient_id")["enrolled_on"])
    base = nprs.loc[nprs["assessed_on"] == enrolled, "score"]  # week 0
    assert len(base) == N
    assert cal["baseline_nprs_mean"]["realised"] == pytest.approx(base.mean(), rel=1e-12)
    assert cal["baseline_nprs_sd"]["realised"] == pytest.approx(base.std(ddof=1), rel=1e-12)
    tp = back.truth_patients
    share = (tp["adherence_trajectory"] == "stable").mean()
    assert cal["trajectory_share_stable"]["realised"] == pytest.approx(share, rel=1e-12)
    gone = (tp["dropout_week"].fillna(99) <= 8).mean()
    assert cal["dropout_by_week8"]["realised"] == pytest.approx(gone, rel=1e-12)
    assert any("simulated in 3 chunks" in note for note in back.truth["notes"])


def test_pool_effects_weights_by_patients_averaged_over():
    def effect(value, kind="cohort_average"):
        return {"term": "t", "value": value, "kind": kind}

    parts = [
        [(effect(1.0, "structural"), None), (effect(-1.0), 100), (effect(None), 0)],
        [(effect(1.0, "structural"), None), (effect(-4.0), 50), (effect(2.0), 10)],
    ]
    structural, average, sparse = pool_effects(parts)
    assert structural["value"] == 1.0
    assert average["value"] == pytest.approx((-1.0 * 100 - 4.0 * 50) / 150)
    assert sparse["value"] == 2.0


# ------------------------------------------------------------------------------ safety
def test_refuses_to_overwrite_unless_asked(chunked, tmp_path):
    dest = tmp_path / "c"
    simulate_to_disk(dest, 30, seed=1, chunk_patients=10)
    with pytest.raises(CohortFormatError, match=r"folder exists and is not empty.*overwrite"):
        simulate_to_disk(dest, 30, seed=2, chunk_patients=10)
    simulate_to_disk(dest, 20, seed=2, chunk_patients=10, overwrite=True)
    assert len(list((dest / "patients").iterdir())) == 2
    assert json.loads((dest / "cohort.json").read_text())["seed"] == 2
    (tmp_path / "empty").mkdir()
    simulate_to_disk(tmp_path / "empty", 5, seed=1)  # an empty folder is fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(CohortFormatError, match="file: exists and is not an empty folder"):
        simulate_to_disk(tmp_path / "file", 5, seed=1, overwrite=True)


def test_failure_leaves_nothing_behind(tmp_path):
    calls = []

    def progress(step):
        calls.append(step)
        if step["chunk"] == 2:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        simulate_to_disk(tmp_path / "c", 30, seed=1, chunk_patients=10, progress=progress)
    assert list(tmp_path.iterdir()) == [] and len(calls) == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"chunk_patients": 0}, r"chunk_patients=0; allowed: a whole number >= 1"),
        ({"chunk_patients": -5}, r"chunk_patients=-5; allowed"),
        ({"chunk_patients": 2.5}, r"chunk_patients=2.5; allowed"),
        ({"chunk_patients": True}, r"chunk_patients=True; allowed"),
        ({"format": "csv"}, r"format='csv' is not supported by simulate_to_disk.*parquet"),
        ({"overwrite": "yes"}, r"overwrite='yes'; allowed: True or False"),
        ({"n_patients": 0}, r"n_patients=0; allowed: a whole number >= 1"),
        ({"seed": -1}, r"seed=-1; allowed: a whole number >= 0"),
        ({"no_such_parameter": 1}, r"no_such_parameter"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    args = {"n_patients": 10, "seed": 1} | kwargs
    with pytest.raises(ConfigError, match=match):
        simulate_to_disk(tmp_path / "c", **args)
    assert not (tmp_path / "c").exists()


# ------------------------------------------------------------------------------ command line
def test_cli_chunked_with_progress(tmp_path, capsys):
    out = tmp_path / "c"
    code = cli.main(
        ["simulate", "--patients", "25", "--seed", "3", "--out", str(out), "--chunk-patients", "10"]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "chunk 3/3: 25 of 25 patients" in captured.err and "P0000" not in captured.err
    assert f"wrote {out} (patients 25," in captured.out
    assert len(list((out / "sessions").iterdir())) == 3
    assert pt.load_cohort(out).row_counts()["patients"] == 25


def test_cli_chunk_patients_needs_parquet(tmp_path, capsys):
    args = ["simulate", "--patients", "5", "--out", str(tmp_path / "c"), "--format", "csv"]
    assert cli.main([*args, "--chunk-patients", "2"]) == 2
    assert "--chunk-patients 2 writes Parquet parts" in capsys.readouterr().err
    assert cli.main(["simulate", "--out", str(tmp_path / "d"), "--chunk-patients", "0"]) == 2
    assert "chunk_patients=0" in capsys.readouterr().err


def test_writing_a_loaded_chunked_cohort_gives_one_file_per_table(chunked, tmp_path):
    cohort = pt.load_cohort(chunked)
    assert "chunking" in cohort.metadata
    out = cohort.write(tmp_path / "single", format="parquet")
    meta = json.loads((out / "cohort.json").read_text())
    assert "chunking" not in meta
    assert (out / "sessions.parquet").is_file() and not (out / "sessions").exists()
    again = pt.load_cohort(out)
    pd.testing.assert_frame_equal(again.sessions, cohort.sessions)
