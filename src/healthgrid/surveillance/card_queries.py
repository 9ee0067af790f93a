"""The read side of report cards (传染病报告卡): the stored card as a ``CardIn`` again
(decrypted), the view the API, the pages and FHIR show (masked for the reader), who may see
or change a card, and the audited reads ``get_card`` / ``search_cards``.

Storage (the agreement of the surveillance helpers): the personal fields are one AES-GCM
JSON document (``Card.personal_enc``, purpose ``surv.card.personal``), the ID number also a
blind index (``id_bidx``); what is counted by stays in columns; the rest of the card, with
no personal data, in ``Card.fields``. The card's own times are China Standard Time as the
doctor wrote them; the columns hold UTC.

Who sees a card (传染病信息报告管理规范 2015: 属地化管理, the county CDC reviews what is
reported in its area):
- the reporting facility's staff (``surveillance.report`` in scope of the reporting
  organisation);
- the CDC whose ``surveillance.review`` grant covers the reporting organisation (its
  county CDC, the city's above it) — they review and may correct or delete;
- the CDC of the county the patient lives in (the current-address code), read only: a case
  reported elsewhere is still theirs to count and investigate.
ID number and phone are masked (``110105********1234``) unless the reader holds
``pii.unmasked``; in lists the patient's name is masked too, as the patient index does.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import false, or_, select, true
from sqlalchemy.orm import Session

from ..db import transaction, utcnow
from ..errors import Invalid, NotFound
from ..registry import queries as registry_queries
from ..security import access, pii
from ..security.domain import Actor, AuditAction, Perm, ScopeKind, mask_id, mask_name, mask_phone
from .card_fields import CardIn
from .models import Card, CardEvent

CST = ZoneInfo("Asia/Shanghai")  # the card's own clock (agreement: times on the card are CST)
RESOURCE = "CaseReport"
PERSONAL_PURPOSE = "surv.card.personal"
ID_PURPOSE = "surv.card.id"
PERSONAL = ("patient_name", "parent_name", "id_type", "id_number", "id_holder", "phone", "work_unit", "school_class",
            "current_address", "household_address")
COLUMNS = ("card_number", "report_type", "sex", "birth_date", "age", "age_unit", "population_group",
           "current_address_code", "belongs_to", "disease", "subtype", "case_class", "case_class2", "onset_date",
           "death_date", "outbreak", "report_unit_code", "report_area_code", "doctor", "fill_date",
           "corrected_disease", "correction_reason", "delete_type", "delete_reason")
FIELDS = tuple(f.name for f in dataclasses.fields(CardIn) if f.name not in PERSONAL + COLUMNS + ("diagnosed_at",))
STATUSES = {"reported": ("待审核", "Awaiting review"), "reviewed": ("已审核", "Reviewed"),
            "returned": ("已退回", "Returned"), "deleted": ("已删除", "Deleted")}
OVERDUE = ("review", "report")
DATE_KINDS = ("reported", "diagnosed", "onset")
EVENT_KINDS = {"reported": ("初次报告", "First report"), "corrected": ("订正报告", "Correction"),
               "deleted": ("删除", "Deletion"), "reviewed": ("审核通过", "Review approved"),
               "returned": ("退回", "Returned")}


# -- the card's clock ------------------------------------------------------------------------------

def to_utc(local: datetime) -> datetime:
    """A time as written on the card (CST, naive) → UTC."""
    return (local if local.tzinfo else local.replace(tzinfo=CST)).astimezone(UTC)


def to_local(at: datetime) -> datetime:
    """A stored UTC time → the card's own clock (CST, naive)."""
    return at.astimezone(CST).replace(tzinfo=None)


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), CST).astimezone(UTC)


# -- the reporting organisation and doctor -------------------------------------------------------

def report_area(division_code: str) -> str:
    """The county-level report area of an organisation's division (GB/T 2260); above county
    level, the city's 市辖区 (xxxx01)."""
    code = division_code[:6]
    if code.endswith("0000"):
        return code[:2] + "0101"
    return code[:4] + "01" if code.endswith("00") else code


def org_codes(session: Session, org_id: int) -> dict[str, str]:
    org = registry_queries.organization_or_none(session, org_id)
    if org is None or not org.active:
        raise Invalid("SURV-307", f"report_org_id: no active organisation {org_id}", {"field": "report_org_id"})
    area = report_area(org.division.code)
    unit_area = org.division.code if org.division.code[:6] == area else area
    return {"report_unit_code": org.code, "report_unit_area_code": unit_area, "report_area_code": area}


