"""The platform's own pages: the home page (assembled from the contexts' panels) and the
HTML error page every web route falls back to."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import HealthGridError
from ..http import SessionDep
from .extensions import home_panels, visible
from .i18n import MESSAGES
from .templating import render, user_perms

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep) -> HTMLResponse:
    perms = user_perms(request)
    panels = [{"template": p.template, "data": p.load(session)} for p in home_panels()
              if visible(p.perm, perms)]
    return render(request, "home.html", {"panels": panels})


def error_page_response(request: Request, exc: HealthGridError) -> Response:
    """An HTML page in the user's language with the error's code and message, sent with
    the error's own HTTP status (a 404 stays a 404 for crawlers, proxies and tests)."""
    hint_key = f"error.{exc.code}"
    return render(request, "error.html", {
        "status": exc.status,
        "title_key": f"error.title.{exc.status}" if f"error.title.{exc.status}" in MESSAGES
        else "error.title.other",
        "code": exc.code,
        "message": exc.message,
        "hint_key": hint_key if hint_key in MESSAGES else None,
    }, status_code=exc.status)


async def http_error_page(request: Request, exc: StarletteHTTPException) -> Response:
    """Routing errors (no such path, wrong method) as the HTML error page for browsers;
    API and FHIR clients, which do not ask for HTML, keep FastAPI's JSON answer."""
    if "text/html" not in request.headers.get("accept", "") or exc.status_code not in (404, 405):
        return await http_exception_handler(request, exc)
    coded = HealthGridError(f"HG-{exc.status_code}", str(exc.detail))
    coded.status = exc.status_code
    response = error_page_response(request, coded)
    if exc.headers:
        response.headers.update(exc.headers)
    return response
