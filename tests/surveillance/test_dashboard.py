"""The CDC dashboard's figures, each asserted exactly on a small hand-made dataset inserted
through the models: two counties with facilities placed on the map, report cards around a
day D (one deleted, two either side of local midnight), signals with known response times,
a feed series with a known EARS threshold; and who may read what."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from healthgrid.errors import Forbidden, Invalid
from healthgrid.registry import service as registry
from healthgrid.security import service as security
from healthgrid.security.domain import Actor
from healthgrid.security.models import AuditEvent
from healthgrid.security.pii import seal
from healthgrid.surveillance import dashboard, dashboard_svg, kpis
from healthgrid.surveillance.dashboard_curve import epidemic_curve
from healthgrid.surveillance.dashboard_map import county_map
from healthgrid.surveillance.dashboard_view import dashboard_view
from healthgrid.surveillance.models import Card, FeedCount, Signal

from .signal_fixtures import tune

SYS = Actor.system_actor("tests")
CST = ZoneInfo("Asia/Shanghai")
D = date(2026, 3, 10)  # a Tuesday
NOW = datetime(2026, 3, 12, 4, 0, tzinfo=UTC)
A, B = "910102", "910103"


@dataclass
class World:
    county_a: int
    county_b: int
    city: int
    signals: dict[str, int]


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A China Standard Time wall clock as an aware UTC datetime."""
    return datetime.combine(day, time(hour, minute), CST).astimezone(UTC)


def add_card(session, *, county: str, disease: str, diagnosed: datetime, status: str = "reviewed",
             report_h: float = 2, review_h: float | None = 3, limit_h: int = 24, now: datetime = NOW) -> Card:
    """One card as the card service stores it: personal fields sealed, the clocks set."""
    reported = diagnosed + timedelta(hours=report_h)
    card = Card(card_number=f"T{county}{disease}{diagnosed:%y%m%d%H%M}{report_h}", report_type="first", status=status,
                personal_enc=seal(session, json.dumps({"patient_name": "王小明"}, ensure_ascii=False),
                                  "surv.card.personal"),
                sex="1", age=30, age_unit="years", population_group="farmer", county_code=county,
                current_address_code=f"{county}001001", belongs_to=1, disease=disease, case_class="confirmed",
                diagnosed_at=diagnosed, onset_date=diagnosed.astimezone(CST).date(), reported_at=reported,
                report_due_at=diagnosed + timedelta(hours=limit_h), review_due_at=reported + timedelta(hours=limit_h),
                reviewed_at=reported + timedelta(hours=review_h) if review_h is not None else None,
                created_by="tests", fields={})
    session.add(card)
    return card


def add_signal(session, *, county: str, stream: str, day: date, status: str, generated: datetime,
               verified_h: float | None = None, verification: str | None = None, method: str = "mpm") -> Signal:
    closed = status in ("closed",)
    sig = Signal(stream=stream, disease=stream.split(":")[1] if stream.startswith("case:") else None,
                 county_code=county, division_code=county, method=method, detected_on=day, observed=5,
                 threshold=3, detail={}, status=status, open_key=None if closed else f"{stream}|{county}|{day}",
                 generated_at=generated, verify_due_at=generated + timedelta(hours=24),
                 verified_at=generated + timedelta(hours=verified_h) if verified_h is not None else None,
                 verification=verification)
    session.add(sig)
    return sig


def _region(session) -> tuple[int, int, int]:
    prov = registry.create_division(session, SYS, code="910000", name="青川省", level="province")
    city = registry.create_division(session, SYS, code="910100", name="安平市", level="city", parent_code=prov.code)
    ids = []
    for code, name, lon in ((A, "永宁县", 110.0), (B, "清平县", 111.0)):
        county = registry.create_division(session, SYS, code=code, name=name, level="county", parent_code=city.code)
        town = registry.create_division(session, SYS, code=f"{code}001000", name=name[:2] + "镇", level="township",
                                        parent_code=code)
        registry.create_organization(session, SYS, code=f"CDC-{code}", name=f"{name}疾病预防控制中心", level="L2",
                                     org_type="cdc", division_code=code, latitude=30.0, longitude=lon - 0.05)
        registry.create_organization(session, SYS, code=f"THC-{code}", name=f"{name[:2]}镇卫生院", level="L1",
                                     org_type="township_health_centre", division_code=town.code, latitude=30.0,
                                     longitude=lon + 0.05)
        ids.append(county.id)
    return ids[0], ids[1], city.id


