"""The feeds of a vault: the ``[[feeds]]`` tables of its ``echo.toml``, listed and edited.

Wraps :mod:`echo_archive.feeds` (checked, atomic edits that keep the file's
comments) with the vault directory as the handle, as every other service
takes the vault. Removing a feed changes only the configuration: what was
archived from it stays in the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from echo_archive import feeds as _feeds
from echo_archive.config import FeedConfig
from echo_archive.errors import ConfigError, RequestError, VaultNotFoundError
from echo_archive.vault.vault import CONFIG_FILE

__all__ = [
    "FeedChange",
    "add_feed",
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
) -> FeedConfig:
    """Add a feed, checked by its source as the harvester will use it.

    Args:
        vault_dir: the vault directory.
        name: a unique name (lowercase letters, digits, ``.``, ``_``, ``-``).
        source: the source kind (``rss``, ``hn``, ``reddit``, ``github``, ``fred``).
        interval: seconds between harvests, >= 60 (default: the source's).
        params: the source's parameters.

    Returns:
        The feed as written.

    Raises:
        VaultNotFoundError: no vault at ``vault_dir``.
        RequestError: the name, source or interval is invalid.
        SourceError: the source rejects the parameters (names the parameter).
        ConfigError: the name is taken, or ``echo.toml`` is invalid.
        StorageError: the file cannot be written (the old one stays).
    """
    config = config_file(vault_dir)
    try:
        feed = _feeds.make_feed(name, source, interval=interval, params=dict(params or {}))
    except ConfigError as exc:
        raise RequestError(str(exc)) from exc
    _feeds.check_feed(feed)
    _feeds.add_feed(config, feed)
    return feed


def list_feeds(vault_dir: Path) -> list[FeedConfig]:
    """The configured feeds, in file order, enabled or not.

    Raises:
        VaultNotFoundError: no vault at ``vault_dir``.
        ConfigError: ``echo.toml`` is invalid (names the key).
    """
    return _feeds.list_feeds(config_file(vault_dir))


def remove_feed(vault_dir: Path, name: str) -> FeedConfig | None:
    """Remove a feed (a table that is not a valid feed can be removed to fix the file).

    Returns:
        The feed as it was configured, or None when its table was not a valid feed.

    Raises:
        VaultNotFoundError: no vault at ``vault_dir``.
        ConfigError: no feed has that name, or ``echo.toml`` is invalid.
        StorageError: the file cannot be written (the old one stays).
    """
    return _feeds.remove_feed(config_file(vault_dir), name)


def set_feed_enabled(vault_dir: Path, name: str, enabled: bool) -> FeedChange:
    """Enable or disable a feed (its ``enabled`` key; the rest is kept).

    Raises:
        VaultNotFoundError: no vault at ``vault_dir``.
        ConfigError: no feed has that name, or ``echo.toml`` is invalid.
        StorageError: the file cannot be written (the old one stays).
    """
    changed = _feeds.set_enabled(config_file(vault_dir), name, enabled)
    return FeedChange(name, enabled, changed)
