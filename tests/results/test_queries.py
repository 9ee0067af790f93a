"""Reads of shared results (results.queries, results.timeline): who may read a patient's
results and what the audit trail keeps; searches by code across LOINC, catalogue items and
local codes; the timeline grouped by day and facility; the trends across facilities with
units converted; the patient page's timeline entries."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from sqlalchemy import select
from tests.factories import SYS
from tests.results.results_world import LOINC, at, make_world

from healthgrid.errors import Forbidden, Invalid, NotFound
from healthgrid.patients import merging
from healthgrid.patients import service as patients
from healthgrid.results import queries, timeline
from healthgrid.results.queries import CodeFilter, ResultQuery
from healthgrid.security.models import AuditEvent


@pytest.fixture
def world(session):
    return make_world(session)


def trail(session, resource_type: str, **where):
    stmt = select(AuditEvent).where(AuditEvent.resource_type == resource_type)
    for key, value in where.items():
        stmt = stmt.where(getattr(AuditEvent, key) == value)
    return session.scalars(stmt.order_by(AuditEvent.id)).all()


# -- who reads ---------------------------------------------------------------------------------

def test_a_doctor_with_a_care_relationship_reads_reports_from_every_facility(session, world):
    r = world.results
    found = queries.search_reports(session, world.doctor, ResultQuery(patient_id=world.patient))
    assert found.total == 8
    assert {v.issuer_org_id for v in found.items} == {r.hospital_id, r.township_id}
    assert [v.issued_at for v in found.items] == sorted((v.issued_at for v in found.items), reverse=True)
    chem = next(v for v in found.items if v.id == r.reports["chem"])
    assert [o.display for o in chem.observations] == ["肌酐", "葡萄糖", "葡萄糖", "乙肝表面抗原"]
    assert chem.patient_name == "欧阳秀英"  # clinicians see names unmasked
    ct = queries.get_report(session, world.doctor, r.reports["ct"])
    assert [s.study_uid for s in ct.studies] == [r.study_uid] and ct.conclusion == "颅内未见明显异常。"
    searched = trail(session, "DiagnosticReport", patient_id=world.patient, action="search")
    viewed = trail(session, "DiagnosticReport", patient_id=world.patient, action="view")
    assert searched[-1].outcome == "success" and searched[-1].username == world.doctor.username
    assert viewed[-1].resource_id == str(r.reports["ct"])


def test_a_stranger_is_refused_and_the_refusal_audited_until_breaking_the_glass(session, world):
    with pytest.raises(Forbidden) as refused:
        queries.get_report(session, world.stranger, world.results.reports["ct"])
    assert refused.value.code == "SEC-104"
    with pytest.raises(Forbidden):
        queries.search_reports(session, world.stranger, ResultQuery(patient_id=world.patient))
    session.commit()  # a refusal's audit entry is written after its rollback
    denied = trail(session, "DiagnosticReport", patient_id=world.patient, outcome="denied")
    assert {e.action for e in denied} == {"view", "search"} and {e.reason for e in denied} == {"SEC-104"}
    glass = dataclasses.replace(world.stranger, break_glass="急诊昏迷患者，需查看既往检验结果")
    assert queries.get_report(session, glass, world.results.reports["ct"]).id == world.results.reports["ct"]
    flagged = trail(session, "DiagnosticReport", patient_id=world.patient, outcome="success",
                    username=world.stranger.username)
    assert flagged[-1].break_glass == "急诊昏迷患者，需查看既往检验结果"


def test_the_issuing_facility_reads_back_what_it_issued_and_nothing_else(session, world):
    r = world.results
    own = queries.get_report(session, world.lis, r.reports["cbc"])
    assert own.issuer_org_id == r.hospital_id
    with pytest.raises(Forbidden) as refused:
        queries.get_report(session, world.lis, r.reports["chem"])  # the township centre's
    assert refused.value.code == "SEC-102"
    listed = queries.search_reports(session, world.lis, ResultQuery(), limit=100)
    assert {v.issuer_org_id for v in listed.items} == {r.hospital_id}
    assert r.other_report in {v.id for v in listed.items}  # every patient's, as issued there
    mine = queries.search_reports(session, world.township_lis, ResultQuery(patient_id=world.patient))
    assert {v.id for v in mine.items} == {r.reports["hba1c1"], r.reports["chem"]}


def test_a_search_names_the_patient(session, world):
    with pytest.raises(Invalid) as refused:
        queries.search_observations(session, world.doctor, ResultQuery(categories=["LAB"]))
    assert refused.value.code == "RES-150" and refused.value.detail == {"field": "patient"}


def test_a_resident_reads_their_own_results_only(session, world):
    mine = queries.search_observations(session, world.resident, ResultQuery(patient_id=world.patient))
    assert mine.total == 11
    with pytest.raises(Forbidden):
        queries.get_report(session, world.resident, world.results.other_report)


def test_names_are_masked_for_readers_without_pii_unmasked(session, world):
    seen = queries.get_observations(session, world.nurse, [world.results.observations["hgb"]])
    assert seen[0].patient_name == "欧阳**"


def test_results_of_a_merged_record_are_the_survivors(session, world):
    survivor = patients.register_patient(session, SYS, org_id=world.region.village_clinic.id, data=patients.PatientIn(
        name="欧阳秀瑛", sex="F", birth_date=date(1961, 8, 3), mrn="VC-0001")).patient.id
    merging.merge_patients(session, SYS, survivor_id=survivor, loser_id=world.patient, reason="同一人，重复建档")
    found = queries.search_reports(session, world.doctor, ResultQuery(patient_id=survivor))
    assert found.total == 8 and {v.patient_id for v in found.items} == {survivor}
    assert queries.search_reports(session, world.doctor, ResultQuery(patient_id=world.patient)).total == 8


# -- searching ------------------------------------------------------------------------------------

def _obs_ids(session, actor, **kw) -> set[int]:
    return {v.id for v in queries.search_observations(session, actor, ResultQuery(**kw), limit=100).items}


def test_codes_are_searched_as_sent_and_through_the_catalogue(session, world):
    o, p, doc = world.results.observations, world.patient, world.doctor
    hba1c = {o[f"hba1c{n}"] for n in range(4)}
    # LOINC finds the township's local-coded HbA1c too: it is mapped to the item
    assert _obs_ids(session, doc, patient_id=p, codes=[CodeFilter(code="4548-4", systems=queries.LOINC_SYSTEMS,
                                                                  items=frozenset({"HBA1C"}))]) == hba1c
    assert _obs_ids(session, doc, patient_id=p, codes=[CodeFilter(code="4548-4", systems=(LOINC,))]) == hba1c - {
        o["hba1c1"]}
    local = CodeFilter(code="CR01", local=True, issuer_org_id=world.results.township_id)
    assert _obs_ids(session, doc, patient_id=p, codes=[local]) == {o["crea_mgdl"]}
    assert _obs_ids(session, doc, patient_id=p, codes=[CodeFilter(code="CR01", local=True,
                                                                  issuer_org_id=world.results.hospital_id)]) == set()
    assert _obs_ids(session, doc, patient_id=p, codes=[CodeFilter(items=frozenset({"CREA"}), by_code=False)]) == {
        o["crea_mgdl"], o["crea"]}


def test_filters_by_category_status_issuer_and_dates(session, world):
    r, p, doc = world.results, world.patient, world.doctor
    rad = queries.search_reports(session, doc, ResultQuery(patient_id=p, categories=["RAD"]))
    assert [v.id for v in rad.items] == [r.reports["ct"]]
    assert _obs_ids(session, doc, patient_id=p, statuses=["cancelled"]) == {r.observations["cancelled"]}
    township = queries.search_reports(session, doc, ResultQuery(patient_id=p, performer_org_id=r.township_id))
    assert {v.id for v in township.items} == {r.reports["hba1c1"], r.reports["chem"]}
    spring = queries.search_reports(session, doc, ResultQuery(patient_id=p, issued_since=at("2025-04-01", 0),
                                                              issued_until=at("2025-05-01", 0)))
    assert {v.id for v in spring.items} == {r.reports["hba1c1"], r.reports["chem"]}
    paged = queries.search_reports(session, doc, ResultQuery(patient_id=p), offset=5, limit=5)
    assert paged.total == 8 and len(paged.items) == 3
    with pytest.raises(NotFound):
        queries.get_report(session, doc, 2**31 - 1)


# -- the timeline and trends -------------------------------------------------------------------------

def test_the_timeline_groups_reports_by_day_then_facility(session, world):
    r = world.results
    found = timeline.patient_results(session, world.doctor, world.patient)
    assert [g.day.isoformat() for g in found.days] == ["2025-10-20", "2025-07-15", "2025-04-12", "2025-01-10"]
    july = found.days[1]
    assert [f.org_id for f in july.facilities] == [r.hospital_id]
    assert {x.id for x in july.facilities[0].reports} == {r.reports["ct"], r.reports["crea"], r.reports["hba1c2"]}
    april = found.days[2].facilities[0]
    assert april.org_id == r.township_id and april.abnormal == 3
    assert found.reports == 8 and not found.truncated
    audit = trail(session, "ResultTimeline", patient_id=world.patient)
    assert audit[-1].action == "view" and audit[-1].outcome == "success"


def test_trends_convert_units_across_facilities_and_keep_each_labs_flag(session, world):
    found = timeline.patient_results(session, world.doctor, world.patient)
    keys = [t.key for t in found.trends]
    assert keys[:2] == ["HBA1C", "CREA"]  # preferred first; GLU has one point only
    a1c = found.trends[0]
    assert a1c.unit == "%" and [round(p.value, 2) for p in a1c.points] == [8.1, 7.46, 6.9, 5.8]
    assert [p.flag for p in a1c.points] == ["H", "H", "H", "N"] and a1c.points[1].reported == "58 mmol/mol"
    assert a1c.band == (4.0, 6.0)
    assert [f[0] for f in a1c.facilities] == [world.results.hospital_id, world.results.township_id]
    crea = found.trends[1]
    assert [round(p.value, 1) for p in crea.points] == [114.9, 96.0]
    glucose = timeline.patient_trend(session, world.doctor, world.patient, "GLU")
    assert [round(p.value, 2) for p in glucose.points] == [6.99]  # the cancelled 999 is left out
    hgb = timeline.patient_trend(session, world.doctor, world.patient, "HGB")  # a CBC member, by its LOINC
    assert [p.value for p in hgb.points] == [128] and hgb.band == (115, 150)


def test_a_trend_of_an_unknown_item_is_refused(session, world):
    with pytest.raises(Invalid) as refused:
        timeline.patient_trend(session, world.doctor, world.patient, "NOPE")
    assert refused.value.code == "RES-155"
    with pytest.raises(Invalid) as bad:
        timeline.patient_results(session, world.doctor, world.patient, categories=["XRAY"])
    assert bad.value.code == "RES-153"


def test_the_timeline_is_refused_to_a_stranger(session, world):
    with pytest.raises(Forbidden):
        timeline.patient_results(session, world.stranger, world.patient)
    with pytest.raises(Forbidden):
        timeline.patient_trend(session, world.lis, world.patient, "HBA1C")


def test_reports_appear_on_the_patients_own_timeline(session, world):
    entries = patients.patient_timeline(session, world.doctor, world.patient)
    results = [e for e in entries if e.kind == "result"]
    assert len(results) == 8
    assert {e.detail["report_id"] for e in results} == set(world.results.reports.values())
    assert next(e for e in results if e.detail["report_id"] == world.results.reports["ct"]).detail["kind"] == \
        "头部CT平扫"
