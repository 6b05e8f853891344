"""``echoctl``: the command line, a thin shell over :mod:`echo_archive.vault`.

Every command takes ``--vault PATH`` (default ``$ECHO_VAULT``, else ``./vault``)
and most take ``--json`` for machine-readable output. Exit codes: 0 success;
1 a check failed or the vault could not do what was asked (the message says
what and where); 2 bad usage.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from echo_archive import __version__
from echo_archive.cli_common import JsonOpt, VaultOpt, err, out
from echo_archive.cli_common import emit as _emit
from echo_archive.cli_common import errors as _errors
from echo_archive.cli_common import fail as _fail
from echo_archive.cli_feeds import feeds_app
from echo_archive.cli_harvest import register as register_harvest
from echo_archive.vault.entry import format_timestamp
from echo_archive.vault.evidence import build_bundle, verify_bundle
from echo_archive.vault.vault import Record, Vault, default_vault_path
from echo_archive.vault.verify import verify_vault

__all__ = ["app", "main"]

app = typer.Typer(
    name="echoctl",
    help="ECHO: a verifiable signal archive. Archive records into an append-only, "
    "signed Merkle-tree log and prove them offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log_app = typer.Typer(help="Merkle proofs from the log (RFC 9162), for machines and auditors.")
app.add_typer(log_app, name="log")
app.add_typer(feeds_app, name="feeds")
register_harvest(app)


class _State:
    vault: Path = Path("vault")
    break_lock: bool = False


state = _State()


def _vault_path(vault: Path | None) -> Path:
    return vault if vault is not None else state.vault


class _StderrLogger:
    """A structlog logger that writes each line to the *current* ``sys.stderr``."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _stderr_logger(*_args: Any) -> _StderrLogger:
    return _StderrLogger()


