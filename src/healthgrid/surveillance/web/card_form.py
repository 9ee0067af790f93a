"""The report-card form of the pages: what it posts (:class:`CardForm`, every value a bounded
string), how that becomes the service's ``CardIn`` and supplementary card — collecting what
it cannot read as problems beside their fields instead of failing — the form's values from a
card (prefill, correction), and the choices of its selects (diseases by class, subtypes by
disease, the card's code lists) in the page's language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from pydantic import BaseModel, Field

from ...web import pick
from .. import card_fields as cf
from .. import card_supplement as supp
from ..card_fields import CardIn, Problem
from ..catalogue import CASE_CLASSES, Catalogue

TEXTS = ("patient_name", "parent_name", "id_type", "id_number", "id_holder", "sex", "age_unit", "work_unit",
         "school_class", "phone", "current_address", "current_address_code", "household_address",
         "household_address_code", "population_group", "population_group_other", "case_class", "case_class2",
         "disease", "subtype", "other_disease_name", "ethnicity", "marital_status", "education", "doctor", "remarks")
DATES = ("birth_date", "onset_date", "death_date", "fill_date")
NUMBERS = ("age", "belongs_to")
CLASS_LABELS = {"A": ("甲类传染病", "Class A"), "B": ("乙类传染病", "Class B"), "C": ("丙类传染病", "Class C"),
                "other": ("其他法定管理以及重点监测传染病", "Other notifiable and monitored diseases")}


class CardForm(BaseModel):
    """What the card form posts; the card's rules are the service's."""

    action: str = Field("submit", max_length=10)
    key: str = Field("", max_length=100)
    org: str = Field("", max_length=12)
    patient_id: str = Field("", max_length=12)
    icd10: str = Field("", max_length=20)
    source: str = Field("", max_length=70)
    new_episode: str = Field("", max_length=2)
    version: str = Field("", max_length=12)
    reason: str = Field("", max_length=1000)
    patient_name: str = Field("", max_length=60)
    parent_name: str = Field("", max_length=60)
    id_type: str = Field("resident_id", max_length=20)
    id_number: str = Field("", max_length=40)
    id_holder: str = Field("self", max_length=10)
    sex: str = Field("", max_length=2)
    birth_date: str = Field("", max_length=12)
    age: str = Field("", max_length=4)
    age_unit: str = Field("", max_length=8)
    work_unit: str = Field("", max_length=100)
    school_class: str = Field("", max_length=60)
    phone: str = Field("", max_length=30)
    belongs_to: str = Field("", max_length=2)
    current_address: str = Field("", max_length=100)
    current_address_code: str = Field("", max_length=12)
    household_address: str = Field("", max_length=100)
    household_address_code: str = Field("", max_length=12)
    population_group: str = Field("", max_length=30)
    population_group_other: str = Field("", max_length=30)
    case_class: str = Field("", max_length=20)
    case_class2: str = Field("", max_length=20)
    onset_date: str = Field("", max_length=12)
    diagnosed_day: str = Field("", max_length=12)
    diagnosed_hour: str = Field("", max_length=2)
    death_date: str = Field("", max_length=12)
    disease: str = Field("", max_length=10)
    subtype: str = Field("", max_length=10)
    other_disease_name: str = Field("", max_length=30)
    outbreak: str = Field("", max_length=2)
    ethnicity: str = Field("", max_length=2)
    marital_status: str = Field("", max_length=20)
    education: str = Field("", max_length=20)
    doctor: str = Field("", max_length=40)
    fill_date: str = Field("", max_length=12)
    remarks: str = Field("", max_length=100)
    s_contact_history: list[str] = Field(default_factory=list, max_length=12)
    s_std_history: str = Field("", max_length=20)
    s_route: str = Field("", max_length=20)
    s_sample_source: str = Field("", max_length=20)
    s_lab_conclusion: str = Field("", max_length=20)
    s_lab_positive_date: str = Field("", max_length=12)
    s_lab_unit: str = Field("", max_length=50)
    s_lab_result: str = Field("", max_length=20)
    s_severe: str = Field("", max_length=4)


@dataclass
class Parsed:
    card: CardIn
    supplementary: dict[str, Any]
    problems: list[Problem]  # what could not be read


def _bad(field: str, zh: str, en: str) -> Problem:
    return Problem("SURV-305", field, zh, en)


def _day(raw: str, field: str, out: list[Problem]) -> date | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        out.append(_bad(field, "日期格式应为 YYYY-MM-DD", "a date as YYYY-MM-DD"))
        return None


def _number(raw: str, field: str, out: list[Problem]) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if raw.isascii() and raw.isdigit():
        return int(raw)
    out.append(_bad(field, "应为整数", "a whole number"))
    return None


def _diagnosed(form: CardForm, out: list[Problem]) -> datetime | None:
    day = _day(form.diagnosed_day, "diagnosed_at", out)
    hour = _number(form.diagnosed_hour, "diagnosed_at", out)
    if day is None or hour is None:
        return None
    if hour > 23:
        out.append(_bad("diagnosed_at", "小时为0–23", "hour 0–23"))
        return None
    return datetime.combine(day, time(hour))


def supplement_of(form: CardForm, kind: str | None) -> dict[str, Any]:
    """The items of the disease's supplementary card that were filled in."""
    found: dict[str, Any] = {}
    for item, _kind, _choices, _required, _label in supp.SUPPLEMENT.get(kind or "", ()):
        value = getattr(form, f"s_{item}")
        value = [v for v in value if v] if isinstance(value, list) else value.strip()
        if value:
            found[item] = value
    return found


