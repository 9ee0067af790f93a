"""Read models of shared results — a report with its observations and images, an observation,
an imaging study — built from rows for a reader who has been checked (``queries``), with
issuer names and codes, the standing patient record, and the patient's name masked unless
the reader holds ``pii.unmasked``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..patients import service as patients
from ..registry import queries as registry_queries
from ..security.domain import mask_name
from .models import ImagingStudy, Observation, Report


@dataclass
class ObservationView:
    id: int
    report_id: int
    patient_id: int  # the record standing now
    seq: int
    item: str | None
    code_system: str | None
    code: str
    display: str
    value_num: float | None
    value_text: str | None
    unit: str | None
    ref_low: float | None
    ref_high: float | None
    ref_text: str | None
    flag: str | None
    status: str
    effective_at: datetime | None
    issued_at: datetime
    issuer_org_id: int
    issuer_name: str
    issuer_code: str
    category: str  # the report's: LAB | RAD | EC | PAT
    patient_name: str | None = None


@dataclass
class StudyView:
    id: int
    study_uid: str
    report_id: int | None
    patient_id: int
    issuer_org_id: int
    issuer_name: str
    issuer_code: str
    accession_number: str | None
    modality: str | None
    body_site: str | None
    description: str | None
    started_at: datetime | None
    series_count: int | None
    instance_count: int | None
    dicomweb_base: str | None
    pacs_study_id: str | None
    created_at: datetime
    patient_name: str | None = None


@dataclass
class ReportView:
    id: int
    patient_id: int
    patient_name: str | None
    issuer_org_id: int
    issuer_name: str
    issuer_code: str
    lab_org_id: int | None
    ordering_org_id: int | None
    ordering_org_code: str | None
    ordering_practitioner_id: int | None
    filler_number: str
    placer_number: str | None
    category: str
    item: str | None
    code_system: str | None
    code: str
    display: str
    status: str
    mark: str | None
    effective_at: datetime | None
    issued_at: datetime
    conclusion: str | None
    version: int
    updated_at: datetime
    observations: list[ObservationView] = field(default_factory=list)
    studies: list[StudyView] = field(default_factory=list)


@dataclass
class _Names:
    orgs: dict[int, str]
    org_codes: dict[int, str]
    patients: dict[int, str]
    standing: dict[int, int]

    def patient(self, patient_id: int, unmasked: bool) -> str | None:
        name = self.patients.get(self.standing.get(patient_id, patient_id))
        return name if unmasked else mask_name(name)


def org_names(session: Session, org_ids: Iterable[int]) -> dict[int, str]:
    ids = [o for o in set(org_ids) if o]
    return registry_queries.names_of(session, orgs=ids)["org"] if ids else {}


def _names(session: Session, org_ids: Iterable[int], patient_ids: Iterable[int]) -> _Names:
    orgs = {o for o in org_ids if o}
    standing = {p: patients.resolve_patient_id(session, p) for p in set(patient_ids)}
    codes = {o: registry_queries.organization_by_id(session, o).code for o in orgs}
    return _Names(org_names(session, orgs), codes,
                  patients.patient_names(session, list(set(standing.values()))), standing)


def report_views(session: Session, rows: Sequence[Report], *, unmasked: bool) -> list[ReportView]:
    if not rows:
        return []
    ids = [r.id for r in rows]
    obs = list(session.scalars(select(Observation).where(Observation.report_id.in_(ids))
                               .order_by(Observation.report_id, Observation.seq, Observation.id)))
    studies = list(session.scalars(select(ImagingStudy).where(ImagingStudy.report_id.in_(ids))
                                   .order_by(ImagingStudy.id)))
    names = _names(session, [r.issuer_org_id for r in rows] + [r.ordering_org_id for r in rows],
                   [r.patient_id for r in rows])
    by_report: dict[int, list[ObservationView]] = {}
    reports = {r.id: r for r in rows}
    for o in obs:
        by_report.setdefault(o.report_id, []).append(_observation_view(o, reports[o.report_id], names, unmasked))
    images: dict[int, list[StudyView]] = {}
    for s in studies:
        images.setdefault(s.report_id, []).append(_study_view(s, names, unmasked))
    return [ReportView(
        id=r.id, patient_id=names.standing[r.patient_id], patient_name=names.patient(r.patient_id, unmasked),
        issuer_org_id=r.issuer_org_id, issuer_name=names.orgs.get(r.issuer_org_id, ""),
        issuer_code=names.org_codes.get(r.issuer_org_id, ""), lab_org_id=r.lab_org_id,
        ordering_org_id=r.ordering_org_id, ordering_org_code=names.org_codes.get(r.ordering_org_id or 0),
        ordering_practitioner_id=r.ordering_practitioner_id,
        filler_number=r.filler_number, placer_number=r.placer_number, category=r.category, item=r.item,
        code_system=r.code_system, code=r.code, display=r.display, status=r.status, mark=r.mark,
        effective_at=r.effective_at, issued_at=r.issued_at, conclusion=r.conclusion, version=r.version,
        updated_at=r.updated_at, observations=by_report.get(r.id, []), studies=images.get(r.id, []))
        for r in rows]


def observation_views(session: Session, rows: Sequence[Observation], *, unmasked: bool) -> list[ObservationView]:
    if not rows:
        return []
    reports = {r.id: r for r in session.scalars(select(Report).where(Report.id.in_({o.report_id for o in rows})))}
    names = _names(session, [o.issuer_org_id for o in rows], [o.patient_id for o in rows])
    return [_observation_view(o, reports[o.report_id], names, unmasked) for o in rows]


def _observation_view(o: Observation, report: Report, names: _Names, unmasked: bool) -> ObservationView:
    return ObservationView(
        id=o.id, report_id=o.report_id, patient_id=names.standing[o.patient_id], seq=o.seq, item=o.item,
        code_system=o.code_system, code=o.code, display=o.display, value_num=o.value_num,
        value_text=o.value_text, unit=o.unit, ref_low=o.ref_low, ref_high=o.ref_high, ref_text=o.ref_text,
        flag=o.flag, status=o.status, effective_at=o.effective_at, issued_at=report.issued_at,
        issuer_org_id=o.issuer_org_id, issuer_name=names.orgs.get(o.issuer_org_id, ""),
        issuer_code=names.org_codes.get(o.issuer_org_id, ""), category=report.category,
        patient_name=names.patient(o.patient_id, unmasked))


def study_views(session: Session, rows: Sequence[ImagingStudy], *, unmasked: bool) -> list[StudyView]:
    names = _names(session, [s.issuer_org_id for s in rows], [s.patient_id for s in rows])
    return [_study_view(s, names, unmasked) for s in rows]


def _study_view(s: ImagingStudy, names: _Names, unmasked: bool) -> StudyView:
    return StudyView(
        id=s.id, study_uid=s.study_uid, report_id=s.report_id, patient_id=names.standing[s.patient_id],
        issuer_org_id=s.issuer_org_id, issuer_name=names.orgs.get(s.issuer_org_id, ""),
        issuer_code=names.org_codes.get(s.issuer_org_id, ""), accession_number=s.accession_number,
        modality=s.modality, body_site=s.body_site,
        description=s.description, started_at=s.started_at, series_count=s.series_count,
        instance_count=s.instance_count, dicomweb_base=s.dicomweb_base, pacs_study_id=s.pacs_study_id,
        created_at=s.created_at, patient_name=names.patient(s.patient_id, unmasked))