def _configure_logging(level: str) -> None:
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def _version(value: bool) -> None:
    if value:
        out.print(f"echoctl {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    vault: VaultOpt = None,
    break_lock: Annotated[
        bool,
        typer.Option(
            "--break-lock",
            help="Take over a writer lock left by a process on another host "
            "(make sure it is gone).",
        ),
    ] = False,
    log_level: Annotated[
        str,
        typer.Option("--log-level", help="JSON log level on stderr: debug, info, warning, error."),
    ] = "warning",
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """ECHO: archive records into a signed, append-only Merkle-tree log and prove them offline."""
    state.vault = vault if vault is not None else default_vault_path()
    state.break_lock = break_lock
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        _fail(f"--log-level {log_level!r}: expected debug, info, warning or error", 2)
    _configure_logging(log_level)


# ---------------------------------------------------------------------------- init
@app.command()
def init(
    path: Annotated[
        Path | None, typer.Argument(help="Where to create the vault (default: --vault).")
    ] = None,
    origin: Annotated[
        str | None,
        typer.Option(help="Log origin (default: a unique echo.archive/<16 hex>); never changes."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a new vault: config, Ed25519 signing key (0600), verifier key, catalog, blob store.

    Prints the log origin and the verifier key (publish the key: it is what
    makes checkpoints and evidence bundles checkable). Refuses, changing
    nothing, to initialize over an existing vault or a non-empty directory.
    """
    target = path if path is not None else state.vault
    with _errors():
        v = Vault.create(target, origin=origin)
        try:
            info = {"vault": str(target), "origin": v.origin, "vkey": v.verifier.vkey}
        finally:
            v.close()
    if as_json:
        _emit(info)
        return
    out.print(f"Created vault {target}")
    out.print(f"origin: {info['origin']}")
    out.print(f"verifier key: {info['vkey']}")


# ---------------------------------------------------------------------------- add
@app.command()
def add(
    files: Annotated[list[Path], typer.Argument(help="Files to archive as evidence.")],
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Archive local files as evidence: a capture entry per file, its content as a blob.

    The entry records the file's base name, size and mtime.

    Prints each file's entry index and SHA-256 digest. All paths are checked
    before anything is written; a missing or unreadable file stops the command
    with nothing archived. Files are committed in batches of ``[log]
    batch_size``; each batch is covered by a signed checkpoint when its lines print.
    """
    for f in files:
        if not f.is_file():
            _fail(f"{f}: not a regular file (missing, or a directory)")
        if not os.access(f, os.R_OK):
            _fail(f"{f}: not readable")
    results: list[dict[str, Any]] = []
    with _errors(), Vault.open(_vault_path(vault), break_stale=state.break_lock) as v:
        batch = v.config.log.batch_size
        for start in range(0, len(files), batch):
            chunk = files[start : start + batch]
            records = []
            for f in chunk:
                st = f.stat()
                records.append(
                    Record(
                        type="capture",
                        meta={
                            "kind": "file",
                            "name": f.name,
                            "size": st.st_size,
                            "mtime": format_timestamp(st.st_mtime_ns),
                        },
                        blobs={"body": f},
                    )
                )
            result = v.commit(records)
            for f, receipt in zip(chunk, result.receipts, strict=True):
                body = receipt.entry.blobs[0]
                row = {
                    "file": str(f),
                    "index": receipt.index,
                    "digest": body.digest_text,
                    "size": body.size,
                    "checkpoint_size": result.checkpoint.size,
                }
                results.append(row)
                if not as_json:
                    out.print(f"{receipt.index}\t{body.digest_text}\t{f}")
    if as_json:
        _emit(results)


# ---------------------------------------------------------------------------- verify
@app.command()
def verify(
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
    as_json: JsonOpt = False,
) -> None:
    """Verify the whole vault: blobs, entries, log hashes, checkpoint signatures and consistency.

    Re-hashes every blob (or a --sample of them) against its address,
    recomputes every leaf and node hash from the catalog, recomputes the root
    of every stored checkpoint, checks every checkpoint signature and the
    consistency of each checkpoint with the next. Exit 0 when all holds, 1 with
    a list naming each failing blob, entry, node or checkpoint.
    """
    if not 0 < sample <= 1:
        _fail(f"--sample {sample}: must be in (0, 1]", 2)
    with _errors(), Vault.open(_vault_path(vault), readonly=True) as v:
        if as_json or not err.is_terminal:
            report = verify_vault(v, sample=sample)
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

                report = verify_vault(v, sample=sample, progress=progress)
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
                table.add_row(p.kind, p.ref, p.message)
            out.print(table)
        rate = report.entries / report.seconds if report.seconds else 0.0
        verdict = "[green]OK[/]" if report.ok else "[bold red]FAILED[/]"
        out.print(
            f"{verdict}: {report.entries} entries, {report.blobs} blobs"
            f"{'' if report.sample == 1 else f' (sample {report.sample:g})'}, "
            f"{report.checkpoints} checkpoints in {report.seconds:.2f} s ({rate:,.0f} entries/s); "
            f"log size {report.log_size}, latest checkpoint {report.checkpoint_size}"
        )
    if not report.ok:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------- checkpoint
@app.command()
def checkpoint(vault: VaultOpt = None, as_json: JsonOpt = False) -> None:
    """Print the latest signed checkpoint, verbatim (C2SP tlog-checkpoint signed note)."""
    with _errors(), Vault.open(_vault_path(vault), readonly=True) as v:
        signed = v.latest_checkpoint()
        vkey = v.verifier.vkey
    if as_json:
        cp = signed.checkpoint
        _emit(
            {
                "origin": cp.origin,
                "size": cp.size,
                "root_hash": base64.b64encode(cp.root_hash).decode(),
                "root_hash_hex": cp.root_hash.hex(),
                "signed_at": signed.signed_at,
                "note": signed.note,
                "vkey": vkey,
            }
        )
    else:
        sys.stdout.write(signed.note)


# ---------------------------------------------------------------------------- log
def _b64(items: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in items]


@log_app.command("inclusion")
def log_inclusion(
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
    with _errors(), Vault.open(_vault_path(vault), readonly=True) as v:
        n = v.size if size is None else size
        proof = v.inclusion_proof(index, n)
        leaf = v.leaf_hash(index)
        root = v.root_at(n)
    hashes = _b64(proof)
    data = {
        "index": index,
        "size": n,
        "leaf_hash": _b64([leaf])[0],
        "root_hash": _b64([root])[0],
        "proof": hashes,
    }
    if as_json:
        _emit(data)
        return
    out.print(f"index {index}\nsize {n}\nleaf {data['leaf_hash']}\nroot {data['root_hash']}")
    for h in hashes:
        out.print(h)


@log_app.command("consistency")
def log_consistency(
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
    with _errors(), Vault.open(_vault_path(vault), readonly=True) as v:
        n = v.size if new is None else new
        proof = v.consistency_proof(old, n)
        old_root, new_root = v.root_at(old), v.root_at(n)
    hashes = _b64(proof)
    data = {
        "old_size": old,
        "new_size": n,
        "old_root": _b64([old_root])[0],
        "new_root": _b64([new_root])[0],
        "proof": hashes,
    }
    if as_json:
        _emit(data)
        return
    out.print(f"old {old} {data['old_root']}\nnew {n} {data['new_root']}")
    for h in hashes:
        out.print(h)


# ---------------------------------------------------------------------------- prove
@app.command()
def prove(
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
    with _errors(), Vault.open(_vault_path(vault), readonly=True) as v:
        index = v.resolve(ref)
        bundle = build_bundle(v, index, size)
    data = json.dumps(bundle, indent=1, sort_keys=True).encode() + b"\n"
    tmp = out_file.with_name(out_file.name + ".tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(out_file)
    except OSError as exc:
        _fail(f"cannot write {out_file}: {exc}")
    summary = {"file": str(out_file), "index": index, "bytes": len(data)}
    if as_json:
        _emit(summary)
    else:
        out.print(f"wrote evidence bundle for entry {index} to {out_file} ({len(data)} bytes)")


@app.command("verify-proof")
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
    key = vkey
    if key is not None and Path(key).is_file():
        key = Path(key).read_text(encoding="utf-8").strip()
    with _errors():
        report = verify_bundle(data, key)
    if as_json:
        _emit(report.to_json())
    else:
        for c in report.checks:
            mark = "[green]ok[/]  " if c.ok else "[bold red]FAIL[/]"
            out.print(f"{mark} {c.name}: {c.detail}")
        if not report.key_pinned:
            out.print("[yellow]note:[/] key not pinned: pass --vkey with the log's published key")
        out.print("[green]VALID[/]" if report.ok else "[bold red]INVALID[/]")
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:
    """Entry point of the ``echoctl`` console script."""
    app()
