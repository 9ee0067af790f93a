"""The staged ingestion pipeline on the database (SQLite and PostgreSQL): the sample HL7 messages
written with their patients, every coded refusal writing nothing but the rejected message,
duplicates, corrections, patient linking and the review queue, local code maps, the sender's
scope, the notifications, and the ingestion log."""

from __future__ import annotations

import base64
from datetime import date

import pytest
from sqlalchemy import select
from tests.factories import SYS, resident_id
from tests.results.ingest_world import count, make_hubei, oru, sample

from healthgrid import outbox
from healthgrid.errors import Forbidden, NotFound
from healthgrid.notifications import service as notifications
from healthgrid.patients import service as patients
from healthgrid.patients.models import MatchReview
from healthgrid.results import ingest, ingest_log
from healthgrid.results.jobs import HANDLERS
from healthgrid.results.models import ImagingStudy, LocalCode, Message, Observation, Report
from healthgrid.security import pii
from healthgrid.security.models import AuditEvent


@pytest.fixture
def hubei(session):
    return make_hubei(session)


def send(session, actor, data: bytes, **kw) -> dict:
    return ingest.ingest_hl7(session, actor, data, channel="file", **kw)


def stored_content(session, message_id: int) -> bytes:
    text = pii.unseal(session, session.get(Message, message_id).content_enc, ingest.PURPOSE)
    kind, _, body = text.partition(":")
    return body.encode("utf-8") if kind == "text" else base64.b64decode(body)


# -- the samples ----------------------------------------------------------------------------------

def test_a_chemistry_oru_writes_the_report_its_observations_and_the_patient(session, hubei):
    report = send(session, hubei.admin_first, sample("oru_r01_chemistry_utf8.hl7"))
    assert report["status"] == "accepted" and report["errors"] == []
    assert report["created"] == {"Patient": 1, "DiagnosticReport": 1, "Observation": 7}
    assert report["source"] == "420100001|LIS" and report["control_id"] == "LIS20250314093512001"
    row = session.get(Report, report["reports"][0]["id"])
    assert (row.issuer_org_id, row.filler_number, row.placer_number, row.status, row.category) == (
        hubei.first.id, "LAB20250314001", "ORD20250314001", "final", "LAB")
    assert row.item is None  # a panel of several items under a local code
    obs = session.scalars(select(Observation).where(Observation.report_id == row.id).order_by(Observation.seq)).all()
    glu = obs[2]
    assert (glu.item, glu.code_system, glu.code, glu.value_num, glu.unit, glu.ref_low, glu.ref_high, glu.flag) == (
        "GLU", "http://loinc.org", "14749-6", 7.85, "mmol/L", 3.9, 6.1, "H")
    assert obs[6].value_text == "阴性" and obs[6].item == "HBSAG" and obs[6].flag == "N"
    assert {o.patient_id for o in obs} == {row.patient_id} and row.patient_id == report["patient"]["patient_id"]
    assert patients.patient_of_id_number(session, "42010219850312771X") == row.patient_id
    assert stored_content(session, report["message_id"]) == sample("oru_r01_chemistry_utf8.hl7")


def test_a_gb18030_cbc_maps_to_the_cbc_item_and_is_kept_as_its_bytes(session, hubei):
    report = send(session, SYS, sample("oru_r01_cbc_gb18030.hl7"))
    row = session.get(Report, report["reports"][0]["id"])
    assert (row.item, row.category, row.code, row.mark) == ("CBC", "LAB", "58410-2", "武汉HR")  # Wuhan's list
    assert count(session, Observation, Observation.report_id == row.id, Observation.item == "CBC") == 5
    msg = session.get(Message, report["message_id"])
    assert msg.charset == "gb18030" and stored_content(session, msg.id) == sample("oru_r01_cbc_gb18030.hl7")
    assert pii.unseal(session, msg.content_enc, ingest.PURPOSE).startswith("base64:")


