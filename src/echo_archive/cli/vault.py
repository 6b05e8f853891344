"""``echoctl init``, ``add``, ``verify``, ``checkpoint``, ``log``, ``prove``, ``verify-proof``.

The vault's own commands: create it, archive files, check it, and give the
signed checkpoint, Merkle proofs and evidence bundles that make it checkable
offline. Registered on the main app by :mod:`echo_archive.cli`
(``register(app)``, ``app.add_typer(log_app, name="log")``).
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from echo_archive.cli.common import (
    JsonOpt,
    VaultOpt,
    WaitOpt,
    err,
    open_vault,
    open_writer,
    out,
    safe,
    vault_dir,
)
from echo_archive.cli.common import emit as _emit
from echo_archive.cli.common import errors as _errors
from echo_archive.cli.common import fail as _fail
from echo_archive.errors import NoteError
from echo_archive.services import proofs
from echo_archive.services.archive import ArchivedFile, add_files
from echo_archive.services.vaults import create_vault
from echo_archive.services.verification import rebuild as rebuild_indexes
from echo_archive.services.verification import verify as verify_vault
from echo_archive.services.verification import verify_evidence
from echo_archive.vault.blobdir import BackendName
from echo_archive.vault.lock import DEFAULT_WAIT
from echo_archive.vault.note import parse_vkey
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import DERIVED_SAMPLE

__all__ = ["log_app", "register"]

log_app = typer.Typer(help="Merkle proofs from the log (RFC 9162), for machines and auditors.")


# ---------------------------------------------------------------------------- init
class BlobsBackend(StrEnum):
    """The ``--blobs`` choices: the blob backends of :mod:`echo_archive.vault.blobdir`."""

    sqlite = "sqlite"
    directory = "directory"


def init(
    ctx: typer.Context,
    path: Annotated[
        Path | None, typer.Argument(help="Where to create the vault (default: --vault).")
    ] = None,
    origin: Annotated[
        str | None,
        typer.Option(help="Log origin (default: a unique echo.archive/<16 hex>); never changes."),
    ] = None,
    blobs: Annotated[
        BlobsBackend,
        typer.Option(
            "--blobs",
            help="Blob store backend: sqlite (rows in one database) or directory "
            "(one file per blob); fixed for the vault's life.",
        ),
    ] = BlobsBackend.sqlite,
    as_json: JsonOpt = False,
) -> None:
    """Create a new vault: config, Ed25519 signing key (0600), verifier key, catalog, blob store.

    Prints the log origin and the verifier key (publish the key: it is what
    makes checkpoints and evidence bundles checkable). Refuses, changing
    nothing, to initialize over an existing vault or a non-empty directory.
    """
    target = path if path is not None else vault_dir(ctx, None)
    with _errors():
        backend: BackendName = "directory" if blobs is BlobsBackend.directory else "sqlite"
        created = create_vault(target, origin=origin, blobs_backend=backend)
    if as_json:
        _emit({"vault": str(target), "origin": created.origin, "vkey": created.vkey})
        return
    out.print(f"Created vault {target}")
    out.print(f"origin: {created.origin}")
    out.print(f"verifier key: {created.vkey}")


# ---------------------------------------------------------------------------- add
def add(
    ctx: typer.Context,
    files: Annotated[
        list[Path], typer.Argument(help="Files (and, with -r, directories) to archive as evidence.")
    ],
    recursive: Annotated[
        bool,
        typer.Option(
            "--recursive", "-r", help="Archive the files below each directory (sorted by path)."
        ),
    ] = False,
    again: Annotated[
        bool,
        typer.Option(
            "--again", help="Archive files the vault already holds (same name and bytes) too."
        ),
    ] = False,
    vault: VaultOpt = None,
    wait: WaitOpt = DEFAULT_WAIT,
    as_json: JsonOpt = False,
) -> None:
    """Archive local files as evidence: a capture entry per file, its content as a blob.

    The entry records the file's base name, size and mtime.

    Prints each file's entry index and SHA-256 digest. With -r, a directory's
    files are archived in path order; symlinks leading out of it and
    symlinked directories are not followed (each is listed as skipped). A
    file the vault already holds as a file capture of the same name and
    bytes is not archived again (its capture's index is printed) unless
    --again: re-running an add that crashed part-way archives only the rest.
    All paths are checked before anything is written; a missing or
    unreadable file stops the command with nothing archived. Files are
    committed in batches of ``[log] batch_size`` through the vault's writer;
    each batch is covered by a signed checkpoint when its lines print.
    Another process writing to the vault (a harvest committing a batch) is
    waited for up to --wait seconds; then the command fails naming it (exit
    1), and no line is printed for what was not archived. --json prints a
    list: each archived file (file, index, digest, size, checkpoint_size,
    "already": false), then each left out ({"file", "index", "already": true}).
    """

    def printed(batch: Sequence[ArchivedFile]) -> None:
        for a in batch:
            out.print(f"{a.index}\t{a.digest}\t{safe(a.file)}")

    with _errors(), open_writer(ctx, vault, wait) as w:
        result = add_files(
            w, files, recursive=recursive, again=again, on_batch=None if as_json else printed
        )
    for f, reason in result.skipped:
        err.print(f"[yellow]skipped:[/] {safe(f)}: {safe(reason)}")
    if as_json:
        archived = [{**a.to_json(), "already": False} for a in result.archived]
        held = [{"file": str(f), "index": i, "already": True} for f, i in result.already]
        _emit(archived + held)
        return
    for f, index in result.already:
        out.print(f"already archived at entry {index}: {safe(f)} (--again archives it again)")


# ---------------------------------------------------------------------------- verify
def verify(
    ctx: typer.Context,
    vault: VaultOpt = None,
    sample: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Fraction of blobs to re-hash, in (0, 1]; "
            "entries and hashes are always all checked.",
        ),
    ] = 1.0,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Rebuild and compare every derived row (default: the entries of a "
            f"{DERIVED_SAMPLE:.0%} sample; the item index is always compared whole).",
        ),
    ] = False,
    vkey: Annotated[
        str | None,
        typer.Option(
            "--vkey",
            help="The log's published verifier key (text, or a file holding it): the "
            "vault's key must be it.",
        ),
    ] = None,
    pinned: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            help="A published checkpoint (signed note file); repeatable. The vault must "
            "hold it and only checkpoints consistent with it.",
        ),
    ] = None,
    verified_dir: Annotated[
        Path | None,
        typer.Option(
            "--verified-dir",
            help="Where the newest verified checkpoint of each origin is remembered "
            "(default: $ECHO_VERIFIED_DIR, else $XDG_STATE_HOME/echo/verified).",
        ),
    ] = None,
    no_remember: Annotated[
        bool,
        typer.Option(
            "--no-remember", help="Neither check against nor update the remembered checkpoint."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Verify the whole vault: blobs, entries, log hashes, checkpoints, derived indexes.

    Re-hashes every blob (or a --sample of them) against its address,
    recomputes every leaf and node hash from the catalog, recomputes the root
    of every stored checkpoint, checks every checkpoint signature and the
    consistency of each checkpoint with the next, then rebuilds the derived
    indexes (leaf lookup, item index, captures, observations) from the log
    and the blobs and compares them row by row with the stored ones (a sample
    of entries, or all with --full). Exit 0 when all holds, 1 with a list
    naming each failing blob, entry, node, checkpoint or derived row (the
    index, the row's key, stored versus rebuilt; `echoctl rebuild NAME`
    repairs an index).

    Pinned verification: with --vkey the vault's verifier key must be the
    published one; each --checkpoint (a C2SP tlog-checkpoint signed note, by
    the --vkey key or else the vault's) must be held by the vault with the
    same size and root, and every later checkpoint must be consistent with it
    (RFC 9162 consistency proofs). The newest checkpoint verified for the
    vault's origin is remembered outside the vault (--verified-dir) and
    pinned the same way next time: a vault that later shows an older or
    inconsistent state fails (rollback and fork detection, RFC 9162 §8.3).
    Each failure names the origin, sizes and roots.
    """
    key = _pinned_key(vkey)
    notes: list[tuple[str, str]] = []
    for f in pinned or []:
        try:
            notes.append((str(f), f.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"--checkpoint {f}: cannot read it: {exc}", 2, kind="usage")
    run = functools.partial(
        verify_vault, vkey=key, checkpoints=notes, remember=not no_remember, state_dir=verified_dir
    )
    with _errors(), open_vault(ctx, vault) as v:
        if as_json or not err.is_terminal:
            report = run(v, sample=sample, full=full)
        else:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            ) as bar:
                tasks: dict[str, Any] = {}

                def progress(phase: str, done: int, total: int) -> None:
                    if phase not in tasks:
                        tasks[phase] = bar.add_task(f"verifying {phase}", total=total)
                    bar.update(tasks[phase], completed=done, total=total)

                report = run(v, sample=sample, progress=progress, full=full)
    if as_json:
        _emit(report.to_json())
    else:
        for w in report.warnings:
            err.print(f"[yellow]warning:[/] {w}")
        if report.problems:
            table = Table(title=f"{len(report.problems)} problem(s)")
            for col in ("kind", "what", "problem"):
                table.add_column(col)
            for p in report.problems:
                table.add_row(safe(p.kind), safe(p.ref), safe(p.message))
            out.print(table)
        rate = report.entries / report.seconds if report.seconds else 0.0
        verdict = "[green]OK[/]" if report.ok else "[bold red]FAILED[/]"
        derived = ", ".join(
            f"{name} {d['rows']} rows" + ("" if d["full"] else f" of {d['entries']} entries")
            for name, d in report.derived.items()
        )
        out.print(
            f"{verdict}: {report.entries} entries, {report.blobs} blobs"
            f"{'' if report.sample == 1 else f' (sample {report.sample:g})'}, "
            f"{report.checkpoints} checkpoints in {report.seconds:.2f} s ({rate:,.0f} entries/s); "
            f"log size {report.log_size}, latest checkpoint {report.checkpoint_size}"
            + (f"; derived: {derived}" if derived else "")
        )
    if not report.ok:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------- rebuild
def rebuild(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(
            help="The derived index to rebuild: leaves, items, item_contents, captures, "
            "observations, search or corrections (default: all)."
        ),
    ] = None,
    vault: VaultOpt = None,
    wait: WaitOpt = DEFAULT_WAIT,
    as_json: JsonOpt = False,
) -> None:
    """Rebuild derived indexes from the log and the blobs (one, or all).

    Empties the index's tables and applies every entry again in one
    transaction (readers see the old rows until it commits); the observation
    index re-parses each HTTP capture body with today's sources. The log and
    the blobs are only read. Run it when `echoctl verify` names a derived
    row that differs from its rebuild.
    """
    started = time.perf_counter()
    with _errors(), open_writer(ctx, vault, wait) as w:
        done, size = w.submit(_rebuild, name).result()
    seconds = time.perf_counter() - started
    if as_json:
        _emit({"rebuilt": done, "log_size": size, "seconds": seconds})
        return
    out.print(f"rebuilt {', '.join(done)} from {size} entries in {seconds:.2f} s")


