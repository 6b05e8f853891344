"""``echoctl keys|users|audit|breakglass`` over a real vault (CliRunner; one real subprocess)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from typer.testing import CliRunner

from echo_archive.api.keys import KeyStore
from echo_archive.api.users import authenticate_password
from echo_archive.vault.vault import Vault

from .conftest import REPO

runner = CliRunner()


def cli(vault: Path, *args: str, input: str | None = None) -> tuple[int, str, str]:
    from echo_archive.cli import app

    result = runner.invoke(app, ["--vault", str(vault), *args], input=input)
    return result.exit_code, result.stdout, result.stderr


def test_keys_create_list_revoke(vault_path: Path) -> None:
    code, out, _ = cli(vault_path, "keys", "create", "ci", "--role", "editor", "--json")
    assert code == 0
    made = json.loads(out)
    key = made["key"]
    assert made["record"]["role"] == "editor"
    assert made["record"]["state"] == "active"
    with Vault.open(vault_path, readonly=True) as v:
        assert KeyStore(v, None, {}, lambda: 0.0).authenticate(key).name == "ci"
    code, out, _ = cli(vault_path, "keys", "list", "--json")
    assert code == 0
    assert key not in out
    assert "hash" not in out
    assert [k["name"] for k in json.loads(out)] == ["ci"]
    code, out, _ = cli(vault_path, "keys", "list")
    assert code == 0
    assert "ci" in out
    assert key not in out
    code, out, _ = cli(vault_path, "keys", "revoke", made["record"]["id"], "--json")
    assert code == 0
    assert json.loads(out)["state"] == "revoked"
    code, _, err = cli(vault_path, "keys", "revoke", "nobody")
    assert code == 1
    assert "no API key named 'nobody'" in err


def test_keys_create_refuses_hostile_names_roles_and_expiry(vault_path: Path) -> None:
    code, out, err = cli(vault_path, "keys", "create", "evil\x1b]52;c;x\x07", "--role", "viewer")
    assert code == 2
    assert out == ""
    assert "\x1b" not in err
    assert "\\x1b" in err
    code, _, err = cli(vault_path, "keys", "create", "k", "--role", "root")
    assert code == 2
    assert "unknown role" in err
    code, _, err = cli(vault_path, "keys", "create", "k", "--role", "viewer", "--expires", "soon")
    assert code == 2
    assert "expires" in err
    code, _, err = cli(vault_path, "keys", "create", "k", "--role", "viewer", "--group", "g")
    assert code == 2
    assert "[api.groups]" in err


def test_keys_expires_as_duration_and_rfc3339(vault_path: Path) -> None:
    code, out, _ = cli(
        vault_path, "keys", "create", "a", "--role", "viewer", "--expires", "2h", "--json"
    )
    rec = json.loads(out)["record"]
    assert code == 0
    assert 7190 < rec["expires_at"] - rec["created_at"] <= 7200
    code, out, _ = cli(
        vault_path,
        "keys",
        "create",
        "b",
        "--role",
        "viewer",
        "--expires",
        "2999-01-01T00:00:00Z",
        "--json",
    )
    assert code == 0
    assert json.loads(out)["record"]["expires"].startswith("2999-01-01T00:00:00")


def test_users_and_the_audit_trail(vault_path: Path) -> None:
    code, out, _ = cli(
        vault_path, "users", "add", "alice", "--role", "admin", input="correct horse\n"
    )
    assert code == 0
    assert "alice" in out
    assert "correct horse" not in out
    code, out, _ = cli(vault_path, "users", "list", "--json")
    assert json.loads(out) == [
        {**json.loads(out)[0], "name": "alice", "role": "admin", "group": None}
    ]
    assert "argon2" not in out
    code, _, err = cli(vault_path, "users", "add", "bob", "--role", "viewer", input="short\n")
    assert code == 2
    assert "password" in err
    assert "short" not in err.replace("password", "")
    assert cli(vault_path, "users", "passwd", "alice", input="battery staple\n")[0] == 0
    code, out, _ = cli(
        vault_path,
        "breakglass",
        "--for",
        "user:alice",
        "--reason",
        "restore after disk failure",
        "--minutes",
        "5",
        "--json",
    )
    assert code == 0
    assert json.loads(out)["actor"] == "user:alice"
    assert cli(vault_path, "breakglass", "--for", "user:nobody", "--reason", "x" * 12)[0] == 2
    assert cli(vault_path, "users", "remove", "alice")[0] == 0
    code, out, _ = cli(vault_path, "audit", "--json")
    entries = json.loads(out)
    assert [e["action"] for e in entries] == [
        "user.add",
        "user.passwd",
        "breakglass.start",
        "user.remove",
    ]
    assert entries[2]["target"] == "user:alice"
    assert entries[2]["actor"].startswith("cli:")
    assert "correct horse" not in out
    assert "battery staple" not in out
    code, out, _ = cli(vault_path, "audit", "--actor", "nobody", "--json")
    assert code == 0
    assert json.loads(out) == []
    code, out, _ = cli(vault_path, "audit", "--since", "2999-01-01T00:00:00Z")
    assert code == 0
    assert "0 audit entries" in out
    code, _, err = cli(vault_path, "audit", "--since", "yesterday")
    assert code == 2
    assert "--since" in err
    code, out, _ = cli(vault_path, "audit")
    assert code == 0
    assert "4 audit entries" in out
    assert "user:alice" in out


def test_users_add_reads_the_password_from_stdin_in_a_real_process(vault_path: Path) -> None:
    done = subprocess.run(
        [
            str(REPO / ".venv/bin/echoctl"),
            "--vault",
            str(vault_path),
            "users",
            "add",
            "carol",
            "--role",
            "viewer",
        ],
        input="correct horse\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "correct horse" not in done.stdout + done.stderr
    with Vault.open(vault_path, readonly=True) as v:
        assert authenticate_password(v, "carol", "correct horse", groups={}).name == "carol"
