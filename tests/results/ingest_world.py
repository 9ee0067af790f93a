"""A small Hubei for the ingestion tests: the province, Wuhan and three of its districts, the
three facilities that sent the sample messages in ``messages/`` (their MSH-4 codes), a doctor
of the first hospital, each facility's administrator (the LIS/RIS integration: results.submit
for its own organisation only), and helpers to read the samples and build ORU messages."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import func, select
from tests.factories import SYS, resident_id

from healthgrid.registry import service as registry
from healthgrid.security import service as security
from healthgrid.security.domain import Actor

MESSAGES = Path(__file__).parent / "messages"
_seq = itertools.count(101, 2)


def sample(name: str) -> bytes:
    return (MESSAGES / name).read_bytes()


@dataclass
class Hubei:
    first: object  # 武汉市第一医院 420100001
    renmin: object  # 武汉大学人民医院 420100002
    qianchuan: object  # 黄陂区前川街社区卫生服务中心 420116101
    doctor: object  # a doctor of the first hospital, licence 110420100000001
    admin_first: Actor  # the first hospital's LIS integration (facility_admin)
    admin_renmin: Actor
    clinician: Actor  # a clinician of the first hospital (no results.submit)


def user(session, username: str, role: str, org) -> Actor:
    u = security.create_user(session, SYS, username=username, display_name=username, password="Ingest-pass-123",
                             grants=[security.parse_grant(role, "organization", org.id)], org_id=org.id)
    return security.actor_for(session, u, surface="api", client="127.0.0.1", mfa=True)


def make_hubei(session) -> Hubei:
    prov = registry.create_division(session, SYS, code="420000", name="湖北省", level="province")
    city = registry.create_division(session, SYS, code="420100", name="武汉市", level="city", parent_code=prov.code)
    places = {}
    for code, name in (("420102", "江岸区"), ("420106", "武昌区"), ("420116", "黄陂区")):
        places[code] = registry.create_division(session, SYS, code=code, name=name, level="county",
                                                parent_code=city.code)
    first = registry.create_organization(session, SYS, code="420100001", name="武汉市第一医院", level="L3",
                                         org_type="general_hospital", division_code="420102")
    renmin = registry.create_organization(session, SYS, code="420100002", name="武汉大学人民医院", level="L3",
                                          org_type="general_hospital", division_code="420106")
    qc = registry.create_organization(session, SYS, code="420116101", name="黄陂区前川街社区卫生服务中心",
                                      level="L1", org_type="community_health_centre", division_code="420116")
    registry.add_department(session, SYS, org_id=first.id, code="03.03")
    doctor = registry.create_practitioner(session, SYS, licence_no="110420100000001", name="李华", sex="M",
                                          title="attending_physician", specialty_code="03.03")
    registry.add_practice_site(session, SYS, practitioner_id=doctor.id, org_id=first.id, department_code="03.03",
                               is_primary=True)
    return Hubei(first, renmin, qc, doctor,
                 admin_first=user(session, "lis-first", "facility_admin", first),
                 admin_renmin=user(session, "ris-renmin", "facility_admin", renmin),
                 clinician=user(session, "dr-first", "clinician", first))


def oru(*, control: str, filler: str, rid: str | None = None, name: str = "赵敏", facility: str = "420100001",
        status: str = "F", obx_status: str = "F", values: tuple = (("2823-3", "钾", "4.1", "mmol/L", "3.5-5.3", "N"),
                                                                     ("14749-6", "葡萄糖", "5.2", "mmol/L", "3.9-6.1",
                                                                      "N")),
        mrn: str = "MR-7001", orc_facility: str = "", provider: str = "110420100000001^李^华",
        born: str = "19800101", extra: str = "", pid: str | None = None) -> bytes:
    """An ORU^R01 (v2.5, UTF-8) of the first hospital with LOINC-coded numeric results."""
    rid = rid or resident_id(date(1980, 1, 1), seq=402, county="420102")
    segs = [f"MSH|^~\\&|LIS|{facility}^{facility}^L|HEALTHGRID|HG|20250314093512||ORU^R01^ORU_R01|{control}|P|2.5"
            f"|||AL|NE|CHN|UNICODE UTF-8",
            pid or f"PID|1||{rid}^^^公安部^ID~{mrn}^^^WHYY^MR||{name[0]}^{name[1:]}||{born}|F",
            "|".join(["ORC", "RE", f"P-{filler}", filler] + [""] * 17 + [orc_facility]),
            f"OBR|1|P-{filler}|{filler}|CHEM^生化^L|||20250314072000|||||||||{provider}||||||20250314093000||CH|{status}"]
    for i, (loinc, text, value, unit, rng, flag) in enumerate(values, 1):
        vtype = "NM" if value.replace(".", "", 1).lstrip("-").isdigit() else "ST"
        segs.append(f"OBX|{i}|{vtype}|{loinc}^{text}^LN||{value}|{unit}|{rng}|{flag}|||{obx_status}|||20250314090000")
    if extra:
        segs.append(extra)
    return ("\r".join(segs) + "\r").encode("utf-8")


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


RESIDENT = "https://healthgrid.example/fhir/NamingSystem/resident-id"


def lab_bundle(*, kind: str = "transaction", ident: str | None = "B-1", filler: str = "F-100",
               org_id: int | None = None, rid: str | None = None,
               values=(("2823-3", "钾", 4.1), ("2951-2", "钠", 140.0)), status: str = "final",
               name=("钱", "多多"), born: str = "1975-06-01") -> dict:
    """A transaction (or batch) Bundle: a Patient, a DiagnosticReport and its Observations,
    all POSTed and referring to each other by urn:uuid."""
    rid = rid or resident_id(date.fromisoformat(born), seq=234, county="420102")
    obs = [{"fullUrl": f"urn:uuid:obs-{filler}-{i}", "request": {"method": "POST", "url": "Observation"},
            "resource": {"resourceType": "Observation", "status": status,
                         "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": text}]},
                         "subject": {"reference": "urn:uuid:pat-1"}, "effectiveDateTime": "2025-03-14T09:00:00+08:00",
                         "valueQuantity": {"value": value, "unit": "mmol/L"},
                         "referenceRange": [{"low": {"value": 3.5}, "high": {"value": 5.3}}],
                         "interpretation": [{"coding": [{"code": "N"}]}]}}
           for i, (code, text, value) in enumerate(values)]
    report = {"resourceType": "DiagnosticReport", "identifier": [{"value": filler}], "status": status,
              "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "CH"}]}],
              "code": {"coding": [{"system": "http://loinc.org", "code": "24326-1", "display": "电解质"}]},
              "subject": {"reference": "urn:uuid:pat-1"}, "issued": "2025-03-14T09:30:00+08:00",
              "result": [{"reference": o["fullUrl"]} for o in obs]}
    if org_id is not None:
        report["performer"] = [{"reference": f"Organization/{org_id}"}]
    entries = [{"fullUrl": "urn:uuid:pat-1", "request": {"method": "POST", "url": "Patient"},
                "resource": {"resourceType": "Patient", "identifier": [{"system": RESIDENT, "value": rid}],
                             "name": [{"family": name[0], "given": [name[1]]}], "gender": "female",
                             "birthDate": born}},
               {"fullUrl": f"urn:uuid:rep-{filler}", "request": {"method": "POST", "url": "DiagnosticReport"},
                "resource": report}, *obs]
    out = {"resourceType": "Bundle", "type": kind, "entry": entries}
    if ident:
        out["identifier"] = {"system": "urn:healthgrid:test", "value": ident}
    return out
