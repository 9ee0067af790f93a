"""Case reporting (传染病报告), the service of the report card: the first report here; the
correction (订正), deletion (删除) and the county CDC's review (审核) in :mod:`.card_workflow`;
the one-click prefill from a diagnosis (首诊负责制: the diagnosing doctor reports) in
:mod:`.card_prefill`; the reads in :mod:`.card_queries` — all re-exported here, the one
module the API, the pages, FHIR and other contexts call.

Each use case runs in one transaction, checks access and audits (``surveillance.report`` at
the reporting organisation; ``surveillance.review`` for the CDC over it), validates with
:func:`.cards.validate_card` — every problem at once, nothing written — and logs a
``CardEvent`` (row writing and clocks: :mod:`.card_store`). The first report:

- Clocks (《传染病信息报告管理规范》 2015, §5.2): report due = diagnosis + 2 h or 24 h from the
  catalogue; a card reported after it is *late* (``fields.late_minutes``, the event says so).
  Review due = network report + 2 h / 24 h.
- The platform numbers cards ``CRB0000000012`` (agreement); a number sent in is ignored. The
  reporting area and unit come from the reporting organisation in the registry, never from
  the caller: its county; an organisation placed at city or province level reports from the
  city's 市辖区 (``xxxx01``), where NIDRIS registers such units.
- Duplicate cards (重卡): the same ID number (blind index; never the unknown-ID placeholder),
  the same disease, diagnosed within 30 days of a live card ⇒ SURV-302 naming the earlier
  card, unless the caller says it is a new episode (``new_episode``). An ID held by a parent
  must also carry the same patient name (siblings share a parent's number).
- Idempotency as referrals: the same key and content answer the first card; another content
  under the key is SURV-301. The content's hash is keyed (blind index), not plain.
- The patient: the index record given (the reporter must be allowed to read it), else the
  holder of the card's own resident ID, if registered.
- Outbox ``surveillance.card_reported`` (payload of the agreement).
- The supplementary cards (附卡) of AIDS/HIV and HFMD (2019 card [M]) are ``supplementary``;
  their required items are checked with the card (SURV-320/321 among the card's problems).

Error codes SURV-300–321: 300 no card, 301 key reused, 302 duplicate, 303 stale version,
304 not in this status, 305 bad argument, 306 no such patient, 307 no such organisation,
308 ICD-10 not notifiable, 309 bad source, 310 bad search, 311 a correction changing
nothing, 312 bad key, 320/321 supplementary card.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..db import transaction, utcnow
from ..errors import Conflict, NotFound
from ..patients import service as patients
from ..security import access, pii
from ..security.domain import Actor, AuditAction, Perm
from . import card_queries as q
from . import card_store as st
from .card_fields import CardIn, Problem
from .card_prefill import card_prefill, notifiable_icd10
from .card_queries import CardQuery, CardView, get_card, search_cards
from .card_workflow import CORRECTABLE, correct_card, delete_card, review_card
from .cards import invalid
from .models import Card

__all__ = ["CORRECTABLE", "CardQuery", "CardView", "card_prefill", "card_problems", "correct_card", "delete_card",
           "get_card", "notifiable_icd10", "report_card", "review_card", "search_cards"]

DUPLICATE_WINDOW = timedelta(days=30)
PLACEHOLDER = "CRB0000000000"
SOURCE_KINDS = ("referral", "manual", "import")


# -- the patient, the source -------------------------------------------------------------------------

def _source(source: str | None) -> tuple[str, str | None]:
    """``kind[:reference]``: referral:12, manual, import:batch-7."""
    if source is None or not source.strip():
        return "manual", None
    kind, _, ref = source.strip().partition(":")
    if kind not in SOURCE_KINDS or len(ref) > 60 or not (ref.isprintable()):
        raise st.bad("source", f"kind[:reference], kind one of {list(SOURCE_KINDS)}, reference ≤60 characters",
                   "SURV-309")
    return kind, ref or None


def _patient(session: Session, actor: Actor, patient_id: int | None, card: CardIn, org_id: int) -> int | None:
    """The patient index record the card is about: the one given (the reporter must be allowed
    to read it), else the holder of the card's own ID number, if registered."""
    if patient_id is None:
        own = card.id_holder == "self" and card.id_type == "resident_id" and card.id_number
        return patients.patient_of_id_number(session, card.id_number) if own else None
    try:
        pid = patients.resolve_patient_id(session, patient_id)
    except NotFound as exc:
        raise st.bad("patient_id", f"patient {patient_id} is not in the patient index", "SURV-306") from exc
    access.check(session, actor, Perm.PATIENT_READ, AuditAction.VIEW, resource_type="Patient", resource_id=pid,
                 org_id=org_id, patient_id=pid, audit_success=False)
    return pid


