"""The match review queue, merge and unmerge (§10.2: "manual review for merges; merges and
unmerges are audited events").

A merge moves nothing: the loser keeps its row and identifiers, is marked inactive and
points to the survivor (``replaced_by``), and the merge is logged; ``resolve_patient_id``
then answers with the survivor for every context. Unmerging clears the pointer, so the two
records are exactly what they were. The pointer is set by a conditional UPDATE (only while
both records are active), so two stewards merging at once cannot chain a record twice.

Access: ``patient.merge`` over the organisation (or, failing that, the division) each record
was registered at — the steward of a county decides its county's pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from .. import outbox
from ..db import transaction, utcnow
from ..errors import Conflict, Invalid, NotFound
from ..security import access
from ..security.domain import Actor, AuditAction, Perm
from . import domain as d
from . import queries
from .matching import patient_settings
from .models import MatchReview, Merge, Patient, PatientIdentifier
from .queries import PatientView

MIN_REASON = 4
MIN_BATCH_TRAINING = 5_000  # records; below, Splink's EM has too few pairs to learn from


@dataclass
class ReviewView:
    id: int
    status: str
    source: str
    probability: float
    weight: float
    levels: dict[str, str]
    weights: dict[str, float]
    left: PatientView  # the newer record
    right: PatientView  # the candidate it may duplicate
    decided_by: str | None
    note: str | None


@dataclass(frozen=True)
class ReviewRow:
    id: int
    status: str
    source: str
    probability: float
    patient_id: int
    candidate_id: int
    left_name: str
    right_name: str


def queue_review(session: Session, a: int, b: int, comparison: d.Comparison, *, source: str) -> MatchReview:
    """Queue the pair (once, whichever record raised it) for a person to decide."""
    high, low = max(a, b), min(a, b)
    review = session.scalar(select(MatchReview).where(MatchReview.patient_id == high,
                                                      MatchReview.candidate_id == low))
    if review is None:
        review = MatchReview(patient_id=high, candidate_id=low, source=source, status="open")
        session.add(review)
    if review.status == "open":
        review.probability = comparison.probability
        review.weight = comparison.weight
        review.levels = {"levels": comparison.levels, "weights": comparison.weights}
    session.flush()
    return review


def _check(session: Session, actor: Actor, patient: Patient, action: AuditAction) -> None:
    access.check(session, actor, Perm.PATIENT_MERGE, action, resource_type="Patient", resource_id=patient.id,
                 patient_id=patient.id, org_id=patient.registered_org_id,
                 division_id=patient.division_id if patient.registered_org_id is None else None)


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if len(text) < MIN_REASON:
        raise Invalid("PAT-030", f"reason: say why, in at least {MIN_REASON} characters", {"field": "reason"})
    return text


def merge_patients(session: Session, actor: Actor, *, survivor_id: int, loser_id: int, reason: str,
                   review_id: int | None = None) -> int:
    """Merge ``loser_id`` into ``survivor_id``; returns the merge's id."""
    with transaction(session):
        text = _reason(reason)
        if survivor_id == loser_id:
            raise Invalid("PAT-031", "a record cannot be merged into itself", {"field": "loser_id"})
        first, second = sorted((survivor_id, loser_id))
        locked = {first: _lock(session, first), second: _lock(session, second)}
        survivor, loser = locked[survivor_id], locked[loser_id]
        for p in (survivor, loser):
            _check(session, actor, p, AuditAction.MERGE)
        if survivor.replaced_by is not None or loser.replaced_by is not None:
            raise Conflict("PAT-032", f"patient {loser_id} or {survivor_id} was already merged into another record")
        _refuse_two_people(session, survivor_id, loser_id)
        loser.replaced_by, loser.active, loser.updated_at = survivor_id, False, utcnow()
        merge = Merge(survivor_id=survivor_id, loser_id=loser_id, review_id=review_id, reason=text,
                      merged_by=actor.username)
        session.add(merge)
        session.flush()
        _close_reviews(session, survivor_id, loser_id, "merged", actor, text)
        outbox.publish(session, "patient.merged", {"survivor_id": survivor_id, "loser_id": loser_id,
                                                   "merge_id": merge.id})
        return merge.id


def _lock(session: Session, patient_id: int) -> Patient:
    """The row, locked until the end of the transaction (PostgreSQL; SQLite serialises
    writers), re-read so a merge committed meanwhile is seen. Callers lock the lower id
    first, so two stewards merging the same pair in opposite directions cannot deadlock
    into a cycle: the second sees the first's pointer and stops."""
    patient = session.scalar(select(Patient).where(Patient.id == patient_id).with_for_update()
                             .execution_options(populate_existing=True))
    if patient is None:
        raise NotFound("PAT-010", f"no patient {patient_id}")
    return patient


