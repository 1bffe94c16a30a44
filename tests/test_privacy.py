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


def _crossed_cells(n: int, seed: int) -> dict:
    """Linked counts of a report-like set of tables: three categorical variables, their levels
    and pairwise crossings, over ``n`` patients (some crossings small)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    band = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    resp = rng.random(n) < 0.4
    seen = rng.random(n) < 0.8
    cells = {"all": np.ones(n, dtype=bool)}
    for b in range(3):
        cells[("band", b)] = band == b
        cells[("resp", b)] = (band == b) & resp & seen
        cells[("seen", b)] = (band == b) & seen
    cells["resp"] = resp & seen
    cells["seen"] = seen
    return cells


def test_the_real_cell_sizes_as_a_starting_point_change_no_decision(monkeypatch):
    """The auditor starts from the real sizes of the finest cells (a feasible point of every
    audit problem); its decisions equal those of the audit that does not know them."""
    import numpy as np

    from ptanalytics.privacy import suppression

    for n, seed in [(60, 1), (120, 2), (300, 3), (45, 4)]:
        cells = _crossed_cells(n, seed)
        fast = suppression.complementary_suppression(cells, min_cell=11, keep=["all"])
        with monkeypatch.context() as m:
            init = suppression._Auditor.__init__

            def blind(self, a, v, min_cell, truth=None, _init=init):
                _init(self, a, v, min_cell, truth=None)

            m.setattr(suppression._Auditor, "__init__", blind)
            exact = suppression.complementary_suppression(cells, min_cell=11, keep=["all"])
        assert fast == exact
        assert suppression.recoverable(cells, fast, min_cell=11) == []
        assert np.isin(list(fast.values()), ["shown", "primary", "secondary"]).all()


def test_packed_unique_rows_equal_numpy_unique():
    import numpy as np

    from ptanalytics.privacy.suppression import _unique_rows

    rng = np.random.default_rng(7)
    for shape in [(1, 1), (5, 3), (40, 9), (13, 200)]:
        m = rng.random(shape) < 0.3
        m = np.vstack([m, m[:2]])  # repeated rows
        rows, inverse, counts = _unique_rows(m)
        want, want_inv, want_counts = np.unique(m, axis=0, return_inverse=True, return_counts=True)
        assert (rows == want).all() and (inverse == want_inv.ravel()).all()
        assert (counts == want_counts).all()


def test_an_audit_of_a_large_cohort_with_no_small_count_takes_few_linear_programs():
    """100,000 patients and many small finest cells but no small count: the real sizes and one
    or two pushes prove every small cell free (before: one exact LP pair per unresolved cell)."""
    import numpy as np

    from ptanalytics.privacy import suppression

    cells = _crossed_cells(100_000, 5)
    rng = np.random.default_rng(6)
    for k in range(8):  # overlapping sets: thousands of finest cells, many of them small
        cells[("extra", k)] = rng.random(100_000) < 0.5
    rows, _, _ = suppression._unique_rows(np.vstack(list(cells.values())))
    _, _, sizes = suppression._unique_rows(np.ascontiguousarray(rows.T))
    assert ((sizes >= 1) & (sizes < 11)).sum() >= 200  # small finest cells to audit
    solved = []
    init = suppression._Auditor.__init__

    def counting(self, *args, **kwargs):
        init(self, *args, **kwargs)
        solved.append(self)

    suppression._Auditor.__init__ = counting
    try:
        fate = suppression.complementary_suppression(cells, min_cell=11, keep=["all"])
    finally:
        suppression._Auditor.__init__ = init
    assert set(fate.values()) == {"shown"}
    assert sum(a.lps for a in solved) <= 6
