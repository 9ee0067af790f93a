"""Patient ↔ FHIR R4: ``patient_to_fhir`` (a record), ``summary_to_fhir`` (a search or
$match hit) and ``from_fhir`` (a body of create, update or $match into the index's input).
The mapping decisions are listed in the package docstring (``patients.fhir``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from ...errors import Invalid, NotFound
from ...registry import queries as registry_queries
from .. import domain as d
from .. import service
from ..queries import Kin, PatientSummary, PatientView

BASE = "https://healthgrid.example/fhir"
RESIDENT_ID_SYSTEM = f"{BASE}/NamingSystem/resident-id"
HEALTH_CARD_SYSTEM = f"{BASE}/NamingSystem/health-card"
INSURANCE_SYSTEM = f"{BASE}/NamingSystem/insurance"
MRN_SYSTEM = f"{BASE}/NamingSystem/mrn"  # + "/<organisation code>"
DIVISION_EXTENSION = f"{BASE}/StructureDefinition/patient-division"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V2_0131 = "http://terminology.hl7.org/CodeSystem/v2-0131"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
OBSERVATION_VALUE = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
GENDER_SYSTEM = "http://hl7.org/fhir/administrative-gender"
EN_REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
MATCH_DEFINITION = "http://hl7.org/fhir/OperationDefinition/Patient-match"

Kind = d.IdentifierKind
SYSTEMS = {Kind.RESIDENT_ID: RESIDENT_ID_SYSTEM, Kind.HEALTH_CARD: HEALTH_CARD_SYSTEM,
           Kind.INSURANCE: INSURANCE_SYSTEM}
TYPES = {Kind.RESIDENT_ID: ("NI", "National unique individual identifier"),
         Kind.HEALTH_CARD: ("HC", "Health Card Number"), Kind.INSURANCE: ("SN", "Subscriber Number"),
         Kind.MRN: ("MR", "Medical record number")}
TYPE_KINDS = {"NI": Kind.RESIDENT_ID, "NNCHN": Kind.RESIDENT_ID, "HC": Kind.HEALTH_CARD, "SN": Kind.INSURANCE,
              "MB": Kind.INSURANCE}
GENDERS = {"M": "male", "F": "female", "U": "unknown"}
SEXES = {"male": "M", "female": "F", "unknown": "U"}
KIN_ROLES = {"spouse": ("SPS", "spouse"), "parent": ("PRN", "parent"), "child": ("CHILD", "child"),
             "sibling": ("SIB", "sibling"), "grandparent": ("GRPRN", "grandparent"),
             "grandchild": ("GRNDCHILD", "grandchild")}
# v3-RoleCode's more specific family codes, understood on input.
ROLE_KIN = {code: kin for kin, (code, _) in KIN_ROLES.items()} | {
    "HUSB": "spouse", "WIFE": "spouse", "MTH": "parent", "FTH": "parent", "NMTH": "parent", "NFTH": "parent",
    "SON": "child", "DAU": "child", "NCHILD": "child", "BRO": "sibling", "SIS": "sibling", "NSIB": "sibling",
    "GRMTH": "grandparent", "GRFTH": "grandparent", "MGRPRN": "grandparent", "PGRPRN": "grandparent",
    "GRNDSON": "grandchild", "GRNDDAU": "grandchild"}
NEXT_OF_KIN = {"coding": [{"system": V2_0131, "code": "N", "display": "Next-of-Kin"}]}
MASKED = {"system": OBSERVATION_VALUE, "code": "MASKED", "display": "masked"}
SUBSETTED = {"system": OBSERVATION_VALUE, "code": "SUBSETTED", "display": "subsetted"}
LEVEL_ORDER = {"province": 0, "city": 1, "county": 2, "township": 3, "village": 4}
# Elements the index stores or derives; anything else in a body is refused, not dropped.
ACCEPTED = frozenset({"resourceType", "id", "meta", "text", "language", "active", "link", "identifier", "name",
                      "telecom", "gender", "birthDate", "address", "contact", "managingOrganization"})
MAX_DB_ID = 2**31 - 1


def bad(code: str, where: str, message: str) -> Invalid:
    # PAT-070 not representable in the index, PAT-071 a masked value, PAT-072 an identifier
    # it cannot place, PAT-073 a reference to nothing known.
    return Invalid(code, f"{where}: {message}", {"field": where})


def db_id(value: str) -> int | None:
    if not (value.isascii() and value.isdigit()) or len(value) > 10 or not 0 < int(value) <= MAX_DB_ID:
        return None
    return int(value)


# -- to FHIR -----------------------------------------------------------------------------------

class Lookups:
    """The registry facts a page of patients needs, each looked up once."""

    def __init__(self, session: Session):
        self.session = session
        self._orgs: dict[int, Any] = {}

    def org(self, org_id: int) -> Any:
        if org_id not in self._orgs:
            self._orgs[org_id] = registry_queries.organization_or_none(self.session, org_id)
        return self._orgs[org_id]

    def org_ref(self, org_id: int | None) -> dict[str, Any] | None:
        org = self.org(org_id) if org_id else None
        return {"reference": f"Organization/{org_id}", "display": org.name if org else None} if org_id else None

    def chain(self, division_id: int | None) -> list[Any]:
        if division_id is None:
            return []
        lineage = registry_queries.division_lineage(self.session, division_id)
        return sorted(registry_queries.divisions_by_ids(self.session, sorted(lineage)),
                      key=lambda dv: LEVEL_ORDER.get(dv.level, 9))


def patient_to_fhir(view: PatientView, look: Lookups) -> dict[str, Any]:
    links = ([{"other": {"reference": f"Patient/{view.replaced_by}"}, "type": "replaced-by"}]
             if view.replaced_by else [])
    links += [{"other": {"reference": f"Patient/{pid}"}, "type": "replaces"} for pid in view.replaces]
    chain = look.chain(view.division_id)
    return {
        "resourceType": "Patient",
        "id": str(view.id),
        "meta": {"versionId": str(view.version), "lastUpdated": _instant(view.updated_at),
                 "security": [MASKED] if view.masked else []},
        "identifier": [_identifier(i.kind, i.value, i.assigner, look) for i in view.identifiers],
        "active": view.active,
        "name": _names(view.name, view.name_pinyin),
        "telecom": _telecom(view.phone),
        "gender": GENDERS.get(view.sex),
        "birthDate": view.birth_date.isoformat() if view.birth_date else None,
        "address": [_address(chain, view.address_line)] if chain or view.address_line else [],
        "contact": [_contact(k) for k in view.kin],
        "managingOrganization": look.org_ref(view.registered_org_id),
        "link": links,
    }


def summary_to_fhir(summary: PatientSummary, masked: bool) -> dict[str, Any]:
    """A search hit: what the index's summary holds, tagged SUBSETTED (R4 search.html#summary)."""
    return {
        "resourceType": "Patient",
        "id": str(summary.id),
        "meta": {"tag": [SUBSETTED], "security": [MASKED] if masked else []},
        "identifier": [_identifier(Kind.RESIDENT_ID, summary.resident_id, 0, None)] if summary.resident_id else [],
        "active": True,  # searches and matches return only the records standing now
        "name": [{"use": "official", "text": summary.name}] if masked else _names(summary.name, None),
        "telecom": _telecom(summary.phone),
        "gender": GENDERS.get(summary.sex),
        "birthDate": summary.birth_date.isoformat() if summary.birth_date else None,
        "address": [{"use": "home", "text": "".join(summary.division_path)}],
    }


