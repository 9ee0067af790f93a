"""Referral pages with real users (``secure_client``, logged in through the pages): the desk's
tabs in Chinese and English, the form (patient search, receiving department, reserved places,
criteria hints, errors kept on the form), accepting with a chosen place, the receiving
side's steps, the back-referral form, the follow-up list and the follow-up, a stale form
(REF-004), the print view, and access: staff of an unrelated facility see nothing and are
refused the referral's page.

The pages use the real clock, so the ward's clinic is opened from today's date."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from tests.factories import SYS, make_small_region
from tests.scheduling.conftest import local_today
from tests.security.conftest import world  # noqa: F401 (a fixture)
from tests.security.test_web import _csrf
from tests.security.test_web import login as login_as

from healthgrid.referrals import desk as ref_desk
from healthgrid.referrals import service as referrals
from healthgrid.referrals import workflow as ref_workflow
from healthgrid.scheduling import service as scheduling
from healthgrid.security import service as security
from healthgrid.security.domain import Role

from .conftest import make_ward, staff
from .test_flow import up_form

HTML = {"accept": "text/html"}
PASSWORD = "Doctor-pass-123"  # tests/referrals/conftest.staff
KEY_RE = re.compile(r'name="key" value="([^"]+)"')
VERSION_RE = re.compile(r'name="version" value="(\d+)"')


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def ward(session):
    w = make_ward(session, today=local_today())
    session.commit()
    return w


def login(client, username: str) -> None:
    form = client.get("/login", headers=HTML)
    answer = client.post("/login", headers=HTML, follow_redirects=False,
                         data={"username": username, "password": PASSWORD, "csrf_token": _csrf(form.text)})
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text


def logout(client) -> None:
    page = client.get("/referrals", headers=HTML)
    client.post("/logout", headers=HTML, data={"csrf_token": _csrf(page.text)})
    client.cookies.clear()


def _csrf_of(client, path: str) -> tuple[str, str]:
    page = client.get(path, headers=HTML)
    assert page.status_code == 200, page.text
    return page.text, _csrf(page.text)


def _reserved(session, ward):
    """The department's free reserved places open to referrers now (what the pages offer)."""
    now = datetime.now(UTC)
    return [s for s in ref_desk.reserved_places(session, ward.village_doctor, org_id=ward.region.county_hospital.id,
                                                 department_id=ward.department_id) if s.referral_open_at <= now]


def _form_data(ward, csrf: str, key: str, **kw) -> dict:
    data = {"csrf_token": csrf, "key": key, "from_org": ward.region.village_clinic.id,
            "patient_id": ward.patient.id, "to_org_id": ward.region.county_hospital.id,
            "to_department_id": ward.department_id, "urgency": "routine", "diag_code": ["I10", ""],
            "diag_name": ["原发性高血压", ""], "reason_text": "两次随访血压控制不满意", "present_illness": "头晕两周",
            "past_history": "高血压10年", "treatment": "氨氯地平5mg qd", "insurance_type": "resident",
            "insurance_region": "910102", "sbp": "168", "dbp": "102", "uncontrolled_visits": "2",
            "att_kind": ["lab_report"], "att_ref": [""], "att_title": [""]}
    data.update(kw)
    return data


def _new_form(client, ward) -> tuple[str, str, str]:
    html, csrf = _csrf_of(client, f"/referrals/new?patient={ward.patient.id}")
    return html, csrf, KEY_RE.search(html).group(1)


# -- the form ------------------------------------------------------------------------------------


