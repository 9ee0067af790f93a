"""Numeric trends of a patient's results across facilities: which analyte an observation
measures, units brought onto one scale, the reference band, the points. Pure: no database,
no clock.

- The analyte of an observation: its catalogue item when the item has one analyte (HbA1c,
  creatinine, glucose …), else its LOINC code looked up in the catalogue (members of a panel,
  e.g. haemoglobin of a CBC). Local codes of a panel member that carry no LOINC cannot be
  placed and are not plotted.
- Units: hospitals in the region report some analytes in conventional units (glucose in
  mg/dL, creatinine in mg/dL, HbA1c in IFCC mmol/mol). A trend is drawn in the catalogue's
  unit; a known conversion is applied (the factors below, from the molar masses; HbA1c by
  the IFCC–NGSP master equation NGSP% = 0.09148 × IFCC + 2.152, Hoelzel et al., Clin Chem
  2004;50:166-74). A value in an unknown unit is listed as not plotted, never guessed.
- Reference band: the range of the most recent point that has one (the issuing lab's, which
  takes precedence over any general range: WS/T 404 is explicit that each lab verifies its
  own), else the catalogue's range. Each point keeps its own lab's flag (HL7 0078), so a
  value is marked abnormal by the range it was reported with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from .catalogue import Analyte, Catalogue, Item

# Shown first on the timeline when present (chronic-disease follow-up: diabetes, kidney, lipids).
PREFERRED = ("HBA1C", "GLU", "CREA", "UREA", "UA", "LDLC", "TC", "TG", "HDLC", "ALT", "AST", "K", "NA", "HGB",
             "TSH", "ALB")
ABNORMAL = frozenset({"H", "L", "HH", "LL", "A", "AA"})
HIGH, LOW = frozenset({"H", "HH"}), frozenset({"L", "LL"})

_SPELLING = {"μ": "u", "µ": "u", "ｌ": "l", " ": ""}


def _linear(factor: float) -> Callable[[float], float]:
    return lambda v: v * factor


# (analyte, unit as reported, normalised) -> conversion into the analyte's catalogue unit.
CONVERSIONS: dict[tuple[str, str], Callable[[float], float]] = {
    ("GLU", "mg/dl"): _linear(1 / 18.016),  # glucose 180.16 g/mol
    ("CREA", "mg/dl"): _linear(88.42),  # creatinine 113.12 g/mol
    ("UA", "mg/dl"): _linear(59.48),  # uric acid 168.11 g/mol
    ("UREA", "mg/dl"): _linear(0.357),  # BUN mg/dL -> urea mmol/L (2 N per urea, 28.01 g/mol)
    ("TC", "mg/dl"): _linear(1 / 38.67),
    ("HDLC", "mg/dl"): _linear(1 / 38.67),
    ("LDLC", "mg/dl"): _linear(1 / 38.67),
    ("TG", "mg/dl"): _linear(1 / 88.57),
    ("TBIL", "mg/dl"): _linear(17.1),
    ("DBIL", "mg/dl"): _linear(17.1),
    ("CA", "mg/dl"): _linear(1 / 4.008),
    ("HGB", "g/dl"): _linear(10.0),
    ("ALB", "g/dl"): _linear(10.0),
    ("HBA1C", "mmol/mol"): lambda v: 0.09148 * v + 2.152,
}


def normal_unit(unit: str | None) -> str:
    text = (unit or "").strip()
    for old, new in _SPELLING.items():
        text = text.replace(old, new)
    return text.lower()


def to_unit(analyte: Analyte, value: float, unit: str | None) -> float | None:
    """``value`` in the analyte's catalogue unit, or None when the unit is not known to convert."""
    given, wanted = normal_unit(unit), normal_unit(analyte.unit)
    if given == wanted or (not given and not wanted):
        return value
    convert = CONVERSIONS.get((analyte.code, given))
    return None if convert is None else convert(value)


