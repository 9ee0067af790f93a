"""Web pages of early-warning signals (预警信号) and the feed upload (监测数据上报).

- ``/surveillance/signals``: the list with status tabs (open, to verify, investigating,
  concluded, closed, all), filters (county, stream, method, dates, overdue) and the signals
  not verified within 24 hours highlighted;
- ``/surveillance/signals/{id}``: the signal, why it was raised, the 56 days behind it as a
  server-rendered SVG (statistic against threshold), its card ids, the response log, the
  action forms (each carrying the version it was read at) and the warning products (draft,
  edit, issue); ``/surveillance/warnings/{id}/print``: a product as a printable document;
- ``/surveillance/feeds``: CSV upload with the import report, the format and the recent
  uploads.

Each handler parses, calls one service function and renders; permissions, scope, the
lifecycle and the audit are the services'.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response

from ...errors import HealthGridError, Invalid, NotFound
from ...http import SessionDep
from ...security.domain import Perm
from ...security.http import ActorDep, require
from ...web import NavItem, add_messages, add_nav_item, page_language, pick
from ...web import render as render_page
from ...web.i18n import MESSAGES as CATALOGUE
from ...web.notices import Notices, error_view
from .. import feeds, products, signal_queries, signals
from .. import signal_domain as sd
from ..feed_domain import FEEDS, parse_feed_csv
from ..web_messages_signals import MESSAGES
from .signal_chart import chart

add_messages(MESSAGES)
add_nav_item(NavItem("sig.nav.signals", "/surveillance/signals", order=72, perm=Perm.SIGNAL_MANAGE))
add_nav_item(NavItem("sig.nav.feeds", "/surveillance/feeds", order=74, perm=Perm.FEED_SUBMIT))

NOTICES = Notices("hg_sig_flash", paths=("/surveillance/signals", "/surveillance/feeds"), prefixes=("sig.flash.",),
                  cookie_path="/surveillance")
manage = [Depends(require(Perm.SIGNAL_MANAGE))]
router = APIRouter(include_in_schema=False)
Param = Annotated[str, Query(max_length=60)]
RowId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
Small = Annotated[str, Form(max_length=100)]
Text = Annotated[str, Form(max_length=20_000)]
PAGE_SIZE = 25
S = sd.Status
TABS: dict[str, list[str]] = {
    "open": sorted(s.value for s in sd.OPEN), "unverified": [S.GENERATED.value, S.NOTIFIED.value],
    "investigating": [S.SUSPECTED.value, S.FIELD_INVESTIGATION.value],
    "concluded": [S.VERIFIED_EXCLUDED.value, S.CONFIRMED.value, S.EXCLUDED.value], "closed": [S.CLOSED.value],
    "all": []}
STATIC = Path(__file__).parent.parent / "static"
ACTIONS_WITH_OUTCOME = {"verify": ("excluded", "suspected"), "conclude": ("confirmed", "excluded")}


@dataclass(frozen=True)
class Labels:
    """Codes of signals as text in the page's language; an unknown code shows as itself."""

    lang: str

    def msg(self, key: str, **params: object) -> str:
        return CATALOGUE.get(key, self.lang, **params)

    def status(self, code: str | None) -> str:
        return pick(sd.STATUS_LABELS.get(code or ""), self.lang, code or "")

    def method(self, code: str) -> str:
        return pick(sd.METHOD_LABELS.get(code), self.lang, code)

    def product(self, code: str) -> str:
        return pick(products.PRODUCTS.get(code), self.lang, code)

    def stream(self, view: Any) -> str:
        return view.stream_en if self.lang == "en" else view.stream_zh

    def feed(self, code: str) -> str:
        feed = FEEDS.get(code)
        return (feed.en if self.lang == "en" else feed.zh) if feed else code

    def outcome(self, code: str | None) -> str:
        return self.msg(f"sig.outcome.{code}") if code else ""


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    labels = Labels(page_language(request))
    state = getattr(request.state, "web_session", None)
    flash = NOTICES.take(request, labels.msg)
    response = render_page(request, template, {"sl": labels, "flash": flash, "csrf": state.csrf_token if state else "",
                                               **context}, status_code=status_code)
    if flash is not None:
        NOTICES.clear(response)
    return response