def test_the_village_doctor_finds_the_patient_and_submits_with_a_reserved_place(secure_client, session, ward):
    login(secure_client, ward.village_doctor.username)
    home = secure_client.get("/", headers=HTML)
    nav = re.search(r'<nav class="site-nav".*?</nav>', home.text, re.S).group(0)
    assert 'href="/referrals"' in nav and "双向转诊" in nav
    search = secure_client.get("/referrals/new?name=周桂兰", headers=HTML)
    assert search.status_code == 200 and f'data-patient-id="{ward.patient.id}"' in search.text
    html, csrf, key = _new_form(secure_client, ward)
    assert "周桂兰" in html and "永宁县人民医院" in html and "本医联体/医共体" in html
    # Choosing the department (a refresh) shows its free reserved places.
    refreshed = secure_client.post("/referrals/new", headers=HTML, data=_form_data(ward, csrf, key, action="refresh"))
    assert refreshed.status_code == 200 and "转诊预留号源" in refreshed.text
    places = _reserved(session, ward)
    assert places and f'data-slot-id="{places[0].id}"' in refreshed.text
    assert "两次随访血压控制不满意</textarea>" in refreshed.text and 'value="168"' in refreshed.text  # kept
    checked = secure_client.post("/referrals/new", headers=HTML, data=_form_data(ward, csrf, key, action="check"))
    assert checked.status_code == 200 and 'data-rule="REF-C12"' in checked.text
    assert "连续两次随访控制不满意" in checked.text
    sent = secure_client.post("/referrals/new", headers=HTML, follow_redirects=False,
                              data=_form_data(ward, csrf, key, action="submit", slot_id=str(places[0].id)))
    assert sent.status_code == 303, sent.text
    page = secure_client.get(sent.headers["location"], headers=HTML)
    assert 'data-status="submitted"' in page.text and "已提交" in page.text
    rid = int(sent.headers["location"].rsplit("/", 1)[1])
    view = ref_desk.get_referral(session, ward.village_doctor, rid)
    assert (view.status, view.slot_id, view.diagnoses) == ("submitted", places[0].id,
                                                           [{"code": "I10", "name": "原发性高血压"}])
    assert view.clinical["sbp"] == 168 and view.form["insurance_region"] == "910102"
    # The same form posted again (a double click) is the same referral.
    again = secure_client.post("/referrals/new", headers=HTML, follow_redirects=False,
                               data=_form_data(ward, csrf, key, action="submit", slot_id=str(places[0].id)))
    assert again.headers["location"] == f"/referrals/{rid}"


def test_refused_forms_come_back_with_the_coded_error_and_what_was_typed(secure_client, session, ward):
    login(secure_client, ward.village_doctor.username)
    _html, csrf, key = _new_form(secure_client, ward)
    bad = secure_client.post("/referrals/new", headers=HTML, data=_form_data(
        ward, csrf, key, action="submit", diag_code=["X1"], diag_name=["高血压"]))
    assert bad.status_code == 422 and 'data-error-code="REF-005"' in bad.text
    assert 'data-error-field="diagnoses[0].code"' in bad.text and 'value="X1"' in bad.text
    assert "头晕两周" in bad.text and "转诊单填写有误" in bad.text
    # A down-referral to the village clinic from the village clinic is refused by the form.
    same = secure_client.post("/referrals/new", headers=HTML, data=_form_data(
        ward, csrf, key, action="submit", to_org_id=str(ward.region.village_clinic.id), to_department_id=""))
    assert same.status_code == 422 and 'data-error-field="to_org_id"' in same.text
    nothing = ref_desk.search_referrals(session, ward.village_doctor, ref_desk.ReferralQuery(
        org_id=ward.region.village_clinic.id, box="out"))
    assert nothing == []


def test_a_blocking_criterion_is_shown_on_the_form(secure_client, session, ward):
    _sent(session, ward)  # the hospital now cares for the patient (a referral it receives)
    login(secure_client, ward.hospital_doctor.username)
    html, csrf = _csrf_of(secure_client, f"/referrals/new?patient={ward.patient.id}")
    key = KEY_RE.search(html).group(1)
    # Down to the village clinic without a stable condition or a plan: REF-C08/C09 block.
    data = _form_data(ward, csrf, key, action="submit", from_org=str(ward.region.county_hospital.id),
                      to_org_id=str(ward.region.village_clinic.id), to_department_id="")
    answer = secure_client.post("/referrals/new", headers=HTML, data=data)
    assert answer.status_code == 422 and 'data-error-code="REF-006"' in answer.text
    assert 'data-rule="REF-C08"' in answer.text and 'data-severity="block"' in answer.text
    assert "下转需病情稳定" in answer.text


