"""How a request becomes an ``Actor``: a bearer token (system integrations) or the web
session cookie (people), with CSRF protection for cookie-authenticated writes, plus the
security headers every response carries.

The two FastAPI security schemes are declared as dependencies, so the OpenAPI document
states on every endpoint that it needs one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import Forbidden, Unauthorized
from ..http import SessionDep
from . import service
from .domain import Actor, Perm

SESSION_COOKIE = "hg_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

bearer_scheme = HTTPBearer(auto_error=False, scheme_name="bearerToken",
                           description="An API token: `healthgrid token create --user NAME`")
cookie_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, scheme_name="sessionCookie",
                             description="The web session of a logged-in user (POST /login); writes"
                                         " also need the X-CSRF-Token header")


def surface_of(request: Request) -> str:
    path = request.url.path
    return "fhir" if path.startswith("/fhir") else "api" if path.startswith("/api") else "web"


def client_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def _stated(request: Request, header: str) -> str | None:
    value = request.headers.get(header)
    return unquote(value).strip() or None if value else None


def _resolve(session: Session, request: Request, bearer: str | None, cookie: str | None) -> Actor | None:
    surface, client = surface_of(request), client_of(request)
    purpose = _stated(request, "x-purpose-of-use")
    glass = _stated(request, "x-break-glass-reason")
    if bearer:
        found = service.resolve_token(session, bearer)
        if found is None:
            raise Unauthorized("SEC-101", "the API token is unknown, expired or revoked")
        user, perms = found
        # A token is itself a cryptographic possession factor, issued by an operator.
        return service.actor_for(session, user, surface=surface, client=client, mfa=True,
                                 token_perms=perms, purpose=purpose, break_glass=glass)
    if cookie:
        state = service.resolve_session(session, cookie)
        if state is None:
            return None
        request.state.web_session = state
        return service.actor_for(session, state.user, surface=surface, client=client,
                                 mfa=state.mfa_passed, purpose=purpose, break_glass=glass)
    return None


async def optional_actor(request: Request, session: SessionDep,
                         bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
                         cookie: Annotated[str | None, Depends(cookie_scheme)]) -> Actor | None:
    cached = getattr(request.state, "actor", None)
    if cached is not None:
        return cached
    actor = await run_in_threadpool(_resolve, session, request, bearer.credentials if bearer else None, cookie)
    if actor is not None and not bearer and request.method in UNSAFE:
        await _check_csrf(request)
    if actor is not None:
        request.state.actor = actor
        request.state.web_user = {"name": actor.extra.get("display_name") or actor.username,
                                  "username": actor.username, "perms": {str(p) for p in actor.perms()},
                                  "csrf": request.state.web_session.csrf_token
                                  if getattr(request.state, "web_session", None) else "",
                                  "mfa": actor.mfa, "needs_mfa": actor.needs_mfa()}
    return actor


async def _check_csrf(request: Request) -> None:
    """Cookie-authenticated writes carry the session's CSRF token in a header (scripts) or
    a form field (pages); SameSite=Lax on the cookie is the second line."""
    expected = request.state.web_session.csrf_token
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = (await request.form()).get(CSRF_FIELD)
    if not isinstance(sent, str) or not sent or sent != expected:
        raise Forbidden("SEC-108", "the form has expired or did not come from this site (CSRF check);"
                        " reload the page and try again")


async def current_actor(actor: Annotated[Actor | None, Depends(optional_actor)]) -> Actor:
    if actor is None:
        raise Unauthorized("SEC-100", "log in first (a session cookie or an Authorization: Bearer token)")
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]
OptionalActorDep = Annotated[Actor | None, Depends(optional_actor)]


def require(perm: Perm) -> Callable[..., Actor]:
    """A dependency for reads that touch no personal data (the public registry): the role
    must carry ``perm``. Personal data is checked, scoped and audited in the service."""

    async def dependency(actor: ActorDep) -> Actor:
        if perm not in actor.perms():
            raise Forbidden("SEC-102", f"your roles ({', '.join(sorted(actor.roles)) or 'none'}) do not"
                            f" allow {perm}")
        if actor.needs_mfa() and not actor.mfa:
            raise Forbidden("SEC-107", "your role requires a second factor (TOTP)")
        return actor

    dependency.__name__ = f"require_{perm.replace('.', '_')}"
    return dependency


def set_session_cookie(request: Request, response, token: str, *, secure_setting: str) -> None:
    secure = secure_setting == "always" or (secure_setting == "auto" and request.url.scheme == "https")
    # No max-age: the cookie ends with the browser; the server ends idle sessions.
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=secure, path="/")


def clear_session_cookie(response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


# -- security headers -------------------------------------------------------------------

_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
        " frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
# Swagger UI's page starts itself with an inline script and inline styles.
_CSP_DOCS = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline';"
             " script-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


class SecurityHeaders:
    """Pure ASGI middleware (no body buffering): the headers of GB/T 22239's intrusion
    prevention in practice — no sniffing, no framing, a strict CSP, no caching of
    personal data, HSTS over TLS."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                existing = {k.lower() for k, _ in headers}
                add = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                    (b"content-security-policy", (_CSP_DOCS if path.startswith("/api/docs") else _CSP).encode()),
                ]
                if not path.startswith("/static"):
                    add.append((b"cache-control", b"no-store"))
                if https:
                    add.append((b"strict-transport-security", b"max-age=31536000"))
                headers.extend((k, v) for k, v in add if k not in existing)
            await send(message)

        await self.app(scope, receive, send_with_headers)
