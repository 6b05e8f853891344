"""The vault's own settings: the ``[vault]``, ``[blobs]`` and ``[log]`` tables of ``echo.toml``.

The vault reads only these three tables of its configuration file; every
other table (``[[feeds]]``, ``[limits."<host>"]``...) belongs to the layers
above, which compose these sections into their own model
(:class:`echo_archive.config.EchoConfig`), so ``echo.toml`` stays one file for
its users. The vault imports nothing above itself (DESIGN.md, layers)::

    [vault]
    origin = "echo.archive/3f9a0c1d2e4b5a69"   # the log's origin; never changes
    created = "2026-11-22T01:41:19.123456Z"

    [blobs]
    backend = "sqlite"           # or "directory"; chosen at init, never changed
    large_threshold = 16777216   # bytes; larger blobs are stored as files
    zstd_level = 3

    [log]
    batch_size = 1000            # records per commit when adding many files

Unknown keys inside these tables are errors, naming the file and the key path.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Final, Literal

import tomlkit
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tomlkit.items import Item, Table
from tomlkit.toml_document import TOMLDocument

from echo_archive.errors import ConfigError

__all__ = [
    "BlobSection",
    "LogSection",
    "VaultSection",
    "VaultSettings",
    "format_problems",
    "load_settings",
    "read_toml",
    "render_settings",
    "settings_document",
]

_COMMENT_WS: Final = "   "
_VALUE_ERROR_PREFIX: Final = re.compile(r"^(Value|Assertion) error, ")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VaultSection(_Strict):
    """``[vault]``: identity of the vault.

    Attributes:
        origin: the log origin (C2SP tlog-checkpoint), also the signing key's name.
        created: RFC 3339 UTC time of ``echoctl init``.

    """

    origin: str = Field(pattern=r"^[^\s+]+$", max_length=200)
    created: str


class BlobSection(_Strict):
    """``[blobs]``: blob store settings.

    Attributes:
        backend: the blob store backend, ``"sqlite"`` (rows in ``blobs/blobs.sqlite``)
            or ``"directory"`` (one file per blob under ``blobs/``); set by
            ``echoctl init`` and fixed for the vault's life (the store on disk is
            of that backend; opening it as the other is refused).
        large_threshold: blobs above this many bytes are stored as separate files.
        zstd_level: zstd compression level (1-19).

    """

    backend: Literal["sqlite", "directory"] = "sqlite"
    large_threshold: int = Field(default=16 * 2**20, ge=1024)
    zstd_level: int = Field(default=3, ge=1, le=19)


class LogSection(_Strict):
    """``[log]``: log settings.

    Attributes:
        batch_size: records per commit (one checkpoint per commit) for bulk adds.

    """

    batch_size: int = Field(default=1000, ge=1, le=100_000)


class VaultSettings(BaseModel):
    """The vault's tables of ``echo.toml``; other top-level tables are ignored here.

    Attributes:
        vault: ``[vault]``.
        blobs: ``[blobs]``.
        log: ``[log]``.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    vault: VaultSection
    blobs: BlobSection = BlobSection()
    log: LogSection = LogSection()


def format_problems(exc: ValidationError) -> str:
    """Format a pydantic validation error as ``key.path: message`` items joined by ``; ``.

    Args:
        exc: the error.

    Returns:
        One ``feeds.2.source: unknown source 'rs' (...)`` item per problem.

    """
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        msg = _VALUE_ERROR_PREFIX.sub("", err["msg"])
        problems.append(f"{where}: {msg}" if where else msg)
    return "; ".join(problems)


def read_toml(path: Path) -> dict[str, Any]:
    """Read ``path`` as a TOML 1.0 document.

    Raises:
        ConfigError: the file is missing, unreadable or not TOML (names the file).
    """
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: configuration file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def load_settings(path: Path) -> VaultSettings:
    """Read the vault's tables of ``echo.toml``.

    Args:
        path: the file.

    Returns:
        The validated settings.

    Raises:
        ConfigError: the file is missing, not TOML, or a vault table breaks the
            model; the message names the file and each offending key path.
    """
    data = read_toml(path)
    try:
        return VaultSettings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {format_problems(exc)}") from exc


def _add(table: Table, key: str, value: Any, comment: str | None = None) -> None:
    table.add(key, value)
    if comment:
        item: Item = table[key]
        item.comment(comment)
        item.trivia.comment_ws = _COMMENT_WS


def settings_document(settings: VaultSettings) -> TOMLDocument:
    """The vault's tables as a tomlkit document, for the layers above to extend.

    Args:
        settings: the settings.

    Returns:
        A document with a header comment and the ``[vault]``, ``[blobs]`` and
        ``[log]`` tables with their explanatory comments (strings escaped by tomlkit).
    """
    v, b, lg = settings.vault, settings.blobs, settings.log
    doc = tomlkit.document()
    doc.add(tomlkit.comment("ECHO vault configuration (see README.md, 'Configuration')."))
    vault = tomlkit.table()
    _add(vault, "origin", v.origin, "the log origin; never change it")
    _add(vault, "created", v.created)
    doc.add("vault", vault)
    blobs = tomlkit.table()
    _add(blobs, "backend", b.backend, '"sqlite" or "directory"; chosen at init, never changed')
    _add(blobs, "large_threshold", b.large_threshold, "bytes; larger blobs are stored as files")
    _add(blobs, "zstd_level", b.zstd_level)
    doc.add("blobs", blobs)
    log = tomlkit.table()
    _add(log, "batch_size", lg.batch_size, "records per commit (one checkpoint each)")
    doc.add("log", log)
    return doc


def render_settings(settings: VaultSettings) -> str:
    """The TOML text of the vault's tables alone (what a vault made without feeds holds)."""
    return tomlkit.dumps(settings_document(settings))
