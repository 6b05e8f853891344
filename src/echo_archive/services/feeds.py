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

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from echo_archive import feeds as _feeds
from echo_archive.config import FeedConfig, InvalidFeed, load_config
from echo_archive.errors import ConfigError, RequestError, VaultNotFoundError
from echo_archive.redaction import redact_json, redact_text
from echo_archive.sources.registry import check_feed
from echo_archive.vault.vault import CONFIG_FILE

__all__ = [
    "FeedChange",
    "FeedView",
    "add_feed",
    "check_feed_params",
    "config_file",
    "list_feeds",
    "remove_feed",
    "set_feed_enabled",
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

    Returns:
        The feed as written, redacted for display.

    Raises:
        VaultNotFoundError: no vault at ``vault_dir``.
        RequestError: the name, source or interval is invalid.
        SourceError: a parameter is unknown (the message lists the known
            ones) or its value is refused (names the parameter).
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
