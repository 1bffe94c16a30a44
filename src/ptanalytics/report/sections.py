"""The HTML report: a parameterised notebook executed by papermill, converted by nbconvert.

:func:`render_report` runs the package's report notebook (``report/report.ipynb``) on a cohort and
writes one self-contained HTML file: figures embedded, no script, style or font fetched from the
network, a table of contents, code hidden unless asked. Counts below ``min_cell`` are shown as
``<min_cell`` in every table; no patient identifier, birth date or calendar date is printed.

The notebook calls the helpers below (and the package's models); it holds no analysis of its own.
"""

from __future__ import annotations

import hashlib
import html
import platform
import re
import sys
import tempfile
from importlib import metadata, resources
from pathlib import Path

import numpy as np
import pandas as pd

from ptanalytics.cohort.io import Cohort
from ptanalytics.exceptions import ConfigError
from ptanalytics.metrics.timepoints import timepoint_scores
from ptanalytics.privacy.suppression import PRIMARY, SECONDARY, complementary_suppression
from ptanalytics.report._file import report_destination, write_report

__all__ = [
    "Disclosure",
    "cohort_fingerprint",
    "km_for_report",
    "mathtext_safe",
    "mi_for_report",
    "model_patients",
    "render_report",
    "report_disclosure",
    "small_factor_terms",
    "software_versions",
    "table_one",
]


def cohort_fingerprint(cohort: Cohort) -> str:
    """SHA-256 of the cohort's tables (as canonical CSV), to tell which data a report used."""
    digest = hashlib.sha256()
    for name, df in cohort.tables.items():
        digest.update(name.encode())
        digest.update(
            df.to_csv(
                index=False, date_format="%Y-%m-%d", float_format="%.10g", lineterminator="\n"
            ).encode()
        )
    return digest.hexdigest()


def software_versions() -> pd.DataFrame:
    """Versions of Python and of the packages the analysis used (``package``, ``version``)."""
    rows = [("python", platform.python_version())]
    for pkg in (
        "ptanalytics",
        "numpy",
        "pandas",
        "scipy",
        "statsmodels",
        "matplotlib",
        "pyarrow",
        "papermill",
        "nbconvert",
    ):
        try:
            rows.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            rows.append((pkg, "not installed"))
    return pd.DataFrame(rows, columns=["package", "version"])


