"""Disclosure control of the rendered report, played as an attacker; reproducible escaped HTML."""

import re
from html.parser import HTMLParser

import numpy as np
import pytest

import ptanalytics as pt
from ptanalytics.report import render_report

MIN = 11


class _Tables(HTMLParser):
    """Every <table> of a page as rows of cell texts (stdlib only)."""

    def __init__(self):
        super().__init__()
        self.tables, self._t, self._r, self._c = [], None, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._t = []
        elif tag == "tr" and self._t is not None:
            self._r = []
        elif tag in ("td", "th") and self._r is not None:
            self._c = []

    def handle_endtag(self, tag):
        if tag == "table" and self._t is not None:
            self.tables.append(self._t)
            self._t = None
        elif tag == "tr" and self._r is not None:
            self._t.append(self._r)
            self._r = None
        elif tag in ("td", "th") and self._c is not None:
            self._r.append("".join(self._c).strip())
            self._c = None

    def handle_data(self, data):
        if self._c is not None:
            self._c.append(data)


def tables_of(text):
    p = _Tables()
    p.feed(text)
    out = {}
    for t in p.tables:
        head, rows = t[0], [r for r in t[1:] if len(r) == len(t[0])]
        out.setdefault(tuple(head), []).append([dict(zip(head, r, strict=True)) for r in rows])
    return out


def _bounds(v, total):
    """What the page says about one count cell: its [low, high]."""
    if v == f"<{MIN}":
        return (1, MIN - 1)
    if v == "suppressed":
        return (0, total)
    return (int(v.replace(",", "")), int(v.replace(",", "")))


