"""The CDC dashboard's figures (传染病监测预警 监测大屏): read-only, no patient data ever — counts,
thresholds, signals and places. Each public function checks ``surveillance.stats`` on the
scope it is asked about and audits the read (a search, without patient data). Here: the
scope, the period and stream checks, the signals by status and the top diseases; the
epidemic curve is :mod:`.dashboard_curve`, the map :mod:`.dashboard_map`, the response KPIs
:mod:`.kpis`, the counting :mod:`.dashboard_counts`, the drawing :mod:`.dashboard_svg`.

Scope: the counties under a division the actor holds ``surveillance.stats`` on — a county
CDC its county, a city CDC or the commission the counties of their city or province, the
platform itself every county. A county asked for outside that scope is refused (SEC-103).

Sources of the figures: ../shared/specs/domain-rules.md §5.4 and §5.6 — CIDARS (Yang et al.
2011, PubMed 21569720; Zhang et al. 2017, BMC Public Health, doi:10.1186/s12889-017-4488-0;
the 2016 performance report, jbjc.org article 9126).

- **Signals by status** (``signal_summary``): the signals detected (``detected_on``) in the
  period, by current status in lifecycle order, by stream (a disease or a feed metric, with
  how many are still open) and by method; and the signals open now in scope, whatever
  their day (a signal is open until closed: ``open_key`` set).
- **Top diseases** (``top_diseases``): cases of the 7 days up to a day (the CIDARS window)
  against the same 7 days a year earlier, per disease, largest first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db import transaction
from ..errors import Invalid
from ..registry import queries as registry_queries
from ..security import access
from ..security.domain import Actor, AuditAction, Perm, ScopeKind
from . import dashboard_counts as counts
from .catalogue import load_catalogue
from .models import Signal

STATUSES = ("generated", "notified", "verified_excluded", "suspected", "field_investigation", "confirmed",
            "excluded", "closed")
OPEN_STATUSES = STATUSES[:-1]
FEEDS = {"fever": ("发热门诊", "Fever clinics"), "ed": ("急诊", "Emergency departments"),
         "pharmacy": ("药店", "Pharmacies"), "school": ("学校与托幼机构", "Schools and kindergartens"),
         "lab": ("实验室", "Laboratories")}
METRICS = {"ILI": ("流感样病例", "Influenza-like illness"), "SARI": ("严重急性呼吸道感染", "SARI"),
           "diarrhoea": ("腹泻", "Diarrhoea"), "rash_fever": ("发热伴出疹", "Fever with rash"),
           "antipyretic": ("退热药", "Antipyretics"), "cough": ("止咳药", "Cough medicine"),
           "antidiarrhoeal": ("止泻药", "Antidiarrhoeals"), "fever": ("发热", "Fever"),
           "influenza_a": ("甲型流感", "Influenza A"), "influenza_b": ("乙型流感", "Influenza B"),
           "norovirus": ("诺如病毒", "Norovirus"), "rsv": ("呼吸道合胞病毒", "RSV"),
           "covid19": ("新冠病毒", "SARS-CoV-2")}
FIRST_DAY, LAST_DAY = date(2004, 1, 1), date(2100, 12, 31)  # the catalogue starts with the 2004 law
MAX_DAYS = 1_100  # a curve or a period: three years at most
_STREAM = re.compile(r"^(case):([0-9A-Z]{4})$|^([a-z]{2,12}):([A-Za-z0-9_]{1,40})$")
_COUNTY = re.compile(r"^[0-9]{6}$")


@dataclass(frozen=True)
class County:
    id: int
    code: str
    name: str


@dataclass(frozen=True)
class Scope:
    counties: tuple[County, ...]  # in scope, by code
    region: tuple[County, ...]  # every county of the region, for the map

    @property
    def codes(self) -> list[str]:
        return [c.code for c in self.counties]

    def name(self, code: str) -> str:
        return next((c.name for c in self.region if c.code == code), code)


def region_counties(session: Session) -> list[County]:
    rows = registry_queries.search_divisions(session, level="county", limit=100_000).items
    return sorted((County(d.id, d.code[:6], d.name) for d in rows), key=lambda c: c.code)


def _granted(session: Session, actor: Actor, region: list[County]) -> tuple[County, ...]:
    if actor.system:
        return tuple(region)
    ids = {g.scope_id for g in actor.grants_with(Perm.SURVEILLANCE_STATS)
           if g.scope_kind is ScopeKind.DIVISION and g.scope_id}
    return tuple(c for c in region if ids & registry_queries.division_lineage(session, c.id))


def granted_scope(session: Session, actor: Actor) -> Scope:
    """Every county the actor may read, without a check or an audit entry: for a caller that
    has already made them (the page reads one county yet draws all of them on the map)."""
    region = region_counties(session)
    return Scope(_granted(session, actor, region), tuple(region))


def dashboard_scope(session: Session, actor: Actor, *, county: str | None, what: str, detail: dict) -> Scope:
    """The counties read (one, or all in scope), once the actor may read them; audited."""
    region = region_counties(session)
    check = dict(resource_type="SurveillanceDashboard", resource_id=what, detail={**detail, "county": county})
    if county is None:
        access.check(session, actor, Perm.SURVEILLANCE_STATS, AuditAction.SEARCH, **check)
        return Scope(_granted(session, actor, region), tuple(region))
    found = next((c for c in region if c.code == county), None) if _COUNTY.match(county) else None
    if found is None:
        access.check(session, actor, Perm.SURVEILLANCE_STATS, AuditAction.SEARCH, audit_success=False, **check)
        raise Invalid("SURV-601", f"county: no county with the code {county!r} (6 digits)", {"field": "county"})
    access.check(session, actor, Perm.SURVEILLANCE_STATS, AuditAction.SEARCH, division_id=found.id, **check)
    return Scope((found,), tuple(region))


def check_period(since: date, until: date, *, max_days: int = MAX_DAYS) -> None:
    for name, day in (("since", since), ("until", until)):
        if not FIRST_DAY <= day <= LAST_DAY:
            raise Invalid("SURV-603", f"{name}: a day from {FIRST_DAY} to {LAST_DAY}", {"field": name})
    if until < since:
        raise Invalid("SURV-603", "until: on or after since", {"field": "until"})
    if (until - since).days + 1 > max_days:
        raise Invalid("SURV-604", f"since: at most {max_days} days at a time", {"field": "since"})


# -- streams -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stream:
    key: str  # case:3500 | fever:ILI
    feed: str | None  # None for notifiable cases
    code: str  # the disease code, or the feed's metric


def parse_stream(value: str) -> Stream:
    match = _STREAM.match(value or "")
    if match is None:
        raise Invalid("SURV-602", "stream: case:<disease code> or <feed>:<metric>", {"field": "stream"})
    if match.group(1):
        if not load_catalogue().versions(match.group(2)):
            raise Invalid("SURV-602", f"stream: no disease {match.group(2)} in the catalogue", {"field": "stream"})
        return Stream(value, None, match.group(2))
    if match.group(3) not in FEEDS:
        raise Invalid("SURV-602", f"stream: the feed is one of {', '.join(FEEDS)}", {"field": "stream"})
    return Stream(value, match.group(3), match.group(4))


def stream_label(key: str, lang: str, on: date) -> str:
    """A stream in words: the disease's name, or the feed and its metric."""
    kind, _, code = key.partition(":")
    if kind == "case":
        found = load_catalogue().find(code, on) or next(iter(load_catalogue().versions(code)), None)
        return (found.zh if lang == "zh" else found.en) if found else key
    pair = FEEDS.get(kind, (kind, kind))
    metric = METRICS.get(code, (code, code))
    i = 0 if lang == "zh" else 1
    return f"{pair[i]}·{metric[i]}" if lang == "zh" else f"{pair[i]}: {metric[i]}"


