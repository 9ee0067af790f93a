"""The versioned notifiable-disease catalogue (法定传染病病种目录) and the reporting time limits.

Reference data, not code: ``catalogue.json`` beside this module lists every disease with its
card code, names, ICD-10 codes, legal class (甲/乙/丙 = A/B/C, or ``other`` for nationally
monitored diseases outside the classes), the class it is managed as, the days it is valid
(inclusive), its subtypes, the case classifications the card accepts, whether the card needs
acute/chronic, the supplementary card (附卡), extra required card fields, the CIDARS
fixed-threshold flag and the moving-percentile P_x. Sources: ../shared/specs/domain-rules.md
§5.1 (classes, the 2025 merge), §5.2 (limits), §5.3 (card rules), §5.4 (CIDARS).

A disease is looked up *on a date* — the diagnosis date of a card: mpox is class B only from
2023-09-20, HFMD class C from 2008-05-02, human HPAI and H7N9 give way to 人感染新亚型流感
on 2025-09-01. A code may have several versions (COVID-19 乙类甲管 until 2023-01-07, then
乙类乙管); versions of one code must not overlap.

Reporting limits (《传染病信息报告管理规范》 2015 [V]): 2 hours for class A, class B managed as
A (SARS, pulmonary anthrax …), new or unknown-cause diseases (``urgent``) and any outbreak;
24 hours otherwise. County CDC review: the same 2 h / 24 h split [M]. The hours come from
the catalogue file, not from code.

Loading reads the packaged file once (``load_catalogue()``, cached); ``Catalogue.from_dict``
is the pure part and rejects malformed data with SURV-25x codes. No database, no clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

from ..errors import Invalid

CLASSES = ("A", "B", "C", "other")
CASE_CLASSES = {  # 病例分类 (case classification 1), national card 2019
    "suspected": ("疑似病例", "Suspected case"),
    "clinical": ("临床诊断病例", "Clinically diagnosed case"),
    "confirmed": ("确诊病例", "Confirmed case"),
    "carrier": ("病原携带者", "Pathogen carrier"),
    "positive_test": ("阳性检测", "Positive test (HIV)"),
}
SUPPLEMENTARY_CARDS = {"aids": ("艾滋病性病附卡", "AIDS/STI supplementary card"),
                       "hfmd": ("手足口病附卡", "HFMD supplementary card")}
REQUIRABLE_FIELDS = ("household_address", "ethnicity", "marital_status", "education")


@dataclass(frozen=True)
class Subtype:
    code: str
    zh: str
    en: str
    icd10: tuple[str, ...]
    case_classes: frozenset[str] | None = None  # None = the disease's
    managed_as: str | None = None
    acute_chronic: bool | None = None
    fixed_threshold: bool | None = None


@dataclass(frozen=True)
class Disease:
    """One version of one disease: valid from ``valid_from`` to ``valid_to`` (inclusive)."""

    code: str
    zh: str
    en: str
    icd10: tuple[str, ...]
    klass: str
    managed_as: str
    valid_from: date
    valid_to: date | None
    case_classes: frozenset[str]
    subtypes: tuple[Subtype, ...] = ()
    acute_chronic: bool = False
    supplementary_card: str | None = None
    requires: frozenset[str] = frozenset()
    fixed_threshold: bool = False
    mpm_percentile: int | None = None
    urgent: bool = False  # new, emerging or unknown-cause: a 2-hour report whatever the class
    needs_name: bool = False  # 9899 other: the card names the disease
    max_age_days_at_report: int | None = None
    code_source: str = "nidris"

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    def subtype(self, code: str | None) -> Subtype | None:
        return next((s for s in self.subtypes if s.code == code), None)

    def rule(self, name: str, subtype: str | None = None) -> Any:
        """A rule (``case_classes``, ``managed_as``, ``acute_chronic``, ``fixed_threshold``)
        for the disease, or for one of its subtypes where the subtype overrides it."""
        sub = self.subtype(subtype)
        value = getattr(sub, name) if sub is not None else None
        return getattr(self, name) if value is None else value

    def is_urgent(self, subtype: str | None = None) -> bool:
        return self.urgent or self.rule("managed_as", subtype) == "A"


class Catalogue:
    """All versions of all diseases, with the limits in hours."""

    def __init__(self, diseases: list[Disease], *, default_mpm: int, limits: dict[str, dict[str, int]]):
        self.diseases = tuple(diseases)
        self.default_mpm = default_mpm
        self.limits = limits
        self._by_code: dict[str, list[Disease]] = {}
        for d in self.diseases:
            self._by_code.setdefault(d.code, []).append(d)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Catalogue:
        try:
            defaults = frozenset(data["default_case_classes"])
            diseases = [_disease(raw, defaults) for raw in data["diseases"]]
            limits = {k: {"report": int(v["report"]), "review": int(v["review"])}
                      for k, v in data["limits_hours"].items()}
            default_mpm = int(data["default_mpm_percentile"])
        except (KeyError, TypeError, ValueError) as exc:
            raise Invalid("SURV-250", f"disease catalogue: malformed entry ({exc!r})") from exc
        if set(limits) != {"urgent", "other"}:
            raise Invalid("SURV-250", "disease catalogue: limits_hours needs 'urgent' and 'other'")
        _check_versions(diseases)
        return cls(diseases, default_mpm=default_mpm, limits=limits)

    def versions(self, code: str) -> list[Disease]:
        return sorted(self._by_code.get(code, []), key=lambda d: d.valid_from)

    def find(self, code: str, on: date) -> Disease | None:
        return next((d for d in self._by_code.get(code, []) if d.valid_on(on)), None)

    def entry(self, code: str, on: date) -> Disease:
        """The version of ``code`` valid on ``on``; SURV-251 if unknown or not valid then."""
        found = self.find(code, on)
        if found is not None:
            return found
        versions = self.versions(code)
        if not versions:
            raise Invalid("SURV-251", f"disease {code!r} is not in the catalogue", {"field": "disease"})
        spans = ", ".join(f"{d.valid_from}–{d.valid_to or ''}" for d in versions)
        raise Invalid("SURV-251", f"disease {code} ({versions[0].zh}) is not notifiable on {on.isoformat()}"
                      f" (valid {spans})", {"field": "disease", "code": code, "on": on.isoformat()})

    def icd10(self, code: str, on: date) -> tuple[str, ...]:
        """ICD-10 codes of a card code, disease or subtype (0302 hepatitis B, 0601 HIV …)."""
        found = self.find(code, on)
        if found is not None:
            sub = found.subtype(code)  # 0600 is both the AIDS/HIV group and its AIDS choice
            return sub.icd10 if sub is not None else found.icd10
        for d in self.valid_on(on):
            sub = d.subtype(code)
            if sub is not None:
                return sub.icd10
        return self.entry(code, on).icd10  # raises SURV-251

    def valid_on(self, on: date, klass: str | None = None) -> list[Disease]:
        return [d for d in self.diseases if d.valid_on(on) and (klass is None or d.klass == klass)]

    def disease_class(self, code: str, on: date) -> str:
        return self.entry(code, on).klass

    def managed_as(self, code: str, on: date, subtype: str | None = None) -> str:
        return self.entry(code, on).rule("managed_as", subtype)

    def mpm_percentile(self, code: str, on: date) -> int | None:
        """P_x for the moving percentile method; None for fixed-threshold diseases."""
        d = self.entry(code, on)
        if d.fixed_threshold:
            return None
        return d.mpm_percentile if d.mpm_percentile is not None else self.default_mpm

    def reporting_limit(self, code: str, on: date, subtype: str | None = None, *, outbreak: bool = False) -> timedelta:
        """Network-report limit from diagnosis (§5.2): 2 h urgent or outbreak, else 24 h."""
        return self._limit("report", code, on, subtype, outbreak)

    def review_limit(self, code: str, on: date, subtype: str | None = None, *, outbreak: bool = False) -> timedelta:
        """County CDC review limit from the network report (§5.2 [M]): 2 h / 24 h."""
        return self._limit("review", code, on, subtype, outbreak)

    def _limit(self, kind: str, code: str, on: date, subtype: str | None, outbreak: bool) -> timedelta:
        urgent = outbreak or self.entry(code, on).is_urgent(subtype)
        return timedelta(hours=self.limits["urgent" if urgent else "other"][kind])


def _day(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _subtype(raw: dict[str, Any]) -> Subtype:
    classes = raw.get("case_classes")
    return Subtype(code=raw["code"], zh=raw["zh"], en=raw["en"], icd10=tuple(raw["icd10"]),
                   case_classes=None if classes is None else frozenset(classes),
                   managed_as=raw.get("managed_as"), acute_chronic=raw.get("acute_chronic"),
                   fixed_threshold=raw.get("fixed_threshold"))


def _disease(raw: dict[str, Any], default_classes: frozenset[str]) -> Disease:
    d = Disease(
        code=raw["code"], zh=raw["zh"], en=raw["en"], icd10=tuple(raw["icd10"]), klass=raw["class"],
        managed_as=raw["managed_as"], valid_from=date.fromisoformat(raw["valid_from"]),
        valid_to=_day(raw["valid_to"]), case_classes=frozenset(raw.get("case_classes", default_classes)),
        subtypes=tuple(_subtype(s) for s in raw.get("subtypes", ())),
        acute_chronic=bool(raw.get("acute_chronic", False)), supplementary_card=raw.get("supplementary_card"),
        requires=frozenset(raw.get("requires", ())), fixed_threshold=bool(raw.get("fixed_threshold", False)),
        mpm_percentile=raw.get("mpm_percentile"), urgent=bool(raw.get("urgent", False)),
        needs_name=bool(raw.get("needs_name", False)), max_age_days_at_report=raw.get("max_age_days_at_report"),
        code_source=raw.get("code_source", "nidris"))
    _check_disease(d)
    return d


def _check_disease(d: Disease) -> None:
    def bad(why: str) -> Invalid:
        return Invalid("SURV-250", f"disease catalogue: {d.code} ({d.zh}) {why}", {"code": d.code})

    classes = [d.klass, d.managed_as] + [s.managed_as for s in d.subtypes if s.managed_as]
    if any(c not in CLASSES for c in classes):
        raise bad(f"has a class outside {CLASSES}")
    for allowed in [d.case_classes] + [s.case_classes for s in d.subtypes if s.case_classes]:
        if not allowed or not allowed <= CASE_CLASSES.keys():
            raise bad(f"allows case classifications outside {sorted(CASE_CLASSES)}")
    if d.valid_to is not None and d.valid_to < d.valid_from:
        raise bad("ends before it starts")
    if d.supplementary_card not in (None, *SUPPLEMENTARY_CARDS):
        raise bad(f"names an unknown supplementary card {d.supplementary_card!r}")
    if not d.requires <= set(REQUIRABLE_FIELDS):
        raise bad(f"requires fields outside {REQUIRABLE_FIELDS}")
    if d.mpm_percentile is not None and not 0 < d.mpm_percentile < 100:
        raise bad("has a percentile outside 1–99")
    if len({s.code for s in d.subtypes}) != len(d.subtypes):
        raise bad("repeats a subtype code")


def _check_versions(diseases: list[Disease]) -> None:
    by_code: dict[str, list[Disease]] = {}
    for d in diseases:
        by_code.setdefault(d.code, []).append(d)
    for code, versions in by_code.items():
        versions.sort(key=lambda d: d.valid_from)
        for a, b in zip(versions, versions[1:], strict=False):
            if a.valid_to is None or a.valid_to >= b.valid_from:
                raise Invalid("SURV-250", f"disease catalogue: versions of {code} overlap"
                              f" ({a.valid_from}–{a.valid_to or ''} and {b.valid_from}–)", {"code": code})


@lru_cache(maxsize=1)
def load_catalogue() -> Catalogue:
    """The catalogue shipped with the package (``catalogue.json``), read once."""
    text = resources.files(__package__).joinpath("catalogue.json").read_text(encoding="utf-8")
    return Catalogue.from_dict(json.loads(text))
