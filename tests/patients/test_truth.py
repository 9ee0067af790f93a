"""The truth set: its shape, determinism and duplicate share, and each corruption being what
its label says (and nothing else changed)."""

from datetime import date

import pytest

from healthgrid.patients import domain as d
from healthgrid.patients.truth import COLUMNS, HOMOPHONES, evaluate, true_pairs, truth_set

KINDS = {"missing_id", "homophone", "typo", "dropped_char", "day_month_swapped", "date_digit", "phone_changed",
         "phone_removed", "moved_village", "moved_township", "sex_unknown"}
# The fields each corruption may change; every other field of a duplicate equals the original's.
TOUCHES = {"missing_id": {"id_key"}, "homophone": {"name"}, "typo": {"name"}, "dropped_char": {"name"},
           "day_month_swapped": {"birth_date"}, "date_digit": {"birth_date"}, "phone_changed": {"phone_key"},
           "phone_removed": {"phone_key"}, "moved_village": {"village_id"},
           "moved_township": {"village_id", "township_id"}, "sex_unknown": {"sex"}}


@pytest.fixture(scope="module")
def truth():
    return truth_set(20_000, seed=3)


def _pairs_with_original(df):
    originals = df[df.corruptions == ""].set_index("true_id")
    for dup in df[df.corruptions != ""].itertuples(index=False):
        yield originals.loc[dup.true_id], dup


def test_columns_ids_and_duplicate_share(truth):
    assert tuple(truth.columns) == COLUMNS
    assert sorted(truth.record_id) == list(range(len(truth)))
    assert (truth.record_id.diff().dropna() > 0).all()  # rows in record_id order ...
    assert not (truth.true_id.diff().dropna() > 0).all()  # ... which is not the people's order
    duplicates = len(truth) - truth.true_id.nunique()
    assert duplicates == (truth.corruptions != "").sum() == 2000
    per_person = truth.true_id.value_counts()
    assert (per_person == 3).sum() > 50 and per_person.max() == 3
    assert truth.id_key[truth.corruptions == ""].notna().all()
    assert (truth.name_pinyin == truth.name.map(d.name_pinyin)).all()
    assert set(truth.sex) <= {"M", "F", "U"}


def test_same_seed_same_set_and_another_seed_another():
    a, b, c = truth_set(1500, seed=8), truth_set(1500, seed=8), truth_set(1500, seed=9)
    assert a.equals(b)
    assert not a.equals(c)
    assert len(truth_set(1500, seed=8, duplicate_share=0.2)) == 1500


def test_every_corruption_kind_appears_and_is_what_it_says(truth):
    seen = set()
    for orig, dup in _pairs_with_original(truth):
        done = dup.corruptions.split(";")
        seen.update(done)
        assert 1 <= len([k for k in done if k != "missing_id"]) <= 2
        changed = set().union(*(TOUCHES[k] for k in done))
        for column in ("name", "sex", "birth_date", "id_key", "phone_key", "village_id", "township_id"):
            if column not in changed:
                assert getattr(dup, column) == orig[column], (column, done)
        for kind in done:
            _check(kind, orig, dup)
    assert seen == KINDS


def _check(kind, orig, dup):
    if kind == "missing_id":
        assert dup.id_key is None
    elif kind in ("homophone", "typo"):
        (i,) = [i for i, (x, y) in enumerate(zip(orig["name"], dup.name, strict=True)) if x != y]
        assert i >= len(d.surname_of(orig["name"]))  # the given name
        same_key = d.name_key(dup.name_pinyin) == d.name_key(orig["name_pinyin"])
        assert same_key == (kind == "homophone")
        assert (dup.name[i] in HOMOPHONES.get(orig["name"][i], [])) == (kind == "homophone")
    elif kind == "dropped_char":
        start = len(d.surname_of(orig["name"]))
        assert len(orig["name"]) - start == 2 and len(dup.name) == len(orig["name"]) - 1  # a 2-char given name
        assert any(orig["name"][:i] + orig["name"][i + 1:] == dup.name for i in (start, start + 1))
    elif kind == "day_month_swapped":
        assert dup.birth_date == d.swapped_day_month(orig["birth_date"]) and dup.id_key is None
    elif kind == "date_digit":
        a, b = f"{orig['birth_date']:%Y%m%d}", f"{dup.birth_date:%Y%m%d}"
        assert sum(x != y for x, y in zip(a, b, strict=True)) == 1 and dup.id_key is None
        assert dup.birth_date <= date(2025, 6, 30)
    elif kind == "phone_changed":
        assert dup.phone_key != orig["phone_key"] and d.normalise_phone(dup.phone_key) == dup.phone_key
    elif kind == "phone_removed":
        assert dup.phone_key is None and orig["phone_key"] is not None
    elif kind == "moved_village":
        assert dup.village_id != orig["village_id"] and dup.township_id == orig["township_id"]
    elif kind == "moved_township":
        assert dup.township_id != orig["township_id"]
    elif kind == "sex_unknown":
        assert dup.sex == "U" and dup.id_key is None


def test_homophones_are_read_alike():
    for char, others in HOMOPHONES.items():
        assert all(d.name_pinyin("王" + o) == d.name_pinyin("王" + char) for o in others), char


def test_true_pairs_and_evaluate():
    df = truth_set(800, seed=2)
    truth = true_pairs(df)
    groups = df.groupby("true_id").record_id.count()
    assert len(truth) == sum(n * (n - 1) // 2 for n in groups)
    assert all(a < b for a, b in truth)
    some = sorted(truth)[: len(truth) // 2]
    score = evaluate([(b, a) for a, b in some] + [(0, 10**6)], truth)
    assert (score["tp"], score["fp"], score["fn"]) == (len(some), 1, len(truth) - len(some))
    assert score["precision"] == pytest.approx(len(some) / (len(some) + 1))
    assert score["recall"] == pytest.approx(len(some) / len(truth))
