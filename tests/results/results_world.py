"""Hand-made shared results, written through the models (the ingestion pipeline is tested on
its own): a diabetic patient followed for a year at a county hospital and a township health
centre, which reports in conventional units and local codes — HbA1c four times (once in IFCC
mmol/mol), creatinine twice (once in mg/dL), glucose, a CBC panel, a cancelled value, a head
CT with its imaging study — and one report of another patient."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from healthgrid.results.models import ImagingStudy, Observation, Report

LOINC = "http://loinc.org"


def at(day: str, hour: int = 9) -> datetime:
    """A day at ``hour`` China time, as UTC."""
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+08:00").astimezone(UTC)


@dataclass
class Results:
    patient_id: int
    hospital_id: int
    township_id: int
    reports: dict[str, int] = field(default_factory=dict)
    observations: dict[str, int] = field(default_factory=dict)
    study_id: int = 0
    study_uid: str = ""
    other_report: int = 0


def _report(session: Session, *, patient_id: int, issuer: int, filler: str, category: str, item: str | None,
            code: str, system: str | None, display: str, issued: datetime, status: str = "final",
            mark: str | None = "HR", conclusion: str | None = None, ordering: int | None = None,
            placer: str | None = None) -> Report:
    row = Report(patient_id=patient_id, issuer_org_id=issuer, lab_org_id=issuer, ordering_org_id=ordering,
                 filler_number=filler, placer_number=placer, category=category, item=item, code_system=system,
                 code=code, display=display, status=status, mark=mark, effective_at=issued - timedelta(hours=3),
                 issued_at=issued, conclusion=conclusion)
    session.add(row)
    session.flush()
    return row


def _obs(session: Session, report: Report, seq: int, *, item: str | None, code: str, system: str | None,
         display: str, value: float | None = None, text: str | None = None, unit: str | None = None,
         low: float | None = None, high: float | None = None, flag: str | None = None,
         status: str = "final") -> Observation:
    row = Observation(report_id=report.id, patient_id=report.patient_id, seq=seq, item=item, code_system=system,
                      code=code, display=display, value_num=value, value_text=text, unit=unit, ref_low=low,
                      ref_high=high, flag=flag,
                      status=status, effective_at=report.effective_at, issuer_org_id=report.issuer_org_id)
    session.add(row)
    session.flush()
    return row


def make_results(session: Session, *, patient_id: int, hospital_id: int, township_id: int,
                 other_patient_id: int, tag: str = "T") -> Results:
    """The world above; ``tag`` keeps report numbers unique when it is built twice in one database."""
    w = Results(patient_id, hospital_id, township_id)
    hba1c = [("2025-01-10", hospital_id, 8.1, "%", 4.0, 6.0, "H"), ("2025-04-12", township_id, 58, "mmol/mol", 20,
             42, "H"), ("2025-07-15", hospital_id, 6.9, "%", 4.0, 6.0, "H"), ("2025-10-20", hospital_id, 5.8, "%",
                                                                           4.0, 6.0, "N")]
    for n, (day, org, value, unit, low, high, flag) in enumerate(hba1c):
        local = org == township_id
        r = _report(session, patient_id=patient_id, issuer=org, filler=f"{tag}-A1C-{n}", category="LAB",
                    item="HBA1C", code="GHB" if local else "4548-4", system="L" if local else LOINC,
                    display="糖化血红蛋白", issued=at(day, 15), ordering=hospital_id, placer=f"{tag}-ORD-{n}")
        w.reports[f"hba1c{n}"] = r.id
        w.observations[f"hba1c{n}"] = _obs(session, r, 1, item="HBA1C", code="GHB" if local else "4548-4",
                                           system="L" if local else LOINC, display="糖化血红蛋白", value=value,
                                           unit=unit, low=low, high=high, flag=flag).id
    chem = _report(session, patient_id=patient_id, issuer=township_id, filler=f"{tag}-CHEM-1", category="LAB",
                   item=None, code="SH01", system="L", display="生化组合", issued=at("2025-04-12", 16))
    w.reports["chem"] = chem.id
    w.observations["crea_mgdl"] = _obs(session, chem, 1, item="CREA", code="CR01", system="L", display="肌酐",
                                       value=1.3, unit="mg/dL", low=0.6, high=1.1, flag="H").id
    w.observations["glu_mgdl"] = _obs(session, chem, 2, item="GLU", code="GLU01", system="L", display="葡萄糖",
                                      value=126, unit="mg/dL", low=70, high=110, flag="H").id
    w.observations["cancelled"] = _obs(session, chem, 3, item="GLU", code="GLU01", system="L", display="葡萄糖",
                                       value=999, unit="mmol/L", status="cancelled").id
    w.observations["hbsag"] = _obs(session, chem, 4, item="HBSAG", code="HBSAG01", system="L",
                                   display="乙肝表面抗原", text="阴性", flag="N").id
    cbc = _report(session, patient_id=patient_id, issuer=hospital_id, filler=f"{tag}-CBC-1", category="LAB",
                  item="CBC", code="58410-2", system=LOINC, display="血细胞分析", issued=at("2025-01-10", 15))
    w.reports["cbc"] = cbc.id
    w.observations["wbc"] = _obs(session, cbc, 1, item="CBC", code="6690-2", system=LOINC, display="白细胞计数",
                                 value=11.2, unit="10*9/L", low=3.5, high=9.5, flag="H").id
    w.observations["hgb"] = _obs(session, cbc, 2, item="CBC", code="718-7", system=LOINC, display="血红蛋白",
                                 value=128, unit="g/L", low=115, high=150, flag="N").id
    crea = _report(session, patient_id=patient_id, issuer=hospital_id, filler=f"{tag}-CREA-1", category="LAB",
                   item="CREA", code="14682-9", system=LOINC, display="肌酐", issued=at("2025-07-15", 16))
    w.reports["crea"] = crea.id
    w.observations["crea"] = _obs(session, crea, 1, item="CREA", code="14682-9", system=LOINC, display="肌酐",
                                  value=96, unit="umol/L", low=57, high=111, flag="N").id
    ct = _report(session, patient_id=patient_id, issuer=hospital_id, filler=f"{tag}-CT-1", category="RAD",
                 item="CT-HEAD", code="30799-1", system=LOINC, display="头部CT平扫", issued=at("2025-07-15", 17),
                 conclusion="颅内未见明显异常。")
    w.reports["ct"] = ct.id
    w.study_uid = f"1.2.826.0.1.3680043.8.498.{zlib.crc32(tag.encode())}.{patient_id}"
    study = ImagingStudy(study_uid=w.study_uid, report_id=ct.id, patient_id=patient_id, issuer_org_id=hospital_id,
                         accession_number=f"{tag}CT1", modality="CT", body_site="HEAD", description="头部CT平扫",
                         started_at=at("2025-07-15", 14), series_count=1, instance_count=24,
                         dicomweb_base="http://127.0.0.1:9/dicom-web", pacs_study_id="0a1b2c3d-00000000")
    session.add(study)
    session.flush()
    w.study_id = study.id
    other = _report(session, patient_id=other_patient_id, issuer=hospital_id, filler=f"{tag}-OTHER-1",
                    category="LAB", item="HBA1C", code="4548-4", system=LOINC, display="糖化血红蛋白",
                    issued=at("2025-05-05", 10))
    _obs(session, other, 1, item="HBA1C", code="4548-4", system=LOINC, display="糖化血红蛋白", value=5.2, unit="%",
         low=4.0, high=6.0, flag="N")
    w.other_report = other.id
    return w


# -- the people around it -------------------------------------------------------------------------

@dataclass
class World:
    region: object
    results: Results
    patient: int
    other_patient: int
    id_number: str
    doctor: object  # a clinician where the patient is registered (a care relationship)
    nurse: object  # a nurse there: reads records, names masked
    stranger: object  # a clinician at a hospital with no relationship to the patient
    lis: object  # the county hospital's LIS integration (results.submit)
    township_lis: object
    resident: object  # the patient's own account


def staff(session: Session, org_id: int, *, username: str, role: str = "clinician") -> object:
    from tests.factories import SYS

    from healthgrid.security import service as security

    user = security.create_user(session, SYS, username=username, display_name="用户", password="Results-pass-123",
                                grants=[security.parse_grant(role, "organization", org_id)], org_id=org_id)
    return security.actor_for(session, user, surface="api", client=None, mfa=True)


def make_world(session: Session, *, prefix: str = "93") -> World:
    """A small region, the patient (registered at the village clinic) and the others."""
    from datetime import date

    from tests.factories import SYS, make_patient, make_small_region, resident_id

    from healthgrid.registry import service as registry
    from healthgrid.security import service as security

    region = make_small_region(session, prefix=prefix)
    number = resident_id(date(1961, 3, 8), seq=452, county=f"{prefix}0102")
    patient = make_patient(session, region, name="欧阳秀英", born=date(1961, 3, 8), id_number=number,
                           org=region.village_clinic).patient.id
    other = make_patient(session, region, name="赵德明", sex="M", born=date(1955, 9, 1),
                         id_number=resident_id(date(1955, 9, 1), seq=453, county=f"{prefix}0102"),
                         org=region.village_clinic).patient.id
    far = registry.create_organization(session, SYS, code=f"{prefix}-CH2", name="永宁县第二人民医院", level="L2",
                                       org_type="general_hospital", division_code=region.county.code)
    results = make_results(session, patient_id=patient, hospital_id=region.county_hospital.id,
                           township_id=region.township_centre.id, other_patient_id=other, tag=prefix)
    user = security.create_user(session, SYS, username=f"resident-{prefix}", display_name="欧阳秀英",
                                password="Resident-pass-1", grants=[security.parse_grant("resident", "self", None)],
                                id_number=number)
    return World(
        region=region, results=results, patient=patient, other_patient=other, id_number=number,
        doctor=staff(session, region.village_clinic.id, username=f"doc-{prefix}"),
        nurse=staff(session, region.village_clinic.id, username=f"nurse-{prefix}", role="nurse"),
        stranger=staff(session, far.id, username=f"far-{prefix}"),
        lis=staff(session, region.county_hospital.id, username=f"lis-{prefix}", role="facility_admin"),
        township_lis=staff(session, region.township_centre.id, username=f"tlis-{prefix}", role="facility_admin"),
        resident=security.actor_for(session, user, surface="api", client=None, mfa=False))
