# Two commands do everything on a fresh machine: `make report` and `make test`.
# Both create .venv (when missing or when pyproject.toml changed) and install the package with its
# test extras first.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The default synthetic cohort (see README and docs/simulator.md).
DEFAULT_DIR := data/synthetic/default

.PHONY: setup report test lint format data docs bench bench-scale clean

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

## bench: speed and peak memory of simulation, ingest, frames, the report, the mixed model, the
## columnar aggregation, the causal estimators and power by simulation (issue-7 sizes: make
## bench-scale, ~20 minutes).
bench: $(STAMP)
	$(PY) benchmarks/simulate.py
	$(PY) benchmarks/ingest.py
	$(PY) benchmarks/frames.py
	$(PY) benchmarks/report.py
	$(PY) benchmarks/lmm.py --sizes 1000x20,10000x20,50000x20 --statsmodels-max 10000
	$(PY) benchmarks/aggregate.py --sizes 6 7
	$(PY) benchmarks/causal.py
	$(PY) benchmarks/power.py

bench-scale: $(STAMP)
	$(PY) benchmarks/lmm.py
	$(PY) benchmarks/aggregate.py --sizes 6 7 8
	$(PY) benchmarks/simulate.py --disk 10000 100000 1000000

clean:
	rm -rf $(VENV) reports/default-cohort .pytest_cache .ruff_cache
