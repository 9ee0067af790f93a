"""The referral measures: each one's exact value over referrals walked through the service
with known times, the totals pooling them, the scope refusals, and the bureau's page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.factories import make_patient, resident_id

from healthgrid.app import create_app
from healthgrid.errors import Forbidden, Invalid
from healthgrid.http import get_session
from healthgrid.referrals import desk as ref_desk
from healthgrid.referrals import measures
from healthgrid.referrals import service as referrals
from healthgrid.referrals import workflow as ref_workflow
from healthgrid.scheduling.models import ClinicSession, Slot
from healthgrid.security import service as security
from healthgrid.security.domain import Actor
from healthgrid.security.http import optional_actor
from healthgrid.security.models import AuditEvent

from .conftest import NOW, make_ward, staff
from .test_flow import up_form

H = timedelta(hours=1)
DAY = timedelta(days=1)
SINCE, UNTIL = date(2026, 11, 1), date(2026, 12, 31)
LATER = datetime(2027, 1, 15, tzinfo=UTC)  # every follow-up of November is due by then


@dataclass
class World:
    ward: object
    hospital: int
    village: int
    county_id: int


def _patients(session, ward, n: int) -> list[int]:
    return [make_patient(session, ward.region, name=name, sex="M" if i % 2 else "F", born=date(1950 + i, 2, 3),
                         id_number=resident_id(date(1950 + i, 2, 3), seq=300 + 2 * i + i % 2, county="910102"),
                         org=ward.region.village_clinic).patient.id
            for i, name in enumerate(["钱学明", "孙桂芝", "吴建国", "郑淑英", "冯志强"][:n])]


def _down_form(ward, patient: int) -> referrals.ReferralIn:
    return referrals.ReferralIn(
        patient_id=patient, from_org_id=ward.region.county_hospital.id, to_org_id=ward.region.village_clinic.id,
        diagnoses=[{"code": "I63.9", "name": "脑梗死恢复期"}], reason_code="rehabilitation",
        clinical={"condition_stable": True, "diagnosis_confirmed": True, "care_plan": "康复训练，每周随访"})


def _back(session, ward, rid: int, at: datetime):
    return ref_workflow.back_refer(session, ward.hospital_doctor, rid, ref_workflow.BackReferralIn(
        diagnosis="高血压2级", plan="继续服药，每2周测血压",
        clinical={"condition_stable": True, "diagnosis_confirmed": True}), now=at)


def _seen_and_back(session, ward, rid: int) -> datetime:
    """Arrives at its appointment, is seen, completed and referred back; returns when."""
    ref = ref_desk.get_referral(session, ward.hospital_doctor, rid)
    start = ref.scheduled_for
    for step, at in ((ref_workflow.mark_arrived, start - 20 * timedelta(minutes=1)), (ref_workflow.start_care, start),
                     (ref_workflow.complete_referral, start + H)):
        step(session, ward.hospital_doctor, rid, now=at)
    _back(session, ward, rid, start + 2 * H)
    return start + 2 * H


def build(session) -> World:
    """Up-referrals accepted after 0.5, 1, 3 and 10 hours (D urgent; A, B, C routine), an
    emergency and a rejected one; A and C seen and referred back, B a no-show, D not yet
    come. Down: A followed up after 7 days, C after 20; direct G (sent with the up-referrals)
    seen after 5 days, H never, J rejected by the village clinic."""
    ward = make_ward(session)
    p1, p2, p3, p4, p5 = _patients(session, ward, 5)
    vdoc, hdoc = ward.village_doctor, ward.hospital_doctor
    sent = {k: referrals.create_referral(session, vdoc, up_form(ward, patient_id=p, urgency=u), now=NOW).id
            for k, p, u in (("A", p1, "routine"), ("B", p2, "routine"), ("C", p3, "routine"), ("D", p4, "urgent"),
                            ("F", p2, "routine"))}
    for key, after in (("D", 0.5), ("A", 1), ("B", 3), ("C", 10)):
        assert ref_workflow.accept_referral(session, hdoc, sent[key], now=NOW + after * H).status == "scheduled"
    ref_workflow.reject_referral(session, hdoc, sent["F"], reason="建议先在基层完善检查", now=NOW + 2 * H)
    emergency = referrals.create_referral(session, vdoc, up_form(ward, patient_id=p5, urgency="emergency",
                                                                 clinical={"sbp": 196, "dbp": 118}), now=NOW + 2 * H)
    ref_workflow.mark_arrived(session, hdoc, emergency.id, now=NOW + 3 * H)
    b = ref_desk.get_referral(session, hdoc, sent["B"])
    ref_workflow.mark_no_show(session, hdoc, sent["B"], now=b.scheduled_for + 3 * H)
    back_a = _seen_and_back(session, ward, sent["A"])
    back_c = _seen_and_back(session, ward, sent["C"])
    ref_workflow.record_followup(session, vdoc, sent["A"], outcome="血压132/82", now=back_a + 7 * DAY)
    ref_workflow.record_followup(session, vdoc, sent["C"], outcome="血压140/88", now=back_c + 20 * DAY)
    down = {k: referrals.create_referral(session, hdoc, _down_form(ward, p), now=NOW).id
            for k, p in (("G", p3), ("H", p4), ("J", p5))}
    ref_workflow.accept_referral(session, vdoc, down["G"], now=NOW + 2 * H)
    ref_workflow.accept_referral(session, vdoc, down["H"], now=NOW + H)
    ref_workflow.reject_referral(session, vdoc, down["J"], reason="患者已迁出本村", now=NOW + H)
    ref_workflow.mark_arrived(session, vdoc, down["G"], now=NOW + 5 * DAY)
    r = ward.region
    return World(ward, r.county_hospital.id, r.village_clinic.id, r.county.id)


def _reserved_places(session, org_id: int, month: int) -> int:
    """Reserved capacity of the hospital's open sessions in the month, counted here directly."""
    return session.scalar(select(func.sum(Slot.capacity)).join(ClinicSession, ClinicSession.id == Slot.session_id)
                          .where(ClinicSession.org_id == org_id, ClinicSession.status == "open",
                                 Slot.pool == "reserved", func.extract("month", ClinicSession.day) == month)) or 0


