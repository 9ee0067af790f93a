"""Geometry and drawing of the dashboard's two figures, as plain numbers for server-rendered
SVG (no script, no external asset): pure functions, no database, no I/O.

- The county map is schematic. No county boundaries exist offline, so each county is drawn
  as its Voronoi cell (the points nearer its centre than any other county's) around the
  centroid of its organisations' coordinates, clipped to the region's box. The cells are
  computed with Qhull (``scipy.spatial.Voronoi``) after mirroring the centres across the
  four sides of the box, which makes every cell finite and exactly bounded by the box.
  Longitude is scaled by cos(latitude) (equirectangular) so the shapes are not stretched.
- The epidemic curve: bars for the counts, lines for the detector's statistic (when it is
  not the count itself, e.g. the 7-day sum of the moving percentile method) and its
  threshold, markers above the days (weeks) with a signal, axes with counts and dates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from scipy.spatial import Voronoi

Point = tuple[float, float]

SIGNAL_COLOURS = ("#e9eef2", "#fcd9b6", "#f7a35c", "#e4572e", "#a8201a")  # 0, 1, 2, 3-4, 5+ open signals
SIGNAL_BREAKS = (1, 2, 3, 5)
CASE_COLOURS = ("#eef6f6", "#c6e4e0", "#8cc9c2", "#4ba69d", "#1c7169")
OUT_OF_SCOPE = "#f7f8fa"


# -- the map ------------------------------------------------------------------------------------

def project(lon: float, lat: float, lat0: float) -> Point:
    """Equirectangular: x east, y north, in degrees of latitude."""
    return lon * math.cos(math.radians(lat0)), lat


def region_box(points: Sequence[Point], *, pad: float = 0.18, minimum: float = 0.08,
               aspect: float | None = None) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) around the points, padded by a share of the span, and widened
    (or heightened) about its centre to ``aspect`` = width / height when given, so the cells
    fill the picture they are drawn in."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 0.0)
    margin = max(span * pad, minimum)
    xmin, xmax, ymin, ymax = min(xs) - margin, max(xs) + margin, min(ys) - margin, max(ys) + margin
    if aspect:
        w, h = xmax - xmin, ymax - ymin
        if w / h < aspect:
            xmin, xmax = (xmin + xmax) / 2 - h * aspect / 2, (xmin + xmax) / 2 + h * aspect / 2
        else:
            ymin, ymax = (ymin + ymax) / 2 - w / aspect / 2, (ymin + ymax) / 2 + w / aspect / 2
    return xmin, xmax, ymin, ymax


def _distinct(points: np.ndarray) -> np.ndarray:
    """Nudge coinciding points apart (Qhull refuses duplicates), deterministically."""
    out = points.copy()
    seen: dict[tuple[float, float], int] = {}
    for i, (x, y) in enumerate(out):
        key = (round(float(x), 9), round(float(y), 9))
        k = seen.get(key, 0)
        if k:
            out[i] += 1e-6 * k
        seen[key] = k + 1
    return out


def voronoi_cells(points: Sequence[Point], box: tuple[float, float, float, float]) -> list[list[Point]]:
    """The Voronoi cell of each point within ``box`` (points inside it), each a convex polygon
    counter-clockwise; one point gets the whole box."""
    xmin, xmax, ymin, ymax = box
    p = _distinct(np.asarray(points, dtype=float).reshape(-1, 2))
    n = len(p)
    mirrored = np.vstack([p, np.c_[2 * xmin - p[:, 0], p[:, 1]], np.c_[2 * xmax - p[:, 0], p[:, 1]],
                          np.c_[p[:, 0], 2 * ymin - p[:, 1]], np.c_[p[:, 0], 2 * ymax - p[:, 1]]])
    vor = Voronoi(mirrored)
    cells = []
    for i in range(n):
        region = [v for v in vor.regions[vor.point_region[i]] if v >= 0]
        verts = vor.vertices[region]
        verts[:, 0] = np.clip(verts[:, 0], xmin, xmax)
        verts[:, 1] = np.clip(verts[:, 1], ymin, ymax)
        angle = np.arctan2(verts[:, 1] - p[i, 1], verts[:, 0] - p[i, 0])
        cells.append([(float(x), float(y)) for x, y in verts[np.argsort(angle)]])
    return cells


def polygon_centroid(poly: Sequence[Point]) -> Point:
    """Area centroid of a simple polygon (the mean of its vertices if degenerate)."""
    a = cx = cy = 0.0
    for (x0, y0), (x1, y1) in zip(poly, list(poly[1:]) + [poly[0]], strict=True):
        cross = x0 * y1 - x1 * y0
        a += cross
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    if abs(a) < 1e-12:
        return sum(x for x, _ in poly) / len(poly), sum(y for _, y in poly) / len(poly)
    return cx / (3 * a), cy / (3 * a)


def signal_colour(open_signals: int) -> str:
    return SIGNAL_COLOURS[sum(open_signals >= b for b in SIGNAL_BREAKS)]


def case_breaks(values: Sequence[int]) -> tuple[int, ...]:
    """Upper limits of the case classes after 0 (so 0, 1..b1, ..b2, ..b3, above b3): the
    quartiles of the counties' positive counts (quantile classes, so counties of similar
    counts are still told apart), or a quarter, half and three quarters of the largest
    (at least 4) when fewer than four counties have cases."""
    positive = sorted(int(v) for v in values if v and v > 0)
    if len(positive) >= 4:
        qs = np.quantile(positive, [0.25, 0.5, 0.75], method="lower")
        found = tuple(sorted({int(q) for q in qs}))
        if len(found) == 3:
            return found
    top = max([4, *positive])
    return tuple(sorted({max(1, round(top * q)) for q in (0.25, 0.5, 0.75)}))


def case_colour(cases: int, breaks: Sequence[int]) -> str:
    if cases <= 0:
        return CASE_COLOURS[0]
    return CASE_COLOURS[1 + sum(cases > b for b in breaks)]


def case_legend(breaks: Sequence[int]) -> list[tuple[str, str]]:
    """(colour, label) of each case class."""
    out, low = [(CASE_COLOURS[0], "0")], 1
    for b in breaks:
        out.append((case_colour(b, breaks), f"{low}–{b}" if b > low else f"{b}"))
        low = b + 1
    out.append((case_colour(low, breaks), f"≥{low}"))
    return out


def signal_legend() -> list[tuple[str, str]]:
    return [(signal_colour(n), label) for n, label in ((0, "0"), (1, "1"), (2, "2"), (3, "3–4"), (5, "≥5"))]


@dataclass(frozen=True)
class Frame:
    """A box in map coordinates fitted into a ``width`` x ``height`` picture, north up."""

    box: tuple[float, float, float, float]
    width: int
    height: int
    margin: int = 12

    def scale(self) -> float:
        xmin, xmax, ymin, ymax = self.box
        return min((self.width - 2 * self.margin) / (xmax - xmin), (self.height - 2 * self.margin) / (ymax - ymin))

    def xy(self, point: Point) -> Point:
        xmin, xmax, ymin, ymax = self.box
        s = self.scale()
        ox = (self.width - s * (xmax - xmin)) / 2
        oy = (self.height - s * (ymax - ymin)) / 2
        return round(ox + s * (point[0] - xmin), 1), round(oy + s * (ymax - point[1]), 1)

    def path(self, poly: Sequence[Point]) -> str:
        return "M" + " L".join(f"{x},{y}" for x, y in (self.xy(p) for p in poly)) + " Z"


# -- the epidemic curve ----------------------------------------------------------------------------

@dataclass(frozen=True)
class CurveBox:
    width: int = 1000
    height: int = 300
    left: int = 52
    right: int = 16
    top: int = 18
    bottom: int = 40


def nice_top(value: float) -> tuple[float, float]:
    """A round axis maximum at or above ``value`` and its tick step (1, 2 or 5 x 10^k, 4-5 ticks)."""
    if value <= 4:
        return 4.0, 1.0
    step = 10 ** math.floor(math.log10(value / 4))
    for m in (1, 2, 2.5, 5, 10):
        if m * step * 4 >= value:
            return m * step * 4, m * step
    return 40 * step, 10 * step


def _polyline(xs: list[float], values: Sequence[float | None], y) -> list[str]:
    """SVG polyline point lists, broken where a value is missing."""
    runs, current = [], []
    for x, v in zip(xs, values, strict=True):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            if len(current) > 1:
                runs.append(" ".join(current))
            current = []
        else:
            current.append(f"{x},{y(v)}")
    if len(current) > 1:
        runs.append(" ".join(current))
    return runs


def _date_ticks(starts: Sequence[date], weekly: bool) -> list[int]:
    """Indexes of the bars that get a date label: month starts for daily series of a month or
    more, else every few bars, about twelve labels at most."""
    n = len(starts)
    if not weekly and n > 45:
        firsts = [i for i, d in enumerate(starts) if d.day == 1]
        every = max(1, math.ceil(len(firsts) / 12))
        return firsts[::every]
    every = max(1, math.ceil(n / 12))
    return list(range(0, n, every))


def curve_layout(starts: Sequence[date], counts: Sequence[float], *, statistic: Sequence[float | None] | None,
                 threshold: Sequence[float | None], signals: Sequence[bool], weekly: bool,
                 box: CurveBox = CurveBox()) -> dict:
    """Everything the template draws, in picture coordinates."""
    n = len(starts)
    values = [float(c) for c in counts] + [v for v in (statistic or []) if v is not None] + \
        [v for v in threshold if v is not None and not math.isnan(v)]
    top, step = nice_top(max(values + [1.0]))
    plot_w, plot_h = box.width - box.left - box.right, box.height - box.top - box.bottom
    base = box.top + plot_h
    slot = plot_w / max(n, 1)
    bar = max(1.0, slot * (0.72 if n < 60 else 0.86))

    def y(v: float) -> float:
        return round(base - plot_h * min(v, top) / top, 1)

    xs = [round(box.left + slot * (i + 0.5), 1) for i in range(n)]
    bars = [{"x": round(x - bar / 2, 1), "y": y(c), "w": round(bar, 2), "h": round(base - y(c), 1), "value": int(c),
             "start": s} for x, c, s in zip(xs, counts, starts, strict=True)]
    marks = []
    for i, x in enumerate(xs):
        if signals[i]:
            tops = [y(float(counts[i]))] + [y(v) for v in (threshold[i], (statistic or [None] * n)[i])
                                             if v is not None and not math.isnan(v)]
            marks.append({"x": x, "y": round(min(tops) - 9, 1), "start": starts[i]})
    ticks = [{"y": y(k * step), "value": int(k * step) if float(k * step).is_integer() else k * step}
             for k in range(int(round(top / step)) + 1)]
    shown = _date_ticks(starts, weekly)
    new_year = [i == shown[0] or (starts[i].month == 1 and starts[i].day <= 7) for i in shown]
    labels = [{"x": xs[i], "text": _label(starts[i], weekly, year)} for i, year in zip(shown, new_year, strict=True)]
    return {"width": box.width, "height": box.height, "left": box.left, "right": box.width - box.right,
            "top": box.top, "base": base, "label_y": base + 16, "year_y": base + 30, "bars": bars, "marks": marks,
            "ticks": ticks, "labels": labels, "threshold": _polyline(xs, list(threshold), y),
            "statistic": _polyline(xs, list(statistic), y) if statistic is not None else []}


def _label(day: date, weekly: bool, with_year: bool) -> dict:
    if weekly:
        year, week, _ = day.isocalendar()
        return {"main": f"W{week:02d}", "year": str(year) if with_year else ""}
    return {"main": f"{day:%m-%d}", "year": str(day.year) if with_year else ""}
