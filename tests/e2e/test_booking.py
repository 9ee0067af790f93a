"""A real browser on the live app (generated tiny region) and booking: the demo resident goes
through facility → department → doctor → day → time → confirm, sees the appointment in
"my appointments" and cancels it; the demo facility administrator (password and TOTP code)
opens the schedule editor, sets the hospital's quota policy (预留号源规则) and stops a session
(停诊); the resident whose session was stopped takes one of the offered times (停诊改约). Both
languages; screenshots
(``booking-*.png``) go to /tmp/hg-shots for a human to look at.

The clinic is made here through the services, at the demo clinician's hospital (where the
demo administrator works), opened from today's date so tomorrow's morning is bookable; the
demo resident's ID number is registered in the patient index if the region does not hold it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from tests.conftest import SESSION_INFO
from tests.e2e.test_login import totp_code
from tests.e2e.test_region_browser import _shot, browser, log_in, page  # noqa: F401 (fixtures)

from healthgrid.db import make_engine, make_sessionmaker
from healthgrid.jobs import HANDLERS
from healthgrid.outbox import deliver_pending
from healthgrid.patients import service as patients
from healthgrid.registry import queries as registry_queries
from healthgrid.registry import service as registry
from healthgrid.scheduling import schedules
from healthgrid.scheduling import service as booking
from healthgrid.security import service as security
from healthgrid.security.domain import Actor, parse_resident_id
from healthgrid.security.synth import DEMO_PASSWORD

pytestmark = pytest.mark.e2e

SYS = Actor.system_actor("e2e")
ZONE = ZoneInfo("Asia/Shanghai")
CLINIC_NAME = "心血管内科 E2E 专家门诊"


@dataclass(frozen=True)
class Clinic:
    org_id: int
    org_name: str
    department_id: int
    schedule_id: int
    tomorrow: date


def _own_record(s, hospital_id: int) -> None:
    """The demo resident books under their own name: their ID number needs a record."""
    user = security.user_by_name(s, "demo-resident")
    number = security.own_id_number(s, user.id)
    if patients.patient_of_id_number(s, number) is not None:
        return
    parsed = parse_resident_id(number)
    data = patients.PatientIn(name="刘演示", sex=parsed.sex, birth_date=parsed.birth_date, resident_id=number,
                              phone="13900002026")
    patients.register_patient(s, SYS, org_id=hospital_id, data=data)


def _department(s, org_id: int, code: str):
    found = [d for d in registry_queries.organization_detail(s, org_id).departments if d.code == code]
    return found[0] if found else registry.add_department(s, SYS, org_id=org_id, code=code)


@pytest.fixture(scope="module")
def clinic(region_url) -> Clinic:
    eng = make_engine(region_url)
    try:
        with make_sessionmaker(eng, info=dict(SESSION_INFO))() as s:
            doctor = security.user_by_name(s, "demo-clinician")
            org = registry_queries.organization_by_id(s, doctor.org_id)
            dept = _department(s, org.id, "03.03")
            today = datetime.now(ZONE).date()
            sched = schedules.create_schedule(s, SYS, schedules.ScheduleIn(
                org_id=org.id, name=CLINIC_NAME, fee_class="expert", department_id=dept.id,
                practitioner_id=doctor.practitioner_id, reserve_ratio=0.2, open_days_ahead=7,
                channel_shares={"web": 0.6, "window": 0.4},
                templates=[schedules.TemplateIn(weekday=w, part=p, start=a, end=b, slot_minutes=30)
                           for w in range(7) for p, a, b in (("am", "08:00", "11:30"), ("pm", "14:00", "16:00"))]),
                today=today)
            _own_record(s, org.id)
            s.commit()
            return Clinic(org.id, org.name, dept.id, sched.id, today + timedelta(days=1))
    finally:
        eng.dispose()


def _run_worker(region_url: str) -> None:
    """What the worker does between two pages: deliver the outbox (confirmation, notice)."""
    eng = make_engine(region_url)
    try:
        with make_sessionmaker(eng, info=dict(SESSION_INFO))() as s:
            while deliver_pending(s, HANDLERS, batch=500):
                pass
    finally:
        eng.dispose()


def test_resident_books_a_time_and_cancels_it(page, live_server, region_url, clinic, tmp_path):  # noqa: F811
    log_in(page, live_server, username="demo-resident", password=DEMO_PASSWORD)
    page.locator(".site-nav a", has_text="预约挂号").click()
    assert page.locator("h1").inner_text() == "预约挂号"
    _shot(page, tmp_path, "booking-1-facility")
    page.locator(f'a[data-org-id="{clinic.org_id}"]').click()
    assert clinic.org_name in page.locator(".booking-context").inner_text()
    page.locator(f'a[data-department-id="{clinic.department_id}"]').click()
    _shot(page, tmp_path, "booking-2-doctor")
    doctor = page.locator(f'li[data-schedule-id="{clinic.schedule_id}"]')
    assert "专家号" in doctor.inner_text()
    doctor.locator("a").click()
    _shot(page, tmp_path, "booking-3-date")
    page.locator(f'li[data-day="{clinic.tomorrow.isoformat()}"] a').click()
    assert page.locator(".slot").count() >= 4
    _shot(page, tmp_path, "booking-4-time")
    page.locator(".slot a").first.click()
    assert page.locator("h1").inner_text() == "确认预约"
    assert "（本人）" in page.locator(".confirm-form").inner_text()
    _shot(page, tmp_path, "booking-5-confirm")
    page.get_by_role("button", name="确认预约").click()
    assert "预约成功" in page.locator(".flash").inner_text()
    assert page.locator("main").get_attribute("data-status") == "booked"
    appointment_id = page.locator("main").get_attribute("data-appointment-id")
    _shot(page, tmp_path, "booking-6-booked")
    page.locator("a.lang-switch").click()
    assert "Expert clinic" in page.locator(".page-head__meta").inner_text()
    _shot(page, tmp_path, "booking-6-booked-en")
    page.locator("a.lang-switch").click()

    page.locator(".site-nav a", has_text="我的预约").click()
    row = page.locator(f'table.appointments--upcoming tr[data-appointment-id="{appointment_id}"]')
    assert "已预约" in row.inner_text()
    _shot(page, tmp_path, "booking-7-mine")
    row.locator('select[name="reason"]').select_option("plans")
    row.get_by_role("button", name="取消预约").click()
    assert f"预约 #{appointment_id} 已取消" in page.locator(".flash").inner_text()
    past = page.locator(f'table.appointments--past tr[data-appointment-id="{appointment_id}"]')
    assert past.get_attribute("data-status") == "cancelled" and "行程有变" in past.inner_text()
    _shot(page, tmp_path, "booking-8-cancelled")
    page.goto(live_server + "/appointments?lang=en")
    assert page.locator("h1").inner_text() == "My appointments"
    _shot(page, tmp_path, "booking-8-cancelled-en")
    _run_worker(region_url)
    page.goto(live_server + "/inbox?lang=zh")
    assert page.locator("h1").inner_text() == "消息"
    assert page.locator('.message[data-topic="scheduling.appointment_cancelled"]').count() >= 1
    _shot(page, tmp_path, "booking-9-inbox")
    assert page.requested_hosts == {"127.0.0.1"}
    assert page.console_errors == []


def test_facility_admin_stops_a_session(page, live_server, region_url, clinic, tmp_path):  # noqa: F811
    page.goto(live_server + "/login?next=/scheduling/schedules")
    page.fill("#f-username", "demo-facility_admin")
    page.fill("#f-password", DEMO_PASSWORD)
    page.get_by_role("button", name="登录").click()
    assert "/login/second-factor" in page.url
    page.fill("#f-code", totp_code(region_url, "demo-facility_admin"))
    page.get_by_role("button", name="验证").click()
    assert page.url == live_server + "/scheduling/schedules"
    assert page.locator("h1").inner_text() == "排班管理"
    _shot(page, tmp_path, "booking-admin-schedules")
    policy = page.locator("form.policy-form")
    policy.locator("#p-reserve_ratio").fill("25")
    policy.locator("#p-release_back_hours").fill("24")
    policy.get_by_role("button", name="保存规则").click()
    assert "全院的预留号源规则已更新" in page.locator(".flash").inner_text()
    assert "25%" in page.locator('table.policies tr[data-policy-scope="org"]').inner_text()
    page.locator("#policy").scroll_into_view_if_needed()
    _shot(page, tmp_path, "booking-admin-policy")
    page.locator(f'tr[data-schedule-id="{clinic.schedule_id}"] a').click()
    assert page.locator("h1").inner_text() == CLINIC_NAME
    _shot(page, tmp_path, "booking-admin-sessions")
    target = page.locator(f'tr[data-day="{(clinic.tomorrow + timedelta(days=1)).isoformat()}"]').first
    target.locator('input[name="reason"]').fill("医生外出会诊")
    target.get_by_role("button", name="停诊").click()
    assert "已停诊" in page.locator(".flash").inner_text()
    assert page.locator('tr[data-status="stopped"]').count() >= 1
    _shot(page, tmp_path, "booking-admin-stopped")
    page.goto(page.url + "?lang=en")
    assert "coming sessions" in page.locator("h2").last.inner_text()
    _shot(page, tmp_path, "booking-admin-sessions-en")
    assert page.requested_hosts == {"127.0.0.1"}
    assert page.console_errors == []


def _stopped_booking(region_url: str, clinic: Clinic) -> int:
    """The demo resident's appointment three days on, cancelled by a stop-clinic notice."""
    day = clinic.tomorrow + timedelta(days=2)
    eng = make_engine(region_url)
    try:
        with make_sessionmaker(eng, info=dict(SESSION_INFO))() as s:
            user = security.user_by_name(s, "demo-resident")
            me = patients.patient_of_id_number(s, security.own_id_number(s, user.id))
            slot = booking.find_slots(s, SYS, booking.SlotQuery(schedule_id=clinic.schedule_id, day_from=day,
                                                                 day_to=day, pool="web"))[0]
            appt = booking.book_appointment(s, SYS, slot_id=slot.id, patient_id=me, channel="web")
            schedules.add_closure(s, SYS, org_id=clinic.org_id, day=day, kind="stop", reason="医生参加义诊",
                                  schedule_id=clinic.schedule_id, part=slot.part)
            s.commit()
            return appt.id
    finally:
        eng.dispose()


