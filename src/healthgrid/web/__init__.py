"""Web platform (placeholder until written)."""
from fastapi.responses import HTMLResponse


def install_web(app, settings, routers, template_dirs=()):
    for r in routers:
        app.include_router(r)


def error_page_response(request, exc):
    return HTMLResponse(exc.message, status_code=exc.status)
