"""Which network addresses a harvest may connect to: the SSRF guard's address policy.

A feed URL comes from ``echo.toml`` (and, once the API lets other people add
feeds, from clients), and every redirect ``Location`` comes from a server.
Either can point the harvester at the machine it runs on or its network: a
redirect to ``http://169.254.169.254/latest/meta-data/`` would archive a cloud
instance's credentials. So, by default, the live transport
(:mod:`echo_archive.harvest.network`) refuses to connect to an address in one
of these special-purpose blocks (IANA special-purpose address registries,
RFC 6890), checked on the address it resolved and then connects to:

- unspecified: ``0.0.0.0/8`` (RFC 1122 §3.2.1.3), ``::/128`` (RFC 4291 §2.5.2);
- loopback: ``127.0.0.0/8`` (RFC 1122 §3.2.1.3), ``::1/128`` (RFC 4291 §2.5.3);
- private: ``10.0.0.0/8``, ``172.16.0.0/12``, ``192.168.0.0/16`` (RFC 1918),
  unique local ``fc00::/7`` (RFC 4193), site-local ``fec0::/10`` (RFC 3879);
- link-local: ``169.254.0.0/16`` (RFC 3927), ``fe80::/10`` (RFC 4291 §2.5.6);
- shared address space (CGNAT): ``100.64.0.0/10`` (RFC 6598);
- IETF protocol assignments: ``192.0.0.0/24`` (RFC 6890 §2.2.2);
- multicast: ``224.0.0.0/4`` (RFC 5771), ``ff00::/8`` (RFC 4291 §2.7);
- reserved and broadcast: ``240.0.0.0/4``, ``255.255.255.255`` included (RFC 1112 §4).

An IPv6 address that embeds an IPv4 address (IPv4-mapped ``::ffff:0:0/96``,
RFC 4291 §2.5.5.2; the NAT64 well-known prefix ``64:ff9b::/96``, RFC 6052
§2.1; 6to4 ``2002::/16``, RFC 3056 §2) is judged by the IPv4 address it
embeds, so ``::ffff:127.0.0.1`` is loopback.

Terms:

private address
    Any address this policy refuses (the README's word for all the kinds above).
allow_private
    The setting that lifts the refusal: per feed (``allow_private = true`` in
    its ``[[feeds]]`` table) or vault-wide (``[harvest] allow_private = true``),
    for local feeds and tests (README, "Private addresses").
"""

from __future__ import annotations

import ipaddress
from typing import Final

import httpx

__all__ = ["ALLOW_PRIVATE_EXTENSION", "AddressRefused", "IPAddress", "refusal", "refused_message"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
"""An IP address as :mod:`ipaddress` parses it."""

ALLOW_PRIVATE_EXTENSION: Final = "echo_allow_private"
"""The httpx request extension by which the engine tells the live transport
that this request may reach private addresses (its feed allows them)."""

_BLOCKS: Final[tuple[tuple[str, str, str], ...]] = (
    ("0.0.0.0/8", "an unspecified", "RFC 1122 §3.2.1.3"),
    ("127.0.0.0/8", "a loopback", "RFC 1122 §3.2.1.3"),
    ("10.0.0.0/8", "a private", "RFC 1918"),
    ("172.16.0.0/12", "a private", "RFC 1918"),
    ("192.168.0.0/16", "a private", "RFC 1918"),
    ("169.254.0.0/16", "a link-local", "RFC 3927"),
    ("100.64.0.0/10", "a shared (CGNAT)", "RFC 6598"),
    ("192.0.0.0/24", "an IETF protocol assignment", "RFC 6890"),
    ("224.0.0.0/4", "a multicast", "RFC 5771"),
    ("240.0.0.0/4", "a reserved or broadcast", "RFC 1112 §4"),
    ("::/128", "an unspecified", "RFC 4291 §2.5.2"),
    ("::1/128", "a loopback", "RFC 4291 §2.5.3"),
    ("fc00::/7", "a unique local (private)", "RFC 4193"),
    ("fe80::/10", "a link-local", "RFC 4291 §2.5.6"),
    ("fec0::/10", "a site-local", "RFC 3879"),
    ("ff00::/8", "a multicast", "RFC 4291 §2.7"),
)
_NETWORKS: Final = tuple(
    (ipaddress.ip_network(block), kind, source) for block, kind, source in _BLOCKS
)
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")


class AddressRefused(httpx.TransportError):
    """The live transport refused to connect: the host resolved to a private address.

    Raised before any byte is sent. The engine reports its message as the
    fetch's error, never retries it and does not count it against the host's
    breaker (the host did nothing wrong; the configuration forbids it).
    """


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (IPv4-mapped, NAT64, 6to4), or None."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def refusal(address: IPAddress) -> str | None:
    """Say why the SSRF guard refuses ``address``, or None when a harvest may connect to it.

    Args:
        address: a resolved IPv4 or IPv6 address (an IPv6 scope id is ignored).

    Returns:
        ``"a link-local address (RFC 3927)"``-style words naming the kind of
        address and its source (the table in the module docstring), or None.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            address = ipaddress.IPv6Address(address.compressed.split("%", 1)[0])
        inner = _embedded_ipv4(address)
        if inner is not None:
            why = refusal(inner)
            return None if why is None else f"{why[:-1]}, embedded in {address})"
    for network, kind, source in _NETWORKS:
        if address.version == network.version and address in network:
            return f"{kind} address ({source})"
    return None


def refused_message(host: str, address: IPAddress, why: str) -> str:
    """The error text for a refused connection, naming the host, address, reason and the fix.

    Args:
        host: the host name (or literal) of the URL being fetched.
        address: the address it resolved to.
        why: :func:`refusal`'s words.

    Returns:
        ``refused to connect to 169.254.169.254 (host h): a link-local address
        (RFC 3927); a feed that must reach it sets allow_private = true``...
    """
    shown = str(address)
    named = shown if host.strip("[]") == shown else f"{shown} (host {host})"
    return (
        f"refused to connect to {named}: {why}; private addresses are refused by default "
        "(SSRF guard); a feed that must reach one sets allow_private = true in its "
        "[[feeds]] table (or [harvest] allow_private = true for the whole vault)"
    )
