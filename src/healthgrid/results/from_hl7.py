"""HL7 v2 messages (``hl7v2.OruMessage`` / ``AdtMessage``) as the pipeline's intake items.

ORU^R01: PID → the patient (resident ID from PID-3 type ID/NNCHN, the issuer's record number
from type MR, health card HC, insurance SN/MB); each OBR → a report (OBR-3 filler number,
OBR-4 service, OBR-22 issued — else MSH-7 —, OBR-7 collected, OBR-16 ordering doctor, ORC-21
ordering facility, OBR-24 section → category, OBR-25 status, an OBX-11 ``C`` making the whole
report a correction); each OBX → an observation, except an RP value holding a DICOM study
instance UID, which is an imaging study of the report (PS3.5 UID syntax), and an impression
(LOINC 19005-8, or a text result named 诊断意见/印象/结论), which also fills the report's
conclusion — the physician's conclusion is kept but never recognised (国卫医发〔2022〕6号
Art. 2). ADT^A01/A04/A08: PID → the patient, nothing else.

Category (LAB | RAD | EC | PAT) comes from OBR-24 (HL7 table 0074), else from the catalogue
item the service code maps to, else LAB. Pure: no session.
"""

from __future__ import annotations

import re

from . import hl7v2
from .catalogue import Catalogue
from .intake import (
    Code,
    MessageItem,
    ObservationItem,
    PatientItem,
    Problem,
    ReportItem,
    StudyItem,
    is_dicom_uid,
    make_code,
    normal_flag,
)

# HL7 table 0074 (diagnostic service section ID) → category
SECTIONS = {
    **dict.fromkeys(("AU", "BG", "BLB", "CH", "CUS", "HM", "ICU", "IMM", "LAB", "MB", "MCB", "MYC", "NRS", "OSL",
                     "SR", "TX", "URN", "VR", "PHY", "PHR"), "LAB"),
    **dict.fromkeys(("RAD", "CT", "MR", "NMR", "NMS", "RX", "US", "OUS", "RUS", "VUS", "XRC", "IMG", "DX", "CR",
                     "MG", "PT", "NM"), "RAD"),
    **dict.fromkeys(("EC", "EN", "CTH", "PF", "OT"), "EC"),
    **dict.fromkeys(("SP", "CP", "PAT", "HP"), "PAT"),
}
CATEGORY_OF = {"laboratory": "LAB", "imaging": "RAD", "electrophysiology": "EC", "pathology": "PAT"}
MODALITIES = {"CT": "CT", "MR": "MR", "NMR": "MR", "US": "US", "OUS": "US", "RUS": "US", "VUS": "US", "CUS": "US",
              "RX": "DX", "XRC": "DX", "DX": "DX", "CR": "CR", "MG": "MG", "PT": "PT", "NM": "NM", "NMS": "NM"}
IMPRESSION_CODES = frozenset({"19005-8"})  # LOINC: Radiology Imaging study [Impression] (narrative)
IMPRESSION_WORDS = ("诊断意见", "印象", "结论", "impression", "conclusion")
ID_TYPES = {"MR": "mrn", "PI": "mrn", "HC": "health_card", "SN": "insurance", "MB": "insurance", "MC": "insurance"}
SEXES = {"male": "M", "female": "F"}


def to_intake(msg: hl7v2.OruMessage | hl7v2.AdtMessage, *, catalogue: Catalogue) -> MessageItem:
    header = msg.header
    issuer = header.sending_facility_id or header.sending_facility or None
    warnings = tuple(Problem("RES-214", w, "message", warning=True) for w in msg.warnings)
    patient = patient_item(msg.patient)
    if isinstance(msg, hl7v2.AdtMessage):
        return MessageItem(kind="hl7_adt", control_id=header.control_id, issuer=issuer, patient=patient,
                           event=msg.event, application=header.sending_application, warnings=warnings)
    reports = tuple(report_item(msg, order, n, catalogue=catalogue) for n, order in enumerate(msg.orders, 1))
    return MessageItem(kind="hl7_oru", control_id=header.control_id, issuer=issuer, patient=patient,
                       reports=reports, application=header.sending_application, warnings=warnings)


def patient_item(p: hl7v2.Patient) -> PatientItem:
    found: dict[str, str] = {}
    rid = p.resident_id
    if rid is not None:
        found["resident_id"] = rid.value
    for ident in p.identifiers:
        kind = ID_TYPES.get(ident.type_code.upper())
        if kind and kind not in found:
            found[kind] = ident.value
    if not found and p.identifiers:  # an identifier without a type: the sender's own record number
        found["mrn"] = p.identifiers[0].value
    return PatientItem(where="PID", name=p.name or None, sex=SEXES.get(p.sex, "U"), birth_date=p.birth_date,
                       phone=p.phone or None, address=p.address or None, **found)


def _code(c: hl7v2.Coded) -> Code | None:
    return make_code([(c.system, c.code, c.text), (c.alt_system, c.alt_code, c.alt_text)])


