"""Referral fixtures: the small region (village clinic -> township centre -> county
hospital, one 医共体) with a cardiology clinic at the county hospital whose reserved places
are open to referrers, a village doctor, a hospital doctor and a patient of the village."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from tests.factories import SYS, make_patient, resident_id
from tests.scheduling.conftest import NOW, TODAY, make_clinic

from healthgrid.registry import service as registry
from healthgrid.security import service as security
from healthgrid.security.domain import Actor

__all__ = ["NOW", "TODAY", "Ward", "make_ward", "staff"]


def staff(session, org_id: int, *, username: str, role: str = "clinician", practitioner_id: int | None = None,
          display_name: str = "医生") -> Actor:
    user = security.create_user(session, SYS, username=username, display_name=display_name,
                                password="Doctor-pass-123", grants=[security.parse_grant(role, "organization", org_id)],
                                org_id=org_id, practitioner_id=practitioner_id)
    return security.actor_for(session, user, surface="api", client=None, mfa=True)


@dataclass
class Ward:
    clinic: object  # tests.scheduling.conftest.Clinic
    region: object
    department_id: int
    patient: object
    patient2: object  # a second resident of the village, registered at its clinic
    village_doctor: Actor
    village_practitioner_id: int
    hospital_doctor: Actor
    hospital_practitioner_id: int
    township_doctor: Actor


def make_ward(session, *, prefix: str = "91", reserve_ratio: float = 0.5, **kw) -> Ward:
    clinic = make_clinic(session, prefix=prefix, reserve_ratio=reserve_ratio, patients=1, **kw)
    region = clinic.region
    vdoc = registry.create_practitioner(session, SYS, licence_no=f"1201{prefix}00000091", name="李村医", sex="F",
                                        title="village_doctor", specialty_code="50")
    registry.add_practice_site(session, SYS, practitioner_id=vdoc.id, org_id=region.village_clinic.id,
                               is_primary=True)
    patient = make_patient(session, region, name="周桂兰", sex="F", born=date(1958, 3, 9),
                           id_number=resident_id(date(1958, 3, 9), seq=224, county=f"{prefix}0102"),
                           org=region.village_clinic).patient
    patient2 = make_patient(session, region, name="吴国华", sex="M", born=date(1950, 7, 1),
                            id_number=resident_id(date(1950, 7, 1), seq=311, county=f"{prefix}0102"),
                            org=region.village_clinic).patient
    return Ward(
        clinic=clinic, region=region, department_id=clinic.department_id, patient=patient, patient2=patient2,
        village_doctor=staff(session, region.village_clinic.id, username=f"vdoc-{prefix}", practitioner_id=vdoc.id),
        village_practitioner_id=vdoc.id,
        hospital_doctor=staff(session, region.county_hospital.id, username=f"hdoc-{prefix}",
                              practitioner_id=region.doctor.id),
        hospital_practitioner_id=region.doctor.id,
        township_doctor=staff(session, region.township_centre.id, username=f"tdoc-{prefix}"))


@pytest.fixture
def ward(session) -> Ward:
    return make_ward(session)


def tomorrow(days: int = 1) -> date:
    return TODAY + timedelta(days=days)
