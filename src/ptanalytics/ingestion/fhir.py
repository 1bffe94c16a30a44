"""FHIR R4 sources (JSON Bundles and NDJSON) as raw canonical records.

What is read:

* ``Patient`` → ``patients``: ``id``, ``gender`` (→ ``sex``), age at enrolment from ``birthDate``
  (the birth date itself is not kept). Enrolment is the earliest ``EpisodeOfCare`` or ``CarePlan``
  period start of the patient, else the patient's earliest observation or procedure.
* ``Observation`` LOINC **72514-3** (pain severity 0-10) → ``outcomes`` as ``NPRS``, from
  ``valueInteger`` or a ``valueQuantity`` whose unit is a score (``{score}``, ``1``, ``/10`` or
  none); any other unit is quarantined as ``wrong_unit``.
* ``Observation`` LOINC **73985-4** (exercise activity; the exercise in ``valueCodeableConcept``)
  with an optional **55411-3** (exercise duration) component, and ``Procedure`` (status
  ``completed``, the exercise in ``code``) → ``sessions``. A session is supervised when it has a
  ``performer``. Its phase is the phase of the ``CarePlan`` whose period covers its date.
* ``CarePlan`` activities → ``prescriptions``: exercise from ``detail.code``, sessions per week
  from ``detail.scheduledTiming.repeat`` (frequency / period in days or weeks), phase from the
  CarePlan's ``category`` (``guided`` / ``maintenance``).

Every resource is counted: used, or set aside with a reason (unsupported type or code, a
procedure not completed, an unparseable NDJSON line, a field of the wrong JSON type such as a
string ``subject`` or a ``coding`` that is not a list, JSON nested deeper than
:data:`MAX_DEPTH`). Records with a problem (no subject, a wrong unit, no value, a duration that is
not a number, a period mixing times with and without a timezone) go on to validation, which
quarantines them with the reason. A file larger than :data:`MAX_BYTES`, or a Bundle nested deeper
than :data:`MAX_DEPTH`, is refused as a whole.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ptanalytics._checks import type_words
from ptanalytics.exceptions import IngestError
from ptanalytics.ingestion.validate import FILE, PROBLEM, PROBLEM_CODE, ROW
from ptanalytics.vocab import PHASES, SEXES

__all__ = [
    "LOINC_EXERCISE",
    "LOINC_EXERCISE_DURATION",
    "LOINC_PAIN",
    "MAX_BYTES",
    "MAX_DEPTH",
    "FhirResult",
    "read_fhir",
]

LOINC = "http://loinc.org"
LOINC_PAIN = "72514-3"
LOINC_EXERCISE = "73985-4"
LOINC_EXERCISE_DURATION = "55411-3"
_SCORE_UNITS = {"{score}", "1", "/10", "{#}", ""}
_MINUTES = {"min": 1.0, "h": 60.0, "s": 1 / 60}
#: Largest FHIR file read (bytes); a bigger export should be split into NDJSON files.
MAX_BYTES = 1 << 30
#: Deepest nesting of JSON arrays and objects accepted in a resource (FHIR R4 needs about 10).
MAX_DEPTH = 64


@dataclass
class FhirResult:
    """Raw records read from one FHIR file.

    Attributes
    ----------
    records : dict of str to DataFrame
        Per table, raw canonical records (text) with ``_source_file``, ``_source_row`` (NDJSON
        line, or Bundle entry number) and ``_problem`` / ``_problem_code`` for validation.
    set_aside : DataFrame
        Resources not used: ``_source_file``, ``_source_row``, ``reason_code``, ``reason``,
        ``text``.
    resources : int
        Resources read (= used + set aside).
    """

    records: dict[str, pd.DataFrame] = field(default_factory=dict)
    set_aside: pd.DataFrame = field(default_factory=pd.DataFrame)
    resources: int = 0


def _load(path: Path) -> list[tuple[int, Any]]:
    """(row, resource) pairs; an unparseable NDJSON line gives (row, None), a line nested too
    deeply (row, _TOO_DEEP)."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise IngestError(
            f"{path}: the file is {size:,} bytes, over the limit of {MAX_BYTES:,} bytes for one "
            f"FHIR file. Fix: export it as several NDJSON files."
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"{path}: byte {exc.start} is not UTF-8 text, so this is not FHIR JSON. Fix: export "
            f"it again as UTF-8 JSON or NDJSON."
        ) from None
    if not text.strip():
        raise IngestError(f"{path}: the file is empty. Fix: export it again.")
    if path.suffix.lower() == ".ndjson":
        out = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                res = json.loads(line)
            except json.JSONDecodeError:
                res = None
            except RecursionError:
                res = _TOO_DEEP
            out.append((number, _TOO_DEEP if _too_deep(res) else res))
        return out
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IngestError(f"{path}: not valid JSON ({exc}). Fix: export it again.") from None
    except RecursionError:
        doc = _TOO_DEEP
    if doc is _TOO_DEEP or _too_deep(doc, MAX_DEPTH + 2):  # Bundle and entry add two levels
        raise IngestError(
            f"{path}: the JSON is nested deeper than {MAX_DEPTH} levels, the limit for a FHIR "
            f"resource. Fix: export it again (a valid FHIR R4 export nests about 10 levels)."
        )
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        entries = doc.get("entry") or []
        if not isinstance(entries, list):
            raise IngestError(
                f"{path}: Bundle 'entry' is {_kind(entries)}, not a list of entries. Fix: export "
                f'the Bundle again (entry = [{{"resource": {{...}}}}, ...]).'
            )
        return [
            (i, e.get("resource") if isinstance(e, dict) else None)
            for i, e in enumerate(entries, start=1)
        ]
    return [(1, doc)]


