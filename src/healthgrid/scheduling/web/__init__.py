"""Web pages of scheduling (预约挂号): the resident's booking flow and appointments, their
family members, the doctor's day list, the facility administrator's schedule editor and
the exam booking centre. One router for ``app.py``; the pages live by audience in
``booking.py``, ``appointments.py`` and ``staff.py``, their shared parts in ``common.py``.

Each handler parses its form, calls the scheduling service and renders; permissions, scope,
booking rules and the audit are the service's. A refused write comes back to the page as a
one-time notice with its code, in the page's language.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from ...security.domain import Perm
from ...web import NavItem, add_messages, add_nav_item
from ..web_messages import MESSAGES
from . import appointments, booking, staff

TEMPLATES = Path(__file__).parent.parent / "templates"
router = APIRouter(include_in_schema=False)
router.include_router(booking.router)
router.include_router(appointments.router)
router.include_router(staff.router)

add_messages(MESSAGES)
add_nav_item(NavItem("sched.nav.booking", "/booking", order=50, perm=Perm.SELF_RECORD))
add_nav_item(NavItem("sched.nav.appointments", "/appointments", order=51, perm=Perm.SELF_RECORD))
add_nav_item(NavItem("sched.nav.day_list", "/scheduling/day-list", order=52, perm=Perm.APPOINTMENT_BOOK))
add_nav_item(NavItem("sched.nav.exams", "/scheduling/exams", order=53, perm=Perm.APPOINTMENT_BOOK))
add_nav_item(NavItem("sched.nav.schedules", "/scheduling/schedules", order=54, perm=Perm.SCHEDULE_MANAGE))
