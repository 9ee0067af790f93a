"""Pure rules of the registry: levels, grades, types, codes. No I/O, no session.

Tiers follow ../shared/specs/domain-rules.md §0.2 (six levels L0–L5, a deployment may hide
levels it does not use); alliance types §0.3 (国办发〔2017〕32号); hospital grades are stored
as level + class (§0.2: 一/二/三级, each 甲/乙/丙, 三级 adds 特等).
"""

from __future__ import annotations

import re
from enum import StrEnum

from ..errors import Invalid


class DivisionLevel(StrEnum):
    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"


DIVISION_ORDER = list(DivisionLevel)
DIVISION_LABELS = {
    DivisionLevel.PROVINCE: ("省", "Province"),
    DivisionLevel.CITY: ("地市", "City / prefecture"),
    DivisionLevel.COUNTY: ("县区", "County / district"),
    DivisionLevel.TOWNSHIP: ("乡镇街道", "Township / sub-district"),
    DivisionLevel.VILLAGE: ("村社区", "Village / community"),
}


class OrgLevel(StrEnum):
    L0 = "L0"  # 村/社区站 village clinic, community health station
    L1 = "L1"  # 乡镇/街道 township health centre, community health service centre
    L2 = "L2"  # 县 county hospitals, county MCH, county CDC
    L3 = "L3"  # 地市 city tertiary hospitals, medical groups
    L4 = "L4"  # 省 provincial hospitals and centres
    L5 = "L5"  # 国家 national (regional) medical centres


ORG_LEVEL_LABELS = {
    OrgLevel.L0: ("村级", "Village"),
    OrgLevel.L1: ("乡镇级", "Township"),
    OrgLevel.L2: ("县级", "County"),
    OrgLevel.L3: ("地市级", "City"),
    OrgLevel.L4: ("省级", "Province"),
    OrgLevel.L5: ("国家级", "National"),
}


class OrgType(StrEnum):
    GENERAL_HOSPITAL = "general_hospital"
    TCM_HOSPITAL = "tcm_hospital"
    MCH_HOSPITAL = "mch_hospital"
    SPECIALTY_HOSPITAL = "specialty_hospital"
    CDC = "cdc"
    EMERGENCY_CENTRE = "emergency_centre"
    BLOOD_CENTRE = "blood_centre"
    COMMUNITY_HEALTH_CENTRE = "community_health_centre"
    TOWNSHIP_HEALTH_CENTRE = "township_health_centre"
    COMMUNITY_HEALTH_STATION = "community_health_station"
    VILLAGE_CLINIC = "village_clinic"


ORG_TYPE_LABELS = {
    OrgType.GENERAL_HOSPITAL: ("综合医院", "General hospital"),
    OrgType.TCM_HOSPITAL: ("中医医院", "TCM hospital"),
    OrgType.MCH_HOSPITAL: ("妇幼保健院", "Maternal and child health hospital"),
    OrgType.SPECIALTY_HOSPITAL: ("专科医院", "Specialty hospital"),
    OrgType.CDC: ("疾病预防控制中心", "Centre for disease control"),
    OrgType.EMERGENCY_CENTRE: ("急救中心", "Emergency medical centre"),
    OrgType.BLOOD_CENTRE: ("血站", "Blood centre"),
    OrgType.COMMUNITY_HEALTH_CENTRE: ("社区卫生服务中心", "Community health service centre"),
    OrgType.TOWNSHIP_HEALTH_CENTRE: ("乡镇卫生院", "Township health centre"),
    OrgType.COMMUNITY_HEALTH_STATION: ("社区卫生服务站", "Community health station"),
    OrgType.VILLAGE_CLINIC: ("村卫生室", "Village clinic"),
}

# Primary-care types sit on fixed levels; hospitals and public-health bodies on L2..L5.
TYPE_LEVELS: dict[OrgType, frozenset[OrgLevel]] = {
    OrgType.VILLAGE_CLINIC: frozenset({OrgLevel.L0}),
    OrgType.COMMUNITY_HEALTH_STATION: frozenset({OrgLevel.L0}),
    OrgType.TOWNSHIP_HEALTH_CENTRE: frozenset({OrgLevel.L1}),
    OrgType.COMMUNITY_HEALTH_CENTRE: frozenset({OrgLevel.L1}),
}
UPPER_LEVELS = frozenset({OrgLevel.L2, OrgLevel.L3, OrgLevel.L4, OrgLevel.L5})

