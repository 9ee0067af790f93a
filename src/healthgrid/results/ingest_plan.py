"""Validating one message against what is stored, and deciding what to write (the middle stage
of the pipeline): who sent it and may they (``results.submit`` for the issuing organisation),
the patient (``ingest_patients``), and for each report whether it is new (created), a
correction or completion of a stored one (updated), or the same again (ignored).

A stored report is matched by (issuing organisation, filler number) — the issuer's report
number is unique there. Corrections (国卫医发〔2022〕6号 asks that recognised results be
correct; HL7 v2.5.1 §7.4: OBR-25/OBX-11 ``C``; FHIR ``corrected``/``amended``) replace the
stored values in place: the report keeps its id (its version goes up), its observations are
matched by code and position and updated in place, new ones added, and those the correction
no longer lists are marked ``entered-in-error`` rather than deleted, so a reader who saw them
can learn they were withdrawn. A released report changed without being marked a correction is
refused (RES-193), and a report cannot go back from released to preliminary (RES-194).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import Forbidden
from ..security import access, audit
from ..security.domain import Actor, AuditAction, Perm, ScopeKind
from .ingest_patients import Refused, Resolved, resolve_patient
from .ingest_refs import Org, Run, StoredReport
from .intake import CORRECTIONS, RELEASED, MessageItem, ObservationItem, Problem, ReportItem, StudyItem
from .models import Observation

PROGRESS = ("registered", "partial", "preliminary")


@dataclass
class ObsPlan:
    item: ObservationItem
    values: dict[str, Any]
    observation_id: int | None = None  # stored row updated in place
    outcome: str = "created"


@dataclass
class StudyPlan:
    item: StudyItem
    values: dict[str, Any]
    study_id: int | None = None
    outcome: str = "created"


@dataclass
class ReportPlan:
    item: ReportItem
    outcome: str  # created | updated | ignored
    values: dict[str, Any]
    stored: StoredReport | None = None
    observations: list[ObsPlan] = field(default_factory=list)
    retired: list[int] = field(default_factory=list)  # stored observations the correction drops
    studies: list[StudyPlan] = field(default_factory=list)
    report_id: int | None = None


@dataclass
class MessagePlan:
    item: MessageItem
    org: Org
    source: str
    control_id: str
    patient: Resolved | None
    reports: list[ReportPlan] = field(default_factory=list)
    studies: list[StudyPlan] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


@dataclass
class Stored:
    """What the chunk's messages may touch, looked up once per chunk."""

    reports: dict[tuple[int, str], StoredReport]
    studies: dict[str, tuple[int, int, int]]


# -- who sends ----------------------------------------------------------------------------------

def own_org(actor: Actor) -> str | None:
    """The one organisation an integration token submits for (its organisation grant)."""
    orgs = {g.scope_id for g in actor.grants_with(Perm.RESULT_SUBMIT)
            if g.scope_kind is ScopeKind.ORGANIZATION and g.scope_id}
    return f"#{orgs.pop()}" if len(orgs) == 1 else None


def check_sender(session: Session, actor: Actor, run: Run, org: Org) -> None:
    """results.submit for the issuing organisation; a refusal is audited as denied and the
    message refused (SEC-103), kept as rejected like any other."""
    if org.id in run.allowed:
        return
    try:
        access.check(session, actor, Perm.RESULT_SUBMIT, AuditAction.CREATE, resource_type="DiagnosticReport",
                     org_id=org.id, audit_success=False)
    except Forbidden as exc:
        # the refusal's own audit row waits for a rollback that will not come: record it now
        audit.record(session, actor, AuditAction.CREATE, resource_type="DiagnosticReport", org_id=org.id,
                     outcome="denied", reason=exc.code)
        raise Refused(Problem(exc.code, f"{exc.message}: a facility sends only its own organisation's results",
                              "message", "sender")) from None
    run.allowed.add(org.id)


# -- the plan -------------------------------------------------------------------------------------

def plan_message(session: Session, actor: Actor, run: Run, stored: Stored, msg: MessageItem, *, org: Org,
                 source: str, control_id: str, today: date) -> MessagePlan:
    """What writing ``msg`` means; raises ``Refused`` with every problem found."""
    patient = None
    if msg.patient is not None:
        patient = resolve_patient(session, actor, msg.patient, org_id=org.id, cache=run.patients, today=today)
    plan = MessagePlan(msg, org, source, control_id, patient, warnings=list(msg.warnings))
    if patient is not None:
        plan.warnings += patient.warnings
    problems: list[Problem] = []
    for r in msg.reports:
        try:
            plan.reports.append(_plan_report(session, run, stored, r, org, patient))
        except Refused as exc:
            problems += exc.problems
    for s in msg.studies:
        try:
            plan.studies.append(_plan_study(stored, s, org, patient.patient_id if patient else 0, None))
        except Refused as exc:
            problems += exc.problems
    if problems:
        raise Refused(*problems)
    plan.warnings += _unmapped(plan)
    plan.warnings += _unknown_parties(session, run, msg)
    return plan


