"""Routes of the ``feeds`` resource kind: the feeds of ``echo.toml``, and harvest jobs.

Thin shells over :mod:`echo_archive.services.feeds` (checked, atomic edits
of ``echo.toml`` that keep its comments; views with credentials redacted)
and, for "harvest now", the running service (:class:`~echo_archive.api.deps.ServiceView`)
with :mod:`echo_archive.api.jobs`.

* ``GET /v1/feeds`` -> ``{"total", "entries"}``: every ``[[feeds]]`` table
  the principal's scope covers (``feeds:read``), each as ``echoctl feeds
  list --json`` prints it (``name``, ``source``, ``interval``, ``enabled``,
  ``allow_private``, ``params`` redacted, ``position``, ``error``).
* ``GET /v1/feeds/{name}`` -> that feed (``feeds:read`` on it).
* ``POST /v1/feeds`` JSON ``{"name", "source", "interval"?, "params"?,
  "allow_private"?}`` -> 201 ``{"feed", "changed", "reload"}`` (``feeds:write``
  on the new name).
* ``PATCH /v1/feeds/{name}`` JSON ``{"interval"?, "params"?, "allow_private"?,
  "enabled"?}`` -> ``{"feed", "changed", "reload"}`` (``feeds:write``).
  ``params`` is a JSON merge patch (RFC 7396) over the real parameters:
  ``{"params": {"url": "https://..."}}`` changes the URL alone, a null
  removes a key, and a credential never has to be sent back.
* ``POST /v1/feeds/{name}/enable`` and ``/disable`` -> ``{"feed", "changed",
  "reload"}`` (``feeds:write``).
* ``DELETE /v1/feeds/{name}`` -> ``{"removed", "feed", "reload"}``
  (``feeds:admin``): what was archived from it stays in the log.
* ``POST /v1/feeds/{name}/harvest`` -> 202 ``{"job"}`` with ``Location:
  /v1/jobs/{id}`` (``feeds:write``); 503 without a running service, 404 when
  the service does not schedule the feed (unknown or disabled).
* ``GET /v1/jobs/{id}`` -> ``{"job": {"id", "feed", "state", "created",
  "started", "finished", "result"}}`` (``feeds:read`` on its feed); 404 for an
  unknown id or one no longer kept (:data:`~echo_archive.api.jobs.MAX_JOBS`).

Permissions (:mod:`echo_archive.api.roles`): an editor adds, changes,
enables, disables and harvests feeds (``feeds:write``); removing a feed
needs ``feeds:admin`` (an admin's): it ends the feed's collection and drops
its configuration, where disabling is the reversible way. Turning on
``allow_private`` (lifting the SSRF guard for a feed, so the harvester may
reach this machine and its network) also needs ``feeds:admin``, and so does
changing the parameters of a feed that has it (repointing a feed the SSRF
guard no longer covers); an editor may turn it off. A role
scoped to a feed group holds these only for the group's feeds (a feed is in
a group by its name in ``[api.groups]``).

The address rule: a feed added or changed through the API must not send
requests to a private address (loopback, RFC 1918, link-local, CGNAT...),
the harvester's SSRF rule (:func:`~echo_archive.services.feeds.check_feed_addresses`),
unless it sets ``allow_private`` or the vault sets ``[harvest]
allow_private``: 400 naming the host, the kind of address and its RFC.

Every change is an ``audit`` entry, committed after the file changed; when
that commit fails before the entry is in the log, the change is taken back
(the file's previous bytes, if nobody edited it since) and the request
fails (500): no change stands without its entry, and no entry without its
change (``feed.add``, ``feed.change``,
``feed.enable``, ``feed.disable``, ``feed.remove``, ``feed.harvest``; target
``feed:<name>``; the request id; parameter *names*, never their values).
With a service running, a change is applied at once by its reload (as
SIGHUP); ``reload`` in the answer is ``{"applied": true, "error": null}``,
or ``{"applied": false, "error": "..."}`` when the service rejected the
file (the old configuration stays in force; the file itself was checked
before it was written and is a valid ``echo.toml``), or null without a
service. Errors: 400 (``{"code": "request"}``: a bad name, body, source,
parameter or address), 404 (no such feed), 409 (``{"code": "conflict"}``:
the name is taken, or the feed's table is invalid in ``echo.toml``).
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' ``Annotated``
# dependencies at runtime, and they name objects local to build.

import re
from collections.abc import Callable
from typing import Annotated, Any, Final, TypeVar

from fastapi import APIRouter, Body, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from starlette.concurrency import run_in_threadpool

from echo_archive.api.audit import audit_meta, record
from echo_archive.api.deps import (
    CLIENT_ERROR,
    ApiContext,
    Auth,
    Requirement,
    check,
    denied,
    request_error,
    request_id,
)
from echo_archive.api.jobs import JobStore
from echo_archive.api.roles import Permission, Principal, listing_feeds
from echo_archive.api.tables import on_writer
from echo_archive.config import FEED_NAME_PATTERN
from echo_archive.errors import (
    ConfigError,
    NotFoundError,
    PermissionDenied,
    RequestError,
    SourceError,
)
from echo_archive.schemas import AuditMeta
from echo_archive.services import feeds as feed_service
from echo_archive.vault.vault import Vault

__all__ = [
    "FeedPatch",
    "FeedRequirement",
    "NewFeed",
    "build",
    "logged",
]

T = TypeVar("T")

_NAME: Final = re.compile(FEED_NAME_PATTERN)
_JOB_ID: Final = re.compile(r"[0-9a-f]{32}")

FEEDS_READ: Final = Permission("feeds", "read")
FEEDS_WRITE: Final = Permission("feeds", "write")
FEEDS_ADMIN: Final = Permission("feeds", "admin")

_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    **CLIENT_ERROR,
    400: {"description": "a bad name, body, source, parameter or address (`message` names it)"},
    401: {"description": "no valid credential"},
    403: {"description": "the principal lacks the permission, or its scope the feed"},
}
_NOT_FOUND: Final[dict[int | str, dict[str, Any]]] = {404: {"description": "no such feed"}}
_CONFLICT: Final[dict[int | str, dict[str, Any]]] = {
    409: {"description": "the name is taken, or the feed's table in echo.toml is invalid"}
}


class NewFeed(BaseModel):
    """The body of ``POST /v1/feeds``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64, description="A unique name: a-z, 0-9, '.', '_', '-'.")
    source: str = Field(max_length=32, description="rss, hn, reddit, github or fred.")
    interval: StrictInt | None = Field(
        default=None, description="Seconds between harvests, >= 60 (default: the source's)."
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="The source's parameters (only those it declares)."
    )
    allow_private: StrictBool = Field(
        default=False,
        description="Let the feed reach private addresses (SSRF guard off; needs feeds:admin).",
    )


