"""The recognition decision at order time (互认判定): which of the patient's prior results of the
ordered item must be recognised instead of repeating the test, and why each other one is not.
Pure: facts in (catalogue, EQA records, prior results, now), a loggable value object out.

Rules (../shared/specs/domain-rules.md §4, 国卫医发〔2022〕6号 [V]):

- §4.5 a prior result is recognisable when the item is on the recognised list of the ordering
  organisation's region at its level; the issuing lab passed EQA for the item in the year of
  the report; it carries the HR mark (national, or a regional one the ordering region accepts,
  issued inside that region); it is within the item's validity; the levels fit: same level
  mutual, a lower level accepts a higher one, a higher accepting a lower one is a local option
  (Inner Mongolia scheme [V]);
- Art. 2 [V]: the physician's diagnostic conclusion is never recognised (only images and data);
- only a released result (final, or corrected/amended after release) can stand in for a test;
- §4.3: the doctor may still repeat with one of the six national reasons or an enabled local
  one (``domain.make_override``); §4.5: every decision is logged with the reasons, the physician
  and whether the patient was informed — ``Decision.as_log()`` is that record, and its outcome
  feeds the repeat-test measures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from ..errors import Invalid
from .catalogue import Catalogue, Item
from .domain import (
    FINAL_STATUSES,
    LOCAL_REASONS,
    NATIONAL_MARK,
    STAR_MARK,
    STATUSES,
    EqaFacts,
    Override,
    age_days,
    aware,
    level_index,
    local_day,
)


class Why(StrEnum):
    """Why a prior result is not recognised (stable codes for the log and the measures)."""

    NOT_IN_CATALOGUE = "not_in_catalogue"
    NOT_RECOGNISED_AT_LEVEL = "not_recognised_at_level"
    CONCLUSION = "conclusion_not_recognisable"
    NOT_FINAL = "not_final"
    MARK_MISSING = "mark_missing"
    MARK_NOT_ACCEPTED = "mark_not_accepted"
    SCOPE = "scope"
    NO_EQA_RECORD = "no_eqa_record"
    LAB_FAILED_EQA = "lab_failed_eqa"
    EXPIRED = "expired"
    REPORTED_AFTER_NOW = "reported_after_now"


class Outcome(StrEnum):
    RECOGNISED = "recognised"  # a recognisable result stands in: the repeat is avoided
    REPEAT_WITH_REASON = "repeat_with_reason"  # recognisable, repeated anyway under an exception
    REPEAT_NO_PRIOR = "repeat_no_prior"  # no prior result of the item
    REPEAT_NOT_RECOGNISABLE = "repeat_not_recognisable"  # prior results, none recognisable
    NOT_APPLICABLE = "not_applicable"  # the item is not on the list for this region and level


@dataclass(frozen=True)
class Order:
    """The ordered item and who orders it."""

    item: str
    org: str
    level: str
    region: str  # GB/T 2260 code of the ordering organisation's division
    physician: str | None = None


@dataclass(frozen=True)
class PriorResult:
    """One of the patient's earlier results (a report or a study), as the timeline holds it."""

    id: str
    item: str
    org: str
    level: str
    region: str
    lab: str  # whose EQA counts: the issuing organisation's lab or a contracted lab
    reported_at: datetime
    mark: str | None
    status: str  # FHIR ObservationStatus / DiagnosticReport status
    conclusion: bool = False  # the physician's diagnostic conclusion rather than images or data


@dataclass(frozen=True)
class Policy:
    """Deployment choices; None means "as the region's list says"."""

    upper_accepts_lower: bool | None = None
    require_eqa: bool = True
    eqa_previous_year: bool = False  # accept last year's pass until this year's round reports
    local_reasons: tuple[str, ...] = tuple(str(r) for r in LOCAL_REASONS)


@dataclass(frozen=True)
class Reason:
    code: Why
    detail: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"code": str(self.code), **self.detail}


@dataclass(frozen=True)
class Candidate:
    """A recognisable result: where, when, and until when it stays valid."""

    result: PriorResult
    age_days: int
    validity_days: int | None
    valid_until: date | None  # last calendar day it can be recognised (None: no limit)

    def as_dict(self) -> dict[str, Any]:
        r = self.result
        return {"result": r.id, "org": r.org, "lab": r.lab, "level": r.level, "region": r.region,
                "reported_at": r.reported_at.isoformat(), "mark": r.mark, "age_days": self.age_days,
                "validity_days": self.validity_days,
                "valid_until": self.valid_until.isoformat() if self.valid_until else None}


