"""The FHIR core over HTTP, independent of any context: a small in-memory provider of
``Basic`` resources behind ``build_fhir_router`` — content negotiation, paging by links,
POST _search, the CapabilityStatement (parsed by fhirclient's strict R4 models), and the
OperationOutcome of every kind of error."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle as R4BBundle
from fhirclient.models.bundle import Bundle as R4Bundle
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.operationoutcome import OperationOutcome

from healthgrid.config import FhirSettings
from healthgrid.errors import HealthGridError
from healthgrid.fhir import (
    ERROR_SYSTEM,
    ID_PARAM,
    FhirRegistry,
    ParamType,
    ResourceProvider,
    SearchParamDef,
    SearchRequest,
    SearchResult,
    any_of,
    build_fhir_router,
    operation_outcome_response,
)
from healthgrid.http import get_session, install_error_handlers

FHIR_JSON = "application/fhir+json; charset=utf-8"
CODES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"]


class BasicProvider(ResourceProvider):
    """Seven Basic resources b1..b7 with code = a Greek letter."""

    resource_type = "Basic"
    search_params = (ID_PARAM, SearchParamDef("code", ParamType.TOKEN, "The code."))

    def __init__(self):
        self.rows = [{"resourceType": "Basic", "id": f"b{i}", "code": {"text": c}}
                     for i, c in enumerate(CODES, start=1)]

    def search(self, session, request: SearchRequest) -> SearchResult:
        ids = any_of(request, "_id", lambda v: v if v.startswith("b") else None)
        codes = any_of(request, "code", lambda t: t.code)
        hits = [r for r in self.rows if (ids is None or r["id"] in ids)
                and (codes is None or r["code"]["text"] in codes)]
        return SearchResult(len(hits), hits[request.offset:request.offset + request.count])


class BrokenProvider(ResourceProvider):
    """Device d1 carries an element R4 does not have (a mapper bug); searching
    ``_id=boom`` raises an unexpected exception."""

    resource_type = "Device"
    search_params = (ID_PARAM,)

    def search(self, session, request):
        ids = any_of(request, "_id", lambda v: v) or set()
        if "boom" in ids:
            raise RuntimeError("a bug in a mapper")
        return SearchResult(1, [{"resourceType": "Device", "id": "d1", "colour": "red"}])


def make_app(**settings) -> FastAPI:
    registry = FhirRegistry(FhirSettings(**({"default_count": 3, "max_count": 5} | settings)))
    registry.register(BasicProvider())
    registry.register(BrokenProvider())
    app = FastAPI()
    install_error_handlers(app, [("/fhir", operation_outcome_response)])
    app.include_router(build_fhir_router(registry), prefix="/fhir")
    app.dependency_overrides[get_session] = lambda: None
    return app


@pytest.fixture
def fhir() -> TestClient:
    with TestClient(make_app(), base_url="http://hg.test") as c:
        yield c


def outcome_code(response) -> str:
    assert response.headers["content-type"] == FHIR_JSON
    body = response.json()
    OperationOutcome(body)  # strict R4
    issue = body["issue"][0]
    assert issue["severity"] == "error"
    assert issue["details"]["coding"][0]["system"] == ERROR_SYSTEM
    assert issue["diagnostics"]
    return issue["details"]["coding"][0]["code"]


def test_capability_statement_is_strict_r4_and_lists_providers(fhir):
    response = fhir.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"] == FHIR_JSON
    body = response.json()
    cs = CapabilityStatement(body)  # raises on any element R4 does not have
    assert (cs.status, cs.kind, cs.fhirVersion, cs.format) == ("active", "instance", "4.0.1", ["json"])
    assert cs.software.name == "HealthGrid"
    assert cs.implementation.url == "http://hg.test/fhir"
    rest = cs.rest[0]
    assert rest.mode == "server"
    basic = {r.type: r for r in rest.resource}["Basic"]
    assert [i.code for i in basic.interaction] == ["read", "search-type"]
    assert [(p.name, p.type) for p in basic.searchParam] == [("_id", "token"), ("code", "token")]
    assert sorted(r.type for r in rest.resource) == ["Basic", "Device"]


def test_read_and_search(fhir):
    read = fhir.get("/fhir/Basic/b2")
    assert read.status_code == 200
    assert read.headers["content-type"] == FHIR_JSON
    assert read.json() == {"resourceType": "Basic", "id": "b2", "code": {"text": "beta"}}
    found = fhir.get("/fhir/Basic", params={"code": "beta,gamma"}).json()
    R4Bundle(found)
    assert found["total"] == 2
    assert [e["fullUrl"] for e in found["entry"]] == ["http://hg.test/fhir/Basic/b2", "http://hg.test/fhir/Basic/b3"]


def test_following_next_links_visits_every_match_once(fhir):
    url, seen, pages = "/fhir/Basic", [], 0
    while url:
        bundle = fhir.get(url).json()
        R4BBundle.model_validate(bundle)
        assert bundle["total"] == 7
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        url, pages = links.get("next"), pages + 1
        assert links["self"].startswith("http://hg.test/fhir/Basic?")
    assert seen == [f"b{i}" for i in range(1, 8)]
    assert pages == 3  # default_count 3


def test_previous_link_goes_back_one_page(fhir):
    bundle = fhir.get("/fhir/Basic", params={"_count": 2, "_offset": 4}).json()
    links = {link["relation"]: dict(parse_qsl(urlsplit(link["url"]).query)) for link in bundle["link"]}
    assert links["previous"]["_offset"] == "2"
    assert links["next"]["_offset"] == "6"
    assert links["last"]["_offset"] == "6"
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["b5", "b6"]


@pytest.mark.parametrize("params", [{"_count": "0"}, {"_summary": "count"},
                                    {"_count": "0", "_totalMethod": "count"}])
def test_totals_only(fhir, params):
    bundle = fhir.get("/fhir/Basic", params=params).json()
    assert bundle["total"] == 7
    assert "entry" not in bundle


def test_count_above_maximum_is_lowered_and_shown_in_links(fhir):
    bundle = fhir.get("/fhir/Basic", params={"_count": "1000"}).json()
    assert len(bundle["entry"]) == 5
    self_link = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    assert "_count=5" in self_link


def test_post_search_with_a_form_body(fhir):
    response = fhir.post("/fhir/Basic/_search?_count=1", data={"code": "delta,eta"})
    assert response.status_code == 200
    bundle = response.json()
    assert bundle["total"] == 2
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["b4"]
    next_url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    assert dict(parse_qsl(urlsplit(next_url).query))["code"] == "delta,eta"  # a GET link


def test_get_on_search_endpoint_is_a_search(fhir):
    bundle = fhir.get("/fhir/Basic/_search", params={"code": "beta"}).json()
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["b2"]


def test_post_search_refuses_a_json_body(fhir):
    response = fhir.post("/fhir/Basic/_search", json={"code": "beta"})
    assert response.status_code == 415
    assert outcome_code(response) == "FHIR-006"


@pytest.mark.parametrize("accept", ["application/fhir+json", "application/json", "*/*",
                                    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                                    "application/fhir+json;q=0.9, application/fhir+xml"])
def test_json_accept_headers_are_served(fhir, accept):
    response = fhir.get("/fhir/Basic/b1", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == FHIR_JSON


@pytest.mark.parametrize("query", ["_format=json", "_format=application/fhir%2Bjson",
                                   "_format=application/fhir+json", "_format=application/json"])
def test_json_format_parameter_wins_over_accept(fhir, query):
    response = fhir.get(f"/fhir/Basic/b1?{query}", headers={"Accept": "application/fhir+xml"})
    assert response.status_code == 200


@pytest.mark.parametrize(("headers", "query"), [
    ({"Accept": "application/fhir+xml"}, ""),
    ({"Accept": "application/json;q=0"}, ""),
    ({}, "?_format=xml"),
    ({}, "?_format=application/fhir%2Bxml"),
])
def test_non_json_formats_are_refused(fhir, headers, query):
    response = fhir.get(f"/fhir/Basic/b1{query}", headers=headers)
    assert response.status_code == 406
    assert outcome_code(response) == "FHIR-006"


def test_pretty_printing(fhir):
    assert "\n  " in fhir.get("/fhir/Basic/b1?_pretty=true").text
    assert "\n" not in fhir.get("/fhir/Basic/b1").text


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/fhir/Nonsense", 404, "FHIR-001"),
    ("GET", "/fhir/Nonsense/1", 404, "FHIR-001"),
    ("GET", "/fhir/Patient?name=x", 404, "FHIR-001"),  # an R4 type this server does not serve
    ("GET", "/fhir/Basic/b99", 404, "FHIR-008"),
    ("GET", "/fhir/Basic/x1", 404, "FHIR-008"),  # the provider says NoMatch
    ("GET", "/fhir/Basic/bad$id", 400, "FHIR-003"),
    ("GET", "/fhir/Basic?colour=red", 400, "FHIR-002"),
    ("GET", "/fhir/Basic?code:text=x", 400, "FHIR-004"),
    ("GET", "/fhir/Basic?_count=-1", 400, "FHIR-003"),
    ("GET", "/fhir/Basic?_offset=abc", 400, "FHIR-003"),
    ("GET", "/fhir/Basic/b1/_history", 400, "FHIR-005"),
    ("GET", "/fhir/", 400, "FHIR-005"),
    ("DELETE", "/fhir/Basic/b1", 405, "FHIR-005"),
    ("PUT", "/fhir/Basic/b1", 405, "FHIR-005"),
    ("POST", "/fhir/Basic", 405, "FHIR-005"),
    ("POST", "/fhir/metadata", 405, "FHIR-005"),
    ("DELETE", "/fhir/Nonsense/1", 404, "FHIR-001"),
])
def test_every_error_is_an_operation_outcome(fhir, method, path, status, code):
    response = fhir.request(method, path)
    assert response.status_code == status
    assert outcome_code(response) == code


def test_method_not_allowed_names_the_allowed_methods(fhir):
    assert fhir.delete("/fhir/Basic/b1").headers["allow"] == "GET"
    assert fhir.put("/fhir/Basic/_search").headers["allow"] == "GET, POST"


def test_malformed_id_in_a_read_is_named(fhir):
    issue = fhir.get("/fhir/Basic/bad$id").json()["issue"][0]
    assert issue["diagnostics"] == "'bad$id' is not a valid resource id (1-64 of A-Z a-z 0-9 - .)"


def test_issue_code_and_diagnostics_of_an_unknown_parameter(fhir):
    issue = fhir.get("/fhir/Basic?colour=red").json()["issue"][0]
    assert issue["code"] == "not-supported"
    assert issue["diagnostics"].startswith("unknown search parameter 'colour' for Basic")


def test_invalid_outgoing_resource_is_a_server_error(fhir, caplog):
    with caplog.at_level(logging.ERROR):
        response = fhir.get("/fhir/Device/d1")
    assert response.status_code == 500
    assert outcome_code(response) == "FHIR-007"
    assert "colour" in response.json()["issue"][0]["diagnostics"]
    assert response.json()["issue"][0]["code"] == "exception"


def test_unexpected_exception_is_a_500_operation_outcome(fhir, caplog):
    with caplog.at_level(logging.ERROR):
        response = fhir.get("/fhir/Device?_id=boom")
    assert response.status_code == 500
    assert outcome_code(response) == "FHIR-009"
    assert "a bug in a mapper" in caplog.text


def test_validation_can_be_switched_off():
    with TestClient(make_app(validate_output=False)) as c:
        assert c.get("/fhir/Device/d1").json()["colour"] == "red"


@pytest.mark.parametrize(("provider_attrs", "message"), [
    ({"resource_type": "Basic", "search_params": ()}, "must declare _id"),
    ({"resource_type": "Basic", "search_params": (ID_PARAM, ID_PARAM)}, "twice"),
    ({"resource_type": "Basic", "search_params": (
        ID_PARAM, SearchParamDef("subject", ParamType.REFERENCE, "no targets"))}, "target types"),
])
def test_misdeclared_providers_fail_at_registration(provider_attrs, message):
    provider = type("P", (BasicProvider,), provider_attrs)()
    with pytest.raises(ValueError, match=message):
        FhirRegistry(FhirSettings()).register(provider)


def test_a_type_r4_does_not_have_cannot_be_registered():
    provider = type("P", (BasicProvider,), {"resource_type": "Hospital"})()
    with pytest.raises(LookupError, match="Hospital"):
        FhirRegistry(FhirSettings()).register(provider)


def test_a_type_is_registered_once():
    registry = FhirRegistry(FhirSettings())
    registry.register(BasicProvider())
    with pytest.raises(ValueError, match="already registered"):
        registry.register(BasicProvider())


def test_the_actor_dependency_guards_reads_and_reaches_the_provider():
    seen = []

    class WhoAsks(BasicProvider):
        def search(self, session, request):
            seen.append(request.actor)
            return super().search(session, request)

    async def actor(request: Request):
        who = request.headers.get("x-who")
        if not who:
            raise HealthGridError("TEST-401", "who are you?")
        return who

    registry = FhirRegistry(FhirSettings())
    registry.register(WhoAsks())
    app = FastAPI()
    install_error_handlers(app, [("/fhir", operation_outcome_response)])
    app.include_router(build_fhir_router(registry, actor=actor), prefix="/fhir")
    app.dependency_overrides[get_session] = lambda: None
    with TestClient(app) as c:
        assert c.get("/fhir/metadata").status_code == 200  # public
        assert outcome_code(c.get("/fhir/Basic")) == "TEST-401"
        assert c.get("/fhir/Basic", headers={"x-who": "dr-li"}).status_code == 200
        assert c.get("/fhir/Basic/b1", headers={"x-who": "dr-wang"}).status_code == 200
        assert c.post("/fhir/Basic/_search", data={"code": "alpha"}, headers={"x-who": "dr-zhao"}).status_code == 200
    assert seen == ["dr-li", "dr-wang", "dr-zhao"]
