"""A realistic one-workbook clinic export, built at test time (no binary committed).

``build_clinic_workbook(folder)`` writes ``clinic_export.xlsx`` (one sheet per table: Patients,
Prescriptions, Visits, Outcomes) and ``clinic_mapping.toml`` for it, and returns where the planted
problems are. The export looks like what a clinic's software gives: local column names
(``Pt ID``, ``Date of visit``, ``Übung``), dd/mm/yyyy dates as text (the outcome dates are real
Excel date cells), display names with typos, blank rows, a footer line ("Exported by ... on ..."),
no minutes logged for the strength exercises, an optional column that is empty in every row, a
12-week guided program followed by home exercise to week 26, dropout, and follow-up missing for
some patients. NPRS is written ``7/10`` and ODI ``34%`` (the mapping extracts the numbers).

Use it to test ingest, or to render the report on a cohort that is not the simulator's::

    from clinic_workbook import build_clinic_workbook   # tests/ is on sys.path under pytest
    export = build_clinic_workbook(tmp_path)
    main(["ingest", str(export.workbook), "--mapping", str(export.mapping),
          "--out", str(tmp_path / "cohort"), "--today", "2026-11-23"])
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import openpyxl

__all__ = ["ClinicExport", "build_clinic_workbook"]

GUIDED_WEEKS = 12
FOLLOWUP_WEEKS = 26
TODAY = "2026-11-23"

#: What the clinic writes -> catalogue exercise; (shown name, exercise, minutes logged?).
_PROGRAM = [
    ("Front plank", "front_plank", False),  # strength: no minutes logged
    ("Glute brigde", "glute_bridge", False),  # typo, mapped in the mapping; strength
    ("Bird-Dog", "bird_dog", True),  # matched by normalisation
    ("Hamstring strech", "hamstring_stretch", True),  # typo, mapped
    ("Brisk walk", "brisk_walking", True),  # local name, mapped
]
_DEFAULT_MIN = {
    "front_plank": 3.0,
    "glute_bridge": 3.0,
    "bird_dog": 6.0,
    "hamstring_stretch": 3.5,
    "brisk_walking": 20.0,
}

_EXERCISES = (
    '{ "Glute brigde" = "glute_bridge", "Hamstring strech" = "hamstring_stretch", '
    '"Brisk walk" = "brisk_walking" }'
)

#: The mapping TOML of the export (one source per sheet).
MAPPING = """\
# Mapping for clinic_export.xlsx: one source per sheet.
[[sources]]
match = "clinic_export.xlsx"
sheet = "Patients"
date_formats = ["%d/%m/%Y"]
  [sources.patients]
  patient_id = "Pt ID"
  enrolled_on = "Start date"
  age = "Age"
  sex = { column = "Gender", values = { F = "female", M = "male" } }
  guided_weeks = "Program (weeks)"
  followup_weeks = "Follow-up (weeks)"
  clinic_id = "Clinic"

[[sources]]
match = "clinic_export.xlsx"
sheet = "Prescriptions"
date_formats = ["%d/%m/%Y"]
  [sources.prescriptions]
  patient_id = "Pt ID"
  phase = { column = "Phase", values = { Guided = "guided", "Home program" = "maintenance" } }
  exercise = { column = "Übung", values = EXERCISES }
  sessions_per_week = "Sessions per week"
  sets = "Sets"
  reps = "Reps"
  start_on = "From"
  end_on = "To"

[[sources]]
match = "clinic_export.xlsx"
sheet = "Visits"
date_formats = ["%d/%m/%Y"]
missing = ["-"]
  [sources.sessions]
  patient_id = "Pt ID"
  performed_on = "Date of visit"
  phase = { column = "Phase", values = { Guided = "guided", "Home program" = "maintenance" } }
  exercise = { column = "Übung", values = EXERCISES }
  supervised = { column = "Supervised", values = { Ja = "true", Nein = "false" } }
  sets = "Sets"
  reps = "Reps"
  hold_s = "Hold (s)"
  duration_min = "Minutes"

[[sources]]
match = "clinic_export.xlsx"
sheet = "Outcomes"
  [sources.outcomes]
  patient_id = "Pt ID"
  assessed_on = "Date"
  instrument = "Measure"
  score = { column = "Result", extract = '^\\s*(\\d+(?:\\.\\d+)?)\\s*(?:/\\s*10|%)?\\s*$' }
