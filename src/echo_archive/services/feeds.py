"""The feeds of a vault: the ``[[feeds]]`` tables of its ``echo.toml``, listed and edited.

Wraps :mod:`echo_archive.feeds` (checked, atomic edits that keep the file's
comments) with the vault directory as the handle, as every other service
takes the vault. Removing a feed changes only the configuration: what was
archived from it stays in the log.

What these services return is for display (the CLI, the HTTP API): a
:class:`FeedView`, whose parameters and error went through the one redaction
(:func:`echo_archive.redaction.redact_json`: URL userinfo removed, ``token``,
``api_key``, ``password``... values masked as ``REDACTED``). The file keeps
the real values; the harvester reads them from it
(:func:`echo_archive.config.load_config`), never from a view.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from echo_archive import feeds as _feeds
from echo_archive.config import FeedConfig, InvalidFeed, load_config
from echo_archive.errors import (
    ConfigError,
    NotFoundError,
    RequestError,
    SourceError,
    StorageError,
    VaultNotFoundError,
)
from echo_archive.harvest.addresses import IPAddress, refusal
from echo_archive.redaction import redact_json, redact_text
from echo_archive.sources.registry import CREDENTIAL_PLACEHOLDER, check_feed, get_source
from echo_archive.vault.vault import CONFIG_FILE

__all__ = [
    "FeedChange",
    "FeedView",
    "add_feed",
    "change_feed",
    "check_feed_addresses",
    "check_feed_params",
    "config_file",
    "get_feed",
    "list_feeds",
    "merge_patch",
    "remove_feed",
    "set_feed_enabled",
    "undoable",
]


@dataclass(frozen=True, slots=True)
class FeedChange:
    """The outcome of enabling or disabling a feed.

    Attributes:
        name: the feed.
        enabled: its state now.
        changed: False when it was already in that state (nothing written).
    """

    name: str
    enabled: bool
    changed: bool


@dataclass(frozen=True, slots=True)
class FeedView:
    """One ``[[feeds]]`` table as shown: credentials redacted; an invalid table with its error.

    Attributes:
        position: the table's index among the ``[[feeds]]`` tables, from 0.
        name: the feed's name (None for an invalid table without a string name).
        source: the source kind (None when an invalid table names none).
        interval: seconds between harvests (None when an invalid table's is unusable).
        enabled: whether a harvest of the enabled feeds collects it (an
            enabled invalid feed is reported failed).
        params: the parameters, redacted (:func:`~echo_archive.redaction.redact_json`).
        error: why the table is not a usable feed, redacted; None when it is one.
        allow_private: the feed may connect to private addresses (SSRF guard off for it).
    """

    position: int
    name: str | None
    source: str | None
    interval: int | None
    enabled: bool
    params: dict[str, Any]
    error: str | None = None
    allow_private: bool = False

    @classmethod
    def of(cls, feed: FeedConfig | InvalidFeed, position: int) -> FeedView:
        """The view of a valid feed at ``position``, or of an invalid table (its own position)."""
        if isinstance(feed, InvalidFeed):
            return cls(
                feed.position,
                feed.name,
                feed.source,
                feed.interval,
                feed.enabled,
                redact_json(feed.params),
                redact_text(feed.error),
            )
        return cls(
            position,
            feed.name,
            feed.source,
            feed.interval,
            feed.enabled,
            redact_json(feed.params),
            allow_private=feed.allow_private,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping of the view.

        Returns:
            ``name``, ``source``, ``interval``, ``enabled``, ``allow_private``,
            ``params`` (redacted), ``position`` and ``error`` (null for a valid feed).
        """
        return {
            "name": self.name,
            "source": self.source,
            "interval": self.interval,
            "enabled": self.enabled,
            "allow_private": self.allow_private,
            "params": self.params,
            "position": self.position,
            "error": self.error,
        }


def check_feed_params(source: str, params: Mapping[str, Any], name: str = "new-feed") -> None:
    """Check feed parameters as a harvest will use them, without a vault (for a form or an API).

    Only the parameters the source declares are accepted (the message lists
    them), and the source's ``plan()`` must accept their types and values
    (:func:`echo_archive.sources.registry.check_feed`).

    Args:
        source: the source kind.
        params: the parameters.
        name: the feed name the message names.

    Raises:
        SourceError: the source kind is unknown, a parameter is unknown, or a
            value is refused (the message names the feed and the parameter).
    """
    from echo_archive.sources.base import Feed

    check_feed(Feed(name, source, dict(params)))


def config_file(vault_dir: Path) -> Path:
    """The ``echo.toml`` of the vault at ``vault_dir``.

    Raises:
        VaultNotFoundError: there is no vault there (no ``echo.toml``).
    """
    config = Path(vault_dir) / CONFIG_FILE
    if not config.is_file():
        raise VaultNotFoundError(
            f"no vault at {vault_dir} (no {CONFIG_FILE}); "
            f"create one with `echoctl init {vault_dir}`"
        )
    return config


def add_feed(
    vault_dir: Path,
    name: str,
    source: str,
    *,
    interval: int | None = None,
    params: Mapping[str, Any] | None = None,
    allow_private: bool = False,
    check_addresses: bool = False,
) -> FeedView:
    """Add a feed, checked by its source as the harvester will use it.

    Args:
        vault_dir: the vault directory.
        name: a unique name (lowercase letters, digits, ``.``, ``_``, ``-``).
        source: the source kind (``rss``, ``hn``, ``reddit``, ``github``, ``fred``).
        interval: seconds between harvests, >= 60 (default: the source's).
        params: the source's parameters: only those it declares (see
            :func:`check_feed_params`).
        allow_private: let the feed connect to private addresses (loopback,
            RFC 1918, link-local...), which the SSRF guard refuses by default
            (:mod:`echo_archive.harvest.addresses`): for a local feed.
        check_addresses: also refuse, before writing, a feed whose requests
            name a private address (:func:`check_feed_addresses`; the HTTP API
            sets it: a feed added by a client is untrusted input).

    Returns:
        The feed as written, redacted for display.

    Raises:
        VaultNotFoundError: no vault at ``vault_dir``.
        RequestError: the name, source or interval is invalid.
        SourceError: a parameter is unknown (the message lists the known
            ones) or its value is refused (names the parameter).
        RequestError: with ``check_addresses``, a request of the feed names a
            private address (the message names the rule).
        ConfigError: the name is taken, or ``echo.toml`` is invalid.
        StorageError: the file cannot be written (the old one stays).
    """
    config = config_file(vault_dir)
    try:
        feed = _feeds.make_feed(
            name, source, interval=interval, params=dict(params or {}), allow_private=allow_private
        )
    except ConfigError as exc:
        raise RequestError(str(exc)) from exc
    _feeds.check_feed(feed)
    if check_addresses:
        check_feed_addresses(feed, vault_wide=load_config(config).harvest.allow_private)
    _feeds.add_feed(config, feed)
    return FeedView.of(feed, len(load_config(config).all_feeds()) - 1)


def list_feeds(vault_dir: Path) -> list[FeedView]:
    """Every ``[[feeds]]`` table, in file order, enabled or not, redacted for display.

    A table that is not a usable feed is listed with its ``error`` (the other
    feeds are unaffected).

    Raises:
        VaultNotFoundError: no vault at ``vault_dir``.
        ConfigError: a part of ``echo.toml`` outside the feed tables is
            invalid (names the key).
    """
    config = load_config(config_file(vault_dir))
    return [FeedView.of(feed, i) for i, feed in enumerate(config.all_feeds())]


def remove_feed(vault_dir: Path, name: str) -> FeedView | None:
    """Remove a feed (a table that is not a valid feed can be removed to fix the file).

    Returns:
        The feed as it was configured, redacted, or None when its table was
        not a valid feed.

    Raises:
        VaultNotFoundError: no vault at ``vault_dir``.
        ConfigError: no feed has that name, or ``echo.toml`` is invalid.
        StorageError: the file cannot be written (the old one stays).
    """
    config = config_file(vault_dir)
    positions = {f.name: i for i, f in reversed(list(enumerate(load_config(config).all_feeds())))}
    removed = _feeds.remove_feed(config, name)
    return None if removed is None else FeedView.of(removed, positions.get(name, -1))


def set_feed_enabled(vault_dir: Path, name: str, enabled: bool) -> FeedChange:
    """Enable or disable a feed (its ``enabled`` key; the rest is kept).

    Raises:
        VaultNotFoundError: no vault at ``vault_dir``.
        ConfigError: no feed has that name, or ``echo.toml`` is invalid.
        StorageError: the file cannot be written (the old one stays).
    """
    changed = _feeds.set_enabled(config_file(vault_dir), name, enabled)
    return FeedChange(name, enabled, changed)


def get_feed(vault_dir: Path, name: str) -> FeedView:
    """The feed called ``name`` (a valid feed or an invalid table of that name), redacted.

    Raises:
        VaultNotFoundError: no vault at ``vault_dir``.
        NotFoundError: no ``[[feeds]]`` table has that name.
        ConfigError: ``echo.toml`` is invalid outside the feed tables.
    """
    for view in list_feeds(vault_dir):
        if view.name == name:
            return view
    raise NotFoundError(f"no feed named {name!r} (see `echoctl feeds list`)")


MAX_PATCH_DEPTH = 8
"""How deeply nested a params merge patch may be (a hostile body cannot recurse for ever)."""


def merge_patch(
    target: Mapping[str, Any], patch: Mapping[str, Any], depth: int = 0
) -> dict[str, Any]:
    """``target`` with the JSON merge patch ``patch`` applied (RFC 7396 §2).

    A key whose patch value is null is removed; an object is merged into an
    object recursively; any other value replaces. Neither argument is changed.

    Raises:
        RequestError: the patch nests deeper than :data:`MAX_PATCH_DEPTH`.
    """
    if depth > MAX_PATCH_DEPTH:
        raise RequestError(f"params: a merge patch nests deeper than {MAX_PATCH_DEPTH} levels")
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping):
            base = out.get(key)
            out[key] = merge_patch(base if isinstance(base, Mapping) else {}, value, depth + 1)
        else:
            out[key] = value
    return out