class Disclosure:
    """Every count a report publishes, linked through the patients it counts.

    Register tables (:meth:`add_table`, :meth:`link_table`) and counts quoted in sentences
    (:meth:`add`), then :meth:`protect` once: primary and complementary suppression run over all
    of them together (:func:`ptanalytics.privacy.complementary_suppression`), so that no count
    below ``min_cell`` can be derived from a row's total, a linked table or a percentage.
    :meth:`table` and :meth:`count` then give what may be shown: ``"<min_cell"`` for a small
    count, ``"suppressed"`` for a complementary one and for what derives from either.

    Parameters
    ----------
    patients : sequence of str
        The population every count is over (patient ids).
    min_cell : int
        The smallest count that may be shown.
    """

    def __init__(self, patients, *, min_cell: int = 11):
        self.index = pd.Index(pd.Series(patients, dtype="string"))
        self.min_cell = int(min_cell)
        self._cells: dict = {}
        self._values: dict = {}
        self._tables: dict = {}
        self._status: dict | None = None

    def _mask(self, ids) -> np.ndarray:
        return np.asarray(self.index.isin(pd.Series(list(ids), dtype="string")), dtype=bool)

    def add(self, key, ids, value: int | None = None) -> None:
        """Register one published count: the patients (ids) it counts; ``value`` is checked."""
        mask = self._mask(ids)
        if value is not None and int(mask.sum()) != int(value):
            raise ConfigError(
                f"count {key!r} is {value} but its patients number {int(mask.sum())}; "
                "the report's disclosure control needs the exact set of patients it counts."
            )
        self._cells[key] = mask
        self._values[key] = int(mask.sum())
        self._status = None

    def add_table(self, name: str, table: pd.DataFrame, masks: dict, derived=None) -> None:
        """Register a table: ``masks`` maps ``(row position, column)`` to the patients counted."""
        for (row, col), ids in masks.items():
            self.add((name, row, col), ids, value=table[col].iloc[row])
        self._tables[name] = (table.reset_index(drop=True), dict(derived or {}))

    def link_table(
        self,
        name: str,
        table: pd.DataFrame,
        frame: pd.DataFrame,
        *,
        keys: list[str],
        counts: dict[str, str | None],
        derived: dict[str, list[str]] | None = None,
        patient: str = "patient_id",
    ) -> None:
        """Register a table of counts of ``frame``'s rows grouped by ``keys``.

        ``counts`` maps each count column to the boolean column of ``frame`` that a row must
        have True to be counted (None: every row of the group). ``derived`` maps a column
        computed from counts (proportion, interval) to the count columns it comes from.
        """

        def key_of(df):
            cols = [df[k].astype("string").fillna("<missing>").astype(object) for k in keys]
            return list(zip(*cols, strict=True))

        table = table.reset_index(drop=True)
        groups: dict = {}
        for pos, k in enumerate(key_of(frame)):
            groups.setdefault(k, []).append(pos)
        masks = {}
        for row, k in enumerate(key_of(table)):
            part = frame.iloc[groups.get(k, [])]
            for col, flag in counts.items():
                sel = part if flag is None else part[part[flag].fillna(False).astype(bool)]
                masks[(row, col)] = sel[patient]
        self.add_table(name, table, masks, derived)

    def protect(self, keep=()) -> dict:
        """Decide every count's fate (``keep``: keys shown elsewhere regardless)."""
        self._status = complementary_suppression(self._cells, min_cell=self.min_cell, keep=keep)
        return self._status

    def _fate(self, key) -> str:
        if self._status is None:
            self.protect()
        return self._status[key]

    def label(self, fate: str) -> str:
        return f"<{self.min_cell}" if fate == PRIMARY else "suppressed"

    def count(self, key, fmt: str = "{:,}") -> str:
        """A registered count as it may be printed in a sentence."""
        fate = self._fate(key)
        if fate in (PRIMARY, SECONDARY):
            return "fewer than " + str(self.min_cell) if fate == PRIMARY else "a suppressed number"
        return fmt.format(self._values[key])

    def shown(self, key) -> bool:
        return self._fate(key) not in (PRIMARY, SECONDARY)

    def table(self, name: str) -> pd.DataFrame:
        """The table as it may be shown."""
        table, derived = self._tables[name]
        out = table.astype(object).copy()
        for key in self._cells:
            if not (isinstance(key, tuple) and len(key) == 3 and key[0] == name):
                continue
            _, row, col = key
            fate = self._fate(key)
            if fate in (PRIMARY, SECONDARY):
                out.iloc[row, out.columns.get_loc(col)] = self.label(fate)
                for dcol, sources in derived.items():
                    if col in sources:
                        out.iloc[row, out.columns.get_loc(dcol)] = "suppressed"
        return out

    def html(self, name: str, **kwargs) -> str:
        """The shown table as escaped HTML."""
        return self.table(name).to_html(index=False, na_rep="", escape=True, **kwargs)


def _table_one_counts(cohort: Cohort) -> tuple[pd.DataFrame, dict]:
    pts = cohort.patients
    total = len(pts)
    ids = pts["patient_id"]
    rows = [{"characteristic": "patients", "level": "", "n": total, "percent": 100.0}]
    masks = {(0, "n"): ids}
    for col in ("sex", "chronicity", "guided_weeks", "arm"):
        if col not in pts or pts[col].isna().all():
            continue
        values = pts[col].astype("string").fillna("missing")
        counts = values.value_counts()
        counts = counts.sort_index(key=lambda idx: [(len(v), v) for v in idx])
        for level, n in counts.items():
            masks[(len(rows), "n")] = ids[values == level]
            rows.append(
                {
                    "characteristic": col.replace("_", " "),
                    "level": str(level),
                    "n": int(n),
                    "percent": round(100 * n / total, 1) if total else 0.0,
                }
            )
    return pd.DataFrame(rows), masks


