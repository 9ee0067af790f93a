"""The notifiable-disease report card (中华人民共和国传染病报告卡) and its validation.

Every field of the 2019 national card and every field and cross-field rule of
../shared/specs/domain-rules.md §5.3, which come from the national interface rules as
implemented in public CHIS code [V-code]. :func:`validate_card` collects *all* problems at
once (a doctor filling a card wants the whole list), each a :class:`Problem` with a stable
code SURV-2nn, the field, and a message in Chinese and English; :func:`invalid` wraps them
in one ``Invalid("SURV-200")`` for the surfaces. Disease rules (allowed case
classifications, subtypes, 附卡, acute/chronic …) are data in the catalogue, looked up on
the diagnosis date. No I/O: the clock is the ``now`` argument.

Deliberate choices, where the spec leaves room:
- Age is full years (周岁) from the birth date to the card-fill date (CHIS: 按自然日计算);
  shown as 岁 from 1 year, else 月, else 天. A card may give the age instead of the birth
  date (2019 card: 出生日期不详时填实足年龄); if it gives both, they must agree.
- The ID number belongs to the patient (``id_holder="self"``) or, for a child ≤14, to a
  parent; only the patient's own number is compared with birth date and sex.
- 病人属于 is derived from the current-address code against the report area: same county 1,
  same city 2, same province 3, other province 4, Taiwan/HK/Macao (71/81/82) 5. A foreign
  national (6) may live anywhere, so 6 is not compared.
- Marital status and education for AIDS/HIV are not required for 5 and 6 (CHIS rule);
  ethnicity and the household address always are.
- 订正病名 is the disease as first reported (订正前的病名, 填卡说明 [M]).
- Times are naive local (China Standard Time), as written on the card.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ..errors import Invalid
from ..registry.domain import DivisionLevel, check_division_code
from ..security.domain import PROVINCE_PREFIXES, parse_resident_id
from . import card_fields as f
from .card_fields import CardIn, Problem
from .catalogue import CASE_CLASSES, Catalogue, Disease

__all__ = ["CardIn", "Problem", "age_on", "expected_belongs_to", "invalid", "report_deadline", "review_deadline",
           "validate_card"]

_CODE = re.compile(r"^[0-9A-Za-z\-]{1,30}$")
_PHONE = re.compile(r"^[0-9\-]+$")


def invalid(problems: list[Problem]) -> Invalid:
    """All problems as one coded error for the API, FHIR and the web form."""
    return Invalid("SURV-200", f"the report card has {len(problems)} problem(s): "
                   + "; ".join(f"{p.code} {p.field}: {p.en}" for p in problems),
                   {"problems": [p.as_dict() for p in problems]})


def age_on(born: date, day: date) -> tuple[int, str]:
    """The card's age and unit on ``day``: full years (岁) from 1, else months, else days."""
    months = (day.year - born.year) * 12 + day.month - born.month - (day.day < born.day)
    if months >= 12:
        return months // 12, "years"
    return (months, "months") if months >= 1 else ((day - born).days, "days")


def expected_belongs_to(address_code: str, report_area_code: str) -> int:
    """病人属于 implied by the current-address code relative to the report area (county)."""
    if address_code[:2] in f.OVERSEAS_PREFIXES:
        return 5
    for digits, value in ((6, 1), (4, 2), (2, 3)):
        if address_code[:digits] == report_area_code[:digits]:
            return value
    return 4


@dataclass
class _Check:
    card: CardIn
    catalogue: Catalogue
    now: datetime
    out: list[Problem]
    disease: Disease | None = None
    age_years: int | None = None

    @property
    def today(self) -> date:
        return self.now.date()

    def add(self, code: str, field: str, zh: str, en: str) -> None:
        self.out.append(Problem(code, field, zh, en))


def validate_card(card: CardIn, *, catalogue: Catalogue, now: datetime) -> list[Problem]:
    """Every problem of ``card``; an empty list means it can be reported."""
    c = _Check(card, catalogue, now, [])
    for check in (_report_type, _patient, _age, _identity, _contact, _address, _population, _dates, _disease,
                  _case_class, _disease_fields, _reporter):
        check(c)
    return c.out


