"""FastAPI factory: mounts each context's router, the FHIR surface and the web UI.

Contexts are listed here explicitly; nothing is auto-discovered.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from . import __version__
from .config import Settings
from .db import make_engine, make_sessionmaker
from .fhir import FhirRegistry, build_fhir_router, operation_outcome_response
from .http import install_api_docs, install_error_handlers
from .registry import api as registry_api
from .registry import fhir as registry_fhir
from .registry import web as registry_web
from .web import error_page_response, install_web


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
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
    app.state.sessionmaker = make_sessionmaker(engine)

    fhir = FhirRegistry(settings.fhir)
    registry_fhir.register(fhir)
    app.state.fhir = fhir

    install_error_handlers(app, [("/fhir", operation_outcome_response),
                                 ("/api", lambda _r, e: JSONResponse(e.as_dict(), status_code=e.status)),
                                 ("/", error_page_response)])
    install_api_docs(app)
    app.include_router(registry_api.router, prefix="/api/registry", tags=["registry"])
    app.include_router(build_fhir_router(fhir), prefix="/fhir")
    install_web(app, settings.web, routers=[registry_web.router], template_dirs=[registry_web.TEMPLATES])

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
