"""The master patient index over FHIR: Patient mapped against golden JSON (strict R4 through
fhirclient's models), create → read → update with If-Match, every search parameter, $match
with scores and grades, masking for a nurse's token, merged records and their links, and
the coded refusals of bodies the index cannot hold."""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qsl, urlsplit

import pytest
from fhirclient.models.bundle import Bundle
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.patient import Patient as StrictPatient
from sqlalchemy import func, select
from tests.factories import SYS, make_small_region, resident_id
from tests.security.conftest import world  # noqa: F401 - a fixture used below

from healthgrid.patients import fhir as patients_fhir
from healthgrid.patients import merging, service
from healthgrid.patients.models import Patient
from healthgrid.security.domain import Role

FHIR_JSON = "application/fhir+json; charset=utf-8"
RID = resident_id(date(1962, 5, 17), seq=124)  # even sequence: a woman
RID_SYSTEM = patients_fhir.RESIDENT_ID_SYSTEM
CARD_SYSTEM = patients_fhir.HEALTH_CARD_SYSTEM
INSURANCE_SYSTEM = patients_fhir.INSURANCE_SYSTEM
MRN = patients_fhir.MRN_SYSTEM
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
MASKED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "MASKED",
          "display": "masked"}
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED",
             "display": "subsetted"}


@pytest.fixture
def region(session):
    return make_small_region(session)


def register_li(session, r, **changes):
    """李秀英, registered at the county hospital with every kind of identifier, a phone, a
    village and street, and her husband as next of kin."""
    data = service.PatientIn(name="李秀英", sex="F", birth_date=date(1962, 5, 17), resident_id=RID,
                             health_card="HC20240001", insurance="YB123456", mrn="ZY-0001", phone="13812345678",
                             division_id=r.village.id, address_line="3组12号",
                             kin=[service.KinIn("王建国", "spouse", "13900001111")])
    for key, value in changes.items():
        setattr(data, key, value)
    return service.register_patient(session, SYS, org_id=r.county_hospital.id, data=data).patient


def register(session, r, name, sex, born, phone=None, org=None, division=None):
    data = service.PatientIn(name=name, sex=sex, birth_date=born, phone=phone, division_id=division)
    return service.register_patient(session, SYS, org_id=(org or r.county_hospital).id, data=data).patient


def fhir_body(r, **changes) -> dict:
    """李秀英 as a FHIR client would create her."""
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": RID_SYSTEM, "value": RID},
                       {"system": f"{MRN}/{r.county_hospital.code}", "value": "ZY-0001"}],
        "name": [{"family": "李", "given": ["秀英"]},
                 {"text": "Li Xiuying", "extension": [{"url": REPRESENTATION, "valueCode": "ABC"}]}],
        "gender": "female",
        "birthDate": "1962-05-17",
        "telecom": [{"system": "phone", "value": "13812345678"}],
        "address": [{"extension": [{"url": patients_fhir.DIVISION_EXTENSION,
                                    "valueReference": {"reference": f"Location/div-{r.village.code}"}}],
                     "line": ["3组12号"]}],
        "contact": [{"relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                                   "code": "HUSB"}]}],
                     "name": {"text": "王建国"}, "telecom": [{"system": "phone", "value": "13900001111"}]}],
        "managingOrganization": {"reference": f"Organization/{r.county_hospital.id}"},
    }
    return body | changes


def read(client, pid, headers=None) -> dict:
    response = client.get(f"/fhir/Patient/{pid}", headers=headers or {})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == FHIR_JSON
    StrictPatient(response.json())  # fhirclient raises on anything that is not R4
    return response.json()


def search(client, query, headers=None) -> dict:
    response = client.get(f"/fhir/Patient?{query}", headers=headers or {})
    assert response.status_code == 200, response.text
    Bundle(response.json())
    return response.json()


def code_of(response) -> str:
    assert response.headers["content-type"] == FHIR_JSON
    return response.json()["issue"][0]["details"]["coding"][0]["code"]


