import base64
import copy
import dataclasses
import hashlib
import hmac
import json
import os
import stat

import numpy as np
import pandas as pd
import pytest

import ptanalytics as pt
from ptanalytics.cohort.schema import TABLES, coerce_table
from ptanalytics.exceptions import CohortFormatError, ConfigError, PtAnalyticsError
from ptanalytics.privacy import deidentification as deid
from ptanalytics.privacy import identifiers
from ptanalytics.privacy.deidentification import (
    DeidentificationReport,
    deidentify,
    deidentify_directory,
)
from ptanalytics.privacy.identifiers import KeyFileError, find_identifier_columns, new_key

# Fixed random keys (secrets.token_hex(32)); a counting sequence (bytes(range(32))) is refused.
KEY = bytes.fromhex("977e0147e630f7a457da04c5ec1808cf29ef2353726bb1b88d56e768b9d30730")
OTHER_KEY = bytes.fromhex("66a5eed31698c21d6dc7dcd7544fd17fe6155ea28efa5a0af1f17f1f99c198d1")
ID_COLUMNS = ("patient_id", "clinic_id", "therapist_id")


def expected_pseudonym(key, prefix, domain, value):
    return prefix + hmac.new(key, domain + value.encode(), hashlib.sha256).hexdigest()[:16]


def expected_shift(key, patient_id):
    digest = hmac.new(key, b"dateshift:" + patient_id.encode(), hashlib.sha256).digest()
    v = int.from_bytes(digest, "big") % 730  # issue 12: never 0, which keeps the real dates
    return v - 365 if v < 365 else v - 364


def frames(cohort):
    out = dict(cohort.tables)
    if cohort.truth_patients is not None:
        out["truth_patients"] = cohort.truth_patients
    return out


def with_row_numbers(cohort):
    """The cohort with a ``row`` column in each event table, to align rows after re-ordering."""
    tables = {
        name: cohort.tables[name].assign(row=np.arange(len(cohort.tables[name])))
        for name in ("prescriptions", "sessions", "outcomes", "cointerventions")
    }
    return dataclasses.replace(cohort, **tables)


def with_identifiers(cohort):
    """The cohort with identifier-like extra columns (and one harmless one) in ``patients``."""
    n = len(cohort.patients)
    patients = cohort.patients.assign(
        first_name=["Ann"] * n,
        email=[f"person{i}@example.org" for i in range(n)],
        Phone=["(555) 123-4567"] * n,
        notes=["called back about the knee"] * n,
        x7=[f"{100 + i % 800:03d}-45-6789" for i in range(n)],
        arm=np.where(np.arange(n) % 2 == 0, "PRT", "usual care"),
    )
    return dataclasses.replace(cohort, patients=patients)


@pytest.fixture(scope="module")
def cohort():
    return with_row_numbers(pt.simulate_cohort(200, seed=3))


@pytest.fixture(scope="module")
def deidentified(cohort):
    return deidentify(cohort, key=KEY, keep_attributes=["row"])


# ---------------------------------------------------------------------------------------------
# pseudonyms
# ---------------------------------------------------------------------------------------------


def test_pseudonyms_are_the_keyed_hmac_of_the_original_id(cohort, deidentified):
    new, _ = deidentified
    original = cohort.patients.sort_values("patient_id").iloc[0]
    for column, prefix, domain in (
        ("patient_id", "P", b"patient:"),
        ("clinic_id", "C", b"clinic:"),
        ("therapist_id", "T", b"therapist:"),
    ):
        expected = {expected_pseudonym(KEY, prefix, domain, v) for v in cohort.patients[column]}
        assert set(new.patients[column]) == expected
        assert new.patients[column].str.fullmatch(prefix + "[0-9a-f]{16}").all()
    pid = expected_pseudonym(KEY, "P", b"patient:", original.patient_id)
    row = new.patients.set_index("patient_id").loc[pid]
    assert row["clinic_id"] == expected_pseudonym(KEY, "C", b"clinic:", original.clinic_id)
    assert row["therapist_id"] == expected_pseudonym(KEY, "T", b"therapist:", original.therapist_id)


