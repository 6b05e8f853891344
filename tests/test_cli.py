"""`echoctl` end to end: real subprocesses for the main paths, CliRunner for the rest."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from echo_archive.cli import app
from echo_archive.vault.vault import Vault

from .conftest import REPO, run_echoctl

runner = CliRunner()


def echoctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real console script in a subprocess."""
    return run_echoctl(*args, env=env)


def _all_commands() -> list[str]:
    group = get_command(app)
    names = []
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        sub = getattr(cmd, "commands", None)
        if sub:
            names += [f"{name} {s}" for s in sub]
        else:
            names.append(name)
    return sorted(names)


def test_commands_are_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    commands = _all_commands()
    assert {
        "init",
        "add",
        "verify",
        "checkpoint",
        "log inclusion",
        "log consistency",
        "prove",
        "verify-proof",
    } <= set(commands)
    for name in commands:
        assert f"echoctl {name}" in readme, f"`echoctl {name}` is not documented in README.md"


@pytest.mark.parametrize("name", _all_commands())
def test_every_command_has_help(name: str) -> None:
    result = runner.invoke(app, [*name.split(), "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output
    assert len(result.output) > 200


def test_readme_starts_with_make_run_and_make_test() -> None:
    head = (REPO / "README.md").read_text().split("\n## ")[0]
    assert "make run" in head
    assert "make test" in head
    assert "make test" in (REPO / ".ci" / "run").read_text()


@pytest.mark.slow
def test_full_cycle_in_real_subprocesses(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    r = echoctl("init", str(vault))
    assert r.returncode == 0, r.stderr
    origin = re.search(r"origin: (\S+)", r.stdout)
    vkey = re.search(r"verifier key: (\S+)", r.stdout)
    assert origin
    assert vkey
    assert vkey.group(1).startswith(origin.group(1) + "+")
    assert "PRIVATE" not in r.stdout + r.stderr

    again = echoctl("init", str(vault))
    assert again.returncode == 1
    assert "already holds a vault" in again.stderr

    files = []
    for i in range(3):
        f = tmp_path / f"doc{i}.txt"
        f.write_text(f"evidence {i}\n")
        files.append(str(f))
    r = echoctl("--vault", str(vault), "add", *files, "--json")
    assert r.returncode == 0, r.stderr
    added = json.loads(r.stdout)
    assert [a["index"] for a in added] == [0, 1, 2]
    assert all(a["digest"].startswith("sha256:") and a["checkpoint_size"] == 3 for a in added)

    r = echoctl("verify", "--vault", str(vault))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK" in r.stdout

    r = echoctl("checkpoint", "--vault", str(vault))
    assert r.returncode == 0
    assert r.stdout.startswith(origin.group(1) + "\n3\n")
    assert "\n\n— " in r.stdout

    bundle = tmp_path / "e.json"
    r = echoctl("prove", added[1]["digest"], "--out", str(bundle), "--vault", str(vault))
    assert r.returncode == 0, r.stderr
    r = echoctl("verify-proof", str(bundle), "--vkey", vkey.group(1), "--json")
    assert r.returncode == 0, r.stdout
    report = json.loads(r.stdout)
    assert report["ok"]
    assert report["index"] == 1
    assert report["key_pinned"]
    assert report["entry"]["meta"]["name"] == "doc1.txt"


@pytest.fixture
def cli_vault(tmp_path: Path) -> Path:
    vault = tmp_path / "v"
    assert runner.invoke(app, ["init", str(vault)]).exit_code == 0
    for i in range(5):
        f = tmp_path / f"f{i}.bin"
        f.write_bytes(os.urandom(100 + i))
        assert runner.invoke(app, ["--vault", str(vault), "add", str(f)]).exit_code == 0
    return vault


def test_add_rejects_a_missing_file_before_writing(cli_vault: Path, tmp_path: Path) -> None:
    ok = tmp_path / "ok.txt"
    ok.write_text("fine")
    result = runner.invoke(
        app, ["--vault", str(cli_vault), "add", str(ok), str(tmp_path / "gone.txt")]
    )
    assert result.exit_code == 1
    assert "gone.txt" in result.output
    with Vault.open(cli_vault, readonly=True) as v:
        assert v.size == 5


def test_verify_fails_naming_the_tampered_entry(cli_vault: Path) -> None:
    conn = sqlite3.connect(cli_vault / "catalog.sqlite")
    with conn:
        conn.execute("UPDATE entries SET entry = replace(entry, 'f2', 'f9') WHERE idx = 2")
    conn.close()
    result = runner.invoke(app, ["--vault", str(cli_vault), "verify", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert not report["ok"]
    assert "entry 2" in {p["ref"] for p in report["problems"]}


def test_log_proofs_as_json(cli_vault: Path) -> None:
    from base64 import b64decode

    from echo_archive.vault.merkle import verify_consistency, verify_inclusion

    r = runner.invoke(app, ["--vault", str(cli_vault), "log", "inclusion", "3", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    verify_inclusion(
        b64decode(d["leaf_hash"]),
        3,
        d["size"],
        [b64decode(h) for h in d["proof"]],
        b64decode(d["root_hash"]),
    )
    r = runner.invoke(app, ["--vault", str(cli_vault), "log", "consistency", "2", "5", "--json"])
    assert r.exit_code == 0, r.output
    c = json.loads(r.output)
    verify_consistency(
        2, 5, [b64decode(h) for h in c["proof"]], b64decode(c["old_root"]), b64decode(c["new_root"])
    )
    r = runner.invoke(app, ["--vault", str(cli_vault), "log", "inclusion", "9"])
    assert r.exit_code == 1
    assert "error" in r.output


def test_prove_against_an_older_checkpoint(cli_vault: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    r = runner.invoke(
        app, ["--vault", str(cli_vault), "prove", "1", "--out", str(out), "--size", "2"]
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["verify-proof", str(out), "--json"])
    assert r.exit_code == 0
    assert json.loads(r.output)["size"] == 2
    r = runner.invoke(
        app, ["--vault", str(cli_vault), "prove", "1", "--out", str(out), "--size", "3", "--json"]
    )
    assert r.exit_code == 0
    r = runner.invoke(
        app, ["--vault", str(cli_vault), "prove", "4", "--out", str(out), "--size", "2"]
    )
    assert r.exit_code == 1


def test_checkpoint_json(cli_vault: Path) -> None:
    r = runner.invoke(app, ["--vault", str(cli_vault), "checkpoint", "--json"])
    d = json.loads(r.output)
    assert d["size"] == 5
    assert d["note"].startswith(d["origin"] + "\n5\n" + d["root_hash"] + "\n")


def test_env_var_selects_the_vault(cli_vault: Path) -> None:
    r = echoctl("checkpoint", env={"ECHO_VAULT": str(cli_vault)})
    assert r.returncode == 0
    assert "\n5\n" in r.stdout


def test_unknown_vault_is_a_clear_error(tmp_path: Path) -> None:
    r = runner.invoke(app, ["--vault", str(tmp_path / "none"), "verify"])
    assert r.exit_code == 1
    assert "echoctl init" in r.output
