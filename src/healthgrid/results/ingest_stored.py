"""Stored results as the pipeline's intake items, for an update of one FHIR resource by id
(``PUT DiagnosticReport/<id>``, ``Observation/<id>``, ``ImagingStudy/<id>``): the update is
ingested as the stored report with the sent part replaced, so the same checks, correction rules,
audit and notification apply as to a message. Reads without audit: the caller's update is
access-checked and audited by the pipeline itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .intake import Code, ObservationItem, ReportItem
from .models import ImagingStudy, Observation, Report


@dataclass(frozen=True)
class StoredRef:
    id: int
    report_id: int | None
    issuer_org_id: int
    patient_id: int
    filler_number: str | None
    study_uid: str | None = None


def report_ref(session: Session, report_id: int) -> StoredRef | None:
    row = session.get(Report, report_id, populate_existing=True) if 0 < report_id < 2**31 else None
    return StoredRef(row.id, row.id, row.issuer_org_id, row.patient_id, row.filler_number) if row else None


def observation_ref(session: Session, observation_id: int) -> StoredRef | None:
    if not 0 < observation_id < 2**31:
        return None
    row = session.execute(select(Observation.id, Observation.report_id, Report.issuer_org_id, Report.patient_id,
                                 Report.filler_number).join(Report, Report.id == Observation.report_id)
                          .where(Observation.id == observation_id)).first()
    return StoredRef(*row) if row else None


def study_ref(session: Session, study_id: int) -> StoredRef | None:
    row = session.get(ImagingStudy, study_id, populate_existing=True) if 0 < study_id < 2**31 else None
    return (StoredRef(row.id, row.report_id, row.issuer_org_id, row.patient_id, None, row.study_uid)
            if row else None)


def report_item(session: Session, report_id: int, where: str) -> ReportItem | None:
    """The stored report with its live observations, as the items that would write it again."""
    row = session.get(Report, report_id, populate_existing=True)
    if row is None:
        return None
    return ReportItem(where=where, filler_number=row.filler_number, category=row.category,
                      code=Code(row.code, row.code_system, row.display), status=row.status,
                      issued_at=row.issued_at, placer_number=row.placer_number, effective_at=row.effective_at,
                      conclusion=row.conclusion, mark=row.mark, observations=tuple(observation_items(session,
                                                                                                    report_id)),
                      report_id=row.id)


def observation_items(session: Session, report_id: int, ids: set[int] | None = None) -> list[ObservationItem]:
    stmt = select(Observation).where(Observation.report_id == report_id, Observation.status != "entered-in-error")
    if ids is not None:
        stmt = stmt.where(Observation.id.in_(ids or {-1}))
    return [ObservationItem(where=f"Observation/{o.id}", seq=o.seq, code=Code(o.code, o.code_system, o.display),
                            status=o.status, value_num=o.value_num, value_text=o.value_text, unit=o.unit,
                            ref_low=o.ref_low, ref_high=o.ref_high, ref_text=o.ref_text, flag=o.flag,
                            effective_at=o.effective_at, observation_id=o.id)
            for o in session.scalars(stmt.order_by(Observation.seq, Observation.id))]

