"""The cookie session of the dashboard: the access token in a cookie, and its CSRF token.

``POST /v1/session`` (:func:`echo_archive.api.router.build_router`) logs a
user in with a form (``username``, ``password``) and sets two cookies
(RFC 6265):

* :data:`SESSION_COOKIE`: the JWT access token (the one ``POST /v1/token``
  gives), ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (a browser
  sends it only on requests from ECHO's own site, RFC 6265bis §5.4.7),
  ``Path=/``, ``Max-Age`` the token's lifetime, and ``Secure`` when the
  request came over TLS (or a trusted proxy said so);
* :data:`CSRF_COOKIE`: the CSRF token (readable by the dashboard's script,
  which sends it back as the :data:`CSRF_HEADER` header), also in the
  response body.

The CSRF token is bound to the session token: ``base64url(HMAC-SHA256(k,
JWT))`` with ``k`` derived from the vault's token secret
(:func:`csrf_key`). This is the OWASP CSRF Prevention Cheat Sheet's
"signed double-submit cookie" (a token tied to the session by an HMAC with
a server-side secret), so a token set by a sibling subdomain or an attacker
(cookie tossing) does not match any session it did not come from. A request
authenticated by the cookie with an unsafe method (RFC 9110 §9.2.1: not GET,
HEAD, OPTIONS, TRACE) must send the header, matching
(:func:`csrf_matches`, constant time), else 403; a request with a header
credential (``Authorization``, ``X-API-Key``) needs none: a browser never
adds those to a cross-site request by itself.

Logging in is itself guarded against login CSRF (OWASP: "Login CSRF"):
``POST /v1/session`` refuses a request whose ``Sec-Fetch-Site`` is
``cross-site`` (Fetch Metadata, W3C) or whose ``Origin`` (RFC 6454 §7) is
neither the request's own nor one of ``[api] cors_origins``
(:func:`login_origin_ok`).

``DELETE /v1/session`` clears both cookies (``Max-Age=0``). The token itself
is stateless and stays valid until it expires (``[api] token_ttl``, 900 s by
default); removing the user (``echoctl users remove``) ends it at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from typing import Final

from starlette.requests import HTTPConnection

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SAFE_METHODS",
    "SESSION_COOKIE",
    "clear_cookies",
    "csrf_key",
    "csrf_matches",
    "csrf_token",
    "login_origin_ok",
    "session_cookies",
    "session_credential",
]

SESSION_COOKIE: Final = "echo_session"
"""The cookie holding the access token (``HttpOnly``)."""

CSRF_COOKIE: Final = "echo_csrf"
"""The cookie holding the CSRF token (script-readable: the dashboard sends it back)."""

CSRF_HEADER: Final = "X-CSRF-Token"
"""The header a cookie-authenticated unsafe request must carry."""

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
"""RFC 9110 §9.2.1's safe methods: no CSRF token needed."""

_MAX_COOKIE: Final = 4096


def csrf_key(token_secret: bytes) -> bytes:
    """The CSRF HMAC key: HMAC-SHA256(token secret, ``"echo csrf v1"``), 32 bytes.

    A key of its own (derived, so no second secret file), never the JWT key
    itself: a CSRF token can never be used as a signature of anything else.
    """
    return hmac.new(token_secret, b"echo csrf v1", hashlib.sha256).digest()


def csrf_token(key: bytes, session_token: str) -> str:
    """The CSRF token of ``session_token``: base64url(HMAC-SHA256(key, token)), 43 characters."""
    mac = hmac.new(key, session_token.encode("ascii", "replace"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def csrf_matches(key: bytes, session_token: str, sent: str | None) -> bool:
    """True when ``sent`` (the :data:`CSRF_HEADER` value) is the session's CSRF token.

    Compared with :func:`hmac.compare_digest` (constant time).
    """
    if sent is None or len(sent) > 128:
        return False
    return hmac.compare_digest(csrf_token(key, session_token).encode(), sent.encode("utf-8"))


def session_credential(conn: HTTPConnection) -> str | None:
    """The session cookie's value when it looks like a JWT (three dot-separated parts), else None.

    Checked no further here: :class:`~echo_archive.api.deps.Auth` verifies it
    as any access token. An API key in the cookie is not accepted.
    """
    value = conn.cookies.get(SESSION_COOKIE)
    if not value or len(value) > _MAX_COOKIE or value.count(".") != 2:
        return None
    if not all(c.isascii() and (c.isalnum() or c in "-_.") for c in value):
        return None
    return value


def _cookie(name: str, value: str, max_age: int, *, http_only: bool, secure: bool) -> str:
    """A ``Set-Cookie`` value (RFC 6265 §4.1): ``Path=/``, ``SameSite=Strict``."""
    parts = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", "SameSite=Strict"]
    if http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def session_cookies(token: str, csrf: str, max_age: int, *, secure: bool) -> list[str]:
    """The two ``Set-Cookie`` values of a login: the session (``HttpOnly``) and the CSRF token."""
    return [
        _cookie(SESSION_COOKIE, token, max_age, http_only=True, secure=secure),
        _cookie(CSRF_COOKIE, csrf, max_age, http_only=False, secure=secure),
    ]


def clear_cookies(*, secure: bool) -> list[str]:
    """The ``Set-Cookie`` values of a logout: both emptied, ``Max-Age=0`` (RFC 6265 §5.3)."""
    return [
        _cookie(SESSION_COOKIE, "", 0, http_only=True, secure=secure),
        _cookie(CSRF_COOKIE, "", 0, http_only=False, secure=secure),
    ]


def login_origin_ok(conn: HTTPConnection, allowed: Iterable[str]) -> bool:
    """False for a cross-site login: ``Sec-Fetch-Site: cross-site``, or a foreign ``Origin``.

    A request without those headers (a script, curl) passes: login CSRF
    needs a browser, and browsers send ``Origin`` on every cross-origin POST
    (Fetch Standard, "Origin header").
    """
    if conn.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return False
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    own = f"{conn.url.scheme}://{conn.headers.get('host', '')}"
    return origin == own or origin in set(allowed)