def test_resident_rebooks_after_a_stop_clinic_notice(page, live_server, region_url, clinic,  # noqa: F811
                                                     tmp_path):
    old = _stopped_booking(region_url, clinic)
    log_in(page, live_server, username="demo-resident", password=DEMO_PASSWORD)
    page.goto(live_server + "/appointments")
    row = page.locator(f'table.appointments--past tr[data-appointment-id="{old}"]')
    assert "停诊：医生参加义诊" in row.inner_text() and row.locator("button[data-rebook-slot]").count() >= 1
    page.goto(live_server + f"/appointments/{old}")
    offer = page.locator("section.rebook")
    assert "停诊改约" in offer.inner_text() and "医生参加义诊" in offer.inner_text()
    _shot(page, tmp_path, "booking-rebook-offer")
    page.goto(live_server + f"/appointments/{old}?lang=en")
    assert "Session cancelled by the hospital" in page.locator("section.rebook").inner_text()
    _shot(page, tmp_path, "booking-rebook-offer-en")
    page.locator("section.rebook button[data-rebook-slot]").first.click()
    assert "Rebooked" in page.locator(".flash").inner_text()
    assert page.locator("main").get_attribute("data-status") == "booked"
    _shot(page, tmp_path, "booking-rebook-done-en")
    assert page.requested_hosts == {"127.0.0.1"}
    assert page.console_errors == []
