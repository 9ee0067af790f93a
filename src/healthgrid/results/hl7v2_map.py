"""HL7 v2 tables and value converters used by ``hl7v2``: versions, message types, character sets
(MSH-18) and the decoding of a message's bytes, result statuses (OBX-11, OBR-25), abnormal flags
(OBX-8), sex (PID-8), value types (OBX-2), the error codes of ACK/NAK (HL7 table 0357), and the
parsing of timestamps, numbers and reference ranges as Chinese LIS write them. Pure: no I/O.

Tables: HL7 v2.5.1 ch. 2 (0008 acknowledgment codes, 0211 character sets, 0357 error codes),
ch. 3 (0001 sex), ch. 7 (0078 abnormal flags, 0085 observation result status, 0123 result
status, 0125 value types). Chinese practice seen in hospital LIS interfaces [M]: the resident ID
in PID-3 with type ``ID`` (or HL7's ``NNCHN``), Chinese sex words in PID-8, ranges written
``3.5～5.3`` with a full-width tilde, GB18030/GBK without MSH-18, local time without an offset.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any

from ..errors import Invalid
from .domain import CN_TZ

SUPPORTED_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1")
MESSAGE_TYPES = {"ORU": ("R01",), "ADT": ("A01", "A04", "A08")}

# MSH-18 (table 0211, plus spellings seen in the field) → Python codec. GB18030 decodes GBK and
# GB2312 too (it is their superset), so every GB name maps to it.
CHARSETS = {
    "ASCII": "ascii", "8859/1": "latin-1", "UNICODE UTF-8": "utf-8", "UTF-8": "utf-8", "UTF8": "utf-8",
    "GB 18030-2000": "gb18030", "GB18030": "gb18030", "GBK": "gb18030", "GB2312": "gb18030", "BIG-5": "big5",
}
CHARSET_NAMES = {"utf-8": "UNICODE UTF-8", "gb18030": "GB 18030-2000", "ascii": "ASCII", "latin-1": "8859/1",
                 "big5": "BIG-5"}

# OBX-11 (table 0085) → FHIR ObservationStatus
OBX_STATUS = {"F": "final", "C": "corrected", "U": "final", "P": "preliminary", "S": "preliminary",
              "R": "registered", "I": "registered", "O": "registered", "X": "cancelled", "N": "cancelled",
              "D": "entered-in-error", "W": "entered-in-error"}
# OBR-25 (table 0123) → FHIR DiagnosticReport status
OBR_STATUS = {"F": "final", "C": "corrected", "P": "preliminary", "A": "partial", "R": "registered",
              "I": "registered", "O": "registered", "S": "registered", "X": "cancelled", "Y": "unknown", "Z": "unknown"}
# OBX-8 (table 0078), the flags that matter on a timeline
ABNORMAL_FLAGS = {"L": "low", "H": "high", "LL": "critical_low", "HH": "critical_high", "<": "below_limit",
                  ">": "above_limit", "N": "normal", "A": "abnormal", "AA": "critical", "POS": "abnormal",
                  "NEG": "normal"}
SEX = {"M": "male", "F": "female", "O": "other", "U": "unknown", "A": "other", "N": "unknown",
       "男": "male", "女": "female", "1": "male", "2": "female"}  # GB/T 2261.1: 1 male, 2 female
VALUE_TYPES = ("NM", "SN", "ST", "TX", "FT", "CE", "CWE", "CF", "DT", "TM", "TS", "DTM", "ED", "RP")
RESIDENT_ID_TYPES = ("NNCHN", "ID")  # table 0203 national person identifier; "ID" as LIS send it

# HL7 table 0357 and the acknowledgment each of our codes earns: AR rejects the message as a
# whole (it cannot be processed as sent), AE reports an error in its content.
HL7_ERRORS = {"100": "Segment sequence error", "101": "Required field missing", "102": "Data type error",
              "103": "Table value not found", "200": "Unsupported message type", "201": "Unsupported event code",
              "203": "Unsupported version id", "207": "Application internal error"}
ERROR_ACK = {"RES-020": ("100", "AR"), "RES-021": ("100", "AR"), "RES-022": ("102", "AR"),
             "RES-023": ("200", "AR"), "RES-024": ("100", "AE"), "RES-025": ("101", "AE"),
             "RES-026": ("102", "AE"), "RES-027": ("102", "AE"), "RES-028": ("103", "AE"),
             "RES-029": ("203", "AR"), "RES-030": ("100", "AR")}

_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?$")
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_NM = re.compile(rf"^\s*({_NUMBER})\s*$")
_COMPARED = re.compile(rf"^\s*(<=|>=|<|>|≤|≥)\s*({_NUMBER})\s*$")
_INTERVAL = re.compile(rf"^\s*({_NUMBER})\s*(?:-|–|—|~|～|至)\s*({_NUMBER})\s*$")
_COMPARATORS = {"≤": "<=", "≥": ">="}


def bad(code: str, message: str, field: str, **detail: Any) -> Invalid:
    """A coded error naming the HL7 field (``OBX-5``) and, for repeated segments, which one."""
    return Invalid(code, message, {"field": field, "segment": field.split("-")[0], **detail})


def parse_ts(value: str, field: str, *, tz: tzinfo = CN_TZ, **where: Any) -> datetime | None:
    """An HL7 TS/DTM (``YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]``) as an aware date-time; without an
    offset it is local time in ``tz`` (Chinese LIS send China time). RES-027 when malformed."""
    value = value.strip()
    if not value:
        return None
    m = _TS.match(value)
    if m is None:
        raise bad("RES-027", f"{field}: {value!r} is not an HL7 date-time (YYYYMMDDHHMMSS[+ZZZZ])", field, **where)
    y, mo, d, h, mi, s, frac, off = m.groups()
    zone = tz
    if off:
        sign = -1 if off[0] == "-" else 1
        zone = timezone(sign * timedelta(hours=int(off[1:3]), minutes=int(off[3:5])))
    try:
        return datetime(int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0), int(s or 0),
                        int((frac or "0").ljust(6, "0")[:6]), tzinfo=zone)
    except ValueError as exc:
        raise bad("RES-027", f"{field}: {value!r} is not a valid date-time ({exc})", field, **where) from exc


def parse_date(value: str, field: str) -> date | None:
    moment = parse_ts(value, field)
    return None if moment is None else moment.date()


def parse_nm(value: str, field: str, label: str = "", **where: Any) -> tuple[float, str | None, list[str]]:
    """An NM value: (number, comparator, warnings). A comparator ("<0.5") is not NM but LIS send
    it that way; it is read as SN with a warning. Anything else is RES-026."""
    m = _NM.match(value)
    if m:
        return float(m.group(1)), None, []
    m = _COMPARED.match(value)
    if m:
        comparator = _COMPARATORS.get(m.group(1), m.group(1))
        return float(m.group(2)), comparator, [f"{field}: {value!r} has a comparator, which NM does not allow;"
                                               " read as SN"]
    raise bad("RES-026", f"{label or field}: {value!r} is not a number (OBX-2 is NM)", field, **where)


def parse_sn(components: list[str], field: str, label: str = "", **where: Any) -> tuple[float, str | None]:
    """SN: comparator^num1[^separator^num2]; a range (1^-^5) keeps the first number."""
    comparator = (components[0] if components else "").strip() or None
    number = components[1] if len(components) > 1 else ""
    m = _NM.match(number)
    if m is None or comparator not in (None, "<", ">", "<=", ">=", "=", "<>"):
        raise bad("RES-026", f"{label or field}: {'^'.join(components)!r} is not a structured numeric (SN)", field,
                  **where)
    return float(m.group(1)), comparator


def parse_range(text: str) -> tuple[float | None, float | None]:
    """Low and high of a reference range as written: ``3.5-5.3``, ``3.5～5.3``, ``<5.2``, ``>=1.0``;
    (None, None) for a qualitative range such as ``阴性``."""
    m = _INTERVAL.match(text)
    if m:
        return float(m.group(1)), float(m.group(2))
    m = _COMPARED.match(text)
    if m:
        op = _COMPARATORS.get(m.group(1), m.group(1))
        return (None, float(m.group(2))) if op.startswith("<") else (float(m.group(2)), None)
    return None, None


def format_ts(moment: datetime) -> str:
    """An aware date-time as HL7 DTM in China time with its offset."""
    return moment.astimezone(CN_TZ).strftime("%Y%m%d%H%M%S+0800")


def escape(text: str, separators: str = "|^~\\&") -> str:
    """Escape the delimiters in a field value (v2.5 §2.7.4): \\F\\ \\S\\ \\R\\ \\T\\ \\E\\; line
    breaks become \\.br\\."""
    field, component, repetition, esc, sub = separators
    out = text.replace(esc, "\x00E")
    for char, name in ((field, "F"), (component, "S"), (repetition, "R"), (sub, "T")):
        out = out.replace(char, f"\x00{name}")
    out = out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\x00.br")
    return re.sub(r"\x00(\.br|[EFSRT])", lambda m: f"{esc}{m.group(1)}{esc}", out)


def decode(data: bytes | str, charset: str | None = None) -> tuple[str, str, list[str]]:
    """(text, codec, warnings). ``charset`` (a Python codec) overrides MSH-18, e.g. a per-sender
    setting for a LIS that declares one charset and sends another."""
    if isinstance(data, str):
        return data, "utf-8", []
    warnings: list[str] = []
    if data.startswith(b"\xef\xbb\xbf"):
        data, warnings = data[3:], ["a UTF-8 byte-order mark before MSH was ignored"]
    declared = _msh18(data)
    codec = charset or (CHARSETS.get(declared.upper()) if declared else None)
    if declared and codec is None:
        raise bad("RES-022", f"MSH-18: unknown character set {declared!r}; expected one of"
                    f" {', '.join(CHARSETS)}", "MSH-18")
    if codec is not None:
        try:
            return data.decode(codec), codec, warnings
        except UnicodeDecodeError as exc:
            raise bad("RES-022", f"MSH-18: the message is not {declared or codec}: byte 0x{data[exc.start]:02x}"
                        f" at offset {exc.start} cannot be decoded", "MSH-18") from exc
    try:
        return data.decode("utf-8"), "utf-8", warnings
    except UnicodeDecodeError:
        warnings.append("MSH-18 is empty and the message is not UTF-8: read as GB18030 (GBK)")
    try:
        return data.decode("gb18030"), "gb18030", warnings
    except UnicodeDecodeError as exc:
        raise bad("RES-022", f"MSH-18 is empty and the message is neither UTF-8 nor GB18030 (byte at offset"
                    f" {exc.start})", "MSH-18") from exc


def _msh18(data: bytes) -> str | None:
    line = re.split(rb"[\r\n]", data, maxsplit=1)[0]
    if not line.startswith(b"MSH") or len(line) < 8:
        return None
    fields = line.split(line[3:4])
    if len(fields) < 18:
        return None
    first = fields[17].decode("ascii", errors="replace").split(chr(line[5]))[0]
    return first.split(chr(line[4]))[0].strip() or None
