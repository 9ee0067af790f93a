"""The FHIR core's writes and operations over HTTP, independent of any context: an in-memory
provider of versioned ``Basic`` resources with create, update, a GET-able ``$tally`` and a
POST-only ``$submit`` — status codes, Location / ETag / Last-Modified, If-Match, the 400s of
bad bodies, 405 with Allow where a type does not write, the CapabilityStatement; plus date
search parameters and paging without a known total."""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.operationoutcome import OperationOutcome

from healthgrid.config import FhirSettings
from healthgrid.errors import HealthGridError, Invalid
from healthgrid.fhir import (
    ERROR_SYSTEM,
    ID_PARAM,
    VERSION_CONFLICT,
    DateValue,
    FhirError,
    FhirRegistry,
    OperationDef,
    OperationRequest,
    ParamType,
    ResourceProvider,
    SearchParamDef,
    SearchRequest,
    SearchResult,
    Written,
    build_fhir_router,
    operation_outcome_response,
)
from healthgrid.fhir.bundle import page_links
from healthgrid.fhir.search import parse_search
from healthgrid.http import get_session, install_error_handlers

FHIR_JSON = "application/fhir+json; charset=utf-8"
STAMP = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)


def tally(session, op: OperationRequest) -> dict:
    return {"resourceType": "Parameters", "parameter": [
        {"name": "code", "valueString": op.one("code") or "*"},
        {"name": "limit", "valueInteger": op.integer("limit", 5, minimum=1, maximum=9)}]}


def submit(session, op: OperationRequest) -> dict:
    basic = op.resource("resource", "Basic")
    return {"resourceType": "Parameters", "parameter": [
        {"name": "code", "valueString": basic["code"]["text"]},
        {"name": "dryRun", "valueBoolean": op.boolean("dryRun", False)},
        {"name": "actor", "valueString": str(op.actor)}]}


class WritableBasic(ResourceProvider):
    """Basic resources in a dict, versioned from 1; code text "refuse" breaks a rule."""

    resource_type = "Basic"
    versioning = "versioned-update"
    search_params = (ID_PARAM,)
    operations = (
        OperationDef("tally", "https://hg.test/OperationDefinition/tally", tally, ("code", "limit"), get=True,
                     documentation="Counts."),
        OperationDef("submit", "https://hg.test/OperationDefinition/submit", submit, ("resource", "dryRun"),
                     resource_param="resource"),
    )

    def __init__(self):
        self.rows: dict[str, dict] = {}
        self.actors: list = []

    def search(self, session, request: SearchRequest) -> SearchResult:
        ids = {v for c in request.of("_id") for v in c.values}
        hits = [r for i, r in sorted(self.rows.items()) if not ids or i in ids]
        return SearchResult(len(hits), hits[request.offset:request.offset + request.count])

    def _stored(self, resource: dict, rid: str, version: int) -> dict:
        if resource["code"]["text"] == "refuse":
            raise Invalid("TEST-422", "code: 'refuse' is refused", {"field": "code"})
        row = resource | {"id": rid, "meta": {"versionId": str(version), "lastUpdated": STAMP.isoformat()}}
        self.rows[rid] = row
        return row

    def create(self, session, resource, actor=None) -> Written:
        self.actors.append(actor)
        assert "id" not in resource  # the core drops it
        return Written(self._stored(resource, f"b{len(self.rows) + 1}", 1), headers={"X-Test": "made"})

    def update(self, session, resource_id, resource, actor=None, *, if_match=None) -> Written:
        self.actors.append(actor)
        current = self.rows.get(resource_id)
        if current is None:
            raise HealthGridError("TEST-404", "no such Basic")
        version = int(current["meta"]["versionId"])
        if if_match is not None and if_match != str(version):
            raise FhirError(VERSION_CONFLICT, f"at version {version}", status=412, issue="conflict")
        return Written(self._stored(resource, resource_id, version + 1), created=False)