def count(session) -> int:
    return session.scalar(select(func.count()).select_from(Patient))


# -- CapabilityStatement ------------------------------------------------------------------------

def test_capability_statement_declares_the_patient_interactions_and_match(client):
    body = client.get("/fhir/metadata").json()
    CapabilityStatement(body)
    patient = next(r for r in body["rest"][0]["resource"] if r["type"] == "Patient")
    assert [i["code"] for i in patient["interaction"]] == ["read", "search-type", "create", "update"]
    assert patient["versioning"] == "versioned-update"
    assert [(o["name"], o["definition"]) for o in patient["operation"]] == [
        ("match", "http://hl7.org/fhir/OperationDefinition/Patient-match")]
    assert [(p["name"], p["type"]) for p in patient["searchParam"]] == [
        ("_id", "token"), ("identifier", "token"), ("name", "string"), ("birthdate", "date"), ("gender", "token"),
        ("phone", "token"), ("telecom", "token"), ("address", "string")]
    birthdate = next(p for p in patient["searchParam"] if p["name"] == "birthdate")
    assert "equality only" in birthdate["documentation"]


# -- mapping -------------------------------------------------------------------------------------

def test_a_record_maps_to_golden_json(client, session, region):
    r = region
    view = register_li(session, r)
    body = read(client, view.id)
    hospital = {"reference": f"Organization/{r.county_hospital.id}", "display": "永宁县人民医院"}

    def ident(code, display, text, system, value, use="official"):
        return {"use": use, "type": {"coding": [{"system": V2_0203, "code": code, "display": display}], "text": text},
                "system": system, "value": value}

    assert body["meta"].pop("lastUpdated").startswith(str(date.today().year)[:2])
    assert body == {
        "resourceType": "Patient",
        "id": str(view.id),
        "meta": {"versionId": "1"},
        "identifier": [
            ident("NI", "National unique individual identifier", "身份证号", RID_SYSTEM, RID),
            ident("HC", "Health Card Number", "电子健康卡", CARD_SYSTEM, "HC20240001"),
            ident("SN", "Subscriber Number", "医保号", INSURANCE_SYSTEM, "YB123456"),
            ident("MR", "Medical record number", "病案号", f"{MRN}/{r.county_hospital.code}", "ZY-0001", "usual")
            | {"assigner": hospital},
        ],
        "active": True,
        "name": [
            {"use": "official", "text": "李秀英", "family": "李", "given": ["秀英"],
             "extension": [{"url": REPRESENTATION, "valueCode": "IDE"}]},
            {"use": "official", "text": "Li Xiuying", "family": "Li", "given": ["Xiuying"],
             "extension": [{"url": REPRESENTATION, "valueCode": "ABC"}]},
        ],
        "telecom": [{"system": "phone", "value": "13812345678", "use": "mobile"}],
        "gender": "female",
        "birthDate": "1962-05-17",
        "address": [{
            "extension": [{"url": patients_fhir.DIVISION_EXTENSION,
                           "valueReference": {"reference": f"Location/div-{r.village.code}", "display": "桃源村"}}],
            "use": "home", "type": "physical", "text": "青川省安平市永宁县清河镇桃源村3组12号", "line": ["3组12号"],
            "district": "永宁县", "city": "安平市", "state": "青川省", "country": "CN"}],
        "contact": [{
            "relationship": [
                {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N",
                             "display": "Next-of-Kin"}]},
                {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "SPS",
                             "display": "spouse"}], "text": "配偶"}],
            "name": {"text": "王建国"},
            "telecom": [{"system": "phone", "value": "13900001111", "use": "mobile"}]}],
        "managingOrganization": hospital,
    }


