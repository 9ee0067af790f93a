"""What a received message becomes before anything is stored: the patient's demographics and
identifiers, the reports (DiagnosticReport) with their observations and imaging studies, each
item carrying *where* it came from (``OBX 3``, ``Bundle.entry[4].resource``) so that every
refusal names the segment, field or element. Built by ``from_hl7`` and ``from_fhir``; checked
here without a database (``check_message``), then against the registry and the stored reports
by ``ingest``. Pure: no session, no clock (``now`` is passed in).

Error codes of the ingestion pipeline: RES-180…RES-219 (those raised here: RES-180…RES-191);
warnings RES-211…RES-214 do not refuse a message. Column limits are those of
``results.models``; a value that does not fit is refused, never cut.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Any

from ..errors import HealthGridError
from .domain import STATUSES

LOINC = "http://loinc.org"
LOINC_NAMES = frozenset({"LN", "LOINC", "HTTP://LOINC.ORG", "URN:OID:2.16.840.1.113883.6.1"})
CATEGORIES = ("LAB", "RAD", "EC", "PAT")  # laboratory, imaging, electrophysiology, pathology
REPORT_STATUSES = ("registered", "partial", "preliminary", "final", "amended", "corrected", "appended",
                   "cancelled", "entered-in-error", "unknown")
RELEASED = frozenset({"final", "amended", "corrected", "appended"})  # a report a clinician may act on
CORRECTIONS = frozenset({"amended", "corrected", "appended", "cancelled", "entered-in-error"})
FLAGS = ("H", "L", "HH", "LL", "A", "N")  # HL7 table 0078 as stored (Observation.flag)
FLAG_ALIASES = {"AA": "A", "HU": "HH", "LU": "LL", "POS": "A", "NEG": "N", "W": "A", "S": "A", "R": "A"}
_DICOM_UID = re.compile(r"^(0|[1-9]\d*)(\.(0|[1-9]\d*))+$")

MAX_REPORTS = 200  # reports in one message
MAX_OBSERVATIONS = 1000  # observations in one report
MAX_VALUE = 1e12  # |numeric value|: beyond it a unit or a decimal mark went wrong
FUTURE_TOLERANCE = timedelta(hours=24)  # clocks of sending systems drift; a day more is an error

# (item attribute, column width) as in results.models
_REPORT_LIMITS = {"filler_number": 80, "placer_number": 80, "mark": 20}
_CODE_LIMITS = {"code": 60, "system": 120, "display": 200}
_OBS_LIMITS = {"unit": 40, "ref_text": 80}
_STUDY_LIMITS = {"study_uid": 64, "accession": 64, "modality": 16, "body_site": 64, "description": 200,
                 "dicomweb_base": 300, "pacs_study_id": 80}
_PATIENT_LIMITS = {"mrn": 60, "health_card": 60, "insurance": 60, "phone": 40, "address": 200}


@dataclass(frozen=True)
class Problem:
    """One coded refusal (or, with ``warning``, a remark) naming where it applies."""

    code: str
    message: str
    where: str  # the segment / element path: "OBX 3", "Bundle.entry[4].resource.status"
    field: str = ""  # the HL7 field or FHIR element: "OBX-5", "valueQuantity.value"
    warning: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "where": self.where, "field": self.field}

    @classmethod
    def of(cls, error: HealthGridError, where: str = "") -> Problem:
        d = error.detail or {}
        seq = d.get("sequence")
        place = where or (f"{d.get('segment')} {seq}" if seq and d.get("segment") else str(d.get("segment", "")))
        return cls(error.code, error.message, place, str(d.get("field", "")))


@dataclass(frozen=True)
class Code:
    """A coded concept as stored: LOINC when the sender gave one, else the code as sent;
    ``alternates`` keep the other (system, code) pairs for the local-code lookup."""

    code: str
    system: str | None
    display: str
    alternates: tuple[tuple[str | None, str], ...] = ()

    @property
    def is_loinc(self) -> bool:
        return is_loinc(self.system)

    def all_codes(self) -> tuple[tuple[str | None, str], ...]:
        return ((self.system, self.code), *self.alternates)


def is_loinc(system: str | None) -> bool:
    return (system or "").strip().upper() in LOINC_NAMES


def make_code(pairs: list[tuple[str | None, str, str]]) -> Code | None:
    """A Code from (system, code, display) triplets in the sender's order, LOINC first."""
    given = [(s or None, c.strip(), d or "") for s, c, d in pairs if c and c.strip()]
    if not given:
        return None
    lead = next((p for p in given if is_loinc(p[0])), given[0])
    display = lead[2] or next((d for _, _, d in given if d), "") or lead[1]
    system = LOINC if is_loinc(lead[0]) else lead[0]
    return Code(lead[1], system, display, tuple((s, c) for s, c, _ in given if (s, c) != (lead[0], lead[1])))


