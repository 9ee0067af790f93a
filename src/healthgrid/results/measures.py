"""Mutual-recognition measures (互认指标) per ordering facility and calendar month (China
time), with totals per month, per facility and over all of them. Only the logged decisions
(``res_decision``) are read: counts and prices, no patient data.

Definitions (domain-rules.md §4.5: the decisions "feed the non-recognition rate and the
repeat-test KPIs reported to the insurance and health authorities"; 国卫医发〔2022〕6号):

- ``orders``: decisions logged at order time in the month (by the time they were decided),
  whatever the outcome; a check still awaiting the doctor's answer is not an order yet and
  is counted apart (``awaiting``).
- ``with_recognisable``: orders for which at least one recognisable prior result was offered
  (outcome ``recognised`` or ``repeat_with_reason``); ``recognisable_share`` = with_recognisable
  ÷ orders: the share of orders where a recognisable result existed.
- ``recognised`` (repeats avoided, 互认人次): the doctor recognised a prior result;
  ``recognition_rate`` = recognised ÷ with_recognisable.
- ``repeat_with_reason``: repeated although recognisable, under an exception (§4.3), also
  split ``by_reason`` (the six national reasons and the enabled local ones).
- ``repeat_not_recognisable``: prior results existed but none was recognisable (expired, the
  lab failed EQA, no mark, outside the level scope, ...): the repeat was allowed.
- ``repeat_no_prior``: no prior result of the item anywhere in the region: the test is new.
- ``not_applicable``: the item is not on the region's recognised list at the facility's level.
- ``cost_avoided_cny``: the sum, over the recognised orders, of the item's price stored with
  the decision (the catalogue's price for the item, overridden per region in its list:
  configurable there); an estimate of the charges the patients did not pay.

Totals pool the decisions under them (a rate of a total is the ratio of its summed counts).
Who: ``results.stats`` on the facilities (a facility's administrator: its own; the
commission: its divisions); audited as a search. Codes RES-135…RES-139.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, case, func, select, true
from sqlalchemy.orm import Session

from ..db import transaction
from ..errors import Invalid
from ..registry import queries as registry_queries
from ..security import access
from ..security.domain import Actor, Perm, ScopeKind
from .domain import CN_TZ
from .models import Decision
from .ordering import PENDING
from .recognition import Outcome

MAX_MONTHS = 36
EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)
COUNTS = ("orders", "with_recognisable", "recognised", "repeat_with_reason", "repeat_not_recognisable",
          "repeat_no_prior", "not_applicable", "awaiting")
FIELD_OF = {str(Outcome.RECOGNISED): "recognised", str(Outcome.REPEAT_WITH_REASON): "repeat_with_reason",
            str(Outcome.REPEAT_NOT_RECOGNISABLE): "repeat_not_recognisable",
            str(Outcome.REPEAT_NO_PRIOR): "repeat_no_prior", str(Outcome.NOT_APPLICABLE): "not_applicable",
            PENDING: "awaiting"}


@dataclass
class MeasureRow:
    """One facility and month; ``org_id`` None in totals over facilities, ``month`` ("YYYY-MM")
    None in totals over the period."""

    org_id: int | None
    org_name: str
    level: str | None
    month: str | None
    orders: int = 0
    with_recognisable: int = 0
    recognised: int = 0
    repeat_with_reason: int = 0
    repeat_not_recognisable: int = 0
    repeat_no_prior: int = 0
    not_applicable: int = 0
    awaiting: int = 0
    cost_avoided_cny: float = 0.0
    by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def recognisable_share(self) -> float | None:
        return self.with_recognisable / self.orders if self.orders else None

    @property
    def recognition_rate(self) -> float | None:
        return self.recognised / self.with_recognisable if self.with_recognisable else None

    def add(self, other: MeasureRow) -> None:
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.cost_avoided_cny = round(self.cost_avoided_cny + other.cost_avoided_cny, 2)
        for reason, n in other.by_reason.items():
            self.by_reason[reason] = self.by_reason.get(reason, 0) + n


@dataclass
class RecognitionMeasures:
    since: date
    until: date
    division_id: int | None
    months: list[str]
    rows: list[MeasureRow]  # facility x month (facilities with any decision), months in order
    facilities: list[MeasureRow]  # each facility over the period
    monthly: list[MeasureRow]  # all the facilities, per month
    total: MeasureRow


@dataclass(frozen=True)
class _Month:
    label: str
    start: datetime
    end: datetime


def recognition_measures(session: Session, actor: Actor, *, division_id: int | None = None,
                         org_ids: Iterable[int] | None = None, since: date, until: date) -> RecognitionMeasures:
    """The measures of the facilities in a division, or of the given organisations, or (with
    neither) of every facility in the actor's ``results.stats`` scope, from ``since`` to
    ``until`` (China days, inclusive; at most 36 months)."""
    ids = sorted(set(org_ids)) if org_ids is not None else None
    if division_id is not None and ids is not None:
        raise Invalid("RES-135", "give division_id or org_ids, not both", {"field": "org_ids"})
    if until < since:
        raise Invalid("RES-136", "until: on or after since", {"field": "until"})
    if since < EARLIEST or until > LATEST:
        raise Invalid("RES-136", f"since, until: between {EARLIEST} and {LATEST}", {"field": "since"})
    if (until.year - since.year) * 12 + until.month - since.month >= MAX_MONTHS:
        raise Invalid("RES-137", f"at most {MAX_MONTHS} months at a time", {"field": "since"})
    months = _months(since, until)
    with transaction(session):
        orgs = _scope(session, actor, division_id, ids, {"since": since.isoformat(), "until": until.isoformat()})
        by: dict[tuple[int, str], MeasureRow] = {}
        for org, label, outcome, reason, n, price in _grouped(session, months, orgs):
            row = by.setdefault((org, label), MeasureRow(org, "", None, label))
            name = FIELD_OF.get(outcome)
            if name is None:
                continue
            setattr(row, name, getattr(row, name) + n)
            if outcome != PENDING:
                row.orders += n
            if outcome in (str(Outcome.RECOGNISED), str(Outcome.REPEAT_WITH_REASON)):
                row.with_recognisable += n
            if outcome == str(Outcome.RECOGNISED):
                row.cost_avoided_cny = round(row.cost_avoided_cny + float(price or 0), 2)
            if outcome == str(Outcome.REPEAT_WITH_REASON):
                row.by_reason[reason or "unknown"] = row.by_reason.get(reason or "unknown", 0) + n
        return _assemble(session, by, months, since, until, division_id)


def _months(since: date, until: date) -> list[_Month]:
    out, first = [], since.replace(day=1)
    while first <= until:
        following = (first + timedelta(days=32)).replace(day=1)
        lo, hi = max(first, since), min(following, until + timedelta(days=1))
        out.append(_Month(f"{first:%Y-%m}", datetime.combine(lo, time(), CN_TZ), datetime.combine(hi, time(), CN_TZ)))
        first = following
    return out


def _scope(session: Session, actor: Actor, division_id: int | None, ids: list[int] | None,
           detail: dict) -> set[int] | None:
    """The organisations measured (None: the whole region), once the actor may see them."""
    return access.measured_organizations(session, actor, Perm.RESULT_STATS, resource_type="RecognitionMeasures",
                                         codes=("RES-138", "RES-139"), division_id=division_id, org_ids=ids,
                                         detail=detail)


def _grouped(session: Session, months: list[_Month], orgs: set[int] | None):
    """(org, month, outcome, reason, count, sum of prices) over the period, grouped in SQL
    (the month a CASE over the months' bounds, in a subquery so both databases group alike)."""
    d = Decision
    month = case(*[(and_(d.decided_at >= m.start, d.decided_at < m.end), m.label) for m in months], else_=None)
    within = d.ordering_org_id.in_(sorted(orgs)) if orgs is not None else true()
    inner = (select(d.ordering_org_id.label("org"), month.label("month"), d.outcome.label("outcome"),
                    d.override_reason.label("reason"), d.price_cny.label("price"))
             .where(d.decided_at >= months[0].start, d.decided_at < months[-1].end, within).subquery())
    return session.execute(select(inner.c.org, inner.c.month, inner.c.outcome, inner.c.reason, func.count(),
                                  func.sum(inner.c.price))
                           .group_by(inner.c.org, inner.c.month, inner.c.outcome, inner.c.reason)).all()


def _assemble(session: Session, by: dict[tuple[int, str], MeasureRow], months: list[_Month], since: date,
              until: date, division_id: int | None) -> RecognitionMeasures:
    orgs = registry_queries.search_organizations(
        session, registry_queries.OrgFilter(ids=sorted({o for o, _m in by})), limit=100_000).items if by else []
    labels = [m.label for m in months]
    rows, facilities = [], []
    monthly = {label: MeasureRow(None, "", None, label) for label in labels}
    total = MeasureRow(None, "", None, None)
    for org in sorted(orgs, key=lambda o: (-int(o.level[1:]) if o.level[1:].isdigit() else 0, o.code)):
        whole = MeasureRow(org.id, org.name, org.level, None)
        for label in labels:
            row = by.get((org.id, label))
            if row is None:
                continue
            row.org_name, row.level = org.name, org.level
            whole.add(row)
            monthly[label].add(row)
            total.add(row)
            rows.append(row)
        facilities.append(whole)
    return RecognitionMeasures(since, until, division_id, labels, rows, facilities,
                               [monthly[label] for label in labels], total)


# -- what the page offers to choose ---------------------------------------------------------------

def stats_divisions(session: Session, actor: Actor) -> list[registry_queries.DivisionChoice]:
    """Divisions the actor may measure: each division of a ``results.stats`` grant (the
    region's top one for the platform itself) and two levels under it (city, county)."""
    granted = [g.scope_id for g in actor.grants_with(Perm.RESULT_STATS)
               if g.scope_kind is ScopeKind.DIVISION and g.scope_id]
    if actor.system:
        granted = [x for x in [registry_queries.root_division_id(session)] if x is not None]
    return registry_queries.division_choices(session, granted)


def stats_facilities(actor: Actor) -> list[int]:
    """The organisations of the actor's own ``results.stats`` grants (a facility's admin)."""
    return sorted({g.scope_id for g in actor.grants_with(Perm.RESULT_STATS)
                   if g.scope_kind is ScopeKind.ORGANIZATION and g.scope_id})
