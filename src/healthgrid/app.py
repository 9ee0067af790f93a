"""FastAPI factory: mounts each context's router, the FHIR surface and the web UI.

Contexts are listed here explicitly; nothing is auto-discovered.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from . import __version__
from .config import Settings
from .db import make_engine, make_sessionmaker
from .errors import Forbidden, HealthGridError, Unauthorized
from .fhir import FhirRegistry, build_fhir_router, operation_outcome_response
from .http import AdmissionLimit, admission_limit, install_api_docs, install_error_handlers
from .notifications import web as notifications_web
from .patients import api as patients_api
from .patients import fhir as patients_fhir
from .patients import web as patients_web
from .referrals import api as referrals_api
from .referrals import criteria as referral_criteria
from .referrals import fhir as referrals_fhir
from .referrals import web as referrals_web
from .registry import api as registry_api
from .registry import fhir as registry_fhir
from .registry import web as registry_web
from .results import api as results_api
from .results import fhir as results_fhir
from .results import web as results_web
from .scheduling import api as scheduling_api
from .scheduling import fhir as scheduling_fhir
from .scheduling import web as scheduling_web
from .security import Sealer, redact, session_info
from .security import api as security_api
from .security import web as security_web
from .security.domain import Perm
from .security.http import SecurityHeaders, require
from .surveillance import api as surveillance_api
from .surveillance import fhir as surveillance_fhir
from .surveillance import web as surveillance_web
from .web import error_page_response, install_web


def create_app(settings: Settings) -> FastAPI:
    referral_criteria.check_modes(settings.referrals.criteria)  # fail fast on an unknown rule code

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # The audit chain's sealer lives as long as the server (security/sealer.py).
        app.state.audit_sealer.start(app.state.sessionmaker)
        yield
        await run_in_threadpool(app.state.audit_sealer.stop)

    app = FastAPI(
        lifespan=lifespan,
        title="HealthGrid",
        version=__version__,
        description="Regional health information platform for tiered care (分级诊疗).",
        docs_url=None,
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    engine = make_engine(settings.effective_database_url, echo=settings.sql_echo)
    app.state.settings = settings
    app.state.engine = engine
    sealer = Sealer()
    app.state.sessionmaker = make_sessionmaker(engine, info=session_info(settings, sealer))
    app.state.audit_sealer = sealer

    fhir = FhirRegistry(settings.fhir)
    registry_fhir.register(fhir)
    patients_fhir.register(fhir)
    scheduling_fhir.register(fhir)
    referrals_fhir.register(fhir)
    surveillance_fhir.register(fhir)
    results_fhir.register(fhir)
    app.state.fhir = fhir

    install_error_handlers(app, [("/fhir", _with_challenge(operation_outcome_response)),
                                 ("/api", _with_challenge(_api_error)),
                                 ("/", _web_error)])
    install_api_docs(app)
    app.include_router(security_api.router, prefix="/api/security", tags=["security"])
    app.include_router(registry_api.router, prefix="/api/registry", tags=["registry"])
    app.include_router(patients_api.router, prefix="/api/patients", tags=["patients"])
    app.include_router(scheduling_api.router, prefix="/api/scheduling", tags=["scheduling"])
    app.include_router(referrals_api.router, prefix="/api/referrals", tags=["referrals"])
    app.include_router(surveillance_api.router, prefix="/api/surveillance", tags=["surveillance"])
    app.include_router(results_api.router, prefix="/api/results", tags=["results"])
    app.include_router(build_fhir_router(fhir, actor=require(Perm.REGISTRY_READ)), prefix="/fhir")
    install_web(app, settings.web, routers=[security_web.router, registry_web.router, patients_web.router,
                                            scheduling_web.router, notifications_web.router, referrals_web.router,
                                            surveillance_web.router, results_web.router],
                template_dirs=[security_web.TEMPLATES, registry_web.TEMPLATES, patients_web.TEMPLATES,
                               scheduling_web.TEMPLATES, notifications_web.TEMPLATES, referrals_web.TEMPLATES,
                               surveillance_web.TEMPLATES, results_web.TEMPLATES],
                page_dependencies=[Depends(security_web.page_actor)])
    # Fewer requests in flight than worker threads and pooled connections: see AdmissionLimit.
    app.add_middleware(AdmissionLimit, limit=admission_limit(engine))
    app.add_middleware(SecurityHeaders)
    redact.install()
    if settings.security.cors_origins:
        # Only where an operator names the origins; by default a browser on another origin
        # cannot call the API at all.
        app.add_middleware(CORSMiddleware, allow_origins=settings.security.cors_origins,
                           allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-CSRF-Token", "Idempotency-Key",
                                          "X-Purpose-Of-Use", "X-Break-Glass-Reason"])

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app


def _api_error(_request: Request, exc: HealthGridError) -> Response:
    return JSONResponse(exc.as_dict(), status_code=exc.status)


def _with_challenge(render):
    """A 401 tells the client how to authenticate (RFC 6750)."""
    def renderer(request: Request, exc: HealthGridError) -> Response:
        response = render(request, exc)
        if isinstance(exc, Unauthorized):
            response.headers["WWW-Authenticate"] = 'Bearer realm="healthgrid"'
        return response
    return renderer


def _web_error(request: Request, exc: HealthGridError) -> Response:
    """Pages send someone who is not logged in to the log-in page, and someone whose role
    needs a second factor they have not given to the second step; other errors are pages."""
    if isinstance(exc, Unauthorized) and request.method == "GET":
        return RedirectResponse(security_web.login_url(request), status_code=303)
    if isinstance(exc, Forbidden) and exc.code == "SEC-107" and request.method == "GET":
        return RedirectResponse("/login/second-factor", status_code=303)
    return error_page_response(request, exc)
