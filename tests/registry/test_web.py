"""Registry pages (region browser) render from data created through registry.service,
in Chinese by default and in English on request; unknown codes give the HTML error page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest

from healthgrid.registry import service
from healthgrid.security.domain import Actor

HTML = {"accept": "text/html"}

SYS = Actor.system_actor("tests")


@dataclass
class Region:
    hospital_id: int
    centre_id: int
    clinic_id: int
    city_hospital_id: int
    cardio_alliance_id: int


@pytest.fixture
def region(session) -> Region:
    """Province → city → county → township → village, a county hospital leading its 医共体,
    a township centre and village clinic as members, a city hospital, two doctors."""
    for code, name, level, parent in [
        ("450000", "桂南省", "province", None),
        ("450100", "邕州市", "city", "450000"),
        ("450102", "青秀区", "county", "450100"),
        ("450103", "兴宁区", "county", "450100"),
        ("450102001000", "新竹街道", "township", "450102"),
        ("450102001001", "竹溪社区", "village", "450102001000"),
    ]:
        service.create_division(session, SYS, code=code, name=name, level=level, parent_code=parent)
    city = service.create_organization(session, SYS, code="WEB-C1", name="邕州市第一人民医院", level="L3",
                                       org_type="general_hospital", division_code="450100",
                                       grade_level=3, grade_class="A")
    hosp = service.create_organization(session, SYS, code="WEB-H1", name="青秀区人民医院", level="L2",
                                       org_type="general_hospital", division_code="450102",
                                       grade_level=2, grade_class="A", address="青秀路8号",
                                       phone="0771-5550100")
    centre = service.create_organization(session, SYS, code="WEB-T1", name="新竹街道社区卫生服务中心", level="L1",
                                         org_type="community_health_centre",
                                         division_code="450102001000", parent_org_code="WEB-H1")
    clinic = service.create_organization(session, SYS, code="WEB-V1", name="竹溪社区卫生服务站", level="L0",
                                         org_type="community_health_station",
                                         division_code="450102001001", parent_org_code="WEB-T1")
    service.add_department(session, SYS, org_id=hosp.id, code="03.03")
    service.add_department(session, SYS, org_id=hosp.id, code="20", name="急诊科（胸痛中心）")
    service.add_service(session, SYS, org_id=hosp.id, kind="chest_pain_centre", department_code="03.03")
    service.add_equipment(session, SYS, org_id=hosp.id, kind="CT", quantity=2, model="SOMATOM go",
                          department_code="20")
    service.designate_key_specialty(session, SYS, org_id=hosp.id, department_code="03.03", level="city", year=2021)
    chief = service.create_practitioner(session, SYS, licence_no="WEB0000001", name="覃振华", sex="M",
                                        title="chief_physician", specialty_code="03.03")
    service.add_practice_site(session, SYS, practitioner_id=chief.id, org_id=city.id, is_primary=True)
    service.add_practice_site(session, SYS, practitioner_id=chief.id, org_id=hosp.id, department_code="03.03")
    nurse = service.create_practitioner(session, SYS, licence_no="WEB0000002", name="韦秀英", sex="F",
                                        title="nurse_in_charge")
    service.add_practice_site(session, SYS, practitioner_id=nurse.id, org_id=hosp.id, is_primary=True,
                              department_code="20")
    service.create_alliance(session, SYS, code="WEB-YGT", name="青秀区紧密型县域医共体", kind="county_community",
                            lead_org_code="WEB-H1", member_org_codes=["WEB-T1", "WEB-V1"],
                            division_code="450102")
    cardio = service.create_alliance(session, SYS, code="WEB-ZK", name="邕州市心血管专科联盟",
                                     kind="specialty_alliance", lead_org_code="WEB-C1",
                                     member_org_codes=["WEB-H1"], specialty_code="03.03")
    return Region(hosp.id, centre.id, clinic.id, city.id, cardio.id)


def text_of(html: str) -> str:
    """Visible text, roughly: tags dropped, whitespace collapsed (for phrase assertions)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_division_page_shows_breadcrumb_children_counts_and_subtree_orgs(client, region):
    r = client.get("/registry/divisions/450102")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    crumbs = re.search(r'<nav class="breadcrumb".*?</nav>', html, re.S).group(0)
    assert re.findall(r">([^<>]+)</(?:a|span)>", crumbs) == ["全区域", "桂南省", "邕州市", "青秀区"]
    assert 'href="/registry/divisions/450102001000"' in html and "新竹街道" in html
    assert "县区" in html  # the division's level label
    # counts by level in the subtree: one L2, one L1, one L0 — the city hospital is outside
    counts = dict(re.findall(r'<tr data-level="(L\d)">.*?<td class="num">(\d+)</td>', html, re.S))
    assert counts == {"L2": "1", "L1": "1", "L0": "1"}
    assert "青秀区人民医院" in html and "竹溪社区卫生服务站" in html
    assert "邕州市第一人民医院" not in html
    assert "兴宁区" not in html  # a sibling county is not a child


