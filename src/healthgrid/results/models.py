"""Tables of the shared-results context (prefix ``res_``).

- ``res_message`` — every message received (a FHIR Bundle or resource, an HL7 v2 ORU/ADT
  message, a file's message), kept verbatim but encrypted (it carries personal data), with
  its ingestion report; ``(source, control_id)`` is unique so a message sent twice (an MLLP
  retry, a re-posted Bundle with the same identifier) is answered, not stored twice.
- ``res_report`` — a DiagnosticReport (检验报告 / 检查报告): who issued it, for whom, what
  item, its status and the physician's conclusion; ``(issuer_org_id, filler_number)`` is
  unique, so a corrected report updates the one it corrects.
- ``res_observation`` — one result value (检验结果) with unit, reference range and flag,
  indexed by patient, item and time for the timeline and the recognition lookup.
- ``res_imaging_study`` — an ImagingStudy's metadata and where its images live (the PACS's
  DICOMweb endpoint and the study instance UID).
- ``res_eqa`` — a laboratory's external quality assessment (室间质评) result per item and year.
- ``res_local_code`` — a facility's local item code mapped to a catalogue item.
- ``res_decision`` — every recognition decision at order time and the doctor's answer
  (feeds the repeat-test measures).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime, utcnow


class Message(Base):
    __tablename__ = "res_message"
    __table_args__ = (UniqueConstraint("source", "control_id"),
                      Index("ix_res_message_org_received", "org_id", "received_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # fhir_bundle | fhir_resource | hl7_oru | hl7_adt
    source: Mapped[str] = mapped_column(String(120))  # sending facility / application, or the API user
    control_id: Mapped[str] = mapped_column(String(120))  # MSH-10, Bundle.identifier, or a digest
    channel: Mapped[str] = mapped_column(String(12))  # api | fhir | mllp | file
    content_enc: Mapped[str] = mapped_column(Text, info={"pii": "results.message"})  # verbatim (base64 if binary)
    charset: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12))  # accepted | rejected
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # created/updated/ignored/errors by code
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    received_by: Mapped[str] = mapped_column(String(100))
    org_id: Mapped[int | None] = mapped_column(ForeignKey("reg_organization.id"))  # the sender, once known


class Report(Base):
    """A DiagnosticReport: laboratory (LAB), imaging (RAD) or other diagnostic service."""

    __tablename__ = "res_report"
    __table_args__ = (
        UniqueConstraint("issuer_org_id", "filler_number"),
        Index("ix_res_report_patient_issued", "patient_id", "issued_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("pat_patient.id"))
    issuer_org_id: Mapped[int] = mapped_column(ForeignKey("reg_organization.id"), index=True)  # the issuing hospital
    lab_org_id: Mapped[int | None] = mapped_column(ForeignKey("reg_organization.id"))  # whose EQA counts
    ordering_org_id: Mapped[int | None] = mapped_column(ForeignKey("reg_organization.id"))
    ordering_practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("reg_practitioner.id"), index=True)
    filler_number: Mapped[str] = mapped_column(String(80))  # the issuer's report / accession number
    placer_number: Mapped[str | None] = mapped_column(String(80))  # the order number
    category: Mapped[str] = mapped_column(String(10))  # LAB | RAD | EC (electrophysiology) | PAT
    item: Mapped[str | None] = mapped_column(String(40), index=True)  # catalogue item code, when mapped
    code_system: Mapped[str | None] = mapped_column(String(120))
    code: Mapped[str] = mapped_column(String(60))  # as sent (LOINC or the issuer's local code)
    display: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))  # FHIR DiagnosticReport.status
    mark: Mapped[str | None] = mapped_column(String(20))  # HR, 鄂HR …: the recognition mark on the report
    effective_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # specimen collected / study performed
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    conclusion: Mapped[str | None] = mapped_column(Text)  # never recognised (国卫医发〔2022〕6号 Art. 2)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("res_message.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class Observation(Base):
    __tablename__ = "res_observation"
    __table_args__ = (
        Index("ix_res_observation_patient_item_time", "patient_id", "item", "effective_at"),
        Index("ix_res_observation_report", "report_id", "seq"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("res_report.id"))
    patient_id: Mapped[int] = mapped_column(Integer)  # denormalised from the report for the lookups
    seq: Mapped[int] = mapped_column(Integer)  # order in the report (OBX-1)
    item: Mapped[str | None] = mapped_column(String(40))  # catalogue item code, when mapped
    code_system: Mapped[str | None] = mapped_column(String(120))
    code: Mapped[str] = mapped_column(String(60))
    display: Mapped[str] = mapped_column(String(200))
    value_num: Mapped[float | None] = mapped_column(Float)
    value_text: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(String(40))
    ref_low: Mapped[float | None] = mapped_column(Float)
    ref_high: Mapped[float | None] = mapped_column(Float)
    ref_text: Mapped[str | None] = mapped_column(String(80))
    flag: Mapped[str | None] = mapped_column(String(4))  # H | L | HH | LL | A | N (HL7 table 0078)
    status: Mapped[str] = mapped_column(String(20))  # FHIR ObservationStatus
    effective_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    issuer_org_id: Mapped[int] = mapped_column(Integer)


class ImagingStudy(Base):
    __tablename__ = "res_imaging_study"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_uid: Mapped[str] = mapped_column(String(128), unique=True)  # DICOM Study Instance UID
    report_id: Mapped[int | None] = mapped_column(ForeignKey("res_report.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("pat_patient.id"), index=True)
    issuer_org_id: Mapped[int] = mapped_column(ForeignKey("reg_organization.id"))
    accession_number: Mapped[str | None] = mapped_column(String(64))
    modality: Mapped[str | None] = mapped_column(String(16))  # DICOM modality: CT, MR, DX, US …
    body_site: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    series_count: Mapped[int | None] = mapped_column(Integer)
    instance_count: Mapped[int | None] = mapped_column(Integer)
    dicomweb_base: Mapped[str | None] = mapped_column(String(300))  # the PACS's DICOMweb root
    pacs_study_id: Mapped[str | None] = mapped_column(String(80))  # the PACS's own id (Orthanc's)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Eqa(Base):
    __tablename__ = "res_eqa"
    __table_args__ = (UniqueConstraint("lab_org_id", "item", "year"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lab_org_id: Mapped[int] = mapped_column(ForeignKey("reg_organization.id"))
    item: Mapped[str] = mapped_column(String(40))
    year: Mapped[int] = mapped_column(Integer)
    passed: Mapped[bool] = mapped_column(Boolean)
    provider: Mapped[str | None] = mapped_column(String(120))  # the quality-control centre
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LocalCode(Base):
    __tablename__ = "res_local_code"
    __table_args__ = (UniqueConstraint("org_id", "local_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("reg_organization.id"))
    local_code: Mapped[str] = mapped_column(String(60))
    item: Mapped[str] = mapped_column(String(40))
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Decision(Base):
    """A recognition decision at order time (国卫医发〔2022〕6号: record the decision, the reason
    when a result is not recognised, the physician, and that the patient was informed)."""

    __tablename__ = "res_decision"
    __table_args__ = (Index("ix_res_decision_org_time", "ordering_org_id", "decided_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("pat_patient.id"), index=True)
    item: Mapped[str] = mapped_column(String(40))
    ordering_org_id: Mapped[int] = mapped_column(ForeignKey("reg_organization.id"))
    physician: Mapped[str] = mapped_column(String(100))  # the user deciding
    outcome: Mapped[str] = mapped_column(String(30))  # recognition.Outcome
    recognised_report_id: Mapped[int | None] = mapped_column(ForeignKey("res_report.id"))
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # what was offered
    rejections: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # why the others were not
    override_reason: Mapped[str | None] = mapped_column(String(40))
    override_text: Mapped[str | None] = mapped_column(String(500))
    patient_informed: Mapped[bool | None] = mapped_column(Boolean)
    price_cny: Mapped[float | None] = mapped_column(Float)
    catalogue_version: Mapped[str] = mapped_column(String(20))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