def change_feed(
    vault_dir: Path,
    name: str,
    *,
    interval: int | None = None,
    params_patch: Mapping[str, Any] | None = None,
    allow_private: bool | None = None,
    enabled: bool | None = None,
    check_addresses: bool = False,
) -> tuple[FeedView, bool]:
    """Change a feed's interval, parameters, ``allow_private`` or ``enabled`` (None: keep it).

    ``params_patch`` is a JSON merge patch (RFC 7396) over the feed's real
    parameters (``{"url": "https://..."}`` changes the URL alone; a null
    removes a key), so a client never has to send back a credential it was
    only shown redacted. The result is checked as a new feed is (the source's
    ``plan()``; with ``check_addresses``, :func:`check_feed_addresses`), and
    written by :func:`echo_archive.feeds.replace_feed` (atomic, comments kept).

    Returns:
        ``(view, changed)``: the feed as it is now, redacted; whether the file changed.

    Raises:
        VaultNotFoundError: no vault at ``vault_dir``.
        NotFoundError: no valid feed has that name.
        RequestError: an invalid interval or parameter value; a private
            address (with ``check_addresses``).
        SourceError: the source refuses the parameters (names the parameter).
        ConfigError: ``echo.toml`` is invalid or the edit does not read back.
        StorageError: the file cannot be written (the old one stays).
    """
    config = config_file(vault_dir)
    loaded = load_config(config)
    positions = [i for i, f in enumerate(loaded.all_feeds()) if f.name == name]
    current = next((f for f in loaded.feeds if f.name == name), None)
    if current is None:
        if positions:
            raise ConfigError(
                f"feed {name!r} is not a valid feed table (fix it in echo.toml, or remove it)"
            )
        raise NotFoundError(f"no feed named {name!r} (see `echoctl feeds list`)")
    params = dict(current.params)
    if params_patch is not None:
        params = merge_patch(params, params_patch)
    try:
        feed = _feeds.make_feed(
            name,
            current.source,
            interval=current.interval if interval is None else interval,
            enabled=current.enabled if enabled is None else enabled,
            params=params,
            allow_private=current.allow_private if allow_private is None else allow_private,
        )
    except ConfigError as exc:
        raise RequestError(str(exc)) from exc
    _feeds.check_feed(feed)
    if check_addresses:
        check_feed_addresses(feed, vault_wide=loaded.harvest.allow_private)
    changed = _feeds.replace_feed(config, feed)
    return FeedView.of(feed, positions[0]), changed


