"""ACK and NAK content (read back with python-hl7) and MLLP framing, including a frame read by
python-hl7's own asyncio MLLP reader, which the listener will use."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import hl7
import pytest
from hl7.mllp import MLLPStreamReader

from healthgrid.errors import Invalid
from healthgrid.results.hl7v2 import parse_message
from healthgrid.results.hl7v2_ack import (
    build_ack,
    build_nak,
    encode,
    frame,
    read_header,
    split_frames,
    unframe,
)

MESSAGES = Path(__file__).parent / "messages"
NOW = datetime(2025, 3, 14, 1, 35, 30, tzinfo=UTC)  # 09:35:30 in China
CHEM = (MESSAGES / "oru_r01_chemistry_utf8.hl7").read_bytes()
CT = (MESSAGES / "oru_r01_ct_report.hl7").read_bytes()


def error_of(data: bytes) -> Invalid:
    with pytest.raises(Invalid) as e:
        parse_message(data)
    return e.value


def test_the_ack_accepts_the_message_and_answers_its_sender():
    ack = hl7.parse(build_ack(parse_message(CHEM), now=NOW, control_id="HG-000001", facility="HG-REGION"))
    assert str(ack["MSH.F3"]) == "HEALTHGRID" and str(ack["MSH.F4"]) == "HG-REGION"
    assert str(ack["MSH.F5"]) == "LIS" and str(ack.segment("MSH")(6)) == "武汉市第一医院^420100001"
    assert str(ack["MSH.F7"]) == "20250314093530+0800" and str(ack.segment("MSH")(9)) == "ACK^R01^ACK"
    assert (str(ack["MSH.F10"]), str(ack["MSH.F12"]), str(ack["MSH.F18"])) == ("HG-000001", "2.4", "UNICODE UTF-8")
    msa = ack.segment("MSA")
    assert (str(msa(1)), str(msa(2))) == ("AA", "LIS20250314093512001") and len(ack) == 2


def test_a_nak_for_v2_4_rejects_with_msa_3_and_err_1_naming_the_field():
    bad = CHEM.replace("42010219850312771X^^^公安部^ID~MR0012345^^^WHYY^MR".encode(), b"")
    err = error_of(bad)
    nak = hl7.parse(build_nak(bad, err, now=NOW, control_id="HG-000002"))
    msa = nak.segment("MSA")
    assert (str(msa(1)), str(msa(2))) == ("AE", "LIS20250314093512001")
    assert nak.unescape(str(msa(3))).startswith("RES-025: PID-3")
    assert str(nak.segment("ERR")(1)) == "PID^1^3^101&Required field missing&HL70357"


def test_a_nak_for_v2_5_1_locates_the_field_in_err_2_to_8():
    bad = CT.replace(b"|TX|19005-8", b"|NM|19005-8")  # the impression sent as a number
    err = error_of(bad)
    nak = hl7.parse(build_nak(bad, err, now=NOW, control_id="HG-000003"))
    e = nak.segment("ERR")
    assert (str(e(2)), str(e(3)), str(e(4))) == ("OBX^2^5", "102^Data type error^HL70357", "E")
    assert "OBX 2: OBX-5" in nak.unescape(str(e(8))) and str(nak.segment("MSA")(1)) == "AE"


@pytest.mark.parametrize(
    ("data", "ack_code", "hl7_error"),
    [
        (CHEM.replace(b"ORU^R01^ORU_R01", b"ORM^O01"), "AR", "200"),  # unsupported message type
        (CHEM.replace(b"ORU^R01^ORU_R01", b"ORU^R30"), "AR", "201"),  # unsupported event
        (CHEM.replace(b"|2.4|", b"|2.7|"), "AR", "203"),
        (CHEM.replace(b"UNICODE UTF-8", b"KOI8-R"), "AR", "102"),
        (CHEM.replace(b"|4.12|", b"|4,12|"), "AE", "102"),
        (CHEM.replace(b"|F|||20250314090000", b"|Q|||20250314090000", 1), "AE", "103"),
    ],
)
def test_the_ack_code_and_hl7_error_follow_the_kind_of_problem(data, ack_code, hl7_error):
    err = error_of(data)
    nak = hl7.parse(build_nak(data, err, now=NOW, control_id="HG-4"))
    assert str(nak.segment("MSA")(1)) == ack_code
    err_seg = nak.segment("ERR")  # v2.3/2.4: ERR-1 seg^seq^field^code&text; from v2.5: ERR-3 code^text
    code = str(err_seg(1)).split("^")[3].split("&")[0] if str(err_seg(1)) else str(err_seg(3)).split("^")[0]
    assert code == hl7_error
    assert nak.unescape(str(nak.segment("MSA")(3))).startswith(err.code)


def test_a_message_without_msh_still_gets_a_reject():
    data = b"PID|1||X^^^^ID\r"
    nak = hl7.parse(build_nak(data, error_of(data), now=NOW, control_id="HG-5"))
    assert str(nak.segment("MSA")(1)) == "AR" and str(nak.segment("MSA")(2)) == ""
    assert str(nak["MSH.F12"]) == "2.5" and "RES-020" in str(nak.segment("MSA")(3))


def test_an_error_from_a_later_stage_is_an_application_error_and_the_code_can_be_forced():
    later = Invalid("RES-003", "facility WHYY: local item code 'SH-K' is not mapped", {"field": "OBX-3", "sequence": 1})
    nak = hl7.parse(build_nak(read_header(CHEM), later, now=NOW, control_id="HG-6"))
    assert str(nak.segment("MSA")(1)) == "AE" and str(nak.segment("ERR")(1)).startswith("OBX^1^3^207")
    forced = hl7.parse(build_nak(CHEM, later, now=NOW, control_id="HG-7", ack_code="AR"))
    assert str(forced.segment("MSA")(1)) == "AR"


def test_delimiters_in_the_error_text_are_escaped_and_read_back():
    err = Invalid("RES-026", "OBX 1: OBX-5: '1|2^3~4&5\\6' is not a number", {"field": "OBX-5", "sequence": 1})
    text = build_nak(CT, err, now=NOW, control_id="HG-8")
    nak = hl7.parse(text)
    assert len(nak) == 3 and nak.unescape(str(nak.segment("MSA")(3))) == f"RES-026: {err.message}"
    assert nak.unescape(str(nak.segment("ERR")(8))) == f"RES-026: {err.message}"


def test_read_header_takes_what_it_can_from_a_broken_message():
    h = read_header(CHEM.replace(b"\rPID|", b" PID|"))
    assert (h.sending_application, h.sending_facility, h.control_id, h.version) == (
        "LIS", "武汉市第一医院", "LIS20250314093512001", "2.4")
    assert read_header(b"garbage") is None


def test_the_reply_is_encoded_in_the_senders_character_set():
    msg = parse_message((MESSAGES / "oru_r01_cbc_gb18030.hl7").read_bytes())
    reply = encode(build_ack(msg, now=NOW, control_id="HG-9"), msg.codec)
    assert "黄陂区前川街社区卫生服务中心" in reply.decode("gb18030")
    assert hl7.parse(reply.decode("gb18030"))["MSH.F18"] == "GB 18030-2000"


# -- MLLP ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["oru_r01_chemistry_utf8.hl7", "oru_r01_cbc_gb18030.hl7", "adt_a01_admission.hl7"])
def test_a_frame_round_trips_and_the_message_inside_is_unchanged(name):
    payload = (MESSAGES / name).read_bytes()
    block = frame(payload)
    assert block[:1] == b"\x0b" and block[-2:] == b"\x1c\r" and unframe(block) == payload
    assert parse_message(unframe(block)).raw == payload


def test_python_hl7s_mllp_reader_reads_our_frames():
    async def read() -> bytes:
        reader = MLLPStreamReader()
        reader.feed_data(frame(CHEM))
        reader.feed_eof()
        return await reader.readblock()

    assert asyncio.run(read()) == CHEM


def test_split_frames_returns_complete_frames_and_keeps_the_rest():
    stream = frame(CHEM) + b"\r\n" + frame(CT) + frame(b"MSH|partial")[:-2]
    frames, rest = split_frames(stream)
    assert frames == [CHEM, CT] and rest == b"\x0bMSH|partial"
    more, rest = split_frames(rest + b"\x1c\r")
    assert more == [b"MSH|partial"] and rest == b""


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: unframe(CHEM + b"\x1c\r"), "starts with 0x0B"),
        (lambda: unframe(b"\x0b" + CHEM), "ends with 0x1C 0x0D"),
        (lambda: unframe(b"\x0b" + CHEM + b"\x1c\r\x0b" + CHEM + b"\x1c\r"), "more than one frame"),
        (lambda: frame(b"MSH|\x1c"), "contains 0x0B or 0x1C"),
        (lambda: split_frames(b"junk" + frame(CHEM)), "before the start block"),
        (lambda: split_frames(frame(CHEM) + b"junk"), "outside a frame"),
    ],
)
def test_mllp_framing_errors(call, words):
    with pytest.raises(Invalid) as e:
        call()
    assert e.value.code == "RES-030" and words in e.value.message
