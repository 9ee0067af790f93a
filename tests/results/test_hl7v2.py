"""HL7 v2 parsing: the sample ORU^R01 and ADT messages (UTF-8, GB18030 declared and undeclared)
become plain dataclasses with the original bytes kept; each malformed case gets the coded error
naming its segment and field."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from healthgrid.errors import Invalid
from healthgrid.results.domain import CN_TZ
from healthgrid.results.hl7v2 import AdtMessage, Coded, OruMessage, parse_message

MESSAGES = Path(__file__).parent / "messages"


def sample(name: str) -> bytes:
    return (MESSAGES / name).read_bytes()


CHEM = sample("oru_r01_chemistry_utf8.hl7").decode("utf-8")


@pytest.mark.parametrize(
    ("name", "kind", "codec", "control_id", "observations", "warnings"),
    [
        ("oru_r01_chemistry_utf8.hl7", OruMessage, "utf-8", "LIS20250314093512001", 7, 0),
        ("oru_r01_cbc_gb18030.hl7", OruMessage, "gb18030", "JY2025040200117", 5, 0),
        ("oru_r01_ct_report.hl7", OruMessage, "utf-8", "RIS-7781203", 3, 0),
        ("oru_r01_gbk_undeclared.hl7", OruMessage, "gb18030", "YC0611-000452", 2, 2),
        ("adt_a01_admission.hl7", AdtMessage, "utf-8", "HIS-A01-558102", 0, 0),
        ("adt_a04_registration_gb18030.hl7", AdtMessage, "gb18030", "MZ-A04-20250402-031", 0, 0),
        ("adt_a08_update.hl7", AdtMessage, "utf-8", "HIS-A08-990031", 0, 0),
    ],
)
def test_sample_messages_parse_and_keep_the_original_bytes(name, kind, codec, control_id, observations, warnings):
    raw = sample(name)
    msg = parse_message(raw)
    assert isinstance(msg, kind) and msg.codec == codec and msg.header.control_id == control_id
    assert msg.raw == raw and len(msg.warnings) == warnings
    assert sum(len(o.observations) for o in getattr(msg, "orders", ())) == observations
    assert msg.patient.resident_id is not None and len(msg.patient.resident_id.value) == 18


def test_oru_chemistry_patient_order_and_results():
    msg = parse_message(CHEM.encode("utf-8"))
    h, p = msg.header, msg.patient
    assert (h.sending_application, h.sending_facility, h.sending_facility_id) == ("LIS", "武汉市第一医院", "420100001")
    assert (h.message_code, h.trigger, h.version, h.charset) == ("ORU", "R01", "2.4", "UNICODE UTF-8")
    assert h.sent_at == datetime(2025, 3, 14, 9, 35, 12, tzinfo=CN_TZ)
    rid = p.resident_id
    assert (rid.value, rid.authority, rid.type_code) == ("42010219850312771X", "公安部", "ID")
    assert [i.type_code for i in p.identifiers] == ["ID", "MR"]
    assert (p.name, p.sex, p.birth_date) == ("张伟", "male", date(1985, 3, 12))
    assert p.address == "湖北省武汉市江岸区解放大道1095号" and p.ethnic_group == Coded("01", "汉族", "GB3304")
    assert msg.visit.patient_class == "O" and msg.visit.attending == "D1021 李华"
    order = msg.orders[0]
    assert (order.placer_number, order.filler_number, order.service.code, order.section, order.status) == (
        "ORD20250314001", "LAB20250314001", "SH001", "CH", "final")
    assert order.reported_at == datetime(2025, 3, 14, 9, 30, tzinfo=CN_TZ) and order.ordering_provider == "D1021 李华"
    assert order.notes == ("标本轻度溶血，钾结果仅供参考。",)
    glu = order.observations[2]
    assert (glu.code.code, glu.code.system, glu.code.alt_code) == ("14749-6", "LN", "GLU")
    assert (glu.value, glu.units, glu.range_low, glu.range_high) == (7.85, "mmol/L", 3.9, 6.1)
    assert glu.abnormal_flags == ("H",) and glu.interpretation == ("high",) and glu.status == "final"
    assert msg.lab_for(glu) == "WHYY-LAB" and glu.observed_at.utcoffset().total_seconds() == 8 * 3600
    hbsag = order.observations[6]
    assert hbsag.value == Coded("NEG", "阴性", "HL70078") and hbsag.reference_range == "阴性"


def test_gb18030_cbc_keeps_chinese_text_full_width_ranges_and_statuses():
    msg = parse_message(sample("oru_r01_cbc_gb18030.hl7"))
    assert msg.header.sending_facility == "黄陂区前川街社区卫生服务中心" and msg.patient.name == "王秀英"
    assert msg.patient.sex == "female" and msg.patient.resident_id.type_code == "NNCHN"
    order = msg.orders[0]
    assert (order.service.code, order.service.alt_code, order.service.alt_system) == ("XCG", "58410-2", "LN")
    wbc, *_, neut = order.observations
    assert (wbc.code.code, wbc.code.alt_code, wbc.value, wbc.reference_range) == ("WBC", "6690-2", 3.1, "3.5～9.5")
    assert (wbc.range_low, wbc.range_high, wbc.interpretation) == (3.5, 9.5, ("low",))
    assert (neut.status_code, neut.status) == ("P", "preliminary")


def test_imaging_report_text_repetitions_corrected_status_and_performing_organisation():
    msg = parse_message(sample("oru_r01_ct_report.hl7"))
    order = msg.orders[0]
    assert (order.service.code, order.section, order.status) == ("29252-4", "CT", "corrected")
    findings, impression, study = order.observations
    assert findings.value.count("\n") == 1 and findings.value.startswith("双肺纹理增多")
    assert impression.code.code == "19005-8" and impression.status == "corrected"
    assert findings.producer == "RMYY-RAD" and msg.lab_for(findings) == "RMYY-RAD"
    assert study.value_type == "RP" and study.value.startswith("1.2.156.112605.")
    assert msg.visit.admitted_at == datetime(2025, 5, 18, 10, 20, tzinfo=CN_TZ)
    assert msg.visit.location == "RMYY/呼吸内科/12/03"


def test_undeclared_gbk_is_read_as_gb18030_and_an_nm_comparator_is_kept_with_a_warning():
    msg = parse_message(sample("oru_r01_gbk_undeclared.hl7"))
    assert msg.header.charset is None and msg.patient.name == "陈思雨" and msg.patient.sex == "female"
    afp = msg.orders[0].observations[0]
    assert (afp.value, afp.comparator, afp.range_high) == (0.61, "<", 7.0)
    assert any("GB18030" in w for w in msg.warnings) and any("comparator" in w for w in msg.warnings)


@pytest.mark.parametrize(
    ("name", "event", "sex", "address", "visit_class"),
    [
        ("adt_a01_admission.hl7", "A01", "male", "湖北省武汉市武昌区张之洞路99号", "I"),
        ("adt_a04_registration_gb18030.hl7", "A04", "female", "湖北省武汉市黄陂区前川街百秀街18号", "O"),
        ("adt_a08_update.hl7", "A08", "male", "湖北省武汉市江汉区建设大道568号", None),
    ],
)
def test_adt_messages_give_demographics(name, event, sex, address, visit_class):
    msg = parse_message(sample(name))
    assert msg.event == event and msg.patient.sex == sex and msg.patient.address == address
    assert (msg.visit.patient_class if msg.visit else None) == visit_class


def test_a01_phone_from_the_unformatted_telephone_component():
    assert parse_message(sample("adt_a01_admission.hl7")).patient.phone == "13995512345"


@pytest.mark.parametrize(("joiner", "warned"), [("\r", False), ("\n", True), ("\r\n", True)])
def test_lf_and_crlf_separated_files_are_read_as_cr_with_a_warning(joiner, warned):
    msg = parse_message(CHEM.replace("\r", joiner).encode("utf-8"))
    assert len(msg.orders[0].observations) == 7
    assert any("LF" in w for w in msg.warnings) is warned


def test_text_input_and_a_charset_override():
    assert parse_message(CHEM).raw == CHEM.encode("utf-8")
    mislabelled = CHEM.replace("UNICODE UTF-8", "ASCII").encode("gb18030")
    assert parse_message(mislabelled, charset="gb18030").patient.name == "张伟"


def _set(text: str, sid: str, n: int, value: str, occurrence: int = 1) -> str:
    """``text`` with field ``n`` of the ``occurrence``-th ``sid`` segment replaced."""
    segments, seen = text.split("\r"), 0
    for i, seg in enumerate(segments):
        if seg.startswith(sid + "|"):
            seen += 1
            if seen == occurrence:
                fields = seg.split("|") + [""] * n
                fields[n - (1 if sid == "MSH" else 0)] = value
                segments[i] = "|".join(fields).rstrip("|")
    return "\r".join(segments)


def _drop(text: str, *sids: str) -> str:
    return "\r".join(s for s in text.split("\r") if s[:3] not in sids)


@pytest.mark.parametrize(
    ("data", "code", "field"),
    [
        (_drop(CHEM, "MSH"), "RES-020", "MSH"),  # no MSH
        ("", "RES-020", "MSH"),
        (_set(CHEM, "MSH", 9, "ORM^O01"), "RES-023", "MSH-9"),  # wrong message type
        (_set(CHEM, "MSH", 9, "ADT^A03"), "RES-023", "MSH-9"),  # a discharge is not taken here
        (_set(CHEM, "MSH", 9, ""), "RES-025", "MSH-9"),
        (_set(CHEM, "MSH", 10, ""), "RES-025", "MSH-10"),
        (_set(CHEM, "MSH", 7, ""), "RES-025", "MSH-7"),
        (_set(CHEM, "MSH", 7, "2025-03-14 09:35"), "RES-027", "MSH-7"),
        (_set(CHEM, "MSH", 12, "2.6"), "RES-029", "MSH-12"),
        (_set(CHEM, "PID", 3, ""), "RES-025", "PID-3"),  # missing PID-3
        (_set(CHEM, "PID", 3, "^^^公安部^ID"), "RES-025", "PID-3"),
        (_drop(CHEM, "PID"), "RES-024", "PID"),
        (_set(CHEM, "PID", 7, "19850231"), "RES-027", "PID-7"),
        (_set(CHEM, "OBX", 5, "4,12"), "RES-026", "OBX-5"),  # bad OBX-5 for NM
        (_set(CHEM, "OBX", 5, "阳性", 3), "RES-026", "OBX-5"),
        (_set(CHEM, "OBX", 5, "", 2), "RES-025", "OBX-5"),  # a final result without a value
        (_set(CHEM, "OBX", 2, "XX"), "RES-028", "OBX-2"),
        (_set(CHEM, "OBX", 3, ""), "RES-025", "OBX-3"),
        (_set(CHEM, "OBX", 11, ""), "RES-025", "OBX-11"),
        (_set(CHEM, "OBX", 11, "Q"), "RES-028", "OBX-11"),
        (_set(CHEM, "OBX", 14, "20251314"), "RES-027", "OBX-14"),
        (_drop(CHEM, "OBR", "OBX", "NTE"), "RES-024", "OBR"),  # missing OBR
        (_drop(CHEM, "OBR"), "RES-024", "OBX"),  # results before any order
        (_set(CHEM, "OBR", 4, ""), "RES-025", "OBR-4"),
        (_set(CHEM, "OBR", 7, "yesterday"), "RES-027", "OBR-7"),
        (CHEM.replace("\rPID|", " PID|"), "RES-021", "MSH"),  # bad segment separators: a space
        (CHEM.replace("\rOBX|", "\tOBX|"), "RES-021", "OBR"),  # … a tab
        (CHEM.replace("\rPID|", "\rpid|"), "RES-021", "MSH"),  # not a segment ID
        (CHEM.replace("\rPV1|", "\rPV1^"), "RES-021", "PV1"),
        (CHEM.replace("MSH|^~\\&|", "MSH|^~^&|", 1), "RES-021", "MSH-2"),  # bad delimiters
        (CHEM.replace("MSH|^~\\&|", "MSHA^~\\&A", 1), "RES-021", "MSH-2"),
        ("\x0b" + CHEM + "\x1c\r", "RES-030", "MSH"),  # still framed
    ],
)
def test_malformed_messages_get_the_error_naming_the_segment_and_field(data, code, field):
    with pytest.raises(Invalid) as e:
        parse_message(data.encode("utf-8"))
    assert (e.value.code, e.value.detail["field"]) == (code, field), e.value.message
    assert field.split("-")[0] in e.value.message or code in ("RES-020", "RES-021", "RES-030")


def test_the_error_for_a_repeated_segment_says_which_one():
    with pytest.raises(Invalid) as e:
        parse_message(_set(CHEM, "OBX", 5, "阳性", 3))
    assert e.value.detail["sequence"] == 3 and "OBX 3" in e.value.message and "'阳性'" in e.value.message


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (CHEM.replace("UNICODE UTF-8", "ASCII").encode("utf-8"), "is not ASCII"),  # Chinese bytes, declared ASCII
        (CHEM.replace("UNICODE UTF-8", "KOI8-R").encode("utf-8"), "unknown character set"),
        (CHEM.encode("gb18030"), "is not UNICODE UTF-8"),  # declared UTF-8, sent as GBK
        (CHEM.replace("|UNICODE UTF-8", "").encode("utf-8").replace("张".encode(), b"\x81\x20"),
         "neither UTF-8 nor GB18030"),
    ],
)
def test_character_set_problems_name_msh_18(data, words):
    with pytest.raises(Invalid) as e:
        parse_message(data)
    assert e.value.code == "RES-022" and e.value.detail["field"] == "MSH-18" and words in e.value.message


def test_a_utf8_byte_order_mark_is_ignored_with_a_warning():
    msg = parse_message(b"\xef\xbb\xbf" + CHEM.encode("utf-8"))
    assert msg.patient.name == "张伟" and any("byte-order mark" in w for w in msg.warnings)


@pytest.mark.parametrize("name", ["王媆", "李億"])  # GBK second bytes 0x5C (\) and 0x7C (|)
def test_gbk_second_bytes_that_look_like_delimiters_are_not_split(name):
    text = CHEM.replace("|UNICODE UTF-8", "").replace("张^伟", name)
    msg = parse_message(text.encode("gbk"))
    assert msg.codec == "gb18030" and msg.patient.name == name and msg.patient.birth_date == date(1985, 3, 12)