class FeedPatch(BaseModel):
    """The body of ``PATCH /v1/feeds/{name}`` (every field optional: absent keeps it)."""

    model_config = ConfigDict(extra="forbid")

    interval: StrictInt | None = Field(default=None, description="Seconds between harvests.")
    params: dict[str, Any] | None = Field(
        default=None, description="A JSON merge patch (RFC 7396) over the feed's parameters."
    )
    allow_private: StrictBool | None = Field(
        default=None, description="true needs feeds:admin (lifts the SSRF guard for the feed)."
    )
    enabled: StrictBool | None = Field(default=None, description="Collect it, or skip it.")


class FeedRequirement(Requirement):
    """:class:`~echo_archive.api.deps.Requirement` of a permission on the feed a route names.

    The feed is the route's ``{name}`` path parameter: a principal scoped to
    a feed group holds the permission only for the group's feeds
    (:func:`~echo_archive.api.roles.authorize`). A route without ``{name}``
    (``POST /v1/feeds``) names its feed in the body: here only the role is
    checked, and the route checks the scope once the body is read.
    """

    async def __call__(self, request: Request) -> Principal:
        """The principal when it holds the permission on the feed (else 401/403)."""
        auth = self.auth
        found = await auth.principal(request)
        now = auth.ctx.clock()
        feed = request.path_params.get("name")
        if feed is None and found.feeds is not None:
            if self.permission not in found.permissions(now):
                raise denied(
                    PermissionDenied(
                        f"{self.permission}: {found.kind} {found.name!r} does not hold it",
                        str(self.permission),
                    )
                )
            return found
        check(found, self.permission, feed, now=now)
        return found


