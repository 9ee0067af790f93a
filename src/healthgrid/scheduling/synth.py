"""Scheduling's share of the synthetic region: clinic schedules of hospital doctors (and of
some primary care centres), exam schedules of the imaging and endoscopy equipment, their
sessions and quota-split slots for the past year and the coming booking horizon, and a
year of historical appointments of the region's residents.

Sessions and slots are written in bulk but exactly as ``schedules.open_sessions`` makes
them (the same ``domain.split_pools`` and ``domain.session_times``), so the worker finds
nothing left to open and the future places are booked by the real service.

Behaviour of the history (what the demo and the analytics show):
- fill rates are higher for expert clinics, on Mondays and in winter, and hot clinics go
  within minutes of the release hour; general clinics fill over the days before;
- 8–12 % of bookings are cancelled before the deadline, 5–10 % of the rest are no-shows
  (爽约), more often for general clinics, bookings made long before and web bookings,
  less for the on-site window and referrals; a few patients account for many of them and
  are, as the rule says, suspended from booking for a while;
- about 1 % of doctors' sessions were stopped (停诊) and their appointments cancelled;
- fixed-date public holidays (元旦, 劳动节, 国庆节) close every facility;
- ``sched_slot.booked`` counts the appointments holding a place: every one but the
  cancelled (the service releases a place only on cancellation, not on a no-show), and
  no patient has two live clinic appointments in one department on one day.
Deterministic for a seed and a day.
"""

from __future__ import annotations

import math
import random
from bisect import bisect
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, func, insert, select, text
from sqlalchemy.orm import Session

from ..config import SchedulingSettings
from ..db import utcnow
from ..patients import queries as patient_queries
from ..patients import service as patients
from ..registry import queries as registry_queries
from ..security import ALL_SETTINGS_KEY
from ..security.domain import Actor
from ..synth.names import person_name
from . import domain as d
from . import exams
from .models import Appointment, ClinicSession, Closure, Schedule, SessionTemplate, Slot

Progress = Callable[[str, int, int], None]
BATCH = 20_000
SYNTH_USER = "system:synth"


@dataclass(frozen=True)
class Plan:
    history_days: int  # how far back the sessions and appointments go
    depts: dict[str, int]  # departments with booked clinics per hospital, by level
    experts: dict[str, int]  # expert clinics per such department, by level
    primary_share: float  # share of primary care centres that take bookings
    exam_levels: tuple[str, ...]  # general hospitals of these levels book their equipment ...
    exam_hospitals: int  # ... at most this many of them
    visits: float  # booked visits per resident and year: fills are scaled down to this demand


# Demand: 6.8 visits per person a year, the national number in 2023 (《2023年我国卫生健康事业
# 发展统计公报》: 95.5亿 visits); ``small`` (the demo) offers about as many places as its
# ~18,000 residents need at the fill rates below. ``tiny``, built once per test session,
# keeps a quarter of history with a denser demand, so that its few hundred residents still
# give the tests thousands of appointments but rarely three no-shows in one quarter.
PLANS = {
    "tiny": Plan(91, {"L5": 1, "L4": 1, "L3": 1, "L2": 1}, {"L5": 1, "L4": 1, "L3": 1}, 0.15, ("L3",), 1, 22.0),
    "small": Plan(365, {"L5": 3, "L4": 3, "L3": 3, "L2": 1}, {"L5": 2, "L4": 2, "L3": 2, "L2": 1}, 0.2,
                  ("L3",), 2, 6.8),
    "city": Plan(365, {"L5": 3, "L4": 3, "L3": 3, "L2": 1}, {"L5": 2, "L4": 2, "L3": 1, "L2": 1}, 0.1,
                 ("L3",), 5, 6.8),
    "province": Plan(365, {"L5": 3, "L4": 3, "L3": 2, "L2": 1}, {"L5": 1, "L4": 1, "L3": 1}, 0.03,
                     ("L5", "L4", "L3"), 12, 6.8),
}
# Outpatient departments in order of their share of visits; primary centres have their own.
CLINIC_DEPTS = ("03", "04", "07", "05", "03.03", "03.02", "03.01", "50", "10", "12", "11", "04.03", "03.08",
                "03.07", "05.01", "05.02", "13", "04.01", "52", "19", "16", "21", "03.05", "04.04", "04.02",
                "04.05", "06", "09", "15", "02", "17")
PRIMARY_DEPTS = ("02", "03", "07", "50")
SENIOR = ("chief_physician", "associate_chief_physician")
FEE_NAMES = {"general": "普通门诊", "expert": "专家门诊", "special": "特需门诊"}
# Exam rooms: slot minutes and Chinese name per equipment kind the exam catalogue books.
EXAM_ROOMS = {"CT": (15, "CT"), "MRI": (30, "磁共振"), "US": (20, "超声"), "DR": (15, "DR放射"),
              "ENDO": (30, "内镜"), "ECG": (15, "心电图"), "MG": (20, "乳腺钼靶"), "ECT": (40, "ECT核医学")}
