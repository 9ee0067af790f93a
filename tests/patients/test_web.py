"""Pages of the master patient index with real users (``secure_client``, logged in through the
pages): the search masks for a nurse and explains a bad value, registration creates, links
or queues a review and shows coded errors without writing anything, the record page with
its identifiers, next of kin and timeline, the steward's review queue with the side-by-side
comparison, merge and unmerge, and breaking the glass when there is no care relationship."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.factories import SYS, resident_id
from tests.security.conftest import PASSWORD, world  # noqa: F401 (world: a fixture)
from tests.security.test_web import _csrf, login

from healthgrid.patients import merging
from healthgrid.patients import service as patients
from healthgrid.patients import web as patients_web
from healthgrid.patients.models import MatchReview, Merge, Patient
from healthgrid.security import service as security
from healthgrid.security.domain import Role, ScopeKind
from healthgrid.security.models import AuditEvent
from healthgrid.web.i18n import MESSAGES

HTML = {"accept": "text/html"}
BORN = date(1950, 1, 2)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _register(session, org, *, name="王建国", phone="13711112222", rid=None, mrn=None, division=None,
              kin=None, sex="M", born=BORN):
    data = patients.PatientIn(name=name, sex=sex, birth_date=born, phone=phone, resident_id=rid, mrn=mrn,
                              division_id=division, kin=kin or [])
    reg = patients.register_patient(session, SYS, org_id=org.id, data=data)
    session.commit()
    return reg


def _pair_in_review(session, w):
    """Two records of (perhaps) one man at county A's hospital: a review is queued."""
    first = _register(session, w.region.county_hospital, division=w.region.village.id, mrn="ZY0001")
    twin = _register(session, w.region.county_hospital, phone="13733334444")
    assert twin.outcome == "review"
    return first.patient.id, twin.patient.id, twin.reviews[0]


def _patient_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Patient))


# -- search ----------------------------------------------------------------------------------


def test_search_page_renders_the_form_only_in_chinese_and_english(secure_client, world):  # noqa: F811
    login(secure_client, world, Role.CLINICIAN)
    zh = secure_client.get("/patients", headers=HTML)
    assert zh.status_code == 200
    nav = re.search(r'<nav class="site-nav".*?</nav>', zh.text, re.S).group(0)
    assert 'href="/patients"' in nav and "患者主索引" in nav and "待审核匹配" not in nav
    assert "按证件号码" in zh.text and "电子健康卡" in zh.text and "按姓名与出生日期" in zh.text
    assert 'id="results"' not in zh.text and "alert--error" not in zh.text
    assert 'href="/patients/new"' in zh.text
    en = secure_client.get("/patients?lang=en", headers=HTML)
    assert "Patient index" in en.text and "E-health card" in en.text and "By phone" in en.text
    assert "患者" not in text_of(en.text).replace("中文", "")


def test_search_finds_by_name_pinyin_identifier_and_phone_and_masks_for_a_nurse(secure_client, session,
                                                                                 world):  # noqa: F811
    rid = resident_id(BORN, seq=123, county="910102")
    reg = _register(session, world.region.county_hospital, rid=rid, division=world.region.village.id)
    _register(session, world.region.county_hospital, name="赵丽", sex="F", born=date(1990, 11, 23),
              phone="13900001111")
    login(secure_client, world, Role.NURSE)
    page = secure_client.get("/patients?name=王建国&birth_date=1950-01-02", headers=HTML)
    assert page.status_code == 200
    row = re.search(rf'<tr data-patient-id="{reg.patient.id}".*?</tr>', page.text, re.S).group(0)
    assert "王**" in row and "王建国" not in row
    assert rid[:6] + "********" + rid[-4:] in row and rid not in row
    assert "137****2222" in row and "13711112222" not in row
    assert f'href="/patients/{reg.patient.id}"' in row and "桃源村" in row
    assert "赵" not in page.text and "已脱敏" in page.text
    for query in ("name=wang+jianguo", f"kind=resident_id&identifier={rid}", "phone=137-1111-2222",
                  "name=王建国&sex=M"):
        found = secure_client.get(f"/patients?{query}", headers=HTML)
        assert found.text.count("<tr data-patient-id=") == 1, query
    none = secure_client.get("/patients?name=王建国&sex=F", headers=HTML)
    assert "没有找到符合条件的居民" in none.text


