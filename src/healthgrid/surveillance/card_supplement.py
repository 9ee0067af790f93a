"""The supplementary cards (附卡) of the notifiable-disease report card, 2019 version: the
AIDS/STI card (艾滋病性病附卡) and the HFMD card (手足口病附卡), which the catalogue asks for
(``Disease.supplementary_card``). Their items and choices, each with its Chinese and English
label, and :func:`supplement_problems`, which reports what is missing or wrong as card
problems (SURV-320 a required item missing, SURV-321 a value not among the choices, or an
item the disease's 附卡 does not have). Pure: no I/O.

The items follow the paper cards [M: from the printed 2019 cards; NIDRIS's own code lists
were not retrieved, so the codes are the platform's words, mapped on exchange]. The AIDS
card's ethnicity, marital status, education and household address are fields of the main
card (``CardIn``), checked by :mod:`.cards`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from .card_fields import CardIn, Problem
from .catalogue import load_catalogue

AIDS_CONTACT = {
    "injecting_drugs": ("注射毒品史", "Injecting drug use"), "nonmarital_sex": ("非婚异性性接触史", "Non-marital sex"),
    "partner_positive": ("配偶/固定性伴阳性", "Spouse or steady partner positive"),
    "msm": ("男男性行为史", "Men who have sex with men"), "donation": ("献血（浆）史", "Blood or plasma donation"),
    "transfusion": ("输血/血制品史", "Transfusion or blood products"),
    "mother_positive": ("母亲阳性", "Mother positive"),
    "occupational": ("职业暴露史", "Occupational exposure"), "surgery": ("手术史", "Surgery"),
    "other": ("其他", "Other"), "unknown": ("不详", "Unknown")}
AIDS_ROUTE = {
    "injecting_drugs": ("注射毒品", "Injecting drug use"), "heterosexual": ("异性传播", "Heterosexual"),
    "homosexual": ("同性传播", "Homosexual"), "sex_and_drugs": ("性接触+注射毒品", "Sex and injecting drugs"),
    "plasma": ("采血（浆）", "Blood or plasma collection"),
    "transfusion": ("输血/血制品", "Transfusion or blood products"),
    "mother_to_child": ("母婴传播", "Mother to child"), "occupational": ("职业暴露", "Occupational exposure"),
    "other": ("其他", "Other"), "unknown": ("不详", "Unknown")}
AIDS_SAMPLE = {
    "preoperative": ("术前检测", "Before surgery"), "pre_transfusion": ("受血（制品）前检测", "Before transfusion"),
    "std_clinic": ("性病门诊", "STD clinic"), "other_patients": ("其他就诊者检测", "Other patients"),
    "premarital": ("婚前检查", "Premarital check"), "prenatal": ("孕产期检查", "Antenatal care"),
    "vct": ("检测咨询", "Counselling and testing"), "partner": ("阳性者配偶或性伴检测", "Partner of a positive"),
    "child_of_positive": ("女性阳性者子女检测", "Child of a positive woman"),
    "occupational": ("职业暴露检测", "Occupational exposure"), "blood_donor": ("无偿献血人员检测", "Blood donor"),
    "immigration": ("出入境人员体检", "Border health check"), "detention": ("羁押人员体检", "Detainee check"),
    "survey": ("专题调查", "Survey"), "other": ("其他", "Other")}
AIDS_LAB = {"confirmed": ("确证检测阳性", "Confirmatory test positive"),
            "alternative": ("替代策略检测阳性", "Positive by the alternative strategy"),
            "nucleic_acid": ("核酸检测阳性", "Nucleic-acid test positive")}
STD_HISTORY = {"yes": ("有", "Yes"), "no": ("无", "No"), "unknown": ("不详", "Unknown")}
HFMD_LAB = {"ev71": ("EV71", "EV71"), "coxa16": ("CoxA16", "CoxA16"), "other_ev": ("其他肠道病毒", "Other enterovirus"),
            "not_tested": ("未检测", "Not tested")}
YES_NO = {"yes": ("是", "Yes"), "no": ("否", "No")}
# per card: (item, kind, choices, required, label)
SUPPLEMENT: dict[str, tuple[tuple[str, str, dict | None, bool, tuple[str, str]], ...]] = {
    "aids": (("contact_history", "many", AIDS_CONTACT, True, ("接触史", "Contact history")),
             ("std_history", "one", STD_HISTORY, True, ("性病史", "History of STD")),
             ("route", "one", AIDS_ROUTE, True, ("最可能的感染途径", "Most likely route of infection")),
             ("sample_source", "one", AIDS_SAMPLE, True, ("检测样本来源", "Where the sample came from")),
             ("lab_conclusion", "one", AIDS_LAB, False, ("实验室检测结论", "Laboratory conclusion")),
             ("lab_positive_date", "date", None, False, ("确证检测阳性日期", "Date of the positive confirmation")),
             ("lab_unit", "text", None, False, ("确证检测单位", "Confirming laboratory"))),
    "hfmd": (("lab_result", "one", HFMD_LAB, True, ("实验室结果", "Laboratory result")),
             ("severe", "one", YES_NO, True, ("是否重症", "Severe case"))),
}


def _supplement_item_problem(item: str, kind: str, choices: dict | None, value: Any) -> bool:
    if kind == "many":
        return not (isinstance(value, list) and value and len(value) <= len(choices or {})
                    and all(v in (choices or {}) for v in value))
    if kind == "one":
        return value not in (choices or {})
    if kind == "date":
        try:
            return not (isinstance(value, str) and date.fromisoformat(value))
        except ValueError:
            return True
    return not (isinstance(value, str) and 1 <= len(value.strip()) <= 50 and value.isprintable())


def supplement_problems(card: CardIn, supplementary: Mapping[str, Any]) -> list[Problem]:
    """The supplementary card's problems: SURV-320 an item it requires is missing, SURV-321
    an item is not one of its choices (or not an item of this disease's 附卡)."""
    day = card.diagnosed_at.date() if card.diagnosed_at else card.fill_date
    disease = load_catalogue().find(card.disease or "", day) if day else None
    items = SUPPLEMENT.get(disease.supplementary_card or "", ()) if disease is not None else ()
    known = {i[0] for i in items}
    out = [Problem("SURV-321", f"supplementary.{k}", "该病种的附卡没有此项",
                   "not an item of this disease's supplementary card") for k in sorted(set(supplementary) - known)]
    for item, kind, choices, required, (zh, en) in items:
        value = supplementary.get(item)
        if value in (None, "", []):
            if required:
                out.append(Problem("SURV-320", f"supplementary.{item}", f"附卡须填写{zh}", f"supplementary card: {en}"
                                   " required"))
        elif _supplement_item_problem(item, kind, choices, value):
            out.append(Problem("SURV-321", f"supplementary.{item}", f"附卡的{zh}填写有误",
                               f"supplementary card: {en} is not valid"))
    return out
