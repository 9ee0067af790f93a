"""The shared-results targets of the endpoint matrix (test_endpoint_matrix.py), all in county A
of the security world: a patient registered at county A's hospital (so its clinicians and
nurses have a care relationship, and county A's public-health roles cover the patient), with
three reports the hospital issued — glucose (recognisable: mark HR, the lab's EQA passed, three
days old), HbA1c, and a head CT with its imaging study — written through the models; a pending
recognition decision from ``ordering.check_prior_results``; an HL7 ORU message of the hospital
ingested through ``ingest.ingest_hl7``; and the bodies, query strings and page forms of the
/api/results routes, the system Bundle and the results pages.

What decides access (read from the services):

- a report, an observation, an imaging study (``queries.check_read``): reading the patient's
  record (relationship, population scope, break-glass), or — for a reader without
  patient.read — results.submit in scope of the *issuing* organisation (the LIS/PACS of the
  facility reads back what it sent): ``RESULT_READ``. The timeline and trends name no issuer:
  the record's readers only (``RECORD_READ``);
- the recognition check, read and answer (``ordering``): results.order at the ordering
  organisation and patient.read on the patient;
- EQA imports (``reference.import_eqa``): results.reference, then each row's lab must lie in a
  *division* grant's scope (the commission's): a facility administrator's rows are refused in
  the report, 422 RES-100 with RES-107 rows, audited as denied — ``EQA_IMPORT``;
- local codes: results.reference in scope of ``org_id``; measures: results.stats;
- HL7 messages, Bundles and indexing a study: results.submit for the sending (issuing)
  organisation; the ingestion log: results.submit, confined to the organisations in scope.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import NamedTuple

from tests.factories import SYS, resident_id
from tests.results.ingest_world import lab_bundle, oru

from healthgrid.db import utcnow
from healthgrid.security.domain import ROLE_PERMS, Perm, Role

API = "/api/results"
NAME = "孙丽华"
BORN = date(1972, 5, 6)
ITEM = "GLU"
# A DICOMweb root where no PACS listens (the discard port): the world has no PACS.
NO_PACS = "http://127.0.0.1:9/dicom-web"
NEW_STUDY_UID = "1.2.826.0.1.3680043.8.498.91017"
# The messages carry potassium only: a new glucose result would make the pending decision stale.
POTASSIUM = ("2823-3", "钾", "4.1", "mmol/L", "3.5-5.3", "N")

# A result of a patient (queries.check_read): the record's readers, or the issuing facility's
# integration (results.submit in scope of the issuer: county A's hospital here).
RESULT_READ = "result:read"
# An EQA import: results.reference on a division grant covering the lab; on an organisation grant
# (a facility administrator) the rows are refused in the report (422 RES-100, rows RES-107).
EQA_IMPORT = "eqa:import"


class Raw(NamedTuple):
    """A body sent as it is, with its media type (an HL7 v2 message, a CSV file)."""

    content_type: str
    data: bytes


def rid() -> str:
    return resident_id(BORN, seq=562, county="910102")


def allowed(need: str, role: Role, record_read: bool) -> bool:
    """The rule of a results marker for ``role``; ``record_read``: the role reads the record."""
    perms = ROLE_PERMS[role]
    if need == RESULT_READ:
        return record_read or (Perm.RESULT_SUBMIT in perms and Perm.PATIENT_READ not in perms)
    if need == EQA_IMPORT:
        return Perm.RESULT_REFERENCE in perms and not organisation_grant(role)
    raise KeyError(need)


def organisation_grant(role: Role) -> bool:
    """The security world grants the facility roles on county A's hospital (conftest.scope_for)."""
    return role in (Role.CLINICIAN, Role.NURSE, Role.FACILITY_ADMIN)


def refused_in_report(need, role: Role, resp) -> bool:
    """A facility administrator's EQA rows: 422 RES-100, every row refused with RES-107."""
    if need != EQA_IMPORT or Perm.RESULT_REFERENCE not in ROLE_PERMS[role]:
        return False
    body = resp.json()
    return (resp.status_code, body.get("code")) == (422, "RES-100") and \
        set(body["detail"]["report"]["errors_by_code"]) == {"RES-107"}


# Past the check, what an allowed caller gets in a world without a PACS: the study has no
# DICOMweb root (404 RES-161); indexing asks the PACS only once the caller is allowed (502 RES-160).
PAST_THE_CHECK = {
    f"{API}/imaging/{{study_id}}/preview": (404, "RES-161"),
    "/results/imaging/{study_id}/preview": (404, "RES-161"),
    f"{API}/imaging": (502, "RES-160"),
}


def past_the_check(path: str, resp) -> bool | None:
    """None when the route answers normally; else whether ``resp`` is the expected answer."""
    expected = PAST_THE_CHECK.get(path)
    if expected is None:
        return None
    return resp.status_code == expected[0] and expected[1] in resp.text


# -- the targets ------------------------------------------------------------------------------------