def test_division_page_filters_organisations_by_level_and_type(client, region):
    by_level = client.get("/registry/divisions/450100?level=L1").text
    assert "新竹街道社区卫生服务中心" in by_level and "青秀区人民医院" not in by_level
    assert '<option value="L1" selected>' in by_level
    by_type = client.get("/registry/divisions/450100?type=general_hospital").text
    assert "青秀区人民医院" in by_type and "邕州市第一人民医院" in by_type
    assert "竹溪社区卫生服务站" not in by_type
    none = client.get("/registry/divisions/450103").text
    assert "没有符合条件的机构。" in none and "没有下级行政区划。" in none


def test_unknown_filter_value_is_an_html_page_with_the_code(client, region):
    r = client.get("/registry/divisions/450100?level=L9")
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "REG-011" in r.text and "输入有误" in r.text


def test_region_page_lists_top_level_divisions_and_all_organisations(client, region):
    html = client.get("/registry/divisions").text
    assert 'href="/registry/divisions/450000"' in html and "全区域" in html
    assert "邕州市第一人民医院" in html and "青秀区人民医院" in html


def test_organisations_are_paged(client, region, session):
    for i in range(25):
        service.create_organization(session, SYS, code=f"WEB-P{i:02d}", name=f"兴宁区第{i:02d}村卫生室",
                                    level="L0", org_type="village_clinic", division_code="450103")
    first = client.get("/registry/divisions/450103").text
    assert "第 1 / 2 页，共 25 条" in text_of(first)
    assert 'rel="next" href="/registry/divisions/450103?page=2"' in first
    second = client.get("/registry/divisions/450103?page=2").text
    assert second.count('data-org-type="village_clinic"') == 5


def test_facility_page_shows_departments_services_staff_alliances_and_specialties(client, region):
    r = client.get(f"/registry/organizations/{region.hospital_id}")
    assert r.status_code == 200
    html, text = r.text, text_of(r.text)
    assert "<h1>青秀区人民医院</h1>" in html
    assert "县级" in text and "二级甲等" in text and "综合医院" in text and "青秀路8号" in text
    assert "桂南省 · 邕州市 · 青秀区" in text
    assert "心血管内科专业" in text and "急诊医学科 (急诊科（胸痛中心）)" in text  # custom name shown too
    assert "胸痛中心" in text and "SOMATOM go" in text
    staff = re.search(r'<table class="staff">.*?</table>', html, re.S).group(0)
    rows = re.findall(r'<tr data-primary="(yes|no)">\s*<td>([^<]+)</td>', staff)
    assert rows == [("yes", "韦秀英"), ("no", "覃振华")]  # primary staff first
    assert "主要执业机构" in staff and "多点执业" in staff and "主任医师" in staff and "主管护师" in staff
    assert "青秀区紧密型县域医共体" in text and "县域医共体" in text and "牵头单位" in text
    assert "邕州市心血管专科联盟" in text and "成员单位" in text
    assert "心血管内科专业 · 市级 (2021)" in text


def test_facility_page_links_parent_and_breadcrumb_to_village(client, region):
    html = client.get(f"/registry/organizations/{region.clinic_id}").text
    assert f'href="/registry/organizations/{region.centre_id}">新竹街道社区卫生服务中心</a>' in html
    assert 'href="/registry/divisions/450102001000">新竹街道</a>' in html
    assert "未登记科室。" in html and "未登记执业人员。" in html


