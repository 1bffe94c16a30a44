"""Cross-check of ``gformula(history="full")`` against pygformula 1.2.0 (Li, Rein, McGrath, Logan,
O'Dea, Hernán; the Python port of R's gfoRmula) on one dataset with treatment-confounder feedback.

pygformula needs lifelines, which pins pandas < 3, so it cannot sit in ptanalytics' environment:
this script runs it in a separate virtual environment (``--pygformula-python``, e.g. a venv made
with ``python -m venv /tmp/pgf && /tmp/pgf/bin/pip install pygformula==1.2.0``; its 1.2.0
distribution lacks ``pygformula/version.py``, which ``echo '__version__ = "1.2.0"' >
/tmp/pgf/lib/python3.11/site-packages/pygformula/version.py`` supplies) and exchanges the data as
CSV. Both fit the same models: per period, the confounder and the treatment on the whole
history (pygformula: pooled over periods with every term interacted with the period, which is the
same fit), the outcome on the whole history; both simulate with Gaussian noise on the confounder.
With linear confounder and outcome models, the mean under a static regime is the same number for
both up to Monte Carlo error, so each simulates 200,000 patients (pygformula: without truncating
the simulated confounder to its observed range, as ptanalytics does not).

Usage:
    python docs/validation/gformula_vs_pygformula.py --pygformula-python /tmp/pgf/bin/python
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

N, PERIODS, SEED, N_SIM = 4000, 2, 2026, 200_000

PYGFORMULA = r"""
import json, sys
import matplotlib
matplotlib.use("Agg")
matplotlib.use = lambda *args, **kwargs: None  # pygformula.plot asks for Qt5Agg at import
import numpy as np, pandas as pd
from pygformula import ParametricGformula
from pygformula.interventions import static

data = pd.read_csv(sys.argv[1])
g = ParametricGformula(
    obs_data=data, id="pid", time_name="week", time_points=2,
    covnames=["pain", "a"], covtypes=["normal", "binary"],
    covmodels=["pain ~ C(week) + lag1_pain + lag1_a", "a ~ C(week) + pain + lag1_pain + lag1_a"],
    outcome_name="y", outcome_type="continuous_eof",
    ymodel="y ~ pain + lag1_pain + a + lag1_a",
    int_descript=["always", "never"],
    Intervention1_a=[static, np.ones(2)], Intervention2_a=[static, np.zeros(2)],
    n_simul=int(sys.argv[2]), sim_trunc=False, seed=1,
)
g.fit()
res = g.summary_dict["gformula_results"]
print(json.dumps(dict(zip(res["Intervention"], res.iloc[:, 3].astype(float)))))
"""


def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    from scipy.special import expit

    rng = np.random.default_rng(SEED)
    u, age = rng.normal(size=N), rng.normal(size=N)
    rows, prev, total = [], np.zeros(N), np.zeros(N)
    for t in range(PERIODS):
        pain = 0.8 * u - 0.6 * prev + rng.normal(size=N)
        a = (rng.random(N) < expit(-0.2 + 0.9 * pain + 0.3 * age)).astype(float)
        rows.append(pd.DataFrame({"pid": np.arange(N), "week": t, "a": a, "pain": pain}))
        total, prev = total + a, a
    y = -0.5 * total + 1.5 * u + 0.5 * age + rng.normal(size=N)
    return pd.concat(rows, ignore_index=True), pd.DataFrame({"pid": np.arange(N), "y": y})


def plug_in(long: pd.DataFrame, out: pd.DataFrame) -> dict:
    """The g-formula's value without Monte Carlo: with linear models, E[Y | regime] follows from
    the fitted coefficients (E[L1] = c0 + c1 E[L0] + c2 a0; E[Y] = b . E[history])."""
    wide = long.pivot(index="pid", columns="week", values=["pain", "a"])
    y = out.set_index("pid")["y"].reindex(wide.index).to_numpy(float)
    l0, l1, a0, a1 = (
        wide[c].to_numpy(float) for c in [("pain", 0), ("pain", 1), ("a", 0), ("a", 1)]
    )
    one = np.ones(len(y))
    c = np.linalg.lstsq(np.column_stack([one, l0, a0]), l1, rcond=None)[0]
    b = np.linalg.lstsq(np.column_stack([one, l0, l1, a0, a1]), y, rcond=None)[0]
    out_ = {}
    for regime, a in (("always", 1.0), ("never", 0.0)):
        el1 = c[0] + c[1] * l0.mean() + c[2] * a
        out_[regime] = float(b[0] + b[1] * l0.mean() + b[2] * el1 + (b[3] + b[4]) * a)
    return out_


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pygformula-python", required=True)
    args = parser.parse_args()
    from ptanalytics.models import gformula

    long, out = data()
    ours = gformula(
        long,
        id="pid",
        time="week",
        treatment="a",
        confounders=["pain"],
        outcome_data=out,
        outcome="y",
        regimes=("always", "never"),
        n_sim=N_SIM,
        bootstrap=10,
        seed=1,
    ).table.set_index("term")["estimate"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        frame = long.merge(out, on="pid")
        frame.loc[frame["week"] < PERIODS - 1, "y"] = np.nan
        frame.to_csv(path, index=False)
        script = Path(tmp) / "run.py"
        script.write_text(PYGFORMULA)
        done = subprocess.run(
            [args.pygformula_python, str(script), str(path), str(N_SIM)],
            capture_output=True,
            text=True,
            check=True,
        )
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    exact = plug_in(long, out)
    rows = []
    for regime in ("always", "never"):
        rows.append(
            {
                "regime": regime,
                "plug-in (exact)": exact[regime],
                "ptanalytics": float(ours[f"mean under {regime}"]),
                "pygformula": float(theirs[regime]),
            }
        )
    table = pd.DataFrame(rows)
    table.loc[len(table)] = [
        "always - never",
        *(table.iloc[0, 1:].to_numpy(float) - table.iloc[1, 1:].to_numpy(float)),
    ]
    print(table.round(5).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
