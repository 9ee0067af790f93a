"""Reference data on the database: EQA results recorded one at a time or imported (JSON rows,
CSV in UTF-8 or GB18030) by the commission, all or none with a report by row and code;
facilities' local code maps set, replaced and listed by their administrators; who may do
what, and the audit."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from tests.factories import SYS
from tests.referrals.conftest import staff

from healthgrid.errors import HealthGridError
from healthgrid.results import reference
from healthgrid.results.catalogue import load_catalogue
from healthgrid.results.models import Eqa, LocalCode
from healthgrid.security import service as security
from healthgrid.security.models import AuditEvent

from .world_recognition import make_world


def commission(session, division_id: int, name: str = "qc-commission"):
    user = security.create_user(session, SYS, username=name, display_name="卫健委质控", password="Bureau-pass-123",
                                grants=[security.parse_grant("commission_admin", "division", division_id)])
    return security.actor_for(session, user, surface="api", client=None, mfa=True)


@pytest.fixture
def w(session):
    return make_world(session, eqa_years=())


def eqa_rows(session) -> list[tuple]:
    return session.execute(select(Eqa.lab_org_id, Eqa.item, Eqa.year, Eqa.passed, Eqa.provider)
                           .order_by(Eqa.lab_org_id, Eqa.item, Eqa.year)).all()


def test_the_commission_records_and_imports_a_qc_centres_list(session, w):
    qc = commission(session, w.region.province.id)
    one = reference.record_eqa(session, qc, lab_org_id=w.city_hospital.id, item="GLU", year=2026, passed=True,
                               provider="省临床检验中心")
    assert (one.status, one.created, one.updated, one.ignored) == ("accepted", 1, 0, 0)
    csv = ("lab_code,item,year,result,provider\n"
           f"{w.city_hospital.code},GLU,2026,不合格,省临床检验中心\n"  # changed: updated
           f"{w.city_hospital.code},K,2026,合格,\n"
           f"{w.region.county_hospital.code},CBC,2025,passed,国家卫健委临检中心\n"
           f"{w.region.county_hospital.code},CBC,2025,passed,国家卫健委临检中心\n")  # listed twice: ignored
    report = reference.import_eqa(session, qc, records=reference.parse_eqa_csv(csv.encode("gb18030")),
                                  provider="省临床检验中心")
    assert (report.created, report.updated, report.ignored, report.rows) == (2, 1, 1, 4)
    assert eqa_rows(session) == [
        (w.region.county_hospital.id, "CBC", 2025, True, "国家卫健委临检中心"),
        (w.city_hospital.id, "GLU", 2026, False, "省临床检验中心"),
        (w.city_hospital.id, "K", 2026, True, "省临床检验中心")]
    again = reference.import_eqa(session, qc, records=reference.parse_eqa_csv(csv), provider="省临床检验中心")
    assert (again.created, again.updated, again.ignored) == (0, 0, 4)
    listed = reference.list_eqa(session, qc, item="CBC")
    assert [(e.lab_name, e.year, e.passed) for e in listed] == [("永宁县人民医院", 2025, True)]


@pytest.mark.parametrize(("record", "code", "field"), [
    ({"lab_code": "NOPE", "item": "GLU", "year": 2026, "passed": True}, "RES-102", "lab_code"),
    ({"item": "GLU", "year": 2026, "passed": True}, "RES-102", "lab_code"),
    ({"lab_code": "{lab}", "item": "XYZ", "year": 2026, "passed": True}, "RES-103", "item"),
    ({"lab_code": "{lab}", "item": "GLU", "year": 1999, "passed": True}, "RES-104", "year"),
    ({"lab_code": "{lab}", "item": "GLU", "year": "20x6", "passed": True}, "RES-104", "year"),
    ({"lab_code": "{lab}", "item": "GLU", "year": "²⁰²⁶", "passed": True}, "RES-104", "year"),
    ({"lab_code": "{lab}", "item": "GLU", "year": 2026, "result": "maybe"}, "RES-105", "result"),
    ({"lab_code": "{lab}", "item": "GLU", "year": 2026, "passed": True, "provider": "x" * 121}, "RES-105", "provider"),
])
def test_a_bad_record_refuses_the_whole_import_and_names_row_and_field(session, w, record, code, field):
    qc = commission(session, w.region.province.id)
    good = {"lab_code": w.city_hospital.code, "item": "K", "year": 2026, "passed": True}
    record = {k: (w.city_hospital.code if v == "{lab}" else v) for k, v in record.items()}
    with pytest.raises(HealthGridError) as exc:
        reference.import_eqa(session, qc, records=[good, record])
    assert exc.value.code == "RES-100"
    report = exc.value.detail["report"]
    assert report["status"] == "rejected" and report["errors_by_code"] == {code: 1}
    assert report["errors"][0]["row"] == 2 and report["errors"][0]["field"] == field
    assert eqa_rows(session) == []


def test_the_same_lab_item_and_year_twice_with_two_results_is_refused(session, w):
    qc = commission(session, w.region.province.id)
    rows = [{"lab_org_id": w.city_hospital.id, "item": "K", "year": 2026, "result": r} for r in ("合格", "不合格")]
    with pytest.raises(HealthGridError) as exc:
        reference.import_eqa(session, qc, records=rows)
    assert exc.value.detail["report"]["errors_by_code"] == {"RES-106": 1} and eqa_rows(session) == []


def test_eqa_is_the_commissions_over_its_divisions_only(session, w):
    county_qc = commission(session, w.region.county.id, "county-qc")
    admin = staff(session, w.city_hospital.id, username="city-admin", role="facility_admin")
    for actor in (county_qc, admin):  # the city hospital is outside the county; a facility grades no lab
        with pytest.raises(HealthGridError) as exc:
            reference.record_eqa(session, actor, lab_org_id=w.city_hospital.id, item="GLU", year=2026, passed=True)
        assert exc.value.code == "RES-100"
        assert exc.value.detail["report"]["errors_by_code"] == {"RES-107": 1}
    assert eqa_rows(session) == []
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.reason == "RES-107")) == 2
    reference.record_eqa(session, county_qc, lab_org_id=w.region.township_centre.id, item="GLU", year=2026,
                         passed=True)
    assert [e.lab_org_id for e in reference.list_eqa(session, admin)] == []  # the city hospital's own only
    clinician = w.doctor
    with pytest.raises(HealthGridError) as exc:
        reference.list_eqa(session, clinician)
    assert exc.value.code == "SEC-102"


@pytest.mark.parametrize(("data", "code"), [
    (b"lab,item,year,result\nX,GLU,2026,passed\n", "RES-108"),
    (b"", "RES-108"),
    (b"\xff\xfe\x00l\x00a", "RES-108"),
    (b'lab_code,item,year,result\n"unclosed,GLU', None),
])
def test_an_unreadable_csv_is_refused(data, code):
    if code is None:
        assert reference.parse_eqa_csv(data) == [{"lab_code": "unclosed,GLU"}]
        return
    with pytest.raises(HealthGridError) as exc:
        reference.parse_eqa_csv(data)
    assert exc.value.code == code


def test_import_size_is_bounded(session, w):
    qc = commission(session, w.region.province.id)
    with pytest.raises(HealthGridError) as exc:
        reference.import_eqa(session, qc, records=[])
    assert exc.value.code == "RES-101"


def test_a_facility_maps_its_local_codes_and_replaces_the_map(session, w):
    admin = staff(session, w.city_hospital.id, username="lis-admin", role="facility_admin")
    org = w.city_hospital.id
    first = reference.set_local_codes(session, admin, org_id=org, codes=[("1001", "GLU"), ("1002", "K"),
                                                                        ("1002", "K")])
    assert (first.created, first.updated, first.ignored, first.deleted) == (2, 0, 1, 0)
    second = reference.set_local_codes(session, admin, org_id=org, codes=[("1001", "HBA1C"), ("2001", "CBC")],
                                       replace=True)
    assert (second.created, second.updated, second.ignored, second.deleted) == (1, 1, 0, 1)
    assert [(c.local_code, c.item) for c in reference.list_local_codes(session, admin, org_id=org)] == [
        ("1001", "HBA1C"), ("2001", "CBC")]
    mapping = reference.local_code_map(session, org)
    assert mapping.item("2001") == "CBC" and "1002" not in mapping
    audits = session.execute(select(AuditEvent.action, AuditEvent.resource_type).where(
        AuditEvent.username == "lis-admin").order_by(AuditEvent.id)).all()
    assert audits == [("update", "LocalCodeMap"), ("update", "LocalCodeMap"), ("search", "LocalCodeMap")]


@pytest.mark.parametrize(("codes", "code"), [
    ([("", "GLU")], "RES-110"), ([("x" * 61, "GLU")], "RES-110"), ([("A\x01", "GLU")], "RES-110"),
    ([("1001", "NOPE")], "RES-111"), ([("1001", "GLU"), ("1001", "K")], "RES-112"),
])
def test_a_bad_local_code_refuses_the_whole_map(session, w, codes, code):
    admin = staff(session, w.city_hospital.id, username="lis-admin2", role="facility_admin")
    with pytest.raises(HealthGridError) as exc:
        reference.set_local_codes(session, admin, org_id=w.city_hospital.id, codes=[("0001", "K"), *codes])
    assert exc.value.code == "RES-113" and exc.value.detail["report"]["errors_by_code"] == {code: 1}
    assert session.scalar(select(func.count()).select_from(LocalCode)) == 0


def test_local_codes_are_the_facilitys_own(session, w):
    admin = staff(session, w.city_hospital.id, username="lis-admin3", role="facility_admin")
    for call in (lambda: reference.set_local_codes(session, admin, org_id=w.hosp_b.id, codes=[("1", "GLU")]),
                 lambda: reference.list_local_codes(session, admin, org_id=w.hosp_b.id)):
        with pytest.raises(HealthGridError) as exc:
            call()
        assert exc.value.code == "SEC-103"
    with pytest.raises(HealthGridError) as exc:
        reference.set_local_codes(session, SYS, org_id=2**31 - 1, codes=[("1", "GLU")])
    assert exc.value.code == "RES-115"
    with pytest.raises(HealthGridError) as exc:
        reference.set_local_codes(session, admin, org_id=w.city_hospital.id, codes=[])
    assert exc.value.code == "RES-114"
    assert session.scalar(select(func.count()).select_from(LocalCode)) == 0


def test_a_deployment_may_hand_the_sessions_its_own_catalogue(session):
    own = load_catalogue().with_regions([{"code": "910000", "zh": "试点", "mark": "试HR", "levels": {"L2": ["K"]}}])
    session.info[reference.CATALOGUE_KEY] = own
    try:
        assert reference.catalogue_of(session).recognised_items("910102", "L2") == frozenset({"K"})
    finally:
        session.info.pop(reference.CATALOGUE_KEY)
    assert "GLU" in reference.catalogue_of(session).recognised_items("910102", "L2")