def test_facility_update_time_is_shown_in_shanghai_time(client, region, session):
    org = service.get_organization(session, region.hospital_id)
    expected = org.updated_at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert expected in client.get(f"/registry/organizations/{region.hospital_id}").text


def test_facility_page_in_english(client, region):
    r = client.get(f"/registry/organizations/{region.hospital_id}?lang=en")
    html, text = r.text, text_of(r.text)
    assert '<html lang="en">' in html
    for label in ("Departments", "Practitioners", "Multi-site practice", "Primary site", "Cardiology",
                  "Level 2 Grade A", "General hospital", "County medical community", "Lead", "Member",
                  "Key specialties", "Chief physician", "Chest pain centre", "CT scanner"):
        assert label in text, label
    assert "科室设置" not in text and "多点执业" not in text and "<small>县域医共体</small>" not in html
    assert "青秀区人民医院" in text  # names are data: they stay as registered


def test_alliance_page_shows_lead_and_members(client, region):
    html = client.get(f"/registry/alliances/{region.cardio_alliance_id}").text
    text = text_of(html)
    assert "<h1>邕州市心血管专科联盟</h1>" in html and "专科联盟" in text and "心血管内科专业" in text
    assert f'href="/registry/organizations/{region.city_hospital_id}">邕州市第一人民医院</a>' in html
    roles = re.findall(r'<tr data-role="(lead|member)">\s*<td><a [^>]*>([^<]+)</a>', html)
    assert roles == [("lead", "邕州市第一人民医院"), ("member", "青秀区人民医院")]
    assert "共 2 家机构" in text


def test_alliance_list_filters_by_kind(client, region):
    html = client.get("/registry/alliances?kind=county_community").text
    assert "青秀区紧密型县域医共体" in html and "邕州市心血管专科联盟" not in html
    everything = client.get("/registry/alliances?lang=en").text
    assert "Specialty alliance" in everything and "County medical community" in everything


def test_search_finds_organisations_by_part_of_the_name(client, region):
    text = text_of(client.get("/registry/search", params={"q": "人民医院"}).text)
    assert "名称包含“人民医院”的机构" in text
    assert "青秀区人民医院" in text and "邕州市第一人民医院" in text and "社区卫生服务站" not in text
    empty = client.get("/registry/search").text
    assert "org-table" not in empty and 'name="q"' in empty
    nothing = client.get("/registry/search", params={"q": "不存在的医院"}).text
    assert "没有符合条件的机构。" in nothing


def test_search_text_is_escaped(client, region):
    html = client.get("/registry/search", params={"q": "<script>alert(1)</script>"}).text
    assert "<script>" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize("path, code", [
    ("/registry/divisions/999999", "REG-001"),
    ("/registry/organizations/987654321", "REG-013"),
    ("/registry/alliances/987654321", "REG-042"),
])
def test_unknown_codes_and_ids_give_an_html_404_with_the_error_code(client, path, code):
    r = client.get(path, headers=HTML)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html") and r.text.startswith("<!doctype html>")
    assert f'<code class="error-code">{code}</code>' in r.text
    assert "未找到" in r.text and '<html lang="zh-CN">' in r.text


def test_unknown_division_page_in_english(client):
    r = client.get("/registry/divisions/999999?lang=en")
    assert r.status_code == 404
    assert "Not found" in r.text and "There is no division with this code." in r.text
    assert "unknown division code &#39;999999&#39;" in r.text  # the coded message, escaped


def test_registry_pages_reference_no_other_host(client, region):
    pages = ["/", "/registry/divisions", "/registry/divisions/450102",
             f"/registry/organizations/{region.hospital_id}", "/registry/alliances",
             f"/registry/alliances/{region.cardio_alliance_id}", "/registry/search?q=医院",
             "/registry/divisions/000000"]
    for path in pages:
        html = client.get(path).text
        links = re.findall(r'(?:src|href|action)\s*=\s*["\']([^"\']*)', html)
        assert links, path
        # app-relative paths only: no scheme, no protocol-relative "//host"
        assert all(link.startswith(("/", "#")) and not link.startswith("//") for link in links), (path, links)
        assert "http://" not in html and "https://" not in html, path
