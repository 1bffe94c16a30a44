"""Parameters of the cohort simulator: defaults, documentation and validation in one place.

Every parameter is a field of :class:`SimulationConfig` with its default and its allowed range
(one :class:`_Rule`, checked by :func:`_checked`), followed by its one-line meaning as an attribute
docstring; ``docs/simulator.md`` lists them (its table is generated from here by ``make docs``).
Build a config from keyword arguments, a mapping, or a TOML / JSON file; anything unknown, of the
wrong type or out of range raises :class:`ConfigError` naming the parameter, the value and the
allowed range.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import difflib
import hashlib
import inspect
import itertools
import json
import math
import textwrap
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ptanalytics.cohort.catalogue import exercise_catalogue
from ptanalytics.exceptions import ConfigError
from ptanalytics.vocab import CATEGORIES, CHRONICITIES, COINTERVENTION_KINDS, TRAJECTORY_CLASSES

__all__ = ["SCENARIOS", "SimulationConfig", "load_config", "parameters_markdown", "scenario_config"]


@dataclasses.dataclass(frozen=True)
class _Rule:
    """What a parameter may be: an ISO date, or numbers in the closed range [lo, hi].

    For a mapping the range applies to each value; ``keys`` are its required keys (None: whole
    numbers of weeks, as in ``guided_weeks_mix``), and ``sums_to_one`` asks the values to be shares.
    """

    group: str
    lo: float | None = None
    hi: float | None = None
    integer: bool = False
    date: bool = False
    mapping: bool = False
    keys: tuple[str, ...] | None = None
    sums_to_one: bool = False

    @property
    def allowed(self) -> str:
        return f"{self.lo} to {self.hi}"


def _p(default, *bounds, group, **rule):
    """A parameter field: its default and its :class:`_Rule` (``bounds`` are ``lo, hi``)."""
    meta = {"rule": _Rule(group, *bounds, mapping=isinstance(default, dict), **rule)}
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

    # A field per parameter: its default and rule, then its meaning (the attribute docstring,
    # which docs/simulator.md's table shows). Laid out by hand: a mapping default is one block.
    # fmt: off
    # -- cohort
    start_date: str = _p("2024-01-08", group=_COHORT, date=True)
    """First possible enrolment date (ISO)."""
    recruitment_days: int = _p(365, 0, 3650, group=_COHORT, integer=True)
    """Enrolment dates are uniform over this many days."""
    n_clinics: int = _p(6, 1, 10_000, group=_COHORT, integer=True)
    """Number of clinics."""
    therapists_per_clinic: int = _p(3, 1, 1000, group=_COHORT, integer=True)
    """Therapists per clinic."""
    # -- baseline
    age_mean: float = _p(47.0, 18, 90, group=_BASE)
    """Mean age (years) before truncation."""
    age_sd: float = _p(13.0, 0, 40, group=_BASE)
    """SD of age (years)."""
    age_min: int = _p(18, 0, 120, group=_BASE, integer=True)
    """Youngest age (years); ages are truncated to the range."""
    age_max: int = _p(90, 0, 120, group=_BASE, integer=True)
    """Oldest age (years)."""
    female_share: float = _p(0.56, 0, 1, group=_BASE)
    """Share of female patients."""
    chronicity_shares: dict = _p(
        {"acute": 0.15, "subacute": 0.2, "chronic": 0.65},
        0, 1, group=_BASE, keys=CHRONICITIES, sums_to_one=True,
    )
    """Shares of acute (<6 wk), subacute (6-12 wk) and chronic (>12 wk) episodes."""
    nprs_baseline_mean: float = _p(6.0, 0, 10, group=_BASE)
    """Mean observed baseline NPRS."""
    nprs_baseline_sd: float = _p(1.8, 0, 5, group=_BASE)
    """SD of observed baseline NPRS (the latent SD is derived so that latent variance + measurement
    variance + rounding variance 1/12 gives this).
    """
    odi_intercept: float = _p(8.0, -50, 100, group=_BASE)
    """Baseline ODI = intercept + slope x latent NPRS + noise."""
    odi_per_nprs: float = _p(4.5, 0, 20, group=_BASE)
    """Baseline ODI points per latent NPRS point."""
    odi_sd: float = _p(9.0, 0, 40, group=_BASE)
    """SD of baseline ODI around its NPRS prediction."""
    odi_per_nprs_change: float = _p(5.0, 0, 20, group=_BASE)
    """ODI points of change per NPRS point of change."""
    odi_noise_sd: float = _p(4.0, 0, 30, group=_BASE)
    """ODI measurement SD at follow-up assessments."""
    # -- program
    guided_weeks_mix: dict = _p(
        {6: 0.15, 8: 0.6, 10: 0.15, 12: 0.1},
        0, 1, group=_PROG, sums_to_one=True,
    )
    """Planned guided-phase length (weeks) and its share of patients."""
    horizon_weeks: int = _p(26, 1, 260, group=_PROG, integer=True)
    """Follow-up horizon: final assessment at this week; maintenance runs from the end of the guided
    phase to here.
    """
    review_week: int = _p(4, 1, 52, group=_PROG, integer=True)
    """Week of the early-response review that may extend or shorten the guided phase."""
    extend_below_improvement: float = _p(0.1, -1, 1, group=_PROG)
    """Extend when relative NPRS improvement at review is below this."""
    extend_probability: float = _p(0.5, 0, 1, group=_PROG)
    """Probability a non-responder is extended."""
    extend_weeks: int = _p(2, 0, 52, group=_PROG, integer=True)
    """Weeks added by an extension (capped at the horizon)."""
    shorten_at_improvement: float = _p(0.5, -1, 1, group=_PROG)
    """Shorten when relative NPRS improvement at review is at least this."""
    shorten_probability: float = _p(0.5, 0, 1, group=_PROG)
    """Probability an early responder is shortened."""
    shorten_weeks: int = _p(2, 0, 52, group=_PROG, integer=True)
    """Weeks removed by shortening."""
    min_guided_weeks: int = _p(4, 0, 52, group=_PROG, integer=True)
    """Shortening never goes below this (nor below the review week)."""
    guided_supervised_per_week: int = _p(2, 0, 7, group=_PROG, integer=True)
    """Supervised sessions per guided week."""
    guided_home_per_week: int = _p(1, 0, 7, group=_PROG, integer=True)
    """Home sessions per guided week."""
    maintenance_home_per_week: int = _p(3, 0, 7, group=_PROG, integer=True)
    """Home sessions per maintenance week."""
    exercises_per_session: int = _p(6, 1, 25, group=_PROG, integer=True)
    """Exercises prescribed per session (drawn from the catalogue by the patient's category mix)."""
    category_mix_mean: dict = _p(
        {"core_strengthening": 0.25, "lumbar_stabilization": 0.25, "aerobic": 0.15,
         "posture": 0.1, "flexibility": 0.25},
        0, 1, group=_PROG, keys=CATEGORIES, sums_to_one=True,
    )
    """Mean of the per-patient Dirichlet mix over categories (drives exercise selection)."""
    category_mix_concentration: float = _p(6.0, 0.01, 1e6, group=_PROG)
    """Dirichlet concentration: larger means mixes closer to the mean."""
    # -- adherence
    adherence_mean: float = _p(0.72, 0, 1, group=_ADH)
    """Typical weekly probability of doing a prescribed session (at the centre week). 0 or 1 forces
    adherence exactly (no trajectories, shifts or noise).
    """
    adherence_sd_logit: float = _p(2.0, 0, 5, group=_ADH)
    """SD of patients' adherence propensity (logit)."""
    adherence_per_baseline_nprs: float = _p(-0.1, -2, 2, group=_ADH)
    """Logit shift per baseline NPRS point above the mean (confounding by severity)."""
    adherence_per_nprs_change: float = _p(-0.15, -2, 2, group=_ADH)
    """Logit shift of a week's sessions per point of the patient's reported NPRS change since
    baseline, at the assessment that opens the week (worse pain, fewer sessions). With the dose
    effect on pain this is treatment-confounder feedback (docs/causal.md)."""
    adherence_per_weekly_nprs_change: float = _p(-0.1, -2, 2, group=_ADH)
    """Logit shift of a week's sessions per point of reported NPRS change since the previous
    week's assessment (a flare-up last week, fewer sessions this week)."""
    trajectory_shares: dict = _p(
        {"declining": 0.12, "stable": 0.45, "increasing": 0.43},
        0, 1, group=_ADH, keys=TRAJECTORY_CLASSES, sums_to_one=True,
    )
    """Shares of adherence trajectory classes."""
    trajectory_slope_declining: float = _p(-0.2, -2, 0, group=_ADH)
    """Logit change per week, declining."""
    trajectory_slope_increasing: float = _p(0.1, 0, 2, group=_ADH)
    """Logit change per week, increasing."""
    trajectory_center_week: float = _p(6.0, 0, 260, group=_ADH)
    """Week at which trajectories cross the patient's propensity."""
    maintenance_adherence_shift: float = _p(-0.6, -5, 5, group=_ADH)
    """Logit drop at the phase change."""
    supervised_adherence_shift: float = _p(0.8, -5, 5, group=_ADH)
    """Logit bonus of supervised over home sessions."""
    exercise_completion: float = _p(0.92, 0, 1, group=_ADH)
    """Probability each prescribed exercise is done in an attended session (one is always done)."""
    partial_dose_probability: float = _p(0.15, 0, 1, group=_ADH)
    """Probability a done exercise is cut short (50-100% of reps or minutes)."""
    encouragement_share: float = _p(0.0, 0, 1, group=_ADH)
    """Share randomised to an encouragement arm (reminders; ``patients.arm``); 0: no trial."""
    encouragement_log_odds: float = _p(1.0, -5, 5, group=_ADH)
    """Logit shift of every session's attendance in the encouragement arm."""
    home_only_share: float = _p(0.0, 0, 1, group=_ADH)
    """Share randomised to a home-only guided phase (``patients.arm`` ``home_only`` vs
    ``supervised``): the supervised sessions are done at home, without the supervised attendance
    bonus; 0: no such trial."""
    length_trial_share: float = _p(0.0, 0, 1, group=_ADH)
    """Share randomised to a planned guided phase of ``length_trial_weeks`` rather than 8 weeks
    (``patients.arm`` ``<weeks>_weeks`` vs ``8_weeks``; everyone else is planned 8 weeks, the
    review still extends or shortens); 0: no such trial (planned lengths from
    ``guided_weeks_mix``)."""
    length_trial_weeks: int = _p(12, 1, 52, group=_ADH, integer=True)
    """Planned guided weeks of the longer arm of a length trial."""
    # -- dropout
    dropout_by_week8: float = _p(0.27, 0, 0.95, group=_DROP)
    """Target share gone by week 8 (sets the baseline weekly hazard)."""
    dropout_pain_log_odds: float = _p(0.4, -5, 5, group=_DROP)
    """Log-odds of dropping out per NPRS point of latent pain change since baseline (worse pain,
    more dropout). Covariates decide who leaves; the weekly rate is held at the one dropout_by_week8
    sets.
    """
    dropout_idle_log_odds: float = _p(0.0, -5, 5, group=_DROP)
    """Log-odds of dropping out after a week without a session (positive: lapses lead to exits;
    negative: exits come from engaged patients). 0: independent of lapses.
    """
    maintenance_dropout_odds_ratio: float = _p(0.35, 0, 10, group=_DROP)
    """Odds ratio of the weekly hazard in maintenance vs guided weeks."""
    followup_after_dropout: float = _p(0.3, 0, 1, group=_DROP)
    """Probability a dropout still answers the final follow-up assessment."""
    # -- pain
    natural_slope: float = _p(0.0, -1, 1, group=_PAIN)
    """NPRS points per week without exercise (natural history)."""
    natural_slope_sd: float = _p(0.03, 0, 1, group=_PAIN)
    """SD of patients' natural-history slopes."""
    benefit_max: float = _p(7.5, 0, 20, group=_PAIN)
    """Mean asymptotic pain reduction from exercise (NPRS points; realistic doses reach a fraction
    of it).
    """
    benefit_max_cv: float = _p(0.35, 0, 3, group=_PAIN)
    """SD of log maximum benefit across patients (mean-preserving)."""
    dose_scale: float = _p(40.0, 0.01, 1e4, group=_PAIN)
    """Effective sessions for 63% of the maximum benefit (diminishing returns: 1 - exp(-dose /
    scale)).
    """
    dose_half_life_weeks: float = _p(12.0, 0.1, 1e4, group=_PAIN)
    """Half-life of accumulated dose when exercise stops (loss of gains)."""
    category_effectiveness: dict = _p(
        {"core_strengthening": 1.0, "lumbar_stabilization": 1.0, "aerobic": 0.75, "posture": 0.6,
         "flexibility": 0.4},
        0, 10, group=_PAIN, keys=CATEGORIES,
    )
    """Effective sessions per session of pure category time (dose weight)."""
    measurement_sd: float = _p(0.9, 0, 5, group=_PAIN)
    """SD of NPRS measurement noise before rounding."""
    missed_assessment: float = _p(0.1, 0, 1, group=_PAIN)
    """Probability a scheduled follow-up assessment is missed at random."""
    maintenance_assessment_every: int = _p(4, 1, 52, group=_PAIN, integer=True)
    """Weeks between assessments in maintenance (weekly in the guided phase; always at the
    horizon).
    """
    # -- co-interventions
    cointervention_probability: dict = _p(
        {"heat_cold": 0.4, "massage": 0.2, "manual_therapy": 0.25, "acupuncture": 0.1,
         "epidural_injection": 0.05, "analgesic": 0.45},
        0, 1, group=_CO, keys=COINTERVENTION_KINDS,
    )
    """Probability a patient has an episode of each co-intervention."""
    cointervention_weeks: dict = _p(
        {"heat_cold": 4, "massage": 4, "manual_therapy": 4, "acupuncture": 6,
         "epidural_injection": 8, "analgesic": 6},
        1, 104, group=_CO, keys=COINTERVENTION_KINDS, integer=True,
    )
    """Episode length (weeks)."""
    cointervention_effect: dict = _p(
        {"heat_cold": -0.2, "massage": -0.3, "manual_therapy": -0.3, "acupuncture": -0.3,
         "epidural_injection": -0.8, "analgesic": -0.4},
        -10, 10, group=_CO, keys=COINTERVENTION_KINDS,
    )
    """NPRS points added while the episode is active."""
    # fmt: on

    # ------------------------------------------------------------------ construction
    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _checked(f, getattr(self, f.name)))
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
        trials = [n for n in TRIAL_SHARES if getattr(self, n) > 0]
        if len(trials) > 1:
            raise ConfigError(
                f"{' and '.join(trials)} are both positive; allowed: one randomised design at a "
                "time (set the others to 0)."
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
    def trial(self) -> str | None:
        """The randomised design (``encouragement``, ``home_only`` or ``length``), or None."""
        for name, design in TRIAL_SHARES.items():
            if getattr(self, name) > 0:
                return design
        return None

    @property
    def trial_share(self) -> float:
        """Share randomised to the active arm of :attr:`trial` (0 without a trial)."""
        return next((getattr(self, n) for n, d in TRIAL_SHARES.items() if d == self.trial), 0.0)

    @property
    def trial_arms(self) -> tuple[str, str]:
        """The ``patients.arm`` labels of the active and the control arm of :attr:`trial`."""
        return {
            "encouragement": ("encouraged", "usual"),
            "home_only": ("home_only", "supervised"),
            "length": (f"{self.length_trial_weeks}_weeks", "8_weeks"),
        }[self.trial]

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


def _checked(f: dataclasses.Field, value: Any) -> Any:
    """``value`` of the field ``f`` checked against its rule and normalised (ints, floats, str)."""
    rule: _Rule = f.metadata["rule"]
    if rule.date:
        try:
            dt.date.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(
                f"{f.name}={value!r} is not an ISO date; allowed: YYYY-MM-DD, e.g. 2024-01-08."
            ) from None
        return str(value)
    if not rule.mapping:
        return _checked_number(value, rule, f.name)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{f.name} must be a mapping like {f.default_factory()}; got {value!r}.")
    value = _checked_keys(f.name, dict(value), rule)
    value = {k: _checked_number(v, rule, f"{f.name}[{k!r}]") for k, v in value.items()}
    if rule.sums_to_one and not math.isclose(sum(value.values()), 1.0, abs_tol=1e-6):
        raise ConfigError(
            f"{f.name} shares sum to {sum(value.values()):.6g}; allowed: shares that sum to 1."
        )
    return value


def _checked_number(value: Any, rule: _Rule, label: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{label}={value!r} is not a number; allowed: {rule.allowed}.")
    if not math.isfinite(value) or value < rule.lo or value > rule.hi:
        raise ConfigError(f"{label}={value!r} is out of range; allowed: {rule.allowed}.")
    if rule.integer:
        if value != int(value):
            raise ConfigError(f"{label}={value!r} must be a whole number; allowed: {rule.allowed}.")
        return int(value)
    return float(value)


def _checked_keys(name: str, value: dict, rule: _Rule) -> dict:
    """The mapping with exactly the rule's keys, in their order (or week keys, sorted)."""
    if rule.keys is None:  # guided_weeks_mix: integer week keys (TOML/JSON give strings)
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
        if not converted:
            raise ConfigError(f"{name} is empty; give at least one planned length, e.g. {{8: 1}}.")
        return dict(sorted(converted.items()))
    unknown = [k for k in value if k not in rule.keys]
    if unknown:
        raise ConfigError(
            f"{name} has unknown key {unknown[0]!r}; allowed keys: {', '.join(rule.keys)}."
        )
    missing = [k for k in rule.keys if k not in value]
    if missing:
        raise ConfigError(
            f"{name} lacks key(s) {', '.join(missing)}; give a value for every one of "
            f"{', '.join(rule.keys)}."
        )
    return {k: value[k] for k in rule.keys}


#: The randomised designs the simulator knows, by the config parameter giving their share.
TRIAL_SHARES = {
    "encouragement_share": "encouragement",
    "home_only_share": "home_only",
    "length_trial_share": "length",
}

#: Named scenarios: overrides of the calibrated defaults (docs/simulator.md#scenarios).
#: ``optimistic``: the defaults, where exercise lowers pain with diminishing returns;
#: ``null_adherence``: exercise dose has no effect on pain (``benefit_max = 0``), as in cohorts
#: that found no association between adherence and outcome; everything else (adherence, dropout
#: driven by pain, co-interventions, the review rule) as in the defaults.
SCENARIOS: dict[str, dict[str, Any]] = {
    "optimistic": {},
    "null_adherence": {"benefit_max": 0.0},
}


def scenario_config(name: str, **overrides) -> SimulationConfig:
    """The config of a named scenario (:data:`SCENARIOS`), with keyword overrides on top."""
    if name not in SCENARIOS:
        close = difflib.get_close_matches(str(name), list(SCENARIOS), n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise ConfigError(
            f"scenario={name!r}; allowed: {', '.join(SCENARIOS)}.{hint} See docs/simulator.md."
        )
    return SimulationConfig.from_mapping(SCENARIOS[name], **overrides)


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


def _parameter_docs() -> dict[str, str]:
    """Each parameter's attribute docstring, on one line, read from the class source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(SimulationConfig)))
    body = tree.body[0].body
    docs = {}
    for field, doc in itertools.pairwise(body):
        if isinstance(field, ast.AnnAssign) and isinstance(doc, ast.Expr):
            docs[field.target.id] = " ".join(doc.value.value.split())
    return docs


def parameters_markdown() -> str:
    """The parameter table of docs/simulator.md."""
    lines = ["| group | parameter | default | allowed | meaning |", "|---|---|---|---|---|"]
    defaults = SimulationConfig()
    docs = _parameter_docs()
    for f in dataclasses.fields(SimulationConfig):
        rule = f.metadata["rule"]
        v = getattr(defaults, f.name)
        default = ", ".join(f"{k}: {x:g}" for k, x in v.items()) if isinstance(v, dict) else v
        allowed = "ISO date" if rule.date else f"{rule.lo:g} to {rule.hi:g}"
        if rule.sums_to_one:
            allowed += ", summing to 1"
        lines.append(f"| {rule.group} | `{f.name}` | {default} | {allowed} | {docs[f.name]} |")
    return "\n".join(lines) + "\n"
