"""Issue 12, de-identification that holds: a planted-identifier corpus, hostile key files,
vocabularies, dates in every format, ages, file names and the k-anonymity summary.

The corpus is ingested from exports (CSV and a workbook) whose names hold a name and an MRN, with
identifiers planted in canonical and extra columns of patients, sessions and outcomes; after
``ptanalytics deidentify`` every output file (CSV, Parquet, JSON) is scanned for every planted
value and for the planted real calendar dates.
"""

import base64
import json
import os
import re
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import ptanalytics as pt
from ptanalytics.cli import main
from ptanalytics.cohort.schema import TABLES
from ptanalytics.exceptions import ConfigError
from ptanalytics.privacy import identifiers
from ptanalytics.privacy.deidentification import deidentify, generalise, k_anonymity
from ptanalytics.privacy.identifiers import KeyFileError, read_key_file, write_key_file

KEY = bytes.fromhex("977e0147e630f7a457da04c5ec1808cf29ef2353726bb1b88d56e768b9d30730")
N = 24
FIRST = "HX0000"  # the patient who carries the planted values

# Every planted identifier (case-insensitive substrings that must not survive anywhere).
PLANTED = {
    "name in pt": "Margaret Thornbury",
    "name in kin": "Reginald Thornbury",
    "name in gp": "Octavia Pemberton",
    "surname": "Thornbury",
    "name in outcomes extra": "Bartholomew Quince",
    "name in sessions extra": "Ignatius Fairweather",
    "address": "42 Wallaby Way",
    "hospital number": "H7734521",
    "phone as integer": "61412555123",
    "phone in free text": "0412 555 123",
    "email": "m.thornbury@example.org",
    "ssn": "078-05-1120",
    "nhs number": "943 476 5919",
    "name in instrument": "John Smith",
    "phone in instrument": "0412555999",
    "original patient id": FIRST,
    "original clinic id": "Northside Spinal",
    "original therapist id": "Dr Alvarez",
    "name in file name": "JaneDoe",
    "mrn in file name": "MRN4471234",
    "name in sheet name": "Fairweather",
    "mapping-free source label": "patients_JaneDoe",
    "birth date": "1931-07-14",
    "birth year": "1931",
    "dd/mm/yyyy date": "14/03/2017",
    "same date as ISO": "2017-03-14",
    "timezone-aware date": "2017-05-15T09:30",
    "same date, day": "2017-05-15",
    "year-month": "2016-11",
    "Excel serial date": "42800",
    "quarantined name": "Cornelius Blackwood",
}
AGE_97 = 97


