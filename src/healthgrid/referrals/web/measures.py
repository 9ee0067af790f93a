"""The referral measures page (/referrals/measures): the county bureau picks a division and a
range of months and sees each facility's up- and down-referrals, acceptance times,
reserved-place use, no-shows and 14-day follow-ups, per month and in total, with a bar
chart drawn as inline SVG (no script, no external asset). A facility's administrator sees
their own facility. The numbers, the scope check and the audit are ``measures``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from ...errors import HealthGridError
from ...http import SessionDep
from ...registry.domain import ORG_LEVEL_LABELS
from ...security.domain import Perm
from ...security.http import ActorDep, require
from ...web import NavItem, add_messages, add_nav_item, page_language, pick, render
from ...web.i18n import MESSAGES as CATALOGUE
from .. import measures
from ..web_measures_messages import MESSAGES

router = APIRouter(include_in_schema=False, dependencies=[Depends(require(Perm.REFERRAL_STATS))])
Param = Annotated[str, Query(max_length=20)]
add_messages(MESSAGES)
add_nav_item(NavItem("ref.measures.nav", "/referrals/measures", order=62, perm=Perm.REFERRAL_STATS))


@router.get("/referrals/measures", response_class=HTMLResponse)
def measures_page(request: Request, session: SessionDep, actor: ActorDep, division: Param = "",
                  org: Param = "", start: Param = "", end: Param = "") -> HTMLResponse:
    today = datetime.now(request.app.state.web.zone).date()
    first, last, bad_month = _period(start, end, today)
    choices = measures.stats_divisions(session, actor)
    own = measures.stats_facilities(actor)
    chosen = next((c.id for c in choices if str(c.id) == division), choices[0].id if choices else None)
    result, error = None, None
    if chosen is not None or own:
        try:
            result = measures.referral_measures(session, actor, division_id=chosen,
                                                org_ids=None if chosen is not None else own,
                                                since=first, until=_month_end(last))
        except HealthGridError as exc:
            error = exc
    facility = next((f for f in result.facilities if str(f.org_id) == org), None) if result else None
    if result and facility is None and len(result.facilities) == 1 and chosen is None:
        facility = result.facilities[0]  # a facility's own page shows its months at once
    rows = [r for r in result.rows if r.org_id == facility.org_id] if facility else []
    lang = page_language(request)
    chart = _chart(rows if facility else (result.monthly if result else []), facility=facility is not None)
    return render(request, "referrals/measures.html", {
        "choices": choices, "chosen": chosen, "own": own, "start": f"{first:%Y-%m}", "end": f"{last:%Y-%m}",
        "bad_month": bad_month, "month_options": _month_options(today, first), "m": result, "facility": facility,
        "facility_rows": rows, "chart": chart, "error": error, "error_text": _error_text(lang, error),
        "fmt": Format(lang)}, status_code=error.status if error else 200)


def _period(start: str, end: str, today: date) -> tuple[date, date, bool]:
    """The first days of the first and last months; by default the last twelve months."""
    last, first = _month(end), _month(start)
    bad = (bool(end) and last is None) or (bool(start) and first is None)
    last = last or today.replace(day=1)
    first = first or _add_months(last, -11)
    if first > last:
        first, last = last, first
    return first, last, bad


def _month_options(today: date, first: date) -> list[str]:
    """Months to pick, newest first: the last three years, and further back if asked."""
    this = today.replace(day=1)
    n = max(measures.MAX_MONTHS, (this.year - first.year) * 12 + this.month - first.month + 1)
    return [f"{_add_months(this, -k):%Y-%m}" for k in range(n)]


def _month(value: str) -> date | None:
    try:
        return datetime.strptime(value.strip(), "%Y-%m").date() if value.strip() else None
    except ValueError:
        return None


def _add_months(first: date, n: int) -> date:
    index = first.year * 12 + first.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def _month_end(first: date) -> date:
    return _add_months(first, 1) - timedelta(days=1)


def _error_text(lang: str, exc: HealthGridError | None) -> str:
    if exc is None:
        return ""
    key = f"error.{exc.code}"
    return f"{CATALOGUE.get(key, lang)} {exc.message}" if key in CATALOGUE else exc.message


@dataclass(frozen=True)
class Format:
    """Numbers as the page shows them: a dash where nothing was measured."""

    lang: str

    def pct(self, value: float | None) -> str:
        return "—" if value is None else f"{value * 100:.1f}%"

    def hours(self, value: float | None) -> str:
        return "—" if value is None else f"{value:.1f}"

    def level(self, code: str | None) -> str:
        return pick(ORG_LEVEL_LABELS.get(code or ""), self.lang, code or "")


# -- the bar chart ----------------------------------------------------------------------------------

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 1000, 240, 48, 28, 22


def _chart(rows: list[measures.MeasureRow], *, facility: bool) -> dict | None:
    """Two bars a month with a y axis. For a facility: its up- and down-referrals, sent and
    received. For all of them: up-referrals sent and down-referrals received, each counted
    once: the county's patients going up and coming back to its facilities."""
    if not rows:
        return None
    def counts(r: measures.MeasureRow) -> tuple[int, int]:
        return (r.up_sent + r.up_received, r.down_sent + r.down_received) if facility else (r.up_sent,
                                                                                            r.down_received)

    pairs = [(r.month, *counts(r)) for r in rows]
    top = _nice(max(max(up, down) for _m, up, down in pairs))
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    group = plot_w / len(pairs)
    bar = max(2.0, min(22.0, group * 0.36))
    bars, labels = [], []
    for i, (month, up, down) in enumerate(pairs):
        x = LEFT + i * group + group / 2
        for kind, value, dx in (("up", up, -bar - 1), ("down", down, 1)):
            h = plot_h * value / top
            bars.append({"kind": kind, "x": round(x + dx, 1), "y": round(TOP + plot_h - h, 1), "w": round(bar, 1),
                         "h": round(h, 1), "value": value, "month": month})
        labels.append({"x": round(x, 1), "text": month[5:] if month[5:] != "01" and i else month[2:]})
    ticks = [{"y": round(TOP + plot_h - plot_h * k / 4, 1), "value": top * k // 4} for k in range(5)]
    legend = ("ref.measures.legend.up", "ref.measures.legend.down") if facility else (
        "ref.measures.col.up_sent", "ref.measures.col.down_received")
    return {"width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - 8, "base": TOP + plot_h,
            "label_y": HEIGHT - 8, "bars": bars, "labels": labels, "ticks": ticks,
            "legend": dict(zip(("up", "down"), legend, strict=True))}


def _nice(value: int) -> int:
    """A round axis maximum at or above ``value`` divisible by 4 (1, 2 or 5 times a power of ten)."""
    if value <= 4:
        return 4
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step * 4 >= value:
                return m * step * 4
        step *= 10
