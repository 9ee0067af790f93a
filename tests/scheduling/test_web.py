"""Booking pages with real users (``secure_client``, logged in through the pages): the
resident's flow facility → department → doctor → day → time → confirm, in Chinese and
English; a double-submitted confirmation books once; a full time shows 已满 and offers the
waitlist; cancelling (and the deadline refusal as a notice); family members; staff booking
at the window for a patient found by search; the doctor's day list (check in, seen); the
facility administrator's schedule editor (create, stop a session, holiday); the exam
booking centre; and the inbox.

The pages use the real clock, so the clinic here is opened from today's date; tomorrow's
morning session is released and bookable whatever day the tests run."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from tests.factories import SYS, resident_id
from tests.security.conftest import ID_NUMBER, world  # noqa: F401 (world: a fixture)
from tests.security.test_web import _csrf, login

from healthgrid.config import SchedulingSettings
from healthgrid.notifications import service as notifications
from healthgrid.patients import service as patients
from healthgrid.registry import service as registry
from healthgrid.scheduling import schedules, service
from healthgrid.security import ALL_SETTINGS_KEY
from healthgrid.security.domain import Role

HTML = {"accept": "text/html"}
ZONE = ZoneInfo("Asia/Shanghai")
KEY_RE = re.compile(r'name="key" value="([^"]+)"')


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def local_today() -> date:
    return datetime.now(ZONE).date()


class Clinic:
    def __init__(self, session, w):
        r = w.region
        self.hospital = r.county_hospital
        self.dept = registry.add_department(session, SYS, org_id=r.county_hospital.id, code="03")
        templates = [schedules.TemplateIn(weekday=wd, part="am", start="08:00", end="10:00", slot_minutes=30)
                     for wd in range(7)]
        # Four places a morning: two for the web (residents), two for the window (staff).
        self.schedule = schedules.create_schedule(session, SYS, schedules.ScheduleIn(
            org_id=r.county_hospital.id, name="心内科 张晓明 专家门诊", fee_class="expert", department_id=self.dept.id,
            practitioner_id=r.doctor.id, reserve_ratio=0, open_days_ahead=7,
            channel_shares={"web": 0.5, "window": 0.5}, templates=templates), today=local_today())
        self.me = _register(session, r, "王秀兰", ID_NUMBER, date(1949, 12, 31)).patient.id
        self.kin_id = resident_id(date(1980, 3, 4), seq=124)
        self.kin = _register(session, r, "李小红", self.kin_id, date(1980, 3, 4)).patient.id
        self.other = _register(session, r, "赵志强", resident_id(date(1970, 6, 1), seq=131), date(1970, 6, 1),
                               sex="M").patient.id
        self.more = [_register(session, r, name, resident_id(date(1975, 1, 5), seq=seq), date(1975, 1, 5),
                               sex="M").patient.id for name, seq in (("孙建华", 151), ("周明", 153))]
        self.tomorrow = local_today() + timedelta(days=1)
        session.commit()

    def slots(self, session, pool="web", day=None):
        day = day or self.tomorrow
        return service.find_slots(session, SYS, service.SlotQuery(schedule_id=self.schedule.id, day_from=day,
                                                                  day_to=day, pool=pool, free_only=False))


def _register(session, region, name, rid, born, sex="F"):
    data = patients.PatientIn(name=name, sex=sex, birth_date=born, resident_id=rid, phone="13700001111")
    return patients.register_patient(session, SYS, org_id=region.county_hospital.id, data=data)


@pytest.fixture
def clinic(session, world) -> Clinic:  # noqa: F811
    return Clinic(session, world)


def _confirm_form(client, slot_id: int, **params) -> tuple[str, dict]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    page = client.get(f"/booking/confirm?slot={slot_id}&{query}", headers=HTML)
    assert page.status_code == 200, page.text
    return page.text, {"csrf_token": _csrf(page.text), "slot_id": slot_id, "key": KEY_RE.search(page.text).group(1)}


# -- the resident's flow -----------------------------------------------------------------------


def test_the_booking_steps_render_in_chinese_and_english(secure_client, session, clinic, world):  # noqa: F811
    login(secure_client, world, Role.RESIDENT)
    home = secure_client.get("/", headers=HTML)
    nav = re.search(r'<nav class="site-nav".*?</nav>', home.text, re.S).group(0)
    assert 'href="/booking"' in nav and "我的预约" in nav and "消息" in nav and "排班管理" not in nav
    start = secure_client.get("/booking", headers=HTML)
    assert start.status_code == 200 and "永宁县人民医院" in start.text and 'data-step="facility"' in start.text
    org = clinic.hospital.id
    dept = secure_client.get(f"/booking?org={org}", headers=HTML)
    assert f'data-department-id="{clinic.dept.id}"' in dept.text and "1 个号别" in dept.text
    doctors = secure_client.get(f"/booking?org={org}&dept={clinic.dept.id}", headers=HTML)
    assert "张晓明" in doctors.text and "专家号" in doctors.text
    days = secure_client.get(f"/booking?schedule={clinic.schedule.id}", headers=HTML)
    assert f'data-day="{clinic.tomorrow.isoformat()}" data-free="2"' in days.text and "余 2" in days.text
    times = secure_client.get(f"/booking?schedule={clinic.schedule.id}&day={clinic.tomorrow}", headers=HTML)
    assert all(f'data-slot-id="{s.id}"' in times.text for s in clinic.slots(session))
    assert "当前渠道：网站/APP" in times.text
    en = secure_client.get(f"/booking?schedule={clinic.schedule.id}&day={clinic.tomorrow}&lang=en", headers=HTML)
    assert "Choose a time" in en.text and "Expert clinic" in en.text and "1 free" in en.text
    assert "预约" not in text_of(en.text).replace("中文", "")


def test_a_double_submitted_confirmation_books_once(secure_client, session, clinic, world):  # noqa: F811
    login(secure_client, world, Role.RESIDENT)
    slot = clinic.slots(session)[0]
    html, form = _confirm_form(secure_client, slot.id)
    assert "王秀兰（本人）" in html and "心内科 张晓明 专家门诊" in html and "专家号" in html
    first = secure_client.post("/booking/confirm", headers=HTML, follow_redirects=False,
                               data={**form, "patient_id": clinic.me})
    again = secure_client.post("/booking/confirm", headers=HTML, follow_redirects=False,
                               data={**form, "patient_id": clinic.me})
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert len(service.my_appointments(session, service_actor(session, world))) == 1
    assert service.get_slot(session, SYS, slot.id).booked == 1
    page = secure_client.get(first.headers["location"], headers=HTML)
    assert 'data-flash="ok"' in page.text and "预约成功" in page.text and 'data-status="booked"' in page.text
    mine = secure_client.get("/appointments", headers=HTML)
    assert mine.text.count("<tr data-appointment-id=") == 1 and "已预约" in mine.text
    en = secure_client.get("/appointments?lang=en", headers=HTML)
    assert "My appointments" in en.text and "Booked" in en.text and "Cancel" in en.text


def service_actor(session, w):
    from tests.security.conftest import actor_of

    return actor_of(session, w, Role.RESIDENT)


def _fill(session, clinic, pool="web"):
    """Every place of tomorrow's pool taken by other patients (booked by the window staff)."""
    people = (clinic.other, clinic.kin) if pool == "web" else clinic.more
    for slot, pid in zip(clinic.slots(session, pool), people, strict=False):
        service.book_appointment(session, SYS, slot_id=slot.id, patient_id=pid, channel=pool)
    session.commit()


