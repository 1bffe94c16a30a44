"""Cross-checks of the fast mixed model (:mod:`ptanalytics.models.lmm`) with lme4 and statsmodels.

* :func:`scenario_data` draws longitudinal data with a known random intercept and slope per group
  in the shapes that trouble mixed-model software: ``balanced``; ``dropout`` (unbalanced: groups
  leave at random times and miss visits); ``singletons`` (a third of the groups seen once); and
  ``boundary`` (no slope variance in truth, so the estimate sits at zero).
* :func:`fit_lme4` fits the same model with R's ``lme4::lmer`` (the packaged script
  ``studies/lme4_lmm.R``; needs ``Rscript`` with lme4) and returns its estimates.
* :func:`compare` reduces two fits to the agreement figures the docs quote: significant digits of
  the fixed effects and of the variance components, and the log-likelihood difference.

Used by ``tests/test_lmm.py`` and ``benchmarks/lmm.py``; a researcher can run the same check on
their own data (docs/models.md, "Fast engine").
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ptanalytics._checks import check_option
from ptanalytics.exceptions import ConfigError

__all__ = [
    "SCENARIOS",
    "compare",
    "fit_lme4",
    "lme4_available",
    "r_package_available",
    "scenario_data",
]

SCENARIOS = ("balanced", "dropout", "singletons", "boundary")


def scenario_data(
    kind: str, n_groups: int, n_obs: int, *, seed: int, slope_sd: float | None = None
) -> pd.DataFrame:
    """Longitudinal data ``g`` (group), ``t`` (time in 4-week units), ``x`` (a covariate), ``y``.

    Truth: ``y = 6 - 0.5 t + 0.3 x + b0 + b1 t + e`` with ``sd(b0) = 1.5``, ``sd(b1) = 0.4``
    (0 for ``boundary``), ``cor(b0, b1) = -0.3``, ``sd(e) = 1``; ``t = week / 4`` for weeks
    0 .. n_obs - 1.

    Parameters
    ----------
    kind : {"balanced", "dropout", "singletons", "boundary"}
    n_groups, n_obs : int
        Groups and the number of scheduled observations per group.
    seed : int
        Seed: the same arguments give the same frame.
    slope_sd : float, optional
        Override the SD of the random slope.
    """
    check_option("kind", kind, SCENARIOS, what=", ".join(SCENARIOS))
    rng = np.random.default_rng(seed)
    sd1 = (0.0 if kind == "boundary" else 0.4) if slope_sd is None else slope_sd
    z = rng.standard_normal((n_groups, 2))
    b = np.column_stack([1.5 * z[:, 0], sd1 * (-0.3 * z[:, 0] + np.sqrt(1 - 0.3**2) * z[:, 1])])
    g = np.repeat(np.arange(n_groups), n_obs)
    week = np.tile(np.arange(n_obs), n_groups)
    t = week / 4
    x = rng.normal(0.0, 1.0, n_groups * n_obs)
    y = 6 - 0.5 * t + 0.3 * x + b[g, 0] + b[g, 1] * t + rng.normal(0.0, 1.0, len(g))
    keep = np.ones(len(g), dtype=bool)
    if kind == "dropout":
        last = rng.integers(1, n_obs + 1, n_groups)  # observations before leaving
        last[rng.random(n_groups) < 0.4] = n_obs  # 40% complete
        keep = (week < last[g]) & ((rng.random(len(g)) > 0.15) | (week == 0))
    elif kind == "singletons":
        single = rng.random(n_groups) < 1 / 3
        keep = ~single[g] | (week == 0)
    ids = np.char.add("G", np.char.zfill(g.astype(str), len(str(n_groups))))
    return pd.DataFrame({"g": ids[keep], "t": t[keep], "x": x[keep], "y": y[keep]})


def r_package_available(package: str) -> tuple[bool, str]:
    """(True, version) when ``Rscript`` runs here and loads R ``package``, else (False, why).

    The one probe of R for the cross-checks (lme4 here; survival, nlme, geepack, mice in the
    reference tests), so every skip message says the same thing.
    """
    if shutil.which("Rscript") is None:
        return False, f"Rscript not found: install R and {package} (r-base-core r-cran-{package})"
    probe = subprocess.run(
        ["Rscript", "-e", f"cat(as.character(packageVersion('{package}')))"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["no message"])[-1]
        return False, f"{package} does not load in R: {why} (install r-cran-{package})"
    return True, probe.stdout.strip()


def lme4_available() -> tuple[bool, str]:
    """(True, version) when ``Rscript`` with lme4 runs here, else (False, why)."""
    return r_package_available("lme4")


def fit_lme4(data: pd.DataFrame, formula: str, *, reml: bool = True, repeats: int = 0) -> dict:
    """Fit ``formula`` (lme4 syntax, e.g. ``"y ~ t + x + (1 + t | g)"``) with ``lme4::lmer``.

    bobyqa with ``rhoend = 1e-10``, so that differences measure agreement rather than lme4's
    default stopping rule. With ``repeats > 0``, also times that many fits with lme4's default
    settings and returns the median in ``seconds`` (R's start-up and reading the CSV excluded).

    Returns
    -------
    dict
        ``fixed`` and ``se`` (by lme4 term name), ``re_names``, ``cov_re`` (matrix),
        ``residual_sd``, ``theta``, ``loglik``, ``singular``, ``messages``, ``seconds``,
        ``lme4_version``.
    """
    ok, why = lme4_available()
    if not ok:
        raise ConfigError(why)
    script = resources.files("ptanalytics") / "studies" / "lme4_lmm.R"
    with tempfile.TemporaryDirectory() as tmp:
        csv, out = Path(tmp) / "data.csv", Path(tmp) / "fit.json"
        data.to_csv(csv, index=False, float_format="%.17g")
        with resources.as_file(script) as path:
            run = subprocess.run(
                [
                    "Rscript",
                    str(path),
                    str(csv),
                    formula,
                    "TRUE" if reml else "FALSE",
                    str(out),
                    str(int(repeats)),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
        if run.returncode != 0:
            raise RuntimeError(f"lme4 failed: {run.stderr.strip()[-2000:]}")
        result = json.loads(out.read_text())
    result["cov_re"] = np.array(result["cov_re"], dtype=float)
    return result


def _digits(a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> float:
    """Agreeing significant digits: -log10 of the largest relative difference."""
    rel = np.max(np.abs(np.asarray(a) - np.asarray(b)) / scale)
    return float(np.inf if rel == 0 else -np.log10(rel))


def compare(
    fe_a: pd.Series,
    fe_b: pd.Series,
    se_b: pd.Series,
    cov_a: np.ndarray,
    sigma_a: float,
    cov_b: np.ndarray,
    sigma_b: float,
    llf_a: float,
    llf_b: float,
) -> dict:
    """Agreement of fit A with reference fit B.

    Fixed effects: relative to ``max(|beta_B|, SE_B)`` (so that a coefficient near zero is judged
    on the scale of its uncertainty). Variance components: the SDs of the random effects and the
    residual SD, relative to the SD itself, with the residual SD as the floor (so that a variance
    estimated at zero is judged on the scale of the data, as lme4's tolerance on theta is);
    correlations absolute.

    Returns
    -------
    dict
        ``fixed_digits``, ``variance_digits``, ``correlation_max_diff``, ``loglik_diff``
        (A - B), ``fixed_max_rel`` and ``variance_max_rel``.
    """
    fb = fe_b.to_numpy(dtype=float)
    fa = fe_a.reindex(fe_b.index).to_numpy(dtype=float)
    scale = np.maximum(np.abs(fb), se_b.reindex(fe_b.index).to_numpy(dtype=float))
    sd_a = np.r_[np.sqrt(np.diag(cov_a)), sigma_a]
    sd_b = np.r_[np.sqrt(np.diag(cov_b)), sigma_b]
    fixed = _digits(fa, fb, scale)
    var = _digits(sd_a, sd_b, np.maximum(sd_b, sigma_b))

    def cor(c):
        d = np.sqrt(np.diag(c))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = c / np.outer(d, d)
        return np.nan_to_num(r[np.triu_indices(len(d), 1)])

    return {
        "fixed_digits": fixed,
        "variance_digits": var,
        "fixed_max_rel": 10.0**-fixed,
        "variance_max_rel": 10.0**-var,
        "correlation_max_diff": float(np.max(np.abs(cor(cov_a) - cor(cov_b)), initial=0.0)),
        "loglik_diff": float(llf_a - llf_b),
    }
