"""Ingest real exports: readers (CSV, Excel, Parquet), FHIR, mappings, validation, pipeline."""

from ptanalytics.ingestion.mapping import load_mapping
from ptanalytics.ingestion.pipeline import (
    IngestResult,
    format_ingest_summary,
    ingest,
    validate_cohort_dir,
)

__all__ = ["IngestResult", "format_ingest_summary", "ingest", "load_mapping", "validate_cohort_dir"]
