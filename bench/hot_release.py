"""Hot release (放号): a thousand people press "book" when one department's places open.

On a fresh PostgreSQL database: one hospital department, ``--doctors`` doctors with a
morning of ``--times`` times x ``--per-slot`` places each (10 x 24 x 2 = 480 places),
``--users`` residents and the registration window's API token. The real server runs under
uvicorn (``--workers``) and the release is set to open at the next whole minute. Then
``--users`` virtual users (asyncio + aiohttp, one booking each) wait for that instant, pick a
doctor, list the free places (GET /api/scheduling/slots) and book one (POST
/api/scheduling/appointments with an Idempotency-Key); a place taken under them (409
SCHED-002) sends them back to the list, a timeout, a dropped connection or a 5xx makes them
retry the same request with the same key, and ``--replay`` of the acknowledged bookings are
sent again on purpose to check the replay.

Baseline, in the same run on the same database: ``pgbench`` with a single-row UPDATE script
(the cheapest one-transaction write, the ceiling of one-transaction bookings here). Then the
database is checked: zero overbooked slots, zero lost acknowledgements, zero duplicates.

    python bench/hot_release.py [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp  # noqa: E402
from _common import free_port, fresh_database, server, uvicorn_args  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from healthgrid.config import Settings, load_settings  # noqa: E402
from healthgrid.db import make_engine, make_sessionmaker, utcnow  # noqa: E402
from healthgrid.migrate import upgrade  # noqa: E402
from healthgrid.patients import service as patients  # noqa: E402
from healthgrid.registry import service as registry  # noqa: E402
from healthgrid.scheduling import schedules  # noqa: E402
from healthgrid.scheduling.models import LIVE, Appointment, Slot  # noqa: E402
from healthgrid.security import service as security  # noqa: E402
from healthgrid.security import session_info  # noqa: E402
from healthgrid.security.domain import Actor, Role, ScopeKind, id_check_digit  # noqa: E402

SETTINGS = {"env": "test", "secret_key": "bench-secret-key-0123456789abcdefghijklmnop",
            "security": {"pii_keys": {"b1": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
                         "pii_current_key": "b1", "blind_index_key": "bench-blind-index-key-0123456789abcdef"}}
TZ = ZoneInfo("Asia/Shanghai")
SYS = Actor.system_actor("bench")
SURNAMES = "王李张刘陈杨黄赵吴周"
GIVEN = "伟芳娜敏静丽强磊军洋"


def make_app():
    """The ASGI app for ``uvicorn --factory --workers N``: settings from HEALTHGRID_* variables."""
    from healthgrid.app import create_app

    return create_app(load_settings())


def server_env(url: str, data_dir: str) -> dict[str, str]:
    sec = SETTINGS["security"]
    return {"PYTHONPATH": str(Path(__file__).resolve().parent), "HEALTHGRID_ENV": SETTINGS["env"],
            "HEALTHGRID_DATABASE_URL": url, "HEALTHGRID_DATA_DIR": data_dir,
            "HEALTHGRID_SECRET_KEY": SETTINGS["secret_key"],
            "HEALTHGRID_SECURITY__PII_KEYS": json.dumps(sec["pii_keys"]),
            "HEALTHGRID_SECURITY__PII_CURRENT_KEY": sec["pii_current_key"],
            "HEALTHGRID_SECURITY__BLIND_INDEX_KEY": sec["blind_index_key"]}


# -- the world: a department, its doctors, residents, the window's token ----------------------------

@dataclass
class World:
    org_id: int
    department_id: int
    doctors: list[int]
    patients: list[int]
    token: str


def build_world(maker, *, doctors: int, users: int) -> World:
    with maker() as s:
        prov = registry.create_division(s, SYS, code="950000", name="青川省", level="province")
        city = registry.create_division(s, SYS, code="950100", name="安平市", level="city", parent_code=prov.code)
        county = registry.create_division(s, SYS, code="950102", name="永宁县", level="county",
                                          parent_code=city.code)
        hosp = registry.create_organization(s, SYS, code="95-CH1", name="安平市第一人民医院", level="L3",
                                            org_type="general_hospital", division_code=county.code,
                                            grade_level=3, grade_class="A")
        dept = registry.add_department(s, SYS, org_id=hosp.id, code="03.03")
        ids = []
        for i in range(doctors):
            doc = registry.create_practitioner(s, SYS, licence_no=f"11095{i:010d}", sex="M" if i % 2 else "F",
                                               name=SURNAMES[i % 10] + GIVEN[i // 10 % 10] + GIVEN[i % 10],
                                               title="chief_physician", specialty_code="03.03")
            registry.add_practice_site(s, SYS, practitioner_id=doc.id, org_id=hosp.id, department_code="03.03",
                                       is_primary=True)
            ids.append(doc.id)
        nurse = security.create_user(s, SYS, username="window-nurse", display_name="挂号窗口",
                                     password="Str0ng-Passw0rd!", org_id=hosp.id,
                                     grants=[security.GrantSpec(Role.NURSE, ScopeKind.ORGANIZATION, hosp.id)])
        token = security.create_token(s, SYS, user_id=nurse.id, name="hot release").token
        people = [register(s, hosp.id, i) for i in range(users)]
    return World(hosp.id, dept.id, ids, people, token)


def register(session, org_id: int, i: int) -> int:
    born = datetime(1940 + i // 336 % 60, 1 + i // 28 % 12, 1 + i % 28).date()
    first17 = f"950102{born:%Y%m%d}{101 + 2 * (i % 400):03d}"
    name = SURNAMES[i % 10] + GIVEN[i // 10 % 10] + GIVEN[i // 100 % 10]
    data = patients.PatientIn(name=name, sex="M", birth_date=born, resident_id=first17 + id_check_digit(first17))
    return patients.register_patient(session, SYS, org_id=org_id, data=data).patient.id


def open_release(maker, world: World, *, times: int, per_slot: int, lead_seconds: int) -> tuple[datetime, str]:
    """One schedule per doctor whose tomorrow-morning session opens at the next whole minute
    at least ``lead_seconds`` away (open_days_ahead = 1 at that clock time). Returns the
    release instant and the session's day."""
    at = (utcnow() + timedelta(seconds=lead_seconds + 60)).astimezone(TZ).replace(second=0, microsecond=0)
    day = at.date() + timedelta(days=1)
    end = 8 * 60 + 10 * times
    templates = [schedules.TemplateIn(weekday=day.weekday(), part="am", start="08:00",
                                      end=f"{end // 60:02d}:{end % 60:02d}", slot_minutes=10, per_slot=per_slot)]
    with maker() as s:
        for doc in world.doctors:
            schedules.create_schedule(s, SYS, schedules.ScheduleIn(
                org_id=world.org_id, name="心内科专家门诊", fee_class="expert", department_id=world.department_id,
                practitioner_id=doc, reserve_ratio=0, reserve_lead_days=0, open_days_ahead=1,
                release_time=f"{at:%H:%M}", channel_shares={"web": 1}, templates=templates), today=at.date())
    return at, day.isoformat()