@dataclass(frozen=True)
class PatientItem:
    """Demographics and identifiers as the sender knows the patient (the issuing organisation's
    record number is ``mrn``); or ``patient_id``: an existing record the sender named."""

    where: str
    name: str | None = None
    sex: str | None = None  # M | F | U
    birth_date: date | None = None
    resident_id: str | None = None
    mrn: str | None = None
    health_card: str | None = None
    insurance: str | None = None
    phone: str | None = None
    address: str | None = None
    patient_id: int | None = None

    def key(self) -> tuple:
        """Same key, same patient within one run (the index gives the same answer)."""
        return (self.patient_id, self.name, self.sex, self.birth_date, self.resident_id, self.mrn,
                self.health_card, self.insurance, self.phone)


@dataclass(frozen=True)
class ObservationItem:
    where: str
    seq: int
    code: Code
    status: str
    value_num: float | None = None
    value_text: str | None = None
    unit: str | None = None
    ref_low: float | None = None
    ref_high: float | None = None
    ref_text: str | None = None
    flag: str | None = None
    effective_at: datetime | None = None
    observation_id: int | None = None  # an update of this stored observation (FHIR PUT)


@dataclass(frozen=True)
class StudyItem:
    where: str
    study_uid: str
    accession: str | None = None
    modality: str | None = None
    body_site: str | None = None
    description: str | None = None
    started_at: datetime | None = None
    series_count: int | None = None
    instance_count: int | None = None
    dicomweb_base: str | None = None
    pacs_study_id: str | None = None
    study_id: int | None = None  # an update of this stored study (FHIR PUT)


@dataclass(frozen=True)
class ReportItem:
    where: str
    filler_number: str
    category: str
    code: Code
    status: str
    issued_at: datetime | None
    placer_number: str | None = None
    effective_at: datetime | None = None
    conclusion: str | None = None
    mark: str | None = None
    ordering_practitioner: str | None = None  # a licence number, or "#<id>" for Practitioner/<id>
    ordering_org: str | None = None  # an organisation code, or "#<id>" for Organization/<id>
    lab: str | None = None  # the performing laboratory (whose EQA counts): code or "#<id>"
    observations: tuple[ObservationItem, ...] = ()
    studies: tuple[StudyItem, ...] = ()
    report_id: int | None = None  # an update of this stored report (FHIR PUT)


@dataclass(frozen=True)
class MessageItem:
    """One received message as the pipeline sees it. ``issuer``: the sending organisation's
    code (MSH-4) or "#<id>" (a FHIR Organization reference); None: the actor's own."""

    kind: str  # hl7_oru | hl7_adt | fhir_bundle | fhir_resource
    control_id: str
    issuer: str | None
    patient: PatientItem | None
    reports: tuple[ReportItem, ...] = ()
    studies: tuple[StudyItem, ...] = ()  # imaging studies outside a report
    event: str | None = None  # ADT trigger (A01, A04, A08)
    application: str = ""  # MSH-3, or "FHIR"
    warnings: tuple[Problem, ...] = ()
    tag: Any = None  # the adapter's own handle (a batch unit, the entries it covers)


# -- checks without a database -----------------------------------------------------------------