def _row(result, org: int, month: str):
    return next(r for r in result.rows if r.org_id == org and r.month == month)


def test_each_measure_has_its_defined_value(session):
    w = build(session)
    result = measures.referral_measures(session, Actor.system_actor("tests"), division_id=w.county_id,
                                        since=SINCE, until=UNTIL, now=LATER)
    assert result.months == ["2026-11", "2026-12"]
    hosp, village = _row(result, w.hospital, "2026-11"), _row(result, w.village, "2026-11")
    # Up: A, B, C, D, the emergency and the rejected one. Down: the back-referrals of A and C
    # and the direct G, H and J.
    assert (hosp.up_received, hosp.down_sent, hosp.up_sent, hosp.down_received) == (6, 5, 0, 0)
    assert (village.up_sent, village.down_received, village.up_received, village.down_sent) == (6, 5, 0, 0)
    # Acceptance at the hospital: 0.5, 1, 3, 10 h (the emergency left out).
    assert hosp.accepted == 4
    assert hosp.accept_median_hours == pytest.approx(2.0)
    assert hosp.accept_p90_hours == pytest.approx(7.9)
    # Reserved places: A, B, C, D booked one each (B's place was held: a no-show does not
    # give it back after the session).
    places = _reserved_places(session, w.hospital, 11)
    assert places >= 8
    assert (hosp.reserved_booked, hosp.reserved_places) == (4, places)
    assert hosp.utilisation == pytest.approx(4 / places)
    # No-show: B of A, B, C (D has not reached its appointment in the records).
    assert (hosp.no_shows, hosp.reached) == (1, 3)
    assert hosp.no_show_rate == pytest.approx(1 / 3)
    # 14 days: A (7 d) and G (seen after 5 d) of A, C (20 d), G, H (never); J was rejected.
    assert (village.followup_in_time, village.followup_due) == (2, 4)
    assert village.followup_share == pytest.approx(0.5)
    # The village clinic accepted G after 2 h and H after 1 h.
    assert (village.accepted, village.accept_median_hours, village.accept_p90_hours) == (2, 1.5, pytest.approx(1.9))
    december = _row(result, w.hospital, "2026-12")
    assert december.reserved_booked == 0 and december.reserved_places == _reserved_places(session, w.hospital, 12)
    assert december.utilisation == 0


def test_totals_pool_the_referrals_rather_than_average_the_rows(session):
    w = build(session)
    result = measures.referral_measures(session, Actor.system_actor("tests"), division_id=w.county_id,
                                        since=SINCE, until=UNTIL, now=LATER)
    total = result.total
    assert (total.up_sent, total.up_received, total.down_sent, total.down_received) == (6, 6, 5, 5)
    # 0.5, 1, 1, 2, 3, 10 hours: median 1.5, p90 6.5 (not the facilities' medians averaged)
    assert total.accepted == 6
    assert total.accept_median_hours == pytest.approx(1.5)
    assert total.accept_p90_hours == pytest.approx(6.5)
    assert total.no_show_rate == pytest.approx(1 / 3) and total.followup_share == pytest.approx(0.5)
    assert [m.month for m in result.monthly] == ["2026-11", "2026-12"]
    assert result.monthly[0].up_sent == 6 and result.monthly[1].up_sent == 0
    assert {f.org_id for f in result.facilities} == {w.hospital, w.village}
    hospital = next(f for f in result.facilities if f.org_id == w.hospital)
    assert hospital.reserved_places == sum(r.reserved_places for r in result.rows if r.org_id == w.hospital)


def test_follow_ups_not_yet_due_are_left_out(session):
    w = build(session)
    # On 7 December, 20:00 in Shanghai, G and H (sent 23 November, 09:00) are past their 14
    # days; the back-referrals of A and C (after their places, from 24 November) are not yet.
    early = measures.referral_measures(session, Actor.system_actor("tests"), org_ids=[w.village], since=SINCE,
                                       until=date(2026, 12, 7), now=datetime(2026, 12, 7, 12, tzinfo=UTC))
    village = _row(early, w.village, "2026-11")
    assert (village.followup_in_time, village.followup_due) == (1, 2)


