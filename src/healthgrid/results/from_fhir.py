"""FHIR R4 resources as the pipeline's intake items: Patient (demographics), DiagnosticReport,
Observation, ImagingStudy, and the Specimen, ServiceRequest and Endpoint a report points at.

Each resource is first validated against the R4B models of ``fhir.resources`` (the platform's
``fhir.validation.model_class``; R4B has the same elements as R4 for these types): a resource
that is not valid R4 is refused with RES-200 naming the element (``valueQuantity.value``).
Then the mapping, read from the JSON as sent:

- Patient: identifiers by system or type (resident ID: the platform's naming system, type NI or
  NNCHN, or the national OID 2.16.156.10011.1.3; the issuer's record number: type MR or any
  other identifier; health card HC; insurance SN/MB), name (text, else family + given —
  without a space in Chinese), gender, birthDate, the first phone and address;
- DiagnosticReport: identifier (the filler number: type FILL, else the first), category
  (HL7 table 0074 codes or RAD/LAB/PAT words), code (LOINC first), status, issued,
  effective[x], conclusion, performer (the issuing organisation: ``Organization/<id>`` or an
  identifier in the organisation-code naming system), basedOn (a ServiceRequest whose requester
  is the ordering doctor or organisation);
- Observation: code, status, value[x] (Quantity → number and unit, a comparator kept in the
  text; CodeableConcept, string, boolean, integer → text or number), referenceRange, the first
  interpretation (HL7 0078), effective[x]; a released value without value[x],
  dataAbsentReason or components is RES-207;
- ImagingStudy: the study instance UID (identifier ``urn:dicom:uid``), accession number (type
  ACSN), modality, the first series' body site, numbers of series and instances, started, and
  a DICOMweb Endpoint's address.
Pure: the references between resources are resolved by ``from_fhir_bundle``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from ..fhir.validation import model_class
from .intake import (
    Code,
    ObservationItem,
    PatientItem,
    Problem,
    StudyItem,
    make_code,
    normal_flag,
)

BASE = "https://healthgrid.example/fhir"
RESIDENT_ID_SYSTEMS = (f"{BASE}/NamingSystem/resident-id", "urn:oid:2.16.156.10011.1.3")
HEALTH_CARD_SYSTEM = f"{BASE}/NamingSystem/health-card"
INSURANCE_SYSTEM = f"{BASE}/NamingSystem/insurance"
ORG_CODE_SYSTEM = f"{BASE}/NamingSystem/org-code"
LICENCE_SYSTEM = f"{BASE}/NamingSystem/practitioner-licence"
PACS_ID_SYSTEM = f"{BASE}/NamingSystem/pacs-study-id"
DICOM_UID = "urn:dicom:uid"
TYPE_KINDS = {"NI": "resident_id", "NNCHN": "resident_id", "MR": "mrn", "PI": "mrn", "HC": "health_card",
              "SN": "insurance", "MB": "insurance"}
GENDERS = {"male": "M", "female": "F", "other": "U", "unknown": "U"}
# DiagnosticReport.category: HL7 table 0074 (v2-0074) codes and plain words
CATEGORY_WORDS = {"LAB": "LAB", "LABORATORY": "LAB", "RAD": "RAD", "IMAGING": "RAD", "RADIOLOGY": "RAD",
                  "EC": "EC", "CARDIOLOGY": "EC", "PAT": "PAT", "SP": "PAT", "PATHOLOGY": "PAT"}
VALUES = ("valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger", "valueRange",
          "valueRatio", "valueSampledData", "valueTime", "valueDateTime", "valuePeriod")


def validate(resource: dict[str, Any], where: str) -> list[Problem]:
    """RES-200 naming the element for a resource that is not valid R4 (R4B models)."""
    rtype = resource.get("resourceType")
    try:
        model_class(str(rtype)).model_validate(resource)
    except LookupError:
        return [Problem("RES-201", f"{rtype!r} is not a FHIR R4 resource type", where, "resourceType")]
    except ValidationError as exc:
        out = []
        for err in exc.errors()[:20]:
            path = ".".join(str(p) for p in err["loc"] if p != "__root__")
            out.append(Problem("RES-200", f"{rtype}.{path}: {err['msg']}" if path else f"{rtype}: {err['msg']}",
                               where, path))
        return out
    return []


def instant(value: Any) -> datetime | None:
    """An R4 dateTime/instant with a time zone as an aware datetime; a date alone is None."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        return None