def test_a_clinician_sees_the_results_unmasked(secure_client, session, world):  # noqa: F811
    rid = resident_id(BORN)
    _register(session, world.region.county_hospital, rid=rid)
    login(secure_client, world, Role.CLINICIAN)
    page = secure_client.get(f"/patients?kind=resident_id&identifier={rid}", headers=HTML)
    assert "王建国" in page.text and rid in page.text and "13711112222" in page.text


@pytest.mark.parametrize("query, code, field", [
    ("kind=resident_id&identifier=123456", "SEC-030", "identifier"),
    ("kind=resident_id&identifier=910102195001021230", "SEC-033", "identifier"),
    ("kind=health_card&identifier=ab", "PAT-006", "identifier"),
    ("kind=passport&identifier=E1234567", "HG-422", "kind"),
    ("phone=12345", "PAT-005", "phone"),
    ("birth_date=1950-13-01", "HG-422", "birth_date"),
    ("sex=M", "PAT-013", "query"),
])
def test_a_bad_search_value_shows_its_coded_error_next_to_the_form(secure_client, world, query, code,  # noqa: F811
                                                                   field):
    login(secure_client, world, Role.NURSE)
    page = secure_client.get(f"/patients?{query}", headers=HTML)
    assert page.status_code == 422
    assert f'data-error-code="{code}"' in page.text and f'data-error-field="{field}"' in page.text
    assert 'id="results"' not in page.text
    assert 'class="patient-search"' in page.text  # the form is still there, values kept
    if field not in ("query", "kind"):
        assert f'id="e-{field}"' in page.text and 'aria-invalid="true"' in page.text
    en = secure_client.get(f"/patients?{query}&lang=en", headers=HTML)
    assert f'data-error-code="{code}"' in en.text


def test_roles_without_patient_rights_get_no_search_and_no_link(secure_client, world):  # noqa: F811
    login(secure_client, world, Role.FACILITY_ADMIN)
    home = secure_client.get("/", headers=HTML)
    assert 'href="/patients"' not in home.text
    page = secure_client.get("/patients?name=王建国", headers=HTML)
    assert page.status_code == 403 and "SEC-102" in page.text
    assert secure_client.get("/patients/new", headers=HTML).status_code == 403


# -- registration ----------------------------------------------------------------------------


def _form(page_html: str, **fields) -> dict:
    data = {"csrf_token": _csrf(page_html), "name": "", "sex": "", "birth_date": "", "kin_relationship": "other"}
    data.update(fields)
    return data


def test_registration_creates_links_and_queues_a_review(secure_client, session, world):  # noqa: F811
    login(secure_client, world, Role.CLINICIAN)
    form = secure_client.get("/patients/new", headers=HTML)
    assert form.status_code == 200
    assert "永宁县人民医院" in form.text and 'name="org_id"' in form.text and "联系人" in form.text
    rid = resident_id(BORN)
    created = secure_client.post("/patients/new", headers=HTML, follow_redirects=False, data=_form(
        form.text, name="王建国", sex="M", birth_date="1950-01-02", resident_id=rid, phone="13711112222",
        mrn="ZY0001", division_code=world.region.village.code, address_line="桃源村3组12号",
        kin_name="王小红", kin_relationship="child", kin_phone="13800001111"))
    assert created.status_code == 303, created.text
    pid = int(created.headers["location"].rsplit("/", 1)[1])
    page = secure_client.get(created.headers["location"], headers=HTML)
    assert 'data-flash="ok"' in page.text and f"已为该居民建立新档案（#{pid}）" in page.text
    assert "桃源村3组12号" in page.text and "王小红" in page.text and "子女" in page.text
    again = secure_client.get(created.headers["location"], headers=HTML)
    assert "data-flash" not in again.text  # a notice is shown once
    # the same resident registered again by ID number: linked, not duplicated
    linked = secure_client.post("/patients/new", headers=HTML, data=_form(
        form.text, name="王建国", resident_id=rid))
    assert linked.status_code == 200 and linked.url.path == f"/patients/{pid}"
    assert "已关联到已有档案" in linked.text and "身份证号" in linked.text
    # a namesake born the same day with another phone: a new record, and a pair to review
    twin = secure_client.post("/patients/new", headers=HTML, data=_form(
        form.text, name="王建国", sex="M", birth_date="1950-01-02", phone="13733334444"))
    assert twin.url.path != f"/patients/{pid}"
    assert "条疑似重复的档案已提交人工审核" in twin.text
    en = secure_client.get("/patients/new?lang=en", headers=HTML)
    assert "Register a patient" in en.text and "Next of kin" in en.text and "Registering facility" in en.text


