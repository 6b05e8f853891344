"""Boolean flags of every ``echoctl`` command: no ``<bool>`` in --help, and no value taken."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from echo_archive.cli import app

runner = CliRunner()


def _commands() -> list[tuple[list[str], click.Command]]:
    """Every command path (the root, groups and leaves) with its click command."""
    found: list[tuple[list[str], click.Command]] = []

    def walk(path: list[str], cmd: click.Command) -> None:
        found.append((path, cmd))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk([*path, name], sub)

    walk([], get_command(app))
    return found


COMMANDS = _commands()


def test_every_command_is_walked() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "items", "verify", "feeds", "feeds list", "log inclusion", "harvest"} <= names


@pytest.mark.parametrize(
    ("path", "cmd"), COMMANDS, ids=[" ".join(p) or "echoctl" for p, _ in COMMANDS]
)
def test_help_shows_no_bool_placeholder(path: list[str], cmd: click.Command) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "--help" in result.output
    flags = [p for p in cmd.params if isinstance(p, click.Option) and p.is_flag]
    for flag in flags:
        # The flag is listed, and nothing but spaces sits between it and its help text.
        line = next(ln for ln in result.output.splitlines() if f" {flag.opts[0]} " in ln)
        after = line.split(flag.opts[0], 1)[1].strip("│ ")
        assert not after.startswith("<"), line


def test_bool_options_are_flags_that_take_no_value() -> None:
    for path, cmd in COMMANDS:
        for param in cmd.params:
            if isinstance(param, click.Option) and isinstance(
                param.type, click.types.BoolParamType
            ):
                assert param.is_flag, f"{' '.join(path)} {param.opts[0]} takes a value"


def test_a_value_after_a_flag_is_refused_and_options_keep_placeholders(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "echo_archive", "items", "--oldest", "true"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "ECHO_VAULT": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "unexpected extra argument" in proc.stderr
    helped = runner.invoke(app, ["items", "--help"], env={"COLUMNS": "200"})
    limit = next(ln for ln in helped.output.splitlines() if "│ --limit" in ln)
    assert "<int" in limit  # an option that takes a value still shows what it takes
