"""REST API of surveillance under ``/api/surveillance``: report cards (``api_cards``), feed
counts and signals (``api_signals``), the dashboard's figures (``api_dashboard``). Each is
parse, one service call, render."""

from __future__ import annotations

from fastapi import APIRouter

from . import api_cards, api_dashboard, api_signals

router = APIRouter()
router.include_router(api_cards.router)
router.include_router(api_signals.router)
router.include_router(api_dashboard.router)