def check_message(msg: MessageItem, *, now: datetime) -> list[Problem]:
    """Every problem of the message's content that needs no database, in message order."""
    problems: list[Problem] = _control_characters(msg)
    if msg.patient is not None:
        problems += check_patient(msg.patient)
    elif msg.reports or msg.studies:
        problems.append(Problem("RES-189", "the message names no patient (PID / subject)", "message", "subject"))
    if len(msg.reports) > MAX_REPORTS:
        problems.append(Problem("RES-180", f"{len(msg.reports)} reports in one message; at most {MAX_REPORTS}",
                                "message"))
    fillers = Counter(r.filler_number for r in msg.reports if r.filler_number)
    for r in msg.reports:
        problems += check_report(r, now=now)
        if fillers[r.filler_number] > 1:
            problems.append(Problem("RES-188", f"report {r.filler_number!r} appears {fillers[r.filler_number]} times"
                                    " in the message", r.where, "filler_number"))
            fillers[r.filler_number] = 0  # said once
    for s in msg.studies:
        problems += check_study(s, now=now)
    return problems


def check_patient(p: PatientItem) -> list[Problem]:
    out: list[Problem] = []
    if p.patient_id is None:
        if not (p.name or "").strip() and not p.resident_id:  # a resident ID alone finds a registered patient
            out.append(Problem("RES-189", "the patient's name is missing (PID-5 / Patient.name)", p.where, "name"))
        if not any((p.resident_id, p.mrn, p.health_card, p.insurance)):
            out.append(Problem("RES-189", "no patient identifier: a resident ID, a record number, a health card or"
                               " an insurance number is needed (PID-3 / Patient.identifier)", p.where, "identifier"))
    out += _too_long(p, _PATIENT_LIMITS, p.where)
    return out


def check_report(r: ReportItem, *, now: datetime) -> list[Problem]:
    out: list[Problem] = []
    if not r.filler_number.strip():
        out.append(Problem("RES-181", "the report has no identifier (OBR-3 filler order number /"
                           " DiagnosticReport.identifier)", r.where, "identifier"))
    if r.status not in REPORT_STATUSES:
        out.append(Problem("RES-182", f"report status {r.status!r} is not one of {', '.join(REPORT_STATUSES)}",
                           r.where, "status"))
    if r.category not in CATEGORIES:
        out.append(Problem("RES-190", f"category {r.category!r} is not one of {', '.join(CATEGORIES)}"
                           " (laboratory, imaging, electrophysiology, pathology)", r.where, "category"))
    if r.issued_at is None and r.status in RELEASED:
        out.append(Problem("RES-184", "a released report needs the time it was issued (OBR-22 /"
                           " DiagnosticReport.issued)", r.where, "issued"))
    out += _not_future(r.issued_at, now, r.where, "issued") + _not_future(r.effective_at, now, r.where, "effective")
    out += _too_long(r, _REPORT_LIMITS, r.where) + _code_too_long(r.code, r.where)
    if len(r.observations) > MAX_OBSERVATIONS:
        out.append(Problem("RES-180", f"{len(r.observations)} observations in one report; at most"
                           f" {MAX_OBSERVATIONS}", r.where, "result"))
    for o in r.observations:
        out += check_observation(o, now=now)
    for s in r.studies:
        out += check_study(s, now=now)
    return out


def check_observation(o: ObservationItem, *, now: datetime) -> list[Problem]:
    out: list[Problem] = []
    if o.status not in STATUSES:
        out.append(Problem("RES-183", f"observation status {o.status!r} is not one of {', '.join(STATUSES)}",
                           o.where, "status"))
    for name, value in (("value", o.value_num), ("referenceRange.low", o.ref_low),
                        ("referenceRange.high", o.ref_high)):
        if value is not None and (not math.isfinite(value) or abs(value) > MAX_VALUE):
            out.append(Problem("RES-186", f"{name} {value!r} is not a finite number of at most {MAX_VALUE:g}",
                               o.where, name))
    if o.flag is not None and o.flag not in FLAGS:
        out.append(Problem("RES-191", f"interpretation {o.flag!r} is not one of {', '.join(FLAGS)} (HL7 table"
                           " 0078)", o.where, "interpretation"))
    out += _not_future(o.effective_at, now, o.where, "effective")
    return out + _too_long(o, _OBS_LIMITS, o.where) + _code_too_long(o.code, o.where)


