"""The synthetic report cards (传染病报告卡) of :mod:`.synth`: what is read of the generated
region once (:class:`World`: counties, their villages and the facilities that report), and
one ``surv_card`` row per simulated case with its ``surv_card_event`` rows, written in bulk.

A card as the card service stores it (the helpers' agreements): the personal fields as one
sealed JSON document (``surv.card.personal``) and the ID number's blind index (``surv.card.id``),
the rest in clear; ``county_code`` the first six digits of the village address code; the card
number ``CRB`` + the id. The person: sex, an age drawn from the disease's age bands (HFMD in
small children, mumps and chickenpox at school age, tuberculosis and hepatitis B in adults),
the population group the age allows (§5.3: ≤14 only children's groups or student), a parent
and a phone for children, a school and class or a work unit where the card needs one, a
resident ID (GB 11643, the county's code, odd sequence for men; a parent's for some
children). Clocks (§5.2): diagnosis on the hour in clinic hours, onset 0–3 days before (up to
a month for the chronic ones), report within 24 h for 93 % (median about 3 h), review
within 24 h for 95 %; nothing after ``now`` (a card not yet reported does not exist; one not
yet reviewed stays ``reported``). About 1 % are corrected (订正, with the disease first
reported), 0.5 % returned for completion, and duplicates (重卡, 0.6 %) reported then deleted.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, text
from sqlalchemy.orm import Session

from ..registry import queries as registry_queries
from ..security.domain import id_check_digit
from ..security.pii import SESSION_KEY, Keyring
from ..synth.names import person_name
from .cards import age_on
from .catalogue import load_catalogue
from .dashboard_counts import CHINA
from .models import Card, CardEvent

BATCH = 20_000
REPORTERS = ("general_hospital", "tcm_hospital", "mch_hospital", "township_health_centre", "community_health_centre")
AGES = {  # (youngest, oldest, weight) in full years
    "3500": ((0, 4, 20), (5, 14, 35), (15, 59, 30), (60, 90, 15)),
    "4000": ((0, 2, 45), (3, 5, 45), (6, 9, 10)),
    "3900": ((0, 4, 35), (5, 14, 15), (15, 59, 30), (60, 90, 20)),
    "2600": ((15, 29, 20), (30, 59, 45), (60, 85, 35)),
    "0300": ((18, 39, 35), (40, 59, 45), (60, 80, 20)),
    "L030": ((1, 6, 40), (7, 14, 50), (15, 40, 10)),
    "3600": ((3, 6, 25), (7, 14, 65), (15, 30, 10)),
    "1400": ((3, 6, 45), (7, 12, 55)),
    "0800": ((18, 39, 40), (40, 59, 35), (60, 80, 25)),
    "0400": ((0, 14, 30), (15, 59, 45), (60, 85, 25)),
}
SUBTYPES = {"2600": ("2605", "2606", "2606", "2607", "2608"), "0300": ("0302",), "0800": ("0801", "0802", "0805"),
            "0400": ("0401",)}
CLASS_WEIGHTS = (("clinical", 0.55), ("confirmed", 0.4), ("suspected", 0.05))
CORRECTED_FROM = {"4000": "L030", "L030": "4000", "1400": "3700", "3600": "9899", "3900": "0400", "0400": "3900",
                  "3500": "9899", "2600": "9899", "0300": "9899", "0800": "9899"}
ADULT_GROUPS = {"rural": (("farmer", 50), ("migrant_worker", 10), ("worker", 10), ("homemaker_unemployed", 10),
                          ("commercial_service", 6), ("teacher", 3), ("medical_staff", 3), ("cadre_staff", 4),
                          ("food_service", 4)),
                "urban": (("worker", 22), ("cadre_staff", 20), ("commercial_service", 14), ("homemaker_unemployed", 12),
                          ("food_service", 6), ("teacher", 5), ("medical_staff", 5), ("public_venue_service", 6),
                          ("other", 4), ("farmer", 6))}
OCCUPATIONS = {"worker": "{town}机械厂", "migrant_worker": "{town}建筑工程公司", "teacher": "{town}中心小学",
               "medical_staff": "{town}卫生院", "cadre_staff": "{county}人民政府办公室"}
_PREFIXES = ("135", "136", "137", "138", "139", "150", "151", "158", "159", "186", "187", "188", "133", "189")


@dataclass
class CountyPlace:
    id: int
    code: str
    name: str
    urban: bool
    weight: float = 1.0
    villages: list[tuple[str, str, str]] = field(default_factory=list)  # (12-digit code, township, village)
    units: list[tuple[int, str, str]] = field(default_factory=list)  # reporting facilities (id, code, name)
    hospital: tuple[str, str] | None = None  # the general hospital's (code, division code): fever clinic, laboratory


@dataclass
class World:
    counties: list[CountyPlace]

    @classmethod
    def load(cls, session: Session) -> World:
        """The region's counties with their villages and reporting facilities, read once."""
        counties = {d.id: CountyPlace(d.id, d.code[:6], d.name, d.name.endswith("区"))
                    for d in registry_queries.search_divisions(session, level="county", limit=10**7).items}
        towns = {d.id: d.name for d in registry_queries.search_divisions(session, level="township", limit=10**7).items}
        for v in registry_queries.search_divisions(session, level="village", limit=10**7).items:
            if v.county_id in counties:
                counties[v.county_id].villages.append((v.code, towns.get(v.township_id, ""), v.name))
        orgs = registry_queries.search_organizations(
            session, registry_queries.OrgFilter(types=REPORTERS, active=True), limit=10**7).items
        for org in sorted(orgs, key=lambda o: o.id):
            place = counties.get(org.division.county_id)
            if place is not None:
                place.units.append((org.id, org.code, org.name))
                if org.org_type == "general_hospital" and place.hospital is None:
                    place.hospital = (org.code, org.division.code)
        placed = [c for c in sorted(counties.values(), key=lambda c: c.code) if c.villages and c.units]
        mean = sum(len(c.villages) for c in placed) / len(placed) if placed else 1
        for c in placed:
            c.weight = min(2.0, max(0.5, len(c.villages) / mean))
        return cls(placed)


