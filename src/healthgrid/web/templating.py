"""Rendering of server-side pages: the Jinja2 environment and ``render()``.

``render()`` is the one way a page is produced. It gives every template the same helpers
(``t`` for catalogue messages, ``pick`` for ``(zh, en)`` label pairs, ``localtime`` in the
configured zone, ``static`` for asset paths, ``url_with`` for links that keep the current
filters) so that contexts' templates never decide the language or the time zone
themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request

from .. import __version__
from ..config import WebSettings
from .extensions import nav_items, visible
from .i18n import HTML_LANG, LANG_COOKIE, MESSAGES, Lang, parse_lang, pick, request_language

PLATFORM_TEMPLATES = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
# A year: the choice of language is a standing preference, not a session detail.
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600


@dataclass(frozen=True)
class WebState:
    """What ``install_web`` leaves on ``app.state.web`` for ``render()``."""

    settings: WebSettings
    env: Environment
    zone: ZoneInfo


def build_environment(template_dirs: list[Path]) -> Environment:
    # Platform templates first: a context cannot replace the layout by accident; its own
    # templates live in a folder named after it (registry/...).
    env = Environment(
        loader=FileSystemLoader([PLATFORM_TEMPLATES, *template_dirs]),
        autoescape=select_autoescape(("html",), default_for_string=True),
        # A misspelt variable must fail the page test, not render as an empty string.
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = _number
    return env


def page_language(request: Request) -> Lang:
    """The language this request's page is shown in."""
    return request_language(request, request.app.state.web.settings.default_language)


def render(request: Request, template: str, context: dict[str, Any] | None = None, *,
           status_code: int = 200) -> HTMLResponse:
    web: WebState = request.app.state.web
    lang = page_language(request)
    html = web.env.get_template(template).render({**page_helpers(request, lang, web), **(context or {})})
    response = HTMLResponse(html, status_code=status_code)
    remember_language(request, response)
    return response


def remember_language(request: Request, response: HTMLResponse) -> None:
    chosen = parse_lang(request.query_params.get("lang"))
    if chosen is not None and chosen != parse_lang(request.cookies.get(LANG_COOKIE)):
        response.set_cookie(LANG_COOKIE, chosen, max_age=LANG_COOKIE_MAX_AGE, httponly=True,
                            samesite="lax")


def web_user(request: Request) -> dict[str, Any] | None:
    """The logged-in user of the request (set by the security context's dependency), or None."""
    return getattr(request.state, "web_user", None)


def user_perms(request: Request) -> set[str]:
    user = web_user(request)
    return set(user["perms"]) if user else set()


def page_helpers(request: Request, lang: Lang, web: WebState) -> dict[str, Any]:
    path = request.url.path
    perms = user_perms(request)
    return {
        "lang": lang,
        "html_lang": HTML_LANG[lang],
        "other_lang": "en" if lang == "zh" else "zh",
        "t": partial(_message, lang),
        "pick": partial(_pick, lang),
        "localtime": partial(format_local_time, web.zone),
        "now": partial(datetime.now, UTC),
        "timezone": web.settings.timezone,
        "static": _static,
        "url_with": partial(url_with, request),
        "current_path": path,
        "nav": _nav(path, lang, perms),
        "web_user": web_user(request),
        "version": __version__,
    }


def _nav(path: str, lang: str, perms) -> list[dict[str, object]]:  # noqa: ANN001
    """The header's entries; the current one is the entry whose path is the longest prefix of
    this page's (``/surveillance/signals`` under ``/surveillance``: only 预警信号 is current)."""
    items = [item for item in nav_items() if visible(item.perm, perms)]
    under = [item.href for item in items if path == item.href or path.startswith(item.href.rstrip("/") + "/")]
    best = max(under, key=len, default=None)
    return [{"label": MESSAGES.get(item.message_key, lang), "href": item.href, "current": item.href == best}
            for item in items]


def url_with(request: Request, **changes: object) -> str:
    """The current page's path and query with some parameters changed (``None`` drops one).

    Relative to the app (no scheme or host), so pages hold no absolute URL at all.
    """
    params = {k: v for k, v in request.query_params.multi_items() if k not in changes}
    params.update({k: str(v) for k, v in changes.items() if v is not None and v != ""})
    query = urlencode(list(params.items()))
    return request.url.path + (f"?{query}" if query else "")


def _message(lang: str, key: str, **params: object) -> str:
    return MESSAGES.get(key, lang, **params)


def _pick(lang: str, pair: tuple[str, str] | None, fallback: str = "") -> str:
    return pick(pair, lang, fallback)


def format_local_time(zone: ZoneInfo, value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An aware (or UTC-naive) datetime as wall-clock time in ``zone``."""
    if value is None:
        return ""
    # Stored times are UTC (db.UTCDateTime); a naive one can only be UTC too.
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(zone).strftime(fmt)


def _static(path: str) -> str:
    # The version in the query makes browsers fetch new assets after an upgrade.
    return f"/static/{path.lstrip('/')}?v={__version__}"


def _number(value: int | float | None) -> str:
    return "" if value is None else f"{value:,}"