@router.get("/surveillance/signals/assets/{name}")
def asset(name: str) -> Response:
    """The signal pages' own stylesheet (served by the app: intranets are offline)."""
    if name != "signals.css":
        raise NotFound("HG-404", f"no asset {name!r}")
    return Response((STATIC / name).read_bytes(), media_type="text/css; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=3600"})


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip()) if value.strip() else None
    except ValueError:
        return None


def _query(tab: str, status: str, county: str, stream: str, method: str, since: str, until: str,
           overdue: str) -> signal_queries.SignalQuery:
    statuses = [status] if status in {s.value for s in S} else TABS[tab]
    return signal_queries.SignalQuery(
        status=statuses, county_code=county.strip() or None, stream=stream.strip() or None,
        method=method if method in sd.METHOD_LABELS else None, since=_day(since), until=_day(until),
        overdue=overdue == "1")


@router.get("/surveillance/signals", response_class=HTMLResponse, dependencies=manage)
def signal_list(request: Request, session: SessionDep, actor: ActorDep, tab: Param = "open", status: Param = "",
                county: Param = "", stream: Param = "", method: Param = "", since: Param = "", until: Param = "",
                overdue: Param = "", page: Param = "1") -> HTMLResponse:
    tab = tab if tab in TABS else "open"
    number = int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1
    now = datetime.now(UTC)
    q = _query(tab, status, county, stream, method, since, until, overdue)
    found = signal_queries.list_signals(session, actor, q, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE + 1,
                                        now=now)
    return render(request, "surveillance/signal_list.html", rows=found[:PAGE_SIZE], more=len(found) > PAGE_SIZE,
                  page=number, tab="" if status in {s.value for s in S} else tab, tabs=list(TABS),
                  counties=signal_queries.county_choices(session, actor), streams=signal_queries.stream_choices(
                      now.date()), methods=list(sd.METHOD_LABELS), statuses=[s.value for s in S],
                  filters={"status": status, "county": county, "stream": stream, "method": method, "since": since,
                           "until": until, "overdue": overdue == "1"})


def _page(request: Request, session: Any, actor: Any, signal_id: int, *, error: Any = None) -> HTMLResponse:
    s = signal_queries.get_signal(session, actor, signal_id)
    lang = page_language(request)
    warnings = products.list_warnings(session, actor, signal_id)
    return render(request, "surveillance/signal_detail.html", error.status if error else 200, s=s, error=error,
                  chart=chart(s.curve, CATALOGUE, lang) if s.curve else None, warnings=warnings,
                  products=list(products.PRODUCTS), outcomes=ACTIONS_WITH_OUTCOME,
                  can_draft=s.status not in products.NO_RISK and s.conclusion != "excluded"
                  and s.verification != "excluded",
                  can_issue=s.status in sd.WARNABLE or (s.status == S.CLOSED and s.conclusion == "confirmed"))


@router.get("/surveillance/signals/{signal_id}", response_class=HTMLResponse, dependencies=manage)
def signal_detail(request: Request, session: SessionDep, actor: ActorDep, signal_id: RowId) -> HTMLResponse:
    return _page(request, session, actor, signal_id)


def _version(value: str) -> int | None:
    return int(value) if value.strip().isdigit() and int(value) < 2**31 else None


@router.post("/surveillance/signals/{signal_id}/warnings", dependencies=manage)
def draft(request: Request, session: SessionDep, actor: ActorDep, signal_id: RowId, product: Small = "") -> Response:
    back = f"/surveillance/signals/{signal_id}"
    try:
        products.draft_warning(session, actor, signal_id, product=product)
    except HealthGridError as exc:
        return NOTICES.fail(request, back, exc)
    return NOTICES.redirect(request, back + "#warnings", m="sig.flash.draft")


