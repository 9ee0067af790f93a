"""The fields of the notifiable-disease report card (中华人民共和国传染病报告卡, 2019 version)
and the code sets they take: :class:`CardIn` as filled in, :class:`Problem` as validation
reports it. The rules live in :mod:`.cards`; the diseases in :mod:`.catalogue`.

Source: ../shared/specs/domain-rules.md §5.3 (fields, population groups [V-code]). Codes
here are the platform's own words (``"childcare_child"``), each with its Chinese and English
label; NIDRIS's numeric codes are applied when a card is exchanged. Where the national code
list was not retrieved the set is marked [M].
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

REPORT_TYPES = {"first": ("初次报告", "First report"), "correction": ("订正报告", "Correction"),
                "deletion": ("删除", "Deletion")}
DELETE_TYPES = {"duplicate": ("重复报告", "Duplicate"), "misreport": ("误报/排除", "Reported in error or excluded"),
                "other": ("其他", "Other")}  # [M] platform list; NIDRIS's codes not retrieved
ID_TYPES = {"resident_id": ("居民身份证", "Resident ID card"), "passport": ("护照", "Passport"),
            "hk_macao_permit": ("港澳居民来往内地通行证", "Mainland travel permit (HK/Macao)"),
            "taiwan_permit": ("台湾居民来往大陆通行证", "Mainland travel permit (Taiwan)"), "other": ("其他", "Other")}
UNKNOWN_ID = "00000000000000000X"  # accepted only on this card (§10.1)
AGE_UNITS = {"years": "岁", "months": "月", "days": "天"}
SEXES = {"1": ("男", "Male"), "2": ("女", "Female")}  # GB/T 2261.1 subset used by NIDRIS
BELONGS_TO = {1: "本县区", 2: "本市其他县区", 3: "本省其它地市", 4: "外省", 5: "港澳台", 6: "外籍"}
POPULATION_GROUPS = {  # 人群分类, 2019 card
    "childcare_child": ("幼托儿童", "Child in childcare"), "home_child": ("散居儿童", "Child cared for at home"),
    "student": ("学生", "Student"), "teacher": ("教师", "Teacher"),
    "nursery_worker": ("保育员及保姆", "Nursery worker or nanny"), "food_service": ("餐饮食品业", "Food service"),
    "public_venue_service": ("公共场所服务员", "Public-venue service"),
    "commercial_service": ("商业服务", "Commercial service"), "medical_staff": ("医务人员", "Medical staff"),
    "worker": ("工人", "Worker"), "migrant_worker": ("民工", "Migrant worker"), "farmer": ("农民", "Farmer"),
    "herder": ("牧民", "Herder"), "fisher": ("渔(船)民", "Fisher"),
    "seafarer_driver": ("海员及长途驾驶员", "Seafarer or long-distance driver"),
    "cadre_staff": ("干部职员", "Cadre or office staff"), "retiree": ("离退人员", "Retiree"),
    "homemaker_unemployed": ("家务及待业", "Homemaker or unemployed"), "other": ("其他", "Other"),
    "unknown": ("不详", "Unknown")}
CHILD_GROUPS = frozenset({"childcare_child", "home_child"})
WORKERS = frozenset({"teacher", "nursery_worker", "food_service", "public_venue_service", "commercial_service",
                     "medical_staff", "worker", "migrant_worker", "farmer", "herder", "fisher", "seafarer_driver",
                     "cadre_staff"})
NEEDS_WORK_UNIT = frozenset({"teacher", "medical_staff", "worker", "migrant_worker", "cadre_staff"})
NEEDS_SCHOOL = frozenset({"childcare_child", "student"})
CASE_CLASSES_2 = {"acute": ("急性", "Acute"), "chronic": ("慢性", "Chronic"),
                  "unclassified": ("未分型", "Unclassified")}
# GB/T 3304-1991 民族 codes 01–56, 97 其他未识别民族, 98 外国血统中国籍人士.
ETHNICITIES = frozenset({f"{n:02d}" for n in range(1, 57)} | {"97", "98"})
# AIDS supplementary card (艾滋病性病附卡) choices [M].
MARITAL = {"unmarried": "未婚", "married": "已婚有配偶", "divorced_widowed": "离异或丧偶", "unknown": "不详"}
EDUCATION = {"illiterate": "文盲", "primary": "小学", "junior_secondary": "初中", "senior_secondary": "高中或中专",
             "tertiary": "大专及以上"}
OVERSEAS_PREFIXES = frozenset({"71", "81", "82"})  # GB/T 2260: Taiwan, Hong Kong, Macao


@dataclass(frozen=True, kw_only=True)
class CardIn:
    """A report card as filled in. Everything may be missing: validation says what is."""

    card_number: str | None = None
    report_type: str | None = "first"
    corrected_disease: str | None = None  # correction: 订正病名
    correction_reason: str | None = None
    delete_type: str | None = None  # deletion
    delete_reason: str | None = None
    patient_name: str | None = None
    parent_name: str | None = None
    id_type: str | None = "resident_id"
    id_number: str | None = None
    id_holder: str = "self"  # self | parent (a child ≤14 may give a parent's)
    sex: str | None = None
    birth_date: date | None = None
    age: int | None = None
    age_unit: str | None = None  # years | months | days
    work_unit: str | None = None
    school_class: str | None = None
    phone: str | None = None
    belongs_to: int | None = None
    current_address: str | None = None
    current_address_code: str | None = None
    household_address: str | None = None
    household_address_code: str | None = None
    population_group: str | None = None
    population_group_other: str | None = None
    case_class: str | None = None
    case_class2: str | None = None
    onset_date: date | None = None
    diagnosed_at: datetime | None = None
    death_date: date | None = None
    disease: str | None = None
    subtype: str | None = None
    other_disease_name: str | None = None
    supplementary_card: bool = False
    ethnicity: str | None = None
    marital_status: str | None = None
    education: str | None = None
    report_area_code: str | None = None
    report_unit_code: str | None = None
    report_unit_area_code: str | None = None
    doctor: str | None = None
    fill_date: date | None = None
    remarks: str | None = None
    outbreak: bool = False  # part of an outbreak: a 2-hour report whatever the disease


@dataclass(frozen=True)
class Problem:
    code: str
    field: str
    zh: str
    en: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "zh": self.zh, "en": self.en}
