"""Transactional outbox: events written in the same transaction as the change.

``publish()`` is called by services; ``deliver_pending()`` is what ``healthgrid worker``
runs: it hands each undelivered event to the handlers registered for its topic and marks
it delivered, so a change and its notification are never separated by a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .db import Base, UTCDateTime, transaction, utcnow

Handler = Callable[[Session, dict[str, Any]], None]


class OutboxEvent(Base):
    __tablename__ = "outbox_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(100), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


def publish(session: Session, topic: str, payload: dict[str, Any]) -> OutboxEvent:
    """Queue an event; it is committed (or rolled back) with the caller's transaction."""
    event = OutboxEvent(topic=topic, payload=payload, attempts=0)
    session.add(event)
    return event


def deliver_pending(
    session: Session, handlers: Mapping[str, Sequence[Handler]], *, batch: int = 100
) -> int:
    """Run the handlers of up to ``batch`` pending events; return how many were delivered.

    Each event is handled in its own transaction: a failing handler records its error and
    leaves the event pending for the next run, without blocking the others.
    """
    with transaction(session):
        stmt = select(OutboxEvent.id).where(OutboxEvent.delivered_at.is_(None))
        ids = session.scalars(stmt.order_by(OutboxEvent.id).limit(batch)).all()
    delivered = 0
    for event_id in ids:
        try:
            with transaction(session):
                event = session.get(OutboxEvent, event_id, with_for_update=True)
                if event is None or event.delivered_at is not None:
                    continue
                for handler in handlers.get(event.topic, ()):
                    handler(session, event.payload)
                event.attempts += 1
                event.delivered_at = utcnow()
            delivered += 1
        except Exception as exc:  # noqa: BLE001 - recorded, retried on the next run
            with transaction(session):
                event = session.get(OutboxEvent, event_id)
                if event is not None:
                    event.attempts += 1
                    event.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    return delivered
