"""Audited reads of shared results: reports (检验/检查报告) with their observations and images,
single observations, imaging studies, by id or searched — what the FHIR providers, the
timeline and the API read, and the one place that decides who may read them.

Who reads what (every read checked and audited here, through ``security.access``):

- a reader of the patient's record — ``patient.read`` on the patient: a care relationship
  (an encounter, a referral, the facility that issued or ordered one of the patient's
  results …), a population role's scope, or a clinician's break-the-glass — reads all the
  patient's results, from every facility of the region: that is the point of sharing them
  (国卫医发〔2022〕6号: a result done once is seen everywhere);
- the resident reads their own (``self.record``);
- the issuing facility's integration (``results.submit``: its LIS/RIS/PACS API token, its
  administrator) reads back what it issued, and only that.

A search names the patient, except for the issuing facility's integration, which may list
what it issued (RES-150 otherwise). Results of records merged into the patient's are the
patient's; references point at the record standing now. The patient's name is masked for
readers without ``pii.unmasked``. Codes RES-150…RES-159.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, false, func, not_, or_, select
from sqlalchemy.orm import Session

from ..db import transaction
from ..errors import Invalid, NotFound
from ..patients import queries as patient_queries
from ..patients import service as patients
from ..security import access
from ..security.domain import Actor, AuditAction, Perm
from .models import ImagingStudy, Observation, Report
from .views import (
    ObservationView,
    ReportView,
    StudyView,
    observation_views,
    report_views,
    study_views,
)

LOINC = "http://loinc.org"
# How a LOINC code's system may be stored: the FHIR URI, or HL7 v2's coding-system names.
LOINC_SYSTEMS = ("http://loinc.org", "LN", "LNC", "LOINC")
MAX_PAGE = 500


@dataclass(frozen=True)
class CodeFilter:
    """One alternative of a code search. Rows whose code is ``code`` (None: any) coded in
    ``systems`` (stored values; None: any system), issued by ``issuer_org_id`` when given,
    ``local`` restricting to codes in no recognised system (the issuer's own dictionary);
    or whose catalogue item is one of ``items``."""

    code: str | None = None
    systems: tuple[str, ...] | None = None
    local: bool = False
    issuer_org_id: int | None = None
    items: frozenset[str] = frozenset()
    by_code: bool = True  # False: only the items match (a system that exists only as items)


@dataclass
class ResultQuery:
    patient_id: int | None = None
    performer_org_id: int | None = None  # the issuing organisation
    categories: list[str] | None = None  # LAB | RAD | EC | PAT
    statuses: list[str] | None = None
    codes: list[CodeFilter] | None = None  # alternatives (OR)
    since: datetime | None = None  # effective (observations, reports) / started (studies), inclusive
    until: datetime | None = None  # exclusive
    issued_since: datetime | None = None  # reports' issue time
    issued_until: datetime | None = None
    ids: set[int] | None = None  # row ids of the type searched
    fillers: list[tuple[int | None, str]] | None = None  # (issuer or None, report number): alternatives
    report_ids: set[int] | None = None  # observations / studies of these reports
    modalities: list[str] | None = None  # imaging studies
    study_uids: list[str] | None = None
    accession_numbers: list[str] | None = None


@dataclass
class Page:
    total: int | None
    items: list[Any]


# -- who may read ------------------------------------------------------------------------------

def check_read(session: Session, actor: Actor, *, patient_id: int, issuer_org_id: int | None,
               action: AuditAction, resource_type: str, resource_id: object = None,
               detail: dict | None = None) -> None:
    """Allow and audit a read of results of ``patient_id`` (the standing record) issued by
    ``issuer_org_id``, or raise Forbidden (audited)."""
    where = dict(resource_type=resource_type, resource_id=resource_id, patient_id=patient_id, detail=detail)
    if (issuer_org_id is not None and not actor.system and Perm.PATIENT_READ not in actor.perms()
            and access.in_scope(session, actor, Perm.RESULT_SUBMIT, issuer_org_id)):
        access.check(session, actor, Perm.RESULT_SUBMIT, action, org_id=issuer_org_id, **where)
        return
    if _resident(actor):
        access.check(session, actor, Perm.SELF_RECORD, action,
                     person_key=patients.person_key_of(session, patient_id), **where)
        return
    access.check(session, actor, Perm.PATIENT_READ, action, org_id=issuer_org_id, **where)


def _resident(actor: Actor) -> bool:
    perms = actor.perms()
    return not actor.system and Perm.SELF_RECORD in perms and Perm.PATIENT_READ not in perms


def search_scope(session: Session, actor: Actor, q: ResultQuery, resource_type: str
                 ) -> tuple[set[int] | None, set[int] | None]:
    """(records of the patient, issuing organisations allowed) a search is confined to, None
    meaning unconfined; checked and audited as a search."""
    audit = dict(resource_type=resource_type, detail={"criteria": _criteria(q)})
    if q.patient_id is not None:
        target = patients.resolve_patient_id(session, q.patient_id)
        family = patient_queries.merged_family(session, target)
        if (not actor.system and Perm.PATIENT_READ not in actor.perms() and not _resident(actor)
                and actor.grants_with(Perm.RESULT_SUBMIT)):
            return family, _submitter_orgs(session, actor, q, audit)
        check_read(session, actor, patient_id=target, issuer_org_id=None, action=AuditAction.SEARCH, **audit)
        return family, None
    if actor.system:
        access.check(session, actor, Perm.PATIENT_READ, AuditAction.SEARCH, **audit)
        return None, None
    if actor.grants_with(Perm.RESULT_SUBMIT):
        return None, _submitter_orgs(session, actor, q, audit)
    raise Invalid("RES-150", "patient: name the patient whose results to search (patient=<id>); only an "
                             "issuing facility's integration may list the results it issued",
                  {"field": "patient"})


def _submitter_orgs(session: Session, actor: Actor, q: ResultQuery, audit: dict) -> set[int] | None:
    if q.performer_org_id is not None:
        access.check(session, actor, Perm.RESULT_SUBMIT, AuditAction.SEARCH, org_id=q.performer_org_id, **audit)
        return {q.performer_org_id}
    access.check(session, actor, Perm.RESULT_SUBMIT, AuditAction.SEARCH, **audit)
    return access.scope_org_ids(session, actor, Perm.RESULT_SUBMIT)


def _criteria(q: ResultQuery) -> list[str]:
    return sorted(k for k, v in q.__dict__.items() if v not in (None, [], set()))


# -- by id -------------------------------------------------------------------------------------

def get_report(session: Session, actor: Actor, report_id: int) -> ReportView:
    found = get_reports(session, actor, [report_id])
    if not found:
        raise NotFound("RES-151", f"no result report {report_id}", {"id": report_id})
    return found[0]


def get_reports(session: Session, actor: Actor, ids: Iterable[int]) -> list[ReportView]:
    """Reports by id (missing ones left out), each group of one patient and issuer checked
    and audited once; a refusal refuses all."""
    with transaction(session):
        rows = list(session.scalars(select(Report).where(Report.id.in_(set(ids))).order_by(Report.id)))
        _check_rows(session, actor, rows, "DiagnosticReport")
        return report_views(session, rows, unmasked=actor.can(Perm.PII_UNMASKED))


def get_observations(session: Session, actor: Actor, ids: Iterable[int]) -> list[ObservationView]:
    with transaction(session):
        rows = list(session.scalars(select(Observation).where(Observation.id.in_(set(ids)))
                                    .order_by(Observation.id)))
        _check_rows(session, actor, rows, "Observation")
        return observation_views(session, rows, unmasked=actor.can(Perm.PII_UNMASKED))


def get_studies(session: Session, actor: Actor, ids: Iterable[int]) -> list[StudyView]:
    with transaction(session):
        rows = list(session.scalars(select(ImagingStudy).where(ImagingStudy.id.in_(set(ids)))
                                    .order_by(ImagingStudy.id)))
        _check_rows(session, actor, rows, "ImagingStudy")
        return study_views(session, rows, unmasked=actor.can(Perm.PII_UNMASKED))


def get_study(session: Session, actor: Actor, study_id: int) -> StudyView:
    found = get_studies(session, actor, [study_id])
    if not found:
        raise NotFound("RES-152", f"no imaging study {study_id}", {"id": study_id})
    return found[0]


def _check_rows(session: Session, actor: Actor, rows: Sequence[Any], resource_type: str) -> None:
    groups: dict[tuple[int, int], list[int]] = {}
    for row in rows:
        target = patients.resolve_patient_id(session, row.patient_id)
        groups.setdefault((target, row.issuer_org_id), []).append(row.id)
    for (patient_id, issuer), ids in groups.items():
        check_read(session, actor, patient_id=patient_id, issuer_org_id=issuer, action=AuditAction.VIEW,
                   resource_type=resource_type, resource_id=ids[0],
                   detail={"ids": ids} if len(ids) > 1 else None)


# -- searches ------------------------------------------------------------------------------------

def search_reports(session: Session, actor: Actor, q: ResultQuery, *, offset: int = 0, limit: int = 50,
                   count: bool = True) -> Page:
    """A patient's reports (or an issuer's), newest issued first."""
    with transaction(session):
        family, issuers = search_scope(session, actor, q, "DiagnosticReport")
        stmt = report_filter(select(Report), q, family, issuers)
        return _page(session, stmt, (Report.issued_at.desc(), Report.id.desc()), offset, limit, count,
                     lambda rows: report_views(session, rows, unmasked=actor.can(Perm.PII_UNMASKED)))


def search_observations(session: Session, actor: Actor, q: ResultQuery, *, offset: int = 0, limit: int = 50,
                        count: bool = True) -> Page:
    """A patient's observations (or an issuer's), most recent first."""
    with transaction(session):
        family, issuers = search_scope(session, actor, q, "Observation")
        stmt = observation_filter(select(Observation), q, family, issuers)
        order = (Observation.effective_at.desc().nulls_last(), Observation.id.desc())
        return _page(session, stmt, order, offset, limit, count,
                     lambda rows: observation_views(session, rows, unmasked=actor.can(Perm.PII_UNMASKED)))


def search_studies(session: Session, actor: Actor, q: ResultQuery, *, offset: int = 0, limit: int = 50,
                   count: bool = True) -> Page:
    with transaction(session):
        family, issuers = search_scope(session, actor, q, "ImagingStudy")
        stmt = study_filter(select(ImagingStudy), q, family, issuers)
        order = (ImagingStudy.started_at.desc().nulls_last(), ImagingStudy.id.desc())
        return _page(session, stmt, order, offset, limit, count,
                     lambda rows: study_views(session, rows, unmasked=actor.can(Perm.PII_UNMASKED)))


def _page(session: Session, stmt: Select, order: tuple, offset: int, limit: int, count: bool, views) -> Page:
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) if count else None
    limit = max(0, min(limit, MAX_PAGE))
    rows = list(session.scalars(stmt.order_by(*order).offset(offset).limit(limit))) if limit else []
    return Page(total, views(rows))


def _common(stmt: Select, model: Any, q: ResultQuery, family: set[int] | None, issuers: set[int] | None) -> Select:
    if family is not None:
        stmt = stmt.where(model.patient_id.in_(family))
    if issuers is not None:
        stmt = stmt.where(model.issuer_org_id.in_(issuers) if issuers else false())
    if q.performer_org_id is not None:
        stmt = stmt.where(model.issuer_org_id == q.performer_org_id)
    if q.ids is not None:
        stmt = stmt.where(model.id.in_(q.ids))
    return stmt


def report_filter(stmt: Select, q: ResultQuery, family: set[int] | None, issuers: set[int] | None) -> Select:
    stmt = _common(stmt, Report, q, family, issuers)
    if q.categories:
        stmt = stmt.where(Report.category.in_(q.categories))
    if q.statuses:
        stmt = stmt.where(Report.status.in_(q.statuses))
    if q.codes:
        stmt = stmt.where(code_clause(Report, q.codes))
    if q.fillers is not None:
        stmt = stmt.where(or_(false(), *(and_(Report.filler_number == number, Report.issuer_org_id == org
                                              if org is not None else Report.id.is_not(None))
                                         for org, number in q.fillers)))
    stmt = _between(stmt, Report.effective_at, q.since, q.until)
    return _between(stmt, Report.issued_at, q.issued_since, q.issued_until)


def observation_filter(stmt: Select, q: ResultQuery, family: set[int] | None, issuers: set[int] | None) -> Select:
    stmt = _common(stmt, Observation, q, family, issuers)
    if q.categories:
        stmt = stmt.where(Observation.report_id.in_(select(Report.id).where(Report.category.in_(q.categories))))
    if q.statuses:
        stmt = stmt.where(Observation.status.in_(q.statuses))
    if q.codes:
        stmt = stmt.where(code_clause(Observation, q.codes))
    if q.report_ids is not None:
        stmt = stmt.where(Observation.report_id.in_(q.report_ids))
    return _between(stmt, Observation.effective_at, q.since, q.until)


def study_filter(stmt: Select, q: ResultQuery, family: set[int] | None, issuers: set[int] | None) -> Select:
    stmt = _common(stmt, ImagingStudy, q, family, issuers)
    for column, values in ((ImagingStudy.modality, q.modalities), (ImagingStudy.study_uid, q.study_uids),
                           (ImagingStudy.accession_number, q.accession_numbers)):
        if values is not None:
            stmt = stmt.where(column.in_(values))
    if q.report_ids is not None:
        stmt = stmt.where(ImagingStudy.report_id.in_(q.report_ids))
    return _between(stmt, ImagingStudy.started_at, q.since, q.until)


def _between(stmt: Select, column: Any, since: datetime | None, until: datetime | None) -> Select:
    if since is not None:
        stmt = stmt.where(column >= since)
    if until is not None:
        stmt = stmt.where(column < until)
    return stmt


def code_clause(model: Any, filters: Sequence[CodeFilter]) -> Any:
    """The OR of the alternatives, for a Report or an Observation."""
    return or_(*(_one_code(model, f) for f in filters))


def _one_code(model: Any, f: CodeFilter) -> Any:
    parts = []
    if f.by_code:
        conds = [model.code == f.code] if f.code is not None else []
        if f.systems is not None:
            conds.append(model.code_system.in_(f.systems))
        if f.local:
            conds.append(or_(model.code_system.is_(None), and_(
                model.code_system.not_in(LOINC_SYSTEMS), not_(model.code_system.contains("://")),
                not_(model.code_system.startswith("urn:")))))
        if f.issuer_org_id is not None:
            conds.append(model.issuer_org_id == f.issuer_org_id)
        parts.append(and_(*conds) if conds else model.id.is_not(None))
    if f.items:
        parts.append(model.item.in_(f.items))
    return or_(*parts) if parts else false()


