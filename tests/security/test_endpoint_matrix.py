"""Every registered API and FHIR endpoint, walked anonymously and with each role (a real
API token per role, scoped as in tests/security/conftest.py): allowed or denied as the
table says. A new endpoint without a row here fails the walk."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.routing import APIRoute
from tests.factories import SYS
from tests.security import results_matrix as res
from tests.security import surveillance_matrix as surv
from tests.security.conftest import PASSWORD, actor_of

from healthgrid.security import access, service
from healthgrid.security.domain import ROLE_PERMS, AuditAction, Perm, Role, ScopeKind

ANY = "any"  # any logged-in user
PUBLIC = "public"
# A patient's record: the permission, and a relationship (registered at the reader's facility)
# or a population scope over the patient's facilities.
RECORD_READ = "record:read"
RECORD_WRITE = "record:write"
# A report card (传染病报告卡, card_queries.check_card): surveillance.report in scope of the
# reporting organisation, or surveillance.review over it (the reviewing CDC; reading, also the
# CDC of the patient's county). The targets are reported by county A's hospital.
CARD = "card"

# (method, path template) -> what it needs; a tuple needs all of its items. Path parameters
# are filled from the world, always with a target inside county A, where every scoped role's
# grant reaches.
Need = str | Perm | tuple[str | Perm, ...]
TABLE: dict[tuple[str, str], Need] = {
    ("GET", "/fhir/metadata"): PUBLIC,
    ("GET", "/api/docs"): PUBLIC,  # the Swagger UI page; every call it makes needs a token
    ("GET", "/fhir/{resource_type}"): Perm.REGISTRY_READ,
    ("POST", "/fhir/{resource_type}/_search"): Perm.REGISTRY_READ,
    ("GET", "/fhir/{resource_type}/_search"): Perm.REGISTRY_READ,
    ("GET", "/fhir/{resource_type}/{resource_id}"): Perm.REGISTRY_READ,
    # FHIR writes and operations: the route needs what reads need; a provider that writes
    # personal data (Patient) checks, scopes and audits in its service. Walked here on
    # Organization, which answers 405 / 400 (FHIR-013) to every role past authentication.
    ("POST", "/fhir/{resource_type}"): Perm.REGISTRY_READ,
    ("PUT", "/fhir/{resource_type}/{resource_id}"): Perm.REGISTRY_READ,
    ("POST", "/fhir/{resource_type}/${operation}"): Perm.REGISTRY_READ,
    ("GET", "/fhir/{resource_type}/${operation}"): Perm.REGISTRY_READ,
    ("GET", "/api/security/me"): ANY,
    ("GET", "/api/security/me/access-log"): Perm.SELF_RECORD,
    ("POST", "/api/security/me/password"): ANY,
    ("GET", "/api/security/me/tokens"): ANY,
    ("POST", "/api/security/me/tokens"): ANY,
    ("DELETE", "/api/security/tokens/{token_id}"): Perm.USER_MANAGE,
    ("GET", "/api/security/users"): Perm.USER_READ,
    ("POST", "/api/security/users"): Perm.USER_MANAGE,
    ("GET", "/api/security/users/{user_id}"): Perm.USER_READ,
    ("POST", "/api/security/users/{user_id}/grants"): Perm.USER_MANAGE,
    ("DELETE", "/api/security/users/{user_id}/grants/{grant_id}"): Perm.USER_MANAGE,
    ("POST", "/api/security/users/{user_id}/active"): Perm.USER_MANAGE,
    ("GET", "/api/security/audit"): Perm.AUDIT_READ,
    ("POST", "/api/security/audit/{audit_id}/review"): Perm.AUDIT_REVIEW,
    ("GET", "/api/security/audit/verify"): Perm.AUDIT_READ,
    ("GET", "/api/registry/divisions"): Perm.REGISTRY_READ,
    ("POST", "/api/registry/divisions"): Perm.REGION_WRITE,
    ("GET", "/api/registry/divisions/{code}"): Perm.REGISTRY_READ,
    ("GET", "/api/registry/divisions/{code}/organizations"): Perm.REGISTRY_READ,
    ("GET", "/api/registry/organizations"): Perm.REGISTRY_READ,
    ("POST", "/api/registry/organizations"): Perm.REGION_WRITE,
    ("GET", "/api/registry/organizations/{org_id}"): Perm.REGISTRY_READ,
    ("PATCH", "/api/registry/organizations/{org_id}"): Perm.FACILITY_WRITE,
    ("POST", "/api/registry/organizations/{org_id}/departments"): Perm.FACILITY_WRITE,
    ("POST", "/api/registry/organizations/{org_id}/services"): Perm.FACILITY_WRITE,
    ("POST", "/api/registry/organizations/{org_id}/equipment"): Perm.FACILITY_WRITE,
    ("POST", "/api/registry/organizations/{org_id}/key-specialties"): Perm.REGION_WRITE,
    ("GET", "/api/registry/alliances"): Perm.REGISTRY_READ,
    ("POST", "/api/registry/alliances"): Perm.REGION_WRITE,
    ("GET", "/api/registry/alliances/{alliance_id}"): Perm.REGISTRY_READ,
    ("POST", "/api/registry/alliances/{alliance_id}/members"): Perm.REGION_WRITE,
    ("GET", "/api/registry/practitioners"): Perm.REGISTRY_READ,
    ("POST", "/api/registry/practitioners"): Perm.FACILITY_WRITE,
    ("POST", "/api/registry/practitioners/{practitioner_id}/sites"): Perm.FACILITY_WRITE,
    ("POST", "/api/patients"): Perm.PATIENT_WRITE,
    ("GET", "/api/patients"): Perm.PATIENT_READ,
    ("POST", "/api/patients/match"): Perm.PATIENT_READ,
    ("GET", "/api/patients/{patient_id}"): RECORD_READ,
    ("PUT", "/api/patients/{patient_id}"): RECORD_WRITE,
    ("GET", "/api/patients/{patient_id}/timeline"): RECORD_READ,
    ("GET", "/api/patients/reviews"): Perm.PATIENT_MERGE,
    ("GET", "/api/patients/reviews/{review_id}"): Perm.PATIENT_MERGE,
    ("POST", "/api/patients/reviews/{review_id}/decision"): Perm.PATIENT_MERGE,
    ("POST", "/api/patients/merges"): Perm.PATIENT_MERGE,
    ("POST", "/api/patients/merges/{merge_id}/unmerge"): Perm.PATIENT_MERGE,
    # scheduling: places and schedules are public to every user; booking for a patient needs
    # appointment.book at the facility (or a care relationship); a resident books for self.
    ("GET", "/api/scheduling/slots"): Perm.REGISTRY_READ,
    ("GET", "/api/scheduling/slots/{slot_id}"): Perm.REGISTRY_READ,
    ("GET", "/api/scheduling/schedules"): Perm.REGISTRY_READ,
    ("GET", "/api/scheduling/schedules/{schedule_id}"): Perm.REGISTRY_READ,
    ("GET", "/api/scheduling/schedules/{schedule_id}/sessions"): Perm.REGISTRY_READ,
    ("POST", "/api/scheduling/schedules"): Perm.SCHEDULE_MANAGE,
    ("PUT", "/api/scheduling/schedules/{schedule_id}/templates"): Perm.SCHEDULE_MANAGE,
    ("POST", "/api/scheduling/closures"): Perm.SCHEDULE_MANAGE,
    ("PUT", "/api/scheduling/quota-policies"): Perm.SCHEDULE_MANAGE,
    ("GET", "/api/scheduling/quota-policies"): Perm.REGISTRY_READ,
    ("POST", "/api/scheduling/appointments"): Perm.APPOINTMENT_BOOK,
    ("GET", "/api/scheduling/appointments"): Perm.APPOINTMENT_BOOK,
    ("GET", "/api/scheduling/appointments/mine"): ANY,
    ("GET", "/api/scheduling/appointments/{appointment_id}"): RECORD_READ,
    ("POST", "/api/scheduling/appointments/{appointment_id}/cancel"): Perm.APPOINTMENT_BOOK,
    ("POST", "/api/scheduling/appointments/{appointment_id}/check-in"): Perm.APPOINTMENT_BOOK,
    ("POST", "/api/scheduling/appointments/{appointment_id}/complete"): Perm.APPOINTMENT_BOOK,
    ("POST", "/api/scheduling/appointments/{appointment_id}/accept"): Perm.APPOINTMENT_BOOK,
    ("POST", "/api/scheduling/appointments/{appointment_id}/rebook"): Perm.APPOINTMENT_BOOK,
    ("GET", "/api/scheduling/appointments/{appointment_id}/rebooking-options"): RECORD_READ,
    ("GET", "/api/scheduling/day-list"): Perm.APPOINTMENT_BOOK,
    ("POST", "/api/scheduling/waitlist"): Perm.APPOINTMENT_BOOK,
    ("DELETE", "/api/scheduling/waitlist/{entry_id}"): Perm.APPOINTMENT_BOOK,
    ("POST", "/api/scheduling/family"): Perm.SELF_RECORD,
    ("GET", "/api/scheduling/family"): ANY,
    ("POST", "/api/scheduling/exam-plans"): Perm.APPOINTMENT_BOOK,
    ("POST", "/api/scheduling/exam-bookings"): Perm.APPOINTMENT_BOOK,
    # referrals: the desk's staff act for their side; reading one needs a side or the record
    ("POST", "/api/referrals"): Perm.REFERRAL_WRITE,
    ("GET", "/api/referrals"): Perm.REFERRAL_WRITE,
    ("POST", "/api/referrals/criteria"): Perm.REFERRAL_WRITE,
    ("GET", "/api/referrals/reserved-places"): Perm.REGISTRY_READ,
    ("GET", "/api/referrals/follow-ups"): Perm.REFERRAL_WRITE,
    ("PUT", "/api/referrals/intake-rules"): Perm.SCHEDULE_MANAGE,
    ("GET", "/api/referrals/{referral_id}"): RECORD_READ,
    ("GET", "/api/referrals/measures"): Perm.REFERRAL_STATS,
    **{("POST", f"/api/referrals/{{referral_id}}/{step}"): Perm.REFERRAL_WRITE
       for step in ("submit", "accept", "schedule", "reject", "cancel", "arrive", "start-care", "complete",
                    "no-show", "receive", "back-referral", "follow-up", "close", "redirect")},
    # surveillance (传染病监测预警). Cards: the reporting facility's and its reviewing CDC's; a
    # card (or its prefill) naming a patient of the index needs reading that patient's record.
    ("POST", "/api/surveillance/cards"): (Perm.CASE_REPORT, RECORD_READ),
    ("GET", "/api/surveillance/cards"): CARD,
    ("GET", "/api/surveillance/cards/prefill"): (Perm.CASE_REPORT, RECORD_READ),
    ("GET", "/api/surveillance/cards/{card_id}"): CARD,
    ("POST", "/api/surveillance/cards/{card_id}/correction"): CARD,
    ("POST", "/api/surveillance/cards/{card_id}/deletion"): CARD,
    ("POST", "/api/surveillance/cards/{card_id}/review"): Perm.CASE_REVIEW,
    # Feeds: the places of the sender's grant (a row outside them is refused in the batch's
    # report, SURV-512, and audited as denied); the targets are county A itself.
    ("GET", "/api/surveillance/feeds"): Perm.FEED_SUBMIT,
    ("GET", "/api/surveillance/feeds/batches"): Perm.FEED_SUBMIT,
    ("POST", "/api/surveillance/feeds/{feed}"): Perm.FEED_SUBMIT,
    ("POST", "/api/surveillance/feeds/{feed}/csv"): Perm.FEED_SUBMIT,
    # Signals and warning products: the CDC of the signal's county (signal_queries.check_access).
    ("GET", "/api/surveillance/signals"): Perm.SIGNAL_MANAGE,
    ("GET", "/api/surveillance/signals/{signal_id}"): Perm.SIGNAL_MANAGE,
    ("POST", "/api/surveillance/signals/{signal_id}/{action}"): Perm.SIGNAL_MANAGE,
    ("POST", "/api/surveillance/signals/{signal_id}/warnings"): Perm.SIGNAL_MANAGE,
    ("GET", "/api/surveillance/signals/{signal_id}/warnings"): Perm.SIGNAL_MANAGE,
    ("GET", "/api/surveillance/warnings/{warning_id}"): Perm.SIGNAL_MANAGE,
    ("PATCH", "/api/surveillance/warnings/{warning_id}"): Perm.SIGNAL_MANAGE,
    ("POST", "/api/surveillance/warnings/{warning_id}/issue"): Perm.SIGNAL_MANAGE,
    ("POST", "/api/surveillance/detection/run"): Perm.SIGNAL_MANAGE,
    # The dashboard: counts of the counties in scope, no patient data.
    ("GET", "/api/surveillance/dashboard/summary"): Perm.SURVEILLANCE_STATS,
    ("GET", "/api/surveillance/dashboard/curve"): Perm.SURVEILLANCE_STATS,
    ("GET", "/api/surveillance/dashboard/map"): Perm.SURVEILLANCE_STATS,
    ("GET", "/api/surveillance/dashboard/kpis"): Perm.SURVEILLANCE_STATS,
    # shared results (检查检验结果互认; what the services decide: results_matrix.py). Sending:
    # results.submit for the issuing organisation (a message of another is refused in its NAK,
    # SEC-103); the ingestion log: the organisations in scope. The system Bundle is a FHIR route.
    ("POST", "/api/results/hl7"): Perm.RESULT_SUBMIT,
    ("GET", "/api/results/messages"): Perm.RESULT_SUBMIT,
    ("GET", "/api/results/messages/{message_id}"): Perm.RESULT_SUBMIT,
    ("POST", "/fhir"): (Perm.REGISTRY_READ, Perm.RESULT_SUBMIT),
    ("POST", "/api/results/imaging"): Perm.RESULT_SUBMIT,
    # The decision at order time: results.order at the ordering organisation, and the record.
    ("POST", "/api/results/recognition/check"): (Perm.RESULT_ORDER, RECORD_READ),
    ("GET", "/api/results/recognition/{decision_id}"): (Perm.RESULT_ORDER, RECORD_READ),
    ("POST", "/api/results/recognition/{decision_id}/decision"): (Perm.RESULT_ORDER, RECORD_READ),
    # Reference data: EQA results (the commission's divisions; a facility's rows are refused in
    # the report) and a facility's local codes; the measures carry no patient data.
    ("GET", "/api/results/eqa"): Perm.RESULT_REFERENCE,
    ("POST", "/api/results/eqa"): res.EQA_IMPORT,
    ("POST", "/api/results/eqa/csv"): res.EQA_IMPORT,
    ("GET", "/api/results/local-codes"): Perm.RESULT_REFERENCE,
    ("PUT", "/api/results/local-codes"): Perm.RESULT_REFERENCE,
    ("GET", "/api/results/measures"): Perm.RESULT_STATS,
    # A patient's results: the record's readers; one report or study also its issuer's LIS/PACS.
    ("GET", "/api/results/patients/{patient_id}/timeline"): RECORD_READ,
    ("GET", "/api/results/patients/{patient_id}/trends"): RECORD_READ,
    ("GET", "/api/results/reports/{report_id}"): res.RESULT_READ,
    ("GET", "/api/results/imaging/{study_id}"): res.RESULT_READ,
    ("GET", "/api/results/imaging/{study_id}/preview"): res.RESULT_READ,
}
# Steps the sending side takes: walked on a referral county A's hospital sent (the others on
# one it receives).
SENDER_STEPS = ("/submit", "/cancel", "/receive", "/follow-up")


def routes(app) -> list[tuple[str, str]]:
    """Every documented API and FHIR operation. Read from the OpenAPI document: FastAPI 0.16x
    keeps an included router as one entry of ``app.routes``, so walking those found nothing."""
    found = [(m.upper(), path) for path, ops in app.openapi()["paths"].items()
             if path.startswith(("/api", "/fhir")) for m in ops]
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path.startswith(("/api", "/fhir")):
            found += [(m, route.path) for m in sorted(route.methods - {"HEAD"})]
    assert len(found) > 20, "the walk found too few endpoints to be a check"
    return found


def test_every_api_and_fhir_endpoint_is_in_the_table(secure_app):
    missing = [r for r in routes(secure_app) if r not in TABLE]
    assert not missing, f"add these endpoints to TABLE with what they need: {missing}"


def _fill(world, session, method, path, n):
    """A concrete URL and a valid body for a template, the target in county A."""
    r = world.region
    target = service.create_user(session, SYS, username=f"target-{n}", display_name="T", password=PASSWORD,
                                 grants=[service.GrantSpec(Role.NURSE, ScopeKind.ORGANIZATION, r.county_hospital.id)],
                                 org_id=r.county_hospital.id)
    grant_id = service.grants_of(session, target.id)[0].id
    token = service.create_token(session, SYS, user_id=target.id, name="x").id
    glass = actor_of(session, world, Role.CLINICIAN, break_glass="急诊抢救，需要查看既往病史记录")
    access.check(session, glass, Perm.PATIENT_READ, AuditAction.VIEW, resource_type="Patient",
                 patient_id=1, org_id=r.county_hospital.id)
    session.commit()
    from sqlalchemy import select

    from healthgrid.security.models import AuditEvent
    audit_id = session.scalar(select(AuditEvent.id).where(AuditEvent.break_glass.is_not(None))
                              .order_by(AuditEvent.id.desc()))
    values = _patients(session, r) if path.startswith("/api/patients") else {}
    values |= _scheduling(session, r) if path.startswith("/api/scheduling") else {}
    values |= _referrals(session, r, path) if path.startswith("/api/referrals") else {}
    values |= surv.targets(session, r, path) if path.startswith("/api/surveillance") else {}
    values |= res.make_targets(session, r) if path.startswith("/api/results") or path == "/fhir" else {}
    values |= {"resource_type": "Organization", "resource_id": str(r.county_hospital.id), "token_id": token,
              "user_id": target.id, "grant_id": grant_id, "audit_id": audit_id, "code": r.county.code,
              "org_id": r.county_hospital.id, "alliance_id": r.alliance.id, "practitioner_id": r.doctor.id}
    values["operation"] = "match"
    url = path.format(**values)
    if path.endswith("/day-list"):
        url += f"?day={values['day']}&practitioner_id={r.doctor.id}"
    elif path.endswith("/quota-policies") and method == "GET":
        url += f"?org_id={r.county_hospital.id}"
    elif path.endswith("/sessions"):
        url += f"?day_from={values['day']}&day_to={values['day']}"
    elif path.endswith("/referrals/measures"):
        url += "?since=2026-01-01&until=2026-12-31"
    elif path.endswith(("/reserved-places", "/follow-ups")):
        url += f"?org_id={r.county_hospital.id}"
    url += surv.query(method, path, r, values)
    url += res.query(method, path, r, values)
    bodies = {
        "/api/security/me/password": {"old_password": PASSWORD, "new_password": "An0ther-Passw0rd!"},
        "/api/security/me/tokens": {"name": "mine"},
        "/api/security/users": {"username": f"new-{n}", "display_name": "N", "password": PASSWORD,
                                "grants": [{"role": "nurse", "scope_kind": "organization",
                                            "scope_id": r.county_hospital.id}], "org_id": r.county_hospital.id},
        "/api/security/users/{user_id}/grants": {"role": "clinician", "scope_kind": "organization",
                                                 "scope_id": r.county_hospital.id},
        "/api/security/users/{user_id}/active": {"active": True},
        "/api/security/audit/{audit_id}/review": {"verdict": "justified"},
        "/api/registry/divisions": {"code": f"9101020{n:02d}000", "name": "新镇", "level": "township",
                                    "parent_code": r.county.code},
        "/api/registry/organizations": {"code": f"91-N{n}", "name": "新卫生院", "level": "L1",
                                        "org_type": "township_health_centre", "division_code": r.township.code},
        "/api/registry/organizations/{org_id}": {"phone": "0591-1234567"},
        "/api/registry/organizations/{org_id}/departments": {"code": "04"},
        "/api/registry/organizations/{org_id}/services": {"kind": "outpatient"},
        "/api/registry/organizations/{org_id}/equipment": {"kind": "ct"},
        "/api/registry/organizations/{org_id}/key-specialties": {"department_code": "03.03", "level": "county"},
        "/api/registry/alliances": {"code": f"91-A{n}", "name": "专科联盟", "kind": "county_community",
                                    "lead_org_code": r.county_hospital.code},
        "/api/registry/alliances/{alliance_id}/members": {"org_code": world.hosp_b.code},
        "/api/registry/practitioners": {"licence_no": f"1103501100{n:05d}", "name": "李医生", "sex": "F",
                                        "title": "resident_physician"},
        "/api/registry/practitioners/{practitioner_id}/sites": {"org_id": r.county_hospital.id},
        "/fhir/{resource_type}/_search": None,
        "/api/patients": {"name": "周桂兰", "sex": "F", "birth_date": "1958-02-03", "org_id": r.county_hospital.id},
        "/api/patients/match": {"name": "王建国", "sex": "M", "birth_date": "1950-01-02"},
        "/api/patients/{patient_id}": {"name": "王建国", "sex": "M", "birth_date": "1950-01-02",
                                       "phone": "13711112222", "org_id": r.county_hospital.id},
        "/api/patients/reviews/{review_id}/decision": {"decision": "distinct", "note": "two different men"},
        "/api/patients/merges": {"survivor_id": values.get("patient_id"), "loser_id": values.get("other_id"),
                                 "reason": "same man"},
        "/api/patients/merges/{merge_id}/unmerge": {"reason": "two men"},
        "/api/scheduling/appointments": {"slot_id": values.get("slot_id"), "patient_id": values.get("patient_id"),
                                         "channel": "phone"},
        "/api/scheduling/appointments/{appointment_id}/cancel": {"reason": "改期"},
        "/api/scheduling/appointments/{appointment_id}/rebook": {"slot_id": values.get("slot_id")},
        "/api/scheduling/schedules": {"org_id": r.county_hospital.id, "name": f"门诊{n}",
                                      "department_id": values.get("department_id"),
                                      "templates": [{"weekday": 0, "part": "am", "start": "08:00", "end": "09:00"}]},
        "/api/scheduling/schedules/{schedule_id}/templates": {"templates": [
            {"weekday": 1, "part": "pm", "start": "14:00", "end": "15:00"}]},
        "/api/scheduling/quota-policies": {"org_id": r.county_hospital.id, "reserve_ratio": 0.4},
        "/api/scheduling/closures": {"org_id": r.county_hospital.id, "day": values.get("later"), "kind": "stop",
                                     "reason": "医生外出", "schedule_id": values.get("schedule_id")},
        "/api/scheduling/waitlist": {"session_id": values.get("full_session_id"),
                                     "patient_id": values.get("patient_id"), "channel": "phone"},
        "/api/scheduling/family": {"name": "王建国", "id_number": "110101195001020011", "relationship": "parent"},
        "/api/scheduling/exam-plans": {"org_id": r.county_hospital.id, "exams": ["ECG"]},
        "/api/scheduling/exam-bookings": {"org_id": r.county_hospital.id, "exams": ["ECG"],
                                          "patient_id": values.get("patient_id")},
        **_referral_bodies(r, values),
        **surv.bodies(r, values),
        **res.bodies(r, values),
    }
    return url, bodies.get(path)


def _patients(session, r) -> dict:
    """A patient of county A's hospital, a doubtful twin in review, and a merged pair."""
    from datetime import date

    from healthgrid.patients import merging
    from healthgrid.patients import service as patients

    def register(name, phone, org, division=None):
        data = patients.PatientIn(name=name, sex="M", birth_date=date(1950, 1, 2), phone=phone,
                                  division_id=division, mrn=f"M{phone[-4:]}")
        return patients.register_patient(session, SYS, org_id=org.id, data=data)

    first = register("王建国", "13711112222", r.county_hospital, r.village.id)
    twin = register("王建国", "13733334444", r.county_hospital)
    a, b = register("刘洋", "13755556666", r.county_hospital), register("刘洋", "13777778888", r.county_hospital)
    merge_id = merging.merge_patients(session, SYS, survivor_id=a.patient.id, loser_id=b.patient.id, reason="same")
    other = register("陈萍", "13788889999", r.county_hospital)
    return {"patient_id": first.patient.id, "review_id": twin.reviews[0], "merge_id": merge_id,
            "other_id": other.patient.id}