_TOO_DEEP = object()


def _too_deep(doc: Any, limit: int | None = None) -> bool:
    """Whether ``doc`` nests arrays/objects deeper than ``limit`` (default MAX_DEPTH)."""
    limit = MAX_DEPTH if limit is None else limit
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return False


def _kind(value: Any) -> str:
    """A JSON value's type in words: 'a string', 'a number', 'an object', 'null', ..."""
    return "null" if value is None else type_words(value, mapping="an object")


# Where the reader looks, the JSON type it needs: objects, lists, text and numbers by key name.
_OBJECTS = {
    "subject", "patient", "code", "period", "effectivePeriod", "performedPeriod", "valueQuantity",
    "valueCodeableConcept", "detail", "scheduledTiming", "repeat", "boundsPeriod",
}  # fmt: skip
_LISTS = {"coding", "category", "component", "activity", "performer"}
_TEXTS = {
    "resourceType", "id", "reference", "system", "display", "text", "start", "end", "status",
    "gender", "birthDate", "effectiveDateTime", "effectiveInstant", "issued",
    "performedDateTime", "unit", "periodUnit",
}  # fmt: skip
_EXAMPLES = {
    "subject": '{"reference": "Patient/123"}',
    "patient": '{"reference": "Patient/123"}',
    "coding": '[{"system": "http://loinc.org", "code": "72514-3"}]',
    "code": '{"coding": [...]}',
}


