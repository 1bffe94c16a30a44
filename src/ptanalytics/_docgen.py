"""Regenerate the generated parts of docs/ (``make docs``): the data dictionary, the exercise
catalogue and the table of simulation parameters in docs/simulator.md (between its markers)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ptanalytics.cohort.catalogue import catalogue_markdown
from ptanalytics.cohort.schema import data_dictionary_markdown
from ptanalytics.simulate.config import parameters_markdown

START, END = "<!-- parameters:start -->", "<!-- parameters:end -->"


def main(root: Path) -> None:
    docs = root / "docs"
    (docs / "data_dictionary.md").write_text(data_dictionary_markdown(), encoding="utf-8")
    (docs / "exercise_catalogue.md").write_text(catalogue_markdown(), encoding="utf-8")
    sim = root / "docs" / "simulator.md"
    text = sim.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{sim}: markers {START} ... {END} not found")
    block = f"{START}\n{parameters_markdown()}{END}"
    sim.write_text(pattern.sub(lambda _: block, text), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd())
