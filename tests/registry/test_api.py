"""HTTP contract of /api/registry: status codes, coded errors, nothing changed on error."""

from tests.factories import make_small_region

ORG = {"code": "91-NEW", "name": "安平市第二人民医院", "level": "L3", "org_type": "general_hospital",
       "division_code": "910100", "grade_level": 3, "grade_class": "A"}


def _org_total(client) -> int:
    return client.get("/api/registry/organizations").json()["total"]


def test_create_read_patch_an_organisation(client, session):
    make_small_region(session)
    created = client.post("/api/registry/organizations", json=ORG)
    assert created.status_code == 201, created.text
    org = created.json()
    assert (org["code"], org["version"]) == ("91-NEW", 1)
    assert client.get(f"/api/registry/organizations/{org['id']}").json()["name"] == ORG["name"]
    patched = client.patch(f"/api/registry/organizations/{org['id']}", json={"phone": "0731-1234567"})
    assert patched.status_code == 200
    assert (patched.json()["phone"], patched.json()["version"]) == ("0731-1234567", 2)


def test_unknown_division_code_gets_a_coded_404_and_writes_nothing(client, session):
    make_small_region(session)
    before = _org_total(client)
    res = client.post("/api/registry/organizations", json=ORG | {"division_code": "123456"})
    assert res.status_code == 404
    assert res.json()["code"] == "REG-001"
    assert "123456" in res.json()["message"]
    assert _org_total(client) == before


def test_duplicate_organisation_code_is_409(client, session):
    make_small_region(session)
    assert client.post("/api/registry/organizations", json=ORG).status_code == 201
    before = _org_total(client)
    res = client.post("/api/registry/organizations", json=ORG | {"name": "重复"})
    assert res.status_code == 409
    assert res.json()["code"] == "REG-002"
    assert _org_total(client) == before


def test_malformed_body_names_the_field(client, session):
    make_small_region(session)
    res = client.post("/api/registry/organizations", json={k: v for k, v in ORG.items() if k != "name"})
    assert res.status_code == 422
    body = res.json()
    assert body["code"] == "HG-422"
    assert "name" in body["message"]
    res = client.patch("/api/registry/organizations/1", json={"colour": "red"})
    assert res.status_code == 422 and "colour" in res.json()["message"]


def test_bad_grade_is_refused_with_the_rule(client, session):
    make_small_region(session)
    res = client.post("/api/registry/organizations", json=ORG | {"grade_level": 2, "grade_class": "S"})
    assert res.status_code == 422
    assert res.json()["code"] == "REG-012"


def test_subtree_listing_and_filters(client, session):
    r = make_small_region(session)
    res = client.get(f"/api/registry/divisions/{r.county.code}/organizations")
    assert res.json()["total"] == 3
    res = client.get(f"/api/registry/divisions/{r.county.code}/organizations", params={"level": "L0"})
    assert [o["code"] for o in res.json()["items"]] == ["91-VC1"]
    res = client.get("/api/registry/divisions", params={"parent_code": r.city.code})
    assert [x["code"] for x in res.json()["items"]] == [r.county.code]
    assert client.get("/api/registry/divisions/000000").json()["code"] == "REG-001"


def test_alliance_membership_over_http(client, session):
    r = make_small_region(session)
    detail = client.get(f"/api/registry/alliances/{r.alliance.id}").json()
    assert detail["kind"] == "county_community"
    assert len(detail["members"]) == 3
    again = client.post(f"/api/registry/alliances/{r.alliance.id}/members", json={"org_code": "91-VC1"})
    assert again.status_code == 409 and again.json()["code"] == "REG-043"
    listed = client.get("/api/registry/organizations", params={"alliance_id": r.alliance.id}).json()
    assert listed["total"] == 3


def test_practitioner_and_multi_site_practice(client, session):
    r = make_small_region(session)
    res = client.post("/api/registry/practitioners", json={
        "licence_no": "120209100000077", "name": "王芳", "sex": "F", "title": "chief_physician",
        "specialty_code": "05.02"})
    assert res.status_code == 201
    pid = res.json()["id"]
    site = client.post(f"/api/registry/practitioners/{pid}/sites",
                       json={"org_id": r.county_hospital.id, "is_primary": True})
    assert site.status_code == 201
    second = client.post(f"/api/registry/practitioners/{pid}/sites",
                         json={"org_id": r.township_centre.id})
    assert second.status_code == 201 and second.json()["is_primary"] is False
    at_thc = client.get("/api/registry/practitioners", params={"org_id": r.township_centre.id}).json()
    assert [p["name"] for p in at_thc["items"]] == ["王芳"]


def test_openapi_documents_the_registry(client):
    spec = client.get("/api/openapi.json").json()
    assert "/api/registry/organizations" in spec["paths"]
    assert client.get("/api/docs").status_code == 200


def test_api_docs_page_works_offline(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text and "https://" not in page.text
    assert client.get("/api/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/api/docs/assets/swagger-ui.css").status_code == 200


def test_listing_children_of_an_unknown_division_is_404_not_the_roots(client, session):
    make_small_region(session)
    res = client.get("/api/registry/divisions", params={"parent_code": "990000"})
    assert res.status_code == 404
    assert res.json()["code"] == "REG-001"


def test_name_search_ignores_latin_letter_case_on_both_databases(client, session):
    r = make_small_region(session)
    url = f"/api/registry/organizations/{r.county_hospital.id}"
    assert client.patch(url, json={"name": "Yongning County Hospital"}).status_code == 200
    found = client.get("/api/registry/organizations", params={"name": "yongning"}).json()
    assert [o["code"] for o in found["items"]] == [r.county_hospital.code]


def test_patch_cannot_empty_a_required_field_and_huge_offsets_are_refused(client, session):
    from tests.factories import make_small_region

    region = make_small_region(session)
    resp = client.patch(f"/api/registry/organizations/{region.county_hospital.id}", json={"active": None})
    assert resp.status_code == 422 and resp.json()["code"] == "REG-015"
    resp = client.get(f"/api/registry/divisions/{region.county.code}/organizations?offset=1153171571954134548480")
    assert resp.status_code == 422


def test_ids_too_large_for_the_database_are_client_errors(client):
    huge = 10**22
    assert client.get(f"/api/registry/organizations/{huge}").status_code == 422
    resp = client.post("/api/security/users", json={"username": "abc", "display_name": "x",
                                                    "password": "Str0ng-Passw0rd!", "org_id": huge})
    assert resp.status_code == 422 and resp.json()["code"] == "HG-423"
    assert client.get(f"/api/security/audit?patient_id={huge}").status_code == 422
