"""The ``ptanalytics`` command line (see ``ptanalytics --help``).

Exit codes: 0 success; 1 ``--strict`` and rows were quarantined (``validate``: records fail); 2
unusable input, with a one-line message naming the file, the value and the fix; 3 an internal error
(a bug): one line and a hint to rerun with ``--debug``, which prints the full traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import traceback
from pathlib import Path

import pandas as pd

from ptanalytics.cohort.container import TABLE_NAMES
from ptanalytics.cohort.io import check_destination, load_cohort, safe_csv
from ptanalytics.exceptions import ConfigError, PtAnalyticsError
from ptanalytics.ingestion.pipeline import (
    format_ingest_check,
    format_ingest_line,
    format_ingest_summary,
    ingest,
    validate_cohort_dir,
)
from ptanalytics.metrics.describe import describe_cohort
from ptanalytics.privacy.suppression import MIN_CELL
from ptanalytics.simulate import (
    DEFAULT_PATIENTS,
    DEFAULT_SEED,
    SCENARIOS,
    SimulationConfig,
    load_config,
    scenario_config,
    simulate_cohort,
    simulate_to_disk,
)

__all__ = ["main"]

#: Parquet cohorts above this many patients are simulated and written in chunks.
_STREAM_ABOVE = 100_000
#: Patients per chunk when --chunk-patients is not given.
_DEFAULT_CHUNK = 50_000

_SIMULATE_ABOUT = (
    "Simulate a cohort with known ground truth and write it to a folder. Parquet "
    f"cohorts of more than {_STREAM_ABOVE:,} patients, or any with --chunk-patients, are "
    "simulated and written chunk by chunk (each table a folder of Parquet parts), so memory "
    "stays bounded by the chunk; progress goes to stderr."
)
_DEIDENTIFY_ABOUT = (
    "Write a de-identified copy of a cohort: only canonical columns and the "
    "attributes named with --keep-attribute survive; ids and source file names become keyed "
    "pseudonyms; dates move by a per-patient offset; ages >= 90 are top-coded; a k-anonymity "
    "summary over age band, sex, clinic and program length is printed (counts only)."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ptanalytics",
        description="Adherence, exercise-mix and outcome analytics for low-back-pain programs.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="on an internal error (exit 3), print the full traceback",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add_command in (
        _add_simulate,
        _add_summary,
        _add_ingest,
        _add_validate,
        _add_report,
        _add_recovery,
        _add_power,
        _add_deidentify,
    ):
        add_command(sub)
    return parser


# One builder per subcommand (``_add_<command>``): each adds its parser and options and names its
# handler with ``set_defaults(func=...)``, which ``main`` calls. The ``_add_<option>`` helpers add
# an option that several subcommands share, with one wording.


def _command(
    sub, name: str, handler, help_text: str, description: str | None = None
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` whose arguments ``main`` passes to ``handler``."""
    cmd = sub.add_parser(name, help=help_text, description=description)
    cmd.set_defaults(func=handler)
    return cmd


def _add_format(cmd: argparse.ArgumentParser, help_text: str | None = None) -> None:
    cmd.add_argument("--format", choices=("parquet", "csv"), default="parquet", help=help_text)


