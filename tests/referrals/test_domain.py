"""Pure rules of referral: the state machine as drawn in §3.5, reasons, directions, SLAs, the
form's fields and the criteria of §3.2–3.3 — table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from healthgrid.errors import Conflict, Invalid
from healthgrid.referrals import criteria
from healthgrid.referrals import domain as d

S = d.Status
# Every edge of the spec's drawing (§3.5), plus the two it implies (ACCEPTED -> ARRIVED for
# an emergency or a walk-in receiver; COMPLETED -> CLOSED when no back-referral is due).
EDGES = {
    (S.DRAFT, S.SUBMITTED), (S.SUBMITTED, S.ACCEPTED), (S.SUBMITTED, S.REJECTED), (S.SUBMITTED, S.CANCELLED),
    (S.SUBMITTED, S.EXPIRED), (S.ACCEPTED, S.SCHEDULED), (S.ACCEPTED, S.CANCELLED), (S.ACCEPTED, S.ARRIVED),
    (S.SCHEDULED, S.ARRIVED), (S.SCHEDULED, S.NO_SHOW), (S.SCHEDULED, S.CANCELLED), (S.ARRIVED, S.IN_CARE),
    (S.IN_CARE, S.COMPLETED), (S.COMPLETED, S.BACK_REFERRED), (S.COMPLETED, S.CLOSED),
    (S.BACK_REFERRED, S.RECEIVED_BY_PRIMARY), (S.RECEIVED_BY_PRIMARY, S.FOLLOWED_UP), (S.FOLLOWED_UP, S.CLOSED),
}


@pytest.mark.parametrize("src", list(S))
@pytest.mark.parametrize("dst", list(S))
def test_only_the_drawn_transitions_are_allowed(src, dst):
    if (src, dst) in EDGES:
        assert d.check_transition(src.value, dst.value) is dst
    else:
        with pytest.raises(Conflict) as exc:
            d.check_transition(src.value, dst.value)
        assert exc.value.code == "REF-002" and exc.value.detail == {"from": src.value, "to": dst.value}


def test_terminal_states_are_the_ends_of_the_drawing():
    assert {S.CLOSED, S.REJECTED, S.CANCELLED, S.NO_SHOW, S.EXPIRED} == d.TERMINAL


def test_an_unknown_status_is_invalid():
    with pytest.raises(Invalid):
        d.check_transition("submitted", "lost")


@pytest.mark.parametrize(("target", "reason", "ok"), [
    (S.REJECTED, "", False), (S.REJECTED, "   ", False), (S.REJECTED, "本院无该专科床位", True),
    (S.CANCELLED, None, False), (S.CANCELLED, "患者拒绝转诊", True), (S.ACCEPTED, None, True),
    (S.CANCELLED, "x" * 501, False),
])
def test_rejection_and_cancellation_need_a_reason(target, reason, ok):
    if ok:
        d.check_reason(target, reason)
    else:
        with pytest.raises(Invalid) as exc:
            d.check_reason(target, reason)
        assert exc.value.code == "REF-003"


@pytest.mark.parametrize(("a", "b", "direction"), [
    ("L0", "L2", d.Direction.UP), ("L1", "L3", d.Direction.UP), ("L2", "L1", d.Direction.DOWN),
    ("L3", "L0", d.Direction.DOWN), ("L2", "L2", d.Direction.LATERAL),
])
def test_direction_follows_the_levels(a, b, direction):
    assert d.direction_between(a, b) is direction


T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(("urgency", "due"), [
    ("urgent", T0 + timedelta(hours=2)), ("routine", T0 + timedelta(hours=24)), ("emergency", None),
])
def test_acceptance_deadlines(urgency, due):
    assert d.accept_due(T0, urgency, d.Sla()) == due


def test_follow_up_is_due_two_weeks_after_the_back_referral():
    assert d.followup_due(T0, d.Sla()) == T0 + timedelta(days=14)
    assert d.followup_due(T0, d.Sla(followup_days=7)) == T0 + timedelta(days=7)


@pytest.mark.parametrize(("items", "ok"), [
    ([{"code": "I10", "name": "高血压"}], True),
    ([{"code": "E11.900", "name": "2型糖尿病"}], True),
    ([{"code": "i10.x00x002", "name": "高血压"}], True),
    ([], False),
    ([{"code": "110", "name": "x"}], False),
    ([{"code": "I10", "name": ""}], False),
    ([{"code": "I1", "name": "x"}], False),
])
def test_diagnoses_are_icd10(items, ok):
    if ok:
        assert d.check_diagnoses(items)[0].code[0].isupper()
    else:
        with pytest.raises(Invalid) as exc:
            d.check_diagnoses(items)
        assert exc.value.code == "REF-005"


def test_free_text_is_trimmed_and_bounded():
    assert d.check_texts({"reason_text": "  头晕  ", "treatment": ""}) == {"reason_text": "头晕", "treatment": None}
    with pytest.raises(Invalid):
        d.check_texts({"reason_code": "x" * 41})
    with pytest.raises(Invalid):
        d.check_texts({"insurance_type": "gold"})
    with pytest.raises(Invalid):
        d.check_texts({"back_diagnosis": " "}, required=("back_diagnosis",))


def test_ref_code_is_the_printed_number():
    assert d.ref_code(12) == "ZZ00000012"


# -- criteria (§3.2 up, §3.3 down) ------------------------------------------------------------

UP = criteria.Route("up", "routine", "L0", "L2", True)
DOWN = criteria.Route("down", "routine", "L2", "L0", True)
STABLE = dict(condition_stable=True, diagnosis_confirmed=True, care_plan="氨氯地平5mg qd")


def rules(route, modes=None, **facts):
    return {(f.rule, f.severity, f.suggest_urgency) for f in criteria.evaluate(route, criteria.Facts(**facts), modes)}


@pytest.mark.parametrize(("route", "facts", "expected"), [
    (UP, {}, set()),
    (UP, {"sbp": 180, "dbp": 100}, {("REF-C03", "warn", "emergency")}),
    (UP, {"sbp": 150, "dbp": 110}, {("REF-C03", "warn", "emergency")}),
    (UP, {"sbp": 179, "dbp": 109}, set()),
    (criteria.Route("up", "emergency", "L0", "L2", True), {"sbp": 190}, {("REF-C03", "info", "emergency")}),
    (UP, {"fpg": 16.7}, {("REF-C04", "warn", "emergency")}),
    (UP, {"fpg": 3.9}, {("REF-C04", "warn", "emergency")}),
    (UP, {"fpg": 7.0}, set()),
    (UP, {"red_flags": ("chest_pain",)}, {("REF-C05", "warn", "emergency")}),
    (UP, {"pregnant_or_breastfeeding": True, "sbp": 142}, {("REF-C06", "warn", "emergency")}),
    (UP, {"pregnant_or_breastfeeding": True, "sbp": 130, "dbp": 80}, set()),
    (UP, {"heart_rate": 101}, {("REF-C07", "warn", "emergency")}),
    (UP, {"temperature": 39.5}, {("REF-C07", "warn", "emergency")}),
    (UP, {"uncontrolled_visits": 2}, {("REF-C12", "info", None)}),
    (criteria.Route("up", "routine", "L2", "L1", True), {}, {("REF-C01", "block", None)}),
    (criteria.Route("up", "routine", "L0", "L2", False), {}, {("REF-C02", "warn", None)}),
    (criteria.Route("lateral", "routine", "L2", "L2", False), {}, set()),
    (DOWN, STABLE, set()),
    (DOWN, {**STABLE, "condition_stable": None}, {("REF-C08", "block", None)}),
    (DOWN, {**STABLE, "care_plan": " "}, {("REF-C09", "block", None)}),
    (DOWN, {**STABLE, "diagnosis_confirmed": False}, {("REF-C10", "warn", None)}),
    (DOWN, {**STABLE, "sbp": 185}, {("REF-C11", "block", None)}),
    (criteria.Route("down", "routine", "L0", "L2", True), STABLE, {("REF-C01", "block", None)}),
])
def test_each_criterion(route, facts, expected):
    assert rules(route, **facts) == expected


def test_modes_change_the_force_of_a_rule():
    assert rules(UP, {"REF-C03": "block"}, sbp=200) == {("REF-C03", "block", "emergency")}
    assert rules(UP, {"REF-C03": "off"}, sbp=200) == set()
    assert rules(DOWN, {"REF-C08": "warn"}, **{**STABLE, "condition_stable": False}) == {("REF-C08", "warn", None)}
    with pytest.raises(ValueError):
        criteria.check_modes({"REF-C99": "warn"})
    with pytest.raises(ValueError):
        criteria.check_modes({"REF-C03": "loud"})


@pytest.mark.parametrize(("data", "field"), [
    ({"sbp": 400}, "clinical.sbp"), ({"dbp": "high"}, "clinical.dbp"), ({"red_flags": ["tired"]}, "clinical.red_flags"),
    ({"mood": "bad"}, "clinical"), ({"temperature": 29}, "clinical.temperature"),
])
def test_clinical_facts_are_range_checked(data, field):
    with pytest.raises(Invalid) as exc:
        criteria.facts_from(data)
    assert exc.value.code == "REF-005" and exc.value.detail["field"] == field


def test_clinical_facts_parse():
    facts = criteria.facts_from({"sbp": "182", "fpg": "8.1", "red_flags": ["vomiting"], "uncontrolled_visits": ""})
    assert (facts.sbp, facts.fpg, facts.red_flags, facts.uncontrolled_visits) == (182, 8.1, ("vomiting",), 0)