def _scheduling(session, r) -> dict:
    """A clinic schedule at county A's hospital with its sessions open, a patient with an
    appointment tomorrow, and a full session with someone on its waitlist."""
    from datetime import date, datetime, timedelta
    from zoneinfo import ZoneInfo

    from healthgrid.patients import service as patients
    from healthgrid.registry import service as registry
    from healthgrid.scheduling import schedules
    from healthgrid.scheduling import service as booking

    dept = registry.add_department(session, SYS, org_id=r.county_hospital.id, code="04")
    sched = schedules.create_schedule(session, SYS, schedules.ScheduleIn(
        org_id=r.county_hospital.id, name="外科门诊", department_id=dept.id, reserve_ratio=0.0,
        channel_shares={"phone": 1.0}, templates=[schedules.TemplateIn(w, "am", "08:00", "09:00", 30)
                                                  for w in range(7)]))
    people = [patients.register_patient(session, SYS, org_id=r.county_hospital.id, data=patients.PatientIn(
        name=name, sex="M", birth_date=date(1950, 1, 2 + i), phone=f"1372222000{i}")).patient.id
        for i, name in enumerate(["周国强", "吴建华", "郑德明"])]
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=1)
    slots = booking.find_slots(session, SYS, booking.SlotQuery(schedule_id=sched.id, day_from=day, day_to=day))
    appt = booking.book_appointment(session, SYS, slot_id=slots[0].id, patient_id=people[0], channel="phone")
    booking.book_appointment(session, SYS, slot_id=slots[1].id, patient_id=people[1], channel="phone")
    entry = booking.join_waitlist(session, SYS, session_id=appt.session_id, patient_id=people[2], channel="phone")
    later = day + timedelta(days=1)
    free = booking.find_slots(session, SYS, booking.SlotQuery(schedule_id=sched.id, day_from=later, day_to=later))
    session.commit()
    return {"slot_id": free[0].id, "patient_id": people[2], "appointment_id": appt.id, "schedule_id": sched.id,
            "entry_id": entry.id, "full_session_id": appt.session_id, "department_id": dept.id,
            "day": day.isoformat(), "later": (day + timedelta(days=2)).isoformat()}


