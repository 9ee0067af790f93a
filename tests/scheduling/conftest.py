"""Scheduling fixtures: a small region with a county hospital clinic schedule whose
sessions are open, at a fixed 'now' so release times are deterministic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from tests.factories import SYS, make_patient, make_small_region, resident_id

from healthgrid.registry import service as registry
from healthgrid.scheduling import schedules

# A Monday morning, 09:00 in Shanghai.
NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
TODAY = date(2026, 11, 23)


@dataclass
class Clinic:
    region: object
    schedule: object
    department_id: int
    patients: list


def local_today() -> date:
    """Today in Shanghai: tests through HTTP run on the real clock."""
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def make_clinic(session, *, per_slot: int = 1, reserve_ratio: float = 0.3, prefix: str = "91", patients: int = 3,
                channel_shares=None, open_days_ahead: int = 7, today: date = TODAY, **kw) -> Clinic:
    region = make_small_region(session, prefix=prefix)
    dept = registry.add_department(session, SYS, org_id=region.county_hospital.id, code="03")
    templates = [schedules.TemplateIn(weekday=w, part="am", start="08:00", end="10:00", slot_minutes=30,
                                      per_slot=per_slot) for w in range(7)]
    sched = schedules.create_schedule(session, SYS, schedules.ScheduleIn(
        org_id=region.county_hospital.id, name="心内科 张晓明 专家门诊", kind="clinic", fee_class="expert",
        department_id=dept.id, practitioner_id=region.doctor.id, reserve_ratio=reserve_ratio,
        open_days_ahead=open_days_ahead, channel_shares=channel_shares, templates=templates, **kw), today=today)
    people = [make_patient(session, region, name=name, sex="F" if i % 2 else "M",
                           id_number=resident_id(date(1960 + i, 1, 2), seq=101 + i * 2 + (i % 2)),
                           born=date(1960 + i, 1, 2)).patient
              for i, name in enumerate(["王建国", "李秀英", "赵志强", "陈美玲", "刘德华", "孙丽娟"][:patients])]
    return Clinic(region, sched, dept.id, people)


@pytest.fixture
def clinic(session) -> Clinic:
    return make_clinic(session)


def tomorrow_slots(session, clinic: Clinic, pool: str = "web", day: date | None = None):
    from healthgrid.scheduling import service

    day = day or TODAY + timedelta(days=1)
    return service.find_slots(session, SYS, service.SlotQuery(schedule_id=clinic.schedule.id, day_from=day,
                                                               day_to=day, pool=pool), now=NOW)
