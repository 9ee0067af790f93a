"""The patient index's share of the synthetic region: residents of every village, written
in bulk, and a handful of later registrations at hospitals — some the same people with the
usual errors (homophones, swapped dates, a new phone) — made through the real service, so
the demo has links, facility record numbers and an open review queue.

Residents get valid ID numbers on their county's (synthetic, 9x) code, phones, e-health
cards and insurance numbers (people.py), encrypted and blind-indexed like any registration.
Deterministic for a seed. Several million residents (``province``) take minutes; the
progress callback reports every batch.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, text
from sqlalchemy.orm import Session

from ..db import utcnow
from ..registry import queries as registry_queries
from ..security.domain import Actor
from ..security.pii import SESSION_KEY, Keyring
from . import domain as d
from . import people, service
from .models import Patient, PatientIdentifier

Progress = Callable[[str, int, int], None]
RESIDENTS_PER_VILLAGE = {"tiny": 40, "small": 60, "city": 250, "province": 350}
BATCH = 20_000


def generate(conn: Connection, *, size: str, seed: int, info: dict[str, Any], progress: Progress | None = None,
             today: date | None = None, residents: int | None = None) -> dict[str, int]:
    """Residents spread over every village (``residents`` overrides the size's count)."""
    ring: Keyring = info[SESSION_KEY]
    villages = registry_queries.village_places(conn)
    if not villages:
        return {"residents": 0}
    clinics = registry_queries.primary_facility_by_division(conn, [v[0] for v in villages])
    rng = random.Random(seed * 7919 + 4)
    n = residents if residents is not None else RESIDENTS_PER_VILLAGE[size] * len(villages)
    with people.gc_paused():
        persons = people.make_people(rng, n, villages, today or date.today())
    next_id = (conn.scalar(select(func.max(Patient.id))) or 0) + 1
    pinyin_cache: dict[str, str] = {}
    now = utcnow()
    for start in range(0, n, BATCH):
        rows, idents = [], []
        for offset, p in enumerate(persons[start:start + BATCH]):
            pid = next_id + start + offset
            rows.append(_patient_row(ring, pid, p, clinics.get(p.village_id), pinyin_cache, now))
            idents += _identifier_rows(ring, pid, p, now)
        conn.execute(insert(Patient.__table__), rows)
        conn.execute(insert(PatientIdentifier.__table__), idents)
        if progress:
            progress("residents", min(start + BATCH, n), n)
    if conn.dialect.name == "postgresql":
        # ids were given here: move the sequence past them, or the next registration collides
        conn.execute(text("SELECT setval(pg_get_serial_sequence('pat_patient', 'id'),"
                          " (SELECT MAX(id) FROM pat_patient))"))
        # fresh statistics after a bulk load, or the planner guesses (autovacuum comes later)
        conn.execute(text("ANALYZE pat_patient"))
        conn.execute(text("ANALYZE pat_identifier"))
    return {"residents": n}


def _patient_row(ring: Keyring, pid: int, p: people.Person, org_id: int | None, cache: dict[str, str],
                 now) -> dict[str, Any]:
    pinyin = cache.get(p.name)
    if pinyin is None:
        pinyin = cache[p.name] = d.name_pinyin(p.name)
    return {"id": pid, "name": p.name, "name_pinyin": pinyin, "name_key": d.name_key(pinyin), "sex": p.sex,
            "birth_date": p.birth_date, "birth_year": p.birth_date.year,
            "phone_enc": ring.encrypt(p.phone, "patient.phone") if p.phone else None,
            "phone_bidx": ring.blind_index(p.phone, "patient.phone") if p.phone else None,
            "division_id": p.village_id, "township_id": p.township_id, "registered_org_id": org_id,
            "replaced_by": None, "active": True, "version": 1, "created_at": now, "updated_at": now}


def _identifier_rows(ring: Keyring, pid: int, p: people.Person, now) -> list[dict[str, Any]]:
    out = []
    for kind, value in ((d.IdentifierKind.RESIDENT_ID, p.resident_id), (d.IdentifierKind.HEALTH_CARD, p.health_card),
                        (d.IdentifierKind.INSURANCE, p.insurance)):
        if value:
            out.append({"patient_id": pid, "kind": kind.value, "assigner": 0, "created_at": now,
                        "value_enc": ring.encrypt(value, "patient.identifier"),
                        "value_bidx": ring.blind_index(value, d.IDENTIFIER_PURPOSE[kind])})
    return out


def register_visits(session: Session, *, seed: int, count: int = 24) -> dict[str, int]:
    """Residents registering at hospitals: some give their ID (linked at once), some only a
    homophone name and a new phone (linked or queued for review), through the service."""
    actor = Actor.system_actor("synth")
    rng = random.Random(seed * 31 + 9)
    hospitals = registry_queries.hospital_ids(session)
    sample = list(session.scalars(select(Patient).where(Patient.replaced_by.is_(None)).order_by(Patient.id)
                                  .limit(count * 20)))
    if not hospitals or not sample:
        return {"registrations": 0}
    outcomes: dict[str, int] = {}
    for i, p in enumerate(rng.sample(sample, min(count, len(sample)))):
        data = _visit(rng, p, i)
        reg = service.register_patient(session, actor, org_id=rng.choice(hospitals), data=data)
        outcomes[reg.outcome] = outcomes.get(reg.outcome, 0) + 1
    return {f"registrations_{k}": v for k, v in outcomes.items()}


def _visit(rng: random.Random, p: Patient, i: int) -> service.PatientIn:
    mrn = f"ZY{rng.randint(100000, 999999)}"
    name = p.name
    variant = {"晓": "小", "明": "铭", "伟": "玮", "丽": "莉", "静": "婧", "军": "君", "华": "桦", "玲": "琳"}
    for a, b in variant.items():
        if a in name[1:]:
            name = name[0] + name[1:].replace(a, b, 1)
            break
    born = p.birth_date
    if i % 4 == 1 and born is not None and born.day <= 12 and born.day != born.month:
        born = born.replace(month=born.day, day=born.month)  # day and month swapped at the desk
    if i % 4 == 2 and born is not None:
        born = born + timedelta(days=rng.choice([-400, 400]))  # a year off: a doubtful pair
    return service.PatientIn(name=name, sex=p.sex, birth_date=born, mrn=mrn, division_id=p.division_id,
                             phone=people.mobile_number(rng) if i % 2 else None)
