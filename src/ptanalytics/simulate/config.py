"""Parameters of the cohort simulator: defaults, documentation and validation in one place.

Every parameter is a field of :class:`SimulationConfig` with its default, its allowed range and a
one-line meaning; ``docs/simulator.md`` lists them (its table is generated from here by
``make docs``). Build a config from keyword arguments, a mapping, or a TOML /
JSON file; anything unknown, of the wrong type or out of range raises :class:`ConfigError` naming
the parameter, the value and the allowed range.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import hashlib
import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ptanalytics.cohort.catalogue import CATEGORIES, exercise_catalogue
from ptanalytics.cohort.schema import CHRONICITIES, COINTERVENTION_KINDS
from ptanalytics.exceptions import ConfigError
from ptanalytics.vocab import TRAJECTORY_CLASSES

__all__ = ["TRAJECTORIES", "SimulationConfig", "load_config"]

TRAJECTORIES: tuple[str, ...] = TRAJECTORY_CLASSES


def _p(default, lo, hi, doc, group, *, keys=None, sums_to_one=False, integer=False):
    """A parameter: default, closed range [lo, hi] (of the value or of each mapping value)."""
    meta = {
        "lo": lo,
        "hi": hi,
        "doc": doc,
        "group": group,
        "keys": keys,
        "sums_to_one": sums_to_one,
        "integer": integer,
    }
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


_COHORT, _BASE, _PROG, _ADH, _DROP, _PAIN, _CO = (
    "cohort",
    "baseline",
    "program",
    "adherence",
    "dropout",
    "pain",
    "co-interventions",
)


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    """All generating parameters of :func:`ptanalytics.simulate_cohort` (see docs/simulator.md).

    Probabilities are on the 0-1 scale; "logit" shifts are on the log-odds scale; pain is in NPRS
    points (0-10); weeks count from enrolment (week 0 starts on the enrolment day).
    """

    # -- cohort
    start_date: str = _p("2024-01-08", None, None, "First possible enrolment date (ISO).", _COHORT)
    recruitment_days: int = _p(
        365, 0, 3650, "Enrolment dates are uniform over this many days.", _COHORT, integer=True
    )
    n_clinics: int = _p(6, 1, 10_000, "Number of clinics.", _COHORT, integer=True)
    therapists_per_clinic: int = _p(3, 1, 1_000, "Therapists per clinic.", _COHORT, integer=True)
    # -- baseline
    age_mean: float = _p(47.0, 18, 90, "Mean age (years) before truncation.", _BASE)
    age_sd: float = _p(13.0, 0, 40, "SD of age (years).", _BASE)
    age_min: int = _p(
        18, 0, 120, "Youngest age (years); ages are truncated to the range.", _BASE, integer=True
    )
    age_max: int = _p(90, 0, 120, "Oldest age (years).", _BASE, integer=True)
    female_share: float = _p(0.56, 0, 1, "Share of female patients.", _BASE)
    chronicity_shares: dict = _p(
        {"acute": 0.15, "subacute": 0.20, "chronic": 0.65},
        0,
        1,
        "Shares of acute (<6 wk), subacute (6-12 wk) and chronic (>12 wk) episodes.",
        _BASE,
        keys=CHRONICITIES,
        sums_to_one=True,
    )
    nprs_baseline_mean: float = _p(6.0, 0, 10, "Mean observed baseline NPRS.", _BASE)
    nprs_baseline_sd: float = _p(
        1.8,
        0,
        5,
        "SD of observed baseline NPRS (the latent SD is derived so that latent "
        "variance + measurement variance + rounding variance 1/12 gives this).",
        _BASE,
    )
    odi_intercept: float = _p(
        8.0, -50, 100, "Baseline ODI = intercept + slope x latent NPRS + noise.", _BASE
    )
    odi_per_nprs: float = _p(4.5, 0, 20, "Baseline ODI points per latent NPRS point.", _BASE)
    odi_sd: float = _p(9.0, 0, 40, "SD of baseline ODI around its NPRS prediction.", _BASE)
    odi_per_nprs_change: float = _p(
        5.0, 0, 20, "ODI points of change per NPRS point of change.", _BASE
    )
    odi_noise_sd: float = _p(4.0, 0, 30, "ODI measurement SD at follow-up assessments.", _BASE)
    # -- program
    guided_weeks_mix: dict = _p(
        {6: 0.15, 8: 0.60, 10: 0.15, 12: 0.10},
        0,
        1,
        "Planned guided-phase length (weeks) and its share of patients.",
        _PROG,
        sums_to_one=True,
    )
    horizon_weeks: int = _p(
        26,
        1,
        260,
        "Follow-up horizon: final assessment at this week; "
        "maintenance runs from the end of the guided phase to here.",
        _PROG,
        integer=True,
    )
    review_week: int = _p(
        4,
        1,
        52,
        "Week of the early-response review that may extend or shorten the guided phase.",
        _PROG,
        integer=True,
    )
    extend_below_improvement: float = _p(
        0.10, -1, 1, "Extend when relative NPRS improvement at review is below this.", _PROG
    )
    extend_probability: float = _p(0.5, 0, 1, "Probability a non-responder is extended.", _PROG)
    extend_weeks: int = _p(
        2, 0, 52, "Weeks added by an extension (capped at the horizon).", _PROG, integer=True
    )
    shorten_at_improvement: float = _p(
        0.50, -1, 1, "Shorten when relative NPRS improvement at review is at least this.", _PROG
    )
    shorten_probability: float = _p(
        0.5, 0, 1, "Probability an early responder is shortened.", _PROG
    )
    shorten_weeks: int = _p(2, 0, 52, "Weeks removed by shortening.", _PROG, integer=True)
    min_guided_weeks: int = _p(
        4,
        0,
        52,
        "Shortening never goes below this (nor below the review week).",
        _PROG,
        integer=True,
    )
    guided_supervised_per_week: int = _p(
        2, 0, 7, "Supervised sessions per guided week.", _PROG, integer=True
    )
    guided_home_per_week: int = _p(1, 0, 7, "Home sessions per guided week.", _PROG, integer=True)
    maintenance_home_per_week: int = _p(
        3, 0, 7, "Home sessions per maintenance week.", _PROG, integer=True
    )
    exercises_per_session: int = _p(
        6,
        1,
        25,
        "Exercises prescribed per session (drawn from the "
        "catalogue by the patient's category mix).",
        _PROG,
        integer=True,
    )
    category_mix_mean: dict = _p(
        {
            "core_strengthening": 0.25,
            "lumbar_stabilization": 0.25,
            "aerobic": 0.15,
            "posture": 0.10,
            "flexibility": 0.25,
        },
        0,
        1,
        "Mean of the per-patient Dirichlet mix over categories (drives exercise selection).",
        _PROG,
        keys=CATEGORIES,
        sums_to_one=True,
    )
    category_mix_concentration: float = _p(
        6.0, 0.01, 1e6, "Dirichlet concentration: larger means mixes closer to the mean.", _PROG
    )
    # -- adherence
    adherence_mean: float = _p(
        0.72,
        0,
        1,
        "Typical weekly probability of doing a prescribed session (at the centre "
        "week). 0 or 1 forces adherence exactly (no trajectories, shifts or noise).",
        _ADH,
    )
    adherence_sd_logit: float = _p(2.0, 0, 5, "SD of patients' adherence propensity (logit).", _ADH)
    adherence_per_baseline_nprs: float = _p(
        -0.10,
        -2,
        2,
        "Logit shift per baseline NPRS point above the mean (confounding by severity).",
        _ADH,
    )
    trajectory_shares: dict = _p(
        {"declining": 0.12, "stable": 0.45, "increasing": 0.43},
        0,
        1,
        "Shares of adherence trajectory classes.",
        _ADH,
        keys=TRAJECTORIES,
        sums_to_one=True,
    )
    trajectory_slope_declining: float = _p(-0.20, -2, 0, "Logit change per week, declining.", _ADH)
    trajectory_slope_increasing: float = _p(0.10, 0, 2, "Logit change per week, increasing.", _ADH)
    trajectory_center_week: float = _p(
        6.0, 0, 260, "Week at which trajectories cross the patient's propensity.", _ADH
    )
    maintenance_adherence_shift: float = _p(-0.6, -5, 5, "Logit drop at the phase change.", _ADH)
    supervised_adherence_shift: float = _p(
        0.8, -5, 5, "Logit bonus of supervised over home sessions.", _ADH
    )
    exercise_completion: float = _p(
        0.92,
        0,
        1,
        "Probability each prescribed exercise is done in an attended session (one is always done).",
        _ADH,
    )
    partial_dose_probability: float = _p(
        0.15, 0, 1, "Probability a done exercise is cut short (50-100% of reps or minutes).", _ADH
    )
    # -- dropout
    dropout_by_week8: float = _p(
        0.27, 0, 0.95, "Target share gone by week 8 (sets the baseline weekly hazard).", _DROP
    )
    dropout_pain_log_odds: float = _p(
        0.4,
        -5,
        5,
        "Log-odds of dropping out per NPRS point of latent pain change since baseline (worse "
        "pain, more dropout). Covariates decide who leaves; the weekly rate is held at the one "
        "dropout_by_week8 sets.",
        _DROP,
    )
    dropout_idle_log_odds: float = _p(
        0.0,
        -5,
        5,
        "Log-odds of dropping out after a week without a session (positive: lapses lead to "
        "exits; negative: exits come from engaged patients). 0: independent of lapses.",
        _DROP,
    )
    maintenance_dropout_odds_ratio: float = _p(
        0.35, 0, 10, "Odds ratio of the weekly hazard in maintenance vs guided weeks.", _DROP
    )
    followup_after_dropout: float = _p(
        0.3, 0, 1, "Probability a dropout still answers the final follow-up assessment.", _DROP
    )
    # -- pain
    natural_slope: float = _p(
        0.0, -1, 1, "NPRS points per week without exercise (natural history).", _PAIN
    )
    natural_slope_sd: float = _p(0.03, 0, 1, "SD of patients' natural-history slopes.", _PAIN)
    benefit_max: float = _p(
        7.5,
        0,
        20,
        "Mean asymptotic pain reduction from exercise (NPRS "
        "points; realistic doses reach a fraction of it).",
        _PAIN,
    )
    benefit_max_cv: float = _p(
        0.35, 0, 3, "SD of log maximum benefit across patients (mean-preserving).", _PAIN
    )
    dose_scale: float = _p(
        40.0,
        0.01,
        1e4,
        "Effective sessions for 63% of the maximum benefit "
        "(diminishing returns: 1 - exp(-dose / scale)).",
        _PAIN,
    )
    dose_half_life_weeks: float = _p(
        12.0, 0.1, 1e4, "Half-life of accumulated dose when exercise stops (loss of gains).", _PAIN
    )
    category_effectiveness: dict = _p(
        {
            "core_strengthening": 1.0,
            "lumbar_stabilization": 1.0,
            "aerobic": 0.75,
            "posture": 0.6,
            "flexibility": 0.4,
        },
        0,
        10,
        "Effective sessions per session of pure category time (dose weight).",
        _PAIN,
        keys=CATEGORIES,
    )
    measurement_sd: float = _p(0.9, 0, 5, "SD of NPRS measurement noise before rounding.", _PAIN)
    missed_assessment: float = _p(
        0.10, 0, 1, "Probability a scheduled follow-up assessment is missed at random.", _PAIN
    )
    maintenance_assessment_every: int = _p(
        4,
        1,
        52,
        "Weeks between assessments in maintenance "
        "(weekly in the guided phase; always at the horizon).",
        _PAIN,
        integer=True,
    )
    # -- co-interventions
    cointervention_probability: dict = _p(
        {
            "heat_cold": 0.40,
            "massage": 0.20,
            "manual_therapy": 0.25,
            "acupuncture": 0.10,
            "epidural_injection": 0.05,
            "analgesic": 0.45,
        },
        0,
        1,
        "Probability a patient has an episode of each co-intervention.",
        _CO,
        keys=COINTERVENTION_KINDS,
    )
    cointervention_weeks: dict = _p(
        {
            "heat_cold": 4,
            "massage": 4,
            "manual_therapy": 4,
            "acupuncture": 6,
            "epidural_injection": 8,
            "analgesic": 6,
        },
        1,
        104,
        "Episode length (weeks).",
        _CO,
        keys=COINTERVENTION_KINDS,
        integer=True,
    )
    cointervention_effect: dict = _p(
        {
            "heat_cold": -0.2,
            "massage": -0.3,
            "manual_therapy": -0.3,
            "acupuncture": -0.3,
            "epidural_injection": -0.8,
            "analgesic": -0.4,
        },
        -10,
        10,
        "NPRS points added while the episode is active.",
        _CO,
        keys=COINTERVENTION_KINDS,
    )

    # ------------------------------------------------------------------ construction
    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _check(f, getattr(self, f.name)))
        self._check_together()

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None, **overrides) -> SimulationConfig:
        """Build a config from a mapping (e.g. parsed TOML) and keyword overrides."""
        merged = {**(values or {}), **overrides}
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in merged if k not in names]
        if unknown:
            key = unknown[0]
            close = difflib.get_close_matches(key, names, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(
                f"unknown simulation parameter {key!r}.{hint} See docs/simulator.md for the list."
            )
        return cls(**merged)

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a JSON-ready dict (mapping keys as strings)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = {str(k): val for k, val in v.items()} if isinstance(v, dict) else v
        return out

    def sha256(self) -> str:
        """A hash of the parameters (stable across runs and machines)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def _check_together(self) -> None:
        if self.age_min > self.age_max:
            raise ConfigError(
                f"age_min={self.age_min} is above age_max={self.age_max}; "
                f"allowed: age_min <= age_max."
            )
        if self.guided_supervised_per_week + self.guided_home_per_week > 7:
            raise ConfigError(
                "guided_supervised_per_week + guided_home_per_week = "
                f"{self.guided_supervised_per_week + self.guided_home_per_week}; allowed: at most "
                "7 sessions a week."
            )
        cat = exercise_catalogue()
        usable = cat[cat["category"].map(lambda c: self.category_mix_mean[c] > 0).astype(bool)]
        if self.exercises_per_session > len(usable):
            raise ConfigError(
                f"exercises_per_session={self.exercises_per_session} but only {len(usable)} "
                f"catalogue exercises are in categories with a positive category_mix_mean; "
                f"allowed: 1 to {len(usable)}."
            )

    # ------------------------------------------------------------------ derived values
    @property
    def start(self) -> dt.date:
        return dt.date.fromisoformat(self.start_date)

    @property
    def latent_nprs_sd(self) -> float:
        """SD of latent baseline pain that yields ``nprs_baseline_sd`` after noise and rounding."""
        var = self.nprs_baseline_sd**2 - self.measurement_sd**2 - 1 / 12
        return math.sqrt(max(var, 0.0))

    @property
    def weekly_dropout_hazard(self) -> float:
        """Weekly hazard of a guided week giving ``dropout_by_week8`` over weeks 1-8.

        Solved over the planned-length mix, with maintenance weeks before week 8 at
        ``maintenance_dropout_odds_ratio`` (response-driven changes of length are ignored).
        """
        if self.dropout_by_week8 <= 0:
            return 0.0
        log_or = (
            math.log(self.maintenance_dropout_odds_ratio)
            if (self.maintenance_dropout_odds_ratio > 0)
            else -math.inf
        )

        def gone_by_8(h: float) -> float:
            total = 0.0
            for weeks, share in self.guided_weeks_mix.items():
                stay = 1.0
                for w in range(1, 9):
                    hw = h
                    if w >= min(weeks, self.horizon_weeks):
                        z = math.log(h / (1 - h)) + log_or
                        hw = 0.0 if z == -math.inf else 1 / (1 + math.exp(-z))
                    stay *= 1 - hw
                total += share * (1 - stay)
            return total

        lo, hi = 0.0, 1.0 - 1e-12
        for _ in range(100):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if gone_by_8(mid) < self.dropout_by_week8 else (lo, mid)
        return (lo + hi) / 2


