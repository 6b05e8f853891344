"""Routes of the ``operations`` resource kind, the audit trail and users.

Thin shells over what ``echoctl`` runs for each (one mechanism, one place):

* ``GET /v1/status``: the running service's summary
  (:meth:`ServiceView.status <echo_archive.api.deps.ServiceView.status>`,
  ``echoctl status --json``); 503 without a running service (the offline
  status ``echoctl status`` reads is built by the service layer, above the API).
* ``GET /v1/health?full=false``: the health checks
  (:func:`echo_archive.control.health.run_checks`, ``echoctl health --json``:
  ``{"at", "worst", "checks"}``), the quick pass unless ``full=true``; run in
  a worker thread, one at a time, and writing nothing (a GET is safe, RFC
  9110 §9.2.1: what the checks remember is saved by the service's own passes).
* ``GET /v1/alerts``: the alerts pending and firing as the service last
  saved them, each with the silences muting it
  (:func:`~echo_archive.control.alertstore.alert_status`, ``echoctl alerts
  list --json``), as ``{"total", "entries"}``.
* ``GET /v1/silences?all=false``, ``POST /v1/silences`` (JSON ``{"matchers":
  ["alertname=EchoFeedStale", ...], "duration": "2h", "comment"}``: Alertmanager's
  matchers and rules, :func:`~echo_archive.control.silences.new_silence`;
  the author is the principal), ``DELETE /v1/silences/{id}`` (expire it now).
* ``GET /v1/interventions?state=``, ``GET /v1/interventions/{id}``,
  ``POST /v1/interventions/{id}/approve``, ``/reject`` and ``/rollback``
  (JSON ``{"reason"}`` for the last two), through the running service's
  :class:`~echo_archive.control.interventions.InterventionManager` (what
  ``echoctl interventions`` does; 503 without a running service). 409 when the
  intervention's state does not allow the step.
* ``GET /v1/audit?since=&actor=&cursor=&limit=``: the ``audit`` entries of
  the log, oldest first (:func:`~echo_archive.api.audit.list_audit`,
  ``echoctl audit --json``), ``{"total", "entries", "next"}`` with a keyset
  cursor (:mod:`echo_archive.services.paging`; ``limit`` 1 to 1000, default 100).
* ``GET /v1/users``, ``POST /v1/users`` (JSON ``{"name", "role", "group"?,
  "password"}``), ``PATCH /v1/users/{name}`` (JSON ``{"role"?, "group"?,
  "password"?}``: a new role or group, :func:`~echo_archive.api.users.set_role`;
  a new password), ``DELETE /v1/users/{name}`` (:mod:`echo_archive.api.users`).
  A password is read from the JSON body only, hashed with argon2id, and
  never stored, logged or sent back (a malformed body's 400 echoes no value;
  answers carry ``Cache-Control: no-store``).

Permissions (:mod:`echo_archive.api.roles`): reading status, health,
alerts, silences and interventions needs ``operations:read`` (an analyst's);
adding or expiring a silence ``operations:write`` (an editor's: it mutes
notifications, it changes nothing else); approving, rejecting and rolling
back an intervention ``operations:approve`` (an admin's: these are the
decisions the supervisor leaves to a person, a reject or a rollback as much
as an approval); the audit trail ``audit:read``; users ``users:read`` and
``users:admin`` (admins). A principal scoped to a feed group holds none of
these (they are archive-wide).

Every write is an ``audit`` entry with the request id; a silence whose
entry cannot be committed (before it reaches the log) is expired again, and
the request fails (``silence.add``,
``silence.expire``, ``intervention.approve``, ``intervention.reject``,
``intervention.rollback``; users' changes are audited by
:mod:`echo_archive.api.users` itself: ``user.add``, ``user.remove``,
``user.passwd``, ``user.role``). An intervention's steps are also its own
``intervention`` entries, naming the principal as the one who decided.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' ``Annotated``
# dependencies at runtime, and they name objects local to build.

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from starlette.concurrency import run_in_threadpool

from echo_archive.api.audit import AuditEntry, audit_meta, list_audit, record
from echo_archive.api.deps import CLIENT_ERROR, ApiContext, Auth, request_error, request_id
from echo_archive.api.keys import check_group
from echo_archive.api.roles import Principal, parse_role
from echo_archive.api.routes.feeds import logged
from echo_archive.api.tables import on_writer
from echo_archive.api.users import (
    MAX_PASSWORD,
    UserRecord,
    add_user,
    list_users,
    remove_user,
    set_password,
    set_role,
)
from echo_archive.control.alerts import rfc3339
from echo_archive.control.alertstore import (
    add_silence,
    alert_status,
    expire_silence,
    list_silences,
)
from echo_archive.control.health import run_checks
from echo_archive.control.interventions import (
    Intervention,
    InterventionManager,
    InterventionStateError,
    get_intervention,
    list_interventions,
)
from echo_archive.control.matchers import parse_matcher
from echo_archive.control.silences import Silence, new_silence, parse_duration
from echo_archive.errors import NotFoundError, RequestError
from echo_archive.services.paging import (
    check_limit,
    decode_cursor,
    encode_cursor,
    fingerprint,
)
from echo_archive.vault.writer import VaultWriter

__all__ = ["NewSilence", "NewUser", "Reason", "UserPatch", "build"]

MAX_MATCHERS: Final = 20
"""Matchers one silence may hold at most."""

MAX_MATCHER: Final = 500
"""Characters one matcher may hold at most."""

_AUTH_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    **CLIENT_ERROR,
    401: {"description": "no valid credential"},
    403: {"description": "the principal lacks the permission (or is scoped to a feed group)"},
}
_BAD: Final[dict[int | str, dict[str, Any]]] = {
    400: {"description": "a malformed request (`message` names what is wrong)"}
}
_NO_SERVICE: Final[dict[int | str, dict[str, Any]]] = {
    503: {"description": "no service runs (the API is over a bare vault)"}
}


class NewSilence(BaseModel):
    """The body of ``POST /v1/silences``."""

    model_config = ConfigDict(extra="forbid")

    matchers: list[Annotated[str, Field(max_length=MAX_MATCHER)]] = Field(
        max_length=MAX_MATCHERS,
        description='Label matchers (Alertmanager\'s): NAME=VALUE, NAME!=VALUE, NAME=~"RE", '
        "NAME!~RE; an alert must match all; one at least must not match an empty label.",
    )
    duration: str = Field(
        default="2h", max_length=32, description="How long it mutes: 90s, 30m, 2h, 1d, seconds."
    )
    comment: str = Field(max_length=1000, description="Why (required).")


class Reason(BaseModel):
    """The body of ``POST /v1/interventions/{id}/reject`` and ``/rollback``."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(max_length=1000, description="Why (required).")