def _table_one_means(cohort: Cohort, min_cell: int) -> list[tuple[str, str, str]]:
    pts = cohort.patients
    extra = []
    for name, s in [("age, years", pts["age"] if "age" in pts else pd.Series(dtype=float))]:
        s = pd.to_numeric(s, errors="coerce").dropna()
        if len(s) >= max(min_cell, 2):
            extra.append((name, "mean (SD)", f"{s.mean():.1f} ({s.std():.1f})"))
    scores = timepoint_scores(cohort, instruments=("NPRS", "ODI"))
    for inst in ("NPRS", "ODI"):
        col = f"{inst.lower()}_baseline"
        s = scores[col].dropna() if col in scores else pd.Series(dtype=float)
        if len(s) >= max(min_cell, 2):
            extra.append((f"baseline {inst}", "mean (SD)", f"{s.mean():.1f} ({s.std():.1f})"))
    return extra


def table_one(
    cohort: Cohort, *, min_cell: int = 11, disclosure: Disclosure | None = None
) -> pd.DataFrame:
    """Baseline characteristics (Table 1) with small counts suppressed.

    Counts from 1 to ``min_cell - 1`` are shown as ``<min_cell``, and complementary counts as
    ``suppressed`` so that none can be derived from the patients total; means are shown only
    over at least ``min_cell`` patients (and two). With ``disclosure``, the table is registered
    there (as ``"table_one"``) so that its suppression is linked with the report's other tables.

    Returns
    -------
    pandas.DataFrame
        ``characteristic``, ``level``, ``n`` and ``percent`` for sex, chronicity, planned
        guided weeks and arm, and ``mean (SD)`` rows (in ``n``) for age and baseline NPRS / ODI.
    """
    own = disclosure is None
    disc = Disclosure(cohort.patients["patient_id"], min_cell=min_cell) if own else disclosure
    if "table_one" not in disc._tables:
        table, masks = _table_one_counts(cohort)
        disc.add_table("table_one", table, masks, derived={"percent": ["n"]})
    if own:
        disc.protect(keep=[("table_one", 0, "n")])
    out = disc.table("table_one")
    for name, level, value in _table_one_means(cohort, disc.min_cell):
        out.loc[len(out)] = {"characteristic": name, "level": level, "n": value, "percent": ""}
    return out


def _group_table(frame: pd.DataFrame, by: str, order, name: str) -> pd.DataFrame:
    counts = frame[by].value_counts()
    if order is not None:
        counts = counts.reindex([o for o in order if o in counts.index])
    return counts.rename_axis(name).reset_index(name="patients")