def test_a_draft_is_saved_and_submitted_from_its_page(secure_client, session, ward):
    login(secure_client, ward.village_doctor.username)
    _html, csrf, key = _new_form(secure_client, ward)
    saved = secure_client.post("/referrals/new", headers=HTML, follow_redirects=False,
                               data=_form_data(ward, csrf, key, action="draft"))
    rid = int(saved.headers["location"].rsplit("/", 1)[1])
    page = secure_client.get(f"/referrals/{rid}", headers=HTML)
    assert "已保存为草稿" in page.text and 'data-action="submit"' in page.text
    sent = secure_client.post(f"/referrals/{rid}/submit", headers=HTML, follow_redirects=False,
                              data={"csrf_token": _csrf(page.text), "version": VERSION_RE.search(page.text).group(1)})
    assert sent.status_code == 303
    assert ref_desk.get_referral(session, ward.village_doctor, rid).status == "submitted"


# -- the receiving side and back ---------------------------------------------------------------


def _sent(session, ward, **kw):
    view = referrals.create_referral(session, ward.village_doctor, up_form(ward, **kw))
    session.commit()
    return view


def _post(client, rid: int, action: str, **data):
    page = client.get(f"/referrals/{rid}", headers=HTML)
    assert page.status_code == 200, page.text
    body = {"csrf_token": _csrf(page.text), "version": VERSION_RE.search(page.text).group(1), **data}
    answer = client.post(f"/referrals/{rid}/{action}", headers=HTML, data=body, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return client.get(answer.headers["location"], headers=HTML)


def test_the_hospital_accepts_with_a_chosen_place_and_the_patient_goes_back(secure_client, session, ward):
    sent = _sent(session, ward)
    places = _reserved(session, ward)
    chosen = places[1]  # not the earliest, which the service would take by itself
    login(secure_client, ward.hospital_doctor.username)
    desk = secure_client.get("/referrals?tab=in", headers=HTML)
    assert f'data-referral-id="{sent.id}"' in desk.text and "周桂兰" in desk.text and "接收时限" in desk.text
    page = secure_client.get(f"/referrals/{sent.id}", headers=HTML)
    assert 'data-action="accept"' in page.text and f'data-slot-id="{chosen.id}"' in page.text
    assert 'data-action="reject"' in page.text and 'data-action="cancel"' not in page.text
    accepted = _post(secure_client, sent.id, "accept", slot_id=str(chosen.id))
    assert "已接收转诊单" in accepted.text and 'data-status="scheduled"' in accepted.text
    assert "预约就诊" in accepted.text and 'class="appointment-box"' in accepted.text
    view = ref_desk.get_referral(session, ward.hospital_doctor, sent.id)
    assert scheduling.get_appointment(session, ward.hospital_doctor, view.appointment_id).slot_id == chosen.id
    for action, status in (("arrived", "arrived"), ("start", "in_care"), ("complete", "completed")):
        moved = _post(secure_client, sent.id, action)
        assert f'data-status="{status}"' in moved.text, action
    form = secure_client.get(f"/referrals/{sent.id}", headers=HTML)
    assert "填写回转单" in form.text and "桃源村卫生室（原转出机构）" in form.text
    back = _post(secure_client, sent.id, "back", diagnosis="高血压2级 高危", results="心电图：左室高电压",
                 treatment="调整为氨氯地平+缬沙坦", plan="氨氯地平5mg qd + 缬沙坦80mg qd", rehab="低盐饮食",
                 condition_stable="1", diagnosis_confirmed="1", sbp="136", dbp="84")
    assert 'data-status="back_referred"' in back.text and "回转单已提交" in back.text
    logout(secure_client)

    login(secure_client, ward.village_doctor.username)
    tasks = secure_client.get("/referrals?tab=followup", headers=HTML)
    assert f'data-referral-id="{sent.id}"' in tasks.text and "回转待随访" in tasks.text
    page = secure_client.get(f"/referrals/{sent.id}", headers=HTML)
    assert 'data-action="followup"' in page.text and "氨氯地平5mg qd + 缬沙坦80mg qd" in page.text
    done = _post(secure_client, sent.id, "followup", outcome="血压132/82，按方案服药")
    assert 'data-status="followed_up"' in done.text and "血压132/82" in done.text
    closed = _post(secure_client, sent.id, "close", note="")
    assert 'data-status="closed"' in closed.text
    assert ref_desk.get_referral(session, ward.village_doctor, sent.id).status == "closed"
    empty = secure_client.get("/referrals?tab=followup", headers=HTML)
    assert f'data-referral-id="{sent.id}"' not in empty.text


def test_a_back_referral_without_a_stable_condition_keeps_the_form(secure_client, session, ward):
    sent = _sent(session, ward)
    for step in (ref_workflow.accept_referral, ref_workflow.mark_arrived, ref_workflow.start_care,
                 ref_workflow.complete_referral):
        step(session, ward.hospital_doctor, sent.id)
    session.commit()
    login(secure_client, ward.hospital_doctor.username)
    page = secure_client.get(f"/referrals/{sent.id}", headers=HTML)
    answer = secure_client.post(f"/referrals/{sent.id}/back", headers=HTML, data={
        "csrf_token": _csrf(page.text), "version": VERSION_RE.search(page.text).group(1),
        "diagnosis": "高血压2级", "plan": "继续服药"})
    assert answer.status_code == 422 and 'data-error-code="REF-006"' in answer.text
    assert 'data-rule="REF-C08"' in answer.text and "继续服药" in answer.text


def test_rejection_needs_a_reason_and_a_stale_form_is_refused(secure_client, session, ward):
    sent = _sent(session, ward)
    login(secure_client, ward.hospital_doctor.username)
    empty = _post(secure_client, sent.id, "reject", reason=" ")
    assert 'data-error-code="REF-003"' in empty.text and "请填写原因" in empty.text
    page = secure_client.get(f"/referrals/{sent.id}", headers=HTML)
    old = VERSION_RE.search(page.text).group(1)
    ref_workflow.accept_referral(session, ward.hospital_doctor, sent.id)  # someone else, meanwhile
    session.commit()
    stale = secure_client.post(f"/referrals/{sent.id}/reject", headers=HTML, follow_redirects=True,
                               data={"csrf_token": _csrf(page.text), "version": old, "reason": "床位已满"})
    assert 'data-error-code="REF-004"' in stale.text and "已被他人更新" in stale.text
    assert ref_desk.get_referral(session, ward.hospital_doctor, sent.id).status == "scheduled"


def test_the_referral_centre_redirects_a_rejected_referral(secure_client, session, ward):
    sent = _sent(session, ward)
    ref_workflow.reject_referral(session, ward.hospital_doctor, sent.id, reason="本院该专科暂停接诊")
    session.commit()
    # The county hospital leads the 医共体: it is the referral centre too.
    login(secure_client, ward.hospital_doctor.username)
    page = secure_client.get(f"/referrals/{sent.id}", headers=HTML)
    assert 'data-action="redirect"' in page.text and "本院该专科暂停接诊" in page.text
    answer = secure_client.post(f"/referrals/{sent.id}/redirect", headers=HTML, follow_redirects=True, data={
        "csrf_token": _csrf(page.text), "to_org_id": str(ward.region.township_centre.id)})
    assert answer.status_code == 200 and "已改转" in answer.text
    new = ref_desk.search_referrals(session, ward.village_doctor, ref_desk.ReferralQuery(
        org_id=ward.region.village_clinic.id, box="out", status=["submitted"]))
    assert [(r.previous_id, r.to_org_id) for r in new] == [(sent.id, ward.region.township_centre.id)]


# -- the desk, the print view, languages, access --------------------------------------------------


def test_the_desk_tabs_and_the_print_view_render_in_chinese_and_english(secure_client, session, ward):
    sent = _sent(session, ward)
    login(secure_client, ward.village_doctor.username)
    out = secure_client.get("/referrals?tab=out", headers=HTML)
    assert out.status_code == 200 and f'data-referral-id="{sent.id}"' in out.text and "转出" in out.text
    for tab in ("in", "followup", "centre", "overdue"):
        page = secure_client.get(f"/referrals?tab={tab}", headers=HTML)
        assert page.status_code == 200 and f'data-tab="{tab}"' in page.text
    filtered = secure_client.get("/referrals?tab=out&status=closed", headers=HTML)
    assert f'data-referral-id="{sent.id}"' not in filtered.text and "没有符合条件的转诊单" in filtered.text
    en = secure_client.get("/referrals?tab=out&lang=en", headers=HTML)
    assert "Two-way referral" in en.text and "Outgoing" in en.text and "Submitted" in en.text
    assert "转出" not in text_of(en.text).replace("中文", "")
    printed = secure_client.get(f"/referrals/{sent.id}/print?lang=zh", headers=HTML)
    body = text_of(printed.text)
    assert printed.status_code == 200 and "双向转诊单（存根）" in body and "双向转诊（转出）单" in body
    assert "现有患者 周桂兰 女" in body and "因病情需要，需转入贵单位，请予以接诊" in body
    assert "双向转诊（回转）单" not in body and "原发性高血压（I10）" in body
    en_print = secure_client.get(f"/referrals/{sent.id}/print?lang=en", headers=HTML)
    assert "referral-out" in en_print.text and "please receive them" in en_print.text
    css = secure_client.get("/referrals/assets/referrals.css")
    assert css.status_code == 200 and "@page" in css.text and css.headers["content-type"].startswith("text/css")
    assert secure_client.get("/referrals/assets/other.js").status_code == 404


def test_a_doctor_of_two_facilities_picks_the_desk(secure_client, session, ward):
    sent = _sent(session, ward)
    security.create_user(session, SYS, username="two-desks", display_name="乡村医生", password=PASSWORD,
                         grants=[security.parse_grant("clinician", "organization", ward.region.township_centre.id),
                                 security.parse_grant("clinician", "organization", ward.region.village_clinic.id)],
                         org_id=ward.region.township_centre.id)
    session.commit()
    login(secure_client, "two-desks")
    first = secure_client.get("/referrals?tab=out", headers=HTML)
    assert 'class="inline-form desk-picker"' in first.text and "清河镇卫生院" in first.text
    assert f'data-org-id="{ward.region.township_centre.id}"' in first.text
    assert f'data-referral-id="{sent.id}"' not in first.text
    village = secure_client.get(f"/referrals?tab=out&org={ward.region.village_clinic.id}", headers=HTML)
    assert f'data-referral-id="{sent.id}"' in village.text
    form = secure_client.get(f"/referrals/new?org={ward.region.village_clinic.id}&patient={ward.patient.id}",
                             headers=HTML)
    assert 'id="f-from"' in form.text and f'<option value="{ward.region.village_clinic.id}" selected>' in form.text


def test_staff_of_an_unrelated_facility_see_nothing_and_are_refused(secure_client, session, ward):
    sent = _sent(session, ward)
    other = make_small_region(session, prefix="92")
    staff(session, other.county_hospital.id, username="hdoc-92")
    session.commit()
    login(secure_client, "hdoc-92")
    for tab in ("in", "out", "overdue"):
        desk = secure_client.get(f"/referrals?tab={tab}", headers=HTML)
        assert desk.status_code == 200 and f'data-referral-id="{sent.id}"' not in desk.text
    # Another facility's desk is not theirs to open: their own is shown instead.
    theirs = secure_client.get(f"/referrals?org={ward.region.county_hospital.id}", headers=HTML)
    assert f'data-org-id="{other.county_hospital.id}"' in theirs.text
    for path in (f"/referrals/{sent.id}", f"/referrals/{sent.id}/print"):
        refused = secure_client.get(path, headers=HTML)
        assert refused.status_code == 403 and "周桂兰" not in refused.text
    moved = secure_client.post(f"/referrals/{sent.id}/accept", headers=HTML, follow_redirects=False,
                               data={"csrf_token": _csrf(theirs.text)})
    assert moved.status_code == 303
    assert ref_desk.get_referral(session, ward.hospital_doctor, sent.id).status == "submitted"


def test_a_resident_cannot_open_the_referral_desk(secure_client, world):  # noqa: F811
    login_as(secure_client, world, Role.RESIDENT)
    assert secure_client.get("/referrals", headers=HTML).status_code == 403
    assert secure_client.get("/referrals/new", headers=HTML).status_code == 403


def test_the_measures_page_is_not_taken_for_a_referral(secure_client, ward):
    login(secure_client, ward.village_doctor.username)
    assert secure_client.get("/referrals/measures", headers=HTML).status_code == 403  # not 422: no referral id