def attack(text):
    """Recover hidden counts by row/column sums, linked tables and percentages x n.

    Each relation is ``sum(plus) - sum(minus) = 0`` over cells; the attacker propagates
    interval bounds until nothing changes and returns the hidden cells pinned to one value,
    and the hidden cells whose percentage is shown.
    """
    tabs = tables_of(text)
    total = int(re.search(r"<p>([\d,]+) patients;", text).group(1).replace(",", ""))
    cells, rels, leaks = {}, [], []

    hidden = set()

    def cell(key, v):
        cells[key] = list(_bounds(v, total))
        if cells[key][0] != cells[key][1]:
            hidden.add(key)
        return key

    cells["N"] = [total, total]
    # Table 1 by group: in each column a categorical characteristic's levels (missing included)
    # add up to the column's patients; in each row the groups add up to Overall; a cell is
    # "n (%)" or a label, so a hidden count shows no percent.
    (head,) = [h for h in tabs if h[:3] == ("Characteristic", "Level", "Overall")]
    (t1,) = tabs[head]
    cols = [c for c in head[2:] if c != "SMD"]
    t1_patients, blocks, char = {}, {}, None
    for i, r in enumerate(t1):
        char = r["Characteristic"] or char
        if r["Level"] in ("mean (SD)", "median [IQR]"):
            continue
        ks = {c: cell(("t1", i, c), r[c].split(" (")[0]) for c in cols}
        if len(cols) > 1:
            rels.append(([ks[c] for c in cols if c != "Overall"], [ks["Overall"]]))
        if char == "Patients":
            t1_patients = ks
        if not char.endswith("n (%)"):
            continue
        for c in cols:
            blocks.setdefault((char, c), []).append(ks[c])
    rels.append(([t1_patients["Overall"]], ["N"]))
    for (_, c), ks in blocks.items():
        rels.append((ks, [t1_patients[c]]))
    groups = {}
    band_tabs = tabs.get(("Attendance band", "Patients", "Patients (%)"), [])
    for rows in band_tabs:
        ks = []
        for r in rows:
            k = cell(("band", r["Attendance band"]), r["Patients"])
            groups[r["Attendance band"]] = k
            ks.append(k)
            if r["Patients"] in (f"<{MIN}", "suppressed") and r["Patients (%)"] != "suppressed":
                leaks.append(("band percent", k))
        rels.append((ks, ["N"]))
    for g, k in t1_patients.items():
        if g in groups:
            rels.append(([k], [groups[g]]))
        elif g != "Overall":  # a group of another grouping (an arm): Table 1's column is its size
            groups[g] = k
    for rows in tabs.get(("Adherence trajectory", "Patients"), []):
        ks = [cell(("traj", r["Adherence trajectory"]), r["Patients"]) for r in rows]
        rels.append((ks, ["N"]))
    # Timepoints: observed + missing = patients = the group's size; groups add up to N.
    heads = [h for h in tabs if h[:2] == ("Instrument", "Timepoint")]
    for head in heads:
        g = head[2] if len(head) == 7 else None
        for rows in tabs[head]:
            per_tp = {}
            for i, r in enumerate(rows):
                p = cell(("tp", i, "p"), r["Patients"])
                o = cell(("tp", i, "o"), r["Observed"])
                m = cell(("tp", i, "m"), r["Missing"])
                rels.append(([o, m], [p]))
                per_tp.setdefault((r["Instrument"], r["Timepoint"]), []).append(p)
                if g and r[g] in groups:
                    rels.append(([p], [groups[r[g]]]))
                if g and r["Timepoint"] == "follow-up" and r["Instrument"] == "NPRS":
                    groups.setdefault(("completers", r[g]), o)
            for ks in per_tp.values():
                rels.append((ks, ["N"]))
    # Responders: ITT n = group; ITT n - missing = completers n = observed at follow-up;
    # completers responders = ITT responders <= completers n.
    resp_heads = [h for h in tabs if "Responders" in h and "Missing at follow-up" in h]
    itt_rows = {}
    for head in resp_heads:
        g = head[0] if head[0] != "Patients" else None
        itt, comp = tabs[head][0], tabs[head][1]
        # A group with no completer has no completers row: its completers are a known 0.
        comp = {(b[g] if g else None): b for b in comp}
        nobody = {**dict.fromkeys(head, "0"), "Responders (%)": "suppressed", "95% CI": ""}
        for i, a in enumerate(itt):
            b = comp.get(a[g] if g else None, nobody)
            n = cell(("itt", i, "n"), a["Patients"])
            resp = cell(("itt", i, "r"), a["Responders"])
            miss = cell(("itt", i, "m"), a["Missing at follow-up"])
            cn = cell(("c", i, "n"), b["Patients"])
            cr = cell(("c", i, "r"), b["Responders"])
            nonresp = cell(("c", i, "nonresp"), "suppressed")
            rels += [([cn, miss], [n]), ([cr], [resp]), ([cr, nonresp], [cn])]
            itt_rows[a[g] if g else None] = (n, miss)
            if g and a[g] in groups:
                rels.append(([n], [groups[a[g]]]))
            if g and ("completers", a[g]) in groups:
                rels.append(([cn], [groups[("completers", a[g])]]))
            for row, keys in ((a, (n, resp)), (b, (cn, cr))):
                masked = any(cells[k][0] != cells[k][1] for k in keys)
                for derived in ("Responders (%)", "95% CI"):
                    if masked and row[derived] != "suppressed":
                        leaks.append((derived, i))
    # Multiple imputation: its patients and imputed are the ITT row's patients and missing; a
    # pooled percentage beside a hidden group size would give the size away.
    mi_heads = [h for h in tabs if "Imputed (missing at follow-up)" in h]
    for head in mi_heads:
        g = head[0] if head[0] != "Patients" else None
        for rows in tabs[head]:
            for i, r in enumerate(rows):
                n = cell(("mi", i, "n"), r["Patients"])
                imp = cell(("mi", i, "imp"), r["Imputed (missing at follow-up)"])
                if (r[g] if g else None) in itt_rows:
                    itt_n, itt_miss = itt_rows[r[g] if g else None]
                    rels += [([n], [itt_n]), ([imp], [itt_miss])]
                hidden_n = cells[n][0] != cells[n][1]
                for derived in ("Responders (%)", "95% CI"):
                    if hidden_n and r[derived] != "suppressed":
                        leaks.append(("mi " + derived, i))
    # Planned vs actual length: extended + shortened + unchanged = patients of the planned
    # length, the lengths' patients add up to the patients with both lengths; a mean beside a
    # hidden count is a leak.
    for head in [h for h in tabs if h[:2] == ("Planned guided weeks", "Patients")]:
        for rows in tabs[head]:
            ns = []
            for i, r in enumerate(rows):
                n = cell(("len", i, "n"), r["Patients"])
                ext = cell(("len", i, "ext"), r["Guided phase extended"])
                short = cell(("len", i, "short"), r["Guided phase shortened"])
                same = cell(("len", i, "nonresp"), "suppressed")
                rels.append(([ext, short, same], [n]))
                ns.append(n)
                hidden_n = cells[n][0] != cells[n][1]
                for mean in [c for c in head if c.startswith("Mean ")]:
                    if hidden_n and r[mean] != "suppressed":
                        leaks.append(("length " + mean, i))
            rels.append(([*ns, cell(("len", "no length", "nonresp"), "suppressed")], ["N"]))
    # Propagate the bounds.
    for _ in range(50):
        changed = False
        for plus, minus in rels:
            terms = [(k, 1) for k in plus] + [(k, -1) for k in minus]
            for k, s in terms:
                others_lo = sum(
                    cells[o][0] * t if t > 0 else cells[o][1] * t for o, t in terms if o != k
                )
                others_hi = sum(
                    cells[o][1] * t if t > 0 else cells[o][0] * t for o, t in terms if o != k
                )
                # s * x + others = 0  ->  x in [-others_hi / s, -others_lo / s]
                lo, hi = sorted((-others_hi * s, -others_lo * s))
                new = [max(cells[k][0], lo), min(cells[k][1], hi)]
                if new != cells[k]:
                    cells[k] = new
                    changed = True
        if not changed:
            break
    pinned = [k for k in hidden if cells[k][0] == cells[k][1]]
    recovered = [k for k in pinned if k[-1] != "nonresp" or 1 <= cells[k][0] < MIN]
    return recovered + leaks, cells