# Fixed-date public holidays (国务院《全国年节及纪念日放假办法》); the lunar ones move every year.
HOLIDAYS = {(1, 1): "元旦", (5, 1): "劳动节", (5, 2): "劳动节", (5, 3): "劳动节",
            **{(10, i): "国庆节" for i in range(1, 8)}}

# Behaviour (tuned so the region lands in the bands the module docstring gives).
FILL = {"general": 0.55, "expert": 0.9, "special": 0.72, "exam": 0.72, "primary": 0.4}
WEEKDAY_FILL = (1.18, 1.05, 1.0, 0.97, 0.9, 0.8, 0.75)
NOSHOW_BASE = {"general": 0.08, "expert": 0.05, "special": 0.03, "exam": 0.05, "primary": 0.09}
NOSHOW_CHANNEL = {"web": 1.25, "phone": 1.0, "kiosk": 0.7, "window": 0.35, "referral": 0.6}
CANCEL_BASE = 0.105
STOP_RATE = 0.01
STOP_REASONS = ("医生外出会诊", "医生参加学术会议", "医生临时手术", "医生因病请假")
CANCEL_REASONS = ("行程有变", "病情好转", "已在其他医院就诊", "时间冲突", "预约错了科室")


def generate(conn: Connection, *, size: str, seed: int, info: dict[str, Any], progress: Progress | None = None,
             now: datetime | None = None, demo_patient_id: int | None = None) -> dict[str, Any]:
    """Schedules, sessions, slots and a history of appointments for the generated region."""
    settings = info.get(ALL_SETTINGS_KEY)
    cfg = settings.scheduling if settings is not None else SchedulingSettings()
    tz = ZoneInfo(settings.web.timezone if settings is not None else "Asia/Shanghai")
    now = now or utcnow()
    rng = random.Random(seed * 104729 + 5)
    facilities = registry_queries.outpatient_facilities(conn)
    if not facilities:
        return {"sched_schedules": 0}
    gen = _Generator(conn, rng, cfg, tz, now, PLANS[size], progress)
    gen.plan_schedules(facilities, registry_queries.facility_resources(conn, [f[0] for f in facilities]))
    gen.residents = _Residents(rng, patient_queries.standing_residences(conn), registry_queries.village_counties(conn),
                               exclude=demo_patient_id)
    gen.want_demo(demo_patient_id)
    gen.run()
    return gen.report()


# -- schedules --------------------------------------------------------------------------------------

@dataclass
class _Sched:
    row: dict[str, Any]
    specs: list[d.TemplateSpec]
    key: str  # behaviour class: general | expert | special | exam | primary
    county_id: int | None
    township_id: int | None
    popularity: float
    exam_codes: tuple[str, ...] = ()
    rule: d.ReleaseRule | None = None
    by_weekday: dict[int, list[d.TemplateSpec]] = field(default_factory=dict)
    layouts: dict[tuple[int, str], list[tuple[tuple[int, str], int]]] = field(default_factory=dict)


