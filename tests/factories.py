"""Test data built through the services (never by writing tables directly)."""

from __future__ import annotations

from dataclasses import dataclass

from healthgrid.registry import service
from healthgrid.security.domain import Actor

SYS = Actor.system_actor("tests")


@dataclass
class SmallRegion:
    province: object
    city: object
    county: object
    township: object
    village: object
    county_hospital: object
    township_centre: object
    village_clinic: object
    alliance: object
    doctor: object


def make_small_region(session, *, prefix: str = "91") -> SmallRegion:
    """A province → village chain, three facilities, a 医共体 and one doctor."""
    prov = service.create_division(session, SYS, code=f"{prefix}0000", name="青川省", level="province")
    city = service.create_division(session, SYS, code=f"{prefix}0100", name="安平市", level="city",
                                   parent_code=prov.code)
    county = service.create_division(session, SYS, code=f"{prefix}0102", name="永宁县", level="county",
                                     parent_code=city.code)
    town = service.create_division(session, SYS, code=f"{prefix}0102001000", name="清河镇", level="township",
                                   parent_code=county.code)
    village = service.create_division(session, SYS, code=f"{prefix}0102001001", name="桃源村",
                                      level="village", parent_code=town.code)
    hosp = service.create_organization(session, SYS, code=f"{prefix}-CH1", name="永宁县人民医院", level="L2",
                                       org_type="general_hospital", division_code=county.code,
                                       grade_level=2, grade_class="A", address="永宁县城关路1号")
    thc = service.create_organization(session, SYS, code=f"{prefix}-THC1", name="清河镇卫生院", level="L1",
                                      org_type="township_health_centre", division_code=town.code)
    clinic = service.create_organization(session, SYS, code=f"{prefix}-VC1", name="桃源村卫生室", level="L0",
                                         org_type="village_clinic", division_code=village.code)
    alliance = service.create_alliance(session, SYS, code=f"{prefix}-YGT", name="永宁县医共体",
                                       kind="county_community", lead_org_code=hosp.code,
                                       member_org_codes=[thc.code, clinic.code], division_code=county.code)
    service.add_department(session, SYS, org_id=hosp.id, code="03.03")
    doctor = service.create_practitioner(session, SYS, licence_no=f"1201{prefix}00000001", name="张晓明",
                                         sex="M", title="attending_physician", specialty_code="03.03")
    service.add_practice_site(session, SYS, practitioner_id=doctor.id, org_id=hosp.id,
                              department_code="03.03", is_primary=True)
    return SmallRegion(prov, city, county, town, village, hosp, thc, clinic, alliance, doctor)


def resident_id(born, *, seq: int = 123, county: str = "910102") -> str:
    """A valid 18-digit ID number (GB 11643): odd sequence = male, even = female."""
    from healthgrid.security.domain import id_check_digit

    first17 = f"{county}{born:%Y%m%d}{seq:03d}"
    return first17 + id_check_digit(first17)


def make_patient(session, region: SmallRegion, *, name: str = "李秀英", sex: str = "F", born=None,
                 id_number: str | None = None, phone: str | None = None, org=None, mrn: str | None = None,
                 actor: Actor = SYS, division_id: int | None | str = "village"):
    """Register a resident through the patient index; returns the Registration."""
    from datetime import date

    from healthgrid.patients import service as patients

    data = patients.PatientIn(name=name, sex=sex, birth_date=born or date(1962, 5, 17), resident_id=id_number,
                              phone=phone, mrn=mrn,
                              division_id=region.village.id if division_id == "village" else division_id)
    return patients.register_patient(session, actor, org_id=(org or region.township_centre).id, data=data)
