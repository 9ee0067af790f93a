"""The registry's FHIR providers over HTTP, on data made through registry.service:
mappers against golden JSON, every search parameter, paging across the two kinds of
Location, strict R4 validity (fhirclient's models), and the coded errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

import pytest
from fhirclient.models.healthcareservice import HealthcareService
from fhirclient.models.location import Location
from fhirclient.models.organization import Organization
from fhirclient.models.practitioner import Practitioner
from fhirclient.models.practitionerrole import PractitionerRole

from healthgrid.registry import fhir as registry_fhir
from healthgrid.registry import service
from healthgrid.security.domain import Actor

FIXTURES = Path(__file__).parent.parent / "fhir" / "fixtures"
FHIR_JSON = "application/fhir+json; charset=utf-8"
STRICT_R4 = {"Organization": Organization, "Location": Location, "Practitioner": Practitioner,
             "PractitionerRole": PractitionerRole, "HealthcareService": HealthcareService}
TYPE = registry_fhir.ORG_TYPE_SYSTEM
LEVEL = registry_fhir.ORG_LEVEL_SYSTEM

SYS = Actor.system_actor("tests")


@pytest.fixture
def region(session) -> SimpleNamespace:
    """Guangzhou in miniature: 6 divisions, 5 organisations (one inactive), 3
    practitioners on 4 sites (one multi-site), 4 services."""
    for code, name, level, parent in [
        ("440000", "广东省", "province", None), ("440100", "广州市", "city", "440000"),
        ("440104", "越秀区", "county", "440100"), ("440106", "天河区", "county", "440100"),
        ("440106001000", "石牌街道", "township", "440106"),
        ("440106001001", "石牌村", "village", "440106001000"),
    ]:
        service.create_division(session, SYS, code=code, name=name, level=level, parent_code=parent)
    city = service.create_organization(session, SYS, code="GZ-CITY1", name="广州市第一人民医院",
        level="L3", org_type="general_hospital",
        division_code="440104", grade_level=3, grade_class="A", address="广州市越秀区盘福路1号",
        phone="020-81048888", latitude=23.1367, longitude=113.2590)
    county = service.create_organization(session, SYS, code="GZ-TH-H", name="天河区人民医院", level="L2",
        org_type="general_hospital",
        division_code="440106", grade_level=2, grade_class="A", parent_org_code="GZ-CITY1")
    mch = service.create_organization(session, SYS, code="GZ-TH-MCH", name="天河区妇幼保健院", level="L2",
        org_type="mch_hospital",
        division_code="440106")
    chc = service.create_organization(session, SYS, code="GZ-SP-CHC", name="石牌街社区卫生服务中心", level="L1",
        org_type="community_health_centre", division_code="440106001000", parent_org_code="GZ-TH-H",
        address="天河区石牌东路8号")
    clinic = service.create_organization(session, SYS, code="GZ-SP-VC", name="石牌村卫生室", level="L0",
        org_type="village_clinic",
        division_code="440106001001", parent_org_code="GZ-SP-CHC")
    service.update_organization(session, SYS, clinic.id, {"active": False})
    orgs = SimpleNamespace(city=city, county=county, mch=mch, chc=chc, clinic=clinic)
    return add_people_and_services(session, orgs)


def add_people_and_services(session, orgs: SimpleNamespace) -> SimpleNamespace:
    city, county, chc, clinic = orgs.city, orgs.county, orgs.chc, orgs.clinic
    service.add_department(session, SYS, org_id=city.id, code="03.03")
    service.add_department(session, SYS, org_id=chc.id, code="02")
    ouyang = service.create_practitioner(session, SYS, licence_no="110440104000001", name="欧阳娜娜", sex="F",
                                         title="chief_physician", specialty_code="03.03", birth_year=1970)
    wang = service.create_practitioner(session, SYS, licence_no="110440106000002", name="王伟", sex="M",
                                       title="attending_physician", specialty_code="02")
    li = service.create_practitioner(session, SYS, licence_no="110440106000003", name="李娜", sex="F",
                                     title="village_doctor")
    sites = SimpleNamespace(
        ouyang_city=service.add_practice_site(session, SYS, practitioner_id=ouyang.id, org_id=city.id,
                                              department_code="03.03", is_primary=True),
        ouyang_county=service.add_practice_site(session, SYS, practitioner_id=ouyang.id, org_id=county.id),
        wang_chc=service.add_practice_site(session, SYS, practitioner_id=wang.id, org_id=chc.id,
                                           department_code="02", is_primary=True),
        li_clinic=service.add_practice_site(session, SYS, practitioner_id=li.id, org_id=clinic.id,
                                            is_primary=True),
    )
    services = SimpleNamespace(
        city_outpatient=service.add_service(session, SYS, org_id=city.id, kind="outpatient",
                                            department_code="03.03"),
        city_emergency=service.add_service(session, SYS, org_id=city.id, kind="emergency"),
        county_outpatient=service.add_service(session, SYS, org_id=county.id, kind="outpatient"),
        chc_family=service.add_service(session, SYS, org_id=chc.id, kind="family_doctor"),
    )
    return SimpleNamespace(**vars(orgs), ouyang=ouyang, wang=wang, li=li, sites=sites, services=services)


def golden(name: str, **ids: object) -> dict:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    for key, value in ids.items():
        text = text.replace("{{" + key + "}}", str(value))
    return json.loads(text)


def get(client, path: str, **params) -> dict:
    # httpx replaces a URL's query with params, even empty ones: pass them only when given.
    response = client.get(path, params=params) if params else client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == FHIR_JSON
    return response.json()


def ids(client, path: str, **params) -> list[str]:
    bundle = get(client, path, **params)
    found = [e["resource"]["id"] for e in bundle.get("entry", [])]
    assert bundle["total"] == len(found), "use a _count that fits the whole result"
    return found


def outcome(client, path: str, status: int) -> str:
    response = client.get(path)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == FHIR_JSON
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]["details"]["coding"][0]["code"]


# --- mappers vs golden JSON -----------------------------------------------------------


def test_organization_read_matches_golden(client, region):
    body = get(client, f"/fhir/Organization/{region.county.id}")
    assert body.pop("meta")["lastUpdated"].startswith(str(region.county.updated_at.year))
    assert body == golden("registry-organization.json", id=region.county.id, parent=region.city.id)
    Organization(body)


def test_jurisdiction_location_matches_golden(client, region):
    body = get(client, "/fhir/Location/div-440106001000")
    assert body == golden("registry-location-division.json")
    Location(body)


def test_site_location_matches_golden(client, region):
    body = get(client, f"/fhir/Location/site-{region.city.id}")
    assert body == golden("registry-location-site.json", id=region.city.id)
    Location(body)


def test_practitioner_matches_golden(client, region):
    body = get(client, f"/fhir/Practitioner/{region.ouyang.id}")
    assert body == golden("registry-practitioner.json", id=region.ouyang.id)
    Practitioner(body)


def test_practitioner_role_matches_golden(client, region):
    site = region.sites.ouyang_city
    body = get(client, f"/fhir/PractitionerRole/{site.id}")
    assert body == golden("registry-practitioner-role.json", id=site.id, practitioner=region.ouyang.id,
                          org=region.city.id)
    PractitionerRole(body)


def test_healthcare_service_matches_golden(client, region):
    svc = region.services.city_outpatient
    body = get(client, f"/fhir/HealthcareService/{svc.id}")
    assert body == golden("registry-healthcare-service.json", id=svc.id, org=region.city.id)
    HealthcareService(body)


@pytest.mark.parametrize(("name", "family", "given"), [
    ("欧阳娜娜", "欧阳", ["娜娜"]), ("王伟", "王", ["伟"]), ("司马光", "司马", ["光"]),
    ("欧阳", "欧", ["阳"]), ("张", "张", []), ("Anna Maria Smith", "Smith", ["Anna", "Maria"]),
])
def test_human_name_splits_surname(name, family, given):
    assert registry_fhir.human_name(name) == {"use": "official", "text": name, "family": family,
                                              "given": given}


@pytest.mark.parametrize("resource_type", sorted(STRICT_R4))
def test_every_served_resource_is_strict_r4(client, region, resource_type):
    bundle = get(client, f"/fhir/{resource_type}", _count=100)
    assert bundle["total"] == len(bundle["entry"]) > 0
    for entry in bundle["entry"]:
        STRICT_R4[resource_type](entry["resource"])  # fhirclient raises on any non-R4 element


def test_capability_statement_lists_the_registry_providers(client):
    body = get(client, "/fhir/metadata")
    declared = {r["type"]: [(p["name"], p["type"]) for p in r["searchParam"]]
                for r in body["rest"][0]["resource"]
                # other contexts' own
                if r["type"] not in ("Patient", "Schedule", "Slot", "Appointment", "ServiceRequest", "Task",
                                     "Condition", "MeasureReport", "DiagnosticReport", "Observation", "ImagingStudy")}
    assert declared == {
        "HealthcareService": [("_id", "token"), ("organization", "reference"), ("service-type", "token"),
                              ("name", "string")],
        "Location": [("_id", "token"), ("name", "string"), ("address", "string"), ("partof", "reference"),
                     ("organization", "reference")],
        "Organization": [("_id", "token"), ("name", "string"), ("identifier", "token"), ("type", "token"),
                         ("partof", "reference"), ("address", "string"), ("active", "token")],
        "Practitioner": [("_id", "token"), ("name", "string"), ("identifier", "token"), ("gender", "token")],
        "PractitionerRole": [("_id", "token"), ("practitioner", "reference"), ("organization", "reference"),
                             ("specialty", "token")],
    }


# --- Organization search --------------------------------------------------------------


ALL_ORGS = ["city", "county", "mch", "chc", "clinic"]


@pytest.mark.parametrize(("params", "expected"), [
    ({"name": "人民医院"}, ["city", "county"]),
    ({"name:contains": "天河"}, ["county", "mch"]),
    ({"name:exact": "天河区人民医院"}, ["county"]),
    ({"name:exact": "天河区人民"}, []),
    ({"identifier": "GZ-TH-MCH"}, ["mch"]),
    ({"identifier": f"{registry_fhir.ORG_CODE_SYSTEM}|GZ-TH-MCH,GZ-SP-VC"}, ["mch", "clinic"]),
    ({"identifier": "http://other.example/ids|GZ-TH-MCH"}, []),
    ({"type": "general_hospital"}, ["city", "county"]),
    ({"type": f"{TYPE}|mch_hospital,{TYPE}|village_clinic"}, ["mch", "clinic"]),
    ({"type": "L2"}, ["county", "mch"]),
    ({"type": f"{LEVEL}|L0"}, ["clinic"]),
    ({"type": f"{TYPE}|L2"}, []),  # L2 is a level, not a type
    ({"type": [f"{TYPE}|general_hospital", "L2"]}, ["county"]),  # AND across occurrences
    ({"type": ["L2", "L3"]}, []),
    ({"type": f"{TYPE}|"}, ALL_ORGS),
    ({"partof": "Organization/{city}"}, ["county"]),
    ({"partof": "{county},{chc}"}, ["chc", "clinic"]),
    ({"partof": "Organization/no-such-id"}, []),
    ({"address": "盘福路"}, ["city"]),
    ({"address": "石牌"}, ["chc", "clinic"]),  # street address / division name
    ({"active": "false"}, ["clinic"]),
    ({"active": "true", "type": "L1,L0"}, ["chc"]),
    ({"active": "true,false", "type": "L0"}, ["clinic"]),
    ({"_id": "{mch},{chc}"}, ["mch", "chc"]),
    ({"_id": "99999999999"}, []),
])
def test_organization_search(client, region, params, expected):
    fill = {k: getattr(region, k).id for k in ALL_ORGS}
    params = {k: [x.format(**fill) for x in v] if isinstance(v, list) else v.format(**fill)
              for k, v in params.items()}
    found = ids(client, "/fhir/Organization", _count=50, **params)
    assert sorted(found) == sorted(str(getattr(region, k).id) for k in expected)


def test_organizations_are_ordered_by_level_then_code(client, region):
    found = ids(client, "/fhir/Organization", _count=50)
    order = [getattr(region, k) for k in ALL_ORGS]
    assert [f for f in found if f in {str(o.id) for o in order}] == [str(o.id) for o in order]


# --- Location search ------------------------------------------------------------------


def test_location_partof_a_division_lists_child_jurisdictions_then_its_sites(client, region):
    found = ids(client, "/fhir/Location", partof="Location/div-440106", _count=50)
    assert found == ["div-440106001000", f"site-{region.county.id}", f"site-{region.mch.id}"]


@pytest.mark.parametrize(("params", "expected"), [
    ({"name": "天河"}, ["div-440106", "site-{county}", "site-{mch}"]),
    ({"address": "盘福路"}, ["site-{city}"]),
    ({"address": "越秀"}, ["div-440104", "site-{city}"]),
    ({"organization": "Organization/{chc}"}, ["site-{chc}"]),
    ({"organization": "{chc},{clinic}", "name": "卫生室"}, ["site-{clinic}"]),
    ({"name": "卫生室", "address": "石牌", "organization": "{clinic}"}, ["site-{clinic}"]),
    ({"_id": "div-440000,site-{city},site-0,div-999999,bogus"}, ["div-440000", "site-{city}"]),
    ({"_id": "div-440000", "name": "天河"}, []),
    ({"partof": "div-440106001000"}, ["div-440106001001", "site-{chc}"]),
    ({"partof": "Location/div-999999"}, []),
    ({"partof": "Location/site-{city}"}, []),
])
def test_location_search(client, region, params, expected):
    fill = {k: getattr(region, k).id for k in ("city", "county", "mch", "chc", "clinic")}
    params = {k: v.format(**fill) for k, v in params.items()}
    found = ids(client, "/fhir/Location", _count=50, **params)
    assert found == [e.format(**fill) for e in expected]


def test_location_pages_run_across_jurisdictions_and_sites(client, region):
    everything = ids(client, "/fhir/Location", _count=100)
    assert len([i for i in everything if i.startswith("div-")]) >= 6
    pages, url = [], "/fhir/Location?_count=4"
    while url:
        bundle = get(client, url)
        assert bundle["total"] == len(everything)
        pages.append([e["resource"]["id"] for e in bundle.get("entry", [])])
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    assert [i for page in pages for i in page] == everything
    assert all(len(page) == 4 for page in pages[:-1])


def test_location_name_and_address_together_need_sites_only(client, region):
    response = client.get("/fhir/Location", params={"name": "石牌", "address": "石牌"})
    assert response.status_code == 400
    assert "address" in response.json()["issue"][0]["diagnostics"]


# --- Practitioner, PractitionerRole, HealthcareService --------------------------------


@pytest.mark.parametrize(("params", "expected"), [
    ({"name": "娜"}, ["ouyang", "li"]),
    ({"name:exact": "王伟"}, ["wang"]),
    ({"name:exact": "王"}, []),
    ({"identifier": f"{registry_fhir.LICENCE_SYSTEM}|110440106000002"}, ["wang"]),
    ({"identifier": "110440104000001,110440106000003"}, ["ouyang", "li"]),
    ({"gender": "female"}, ["ouyang", "li"]),
    ({"gender": "male"}, ["wang"]),
    ({"gender": "other"}, []),
    ({"gender": "female", "name": "欧阳"}, ["ouyang"]),
])
def test_practitioner_search(client, region, params, expected):
    found = ids(client, "/fhir/Practitioner", _count=50, **params)
    assert sorted(found) == sorted(str(getattr(region, k).id) for k in expected)


@pytest.mark.parametrize(("params", "expected"), [
    ({"practitioner": "Practitioner/{ouyang}"}, ["ouyang_city", "ouyang_county"]),
    ({"organization": "{chc}"}, ["wang_chc"]),
    ({"organization": "Organization/{county}", "practitioner": "{ouyang}"}, ["ouyang_county"]),
    ({"specialty": "03.03"}, ["ouyang_city", "ouyang_county"]),  # the site's or the practitioner's
    ({"specialty": f"{registry_fhir.DEPARTMENT_SYSTEM}|02"}, ["wang_chc"]),
    ({"_id": "{wang_chc}"}, ["wang_chc"]),
])
def test_practitioner_role_search(client, region, params, expected):
    fill = {k: getattr(region, k).id for k in ("ouyang", "chc", "county")}
    fill["wang_chc"] = region.sites.wang_chc.id
    params = {k: v.format(**fill) for k, v in params.items()}
    found = ids(client, "/fhir/PractitionerRole", _count=50, **params)
    assert sorted(found) == sorted(str(getattr(region.sites, k).id) for k in expected)


def test_practitioner_role_tells_primary_from_multi_site(client, region):
    bundle = get(client, "/fhir/PractitionerRole", practitioner=region.ouyang.id)
    roles = {e["resource"]["organization"]["reference"]: e["resource"]["code"][1]["coding"][0]["code"]
             for e in bundle["entry"]}
    assert roles == {f"Organization/{region.city.id}": "primary",
                     f"Organization/{region.county.id}": "multi-site"}


@pytest.mark.parametrize(("params", "expected"), [
    ({"organization": "Organization/{city}"}, ["city_outpatient", "city_emergency"]),
    ({"service-type": "outpatient"}, ["city_outpatient", "county_outpatient"]),
    ({"service-type": f"{registry_fhir.SERVICE_TYPE_SYSTEM}|family_doctor"}, ["chc_family"]),
    ({"service-type": "outpatient", "organization": "{county}"}, ["county_outpatient"]),
    ({"name": "急诊"}, ["city_emergency"]),
])
def test_healthcare_service_search(client, region, params, expected):
    fill = {k: getattr(region, k).id for k in ("city", "county")}
    params = {k: v.format(**fill) for k, v in params.items()}
    found = ids(client, "/fhir/HealthcareService", _count=50, **params)
    assert sorted(found) == sorted(str(getattr(region.services, k).id) for k in expected)


# --- paging and totals ----------------------------------------------------------------


def test_organization_paging_links(client, region):
    first = get(client, "/fhir/Organization", type="L0,L1,L2", _count=2)
    assert first["total"] == 4
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert set(links) == {"self", "first", "next", "last"}
    assert links["next"].startswith("http://testserver/fhir/Organization?")
    assert dict(parse_qsl(urlsplit(links["next"]).query)) == {"type": "L0,L1,L2", "_count": "2",
                                                              "_offset": "2"}
    second = client.get(links["next"]).json()
    assert {link["relation"] for link in second["link"]} == {"self", "first", "previous", "last"}
    seen = [e["resource"]["id"] for b in (first, second) for e in b["entry"]]
    assert sorted(seen) == sorted(str(o.id) for o in (region.county, region.mch, region.chc, region.clinic))


@pytest.mark.parametrize("query", ["_count=0", "_summary=count", "_count=0&_totalMethod=count"])
def test_totals_only(client, region, query):
    bundle = get(client, f"/fhir/Practitioner?gender=female&{query}")
    assert bundle["total"] == 2
    assert "entry" not in bundle


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/fhir/Organization?partof=Patient/1", 400, "FHIR-003"),
    ("/fhir/Organization?active=maybe", 400, "FHIR-003"),
    ("/fhir/Organization?type=L2,general_hospital", 400, "FHIR-003"),
    ("/fhir/Organization?name=a,b", 400, "FHIR-003"),
    ("/fhir/Organization?_count=-1", 400, "FHIR-003"),
    ("/fhir/Organization?_count=abc", 400, "FHIR-003"),
    ("/fhir/Organization?_offset=-5", 400, "FHIR-003"),
    ("/fhir/Organization?colour=red", 400, "FHIR-002"),
    ("/fhir/Organization?name:sounds-like=x", 400, "FHIR-004"),
    ("/fhir/Location?name:exact=天河区", 400, "FHIR-004"),
    ("/fhir/Location?partof=Organization/1", 400, "FHIR-003"),
    ("/fhir/Practitioner?gender=m", 400, "FHIR-003"),
    ("/fhir/Hospital", 404, "FHIR-001"),
    ("/fhir/Hospital/1", 404, "FHIR-001"),
    ("/fhir/Organization/999999", 404, "FHIR-008"),
    ("/fhir/Organization/abc", 404, "FHIR-008"),
    ("/fhir/Location/div-000000", 404, "FHIR-008"),
    ("/fhir/Location/site-999999", 404, "FHIR-008"),
    ("/fhir/Location/elsewhere", 404, "FHIR-008"),
    ("/fhir/Practitioner/999999", 404, "FHIR-008"),
    ("/fhir/PractitionerRole/999999", 404, "FHIR-008"),
    ("/fhir/HealthcareService/999999", 404, "FHIR-008"),
])
def test_errors_are_coded_operation_outcomes(client, region, path, status, code):
    assert outcome(client, path, status) == code


def test_malformed_parameter_diagnostic_names_the_parameter(client, region):
    issue = client.get("/fhir/Organization", params={"partof": "Patient/1"}).json()["issue"][0]
    assert issue["code"] == "value"
    assert issue["diagnostics"] == ("search parameter 'partof': 'Patient/1' refers to a Patient; "
                                    "expected a reference to Organization")


def test_unknown_id_outcome(client, region):
    issue = client.get("/fhir/Organization/999999").json()["issue"][0]
    assert (issue["code"], issue["diagnostics"]) == ("not-found", "Organization/999999 is not known")
