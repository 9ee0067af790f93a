"""The result-item catalogue (检查检验项目目录) and the region's recognised-item lists (互认项目清单).

Reference data, not code: ``catalogue.json`` beside this module lists every item with this
platform's item code, its LOINC code where one exists (imaging: LOINC/RSNA Playbook terms),
names, category (laboratory / imaging / electrophysiology / pathology), the analytes it
reports (a panel such as the CBC has several) with unit, value type and reference ranges by
sex, the validity in days (§4.4: the Hubei list where it names the item, else the lower bound
of the typical [EX] range, said per item in ``validity_source``) and a default price in CNY
for the cost-avoided measure. Each region list carries the HR mark with its regional prefix
("鄂HR"), the items recognised at each organisation level, optional validity and price
overrides and the local option ``upper_accepts_lower``. Sources:
../shared/specs/domain-rules.md §4.2 (mark, lists), §4.4 (validity), §4.5 (decision).

A region list applies to every organisation inside its division (GB/T 2260 prefix): an
organisation in Wuhan (4201xx) is covered by the Hubei list (420000) and the Wuhan list
(420100); the most specific list wins for overrides, the items are the union.

``LocalCodeMap`` maps one facility's own item codes onto catalogue items. Loading reads the
packaged file once (``load_catalogue()``, cached); ``Catalogue.from_dict`` is the pure part
and refuses malformed data with RES-001. No database, no clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from ..errors import HealthGridError, Invalid
from .domain import CATEGORIES, LEVELS, NATIONAL_MARK, region_prefix

SEXES = ("any", "male", "female")
VALUE_TYPES = ("NM", "SN", "CE", "CWE", "ST", "TX", "FT")
VALIDITY_SOURCES = ("hubei", "ex", "platform", "region")
_CODE = re.compile(r"^[A-Z0-9][A-Z0-9%\-]{0,31}$")
_LOINC = re.compile(r"^\d{1,7}-\d$")


@dataclass(frozen=True)
class Range:
    """A reference range: ``low``–``high`` (either may be open) or a qualitative ``text``."""

    low: float | None = None
    high: float | None = None
    sex: str = "any"
    text: str | None = None

    def as_text(self) -> str:
        if self.text is not None:
            return self.text
        if self.low is not None and self.high is not None:
            return f"{self.low:g}-{self.high:g}"
        return f"<{self.high:g}" if self.high is not None else f">{self.low:g}"


@dataclass(frozen=True)
class Analyte:
    code: str
    zh: str
    en: str
    loinc: str | None
    unit: str
    value_type: str
    ranges: tuple[Range, ...] = ()

    def reference_range(self, sex: str | None = None) -> Range | None:
        """The range for ``sex`` ("male"/"female"), else the one for anyone."""
        by_sex = {r.sex: r for r in self.ranges}
        return by_sex.get(sex or "any") or by_sex.get("any")


@dataclass(frozen=True)
class Item:
    """One recognition unit: what is ordered, billed, marked HR and recognised."""

    code: str
    zh: str
    en: str
    category: str
    group: str
    loinc: str | None
    validity_days: int | None  # None: not time-limited (pathology slides are re-read, §4.4)
    validity_source: str
    price_cny: float
    analytes: tuple[Analyte, ...]
    loinc_check: str | None = None

    def analyte(self, code: str) -> Analyte | None:
        return next((a for a in self.analytes if a.code == code), None)


@dataclass(frozen=True)
class RegionList:
    """A region's recognised-item list (互认项目清单), by organisation level."""

    code: str
    zh: str
    mark: str
    levels: Mapping[str, frozenset[str]]
    upper_accepts_lower: bool | None = None  # None: the enclosing list's, else the default
    validity_days: Mapping[str, int | None] = field(default_factory=dict)
    prices_cny: Mapping[str, float] = field(default_factory=dict)
    accepts_marks: frozenset[str] = frozenset()  # other regions' marks accepted by agreement

    def contains(self, org_region: str) -> bool:
        return org_region.startswith(region_prefix(self.code))