def test_a_full_time_shows_full_offers_the_waitlist_and_refuses_the_booking(secure_client, session, clinic,
                                                                            world):  # noqa: F811
    login(secure_client, world, Role.RESIDENT)
    slot = clinic.slots(session)[0]
    _html, form = _confirm_form(secure_client, slot.id)
    _fill(session, clinic)
    answer = secure_client.post("/booking/confirm", headers=HTML, data={**form, "patient_id": clinic.me})
    assert answer.url.path == "/booking" and 'data-error-code="SCHED-002"' in answer.text
    assert "该时段已约满" in answer.text and "已满" in answer.text and 'data-free="0"' in answer.text
    assert "加入候补" in answer.text
    back = f"/booking?schedule={clinic.schedule.id}&day={clinic.tomorrow}"
    waitlist = {"csrf_token": _csrf(answer.text), "session_id": slot.session_id, "patient_id": clinic.me,
                "back": back}
    # The window's places of the session are still free, but a web user cannot book them: the
    # web user may wait for a web place.
    _fill(session, clinic, "window")
    joined = secure_client.post("/booking/waitlist", headers=HTML, data=waitlist)
    assert joined.url.path == "/appointments" and "已加入候补，目前排第 1 位" in joined.text
    assert 'data-waitlist-id="' in joined.text
    en = secure_client.get(f"/booking?schedule={clinic.schedule.id}&day={clinic.tomorrow}&lang=en", headers=HTML)
    assert "Full" in en.text


