"""Centralised exam booking (集中式检查预约): the exam catalogue with its preparation and
ordering rules (data, in ``exam_rules.json``), and the planner that places several exams on
equipment slots at once, honouring the rules and using as few trips (days) as it can.

Pure: the planner takes candidate slots and returns a plan or the reasons there is none.
The catalogue is packaged data, read once.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from ..errors import Invalid

MAX_ITEMS = 6
MAX_DAYS = 14  # the planner looks at the first fortnight that has places


@dataclass(frozen=True)
class ExamItem:
    code: str
    name: tuple[str, str]
    equipment: str
    minutes: int
    fasting: bool
    prep: tuple[str, str]


@dataclass(frozen=True)
class Rule:
    kind: str  # fasting_first | not_same_day | before
    a: str | None = None
    b: str | None = None
    why: tuple[str, str] = ("", "")


@dataclass(frozen=True)
class Catalogue:
    items: Mapping[str, ExamItem]
    rules: tuple[Rule, ...]
    travel_minutes: int = 15


def parse_catalogue(data: Mapping[str, Any]) -> Catalogue:
    items = {code: ExamItem(code, tuple(v["name"]), v["equipment"], int(v["minutes"]), bool(v["fasting"]),
                            tuple(v["prep"])) for code, v in data["items"].items()}
    rules = []
    for r in data["rules"]:
        a = r.get("a", r.get("first"))
        b = r.get("b", r.get("then"))
        for code in (a, b):
            if code is not None and code not in items:
                raise ValueError(f"exam rule names unknown item {code!r}")
        rules.append(Rule(r["kind"], a, b, tuple(r.get("why", ("", "")))))
    return Catalogue(items, tuple(rules), int(data.get("travel_minutes", 15)))


@cache
def catalogue() -> Catalogue:
    text = resources.files(__package__).joinpath("exam_rules.json").read_text(encoding="utf-8")
    return parse_catalogue(json.loads(text))


def check_items(cat: Catalogue, codes: Sequence[str]) -> list[ExamItem]:
    if not codes:
        raise Invalid("SCHED-023", "give at least one exam to book", {"field": "exams"})
    if len(codes) > MAX_ITEMS:
        raise Invalid("SCHED-023", f"at most {MAX_ITEMS} exams in one booking", {"field": "exams"})
    if len(set(codes)) != len(codes):
        raise Invalid("SCHED-023", "an exam is listed twice", {"field": "exams"})
    unknown = [c for c in codes if c not in cat.items]
    if unknown:
        raise Invalid("SCHED-023", f"unknown exam code(s) {unknown}; known: {sorted(cat.items)}",
                      {"field": "exams"})
    return [cat.items[c] for c in codes]


@dataclass(frozen=True)
class Candidate:
    """A free equipment place an exam could take."""

    slot_id: int
    day: date
    part: str
    starts_at: datetime
    ends_at: datetime
    equipment: str
    org_id: int


@dataclass
class Plan:
    assignments: dict[str, Candidate]
    trips: int
    order: list[str] = field(default_factory=list)  # the exams in time order


def _end(item: ExamItem, c: Candidate) -> datetime:
    return max(c.ends_at, c.starts_at + timedelta(minutes=item.minutes))


def violations(cat: Catalogue, chosen: Mapping[str, Candidate]) -> list[Rule | str]:
    """What is wrong with a (partial) assignment: broken rules, or 'overlap'."""
    out: list[Rule | str] = []
    placed = sorted(chosen.items(), key=lambda kv: kv[1].starts_at)
    gap = timedelta(minutes=cat.travel_minutes)
    for (c1, s1), (_c2, s2) in itertools.pairwise(placed):
        if s1.day == s2.day and _end(cat.items[c1], s1) + gap > s2.starts_at:
            out.append("overlap")
    for rule in cat.rules:
        if rule.kind == "fasting_first":
            for code, slot in chosen.items():
                item = cat.items[code]
                if not item.fasting:
                    continue
                if slot.part != "am" or any(
                        o.day == slot.day and o.starts_at < slot.starts_at and not cat.items[oc].fasting
                        for oc, o in chosen.items() if oc != code):
                    out.append(rule)
                    break
        elif rule.kind == "not_same_day":
            if rule.a in chosen and rule.b in chosen and chosen[rule.a].day == chosen[rule.b].day:
                out.append(rule)
        elif (rule.kind == "before" and rule.a in chosen and rule.b in chosen
              and _end(cat.items[rule.a], chosen[rule.a]) > chosen[rule.b].starts_at):
            out.append(rule)
    return out


def plan_exams(cat: Catalogue, codes: Sequence[str], candidates: Mapping[str, Sequence[Candidate]]) -> Plan | None:
    """The plan with the fewest trips, then the earliest last day, then the earliest times;
    None when no assignment of the candidates honours every rule."""
    items = check_items(cat, codes)
    days = sorted({c.day for code in codes for c in candidates.get(code, ())})[:MAX_DAYS]
    for trips in range(1, min(len(items), len(days)) + 1):
        best: tuple[Any, dict[str, Candidate]] | None = None
        for combo in itertools.combinations(days, trips):
            allowed = set(combo)
            found = _search(cat, items, {c: [s for s in candidates.get(c, ()) if s.day in allowed] for c in codes})
            if found is None or {s.day for s in found.values()} != allowed:
                continue
            key = (max(combo), sum(s.starts_at.timestamp() for s in found.values()))
            if best is None or key < best[0]:
                best = (key, found)
        if best is not None:
            chosen = best[1]
            order = sorted(chosen, key=lambda c: chosen[c].starts_at)
            return Plan(dict(chosen), trips, order)
    return None


def _search(cat: Catalogue, items: list[ExamItem],
            options: dict[str, list[Candidate]]) -> dict[str, Candidate] | None:
    """Depth-first, the most constrained exam first, each exam's earliest places first."""
    order = sorted(items, key=lambda i: len(options[i.code]))
    chosen: dict[str, Candidate] = {}
    used: set[int] = set()

    def place(k: int) -> bool:
        if k == len(order):
            return True
        code = order[k].code
        for cand in sorted(options[code], key=lambda c: c.starts_at):
            if cand.slot_id in used:
                continue
            chosen[code] = cand
            if not violations(cat, chosen):
                used.add(cand.slot_id)
                if place(k + 1):
                    return True
                used.discard(cand.slot_id)
            del chosen[code]
        return False

    return dict(chosen) if place(0) else None