# -- first report --------------------------------------------------------------------------------

def _check_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= 100 or not key.isprintable():
        raise st.bad("Idempotency-Key", "1 to 100 printable characters", "SURV-312")
    return key


def _filled(session: Session, actor: Actor, card: CardIn, org_id: int, now: datetime) -> CardIn:
    """The card as the platform completes it: first report, its number to come, the
    reporting unit and area from the registry, today's fill date and the doctor by default."""
    at = card.diagnosed_at
    return dataclasses.replace(
        card, card_number=PLACEHOLDER, report_type="first", **q.org_codes(session, org_id),
        diagnosed_at=q.to_local(at) if at is not None and at.tzinfo is not None else at,
        fill_date=card.fill_date or st.now_local(now).date(),
        doctor=card.doctor if (card.doctor or "").strip() else q.doctor_name(session, actor))


def _refuse_duplicate(session: Session, card: CardIn, bidx: str | None) -> None:
    """重卡. Two reports of one person and disease at once queue on a transaction-scoped
    advisory lock on PostgreSQL (no unique key can say "within 30 days"); SQLite has one
    writer at a time anyway."""
    if bidx is None:
        return
    if session.get_bind().dialect.name == "postgresql":
        key = int(hashlib.sha256(f"{bidx}|{card.disease}".encode()).hexdigest()[:15], 16)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    at = q.to_utc(card.diagnosed_at)
    rows = session.scalars(select(Card).where(
        Card.id_bidx == bidx, Card.disease == card.disease, Card.status != "deleted",
        Card.diagnosed_at > at - DUPLICATE_WINDOW, Card.diagnosed_at < at + DUPLICATE_WINDOW).order_by(Card.id))
    for row in rows:
        if card.id_holder == "parent" and q.personal_of(session, row).get("patient_name") != card.patient_name:
            continue
        raise Conflict("SURV-302", f"card {row.card_number} already reports this person with this disease,"
                       f" diagnosed within {DUPLICATE_WINDOW.days} days; correct that card, or report a new"
                       " episode explicitly", {"field": "disease", "card_number": row.card_number, "card_id": row.id})


def _digest(session: Session, parts: list[Any]) -> str:
    return pii.blind(session, json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False), "surv.card.idem")


def card_problems(session: Session, actor: Actor, card: CardIn, *, report_org_id: int,
                  supplementary: Mapping[str, Any] | None = None, now: datetime | None = None) -> list[Problem]:
    """The problems a first report of ``card`` would have, without writing anything (a form
    that also has fields it could not read shows both at once). Reads no personal data."""
    now = now or utcnow()
    with transaction(session):
        access.check(session, actor, Perm.CASE_REPORT, AuditAction.CREATE, resource_type=q.RESOURCE,
                     org_id=report_org_id, audit_success=False)
        filled = _filled(session, actor, card, report_org_id, now)
        if supplementary:
            filled = dataclasses.replace(filled, supplementary_card=True)
        return st.problems(filled, dict(supplementary or {}), now)


@dataclass(frozen=True)
class _Report:
    """One first report as asked: the card and what comes with it."""

    card: CardIn
    org_id: int
    patient_id: int | None
    source: str | None
    supplementary: dict[str, Any]
    icd10: str | None
    new_episode: bool