def test_cancelling_with_a_reason_and_the_deadline_shown_as_a_notice(secure_client, session, clinic,
                                                                     world):  # noqa: F811
    login(secure_client, world, Role.RESIDENT)
    slots = clinic.slots(session)
    actor = service_actor(session, world)
    one = service.book_appointment(session, actor, slot_id=slots[0].id, patient_id=clinic.me, channel="web")
    session.commit()
    page = secure_client.get(f"/appointments/{one.id}", headers=HTML)
    assert "取消预约" in page.text and "行程有变" in page.text
    done = secure_client.post(f"/appointments/{one.id}/cancel", headers=HTML, data={
        "csrf_token": _csrf(page.text), "reason": "other", "other": "家里有事", "back": f"/appointments/{one.id}"})
    assert done.url.path == f"/appointments/{one.id}" and f"预约 #{one.id} 已取消" in done.text
    assert service.get_appointment(session, actor, one.id).status == "cancelled"
    assert "家里有事" in done.text and "重新预约" in done.text
    # The deadline: with cancellation allowed only up to two weeks before, tomorrow is too late.
    settings = session.info[ALL_SETTINGS_KEY]
    late = service.book_appointment(session, actor, slot_id=slots[0].id, patient_id=clinic.me, channel="web")
    session.commit()
    session.info[ALL_SETTINGS_KEY] = settings.model_copy(
        update={"scheduling": SchedulingSettings(cancel_before_hours=14 * 24)})
    try:
        refused = secure_client.post(f"/appointments/{late.id}/cancel", headers=HTML, data={
            "csrf_token": _csrf(page.text), "reason": "plans", "back": "/appointments"})
    finally:
        session.info[ALL_SETTINGS_KEY] = settings
    assert refused.url.path == "/appointments" and 'data-error-code="SCHED-011"' in refused.text
    assert "已超过取消期限" in refused.text
    assert service.get_appointment(session, actor, late.id).status == "booked"


def test_a_family_member_is_added_by_name_and_id_number_and_booked_for(secure_client, session, clinic,
                                                                       world):  # noqa: F811
    login(secure_client, world, Role.RESIDENT)
    page = secure_client.get("/account/family", headers=HTML)
    assert page.status_code == 200 and "还没有添加就诊人" in page.text
    wrong = secure_client.post("/account/family", headers=HTML, data={
        "csrf_token": _csrf(page.text), "name": "李小明", "id_number": clinic.kin_id, "relationship": "child"})
    assert wrong.status_code == 422 and 'data-error-code="SCHED-024"' in wrong.text
    assert 'value="李小明"' in wrong.text  # the form keeps what was typed
    added = secure_client.post("/account/family", headers=HTML, data={
        "csrf_token": _csrf(page.text), "name": "李小红", "id_number": clinic.kin_id, "relationship": "child"})
    assert "已添加就诊人 李小红" in added.text and f'data-patient-id="{clinic.kin}"' in added.text
    html, form = _confirm_form(secure_client, clinic.slots(session)[0].id)
    assert "李小红（子女）" in html
    booked = secure_client.post("/booking/confirm", headers=HTML, data={**form, "patient_id": clinic.kin})
    assert "预约成功" in booked.text and "李小红" in booked.text, text_of(booked.text)[:1500]
    en = secure_client.get("/account/family?lang=en", headers=HTML)
    assert "Family members" in en.text and "Child" in en.text


