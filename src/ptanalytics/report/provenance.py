"""Provenance of a report: which inputs, which parameters and which software produced it.

Everything here is read from the cohort (``cohort.json``, ``metadata["ingest"]``), from the
cohort folder's files and from the report's settings; nothing is timed or dated, so the same
cohort and options give the same text. No file name from the ingest is printed: a clinic's
export may be named after a patient, so sources are shown as ``source 1 (.xlsx)``, sheets as
``sheet 1``, the mapping as ``mapping file (.toml)``, and the cohort folder's path never
appears (only the canonical file names inside it).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pandas as pd

from ptanalytics._hashing import file_sha256
from ptanalytics.cohort.container import TABLE_NAMES
from ptanalytics.cohort.io import find_table
from ptanalytics.metrics.timepoints import DEFAULT_WINDOW_DAYS
from ptanalytics.metrics.weeks import INACTIVITY_DAYS, MISSED_SESSIONS

__all__ = [
    "NOT_RECORDED",
    "add_provenance",
    "file_sha256",
    "folder_hashes",
    "ingest_sources",
    "ingest_summary",
    "mapping_row",
    "report_parameters",
]

#: What a hash cell says when ingest did not record the hash.
NOT_RECORDED = "not recorded at ingest"

#: What each report parameter means (a parameter missing here is shown with an empty meaning).
MEANINGS = {
    "min_cell": "smallest count shown; smaller counts read '<min_cell'",
    "group": "grouping of the tables (randomised arm where there is one, else attendance band)",
    "timepoint": "timepoint of the responder tables",
    "mi_imputations": "imputations of the multiple-imputation responder table (m)",
    "mi_seed": "seed of the multiple imputation and of the effects section's bootstraps",
    "landmark_week": "Kaplan-Meier landmark: early adherence over weeks 0 .. landmark_week - 1",
    "active_arm": "randomised active level of patients.arm, the instrument of the effects section",
    "review_week": "week of the early-response review whose extension rule is emulated",
    "window_days": "an assessment counts for a timepoint within this many days of its target",
    "inactivity_days": "dropout: no session in the last this many days before the planned end",
    "missed_sessions": "dropout: or this many supervised sessions missed in a row",
    "schedule.end_guided_weeks": "study schedule: end of the guided phase (weeks), if no program",
    "schedule.followup_weeks": "study schedule: follow-up (weeks after enrolment)",
}


def folder_hashes(folder: str | os.PathLike) -> pd.DataFrame:
    """SHA-256 of every file of a cohort folder that the report read or that describes it.

    Rows (``file``, ``sha256``) in this order: ``cohort.json``, each table's file (or each part
    of a table stored as a folder of Parquet parts, ``sessions/part-00000.parquet``), then
    ``truth.json`` and the ``quarantine/`` files when present. Names are relative to the folder
    (canonical names written by ptanalytics), never the folder's own path.
    """
    folder = Path(folder)
    files = [folder / "cohort.json"]
    for name in TABLE_NAMES:
        table = find_table(folder, name)
        if table is not None:
            files.extend(table.files)
    files += [p for p in (folder / "truth.json",) if p.is_file()]
    files += sorted((folder / "quarantine").glob("*.csv"))
    rows = [(p.relative_to(folder).as_posix(), file_sha256(p)) for p in files if p.is_file()]
    return pd.DataFrame(rows, columns=["file", "sha256"])


def ingest_sources(ingest: dict) -> pd.DataFrame:
    """The sources of ``metadata["ingest"]`` under pseudonymous names, with their row counts.

    One row per source (a file, or one sheet of a workbook): ``source`` (``source 1 (.csv)``,
    numbered by file in the order ingest read them), ``sheet`` (``sheet 1``, numbered within its
    file; empty for a file without sheets), ``format``, ``rows read``, ``rows used``, ``rows set
    aside`` and ``sha256`` (the file's hash when ingest recorded one, else
    :data:`NOT_RECORDED`). Table and column names are left out: a source column's name may be
    a patient attribute's.
    """
    files: dict[str, str] = {}
    sheets: dict[tuple[str, str], str] = {}
    rows = []
    for s in ingest.get("sources") or ():
        name = str(s.get("file") or "")
        label = files.setdefault(name, f"source {len(files) + 1} ({Path(name).suffix.lower()})")
        sheet = str(s.get("sheet") or "")
        if sheet:
            within = sum(1 for f, _ in sheets if f == name)
            sheet = sheets.setdefault((name, sheet), f"sheet {within + 1}")
        rows.append(
            {
                "source": label,
                "sheet": sheet,
                "format": s.get("format", ""),
                "rows read": int(s.get("rows_read", 0)),
                "rows used": int(s.get("rows_used", 0)),
                "rows set aside": int(s.get("rows_set_aside", 0)),
                "sha256": s.get("sha256") or NOT_RECORDED,
            }
        )
    columns = ["source", "sheet", "format", "rows read", "rows used", "rows set aside", "sha256"]
    return pd.DataFrame(rows, columns=columns)


def mapping_row(ingest: dict) -> dict[str, str]:
    """The mapping file of an ingest: ``mapping`` (``mapping file (.toml)`` or ``none``) and
    ``sha256`` (as recorded, else :data:`NOT_RECORDED`; empty without a mapping)."""
    name = ingest.get("mapping")
    if not name:
        return {"mapping": "none (columns named as the data dictionary)", "sha256": ""}
    return {
        "mapping": f"mapping file ({Path(str(name)).suffix.lower()})",
        "sha256": ingest.get("mapping_sha256") or NOT_RECORDED,
    }


def report_parameters(
    settings, *, min_cell: int, group: str | None, schedule: dict | None = None
) -> pd.DataFrame:
    """Every parameter the report's numbers depend on (``parameter``, ``value``, ``meaning``).

    ``settings`` is the report's :class:`~ptanalytics.report.sections.ReportSettings` (every
    field is listed, so a new setting is never left out), beside the minimum cell size, the
    grouping, the metric definitions' constants (timepoint window, dropout rule) and the study's
    schedule from ``cohort.json`` (``schedule.followup_weeks``, ...) when it has one.
    """
    values: dict[str, object] = {"min_cell": min_cell, "group": group or "none"}
    values.update({f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)})
    values.update(
        window_days=DEFAULT_WINDOW_DAYS,
        inactivity_days=INACTIVITY_DAYS,
        missed_sessions=MISSED_SESSIONS,
    )
    values.update({f"schedule.{k}": v for k, v in sorted((schedule or {}).items())})
    return pd.DataFrame(
        [(k, str(v), MEANINGS.get(k, "")) for k, v in values.items()],
        columns=["parameter", "value", "meaning"],
    )


def ingest_summary(ingest: dict) -> pd.DataFrame:
    """What ingest did, in totals (``step``, ``count``): records read into the canonical tables,
    accepted, quarantined, source rows set aside and session minutes imputed."""
    tables = pd.DataFrame(
        ingest.get("tables") or [], columns=["records", "accepted", "quarantined"]
    )
    aside = sum(int(s.get("rows_set_aside", 0)) for s in ingest.get("sources") or ())
    imputed = (ingest.get("imputed") or {}).get("sessions.duration_min") or {}
    rows = [
        ("records read into the tables", int(tables["records"].sum())),
        ("records accepted", int(tables["accepted"].sum())),
        ("records quarantined (quarantine/)", int(tables["quarantined"].sum())),
        ("source rows set aside (blank, footer, filtered)", aside),
        ("session minutes imputed from the catalogue", int(imputed.get("imputed", 0))),
    ]
    return pd.DataFrame(rows, columns=["step", "count"])


def _origin_text(meta: dict) -> str:
    """One sentence on where the cohort came from (no file name, no date)."""
    source = str(meta.get("source") or "unknown")
    if source == "simulated":
        return (
            f"Simulated by ptanalytics (seed {meta.get('seed')}, configuration SHA-256 "
            f"`{meta.get('config_sha256')}`): no export was read."
        )
    if "ingest" not in meta:
        return "cohort.json does not record where this cohort came from."
    n = len({str(s.get("file")) for s in meta["ingest"].get("sources") or ()})
    text = f"Ingested by ptanalytics from {n} source file(s)."
    deid = meta.get("deidentified")
    if isinstance(deid, dict):
        text += f" De-identified after ingest ({deid.get('method', 'ptanalytics deidentify')})."
    return text


def _headed(table: pd.DataFrame) -> pd.DataFrame:
    """The table with its headers in words (its cells, names and hashes, as they are)."""
    from ptanalytics.report.tables import column_label

    return table.rename(columns=column_label)


def add_provenance(
    out, meta: dict, *, folder=None, settings, min_cell: int, group, versions: pd.DataFrame
) -> None:
    """Add the provenance blocks of a report to ``out`` (a :class:`~ptanalytics.report.render.
    Blocks`): origin, sources and mapping with their hashes, the ingest summary, the hashes of the
    cohort folder's files, every parameter and the software versions.

    ``meta`` is the cohort's metadata (``cohort.json``), ``folder`` the cohort folder the report
    read (None for a cohort held in memory). Counts below ``min_cell`` show as ``<min_cell``.
    """
    from ptanalytics.report.tables import aggregate_html

    out.markdown(_origin_text(meta))
    ingest = meta.get("ingest")
    if isinstance(ingest, dict):
        counts = ["rows read", "rows used", "rows set aside"]
        out.html(aggregate_html(ingest_sources(ingest), counts=counts, min_cell=min_cell))
        out.html(_headed(pd.DataFrame([mapping_row(ingest)])).to_html(index=False))
        sources = [s for s in ingest.get("sources") or () if isinstance(s, dict)]
        unhashed = any(not s.get("sha256") for s in sources) or (
            ingest.get("mapping") and not ingest.get("mapping_sha256")
        )
        if any(s.get("sha256") for s in sources) or ingest.get("mapping_sha256"):
            out.markdown(
                "The SHA-256 above is that of each file's bytes as ingest read them (every sheet "
                "of a workbook shows its file's hash). Check that a file is the one this report "
                "came from with `sha256sum FILE` (or `Get-FileHash FILE` in PowerShell): the "
                "same hash, the same bytes. The names are not shown (a file name can hold a "
                "patient's name); the hash identifies a file without naming it."
            )
        if unhashed:
            out.markdown(
                "Ingest recorded the names of the source files and of the mapping, not a hash "
                f"of their contents where the tables say *{NOT_RECORDED}*: those files cannot "
                "be matched to this report by hash (their names are not shown: a file name can "
                "hold a patient's name). The hashes of the cohort folder's files identify the "
                "data the report read."
            )
        out.html(aggregate_html(ingest_summary(ingest), counts=["count"], min_cell=min_cell))
        warnings = len(ingest.get("warnings") or ())
        out.markdown(f"Ingest warnings recorded in cohort.json: {warnings}.")
    if folder is not None:
        out.markdown(
            f"SHA-256 of the cohort folder's files (cohort format {meta.get('format_version')}, "
            f"written by ptanalytics {meta.get('ptanalytics_version')}); check a copy with "
            "`sha256sum`:"
        )
        out.html(_headed(folder_hashes(folder)).to_html(index=False))
    else:
        out.markdown(
            "The cohort was not read from a folder (it was generated in memory), so there is no "
            "file to hash; the data fingerprint of section 8 identifies its tables."
        )
    out.markdown("Parameters of every number in this report:")
    params = report_parameters(
        settings, min_cell=min_cell, group=group, schedule=meta.get("schedule")
    )
    out.html(_headed(params).to_html(index=False))
    out.markdown(
        "Software: " + ", ".join(f"{p} {v}" for p, v in versions.itertuples(index=False)) + "."
    )
