"""Per-client rate limiting of the HTTP API: GCRA buckets, and who a client is.

**Algorithm.** The Generic Cell Rate Algorithm (GCRA; ATM Forum Traffic
Management 4.0 and ITU-T I.371 Annex A, the "virtual scheduling" form), as
Redis' redis-cell and Stripe describe it for HTTP: a bucket keeps one number,
its *theoretical arrival time* (TAT). With ``limit`` requests per ``period``
seconds, each request advances the TAT by the emission interval ``T =
period / limit``; a request is allowed when the advanced TAT is at most
``period`` ahead of now. So ``limit`` requests may come at once (a burst of
a whole period's allowance), and the next one is allowed ``T`` later: the
1,001st request within a minute at the default 1,000 a minute is refused,
with ``Retry-After`` (RFC 9110 §10.2.3, in delay-seconds, rounded up, at least
1). Arithmetic is in integers (nanoseconds times ``limit``), so the figure is
exact: no float rounding lets a 1,001st request through or refuses a 1,000th.

**Bounded memory.** A bucket whose TAT is in the past is exactly a fresh
bucket, so it is dropped: the table holds only clients seen within the last
period. It is swept when it doubles in size (amortized O(1) per request),
and it never holds more than ``max_buckets`` entries: beyond that the
buckets nearest to full allowance are dropped first (an attacker with that
many addresses would only make others' buckets fresh, never refuse them).

**Who a client is** (:class:`ClientKeys`). Authentication happens later, in
the route's dependencies (:class:`~echo_archive.api.deps.Auth`), so the
limiter cannot know a request's principal beforehand. It keys a request:

* by its **principal** (``key:<key id>``, ``user:<name>``) when its
  credential (``Authorization: Bearer``, ``X-API-Key``, the session cookie)
  is one that authenticated before: the limiter learns SHA-256(credential)
  -> principal after a request whose principal the dependencies set
  (``scope["echo.principal"]``), at most :data:`LEARNED` credentials, least
  recently used forgotten first, and forgets it at a 401;
* by ``unproven:<address>`` for a credential not (yet) known good: the first
  request of a new key or token, and every request with an invented,
  revoked or forged one;
* by ``anon:<address>`` without a credential.

Abuse resistance: a client inventing keys or tokens gets no fresh buckets:
every unknown credential from one address shares that address's
``unproven`` bucket, and only a credential that really authenticated (the
full secret, whose hash is the lookup key, not its public key id) gets a
principal's bucket; knowing another client's key id (it is public, in
listings and audit entries) does not let anyone drain that client's bucket.
A user's tokens (and the session cookie holding one) share the user's
bucket. An address is the TCP peer (or the client named by
``X-Forwarded-For`` only when ``[api] forwarded_allow_ips`` trusts the
proxy: uvicorn's proxy-headers rule); IPv6 addresses are keyed by their /64
(one host usually holds a whole /64, RFC 6177), so a host cannot rotate
through its own addresses for fresh buckets.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from starlette.types import Scope

__all__ = [
    "LEARNED",
    "ClientKeys",
    "Decision",
    "RateLimiter",
    "client_address",
    "credential_of",
]

LEARNED: Final = 10_000
"""Credentials remembered as proven (their hash -> principal bucket) at most."""

_NS: Final = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Decision:
    """What :meth:`RateLimiter.take` decided for one request.

    Attributes:
        allowed: the request may proceed.
        limit: the bucket's requests per period.
        period: the period, seconds.
        remaining: requests the bucket would still allow now (0 when refused).
        reset: whole seconds until the bucket is full again (rounded up).
        retry_after: when refused, whole seconds to wait (>= 1; RFC 9110
            §10.2.3 delay-seconds); 0 when allowed.
    """

    allowed: bool
    limit: int
    period: int
    remaining: int
    reset: int
    retry_after: int

    def headers(self) -> list[tuple[str, str]]:
        """The response fields: ``RateLimit-Policy`` and ``RateLimit``, plus ``Retry-After``.

        Per the IETF draft "RateLimit header fields for HTTP"
        (draft-ietf-httpapi-ratelimit-headers-09, the ``RateLimit-Policy``
        and ``RateLimit`` fields, Structured Field lists of RFC 9651):
        ``RateLimit-Policy: "default";q=<limit>;w=<period>`` and
        ``RateLimit: "default";r=<remaining>;t=<reset>``. ``Retry-After``
        (RFC 9110 §10.2.3) only on a refusal (RFC 6585 §4).
        """
        out = [
            ("RateLimit-Policy", f'"default";q={self.limit};w={self.period}'),
            ("RateLimit", f'"default";r={self.remaining};t={self.reset}'),
        ]
        if not self.allowed:
            out.append(("Retry-After", str(self.retry_after)))
        return out


class RateLimiter:
    """GCRA buckets, by name (see the module).

    Args:
        limit: requests per ``period`` (>= 1).
        period: seconds (>= 1; 60 for ``[api] rate_limit``, requests a minute).
        clock: seconds of a monotonic clock (``time.monotonic``; tests inject one).
        max_buckets: buckets held at most (>= 1).

    Raises:
        ValueError: ``limit``, ``period`` or ``max_buckets`` is below 1.
    """

    def __init__(
        self,
        limit: int,
        period: int = 60,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = 100_000,
    ) -> None:
        if limit < 1 or period < 1 or max_buckets < 1:
            raise ValueError(
                f"rate limit {limit}/{period} s with {max_buckets} buckets: each must be >= 1"
            )
        self.limit = limit
        self.period = period
        self.clock = clock
        self.max_buckets = max_buckets
        self._interval = period * _NS  # T in units of ns x limit
        self._window = period * _NS * limit  # the period, same units
        self._tat: dict[str, int] = {}
        self._sweep_at = 1024

    def __len__(self) -> int:
        """Buckets held now."""
        return len(self._tat)

    def _now(self) -> int:
        return round(self.clock() * _NS) * self.limit

    def take(self, bucket: str) -> Decision:
        """Count one request against ``bucket``; the decision (a refusal is not counted).

        Args:
            bucket: the client's bucket name (:meth:`ClientKeys.bucket`).

        Returns:
            The :class:`Decision`.
        """
        now = self._now()
        tat = max(self._tat.get(bucket, now), now)
        new_tat = tat + self._interval
        unit = _NS * self.limit
        if new_tat - now > self._window:
            wait = new_tat - self._window - now
            return Decision(
                False,
                self.limit,
                self.period,
                0,
                math.ceil((tat - now) / unit),
                max(1, math.ceil(wait / unit)),
            )
        self._tat[bucket] = new_tat
        if len(self._tat) > self._sweep_at:
            self._sweep(now)
        remaining = (self._window - (new_tat - now)) // self._interval
        return Decision(
            True, self.limit, self.period, remaining, math.ceil((new_tat - now) / unit), 0
        )

    def _sweep(self, now: int) -> None:
        """Drop buckets back at full allowance; then, past ``max_buckets``, the fullest."""
        self._tat = {k: v for k, v in self._tat.items() if v > now}
        if len(self._tat) > self.max_buckets:
            keep = sorted(self._tat.items(), key=lambda kv: kv[1])[-self.max_buckets :]
            self._tat = dict(keep)
        self._sweep_at = max(1024, 2 * len(self._tat))


def client_address(scope: Scope) -> str:
    """The client's address as a bucket key part: IPv4 as is, IPv6 as its /64, else ``unknown``.

    ``scope["client"]`` is the TCP peer, or what uvicorn's proxy-headers
    middleware set from ``X-Forwarded-For`` for a trusted proxy only.
    """
    client = scope.get("client")
    host = client[0] if client else None
    if not isinstance(host, str):
        return "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]  # a unix socket peer or a test's name: kept, bounded
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def credential_of(scope: Scope, cookie_name: str) -> str | None:
    """The credential a request carries, unverified: Bearer value, ``X-API-Key``, or the cookie.

    The same precedence as :class:`~echo_archive.api.deps.Auth` (a header
    credential first, the session cookie only without one). Only its hash
    is kept (:class:`ClientKeys`).
    """
    cookie = None
    for name, raw in scope.get("headers", ()):
        value = bytes(raw)
        if name == b"authorization":
            scheme, _, rest = value.partition(b" ")
            return (rest.strip() if scheme.lower() == b"bearer" else value).decode("latin-1")
        if name == b"x-api-key":
            return value.decode("latin-1")
        if name == b"cookie" and cookie is None:
            for part in value.split(b";"):
                key, eq, val = part.strip().partition(b"=")
                if eq and key.decode("latin-1") == cookie_name:
                    cookie = val.decode("latin-1")
                    break
    return cookie


class ClientKeys:
    """Which bucket a request is counted in, learning proven credentials (see the module).

    Args:
        cookie_name: the session cookie's name (:data:`echo_archive.api.session.SESSION_COOKIE`).
        learned: proven credentials remembered at most.
    """

    def __init__(self, cookie_name: str, learned: int = LEARNED) -> None:
        self.cookie_name = cookie_name
        self.learned = learned
        self._proven: OrderedDict[bytes, str] = OrderedDict()

    def bucket(self, scope: Scope) -> tuple[str, bytes | None]:
        """``(bucket, credential hash or None)`` of a request (an HTTP scope)."""
        credential = credential_of(scope, self.cookie_name)
        if credential is None:
            return f"anon:{client_address(scope)}", None
        digest = hashlib.sha256(credential.encode("latin-1", "replace")).digest()
        principal = self._proven.get(digest)
        if principal is None:
            return f"unproven:{client_address(scope)}", digest
        self._proven.move_to_end(digest)
        return principal, digest

    def settle(self, digest: bytes | None, principal: object, status: int) -> None:
        """After a response: learn ``digest`` -> its principal's bucket, or forget it at a 401.

        Args:
            digest: the credential's hash (:meth:`bucket`), or None.
            principal: ``scope["echo.principal"]`` (a
                :class:`~echo_archive.api.roles.Principal`) or None.
            status: the response's status code.
        """
        if digest is None:
            return
        if status == 401:
            self._proven.pop(digest, None)
            return
        kind = getattr(principal, "kind", None)
        if kind == "key":
            name = f"key:{getattr(principal, 'key_id', None) or getattr(principal, 'name', '')}"
        elif kind == "user":
            name = f"user:{getattr(principal, 'name', '')}"
        else:
            return
        self._proven[digest] = name
        self._proven.move_to_end(digest)
        while len(self._proven) > self.learned:
            self._proven.popitem(last=False)
