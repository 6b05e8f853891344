"""Feeds in ``echo.toml``: add, remove, list, enable and disable them.

A *feed* is one configured stream of a source (DESIGN.md glossary), a
``[[feeds]]`` table of the vault's ``echo.toml`` (see
:class:`~echo_archive.config.FeedConfig`). This module edits that file the way
a careful person would:

* **Checked before written.** A new feed's ``params`` go through its source's
  ``plan()`` (a :class:`~echo_archive.errors.SourceError` names the bad
  parameter), and the edited text must read back through
  :func:`~echo_archive.config.load_config` as the intended configuration;
  otherwise nothing is written and the file stays byte-identical.
* **Everything else kept.** The file is edited with tomlkit: comments,
  blank lines, key order and the other tables stay as they were; only the
  feed's table changes.
* **Atomic.** The new text goes to a temporary file in the same directory,
  is fsynced and renamed over ``echo.toml`` (then the directory is fsynced):
  a reader, or a crash, sees the old file or the new one, never a mix.
* **One editor at a time.** Edits hold an exclusive ``flock(2)`` on the
  vault directory, so two concurrent edits cannot lose one another. It is
  not the vault's writer lock: feeds can be edited while a harvester writes.

A harvester that is running keeps the feeds it read at start; it sees the
edit when it reloads the configuration.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import stat
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import tomlkit
from pydantic import ValidationError
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Array, InlineTable, Table
from tomlkit.toml_document import TOMLDocument

from echo_archive.config import (
    FEEDS_HEADER,
    EchoConfig,
    FeedConfig,
    feed_table,
    feeds_header,
    format_problems,
    load_config,
    parse_config,
)
from echo_archive.errors import ConfigError, StorageError
from echo_archive.sources.registry import check_feed as check_source_feed

__all__ = [
    "add_feed",
    "check_feed",
    "list_feeds",
    "make_feed",
    "remove_feed",
    "replace_feed",
    "restore_if",
    "set_enabled",
]


def make_feed(
    name: str,
    source: str,
    *,
    interval: int | None = None,
    enabled: bool = True,
    params: dict[str, Any] | None = None,
    allow_private: bool = False,
) -> FeedConfig:
    """Build a feed from loose values, with errors that name the field.

    Args:
        name: the feed name (a lowercase slug).
        source: the source kind.
        interval: seconds between harvests (default: the source's).
        enabled: whether the harvester collects it.
        params: source-specific parameters.
        allow_private: the feed may connect to private addresses (SSRF guard
            off for it; :mod:`echo_archive.harvest.addresses`).

    Returns:
        The validated feed (its params are not yet checked by the source; see
        :func:`check_feed`).

    Raises:
        ConfigError: a field is invalid (``feed 'x': interval: ...``).

    """
    data: dict[str, Any] = {"name": name, "source": source, "enabled": enabled}
    data["params"] = params or {}
    if allow_private:
        data["allow_private"] = True
    if interval is not None:
        data["interval"] = interval
    try:
        return FeedConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"feed {name!r}: {format_problems(exc)}") from exc


def check_feed(feed: FeedConfig) -> None:
    """Check a feed's params with its source, as the harvester will use them.

    See :func:`echo_archive.sources.registry.check_feed`: only parameters the
    source declares, and its ``plan()`` accepts them.

    Args:
        feed: the feed.

    Raises:
        SourceError: the source kind is unknown, a parameter is unknown (the
            message lists the known ones), or its ``plan()`` rejects the params
            (the message names the feed and the parameter).

    """
    check_source_feed(feed.to_feed())


def list_feeds(config_path: Path) -> list[FeedConfig]:
    """Return the valid feeds of a configuration file, in file order.

    The tables that are not usable feeds are in ``load_config(path).invalid_feeds``.

    Args:
        config_path: the vault's ``echo.toml``.

    Returns:
        The feeds (enabled or not), with their real parameter values
        (credentials included: redact before showing).

    Raises:
        ConfigError: the file is missing or invalid (names the file and key).

    """
    return load_config(Path(config_path)).feeds


def add_feed(config_path: Path, feed: FeedConfig) -> None:
    """Append a feed to ``echo.toml``, keeping the rest of the file as it is.

    Args:
        config_path: the vault's ``echo.toml``.
        feed: the feed to add.

    Raises:
        SourceError: the feed's source rejects its params (names the
            parameter); the file is not touched.
        ConfigError: a feed of that name exists, or the file is missing or
            invalid; the file is not changed.
        StorageError: the new file cannot be written (the old one stays).

    """
    check_feed(feed)

    def change(doc: TOMLDocument) -> None:
        if feed.name in _names(doc):
            raise ConfigError(
                f"{config_path}: a feed named {feed.name!r} exists already "
                "(remove it first, or choose another name)"
            )
        _append(doc, feed)

    def expect(config: EchoConfig) -> bool:
        return config.feeds[-1:] == [feed]

    _edit(Path(config_path), change, expect)


def remove_feed(config_path: Path, name: str) -> FeedConfig | None:
    """Remove a feed from ``echo.toml``.

    Works on a file whose only problem is the feed being removed (a feed
    with a misspelt key can be removed to fix the file).

    Args:
        config_path: the vault's ``echo.toml``.
        name: the feed's name.

    Returns:
        The feed as it was configured, or None when its table was not a valid feed.

    Raises:
        ConfigError: no feed has that name, or the file is missing or invalid.
        StorageError: the new file cannot be written (the old one stays).

    """
    path = Path(config_path)
    removed: list[dict[str, Any]] = []

    def change(doc: TOMLDocument) -> None:
        feeds, index = _find(doc, name, path)
        removed.append(feeds[index].unwrap())
        del feeds[index]
        if isinstance(feeds, AoT) and not len(feeds):
            del doc["feeds"]

    def expect(config: EchoConfig) -> bool:
        return all(f.name != name for f in config.all_feeds())

    _edit(path, change, expect)
    try:
        return FeedConfig.model_validate(removed[0])
    except ValidationError:
        return None


def set_enabled(config_path: Path, name: str, enabled: bool) -> bool:
    """Enable or disable a feed (its ``enabled`` key).

    Args:
        config_path: the vault's ``echo.toml``.
        name: the feed's name.
        enabled: the new state.

    Returns:
        True if the state changed; False if the feed was already so (the file
        is then not rewritten).

    Raises:
        ConfigError: no feed has that name, or the file is missing or invalid.
        StorageError: the new file cannot be written (the old one stays).

    """
    path = Path(config_path)
    changed: list[bool] = []

    def change(doc: TOMLDocument) -> None:
        feeds, index = _find(doc, name, path)
        table = feeds[index]
        current = table.get("enabled", True)  # tomlkit gives booleans as bool
        if isinstance(current, bool) and current == enabled:
            return
        table["enabled"] = enabled
        changed.append(True)

    def expect(config: EchoConfig) -> bool:
        return any(f.name == name and f.enabled is enabled for f in config.all_feeds())

    _edit(path, change, expect)
    return bool(changed)


def replace_feed(config_path: Path, feed: FeedConfig) -> bool:
    """Make the feed named ``feed.name`` into ``feed`` (interval, enabled, allow_private, params).

    The feed keeps its place among the ``[[feeds]]`` tables and its source
    (a feed never changes source: remove it and add another). Only the keys
    that differ are rewritten, so comments elsewhere in the file (and beside
    the unchanged keys of its table) stay; the ``params`` table is replaced
    as a whole when it differs. Checked as :func:`add_feed` checks a new feed
    (its source's ``plan()``), and the edited file must read back with this
    feed exactly, else nothing is written.

    Args:
        config_path: the vault's ``echo.toml``.
        feed: the feed as it must become (a validated :class:`FeedConfig`).

    Returns:
        True when the file changed; False when the feed was already so (not rewritten).

    Raises:
        SourceError: the source rejects the params (names the parameter); nothing written.
        ConfigError: no feed has that name, its source differs, or the file
            is missing or invalid; nothing written.
        StorageError: the new file cannot be written (the old one stays).

    """
    check_feed(feed)
    path = Path(config_path)
    changed: list[bool] = []

    def change(doc: TOMLDocument) -> None:
        feeds, index = _find(doc, feed.name, path)
        table = feeds[index]
        if table.get("source") != feed.source:
            raise ConfigError(
                f"{path}: feed {feed.name!r} is a {table.get('source')!r} feed; its source "
                "cannot change (remove it and add a new feed)"
            )
        wanted: dict[str, Any] = {"interval": feed.interval, "enabled": feed.enabled}
        for key, value in wanted.items():
            if table.get(key) != value:
                table[key] = value
                changed.append(True)
        if bool(table.get("allow_private", False)) != feed.allow_private:
            if feed.allow_private:
                table["allow_private"] = True
            else:
                del table["allow_private"]
            changed.append(True)
        current = table.get("params")
        current_plain = current.unwrap() if isinstance(current, Table | InlineTable) else {}
        if current_plain != feed.params:
            if "params" in table:
                del table["params"]
            if feed.params:
                if isinstance(table, InlineTable):
                    inline = tomlkit.inline_table()
                    inline.update(feed.params)
                    table["params"] = inline
                else:
                    params = tomlkit.table()
                    for key, value in feed.params.items():
                        params.add(key, value)
                    table.add("params", params)
            changed.append(True)

    def expect(config: EchoConfig) -> bool:
        return [f for f in config.all_feeds() if f.name == feed.name] == [feed]

    _edit(path, change, expect)
    return bool(changed)


def restore_if(config_path: Path, expected: bytes, previous: bytes) -> bool:
    """Put ``previous`` back in ``echo.toml`` if it still holds ``expected`` (compare and swap).

    Takes an edit back when what must follow it failed (the HTTP API's
    audit entry): under the editing lock, atomically, and only when nobody
    edited the file since (else nothing is written and False is returned).

    Raises:
        StorageError: the file cannot be read or written (the old one stays).
    """
    path = Path(config_path)
    target = Path(os.path.realpath(path))
    with _locked(target.parent, path):
        try:
            current = target.read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        if current != expected:
            return False
        _write_atomic(target, previous, path)
        return True


# ---------------------------------------------------------------------------- editing


def _names(doc: TOMLDocument) -> list[str]:
    feeds = doc.get("feeds")
    if not isinstance(feeds, AoT | Array):
        return []
    return [str(t.get("name")) for t in feeds if isinstance(t, Table | InlineTable)]


def _find(doc: TOMLDocument, name: str, path: Path) -> tuple[Any, int]:
    """Return the ``feeds`` array and the index of the feed called ``name``."""
    names = _names(doc)
    if name not in names:
        raise ConfigError(f"{path}: no feed named {name!r} (feeds: {', '.join(names) or 'none'})")
    return doc["feeds"], names.index(name)


def _append(doc: TOMLDocument, feed: FeedConfig) -> None:
    """Append ``feed`` to the document's feeds, in the style the file uses."""
    feeds = doc.get("feeds")
    if isinstance(feeds, Array):  # feeds = [{...}, ...] written inline by hand
        inline = tomlkit.inline_table()
        inline.update(feed.model_dump())
        feeds.append(inline)
        return
    table = feed_table(feed)
    if isinstance(feeds, AoT):
        if len(feeds) and not feeds[-1].as_string().endswith("\n\n"):
            table.trivia.indent = "\n"
        if list(doc.keys())[-1] != "feeds":  # keep a blank line before the next table
            table.add(tomlkit.nl())
        feeds.append(table)
        return
    text = doc.as_string()
    if text and not text.endswith("\n\n"):
        doc.add(tomlkit.nl())
    if FEEDS_HEADER.splitlines()[0] not in text:
        for line in feeds_header():
            doc.add(line)
    aot = tomlkit.aot()
    aot.append(table)
    doc.add("feeds", aot)


def _validate(text: str, path: Path) -> EchoConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(data, path)


def _edit(
    path: Path,
    change: Callable[[TOMLDocument], None],
    expect: Callable[[EchoConfig], bool],
) -> None:
    """Read, change, check and atomically rewrite ``path`` under the directory lock.

    Args:
        path: the configuration file (a symlink is followed; its target is rewritten).
        change: edits the parsed document in place; raises ConfigError to refuse.
        expect: whether the edited file, read back, is what was intended.

    Raises:
        ConfigError: the file is missing, not TOML, the change is refused, or
            the result is invalid or not as intended (nothing is written).
        StorageError: writing failed (the old file stays).

    """
    target = Path(os.path.realpath(path))
    with _locked(target.parent, path):
        try:
            text = target.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: configuration file not found") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from exc
        try:
            tomllib.loads(text)
            doc = tomlkit.parse(text)
        except (tomllib.TOMLDecodeError, TOMLKitError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        change(doc)
        new = tomlkit.dumps(doc)
        if not text.endswith("\n\n"):  # a removed table can leave its blank line at the end
            new = new.rstrip("\n") + "\n"
        if new == text:
            return
        if not expect(_validate(new, path)):
            raise ConfigError(
                f"{path}: the edited file does not read back as intended "
                "(an unusual layout of [[feeds]]?); nothing was written: edit it by hand"
            )
        _write_atomic(target, new.encode("utf-8"), path)


@contextlib.contextmanager
def _locked(directory: Path, path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``directory`` (the vault) while editing ``path``."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: configuration file not found") from exc
    except OSError as exc:
        raise StorageError(f"cannot open {directory} to lock it for editing {path}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def _write_atomic(target: Path, data: bytes, shown: Path) -> None:
    """Replace ``target`` with ``data``: temp file, fsync, rename, fsync the directory."""
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise StorageError(f"cannot write {shown}: {exc}") from exc