def build(session) -> World:
    """County A: influenza one case a day around D a year ago (each 7-day baseline sum 7),
    then 8 cases in the 7 days up to D, one of them at 23:30 on D, one at 00:30 on D+1 and
    one deleted; plague once on D; B: influenza twice on D. Signals of A with response times
    1 h, 3 h (suspected), 30 h, none (overdue) and none (not yet due); one of B.

    The moving percentile is set as a young system would run it — the same and the one
    neighbouring week on each side in up to three past years, a threshold from one observed
    year (3 sums) — and the curve draws with those settings, as the detection would."""
    tune(session, mpm_years=3, mpm_half_width_weeks=1, mpm_min_years=1)
    county_a, county_b, city = _region(session)
    anchor = D.replace(year=D.year - 1)
    for k in range(-13, 8):
        add_card(session, county=A, disease="3500", diagnosed=at(anchor + timedelta(days=k), 10))
    for k in range(7):  # D-6 .. D
        add_card(session, county=A, disease="3500", diagnosed=at(D - timedelta(days=k), 9))
    add_card(session, county=A, disease="3500", diagnosed=at(D, 23, 30), report_h=30, review_h=None)  # late
    add_card(session, county=A, disease="3500", diagnosed=at(D + timedelta(days=1), 0, 30), review_h=30)
    add_card(session, county=A, disease="3500", diagnosed=at(D, 11), status="deleted")
    add_card(session, county=A, disease="0100", diagnosed=at(D, 14), limit_h=2, report_h=1, review_h=1)
    add_card(session, county=B, disease="3500", diagnosed=at(D, 8))
    add_card(session, county=B, disease="3500", diagnosed=at(D, 16))
    g = at(D, 8)
    sig = {
        "fast": add_signal(session, county=A, stream="case:3500", day=D, status="closed", generated=g, verified_h=1,
                           verification="excluded"),
        "suspected": add_signal(session, county=A, stream="case:0100", day=D, status="field_investigation",
                                generated=g, verified_h=3, verification="suspected", method="fixed"),
        "late": add_signal(session, county=A, stream="fever:ILI", day=D - timedelta(days=1), status="verified_excluded",
                           generated=g - timedelta(days=1), verified_h=30, verification="excluded", method="ears_c3"),
        "overdue": add_signal(session, county=A, stream="case:1400", day=D - timedelta(days=2), status="notified",
                              generated=g - timedelta(days=2)),
        "fresh": add_signal(session, county=A, stream="case:4000", day=D + timedelta(days=1), status="generated",
                            generated=NOW - timedelta(hours=2)),
        "other": add_signal(session, county=B, stream="case:3500", day=D, status="generated", generated=g),
    }
    session.flush()
    return World(county_a, county_b, city, {k: s.id for k, s in sig.items()})


def cdc_user(session, division_id: int, name: str = "cdc-a") -> Actor:
    user = security.create_user(session, SYS, username=name, display_name="疾控", password="Cdc-pass-12345",
                                grants=[security.parse_grant("cdc_epidemiologist", "division", division_id)])
    return security.actor_for(session, user, surface="api", client=None, mfa=True)


# -- the curve ---------------------------------------------------------------------------------------

def test_cases_are_counted_by_local_day_of_diagnosis_without_deleted_cards(session):
    build(session)
    c = epidemic_curve(session, SYS, stream="case:3500", county=A, since=D - timedelta(days=2),
                       until=D + timedelta(days=1))
    assert [(p.start, p.count) for p in c.points] == [(D - timedelta(days=2), 1), (D - timedelta(days=1), 1),
                                                     (D, 2), (D + timedelta(days=1), 1)]
    both = epidemic_curve(session, SYS, stream="case:3500", since=D, until=D)
    assert both.points[0].count == 4 and both.counties == [A, B]


def test_the_moving_percentile_threshold_is_drawn_from_the_catalogue_percentile(session):
    w = build(session)
    c = epidemic_curve(session, SYS, stream="case:3500", county=A, since=D - timedelta(days=1), until=D)
    assert (c.method, c.percentile) == ("mpm", 75)  # influenza P75 (catalogue)
    yesterday, today = c.points
    # Baseline: only last year's three 7-day sums exist (reporting began then), each 7.
    assert today.threshold == 7.0 and today.statistic == 8.0 and today.alarm
    assert today.signals == (w.signals["fast"],)
    # The day before, the earliest baseline window starts a day before reporting began:
    # two of nine sums are not enough.
    assert yesterday.statistic == 6.0 and yesterday.threshold is None and not yesterday.alarm


