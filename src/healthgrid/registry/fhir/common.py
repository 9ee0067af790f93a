"""Code systems, naming systems and value helpers shared by the registry's FHIR providers.

Our own code systems and naming systems live under ``https://healthgrid.example/fhir``;
displays are in Chinese, the language of the records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from ...fhir import (
    ANY,
    ParamType,
    Reference,
    SearchParamDef,
    Token,
)
from .. import queries as q

BASE = "https://healthgrid.example/fhir"
ORG_CODE_SYSTEM = f"{BASE}/NamingSystem/org-code"
DIVISION_CODE_SYSTEM = f"{BASE}/NamingSystem/division-code"
LICENCE_SYSTEM = f"{BASE}/NamingSystem/practitioner-licence"
ORG_TYPE_SYSTEM = f"{BASE}/CodeSystem/org-type"
ORG_LEVEL_SYSTEM = f"{BASE}/CodeSystem/org-level"
GRADE_SYSTEM = f"{BASE}/CodeSystem/hospital-grade"
DEPARTMENT_SYSTEM = f"{BASE}/CodeSystem/department"
SERVICE_TYPE_SYSTEM = f"{BASE}/CodeSystem/service-type"
TITLE_SYSTEM = f"{BASE}/CodeSystem/practitioner-title"
SITE_ROLE_SYSTEM = f"{BASE}/CodeSystem/practice-site-role"
GRADE_EXTENSION = f"{BASE}/StructureDefinition/hospital-grade"
PHYSICAL_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/location-physical-type"

SITE_ROLES = {"primary": ("主要执业机构", "Primary practice site"),
              "multi-site": ("多点执业", "Additional practice site")}
GENDERS = {"M": "male", "F": "female"}
SEXES = {gender: sex for sex, gender in GENDERS.items()}
# 复姓: the common two-character surnames; any other name's surname is its first character.
COMPOUND_SURNAMES = frozenset([
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
    "宇文", "司徒", "夏侯", "轩辕", "令狐", "端木", "独孤", "南宫", "西门", "申屠",
    "百里", "呼延", "澹台", "太史", "闻人", "万俟", "赫连", "拓跋", "钟离", "宗政",
])
MAX_DB_ID = 2**31 - 1  # our primary keys are 32-bit integers

NAME_DOC = "Name contains the value (any part of a Chinese name); `:exact` matches the whole name."


def string_param(name: str, doc: str, *modifiers: str) -> SearchParamDef:
    # The registry's queries take one string per field: no OR list, no repetition.
    return SearchParamDef(name, ParamType.STRING, doc, modifiers=modifiers or ("contains",),
                          multiple_or=False, repeatable=False)


def reference_param(name: str, doc: str, target: str, **kw: Any) -> SearchParamDef:
    return SearchParamDef(name, ParamType.REFERENCE, doc, targets=(target,), **kw)


# --- shared value helpers -------------------------------------------------------------


def db_id(value: str) -> int | None:
    """An id that can be one of our integer keys, or None (it then matches nothing)."""
    if not (value.isascii() and value.isdigit()) or len(value) > 10 or not 0 < int(value) <= MAX_DB_ID:
        return None
    return int(value)


def ref_id(ref: Reference) -> int | None:
    return db_id(ref.id)


def code_of(system: str):
    """Converter for ``any_of``: the code of a token in ``system`` (or with no system)."""
    def convert(token: Token) -> Any:
        if token.system not in (None, system):
            return None
        return ANY if token.code is None else token.code
    return convert


def sorted_or_none(values: set[Any] | None) -> list[Any] | None:
    return None if values is None else sorted(values)


def concept(system: str, code: str, labels: dict) -> dict[str, Any]:
    display = labels[code][0] if code in labels else None
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def address_of(chain: Sequence[Any], text: str | None = None) -> dict[str, Any]:
    """Address from a division chain (root first): province → state, city → city,
    county → district; the text is the street address or else the division path."""
    parts = {div.level: div.name for div in chain}
    return {"use": "work", "type": "physical", "text": text or "".join(div.name for div in chain),
            "district": parts.get("county"), "city": parts.get("city"), "state": parts.get("province"),
            "country": "CN"}


def ancestor_ids(div: Any) -> list[int]:
    return [i for i in (div.province_id, div.city_id, div.county_id, div.township_id)
            if i is not None and i != div.id]


def division_chains(session: Session, divisions: Iterable[Any]) -> dict[int, list[Any]]:
    """Each division with its ancestors, root first — one query for a whole page."""
    known = {div.id: div for div in divisions}
    wanted = sorted({a for div in known.values() for a in ancestor_ids(div)} - set(known))
    if wanted:
        known.update((div.id, div) for div in q.divisions_by_ids(session, wanted))
    return {div.id: [known[a] for a in ancestor_ids(div) if a in known] + [div]
            for div in list(known.values())}
