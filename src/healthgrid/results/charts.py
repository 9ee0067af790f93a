"""Geometry of a trend chart as plain numbers and SVG path strings, for server-rendered SVG
(no script, no external asset, nothing inline that the page's CSP would block): the plot
area, the reference band, the line through the points, one marker per point shaped and
coloured by the issuing facility (abnormal points ringed and arrowed), axes with dates and
values, and the legend. Pure: no database, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from .trends import Trend

WIDTH, HEIGHT = 640, 230
LEFT, RIGHT, TOP, BOTTOM = 58, 18, 14, 34
# Colour-blind-safe (Okabe–Ito) colours and four shapes: a facility is told apart by both.
COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000")
SHAPES = ("circle", "square", "diamond", "triangle")


@dataclass(frozen=True)
class Marker:
    x: float
    y: float
    path: str  # the marker's outline (SVG path data)
    colour: str
    abnormal: bool
    arrow: str  # ↑ ↓ ! or ""
    title: str  # the tooltip: date, facility, value as reported, flag


@dataclass(frozen=True)
class LegendEntry:
    path: str
    colour: str
    name: str


@dataclass
class Chart:
    width: int
    height: int
    plot: tuple[float, float, float, float]  # x0, y0, x1, y1
    band: tuple[float, float, float, float] | None  # x, y, w, h of the reference band
    line: str  # polyline points
    markers: list[Marker] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    legend: list[LegendEntry] = field(default_factory=list)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values (1, 2, 2.5, 5 × 10^k steps) covering [low, high]."""
    if high <= low:
        high = low + (abs(low) * 0.1 or 1.0)
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while not ticks or ticks[-1] < high - step * 1e-9:  # the last tick at or above ``high``
        ticks.append(round(value, 10))
        value += step
    return ticks


def marker_path(shape: str, x: float, y: float, r: float = 4.5) -> str:
    if shape == "square":
        return f"M{x - r:.1f},{y - r:.1f}h{2 * r:.1f}v{2 * r:.1f}h{-2 * r:.1f}z"
    if shape == "diamond":
        d = r * 1.3
        return f"M{x:.1f},{y - d:.1f}L{x + d:.1f},{y:.1f}L{x:.1f},{y + d:.1f}L{x - d:.1f},{y:.1f}z"
    if shape == "triangle":
        d = r * 1.25
        return f"M{x:.1f},{y - d:.1f}L{x + d:.1f},{y + d * 0.8:.1f}L{x - d:.1f},{y + d * 0.8:.1f}z"
    return (f"M{x - r:.1f},{y:.1f}a{r:.1f},{r:.1f} 0 1,0 {2 * r:.1f},0"
            f"a{r:.1f},{r:.1f} 0 1,0 {-2 * r:.1f},0z")


def _local(at: datetime, zone: tzinfo) -> datetime:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(zone)


def _date_ticks(start: date, end: date, count: int = 6) -> tuple[list[date], str]:
    """Tick dates between start and end: days, weeks, months or years, at most ``count``."""
    span = (end - start).days
    for days in (1, 2, 7, 14):
        if span / days <= count:
            ticks = [start + timedelta(days=i) for i in range(0, span + 1, days)]
            return ticks, "%m-%d" if start.year == end.year else "%Y-%m-%d"
    for months in (1, 2, 3, 6, 12, 24, 60):
        if span / (months * 30.4) <= count:
            # the first month boundary on or after ``start``, aligned on ``months`` from January
            index = start.year * 12 + start.month - 1 + (1 if start.day > 1 else 0)
            index += -index % months
            ticks = []
            while (tick := date(index // 12, index % 12 + 1, 1)) <= end:
                ticks.append(tick)
                index += months
            return ticks, "%Y-%m" if months < 12 else "%Y"
    return [start, end], "%Y"


def facility_styles(trends: list[Trend]) -> dict[int, int]:
    """One style index per facility across the page's charts, so a facility keeps its colour
    and shape from chart to chart."""
    styles: dict[int, int] = {}
    for trend in trends:
        for org, _ in trend.facilities:
            styles.setdefault(org, len(styles))
    return styles


def trend_chart(trend: Trend, *, zone: tzinfo, lang: str, styles: dict[int, int] | None = None) -> Chart:
    """The chart of one trend (at least one point); ``styles`` from ``facility_styles``."""
    x0, y0, x1, y1 = LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM
    times = [_local(p.at, zone) for p in trend.points]
    t_min, t_max = min(times), max(times)
    if t_max - t_min < timedelta(days=2):
        t_min, t_max = t_min - timedelta(days=1), t_max + timedelta(days=1)
    span = (t_max - t_min).total_seconds()
    pad = timedelta(seconds=span * 0.04)
    t_min, t_max = t_min - pad, t_max + pad
    values = [p.value for p in trend.points]
    band = trend.band or (None, None)
    ticks = nice_ticks(min(values + [b for b in band if b is not None]),
                       max(values + [b for b in band if b is not None]))
    v_min, v_max = ticks[0], ticks[-1]

    def sx(t: datetime) -> float:
        return x0 + (t - t_min).total_seconds() / (t_max - t_min).total_seconds() * (x1 - x0)

    def sy(v: float) -> float:
        return y1 - (v - v_min) / ((v_max - v_min) or 1.0) * (y1 - y0)

    chart = Chart(WIDTH, HEIGHT, (x0, y0, x1, y1), _band(band, sy, x0, x1, y0, y1), "")
    chart.y_ticks = [(round(sy(v), 1), f"{v:g}") for v in ticks]
    dates, fmt = _date_ticks(t_min.date(), t_max.date())
    chart.x_ticks = [(round(sx(datetime.combine(d, datetime.min.time(), zone)), 1), d.strftime(fmt))
                     for d in dates if t_min <= datetime.combine(d, datetime.min.time(), zone) <= t_max]
    styles = styles if styles is not None else facility_styles([trend])
    style = {org: (COLOURS[styles[org] % len(COLOURS)], SHAPES[styles[org] % len(SHAPES)])
             for org, _ in trend.facilities}
    points = []
    for p, t in zip(trend.points, times, strict=True):
        x, y = round(sx(t), 1), round(sy(p.value), 1)
        points.append(f"{x},{y}")
        colour, shape = style[p.issuer_org_id]
        title = " · ".join(s for s in (t.strftime("%Y-%m-%d"), p.issuer_name,
                                       f"{p.reported} {p.arrow}".strip(), _converted(p, trend, lang)) if s)
        chart.markers.append(Marker(x, y, marker_path(shape, x, y, 5.5 if p.abnormal else 4.5), colour,
                                    p.abnormal, p.arrow, title))
    chart.line = " ".join(points)
    chart.legend = [LegendEntry(marker_path(style[o][1], 6, 6), style[o][0], name) for o, name in trend.facilities]
    return chart


def _converted(p, trend: Trend, lang: str) -> str:  # noqa: ANN001
    shown = f"{p.value:.3g} {trend.unit}".strip()
    if p.reported.replace(" ", "") == shown.replace(" ", "") or p.reported.startswith(f"{p.value:g} "):
        return ""
    return f"= {shown}" if lang == "en" else f"折合 {shown}"


def _band(band: tuple[float | None, float | None], sy, x0: float, x1: float, y0: float,  # noqa: ANN001
          y1: float) -> tuple[float, float, float, float] | None:
    low, high = band
    if low is None and high is None:
        return None
    top = max(y0, sy(high)) if high is not None else y0
    bottom = min(y1, sy(low)) if low is not None else y1
    return round(x0, 1), round(top, 1), round(x1 - x0, 1), round(max(bottom - top, 0), 1)