def test_a_ct_report_indexes_its_study_and_keeps_the_impression_as_conclusion(session, hubei):
    report = send(session, hubei.admin_renmin, sample("oru_r01_ct_report.hl7"))
    assert report["created"] == {"Patient": 1, "DiagnosticReport": 1, "Observation": 2, "ImagingStudy": 1}
    row = session.get(Report, report["reports"][0]["id"])
    assert (row.item, row.category, row.status) == ("CT-CHEST", "RAD", "corrected")
    assert row.conclusion == "右肺下叶炎症，建议抗感染治疗后复查。"
    study = session.scalar(select(ImagingStudy).where(ImagingStudy.report_id == row.id))
    assert study.study_uid == "1.2.156.112605.14038010225120.20250520141500.3.8812"
    assert (study.modality, study.accession_number, study.patient_id) == ("CT", "CT20250520-0233", row.patient_id)
    assert not [w for w in report["warnings"] if w["code"] == "RES-211"]  # narrative parts are not items


def test_adt_messages_register_and_link_demographics_through_the_patient_index(session, hubei):
    a04 = send(session, hubei.admin_first, sample("adt_a08_update.hl7"))
    assert a04["status"] == "accepted" and a04["created"] == {"Patient": 1} and a04["patient"]["outcome"] == "created"
    oru_report = send(session, hubei.admin_first, sample("oru_r01_chemistry_utf8.hl7"))
    assert oru_report["patient"] == {**a04["patient"], "outcome": "linked", "matched_by": "resident_id"}
    assert count(session, Report) == 1 and count(session, Message) == 2


# -- refusals: nothing written but the rejected message -----------------------------------------------

@pytest.mark.parametrize(("data", "code", "field"), [
    (b"PID|1||X\rOBR|1", "RES-020", "MSH"),
    (sample("oru_r01_chemistry_utf8.hl7").replace(b"|NM|14749-6", b"|NM|14749-6").replace(b"||7.85|", b"||7,85|"),
     "RES-026", "OBX-5"),
    (oru(control="C-181", filler=""), "RES-181", "OBR-3"),
    (oru(control="C-192", filler="F-192", facility="999999999"), "RES-192", "MSH-4"),
    (oru(control="C-195", filler="F-195", rid="420102198001014021"), "RES-195", "PID-3"),
    (oru(control="C-nul", filler="F-nul", values=(("2823-3", "钾", "a\x00b", "", "", ""),)), "RES-185", "OBX-5"),
    (oru(control="C-191", filler="F-191", values=(("2823-3", "钾", "4.1", "mmol/L", "3.5-5.3", "Z"),)), None, None),
])
def test_a_refused_message_writes_nothing_but_is_kept_as_rejected(session, hubei, data, code, field):
    before = (count(session, Report), count(session, Observation), count(session, MatchReview))
    patients_before = patients.patient_of_id_number(session, resident_id(date(1980, 1, 1), seq=402, county="420102"))
    report = send(session, hubei.admin_first, data)
    if code is None:  # an unknown OBX-8 flag is not an interpretation: dropped, the result kept
        assert report["status"] == "accepted"
        return
    assert report["status"] == "rejected" and report["errors"][0]["code"] == code
    assert report["errors"][0]["field"] == field and report["errors_by_code"][code] == 1
    assert (count(session, Report), count(session, Observation), count(session, MatchReview)) == before
    assert patients.patient_of_id_number(session, resident_id(date(1980, 1, 1), seq=402, county="420102")) \
        == patients_before
    msg = session.get(Message, report["message_id"])
    assert msg.status == "rejected" and msg.report["errors"][0]["code"] == code
    assert stored_content(session, msg.id) == data


def test_every_problem_of_a_message_is_reported_at_once(session, hubei):
    data = oru(control="C-many", filler="F-many", values=(("2823-3", "钾", "4.1", "mmol/L", "3.5-5.3", "N"),),
               extra="OBR|2||F-many|CHEM^生化^L|||20250314072000|||||||||||||||20250314093000||XX|F")
    report = send(session, hubei.admin_first, data)
    assert report["status"] == "rejected" and report["errors_by_code"] == {"RES-188": 1}
    late = oru(control="C-late", filler="F-late").replace(b"20250314093000||CH", b"20990314093000||ZZ")
    report = send(session, hubei.admin_first, late)
    assert sorted(report["errors_by_code"]) == ["RES-184"]
    assert report["errors"][0]["field"] == "OBR-22" and report["errors"][0]["where"] == "OBR 1"