def _feed_name(name: str) -> str:
    """``name`` when it is a feed name (config.FEED_NAME_PATTERN), else 400."""
    if not _NAME.fullmatch(name):
        raise request_error(
            RequestError(
                f"feed name {name[:80]!r}: 1 to 64 of a-z, 0-9, '.', '_', '-', "
                "starting with a letter or digit"
            )
        )
    return name


def _conflict(exc: ConfigError) -> HTTPException:
    return HTTPException(status_code=409, detail={"code": "conflict", "message": str(exc)})


def _service_error(exc: Exception) -> HTTPException:
    """The HTTP error of a feeds service's error (400, 404 or 409)."""
    if isinstance(exc, NotFoundError | RequestError):
        return request_error(exc)
    if isinstance(exc, SourceError):
        return request_error(RequestError(str(exc)))
    if isinstance(exc, ConfigError):
        return _conflict(exc)
    raise exc


def _actor(principal: Principal) -> str:
    """``key:<name>`` or ``user:<name>``: the actor of an audit entry."""
    return f"{principal.kind}:{principal.name}"


def logged(reader: Vault, meta: AuditMeta, recent: int = 50) -> bool:
    """Whether the log holds ``meta`` among its ``recent`` newest ``audit`` entries.

    What a failed commit left behind: an entry past the catalog's commit
    stays (in the unsealed tail, sealed at the next commit or repair); one
    before it is cleanly absent. Matched on actor, action, target and request id.
    """
    rows = reader.catalog.query(
        "SELECT idx FROM entries WHERE type = 'audit' ORDER BY idx DESC LIMIT ?", (recent,)
    )
    want = (meta.actor, meta.action, meta.target, meta.request_id)
    for (idx,) in list(rows):
        found = reader.entry(int(idx)).meta
        if (found["actor"], found["action"], found["target"], found["request_id"]) == want:
            return True
    return False


