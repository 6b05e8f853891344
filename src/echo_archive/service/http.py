"""The service's HTTP endpoints (FastAPI): liveness, readiness, metrics, status, control.

Served on ``[service] listen`` (loopback by default):

* ``GET /healthz``: 200 ``{"status": "alive"}`` while the process answers
  (Kubernetes' liveness-probe convention).
* ``GET /readyz``: 200 when the vault is open, the writer and the scheduler
  are running (the scheduler looked at the schedules within three ticks);
  503 with the reasons otherwise.
* ``GET /metrics``: Prometheus text exposition format 0.0.4
  (:mod:`echo_archive.service.metrics`).
* ``GET /status``: the JSON summary ``echoctl status`` shows
  (:meth:`~echo_archive.service.runner.Service.status`).

The control socket (``service.sock`` in the vault, a Unix socket of mode 0600:
only the vault's owner can use it) serves the same routes plus
``POST /control/harvest/{feed}`` (run a feed now, ahead of the queue:
``echoctl harvest --now FEED``) and ``POST /control/reload`` (re-read
``echo.toml``, as SIGHUP does); the socket's mode is its authentication.

On ``listen``, the API's routes (:func:`echo_archive.api.routes.mount`:
``/v1/...`` and the tlog-tiles read paths) are mounted, and once
authentication is configured (an API key or a user exists, or the service
is bound to a non-loopback address, which is refused
until then) ``/readyz``, ``/metrics`` and ``/status`` need a credential
whose role holds ``operations:read`` (401 without one, 403 without the
permission); ``/healthz`` never does. The application on ``listen`` is
wrapped in the API's edge middleware (:func:`echo_archive.api.middleware.install`:
rate limit, body limit, security headers, CORS, compression, request ids,
timing headers, access log, per-route metrics); the control socket's is not
(its mode is its authentication, and it serves the owner's own tools).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from echo_archive.api.deps import ApiContext, Auth
from echo_archive.api.middleware import install
from echo_archive.api.routes import mount
from echo_archive.service.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from echo_archive.service.runner import Service

__all__ = ["build_app"]


def build_app(service: Service, *, control: bool = False) -> FastAPI:
    """The FastAPI application of ``service``; with ``control``, the control routes too.

    Handlers are ``async``: they run on the service's event loop, where the
    scheduler's state lives, and only read it (writes go through the writer).
    """
    app = FastAPI(
        title="ECHO service",
        version="1",
        description="Liveness, readiness, metrics and status of `echoctl serve`.",
        docs_url=None,
        redoc_url=None,
    )
    guard: list[Any] = []
    guarded: dict[str, Any] | None = None
    if not control:
        # wall-clock time: keys, tokens and elevations expire in real time (the
        # scheduler's clock is injectable for tests of days of schedule)
        ctx = ApiContext(
            service.reader, service.writer, service.config.api, time.time, service=service
        )
        mount(app, ctx)
        install(app, ctx, observe=service.metrics.observe_request)
        operations = Auth(ctx).require("operations:read")

        async def operations_read(request: Request) -> None:
            if service.auth_required():
                await operations(request)

        guard = [Depends(operations_read)]
        guarded = {
            "x-echo-permission": "operations:read",
            "security": [{"bearer": []}, {"apiKey": []}],
        }

    @app.get("/healthz", summary="Liveness: the process answers.")
    async def healthz() -> dict[str, str]:
        """200 ``{"status": "alive"}``."""
        return {"status": "alive"}

    @app.get(
        "/readyz",
        dependencies=guard,
        openapi_extra=guarded,
        summary="Readiness: vault open, writer and scheduler running.",
        responses={503: {"description": "not ready; `reasons` says why"}},
    )
    async def readyz() -> JSONResponse:
        """200 ``{"ready": true}``, or 503 ``{"ready": false, "reasons": [...]}``."""
        reasons = service.not_ready()
        body: dict[str, Any] = {"ready": not reasons, "reasons": reasons}
        return JSONResponse(body, status_code=503 if reasons else 200)

    @app.get(
        "/metrics",
        dependencies=guard,
        openapi_extra=guarded,
        summary="Prometheus metrics (text exposition format 0.0.4).",
        response_class=Response,
    )
    async def metrics() -> Response:
        """The metrics of :mod:`echo_archive.service.metrics`."""
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    @app.get(
        "/status",
        summary="What the service is doing and last did (JSON).",
        dependencies=guard,
        openapi_extra=guarded,
    )
    async def status() -> dict[str, Any]:
        """See :meth:`Service.status <echo_archive.service.runner.Service.status>`."""
        return service.status()

    if control:

        @app.post(
            "/control/harvest/{feed}",
            summary="Run one feed now, ahead of the due ones.",
            status_code=202,
            responses={404: {"description": "no such scheduled feed"}},
        )
        async def harvest_now(feed: str) -> JSONResponse:
            """202 ``{"feed", "queued": true}``, or 404 when the feed is not scheduled."""
            if not service.harvest_now(feed):
                return JSONResponse(
                    {"error": f"feed {feed!r} is not scheduled (disabled or unknown)"},
                    status_code=404,
                )
            return JSONResponse({"feed": feed, "queued": True}, status_code=202)

        @app.post("/control/reload", summary="Re-read echo.toml (as SIGHUP does).")
        async def reload() -> dict[str, Any]:
            """``{"reloaded": bool, "error": str | null}``: a bad file is rejected, the old kept."""
            error = await service.reload()
            return {"reloaded": error is None, "error": error}

    return app
