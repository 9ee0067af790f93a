"""Sending and reading notifications.

A sender is ``fn(session, message) -> None``; ``inbox`` (the default) stores the message for
the inbox page. ``HEALTHGRID_NOTIFICATIONS__SENDERS`` lists the senders that every message
goes through (e.g. ``["inbox", "sms"]`` once an ``sms`` sender is registered by a plug-in).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from ..db import transaction, utcnow
from ..errors import Invalid, NotFound
from ..security import ALL_SETTINGS_KEY
from ..security.domain import Actor, Role, ScopeKind
from .models import Message

log = logging.getLogger("healthgrid.notifications")
# "org": an organisation's desk (a referral centre, a receiving department without a named
# doctor), read by the clinical staff who work there (an organisation-scope grant).
# "division": the public-health desk of a division (a county's early-warning signals), read by
# the CDC staff whose grant is on that division (CIDARS tells the county CDC's duty
# epidemiologists, ../shared/specs/domain-rules.md §5.4).
RECIPIENT_KINDS = ("patient", "user", "practitioner", "org", "division")
DESK_ROLES = frozenset({Role.CLINICIAN, Role.NURSE})
DIVISION_DESK_ROLES = frozenset({Role.CDC_EPIDEMIOLOGIST})


@dataclass(frozen=True)
class Note:
    recipient_kind: str
    recipient_id: int
    topic: str
    title: dict[str, str]
    body: dict[str, str]
    link: str | None = None
    dedupe_key: str | None = None


Sender = Callable[[Session, Note], None]


def _inbox_sender(session: Session, note: Note) -> None:
    if note.dedupe_key is not None and session.scalar(
            select(Message.id).where(Message.dedupe_key == note.dedupe_key)) is not None:
        return
    session.add(Message(recipient_kind=note.recipient_kind, recipient_id=note.recipient_id, topic=note.topic,
                        title=note.title, body=note.body, link=note.link, sender="inbox",
                        dedupe_key=note.dedupe_key))
    session.flush()


def _log_sender(_session: Session, note: Note) -> None:
    # Never the text itself: it may carry a name and a time of care.
    log.info("notification %s to %s %s", note.topic, note.recipient_kind, note.recipient_id)


SENDERS: dict[str, Sender] = {"inbox": _inbox_sender, "log": _log_sender}


def register_sender(name: str, fn: Sender) -> None:
    SENDERS[name] = fn


def _configured(session: Session) -> list[str]:
    settings = session.info.get(ALL_SETTINGS_KEY)
    return list(settings.notifications.senders) if settings is not None else ["inbox"]


def notify(session: Session, note: Note) -> None:
    """Hand a message to every configured sender, inside the caller's transaction (an
    outbox handler's): if a sender fails, the event stays pending and is retried."""
    if note.recipient_kind not in RECIPIENT_KINDS:
        raise Invalid("NOTIF-001", f"recipient kind: one of {list(RECIPIENT_KINDS)}", {"field": "recipient_kind"})
    with transaction(session):
        for name in _configured(session):
            sender = SENDERS.get(name)
            if sender is None:
                raise Invalid("NOTIF-002", f"no notification sender named {name!r} is registered")
            sender(session, note)


@dataclass(frozen=True)
class MessageView:
    id: int
    topic: str
    title: str
    body: str
    link: str | None
    created_at: Any
    read: bool


def _recipients(actor: Actor, patient_ids: list[int]) -> list[tuple[str, int]]:
    out = [("patient", pid) for pid in patient_ids]
    if actor.user_id is not None:
        out.append(("user", actor.user_id))
    if actor.practitioner_id is not None:
        out.append(("practitioner", actor.practitioner_id))
    out += [("org", g.scope_id) for g in actor.grants
            if g.role in DESK_ROLES and g.scope_kind is ScopeKind.ORGANIZATION and g.scope_id]
    out += [("division", g.scope_id) for g in actor.grants
            if g.role in DIVISION_DESK_ROLES and g.scope_kind is ScopeKind.DIVISION and g.scope_id]
    return out


def _where(actor: Actor, patient_ids: list[int]):
    pairs = _recipients(actor, patient_ids)
    if not pairs:
        return None
    return or_(*(and_(Message.recipient_kind == k, Message.recipient_id == i) for k, i in pairs))


def inbox(session: Session, actor: Actor, *, patient_ids: list[int], lang: str = "zh", offset: int = 0,
          limit: int = 50) -> list[MessageView]:
    """The actor's own messages: to their user, their practitioner record, and the patients
    they may read as themselves (their own record, family members they book for) — decided
    by the caller, which passes ``patient_ids``."""
    where = _where(actor, patient_ids)
    if where is None:
        return []
    with transaction(session):
        rows = session.scalars(select(Message).where(where).order_by(Message.id.desc()).offset(offset).limit(limit))
        return [MessageView(m.id, m.topic, m.title.get(lang) or m.title.get("zh", ""),
                            m.body.get(lang) or m.body.get("zh", ""), m.link, m.created_at, m.read_at is not None)
                for m in rows]


def unread_count(session: Session, actor: Actor, *, patient_ids: list[int]) -> int:
    where = _where(actor, patient_ids)
    if where is None:
        return 0
    with transaction(session):
        return session.scalar(select(func.count()).select_from(Message).where(where, Message.read_at.is_(None))) or 0


def mark_read(session: Session, actor: Actor, message_id: int, *, patient_ids: list[int]) -> None:
    where = _where(actor, patient_ids)
    with transaction(session):
        done = where is not None and session.execute(update(Message).where(
            Message.id == message_id, where, Message.read_at.is_(None)).values(read_at=utcnow())).rowcount
        if not done and (where is None or session.scalar(select(Message.id).where(Message.id == message_id, where))
                         is None):
            raise NotFound("NOTIF-003", f"message {message_id} is not in your inbox")


def messages_to(session: Session, recipient_kind: str, recipient_id: int) -> list[Message]:
    """Every message to one recipient, oldest first (tests and operators' checks)."""
    with transaction(session):
        return list(session.scalars(select(Message).where(Message.recipient_kind == recipient_kind,
                                                          Message.recipient_id == recipient_id)
                                    .order_by(Message.id)))
