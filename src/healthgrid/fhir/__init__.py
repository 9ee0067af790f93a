"""Generic FHIR R4 machinery (placeholder until written)."""
from fastapi import APIRouter
from fastapi.responses import JSONResponse


class FhirRegistry:
    def __init__(self, settings):
        self.settings = settings


def build_fhir_router(registry):
    return APIRouter()


def operation_outcome_response(request, exc):
    return JSONResponse({"resourceType": "OperationOutcome"}, status_code=exc.status)
