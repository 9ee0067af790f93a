"""Writing a report card's row, shared by the first report (``reporting``) and the later
steps (``card_workflow``): the personal fields sealed as one JSON document and the ID
number's blind index (the surveillance helpers' agreement), the counted fields in columns,
the clocks of 《传染病信息报告管理规范》 (2015, §5.2: report due = diagnosis + 2 h / 24 h from
the catalogue; review due = network report + the same), the event log, the outbox event
``surveillance.card_reported`` (agreement payload), validation with every problem at once,
the locked read with its version check, and the coded refusals of the card service."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from .. import outbox
from ..errors import Invalid, PreconditionFailed
from ..security import pii
from ..security.domain import Actor, Perm
from . import card_queries as q
from .card_fields import CardIn, Problem
from .card_queries import CardView
from .card_supplement import supplement_problems
from .cards import report_deadline, review_deadline, validate_card
from .catalogue import load_catalogue
from .models import Card, CardEvent

TOPIC = "surveillance.card_reported"


def now_local(now: datetime) -> datetime:
    return q.to_local(now)


def bad(field: str, why: str, code: str = "SURV-305") -> Invalid:
    return Invalid(code, f"{field}: {why}", {"field": field})


def text(value: str | None, field: str, *, required: bool, limit: int = 500) -> str | None:
    text = (value or "").strip()
    if required and not text:
        raise bad(field, "required")
    if len(text) > limit or any(ord(ch) < 32 and ch not in "\n\t" for ch in text):
        raise bad(field, f"at most {limit} characters, no control characters")
    return text or None


def limits(card: CardIn) -> tuple[timedelta, timedelta]:
    cat = load_catalogue()
    return report_deadline(card, cat), review_deadline(card, cat)


def id_bidx(session: Session, card: CardIn) -> str | None:
    number = (card.id_number or "").strip().upper()
    return pii.blind(session, number, q.ID_PURPOSE) if number and number != "00000000000000000X" else None


def store(session: Session, row: Card, card: CardIn, *, now: datetime, extra: dict[str, Any]) -> None:
    """Write the card's values into the row; reset its clocks (first report or correction)."""
    personal = {k: getattr(card, k) for k in q.PERSONAL}
    row.personal_enc = pii.seal(session, json.dumps(personal, ensure_ascii=False), q.PERSONAL_PURPOSE)
    row.id_bidx = id_bidx(session, card)
    for name in q.COLUMNS:
        if name != "card_number":
            setattr(row, name, getattr(card, name))
    row.county_code = (card.current_address_code or "")[:6] or None
    row.diagnosed_at = q.to_utc(card.diagnosed_at)
    report_limit, review_limit = limits(card)
    row.report_due_at, row.review_due_at = row.diagnosed_at + report_limit, now + review_limit
    late = max(0, int((row.reported_at - row.report_due_at).total_seconds() // 60))
    row.fields = {**{k: getattr(card, k) for k in q.FIELDS}, **extra, "late_minutes": late,
                  "report_limit_hours": int(report_limit.total_seconds() // 3600),
                  "review_limit_hours": int(review_limit.total_seconds() // 3600)}
    row.status, row.updated_at = "reported", now


def event(session: Session, actor: Actor, row: Card, kind: str, now: datetime, *, note: str | None = None,
           detail: dict | None = None) -> None:
    session.add(CardEvent(card_id=row.id, kind=kind, actor=actor.username, at=now, note=note, detail=detail or {}))


def publish(session: Session, row: Card) -> None:
    disease = load_catalogue().entry(row.disease, q.to_local(row.diagnosed_at).date())
    outbox.publish(session, TOPIC, {"card_id": row.id, "disease": row.disease, "subtype": row.subtype,
                                    "county_code": row.county_code, "diagnosed_at": row.diagnosed_at.isoformat(),
                                    "fixed_threshold": bool(disease.rule("fixed_threshold", row.subtype))})


def problems(card: CardIn, supplementary: Mapping[str, Any], now: datetime) -> list[Problem]:
    return validate_card(card, catalogue=load_catalogue(), now=now_local(now)) + supplement_problems(
        card, supplementary)


def load(session: Session, card_id: int, expected_version: int | None) -> Card:
    row = q.card(session, card_id, for_update=True)
    if expected_version is not None and row.version != expected_version:
        raise PreconditionFailed("SURV-303", f"card {row.card_number} is at version {row.version}, not"
                                 f" {expected_version}; read it again", {"version": row.version})
    return row


def view(session: Session, actor: Actor, row: Card) -> CardView:
    return q.views(session, [row], unmasked=actor.can(Perm.PII_UNMASKED), with_events=True)[0]