def parse_form(form: CardForm, supplement_kind: str | None) -> Parsed:
    out: list[Problem] = []
    values: dict[str, Any] = {k: (getattr(form, k).strip() or None) for k in TEXTS}
    values["id_holder"] = values["id_holder"] or "self"
    values.update({k: _day(getattr(form, k), k, out) for k in DATES})
    values.update({k: _number(getattr(form, k), k, out) for k in NUMBERS})
    values["diagnosed_at"] = _diagnosed(form, out)
    values["outbreak"] = form.outbreak == "1"
    extra = supplement_of(form, supplement_kind)
    if extra.get("lab_positive_date") and _day(extra["lab_positive_date"], "supplementary.lab_positive_date",
                                               out) is None:
        extra.pop("lab_positive_date")
    # The form shows the disease's 附卡 whenever it needs one: what is missing is SURV-320.
    values["supplementary_card"] = bool(extra) or supplement_kind is not None
    return Parsed(CardIn(**values), extra, out)


def form_values(card: CardIn | None, supplementary: dict[str, Any] | None = None) -> dict[str, Any]:
    """The form's values (strings) from a card: prefilled, or the card being corrected."""
    if card is None:
        return {"id_type": "resident_id", "id_holder": "self", "s_contact_history": []}
    values: dict[str, Any] = {k: getattr(card, k) or "" for k in TEXTS}
    values.update({k: getattr(card, k).isoformat() if getattr(card, k) else "" for k in DATES})
    values.update({k: "" if getattr(card, k) is None else str(getattr(card, k)) for k in NUMBERS})
    at = card.diagnosed_at
    values.update(diagnosed_day=at.date().isoformat() if at else "", diagnosed_hour=str(at.hour) if at else "",
                  outbreak="1" if card.outbreak else "")
    for item, *_rest in (i for items in supp.SUPPLEMENT.values() for i in items):
        value = (supplementary or {}).get(item)
        values[f"s_{item}"] = value if isinstance(value, list) else (value or "")
    values["s_contact_history"] = values.get("s_contact_history") or []
    return values


def posted_values(form: CardForm) -> dict[str, Any]:
    return form.model_dump()


def problems_by_field(problems: list[Problem], lang: str) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for p in problems:
        found.setdefault(p.field, []).append({"code": p.code, "text": p.en if lang == "en" else p.zh})
    return found


# -- what the selects offer ----------------------------------------------------------------------

def diseases(catalogue: Catalogue, day: date, lang: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The diseases notifiable on ``day``, grouped by legal class (甲, 乙, 丙, other)."""
    groups = []
    for klass, label in CLASS_LABELS.items():
        items = [(d.code, f"{d.code} {pick((d.zh, d.en), lang)}") for d in catalogue.valid_on(day, klass)]
        if items:
            groups.append((pick(label, lang), items))
    return groups


def subtypes(catalogue: Catalogue, day: date, lang: str) -> list[tuple[str, list[tuple[str, str]]]]:
    return [(pick((d.zh, d.en), lang), [(s.code, f"{s.code} {pick((s.zh, s.en), lang)}") for s in d.subtypes])
            for d in catalogue.valid_on(day) if d.subtypes]


# English of the card's Chinese-only tables (card_fields.py).
ENGLISH = {"unmarried": "Unmarried", "married": "Married", "divorced_widowed": "Divorced or widowed",
           "unknown": "Unknown", "illiterate": "Illiterate", "primary": "Primary school",
           "junior_secondary": "Junior secondary", "senior_secondary": "Senior secondary or vocational",
           "tertiary": "College or above", 1: "This county", 2: "Another county of this city",
           3: "Another city of this province", 4: "Another province", 5: "Hong Kong, Macao or Taiwan",
           6: "Foreign national"}


def choices(table: dict[Any, Any], lang: str) -> list[tuple[str, str]]:
    """A code table of the card as (code, label) pairs in the page's language."""
    return [(str(code), pick((label, ENGLISH.get(code, label)), lang) if isinstance(label, str) else pick(label, lang))
            for code, label in table.items()]


def select_options(lang: str) -> dict[str, list[tuple[str, str]]]:
    return {"id_type": choices(cf.ID_TYPES, lang), "sex": choices(cf.SEXES, lang),
            "age_unit": [(k, {"years": ("岁", "years"), "months": ("月", "months"), "days": ("天", "days")}[k][
                lang == "en"]) for k in cf.AGE_UNITS],
            "belongs_to": [(code, f"{code} {label}") for code, label in choices(cf.BELONGS_TO, lang)],
            "population_group": choices(cf.POPULATION_GROUPS, lang), "case_class": choices(CASE_CLASSES, lang),
            "case_class2": choices(cf.CASE_CLASSES_2, lang), "marital_status": choices(cf.MARITAL, lang),
            "education": choices(cf.EDUCATION, lang)}