@pytest.mark.parametrize(("name", "expected"), [
    ("欧阳娜娜", [{"text": "欧阳娜娜", "family": "欧阳", "given": ["娜娜"]},
              {"text": "Ouyang Nana", "family": "Ouyang", "given": ["Nana"]}]),
    ("阿卜杜拉·买买提", [{"text": "阿卜杜拉·买买提"}, {"text": "a bo du la mai mai ti"}]),
    ("John Smith", [{"text": "John Smith"}]),
])
def test_names_in_characters_and_pinyin(client, session, region, name, expected):
    view = register(session, region, name, "M", date(1990, 11, 23))
    names = read(client, view.id)["name"]
    assert [{k: v for k, v in n.items() if k in ("text", "family", "given")} for n in names] == expected
    assert [n["extension"][0]["valueCode"] for n in names] == (["ABC"] if name.isascii() else ["IDE", "ABC"])


# -- create, read, update -------------------------------------------------------------------------

def test_create_read_update_with_if_match_and_412_when_stale(client, session, region):
    created = client.post("/fhir/Patient", json=fhir_body(region))
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert created.headers["location"] == f"http://testserver/fhir/Patient/{pid}/_history/1"
    assert created.headers["etag"] == 'W/"1"'
    assert created.headers["x-healthgrid-outcome"] == "created"
    body = read(client, pid)
    assert body["name"][1]["text"] == "Li Xiuying"
    assert [c["relationship"][1]["coding"][0]["code"] for c in body["contact"]] == ["SPS"]  # HUSB is a spouse

    body["telecom"] = [{"system": "phone", "value": "13800009999"}]  # a round trip of what was read
    updated = client.put(f"/fhir/Patient/{pid}", json=body, headers={"If-Match": 'W/"1"'})
    assert updated.status_code == 200, updated.text
    assert updated.headers["etag"] == 'W/"2"'
    assert updated.json()["telecom"][0]["value"] == "13800009999"
    assert updated.json()["identifier"] == body["identifier"]  # identifiers are kept as they were
    assert read(client, pid)["meta"]["versionId"] == "2"

    stale = client.put(f"/fhir/Patient/{pid}", json=body, headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412 and code_of(stale) == "PAT-025"
    wrong = client.put(f"/fhir/Patient/{pid}", json=body, headers={"If-Match": 'W/"v1"'})
    assert wrong.status_code == 412 and code_of(wrong) == "FHIR-016"
    other_id = client.put(f"/fhir/Patient/{pid}", json=body | {"id": "999"})
    assert other_id.status_code == 400 and code_of(other_id) == "FHIR-012"
    missing = client.put("/fhir/Patient/999999", json=body | {"id": "999999"})
    assert missing.status_code == 404 and code_of(missing) == "PAT-010"


def test_create_of_a_known_resident_links_and_answers_200(client, session, region):
    first = client.post("/fhir/Patient", json=fhir_body(region))
    again = client.post("/fhir/Patient", json=fhir_body(region, telecom=[]))
    assert again.status_code == 200
    assert again.headers["x-healthgrid-outcome"] == "linked"
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    assert count(session) == 1


def test_create_of_a_doubtful_namesake_is_made_and_flagged_for_review(client, session, region):
    register(session, region, "王建国", "M", date(1950, 1, 2), phone="13711112222", division=region.village.id)
    namesake = {"resourceType": "Patient", "name": [{"text": "王建国"}], "gender": "male",
                "birthDate": "1950-01-02", "telecom": [{"system": "phone", "value": "13733334444"}]}
    response = client.post("/fhir/Patient", json=namesake)
    assert response.status_code == 201
    assert response.headers["x-healthgrid-outcome"] == "review"
    assert "managingOrganization" not in response.json()  # the platform has no organisation of its own


@pytest.mark.parametrize(("changes", "code"), [
    ({"gender": "other"}, "PAT-070"),
    ({"gender": "F"}, "PAT-070"),  # R4B does not check the code; the index does
    ({"birthDate": "1962"}, "PAT-070"),  # valid FHIR, but the index keeps full dates
    ({"maritalStatus": {"text": "已婚"}}, "PAT-070"),
    ({"telecom": [{"system": "email", "value": "li@example.cn"}]}, "PAT-070"),
    ({"telecom": [{"system": "phone", "value": "13812345678"}, {"system": "phone", "value": "13812345679"}]},
     "PAT-070"),
    ({"identifier": [{"system": RID_SYSTEM, "value": "910102********1242"}]}, "PAT-071"),
    ({"meta": {"security": [MASKED]}}, "PAT-071"),
    ({"telecom": [{"system": "phone", "value": "138****5678"}]}, "PAT-071"),
    ({"identifier": [{"system": "http://passports.example", "value": "E1234567"}]}, "PAT-072"),
    ({"identifier": [{"system": RID_SYSTEM, "value": RID}, {"system": RID_SYSTEM, "value": RID}]}, "PAT-072"),
    ({"identifier": [{"system": f"{MRN}/91-THC1", "value": "T-1"}]}, "PAT-072"),  # another facility's number
    ({"identifier": [{"system": f"{MRN}/NO-SUCH", "value": "T-1"}]}, "PAT-073"),
    ({"managingOrganization": {"reference": "Organization/999999"}}, "PAT-073"),
    ({"address": [{"extension": [{"url": patients_fhir.DIVISION_EXTENSION,
                                  "valueReference": {"reference": "Location/div-000000"}}]}]}, "PAT-073"),
    ({"identifier": [{"system": RID_SYSTEM, "value": RID[:17] + ("1" if RID[17] == "0" else "0")}]}, "SEC-033"),
    ({"name": [{"text": "Li123"}]}, "PAT-001"),
    ({"gender": "male"}, "PAT-008"),  # the ID number says a woman
])
def test_bodies_the_index_cannot_hold_are_refused_with_422_and_change_nothing(client, session, region, changes,
                                                                             code):
    response = client.post("/fhir/Patient", json=fhir_body(region, **changes))
    assert response.status_code == 422, response.text
    assert code_of(response) == code
    assert count(session) == 0


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"resourceType": "Organization", "name": "x"}, 400, "FHIR-010"),
    ({"resourceType": "Patient", "birthDate": "17.05.1962"}, 400, "FHIR-011"),
])
def test_bodies_that_are_not_r4_patients_are_a_400(client, session, body, status, code):
    response = client.post("/fhir/Patient", json=body)
    assert response.status_code == status and code_of(response) == code


