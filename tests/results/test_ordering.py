"""The recognition decision at order time on the database: each outcome of the check (a
recognisable result offered best first with its values, where and when; every reason a prior
result is not recognisable; no prior; the item not on the list), the doctor's answer
(recognised, or repeated with each kind of reason), every refusal with its code and nothing
written, the stale-offer guard, and the audit trail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from healthgrid.errors import HealthGridError
from healthgrid.results import ordering
from healthgrid.results.models import Decision, Eqa
from healthgrid.results.ordering import RepeatIn, check_prior_results, get_decision, record_decision
from healthgrid.security.models import AuditEvent

from .world_recognition import GLU, NOW, add_report, make_world


@pytest.fixture
def w(session):
    return make_world(session)


def check(session, w, item="GLU", actor=None, patient=None, org=None, now=NOW):
    return check_prior_results(session, actor or w.doctor, patient_id=patient or w.patient, item=item,
                               ordering_org_id=(org or w.region.county_hospital).id, now=now)


def decisions(session) -> int:
    return session.scalar(select(func.count()).select_from(Decision))


def why(view) -> dict[int, list[str]]:
    return {r.report_id: [x["code"] for x in r.reasons] for r in view.rejections}


def test_no_prior_result_is_logged_as_ordered_at_once(session, w):
    view = check(session, w)
    assert view.outcome == "repeat_no_prior" and not view.pending and view.candidates == []
    row = session.get(Decision, view.id)
    assert (row.outcome, row.item, row.ordering_org_id, row.physician) == (
        "repeat_no_prior", "GLU", w.region.county_hospital.id, w.doctor.username)
    assert row.price_cny == 4.0 and row.catalogue_version == "2025-01-01"


def test_a_recognisable_result_is_offered_with_where_when_values_and_validity(session, w):
    r = add_report(session, patient=w.patient, issuer=w.city_hospital, item="GLU", days_ago=5, values=GLU)
    view = check(session, w)
    assert view.pending and view.outcome == "pending" and view.item_zh == "葡萄糖"
    (offer,) = view.candidates
    assert (offer.report_id, offer.org_name, offer.level, offer.mark) == (r.id, "安平市第一人民医院", "L3", "HR")
    assert offer.reported_at == NOW - timedelta(days=5) and offer.age_days == 5 and offer.validity_days == 30
    assert offer.valid_until.isoformat() == "2026-04-04"  # reported 2026-03-05 (China) + 30 days
    assert [(v.code, v.value, v.unit, v.ref, v.flag) for v in offer.values] == [("GLU", "5.4", "mmol/L", "3.9–6.1",
                                                                                 "N")]


def test_recognising_the_offered_result_records_no_repeat(session, w):
    r = add_report(session, patient=w.patient, issuer=w.city_hospital, item="GLU", days_ago=5, values=GLU)
    view = check(session, w)
    done = record_decision(session, w.doctor, decision_id=view.id, accept=r.id, now=NOW + timedelta(minutes=3))
    assert (done.outcome, done.recognised_report_id, done.override_reason) == ("recognised", r.id, None)
    row = session.get(Decision, view.id)
    assert row.outcome == "recognised" and row.decided_at == NOW + timedelta(minutes=3)


def test_candidates_are_ranked_newest_first_and_higher_level_on_a_tie(session, w):
    old = add_report(session, patient=w.patient, issuer=w.city_hospital, item="GLU", days_ago=9, values=GLU)
    new = add_report(session, patient=w.patient, issuer=w.region.county_hospital, item="GLU", days_ago=2, values=GLU)
    view = check(session, w)
    assert [c.report_id for c in view.candidates] == [new.id, old.id]


@pytest.mark.parametrize(("kw", "code"), [
    (dict(days_ago=40), "expired"),
    (dict(mark=None), "mark_missing"),
    (dict(mark="鄂HR"), "mark_not_accepted"),
    (dict(status="preliminary"), "not_final"),
    (dict(status="partial"), "not_final"),  # a DiagnosticReport status: not released yet
    (dict(status="entered-in-error"), "not_final"),
    (dict(values=(), conclusion="空腹血糖正常"), "conclusion_not_recognisable"),
    (dict(issuer="township_centre"), "scope"),
    (dict(issuer="failed_lab"), "lab_failed_eqa"),
    (dict(issuer="no_eqa"), "no_eqa_record"),
])
def test_each_reason_a_prior_result_is_not_recognisable(session, w, kw, code):
    issuer = {"township_centre": w.region.township_centre, "failed_lab": w.hosp_b,
              "no_eqa": w.region.village_clinic}.get(kw.pop("issuer", ""), w.city_hospital)
    if issuer is w.hosp_b:
        session.execute(Eqa.__table__.update().where(Eqa.lab_org_id == w.hosp_b.id).values(passed=False))
    r = add_report(session, patient=w.patient, issuer=issuer, item="GLU", **{"days_ago": 3, "values": GLU, **kw})
    view = check(session, w)
    assert view.outcome == "repeat_not_recognisable" and not view.pending and view.candidates == []
    assert code in why(view)[r.id]
    rejected = next(x for x in view.rejections if x.report_id == r.id)
    assert rejected.org_name == issuer.name and rejected.level == issuer.level
    if code == "expired":
        detail = next(x for x in rejected.reasons if x["code"] == "expired")
        assert (detail["age_days"], detail["validity_days"]) == (40, 30)


def test_a_result_of_the_item_inside_a_panel_is_found_through_its_observation(session, w):
    panel = add_report(session, patient=w.patient, issuer=w.city_hospital, item=None, display="肝功能", days_ago=4,
                       values=(("ALT", 31.0, "U/L", 9.0, 50.0, "N"),), value_item="ALT")
    view = check(session, w, item="ALT")
    assert [c.report_id for c in view.candidates] == [panel.id]
    assert [v.code for v in view.candidates[0].values] == ["ALT"] and view.candidates[0].display == "肝功能"


def test_an_imaging_study_is_offered_with_its_metadata(session, w):
    ct = add_report(session, patient=w.patient, issuer=w.city_hospital, item="CT-HEAD", category="RAD", days_ago=6,
                    conclusion="未见明显异常", study=True)
    view = check(session, w, item="CT-HEAD")
    (offer,) = view.candidates
    assert offer.report_id == ct.id and offer.imaging["modality"] == "CT" and offer.imaging["instances"] == 240


@pytest.mark.parametrize(("item", "who", "code"), [
    ("NOPE", "doctor", "not_in_catalogue"),
    ("GLU", "village_doctor", "not_recognised_at_level"),  # a village clinic (L0) is on no list
])
def test_an_item_off_the_list_is_not_applicable(session, w, item, who, code):
    add_report(session, patient=w.stranger, issuer=w.city_hospital, item="GLU", days_ago=2, values=GLU)
    org = w.region.village_clinic if who == "village_doctor" else w.region.county_hospital
    patient = w.stranger if who == "village_doctor" else w.patient
    view = check(session, w, item=item, actor=getattr(w, who), patient=patient, org=org)
    assert view.outcome == "not_applicable" and [r["code"] for r in view.order_reasons] == [code]


@pytest.mark.parametrize(("reason", "informed", "text"), [
    ("changed_condition", True, None), ("fast_changing", True, None), ("pre_major_procedure", True, None),
    ("emergency", False, None), ("forensic_appraisal", True, None), ("other", True, "患者对外院结果存疑"),
    ("patient_request", True, None), ("physician_judgement", True, "术前需复核"),
])
def test_repeating_with_each_reason_is_recorded(session, w, reason, informed, text):
    add_report(session, patient=w.patient, issuer=w.city_hospital, item="GLU", days_ago=5, values=GLU)
    view = check(session, w)
    done = record_decision(session, w.doctor, decision_id=view.id, override=RepeatIn(reason, informed, text),
                           now=NOW + timedelta(minutes=1))
    assert (done.outcome, done.override_reason, done.override_text, done.patient_informed) == (
        "repeat_with_reason", reason, text, informed)


def _refused(session, fn, code: str) -> None:
    before = session.scalar(select(func.count()).select_from(Decision).where(Decision.outcome != "pending"))
    with pytest.raises(HealthGridError) as exc:
        fn()
    assert exc.value.code == code, exc.value
    assert session.scalar(select(func.count()).select_from(Decision).where(Decision.outcome != "pending")) == before


@pytest.mark.parametrize(("kw", "code"), [
    (dict(), "RES-125"), (dict(accept=1, override=RepeatIn("changed_condition", True)), "RES-125"),
    (dict(accept=999_999), "RES-126"),
    (dict(override=RepeatIn("other", True)), "RES-013"),
    (dict(override=RepeatIn("changed_condition", False)), "RES-014"),
    (dict(override=RepeatIn("changed_condition", None)), "RES-014"),
    (dict(override=RepeatIn("bored", True)), "RES-012"),
    (dict(override=RepeatIn("other", True, "x" * 501)), "RES-130"),
])
def test_a_bad_answer_is_refused_with_its_code_and_nothing_is_written(session, w, kw, code):
    add_report(session, patient=w.patient, issuer=w.city_hospital, item="GLU", days_ago=5, values=GLU)
    view = check(session, w)
    _refused(session, lambda: record_decision(session, w.doctor, decision_id=view.id, now=NOW, **kw), code)
    assert session.get(Decision, view.id).outcome == "pending"


def test_an_answer_is_given_once(session, w):
    r = add_report(session, patient=w.patient, issuer=w.city_hospital, item="GLU", days_ago=5, values=GLU)
    view = check(session, w)
    record_decision(session, w.doctor, decision_id=view.id, accept=r.id, now=NOW)
    _refused(session, lambda: record_decision(session, w.doctor, decision_id=view.id,
                                              override=RepeatIn("emergency", False), now=NOW), "RES-124")
    no_prior = check(session, w, item="K")
    _refused(session, lambda: record_decision(session, w.doctor, decision_id=no_prior.id,
                                              override=RepeatIn("emergency", False), now=NOW), "RES-129")
    _refused(session, lambda: record_decision(session, w.doctor, decision_id=2**31 - 1, accept=r.id), "RES-123")


def test_a_new_result_since_the_check_makes_the_offer_stale(session, w):
    r = add_report(session, patient=w.patient, issuer=w.city_hospital, item="GLU", days_ago=5, values=GLU)
    view = check(session, w)
    add_report(session, patient=w.patient, issuer=w.region.county_hospital, item="GLU", days_ago=0.01, values=GLU)
    _refused(session, lambda: record_decision(session, w.doctor, decision_id=view.id, accept=r.id, now=NOW), "RES-127")
    fresh = check(session, w)
    assert len(fresh.candidates) == 2
    record_decision(session, w.doctor, decision_id=fresh.id, accept=r.id, now=NOW)


def test_an_old_check_or_a_result_changed_since_makes_the_offer_stale(session, w):
    r = add_report(session, patient=w.patient, issuer=w.city_hospital, item="GLU", days_ago=5, values=GLU)
    view = check(session, w)
    late = NOW + ordering.ANSWER_WITHIN + timedelta(minutes=1)
    _refused(session, lambda: record_decision(session, w.doctor, decision_id=view.id, accept=r.id, now=late),
             "RES-127")
    r.status = "corrected"  # a corrected report: a new version
    session.flush()
    _refused(session, lambda: record_decision(session, w.doctor, decision_id=view.id, accept=r.id, now=NOW),
             "RES-128")


def test_a_result_is_refused_once_expired_between_check_and_answer(session, w):
    base = NOW.replace(hour=15, minute=0)  # 23:00 in China
    r = add_report(session, patient=w.patient, issuer=w.city_hospital, item="GLU", days_ago=30, now=base, values=GLU)
    view = check(session, w, now=base)
    assert [c.report_id for c in view.candidates] == [r.id] and view.candidates[0].valid_until == \
        (base + timedelta(hours=8)).date()
    _refused(session, lambda: record_decision(session, w.doctor, decision_id=view.id, accept=r.id,
                                              now=base + timedelta(hours=1, minutes=30)), "RES-128")


@pytest.mark.parametrize(("who", "patient", "code"), [
    ("outsider", "patient", "SEC-103"),  # another county's hospital ordering at ours
    ("nurse", "patient", "SEC-102"),  # no results.order
    ("doctor", "stranger", "SEC-104"),  # no relationship with the patient
])
def test_who_may_check_and_nothing_is_written_when_refused(session, w, who, patient, code):
    before = decisions(session)
    with pytest.raises(HealthGridError) as exc:
        check(session, w, actor=getattr(w, who), patient=getattr(w, patient))
    assert exc.value.code == code and decisions(session) == before
    denied = session.scalars(select(AuditEvent).where(AuditEvent.outcome == "denied",
                                                      AuditEvent.reason == code)).all()
    assert denied


def test_issuing_a_result_of_the_patient_is_a_care_relationship(session, w):
    add_report(session, patient=w.stranger, issuer=w.region.county_hospital, item="GLU", days_ago=3, values=GLU)
    assert check(session, w, patient=w.stranger).pending


def test_the_check_and_the_answer_are_audited(session, w):
    r = add_report(session, patient=w.patient, issuer=w.city_hospital, item="GLU", days_ago=5, values=GLU)
    view = check(session, w)
    record_decision(session, w.doctor, decision_id=view.id, accept=r.id, now=NOW)
    get_decision(session, w.doctor, view.id)
    rows = session.execute(select(AuditEvent.action, AuditEvent.resource_type, AuditEvent.patient_id,
                                  AuditEvent.org_id).where(AuditEvent.username == w.doctor.username)
                           .order_by(AuditEvent.id)).all()
    assert [(a, t) for a, t, _p, _o in rows] == [("view", "PriorResults"), ("create", "RecognitionDecision"),
                                                 ("update", "RecognitionDecision"), ("view", "RecognitionDecision")]
    assert {p for _a, _t, p, _o in rows} == {w.patient}
    assert {o for _a, _t, _p, o in rows} == {w.region.county_hospital.id}
    with pytest.raises(HealthGridError) as exc:
        get_decision(session, w.outsider, view.id)
    assert exc.value.code == "SEC-103"
