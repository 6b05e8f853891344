"""FastAPI dependencies: who a request acts for, and whether it may.

* :meth:`Auth.principal` reads the credential: ``Authorization: Bearer
  <API key or JWT>`` (RFC 6750 §2.1) or ``X-API-Key: <API key>``, and answers
  **401** with ``WWW-Authenticate: Bearer realm="echo"`` when it is missing,
  and with ``error="invalid_token"`` when it is unknown, revoked, expired or
  badly signed (RFC 6750 §3, §3.1). A malformed credential (two of them, a
  scheme other than Bearer, control characters, more than
  :data:`MAX_CREDENTIAL` characters) is **400** ``error="invalid_request"``
  (RFC 6750 §3.1). Messages never hold the credential.
* :meth:`Auth.require` gives a dependency that authenticates and then
  authorizes one permission (:func:`~echo_archive.api.roles.authorize`):
  **403** naming what was missing. Given a route group of ``[api] public``
  (``checkpoint``, ``tiles``, ``proofs``), a request without credentials is
  let through as the anonymous principal.
* Without a header credential, the session cookie
  (:data:`~echo_archive.api.session.SESSION_COOKIE`, set by ``POST
  /v1/session``) is read as an access token; with an unsafe method (POST,
  PUT, PATCH, DELETE: RFC 9110 §9.2.1) such a request must also send
  ``X-CSRF-Token`` matching the session (:mod:`echo_archive.api.session`,
  the OWASP CSRF Prevention Cheat Sheet's signed double-submit cookie), else
  **403** ``{"code": "csrf"}``. A header credential needs no CSRF token.

Nothing is cached: each request reads its key's or user's row, so a
revocation holds at the next request.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import Scope

from echo_archive.api.keys import KEY_PREFIX, KeyStore
from echo_archive.api.roles import ANONYMOUS, Permission, Principal, authorize
from echo_archive.api.session import (
    CSRF_HEADER,
    SAFE_METHODS,
    csrf_key,
    csrf_matches,
    session_credential,
)
from echo_archive.api.tables import present
from echo_archive.api.users import TokenIssuer, token_secret
from echo_archive.config import ApiSection, EchoConfig
from echo_archive.control.interventions import InterventionManager
from echo_archive.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDenied,
    RequestError,
)
from echo_archive.events import EventBus
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter

__all__ = [
    "CLIENT_ERROR",
    "MAX_CREDENTIAL",
    "NO_CONTROLS",
    "REALM",
    "ApiContext",
    "Auth",
    "Requirement",
    "ServiceView",
    "check",
    "denied",
    "elevation_until",
    "request_error",
    "request_id",
    "scope_request_id",
    "validation_error",
]

MAX_CREDENTIAL: Final = 4096
"""Characters a credential header may hold at most (a JWT of ECHO's is about 300)."""

REALM: Final = "echo"
"""The ``realm`` of the ``WWW-Authenticate`` challenge."""

_PRINTABLE = re.compile(r"[\x21-\x7e]+")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@runtime_checkable
class ServiceView(Protocol):
    """What the API's routes may see of the running service (``echoctl serve``).

    The service (a layer above) satisfies it; the API never imports it. Tests
    may pass any object of this shape.

    Attributes:
        path: the vault directory.
        config: the ``echo.toml`` in force (replaced on a reload).
        bus: the service's event bus (the live stream and jobs subscribe).
        loop: the event loop the service runs on, once it runs.
        interventions: the supervisor's intervention manager, or None.
    """

    path: Path
    config: EchoConfig
    bus: EventBus
    loop: asyncio.AbstractEventLoop | None
    interventions: InterventionManager | None

    def status(self) -> dict[str, Any]:
        """The JSON summary of ``GET /status`` (``echoctl status --json``)."""
        ...

    def harvest_now(self, feed: str) -> bool:
        """Queue ``feed`` ahead of the due ones; False when it is not scheduled."""
        ...

    async def reload(self) -> str | None:
        """Re-read ``echo.toml`` (as SIGHUP); the error of a rejected file, or None."""
        ...


@dataclass
class ApiContext:
    """What the API's routes share: the vault to read, its writer, ``[api]``, the clock.

    Attributes:
        reader: the vault, read-only (the service's reader).
        writer: the vault's single writer (every write is a job on it).
        config: ``[api]`` of ``echo.toml``.
        clock: POSIX seconds.
        service: the running service, or None (an API over a bare vault, in tests).
    """

    reader: Vault
    writer: Vault | VaultWriter
    config: ApiSection = field(default_factory=ApiSection)
    clock: Callable[[], float] = time.time
    service: ServiceView | None = None
    _keys: KeyStore | None = field(default=None, init=False, repr=False)
    _tokens: TokenIssuer | None = field(default=None, init=False, repr=False)
    _csrf: bytes | None = field(default=None, init=False, repr=False)

    @property
    def keys(self) -> KeyStore:
        """The API key checker (made on first use)."""
        if self._keys is None:
            self._keys = KeyStore(self.reader, self.writer, self.config.groups, self.clock)
        return self._keys

    @property
    def tokens(self) -> TokenIssuer:
        """The JWT issuer (made on first use; creates the token secret then).

        Raises:
            StorageError: the token secret cannot be read or made.
        """
        if self._tokens is None:
            self._tokens = TokenIssuer(
                self.reader, self.reader.origin, self.config.groups, self.clock
            )
        return self._tokens

    @property
    def csrf_key(self) -> bytes:
        """The session CSRF HMAC key (:func:`~echo_archive.api.session.csrf_key`; made once).

        Raises:
            StorageError: the token secret cannot be read or made.
        """
        if self._csrf is None:
            self._csrf = csrf_key(token_secret(self.reader.path))
        return self._csrf


def _challenge(error: str | None = None, description: str | None = None) -> str:
    """The ``WWW-Authenticate`` value (RFC 6750 §3; no error code when none was sent)."""
    parts = [f'realm="{REALM}"']
    if error is not None:
        parts.append(f'error="{error}"')
    if description is not None:
        parts.append(f'error_description="{description}"')
    return "Bearer " + ", ".join(parts)


def _unauthorized(message: str, error: str | None = "invalid_token") -> HTTPException:
    status = 400 if error == "invalid_request" else 401
    code = "unauthorized" if status == 401 else "invalid_request"
    return HTTPException(
        status_code=status,
        detail={"code": code, "message": message},
        headers={"WWW-Authenticate": _challenge(error, message if error else None)},
    )


def denied(exc: PermissionDenied) -> HTTPException:
    """The 403 of ``exc``: ``{"code": "forbidden", "message", "missing", "feed"}``."""
    return HTTPException(
        status_code=403,
        detail={
            "code": "forbidden",
            "message": str(exc),
            "missing": exc.permission,
            "feed": exc.feed,
        },
    )


def request_error(exc: RequestError | NotFoundError) -> HTTPException:
    """The HTTP error of a library service's error (the API's one error shape).

    404 ``{"code": "not_found", "message"}`` for a
    :class:`~echo_archive.errors.NotFoundError`, else 400 ``{"code": "request", "message"}``.
    """
    status = 404 if isinstance(exc, NotFoundError) else 400
    code = "not_found" if status == 404 else "request"
    return HTTPException(status_code=status, detail={"code": code, "message": str(exc)})


NO_CONTROLS: Final = r"^[^\x00-\x1f\x7f]*$"
"""The ``pattern`` of a text parameter that must hold no control character (C0, DEL)."""

CLIENT_ERROR: Final[dict[int | str, dict[str, Any]]] = {
    "4XX": {"description": 'any client error: `{"detail": {"code", "message"}}` (never 422)'}
}
"""The OpenAPI response of every client error (FastAPI's 422 is a 400 here)."""


def _where(loc: Any) -> str:
    parts = (
        [str(p)[:64] for p in loc if p not in ("body", "query", "path")]
        if isinstance(loc, list | tuple)
        else []
    )
    return ".".join(parts) or "body"


def _message(error: Any) -> str:
    """Pydantic's words for one error (at most 200 characters), never the input."""
    if (error.get("ctx") or {}).get("pattern") == NO_CONTROLS:
        return "must not hold control characters (U+0000 to U+001F, U+007F)"
    return str(error.get("msg", "invalid"))[:200]


def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """The 400 of a request that breaks a route's model: the API's one error shape, no echo.

    FastAPI answers a body, query or path value that breaks its model with 422
    and the offending ``input`` echoed back; the API answers 400 ``{"detail":
    {"code": "request", "message", "errors": [{"loc", "msg", "type"}]}}`` and
    never echoes a value: a password sent in a malformed body does not come
    back (nor go to a log). The message names each field that is wrong and
    why (pydantic's words), at most 20 of them. Installed for every route by
    :func:`echo_archive.api.routes.mount` (an exception handler of
    :class:`fastapi.exceptions.RequestValidationError`).
    """
    found = exc.errors() if isinstance(exc, RequestValidationError) else []
    errors = [
        {
            "loc": [str(p)[:64] for p in e.get("loc", ())],
            "msg": _message(e),
            "type": str(e.get("type", "")),
        }
        for e in found[:20]
    ]
    message = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in errors) or "malformed request"
    return JSONResponse(
        {"detail": {"code": "request", "message": message, "errors": errors}}, status_code=400
    )