def doctor_name(session: Session, actor: Actor) -> str | None:
    if actor.practitioner_id is not None:
        found = registry_queries.names_of(session, practitioners=[actor.practitioner_id])["practitioner"]
        if actor.practitioner_id in found:
            return found[actor.practitioner_id]
    return actor.extra.get("display_name")


# -- views ---------------------------------------------------------------------------------------

@dataclass
class EventView:
    at: datetime
    actor: str
    kind: str
    note: str | None
    detail: dict[str, Any]


@dataclass
class CardView:
    id: int
    card_number: str
    status: str
    report_type: str
    patient_id: int | None
    report_org_id: int | None
    report_org_name: str
    card: CardIn  # as written (CST times), ID number and phone masked for the reader
    supplementary: dict[str, Any]
    icd10: str | None  # the diagnosis the card was raised from (one click), if any
    practitioner_id: int | None  # the reporting doctor's registry record, if known
    county_code: str | None
    diagnosed_at: datetime
    reported_at: datetime
    report_due_at: datetime
    review_due_at: datetime
    reviewed_at: datetime | None
    reviewed_by: str | None
    review_note: str | None
    deleted_at: datetime | None
    source_kind: str | None
    source_ref: str | None
    created_by: str
    updated_at: datetime
    version: int
    masked: bool
    events: list[EventView] = field(default_factory=list)
    actions: frozenset[str] = frozenset()  # what the reader may do now: review, correct, delete
    replayed: bool = False

    @property
    def late_minutes(self) -> int:
        """How late the network report was (0 when in time; §5.2 2 h / 24 h from diagnosis)."""
        return max(0, int((self.reported_at - self.report_due_at).total_seconds() // 60))

    def review_overdue(self, now: datetime) -> bool:
        return self.status == "reported" and now > self.review_due_at


def card(session: Session, card_id: int, *, for_update: bool = False) -> Card:
    row = session.get(Card, card_id, with_for_update=for_update or None, populate_existing=for_update or None)
    if row is None:
        raise NotFound("SURV-300", f"report card {card_id} not found")
    return row


def personal_of(session: Session, row: Card) -> dict[str, Any]:
    return json.loads(pii.unseal(session, row.personal_enc, PERSONAL_PURPOSE) or "{}")


def card_in_of(session: Session, row: Card) -> CardIn:
    """The stored card as filled in, decrypted (for a correction, a view, FHIR)."""
    personal = personal_of(session, row)
    values: dict[str, Any] = {k: personal.get(k) for k in PERSONAL}
    values["id_holder"] = values["id_holder"] or "self"
    values.update({k: getattr(row, k) for k in COLUMNS})
    values.update({k: (row.fields or {}).get(k) for k in FIELDS})
    values["supplementary_card"] = bool(values["supplementary_card"])
    values["outbreak"] = bool(values["outbreak"])
    values["diagnosed_at"] = to_local(row.diagnosed_at)
    return CardIn(**values)


def _masked(c: CardIn, *, list_view: bool) -> CardIn:
    return dataclasses.replace(c, id_number=mask_id(c.id_number), phone=mask_phone(c.phone),
                               patient_name=mask_name(c.patient_name) if list_view else c.patient_name,
                               parent_name=mask_name(c.parent_name) if list_view else c.parent_name)


def views(session: Session, rows: list[Card], *, unmasked: bool, with_events: bool = False,
          list_view: bool = False) -> list[CardView]:
    if not rows:
        return []
    names = registry_queries.names_of(session, orgs=[r.report_org_id for r in rows if r.report_org_id])["org"]
    events: dict[int, list[EventView]] = {}
    if with_events:
        for e in session.scalars(select(CardEvent).where(CardEvent.card_id.in_([r.id for r in rows]))
                                 .order_by(CardEvent.id)):
            events.setdefault(e.card_id, []).append(EventView(e.at, e.actor, e.kind, e.note, dict(e.detail or {})))
    out = []
    for r in rows:
        c = card_in_of(session, r)
        extra = r.fields or {}
        out.append(CardView(
            id=r.id, card_number=r.card_number, status=r.status, report_type=r.report_type, patient_id=r.patient_id,
            report_org_id=r.report_org_id, report_org_name=names.get(r.report_org_id, ""),
            card=c if unmasked else _masked(c, list_view=list_view),
            supplementary=dict(extra.get("supplementary") or {}),
            icd10=extra.get("icd10"), practitioner_id=extra.get("practitioner_id"), county_code=r.county_code,
            diagnosed_at=r.diagnosed_at, reported_at=r.reported_at, report_due_at=r.report_due_at,
            review_due_at=r.review_due_at, reviewed_at=r.reviewed_at, reviewed_by=r.reviewed_by,
            review_note=r.review_note, deleted_at=r.deleted_at, source_kind=r.source_kind, source_ref=r.source_ref,
            created_by=r.created_by, updated_at=r.updated_at, version=r.version, masked=not unmasked,
            events=events.get(r.id, [])))
    return out


# -- who may see or change a card -----------------------------------------------------------------

def _county_division(session: Session, county_code: str | None) -> int | None:
    if not county_code:
        return None
    try:
        return registry_queries.division_by_code(session, county_code).id
    except NotFound:
        return None


def check_card(session: Session, actor: Actor, row: Card, action: AuditAction, *, write: bool = False,
               detail: dict | None = None) -> None:
    """Reporter, reviewing CDC, or (reading) the CDC of the patient's county; else refused
    (audited) as the reporter or the reviewer the actor is."""
    where = dict(resource_type=RESOURCE, resource_id=row.id, patient_id=row.patient_id, detail=detail)
    for perm in (Perm.CASE_REPORT, Perm.CASE_REVIEW):
        if row.report_org_id is not None and access.in_scope(session, actor, perm, row.report_org_id):
            access.check(session, actor, perm, action, org_id=row.report_org_id, **where)
            return
    county = None if write else _county_division(session, row.county_code)
    if county is not None and access.division_in_scope(session, actor, Perm.CASE_REVIEW, county):
        access.check(session, actor, Perm.CASE_REVIEW, action, division_id=county, **where)
        return
    perm = Perm.CASE_REVIEW if actor.can(Perm.CASE_REVIEW) else Perm.CASE_REPORT
    access.check(session, actor, perm, action, org_id=row.report_org_id or -1, **where)


def actions_on(session: Session, actor: Actor, row: Card) -> frozenset[str]:
    """What the reader may do to the card now (the use cases check again): the reviewing
    CDC reviews a card awaiting review; reporter and reviewer correct and delete a live card."""
    if row.status == "deleted" or row.report_org_id is None:
        return frozenset()
    review = access.in_scope(session, actor, Perm.CASE_REVIEW, row.report_org_id)
    write = review or access.in_scope(session, actor, Perm.CASE_REPORT, row.report_org_id)
    return frozenset({"review"} if review and row.status == "reported" else set()) | (
        frozenset({"correct", "delete"}) if write else frozenset())


def get_card(session: Session, actor: Actor, card_id: int) -> CardView:
    """One card with its event log and the reader's actions; an audited view."""
    with transaction(session):
        row = card(session, card_id)
        check_card(session, actor, row, AuditAction.VIEW)
        view = views(session, [row], unmasked=actor.can(Perm.PII_UNMASKED), with_events=True)[0]
        return dataclasses.replace(view, actions=actions_on(session, actor, row))


# -- searching -----------------------------------------------------------------------------------

@dataclass
class CardQuery:
    status: list[str] = field(default_factory=list)
    disease: str | None = None  # a NIDRIS disease code (0300) or subtype code (0302)
    county_code: str | None = None  # the patient's current-address county (6 digits)
    report_org_id: int | None = None
    patient_id: int | None = None
    since: date | None = None  # inclusive, a local (CST) day of ``date_kind``
    until: date | None = None  # inclusive
    date_kind: str = "reported"  # reported | diagnosed | onset
    onset_from: date | None = None  # a second range on the onset date (FHIR onset-date with recorded-date)
    onset_to: date | None = None
    overdue: str | None = None  # review: awaiting review past its deadline; report: reported late
    case_classes: list[str] = field(default_factory=list)
    delete_types: list[str] = field(default_factory=list)  # with status deleted (FHIR refuted / entered-in-error)


def _check_query(q: CardQuery) -> None:
    bad = [s for s in q.status if s not in STATUSES]
    for ok, name, why in ((not bad, "status", f"one of {sorted(STATUSES)}"),
                          (q.overdue in (None, *OVERDUE), "overdue", f"one of {list(OVERDUE)}"),
                          (q.date_kind in DATE_KINDS, "date_kind", f"one of {list(DATE_KINDS)}"),
                          (q.county_code is None or (q.county_code.isdigit() and len(q.county_code) == 6),
                           "county_code", "6 digits (GB/T 2260)"),
                          (not (q.since and q.until and q.since > q.until), "since", "the range starts after it ends")):
        if not ok:
            raise Invalid("SURV-310", f"{name}: {why}", {"field": name})


def _grant_prefixes(session: Session, actor: Actor) -> list[str]:
    """County-code prefixes of the actor's CDC division grants (province 2, city 4, county 6
    digits): the cards of patients living there."""
    ids = [g.scope_id for g in actor.grants_with(Perm.CASE_REVIEW) if g.scope_kind is ScopeKind.DIVISION and g.scope_id]
    digits = {"province": 2, "city": 4, "county": 6}
    return [d.code[:digits[d.level]] for d in registry_queries.divisions_by_ids(session, ids) if d.level in digits]


def _scope(session: Session, actor: Actor):
    """The cards the actor may list: their facilities' (reporter), their area's (CDC)."""
    if actor.system:
        return true()
    conds = []
    for perm in (Perm.CASE_REPORT, Perm.CASE_REVIEW):
        if not actor.grants_with(perm):
            continue
        orgs = access.scope_org_ids(session, actor, perm)
        if orgs is None:
            return true()
        if orgs:
            conds.append(Card.report_org_id.in_(sorted(orgs)))
    conds += [Card.county_code.startswith(p, autoescape=True) for p in _grant_prefixes(session, actor)]
    return or_(*conds) if conds else false()


def _range(stmt, column, low: date | None, high: date | None, *, local_days: bool):
    if low is not None:
        stmt = stmt.where(column >= (local_midnight(low) if local_days else low))
    if high is not None:
        stmt = stmt.where(column < local_midnight(high + timedelta(days=1)) if local_days else column <= high)
    return stmt


def _filters(stmt, q: CardQuery, now: datetime):
    if q.status:
        stmt = stmt.where(Card.status.in_(q.status))
    if q.disease:
        stmt = stmt.where(or_(Card.disease == q.disease, Card.subtype == q.disease))
    for column, value in ((Card.county_code, q.county_code), (Card.report_org_id, q.report_org_id),
                          (Card.patient_id, q.patient_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    column = {"reported": Card.reported_at, "diagnosed": Card.diagnosed_at, "onset": Card.onset_date}[q.date_kind]
    stmt = _range(stmt, column, q.since, q.until, local_days=q.date_kind != "onset")
    stmt = _range(stmt, Card.onset_date, q.onset_from, q.onset_to, local_days=False)
    if q.overdue == "review":
        stmt = stmt.where(Card.status == "reported", Card.review_due_at < now)
    elif q.overdue == "report":
        stmt = stmt.where(Card.status != "deleted", Card.reported_at > Card.report_due_at)
    if q.case_classes:
        stmt = stmt.where(Card.case_class.in_(q.case_classes))
    if q.delete_types:
        stmt = stmt.where(Card.delete_type.in_(q.delete_types))
    return stmt


def search_cards(session: Session, actor: Actor, q: CardQuery, *, offset: int = 0, limit: int = 50,
                 now: datetime | None = None) -> list[CardView]:
    """Cards in the actor's scope matching ``q``: the review queue (oldest deadline first),
    the overdue lists, a facility's own cards. Audited as a search (criteria, not values)."""
    now = now or utcnow()
    _check_query(q)
    with transaction(session):
        perm = Perm.CASE_REVIEW if actor.can(Perm.CASE_REVIEW) else Perm.CASE_REPORT
        if q.report_org_id is not None and not access.in_scope(session, actor, perm, q.report_org_id):
            perm = Perm.CASE_REPORT
        used = sorted(k for k, v in dataclasses.asdict(q).items() if v not in (None, [], "reported"))
        access.check(session, actor, perm, AuditAction.SEARCH, resource_type=RESOURCE, org_id=q.report_org_id,
                     detail={"criteria": used})
        stmt = _filters(select(Card).where(_scope(session, actor)), q, now)
        queue = q.overdue == "review" or q.status == ["reported"]
        order = (Card.review_due_at, Card.id) if queue else (Card.reported_at.desc(), Card.id.desc())
        rows = list(session.scalars(stmt.order_by(*order).offset(offset).limit(min(max(limit, 0), 500))))
        return views(session, rows, unmasked=actor.can(Perm.PII_UNMASKED), list_view=True)
