"""Read models of the master patient index: what a screen, the API or FHIR shows of a
patient, decrypted and masked for the reader.

Masking (../shared/specs/domain-rules.md §10.4): ID and card numbers keep their first 6 and
last 4 characters, phones ``138****1234``, the street address is cut to the division, names
in search results become ``张*`` — unless the reader holds ``pii.unmasked``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import NotFound
from ..registry import queries as registry_queries
from ..security import pii
from ..security.domain import mask_id, mask_name, mask_phone
from . import domain as d
from .models import Merge, Patient, PatientIdentifier

MAX_CHAIN = 32  # replaced-by hops followed before giving up (a cycle would be a bug)


@dataclass(frozen=True)
class IdentifierView:
    kind: str
    assigner: int  # 0 for national identifiers, else the assigning organisation's id
    value: str  # masked unless the reader may see it


@dataclass(frozen=True)
class Kin:
    name: str
    relationship: str
    phone: str | None = None


@dataclass
class PatientView:
    id: int
    name: str
    name_pinyin: str
    sex: str
    birth_date: date | None
    phone: str | None
    division_id: int | None
    division_path: list[str]
    address_line: str | None
    identifiers: list[IdentifierView]
    kin: list[Kin]
    registered_org_id: int | None
    active: bool
    replaced_by: int | None
    replaces: list[int]
    version: int
    created_at: datetime
    updated_at: datetime
    masked: bool = True
    merges: list[int] = field(default_factory=list)  # active merge ids where this is the survivor

    def identifier(self, kind: str) -> str | None:
        return next((i.value for i in self.identifiers if i.kind == kind), None)

    @property
    def age(self) -> int | None:
        if self.birth_date is None:
            return None
        today = date.today()
        b = self.birth_date
        return today.year - b.year - ((today.month, today.day) < (b.month, b.day))


def resolve(session: Session, patient_id: int) -> Patient:
    """The record that stands for ``patient_id`` now: itself, or the survivor it was merged
    into (following a chain of merges)."""
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise NotFound("PAT-010", f"no patient {patient_id}")
    for _ in range(MAX_CHAIN):
        if patient.replaced_by is None:
            return patient
        patient = session.get(Patient, patient.replaced_by)
    raise RuntimeError(f"patient {patient_id}: replaced-by chain longer than {MAX_CHAIN}")


def get(session: Session, patient_id: int) -> Patient:
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise NotFound("PAT-010", f"no patient {patient_id}")
    return patient


def patient_orgs(session: Session, patient_id: int) -> set[int]:
    """Organisations holding the patient's records: where they registered, and every facility
    that gave them a record number — over the record and those merged into it."""
    ids = merged_family(session, patient_id)
    orgs = set(session.scalars(select(Patient.registered_org_id).where(Patient.id.in_(ids))))
    orgs |= set(session.scalars(select(PatientIdentifier.assigner).where(
        PatientIdentifier.patient_id.in_(ids), PatientIdentifier.kind == d.IdentifierKind.MRN.value)))
    return {o for o in orgs if o}


def merged_family(session: Session, patient_id: int) -> set[int]:
    """The record and every record merged into it, directly or through a chain."""
    family, frontier = {patient_id}, {patient_id}
    for _ in range(MAX_CHAIN):
        frontier = set(session.scalars(select(Patient.id).where(Patient.replaced_by.in_(frontier)))) - family
        if not frontier:
            break
        family |= frontier
    return family


def view(session: Session, patient: Patient, *, unmasked: bool) -> PatientView:
    idents = session.execute(select(PatientIdentifier).where(PatientIdentifier.patient_id == patient.id)
                             .order_by(PatientIdentifier.id)).scalars()
    identifiers = []
    for ident in idents:
        value = pii.unseal(session, ident.value_enc, "patient.identifier") or ""
        identifiers.append(IdentifierView(ident.kind, ident.assigner, value if unmasked else mask_id(value) or ""))
    phone = pii.unseal(session, patient.phone_enc, "patient.phone")
    kin_raw = pii.unseal(session, patient.kin_enc, "patient.kin")
    kin = [Kin(**k) for k in json.loads(kin_raw)] if kin_raw else []
    if not unmasked:
        kin = [Kin(mask_name(k.name) or "", k.relationship, mask_phone(k.phone)) for k in kin]
    address = pii.unseal(session, patient.address_enc, "patient.address")
    replaces = list(session.scalars(select(Patient.id).where(Patient.replaced_by == patient.id)))
    merges = list(session.scalars(select(Merge.id).where(Merge.survivor_id == patient.id,
                                                         Merge.unmerged_at.is_(None))))
    return PatientView(
        id=patient.id, name=patient.name, name_pinyin=patient.name_pinyin, sex=patient.sex,
        birth_date=patient.birth_date, phone=phone if unmasked else mask_phone(phone),
        division_id=patient.division_id, division_path=division_path(session, patient.division_id),
        address_line=address if unmasked else None, identifiers=identifiers, kin=kin,
        registered_org_id=patient.registered_org_id, active=patient.replaced_by is None,
        replaced_by=patient.replaced_by, replaces=replaces, version=patient.version,
        created_at=patient.created_at, updated_at=patient.updated_at, masked=not unmasked, merges=merges)


def division_path(session: Session, division_id: int | None) -> list[str]:
    if division_id is None:
        return []
    lineage = registry_queries.division_lineage(session, division_id)
    divisions = registry_queries.divisions_by_ids(session, sorted(lineage))
    order = {"province": 0, "city": 1, "county": 2, "township": 3, "village": 4}
    return [dv.name for dv in sorted(divisions, key=lambda dv: order.get(dv.level, 9))]


@dataclass(frozen=True)
class PatientSummary:
    id: int
    name: str
    sex: str
    birth_date: date | None
    resident_id: str | None
    phone: str | None
    division_path: list[str]


def summaries(session: Session, patients: list[Patient], *, unmasked: bool) -> list[PatientSummary]:
    ids = [p.id for p in patients]
    rid = dict(session.execute(select(PatientIdentifier.patient_id, PatientIdentifier.value_enc).where(
        PatientIdentifier.patient_id.in_(ids), PatientIdentifier.kind == d.IdentifierKind.RESIDENT_ID.value)).all())
    out = []
    paths: dict[int | None, list[str]] = {}  # residents of a page share few villages: one lookup each
    for p in patients:
        number = pii.unseal(session, rid.get(p.id), "patient.identifier")
        phone = pii.unseal(session, p.phone_enc, "patient.phone")
        if p.division_id not in paths:
            paths[p.division_id] = division_path(session, p.division_id)
        out.append(PatientSummary(
            p.id, p.name if unmasked else (mask_name(p.name) or ""), p.sex, p.birth_date,
            number if unmasked else mask_id(number), phone if unmasked else mask_phone(phone),
            paths[p.division_id]))
    return out


def count_active(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Patient).where(Patient.replaced_by.is_(None))) or 0


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # registered | identifier | merged | unmerged | … (later contexts add theirs)
    org_id: int | None
    patient_id: int  # which record of the merged family it concerns
    detail: dict = field(default_factory=dict)


def index_events(session: Session, family: set[int]) -> list[TimelineEntry]:
    """The index's own events for a set of records: each record's registration, each
    facility record number given, each merge and unmerge."""
    entries = [TimelineEntry(p.created_at, "registered", p.registered_org_id, p.id, {"name": p.name})
               for p in session.scalars(select(Patient).where(Patient.id.in_(family)))]
    entries += [TimelineEntry(i.created_at, "identifier", i.assigner or None, i.patient_id, {"kind": i.kind})
                for i in session.scalars(select(PatientIdentifier).where(
                    PatientIdentifier.patient_id.in_(family), PatientIdentifier.kind == d.IdentifierKind.MRN.value))]
    for m in session.scalars(select(Merge).where(Merge.survivor_id.in_(family) | Merge.loser_id.in_(family))):
        entries.append(TimelineEntry(m.merged_at, "merged", None, m.loser_id,
                                     {"merge_id": m.id, "survivor_id": m.survivor_id, "loser_id": m.loser_id,
                                      "by": m.merged_by, "reason": m.reason}))
        if m.unmerged_at is not None:
            entries.append(TimelineEntry(m.unmerged_at, "unmerged", None, m.loser_id,
                                         {"merge_id": m.id, "survivor_id": m.survivor_id, "loser_id": m.loser_id,
                                          "by": m.unmerged_by, "reason": m.unmerge_reason}))
    return entries


def standing_residences(conn) -> list[tuple[int, int | None, int | None]]:
    """(id, division id, township id) of every standing record (not merged away), in id
    order: whom the scheduling synth books historical appointments for."""
    return [tuple(r) for r in conn.execute(select(Patient.id, Patient.division_id, Patient.township_id)
                                           .where(Patient.replaced_by.is_(None), Patient.active.is_(True))
                                           .order_by(Patient.id)).all()]