# -- signals by status -----------------------------------------------------------------------------

@dataclass
class SignalSummary:
    since: date
    until: date
    total: int = 0
    open_now: int = 0
    by_status: dict[str, int] = field(default_factory=dict)  # every status, lifecycle order
    by_stream: list[tuple[str, int, int]] = field(default_factory=list)  # (stream, signals, still open)
    by_method: dict[str, int] = field(default_factory=dict)


def signal_summary(session: Session, actor: Actor, *, county: str | None = None, since: date,
                   until: date) -> SignalSummary:
    check_period(since, until)
    with transaction(session):
        scope = dashboard_scope(session, actor, county=county, what="signals",
                                detail={"since": since.isoformat(), "until": until.isoformat()})
        return summarise_signals(session, scope, since, until)


def summarise_signals(session: Session, scope: Scope, since: date, until: date) -> SignalSummary:
    s = Signal
    where = [s.county_code.in_(scope.codes), s.detected_on >= since, s.detected_on <= until]
    out = SignalSummary(since, until, by_status=dict.fromkeys(STATUSES, 0))
    for status, n in session.execute(select(s.status, func.count()).where(*where).group_by(s.status)):
        out.by_status[status] = out.by_status.get(status, 0) + n
        out.total += n
    rows = session.execute(select(s.stream, func.count(), func.count(s.open_key)).where(*where)
                           .group_by(s.stream)).all()
    out.by_stream = sorted(((k, n, int(o or 0)) for k, n, o in rows), key=lambda r: (-r[1], r[0]))
    out.by_method = dict(session.execute(select(s.method, func.count()).where(*where).group_by(s.method)).all())
    out.open_now = session.scalar(select(func.count()).select_from(s).where(
        s.county_code.in_(scope.codes), s.open_key.is_not(None))) or 0
    return out




