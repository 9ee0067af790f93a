"""Kill the server in the middle of a booking burst (issue 5, "Done when"): every booking a
client saw acknowledged is in the database, no slot is overbooked, and retrying the
unanswered requests with their Idempotency-Key after a restart books nothing twice.

The real server (``healthgrid serve``) runs as a subprocess on a fresh migrated database:
PostgreSQL when HEALTHGRID_TEST_DATABASE_URL is set, else a SQLite file. SIGKILL gives it no
chance to finish anything: what survives is what the database committed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select
from tests.conftest import SECRETS, SESSION_INFO, _free_port
from tests.factories import SYS, make_small_region
from tests.scheduling.test_race import make_patients

from healthgrid.db import make_engine, make_sessionmaker, utcnow
from healthgrid.migrate import upgrade
from healthgrid.registry import service as registry
from healthgrid.scheduling import schedules, service
from healthgrid.scheduling.models import LIVE, Appointment, Slot
from healthgrid.security import service as security
from healthgrid.security.domain import Role, ScopeKind

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
PATIENTS = 160  # more clients than the 96 places: the burst also meets "full"
KILL_AFTER = 30  # acknowledgements seen before the SIGKILL


def server_env(url: str, data_dir: Path) -> dict[str, str]:
    """The test settings (tests/conftest.py SECRETS) as HEALTHGRID_* variables."""
    sec = SECRETS["security"]
    return {**os.environ, "HEALTHGRID_ENV": "test", "HEALTHGRID_DATABASE_URL": url,
            "HEALTHGRID_DATA_DIR": str(data_dir), "HEALTHGRID_SECRET_KEY": SECRETS["secret_key"],
            "HEALTHGRID_SECURITY__PII_KEYS": json.dumps(sec["pii_keys"]),
            "HEALTHGRID_SECURITY__PII_CURRENT_KEY": sec["pii_current_key"],
            "HEALTHGRID_SECURITY__BLIND_INDEX_KEY": sec["blind_index_key"]}


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "healthgrid.cli", "serve", "--port", str(port),
                             "--no-access-log"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("server did not start: " + proc.stderr.read().decode()[-2000:])
        time.sleep(0.1)


@dataclass
class World:
    engine: object
    maker: object
    token: str
    slot_ids: list[int]
    patients: list[int]


def build_world(url: str) -> World:
    """A hospital department whose tomorrow morning (24 times x 4 places, all web) is open,
    residents to book for and the registration window's API token, through the services."""
    engine = make_engine(url)
    maker = make_sessionmaker(engine, info=dict(SESSION_INFO))
    with maker() as s:
        region = make_small_region(s)
        hosp = region.county_hospital
        dept = registry.add_department(s, SYS, org_id=hosp.id, code="03")
        templates = [schedules.TemplateIn(weekday=w, part="am", start="08:00", end="12:00", slot_minutes=10,
                                          per_slot=4) for w in range(7)]
        sched = schedules.create_schedule(s, SYS, schedules.ScheduleIn(
            org_id=hosp.id, name="心内科 普通门诊", department_id=dept.id, reserve_ratio=0,
            channel_shares={"web": 1}, templates=templates))
        tomorrow = utcnow().astimezone(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=1)
        slots = service.find_slots(s, SYS, service.SlotQuery(schedule_id=sched.id, day_from=tomorrow,
                                                             day_to=tomorrow, pool="web"))
        patients = make_patients(s, region, PATIENTS)
        nurse = security.create_user(s, SYS, username="window-nurse", display_name="挂号窗口",
                                     password="Str0ng-Passw0rd!", org_id=hosp.id,
                                     grants=[security.GrantSpec(Role.NURSE, ScopeKind.ORGANIZATION, hosp.id)])
        token = security.create_token(s, SYS, user_id=nurse.id, name="window").token
    assert sum(x.capacity for x in slots) == 96
    return World(engine, maker, token, [x.id for x in slots], patients)


@dataclass
class Request:
    key: str
    slot_id: int
    patient_id: int
    status: int | None = None
    appointment_id: int | None = None

    @property
    def acknowledged(self) -> bool:
        return self.status in (200, 201) and self.appointment_id is not None


def send(base: str, token: str, req: Request) -> None:
    try:
        r = httpx.post(f"{base}/api/scheduling/appointments", timeout=30,
                       headers={"Authorization": f"Bearer {token}", "Idempotency-Key": req.key},
                       json={"slot_id": req.slot_id, "patient_id": req.patient_id, "channel": "web"})
    except httpx.TransportError:
        return  # the server died under this request: no answer
    req.status = r.status_code
    if r.status_code in (200, 201):
        req.appointment_id = r.json()["id"]


def burst_and_kill(proc: subprocess.Popen, base: str, world: World, requests: list[Request]) -> None:
    """Fire every request from 24 clients; SIGKILL the server after KILL_AFTER acknowledgements."""
    acked, lock = [0], threading.Lock()

    def one(req: Request) -> None:
        send(base, world.token, req)
        with lock:
            acked[0] += req.acknowledged
            if acked[0] >= KILL_AFTER and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)

    with ThreadPoolExecutor(max_workers=24) as pool:
        list(pool.map(one, requests))
    proc.wait(timeout=10)


def check_database(world: World, acknowledged: list[Request]) -> dict[str, int]:
    """Every acknowledged booking is there and live; every slot's counter equals its live
    appointments and none is above capacity. Returns the appointment id of each key."""
    with world.maker() as s:
        for req in acknowledged:
            row = s.get(Appointment, req.appointment_id)
            assert row is not None, f"acknowledged appointment {req.appointment_id} lost"
            assert (row.status, row.idempotency_key, row.slot_id) == ("booked", req.key, req.slot_id)
        for slot in s.scalars(select(Slot).where(Slot.id.in_(world.slot_ids))):
            live = s.scalar(select(func.count()).select_from(Appointment).where(
                Appointment.slot_id == slot.id, Appointment.status.in_(LIVE)))
            assert slot.booked <= slot.capacity and slot.booked == live, (slot.id, slot.booked, live)
        per_patient = s.execute(select(Appointment.patient_id, func.count()).group_by(Appointment.patient_id)
                                .having(func.count() > 1)).all()
        assert not per_patient, f"patients booked twice: {per_patient}"
        return dict(s.execute(select(Appointment.idempotency_key, Appointment.id)).all())


def test_killing_the_server_mid_burst_loses_no_acknowledged_booking(fresh_databases, tmp_path):
    url = fresh_databases.create("sched_crash")
    upgrade(url)
    world = build_world(url)
    env = server_env(url, tmp_path)
    requests = [Request(f"crash-{uuid.uuid4()}", world.slot_ids[i % len(world.slot_ids)], pid)
                for i, pid in enumerate(world.patients)]
    proc, base = start_server(env)
    try:
        burst_and_kill(proc, base, world, requests)
    finally:
        proc.kill()
    acked = [r for r in requests if r.acknowledged]
    unanswered = [r for r in requests if r.status is None]
    assert len(acked) >= KILL_AFTER and unanswered, "the kill did not fall in the middle of the burst"
    committed = check_database(world, acked)

    # Restart and retry every unanswered request with its own key.
    proc, base = start_server(env)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda r: send(base, world.token, r), unanswered))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    for req in unanswered:
        assert req.status in (200, 201, 409), req.status
        if req.key in committed:  # booked before the kill but never answered: the same booking
            assert (req.status, req.appointment_id) == (200, committed[req.key])
    final = check_database(world, [r for r in requests if r.acknowledged])
    assert set(committed) <= set(final)
    assert len(final) == len(set(final.values()))
    world.engine.dispose()
