"""The recognition decision at order time (互认判定), in two steps, every one logged in
``res_decision`` (国卫医发〔2022〕6号 and domain-rules.md §4.5: the decision, the reason when a
result is not recognised, the physician, and that the patient was informed):

1. ``check_prior_results``: the ordering doctor names the patient, the item and the ordering
   organisation; the patient's prior results of the item (any facility of the region) are
   weighed by ``recognition.decide`` against the catalogue's list for the organisation's
   region and level, the labs' EQA results and the validity days. The row is written at once
   with what was offered (the recognisable results, best first) and why each other result
   is not. Without a recognisable result the decision is final there (no prior result, none
   recognisable, or the item not on the list: the test is ordered); otherwise it waits
   (``pending``) for the doctor's answer.
2. ``record_decision``: the doctor recognises one of the offered results (no repeat), or
   repeats the test with one of the six national reasons or an enabled local one (§4.3;
   "other" needs a text; telling the patient is required except in an emergency:
   ``domain.make_override``). The answer is given against the stored offer, never a list
   rebuilt later, and refused as stale (RES-127/128) when a new result of the item arrived
   since, the check is older than ``ANSWER_WITHIN``, or the chosen result has changed or
   expired meanwhile: the doctor checks again.

Access: ``results.order`` at the ordering organisation and ``patient.read`` on the patient
(relationship, scope or break-glass rules, audited). Issuing or ordering a result of the
patient is itself a care relationship (registered below). Codes RES-120…RES-130.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ..db import transaction, utcnow
from ..errors import Conflict, Invalid, NotFound, PreconditionFailed
from ..patients import queries as patient_queries
from ..registry import queries as registry_queries
from ..security import access, audit
from ..security.domain import Actor, AuditAction, Perm, ScopeKind
from . import recognition as rec
from .domain import (
    FINAL_STATUSES,
    LOCAL_REASONS,
    NATIONAL_REASONS,
    STATUSES,
    EqaFacts,
    aware,
    local_day,
    make_override,
)
from .models import Decision, ImagingStudy, Observation, Report
from .reference import catalogue_of, eqa_records

PENDING = "pending"  # a recognisable result was offered; the doctor has not answered yet
# DiagnosticReport statuses that are not ObservationStatus values: "appended" (content added
# after release) is released; "partial" is not yet.
REPORT_STATUS = {"appended": "amended", "partial": "preliminary"}
ANSWER_WITHIN = timedelta(hours=12)
ITEM_RE = re.compile(r"^[A-Z0-9][A-Z0-9%\-]{0,39}$")
Outcome = rec.Outcome


@dataclass(frozen=True)
class RepeatIn:
    """The doctor repeats the test anyway: a reason code (§4.3), its text, patient informed."""

    reason: str
    patient_informed: bool | None
    text: str | None = None


@dataclass(frozen=True)
class ValueView:
    code: str
    display: str
    value: str
    unit: str | None
    flag: str | None
    ref: str | None


@dataclass(frozen=True)
class OfferView:
    """A recognisable result as offered at the check: where, when, its values, until when."""

    report_id: int
    org_id: int
    org_name: str
    level: str
    category: str | None
    display: str | None
    reported_at: datetime
    mark: str | None
    age_days: int
    validity_days: int | None
    valid_until: date | None
    values: list[ValueView]
    imaging: dict[str, Any] | None


@dataclass(frozen=True)
class RejectedView:
    report_id: int
    org_id: int
    org_name: str
    level: str | None
    reported_at: datetime
    reasons: list[dict[str, Any]]


@dataclass(frozen=True)
class DecisionView:
    id: int
    patient_id: int
    item: str
    item_zh: str | None
    item_en: str | None
    ordering_org_id: int
    ordering_org_name: str
    outcome: str  # pending or a recognition.Outcome
    decided_at: datetime
    physician: str
    candidates: list[OfferView]
    rejections: list[RejectedView]
    order_reasons: list[dict[str, Any]]
    recognised_report_id: int | None
    override_reason: str | None
    override_text: str | None
    patient_informed: bool | None
    price_cny: float | None
    catalogue_version: str

    @property
    def pending(self) -> bool:
        return self.outcome == PENDING


def repeat_reasons() -> list[tuple[str, str, str, bool]]:
    """(code, zh, en, national) of the reasons a doctor may give for a repeat, national first."""
    return ([(str(k), zh, en, True) for k, (zh, en) in NATIONAL_REASONS.items()]
            + [(str(k), zh, en, False) for k, (zh, en) in LOCAL_REASONS.items()
               if str(k) in rec.Policy().local_reasons])


# -- step 1: the check ----------------------------------------------------------------------------

def check_prior_results(session: Session, actor: Actor, *, patient_id: int, item: str, ordering_org_id: int,
                        now: datetime | None = None) -> DecisionView:
    """Weigh the patient's prior results of ``item`` for an order at ``ordering_org_id`` and
    log the offer (final at once when there is nothing to recognise)."""
    now = aware(now or utcnow(), "now")
    item = (item or "").strip()
    if not ITEM_RE.match(item):
        raise Invalid("RES-120", "item: a catalogue item code (1–40 capitals, digits, '%' or '-')", {"field": "item"})
    with transaction(session):
        access.check(session, actor, Perm.RESULT_ORDER, AuditAction.CREATE, resource_type="RecognitionDecision",
                     org_id=ordering_org_id, audit_success=False)
        org = registry_queries.organization_or_none(session, ordering_org_id)
        if org is None:
            raise NotFound("RES-121", f"no organisation {ordering_org_id}", {"field": "ordering_org_id"})
        target = patient_queries.resolve(session, patient_id).id
        access.check(session, actor, Perm.PATIENT_READ, AuditAction.VIEW, resource_type="PriorResults",
                     resource_id=target, org_id=org.id, patient_id=target, detail={"item": item})
        cat = catalogue_of(session)
        reports = _prior_reports(session, patient_queries.merged_family(session, target), item)
        priors, versions = _priors(session, reports, item)
        eqa = EqaFacts(eqa_records(session, labs=[int(p.lab) for p in priors], item=item,
                                   years={local_day(p.reported_at).year for p in priors}
                                   | {local_day(p.reported_at).year - 1 for p in priors}))
        order = rec.Order(item=item, org=str(org.id), level=org.level, region=org.division.code,
                          physician=actor.username)
        decision = rec.decide(order, priors, catalogue=cat, eqa=eqa, now=now)
        row = Decision(patient_id=target, item=item, ordering_org_id=org.id, physician=actor.username[:100],
                       outcome=PENDING if decision.recognisable else str(decision.outcome),
                       candidates=[{**c.as_dict(), **versions[c.result.id]} for c in decision.recognisable],
                       rejections=[{**r.as_dict(), "level": r.result.level, **versions[r.result.id]}
                                   for r in decision.not_recognisable],
                       price_cny=decision.price_cny, catalogue_version=cat.version, decided_at=now)
        session.add(row)
        session.flush()
        audit.record(session, actor, AuditAction.CREATE, resource_type="RecognitionDecision", resource_id=row.id,
                     org_id=org.id, patient_id=target,
                     detail={"item": item, "outcome": row.outcome, "offered": len(row.candidates),
                             "not_recognisable": len(row.rejections)})
        return _view(session, row)


def _prior_reports(session: Session, family: set[int], item: str) -> list[Report]:
    """The reports of the item as a whole (an imaging study, a panel) or holding a result of it."""
    via = select(Observation.report_id).where(Observation.patient_id.in_(family), Observation.item == item)
    return list(session.scalars(select(Report).where(Report.patient_id.in_(family),
                                                     or_(Report.item == item, Report.id.in_(via)))))


def _priors(session: Session, reports: list[Report], item: str) -> tuple[list[rec.PriorResult], dict[str, dict]]:
    """Prior results for ``recognition.decide`` with the issuer's level and division, and
    what is stored with the offer to tell later whether the report has changed."""
    ids = [r.id for r in reports]
    if not ids:
        return [], {}
    data = set(session.scalars(select(Observation.report_id).where(Observation.report_id.in_(ids))
                               .group_by(Observation.report_id)))
    data |= set(session.scalars(select(ImagingStudy.report_id).where(ImagingStudy.report_id.in_(ids))))
    orgs = {o.id: o for o in registry_queries.search_organizations(
        session, registry_queries.OrgFilter(ids=sorted({r.issuer_org_id for r in reports})), limit=10_000).items}
    priors, versions = [], {}
    for r in reports:
        org = orgs[r.issuer_org_id]
        priors.append(rec.PriorResult(
            id=str(r.id), item=item, org=str(r.issuer_org_id), level=org.level, region=org.division.code,
            lab=str(r.lab_org_id or r.issuer_org_id), reported_at=r.issued_at, mark=r.mark,
            status=REPORT_STATUS.get(r.status, r.status if r.status in STATUSES else "unknown"),
            conclusion=r.id not in data))  # only the physician's conclusion: never recognised (Art. 2)
        versions[str(r.id)] = {"version": r.version, "status": r.status, "category": r.category}
    return priors, versions


# -- step 2: the doctor's answer --------------------------------------------------------------------

def record_decision(session: Session, actor: Actor, *, decision_id: int, accept: int | None = None,
                    override: RepeatIn | None = None, now: datetime | None = None) -> DecisionView:
    """Recognise one offered result (``accept``: its report id) or repeat with a reason."""
    now = aware(now or utcnow(), "now")
    if (accept is None) == (override is None):
        raise Invalid("RES-125", "answer with either the recognised result (accept) or the reason to repeat"
                      " (override), not both", {"field": "accept"})
    if override is not None and override.text is not None and len(override.text) > 500:
        raise Invalid("RES-130", "text: at most 500 characters", {"field": "text"})
    with transaction(session):
        row = session.get(Decision, decision_id, with_for_update=True)
        if row is None:
            raise NotFound("RES-123", f"no recognition decision {decision_id}", {"field": "decision_id"})
        access.check(session, actor, Perm.RESULT_ORDER, AuditAction.UPDATE, resource_type="RecognitionDecision",
                     resource_id=row.id, org_id=row.ordering_org_id, audit_success=False)
        access.check(session, actor, Perm.PATIENT_READ, AuditAction.VIEW, resource_type="PriorResults",
                     resource_id=row.patient_id, patient_id=row.patient_id, audit_success=False)
        _check_open(session, row, now)
        if accept is not None:
            offer = next((c for c in row.candidates if c["result"] == str(accept)), None)
            if offer is None:
                raise Invalid("RES-126", f"report {accept} was not offered as a recognisable result by this check",
                              {"field": "accept"})
            _check_unchanged(session, offer, now)
            row.outcome, row.recognised_report_id = str(Outcome.RECOGNISED), accept
        else:
            ov = make_override(override.reason, physician=actor.username, patient_informed=override.patient_informed,
                               text=override.text, local_reasons=rec.Policy().local_reasons)
            row.outcome = str(Outcome.REPEAT_WITH_REASON)
            row.override_reason, row.override_text, row.patient_informed = str(ov.reason), ov.text, ov.patient_informed
        row.physician, row.decided_at = actor.username[:100], now
        audit.record(session, actor, AuditAction.UPDATE, resource_type="RecognitionDecision", resource_id=row.id,
                     org_id=row.ordering_org_id, patient_id=row.patient_id,
                     detail={"item": row.item, "outcome": row.outcome, "report": accept,
                             "reason": row.override_reason, "patient_informed": row.patient_informed})
        return _view(session, row)


def _check_open(session: Session, row: Decision, now: datetime) -> None:
    if row.outcome != PENDING:
        if not row.candidates:
            raise Conflict("RES-129", f"decision {row.id} offered no recognisable result: the test was ordered"
                           f" ({row.outcome}); there is nothing to answer", {"field": "decision_id"})
        raise Conflict("RES-124", f"decision {row.id} was answered already ({row.outcome}, {row.physician})",
                       {"field": "decision_id"})
    if now - row.decided_at > ANSWER_WITHIN:
        raise PreconditionFailed("RES-127", f"the check is older than {ANSWER_WITHIN.total_seconds() / 3600:g} h;"
                                 " check the prior results again", {"field": "decision_id"})
    seen = {c["result"] for c in row.candidates} | {r["result"] for r in row.rejections}
    family = patient_queries.merged_family(session, row.patient_id)
    now_there = {str(r.id) for r in _prior_reports(session, family, row.item)}
    if now_there - seen:
        raise PreconditionFailed("RES-127", "a new result of this item arrived since the check; check the prior"
                                 " results again", {"field": "decision_id"})


def _check_unchanged(session: Session, offer: dict[str, Any], now: datetime) -> None:
    report = session.get(Report, int(offer["result"]))
    if report is None or report.version != offer["version"] \
            or REPORT_STATUS.get(report.status, report.status) not in FINAL_STATUSES:
        raise PreconditionFailed("RES-128", f"report {offer['result']} has changed since the check (corrected or"
                                 " withdrawn); check the prior results again", {"field": "accept"})
    until = offer.get("valid_until")
    if until is not None and local_day(now) > date.fromisoformat(until):
        raise PreconditionFailed("RES-128", f"report {offer['result']} was valid until {until}; it has expired"
                                 " since the check", {"field": "accept"})


def get_decision(session: Session, actor: Actor, decision_id: int) -> DecisionView:
    """A logged decision with its offer, for the ordering organisation's staff (audited)."""
    with transaction(session):
        row = session.get(Decision, decision_id)
        if row is None:
            raise NotFound("RES-123", f"no recognition decision {decision_id}", {"field": "decision_id"})
        access.check(session, actor, Perm.RESULT_ORDER, AuditAction.VIEW, resource_type="RecognitionDecision",
                     resource_id=row.id, org_id=row.ordering_org_id, audit_success=False)
        access.check(session, actor, Perm.PATIENT_READ, AuditAction.VIEW, resource_type="RecognitionDecision",
                     resource_id=row.id, org_id=row.ordering_org_id, patient_id=row.patient_id)
        return _view(session, row)


