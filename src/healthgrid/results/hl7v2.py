"""HL7 v2 (2.3–2.5.1) as hospital LIS/HIS in China send it: ORU^R01 results and ADT^A01/A04/A08
demographics parsed into plain dataclasses (the answers, ACK/NAK, and MLLP framing are in
``hl7v2_ack``). The listener and the ingestion pipeline come later; this module does no I/O.

Library: python-hl7 (PyPI ``hl7`` 0.4.5) splits segments, fields, repetitions, components and
sub-components and undoes the escape sequences; ``hl7.mllp`` (asyncio streams) will carry the
MLLP listener on the application's event loop. Chosen over hl7apy 1.3.5, whose strength is
validating against the v2 message structures: (1) speed — on the 7-OBX sample here, parse and
checks take about 2 ms a message against about 35 ms for hl7apy's default (tolerant) parse,
which matters for the million-observation ingestion bench; (2) hl7apy's MLLP server is a
threading ``socketserver``, python-hl7's is asyncio; (3) python-hl7 works on text, so the
charset is ours to decide (MSH-18), and it has no dependencies. The checks needed to answer
with a useful NAK are few and explicit below, each with a coded error naming segment and field.

Character sets: MSH-18 is read from the bytes before decoding ("UNICODE UTF-8", "GB 18030-2000"
…); a message without MSH-18 is read as UTF-8 and, failing that, as GB18030 (GBK is its subset),
with a warning — most Chinese LIS send GBK without declaring it. Segments must be separated by
CR; LF and CRLF (files written on other systems) are read as CR with a warning. The bytes as
received are kept verbatim in ``raw``. Decoding comes before splitting on purpose: a GBK second
byte may be 0x5C (``\\``, the escape character) or 0x7C (``|``), which a byte-level split would
take for a delimiter. Errors: RES-020…RES-030 (mapped to HL7 table 0357 and to
AE/AR in ``hl7v2_map.ERROR_ACK``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, tzinfo

import hl7

from ..errors import HealthGridError
from . import hl7v2_map as m
from .domain import CN_TZ

_SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_GLUED = ("MSH", "EVN", "PID", "PD1", "NK1", "PV1", "PV2", "ORC", "OBR", "OBX", "NTE", "SPM")


@dataclass(frozen=True)
class Coded:
    code: str
    text: str = ""
    system: str = ""
    alt_code: str = ""
    alt_text: str = ""
    alt_system: str = ""


@dataclass(frozen=True)
class Header:
    sending_application: str
    sending_facility: str  # MSH-4 HD.1 (a name, often in Chinese)
    sending_facility_id: str  # MSH-4 HD.2 (e.g. the organisation code)
    receiving_application: str
    receiving_facility: str
    sent_at: datetime | None
    message_code: str
    trigger: str
    control_id: str
    processing_id: str
    version: str
    charset: str | None  # MSH-18 as sent


@dataclass(frozen=True)
class Identifier:
    value: str
    authority: str = ""  # CX-4 assigning authority
    type_code: str = ""  # CX-5 (table 0203): ID / NNCHN resident ID, MR medical record, …


@dataclass(frozen=True)
class Patient:
    identifiers: tuple[Identifier, ...]
    family: str = ""
    given: str = ""
    birth_date: date | None = None
    sex: str = "unknown"
    address: str = ""
    phone: str = ""
    ethnic_group: Coded | None = None

    @property
    def name(self) -> str:
        """Chinese names are written family then given, without a space."""
        cjk = any(ord(ch) > 0x2E80 for ch in self.family + self.given)
        return (self.family + self.given) if cjk else " ".join(p for p in (self.given, self.family) if p)

    @property
    def resident_id(self) -> Identifier | None:
        return next((i for i in self.identifiers if i.type_code.upper() in m.RESIDENT_ID_TYPES), None)


@dataclass(frozen=True)
class Visit:
    patient_class: str = ""  # PV1-2: I inpatient, O outpatient, E emergency
    location: str = ""
    attending: str = ""
    visit_number: str = ""
    admitted_at: datetime | None = None


@dataclass(frozen=True)
class Observation:
    set_id: str
    value_type: str
    code: Coded
    sub_id: str
    value: float | str | Coded | None
    comparator: str | None
    units: str
    reference_range: str
    range_low: float | None
    range_high: float | None
    abnormal_flags: tuple[str, ...]
    status_code: str
    status: str
    observed_at: datetime | None
    producer: str  # OBX-15, or OBX-23 (2.5.1 performing organisation)

    @property
    def interpretation(self) -> tuple[str, ...]:
        return tuple(m.ABNORMAL_FLAGS.get(f, f) for f in self.abnormal_flags)


@dataclass(frozen=True)
class Order:
    placer_number: str
    filler_number: str
    service: Coded
    observed_at: datetime | None
    reported_at: datetime | None
    status_code: str
    status: str
    section: str  # OBR-24 diagnostic service section: CH, HM, CT, RAD, US, EC …
    ordering_provider: str
    observations: tuple[Observation, ...] = ()
    notes: tuple[str, ...] = ()
    ordering_provider_id: str = ""  # OBR-16 XCN.1 (the ordering doctor's ID, e.g. the licence number)
    ordering_facility: str = ""  # ORC-21 XON.10 (organisation identifier), else XON.3, else XON.1 (name)


@dataclass(frozen=True)
class OruMessage:
    header: Header
    patient: Patient
    visit: Visit | None
    orders: tuple[Order, ...]
    raw: bytes
    codec: str
    warnings: tuple[str, ...] = ()

    def lab_for(self, obs: Observation) -> str:
        """Who produced a result: OBX-15/OBX-23, else the sending facility (MSH-4)."""
        return obs.producer or self.header.sending_facility_id or self.header.sending_facility


@dataclass(frozen=True)
class AdtMessage:
    header: Header
    event: str
    patient: Patient
    visit: Visit | None
    raw: bytes
    codec: str
    warnings: tuple[str, ...] = ()


# -- decoding and structure ------------------------------------------------------------------

def _structure(text: str) -> tuple[str, list[str]]:
    """The text with CR separators, checked segment by segment (RES-020, RES-021)."""
    warnings = []
    if text.startswith("\x0b"):
        raise m.bad("RES-030", "the message is still MLLP-framed (starts with 0x0B): unframe it first", "MSH")
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
        warnings.append("segments were separated by LF or CRLF, read as CR")
    text = text.strip()
    if not text.startswith("MSH"):
        raise m.bad("RES-020", f"no MSH segment: a message starts with MSH, this one with {text[:3]!r}", "MSH")
    sep, enc = text[3:4], text[4:8]
    if not sep or sep.isalnum() or sep.isspace() or len(set(enc)) != 4 or sep in enc or any(
            c.isalnum() or c.isspace() for c in enc):
        raise m.bad("RES-021", f"MSH-1/MSH-2: {text[3:8]!r} are not valid delimiters (e.g. |^~\\&)", "MSH-2")
    for n, seg in enumerate(s for s in text.split("\r") if s.strip()):
        if not _SEGMENT_ID.match(seg[:3]) or (len(seg) > 3 and seg[3] != sep):
            raise m.bad("RES-021", f"segment {n + 1} starts with {seg[:8]!r}: expected a segment ID then"
                        f" {sep!r}; segments are separated by CR (0x0D)", _sid(seg), position=n + 1)
        glued = re.search(rf"[\t\v\f \x00-\x08]((?:{'|'.join(_GLUED)}){re.escape(sep)})", seg[4:])
        if glued:
            raise m.bad("RES-021", f"segment {n + 1} ({seg[:3]}) contains {glued.group(1)!r} after a"
                        f" {glued.group(0)[0]!r}: segments must be separated by CR (0x0D)", _sid(seg),
                        position=n + 1)
    return text, warnings


def _sid(seg: str) -> str:
    return seg[:3] if _SEGMENT_ID.match(seg[:3]) else "MSH"


# -- field access through python-hl7 -----------------------------------------------------------

def _get(seg: hl7.Segment, field: int, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
    try:
        return seg.extract_field(1, field, rep, comp, sub).strip()
    except (IndexError, KeyError):
        return ""


def _reps(seg: hl7.Segment, field: int) -> int:
    if field >= len(seg):
        return 0
    f = seg(field)
    return len(f) if any(isinstance(x, hl7.Repetition) for x in f) else (1 if str(f) else 0)


def _components(seg: hl7.Segment, field: int, rep: int = 1) -> list[str]:
    r = seg(field)(rep) if _reps(seg, field) >= rep else ""
    n = len(r) if isinstance(r, hl7.Repetition) else 1
    return [_get(seg, field, rep, c) for c in range(1, n + 1)]


def _coded(seg: hl7.Segment, field: int, rep: int = 1) -> Coded:
    c = _components(seg, field, rep) + [""] * 6
    return Coded(code=c[0], text=c[1], system=c[2], alt_code=c[3], alt_text=c[4], alt_system=c[5])


def _segments(msg: hl7.Message, sid: str) -> list[hl7.Segment]:
    return [s for s in msg if str(s[0]) == sid]


def _header(msg: hl7.Message, tz: tzinfo) -> Header:
    msh = msg.segment("MSH")
    code, trigger = _get(msh, 9, 1, 1), _get(msh, 9, 1, 2)
    if not code:
        raise m.bad("RES-025", "MSH-9: the message type is missing", "MSH-9", hl7_error="101")
    if code not in m.MESSAGE_TYPES or trigger not in m.MESSAGE_TYPES[code]:
        kinds = ", ".join(f"{k}^{t}" for k, ts in m.MESSAGE_TYPES.items() for t in ts)
        raise m.bad("RES-023", f"MSH-9: {code}^{trigger} is not accepted here; expected one of {kinds}", "MSH-9",
                    hl7_error="201" if code in m.MESSAGE_TYPES else "200")
    control_id, version = _get(msh, 10), _get(msh, 12)
    if not control_id:
        raise m.bad("RES-025", "MSH-10: the message control ID is missing", "MSH-10")
    if version not in m.SUPPORTED_VERSIONS:
        raise m.bad("RES-029", f"MSH-12: version {version!r} is not supported; expected one of"
                    f" {', '.join(m.SUPPORTED_VERSIONS)}", "MSH-12")
    if not _get(msh, 7):
        raise m.bad("RES-025", "MSH-7: the date/time of the message is missing", "MSH-7")
    return Header(sending_application=_get(msh, 3), sending_facility=_get(msh, 4),
                  sending_facility_id=_get(msh, 4, 1, 2), receiving_application=_get(msh, 5),
                  receiving_facility=_get(msh, 6), sent_at=m.parse_ts(_get(msh, 7), "MSH-7", tz=tz),
                  message_code=code, trigger=trigger, control_id=control_id, processing_id=_get(msh, 11),
                  version=version, charset=_get(msh, 18) or None)


def _patient(msg: hl7.Message, warnings: list[str]) -> Patient:
    pids = _segments(msg, "PID")
    if not pids:
        raise m.bad("RES-024", "PID: the patient identification segment is missing", "PID")
    pid = pids[0]
    ids = tuple(Identifier(value=_get(pid, 3, r, 1), authority=_get(pid, 3, r, 4) or _get(pid, 3, r, 4, 2),
                           type_code=_get(pid, 3, r, 5)) for r in range(1, _reps(pid, 3) + 1))
    ids = tuple(i for i in ids if i.value)
    if not ids:
        raise m.bad("RES-025", "PID-3: no patient identifier (resident ID or record number) is given", "PID-3")
    sex_code = _get(pid, 8).upper()
    if sex_code and sex_code not in m.SEX:
        warnings.append(f"PID-8: unknown sex {sex_code!r}, read as unknown")
    eth = _coded(pid, 22) if _get(pid, 22) else None
    street = _get(pid, 11, 1, 1)  # XAD: province (4) and city (3) unless the street line has them already
    address = "".join(p for p in (_get(pid, 11, 1, 4), _get(pid, 11, 1, 3)) if p not in street) + street
    return Patient(identifiers=ids, family=_get(pid, 5, 1, 1), given=_get(pid, 5, 1, 2),
                   birth_date=m.parse_date(_get(pid, 7), "PID-7"), sex=m.SEX.get(sex_code, "unknown"), address=address,
                   phone=_get(pid, 13, 1, 1) or _get(pid, 13, 1, 12), ethnic_group=eth)


def _visit(msg: hl7.Message, tz: tzinfo) -> Visit | None:
    pv1s = _segments(msg, "PV1")
    if not pv1s:
        return None
    pv1 = pv1s[0]
    where = "/".join(p for p in (_get(pv1, 3, 1, 4), _get(pv1, 3, 1, 1), _get(pv1, 3, 1, 2), _get(pv1, 3, 1, 3)) if p)
    doctor = " ".join(p for p in (_get(pv1, 7, 1, 1), _get(pv1, 7, 1, 2) + _get(pv1, 7, 1, 3)) if p)
    return Visit(patient_class=_get(pv1, 2), location=where, attending=doctor, visit_number=_get(pv1, 19),
                 admitted_at=m.parse_ts(_get(pv1, 44), "PV1-44", tz=tz))


# -- ORU observations -------------------------------------------------------------------------

def _value(msg: hl7.Message, obx: hl7.Segment, n: int, vtype: str, warnings: list[str]):
    """(value, comparator) of OBX-5 for its value type."""
    field = "OBX-5"
    if vtype == "NM":
        number, comparator, notes = m.parse_nm(_get(obx, 5), field, f"OBX {n}: OBX-5", sequence=n)
        warnings.extend(f"OBX {n}: {w}" for w in notes)
        return number, comparator
    if vtype == "SN":
        number, comparator = m.parse_sn(_components(obx, 5), field, f"OBX {n}: OBX-5", sequence=n)
        return number, comparator
    if vtype in ("CE", "CWE", "CF"):
        return _coded(obx, 5), None
    if vtype in ("TX", "FT"):
        return "\n".join(_get(obx, 5, r) for r in range(1, _reps(obx, 5) + 1)), None
    if vtype == "RP":  # reference pointer: e.g. a DICOM study instance UID ^ application ^ type
        return _get(obx, 5, 1, 1), None
    return msg.unescape(str(obx(5))).strip(), None  # ST, DT, TS, ED: the text as sent


def _observation(msg: hl7.Message, obx: hl7.Segment, n: int, tz: tzinfo, warnings: list[str]) -> Observation:
    vtype, status_code = _get(obx, 2).upper(), _get(obx, 11).upper()
    if not _get(obx, 3):
        raise m.bad("RES-025", f"OBX {n}: OBX-3 (what was observed) is missing", "OBX-3", sequence=n)
    if vtype not in m.VALUE_TYPES:
        raise m.bad("RES-028", f"OBX {n}: OBX-2 value type {vtype!r} is not one of {', '.join(m.VALUE_TYPES)}",
                    "OBX-2", sequence=n)
    if status_code not in m.OBX_STATUS:
        raise m.bad("RES-028" if status_code else "RES-025", f"OBX {n}: OBX-11 result status {status_code!r}"
                    f" is not one of {', '.join(m.OBX_STATUS)}", "OBX-11", sequence=n)
    empty = not _get(obx, 5) and _reps(obx, 5) <= 1
    if empty and m.OBX_STATUS[status_code] in ("final", "corrected"):
        raise m.bad("RES-025", f"OBX {n}: OBX-5 is empty in a final result", "OBX-5", sequence=n)
    value, comparator = (None, None) if empty else _value(msg, obx, n, vtype, warnings)
    ref = msg.unescape(str(obx(7))).strip() if len(obx) > 7 else ""
    low, high = m.parse_range(ref)
    flags = tuple(f for f in (_get(obx, 8, r) for r in range(1, _reps(obx, 8) + 1)) if f)
    units = _get(obx, 6, 1, 1) or _get(obx, 6, 1, 2)
    producer = _get(obx, 15, 1, 1) or _get(obx, 23, 1, 10) or _get(obx, 23, 1, 1)
    return Observation(set_id=_get(obx, 1), value_type=vtype, code=_coded(obx, 3), sub_id=_get(obx, 4), value=value,
                       comparator=comparator, units=units, reference_range=ref, range_low=low, range_high=high,
                       abnormal_flags=flags, status_code=status_code, status=m.OBX_STATUS[status_code],
                       observed_at=m.parse_ts(_get(obx, 14), "OBX-14", tz=tz, sequence=n), producer=producer)


def _order(obr: hl7.Segment, n: int, tz: tzinfo, orc: hl7.Segment | None = None) -> Order:
    if not _get(obr, 4):
        raise m.bad("RES-025", f"OBR {n}: OBR-4 (the ordered service) is missing", "OBR-4", sequence=n)
    code = _get(obr, 25).upper()
    provider = " ".join(p for p in (_get(obr, 16, 1, 1), _get(obr, 16, 1, 2) + _get(obr, 16, 1, 3)) if p)
    return Order(placer_number=_get(obr, 2), filler_number=_get(obr, 3), service=_coded(obr, 4),
                 observed_at=m.parse_ts(_get(obr, 7), "OBR-7", tz=tz, sequence=n),
                 reported_at=m.parse_ts(_get(obr, 22), "OBR-22", tz=tz, sequence=n), status_code=code,
                 status=m.OBR_STATUS.get(code, "unknown"), section=_get(obr, 24), ordering_provider=provider,
                 ordering_provider_id=_get(obr, 16, 1, 1),
                 ordering_facility=(_get(orc, 21, 1, 10) or _get(orc, 21, 1, 3) or _get(orc, 21, 1, 1)) if orc else "")


def _orders(msg: hl7.Message, tz: tzinfo, warnings: list[str]) -> tuple[Order, ...]:
    groups: list[tuple[Order, list[Observation], list[str]]] = []
    obr_n = obx_n = 0
    orc = None  # the common order segment before an OBR (ORC-21: who ordered)
    for seg in msg:
        sid = str(seg[0])
        if sid == "ORC":
            orc = seg
        elif sid == "OBR":
            obr_n += 1
            groups.append((_order(seg, obr_n, tz, orc), [], []))
            orc = None
        elif sid == "OBX":
            obx_n += 1
            if not groups:
                raise m.bad("RES-024", f"OBX {obx_n} comes before any OBR: results belong to an order",
                            "OBX", sequence=obx_n)
            groups[-1][1].append(_observation(msg, seg, obx_n, tz, warnings))
        elif sid == "NTE" and groups:
            groups[-1][2].append(_get(seg, 3))
    if not groups:
        raise m.bad("RES-024", "OBR: an ORU^R01 needs at least one order (OBR) with its results", "OBR")
    return tuple(replace(o, observations=tuple(obs), notes=tuple(notes)) for o, obs, notes in groups)


# -- entry points -------------------------------------------------------------------------------

def parse_message(data: bytes | str, *, charset: str | None = None, tz: tzinfo = CN_TZ) -> OruMessage | AdtMessage:
    """Parse an ORU^R01 or ADT^A01/A04/A08; RES-020…RES-030 name the segment and field."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8")
    try:
        text, codec, warnings = m.decode(data, charset)
    except HealthGridError:
        # A broken structure (segments glued with a space, say) can look like a bad MSH-18:
        # report the structure. Latin-1 maps bytes one to one and the delimiters are ASCII.
        _structure(raw.decode("latin-1"))
        raise
    text, more = _structure(text)
    warnings += more
    try:
        msg = hl7.parse(text)
    except (hl7.HL7Exception, ValueError, IndexError, AssertionError) as exc:
        raise m.bad("RES-021", f"the message cannot be split into segments and fields ({exc})", "MSH") from exc
    header = _header(msg, tz)
    patient = _patient(msg, warnings)
    visit = _visit(msg, tz)
    if header.message_code == "ADT":
        return AdtMessage(header=header, event=header.trigger, patient=patient, visit=visit, raw=raw, codec=codec,
                          warnings=tuple(warnings))
    orders = _orders(msg, tz, warnings)
    return OruMessage(header=header, patient=patient, visit=visit, orders=orders, raw=raw, codec=codec,
                      warnings=tuple(warnings))
