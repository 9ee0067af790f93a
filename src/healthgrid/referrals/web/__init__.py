"""Web pages of two-way referral (双向转诊): each facility's referral desk (inbox and outbox),
the referral form, the referral's page with its actions, the back-referral form, primary
care's follow-up list, the printable referral form, and the county bureau's measures.

Each handler parses its form, calls the referral service and renders; permissions, scope,
the state machine and the audit are the service's. The pages live by audience in
``desk.py`` (the desk's tabs), ``form.py`` (a new referral), ``detail.py`` (one referral,
its actions and its print view) and ``measures.py`` (the bureau's measures); their shared
parts in ``common.py``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from ...security.domain import Perm
from ...web import NavItem, add_messages, add_nav_item
from ..web_messages import MESSAGES
from . import common, desk, detail, form, measures

TEMPLATES = Path(__file__).parent.parent / "templates"
router = APIRouter(include_in_schema=False)
# Fixed paths before /referrals/{referral_id}: "new", "assets", "measures" are not referral ids.
router.include_router(common.assets)
router.include_router(form.router)
router.include_router(measures.router)
router.include_router(desk.router)
router.include_router(detail.router)

add_messages(MESSAGES)
add_nav_item(NavItem("ref.nav.desk", "/referrals", order=60, perm=Perm.REFERRAL_WRITE))