@pytest.mark.parametrize("fields, code, field", [
    ({"name": "王建国", "resident_id": "910102195001021230"}, "SEC-033", "resident_id"),
    ({"name": "王建国", "resident_id": resident_id(BORN), "birth_date": "1951-01-02"}, "PAT-007", "birth_date"),
    ({"name": "王建国", "resident_id": resident_id(BORN), "sex": "F"}, "PAT-008", "sex"),
    ({"name": "王建国", "birth_date": "1950-01-02", "resident_id": ""}, None, None),
    ({"name": "Wang2", "birth_date": "1950-01-02"}, "PAT-001", "name"),
    ({"name": "王建国", "birth_date": "2999-01-01"}, "PAT-004", "birth_date"),
    ({"name": "王建国", "birth_date": "1950-02-30"}, "HG-422", "birth_date"),
    ({"name": "王建国", "phone": "12345"}, "PAT-005", "phone"),
    ({"name": "王建国", "division_code": "999999999999"}, "REG-001", "division_code"),
    ({"name": "王建国", "kin_name": "", "kin_phone": "13800001111"}, "PAT-001", "kin_name"),
    ({"name": "王建国", "kin_name": "王小红", "kin_relationship": "boss"}, "PAT-012", "kin_relationship"),
    ({"name": "王建国", "mrn": "病案#1"}, "PAT-006", "mrn"),
])
def test_registration_errors_are_shown_at_the_field_and_nothing_is_written(
        secure_client, session, world, fields, code, field):  # noqa: F811
    login(secure_client, world, Role.NURSE)
    form = secure_client.get("/patients/new", headers=HTML)
    before = _patient_count(session)
    answer = secure_client.post("/patients/new", headers=HTML, follow_redirects=False, data=_form(form.text, **fields))
    if code is None:  # the control case: the same form without the mistake registers
        assert answer.status_code == 303
        return
    assert answer.status_code in (404, 422), answer.text
    assert f'data-error-code="{code}"' in answer.text and f'data-error-field="{field}"' in answer.text
    assert f'id="e-{field}"' in answer.text and 'aria-invalid="true"' in answer.text
    assert f'value="{fields["name"]}"' in answer.text  # what was typed is kept
    assert _patient_count(session) == before


def test_registration_needs_the_form_token_and_a_facility(secure_client, session, world):  # noqa: F811
    login(secure_client, world, Role.CLINICIAN)
    forged = secure_client.post("/patients/new", headers=HTML, data={"name": "王建国", "csrf_token": "x"})
    assert forged.status_code == 403 and "SEC-108" in forged.text


def test_a_user_without_a_facility_cannot_register(secure_client, session, world):  # noqa: F811
    security.create_user(session, SYS, username="county-nurse", display_name="县护士", password=PASSWORD,
                         grants=[security.GrantSpec(Role.NURSE, ScopeKind.DIVISION, world.region.county.id)])
    session.commit()
    answer = secure_client.post("/login", headers=HTML, data={
        "username": "county-nurse", "password": PASSWORD,
        "csrf_token": _csrf(secure_client.get("/login", headers=HTML).text)})
    assert answer.status_code == 200
    page = secure_client.get("/patients/new", headers=HTML)
    assert "data-no-org" in page.text and "<form class=\"card register-form\"" not in page.text


# -- the record --------------------------------------------------------------------------------


def test_the_record_shows_demographics_identifiers_kin_and_the_timeline(secure_client, session,
                                                                         world):  # noqa: F811
    rid = resident_id(BORN)
    reg = _register(session, world.region.county_hospital, rid=rid, mrn="ZY0001", division=world.region.village.id,
                    kin=[patients.KinIn("王小红", "child", "13800001111")])
    _register(session, world.region.township_centre, rid=rid, mrn="QH-77")  # linked: a second MRN
    login(secure_client, world, Role.CLINICIAN)
    page = secure_client.get(f"/patients/{reg.patient.id}", headers=HTML)
    assert page.status_code == 200
    body = text_of(page.text)
    assert "王建国" in body and "wang jian guo" in body and "男" in body and "1950-01-02" in body
    assert rid in body and "13711112222" in body and "桃源村" in body
    assert "ZY0001" in body and "QH-77" in body and "永宁县人民医院" in body and "清河镇卫生院" in body
    assert "病案号" in body and "王小红" in body and "子女" in body
    assert page.text.count('class="timeline__entry"') >= 3
    assert "在永宁县人民医院建档" in body and "清河镇卫生院分配了病案号" in body
    assert 'id="merges"' not in page.text  # a clinician does not merge
    en = secure_client.get(f"/patients/{reg.patient.id}?lang=en", headers=HTML)
    assert "Demographics" in en.text and "Medical record number" in en.text and "Child" in en.text
    assert "Registered at 永宁县人民医院" in text_of(en.text)