def test_same_key_gives_identical_output(cohort, deidentified):
    new, report = deidentified
    again, report_again = deidentify(cohort, key=KEY, keep_attributes=["row"])
    for name, df in frames(new).items():
        pd.testing.assert_frame_equal(frames(again)[name], df)
    assert report_again == report


def test_same_key_links_two_cohorts_sharing_a_patient_id():
    a = pt.simulate_cohort(30, seed=1)
    b = pt.simulate_cohort(40, seed=2)
    shared = "P000001"
    assert shared in set(a.patients.patient_id) & set(b.patients.patient_id)
    new_a, _ = deidentify(a, key=KEY)
    new_b, _ = deidentify(b, key=KEY)
    pid = expected_pseudonym(KEY, "P", b"patient:", shared)
    assert pid in set(new_a.patients.patient_id) & set(new_b.patients.patient_id)
    for old, new in ((a, new_a), (b, new_b)):
        before = old.patients.set_index("patient_id").loc[shared, "enrolled_on"]
        after = new.patients.set_index("patient_id").loc[pid, "enrolled_on"]
        assert (after - before).days == expected_shift(KEY, shared)


def test_different_key_gives_different_ids(cohort, deidentified):
    new, _ = deidentified
    other, _ = deidentify(cohort, key=OTHER_KEY)
    for column in ID_COLUMNS:
        assert not set(new.patients[column]) & set(other.patients[column])


def test_no_original_id_survives_anywhere(cohort, deidentified):
    new, _ = deidentified
    originals = set()
    for column in ID_COLUMNS:
        originals |= {str(v) for df in frames(cohort).values() if column in df for v in df[column]}
    for name, df in frames(new).items():
        for column in df.columns:
            s = df[column]
            if pd.api.types.is_string_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype):
                assert not set(s.astype("str")) & originals, (name, column)
    text = json.dumps([new.metadata, new.truth], default=str)
    assert not [v for v in originals if f'"{v}"' in text]


def test_truth_patients_get_the_same_pseudonyms(deidentified):
    new, _ = deidentified
    assert set(new.truth_patients.patient_id) == set(new.patients.patient_id)
    assert new.truth == pt.simulate_cohort(200, seed=3).truth


def test_rows_are_ordered_by_pseudonym(deidentified):
    new, _ = deidentified
    for df in frames(new).values():
        ids = df["patient_id"].astype("str")
        assert ids.is_monotonic_increasing


def test_colliding_pseudonyms_are_an_error(cohort, monkeypatch):
    monkeypatch.setattr(identifiers, "_pseudonym", lambda key, prefix, domain, value: prefix + "0")
    with pytest.raises(ConfigError, match="same pseudonym under this key"):
        deidentify(cohort, key=KEY)


# ---------------------------------------------------------------------------------------------
# date shifts
# ---------------------------------------------------------------------------------------------


def _days_from_enrolment(cohort, table, column):
    enrolled = cohort.patients.set_index("patient_id")["enrolled_on"]
    df = cohort.tables[table].set_index("row").sort_index()
    ids = df["patient_id"].astype("str")
    return (df[column] - enrolled.reindex(ids.to_numpy()).to_numpy()).dt.days


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("sessions", "performed_on"),
        ("outcomes", "assessed_on"),
        ("prescriptions", "start_on"),
        ("prescriptions", "end_on"),
        ("cointerventions", "start_on"),
        ("cointerventions", "end_on"),
    ],
)
def test_intervals_within_a_patient_are_kept(cohort, deidentified, table, column):
    new, _ = deidentified
    before = _days_from_enrolment(cohort, table, column)
    after = _days_from_enrolment(new, table, column)
    assert len(before) > 0
    pd.testing.assert_series_equal(after, before)


def test_each_patient_shifts_by_its_own_keyed_offset(cohort, deidentified):
    new, _ = deidentified
    old = cohort.outcomes.set_index("row").sort_index()
    shifted = new.outcomes.set_index("row").sort_index()
    days = (shifted["assessed_on"] - old["assessed_on"]).dt.days
    expected = old["patient_id"].map(lambda v: expected_shift(KEY, v))
    pd.testing.assert_series_equal(days, expected, check_names=False)
    per_patient = days.groupby(old["patient_id"]).agg(["min", "max"])
    assert (per_patient["min"] == per_patient["max"]).all()
    assert per_patient["min"].between(-365, 365).all()
    assert (per_patient["min"] != 0).all()  # dates changed for every patient
    assert per_patient["min"].nunique() > 100


