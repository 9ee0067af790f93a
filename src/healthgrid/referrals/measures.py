"""Referral measures for the county bureau (卫健局) and the facilities: per facility and
calendar month (in the platform's time zone), with totals per month, per facility and for
all of them. No patient data: counts, durations and rates.

Definitions (domain-rules.md §3.6 "track KPIs: reserved-slot utilisation, no-show rate,
down-referral count"; §8.1 national indicator 2, 下转患者人次数; §3.1 and §3.5 for the SLA
and the two-week follow-up):

- ``up_sent`` / ``up_received``: up-referrals (上转) submitted in the month by / to the
  facility, whatever became of them (rejected, expired and cancelled ones included).
- ``down_sent`` / ``down_received`` (下转人次): back-referrals (回转) issued in the month by the
  hospital / to the primary facility, plus direct down-referrals submitted in the month
  from / to the facility. §8 counts a hospital's down-referrals to level-2 or primary
  facilities and asks the platform to generate the count from its referrals: this is it.
- acceptance time (hours; median and p90, with ``accepted``, the number measured):
  submitted -> accepted of the referrals the facility received and accepted, by the month
  they were submitted; emergencies are left out (accepted implicitly on submission, §3.5).
  Quantiles interpolate linearly between order statistics (numpy's default, Hyndman and
  Fan's type 7): the median of 1, 3 is 2; the p90 of 0.5, 1, 3, 10 is 7.9.
- reserved-slot utilisation (预留号源使用率): reserved places booked by a referral ÷ reserved
  places of the facility's open sessions held in the month. After the release-back hour
  the public may book a reserved place; such bookings carry no referral and do not count.
- no-show rate (爽约率): referrals whose appointment fell in the month and that ended
  NO_SHOW ÷ those that reached their appointment (marked arrived or no-show); cancelled
  before it, or not yet marked, they are left out.
- 14-day follow-up share: down-referrals to the facility followed up within
  ``followup_days`` (14, §3.1: 2周内主动随访) ÷ those whose follow-up was due by the end of
  the period (and by now), by the month they were issued. A back-referral is followed up
  when primary care records it (followed_up_at - back_referred_at <= 14 d); a direct
  down-referral when the patient is first seen there (arrived_at - submitted_at <= 14 d).
  Rejected, cancelled and expired down-referrals never became primary care's to follow.

Totals pool the referrals under the rows: a total's median is that of all the acceptance
times, a total's rate the ratio of the summed counts (not a mean of the facilities').
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import and_, case, func, or_, select, true
from sqlalchemy.orm import Session

from ..db import transaction, utcnow
from ..errors import Invalid
from ..registry import queries as registry_queries
from ..scheduling import queries as scheduling_queries
from ..scheduling import service as scheduling
from ..security import access
from ..security.domain import Actor, Perm, ScopeKind
from . import domain as d
from .models import Referral
from .service import settings_of

MAX_MONTHS = 36
NOT_TAKEN = (d.Status.DRAFT.value, d.Status.REJECTED.value, d.Status.CANCELLED.value, d.Status.EXPIRED.value)


@dataclass
class MeasureRow:
    """One facility and month; ``org_id`` None in the totals over facilities, ``month``
    ("YYYY-MM") None in the totals over the period."""

    org_id: int | None
    org_name: str
    level: str | None
    month: str | None
    up_sent: int = 0
    up_received: int = 0
    down_sent: int = 0
    down_received: int = 0
    accepted: int = 0  # acceptances measured
    accept_median_hours: float | None = None
    accept_p90_hours: float | None = None
    reserved_places: int = 0
    reserved_booked: int = 0  # by a referral
    reached: int = 0  # referrals that reached their appointment (arrived or no-show)
    no_shows: int = 0
    followup_due: int = 0
    followup_in_time: int = 0
    hours: list[float] = field(default_factory=list, repr=False)  # acceptance times, for pooling

    @property
    def utilisation(self) -> float | None:
        return self.reserved_booked / self.reserved_places if self.reserved_places else None

    @property
    def no_show_rate(self) -> float | None:
        return self.no_shows / self.reached if self.reached else None

    @property
    def followup_share(self) -> float | None:
        return self.followup_in_time / self.followup_due if self.followup_due else None

    def add(self, other: MeasureRow) -> None:
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.hours.extend(other.hours)

    def finish(self) -> MeasureRow:
        if self.hours:
            self.accepted = len(self.hours)
            median, p90 = np.percentile(np.asarray(self.hours, dtype=float), [50, 90])
            self.accept_median_hours, self.accept_p90_hours = float(median), float(p90)
        return self


COUNTS = ("up_sent", "up_received", "down_sent", "down_received", "reserved_places", "reserved_booked",
          "reached", "no_shows", "followup_due", "followup_in_time")


@dataclass
class ReferralMeasures:
    since: date
    until: date
    division_id: int | None
    months: list[str]
    rows: list[MeasureRow]  # facility x month, facilities with any activity (level, then code), months in order
    facilities: list[MeasureRow]  # each facility over the period
    monthly: list[MeasureRow]  # all the facilities, per month
    total: MeasureRow


@dataclass(frozen=True)
class _Month:
    label: str
    start: datetime  # UTC
    end: datetime


def referral_measures(session: Session, actor: Actor, *, division_id: int | None = None,
                      org_ids: Iterable[int] | None = None, since: date, until: date,
                      now: datetime | None = None) -> ReferralMeasures:
    """The measures of the facilities in a division (a county: the bureau's view) or of the
    given organisations, or, with neither, of every facility in the actor's scope, from
    ``since`` to ``until`` (local days, inclusive; at most 36 months). Needs
    ``referral.stats`` on that scope; audited as a search, without patient data."""
    now = now or utcnow()
    ids = sorted(set(org_ids)) if org_ids is not None else None
    if division_id is not None and ids is not None:
        raise Invalid("REF-005", "give division_id or org_ids, not both", {"field": "org_ids"})
    if until < since:
        raise Invalid("REF-005", "until: on or after since", {"field": "until"})
    months = _months(since, until, scheduling.tz_of(session))
    if len(months) > MAX_MONTHS:
        raise Invalid("REF-005", f"at most {MAX_MONTHS} months at a time", {"field": "since"})
    with transaction(session):
        orgs = _scope(session, actor, division_id, ids, {"since": since.isoformat(), "until": until.isoformat()})
        cutoff = min(months[-1].end, now) - timedelta(days=settings_of(session).followup_days)
        rows = _Rows(months, scheduling.tz_of(session))
        _count_referrals(session, rows, orgs, months)
        _acceptance(session, rows, orgs, months)
        _followups(session, rows, orgs, months, cutoff, timedelta(days=settings_of(session).followup_days))
        for (org, label), (places, booked) in scheduling_queries.reserved_use(
                session, org_ids=orgs, day_from=since, day_to=until).items():
            row = rows.get(org, label)
            row.reserved_places, row.reserved_booked = places, booked
        return rows.assemble(session, since, until, division_id)


def _months(since: date, until: date, tz: ZoneInfo) -> list[_Month]:
    out, first = [], since.replace(day=1)
    while first <= until:
        following = (first + timedelta(days=32)).replace(day=1)
        lo, hi = max(first, since), min(following, until + timedelta(days=1))
        out.append(_Month(f"{first:%Y-%m}", _utc(lo, tz), _utc(hi, tz)))
        first = following
    return out


def _utc(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tz).astimezone(ZoneInfo("UTC"))


def _scope(session: Session, actor: Actor, division_id: int | None, ids: list[int] | None,
           detail: dict) -> set[int] | None:
    """The organisations measured (None: the whole region), once the actor may see them."""
    return access.measured_organizations(session, actor, Perm.REFERRAL_STATS, resource_type="ReferralMeasures",
                                         codes=("REF-005", "REF-005"), division_id=division_id, org_ids=ids,
                                         detail=detail)


class _Rows:
    def __init__(self, months: list[_Month], tz: ZoneInfo):
        self.months, self.tz = months, tz
        self.by: dict[tuple[int, str], MeasureRow] = {}

    def get(self, org: int, label: str) -> MeasureRow:
        row = self.by.get((org, label))
        if row is None:
            row = self.by[(org, label)] = MeasureRow(org, "", None, label)
        return row

    def label(self, at: datetime) -> str:
        return f"{at.astimezone(self.tz):%Y-%m}"

    def assemble(self, session: Session, since: date, until: date, division_id: int | None) -> ReferralMeasures:
        orgs = registry_queries.search_organizations(
            session, registry_queries.OrgFilter(ids=sorted({o for o, _m in self.by})), limit=100_000).items
        labels = [m.label for m in self.months]
        rows, facilities = [], []
        monthly = {label: MeasureRow(None, "", None, label) for label in labels}
        total = MeasureRow(None, "", None, None)
        for org in orgs:
            whole = MeasureRow(org.id, org.name, org.level, None)
            for label in labels:
                row = self.by.get((org.id, label))
                if row is None:
                    continue
                row.org_name, row.level = org.name, org.level
                whole.add(row)
                monthly[label].add(row)
                total.add(row)
                rows.append(row.finish())
            facilities.append(whole.finish())
        return ReferralMeasures(since, until, division_id, labels, rows, facilities,
                                [monthly[label].finish() for label in labels], total.finish())


def _within(column, orgs: set[int] | None):
    return column.in_(sorted(orgs)) if orgs is not None else true()


def _grouped(session: Session, org_column, time_column, months: list[_Month], orgs: set[int] | None, *where,
             values=()):
    """(org, month label, count, *sums) of the referrals whose ``time_column`` falls in the
    period. The month is a CASE over the months' UTC bounds (local months, any time zone),
    computed in a subquery so that both databases group by the same column."""
    month = case(*[(and_(time_column >= m.start, time_column < m.end), m.label) for m in months], else_=None)
    inner = (select(org_column.label("org"), month.label("month"), *[v.label(f"v{i}") for i, v in enumerate(values)])
             .where(time_column >= months[0].start, time_column < months[-1].end, _within(org_column, orgs), *where)
             .subquery())
    sums = [func.sum(inner.c[f"v{i}"]) for i in range(len(values))]
    return session.execute(select(inner.c.org, inner.c.month, func.count(), *sums)
                           .group_by(inner.c.org, inner.c.month)).all()


def _count_referrals(session: Session, rows: _Rows, orgs: set[int] | None, months: list[_Month]) -> None:
    """Up and down counts and the no-shows, aggregated in SQL."""
    r = Referral
    up, down = r.direction == d.Direction.UP.value, r.direction == d.Direction.DOWN.value
    for field_name, org_column, time_column, where in (
            ("up_sent", r.from_org_id, r.submitted_at, up), ("up_received", r.to_org_id, r.submitted_at, up),
            ("down_sent", r.from_org_id, r.submitted_at, down), ("down_received", r.to_org_id, r.submitted_at, down),
            ("down_sent", r.to_org_id, r.back_referred_at, True),
            ("down_received", r.back_to_org_id, r.back_referred_at, True)):
        for org, label, n in _grouped(session, org_column, time_column, months, orgs, where):
            row = rows.get(org, label)
            setattr(row, field_name, getattr(row, field_name) + n)
    reached = or_(r.arrived_at.is_not(None), r.no_show_at.is_not(None))
    for org, label, n_reached, n_missed in _grouped(session, r.to_org_id, r.scheduled_for, months, orgs, reached,
                                                    values=(case((r.no_show_at.is_not(None), 1), else_=0),)):
        row = rows.get(org, label)
        row.reached, row.no_shows = n_reached, int(n_missed or 0)


def _acceptance(session: Session, rows: _Rows, orgs: set[int] | None, months: list[_Month]) -> None:
    r = Referral
    for org, submitted, accepted in session.execute(
            select(r.to_org_id, r.submitted_at, r.accepted_at)
            .where(r.accepted_at.is_not(None), r.urgency != d.Urgency.EMERGENCY.value,
                   r.submitted_at >= months[0].start, r.submitted_at < months[-1].end, _within(r.to_org_id, orgs))):
        rows.get(org, rows.label(submitted)).hours.append((accepted - submitted).total_seconds() / 3600)


def _followups(session: Session, rows: _Rows, orgs: set[int] | None, months: list[_Month], cutoff: datetime,
               window: timedelta) -> None:
    """Down-referrals due by ``cutoff`` (issued at most then): followed up within ``window``?"""
    r = Referral
    back = (select(r.back_to_org_id, r.back_referred_at, r.followed_up_at)
            .where(r.back_referred_at >= months[0].start, r.back_referred_at < months[-1].end,
                   r.back_referred_at <= cutoff, _within(r.back_to_org_id, orgs)))
    direct = (select(r.to_org_id, r.submitted_at, r.arrived_at)
              .where(r.direction == d.Direction.DOWN.value, r.status.not_in(NOT_TAKEN),
                     r.submitted_at >= months[0].start, r.submitted_at < months[-1].end,
                     r.submitted_at <= cutoff, _within(r.to_org_id, orgs)))
    for stmt in (back, direct):
        for org, issued, done in session.execute(stmt):
            row = rows.get(org, rows.label(issued))
            row.followup_due += 1
            row.followup_in_time += done is not None and done - issued <= window


# -- what the page offers to choose ---------------------------------------------------------------

def stats_divisions(session: Session, actor: Actor) -> list[registry_queries.DivisionChoice]:
    """Divisions the actor may measure: each division of a ``referral.stats`` grant (the
    region's top one for the platform itself) and two levels under it (city, county)."""
    granted = [g.scope_id for g in actor.grants_with(Perm.REFERRAL_STATS)
               if g.scope_kind is ScopeKind.DIVISION and g.scope_id]
    if actor.system:
        granted = [x for x in [registry_queries.root_division_id(session)] if x is not None]
    return registry_queries.division_choices(session, granted)


def stats_facilities(actor: Actor) -> list[int]:
    """The organisations of the actor's own ``referral.stats`` grants (a facility's admin)."""
    return sorted({g.scope_id for g in actor.grants_with(Perm.REFERRAL_STATS)
                   if g.scope_kind is ScopeKind.ORGANIZATION and g.scope_id})