def test_a_merged_away_record_reads_as_replaced_and_cannot_be_updated(client, session, region):
    a = register(session, region, "刘洋", "M", date(1971, 3, 9), phone="13755556666")
    b = register(session, region, "刘洋", "M", date(1971, 3, 9), phone="13777778888")
    merging.merge_patients(session, SYS, survivor_id=a.id, loser_id=b.id, reason="same man")
    loser = read(client, b.id)
    assert loser["active"] is False
    assert loser["link"] == [{"other": {"reference": f"Patient/{a.id}"}, "type": "replaced-by"}]
    survivor = read(client, a.id)
    assert survivor["active"] is True
    assert survivor["link"] == [{"other": {"reference": f"Patient/{b.id}"}, "type": "replaces"}]
    response = client.put(f"/fhir/Patient/{b.id}", json=loser)
    assert response.status_code == 409 and code_of(response) == "PAT-024"
    found = search(client, "name=刘洋")  # a search finds the record standing now
    assert [e["resource"]["id"] for e in found["entry"]] == [str(a.id)]


# -- search ---------------------------------------------------------------------------------------

@pytest.fixture
def residents(session, region) -> dict[str, str]:
    li = register_li(session, region)
    zhang = register(session, region, "张晓明", "M", date(1980, 3, 7), phone="13912345678")
    ouyang = register(session, region, "欧阳娜娜", "F", date(1990, 11, 23), org=region.township_centre)
    return {"li": str(li.id), "zhang": str(zhang.id), "ouyang": str(ouyang.id)}