class ReadOnlyDevice(ResourceProvider):
    resource_type = "Device"
    search_params = (ID_PARAM,)

    def search(self, session, request):
        return SearchResult(0)


def basic(code: str = "alpha", **extra) -> dict:
    return {"resourceType": "Basic", "code": {"text": code}} | extra


@pytest.fixture
def provider() -> WritableBasic:
    return WritableBasic()


@pytest.fixture
def fhir(provider) -> TestClient:
    async def actor(request: Request):
        return request.headers.get("x-who", "anonymous")

    registry = FhirRegistry(FhirSettings())
    registry.register(provider)
    registry.register(ReadOnlyDevice())
    app = FastAPI()
    install_error_handlers(app, [("/fhir", operation_outcome_response)])
    app.include_router(build_fhir_router(registry, actor=actor), prefix="/fhir")
    app.dependency_overrides[get_session] = lambda: None
    with TestClient(app, base_url="http://hg.test") as c:
        yield c


def outcome_code(response) -> str:
    assert response.headers["content-type"] == FHIR_JSON
    OperationOutcome(response.json())  # strict R4
    details = response.json()["issue"][0]["details"]
    assert details["coding"][0]["system"] == ERROR_SYSTEM
    return details["coding"][0]["code"]


# -- CapabilityStatement -------------------------------------------------------------------------

def test_capability_statement_lists_writes_and_operations_per_type(fhir):
    body = fhir.get("/fhir/metadata").json()
    cs = CapabilityStatement(body)  # strict R4
    resources = {r.type: r for r in cs.rest[0].resource}
    assert [i.code for i in resources["Basic"].interaction] == ["read", "search-type", "create", "update"]
    assert resources["Basic"].versioning == "versioned-update"
    assert [(o.name, o.definition) for o in resources["Basic"].operation] == [
        ("tally", "https://hg.test/OperationDefinition/tally"), ("submit", "https://hg.test/OperationDefinition/submit")]
    assert resources["Basic"].operation[0].documentation == "Counts."
    assert [i.code for i in resources["Device"].interaction] == ["read", "search-type"]
    assert resources["Device"].operation is None and resources["Device"].versioning == "no-version"


# -- create --------------------------------------------------------------------------------------

def test_create_answers_201_with_location_etag_and_the_resource(fhir, provider):
    response = fhir.post("/fhir/Basic", json=basic(id="client-chosen"), headers={"x-who": "dr-li"})
    assert response.status_code == 201
    assert response.headers["content-type"] == FHIR_JSON
    assert response.headers["location"] == "http://hg.test/fhir/Basic/b1/_history/1"
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["last-modified"] == "Fri, 01 Mar 2024 08:30:00 GMT"
    assert response.headers["x-test"] == "made"  # the provider's own header
    assert response.json()["id"] == "b1"  # the id the client sent is ignored (R4 http.html#create)
    assert provider.actors == ["dr-li"]


def test_read_carries_the_version_as_etag(fhir):
    fhir.post("/fhir/Basic", json=basic())
    response = fhir.get("/fhir/Basic/b1")
    assert response.headers["etag"] == 'W/"1"'
    assert response.json()["meta"]["versionId"] == "1"


def test_prefer_return_minimal_drops_the_body(fhir):
    response = fhir.post("/fhir/Basic", json=basic(), headers={"Prefer": "return=minimal"})
    assert response.status_code == 201
    assert response.content == b""
    assert response.headers["location"].endswith("/Basic/b1/_history/1")


def test_plain_json_and_fhir_json_bodies_are_accepted(fhir):
    for ctype in ("application/json", "application/fhir+json; charset=utf-8", "application/json+fhir"):
        response = fhir.post("/fhir/Basic", content=b'{"resourceType": "Basic", "code": {"text": "x"}}',
                             headers={"content-type": ctype})
        assert response.status_code == 201, ctype