@router.post("/surveillance/signals/{signal_id}/{action}", dependencies=manage)
def act(request: Request, session: SessionDep, actor: ActorDep, signal_id: RowId, action: str, version: Small = "",
        outcome: Small = "", note: Text = "", responsible: Small = "") -> Response:
    back = f"/surveillance/signals/{signal_id}"
    if action not in sd.ACTIONS:
        raise NotFound("HG-404", f"no signal action {action!r}")
    try:
        signals.act_on_signal(session, actor, signal_id, action=action, outcome=outcome or None, note=note or None,
                              responsible=responsible.strip() or None, expected_version=_version(version))
    except HealthGridError as exc:
        return NOTICES.fail(request, back, exc)
    return NOTICES.redirect(request, back, m=f"sig.flash.{action}")


@router.post("/surveillance/warnings/{warning_id}", dependencies=manage)
def edit(request: Request, session: SessionDep, actor: ActorDep, warning_id: RowId, signal_id: Small = "",
         title: Small = "", body: Text = "", issue: Small = "") -> Response:
    """Save the draft's title and body; with ``issue=1`` also issue it (one button each)."""
    back = f"/surveillance/signals/{signal_id}#warnings" if signal_id.isdigit() else "/surveillance/signals"
    try:
        products.edit_warning(session, actor, warning_id, title=title, body=body)
        if issue == "1":
            products.issue_warning(session, actor, warning_id)
    except HealthGridError as exc:
        return NOTICES.fail(request, back, exc)
    return NOTICES.redirect(request, back, m="sig.flash.issue" if issue == "1" else "sig.flash.edit")


@router.get("/surveillance/warnings/{warning_id}/print", response_class=HTMLResponse, dependencies=manage)
def print_view(request: Request, session: SessionDep, actor: ActorDep, warning_id: RowId) -> HTMLResponse:
    """The product as a document, audited as a print."""
    w = products.get_warning(session, actor, warning_id, printing=True)
    s = signal_queries.get_signal(session, actor, w.signal_id)
    return render(request, "surveillance/signal_print.html", w=w, s=s, paragraphs=w.body.split("\n"))


# -- the feed upload ---------------------------------------------------------------------------------------

def _feed_page(request: Request, session: Any, actor: Any, *, report: dict | None = None, error: Any = None,
               feed: str = "fever") -> HTMLResponse:
    return render(request, "surveillance/feed_upload.html", error.status if error else 200, report=report,
                  error=error, feed=feed, feeds=list(FEEDS.values()),
                  batches=feeds.list_batches(session, actor, limit=10))


@router.get("/surveillance/feeds", response_class=HTMLResponse, dependencies=[Depends(require(Perm.FEED_SUBMIT))])
def feed_page(request: Request, session: SessionDep, actor: ActorDep) -> HTMLResponse:
    return _feed_page(request, session, actor)


@router.post("/surveillance/feeds", response_class=HTMLResponse, dependencies=[Depends(require(Perm.FEED_SUBMIT))])
def feed_upload(request: Request, session: SessionDep, actor: ActorDep, feed: Small = "",
                file: Annotated[UploadFile | None, File()] = None) -> HTMLResponse:
    """The report is shown on the page itself (accepted or rejected: 422 with every error)."""
    try:
        if file is None or not file.filename:
            raise Invalid("SURV-524", "file: choose a CSV file", {"field": "file"})
        data = file.file.read(10 * 1024 * 1024 + 1)
        if len(data) > 10 * 1024 * 1024:
            raise Invalid("SURV-524", "file: at most 10 MB", {"field": "file"})
        report = feeds.ingest_feed(session, actor, feed=feed, rows=parse_feed_csv(data),
                                   filename=file.filename).as_dict()
    except HealthGridError as exc:
        rejected = (exc.detail or {}).get("report") if isinstance(exc.detail, dict) else None
        return _feed_page(request, session, actor, report=rejected, error=error_view(request, exc), feed=feed)
    return _feed_page(request, session, actor, report=report, feed=feed)