def _referrals(session, r, path: str) -> dict:
    """A patient of county A's hospital with a referral sent up to it from the township and
    one the hospital sent down to the township."""
    from datetime import date

    from healthgrid.patients import service as patients
    from healthgrid.referrals import service as referrals
    from healthgrid.registry import service as registry

    dept = registry.add_department(session, SYS, org_id=r.county_hospital.id, code="05")
    pid = patients.register_patient(session, SYS, org_id=r.county_hospital.id, data=patients.PatientIn(
        name="钱桂芳", sex="F", birth_date=date(1956, 4, 5), phone="13766660000")).patient.id
    diagnoses = [{"code": "I10", "name": "原发性高血压"}]
    up = referrals.create_referral(session, SYS, referrals.ReferralIn(
        patient_id=pid, from_org_id=r.township_centre.id, to_org_id=r.county_hospital.id, diagnoses=diagnoses))
    down = referrals.create_referral(session, SYS, referrals.ReferralIn(
        patient_id=pid, from_org_id=r.county_hospital.id, to_org_id=r.township_centre.id, diagnoses=diagnoses,
        clinical={"condition_stable": True, "diagnosis_confirmed": True, "care_plan": "继续口服降压药"}),
        submit=False)
    session.commit()
    return {"patient_id": pid, "department_id": dept.id,
            "referral_id": down.id if path.endswith(SENDER_STEPS) else up.id}


