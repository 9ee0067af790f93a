"""Every registered API and FHIR endpoint, walked anonymously and with each role (a real
API token per role, scoped as in tests/security/conftest.py): allowed or denied as the
table says. A new endpoint without a row here fails the walk."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from tests.factories import SYS
from tests.security.conftest import PASSWORD, actor_of

from healthgrid.security import access, service
from healthgrid.security.domain import ROLE_PERMS, AuditAction, Perm, Role, ScopeKind

ANY = "any"  # any logged-in user
PUBLIC = "public"
# A patient's record: the permission, and a relationship (registered at the reader's facility)
# or a population scope over the patient's facilities.
RECORD_READ = "record:read"
RECORD_WRITE = "record:write"

# (method, path template) -> what it needs. Path parameters are filled from the world,
# always with a target inside county A, where every scoped role's grant reaches.
TABLE: dict[tuple[str, str], str | Perm] = {
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
    if need in (PUBLIC, ANY):
        return True
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
            assert resp.status_code < 500, (role, url, resp.text)
        else:
            assert resp.status_code == 403, (role, url, resp.status_code, resp.text)
            assert resp.json().get("code", "").startswith("SEC-") or "SEC-" in resp.text


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

WEB_TABLE: dict[tuple[str, str], str | Perm] = {
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
}


def test_every_web_page_with_personal_data_is_in_the_table(secure_client):
    # The page routers themselves: the FastAPI installed here (0.165) keeps an included
    # router as one _IncludedRouter entry of app.routes, so walking app.routes finds none
    # of its pages.
    from healthgrid.patients import web as patients_web

    found = [(m, r.path) for r in patients_web.router.routes if isinstance(r, APIRoute)
             for m in sorted(r.methods - {"HEAD"})]
    missing = [r for r in found if r not in WEB_TABLE]
    assert found and not missing, f"add these pages to WEB_TABLE with what they need: {missing}"
    assert secure_client.get("/patients", follow_redirects=False).status_code == 303  # mounted


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


@pytest.mark.parametrize("method,path", sorted(WEB_TABLE))
def test_web_page_allows_and_denies_by_role(secure_client, session, world, method, path):
    url = path.format(**_patients(session, world.region)) + WEB_QUERIES.get(path, "")
    body, need = WEB_FORMS.get(path), WEB_TABLE[(method, path)]
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
        else:
            assert resp.status_code == 403 and "SEC-" in resp.text, (role, url, resp.status_code, resp.text)