def slot_layout(spec: d.TemplateSpec, reserve_ratio: float, shares: dict[str, float]
                ) -> list[tuple[tuple[int, str], int]]:
    """((minute, pool), places) of a session's slots in insertion order: what
    ``schedules._make_session`` writes."""
    starts = spec.starts()
    counts: dict[tuple[int, str], int] = {}
    for i, pool in enumerate(d.split_pools(len(starts) * spec.per_slot, reserve_ratio, shares)):
        key = (starts[i // spec.per_slot], pool)
        counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items())


def _general_specs(rng: random.Random, primary: bool) -> list[d.TemplateSpec]:
    """A general clinic: every weekday morning (Saturdays too at primary centres), some
    afternoons."""
    slot, per = rng.choice(((15, 1), (20, 1), (20, 2), (30, 2)))
    end = rng.choice((11 * 60, 11 * 60 + 30, 12 * 60))
    specs = [d.TemplateSpec(w, "am", 8 * 60, end, slot, per) for w in range(6 if primary else 5)]
    if not primary and rng.random() < 0.3:
        specs += [d.TemplateSpec(w, "pm", 14 * 60, 17 * 60, slot, per) for w in sorted(rng.sample(range(5), 2))]
    return specs


def _expert_specs(rng: random.Random, weekdays: range = range(5)) -> list[d.TemplateSpec]:
    """An expert's clinic: one or two half days a week."""
    slot, per = rng.choice(((15, 1), (20, 1), (30, 1), (30, 2)))
    specs = []
    for w in sorted(rng.sample(weekdays, min(len(weekdays), rng.choice((1, 1, 2))))):
        am = rng.random() < 0.7
        specs.append(d.TemplateSpec(w, "am" if am else "pm", 8 * 60 if am else 14 * 60,
                                    11 * 60 + 30 if am else 17 * 60, slot, per))
    return specs


def _exam_specs(kind: str, quantity: int, level: str) -> list[d.TemplateSpec]:
    minutes = EXAM_ROOMS[kind][0]
    per = min(quantity, 2) if kind == "US" else 1
    specs = [d.TemplateSpec(w, "am", 8 * 60, 12 * 60, minutes, per) for w in range(5)]
    if kind in ("CT", "US") and level != "L2":
        specs += [d.TemplateSpec(w, "pm", 14 * 60, 17 * 60, minutes, per) for w in range(5)]
    return specs


def _fee_class(rng: random.Random, title: str, level: str) -> str:
    """Chief and associate chief physicians hold expert clinics (专家号); a few chiefs of
    tertiary hospitals special-needs clinics (特需号)."""
    if title not in SENIOR:
        return "general"
    return "special" if title == SENIOR[0] and level != "L2" and rng.random() < 0.15 else "expert"


def _pick_departments(rng: random.Random, depts: dict[str, tuple[int, str]], doctors: dict[int, list],
                      primary: bool, n: int) -> list[tuple[int, str]]:
    """The ``n`` busiest outpatient departments, those with doctors first."""
    order = [c for c in (PRIMARY_DEPTS if primary else CLINIC_DEPTS) if c in depts]
    staffed = [depts[c] for c in order if doctors.get(depts[c][0])]
    chosen = rng.sample(staffed[:n * 2], min(n, len(staffed)))
    rest = [depts[c] for c in order if depts[c] not in chosen]
    return sorted(chosen + rest[:max(0, n - len(chosen))])


class _Generator:
    """Rows with ids assigned here, written in foreign-key order batch by batch."""

    def __init__(self, conn: Connection, rng: random.Random, cfg: SchedulingSettings, tz: ZoneInfo, now: datetime,
                 plan: Plan, progress: Progress | None):
        self.conn, self.rng, self.cfg, self.tz, self.now, self.plan, self.progress = \
            conn, rng, cfg, tz, now, plan, progress
        self.today = now.astimezone(tz).date()
        self.ids = {m: (conn.scalar(select(func.max(m.id))) or 0) for m in
                    (Schedule, SessionTemplate, ClinicSession, Slot, Appointment, Closure)}
        self.scheds: list[_Sched] = []
        self.rows: dict[type, list[dict[str, Any]]] = defaultdict(list)
        self.stats: Counter[str] = Counter()
        self.residents: _Residents | None = None
        self.demo_id: int | None = None
        self.demo_wanted: dict[int, date] = {}
        self.shares = d.check_shares(d.DEFAULT_CHANNEL_SHARES)
        self.demand = 1.0

    def next_id(self, model: type) -> int:
        self.ids[model] += 1
        return self.ids[model]

    # -- schedules ----------------------------------------------------------------------------------
    def plan_schedules(self, facilities: list[tuple], resources: dict[str, list[tuple]]) -> None:
        depts: dict[int, dict[str, tuple[int, str]]] = defaultdict(dict)
        for dept_id, org, code, name in resources["departments"]:
            depts[org].setdefault(code, (dept_id, name))
        doctors: dict[int, list] = defaultdict(list)
        guests = []  # doctors practising at a second site (多点执业): a weekly Saturday clinic there
        for pid, org, dept, title, name, is_primary in resources["doctors"]:
            if dept is not None:
                (doctors[dept] if is_primary else guests).append((pid, org, dept, title, name))
        equipment: dict[int, list] = defaultdict(list)
        for eq_id, org, kind, dept, qty in resources["equipment"]:
            equipment[org].append((eq_id, kind, dept, qty))
        exam_rooms = 0
        for org, level, org_type, county, township in facilities:
            primary = level in ("L0", "L1")
            if primary and self.rng.random() >= self.plan.primary_share:
                continue
            where = dict(org=org, level=level, county=county, township=township, primary=primary)
            for dept_id, dept_name in _pick_departments(self.rng, depts[org], doctors, primary,
                                                        1 if primary else self.plan.depts.get(level, 0)):
                self._department_clinics(where, dept_id, dept_name, doctors.get(dept_id, []))
            if org_type == "general_hospital" and level in self.plan.exam_levels \
                    and exam_rooms < self.plan.exam_hospitals:
                exam_rooms += 1
                for eq_id, kind, dept, qty in equipment[org]:
                    if kind in EXAM_ROOMS and self._exam_codes(kind):
                        self._exam_room(where, eq_id, kind, dept, qty)
        self._guest_clinics(guests, {f[0]: f for f in facilities}, depts)

    def _department_clinics(self, where: dict, dept_id: int, dept_name: str, staff: list[tuple]) -> None:
        seniors = [s for s in staff if s[3] in SENIOR]
        juniors = [s for s in staff if s[3] not in SENIOR]
        general = self.rng.choice(juniors) if juniors else None  # else the department's own clinic
        self._add(where, dept_id, "general" if not where["primary"] else "primary",
                  f"{dept_name} {general[4] + ' ' if general else ''}{FEE_NAMES['general']}",
                  general[0] if general else None, _general_specs(self.rng, where["primary"]))
        if where["primary"]:
            return
        for pid, _org, _dept, title, name in self.rng.sample(
                seniors, min(len(seniors), self.plan.experts.get(where["level"], 0))):
            fee = _fee_class(self.rng, title, where["level"])
            self._add(where, dept_id, fee, f"{dept_name} {name} {FEE_NAMES[fee]}", pid, _expert_specs(self.rng))

    def _guest_clinics(self, guests: list[tuple], facilities: dict[int, tuple], depts: dict) -> None:
        for pid, org, dept_id, title, name in guests:
            fac = facilities.get(org)
            if fac is None or title not in SENIOR or self.rng.random() >= 0.5:
                continue
            dept_name = next((n for i, n in depts[org].values() if i == dept_id), "")
            where = dict(org=org, level=fac[1], county=fac[3], township=fac[4], primary=False)
            self._add(where, dept_id, "expert", f"{dept_name} {name} {FEE_NAMES['expert']}（多点执业）", pid,
                      _expert_specs(self.rng, range(5, 6)))

    def _exam_codes(self, kind: str) -> tuple[str, ...]:
        return tuple(c for c, item in exams.catalogue().items.items() if item.equipment == kind)

    def _exam_room(self, where: dict, eq_id: int, kind: str, dept_id: int | None, qty: int) -> None:
        s = self._add(where, dept_id, "exam", f"{EXAM_ROOMS[kind][1]}检查预约", None,
                      _exam_specs(kind, qty, where["level"]), equipment=(eq_id, kind))
        s.exam_codes = self._exam_codes(kind)

    def _add(self, where: dict, dept_id: int | None, key: str, name: str, practitioner_id: int | None,
             specs: list[d.TemplateSpec], equipment: tuple[int, str] | None = None) -> _Sched:
        cfg = self.cfg
        row = dict(id=self.next_id(Schedule), org_id=where["org"], department_id=dept_id,
                   practitioner_id=practitioner_id, equipment_id=equipment[0] if equipment else None,
                   kind="exam" if equipment else "clinic", exam_kind=equipment[1] if equipment else None,
                   name=name[:200], fee_class=key if key in ("expert", "special") else "general",
                   reserve_ratio=cfg.reserve_ratio, reserve_lead_days=cfg.reserve_lead_days,
                   release_back_hours=cfg.release_back_hours, open_days_ahead=cfg.open_days_ahead,
                   release_minute=cfg.release_minute, channel_shares=dict(self.shares), active=True, version=1,
                   created_at=self.now - timedelta(days=self.plan.history_days + self.rng.randint(7, 400)))
        s = _Sched(row, specs, key, where["county"], where["township"], self.rng.uniform(0.8, 1.12),
                   rule=d.ReleaseRule(cfg.open_days_ahead, cfg.release_minute, cfg.reserve_lead_days,
                                      cfg.release_back_hours))
        for spec in specs:
            s.by_weekday.setdefault(spec.weekday, []).append(spec)
            s.layouts[(spec.weekday, spec.part)] = slot_layout(spec, cfg.reserve_ratio, self.shares)
            self.rows[SessionTemplate].append(dict(
                id=self.next_id(SessionTemplate), schedule_id=row["id"], weekday=spec.weekday, part=spec.part,
                start_minute=spec.start_minute, end_minute=spec.end_minute, slot_minutes=spec.slot_minutes,
                per_slot=spec.per_slot))
        self.scheds.append(s)
        self.rows[Schedule].append(row)
        return s

    def want_demo(self, patient_id: int | None) -> None:
        """The demo resident's own history: a few clinic visits over the year, all attended."""
        self.demo_id = patient_id
        clinics = [s for s in self.scheds if s.row["kind"] == "clinic"]
        if patient_id is None or not clinics:
            return
        for s in self.rng.sample(clinics, min(4, len(clinics))):
            self.demo_wanted[s.row["id"]] = self.today - timedelta(days=self.rng.randint(14, self.plan.history_days))

    # -- sessions -----------------------------------------------------------------------------------
    def run(self) -> None:
        self._write(Schedule, self._take(Schedule))
        self._write(SessionTemplate, self._take(SessionTemplate))
        first = self.today - timedelta(days=self.plan.history_days)
        last = self.today + timedelta(days=self.cfg.open_days_ahead + self.cfg.reserve_lead_days)
        holidays = self._holidays(first, last)
        self.demand = self._demand(first, holidays)
        total = (last - first).days + 1
        for n in range(total):
            day = first + timedelta(days=n)
            if day in holidays:
                continue
            for s in self.scheds:
                for spec in s.by_weekday.get(day.weekday(), ()):
                    self._session(s, day, spec)
            if len(self.rows[Slot]) >= BATCH:
                self._flush()
            if self.progress:
                self.progress("schedules", n + 1, total)
        self._flush()
        self._finish()

    def _demand(self, first: date, holidays: set[date]) -> float:
        """Scale of the fill rates so that the history books about ``plan.visits`` visits a
        resident and year: 1 when the region's residents need all the places offered."""
        offered = 0.0
        for n in range((self.today - first).days):
            day = first + timedelta(days=n)
            if day not in holidays:
                offered += sum(FILL[s.key] * s.popularity * WEEKDAY_FILL[day.weekday()] * spec.capacity
                               for s in self.scheds for spec in s.by_weekday.get(day.weekday(), ()))
        wanted = self.residents.count * self.plan.visits * self.plan.history_days / 365
        return min(1.0, wanted / offered) if offered else 1.0

    def _holidays(self, first: date, last: date) -> set[date]:
        days = {}
        for n in range((last - first).days + 1):
            day = first + timedelta(days=n)
            if (day.month, day.day) in HOLIDAYS:
                days[day] = HOLIDAYS[(day.month, day.day)]
        for org in sorted({s.row["org_id"] for s in self.scheds}):
            for day, name in days.items():
                self.rows[Closure].append(dict(
                    id=self.next_id(Closure), org_id=org, schedule_id=None, day=day, part=None, kind="holiday",
                    reason=f"{name}放假", created_by=SYNTH_USER,
                    created_at=min(self.now, d.local_at(day - timedelta(days=40), 9 * 60, self.tz))))
        return set(days)

    def _session(self, s: _Sched, day: date, spec: d.TemplateSpec) -> None:
        times = d.session_times(day, spec, s.rule, self.tz)
        past = day < self.today
        stop = None
        if past and s.row["practitioner_id"] is not None and self.rng.random() < STOP_RATE:
            stop = (self.rng.choice(STOP_REASONS), times.starts_at - timedelta(hours=self.rng.uniform(3, 72)))
        sid = self.next_id(ClinicSession)
        self.rows[ClinicSession].append(dict(
            id=sid, schedule_id=s.row["id"], org_id=s.row["org_id"], department_id=s.row["department_id"],
            practitioner_id=s.row["practitioner_id"], day=day, part=spec.part, starts_at=times.starts_at,
            ends_at=times.ends_at, public_release_at=times.public_release_at,
            referral_open_at=times.referral_open_at, release_back_at=times.release_back_at,
            released_back=times.release_back_at <= self.now, status="stopped" if stop else "open",
            stop_reason=stop[0] if stop else None, capacity=spec.capacity))
        self.stats["sessions"] += 1
        if stop:
            self.rows[Closure].append(dict(
                id=self.next_id(Closure), org_id=s.row["org_id"], schedule_id=s.row["id"], day=day, part=spec.part,
                kind="stop", reason=stop[0], created_by=SYNTH_USER, created_at=stop[1]))
        base = d.local_at(day, 0, self.tz)
        fill = self._fill(s, day) if past else 0.0
        ctx = _Visit(s, sid, day, times, spec, stop, fill=fill * self.demand, hot=fill >= 0.9,
                     reminder_at=base - timedelta(days=1, minutes=-self.cfg.reminder_minute))
        for (minute, pool), places in s.layouts[(spec.weekday, spec.part)]:
            starts = base + timedelta(minutes=minute)
            slot_id = self.next_id(Slot)
            booked = self._fill_slot(ctx, slot_id, starts, pool, places) if past else 0
            self.rows[Slot].append(dict(id=slot_id, session_id=sid, starts_at=starts,
                                        ends_at=starts + timedelta(minutes=spec.slot_minutes), pool=pool,
                                        capacity=places, booked=booked))
            self.stats["slots"] += 1

    def _fill(self, s: _Sched, day: date) -> float:
        season = 1 + 0.08 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 15) / 365)
        f = FILL[s.key] * WEEKDAY_FILL[day.weekday()] * s.popularity * season * self.rng.uniform(0.88, 1.08)
        return min(0.99, f)

    # -- appointments -------------------------------------------------------------------------------
    def _fill_slot(self, ctx: _Visit, slot_id: int, starts: datetime, pool: str, places: int) -> int:
        held = 0
        for _ in range(places):
            if self.rng.random() >= ctx.fill and not self._demo_due(ctx, pool):
                continue
            visit = self._booking(ctx, pool, starts)
            if visit is None:
                continue
            row = self._appointment(ctx, slot_id, starts, pool, *visit)
            held += row["status"] != "cancelled"
            if self.rng.random() < CANCEL_BASE * _lead_factor(starts - row["created_at"], 1.3, 1.0, 0.4):
                self._cancelled_before(ctx, slot_id, starts, pool)
        return held

    def _booking(self, ctx: _Visit, pool: str, starts: datetime) -> tuple[int, str, str | None, datetime] | None:
        """Who booked this place, by which channel, with which referral, when."""
        channel, referral, at = self._moment(ctx, pool, starts)
        if ctx.stop is not None and at >= ctx.stop[1]:
            return None  # the clinic was already cancelled when this patient would have booked
        s = ctx.sched
        if self._demo_due(ctx, pool):
            del self.demo_wanted[s.row["id"]]
            return self.demo_id, channel, referral, at
        pid = self.residents.pick(s.county_id, s.township_id, ctx.day, s.row["department_id"],
                                  local=0.9 if s.key == "primary" else 0.75,
                                  window=self.cfg.noshow_window_days, limit=self.cfg.noshow_limit)
        return (pid, channel, referral, at) if pid is not None else None

    def _demo_due(self, ctx: _Visit, pool: str) -> bool:
        """The demo resident's visit to this clinic is due (booked on the web, for themself)."""
        return pool == "web" and self.demo_wanted.get(ctx.sched.row["id"], date.max) <= ctx.day \
            and self.residents.free(self.demo_id, ctx.sched.row["department_id"], ctx.day)

    def _moment(self, ctx: _Visit, pool: str, starts: datetime) -> tuple[str, str | None, datetime]:
        rng, t = self.rng, ctx.times
        if pool == d.Pool.RESERVED.value:
            if rng.random() < 0.6:  # a referral from primary care (预留号源)
                self.stats["referral_seq"] += 1
                ref = f"ZZ{ctx.day:%Y%m%d}{self.stats['referral_seq']:06d}"
                return rng.choice(("phone", "web")), ref, _between(rng, t.referral_open_at, t.release_back_at)
            channel = rng.choices(d.CHANNELS, [self.shares[c] for c in d.CHANNELS])[0]  # released back
            return channel, None, _between(rng, t.release_back_at, starts - timedelta(minutes=10))
        if pool == "window":  # registered on the day at the window
            return pool, None, _between(rng, max(t.public_release_at, d.local_at(ctx.day, 7 * 60, self.tz)),
                                        starts - timedelta(minutes=5))
        if pool == "kiosk":
            return pool, None, _between(rng, max(t.public_release_at, starts - timedelta(hours=26)),
                                        starts - timedelta(minutes=10))
        if ctx.hot:  # a hot clinic: gone minutes after the release hour
            at = t.public_release_at + timedelta(seconds=rng.expovariate(1 / 900))
            return pool, None, min(at, starts - timedelta(minutes=30))
        span = (starts - timedelta(minutes=30) - t.public_release_at).total_seconds()
        return pool, None, t.public_release_at + timedelta(seconds=max(0.0, span) * rng.betavariate(1.1, 2.0))

    def _appointment(self, ctx: _Visit, slot_id: int, starts: datetime, pool: str, pid: int, channel: str,
                     referral: str | None, at: datetime) -> dict[str, Any]:
        s, rng = ctx.sched, self.rng
        ends = starts + timedelta(minutes=ctx.spec.slot_minutes)
        row = self._row(ctx, slot_id, starts, ends, pool, pid, channel, referral, at)
        if ctx.stop is not None:
            row.update(status="cancelled", cancel_reason=f"{d.STOP_PREFIX}{ctx.stop[0]}", cancelled_at=ctx.stop[1],
                       updated_at=ctx.stop[1])
            self.stats["cancelled"] += 1
            return row
        p = NOSHOW_BASE[s.key] * NOSHOW_CHANNEL["referral" if referral else channel] \
            * _lead_factor(starts - at, 1.5, 1.15, 0.5) * self.residents.reliability(pid)
        if pid != self.demo_id and rng.random() < p:
            row.update(status="noshow", updated_at=ctx.times.ends_at + timedelta(minutes=self.cfg.noshow_grace_minutes))
            self.residents.missed(pid, ctx.day)
            self.stats["noshow"] += 1
        else:
            row.update(status="fulfilled", checked_in_at=starts - timedelta(minutes=rng.uniform(3, 40)),
                       updated_at=ends + timedelta(minutes=rng.uniform(0, 30)))
            self.stats["fulfilled"] += 1
        if s.row["kind"] == "clinic":
            self.residents.hold(pid, s.row["department_id"], ctx.day)
        return row

    def _cancelled_before(self, ctx: _Visit, slot_id: int, starts: datetime, pool: str) -> None:
        """A booking of this place cancelled before the deadline (退号), freeing it."""
        channel, referral, at = self._moment(ctx, pool, starts)
        deadline = min(starts - timedelta(hours=self.cfg.cancel_before_hours), ctx.stop[1] if ctx.stop else starts)
        pid = self.residents.pick(ctx.sched.county_id, ctx.sched.township_id, ctx.day, None, local=0.75,
                                  window=self.cfg.noshow_window_days, limit=self.cfg.noshow_limit)
        if at >= deadline or pid is None:
            return
        cancelled = _between(self.rng, at + timedelta(minutes=1), deadline)
        row = self._row(ctx, slot_id, starts, starts + timedelta(minutes=ctx.spec.slot_minutes), pool, pid,
                        channel, referral, at)
        row.update(status="cancelled", cancel_reason=self.rng.choice(CANCEL_REASONS), cancelled_at=cancelled,
                   updated_at=cancelled)
        self.stats["cancelled"] += 1

    def _row(self, ctx: _Visit, slot_id: int, starts: datetime, ends: datetime, pool: str, pid: int, channel: str,
             referral: str | None, at: datetime) -> dict[str, Any]:
        s = ctx.sched.row
        reminder = ctx.reminder_at
        row = dict(id=self.next_id(Appointment), slot_id=slot_id, session_id=ctx.session_id, schedule_id=s["id"],
                   org_id=s["org_id"], department_id=s["department_id"], practitioner_id=s["practitioner_id"],
                   kind=s["kind"], day=ctx.day, starts_at=starts, ends_at=ends, patient_id=pid, booked_by=SYNTH_USER,
                   channel=channel, pool=pool, status="booked", fee_class=s["fee_class"], referral_ref=referral,
                   exam_code=self.rng.choice(ctx.sched.exam_codes) if ctx.sched.exam_codes else None,
                   exam_booking_id=None, idem_owner=None, idempotency_key=None, request_hash=None,
                   cancel_reason=None, offer_expires_at=None, checked_in_at=None, cancelled_at=None,
                   reminded_at=reminder if at < reminder else None, created_at=at, updated_at=at, version=1)
        self.rows[Appointment].append(row)
        return row

    # -- writing ------------------------------------------------------------------------------------
    def _take(self, model: type) -> list[dict[str, Any]]:
        rows, self.rows[model] = self.rows[model], []
        return rows

    def _write(self, model: type, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), BATCH):
            self.conn.execute(insert(model.__table__), rows[start:start + BATCH])

    def _flush(self) -> None:
        for model in (Closure, ClinicSession, Slot, Appointment):
            self._write(model, self._take(model))

    def _finish(self) -> None:
        if self.conn.dialect.name != "postgresql":
            return
        # ids were given here: move the sequences past them, and fresh statistics after a
        # bulk load, or the planner guesses (autovacuum comes later)
        for model in (Schedule, SessionTemplate, ClinicSession, Slot, Appointment, Closure):
            table = model.__tablename__
            self.conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                                   f" GREATEST((SELECT MAX(id) FROM {table}), 1))"))
        for model in (Schedule, SessionTemplate, ClinicSession, Slot, Appointment, Closure):
            self.conn.execute(text(f"ANALYZE {model.__tablename__}"))

    def report(self) -> dict[str, Any]:
        kept = self.stats["fulfilled"] + self.stats["noshow"]
        return {"sched_schedules": len(self.scheds), "sched_sessions": self.stats["sessions"],
                "sched_slots": self.stats["slots"], "sched_appointments": kept + self.stats["cancelled"],
                "appointments_cancelled": self.stats["cancelled"], "appointments_noshow": self.stats["noshow"],
                "noshow_rate_pct": round(100 * self.stats["noshow"] / kept, 1) if kept else 0.0}


