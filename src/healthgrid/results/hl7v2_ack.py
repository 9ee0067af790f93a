"""Answers to HL7 v2 messages and their transport framing: the original-mode ACK (AA), the NAK
(AE/AR with MSA-3 naming the problem and an ERR segment locating it) and MLLP frames
(<VT> message <FS><CR>, HL7 v2 Minimal Lower Layer Protocol). Pure: the clock and the control
ID are passed in. The listener (``hl7.mllp`` asyncio streams) comes later.

AR rejects a message that cannot be processed as sent (no MSH, bad delimiters, unknown charset,
message type or version); AE reports an error in its content (missing PID-3, a non-numeric NM
value …) — ``hl7v2_map.ERROR_ACK``. The error code of ERR is from HL7 table 0357. ERR-1 is the
v2.3/2.4 layout; from v2.5 ERR-2 (location), ERR-3 (code), ERR-4 (severity) and ERR-8 (text).
python-hl7's ``Message.create_ack`` stamps the clock itself and cannot add ERR, so the answer is
written here; the tests parse it back with python-hl7.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from hl7.mllp.streams import CARRIAGE_RETURN, END_BLOCK, START_BLOCK

from ..errors import HealthGridError, Invalid
from . import hl7v2_map as m
from .hl7v2 import AdtMessage, Header, OruMessage


def read_header(data: bytes | str) -> Header | None:
    """MSH as far as it can be read, for answering a message that failed to parse."""
    try:
        text, _, _ = m.decode(data)
    except HealthGridError:  # a bad MSH-18 (or what looks like one): UTF-8, else GB18030, lossy
        assert isinstance(data, bytes)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("gb18030", errors="replace")
    line = re.split(r"[\r\n]", text.lstrip(), maxsplit=1)[0]
    if not line.startswith("MSH") or len(line) < 8:
        return None
    f = line.split(line[3])
    f = [""] + f + [""] * 20  # MSH-n is f[n]: MSH-1 is the separator itself
    part = lambda s, i: s.split(line[4])[i] if len(s.split(line[4])) > i else ""  # noqa: E731
    return Header(sending_application=part(f[3], 0), sending_facility=part(f[4], 0), sending_facility_id=part(f[4], 1),
                  receiving_application=part(f[5], 0), receiving_facility=part(f[6], 0), sent_at=None,
                  message_code=part(f[9], 0), trigger=part(f[9], 1), control_id=f[10], processing_id=part(f[11], 0),
                  version=part(f[12], 0), charset=part(f[18], 0) or None)


def build_ack(source: Header | OruMessage | AdtMessage, *, now: datetime, control_id: str,
              application: str = "HEALTHGRID", facility: str = "") -> str:
    """The original-mode ACK (AA) for an accepted message."""
    header = source if isinstance(source, Header) else source.header
    return _ack_text(header, "AA", "", now=now, control_id=control_id, application=application, facility=facility)


def build_nak(source: Header | bytes | str | None, error: HealthGridError, *, now: datetime, control_id: str,
              application: str = "HEALTHGRID", facility: str = "", ack_code: str | None = None) -> str:
    """A NAK: AR (rejected) or AE (error) by the error code, MSA-3 naming the problem and an ERR
    segment (ERR-1 for v2.3/2.4, ERR-2/3/4/8 from v2.5) locating it."""
    header = source if isinstance(source, Header) or source is None else read_header(source)
    hl7_error, default = m.ERROR_ACK.get(error.code, ("207", "AE"))
    hl7_error = error.detail.get("hl7_error", hl7_error)
    code = ack_code or default
    text = f"{error.code}: {error.message}"
    seg, seq, field = _location(error)
    sep = "|^~\\&"
    ctext = m.HL7_ERRORS.get(hl7_error, "")
    version = header.version if header else "2.5"
    if version in ("2.3", "2.3.1", "2.4"):
        err = f"ERR|{seg}^{seq}^{field}^{hl7_error}&{m.escape(ctext, sep)}&HL70357"
    else:
        err = f"ERR||{seg}^{seq}^{field}|{hl7_error}^{m.escape(ctext, sep)}^HL70357|E||||{m.escape(text, sep)}"
    return _ack_text(header, code, text, now=now, control_id=control_id, application=application,
                     facility=facility) + err + "\r"


def _location(error: HealthGridError) -> tuple[str, Any, Any]:
    d = error.detail
    field = str(d.get("field", ""))
    seg, _, num = field.partition("-")
    return (seg or d.get("segment", "")), d.get("sequence", 1 if seg else ""), num


def _ack_text(header: Header | None, code: str, text: str, *, now: datetime, control_id: str,
              application: str, facility: str) -> str:
    sep = "|^~\\&"
    e = lambda s: m.escape(s or "", sep)  # noqa: E731
    h = header or Header("", "", "", "", "", None, "", "", "", "P", "2.5", None)
    to_facility = e(h.sending_facility) + (f"^{e(h.sending_facility_id)}" if h.sending_facility_id else "")
    msh = ["MSH", "^~\\&", e(application), e(facility), e(h.sending_application), to_facility,
           m.format_ts(now), "", f"ACK^{e(h.trigger)}^ACK", e(control_id), e(h.processing_id or "P"),
           e(h.version or "2.5")]
    if h.charset:
        msh += ["", "", "", "", "", e(h.charset)]
    msa = ["MSA", code, e(h.control_id)] + ([e(text)] if text else [])
    return "|".join(msh) + "\r" + "|".join(msa) + "\r"


def encode(text: str, codec: str = "utf-8") -> bytes:
    """The reply in the sender's character set (MSH-18 of the message answered)."""
    return text.encode(codec, errors="replace")


# -- MLLP framing (HL7 v2 Minimal Lower Layer Protocol: <VT> message <FS><CR>) -----------------

def frame(payload: bytes) -> bytes:
    if START_BLOCK in payload or END_BLOCK in payload:
        raise Invalid("RES-030", "MLLP: the message contains 0x0B or 0x1C, which frame it", {"field": "MLLP"})
    return START_BLOCK + payload + END_BLOCK + CARRIAGE_RETURN


def unframe(block: bytes) -> bytes:
    if not block.startswith(START_BLOCK):
        raise Invalid("RES-030", "MLLP: a frame starts with 0x0B", {"field": "MLLP"})
    if not block.endswith(END_BLOCK + CARRIAGE_RETURN):
        raise Invalid("RES-030", "MLLP: a frame ends with 0x1C 0x0D", {"field": "MLLP"})
    payload = block[1:-2]
    if START_BLOCK in payload or END_BLOCK in payload:
        raise Invalid("RES-030", "MLLP: more than one frame in the block", {"field": "MLLP"})
    return payload


def split_frames(buffer: bytes) -> tuple[list[bytes], bytes]:
    """The complete frames' payloads in ``buffer`` and the incomplete rest (to wait for)."""
    frames: list[bytes] = []
    while True:
        start = buffer.find(START_BLOCK)
        if start < 0:
            if buffer.strip():
                raise Invalid("RES-030", "MLLP: bytes outside a frame", {"field": "MLLP"})
            return frames, b""
        if buffer[:start].strip():
            raise Invalid("RES-030", "MLLP: bytes before the start block 0x0B", {"field": "MLLP"})
        end = buffer.find(END_BLOCK + CARRIAGE_RETURN, start)
        if end < 0:
            return frames, buffer[start:]
        frames.append(unframe(buffer[start:end + 2]))
        buffer = buffer[end + 2:]
