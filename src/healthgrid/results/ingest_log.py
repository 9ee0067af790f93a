"""The ingestion log: the messages an organisation sent and what became of each (its report:
created / updated / ignored, errors by code, warnings, the patient outcome) — never the
message itself, which stays encrypted in ``res_message``.

Who reads: ``results.submit`` (the facility's integration and its administrator) for the
organisations in their scope, plus the messages they sent that named no known organisation;
every listing and view is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from ..db import transaction
from ..errors import NotFound
from ..security import access, audit
from ..security.domain import Actor, AuditAction, Perm
from .models import Message


@dataclass(frozen=True)
class MessageView:
    id: int
    kind: str
    channel: str
    source: str
    control_id: str
    status: str
    org_id: int | None
    received_at: datetime
    received_by: str
    report: dict[str, Any]


@dataclass(frozen=True)
class MessagePage:
    total: int
    items: list[MessageView]


def _mine(session: Session, actor: Actor):
    orgs = access.scope_org_ids(session, actor, Perm.RESULT_SUBMIT)
    if orgs is None:
        return None
    return or_(Message.org_id.in_(orgs or {-1}),
               and_(Message.org_id.is_(None), Message.received_by == actor.username[:100]))


def _view(m: Message) -> MessageView:
    return MessageView(m.id, m.kind, m.channel, m.source, m.control_id, m.status, m.org_id, m.received_at,
                       m.received_by, m.report or {})


def list_messages(session: Session, actor: Actor, *, status: str | None = None, kind: str | None = None,
                  channel: str | None = None, offset: int = 0, limit: int = 50) -> MessagePage:
    """The messages received from the actor's organisations, newest first."""
    with transaction(session):
        access.check(session, actor, Perm.RESULT_SUBMIT, AuditAction.SEARCH, resource_type="ResultMessage",
                     detail={"status": status, "kind": kind, "channel": channel})
        stmt = select(Message)
        where = _mine(session, actor)
        if where is not None:
            stmt = stmt.where(where)
        for column, value in ((Message.status, status), (Message.kind, kind), (Message.channel, channel)):
            if value:
                stmt = stmt.where(column == value)
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = session.scalars(stmt.order_by(Message.id.desc()).offset(offset).limit(limit))
        return MessagePage(total, [_view(m) for m in rows])


def get_message(session: Session, actor: Actor, message_id: int) -> MessageView:
    with transaction(session):
        access.check(session, actor, Perm.RESULT_SUBMIT, AuditAction.VIEW, resource_type="ResultMessage",
                     resource_id=message_id, audit_success=False)
        stmt = select(Message).where(Message.id == message_id)
        where = _mine(session, actor)
        found = session.scalar(stmt.where(where) if where is not None else stmt)
        if found is None:
            raise NotFound("RES-209", f"message {message_id} is not one of your organisations'",
                           {"field": "message_id"})
        audit.record(session, actor, AuditAction.VIEW, resource_type="ResultMessage", resource_id=message_id,
                     org_id=found.org_id)
        return _view(found)
