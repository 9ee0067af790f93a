"""Case reporting on both databases: the first report (numbered, encrypted, clocked, audited,
published), every refusal with its code and nothing written, idempotency, duplicates, the
correction / deletion / review cycle, the overdue lists with a fixed clock, who sees what
(facility, county CDC, the CDC of the patient's county, another county's CDC), masking, and
the one-click prefill.

The small region uses real-shaped GB/T 2260 codes (prefix 44): the card rules accept only
assigned province prefixes (cards.py), so the synthetic 91–99 prefixes cannot report."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from tests.factories import SYS, make_patient, make_small_region, resident_id

from healthgrid.errors import Conflict, Forbidden, Invalid, PreconditionFailed
from healthgrid.notifications.models import Message
from healthgrid.outbox import OutboxEvent
from healthgrid.registry import service as registry
from healthgrid.security import service as security
from healthgrid.security.domain import Actor, Perm
from healthgrid.security.models import AuditEvent
from healthgrid.surveillance import reporting
from healthgrid.surveillance.card_fields import CardIn
from healthgrid.surveillance.models import Card, CardEvent

NOW = datetime(2025, 3, 8, 6, 0, tzinfo=UTC)  # 14:00 in China
BORN = date(1985, 3, 12)
PASSWORD = "Doctor-pass-123"


@dataclass
class World:
    region: object
    county2: object
    cdc_org: object
    cdc2_org: object
    hospital2: object
    doctor: Actor  # clinician at the county hospital
    doctor2: Actor  # clinician at another county's hospital
    cdc: Actor  # county CDC (division grant on the county)
    cdc2: Actor  # another county's CDC
    patient: object
    rid: str


def user(session, username: str, role: str, scope: str, scope_id: int, *, practitioner_id=None, org_id=None) -> Actor:
    made = security.create_user(session, SYS, username=username, display_name=f"{username}医生", password=PASSWORD,
                                grants=[security.parse_grant(role, scope, scope_id)], org_id=org_id,
                                practitioner_id=practitioner_id)
    return security.actor_for(session, made, surface="api", client=None, mfa=True)


def make_world(session, *, prefix: str = "44", tag: str = "") -> World:
    region = make_small_region(session, prefix=prefix)
    county2 = registry.create_division(session, SYS, code=f"{prefix}0103", name="安宁区", level="county",
                                       parent_code=region.city.code)
    registry.create_division(session, SYS, code=f"{prefix}0103001000", name="东关街道", level="township",
                             parent_code=county2.code)
    cdc_org = registry.create_organization(session, SYS, code=f"{prefix}-CDC1", name="永宁县疾病预防控制中心",
                                           level="L2", org_type="cdc", division_code=region.county.code)
    cdc2_org = registry.create_organization(session, SYS, code=f"{prefix}-CDC2", name="安宁区疾病预防控制中心",
                                            level="L2", org_type="cdc", division_code=county2.code)
    hospital2 = registry.create_organization(session, SYS, code=f"{prefix}-CH2", name="安宁区人民医院", level="L2",
                                             org_type="general_hospital", division_code=county2.code)
    rid = resident_id(BORN, seq=123, county=f"{prefix}0102")
    patient = make_patient(session, region, name="王建国", sex="M", born=BORN, id_number=rid, phone="13800138000",
                           org=region.county_hospital).patient
    return World(
        region=region, county2=county2, cdc_org=cdc_org, cdc2_org=cdc2_org, hospital2=hospital2,
        doctor=user(session, f"sdoc{tag}", "clinician", "organization", region.county_hospital.id,
                    practitioner_id=region.doctor.id, org_id=region.county_hospital.id),
        doctor2=user(session, f"sdoc2{tag}", "clinician", "organization", hospital2.id, org_id=hospital2.id),
        cdc=user(session, f"scdc{tag}", "cdc_epidemiologist", "division", region.county.id, org_id=cdc_org.id),
        cdc2=user(session, f"scdc2{tag}", "cdc_epidemiologist", "division", county2.id, org_id=cdc2_org.id),
        patient=patient, rid=rid)


def adult(w: World, **changes) -> CardIn:
    """A complete first report of bacillary dysentery, diagnosed 2025-03-08 10:00 (CST)."""
    card = CardIn(patient_name="王建国", id_number=w.rid, sex="1", birth_date=BORN, work_unit="永宁县机械厂",
                  phone="13800138000", belongs_to=1, current_address="清河镇桃源村1号",
                  current_address_code=w.region.village.code, population_group="worker", case_class="clinical",
                  onset_date=date(2025, 3, 5), diagnosed_at=datetime(2025, 3, 8, 10), disease="0400",
                  subtype="0401", doctor="张晓明")
    return replace(card, **changes)


def report(session, w: World, card: CardIn | None = None, *, actor: Actor | None = None, now=NOW, **kw):
    kw.setdefault("report_org_id", w.region.county_hospital.id)
    return reporting.report_card(session, actor or w.doctor, card or adult(w), now=now, **kw)


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def w(session) -> World:
    return make_world(session)


# -- the first report ----------------------------------------------------------------------------


def test_first_report_is_numbered_encrypted_clocked_audited_and_published(session, w):
    view = report(session, w, patient_id=w.patient.id, source="referral:7", icd10="A03.900")
    assert view.card_number == f"CRB{view.id:010d}" and (view.status, view.report_type) == ("reported", "first")
    assert view.diagnosed_at == datetime(2025, 3, 8, 2, tzinfo=UTC)  # 10:00 CST
    assert view.report_due_at == view.diagnosed_at + timedelta(hours=24)  # class B: 24 h (§5.2)
    assert view.review_due_at == NOW + timedelta(hours=24) and view.late_minutes == 0
    assert (view.card.report_area_code, view.card.report_unit_code) == (w.region.county.code, "44-CH1")
    assert view.card.fill_date == date(2025, 3, 8) and view.patient_id == w.patient.id
    assert (view.source_kind, view.source_ref, view.icd10, view.version) == ("referral", "7", "A03.900", 1)
    row = session.get(Card, view.id)
    assert "王建国" not in row.personal_enc and w.rid not in row.personal_enc and row.id_bidx
    assert "王建国" not in json.dumps(row.fields, ensure_ascii=False) and w.rid not in json.dumps(row.fields)
    assert (row.county_code, row.disease, row.subtype, row.sex) == (w.region.county.code, "0400", "0401", "1")
    assert [e.kind for e in view.events] == ["reported"]
    event = session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "surveillance.card_reported")).all()[-1]
    assert event.payload == {"card_id": view.id, "disease": "0400", "subtype": "0401",
                             "county_code": w.region.county.code, "diagnosed_at": "2025-03-08T02:00:00+00:00",
                             "fixed_threshold": False}
    trail = session.scalars(select(AuditEvent).where(AuditEvent.resource_type == "CaseReport",
                                                     AuditEvent.resource_id == str(view.id))).all()
    assert [(a.action, a.outcome, a.patient_id, a.username) for a in trail] == [
        ("create", "success", w.patient.id, w.doctor.username)]


def test_an_invalid_card_lists_every_problem_and_writes_nothing(session, w):
    before = (count(session, Card), count(session, CardEvent), count(session, OutboxEvent))
    with pytest.raises(Invalid) as refused:
        report(session, w, adult(w, patient_name="1王", phone="13800-abc", onset_date=None, case_class="carrier"))
    assert refused.value.code == "SURV-200"
    found = {(p["code"], p["field"]) for p in refused.value.detail["problems"]}
    assert found == {("SURV-207", "patient_name"), ("SURV-218", "phone"), ("SURV-231", "onset_date"),
                     ("SURV-228", "case_class")}
    assert all(p["zh"] and p["en"] for p in refused.value.detail["problems"])
    assert (count(session, Card), count(session, CardEvent), count(session, OutboxEvent)) == before


@pytest.mark.parametrize(("kw", "code", "field"), [
    ({"report_org_id": 2**30}, "SURV-307", "report_org_id"),
    ({"patient_id": 2**30}, "SURV-306", "patient_id"),
    ({"source": "fax:12"}, "SURV-309", "source"),
    ({"idempotency_key": " "}, "SURV-312", "Idempotency-Key"),
])
def test_bad_arguments_are_refused_with_their_codes(session, w, kw, code, field):
    before = count(session, Card)
    with pytest.raises(Invalid) as refused:
        report(session, w, actor=Actor.system_actor("tests") if "report_org_id" in kw else None, **kw)
    assert (refused.value.code, refused.value.detail["field"]) == (code, field)
    assert count(session, Card) == before


def test_an_urgent_disease_has_two_hour_clocks_and_a_late_report_is_marked(session, w):
    card = adult(w, disease="0200", subtype=None, case_class="confirmed")  # cholera, class A
    late = report(session, w, card, now=datetime(2025, 3, 8, 5, 30, tzinfo=UTC))  # diagnosed 02:00 UTC
    assert late.report_due_at == datetime(2025, 3, 8, 4, tzinfo=UTC) and late.late_minutes == 90
    assert late.review_due_at == datetime(2025, 3, 8, 7, 30, tzinfo=UTC)
    assert session.get(Card, late.id).fields["late_minutes"] == 90
    assert late.events[0].detail["late_minutes"] == 90
    assert session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "surveillance.card_reported")
                           ).all()[-1].payload["fixed_threshold"] is True
    report(session, w, adult(w, id_number="E1234567", id_type="passport"))  # in time
    on_time = reporting.search_cards(session, w.cdc, reporting.CardQuery(overdue="report"), now=NOW)
    assert [v.id for v in on_time] == [late.id]


# -- idempotency and duplicates ---------------------------------------------------------------


def test_a_retry_with_the_same_key_answers_the_first_card(session, w):
    first = report(session, w, idempotency_key="k-1")
    again = report(session, w, idempotency_key="k-1", now=NOW + timedelta(minutes=3))
    assert (again.id, again.replayed, first.replayed) == (first.id, True, False)
    assert count(session, Card) == 1
    with pytest.raises(Conflict) as refused:
        report(session, w, adult(w, case_class="confirmed"), idempotency_key="k-1")
    assert refused.value.code == "SURV-301"


def test_a_duplicate_card_is_refused_naming_the_earlier_one_unless_a_new_episode(session, w):
    first = report(session, w)
    twin = adult(w, diagnosed_at=datetime(2025, 3, 8, 12), doctor="李医生")
    with pytest.raises(Conflict) as refused:
        report(session, w, twin, actor=w.cdc, report_org_id=w.cdc_org.id)
    assert refused.value.code == "SURV-302" and refused.value.detail["card_number"] == first.card_number
    assert first.card_number in refused.value.message and count(session, Card) == 1
    other = report(session, w, twin, new_episode=True)
    assert other.id != first.id and session.get(Card, other.id).fields["new_episode"] is True
    # Another disease, or a month later, is no duplicate.
    report(session, w, adult(w, disease="3900", subtype=None))
    report(session, w, adult(w, diagnosed_at=datetime(2025, 4, 20, 9), onset_date=date(2025, 4, 19)),
           now=datetime(2025, 4, 20, 3, tzinfo=UTC))


def test_siblings_sharing_a_parents_id_are_not_duplicates_and_deleted_cards_do_not_count(session, w):
    mother = resident_id(date(1988, 5, 20), seq=462, county="440102")
    child = adult(w, patient_name="陈小雨", parent_name="陈丽", id_number=mother, id_holder="parent", sex="2",
                  birth_date=date(2021, 6, 1), population_group="home_child", work_unit=None, disease="4000",
                  subtype=None, supplementary_card=True)
    hfmd = {"lab_result": "ev71", "severe": "no"}
    first = report(session, w, child, supplementary=hfmd)
    report(session, w, replace(child, patient_name="陈小风", sex="1", birth_date=date(2019, 2, 1)), supplementary=hfmd)
    with pytest.raises(Conflict):
        report(session, w, child, supplementary=hfmd)
    reporting.delete_card(session, w.doctor, first.id, delete_type="misreport", reason="排除诊断", now=NOW)
    assert report(session, w, child, supplementary=hfmd).status == "reported"


def test_the_supplementary_card_is_required_where_the_disease_has_one(session, w):
    child = adult(w, patient_name="陈小雨", parent_name="陈丽", id_number=None, id_type="passport", sex="2",
                  birth_date=date(2021, 6, 1), population_group="home_child", work_unit=None, disease="4000",
                  subtype=None)
    with pytest.raises(Invalid) as refused:
        report(session, w, child, supplementary={"lab_result": "ev72"})
    found = {(p["code"], p["field"]) for p in refused.value.detail["problems"]}
    assert found == {("SURV-320", "supplementary.severe"), ("SURV-321", "supplementary.lab_result"),
                     ("SURV-209", "id_number")}
    with pytest.raises(Invalid) as refused:
        report(session, w, replace(child, id_number="E1234567"))
    assert {p["code"] for p in refused.value.detail["problems"]} == {"SURV-240", "SURV-320"}


# -- correction, deletion, review ---------------------------------------------------------------


def test_a_correction_changes_the_disease_keeps_the_first_one_and_publishes_again(session, w):
    first = report(session, w, icd10="A03.900")
    later = NOW + timedelta(hours=5)
    fixed = reporting.correct_card(session, w.doctor, first.id, changes={"disease": "3900", "subtype": None},
                                   reason="病原学检测排除菌痢", expected_version=first.version, now=later)
    assert (fixed.card.disease, fixed.card.corrected_disease, fixed.report_type) == ("3900", "0400", "correction")
    assert (first.icd10, fixed.icd10) == ("A03.900", None)  # the dysentery diagnosis no longer names the disease
    assert (fixed.status, fixed.review_due_at, fixed.card_number) == ("reported", later + timedelta(hours=24),
                                                                      first.card_number)
    assert fixed.events[-1].kind == "corrected" and fixed.events[-1].detail["fields"] == ["disease", "subtype"]
    topics = session.scalars(select(OutboxEvent.payload).where(OutboxEvent.topic == "surveillance.card_reported")
                             .order_by(OutboxEvent.id))
    assert [p["disease"] for p in topics] == ["0400", "3900"]
    again = reporting.correct_card(session, w.doctor, first.id, changes={"phone": "13900139000"}, reason="电话有误",
                                   now=later)
    assert again.card.corrected_disease == "0400" and again.card.phone == "13900139000"
    assert count(session, OutboxEvent, OutboxEvent.topic == "surveillance.card_reported") == 2


@pytest.mark.parametrize(("kw", "error", "code"), [
    ({"changes": {"phone": "13900139000"}, "reason": " "}, Invalid, "SURV-305"),
    ({"changes": {"phone": "13800138000"}, "reason": "无"}, Invalid, "SURV-311"),
    ({"changes": {"card_number": "X1"}, "reason": "改号"}, Invalid, "SURV-305"),
    ({"changes": {"birth_date": "1985-03-12"}, "reason": "类型"}, Invalid, "SURV-305"),
    ({"changes": {"phone": "13900139000"}, "reason": "电话", "expected_version": 7}, PreconditionFailed, "SURV-303"),
    ({"changes": {"case_class": "suspected", "disease": "0600"}, "reason": "订正"}, Invalid, "SURV-200"),
])
def test_a_bad_correction_is_refused_and_changes_nothing(session, w, kw, error, code):
    first = report(session, w)
    with pytest.raises(error) as refused:
        reporting.correct_card(session, w.doctor, first.id, now=NOW, **kw)
    assert refused.value.code == code
    after = reporting.get_card(session, w.doctor, first.id)
    assert (after.version, after.card.phone, after.card.disease, len(after.events)) == (1, "13800138000", "0400", 1)


def test_the_county_cdc_returns_a_card_the_facility_corrects_and_it_is_approved(session, w):
    first = report(session, w)
    returned = reporting.review_card(session, w.cdc, first.id, decision="return", note="现住址请写到门牌号",
                                     now=NOW + timedelta(hours=1))
    assert (returned.status, returned.review_note, returned.reviewed_by) == ("returned", "现住址请写到门牌号",
                                                                             w.cdc.username)
    desk = session.scalars(select(Message).where(Message.recipient_kind == "org",
                                                 Message.recipient_id == w.region.county_hospital.id)).all()
    assert [m.link for m in desk] == [f"/surveillance/cards/{first.id}"] and "王建国" not in str(desk[0].body)
    with pytest.raises(Conflict) as refused:
        reporting.review_card(session, w.cdc, first.id, decision="approve", now=NOW)
    assert refused.value.code == "SURV-304"
    fixed = reporting.correct_card(session, w.doctor, first.id, changes={"current_address": "清河镇桃源村1组3号"},
                                   reason="按审核意见补充", now=NOW + timedelta(hours=2))
    assert fixed.status == "reported" and fixed.reviewed_at is None
    done = reporting.review_card(session, w.cdc, first.id, decision="approve", expected_version=fixed.version,
                                 now=NOW + timedelta(hours=3))
    assert done.status == "reviewed" and [e.kind for e in done.events] == ["reported", "returned", "corrected",
                                                                           "reviewed"]
    with pytest.raises(Invalid) as refused:
        reporting.review_card(session, w.cdc, first.id, decision="return", note="", now=NOW)
    assert refused.value.detail["field"] == "note"
    trail = session.execute(select(AuditEvent.action, AuditEvent.username, AuditEvent.detail).where(
        AuditEvent.resource_type == "CaseReport", AuditEvent.resource_id == str(first.id),
        AuditEvent.outcome == "success").order_by(AuditEvent.id)).all()
    assert [(a, u, json.loads(d).get("use_case")) for a, u, d in trail] == [
        ("create", w.doctor.username, None), ("update", w.cdc.username, "review"),
        ("update", w.doctor.username, "correction"), ("update", w.cdc.username, "review")]


def test_review_is_the_cdc_of_the_reporting_county_only(session, w):
    first = report(session, w)
    with pytest.raises(Forbidden) as refused:
        reporting.review_card(session, w.cdc2, first.id, decision="approve", now=NOW)
    assert refused.value.code == "SEC-103"
    with pytest.raises(Forbidden) as refused:
        reporting.review_card(session, w.doctor, first.id, decision="approve", now=NOW)
    assert refused.value.code == "SEC-102"
    denied = session.scalars(select(AuditEvent).where(AuditEvent.resource_type == "CaseReport",
                                                      AuditEvent.outcome == "denied")).all()
    assert {a.username for a in denied} >= {w.cdc2.username, w.doctor.username}
    assert reporting.get_card(session, w.doctor, first.id).status == "reported"


def test_a_deletion_needs_its_type_and_reason_and_a_deleted_card_is_final(session, w):
    first = report(session, w)
    with pytest.raises(Invalid) as refused:
        reporting.delete_card(session, w.doctor, first.id, delete_type="lost", reason="", now=NOW)
    assert {(p["code"], p["field"]) for p in refused.value.detail["problems"]} == {
        ("SURV-205", "delete_type"), ("SURV-206", "delete_reason")}
    with pytest.raises(Forbidden):
        reporting.delete_card(session, w.doctor2, first.id, delete_type="duplicate", reason="重复", now=NOW)
    gone = reporting.delete_card(session, w.doctor, first.id, delete_type="duplicate", reason="与CRB卡重复", now=NOW)
    assert session.scalar(select(AuditEvent.action).where(AuditEvent.resource_id == str(first.id),
                                                          AuditEvent.action == "delete")) == "delete"
    assert (gone.status, gone.report_type, gone.card.delete_type, gone.deleted_at) == ("deleted", "deletion",
                                                                                        "duplicate", NOW)
    for call in (lambda: reporting.delete_card(session, w.doctor, first.id, delete_type="other", reason="再删",
                                               now=NOW),
                 lambda: reporting.correct_card(session, w.doctor, first.id, changes={"phone": "13900139000"},
                                                reason="改", now=NOW),
                 lambda: reporting.review_card(session, w.cdc, first.id, decision="approve", now=NOW)):
        with pytest.raises(Conflict) as refused:
            call()
        assert refused.value.code == "SURV-304"


# -- reading ------------------------------------------------------------------------------------


def test_id_number_and_phone_are_masked_without_pii_unmasked(session, w):
    first = report(session, w)
    assert reporting.get_card(session, w.doctor, first.id).card.id_number == w.rid
    token = replace(w.doctor, token_perms=frozenset({Perm.CASE_REPORT, Perm.REGISTRY_READ}))
    seen = reporting.get_card(session, token, first.id)
    assert seen.masked and seen.card.id_number == w.rid[:6] + "********" + w.rid[-4:]
    assert seen.card.phone == "138****8000" and seen.card.patient_name == "王建国"
    listed = reporting.search_cards(session, token, reporting.CardQuery(), now=NOW)
    assert [v.card.patient_name for v in listed] == ["王**"]
    views = session.scalars(select(AuditEvent.action).where(AuditEvent.resource_type == "CaseReport",
                                                            AuditEvent.resource_id == str(first.id))).all()
    assert views.count("view") == 2


def test_each_reader_lists_only_the_cards_in_scope(session, w):
    here = report(session, w)
    # A patient living in the other county, reported by this county's hospital.
    visitor = adult(w, patient_name="李四海", id_number=resident_id(date(1990, 1, 1), seq=315, county="440103"),
                    birth_date=date(1990, 1, 1), belongs_to=2, current_address="东关街道8号",
                    current_address_code="440103001000")
    away = report(session, w, visitor)
    there = report(session, w, adult(w, doctor="赵医生", belongs_to=2), actor=w.doctor2, report_org_id=w.hospital2.id,
                   new_episode=True)

    def ids(actor, **kw):
        return {v.id for v in reporting.search_cards(session, actor, reporting.CardQuery(**kw), now=NOW)}

    assert ids(w.doctor) == {here.id, away.id} and ids(w.doctor2) == {there.id}
    # A CDC: its facilities' cards, and its residents' cards reported elsewhere.
    assert ids(w.cdc) == {here.id, away.id, there.id} and ids(w.cdc2) == {there.id, away.id}
    assert ids(w.cdc, county_code="440103") == {away.id} and ids(w.cdc, report_org_id=w.region.county_hospital.id,
                                                                 disease="0401") == {here.id, away.id}
    assert ids(w.cdc, since=date(2025, 3, 9)) == set()
    assert ids(w.cdc, since=date(2025, 3, 8), until=date(2025, 3, 8)) == {here.id, away.id, there.id}
    assert reporting.get_card(session, w.cdc2, away.id).id == away.id  # read only:
    with pytest.raises(Forbidden):
        reporting.review_card(session, w.cdc2, away.id, decision="approve", now=NOW)
    with pytest.raises(Forbidden):
        reporting.get_card(session, w.cdc2, here.id)
    with pytest.raises(Forbidden):
        reporting.search_cards(session, w.doctor, reporting.CardQuery(report_org_id=w.hospital2.id), now=NOW)
    with pytest.raises(Invalid) as refused:
        reporting.search_cards(session, w.cdc, reporting.CardQuery(overdue="late"), now=NOW)
    assert refused.value.code == "SURV-310"


def test_the_review_overdue_list_follows_the_clock(session, w):
    first = report(session, w)
    second = report(session, w, adult(w, disease="3900", subtype=None), now=NOW + timedelta(hours=6))

    def overdue(at):
        return [v.id for v in reporting.search_cards(session, w.cdc, reporting.CardQuery(overdue="review"), now=at)]

    assert overdue(NOW + timedelta(hours=23)) == []
    assert overdue(NOW + timedelta(hours=25)) == [first.id]
    assert overdue(NOW + timedelta(hours=31)) == [first.id, second.id]  # oldest deadline first
    reporting.review_card(session, w.cdc, first.id, decision="approve", now=NOW + timedelta(hours=31))
    assert overdue(NOW + timedelta(hours=31)) == [second.id]
    queue = reporting.search_cards(session, w.cdc, reporting.CardQuery(status=["reported"]), now=NOW)
    assert [v.id for v in queue] == [second.id]
    event = reporting.get_card(session, w.cdc, first.id).events[-1]
    assert (event.kind, event.detail) == ("reviewed", {"review_overdue": True})


# -- one click ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("icd10", "expected"), [
    ("A09", ("3900", None)), ("a09.900", ("3900", None)), ("A03.900x001", ("0400", "0401")),
    ("B18.1", ("0300", "0302")), ("J10.1", ("3500", None)), ("J09", ("L022", None)), ("B08.4", ("4000", None)),
    ("I10", None), ("", None), ("A0", None)])
def test_an_icd10_code_is_matched_to_its_notifiable_disease_by_prefix(icd10, expected):
    found = reporting.notifiable_icd10(icd10, date(2025, 10, 1))
    assert (None if found is None else (found[0].code, found[1].code if found[1] else None)) == expected


def test_the_prefill_fills_the_card_from_the_patient_index_and_the_diagnosis(session, w):
    card = reporting.card_prefill(session, w.doctor, patient_id=w.patient.id, icd10="A03.9",
                                  org_id=w.region.county_hospital.id, now=NOW)
    assert (card.patient_name, card.sex, card.birth_date, card.id_number) == ("王建国", "1", BORN, w.rid)
    assert (card.phone, card.current_address_code, card.belongs_to) == ("13800138000", w.region.village.code, 1)
    assert card.current_address == "永宁县清河镇桃源村"
    assert (card.disease, card.subtype, card.doctor, card.fill_date) == ("0400", "0401", "张晓明", date(2025, 3, 8))
    assert (card.report_area_code, card.report_unit_code) == (w.region.county.code, "44-CH1")
    viewed = session.scalars(select(AuditEvent).where(AuditEvent.resource_type == "Patient",
                                                      AuditEvent.username == w.doctor.username)).all()
    assert [a.action for a in viewed] == ["view"]
    with pytest.raises(Invalid) as refused:
        reporting.card_prefill(session, w.doctor, patient_id=w.patient.id, icd10="I10",
                               org_id=w.region.county_hospital.id, now=NOW)
    assert (refused.value.code, refused.value.detail["field"]) == ("SURV-308", "icd10")
    with pytest.raises(Forbidden):
        reporting.card_prefill(session, w.doctor, patient_id=w.patient.id, icd10="A09", org_id=w.hospital2.id,
                               now=NOW)


# -- at the same time (sessions that commit, on a database of this module's own) -------------------


@pytest.fixture(scope="module")
def maker(fresh_databases):
    from tests.conftest import SESSION_INFO

    from healthgrid.db import make_engine, make_sessionmaker
    from healthgrid.migrate import upgrade

    url = fresh_databases.create("surv_race")
    upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine, info=dict(SESSION_INFO))
    engine.dispose()


def test_two_reviewers_at_once_one_decides_the_other_is_refused(maker):
    from tests.scheduling.test_race import race

    with maker() as s:
        w = make_world(s, prefix="45", tag="r1")
        card = report(s, w)
        other = user(s, "scdc-r1b", "cdc_epidemiologist", "division", w.region.county.id)
    out = race(maker, [lambda s: reporting.review_card(s, w.cdc, card.id, decision="approve", now=NOW),
                       lambda s: reporting.review_card(s, other, card.id, decision="return", note="退回", now=NOW)])
    assert out.errors == [] and len(out.won) == 1 and out.refused == ["SURV-304"]
    with maker() as s:
        assert count(s, CardEvent, CardEvent.card_id == card.id, CardEvent.kind.in_(["reviewed", "returned"])) == 1


def test_the_same_card_sent_twice_at_once_is_one_card(maker):
    from tests.scheduling.test_race import race

    with maker() as s:
        w = make_world(s, prefix="46", tag="r2")
        before = count(s, Card)

    def send(key: str | None):
        return lambda s: report(s, w, idempotency_key=key)

    keyed = race(maker, [send("same"), send("same")])
    assert keyed.errors == [] and len({v.id for v in keyed.won}) == 1 and sorted(v.replayed for v in keyed.won) == [
        False, True]
    with maker() as s:
        assert count(s, Card) == before + 1
    unkeyed = race(maker, [lambda s: report(s, w, adult(w, disease="3900", subtype=None))] * 2)
    assert unkeyed.errors == [] and len(unkeyed.won) == 1 and unkeyed.refused == ["SURV-302"]