def _plan_report(session: Session, run: Run, stored: Stored, r: ReportItem, org: Org,
                 patient: Resolved | None) -> ReportPlan:
    assert patient is not None  # check_message refuses reports without a patient
    values = _report_values(session, run, r, org, patient.patient_id)
    found = stored.reports.get((org.id, r.filler_number))
    if r.report_id is not None and (found is None or found.id != r.report_id):
        raise Refused(Problem("RES-196", f"DiagnosticReport/{r.report_id} is not the report {r.filler_number!r}"
                              f" of {org.code}: the identifier of an update must stay the same", r.where,
                              "identifier"))
    if found is not None and found.patient_id != patient.patient_id:
        raise Refused(Problem("RES-196", f"report {r.filler_number!r} of {org.code} is stored for another patient;"
                              " a report number belongs to one patient (send the right patient, or a new number)",
                              r.where, "subject"))
    plan = ReportPlan(r, "created" if found is None else "updated", values, found)
    olds = _stored_observations(session, found.id) if found is not None else []
    if found is not None:
        _check_transition(found, r, olds, values)
        if _same(found, values, olds, r):
            plan.outcome = "ignored"
    plan.observations, plan.retired = _plan_observations(session, run, r, values, olds, plan.outcome)
    plan.studies = [_plan_study(stored, s, org, patient.patient_id, found.id if found else None) for s in r.studies]
    if values["item"] is None:  # a panel named by a local code: the one item all its results map to
        items = {o.values["item"] for o in plan.observations if o.values["item"]}
        values["item"] = items.pop() if len(items) == 1 else None
        values["mark"] = values["mark"] or run.mark_for(values["item"], org)
    return plan


def _report_values(session: Session, run: Run, r: ReportItem, org: Org, patient_id: int) -> dict[str, Any]:
    item = run.item_for(session, r.code, org.id)
    lab = run.org(session, r.lab)
    ordering = run.org(session, r.ordering_org)
    return {"patient_id": patient_id, "issuer_org_id": org.id, "lab_org_id": lab.id if lab else org.id,
            "ordering_org_id": ordering.id if ordering else org.id,
            "ordering_practitioner_id": run.practitioner(session, r.ordering_practitioner),
            "filler_number": r.filler_number, "placer_number": r.placer_number, "category": r.category,
            "item": item, "code_system": r.code.system, "code": r.code.code, "display": r.code.display[:200],
            "status": r.status, "mark": r.mark or run.mark_for(item, org), "effective_at": r.effective_at,
            "issued_at": r.issued_at or r.effective_at, "conclusion": r.conclusion}


def _check_transition(found: StoredReport, r: ReportItem, olds: list[Any], values: dict[str, Any]) -> None:
    if found.status in RELEASED and r.status in PROGRESS:
        raise Refused(Problem("RES-194", f"report {r.filler_number!r} is {found.status}; it cannot become"
                              f" {r.status} again", r.where, "status"))
    if found.status in RELEASED and r.status not in CORRECTIONS and not _same(found, values, olds, r):
        raise Refused(Problem("RES-193", f"report {r.filler_number!r} is already {found.status}; a change must be"
                              " sent as a correction (OBR-25/OBX-11 C, DiagnosticReport.status corrected or"
                              " amended)", r.where, "status"))


def _stored_observations(session: Session, report_id: int) -> list[Any]:
    return list(session.execute(select(Observation.id, Observation.seq, Observation.code, Observation.value_num,
                                       Observation.value_text, Observation.unit, Observation.flag,
                                       Observation.status, Observation.ref_text)
                                .where(Observation.report_id == report_id).order_by(Observation.seq)))


def _signature(o: Any) -> tuple:
    return (o.code, o.value_num, o.value_text, o.unit, o.flag, o.status, o.ref_text)


def _same(found: StoredReport, values: dict[str, Any], olds: list[Any], r: ReportItem) -> bool:
    if found.status != r.status:
        return False
    live = [o for o in olds if o.status != "entered-in-error"]
    new = [(o.code.code, o.value_num, o.value_text, o.unit, o.flag, o.status, o.ref_text) for o in r.observations]
    return Counter(map(_signature, live)) == Counter(new)