def _category(order: hl7v2.Order, code: Code | None, catalogue: Catalogue) -> str:
    if order.section.upper() in SECTIONS:
        return SECTIONS[order.section.upper()]
    if code is not None and code.is_loinc:
        found = catalogue.by_loinc(code.code)
        if found is not None:
            return CATEGORY_OF.get(found[0].category, "LAB")
    return "LAB"


def report_item(msg: hl7v2.OruMessage, order: hl7v2.Order, n: int, *, catalogue: Catalogue) -> ReportItem:
    where = f"OBR {n}"
    code = _code(order.service) or Code("", None, "")
    observations, studies, impressions = [], [], []
    for i, obs in enumerate(order.observations, 1):
        if obs.value_type == "RP" and isinstance(obs.value, str) and is_dicom_uid(obs.value):
            studies.append(StudyItem(where=f"{where} OBX {obs.set_id or i}", study_uid=obs.value,
                                     accession=order.filler_number or None,
                                     modality=MODALITIES.get(order.section.upper()), description=code.display or None,
                                     started_at=order.observed_at or obs.observed_at))
            continue
        item = observation_item(obs, order, where, i)
        observations.append(item)
        if item.value_text and _is_impression(obs, item.code):
            impressions.append(item.value_text)
    status = order.status
    if status == "final" and any(o.status == "corrected" for o in observations):
        status = "corrected"  # OBX-11 C under OBR-25 F: the LIS corrected a result
    return ReportItem(where=where, filler_number=order.filler_number, category=_category(order, code, catalogue),
                      code=code, status=status, issued_at=order.reported_at or msg.header.sent_at,
                      placer_number=order.placer_number or None, effective_at=order.observed_at,
                      conclusion="\n".join(impressions) or None,
                      ordering_practitioner=order.ordering_provider_id or None,
                      ordering_org=order.ordering_facility or None, lab=_lab(msg, order),
                      observations=tuple(observations), studies=tuple(studies))


def _lab(msg: hl7v2.OruMessage, order: hl7v2.Order) -> str | None:
    producers = [o.producer for o in order.observations if o.producer]
    return producers[0] if producers else None


def _is_impression(obs: hl7v2.Observation, code: Code) -> bool:
    if code.code in IMPRESSION_CODES or any(c in IMPRESSION_CODES for _, c in code.alternates):
        return True
    words = f"{obs.code.text} {obs.code.alt_text}".lower()
    return obs.value_type in ("TX", "FT", "ST") and any(w in words for w in IMPRESSION_WORDS)


def observation_item(obs: hl7v2.Observation, order: hl7v2.Order, where: str, i: int) -> ObservationItem:
    seq = int(obs.set_id) if obs.set_id.isdigit() else i
    code = _code(obs.code) or Code("", None, "")
    value_num = value_text = None
    if isinstance(obs.value, float):
        value_num = obs.value
        if obs.comparator and obs.comparator != "=":
            value_text = f"{obs.comparator}{obs.value:g}"
    elif isinstance(obs.value, hl7v2.Coded):
        value_text = obs.value.text or obs.value.code or None
    elif obs.value is not None:
        value_text = str(obs.value) or None
    flag = next((f for f in map(normal_flag, obs.abnormal_flags) if f), None)
    return ObservationItem(where=f"{where} OBX {obs.set_id or i}", seq=seq, code=code, status=obs.status,
                           value_num=value_num, value_text=value_text, unit=obs.units or None,
                           ref_low=obs.range_low, ref_high=obs.range_high, ref_text=obs.reference_range or None,
                           flag=flag, effective_at=obs.observed_at or order.observed_at)


def split_file(data: bytes) -> list[tuple[bytes, str | None]]:
    """The messages of a file: MLLP-framed (<VT>…<FS><CR>) or one after another, each starting
    with MSH on a new line (CR, LF or CRLF). (payload, None), or (bytes, why) for a part that is
    not a message (bytes outside a frame)."""
    if b"\x0b" in data:
        out: list[tuple[bytes, str | None]] = []
        for part in data.split(b"\x0b"):
            body, sep, rest = part.partition(b"\x1c")
            if not sep:
                if part.strip():
                    out.append((part, "bytes outside an MLLP frame (or a frame without its end 0x1C 0x0D)"))
                continue
            out.append((body, None))
            if rest.strip(b"\r\n \t"):
                out.append((rest, "bytes outside an MLLP frame"))
        return out
    starts = [m.start() for m in re.finditer(rb"(?:^|[\r\n])MSH", data)]
    if not starts:
        return [(data, None)] if data.strip() else []
    bounds = [s + (1 if data[s:s + 1] in (b"\r", b"\n") else 0) for s in starts]
    out = []
    if data[:bounds[0]].strip():
        out.append((data[:bounds[0]], "text before the first MSH segment"))
    for a, b in zip(bounds, bounds[1:] + [len(data)], strict=True):
        out.append((data[a:b].strip(b"\r\n"), None))
    return out