def test_the_same_refused_bytes_are_kept_once_and_a_fixed_resend_is_processed(session, hubei):
    bad = oru(control="C-fix", filler="")
    first, again = send(session, hubei.admin_first, bad), send(session, hubei.admin_first, bad)
    assert first["message_id"] == again["message_id"] and count(session, Message) == 1
    fixed = send(session, hubei.admin_first, oru(control="C-fix", filler="F-fix"))
    assert fixed["status"] == "accepted" and count(session, Message) == 2 and count(session, Report) == 1


def test_a_patient_refused_for_an_identity_undoes_nothing_else_and_a_bad_phone_is_only_dropped(session, hubei):
    rid = resident_id(date(1980, 1, 1), seq=402, county="420102")
    data = oru(control="C-phone", filler="F-phone", pid=f"PID|1||{rid}^^^公安部^ID||赵^敏||19800101|F|||||12345")
    report = send(session, hubei.admin_first, data)
    assert report["status"] == "accepted"
    assert [w["code"] for w in report["warnings"]].count("RES-215") == 1


# -- duplicates and corrections -------------------------------------------------------------------

def test_a_message_received_twice_answers_the_first_report_and_writes_nothing(session, hubei):
    data = oru(control="C-dup", filler="F-dup")
    first = send(session, hubei.admin_first, data)
    rows = (count(session, Report), count(session, Observation), count(session, Message),
            count(session, outbox.OutboxEvent))
    again = send(session, hubei.admin_first, data)
    assert again["status"] == "duplicate" and again["duplicate_of"] == first["message_id"]
    assert again["reports"] == first["reports"]
    assert (count(session, Report), count(session, Observation), count(session, Message),
            count(session, outbox.OutboxEvent)) == rows


def test_two_messages_of_one_chunk_touching_the_same_report_are_written_in_order(session, hubei):
    cat = ingest.catalogue_of(session)
    first = ingest.read_hl7(oru(control="C-a", filler="F-same"), channel="file", catalogue=cat)
    fix = ingest.read_hl7(oru(control="C-b", filler="F-same", status="C", obx_status="C",
                              values=(("2823-3", "钾", "4.6", "mmol/L", "3.5-5.3", "N"),)), channel="file",
                          catalogue=cat)
    dup = ingest.read_hl7(oru(control="C-a", filler="F-same"), channel="file", catalogue=cat)
    out = ingest.ingest(session, hubei.admin_first, [first, fix, dup])
    assert [o["status"] for o in out] == ["accepted", "accepted", "duplicate"]
    assert out[1]["updated"] == {"DiagnosticReport": 1, "Observation": 2}
    assert out[0]["reports"][0]["id"] == out[1]["reports"][0]["id"]
    assert session.get(Report, out[0]["reports"][0]["id"]).status == "corrected"


def test_a_correction_updates_the_report_in_place_and_withdraws_dropped_results(session, hubei):
    first = send(session, hubei.admin_first, oru(control="C-1", filler="F-corr"))
    report_id = first["reports"][0]["id"]
    ids = session.scalars(select(Observation.id).where(Observation.report_id == report_id)
                          .order_by(Observation.seq)).all()
    fix = oru(control="C-2", filler="F-corr", status="C", obx_status="C",
              values=(("2823-3", "钾", "3.2", "mmol/L", "3.5-5.3", "L"),))
    report = send(session, hubei.admin_first, fix)
    assert report["status"] == "accepted" and report["updated"] == {"DiagnosticReport": 1, "Observation": 2}
    # only the potassium is left: the report is now of that one item
    assert report["reports"][0] == {"id": report_id, "filler_number": "F-corr", "status": "corrected", "item": "K",
                                    "outcome": "updated"}
    row = session.get(Report, report_id)
    assert (row.status, row.version, row.message_id) == ("corrected", 2, report["message_id"])
    k, glu = (session.get(Observation, i) for i in ids)
    assert (k.value_num, k.flag, k.status) == (3.2, "L", "corrected") and glu.status == "entered-in-error"
    same = send(session, hubei.admin_first, fix.replace(b"|C-2|", b"|C-3|"))
    assert same["ignored"] == {"DiagnosticReport": 1, "Observation": 1} and session.get(Report, report_id).version == 2