# -- the view -----------------------------------------------------------------------------------------

def _view(session: Session, row: Decision) -> DecisionView:
    cat = catalogue_of(session)
    found = cat.find(row.item)
    orgs = {int(c["org"]) for c in row.candidates} | {int(r["org"]) for r in row.rejections} | {row.ordering_org_id}
    names = registry_queries.names_of(session, orgs=sorted(orgs))["org"]
    values, imaging = _details(session, [int(c["result"]) for c in row.candidates], row.item)
    offers = [OfferView(int(c["result"]), int(c["org"]), names.get(int(c["org"]), ""), c["level"], c.get("category"),
                        values.get(int(c["result"]), ("", []))[0] or None,
                        datetime.fromisoformat(c["reported_at"]), c.get("mark"), c["age_days"], c.get("validity_days"),
                        date.fromisoformat(c["valid_until"]) if c.get("valid_until") else None,
                        values.get(int(c["result"]), ("", []))[1], imaging.get(int(c["result"])))
              for c in row.candidates]
    rejected = [RejectedView(int(r["result"]), int(r["org"]), names.get(int(r["org"]), ""), r.get("level"),
                             datetime.fromisoformat(r["reported_at"]), list(r["reasons"])) for r in row.rejections]
    rejected.sort(key=lambda r: (r.reported_at, r.report_id), reverse=True)  # newest first, as the offers
    order_reasons = []
    if row.outcome == str(Outcome.NOT_APPLICABLE):
        order_reasons = [{"code": str(rec.Why.NOT_IN_CATALOGUE if found is None else rec.Why.NOT_RECOGNISED_AT_LEVEL)}]
    return DecisionView(row.id, row.patient_id, row.item, found.zh if found else None, found.en if found else None,
                        row.ordering_org_id, names.get(row.ordering_org_id, ""), row.outcome, row.decided_at,
                        row.physician, offers, rejected, order_reasons, row.recognised_report_id, row.override_reason,
                        row.override_text, row.patient_informed, row.price_cny, row.catalogue_version)