@pytest.mark.parametrize(("query", "expected"), [
    (f"identifier={RID}", ["li"]),
    (f"identifier={RID_SYSTEM}|{RID}", ["li"]),
    (f"identifier={CARD_SYSTEM}|HC20240001", ["li"]),
    (f"identifier={INSURANCE_SYSTEM}|yb123456", ["li"]),
    ("identifier=http://passports.example|E1234567", []),
    (f"identifier={RID[:17]}0", []),  # a malformed number finds nobody
    ("name=李秀英", ["li"]),
    ("name=li xiu ying", ["li"]),
    ("name=lixiuying", ["li"]),
    ("name=li3 xiu4 ying1", ["li"]),
    ("name=张小明", ["zhang"]),  # a homophone
    ("name=zhangxiaoming&gender=male", ["zhang"]),
    ("name=张晓明&gender=female", []),
    ("name=欧阳娜娜&gender=http://hl7.org/fhir/administrative-gender|female", ["ouyang"]),
    ("name=欧阳娜娜&gender=other", []),
    ("birthdate=1980-03-07", ["zhang"]),
    ("birthdate=eq1962-05-17", ["li"]),
    ("phone=13912345678", ["zhang"]),
    ("telecom=phone|13812345678", ["li"]),
    ("telecom=email|li@example.cn", []),
    ("address=桃源村", ["li"]),
    ("address=无此村", []),
])
def test_search_parameters(client, residents, query, expected):
    bundle = search(client, query)
    assert [e["resource"]["id"] for e in bundle.get("entry", [])] == [residents[k] for k in expected]
    assert bundle["total"] == len(expected)


def test_search_by_id_returns_the_whole_record(client, residents):
    bundle = search(client, f"_id={residents['li']},{residents['zhang']},999999")
    assert [e["resource"]["id"] for e in bundle["entry"]] == [residents["li"], residents["zhang"]]
    assert "tag" not in bundle["entry"][0]["resource"]["meta"]
    assert bundle["entry"][0]["resource"]["meta"]["versionId"] == "1"


def test_search_hits_are_subsetted_summaries(client, residents):
    hit = search(client, "name=李秀英")["entry"][0]["resource"]
    assert hit["meta"] == {"tag": [SUBSETTED]}
    assert hit["identifier"][0]["value"] == RID  # the platform sees it unmasked
    assert hit["address"] == [{"use": "home", "text": "青川省安平市永宁县清河镇桃源村"}]


@pytest.mark.parametrize(("query", "status", "code"), [
    ("", 400, "PAT-013"),
    ("gender=female", 400, "PAT-013"),  # gender alone narrows nothing
    ("birthdate=1980", 400, "FHIR-003"),
    ("birthdate=ge1980-01-01", 400, "FHIR-003"),
    (f"identifier={MRN}/91-CH1|ZY-0001", 400, "FHIR-003"),
    ("identifier=http://x|", 400, "FHIR-003"),
    ("phone=12345", 400, "PAT-005"),
    ("phone=13812345678&telecom=phone|13912345678", 400, "FHIR-003"),
    ("name=李秀英&name=张晓明", 400, "FHIR-003"),
    ("name=李秀英,张晓明", 400, "FHIR-003"),
    ("_id=1&name=李秀英", 400, "FHIR-003"),
    ("name:exact=李秀英", 400, "FHIR-004"),
    ("colour=red", 400, "FHIR-002"),
])
def test_searches_the_index_cannot_run_are_a_400(client, residents, query, status, code):
    response = client.get(f"/fhir/Patient?{query}")
    assert response.status_code == status, response.text
    assert code_of(response) == code


def test_search_pages_without_counting(client, session, region):
    for born, phone in ((date(1950, 1, 2), "13711110001"), (date(1951, 2, 3), "13711110002"),
                        (date(1952, 3, 4), "13711110003")):
        register(session, region, "王建国", "M", born, phone=phone)
    first = search(client, "name=王建国&_count=2")
    assert len(first["entry"]) == 2 and "total" not in first
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert "last" not in links
    assert dict(parse_qsl(urlsplit(links["next"]).query))["_offset"] == "2"
    second = search(client, links["next"].removeprefix("http://testserver/fhir/Patient?"))
    assert len(second["entry"]) == 1 and second["total"] == 3
    assert "next" not in {link["relation"] for link in second["link"]}
    ids = [e["resource"]["id"] for e in first["entry"] + second["entry"]]
    assert len(set(ids)) == 3


