"""Fixtures of the signal tests: a region of three counties (each with its CDC and a hospital,
with coordinates) under one city, CDC epidemiologists scoped to a county and to the city, a
facility administrator; and report cards and feed counts inserted straight through the
models (the card service is tested on its own; here only what detection counts matters:
disease, county, diagnosis time, status)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from tests.factories import SYS

from healthgrid.registry import service as registry
from healthgrid.security import ALL_SETTINGS_KEY
from healthgrid.security import service as security
from healthgrid.security.domain import Actor
from healthgrid.surveillance.models import Card, FeedCount

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2025, 3, 10)  # the day detected in these tests (a Monday)
NOW = datetime.combine(DAY + timedelta(days=1), time(1, 30), tzinfo=TZ).astimezone(UTC)  # next morning
_numbers = itertools.count(1)


@dataclass
class World:
    prefix: str
    city: object
    counties: list  # three county divisions: A, B, C
    town_a: object
    cdcs: list  # the county CDCs, one per county
    city_cdc: object
    hospital_a: object
    epi_a: Actor  # county A's CDC epidemiologist
    epi_b: Actor
    epi_city: Actor
    admin_a: Actor  # hospital A's facility administrator

    def county(self, i: int = 0) -> str:
        return self.counties[i].code


def user(session, username: str, role: str, scope_kind: str, scope_id: int, org_id: int | None = None) -> Actor:
    u = security.create_user(session, SYS, username=username, display_name=username, password="Signal-pass-123",
                             grants=[security.parse_grant(role, scope_kind, scope_id)], org_id=org_id)
    return security.actor_for(session, u, surface="api", client=None, mfa=True)


def make_world(session, *, prefix: str = "93") -> World:
    prov = registry.create_division(session, SYS, code=f"{prefix}0000", name="青川省", level="province")
    city = registry.create_division(session, SYS, code=f"{prefix}0100", name="安平市", level="city",
                                    parent_code=prov.code)
    names = ["永宁县", "清远县", "白沙县"]
    counties, cdcs = [], []
    for i, name in enumerate(names):
        county = registry.create_division(session, SYS, code=f"{prefix}01{i + 2:02d}", name=name, level="county",
                                          parent_code=city.code)
        counties.append(county)
        cdcs.append(registry.create_organization(
            session, SYS, code=f"{prefix}-CDC{i}", name=f"{name}疾病预防控制中心", level="L2", org_type="cdc",
            division_code=county.code, latitude=30.0 + 0.3 * i, longitude=110.0 + 0.3 * i))
    town = registry.create_division(session, SYS, code=f"{counties[0].code}001000", name="清河镇", level="township",
                                    parent_code=counties[0].code)
    city_cdc = registry.create_organization(session, SYS, code=f"{prefix}-CDCC", name="安平市疾病预防控制中心",
                                            level="L3", org_type="cdc", division_code=city.code,
                                            latitude=30.2, longitude=110.2)
    hosp = registry.create_organization(session, SYS, code=f"{prefix}-H1", name="永宁县人民医院", level="L2",
                                        org_type="general_hospital", division_code=counties[0].code,
                                        latitude=30.01, longitude=110.01)
    return World(prefix, city, counties, town, cdcs, city_cdc, hosp,
                 epi_a=user(session, f"epi-a-{prefix}", "cdc_epidemiologist", "division", counties[0].id),
                 epi_b=user(session, f"epi-b-{prefix}", "cdc_epidemiologist", "division", counties[1].id),
                 epi_city=user(session, f"epi-c-{prefix}", "cdc_epidemiologist", "division", city.id),
                 admin_a=user(session, f"adm-a-{prefix}", "facility_admin", "organization", hosp.id, hosp.id))


def at_local(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=TZ).astimezone(UTC)


def card_row(disease: str, county: str, diagnosed_at: datetime, *, status: str = "reported",
             subtype: str | None = None) -> dict:
    n = next(_numbers)
    return {"card_number": f"TST{n:012d}", "report_type": "first", "status": status, "personal_enc": "{}",
            "disease": disease, "subtype": subtype, "county_code": county, "current_address_code": f"{county}001000",
            "diagnosed_at": diagnosed_at, "reported_at": diagnosed_at,
            "report_due_at": diagnosed_at + timedelta(hours=24), "review_due_at": diagnosed_at + timedelta(hours=48),
            "created_by": "tests", "fields": {}, "version": 1, "outbreak": False, "updated_at": diagnosed_at}


def insert_cards(session, rows: list[dict]) -> None:
    if rows:
        session.execute(insert(Card), rows)
        session.flush()


def add_card(session, disease: str, county: str, day: date, *, status: str = "reported",
             subtype: str | None = None) -> Card:
    card = Card(**card_row(disease, county, at_local(day), status=status, subtype=subtype))
    session.add(card)
    session.flush()
    return card


def daily_cards(disease: str, county: str, per_day: dict[date, int]) -> list[dict]:
    """``n`` cards on each day, at hours spread over the local day (some before 08:00, i.e.
    the previous UTC day: counted by local day)."""
    return [card_row(disease, county, at_local(day, (3 + 5 * i) % 24)) for day, n in per_day.items() for i in range(n)]


def history(first: date, last: date, n: int = 1) -> dict[date, int]:
    return {first + timedelta(days=i): n for i in range((last - first).days + 1)}


def feed_rows(feed: str, metric: str, division_code: str, per_day: dict[date, tuple[int, int | None]], *,
              source: str = "S1") -> list[dict]:
    return [{"feed": feed, "source": source, "division_code": division_code, "county_code": division_code[:6],
             "day": day, "metric": metric, "count": c, "total": t, "updated_at": NOW}
            for day, (c, t) in per_day.items()]


def insert_feed(session, rows: list[dict]) -> None:
    if rows:
        session.execute(insert(FeedCount), rows)
        session.flush()


def tune(session, **changes) -> None:
    """This session's surveillance settings with ``changes`` (the session's own info dict)."""
    settings = session.info[ALL_SETTINGS_KEY]
    session.info[ALL_SETTINGS_KEY] = settings.model_copy(
        update={"surveillance": settings.surveillance.model_copy(update=changes)})