def test_offsets_cover_minus_365_to_365():
    shifts = np.array([identifiers._shift_days(KEY, f"P{i:06d}") for i in range(5_000)])
    assert shifts.min() >= -365
    assert shifts.max() <= 365
    assert shifts.min() < -355
    assert shifts.max() > 355
    assert abs(shifts.mean()) < 15
    assert (shifts != 0).all()


def test_extra_date_columns_are_shifted_even_as_text(cohort):
    patients = cohort.patients.assign(
        referred_on=cohort.patients["enrolled_on"] - pd.Timedelta(days=10),
        surgery=(cohort.patients["enrolled_on"] - pd.Timedelta(days=400)).dt.strftime("%Y-%m-%d"),
    )
    new, report = deidentify(
        dataclasses.replace(cohort, patients=patients),
        key=KEY,
        keep_attributes=["referred_on", "surgery"],
    )
    assert (new.patients["enrolled_on"] - new.patients["referred_on"]).dt.days.eq(10).all()
    assert (new.patients["enrolled_on"] - new.patients["surgery"]).dt.days.eq(400).all()
    assert ("patients", "surgery") in report.shifted_columns
    assert ("patients", "referred_on") in report.shifted_columns


def test_unparsable_text_in_a_date_column_is_an_error(cohort):
    outcomes = cohort.outcomes.assign(assessed_on=cohort.outcomes["assessed_on"].astype("str"))
    outcomes.loc[5, "assessed_on"] = "last Tuesday"
    with pytest.raises(CohortFormatError, match=r"'last Tuesday' is not an ISO 8601 date"):
        deidentify(dataclasses.replace(cohort, outcomes=outcomes), key=KEY)


def test_rows_without_patient_id_are_an_error(cohort):
    outcomes = cohort.outcomes.copy()
    outcomes.loc[3, "patient_id"] = None
    with pytest.raises(CohortFormatError, match=r"outcomes': 1 row\(s\) have no patient_id"):
        deidentify(dataclasses.replace(cohort, outcomes=outcomes), key=KEY)


# ---------------------------------------------------------------------------------------------
# identifier columns, ages, metadata, input left alone
# ---------------------------------------------------------------------------------------------


def test_identifier_columns_are_dropped_and_listed(cohort):
    # Issue 12: drop by default, so the harmless-looking arm goes too unless it is allowed.
    events = [
        (t, "row", "not allowed")
        for t in ("prescriptions", "sessions", "outcomes", "cointerventions")
    ]
    dropped = [
        ("patients", "first_name", "name"),
        ("patients", "email", "email"),
        ("patients", "Phone", "phone"),
        ("patients", "notes", "free_text"),
        ("patients", "x7", "ssn"),
    ]
    new, report = deidentify(with_identifiers(cohort), key=KEY)
    assert report.dropped_columns == [*dropped, ("patients", "arm", "not allowed"), *events]
    assert list(new.patients.columns) == list(cohort.patients.columns)
    new, report = deidentify(with_identifiers(cohort), key=KEY, keep_attributes=["patients.arm"])
    assert report.dropped_columns == [*dropped, *events]
    assert report.kept_attributes == [("patients", "arm")]
    assert new.metadata["deidentified"]["dropped_columns"] == [
        list(d) for d in report.dropped_columns
    ]
    assert list(new.patients.columns) == [*cohort.patients.columns, "arm"]
    assert set(new.patients["arm"]) == {"PRT", "usual care"}