def request_id(request: Request) -> str:
    """The request's id: a well-formed ``X-Request-ID`` it sent, else a new random one."""
    return scope_request_id(request.scope)


def scope_request_id(scope: Scope) -> str:
    """:func:`request_id` of an ASGI scope (the edge middleware's; kept in ``scope``).

    A sent ``X-Request-ID`` is kept when it is 1 to 64 of ``A-Z a-z 0-9 . _ -``
    (anything else could forge log lines); else 16 random hex digits.
    """
    found = scope.get("echo.request_id")
    if isinstance(found, str):
        return found
    sent = ""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            sent = bytes(value).decode("latin-1")
            break
    rid = sent if _REQUEST_ID.fullmatch(sent) else secrets.token_hex(8)
    scope["echo.request_id"] = rid
    return rid


def elevation_until(vault: Vault, actor: str, now: float) -> float | None:
    """When ``actor``'s (``key:<name>``, ``user:<name>``) active break-glass ends, or None."""
    if not present(vault.catalog):
        return None
    row = vault.catalog.query_one(
        "SELECT max(ends_at) FROM api_elevations WHERE actor = ? AND started_at <= ? "
        "AND ends_at > ?",
        (actor, now, now),
    )
    return None if row is None or row[0] is None else float(row[0])


class Auth:
    """The API's authentication and authorization dependencies over one :class:`ApiContext`.

    Args:
        ctx: the context.
    """

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def _credential(self, request: Request) -> str | None:
        """The credential the request sent, or None; raises the 400 of a malformed one."""
        headers = request.headers
        authz = headers.getlist("authorization")
        keys = headers.getlist("x-api-key")
        if len(authz) + len(keys) > 1:
            raise _unauthorized(
                "more than one credential (send Authorization: Bearer or X-API-Key, once)",
                "invalid_request",
            )
        if not authz and not keys:
            return None
        raw = authz[0] if authz else keys[0]
        if len(raw) > MAX_CREDENTIAL:
            raise _unauthorized(
                f"credential header longer than {MAX_CREDENTIAL} characters", "invalid_request"
            )
        if authz:
            scheme, _, value = raw.strip().partition(" ")
            if scheme.lower() != "bearer":
                raise _unauthorized(
                    "Authorization: only the Bearer scheme is accepted (RFC 6750)",
                    "invalid_request",
                )
            raw = value.strip()
        if not _PRINTABLE.fullmatch(raw):
            raise _unauthorized(
                "credential holds spaces or control characters, or is empty", "invalid_request"
            )
        return raw

    def _authenticate(self, credential: str) -> Principal:
        """The principal of a well-formed credential (raises AuthenticationError)."""
        ctx = self.ctx
        if credential.startswith(KEY_PREFIX):
            found = ctx.keys.authenticate(credential)
        elif credential.count(".") == 2:
            found = ctx.tokens.verify_token(credential)
        else:
            raise AuthenticationError("neither an API key nor an access token")
        until = elevation_until(ctx.reader, f"{found.kind}:{found.name}", ctx.clock())
        if until is not None:
            found = Principal(**{**found.__dict__, "elevated_until": until})
        return found

    async def principal(self, request: Request) -> Principal:
        """The authenticated principal of ``request`` (FastAPI dependency).

        Raises:
            HTTPException: 401 without a valid credential, 400 for a malformed
                one, 403 for a session-cookie request with an unsafe method and
                no matching ``X-CSRF-Token``.
        """
        credential = self._credential(request)
        by_cookie = False
        if credential is None:
            credential = session_credential(request)
            by_cookie = credential is not None
        if credential is None:
            raise _unauthorized("credentials required", None)
        try:
            found = self._authenticate(credential)
        except AuthenticationError as exc:
            raise _unauthorized(str(exc)) from None
        request.scope["echo.principal"] = found
        if by_cookie and request.method.upper() not in SAFE_METHODS:
            sent = request.headers.getlist(CSRF_HEADER)
            if len(sent) != 1 or not csrf_matches(self.ctx.csrf_key, credential, sent[0]):
                raise HTTPException(
                    status_code=403,
                    detail={
                        "code": "csrf",
                        "message": f"a session-cookie request with {request.method} needs the "
                        f"{CSRF_HEADER} header of the session (POST /v1/session gave it)",
                    },
                )
        return found

    def require(self, permission: Permission | str, *, public: str | None = None) -> Requirement:
        """A dependency: the principal when it holds ``permission``, else 401/403.

        Args:
            permission: the permission (``"keys:admin"``).
            public: the route group (``checkpoint``, ``tiles``, ``proofs``);
                when ``[api] public`` names it, no credential is needed (a
                request that sends one is still checked).

        Returns:
            a :class:`Requirement` (a FastAPI dependency that names its
            permission, so the OpenAPI document and the tests can list
            every route's permission).

        Raises:
            ValueError: ``permission`` is not a known permission.
        """
        perm = Permission.parse(permission) if isinstance(permission, str) else permission
        return Requirement(self, perm, public)


class Requirement:
    """The dependency :meth:`Auth.require` gives: authenticate, then authorize one permission.

    Attributes:
        permission: the permission a route needs.
        public: the ``[api] public`` route group that opens it, or None.
        open_to_all: True when ``[api] public`` names ``public`` (no credential needed).
    """

    def __init__(self, auth: Auth, permission: Permission, public: str | None) -> None:
        self.auth = auth
        self.permission = permission
        self.public = public
        self.open_to_all = public is not None and public in auth.ctx.config.public

    async def __call__(self, request: Request) -> Principal:
        """The principal of ``request`` when it holds the permission (else 401/403)."""
        auth = self.auth
        if self.open_to_all and auth._credential(request) is None:
            return ANONYMOUS
        found = await auth.principal(request)
        check(found, self.permission, now=auth.ctx.clock())
        return found


def check(principal: Principal, permission: Permission, feed: str | None = None, **kw: Any) -> None:
    """:func:`~echo_archive.api.roles.authorize` raising the HTTP 403 (:func:`denied`)."""
    try:
        authorize(principal, permission, feed, **kw)
    except PermissionDenied as exc:
        raise denied(exc) from None