def _weighted(rng: random.Random, pairs) -> Any:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def resident_id(rng: random.Random, county: str, born: date, sex: str) -> str:
    seq = 2 * rng.randrange(500) + 1 if sex == "1" else 2 * rng.randrange(1, 500)
    first17 = f"{county}{born:%Y%m%d}{seq:03d}"
    return first17 + id_check_digit(first17)


def phone(rng: random.Random) -> str:
    return rng.choice(_PREFIXES) + f"{rng.randrange(10**8):08d}"


class Cards:
    """Rows of cards and events with ids given here, written every ``BATCH`` cards."""

    def __init__(self, conn: Connection, ring: Keyring, rng: random.Random, now: datetime, seed: int):
        self.conn, self.ring, self.rng, self.now, self.seed = conn, ring, rng, now, seed
        self.card_id = conn.scalar(select(func.max(Card.id))) or 0
        self.event_id = conn.scalar(select(func.max(CardEvent.id))) or 0
        self.cards: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.counts: dict[str, int] = defaultdict(int)
        self.catalogue = load_catalogue()

    # -- the person ---------------------------------------------------------------------------
    def person(self, disease: str, county: CountyPlace, day: date, filled: date) -> tuple[dict[str, Any],
                                                                                           dict[str, Any]]:
        """(the sealed personal fields, the clear ones) of a synthetic patient diagnosed on
        ``day``; the age is the card's, on the day it is filled (§5.3)."""
        rng = self.rng
        lo, hi, _w = rng.choices(AGES[disease], weights=[b[2] for b in AGES[disease]])[0]
        years = rng.randint(lo, hi)
        born = day - timedelta(days=int((years + rng.random()) * 365.2425))
        sex = "1" if rng.random() < (0.62 if disease in ("2600", "0800") else 0.53) else "2"
        age, unit = age_on(born, filled)
        code, town, village = rng.choice(county.villages)
        group, unit_name, school_class = self.group(age if unit == "years" else 0, county, town)
        child = unit != "years" or age <= 14
        own = not child or rng.random() < 0.75
        holder_born = born if own else born - timedelta(days=rng.randint(22, 38) * 365)
        number = resident_id(rng, county.code, holder_born, sex if own else rng.choice("12"))
        address = f"{town}{village}{rng.randint(1, 199)}号"
        personal = {"patient_name": person_name(rng, "M" if sex == "1" else "F"),
                    "parent_name": person_name(rng, rng.choice("MF")) if child else None,
                    "id_type": "resident_id", "id_number": number, "id_holder": "self" if own else "parent",
                    "phone": phone(rng) if child or rng.random() < 0.9 else None, "work_unit": unit_name,
                    "school_class": school_class, "current_address": address, "household_address": address}
        clear = {"sex": sex, "birth_date": born, "age": age, "age_unit": unit, "population_group": group,
                 "current_address_code": code, "county_code": code[:6], "belongs_to": 1}
        return personal, clear

    def group(self, age: int, county: CountyPlace, town: str) -> tuple[str, str | None, str | None]:
        """(population group, work unit or school, class) for an age (§5.3)."""
        rng = self.rng
        if age < 3:
            return "home_child", None, None
        if age <= 6:
            if rng.random() < 0.2:
                return "home_child", None, None
            klass = rng.choice(("小班", "中班", "大班")) + f"{rng.randint(1, 4)}班"
            return "childcare_child", f"{town}中心幼儿园", klass
        if age <= 18 and (age <= 14 or rng.random() < 0.8):
            school = f"{town}中心小学" if age <= 12 else f"{town}中学"
            grade = min(6, age - 6) if age <= 12 else min(3, age - 12) if age <= 15 else min(3, age - 15)
            return "student", school, f"{max(1, grade)}年级{rng.randint(1, 6)}班"
        if age >= 60 and rng.random() < 0.6:
            return ("retiree" if county.urban else "farmer"), None, None
        group = _weighted(rng, ADULT_GROUPS["urban" if county.urban else "rural"])
        work = OCCUPATIONS.get(group, "").format(town=town, county=county.name) or None
        return group, work, None

    # -- the card -----------------------------------------------------------------------------
    def add(self, disease: str, county: CountyPlace, day: date) -> None:
        rng = self.rng
        hour = int(rng.triangular(8, 20, 10))
        diagnosed = datetime.combine(day, time(hour), CHINA)
        reported = diagnosed + self.delay(24)
        if reported > self.now:
            self.counts["not_yet_reported"] += 1
            return
        personal, clear = self.person(disease, county, day, reported.astimezone(CHINA).date())
        row = self.row(disease, county, diagnosed, reported, personal, clear)
        self.cards.append(row)
        self.event(row, "reported", reported, None)
        self.review(row)
        roll = rng.random()
        if roll < 0.01:
            self.correct(row)
        elif roll < 0.016:
            self.duplicate(row, personal)
        if len(self.cards) >= BATCH:
            self.flush()

    def delay(self, limit_h: float) -> timedelta:
        """Most within the limit (median about 3 h of 24), 7 % late by hours to days."""
        rng = self.rng
        if rng.random() < 0.07:
            return timedelta(hours=limit_h + rng.expovariate(1 / 18))
        return timedelta(hours=min(rng.lognormvariate(math.log(limit_h / 8), 0.9), limit_h * 0.97))

    def row(self, disease: str, county: CountyPlace, diagnosed: datetime, reported: datetime,
            personal: dict[str, Any], clear: dict[str, Any]) -> dict[str, Any]:
        """The card as first reported. Injected outbreaks are not flagged (``outbreak``): the
        reporting doctors do not know of them, detection is to find them."""
        rng, day = self.rng, diagnosed.date()
        entry = self.catalogue.entry(disease, day)
        subtype = rng.choice(SUBTYPES[disease]) if disease in SUBTYPES else None
        allowed = entry.rule("case_classes", subtype)
        klass = _weighted(rng, [p for p in CLASS_WEIGHTS if p[0] in allowed])
        unit_id, unit_code, _unit = rng.choice(county.units)
        self.card_id += 1
        chronic = entry.rule("acute_chronic", subtype)
        onset = day - timedelta(days=rng.randint(0, 30 if disease in ("2600", "0300", "0800") else 3))
        return {
            "id": self.card_id, "card_number": f"CRB{self.card_id:010d}", "report_type": "first",
            "status": "reported", "patient_id": None,
            "personal_enc": self.ring.encrypt(json.dumps(personal, ensure_ascii=False), "surv.card.personal"),
            "id_bidx": self.ring.blind_index(personal["id_number"], "surv.card.id"), **clear,
            "disease": disease, "subtype": subtype, "case_class": klass,
            "case_class2": ("chronic" if rng.random() < 0.9 else "acute") if chronic else None,
            "onset_date": max(onset, clear["birth_date"]), "diagnosed_at": diagnosed, "death_date": None,
            "outbreak": False, "fields": self.fields(entry, county, clear["population_group"]),
            "report_org_id": unit_id, "report_unit_code": unit_code, "report_area_code": county.code,
            "doctor": person_name(rng, rng.choice("MF")), "fill_date": reported.astimezone(CHINA).date(),
            "source_kind": "import", "source_ref": f"synth-{self.seed}", "reported_at": reported,
            "report_due_at": diagnosed + self.catalogue.reporting_limit(disease, day, subtype),
            "review_due_at": reported + self.catalogue.review_limit(disease, day, subtype),
            "reviewed_at": None, "reviewed_by": None, "review_note": None, "corrected_disease": None,
            "correction_reason": None, "deleted_at": None, "delete_type": None, "delete_reason": None,
            "created_by": "system:synth", "idem_owner": None, "idempotency_key": None, "updated_at": reported,
            "version": 1,
        }

    def fields(self, entry, county: CountyPlace, group: str) -> dict[str, Any]:
        """What the card holds without a column (no personal data)."""
        out = {"supplementary_card": entry.supplementary_card is not None, "report_unit_area_code": county.code,
               "synthetic": True}
        if group == "other":
            out["population_group_other"] = self.rng.choice(("个体经营", "自由职业", "快递员", "网约车司机"))
        return out

    def event(self, row: dict[str, Any], kind: str, at: datetime, note: str | None,
              detail: dict[str, Any] | None = None) -> None:
        self.event_id += 1
        self.events.append({"id": self.event_id, "card_id": row["id"], "kind": kind, "actor": "system:synth",
                            "at": at, "note": note, "detail": detail or {}})
        row["updated_at"] = max(row["updated_at"], at)
        row["version"] += kind != "reported"

    def review(self, row: dict[str, Any]) -> None:
        """The county CDC's review (审核): within the limit for 95 %, some returned."""
        rng = self.rng
        at = row["reported_at"] + (timedelta(hours=24 + rng.expovariate(1 / 20)) if rng.random() < 0.05
                                   else timedelta(hours=min(rng.lognormvariate(math.log(4), 0.9), 23.5)))
        if at > self.now:
            return
        returned = rng.random() < 0.005
        row.update(status="returned" if returned else "reviewed", reviewed_at=at, reviewed_by="县疾控审核员",
                   review_note="现住址不详，请补充门牌号" if returned else None)
        self.event(row, "returned" if returned else "reviewed", at, row["review_note"])

    def correct(self, row: dict[str, Any]) -> None:
        """订正报告: the disease first reported was another; the card keeps its number."""
        at = (row["reviewed_at"] or row["reported_at"]) + timedelta(hours=self.rng.uniform(2, 72))
        if at > self.now:
            return
        old = CORRECTED_FROM[row["disease"]]
        row.update(report_type="correction", corrected_disease=old, correction_reason="实验室检测结果明确后订正诊断")
        self.event(row, "corrected", at, row["correction_reason"], {"disease": [old, row["disease"]]})

    def duplicate(self, row: dict[str, Any], personal: dict[str, Any]) -> None:
        """A second card for the same case from another unit (重卡), deleted on review."""
        at = row["reported_at"] + timedelta(hours=self.rng.uniform(0.5, 6))
        deleted = at + timedelta(hours=self.rng.uniform(1, 20))
        if deleted > self.now:
            return
        self.card_id += 1
        dup = {**row, "id": self.card_id, "card_number": f"CRB{self.card_id:010d}", "reported_at": at,
               "review_due_at": at + (row["review_due_at"] - row["reported_at"]), "status": "deleted",
               "report_type": "deletion", "reviewed_at": None, "reviewed_by": None, "review_note": None,
               "deleted_at": deleted, "delete_type": "duplicate", "updated_at": at, "version": 1,
               "delete_reason": "重复报告（同一病例已由其他单位报告）"}
        dup["personal_enc"] = self.ring.encrypt(json.dumps(personal, ensure_ascii=False), "surv.card.personal")
        self.cards.append(dup)
        self.event(dup, "reported", at, None)
        self.event(dup, "deleted", deleted, dup["delete_reason"], {"delete_type": "duplicate"})

    def flush(self) -> None:
        for model, rows in ((Card, self.cards), (CardEvent, self.events)):
            for start in range(0, len(rows), BATCH):
                self.conn.execute(insert(model.__table__), rows[start:start + BATCH])
        for row in self.cards:
            self.counts[row["status"]] += 1
        self.counts["events"] += len(self.events)
        self.cards, self.events = [], []


def write_cards(conn: Connection, world: World, plan, *, info: dict[str, Any], seed: int, now: datetime,
                progress=None) -> dict[str, int]:
    """One card per simulated case (``plan.cases``), day by day; returns row counts."""
    cards = Cards(conn, info[SESSION_KEY], random.Random(seed * 7919 + 88), now, seed)
    for k, (disease, matrix) in enumerate(plan.cases.items()):
        for c, county in enumerate(world.counties):
            for t in range(plan.days):
                day = plan.start + timedelta(days=t)
                for _ in range(int(matrix[c, t])):
                    cards.add(disease, county, day)
        if progress:
            progress("surveillance cards", k + 1, len(plan.cases))
    cards.flush()
    if conn.dialect.name == "postgresql":
        for table in ("surv_card", "surv_card_event"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                              f" GREATEST((SELECT MAX(id) FROM {table}), 1))"))
            conn.execute(text(f"ANALYZE {table}"))
    c = cards.counts
    return {"surv_cards": sum(c[s] for s in ("reported", "reviewed", "returned", "deleted")),
            "surv_cards_deleted": c["deleted"], "surv_cards_unreviewed": c["reported"],
            "surv_card_events": c["events"]}
