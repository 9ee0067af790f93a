"""Two doctors accept the same referral at once: exactly one wins, and one reserved place is
booked (the issue's "Done when"). Each doctor runs in their own thread, session and
transaction on a database of this module's own (these sessions commit).

On PostgreSQL the two transactions really run at once: the second waits on the referral's
row lock (``SELECT ... FOR UPDATE``), then finds it accepted and is refused (REF-002). On
SQLite the engine serialises the writers and the same assertions hold.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from tests.conftest import SESSION_INFO
from tests.scheduling.test_race import race

from healthgrid.db import make_engine, make_sessionmaker
from healthgrid.migrate import upgrade
from healthgrid.referrals import service as referrals
from healthgrid.referrals import workflow as ref_workflow
from healthgrid.referrals.models import ReferralEvent
from healthgrid.scheduling.models import Appointment, Slot

from .conftest import NOW, make_ward, staff
from .test_flow import up_form


@pytest.fixture(scope="module")
def maker(fresh_databases):
    url = fresh_databases.create("ref_race")
    upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine, info=dict(SESSION_INFO))
    engine.dispose()


@pytest.mark.parametrize("doctors", [2, 6])
def test_two_doctors_accepting_one_referral_exactly_one_wins(maker, doctors):
    prefix = "93" if doctors == 2 else "94"
    with maker() as s:
        ward = make_ward(s, prefix=prefix)
        others = [staff(s, ward.region.county_hospital.id, username=f"race-{prefix}-{i}") for i in range(doctors - 1)]
        sent = referrals.create_referral(s, ward.village_doctor, up_form(ward), now=NOW)
        actors = [ward.hospital_doctor, *others]

    def accept(actor):
        return lambda session: ref_workflow.accept_referral(session, actor, sent.id, now=NOW)

    out = race(maker, [accept(a) for a in actors])
    assert out.errors == []
    assert len(out.won) == 1 and out.won[0].status == "scheduled"
    assert out.refused == ["REF-002"] * (doctors - 1)
    with maker() as s:
        booked = s.scalars(select(Appointment).where(Appointment.patient_id == ward.patient.id)).all()
        assert [a.referral_ref for a in booked] == [out.won[0].code]
        assert s.scalar(select(func.sum(Slot.booked)).where(Slot.id == booked[0].slot_id)) == 1
        accepted = s.scalar(select(func.count()).select_from(ReferralEvent).where(
            ReferralEvent.referral_id == sent.id, ReferralEvent.to_status == "accepted"))
        assert accepted == 1