@dataclass(frozen=True)
class Measured:
    """One numeric observation as the trend reads it."""

    observation_id: int
    report_id: int
    at: datetime
    value: float
    unit: str | None
    flag: str | None
    ref_low: float | None
    ref_high: float | None
    issuer_org_id: int
    issuer_name: str


@dataclass(frozen=True)
class TrendPoint:
    at: datetime
    value: float  # in the trend's unit
    reported: str  # the value as reported, with its unit
    flag: str | None
    issuer_org_id: int
    issuer_name: str
    observation_id: int
    report_id: int

    @property
    def abnormal(self) -> bool:
        return self.flag in ABNORMAL

    @property
    def arrow(self) -> str:
        return "↑" if self.flag in HIGH else "↓" if self.flag in LOW else ("!" if self.abnormal else "")


@dataclass
class Trend:
    key: str  # the analyte code (HBA1C, CREA, HGB …)
    item: str
    zh: str
    en: str
    unit: str
    points: list[TrendPoint] = field(default_factory=list)  # oldest first
    not_plotted: list[Measured] = field(default_factory=list)  # units that do not convert
    band: tuple[float | None, float | None] | None = None

    @property
    def facilities(self) -> list[tuple[int, str]]:
        seen: dict[int, str] = {}
        for p in self.points:
            seen.setdefault(p.issuer_org_id, p.issuer_name)
        return list(seen.items())


def analyte_of(catalogue: Catalogue, item: str | None, code_system: str | None, code: str,
               loinc_systems: Iterable[str]) -> tuple[Item, Analyte] | None:
    """The catalogue analyte an observation measures, or None."""
    found = catalogue.find(item) if item else None
    if found is not None and len(found.analytes) == 1:
        return found, found.analytes[0]
    if code_system in tuple(loinc_systems):
        hit = catalogue.by_loinc(code)
        if hit is not None:
            it, analyte = hit
            if analyte is None and len(it.analytes) == 1:
                analyte = it.analytes[0]
            if analyte is not None:
                return it, analyte
    return None


def find_analyte(catalogue: Catalogue, key: str) -> tuple[Item, Analyte] | None:
    """The analyte a trend key names: an analyte code (HGB) or a single-analyte item (HBA1C)."""
    item = catalogue.find(key)
    if item is not None and len(item.analytes) == 1:
        return item, item.analytes[0]
    for it in catalogue.items.values():
        hit = it.analyte(key)
        if hit is not None:
            return it, hit
    return None


def build_trend(item: Item, analyte: Analyte, measured: Iterable[Measured]) -> Trend:
    trend = Trend(analyte.code, item.code, analyte.zh, analyte.en, analyte.unit)
    last_range: tuple[float | None, float | None] | None = None
    for m in sorted(measured, key=lambda x: (x.at, x.observation_id)):
        value = to_unit(analyte, m.value, m.unit)
        if value is None:
            trend.not_plotted.append(m)
            continue
        trend.points.append(TrendPoint(m.at, value, f"{m.value:g} {m.unit or ''}".strip(), m.flag,
                                       m.issuer_org_id, m.issuer_name, m.observation_id, m.report_id))
        if m.ref_low is not None or m.ref_high is not None:
            low = to_unit(analyte, m.ref_low, m.unit) if m.ref_low is not None else None
            high = to_unit(analyte, m.ref_high, m.unit) if m.ref_high is not None else None
            if low is not None or high is not None:
                last_range = (low, high)
    trend.band = last_range or _catalogue_band(analyte)
    return trend


def _catalogue_band(analyte: Analyte) -> tuple[float | None, float | None] | None:
    rng = analyte.reference_range()
    if rng is None or (rng.low is None and rng.high is None):
        return None
    return rng.low, rng.high


def rank_keys(counts: dict[str, int], *, minimum: int = 2) -> list[str]:
    """Analytes worth a chart (at least ``minimum`` points), preferred ones first, then by count."""
    keys = [k for k, n in counts.items() if n >= minimum]
    order = {k: i for i, k in enumerate(PREFERRED)}
    return sorted(keys, key=lambda k: (order.get(k, len(order)), -counts[k], k))