# -- the virtual users ---------------------------------------------------------------------------

@dataclass
class Stats:
    posts: list[float] = field(default_factory=list)  # seconds, every POST that got an answer
    gets: list[float] = field(default_factory=list)  # seconds, every answered GET of the free places
    accepted: list[tuple[float, float]] = field(default_factory=list)  # (answered at, latency)
    statuses: dict[str, int] = field(default_factory=dict)
    acks: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> (appointment id, patient)
    replays: int = 0
    replay_mismatches: int = 0
    retries: int = 0
    sold_out: int = 0

    def count(self, what: str) -> None:
        self.statuses[what] = self.statuses.get(what, 0) + 1


class User:
    """One resident pressing the button: list a doctor's free places, book one."""

    def __init__(self, http: aiohttp.ClientSession, base: str, day: str, world: World, patient: int,
                 stats: Stats, rng: random.Random, replay: float):
        self.http, self.base, self.day, self.world = http, base, day, world
        self.patient, self.stats, self.rng, self.replay = patient, stats, rng, replay

    async def run(self, release: float) -> None:
        await asyncio.sleep(max(0.0, release - time.time()) + self.rng.random() * 0.5)
        for doctor in self.rng.sample(self.world.doctors, len(self.world.doctors)):
            while True:
                free = await self.free_slots(doctor)
                if not free:
                    break
                outcome = await self.book(self.rng.choice(free))
                if outcome != "full":
                    return
        self.stats.sold_out += 1

    async def free_slots(self, doctor: int) -> list[int]:
        params = {"department_id": self.world.department_id, "practitioner_id": doctor, "day_from": self.day,
                  "day_to": self.day, "pool": "web", "free_only": "true"}
        for _ in range(20):
            started = time.perf_counter()
            try:
                async with self.http.get(f"{self.base}/api/scheduling/slots", params=params) as r:
                    if r.status == 200:
                        items = (await r.json())["items"]
                        self.stats.gets.append(time.perf_counter() - started)
                        return [x["id"] for x in items]
            except (TimeoutError, aiohttp.ClientError):
                pass
            await asyncio.sleep(0.2 + self.rng.random())
        return []

    async def book(self, slot_id: int) -> str:
        """POST until answered (the same key on every retry): 'booked', 'full' or 'refused'."""
        key, body = f"hot-{uuid.uuid4()}", {"slot_id": slot_id, "patient_id": self.patient, "channel": "web"}
        for attempt in range(12):
            status, data, seconds = await self.post(key, body)
            if status is not None:
                self.stats.posts.append(seconds)
                self.stats.count(str(status) if status < 400 else f"{status} {data.get('code', '')}")
            if status in (200, 201):
                self.stats.accepted.append((time.time(), seconds))
                self.stats.acks[key] = (data["id"], self.patient)
                if self.rng.random() < self.replay:
                    await self.check_replay(key, body, data["id"])
                return "booked"
            if status == 409 and data.get("code") == "SCHED-002":
                return "full"
            if status is not None and status < 500 and data.get("code") != "SCHED-003":
                return "refused"
            self.stats.retries += 1  # no answer, 5xx or not open yet: the same request again
            await asyncio.sleep(min(2.0, 0.1 * 2 ** attempt) * (0.5 + self.rng.random()))
        return "refused"

    async def post(self, key: str, body: dict) -> tuple[int | None, dict, float]:
        started = time.perf_counter()
        try:
            async with self.http.post(f"{self.base}/api/scheduling/appointments", json=body,
                                      headers={"Idempotency-Key": key}) as r:
                data = await r.json(content_type=None) if r.content_length != 0 else {}
                return r.status, data if isinstance(data, dict) else {}, time.perf_counter() - started
        except (TimeoutError, aiohttp.ClientError, json.JSONDecodeError):
            return None, {}, time.perf_counter() - started

    async def check_replay(self, key: str, body: dict, appointment_id: int) -> None:
        for _ in range(10):
            status, data, _s = await self.post(key, body)
            if status is not None and status < 500:
                self.stats.replays += 1
                self.stats.replay_mismatches += not (status == 200 and data.get("id") == appointment_id)
                return
            await asyncio.sleep(0.5)