def _rebuild(v: Vault, name: str | None) -> tuple[list[str], int]:
    """A writer job: rebuild, and the log size rebuilt from."""
    return rebuild_indexes(v, name), v.log_state()[0]


# ---------------------------------------------------------------------------- checkpoint
def checkpoint(ctx: typer.Context, vault: VaultOpt = None, as_json: JsonOpt = False) -> None:
    """Print the latest signed checkpoint, verbatim (C2SP tlog-checkpoint signed note)."""
    with _errors(), open_vault(ctx, vault) as v:
        signed = proofs.latest_checkpoint(v)
        vkey = v.verifier.vkey
    if as_json:
        _emit(proofs.checkpoint_json(signed, vkey))
    else:
        sys.stdout.write(signed.note)


# ---------------------------------------------------------------------------- log
@log_app.command("inclusion")
def log_inclusion(
    ctx: typer.Context,
    index: Annotated[int, typer.Argument(min=0, help="Entry index (0-based).")],
    size: Annotated[
        int | None, typer.Option(min=1, help="Tree size (default: the latest checkpoint's).")
    ] = None,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the RFC 9162 §2.1.3 inclusion proof of entry INDEX in the tree of --size entries.

    Lines: leaf hash, tree size, root hash, then the proof hashes (base64), leaf first.
    """
    with _errors(), open_vault(ctx, vault) as v:
        proof = proofs.inclusion(v, index, size)
    data = proof.to_json()
    if as_json:
        _emit(data)
        return
    out.print(
        f"index {index}\nsize {proof.size}\nleaf {data['leaf_hash']}\nroot {data['root_hash']}"
    )
    for h in data["proof"]:
        out.print(h)


@log_app.command("consistency")
def log_consistency(
    ctx: typer.Context,
    old: Annotated[int, typer.Argument(min=1, help="The earlier tree size.")],
    new: Annotated[
        int | None,
        typer.Argument(min=1, help="The later tree size (default: the latest checkpoint's)."),
    ] = None,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the RFC 9162 §2.1.4 consistency proof between tree sizes OLD and NEW.

    Lines: both sizes and roots, then the proof hashes (base64).
    """
    with _errors(), open_vault(ctx, vault) as v:
        proof = proofs.consistency(v, old, new)
    data = proof.to_json()
    if as_json:
        _emit(data)
        return
    out.print(f"old {old} {data['old_root']}\nnew {proof.new_size} {data['new_root']}")
    for h in data["proof"]:
        out.print(h)


# ---------------------------------------------------------------------------- prove
def prove(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Entry index, or a blob digest (sha256:<hex>).")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the evidence bundle.")],
    size: Annotated[
        int | None,
        typer.Option(
            min=1, help="Prove against the checkpoint of this tree size (default: latest)."
        ),
    ] = None,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write an evidence bundle: entry, blobs, inclusion proof, signed checkpoint, verifier key.

    The bundle (JSON; the proof part is a C2SP tlog-proof) is checked offline,
    with no vault, by `echoctl verify-proof`.
    """
    with _errors(), open_vault(ctx, vault) as v:
        bundle = proofs.evidence_bundle(v, ref, size)
    with _errors():
        proofs.write_bundle(bundle, out_file)
    summary = {"file": str(out_file), "index": bundle.index, "bytes": len(bundle.data)}
    if as_json:
        _emit(summary)
    else:
        out.print(
            f"wrote evidence bundle for entry {bundle.index} to {out_file} "
            f"({len(bundle.data)} bytes)"
        )


def verify_proof(
    file: Annotated[Path, typer.Argument(help="An evidence bundle from `echoctl prove`.")],
    vkey: Annotated[
        str | None,
        typer.Option(
            help="Pin this verifier key (text, or a file holding it) instead of the bundled one."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check an evidence bundle offline, without any vault.

    Exit 0 only if the checkpoint signature, the entry, the inclusion proof and
    every blob digest hold; otherwise exit 1 naming what failed.
    """
    try:
        data = file.read_bytes()
    except OSError as exc:
        _fail(f"cannot read {file}: {exc}")
    key = _pinned_key(vkey)
    with _errors():
        report = verify_evidence(data, key)
    if as_json:
        _emit(report.to_json())
    else:
        for c in report.checks:
            mark = "[green]ok[/]  " if c.ok else "[bold red]FAIL[/]"
            out.print(f"{mark} {safe(c.name)}: {safe(c.detail)}")
        if not report.key_pinned:
            out.print("[yellow]note:[/] key not pinned: pass --vkey with the log's published key")
        out.print("[green]VALID[/]" if report.ok else "[bold red]INVALID[/]")
    if not report.ok:
        raise typer.Exit(1)


def _pinned_key(vkey: str | None) -> str | None:
    """A ``--vkey`` value as key text (read from the file it names, if one): exit 2 if malformed."""
    if vkey is None:
        return None
    key = vkey
    path = Path(vkey)
    if path.is_file():
        try:
            key = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"--vkey {vkey}: cannot read the key file: {exc}", 2, kind="usage")
    try:
        parse_vkey(key.strip())
    except NoteError as exc:
        _fail(
            f"--vkey {vkey}: not a verifier key ({exc}); pass the log's published key "
            "(name+keyid+base64, as `echoctl init` prints it) or a file holding it",
            2,
            kind="usage",
        )
    return key.strip()


def register(app: typer.Typer) -> None:
    """Add the vault commands (init, add, verify, rebuild, checkpoint, prove, verify-proof)."""
    app.command()(init)
    app.command()(add)
    app.command()(verify)
    app.command()(rebuild)
    app.command()(checkpoint)
    app.command()(prove)
    app.command("verify-proof")(verify_proof)
