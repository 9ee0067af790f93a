"""The result catalogue: items and their codes, validity per §4.4, region lists by level, local
code maps, EQA facts, the domain helpers, and malformed data refused with coded errors."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from importlib import resources

import pytest

from healthgrid.errors import Invalid
from healthgrid.results.catalogue import Catalogue, LocalCodeMap, load_catalogue
from healthgrid.results.domain import (
    CATEGORIES,
    CN_TZ,
    EqaFacts,
    EqaRecord,
    age_days,
    in_region,
    level_index,
    region_prefix,
)

CAT = load_catalogue()
RAW = json.loads(resources.files("healthgrid.results").joinpath("catalogue.json").read_text("utf-8"))


def test_packaged_catalogue_loads_every_item_with_a_category_price_and_analyte():
    assert CAT.version == RAW["version"] and len(CAT.items) == len(RAW["items"]) >= 35
    for item in CAT.items.values():
        assert item.category in CATEGORIES and item.price_cny > 0 and item.analytes


@pytest.mark.parametrize(
    ("code", "days", "source"),
    [
        ("K", 7, "hubei"), ("NA", 7, "hubei"), ("CL", 7, "hubei"), ("CA", 7, "hubei"), ("MG", 7, "hubei"),
        ("GLU", 30, "hubei"), ("TC", 30, "hubei"), ("TG", 30, "hubei"), ("HDLC", 30, "hubei"),
        ("LDLC", 30, "hubei"), ("TBIL", 30, "hubei"), ("DBIL", 30, "hubei"), ("ALT", 30, "hubei"),
        ("AST", 30, "hubei"), ("ALB", 30, "hubei"), ("HBA1C", 60, "hubei"),
        ("CBC", 3, "ex"), ("PT", 3, "ex"), ("APTT", 3, "ex"), ("URINE", 3, "ex"), ("AFP", 30, "ex"),
        ("HBSAG", 90, "ex"), ("HIV", 30, "ex"), ("TPAB", 30, "ex"), ("HCV", 30, "ex"), ("XR-CHEST", 30, "ex"),
        ("CT-HEAD", 30, "ex"), ("MR-BRAIN", 30, "ex"), ("US-ABD", 7, "ex"), ("ECG", 1, "ex"),
        ("PATH-SLIDE", None, "ex"),  # pathology is not time-limited: slides are re-read
        ("CREA", 30, "platform"), ("UREA", 30, "platform"), ("UA", 30, "platform"), ("TSH", 30, "platform"),
    ],
)
def test_validity_days_follow_the_hubei_list_then_the_typical_defaults(code, days, source):
    item = CAT.item(code)
    assert (item.validity_days, item.validity_source) == (days, source)


@pytest.mark.parametrize(
    ("loinc", "item", "analyte"),
    [("2823-3", "K", "K"), ("6690-2", "CBC", "WBC"), ("58410-2", "CBC", None), ("5902-2", "PT", "PT-S"),
     ("6301-6", "PT", "INR"), ("29252-4", "CT-CHEST", "CT-CHEST"), ("11524-6", "ECG", "ECG")],
)
def test_a_loinc_code_finds_its_item_and_analyte(loinc, item, analyte):
    found, part = CAT.by_loinc(loinc)
    assert found.code == item and (part.code if part else None) == analyte


def test_an_unknown_loinc_code_finds_nothing_and_an_unknown_item_is_refused():
    assert CAT.by_loinc("99999-9") is None
    with pytest.raises(Invalid) as e:
        CAT.item("NOPE")
    assert e.value.code == "RES-002" and e.value.detail["field"] == "item"


@pytest.mark.parametrize(
    ("item", "analyte", "sex", "text"),
    [("CBC", "HGB", "male", "130-175"), ("CBC", "HGB", "female", "115-150"), ("K", "K", "male", "3.5-5.3"),
     ("K", "K", None, "3.5-5.3"), ("ALT", "ALT", "female", "7-40"), ("TC", "TC", None, "<5.2"),
     ("HDLC", "HDLC", None, ">1"), ("HBSAG", "HBSAG", "female", "阴性")],
)
def test_reference_ranges_differ_by_sex_where_the_standard_says_so(item, analyte, sex, text):
    assert CAT.item(item).analyte(analyte).reference_range(sex).as_text() == text


def test_a_sex_specific_item_has_no_range_for_an_unknown_sex():
    assert CAT.item("CBC").analyte("HGB").reference_range(None) is None


@pytest.mark.parametrize(
    ("region", "level", "item", "recognised"),
    [
        ("420102", "L1", "HBA1C", True),  # Wuhan's own list adds HbA1c for township level
        ("420502", "L1", "HBA1C", False),  # Yichang has only the Hubei list
        ("420502", "L1", "K", True),
        ("420502", "L2", "MR-BRAIN", False),
        ("420102", "L2", "MR-BRAIN", True),
        ("420502", "L3", "PATH-SLIDE", True),
        ("420502", "L0", "K", False),  # village clinics recognise nothing in these lists
        ("420116101000", "L1", "K", True),  # a 12-digit township code inside Hubei
        ("150102", "L2", "MR-BRAIN", True),
        ("110101", "L3", "K", False),  # no list for Beijing in the packaged catalogue
    ],
)
def test_recognised_items_are_the_union_of_the_lists_covering_the_organisation(region, level, item, recognised):
    assert (item in CAT.recognised_items(region, level)) is recognised


def test_marks_and_the_scope_option_come_from_the_most_specific_list():
    assert CAT.accepted_marks("420102") == {"HR", "鄂HR", "武汉HR"}
    assert CAT.accepted_marks("420502") == {"HR", "鄂HR"}
    assert CAT.accepted_marks("110101") == {"HR"}
    assert [CAT.issuing_mark(r) for r in ("420102", "420502", "110101")] == ["武汉HR", "鄂HR", "HR"]
    assert [CAT.upper_accepts_lower(r) for r in ("420102", "150102", "110101")] == [False, True, False]
    assert CAT.region_of_mark("鄂HR").code == "420000" and CAT.region_of_mark("HR") is None


def test_region_overrides_for_validity_and_price_win_most_specific_first():
    cat = CAT.with_regions([
        {"code": "420000", "zh": "湖北省", "mark": "鄂HR", "levels": {"L1": ["K"]},
         "validity_days": {"CT-HEAD": 90, "K": 5}, "prices_cny": {"K": 3.5}},
        {"code": "420100", "zh": "武汉市", "mark": "武汉HR", "levels": {}, "validity_days": {"K": 6}},
    ])
    assert cat.validity_days("K", "420102") == 6 and cat.validity_days("K", "420502") == 5
    assert cat.validity_days("CT-HEAD", "420102") == 90 and cat.validity_days("CT-HEAD", "110101") == 30
    assert cat.price_cny("K", "420502") == 3.5 and cat.price_cny("K", "110101") == 4
    assert CAT.validity_days("K", "420502") == 7  # the packaged catalogue is unchanged


def _mutate(path: str, value, *, remove: bool = False) -> dict:
    data = copy.deepcopy(RAW)
    *parents, last = path.split(".")
    node = data
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    if remove:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return data


K = next(i for i, it in enumerate(RAW["items"]) if it["code"] == "K")
CBC = next(i for i, it in enumerate(RAW["items"]) if it["code"] == "CBC")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_mutate("version", None, remove=True), "malformed"),
        (_mutate(f"items.{K}.category", "radiology"), "category"),
        (_mutate(f"items.{K}.code", "k"), "capitals"),
        (_mutate(f"items.{K}.loinc", "2951-2"), "LOINC 2951-2"),  # sodium's code twice
        (_mutate(f"items.{K}.loinc", "K-1"), "not a LOINC code"),
        (_mutate(f"items.{K}.ranges", [{"low": 5.3, "high": 3.5}]), "above high"),
        (_mutate(f"items.{K}.ranges", [{"sex": "m", "low": 3.5}]), "range sex"),
        (_mutate(f"items.{K}.ranges", [{"low": 3.5}, {"low": 3.6}]), "same sex"),
        (_mutate(f"items.{K}.ranges", [{}]), "low, high or text"),
        (_mutate(f"items.{K}.value_type", "XX"), "value type"),
        (_mutate(f"items.{K}.validity_days", -1), "validity_days"),
        (_mutate(f"items.{K}.validity_days", "7"), "validity_days"),
        (_mutate(f"items.{K}.validity_days", True), "validity_days"),
        (_mutate(f"items.{K}.validity_source", "guess"), "validity_source"),
        (_mutate(f"items.{K}.price_cny", -4), "negative price"),
        (_mutate(f"items.{CBC}.components.1.code", "WBC"), "repeats an analyte"),
        (_mutate("regions.0.levels.L1", ["K", "NOPE"]), "unknown item 'NOPE'"),
        (_mutate("regions.0.levels.L1", ["@nothing"]), "names no category or group"),
        (_mutate("regions.0.levels.L9", ["K"]), "levels ['L9']"),
        (_mutate("regions.0.code", "4200"), "not a division code"),
        (_mutate("regions.0.mark", "HR"), "regional prefix"),
        (_mutate("regions.0.mark", "鄂"), "regional prefix"),
        (_mutate("regions.1.mark", "鄂HR"), "both use the mark"),
        (_mutate("regions.0.validity_days", {"NOPE": 3}), "unknown item"),
        (_mutate("regions.0.validity_days", {"K": -3}), "validity_days"),
        (_mutate("regions.0.prices_cny", {"K": -1}), "negative price"),
        (_mutate("regions.0.upper_accepts_lower", "yes"), "upper_accepts_lower"),
        (_mutate("regions.0.levels", None, remove=True), "malformed region"),
    ],
)
def test_malformed_catalogue_data_is_refused_with_res_001(data, words):
    with pytest.raises(Invalid) as e:
        Catalogue.from_dict(data)
    assert e.value.code == "RES-001" and words in e.value.message


# -- local codes ------------------------------------------------------------------------------

def test_a_facility_local_code_maps_to_a_catalogue_item():
    codes = LocalCodeMap("WHYY", {"SH-K": "K", " XCG ": "CBC"}, CAT)
    assert codes.item("SH-K") == "K" and codes.item("XCG") == "CBC" and "XCG" in codes and len(codes) == 2


def test_an_unmapped_local_code_is_refused_naming_the_facility_and_code():
    codes = LocalCodeMap("WHYY", [("SH-K", "K")], CAT)
    with pytest.raises(Invalid) as e:
        codes.item("SH-NA")
    assert e.value.code == "RES-003" and "WHYY" in e.value.message and "'SH-NA'" in e.value.message
    assert e.value.detail == {"field": "code", "facility": "WHYY", "local_code": "SH-NA"}


@pytest.mark.parametrize(
    ("pairs", "words"),
    [([("SH-K", "NOPE")], "not in the catalogue"), ([("SH-K", "K"), ("SH-K", "NA")], "maps to both"),
     ([("  ", "K")], "empty local code")],
)
def test_a_bad_local_code_map_is_refused(pairs, words):
    with pytest.raises(Invalid) as e:
        LocalCodeMap("WHYY", pairs, CAT)
    assert e.value.code == "RES-004" and words in e.value.message


def test_the_same_local_code_listed_twice_for_the_same_item_is_fine():
    assert LocalCodeMap("WHYY", [("SH-K", "K"), ("SH-K", "K")], CAT).item("SH-K") == "K"


# -- EQA facts and domain helpers ----------------------------------------------------------------

def test_a_failed_eqa_in_the_year_outweighs_a_pass_whatever_the_order():
    for records in ([("passed", "NCCL"), ("failed", "HBCCL")], [("failed", "HBCCL"), ("passed", "NCCL")]):
        facts = EqaFacts(EqaRecord("LAB", "K", 2025, s, scheme) for s, scheme in records)
        assert facts.status("LAB", "K", 2025) == "failed"
    facts = EqaFacts([{"lab": "LAB", "item": "K", "year": 2025, "status": "passed"}])
    assert facts.status("LAB", "K", 2025) == "passed" and facts.status("LAB", "K", 2024) is None


@pytest.mark.parametrize(
    "record",
    [{"lab": "LAB", "item": "K", "year": 2025}, {"lab": "LAB", "item": "K", "year": 2025, "status": "ok"},
     {"lab": "LAB", "item": "K", "year": 1990, "status": "passed"},
     {"lab": "", "item": "K", "year": 2025, "status": "passed"}, {"lab": "LAB", "item": "K", "year": "x"}],
)
def test_a_malformed_eqa_record_is_refused(record):
    with pytest.raises(Invalid) as e:
        EqaFacts([record])
    assert e.value.code == "RES-016"


@pytest.mark.parametrize(
    ("code", "prefix"),
    [("420000", "42"), ("420100", "4201"), ("420102", "420102"), ("420116101000", "420116101"),
     ("420116101201", "420116101201"), ("420116000000", "420116")],
)
def test_region_prefixes_follow_gb_t_2260(code, prefix):
    assert region_prefix(code) == prefix


@pytest.mark.parametrize("code", ["4201", "42010A", "", "4201020"])
def test_a_malformed_region_code_is_refused(code):
    with pytest.raises(Invalid) as e:
        region_prefix(code)
    assert e.value.code == "RES-010"


def test_in_region_and_level_order():
    assert in_region("420102", "420000") and in_region("420102", "420100") and not in_region("420502", "420100")
    assert level_index("L0") < level_index("L3") < level_index("L5")
    with pytest.raises(Invalid) as e:
        level_index("L7", "order.level")
    assert e.value.code == "RES-010" and e.value.detail["field"] == "order.level"


@pytest.mark.parametrize(
    ("reported", "now", "days"),
    [
        (datetime(2025, 6, 8, 15, 50, tzinfo=UTC), datetime(2025, 6, 8, 16, 10, tzinfo=UTC), 1),  # 23:50 → 00:10 CST
        (datetime(2025, 6, 8, 0, 10, tzinfo=CN_TZ), datetime(2025, 6, 8, 23, 50, tzinfo=CN_TZ), 0),
        (datetime(2025, 6, 1, 9, 0, tzinfo=CN_TZ), datetime(2025, 6, 8, 8, 0, tzinfo=CN_TZ), 7),
    ],
)
def test_age_is_counted_in_calendar_days_in_china_time(reported, now, days):
    assert age_days(reported, now) == days


def test_a_naive_time_is_refused():
    with pytest.raises(Invalid) as e:
        age_days(datetime(2025, 6, 1), datetime(2025, 6, 2, tzinfo=UTC))
    assert e.value.code == "RES-010" and e.value.detail["field"] == "reported_at"
