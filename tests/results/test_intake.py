"""The intake items and their checks without a database: each coded refusal names where it
applies, LOINC is preferred among a concept's codings, flags are read as HL7 table 0078, and a
problem found on the items is named in HL7 terms for an HL7 message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from healthgrid.results.hl7_answer import error_of, localise
from healthgrid.results.intake import (
    LOINC,
    MAX_OBSERVATIONS,
    Code,
    MessageItem,
    ObservationItem,
    PatientItem,
    Problem,
    ReportItem,
    StudyItem,
    check_message,
    make_code,
    normal_flag,
)

NOW = datetime(2025, 3, 14, 2, 0, tzinfo=UTC)
K = Code("2823-3", LOINC, "钾")


def obs(**kw) -> ObservationItem:
    return ObservationItem(**{"where": "OBR 1 OBX 1", "seq": 1, "code": K, "status": "final", "value_num": 4.1, **kw})


def report(**kw) -> ReportItem:
    return ReportItem(**{"where": "OBR 1", "filler_number": "F-1", "category": "LAB", "code": K, "status": "final",
                         "issued_at": NOW, "observations": (obs(),), **kw})


def message(*reports, patient=None, studies=()) -> MessageItem:
    patient = patient or PatientItem(where="PID", name="赵敏", resident_id="420102198001014029")
    return MessageItem("hl7_oru", "C-1", "420100001", patient, reports=reports or (report(),), studies=studies)


def codes(msg: MessageItem) -> list[str]:
    return [p.code for p in check_message(msg, now=NOW)]


def test_a_good_message_has_no_problem():
    assert check_message(message(), now=NOW) == []


@pytest.mark.parametrize(("msg", "code", "field"), [
    (message(report(filler_number=" ")), "RES-181", "identifier"),
    (message(report(status="done")), "RES-182", "status"),
    (message(report(observations=(obs(status="ok"),))), "RES-183", "status"),
    (message(report(issued_at=None)), "RES-184", "issued"),
    (message(report(issued_at=NOW + timedelta(days=2))), "RES-184", "issued"),
    (message(report(filler_number="F" * 81)), "RES-185", "filler_number"),
    (message(report(observations=(obs(value_num=float("nan")),))), "RES-186", "value"),
    (message(report(observations=(obs(value_num=1e13),))), "RES-186", "value"),
    (message(report(studies=(StudyItem("OBR 1 OBX 3", "1.2.03"),))), "RES-187", "identifier"),
    (message(report(), report()), "RES-188", "filler_number"),
    (message(patient=PatientItem(where="PID", name="赵敏")), "RES-189", "identifier"),
    (message(patient=PatientItem(where="PID", mrn="MR1")), "RES-189", "name"),
    (message(report(category="XYZ")), "RES-190", "category"),
    (message(report(observations=(obs(flag="Q"),))), "RES-191", "interpretation"),
    (message(report(observations=tuple(obs(seq=i) for i in range(MAX_OBSERVATIONS + 1)))), "RES-180", "result"),
])
def test_each_refusal_is_coded_and_names_where(msg, code, field):
    problems = check_message(msg, now=NOW)
    assert code in [p.code for p in problems]
    found = next(p for p in problems if p.code == code)
    assert found.field == field and found.where


def test_a_resident_id_alone_is_enough_to_find_a_registered_patient():
    assert codes(message(patient=PatientItem(where="PID", resident_id="420102198001014029"))) == []


def test_a_preliminary_report_may_come_without_an_issued_time():
    assert codes(message(report(status="preliminary", issued_at=None))) == []


def test_every_problem_is_collected_not_only_the_first():
    assert sorted(codes(message(report(filler_number="", status="x", category="Q")))) == [
        "RES-181", "RES-182", "RES-190"]


def test_loinc_leads_among_the_codings_and_the_others_are_kept():
    code = make_code([("L", "GLU", "葡萄糖"), ("LN", "14749-6", "")])
    assert (code.code, code.system, code.display, code.alternates) == ("14749-6", LOINC, "葡萄糖", (("L", "GLU"),))
    assert make_code([("", " ", "")]) is None


@pytest.mark.parametrize(("raw", "flag"), [("H", "H"), ("hh", "HH"), ("AA", "A"), ("POS", "A"), ("NEG", "N"),
                                           ("<", None), ("", None), (None, None)])
def test_flags_are_read_as_table_0078(raw, flag):
    assert normal_flag(raw) == flag


def test_a_problem_of_an_hl7_message_names_its_field_and_locates_it():
    p = localise(Problem("RES-183", "bad status", "OBR 1 OBX 3", "status"))
    assert p.field == "OBX-11"
    error = error_of(p.as_dict())
    assert (error.detail["segment"], error.detail["sequence"], error.detail["field"]) == ("OBX", 3, "OBX-11")
    assert localise(Problem("RES-181", "no number", "OBR 2", "identifier")).field == "OBR-3"
    assert localise(Problem("RES-026", "NM", "OBX 2", "OBX-5")).field == "OBX-5"  # already HL7
