"""Web pages of shared results: the patient's results timeline with trends and images
(``timeline``), the recognition decision at order time and the measures (``recognition``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from . import recognition, timeline

TEMPLATES = Path(__file__).parent.parent / "templates"
router = APIRouter(include_in_schema=False)
router.include_router(recognition.router)
router.include_router(timeline.router)