@pytest.mark.parametrize(
    ("column", "kind"),
    [
        ("first_name", "name"),
        ("LastName", "name"),
        ("surname", "name"),
        ("Patient Name", "name"),
        ("name", "name"),
        ("therapist_name", "name"),
        ("home_address", "address"),
        ("Street", "address"),
        ("city", "address"),
        ("ZIP", "address"),
        ("postal_code", "address"),
        ("postcode", "address"),
        ("telephone", "phone"),
        ("mobile", "phone"),
        ("cell", "phone"),
        ("emergency_contact_phone", "phone"),
        ("e-mail", "email"),
        ("EmailAddress", "email"),
        ("MRN", "mrn"),
        ("medical_record_number", "mrn"),
        ("chart_number", "mrn"),
        ("SSN", "ssn"),
        ("social_security_number", "ssn"),
        ("nhs_number", "ssn"),
        ("notes", "free_text"),
        ("therapist_comment", "free_text"),
        ("narrative", "free_text"),
        ("free_text", "free_text"),
        ("DOB", "birth_date"),
        ("date_of_birth", "birth_date"),
        ("birthdate", "birth_date"),
        ("birth_year", "birth_date"),
    ],
)
def test_identifier_columns_are_found_by_name(column, kind):
    df = pd.DataFrame({column: [1, 2], "arm": ["a", "b"]})
    assert find_identifier_columns(df) == [(column, kind)]


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["ann@example.org", "bob.smith+pt@clinic.co.uk"], "email"),
        (["123-45-6789", "987-65-4321"], "ssn"),
        (["(555) 123-4567", "555.987.6543"], "phone"),
        (["+1 555 123 4567", "5551234567"], "phone"),
        (["+44 20 7946 0958", "020 7946 0958"], "phone"),
        (["MRN-00123456", "mrn: 7654321"], "mrn"),
        ([None, "unknown", "ann@example.org"], "email"),
    ],
)
def test_identifier_columns_are_found_by_value(values, kind):
    df = pd.DataFrame(
        {"col_a": pd.Series(values, dtype="str"), "arm": ["a", "b", "c"][: len(values)]}
    )
    assert find_identifier_columns(df) == [("col_a", kind)]
    as_category = df.astype({"col_a": "category"})
    assert find_identifier_columns(as_category) == [("col_a", kind)]


@pytest.mark.parametrize(
    "values",
    [
        ["PRT", "usual care"],
        ["2024-01-05", "2023-12-31"],
        ["12345", "678"],
        ["7.5", "10"],
        ["lumbar", "thoracic"],
    ],
)
def test_ordinary_text_is_not_flagged(values):
    df = pd.DataFrame({"col_a": values, "exercise_name": ["bird_dog", "plank"]})
    assert find_identifier_columns(df) == []


def test_values_beyond_the_first_thousand_are_not_examined():
    values = ["PRT"] * 1_000 + ["ann@example.org"]
    assert find_identifier_columns(pd.DataFrame({"col_a": values})) == []
    assert find_identifier_columns(pd.DataFrame({"col_a": values[1:]})) == [("col_a", "email")]


def test_canonical_columns_are_never_flagged(cohort):
    for name, df in frames(cohort).items():
        assert find_identifier_columns(df) == [], name
    every = sorted({c for t in TABLES.values() for c in t.names})
    df = pd.DataFrame({c: ["ann@example.org", "123-45-6789"] for c in every})
    assert find_identifier_columns(df) == []


def test_find_identifier_columns_wants_a_frame():
    with pytest.raises(TypeError, match="expects a pandas DataFrame, got list"):
        find_identifier_columns([1, 2])


def test_ages_of_90_and_over_are_top_coded(cohort):
    ages = pd.array([89, 90, 97, None] + [40] * (len(cohort.patients) - 4), dtype="Int64")
    new, report = deidentify(
        dataclasses.replace(cohort, patients=cohort.patients.assign(age=ages)), key=KEY
    )
    assert report.ages_top_coded == 2
    assert new.metadata["deidentified"]["ages_top_coded"] == 2
    pid = {
        v: expected_pseudonym(KEY, "P", b"patient:", v) for v in cohort.patients["patient_id"][:4]
    }
    age = new.patients.set_index("patient_id")["age"]
    assert [age[pid[v]] for v in cohort.patients["patient_id"][:3]] == [89, 90, 90]
    assert pd.isna(age[pid[cohort.patients["patient_id"][3]]])
    assert new.patients["age"].dtype == "Int64"
    assert new.patients["age"].max() == 90


def test_metadata_records_the_method_and_keeps_the_rest(cohort, deidentified):
    new, report = deidentified
    assert new.metadata["deidentified"] == {
        "method": deid.METHOD,
        "dropped_columns": [],
        "kept_attributes": [
            [t, "row"] for t in ("prescriptions", "sessions", "outcomes", "cointerventions")
        ],
        "replaced_values": [],
        "ages_top_coded": report.ages_top_coded,
        "age_band": None,
        "merge_clinics_below": 0,
        "smallest_class": report.smallest_class,
    }
    assert {k: v for k, v in new.metadata.items() if k != "deidentified"} == cohort.metadata
    assert "created" in new.metadata
    assert report.patients == len(cohort.patients)


