import pandas as pd

from ptanalytics.privacy.suppression import suppress_small_counts


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


def _sets(**sizes):
    """Disjoint groups of patients of the given sizes, as boolean vectors over all of them."""
    import numpy as np

    total = sum(sizes.values())
    out, start = {}, 0
    for name, n in sizes.items():
        mask = np.zeros(total, dtype=bool)
        mask[start : start + n] = True
        out[name] = mask
        start += n
    return out, total


def test_a_band_cannot_be_recovered_from_the_total_minus_the_other_bands():
    import numpy as np

    from ptanalytics.privacy.suppression import complementary_suppression, recoverable

    cells, total = _sets(low=165, medium=7, high=89)
    cells["all"] = np.ones(total, dtype=bool)
    fate = complementary_suppression(cells, min_cell=11, keep=["all"])
    assert fate["medium"] == "primary"
    assert fate["high"] == "secondary" and fate["low"] == "shown"  # the next-smallest goes too
    assert fate["all"] == "shown"
    assert recoverable(cells, fate, min_cell=11) == []
    naive = {k: ("primary" if k == "medium" else "shown") for k in cells}
    assert recoverable(cells, naive, min_cell=11) == ["medium"]  # what primary alone leaks


def test_a_derived_small_count_is_protected_itt_and_completers():
    import numpy as np

    from ptanalytics.privacy.suppression import complementary_suppression

    # 40 patients, 17 completers of whom 16 respond: one non-responder among completers.
    obs = np.arange(40) < 17
    resp = np.arange(40) < 16
    cells = {
        "itt_n": np.ones(40, dtype=bool),
        "itt_responders": resp,
        "itt_missing": ~obs,
        "completers_n": obs,
        "completers_responders": resp,
    }
    fate = complementary_suppression(cells, min_cell=11, keep=["itt_n"])
    # Nothing is below 11, but completers_n - responders = 1: one of them is hidden, in both
    # tables at once (the same patients).
    assert fate["itt_responders"] == fate["completers_responders"] == "secondary"
    assert "primary" not in fate.values()


def test_no_suppression_needed_and_min_cell_one():
    import numpy as np

    from ptanalytics.privacy.suppression import complementary_suppression

    cells, total = _sets(a=20, b=30)
    cells["all"] = np.ones(total, dtype=bool)
    assert set(complementary_suppression(cells).values()) == {"shown"}
    cells, total = _sets(a=2, b=30)
    assert set(complementary_suppression(cells, min_cell=1).values()) == {"shown"}
    assert complementary_suppression({}) == {}
