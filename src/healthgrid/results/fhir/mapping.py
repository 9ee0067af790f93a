"""Shared results → FHIR R4: ``report_to_fhir`` (DiagnosticReport), ``observation_to_fhir``
and ``study_to_fhir`` (ImagingStudy with its DICOMweb Endpoint contained), and the code
systems the search reads back. The decisions are listed in the package docstring
(``results.fhir``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..catalogue import Catalogue
from ..domain import CN_TZ
from ..queries import LOINC, LOINC_SYSTEMS
from ..views import ObservationView, ReportView, StudyView

BASE = "https://healthgrid.example/fhir"
ITEM_SYSTEM = "urn:healthgrid:results:item"  # the catalogue's own item codes (catalogue.json "about")
MARK_EXTENSION = f"{BASE}/StructureDefinition/recognition-mark"
MARK_SYSTEM = f"{BASE}/CodeSystem/recognition-mark"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
UCUM = "http://unitsofmeasure.org"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
DICOM_UID = "urn:dicom:uid"
ENDPOINT_TYPE = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
OBSERVATION_VALUE = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
MASKED = {"system": OBSERVATION_VALUE, "code": "MASKED", "display": "masked"}

# v2-0074 diagnostic service section → observation-category (both on DiagnosticReport.category).
CATEGORY = {"LAB": ("Laboratory", "laboratory"), "RAD": ("Radiology", "imaging"),
            "EC": ("Electrocardiac", "procedure"), "PAT": ("Pathology (gross & histopath, not surgical)",
                                                           "laboratory")}
CATEGORY_LABEL = {"laboratory": "Laboratory", "imaging": "Imaging", "procedure": "Procedure"}
# HL7 v2 table 0078 abnormal flags are the v3 ObservationInterpretation codes of the same letters.
INTERPRETATION_DISPLAY = {"H": "High", "L": "Low", "HH": "Critical high", "LL": "Critical low", "A": "Abnormal",
                          "AA": "Critical abnormal", "N": "Normal"}
# Units sent as UCUM codes by the region's labs (the catalogue's units are UCUM): coded when known.
UCUM_UNITS = frozenset({"%", "g/L", "g/dL", "mg/dL", "mmol/L", "umol/L", "10*9/L", "10*12/L", "fL", "pg", "U/L",
                        "mIU/L", "ng/mL", "s", "mmol/mol", "mL/min", "mL/min/{1.73_m2}", "pmol/L", "nmol/L",
                        "ug/L", "IU/L", "mg/L", "10*3/uL", "10*6/uL"})


def local_system(org_code: str, kind: str = "lab") -> str:
    """An issuer's own dictionary (LIS/RIS codes, report numbers): ``NamingSystem/<org>-<kind>``."""
    return f"{BASE}/NamingSystem/{org_code}-{kind}"


def instant(at: datetime | None) -> str | None:
    return at.astimezone(CN_TZ).isoformat(timespec="seconds") if at else None


def system_of(stored: str | None, org_code: str) -> str:
    """The FHIR system of a stored code: LOINC, a URI as sent, else the issuer's local codes."""
    if stored in LOINC_SYSTEMS:
        return LOINC
    if stored and ("://" in stored or stored.startswith("urn:")):
        return stored
    return local_system(org_code)


def codeable(catalogue: Catalogue, *, code: str, code_system: str | None, display: str, item: str | None,
             org_code: str, single_analyte: bool) -> dict[str, Any]:
    """The code as sent, plus the catalogue item and its LOINC when the code is not LOINC."""
    system = system_of(code_system, org_code)
    codings = [{"system": system, "code": code, "display": display}]
    found = catalogue.find(item) if item else None
    if found is not None:
        loinc = found.loinc if not single_analyte else (found.analytes[0].loinc if len(found.analytes) == 1
                                                        else None)
        if loinc and not (system == LOINC and code == loinc):
            codings.append({"system": LOINC, "code": loinc})
        codings.append({"system": ITEM_SYSTEM, "code": found.code, "display": found.zh})
    return {"coding": codings, "text": display}


def _org(org_id: int | None, name: str | None = None) -> dict[str, Any] | None:
    return {"reference": f"Organization/{org_id}", "display": name} if org_id else None


def _subject(patient_id: int, name: str | None) -> dict[str, Any]:
    return {"reference": f"Patient/{patient_id}", "display": name}


def _meta(masked: bool, **more: Any) -> dict[str, Any]:
    return {**more, "security": [MASKED] if masked else []}