def _check(f: dataclasses.Field, value: Any) -> Any:
    meta = f.metadata
    name = f.name
    if f.name == "start_date":
        try:
            dt.date.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(
                f"start_date={value!r} is not an ISO date; allowed: YYYY-MM-DD, e.g. 2024-01-08."
            ) from None
        return str(value)
    default = f.default_factory() if f.default is dataclasses.MISSING else f.default
    if isinstance(default, dict):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name} must be a mapping like {default}; got {value!r}.")
        value = _check_mapping(name, dict(value), meta, default)
        return value
    return _check_number(name, value, meta, name)


def _check_number(name: str, value: Any, meta: Mapping, label: str):
    lo, hi = meta["lo"], meta["hi"]
    rng = f"{lo} to {hi}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{label}={value!r} is not a number; allowed: {rng}.")
    if not math.isfinite(value) or value < lo or value > hi:
        raise ConfigError(f"{label}={value!r} is out of range; allowed: {rng}.")
    if meta["integer"]:
        if value != int(value):
            raise ConfigError(f"{label}={value!r} must be a whole number; allowed: {rng}.")
        return int(value)
    return float(value)


def _check_mapping(name: str, value: dict, meta: Mapping, default: dict) -> dict:
    keys = meta["keys"]
    if keys is None:  # guided_weeks_mix: integer week keys (TOML/JSON give strings)
        converted = {}
        for k, v in value.items():
            try:
                week = int(k)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"{name} key {k!r} is not a whole number of weeks; allowed: 1 to 104."
                ) from None
            if not 1 <= week <= 104:
                raise ConfigError(f"{name} key {k!r} is out of range; allowed: 1 to 104 weeks.")
            converted[week] = v
        value = dict(sorted(converted.items()))
        if not value:
            raise ConfigError(f"{name} is empty; give at least one planned length, e.g. {{8: 1}}.")
    else:
        unknown = [k for k in value if k not in keys]
        if unknown:
            raise ConfigError(
                f"{name} has unknown key {unknown[0]!r}; allowed keys: {', '.join(keys)}."
            )
        missing = [k for k in keys if k not in value]
        if missing:
            raise ConfigError(
                f"{name} lacks key(s) {', '.join(missing)}; give a value for every one of "
                f"{', '.join(keys)}."
            )
        value = {k: value[k] for k in keys}
    value = {k: _check_number(name, v, meta, f"{name}[{k!r}]") for k, v in value.items()}
    if meta["sums_to_one"] and not math.isclose(sum(value.values()), 1.0, abs_tol=1e-6):
        raise ConfigError(
            f"{name} shares sum to {sum(value.values()):.6g}; allowed: shares that sum to 1."
        )
    return value


