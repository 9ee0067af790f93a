"""Reading signals: who may (a CDC epidemiologist for the counties of their division grant: a
county CDC its county, a city CDC its counties), the list with its filters, and one signal
with its events, the series behind it (counts, statistic, threshold) and, for a case
signal, the ids of its cards — ids and numbers only: card contents are personal data.

Every read of one signal is audited (it leads to cards); the list is not (no personal data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from ..db import transaction, utcnow
from ..errors import Invalid, NotFound
from ..registry import queries as registry_queries
from ..security import access
from ..security.domain import Actor, AuditAction, Perm, ScopeKind
from . import signal_domain as sd
from .catalogue import load_catalogue
from .detection_data import card_ids, county_divisions, county_names, settings_of
from .detection_methods import Curve, curve_for
from .feed_domain import FEEDS
from .models import Signal, SignalEvent

PERM = Perm.SIGNAL_MANAGE


def stream_names(stream: str, on: date) -> tuple[str, str]:
    """(zh, en) of a stream: the disease's name, or the feed and its metric."""
    kind, _, code = stream.partition(":")
    if kind == "case":
        disease = load_catalogue().find(code, on) or next(iter(load_catalogue().versions(code)[-1:]), None)
        return (disease.zh, disease.en) if disease is not None else (code, code)
    feed = FEEDS.get(kind)
    if feed is None:
        return stream, stream
    return f"{feed.zh}·{feed.metric_name(code, 'zh')}", f"{feed.en}: {feed.metric_name(code, 'en')}"


def _division_id(session: Session, county_code: str) -> int | None:
    found = next((d for d in county_divisions(session) if d.code[:6] == county_code), None)
    return found.id if found is not None else registry_queries.root_division_id(session)


def check_access(session: Session, actor: Actor, row: Signal, action: AuditAction, detail: dict | None = None, *,
                 audit_success: bool = True) -> None:
    """SIGNAL_MANAGE on the signal's county (a county outside the region: region-wide only)."""
    access.check(session, actor, PERM, action, resource_type="Signal", resource_id=row.id,
                 division_id=_division_id(session, row.county_code), audit_success=audit_success, detail=detail)


def scope_counties(session: Session, actor: Actor) -> set[str] | None:
    """County codes whose signals the actor answers; None = the whole region."""
    access.check(session, actor, PERM, AuditAction.SEARCH, resource_type="Signal", audit_success=False)
    if actor.system:
        return None
    root = registry_queries.root_division_id(session)
    if root is not None and access.division_in_scope(session, actor, PERM, root):
        return None
    ids = {g.scope_id for g in actor.grants_with(PERM) if g.scope_kind is ScopeKind.DIVISION and g.scope_id}
    return {d.code[:6] for d in county_divisions(session)
            if {d.province_id, d.city_id, d.county_id, d.id} & ids}


@dataclass(frozen=True)
class EventView:
    at: datetime
    actor: str
    from_status: str | None
    to_status: str | None
    note: str | None


@dataclass(frozen=True)
class SignalView:
    id: int
    stream: str
    stream_zh: str
    stream_en: str
    disease: str | None
    county_code: str
    county_name: str
    method: str
    detected_on: date
    observed: float
    threshold: float | None
    status: str
    responsible: str | None
    generated_at: datetime
    verify_due_at: datetime
    notified_at: datetime | None
    verified_at: datetime | None
    verification: str | None
    investigation_at: datetime | None
    concluded_at: datetime | None
    conclusion: str | None
    closed_at: datetime | None
    overdue: bool
    actions: list[str]
    detail: dict[str, Any]
    version: int


@dataclass(frozen=True)
class SignalDetail(SignalView):
    events: list[EventView] = field(default_factory=list)
    card_ids: list[int] = field(default_factory=list)
    curve: Curve | None = None


def _base(session: Session, row: Signal, now: datetime) -> dict[str, Any]:
    zh, en = stream_names(row.stream, row.detected_on)
    return dict(
        id=row.id, stream=row.stream, stream_zh=zh, stream_en=en, disease=row.disease, county_code=row.county_code,
        county_name=county_names(session).get(row.county_code, row.county_code), method=row.method,
        detected_on=row.detected_on, observed=row.observed, threshold=row.threshold, status=row.status,
        responsible=row.responsible, generated_at=row.generated_at, verify_due_at=row.verify_due_at,
        notified_at=row.notified_at, verified_at=row.verified_at, verification=row.verification,
        investigation_at=row.investigation_at, concluded_at=row.concluded_at, conclusion=row.conclusion,
        closed_at=row.closed_at, overdue=sd.is_overdue(row.status, row.verify_due_at, now),
        actions=sd.actions_from(row.status), detail=dict(row.detail or {}), version=row.version)


