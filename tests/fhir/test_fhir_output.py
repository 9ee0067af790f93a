"""Outgoing JSON: pruning of empty elements, validation against the R4B models, the
OperationOutcome shape, and the response's content type and encoding."""

from __future__ import annotations

import json

import pytest

from healthgrid.errors import Conflict, NotFound
from healthgrid.fhir import ERROR_SYSTEM, FhirError, operation_outcome, prune
from healthgrid.fhir.output import fhir_json_response
from healthgrid.fhir.validation import OutputValidator, model_class


@pytest.mark.parametrize(("raw", "pruned"), [
    ({"a": None, "b": "", "c": [], "d": {}, "e": "x"}, {"e": "x"}),
    ({"active": False, "count": 0}, {"active": False, "count": 0}),
    ({"telecom": [{"value": None}], "name": "n"}, {"name": "n"}),
    ({"partOf": {"reference": None, "display": ""}}, {}),
    ({"given": ["", "娜娜", None]}, {"given": ["娜娜"]}),
    ([{"x": [{}]}, "y"], ["y"]),
])
def test_prune_drops_every_empty_element(raw, pruned):
    assert prune(raw) == pruned


def test_valid_resource_passes_unchanged():
    org = {"resourceType": "Organization", "id": "1", "name": "天河区人民医院", "active": True}
    assert OutputValidator(True).check(org) is org


@pytest.mark.parametrize(("resource", "where"), [
    ({"resourceType": "Organization", "id": "1", "colour": "red"}, "colour"),
    ({"resourceType": "Organization", "id": "1", "active": "maybe"}, "active"),
    ({"resourceType": "Location", "id": "1", "position": {"latitude": 1.0}}, "longitude"),
    ({"resourceType": "Practitioner", "id": "1", "gender": ["female"]}, "gender"),
    ({"resourceType": "Hospital", "id": "1"}, "Hospital"),
])
def test_invalid_resource_is_a_coded_server_error(resource, where):
    with pytest.raises(FhirError) as caught:
        OutputValidator(True).check(resource)
    assert (caught.value.code, caught.value.status, caught.value.fhir_code) == ("FHIR-007", 500, "exception")
    assert where in caught.value.message


def test_disabled_validator_lets_anything_through():
    resource = {"resourceType": "Organization", "colour": "red"}
    assert OutputValidator(False).check(resource) is resource


def test_models_are_r4b_classes():
    assert model_class("PractitionerRole").__module__ == "fhir.resources.R4B.practitionerrole"


@pytest.mark.parametrize(("exc", "status", "issue"), [
    (NotFound("REG-013", "organisation 7 not found"), 404, "not-found"),
    (Conflict("REG-002", "organisation code X already exists"), 409, "conflict"),
    (FhirError("FHIR-002", "unknown search parameter", issue="not-supported"), 400, "not-supported"),
])
def test_operation_outcome_maps_any_coded_error(exc, status, issue):
    body = operation_outcome(exc)
    assert body == {"resourceType": "OperationOutcome", "issue": [{
        "severity": "error", "code": issue,
        "details": {"coding": [{"system": ERROR_SYSTEM, "code": exc.code}], "text": exc.message},
        "diagnostics": exc.message}]}
    assert exc.status == status
    model_class("OperationOutcome").model_validate(body)


def test_response_is_utf8_fhir_json():
    response = fhir_json_response({"resourceType": "Organization", "name": "石牌村卫生室"}, status=201)
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"
    assert "石牌村卫生室".encode() in response.body  # not \\u-escaped
    assert json.loads(response.body) == {"resourceType": "Organization", "name": "石牌村卫生室"}