def test_a_nurse_sees_the_record_masked(secure_client, session, world):  # noqa: F811
    rid = resident_id(BORN)
    reg = _register(session, world.region.county_hospital, rid=rid, kin=[patients.KinIn("王小红", "child")])
    login(secure_client, world, Role.NURSE)
    page = secure_client.get(f"/patients/{reg.patient.id}", headers=HTML)
    assert page.status_code == 200 and "data-masked" in page.text
    assert rid not in page.text and "137****2222" in page.text and "王**" in page.text


def test_a_merged_away_record_shows_its_survivor_with_a_notice(secure_client, session, world):  # noqa: F811
    keep, gone, _review = _pair_in_review(session, world)
    merging.merge_patients(session, SYS, survivor_id=keep, loser_id=gone, reason="same man, checked")
    session.commit()
    login(secure_client, world, Role.CLINICIAN)
    page = secure_client.get(f"/patients/{gone}", headers=HTML)
    assert page.status_code == 200
    assert f'data-patient-id="{keep}"' in page.text and f'data-followed="{gone}"' in page.text
    assert f"记录 #{gone} 已合并到本记录 #{keep}" in page.text and "data-merged-from" not in page.text
    survivor = secure_client.get(f"/patients/{keep}", headers=HTML)
    assert f'data-merged-from="{gone}"' in survivor.text and "data-followed" not in survivor.text
    assert 'data-kind="merged"' in survivor.text and "same man, checked" in survivor.text


def test_an_unknown_record_is_the_not_found_page(secure_client, world):  # noqa: F811
    login(secure_client, world, Role.CLINICIAN)
    page = secure_client.get("/patients/987654", headers=HTML)
    assert page.status_code == 404 and "PAT-010" in page.text and "没有这条患者记录" in page.text


# -- break the glass ---------------------------------------------------------------------------


def test_a_forbidden_read_offers_the_glass_and_the_glass_read_is_flagged(secure_client, session,
                                                                         world):  # noqa: F811
    stranger = _register(session, world.hosp_b, name="陈萍", sex="F", phone="13788889999").patient.id
    login(secure_client, world, Role.CLINICIAN)
    denied = secure_client.get(f"/patients/{stranger}", headers=HTML)
    assert denied.status_code == 403
    assert 'data-view="break-glass"' in denied.text and "陈萍" not in denied.text
    assert f'action="/patients/{stranger}/break-glass"' in denied.text
    short = secure_client.post(f"/patients/{stranger}/break-glass", headers=HTML,
                               data={"reason": "急诊", "csrf_token": _csrf(denied.text)})
    assert short.status_code == 403 and 'data-error-code="SEC-105"' in short.text and "陈萍" not in short.text
    assert "至少 10 个字" in short.text and 'aria-invalid="true"' in short.text
    reason = "昏迷患者急诊抢救，需要查看既往病史"
    glass = secure_client.post(f"/patients/{stranger}/break-glass", headers=HTML,
                               data={"reason": reason, "csrf_token": _csrf(denied.text)})
    assert glass.status_code == 200 and 'data-break-glass="true"' in glass.text
    assert "陈萍" in glass.text and "data-glass" in glass.text and reason in glass.text
    flagged = session.scalars(select(AuditEvent).where(AuditEvent.patient_id == stranger,
                                                       AuditEvent.break_glass.is_not(None))).all()
    assert {e.resource_type for e in flagged} == {"Patient", "PatientTimeline"}
    assert {e.break_glass for e in flagged} == {reason} and {e.purpose for e in flagged} == {"ETREAT"}
    assert {e.username for e in flagged} == {"u-clinician"}
    # the glass held for that page only
    assert secure_client.get(f"/patients/{stranger}", headers=HTML).status_code == 403


