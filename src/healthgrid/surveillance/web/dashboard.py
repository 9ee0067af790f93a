"""The CDC dashboard page (``/surveillance``, 传染病监测预警): KPI tiles, the signals of the
period by status (each a link to the signal list), the county map, the top diseases of the
week against last year, and the epidemic curve of a chosen disease or feed metric, all
server-rendered (SVG, no script). A form of GET parameters chooses the county, the period,
the stream, daily or weekly bars and the map's colouring. The numbers, the scope check and
the audit are ``dashboard_view``'s; this module parses, calls it once and lays out the two
figures (:mod:`..dashboard_svg`).

Also serves the surveillance pages' stylesheet, ``/surveillance/assets/surveillance.css``
(hospital intranets are offline and the CSP allows only this host).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from ...errors import HealthGridError, NotFound
from ...http import SessionDep
from ...security.domain import Perm
from ...security.http import ActorDep, require
from ...web import NavItem, add_messages, add_nav_item, page_language, render
from ...web.i18n import MESSAGES as CATALOGUE
from .. import dashboard_svg as svg
from ..dashboard import granted_scope, same_day_last_year, stream_label
from ..dashboard_curve import Curve
from ..dashboard_map import CountyMap
from ..dashboard_view import dashboard_view
from ..kpis import Ratio
from ..web_messages_dashboard import MESSAGES

router = APIRouter(include_in_schema=False)
Param = Annotated[str, Query(max_length=60)]
add_messages(MESSAGES)
add_nav_item(NavItem("surv.dash.nav", "/surveillance", order=70, perm=Perm.SURVEILLANCE_STATS))
STATIC = Path(__file__).parent.parent / "static"  # shipped as package data
ASSETS = {"surveillance.css": "text/css; charset=utf-8"}
DEFAULT_DAYS = 90


@router.get("/surveillance/assets/{name}")
def asset(name: str) -> Response:
    """The surveillance pages' stylesheet; nothing else."""
    if name not in ASSETS:
        raise NotFound("HG-404", f"no asset {name!r}")
    return Response((STATIC / name).read_bytes(), media_type=ASSETS[name],
                    headers={"Cache-Control": "public, max-age=3600"})


@router.get("/surveillance", response_class=HTMLResponse, dependencies=[Depends(require(Perm.SURVEILLANCE_STATS))])
def dashboard_page(request: Request, session: SessionDep, actor: ActorDep, county: Param = "", since: Param = "",
                   until: Param = "", stream: Param = "", interval: Param = "", colour: Param = "") -> HTMLResponse:
    today = datetime.now(request.app.state.web.zone).date()
    first, last, bad = _period(since, until, today)
    weekly, by_cases = interval == "week", colour == "cases"
    lang = page_language(request)
    choices = granted_scope(session, actor).counties
    view, error = None, None
    try:  # nothing to count without a county in scope (the page says so)
        view = dashboard_view(session, actor, county=county.strip() or None, since=first, until=last,
                              stream=stream.strip() or None, weekly=weekly) if choices or actor.system else None
    except HealthGridError as exc:
        error = exc
    labels = Labels(lang, last)
    return render(request, "surveillance/dashboard.html", {
        "v": view, "choices": choices, "county": county.strip(), "since": first.isoformat(),
        "until": last.isoformat(), "weekly": weekly, "by_cases": by_cases, "bad_input": bad, "error": error,
        "error_text": _error_text(lang, error), "L": labels,
        "chart": _chart(view.curve) if view else None,
        "map": map_layout(view.map, by_cases=by_cases, chosen=view.county, lang=lang) if view else None,
        "status_href": _status_href(county.strip(), first, last), "top_period": _top_period(last)},
        status_code=error.status if error else 200)


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip()) if value.strip() else None
    except ValueError:
        return None


def _period(since: str, until: str, today: date) -> tuple[date, date, bool]:
    """The days asked for; by default the 90 days up to today."""
    first, last = _day(since), _day(until)
    bad = (bool(since.strip()) and first is None) or (bool(until.strip()) and last is None)
    last = last or today
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    return (last, first, bad) if first > last else (first, last, bad)