class Catalogue:
    """All items and the region lists of one catalogue version."""

    def __init__(self, version: str, items: Iterable[Item], regions: Iterable[RegionList], *,
                 upper_accepts_lower: bool = False):
        self.version = version
        self.items = {i.code: i for i in items}
        self.regions = {r.code: r for r in regions}
        self.default_upper_accepts_lower = upper_accepts_lower
        self._by_loinc: dict[str, tuple[Item, Analyte | None]] = {}
        for item in self.items.values():
            if item.loinc:
                self._by_loinc[item.loinc] = (item, None)
            for a in item.analytes:
                if a.loinc:
                    self._by_loinc[a.loinc] = (item, a)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Catalogue:
        try:
            version = str(data["version"])
            items = [_item(raw) for raw in data["items"]]
            default = data.get("defaults", {}).get("upper_accepts_lower", False)
            cat = cls(version, items, (), upper_accepts_lower=bool(default))
            return cat.with_regions(data.get("regions", ()))
        except HealthGridError as exc:
            if exc.code == "RES-001":
                raise
            raise _bad(exc.message) from exc
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _bad(f"malformed entry ({exc!r})") from exc

    def with_regions(self, raws: Iterable[Mapping[str, Any]]) -> Catalogue:
        """A copy with these region lists added (or replacing lists with the same code)."""
        try:
            regions = dict(self.regions)
            for raw in raws:
                region = _region(raw, self)
                regions[region.code] = region
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _bad(f"malformed region list ({exc!r})") from exc
        _check_unique_marks(regions.values())
        _check_loincs(self.items.values())
        return Catalogue(self.version, self.items.values(), regions.values(),
                         upper_accepts_lower=self.default_upper_accepts_lower)

    # -- items --------------------------------------------------------------------------------
    def find(self, code: str) -> Item | None:
        return self.items.get(code)

    def item(self, code: str) -> Item:
        found = self.items.get(code)
        if found is None:
            raise Invalid("RES-002", f"item {code!r} is not in the result catalogue (version {self.version})",
                          {"field": "item", "code": code})
        return found

    def by_loinc(self, loinc: str) -> tuple[Item, Analyte | None] | None:
        """The item (and analyte, for a panel member) a LOINC code stands for."""
        return self._by_loinc.get(loinc)

    # -- region lists -------------------------------------------------------------------------
    def regions_for(self, org_region: str) -> tuple[RegionList, ...]:
        """The lists covering an organisation's division, most specific first."""
        region_prefix(org_region)  # RES-010 for a malformed code
        found = [r for r in self.regions.values() if r.contains(org_region)]
        return tuple(sorted(found, key=lambda r: len(region_prefix(r.code)), reverse=True))

    def recognised_items(self, org_region: str, level: str) -> frozenset[str]:
        """§4.5: recognised_catalogue(region_of(org), level) — the union of the covering lists."""
        return frozenset().union(*(r.levels.get(level, frozenset()) for r in self.regions_for(org_region)))

    def validity_days(self, item: str, org_region: str) -> int | None:
        for r in self.regions_for(org_region):
            if item in r.validity_days:
                return r.validity_days[item]
        return self.item(item).validity_days

    def price_cny(self, item: str, org_region: str) -> float:
        for r in self.regions_for(org_region):
            if item in r.prices_cny:
                return r.prices_cny[item]
        return self.item(item).price_cny

    def upper_accepts_lower(self, org_region: str) -> bool:
        for r in self.regions_for(org_region):
            if r.upper_accepts_lower is not None:
                return r.upper_accepts_lower
        return self.default_upper_accepts_lower

    def accepted_marks(self, org_region: str) -> frozenset[str]:
        """The national mark, the marks of the covering lists and those they accept by agreement."""
        marks = {NATIONAL_MARK}
        for r in self.regions_for(org_region):
            marks |= {r.mark} | r.accepts_marks
        return frozenset(marks)

    def region_of_mark(self, mark: str) -> RegionList | None:
        return next((r for r in self.regions.values() if r.mark == mark), None)

    def issuing_mark(self, org_region: str) -> str:
        """The mark an organisation in ``org_region`` prints: its most specific list's, else "HR"."""
        covering = self.regions_for(org_region)
        return covering[0].mark if covering else NATIONAL_MARK