def view_of(session: Session, row: Signal, *, now: datetime) -> SignalView:
    return SignalView(**_base(session, row, now))


def _cards(session: Session, row: Signal) -> list[int]:
    """The cards behind a case signal: the fixed threshold's own, else those of the window
    the method looked at (7 days; the scan's cluster)."""
    if not row.stream.startswith("case:") or row.disease is None:
        return []
    detail = row.detail or {}
    if row.method == "fixed":
        return sorted(detail.get("card_ids", [])) or card_ids(session, row.disease, [row.county_code],
                                                              row.detected_on, row.detected_on)
    if row.method == "scan":
        first = date.fromisoformat(detail.get("first_day", row.detected_on.isoformat()))
        return card_ids(session, row.disease, detail.get("counties") or [row.county_code], first, row.detected_on)
    return card_ids(session, row.disease, [row.county_code], row.detected_on - timedelta(days=6), row.detected_on)


def signal_detail(session: Session, row: Signal, *, now: datetime) -> SignalDetail:
    events = [EventView(e.at, e.actor, e.from_status, e.to_status, e.note) for e in session.scalars(
        select(SignalEvent).where(SignalEvent.signal_id == row.id).order_by(SignalEvent.at, SignalEvent.id))]
    curve = curve_for(session, stream=row.stream, county_code=row.county_code, method=row.method,
                      detected_on=row.detected_on, detail=row.detail or {}, cfg=settings_of(session))
    return SignalDetail(**_base(session, row, now), events=events, card_ids=_cards(session, row), curve=curve)


def get_signal(session: Session, actor: Actor, signal_id: int, *, now: datetime | None = None) -> SignalDetail:
    with transaction(session):
        row = session.get(Signal, signal_id)
        if row is None:
            raise NotFound("SURV-403", f"signal {signal_id} not found", {"field": "signal_id"})
        check_access(session, actor, row, AuditAction.VIEW)
        return signal_detail(session, row, now=now or utcnow())


@dataclass
class SignalQuery:
    status: list[str] = field(default_factory=list)
    stream: str | None = None
    disease: str | None = None
    county_code: str | None = None
    method: str | None = None
    since: date | None = None  # detected on or after
    until: date | None = None
    overdue: bool = False
    open_only: bool = False


def _filters(q: SignalQuery, now: datetime) -> list:
    bad = [s for s in q.status if s not in {x.value for x in sd.Status}]
    if bad:
        raise Invalid("SURV-406", f"status: each one of {[s.value for s in sd.Status]}; got {bad}", {"field": "status"})
    conds = []
    if q.status:
        conds.append(Signal.status.in_(q.status))
    for column, value in ((Signal.stream, q.stream), (Signal.disease, q.disease), (Signal.county_code, q.county_code),
                          (Signal.method, q.method)):
        if value:
            conds.append(column == value)
    if q.since:
        conds.append(Signal.detected_on >= q.since)
    if q.until:
        conds.append(Signal.detected_on <= q.until)
    if q.overdue:
        conds.append(and_(Signal.status.in_([s.value for s in sd.UNVERIFIED]), Signal.verify_due_at < now))
    if q.open_only:
        conds.append(Signal.status != sd.Status.CLOSED.value)
    return conds


def list_signals(session: Session, actor: Actor, q: SignalQuery, *, offset: int = 0, limit: int = 50,
                 now: datetime | None = None) -> list[SignalView]:
    """Newest first; only the counties in the actor's scope."""
    now = now or utcnow()
    with transaction(session):
        counties = scope_counties(session, actor)
        stmt = select(Signal).where(*_filters(q, now))
        if counties is not None:
            stmt = stmt.where(Signal.county_code.in_(sorted(counties)))
        rows = session.scalars(stmt.order_by(Signal.detected_on.desc(), Signal.id.desc()).offset(offset).limit(limit))
        return [view_of(session, r, now=now) for r in rows]


def county_choices(session: Session, actor: Actor) -> list[tuple[str, str]]:
    """(code, name) of the counties whose signals the actor answers, for a filter."""
    with transaction(session):
        counties = scope_counties(session, actor)
        names = county_names(session)
        return sorted((c, n) for c, n in names.items() if counties is None or c in counties)


def stream_choices(on: date) -> list[tuple[str, str, str, str]]:
    """(group, stream, zh, en) of every stream a signal can have: the notifiable diseases
    valid on ``on``, then every feed metric."""
    out = [("case", f"case:{d.code}", d.zh, d.en) for d in load_catalogue().valid_on(on)]
    return out + [("feed", f"{f.code}:{m}", f"{f.zh}·{zh}", f"{f.en}: {en}")
                  for f in FEEDS.values() for m, (zh, en) in f.metrics.items()]
