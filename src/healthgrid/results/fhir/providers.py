"""``DiagnosticReportProvider``, ``ObservationProvider`` and ``ImagingStudyProvider``: read,
search (with ``_include`` and counted paging) through ``results.queries``, which checks
access, masks and audits; create and update through the ingestion pipeline
(``results.fhir.ingest``), then the stored row is read back and rendered. Each interaction
is parse → one service call → map."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ...fhir import (
    ID_PARAM,
    VERSION_CONFLICT,
    FhirError,
    FhirRegistry,
    IncludeDef,
    ParamType,
    ResourceProvider,
    SearchParamDef,
    SearchRequest,
    SearchResult,
    Written,
)
from ...security.domain import Perm
from .. import queries
from ..queries import ResultQuery
from ..reference import catalogue_of
from . import search as s
from .mapping import ITEM_SYSTEM, LOINC, observation_to_fhir, report_to_fhir, study_to_fhir

DATE_PREFIXES = s.DATE_PREFIXES
REPORT_STATUSES = ("registered", "partial", "preliminary", "final", "amended", "corrected", "appended", "cancelled",
                   "entered-in-error", "unknown")
OBSERVATION_STATUSES = ("registered", "preliminary", "final", "amended", "corrected", "cancelled",
                        "entered-in-error", "unknown")
STUDY_STATUSES = ("registered", "available", "cancelled", "entered-in-error", "unknown")


def _param(name: str, type_: ParamType, doc: str, **kw: Any) -> SearchParamDef:
    kw.setdefault("multiple_or", False)
    kw.setdefault("repeatable", False)
    return SearchParamDef(name, type_, doc, **kw)


def _date(name: str, what: str) -> SearchParamDef:
    return SearchParamDef(name, ParamType.DATE, f"{what} (YYYY, YYYY-MM or YYYY-MM-DD, China time); repeat for a "
                          "range (`ge2025-01-01&lt2025-07-01`).", multiple_or=False, prefixes=DATE_PREFIXES)


PATIENT = (
    _param("patient", ParamType.REFERENCE, "The patient (Patient/<id>); results of records merged into it "
           "included. Required unless the issuing facility lists what it issued.", targets=("Patient",)),
    _param("subject", ParamType.REFERENCE, "The patient (as patient).", targets=("Patient",)),
)
PERFORMER = _param("performer", ParamType.REFERENCE, "The issuing organisation (Organization/<id>).",
                   targets=("Organization",))
CODE = _param("code", ParamType.TOKEN, f"LOINC (`{LOINC}|4548-4`), the catalogue's items (`{ITEM_SYSTEM}|HBA1C`) or "
              "an issuer's own codes (`https://healthgrid.example/fhir/NamingSystem/<org code>-lab|<code>`); a "
              "LOINC code also finds results sent in local codes mapped to that item.", multiple_or=True)
CATEGORY = SearchParamDef("category", ParamType.TOKEN, "v2-0074 LAB | RAD | EC | PAT, or observation-category "
                          "laboratory | imaging | procedure.", multiple_or=True)
PATIENT_INCLUDES = (IncludeDef("patient", "subject", ("Patient",), "The patient."),
                    IncludeDef("subject", "subject", ("Patient",), "The patient."))


class ResultProvider(ResourceProvider):
    """Read by id (``read_many`` in one query), search counted, writes through ingestion."""

    def views(self, session: Session, actor: Any, ids: list[int]) -> list[Any]:
        raise NotImplementedError

    def render(self, session: Session, actor: Any, views: list[Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def query(self, session: Session, request: SearchRequest) -> ResultQuery:
        raise NotImplementedError

    def fetch(self, session: Session, actor: Any, q: ResultQuery, offset: int, limit: int) -> queries.Page:
        raise NotImplementedError

    def read(self, session: Session, resource_id: str, actor: Any = None) -> dict[str, Any] | None:
        found = self.read_many(session, [resource_id], actor)
        return found[0] if found else None

    def read_many(self, session: Session, resource_ids: list[str], actor: Any = None) -> list[dict[str, Any]]:
        ids = [i for i in (s.db_id(r) for r in resource_ids) if i is not None]
        if not ids:
            return []
        return self.render(session, actor, self.views(session, s.who(actor), ids))

    def search(self, session: Session, request: SearchRequest) -> SearchResult:
        actor = s.who(request.actor)
        q = self.query(session, request)
        return s.page(request, lambda off, lim: self.fetch(session, actor, q, off, lim),
                      lambda views: self.render(session, actor, views))

    def create(self, session: Session, resource: dict[str, Any], actor: Any = None) -> Written:
        from .ingest import create_resource  # the ingestion pipeline: validates, maps, resolves the patient

        row_id = create_resource(session, s.who(actor), self.resource_type, resource)
        return Written(self._stored(session, row_id, actor), created=True)

    def update(self, session: Session, resource_id: str, resource: dict[str, Any], actor: Any = None, *,
               if_match: str | None = None) -> Written:
        from .ingest import update_resource

        row_id = s.db_id(resource_id)
        if row_id is None:
            raise FhirError("FHIR-008", f"{self.resource_type}/{resource_id} is not known", status=404,
                            issue="not-found")
        if if_match is not None and self.versioning == "versioned":
            current = self.read(session, resource_id, actor)
            version = (current or {}).get("meta", {}).get("versionId")
            if current is not None and version != if_match:
                raise FhirError(VERSION_CONFLICT, f"If-Match names version {if_match}; the current version is "
                                                  f"{version}", status=412, issue="conflict")
        written = update_resource(session, s.who(actor), self.resource_type, row_id, resource)
        return Written(self._stored(session, written, actor), created=False)

    def _stored(self, session: Session, row_id: int, actor: Any) -> dict[str, Any]:
        found = self.read(session, str(row_id), actor)
        if found is None:  # the writer said it wrote this row
            raise FhirError("FHIR-009", f"{self.resource_type}/{row_id} was written but cannot be read back",
                            status=500, issue="exception")
        return found


def _masked(actor: Any) -> bool:
    return not actor.can(Perm.PII_UNMASKED)


class DiagnosticReportProvider(ResultProvider):
    resource_type = "DiagnosticReport"
    versioning = "versioned"
    documentation = ("Laboratory and imaging reports (检验/检查报告) of the region's facilities: category v2-0074 "
                     "(LAB, RAD, EC, PAT) with the observation-category alongside, code as sent plus the LOINC and "
                     "catalogue item it maps to, performer the issuing organisation, result the Observations, "
                     "imagingStudy the images, conclusion the physician's (never mutually recognised, 国卫医发"
                     "〔2022〕6号 Art. 2), the HR recognition mark as the recognition-mark extension.")
    search_params = (ID_PARAM, *PATIENT, PERFORMER, CODE, CATEGORY,
                     _param("status", ParamType.TOKEN, " | ".join(REPORT_STATUSES) + ".", codes=REPORT_STATUSES,
                            multiple_or=True),
                     _date("date", "The clinically relevant time (specimen collected / study performed)"),
                     _date("issued", "When the report was issued"),
                     _param("identifier", ParamType.TOKEN, "The issuer's report number (https://healthgrid.example/"
                            "fhir/NamingSystem/<org code>-report|<number>).", multiple_or=True))
    includes = (IncludeDef("result", "result", ("Observation",), "The report's observations."),
                *PATIENT_INCLUDES,
                IncludeDef("performer", "performer", ("Organization",), "The issuing organisation."))

    def views(self, session: Session, actor: Any, ids: list[int]) -> list[Any]:
        return queries.get_reports(session, actor, ids)

    def render(self, session: Session, actor: Any, views: list[Any]) -> list[dict[str, Any]]:
        catalogue = catalogue_of(session)
        return [report_to_fhir(v, catalogue, masked=_masked(actor)) for v in views]

    def query(self, session: Session, request: SearchRequest) -> ResultQuery:
        q = ResultQuery()
        s.apply_ids(request, q)
        s.apply_references(request, q)
        s.apply_categories(request, q)
        s.apply_statuses(request, q, s.REPORT_STATUS_SYSTEM)
        s.apply_codes(session, request, q, catalogue_of(session), observation=False)
        s.apply_report_identifiers(session, request, q)
        q.since, q.until = s.date_bounds(request, "date")
        q.issued_since, q.issued_until = s.date_bounds(request, "issued")
        return q

    def fetch(self, session: Session, actor: Any, q: ResultQuery, offset: int, limit: int) -> queries.Page:
        return queries.search_reports(session, actor, q, offset=offset, limit=limit)


class ObservationProvider(ResultProvider):
    resource_type = "Observation"
    documentation = ("Result values (检验结果): category laboratory / imaging / procedure, code as sent plus LOINC and "
                     "the catalogue item, valueQuantity (UCUM where the unit is UCUM) or valueString, interpretation "
                     "from the HL7 0078 flag (v3 ObservationInterpretation), referenceRange as reported, performer "
                     "the issuing organisation. The report lists them in DiagnosticReport.result.")
    search_params = (ID_PARAM, *PATIENT, PERFORMER, CODE, CATEGORY,
                     _param("status", ParamType.TOKEN, " | ".join(OBSERVATION_STATUSES) + ".",
                            codes=OBSERVATION_STATUSES, multiple_or=True),
                     _date("date", "The time the specimen was collected (effective)"))
    includes = (*PATIENT_INCLUDES, IncludeDef("performer", "performer", ("Organization",), "The issuer."))

    def views(self, session: Session, actor: Any, ids: list[int]) -> list[Any]:
        return queries.get_observations(session, actor, ids)

    def render(self, session: Session, actor: Any, views: list[Any]) -> list[dict[str, Any]]:
        catalogue = catalogue_of(session)
        return [observation_to_fhir(v, catalogue, masked=_masked(actor)) for v in views]

    def query(self, session: Session, request: SearchRequest) -> ResultQuery:
        q = ResultQuery()
        s.apply_ids(request, q)
        s.apply_references(request, q)
        s.apply_categories(request, q)
        s.apply_statuses(request, q, s.OBSERVATION_STATUS_SYSTEM)
        s.apply_codes(session, request, q, catalogue_of(session), observation=True)
        q.since, q.until = s.date_bounds(request, "date")
        return q

    def fetch(self, session: Session, actor: Any, q: ResultQuery, offset: int, limit: int) -> queries.Page:
        return queries.search_observations(session, actor, q, offset=offset, limit=limit)


class ImagingStudyProvider(ResultProvider):
    resource_type = "ImagingStudy"
    documentation = ("Imaging studies kept in the facilities' PACS: identifier the Study Instance UID (urn:dicom:uid) "
                     "and the accession number, modality (DICOM), started, counts, and the PACS's DICOMweb root as a "
                     "contained Endpoint (dicom-wado-rs) referenced from endpoint: fetch the images there with "
                     "WADO-RS. Always status available: a study is indexed once it is in the PACS.")
    search_params = (ID_PARAM, *PATIENT,
                     _date("started", "When the study started"),
                     _param("modality", ParamType.TOKEN, "DICOM modality (CT, MR, DX, US …).", multiple_or=True),
                     _param("identifier", ParamType.TOKEN, "The Study Instance UID (urn:oid:1.2.…) or the accession "
                            "number.", multiple_or=True),
                     _param("status", ParamType.TOKEN, "available (every indexed study).", codes=STUDY_STATUSES,
                            multiple_or=True))
    includes = PATIENT_INCLUDES

    def views(self, session: Session, actor: Any, ids: list[int]) -> list[Any]:
        return queries.get_studies(session, actor, ids)

    def render(self, session: Session, actor: Any, views: list[Any]) -> list[dict[str, Any]]:
        return [study_to_fhir(v, masked=_masked(actor)) for v in views]

    def query(self, session: Session, request: SearchRequest) -> ResultQuery:
        q = ResultQuery()
        s.apply_ids(request, q)
        s.apply_references(request, q)
        s.apply_modalities(request, q)
        s.apply_study_identifiers(request, q)
        s.require_available(request)
        q.since, q.until = s.date_bounds(request, "started")
        return q

    def fetch(self, session: Session, actor: Any, q: ResultQuery, offset: int, limit: int) -> queries.Page:
        return queries.search_studies(session, actor, q, offset=offset, limit=limit)


PROVIDERS: tuple[type[ResultProvider], ...] = (DiagnosticReportProvider, ObservationProvider, ImagingStudyProvider)


def register(fhir: FhirRegistry) -> None:
    for provider in PROVIDERS:
        fhir.register(provider())