def test_a_released_report_changes_only_as_a_correction(session, hubei):
    send(session, hubei.admin_first, oru(control="C-10", filler="F-rel"))
    changed = send(session, hubei.admin_first, oru(control="C-11", filler="F-rel",
                                                  values=(("2823-3", "钾", "9.9", "mmol/L", "3.5-5.3", "HH"),)))
    assert changed["errors_by_code"] == {"RES-193": 1} and changed["errors"][0]["field"] == "OBR-25"
    back = send(session, hubei.admin_first, oru(control="C-12", filler="F-rel", status="P", obx_status="P"))
    assert back["errors_by_code"] == {"RES-194": 1}
    assert count(session, Observation, Observation.value_num == 9.9) == 0


def test_a_report_number_belongs_to_one_patient(session, hubei):
    send(session, hubei.admin_first, oru(control="C-20", filler="F-owner"))
    other = oru(control="C-21", filler="F-owner", rid=resident_id(date(1990, 5, 5), seq=556, county="420102"),
                name="孙丽", born="19900505", status="C", obx_status="C", mrn="MR-9002")
    assert send(session, hubei.admin_first, other)["errors_by_code"] == {"RES-196": 1}


# -- patients: linking and the review queue ---------------------------------------------------------

def test_a_doubtful_patient_gets_a_new_record_the_result_and_a_review(session, hubei):
    first = patients.register_patient(session, SYS, org_id=hubei.renmin.id, data=patients.PatientIn(
        name="王建国", sex="M", birth_date=date(1950, 1, 2), phone="13711112222"))
    pid = "PID|1||MR-8810^^^WHYY^MR||王^建国||19500102|M|||||13733334444"
    data = oru(control="C-rev", filler="F-rev", pid=pid)
    report = send(session, hubei.admin_first, data)
    assert report["status"] == "accepted" and report["patient"]["outcome"] == "review"
    new_id, reviews = report["patient"]["patient_id"], report["patient"]["reviews"]
    assert new_id != first.patient.id and reviews
    assert [w["code"] for w in report["warnings"]].count("RES-212") == 1
    review = session.get(MatchReview, reviews[0])
    assert {review.patient_id, review.candidate_id} == {first.patient.id, new_id}
    assert session.get(Report, report["reports"][0]["id"]).patient_id == new_id
    again = send(session, hubei.admin_first, oru(control="C-rev2", filler="F-rev2", pid=pid))
    assert again["patient"]["patient_id"] == new_id and again["patient"]["matched_by"] == "mrn"


def test_local_codes_of_the_issuer_map_results_to_catalogue_items(session, hubei):
    session.add(LocalCode(org_id=hubei.first.id, local_code="K01", item="K", updated_by="tests"))
    session.flush()
    data = oru(control="C-local", filler="F-local").replace(b"2823-3^\xe9\x92\xbe^LN", b"K01^\xe9\x92\xbe^L")
    report = send(session, hubei.admin_first, data)
    rows = session.scalars(select(Observation).where(Observation.report_id == report["reports"][0]["id"])
                           .order_by(Observation.seq)).all()
    assert [(o.code_system, o.code, o.item) for o in rows] == [("L", "K01", "K"), ("http://loinc.org", "14749-6",
                                                                                     "GLU")]


# -- who may send ------------------------------------------------------------------------------------

def test_a_facility_sends_only_its_own_results_and_a_refusal_is_audited(session, hubei):
    report = send(session, hubei.admin_renmin, oru(control="C-scope", filler="F-scope"))
    assert report["status"] == "rejected" and report["errors_by_code"] == {"SEC-103": 1}
    assert count(session, Report) == 0
    denied = session.scalars(select(AuditEvent).where(AuditEvent.username == "ris-renmin",
                                                      AuditEvent.outcome == "denied")).all()
    assert denied and denied[-1].org_id == hubei.first.id
    with pytest.raises(Forbidden):
        send(session, hubei.clinician, oru(control="C-clin", filler="F-clin"))


def test_another_facility_cannot_read_a_report_by_sending_its_control_id_again(session, hubei):
    send(session, hubei.admin_first, oru(control="C-mine", filler="F-mine"))
    again = send(session, hubei.admin_renmin, oru(control="C-mine", filler="F-mine"))
    assert again["status"] == "rejected" and again["errors_by_code"] == {"SEC-103": 1} and again["reports"] == []
    assert session.get(Message, again["message_id"]).org_id is None  # kept as the sender's, not the hospital's
    assert [m.id for m in ingest_log.list_messages(session, hubei.admin_renmin).items] == [again["message_id"]]


