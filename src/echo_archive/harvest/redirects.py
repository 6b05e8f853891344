"""Redirects, followed by hand one hop at a time: where the next hop goes and with what.

The engine (:mod:`echo_archive.harvest.engine`) sends with redirects off and
asks :func:`next_hop` about each answer carrying a ``Location``, so every hop
is a request of its own (its own token of its host's bucket, its own SSRF
check of the resolved address, its own entry in ``Exchange.redirects``).

Rules:

* statuses 301, 302, 303, 307 and 308 with a ``Location`` are followed
  (RFC 9110 §15.4); the target is resolved against the hop's URL
  (RFC 3986 §5) and must be an absolute ``http``/``https`` URL with a host;
* 303 turns any method but ``HEAD`` into ``GET`` (§15.4.4); 301 and 302
  after ``POST`` become ``GET`` (§15.4.2, §15.4.3, as user agents do);
  a ``GET`` sends no body;
* credentials (``Authorization``, ``Cookie``, API-key headers:
  :func:`~echo_archive.redaction.is_secret_header`) are never sent to
  another origin (RFC 6454 §4: scheme, host, port), as httpx and browsers do;
* a target already visited in this attempt is a loop, and more than
  ``max_redirects`` hops is an error; both name the chain, redacted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import httpx

from echo_archive.redaction import is_secret_header, redact_url

__all__ = ["DEFAULT_PORTS", "REDIRECT_STATUSES", "Hop", "RedirectError", "next_hop", "origin"]

REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
"""Statuses followed by hand when they carry a ``Location`` (RFC 9110 §15.4)."""

DEFAULT_PORTS: Final = {"http": 80, "https": 443}
"""The schemes a harvest fetches, with their default ports."""


class RedirectError(Exception):
    """A redirect that is not followed; the message says why and names the chain (redacted)."""


@dataclass(frozen=True, slots=True)
class Hop:
    """One request of a redirect chain.

    Attributes:
        url: where it goes.
        method: its method.
        body: its body (empty for ``GET``).
        headers: its own headers ``(name, value)``, credentials included
            while the chain stays on the first origin.
    """

    url: httpx.URL
    method: str
    body: bytes
    headers: tuple[tuple[str, str], ...]


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """The (scheme, host, port) origin of a URL (RFC 6454 §4), default ports made explicit."""
    return url.scheme, url.host.lower(), url.port or DEFAULT_PORTS.get(url.scheme)


def next_hop(
    current: Hop, status: int, location: str, seen: Sequence[str], hop: int, max_redirects: int
) -> Hop:
    """The request that follows ``current``'s redirect answer (module docstring for the rules).

    Args:
        current: the hop that was answered.
        status: the answer's status (one of :data:`REDIRECT_STATUSES`).
        location: its ``Location`` field value.
        seen: the URLs of the chain so far, the first request's included.
        hop: the answered hop's number, from 0.
        max_redirects: redirects allowed per attempt.

    Returns:
        The next hop.

    Raises:
        RedirectError: the target is invalid or not http(s), a loop, or one
            redirect too many.
    """
    try:
        target = current.url.join(location.strip())
    except httpx.InvalidURL as exc:
        raise RedirectError(f"redirect to an invalid URL {location!r}: {exc}") from None
    if target.scheme not in DEFAULT_PORTS or not target.host:
        raise RedirectError(f"redirect to an unsupported URL {redact_url(str(target))}")
    chain = " → ".join(redact_url(u) for u in [*seen, str(target)])
    if str(target) in seen:
        raise RedirectError(f"redirect loop: {chain}")
    if hop >= max_redirects:
        raise RedirectError(f"too many redirects (more than {max_redirects}): {chain}")
    method, body = current.method, current.body
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, body = "GET", b""
    headers = current.headers
    if origin(target) != origin(current.url):
        headers = tuple((k, v) for k, v in headers if not is_secret_header(k))
    return Hop(target, method, body, headers)