def _exports(folder: Path) -> list[Path]:
    """Hostile exports: two CSVs and a workbook, named with a person and an MRN."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = [FIRST] + [f"HX{i:04d}" for i in range(1, N)]
    first = np.arange(N) == 0
    enrolled = pd.date_range("2023-01-02", periods=N, freq="7D").strftime("%Y-%m-%d")

    def plant(value, other):
        return np.where(first, value, other)

    patients = pd.DataFrame(
        {
            "patient_id": ids,
            "enrolled_on": enrolled,
            "age": plant(AGE_97, 40 + np.arange(N) % 30),
            "sex": np.where(np.arange(N) % 2 == 0, "female", "male"),
            "clinic_id": np.where(np.arange(N) < 12, "Northside Spinal", "Bayview"),
            "therapist_id": np.where(np.arange(N) < 12, "Dr Alvarez", "Dr Okafor"),
            "guided_weeks": 6,
            "pt": plant("Margaret Thornbury", "x"),
            "kin": plant("Reginald Thornbury", "y"),
            "gp": plant("Octavia Pemberton", "z"),
            "residence": plant("42 Wallaby Way Sydney", "-"),
            "hosp_no": plant("H7734521", "H0000000"),
            "contact": plant(61412555123, 61400000000 + np.arange(N)),
            "remarks": plant("call 0412 555 123 after 5pm", ""),
            "contact_email": plant("m.thornbury@example.org", ""),
            "x7": plant("078-05-1120", ""),
            "nhs": plant("943 476 5919", ""),
            "born": plant("1931-07-14", "1980-01-01"),
            "age_at_referral": plant(AGE_97, 50),
            "referral": plant("14/03/2017", "15/03/2012"),
            "seen_at": plant("2017-05-15T09:30:00+11:00", "2012-05-16T09:30:00+11:00"),
            "onset": plant("2016-11", "2011-11"),
            "surgery_date": plant(42800, 41000),
            "arm": np.where(np.arange(N) % 2 == 0, "PRT", "usual_care"),
        }
    )
    p_file = folder / "patients_JaneDoe_MRN4471234.csv"
    patients.to_csv(p_file, index=False)
    assessed = [*enrolled, *(pd.to_datetime(enrolled) + pd.Timedelta(days=28)).strftime("%Y-%m-%d")]
    outcomes = pd.DataFrame(
        {
            "patient_id": ids * 2,
            "assessed_on": assessed,
            "instrument": ["NPRS - John Smith 0412555999", *["NPRS"] * (2 * N - 1)],
            "score": [5] * (2 * N - 1) + [11],  # the last row is quarantined (NPRS 0-10)
            "assessor": ["Bartholomew Quince"] * (2 * N - 1) + ["Cornelius Blackwood"],
        }
    )
    o_file = folder / "outcomes_JaneDoe_MRN4471234.csv"
    outcomes.to_csv(o_file, index=False)
    sessions = pd.DataFrame(
        {
            "patient_id": ids,
            "performed_on": enrolled,
            "phase": "guided",
            "exercise": "hamstring_stretch",
            "category": "flexibility",
            "supervised": "true",
            "therapist_note": "Ignatius Fairweather said fine",
        }
    )
    s_file = folder / "MRN4471234.xlsx"
    with pd.ExcelWriter(s_file) as xl:
        sessions.to_excel(xl, sheet_name="sessions_Fairweather", index=False)
    return [p_file, o_file, s_file]


def _key_file(path: Path, key: bytes = KEY) -> Path:
    path.parent.mkdir(mode=0o700, exist_ok=True)
    path.write_text(f"ptanalytics-key v1 hex\n{key.hex()}\n")
    path.chmod(0o600)
    return path


def _texts(folder: Path) -> dict[str, str]:
    """Every output file as text: CSV and JSON as they are, Parquet's schema and values as CSV."""
    out = {}
    for f in sorted(folder.rglob("*")):
        if f.is_dir():
            continue
        if f.suffix == ".parquet":
            table = pq.read_table(f)
            out[str(f)] = ",".join(table.schema.names) + "\n" + table.to_pandas().to_csv()
        else:
            out[str(f)] = f.read_text(encoding="utf-8")
    return out


@pytest.fixture(scope="module", params=["csv", "parquet"])
def corpus(request, tmp_path_factory):
    fmt = request.param
    root = tmp_path_factory.mktemp(f"hostile_{fmt}")
    sources = _exports(root / "exports")
    code = main(["ingest", *map(str, sources), "--out", str(root / "cohort"), "--format", fmt])
    assert code == 0
    assert (root / "cohort" / "quarantine").is_dir()
    key_file = _key_file(root / "keys" / "deid.key")
    keep = ["arm", "age_at_referral", "referral", "seen_at", "onset", "surgery_date"]
    argv = ["deidentify", str(root / "cohort"), "--out", str(root / "shared")]
    argv += ["--key-file", str(key_file)] + [a for k in keep for a in ("--keep-attribute", k)]
    assert main(argv) == 0
    return root


def test_the_source_cohort_holds_every_planted_value(corpus):
    """The corpus is hostile: before de-identification the planted values are there."""
    text = "\n".join(_texts(corpus / "cohort").values())
    for p in (corpus / "exports").iterdir():
        text += "\n" + p.name + "\n"
        if p.suffix == ".csv":
            text += p.read_text()
        else:
            text += "\n".join(f"{k}\n{v.to_csv()}" for k, v in pd.read_excel(p, None).items())
    missing = [k for k, v in PLANTED.items() if v.lower() not in text.lower()]
    assert missing == ["same date as ISO"]  # the real date 14/03/2017 spelt as ISO
    assert len(PLANTED) >= 23


def test_no_planted_identifier_survives_in_any_output_file(corpus):
    texts = _texts(corpus / "shared")
    assert {Path(f).name for f in texts} >= {"cohort.json", "patients.csv", "outcomes.csv"} or {
        Path(f).name for f in texts
    } >= {"cohort.json", "patients.parquet"}
    survivors = [
        (label, Path(f).name)
        for f, text in texts.items()
        for label, value in PLANTED.items()
        if value.lower() in text.lower()
    ]
    assert survivors == []
    assert not (corpus / "shared" / "quarantine").exists()


