"""Rush safety at the service level (issue 5, rule 5): many sessions book at the same moment,
each in its own thread and transaction, on a database of its own (these sessions commit).

On PostgreSQL the transactions really run at once and meet the conditional update of the
slot, the patient's row lock and the unique keys; on SQLite the writers are serialised by
the engine, and the same assertions hold.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import pytest
from sqlalchemy import func, select
from tests.conftest import SESSION_INFO
from tests.factories import SYS, make_patient, resident_id
from tests.scheduling.conftest import NOW, make_clinic, tomorrow_slots

from healthgrid.db import make_engine, make_sessionmaker
from healthgrid.errors import Conflict
from healthgrid.migrate import upgrade
from healthgrid.scheduling import service
from healthgrid.scheduling.models import LIVE, Appointment, Slot

_prefixes = iter(range(91, 100))  # ID numbers of test regions start with 9
_STEMS = "甲乙丙丁戊己庚辛壬癸"


def person_name(i: int) -> str:
    """A distinct Chinese name per number (names are written in Chinese characters)."""
    return "王" + _STEMS[i // 100 % 10] + _STEMS[i // 10 % 10] + _STEMS[i % 10]


@pytest.fixture(scope="module")
def maker(fresh_databases):
    """A sessionmaker on a fresh migrated database shared by this module's tests; each
    test builds its own region (its own division prefix) in it."""
    url = fresh_databases.create("sched_race")
    upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine, info=dict(SESSION_INFO))
    engine.dispose()


@dataclass
class Race:
    """The outcome of a race: what each thread got back."""

    won: list = field(default_factory=list)
    refused: list = field(default_factory=list)
    errors: list = field(default_factory=list)


def race(maker, calls: list[Callable]) -> Race:
    """Run each call in a thread with its own session, all released at once by a barrier."""
    out, barrier = Race(), threading.Barrier(len(calls))

    def run(call: Callable) -> None:
        with maker() as s:
            barrier.wait()
            try:
                out.won.append(call(s))
            except Conflict as exc:
                out.refused.append(exc.code)
            except Exception as exc:  # noqa: BLE001 - reported by the test's assertion
                out.errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return out


def make_patients(session, region, n: int, *, county: str = "910102") -> list[int]:
    """``n`` distinct residents registered in the patient index; their ids."""
    out = []
    for i in range(n):
        born = date(1940 + i // 336 % 60, 1 + i // 28 % 12, 1 + i % 28)
        out.append(make_patient(session, region, name=person_name(i), sex="M", born=born,
                                id_number=resident_id(born, seq=101 + 2 * (i % 400), county=county)).patient.id)
    return out


def setup_clinic(maker, *, per_slot: int, patients: int):
    """One clinic whose places all go to the web pool, and ``patients`` residents."""
    prefix = str(next(_prefixes))
    with maker() as s:
        clinic = make_clinic(s, per_slot=per_slot, reserve_ratio=0, prefix=prefix, patients=0,
                             channel_shares={"web": 1})
        people = make_patients(s, clinic.region, patients, county=f"{prefix}0102")
        slots = tomorrow_slots(s, clinic)
    return clinic, people, slots


def book(slot_id: int, patient_id: int, key: str | None = None) -> Callable:
    return lambda s: service.book_appointment(s, SYS, slot_id=slot_id, patient_id=patient_id, channel="web",
                                              idempotency_key=key, now=NOW)


def assert_consistent(maker, slot_ids: list[int]) -> None:
    """No slot above capacity, and each slot's counter equals its live appointments."""
    with maker() as s:
        for slot in s.scalars(select(Slot).where(Slot.id.in_(slot_ids))):
            live = s.scalar(select(func.count()).select_from(Appointment).where(
                Appointment.slot_id == slot.id, Appointment.status.in_(LIVE)))
            assert 0 <= slot.booked <= slot.capacity
            assert slot.booked == live, f"slot {slot.id}: counter {slot.booked}, live appointments {live}"


