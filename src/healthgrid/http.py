"""HTTP platform pieces shared by every surface: the session dependency and the one
place where coded errors become responses, per surface (API JSON, FHIR OperationOutcome,
web page)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError, StatementError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from .config import Settings
from .errors import HealthGridError, Invalid


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session per request. Creating one does no I/O, so it happens on the event loop; a
    sync generator dependency would cost two thread-pool hops per request. Closing returns
    the connection to the pool (a rollback round trip), so that runs in the pool."""
    session = request.app.state.sessionmaker()
    try:
        yield session
    finally:
        await run_in_threadpool(session.close)


class AdmissionLimit:
    """Admit at most ``limit`` requests at once (pure ASGI; the others wait on the event
    loop, holding no thread and no connection).

    A request holds its database connection (and on SQLite the write lock) across the
    awaits between its dependencies, its endpoint and closing its session; each of those
    steps needs a worker thread. With more requests in flight than threads or pooled
    connections, the holders waited for threads while threads waited for connections or
    the lock: 200 concurrent requests deadlocked until the 30 s timeouts, on SQLite and
    on PostgreSQL alike (tests/security/test_live_load.py)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._gate: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith("/static"):
            await self.app(scope, receive, send)
            return
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.limit)
        async with self._gate:
            await self.app(scope, receive, send)


WORKER_THREADS = 40  # anyio's default thread limiter, which FastAPI's sync endpoints use


def admission_limit(engine) -> int:
    """SQLite serialises transactions: a few at once is all it can use. Otherwise stay
    below both the worker threads and the pool, leaving room for the audit sealer."""
    if engine.dialect.name == "sqlite":
        return 8
    pool = engine.pool.size() + engine.pool._max_overflow  # noqa: SLF001 - QueuePool's cap
    return max(1, min(WORKER_THREADS, pool) - 8)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

# Surfaces register how they render an error for the paths they own: (prefix, renderer).
ErrorRenderer = Callable[[Request, HealthGridError], Response]


def install_error_handlers(app: FastAPI, renderers: list[tuple[str, ErrorRenderer]]) -> None:
    def render(request: Request, exc: HealthGridError) -> Response:
        for prefix, renderer in renderers:
            if request.url.path.startswith(prefix):
                return renderer(request, exc)
        return JSONResponse(exc.as_dict(), status_code=exc.status)

    @app.exception_handler(HealthGridError)
    async def _coded(request: Request, exc: HealthGridError) -> Response:
        return render(request, exc)

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    async def _out_of_range(request: Request, exc: Exception) -> Response:
        # A number too large for the database's integers (or a value of the wrong type that
        # slipped past validation) is the client's error, not the server's: the statement
        # never changed anything. Found by schemathesis with ids like 10**22.
        return render(request, Invalid("HG-423", "a value is out of range for this field"))

    @app.exception_handler(StatementError)
    async def _statement(request: Request, exc: StatementError) -> Response:
        if isinstance(exc.orig, OverflowError | DataError):
            return render(request, Invalid("HG-423", "a value is out of range for this field"))
        raise exc

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        err = Invalid("HG-422", f"{where or 'request'}: {first.get('msg', 'invalid input')}",
                      {"errors": [{"loc": list(e.get("loc", ())), "msg": e.get("msg"),
                                   "type": e.get("type")} for e in exc.errors()]})
        return render(request, err)


def install_api_docs(app: FastAPI, *, path: str = "/api/docs") -> None:
    """Swagger UI served from the ``swagger-ui-bundle-v2`` wheel: FastAPI's default page
    loads its scripts from a CDN, which a hospital intranet cannot reach."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount(f"{path}/assets", StaticFiles(directory=str(swagger_ui_path)), name="swagger-assets")

    @app.get(path, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/api/openapi.json", title=f"{app.title} — API",
            swagger_js_url=f"{path}/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{path}/assets/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg")