def check_study(s: StudyItem, *, now: datetime) -> list[Problem]:
    out = _too_long(s, _STUDY_LIMITS, s.where)
    if not _DICOM_UID.match(s.study_uid or "") or len(s.study_uid) > 64:
        out.append(Problem("RES-187", f"study instance UID {s.study_uid!r} is not a DICOM UID (digits and dots,"
                           " at most 64 characters; DICOM PS3.5 §9.1)", s.where, "identifier"))
    for name, count in (("numberOfSeries", s.series_count), ("numberOfInstances", s.instance_count)):
        if count is not None and not 0 <= count <= 1_000_000:
            out.append(Problem("RES-186", f"{name} {count} is out of range", s.where, name))
    return out + _not_future(s.started_at, now, s.where, "started")


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _control_characters(msg: MessageItem) -> list[Problem]:
    """A value with a NUL or another control character (not a line break or tab) is refused
    (RES-185): no database column takes NUL, and none of them is text a clinician should read."""
    out: list[Problem] = []
    items: list[tuple[Any, str, str]] = [(msg.patient, msg.patient.where, "")] if msg.patient else []
    for r in msg.reports:
        items += [(r, r.where, ""), (r.code, r.where, "code.")] + [(s, s.where, "") for s in r.studies]
        items += [x for o in r.observations for x in ((o, o.where, ""), (o.code, o.where, "code."))]
    items += [(s, s.where, "") for s in msg.studies]
    for item, where, prefix in items:
        for f in fields(item):
            value = getattr(item, f.name)
            if isinstance(value, str) and (bad := _CONTROL.search(value)):
                out.append(Problem("RES-185", f"{prefix}{f.name} contains a control character"
                                   f" (0x{ord(bad.group()):02x})", where, prefix + f.name))
    return out


def normal_flag(raw: str | None) -> str | None:
    """OBX-8 / Observation.interpretation as stored: H, L, HH, LL, A, N; None for none or
    for a flag that is not an interpretation of the value (``<``, ``>``, ``B`` better …)."""
    value = (raw or "").strip().upper()
    if not value:
        return None
    value = FLAG_ALIASES.get(value, value)
    return value if value in FLAGS else None


def is_dicom_uid(value: str) -> bool:
    return bool(_DICOM_UID.match(value)) and len(value) <= 64


def _too_long(item: Any, limits: dict[str, int], where: str) -> list[Problem]:
    out = []
    for name, width in limits.items():
        value = getattr(item, name, None)
        if isinstance(value, str) and len(value) > width:
            out.append(Problem("RES-185", f"{name} has {len(value)} characters; at most {width}", where, name))
    return out


def _code_too_long(code: Code, where: str) -> list[Problem]:
    out = []
    for name, width in _CODE_LIMITS.items():
        value = getattr(code, name)
        if isinstance(value, str) and len(value) > width:
            out.append(Problem("RES-185", f"code.{name} has {len(value)} characters; at most {width}", where,
                               f"code.{name}"))
    return out


def _not_future(moment: datetime | None, now: datetime, where: str, name: str) -> list[Problem]:
    if moment is not None and moment > now + FUTURE_TOLERANCE:
        return [Problem("RES-184", f"{name} {moment.isoformat()} is in the future", where, name)]
    return []


@dataclass
class Tally:
    """created / updated / ignored counts by resource type, for the report."""

    created: Counter = field(default_factory=Counter)
    updated: Counter = field(default_factory=Counter)
    ignored: Counter = field(default_factory=Counter)

    def add(self, outcome: str, rtype: str, n: int = 1) -> None:
        getattr(self, outcome)[rtype] += n

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {k: dict(getattr(self, k)) for k in ("created", "updated", "ignored")}