# -- the top diseases of the week ----------------------------------------------------------------------

@dataclass(frozen=True)
class DiseaseWeek:
    disease: str
    cases: int  # the 7 days up to the day
    last_year: int  # the same 7 days a year earlier

    @property
    def change(self) -> float | None:
        """Relative change against last year; None when last year had none."""
        return (self.cases - self.last_year) / self.last_year if self.last_year else None


def same_day_last_year(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def top_diseases(session: Session, actor: Actor, *, county: str | None = None, until: date,
                 limit: int = 10) -> list[DiseaseWeek]:
    check_period(until, until)
    with transaction(session):
        scope = dashboard_scope(session, actor, county=county, what="top", detail={"until": until.isoformat()})
        return week_against_last_year(session, scope, until, limit)


def week_against_last_year(session: Session, scope: Scope, until: date, limit: int) -> list[DiseaseWeek]:
    if not scope.codes:
        return []
    now = counts.cases_by(session, by="disease", counties=scope.codes, since=until - timedelta(days=6), until=until)
    ago = same_day_last_year(until)
    then = counts.cases_by(session, by="disease", counties=scope.codes, since=ago - timedelta(days=6), until=ago)
    rows = [DiseaseWeek(code, now.get(code, 0), then.get(code, 0)) for code in set(now) | set(then)]
    return sorted(rows, key=lambda r: (-r.cases, -r.last_year, r.disease))[:limit]


# -- aggregate case counts (FHIR MeasureReport) -------------------------------------------------------

@dataclass(frozen=True)
class Reporter:
    org_id: int
    name: str


@dataclass
class CaseCounts:
    rows: list[counts.CaseCount]
    total: int
    county_names: dict[str, str]
    reporters: dict[str, Reporter]  # the county CDC (县级疾控) of each county, where the registry has one


def county_cdcs(session: Session, codes: list[str]) -> dict[str, Reporter]:
    """The CDC organisation sitting at each county's own division (not a township's)."""
    out: dict[str, Reporter] = {}
    for code in codes:
        orgs = registry_queries.search_organizations(
            session, registry_queries.OrgFilter(types=["cdc"], division_code=code, active=True), limit=20).items
        found = next((o for o in sorted(orgs, key=lambda o: o.id) if o.division.code[:6] == code
                      and o.division.level == "county"), None)
        if found is not None:
            out[code] = Reporter(found.id, found.name)
    return out


def reporter_county(session: Session, org_id: int) -> str | None:
    """The county whose CDC this organisation is (a CDC at a county's own division), else None."""
    org = registry_queries.organization_or_none(session, org_id)
    if org is None or org.org_type != "cdc" or org.division.level != "county":
        return None
    return org.division.code[:6]


def case_counts(session: Session, actor: Actor, *, county: str | None, diseases: list[str] | None, since: date,
                until: date, weekly: bool, offset: int, limit: int) -> CaseCounts:
    """Non-zero case counts per disease x county x day (or ISO week) overlapping the period, in
    one county or all those in scope; one page, with the total; audited as a search."""
    check_period(since, until)
    with transaction(session):
        scope = dashboard_scope(session, actor, county=county, what="case_counts",
                                detail={"since": since.isoformat(), "until": until.isoformat(), "weekly": weekly})
        rows, total = counts.grouped_cases(session, weekly=weekly, counties=scope.codes, since=since, until=until,
                                           diseases=diseases, offset=offset, limit=limit)
        codes = sorted({r.county_code for r in rows})
        return CaseCounts(rows, total, {c: scope.name(c) for c in codes}, county_cdcs(session, codes))


def case_count(session: Session, actor: Actor, *, disease: str, county: str, start: date,
               weekly: bool) -> CaseCounts:
    """The cases of one disease in one county on one day (or the ISO week from a Monday),
    zero included; audited as a read."""
    end = start + timedelta(days=6 if weekly else 0)
    check_period(start, end)
    with transaction(session):
        scope = dashboard_scope(session, actor, county=county, what="case_count",
                                detail={"disease": disease, "start": start.isoformat(), "weekly": weekly})
        n = counts.one_count(session, disease=disease, county=county, start=start, end=end)
        row = counts.CaseCount(disease, county, start, end, n)
        return CaseCounts([row], 1, {county: scope.name(county)}, county_cdcs(session, [county]))
