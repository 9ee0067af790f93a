"""Ingestion of the daily feed counts (多点触发: fever clinics and EDs, pharmacies, schools,
laboratories) as a staged bulk import (CONVENTIONS "Bulk ingestion", as dhis2's tracker
import): preheat the places, validate every row collecting coded errors with row numbers,
then all or none — one error and nothing is written (SURV-520 carries the whole report) —
else upsert on (feed, source, day, metric): the same values are ignored, changed ones
updated, new ones created. The report is kept with the batch and returned.

Who: ``Perm.FEED_SUBMIT``; a facility administrator for the places of their own
organisation (its division and below), a CDC for the divisions of its grant. Every batch is
audited, and a refused place as a denied access.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db import transaction, utcnow
from ..errors import Invalid, NotFound
from ..registry import queries as registry_queries
from ..security import access, audit
from ..security.domain import Actor, AuditAction, Perm, ScopeKind
from . import feed_domain as fd
from .detection_data import local_day, settings_of
from .models import FeedBatch, FeedCount

COUNTY_OR_BELOW = ("county", "township", "village")
REPORT_ERRORS_KEPT = 500


@dataclass(frozen=True)
class FeedReport:
    batch_id: int | None
    feed: str
    status: str  # accepted | rejected
    rows: int
    created: int
    updated: int
    ignored: int
    errors: list[dict[str, Any]]
    errors_by_code: dict[str, int]
    filename: str | None
    received_at: datetime
    received_by: str

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}


def _places(actor: Actor) -> tuple[bool, set[int], set[int]]:
    """(system, division grant ids, organisation grant ids) carrying FEED_SUBMIT."""
    grants = actor.grants_with(Perm.FEED_SUBMIT)
    return (actor.system, {g.scope_id for g in grants if g.scope_kind is ScopeKind.DIVISION and g.scope_id},
            {g.scope_id for g in grants if g.scope_kind is ScopeKind.ORGANIZATION and g.scope_id})


def _check_places(session: Session, actor: Actor, rows: list[tuple[int, str]]) -> list[fd.RowError]:
    """Every (row, division code): the division must exist, be a county or below, and lie in
    the actor's places."""
    system, div_grants, org_grants = _places(actor)
    org_divisions = {o.division_id for o in (registry_queries.organization_or_none(session, i) for i in org_grants)
                     if o is not None}
    allowed = div_grants | org_divisions
    verdict: dict[str, tuple[str, str] | None] = {}
    for code in sorted({code for _, code in rows}):
        try:
            div = registry_queries.division_by_code(session, code)
        except NotFound:
            verdict[code] = ("SURV-503", f"division_code {code} is not a division of the region")
            continue
        lineage = {div.province_id, div.city_id, div.county_id, div.township_id, div.id}
        if div.level not in COUNTY_OR_BELOW:
            verdict[code] = ("SURV-504", f"division_code {code} is a {div.level}; a feed row is placed in a county,"
                             " township or village")
        elif not system and not lineage & allowed:
            verdict[code] = ("SURV-512", f"division {code} is outside your places (your organisation's division"
                             " and below, or your grant's division)")
        else:
            verdict[code] = None
    out = []
    for row, code in rows:
        found = verdict[code]
        if found is not None:
            out.append(fd.RowError(row, found[0], "division_code", found[1]))
    refused = sorted(c for c, v in verdict.items() if v is not None and v[0] == "SURV-512")
    if refused:
        audit.record_denied(session, actor, AuditAction.CREATE, reason="SURV-512", resource_type="FeedBatch",
                            detail={"divisions": refused[:50]})
    return out


def _existing(session: Session, feed: str, rows: list[fd.FeedRow]) -> dict[tuple[str, date, str], FeedCount]:
    """The stored counts these rows may replace, in a few queries (sources in chunks)."""
    sources = sorted({r.source for r in rows})
    first, last = min(r.day for r in rows), max(r.day for r in rows)
    metrics = sorted({r.metric for r in rows})
    found: dict[tuple[str, date, str], FeedCount] = {}
    for i in range(0, len(sources), 500):
        for c in session.scalars(select(FeedCount).where(
                FeedCount.feed == feed, FeedCount.source.in_(sources[i:i + 500]), FeedCount.metric.in_(metrics),
                FeedCount.day >= first, FeedCount.day <= last)):
            found[(c.source, c.day, c.metric)] = c
    return found


def _upsert(session: Session, feed: str, rows: list[fd.FeedRow], batch_id: int, now: datetime) -> tuple[int, int, int]:
    existing = _existing(session, feed, rows)
    new, changed, same = [], [], 0
    for r in rows:
        old = existing.get(r.key)
        if old is None:
            new.append({"feed": feed, "source": r.source, "division_code": r.division_code,
                        "county_code": r.county_code, "day": r.day, "metric": r.metric, "count": r.count,
                        "total": r.total, "batch_id": batch_id, "updated_at": now})
        elif (old.count, old.total, old.division_code) == (r.count, r.total, r.division_code):
            same += 1
        else:
            changed.append({"id": old.id, "count": r.count, "total": r.total, "division_code": r.division_code,
                            "county_code": r.county_code, "batch_id": batch_id, "updated_at": now})
    if new:
        session.execute(insert(FeedCount), new)
    if changed:
        session.execute(update(FeedCount), changed)
    return len(new), len(changed), same