@dataclass
class _Visit:
    """The session being filled."""

    sched: _Sched
    session_id: int
    day: date
    times: d.SessionTimes
    spec: d.TemplateSpec
    stop: tuple[str, datetime] | None
    fill: float  # the chance that a place is taken
    hot: bool  # a clinic that is fully booked minutes after the release
    reminder_at: datetime  # the reminder goes out the evening before


def _between(rng: random.Random, lo: datetime, hi: datetime) -> datetime:
    if hi <= lo:
        return lo
    return lo + timedelta(seconds=(hi - lo).total_seconds() * rng.random())


def _lead_factor(lead: timedelta, far: float, days: float, same_day: float) -> float:
    """Bookings made more than a week ahead are forgotten (and cancelled) more often; those
    made on the day hardly ever."""
    hours = lead.total_seconds() / 3600
    return far if hours > 7 * 24 else days if hours > 48 else 1.0 if hours > 12 else same_day


class _Residents:
    """Whom the history books: residents of the facility's township or county mostly, some
    far more often than others (chronic patients), a few unreliable; nobody twice in one
    department on one day, nobody while suspended for no-shows."""

    def __init__(self, rng: random.Random, rows: list[tuple], village_county: dict[int, int], *,
                 exclude: int | None):
        self.rng = rng
        people = [r for r in rows if r[0] != exclude]
        weights = [min(8.0, rng.paretovariate(1.8)) for _ in people]
        self.groups: dict[tuple[str, int | None], tuple[list[int], list[float]]] = {}
        by: dict[tuple[str, int | None], list[int]] = defaultdict(list)
        for i, (_pid, village, township) in enumerate(people):
            by[("all", None)].append(i)
            by[("county", village_county.get(village))].append(i)
            by[("township", township)].append(i)
        for key, idx in by.items():
            self.groups[key] = ([people[i][0] for i in idx], list(accumulate(weights[i] for i in idx)))
        self.unreliable = {p[0] for p in people if rng.random() < 0.05}
        self.count = len(people)
        self.noshows: dict[int, list[date]] = defaultdict(list)
        self.held: set[tuple[int, int | None]] = set()
        self.held_day: date | None = None

    def pick(self, county: int | None, township: int | None, day: date, dept: int | None, *, local: float,
             window: int, limit: int) -> int | None:
        for _ in range(8):
            roll = self.rng.random()
            key = ("township", township) if township and roll < local else \
                ("county", county) if county and roll < local else ("all", None)
            ids, cum = self.groups.get(key) or self.groups.get(("all", None), ([], []))
            if not ids:
                return None
            pid = ids[min(len(ids) - 1, bisect(cum, self.rng.random() * cum[-1]))]
            if (dept is None or self.free(pid, dept, day)) and not self._suspended(pid, day, window, limit):
                return pid
        return None

    def free(self, pid: int | None, dept: int | None, day: date) -> bool:
        if pid is None:
            return False
        if self.held_day != day:
            self.held, self.held_day = set(), day
        return (pid, dept) not in self.held

    def hold(self, pid: int, dept: int | None, day: date) -> None:
        self.free(pid, dept, day)
        self.held.add((pid, dept))

    def _suspended(self, pid: int, day: date, window: int, limit: int) -> bool:
        since = day - timedelta(days=window)
        return d.suspended(sum(1 for x in self.noshows.get(pid, ()) if x > since), limit)

    def missed(self, pid: int, day: date) -> None:
        self.noshows[pid].append(day)

    def reliability(self, pid: int) -> float:
        return 3.0 if pid in self.unreliable else 0.9