def test_a_nurse_cannot_break_the_glass(secure_client, session, world):  # noqa: F811
    stranger = _register(session, world.hosp_b, name="陈萍", sex="F", phone="13788889999").patient.id
    login(secure_client, world, Role.NURSE)
    denied = secure_client.get(f"/patients/{stranger}", headers=HTML)
    assert denied.status_code == 403 and "SEC-104" in denied.text and "break-glass" not in denied.text
    tried = secure_client.post(f"/patients/{stranger}/break-glass", headers=HTML,
                               data={"reason": "昏迷患者急诊抢救，需要查看既往病史", "csrf_token": _csrf(denied.text)})
    assert tried.status_code == 403 and "陈萍" not in tried.text


# -- the review queue, merge and unmerge ---------------------------------------------------------


def test_the_steward_compares_a_pair_and_merges_it(secure_client, session, world):  # noqa: F811
    first, twin, review_id = _pair_in_review(session, world)
    login(secure_client, world, Role.MPI_STEWARD)
    home = secure_client.get("/", headers=HTML)
    nav = re.search(r'<nav class="site-nav".*?</nav>', home.text, re.S).group(0)
    assert "待审核匹配" in nav and 'href="/patients"' not in nav
    queue = secure_client.get("/patients/reviews", headers=HTML)
    assert queue.status_code == 200
    row = re.search(rf'<tr data-review-id="{review_id}".*?</tr>', queue.text, re.S).group(0)
    assert f"#{twin}" in row and f"#{first}" in row and "王建国" in row and "<meter" in row
    page = secure_client.get(f"/patients/reviews/{review_id}", headers=HTML)
    assert page.status_code == 200
    assert f"新登记记录 #{twin}" in page.text and f"已有记录 #{first}" in page.text
    verdicts = dict(re.findall(r'data-field="(\w+)" data-level="\w+" data-verdict="(\w+)"', page.text))
    assert verdicts == {"name": "agree", "sex": "agree", "birth_date": "agree", "resident_id": "missing",
                        "phone": "disagree", "address": "missing"}
    assert "13711112222" in page.text and "13733334444" in page.text and "ZY0001" in page.text
    assert re.search(rf'name="survivor_id" value="{first}" checked', page.text)  # the older record by default
    short = secure_client.post(f"/patients/reviews/{review_id}", headers=HTML, data={
        "decision": "merge", "survivor_id": str(first), "note": "是", "csrf_token": _csrf(page.text)})
    assert short.status_code == 422 and 'data-error-code="PAT-030"' in short.text
    assert session.get(MatchReview, review_id).status == "open"
    done = secure_client.post(f"/patients/reviews/{review_id}", headers=HTML, follow_redirects=False, data={
        "decision": "merge", "survivor_id": str(first), "note": "电话为家属号码，核实为同一人",
        "csrf_token": _csrf(page.text)})
    assert (done.status_code, done.headers["location"]) == (303, "/patients/reviews")
    after = secure_client.get("/patients/reviews", headers=HTML)
    assert f"审核 #{review_id}：两条记录已合并" in after.text and f'href="/patients/{first}"' in after.text
    assert f'data-review-id="{review_id}"' not in after.text
    assert patients.resolve_patient_id(session, twin) == first
    en = secure_client.get(f"/patients/reviews/{review_id}?lang=en", headers=HTML)
    assert "Decided by u-mpi_steward" in en.text and "<form class=\"decision-form\"" not in en.text


def test_the_steward_keeps_a_pair_apart(secure_client, session, world):  # noqa: F811
    _first, _twin, review_id = _pair_in_review(session, world)
    login(secure_client, world, Role.MPI_STEWARD)
    page = secure_client.get(f"/patients/reviews/{review_id}?lang=en", headers=HTML)
    assert "Match review" in page.text and "Comparison" in page.text and "Same pinyin" not in page.text
    done = secure_client.post(f"/patients/reviews/{review_id}", headers=HTML, data={
        "decision": "distinct", "note": "two different men", "csrf_token": _csrf(page.text)})
    assert done.url.path == "/patients/reviews" and "confirmed as two people" in done.text
    assert session.get(MatchReview, review_id).status == "distinct"
    listed = secure_client.get("/patients/reviews?status=distinct", headers=HTML)
    assert f'data-review-id="{review_id}"' in listed.text


