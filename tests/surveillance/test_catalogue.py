"""The disease catalogue: lookups on each side of every change, limits, CIDARS settings, and
malformed data refused with coded errors."""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from importlib import resources

import pytest

from healthgrid.errors import Invalid
from healthgrid.surveillance.catalogue import Catalogue, load_catalogue

CAT = load_catalogue()
H2, H24 = timedelta(hours=2), timedelta(hours=24)
RAW = json.loads(resources.files("healthgrid.surveillance").joinpath("catalogue.json").read_text("utf-8"))


@pytest.mark.parametrize(
    ("on", "a", "b", "c"),
    [
        (date(2013, 10, 31), 2, 26, 11),  # H1N1 in B, H7N9 not yet
        (date(2013, 11, 1), 2, 27, 11),  # H7N9 added, H1N1 still B until the year ends
        (date(2014, 1, 1), 2, 26, 11),  # "39 notifiable diseases: 2 A, 26 B, 11 C" (NHFPC 2013-11)
        (date(2024, 1, 1), 2, 28, 11),  # + COVID-19, + mpox
        (date(2025, 9, 1), 2, 27, 11),  # HPAI and H7N9 merged into one novel-influenza entry
    ],
)
def test_class_counts_on_a_date(on, a, b, c):
    assert [len(CAT.valid_on(on, k)) for k in ("A", "B", "C")] == [a, b, c]


@pytest.mark.parametrize(
    ("code", "on", "klass"),
    [
        ("L021", date(2023, 9, 19), None),  # mpox: class B from 2023-09-20
        ("L021", date(2023, 9, 20), "B"),
        ("9900", date(2025, 8, 31), "B"),  # human HPAI until the 2025 revision
        ("9900", date(2025, 9, 1), None),
        ("5200", date(2025, 8, 31), "B"),
        ("5200", date(2025, 9, 1), None),
        ("L022", date(2025, 8, 31), None),  # 人感染新亚型流感 from 2025-09-01
        ("L022", date(2025, 9, 1), "B"),
        ("5200", date(2013, 10, 31), None),  # H7N9 from 2013-11-01
        ("5200", date(2013, 11, 1), "B"),
        ("L023", date(2013, 12, 31), "B"),  # H1N1 folded into influenza from 2014-01-01
        ("L023", date(2014, 1, 1), None),
        ("4000", date(2008, 5, 1), None),  # HFMD class C from 2008-05-02
        ("4000", date(2008, 5, 2), "C"),
        ("L020", date(2020, 1, 19), None),  # COVID-19 from 2020-01-20
        ("L020", date(2020, 1, 20), "B"),
        ("0100", date(2024, 6, 1), "A"),
        ("3500", date(2024, 6, 1), "C"),
        ("L030", date(2024, 6, 1), "other"),  # chickenpox: not notifiable nationally
    ],
)
def test_disease_valid_on_a_date(code, on, klass):
    if klass is None:
        with pytest.raises(Invalid) as err:
            CAT.entry(code, on)
        assert err.value.code == "SURV-251"
        assert CAT.find(code, on) is None
    else:
        assert CAT.disease_class(code, on) == klass


def test_unknown_code_is_refused():
    with pytest.raises(Invalid) as err:
        CAT.entry("7777", date(2024, 1, 1))
    assert (err.value.code, err.value.detail["field"]) == ("SURV-251", "disease")


@pytest.mark.parametrize(
    ("code", "on", "subtype", "managed", "zh"),
    [
        ("9900", date(2013, 10, 31), None, "A", "人感染高致病性禽流感"),  # 乙类甲管 in the 2004 text
        ("9900", date(2013, 11, 1), None, "B", "人感染高致病性禽流感"),
        ("L020", date(2023, 1, 7), None, "A", "新型冠状病毒肺炎"),
        ("L020", date(2023, 1, 8), None, "B", "新型冠状病毒感染"),  # 乙类乙管, renamed
        ("1900", date(2024, 1, 1), "1901", "A", "炭疽"),  # pulmonary anthrax
        ("1900", date(2024, 1, 1), "1902", "B", "炭疽"),
        ("2700", date(2024, 1, 1), None, "A", "传染性非典型肺炎"),
    ],
)
def test_managed_as_class(code, on, subtype, managed, zh):
    assert CAT.managed_as(code, on, subtype) == managed
    assert CAT.entry(code, on).zh == zh