def test_the_input_cohort_is_not_changed():
    original = with_identifiers(with_row_numbers(pt.simulate_cohort(60, seed=5)))
    original.patients.loc[0, "age"] = 95
    before = copy.deepcopy(original)
    deidentify(original, key=KEY)
    for name, df in frames(before).items():
        pd.testing.assert_frame_equal(frames(original)[name], df)
    assert original.metadata == before.metadata
    assert original.truth == before.truth


@pytest.mark.skipif(
    "quarantine" not in {f.name for f in dataclasses.fields(pt.Cohort)},
    reason="Cohort has no quarantine field",
)
def test_quarantined_rows_are_not_carried_over(cohort):
    raw = pd.DataFrame({"patient_id": ["P000001"], "name": ["Ann Smith"], "reason": ["bad date"]})
    new, report = deidentify(dataclasses.replace(cohort, quarantine={"patients": raw}), key=KEY)
    assert not new.quarantine
    assert report.quarantine_skipped
    assert "quarantine/" in report.summary()


def test_report_summary_names_no_patient(cohort, deidentified):
    _, report = deidentified
    text = report.summary()
    assert f"{len(cohort.patients)} patients" in text
    assert "outcomes.assessed_on" in text
    assert "Not anonymous" in text
    for pid in cohort.patients["patient_id"]:
        assert pid not in text
    assert isinstance(report, DeidentificationReport)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.patients = 0


# ---------------------------------------------------------------------------------------------
# keys
# ---------------------------------------------------------------------------------------------


def test_new_key_is_32_fresh_bytes():
    a, b = new_key(), new_key()
    assert isinstance(a, bytes)
    assert len(a) == 32
    assert a != b


def test_short_or_wrongly_typed_key_is_rejected(cohort):
    with pytest.raises(
        ConfigError, match=r"key has 8 bytes; at least 32 random bytes \(256 bits\)"
    ):
        deidentify(cohort, key=b"12345678")
    with pytest.raises(TypeError, match="key must be bytes, got str"):
        deidentify(cohort, key="secret" * 10)
    with pytest.raises(TypeError, match="expects a Cohort, got DataFrame"):
        deidentify(cohort.patients, key=KEY)


# ---------------------------------------------------------------------------------------------
# folders
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    return with_identifiers(pt.simulate_cohort(40, seed=9))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_deidentify_directory_round_trip(small, tmp_path, fmt):
    src = small.write(tmp_path / "src", format=fmt)
    (src / "quarantine").mkdir()
    (src / "quarantine" / "patients.csv").write_text("patient_id,name\nP000001,Ann\n")
    key_file = tmp_path / "secret" / "deid.key"
    report = deidentify_directory(src, tmp_path / "out", key_file, create_key=True)

    out = tmp_path / "out"
    assert json.loads((out / "cohort.json").read_text())["file_format"] == fmt
    assert (out / f"patients.{fmt}").is_file()
    assert not (out / "quarantine").exists()
    assert report.quarantine_skipped
    assert "quarantine/" in report.summary()
    assert [d[1] for d in report.dropped_columns] == [
        "first_name",
        "email",
        "Phone",
        "notes",
        "x7",
        "arm",
    ]

    key = bytes.fromhex(key_file.read_text().splitlines()[1])
    expected, expected_report = deidentify(pt.load_cohort(src), key=key)
    assert report == dataclasses.replace(expected_report, quarantine_skipped=True)
    back = pt.load_cohort(out)
    for name, df in back.tables.items():
        canonical = [c for c in TABLES[name].names if c in df.columns]
        pd.testing.assert_frame_equal(
            df[canonical], coerce_table(name, expected.tables[name])[canonical]
        )
    assert set(back.truth_patients["patient_id"]) == set(back.patients["patient_id"])
    assert back.metadata["deidentified"] == expected.metadata["deidentified"]
    assert back.row_counts() == small.row_counts()
    assert not set(back.patients["patient_id"]) & set(small.patients["patient_id"])


