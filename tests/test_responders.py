import numpy as np
import pandas as pd
import pytest

import ptanalytics as pt
from ptanalytics.metrics.responders import flag_responders, responder_table, wilson_interval


def test_wilson_matches_r():
    # R: prop.test(15, 20, correct = FALSE)$conf.int -> 0.5313 0.8881
    low, high = wilson_interval(15, 20)
    assert (round(float(low), 4), round(float(high), 4)) == (0.5313, 0.8881)
    # R: prop.test(0, 10, correct = FALSE)$conf.int -> 0.0000 0.2775
    low, high = wilson_interval(0, 10)
    assert (round(float(low), 4), round(float(high), 4)) == (0.0, 0.2775)
    low, high = wilson_interval(0, 0)
    assert np.isnan(low) and np.isnan(high)
    # R: prop.test(15, 20, conf.level = 0.9, correct = FALSE)$conf.int -> 0.5678 0.8726
    low, high = wilson_interval([15, 20], [20, 20], alpha=0.1)
    assert (round(float(low[0]), 4), round(float(high[0]), 4)) == (0.5678, 0.8726)
    assert high[1] == 1.0
    with pytest.raises(pt.ConfigError, match="alpha=95"):
        wilson_interval(15, 20, alpha=95)


def test_wilson_is_statsmodels_wilson():
    from statsmodels.stats.proportion import proportion_confint

    for n in (1, 2, 7, 50, 333):
        k = np.arange(n + 1)
        for alpha in (0.01, 0.05, 0.2):
            low, high = wilson_interval(k, np.full(n + 1, n), alpha=alpha)
            ref_low, ref_high = proportion_confint(k, n, alpha=alpha, method="wilson")
            np.testing.assert_allclose(low[1:], ref_low[1:], rtol=1e-13, atol=0)
            np.testing.assert_allclose(high[:-1], ref_high[:-1], rtol=1e-13, atol=0)
            assert low[0] == 0 and high[-1] == 1


@pytest.fixture
def summary():
    return pd.DataFrame(
        {
            "patient_id": list("ABCDE"),
            "arm": ["t", "t", "c", "c", "c"],
            "nprs_baseline": [6.0, 5.0, 8.0, 4.0, 6.0],
            "nprs_followup": [4.0, 4.0, 7.0, np.nan, 0.0],
        }
    )


def test_presets(summary):
    f = flag_responders(summary, preset="ostelo")
    assert list(f["responder"]) == [True, False, False, False, True]  # 2 points; 1/5=20%; ...
    f = flag_responders(summary, preset="immpact", level="substantial")
    assert list(f["responder"]) == [False, False, False, False, True]
    f = flag_responders(summary, preset="pain_free", cutoff=1)
    assert list(f["responder"]) == [False, False, False, False, True]
    f = flag_responders(summary, preset="custom", percent=20)
    assert list(f["responder"]) == [True, True, False, False, True]
    assert f["definition"].iloc[0] == "NPRS improvement >= 20%"


def test_itt_versus_completers(summary):
    itt = responder_table(flag_responders(summary, analysis="itt")).table
    comp = responder_table(flag_responders(summary, analysis="completers")).table
    assert (itt.loc[0, "n"], itt.loc[0, "responders"], itt.loc[0, "missing_followup"]) == (5, 2, 1)
    assert (comp.loc[0, "n"], comp.loc[0, "responders"]) == (4, 2)
    assert itt.loc[0, "analysis"] == "itt" and comp.loc[0, "analysis"] == "completers"
    by = responder_table(flag_responders(summary), by="arm").table.set_index("arm")
    assert by.loc["t", "proportion"] == 0.5 and by.loc["c", "n"] == 3


def test_errors(summary):
    with pytest.raises(pt.ConfigError, match="analysis='all'"):
        flag_responders(summary, analysis="all")
    with pytest.raises(pt.ConfigError, match="no column 'odi_baseline'"):
        flag_responders(summary, instrument="odi")
    with pytest.raises(pt.ConfigError, match="preset='mcid'"):
        flag_responders(summary, preset="mcid")
    with pytest.raises(pt.ConfigError, match="custom preset needs"):
        flag_responders(summary, preset="custom")


def test_responder_table_is_a_result(summary):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from ptanalytics.models._result import ModelResult

    result = responder_table(flag_responders(summary), by="arm", alpha=0.1)
    assert isinstance(result, ModelResult) and result.n == 5
    assert result.notes == [
        "Responder: NPRS improvement >= 2 points or >= 30% at followup; 1 patient(s) without "
        "the later score counted as non-responders (ITT)."
    ]
    low, _ = wilson_interval(result.table["responders"], result.table["n"], alpha=0.1)
    np.testing.assert_array_equal(result.table["ci_low"], low)
    fig = result.figure()
    assert isinstance(fig, Figure)
    assert {t.get_text() for t in fig.axes[0].get_yticklabels()} == {"c", "t"}
    plt.close(fig)
    with pytest.raises(pt.ConfigError, match=r"alpha=1\.5"):
        responder_table(flag_responders(summary), alpha=1.5)
