"""Early-warning signals (预警信号) and the response to them: raising (de-duplicated per
stream and county while one is open, suppressed for a while after one was closed), the
notification of the county CDC through the outbox, the CDC's verification, field
investigation, conclusion and closing with notes and a responsible epidemiologist, and the
reminder of signals left unverified past 24 hours. Listing and reading: :mod:`.signal_queries`.

Every change goes through ``_move``: the pure lifecycle decides (:mod:`.signal_domain`),
the row gets its time stamp, the event log a line, the outbox ``surveillance.signal_changed``
and the audit trail an entry. A change reads the signal ``FOR UPDATE`` and takes the version
it was read at (SURV-402 when someone changed it meanwhile).

One open signal per stream and county is kept by the database: ``open_key`` is unique while
the signal is open; two detectors (or workers) raising at once meet the constraint, and the
loser joins the signal that won (§5.4: no new signal for a disease and county while one is
open).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import outbox
from ..db import transaction, utcnow
from ..errors import Invalid, NotFound, PreconditionFailed
from ..notifications import service as notifications
from ..registry import queries as registry_queries
from ..security import audit
from ..security import service as security
from ..security.domain import Actor, AuditAction, Perm
from . import signal_domain as sd
from .detection_data import county_names, local_day, settings_of, zone_of
from .detection_methods import Alarm
from .models import Card, Signal, SignalEvent
from .signal_queries import SignalDetail, check_access, signal_detail, stream_names

SYSTEM = Actor.system_actor("surveillance")
REMINDER_ACTOR = "system:surveillance-reminder"
REMIND_WITHIN = timedelta(days=7)
S = sd.Status


@dataclass(frozen=True)
class Raised:
    signal_id: int | None
    outcome: str  # created | deduped | suppressed


# -- raising ---------------------------------------------------------------------------------------

def raise_signal(session: Session, alarm: Alarm, *, now: datetime | None = None) -> Raised:
    """A signal for an alarm, unless one is open for its stream and county (then the alarm
    joins it: a fixed-threshold case adds its card) or one was closed within
    ``suppression_days`` (not for the fixed threshold: every case of plague counts)."""
    now = now or utcnow()
    cfg = settings_of(session)
    key = sd.open_key(alarm.stream, alarm.county_code)
    with transaction(session):
        found = session.scalar(select(Signal).where(Signal.open_key == key))
        if found is not None:
            return _join(session, found, alarm, now)
        if alarm.method == "fixed" and alarm.detail.get("card_ids"):
            fresh = [c for c in alarm.detail["card_ids"] if c not in _signalled_cards(session, alarm)]
            if not fresh:
                return Raised(None, "deduped")  # every case was signalled already (in real time)
            alarm = replace(alarm, observed=float(len(fresh)), detail={**alarm.detail, "card_ids": fresh})
        elif alarm.method != "fixed" and sd.suppressed(_last_closed_on(session, alarm), alarm.day,
                                                       cfg.suppression_days):
            return Raised(None, "suppressed")
        row = Signal(stream=alarm.stream, disease=alarm.disease, county_code=alarm.county_code,
                     division_code=alarm.county_code, method=alarm.method, detected_on=alarm.day,
                     observed=alarm.observed, threshold=alarm.threshold, detail=dict(alarm.detail),
                     status=S.GENERATED.value, open_key=key, generated_at=now,
                     verify_due_at=sd.verify_due(now, cfg.verification_hours))
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            found = session.scalar(select(Signal).where(Signal.open_key == key))
            if found is None:
                raise
            return _join(session, found, alarm, now)
        sign = "≥" if alarm.method == "fixed" else ">"  # one case reaches the fixed threshold
        over = f" {sign} {alarm.threshold:.4g}" if alarm.threshold is not None else ""
        note = f"{alarm.method}: {alarm.observed:.4g}{over}"
        session.add(SignalEvent(signal_id=row.id, from_status=None, to_status=S.GENERATED.value,
                                actor=SYSTEM.username, at=now, note=note))
        session.flush()
        outbox.publish(session, "surveillance.signal_generated", {"signal_id": row.id})
        audit.record(session, SYSTEM, AuditAction.CREATE, resource_type="Signal", resource_id=row.id,
                     detail={"stream": row.stream, "county": row.county_code, "method": row.method})
        return Raised(row.id, "created")


def _last_closed_on(session: Session, alarm: Alarm):
    at = session.scalar(select(func.max(Signal.closed_at)).where(
        Signal.stream == alarm.stream, Signal.county_code == alarm.county_code, Signal.status == S.CLOSED.value))
    return local_day(session, at) if at is not None else None


def _signalled_cards(session: Session, alarm: Alarm) -> set[int]:
    """Cards already behind a fixed-threshold signal of this stream and county (recent ones)."""
    details = session.scalars(select(Signal.detail).where(
        Signal.stream == alarm.stream, Signal.county_code == alarm.county_code, Signal.method == "fixed",
        Signal.detected_on >= alarm.day - timedelta(days=60)))
    return {c for d in details for c in (d or {}).get("card_ids", [])}


def _join(session: Session, row: Signal, alarm: Alarm, now: datetime) -> Raised:
    """A fixed-threshold case joins the open signal with its card (a new case is news to the
    epidemiologist); other repeats leave the signal as it is (its version too)."""
    new = [c for c in alarm.detail.get("card_ids", []) if c not in (row.detail or {}).get("card_ids", [])]
    if alarm.method == "fixed" and new:
        locked = session.get(Signal, row.id, with_for_update=True, populate_existing=True)
        detail = dict(locked.detail or {})
        detail["card_ids"] = list(detail.get("card_ids", [])) + new
        locked.detail = detail
        locked.observed = float(len(detail["card_ids"]))
        session.add(SignalEvent(signal_id=locked.id, from_status=locked.status, to_status=None,
                                actor=SYSTEM.username, at=now, note=f"another case: card {', '.join(map(str, new))}"))
        session.flush()
    return Raised(row.id, "deduped")


def raise_for_card(session: Session, payload: dict, *, now: datetime | None = None) -> Raised | None:
    """Outbox ``surveillance.card_reported``: a case of a fixed-threshold disease is a signal
    at once (CIDARS real-time single-case alert, §5.4)."""
    if not payload.get("fixed_threshold"):
        return None
    with transaction(session):
        card = session.get(Card, payload.get("card_id"))
        if card is None or card.status == "deleted" or not card.county_code:
            return None
        if card.county_code not in county_names(session):
            return None  # a county outside the region: its own CDC answers it
        alarm = Alarm(f"case:{card.disease}", card.disease, card.county_code, "fixed",
                      local_day(session, card.diagnosed_at), 1.0, 1.0, {"card_ids": [card.id], "cases": 1})
        return raise_signal(session, alarm, now=now)


# -- notification and reminders ---------------------------------------------------------------------

def county_cdc(session: Session, county_code: str) -> int | None:
    """The CDC organisation answering for a county: the county's own CDC, else the nearest
    one above it (city, then province)."""
    try:
        county = registry_queries.division_by_code(session, county_code)
    except NotFound:
        return None
    for division in [county] + list(reversed(registry_queries.division_ancestors(session, county))):
        ids = registry_queries.organization_ids_in_division(session, division.code)
        page = registry_queries.search_organizations(
            session, registry_queries.OrgFilter(ids=ids, types=["cdc"], active=True), limit=5) if ids else None
        if page is not None and page.items:
            return min(o.id for o in page.items)
    return None


def _message(session: Session, row: Signal, kind: str) -> tuple[dict[str, str], dict[str, str]]:
    names = stream_names(row.stream, row.detected_on)
    place = county_names(session).get(row.county_code, row.county_code)
    due = row.verify_due_at.astimezone(zone_of(session)).strftime("%Y-%m-%d %H:%M")
    label = sd.METHOD_LABELS.get(row.method, (row.method, row.method))
    if kind == "overdue":
        title = {"zh": "预警信号超时未核实", "en": "Signal not verified in time"}
    else:
        title = {"zh": "新的预警信号", "en": "New early-warning signal"}
    body = {"zh": f"{place} {names[0]}（{label[0]}，{row.detected_on.isoformat()}）：请于 {due} 前完成初步核实。",
            "en": f"{place} {names[1]} ({label[1]}, {row.detected_on.isoformat()}): verify by {due}."}
    return title, body


def notify_signal(session: Session, signal_id: int, *, now: datetime | None = None) -> bool:
    """Outbox ``surveillance.signal_generated``: the county CDC's desk is told (CIDARS sends
    an SMS to the duty epidemiologists, §5.4) and the signal becomes NOTIFIED."""
    now = now or utcnow()
    with transaction(session):
        row = session.get(Signal, signal_id, with_for_update=True)
        if row is None or row.status != S.GENERATED.value:
            return False
        org = county_cdc(session, row.county_code)
        if org is None:
            session.add(SignalEvent(signal_id=row.id, from_status=row.status, to_status=None, actor=SYSTEM.username,
                                    at=now, note="no CDC organisation found for this county: nobody was notified"))
            return False
        title, body = _message(session, row, "generated")
        for kind, rid in _desks(session, row, org):
            notifications.notify(session, notifications.Note(
                recipient_kind=kind, recipient_id=rid, topic="surveillance.signal", title=title, body=body,
                link=f"/surveillance/signals/{row.id}", dedupe_key=f"surveillance:signal:{row.id}:generated:{kind}"))
        name = registry_queries.names_of(session, orgs=[org])["org"].get(org, str(org))
        row.notified_at = now  # with the move: one update, one version
        _move(session, SYSTEM, row, S.NOTIFIED, now=now, note=f"→ {name}")
        return True


def remind_overdue(session: Session, now: datetime | None = None) -> int:
    """Signals still unverified 24 h after generation: one reminder each, to the CDC's desk
    and the responsible epidemiologist. Deadlines older than ``REMIND_WITHIN`` are left
    alone (a backfilled history is not news; the list still shows them overdue)."""
    now = now or utcnow()
    with transaction(session):
        reminded = exists().where(SignalEvent.signal_id == Signal.id, SignalEvent.actor == REMINDER_ACTOR)
        rows = list(session.scalars(select(Signal).where(
            Signal.status.in_([s.value for s in sd.UNVERIFIED]), Signal.verify_due_at < now,
            Signal.verify_due_at >= now - REMIND_WITHIN, ~reminded)
            .order_by(Signal.id).limit(1000).with_for_update(skip_locked=True)))
        for row in rows:
            title, body = _message(session, row, "overdue")
            for kind, rid in _reminder_recipients(session, row):
                notifications.notify(session, notifications.Note(
                    recipient_kind=kind, recipient_id=rid, topic="surveillance.signal_overdue", title=title,
                    body=body, link=f"/surveillance/signals/{row.id}",
                    dedupe_key=f"surveillance:signal:{row.id}:overdue:{kind}:{rid}"))
            session.add(SignalEvent(signal_id=row.id, from_status=row.status, to_status=None, actor=REMINDER_ACTOR,
                                    at=now, note="verification overdue: reminder sent"))
        session.flush()
        return len(rows)


def _desks(session: Session, row: Signal, org: int | None) -> list[tuple[str, int]]:
    """The CDC organisation's desk, and the county's public-health desk read by the
    epidemiologists whose grant is on the county (notifications' "division" recipient)."""
    out = [("org", org)] if org is not None else []
    with contextlib.suppress(NotFound):
        out.append(("division", registry_queries.division_by_code(session, row.county_code).id))
    return out


def _reminder_recipients(session: Session, row: Signal) -> list[tuple[str, int]]:
    out = _desks(session, row, county_cdc(session, row.county_code))
    if row.responsible:
        with contextlib.suppress(NotFound):
            out.append(("user", security.user_by_name(session, row.responsible).id))
    return out


# -- the CDC's response ------------------------------------------------------------------------------

def _move(session: Session, actor: Actor, row: Signal, target: S, *, now: datetime, note: str | None = None) -> None:
    was = row.status
    sd.check_transition(was, target)
    row.status = target.value
    if target is S.CLOSED:
        row.closed_at, row.open_key = now, None
    session.add(SignalEvent(signal_id=row.id, from_status=was, to_status=target.value, actor=actor.username, at=now,
                            note=note))
    session.flush()
    outbox.publish(session, "surveillance.signal_changed", {"signal_id": row.id, "from": was, "to": target.value})


def _load(session: Session, signal_id: int, expected_version: int | None) -> Signal:
    row = session.get(Signal, signal_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise NotFound("SURV-403", f"signal {signal_id} not found", {"field": "signal_id"})
    if expected_version is not None and row.version != expected_version:
        raise PreconditionFailed("SURV-402", f"signal {signal_id} is at version {row.version}, not"
                                 f" {expected_version}; read it again", {"version": row.version})
    return row


def _responsible(session: Session, username: str) -> str:
    try:
        user = security.user_by_name(session, username)
    except NotFound as exc:
        raise Invalid("SURV-405", f"responsible: no user named {username!r}", {"field": "responsible"}) from exc
    if not any(Perm.SIGNAL_MANAGE in g.perms for g in security.grants_of(session, user.id)):
        raise Invalid("SURV-405", f"responsible: {username} does not answer signals (no {Perm.SIGNAL_MANAGE} grant)",
                      {"field": "responsible"})
    return user.username


def _apply(session: Session, actor: Actor, row: Signal, action: str, *, outcome: str | None, note: str | None,
           responsible: str | None, now: datetime) -> None:
    if action == "note":
        session.add(SignalEvent(signal_id=row.id, from_status=row.status, to_status=None, actor=actor.username,
                                at=now, note=sd.check_note(note, required=True)))
        session.flush()
        return
    if action == "assign":
        if row.status == S.CLOSED.value:
            sd.check_transition(row.status, S.CLOSED)  # SURV-401: nothing follows a closed signal
        row.responsible = _responsible(session, (responsible or actor.username).strip())
        session.add(SignalEvent(signal_id=row.id, from_status=row.status, to_status=None, actor=actor.username,
                                at=now, note=f"responsible: {row.responsible}" + (f" — {note}" if note else "")))
        session.flush()
        return
    target = sd.target_of(action, outcome)
    text = sd.check_note(note, required=action in ("verify", "conclude"))
    sd.check_transition(row.status, target)
    if action == "verify":
        row.verified_at, row.verification = now, outcome
        row.responsible = row.responsible or (None if actor.system else actor.username)
    elif action == "investigate":
        row.investigation_at = now
    elif action == "conclude":
        row.concluded_at, row.conclusion = now, outcome
    _move(session, actor, row, target, now=now, note=text)


def act_on_signal(session: Session, actor: Actor, signal_id: int, *, action: str, outcome: str | None = None,
                  note: str | None = None, responsible: str | None = None, expected_version: int | None = None,
                  now: datetime | None = None) -> SignalDetail:
    """One step of the response: ``assign`` (responsible epidemiologist, default the actor),
    ``verify`` (outcome excluded | suspected; note required), ``investigate``, ``conclude``
    (outcome confirmed | excluded; note required), ``close``, or ``note``."""
    if action not in sd.ACTIONS:
        raise Invalid("SURV-400", f"action: one of {list(sd.ACTIONS)}; got {action!r}", {"field": "action"})
    now = now or utcnow()
    with transaction(session):
        row = _load(session, signal_id, expected_version)
        check_access(session, actor, row, AuditAction.UPDATE, {"action": action, "outcome": outcome})
        _apply(session, actor, row, action, outcome=outcome, note=note, responsible=responsible, now=now)
        return signal_detail(session, row, now=now)


def assign_signal(session: Session, actor: Actor, signal_id: int, *, responsible: str | None = None,
                  note: str | None = None, expected_version: int | None = None,
                  now: datetime | None = None) -> SignalDetail:
    return act_on_signal(session, actor, signal_id, action="assign", responsible=responsible, note=note,
                         expected_version=expected_version, now=now)


def verify_signal(session: Session, actor: Actor, signal_id: int, *, outcome: str, note: str,
                  expected_version: int | None = None, now: datetime | None = None) -> SignalDetail:
    """初步核实: excluded (→ verified_excluded) or suspected (→ suspected event)."""
    return act_on_signal(session, actor, signal_id, action="verify", outcome=outcome, note=note,
                         expected_version=expected_version, now=now)


def investigate_signal(session: Session, actor: Actor, signal_id: int, *, note: str | None = None,
                       expected_version: int | None = None, now: datetime | None = None) -> SignalDetail:
    """现场调查 of a suspected event."""
    return act_on_signal(session, actor, signal_id, action="investigate", note=note,
                         expected_version=expected_version, now=now)


def conclude_signal(session: Session, actor: Actor, signal_id: int, *, outcome: str, note: str,
                    expected_version: int | None = None, now: datetime | None = None) -> SignalDetail:
    """The investigation's finding: confirmed (an outbreak) or excluded."""
    return act_on_signal(session, actor, signal_id, action="conclude", outcome=outcome, note=note,
                         expected_version=expected_version, now=now)


def close_signal(session: Session, actor: Actor, signal_id: int, *, note: str | None = None,
                 expected_version: int | None = None, now: datetime | None = None) -> SignalDetail:
    return act_on_signal(session, actor, signal_id, action="close", note=note, expected_version=expected_version,
                         now=now)


def note_signal(session: Session, actor: Actor, signal_id: int, *, note: str,
                expected_version: int | None = None, now: datetime | None = None) -> SignalDetail:
    return act_on_signal(session, actor, signal_id, action="note", note=note, expected_version=expected_version,
                         now=now)
