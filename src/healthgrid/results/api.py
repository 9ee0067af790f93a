"""REST API of shared results under ``/api/results``: ingestion of FHIR and HL7 v2 messages
(``api_ingest``); the recognition decision at order time, the EQA facts, local code maps and
the measures (``api_recognition``); the patient's results (``api_timeline``)."""

from __future__ import annotations

from fastapi import APIRouter

from . import api_ingest, api_recognition, api_timeline

router = APIRouter()
router.include_router(api_ingest.router)
router.include_router(api_recognition.router)
router.include_router(api_timeline.router)