def test_the_steward_undoes_a_merge_from_the_merge_history(secure_client, session, world):  # noqa: F811
    first, twin, review_id = _pair_in_review(session, world)
    merge_id = merging.decide_review(session, SYS, review_id, decision="merge", note="same man", survivor_id=first)
    session.commit()
    login(secure_client, world, Role.MPI_STEWARD)
    history = secure_client.get(f"/patients/{twin}", headers=HTML)
    assert history.status_code == 200 and 'data-view="merge-history"' in history.text
    assert f'data-followed="{twin}"' in history.text and "王建国" not in history.text  # no record read
    row = re.search(rf'<tr data-merge-id="{merge_id}" data-state="active".*?</tr>', history.text, re.S).group(0)
    assert f'href="/patients/reviews/{review_id}"' in row
    short = secure_client.post(f"/patients/merges/{merge_id}/unmerge", headers=HTML,
                               data={"reason": "否", "back": str(first), "csrf_token": _csrf(row)})
    assert short.url.path == f"/patients/{first}" and 'data-error-code="PAT-030"' in short.text
    assert session.get(Merge, merge_id).unmerged_at is None
    done = secure_client.post(f"/patients/merges/{merge_id}/unmerge", headers=HTML,
                              data={"reason": "身份证核实为两人", "back": str(first), "csrf_token": _csrf(row)})
    assert done.url.path == f"/patients/{first}" and f"已撤销合并 #{merge_id}" in done.text
    assert f'<tr data-merge-id="{merge_id}" data-state="undone"' in done.text and "身份证核实为两人" in done.text
    session.expire_all()
    assert patients.resolve_patient_id(session, twin) == twin


def test_a_clinician_who_is_also_a_steward_unmerges_from_the_record(secure_client, session, world):  # noqa: F811
    first, twin, review_id = _pair_in_review(session, world)
    merge_id = merging.decide_review(session, SYS, review_id, decision="merge", note="same man", survivor_id=first)
    r = world.region
    security.create_user(session, SYS, username="doctor-steward", display_name="双岗医生", password=PASSWORD,
                         org_id=r.county_hospital.id,
                         grants=[security.GrantSpec(Role.CLINICIAN, ScopeKind.ORGANIZATION, r.county_hospital.id),
                                 security.GrantSpec(Role.MPI_STEWARD, ScopeKind.DIVISION, r.county.id)])
    session.commit()
    secure_client.post("/login", headers=HTML, data={
        "username": "doctor-steward", "password": PASSWORD,
        "csrf_token": _csrf(secure_client.get("/login", headers=HTML).text)})
    page = secure_client.get(f"/patients/{first}", headers=HTML)
    assert page.status_code == 200 and "王建国" in page.text and 'id="merges"' in page.text
    row = re.search(rf'<tr data-merge-id="{merge_id}" data-state="active".*?</tr>', page.text, re.S).group(0)
    assert f'action="/patients/merges/{merge_id}/unmerge"' in row
    done = secure_client.post(f"/patients/merges/{merge_id}/unmerge", headers=HTML,
                              data={"reason": "两人，非同一人", "back": str(first), "csrf_token": _csrf(row)})
    assert done.url.path == f"/patients/{first}" and f"已撤销合并 #{merge_id}" in done.text
    assert 'data-kind="unmerged"' in done.text  # the timeline has it too


def test_clinicians_see_no_review_queue(secure_client, world):  # noqa: F811
    login(secure_client, world, Role.CLINICIAN)
    page = secure_client.get("/patients/reviews", headers=HTML)
    assert page.status_code == 403 and "SEC-102" in page.text


# -- the pages themselves ------------------------------------------------------------------------


def test_every_label_the_templates_ask_for_is_in_the_catalogue():
    keys: set[str] = set()
    for template in Path(patients_web.TEMPLATES).rglob("*.html"):
        keys |= set(re.findall(r"""\bt\(\s*["']([\w.-]+)["']\s*[,)]""", template.read_text(encoding="utf-8")))
    built = {f"patients.reviews.status.{s}" for s in patients_web.REVIEW_STATUSES}
    built |= {f"patients.field.{f}" for f in (*patients_web.COMPARED_FIELDS, "name_pinyin", "health_card",
                                              "insurance", "mrn", "registered_org")}
    built |= {f"patients.level.{lv}" for lv in patients_web.LEVEL_VERDICT}
    built |= {f"patients.timeline.{k}" for k in ("registered", "identifier", "merged", "unmerged")}
    assert keys and sorted(k for k in keys | built if k not in MESSAGES) == []


def test_pages_carry_no_inline_script_or_style(secure_client, session, world):  # noqa: F811
    first, _twin, review_id = _pair_in_review(session, world)
    login(secure_client, world, Role.CLINICIAN)
    for path in ("/patients", "/patients?name=王建国", "/patients/new", f"/patients/{first}"):
        html = secure_client.get(path, headers=HTML).text
        assert "style=" not in html and "<style" not in html, path
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
