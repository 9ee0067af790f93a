"""FHIR R4 of shared results: DiagnosticReport, Observation and ImagingStudy read and search
(``providers``), and the transaction/batch Bundle and create/update entry points that feed
the ingestion pipeline (``ingest``).

Read and search (``providers`` + ``mapping`` + ``search``) are bound to ``results.queries``,
which checks access (``patient.read`` on the patient: relationship, population scope,
break-the-glass; the resident's own; the issuing facility's integration for what it issued),
masks the patient's name and audits. Mapping decisions, made once here:

- Ids: ``DiagnosticReport/<res_report.id>``, ``Observation/<res_observation.id>``,
  ``ImagingStudy/<res_imaging_study.id>``; subject ``Patient/<id>`` of the record standing now
  (results of records merged into it are its own), display the name, masked (and
  ``meta.security`` MASKED) for readers without ``pii.unmasked``, as the Patient resource does.
- Codes: the code as sent first — LOINC as ``http://loinc.org``; a URI as received; a
  facility's own code (HL7 "L", "99LIS" …) in ``https://healthgrid.example/fhir/NamingSystem/
  <org code>-lab`` (a NamingSystem per issuer, as the MRNs are, because local codes mean
  nothing outside their LIS) — then, when the row maps to a catalogue item, the item's LOINC
  (an observation: its single analyte's) and the item itself in ``urn:healthgrid:results:item``
  (the catalogue's own code system). So a LOINC search finds results sent in local codes that
  the facility mapped, and ``code`` searches each of the three.
- The HR mark (互认标识 "HR", "鄂HR" …) is the ``StructureDefinition/recognition-mark``
  extension (valueCoding in ``CodeSystem/recognition-mark``), not a ``meta.tag``: it is printed
  on the report and decides whether the result may be recognised (国卫医发〔2022〕6号), i.e. it is
  content with a meaning, while tags are for workflow and servers may add or drop them freely.
- category: v2-0074 (LAB, RAD, EC, PAT) and, in the same CodeableConcept, the
  observation-category it corresponds to (laboratory, imaging, procedure; pathology counts as
  laboratory), so ``category=laboratory`` and ``category=LAB`` both work; Observations carry the
  observation-category of their report.
- Observation: ``valueQuantity`` (UCUM system and code when the unit is UCUM) or ``valueString``
  (qualitative results such as 阴性), else ``dataAbsentReason``; ``interpretation`` from the HL7
  0078 flag as v3 ObservationInterpretation (the same letters: H, L, HH, LL, A, AA, N);
  ``referenceRange`` low/high in the value's unit and the range text as reported (each lab's
  own range; WS/T 404 makes the lab's verified range the one that counts); performer the
  issuing Organization; effective the collection time, issued the report's.
- DiagnosticReport: identifier the issuer's report number (FILL, ``NamingSystem/<org>-report``)
  and the order number (PLAC, ``NamingSystem/<ordering org>-order``); performer the issuing
  organisation (and the lab whose EQA counts, when another); result the Observations;
  imagingStudy the images; conclusion the physician's (never mutually recognised, Art. 2);
  ``meta.versionId`` the row's version (If-Match on update).
- ImagingStudy: identifier the Study Instance UID (``urn:dicom:uid``, ``urn:oid:…``) and the
  accession number (ACSN); modality in DCM; started; counts; status ``available``;
  ``endpoint`` → a *contained* Endpoint (``dicom-wado-rs``, address the PACS's DICOMweb root):
  the platform serves no Endpoint resources, and a contained one keeps the study
  self-sufficient for a client that fetches the images with WADO-RS.
- Search: ``patient``/``subject`` (required, except for the issuing facility listing what it
  issued: RES-150), ``code``, ``category``, ``status``, ``performer`` (the issuer), ``date`` and
  (reports) ``issued`` in China's days with eq/ge/gt/le/lt, ``identifier``, and for studies
  ``started``, ``modality``. ``_include``: DiagnosticReport:result / :patient / :subject /
  :performer, Observation:patient / :subject / :performer, ImagingStudy:patient / :subject —
  included resources are read through their own providers (checked and audited there; those
  refused are left out with an OperationOutcome of mode ``outcome``). Searches are counted:
  every Bundle has its total and first/previous/next/last links.
- Create and update call the ingestion pipeline (``ingest.create_resource`` /
  ``update_resource``: validation, patient resolution, coded errors) and return the stored row
  as read back here.
"""

from __future__ import annotations

from ...fhir import FhirRegistry
from . import ingest, providers


def register(fhir: FhirRegistry) -> None:
    providers.register(fhir)
    ingest.register(fhir)