def _instant(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds")


def _identifier(kind: str, value: str, assigner: int, look: Lookups | None) -> dict[str, Any]:
    kind = Kind(kind)
    code, display = TYPES[kind]
    ident: dict[str, Any] = {
        "use": "usual" if kind is Kind.MRN else "official",
        "type": {"coding": [{"system": V2_0203, "code": code, "display": display}],
                 "text": d.IDENTIFIER_LABELS[kind][0]},
        "system": SYSTEMS.get(kind),
        "value": value,
    }
    if kind is Kind.MRN and look is not None:
        org = look.org(assigner)
        ident["system"] = f"{MRN_SYSTEM}/{org.code if org else assigner}"
        ident["assigner"] = look.org_ref(assigner)
    return ident


def _representation(code: str) -> dict[str, str]:
    return {"url": EN_REPRESENTATION, "valueCode": code}


def _names(name: str, pinyin: str | None) -> list[dict[str, Any]]:
    if name.isascii():
        return [{"use": "official", "text": name, "extension": [_representation("ABC")]}]
    official: dict[str, Any] = {"use": "official", "text": name, "extension": [_representation("IDE")]}
    family = d.surname_of(name)
    if "·" not in name and "*" not in name:
        official |= {"family": family, "given": [name[len(family):]]}
    names = [official]
    if pinyin:
        alpha: dict[str, Any] = {"use": "official", "text": pinyin, "extension": [_representation("ABC")]}
        # The surname's reading, as the index reads surnames (曾 zeng); the pinyin kept may
        # be spaced any way (li xiu ying, li xiuying), so split the unspaced key on it.
        key, head = d.name_key(pinyin), "".join(d.name_pinyin(name).split()[:len(family)])
        if "family" in official and head and key.startswith(head) and len(key) > len(head):
            fam, giv = head.capitalize(), key[len(head):].capitalize()
            alpha |= {"text": f"{fam} {giv}", "family": fam, "given": [giv]}
        names.append(alpha)
    return names


def _telecom(phone: str | None) -> list[dict[str, Any]]:
    if not phone:
        return []
    return [{"system": "phone", "value": phone, "use": "mobile" if phone.startswith("1") else "home"}]


def _address(chain: list[Any], line: str | None) -> dict[str, Any]:
    parts = {dv.level: dv.name for dv in chain}
    place = chain[-1] if chain else None
    return {
        "extension": [{"url": DIVISION_EXTENSION, "valueReference": {
            "reference": f"Location/div-{place.code}", "display": place.name}}] if place else [],
        "use": "home", "type": "physical",
        "text": "".join(dv.name for dv in chain) + (line or ""),
        "line": [line] if line else [],
        "district": parts.get("county"), "city": parts.get("city"), "state": parts.get("province"),
        "country": "CN",
    }


def _contact(kin: Kin) -> dict[str, Any]:
    role = KIN_ROLES.get(kin.relationship)
    label = d.KIN_RELATIONSHIPS.get(kin.relationship, d.KIN_RELATIONSHIPS["other"])[0]
    coded = {"coding": [{"system": ROLE_CODE, "code": role[0], "display": role[1]}] if role else [],
             "text": label}
    return {"relationship": [NEXT_OF_KIN, coded], "name": {"text": kin.name}, "telecom": _telecom(kin.phone)}


# -- from FHIR ---------------------------------------------------------------------------------

@dataclass
class Parsed:
    """A Patient body read into the index's input: ``data`` without the record number,
    ``mrns`` as (organisation id, value), ``org_id`` from managingOrganization."""

    data: service.PatientIn
    mrns: list[tuple[int, str]]
    org_id: int | None


def from_fhir(session: Session, resource: dict[str, Any]) -> Parsed:
    unknown = sorted(set(resource) - ACCEPTED)
    if unknown:
        raise bad("PAT-070", f"Patient.{unknown[0]}", "is not stored by the patient index; leave it out")
    if any(s.get("code") == "MASKED" for s in resource.get("meta", {}).get("security", [])):
        raise bad("PAT-071", "meta.security", "this Patient was read masked; masked values cannot be written "
                                               "back (an update needs the record read unmasked)")
    national, mrns = _identifiers_of(session, resource.get("identifier", []))
    name, pinyin = _name_of(resource.get("name", []))
    division_id, line = _address_of(session, resource.get("address", []))
    data = service.PatientIn(
        name=name, name_pinyin=pinyin, sex=_sex_of(resource.get("gender")),
        birth_date=_date_of(resource.get("birthDate")), resident_id=national.get(Kind.RESIDENT_ID),
        health_card=national.get(Kind.HEALTH_CARD), insurance=national.get(Kind.INSURANCE),
        phone=_phone_of(resource.get("telecom", []), "telecom"), division_id=division_id, address_line=line,
        kin=[_kin_of(c, i) for i, c in enumerate(resource.get("contact", []))])
    return Parsed(data, mrns, _org_of(session, resource.get("managingOrganization"), "managingOrganization"))


def _identifiers_of(session: Session, identifiers: list[dict]) -> tuple[dict[Kind, str], list[tuple[int, str]]]:
    national: dict[Kind, str] = {}
    mrns: list[tuple[int, str]] = []
    for i, ident in enumerate(identifiers):
        where, value = f"identifier[{i}]", _unmasked(ident.get("value"), f"identifier[{i}].value")
        if not value:
            raise bad("PAT-072", where, "an identifier needs a value")
        kind, org_id = _kind_of(session, ident, where)
        if kind is Kind.MRN:
            mrns.append((org_id, value))
        elif kind in national:
            raise bad("PAT-072", where, f"a second {d.IDENTIFIER_LABELS[kind][1]}; a resident has one")
        else:
            national[kind] = value
    return national, mrns


def _kind_of(session: Session, ident: dict, where: str) -> tuple[Kind, int]:
    system = ident.get("system")
    for kind, known in SYSTEMS.items():
        if system == known:
            return kind, 0
    if system and system.startswith(f"{MRN_SYSTEM}/"):
        return Kind.MRN, _org_by_code(session, system).id
    codes = [c.get("code") for c in ident.get("type", {}).get("coding", []) if c.get("system") == V2_0203]
    kind = next((TYPE_KINDS[c] for c in codes if c in TYPE_KINDS), None)
    if system is None and kind is not None:
        return kind, 0
    expected = ", ".join([*SYSTEMS.values(), f"{MRN_SYSTEM}/<organisation code>"])
    raise bad("PAT-072", f"{where}.system", f"{system or 'no system'} is not an identifier the index keeps; "
                                             f"expected one of {expected}")


def _org_by_code(session: Session, system: str) -> Any:
    code = system.removeprefix(f"{MRN_SYSTEM}/")
    try:
        return registry_queries.organization_by_code(session, code)
    except NotFound:
        raise bad("PAT-073", "identifier.system", f"no organisation with the code {code!r} assigns record "
                                                   f"numbers here") from None


def _unmasked(value: Any, where: str) -> Any:
    if isinstance(value, str) and "*" in value:
        raise bad("PAT-071", where, "a masked value (with *) cannot be written; send the full value")
    return value


def _name_of(names: list[dict]) -> tuple[str, str | None]:
    def text(n: dict, sep: str) -> str:
        return n.get("text") or sep.join([n.get("family", ""), *n.get("given", [])]).strip()

    def rep(n: dict) -> str | None:
        return next((e.get("valueCode") for e in n.get("extension", []) if e.get("url") == EN_REPRESENTATION), None)

    current = [n for n in names if n.get("use") not in ("old", "maiden")]
    chinese = next((n for n in current if rep(n) == "IDE" or (rep(n) is None and not text(n, "").isascii())), None)
    latin = next((n for n in current if n is not chinese and rep(n) != "IDE" and text(n, " ").isascii()), None)
    if chinese is not None:
        return _unmasked(text(chinese, ""), "name"), text(latin, " ") if latin else None
    if latin is not None:  # a foreign resident: given names first
        return _unmasked(latin.get("text") or " ".join([*latin.get("given", []), latin.get("family", "")]).strip(),
                         "name"), None
    return "", None  # the service names what is missing


def _sex_of(gender: str | None) -> str | None:
    if gender is None:
        return None
    if gender not in SEXES:
        raise bad("PAT-070", "gender", "the index records sex as male, female or unknown (GB/T 2261.1)")
    return SEXES[gender]


def _date_of(value: str | None) -> date | None:
    if value is None:
        return None
    if len(value) != 10:
        raise bad("PAT-070", "birthDate", f"{value!r}: the index needs a full date (YYYY-MM-DD)")
    return date.fromisoformat(value)


def _phone_of(telecom: list[dict], where: str) -> str | None:
    phones = []
    for i, point in enumerate(telecom):
        if point.get("system") != "phone":
            raise bad("PAT-070", f"{where}[{i}].system", "only a phone number is stored")
        phones.append(_unmasked(point.get("value"), f"{where}[{i}].value"))
    if len(phones) > 1:
        raise bad("PAT-070", where, "one phone number is stored; send one")
    return phones[0] if phones else None


def _address_of(session: Session, addresses: list[dict]) -> tuple[int | None, str | None]:
    if len(addresses) > 1:
        raise bad("PAT-070", "address", "one (home) address is stored; send one")
    if not addresses:
        return None, None
    address = addresses[0]
    ref = next((e.get("valueReference", {}).get("reference") for e in address.get("extension", [])
                if e.get("url") == DIVISION_EXTENSION), None)
    division_id = None
    if ref:
        code = ref.removeprefix("Location/div-") if ref.startswith("Location/div-") else None
        try:
            division_id = registry_queries.division_by_code(session, code).id if code else None
        except NotFound:
            division_id = None
        if division_id is None:
            raise bad("PAT-073", "address.extension", f"{ref!r} is not a jurisdiction (Location/div-<code>)")
    line = " ".join(address.get("line", [])) or (address.get("text") if division_id is None else None)
    return division_id, _unmasked(line or None, "address.line")


def _kin_of(contact: dict, i: int) -> service.KinIn:
    where = f"contact[{i}]"
    name = contact.get("name", {})
    codes = [c.get("code") for r in contact.get("relationship", []) for c in r.get("coding", [])
             if c.get("system") == ROLE_CODE]
    relationship = next((ROLE_KIN[c] for c in codes if c in ROLE_KIN), "other")
    text = name.get("text") or "".join([name.get("family", ""), *name.get("given", [])])
    return service.KinIn(name=_unmasked(text, f"{where}.name"), relationship=relationship,
                         phone=_phone_of(contact.get("telecom", []), f"{where}.telecom"))


def _org_of(session: Session, ref: dict | None, where: str) -> int | None:
    if ref is None:
        return None
    text = ref.get("reference", "")
    org_id = db_id(text.removeprefix("Organization/")) if text.startswith("Organization/") else None
    if org_id is None or registry_queries.organization_or_none(session, org_id) is None:
        raise bad("PAT-073", where, f"{text or 'a reference without Organization/<id>'} is not a known "
                                     f"Organization")
    return org_id