def _referral_bodies(r, values) -> dict:
    down = {"patient_id": values.get("patient_id"), "from_org_id": r.county_hospital.id,
            "to_org_id": r.township_centre.id, "diagnoses": [{"code": "I10", "name": "原发性高血压"}],
            "clinical": {"condition_stable": True, "diagnosis_confirmed": True, "care_plan": "继续口服降压药"}}
    step = "/api/referrals/{referral_id}/"
    return {"/api/referrals": down, "/api/referrals/criteria": down,
            "/api/referrals/intake-rules": {"department_id": values.get("department_id"),
                                            "auto_accept_routine": True},
            **{step + s: {} for s in ("submit", "accept", "schedule", "arrive", "start-care", "complete", "no-show",
                                     "receive", "close")},
            step + "reject": {"reason": "本院无床位"}, step + "cancel": {"reason": "患者要求"},
            step + "back-referral": {"diagnosis": "高血压", "plan": "口服降压药",
                                     "clinical": {"condition_stable": True, "diagnosis_confirmed": True}},
            step + "follow-up": {"outcome": "血压平稳"}, step + "redirect": {"to_org_id": r.county_hospital.id}}


def _allowed(need, role: Role) -> bool:
    perms = ROLE_PERMS[role]
    if isinstance(need, tuple):
        return all(_allowed(n, role) for n in need)
    if need in (PUBLIC, ANY):
        return True
    if need == CARD:  # every scoped role's grant reaches county A's hospital
        return Perm.CASE_REPORT in perms or Perm.CASE_REVIEW in perms
    if need in (res.RESULT_READ, res.EQA_IMPORT):
        return res.allowed(need, role, _allowed(RECORD_READ, role))
    if need in (RECORD_READ, RECORD_WRITE):
        perm = Perm.PATIENT_READ if need == RECORD_READ else Perm.PATIENT_WRITE
        # the facility roles work at county A's hospital, where the patient is registered;
        # the public-health roles read their county's population
        related = role in (Role.CLINICIAN, Role.NURSE) or (need == RECORD_READ and Perm.POPULATION_READ in perms)
        return perm in perms and related
    return need in perms


