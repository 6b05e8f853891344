"""The live transport: real HTTP connections, with the SSRF guard on the address connected to.

:class:`LiveTransport` is the engine's network transport (an
``httpx.AsyncBaseTransport``, like the replay transport of
:mod:`echo_archive.harvest.transport`). It runs requests on httpcore
connection pools (httpcore's public ``AsyncConnectionPool`` with a
``network_backend``), and its :class:`GuardedBackend` opens every TCP
connection itself:

1. resolve the host name once (``getaddrinfo``), or take the IP literal;
2. refuse, before a byte is sent, when any resolved address is private
   (:func:`~echo_archive.harvest.addresses.refusal`: loopback, RFC 1918,
   ``fc00::/7``, link-local, CGNAT, multicast, unspecified...), raising
   :class:`~echo_archive.harvest.addresses.AddressRefused`;
3. connect to one of the addresses just checked, never to the name, so a DNS
   answer that changes between the check and the connect (DNS rebinding) is
   not followed. TLS still verifies the certificate for the URL's host name
   and sends it as SNI (httpcore starts TLS with the origin's host).

The engine follows redirects by hand, one request per hop, so every hop goes
through the same check (a kept-alive connection is reused only for the same
origin, which was checked when it was opened).

A request that carries the :data:`~echo_archive.harvest.addresses.ALLOW_PRIVATE_EXTENSION`
extension (its feed sets ``allow_private``) runs on a second pool without the
guard, so private connections never serve a guarded request. Proxies from
the environment are not used: the guard must see the address it connects to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Final

import httpcore
import httpx

from echo_archive.harvest.addresses import (
    ALLOW_PRIVATE_EXTENSION,
    AddressRefused,
    IPAddress,
    refusal,
    refused_message,
)

__all__ = ["GuardedBackend", "LiveTransport", "Resolver", "system_resolver"]

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
"""Resolve ``(host, port)`` to the addresses to try, in order; raise ``OSError`` on failure."""

Policy = Callable[[IPAddress], "str | None"]

# httpcore's exception classes to httpx's, most specific first (both public APIs).
_MAPPED: Final[tuple[tuple[type[Exception], type[httpx.TransportError]], ...]] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Resolve ``host`` with the system resolver (``getaddrinfo``, TCP), addresses in its order.

    Raises:
        socket.gaierror: the name does not resolve.
    """
    loop = asyncio.get_running_loop()
    found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for family, _, _, _, sockaddr in found:
        text = str(sockaddr[0])
        if family == socket.AF_INET6 and len(sockaddr) >= 4 and sockaddr[3]:
            text = f"{text.split('%', 1)[0]}%{sockaddr[3]}"
        address = ipaddress.ip_address(text)
        if address not in addresses:
            addresses.append(address)
    return addresses


def _literal(host: str) -> IPAddress | None:
    """The IP address when ``host`` is an IP literal (``[::1]`` brackets allowed), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that checks, then connects to, the resolved address.

    Args:
        inner: the backend that opens the sockets (None: httpcore's
            ``AnyIOBackend``, as httpx uses under asyncio).
        resolver: how names are resolved (None: :func:`system_resolver`).
        policy: the refusal rule (None: :func:`~echo_archive.harvest.addresses.refusal`).

    Raises (from :meth:`connect_tcp`):
        AddressRefused: an address the host resolved to is refused.
        httpcore.ConnectError: the name does not resolve (the ``socket.gaierror``
            is its cause), or no address accepted the connection.
        httpcore.ConnectTimeout: resolving or connecting took longer than the timeout.
    """

    def __init__(
        self,
        inner: httpcore.AsyncNetworkBackend | None = None,
        *,
        resolver: Resolver | None = None,
        policy: Policy | None = None,
    ) -> None:
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()
        self._resolve = resolver if resolver is not None else system_resolver
        self._policy = policy if policy is not None else refusal

    async def _addresses(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        literal = _literal(host)
        if literal is not None:
            return [literal]
        try:
            async with asyncio.timeout(timeout):
                found = await self._resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        if not found:
            raise httpcore.ConnectError(f"{host} resolved to no address")
        return found

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve ``host``, refuse private addresses, connect to a checked address (seconds)."""
        addresses = await self._addresses(host, port, timeout)
        for address in addresses:  # one refused address refuses the name (no partial trust)
            why = self._policy(address)
            if why is not None:
                raise AddressRefused(refused_message(host, address, why))
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None  # addresses is never empty
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Always refused: a harvest connects over TCP only."""
        raise AddressRefused(f"refused to connect to the unix socket {path!r} (SSRF guard)")

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` on the inner backend (httpcore's retry waits)."""
        await self._inner.sleep(seconds)


def _map(exc: Exception, request: httpx.Request) -> Exception:
    """Map an httpcore exception to httpx's class (message kept); others come back as they are."""
    if isinstance(exc, httpx.TransportError):
        return exc
    for source, target in _MAPPED:
        if isinstance(exc, source):
            return target(str(exc), request=request)
    return exc


class _ResponseStream(httpx.AsyncByteStream):
    """An httpcore response body as an httpx stream, its errors mapped to httpx's."""

    def __init__(self, stream: AsyncIterable[bytes], request: httpx.Request) -> None:
        self._stream = stream
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except Exception as exc:
            mapped = _map(exc, self._request)
            if mapped is exc:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


class LiveTransport(httpx.AsyncBaseTransport):
    """The engine's network transport: HTTP/1.1 over httpcore pools, SSRF-guarded by default.

    Args:
        allow_private: connect to private addresses for every request (the
            vault-wide ``[harvest] allow_private``); otherwise only requests
            carrying :data:`~echo_archive.harvest.addresses.ALLOW_PRIVATE_EXTENSION`.
        trust_env: read CA settings (``SSL_CERT_FILE``...) from the environment.
        max_connections: connections open at once per pool.
        resolver: name resolution for the guarded pool (None: the system's).
        policy: the refusal rule (None: :func:`~echo_archive.harvest.addresses.refusal`).
        ssl_context: TLS settings (None: httpx's default, certificates verified).

    Raises (from :meth:`handle_async_request`):
        AddressRefused: the guard refused the connection.
        httpx.TransportError: httpx's class for any connection or protocol failure.
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        trust_env: bool = False,
        max_connections: int = 100,
        resolver: Resolver | None = None,
        policy: Policy | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        context = (
            ssl_context
            if ssl_context is not None
            else httpx.create_ssl_context(trust_env=trust_env)
        )
        self.allow_private = allow_private
        self._guarded = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=max_connections,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(resolver=resolver, policy=policy),
        )
        self._open = httpcore.AsyncConnectionPool(
            ssl_context=context, max_connections=max_connections, keepalive_expiry=5.0
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on the guarded pool, or the open one when private addresses are allowed.

        Returns:
            The response, its body streamed.
        """
        private = self.allow_private or bool(request.extensions.get(ALLOW_PRIVATE_EXTENSION))
        pool = self._open if private else self._guarded
        sent = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = await pool.handle_async_request(sent)
        except Exception as exc:
            mapped = _map(exc, request)
            if mapped is exc:
                raise
            raise mapped from exc
        body = response.stream
        if not isinstance(body, AsyncIterable):  # pragma: no cover - httpcore's async pool
            raise TypeError("httpcore returned a synchronous body stream")
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(body, request),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        """Close both pools and their connections."""
        await self._guarded.aclose()
        await self._open.aclose()
