"""The HL7 v2 answer to an ingested message, from its ingestion report: an original-mode ACK
(AA) once the message is stored — acknowledged means committed: the listener and the API build
it only after ``ingest`` returned — or a NAK naming the first problem in MSA-3 and locating it
in ERR (segment, sequence, field; HL7 table 0357 code). AR for a message that cannot be
processed as sent (unreadable, too large: ``hl7v2_map.ERROR_ACK``), AE for an error in its
content (a missing report number, an unknown sending organisation, a refused sender …).

``localise`` names the HL7 field of a problem found on the intake items ("OBR 1 OBX 3" +
"status" → OBX-11), so reports of HL7 messages speak HL7. Pure: the clock and the control ID
are passed in.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ..errors import HealthGridError, Invalid
from . import hl7v2_ack
from . import hl7v2_map as m
from .intake import Problem

FIELDS = {
    "PID": {"name": "PID-5", "identifier": "PID-3", "mrn": "PID-3", "health_card": "PID-3", "insurance": "PID-3",
            "phone": "PID-13", "address": "PID-11", "gender": "PID-8", "birthDate": "PID-7", "subject": "PID-3",
            "identifier (resident ID)": "PID-3", "identifier (record number)": "PID-3"},
    "OBR": {"identifier": "OBR-3", "filler_number": "OBR-3", "placer_number": "OBR-2", "status": "OBR-25",
            "issued": "OBR-22", "effective": "OBR-7", "category": "OBR-24", "code.code": "OBR-4",
            "code.display": "OBR-4", "code.system": "OBR-4", "subject": "PID-3", "result": "OBX",
            "ordering doctor": "OBR-16", "ordering organisation": "ORC-21", "performing laboratory": "OBX-15"},
    "OBX": {"status": "OBX-11", "value": "OBX-5", "value_text": "OBX-5", "referenceRange.low": "OBX-7",
            "referenceRange.high": "OBX-7",
            "ref_text": "OBX-7", "interpretation": "OBX-8", "code.code": "OBX-3", "code.display": "OBX-3",
            "code.system": "OBX-3", "unit": "OBX-6", "effective": "OBX-14", "identifier": "OBX-5",
            "started": "OBR-7"},
}
# our codes → (HL7 table 0357 error code, acknowledgment code); the parser's are in hl7v2_map
ERRORS = {"RES-181": ("101", "AE"), "RES-189": ("101", "AE"), "RES-182": ("103", "AE"), "RES-183": ("103", "AE"),
          "RES-190": ("103", "AE"), "RES-191": ("103", "AE"), "RES-192": ("103", "AE"), "RES-184": ("102", "AE"),
          "RES-186": ("102", "AE"), "RES-187": ("102", "AE"), "RES-185": ("102", "AE"), "RES-210": ("100", "AR")}
_WHERE = re.compile(r"(PID|OBR|OBX)(?: (\d+))?$")


def localise(p: Problem) -> Problem:
    """The problem with its field named as HL7 does (OBX-11) and its where as segment + sequence."""
    found = _WHERE.search(p.where)
    if found is None or (p.field and re.match(r"^[A-Z]{3}-\d+$", p.field)):
        return p
    seg = found.group(1)
    field = FIELDS[seg].get(p.field, p.field)
    return Problem(p.code, p.message, p.where, field or seg, p.warning)


def error_of(problem: dict[str, Any]) -> HealthGridError:
    """A coded error ``hl7v2_ack.build_nak`` can place: segment, sequence and field."""
    where, field = str(problem.get("where", "")), str(problem.get("field", ""))
    found = _WHERE.search(where)
    segment = field.split("-")[0] if re.match(r"^[A-Z]{3}-\d+$", field) else (found.group(1) if found else "MSH")
    sequence = int(found.group(2)) if found and found.group(2) and found.group(1) == segment else 1
    hl7_error, _ = ERRORS.get(problem["code"], m.ERROR_ACK.get(problem["code"], ("207", "AE")))
    detail = {"field": field if re.match(r"^[A-Z]{3}-\d+$", field) else segment, "segment": segment,
              "sequence": sequence, "hl7_error": hl7_error}
    return Invalid(problem["code"], problem["message"], detail)


def ack_code(code: str) -> str:
    return ERRORS.get(code, m.ERROR_ACK.get(code, ("207", "AE")))[1]


def answer(payload: bytes, report: dict[str, Any], *, now: datetime, control_id: str) -> str:
    """ACK (AA) for a stored message (accepted, or a duplicate of a stored one), else the NAK."""
    header = hl7v2_ack.read_header(payload)
    if report["status"] in ("accepted", "duplicate"):
        if header is None:  # cannot happen for a parsed message; answer as if it had no MSH
            return hl7v2_ack.build_nak(None, Invalid("RES-020", "no MSH"), now=now, control_id=control_id)
        return hl7v2_ack.build_ack(header, now=now, control_id=control_id)
    first = report["errors"][0] if report["errors"] else {"code": "RES-199", "message": "refused", "where": ""}
    error = error_of(first)
    return hl7v2_ack.build_nak(header if header is not None else payload, error, now=now, control_id=control_id,
                               ack_code=ack_code(first["code"]))


def internal_nak(payload: bytes, *, now: datetime, control_id: str) -> str:
    """AE 207 when the message could not be stored (the sender keeps it and sends it again)."""
    error = Invalid("RES-199", "the message could not be stored now; send it again",
                    {"field": "MSH", "segment": "MSH", "hl7_error": "207"})
    return hl7v2_ack.build_nak(payload, error, now=now, control_id=control_id, ack_code="AE")


def codec_of(payload: bytes) -> str:
    """The character set to answer in: the message's own (MSH-18, or as detected)."""
    try:
        return m.decode(payload)[1]
    except HealthGridError:
        return "utf-8"