def test_no_real_calendar_date_survives_beside_a_shifted_one(corpus):
    shared = pt.load_cohort(corpus / "shared")
    source = pt.load_cohort(corpus / "cohort")
    everything = "\n".join(_texts(corpus / "shared").values())
    # Real dates of the planted patient in any spelling: none is left.
    for pattern in (r"14/03/2017", r"2017-03-14", r"2017-05-15", r"2016-11\b", r"\b42800\b"):
        assert not re.search(pattern, everything), pattern
    # Every enrolment date moved, and intervals within a patient are kept.
    pid = source.patients["patient_id"]
    new_id = identifiers._pseudonym_map(KEY, set(pid), "P", b"patient:", "patient_id")
    before = source.patients.set_index(pid.map(new_id))
    after = shared.patients.set_index("patient_id").loc[before.index]
    shift = (after["enrolled_on"] - before["enrolled_on"]).dt.days
    assert (shift != 0).all()
    referral = pd.to_datetime(before["referral"], format="%d/%m/%Y")
    gap_after = (after["enrolled_on"] - pd.to_datetime(after["referral"])).dt.days
    assert gap_after.tolist() == (before["enrolled_on"] - referral).dt.days.tolist()
    seen = pd.to_datetime(before["seen_at"], utc=True).dt.tz_convert(None)
    seen_after = pd.to_datetime(after["seen_at"]).dt.normalize()  # CSV keeps the (UTC) day
    assert ((seen_after - seen.dt.normalize()).dt.days == shift).all()
    assert shared.metadata["deidentified"]["dropped_columns"][-2:] == [
        ["patients", "onset", "date (cannot be shifted)"],
        ["patients", "surgery_date", "date (cannot be shifted)"],
    ]
    assert "today" not in shared.metadata["ingest"]


def test_ages_are_top_coded_and_birth_dates_dropped(corpus):
    shared = pt.load_cohort(corpus / "shared")
    assert shared.patients["age"].max() == 90
    assert shared.patients["age_at_referral"].max() == 90
    assert (shared.patients["age_at_referral"] == 90).sum() == 1
    assert "born" not in shared.patients.columns
    assert shared.metadata["deidentified"]["ages_top_coded"] == 2


def test_only_canonical_columns_and_allowed_attributes_survive(corpus):
    shared = pt.load_cohort(corpus / "shared")
    extra = [c for c in shared.patients.columns if c not in TABLES["patients"].names]
    assert extra == ["age_at_referral", "referral", "seen_at", "arm"]
    assert set(shared.patients["arm"]) == {"PRT", "usual_care"}
    for name, df in shared.tables.items():
        if name != "patients":
            assert set(df.columns) <= set(TABLES[name].names), name


def test_an_instrument_outside_the_vocabulary_is_withheld_and_counted(corpus):
    shared = pt.load_cohort(corpus / "shared")
    source = pt.load_cohort(corpus / "cohort")
    assert set(shared.outcomes["instrument"]) == {"NPRS"}
    assert len(shared.outcomes) == len(source.outcomes) - 1
    assert shared.metadata["deidentified"]["replaced_values"] == [
        ["outcomes", "instrument", 1, "rows withheld"]
    ]


def test_file_and_sheet_names_are_pseudonymised_and_link_under_one_key(corpus):
    meta = json.loads((corpus / "shared" / "cohort.json").read_text())
    files = [s["file"] for s in meta["ingest"]["sources"]]
    assert all(re.fullmatch(r"source-[0-9a-f]{10}\.(csv|xlsx)", f) for f in files)
    assert meta["source"] == "ingested: " + ", ".join(files)
    sheets = {s["sheet"] for s in meta["ingest"]["sources"]} - {""}
    assert sheets and all(re.fullmatch(r"sheet-[0-9a-f]{10}", s) for s in sheets)
    again = deidentify(pt.load_cohort(corpus / "cohort"), key=KEY)[0].metadata
    assert [s["file"] for s in again["ingest"]["sources"]] == files


