"""The API's first routes: who am I, API keys, access tokens (mounted by the service).

:func:`build_router` gives a :class:`fastapi.APIRouter` over an
:class:`~echo_archive.api.deps.ApiContext`:

* ``GET /v1/whoami``: the principal (``name``, ``kind``, ``role``, ``group``,
  ``feeds``, ``key_id``, ``elevated_until``) and its ``permissions``
  (``kind:action``, sorted). Any valid credential.
* ``GET /v1/keys``: ``{"total", "entries"}`` (Miniflux's page shape), each
  key as ``echoctl keys list --json`` prints it; never a key or a hash.
  Needs ``keys:read``.
* ``POST /v1/keys``: JSON ``{"name", "role", "group"?, "expires"?}``
  (``expires``: seconds from now, a duration such as ``30d``, or an RFC 3339
  date-time) -> 201 ``{"key", "record"}``: the key, shown this once
  (``Cache-Control: no-store``, RFC 6749 §5.1). Needs ``keys:admin``.
* ``DELETE /v1/keys/{name_or_id}``: revoke -> the record. Needs ``keys:admin``.
* ``POST /v1/breakglass``: JSON ``{"reason", "minutes"}`` -> 201, the
  elevation of the caller (an unscoped admin; else 403, audited as refused).
* ``POST /v1/token``: the OAuth 2.0 password grant (RFC 6749 §4.3;
  ``application/x-www-form-urlencoded`` ``grant_type=password``,
  ``username``, ``password``) -> ``{"access_token", "token_type": "bearer",
  "expires_in"}`` (§5.1), or 400 ``{"error": "invalid_grant"}`` (§5.2).
  Every :data:`FAILURE_BURST`-th failed login of a name within
  :data:`FAILURE_WINDOW` seconds is an ``audit`` entry
  (``login.failure_burst``; never the password tried).
* ``POST /v1/session``: the dashboard's login (form ``username``,
  ``password``) -> ``{"user", "csrf_token", "expires_in"}`` and the session
  cookies (:mod:`echo_archive.api.session`: the access token ``HttpOnly;
  SameSite=Strict; Path=/``, ``Secure`` over TLS, and the CSRF token); 401
  for a wrong name or password (counted and audited as for ``/v1/token``),
  403 for a cross-site login (``Sec-Fetch-Site``/``Origin``).
* ``DELETE /v1/session``: logout, 204, both cookies cleared (any valid
  credential; by cookie with its ``X-CSRF-Token``).

Every key change is an ``audit`` entry with the request's id.
:func:`auth_configured` tells the service whether any credential exists
(so it may lift its loopback-only refusal).
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' ``Annotated``
# dependencies at runtime, and they name ``auth``, local to build_router.

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from echo_archive.api.audit import audit_meta, record
from echo_archive.api.breakglass import start as start_breakglass
from echo_archive.api.deps import ApiContext, Auth, denied, request_error, request_id
from echo_archive.api.keys import create_key, list_keys, revoke_key
from echo_archive.api.roles import Principal, parse_role
from echo_archive.api.session import (
    clear_cookies,
    csrf_token,
    login_origin_ok,
    session_cookies,
)
from echo_archive.api.tables import on_writer, present
from echo_archive.api.users import authenticate_password
from echo_archive.control.silences import parse_duration
from echo_archive.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDenied,
    RequestError,
)
from echo_archive.services.paging import parse_instant
from echo_archive.vault.vault import Vault

__all__ = [
    "FAILURE_BURST",
    "FAILURE_WINDOW",
    "BreakGlass",
    "FailureCounter",
    "NewKey",
    "auth_configured",
    "build_router",
    "parse_expiry",
]

MAX_FORM = 8192
"""Bytes a token request's form body may hold at most."""


FAILURE_BURST = 5
"""Failed logins of one user name within :data:`FAILURE_WINDOW` that make a burst."""

FAILURE_WINDOW = 60.0
"""Seconds over which failed logins are counted."""


class FailureCounter:
    """Failed logins per user name over a sliding window: one audit entry per burst, not per try.

    Issue 11 audits "login failure bursts" (not each failure: a guessing run
    must not be able to fill the log). At the :data:`FAILURE_BURST`-th
    failure within :data:`FAILURE_WINDOW` seconds, and at every further
    multiple of it, :meth:`failed` returns the count (the caller audits it).
    At most 10,000 names are tracked (the oldest forgotten first).
    """

    def __init__(self) -> None:
        self._seen: dict[str, list[float]] = {}

    def failed(self, name: str, now: float) -> int | None:
        """Count a failure of ``name`` at ``now``; the count when it makes a burst, else None."""
        times = [t for t in self._seen.pop(name, []) if now - t < FAILURE_WINDOW]
        times.append(now)
        self._seen[name] = times
        while len(self._seen) > 10_000:
            del self._seen[next(iter(self._seen))]
        return len(times) if len(times) % FAILURE_BURST == 0 else None