def report_disclosure(
    cohort: Cohort,
    summary: pd.DataFrame,
    *,
    group: str | None,
    min_cell: int = 11,
    timepoint: str = "followup",
) -> tuple[Disclosure, dict]:
    """The report's linked count tables, registered in one :class:`Disclosure` and protected.

    Tables (names): ``table_one``; ``timepoints`` (observed / missing per instrument,
    timepoint and group); ``bands`` and ``trajectories`` (with sessions); ``itt`` and
    ``completers`` (responders); ``mi`` (multiple imputation); ``lengths`` (planned vs actual
    guided length). Every count is linked to the others through the patients it counts, so a
    suppressed count cannot be recovered from a total, another table or a percentage.

    Returns
    -------
    (Disclosure, dict)
        The protected disclosure, and the raw inputs the notebook also needs (``flags`` per
        analysis, ``assessments``).
    """
    from ptanalytics.metrics.responders import flag_responders, responder_table
    from ptanalytics.metrics.timepoints import (
        TIMEPOINT_LABELS,
        assessment_timepoints,
        timepoint_counts,
    )

    ids = cohort.patients["patient_id"]
    disc = Disclosure(ids, min_cell=min_cell)
    t1, masks = _table_one_counts(cohort)
    disc.add_table("table_one", t1, masks, derived={"percent": ["n"]})
    keys = [group] if group else []
    extra: dict = {}

    assessments = assessment_timepoints(cohort)
    if group:
        assessments = assessments.merge(summary[["patient_id", group]], on="patient_id", how="left")
    counts = timepoint_counts(assessments, by=group).rename(
        columns={"with_target": "with a target"}
    )
    frame = assessments.assign(
        timepoint=assessments["timepoint"].map(TIMEPOINT_LABELS),
        _target=assessments["target_day"].notna(),
        _obs=assessments["observed"].astype(bool),
    )
    frame["_missing"] = ~frame["_obs"]
    disc.link_table(
        "timepoints",
        counts,
        frame,
        keys=["instrument", "timepoint", *keys],
        counts={
            "patients": None,
            "with a target": "_target",
            "observed": "_obs",
            "missing": "_missing",
        },
    )
    extra["assessments"] = assessments

    if len(cohort.sessions) > 0 and "attendance_band" in summary:
        bands = _group_table(
            summary, "attendance_band", ["low", "medium", "high"], "attendance band"
        )
        bands["percent"] = (100 * bands["patients"] / max(len(summary), 1)).round(1)
        frame = summary.rename(columns={"attendance_band": "attendance band"})
        disc.link_table(
            "bands",
            bands,
            frame,
            keys=["attendance band"],
            counts={"patients": None},
            derived={"percent": ["patients"]},
        )
        traj = _group_table(summary, "adherence_trajectory", None, "trajectory")
        frame = summary.rename(columns={"adherence_trajectory": "trajectory"})
        disc.link_table("trajectories", traj, frame, keys=["trajectory"], counts={"patients": None})

    flags = {}
    for analysis in ("itt", "completers"):
        f = flag_responders(summary, timepoint=timepoint, analysis=analysis)
        f = f.assign(_missing=~f["observed"].astype(bool), _resp=f["responder"].astype(bool))
        flags[analysis] = f
        table = responder_table(f, by=group).drop(columns=["definition", "timepoint", "analysis"])
        if not keys:
            f = f.assign(_all="all")
            table.insert(0, "_all", "all")
        disc.link_table(
            analysis,
            table,
            f,
            keys=keys or ["_all"],
            counts={"n": None, "responders": "_resp", "missing_followup": "_missing"},
            derived={c: ["n", "responders"] for c in ("proportion", "ci_low", "ci_high")},
        )
        if not keys:
            disc._tables[analysis] = (
                disc._tables[analysis][0].drop(columns="_all"),
                disc._tables[analysis][1],
            )
    extra["flags"] = flags

    if "guided_weeks" in summary and "guided_weeks_actual" in summary:
        s = summary.dropna(subset=["guided_weeks", "guided_weeks_actual"])
        if len(s):
            s = s.assign(
                planned=s["guided_weeks"].astype(int),
                _ext=s["guided_weeks_actual"] > s["guided_weeks"],
                _short=s["guided_weeks_actual"] < s["guided_weeks"],
            )
            lengths = (
                s.groupby("planned")
                .agg(
                    n=("patient_id", "size"),
                    mean_actual=("guided_weeks_actual", "mean"),
                    extended=("_ext", "sum"),
                    shortened=("_short", "sum"),
                    mean_outcome=(f"nprs_change_{timepoint}", "mean"),
                )
                .reset_index()
                .round(2)
            )
            for c in ("n", "extended", "shortened"):
                lengths[c] = lengths[c].astype(int)
            disc.link_table(
                "lengths",
                lengths,
                s,
                keys=["planned"],
                counts={"n": None, "extended": "_ext", "shortened": "_short"},
                derived={"mean_actual": ["n"], "mean_outcome": ["n"]},
            )
    return disc, extra


