"""The platform's system-level POST (a transaction or batch Bundle) with handlers a test
registers itself: the envelope is checked, the Bundle goes to the most specific handler whose
types cover its entries, the CapabilityStatement declares transaction and batch, and what no
handler (or two equally specific ones) takes is an OperationOutcome."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from healthgrid.config import FhirSettings
from healthgrid.errors import HealthGridError
from healthgrid.fhir import BundleAnswer, BundleHandler, FhirRegistry, build_fhir_router, operation_outcome_response
from healthgrid.http import get_session

SEEN: list[tuple[str, str, int]] = []


def echo(name: str):
    def handle(session, request) -> BundleAnswer:
        SEEN.append((name, request.kind, len(request.raw)))
        return BundleAnswer(200, {"resourceType": "Bundle", "type": f"{request.kind}-response",
                                  "entry": [{"response": {"status": "200 OK"}} for _ in request.bundle["entry"]]})
    return handle


@pytest.fixture
def client():
    fhir = FhirRegistry(FhirSettings())
    fhir.register_bundle_handler(BundleHandler("wide", frozenset({"Patient", "Observation"}), echo("wide")))
    fhir.register_bundle_handler(BundleHandler("narrow", frozenset({"Patient"}), echo("narrow")))
    app = FastAPI()
    app.dependency_overrides[get_session] = lambda: None
    app.add_exception_handler(HealthGridError, operation_outcome_response)
    app.include_router(build_fhir_router(fhir), prefix="/fhir")
    SEEN.clear()
    with TestClient(app) as c:
        yield c


def bundle(kind: str, *types: str) -> dict:
    return {"resourceType": "Bundle", "type": kind,
            "entry": [{"request": {"method": "POST", "url": t}, "resource": {"resourceType": t}} for t in types]}


def test_the_bundle_goes_to_the_most_specific_covering_handler(client):
    assert client.post("/fhir", json=bundle("transaction", "Patient", "Observation")).json()["type"] == \
        "transaction-response"
    assert client.post("/fhir/", json=bundle("batch", "Patient")).status_code == 200
    assert [(n, k) for n, k, _ in SEEN] == [("wide", "transaction"), ("narrow", "batch")]
    assert SEEN[0][2] > 0  # the handler gets the bytes as received


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"resourceType": "Patient"}, 400, "FHIR-030"),
    ({"resourceType": "Bundle", "type": "document", "entry": []}, 400, "FHIR-030"),
    ({"resourceType": "Bundle", "type": "batch", "entry": [{"resource": {"resourceType": "Patient"}}]}, 400,
     "FHIR-030"),
    ({"resourceType": "Bundle", "type": "batch", "entry": [], "timestamp": "yesterday"}, 400, "FHIR-030"),
    (bundle("batch", "Condition"), 422, "FHIR-031"),
])
def test_what_is_not_a_taken_bundle_is_an_operation_outcome(client, body, status, code):
    r = client.post("/fhir", json=body)
    assert r.status_code == status and r.json()["issue"][0]["details"]["coding"][0]["code"] == code
    assert SEEN == []


def test_the_capability_statement_declares_the_system_interactions(client):
    assert client.get("/fhir/metadata").json()["rest"][0]["interaction"] == [{"code": "transaction"},
                                                                              {"code": "batch"}]
    assert client.get("/fhir").status_code == 405


def test_two_equally_specific_handlers_are_ambiguous():
    fhir = FhirRegistry(FhirSettings())
    fhir.register_bundle_handler(BundleHandler("a", frozenset({"Patient"}), echo("a")))
    fhir.register_bundle_handler(BundleHandler("b", frozenset({"Patient"}), echo("b")))
    with pytest.raises(HealthGridError) as refused:
        fhir.bundle(None, bundle("batch", "Patient"), b"{}", "http://x/fhir")
    assert refused.value.code == "FHIR-031"
    with pytest.raises(ValueError):
        fhir.register_bundle_handler(BundleHandler("a", frozenset({"Patient"}), echo("a")))