def test_the_cli_prints_the_k_anonymity_summary_without_identifiers(corpus, capsys, tmp_path):
    argv = ["deidentify", str(corpus / "cohort"), "--out", str(tmp_path / "o")]
    argv += ["--key-file", str(corpus / "keys" / "deid.key")]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "k-anonymity over age+sex+clinic_id+guided_weeks" in out
    assert "WARNING: smallest equivalence class k = 1 (< 5)" in err
    assert re.search(r"Options: --age-band \d+ --merge-clinics-below \d+ gives k = \d+", out)
    for value in PLANTED.values():
        assert value.lower() not in (out + err).lower()
    argv = [*argv[:3], str(tmp_path / "o2"), *argv[4:], "--age-band", "100"]
    assert main([*argv, "--merge-clinics-below", "30"]) == 0
    out, err = capsys.readouterr()
    assert "smallest class k = 12" in out
    assert "WARNING" not in err
    shared = pt.load_cohort(tmp_path / "o2")
    assert set(shared.patients["age"]) == {0}
    assert shared.patients["clinic_id"].nunique() == 1


def test_the_ashar_arm_can_be_kept_and_is_dropped_by_default(ashar_dir, tmp_path):
    cohort = pt.load_cohort(ashar_dir)
    default, report = deidentify(cohort, key=KEY)
    assert "arm" not in default.patients.columns
    assert ("patients", "arm", "not allowed") in report.dropped_columns
    kept, report = deidentify(cohort, key=KEY, keep_attributes=["arm"])
    assert set(kept.patients["arm"].dropna()) == set(cohort.patients["arm"].dropna())
    assert report.kept_attributes == [("patients", "arm")]
    assert "gender_code" not in kept.patients.columns
    assert "Ashar2022" not in json.dumps(kept.metadata)


# ---------------------------------------------------------------------------------------------
# hostile key files
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    return pt.simulate_cohort(20, seed=4).write(tmp_path_factory.mktemp("small") / "c")