class LocalCodeMap:
    """One facility's local item codes (LIS/PACS dictionary codes) → catalogue item codes."""

    def __init__(self, facility: str, codes: Mapping[str, str] | Iterable[tuple[str, str]], catalogue: Catalogue):
        self.facility = facility
        self._codes: dict[str, str] = {}
        pairs = codes.items() if isinstance(codes, Mapping) else codes
        for local, item in pairs:
            local = str(local).strip()
            if not local:
                raise Invalid("RES-004", f"facility {facility}: an empty local code", {"field": "local_code"})
            if item not in catalogue.items:
                raise Invalid("RES-004", f"facility {facility}: local code {local!r} maps to {item!r},"
                              " which is not in the catalogue", {"field": "item", "local_code": local})
            if self._codes.get(local, item) != item:
                raise Invalid("RES-004", f"facility {facility}: local code {local!r} maps to both"
                              f" {self._codes[local]!r} and {item!r}", {"field": "local_code", "local_code": local})
            self._codes[local] = item

    def item(self, local_code: str) -> str:
        """The catalogue item for a local code; RES-003 when the facility has not mapped it."""
        found = self._codes.get(str(local_code).strip())
        if found is None:
            raise Invalid("RES-003", f"facility {self.facility}: local item code {local_code!r} is not mapped"
                          " to a catalogue item; map it before its results can be recognised",
                          {"field": "code", "facility": self.facility, "local_code": local_code})
        return found

    def __contains__(self, local_code: object) -> bool:
        return str(local_code).strip() in self._codes

    def __len__(self) -> int:
        return len(self._codes)


# -- parsing and checks ----------------------------------------------------------------------

def _bad(why: str, detail: dict[str, Any] | None = None) -> Invalid:
    return Invalid("RES-001", f"result catalogue: {why}", detail or {})


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _range(raw: Mapping[str, Any], where: str) -> Range:
    r = Range(low=_num(raw.get("low")), high=_num(raw.get("high")), sex=raw.get("sex", "any"), text=raw.get("text"))
    if r.sex not in SEXES:
        raise _bad(f"{where}: range sex {r.sex!r}, expected one of {', '.join(SEXES)}", {"code": where})
    if r.low is None and r.high is None and not r.text:
        raise _bad(f"{where}: a range needs low, high or text", {"code": where})
    if r.low is not None and r.high is not None and r.low > r.high:
        raise _bad(f"{where}: range low {r.low:g} is above high {r.high:g}", {"code": where})
    return r


def _analyte(raw: Mapping[str, Any]) -> Analyte:
    code = raw["code"]
    ranges = tuple(_range(r, code) for r in raw.get("ranges", ()))
    a = Analyte(code=code, zh=raw["zh"], en=raw["en"], loinc=raw.get("loinc"), unit=raw.get("unit", ""),
                value_type=raw.get("value_type", "NM"), ranges=ranges)
    if not _CODE.match(code):
        raise _bad(f"code {code!r} must be 1–32 capitals, digits, '%' or '-'", {"code": code})
    if a.value_type not in VALUE_TYPES:
        raise _bad(f"{code}: value type {a.value_type!r}, expected one of {', '.join(VALUE_TYPES)}", {"code": code})
    if a.loinc is not None and not _LOINC.match(a.loinc):
        raise _bad(f"{code}: {a.loinc!r} is not a LOINC code (digits, '-', check digit)", {"code": code})
    if len({r.sex for r in ranges}) != len(ranges):
        raise _bad(f"{code}: two reference ranges for the same sex", {"code": code})
    return a