def effective(res: dict[str, Any]) -> datetime | None:
    return (instant(res.get("effectiveDateTime")) or instant((res.get("effectivePeriod") or {}).get("start"))
            or instant(res.get("effectiveInstant")))


def codeable(concept: dict[str, Any] | None) -> Code | None:
    if not concept:
        return None
    pairs = [(c.get("system"), str(c.get("code") or ""), c.get("display") or "") for c in concept.get("coding", [])]
    code = make_code(pairs)
    if code is None and concept.get("text"):
        return Code(str(concept["text"])[:60], None, str(concept["text"]))
    if code is not None and concept.get("text") and not code.display:
        return Code(code.code, code.system, concept["text"], code.alternates)
    return code


def _type_code(ident: dict[str, Any]) -> str:
    codings = (ident.get("type") or {}).get("coding") or [{}]
    return str(codings[0].get("code") or "").upper()


def patient_item(res: dict[str, Any], where: str) -> PatientItem:
    found: dict[str, str] = {}
    others: list[str] = []
    for ident in res.get("identifier", []):
        value = str(ident.get("value") or "").strip()
        if not value:
            continue
        system = ident.get("system") or ""
        kind = ("resident_id" if system in RESIDENT_ID_SYSTEMS else "health_card" if system == HEALTH_CARD_SYSTEM
                else "insurance" if system == INSURANCE_SYSTEM else TYPE_KINDS.get(_type_code(ident)))
        if kind and kind not in found:
            found[kind] = value
        elif kind is None:
            others.append(value)
    if "mrn" not in found and others:
        found["mrn"] = others[0]  # the issuer's own number, under whatever system it uses
    phone = next((t.get("value") for t in res.get("telecom", []) if t.get("system") == "phone"), None)
    return PatientItem(where=where, name=_name(res.get("name", [])), sex=GENDERS.get(res.get("gender") or ""),
                       birth_date=_day(res.get("birthDate")), phone=phone, address=_address(res.get("address", [])),
                       **found)


def _name(names: list[dict[str, Any]]) -> str | None:
    if not names:
        return None
    n = next((x for x in names if x.get("use") == "official"), names[0])
    if n.get("text"):
        return str(n["text"]).strip()
    family, given = n.get("family") or "", "".join(n.get("given") or [])
    cjk = any(ord(ch) > 0x2E80 for ch in family + given)
    return (family + given if cjk else " ".join(" ".join(n.get("given") or []).split() + [family]).strip()) or None


def _address(addresses: list[dict[str, Any]]) -> str | None:
    if not addresses:
        return None
    a = addresses[0]
    if a.get("text"):
        return str(a["text"])
    parts = [a.get("state"), a.get("city"), a.get("district"), *(a.get("line") or [])]
    return "".join(p for p in parts if p) or None


def category(res: dict[str, Any]) -> str | None:
    for concept in res.get("category", []):
        for coding in concept.get("coding", []):
            found = CATEGORY_WORDS.get(str(coding.get("code") or "").upper())
            if found:
                return found
        if concept.get("text") and str(concept["text"]).upper() in CATEGORY_WORDS:
            return CATEGORY_WORDS[str(concept["text"]).upper()]
    return None


def filler_number(res: dict[str, Any]) -> str:
    idents = [i for i in res.get("identifier", []) if i.get("value")]
    chosen = next((i for i in idents if _type_code(i) == "FILL"), idents[0] if idents else None)
    return str(chosen["value"]).strip() if chosen else ""


def placer_number(res: dict[str, Any]) -> str | None:
    chosen = next((i for i in res.get("identifier", []) if _type_code(i) == "PLAC" and i.get("value")), None)
    return str(chosen["value"]) if chosen else None


def org_ref(reference: dict[str, Any]) -> str | None:
    """An organisation as the pipeline names it: "#<id>" or its code."""
    ref = str(reference.get("reference") or "")
    if ref.startswith("Organization/"):
        return "#" + ref.split("/", 1)[1]
    ident = reference.get("identifier") or {}
    if ident.get("system") == ORG_CODE_SYSTEM and ident.get("value"):
        return str(ident["value"])
    return None