def model_patients(summary: pd.DataFrame, outcome: str, adherence: str) -> pd.Series:
    """Patient ids of the complete cases a dose-response fit uses (for its quoted n)."""
    from ptanalytics.models.outcomes import DEFAULT_COVARIATES, _usable_covariates

    covs = _usable_covariates(summary, DEFAULT_COVARIATES)
    cols = [outcome, adherence, *(c[2:-1] if c.startswith("C(") else c for c in covs)]
    return summary.dropna(subset=cols)["patient_id"]


def mi_for_report(mi: pd.DataFrame, disclosure: Disclosure, *, group: str | None) -> pd.DataFrame:
    """The multiple-imputation table with its counts as the ITT table shows them.

    Its ``n`` and ``n_imputed`` count the same patients as the ITT table's ``n`` and
    ``missing_followup`` (checked), so they share their suppression; the pooled proportion and
    its interval are blanked where ``n`` is hidden. A row that matches no ITT row shows no count.
    """
    raw, _ = disclosure._tables["itt"]
    shown = disclosure.table("itt")
    keys = [group] if group else []
    cols = [*keys, "n", "n_imputed", "estimate", "ci_low", "ci_high"]
    out = mi[cols].round(3).astype(object).reset_index(drop=True)
    for i in range(len(out)):
        if keys:
            match = np.flatnonzero(raw[group].astype(str).to_numpy() == str(out.loc[i, group]))
        else:
            match = np.array([0])
        same = len(match) and (int(mi["n"].iloc[i]), int(mi["n_imputed"].iloc[i])) == (
            int(raw["n"].iloc[int(match[0])]),
            int(raw["missing_followup"].iloc[int(match[0])]),
        )
        if not same:  # not the ITT table's patients: show no count rather than an unlinked one
            out.loc[i, ["n", "n_imputed"]] = "suppressed"
            continue
        j = int(match[0])
        out.loc[i, "n"] = shown["n"].iloc[j]
        out.loc[i, "n_imputed"] = shown["missing_followup"].iloc[j]
        if not disclosure.shown(("itt", j, "n")):
            out.loc[i, ["estimate", "ci_low", "ci_high"]] = "suppressed"
    return out


def small_factor_terms(cohort: Cohort, summary: pd.DataFrame, *, min_cell: int = 11) -> list[str]:
    """Model terms to withhold: factor levels and co-interventions with fewer than ``min_cell``
    patients on either side (the estimate would describe a handful of patients)."""
    out = []
    n = len(summary)
    for col in ("sex", "chronicity"):
        if col in summary:
            for level, k in summary[col].value_counts().items():
                if k < min_cell or n - k < min_cell:
                    out.append(f"C({col})[T.{level}]")
    co = cohort.cointerventions
    if len(co) and "kind" in co:
        for kind, k in co.groupby("kind")["patient_id"].nunique().items():
            if k < min_cell or n - k < min_cell:
                out.append(f"co_{kind}")
    return out


def mathtext_safe(text) -> str:
    """Text from data made safe for a matplotlib label (``$`` would start mathtext)."""
    return str(text).replace("\\", "\\\\").replace("$", r"\$")


def km_for_report(km: pd.DataFrame, *, min_cell: int = 11) -> pd.DataFrame:
    """Kaplan-Meier rows that may be drawn: groups of at least ``min_cell`` patients, each curve
    cut where fewer than ``min_cell`` remain at risk; group names made safe for matplotlib."""
    out = []
    for _, part in km.groupby("group", sort=False, observed=True):
        size = int(part["n_at_risk"].max()) if len(part) else 0
        if size < min_cell:
            continue
        keep = (part["n_at_risk"] >= min_cell) | (part.index == part.index[0])
        out.append(part[keep])
    result = pd.concat(out) if out else km.iloc[:0]
    result = result.assign(group=result["group"].map(mathtext_safe))
    result.attrs = dict(km.attrs)
    return result


