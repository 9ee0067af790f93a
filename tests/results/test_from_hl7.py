"""HL7 v2 messages as intake items (pure): the sample ORU and ADT messages, the category of a
report, a correction by OBX-11, a DICOM study UID as an imaging study, the impression as the
conclusion, the ordering doctor and facility, and the splitting of a file into messages."""

from __future__ import annotations

from datetime import datetime

import pytest
from tests.results.ingest_world import oru, sample

from healthgrid.results.catalogue import load_catalogue
from healthgrid.results.domain import CN_TZ
from healthgrid.results.from_hl7 import split_file, to_intake
from healthgrid.results.hl7v2 import parse_message
from healthgrid.results.intake import LOINC

CAT = load_catalogue()


def intake(data: bytes):
    return to_intake(parse_message(data), catalogue=CAT)


def test_the_chemistry_sample_becomes_a_patient_and_one_report_of_seven_results():
    item = intake(sample("oru_r01_chemistry_utf8.hl7"))
    assert (item.kind, item.control_id, item.issuer, item.application) == (
        "hl7_oru", "LIS20250314093512001", "420100001", "LIS")
    p = item.patient
    assert (p.name, p.sex, p.resident_id, p.mrn, p.phone, str(p.birth_date)) == (
        "张伟", "M", "42010219850312771X", "MR0012345", "13871234567", "1985-03-12")
    r = item.reports[0]
    assert (r.filler_number, r.placer_number, r.category, r.status, r.code.code, r.code.system) == (
        "LAB20250314001", "ORD20250314001", "LAB", "final", "SH001", "L")
    assert r.issued_at == datetime(2025, 3, 14, 9, 30, tzinfo=CN_TZ) and r.ordering_practitioner == "D1021"
    assert r.lab == "WHYY-LAB" and len(r.observations) == 7 and r.studies == ()
    glu = r.observations[2]
    assert (glu.code.code, glu.code.system, glu.code.alternates, glu.value_num, glu.flag, glu.where) == (
        "14749-6", LOINC, (("L", "GLU"),), 7.85, "H", "OBR 1 OBX 3")
    assert r.observations[6].value_text == "阴性"


def test_the_ct_sample_has_a_study_a_conclusion_and_is_a_correction():
    r = intake(sample("oru_r01_ct_report.hl7")).reports[0]
    assert (r.category, r.status, r.code.code) == ("RAD", "corrected", "29252-4")
    assert [o.code.code for o in r.observations] == ["18782-3", "19005-8"]
    assert r.conclusion == "右肺下叶炎症，建议抗感染治疗后复查。"
    study = r.studies[0]
    assert (study.study_uid, study.modality, study.accession, study.where) == (
        "1.2.156.112605.14038010225120.20250520141500.3.8812", "CT", "CT20250520-0233", "OBR 1 OBX 3")


def test_a_corrected_result_under_a_final_order_makes_the_report_a_correction():
    r = intake(oru(control="C", filler="F", obx_status="C")).reports[0]
    assert r.status == "corrected" and {o.status for o in r.observations} == {"corrected"}


def test_the_category_comes_from_the_section_else_from_the_catalogue():
    ecg = oru(control="C", filler="F").replace(b"||CH|F", b"||EC|F")
    assert intake(ecg).reports[0].category == "EC"
    unknown = oru(control="C", filler="F").replace(b"CHEM^\xe7\x94\x9f\xe5\x8c\x96^L", b"36643-5^XR^LN").replace(
        b"||CH|F", b"||QQ|F")
    assert intake(unknown).reports[0].category == "RAD"


def test_the_ordering_doctor_and_facility_come_from_obr_16_and_orc_21():
    r = intake(oru(control="C", filler="F", orc_facility="武汉大学人民医院^^420100002")).reports[0]
    assert (r.ordering_practitioner, r.ordering_org) == ("110420100000001", "420100002")


def test_an_adt_message_is_a_patient_only():
    item = intake(sample("adt_a04_registration_gb18030.hl7"))
    assert (item.kind, item.event, item.reports, item.patient.sex, item.patient.resident_id) == (
        "hl7_adt", "A04", (), "F", "420116196208052822")


def test_parser_warnings_are_kept_as_remarks():
    item = intake(sample("oru_r01_gbk_undeclared.hl7"))
    assert [w.code for w in item.warnings] == ["RES-214", "RES-214"] and item.issuer == "宜昌市中心人民医院"
    afp = item.reports[0].observations[0]
    assert (afp.value_num, afp.value_text) == (0.61, "<0.61")


A, B = oru(control="A", filler="FA"), oru(control="B", filler="FB")


@pytest.mark.parametrize(("data", "parts"), [
    (b"\x0b" + A + b"\x1c\r\x0b" + B + b"\x1c\r", [A, B]),
    (A + B, [A.rstrip(b"\r"), B.rstrip(b"\r")]),
    (A.replace(b"\r", b"\r\n") + B.replace(b"\r", b"\n"), [A.replace(b"\r", b"\r\n").rstrip(b"\r\n"),
                                                            B.replace(b"\r", b"\n").rstrip(b"\n")]),
])
def test_a_file_holds_framed_or_separated_messages(data, parts):
    assert split_file(data) == [(p, None) for p in parts]


def test_bytes_outside_frames_are_reported_not_dropped():
    found = split_file(b"junk\x0b" + A + b"\x1c\r")
    assert found[0] == (b"junk", found[0][1]) and found[0][1] and found[1] == (A, None)
