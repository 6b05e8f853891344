"""Read-only audits: every reading command works on a vault nobody may write.

A vault is audited by people who may read it but not write it (another user,
a read-only bind mount, a backup on write-once media). The reading commands
must then work and leave every byte as it was: SQLite is opened read-only and,
where no ``-shm`` can be made, ``immutable`` (https://www.sqlite.org/uri.html,
https://www.sqlite.org/wal.html "read-only databases"); the verifier key is a
0644 file outside the 0700 ``keys/``.

File permissions do not bind root, so when the tests run as root the commands
run as the unprivileged ``nobody`` (``subprocess.run(user=...)``), and a
read-only bind mount is tried for the filesystem case (skipped where mounting
is not allowed). Each skip says which case could not be exercised.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from echo_archive.errors import VaultError
from echo_archive.vault import catalog
from echo_archive.vault.vault import LEGACY_VKEY_FILE, VKEY_FILE, Vault

from .conftest import run_echoctl, sample_records, shared_dir

FEED = ("corpora", "feeds", "feedjira")
REPO = Path(__file__).resolve().parent.parent


def _reader_prefix() -> list[str]:
    """The command prefix that runs a program as a user who may not write the vault.

    Ourselves when we are not root (permissions bind us); as root, ``setpriv``
    to ``nobody`` with no supplementary groups and no capabilities left.
    """
    if os.geteuid() != 0:
        return []
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root and there is no user `nobody` to run the commands as")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and no setpriv(1) to run the commands as `nobody`")
    return [setpriv, f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"]


def _run_as_reader(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COV_", "PYTEST"))}
    env["HOME"] = str(cwd)
    env["PYTHONPATH"] = str(REPO / "src")
    env["ECHO_VERIFIED_DIR"] = str(cwd / ".verified")  # the reader's own state, not root's
    return subprocess.run(
        [*_reader_prefix(), *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def _as_reader(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``echoctl ARGS`` as a user who may not write the vault (``nobody`` when we are root)."""
    return _run_as_reader([sys.executable, "-m", "echo_archive", *args], cwd)