def _write(path: Path, content: bytes | str, mode: int = 0o600) -> Path:
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("content", "mode", "message"),
    [
        (" " * 16, 0o600, r"not in a key format"),
        ("a" * 64, 0o600, r"too weak to use: every byte is the same"),
        ("password12345678", 0o600, r"not in a key format"),
        (
            "ptanalytics-key v1 base64\n"
            + base64.b64encode(b"password1234567890123456789012345").decode(),
            0o600,
            r"printable text \(a password or phrase\)",
        ),
        ("patient_id,name\nP1,Ann Smith\n", 0o600, r"not in a key format"),
        (KEY.hex()[:63], 0o600, r"holds 63 hexadecimal characters; a hex key is exactly 64"),
        (KEY.hex() + "0", 0o600, r"holds 65 hexadecimal characters"),
        (KEY.hex(), 0o644, r"can be read or changed by group or others \(mode 0644\).*chmod 600"),
        (KEY.hex(), 0o640, r"mode 0640"),
        (KEY, 0o600, r"is binary, not a ptanalytics key"),
        (bytes(range(32)).hex(), 0o600, r"count up or down in equal steps"),
        ((b"\x01\x02" * 16).hex(), 0o600, r"repeats a 2-byte pattern"),
        ("ptanalytics-key v1 hex\n" + KEY.hex()[:40], 0o600, r"has 20 bytes; at least 32"),
        ("ptanalytics-key v1 hex\nxyz", 0o600, r"not an even number of hexadecimal"),
        ("ptanalytics-key v1 base64\n!!!", 0o600, r"not valid base64"),
        ("", 0o600, r"not in a key format"),
    ],
)
def test_hostile_key_files_exit_2_with_the_fix(small_dir, tmp_path, capsys, content, mode, message):
    key_file = _write(tmp_path / "k", content, mode)
    argv = ["deidentify", str(small_dir), "--out", str(tmp_path / "o"), "--key-file", str(key_file)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert re.search(message, err), err
    assert "Fix" in err or "chmod 600" in err
    assert not (tmp_path / "o").exists()
    if isinstance(content, str) and len(content.strip()) > 8:
        assert content.strip().splitlines()[-1] not in err  # the key file's contents never shown


def test_a_folder_or_a_missing_file_is_not_a_key(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(KeyFileError, match="is not a regular file"):
        read_key_file(tmp_path / "d")
    with pytest.raises(KeyFileError, match=r"key file not found\. Fix: create one with --new-key"):
        read_key_file(tmp_path / "none")


def test_good_key_files_in_both_encodings(tmp_path):
    assert read_key_file(_write(tmp_path / "a", KEY.hex().upper() + "\n")) == KEY
    assert read_key_file(_write(tmp_path / "b", "ptanalytics-key v1 hex\n" + KEY.hex())) == KEY
    b64 = "ptanalytics-key v1 base64\n" + base64.b64encode(KEY).decode() + "\n"
    assert read_key_file(_write(tmp_path / "c", b64, 0o400)) == KEY


def test_new_key_is_written_owner_only_atomically_and_never_over_a_file(tmp_path):
    path = tmp_path / "keys" / "new.key"
    key = write_key_file(path)
    assert read_key_file(path) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text() == f"ptanalytics-key v1 hex\n{key.hex()}\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["new.key"]  # no temporary left
    with pytest.raises(KeyFileError, match="a file exists there already; a new key is never"):
        write_key_file(path)
    assert read_key_file(path) == key
    other = _write(tmp_path / "notes.txt", "my notes")
    with pytest.raises(KeyFileError, match="exists there already"):
        write_key_file(other)
    assert other.read_text() == "my notes"


def test_new_key_reuses_an_existing_key_file_and_says_so(small_dir, tmp_path, capsys):
    key_file = tmp_path / "k"
    argv = ["deidentify", str(small_dir), "--key-file", str(key_file), "--new-key", "--out"]
    assert main([*argv, str(tmp_path / "o1")]) == 0
    assert "new key file written (mode 0600)" in capsys.readouterr().err
    text = key_file.read_text()
    assert main([*argv, str(tmp_path / "o2")]) == 0
    assert "existing key file reused" in capsys.readouterr().err
    assert key_file.read_text() == text
    key_file.chmod(0o644)  # an existing key is checked, --new-key or not
    assert main([*argv, str(tmp_path / "o3")]) == 2
    assert "chmod 600" in capsys.readouterr().err


def test_a_key_inside_the_source_cohort_is_refused(small_dir, tmp_path):
    key_file = _write(small_dir / "k", KEY.hex())
    try:
        with pytest.raises(KeyFileError, match="lies inside the cohort folder"):
            pt.deidentify_directory(small_dir, tmp_path / "o", key_file)
    finally:
        key_file.unlink()


def test_in_memory_keys_are_checked_too():
    cohort = pt.simulate_cohort(5, seed=1)
    for key, message in (
        (b" " * 32, "every byte is the same"),
        (b"password12345678password12345678", "repeats a 16-byte pattern"),
        (b"correct horse battery staple 123", "printable text"),
        (bytes(32 * [7, 9])[:32], "repeats a 2-byte pattern"),
        (bytes(range(200, 232)), "equal steps"),
        (bytes([1, 2, 3, 4]) * 4 + os.urandom(4) * 4, "distinct byte values"),
    ):
        with pytest.raises(ConfigError, match=message):
            deidentify(cohort, key=key)


# ---------------------------------------------------------------------------------------------
# kept attributes, vocabularies, dates
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base():
    return pt.simulate_cohort(30, seed=8)


def _with(cohort, **columns):
    import dataclasses

    return dataclasses.replace(cohort, patients=cohort.patients.assign(**columns))


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("born", "1950-01-01", r"patients\.born looks like a birth date; birth dates are always"),
        ("dob", "1950-01-01", r"looks like a birth date"),
        ("home_phone", "x", r"named like a direct identifier \(phone\)"),
        ("remarks", "call 0412 555 123", r"some values hold a phone"),
        ("remarks", "seen 3/4/2024", r"some values hold a date"),
        ("remarks", "write to a@b.org", r"some values hold a email"),
        ("contact", 61412555123, r"some values hold a phone or record number"),
    ],
)
def test_kept_attributes_that_must_never_be_kept_are_refused(base, column, values, message):
    with pytest.raises(ConfigError, match=message):
        deidentify(_with(base, **{column: values}), key=KEY, keep_attributes=[column])


def test_an_unknown_kept_attribute_lists_the_extra_columns(base):
    with pytest.raises(ConfigError, match=r"'armm' is not an extra column .*patients\.arm"):
        deidentify(_with(base, arm="a"), key=KEY, keep_attributes=["armm"])
    with pytest.raises(ConfigError, match=r"'age' is not an extra column"):
        deidentify(base, key=KEY, keep_attributes=["age"])