@pytest.mark.parametrize(("content", "ctype", "status", "code"), [
    (b"", "application/fhir+json", 400, "FHIR-010"),
    (b"{not json", "application/fhir+json", 400, "FHIR-010"),
    (b"\xff\xfe", "application/fhir+json", 400, "FHIR-010"),
    (b"[1, 2]", "application/fhir+json", 400, "FHIR-010"),
    (b'{"code": {"text": "x"}}', "application/fhir+json", 400, "FHIR-010"),  # no resourceType
    (b'{"resourceType": "Device"}', "application/fhir+json", 400, "FHIR-010"),  # another type
    (b'{"resourceType": "Basic"}', "application/fhir+json", 400, "FHIR-011"),  # Basic.code is required
    (b'{"resourceType": "Basic", "code": {"text": "x"}, "colour": "red"}', "application/fhir+json", 400,
     "FHIR-011"),
    (b"<Basic/>", "application/fhir+xml", 415, "FHIR-006"),
    (b'{"resourceType": "Basic", "code": {"text": "refuse"}}', "application/fhir+json", 422, "TEST-422"),
])
def test_bad_bodies_are_refused_with_a_coded_outcome(fhir, provider, content, ctype, status, code):
    response = fhir.post("/fhir/Basic", content=content, headers={"content-type": ctype})
    assert response.status_code == status
    assert outcome_code(response) == code
    assert provider.rows == {}


def test_invalid_r4_names_the_element(fhir):
    response = fhir.post("/fhir/Basic", json=basic(created="yesterday"))
    assert "created" in response.json()["issue"][0]["diagnostics"]


# -- update --------------------------------------------------------------------------------------

def test_update_with_if_match_moves_the_version_and_a_stale_one_is_412(fhir):
    fhir.post("/fhir/Basic", json=basic())
    response = fhir.put("/fhir/Basic/b1", json=basic("beta", id="b1"), headers={"If-Match": 'W/"1"'})
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"2"'
    assert "location" not in response.headers
    assert response.json()["code"]["text"] == "beta"
    stale = fhir.put("/fhir/Basic/b1", json=basic("gamma", id="b1"), headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert outcome_code(stale) == "FHIR-016"
    assert fhir.get("/fhir/Basic/b1").json()["code"]["text"] == "beta"
    unconditional = fhir.put("/fhir/Basic/b1", json=basic("delta", id="b1"))
    assert unconditional.headers["etag"] == 'W/"3"'


@pytest.mark.parametrize("header", ['"1"', 'W/"1"', ' W/"1" '])
def test_if_match_forms(fhir, header):
    fhir.post("/fhir/Basic", json=basic())
    assert fhir.put("/fhir/Basic/b1", json=basic(id="b1"), headers={"If-Match": header}).status_code == 200


@pytest.mark.parametrize(("body", "headers", "status", "code"), [
    (basic(), {}, 400, "FHIR-012"),  # no id in the body
    (basic(id="b2"), {}, 400, "FHIR-012"),  # another id than the URL's
    (basic(id="b1"), {"If-Match": "1"}, 400, "FHIR-015"),  # not an ETag
    (basic(id="b1"), {"If-Match": 'W/""'}, 400, "FHIR-015"),
    ({"resourceType": "Device", "id": "b1"}, {}, 400, "FHIR-010"),
])
def test_bad_updates_are_refused(fhir, body, headers, status, code):
    fhir.post("/fhir/Basic", json=basic())
    response = fhir.put("/fhir/Basic/b1", json=body, headers=headers)
    assert response.status_code == status
    assert outcome_code(response) == code


def test_update_of_a_malformed_id_is_a_400(fhir):
    response = fhir.put("/fhir/Basic/bad%24id", json=basic(id="bad$id"))
    assert response.status_code == 400 and outcome_code(response) == "FHIR-003"


# -- what a type does not serve -----------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "allow"), [
    ("POST", "/fhir/Device", "GET"),
    ("PUT", "/fhir/Device/d1", "GET"),
    ("DELETE", "/fhir/Basic/b1", "GET, PUT"),
    ("POST", "/fhir/Basic/b1", "GET, PUT"),
    ("DELETE", "/fhir/Basic", "GET, POST"),
    ("PUT", "/fhir/Basic/_search", "GET, POST"),
    ("PUT", "/fhir/Basic/$submit", "POST"),
    ("GET", "/fhir/Basic/$submit", "POST"),
    ("DELETE", "/fhir/Basic/$tally", "GET, POST"),
])
def test_wrong_methods_are_405_with_allow(fhir, method, path, allow):
    response = fhir.request(method, path, json=basic(id="d1"))
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert outcome_code(response) == "FHIR-005"


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("POST", "/fhir/Nonsense", 404, "FHIR-001"),
    ("PUT", "/fhir/Nonsense/1", 404, "FHIR-001"),
    ("POST", "/fhir/Nonsense/$tally", 404, "FHIR-001"),
    ("POST", "/fhir/Basic/$nope", 400, "FHIR-013"),
    ("DELETE", "/fhir/Basic/$nope", 400, "FHIR-005"),
    ("POST", "/fhir/Device/$tally", 400, "FHIR-013"),
])
def test_unknown_types_and_operations(fhir, method, path, status, code):
    response = fhir.request(method, path, json={"resourceType": "Parameters"})
    assert response.status_code == status
    assert outcome_code(response) == code


