"""Typed FHIR search: parameter definitions, parsed values, and the parser.

A provider declares its parameters once as ``SearchParamDef``s (the CapabilityStatement
is generated from them); ``parse_search`` turns the raw query items into a
``SearchRequest``: per occurrence of a parameter its name, modifier and OR-values
(comma-separated), occurrences of the same parameter AND-ed (FHIR R4 search.html: a comma
separates alternatives, a repeated parameter must hold for each occurrence). Anything it
does not understand is refused with a coded 400, never ignored, so a client never mistakes
an unfiltered result for a filtered one.

String semantics (a documented choice): without a modifier a string matches when the
value is *contained* in the element (R4 says starts-with). Chinese names are searched by
any part — "人民医院" must find "广州市第一人民医院" — and the registry's queries match by
containment. ``:contains`` is accepted as the same thing; ``:exact`` is whole-value,
case-sensitive equality. (Case handling of containment is the database's: Chinese has no
case; Latin letters fold on SQLite and not on PostgreSQL.)

Date parameters (R4 search.html#date) parse into ``DateValue(prefix, value)``; a parameter
may restrict the prefixes it accepts (``prefixes``), and the provider decides which
precisions it can match.

``_include`` (R4 search.html#include) is accepted only in the form ``Type:param`` or
``Type:param:TargetType`` where ``Type`` is the type searched and ``param`` one the provider
declares in ``includes`` (``IncludeDef``); ``:iterate``, ``*`` and anything undeclared are
refused (a provider declaring none refuses ``_include`` like any unknown parameter). The
registry resolves the included references through the target types' providers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, TypeVar

from .outcome import UNKNOWN_MODIFIER, UNKNOWN_PARAMETER, FhirError, bad_value

T = TypeVar("T")

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # R4 datatypes.html#id
ID_RULE = "is not a valid resource id (1-64 of A-Z a-z 0-9 - .)"
_DIGITS = re.compile(r"^[0-9]+$")
MAX_OFFSET = 2**31 - 1  # beyond this OFFSET overflows a 32-bit bound on some databases

INCLUDE = "_include"
# Accepted and ignored: they change neither the matches nor the paging.
IGNORED_PARAMS = frozenset({"_format", "_pretty", "_totalMethod", "_total"})
PAGING_PARAMS = frozenset({"_count", "_offset", "_summary"})


class ParamType(StrEnum):
    STRING = "string"
    TOKEN = "token"
    REFERENCE = "reference"
    DATE = "date"


# R4 search.html#prefix; ``eq`` is what a value without a prefix means.
DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
# R4 datatypes.html#date and #dateTime: YYYY, YYYY-MM, YYYY-MM-DD, or a time with its zone.
_DATE = re.compile(r"^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])"
                   r"(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?$")


@dataclass(frozen=True)
class SearchParamDef:
    """One search parameter of one resource type, as declared by its provider.

    ``modifiers``: the modifiers accepted besides none (reference parameters also accept
    their target types, ``partof:Organization``). ``codes``: a closed set of token codes
    (``true``/``false``). ``multiple_or`` / ``repeatable``: whether the backing query can
    take comma-separated alternatives / repeated (AND) occurrences. ``prefixes``: the
    comparison prefixes a date parameter accepts (None: all of R4's).
    """

    name: str
    type: ParamType
    documentation: str
    modifiers: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    codes: tuple[str, ...] | None = None
    multiple_or: bool = True
    repeatable: bool = True
    prefixes: tuple[str, ...] | None = None

    def allowed_modifiers(self) -> tuple[str, ...]:
        return self.modifiers + (self.targets if self.type is ParamType.REFERENCE else ())


ID_PARAM = SearchParamDef("_id", ParamType.TOKEN, "Logical id of the resource.")


@dataclass(frozen=True)
class IncludeDef:
    """An ``_include`` a provider serves: ``Type:name`` follows the references held by the
    top-level element ``element`` of each match to resources of ``targets``."""

    name: str
    element: str
    targets: tuple[str, ...]
    documentation: str = ""


@dataclass(frozen=True)
class Include:
    """One parsed ``_include``: the declaration and the target type asked for (None: all of
    the declaration's targets)."""

    definition: IncludeDef
    target: str | None
    raw: str

    @property
    def targets(self) -> tuple[str, ...]:
        return (self.target,) if self.target else self.definition.targets


@dataclass(frozen=True)
class Token:
    """``[system]|code``. ``system`` None: any system; "" : explicitly no system.
    ``code`` None: any code of ``system`` (``system|``)."""

    system: str | None
    code: str | None


@dataclass(frozen=True)
class Reference:
    """``Type/id`` or a bare ``id``; ``type`` is None only when the parameter has several
    targets and the client named none."""

    type: str | None
    id: str


@dataclass(frozen=True)
class DateValue:
    """``[prefix]value``: the prefix (``eq`` when none was given) and the date or dateTime
    as written (its precision is the client's: ``1962``, ``1962-05``, ``1962-05-17``)."""

    prefix: str
    value: str

    def full_date(self) -> date | None:
        """The value as a calendar date when it is exactly YYYY-MM-DD, else None."""
        if len(self.value) != 10:
            return None
        try:
            return date.fromisoformat(self.value)
        except ValueError:  # 2023-02-30 has the shape of a date but is none
            return None


Value = str | Token | Reference | DateValue


@dataclass(frozen=True)
class Clause:
    """One occurrence of a parameter: its values are alternatives (OR)."""

    name: str
    modifier: str | None
    values: tuple[Value, ...]
    raw: str

    @property
    def key(self) -> str:
        return f"{self.name}:{self.modifier}" if self.modifier else self.name


@dataclass(frozen=True)
class SearchRequest:
    resource_type: str
    clauses: tuple[Clause, ...] = ()
    count: int = 20
    offset: int = 0
    includes: tuple[Include, ...] = ()
    # Who asks: the security context's Actor (the platform does not know its type).
    # Providers of personal data pass it to their service functions, which decide and audit.
    actor: Any = field(default=None, compare=False)

    def of(self, name: str) -> list[Clause]:
        return [c for c in self.clauses if c.name == name]

    def single(self, name: str) -> Clause | None:
        found = self.of(name)
        return found[0] if found else None

    def query_items(self, *, count: int | None = None, offset: int | None = None) -> list[tuple[str, str]]:
        """The request as query items (raw values kept), for self/next/previous links."""
        items = [(c.key, c.raw) for c in self.clauses]
        items += [(INCLUDE, i.raw) for i in self.includes]
        items.append(("_count", str(self.count if count is None else count)))
        items.append(("_offset", str(self.offset if offset is None else offset)))
        return items

    @classmethod
    def for_id(cls, resource_type: str, resource_id: str, actor: Any = None) -> SearchRequest:
        return cls(resource_type, (Clause("_id", None, (resource_id,), resource_id),), count=1, actor=actor)


class NoMatch(Exception):
    """Raised by a provider when the request provably matches nothing (an identifier of a
    foreign system, a reference that cannot exist); the core answers with total 0."""


# A converter's answer for a value that every resource matches (a token ``system|`` of the
# system the element is always coded in).
ANY: Any = object()


def any_of(request: SearchRequest, name: str, convert: Callable[[Any], T | None]) -> set[T] | None:
    """The values a single-valued element may take: the converted OR-values of each
    occurrence, intersected across occurrences (AND). ``convert`` returns None for a value
    that cannot match, ``ANY`` for one that always does. None when the parameter does not
    constrain; NoMatch when nothing can match."""
    result: set[T] | None = None
    for clause in request.of(name):
        converted = [convert(x) for x in clause.values]
        if any(v is ANY for v in converted):
            continue
        allowed = {v for v in converted if v is not None}
        result = allowed if result is None else result & allowed
        if not result:
            raise NoMatch(name)
    return result


def split_escaped(text: str, sep: str) -> list[str]:
    """Split on ``sep`` unless escaped with a backslash (R4 search.html#escaping:
    ``\\,`` ``\\|`` ``\\$`` ``\\\\``); escapes are kept for ``unescape``."""
    parts, current, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    return re.sub(r"\\([\\,|$])", r"\1", text)


def parse_search(resource_type: str, items: Iterable[tuple[str, str]], params: Sequence[SearchParamDef],
                 *, default_count: int, max_count: int, includes: Sequence[IncludeDef] = ()) -> SearchRequest:
    """Parse raw query (or form) items into a typed request; FhirError on anything unknown
    or malformed. ``_count`` above ``max_count`` is lowered to it (R4 search.html#count lets
    a server return fewer); the links then show the effective count."""
    by_name = {p.name: p for p in params}
    clauses: list[Clause] = []
    found: dict[str, Include] = {}
    paging: dict[str, str] = {}
    for key, raw in items:
        name, _, modifier = key.partition(":")
        if name in IGNORED_PARAMS:
            continue
        if name == INCLUDE and includes:
            include = parse_include(resource_type, includes, modifier or None, raw)
            found.setdefault(include.raw, include)
            continue
        if name in PAGING_PARAMS:
            if name in paging:
                raise bad_value(name, "given more than once")
            paging[name] = raw
            continue
        definition = by_name.get(name)
        if definition is None:
            raise _unknown_parameter(resource_type, name, by_name)
        clauses.append(parse_clause(definition, modifier or None, raw))
    _check_repeats(clauses, by_name)
    count, offset = parse_paging(paging, default_count=default_count, max_count=max_count)
    return SearchRequest(resource_type, tuple(clauses), count=count, offset=offset, includes=tuple(found.values()))


def parse_include(resource_type: str, includes: Sequence[IncludeDef], modifier: str | None, raw: str) -> Include:
    """``Type:param[:TargetType]`` for a declared param of the type searched."""
    served = ", ".join(f"{resource_type}:{i.name}" for i in includes)
    if modifier is not None:
        raise FhirError(UNKNOWN_MODIFIER, f"_include:{modifier} is not supported (no iteration); supported: "
                                          f"{served}", issue="not-supported",
                        detail={"parameter": INCLUDE, "modifier": modifier})
    parts = raw.split(":")
    by_name = {i.name: i for i in includes}
    definition = by_name.get(parts[1]) if len(parts) in (2, 3) and parts[0] == resource_type else None
    target = parts[2] if definition is not None and len(parts) == 3 else None
    if definition is None or (target is not None and target not in definition.targets):
        raise FhirError(UNKNOWN_PARAMETER, f"_include={raw!r} is not supported for {resource_type}; supported: "
                                           f"{served} (optionally :TargetType)", issue="not-supported",
                        detail={"parameter": INCLUDE, "value": raw})
    return Include(definition, target, f"{resource_type}:{definition.name}" + (f":{target}" if target else ""))


def _unknown_parameter(resource_type: str, name: str, by_name: dict[str, SearchParamDef]) -> FhirError:
    supported = ", ".join(sorted(by_name) + ["_count", "_offset"])
    return FhirError(UNKNOWN_PARAMETER, f"unknown search parameter '{name}' for {resource_type}; "
                                        f"supported: {supported}",
                     issue="not-supported", detail={"parameter": name})


def _check_repeats(clauses: list[Clause], by_name: dict[str, SearchParamDef]) -> None:
    seen: set[str] = set()
    for clause in clauses:
        if clause.name in seen and not by_name[clause.name].repeatable:
            raise bad_value(clause.name, "may be given only once here (repeating it to AND values "
                                         "is not supported for this parameter)")
        seen.add(clause.name)


def parse_clause(definition: SearchParamDef, modifier: str | None, raw: str) -> Clause:
    name = definition.name
    if modifier is not None and modifier not in definition.allowed_modifiers():
        allowed = ", ".join(f":{m}" for m in definition.allowed_modifiers()) or "none"
        raise FhirError(UNKNOWN_MODIFIER, f"search parameter '{name}' does not support the modifier "
                                          f":{modifier}; supported: {allowed}",
                        issue="not-supported", detail={"parameter": name, "modifier": modifier})
    if raw == "":
        raise bad_value(name, "empty value")
    pieces = split_escaped(raw, ",")
    if len(pieces) > 1 and not definition.multiple_or:
        raise bad_value(name, "takes one value here; comma-separated alternatives (OR) are not "
                              "supported for this parameter (escape a literal comma as \\,)")
    values = tuple(_parse_value(definition, modifier, piece) for piece in pieces)
    return Clause(name, modifier, values, raw)


def _parse_value(definition: SearchParamDef, modifier: str | None, piece: str) -> Value:
    if piece == "":
        raise bad_value(definition.name, "empty alternative in a comma-separated list")
    if definition.name == "_id":
        return parse_id(definition.name, unescape(piece))
    if definition.type is ParamType.STRING:
        return unescape(piece)
    if definition.type is ParamType.TOKEN:
        return parse_token(definition, piece)
    if definition.type is ParamType.DATE:
        return parse_date(definition, unescape(piece))
    return parse_reference(definition, modifier, unescape(piece))


def parse_id(name: str, value: str) -> str:
    if not ID_PATTERN.match(value):
        raise bad_value(name, f"{value!r} {ID_RULE}")
    return value


def parse_token(definition: SearchParamDef, piece: str) -> Token:
    parts = split_escaped(piece, "|")
    if len(parts) > 2:
        raise bad_value(definition.name, f"{unescape(piece)!r} has more than one '|' "
                                         f"(expected [system]|code)")
    if len(parts) == 1:
        token = Token(None, unescape(parts[0]))
    else:
        system, code = unescape(parts[0]), unescape(parts[1])
        if not system and not code:
            raise bad_value(definition.name, "'|' alone names neither a system nor a code")
        token = Token(system, code or None)
    if definition.codes is not None and token.code not in definition.codes:
        shown = repr(token.code) if token.code else "a missing code"
        raise bad_value(definition.name, f"{shown} is not one of {', '.join(definition.codes)}")
    return token


def parse_date(definition: SearchParamDef, piece: str) -> DateValue:
    prefix, value = ((piece[:2], piece[2:]) if piece[:2] in DATE_PREFIXES else ("eq", piece))
    # An unencoded '+' of a time zone arrives as a space.
    value = value.replace(" ", "+")
    if not _DATE.match(value):
        raise bad_value(definition.name, f"{piece!r} is not a date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime, "
                                         f"optionally after a prefix such as ge)")
    allowed = definition.prefixes
    if allowed is not None and prefix not in allowed:
        raise bad_value(definition.name, f"the prefix {prefix!r} is not supported here; supported: "
                                         f"{', '.join(allowed)}")
    return DateValue(prefix, value)


def parse_reference(definition: SearchParamDef, modifier: str | None, value: str) -> Reference:
    name = definition.name
    if "://" in value:
        raise bad_value(name, f"{value!r}: absolute references are not supported; use Type/id or id")
    parts = value.split("/")
    if len(parts) == 1:
        rtype = modifier or (definition.targets[0] if len(definition.targets) == 1 else None)
        return Reference(rtype, parse_id(name, value))
    if len(parts) != 2:
        raise bad_value(name, f"{value!r} is not a reference of the form Type/id")
    rtype, rid = parts
    if rtype not in definition.targets or (modifier and modifier != rtype):
        expected = modifier or " or ".join(definition.targets)
        raise bad_value(name, f"{value!r} refers to a {rtype}; expected a reference to {expected}")
    return Reference(rtype, parse_id(name, rid))


def parse_paging(paging: dict[str, str], *, default_count: int, max_count: int) -> tuple[int, int]:
    count = default_count
    if "_count" in paging:
        count = min(parse_non_negative("_count", paging["_count"]), max_count)
    summary = paging.get("_summary")
    if summary == "count":  # R4 search.html#summary: totals only — the same as _count=0
        count = 0
    elif summary not in (None, "false"):
        raise bad_value("_summary", f"{summary!r} is not supported; use count or false")
    offset = parse_non_negative("_offset", paging["_offset"]) if "_offset" in paging else 0
    if offset > MAX_OFFSET:
        raise bad_value("_offset", f"must be at most {MAX_OFFSET}")
    return count, offset


def parse_non_negative(name: str, raw: str) -> int:
    if not _DIGITS.match(raw):
        raise bad_value(name, f"{raw!r} is not a non-negative integer")
    digits = raw.lstrip("0") or "0"
    # Cap before int(): Python refuses to parse integers of more than 4,300 digits.
    return int(digits) if len(digits) <= 18 else 10**18