def _top_period(until: date) -> dict[str, str]:
    ago = same_day_last_year(until)
    return {"since": (until - timedelta(days=6)).isoformat(), "until": until.isoformat(),
            "ago_since": (ago - timedelta(days=6)).isoformat(), "ago_until": ago.isoformat()}


def _status_href(county: str, since: date, until: date):
    def href(status: str) -> str:
        query = f"status={status}&since={since.isoformat()}&until={until.isoformat()}"
        return f"/surveillance/signals?{query}" + (f"&county={county}" if county else "")
    return href


def _error_text(lang: str, exc: HealthGridError | None) -> str:
    if exc is None:
        return ""
    key = f"error.{exc.code}"
    return f"{CATALOGUE.get(key, lang)} {exc.message}" if key in CATALOGUE else exc.message


@dataclass(frozen=True)
class Labels:
    """Codes and numbers as the page shows them, in its language."""

    lang: str
    on: date

    def msg(self, key: str, **params: object) -> str:
        return CATALOGUE.get(key, self.lang, **params)

    def stream(self, key: str) -> str:
        return stream_label(key, self.lang, self.on)

    def disease(self, code: str) -> str:
        return stream_label(f"case:{code}", self.lang, self.on)

    def status(self, code: str) -> str:
        key = f"surv.dash.status.{code}"
        return self.msg(key) if key in CATALOGUE else code

    def method(self, code: str) -> str:
        key = f"surv.dash.method.{code}"
        return self.msg(key) if key in CATALOGUE else code

    def pct(self, ratio: Ratio) -> str:
        return "—" if ratio.value is None else f"{ratio.value * 100:.1f}%"

    def of(self, ratio: Ratio) -> str:
        return self.msg("surv.dash.of", n=ratio.numerator, d=ratio.denominator)

    def hours(self, value: float | None) -> str:
        return "—" if value is None else self.msg("surv.dash.hours", h=f"{value:.1f}")

    def change(self, now: int, then: int) -> str:
        if not then:
            return self.msg("surv.dash.new") if now else "—"
        return f"{(now - then) / then * 100:+.0f}%"


def _chart(curve: Curve) -> dict:
    pts = curve.points
    layout = svg.curve_layout([p.start for p in pts], [p.count for p in pts],
                              statistic=[p.statistic for p in pts] if curve.method == "mpm" and not curve.weekly
                              else None,
                              threshold=[p.threshold for p in pts], signals=[bool(p.signals) for p in pts],
                              weekly=curve.weekly)
    for bar, p in zip(layout["bars"], pts, strict=True):
        bar.update(end=p.end, alarm=p.alarm, threshold=p.threshold, signals=len(p.signals))
    layout["total"] = sum(p.count for p in pts)
    return layout


def map_layout(m: CountyMap, *, by_cases: bool, chosen: str | None, lang: str) -> dict | None:
    """Paths, colours and labels of the schematic map, and its legend."""
    placed = [c for c in m.counties if c.cell]
    if not placed or m.box is None:
        return None
    k = math.cos(math.radians(m.lat0))
    frame = svg.Frame((m.box[0] * k, m.box[1] * k, m.box[2], m.box[3]), width=560, height=400)
    breaks = svg.case_breaks([c.cases or 0 for c in placed if c.in_scope])
    cells = []
    for c in placed:
        value = (c.cases if by_cases else c.open_signals)
        fill = svg.OUT_OF_SCOPE if not c.in_scope else (
            svg.case_colour(value or 0, breaks) if by_cases else svg.signal_colour(value or 0))
        x, y = frame.xy((c.label[0] * k, c.label[1]))
        cells.append({"code": c.code, "name": c.name, "in_scope": c.in_scope, "value": value,
                      "chosen": c.code == chosen, "path": frame.path([(lon * k, lat) for lon, lat in c.cell]),
                      "fill": fill, "x": x, "y": y,
                      "dark": fill in svg.SIGNAL_COLOURS[3:] + svg.CASE_COLOURS[3:], "c": c})
    return {"width": frame.width, "height": frame.height, "cells": cells, "legend": _legend(by_cases, breaks),
            "unplaced": [c.name for c in m.unplaced]}


def _legend(by_cases: bool, breaks: tuple[int, ...]) -> list[dict]:
    pairs = svg.case_legend(breaks) if by_cases else svg.signal_legend()
    return [{"fill": fill, "label": label} for fill, label in pairs]