@pytest.mark.parametrize(
    ("code", "on", "subtype", "outbreak", "limit"),
    [
        ("0100", date(2024, 1, 1), None, False, H2),  # class A
        ("0200", date(2024, 1, 1), None, False, H2),
        ("2700", date(2024, 1, 1), None, False, H2),  # B managed as A
        ("1900", date(2024, 1, 1), "1901", False, H2),
        ("1900", date(2024, 1, 1), "1902", False, H24),
        ("1900", date(2024, 1, 1), None, False, H24),
        ("L020", date(2023, 1, 7), None, False, H2),
        ("L020", date(2023, 1, 8), None, False, H24),
        ("9900", date(2013, 10, 31), None, False, H2),
        ("9900", date(2013, 11, 1), None, False, H24),
        ("L011", date(2024, 1, 1), None, False, H2),  # pneumonia of unknown cause
        ("1000", date(2024, 1, 1), None, False, H24),
        ("1000", date(2024, 1, 1), None, True, H2),  # any outbreak
        ("4000", date(2024, 1, 1), None, False, H24),
        ("9899", date(2024, 1, 1), None, False, H24),
    ],
)
def test_reporting_and_review_limits(code, on, subtype, outbreak, limit):
    assert CAT.reporting_limit(code, on, subtype, outbreak=outbreak) == limit
    assert CAT.review_limit(code, on, subtype, outbreak=outbreak) == limit


@pytest.mark.parametrize(
    ("code", "icd10"),
    [
        ("0300", ("B15", "B16", "B17", "B18", "B19")),
        ("0302", ("B16", "B18.0", "B18.1")),
        ("0400", ("A03", "A06.0")),
        ("0500", ("A01",)),
        ("0600", ("B24",)),
        ("0601", ("Z21",)),
        ("1900", ("A22",)),
        ("2500", ("A33",)),
        ("2600", ("A15", "A16")),
        ("9899", ()),
    ],
)
def test_internal_codes_map_to_icd10(code, icd10):
    assert CAT.icd10(code, date(2024, 1, 1)) == icd10


def _rule_holders(rule, value, on=date(2024, 1, 1)):
    found = set()
    for d in CAT.valid_on(on):
        for sub in (None, *(s.code for s in d.subtypes)):
            held = d.rule(rule, sub)
            if (value in held) if isinstance(held, frozenset) else held == value:
                found.add(sub or d.code)
    return found


def test_carriers_only_where_the_spec_allows():
    assert _rule_holders("case_classes", "carrier") == {"0200", "0900", "0302", "0501", "0502", "2301", "2302"}


def test_acute_or_chronic_only_for_hepatitis_b_c_and_schistosomiasis():
    assert _rule_holders("acute_chronic", True) == {"0302", "0303", "3100"}


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        (date(2024, 1, 1), {"0100", "0200", "2700", "0900", "9900", "5200", "1901", "L011"}),
        (date(2025, 9, 1), {"0100", "0200", "2700", "0900", "L022", "1901", "L011"}),
    ],
)
def test_fixed_threshold_diseases(on, expected):
    assert _rule_holders("fixed_threshold", True, on) == expected


@pytest.mark.parametrize(
    ("code", "pct"),
    [("3600", 80), ("3500", 75), ("3700", 45), ("4000", 75), ("1400", 80), ("L030", 75), ("1000", 50),
     ("0100", None), ("L011", None)],
)
def test_mpm_percentile_per_disease_or_default(code, pct):
    assert CAT.mpm_percentile(code, date(2024, 1, 1)) == pct


def test_supplementary_cards_and_required_fields():
    cards = {d.code: d.supplementary_card for d in CAT.valid_on(date(2024, 1, 1)) if d.supplementary_card}
    assert cards == {"0600": "aids", "4000": "hfmd"}
    assert CAT.entry("0600", date(2024, 1, 1)).requires == {"household_address", "ethnicity", "marital_status",
                                                           "education"}


def _broken(mutate):
    data = copy.deepcopy(RAW)
    mutate(data)
    return data


def _entry(data, code):
    return next(d for d in data["diseases"] if d["code"] == code)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["diseases"].append(dict(_entry(d, "1000"), valid_from="2020-01-01")),  # overlapping versions
        lambda d: _entry(d, "1000").update({"class": "D"}),
        lambda d: _entry(d, "1000").update({"managed_as": "甲"}),
        lambda d: _entry(d, "1000").update({"case_classes": ["probable"]}),
        lambda d: _entry(d, "1000").update({"case_classes": []}),
        lambda d: _entry(d, "1000").update({"valid_to": "2000-01-01"}),
        lambda d: _entry(d, "1000").update({"valid_from": "not a date"}),
        lambda d: _entry(d, "1000").update({"supplementary_card": "tb"}),
        lambda d: _entry(d, "1000").update({"requires": ["shoe_size"]}),
        lambda d: _entry(d, "1000").update({"mpm_percentile": 100}),
        lambda d: _entry(d, "1000").pop("zh"),
        lambda d: _entry(d, "0400")["subtypes"].append(_entry(d, "0400")["subtypes"][0]),
        lambda d: _entry(d, "1900")["subtypes"][0].update({"managed_as": "X"}),
        lambda d: d.pop("limits_hours"),
        lambda d: d["limits_hours"].pop("urgent"),
    ],
)
def test_malformed_catalogue_is_refused(mutate):
    with pytest.raises(Invalid) as err:
        Catalogue.from_dict(_broken(mutate))
    assert err.value.code == "SURV-250"


def test_shipped_catalogue_round_trips():
    assert len(Catalogue.from_dict(RAW).diseases) == len(RAW["diseases"])