def _details(session: Session, ids: list[int], item: str) -> tuple[dict[int, tuple[str, list[ValueView]]],
                                                                    dict[int, dict[str, Any]]]:
    """The offered reports' title and values of the item, and their imaging studies."""
    if not ids:
        return {}, {}
    heads = session.execute(select(Report.id, Report.item, Report.display).where(Report.id.in_(ids))).all()
    whole, titles = {i: it for i, it, _ in heads}, {i: title for i, _, title in heads}
    values: dict[int, tuple[str, list[ValueView]]] = {i: (titles.get(i, ""), []) for i in ids}
    for o in session.scalars(select(Observation).where(Observation.report_id.in_(ids))
                             .order_by(Observation.report_id, Observation.seq)):
        if o.item == item or (o.item is None and whole.get(o.report_id) == item):
            values[o.report_id][1].append(ValueView(o.code, o.display, _value(o), o.unit, o.flag, _ref(o)))
    imaging = {s.report_id: {"modality": s.modality, "body_site": s.body_site, "description": s.description,
                             "started_at": s.started_at, "series": s.series_count, "instances": s.instance_count,
                             "study_uid": s.study_uid}
               for s in session.scalars(select(ImagingStudy).where(ImagingStudy.report_id.in_(ids)))}
    return values, imaging


def _value(o: Observation) -> str:
    return f"{o.value_num:g}" if o.value_num is not None else (o.value_text or "")


def _ref(o: Observation) -> str | None:
    if o.ref_text:
        return o.ref_text
    if o.ref_low is not None and o.ref_high is not None:
        return f"{o.ref_low:g}–{o.ref_high:g}"
    return f"<{o.ref_high:g}" if o.ref_high is not None else (f">{o.ref_low:g}" if o.ref_low is not None else None)


# -- access: issuing or ordering a result is a care relationship -----------------------------------------

def _result_relationship(session: Session, actor: Actor, patient_id: int) -> str | None:
    """Staff of an organisation that issued or ordered one of the patient's results."""
    mine = sorted({g.scope_id for g in actor.grants if g.scope_kind is ScopeKind.ORGANIZATION and g.scope_id})
    if not mine:
        return None
    found = session.scalar(select(func.min(Report.id)).where(
        Report.patient_id == patient_id, or_(Report.issuer_org_id.in_(mine), Report.ordering_org_id.in_(mine))))
    return "result" if found is not None else None


access.register_relationship_source(_result_relationship)