# -- the demo resident --------------------------------------------------------------------------------

def register_demo_resident(session: Session, *, seed: int, username: str = "demo-resident") -> int | None:
    """The demo resident books for themself: their account's ID number must be a record of
    the patient index (real-name booking). Registered through the patient service, living
    in the first village of the region; returns the patient id (None without the user)."""
    from ..errors import NotFound
    from ..security import service as security_service

    try:
        user = security_service.user_by_name(session, username)
    except NotFound:
        return None
    number = security_service.own_id_number(session, user.id)
    if not number:
        return None
    found = patients.patient_of_id_number(session, number)
    if found is not None:
        return found
    rng = random.Random(f"demo-resident-{seed}")
    sex = "M" if int(number[16]) % 2 else "F"
    villages = registry_queries.village_places(session)
    village = villages[0][0] if villages else None
    clinic = registry_queries.primary_facility_by_division(session, [village]).get(village) if village else None
    reg = patients.register_patient(session, Actor.system_actor("synth"), org_id=clinic, data=patients.PatientIn(
        name=person_name(rng, sex), sex=sex, birth_date=date(int(number[6:10]), int(number[10:12]), int(number[12:14])),
        resident_id=number, division_id=village))
    return reg.patient.id


# -- the referral synth's links ------------------------------------------------------------------------

def link_referrals(conn: Connection, codes: dict[int, str]) -> int:
    """Point the ``referral_ref`` of historical referral bookings (appointment id -> the
    referral's code, 转诊单号) at the referrals the referral synth made of them. The
    appointment's ``updated_at`` stays as it was: the link is not a change of the booking."""
    table = Appointment.__table__
    stmt = (table.update().where(table.c.id == bindparam("appointment_id"))
            .values(referral_ref=bindparam("code"), updated_at=table.c.updated_at))
    rows = [{"appointment_id": k, "code": v} for k, v in sorted(codes.items())]
    for start in range(0, len(rows), BATCH):
        conn.execute(stmt, rows[start:start + BATCH])
    return len(rows)
