"""``PatientProvider``: the Patient interactions of the FHIR surface, each one parse →
one ``service`` call → map. Access, masking and audit are the service's."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from ...errors import NotFound, Unauthorized
from ...fhir import (
    ID_PARAM,
    VERSION_CONFLICT,
    DateValue,
    FhirError,
    NoMatch,
    OperationDef,
    OperationRequest,
    ParamType,
    ResourceProvider,
    SearchParamDef,
    SearchRequest,
    SearchResult,
    Token,
    Written,
    any_of,
    bad_value,
    entry,
    searchset_bundle,
)
from ...registry import queries as registry_queries
from ...security.domain import Perm
from .. import service
from .mapping import (
    GENDER_SYSTEM,
    HEALTH_CARD_SYSTEM,
    INSURANCE_SYSTEM,
    MATCH_DEFINITION,
    MATCH_GRADE,
    MRN_SYSTEM,
    RESIDENT_ID_SYSTEM,
    Kind,
    Lookups,
    Parsed,
    bad,
    db_id,
    from_fhir,
    patient_to_fhir,
    summary_to_fhir,
)

OUTCOME_HEADER = "X-HealthGrid-Outcome"
MATCH_COUNT = 10  # candidates $match returns when the client names no count
NATIONAL = {RESIDENT_ID_SYSTEM: Kind.RESIDENT_ID, HEALTH_CARD_SYSTEM: Kind.HEALTH_CARD,
            INSURANCE_SYSTEM: Kind.INSURANCE}


def _single(name: str, type_: ParamType, doc: str, **kw: Any) -> SearchParamDef:
    # PatientQuery takes one value per criterion: no OR list, no repetition.
    return SearchParamDef(name, type_, doc, multiple_or=False, repeatable=False, **kw)


def _who(actor: Any) -> Any:
    if actor is None:
        raise Unauthorized("SEC-100", "log in first (a session cookie or an Authorization: Bearer token)")
    return actor


def _masked(actor: Any) -> bool:
    return not actor.can(Perm.PII_UNMASKED)


def _home_org(actor: Any) -> int | None:
    """The organisation the user works at (security's user.org_id), if any."""
    return actor.extra.get("org_id") if actor is not None else None


def _own_mrn(parsed: Parsed, org_id: int | None, *, others_allowed: bool) -> str | None:
    """The record number of ``org_id`` among those given. Another facility's number is
    refused on create (it cannot be registered from here) and left as stored on update."""
    own = [value for org, value in parsed.mrns if org == org_id]
    if len(own) > 1:
        raise bad("PAT-072", "identifier", "two record numbers of one facility; a facility gives one")
    if not others_allowed and len(own) < len(parsed.mrns):
        raise bad("PAT-072", "identifier", "a record number of another facility than the registering one "
                                           "(managingOrganization, else your own) cannot be registered here")
    return own[0] if own else None


def match(session: Session, op: OperationRequest) -> dict[str, Any]:
    """Patient/$match (R4 patient-operation-match.html): a searchset of scored candidates,
    best first, each with search.score and the match-grade extension."""
    actor = _who(op.actor)
    parsed = from_fhir(session, op.resource("resource", "Patient"))
    org_id = parsed.org_id or (parsed.mrns[0][0] if parsed.mrns else None) or _home_org(actor)
    parsed.data.mrn = _own_mrn(parsed, org_id, others_allowed=True)
    ranked = service.match_patients(session, actor, parsed.data, org_id=org_id,
                                    count=op.integer("count", MATCH_COUNT, minimum=1, maximum=50),
                                    only_certain=op.boolean("onlyCertainMatches", False))
    entries = [entry(op.base, summary_to_fhir(summary, _masked(actor)), score=round(probability, 6),
                     extension=[{"url": MATCH_GRADE, "valueCode": grade}])
               for summary, probability, grade in ranked]
    return searchset_bundle(len(entries), entries)


class PatientProvider(ResourceProvider):
    resource_type = "Patient"
    versioning = "versioned-update"
    documentation = (
        "The master patient index (患者主索引). Search hits are the index's summaries (meta.tag SUBSETTED, "
        "masked without `pii.unmasked`); read a record for all of it. The index does not count matches: "
        "Bundle.total is given only on the last page — follow `next`. Create links to the record that "
        "already stands for the resident when the index finds one (200, header `X-HealthGrid-Outcome: "
        "linked`), otherwise makes one (201, `created` or `review`). Update accepts `If-Match: W/\"<version>\"`.")
    search_params = (
        ID_PARAM,
        _single("identifier", ParamType.TOKEN, f"`[system|]number`: the resident ID ({RESIDENT_ID_SYSTEM}, the "
                f"default without a system), e-health card ({HEALTH_CARD_SYSTEM}) or insurance number "
                f"({INSURANCE_SYSTEM}). Facility record numbers ({MRN_SYSTEM}/<code>) are not searchable here."),
        _single("name", ParamType.STRING, "The whole name in characters (李秀英) or its pinyin, with or without "
                "spaces or tone digits (li xiuying, lixiuying, li3 xiu4 ying1); homophones match (晓明 = 小明). "
                "Not part of a name."),
        _single("birthdate", ParamType.DATE, "A full date (YYYY-MM-DD), equality only.", prefixes=("eq",)),
        _single("gender", ParamType.TOKEN, "male | female | unknown; narrows another criterion.",
                codes=("male", "female", "other", "unknown")),
        _single("phone", ParamType.TOKEN, "The phone number (mobile, or landline with its area code)."),
        _single("telecom", ParamType.TOKEN, "`phone|<number>` or the number; only phones are kept."),
        _single("address", ParamType.STRING, "The exact name of the division (village or community) the "
                "resident lives in; a name several divisions share is refused."),
    )

    operations = (OperationDef(
        "match", MATCH_DEFINITION, match, ("resource", "count", "onlyCertainMatches"), resource_param="resource",
        documentation="Scored candidates for a Patient described but not registered (POST a Parameters with "
                      "`resource`, or the Patient itself): search.score is the match probability, the "
                      "match-grade extension `certain` (would link) or `possible` (would go to review). "
                      "`count` defaults to 10 (at most 50)."),)

    def read(self, session: Session, resource_id: str, actor: Any = None) -> dict[str, Any] | None:
        pid = db_id(resource_id)
        if pid is None:
            return None
        try:  # follow=False: a merged-away record is itself, with link replaced-by
            view = service.get_patient(session, _who(actor), pid, follow=False)
        except NotFound:
            return None
        return patient_to_fhir(view, Lookups(session))

    def search(self, session: Session, request: SearchRequest) -> SearchResult:
        actor = _who(request.actor)
        ids = any_of(request, "_id", db_id)
        if ids is not None:
            return self._by_ids(session, request, sorted(ids))
        page = service.search_patients(session, actor, _query(session, request), offset=request.offset,
                                       limit=request.count)
        # The index reads one row past the page instead of counting: its total is exact only
        # when nothing lies beyond the page.
        more = page.total > request.offset + len(page.items)
        known = not more and (bool(page.items) or request.offset == 0)
        resources = [summary_to_fhir(s, _masked(actor)) for s in page.items]
        return SearchResult(page.total if known else None, resources, more)

    def _by_ids(self, session: Session, request: SearchRequest, ids: list[int]) -> SearchResult:
        if any(c.name != "_id" for c in request.clauses):
            raise bad_value("_id", "cannot be combined with other search parameters for Patient")
        found = [r for r in (self.read(session, str(pid), request.actor) for pid in ids) if r is not None]
        return SearchResult(len(found), found[request.offset:request.offset + request.count])

    def create(self, session: Session, resource: dict[str, Any], actor: Any = None) -> Written:
        parsed = from_fhir(session, resource)
        org_id = parsed.org_id or _home_org(actor)
        parsed.data.mrn = _own_mrn(parsed, org_id, others_allowed=False)
        reg = service.register_patient(session, _who(actor), org_id=org_id, data=parsed.data)
        return Written(patient_to_fhir(reg.patient, Lookups(session)), created=reg.outcome != "linked",
                       headers={OUTCOME_HEADER: reg.outcome})

    def update(self, session: Session, resource_id: str, resource: dict[str, Any], actor: Any = None, *,
               if_match: str | None = None) -> Written:
        pid = db_id(resource_id)
        if pid is None:
            raise NotFound("PAT-010", f"no patient {resource_id}")
        if if_match is not None and not (if_match.isascii() and if_match.isdigit() and len(if_match) < 10):
            raise FhirError(VERSION_CONFLICT, f"If-Match names version {if_match!r}; Patient versions are numbers",
                            status=412, issue="conflict")
        parsed = from_fhir(session, resource)
        org_id = _home_org(actor) or parsed.org_id
        parsed.data.mrn = _own_mrn(parsed, org_id, others_allowed=True)
        view = service.update_patient(session, _who(actor), pid, data=parsed.data, org_id=org_id,
                                      expected_version=int(if_match) if if_match else None)
        return Written(patient_to_fhir(view, Lookups(session)), created=False)


# -- search parameters -> PatientQuery -----------------------------------------------------------

def _query(session: Session, request: SearchRequest) -> service.PatientQuery:
    def value(name: str) -> Any:
        clause = request.single(name)
        return clause.values[0] if clause else None

    if request.single("phone") and request.single("telecom"):
        raise bad_value("telecom", "give the phone number as phone or as telecom, not both")
    query = service.PatientQuery(name=value("name"), sex=_sex(value("gender")),
                                 birth_date=_birth_date(value("birthdate")),
                                 phone=_phone(value("phone"), "phone") or _phone(value("telecom"), "telecom"))
    if value("identifier") is not None:
        query.identifier_kind, query.identifier = _identifier(value("identifier"))
    if value("address") is not None:
        query.division_id = _division_named(session, value("address"))
    return query


def _identifier(token: Token) -> tuple[str, str]:
    if token.code is None:
        raise bad_value("identifier", "give the number (system|number)")
    if not token.system:
        return Kind.RESIDENT_ID.value, token.code
    if token.system.startswith(f"{MRN_SYSTEM}/"):
        raise bad_value("identifier", "facility record numbers are not searchable here; search by the resident "
                                      "ID, e-health card or insurance number, or by name and birth date")
    if token.system not in NATIONAL:
        raise NoMatch("identifier")  # a system the index keeps nothing of
    return NATIONAL[token.system].value, token.code


def _sex(token: Token | None) -> str | None:
    if token is None:
        return None
    if token.system not in (None, "", GENDER_SYSTEM) or token.code in (None, "other"):
        raise NoMatch("gender")  # the index records M, F or U
    return {"male": "M", "female": "F", "unknown": "U"}[token.code]


def _birth_date(value: DateValue | None) -> date | None:
    if value is None:
        return None
    born = value.full_date()
    if born is None:
        raise bad_value("birthdate", f"{value.value!r}: give a full date (YYYY-MM-DD)")
    return born


def _phone(token: Token | None, name: str) -> str | None:
    if token is None:
        return None
    if token.system not in (None, "", "phone") or token.code is None:
        raise NoMatch(name)
    return token.code


def _division_named(session: Session, name: str) -> int:
    found = [dv for dv in registry_queries.search_divisions(session, name=name, limit=50).items if dv.name == name]
    if not found:
        raise NoMatch("address")
    if len(found) > 1:
        raise bad_value("address", f"{len(found)} divisions are named {name!r}; search by name, identifier or "
                                   f"phone instead")
    return found[0].id