def _call(client, method, url, body, headers):
    if method == "GET":
        return client.get(url, headers=headers)
    if isinstance(body, bytes):  # an upload (the feed's CSV)
        return client.request(method, url, content=body, headers={**headers, "content-type": "text/csv"})
    if isinstance(body, res.Raw):  # an HL7 v2 message, a CSV file
        return client.request(method, url, content=body.data, headers={**headers, "content-type": body.content_type})
    return client.request(method, url, json=body, headers=headers)


@pytest.mark.parametrize("method,path", sorted(TABLE))
def test_endpoint_allows_and_denies_by_role(secure_client, session, world, method, path):
    n = sorted(TABLE).index((method, path))
    url, body = _fill(world, session, method, path, n)
    need = TABLE[(method, path)]
    anon = _call(secure_client, method, url, body, {})
    if need == PUBLIC:
        assert anon.status_code == 200, anon.text
    else:
        assert anon.status_code == 401, (url, anon.text)
        assert anon.headers["www-authenticate"].startswith("Bearer")
    for role in Role:
        allowed = _allowed(need, role)
        # The alliance-member target lies in county B: only the region roles reach it.
        if path.endswith("/members") and role is not Role.COMMISSION_ADMIN and role is not Role.SYSTEM_ADMIN:
            allowed = False
        headers = {"Authorization": f"Bearer {world.tokens[role]}"}
        resp = _call(secure_client, method, url, body, headers)
        if allowed:
            assert resp.status_code not in (401, 403), (role, url, resp.text)
            # a PACS route past the check, in a world without a PACS: its own coded answer
            past = res.past_the_check(path, resp)
            assert past is not False, (role, url, resp.status_code, resp.text)
            assert resp.status_code < 500 or past, (role, url, resp.text)
        elif res.refused_in_report(need, role, resp):
            continue  # a facility's EQA rows: refused in the import's report, audited as denied
        else:
            assert resp.status_code == 403, (role, url, resp.status_code, resp.text)
            assert resp.json().get("code", "").startswith("SEC-") or "SEC-" in resp.text