def practitioner_ref(reference: dict[str, Any]) -> str | None:
    ref = str(reference.get("reference") or "")
    if ref.startswith("Practitioner/"):
        return "#" + ref.split("/", 1)[1]
    ident = reference.get("identifier") or {}
    if ident.get("system") == LICENCE_SYSTEM and ident.get("value"):
        return str(ident["value"])
    return None


def observation_item(res: dict[str, Any], where: str, seq: int, *,
                     observation_id: int | None = None) -> tuple[ObservationItem | None, list[Problem]]:
    code = codeable(res.get("code"))
    if code is None:
        return None, [Problem("RES-207", "Observation.code has neither a coding nor a text", where, "code")]
    value_num, value_text, unit = _value(res)
    status = res.get("status") or ""
    released = status in ("final", "amended", "corrected")
    if released and value_num is None and value_text is None and not res.get("dataAbsentReason"):
        return None, [Problem("RES-207", f"a {status} Observation needs value[x], dataAbsentReason or components",
                              where, "value[x]")]
    ref = (res.get("referenceRange") or [{}])[0]
    interp = (res.get("interpretation") or [{}])[0].get("coding") or [{}]
    return ObservationItem(where=where, seq=seq, code=code, status=status, value_num=value_num, value_text=value_text,
                           unit=unit, ref_low=(ref.get("low") or {}).get("value"),
                           ref_high=(ref.get("high") or {}).get("value"), ref_text=ref.get("text"),
                           flag=normal_flag(interp[0].get("code")), effective_at=effective(res),
                           observation_id=observation_id), []


def _value(res: dict[str, Any]) -> tuple[float | None, str | None, str | None]:
    q = res.get("valueQuantity")
    if q is not None:
        number = q.get("value")
        comparator = q.get("comparator")
        text = f"{comparator}{number:g}" if comparator and number is not None else None
        return (float(number) if number is not None else None), text, q.get("unit") or q.get("code")
    if "valueInteger" in res:
        return float(res["valueInteger"]), None, None
    if "valueCodeableConcept" in res:
        c = res["valueCodeableConcept"]
        coding = (c.get("coding") or [{}])[0]
        return None, c.get("text") or coding.get("display") or coding.get("code"), None
    if "valueBoolean" in res:
        return None, "true" if res["valueBoolean"] else "false", None
    for key in ("valueString", "valueTime", "valueDateTime"):
        if key in res:
            return None, str(res[key]), None
    if "valueRange" in res:
        low, high = (res["valueRange"].get(k, {}).get("value") for k in ("low", "high"))
        return None, f"{low if low is not None else ''}-{high if high is not None else ''}", None
    parts = [f"{codeable(c.get('code')).display if codeable(c.get('code')) else ''} {_value(c)[0] or _value(c)[1]}"
             for c in res.get("component", [])]
    return None, ("; ".join(p.strip() for p in parts) or None), None


def study_item(res: dict[str, Any], where: str, *, endpoint: str | None = None,
               study_id: int | None = None) -> StudyItem:
    uid = next((str(i.get("value") or "") for i in res.get("identifier", []) if i.get("system") == DICOM_UID), "")
    accession = next((i.get("value") for i in res.get("identifier", []) if _type_code(i) == "ACSN"), None)
    pacs = next((i.get("value") for i in res.get("identifier", []) if i.get("system") == PACS_ID_SYSTEM), None)
    series = res.get("series") or [{}]
    site = series[0].get("bodySite") or {}
    modality = (res.get("modality") or [{}])[0].get("code") or series[0].get("modality", {}).get("code")
    return StudyItem(where=where, study_uid=uid.removeprefix("urn:oid:"), accession=accession, modality=modality,
                     body_site=site.get("display") or site.get("code"), description=res.get("description"),
                     started_at=instant(res.get("started")), series_count=res.get("numberOfSeries"),
                     instance_count=res.get("numberOfInstances"), dicomweb_base=endpoint, pacs_study_id=pacs,
                     study_id=study_id)
