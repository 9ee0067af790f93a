"""Kill the server while village doctors send and the hospital accepts referrals: every
referral a client saw acknowledged is in the database with its events, every acceptance
acknowledged holds exactly one reserved place, and retrying the unanswered requests with
their Idempotency-Key after a restart sends nothing twice.

The real server (``healthgrid serve``) runs as a subprocess on a fresh migrated database
(PostgreSQL when HEALTHGRID_TEST_DATABASE_URL is set, else a SQLite file); SIGKILL gives it
no chance to finish anything.
"""

from __future__ import annotations

import signal
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

import httpx
import pytest
from sqlalchemy import func, select
from tests.conftest import SESSION_INFO
from tests.factories import SYS
from tests.scheduling.conftest import local_today
from tests.scheduling.test_crash import server_env, start_server
from tests.scheduling.test_race import person_name

from healthgrid.db import make_engine, make_sessionmaker
from healthgrid.migrate import upgrade
from healthgrid.patients import service as patients
from healthgrid.referrals.models import Referral, ReferralEvent
from healthgrid.scheduling.models import Appointment, Slot
from healthgrid.security import service as security
from healthgrid.security.domain import Role, ScopeKind

from .conftest import make_ward

pytestmark = pytest.mark.slow
SENDERS = 60
KILL_AFTER = 15


@dataclass
class World:
    maker: object
    ward: object
    village_token: str
    hospital_token: str
    patients: list[int]


def build_world(url: str) -> World:
    engine = make_engine(url)
    maker = make_sessionmaker(engine, info=dict(SESSION_INFO))
    with maker() as s:
        ward = make_ward(s, prefix="95", today=local_today(), per_slot=8, reserve_ratio=1.0)
        clinic = ward.region.village_clinic
        people = [patients.register_patient(s, SYS, org_id=clinic.id, data=patients.PatientIn(
            name=person_name(i), sex="F", birth_date=date(1950 + i % 30, 1 + i % 12, 1 + i % 27),
            phone=f"1375555{i:04d}")).patient.id for i in range(SENDERS)]
        tokens = []
        for org, role, name in ((clinic.id, Role.CLINICIAN, "village"), (ward.region.county_hospital.id,
                                                                         Role.NURSE, "desk")):
            user = security.create_user(s, SYS, username=f"{name}-crash", display_name=name,
                                        password="Str0ng-Passw0rd!", org_id=org,
                                        grants=[security.GrantSpec(role, ScopeKind.ORGANIZATION, org)])
            tokens.append(security.create_token(s, SYS, user_id=user.id, name=name).token)
    return World(maker, ward, tokens[0], tokens[1], people)


@dataclass
class Sent:
    key: str
    patient_id: int
    status: int | None = None
    referral_id: int | None = None
    accepted: bool = False


def send(base: str, world: World, req: Sent) -> None:
    """Send the referral, then accept it at the hospital's desk (which books its place)."""
    w = world.ward
    try:
        r = httpx.post(f"{base}/api/referrals", timeout=30, headers={
            "Authorization": f"Bearer {world.village_token}", "Idempotency-Key": req.key}, json={
            "patient_id": req.patient_id, "from_org_id": w.region.village_clinic.id,
            "to_org_id": w.region.county_hospital.id, "to_department_id": w.department_id,
            "diagnoses": [{"code": "I10", "name": "原发性高血压"}]})
        req.status = r.status_code
        if r.status_code in (200, 201):
            req.referral_id = r.json()["id"]
            a = httpx.post(f"{base}/api/referrals/{req.referral_id}/accept", json={}, timeout=30,
                           headers={"Authorization": f"Bearer {world.hospital_token}"})
            req.accepted = a.status_code == 200 and a.json()["status"] in ("scheduled", "accepted")
    except httpx.TransportError:
        return  # the server died under this request: no answer


def check_database(world: World, sent: list[Sent]) -> dict[str, int]:
    with world.maker() as s:
        for req in sent:
            row = s.get(Referral, req.referral_id)
            assert row is not None, f"acknowledged referral {req.referral_id} lost"
            assert (row.idempotency_key, row.patient_id) == (req.key, req.patient_id)
            events = s.scalar(select(func.count()).select_from(ReferralEvent).where(
                ReferralEvent.referral_id == row.id))
            assert events >= 2  # drafted and submitted, written with it
            if req.accepted:
                assert row.status == "scheduled" and row.appointment_id is not None
        # Each reserved place is held by as many live referral appointments as its counter says.
        for slot in s.scalars(select(Slot).where(Slot.booked > 0)):
            live = s.scalar(select(func.count()).select_from(Appointment).where(
                Appointment.slot_id == slot.id, Appointment.status == "booked"))
            assert slot.booked == live <= slot.capacity
        twice = s.execute(select(Referral.idempotency_key).group_by(Referral.idempotency_key)
                          .having(func.count() > 1)).all()
        assert not twice
        return dict(s.execute(select(Referral.idempotency_key, Referral.id)).all())


def test_killing_the_server_loses_no_acknowledged_referral(fresh_databases, tmp_path):
    url = fresh_databases.create("ref_crash")
    upgrade(url)
    world = build_world(url)
    env = server_env(url, tmp_path)
    requests = [Sent(f"ref-{uuid.uuid4()}", pid) for pid in world.patients]
    proc, base = start_server(env)
    acked, lock = [0], threading.Lock()

    def one(req: Sent) -> None:
        send(base, world, req)
        with lock:
            acked[0] += req.referral_id is not None
            if acked[0] >= KILL_AFTER and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)

    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            list(pool.map(one, requests))
        proc.wait(timeout=10)
    finally:
        proc.kill()
    acknowledged = [r for r in requests if r.referral_id is not None]
    unanswered = [r for r in requests if r.status is None]
    assert len(acknowledged) >= KILL_AFTER and unanswered, "the kill did not fall in the middle of the burst"
    committed = check_database(world, acknowledged)

    proc, base = start_server(env)
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda r: send(base, world, r), unanswered))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    for req in unanswered:
        assert req.status in (200, 201), req.status
        if req.key in committed:  # sent before the kill but never answered: the same referral
            assert (req.status, req.referral_id) == (200, committed[req.key])
    final = check_database(world, [r for r in requests if r.referral_id is not None])
    assert set(committed) <= set(final) and len(final) == len(requests)
