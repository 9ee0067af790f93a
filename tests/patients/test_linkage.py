"""Batch de-duplication with Splink on a small truth set: it finds the duplicates, always
those sharing the ID, never links two different IDs, and trains levels the online matcher
can use."""

from datetime import date

import pandas as pd
import pytest

from healthgrid.patients import domain as d
from healthgrid.patients.linkage import FIELDS, dedupe, suggested_levels
from healthgrid.patients.truth import evaluate, true_pairs, truth_set


@pytest.fixture(scope="module")
def truth():
    return truth_set(3000, seed=21)


@pytest.fixture(scope="module")
def result(truth):
    return dedupe(truth)


def _pairs(frame):
    return set(zip(frame.record_id_l, frame.record_id_r, strict=True))


def test_finds_the_duplicates(truth, result):
    score = evaluate(_pairs(result.links()), true_pairs(truth))
    assert score["f1"] >= 0.95, score
    assert (result.pairs.match_probability >= result.review_threshold).all()
    assert set(result.timings) >= {"blocking", "training", "prediction", "total"}
    assert result.blocked_pairs["id"] > 0 and result.blocked_pairs["birth_date"] > 0
    assert 0 < result.prior < 1


def test_duplicates_sharing_the_id_are_always_linked(truth, result):
    with_id = truth.dropna(subset=["id_key"])
    same_id = with_id.merge(with_id, on="id_key")
    same_id = same_id[same_id.record_id_x < same_id.record_id_y]
    assert len(same_id) > 100
    assert set(zip(same_id.record_id_x, same_id.record_id_y, strict=True)) <= _pairs(result.links())


def test_two_different_ids_are_never_linked(truth, result):
    ids = truth.set_index("record_id").id_key
    for a, b in _pairs(result.pairs):
        assert ids[a] is None or ids[b] is None or ids[a] == ids[b]
    assert set(result.pairs.resident_id) <= {"same", "null"}


def test_levels_are_named_as_in_the_domain(result):
    for field_name, levels in d.DEFAULT_LEVELS.items():
        assert set(result.pairs[field_name].dropna()) <= set(levels) | {"null"}
        assert set(result.parameters[field_name]) == set(levels)


def test_suggested_levels_have_the_domain_shape_and_drive_the_matcher(result):
    levels = suggested_levels(result)
    assert levels.keys() == d.DEFAULT_LEVELS.keys()
    for field_name, defaults in d.DEFAULT_LEVELS.items():
        assert levels[field_name].keys() == defaults.keys()
        assert all(1e-3 <= m <= 1 and 0 < u <= 1 for m, u in levels[field_name].values())
    assert levels["resident_id"]["same"][1] < 1e-3 and levels["name"]["exact"][0] > 0.2
    model = d.MatchModel(levels=levels)
    a = d.MatchRecord("张晓明", "zhang xiao ming", "M", date(1980, 3, 12), phone_key="p1", village_id=1,
                      township_id=1)
    b = d.MatchRecord("张小明", "zhang xiao ming", "M", date(1980, 3, 12), phone_key="p1", village_id=1,
                      township_id=1)
    assert model.compare(a, b).levels["name"] == "same_pinyin"
    assert model.compare(a, b).weight > model.compare(a, d.MatchRecord("李四", "li si", "F", None)).weight


def test_survives_empty_columns_and_tiny_inputs(truth):
    blank = truth.head(400).assign(id_key=None, phone_key=None, birth_date=None)
    assert list(dedupe(blank).pairs.columns[:4]) == ["record_id_l", "record_id_r", "match_probability",
                                                    "match_weight"]
    tiny = dedupe(truth.head(1))
    assert tiny.pairs.empty and set(tiny.pairs.columns) >= set(FIELDS)
    assert dedupe(pd.DataFrame(columns=truth.columns)).pairs.empty


def test_levels_agree_with_the_online_matcher():
    """The SQL comparisons are domain.compare_levels: the same levels for every candidate pair."""
    truth = truth_set(1500, seed=5)
    truth["id_key"] = truth.id_key.where(truth.record_id % 2 == 0, None)  # else different IDs rule pairs out
    result = dedupe(truth, review_threshold=0.0)  # every candidate, however unlikely
    rows = truth.set_index("record_id")

    def record(i):
        r = rows.loc[i]
        return d.MatchRecord(r["name"], r["name_pinyin"], r["sex"], r["birth_date"], r["id_key"], r["phone_key"],
                             r["village_id"], r["township_id"])

    assert len(result.pairs) > 200
    assert {level for f in FIELDS for level in result.pairs[f]} >= {"different", "similar", "close", "null"}
    for pair in result.pairs.itertuples(index=False):
        expected = d.compare_levels(record(pair.record_id_l), record(pair.record_id_r))
        assert {f: getattr(pair, f) for f in FIELDS} == expected