async def rush(base: str, world: World, day: str, release: datetime, args) -> Stats:
    stats, rng = Stats(), random.Random(5)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    connector = aiohttp.TCPConnector(limit=0)
    headers = {"Authorization": f"Bearer {world.token}"}
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, headers=headers) as http:
        async with http.get(f"{base}/api/security/me") as r:  # the token's first use, before the rush
            r.raise_for_status()
        users = [User(http, base, day, world, pid, stats, random.Random(rng.random()), args.replay)
                 for pid in world.patients]
        await asyncio.gather(*(u.run(release.timestamp()) for u in users))
    return stats


# -- the baseline: pgbench single-row updates ----------------------------------------------------

def pgbench(url: str, clients: int, threads: int, seconds: int) -> float:
    """TPS of ``UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :id`` on the
    benchmark's own database (its tables initialised there by ``pgbench -i``)."""
    u = make_url(url)
    conn = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres", u.database]
    env = {**os.environ, **({"PGPASSWORD": u.password} if u.password else {})}
    script = Path(tempfile.mkdtemp(prefix="hgpgbench-")) / "update.sql"
    script.write_text("\\set id random(1, 100000 * :scale)\n"
                      "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :id;\n")
    subprocess.run(["pgbench", "-i", "-q", "-s", "1", *conn], check=True, env=env, capture_output=True)
    out = subprocess.run(["pgbench", "-n", "-f", str(script), "-c", str(clients), "-j", str(threads),
                          "-T", str(seconds), *conn], check=True, env=env, capture_output=True, text=True).stdout
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


# -- checks and report ---------------------------------------------------------------------------