def test_the_measures_need_referral_stats_in_the_scope_asked_for(session):
    w = build(session)
    r = w.ward.region
    ask = dict(since=SINCE, until=UNTIL, now=LATER)
    with pytest.raises(Forbidden) as exc:
        measures.referral_measures(session, w.ward.hospital_doctor, org_ids=[w.hospital], **ask)
    assert exc.value.code == "SEC-102"
    admin = staff(session, r.township_centre.id, username="thc-admin", role="facility_admin")
    with pytest.raises(Forbidden) as exc:
        measures.referral_measures(session, admin, org_ids=[w.hospital], **ask)
    assert exc.value.code == "SEC-103"
    own = measures.referral_measures(session, admin, org_ids=[r.township_centre.id], **ask)
    assert own.rows == [] and own.total.up_sent == 0
    bureau = _bureau(session, r.county.id)
    with pytest.raises(Forbidden) as exc:
        measures.referral_measures(session, bureau, division_id=r.city.id, **ask)
    assert exc.value.code == "SEC-103"
    seen = measures.referral_measures(session, bureau, division_id=r.county.id, **ask)
    assert seen.total.up_received == 6
    session.flush()
    trail = session.scalars(select(AuditEvent).where(AuditEvent.resource_type == "ReferralMeasures",
                                                     AuditEvent.username == bureau.username)).all()
    assert {(e.action, e.outcome, e.patient_id) for e in trail} == {("search", "denied", None),
                                                                    ("search", "success", None)}


def test_bad_periods_and_scopes_are_refused_with_a_code(session):
    sys = Actor.system_actor("tests")
    for kw in (dict(since=date(2026, 12, 1), until=date(2026, 11, 1)),
               dict(since=date(2020, 1, 1), until=date(2026, 1, 1)),
               dict(since=SINCE, until=UNTIL, division_id=1, org_ids=[1]),
               dict(since=SINCE, until=UNTIL, org_ids=[]),
               dict(since=SINCE, until=UNTIL, division_id=2**31 - 1)):
        with pytest.raises(Invalid) as exc:
            measures.referral_measures(session, sys, **kw)
        assert exc.value.code == "REF-005"


def _bureau(session, county_id: int) -> Actor:
    user = security.create_user(session, Actor.system_actor("tests"), username="county-bureau",
                                display_name="县卫健局", password="Bureau-pass-123",
                                grants=[security.parse_grant("commission_admin", "division", county_id)])
    return security.actor_for(session, user, surface="web", client=None, mfa=True)


# -- the page ------------------------------------------------------------------------------------


@pytest.fixture
def bureau_page(settings, session):
    """The app with the pages, acting as the county bureau's administrator."""
    w = build(session)
    actor = _bureau(session, w.county_id)
    app = create_app(settings)

    async def as_bureau(request: Request) -> Actor:
        request.state.actor = actor
        request.state.web_user = {"name": "县卫健局", "username": actor.username, "csrf": "", "mfa": True,
                                  "needs_mfa": False, "perms": {str(p) for p in actor.perms()}}
        return actor

    app.dependency_overrides[get_session] = lambda: session
    app.dependency_overrides[optional_actor] = as_bureau
    with TestClient(app) as client:
        yield client, w
    app.state.engine.dispose()


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_bureau_sees_its_county_per_facility_and_month(bureau_page):
    client, w = bureau_page
    page = client.get("/referrals/measures", params={"division": w.county_id, "start": "2026-11", "end": "2026-12"})
    assert page.status_code == 200, page.text
    text = _text(page.text)
    assert "双向转诊统计" in text and "永宁县人民医院" in text and "桃源村卫生室" in text
    assert "2026-11-01 至 2026-12-31" in text and "1.5 / 6.5" in text  # the county's acceptance
    assert "预留号源使用率" in text and "33.3%" in text  # the no-show rate (the follow-ups depend on today)
    assert 'data-table="facilities"' in page.text and "<svg" in page.text and "<script" not in page.text
    assert f'data-org-id="{w.hospital}"' in page.text
    drill = client.get("/referrals/measures", params={"division": w.county_id, "start": "2026-11", "end": "2026-12",
                                                      "org": w.hospital, "lang": "en"})
    assert drill.status_code == 200
    text = _text(drill.text)
    assert "Two-way referral measures" in text and "永宁县人民医院: per month" in text
    assert 'data-month="2026-11"' in drill.text and "2.0" in text and "7.9" in text  # median, p90


def test_a_division_outside_the_grant_is_not_shown(bureau_page):
    client, w = bureau_page
    page = client.get("/referrals/measures", params={"division": w.ward.region.city.id})
    # Not among the choices: the page falls back to the bureau's own county.
    assert page.status_code == 200
    assert f'<option value="{w.county_id}" selected>' in page.text
    assert f'value="{w.ward.region.city.id}"' not in page.text
