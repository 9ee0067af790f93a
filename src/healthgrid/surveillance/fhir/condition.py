"""FHIR R4 ``Condition``: each notifiable-disease report card (传染病报告卡) as the case it
reports. Read and search only — cards are reported, corrected, deleted and reviewed through
the API and the pages — bound to ``reporting.get_card`` / ``search_cards``, which check
access, mask and audit; this module only maps.

Why Condition: a card is one person's diagnosis of one disease, asserted by a doctor on a
day — what R4's Condition is for, and what case-reporting guides (HL7 eCR, IHE QRPH) carry
as the reportable condition. The aggregate view — cases per disease, county and day, the
counts CIDARS detects on — is a population figure, not a person's problem, so it is
``MeasureReport`` (``measure_report``, another module), never a Bundle of Conditions.

Mapping decisions:
- identifier: the card number (``NamingSystem/case-report-card|CRB0000000012``).
- category: ``encounter-diagnosis`` (the diagnosing doctor's 首诊 diagnosis; not a
  problem-list item, which would invite curation the card does not have) plus our own
  ``case-report-category|notifiable-disease`` (法定传染病报告).
- code: the ICD-10 code the card was raised from (one click), else the catalogue's first
  ICD-10 code of the subtype or disease, in ``CodeSystem/icd-10-cn`` — the national clinical
  edition (GB/T 14396) system the referral resources use — and also in WHO's
  ``http://hl7.org/fhir/sid/icd-10`` when the code has WHO's shape; then the NIDRIS disease
  code and, when there is one, the subtype code in ``CodeSystem/nidris-disease``; text the
  Chinese name. AFP and "other" (9899) have no ICD-10 code in the catalogue: NIDRIS only.
- verificationStatus (condition-ver-status) from the case classification: suspected →
  ``provisional``; clinically diagnosed, confirmed, pathogen carrier and positive test →
  ``confirmed`` (R4: "sufficient diagnostic and/or clinical evidence" — a clinical
  diagnosis meets the case definition and is counted as a case); a deleted card →
  ``entered-in-error`` when deleted as a duplicate or "other", ``refuted`` when deleted as
  误报/排除 (the disease was excluded). A correction changes the card in place: the Condition
  shows the corrected disease, the disease first reported is the ``corrected-from``
  extension (订正病名), and the card's history is in the API.
- clinicalStatus ``active`` for a live card, ``inactive`` for a refuted one, absent when
  entered-in-error (con-5).
- subject ``Patient/<id>`` when the card is linked to the patient index, else a display of
  the name as the reader may see it. onsetDateTime the onset date; recordedDate the network
  report; the core ``condition-assertedDate`` extension the diagnosis time; asserter the
  reporting doctor (``Practitioner/<id>`` when known, else the name; R4's asserter cannot
  be an Organization, so the reporting unit is the ``reporting-organization`` extension).
- extensions: ``case-report-status`` (reported | reviewed | returned | deleted),
  ``case-report-type`` (first | correction | deletion), ``case-classification`` (our code),
  ``case-report-clocks`` (diagnosed, report-due, reported, late-minutes, review-due,
  reviewed, review-overdue; §5.2 2 h / 24 h). Times are instants at +08:00.
- Search: ``_id``, ``patient`` / ``subject``, ``code`` (an ICD-10 code finds the disease it
  falls under; a NIDRIS code the disease or subtype), ``recorded-date`` and ``onset-date``
  (days, months, years with eq / ge / gt / le / lt), ``verification-status`` (one value),
  paging with ``_count`` / ``_offset``; the total is known on the last page only.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from ...errors import NotFound, Unauthorized
from ...fhir import (
    ID_PARAM,
    DateValue,
    FhirRegistry,
    NoMatch,
    ParamType,
    ResourceProvider,
    SearchParamDef,
    SearchRequest,
    SearchResult,
    Token,
    any_of,
    bad_value,
)
from .. import reporting
from ..card_queries import CST, CardView
from ..catalogue import CASE_CLASSES, load_catalogue

BASE = "https://healthgrid.example/fhir"
CARD_SYSTEM = f"{BASE}/NamingSystem/case-report-card"
NIDRIS_SYSTEM = f"{BASE}/CodeSystem/nidris-disease"
CATEGORY_SYSTEM = f"{BASE}/CodeSystem/case-report-category"
CLASS_SYSTEM = f"{BASE}/CodeSystem/case-classification"
ICD10_CN_SYSTEM = f"{BASE}/CodeSystem/icd-10-cn"  # as the referral resources
ICD10_WHO_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
HL7_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
VER_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CLINICAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ASSERTED = "http://hl7.org/fhir/StructureDefinition/condition-assertedDate"
EXT = {name: f"{BASE}/StructureDefinition/{name}" for name in (
    "case-report-status", "case-report-type", "case-classification", "case-report-clocks", "reporting-organization",
    "corrected-from")}
_WHO_CODE = re.compile(r"^[A-Z][0-9]{2}(\.[0-9])?$")
MAX_ID = 2**31 - 1
LIVE = ["reported", "reviewed", "returned"]
# verification-status → (statuses, case classes, delete types) of the cards it stands for
VERIFICATION = {
    "provisional": (LIVE, ["suspected"], []),
    "confirmed": (LIVE, ["clinical", "confirmed", "carrier", "positive_test"], []),
    "entered-in-error": (["deleted"], [], ["duplicate", "other"]),
    "refuted": (["deleted"], [], ["misreport"]),
}


def verification_of(view: CardView) -> str:
    if view.status == "deleted":
        return "refuted" if view.card.delete_type == "misreport" else "entered-in-error"
    return "provisional" if view.card.case_class == "suspected" else "confirmed"


def _instant(at: datetime | None) -> str | None:
    return at.astimezone(CST).isoformat() if at else None


def _icd10(view: CardView) -> str | None:
    if view.icd10:
        return view.icd10
    cat, day = load_catalogue(), view.card.diagnosed_at.date()
    disease = cat.find(view.card.disease or "", day)
    sub = disease.subtype(view.card.subtype) if disease else None
    codes = (sub.icd10 if sub and sub.icd10 else ()) or (disease.icd10 if disease else ())
    return codes[0] if codes else None


def _code(view: CardView) -> dict[str, Any]:
    day = view.card.diagnosed_at.date()
    disease = load_catalogue().find(view.card.disease or "", day) or next(iter(load_catalogue().versions(
        view.card.disease or "")), None)
    sub = disease.subtype(view.card.subtype) if disease and view.card.subtype else None
    codings = []
    icd = _icd10(view)
    if icd:
        codings.append({"system": ICD10_CN_SYSTEM, "code": icd})
        if _WHO_CODE.match(icd):
            codings.append({"system": ICD10_WHO_SYSTEM, "code": icd})
    name = disease.zh if disease else view.card.disease
    codings.append({"system": NIDRIS_SYSTEM, "code": view.card.disease, "display": name})
    if sub is not None and sub.code != view.card.disease:
        codings.append({"system": NIDRIS_SYSTEM, "code": sub.code, "display": sub.zh})
    text = f"{name}（{sub.zh}）" if sub is not None and sub.zh != name else name
    if view.card.other_disease_name:
        text = f"{text}：{view.card.other_disease_name}"
    return {"coding": codings, "text": text}


def _clocks(view: CardView, now: datetime) -> dict[str, Any]:
    parts = [("diagnosed", "valueDateTime", _instant(view.diagnosed_at)),
             ("report-due", "valueDateTime", _instant(view.report_due_at)),
             ("reported", "valueDateTime", _instant(view.reported_at)),
             ("late-minutes", "valueInteger", view.late_minutes),
             ("review-due", "valueDateTime", _instant(view.review_due_at)),
             ("reviewed", "valueDateTime", _instant(view.reviewed_at)),
             ("review-overdue", "valueBoolean", view.review_overdue(now))]
    return {"url": EXT["case-report-clocks"],
            "extension": [{"url": url, kind: value} for url, kind, value in parts if value is not None]}


def _extensions(view: CardView, now: datetime) -> list[dict[str, Any]]:
    klass = view.card.case_class
    out = [{"url": ASSERTED, "valueDateTime": _instant(view.diagnosed_at)},
           {"url": EXT["case-report-status"], "valueCode": view.status},
           {"url": EXT["case-report-type"], "valueCode": view.report_type},
           {"url": EXT["case-classification"], "valueCoding": {
               "system": CLASS_SYSTEM, "code": klass, "display": CASE_CLASSES.get(klass or "", ("",))[0] or None}},
           _clocks(view, now)]
    if view.report_org_id:
        out.append({"url": EXT["reporting-organization"], "valueReference": {
            "reference": f"Organization/{view.report_org_id}", "display": view.report_org_name or None}})
    if view.card.corrected_disease:
        out.append({"url": EXT["corrected-from"], "valueCoding": {"system": NIDRIS_SYSTEM,
                                                                  "code": view.card.corrected_disease}})
    return out


def condition_to_fhir(view: CardView, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    verification = verification_of(view)
    resource: dict[str, Any] = {
        "resourceType": "Condition", "id": str(view.id),
        "meta": {"versionId": str(view.version), "lastUpdated": _instant(view.updated_at)},
        "extension": _extensions(view, now),
        "identifier": [{"system": CARD_SYSTEM, "value": view.card_number}],
        "verificationStatus": {"coding": [{"system": VER_SYSTEM, "code": verification}]},
        "category": [{"coding": [{"system": HL7_CATEGORY, "code": "encounter-diagnosis"}]},
                     {"coding": [{"system": CATEGORY_SYSTEM, "code": "notifiable-disease",
                                  "display": "法定传染病报告"}]}],
        "code": _code(view),
        "subject": ({"reference": f"Patient/{view.patient_id}"} if view.patient_id
                    else {"display": view.card.patient_name or view.card_number}),
        "onsetDateTime": view.card.onset_date.isoformat() if view.card.onset_date else None,
        "recordedDate": _instant(view.reported_at),
        "asserter": ({"reference": f"Practitioner/{view.practitioner_id}", "display": view.card.doctor}
                     if view.practitioner_id else {"display": view.card.doctor} if view.card.doctor else None),
    }
    if verification != "entered-in-error":
        resource["clinicalStatus"] = {"coding": [{"system": CLINICAL_SYSTEM,
                                                  "code": "inactive" if verification == "refuted" else "active"}]}
    return resource


# -- search ----------------------------------------------------------------------------------------

def _who(actor: Any) -> Any:
    if actor is None:
        raise Unauthorized("SEC-100", "log in first (a session cookie or an Authorization: Bearer token)")
    return actor


def _db_id(value: str) -> int | None:
    ok = value.isascii() and value.isdigit() and len(value) <= 10
    return int(value) if ok and 0 < int(value) <= MAX_ID else None


def _days(name: str, given: DateValue) -> tuple[date, date]:
    text = given.value
    if len(text) == 4:
        return date(int(text), 1, 1), date(int(text), 12, 31)
    if len(text) == 7:
        year, month = int(text[:4]), int(text[5:])
        return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
    day = given.full_date()
    if day is None:
        raise bad_value(name, f"{text!r}: give a date (YYYY-MM-DD, YYYY-MM or YYYY); times of day are not searchable")
    return day, day


def _range(request: SearchRequest, name: str) -> tuple[date | None, date | None]:
    """The occurrences of a date parameter AND-ed into an inclusive range of days."""
    low: date | None = None
    high: date | None = None
    for clause in request.of(name):
        first, last = _days(name, clause.values[0])
        lo, hi = {"eq": (first, last), "ge": (first, None), "gt": (last + timedelta(days=1), None),
                  "le": (None, last), "lt": (None, first - timedelta(days=1))}[clause.values[0].prefix]
        low = lo if low is None or (lo is not None and lo > low) else low
        high = hi if high is None or (hi is not None and hi < high) else high
    if low is not None and high is not None and low > high:
        raise NoMatch(name)
    return low, high


def _disease_of(token: Token) -> str | None:
    """A code token → the NIDRIS disease (or subtype) code it stands for."""
    code = (token.code or "").strip()
    if token.system in (None, NIDRIS_SYSTEM) and code and load_catalogue().versions(code):
        return code
    if token.system in (None, NIDRIS_SYSTEM):
        for d in load_catalogue().diseases:
            if d.subtype(code) is not None:
                return code
    if token.system in (None, ICD10_CN_SYSTEM, ICD10_WHO_SYSTEM) and code:
        found = reporting.notifiable_icd10(code, datetime.now(CST).date())
        if found is not None:
            return found[1].code if found[1] is not None else found[0].code
    return None


def _patient(request: SearchRequest) -> int | None:
    found: int | None = None
    for name in ("patient", "subject"):
        clause = request.single(name)
        if clause is None:
            continue
        pid = _db_id(clause.values[0].id)
        if pid is None or (found is not None and pid != found):
            raise NoMatch(name)
        found = pid
    return found


def card_query(request: SearchRequest) -> reporting.CardQuery:
    q = reporting.CardQuery(patient_id=_patient(request))
    diseases = any_of(request, "code", _disease_of)
    if diseases is not None:
        q.disease = next(iter(diseases))
    wanted = any_of(request, "verification-status",
                    lambda t: t.code if t.system in (None, VER_SYSTEM) and t.code in VERIFICATION else None)
    if wanted is not None:
        q.status, q.case_classes, q.delete_types = (list(x) for x in VERIFICATION[next(iter(wanted))])
    q.since, q.until = _range(request, "recorded-date")
    q.onset_from, q.onset_to = _range(request, "onset-date")
    return q


def _param(name: str, type_: ParamType, doc: str, **kw: Any) -> SearchParamDef:
    return SearchParamDef(name, type_, doc, multiple_or=False, repeatable=type_ is ParamType.DATE, **kw)


class ConditionProvider(ResourceProvider):
    resource_type = "Condition"
    versioning = "versioned"
    documentation = ("Notifiable-disease report cards (传染病报告卡), one Condition per card: identifier the card "
                     f"number ({CARD_SYSTEM}|CRB0000000012), code ICD-10 and the NIDRIS disease code, "
                     "verificationStatus from the case classification (deleted cards entered-in-error or refuted), "
                     "extensions for the report status and the 2 h / 24 h reporting and review clocks. Read-only; "
                     "aggregate counts are MeasureReport.")
    search_params: ClassVar[tuple[SearchParamDef, ...]] = (
        ID_PARAM,
        _param("patient", ParamType.REFERENCE, "The patient (Patient/<id>).", targets=("Patient",)),
        _param("subject", ParamType.REFERENCE, "The patient (as patient).", targets=("Patient",)),
        _param("code", ParamType.TOKEN, f"An ICD-10 code ({ICD10_CN_SYSTEM} or {ICD10_WHO_SYSTEM}: the notifiable "
               f"disease it falls under) or a NIDRIS disease or subtype code ({NIDRIS_SYSTEM})."),
        _param("recorded-date", ParamType.DATE, "The day of the network report (YYYY, YYYY-MM, YYYY-MM-DD, China "
               "time); repeat for a range.", prefixes=("eq", "ge", "gt", "le", "lt")),
        _param("onset-date", ParamType.DATE, "The onset date; repeat for a range.",
               prefixes=("eq", "ge", "gt", "le", "lt")),
        _param("verification-status", ParamType.TOKEN, "provisional | confirmed | entered-in-error | refuted.",
               codes=tuple(VERIFICATION) + ("unconfirmed", "differential")),
    )

    def read(self, session: Session, resource_id: str, actor: Any = None) -> dict[str, Any] | None:
        card_id = _db_id(resource_id)
        if card_id is None:
            return None
        try:
            return condition_to_fhir(reporting.get_card(session, _who(actor), card_id))
        except NotFound:
            return None

    def search(self, session: Session, request: SearchRequest) -> SearchResult:
        actor = _who(request.actor)
        ids = any_of(request, "_id", lambda v: _db_id(v) if isinstance(v, str) else None)
        if ids is not None:
            if [c for c in request.clauses if c.name != "_id"]:
                raise bad_value("_id", "cannot be combined with other parameters for Condition")
            found = [r for r in (self.read(session, str(i), actor) for i in sorted(ids)) if r is not None]
            return SearchResult(len(found), found[request.offset:request.offset + request.count])
        rows = reporting.search_cards(session, actor, card_query(request), offset=request.offset,
                                      limit=request.count + 1)
        more = len(rows) > request.count
        rows = rows[:request.count]
        total = request.offset + len(rows) if not more and (rows or request.offset == 0) else None
        now = datetime.now(UTC)
        return SearchResult(total, [condition_to_fhir(v, now) for v in rows], more)


def register(fhir: FhirRegistry) -> None:
    fhir.register(ConditionProvider())