HOSTILE = "<script>alert(1)</script> & [x](javascript:alert(2)) $\\alpha$"


@pytest.fixture(scope="module")
def default_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("d") / "r.html"
    render_report(None, out, title=HOSTILE, progress=False)
    return out.read_bytes()


@pytest.fixture(scope="module")
def sim60(tmp_path_factory):
    folder = tmp_path_factory.mktemp("c60") / "cohort"
    pt.simulate_cohort(60, seed=12).write(folder, format="csv")
    return folder


def test_default_report_no_suppressed_count_can_be_recovered(default_report):
    text = default_report.decode("utf-8")
    recovered, cells = attack(text)
    assert recovered == []
    assert f"&lt;{MIN}" in text and "suppressed" in text  # there was something to protect
    # The attack reaches the linked tables: it knows the completers of each band, and it read
    # every count table of the report (bands, trajectories, timepoints, responders, multiple
    # imputation, planned vs actual length) by its headers in words.
    assert any(k[0] == "c" for k in cells)
    read = {k[0] for k in cells if isinstance(k, tuple)}
    assert {"t1", "band", "traj", "tp", "itt", "c", "mi", "len"} <= read, read


def test_the_attack_recovers_what_primary_suppression_alone_leaks():
    # The page of main before this change: medium band hidden, total and the other two shown.
    page = (
        "<p>300 patients; x</p><table><tr><th>Attendance band</th><th>Patients</th>"
        "<th>Patients (%)</th></tr><tr><td>low</td><td>165</td><td>55.0%</td></tr>"
        f"<tr><td>medium</td><td>&lt;{MIN}</td><td>suppressed</td></tr>"
        "<tr><td>high</td><td>130</td><td>43.3%</td></tr></table>"
        "<table><tr><th>Characteristic</th><th>Level</th><th>Overall</th></tr>"
        "<tr><td>Patients</td><td>n</td><td>300</td></tr></table>"
    )
    recovered, cells = attack(page)
    assert recovered == [("band", "medium")] and cells[("band", "medium")] == [5, 5]


def test_report_is_byte_identical_and_escaped(default_report, tmp_path):
    again = render_report(None, tmp_path / "again.html", title=HOSTILE, progress=False)
    assert again.read_bytes() == default_report
    text = default_report.decode("utf-8")
    assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert 'href="javascript:' not in text
    assert re.findall(r'id="cell-id=([^"]+)"', text)[:2] == ["cell-000", "cell-001"]


def test_sixty_patient_report_no_suppressed_count_can_be_recovered(sim60, tmp_path):
    out = render_report(sim60, tmp_path / "r60.html", progress=False)
    recovered, _ = attack(out.read_text(encoding="utf-8"))
    assert recovered == []


def test_arm_report_no_suppressed_count_can_be_recovered(tmp_path):
    # A trial grouped by arm with a few patients of no arm (the Ashar 2022 example): the group
    # of no arm is "not recorded" in every table, and its pooled percentage stays hidden.
    from pathlib import Path

    ex = Path(__file__).resolve().parents[1] / "examples" / "ashar2022"
    result = pt.ingest([ex / "Ashar2022_outcomes_demographics.csv"], mapping=ex / "mapping.toml")
    folder = result.cohort.write(tmp_path / "ashar", format="csv")
    text = render_report(folder, tmp_path / "a.html", progress=False).read_text(encoding="utf-8")
    recovered, cells = attack(text)
    assert recovered == []
    assert {"t1", "tp", "itt", "c", "mi"} <= {k[0] for k in cells if isinstance(k, tuple)}


def test_sparse_cohort_renders(tmp_path):
    cohort = pt.simulate_cohort(8, seed=3)
    pts = cohort.patients.copy()
    pts["age"] = [40.0] + [np.nan] * (len(pts) - 1)  # age known for one patient
    pts["arm"] = ["A $x$ arm", "B$"] * (len(pts) // 2)  # "$" would start matplotlib mathtext
    cohort.tables["patients"] = pts
    folder = cohort.write(tmp_path / "sparse", format="csv")
    text = render_report(folder, tmp_path / "s.html", progress=False).read_text(encoding="utf-8")
    assert "fewer than 11 patients" in text
    assert "40.0" not in text  # the one known age is not printed as a mean


def test_min_cell_below_eleven_warns(tmp_path, capsys):
    from ptanalytics.cli import main

    assert main(["report", "--min-cell", "1", "--data", str(tmp_path)]) == 2  # not a cohort
    err = capsys.readouterr().err
    assert "WARNING: --min-cell 1 is below 11" in err and "suppression is off" in err