def test_the_resident_without_a_record_is_told_to_register_first(secure_client, session, world):  # noqa: F811
    from tests.scheduling.conftest import make_clinic

    made = make_clinic(session, prefix="93")
    session.commit()
    login(secure_client, world, Role.RESIDENT)
    slot = service.find_slots(session, SYS, service.SlotQuery(schedule_id=made.schedule.id, pool="web"))[0]
    page = secure_client.get(f"/booking/confirm?slot={slot.id}", headers=HTML)
    assert "data-no-patient" in page.text and 'name="patient_id"' not in page.text


# -- staff ---------------------------------------------------------------------------------------


def test_a_nurse_books_at_the_window_for_a_patient_found_by_name(secure_client, session, clinic,
                                                                 world):  # noqa: F811
    login(secure_client, world, Role.NURSE)
    times = secure_client.get(f"/booking?schedule={clinic.schedule.id}&day={clinic.tomorrow}&channel=window",
                              headers=HTML)
    assert "当前渠道：窗口" in times.text and "加入候补" not in times.text
    slot = clinic.slots(session, "window")[0]
    assert f"/booking/confirm?slot={slot.id}&channel=window" in times.text
    html, form = _confirm_form(secure_client, slot.id, channel="window", name="赵志强")
    assert f'value="{clinic.other}"' in html and "赵**" in html  # a nurse sees names masked
    booked = secure_client.post("/booking/confirm", headers=HTML, follow_redirects=False,
                                data={**form, "channel": "window", "patient_id": clinic.other})
    assert booked.status_code == 303
    appt_id = int(booked.headers["location"].rsplit("/", 1)[1])
    assert service.get_appointment(session, SYS, appt_id).channel == "window"
    none = secure_client.get(f"/booking/confirm?slot={slot.id}&channel=window&name=欧阳无名", headers=HTML)
    assert "没有找到符合条件的患者" in none.text


def test_the_day_list_numbers_patients_and_checks_them_in(secure_client, session, clinic, world):  # noqa: F811
    # A session covering the whole of today, so check-in is open whenever the test runs.
    today = local_today()
    whole_day = schedules.create_schedule(session, SYS, schedules.ScheduleIn(
        org_id=clinic.hospital.id, name="全科门诊（全天）", department_id=clinic.dept.id, reserve_ratio=0,
        channel_shares={"window": 1}, templates=[schedules.TemplateIn(
            weekday=today.weekday(), part="eve", start="00:00", end="24:00", slot_minutes=240, per_slot=2)]),
        today=today)
    slots = service.find_slots(session, SYS, service.SlotQuery(schedule_id=whole_day.id, day_from=today,
                                                               day_to=today, free_only=False),
                               now=datetime(today.year, today.month, today.day, tzinfo=ZONE) - timedelta(hours=1))
    early = slots[0].starts_at - timedelta(minutes=1)
    ids = [service.book_appointment(session, SYS, slot_id=slots[0].id, patient_id=pid, channel="window",
                                    now=early).id for pid in (clinic.me, clinic.other)]
    session.commit()
    login(secure_client, world, Role.CLINICIAN)
    page = secure_client.get(f"/scheduling/day-list?day={today}&schedule={whole_day.id}", headers=HTML)
    assert page.status_code == 200 and page.text.count("<tr data-appointment-id=") == 2
    assert '<td class="num queue-no">2</td>' in page.text and "王秀兰" in page.text
    checked = secure_client.post(f"/scheduling/day-list/{ids[0]}/check-in", headers=HTML, data={
        "csrf_token": _csrf(page.text), "number": 1,
        "back": f"/scheduling/day-list?day={today}&schedule={whole_day.id}"})
    assert "1 号已签到" in checked.text and f'data-appointment-id="{ids[0]}" data-status="arrived"' in checked.text
    seen = secure_client.post(f"/scheduling/day-list/{ids[0]}/seen", headers=HTML, data={
        "csrf_token": _csrf(page.text), "number": 1,
        "back": f"/scheduling/day-list?day={today}&schedule={whole_day.id}"})
    assert "1 号已就诊" in seen.text and service.get_appointment(session, SYS, ids[0]).status == "fulfilled"
    twice = secure_client.post(f"/scheduling/day-list/{ids[0]}/seen", headers=HTML, data={
        "csrf_token": _csrf(page.text), "number": 1, "back": "/scheduling/day-list"})
    assert 'data-error-code="SCHED-012"' in twice.text
    en = secure_client.get(f"/scheduling/day-list?day={today}&schedule={whole_day.id}&lang=en", headers=HTML)
    assert "Day list" in en.text and "Seen" in en.text and "Check in" in en.text


