"""A small world for the recognition tests: the small region (prefix 91: the catalogue's
synthetic province list 910000, mark 演91HR) with a city hospital (L3) and a second county's
hospital, doctors at each level, two patients, EQA results, and a helper writing reports and
their observations straight through the models (the ingestion service is tested apart)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import count

from tests.factories import SYS, make_patient, make_small_region, resident_id
from tests.referrals.conftest import staff

from healthgrid.registry import service as registry
from healthgrid.results.models import Eqa, ImagingStudy, Observation, Report
from healthgrid.security.domain import Actor

NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 in China
EQA_ITEMS = ("GLU", "K", "CBC", "HBA1C", "CREA", "CT-HEAD", "XR-CHEST", "ALT")
_fillers = count(1)


@dataclass
class RecWorld:
    region: object
    city_hospital: object  # L3, in the city
    hosp_b: object  # L2, another county
    patient: int  # registered at the county hospital
    stranger: int  # registered at the village clinic only
    doctor: Actor  # clinician of the county hospital (L2)
    outsider: Actor  # clinician of the other county's hospital
    village_doctor: Actor  # clinician of the village clinic (L0)
    nurse: Actor  # nurse of the county hospital (no results.order)


def make_world(session, *, prefix: str = "91", eqa_years: tuple[int, ...] = (2025, 2026)) -> RecWorld:
    region = make_small_region(session, prefix=prefix)
    city_h = registry.create_organization(session, SYS, code=f"{prefix}-CITY1", name="安平市第一人民医院", level="L3",
                                          org_type="general_hospital", division_code=region.city.code,
                                          grade_level=3, grade_class="A")
    county_b = registry.create_division(session, SYS, code=f"{prefix}0103", name="长乐县", level="county",
                                        parent_code=region.city.code)
    hosp_b = registry.create_organization(session, SYS, code=f"{prefix}-CH2", name="长乐县人民医院", level="L2",
                                          org_type="general_hospital", division_code=county_b.code)
    patient = make_patient(session, region, name="周桂兰", born=date(1958, 3, 9), org=region.county_hospital,
                           id_number=resident_id(date(1958, 3, 9), seq=224, county=f"{prefix}0102")).patient.id
    stranger = make_patient(session, region, name="吴国华", sex="M", born=date(1950, 7, 1), org=region.village_clinic,
                            id_number=resident_id(date(1950, 7, 1), seq=311, county=f"{prefix}0102")).patient.id
    for lab in (city_h, region.county_hospital, region.township_centre, hosp_b):
        session.add_all([Eqa(lab_org_id=lab.id, item=item, year=y, passed=True, provider="省临床检验中心",
                             recorded_by="tests") for item in EQA_ITEMS for y in eqa_years])
    session.flush()
    return RecWorld(region, city_h, hosp_b, patient, stranger,
                    doctor=staff(session, region.county_hospital.id, username=f"rdoc-{prefix}"),
                    outsider=staff(session, hosp_b.id, username=f"bdoc-{prefix}"),
                    village_doctor=staff(session, region.village_clinic.id, username=f"vdoc-r{prefix}"),
                    nurse=staff(session, region.county_hospital.id, username=f"rnurse-{prefix}", role="nurse"))


def add_report(session, *, patient: int, issuer, item: str | None, days_ago: float, now: datetime = NOW,
               values: tuple = (), mark: str | None = "HR", status: str = "final", category: str = "LAB",
               lab=None, conclusion: str | None = None, study: bool = False, display: str | None = None,
               value_item: str | None = "same", ordering=None) -> Report:
    """A report issued ``days_ago`` before ``now`` with observations ``values`` =
    ((code, value, unit, low, high, flag), ...) of ``value_item`` (the report's item by default)."""
    at = now - timedelta(days=days_ago)
    n = next(_fillers)
    report = Report(patient_id=patient, issuer_org_id=issuer.id, lab_org_id=lab.id if lab else None,
                    ordering_org_id=ordering.id if ordering else None, filler_number=f"F{n:06d}",
                    category=category, item=item, code=item or "LOCAL", display=display or (item or "检验"),
                    status=status, mark=mark, effective_at=at - timedelta(hours=2), issued_at=at,
                    conclusion=conclusion)
    session.add(report)
    session.flush()
    obs_item = item if value_item == "same" else value_item
    for seq, (code, value, unit, low, high, flag) in enumerate(values, start=1):
        session.add(Observation(report_id=report.id, patient_id=patient, seq=seq, item=obs_item, code=code,
                                display=code, value_num=value if isinstance(value, float | int) else None,
                                value_text=None if isinstance(value, float | int) else value, unit=unit,
                                ref_low=low, ref_high=high, flag=flag, status=status, effective_at=at,
                                issuer_org_id=issuer.id))
    if study:
        session.add(ImagingStudy(study_uid=f"1.2.826.0.1.3680043.10.{n}", report_id=report.id, patient_id=patient,
                                 issuer_org_id=issuer.id, modality="CT", body_site="HEAD", description="头部CT平扫",
                                 started_at=at - timedelta(hours=1), series_count=3, instance_count=240))
    session.commit()  # a savepoint of the test's transaction: a refused call's rollback keeps it
    return report


GLU = (("GLU", 5.4, "mmol/L", 3.9, 6.1, "N"),)
