"""The exercise catalogue: every exercise ptanalytics knows, its category and its default dose.

The flexibility stretches and their doses come from the seed article (a physical-therapy clinic's
"Physical Therapy Back Exercises" page); the other categories the article names without listing
(core strengthening, lumbar stabilisation, aerobic, posture training) are filled with standard
exercises whose doses are ptanalytics defaults. Each row says which, in ``source``.

Where the article gives a range ("hold for 20 to 30 seconds", "15-20 times"), the default dose is
the upper end and the lower end is kept in ``hold_s_min`` / ``reps_min``.
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources

import pandas as pd

from ptanalytics.vocab import CATEGORIES

__all__ = ["CATEGORIES", "exercise_catalogue", "prescribed_minutes"]


_SECONDS_PER_REP = 4  # a repetition without a hold
_TRANSITION_S = 5  # added to every hold (getting in and out of position)
_REST_BETWEEN_SETS_S = 30


@cache
def _catalogue() -> pd.DataFrame:
    with resources.files("ptanalytics").joinpath("data/exercises.csv").open("rb") as fh:
        cat = pd.read_csv(fh)
    cat["category"] = pd.Categorical(cat["category"], categories=list(CATEGORIES))
    for col in ("sets", "reps", "reps_min", "hold_s", "hold_s_min", "sides"):
        cat[col] = cat[col].astype("int16")
    cat["duration_min"] = cat["duration_min"].astype("float64")
    return cat


def exercise_catalogue() -> pd.DataFrame:
    """Return the exercise catalogue (a fresh copy; edit it freely).

    Returns
    -------
    pandas.DataFrame
        One row per exercise, in a fixed order:

        - ``exercise`` (str): snake_case identifier used in every table.
        - ``name`` (str): display name.
        - ``category`` (categorical): one of :data:`CATEGORIES`.
        - ``sets`` (int): default sets per session.
        - ``reps`` (int): default repetitions (or holds) per side per set; upper end of the
          source's range.
        - ``reps_min`` (int): lower end of the source's range (equal to ``reps`` when no range).
        - ``hold_s`` (int): default hold in seconds (0 for moving exercises).
        - ``hold_s_min`` (int): lower end of the source's hold range.
        - ``sides`` (int): 2 when done on each side, else 1.
        - ``duration_min`` (float): minutes one prescribed bout takes (see
          :func:`prescribed_minutes`; aerobic bouts are a fixed time).
        - ``source`` (str): where the exercise and its dose come from.
    """
    return _catalogue().copy()


def prescribed_minutes(sets: int, reps: int, hold_s: int, sides: int) -> float:
    """Minutes one bout of a strength or stretching exercise takes.

    ``sets * reps * sides`` repetitions of ``hold_s + 5`` seconds each (4 seconds when there is no
    hold), plus 30 seconds rest between sets, rounded up to the next half minute. Aerobic exercises
    are prescribed by time and do not use this formula.
    """
    per_rep = hold_s + _TRANSITION_S if hold_s > 0 else _SECONDS_PER_REP
    seconds = sets * reps * sides * per_rep + (sets - 1) * _REST_BETWEEN_SETS_S
    return math.ceil(seconds / 30) / 2


def catalogue_markdown() -> str:
    """The exercise catalogue as a Markdown page (docs/exercise_catalogue.md)."""
    cat = exercise_catalogue()
    lines = [
        "# Exercise catalogue",
        "",
        "<!-- Generated from src/ptanalytics/data/exercises.csv by `make docs`; "
        "do not edit by hand. -->",
        "",
        "Every exercise ptanalytics knows, its category and its default dose per session.",
        "The flexibility stretches and their doses come from the seed article (a",
        "physical-therapy clinic's page *Physical Therapy Back Exercises*, which names four",
        "intervention categories and lists nine stretches); the other categories are filled",
        "with standard exercises whose doses are ptanalytics defaults, as each row's source",
        "says. Where the article gives a range the default is its upper end and the lower end",
        "is in `reps_min` / `hold_s_min`.",
        "",
        "`reps` counts repetitions (or holds) per side per set; `duration_min` is",
        "`sets x reps x sides x (hold_s + 5 s, or 4 s without a hold) + 30 s between sets`,",
        "rounded up to the half minute; aerobic exercises are prescribed by time.",
        "",
        "| exercise | category | sets | reps (min) | hold s (min) | sides | minutes | source |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in cat.itertuples():
        lines.append(
            f"| `{r.exercise}` ({r.name}) | {r.category} | {r.sets} | {r.reps} ({r.reps_min}) | "
            f"{r.hold_s} ({r.hold_s_min}) | {r.sides} | {r.duration_min:g} | {r.source} |"
        )
    return "\n".join(lines) + "\n"
