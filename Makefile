# Two commands do everything on a fresh machine: `make report` and `make test`.
# Both create .venv (when missing or when pyproject.toml changed) and install the package with its
# test extras first.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The default synthetic cohort (see README and docs/simulator.md).
DEFAULT_DIR := data/synthetic/default

.PHONY: setup report test lint format data docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

## report: render the default synthetic cohort's HTML report (reports/report.html).
report: $(STAMP)
	$(VENV)/bin/ptanalytics report --out reports/report.html

## test: lint, then the whole test suite and every notebook (nbval, in-cell asserts).
test: $(STAMP) lint
	MPLBACKEND=Agg $(PY) -m pytest tests notebooks --nbval-lax

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks notebooks
	$(VENV)/bin/ruff format --check src tests benchmarks notebooks

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests benchmarks notebooks
	$(VENV)/bin/ruff format src tests benchmarks notebooks

## data: regenerate the committed default synthetic cohort (300 patients, seed 20240108, CSV).
data: $(STAMP)
	$(VENV)/bin/ptanalytics simulate --patients 300 --seed 20240108 --out $(DEFAULT_DIR) \
		--format csv --overwrite

## docs: regenerate docs/data_dictionary.md and the parameter table of docs/simulator.md.
docs: $(STAMP)
	$(PY) -m ptanalytics._docgen .

## bench: simulation and ingest speed and peak memory.
bench: $(STAMP)
	$(PY) benchmarks/simulate.py
	$(PY) benchmarks/ingest.py
	$(PY) benchmarks/frames.py
	$(PY) benchmarks/report.py

clean:
	rm -rf $(VENV) reports/default-cohort .pytest_cache .ruff_cache
