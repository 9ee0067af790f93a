"""One-time notices after a form post (post/redirect/get) and the view of a refused write,
shared by every context's pages.

A notice travels in a short-lived cookie holding a message key and its parameters (or an
error code) — never personal data — and is read once by the next page under the context's
paths. A context makes one :class:`Notices` with its cookie name, its paths and the message
keys it may show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from ..errors import HealthGridError
from .i18n import MESSAGES as CATALOGUE
from .templating import page_language


@dataclass(frozen=True)
class Flash:
    kind: str  # ok | error
    text: str
    code: str | None = None
    href: str | None = None  # a page the notice links to (under the context's paths)


@dataclass(frozen=True)
class ErrorView:
    """A refused write as a page shows it next to the form it came from."""

    code: str
    text: str  # the catalogue's explanation in the page's language, else the coded message
    message: str  # the coded message itself: which field, what was expected
    field: str | None
    status: int
    findings: list[dict[str, Any]] = field(default_factory=list)  # e.g. REF-006: the criteria that block


def error_text(lang: str, exc: HealthGridError) -> str:
    key = f"error.{exc.code}"
    return CATALOGUE.get(key, lang) if key in CATALOGUE else exc.message


def error_view(request: Request, exc: HealthGridError) -> ErrorView:
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    return ErrorView(exc.code, error_text(page_language(request), exc), exc.message, detail.get("field"),
                     exc.status, list(detail.get("findings") or []))


def _secure(request: Request) -> bool:
    setting = request.app.state.settings.security.cookie_secure
    return setting == "always" or (setting == "auto" and request.url.scheme == "https")


@dataclass(frozen=True)
class Notices:
    cookie: str
    paths: tuple[str, ...]  # pages that read the notice (and links it may carry)
    prefixes: tuple[str, ...]  # message keys it may show
    cookie_path: str = "/"

    def redirect(self, request: Request, url: str, **flash: object) -> RedirectResponse:
        """Post/redirect/get with a one-time notice for the next page."""
        response = RedirectResponse(url, status_code=303)
        if flash:
            response.set_cookie(self.cookie, urlencode({k: str(v) for k, v in flash.items()}), max_age=120,
                                httponly=True, samesite="lax", secure=_secure(request), path=self.cookie_path)
        return response

    def fail(self, request: Request, url: str, exc: HealthGridError) -> RedirectResponse:
        """A refused write: back to the page with the coded error as its notice (nothing was
        written: the service rolled back)."""
        return self.redirect(request, url, k="error", code=exc.code, text=exc.message[:300])

    def take(self, request: Request, msg: Callable[..., str]) -> Flash | None:
        """The notice for this page, if any; ``msg(key, **params)`` renders a message key."""
        raw = request.cookies.get(self.cookie)
        if not raw or not request.url.path.startswith(self.paths):
            return None
        data = dict(parse_qsl(raw))
        if data.pop("k", "") == "error":
            code = data.get("code", "")
            known = f"error.{code}"
            text = msg(known) if known in CATALOGUE else ""
            detail = data.get("text", "")
            return Flash("error", f"{text} {detail}".strip() if text else detail or code, code)
        key = data.pop("m", "")
        if not key.startswith(self.prefixes) or key not in CATALOGUE:
            return None
        href = data.pop("href", None)
        try:
            return Flash("ok", msg(key, **data), None, href if href and href.startswith(self.paths) else None)
        except (KeyError, IndexError):
            return None

    def clear(self, response: Response) -> None:
        response.delete_cookie(self.cookie, path=self.cookie_path)
