"""Web platform: the shared layout, static assets, languages and the home and error pages.

Owns everything a context's pages need but must not decide alone: the base layout with
its header navigation and language switch, the message catalogue (``zh`` by default,
``en`` on request), rendering with the request's language and the configured time zone,
the CSS under ``/static`` (served by the app itself: hospital intranets are offline, so no
page may reference another host), paging, and the HTML error page.

Contexts import this package, never the reverse. A context's ``web.py`` exposes a
``router`` and a ``TEMPLATES`` folder (passed to ``install_web`` by ``app.py``) and, when
imported, adds its messages (``add_messages``), navigation entries (``add_nav_item``) and
home-page panel (``add_home_panel``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..config import WebSettings
from .extensions import HomePanel, NavItem, add_home_panel, add_nav_item
from .i18n import add_messages, pick
from .messages import PLATFORM_MESSAGES
from .pages import error_page_response, http_error_page
from .pages import router as _pages_router
from .paging import Pager
from .templating import STATIC_DIR, WebState, build_environment, page_language, render, url_with

add_messages(PLATFORM_MESSAGES)

__all__ = [
    "HomePanel", "NavItem", "Pager", "add_home_panel", "add_messages", "add_nav_item",
    "error_page_response", "install_web", "page_language", "pick", "render", "url_with",
]


def install_web(app: FastAPI, settings: WebSettings, routers: list[APIRouter],
                template_dirs: list[Path], page_dependencies: Sequence[Any] = ()) -> None:
    """Mount the static files, the home page and the contexts' page routers.
    ``page_dependencies`` run before the platform's own pages (log-in, from app.py)."""
    # Fail at start-up, not on the first page, if the configured zone does not exist.
    zone = ZoneInfo(settings.timezone)
    app.state.web = WebState(settings=settings, env=build_environment(list(template_dirs)), zone=zone)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(_pages_router, dependencies=list(page_dependencies))
    for router in routers:
        app.include_router(router)
    app.add_exception_handler(StarletteHTTPException, http_error_page)
