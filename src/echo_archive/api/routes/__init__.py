"""The HTTP API's routes, one module per resource kind (issue 11, "Endpoints").

Each module has ``build(ctx, auth) -> APIRouter``; :func:`mount` includes
them all (and the authentication routes of :mod:`echo_archive.api.router`)
in the service's application. Paths are under ``/v1`` except the C2SP
tlog-tiles read paths (``/checkpoint``, ``/tile/...``), which the
specification fixes at the log's root.

- :mod:`~echo_archive.api.routes.items`: items (JSON, CSV, NDJSON, Atom), an
  item's history and diff, full-text search;
- :mod:`~echo_archive.api.routes.captures`: captures, their bodies and WARC
  records, entries;
- :mod:`~echo_archive.api.routes.verification`: checkpoints, inclusion and
  consistency proofs, evidence bundles;
- :mod:`~echo_archive.api.routes.tiles`: the C2SP tlog-tiles read paths;
- :mod:`~echo_archive.api.routes.feeds`: feeds, harvest jobs;
- :mod:`~echo_archive.api.routes.operations`: status, health, alerts,
  silences, interventions, audit, users;
- :mod:`~echo_archive.api.routes.corrections`: annotations and retractions;
- :mod:`~echo_archive.api.routes.stream`: the live stream (SSE, WebSocket);
- :mod:`~echo_archive.api.routes.docs`: the documentation page (Swagger UI, no CDN).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from echo_archive.api.deps import ApiContext, Auth, Requirement, validation_error
from echo_archive.api.router import build_router
from echo_archive.api.routes import (
    captures,
    corrections,
    docs,
    feeds,
    items,
    operations,
    stream,
    tiles,
    verification,
)

__all__ = ["BUILDERS", "SECURITY_SCHEMES", "mount", "route_requirement"]

BUILDERS: Final[tuple[Callable[[ApiContext, Auth], APIRouter], ...]] = (
    items.build,
    captures.build,
    verification.build,
    tiles.build,
    feeds.build,
    operations.build,
    corrections.build,
    stream.build,
    docs.build,
)
"""Every route module's router builder, in the order their routes are matched."""


SECURITY_SCHEMES: Final[dict[str, dict[str, str]]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`echoctl keys create`) or an access token (`POST /v1/token`).",
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
"""The OpenAPI 3.1 security schemes (§4.8.27) every credentialed route accepts."""


def _requirements(dependant: Dependant) -> list[Requirement | str]:
    """The :class:`Requirement` dependencies of a route (``"any"`` for a bare principal)."""
    found: list[Requirement | str] = []
    for dep in dependant.dependencies:
        call = dep.call
        if isinstance(call, Requirement):
            found.append(call)
        elif getattr(call, "__func__", None) is Auth.principal:
            found.append("any")
        found.extend(_requirements(dep))
    return found


def route_requirement(route: APIRoute) -> tuple[str | None, str | None]:
    """``(permission, public group)`` a route declares through its dependencies.

    ``permission`` is ``"kind:action"``, ``"any"`` (any valid credential), or
    None when the route has no :meth:`Auth.require` dependency (it then
    authorizes in its body, or is open: ``/healthz``).
    """
    reqs = _requirements(route.dependant)
    for req in reqs:
        if isinstance(req, Requirement):
            return str(req.permission), req.public
    return ("any", None) if reqs else (None, None)


def _annotate(router: APIRouter) -> APIRouter:
    """Name each route's permission and security requirement in its OpenAPI operation.

    ``x-echo-permission``, ``x-echo-public``, and ``security`` (OpenAPI 3.1
    §4.8.30; an empty requirement ``{}`` makes the credential optional on a
    public route group that ``[api] public`` opens).
    """
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        permission, public = route_requirement(route)
        if permission is None:
            continue
        extra: dict[str, Any] = dict(route.openapi_extra or {})
        extra["x-echo-permission"] = permission
        security: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
        if public is not None:
            extra["x-echo-public"] = public
            if any(
                isinstance(r, Requirement) and r.open_to_all for r in _requirements(route.dependant)
            ):
                security.append({})
        extra.setdefault("security", security)
        route.openapi_extra = extra
    return router


def _security_schemes(app: FastAPI) -> None:
    """Add :data:`SECURITY_SCHEMES` to ``app``'s OpenAPI components."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            _no_422(schema)
            schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(
                SECURITY_SCHEMES
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _no_422(schema: dict[str, Any]) -> None:
    """Replace FastAPI's generated 422 response of each operation by the API's 400.

    The API answers a request that breaks a route's model with 400
    (:func:`~echo_archive.api.deps.validation_error`), never 422.
    """
    for ops in schema.get("paths", {}).values():
        for op in ops.values():
            responses = op.get("responses") if isinstance(op, dict) else None
            if not isinstance(responses, dict) or "422" not in responses:
                continue
            del responses["422"]
            responses.setdefault(
                "400", {"description": "a malformed request (`message` names what is wrong)"}
            )
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)


def mount(app: FastAPI, ctx: ApiContext) -> None:
    """Include every API route of ``ctx`` in ``app`` (the auth routes first).

    A request that breaks a route's model is a 400 that echoes nothing
    (:func:`~echo_archive.api.deps.validation_error`). Each operation of the
    OpenAPI document names the permission it needs (``x-echo-permission``:
    ``kind:action``, or ``any`` for any valid credential) and, on a public
    route group, ``x-echo-public``.
    """
    app.add_exception_handler(RequestValidationError, validation_error)
    app.include_router(_annotate(build_router(ctx)))
    auth = Auth(ctx)
    for builder in BUILDERS:
        app.include_router(_annotate(builder(ctx, auth)))
    _security_schemes(app)
