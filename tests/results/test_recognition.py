"""The recognition decision (§4.5), one table per rule: catalogue and level lists, marks and
regions, EQA, status and conclusions, validity boundaries, the level scope and its local option,
ranking, and the doctor's override with each of the exceptions (§4.3)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from healthgrid.errors import Invalid
from healthgrid.results.catalogue import load_catalogue
from healthgrid.results.domain import CN_TZ, LOCAL_REASONS, NATIONAL_REASONS, EqaFacts, EqaRecord, make_override
from healthgrid.results.recognition import Order, Outcome, Policy, PriorResult, apply_override, decide

CAT = load_catalogue()
NOW = datetime(2025, 6, 15, 10, 0, tzinfo=CN_TZ)
# A city hospital in Wuhan (Jiang'an district) orders potassium.
ORDER = Order(item="K", org="WHYY", level="L3", region="420102", physician="D1021")
LABS = ("WHYY-LAB", "RMYY-LAB", "QCJ-LAB", "NMG-LAB", "NMG-TOWN-LAB", "YC-LAB")
EQA = EqaFacts([EqaRecord(lab, item, year, "passed") for lab in LABS for year in (2022, 2025)
                for item in ("K", "HBA1C", "ECG", "PATH-SLIDE", "MR-BRAIN", "CBC")]
               + [EqaRecord("BAD-LAB", "K", 2025, "failed"), EqaRecord("OLD-LAB", "K", 2024, "passed"),
                  EqaRecord("WAS-BAD-LAB", "K", 2024, "failed")])


def prior(**kw) -> PriorResult:
    base = dict(id="r1", item="K", org="RMYY", level="L3", region="420106", lab="RMYY-LAB",
                reported_at=NOW - timedelta(days=2), mark="鄂HR", status="final")
    return PriorResult(**{**base, **kw})


def reasons(decision) -> list[str]:
    return [str(r.code) for rej in decision.not_recognisable for r in rej.reasons]


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({}, []),
        ({"status": "corrected"}, []),
        ({"status": "amended"}, []),
        ({"status": "preliminary"}, ["not_final"]),
        ({"status": "registered"}, ["not_final"]),
        ({"status": "cancelled"}, ["not_final"]),
        ({"conclusion": True}, ["conclusion_not_recognisable"]),  # Art. 2: never the conclusion
        ({"mark": None}, ["mark_missing"]),
        ({"mark": "  "}, ["mark_missing"]),
        ({"mark": "HR"}, []),  # the national mark
        ({"mark": "武汉HR"}, []),  # Wuhan's own items, issued in Wuhan
        ({"mark": "★"}, []),  # ★ with its footnote counts as the issuing region's mark
        ({"mark": "蒙HR", "region": "150102"}, ["mark_not_accepted"]),  # no agreement with Inner Mongolia
        ({"mark": "XXHR"}, ["mark_not_accepted"]),
        ({"mark": "鄂HR", "region": "150102"}, ["scope"]),  # a Hubei mark from outside Hubei
        ({"mark": "武汉HR", "region": "420502"}, ["scope"]),  # a Wuhan mark from Yichang
        ({"lab": "BAD-LAB"}, ["lab_failed_eqa"]),
        ({"lab": "NEW-LAB"}, ["no_eqa_record"]),
        ({"lab": "OLD-LAB"}, ["no_eqa_record"]),  # passed in 2024, nothing for 2025
        ({"reported_at": NOW + timedelta(minutes=5)}, ["reported_after_now"]),
        ({"level": "L2"}, ["scope"]),  # Hubei: a higher level does not accept a lower one
        ({"level": "L4"}, []),  # a lower level accepts a higher one
        ({"status": "preliminary", "mark": None, "lab": "BAD-LAB"}, ["not_final", "mark_missing", "lab_failed_eqa"]),
    ],
)
def test_each_rule_decides_whether_a_prior_result_is_recognisable(changes, why):
    d = decide(ORDER, [prior(**changes)], catalogue=CAT, eqa=EQA, now=NOW)
    assert reasons(d) == why
    assert d.outcome is (Outcome.REPEAT_NOT_RECOGNISABLE if why else Outcome.RECOGNISED)


def test_a_wuhan_mark_is_not_accepted_outside_wuhan():
    order = replace(ORDER, region="420502")  # Yichang, Hubei
    d = decide(order, [prior(mark="武汉HR")], catalogue=CAT, eqa=EQA, now=NOW)
    assert reasons(d) == ["mark_not_accepted"]
    assert d.not_recognisable[0].reasons[0].detail["accepted"] == ["HR", "鄂HR"]


def test_scope_reasons_say_which_rule_failed():
    level = decide(ORDER, [prior(level="L1")], catalogue=CAT, eqa=EQA, now=NOW).not_recognisable[0].reasons[0]
    region = decide(ORDER, [prior(region="150102")], catalogue=CAT, eqa=EQA, now=NOW).not_recognisable[0].reasons[0]
    assert level.detail == {"rule": "level", "issuing_level": "L1", "ordering_level": "L3"}
    assert region.detail["rule"] == "region" and region.detail["mark_region"] == "420000"


@pytest.mark.parametrize(
    ("item", "reported_at", "expired"),
    [
        ("K", NOW - timedelta(days=7), False),  # exactly the 7 days of the Hubei list
        ("K", NOW - timedelta(days=8), True),
        ("K", datetime(2025, 6, 8, 23, 59, tzinfo=CN_TZ), False),  # calendar day 7
        ("K", datetime(2025, 6, 7, 23, 59, tzinfo=CN_TZ), True),  # calendar day 8
        ("K", datetime(2025, 6, 7, 16, 30, tzinfo=UTC), False),  # 00:30 on 8 June in China
        ("K", datetime(2025, 6, 7, 15, 30, tzinfo=UTC), True),  # 23:30 on 7 June in China
        ("HBA1C", NOW - timedelta(days=60), False),
        ("HBA1C", NOW - timedelta(days=61), True),
        ("ECG", NOW - timedelta(days=1), False),
        ("ECG", NOW - timedelta(days=2), True),
        ("CBC", NOW - timedelta(days=3), False),
        ("CBC", NOW - timedelta(days=4), True),
        ("PATH-SLIDE", NOW - timedelta(days=3 * 365), False),  # not time-limited
    ],
)
def test_validity_boundaries_exactly_n_days_versus_n_plus_one(item, reported_at, expired):
    d = decide(replace(ORDER, item=item), [prior(item=item, reported_at=reported_at)], catalogue=CAT, eqa=EQA, now=NOW)
    assert reasons(d) == (["expired"] if expired else [])
    if expired:
        detail = d.not_recognisable[0].reasons[0].detail
        assert detail["age_days"] == detail["validity_days"] + 1


def test_a_region_can_shorten_the_validity_of_an_item():
    wuhan = {"code": "420100", "zh": "武汉市", "mark": "武汉HR", "levels": {}, "validity_days": {"K": 3}}
    cat = CAT.with_regions([wuhan])
    d = decide(ORDER, [prior(reported_at=NOW - timedelta(days=4))], catalogue=cat, eqa=EQA, now=NOW)
    assert reasons(d) == ["expired"] and d.not_recognisable[0].reasons[0].detail["validity_days"] == 3


@pytest.mark.parametrize(
    ("ordering", "issuing", "policy", "recognised"),
    [
        (("L3", "420102"), ("L3", "420106", "鄂HR"), Policy(), True),  # same level: mutual
        (("L1", "420102"), ("L3", "420106", "鄂HR"), Policy(), True),  # lower accepts upper
        (("L3", "420102"), ("L2", "420106", "鄂HR"), Policy(), False),  # upper accepting lower: Hubei says no
        (("L3", "420102"), ("L2", "420106", "鄂HR"), Policy(upper_accepts_lower=True), True),  # deployment option
        (("L2", "150102"), ("L1", "150105", "蒙HR"), Policy(), True),  # Inner Mongolia's local option
        (("L2", "150102"), ("L1", "150105", "蒙HR"), Policy(upper_accepts_lower=False), False),
        (("L4", "150102"), ("L0", "150105", "蒙HR"), Policy(), True),
    ],
)
def test_level_scope_same_level_mutual_lower_accepts_upper_upper_is_an_option(ordering, issuing, policy, recognised):
    order = Order(item="K", org="X", level=ordering[0], region=ordering[1])
    p = prior(level=issuing[0], region=issuing[1], mark=issuing[2])
    d = decide(order, [p], catalogue=CAT, eqa=EQA, now=NOW, policy=policy)
    assert (d.outcome is Outcome.RECOGNISED) is recognised


@pytest.mark.parametrize(
    ("order", "outcome", "why"),
    [
        (replace(ORDER, item="XYZ"), Outcome.NOT_APPLICABLE, "not_in_catalogue"),
        (Order(item="MR-BRAIN", org="YC", level="L2", region="420502"), Outcome.NOT_APPLICABLE,
         "not_recognised_at_level"),  # Yichang county hospitals: MRI is on Wuhan's list only
        (Order(item="K", org="BJ", level="L3", region="110101"), Outcome.NOT_APPLICABLE,
         "not_recognised_at_level"),  # no list covers Beijing in this catalogue
    ],
)
def test_an_item_outside_the_list_for_the_region_and_level_is_not_applicable(order, outcome, why):
    d = decide(order, [prior(item=order.item)], catalogue=CAT, eqa=EQA, now=NOW)
    assert d.outcome is outcome and [str(r.code) for r in d.order_reasons] == [why] and reasons(d) == [why]


def test_without_a_prior_result_of_the_item_the_test_is_done():
    assert decide(ORDER, [], catalogue=CAT, eqa=EQA, now=NOW).outcome is Outcome.REPEAT_NO_PRIOR
    other = decide(ORDER, [prior(item="NA")], catalogue=CAT, eqa=EQA, now=NOW)
    assert other.outcome is Outcome.REPEAT_NO_PRIOR and not other.not_recognisable


def test_recognisable_results_come_best_first_with_where_and_when():
    older_l4 = prior(id="old", org="HBSRMYY", level="L4", reported_at=NOW - timedelta(days=5))
    newer_l3 = prior(id="new", reported_at=NOW - timedelta(days=1))
    same_time_l4 = prior(id="same-l4", level="L4", reported_at=NOW - timedelta(days=1))
    expired = prior(id="exp", reported_at=NOW - timedelta(days=9))
    d = decide(ORDER, [older_l4, expired, newer_l3, same_time_l4], catalogue=CAT, eqa=EQA, now=NOW)
    assert [c.result.id for c in d.recognisable] == ["same-l4", "new", "old"]
    assert [r.result.id for r in d.not_recognisable] == ["exp"]
    best = d.best
    assert (best.age_days, best.validity_days, best.valid_until.isoformat()) == (1, 7, "2025-06-21")
    assert best.as_dict()["org"] == "RMYY" and best.as_dict()["reported_at"].startswith("2025-06-14")


@pytest.mark.parametrize(
    ("policy", "lab", "why"),
    [
        (Policy(require_eqa=False), "NEW-LAB", []),
        (Policy(eqa_previous_year=True), "OLD-LAB", []),  # last year's pass until this year's round
        (Policy(eqa_previous_year=True), "WAS-BAD-LAB", ["lab_failed_eqa"]),
        (Policy(eqa_previous_year=False), "OLD-LAB", ["no_eqa_record"]),
    ],
)
def test_eqa_policy_options(policy, lab, why):
    assert reasons(decide(ORDER, [prior(lab=lab)], catalogue=CAT, eqa=EQA, now=NOW, policy=policy)) == why


def test_the_eqa_year_is_the_year_of_the_report_in_china_time():
    new_year = datetime(2024, 12, 31, 16, 30, tzinfo=UTC)  # 00:30 on 1 January 2025 in China
    d = decide(ORDER, [prior(reported_at=new_year)], catalogue=CAT, eqa=EQA,
               now=datetime(2025, 1, 2, 9, 0, tzinfo=CN_TZ))
    assert d.outcome is Outcome.RECOGNISED


def test_pathology_slides_are_recognised_but_never_the_diagnostic_conclusion():
    order = replace(ORDER, item="PATH-SLIDE")
    slides = prior(id="slides", item="PATH-SLIDE", reported_at=NOW - timedelta(days=3 * 365))  # EQA 2022
    conclusion = prior(id="dx", item="PATH-SLIDE", conclusion=True)
    d = decide(order, [slides, conclusion], catalogue=CAT, eqa=EQA, now=NOW)
    assert [c.result.id for c in d.recognisable] == ["slides"] and d.best.valid_until is None
    assert reasons(d) == ["conclusion_not_recognisable"]


# -- the doctor's override -------------------------------------------------------------------------

@pytest.mark.parametrize("reason", [*NATIONAL_REASONS, *LOCAL_REASONS])
def test_each_exception_lets_the_doctor_repeat_a_recognisable_test(reason):
    text = "病人诉近两日症状加重" if reason == "other" else None
    override = make_override(str(reason), physician="D1021", patient_informed=True, text=text)
    d = decide(ORDER, [prior()], catalogue=CAT, eqa=EQA, now=NOW, override=override)
    assert d.outcome is Outcome.REPEAT_WITH_REASON and d.recognisable_existed and d.repeated
    assert d.override.national is (reason in NATIONAL_REASONS) and d.cost_avoided_cny == 0.0
    log = d.as_log()
    assert log["override"]["reason"] == str(reason) and log["patient_informed"] is True


@pytest.mark.parametrize(
    ("kwargs", "code", "field"),
    [
        (dict(reason=None), "RES-011", "reason"),
        (dict(reason=""), "RES-011", "reason"),
        (dict(reason="   "), "RES-011", "reason"),
        (dict(reason="cheaper_here"), "RES-012", "reason"),
        (dict(reason="patient_request", local_reasons=()), "RES-012", "reason"),  # local extras switched off
        (dict(reason="other"), "RES-013", "text"),
        (dict(reason="other", text="   "), "RES-013", "text"),
        (dict(reason="changed_condition", physician=""), "RES-015", "physician"),
        (dict(reason="changed_condition", physician=None), "RES-015", "physician"),
        (dict(reason="changed_condition", patient_informed=None), "RES-014", "patient_informed"),
        (dict(reason="changed_condition", patient_informed=False), "RES-014", "patient_informed"),
    ],
)
def test_an_override_without_a_proper_reason_is_refused(kwargs, code, field):
    args = {"physician": "D1021", "patient_informed": True, **kwargs}
    with pytest.raises(Invalid) as e:
        make_override(args.pop("reason"), **args)
    assert e.value.code == code and e.value.detail["field"] == field


def test_other_keeps_its_text_and_an_emergency_may_inform_the_patient_afterwards():
    other = make_override("other", physician=" D1021 ", patient_informed=True, text="  外院结果与症状不符 ")
    assert (other.text, other.physician, other.national) == ("外院结果与症状不符", "D1021", True)
    rescue = make_override("emergency", physician="D1021", patient_informed=False)
    assert rescue.patient_informed is False
    assert make_override("changed_condition", physician="D", patient_informed=True, local_reasons=()).national


def test_an_override_on_a_result_that_was_not_recognisable_is_recorded_without_changing_the_outcome():
    override = make_override("patient_request", physician="D1021", patient_informed=True)
    d = decide(ORDER, [prior(mark=None)], catalogue=CAT, eqa=EQA, now=NOW)
    after = apply_override(d, override)
    assert after.outcome is Outcome.REPEAT_NOT_RECOGNISABLE and after.override == override
    with pytest.raises(Invalid) as e:
        apply_override(d, {"reason": "other"})
    assert e.value.code == "RES-011"


def test_the_decision_log_is_plain_json_with_reasons_physician_price_and_cost_avoided():
    d = decide(ORDER, [prior(), prior(id="r2", lab="BAD-LAB")], catalogue=CAT, eqa=EQA, now=NOW)
    log = json.loads(json.dumps(d.as_log(), ensure_ascii=False))
    assert log["outcome"] == "recognised" and log["physician"] == "D1021" and log["item"] == "K"
    assert log["catalogue_version"] == CAT.version and log["price_cny"] == 4.0 and log["cost_avoided_cny"] == 4.0
    assert [r["result"] for r in log["recognisable"]] == ["r1"]
    assert log["not_recognisable"][0]["reasons"] == [{"code": "lab_failed_eqa", "lab": "BAD-LAB", "item": "K",
                                                      "year": 2025}]
    assert log["override"] is None and log["patient_informed"] is None


@pytest.mark.parametrize(
    ("order", "priors", "field"),
    [
        (ORDER, [prior(reported_at=datetime(2025, 6, 1))], "prior.reported_at"),
        (replace(ORDER, level="L9"), [], "order.level"),
        (ORDER, [prior(level="X")], "prior.level"),
        (ORDER, [prior(status="done")], "prior.status"),
        (replace(ORDER, region="4201"), [prior()], "region"),
    ],
)
def test_malformed_decision_input_is_refused_naming_the_field(order, priors, field):
    with pytest.raises(Invalid) as e:
        decide(order, priors, catalogue=CAT, eqa=EQA, now=NOW)
    assert e.value.code == "RES-010" and e.value.detail["field"] == field


def test_now_must_carry_a_time_zone():
    with pytest.raises(Invalid) as e:
        decide(ORDER, [], catalogue=CAT, eqa=EQA, now=datetime(2025, 6, 15, 10, 0))
    assert e.value.code == "RES-010" and e.value.detail["field"] == "now"
