"""The dashboard's county map (监测地图): every county of the region, coloured by the signals
open now or by the cases of the period, in the reader's scope; the other counties are
drawn for orientation, without numbers.

A schematic map: no county boundaries exist offline, so each county is the Voronoi cell
around the centroid of its organisations' coordinates (the registry's latitude and
longitude of every facility in the county's subtree), clipped to the region's box
(:mod:`.dashboard_svg`). Counties whose facilities have no coordinates are listed, not
drawn. Cells are computed over the whole region, so a county keeps its shape whoever looks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db import transaction
from ..registry import queries as registry_queries
from ..security.domain import Actor
from . import dashboard_counts as counts
from . import dashboard_svg as svg
from .dashboard import County, Scope, check_period, dashboard_scope
from .models import Signal

LonLat = tuple[float, float]
MAP_ASPECT = 1.4  # width / height of the box: the page draws it 560 x 400


@dataclass(frozen=True)
class MapCounty:
    code: str
    name: str
    in_scope: bool
    centre: LonLat | None  # the centroid of the county's facilities
    cell: list[LonLat] | None  # the Voronoi cell, counter-clockwise
    label: LonLat | None  # where the name goes: the cell's centroid
    open_signals: int | None = None  # None outside the scope
    signals: int | None = None  # detected in the period
    cases: int | None = None  # diagnosed in the period


@dataclass
class CountyMap:
    since: date
    until: date
    counties: list[MapCounty]
    box: tuple[float, float, float, float] | None  # lon min, lon max, lat min, lat max
    lat0: float  # the latitude the longitudes were scaled at

    @property
    def unplaced(self) -> list[MapCounty]:
        return [c for c in self.counties if c.cell is None]


def county_map(session: Session, actor: Actor, *, since: date, until: date, county: str | None = None) -> CountyMap:
    check_period(since, until)
    with transaction(session):
        scope = dashboard_scope(session, actor, county=county, what="map",
                                detail={"since": since.isoformat(), "until": until.isoformat()})
        return build_map(session, scope, since, until)


def county_centres(session: Session, region: tuple[County, ...]) -> dict[str, LonLat]:
    """The mean longitude and latitude of each county's facilities (active, with coordinates)."""
    by_id = {c.id: c.code for c in region}
    sums: dict[str, list[float]] = {}
    orgs = registry_queries.search_organizations(session, registry_queries.OrgFilter(active=True), limit=10**7).items
    for org in orgs:
        code = by_id.get(org.division.county_id) if org.division is not None else None
        if code is None or org.latitude is None or org.longitude is None:
            continue
        acc = sums.setdefault(code, [0.0, 0.0, 0])
        acc[0] += org.longitude
        acc[1] += org.latitude
        acc[2] += 1
    return {code: (lon / n, lat / n) for code, (lon, lat, n) in sums.items()}


def build_map(session: Session, scope: Scope, since: date, until: date) -> CountyMap:
    centres = county_centres(session, scope.region)
    placed = [c for c in scope.region if c.code in centres]
    cells: dict[str, list[LonLat]] = {}
    box, lat0 = None, 0.0
    if placed:
        lat0 = sum(centres[c.code][1] for c in placed) / len(placed)
        k = math.cos(math.radians(lat0))
        points = [svg.project(*centres[c.code], lat0) for c in placed]
        xbox = svg.region_box(points, aspect=MAP_ASPECT)
        for c, cell in zip(placed, svg.voronoi_cells(points, xbox), strict=True):
            cells[c.code] = [(x / k, y) for x, y in cell]
        box = (xbox[0] / k, xbox[1] / k, xbox[2], xbox[3])
    codes = scope.codes
    open_now = dict(session.execute(select(Signal.county_code, func.count()).where(
        Signal.county_code.in_(codes), Signal.open_key.is_not(None)).group_by(Signal.county_code)).all())
    detected = dict(session.execute(select(Signal.county_code, func.count()).where(
        Signal.county_code.in_(codes), Signal.detected_on >= since, Signal.detected_on <= until)
        .group_by(Signal.county_code)).all())
    cases = counts.cases_by(session, by="county", counties=codes, since=since, until=until) if codes else {}
    out = []
    for c in scope.region:
        mine = c.code in codes
        cell = cells.get(c.code)
        label = _label(cell, lat0) if cell else None
        out.append(MapCounty(c.code, c.name, mine, centres.get(c.code), cell, label,
                             open_now.get(c.code, 0) if mine else None, detected.get(c.code, 0) if mine else None,
                             cases.get(c.code, 0) if mine else None))
    return CountyMap(since, until, out, box, lat0)


def _label(cell: list[LonLat], lat0: float) -> LonLat:
    k = math.cos(math.radians(lat0))
    x, y = svg.polygon_centroid([(lon * k, lat) for lon, lat in cell])
    return x / k, y