""".replace("EXERCISES", _EXERCISES)


@dataclass
class ClinicExport:
    """The files written and what a correct ingest must find.

    Attributes
    ----------
    workbook, mapping : Path
        ``clinic_export.xlsx`` and ``clinic_mapping.toml``.
    sheets : dict
        Per sheet: ``table``, ``rows`` (rows under the header, blank and footer included),
        ``blank``, ``footer``.
    planted : dict
        ``(sheet, excel_row) -> reason_code`` of every record that must be quarantined.
    strength_rows : int
        Visits rows of strength exercises (no minutes logged), planted problems excluded.
    patients : list of str
        The patient ids.
    """

    workbook: Path
    mapping: Path
    sheets: dict[str, dict] = field(default_factory=dict)
    planted: dict[tuple[str, int], str] = field(default_factory=dict)
    strength_rows: int = 0
    patients: list[str] = field(default_factory=list)


class _Sheet:
    """Rows of one sheet with their Excel row numbers (header is row 1)."""

    def __init__(self, book, title: str, header: list[str]):
        self.ws = book.create_sheet(title)
        self.ws.append(header)
        self.row = 1
        self.blank = self.footer = 0

    def add(self, values: list) -> int:
        self.ws.append(values)
        self.row += 1
        return self.row

    def add_blank(self) -> None:
        self.add([None])
        self.blank += 1

    def add_footer(self, text: str) -> None:
        self.add([text])
        self.footer += 1


def _d(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def build_clinic_workbook(folder: str | Path, *, patients: int = 40, seed: int = 2025):
    """Write ``clinic_export.xlsx`` and ``clinic_mapping.toml`` into ``folder``.

    Parameters
    ----------
    folder : path-like
        Where to write (created if needed).
    patients : int
        Number of patients (at least 10; the planted problems use the first five).
    seed : int
        Seed of the random program, attendance, dropout and pain courses.

    Returns
    -------
    ClinicExport
    """
    if patients < 10:
        raise ValueError(f"patients = {patients}; at least 10 are needed for the planted rows")
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    book = openpyxl.Workbook()
    book.remove(book.active)
    pat = _Sheet(
        book,
        "Patients",
        ["Pt ID", "Start date", "Age", "Gender", "Program (weeks)", "Follow-up (weeks)", "Clinic"],
    )
    rx = _Sheet(
        book,
        "Prescriptions",
        ["Pt ID", "Phase", "Übung", "Sessions per week", "Sets", "Reps", "From", "To"],
    )
    visits = _Sheet(
        book,
        "Visits",
        [
            "Pt ID",
            "Date of visit",
            "Phase",
            "Übung",
            "Supervised",
            "Sets",
            "Reps",
            "Hold (s)",
            "Minutes",
        ],
    )
    out = _Sheet(book, "Outcomes", ["Pt ID", "Date", "Measure", "Result"])
    export = ClinicExport(folder / "clinic_export.xlsx", folder / "clinic_mapping.toml")
    ids = [f"P{i + 1:03d}" for i in range(patients)]
    export.patients = ids
    first_monday = dt.date(2024, 1, 8)
    enrol = {}
    for i, pid in enumerate(ids):
        enrol[pid] = first_monday + dt.timedelta(days=int(rng.integers(0, 150)))
        age = "" if i == 7 else int(rng.integers(24, 80))  # one age not recorded
        pat.add(
            [
                pid,
                _d(enrol[pid]),
                age,
                "F" if rng.random() < 0.55 else "M",
                GUIDED_WEEKS,
                FOLLOWUP_WEEKS,
                "C1" if i % 2 else "C2",
            ]
        )
        if i == 9:
            pat.add_blank()
    pat.add_blank()
    pat.add_footer("Exported by J. Smith on 03/02/2025")

    strength = 0
    nprs_names = ["nprs", "Nprs", "NPRS"]
    for i, pid in enumerate(ids):
        start = enrol[pid]
        guided_end = start + dt.timedelta(days=7 * GUIDED_WEEKS - 1)
        end = start + dt.timedelta(days=7 * FOLLOWUP_WEEKS - 1)
        program = [p for p in _PROGRAM if rng.random() < 0.8] or _PROGRAM[:2]
        for shown, _, _ in program:
            rx.add([pid, "Guided", shown, 2, 3, 10, _d(start), _d(guided_end)])
            rx.add(
                [pid, "Home program", shown, 2, 3, 10, _d(guided_end + dt.timedelta(1)), _d(end)]
            )
        adherence = rng.uniform(0.5, 0.95)
        dropout = int(rng.integers(4, 20)) if rng.random() < 0.2 else FOLLOWUP_WEEKS
        for week in range(min(dropout, FOLLOWUP_WEEKS)):
            guided = week < GUIDED_WEEKS
            for offset in (0, 3):
                if rng.random() > adherence:
                    continue
                day = start + dt.timedelta(days=7 * week + offset)
                for shown, exercise, logged in program:
                    minutes = (
                        round(_DEFAULT_MIN[exercise] * rng.uniform(0.8, 1.2) * 2) / 2
                        if logged
                        else None
                    )
                    is_strength = not logged
                    sets, reps = (3, 10) if exercise != "brisk_walking" else (None, None)
                    visits.add(
                        [
                            pid,
                            _d(day),
                            "Guided" if guided else "Home program",
                            shown,
                            "Ja" if guided else "Nein",
                            sets,
                            reps,
                            None,  # Hold (s): empty in every row
                            minutes,
                        ]
                    )
                    strength += is_strength
            if week == 5 and i % 7 == 0:
                visits.add_blank()
        # Outcomes: weeks 0, 6, 12 and 26; nothing after dropout; follow-up missed by some.
        base = int(rng.integers(5, 9))
        missed_followup = rng.random() < 0.15
        for week in (0, 6, GUIDED_WEEKS, FOLLOWUP_WEEKS):
            if week > dropout or (week == FOLLOWUP_WEEKS and missed_followup):
                continue
            day = start + dt.timedelta(days=7 * week)
            gain = adherence * min(week, GUIDED_WEEKS) / GUIDED_WEEKS * 4
            nprs = int(np.clip(round(base - gain + rng.normal(0, 0.7)), 0, 10))
            odi = int(np.clip(round(8 * base - 6 * gain + rng.normal(0, 4)), 0, 100))
            date_cell = dt.datetime(day.year, day.month, day.day)
            r = out.add([pid, date_cell, nprs_names[(i + week) % 3], f"{nprs}/10"])
            out.ws.cell(r, 2).number_format = "DD/MM/YYYY"
            r = out.add([pid, date_cell, "ODI" if week % 2 else "odi", f"{odi}%"])
            out.ws.cell(r, 2).number_format = "DD/MM/YYYY"
    export.strength_rows = strength

    # Planted problems (each must be quarantined with the code given).
    planted = export.planted
    p3, p5, p6 = ids[2], ids[4], ids[5]
    late = dt.date(2025, 6, 2)  # after every program: no phase window, no duplicate
    row = visits.add(
        [p3.lower() + " ", _d(late), "Home program", "Bird-Dog", "Nein", 3, 10, None, 6]
    )
    planted[("Visits", row)] = "unknown_patient"  # 'p003 ': did you mean 'P003'?
    row = visits.add(
        [p5[0] + " " + p5[1:], _d(late), "Home program", "Bird-Dog", "Nein", 3, 10, None, 6]
    )
    planted[("Visits", row)] = "unknown_patient"  # 'P 005'
    row = visits.add([p6, _d(late), "Home program", "Plnak", "Nein", 3, 10, None, None])
    planted[("Visits", row)] = "unknown_exercise"
    row = visits.add([p6, "31/02/2024", "Guided", "Bird-Dog", "Ja", 3, 10, None, 6])
    planted[("Visits", row)] = "bad_date"
    early = enrol[p6] - dt.timedelta(days=3)
    row = visits.add([p6, _d(early), "Guided", "Bird-Dog", "Ja", 3, 10, None, 6])
    planted[("Visits", row)] = "before_enrolment"
    visits.add_blank()
    visits.add_footer("Exported by J. Smith on 03/02/2025 (Physio Plus, all visits)")

    d6 = dt.datetime.combine(enrol[p6] + dt.timedelta(days=1), dt.time())
    row = out.add([p6, d6, "NPRS", "11/10"])
    planted[("Outcomes", row)] = "out_of_range"
    row = out.add([p6, d6 + dt.timedelta(days=1), "NPRS", "seven"])
    planted[("Outcomes", row)] = "no_pattern_match"
    row = out.add([p6, d6 + dt.timedelta(days=2), "ODI", "30%"])
    row = out.add([p6, d6 + dt.timedelta(days=2), "ODI", "30%"])
    planted[("Outcomes", row)] = "duplicate_row"
    for r in range(2, out.row + 1):
        out.ws.cell(r, 2).number_format = "DD/MM/YYYY"
    out.add_blank()
    out.add_footer("Exported by J. Smith on 03/02/2025")
    rx.add_footer("Exported by J. Smith on 03/02/2025")

    for sheet, table in ((pat, "patients"), (rx, "prescriptions"), (visits, "sessions"),
                         (out, "outcomes")):  # fmt: skip
        export.sheets[sheet.ws.title] = {
            "table": table,
            "rows": sheet.row - 1,
            "blank": sheet.blank,
            "footer": sheet.footer,
        }
    book.save(export.workbook)
    export.mapping.write_text(MAPPING, encoding="utf-8")
    return export
