"""Writing planned messages (the last stage of the pipeline), a chunk at a time: one INSERT …
RETURNING per table for the new rows and one executemany UPDATE per table for the changed ones,
whatever the number of messages — statements per chunk, not per row. The caller holds the
transaction (and a savepoint around this stage); the audit rows and the outbox events are
written in it, so a report and its notification commit together or not at all.

Audit: a created or corrected report is a CREATE / UPDATE of ``DiagnosticReport`` by the sender
with the patient's id (security.audit); ``results.available`` goes to the outbox for every
new or changed released report (final, corrected, amended), with the agreed payload.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.orm import Session

from .. import outbox
from ..security import audit
from ..security.domain import Actor, AuditAction
from .domain import FINAL_STATUSES
from .ingest_plan import MessagePlan, ObsPlan, ReportPlan, StudyPlan
from .models import ImagingStudy, Message, Observation, Report

TOPIC = "results.available"
_MSG = Message.__table__
_REP = Report.__table__
_OBS = Observation.__table__
_STUDY = ImagingStudy.__table__


def _insert(session: Session, table: Any, rows: list[dict[str, Any]], *, ids: bool = True) -> list[int]:
    if not rows:
        return []
    if not ids:
        session.execute(table.insert(), rows)
        return []
    stmt = table.insert().returning(table.c.id, sort_by_parameter_order=True)
    return [r[0] for r in session.execute(stmt, rows)]


def _update(session: Session, table: Any, rows: list[dict[str, Any]], *, bump: bool = False) -> None:
    """executemany UPDATE … WHERE id = :row_id (``bump``: version = version + 1)."""
    if not rows:
        return
    names = [k for k in rows[0] if k != "row_id"]
    values: dict[str, Any] = {k: bindparam(f"v_{k}") for k in names}
    if bump:
        values["version"] = table.c.version + 1
    stmt = table.update().where(table.c.id == bindparam("row_id")).values(values)
    session.execute(stmt, [{"row_id": r["row_id"], **{f"v_{k}": r[k] for k in names}} for r in rows])


def write_messages(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    return _insert(session, _MSG, rows)


def set_reports(session: Session, reports: list[tuple[int, dict[str, Any]]]) -> None:
    _update(session, _MSG, [{"row_id": mid, "report": rep} for mid, rep in reports])


def write_plans(session: Session, actor: Actor, plans: Sequence[MessagePlan], message_ids: Sequence[int], *,
                now: datetime, want_ids: bool) -> None:
    """Reports, observations and studies of ``plans`` (``message_ids`` in the same order)."""
    creates: list[tuple[ReportPlan, int]] = []
    updates: list[tuple[ReportPlan, int]] = []
    for plan, mid in zip(plans, message_ids, strict=True):
        for rp in plan.reports:
            if rp.outcome == "created":
                creates.append((rp, mid))
            elif rp.outcome == "updated":
                updates.append((rp, mid))
            else:
                rp.report_id = rp.stored.id
    ids = _insert(session, _REP, [{**rp.values, "message_id": mid, "created_at": now, "updated_at": now,
                                   "version": 1} for rp, mid in creates])
    for (rp, _), rid in zip(creates, ids, strict=True):
        rp.report_id = rid
    _update(session, _REP, [{"row_id": rp.stored.id, **rp.values, "message_id": mid, "updated_at": now}
                            for rp, mid in updates], bump=True)
    for rp, _ in updates:
        rp.report_id = rp.stored.id
    every = [rp for plan in plans for rp in plan.reports]
    _write_observations(session, every, want_ids=want_ids)
    _write_studies(session, [s for plan in plans for rp in plan.reports for s in _with_report(rp)]
                   + [s for plan in plans for s in plan.studies], now)
    _announce(session, actor, plans, message_ids)


def _with_report(rp: ReportPlan) -> list[StudyPlan]:
    for s in rp.studies:
        s.values["report_id"] = rp.report_id
    return rp.studies


def _write_observations(session: Session, reports: list[ReportPlan], *, want_ids: bool) -> None:
    new: list[ObsPlan] = []
    rows, changed, retired = [], [], []
    for rp in reports:
        for o in rp.observations:
            if o.observation_id is None:
                new.append(o)
                rows.append({**o.values, "report_id": rp.report_id})
            elif o.outcome == "updated":
                changed.append({"row_id": o.observation_id, **o.values, "report_id": rp.report_id})
        retired.extend({"row_id": oid, "status": "entered-in-error"} for oid in rp.retired)
    ids = _insert(session, _OBS, rows, ids=want_ids)
    for o, oid in zip(new, ids, strict=False):
        o.observation_id = oid
    _update(session, _OBS, changed)
    _update(session, _OBS, retired)


def _write_studies(session: Session, studies: list[StudyPlan], now: datetime) -> None:
    new = [s for s in studies if s.study_id is None]
    ids = _insert(session, _STUDY, [{**s.values, "created_at": now} for s in new])
    for s, sid in zip(new, ids, strict=True):
        s.study_id = sid
    _update(session, _STUDY, [{"row_id": s.study_id, **{k: v for k, v in s.values.items()
                                                         if v is not None or k == "report_id"}}
                              for s in studies if s.outcome == "updated"])


def _announce(session: Session, actor: Actor, plans: Sequence[MessagePlan], message_ids: Sequence[int]) -> None:
    """Audit each written report and study; results.available for each released one."""
    for plan, mid in zip(plans, message_ids, strict=True):
        for rp in plan.reports:
            if rp.outcome == "ignored":
                continue
            v = rp.values
            action = AuditAction.CREATE if rp.outcome == "created" else AuditAction.UPDATE
            audit.record(session, actor, action, resource_type="DiagnosticReport", resource_id=rp.report_id,
                         org_id=v["issuer_org_id"], patient_id=v["patient_id"],
                         detail={"message": mid, "status": v["status"], "observations": len(rp.observations)})
            if v["status"] in FINAL_STATUSES:
                outbox.publish(session, TOPIC, {
                    "report_id": rp.report_id, "patient_id": v["patient_id"], "issuer_org_id": v["issuer_org_id"],
                    "ordering_org_id": v["ordering_org_id"], "ordering_practitioner_id": v["ordering_practitioner_id"],
                    "category": v["category"], "item": v["item"], "status": v["status"]})
        for s in plan.studies:
            audit.record(session, actor, AuditAction.CREATE if s.outcome == "created" else AuditAction.UPDATE,
                         resource_type="ImagingStudy", resource_id=s.study_id, org_id=plan.org.id,
                         patient_id=s.values["patient_id"], detail={"message": mid})
