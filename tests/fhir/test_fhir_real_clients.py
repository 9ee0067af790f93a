"""Real FHIR clients against the real app under uvicorn, serving the generated tiny
region: fhirclient 4.4 (strict R4 models, /metadata first) and fhirpy 2.3 (sync)."""

from __future__ import annotations

import warnings

import pytest
from fhirclient import client as smart_client
from fhirclient.models.bundle import Bundle
from fhirclient.models.organization import Organization
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome, ResourceNotFound

PAGE = 7  # small pages, so that every listing below spans several of them


@pytest.fixture(scope="module")
def smart(live_server, live_token):
    client = smart_client.FHIRClient(settings={"app_id": "hg", "api_base": live_server + "/fhir"})
    # A system integration's bearer token (healthgrid token create), on every request.
    client.server.session.headers["Authorization"] = f"Bearer {live_token}"
    return client


@pytest.fixture(scope="module")
def fhirpy_client(live_server, live_token) -> SyncFHIRClient:
    return SyncFHIRClient(live_server + "/fhir", authorization=f"Bearer {live_token}")


@pytest.fixture(scope="module")
def organizations(fhirpy_client) -> list:
    return fhirpy_client.resources("Organization").limit(100).fetch_all()


def total(smart, query: str) -> int:
    return Bundle.read_from(f"{query}&_count=0" if "?" in query else f"{query}?_count=0", smart.server).total


def test_fhirclient_prepares_by_parsing_the_capability_statement(smart):
    assert smart.prepare() is True  # fetched /metadata and parsed it with strict R4 models
    cs = smart.server.capabilityStatement
    assert (cs.fhirVersion, cs.kind, cs.status) == ("4.0.1", "instance", "active")
    served = {r.type: {p.name for p in r.searchParam} for r in cs.rest[0].resource}
    assert {"name", "identifier", "type", "partof", "address", "active", "_id"} <= served["Organization"]
    assert {"Location", "Practitioner", "PractitionerRole", "HealthcareService"} <= set(served)


def test_fhirclient_reads_an_organization(smart, organizations):
    expected = organizations[0]
    org = Organization.read(expected["id"], smart.server)
    assert org.id == expected["id"]
    assert org.name == expected["name"]
    assert org.identifier[0].value == expected["identifier"][0]["value"]
    assert {c.code for t in org.type for c in t.coding} == {c["code"] for t in expected["type"]
                                                            for c in t["coding"]}


def test_fhirclient_searches_by_name(smart, organizations):
    fragment = organizations[0]["name"][-4:]  # e.g. "人民医院", "卫生服务中心"'s tail
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # perform_resources is deprecated in 4.4
        found = Organization.where(struct={"name": fragment}).perform_resources(smart.server)
    expected = [o["id"] for o in organizations if fragment in o["name"]]
    assert sorted(o.id for o in found) == sorted(expected)
    assert len(found) == total(smart, f"Organization?name={fragment}") >= 1


def test_fhirclient_pages_through_all_organizations(smart, organizations):
    search = Organization.where(struct={"_count": str(PAGE)})
    pages = list(search.perform_iter(smart.server))
    assert len(pages) > 1
    ids = [e.resource.id for page in pages for e in page.entry or []]
    assert len(ids) == len(set(ids)) == pages[0].total == total(smart, "Organization")
    assert sorted(ids) == sorted(o["id"] for o in organizations)


def test_fhirpy_fetch_all_by_name_follows_next_links(fhirpy_client, organizations):
    fragment = organizations[-1]["name"][-3:]
    search = fhirpy_client.resources("Organization").search(name=fragment)
    found = search.limit(2).fetch_all()
    assert len(found) == search.count() == sum(fragment in o["name"] for o in organizations) >= 1
    assert all(fragment in o["name"] for o in found)


def test_fhirpy_count_get_and_read(fhirpy_client, organizations):
    assert fhirpy_client.resources("Organization").count() == len(organizations) > PAGE
    code = organizations[3]["identifier"][0]["value"]
    got = fhirpy_client.resources("Organization").search(identifier=code).get()
    assert got["id"] == organizations[3]["id"]
    read = fhirpy_client.reference("Organization", got["id"]).to_resource()
    assert read["name"] == organizations[3]["name"]


def test_fhirpy_pages_through_every_resource_type(fhirpy_client):
    for resource_type in ("Organization", "Location", "Practitioner", "PractitionerRole",
                          "HealthcareService"):
        search = fhirpy_client.resources(resource_type)
        expected = search.count()
        found = search.limit(50).fetch_all()
        assert len(found) == len({r["id"] for r in found}) == expected > 0, resource_type


def test_fhirpy_searches_references_and_tokens(fhirpy_client, organizations):
    roles = fhirpy_client.resources("PractitionerRole").limit(100).fetch_all()
    org_ref = roles[-1]["organization"]["reference"]
    at_org = fhirpy_client.resources("PractitionerRole").search(organization=org_ref).fetch_all()
    assert sorted(r["id"] for r in at_org) == sorted(r["id"] for r in roles
                                                     if r["organization"]["reference"] == org_ref)
    sites = fhirpy_client.resources("Location").search(organization=org_ref.split("/")[1]).fetch_all()
    assert [s["managingOrganization"]["reference"] for s in sites] == [org_ref]
    clinics = fhirpy_client.resources("Organization").search(type="L0").fetch_all()
    assert clinics
    levels = [{c["code"] for t in o["type"] for c in t["coding"]} for o in organizations]
    assert len(clinics) == sum("L0" in codes for codes in levels)


def test_fhirpy_sees_operation_outcomes(fhirpy_client):
    with pytest.raises(OperationOutcome) as caught:
        fhirpy_client.resources("Organization").search(colour="red").fetch()
    assert caught.value.resource["issue"][0]["details"]["coding"][0]["code"] == "FHIR-002"
    with pytest.raises(ResourceNotFound):
        fhirpy_client.reference("Organization", "999999999").to_resource()