def report_deadline(card: CardIn, catalogue: Catalogue) -> timedelta:
    """How long after diagnosis the card must reach the network (§5.2): 2 h or 24 h."""
    return catalogue.reporting_limit(card.disease or "", _lookup_day(card), card.subtype, outbreak=card.outbreak)


def review_deadline(card: CardIn, catalogue: Catalogue) -> timedelta:
    """How long the county CDC has to review the card once reported (§5.2 [M]): 2 h or 24 h."""
    return catalogue.review_limit(card.disease or "", _lookup_day(card), card.subtype, outbreak=card.outbreak)


def _lookup_day(card: CardIn) -> date:
    """The day the disease is looked up on: the diagnosis, else the card-fill date."""
    day = card.diagnosed_at.date() if card.diagnosed_at else card.fill_date
    if day is None:
        raise Invalid("SURV-231", "diagnosed_at: the diagnosis time is needed to look the disease up",
                      {"field": "diagnosed_at"})
    return day


# -- the checks, in the order of the card ----------------------------------------------------

def _blank(value: str | None) -> bool:
    return value is None or not value.strip() or value.strip() == "/"


def _name_ok(value: str | None) -> bool:
    """2–20 characters, not starting with a digit, with a letter, and no special characters
    other than the middle dot and the marks of foreign names (CHIS: 姓名不能全为数字或特殊字符)."""
    name = unicodedata.normalize("NFKC", value or "").strip()
    return (2 <= len(name) <= 20 and not name[0].isdigit() and any(ch.isalpha() for ch in name)
            and all(ch.isalnum() or ch in "·•.-' " for ch in name))


def _report_type(c: _Check) -> None:
    card = c.card
    if _blank(card.card_number) or not _CODE.match(card.card_number.strip()):
        c.add("SURV-201", "card_number", "卡片编号必填，1–30位字母、数字或-", "card number: 1–30 letters, digits or -")
    if card.report_type not in f.REPORT_TYPES:
        c.add("SURV-202", "report_type", "报卡类别须为初次报告、订正报告或删除",
              "report type is first, correction or deletion")
    if card.report_type == "correction":
        if _blank(card.corrected_disease) or not c.catalogue.versions(card.corrected_disease.strip()):
            c.add("SURV-203", "corrected_disease", "订正报告须填写订正病名（目录中的病种）",
                  "a correction names the disease as first reported (a catalogue code)")
        if _blank(card.correction_reason):
            c.add("SURV-204", "correction_reason", "订正报告须填写订正原因", "a correction needs its reason")
    if card.report_type == "deletion":
        if card.delete_type not in f.DELETE_TYPES:
            c.add("SURV-205", "delete_type", "删除须填写删除类型",
                  f"a deletion needs a delete type: {sorted(f.DELETE_TYPES)}")
        if _blank(card.delete_reason):
            c.add("SURV-206", "delete_reason", "删除须填写具体删除原因", "a deletion needs its reason")


def _patient(c: _Check) -> None:
    if not _name_ok(c.card.patient_name):
        c.add("SURV-207", "patient_name", "患者姓名为2–20个字，不能全为数字或特殊字符，首位不能为数字",
              "patient name: 2–20 characters, not only digits or symbols, not starting with a digit")
    if c.card.sex not in f.SEXES:
        c.add("SURV-214", "sex", "性别须为1（男）或2（女）", "sex is 1 (male) or 2 (female), GB/T 2261.1")


