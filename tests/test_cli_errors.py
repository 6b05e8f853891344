"""`--json` errors: JSON on stderr with the documented exit code, usage errors included."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from echo_archive.cli import app
from echo_archive.vault.vault import Vault

from .itemdata import at, commit_items

runner = CliRunner()


def _vault(tmp_path: Path) -> Path:
    path = tmp_path / "vault"
    with Vault.create(path) as v:
        commit_items(v, "a", [("n0", "title 0")], seen_at=at(0))
    return path


def _error(args: list[str], exit_code: int) -> dict[str, object]:
    result = runner.invoke(app, args)
    assert result.exit_code == exit_code, (result.stdout, result.stderr)
    assert result.stdout == ""  # stdout holds results only
    doc = json.loads(result.stderr)
    assert set(doc) == {"error"}
    error = doc["error"]
    assert isinstance(error, dict)
    assert error["exit"] == exit_code
    assert set(error) == {"code", "exit", "message", "what", "where"}
    return error


def test_service_errors_are_json_with_json(tmp_path: Path) -> None:
    path = _vault(tmp_path)
    error = _error(["--vault", str(path), "items", "--since", "garbage", "--json"], 2)
    assert error["code"] == "request"
    assert error["what"] == "since 'garbage'"
    assert "e.g. 2026-12-05T13:00:00Z" in str(error["message"])
    assert error["where"] == {"command": "echoctl items", "vault": str(path)}  # root --vault
    error = _error(["items", "--vault", str(path), "--cursor", "nope", "--json"], 2)
    assert error["code"] == "cursor"
    assert error["where"] == {"command": "echoctl items", "vault": str(path)}
    error = _error(["--vault", str(path), "show", "rss:a:missing", "--json"], 1)
    assert (error["code"], error["message"]) == ("not_found", "no item rss:a:missing")
    missing = tmp_path / "nothing"
    error = _error(["--vault", str(missing), "show", "1", "--json"], 1)
    assert error["code"] == "vault_not_found"
    assert str(missing) in str(error["message"])


def test_usage_errors_are_json_with_json(tmp_path: Path) -> None:
    path = _vault(tmp_path)
    error = _error(["--vault", str(path), "items", "--json", "--limit", "0"], 2)
    assert (error["code"], error["what"]) == ("bad_parameter", "--limit")
    assert "--limit" in str(error["message"])
    error = _error(["items", "--json", "--bogus"], 2)
    assert (error["code"], error["what"]) == ("no_such_option", "--bogus")
    error = _error(["show", "--json"], 2)
    assert (error["code"], error["what"]) == ("missing_parameter", "REF")
    assert error["where"] == {"command": "echoctl show", "vault": None}


def test_errors_stay_plain_without_json(tmp_path: Path) -> None:
    path = _vault(tmp_path)
    result = runner.invoke(app, ["--vault", str(path), "items", "--since", "garbage"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: since 'garbage'")
    result = runner.invoke(app, ["items", "--bogus"])
    assert result.exit_code == 2
    assert "No such option" in result.stderr
    assert not result.stderr.lstrip().startswith("{")