def verify(maker, stats: Stats) -> dict[str, int]:
    with maker() as s:
        slots = s.execute(select(Slot.id, Slot.capacity, Slot.booked)).all()
        live = dict(s.execute(select(Appointment.slot_id, func.count()).where(Appointment.status.in_(LIVE))
                              .group_by(Appointment.slot_id)).all())
        rows = {a.idempotency_key: a for a in s.scalars(select(Appointment))}
        per_patient = s.execute(select(Appointment.patient_id).where(Appointment.status.in_(LIVE))
                                .group_by(Appointment.patient_id).having(func.count() > 1)).all()
    lost = sum(1 for key, (aid, pid) in stats.acks.items()
               if key not in rows or (rows[key].id, rows[key].patient_id, rows[key].status) != (aid, pid, "booked"))
    return {"places": sum(c for _i, c, _b in slots),
            "booked": sum(b for _i, _c, b in slots),
            "overbooked slots": sum(1 for _i, c, b in slots if b > c),
            "slots whose counter differs from live appointments": sum(1 for i, _c, b in slots if live.get(i, 0) != b),
            "lost acknowledgements": lost,
            "appointments never acknowledged": sum(1 for k in rows if k not in stats.acks),
            "patients with two live appointments": len(per_patient),
            "replayed requests answered with another booking": stats.replay_mismatches}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def report(stats: Stats, release: datetime, tps: dict[int, float], checks: dict[str, int], args) -> None:
    done = [t for t, _ in stats.accepted]
    span = max(done) - release.timestamp() if done else float("nan")
    rate = len(done) / span if done else 0.0
    accepted = [lat for _, lat in stats.accepted]
    ceiling = max(tps.values())
    print(f"\n{len(stats.accepted)} bookings accepted in {span:.2f} s after the release: {rate:.0f} bookings/s")
    print(f"POST latency, accepted   p50 {statistics.median(accepted) * 1e3:8.1f} ms   "
          f"p99 {pct(accepted, 0.99) * 1e3:8.1f} ms")
    print(f"POST latency, all {len(stats.posts):>6}  p50 {statistics.median(stats.posts) * 1e3:8.1f} ms   "
          f"p99 {pct(stats.posts, 0.99) * 1e3:8.1f} ms")
    print(f"GET free places   {len(stats.gets):>6}  p50 {statistics.median(stats.gets) * 1e3:8.1f} ms   "
          f"p99 {pct(stats.gets, 0.99) * 1e3:8.1f} ms")
    print("answers: " + ", ".join(f"{k} x{v}" for k, v in sorted(stats.statuses.items())))
    print(f"retries of the same key after no answer / 5xx / not yet open: {stats.retries}; "
          f"deliberate replays of acknowledged bookings: {stats.replays}; users finding it sold out: {stats.sold_out}")
    for c, t in sorted(tps.items()):
        print(f"pgbench single-row UPDATE, -c {c:<3} -j {args.pgbench_threads} -T {args.pgbench_seconds}: "
              f"{t:8.0f} TPS")
    print(f"ratio bookings/s / pgbench TPS (best): {rate:.0f} / {ceiling:.0f} = {rate / ceiling:.3f}")
    print("\nchecks")
    for name, value in checks.items():
        print(f"  {name:<52}{value:>8}")
    bad = [n for n in ("overbooked slots", "slots whose counter differs from live appointments",
                       "lost acknowledgements", "patients with two live appointments",
                       "replayed requests answered with another booking") if checks[n]]
    print("RESULT: " + ("FAIL " + ", ".join(bad) if bad else "OK: no overbooking, no lost acknowledgement, "
                        "no duplicate booking"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres", help="PostgreSQL admin URL")
    ap.add_argument("--doctors", type=int, default=10)
    ap.add_argument("--times", type=int, default=24, help="10-minute times in each doctor's morning")
    ap.add_argument("--per-slot", type=int, default=2, help="places per time")
    ap.add_argument("--users", type=int, default=1200, help="virtual users, one resident each")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    ap.add_argument("--replay", type=float, default=0.05, help="share of acknowledged bookings sent again")
    ap.add_argument("--timeout", type=float, default=10.0, help="client timeout per request, seconds")
    ap.add_argument("--pgbench-clients", default="8,32", help="pgbench -c values; the best TPS is the ceiling")
    ap.add_argument("--pgbench-threads", type=int, default=2)
    ap.add_argument("--pgbench-seconds", type=int, default=10)
    args = ap.parse_args()
    run(args)


def run(args) -> None:
    url, drop = fresh_database(args.pg, "hot_release")
    data_dir = tempfile.mkdtemp(prefix="hgbench-")
    info = session_info(Settings(data_dir=data_dir, **SETTINGS))
    try:
        upgrade(url)
        engine = make_engine(url)
        maker = make_sessionmaker(engine, info=info)
        started = time.perf_counter()
        world = build_world(maker, doctors=args.doctors, users=args.users)
        print(f"PostgreSQL: {args.users} residents, {args.doctors} doctors registered in "
              f"{time.perf_counter() - started:.0f} s")
        tps = {int(c): pgbench(url, int(c), args.pgbench_threads, args.pgbench_seconds)
               for c in args.pgbench_clients.split(",")}
        port = free_port()
        cmd = uvicorn_args("hot_release:make_app", port, factory=True) + ["--workers", str(args.workers)]
        with server(cmd, port, env=server_env(url, data_dir)) as base:
            release, day = open_release(maker, world, times=args.times, per_slot=args.per_slot, lead_seconds=10)
            print(f"release at {release:%H:%M:%S %Z} for {day}: {args.doctors * args.times * args.per_slot} places, "
                  f"{args.users} virtual users, uvicorn --workers {args.workers}")
            stats = asyncio.run(rush(base, world, day, release, args))
        checks = verify(maker, stats)
        engine.dispose()
    finally:
        drop()
    report(stats, release, tps, checks, args)


if __name__ == "__main__":
    main()