class NewUser(BaseModel):
    """The body of ``POST /v1/users`` (the password is never echoed or logged)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64, description="A unique name (letters, digits, . _ -).")
    role: str = Field(max_length=16, description="viewer, analyst, editor or admin.")
    group: str | None = Field(default=None, max_length=64, description="A feed group, or null.")
    password: SecretStr = Field(
        max_length=MAX_PASSWORD, description="8 to 1024 characters; stored as an argon2id hash."
    )


class UserPatch(BaseModel):
    """The body of ``PATCH /v1/users/{name}`` (absent fields are kept)."""

    model_config = ConfigDict(extra="forbid")

    role: str | None = Field(default=None, max_length=16, description="The new role.")
    group: str | None = Field(
        default=None,
        max_length=64,
        description='The feed group, or "" for none (unscoped); absent keeps it.',
    )
    password: SecretStr | None = Field(
        default=None, max_length=MAX_PASSWORD, description="A new password."
    )


def _actor(principal: Principal) -> str:
    """``key:<name>`` or ``user:<name>``: the actor of an audit entry."""
    return f"{principal.kind}:{principal.name}"


def _unavailable(what: str) -> HTTPException:
    return HTTPException(
        status_code=503,
        detail={"code": "unavailable", "message": f"no service runs on this vault: {what}"},
    )


def _conflict(message: str) -> HTTPException:
    return HTTPException(status_code=409, detail={"code": "conflict", "message": message})


def silence_json(silence: Silence, now: float) -> dict[str, Any]:
    """A silence as ``echoctl silence add --json`` prints it.

    ``{"id", "matchers", "startsAt", "endsAt" (POSIX seconds), "createdBy",
    "comment", "status", "matchers_text", "starts", "ends" (RFC 3339)}``.
    """
    doc = silence.to_json(now)
    doc["matchers_text"] = [str(m) for m in silence.matchers]
    doc["starts"] = rfc3339(silence.starts_at)
    doc["ends"] = rfc3339(silence.ends_at)
    return doc


def build(ctx: ApiContext, auth: Auth) -> APIRouter:
    """The router of the operations, audit and users routes over ``ctx``."""
    router = APIRouter(prefix="/v1", tags=["operations"])
    op_read = auth.require("operations:read")
    op_write = auth.require("operations:write")
    op_approve = auth.require("operations:approve")
    audit_read = auth.require("audit:read")
    users_read = auth.require("users:read")
    users_admin = auth.require("users:admin")
    health_turn = asyncio.Lock()  # one health pass at a time (each reads the whole vault)

    async def audited(
        request: Request,
        principal: Principal,
        action: str,
        target: str,
        details: dict[str, Any] | None = None,
        undo: Callable[[], object] | None = None,
    ) -> int:
        """Commit the write's audit entry; if it fails before reaching the log, ``undo`` it."""
        meta = audit_meta(
            _actor(principal),
            action,
            target=target,
            request_id=request_id(request),
            details=details,
        )
        try:
            index: int = await run_in_threadpool(on_writer, ctx.writer, lambda v: record(v, meta))
        except BaseException:
            if undo is not None and not await run_in_threadpool(logged, ctx.reader, meta):
                await run_in_threadpool(undo)  # no write stands without its entry
            raise
        return index

    # ------------------------------------------------------------------ status, health

    @router.get(
        "/status",
        summary="What the service is doing and last did (echoctl status --json).",
        responses={**_AUTH_ERRORS, **_NO_SERVICE},
    )
    async def status(_: Annotated[Principal, Depends(op_read)]) -> dict[str, Any]:
        """The running service's summary (``running``, ``feeds``, ``checks``, ``alerts``...)."""
        if ctx.service is None:
            raise _unavailable("`echoctl status` reads what the vault last recorded")
        return ctx.service.status()

    @router.get(
        "/health",
        summary="Run the health checks (echoctl health --json); the quick pass by default.",
        responses={**_AUTH_ERRORS, **_BAD},
    )
    async def health(
        _: Annotated[Principal, Depends(op_read)],
        full: Annotated[
            bool, Query(description="Also the incremental verify and the derived-index check.")
        ] = False,
    ) -> dict[str, Any]:
        """``{"at", "worst": ok|warning|critical, "checks": [{"name", "severity", ...}]}``."""
        path = ctx.service.path if ctx.service is not None else ctx.reader.path
        writer = ctx.writer if isinstance(ctx.writer, VaultWriter) else None
        async with health_turn:
            report = await run_in_threadpool(
                lambda: run_checks(path, quick=not full, writer=writer, save=False)
            )
        return report.to_json()

    # ------------------------------------------------------------------ alerts, silences

    @router.get(
        "/alerts",
        summary="The alerts pending and firing, with the silences muting each.",
        responses={**_AUTH_ERRORS},
    )
    async def alerts(_: Annotated[Principal, Depends(op_read)]) -> dict[str, Any]:
        """``{"total", "entries": [alert...]}`` (``echoctl alerts list --json``'s alerts)."""
        found = await run_in_threadpool(alert_status, ctx.reader, ctx.clock())
        return {"total": len(found), "entries": [a.to_json() for a in found]}

    @router.get(
        "/silences",
        summary="The silences active or pending (all=true: expired ones too).",
        responses={**_AUTH_ERRORS, **_BAD},
    )
    async def silences(
        _: Annotated[Principal, Depends(op_read)],
        expired: Annotated[
            bool, Query(alias="all", description="Also the expired silences (kept 5 days).")
        ] = False,
    ) -> dict[str, Any]:
        """``{"total", "entries": [silence...]}`` (as :func:`silence_json`)."""
        now = ctx.clock()
        found = await run_in_threadpool(lambda: list_silences(ctx.reader, now, expired=expired))
        return {"total": len(found), "entries": [silence_json(s, now) for s in found]}

    @router.post(
        "/silences",
        status_code=201,
        summary="Add a silence: the matching alerts notify no one until it expires.",
        responses={**_AUTH_ERRORS, **_BAD},
    )
    async def silence_add(
        request: Request,
        body: Annotated[NewSilence, Body()],
        principal: Annotated[Principal, Depends(op_write)],
    ) -> dict[str, Any]:
        """201, the silence (as :func:`silence_json`); its author is the principal."""
        now = ctx.clock()
        try:
            parsed = [parse_matcher(m) for m in body.matchers]
            silence = new_silence(
                parsed,
                duration=parse_duration(body.duration),
                comment=body.comment,
                created_by=_actor(principal),
                now=now,
            )
        except ValueError as exc:
            raise request_error(RequestError(str(exc))) from None
        await run_in_threadpool(add_silence, ctx.writer, silence)
        await audited(
            request,
            principal,
            "silence.add",
            f"silence:{silence.id}",
            {"matchers": [str(m) for m in silence.matchers], "ends_at": silence.ends_at},
            undo=lambda: expire_silence(ctx.writer, silence.id, ctx.clock()),
        )
        return silence_json(silence, now)

    @router.delete(
        "/silences/{silence_id}",
        summary="Expire a silence now.",
        responses={**_AUTH_ERRORS, 404: {"description": "no such silence"}},
    )
    async def silence_expire(
        request: Request,
        silence_id: str,
        principal: Annotated[Principal, Depends(op_write)],
    ) -> dict[str, Any]:
        """The silence, ended (as :func:`silence_json`)."""
        now = ctx.clock()
        try:
            silence = await run_in_threadpool(expire_silence, ctx.writer, silence_id[:64], now)
        except NotFoundError as exc:
            raise request_error(exc) from None
        await audited(request, principal, "silence.expire", f"silence:{silence.id}")
        return silence_json(silence, now)

    # ------------------------------------------------------------------ interventions

    @router.get(
        "/interventions",
        summary="The supervisor's interventions, oldest first (state= filters).",
        responses={**_AUTH_ERRORS, **_BAD},
    )
    async def interventions(
        _: Annotated[Principal, Depends(op_read)],
        state: Annotated[
            str | None,
            Query(max_length=32, description="pending_approval, deferred, executed..."),
        ] = None,
    ) -> dict[str, Any]:
        """``{"total", "entries": [intervention...]}`` (``echoctl interventions list --json``)."""
        try:
            found = await run_in_threadpool(list_interventions, ctx.reader, state)
        except RequestError as exc:
            raise request_error(exc) from None
        return {"total": len(found), "entries": [iv.to_json() for iv in found]}

    @router.get(
        "/interventions/{iv_id}",
        summary="One intervention: dry run, reason, decisions, effect, log entries.",
        responses={**_AUTH_ERRORS, 404: {"description": "no such intervention"}},
    )
    async def intervention(iv_id: str, _: Annotated[Principal, Depends(op_read)]) -> dict[str, Any]:
        """The intervention (as an entry of ``GET /v1/interventions``)."""
        try:
            iv = await run_in_threadpool(get_intervention, ctx.reader, iv_id[:128])
        except NotFoundError as exc:
            raise request_error(exc) from None
        return iv.to_json()

    def manager() -> InterventionManager:
        found = ctx.service.interventions if ctx.service is not None else None
        if found is None:
            raise _unavailable("decide with `echoctl interventions approve|reject|rollback`")
        return found

    async def decide(
        request: Request, principal: Principal, step: str, iv_id: str, reason: str = ""
    ) -> dict[str, Any]:
        managing = manager()
        by = _actor(principal)
        try:
            if step == "approve":
                iv: Intervention = await managing.approve(iv_id[:128], by)
            elif step == "reject":
                iv = await managing.reject(iv_id[:128], by, reason)
            else:
                iv = await managing.rollback(iv_id[:128], by, reason)
        except (NotFoundError, RequestError) as exc:
            raise request_error(exc) from None
        except InterventionStateError as exc:
            raise _conflict(str(exc)) from None
        await audited(
            request,
            principal,
            f"intervention.{step}",
            f"intervention:{iv.id}",
            {"kind": iv.kind, "state": iv.state},
        )
        return iv.to_json()

    _decisions: dict[int | str, dict[str, Any]] = {
        **_AUTH_ERRORS,
        **_BAD,
        **_NO_SERVICE,
        404: {"description": "no such intervention"},
        409: {"description": "its state does not allow this step"},
    }

    @router.post(
        "/interventions/{iv_id}/approve",
        summary="Approve a high-risk (or deferred) intervention and execute it.",
        responses=_decisions,
    )
    async def intervention_approve(
        request: Request, iv_id: str, principal: Annotated[Principal, Depends(op_approve)]
    ) -> dict[str, Any]:
        """The intervention: ``executed`` (or ``failed``, or ``approved`` for the next cycle)."""
        return await decide(request, principal, "approve", iv_id)

    @router.post(
        "/interventions/{iv_id}/reject",
        summary="Reject an intervention that has not run.",
        responses=_decisions,
    )
    async def intervention_reject(
        request: Request,
        iv_id: str,
        body: Annotated[Reason, Body()],
        principal: Annotated[Principal, Depends(op_approve)],
    ) -> dict[str, Any]:
        """The intervention, ``rejected``."""
        return await decide(request, principal, "reject", iv_id, body.reason)

    @router.post(
        "/interventions/{iv_id}/rollback",
        summary="Roll back an executed intervention (releases a quarantined feed).",
        responses=_decisions,
    )
    async def intervention_rollback(
        request: Request,
        iv_id: str,
        body: Annotated[Reason, Body()],
        principal: Annotated[Principal, Depends(op_approve)],
    ) -> dict[str, Any]:
        """The intervention, ``rolled_back`` (or ``rollback_requested``)."""
        return await decide(request, principal, "rollback", iv_id, body.reason)

    # ------------------------------------------------------------------ audit

    @router.get(
        "/audit",
        summary="The audit trail: the audit entries of the log, oldest first.",
        responses={**_AUTH_ERRORS, **_BAD},
    )
    async def audit(
        _: Annotated[Principal, Depends(audit_read)],
        since: Annotated[
            str | None, Query(max_length=64, description="RFC 3339: logged at or after it.")
        ] = None,
        actor: Annotated[
            str | None, Query(max_length=200, description="key:ci, user:alice, or a name.")
        ] = None,
        cursor: Annotated[
            str | None, Query(max_length=512, description="The `next` of the previous page.")
        ] = None,
        limit: Annotated[int, Query(description="Entries per page, 1 to 1000.")] = 100,
    ) -> dict[str, Any]:
        """``{"total", "entries": [entry...], "next": cursor or null}``."""
        query = fingerprint({"listing": "audit", "since": since, "actor": actor})
        try:
            check_limit(limit)
            after = -1 if cursor is None else decode_cursor(cursor, query)
            found: list[AuditEntry] = await run_in_threadpool(
                lambda: list_audit(ctx.reader, since=since, actor=actor)
            )
        except RequestError as exc:
            raise request_error(exc) from None
        rest = [e for e in found if e.index > after]
        page = rest[:limit]
        more = len(rest) > limit
        return {
            "total": len(found),
            "entries": [e.to_json() for e in page],
            "next": encode_cursor(page[-1].index, query) if more and page else None,
        }

    # ------------------------------------------------------------------ users

    @router.get("/users", summary="Every user (never a hash).", responses={**_AUTH_ERRORS})
    async def users(_: Annotated[Principal, Depends(users_read)]) -> dict[str, Any]:
        """``{"total", "entries": [{"name", "role", "group", "created_at", "updated_at"}]}``."""
        found = await run_in_threadpool(list_users, ctx.reader)
        return {"total": len(found), "entries": [u.to_json() for u in found]}

    @router.post(
        "/users",
        status_code=201,
        summary="Add a user (the password is hashed with argon2id, never echoed).",
        responses={**_AUTH_ERRORS, **_BAD},
    )
    async def user_add(
        request: Request,
        response: Response,
        body: Annotated[NewUser, Body()],
        principal: Annotated[Principal, Depends(users_admin)],
    ) -> dict[str, Any]:
        """201, the user (``name``, ``role``, ``group``, times); audited ``user.add``."""
        response.headers["Cache-Control"] = "no-store"
        try:
            role = parse_role(body.role)
        except ValueError as exc:
            raise request_error(RequestError(str(exc))) from None
        try:
            made: UserRecord = await run_in_threadpool(
                lambda: add_user(
                    ctx.writer,
                    body.name,
                    role,
                    body.password.get_secret_value(),
                    now=ctx.clock(),
                    actor=_actor(principal),
                    group=body.group,
                    groups=ctx.config.groups,
                    request_id=request_id(request),
                )
            )
        except RequestError as exc:
            raise request_error(exc) from None
        return made.to_json()

    @router.patch(
        "/users/{name}",
        summary="Change a user's role, feed group or password.",
        responses={**_AUTH_ERRORS, **_BAD, 404: {"description": "no such user"}},
    )
    async def user_change(
        request: Request,
        response: Response,
        name: str,
        body: Annotated[UserPatch, Body()],
        principal: Annotated[Principal, Depends(users_admin)],
    ) -> dict[str, Any]:
        """The user as it is now; each change audited (``user.role``, ``user.passwd``)."""
        response.headers["Cache-Control"] = "no-store"
        now = ctx.clock()
        rid = request_id(request)
        current = {u.name: u for u in await run_in_threadpool(list_users, ctx.reader)}
        user = current.get(name)
        if user is None:
            raise request_error(NotFoundError(f"no user named {name[:64]!r}"))
        try:
            role = user.role if body.role is None else parse_role(body.role)
        except ValueError as exc:
            raise request_error(RequestError(str(exc))) from None
        group = user.group if body.group is None else (body.group or None)
        try:
            check_group(group, ctx.config.groups)  # before any change: all or nothing
            if body.password is not None:
                secret = body.password.get_secret_value()
                await run_in_threadpool(
                    lambda: set_password(
                        ctx.writer, name, secret, now=now, actor=_actor(principal), request_id=rid
                    )
                )
            user = await run_in_threadpool(
                lambda: set_role(
                    ctx.writer,
                    name,
                    role,
                    now=now,
                    actor=_actor(principal),
                    group=group,
                    groups=ctx.config.groups,
                    request_id=rid,
                )
            )
        except (NotFoundError, RequestError) as exc:
            raise request_error(exc) from None
        return user.to_json()

    @router.delete(
        "/users/{name}",
        summary="Remove a user: their access tokens stop working at once.",
        responses={**_AUTH_ERRORS, 404: {"description": "no such user"}},
    )
    async def user_remove(
        request: Request, name: str, principal: Annotated[Principal, Depends(users_admin)]
    ) -> dict[str, Any]:
        """``{"removed": name}``; audited ``user.remove``."""
        try:
            await run_in_threadpool(
                lambda: remove_user(
                    ctx.writer, name, actor=_actor(principal), request_id=request_id(request)
                )
            )
        except NotFoundError as exc:
            raise request_error(exc) from None
        return {"removed": name}

    return router
