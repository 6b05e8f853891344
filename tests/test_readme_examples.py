"""The README's Python example of the vault API runs as written on a new vault."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from echo_archive.vault.vault import Vault

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)


def test_the_vault_api_example_runs_on_a_new_vault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (block,) = [b for b in _python_blocks() if "VaultWriter.open" in b]
    Vault.create(tmp_path / "vault").close()
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {"__name__": "readme"})  # noqa: S102 (our own README)
    with Vault.open(tmp_path / "vault", readonly=True) as v:
        assert v.size == 2  # the example's two file captures
        assert {v.entry(i).meta["name"] for i in range(2)} == {"a.txt", "b.txt"}
    assert "echo.archive/" in capsys.readouterr().out  # the printed checkpoint note
    assert os.getcwd() == str(tmp_path)