def _report(feed: str, status: str, n: int, counts: tuple[int, int, int], errors: list[fd.RowError],
            filename: str | None, actor: Actor, now: datetime, batch_id: int | None = None) -> FeedReport:
    return FeedReport(batch_id, feed, status, n, *counts, [e.as_dict() for e in errors[:REPORT_ERRORS_KEPT]],
                      fd.errors_by_code(errors), filename, now, actor.username)


def ingest_feed(session: Session, actor: Actor, *, feed: str, rows: Sequence[Any], filename: str | None = None,
                now: datetime | None = None) -> FeedReport:
    """Validate all rows, then write all or none. Rejected: SURV-520 with the report in
    ``detail["report"]`` (nothing written). Accepted: the report, kept in the batch."""
    now = now or utcnow()
    spec = fd.feed_of(feed)
    rows = list(rows)
    limit = settings_of(session).feed_max_rows
    if not 1 <= len(rows) <= limit:
        raise Invalid("SURV-513", f"rows: 1 to {limit} rows per batch; got {len(rows)}", {"field": "rows"})
    filename = (filename or "").strip()[:200] or None

    def attempt() -> FeedReport:
        with transaction(session):
            access.check(session, actor, Perm.FEED_SUBMIT, AuditAction.CREATE, resource_type="FeedBatch",
                         audit_success=False)
            good, errors = fd.check_rows(spec, rows, today=local_day(session, now))
            errors = sorted(errors + _check_places(session, actor, fd.placed_rows(rows)), key=lambda e: (e.row, e.code))
            if errors:
                report = _report(feed, "rejected", len(rows), (0, 0, 0), errors, filename, actor, now)
                raise Invalid("SURV-520", f"{len({e.row for e in errors})} of {len(rows)} rows refused; nothing was"
                              f" written ({', '.join(f'{k}×{v}' for k, v in report.errors_by_code.items())})",
                              {"report": report.as_dict()})
            batch = FeedBatch(feed=feed, received_at=now, received_by=actor.username, filename=filename, report={})
            session.add(batch)
            session.flush()
            counts = _upsert(session, feed, good, batch.id, now)
            report = _report(feed, "accepted", len(rows), counts, [], filename, actor, now, batch.id)
            batch.report = report.as_dict()
            audit.record(session, actor, AuditAction.CREATE, resource_type="FeedBatch", resource_id=batch.id,
                         detail={"feed": feed, "created": counts[0], "updated": counts[1], "ignored": counts[2]})
            return report

    try:
        return attempt()
    except IntegrityError:
        return attempt()  # a concurrent batch inserted some of these keys first: now they are updates


@dataclass(frozen=True)
class BatchView:
    id: int
    feed: str
    received_at: datetime
    received_by: str
    filename: str | None
    report: dict[str, Any]


def list_batches(session: Session, actor: Actor, *, feed: str | None = None, offset: int = 0,
                 limit: int = 50) -> list[BatchView]:
    """The actor's own batches, newest first; a CDC (signal work) sees every batch."""
    if feed is not None:
        fd.feed_of(feed)
    with transaction(session):
        access.check(session, actor, Perm.FEED_SUBMIT, AuditAction.SEARCH, resource_type="FeedBatch",
                     audit_success=False)
        stmt = select(FeedBatch)
        if not (actor.system or actor.can(Perm.SIGNAL_MANAGE)):
            stmt = stmt.where(FeedBatch.received_by == actor.username)
        if feed is not None:
            stmt = stmt.where(FeedBatch.feed == feed)
        rows = session.scalars(stmt.order_by(FeedBatch.id.desc()).offset(offset).limit(limit))
        return [BatchView(b.id, b.feed, b.received_at, b.received_by, b.filename, dict(b.report or {})) for b in rows]


def feed_vocabulary(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """The feeds, their metrics (code, zh, en) and what count and total mean: what a sender
    needs to fill a batch."""
    access.check(session, actor, Perm.FEED_SUBMIT, AuditAction.VIEW, resource_type="FeedVocabulary",
                 audit_success=False)
    return [{"feed": f.code, "zh": f.zh, "en": f.en, "count": {"zh": f.count_label[0], "en": f.count_label[1]},
             "total": {"zh": f.total_label[0], "en": f.total_label[1], "required": f.total_required},
             "source": {"zh": f.source_hint[0], "en": f.source_hint[1]},
             "metrics": [{"code": c, "zh": zh, "en": en} for c, (zh, en) in f.metrics.items()]}
            for f in fd.FEEDS.values()]