class BreakGlass(BaseModel):
    """The body of ``POST /v1/breakglass``."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(max_length=1000, description="Why (10 characters at least).")
    minutes: int = Field(default=30, description="How long, 1 to 240 minutes.")


class NewKey(BaseModel):
    """The body of ``POST /v1/keys``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64, description="A unique name (letters, digits, . _ -).")
    role: str = Field(max_length=16, description="viewer, analyst, editor or admin.")
    group: str | None = Field(default=None, max_length=64, description="A feed group, or null.")
    expires: str | None = Field(
        default=None,
        max_length=64,
        description="Seconds from now, a duration (30d), or an RFC 3339 date-time; null: never.",
    )


def parse_expiry(text: str, now: float) -> float:
    """POSIX seconds of ``--expires``: a duration from ``now`` (``90d``, seconds) or RFC 3339.

    Raises:
        RequestError: neither (the message gives examples).
    """
    try:
        return now + parse_duration(text)
    except ValueError:
        pass
    canonical = parse_instant(text, "expires")
    return datetime.fromisoformat(canonical.replace("Z", "+00:00")).timestamp()


def auth_configured(vault: Vault) -> bool:
    """True when the vault holds any API key not revoked, or any user (authentication exists).

    The service may then bind a non-loopback address (issue 11, "Public by choice only").
    """
    if not present(vault.catalog):
        return False
    key = vault.catalog.query_one("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1")
    user = vault.catalog.query_one("SELECT 1 FROM api_users LIMIT 1")
    return key is not None or user is not None


