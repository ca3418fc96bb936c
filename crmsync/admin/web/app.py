"""The FastAPI application: console pages, the REST API under /api/v1, and /metrics.

`create_app` wires one `SyncService` (thread-safe: the state store and the CRM open a
connection per call) shared by every request. The scheduler, when given, runs beside it
and is stopped when the app shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException
from starlette.routing import Match
from swagger_ui_bundle import swagger_ui_path

from crmsync.admin.web import api, crm_setup, pages, rep_sign_in
from crmsync.admin.web.deps import (
    Forbidden,
    NotSignedIn,
    not_signed_in_response,
    optional_principal,
    signed_in,
)
from crmsync.admin.web.limits import (
    DEFAULT_MAX_BODY_BYTES,
    BodyGuard,
    BodyTooLarge,
    too_large_response,
)
from crmsync.admin.web.proxies import ForwardedHeaders, TrustedProxies
from crmsync.admin.web.security import ERROR_REPORT, MANAGE, Principal
from crmsync.service.deployment import Deployment
from crmsync.service.runner import SyncService

log = logging.getLogger(__name__)
HERE = Path(__file__).parent


def create_app(
    deployment: Deployment,
    *,
    scheduler: object | None = None,
    metrics: object | None = None,
    secure_cookies: bool = False,
    forwarded_allow_ips: TrustedProxies | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """The console for ``deployment``'s org; ``secure_cookies`` for HTTPS deployments.

    ``forwarded_allow_ips``: the reverse proxies whose ``X-Forwarded-For`` names the
    client (by default no one's: the client is the connection's peer).
    ``max_body_bytes``: the largest request body accepted from a signed-in caller.
    """
    service = SyncService(deployment)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if scheduler is not None:
            scheduler.start()  # type: ignore[attr-defined]
        try:
            yield
        finally:
            if scheduler is not None:
                # Cycles in flight finish; no new one starts. Off the event loop: it waits.
                await asyncio.to_thread(scheduler.stop)  # type: ignore[attr-defined]
            service.close()

    app = FastAPI(
        title="crmsync",
        version="1",
        summary="Admin API of a crmsync deployment (CRM ↔ mail and calendar sync).",
        lifespan=lifespan,
        docs_url=None,  # served below, from this package's assets rather than a CDN
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.service = service
    app.state.metrics = metrics
    app.state.secure_cookies = secure_cookies
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["when"] = _when
    # One URL path segment: unlike Jinja's urlencode, also encodes "/".
    templates.env.filters["segment"] = lambda value: quote(str(value), safe="")
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.mount("/api/docs/assets", StaticFiles(directory=swagger_ui_path), name="api-docs-assets")
    app.include_router(api.router)
    app.include_router(crm_setup.api_router)
    app.include_router(pages.router)
    app.include_router(crm_setup.page_router)
    app.include_router(rep_sign_in.api_router)
    app.include_router(rep_sign_in.page_router)
    # The last added runs first: the client's address is known before anything else.
    app.add_middleware(
        BodyGuard,
        signed_in=signed_in,
        not_signed_in=not_signed_in_response,
        max_body_bytes=max_body_bytes,
    )
    app.add_middleware(ForwardedHeaders, trusted=forwarded_allow_ips or TrustedProxies())

    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        return not_signed_in_response(request)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> Response:
        return too_large_response(request.url.path, exc)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404 and _wants_a_page(request):
            # A route's own reason ("no CRM user has the email ...") says more than ours.
            message = (
                f"There is no page at {request.url.path}: check the address, or start again "
                "from the crmsync link at the top."
                if exc.detail == "Not Found"
                else f"{str(exc.detail)[:1].upper()}{str(exc.detail)[1:]}."
            )
            return _message_page(
                request, optional_principal(request), 404, "Page not found", message
            )
        if exc.status_code == 405:
            # Starlette's Allow names the methods of the first route matching the path
            # only; GET and POST on one path are two routes here.
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(_allowed(app, request))}
        return await http_exception_handler(request, exc)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        needed = ", ".join(sorted(p.replace("_", " ").title() for p in exc.needed))
        message = f"This needs the permissions {needed}."
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": message}, status_code=403)
        return _message_page(request, exc.principal, 403, "Not allowed", message)

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint() -> Response:
        if metrics is None:
            return Response("metrics are off\n", media_type="text/plain", status_code=404)
        body, content_type = metrics.render()  # type: ignore[attr-defined]
        return Response(body, media_type=content_type)

    # A plain route, as FastAPI's own docs page: public, like the document it shows.
    async def api_docs(request: Request) -> Response:
        """Swagger UI for the API document; works offline (no CDN)."""
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "",
            title="crmsync API",
            swagger_js_url="/api/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/api/docs/assets/swagger-ui.css",
            swagger_favicon_url="/api/docs/assets/favicon-32x32.png",
        )

    app.add_route("/api/docs", api_docs, include_in_schema=False)

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _message_page(
    request: Request, principal: Principal | None, status_code: int, title: str, message: str
) -> Response:
    return request.app.state.templates.TemplateResponse(
        request,
        "message.html",
        {
            "principal": principal,
            "MANAGE": MANAGE,
            "ERROR_REPORT": ERROR_REPORT,
            "title": title,
            "message": message,
        },
        status_code=status_code,
    )


def _wants_a_page(request: Request) -> bool:
    """A browser asking for a page (not the API, not a stylesheet or a script)."""
    if request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "")


def _allowed(app: FastAPI, request: Request) -> list[str]:
    """Every method some route answers on the request's path."""
    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in app.router.routes):
            allowed.append(method)
    return allowed


def _when(value: str | None) -> str:
    """An ISO instant as the console shows it."""
    if not value:
        return "never"
    return dt.datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M UTC")