GRADE_LEVELS = {1: "一级", 2: "二级", 3: "三级"}
GRADE_CLASSES = {"A": "甲等", "B": "乙等", "C": "丙等", "S": "特等"}
GRADE_CLASS_EN = {"A": "Grade A", "B": "Grade B", "C": "Grade C", "S": "Special grade"}


class AllianceKind(StrEnum):
    URBAN_GROUP = "urban_group"
    COUNTY_COMMUNITY = "county_community"
    SPECIALTY_ALLIANCE = "specialty_alliance"
    TELEMEDICINE_NETWORK = "telemedicine_network"


ALLIANCE_LABELS = {
    AllianceKind.URBAN_GROUP: ("城市医疗集团", "Urban medical group"),
    AllianceKind.COUNTY_COMMUNITY: ("县域医共体", "County medical community"),
    AllianceKind.SPECIALTY_ALLIANCE: ("专科联盟", "Specialty alliance"),
    AllianceKind.TELEMEDICINE_NETWORK: ("远程医疗协作网", "Telemedicine network"),
}


class SpecialtyLevel(StrEnum):
    NATIONAL = "national"
    PROVINCIAL = "provincial"
    CITY = "city"
    COUNTY = "county"


SPECIALTY_LEVEL_LABELS = {
    SpecialtyLevel.NATIONAL: ("国家级", "National"),
    SpecialtyLevel.PROVINCIAL: ("省级", "Provincial"),
    SpecialtyLevel.CITY: ("市级", "City"),
    SpecialtyLevel.COUNTY: ("县级", "County"),
}

# Standard clinical department codes, 《医疗机构诊疗科目名录》 (卫医发〔1994〕27号, later
# amended) [M: codes from memory of the catalogue; check against the current edition].
DEPARTMENTS: dict[str, tuple[str, str]] = {
    "01": ("预防保健科", "Preventive care"),
    "02": ("全科医疗科", "General practice"),
    "03": ("内科", "Internal medicine"),
    "03.03": ("心血管内科专业", "Cardiology"),
    "03.04": ("血液内科专业", "Haematology"),
    "03.08": ("内分泌专业", "Endocrinology"),
    "03.01": ("呼吸内科专业", "Respiratory medicine"),
    "03.02": ("消化内科专业", "Gastroenterology"),
    "03.05": ("肾病学专业", "Nephrology"),
    "03.07": ("神经内科专业", "Neurology"),
    "04": ("外科", "Surgery"),
    "04.01": ("普通外科专业", "General surgery"),
    "04.02": ("神经外科专业", "Neurosurgery"),
    "04.03": ("骨科专业", "Orthopaedics"),
    "04.05": ("胸外科专业", "Thoracic surgery"),
    "04.04": ("泌尿外科专业", "Urology"),
    "05": ("妇产科", "Obstetrics and gynaecology"),
    "05.01": ("妇科专业", "Gynaecology"),
    "05.02": ("产科专业", "Obstetrics"),
    "06": ("妇女保健科", "Women's health care"),
    "07": ("儿科", "Paediatrics"),
    "09": ("儿童保健科", "Child health care"),
    "10": ("眼科", "Ophthalmology"),
    "11": ("耳鼻咽喉科", "Otorhinolaryngology"),
    "12": ("口腔科", "Stomatology"),
    "13": ("皮肤科", "Dermatology"),
    "15": ("精神科", "Psychiatry"),
    "16": ("传染科", "Infectious diseases"),
    "17": ("结核病科", "Tuberculosis"),
    "19": ("肿瘤科", "Oncology"),
    "20": ("急诊医学科", "Emergency medicine"),
    "21": ("康复医学科", "Rehabilitation medicine"),
    "26": ("麻醉科", "Anaesthesiology"),
    "28": ("重症医学科", "Critical care medicine"),
    "30": ("医学检验科", "Laboratory medicine"),
    "31": ("病理科", "Pathology"),
    "32": ("医学影像科", "Medical imaging"),
    "50": ("中医科", "Traditional Chinese medicine"),
    "52": ("中西医结合科", "Integrated Chinese and Western medicine"),
}