def test_the_facility_admin_creates_a_schedule_and_stops_a_session(secure_client, session, clinic,
                                                                   world):  # noqa: F811
    booked = service.book_appointment(session, SYS, slot_id=clinic.slots(session)[0].id, patient_id=clinic.me,
                                      channel="web")
    session.commit()
    login(secure_client, world, Role.FACILITY_ADMIN)
    page = secure_client.get("/scheduling/schedules", headers=HTML)
    assert page.status_code == 200 and "心内科 张晓明 专家门诊" in page.text and "新建排班" in page.text
    rows = re.findall(r'name="row_key" value="([^"]+)"', page.text)
    assert len(rows) == 14
    data = {"csrf_token": _csrf(page.text), "name": "", "department_id": clinic.dept.id, "practitioner_id": "",
            "fee_class": "general", "reserve_ratio": "20", "reserve_lead_days": "7", "release_back_hours": "24",
            "open_days_ahead": "7", "release_time": "08:00", "row_key": rows, "held": [r for r in rows if "-am" in r],
            "row_start": ["08:00"] * 14, "row_end": ["11:00"] * 14, "row_slot": ["30"] * 14, "row_per": ["2"] * 14}
    bad = secure_client.post("/scheduling/schedules", headers=HTML, data=data)
    assert bad.status_code == 422 and 'data-error-code="SCHED-015"' in bad.text
    made = secure_client.post("/scheduling/schedules", headers=HTML, data={**data, "name": "心内科普通门诊"})
    assert "排班已创建" in made.text and "心内科普通门诊" in made.text and "每 30 分钟一号，每号 2 人" in made.text
    assert made.text.count("<tr data-session-id=") >= 7
    # stop tomorrow's session of the first schedule: the booked patient's appointment is cancelled
    detail = secure_client.get(f"/scheduling/schedules/{clinic.schedule.id}", headers=HTML)
    assert f'data-day="{clinic.tomorrow}"' in detail.text and "网站/APP <strong>1</strong>" in detail.text
    stopped = secure_client.post(f"/scheduling/schedules/{clinic.schedule.id}/stop", headers=HTML, data={
        "csrf_token": _csrf(detail.text), "day": clinic.tomorrow.isoformat(), "part": "am", "reason": "医生外出会诊"})
    assert "已停诊，取消了 1 个预约" in stopped.text and "医生外出会诊" in stopped.text
    assert service.get_appointment(session, SYS, booked.id).status == "cancelled"
    past = secure_client.post("/scheduling/holidays", headers=HTML, data={
        "csrf_token": _csrf(detail.text), "day": "2000-01-01", "reason": "元旦"})
    assert 'data-error-code="SCHED-017"' in past.text
    holiday = secure_client.post("/scheduling/holidays", headers=HTML, data={
        "csrf_token": _csrf(detail.text), "day": (clinic.tomorrow + timedelta(days=1)).isoformat(), "reason": "元旦"})
    assert "已添加节假日：停诊 2 个场次" in holiday.text
    en = secure_client.get("/scheduling/schedules?lang=en", headers=HTML)
    assert "New schedule" in en.text and "Weekly sessions" in en.text and "Expert clinic" in en.text


def test_a_resident_cannot_open_the_staff_pages(secure_client, clinic, world):  # noqa: F811
    login(secure_client, world, Role.RESIDENT)
    for path in ("/scheduling/schedules", "/scheduling/day-list", "/scheduling/exams"):
        page = secure_client.get(path, headers=HTML)
        assert page.status_code == 403 and "SEC-102" in page.text, path