def _shape_problem(node: Any, path: str = "") -> str | None:
    """The first field (as a key path) whose JSON type is not what the reader needs, or None."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            found = _shape_problem(item, f"{path}[{i}]")
            if found:
                return found
        return None
    if not isinstance(node, dict):
        return None
    for key, value in node.items():
        where = f"{path}.{key}" if path else key
        if value is None:
            continue
        if not path and key == "text":
            continue  # the resource's narrative (an object), not read
        repeat_number = path.endswith("repeat") and key in ("period", "frequency")
        in_coding = path.split(".")[-1].startswith("coding[")
        if repeat_number or (path.endswith("valueQuantity") and key == "value"):
            expected = "a number"
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif key in _TEXTS or (key == "code" and (in_coding or path.endswith("Quantity"))):
            expected, ok = "a string", isinstance(value, str)
        elif key in _OBJECTS:
            expected, ok = "an object", isinstance(value, dict)
        elif key in _LISTS:
            expected, ok = "a list", isinstance(value, list)
        elif key == "valueInteger":
            expected = "a whole number"
            ok = isinstance(value, int | str) and not isinstance(value, bool)
        else:
            expected, ok = "", True
        if not ok:
            example = f" such as {_EXAMPLES[key]}" if key in _EXAMPLES else ""
            return f"'{where}' is {_kind(value)}, expected {expected}{example}"
        if isinstance(value, dict | list) and key not in ("extension", "modifierExtension"):
            found = _shape_problem(value, where)
            if found:
                return found
    return None


def _codes(concept: dict | None) -> set[tuple[str, str]]:
    return {(c.get("system", ""), c.get("code", "")) for c in (concept or {}).get("coding", [])}


def _label(concept: dict | None) -> str | None:
    """The text of a CodeableConcept: its text, else the first display or code."""
    concept = concept or {}
    if concept.get("text"):
        return concept["text"]
    for c in concept.get("coding", []):
        if c.get("display") or c.get("code"):
            return c.get("display") or c.get("code")
    return None


def _subject(res: dict) -> str | None:
    ref = (res.get("subject") or res.get("patient") or {}).get("reference")
    if not ref:
        return None
    return ref.split("/")[-1]


def _date(value: str | None) -> str | None:
    return value[:10] if isinstance(value, str) and len(value) >= 10 else value


def _when(res: dict, *keys: str) -> str | None:
    for key in keys:
        v = res.get(key)
        if isinstance(v, dict):
            v = v.get("start")
        if v:
            return _date(v)
    return None


_MISSING_SUBJECT = (
    "missing_subject",
    "the resource has no subject; fix: export it with its patient",
)


class _Collector:
    def __init__(self, file: str):
        self.file = file
        self.rows: dict[str, list[dict]] = {}
        self.aside: list[dict] = []

    def add(self, table: str, row: int, problem: tuple[str, str] | None = None, **values):
        rec = {FILE: self.file, ROW: row, **values}
        rec[PROBLEM_CODE], rec[PROBLEM] = problem or ("", "")
        self.rows.setdefault(table, []).append(rec)

    def add_of_patient(
        self, table: str, row: int, pid: str | None, problem: tuple[str, str] | None, **values
    ):
        """A record of a patient's resource: without a subject it carries ``missing_subject``
        (in place of its own problem)."""
        self.add(table, row, _MISSING_SUBJECT if pid is None else problem, patient_id=pid, **values)

    def mark(self) -> tuple[dict[str, int], int]:
        return {t: len(rows) for t, rows in self.rows.items()}, len(self.aside)

    def rollback(self, mark: tuple[dict[str, int], int]) -> None:
        lengths, n_aside = mark
        for table in list(self.rows):
            del self.rows[table][lengths.get(table, 0) :]
            if not self.rows[table]:
                del self.rows[table]
        del self.aside[n_aside:]

    def set_aside(self, row: int, code: str, reason: str, res: Any = None):
        text = json.dumps(res)[:300] if res is not None else ""
        self.aside.append(
            {FILE: self.file, ROW: row, "reason_code": code, "reason": reason, "text": text}
        )


def _observation(c: _Collector, row: int, res: dict, pid: str | None) -> None:
    codes = _codes(res.get("code"))
    when = _when(res, "effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued")
    if (LOINC, LOINC_PAIN) in codes:
        score, problem = _pain_value(res)
        c.add_of_patient(
            "outcomes", row, pid, problem, assessed_on=when, instrument="NPRS", score=score
        )
        return
    if (LOINC, LOINC_EXERCISE) in codes or (LOINC, LOINC_EXERCISE_DURATION) in codes:
        exercise = _label(res.get("valueCodeableConcept"))
        minutes, problem = None, None
        if (LOINC, LOINC_EXERCISE_DURATION) in codes:
            minutes, problem = _minutes(res.get("valueQuantity"))
        for comp in res.get("component", []):
            comp_codes = _codes(comp.get("code"))
            if (LOINC, LOINC_EXERCISE_DURATION) in comp_codes:
                minutes, problem = _minutes(comp.get("valueQuantity"))
            if (LOINC, LOINC_EXERCISE) in comp_codes:
                exercise = _label(comp.get("valueCodeableConcept")) or exercise
        c.add_of_patient(
            "sessions",
            row,
            pid,
            problem,
            performed_on=when,
            exercise=exercise,
            supervised=str(bool(res.get("performer"))),
            duration_min=minutes,
        )
        return
    c.set_aside(
        row,
        "unsupported_code",
        "Observation code "
        + ", ".join(sorted(code for _, code in codes) or ["(none)"])
        + " is not read (pain 72514-3, exercise 73985-4 / 55411-3 are)",
        res,
    )


def _pain_value(res: dict) -> tuple[str | None, tuple[str, str] | None]:
    if "valueInteger" in res:
        return str(res["valueInteger"]), None
    q = res.get("valueQuantity")
    if isinstance(q, dict) and "value" in q:
        unit = str(q.get("code", q.get("unit", "")) or "")
        if unit not in _SCORE_UNITS:
            return str(q["value"]), (
                "wrong_unit",
                f"valueQuantity unit '{unit}' is not a 0-10 pain score ({{score}}); fix: convert "
                f"the value to NPRS 0-10 before export",
            )
        return str(q["value"]), None
    return None, ("no_value", "the pain observation has no valueInteger or valueQuantity")


def _minutes(q: dict | None) -> tuple[str | None, tuple[str, str] | None]:
    if not isinstance(q, dict) or "value" not in q:
        return None, None
    unit = str(q.get("code", q.get("unit", "min")) or "min")
    if unit not in _MINUTES:
        return str(q["value"]), (
            "wrong_unit",
            f"exercise duration unit '{unit}' is not min, h or s; fix: export minutes",
        )
    value = q["value"]
    if not isinstance(value, int | float) or isinstance(value, bool):
        return str(value), (
            "not_a_number",
            f"exercise duration valueQuantity.value is {_kind(value)}, not a number; fix: "
            f"export the minutes as a JSON number",
        )
    return f"{float(value) * _MINUTES[unit]:g}", None


def _procedure(c: _Collector, row: int, res: dict, pid: str | None) -> None:
    if res.get("status", "completed") != "completed":
        c.set_aside(
            row,
            "not_completed",
            f"Procedure status '{res.get('status')}' is not a session done",
            res,
        )
        return
    minutes, problem = _period_minutes(res.get("performedPeriod") or {})
    c.add_of_patient(
        "sessions",
        row,
        pid,
        problem,
        performed_on=_when(res, "performedDateTime", "performedPeriod"),
        exercise=_label(res.get("code")),
        supervised=str(bool(res.get("performer"))),
        duration_min=minutes,
    )


def _period_minutes(period: dict) -> tuple[str | None, tuple[str, str] | None]:
    """Minutes between a period's start and end, or a problem when they cannot be compared."""
    if not (period.get("start") and period.get("end")):
        return None, None
    try:
        start, end = pd.Timestamp(period["start"]), pd.Timestamp(period["end"])
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        return None, (
            "bad_period",
            "performedPeriod start or end is not a FHIR dateTime; fix: export ISO date-times",
        )
    if (start.tzinfo is None) != (end.tzinfo is None):
        return None, (
            "mixed_timezone",
            "performedPeriod mixes a time with a timezone and one without, so its length is "
            "unknown; fix: export both with an offset (e.g. 2024-03-04T09:00:00+01:00)",
        )
    return f"{(end - start).total_seconds() / 60:g}", None


