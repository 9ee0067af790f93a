"""The referral desk (转诊工作台) of a facility: referrals coming in (转入), going out (转出),
the patients referred back who are due a follow-up (回转待随访), the alliance referral
centre's queue of escalated referrals (转诊中心), and those past their acceptance deadline
(超时未接收). Filters by status, direction and urgency; one row per referral with its code,
the patient (masked as the service decides), from → to, urgency, status and due times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from ...errors import HealthGridError
from ...http import SessionDep
from ...security.domain import Perm
from ...security.http import ActorDep, require
from ...web.notices import error_view
from .. import desk as ref_desk
from .. import domain as d
from .common import desk_choice, parse_id, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(require(Perm.REFERRAL_WRITE))])
Param = Annotated[str, Query(max_length=20)]
TABS = ("in", "out", "followup", "centre", "overdue")
PAGE_SIZE = 25


def _query(org_id: int, tab: str, status: str, direction: str, urgency: str) -> ref_desk.ReferralQuery:
    return ref_desk.ReferralQuery(
        org_id=org_id, box=tab if tab in ("in", "out", "centre") else None,
        status=[status] if status in {s.value for s in d.Status} else [],
        direction=direction if direction in {x.value for x in d.Direction} else None,
        urgency=urgency if urgency in {u.value for u in d.Urgency} else None, overdue=tab == "overdue")


@router.get("/referrals", response_class=HTMLResponse)
def desk(request: Request, session: SessionDep, actor: ActorDep, org: Param = "", tab: Param = "in",
         status: Param = "", direction: Param = "", urgency: Param = "", page: Param = "1",
         done: Param = "") -> HTMLResponse:
    tab = tab if tab in TABS else "in"
    org_id, desks = desk_choice(session, actor, parse_id(org))
    number = parse_id(page) or 1
    rows, tasks, more, error = [], [], False, None
    now = datetime.now(UTC)
    try:
        if org_id is not None and tab == "followup":
            tasks = ref_desk.followup_tasks(session, actor, org_id=org_id, open_only=done != "1", now=now)
        elif org_id is not None:
            found = ref_desk.search_referrals(session, actor, _query(org_id, tab, status, direction, urgency),
                                             offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE + 1, now=now)
            rows, more = found[:PAGE_SIZE], len(found) > PAGE_SIZE
    except HealthGridError as exc:
        error = error_view(request, exc)
    return render(request, "referrals/desk.html", error.status if error else 200, org_id=org_id, desks=desks,
                  tab=tab, tabs=TABS, rows=rows, tasks=tasks, page=number, more=more, error=error, now_at=now,
                  filters={"status": status, "direction": direction, "urgency": urgency}, done=done == "1",
                  statuses=list(d.Status), directions=list(d.Direction), urgencies=list(d.Urgency))
