"""``echoctl alerts rules|list`` and ``echoctl silence add|list|expire``.

Thin shells over :mod:`echo_archive.control` (alert rules and their state,
silences). Registered on the main app by :mod:`echo_archive.cli`
(``alerts_app``, ``silence_app``). Labels and annotations may hold text from
sources (an error message): every one is printed through
:func:`~echo_archive.cli.common.safe`; ``--json`` prints the exact strings.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from echo_archive.cli.common import (
    JsonOpt,
    VaultOpt,
    WaitOpt,
    compact_table,
    fail,
    login_name,
    open_vault,
    open_writer,
    out,
    safe,
    vault_dir,
)
from echo_archive.cli.common import emit as _emit
from echo_archive.cli.common import errors as _errors
from echo_archive.config import load_config
from echo_archive.control.alertrules import rules_from_config
from echo_archive.control.alerts import Alert, rfc3339, rules_yaml
from echo_archive.control.alertstore import (
    add_silence,
    alert_status,
    expire_silence,
    list_silences,
)
from echo_archive.control.matchers import parse_matcher
from echo_archive.control.silences import Silence, new_silence, parse_duration
from echo_archive.vault.lock import DEFAULT_WAIT

__all__ = ["alerts_app", "silence_app"]

alerts_app = typer.Typer(
    help="ECHO's alert rules (Prometheus semantics) and the alerts they raise.",
    no_args_is_help=True,
)
silence_app = typer.Typer(
    help="Silences: mute the alerts whose labels match, until they expire (Alertmanager's).",
    no_args_is_help=True,
)


def _second(epoch: float | None) -> str:
    """POSIX seconds as RFC 3339 UTC to the second, ``-`` for None."""
    return "-" if epoch is None else rfc3339(epoch).split(".")[0] + "Z"


@alerts_app.command("rules")
def rules(ctx: typer.Context, vault: VaultOpt = None, as_json: JsonOpt = False) -> None:
    """Print ECHO's alerting rules as a Prometheus rules file (YAML ``groups:``).

    The rules the service evaluates, as PromQL over the metrics it exports
    at ``/metrics`` (``echo_feed_failure_ratio``, ``echo_disk_free_ratio``...),
    for operators who run their own Prometheus: ``echoctl alerts rules >
    echo-rules.yml``, then list the file under ``rule_files``. With a vault
    whose ``echo.toml`` has ``[alerts.rules.<Name>]`` changes, they are
    applied. ``promtool check rules`` accepts the file. --json: a list of
    ``{"name", "expr", "for", "keep_firing_for" (seconds), "labels",
    "annotations"}``.
    """
    with _errors():
        toml = vault_dir(ctx, vault) / "echo.toml"
        section = load_config(toml).alerts if toml.is_file() else None
        found = rules_from_config(section)
    if as_json:
        _emit([r.to_json() for r in found])
        return
    sys.stdout.write(rules_yaml(found))
    sys.stdout.flush()


def _labels_text(alert: Alert) -> str:
    shown = {k: v for k, v in sorted(alert.labels.items()) if k not in ("alertname", "severity")}
    return " ".join(f"{k}={v}" for k, v in shown.items())


@alerts_app.command("list")
def list_alerts(ctx: typer.Context, vault: VaultOpt = None, as_json: JsonOpt = False) -> None:
    """List the alerts firing and pending, as the service last saved them.

    One line per alert: state (firing, pending), name, severity, labels,
    since when (RFC 3339 UTC), summary, and ``muted`` when a silence or an
    inhibition keeps it out of notifications. Read-only: works beside a
    running service and on a read-only vault. --json: a list of alerts
    (``rule``, ``labels``, ``annotations``, ``state``, ``active_at``,
    ``fired_at``, ``last_true_at``, ``value``, ``fingerprint``,
    ``silenced_by``, ``inhibited``; times in POSIX seconds).
    """
    with _errors(), open_vault(ctx, vault) as v:
        alerts = alert_status(v, time.time())
    if as_json:
        _emit([a.to_json() for a in alerts])
        return
    table = compact_table(f"{len(alerts)} alert(s)")
    for col in ("state", "alert", "severity", "labels", "since", "summary"):
        table.add_column(col, overflow="fold")
    for a in alerts:
        state = a.state + (" (muted)" if a.muted else "")
        table.add_row(
            state,
            safe(a.rule),
            safe(a.labels.get("severity", "")),
            safe(_labels_text(a)),
            _second(a.fired_at if a.fired_at is not None else a.active_at),
            safe(a.annotations.get("summary", "")),
        )
    out.print(table)


def _silence_json(silence: Silence, now: float) -> dict[str, object]:
    doc = silence.to_json(now)
    doc["matchers_text"] = [str(m) for m in silence.matchers]
    doc["starts"] = rfc3339(silence.starts_at)
    doc["ends"] = rfc3339(silence.ends_at)
    return doc


@silence_app.command("add")
def add(
    ctx: typer.Context,
    matchers: Annotated[
        list[str],
        typer.Argument(
            help="Label matchers, all of which an alert must match: NAME=VALUE, NAME!=VALUE, "
            'NAME=~REGEX, NAME!~REGEX (e.g. alertname=EchoFeedStale feed=~"bbc-.*").',
            show_default=False,
        ),
    ],
    duration: Annotated[
        str,
        typer.Option(
            "--for", metavar="DURATION", help="How long it mutes: 90s, 30m, 2h, 1d, or seconds."
        ),
    ] = "2h",
    comment: Annotated[str, typer.Option("--comment", metavar="TEXT", help="Why (required).")] = "",
    author: Annotated[
        str | None,
        typer.Option("--author", metavar="NAME", help="Who (default: the login name)."),
    ] = None,
    vault: VaultOpt = None,
    wait: WaitOpt = DEFAULT_WAIT,
    as_json: JsonOpt = False,
) -> None:
    """Add a silence: the alerts matching every MATCHER send no notification until it expires.

    The silence starts now and lasts --for DURATION (default 2h); it needs a
    --comment, and at least one matcher that does not match an empty label
    (it can never mute everything). Matching is Alertmanager's: regexes are
    anchored, a missing label is the empty string. A running service applies
    it at its next cycle. Prints the silence's id (for `echoctl silence
    expire ID`). --json: the silence (``id``, ``matchers``, ``startsAt``,
    ``endsAt`` in POSIX seconds, ``starts``/``ends`` in RFC 3339, ``createdBy``,
    ``comment``, ``status``).
    """
    now = time.time()
    try:
        parsed = [parse_matcher(m) for m in matchers]
        seconds = parse_duration(duration)
        silence = new_silence(
            parsed,
            duration=seconds,
            comment=comment,
            created_by=author if author is not None else login_name(),
            now=now,
        )
    except ValueError as exc:
        fail(str(exc), 2, kind="request")
    with _errors(), open_writer(ctx, vault, wait) as w:
        add_silence(w, silence)
    if as_json:
        _emit(_silence_json(silence, now))
        return
    out.print(
        f"silence {silence.id} added: mutes {safe(', '.join(map(str, silence.matchers)))} "
        f"until {_second(silence.ends_at)}"
    )


@silence_app.command("list")
def list_(
    ctx: typer.Context,
    all_: Annotated[
        bool, typer.Option("--all", help="Also list expired silences (kept 5 days).")
    ] = False,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the silences active or pending (with --all, expired ones too).

    Columns: id, state, matchers, start and end (RFC 3339 UTC), author,
    comment. --json: a list of silences as `silence add --json` prints them.
    """
    now = time.time()
    with _errors(), open_vault(ctx, vault) as v:
        found = list_silences(v, now, expired=all_)
    if as_json:
        _emit([_silence_json(s, now) for s in found])
        return
    table = compact_table(f"{len(found)} silence(s)")
    for col in ("id", "state", "matchers", "starts", "ends", "by", "comment"):
        table.add_column(col, overflow="fold")
    for s in found:
        table.add_row(
            s.id,
            s.state(now),
            safe(", ".join(map(str, s.matchers))),
            _second(s.starts_at),
            _second(s.ends_at),
            safe(s.created_by),
            safe(s.comment),
        )
    out.print(table)


@silence_app.command("expire")
def expire(
    ctx: typer.Context,
    silence_id: Annotated[str, typer.Argument(metavar="ID", help="The silence's id.")],
    vault: VaultOpt = None,
    wait: WaitOpt = DEFAULT_WAIT,
    as_json: JsonOpt = False,
) -> None:
    """End a silence now: the alerts it muted notify again at their group's next look.

    An unknown ID is an error (exit 1); a silence already expired stays as
    it was. --json: the silence, as `silence add --json` prints it.
    """
    now = time.time()
    with _errors(), open_writer(ctx, vault, wait) as w:
        silence = expire_silence(w, silence_id, now)
    if as_json:
        _emit(_silence_json(silence, now))
        return
    out.print(f"silence {silence.id} expired at {_second(silence.ends_at)}")
