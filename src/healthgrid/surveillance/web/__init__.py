"""Web pages of surveillance (传染病监测预警): the report card form and the county CDC's
review and overdue lists (``cards``), the signals and their response with the warning
products (``signals``), and the CDC dashboard (``dashboard``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from . import cards, dashboard, signals

TEMPLATES = Path(__file__).parent.parent / "templates"
router = APIRouter(include_in_schema=False)
router.include_router(dashboard.router)
router.include_router(cards.router)
router.include_router(signals.router)
