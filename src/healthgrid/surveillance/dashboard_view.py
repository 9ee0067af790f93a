"""The dashboard page's one call (``dashboard_view``): the KPIs, signals by status, the map,
the top diseases and one epidemic curve for a county (or all those in scope) and a period,
under one scope check and one audit entry. Each figure is defined where it is computed:
:mod:`.dashboard`, :mod:`.dashboard_curve`, :mod:`.dashboard_map`, :mod:`.kpis`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from ..db import transaction, utcnow
from ..security.domain import Actor
from . import dashboard_counts as counts
from .catalogue import load_catalogue
from .dashboard import (
    DiseaseWeek,
    Scope,
    SignalSummary,
    check_period,
    dashboard_scope,
    granted_scope,
    parse_stream,
    summarise_signals,
    week_against_last_year,
)
from .dashboard_curve import Curve, build_curve
from .dashboard_map import CountyMap, build_map
from .kpis import Kpis, compute_kpis

DEFAULT_STREAM = "case:3500"  # influenza, the disease every CDC watches in winter


@dataclass
class DashboardView:
    scope: Scope  # what the figures count: one county, or all in scope
    county: str | None
    since: date
    until: date
    weekly: bool
    stream: str
    streams: list[str]  # what the curve can show: diseases with cases, feed metrics reported
    kpis: Kpis
    summary: SignalSummary
    curve: Curve
    map: CountyMap  # every county in the actor's scope, whichever is chosen
    top: list[DiseaseWeek]


def dashboard_view(session: Session, actor: Actor, *, county: str | None, since: date, until: date,
                   stream: str | None = None, weekly: bool = False, now: datetime | None = None) -> DashboardView:
    check_period(since, until)
    chosen = parse_stream(stream) if stream else None
    with transaction(session):
        scope = dashboard_scope(session, actor, county=county, what="overview",
                                detail={"since": since.isoformat(), "until": until.isoformat(), "stream": stream})
        top = week_against_last_year(session, scope, until, 10)
        streams = stream_choices(session, scope, since, until, top)
        key = chosen.key if chosen else (f"case:{top[0].disease}" if top and top[0].cases else streams[0])
        first, last = (counts.monday(since), counts.monday(until) + timedelta(days=6)) if weekly else (since, until)
        curve = build_curve(session, scope, chosen or parse_stream(key), county, first, last, weekly)
        whole = granted_scope(session, actor)
        return DashboardView(
            scope=scope, county=county, since=since, until=until, weekly=weekly, stream=key,
            streams=streams if key in streams else [key, *streams],
            kpis=compute_kpis(session, scope, since, until, now or utcnow()),
            summary=summarise_signals(session, scope, since, until),
            curve=curve, map=build_map(session, whole, since, until), top=top)


def stream_choices(session: Session, scope: Scope, since: date, until: date, top: list[DiseaseWeek]) -> list[str]:
    """Diseases with cases in the period or the last week (catalogue order), influenza
    always, then the feed metrics reported over the past year."""
    seen = set(counts.cases_by(session, by="disease", counties=scope.codes, since=since, until=until)) \
        if scope.codes else set()
    seen |= {t.disease for t in top} | {DEFAULT_STREAM.partition(":")[2]}
    order = {d.code: i for i, d in enumerate(load_catalogue().diseases)}
    cases = [f"case:{code}" for code in sorted(seen, key=lambda c: (order.get(c, 10**6), c))]
    feeds = counts.feed_streams(session, counties=scope.codes, since=until - timedelta(days=365))
    return cases + [f"{feed}:{metric}" for feed, metric in feeds]