def test_the_exam_centre_plans_and_books_several_exams(secure_client, session, clinic, world):  # noqa: F811
    org = clinic.hospital.id
    for kind in ("US", "DR"):
        eq = registry.add_equipment(session, SYS, org_id=org, kind=kind)
        schedules.create_schedule(session, SYS, schedules.ScheduleIn(
            org_id=org, name=f"{kind} 检查", kind="exam", equipment_id=eq.id, reserve_ratio=0,
            channel_shares={"window": 1}, templates=[schedules.TemplateIn(
                weekday=w, part="am", start="08:00", end="11:00", slot_minutes=20, per_slot=2) for w in range(7)]),
            today=local_today())
    session.commit()
    login(secure_client, world, Role.CLINICIAN)
    search = secure_client.get("/scheduling/exams?name=赵志强", headers=HTML)
    assert f'href="/scheduling/exams?patient={clinic.other}"' in search.text
    plan = secure_client.get(f"/scheduling/exams?patient={clinic.other}&items=US-ABD&items=XR-CHEST&plan=1",
                             headers=HTML)
    assert plan.status_code == 200 and 'data-trips="1"' in plan.text and 'data-exam="US-ABD"' in plan.text
    assert "检查须知" in plan.text and "需空腹" in plan.text
    booked = secure_client.post("/scheduling/exams", headers=HTML, data={
        "csrf_token": _csrf(plan.text), "patient_id": clinic.other, "items": ["US-ABD", "XR-CHEST"],
        "key": KEY_RE.search(plan.text).group(1)})
    assert "已预约 2 项检查，共需到院 1 次" in booked.text
    exams = [a for a in service.patient_appointments(session, SYS, clinic.other) if a.exam_code]
    assert sorted(a.exam_code for a in exams) == ["US-ABD", "XR-CHEST"]
    bad = secure_client.get(f"/scheduling/exams?patient={clinic.other}&items=MRI-HEAD&plan=1", headers=HTML)
    assert bad.status_code == 422 and 'data-error-code="SCHED-022"' in bad.text
    en = secure_client.get(f"/scheduling/exams?patient={clinic.other}&lang=en", headers=HTML)
    assert "Exam booking centre" in en.text and "Plan" in en.text


# -- the inbox -----------------------------------------------------------------------------------


def test_the_inbox_shows_the_residents_messages_and_marks_them_read(secure_client, session, clinic,
                                                                    world):  # noqa: F811
    notifications.notify(session, notifications.Note("patient", clinic.me, "scheduling.reminder",
                                                     {"zh": "就诊提醒", "en": "Appointment tomorrow"},
                                                     {"zh": "明天 08:00 心内科", "en": "Tomorrow 08:00, cardiology"},
                                                     link="/appointments"))
    notifications.notify(session, notifications.Note("patient", clinic.other, "scheduling.reminder",
                                                     {"zh": "别人的提醒", "en": "Someone else's"},
                                                     {"zh": "x", "en": "x"}))
    session.commit()
    login(secure_client, world, Role.RESIDENT)
    page = secure_client.get("/inbox", headers=HTML)
    assert page.status_code == 200 and "就诊提醒" in page.text and "别人的提醒" not in page.text
    assert 'data-unread="1"' in page.text and "1 条未读" in page.text
    message_id = re.search(r'data-message-id="(\d+)"', page.text).group(1)
    read = secure_client.post(f"/inbox/{message_id}/read", headers=HTML, data={"csrf_token": _csrf(page.text)})
    assert 'data-unread="0"' in read.text and 'data-read="true"' in read.text
    en = secure_client.get("/inbox?lang=en", headers=HTML)
    assert "Appointment tomorrow" in en.text and "Messages" in en.text
    login(secure_client, world, Role.CLINICIAN)
    assert "就诊提醒" not in secure_client.get("/inbox", headers=HTML).text


# -- rebooking after a stop-clinic notice (停诊改约) -----------------------------------------------