# -- operations ----------------------------------------------------------------------------------

def parameters(response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == FHIR_JSON
    return {p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in response.json()["parameter"]}


def test_an_operation_by_get_and_by_post(fhir):
    assert parameters(fhir.get("/fhir/Basic/$tally?code=alpha&limit=3&_format=json")) == {"code": "alpha", "limit": 3}
    posted = fhir.post("/fhir/Basic/$tally", json={"resourceType": "Parameters", "parameter": [
        {"name": "code", "valueString": "beta"}, {"name": "limit", "valueInteger": 7}]})
    assert parameters(posted) == {"code": "beta", "limit": 7}
    assert parameters(fhir.post("/fhir/Basic/$tally")) == {"code": "*", "limit": 5}  # no body: no inputs


def test_an_operation_takes_its_resource_in_parameters_or_bare(fhir):
    wrapped = fhir.post("/fhir/Basic/$submit", headers={"x-who": "dr-wang"}, json={
        "resourceType": "Parameters", "parameter": [{"name": "resource", "resource": basic("gamma")},
                                                    {"name": "dryRun", "valueBoolean": True}]})
    assert parameters(wrapped) == {"code": "gamma", "dryRun": True, "actor": "dr-wang"}
    assert parameters(fhir.post("/fhir/Basic/$submit", json=basic("delta")))["code"] == "delta"


@pytest.mark.parametrize(("path", "body", "code", "words"), [
    ("/fhir/Basic/$tally", {"resourceType": "Parameters", "parameter": [{"name": "colour", "valueString": "x"}]},
     "FHIR-014", "unknown parameter 'colour'"),
    ("/fhir/Basic/$tally", {"resourceType": "Parameters", "parameter": [
        {"name": "code", "valueString": "a"}, {"name": "code", "valueString": "b"}]}, "FHIR-014", "2 times"),
    ("/fhir/Basic/$tally", {"resourceType": "Parameters", "parameter": [{"name": "limit", "valueInteger": 99}]},
     "FHIR-014", "from 1 to 9"),
    ("/fhir/Basic/$tally", {"resourceType": "Parameters", "parameter": [{"name": "limit", "valueString": "x"}]},
     "FHIR-014", "integer"),
    ("/fhir/Basic/$tally", {"resourceType": "Parameters", "parameter": [
        {"name": "code", "part": [{"name": "x", "valueString": "y"}]}]}, "FHIR-014", "multi-part"),
    ("/fhir/Basic/$tally", basic(), "FHIR-014", "takes a Parameters"),
    ("/fhir/Basic/$submit", {"resourceType": "Parameters"}, "FHIR-014", "'resource' (a Basic) is required"),
    ("/fhir/Basic/$submit", {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Device"}}]}, "FHIR-014", "must be a Basic"),
    ("/fhir/Basic/$submit", {"resourceType": "Parameters", "parameter": [
        {"name": "dryRun", "valueBoolean": "maybe"}]}, "FHIR-011", "valueBoolean"),
    ("/fhir/Basic/$submit", {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Basic"}}]}, "FHIR-011", "code"),
])
def test_bad_operation_input_is_a_400(fhir, path, body, code, words):
    response = fhir.post(path, json=body)
    assert response.status_code == 400
    assert outcome_code(response) == code
    assert words in response.json()["issue"][0]["diagnostics"]


def test_an_operation_by_get_refuses_unknown_query_parameters(fhir):
    response = fhir.get("/fhir/Basic/$tally?colour=red")
    assert response.status_code == 400 and outcome_code(response) == "FHIR-014"


# -- search: dates and totals the provider does not know ----------------------------------------

DATES = (ID_PARAM, SearchParamDef("birthdate", ParamType.DATE, "born", prefixes=("eq", "ge")),
         SearchParamDef("when", ParamType.DATE, "any prefix"))


@pytest.mark.parametrize(("raw", "expected"), [
    ("1962-05-17", DateValue("eq", "1962-05-17")),
    ("eq1962-05-17", DateValue("eq", "1962-05-17")),
    ("ge1962", DateValue("ge", "1962")),
    ("1962-05", DateValue("eq", "1962-05")),
])
def test_date_values_are_parsed_with_their_prefix(raw, expected):
    request = parse_search("Patient", [("birthdate", raw)], DATES, default_count=10, max_count=10)
    assert request.clauses[0].values == (expected,)


def test_a_date_value_knows_whether_it_is_a_full_date():
    assert DateValue("eq", "1962-05-17").full_date() == date(1962, 5, 17)
    assert DateValue("eq", "1962-05").full_date() is None
    assert DateValue("eq", "2023-02-30").full_date() is None


@pytest.mark.parametrize(("items", "words"), [
    ([("birthdate", "lt1962-05-17")], "prefix 'lt' is not supported"),
    ([("birthdate", "17/05/1962")], "is not a date"),
    ([("birthdate", "1962-13-01")], "is not a date"),
    ([("when", "2024-03-01T08:30:00Z,2024-03-02T08:30:00+08:00")], None),
])
def test_bad_dates_are_refused(items, words):
    if words is None:  # a dateTime with a zone, any prefix allowed
        parse_search("Patient", items, DATES, default_count=10, max_count=10)
        return
    with pytest.raises(FhirError) as caught:
        parse_search("Patient", items, DATES, default_count=10, max_count=10)
    assert caught.value.code == "FHIR-003" and words in caught.value.message


def offsets(links: list[dict[str, str]]) -> dict[str, int]:
    return {link["relation"]: int(dict(parse_qsl(urlsplit(link["url"]).query))["_offset"]) for link in links}


@pytest.mark.parametrize(("offset", "more", "expected"), [
    (0, True, {"self": 0, "first": 0, "next": 10}),
    (10, True, {"self": 10, "first": 0, "previous": 0, "next": 20}),
    (20, False, {"self": 20, "first": 0, "previous": 10}),
])
def test_page_links_without_a_total_have_no_last(offset, more, expected):
    request = SearchRequest("Patient", (), count=10, offset=offset)
    assert offsets(page_links("http://hg.test/fhir/Patient", request, None, more)) == expected


def test_an_operation_body_without_resource_type_is_a_400(fhir):
    response = fhir.post("/fhir/Basic/$tally", json={"parameter": []})
    assert response.status_code == 400 and outcome_code(response) == "FHIR-010"
    assert "without resourceType" in response.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("rtype", ["../os", "basic", "Basic.x", 7])
def test_a_resource_type_that_is_no_name_is_a_400(fhir, rtype):
    response = fhir.post("/fhir/Basic/$tally", json={"resourceType": rtype})
    assert response.status_code == 400 and outcome_code(response) == "FHIR-010"