def _age(c: _Check) -> None:
    card, ref = c.card, c.card.fill_date or c.today
    if card.birth_date is None and card.age is None:
        c.add("SURV-215", "birth_date", "出生日期必填（不详时填实足年龄）",
              "birth date required (or the age if it is unknown)")
        return
    if card.birth_date is not None:
        if card.birth_date > c.today:
            c.add("SURV-215", "birth_date", "出生日期不能晚于当前日期", "birth date is in the future")
            return
        value, unit = age_on(card.birth_date, ref)
        c.age_years = value if unit == "years" else 0
        if card.age is not None and (card.age, card.age_unit) != (value, unit):
            c.add("SURV-216", "age", f"年龄与出生日期不符，应为{value}{f.AGE_UNITS[unit]}",
                  f"age disagrees with the birth date: {value} {unit}")
        return
    limits = {"years": 120, "months": 11, "days": 31}
    if card.age_unit not in limits or not 0 <= card.age <= limits[card.age_unit]:
        c.add("SURV-216", "age", "年龄单位须为岁、月或天，且数值合理", "age: 0–120 years, 0–11 months or 0–31 days")
        return
    c.age_years = card.age if card.age_unit == "years" else 0


def _identity(c: _Check) -> None:
    card = c.card
    if card.id_type not in f.ID_TYPES or _blank(card.id_number):
        c.add("SURV-209", "id_number", "证件类型和号码必填（身份证号不明可填00000000000000000X）",
              f"ID type ({sorted(f.ID_TYPES)}) and number required; {f.UNKNOWN_ID} when unknown")
        return
    if card.id_holder not in ("self", "parent"):
        c.add("SURV-211", "id_holder", "证件持有人须为本人或家长", "ID holder: self or parent")
    elif card.id_holder == "parent" and (c.age_years is None or c.age_years > 14):
        c.add("SURV-211", "id_holder", "14岁以上患者须填写本人证件号码", "a patient over 14 gives their own ID number")
    number = card.id_number.strip().upper()
    if card.id_type != "resident_id" or number == f.UNKNOWN_ID:
        if not _CODE.match(number):
            c.add("SURV-210", "id_number", "证件号码为1–30位字母或数字", "ID number: 1–30 letters or digits")
        return
    try:
        rid = parse_resident_id(number, today=c.today)
    except Invalid as exc:
        c.add("SURV-210", "id_number", "身份证号码无效（15或18位，前2位为省级编码，校验码正确）", exc.message)
        return
    if card.id_holder == "parent":
        return
    if card.birth_date is not None and rid.birth_date != card.birth_date:
        c.add("SURV-212", "birth_date", "出生日期与身份证号码不一致",
              f"birth date differs from the ID number's ({rid.birth_date.isoformat()})")
    if card.sex in f.SEXES and {"1": "M", "2": "F"}[card.sex] != rid.sex:
        c.add("SURV-213", "sex", "性别与身份证号码不一致", "sex differs from the ID number's (17th digit odd = male)")


def _contact(c: _Check) -> None:
    card, child = c.card, c.age_years is not None and c.age_years <= 14
    if (child or card.population_group in f.CHILD_GROUPS) and _blank(card.parent_name):
        c.add("SURV-208", "parent_name", "14岁及以下患儿须填写家长姓名", "a child of 14 or under needs a parent's name")
    if not _blank(card.parent_name) and not _name_ok(card.parent_name):
        c.add("SURV-207", "parent_name", "家长姓名为2–20个字，不能全为数字或特殊字符，首位不能为数字",
              "parent's name: 2–20 characters, not only digits or symbols, not starting with a digit")
    phone = (card.phone or "").strip()
    if child and not phone:
        c.add("SURV-218", "phone", "14岁及以下患者须填写联系电话", "a patient aged 14 or under needs a phone number")
    elif phone and (len(phone) >= 18 or not _PHONE.match(phone)):
        c.add("SURV-218", "phone", "联系电话为数字，少于18位", "phone: digits (and -), fewer than 18 characters")


def _division_ok(code: str | None, level: DivisionLevel) -> bool:
    if code is None or not code.isdigit():
        return False
    parent = {DivisionLevel.COUNTY: code[:4] + "00", DivisionLevel.TOWNSHIP: code[:6],
              DivisionLevel.VILLAGE: code[:9] + "000"}[level]
    try:
        check_division_code(code, level, parent)
    except Invalid:
        return False
    # 91–99 are unassigned in GB/T 2260: the synthetic regions use them (registry/synth.py),
    # as parse_resident_id accepts their ID numbers.
    return code[:2] in PROVINCE_PREFIXES or code[0] == "9"