def _add_overwrite(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--overwrite", action="store_true", help="replace an existing folder")


def _add_config(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--config", type=Path, help="TOML or JSON file of simulation parameters")


def _add_repeatable_name(cmd: argparse.ArgumentParser, flag: str, help_text: str) -> None:
    cmd.add_argument(flag, action="append", default=[], metavar="NAME", help=help_text)


def _add_data(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("data", type=Path, help="cohort folder")


def _add_today(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--today", type=_date, help="reference date for 'in the future' checks")


def _add_simulate(sub) -> None:
    cmd = _command(
        sub, "simulate", _simulate, "simulate a cohort with known ground truth", _SIMULATE_ABOUT
    )
    cmd.add_argument(
        "--patients",
        type=int,
        default=DEFAULT_PATIENTS,
        help=f"number of patients (default {DEFAULT_PATIENTS})",
    )
    cmd.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    cmd.add_argument("--out", required=True, type=Path, help="cohort folder to write")
    _add_format(cmd, help_text="table file format (default parquet)")
    _add_config(cmd)
    cmd.add_argument(
        "--scenario",
        choices=tuple(SCENARIOS),
        help="a named scenario of the simulator (docs/simulator.md#scenarios); not with --config",
    )
    _add_overwrite(cmd)
    cmd.add_argument(
        "--chunk-patients",
        type=int,
        metavar="K",
        help=f"simulate and write K patients at a time, each table as a folder of Parquet parts "
        f"(Parquet only; default {_DEFAULT_CHUNK:,} when --patients exceeds {_STREAM_ABOVE:,}, "
        f"else the whole cohort at once)",
    )


def _add_summary(sub) -> None:
    cmd = _command(sub, "summary", _summary, "print a cohort's sizes, baseline and calibration")
    _add_data(cmd)


def _add_ingest(sub) -> None:
    cmd = _command(
        sub,
        "ingest",
        _ingest,
        "read exports (CSV/TSV, XLSX, Parquet, FHIR), validate, quarantine, write a cohort",
    )
    cmd.add_argument("sources", nargs="+", type=Path, metavar="SOURCE", help="source files")
    cmd.add_argument("--out", type=Path, help="cohort folder to write (required unless --check)")
    cmd.add_argument("--mapping", type=Path, help="mapping file (TOML or YAML)")
    cmd.add_argument("--strict", action="store_true", help="exit 1 when any row was quarantined")
    cmd.add_argument(
        "--check",
        action="store_true",
        help="dry run: show per source what would be read, mapped and quarantined; write nothing",
    )
    _add_format(cmd)
    _add_overwrite(cmd)
    _add_today(cmd)


def _add_validate(sub) -> None:
    cmd = _command(sub, "validate", _validate, "re-check a cohort folder and print the summary")
    _add_data(cmd)
    _add_today(cmd)


def _add_report(sub) -> None:
    cmd = _command(sub, "report", _report, "render the self-contained HTML report of a cohort")
    cmd.add_argument("--data", type=Path, help="cohort folder (default: the default cohort)")
    cmd.add_argument(
        "--out",
        type=Path,
        default=Path("reports") / "report.html",
        help="HTML file to write (default reports/report.html)",
    )
    cmd.add_argument("--title", default="ptanalytics report", help="report title")
    cmd.add_argument(
        "--min-cell",
        type=int,
        default=MIN_CELL,
        help=f"counts below this are shown as <N (default {MIN_CELL})",
    )
    cmd.add_argument("--show-code", action="store_true", help="keep the code in the HTML")
    cmd.add_argument(
        "--active-arm",
        metavar="LEVEL",
        help="the randomised active level of patients.arm: estimate the complier effect of "
        "adherence with the arm as instrument (docs/causal.md)",
    )


def _add_recovery(sub) -> None:
    cmd = _command(
        sub,
        "recovery",
        _recovery,
        "simulate, fit and compare with the truth, R times (the pain model, or causal)",
    )
    cmd.add_argument(
        "--analysis",
        choices=("pain_model", "causal"),
        default="pain_model",
        help="pain_model (default): the mixed model's terms; causal: the complier effect of "
        "simulated encouragement trials and the g-formula's adherence regimes, per scenario, "
        "beside the naive associations",
    )
    cmd.add_argument(
        "--patients", type=int, help="patients per cohort (300; 2,000 with --analysis causal)"
    )
    cmd.add_argument("--replications", type=int, default=200, help="replications (200)")
    cmd.add_argument("--seed", type=int, default=0, help="seed of the replication seeds (0)")
    _add_config(cmd)
    cmd.add_argument("--out", type=Path, help="write the summary (CSV) and the fits beside it")


def _add_power(sub) -> None:
    cmd = _command(
        sub,
        "power",
        _power,
        "power and sample size by simulation for a study design (docs/power.md)",
    )
    cmd.add_argument(
        "--design",
        required=True,
        type=Path,
        help="design file (TOML): kind = two_arm_slope or simulator, and its fields",
    )
    cmd.add_argument(
        "--n", required=True, type=int, nargs="+", metavar="N", help="patients in all, per study"
    )
    cmd.add_argument("--replications", type=int, default=500, help="studies per n (500)")
    cmd.add_argument("--seed", type=int, required=True, help="seed (same seed, same table)")
    cmd.add_argument("--alpha", type=float, default=0.05, help="two-sided level (0.05)")
    cmd.add_argument("--target", type=float, default=0.8, help="target power for the n (0.8)")
    cmd.add_argument(
        "--analysis", help="replace a simulator design's analysis (slope, followup, ...)"
    )
    cmd.add_argument("--workers", type=int, help="local worker processes (every core)")
    cmd.add_argument(
        "--backend", choices=("processes", "dask"), default="processes", help="where to run"
    )
    cmd.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --backend dask: the address of a running Dask scheduler (tcp://host:8786); "
        "without it a local cluster is started",
    )
    cmd.add_argument("--out", type=Path, help="write the power table (CSV)")
    cmd.add_argument("--figure", type=Path, help="write the power curve (PNG)")
    cmd.add_argument("--quiet", action="store_true", help="no progress line")


def _add_deidentify(sub) -> None:
    cmd = _command(
        sub,
        "deidentify",
        _deidentify,
        "drop by default, keyed pseudonyms, date shifts, k-anonymity summary",
        _DEIDENTIFY_ABOUT,
    )
    _add_data(cmd)
    cmd.add_argument("--out", required=True, type=Path, help="de-identified cohort folder")
    cmd.add_argument(
        "--key-file",
        required=True,
        type=Path,
        help="secret key file (mode 0600; 64 hex characters or 'ptanalytics-key v1 hex|base64')",
    )
    cmd.add_argument(
        "--new-key",
        action="store_true",
        help="create the key file (0600) when it does not exist; an existing one is reused",
    )
    _add_overwrite(cmd)
    _add_repeatable_name(
        cmd,
        "--keep-attribute",
        "keep this extra column ('arm' or 'patients.arm'; repeatable); default: none",
    )
    _add_repeatable_name(
        cmd, "--instrument", "accept this outcome instrument besides the known ones (repeatable)"
    )
    cmd.add_argument(
        "--age-band", type=int, metavar="YEARS", help="write ages as bands of YEARS years"
    )
    cmd.add_argument(
        "--merge-clinics-below",
        type=int,
        default=0,
        metavar="N",
        help="merge clinics with fewer than N patients into one",
    )


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from ptanalytics import __version__

        print(__version__)
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except PtAnalyticsError as exc:
        print(f"ptanalytics {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file the command cannot read or write: unusable input
        where = f"{exc.filename}: " if exc.filename else ""
        print(
            f"ptanalytics {args.command}: error: {where}{exc.strerror or type(exc).__name__}. "
            f"Fix: check the path, its permissions and the free disk space.",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"ptanalytics {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # every unexpected error ends in exit 3
        if args.debug:
            traceback.print_exc()
        # The exception's own text may quote input data, so only its type is printed.
        print(
            f"ptanalytics {args.command}: internal error ({type(exc).__name__}); this is a bug "
            f"in ptanalytics, not in your data. Rerun with --debug (ptanalytics --debug "
            f"{args.command} ...) for the traceback, and report it.",
            file=sys.stderr,
        )
        return 3


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _simulate(args) -> int:
    if args.config and args.scenario:
        raise ConfigError(
            f"--config {args.config} and --scenario {args.scenario} were both given. Fix: give "
            "one (a config file can set the scenario's parameters itself)."
        )
    cfg = load_config(args.config) if args.config else SimulationConfig()
    if args.scenario:
        cfg = scenario_config(args.scenario)
    if args.chunk_patients is not None and args.format != "parquet":
        raise ConfigError(
            f"--chunk-patients {args.chunk_patients} writes Parquet parts; --format "
            f"{args.format} was given. Fix: drop --chunk-patients or use --format parquet."
        )
    if args.format == "parquet" and (
        args.chunk_patients is not None or args.patients > _STREAM_ABOVE
    ):
        return _simulate_chunked(args, cfg)
    check_destination(args.out, overwrite=args.overwrite)  # refuse before simulating
    t0 = time.perf_counter()
    print(f"simulating {args.patients} patients (seed {args.seed})...", file=sys.stderr)
    cohort = simulate_cohort(args.patients, seed=args.seed, config=cfg)
    print(f"writing {args.format} to {args.out}...", file=sys.stderr)
    cohort.write(args.out, format=args.format, overwrite=args.overwrite)
    counts = ", ".join(f"{k} {v}" for k, v in cohort.row_counts().items())
    print(f"wrote {args.out} ({counts}) in {time.perf_counter() - t0:.1f} s")
    return 0


def _simulate_chunked(args, cfg: SimulationConfig) -> int:
    chunk = _DEFAULT_CHUNK if args.chunk_patients is None else args.chunk_patients
    check_destination(args.out, overwrite=args.overwrite)  # refuse before simulating
    print(
        f"simulating {args.patients:,} patients (seed {args.seed}) in chunks of {chunk:,}, "
        f"writing parquet parts to {args.out}...",
        file=sys.stderr,
    )

    def progress(step: dict) -> None:
        print(
            f"  chunk {step['chunk']}/{step['n_chunks']}: {step['patients_done']:,} of "
            f"{step['n_patients']:,} patients, {step['rows']:,} rows, {step['seconds']:.1f} s",
            file=sys.stderr,
            flush=True,
        )

    t0 = time.perf_counter()
    out = simulate_to_disk(
        args.out,
        args.patients,
        seed=args.seed,
        config=cfg,
        chunk_patients=chunk,
        overwrite=args.overwrite,
        progress=progress,
    )
    meta = json.loads((out / "cohort.json").read_text(encoding="utf-8"))
    counts = ", ".join(f"{k} {meta['row_counts'][k]}" for k in TABLE_NAMES)
    print(f"wrote {out} ({counts}) in {time.perf_counter() - t0:.1f} s")
    return 0


def _ingest(args) -> int:
    if args.out is None and not args.check:
        raise ConfigError(
            "--out is missing: name the cohort folder to write. Fix: add --out DIR, or --check "
            "for a dry run that writes nothing."
        )
    print(f"ingesting {len(args.sources)} file(s)...", file=sys.stderr)
    result = ingest(args.sources, mapping=args.mapping, today=args.today)
    for warning in result.warnings:
        if warning.startswith("TABLE EMPTIED"):
            print(f"ptanalytics ingest: WARNING: {warning}", file=sys.stderr)
    if args.check:
        print(format_ingest_check(result))
        print(f"checked, nothing written: {format_ingest_line(result)}")
    else:
        inputs = [*args.sources, *([args.mapping] if args.mapping else [])]
        result.cohort.write(args.out, format=args.format, overwrite=args.overwrite, inputs=inputs)
        print(format_ingest_summary(result))
        print(
            f"wrote {args.out}: {format_ingest_line(result)}"
            + (f" (quarantine in {args.out / 'quarantine'})" if result.quarantined else "")
        )
    return 1 if args.strict and result.quarantined else 0


def _validate(args) -> int:
    result = validate_cohort_dir(args.data, today=args.today)
    print(format_ingest_summary(result))
    if result.quarantined:
        print(f"{result.quarantined} record(s) fail validation")
        return 1
    print("all records pass validation")
    return 0


def _deidentify(args) -> int:
    from ptanalytics.privacy.deidentification import deidentify_directory

    existed = args.key_file.expanduser().exists()
    report = deidentify_directory(
        args.data,
        args.out,
        args.key_file,
        overwrite=args.overwrite,
        create_key=args.new_key,
        keep_attributes=args.keep_attribute,
        instruments=args.instrument,
        age_band=args.age_band,
        merge_clinics_below=args.merge_clinics_below,
    )
    if args.new_key:
        state = "existing key file reused" if existed else "new key file written (mode 0600)"
        print(f"{args.key_file}: {state}; keep it secret and apart from the data", file=sys.stderr)
    print(report.summary())
    if report.smallest_class is not None and report.smallest_class < 5:
        print(
            f"ptanalytics deidentify: WARNING: smallest equivalence class k = "
            f"{report.smallest_class} (< 5); see the options above",
            file=sys.stderr,
        )
    print(f"wrote {args.out}")
    return 0


def _report(args) -> int:
    from ptanalytics.report import render_report

    if 1 <= args.min_cell < MIN_CELL:
        print(
            f"ptanalytics report: WARNING: --min-cell {args.min_cell} is below {MIN_CELL}, "
            f"the usual rule for health data: counts from {args.min_cell} patients up will be shown"
            + (" (suppression is off)." if args.min_cell == 1 else "."),
            file=sys.stderr,
        )
    path = render_report(
        args.data,
        args.out,
        title=args.title,
        min_cell=args.min_cell,
        show_code=args.show_code,
        active_arm=args.active_arm,
    )
    print(path.resolve())
    return 0


def _recovery(args) -> int:
    from ptanalytics.studies.causal_recovery import causal_recovery
    from ptanalytics.studies.recovery import recovery

    if args.analysis == "causal":
        if args.config:
            raise ConfigError(
                "--analysis causal runs the named scenarios; --config is for the pain model. "
                "Fix: drop --config."
            )
        summary, fits = causal_recovery(args.patients or 2000, args.replications, seed=args.seed)
    else:
        cfg = load_config(args.config) if args.config else None
        summary, fits = recovery(
            args.patients or 300, args.replications, seed=args.seed, config=cfg
        )
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(summary.round(4).to_string(index=False))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        safe_csv(summary).to_csv(args.out, index=False, float_format="%.6g")
        safe_csv(fits).to_csv(
            args.out.with_name(args.out.stem + "_fits.csv"), index=False, float_format="%.6g"
        )
        print(f"wrote {args.out}")
    return 0


def _power(args) -> int:
    from ptanalytics.studies.power import (
        check_outputs,
        power,
        write_power_figure,
        write_power_table,
    )

    check_outputs(table=args.out, figure=args.figure)  # refused before the run, not after
    if args.scheduler and args.backend != "dask":
        raise ConfigError("--scheduler is a Dask scheduler's address: add --backend dask.")
    client = None
    if args.scheduler:
        from ptanalytics.studies._pool import connect

        client = connect(args.scheduler)
    try:
        result = power(
            args.design,
            n=args.n,
            replications=args.replications,
            alpha=args.alpha,
            seed=args.seed,
            analysis=args.analysis,
            workers=args.workers,
            backend=args.backend,
            client=client,
            progress=not args.quiet,
        )
    finally:
        if client is not None:
            client.close()
    shown = ["n", "replications", "failed", "power", "mc_se", "ci_low", "ci_high"]
    if result.table["analytic_power"].notna().any():
        shown.append("analytic_power")
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(result.table[shown].round(4).to_string(index=False))
    needed = result.n_for(args.target)
    if needed == needed:
        print(f"n for power {args.target:g}: about {needed:.0f} patients (linear interpolation)")
    else:
        print(f"n for power {args.target:g}: not bracketed by the n asked; add larger or smaller n")
    for note in result.notes:
        print(f"note: {note}")
    if args.out:
        print(f"wrote {write_power_table(result, args.out)}")
    if args.figure:
        print(f"wrote {write_power_figure(result, args.figure, target=args.target)}")
    return 0


def _summary(args) -> int:
    cohort = load_cohort(args.data)
    table = describe_cohort(cohort)
    print(f"Cohort {args.data} ({cohort.metadata.get('source', 'unknown source')})")
    for section, part in table.groupby("section", sort=False):
        print(f"\n{section}:")
        for row in part.itertuples():
            counts = section in ("size", "timepoints")
            value = f"{row.value:,.0f}" if counts else f"{row.value:.3f}"
            if pd.isna(row.target_low):
                target = ""
            elif row.target_low == row.target_high:
                target = f"   (target {row.target_low:.3g})"
            else:
                target = f"   (target {row.target_low:.3g}-{row.target_high:.3g})"
            print(f"  {row.metric:<45} {value:>12}{target}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