def _refuse_two_people(session: Session, a: int, b: int) -> None:
    """Two different resident ID numbers are two people: such a pair is never merged."""
    rows = session.execute(select(PatientIdentifier.patient_id, PatientIdentifier.value_bidx).where(
        PatientIdentifier.patient_id.in_([a, b]), PatientIdentifier.kind == "resident_id")).all()
    if len({bidx for _, bidx in rows}) > 1:
        raise Conflict("PAT-033", f"patients {a} and {b} have different resident ID numbers: they are two people")


def unmerge_patients(session: Session, actor: Actor, *, merge_id: int, reason: str) -> None:
    """Undo a merge: the loser is active again, exactly as it was."""
    with transaction(session):
        text = _reason(reason)
        merge = session.get(Merge, merge_id)
        if merge is None:
            raise NotFound("PAT-034", f"no merge {merge_id}")
        if merge.unmerged_at is not None:
            raise Conflict("PAT-035", f"merge {merge_id} was already undone")
        first, second = sorted((merge.survivor_id, merge.loser_id))
        locked = {first: _lock(session, first), second: _lock(session, second)}
        loser = locked[merge.loser_id]
        for p in locked.values():
            _check(session, actor, p, AuditAction.UNMERGE)
        if loser.replaced_by == merge.survivor_id:
            loser.replaced_by, loser.active, loser.updated_at = None, True, utcnow()
        else:
            raise Conflict("PAT-035", f"merge {merge_id}: patient {merge.loser_id} no longer points to"
                                      f" {merge.survivor_id}")
        merge.unmerged_at, merge.unmerged_by, merge.unmerge_reason = utcnow(), actor.username, text
        if merge.review_id is not None:
            review = session.get(MatchReview, merge.review_id)
            if review is not None:
                review.status, review.note = "distinct", f"merge {merge_id} undone: {text}"
        outbox.publish(session, "patient.unmerged", {"survivor_id": merge.survivor_id, "loser_id": merge.loser_id,
                                                     "merge_id": merge_id})


def _close_reviews(session: Session, a: int, b: int, status: str, actor: Actor, note: str) -> None:
    hi, lo = max(a, b), min(a, b)
    for review in session.scalars(select(MatchReview).where(
            MatchReview.patient_id == hi, MatchReview.candidate_id == lo, MatchReview.status == "open")):
        review.status, review.decided_by, review.decided_at, review.note = status, actor.username, utcnow(), note


def decide_review(session: Session, actor: Actor, review_id: int, *, decision: str, note: str,
                  survivor_id: int | None = None) -> int | None:
    """``merge`` (the older record survives unless ``survivor_id`` says otherwise) or
    ``distinct``; returns the merge id when merged."""
    with transaction(session):
        review = session.get(MatchReview, review_id)
        if review is None:
            raise NotFound("PAT-036", f"no review {review_id}")
        if review.status != "open":
            raise Conflict("PAT-037", f"review {review_id} was already decided ({review.status})")
        pair = {review.patient_id, review.candidate_id}
        if decision == "merge":
            keep = survivor_id if survivor_id is not None else review.candidate_id
            if keep not in pair:
                raise Invalid("PAT-038", "survivor_id: choose one of the two records", {"field": "survivor_id"})
            (loser,) = pair - {keep}
            return merge_patients(session, actor, survivor_id=keep, loser_id=loser, reason=note, review_id=review_id)
        if decision != "distinct":
            raise Invalid("PAT-039", "decision: merge or distinct", {"field": "decision"})
        text = _reason(note)
        for pid in pair:
            _check(session, actor, queries.get(session, pid), AuditAction.UPDATE)
        review.status, review.decided_by, review.decided_at, review.note = "distinct", actor.username, utcnow(), text
        return None


def get_review(session: Session, actor: Actor, review_id: int) -> ReviewView:
    with transaction(session):
        review = session.get(MatchReview, review_id)
        if review is None:
            raise NotFound("PAT-036", f"no review {review_id}")
        left, right = queries.get(session, review.patient_id), queries.get(session, review.candidate_id)
        for p in (left, right):
            _check(session, actor, p, AuditAction.VIEW)
        unmasked = actor.can(Perm.PII_UNMASKED)
        levels = review.levels or {}
        return ReviewView(review.id, review.status, review.source, review.probability, review.weight,
                          levels.get("levels", {}), levels.get("weights", {}),
                          queries.view(session, left, unmasked=unmasked),
                          queries.view(session, right, unmasked=unmasked),
                          review.decided_by, review.note)


