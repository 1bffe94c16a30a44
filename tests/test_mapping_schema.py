"""The mapping file's schema: unknown keys (with a suggestion) and wrong types are errors."""

import pytest

from ptanalytics.cli import main
from ptanalytics.exceptions import MappingError
from ptanalytics.ingestion.mapping import parse_mapping

PATIENTS = {"patient_id": "id", "enrolled_on": "start"}


def source(**keys):
    return {"sources": [{"match": "*.csv", "patients": dict(PATIENTS), **keys}]}


def patients(**cols):
    return {"sources": [{"match": "*.csv", "patients": {**PATIENTS, **cols}}]}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        # unknown keys, with the closest allowed key
        ({"source": []}, r"<mapping>: unknown key 'source'\. Did you mean 'sources'\?"),
        (
            source(date_format=["%d/%m/%Y"]),
            r"unknown key 'date_format'\. Did you mean 'date_formats'",
        ),
        (source(patient={}), r"sources\[0\]: unknown key 'patient'\. Did you mean 'patients'\?"),
        (
            patients(enroled_on="x"),
            r"sources\[0\]\.patients: 'enroled_on' is not a column of 'patients'\. Did you mean "
            r"'enrolled_on'\?",
        ),
        (
            patients(sex={"column": "g", "valeus": {"F": "female"}}),
            r"patients\.sex: unknown key 'valeus'\. Did you mean 'values'\? Allowed: column, "
            r"value, values, extract",
        ),
        (
            patients(sex={"column": "g", "value": {"F": "female"}}),
            r"patients\.sex\.value = \{'F': 'female'\} is a table; expected a constant\. Did you "
            r"mean 'values'",
        ),
        (
            source(filter={"column": "is_patient", "keeps": ["1"]}),
            r"filter: unknown key 'keeps'\. Did you mean 'keep'\?",
        ),
        (
            patients(timepoint={"column": "t", "week": {"1": 0}}),
            r"timepoint: unknown key 'week'\. Did you mean 'weeks'\?",
        ),
        # wrong types
        (
            {"sources": {"match": "*.csv"}},
            r"sources = .* is a table; expected a list of sources\. Fix: write \[\[sources\]\]",
        ),
        (
            {
                "sources": [
                    {"match": "*.csv", "patients": {**PATIENTS, "keep_extra_columns": "false"}}
                ]
            },
            r"patients\.keep_extra_columns = 'false' is a string; expected true or false \(a "
            r"boolean\)\. Fix: write keep_extra_columns = false \(without quotes\)",
        ),
        (
            source(filter={"column": "is_patient", "keep": {"1": True}}),
            r"filter\.keep = \{'1': True\} is a table; expected a non-empty list of values",
        ),
        (
            source(missing={"-99": True}),
            r"missing = \{'-99': True\} is a table; expected a list of tokens",
        ),
        (source(date_formats=7), r"date_formats = 7 is a number; expected a list of strptime"),
        (source(date_formats=["dd/mm/yyyy"]), r"date_formats = \['dd/mm/yyyy'\] is a list"),
        (source(sheet=True), r"sheet = True is a boolean; expected a sheet name"),
        (source(encoding="latin-9x"), r"encoding = 'latin-9x' is a string; expected a known text"),
        (source(delimiter=";;"), r"delimiter = ';;' is a string; expected one character"),
        (
            patients(timepoint={"column": "t", "weeks": {"1": "zero"}}),
            r"timepoint\.weeks\.1 = 'zero' is a string; expected a number of weeks",
        ),
        (
            patients(age={"column": "a", "extract": "(\\d+"}),
            r"age\.extract = '\(\\\\d\+' is not a valid regular expression",
        ),
        (
            patients(age={"column": "a", "extract": "\\d+"}),
            r"has 0 capture groups; expected exactly one",
        ),
        (patients(age={"column": "a", "value": "3"}), r"give exactly one of 'column'"),
        (patients(age=["a"]), r"patients\.age = \['a'\] is a list; expected a source column name"),
        (
            {"sources": [{"match": "*", "outcomes": {"instruments": ["NPRS"]}}]},
            r"instruments = \['NPRS'\] is a list; expected a table of instrument = source column",
        ),
        (
            {"sources": [{"match": "*", "outcomes": {"attributes": {"arm": "g"}}}]},
            r"only patients take extra attributes",
        ),
        (
            {"sources": [{"match": "*", "sessions": {"keep_extra_columns": True}}]},
            r"only patients keep extra columns",
        ),
    ],
)
def test_mapping_schema_errors(raw, message):
    with pytest.raises(MappingError, match=message):
        parse_mapping(raw)


def test_a_valid_mapping_is_read_with_its_types():
    m = parse_mapping(
        {
            "sources": [
                {
                    "match": "clinic.xlsx",
                    "sheet": "Patients",
                    "missing": "-",
                    "date_formats": "%d/%m/%Y",
                    "filter": {"column": "real", "keep": 1},
                    "patients": {
                        **PATIENTS,
                        "keep_extra_columns": False,
                        "sex": {"column": "g", "values": {"F": "female", 1: "male"}},
                        "age": {"column": "a", "extract": r"^(\d+) y$"},
                        "clinic_id": {"value": 3},
                    },
                }
            ]
        }
    )
    rule = m.sources[0]
    assert (rule.sheet, rule.date_formats, rule.missing[-1]) == ("Patients", ("%d/%m/%Y",), "-")
    assert rule.filters[0].keep == ("1",)
    cols = rule.tables[0].columns
    assert cols["sex"].values == {"F": "female", "1": "male"}
    assert cols["age"].extract == r"^(\d+) y$" and cols["clinic_id"].value == "3"
    assert rule.label == "sources[0] (match = 'clinic.xlsx', sheet = 'Patients')"


def test_cli_exits_2_naming_the_file_key_value_and_fix(tmp_path, capsys):
    (tmp_path / "patients.csv").write_text("id,start\nP1,2024-01-08\n")
    m = tmp_path / "m.toml"
    m.write_text(
        '[[sources]]\nmatch = "patients.csv"\n[sources.patients]\npatient_id = "id"\n'
        'enrolled_on = "start"\nkeep_extra_columns = "false"\n'
    )
    out = tmp_path / "c"
    code = main(["ingest", str(tmp_path / "patients.csv"), "--mapping", str(m), "--out", str(out)])
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"ptanalytics ingest: error: {m}: sources[0].patients.keep_extra_columns")
    assert "'false' is a string" in err and "Fix: write keep_extra_columns = false" in err
    m.write_text('[sources]\nmatch = "patients.csv"\n')
    assert main(["ingest", str(tmp_path / "patients.csv"), "--mapping", str(m), "--check"]) == 2
    assert "write [[sources]] (double brackets)" in capsys.readouterr().err