def _literal_address(host: str) -> IPAddress | None:
    """The IP address a URL host names literally, or None for a name to be resolved.

    Besides the usual forms (``127.0.0.1``, ``[::1]``), the legacy IPv4
    forms ``inet_aton(3)`` accepts and a resolver treats as addresses without
    asking DNS (``2130706433``, ``0x7f.1``, ``127.1``) are read as the
    address they denote, so they are judged by the same rule.
    """
    bare = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if bare and all(c in "0123456789abcdefxABCDEFX." for c in bare) and bare[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def check_feed_addresses(feed: FeedConfig, *, vault_wide: bool = False) -> None:
    """Refuse a feed whose requests go to a private address, unless it (or the vault) allows it.

    The harvester's SSRF rule (:func:`echo_archive.harvest.addresses.refusal`:
    loopback, RFC 1918, link-local, CGNAT, multicast, unspecified, reserved
    blocks, IPv4 embedded in IPv6 included) applied before the feed is
    written, to the host of every request its source plans: a host that is
    an IP literal is judged by it; ``localhost`` and names under
    ``.localhost`` are loopback (RFC 6761 §6.3). Other names are not resolved
    here: the live transport judges the address each one resolves to at
    every connection and redirect (:mod:`echo_archive.harvest.network`),
    which a name re-pointed after this check cannot escape.

    Args:
        feed: the feed (its params already checked by its source).
        vault_wide: ``[harvest] allow_private`` of the vault (lifts the rule for every feed).

    Raises:
        RequestError: a request's host is a private address; the message names
            the host, the kind of address and its RFC, and the setting that
            allows it (``allow_private``).
    """
    if vault_wide or feed.allow_private:
        return
    source = get_source(feed.source)
    plain = feed.to_feed()
    try:
        requests = source.plan(plain)
    except SourceError:
        names = source.credential_env(plain)
        placeholders = dict.fromkeys(names, CREDENTIAL_PLACEHOLDER)
        requests = source.plan(source.with_credentials(plain, placeholders))
    for request in requests:
        host = (urlsplit(request.url).hostname or "").lower().rstrip(".")
        why: str | None
        if host == "localhost" or host.endswith(".localhost"):
            why = "a loopback name (RFC 6761 §6.3)"
        else:
            address = _literal_address(host)
            why = None if address is None else refusal(address)
        if why is not None:
            raise RequestError(
                f"feed {feed.name!r}: {redact_text(request.url)} names {host}, {why}; private "
                "addresses are refused by default (SSRF guard, as the harvester's); a feed "
                "that must reach one sets allow_private (which needs feeds:admin through "
                "the API), or the vault sets [harvest] allow_private = true"
            )


T = TypeVar("T")


def undoable(vault_dir: Path, edit: Callable[[], T]) -> tuple[T, Callable[[], bool]]:
    """Run ``edit`` (one of this module's changes); return its result and a function that undoes it.

    The undo puts the file's previous bytes back if nobody edited it since
    (:func:`echo_archive.feeds.restore_if`), and says whether it did. For a
    caller whose next step must hold for the edit to stand (the HTTP API
    commits an ``audit`` entry for every change, and takes the change back
    when that commit fails: no change without its entry).

    Raises:
        What ``edit`` raises; VaultNotFoundError without a vault; StorageError
        when the file cannot be read.
    """
    config = config_file(vault_dir)
    before = _read(config)
    result = edit()
    after = _read(config)

    def undo() -> bool:
        return after != before and _feeds.restore_if(config, after, before)

    return result, undo


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