def _item(raw: Mapping[str, Any]) -> Item:
    code = raw["code"]
    parts = raw.get("components") or [{**raw, "code": code}]
    item = Item(code=code, zh=raw["zh"], en=raw["en"], category=raw["category"], group=raw["group"],
                loinc=raw.get("loinc"), validity_days=raw["validity_days"], validity_source=raw["validity_source"],
                price_cny=float(raw["price_cny"]), analytes=tuple(_analyte(p) for p in parts),
                loinc_check=raw.get("loinc_check"))
    if item.category not in CATEGORIES:
        raise _bad(f"{code}: category {item.category!r}, expected one of {', '.join(CATEGORIES)}", {"code": code})
    _check_days(item.validity_days, code)
    if item.validity_source not in VALIDITY_SOURCES:
        raise _bad(f"{code}: validity_source {item.validity_source!r}, expected one of {', '.join(VALIDITY_SOURCES)}",
                   {"code": code})
    if item.price_cny < 0:
        raise _bad(f"{code}: a negative price", {"code": code})
    if len({a.code for a in item.analytes}) != len(item.analytes):
        raise _bad(f"{code}: repeats an analyte code", {"code": code})
    return item


def _check_days(days: Any, where: str) -> None:
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 0):
        raise _bad(f"{where}: validity_days must be a whole number of days ≥ 0 or null", {"code": where})


def _expand(names: Iterable[str], cat: Catalogue, where: str) -> frozenset[str]:
    """Item codes, plus "@name" for every item of a category or group."""
    out: set[str] = set()
    for name in names:
        if name.startswith("@"):
            members = {i.code for i in cat.items.values() if name[1:] in (i.category, i.group)}
            if not members:
                raise _bad(f"region {where}: {name!r} names no category or group", {"code": where})
            out |= members
        elif name in cat.items:
            out.add(name)
        else:
            raise _bad(f"region {where}: unknown item {name!r}", {"code": where})
    return frozenset(out)


def _region(raw: Mapping[str, Any], cat: Catalogue) -> RegionList:
    code = str(raw["code"])
    try:
        region_prefix(code)
    except Invalid as exc:
        raise _bad(f"region {code!r}: not a division code", {"code": code}) from exc
    mark = str(raw["mark"]).strip()
    if not mark.endswith(NATIONAL_MARK) or mark == NATIONAL_MARK:
        raise _bad(f"region {code}: mark {mark!r} must be a regional prefix followed by 'HR'", {"code": code})
    levels = {lvl: _expand(names, cat, code) for lvl, names in raw["levels"].items()}
    if not set(levels) <= set(LEVELS):
        raise _bad(f"region {code}: levels {sorted(set(levels) - set(LEVELS))} outside {', '.join(LEVELS)}",
                   {"code": code})
    validity = dict(raw.get("validity_days", {}))
    prices = {k: float(v) for k, v in raw.get("prices_cny", {}).items()}
    for item in (*validity, *prices):
        if item not in cat.items:
            raise _bad(f"region {code}: override for unknown item {item!r}", {"code": code})
    for item, days in validity.items():
        _check_days(days, f"{code}/{item}")
    if any(p < 0 for p in prices.values()):
        raise _bad(f"region {code}: a negative price", {"code": code})
    upper = raw.get("upper_accepts_lower")
    if upper is not None and not isinstance(upper, bool):
        raise _bad(f"region {code}: upper_accepts_lower must be true, false or null", {"code": code})
    return RegionList(code=code, zh=raw["zh"], mark=mark, levels=levels, upper_accepts_lower=upper,
                      validity_days=validity, prices_cny=prices, accepts_marks=frozenset(raw.get("accepts_marks", ())))


def _check_unique_marks(regions: Iterable[RegionList]) -> None:
    seen: dict[str, str] = {}
    for r in regions:
        if r.mark in seen:
            raise _bad(f"regions {seen[r.mark]} and {r.code} both use the mark {r.mark!r}", {"code": r.code})
        seen[r.mark] = r.code


def _check_loincs(items: Iterable[Item]) -> None:
    owner: dict[str, str] = {}
    for item in items:
        for loinc in {item.loinc, *(a.loinc for a in item.analytes)} - {None}:
            if loinc in owner:
                raise _bad(f"LOINC {loinc} is used by both {owner[loinc]} and {item.code}", {"code": item.code})
            owner[loinc] = item.code


@lru_cache(maxsize=1)
def load_catalogue() -> Catalogue:
    """The catalogue shipped with the package (``catalogue.json``), read once."""
    text = resources.files(__package__).joinpath("catalogue.json").read_text(encoding="utf-8")
    return Catalogue.from_dict(json.loads(text))