def test_free_text_without_identifiers_can_be_kept_explicitly(base):
    new, report = deidentify(_with(base, notes="felt better"), key=KEY, keep_attributes=["notes"])
    assert set(new.patients["notes"]) == {"felt better"}
    assert report.kept_attributes == [("patients", "notes")]
    new, _ = deidentify(_with(base, notes="felt better"), key=KEY)
    assert "notes" not in new.patients


@pytest.mark.parametrize(
    ("values", "shifted"),
    [
        (lambda d: d.dt.strftime("%d/%m/%Y"), True),  # day > 12 somewhere: unambiguous
        (lambda d: d.dt.strftime("%Y-%m-%dT10:00:00+02:00"), True),
        (lambda d: d.dt.strftime("%Y-%m"), False),
        (lambda d: (d - pd.Timestamp("1899-12-30")).dt.days, False),  # Excel serial numbers
        (lambda d: d.dt.strftime("%d %B %Y"), False),
    ],
)
def test_kept_dates_in_any_format_are_shifted_or_dropped(base, values, shifted):
    referred = base.patients["enrolled_on"] - pd.Timedelta(days=9)
    new, report = deidentify(
        _with(base, referred_date=values(referred)), key=KEY, keep_attributes=["referred_date"]
    )
    if shifted:
        gap = (new.patients["enrolled_on"] - new.patients["referred_date"]).dt.round("D").dt.days
        assert gap.eq(9).all()
        assert ("patients", "referred_date") in report.shifted_columns
    else:
        assert "referred_date" not in new.patients
        assert ("patients", "referred_date", "date (cannot be shifted)") in report.dropped_columns


def test_day_month_dates_that_could_be_month_day_are_dropped(base):
    ambiguous = pd.Series(["03/04/2020", "05/06/2020"] * 15)
    new, report = deidentify(
        _with(base, visit_date=ambiguous), key=KEY, keep_attributes=["visit_date"]
    )
    assert "visit_date" not in new.patients
    assert report.dropped_columns == [("patients", "visit_date", "date (cannot be shifted)")]


def test_values_outside_a_vocabulary_are_blanked_or_their_rows_withheld(base):
    import dataclasses

    patients = base.patients.astype({"sex": "str"})
    patients.loc[0, "sex"] = "Mr John Smith"
    sessions = base.sessions.astype({"phase": "str"})
    sessions.loc[[0, 1], "phase"] = "Smith's week"
    cohort = dataclasses.replace(base, patients=patients, sessions=sessions)
    new, report = deidentify(cohort, key=KEY)
    assert report.replaced_values == [
        ("patients", "sex", 1, "values blanked"),
        ("sessions", "phase", 2, "rows withheld"),
    ]
    assert new.patients["sex"].isna().sum() == base.patients["sex"].isna().sum() + 1
    assert len(new.sessions) == len(base.sessions) - 2
    assert report.rows_withheld == 2
    text = report.summary()
    assert "Smith" not in text and "Outside the vocabulary of sessions.phase: 2" in text


def test_allowed_instruments_are_kept_and_others_withheld(base):
    import dataclasses

    outcomes = base.outcomes.copy()
    outcomes.loc[0, "instrument"] = "My Clinic Scale"
    outcomes.loc[1, "instrument"] = " odi "
    cohort = dataclasses.replace(base, outcomes=outcomes)
    new, report = deidentify(cohort, key=KEY)
    assert len(new.outcomes) == len(outcomes) - 1
    new, report = deidentify(cohort, key=KEY, instruments=["my clinic scale"])
    assert len(new.outcomes) == len(outcomes)
    assert report.replaced_values == []


def test_unknown_metadata_keys_and_free_form_sources_are_not_copied(base):
    import dataclasses

    meta = {**base.metadata, "source": "exports of Dr Smith", "notes": "Ann called"}
    new, report = deidentify(dataclasses.replace(base, metadata=meta, truth=None), key=KEY)
    assert new.metadata["source"] == "withheld (de-identified)"
    assert "notes" not in new.metadata
    assert report.dropped_metadata == ["notes"]
    assert new.truth_patients is None  # only a simulated cohort's latent table is copied


# ---------------------------------------------------------------------------------------------
# k-anonymity
# ---------------------------------------------------------------------------------------------


