"""Outbox handlers and periodic jobs of every context, listed explicitly, for
``healthgrid worker``.

The registry publishes ``registry.organization_created`` / ``_updated``; no context reacts
to them, so they are delivered to no handler and marked delivered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from .outbox import Handler
from .referrals import jobs as referrals_jobs
from .results import jobs as results_jobs
from .scheduling import jobs as scheduling_jobs
from .surveillance import jobs as surveillance_jobs

HANDLERS: dict[str, list[Handler]] = {**scheduling_jobs.HANDLERS, **referrals_jobs.HANDLERS,
                                     **surveillance_jobs.HANDLERS, **results_jobs.HANDLERS}

# fn(session, now) -> counts of what was done; each is idempotent.
PERIODIC: list[Callable[[Session, datetime], dict[str, int]]] = [scheduling_jobs.tick, referrals_jobs.tick,
                                                                  surveillance_jobs.tick]