def _phase_of(res: dict) -> str | None:
    for concept in res.get("category", []):
        label = (_label(concept) or "").lower()
        for phase in PHASES:
            if phase in label:
                return phase
    return None


def _careplan(c: _Collector, row: int, res: dict, pid: str | None) -> None:
    phase = _phase_of(res)
    start, end = (
        _date((res.get("period") or {}).get("start")),
        _date((res.get("period") or {}).get("end")),
    )
    for activity in res.get("activity", []):
        detail = activity.get("detail") or {}
        repeat = (detail.get("scheduledTiming") or {}).get("repeat") or {}
        bounds = repeat.get("boundsPeriod") or {}
        per_week = None
        if repeat.get("frequency") and repeat.get("period"):
            days = {"d": 1, "wk": 7}.get(repeat.get("periodUnit", "wk"))
            if days:
                per_week = f"{repeat['frequency'] * 7 / (repeat['period'] * days):g}"
        problem = None if pid else ("missing_subject", "the CarePlan has no subject")
        c.add(
            "prescriptions",
            row,
            problem,
            patient_id=pid,
            phase=phase,
            exercise=_label(detail.get("code")),
            sessions_per_week=per_week,
            start_on=_date(bounds.get("start")) or start,
            end_on=_date(bounds.get("end")) or end,
        )


