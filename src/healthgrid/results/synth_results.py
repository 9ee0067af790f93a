"""What the results synth (``synth.py``) draws on: the generated region read once (residents
with sex, age and home; the facilities that test, by level, county and township; their
doctors), realistic values per analyte from the catalogue's reference ranges (with the
chronic patients' HbA1c and creatinine trends), the imaging studies' metadata and the
radiologists' conclusions, and a fast bulk writer. Deterministic for a seed; no clock."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table, select

from ..db import UTCDateTime
from ..patients.models import Patient
from ..registry.models import Division, Organization, PracticeSite, Practitioner
from .catalogue import Analyte

LAB_TYPES = ("general_hospital", "tcm_hospital", "mch_hospital", "specialty_hospital", "township_health_centre",
             "community_health_centre")
IMAGING = {  # item: (DICOM modality, body site, series, instances per series, conclusions normal / abnormal)
    "XR-CHEST": ("DX", "CHEST", 1, 2, ("双肺纹理清晰，心影不大，未见明显异常。",
                                       "右下肺纹理增多模糊，考虑炎症，建议复查。")),
    "CT-HEAD": ("CT", "HEAD", 3, 80, ("颅内未见明显异常密度影。", "左侧基底节区腔隙性脑梗死。")),
    "CT-CHEST": ("CT", "CHEST", 4, 120, ("双肺未见明显实质性病变。", "右肺上叶微小结节（约4mm），建议年度随访。")),
    "CT-ABD": ("CT", "ABDOMEN", 4, 150, ("腹盆腔未见明显异常。", "胆囊结石；肝脏多发小囊肿。")),
    "MR-BRAIN": ("MR", "BRAIN", 6, 60, ("脑实质未见明显异常信号。", "双侧半卵圆中心多发缺血灶。")),
    "US-ABD": ("US", "ABDOMEN", 1, 12, ("肝胆胰脾未见明显异常。", "脂肪肝（轻度）；胆囊息肉样病变。")),
}
ECG_TEXT = ("窦性心律，正常心电图", "窦性心律，ST-T改变", "窦性心动过缓", "心房颤动")
QUALITATIVE = {"HBSAG": ("阴性", "阳性", 0.06), "HIV": ("阴性", "阳性", 0.001), "TPAB": ("阴性", "阳性", 0.004),
               "HCV": ("阴性", "阳性", 0.005), "U-PRO": ("阴性", "+", 0.08), "U-GLU": ("阴性", "+", 0.05),
               "U-BLD": ("阴性", "+", 0.06)}


@dataclass(frozen=True)
class Facility:
    id: int
    code: str
    level: str
    org_type: str
    region: str  # GB/T 2260 code of its division
    county: int | None
    township: int | None
    city: int | None


@dataclass(frozen=True)
class Resident:
    id: int
    sex: str
    born: date | None
    county: int | None
    township: int | None
    city: int | None


class RegionFacts:
    """The residents and the testing facilities of the generated region, read in bulk."""

    def __init__(self, conn: Connection):
        rows = conn.execute(select(Organization.id, Organization.code, Organization.level, Organization.org_type,
                                   Division.code, Division.level, Division.id, Division.county_id,
                                   Division.township_id, Division.city_id)
                            .join(Division, Division.id == Organization.division_id)
                            .where(Organization.active.is_(True), Organization.org_type.in_(LAB_TYPES))
                            .order_by(Organization.id)).all()
        self.facilities = [Facility(r[0], r[1], r[2], r[3], r[4], r[6] if r[5] == "county" else r[7],
                                    r[6] if r[5] == "township" else r[8], r[9]) for r in rows]
        self.by_id = {f.id: f for f in self.facilities}
        self.centre: dict[int | None, Facility] = {}
        self.county_hospitals: dict[int | None, list[Facility]] = defaultdict(list)
        self.city_hospitals: dict[int | None, list[Facility]] = defaultdict(list)
        for f in self.facilities:
            if f.level == "L1":
                self.centre.setdefault(f.township, f)
            elif f.level == "L2" and f.org_type == "general_hospital":
                self.county_hospitals[f.county].append(f)
            elif f.level in ("L3", "L4", "L5") and f.org_type == "general_hospital":
                self.city_hospitals[f.city].append(f)
        self.all_county = [f for fs in self.county_hospitals.values() for f in fs]
        self.all_city = [f for fs in self.city_hospitals.values() for f in fs]
        places = {d_id: (county, city) for d_id, county, city in conn.execute(
            select(Division.id, Division.county_id, Division.city_id))}
        self.residents = []
        for pid, sex, born, div, township in conn.execute(
                select(Patient.id, Patient.sex, Patient.birth_date, Patient.division_id, Patient.township_id)
                .where(Patient.replaced_by.is_(None), Patient.active.is_(True)).order_by(Patient.id)):
            county, city = places.get(div, (None, None))
            self.residents.append(Resident(pid, sex, born, county, township, city))
        self.doctors: dict[int, list[int]] = defaultdict(list)
        for pid, org in conn.execute(select(PracticeSite.practitioner_id, PracticeSite.org_id)
                                     .join(Practitioner, Practitioner.id == PracticeSite.practitioner_id)
                                     .where(PracticeSite.org_id.in_(list(self.by_id)),
                                            Practitioner.specialty_code.is_not(None))
                                     .order_by(PracticeSite.id)):
            self.doctors[org].append(pid)

    def county_hospital(self, rng: random.Random, r: Resident) -> Facility | None:
        here = self.county_hospitals.get(r.county) or self.all_county
        return rng.choice(here) if here else None

    def city_hospital(self, rng: random.Random, r: Resident) -> Facility | None:
        here = self.city_hospitals.get(r.city) or self.all_city
        return rng.choice(here) if here else None

    def other_county_hospital(self, rng: random.Random, r: Resident) -> Facility | None:
        others = [f for f in self.all_county if f.county != r.county]
        return rng.choice(others) if others else None


# -- values ---------------------------------------------------------------------------------------

@dataclass
class Chronic:
    """A patient's chronic state for the year: diabetes (HbA1c and glucose trend), chronic
    kidney disease (creatinine rising), dyslipidaemia."""

    hba1c: float | None = None  # % at the start of the year
    hba1c_slope: float = 0.0  # per 30 days
    crea: float | None = None  # µmol/L at the start of the year
    crea_slope: float = 0.0
    lipids: float = 1.0  # multiplier on TC / LDL-C / TG

    def at(self, name: str, days: float) -> float | None:
        if name == "HBA1C" and self.hba1c is not None:
            return max(5.2, self.hba1c + self.hba1c_slope * days / 30)
        if name == "CREA" and self.crea is not None:
            return self.crea + self.crea_slope * days / 30
        return None


def chronic_state(rng: random.Random, age: int) -> Chronic:
    state = Chronic()
    if rng.random() < (0.14 if age >= 50 else 0.06 if age >= 35 else 0.01):
        state.hba1c, state.hba1c_slope = rng.uniform(6.8, 10.5), rng.uniform(-0.15, 0.08)
    if age >= 50 and rng.random() < 0.06:
        state.crea, state.crea_slope = rng.uniform(115, 210), rng.uniform(1.0, 6.0)
    if age >= 40 and rng.random() < 0.3:
        state.lipids = rng.uniform(1.25, 1.6)
    return state


def value(rng: random.Random, a: Analyte, sex: str, state: Chronic, days: float) -> tuple[Any, str | None, Any]:
    """(value, flag, the range used) of one analyte: around the middle of the reference range
    (a spread of a quarter of it), 7 % drawn outside it, chronic trends where they apply."""
    ref = a.reference_range({"M": "male", "F": "female"}.get(sex))
    if a.code in QUALITATIVE:
        normal, abnormal, p = QUALITATIVE[a.code]
        return (abnormal, "A", ref) if rng.random() < p else (normal, "N", ref)
    if ref is None or (ref.low is None and ref.high is None):
        return None, None, ref
    trend = state.at(a.code, days)
    if a.code == "GLU" and state.hba1c is not None:
        trend = (state.at("HBA1C", days) or 7.0) * 1.59 - 2.59 + rng.gauss(0, 0.6)  # ADAG: eAG from HbA1c
    low, high = ref.low, ref.high
    if low is None:
        low = high * 0.45
    if high is None:
        high = low * 1.9
    if trend is not None:
        x = trend + rng.gauss(0, (high - low) * 0.03)
    else:
        mid, spread = (low + high) / 2, (high - low) / 4
        x = rng.gauss(mid, spread)
        if rng.random() < 0.07:  # outside the range: high more often than low
            off = abs(rng.gauss(0, spread))
            x = high + off if rng.random() < 0.6 else max(low * 0.5, low - off)
        if a.code in ("TC", "TG", "LDLC"):
            x *= state.lipids
    x = max(x, 0.0)
    digits = 3 if high < 2 else 2 if high < 20 else 1 if high < 200 else 0
    x = round(x, digits)
    return x, _flag(x, ref.low, ref.high), ref


def _flag(x: float, low: float | None, high: float | None) -> str:
    if high is not None and x > high:
        return "HH" if x > high * 2.5 else "H"
    if low is not None and x < low:
        return "LL" if x < low * 0.4 else "L"
    return "N"


def study_uid(seed: int, n: int) -> str:
    """A DICOM UID under the UUID-derived root 2.25 (PS3.5 B.2), deterministic per seed."""
    return f"2.25.{(seed * 1_000_003 + n) * 2654435761 % 10**30 + 10**30}"


def age_on(born: date | None, day: date) -> int:
    if born is None:
        return 45
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def seasonal(rng: random.Random) -> float:
    """A day of the year weighted to winter (respiratory illness), 0..365."""
    while True:
        day = rng.uniform(0, 365)
        if rng.random() < 0.7 + 0.3 * math.cos(2 * math.pi * day / 365):
            return day


# -- writing ----------------------------------------------------------------------------------------

def bulk_insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Whole rows with each column's bind processor applied (what ``insert(table)`` does,
    without its per-row parameter machinery); ``COPY`` on PostgreSQL."""
    if not rows:
        return
    dialect, quote = conn.dialect, conn.dialect.identifier_preparer.quote
    used = [c for c in table.columns if c.name in rows[0]]
    names = [c.name for c in used]
    get = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
    procs = [(i, p) for i, c in enumerate(used) if (p := _processor(c, dialect)) is not None]
    values = []
    for row in rows:
        value_ = list(get(row))
        for i, proc in procs:
            if value_[i] is not None:
                value_[i] = proc(value_[i])
        values.append(tuple(value_))
    listed = ", ".join(quote(n) for n in names)
    if dialect.name == "postgresql":
        with conn.connection.cursor() as cursor, cursor.copy(f"COPY {quote(table.name)} ({listed}) FROM STDIN") as copy:
            for v in values:
                copy.write_row(v)
        return
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(f"INSERT INTO {quote(table.name)} ({listed}) VALUES ({', '.join([mark] * len(used))})",
                         values)


def _processor(column, dialect) -> Callable[[Any], Any] | None:
    if dialect.name == "sqlite" and isinstance(column.type, UTCDateTime):
        return _sqlite_utc
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def _sqlite_utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]