def test_many_patients_race_for_the_last_place_of_a_slot_and_one_wins(maker):
    clinic, people, slots = setup_clinic(maker, per_slot=3, patients=12)
    slot = slots[0]
    with maker() as s:
        for pid in people[:2]:
            book(slot.id, pid)(s)
    result = race(maker, [book(slot.id, pid) for pid in people[2:]])
    assert not result.errors
    assert len(result.won) == 1 and result.refused == ["SCHED-002"] * 9
    with maker() as s:
        assert s.get(Slot, slot.id).booked == 3
    assert_consistent(maker, [slot.id])


def test_a_burst_over_a_whole_session_never_overbooks_any_slot(maker):
    clinic, people, slots = setup_clinic(maker, per_slot=2, patients=20)
    capacity = sum(s.capacity for s in slots)  # 4 times of 2 places
    result = race(maker, [book(slots[i % len(slots)].id, pid) for i, pid in enumerate(people)])
    assert not result.errors
    assert len(result.won) == capacity and set(result.refused) == {"SCHED-002"}
    assert len({a.id for a in result.won}) == capacity
    assert_consistent(maker, [s.id for s in slots])


def test_the_same_idempotency_key_sent_from_several_threads_books_once(maker):
    clinic, people, slots = setup_clinic(maker, per_slot=2, patients=1)
    key = f"retry-{uuid.uuid4()}"
    result = race(maker, [book(slots[0].id, people[0], key) for _ in range(6)])
    assert not result.errors and not result.refused, result.refused
    assert len({a.id for a in result.won}) == 1 and len(result.won) == 6
    assert sum(1 for a in result.won if not getattr(a, "replayed", False)) == 1
    with maker() as s:
        assert s.scalar(select(func.count()).select_from(Appointment).where(
            Appointment.patient_id == people[0])) == 1
    assert_consistent(maker, [slots[0].id])


def test_a_retry_of_the_last_place_answers_the_booking_not_slot_full(maker):
    """The slot's single place is taken by the first of the retries: the others answer the
    same appointment rather than 'full' (the client must learn that it has booked)."""
    clinic, people, slots = setup_clinic(maker, per_slot=1, patients=1)
    key = f"retry-{uuid.uuid4()}"
    result = race(maker, [book(slots[0].id, people[0], key) for _ in range(4)])
    assert not result.errors and not result.refused, result.refused
    assert len({a.id for a in result.won}) == 1
    assert_consistent(maker, [slots[0].id])


def test_one_patient_booking_two_slots_of_one_department_and_day_gets_one(maker):
    clinic, people, slots = setup_clinic(maker, per_slot=2, patients=1)
    result = race(maker, [book(slot.id, people[0]) for slot in slots])
    assert not result.errors
    assert len(result.won) == 1 and result.refused == ["SCHED-008"] * (len(slots) - 1)
    with maker() as s:
        live = s.scalar(select(func.count()).select_from(Appointment).where(
            Appointment.patient_id == people[0], Appointment.status.in_(LIVE)))
    assert live == 1
    assert_consistent(maker, [s.id for s in slots])


def test_cancellations_racing_bookings_keep_the_counter_equal_to_live_appointments(maker):
    clinic, people, slots = setup_clinic(maker, per_slot=2, patients=8)
    slot = slots[0]
    with maker() as s:
        first = [book(slot.id, pid)(s).id for pid in people[:2]]

    def cancel(appointment_id: int) -> Callable:
        return lambda s: service.cancel_appointment(s, SYS, appointment_id, reason="改期", now=NOW)

    result = race(maker, [cancel(a) for a in first] + [book(slot.id, pid) for pid in people[2:]])
    assert not result.errors
    assert len([v for v in result.won if v.status == "booked"]) <= 2
    assert_consistent(maker, [slot.id])


@pytest.mark.pg
def test_on_postgres_the_bookings_of_different_slots_run_concurrently(maker):
    """PostgreSQL does not serialise bookings of different slots and patients: a burst of
    distinct bookings all succeed (none refused by a lock timeout or a serialisation
    failure)."""
    clinic, people, slots = setup_clinic(maker, per_slot=4, patients=16)
    result = race(maker, [book(slots[i % len(slots)].id, pid) for i, pid in enumerate(people)])
    assert not result.errors and not result.refused
    assert len(result.won) == 16
    assert_consistent(maker, [s.id for s in slots])