def _township_or_below(code: str | None) -> bool:
    return _division_ok(code, DivisionLevel.TOWNSHIP) or _division_ok(code, DivisionLevel.VILLAGE)


def _address(c: _Check) -> None:
    card = c.card
    if _blank(card.current_address) or len(card.current_address.strip()) > 50:
        c.add("SURV-221", "current_address", "现住址必填，最长50个字",
              "current address required, at most 50 characters")
    if card.belongs_to not in f.BELONGS_TO:
        c.add("SURV-219", "belongs_to", "病人属于须为1–6", "patient belongs to: 1–6 (this county … foreign national)")
        return
    code = (card.current_address_code or "").strip()
    if card.belongs_to == 5 and not (code.isdigit() and len(code) in (6, 12) and code[:2] in f.OVERSEAS_PREFIXES):
        c.add("SURV-222", "current_address_code", "港澳台患者的现住址编码须为71/81/82开头",
              "a patient from Taiwan, Hong Kong or Macao has an address code starting 71, 81 or 82")
    elif card.belongs_to <= 4 and not _township_or_below(code):
        c.add("SURV-222", "current_address_code", "现住址国标编码须具体到乡镇（12位统计用区划代码）",
              "current address code down to the township (12-digit statistical division code)")
    elif card.belongs_to <= 5 and _division_ok(card.report_area_code, DivisionLevel.COUNTY):
        expected = expected_belongs_to(code, card.report_area_code)
        if expected != card.belongs_to:
            c.add("SURV-220", "belongs_to", f"病人属于与现住址编码不符，应为{expected}（{f.BELONGS_TO[expected]}）",
                  f"patient belongs to disagrees with the address code and the report area: expected {expected}")


def _population(c: _Check) -> None:
    card, group, age = c.card, c.card.population_group, c.age_years
    if group not in f.POPULATION_GROUPS:
        c.add("SURV-224", "population_group", "人群分类必填且编码须正确",
              f"population group: one of {sorted(f.POPULATION_GROUPS)}")
        return
    other = (card.population_group_other or "").strip()
    if group == "other" and not 1 <= len(other) <= 15:
        c.add("SURV-224", "population_group_other", "人群分类为其他时须填写具体职业，最长15个字",
              "population group 'other' needs the occupation, at most 15 characters")
    if age is not None and age > 14 and group in f.CHILD_GROUPS:
        c.add("SURV-225", "population_group", "14岁以上不能是幼托儿童或散居儿童",
              "over 14 cannot be a childcare or home child")
    elif age is not None and age <= 14 and group in f.WORKERS:
        c.add("SURV-226", "population_group", "从业人员年龄须大于14岁", "a worker must be over 14")
    elif age is not None and age <= 14 and group not in f.CHILD_GROUPS | {"student"}:
        c.add("SURV-225", "population_group", "14岁及以下只能是幼托儿童、散居儿童或学生",
              "aged 14 or under: childcare child, home child or student only")
    unit = (card.work_unit or "").strip()
    if (group in f.NEEDS_WORK_UNIT | f.NEEDS_SCHOOL and _blank(unit)) or len(unit) > 50:
        c.add("SURV-217", "work_unit", "该人群须填写工作单位（托幼机构、学校），最长50个字",
              "work unit (kindergarten or school) required for this group, at most 50 characters")
    if group in f.NEEDS_SCHOOL and _blank(card.school_class):
        c.add("SURV-217", "school_class", "幼托儿童和学生须填写班级",
              "childcare children and students need their class")