EQUIPMENT_KINDS: dict[str, tuple[str, str]] = {
    "CT": ("CT", "CT scanner"),
    "MRI": ("磁共振", "MRI scanner"),
    "US": ("超声", "Ultrasound"),
    "DR": ("数字X线摄影", "Digital radiography"),
    "MG": ("乳腺钼靶", "Mammography"),
    "ENDO": ("内镜", "Endoscopy"),
    "CATH": ("导管室", "Cardiac catheterisation lab"),
    "DSA": ("数字减影血管造影", "DSA angiography"),
    "ECG": ("心电图", "Electrocardiography"),
    "PETCT": ("PET-CT", "PET-CT"),
    "ECT": ("发射型计算机断层(ECT)", "SPECT (ECT) gamma camera"),
    "LAB": ("全自动生化分析仪", "Clinical chemistry analyser"),
}

# Healthcare services offered (FHIR HealthcareService.type), plain codes of our own.
SERVICE_KINDS: dict[str, tuple[str, str]] = {
    "outpatient": ("门诊", "Outpatient clinic"),
    "inpatient": ("住院", "Inpatient care"),
    "emergency": ("急诊", "Emergency care"),
    "imaging": ("影像检查", "Imaging examinations"),
    "laboratory": ("检验", "Laboratory tests"),
    "family_doctor": ("家庭医生签约", "Family doctor contracting"),
    "public_health": ("基本公共卫生服务", "Basic public health services"),
    "telemedicine": ("远程会诊", "Remote consultation"),
    "chest_pain_centre": ("胸痛中心", "Chest pain centre"),
    "stroke_centre": ("卒中中心", "Stroke centre"),
    "trauma_centre": ("创伤中心", "Trauma centre"),
    "maternal_critical_care": ("危重孕产妇救治中心", "Critical maternal care centre"),
    "neonatal_critical_care": ("危重新生儿救治中心", "Critical neonatal care centre"),
}

PRACTITIONER_TITLES: dict[str, tuple[str, str]] = {
    "chief_physician": ("主任医师", "Chief physician"),
    "associate_chief_physician": ("副主任医师", "Associate chief physician"),
    "attending_physician": ("主治医师", "Attending physician"),
    "resident_physician": ("医师", "Resident physician"),
    "assistant_physician": ("执业助理医师", "Assistant physician"),
    "village_doctor": ("乡村医生", "Village doctor"),
    "chief_nurse": ("主任护师", "Chief nurse"),
    "associate_chief_nurse": ("副主任护师", "Associate chief nurse"),
    "nurse_in_charge": ("主管护师", "Nurse in charge"),
    "senior_nurse": ("护师", "Senior nurse"),
    "nurse": ("护士", "Nurse"),
}

_DIGITS6 = re.compile(r"^\d{6}$")
_DIGITS12 = re.compile(r"^\d{12}$")
_LICENCE = re.compile(r"^[0-9A-Za-z]{6,32}$")
_ORG_CODE = re.compile(r"^[0-9A-Za-z\-]{2,40}$")


def child_level(level: DivisionLevel) -> DivisionLevel | None:
    i = DIVISION_ORDER.index(level)
    return DIVISION_ORDER[i + 1] if i + 1 < len(DIVISION_ORDER) else None