def _stopped(session, clinic, reason="医生外出会诊"):
    """The resident's appointment tomorrow, cancelled by a stop-clinic notice."""
    booked = service.book_appointment(session, SYS, slot_id=clinic.slots(session)[0].id, patient_id=clinic.me,
                                      channel="web")
    schedules.add_closure(session, SYS, org_id=clinic.hospital.id, day=clinic.tomorrow, kind="stop", reason=reason,
                          schedule_id=clinic.schedule.id, part="am")
    session.commit()
    return booked


def test_a_stop_clinic_notice_offers_other_times_and_rebooks_once(secure_client, session, clinic,
                                                                  world):  # noqa: F811
    old = _stopped(session, clinic)
    login(secure_client, world, Role.RESIDENT)
    listed = secure_client.get("/appointments", headers=HTML)
    assert f'data-rebook-for="{old.id}"' in listed.text and "停诊：医生外出会诊" in listed.text
    assert "stop_clinic" not in listed.text
    page = secure_client.get(f"/appointments/{old.id}", headers=HTML)
    assert "停诊改约" in page.text and "停诊：医生外出会诊" in page.text and "改约同科室的以下时间" in page.text
    offered = [int(x) for x in re.findall(r'data-rebook-slot="(\d+)"', page.text)]
    choices = service.rebooking_choices(session, SYS, old.id)
    assert offered == [c.id for c in choices] and all(c.day != clinic.tomorrow for c in choices)
    form = {"csrf_token": _csrf(page.text), "slot_id": offered[0], "key": KEY_RE.search(page.text).group(1),
            "back": f"/appointments/{old.id}"}
    first = secure_client.post(f"/appointments/{old.id}/rebook", headers=HTML, data=form, follow_redirects=False)
    again = secure_client.post(f"/appointments/{old.id}/rebook", headers=HTML, data=form, follow_redirects=False)
    assert first.status_code == again.status_code == 303 and first.headers["location"] == again.headers["location"]
    moved = secure_client.get(first.headers["location"], headers=HTML)
    assert "改约成功" in moved.text and 'data-status="booked"' in moved.text and "心内科 张晓明" not in moved.text
    assert service.get_slot(session, SYS, offered[0]).booked == 1
    # rebooked: the notice no longer offers times; the reason reads in English on an English page
    en = secure_client.get(f"/appointments/{old.id}?lang=en", headers=HTML)
    assert "data-rebook-for" not in en.text and "Session cancelled by the hospital: 医生外出会诊" in en.text


def test_only_a_stop_clinic_cancellation_is_rebooked(secure_client, session, clinic, world):  # noqa: F811
    own = service.book_appointment(session, SYS, slot_id=clinic.slots(session)[0].id, patient_id=clinic.me,
                                   channel="web")
    service.cancel_appointment(session, SYS, own.id, reason="行程有变")
    later = clinic.slots(session, day=clinic.tomorrow + timedelta(days=1))[0]
    session.commit()
    login(secure_client, world, Role.RESIDENT)
    page = secure_client.get(f"/appointments/{own.id}", headers=HTML)
    assert "data-rebook-for" not in page.text and "行程有变" in page.text
    refused = secure_client.post(f"/appointments/{own.id}/rebook", headers=HTML, data={
        "csrf_token": _csrf(page.text), "slot_id": later.id, "key": "k-own"})
    assert 'data-error-code="SCHED-030"' in refused.text and "只有因停诊取消的预约可以改约" in refused.text
    assert service.get_slot(session, SYS, later.id).booked == 0
    secure_client.get(f"/appointments/{own.id}?lang=en", headers=HTML)  # the language is remembered
    en = secure_client.post(f"/appointments/{own.id}/rebook", headers=HTML, data={
        "csrf_token": _csrf(page.text), "slot_id": later.id, "key": "k-own-en"})
    assert 'data-error-code="SCHED-030"' in en.text and "Only an appointment cancelled by the hospital" in en.text


# -- quota policies (预留号源规则) ------------------------------------------------------------------