# -- $match ---------------------------------------------------------------------------------------

def match_body(patient: dict, **params) -> dict:
    extra = [{"name": k, **({"valueBoolean": v} if isinstance(v, bool) else {"valueInteger": v})}
             for k, v in params.items()]
    return {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": patient}, *extra]}


WANG = {"resourceType": "Patient", "name": [{"text": "王建国"}], "gender": "male", "birthDate": "1950-01-02"}


@pytest.fixture
def wangs(session, region) -> dict[str, str]:
    """The same 王建国 (his phone) and a namesake born the same day (another phone)."""
    same = register(session, region, "王建国", "M", date(1950, 1, 2), phone="13711112222", division=region.village.id)
    other = register(session, region, "王建国", "M", date(1950, 1, 2), phone="13733334444")
    return {"same": str(same.id), "other": str(other.id)}


def test_match_scores_and_grades_candidates_best_first(client, wangs):
    probe = WANG | {"telecom": [{"system": "phone", "value": "13711112222"}]}
    response = client.post("/fhir/Patient/$match", json=match_body(probe))
    assert response.status_code == 200, response.text
    bundle = response.json()
    Bundle(bundle)
    assert bundle["type"] == "searchset" and bundle["total"] == 2
    entries = bundle["entry"]
    assert [e["resource"]["id"] for e in entries] == [wangs["same"], wangs["other"]]
    assert [e["search"]["extension"][0]["valueCode"] for e in entries] == ["certain", "possible"]
    assert all(e["search"]["mode"] == "match" for e in entries)
    assert all(e["search"]["extension"][0]["url"] == patients_fhir.MATCH_GRADE for e in entries)
    scores = [e["search"]["score"] for e in entries]
    assert 1 >= scores[0] >= 0.99 > scores[1] >= 0.5


def test_match_options_and_a_bare_patient_body(client, wangs):
    probe = WANG | {"telecom": [{"system": "phone", "value": "13711112222"}]}
    certain = client.post("/fhir/Patient/$match", json=match_body(probe, onlyCertainMatches=True)).json()
    assert [e["resource"]["id"] for e in certain["entry"]] == [wangs["same"]]
    one = client.post("/fhir/Patient/$match", json=match_body(WANG, count=1)).json()
    assert len(one["entry"]) == 1
    bare = client.post("/fhir/Patient/$match", json=WANG).json()  # "POST a patient record to Patient/$match"
    assert {e["resource"]["id"] for e in bare["entry"]} == set(wangs.values())


def test_match_by_resident_id_is_certain(client, session, region):
    li = register_li(session, region)
    probe = {"resourceType": "Patient", "name": [{"text": "李秀英"}],
             "identifier": [{"system": RID_SYSTEM, "value": RID}]}
    entry = client.post("/fhir/Patient/$match", json=match_body(probe)).json()["entry"][0]
    assert entry["resource"]["id"] == str(li.id)
    assert entry["search"]["score"] == 1.0 and entry["search"]["extension"][0]["valueCode"] == "certain"


@pytest.mark.parametrize(("method", "body", "status", "code"), [
    ("GET", None, 405, "FHIR-005"),
    ("POST", {"resourceType": "Parameters"}, 400, "FHIR-014"),
    ("POST", match_body(WANG, count=0), 400, "FHIR-014"),
    ("POST", {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": WANG}, {"name": "threshold", "valueDecimal": 0.5}]}, 400, "FHIR-014"),
    ("POST", match_body({"resourceType": "Organization", "name": "x"}), 400, "FHIR-014"),
    ("POST", match_body(WANG | {"gender": "other"}), 422, "PAT-070"),
])
def test_bad_match_requests(client, method, body, status, code):
    response = client.request(method, "/fhir/Patient/$match", json=body)
    assert response.status_code == status, response.text
    assert code_of(response) == code


# -- with real tokens: masking and permissions ---------------------------------------------------

def bearer(world, role: Role) -> dict[str, str]:  # noqa: F811 - world is the fixture's value here
    return {"Authorization": f"Bearer {world.tokens[role]}"}


def test_a_nurse_sees_identifiers_masked_and_a_clinician_in_full(secure_client, session, world):  # noqa: F811
    view = register_li(session, world.region)
    session.commit()
    nurse = read(secure_client, view.id, bearer(world, Role.NURSE))
    assert nurse["meta"]["security"] == [MASKED]
    assert [i["value"] for i in nurse["identifier"]][0] == RID[:6] + "********" + RID[-4:]
    assert nurse["telecom"][0]["value"] == "138****5678"
    assert "line" not in nurse["address"][0] and nurse["address"][0]["text"] == "青川省安平市永宁县清河镇桃源村"
    assert nurse["contact"][0]["name"]["text"] == "王**"
    clinician = read(secure_client, view.id, bearer(world, Role.CLINICIAN))
    assert "security" not in clinician["meta"]
    assert clinician["identifier"][0]["value"] == RID
    hit = search(secure_client, f"identifier={RID}", bearer(world, Role.NURSE))["entry"][0]["resource"]
    assert hit["meta"]["security"] == [MASKED] and hit["name"] == [{"use": "official", "text": "李**"}]
    # What the nurse read cannot be written back: the masked values would overwrite the record.
    refused = secure_client.put(f"/fhir/Patient/{view.id}", json=nurse, headers=bearer(world, Role.NURSE))
    assert refused.status_code == 422 and code_of(refused) == "PAT-071"


def test_a_nurse_registers_at_her_own_facility_with_a_token(secure_client, session, world):  # noqa: F811
    body = {"resourceType": "Patient", "name": [{"text": "周桂兰"}], "gender": "female", "birthDate": "1958-02-03"}
    response = secure_client.post("/fhir/Patient", json=body, headers=bearer(world, Role.NURSE))
    assert response.status_code == 201, response.text
    assert response.json()["managingOrganization"]["reference"] == f"Organization/{world.region.county_hospital.id}"
    assert response.json()["meta"]["security"] == [MASKED]


@pytest.mark.parametrize(("role", "status", "code"), [
    (Role.RESIDENT, 403, "SEC-102"),  # may read the registry, not the patient index
    (Role.FACILITY_ADMIN, 403, "SEC-102"),
])
def test_roles_without_patient_rights_are_refused(secure_client, session, world, role, status, code):  # noqa: F811
    view = register_li(session, world.region)
    session.commit()
    response = secure_client.get(f"/fhir/Patient/{view.id}", headers=bearer(world, role))
    assert response.status_code == status and code_of(response) == code
    created = secure_client.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"text": "周桂兰"}]},
                                 headers=bearer(world, role))
    assert created.status_code == status


def test_anonymous_writes_are_401(secure_client):
    response = secure_client.post("/fhir/Patient", json={"resourceType": "Patient"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_cookie_sessions_write_only_with_the_csrf_header(secure_client, session, world):  # noqa: F811
    from healthgrid.security import service as security

    token, csrf = security.start_session(session, world.users[Role.CLINICIAN], client="testclient", mfa_passed=True)
    session.commit()
    secure_client.cookies.set("hg_session", token)
    body = {"resourceType": "Patient", "name": [{"text": "周桂兰"}], "gender": "female", "birthDate": "1958-02-03"}
    forged = secure_client.post("/fhir/Patient", json=body)
    assert forged.status_code == 403 and code_of(forged) == "SEC-108"
    assert secure_client.post("/fhir/Patient", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201
