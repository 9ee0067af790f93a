"""Outbox handlers of every context, listed explicitly, for ``healthgrid worker``.

The registry publishes ``registry.organization_created`` / ``_updated``; no context reacts
to them yet, so they are delivered to no handler and marked delivered. Contexts that land
later add ``<context>.jobs.HANDLERS`` here.
"""

from __future__ import annotations

from .outbox import Handler

HANDLERS: dict[str, list[Handler]] = {}