def test_deidentify_directory_refuses_to_overwrite_unless_asked(small, tmp_path):
    src = small.write(tmp_path / "src", format="csv")
    key_file = tmp_path / "k.hex"
    key_file.write_text(KEY.hex() + "\n")
    key_file.chmod(0o600)
    deidentify_directory(src, tmp_path / "out", key_file)
    with pytest.raises(CohortFormatError, match="folder exists and is not empty"):
        deidentify_directory(src, tmp_path / "out", key_file)
    deidentify_directory(src, tmp_path / "out", key_file, overwrite=True)


def test_missing_key_file_is_an_error_that_says_how_to_fix_it(small, tmp_path):
    src = small.write(tmp_path / "src", format="csv")
    missing = tmp_path / "nokey"
    with pytest.raises(
        KeyFileError, match=r"nokey: key file not found\. Fix: create one with --new-key"
    ):
        deidentify_directory(src, tmp_path / "out", missing)
    assert not missing.exists()
    assert not (tmp_path / "out").exists()
    assert issubclass(KeyFileError, PtAnalyticsError)
    assert issubclass(KeyFileError, ValueError)


def test_create_key_writes_64_hex_characters_readable_only_by_the_owner(small, tmp_path):
    src = small.write(tmp_path / "src", format="csv")
    key_file = tmp_path / "deid.key"
    deidentify_directory(src, tmp_path / "out", key_file, create_key=True)
    text = key_file.read_text()
    header, hexkey = text.splitlines()
    assert header == "ptanalytics-key v1 hex"
    assert len(hexkey) == 64
    assert int(hexkey, 16) >= 0
    if os.name == "posix":
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # An existing key is reused, never replaced.
    deidentify_directory(src, tmp_path / "out2", key_file, create_key=True)
    assert key_file.read_text() == text
    first = pt.load_cohort(tmp_path / "out").patients["patient_id"]
    second = pt.load_cohort(tmp_path / "out2").patients["patient_id"]
    pd.testing.assert_series_equal(first, second)


def test_hex_and_base64_key_files_give_the_same_pseudonyms(small, tmp_path):
    # Issue 12: raw-byte key files are refused (no explicit encoding); headed base64 is read.
    src = small.write(tmp_path / "src", format="csv")
    hex_file, b64_file = tmp_path / "k.hex", tmp_path / "k.b64"
    hex_file.write_text(KEY.hex().upper() + "\n")
    b64_file.write_text("ptanalytics-key v1 base64\n" + base64.b64encode(KEY).decode() + "\n")
    for f in (hex_file, b64_file):
        f.chmod(0o600)
    deidentify_directory(src, tmp_path / "a", hex_file)
    deidentify_directory(src, tmp_path / "b", b64_file)
    a = pt.load_cohort(tmp_path / "a").patients["patient_id"]
    b = pt.load_cohort(tmp_path / "b").patients["patient_id"]
    pd.testing.assert_series_equal(a, b)
    assert set(a) == {
        expected_pseudonym(KEY, "P", b"patient:", v) for v in small.patients.patient_id
    }


def test_short_key_file_is_rejected(small, tmp_path):
    src = small.write(tmp_path / "src", format="csv")
    key_file = tmp_path / "short.key"
    key_file.write_text("hunter2\n")
    key_file.chmod(0o600)
    with pytest.raises(KeyFileError, match=r"short\.key: key file is not in a key format"):
        deidentify_directory(src, tmp_path / "out", key_file)


def test_output_must_not_be_the_source_and_key_must_stay_outside_it(small, tmp_path):
    src = small.write(tmp_path / "src", format="csv")
    key_file = tmp_path / "k.hex"
    key_file.write_text(KEY.hex())
    key_file.chmod(0o600)
    with pytest.raises(CohortFormatError, match="is the source folder"):
        deidentify_directory(src, src, key_file, overwrite=True)
    with pytest.raises(CohortFormatError, match="is the source folder"):
        deidentify_directory(src, tmp_path, key_file, overwrite=True)
    with pytest.raises(KeyFileError, match="lies inside the output folder"):
        deidentify_directory(src, tmp_path / "out", tmp_path / "out" / "k", create_key=True)
    assert pt.load_cohort(src).row_counts() == small.row_counts()