# The FHIR routes are walked above on Organization; the surveillance resources decide access in
# their services (a Condition is a report card, a MeasureReport a county's case count).
FHIR_SURVEILLANCE: dict[str, Need] = {
    "/fhir/Condition/{card_id}": (Perm.REGISTRY_READ, CARD),
    "/fhir/Condition?patient=Patient/{patient_id}": (Perm.REGISTRY_READ, CARD),
    "/fhir/MeasureReport?period=ge{since}&subject=Location/div-{county}": (Perm.REGISTRY_READ,
                                                                          Perm.SURVEILLANCE_STATS),
    "/fhir/MeasureReport/cases-0400-{county}-{day}": (Perm.REGISTRY_READ, Perm.SURVEILLANCE_STATS),
}


@pytest.mark.parametrize("path", sorted(FHIR_SURVEILLANCE))
def test_fhir_surveillance_resources_allow_and_deny_by_role(secure_client, session, world, path):
    day = surv.past_day()
    values = surv.make_targets(session, world.region, signals=False) | {
        "county": world.region.county.code, "day": day.isoformat(), "since": (day - timedelta(days=7)).isoformat()}
    url = path.format(**values)
    assert secure_client.get(url).status_code == 401
    for role in Role:
        resp = secure_client.get(url, headers={"Authorization": f"Bearer {world.tokens[role]}"})
        if _allowed(FHIR_SURVEILLANCE[path], role):
            assert resp.status_code == 200, (role, url, resp.text)
            assert "Condition" not in path or f"CRB{values['card_id']:010d}" in resp.text, (role, url, resp.text)
        else:
            assert resp.status_code == 403 and "SEC-" in resp.text, (role, url, resp.status_code, resp.text)


@pytest.mark.parametrize("path", sorted(res.FHIR))
def test_fhir_results_resources_allow_and_deny_by_role(secure_client, session, world, path):
    """DiagnosticReport, Observation and ImagingStudy: read and searched through the generic
    routes; the providers check each row as the API does (the record's readers, or the issuing
    facility's LIS: a search by patient shows it the results it issued)."""
    values = res.make_targets(session, world.region)
    url, wanted = path.format(**values), res.FHIR[path].format(**values)
    assert secure_client.get(url).status_code == 401
    for role in Role:
        resp = secure_client.get(url, headers={"Authorization": f"Bearer {world.tokens[role]}"})
        if _allowed((Perm.REGISTRY_READ, res.RESULT_READ), role):
            assert resp.status_code == 200, (role, url, resp.text)
            found = resp.json()
            found = [found] if found["resourceType"] != "Bundle" else [e["resource"] for e in found["entry"]]
            assert wanted in {f"{f['resourceType']}/{f['id']}" for f in found}, (role, url, resp.text)
        else:
            assert resp.status_code == 403 and "SEC-" in resp.text, (role, url, resp.status_code, resp.text)


def test_cross_county_reads_and_writes_are_denied(secure_client, session, world):
    user_b = service.create_user(session, SYS, username="staff-b", display_name="B", password=PASSWORD,
                                 grants=[service.GrantSpec(Role.NURSE, ScopeKind.ORGANIZATION, world.hosp_b.id)],
                                 org_id=world.hosp_b.id)
    for role in (Role.FACILITY_ADMIN,):
        h = {"Authorization": f"Bearer {world.tokens[role]}"}
        resp = secure_client.get(f"/api/security/users/{user_b.id}", headers=h)
        assert resp.status_code == 403 and resp.json()["code"] == "SEC-103"
        resp = secure_client.post(f"/api/registry/organizations/{world.hosp_b.id}/departments",
                                  json={"code": "04"}, headers=h)
        assert resp.status_code == 403 and resp.json()["code"] == "SEC-103"
        listed = secure_client.get("/api/security/users", headers=h).json()
        assert "staff-b" not in {u["username"] for u in listed["items"]}
    # An auditor of county A sees no audit rows of county B's facilities.
    county_auditor = service.create_user(
        session, SYS, username="auditor-a", display_name="A", password=PASSWORD,
        grants=[service.GrantSpec(Role.AUDITOR, ScopeKind.DIVISION, world.region.county.id)])
    token = service.create_token(session, SYS, user_id=county_auditor.id, name="a").token
    rows = secure_client.get("/api/security/audit?limit=500", headers={"Authorization": f"Bearer {token}"}).json()
    assert rows["total"] > 0
    assert world.hosp_b.id not in {r["org_id"] for r in rows["items"]}
    assert {r["org_id"] for r in rows["items"]} <= {world.region.county_hospital.id, world.region.township_centre.id,
                                                    world.region.village_clinic.id}


def test_surveillance_of_county_a_is_refused_to_county_b(secure_client, session, world):
    """The matrix walks targets in county A with county-A staff; here county B's CDC, clinician
    and facility administrator try county A's card, signal, dashboard and feed."""
    r, api = world.region, surv.API
    values = surv.make_targets(session, r)
    b = {k: {"Authorization": f"Bearer {t}"} for k, t in surv.county_b_tokens(session, world).items()}
    card, signal = f"{api}/cards/{values['card_id']}", f"{api}/signals/{values['signal_id']}"
    refused = [
        ("cdc", "GET", card, None), ("cdc", "POST", f"{card}/review", {"decision": "approve"}),
        ("cdc", "POST", f"{card}/correction", {"changes": {"remarks": "x"}, "reason": "x"}),
        ("cdc", "GET", signal, None), ("cdc", "POST", f"{signal}/note", {"note": "x"}),
        ("cdc", "POST", f"{signal}/warnings", {"product": "risk_notice"}),
        ("cdc", "GET", f"{api}/warnings/{values['warning_id']}", None),
        ("cdc", "GET", f"{api}/dashboard/kpis?since=2025-01-01&until=2025-01-31&county={r.county.code}", None),
        ("clinician", "GET", card, None), ("clinician", "POST", f"{card}/deletion",
                                           {"delete_type": "duplicate", "reason": "x"}),
        ("clinician", "GET", f"{api}/cards/prefill?patient_id={values['patient_id']}&icd10={surv.ICD10}"
                             f"&org_id={r.county_hospital.id}", None),
        ("clinician", "POST", f"{api}/cards", {**surv.card_fields(r), "report_org_id": r.county_hospital.id}),
    ]
    for who, method, url, body in refused:
        resp = _call(secure_client, method, url, body, b[who])
        assert resp.status_code == 403 and resp.json()["code"].startswith("SEC-"), (who, method, url, resp.text)
    # Lists leave county A out rather than refusing.
    assert secure_client.get(f"{api}/cards", headers=b["cdc"]).json()["items"] == []
    assert secure_client.get(f"{api}/signals", headers=b["cdc"]).json()["items"] == []
    # A feed row placed in county A: the whole batch refused, the place named (SURV-512).
    row = {"source": "H9", "division_code": r.county.code, "date": surv.past_day().isoformat(), "metric": "ILI",
           "count": 1, "total": 10}
    resp = secure_client.post(f"{api}/feeds/fever", json={"rows": [row]}, headers=b["admin"])
    assert resp.status_code == 422 and resp.json()["code"] == "SURV-520"
    assert [e["code"] for e in resp.json()["detail"]["report"]["errors"]] == ["SURV-512"]


