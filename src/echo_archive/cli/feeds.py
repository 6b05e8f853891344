"""``echoctl feeds``: list and edit the feeds of a vault's ``echo.toml``.

A thin shell over :mod:`echo_archive.feeds`, mounted by :mod:`echo_archive.cli`
as ``app.add_typer(feeds_app, name="feeds")``. Every command takes ``--vault
PATH``; without it, the ``echoctl --vault`` given before ``feeds`` is used,
else ``$ECHO_VAULT``, else ``./vault``. Exit codes as for every ``echoctl``
command: 0 success; 1 the file could not be changed as asked (no such feed, a
name already taken, an invalid file); 2 bad usage (a malformed ``--param``, a
name, source, interval or parameter the source rejects).

This module does not import the package :mod:`echo_archive.cli` (which imports it).
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.table import Table

from echo_archive.cli.common import JsonOpt, VaultOpt, err, out, safe, vault_dir
from echo_archive.cli.common import emit as _emit
from echo_archive.cli.common import errors as _errors
from echo_archive.cli.common import fail as _fail
from echo_archive.config import SOURCE_KINDS
from echo_archive.services import feeds as feed_service
from echo_archive.services.feeds import FeedView

__all__ = ["feeds_app", "parse_params"]

feeds_app = typer.Typer(
    help="List and edit the feeds of a vault (the feeds tables of its echo.toml) that "
    "`echoctl harvest` collects. Edits are checked, atomic, and keep the file's comments.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="The feed's name.")]

_KEY_RE: Final = re.compile(r"^[A-Za-z0-9_-]+$")


# ---------------------------------------------------------------------------- --param


def _scalar(raw: str) -> Any:
    """A TOML boolean, integer, finite float or quoted string; else the text itself."""
    if "\n" in raw or "\r" in raw:
        return raw
    try:
        doc = tomllib.loads(f"v = {raw}")
    except tomllib.TOMLDecodeError:
        return raw
    value = doc.get("v")
    if len(doc) != 1:
        return raw
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return raw


def parse_params(items: list[str]) -> dict[str, Any]:
    """Parse ``--param KEY=VALUE`` options into a params table.

    ``VALUE`` is read as a TOML scalar when it is one (``30``, ``1.5``,
    ``true``, ``"0.1"`` quoted to stay a string), else taken as text
    (``python``, ``https://example.org/feed.xml``, ``2024-01-01``). A dotted
    ``KEY`` builds nested tables: ``user_agent.app_id=x`` gives
    ``{"user_agent": {"app_id": "x"}}``.

    Args:
        items: the ``KEY=VALUE`` strings, in order.

    Returns:
        The params.

    Raises:
        ValueError: an item has no ``=``, a key part is empty or not
            ``[A-Za-z0-9_-]``, a key is given twice, or a key is both a value
            and a table (the message names the item).

    """
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--param {item!r}: expected KEY=VALUE")
        parts = key.strip().split(".")
        bad = [p for p in parts if not _KEY_RE.fullmatch(p)]
        if bad:
            raise ValueError(
                f"--param {item!r}: key part {bad[0]!r} is not letters, digits, '_' or '-'"
            )
        table = params
        for depth, part in enumerate(parts[:-1]):
            sub = table.setdefault(part, {})
            if not isinstance(sub, dict):
                where = ".".join(parts[: depth + 1])
                raise ValueError(f"--param {item!r}: {where} is already a value, not a table")
            table = sub
        leaf = parts[-1]
        if leaf in table:
            what = "a table" if isinstance(table[leaf], dict) else "given already"
            raise ValueError(f"--param {item!r}: {key.strip()} is {what}")
        table[leaf] = _scalar(raw)
    return params


# ---------------------------------------------------------------------------- output


def _every(seconds: int) -> str:
    """``900`` → ``15m``; ``3600`` → ``1h``; ``86400`` → ``1d``; ``90`` → ``90s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _flatten(params: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in params.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            shown = value if isinstance(value, str) else json.dumps(value, default=str)
            yield f"{prefix}{key}={shown}"


def _summary(feed: FeedView) -> str:
    """The (already redacted) params as ``key=value, ...``, or the error of an invalid table."""
    if feed.error is not None:
        return f"INVALID: {feed.error}"
    return ", ".join(_flatten(feed.params))


# ---------------------------------------------------------------------------- commands


@feeds_app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(help="A unique name: lowercase letters, digits, '.', '_', '-'.")
    ],
    source: Annotated[
        str,
        typer.Option("--source", help=f"The source kind: {', '.join(SOURCE_KINDS)}."),
    ],
    interval: Annotated[
        int | None,
        typer.Option(
            "--interval",
            help="Seconds between harvests, >= 60 (default: rss 3600, hn 900, reddit 900, "
            "github 300, fred 86400).",
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="A source parameter KEY=VALUE (repeatable). VALUE is a TOML number, boolean "
            'or "quoted string", else text; a dotted KEY (user_agent.app_id=x) makes a table.',
        ),
    ] = None,
    allow_private: Annotated[
        bool,
        typer.Option(
            "--allow-private",
            help="Let this feed connect to private addresses (loopback, RFC 1918, link-local, "
            "CGNAT...), refused by default (SSRF guard): for a feed on this machine or network.",
        ),
    ] = False,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a feed to the vault's echo.toml.

    The parameters are checked by the source as the harvester will use them
    (a missing or invalid parameter is named, and nothing is written). The
    feed is appended as a feeds table; the rest of the file, comments
    included, is kept as it is.
    """
    try:
        params = parse_params(param or [])
    except ValueError as exc:
        _fail(str(exc), 2)
    with _errors():
        feed = feed_service.add_feed(
            vault_dir(ctx, vault),
            name,
            source,
            interval=interval,
            params=params,
            allow_private=allow_private,
        )
    if as_json:
        _emit(feed.to_json())
    else:
        every = _every(feed.interval or 0)
        out.print(f"added feed {feed.name} ({feed.source}, every {every})", markup=False)


@feeds_app.command("list")
def list_(ctx: typer.Context, vault: VaultOpt = None, as_json: JsonOpt = False) -> None:
    """List the configured feeds: name, source, interval, enabled, parameters.

    A feed allowed to reach private addresses (``allow_private``, the SSRF
    guard off for it) says "private ok" under enabled.

    Credentials are masked (URL user:password@ removed; token, api_key,
    password... values shown as REDACTED). A feeds table that is not a usable
    feed is listed with its error, and the other feeds as usual.
    """
    directory = vault_dir(ctx, vault)
    with _errors():
        config = feed_service.config_file(directory)
        feeds = feed_service.list_feeds(directory)
    if as_json:
        _emit([f.to_json() for f in feeds])
        return
    if not feeds:
        out.print("no feeds configured; add one with `echoctl feeds add`")
        return
    table = Table(title=safe(f"{len(feeds)} feed(s) in {config}"))
    for col in ("name", "source", "interval", "enabled", "params"):
        table.add_column(col, overflow="fold")
    for f in feeds:
        enabled = "yes" if f.enabled else "[yellow]no[/]"
        if f.allow_private:  # the SSRF guard is off for this feed: say so
            enabled += "\n[yellow]private ok[/]"
        interval = "?" if f.interval is None else _every(f.interval)
        params = safe(_summary(f))
        table.add_row(
            safe(f.name or f"feeds.{f.position}"),
            safe(f.source or "?"),
            interval,
            enabled,
            f"[red]{params}[/]" if f.error else params,
        )
    out.print(table)
    invalid = [f for f in feeds if f.error is not None]
    if invalid:
        err.print(
            f"warning: {len(invalid)} feed table(s) are invalid and fail at harvest "
            "(fix them in echo.toml, or `echoctl feeds remove NAME`)",
            markup=False,
        )


@feeds_app.command("remove")
def remove(
    ctx: typer.Context, name: NameArg, vault: VaultOpt = None, as_json: JsonOpt = False
) -> None:
    """Remove a feed from the vault's echo.toml.

    What was already archived from the feed stays in the vault: the log is
    append-only. Only the configuration changes.
    """
    with _errors():
        feed = feed_service.remove_feed(vault_dir(ctx, vault), name)
    if as_json:
        _emit({"removed": name, "feed": feed.to_json() if feed is not None else None})
    else:
        out.print(f"removed feed {name}", markup=False)


def _set(ctx: typer.Context, name: str, enabled: bool, vault: Path | None, as_json: bool) -> None:
    with _errors():
        changed = feed_service.set_feed_enabled(vault_dir(ctx, vault), name, enabled).changed
    state = "enabled" if enabled else "disabled"
    if as_json:
        _emit({"name": name, "enabled": enabled, "changed": changed})
    else:
        text = f"{state} feed {name}" if changed else f"feed {name} was already {state}"
        out.print(text, markup=False)


@feeds_app.command("enable")
def enable(
    ctx: typer.Context, name: NameArg, vault: VaultOpt = None, as_json: JsonOpt = False
) -> None:
    """Enable a feed: the harvester collects it again at its interval.

    Sets enabled = true in its feeds table; does nothing if it is enabled.
    """
    _set(ctx, name, True, vault, as_json)


@feeds_app.command("disable")
def disable(
    ctx: typer.Context, name: NameArg, vault: VaultOpt = None, as_json: JsonOpt = False
) -> None:
    """Disable a feed: the harvester skips it, and its configuration is kept.

    Sets enabled = false in its feeds table; does nothing if it is disabled.
    """
    _set(ctx, name, False, vault, as_json)
