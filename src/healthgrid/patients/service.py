"""Use cases of the master patient index: register, update, read and search residents.

Registration (../shared/specs/domain-rules.md §10.2): an identifier already known (resident
ID, e-health card, insurance number, this facility's record number) links deterministically;
otherwise the blocked candidates are scored (matching.py) and the best one either links
automatically, goes to the review queue with a new record made meanwhile, or a new record
is made. Every other context asks ``resolve_patient_id`` for the record that stands for a
patient now, so a merge is seen everywhere without moving a row.

Access: registering needs ``patient.write`` at the registering facility; reading a record
needs a relationship (the patient is registered at, or holds a record number of, one of the
reader's organisations — registered here as a relationship source), a population scope
over those organisations, or breaking the glass (security.access). Search results are
masked unless the reader holds ``pii.unmasked``; every search and view is audited.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import outbox
from ..db import in_transaction, transaction, utcnow
from ..errors import Conflict, HealthGridError, Invalid, NotFound, PreconditionFailed
from ..registry import queries as registry_queries
from ..security import access, audit, pii
from ..security.domain import Actor, AuditAction, Perm, ScopeKind
from . import domain as d
from . import matching, queries
from .merging import queue_review
from .models import Patient, PatientIdentifier
from .queries import PatientSummary, PatientView, TimelineEntry

MAX_REVIEWS_PER_REGISTRATION = 5


@dataclass
class KinIn:
    name: str
    relationship: str = "other"
    phone: str | None = None


@dataclass
class PatientIn:
    name: str
    name_pinyin: str | None = None
    sex: str | None = None
    birth_date: date | None = None
    resident_id: str | None = None
    health_card: str | None = None
    insurance: str | None = None
    mrn: str | None = None  # the registering facility's own record number
    phone: str | None = None
    division_id: int | None = None
    address_line: str | None = None
    kin: list[KinIn] = field(default_factory=list)


@dataclass
class Registration:
    patient: PatientView
    outcome: str  # created | linked | review
    matched_by: str | None  # resident_id | health_card | insurance | mrn | probabilistic
    probability: float | None = None
    reviews: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Valid:
    demo: d.Demographics
    identifiers: list[tuple[d.IdentifierKind, int, str]]  # kind, assigner, normalised value
    kin: list[KinIn]
    township_id: int | None
    display_pinyin: str  # as written at registration, or computed; demo.pinyin is always computed


class _Raced(Exception):
    """Another session registered one of the identifiers between our lookup and our insert."""


# -- validation --------------------------------------------------------------------------------

def validate(session: Session, data: PatientIn, *, org_id: int | None, today: date) -> _Valid:
    name = d.normalise_name(data.name)
    # The matcher keys on the pinyin computed from the characters, the same at every facility;
    # a pinyin written at registration (a polyphonic given name) is kept for display.
    pinyin = d.name_pinyin(name)
    display_pinyin = d.normalise_pinyin(data.name_pinyin) or pinyin
    sex = d.normalise_sex(data.sex) if data.sex else None
    d.check_birth_date(data.birth_date, today)
    identifiers: list[tuple[d.IdentifierKind, int, str]] = []
    given = ((d.IdentifierKind.RESIDENT_ID, data.resident_id), (d.IdentifierKind.HEALTH_CARD, data.health_card),
             (d.IdentifierKind.INSURANCE, data.insurance), (d.IdentifierKind.MRN, data.mrn))
    for kind, raw in given:
        if raw is None or not str(raw).strip():
            continue
        if kind is d.IdentifierKind.MRN and org_id is None:
            raise Invalid("PAT-011", "mrn: a medical record number needs the registering organisation",
                          {"field": "mrn"})
        value = d.normalise_identifier(kind, str(raw), today=today, field_name=kind.value)
        identifiers.append((kind, org_id if kind is d.IdentifierKind.MRN else 0, value))
    resident_id = next((v for k, _, v in identifiers if k is d.IdentifierKind.RESIDENT_ID), None)
    sex, born = d.reconcile_with_id(resident_id, sex, data.birth_date)
    phone = d.normalise_phone(data.phone)
    township_id = _township_of(session, data.division_id)
    kin = [_valid_kin(k, i) for i, k in enumerate(data.kin)]
    address = (data.address_line or "").strip()[:200] or None
    demo = d.Demographics(name, pinyin, sex, born, resident_id, phone, data.division_id, address)
    return _Valid(demo, identifiers, kin, township_id, display_pinyin)


def _valid_kin(k: KinIn, i: int) -> KinIn:
    name = d.normalise_name(k.name, f"kin[{i}].name")
    if k.relationship not in d.KIN_RELATIONSHIPS:
        raise Invalid("PAT-012", f"kin[{i}].relationship: expected one of {', '.join(d.KIN_RELATIONSHIPS)}",
                      {"field": f"kin[{i}].relationship"})
    return KinIn(name, k.relationship, d.normalise_phone(k.phone, f"kin[{i}].phone"))


def _township_of(session: Session, division_id: int | None) -> int | None:
    if division_id is None:
        return None
    found = registry_queries.divisions_by_ids(session, [division_id])
    if not found:
        raise Invalid("PAT-009", f"division_id: no division {division_id}", {"field": "division_id"})
    return found[0].township_id


# -- registration ------------------------------------------------------------------------------

def register_patient(session: Session, actor: Actor, *, org_id: int | None, data: PatientIn,
                     today: date | None = None) -> Registration:
    """Register a resident at a facility: link to the existing record or make a new one."""
    for attempt in (1, 2):
        try:
            return _register(session, actor, org_id=org_id, data=data, today=today or date.today())
        except _Raced:
            if attempt == 2 or in_transaction(session):
                raise Conflict("PAT-023", "another registration of the same identifier was saved at the same"
                                          " moment; register again to link to it") from None
    raise AssertionError("unreachable")


def _register(session: Session, actor: Actor, *, org_id: int | None, data: PatientIn, today: date) -> Registration:
    with transaction(session):
        access.check(session, actor, Perm.PATIENT_WRITE, AuditAction.CREATE, resource_type="Patient",
                     org_id=org_id, audit_success=False)
        valid = validate(session, data, org_id=org_id, today=today)
        keys = [(k.value, a, pii.blind(session, v, d.IDENTIFIER_PURPOSE[k])) for k, a, v in valid.identifiers]
        found = matching.find_by_identifiers(session, keys)
        owners = {queries.resolve(session, pid).id for pid in found.values()}
        if len(owners) > 1:
            raise Conflict("PAT-021", "these identifiers belong to different patients ("
                           + ", ".join(f"{k}: {pid}" for (k, _), pid in found.items()) + "); merge them first")
        if owners:
            patient = session.get(Patient, owners.pop())
            matched_by, probability = next(iter(found))[0], None
        else:
            probe = _probe(session, valid, keys)
            ranked = matching.candidates(session, probe)
            best = ranked[0] if ranked else None
            if best is not None and best.comparison.decision == "link":
                patient, matched_by, probability = session.get(Patient, best.patient_id), "probabilistic", \
                    best.comparison.probability
            else:
                return _create(session, actor, valid, keys, org_id, ranked)
        _link(session, patient, valid, keys)
        audit.record(session, actor, AuditAction.UPDATE, resource_type="Patient", resource_id=patient.id,
                     org_id=org_id, patient_id=patient.id,
                     detail={"outcome": "linked", "matched_by": matched_by, "probability": probability})
        outbox.publish(session, "patient.linked", {"patient_id": patient.id, "org_id": org_id,
                                                   "matched_by": matched_by})
        return Registration(queries.view(session, patient, unmasked=actor.can(Perm.PII_UNMASKED)), "linked",
                            matched_by, probability)


def _probe(session: Session, valid: _Valid, keys: list[tuple[str, int, str]]) -> matching.Probe:
    demo = valid.demo
    id_key = next((b for k, _, b in keys if k == d.IdentifierKind.RESIDENT_ID.value), None)
    phone_key = pii.blind(session, demo.phone, "patient.phone") if demo.phone else None
    record = d.MatchRecord(demo.name, demo.pinyin, demo.sex, demo.birth_date, id_key, phone_key,
                           demo.division_id, valid.township_id)
    return matching.Probe(record, d.name_key(demo.pinyin), demo.birth_date.year if demo.birth_date else None)


def _create(session: Session, actor: Actor, valid: _Valid, keys: list[tuple[str, int, str]], org_id: int | None,
            ranked: list[matching.Candidate]) -> Registration:
    patient = Patient(registered_org_id=org_id)
    _write_demographics(session, patient, valid)
    session.add(patient)
    try:
        with session.begin_nested():
            session.flush()
            _add_identifiers(session, patient.id, valid, keys)
            session.flush()
    except IntegrityError as exc:
        raise _Raced() from exc
    reviews = []
    for cand in [c for c in ranked if c.comparison.decision == "review"][:MAX_REVIEWS_PER_REGISTRATION]:
        review = queue_review(session, patient.id, cand.patient_id, cand.comparison, source="registration")
        reviews.append(review.id)
    outcome = "review" if reviews else "created"
    top = ranked[0].comparison.probability if ranked else None
    audit.record(session, actor, AuditAction.CREATE, resource_type="Patient", resource_id=patient.id,
                 org_id=org_id, patient_id=patient.id, detail={"outcome": outcome, "reviews": reviews})
    outbox.publish(session, "patient.registered", {"patient_id": patient.id, "org_id": org_id, "outcome": outcome})
    return Registration(queries.view(session, patient, unmasked=actor.can(Perm.PII_UNMASKED)), outcome, None,
                        top, reviews)


def _write_demographics(session: Session, patient: Patient, valid: _Valid) -> None:
    demo = valid.demo
    patient.name, patient.name_pinyin, patient.name_key = demo.name, valid.display_pinyin, d.name_key(demo.pinyin)
    patient.sex, patient.birth_date = demo.sex, demo.birth_date
    patient.birth_year = demo.birth_date.year if demo.birth_date else None
    patient.phone_enc = pii.seal(session, demo.phone, "patient.phone")
    patient.phone_bidx = pii.blind(session, demo.phone, "patient.phone") if demo.phone else None
    patient.division_id, patient.township_id = demo.division_id, valid.township_id
    patient.address_enc = pii.seal(session, demo.address_line, "patient.address")
    kin = json.dumps([k.__dict__ for k in valid.kin], ensure_ascii=False) if valid.kin else None
    patient.kin_enc = pii.seal(session, kin, "patient.kin")
    patient.updated_at = utcnow()


def _add_identifiers(session: Session, patient_id: int, valid: _Valid, keys: list[tuple[str, int, str]]) -> None:
    have = set(session.execute(select(PatientIdentifier.kind, PatientIdentifier.assigner,
                                      PatientIdentifier.value_bidx)
                               .where(PatientIdentifier.patient_id == patient_id)).all())
    for (kind, assigner, value), key in zip(valid.identifiers, keys, strict=True):
        if key in have:
            continue
        session.add(PatientIdentifier(patient_id=patient_id, kind=kind.value, assigner=assigner,
                                      value_enc=pii.seal(session, value, "patient.identifier"), value_bidx=key[2]))


def _link(session: Session, patient: Patient, valid: _Valid, keys: list[tuple[str, int, str]]) -> None:
    """Attach what the registration brought to the existing record, without overwriting:
    new identifiers are added, missing demographics filled in."""
    rid = session.scalar(select(PatientIdentifier.value_bidx).where(
        PatientIdentifier.patient_id == patient.id, PatientIdentifier.kind == d.IdentifierKind.RESIDENT_ID.value))
    new_rid = next((b for k, _, b in keys if k == d.IdentifierKind.RESIDENT_ID.value), None)
    if rid and new_rid and rid != new_rid:
        raise Conflict("PAT-022", f"patient {patient.id} already has another resident ID number; check the number"
                                  " or the identifiers given with it")
    if new_rid and not rid and patient.birth_date not in (None, valid.demo.birth_date):
        raise Conflict("PAT-022", f"patient {patient.id}'s birth date differs from the one in this ID number")
    demo = valid.demo
    if patient.birth_date is None and demo.birth_date is not None:
        patient.birth_date, patient.birth_year = demo.birth_date, demo.birth_date.year
    if patient.sex == "U" and demo.sex != "U":
        patient.sex = demo.sex
    if patient.phone_bidx is None and demo.phone:
        patient.phone_enc = pii.seal(session, demo.phone, "patient.phone")
        patient.phone_bidx = pii.blind(session, demo.phone, "patient.phone")
    if patient.division_id is None and demo.division_id is not None:
        patient.division_id, patient.township_id = demo.division_id, valid.township_id
    try:
        with session.begin_nested():
            _add_identifiers(session, patient.id, valid, keys)
            session.flush()
    except IntegrityError as exc:
        raise _Raced() from exc


# -- update ------------------------------------------------------------------------------------

def update_patient(session: Session, actor: Actor, patient_id: int, *, data: PatientIn, org_id: int | None = None,
                   expected_version: int | None = None, today: date | None = None) -> PatientView:
    """Replace a record's demographics; identifiers given are added (a national one replaces
    the previous value of its kind). A merged-away record cannot be changed."""
    with transaction(session):
        patient = queries.get(session, patient_id)
        access.check(session, actor, Perm.PATIENT_WRITE, AuditAction.UPDATE, resource_type="Patient",
                     resource_id=patient_id, patient_id=patient_id, org_id=org_id)
        if patient.replaced_by is not None:
            raise Conflict("PAT-024", f"patient {patient_id} was merged into {patient.replaced_by}; update that record")
        if expected_version is not None and expected_version != patient.version:
            raise PreconditionFailed("PAT-025", f"patient {patient_id} is at version {patient.version},"
                                                f" not {expected_version}; read it again")
        valid = validate(session, data, org_id=org_id, today=today or date.today())
        keys = [(k.value, a, pii.blind(session, v, d.IDENTIFIER_PURPOSE[k])) for k, a, v in valid.identifiers]
        _replace_national(session, patient.id, valid, keys)
        _write_demographics(session, patient, valid)
        try:
            with session.begin_nested():
                _add_identifiers(session, patient.id, valid, keys)
                session.flush()
        except IntegrityError as exc:
            raise Conflict("PAT-026", "one of these identifiers belongs to another patient; merge them instead") \
                from exc
        outbox.publish(session, "patient.updated", {"patient_id": patient.id})
        return queries.view(session, patient, unmasked=actor.can(Perm.PII_UNMASKED))


def _replace_national(session: Session, patient_id: int, valid: _Valid, keys: list[tuple[str, int, str]]) -> None:
    for (kind, assigner, _value), key in zip(valid.identifiers, keys, strict=True):
        if kind is d.IdentifierKind.MRN:
            continue
        for old in session.scalars(select(PatientIdentifier).where(
                PatientIdentifier.patient_id == patient_id, PatientIdentifier.kind == kind.value,
                PatientIdentifier.assigner == assigner, PatientIdentifier.value_bidx != key[2])):
            session.delete(old)
    session.flush()


# -- reading -----------------------------------------------------------------------------------

def resolve_patient_id(session: Session, patient_id: int) -> int:
    """The id of the record that stands for this patient now (the survivor of any merge)."""
    return queries.resolve(session, patient_id).id


def person_key_of(session: Session, patient_id: int) -> str | None:
    """The security context's key of the person (the blind index of their ID number under
    its own purpose), so that a resident logged in with that ID number is recognised as this
    patient; None for a patient without a resident ID."""
    from ..security import service as security_service

    for token in session.scalars(select(PatientIdentifier.value_enc).where(
            PatientIdentifier.patient_id == patient_id, PatientIdentifier.kind == d.IdentifierKind.RESIDENT_ID.value)):
        number = pii.unseal(session, token, "patient.identifier")
        if number:
            return security_service.find_person_key(session, number)
    return None


def patient_of_id_number(session: Session, id_number: str) -> int | None:
    """The standing record holding this resident ID number, or None (no audit: callers check
    access on what they do with it)."""
    try:
        value = d.normalise_identifier(d.IdentifierKind.RESIDENT_ID, id_number, today=date.today(),
                                       field_name="resident_id")
    except Invalid:
        return None
    bidx = pii.blind(session, value, d.IDENTIFIER_PURPOSE[d.IdentifierKind.RESIDENT_ID])
    pid = session.scalar(select(PatientIdentifier.patient_id).where(
        PatientIdentifier.kind == d.IdentifierKind.RESIDENT_ID.value, PatientIdentifier.value_bidx == bidx))
    return queries.resolve(session, pid).id if pid is not None else None


def patient_names(session: Session, patient_ids: list[int]) -> dict[int, str]:
    """Names by id, for lists the caller has already checked access to."""
    if not patient_ids:
        return {}
    return dict(session.execute(select(Patient.id, Patient.name).where(Patient.id.in_(set(patient_ids)))).all())


def get_patient(session: Session, actor: Actor, patient_id: int, *, follow: bool = True) -> PatientView:
    """A patient's record, checked and audited as a view. ``follow``: a merged-away id answers
    with its survivor (FHIR reads ask for the record itself)."""
    with transaction(session):
        standing = queries.resolve(session, patient_id)
        patient = standing if follow else queries.get(session, patient_id)
        target = standing.id
        access.check(session, actor, Perm.PATIENT_READ, AuditAction.VIEW, resource_type="Patient",
                     resource_id=patient.id, patient_id=target)
        return queries.view(session, patient, unmasked=actor.can(Perm.PII_UNMASKED))


@dataclass
class PatientQuery:
    identifier_kind: str | None = None
    identifier: str | None = None
    name: str | None = None  # characters or pinyin; homophones match
    birth_date: date | None = None
    sex: str | None = None
    phone: str | None = None
    division_id: int | None = None


@dataclass
class PatientPage:
    total: int
    items: list[PatientSummary]


def search_patients(session: Session, actor: Actor, query: PatientQuery, *, offset: int = 0,
                    limit: int = 20) -> PatientPage:
    """Find residents by identifier, name (+ birth date), phone or place. Results are the
    records standing now (a merged-away identifier finds its survivor), masked for readers
    without ``pii.unmasked``. Audited as a search, with the criteria used but not their values."""
    with transaction(session):
        used = sorted(k for k, v in query.__dict__.items() if v not in (None, ""))
        access.check(session, actor, Perm.PATIENT_READ, AuditAction.SEARCH, resource_type="Patient",
                     detail={"criteria": used})
        stmt = _search_statement(session, query)
        if stmt is None:
            return PatientPage(0, [])
        rows = list(session.scalars(stmt.order_by(Patient.id).offset(offset).limit(limit + 1)))
        items = queries.summaries(session, rows[:limit], unmasked=actor.can(Perm.PII_UNMASKED))
        total = offset + len(rows) if len(rows) <= limit else offset + limit + 1
        return PatientPage(total, items)


def pick_patients(session: Session, actor: Actor, *, name: str = "", resident_id: str = "",
                  limit: int = 20) -> tuple[list | None, HealthGridError | None]:
    """Staff pick a patient by name or resident ID on a form (booking, the exam centre, a
    referral): (summaries, None), ([], the refusal), or (None, None) before anything is typed."""
    name, resident_id = name.strip(), resident_id.strip()
    if not (name or resident_id):
        return None, None
    query = PatientQuery(name=name or None, identifier_kind="resident_id" if resident_id else None,
                         identifier=resident_id or None)
    try:
        return search_patients(session, actor, query, limit=limit).items, None
    except HealthGridError as exc:
        return [], exc


def _search_statement(session: Session, q: PatientQuery):
    stmt = select(Patient).where(Patient.replaced_by.is_(None))
    criteria = False
    if q.identifier:
        kind = d.IdentifierKind(q.identifier_kind or d.IdentifierKind.RESIDENT_ID.value)
        try:
            value = d.normalise_identifier(kind, q.identifier, today=date.today(), field_name="identifier")
        except Invalid:
            return None  # a malformed number finds nobody
        bidx = pii.blind(session, value, d.IDENTIFIER_PURPOSE[kind])
        holders = list(session.scalars(select(PatientIdentifier.patient_id).where(
            PatientIdentifier.kind == kind.value, PatientIdentifier.value_bidx == bidx)))
        ids = {queries.resolve(session, pid).id for pid in holders}
        stmt, criteria = stmt.where(Patient.id.in_(ids or {-1})), True
    if q.name:
        text = q.name.strip()
        key = d.name_key(d.name_pinyin(text) if not text.isascii() else (d.normalise_pinyin(text) or ""))
        stmt, criteria = stmt.where(or_(Patient.name == text, Patient.name_key == key)), True
    if q.birth_date:
        stmt, criteria = stmt.where(Patient.birth_date == q.birth_date), True
    if q.sex:
        stmt = stmt.where(Patient.sex == d.normalise_sex(q.sex))
    if q.phone:
        phone = d.normalise_phone(q.phone)
        stmt, criteria = stmt.where(Patient.phone_bidx == pii.blind(session, phone, "patient.phone")), True
    if q.division_id:
        stmt, criteria = stmt.where(Patient.division_id == q.division_id), True
    if not criteria:
        raise Invalid("PAT-013", "search: give an identifier, a name, a birth date, a phone or a place",
                      {"field": "query"})
    return stmt


def match_patients(session: Session, actor: Actor, data: PatientIn, *, org_id: int | None = None,
                   count: int = 10, only_certain: bool = False) -> list[tuple[PatientSummary, float, str]]:
    """FHIR Patient/$match: scored candidates for a patient described but not registered."""
    with transaction(session):
        access.check(session, actor, Perm.PATIENT_READ, AuditAction.SEARCH, resource_type="Patient",
                     detail={"operation": "$match"})
        valid = validate(session, data, org_id=org_id, today=date.today())
        keys = [(k.value, a, pii.blind(session, v, d.IDENTIFIER_PURPOSE[k])) for k, a, v in valid.identifiers]
        scored: dict[int, tuple[float, str]] = {}
        for pid in matching.find_by_identifiers(session, keys).values():
            scored[queries.resolve(session, pid).id] = (1.0, "certain")
        for cand in matching.candidates(session, _probe(session, valid, keys)):
            grade = {"link": "certain", "review": "possible", "new": "certainly-not"}[cand.comparison.decision]
            if cand.patient_id not in scored and grade != "certainly-not":
                scored[cand.patient_id] = (cand.comparison.probability, grade)
        ranked = sorted(scored.items(), key=lambda kv: kv[1][0], reverse=True)
        if only_certain:
            ranked = [r for r in ranked if r[1][1] == "certain"][:1]
        ranked = ranked[:count]
        rows = {p.id: p for p in session.scalars(select(Patient).where(Patient.id.in_([r[0] for r in ranked])))}
        items = queries.summaries(session, [rows[r[0]] for r in ranked], unmasked=actor.can(Perm.PII_UNMASKED))
        return [(item, r[1][0], r[1][1]) for item, r in zip(items, ranked, strict=True)]


# -- the patient's timeline ----------------------------------------------------------------------

# (session, actor, ids of the record and those merged into it) -> entries. Clinical contexts
# (encounters, referrals, results) register theirs; the index contributes its own events.
TimelineSource = Callable[[Session, Actor, set[int]], list[TimelineEntry]]
TIMELINE_SOURCES: list[TimelineSource] = []


def register_timeline_source(fn: TimelineSource) -> None:
    if fn not in TIMELINE_SOURCES:
        TIMELINE_SOURCES.append(fn)


def patient_timeline(session: Session, actor: Actor, patient_id: int, *, limit: int = 200) -> list[TimelineEntry]:
    """What happened to a patient across the region, newest first, over the record and every
    record merged into it; checked and audited as a view of the record."""
    with transaction(session):
        target = queries.resolve(session, patient_id).id
        access.check(session, actor, Perm.PATIENT_READ, AuditAction.VIEW, resource_type="PatientTimeline",
                     resource_id=target, patient_id=target)
        family = queries.merged_family(session, target)
        entries = queries.index_events(session, family)
        for source in TIMELINE_SOURCES:
            entries.extend(source(session, actor, family))
        entries.sort(key=lambda e: e.at, reverse=True)
        return entries[:limit]


# -- access: the index's own relationship to a patient ------------------------------------------

def _registered_here(session: Session, actor: Actor, patient_id: int) -> str | None:
    """A patient registered at (or holding a record number of) one of the organisations the
    actor works at directly (an organisation-scope grant) is theirs to see."""
    mine = {g.scope_id for g in actor.grants if g.scope_kind is ScopeKind.ORGANIZATION and g.scope_id}
    if not mine:
        return None
    try:
        target = queries.resolve(session, patient_id).id
    except NotFound:
        return None
    return "registered" if mine & queries.patient_orgs(session, target) else None


def _orgs_of(session: Session, patient_id: int) -> set[int]:
    try:
        return queries.patient_orgs(session, queries.resolve(session, patient_id).id)
    except NotFound:
        return set()


access.register_relationship_source(_registered_here)
access.register_patient_orgs_source(_orgs_of)