def test_results_of_county_a_are_refused_to_county_b(secure_client, session, world):
    """The matrix walks county A's results with county-A staff; here county B's clinician and
    facility administrator (its LIS) reach for them: refused with a code, audited."""
    values = res.make_targets(session, world.region)
    b = {k: {"Authorization": f"Bearer {t}"} for k, t in surv.county_b_tokens(session, world).items()}
    for who, method, url, body, status, code in res.county_b_refusals(world.region, values):
        resp = _call(secure_client, method, url, body, b[who])
        assert resp.status_code == status and code in resp.text, (who, method, url, resp.status_code, resp.text)
    # Lists leave county A out rather than refusing: the ingestion log, a search by patient.
    log = secure_client.get(f"{res.API}/messages", headers=b["admin"]).json()["items"]
    assert values["message_id"] not in {m["id"] for m in log}
    found = secure_client.get(f"/fhir/DiagnosticReport?patient=Patient/{values['patient_id']}", headers=b["admin"])
    assert found.status_code == 200 and found.json()["total"] == 0, found.text


def test_an_anonymous_upload_is_refused_before_it_is_read(secure_client):
    # A multipart body without its file field is refused (SURV-524) once read: anonymous, 401.
    resp = secure_client.post(f"{surv.API}/feeds/fever/csv", files={"other": ("a.csv", b"x")})
    assert resp.status_code == 401 and resp.headers["www-authenticate"].startswith("Bearer"), resp.text
    # The same for an EQA list (RES-108 once read) and an HL7 message (RES-020 once read).
    for url, upload in ((f"{res.API}/eqa/csv", {"files": {"other": ("a.csv", b"x")}}),
                        (f"{res.API}/hl7", {"content": b"", "headers": {"content-type": "text/plain"}})):
        resp = secure_client.post(url, **upload)
        assert resp.status_code == 401 and resp.headers["www-authenticate"].startswith("Bearer"), (url, resp.text)


def test_a_token_limited_to_reading_cannot_write(secure_client, session, world):
    limited = service.create_token(session, SYS, user_id=world.users[Role.COMMISSION_ADMIN].id, name="ro",
                                   perms=["registry.read"]).token
    h = {"Authorization": f"Bearer {limited}"}
    assert secure_client.get("/api/registry/organizations", headers=h).status_code == 200
    resp = secure_client.post(f"/api/registry/organizations/{world.region.county_hospital.id}/departments",
                              json={"code": "04"}, headers=h)
    assert resp.status_code == 403 and resp.json()["code"] == "SEC-106"


