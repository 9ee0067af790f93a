"""The report card after its first report: correction (订正报告), deletion (删除) and the county
CDC's review (审核), each locked, checked, audited, validated and logged (``card_store``).

- A correction changes any field of the card (the disease too) with its reason; it is
  validated again as a correction, keeps the disease as first reported as 订正病名, and sends
  the card back to review with new clocks. A returned card is corrected this way. A change
  of disease is published again (``surveillance.card_reported``).
- A deletion needs a delete type and a reason (SURV-205/206); a deleted card counts nowhere
  and changes no more.
- The review is the CDC's whose ``surveillance.review`` grant covers the reporting
  organisation: approve (reviewed) or return with a note (returned; the reporting desk is
  told through the notifications inbox, without personal data).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from ..db import transaction, utcnow
from ..errors import Conflict
from ..notifications import service as notifications
from ..security import access
from ..security.domain import Actor, AuditAction, Perm
from . import card_queries as q
from . import card_store as st
from .card_fields import CardIn, Problem
from .card_queries import CardView
from .cards import invalid
from .models import Card

FIXED = ("card_number", "report_type", "corrected_disease", "correction_reason", "delete_type", "delete_reason",
         "report_area_code", "report_unit_code", "report_unit_area_code")
CORRECTABLE = tuple(f.name for f in dataclasses.fields(CardIn) if f.name not in FIXED)


def _typed(name: str, value: Any) -> Any:
    """A correction's value, checked against the card field's type (the API parsed it; a
    library caller may not have)."""
    kind = {f.name: str(f.type) for f in dataclasses.fields(CardIn)}[name]
    ok = (value is None and "None" in kind) or (
        "datetime" in kind and isinstance(value, datetime)) or (
        "datetime" not in kind and "date" in kind and type(value) is date) or (
        kind.startswith("int") and type(value) is int) or (kind == "bool" and type(value) is bool) or (
        kind.startswith("str") and isinstance(value, str) and len(value) <= 200)
    if not ok:
        raise st.bad(name, f"expected {kind}")
    return value


def _corrected(row: Card, current: CardIn, changes: Mapping[str, Any], reason: str) -> CardIn:
    unknown = sorted(set(changes) - set(CORRECTABLE))
    if unknown:
        raise st.bad(unknown[0], f"not a correctable field of the card; correctable: {', '.join(CORRECTABLE)}")
    values = {k: _typed(k, v) for k, v in changes.items()}
    at = values.get("diagnosed_at")
    if at is not None and at.tzinfo is not None:
        values["diagnosed_at"] = q.to_local(at)
    return dataclasses.replace(current, **values, report_type="correction", correction_reason=reason,
                               corrected_disease=row.corrected_disease or row.disease)


def correct_card(session: Session, actor: Actor, card_id: int, *, changes: Mapping[str, Any], reason: str,
                 supplementary: Mapping[str, Any] | None = None, expected_version: int | None = None,
                 now: datetime | None = None) -> CardView:
    """订正报告: change fields (the disease too), with the reason; revalidated as a correction.
    The disease as first reported is kept as 订正病名. The card goes back to review."""
    now = now or utcnow()
    reason = st.text(reason, "correction_reason", required=True)
    with transaction(session):
        row = st.load(session, card_id, expected_version)
        q.check_card(session, actor, row, AuditAction.UPDATE, write=True, detail={"use_case": "correction"})
        if row.status == "deleted":
            raise Conflict("SURV-304", f"card {row.card_number} is deleted; it can no longer be corrected")
        current = q.card_in_of(session, row)
        corrected = _corrected(row, current, changes, reason)
        old_supp = dict((row.fields or {}).get("supplementary") or {})
        supp = old_supp if supplementary is None else dict(supplementary)
        if supplementary is not None:
            corrected = dataclasses.replace(corrected, supplementary_card=bool(supp))
        changed = sorted(k for k in changes if getattr(current, k) != getattr(corrected, k))
        changed += ["supplementary"] if supp != old_supp else []
        if not changed:
            raise st.bad("changes", "a correction changes at least one field of the card", "SURV-311")
        problems = st.problems(corrected, supp, now)
        if problems:
            raise invalid(problems)
        was, old_disease = row.status, row.disease
        # The diagnosis code it was raised from stays only while the disease does.
        kept = ("_digest", "practitioner_id", "new_episode") + (("icd10",) if corrected.disease == row.disease else ())
        extra = {k: v for k, v in (row.fields or {}).items() if k in kept}
        st.store(session, row, corrected, now=now, extra={**extra, "supplementary": supp})
        row.reviewed_at = row.reviewed_by = row.review_note = None
        st.event(session, actor, row, "corrected", now, note=reason,
                 detail={"fields": changed, "from_status": was, "disease": [old_disease, row.disease]})
        session.flush()
        if row.disease != old_disease:
            st.publish(session, row)
        return st.view(session, actor, row)


def delete_card(session: Session, actor: Actor, card_id: int, *, delete_type: str, reason: str,
                expected_version: int | None = None, now: datetime | None = None) -> CardView:
    """删除: with a delete type and the reason (card rules SURV-205/206). A deleted card
    counts nowhere and changes no more."""
    now = now or utcnow()
    with transaction(session):
        row = st.load(session, card_id, expected_version)
        q.check_card(session, actor, row, AuditAction.DELETE, write=True, detail={"use_case": "deletion"})
        if row.status == "deleted":
            raise Conflict("SURV-304", f"card {row.card_number} is already deleted")
        probe = dataclasses.replace(q.card_in_of(session, row), report_type="deletion", delete_type=delete_type,
                                    delete_reason=reason)
        problems = [p for p in st.problems(probe, {}, now) if p.field in ("delete_type", "delete_reason")]
        if not problems and len(reason.strip()) > 500:
            problems = [Problem("SURV-206", "delete_reason", "删除原因最长500个字",
                                "delete reason: at most 500 characters")]
        if problems:
            raise invalid(problems)
        was = row.status
        row.status, row.report_type, row.deleted_at, row.updated_at = "deleted", "deletion", now, now
        row.delete_type, row.delete_reason = delete_type, reason.strip()
        st.event(session, actor, row, "deleted", now, note=row.delete_reason,
                 detail={"delete_type": delete_type, "from_status": was})
        session.flush()
        return st.view(session, actor, row)


def review_card(session: Session, actor: Actor, card_id: int, *, decision: str, note: str | None = None,
                expected_version: int | None = None, now: datetime | None = None) -> CardView:
    """The county CDC's review (审核): approve (reviewed) or return with a note (returned; the
    reporting facility's desk is told, and corrects it)."""
    now = now or utcnow()
    if decision not in ("approve", "return"):
        raise st.bad("decision", "approve or return")
    note = st.text(note, "note", required=decision == "return")
    with transaction(session):
        row = st.load(session, card_id, expected_version)
        access.check(session, actor, Perm.CASE_REVIEW, AuditAction.UPDATE, resource_type=q.RESOURCE,
                     resource_id=row.id, org_id=row.report_org_id or -1, patient_id=row.patient_id,
                     detail={"use_case": "review", "decision": decision})
        if row.status != "reported":
            raise Conflict("SURV-304", f"card {row.card_number} is {row.status}; only a card awaiting review"
                           " (reported) is reviewed", {"status": row.status})
        overdue = now > row.review_due_at
        row.status = "reviewed" if decision == "approve" else "returned"
        row.reviewed_at, row.reviewed_by, row.review_note, row.updated_at = now, actor.username, note, now
        st.event(session, actor, row, row.status, now, note=note, detail={"review_overdue": overdue})
        session.flush()
        if decision == "return" and row.report_org_id is not None:
            _tell_returned(session, row)
        return st.view(session, actor, row)


def _tell_returned(session: Session, row: Card) -> None:
    """The reporting facility's desk learns its card came back (no personal data in the note)."""
    notifications.notify(session, notifications.Note(
        "org", row.report_org_id, "surveillance.card_returned",
        title={"zh": f"传染病报告卡{row.card_number}被退回", "en": f"Report card {row.card_number} was returned"},
        body={"zh": f"审核意见：{row.review_note}", "en": f"Review note: {row.review_note}"},
        link=f"/surveillance/cards/{row.id}", dedupe_key=f"surv-card-returned-{row.id}-{row.version}"))