def _snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``root`` (name, mode, bytes): to prove nothing changed or appeared."""
    return {
        str(p.relative_to(root)): (p.stat().st_mode, p.stat().st_size, p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file() and os.access(p, os.R_OK)
    }


def _freeze(root: Path) -> None:
    """``chmod -R a-w root``."""
    for p in [root, *root.rglob("*")]:
        p.chmod(stat.S_IMODE(p.stat().st_mode) & ~0o222)


def _thaw(root: Path) -> None:
    for p in [root, *root.rglob("*")]:
        p.chmod(stat.S_IMODE(p.stat().st_mode) | 0o200)


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory other users may enter (pytest's tmp_path is under a 0700 directory)."""
    d = Path(tempfile.mkdtemp(prefix="echo-ro-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        _thaw(d)
        shutil.rmtree(d)


def _filled_vault(where: Path) -> tuple[Path, str]:
    """A vault with a file capture and the items of a real feed; returns it and an item ref."""
    vault = where / "vault"
    Vault.create(vault, origin="echo.archive/test0000deadbeef").close()
    with Vault.open(vault) as v:
        v.commit(sample_records(3))
    feed = shared_dir(*FEED) / "TechCrunch.xml"
    r = run_echoctl("--vault", str(vault), "import", str(feed))
    assert r.returncode == 0, r.stderr
    r = run_echoctl("--vault", str(vault), "items", "--json", "--limit", "1")
    assert r.returncode == 0, r.stderr
    ref = str(json.loads(r.stdout)["entries"][0]["index"])
    wal = Path(f"{vault / 'catalog.sqlite'}-wal")  # a reader closed last: an empty -wal left
    assert not wal.exists() or wal.stat().st_size == 0  # the main file is the whole database
    return vault, ref


def _reading_commands(vault: Path, ref: str, out: Path) -> list[list[str]]:
    return [
        ["verify"],
        ["verify", "--full", "--json"],
        ["checkpoint"],
        ["checkpoint", "--json"],
        ["log", "inclusion", "0"],
        ["log", "consistency", "1", "3"],
        ["prove", "1", "--out", str(out / "bundle.json")],
        ["items"],
        ["items", "--json"],
        ["show", ref],
        ["captures"],
        ["cat", "0", "--out", str(out / "cat.bin")],
        ["reports"],
        ["breakers"],
        ["feeds", "list"],
    ]


@pytest.mark.slow
def test_reading_commands_work_for_a_user_who_may_not_write_the_vault(public_dir: Path) -> None:
    vault, ref = _filled_vault(public_dir)
    assert stat.S_IMODE((vault / VKEY_FILE).stat().st_mode) == 0o644
    assert stat.S_IMODE((vault / "keys").stat().st_mode) == 0o700
    out = public_dir / "out"
    out.mkdir()
    out.chmod(0o777)
    _freeze(vault)
    before = _snapshot(vault)
    for args in _reading_commands(vault, ref, out):
        r = _as_reader("--vault", str(vault), *args, cwd=out)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
    assert _snapshot(vault) == before  # no byte changed, no -wal/-shm/lock file appeared
    bundle = run_echoctl("verify-proof", str(out / "bundle.json"), "--vkey", str(vault / VKEY_FILE))
    assert bundle.returncode == 0, bundle.stdout
    assert (out / "cat.bin").read_bytes().startswith(b'{"id": 0')


@pytest.mark.slow
def test_reading_commands_work_on_a_read_only_filesystem(public_dir: Path) -> None:
    vault, ref = _filled_vault(public_dir)
    for suffix in ("-wal", "-shm"):  # as every writer leaves it: the main files alone
        for db in (vault / "catalog.sqlite", vault / "blobs" / "blobs.sqlite"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    mnt = public_dir / "mnt"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(vault), str(mnt)], capture_output=True, check=False
    )
    if r.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here: {r.stderr.decode().strip()}")
    try:
        if os.access(mnt, os.W_OK) and _try_write(mnt):
            pytest.skip("the bind mount is not read-only on this kernel")
        out = public_dir / "out"
        out.mkdir()
        before = _snapshot(vault)
        for args in _reading_commands(mnt, ref, out):
            res = run_echoctl("--vault", str(mnt), *args)
            assert res.returncode == 0, (args, res.stdout, res.stderr)
        assert _snapshot(vault) == before
        w = run_echoctl("--vault", str(mnt), "add", str(vault / "echo.toml"))
        assert w.returncode == 1, w.stderr
        assert "Traceback" not in w.stderr
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def _try_write(d: Path) -> bool:
    try:
        (d / ".probe").write_bytes(b"")
    except OSError:
        return False
    (d / ".probe").unlink()
    return True


def _vault_with_live_wal(where: Path) -> Path:
    """A copy of a vault taken while a reader held its catalog: the -wal holds commits."""
    src = where / "src"
    Vault.create(src, origin="echo.archive/test0000deadbeef").close()
    holders = [sqlite3.connect(src / "catalog.sqlite"), sqlite3.connect(src / "blobs/blobs.sqlite")]
    for h in holders:
        h.execute("SELECT 1 FROM sqlite_master").fetchall()
    with Vault.open(src) as v:
        v.commit(sample_records(3))
    copy = where / "vault"
    shutil.copytree(src, copy)
    for h in holders:
        h.close()
    assert Path(f"{copy / 'catalog.sqlite'}-wal").stat().st_size > 0
    return copy


@pytest.mark.slow
def test_a_catalog_with_a_live_wal_is_read_through_its_shm_or_refused_by_name(
    public_dir: Path,
) -> None:
    vault = _vault_with_live_wal(public_dir)
    _freeze(vault)
    before = _snapshot(vault)
    r = _as_reader("--vault", str(vault), "verify", "--json", cwd=public_dir)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["log_size"] == 3  # the commits in the -wal were read
    assert _snapshot(vault) == before
    # without the -shm, a reader cannot read the -wal without writing: a clear error
    vault.chmod(0o755)
    Path(f"{vault / 'catalog.sqlite'}-shm").unlink()
    vault.chmod(0o555)
    r = _as_reader("--vault", str(vault), "verify", "--json", cwd=public_dir)
    assert r.returncode == 1, r.stdout
    err = json.loads(r.stderr)["error"]
    assert f"{vault / 'catalog.sqlite'}-wal" in err["message"], err
    assert "open the vault once as its owner" in err["message"]


def test_readonly_uri_chooses_immutable_only_without_a_wal(public_dir: Path) -> None:
    tmp_path = public_dir / "db"
    tmp_path.mkdir()
    db = tmp_path / "x.sqlite"
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("CREATE TABLE t(x)")
    con.commit()
    con.close()
    assert catalog.readonly_uri(db).endswith("?mode=ro")  # a writable directory
    probe = (
        "import sys; from pathlib import Path; from echo_archive.vault.catalog import "
        "readonly_uri; print(readonly_uri(Path(sys.argv[1])))"
    )
    tmp_path.chmod(0o555)
    try:  # as a user who may not write the directory (nobody, when we are root)
        r = _run_as_reader([sys.executable, "-c", probe, str(db)], public_dir)
    finally:
        tmp_path.chmod(0o755)
    assert r.stdout.strip().endswith("?mode=ro&immutable=1"), r.stderr


# ---------------------------------------------------------------------------- verifier key
def test_an_old_vault_keeps_its_verifier_key_in_keys_and_a_writer_copies_it_out(
    vault_path: Path,
) -> None:
    new, old = vault_path / VKEY_FILE, vault_path / LEGACY_VKEY_FILE
    vkey = new.read_text()
    new.rename(old)  # as vaults made before it were laid out
    with Vault.open(vault_path, readonly=True) as r:  # the reader falls back
        assert r.verifier.vkey + "\n" == vkey
    assert not new.exists()
    with Vault.open(vault_path) as w:
        w.commit(sample_records(1))
    assert new.read_text() == vkey
    assert stat.S_IMODE(new.stat().st_mode) == 0o644
    other = vault_path.parent / "other"
    Vault.create(other, origin="echo.archive/test0000deadbeef").close()
    new.write_text((other / VKEY_FILE).read_text())  # two different keys: refuse, naming both
    with pytest.raises(VaultError, match="hold different verifier keys"):
        Vault.open(vault_path, readonly=True)


def test_an_unreadable_old_verifier_key_says_how_to_fix_it(public_dir: Path) -> None:
    vault = public_dir / "vault"
    Vault.create(vault, origin="echo.archive/test0000deadbeef").close()
    (vault / VKEY_FILE).rename(vault / LEGACY_VKEY_FILE)
    if os.geteuid() != 0:
        (vault / "keys").chmod(0o700)
    r = _as_reader("--vault", str(vault), "verify", cwd=public_dir)
    assert r.returncode == 1
    assert str(vault / LEGACY_VKEY_FILE) in r.stderr, r.stderr
    assert "open it once as its owner" in r.stderr


# ---------------------------------------------------------------------------- signing key
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_signing_key_others_may_read_is_refused_for_signing(vault_path: Path, mode: int) -> None:
    key = vault_path / "keys" / "signing.key"
    key.chmod(mode)
    with pytest.raises(VaultError, match=rf"chmod 600 {key}") as info:
        Vault.open(vault_path)
    assert f"mode {mode:04o}" in str(info.value)
    with Vault.open(vault_path, readonly=True) as r:  # reading needs no signing key
        assert r.size == 0
    key.chmod(0o600)
    with Vault.open(vault_path) as w:
        w.commit(sample_records(1))


def test_add_with_a_loose_signing_key_fails_with_the_fix_and_writes_nothing(
    vault_path: Path, tmp_path: Path
) -> None:
    key = vault_path / "keys" / "signing.key"
    key.chmod(0o644)
    f = tmp_path / "memo.txt"
    f.write_text("memo")
    before = _snapshot(vault_path)
    r = run_echoctl("--vault", str(vault_path), "add", str(f), "--json")
    assert r.returncode == 1
    err = json.loads(r.stderr)["error"]  # one JSON object, the fix in its message
    assert f"chmod 600 {key}" in err["message"], err
    assert _snapshot(vault_path) == before
