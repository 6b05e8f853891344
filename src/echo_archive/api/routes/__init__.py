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
- :mod:`~echo_archive.api.routes.stream`: the live stream (SSE, WebSocket).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from fastapi import APIRouter, FastAPI

from echo_archive.api.deps import ApiContext, Auth
from echo_archive.api.router import build_router
from echo_archive.api.routes import (
    captures,
    corrections,
    feeds,
    items,
    operations,
    stream,
    tiles,
    verification,
)

__all__ = ["BUILDERS", "mount"]

BUILDERS: Final[tuple[Callable[[ApiContext, Auth], APIRouter], ...]] = (
    items.build,
    captures.build,
    verification.build,
    tiles.build,
    feeds.build,
    operations.build,
    corrections.build,
    stream.build,
)
"""Every route module's router builder, in the order their routes are matched."""


def mount(app: FastAPI, ctx: ApiContext) -> None:
    """Include every API route of ``ctx`` in ``app`` (the auth routes first)."""
    app.include_router(build_router(ctx))
    auth = Auth(ctx)
    for builder in BUILDERS:
        app.include_router(builder(ctx, auth))