def unplannable_reasons(cat: Catalogue, codes: Sequence[str], candidates: Mapping[str, Sequence[Candidate]],
                        lang: int = 0) -> list[str]:
    """Why no plan: exams without any free place, or the rules that could not be met."""
    missing = [cat.items[c].name[lang] for c in codes if not candidates.get(c)]
    if missing:
        return [("没有空闲号源：" if lang == 0 else "no free places: ") + "、".join(missing)]
    rules = [r.why[lang] for r in cat.rules if r.kind != "fasting_first" and r.a in codes and r.b in codes]
    return rules or ["所选检查在两周内无法按规则安排" if lang == 0
                     else "the exams cannot be arranged by the rules within two weeks"]


def instructions(cat: Catalogue, plan: Plan, lang: int = 0) -> list[str]:
    """The patient's preparation sheet: each exam in time order with its preparation, and
    the ordering rules that shaped the plan."""
    lines = []
    for code in plan.order:
        item, slot = cat.items[code], plan.assignments[code]
        lines.append(f"{slot.day.isoformat()} {item.name[lang]}: {item.prep[lang]}")
    for rule in cat.rules:
        fasting = rule.kind == "fasting_first" and any(cat.items[c].fasting for c in plan.order)
        if fasting or (rule.a in plan.assignments and rule.b in plan.assignments):
            lines.append(rule.why[lang])
    return lines