def report_card(session: Session, actor: Actor, card: CardIn, *, report_org_id: int, patient_id: int | None = None,
                source: str | None = None, supplementary: Mapping[str, Any] | None = None, icd10: str | None = None,
                new_episode: bool = False, idempotency_key: str | None = None,
                now: datetime | None = None) -> CardView:
    """初次报告: validate, number, encrypt and store the card with its clocks; publish it.
    Retried with the same Idempotency-Key and content, answers the first card."""
    now, key = now or utcnow(), _check_key(idempotency_key)
    asked = _Report(card, report_org_id, patient_id, source, dict(supplementary or {}), icd10, new_episode)

    def attempt() -> CardView:
        with transaction(session):
            access.check(session, actor, Perm.CASE_REPORT, AuditAction.CREATE, resource_type=q.RESOURCE,
                         org_id=report_org_id, audit_success=False)
            digest = _digest(session, [dataclasses.asdict(card), report_org_id, patient_id, source,
                                       asked.supplementary, icd10, new_episode])
            replayed = _replayed(session, actor, key, digest)
            return replayed if replayed is not None else _first(session, actor, asked, key, digest, now)

    try:
        return attempt()
    except (IntegrityError, Conflict) as exc:
        # A concurrent retry with the same key inserted first (its insert, or the duplicate
        # check after the lock, tells): read again, and answer it.
        if key is None or (isinstance(exc, Conflict) and exc.code != "SURV-302"):
            raise
        return attempt()


def _owner(actor: Actor) -> str:
    return f"user:{actor.user_id}" if actor.user_id is not None else actor.username


def _replayed(session: Session, actor: Actor, key: str | None, digest: str) -> CardView | None:
    if key is None:
        return None
    found = session.scalar(select(Card).where(Card.idem_owner == _owner(actor), Card.idempotency_key == key))
    if found is None:
        return None
    if (found.fields or {}).get("_digest") != digest:
        raise Conflict("SURV-301", "this Idempotency-Key was used for another card; use a new key",
                       {"field": "Idempotency-Key"})
    return dataclasses.replace(st.view(session, actor, found), replayed=True)


def _first(session: Session, actor: Actor, asked: _Report, key: str | None, digest: str,
           now: datetime) -> CardView:
    filled = _filled(session, actor, asked.card, asked.org_id, now)
    kind, ref = _source(asked.source)
    if asked.supplementary:
        filled = dataclasses.replace(filled, supplementary_card=True)
    problems = st.problems(filled, asked.supplementary, now)
    if problems:
        raise invalid(problems)
    pid = _patient(session, actor, asked.patient_id, filled, asked.org_id)
    if not asked.new_episode:
        _refuse_duplicate(session, filled, st.id_bidx(session, filled))
    row = Card(card_number=f"TMP-{secrets.token_hex(12)}", patient_id=pid, report_org_id=asked.org_id,
               source_kind=kind, source_ref=ref, reported_at=now, created_by=actor.username,
               idem_owner=_owner(actor) if key else None, idempotency_key=key)
    st.store(session, row, filled, now=now, extra={
        "supplementary": asked.supplementary, "icd10": _icd10(asked.icd10, filled), "_digest": digest,
        "practitioner_id": actor.practitioner_id, "new_episode": asked.new_episode})
    session.add(row)
    session.flush()
    number = f"CRB{row.id:010d}"  # agreement: numbered in the insert's transaction
    session.execute(update(Card).where(Card.id == row.id).values(card_number=number, updated_at=now))
    set_committed_value(row, "card_number", number)
    access.check(session, actor, Perm.CASE_REPORT, AuditAction.CREATE, resource_type=q.RESOURCE,
                 resource_id=row.id, org_id=asked.org_id, patient_id=pid)
    st.event(session, actor, row, "reported", now, detail={"late_minutes": row.fields["late_minutes"],
                                                            "source": kind, "new_episode": asked.new_episode})
    st.publish(session, row)
    session.flush()
    return st.view(session, actor, row)


def _icd10(code: str | None, card: CardIn) -> str | None:
    """The diagnosis the card came from, kept when it is one of the card's disease."""
    code = (code or "").strip().upper()
    found = notifiable_icd10(code, card.diagnosed_at.date()) if code and len(code) <= 20 else None
    return code if found is not None and found[0].code == card.disease else None
