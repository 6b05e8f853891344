"""Shared fixtures: real vaults in temporary directories, and the shared data folders."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from echo_archive import faults
from echo_archive.vault.vault import Record, Vault

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared_dir(*parts: str) -> Path:
    """Return a folder under ../shared, failing loudly in CI and skipping elsewhere if absent."""
    path = SHARED.joinpath(*parts)
    if not path.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"shared data folder {path} is missing in CI")
        pytest.skip(f"shared data folder {path} is not present on this machine")
    return path


def require_tool(name: str, install: str) -> str:
    """The path of the command ``name``: failing loudly in CI and skipping elsewhere if absent.

    Args:
        name: the executable (``promtool``, ``systemd-analyze``...), looked up
            next to this interpreter (a console script of its venv), then on PATH.
        install: how it gets installed, for the message (``.ci/run`` installs
            the Debian packages the tests need when they are missing).
    """
    search = os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", "")))
    found = shutil.which(name, path=search)  # a console script of this venv, then PATH
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is missing in CI ({install})")
        pytest.skip(f"{name} is not installed ({install})")
    return found


@pytest.fixture(autouse=True)
def _own_verified_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Each test remembers verified checkpoints in its own directory (many share an origin)."""
    monkeypatch.setenv("ECHO_VERIFIED_DIR", str(tmp_path_factory.mktemp("verified")))


@pytest.fixture(autouse=True)
def _no_faults() -> Iterator[None]:
    faults.disarm()
    yield
    faults.disarm()


@pytest.fixture
def vault_path(tmp_path: Path) -> Path:
    """A fresh, closed vault at tmp_path/vault."""
    path = tmp_path / "vault"
    Vault.create(path, origin="echo.archive/test0000deadbeef").close()
    return path


def run_echoctl(
    *args: str,
    env: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """The real CLI (``python -m echo_archive ARGS``) in a subprocess, its output as text.

    Args:
        args: the command line after ``echoctl``.
        env: variables set on top of this process's environment.
        drop: variables removed from it (e.g. ``FORCE_COLOR``).
        timeout: seconds before the run is killed (``subprocess.TimeoutExpired``).
    """
    base = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run(
        [sys.executable, "-m", "echo_archive", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=timeout,
        check=False,
    )


def file_meta(name: str, size: int = 0) -> dict[str, object]:
    """The meta of a ``file`` capture named ``name`` (as ``echoctl add`` writes it)."""
    return {"kind": "file", "name": name, "size": size, "mtime": "2026-11-20T09:12:44.000000Z"}


def sample_records(n: int, start: int = 0, size: int = 2048) -> list[Record]:
    """``n`` file capture records of ~``size`` bytes of JSON each, distinct content."""
    out = []
    for i in range(start, start + n):
        body = (f'{{"id": {i}, "title": "item {i}", "text": "' + "x" * size)[: size - 2] + '"}'
        meta = file_meta(f"item-{i}.json", len(body))
        out.append(Record(type="capture", meta=meta, blobs={"body": body.encode()}))
    return out


def lingering_children(seconds: float) -> list[multiprocessing.process.BaseProcess]:
    """The child processes still alive after waiting up to ``seconds`` for them to leave."""
    deadline = time.monotonic() + seconds
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    return multiprocessing.active_children()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail, never hang, when worker processes outlive the suite.

    A worker left running (a broken process pool that did not terminate its
    other workers, say) would block the interpreter's exit forever, since
    :mod:`multiprocessing` joins its children at exit: CI would time out with
    every test green. They are given 20 s to leave, then killed and the run
    marked failed, naming them.
    """
    left = lingering_children(20)
    if not left:
        return
    for child in left:
        child.kill()
        child.join(5)
    print(f"\nworker processes outlived the test session (killed): {left}")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