def _dates(c: _Check) -> None:
    card, born = c.card, c.card.birth_date
    onset, fill, death = card.onset_date, card.fill_date, card.death_date
    diagnosed = card.diagnosed_at.date() if card.diagnosed_at else None
    for value, field, zh, en in ((onset, "onset_date", "发病日期", "onset date"),
                                 (card.diagnosed_at, "diagnosed_at", "诊断时间", "diagnosis time"),
                                 (fill, "fill_date", "填卡日期", "card-fill date")):
        if value is None:
            c.add("SURV-231", field, f"{zh}必填", f"{en} required")
    at = card.diagnosed_at
    if at is not None and (at.minute, at.second, at.microsecond) != (0, 0, 0):
        c.add("SURV-234", "diagnosed_at", "诊断时间精确到小时（YYYY-MM-DD HH）",
              "diagnosis time is recorded to the hour")
    for later, field, zh, en in ((onset, "onset_date", "发病日期", "onset date"),
                                 (card.diagnosed_at, "diagnosed_at", "诊断时间", "diagnosis time"),
                                 (fill, "fill_date", "填卡日期", "card-fill date"),
                                 (death, "death_date", "死亡日期", "death date")):
        if later is not None and later > (c.now if isinstance(later, datetime) else c.today):
            c.add("SURV-233", field, f"{zh}不能晚于当前时间", f"{en} is in the future")
    pairs = ((born, onset, "birth_date", "出生日期须早于或等于发病日期", "birth date is after the onset date"),
             (born, diagnosed, "birth_date", "出生日期须早于或等于诊断日期", "birth date is after the diagnosis"),
             (born, fill, "birth_date", "出生日期须早于或等于填卡日期", "birth date is after the card-fill date"),
             (born, death, "birth_date", "出生日期须早于或等于死亡日期", "birth date is after the death date"),
             (onset, diagnosed, "onset_date", "发病日期须早于或等于诊断时间", "onset date is after the diagnosis"),
             (onset, fill, "onset_date", "发病日期须早于或等于填卡日期", "onset date is after the card-fill date"),
             (onset, death, "death_date", "死亡日期不能早于发病日期", "death date is before the onset date"),
             (diagnosed, fill, "diagnosed_at", "诊断时间须早于或等于填卡日期", "diagnosis is after the card-fill date"))
    for early, late, field, zh, en in pairs:
        if early is not None and late is not None and early > late:
            c.add("SURV-232", field, zh, en)


def _disease(c: _Check) -> None:
    card = c.card
    if _blank(card.disease):
        c.add("SURV-236", "disease", "疾病名称必填", "disease required")
        return
    day = card.diagnosed_at.date() if card.diagnosed_at else (card.fill_date or c.today)
    try:  # the disease as notifiable on the day of diagnosis
        c.disease = c.catalogue.entry(card.disease.strip(), day)
    except Invalid as exc:
        c.add("SURV-236", "disease", f"病种{card.disease}在{day.isoformat()}不是法定报告病种", exc.message)
        return
    d = c.disease
    if d.subtypes and _blank(card.subtype):
        c.add("SURV-237", "subtype", f"{d.zh}须填写分型", f"{d.en} needs its subtype: {[s.code for s in d.subtypes]}")
    elif not _blank(card.subtype) and d.subtype(card.subtype) is None:
        c.add("SURV-238", "subtype", f"分型{card.subtype}不属于{d.zh}",
              f"subtype {card.subtype} is not one of {d.en}'s")
    name = (card.other_disease_name or "").strip()
    if d.needs_name and not 1 <= len(name) <= 15:
        c.add("SURV-239", "other_disease_name", "其他传染病须填写具体疾病名称，最长15个字",
              "other disease: name it, at most 15 characters")
    elif name and not d.needs_name:
        c.add("SURV-239", "other_disease_name", "只有病种为其他（9899）时才填写疾病名称",
              "a disease name is written only for 'other' (9899)")
    if d.max_age_days_at_report is not None and card.birth_date and card.fill_date \
            and (card.fill_date - card.birth_date).days > d.max_age_days_at_report:
        c.add("SURV-235", "birth_date", f"{d.zh}患者出生日期与报告日期最多相差{d.max_age_days_at_report}天",
              f"{d.en}: at most {d.max_age_days_at_report} days from birth to report")