def _obs_values(session: Session, run: Run, o: ObservationItem, report: dict[str, Any]) -> dict[str, Any]:
    return {"patient_id": report["patient_id"], "seq": o.seq, "item": run.item_for(session, o.code,
                                                                                     report["issuer_org_id"]),
            "code_system": o.code.system, "code": o.code.code, "display": o.code.display[:200],
            "value_num": o.value_num, "value_text": o.value_text, "unit": o.unit, "ref_low": o.ref_low,
            "ref_high": o.ref_high, "ref_text": o.ref_text, "flag": o.flag, "status": o.status,
            "effective_at": o.effective_at or report["effective_at"] or report["issued_at"],
            "issuer_org_id": report["issuer_org_id"]}


def _plan_observations(session: Session, run: Run, r: ReportItem, report: dict[str, Any], olds: list[Any],
                       outcome: str) -> tuple[list[ObsPlan], list[int]]:
    """New rows, or (for an update) stored rows matched by code and position, then by code."""
    plans = [ObsPlan(o, _obs_values(session, run, o, report)) for o in r.observations]
    if not olds:
        return plans, []
    free = {o.id: o for o in olds}
    for p in plans:
        if p.item.observation_id is not None and p.item.observation_id in free:
            match = free.pop(p.item.observation_id)
        else:
            match = next((o for o in free.values() if o.code == p.item.code.code and o.seq == p.item.seq), None) \
                or next((o for o in free.values() if o.code == p.item.code.code), None)
            if match is not None:
                free.pop(match.id)
        if match is not None:
            p.observation_id = match.id
            p.outcome = "ignored" if outcome == "ignored" or _signature(match) == (
                p.item.code.code, p.values["value_num"], p.values["value_text"], p.values["unit"], p.values["flag"],
                p.values["status"], p.values["ref_text"]) else "updated"
    retired = [o.id for o in free.values() if o.status != "entered-in-error"]
    return plans, retired


def _plan_study(stored: Stored, s: StudyItem, org: Org, patient_id: int, report_id: int | None) -> StudyPlan:
    values = {"study_uid": s.study_uid, "patient_id": patient_id, "issuer_org_id": org.id,
              "accession_number": s.accession, "modality": s.modality, "body_site": s.body_site,
              "description": s.description, "started_at": s.started_at, "series_count": s.series_count,
              "instance_count": s.instance_count, "dicomweb_base": s.dicomweb_base, "pacs_study_id": s.pacs_study_id,
              "report_id": report_id}
    found = stored.studies.get(s.study_uid)
    if found is None:
        if s.study_id is not None:
            raise Refused(Problem("RES-197", f"ImagingStudy/{s.study_id} is not the study {s.study_uid}", s.where,
                                  "identifier"))
        return StudyPlan(s, values)
    study_id, owner, issuer = found
    if owner != patient_id or issuer != org.id or (s.study_id is not None and s.study_id != study_id):
        raise Refused(Problem("RES-197", f"study {s.study_uid} is indexed already for another patient or by another"
                              " organisation", s.where, "identifier"))
    return StudyPlan(s, values, study_id, "updated")


def _unmapped(plan: MessagePlan) -> list[Problem]:
    # narrative parts of a mapped report (findings, impression) are not items of their own
    codes = sorted({o.item.code.code for r in plan.reports for o in r.observations if o.values["item"] is None
                    and (r.values["item"] is None or o.values["value_num"] is not None)})
    if not codes:
        return []
    shown = ", ".join(codes[:10]) + (" …" if len(codes) > 10 else "")
    return [Problem("RES-211", f"{len(codes)} result code(s) map to no catalogue item (neither LOINC nor a local"
                    f" code of {plan.org.code}): {shown}; stored, but not recognisable until mapped", "message",
                    "code", warning=True)]


def _unknown_parties(session: Session, run: Run, msg: MessageItem) -> list[Problem]:
    out = []
    for r in msg.reports:
        for ref, what in ((r.ordering_practitioner, "ordering doctor"), (r.ordering_org, "ordering organisation"),
                          (r.lab, "performing laboratory")):
            if not ref:
                continue
            known = run.practitioner(session, ref) if what == "ordering doctor" else run.org(session, ref)
            if known is None:
                out.append(Problem("RES-213", f"{what} {ref!r} is not in the registry; "
                                   + ("not notified" if what == "ordering doctor" else "the issuer stands for it"),
                                   r.where, what, warning=True))
    return out

