"""The configuration file ``echo.toml`` and its model.

A vault's ``echo.toml`` (TOML 1.0) is written by ``echoctl init`` and read by
every command. Unknown keys are errors (a typo must not be silently ignored),
and every error names the file and the key that was wrong.

::

    [vault]
    origin = "echo.archive/3f9a0c1d2e4b5a69"   # the log's origin; never changes
    created = "2026-11-22T01:41:19.123456Z"

    [blobs]
    large_threshold = 16777216   # bytes; larger blobs are stored as files
    zstd_level = 3

    [log]
    batch_size = 1000            # records per commit when adding many files
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from echo_archive.errors import ConfigError

__all__ = ["BlobSection", "EchoConfig", "LogSection", "VaultSection", "load_config", "render"]


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
        large_threshold: blobs above this many bytes are stored as separate files.
        zstd_level: zstd compression level (1-19).

    """

    large_threshold: int = Field(default=16 * 2**20, ge=1024)
    zstd_level: int = Field(default=3, ge=1, le=19)


class LogSection(_Strict):
    """``[log]``: log settings.

    Attributes:
        batch_size: records per commit (one checkpoint per commit) for bulk adds.

    """

    batch_size: int = Field(default=1000, ge=1, le=100_000)


class EchoConfig(_Strict):
    """The whole ``echo.toml``."""

    vault: VaultSection
    blobs: BlobSection = BlobSection()
    log: LogSection = LogSection()


def load_config(path: Path) -> EchoConfig:
    """Read and validate ``echo.toml``.

    Args:
        path: the file.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: the file is missing, not TOML, or breaks the model; the
            message names the file and each offending key.

    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: configuration file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return EchoConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc


def render(config: EchoConfig) -> str:
    """Render a configuration as the TOML text ``echoctl init`` writes."""
    v, b, lg = config.vault, config.blobs, config.log
    return (
        "# ECHO vault configuration (see README.md, 'Configuration').\n"
        "[vault]\n"
        f'origin = "{v.origin}"   # the log origin; never change it\n'
        f'created = "{v.created}"\n'
        "\n[blobs]\n"
        f"large_threshold = {b.large_threshold}   # bytes; larger blobs are stored as files\n"
        f"zstd_level = {b.zstd_level}\n"
        "\n[log]\n"
        f"batch_size = {lg.batch_size}   # records per commit (one checkpoint each)\n"
    )