@dataclass(frozen=True)
class Rejection:
    result: PriorResult
    reasons: tuple[Reason, ...]

    def as_dict(self) -> dict[str, Any]:
        r = self.result
        return {"result": r.id, "org": r.org, "lab": r.lab, "reported_at": r.reported_at.isoformat(),
                "reasons": [x.as_dict() for x in self.reasons]}


@dataclass(frozen=True)
class Decision:
    """The decision for one order, ready to be logged."""

    outcome: Outcome
    order: Order
    decided_at: datetime
    catalogue_version: str
    recognisable: tuple[Candidate, ...]  # best first
    not_recognisable: tuple[Rejection, ...]
    order_reasons: tuple[Reason, ...] = ()
    price_cny: float | None = None
    override: Override | None = None

    @property
    def best(self) -> Candidate | None:
        return self.recognisable[0] if self.recognisable else None

    @property
    def recognisable_existed(self) -> bool:
        return bool(self.recognisable)

    @property
    def repeated(self) -> bool:
        return self.outcome is not Outcome.RECOGNISED

    @property
    def cost_avoided_cny(self) -> float:
        return (self.price_cny or 0.0) if self.outcome is Outcome.RECOGNISED else 0.0

    def as_log(self) -> dict[str, Any]:
        o = self.order
        return {"outcome": str(self.outcome), "item": o.item, "org": o.org, "level": o.level, "region": o.region,
                "physician": (self.override.physician if self.override else o.physician),
                "decided_at": self.decided_at.isoformat(), "catalogue_version": self.catalogue_version,
                "order_reasons": [r.as_dict() for r in self.order_reasons],
                "recognisable": [c.as_dict() for c in self.recognisable],
                "not_recognisable": [r.as_dict() for r in self.not_recognisable],
                "override": self.override.as_dict() if self.override else None,
                "patient_informed": self.override.patient_informed if self.override else None,
                "price_cny": self.price_cny, "cost_avoided_cny": self.cost_avoided_cny}


def decide(order: Order, priors: Iterable[PriorResult], *, catalogue: Catalogue, eqa: EqaFacts, now: datetime,
           policy: Policy | None = None, override: Override | None = None) -> Decision:
    """Decide for ``order`` over the patient's ``priors`` (results of other items are ignored).
    When the item itself is not recognised in the region at the level, every prior result carries
    that one reason and no other rule is looked at."""
    policy = policy or Policy()
    aware(now, "now")
    level_index(order.level, "order.level")
    item = catalogue.find(order.item)
    order_reasons = _order_reasons(order, item, catalogue)
    same = [p for p in priors if p.item == order.item]
    candidates: list[Candidate] = []
    rejections: list[Rejection] = []
    for p in same:
        reasons = list(order_reasons)
        if item is not None and not order_reasons:
            reasons += _result_reasons(p, order, item, catalogue, eqa, now, policy)
        if reasons:
            rejections.append(Rejection(p, tuple(reasons)))
        else:
            candidates.append(_candidate(p, item, order, catalogue, now))
    candidates.sort(key=lambda c: (-c.result.reported_at.timestamp(), -level_index(c.result.level), c.result.id))
    outcome = (Outcome.NOT_APPLICABLE if order_reasons else Outcome.REPEAT_NO_PRIOR if not same
               else Outcome.RECOGNISED if candidates else Outcome.REPEAT_NOT_RECOGNISABLE)
    decision = Decision(outcome=outcome, order=order, decided_at=now, catalogue_version=catalogue.version,
                        recognisable=tuple(candidates), not_recognisable=tuple(rejections),
                        order_reasons=tuple(order_reasons),
                        price_cny=catalogue.price_cny(item.code, order.region) if item else None)
    return apply_override(decision, override) if override is not None else decision


def apply_override(decision: Decision, override: Override) -> Decision:
    """The doctor repeats anyway (§4.3): a recognised decision becomes repeat_with_reason; for
    any other outcome the repeat was allowed already and the reason is recorded beside it."""
    if not isinstance(override, Override):
        raise Invalid("RES-011", "an override is built with make_override(reason, ...)", {"field": "override"})
    outcome = Outcome.REPEAT_WITH_REASON if decision.outcome is Outcome.RECOGNISED else decision.outcome
    return replace(decision, outcome=outcome, override=override)


