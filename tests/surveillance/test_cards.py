"""Report-card validation, one row per rule of domain-rules.md §5.3: each invalid row names
the exact (code, field) problems it must produce and nothing else; each valid row none."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from healthgrid.errors import Invalid
from healthgrid.surveillance.cards import (
    CardIn,
    age_on,
    expected_belongs_to,
    invalid,
    report_deadline,
    review_deadline,
    validate_card,
)
from healthgrid.surveillance.catalogue import load_catalogue

CAT = load_catalogue()
NOW = datetime(2025, 3, 10, 12, 0)
ADULT_ID = "110105198503121234"  # born 1985-03-12, male (17th digit 3)
MOTHER_ID = "110105198805204625"  # born 1988-05-20, female
AIDS_ID = "440106199001013214"  # born 1990-01-01, male

ADULT = CardIn(
    card_number="4401060001", report_type="first", patient_name="王建国", id_number=ADULT_ID, sex="1",
    birth_date=date(1985, 3, 12), work_unit="广州某机械厂", phone="13800138000", belongs_to=1,
    current_address="天河区某街道1号", current_address_code="440106011000", population_group="worker",
    case_class="clinical", onset_date=date(2025, 3, 5), diagnosed_at=datetime(2025, 3, 8, 10),
    disease="0400", subtype="0401", report_area_code="440106", report_unit_code="455111111",
    report_unit_area_code="440106011000", doctor="李医生", fill_date=date(2025, 3, 8))
CHILD = replace(ADULT, patient_name="陈小雨", parent_name="陈丽", id_number=MOTHER_ID, id_holder="parent", sex="2",
                birth_date=date(2021, 6, 1), population_group="home_child", work_unit=None, disease="4000",
                subtype=None, case_class="clinical", supplementary_card=True)
AIDS = replace(ADULT, patient_name="赵某", id_number=AIDS_ID, birth_date=date(1990, 1, 1), disease="0600",
               subtype="0601", case_class="confirmed", supplementary_card=True, household_address="天河区某路2号",
               household_address_code="440106012000", ethnicity="01", marital_status="married",
               education="tertiary", population_group="cadre_staff", work_unit="某公司")
BASES = {"adult": ADULT, "child": CHILD, "aids": AIDS}


def problems(base: str, **changes):
    card = replace(BASES[base], **changes)
    return {(p.code, p.field) for p in validate_card(card, catalogue=CAT, now=NOW)}


@pytest.mark.parametrize("base", sorted(BASES))
def test_complete_cards_have_no_problems(base):
    assert validate_card(BASES[base], catalogue=CAT, now=NOW) == []


# -- invalid: (base, changes, the exact problems) --------------------------------------------

INVALID = [
    # report type, correction, deletion
    ("adult", {"card_number": ""}, {("SURV-201", "card_number")}),
    ("adult", {"report_type": "update"}, {("SURV-202", "report_type")}),
    ("adult", {"report_type": "correction", "correction_reason": "误诊"}, {("SURV-203", "corrected_disease")}),
    ("adult", {"report_type": "correction", "corrected_disease": "7777", "correction_reason": "误诊"},
     {("SURV-203", "corrected_disease")}),
    ("adult", {"report_type": "correction", "corrected_disease": "1000"}, {("SURV-204", "correction_reason")}),
    ("adult", {"report_type": "deletion", "delete_reason": "重复"}, {("SURV-205", "delete_type")}),
    ("adult", {"report_type": "deletion", "delete_type": "duplicate"}, {("SURV-206", "delete_reason")}),
    # names: 2–20 characters, not only digits or symbols, not starting with a digit
    ("adult", {"patient_name": "王"}, {("SURV-207", "patient_name")}),
    ("adult", {"patient_name": "王" * 21}, {("SURV-207", "patient_name")}),
    ("adult", {"patient_name": "12王建国"}, {("SURV-207", "patient_name")}),
    ("adult", {"patient_name": "123456"}, {("SURV-207", "patient_name")}),
    ("adult", {"patient_name": "@#$%"}, {("SURV-207", "patient_name")}),
    ("adult", {"patient_name": "王建国!"}, {("SURV-207", "patient_name")}),
    ("adult", {"patient_name": None}, {("SURV-207", "patient_name")}),
    ("adult", {"doctor": None}, {("SURV-207", "doctor")}),
    ("child", {"parent_name": "1陈丽"}, {("SURV-207", "parent_name")}),
    # parent's name and phone for a child aged 14 or under
    ("child", {"parent_name": None}, {("SURV-208", "parent_name")}),
    ("child", {"phone": None}, {("SURV-218", "phone")}),
    ("adult", {"phone": "1" * 18}, {("SURV-218", "phone")}),
    ("adult", {"phone": "138-abc"}, {("SURV-218", "phone")}),
    # ID: required; valid; own ID over 14; birth date and sex agree with the patient's own ID
    ("adult", {"id_number": ""}, {("SURV-209", "id_number")}),
    ("adult", {"id_type": "driving_licence"}, {("SURV-209", "id_number")}),
    ("adult", {"id_number": ADULT_ID[:17] + "5"}, {("SURV-210", "id_number")}),  # check digit
    ("adult", {"id_number": "00" + ADULT_ID[2:]}, {("SURV-210", "id_number")}),  # province
    ("adult", {"id_number": "11010519850312"}, {("SURV-210", "id_number")}),  # length
    ("adult", {"id_type": "passport", "id_number": "E12-!"}, {("SURV-210", "id_number")}),
    ("adult", {"id_holder": "parent"}, {("SURV-211", "id_holder")}),
    ("adult", {"id_holder": "uncle"}, {("SURV-211", "id_holder")}),
    ("adult", {"birth_date": date(1985, 3, 13)}, {("SURV-212", "birth_date")}),
    ("adult", {"sex": "2"}, {("SURV-213", "sex")}),
    ("child", {"id_holder": "self"}, {("SURV-212", "birth_date")}),  # the mother's ID is not the child's
    # sex, birth date, age
    ("adult", {"sex": "M"}, {("SURV-214", "sex")}),
    ("adult", {"birth_date": None}, {("SURV-215", "birth_date")}),
    ("adult", {"id_number": "00000000000000000X", "birth_date": date(2025, 3, 11)},
     {("SURV-215", "birth_date"), ("SURV-232", "birth_date")}),
    ("adult", {"age": 30, "age_unit": "years"}, {("SURV-216", "age")}),
    ("adult", {"age": 39, "age_unit": "months"}, {("SURV-216", "age")}),
    ("adult", {"birth_date": None, "age": 13, "age_unit": "months"}, {("SURV-216", "age")}),
    ("adult", {"birth_date": None, "age": 40, "age_unit": "decades"}, {("SURV-216", "age")}),
    # work unit / school and class
    ("adult", {"work_unit": None}, {("SURV-217", "work_unit")}),
    ("adult", {"work_unit": "/"}, {("SURV-217", "work_unit")}),
    ("adult", {"work_unit": "厂" * 51}, {("SURV-217", "work_unit")}),
    ("child", {"population_group": "student", "work_unit": "某小学"}, {("SURV-217", "school_class")}),
    ("child", {"population_group": "childcare_child"}, {("SURV-217", "work_unit"), ("SURV-217", "school_class")}),
    # 病人属于 and the current address
    ("adult", {"belongs_to": 7}, {("SURV-219", "belongs_to")}),
    ("adult", {"belongs_to": 2}, {("SURV-220", "belongs_to")}),
    ("adult", {"current_address_code": "440104001000"}, {("SURV-220", "belongs_to")}),  # other county, same city
    ("adult", {"belongs_to": 4, "current_address_code": "440305001000"}, {("SURV-220", "belongs_to")}),
    ("adult", {"belongs_to": 5}, {("SURV-222", "current_address_code")}),
    ("adult", {"current_address_code": None}, {("SURV-222", "current_address_code")}),
    ("adult", {"current_address_code": "440106"}, {("SURV-222", "current_address_code")}),  # county only
    ("adult", {"current_address_code": "440106000000"}, {("SURV-222", "current_address_code")}),
    ("adult", {"current_address": None}, {("SURV-221", "current_address")}),
    ("adult", {"current_address": "街" * 51}, {("SURV-221", "current_address")}),
    # population group and age
    ("adult", {"population_group": "pilot"}, {("SURV-224", "population_group")}),
    ("adult", {"population_group": "other"}, {("SURV-224", "population_group_other")}),
    ("adult", {"population_group": "other", "population_group_other": "职" * 16},
     {("SURV-224", "population_group_other")}),
    ("adult", {"population_group": "home_child", "parent_name": "王父"}, {("SURV-225", "population_group")}),
    ("adult", {"population_group": "childcare_child", "parent_name": "王父", "school_class": "大班"},
     {("SURV-225", "population_group")}),
    ("child", {"population_group": "retiree"}, {("SURV-225", "population_group")}),
    ("child", {"population_group": "unknown"}, {("SURV-225", "population_group")}),
    ("child", {"population_group": "worker", "work_unit": "某厂"}, {("SURV-226", "population_group")}),
    ("child", {"population_group": "farmer"}, {("SURV-226", "population_group")}),
    ("adult", {"id_number": "00000000000000000X", "birth_date": date(2010, 3, 9), "parent_name": "王父"},
     {("SURV-226", "population_group")}),  # turns 15 the day after the fill date: still 14
    # case classification 1
    ("adult", {"case_class": "probable"}, {("SURV-227", "case_class")}),
    ("adult", {"case_class": None}, {("SURV-227", "case_class")}),
    # dates: required, to the hour, in order, not in the future
    ("adult", {"onset_date": None}, {("SURV-231", "onset_date")}),
    ("adult", {"diagnosed_at": None}, {("SURV-231", "diagnosed_at")}),
    ("adult", {"fill_date": None}, {("SURV-231", "fill_date")}),
    ("adult", {"diagnosed_at": datetime(2025, 3, 8, 10, 30)}, {("SURV-234", "diagnosed_at")}),
    ("adult", {"onset_date": date(2025, 3, 9)}, {("SURV-232", "onset_date")}),
    ("adult", {"diagnosed_at": datetime(2025, 3, 9, 10)}, {("SURV-232", "diagnosed_at")}),
    ("adult", {"diagnosed_at": datetime(2025, 3, 4, 10)}, {("SURV-232", "onset_date")}),
    ("child", {"birth_date": date(2025, 3, 6)}, {("SURV-232", "birth_date")}),
    ("adult", {"death_date": date(2025, 3, 1)}, {("SURV-232", "death_date")}),
    ("adult", {"death_date": date(2025, 3, 11)}, {("SURV-233", "death_date")}),
    ("adult", {"fill_date": date(2025, 3, 11)}, {("SURV-233", "fill_date")}),
    ("adult", {"diagnosed_at": datetime(2025, 3, 10, 13), "fill_date": date(2025, 3, 10)},
     {("SURV-233", "diagnosed_at")}),
    ("adult", {"onset_date": date(2025, 3, 11)}, {("SURV-233", "onset_date"), ("SURV-232", "onset_date")}),
    # disease, subtype, other disease's name
    ("adult", {"disease": None, "subtype": None}, {("SURV-236", "disease")}),
    ("adult", {"disease": "7777", "subtype": None}, {("SURV-236", "disease")}),
    ("adult", {"disease": "L021", "subtype": None, "onset_date": date(2023, 9, 15),  # mpox before 2023-09-20
               "diagnosed_at": datetime(2023, 9, 19, 9), "fill_date": date(2023, 9, 19)}, {("SURV-236", "disease")}),
    ("adult", {"subtype": None}, {("SURV-237", "subtype")}),
    ("adult", {"subtype": "0501"}, {("SURV-238", "subtype")}),
    ("adult", {"disease": "1000", "subtype": "1001"}, {("SURV-238", "subtype")}),
    ("adult", {"disease": "9899", "subtype": None}, {("SURV-239", "other_disease_name")}),
    ("adult", {"disease": "9899", "subtype": None, "other_disease_name": "病" * 16},
     {("SURV-239", "other_disease_name")}),
    ("adult", {"other_disease_name": "恙虫病"}, {("SURV-239", "other_disease_name")}),
    # supplementary card, household address, demographics for AIDS/HIV
    ("child", {"supplementary_card": False}, {("SURV-240", "supplementary_card")}),  # HFMD
    ("aids", {"supplementary_card": False}, {("SURV-240", "supplementary_card")}),
    ("aids", {"household_address": None}, {("SURV-223", "household_address")}),
    ("aids", {"household_address_code": "440106"}, {("SURV-223", "household_address_code")}),
    ("aids", {"ethnicity": None}, {("SURV-241", "ethnicity")}),
    ("aids", {"marital_status": None}, {("SURV-241", "marital_status")}),
    ("aids", {"education": None}, {("SURV-241", "education")}),
    ("aids", {"belongs_to": 6, "current_address_code": None, "ethnicity": None}, {("SURV-241", "ethnicity")}),
    ("aids", {"ethnicity": "60"}, {("SURV-242", "ethnicity")}),
    ("aids", {"marital_status": "single"}, {("SURV-242", "marital_status")}),
    ("aids", {"education": "phd"}, {("SURV-242", "education")}),
    # reporting area, unit, remarks
    ("adult", {"report_area_code": "440100"}, {("SURV-243", "report_area_code")}),
    ("adult", {"report_unit_code": None}, {("SURV-244", "report_unit_code")}),
    ("adult", {"report_unit_area_code": "440104001000"}, {("SURV-245", "report_unit_area_code")}),
    ("adult", {"remarks": "备" * 51}, {("SURV-246", "remarks")}),
]


@pytest.mark.parametrize(("base", "changes", "expected"), INVALID)
def test_card_field_rule_is_enforced(base, changes, expected):
    assert problems(base, **changes) == expected


# -- cross-field rules on the disease (§5.3 [V-code]) -----------------------------------------

HEP_B = {"disease": "0300", "subtype": "0302", "case_class2": "chronic"}
CROSS_FIELD = [
    # gonorrhoea and syphilis: only suspected or confirmed
    ("adult", {"disease": "0700", "subtype": None, "case_class": "clinical"}, False),
    ("adult", {"disease": "0700", "subtype": None, "case_class": "suspected"}, True),
    ("adult", {"disease": "0700", "subtype": None, "case_class": "confirmed"}, True),
    ("adult", {"disease": "0800", "subtype": "0801", "case_class": "clinical"}, False),
    ("adult", {"disease": "0800", "subtype": "0805", "case_class": "carrier"}, False),
    ("adult", {"disease": "0800", "subtype": "0802", "case_class": "suspected"}, True),
    # condyloma and genital herpes: only confirmed or clinical
    ("adult", {"disease": "9802", "subtype": None, "case_class": "suspected"}, False),
    ("adult", {"disease": "9802", "subtype": None, "case_class": "clinical"}, True),
    ("adult", {"disease": "9803", "subtype": None, "case_class": "suspected"}, False),
    ("adult", {"disease": "9803", "subtype": None, "case_class": "confirmed"}, True),
    # genital chlamydia: only confirmed
    ("adult", {"disease": "9804", "subtype": None, "case_class": "clinical"}, False),
    ("adult", {"disease": "9804", "subtype": None, "case_class": "carrier"}, False),
    ("adult", {"disease": "9804", "subtype": None, "case_class": "confirmed"}, True),
    # carriers: cholera, polio, hepatitis B, typhoid, paratyphoid, vivax and falciparum malaria only
    ("adult", {"disease": "0200", "subtype": None, "case_class": "carrier"}, True),
    ("adult", {"disease": "0900", "subtype": None, "case_class": "carrier"}, True),
    ("adult", {**HEP_B, "case_class": "carrier"}, True),
    ("adult", {"disease": "0500", "subtype": "0501", "case_class": "carrier"}, True),
    ("adult", {"disease": "0500", "subtype": "0502", "case_class": "carrier"}, True),
    ("adult", {"disease": "2300", "subtype": "2301", "case_class": "carrier"}, True),
    ("adult", {"disease": "2300", "subtype": "2302", "case_class": "carrier"}, True),
    ("adult", {"disease": "2300", "subtype": "2303", "case_class": "carrier"}, False),
    ("adult", {"case_class": "carrier"}, False),  # bacillary dysentery
    ("adult", {"disease": "1000", "subtype": None, "case_class": "carrier"}, False),
    # AFP cannot be confirmed; polio, AFP, AIDS and HIV cannot be suspected
    ("adult", {"disease": "L010", "subtype": None, "case_class": "confirmed"}, False),
    ("adult", {"disease": "L010", "subtype": None, "case_class": "suspected"}, False),
    ("adult", {"disease": "L010", "subtype": None, "case_class": "clinical"}, True),
    ("adult", {"disease": "0900", "subtype": None, "case_class": "suspected"}, False),
    ("aids", {"subtype": "0600", "case_class": "suspected"}, False),
    ("aids", {"subtype": "0601", "case_class": "suspected"}, False),
    ("aids", {"subtype": "0600", "case_class": "clinical"}, True),
    # polio and HIV cannot be clinically diagnosed
    ("adult", {"disease": "0900", "subtype": None, "case_class": "clinical"}, False),
    ("adult", {"disease": "0900", "subtype": None, "case_class": "confirmed"}, True),
    ("aids", {"subtype": "0601", "case_class": "clinical"}, False),
    ("aids", {"subtype": "0601", "case_class": "positive_test"}, True),  # 阳性检测: HIV only
    ("adult", {"disease": "1000", "subtype": None, "case_class": "positive_test"}, False),
    # hepatitis B cannot be suspected or clinical
    ("adult", {**HEP_B, "case_class": "suspected"}, False),
    ("adult", {**HEP_B, "case_class": "clinical"}, False),
    ("adult", {**HEP_B, "case_class": "confirmed"}, True),
    ("adult", {"disease": "0300", "subtype": "0301", "case_class": "suspected"}, True),  # hepatitis A may be
    # rifampicin-resistant and pathogen-positive TB must be confirmed
    ("adult", {"disease": "2600", "subtype": "2605", "case_class": "clinical"}, False),
    ("adult", {"disease": "2600", "subtype": "2606", "case_class": "suspected"}, False),
    ("adult", {"disease": "2600", "subtype": "2605", "case_class": "confirmed"}, True),
    ("adult", {"disease": "2600", "subtype": "2607", "case_class": "clinical"}, True),
]


@pytest.mark.parametrize(("base", "changes", "allowed"), CROSS_FIELD)
def test_case_classification_allowed_per_disease(base, changes, allowed):
    assert problems(base, **changes) == (set() if allowed else {("SURV-228", "case_class")})


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({**HEP_B, "case_class": "confirmed", "case_class2": None}, {("SURV-229", "case_class2")}),
        ({**HEP_B, "case_class": "confirmed", "case_class2": "unclassified"}, {("SURV-229", "case_class2")}),
        ({"disease": "0300", "subtype": "0303", "case_class": "confirmed"}, {("SURV-229", "case_class2")}),
        ({"disease": "0300", "subtype": "0303", "case_class": "confirmed", "case_class2": "acute"}, set()),
        ({"disease": "3100", "subtype": None, "case_class2": "chronic"}, set()),
        ({"disease": "3100", "subtype": None}, {("SURV-229", "case_class2")}),
        ({"case_class2": "acute"}, {("SURV-230", "case_class2")}),  # dysentery is neither
        ({"disease": "0300", "subtype": "0301", "case_class2": "chronic"}, {("SURV-230", "case_class2")}),
        ({"case_class2": "unclassified"}, set()),
        ({"case_class2": "subacute"}, {("SURV-229", "case_class2")}),
    ],
)
def test_acute_or_chronic_only_for_hepatitis_b_c_and_schistosomiasis(changes, expected):
    assert problems("adult", **changes) == expected


@pytest.mark.parametrize(
    ("born", "expected"),
    [
        (date(2025, 2, 8), set()),  # 28 days from birth to report
        (date(2025, 2, 7), {("SURV-235", "birth_date")}),  # 29 days
    ],
)
def test_neonatal_tetanus_reported_within_28_days_of_birth(born, expected):
    assert problems("child", disease="2500", supplementary_card=False, birth_date=born) == expected


# -- valid variants: each relaxes or exercises a rule without a problem ------------------------

VALID = [
    ("adult", {"report_type": "correction", "corrected_disease": "1000", "correction_reason": "实验室确诊为痢疾"}),
    ("adult", {"report_type": "deletion", "delete_type": "duplicate", "delete_reason": "同一病例重复报告"}),
    ("adult", {"patient_name": "欧阳·娜娜"}),
    ("adult", {"patient_name": "John Smith"}),
    ("adult", {"id_number": "00000000000000000X"}),  # unknown ID number
    ("adult", {"id_number": ADULT_ID.lower()[:17] + "4"}),
    ("adult", {"id_number": "110105850312123"}),  # 15-digit legacy number
    ("adult", {"id_type": "passport", "id_number": "E12345678"}),
    ("adult", {"age": 39, "age_unit": "years"}),
    ("adult", {"birth_date": None, "age": 40, "age_unit": "years"}),
    ("adult", {"population_group": "farmer", "work_unit": None}),
    ("adult", {"phone": None}),
    ("adult", {"phone": "020-12345678"}),
    ("adult", {"population_group": "other", "population_group_other": "程序员"}),
    ("adult", {"belongs_to": 2, "current_address_code": "440104001000"}),
    ("adult", {"belongs_to": 3, "current_address_code": "440305001000"}),
    ("adult", {"belongs_to": 4, "current_address_code": "110105001001"}),  # a village code is finer still
    ("adult", {"belongs_to": 5, "current_address_code": "810000"}),
    ("adult", {"belongs_to": 6, "current_address_code": None}),
    ("adult", {"id_number": "00000000000000000X", "birth_date": date(2010, 3, 8)}),  # 15 that day: may work
    ("adult", {"id_number": "00000000000000000X", "birth_date": date(2010, 3, 8), "population_group": "student",
               "school_class": "高一(3)班", "work_unit": "某中学"}),
    ("adult", {"disease": "9899", "subtype": None, "other_disease_name": "恙虫病"}),
    ("adult", {"disease": "L021", "subtype": None, "onset_date": date(2023, 9, 16),
               "diagnosed_at": datetime(2023, 9, 20, 9), "fill_date": date(2023, 9, 20)}),  # mpox from 2023-09-20
    ("adult", {"death_date": date(2025, 3, 9)}),
    ("adult", {"remarks": "备" * 50}),
    ("child", {"population_group": "student", "work_unit": "某小学", "school_class": "一年级2班"}),
    ("child", {"age": 3, "age_unit": "years"}),
    ("aids", {"belongs_to": 6, "current_address_code": None, "marital_status": None, "education": None}),
]


@pytest.mark.parametrize(("base", "changes"), VALID)
def test_valid_variant_has_no_problems(base, changes):
    assert problems(base, **changes) == set()


def test_all_problems_are_reported_at_once():
    card = replace(ADULT, patient_name="1", sex="x", phone="abc", remarks="备" * 60, disease="0800", subtype=None)
    found = validate_card(card, catalogue=CAT, now=NOW)
    assert [p.code for p in found] == ["SURV-207", "SURV-214", "SURV-218", "SURV-237", "SURV-228", "SURV-246"]
    assert all(p.zh and p.en for p in found)
    err = invalid(found)
    assert err.code == "SURV-200"
    assert [p["field"] for p in err.detail["problems"]] == ["patient_name", "sex", "phone", "subtype", "case_class",
                                                            "remarks"]


@pytest.mark.parametrize(
    ("born", "day", "age"),
    [
        (date(2025, 3, 1), date(2025, 3, 8), (7, "days")),
        (date(2025, 2, 8), date(2025, 3, 8), (1, "months")),
        (date(2025, 2, 9), date(2025, 3, 8), (27, "days")),
        (date(2024, 3, 9), date(2025, 3, 8), (11, "months")),
        (date(2024, 3, 8), date(2025, 3, 8), (1, "years")),
        (date(2024, 2, 29), date(2025, 2, 28), (11, "months")),
        (date(1985, 3, 12), date(2025, 3, 8), (39, "years")),
    ],
)
def test_age_and_unit_from_birth_date(born, day, age):
    assert age_on(born, day) == age


@pytest.mark.parametrize(
    ("address", "expected"),
    [("440106011000", 1), ("440104001000", 2), ("440305001000", 3), ("110105001000", 4), ("810000", 5),
     ("710000", 5), ("820000000000", 5)],
)
def test_belongs_to_from_address_and_report_area(address, expected):
    assert expected_belongs_to(address, "440106") == expected


H2, H24 = timedelta(hours=2), timedelta(hours=24)


@pytest.mark.parametrize(
    ("changes", "report", "review"),
    [
        ({}, H24, H24),  # bacillary dysentery
        ({"outbreak": True}, H2, H2),
        ({"disease": "0200", "subtype": None}, H2, H2),  # cholera, class A
        ({"disease": "2700", "subtype": None}, H2, H2),  # SARS, B managed as A
        ({"disease": "1900", "subtype": "1901"}, H2, H2),  # pulmonary anthrax
        ({"disease": "1900", "subtype": "1902"}, H24, H24),
        ({"disease": "L011", "subtype": None}, H2, H2),  # pneumonia of unknown cause
        ({"disease": "L020", "subtype": None, "diagnosed_at": datetime(2022, 12, 1, 8)}, H2, H2),
        ({"disease": "L020", "subtype": None, "diagnosed_at": datetime(2023, 2, 1, 8)}, H24, H24),
        ({"disease": "1000", "subtype": None, "diagnosed_at": None}, H24, H24),  # looked up on the fill date
    ],
)
def test_report_and_review_deadlines(changes, report, review):
    card = replace(ADULT, **changes)
    assert report_deadline(card, CAT) == report
    assert review_deadline(card, CAT) == review


def test_deadline_needs_a_date_to_look_the_disease_up():
    with pytest.raises(Invalid) as err:
        report_deadline(replace(ADULT, diagnosed_at=None, fill_date=None), CAT)
    assert err.value.code == "SURV-231"