def load_config(path: str | Path) -> SimulationConfig:
    """Read a simulation config from a ``.toml`` or ``.json`` file (keys: docs/simulator.md)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the config file ({exc.strerror}).") from None
    try:
        if p.suffix.lower() == ".json":
            values = json.loads(raw)
        else:
            values = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{p}: not valid {p.suffix.lstrip('.').upper() or 'TOML'} ({exc})."
        ) from None
    if not isinstance(values, dict):
        raise ConfigError(f"{p}: the config must be a table of parameter = value pairs.")
    try:
        return SimulationConfig.from_mapping(values)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


def parameters_markdown() -> str:
    """The parameter table of docs/simulator.md."""
    lines = ["| group | parameter | default | allowed | meaning |", "|---|---|---|---|---|"]
    defaults = SimulationConfig()
    for f in dataclasses.fields(SimulationConfig):
        m = f.metadata
        v = getattr(defaults, f.name)
        default = ", ".join(f"{k}: {x:g}" for k, x in v.items()) if isinstance(v, dict) else v
        allowed = "ISO date" if m["lo"] is None else f"{m['lo']:g} to {m['hi']:g}"
        if m["sums_to_one"]:
            allowed += ", summing to 1"
        lines.append(f"| {m['group']} | `{f.name}` | {default} | {allowed} | {m['doc']} |")
    return "\n".join(lines) + "\n"
