"""Tables of the notifications context (prefix ``notif_``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime, utcnow


class Message(Base):
    __tablename__ = "notif_message"
    __table_args__ = (Index("ix_notif_message_recipient", "recipient_kind", "recipient_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient_kind: Mapped[str] = mapped_column(String(12))  # patient | user | practitioner
    recipient_id: Mapped[int] = mapped_column(Integer)
    topic: Mapped[str] = mapped_column(String(60))
    # {"zh": ..., "en": ...}: the reader's language is chosen when the message is shown.
    title: Mapped[dict[str, Any]] = mapped_column(JSON)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    link: Mapped[str | None] = mapped_column(String(300))
    sender: Mapped[str] = mapped_column(String(30))
    # The outbox event that produced it: a redelivered event does not notify twice.
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