def _policy_form(html: str, **values) -> dict:
    base = {"csrf_token": _csrf(html), "department_id": "", "reserve_ratio": "25", "reserve_lead_days": "10",
            "release_back_hours": "24", "open_days_ahead": "7", "release_time": "07:30"}
    return {**base, **values}


def test_the_facility_admin_sets_the_hospitals_and_a_departments_quota_policy(secure_client, session, clinic,
                                                                              world):  # noqa: F811
    login(secure_client, world, Role.FACILITY_ADMIN)
    page = secure_client.get("/scheduling/schedules", headers=HTML)
    assert "预留号源规则" in page.text and 'data-policy-scope="default"' in page.text
    assert "全院（平台默认）" in page.text and "转诊提前开放天数" in page.text and "回流" in page.text
    whole = secure_client.post("/scheduling/quota-policies", headers=HTML, data=_policy_form(page.text))
    governed = len(schedules.list_schedules(session, SYS, org_id=clinic.hospital.id, limit=500))
    assert f"全院的预留号源规则已更新，{governed} 个排班随之调整" in whole.text
    assert 'data-policy-scope="org"' in whole.text and "25%" in whole.text and "07:30" in whole.text
    assert 'data-policy-scope="default"' not in whole.text
    session.expire_all()
    sched = schedules.get_schedule(session, SYS, clinic.schedule.id)
    assert (sched.reserve_ratio, sched.reserve_lead_days, sched.release_back_hours) == (0.25, 10, 24)
    dept = secure_client.post("/scheduling/quota-policies", headers=HTML, data=_policy_form(
        page.text, department_id=clinic.dept.id, reserve_ratio="40", release_time="08:00"))
    assert "预留号源规则已更新，1 个排班随之调整" in dept.text and f'data-policy-scope="{clinic.dept.id}"' in dept.text
    session.expire_all()
    assert schedules.get_schedule(session, SYS, clinic.schedule.id).reserve_ratio == 0.4
    # a new schedule whose quota fields are left empty follows its department's policy
    rows = re.findall(r'name="row_key" value="([^"]+)"', page.text)
    made = secure_client.post("/scheduling/schedules", headers=HTML, follow_redirects=False, data={
        "csrf_token": _csrf(page.text), "name": "心内科普通门诊", "department_id": clinic.dept.id,
        "fee_class": "general", "row_key": rows, "held": rows[:1], "row_start": ["08:00"] * 14,
        "row_end": ["11:00"] * 14, "row_slot": ["30"] * 14, "row_per": ["2"] * 14})
    new_id = int(made.headers["location"].rsplit("/", 1)[1])
    assert schedules.get_schedule(session, SYS, new_id).reserve_ratio == 0.4
    en = secure_client.get("/scheduling/schedules?lang=en", headers=HTML)
    assert "Quota policy" in en.text and "Whole hospital" in en.text and "lead days before the public" in en.text
    again = secure_client.post("/scheduling/quota-policies", headers=HTML, data=_policy_form(page.text))
    assert "Quota policy updated (Whole hospital): " in again.text


def test_a_quota_policy_out_of_range_is_refused_on_the_form(secure_client, session, clinic, world):  # noqa: F811
    login(secure_client, world, Role.FACILITY_ADMIN)
    page = secure_client.get("/scheduling/schedules", headers=HTML)
    bad = secure_client.post("/scheduling/quota-policies", headers=HTML, data=_policy_form(page.text,
                                                                                          reserve_ratio="150"))
    assert bad.status_code == 422 and 'data-error-code="SCHED-015"' in bad.text
    assert 'data-error-field="reserve_ratio"' in bad.text and 'value="150"' in bad.text
    secure_client.get("/scheduling/schedules?lang=en", headers=HTML)
    late = secure_client.post("/scheduling/quota-policies", headers=HTML, data=_policy_form(
        page.text, release_back_hours="9999"))
    assert late.status_code == 422 and "The schedule is not valid." in late.text
    assert schedules.list_quota_policies(session, SYS, org_id=clinic.hospital.id) == []
    login(secure_client, world, Role.RESIDENT)
    refused = secure_client.post("/scheduling/quota-policies", headers=HTML, data=_policy_form(page.text))
    assert refused.status_code == 403