def _stable_notebook(path: Path) -> None:
    """Make an executed notebook reproducible: cell ids from the cell's position (nbformat and
    papermill draw random ones) and no execution timestamps, so the same cohort and options give
    byte-identical HTML."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"
        cell.metadata.pop("execution", None)
        cell.metadata.get("papermill", {}).clear()
    nb.metadata.get("papermill", {}).clear()
    nbformat.write(nb, str(path))


def _notebook_template() -> Path:
    return Path(str(resources.files("ptanalytics").joinpath("report/report.ipynb")))


_EXTERNAL = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.I)
_HEADING = re.compile(r"<h2 id=\"([^\"]+)\">(.*?)<a class=\"anchor-link\"", re.S)


def _self_contained(text: str, title: str) -> str:
    """Drop network scripts (MathJax, require.js; the report needs neither) and add a TOC."""
    text = _EXTERNAL.sub("", text)
    text = re.sub(r"<link[^>]*href=\"https?://[^\"]*\"[^>]*>", "", text, flags=re.I)
    headings = _HEADING.findall(text)
    if headings:
        items = "".join(
            f'<li><a href="#{hid}">{re.sub("<[^>]+>", "", label).strip()}</a></li>'
            for hid, label in headings
        )
        toc = (
            '<nav id="toc" aria-label="Contents" style="font-family: sans-serif; '
            'margin: 1em 2em"><h2>Contents</h2><ul style="list-style: none; padding-left: 0">'
            f"{items}</ul></nav>"
        )
        text = (
            text.replace("<main>", f"<main>{toc}", 1)
            if "<main>" in text
            else text.replace("<body>", f"<body>{toc}", 1)
        )
    return re.sub(
        r"<title>.*?</title>", f"<title>{html.escape(title)}</title>", text, count=1, flags=re.S
    )


def render_report(
    data: str | Path | None = None,
    out: str | Path | None = None,
    *,
    title: str = "ptanalytics report",
    min_cell: int = 11,
    show_code: bool = False,
    progress: bool = True,
) -> Path:
    """Execute the report notebook on a cohort and write a self-contained HTML file.

    Parameters
    ----------
    data : path, optional
        A cohort folder; the default synthetic cohort when not given.
    out : path, optional
        The HTML file (default ``reports/report.html``).
    title : str
        Report title.
    min_cell : int
        Counts below this are shown as ``<min_cell`` (default 11).
    show_code : bool
        Keep the code cells in the HTML.
    progress : bool
        Show papermill's progress bar on the terminal.

    Returns
    -------
    Path
        The HTML file written.

    Raises
    ------
    CohortFormatError
        Before anything runs, when ``out`` is a folder, a symbolic link (refused, not followed),
        one of a cohort's own files, or an existing file that is not a ptanalytics report. The
        file is written to a temporary sibling and renamed, so a kill leaves the old report.
    """
    import papermill as pm
    from nbconvert import HTMLExporter

    if min_cell < 1:
        raise ConfigError(f"min_cell={min_cell}; allowed: a whole number >= 1.")
    if data is not None and not (Path(data) / "cohort.json").is_file():
        raise ConfigError(
            f"{data}: not a cohort folder (no cohort.json). Fix: point --data to a "
            f"folder written by 'ptanalytics ingest' or 'simulate'."
        )
    dest = Path(out) if out else Path("reports") / "report.html"
    report_destination(dest)  # refused before the notebook runs: see ptanalytics.report._file
    with tempfile.TemporaryDirectory() as tmp:
        executed = Path(tmp) / "report.ipynb"
        pm.execute_notebook(
            str(_notebook_template()),
            str(executed),
            parameters={
                "data_dir": None if data is None else str(Path(data).resolve()),
                "title": title,
                "min_cell": int(min_cell),
            },
            kernel_name="python3",
            progress_bar=progress,
            cwd=tmp,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
        )
        _stable_notebook(executed)
        exporter = HTMLExporter(template_name="lab")
        exporter.exclude_input = not show_code
        exporter.exclude_input_prompt = True
        exporter.exclude_output_prompt = True
        body, _ = exporter.from_filename(str(executed))
    write_report(dest, _self_contained(body, title))  # temporary file beside dest, renamed
    if progress:
        print(f"report written to {dest}", file=sys.stderr)
    return dest