def make_targets(session, r) -> dict:
    from healthgrid.patients import service as patients
    from healthgrid.results import ingest, ordering

    hospital = r.county_hospital
    pid = patients.register_patient(session, SYS, org_id=hospital.id, data=patients.PatientIn(
        name=NAME, sex="F", birth_date=BORN, phone="13766662222", resident_id=rid(),
        division_id=r.village.id)).patient.id
    values = {"patient_id": pid, **_reports(session, hospital, pid)}
    decision = ordering.check_prior_results(session, SYS, patient_id=pid, item=ITEM, ordering_org_id=hospital.id)
    assert decision.pending, decision  # the walk answers it: a recognisable result must be offered
    sent = ingest.ingest_hl7(session, SYS, message(r, "MX-T-1", "MXF-T-1"), channel="api")
    assert sent["status"] == "accepted", sent
    session.commit()
    return values | {"decision_id": decision.id, "message_id": sent["message_id"]}


def _reports(session, hospital, pid: int) -> dict:
    """Glucose (recognisable), HbA1c and a head CT with its study (no DICOMweb root)."""
    from healthgrid.results.models import Eqa, ImagingStudy, Observation, Report

    now = utcnow()
    out = {}
    plan = (("glu", "LAB", ITEM, "14749-6", "葡萄糖", 5.4, "mmol/L", 3.9, 6.1),
            ("hba1c", "LAB", "HBA1C", "4548-4", "糖化血红蛋白", 6.1, "%", 4.0, 6.0),
            ("ct", "RAD", "CT-HEAD", "30799-1", "头部CT平扫", None, None, None, None))
    for n, (key, category, item, code, display, value, unit, low, high) in enumerate(plan):
        at = now - timedelta(days=3, hours=n)
        report = Report(patient_id=pid, issuer_org_id=hospital.id, lab_org_id=hospital.id, filler_number=f"MX-{key}",
                        category=category, item=item, code_system="http://loinc.org", code=code, display=display,
                        status="final", mark="HR", effective_at=at - timedelta(hours=2), issued_at=at,
                        conclusion="颅内未见明显异常。" if value is None else None)
        session.add(report)
        session.flush()
        out[f"{key}_report_id"] = report.id
        if value is not None:
            obs = Observation(report_id=report.id, patient_id=pid, seq=1, item=item, code_system="http://loinc.org",
                              code=code, display=display, value_num=value, unit=unit, ref_low=low, ref_high=high,
                              flag="H" if value > high else "N", status="final", effective_at=at,
                              issuer_org_id=hospital.id)
            session.add(obs)
            session.flush()
            out.setdefault("observation_id", obs.id)
    study = ImagingStudy(study_uid="1.2.826.0.1.3680043.8.498.91016", report_id=out["ct_report_id"], patient_id=pid,
                         issuer_org_id=hospital.id, modality="CT", body_site="HEAD", description="头部CT平扫",
                         started_at=now - timedelta(days=3, hours=4), series_count=1, instance_count=24)
    session.add(study)
    year = now.year
    session.add_all([Eqa(lab_org_id=hospital.id, item=ITEM, year=y, passed=True, provider="省临床检验中心",
                         recorded_by="tests") for y in (year - 1, year)])
    session.flush()
    return out | {"report_id": out["glu_report_id"], "study_id": study.id}


def message(r, control: str, filler: str) -> bytes:
    """An ORU^R01 of county A's hospital (MSH-4 its code) about the target patient."""
    return oru(control=control, filler=filler, rid=rid(), name=NAME, facility=r.county_hospital.code,
               born=f"{BORN:%Y%m%d}", mrn="MR-9101", values=(POTASSIUM,))


# -- the walk's URLs and bodies ---------------------------------------------------------------------

def query(method: str, path: str, r, values: dict) -> str:
    if method != "GET":
        return ""
    today = utcnow().date()
    return {f"{API}/messages": "?status=accepted",
            f"{API}/eqa": f"?item={ITEM}",
            f"{API}/local-codes": f"?org_id={r.county_hospital.id}",
            f"{API}/measures": f"?since={today - timedelta(days=90)}&until={today}",
            f"{API}/patients/{{patient_id}}/trends": "?item=HBA1C"}.get(path, "")


def bodies(r, values: dict) -> dict:
    """A valid body per route. A second allowed role sends the same again: the local codes as
    stored (ignored)."""
    hospital = r.county_hospital
    year = utcnow().year - 1
    return {
        f"{API}/hl7": Raw("application/hl7-v2", message(r, "MX-W-1", "MXF-W-1")),
        f"{API}/recognition/check": {"patient_id": values.get("patient_id"), "item": ITEM,
                                     "ordering_org_id": hospital.id},
        f"{API}/recognition/{{decision_id}}/decision": {"accept_report_id": values.get("glu_report_id")},
        f"{API}/eqa": {"provider": "省临床检验中心", "records": [{"lab_org_id": hospital.id, "item": "K",
                                                             "year": year, "result": "合格"}]},
        f"{API}/eqa/csv": Raw("text/csv", f"lab_code,item,year,result\n{hospital.code},CREA,{year},合格\n".encode()),
        f"{API}/local-codes": {"org_id": hospital.id, "codes": [{"local_code": "GLU01", "item": ITEM}],
                               "replace": False},
        f"{API}/imaging": {"dicomweb_base": NO_PACS, "study_uid": NEW_STUDY_UID,
                           "patient_id": values.get("patient_id"), "issuer_org_id": hospital.id},
        "/fhir": lab_bundle(ident="MX-B-1", filler="MXF-B-1", org_id=hospital.id, rid=rid(), name=(NAME[0], NAME[1:]),
                            born=BORN.isoformat(), values=(("2823-3", "钾", 4.1),)),
    }


