"""The small chart of a signal's page, laid out here and drawn by the template as SVG (no
script, no external library): the method's statistic as a line, its threshold dashed, the
daily counts as bars where they share the statistic's unit (cases), the day of detection
marked, a few ticks on each axis. Pure geometry from the signal's :class:`Curve`."""

from __future__ import annotations

import math
from typing import Any

WIDTH, HEIGHT = 680, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 14, 30
CASE_KINDS = ("daily_cases", "cases_7d", "cluster_cases")


def _nice_max(value: float) -> float:
    """A round top for the y axis (1, 2, 4, 5, 8 × 10^k) at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 4, 5, 8, 10) if m * power >= value)


def _ticks(top: float) -> list[float]:
    """Four or five equal steps from 0 to ``top``; whole numbers when the top is small (a
    count axis topping at 2 reads 0, 1, 2 rather than 0, 0.5, …)."""
    if top <= 5 and top == int(top):
        return [float(k) for k in range(int(top) + 1)]
    parts = 4 if top / 4 == int(top / 4) or top < 4 else 5
    return [top * k / parts for k in range(parts + 1)]


def _path(points: list[tuple[float, float | None]]) -> str:
    """An SVG path through the points, broken where a value is missing."""
    out, pen = [], "M"
    for x, y in points:
        if y is None:
            pen = "M"
            continue
        out.append(f"{pen}{x:.1f},{y:.1f}")
        pen = "L"
    return " ".join(out)


def chart(curve: Any, catalogue: Any, lang: str) -> dict[str, Any] | None:
    """Geometry for the template, or None when there is nothing to draw."""
    n = len(curve.days)
    bars_on = curve.statistic_kind in CASE_KINDS
    values = [v for v in curve.statistic + curve.threshold + (curve.counts if bars_on else []) if v is not None]
    if not n or not values:
        return None
    top = max(2.0, _nice_max(max(values) * 1.1)) if bars_on else _nice_max(max(values) * 1.1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / n

    def x(i: int) -> float:
        return LEFT + step * (i + 0.5)

    def y(v: float | None) -> float | None:
        return None if v is None else TOP + plot_h * (1 - max(0.0, min(v, top)) / top)

    bars = []
    if bars_on:
        for i, v in enumerate(curve.counts):
            if v:
                bars.append({"x": round(x(i) - step * 0.35, 1), "y": round(y(v), 1), "w": round(step * 0.7, 1),
                             "h": round(TOP + plot_h - y(v), 1), "value": v, "day": curve.days[i].isoformat()})
    alarms = [i for i, (s, t) in enumerate(zip(curve.statistic, curve.threshold, strict=True))
              if s is not None and t is not None and s > t]
    return {
        "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT, "top": TOP, "bottom": TOP + plot_h,
        "bars": bars, "line": _path([(x(i), y(v)) for i, v in enumerate(curve.statistic)]),
        "threshold": _path([(x(i), y(v)) for i, v in enumerate(curve.threshold)]),
        "dots": [{"x": round(x(i), 1), "y": round(y(curve.statistic[i]), 1)} for i in alarms],
        "ticks": [{"y": round(y(v), 1), "label": f"{v:g}"} for v in _ticks(top)],
        "days": [{"x": round(x(i), 1), "label": curve.days[i].strftime("%m-%d")} for i in range(0, n, 7)]
        + ([{"x": round(x(n - 1), 1), "label": curve.days[-1].strftime("%m-%d")}] if (n - 1) % 7 else []),
        "marker": round(x(n - 1), 1), "stat_label": catalogue.get(f"sig.stat.{curve.statistic_kind}", lang),
        "table": [{"day": curve.days[i], "count": curve.counts[i], "total": curve.totals[i],
                   "statistic": curve.statistic[i], "threshold": curve.threshold[i]} for i in range(max(0, n - 14), n)],
        "has_totals": any(t is not None for t in curve.totals),
    }