def test_k_anonymity_by_hand():
    patients = pd.DataFrame(
        {
            "age": [31, 35, 38, 52, 57, 95],
            "sex": ["female", "female", "female", "male", "male", "male"],
            "clinic_id": ["A", "A", "A", "A", "B", "B"],
            "guided_weeks": [6] * 6,
        }
    )
    table = k_anonymity(patients, age_band=[10, 100], merge_clinics_below=[0, 3], k=2)
    # Bands of 10: (30,f,A) x3, (50,m,A), (50,m,B), (90,m,B) -> k = 1; merging B (2 patients):
    # (30,f,A) x3, (50,m,A), (50,m,merged), (90,m,merged) -> still 1. Bands of 100 (95 counts as
    # 90, band 0): (0,f,A) x3, (0,m,A), (0,m,B) x2 -> 1; merged: (0,m,merged) x2 -> 1.
    assert table[["age_band_years", "merge_clinics_below"]].values.tolist() == [
        [10, 0],
        [10, 3],
        [100, 0],
        [100, 3],
    ]
    assert table["classes"].tolist() == [4, 4, 3, 3]
    assert table["smallest_class"].tolist() == [1, 1, 1, 1]
    assert table["classes_below_k"].tolist() == [3, 3, 1, 1]
    assert table["patients_below_k"].tolist() == [3, 3, 1, 1]
    one = k_anonymity(patients[["sex"]], k=3)
    assert one.iloc[0].to_dict() == {
        "quasi_identifiers": "sex",
        "age_band_years": 10,
        "merge_clinics_below": 0,
        "patients": 6,
        "classes": 2,
        "smallest_class": 3,
        "classes_below_k": 0,
        "patients_below_k": 0,
        "k_target": 3,
        "meets_k": True,
    }


def test_generalise_bands_ages_and_merges_small_clinics():
    patients = pd.DataFrame({"age": [31, 89, 95, None], "clinic_id": ["A", "A", "B", "C"]})
    out = generalise(patients, age_band=20, merge_clinics_below=2)
    assert out["age"].tolist()[:3] == [20, 80, 80]
    assert pd.isna(out["age"].iloc[3])
    assert out["clinic_id"].tolist() == ["A", "A", "C-merged", "C-merged"]
    assert patients["clinic_id"].tolist() == ["A", "A", "B", "C"]  # input unchanged
    with pytest.raises(ConfigError, match="age_band=0; allowed: a whole number of at least 1"):
        generalise(patients, age_band=0)


def test_the_report_carries_k_and_the_summary_table(base):
    _, report = deidentify(base, key=KEY)
    assert report.smallest_class == int(report.k_anonymity["smallest_class"].iloc[0])
    assert list(report.k_anonymity.columns)[:3] == [
        "quasi_identifiers",
        "age_band_years",
        "merge_clinics_below",
    ]
    assert "k-anonymity over" in report.summary()


def test_plain_file_and_sheet_names_do_not_rename_tables_in_the_metadata(tmp_path):
    """Pseudonymising 'patients.csv' or a sheet 'sessions' leaves the word 'patients' alone."""
    exports = tmp_path / "exports"
    exports.mkdir()
    cohort = pt.simulate_cohort(12, seed=2)
    patients = cohort.patients.assign(enrolled_on=cohort.patients["enrolled_on"].dt.date)
    patients.to_csv(exports / "patients.csv", index=False)
    with pd.ExcelWriter(exports / "clinic.xlsx") as xl:
        outcomes = cohort.outcomes.assign(assessed_on=cohort.outcomes["assessed_on"].dt.date)
        outcomes.to_excel(xl, sheet_name="outcomes", index=False)
    files = [str(exports / "patients.csv"), str(exports / "clinic.xlsx")]
    assert main(["ingest", *files, "--out", str(tmp_path / "c"), "--format", "csv"]) == 0
    new, _ = deidentify(pt.load_cohort(tmp_path / "c"), key=KEY)
    ingest = new.metadata["ingest"]
    assert [t["table"] for t in ingest["tables"]] == list(pt.cohort.TABLE_NAMES)
    assert {s["tables"] for s in ingest["sources"]} == {"patients", "outcomes"}
    assert all(s["mapped"].split(":")[0] in ("patients", "outcomes") for s in ingest["sources"])
    assert {s["sheet"] for s in ingest["sources"]} - {""} == {
        "sheet-" + identifiers._digest(KEY, b"sheet:", "outcomes").hex()[:10]
    }
    text = json.dumps(new.metadata)
    assert "clinic.xlsx" not in text and "patients.csv" not in text
