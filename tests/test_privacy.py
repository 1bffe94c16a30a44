import pandas as pd

from ptanalytics.privacy import suppress_small_counts


def test_small_counts_and_what_derives_from_them_are_hidden():
    t = pd.DataFrame(
        {
            "group": ["a", "b", "c"],
            "n": [40, 7, 0],
            "responders": [20, 3, 0],
            "proportion": [0.5, 3 / 7, None],
        }
    )
    out = suppress_small_counts(t, counts=["n", "responders"], derived=["proportion"])
    assert list(out["n"]) == [40, "<11", 0]
    assert list(out["responders"]) == [20, "<11", 0]
    assert out.loc[1, "proportion"] == "suppressed" and out.loc[0, "proportion"] == 0.5
    assert t.loc[1, "n"] == 7  # the input is untouched
    assert suppress_small_counts(t, counts=["n"], min_cell=5).loc[1, "n"] == 7
