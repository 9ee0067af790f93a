"""What the referral synth (``synth.py``) draws on: the clinical texts of its referrals, what
it reads of the generated region once (where the patients live, their primary care, who
works where, the alliances), and how it writes a third of a million rows quickly."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.orm import Session

from ..db import UTCDateTime
from ..patients import queries as patient_queries
from ..registry import queries as registry_queries
from . import domain as d

# What is referred up to a department (by its code, 诊疗科目; ICD-10 with GB/T 14396 names).
DIAGNOSES: dict[str, tuple[tuple[str, str], ...]] = {
    "03.03": (("I10", "原发性高血压"), ("I20.0", "不稳定型心绞痛"), ("I25.1", "冠状动脉粥样硬化性心脏病"),
              ("I48", "心房颤动"), ("I50.9", "心力衰竭")),
    "03.08": (("E11.9", "2型糖尿病"), ("E11.6", "2型糖尿病伴并发症"), ("E05.9", "甲状腺功能亢进症")),
    "03.01": (("J44.1", "慢性阻塞性肺疾病急性加重"), ("J18.9", "肺炎"), ("J45.9", "支气管哮喘")),
    "03.02": (("K25.9", "胃溃疡"), ("K74.6", "肝硬化"), ("K92.2", "消化道出血")),
    "03.05": (("N18.9", "慢性肾脏病"), ("N04.9", "肾病综合征")),
    "03.07": (("I63.9", "脑梗死"), ("G45.9", "短暂性脑缺血发作"), ("G20", "帕金森病")),
    "03": (("I10", "原发性高血压"), ("E11.9", "2型糖尿病"), ("J44.1", "慢性阻塞性肺疾病急性加重")),
    "04.03": (("M17.9", "膝关节病"), ("M51.2", "腰椎间盘突出"), ("S72.0", "股骨颈骨折")),
    "04.01": (("K80.2", "胆囊结石"), ("K40.9", "腹股沟疝"), ("K35.8", "急性阑尾炎")),
    "04.04": (("N20.0", "肾结石"), ("N40", "前列腺增生")),
    "04": (("K80.2", "胆囊结石"), ("K40.9", "腹股沟疝"), ("N40", "前列腺增生")),
    "05.02": (("O24.4", "妊娠期糖尿病"), ("O13", "妊娠期高血压")),
    "05": (("D25.9", "子宫平滑肌瘤"), ("N83.2", "卵巢囊肿"), ("O13", "妊娠期高血压")),
    "07": (("J18.9", "肺炎"), ("J45.9", "支气管哮喘"), ("R62.8", "生长发育迟缓")),
    "10": (("H25.9", "老年性白内障"), ("H40.9", "青光眼"), ("E11.3", "糖尿病视网膜病变")),
    "11": (("J32.9", "慢性鼻窦炎"), ("H91.9", "听力减退")),
    "19": (("R91", "肺部影像学异常"), ("C34.9", "肺恶性肿瘤"), ("C16.9", "胃恶性肿瘤")),
    "16": (("B18.1", "慢性乙型病毒性肝炎"),),
    "32": (("R91", "肺部影像学异常"), ("R10.4", "腹痛待查"), ("M54.5", "腰痛")),
}
FALLBACK = (("I10", "原发性高血压"), ("E11.9", "2型糖尿病"), ("R51", "头痛"))
# (ICD-10, name, red flag) of emergencies that travel by 120 (§3.2).
EMERGENCIES = (("I21.9", "急性心肌梗死", "chest_pain"), ("I63.9", "急性脑梗死", "aphasia_paralysis"),
               ("I61.9", "脑出血", "altered_consciousness"), ("J44.1", "慢性阻塞性肺疾病急性加重", "dyspnoea"))
# (ICD-10, name, reason code) of direct down-referrals (§3.3).
DOWNS = (("I63.9", "脑梗死恢复期", "rehabilitation"), ("S72.0", "股骨颈骨折术后", "rehabilitation"),
         ("I25.1", "冠心病PCI术后", "stable_chronic"), ("I10", "原发性高血压", "stable_chronic"),
         ("E11.9", "2型糖尿病", "stable_chronic"), ("J44.9", "慢性阻塞性肺疾病稳定期", "stable_chronic"))
REJECT_REASONS = ("本科室近期号源已满，建议转上级医院", "建议先在基层完善血常规、心电图等检查",
                  "病情稳定，建议基层继续管理并随访", "非本科室诊治范围，请转相应专科",
                  "转诊资料不全，请补充既往检查结果")
PLANS = ("按出院医嘱继续口服药物，每2周基层随访一次", "继续降压、降糖治疗，1个月后门诊复查",
         "康复训练每日1次，3个月后复查", "低盐低脂饮食，规律服药，监测血压血糖")
OUTCOMES = ("病情稳定，按方案服药", "血压控制达标，继续随访", "症状较前好转，继续康复训练", "复查指标正常，按计划管理")


class World:
    """Where the patients live, which facility is their primary care, who works where, and the
    alliances (医共体/医联体): read once, in bulk."""

    def __init__(self, conn: Connection, session: Session):
        self.home: dict[int, tuple[int | None, int | None]] = {}
        self.neighbours: dict[int | None, list[int]] = defaultdict(list)
        for pid, village, township in patient_queries.standing_residences(conn):
            self.home[pid] = (village, township)
            self.neighbours[township].append(pid)
        facilities = registry_queries.outpatient_facilities(conn)
        self.level = {f[0]: f[1] for f in facilities}
        self.county = {f[0]: f[3] for f in facilities}
        self.centre: dict[int | None, int] = {}
        for org, level, _type, _county, township in facilities:
            if level == "L1" and township is not None:
                self.centre.setdefault(township, org)
        village_county = registry_queries.village_counties(conn)
        self.clinic = registry_queries.primary_facility_by_division(conn, list(village_county))
        self.region_code = {v: code for v, _t, code in registry_queries.village_places(conn)}
        for village, org in self.clinic.items():
            self.level[org], self.county[org] = "L0", village_county.get(village)
        self.primary: dict[int | None, list[int]] = defaultdict(list)
        for org in sorted(self.level):
            if self.level[org] in ("L0", "L1"):
                self.primary[self.county[org]].append(org)
        resources = registry_queries.facility_resources(conn, sorted(self.level))
        self.dept_code = {dept: code for dept, _org, code, _name in resources["departments"]}
        self.dept_of = {(org, code): dept for dept, org, code, _name in reversed(resources["departments"])}
        self.doctors: dict[int, list[tuple[int, int | None]]] = defaultdict(list)
        for pid, org, dept, _title, _name, _primary in resources["doctors"]:
            self.doctors[org].append((pid, dept))
        self.alliances: dict[int, set[int]] = defaultdict(set)
        self.lead: dict[int, int] = {}
        for alliance in registry_queries.search_alliances(session, limit=100_000).items:
            self.lead[alliance.id] = alliance.lead_org_id
            for org in registry_queries.organizations_in_scope(session, alliance_ids=[alliance.id]):
                self.alliances[org].add(alliance.id)

    def below(self, org: int | None, receiver: int) -> bool:
        return org is not None and org != receiver and \
            d.LEVELS.index(self.level.get(org, "L0")) < d.LEVELS.index(self.level.get(receiver, "L2"))

    def sender(self, rng: random.Random, patient: int, receiver: int) -> int | None:
        """The patient's township centre (55 %) or village clinic, if below the receiver; else
        a primary facility of the receiver's county, else of the region."""
        village, township = self.home.get(patient, (None, None))
        options = [o for o in (self.centre.get(township), self.clinic.get(village)) if self.below(o, receiver)]
        if len(options) == 2:
            return options[0] if rng.random() < 0.55 else options[1]
        if options:
            return options[0]
        nearby = [o for o in self.primary.get(self.county.get(receiver), []) if self.below(o, receiver)]
        everywhere = [o for orgs in self.primary.values() for o in orgs if self.below(o, receiver)]
        return rng.choice(nearby or everywhere) if nearby or everywhere else None

    def same_alliance(self, a: int, b: int) -> bool:
        return bool(self.alliances.get(a, set()) & self.alliances.get(b, set()))

    def referral_centre(self, sender: int, receiver: int) -> int:
        """As ``service.referral_centre``: the lead of a shared alliance, else of the receiver's."""
        shared = sorted(self.alliances.get(sender, set()) & self.alliances.get(receiver, set()))
        for alliance in shared or sorted(self.alliances.get(receiver, set())):
            return self.lead[alliance]
        return receiver