def build_router(ctx: ApiContext) -> APIRouter:
    """The router of ``/v1/whoami``, ``/keys``, ``/breakglass``, ``/token`` and ``/session``."""
    auth = Auth(ctx)
    failures = FailureCounter()
    router = APIRouter(prefix="/v1", tags=["auth"])
    actor_of = _actor

    @router.get("/whoami", summary="The principal of the credential sent, and its permissions.")
    async def whoami(
        principal: Annotated[Principal, Depends(auth.principal)],
    ) -> dict[str, Any]:
        """The principal and its sorted permissions."""
        doc = principal.to_json()
        doc["permissions"] = sorted(str(p) for p in principal.permissions(ctx.clock()))
        return doc

    @router.get("/keys", summary="Every API key (never a key or a hash).")
    async def keys_list(
        _: Annotated[Principal, Depends(auth.require("keys:read"))],
    ) -> dict[str, Any]:
        """``{"total", "entries"}``."""
        now = ctx.clock()
        found = [k.to_json(now) for k in list_keys(ctx.reader)]
        return {"total": len(found), "entries": found}

    @router.post("/keys", status_code=201, summary="Create an API key (shown this once).")
    async def keys_create(
        request: Request,
        response: Response,
        body: Annotated[NewKey, Body()],
        principal: Annotated[Principal, Depends(auth.require("keys:admin"))],
    ) -> dict[str, Any]:
        """``{"key", "record"}``."""
        now = ctx.clock()
        try:
            role = parse_role(body.role)
        except ValueError as exc:
            raise request_error(RequestError(str(exc))) from None
        try:
            expires = None if body.expires is None else parse_expiry(body.expires, now)
            key, rec = await run_in_threadpool(
                create_key,
                ctx.writer,
                body.name,
                role,
                now=now,
                group=body.group,
                groups=ctx.config.groups,
                expires_at=expires,
                actor=actor_of(principal),
                request_id=request_id(request),
            )
        except RequestError as exc:
            raise request_error(exc) from None
        response.headers["Cache-Control"] = "no-store"
        return {"key": key, "record": rec.to_json(now)}

    @router.delete("/keys/{name_or_id}", summary="Revoke an API key (by name or id).")
    async def keys_revoke(
        request: Request,
        name_or_id: str,
        principal: Annotated[Principal, Depends(auth.require("keys:admin"))],
    ) -> dict[str, Any]:
        """The key's record, revoked."""
        now = ctx.clock()
        try:
            rec = await run_in_threadpool(
                revoke_key,
                ctx.writer,
                name_or_id,
                now=now,
                actor=actor_of(principal),
                request_id=request_id(request),
            )
        except NotFoundError as exc:
            raise request_error(exc) from None
        return rec.to_json(now)

    @router.post("/breakglass", status_code=201, summary="Take a break-glass elevation.")
    async def breakglass_start(
        request: Request,
        body: Annotated[BreakGlass, Body()],
        principal: Annotated[Principal, Depends(auth.principal)],
    ) -> dict[str, Any]:
        """The elevation (``id``, ``actor``, ``reason``, ``started_at``, ``ends_at``, ``entry``)."""
        try:
            found = await run_in_threadpool(
                start_breakglass,
                ctx.writer,
                principal,
                reason=body.reason,
                minutes=body.minutes,
                now=ctx.clock(),
                request_id=request_id(request),
            )
        except PermissionDenied as exc:
            raise denied(exc) from None
        except RequestError as exc:
            raise request_error(exc) from None
        return found.to_json()

    async def login(request: Request) -> Principal | tuple[str, str]:
        """The user of a password form (RFC 6749 §4.3's fields), or ``(error, description)``.

        A failed login is counted; every :data:`FAILURE_BURST`-th of a name
        within :data:`FAILURE_WINDOW` is an audit entry (``login.failure_burst``).
        """
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_FORM:
                return "invalid_request", f"form larger than {MAX_FORM} bytes"
        try:
            form = parse_qs(raw.decode("utf-8"), strict_parsing=False, max_num_fields=8)
        except (UnicodeDecodeError, ValueError):
            return "invalid_request", "the form is not UTF-8 urlencoded"
        if request.url.path.endswith("/token") and form.get("grant_type") != ["password"]:
            return "unsupported_grant_type", "grant_type must be password"
        names, passwords = form.get("username", []), form.get("password", [])
        if len(names) != 1 or len(passwords) != 1:
            return "invalid_request", "one username and one password are required"
        try:
            return await run_in_threadpool(
                authenticate_password,
                ctx.reader,
                names[0],
                passwords[0],
                groups=ctx.config.groups,
                writer=ctx.writer,
            )
        except AuthenticationError as exc:
            burst = failures.failed(names[0][:64], ctx.clock())
            if burst is not None:
                meta = audit_meta(
                    "anonymous",
                    "login.failure_burst",
                    target=f"user:{names[0][:64]}",
                    outcome="refused",
                    reason=f"{burst} failed logins within {FAILURE_WINDOW:.0f} s",
                    request_id=request_id(request),
                    details={"failures": burst},
                )
                await run_in_threadpool(on_writer, ctx.writer, lambda v: record(v, meta))
            return "invalid_grant", str(exc)

    @router.post("/token", summary="OAuth 2.0 password grant: a short-lived access token.")
    async def token(request: Request) -> JSONResponse:
        """RFC 6749 §4.3 / §5.1; failures are 400 ``invalid_grant`` (§5.2) and audited."""
        principal = await login(request)
        if isinstance(principal, tuple):
            return _grant_error(*principal)
        ttl = ctx.config.token_ttl
        return JSONResponse(
            {
                "access_token": ctx.tokens.issue_token(principal, ttl),
                "token_type": "bearer",
                "expires_in": ttl,
            },
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    @router.post(
        "/session",
        summary="Log in with a form (username, password): the session cookie and a CSRF token.",
        responses={
            401: {"description": "wrong name or password"},
            403: {"description": "cross-site"},
        },
    )
    async def session_start(request: Request) -> JSONResponse:
        """``{"user", "csrf_token", "expires_in"}`` and the session cookies.

        Over TLS (``request.url.scheme == "https"``) the cookies are ``Secure``.
        """
        if not login_origin_ok(request, ctx.config.cors_origins):
            return JSONResponse(
                {"detail": {"code": "forbidden", "message": "cross-site login refused"}},
                status_code=403,
            )
        principal = await login(request)
        if isinstance(principal, tuple):
            error, description = principal
            status = 401 if error == "invalid_grant" else 400
            code = "unauthorized" if status == 401 else "invalid_request"
            return JSONResponse(
                {"detail": {"code": code, "message": description}},
                status_code=status,
                headers={"Cache-Control": "no-store"},
            )
        ttl = ctx.config.token_ttl
        jwt = ctx.tokens.issue_token(principal, ttl)
        csrf = csrf_token(ctx.csrf_key, jwt)
        response = JSONResponse(
            {"user": principal.name, "csrf_token": csrf, "expires_in": ttl},
            headers={"Cache-Control": "no-store"},
        )
        for value in session_cookies(jwt, csrf, ttl, secure=request.url.scheme == "https"):
            response.headers.append("Set-Cookie", value)
        return response

    @router.delete("/session", status_code=204, summary="Log out: clear the session cookies.")
    async def session_end(
        request: Request,
        _: Annotated[Principal, Depends(auth.principal)],
    ) -> Response:
        """204; both cookies cleared (the token itself lives until it expires).

        Needs a valid credential: the session cookie (with ``X-CSRF-Token``,
        as any cookie write) or a header one; an expired session's cookies
        expire with it (their ``Max-Age`` is the token's lifetime).
        """
        response = Response(status_code=204, headers={"Cache-Control": "no-store"})
        for value in clear_cookies(secure=request.url.scheme == "https"):
            response.headers.append("Set-Cookie", value)
        return response

    return router


def _actor(principal: Principal) -> str:
    """``key:<name>`` or ``user:<name>``: the actor of an audit entry."""
    return f"{principal.kind}:{principal.name}"


def _grant_error(error: str, description: str) -> JSONResponse:
    """An RFC 6749 §5.2 error response."""
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=400,
        headers={"Cache-Control": "no-store"},
    )
