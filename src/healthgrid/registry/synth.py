"""The registry's share of the synthetic region: divisions, facilities of every tier,
alliances, departments, services, equipment, practitioners and their practising sites.

Proportions follow the issue and ../shared/specs/domain-rules.md §0: a county has one county
hospital, a TCM hospital, an MCH hospital and a CDC, 10–20 townships each with a health
centre and 10–20 villages each with a clinic; a city has 3–10 counties and 2–5 tertiary
hospitals. Urban districts (区) have sub-districts (街道) with community health service
centres and communities with health stations instead.

Synthetic division codes use the province prefixes 91–99, which GB/T 2260 leaves unassigned,
so a generated region can never be mistaken for (or collide with) a real one.

Rows are generated in memory with ids assigned here and written with bulk executemany in
foreign-key order: the ``province`` size (~20 k facilities, ~150 k practitioners) must be
generated in under a minute.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Connection, func, insert, select, text

from ..errors import Conflict
from ..synth.names import person_name, place_name
from . import domain as d
from .models import (
    Alliance,
    AllianceMember,
    Department,
    Division,
    Equipment,
    HealthcareService,
    KeySpecialty,
    Organization,
    PracticeSite,
    Practitioner,
)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SizeSpec:
    cities: int
    counties: tuple[int, int]
    districts: tuple[int, int]  # how many of a city's counties are urban districts (区)
    townships: tuple[int, int]
    villages: tuple[int, int]
    tertiary: tuple[int, int]
    provincial: bool  # provincial (L4) and national regional centre (L5) facilities
    staff_scale: float = 1.0  # tiny keeps hospitals small so tests stay fast


SIZES: dict[str, SizeSpec] = {
    "tiny": SizeSpec(1, (2, 2), (1, 1), (2, 3), (2, 3), (2, 2), False, staff_scale=0.05),
    "small": SizeSpec(1, (3, 4), (1, 1), (8, 12), (8, 12), (2, 3), False),
    "city": SizeSpec(1, (6, 10), (2, 3), (10, 20), (10, 20), (3, 5), False),
    "province": SizeSpec(12, (3, 10), (1, 3), (10, 20), (10, 20), (2, 5), True),
}

HOSPITAL_DEPTS = ["02", "03", "03.01", "03.02", "03.03", "03.05", "03.07", "03.08", "04", "04.01",
                  "04.02", "04.03", "04.04", "04.05", "05", "05.01", "05.02", "07", "10", "11", "12",
                  "13", "16", "19", "20", "21", "26", "28", "30", "31", "32", "50"]
COUNTY_DEPTS = ["03", "03.03", "03.07", "04", "04.01", "04.03", "05", "05.02", "07", "10", "11",
                "12", "16", "20", "21", "26", "30", "32", "50"]
TCM_DEPTS = ["50", "52", "03", "04", "21", "07", "05", "20", "30", "32"]
MCH_DEPTS = ["05", "05.01", "05.02", "06", "07", "09", "30", "32"]
PRIMARY_DEPTS = ["01", "02", "03", "04", "05", "07", "30", "32", "50"]
CDC_DEPTS = ["01", "16", "17", "30"]
EMERGENCY_DEPTS = ["20"]
SPECIALTY_DEPTS = ["16", "17", "03", "30", "32"]

# (staff lo, hi, share of doctors) per (type, level); other combinations fall back by type.
STAFF = {
    ("general_hospital", "L5"): (2000, 2600, 0.42), ("general_hospital", "L4"): (1500, 2200, 0.42),
    ("general_hospital", "L3"): (600, 1300, 0.42), ("general_hospital", "L2"): (200, 450, 0.45),
    ("tcm_hospital", "L3"): (300, 600, 0.5), ("tcm_hospital", "L2"): (80, 160, 0.5),
    ("mch_hospital", "L4"): (400, 700, 0.4), ("mch_hospital", "L3"): (200, 400, 0.4),
    ("mch_hospital", "L2"): (60, 120, 0.4), ("specialty_hospital", "L3"): (150, 400, 0.4),
    ("specialty_hospital", "L4"): (300, 600, 0.4), ("cdc", None): (30, 80, 0.7),
    ("emergency_centre", None): (40, 100, 0.5), ("township_health_centre", None): (15, 45, 0.5),
    ("community_health_centre", None): (20, 60, 0.5), ("village_clinic", None): (1, 3, 1.0),
    ("community_health_station", None): (2, 5, 0.6),
}

DOCTOR_TITLES = (["chief_physician"] * 8 + ["associate_chief_physician"] * 17
                 + ["attending_physician"] * 35 + ["resident_physician"] * 35 + ["assistant_physician"] * 5)
PRIMARY_DOCTOR_TITLES = (["associate_chief_physician"] * 3 + ["attending_physician"] * 25
                         + ["resident_physician"] * 42 + ["assistant_physician"] * 30)
NURSE_TITLES = (["chief_nurse"] * 1 + ["associate_chief_nurse"] * 5 + ["nurse_in_charge"] * 25
                + ["senior_nurse"] * 35 + ["nurse"] * 34)
VILLAGE_TITLES = ["village_doctor"] * 8 + ["assistant_physician"] * 2

SERVICES = {
    "hospital": ["outpatient", "inpatient", "emergency", "imaging", "laboratory", "telemedicine"],
    "primary": ["outpatient", "inpatient", "public_health", "family_doctor", "laboratory", "imaging"],
    "community": ["outpatient", "public_health", "family_doctor", "laboratory"],
    "village": ["outpatient", "public_health", "family_doctor"],
    "cdc": ["public_health", "laboratory"],
    "emergency": ["emergency"],
}
# (kind, lo, hi) per facility class; lo 0 means some facilities have none.
EQUIPMENT = {
    "tertiary": [("CT", 2, 4), ("MRI", 1, 3), ("US", 10, 30), ("DR", 3, 6), ("MG", 1, 2), ("ENDO", 4, 8),
                 ("CATH", 1, 3), ("DSA", 1, 2), ("ECG", 10, 20), ("LAB", 2, 4), ("ECT", 0, 1)],
    "county": [("CT", 1, 2), ("MRI", 0, 1), ("US", 4, 8), ("DR", 2, 3), ("ENDO", 1, 2), ("CATH", 0, 1),
               ("ECG", 4, 8), ("LAB", 1, 2)],
    "small_hospital": [("CT", 0, 1), ("US", 2, 4), ("DR", 1, 2), ("ECG", 2, 4), ("LAB", 1, 1)],
    "primary": [("CT", 0, 1), ("US", 1, 2), ("DR", 1, 1), ("ECG", 1, 2), ("LAB", 1, 1)],
    "village": [("ECG", 0, 1)],
}


class _Rows:
    """Rows per table with ids assigned here, so children can point at parents at once."""

    def __init__(self) -> None:
        self.tables: dict[type, list[dict]] = defaultdict(list)

    def add(self, table: type, row: dict | None = None, /, **fields) -> int:
        row = fields if row is None else row
        rows = self.tables[table]
        row["id"] = len(rows) + 1
        rows.append(row)
        return row["id"]


class RegionBuilder:
    def __init__(self, rng: random.Random, spec: SizeSpec, now: datetime):
        self.rng, self.spec, self.now = rng, spec, now
        self.rows = _Rows()
        self.licence_seq = 0
        self.county_hospitals_by_city: dict[int, list[int]] = defaultdict(list)
        self.senior_doctors_by_city: dict[int, list[tuple[int, str]]] = defaultdict(list)
        self.org_depts: dict[int, dict[str, int]] = {}

    # -- divisions -------------------------------------------------------------------------
    def division(self, code: str, name: str, level: str, parent: dict | None) -> dict:
        row = {"code": code, "name": name, "level": level, "parent_id": parent["id"] if parent else None,
               "created_at": self.now}
        for anc in ("province_id", "city_id", "county_id", "township_id"):
            row[anc] = parent[anc] if parent else None
        self.rows.add(Division, row)
        if level != "village":
            row[f"{level}_id"] = row["id"]
        return row

    def build(self, seed: int) -> None:
        rng, spec = self.rng, self.spec
        p2 = str(91 + seed % 9)
        taken: set[str] = set()
        prov = self.division(f"{p2}0000", place_name(rng, taken) + "省", "province", None)
        centre = (rng.uniform(24, 38), rng.uniform(104, 118))
        capital = None
        for c in range(spec.cities):
            city = self.division(f"{p2}{c + 1:02d}00", place_name(rng, taken) + "市", "city", prov)
            ccentre = _jitter(rng, centre, 1.5 if spec.cities > 1 else 0.0)
            self.city_facilities(city, ccentre)
            capital = capital or (city, ccentre)
            n_counties = rng.randint(*spec.counties)
            n_districts = min(rng.randint(*spec.districts), n_counties)
            county_names: set[str] = set()
            for j in range(n_counties):
                urban = j < n_districts
                name = place_name(rng, county_names) + ("区" if urban else "县")
                county = self.division(f"{city['code'][:4]}{j + 2:02d}", name, "county", city)
                self.county(county, city, _jitter(rng, ccentre, 0.4), urban)
        if spec.provincial and capital is not None:
            self.provincial_facilities(prov, *capital)

    def county(self, county: dict, city: dict, pos: tuple[float, float], urban: bool) -> None:
        rng = self.rng
        short = county["name"]
        hosp = self.org(county, f"{short}人民医院", "general_hospital", "L2", (3, "B") if rng.random() < 0.25
                        else (2, "A"), pos, depts=COUNTY_DEPTS, equipment="county", services="hospital")
        self.county_hospitals_by_city[city["id"]].append(hosp)
        tcm = self.org(county, f"{short}中医院", "tcm_hospital", "L2", (2, "A"), _jitter(rng, pos, 0.02),
                       depts=TCM_DEPTS, equipment="small_hospital", services="hospital")
        mch = self.org(county, f"{short}妇幼保健院", "mch_hospital", "L2", (2, rng.choice("AB")),
                       _jitter(rng, pos, 0.02), depts=MCH_DEPTS, equipment="small_hospital",
                       services="hospital")
        self.org(county, f"{short}疾病预防控制中心", "cdc", "L2", None, _jitter(rng, pos, 0.02),
                 depts=CDC_DEPTS, equipment=None, services="cdc")
        self.specialty(hosp, ["03.03", "03.07", "04.03", "20"], 1, 3, [("county", 6), ("city", 4)])
        members = [tcm, mch]
        names: set[str] = set()
        for t in range(rng.randint(*self.spec.townships)):
            tname = place_name(rng, names) + ("街道" if urban else rng.choice("镇镇镇乡"))
            town = self.division(f"{county['code']}{t + 1:03d}000", tname, "township", county)
            tpos = _jitter(rng, pos, 0.12)
            centre_type = "community_health_centre" if urban else "township_health_centre"
            centre_name = f"{tname}社区卫生服务中心" if urban else f"{tname}卫生院"
            grade = None if urban or rng.random() < 0.4 else (1, "A")
            members.append(self.org(town, centre_name, centre_type, "L1", grade, tpos, depts=PRIMARY_DEPTS,
                                    equipment="primary", services="community" if urban else "primary"))
            vnames: set[str] = set()
            for v in range(rng.randint(*self.spec.villages)):
                vname = place_name(rng, vnames) + ("社区" if urban else "村")
                vil = self.division(f"{county['code']}{t + 1:03d}{v + 1:03d}", vname, "village", town)
                vtype = "community_health_station" if urban else "village_clinic"
                vorg = f"{vname}卫生服务站" if urban else f"{vname}卫生室"
                members.append(self.org(vil, vorg, vtype, "L0", None, _jitter(rng, tpos, 0.03),
                                        depts=["02"], equipment="village", services="village"))
        self.alliance(f"{county['code']}-YGT", f"{short}医共体", "county_community", hosp, members,
                      county["id"])

    def city_facilities(self, city: dict, pos: tuple[float, float]) -> None:
        rng, short = self.rng, city["name"]
        ordinal = "一二三四五六"
        tertiary = []
        for i in range(rng.randint(*self.spec.tertiary)):
            name = f"{short}中心医院" if i == 0 else f"{short}第{ordinal[i - 1]}人民医院"
            grade = (3, "A") if i < 2 or rng.random() < 0.5 else (3, "B")
            tertiary.append(self.org(city, name, "general_hospital", "L3", grade, _jitter(rng, pos, 0.05),
                                     depts=HOSPITAL_DEPTS, equipment="tertiary", services="hospital",
                                     extra_services=["chest_pain_centre", "stroke_centre", "trauma_centre"]))
            self.specialty(tertiary[-1], HOSPITAL_DEPTS, 2, 5, [("provincial", 6), ("city", 4)])
        self.org(city, f"{short}中医院", "tcm_hospital", "L3", (3, "A"), _jitter(rng, pos, 0.05),
                 depts=TCM_DEPTS, equipment="county", services="hospital")
        self.org(city, f"{short}妇幼保健院", "mch_hospital", "L3", (3, "A"), _jitter(rng, pos, 0.05),
                 depts=MCH_DEPTS, equipment="county", services="hospital",
                 extra_services=["maternal_critical_care", "neonatal_critical_care"])
        self.org(city, f"{short}传染病医院", "specialty_hospital", "L3", (3, "B"), _jitter(rng, pos, 0.05),
                 depts=SPECIALTY_DEPTS, equipment="county", services="hospital")
        self.org(city, f"{short}疾病预防控制中心", "cdc", "L3", None, _jitter(rng, pos, 0.05),
                 depts=CDC_DEPTS, equipment=None, services="cdc")
        self.org(city, f"{short}急救中心", "emergency_centre", "L3", None, _jitter(rng, pos, 0.05),
                 depts=EMERGENCY_DEPTS, equipment=None, services="emergency")

    def finish_city_alliances(self) -> None:
        """Urban groups, specialty alliances and telemedicine networks, once counties exist."""
        for city_row in [r for r in self.rows.tables[Division] if r["level"] == "city"]:
            tertiary = [o["id"] for o in self.rows.tables[Organization]
                        if o["division_id"] == city_row["id"] and o["level"] == "L3"
                        and o["org_type"] == "general_hospital"]
            counties = self.county_hospitals_by_city[city_row["id"]]
            code = city_row["code"]
            self.alliance(f"{code}-JT", f"{city_row['name']}医疗集团", "urban_group", tertiary[0],
                          tertiary[1:] + counties[: max(1, len(counties) // 2)], city_row["id"])
            self.alliance(f"{code}-XT", f"{city_row['name']}胸痛专科联盟", "specialty_alliance",
                          tertiary[0], counties, city_row["id"], specialty="03.03")
            self.alliance(f"{code}-YC", f"{city_row['name']}远程医疗协作网", "telemedicine_network",
                          tertiary[-1], counties, city_row["id"])

    def provincial_facilities(self, prov: dict, city: dict, pos: tuple[float, float]) -> None:
        short = prov["name"]
        ph = self.org(city, f"{short}人民医院", "general_hospital", "L4", (3, "A"),
                      _jitter(self.rng, pos, 0.05),
                      depts=HOSPITAL_DEPTS, equipment="tertiary", services="hospital",
                      extra_services=["chest_pain_centre", "stroke_centre", "trauma_centre"])
        self.specialty(ph, HOSPITAL_DEPTS, 3, 6, [("national", 3), ("provincial", 7)])
        self.org(city, f"{short}妇幼保健院", "mch_hospital", "L4", (3, "A"), _jitter(self.rng, pos, 0.05),
                 depts=MCH_DEPTS, equipment="tertiary", services="hospital",
                 extra_services=["maternal_critical_care", "neonatal_critical_care"])
        self.org(city, f"{short}肿瘤医院", "specialty_hospital", "L4", (3, "A"), _jitter(self.rng, pos, 0.05),
                 depts=["19", "04", "30", "31", "32"], equipment="tertiary", services="hospital")
        self.org(city, f"{short}疾病预防控制中心", "cdc", "L4", None, pos, depts=CDC_DEPTS, equipment=None,
                 services="cdc")
        national = self.org(city, f"国家心血管病区域医疗中心（{short}）", "general_hospital", "L5", (3, "A"),
                            _jitter(self.rng, pos, 0.05), depts=HOSPITAL_DEPTS, equipment="tertiary",
                            services="hospital", extra_services=["chest_pain_centre"])
        self.specialty(national, ["03.03", "04.05", "28"], 2, 3, [("national", 1)])
        all_counties = [h for hs in self.county_hospitals_by_city.values() for h in hs]
        self.alliance(f"{prov['code']}-YC", f"{short}远程医疗协作网", "telemedicine_network", ph,
                      all_counties, prov["id"])

    # -- facilities ------------------------------------------------------------------------
    def org(self, div: dict, name: str, org_type: str, level: str, grade, pos, *, depts, equipment,
            services, extra_services=()) -> int:
        rng = self.rng
        code = f"{div['code']}-{len(self.rows.tables[Organization]) + 1:06d}"
        org_id = self.rows.add(
            Organization, code=code, name=name, level=level, org_type=org_type,
            grade_level=grade[0] if grade else None, grade_class=grade[1] if grade else None,
            division_id=div["id"], parent_org_id=None, address=f"{div['name']}{rng.randint(1, 300)}号",
            phone=f"0{rng.randint(100, 999)}-{rng.randint(2000000, 8999999)}", latitude=round(pos[0], 5),
            longitude=round(pos[1], 5), active=True, version=1, created_at=self.now, updated_at=self.now)
        dept_ids = {code_: self.rows.add(Department, org_id=org_id, code=code_, name=d.DEPARTMENTS[code_][0])
                    for code_ in depts}
        self.org_depts[org_id] = dept_ids
        for kind in list(SERVICES[services]) + [s for s in extra_services if rng.random() < 0.7]:
            self.rows.add(HealthcareService, org_id=org_id, department_id=None, kind=kind,
                          name=d.SERVICE_KINDS[kind][0], active=True)
        for kind, lo, hi in EQUIPMENT.get(equipment, []) if equipment else []:
            if (qty := rng.randint(lo, hi)) > 0:
                self.rows.add(Equipment, org_id=org_id, department_id=dept_ids.get("32"), kind=kind,
                              model=None, quantity=qty)
        self.staff(org_id, org_type, level, div)
        return org_id

    def staff(self, org_id: int, org_type: str, level: str, div: dict) -> None:
        rng = self.rng
        lo, hi, doctor_share = STAFF.get((org_type, level)) or STAFF[(org_type, None)]
        depts = list(self.org_depts[org_id].items())
        primary = level in ("L0", "L1")
        for _ in range(max(1, round(rng.randint(lo, hi) * self.spec.staff_scale))):
            doctor = rng.random() < doctor_share
            if org_type == "village_clinic":
                title, sex = rng.choice(VILLAGE_TITLES), "M" if rng.random() < 0.7 else "F"
            elif doctor:
                title = rng.choice(PRIMARY_DOCTOR_TITLES if primary else DOCTOR_TITLES)
                sex = "M" if rng.random() < 0.55 else "F"
            else:
                title, sex = rng.choice(NURSE_TITLES), "F" if rng.random() < 0.96 else "M"
            dept_code, dept_id = rng.choice(depts)
            self.licence_seq += 1
            kind = "1" if doctor else "2"
            licence = f"{kind}{rng.randint(1990, 2024)}{div['code'][:2]}{self.licence_seq:08d}"
            prac = self.rows.add(
                Practitioner, licence_no=licence,
                name=person_name(rng, sex), sex=sex, birth_year=rng.randint(1960, 2000), title=title,
                specialty_code=dept_code if doctor else None, active=True, created_at=self.now)
            self.rows.add(PracticeSite, practitioner_id=prac, org_id=org_id, department_id=dept_id,
                          is_primary=True, since=date(rng.randint(2005, 2024), 1, 1))
            senior = title in ("chief_physician", "associate_chief_physician")
            if doctor and senior and level in ("L3", "L4", "L5"):
                self.senior_doctors_by_city[div["city_id"]].append((prac, dept_code))

    def multi_site_practice(self) -> None:
        """About 1 in 20 senior city doctors also practise at a county hospital (多点执业)."""
        for city_id, doctors in self.senior_doctors_by_city.items():
            targets = self.county_hospitals_by_city.get(city_id)
            if not targets:
                continue
            chosen = [doc for doc in doctors if self.rng.random() < 0.05] or doctors[:1]
            for prac, dept_code in chosen:
                org = self.rng.choice(targets)
                self.rows.add(PracticeSite, practitioner_id=prac, org_id=org,
                              department_id=self.org_depts[org].get(dept_code), is_primary=False,
                              since=date(self.rng.randint(2017, 2024), 1, 1))

    def specialty(self, org_id: int, pool: list[str], lo: int, hi: int, levels) -> None:
        chosen = self.rng.sample([c for c in pool if c in self.org_depts[org_id]], self.rng.randint(lo, hi))
        weights = [w for _, w in levels]
        for code in chosen:
            level = self.rng.choices([lv for lv, _ in levels], weights)[0]
            self.rows.add(KeySpecialty, org_id=org_id, department_code=code, level=level,
                          year=self.rng.randint(2012, 2024))

    def alliance(self, code, name, kind, lead, members, division_id, specialty=None) -> None:
        aid = self.rows.add(Alliance, code=code, name=name, kind=kind, lead_org_id=lead,
                            division_id=division_id, specialty_code=specialty, created_at=self.now)
        self.rows.add(AllianceMember, alliance_id=aid, org_id=lead, role="lead", joined_on=date(2019, 1, 1))
        for m in dict.fromkeys(members):
            if m != lead:
                self.rows.add(AllianceMember, alliance_id=aid, org_id=m, role="member",
                              joined_on=date(self.rng.randint(2017, 2023), 1, 1))


def _jitter(rng: random.Random, pos: tuple[float, float], spread: float) -> tuple[float, float]:
    return pos[0] + rng.uniform(-spread, spread), pos[1] + rng.uniform(-spread, spread)


WRITE_ORDER = (Division, Organization, Alliance, AllianceMember, Department, HealthcareService, Equipment,
               Practitioner, PracticeSite, KeySpecialty)


def generate(conn: Connection, *, size: str, seed: int, progress: Progress | None = None) -> dict[str, int]:
    """Generate the registry of a region into an empty registry; returns row counts per table."""
    if conn.scalar(select(func.count()).select_from(Division)):
        raise Conflict("SYN-001", "the registry already holds divisions; synth fills an empty database")
    builder = RegionBuilder(random.Random(seed), SIZES[size], datetime.now(UTC).replace(microsecond=0))
    builder.build(seed)
    builder.finish_city_alliances()
    builder.multi_site_practice()
    total = sum(len(builder.rows.tables[m]) for m in WRITE_ORDER)
    done = 0
    for model in WRITE_ORDER:
        rows = builder.rows.tables[model]
        for start in range(0, len(rows), 5000):
            conn.execute(insert(model.__table__), rows[start:start + 5000])
            done += len(rows[start:start + 5000])
            if progress:
                progress("registry", done, total)
        if conn.dialect.name == "postgresql" and rows:
            table = model.__tablename__
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                              f"(SELECT MAX(id) FROM {table}))"))
    return {model.__tablename__: len(builder.rows.tables[model]) for model in WRITE_ORDER}