def test_a_written_report_is_audited_as_created_by_the_sender(session, hubei):
    report = send(session, hubei.admin_first, oru(control="C-audit", filler="F-audit"))
    rid = str(report["reports"][0]["id"])
    rows = session.scalars(select(AuditEvent).where(AuditEvent.resource_type == "DiagnosticReport",
                                                    AuditEvent.resource_id == rid)).all()
    assert [(r.username, r.action, r.patient_id) for r in rows] == [
        ("lis-first", "create", report["patient"]["patient_id"])]


# -- notifications --------------------------------------------------------------------------------

def test_a_final_report_notifies_the_ordering_doctor_and_the_patient_without_values(session, hubei):
    report = send(session, hubei.admin_first, oru(control="C-note", filler="F-note",
                                                  values=(("4548-4", "糖化血红蛋白", "7.2", "%", "4.0-6.0", "H"),)))
    event = session.scalars(select(outbox.OutboxEvent).where(outbox.OutboxEvent.topic == "results.available")).one()
    row = session.get(Report, report["reports"][0]["id"])
    assert event.payload == {"report_id": row.id, "patient_id": row.patient_id, "issuer_org_id": hubei.first.id,
                             "ordering_org_id": hubei.first.id, "ordering_practitioner_id": hubei.doctor.id,
                             "category": "LAB", "item": "HBA1C", "status": "final"}
    assert outbox.deliver_pending(session, HANDLERS) >= 1
    doctor = notifications.messages_to(session, "practitioner", hubei.doctor.id)
    patient = notifications.messages_to(session, "patient", row.patient_id)
    assert len(doctor) == len(patient) == 1
    assert doctor[0].title["zh"] == "检查检验结果已出" and "糖化血红蛋白" in doctor[0].body["zh"]
    assert "7.2" not in doctor[0].body["zh"] + doctor[0].body["en"]
    fix = oru(control="C-note2", filler="F-note", status="C", obx_status="C",
              values=(("4548-4", "糖化血红蛋白", "6.9", "%", "4.0-6.0", "H"),))
    send(session, hubei.admin_first, fix)
    outbox.deliver_pending(session, HANDLERS)
    assert notifications.messages_to(session, "practitioner", hubei.doctor.id)[-1].title["zh"] == "检查检验结果已更正"


def test_a_preliminary_report_notifies_nobody_and_an_unknown_doctor_means_the_ordering_desk(session, hubei):
    send(session, hubei.admin_first, oru(control="C-pre", filler="F-pre", status="P", obx_status="P"))
    assert count(session, outbox.OutboxEvent, outbox.OutboxEvent.topic == "results.available") == 0
    report = send(session, hubei.admin_first, oru(control="C-desk", filler="F-desk", provider="D9999^王^五",
                                                  orc_facility="武汉大学人民医院^^420100002"))
    assert any(w["code"] == "RES-213" and w["field"] == "OBR-16" for w in report["warnings"])
    outbox.deliver_pending(session, HANDLERS)
    assert len(notifications.messages_to(session, "org", hubei.renmin.id)) == 1


# -- the ingestion log ------------------------------------------------------------------------------

def test_the_log_shows_an_organisation_its_own_messages_and_no_content(session, hubei):
    mine = send(session, hubei.admin_first, oru(control="C-log", filler="F-log"))
    send(session, hubei.admin_renmin, sample("oru_r01_ct_report.hl7"))
    page = ingest_log.list_messages(session, hubei.admin_first)
    assert [m.id for m in page.items] == [mine["message_id"]] and page.total == 1
    assert page.items[0].report["created"]["Observation"] == 2 and not hasattr(page.items[0], "content_enc")
    assert ingest_log.get_message(session, hubei.admin_first, mine["message_id"]).control_id == "C-log"
    with pytest.raises(NotFound):
        ingest_log.get_message(session, hubei.admin_renmin, mine["message_id"])
    assert ingest_log.list_messages(session, SYS, status="accepted").total == 2