def list_reviews(session: Session, actor: Actor, *, status: str = "open", offset: int = 0,
                 limit: int = 20) -> tuple[int, list[ReviewRow]]:
    """The queue in the steward's scope, most probable first."""
    with transaction(session):
        access.check(session, actor, Perm.PATIENT_MERGE, AuditAction.SEARCH, resource_type="MatchReview",
                     detail={"status": status})
        orgs = access.scope_org_ids(session, actor, Perm.PATIENT_MERGE)
        left, right = Patient.__table__.alias("l"), Patient.__table__.alias("r")
        stmt = (select(MatchReview, left.c.name, right.c.name)
                .join(left, left.c.id == MatchReview.patient_id).join(right, right.c.id == MatchReview.candidate_id)
                .where(MatchReview.status == status))
        if orgs is not None:
            stmt = stmt.where(or_(left.c.registered_org_id.in_(orgs), and_(left.c.registered_org_id.is_(None),
                                                                             right.c.registered_org_id.in_(orgs))))
        rows = session.execute(stmt.order_by(MatchReview.probability.desc(), MatchReview.id)
                               .offset(offset).limit(limit + 1)).all()
        items = [ReviewRow(r.id, r.status, r.source, r.probability, r.patient_id, r.candidate_id, ln, rn)
                 for r, ln, rn in rows[:limit]]
        return offset + len(rows), items


def list_merges(session: Session, actor: Actor, patient_id: int) -> list[Merge]:
    """Merges in which the record took part, newest first (for the patient page)."""
    with transaction(session):
        _check(session, actor, queries.get(session, patient_id), AuditAction.VIEW)
        return list(session.scalars(select(Merge).where(or_(Merge.survivor_id == patient_id,
                                                            Merge.loser_id == patient_id))
                                    .order_by(Merge.id.desc())))


@dataclass
class DedupeReport:
    records: int
    pairs: int  # scored at or above the review threshold
    queued: int  # new open reviews
    already_known: int  # pairs already reviewed or queued
    timings: dict[str, float]
    prior: float


def dedupe_index(session: Session, actor: Actor, *, progress=None) -> DedupeReport:
    """Batch de-duplication of the whole index (after an import): Splink scores the candidate
    pairs of all active records (linkage.py); each pair at or above the review threshold is
    queued for a steward. Nothing is merged without a person's decision (§10.2)."""
    import pandas as pd

    from . import linkage  # Splink and DuckDB load only when a batch runs, not with every server

    with transaction(session):
        access.check(session, actor, Perm.PATIENT_MERGE, AuditAction.SEARCH, resource_type="MatchReview",
                     detail={"operation": "dedupe"})
        rid = PatientIdentifier.__table__.alias("rid")
        rows = session.execute(
            select(Patient.id, Patient.name, Patient.name_key, Patient.sex, Patient.birth_date, rid.c.value_bidx,
                   Patient.phone_bidx, Patient.division_id, Patient.township_id)
            .outerjoin(rid, and_(rid.c.patient_id == Patient.id, rid.c.kind == "resident_id"))
            .where(Patient.replaced_by.is_(None))).all()
    frame = pd.DataFrame(rows, columns=list(linkage.INPUT_COLUMNS))
    cfg = patient_settings(session)
    if len(frame) < MIN_BATCH_TRAINING:
        # Too few records for EM to learn from: score each record's blocks with the online
        # matcher's model instead (the same Fellegi-Sunter comparisons, default parameters).
        pairs, timings, prior = _score_with_online_model(session, frame), {}, cfg.prior
    else:
        result = linkage.dedupe(frame, link_threshold=cfg.link_threshold, review_threshold=cfg.review_threshold,
                                progress=progress)
        pairs = [(int(p.record_id_l), int(p.record_id_r), {f: str(getattr(p, f)) for f in linkage.FIELDS},
                  float(p.match_weight), float(p.match_probability)) for p in result.pairs.itertuples(index=False)]
        timings, prior = result.timings, result.prior
    queued = known = 0
    with transaction(session):
        for a, b, levels, weight, probability in pairs:
            existing = session.scalar(select(MatchReview.id).where(MatchReview.patient_id == max(a, b),
                                                                   MatchReview.candidate_id == min(a, b)))
            if existing is not None:
                known += 1
                continue
            queue_review(session, a, b, d.Comparison(levels, {}, weight, probability), source="batch")
            queued += 1
    return DedupeReport(len(frame), len(pairs), queued, known, timings, prior)


def _score_with_online_model(session: Session, frame) -> list[tuple[int, int, dict, float, float]]:
    from .matching import Probe, candidates

    seen: dict[tuple[int, int], tuple[int, int, dict, float, float]] = {}
    for row in frame.itertuples(index=False):
        record = d.MatchRecord(row.name, row.name_pinyin, row.sex, row.birth_date, row.id_key, row.phone_key,
                               row.village_id, row.township_id)
        probe = Probe(record, row.name_pinyin, row.birth_date.year if row.birth_date else None)
        for cand in candidates(session, probe, exclude=int(row.record_id)):
            if cand.comparison.decision in ("link", "review"):
                pair = (min(row.record_id, cand.patient_id), max(row.record_id, cand.patient_id))
                seen.setdefault(pair, (*pair, cand.comparison.levels, cand.comparison.weight,
                                       cand.comparison.probability))
    return list(seen.values())