# The results resources through the generic FHIR routes (the providers decide, as above).
FHIR = {
    "/fhir/DiagnosticReport/{report_id}": "DiagnosticReport/{report_id}",
    "/fhir/DiagnosticReport?patient=Patient/{patient_id}": "DiagnosticReport/{report_id}",
    "/fhir/Observation/{observation_id}": "Observation/{observation_id}",
    "/fhir/Observation?subject=Patient/{patient_id}&code=14749-6": "Observation/{observation_id}",
    "/fhir/ImagingStudy/{study_id}": "ImagingStudy/{study_id}",
    "/fhir/ImagingStudy?patient=Patient/{patient_id}": "ImagingStudy/{study_id}",
}


# -- county B's staff ------------------------------------------------------------------------------

def county_b_refusals(r, values: dict) -> list[tuple[str, str, str, object, int, str]]:
    """(who, method, url, body, status, code) of county B's clinician and facility administrator
    (surveillance_matrix.county_b_tokens) reaching for county A's results and reference data.
    A message naming county A's hospital is refused in its NAK (422, SEC-103 in the report); a
    message of the log outside one's organisations is not found (RES-209); an EQA row of county
    A's lab is refused row by row (RES-100)."""
    a = r.county_hospital.id
    report, decision = f"{API}/reports/{values['report_id']}", f"{API}/recognition/{values['decision_id']}"
    check = {"patient_id": values["patient_id"], "item": ITEM, "ordering_org_id": a}
    codes = {"org_id": a, "codes": [{"local_code": "GLU01", "item": ITEM}], "replace": False}
    study = {"dicomweb_base": NO_PACS, "study_uid": NEW_STUDY_UID, "patient_id": values["patient_id"],
             "issuer_org_id": a}
    eqa = {"records": [{"lab_org_id": a, "item": "K", "year": utcnow().year - 1, "result": "合格"}]}
    return [
        ("clinician", "GET", report, None, 403, "SEC-104"),
        ("clinician", "GET", f"{API}/imaging/{values['study_id']}", None, 403, "SEC-104"),
        ("clinician", "GET", f"{API}/patients/{values['patient_id']}/timeline", None, 403, "SEC-104"),
        ("clinician", "GET", f"/fhir/Observation/{values['observation_id']}", None, 403, "SEC-104"),
        ("clinician", "POST", f"{API}/recognition/check", check, 403, "SEC-103"),
        ("clinician", "GET", decision, None, 403, "SEC-103"),
        ("clinician", "POST", f"{decision}/decision", {"accept_report_id": values["glu_report_id"]}, 403, "SEC-103"),
        ("admin", "GET", report, None, 403, "SEC-102"),
        ("admin", "GET", f"{API}/imaging/{values['study_id']}/preview", None, 403, "SEC-102"),
        ("admin", "GET", f"{API}/messages/{values['message_id']}", None, 404, "RES-209"),
        ("admin", "POST", f"{API}/hl7", Raw("application/hl7-v2", message(r, "MX-B-9", "MXF-B-9")), 422, "SEC-103"),
        ("admin", "POST", "/fhir", lab_bundle(ident="MX-B-9", filler="MXF-B-9", org_id=a, rid=rid(),
                                              values=(("2823-3", "钾", 4.1),)), 403, "SEC-103"),
        ("admin", "POST", f"{API}/imaging", study, 403, "SEC-103"),
        ("admin", "GET", f"{API}/local-codes?org_id={a}", None, 403, "SEC-103"),
        ("admin", "PUT", f"{API}/local-codes", codes, 403, "SEC-103"),
        ("admin", "GET", f"{API}/eqa?lab_org_id={a}", None, 403, "SEC-103"),
        ("admin", "POST", f"{API}/eqa", eqa, 422, "RES-100"),
        ("admin", "GET", f"{API}/measures?since=2026-01-01&until=2026-03-31&org_id={a}", None, 403, "SEC-103"),
    ]


# -- the pages --------------------------------------------------------------------------------------

# Pages of the results routers that show no patient data: left out of the web walk.
NOT_PERSONAL = {"/results/measures", "/results/timeline/assets/{name}"}
WEB_QUERIES = {"/results/order": "?patient={patient_id}&org={org_id}"}


def web_forms(r, values: dict) -> dict:
    return {
        "/patients/{patient_id}/results/break-glass": {"reason": "急诊抢救，需要查看既往检验结果"},
        "/results/order": {"org": str(r.county_hospital.id), "patient_id": str(values["patient_id"]), "item": ITEM},
        "/results/order/{decision_id}": {"action": "accept", "report_id": str(values["glu_report_id"])},
    }