def build(ctx: ApiContext, auth: Auth) -> APIRouter:
    """The router of the feeds and jobs routes over ``ctx`` (authorization through ``auth``)."""
    router = APIRouter(prefix="/v1", tags=["feeds"])
    jobs = JobStore(ctx.clock)
    if ctx.service is not None:
        jobs.attach(ctx.service.bus)
    reading = auth.require(FEEDS_READ)
    write_feed = FeedRequirement(auth, FEEDS_WRITE, None)
    admin_feed = FeedRequirement(auth, FEEDS_ADMIN, None)

    def vault_dir() -> Any:
        return ctx.service.path if ctx.service is not None else ctx.reader.path

    async def edit(change: Callable[[], T]) -> tuple[T, Callable[[], bool]]:
        """Run a feeds service change in a thread; its result and its undo."""
        return await run_in_threadpool(feed_service.undoable, vault_dir(), change)

    async def audit(
        request: Request,
        principal: Principal,
        action: str,
        name: str,
        details: dict[str, Any] | None = None,
        undo: Callable[[], bool] | None = None,
    ) -> None:
        """Commit the change's audit entry; when that fails, take the change back (``undo``)."""
        meta = audit_meta(
            _actor(principal),
            action,
            target=f"feed:{name}",
            request_id=request_id(request),
            details=details,
        )
        try:
            await run_in_threadpool(on_writer, ctx.writer, lambda v: record(v, meta))
        except BaseException:
            # a commit that failed after its catalog transaction left the entry in the
            # log's unsealed tail (sealed later: invariant 2): then the change stands
            if undo is not None and not await run_in_threadpool(logged, ctx.reader, meta):
                await run_in_threadpool(undo)  # no change stands without its entry
            raise

    async def reload() -> dict[str, Any] | None:
        if ctx.service is None:
            return None
        error = await ctx.service.reload()
        return {"applied": error is None, "error": error}

    def needs_private(principal: Principal, name: str) -> None:
        check(principal, FEEDS_ADMIN, name, now=ctx.clock())

    @router.get(
        "/feeds",
        summary="The feeds the principal's scope covers.",
        responses={**_ERRORS},
    )
    async def feeds_list(principal: Annotated[Principal, Depends(reading)]) -> dict[str, Any]:
        """``{"total", "entries": [feed...]}`` in ``echo.toml`` order (credentials redacted)."""
        scope = listing_feeds(principal, FEEDS_READ, now=ctx.clock())
        try:
            found = await run_in_threadpool(feed_service.list_feeds, vault_dir())
        except ConfigError as exc:
            raise _conflict(exc) from None
        shown = [f.to_json() for f in found if scope is None or f.name in scope]
        return {"total": len(shown), "entries": shown}

    @router.get(
        "/feeds/{name}",
        summary="One feed (credentials redacted).",
        responses={**_ERRORS, **_NOT_FOUND},
    )
    async def feeds_get(
        name: str, principal: Annotated[Principal, Depends(reading)]
    ) -> dict[str, Any]:
        """The feed, as an entry of ``GET /v1/feeds``."""
        check(principal, FEEDS_READ, _feed_name(name), now=ctx.clock())
        try:
            view = await run_in_threadpool(feed_service.get_feed, vault_dir(), name)
        except (NotFoundError, ConfigError) as exc:
            raise _service_error(exc) from None
        return view.to_json()

    @router.post(
        "/feeds",
        status_code=201,
        summary="Add a feed to echo.toml (checked by its source and the address rule).",
        responses={**_ERRORS, **_CONFLICT},
    )
    async def feeds_add(
        request: Request,
        body: Annotated[NewFeed, Body()],
        principal: Annotated[Principal, Depends(write_feed)],
    ) -> dict[str, Any]:
        """201 ``{"feed", "changed": true, "reload"}``."""
        name = _feed_name(body.name)
        check(principal, FEEDS_WRITE, name, now=ctx.clock())
        if body.allow_private:
            needs_private(principal, name)
        try:
            view, undo = await edit(
                lambda: feed_service.add_feed(
                    vault_dir(),
                    name,
                    body.source,
                    interval=body.interval,
                    params=body.params,
                    allow_private=body.allow_private,
                    check_addresses=True,
                )
            )
        except (NotFoundError, RequestError, SourceError, ConfigError) as exc:
            raise _service_error(exc) from None
        details = {
            "source": view.source,
            "interval": view.interval,
            "allow_private": view.allow_private,
            "params": sorted(body.params),
        }
        await audit(request, principal, "feed.add", name, details, undo)
        return {"feed": view.to_json(), "changed": True, "reload": await reload()}

    @router.patch(
        "/feeds/{name}",
        summary="Change a feed: interval, parameters (a merge patch), allow_private, enabled.",
        responses={**_ERRORS, **_NOT_FOUND, **_CONFLICT},
    )
    async def feeds_change(
        request: Request,
        name: str,
        body: Annotated[FeedPatch, Body()],
        principal: Annotated[Principal, Depends(write_feed)],
    ) -> dict[str, Any]:
        """``{"feed", "changed", "reload"}`` (no reload when nothing changed)."""
        _feed_name(name)
        if body.allow_private:
            needs_private(principal, name)
        elif body.params is not None and body.allow_private is None:
            # a feed an admin let reach private addresses: repointing it is an admin's call
            try:
                current = await run_in_threadpool(feed_service.get_feed, vault_dir(), name)
            except (NotFoundError, ConfigError) as exc:
                raise _service_error(exc) from None
            if current.allow_private:
                needs_private(principal, name)
        try:
            (view, changed), undo = await edit(
                lambda: feed_service.change_feed(
                    vault_dir(),
                    name,
                    interval=body.interval,
                    params_patch=body.params,
                    allow_private=body.allow_private,
                    enabled=body.enabled,
                    check_addresses=True,
                )
            )
        except (NotFoundError, RequestError, SourceError, ConfigError) as exc:
            raise _service_error(exc) from None
        if not changed:
            return {"feed": view.to_json(), "changed": False, "reload": None}
        fields = sorted(k for k, v in body.model_dump().items() if v is not None)
        details: dict[str, Any] = {"fields": fields}
        if body.params is not None:
            details["params"] = sorted(body.params)
        await audit(request, principal, "feed.change", name, details, undo)
        return {"feed": view.to_json(), "changed": True, "reload": await reload()}

    async def set_enabled(
        request: Request, name: str, principal: Principal, enabled: bool
    ) -> dict[str, Any]:
        _feed_name(name)
        try:
            change, undo = await edit(
                lambda: feed_service.set_feed_enabled(vault_dir(), name, enabled)
            )
            view = await run_in_threadpool(feed_service.get_feed, vault_dir(), name)
        except ConfigError as exc:
            if "no feed named" in str(exc):
                raise request_error(NotFoundError(str(exc))) from None
            raise _conflict(exc) from None
        except NotFoundError as exc:
            raise request_error(exc) from None
        if not change.changed:
            return {"feed": view.to_json(), "changed": False, "reload": None}
        action = "feed.enable" if enabled else "feed.disable"
        await audit(request, principal, action, name, undo=undo)
        return {"feed": view.to_json(), "changed": True, "reload": await reload()}

    @router.post(
        "/feeds/{name}/enable",
        summary="Enable a feed: the harvester collects it again.",
        responses={**_ERRORS, **_NOT_FOUND, **_CONFLICT},
    )
    async def feeds_enable(
        request: Request, name: str, principal: Annotated[Principal, Depends(write_feed)]
    ) -> dict[str, Any]:
        """``{"feed", "changed", "reload"}`` (``changed`` false when it was enabled)."""
        return await set_enabled(request, name, principal, True)

    @router.post(
        "/feeds/{name}/disable",
        summary="Disable a feed: the harvester skips it; its configuration is kept.",
        responses={**_ERRORS, **_NOT_FOUND, **_CONFLICT},
    )
    async def feeds_disable(
        request: Request, name: str, principal: Annotated[Principal, Depends(write_feed)]
    ) -> dict[str, Any]:
        """``{"feed", "changed", "reload"}`` (``changed`` false when it was disabled)."""
        return await set_enabled(request, name, principal, False)

    @router.delete(
        "/feeds/{name}",
        summary="Remove a feed from echo.toml (what was archived stays in the log).",
        responses={**_ERRORS, **_NOT_FOUND, **_CONFLICT},
    )
    async def feeds_remove(
        request: Request, name: str, principal: Annotated[Principal, Depends(admin_feed)]
    ) -> dict[str, Any]:
        """``{"removed": name, "feed": feed or null (an invalid table), "reload"}``."""
        _feed_name(name)
        try:
            await run_in_threadpool(feed_service.get_feed, vault_dir(), name)
            view, undo = await edit(lambda: feed_service.remove_feed(vault_dir(), name))
        except (NotFoundError, ConfigError) as exc:
            raise _service_error(exc) from None
        await audit(request, principal, "feed.remove", name, undo=undo)
        return {
            "removed": name,
            "feed": None if view is None else view.to_json(),
            "reload": await reload(),
        }

    @router.post(
        "/feeds/{name}/harvest",
        status_code=202,
        summary="Harvest a feed now, ahead of the due ones: 202 and a job to poll.",
        responses={
            **_ERRORS,
            404: {"description": "the service does not schedule the feed (unknown or disabled)"},
            503: {"description": "no service runs (the API is over a bare vault)"},
        },
    )
    async def feeds_harvest(
        request: Request,
        name: str,
        response: Response,
        principal: Annotated[Principal, Depends(write_feed)],
    ) -> dict[str, Any]:
        """202 ``{"job"}`` with ``Location: /v1/jobs/{id}``."""
        _feed_name(name)
        if ctx.service is None:
            raise HTTPException(
                status_code=503,
                detail={"code": "unavailable", "message": "no service runs: `echoctl serve`"},
            )
        if not ctx.service.harvest_now(name):
            raise request_error(
                NotFoundError(f"feed {name!r} is not scheduled (unknown or disabled)")
            )
        job = jobs.create(name)  # no await since harvest_now: no run can start in between
        await audit(request, principal, "feed.harvest", name, {"job": job.id})
        response.headers["Location"] = f"/v1/jobs/{job.id}"
        return {"job": job.to_json()}

    @router.get(
        "/jobs/{job_id}",
        summary="A harvest job: queued, running, succeeded or failed.",
        responses={**_ERRORS, 404: {"description": "no such job (or no longer kept)"}},
    )
    async def jobs_get(
        job_id: str, principal: Annotated[Principal, Depends(reading)]
    ) -> JSONResponse:
        """``{"job": {"id", "feed", "state", "created", "started", "finished", "result"}}``."""
        job = jobs.get(job_id) if _JOB_ID.fullmatch(job_id) else None
        if job is None:
            raise request_error(NotFoundError(f"no job {job_id[:40]!r}"))
        check(principal, FEEDS_READ, job.feed, now=ctx.clock())
        return JSONResponse({"job": job.to_json()}, headers={"Cache-Control": "no-store"})

    return router