def report_to_fhir(r: ReportView, catalogue: Catalogue, *, masked: bool) -> dict[str, Any]:
    section, observation_category = CATEGORY.get(r.category, (r.category, None))
    category = [{"coding": [{"system": V2_0074, "code": r.category, "display": section}]
                + ([{"system": OBSERVATION_CATEGORY, "code": observation_category,
                     "display": CATEGORY_LABEL[observation_category]}] if observation_category else [])}]
    identifiers = [{"use": "usual", "type": {"coding": [{"system": V2_0203, "code": "FILL"}]},
                    "system": local_system(r.issuer_code, "report"), "value": r.filler_number}]
    if r.placer_number:
        identifiers.append({"type": {"coding": [{"system": V2_0203, "code": "PLAC"}]},
                            "system": local_system(r.ordering_org_code or r.issuer_code, "order"),
                            "value": r.placer_number})
    return {
        "resourceType": "DiagnosticReport",
        "id": str(r.id),
        "meta": _meta(masked, versionId=str(r.version), lastUpdated=instant(r.updated_at)),
        "extension": [{"url": MARK_EXTENSION, "valueCoding": {"system": MARK_SYSTEM, "code": r.mark}}]
        if r.mark else [],
        "identifier": identifiers,
        "status": r.status,
        "category": category,
        "code": codeable(catalogue, code=r.code, code_system=r.code_system, display=r.display, item=r.item,
                         org_code=r.issuer_code, single_analyte=False),
        "subject": _subject(r.patient_id, r.patient_name),
        "effectiveDateTime": instant(r.effective_at),
        "issued": instant(r.issued_at),
        "performer": [_org(r.issuer_org_id, r.issuer_name)]
        + ([_org(r.lab_org_id)] if r.lab_org_id and r.lab_org_id != r.issuer_org_id else []),
        "result": [{"reference": f"Observation/{o.id}", "display": o.display} for o in r.observations],
        "imagingStudy": [{"reference": f"ImagingStudy/{s.id}"} for s in r.studies],
        "conclusion": r.conclusion,
    }


def _quantity(value: float | None, unit: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    quantity: dict[str, Any] = {"value": value}
    if unit:
        quantity["unit"] = unit
        if unit in UCUM_UNITS:
            quantity |= {"system": UCUM, "code": unit}
    return quantity


def _value(o: ObservationView) -> dict[str, Any]:
    if o.value_num is not None:
        return {"valueQuantity": _quantity(o.value_num, o.unit)}
    if o.value_text:
        return {"valueString": o.value_text}
    return {"dataAbsentReason": {"coding": [{"system": ABSENT, "code": "unknown", "display": "Unknown"}]}}


def observation_to_fhir(o: ObservationView, catalogue: Catalogue, *, masked: bool) -> dict[str, Any]:
    observation_category = CATEGORY.get(o.category, ("", None))[1]
    reference = None
    if o.ref_low is not None or o.ref_high is not None or o.ref_text:
        reference = [{"low": _quantity(o.ref_low, o.unit), "high": _quantity(o.ref_high, o.unit),
                      "text": o.ref_text}]
    return {
        "resourceType": "Observation",
        "id": str(o.id),
        "meta": _meta(masked),
        "status": o.status,
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": observation_category,
                                  "display": CATEGORY_LABEL[observation_category]}]}]
        if observation_category else [],
        "code": codeable(catalogue, code=o.code, code_system=o.code_system, display=o.display, item=o.item,
                         org_code=o.issuer_code, single_analyte=True),
        "subject": _subject(o.patient_id, o.patient_name),
        "effectiveDateTime": instant(o.effective_at),
        "issued": instant(o.issued_at),
        "performer": [_org(o.issuer_org_id, o.issuer_name)],
        **_value(o),
        "interpretation": [{"coding": [{"system": INTERPRETATION, "code": o.flag,
                                        "display": INTERPRETATION_DISPLAY.get(o.flag)}]}] if o.flag else [],
        "referenceRange": reference,
    }


def study_to_fhir(s: StudyView, *, masked: bool) -> dict[str, Any]:
    endpoint = None
    if s.dicomweb_base:
        endpoint = {"resourceType": "Endpoint", "id": "dicomweb", "status": "active",
                    "connectionType": {"system": ENDPOINT_TYPE, "code": "dicom-wado-rs"},
                    "name": f"{s.issuer_name} DICOMweb", "managingOrganization": _org(s.issuer_org_id),
                    "payloadType": [{"text": "DICOM"}], "payloadMimeType": ["application/dicom"],
                    "address": s.dicomweb_base}
    identifiers = [{"system": DICOM_UID, "value": f"urn:oid:{s.study_uid}"}]
    if s.accession_number:
        identifiers.append({"type": {"coding": [{"system": V2_0203, "code": "ACSN"}]},
                            "system": local_system(s.issuer_code, "accession"),
                            "value": s.accession_number, "assigner": _org(s.issuer_org_id)})
    return {
        "resourceType": "ImagingStudy",
        "id": str(s.id),
        "meta": _meta(masked),
        "contained": [endpoint] if endpoint else [],
        "identifier": identifiers,
        "status": "available",
        "modality": [{"system": DCM, "code": s.modality}] if s.modality else [],
        "subject": _subject(s.patient_id, s.patient_name),
        "started": instant(s.started_at),
        "endpoint": [{"reference": "#dicomweb"}] if endpoint else [],
        "numberOfSeries": s.series_count,
        "numberOfInstances": s.instance_count,
        "description": s.description,
    }
