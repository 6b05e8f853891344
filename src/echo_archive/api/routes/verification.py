"""Routes of the ``verification`` resource kind (see :mod:`echo_archive.api.routes`)."""

from __future__ import annotations

from fastapi import APIRouter

from echo_archive.api.deps import ApiContext, Auth

__all__ = ["build"]


def build(ctx: ApiContext, auth: Auth) -> APIRouter:
    """The router of this module's routes over ``ctx`` (authorization through ``auth``)."""
    return APIRouter(prefix="/v1", tags=["verification"])
