"""The inbox page (消息): a user's messages — to their account, their practitioner record,
and, for a resident, to their own patient record and the family members they book for —
with marking as read. Texts are shown in the page's language; a message's link opens the
page it is about (an appointment)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from ..http import SessionDep
from ..scheduling import service as scheduling
from ..security.domain import Actor, Perm
from ..security.http import ActorDep, require
from ..web import NavItem, Pager, add_messages, add_nav_item, page_language, render
from . import service

TEMPLATES = Path(__file__).parent / "templates"
router = APIRouter(include_in_schema=False, dependencies=[Depends(require(Perm.REGISTRY_READ))])
PageNo = Annotated[int, Query(ge=1, le=10_000)]


def _patient_ids(session: Session, actor: Actor) -> list[int]:
    """A resident reads the messages to their own record and their family members'; staff
    read only those to their account and practitioner record."""
    if actor.can(Perm.SELF_RECORD) and not actor.can(Perm.APPOINTMENT_BOOK):
        return scheduling.own_patient_ids(session, actor)
    return []


@router.get("/inbox", response_class=HTMLResponse)
def inbox(request: Request, session: SessionDep, actor: ActorDep, page: PageNo = 1) -> HTMLResponse:
    ids = _patient_ids(session, actor)
    pager = Pager(page)
    # One row past the page says whether there is a next one.
    rows = service.inbox(session, actor, patient_ids=ids, lang=page_language(request), offset=pager.offset,
                         limit=pager.size + 1)
    more = len(rows) > pager.size
    state = getattr(request.state, "web_session", None)
    return render(request, "notifications/inbox.html", {
        "messages": rows[:pager.size], "unread": service.unread_count(session, actor, patient_ids=ids),
        "page": page, "more": more, "csrf": state.csrf_token if state else ""})


@router.post("/inbox/{message_id}/read")
def mark_read(request: Request, session: SessionDep, actor: ActorDep,
              message_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)]) -> RedirectResponse:
    service.mark_read(session, actor, message_id, patient_ids=_patient_ids(session, actor))
    return RedirectResponse("/inbox", status_code=303)


MESSAGES: dict[str, tuple[str, str]] = {
    "notif.nav.inbox": ("消息", "Messages"),
    "notif.inbox.title": ("消息", "Messages"),
    "notif.inbox.lead": ("预约确认、就诊提醒、停诊通知和候补通知。",
                         "Booking confirmations, reminders, clinic cancellations and waitlist offers."),
    "notif.inbox.unread": ("{n} 条未读", "{n} unread"),
    "notif.inbox.none": ("没有消息。", "No message."),
    "notif.inbox.read": ("标为已读", "Mark as read"),
    "notif.inbox.open": ("查看", "Open"),
    "notif.inbox.new": ("未读", "Unread"),
    "notif.flash.read": ("已标为已读。", "Marked as read."),
    "error.NOTIF-003": ("这条消息不在您的收件箱中。", "This message is not in your inbox."),
}
add_messages(MESSAGES)
add_nav_item(NavItem("notif.nav.inbox", "/inbox", order=60, perm=Perm.REGISTRY_READ))