# -- the rules -----------------------------------------------------------------------------------

def _order_reasons(order: Order, item: Item | None, cat: Catalogue) -> list[Reason]:
    if item is None:
        return [Reason(Why.NOT_IN_CATALOGUE, {"item": order.item, "catalogue_version": cat.version})]
    if order.item not in cat.recognised_items(order.region, order.level):
        lists = [r.code for r in cat.regions_for(order.region)]
        return [Reason(Why.NOT_RECOGNISED_AT_LEVEL, {"region": order.region, "level": order.level, "lists": lists})]
    return []


def _result_reasons(p: PriorResult, order: Order, item: Item, cat: Catalogue, eqa: EqaFacts,
                    now: datetime, policy: Policy) -> list[Reason]:
    aware(p.reported_at, "prior.reported_at")
    if p.status not in STATUSES:
        raise Invalid("RES-010", f"prior result {p.id}: status {p.status!r}, expected one of {', '.join(STATUSES)}",
                      {"field": "prior.status"})
    found: list[Reason | None] = [
        Reason(Why.CONCLUSION, {"category": item.category}) if p.conclusion else None,
        None if p.status in FINAL_STATUSES else Reason(Why.NOT_FINAL, {"status": p.status}),
        _mark(p, order, cat),
        _level_scope(p, order, cat, policy),
        _eqa(p, item, eqa, policy),
        _validity(p, order, item, cat, now),
    ]
    return [r for r in found if r is not None]


def _mark(p: PriorResult, order: Order, cat: Catalogue) -> Reason | None:
    mark = (p.mark or "").strip()
    if not mark:
        return Reason(Why.MARK_MISSING)
    if mark == STAR_MARK:  # ★ with its footnote counts as the issuing region's mark (§4.2)
        mark = cat.issuing_mark(p.region)
    if mark == NATIONAL_MARK:
        return None
    region = cat.region_of_mark(mark)
    if region is None or mark not in cat.accepted_marks(order.region):
        return Reason(Why.MARK_NOT_ACCEPTED, {"mark": p.mark, "accepted": sorted(cat.accepted_marks(order.region))})
    if not region.contains(p.region):
        return Reason(Why.SCOPE, {"rule": "region", "mark": mark, "mark_region": region.code,
                                  "issuing_region": p.region})
    return None


def _level_scope(p: PriorResult, order: Order, cat: Catalogue, policy: Policy) -> Reason | None:
    issuing, ordering = level_index(p.level, "prior.level"), level_index(order.level, "order.level")
    if issuing >= ordering:  # same level mutual; a lower level accepts a higher one
        return None
    upper = policy.upper_accepts_lower
    if upper is None:
        upper = cat.upper_accepts_lower(order.region)
    if upper:
        return None
    return Reason(Why.SCOPE, {"rule": "level", "issuing_level": p.level, "ordering_level": order.level})


def _eqa(p: PriorResult, item: Item, eqa: EqaFacts, policy: Policy) -> Reason | None:
    if not policy.require_eqa:
        return None
    year = local_day(p.reported_at).year
    status = eqa.status(p.lab, item.code, year)
    if status is None and policy.eqa_previous_year:
        status = eqa.status(p.lab, item.code, year - 1)
    if status == "passed":
        return None
    why = Why.LAB_FAILED_EQA if status == "failed" else Why.NO_EQA_RECORD
    return Reason(why, {"lab": p.lab, "item": item.code, "year": year})


def _validity(p: PriorResult, order: Order, item: Item, cat: Catalogue, now: datetime) -> Reason | None:
    if p.reported_at > now:
        return Reason(Why.REPORTED_AFTER_NOW, {"reported_at": p.reported_at.isoformat()})
    age = age_days(p.reported_at, now)
    days = cat.validity_days(item.code, order.region)
    if days is not None and age > days:
        return Reason(Why.EXPIRED, {"age_days": age, "validity_days": days})
    return None


def _candidate(p: PriorResult, item: Item | None, order: Order, cat: Catalogue, now: datetime) -> Candidate:
    assert item is not None
    days = cat.validity_days(item.code, order.region)
    until = None if days is None else local_day(p.reported_at) + timedelta(days=days)
    return Candidate(result=p, age_days=age_days(p.reported_at, now), validity_days=days, valid_until=until)