def _case_class(c: _Check) -> None:
    card, d = c.card, c.disease
    if card.case_class not in CASE_CLASSES:
        c.add("SURV-227", "case_class", "病例分类必填且编码须正确",
              f"case classification: one of {sorted(CASE_CLASSES)}")
    elif d is not None:
        allowed = d.rule("case_classes", card.subtype)
        if card.case_class not in allowed:
            names = "、".join(CASE_CLASSES[a][0] for a in sorted(allowed))
            c.add("SURV-228", "case_class", f"{d.zh}的病例分类只能是：{names}",
                  f"{d.en} allows only: {', '.join(sorted(allowed))}")
    if card.case_class2 not in (None, *f.CASE_CLASSES_2):
        c.add("SURV-229", "case_class2", "病例分类2须为急性、慢性或未分型",
              "case classification 2: acute, chronic or unclassified")
    elif d is not None and d.rule("acute_chronic", card.subtype):
        if card.case_class2 not in ("acute", "chronic"):
            c.add("SURV-229", "case_class2", "乙肝、丙肝、血吸虫病须填写急性或慢性",
                  "hepatitis B, hepatitis C and schistosomiasis need acute or chronic")
    elif d is not None and card.case_class2 in ("acute", "chronic"):
        c.add("SURV-230", "case_class2", "只有乙肝、丙肝、血吸虫病可分急性、慢性",
              "only hepatitis B, hepatitis C and schistosomiasis are acute or chronic")


def _disease_fields(c: _Check) -> None:
    card, d = c.card, c.disease
    if d is None:
        return
    if d.supplementary_card and not card.supplementary_card:
        c.add("SURV-240", "supplementary_card", f"{d.zh}须填报附卡", f"{d.en} needs its supplementary card")
    if "household_address" in d.requires:
        if _blank(card.household_address) or len(card.household_address.strip()) > 50:
            c.add("SURV-223", "household_address", "艾滋病/HIV须填写户籍地址，最长50个字",
                  "AIDS/HIV: household-registration address required, at most 50 characters")
        if not _township_or_below(card.household_address_code):
            c.add("SURV-223", "household_address_code", "艾滋病/HIV的户籍地址编码须具体到乡镇",
                  "AIDS/HIV: household-registration address code down to the township")
    overseas = card.belongs_to in (5, 6)  # CHIS: marital status and education not asked of them
    for field, table, zh, en in (("ethnicity", f.ETHNICITIES, "民族", "ethnicity (GB/T 3304)"),
                                 ("marital_status", f.MARITAL, "婚姻状况", "marital status"),
                                 ("education", f.EDUCATION, "文化程度", "education")):
        value = getattr(card, field)
        if field in d.requires and value is None and not (overseas and field != "ethnicity"):
            c.add("SURV-241", field, f"艾滋病/HIV须填写{zh}", f"AIDS/HIV: {en} required")
        elif value is not None and value not in table:
            c.add("SURV-242", field, f"{zh}编码错误", f"{en}: not a valid code")


def _reporter(c: _Check) -> None:
    card = c.card
    area_ok = _division_ok(card.report_area_code, DivisionLevel.COUNTY)
    if not area_ok:
        c.add("SURV-243", "report_area_code", "报告地区编码须具体到县（区）级（6位）",
              "report area: a county-level code (6 digits, GB/T 2260)")
    if _blank(card.report_unit_code) or not _CODE.match(card.report_unit_code.strip()):
        c.add("SURV-244", "report_unit_code", "报告单位编码必填", "reporting unit code required")
    unit_area = (card.report_unit_area_code or "").strip()
    if area_ok and not (unit_area.isdigit() and unit_area[:6] == card.report_area_code):
        c.add("SURV-245", "report_unit_area_code", "报告单位须属于报告地区",
              "the reporting unit must sit in the report area")
    if not _name_ok(card.doctor):
        c.add("SURV-207", "doctor", "报告医生姓名为2–20个字",
              "reporting doctor: 2–20 characters, not only digits or symbols")
    if card.remarks is not None and len(card.remarks.strip()) > 50:
        c.add("SURV-246", "remarks", "备注最长50个字", "remarks: at most 50 characters")