def test_openapi_states_the_authentication_of_every_endpoint(secure_client):
    spec = secure_client.get("/api/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert {"bearerToken", "sessionCookie"} <= set(schemes)
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if TABLE.get((method.upper(), path)) == PUBLIC:
                continue
            assert op.get("security"), f"{method.upper()} {path} does not state its authentication"


def test_responses_carry_security_headers_and_no_cors_by_default(secure_client):
    resp = secure_client.get("/fhir/metadata", headers={"Origin": "http://evil.example"})
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in resp.headers["content-security-policy"]
    assert resp.headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in resp.headers


def test_cors_only_for_the_origins_an_operator_names(settings, session):
    from fastapi.testclient import TestClient

    from healthgrid.app import create_app
    from healthgrid.http import get_session

    configured = settings.model_copy(update={"security": settings.security.model_copy(
        update={"cors_origins": ["https://portal.example"]})})
    app = create_app(configured)
    app.dependency_overrides[get_session] = lambda: session
    try:
        with TestClient(app) as c:
            ok = c.options("/api/registry/organizations", headers={
                "Origin": "https://portal.example", "Access-Control-Request-Method": "GET"})
            assert ok.headers["access-control-allow-origin"] == "https://portal.example"
            other = c.options("/api/registry/organizations", headers={
                "Origin": "http://evil.example", "Access-Control-Request-Method": "GET"})
            assert "access-control-allow-origin" not in other.headers
    finally:
        app.state.engine.dispose()


# -- web pages that touch personal data: the same walk, with the pages' answers --------------

# A patient's page: a reader of the record, or the index steward (who sees its merge history).
RECORD_OR_MERGE = "record:read|merge"

WEB_TABLE: dict[tuple[str, str], Need] = {
    ("GET", "/patients"): Perm.PATIENT_READ,
    ("GET", "/patients/new"): Perm.PATIENT_WRITE,
    ("POST", "/patients/new"): Perm.PATIENT_WRITE,
    ("GET", "/patients/reviews"): Perm.PATIENT_MERGE,
    ("GET", "/patients/reviews/{review_id}"): Perm.PATIENT_MERGE,
    ("POST", "/patients/reviews/{review_id}"): Perm.PATIENT_MERGE,
    ("POST", "/patients/merges/{merge_id}/unmerge"): Perm.PATIENT_MERGE,
    ("GET", "/patients/{patient_id}"): RECORD_OR_MERGE,
    # with the glass broken; the facility and population roles are related to this patient anyway
    ("POST", "/patients/{patient_id}/break-glass"): RECORD_READ,
    # the schedule editor's quota policy (预留号源规则): the facility administrator's alone
    ("POST", "/scheduling/quota-policies"): Perm.SCHEDULE_MANAGE,
    # The report card's pages: every one behind surveillance.report (the page router), then
    # the card's own rule. The prefill reads the patient's record; the review is the CDC's.
    # The signal, feed and dashboard pages show counts, signal facts and card numbers only
    # (signal_detail.html lists the cards behind a signal by number, linking to these pages).
    ("GET", "/surveillance/cards"): Perm.CASE_REPORT,
    ("GET", "/surveillance/cards/new"): (Perm.CASE_REPORT, RECORD_READ),
    ("POST", "/surveillance/cards/new"): (Perm.CASE_REPORT, RECORD_READ),
    ("GET", "/surveillance/cards/{card_id}"): (Perm.CASE_REPORT, CARD),
    ("GET", "/surveillance/cards/{card_id}/correct"): (Perm.CASE_REPORT, CARD),
    ("POST", "/surveillance/cards/{card_id}/correct"): (Perm.CASE_REPORT, CARD),
    ("POST", "/surveillance/cards/{card_id}/delete"): (Perm.CASE_REPORT, CARD),
    ("POST", "/surveillance/cards/{card_id}/review"): (Perm.CASE_REPORT, Perm.CASE_REVIEW),
    # A patient's results: the record's readers (a clinician without a relationship is asked for
    # a reason, then reads with the glass broken); an image: also the issuing facility's PACS
    # integration. The ordering doctor's pages: results.order (the page router), then the
    # record. /results/measures shows counts only (results_matrix.NOT_PERSONAL).
    ("GET", "/patients/{patient_id}/results"): RECORD_READ,
    ("POST", "/patients/{patient_id}/results/break-glass"): RECORD_READ,
    ("GET", "/results/imaging/{study_id}/preview"): res.RESULT_READ,
    ("GET", "/results/imaging/{study_id}/viewer"): res.RESULT_READ,
    ("GET", "/results/order"): (Perm.RESULT_ORDER, RECORD_READ),
    ("POST", "/results/order"): (Perm.RESULT_ORDER, RECORD_READ),
    ("GET", "/results/order/{decision_id}"): (Perm.RESULT_ORDER, RECORD_READ),
    ("POST", "/results/order/{decision_id}"): (Perm.RESULT_ORDER, RECORD_READ),
}


def test_every_web_page_with_personal_data_is_in_the_table(secure_client):
    # The page routers themselves: the FastAPI installed here (0.165) keeps an included
    # router as one _IncludedRouter entry of app.routes, so walking app.routes finds none
    # of its pages.
    from healthgrid.patients import web as patients_web
    from healthgrid.results.web import recognition as order_pages
    from healthgrid.results.web import timeline as result_pages
    from healthgrid.surveillance.web import cards as card_pages

    for router, page in ((patients_web.router, "/patients"), (card_pages.router, "/surveillance/cards"),
                         (result_pages.router, "/results/imaging/1/viewer"),
                         (order_pages.order_pages, "/results/order"), (order_pages.measure_pages, "/results/measures")):
        found = [(m, r.path) for r in router.routes if isinstance(r, APIRoute) for m in sorted(r.methods - {"HEAD"})
                 if r.path not in res.NOT_PERSONAL]
        missing = [r for r in found if r not in WEB_TABLE]
        assert (found or page in res.NOT_PERSONAL) and not missing, \
            f"add these pages to WEB_TABLE with what they need: {missing}"
        assert secure_client.get(page, follow_redirects=False).status_code == 303  # mounted


def _web_allowed(need, role: Role) -> bool:
    if need == RECORD_OR_MERGE:
        return _allowed(RECORD_READ, role) or Perm.PATIENT_MERGE in ROLE_PERMS[role]
    return _allowed(need, role)


WEB_QUERIES = {"/patients": "?name=王建国"}
WEB_FORMS = {
    "/patients/new": {"name": "周桂兰", "sex": "F", "birth_date": "1958-02-03"},
    "/patients/reviews/{review_id}": {"decision": "distinct", "note": "two different men"},
    "/patients/merges/{merge_id}/unmerge": {"reason": "two men"},
    "/patients/{patient_id}/break-glass": {"reason": "急诊抢救，需要查看既往病史记录"},
    "/scheduling/quota-policies": {"reserve_ratio": "30", "reserve_lead_days": "14", "release_back_hours": "48",
                                   "open_days_ahead": "7", "release_time": "08:00"},
}


def _refused_by_notice(resp) -> bool:
    """A form post its service refused goes back to its page with the coded error as a
    one-time notice (post/redirect/get, web/notices.py): the card pages' review does."""
    return resp.status_code == 303 and "SEC-" in resp.headers.get("set-cookie", "")


@pytest.mark.parametrize("method,path", sorted(WEB_TABLE))
def test_web_page_allows_and_denies_by_role(secure_client, session, world, method, path):
    if path.startswith("/surveillance/cards"):
        values = surv.targets(session, world.region, path)
        queries, forms = {**WEB_QUERIES, **surv.WEB_QUERIES}, {**WEB_FORMS, **surv.web_forms(world.region, values)}
    elif path.startswith("/results") or path.startswith("/patients/{patient_id}/results"):
        values = res.make_targets(session, world.region) | {"org_id": world.region.county_hospital.id}
        queries, forms = res.WEB_QUERIES, res.web_forms(world.region, values)
    else:
        values, queries, forms = _patients(session, world.region), WEB_QUERIES, WEB_FORMS
    url = (path + queries.get(path, "")).format(**values)
    body, need = forms.get(path), WEB_TABLE[(method, path)]
    html = {"accept": "text/html"}
    anon = secure_client.request(method, url, data=body, headers=html, follow_redirects=False)
    if method == "GET":  # a page sends an anonymous visitor to the log-in page
        assert (anon.status_code, anon.headers["location"].split("?")[0]) == (303, "/login"), anon.text
    else:
        assert anon.status_code == 401, anon.text
    for role in Role:
        headers = {**html, "Authorization": f"Bearer {world.tokens[role]}"}
        resp = secure_client.request(method, url, data=body, headers=headers, follow_redirects=False)
        if _web_allowed(need, role):
            assert resp.status_code not in (401, 403) and resp.status_code < 500, (role, url, resp.text)
            assert not _refused_by_notice(resp), (role, url, resp.headers["set-cookie"])
            assert res.past_the_check(path, resp) is not False, (role, url, resp.status_code, resp.text)
        else:
            refused = (resp.status_code == 403 and "SEC-" in resp.text) or _refused_by_notice(resp)
            assert refused, (role, url, resp.status_code, resp.text)