def bulk_insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Whole rows, each column's bind processor for this dialect applied to its non-null
    values: what ``conn.execute(insert(table), rows)`` does, without its per-row parameter
    machinery, and by ``COPY`` on PostgreSQL (a third of the time for a third of a million
    events). Columns null in every row are left to their default (NULL: none has a server
    default)."""
    if not rows:
        return
    dialect, quote = conn.dialect, conn.dialect.identifier_preparer.quote
    used = [c for c in table.columns if any(row[c.name] is not None for row in rows)]
    names = [c.name for c in used]
    get = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
    procs = [(i, p) for i, c in enumerate(used) if (p := _processor(c, dialect, rows)) is not None]
    values = []
    for row in rows:
        value = list(get(row))
        for i, proc in procs:
            if value[i] is not None:
                value[i] = proc(value[i])
        values.append(tuple(value))
    listed = ", ".join(quote(n) for n in names)
    if dialect.name == "postgresql":
        with conn.connection.cursor() as cursor, cursor.copy(f"COPY {quote(table.name)} ({listed}) FROM STDIN") as copy:
            for value in values:
                copy.write_row(value)
        return
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(f"INSERT INTO {quote(table.name)} ({listed}) VALUES ({', '.join([mark] * len(used))})",
                         values)


def _processor(column, dialect, rows: list[dict[str, Any]]) -> Callable[[Any], Any] | None:
    """The column's bind processor; on SQLite a UTC time's is its ISO text, written directly
    (the generic path converts and formats each of a million times in three steps) after
    checking that both give the same text."""
    proc = column.type.dialect_impl(dialect).bind_processor(dialect)
    if dialect.name != "sqlite" or not isinstance(column.type, UTCDateTime):
        return proc
    sample = next((r[column.name] for r in rows if r[column.name] is not None), None)
    if sample is not None and _sqlite_utc(sample) != proc(sample):
        return proc
    return _sqlite_utc


def _sqlite_utc(value: datetime) -> str:
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("naive datetime given; HealthGrid stores aware UTC datetimes only")
    return (value.astimezone(UTC) if offset else value).isoformat(" ", "microseconds")[:26]