def test_weekly_curves_sum_iso_weeks_and_test_the_week_against_its_sunday(session):
    build(session)
    c = epidemic_curve(session, SYS, stream="case:3500", county=A, since=D, until=D, weekly=True)
    (week,) = c.points
    assert (week.start, week.end) == (date(2026, 3, 9), date(2026, 3, 15))
    assert week.count == 4  # D-1, D (two), D+1; D-6..D-2 fall in the week before
    # The Sunday's baseline: last year's weeks around it held 7, 7 and 2 cases; P75 = 7.
    assert week.threshold == 7.0 and not week.alarm
    fixed = epidemic_curve(session, SYS, stream="case:0100", county=A, since=D, until=D, weekly=True)
    assert (fixed.method, fixed.points[0].count, fixed.points[0].threshold, fixed.points[0].alarm) == \
        ("fixed", 1, 1.0, True)


def test_a_feed_curve_draws_the_ears_c3_threshold_in_counts(session):
    build(session)
    days = [D - timedelta(days=k) for k in range(12, -1, -1)]
    values = [10] * 12 + [11]
    for day, n in zip(days, values, strict=True):
        for source, share in (("H1", n - n // 2), ("H2", n // 2)):
            session.add(FeedCount(feed="fever", source=source, division_code=f"{A}001000", county_code=A, day=day,
                                  metric="ILI", count=share, total=100))
    session.flush()
    c = epidemic_curve(session, SYS, stream="fever:ILI", county=A, since=D, until=D)
    (p,) = c.points
    # Baseline D-9..D-3 all 10 (sd 0), no excess the two days before: the line is the mean.
    assert (c.method, p.count, p.total, p.threshold, p.alarm) == ("ears_c3", 11, 200, 10.0, True)
    assert p.signals == ()  # the ILI signal of the data set is on D-1


def test_the_ears_line_and_alarm_agree_on_a_varied_series():
    rng = __import__("numpy").random.default_rng(3)
    x = rng.poisson(12, 200).astype(float)
    x[150:154] += 25
    from healthgrid.surveillance.dashboard_curve import ears_threshold

    _count, limit, alarm = ears_threshold(x)
    ok = ~__import__("numpy").isnan(limit)
    assert ok[11:].all() and not ok[:11].any() and alarm[150:154].any()
    assert ((x > limit) == alarm)[ok].all()


# -- signals, KPIs, top diseases, the map ----------------------------------------------------------

def test_signals_by_status_stream_and_method(session):
    build(session)
    s = dashboard.signal_summary(session, SYS, county=A, since=D - timedelta(days=2), until=D + timedelta(days=1))
    assert s.total == 5 and s.open_now == 4
    assert list(s.by_status) == list(dashboard.STATUSES)
    assert {k: v for k, v in s.by_status.items() if v} == {"closed": 1, "field_investigation": 1,
                                                          "verified_excluded": 1, "notified": 1, "generated": 1}
    assert ("case:3500", 1, 0) in s.by_stream and ("case:0100", 1, 1) in s.by_stream
    assert s.by_method == {"mpm": 3, "fixed": 1, "ears_c3": 1}
    only_d = dashboard.signal_summary(session, SYS, since=D, until=D)
    assert only_d.total == 3 and only_d.open_now == 5


def test_response_and_card_kpis_have_their_defined_values(session):
    build(session)
    k = kpis.response_kpis(session, SYS, county=A, since=D - timedelta(days=2), until=D + timedelta(days=1), now=NOW)
    assert (k.signals, k.due, k.verified, k.within_24h, k.suspected) == (5, 4, 3, 2, 1)
    assert k.response_rate.value == 0.75 and k.within_24h_rate.value == 0.5
    assert k.median_response_hours == 3.0 and k.suspected_rate.value == pytest.approx(1 / 3)
    # Cards of A diagnosed D-2..D+1, deleted left out: 3 influenza (D-2, D-1, D) at 09:00,
    # the late one at 23:30, the one after midnight, plague. One reported late; the late
    # one is not reviewed and its review is not due yet (30 h + 24 h after D 23:30).
    assert (k.cards, k.reported_in_time) == (6, 5)
    assert (k.review_due, k.reviewed_in_time) == (5, 4)  # the after-midnight one reviewed after 30 h


def test_top_diseases_compare_the_week_with_the_same_week_last_year(session):
    build(session)
    top = dashboard.top_diseases(session, SYS, county=A, until=D)
    assert [(t.disease, t.cases, t.last_year) for t in top] == [("3500", 8, 7), ("0100", 1, 0)]
    assert top[1].change is None and top[0].change == pytest.approx(1 / 7)


def test_the_map_draws_each_county_as_its_voronoi_cell(session):
    w = build(session)
    m = county_map(session, SYS, since=D, until=D)
    a, b = m.counties
    assert (a.code, b.code) == (A, B)
    assert a.centre == pytest.approx((110.0, 30.0)) and b.centre == pytest.approx((111.0, 30.0))
    assert (a.open_signals, a.signals, a.cases, b.open_signals, b.signals, b.cases) == (4, 2, 3, 1, 1, 2)
    # Same latitude: the cells meet on the meridian half way, inside the padded box.
    assert max(x for x, _ in a.cell) == pytest.approx(110.5) == min(x for x, _ in b.cell)
    assert m.box[0] < 110.0 and m.box[1] > 111.0 and a.label[0] < 110.5 < b.label[0]
    cdc = cdc_user(session, w.county_a)
    mine = county_map(session, cdc, since=D, until=D)
    assert [(c.code, c.in_scope, c.cases) for c in mine.counties] == [(A, True, 3), (B, False, None)]
    assert mine.counties[1].cell == b.cell  # the same shapes whoever looks


def test_voronoi_cells_tile_the_box():
    box = (0.0, 4.0, 0.0, 3.0)
    pts = [(1.0, 1.0), (3.0, 1.0), (2.0, 2.5), (2.0, 1.0)]
    cells = dashboard_svg.voronoi_cells(pts, box)
    area = sum(abs(_area(c)) for c in cells)
    assert area == pytest.approx(12.0)
    for p, cell in zip(pts, cells, strict=True):
        cx, cy = dashboard_svg.polygon_centroid(cell)
        nearest = min(range(len(pts)), key=lambda i: (pts[i][0] - cx) ** 2 + (pts[i][1] - cy) ** 2)
        assert pts[nearest] == p
    assert dashboard_svg.voronoi_cells([(2.0, 1.0)], box) == [[(0.0, 0.0), (4.0, 0.0), (4.0, 3.0), (0.0, 3.0)]]


def _area(poly):
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(poly, poly[1:] + poly[:1], strict=True)) / 2


# -- scope ---------------------------------------------------------------------------------------------

def test_a_county_cdc_reads_its_county_only(session):
    w = build(session)
    cdc = cdc_user(session, w.county_a)
    s = dashboard.signal_summary(session, cdc, since=D, until=D)
    assert s.total == 2 and s.open_now == 4  # county A's only
    with pytest.raises(Forbidden) as exc:
        epidemic_curve(session, cdc, stream="case:3500", county=B, since=D, until=D)
    assert exc.value.code == "SEC-103"
    city = cdc_user(session, w.city, "cdc-city")
    assert dashboard.signal_summary(session, city, since=D, until=D).total == 3
    clinician = security.actor_for(session, security.create_user(
        session, SYS, username="clin-a", display_name="医生", password="Doctor-pass-123",
        grants=[security.parse_grant("clinician", "division", w.county_a)]), surface="api", client=None, mfa=True)
    with pytest.raises(Forbidden) as exc:
        kpis.response_kpis(session, clinician, since=D, until=D)
    assert exc.value.code == "SEC-102"
    session.flush()
    trail = session.scalars(select(AuditEvent).where(AuditEvent.resource_type == "SurveillanceDashboard",
                                                     AuditEvent.username == cdc.username)).all()
    assert {(e.action, e.outcome, e.patient_id) for e in trail} == {("search", "success", None),
                                                                    ("search", "denied", None)}


def test_bad_parameters_are_refused_with_a_code_naming_the_field(session):
    build(session)
    cases = [(dict(stream="case:3500", county="999999", since=D, until=D), "SURV-601", "county"),
             (dict(stream="flu", since=D, until=D), "SURV-602", "stream"),
             (dict(stream="case:ZZZZ", since=D, until=D), "SURV-602", "stream"),
             (dict(stream="radio:ILI", since=D, until=D), "SURV-602", "stream"),
             (dict(stream="case:3500", since=D, until=D - timedelta(days=1)), "SURV-603", "until"),
             (dict(stream="case:3500", since=date(1999, 1, 1), until=D), "SURV-603", "since"),
             (dict(stream="case:3500", since=D - timedelta(days=1200), until=D), "SURV-604", "since")]
    for kw, code, field in cases:
        with pytest.raises(Invalid) as exc:
            epidemic_curve(session, SYS, **kw)
        assert (exc.value.code, exc.value.detail["field"]) == (code, field), kw


def test_the_page_view_combines_the_figures_under_one_scope(session):
    w = build(session)
    cdc = cdc_user(session, w.county_a)
    v = dashboard_view(session, cdc, county=None, since=D - timedelta(days=2), until=D + timedelta(days=1), now=NOW)
    assert v.stream == "case:3500" and v.scope.codes == [A]  # the top disease of the week
    assert v.streams[:2] == ["case:0100", "case:3500"] and v.kpis.due == 4
    assert [c.in_scope for c in v.map.counties] == [True, False]
    assert v.curve.points[-2].count == 2 and v.summary.total == 5