def read_fhir(path: str | Path) -> FhirResult:
    """Read a FHIR R4 Bundle (``.json``) or NDJSON file into raw canonical records."""
    p = Path(path)
    if not p.is_file():
        raise IngestError(f"{p}: file not found. Fix: check the path.")
    items = _load(p)
    c = _Collector(p.name)
    patients: list[tuple[int, dict]] = []
    starts: dict[str, list[str]] = {}
    for row, res in items:
        if res is _TOO_DEEP:
            c.set_aside(
                row,
                "too_deeply_nested",
                f"the JSON is nested deeper than {MAX_DEPTH} levels, the limit for a FHIR "
                f"resource; fix: export the resource again",
            )
            continue
        if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
            c.set_aside(
                row, "unparseable_row", "not a FHIR resource (invalid JSON or no resourceType)"
            )
            continue
        kind = res["resourceType"]
        shape = _shape_problem(res)
        if shape is not None:
            c.set_aside(
                row,
                "wrong_json_type",
                f"{kind}: {shape}; fix: correct the export (FHIR R4 JSON types)",
                res,
            )
            continue
        mark = c.mark(), {k: list(v) for k, v in starts.items()}, len(patients)
        try:
            _resource(c, row, res, kind, patients, starts)
        except (AttributeError, TypeError, ValueError, KeyError, IndexError, OverflowError) as exc:
            # A shape the checks above do not know: undo what the resource added, set it aside.
            c.rollback(mark[0])
            starts.clear()
            starts.update(mark[1])
            del patients[mark[2] :]
            c.set_aside(
                row,
                "wrong_json_type",
                f"{kind}: a field has a JSON type or value the reader cannot use "
                f"({type(exc).__name__}); fix: correct the export (FHIR R4 JSON types)",
                res,
            )
    activity = _first_activity(c)
    for row, res in patients:
        pid = res.get("id")
        enrolled = min(starts.get(pid, []), default=None) or activity.get(pid)
        c.add(
            "patients",
            row,
            None,
            patient_id=pid,
            enrolled_on=enrolled,
            sex=res.get("gender") if res.get("gender") in SEXES else None,
            age=_age(res.get("birthDate"), enrolled),
        )
    _assign_phases(c)
    records = {t: pd.DataFrame(rows).astype({ROW: "int64"}) for t, rows in c.rows.items()}
    for t, frame in records.items():
        for col in frame.columns:
            if col != ROW:
                records[t][col] = frame[col].astype("string")
    aside = pd.DataFrame(c.aside, columns=[FILE, ROW, "reason_code", "reason", "text"])
    return FhirResult(records, aside, len(items))


def _resource(c: _Collector, row: int, res: dict, kind: str, patients, starts) -> None:
    """Read one resource into the collector (patients are read once all periods are known)."""
    pid = _subject(res)
    if kind == "Patient":
        patients.append((row, res))
    elif kind == "Observation":
        _observation(c, row, res, pid)
    elif kind == "Procedure":
        _procedure(c, row, res, pid)
    elif kind == "CarePlan":
        _careplan(c, row, res, pid)
        if pid and (res.get("period") or {}).get("start"):
            starts.setdefault(pid, []).append(_date(res["period"]["start"]))
    elif kind == "EpisodeOfCare":
        if pid and (res.get("period") or {}).get("start"):
            starts.setdefault(pid, []).append(_date(res["period"]["start"]))
        else:
            c.set_aside(
                row,
                "unsupported_resource",
                "EpisodeOfCare without patient or period start",
                res,
            )
    else:
        c.set_aside(row, "unsupported_resource", f"resource type {kind} is not read", res)


def _first_activity(c: _Collector) -> dict[str, str]:
    first: dict[str, str] = {}
    for table, key in (("outcomes", "assessed_on"), ("sessions", "performed_on")):
        for rec in c.rows.get(table, []):
            pid, day = rec.get("patient_id"), rec.get(key)
            if pid and day and (pid not in first or day < first[pid]):
                first[pid] = day
    return first


def _age(birth: str | None, enrolled: str | None) -> str | None:
    try:
        b, e = dt.date.fromisoformat(birth[:10]), dt.date.fromisoformat(enrolled[:10])
    except (TypeError, ValueError):
        return None
    return str(e.year - b.year - ((e.month, e.day) < (b.month, b.day)))


def _assign_phases(c: _Collector) -> None:
    """A session's phase: that of the CarePlan period covering its date."""
    windows: dict[str, list[tuple[str, str, str]]] = {}
    for rec in c.rows.get("prescriptions", []):
        if rec.get("patient_id") and rec.get("phase") and rec.get("start_on"):
            windows.setdefault(rec["patient_id"], []).append(
                (rec["start_on"], rec.get("end_on") or "9999-12-31", rec["phase"])
            )
    for rec in c.rows.get("sessions", []):
        day = rec.get("performed_on")
        for start, end, phase in windows.get(rec.get("patient_id"), []):
            if day and start <= day <= end:
                rec["phase"] = phase
                break
        else:
            rec.setdefault("phase", None)
            if not rec[PROBLEM_CODE]:
                rec[PROBLEM_CODE] = "unknown_phase"
                rec[PROBLEM] = (
                    "no CarePlan with a guided/maintenance category covers this "
                    "date, so the phase is unknown; fix: export the CarePlan"
                )
