import pytest

from ptanalytics import CATEGORIES, exercise_catalogue
from ptanalytics.cohort.catalogue import prescribed_minutes

# The flexibility stretches of the seed article and the doses it gives (upper end of ranges).
ARTICLE = {
    "hip_flexor_stretch": dict(reps=3, hold_s=30, hold_s_min=30, sides=2),
    "hip_adductor_stretch": dict(reps=3, hold_s=30, hold_s_min=20, sides=2),
    "hamstring_stretch": dict(reps=3, hold_s=30, hold_s_min=30, sides=2),
    "piriformis_stretch": dict(reps=3, hold_s=30, hold_s_min=30, sides=2),
    "cat_cow": dict(reps=20, reps_min=15, hold_s=0),
    "lower_trunk_rotation": dict(reps=30, reps_min=25, hold_s=0),
    "figure_4_stretch": dict(reps=3, hold_s=30, hold_s_min=20, sides=2),
    "knee_to_chest": dict(reps=3, hold_s=30, hold_s_min=20, sides=2),
    "childs_pose": dict(reps=1, hold_s=30),
}


def test_every_article_stretch_has_its_dose():
    cat = exercise_catalogue().set_index("exercise")
    for exercise, dose in ARTICLE.items():
        row = cat.loc[exercise]
        assert row["category"] == "flexibility"
        assert row["source"].startswith("Seed article")
        for key, value in dose.items():
            assert row[key] == value, (exercise, key)


def test_every_category_is_filled_and_sourced():
    cat = exercise_catalogue()
    assert set(cat["category"]) == set(CATEGORIES)
    assert (cat.groupby("category", observed=True).size() >= 3).all()
    assert cat["exercise"].is_unique
    assert cat["source"].str.len().gt(20).all()
    others = cat[cat["category"] != "flexibility"]
    assert others["source"].str.contains("not from the seed article").all()


def test_durations_follow_the_documented_formula():
    cat = exercise_catalogue()
    for row in cat[cat["category"] != "aerobic"].itertuples():
        assert prescribed_minutes(row.sets, row.reps, row.hold_s, row.sides) == row.duration_min
    assert prescribed_minutes(1, 3, 30, 2) == pytest.approx(3.5)  # 3 x 35 s x 2 sides = 210 s


def test_catalogue_is_a_copy():
    a = exercise_catalogue()
    a.loc[0, "reps"] = 99
    assert exercise_catalogue().loc[0, "reps"] != 99


def test_catalogue_doc_is_generated_from_the_csv():
    from pathlib import Path

    from ptanalytics.cohort.catalogue import catalogue_markdown

    doc = Path(__file__).resolve().parents[1] / "docs" / "exercise_catalogue.md"
    assert doc.read_text(encoding="utf-8") == catalogue_markdown(), "stale: run 'make docs'"