def check_division_code(code: str, level: DivisionLevel, parent_code: str | None) -> None:
    """GB/T 2260 six-digit codes down to county; 12-digit statistical codes
    (统计用区划代码) for townships (…000 ending) and villages. A child's code extends
    its parent's (province 44xxxx → city 4401xx → county 440106 → 440106001000 → 440106001001).
    """
    def bad(why: str) -> Invalid:
        return Invalid("REG-003", f"division code {code!r} is not a valid {level} code: {why}",
                       {"field": "code", "level": str(level)})

    if level in (DivisionLevel.PROVINCE, DivisionLevel.CITY, DivisionLevel.COUNTY):
        if not _DIGITS6.match(code):
            raise bad("expected 6 digits (GB/T 2260)")
    elif not _DIGITS12.match(code):
        raise bad("expected 12 digits (statistical division code)")
    if level is DivisionLevel.PROVINCE:
        if not code.endswith("0000") or parent_code is not None:
            raise bad("a province code ends in 0000 and has no parent")
        return
    if parent_code is None:
        raise Invalid("REG-004", f"a {level} needs a parent division", {"field": "parent_code"})
    prefix = {DivisionLevel.CITY: 2, DivisionLevel.COUNTY: 4,
              DivisionLevel.TOWNSHIP: 6, DivisionLevel.VILLAGE: 9}[level]
    if code[:prefix] != parent_code[:prefix]:
        raise bad(f"must start with its parent's prefix {parent_code[:prefix]}")
    if level is DivisionLevel.CITY and (not code.endswith("00") or code.endswith("0000")):
        raise bad("a city code ends in 00 (but not 0000)")
    if level is DivisionLevel.COUNTY and code.endswith("00"):
        raise bad("a county code does not end in 00")
    if level is DivisionLevel.TOWNSHIP and (not code.endswith("000") or code[6:9] == "000"):
        raise bad("a township code has a non-zero 7th–9th digit group and ends in 000")
    if level is DivisionLevel.VILLAGE and code.endswith("000"):
        raise bad("a village code does not end in 000")


def check_org_code(code: str) -> None:
    if not _ORG_CODE.match(code):
        raise Invalid("REG-010", f"organisation code {code!r} must be 2–40 letters, digits or '-'",
                      {"field": "code"})


def check_org_level(org_type: OrgType, level: OrgLevel) -> None:
    allowed = TYPE_LEVELS.get(org_type, UPPER_LEVELS)
    if level not in allowed:
        names = ", ".join(sorted(allowed))
        raise Invalid("REG-011", f"a {org_type} sits on level {names}, not {level}",
                      {"field": "level"})


def check_grade(grade_level: int | None, grade_class: str | None) -> None:
    """Grade is level (1–3) plus class (A/B/C = 甲/乙/丙; S = 特等, only for 三级)."""
    if grade_level is None:
        if grade_class is not None:
            raise Invalid("REG-012", "grade_class given without grade_level", {"field": "grade_class"})
        return
    if grade_level not in GRADE_LEVELS:
        raise Invalid("REG-012", f"grade_level must be 1, 2 or 3, not {grade_level}",
                      {"field": "grade_level"})
    if grade_class is not None and grade_class not in GRADE_CLASSES:
        raise Invalid("REG-012", f"grade_class must be one of A, B, C, S, not {grade_class!r}",
                      {"field": "grade_class"})
    if grade_class == "S" and grade_level != 3:
        raise Invalid("REG-012", "特等 (S) exists only for 三级 hospitals", {"field": "grade_class"})


def grade_label(grade_level: int | None, grade_class: str | None, lang: str = "zh") -> str:
    if grade_level is None:
        return "未定级" if lang == "zh" else "Ungraded"
    if lang == "zh":
        return GRADE_LEVELS[grade_level] + (GRADE_CLASSES[grade_class] if grade_class else "")
    cls = f" {GRADE_CLASS_EN[grade_class]}" if grade_class else ""
    return f"Level {grade_level}{cls}"


def check_department_code(code: str) -> None:
    if code not in DEPARTMENTS:
        raise Invalid("REG-020", f"unknown department code {code!r} (《医疗机构诊疗科目名录》)",
                      {"field": "code"})


def check_licence(licence_no: str) -> None:
    if not _LICENCE.match(licence_no):
        raise Invalid("REG-030", f"licence number {licence_no!r} must be 6–32 letters or digits",
                      {"field": "licence_no"})


def parse_enum(kind: type[StrEnum], value: str, code: str, field: str) -> StrEnum:
    """``value`` as a member of ``kind``, or ``Invalid(code)`` naming the field and the choices."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise Invalid(code, f"unknown {field} {value!r}; expected one of {allowed}",
                      {"field": field}) from None


def check_choice(value: str, table: dict, code: str, field: str) -> None:
    if value not in table:
        raise Invalid(code, f"unknown {field} {value!r}; expected one of {', '.join(table)}",
                      {"field": field})
