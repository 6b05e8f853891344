"""Verify a whole vault: blobs, entries, log hashes, checkpoints, consistency.

:func:`verify_vault` recomputes everything that can be recomputed and compares
it with what is stored and signed:

* **checkpoints**: every stored checkpoint note must carry a valid Ed25519
  signature by the vault's verifier key, name the vault's origin, and agree
  with its catalog row (C2SP tlog-checkpoint, signed-note);
* **entries**: indexes contiguous from 0 to the log size; each entry RFC 8785
  canonical JSON of the entry schema, its ``meta`` and blob roles of its type's
  schema (:mod:`echo_archive.schemas`; a failure is a ``schema`` problem naming
  the entry and the field), and the blob documents it names (the item blob) of
  their schema, for a ``sample`` of them as for the blobs; its leaf hash
  (RFC 9162 §2.1.1) equal to the stored level-0 hash; its blob index rows
  equal to the blobs it names; every blob it names present in the blob store;
* **log hashes**: every stored node hash equal to the one recomputed from the
  entries; the recomputed root at each checkpoint's size equal to the signed
  root; the final root equal to the recorded log state;
* **consistency**: each checkpoint consistent with the next, by an RFC 9162
  §2.1.4 consistency proof from the stored hashes checked against both signed
  roots;
* **blobs**: every blob (or a random ``sample`` of them) decompressed and
  re-hashed against its address;
* **derived indexes**: each derived index attached to the vault
  (:mod:`.derived`) rebuilt from the log and the blobs into a scratch
  catalog and compared row by row with the stored one: whole with
  ``derived_sample=1`` (``echoctl verify --full``), else over a random sample
  of entries for an index whose rows are per entry (an index whose rows
  depend on earlier entries, such as the item index, is always compared
  whole). Each differing row is a problem naming the index, the row's key,
  the stored row and the rebuilt one.

A failure is a :class:`Problem` naming the blob, entry, node or checkpoint and
what mismatched. Entries committed after the latest checkpoint (an *unsealed
tail* left by a crash; the next writer seals it) are reported as a warning.

Two parts can also run on their own, for the health checks'
incremental verify (:mod:`echo_archive.control.health`, restic's ``check
--read-data-subset`` as the model): :func:`verify_entries` checks a range of
entries and the checkpoints it reaches, trusting a prefix of the tree
verified before; :func:`verify_derived` compares the derived indexes with a
rebuild (sampled).
"""

from __future__ import annotations

import itertools
import json
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from echo_archive.errors import BlobError, EchoError, EntryError, EntrySchemaError, NoteError
from echo_archive.schemas import BlobDocument, entry_classes, validate_blob_document
from echo_archive.vault.catalog import as_bytes
from echo_archive.vault.checkpoint import open_checkpoint
from echo_archive.vault.derived import applied_size, compare, index_revision, stored_revision
from echo_archive.vault.entry import Entry, parse_entry
from echo_archive.vault.merkle import EMPTY_ROOT, CompactRange, leaf_hash
from echo_archive.vault.merkle import verify_consistency as check_consistency
from echo_archive.vault.vault import Vault

__all__ = [
    "DERIVED_SAMPLE",
    "Problem",
    "Progress",
    "VerifyReport",
    "verify_derived",
    "verify_entries",
    "verify_vault",
]

DERIVED_SAMPLE = 0.1
"""The fraction of entries whose derived rows :func:`verify_vault` rebuilds by default."""

Progress = Callable[[str, int, int], None]
"""A progress callback: ``(phase, done, total)``; phases ``entries`` and ``blobs``."""

_CHUNK = 4096


@dataclass(frozen=True)
class Problem:
    """One failed check.

    Attributes:
        kind: ``blob``, ``entry``, ``schema`` (an entry well-formed but off its
            type's schema, :mod:`echo_archive.schemas`), ``node``, ``checkpoint``,
            ``log`` or ``derived`` (a derived row that differs from its rebuild).
        ref: what failed (``"entry 42"``, ``"sha256:..."``, ``"checkpoint 1000"``,
            ``"items 'hn' 'hn-top' '42'"``: a derived index and a row key).
        message: what mismatched, in plain words.

    """

    kind: str
    ref: str
    message: str


@dataclass
class VerifyReport:
    """The outcome of :func:`verify_vault`.

    Attributes:
        problems: every failed check (empty when the vault holds).
        warnings: things that are not failures (an unsealed tail).
        log_size: entries in the log; checkpoint_size: entries the latest
            checkpoint covers; entries, blobs, checkpoints: how many were checked;
            blob_bytes: uncompressed bytes re-hashed; seconds: wall time.
        derived: per derived index compared, ``{"rows", "entries", "full",
            "differences"}`` (rows of the rebuild compared, entries rebuilt,
            whether whole, how many rows differ).

    """

    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    log_size: int = 0
    checkpoint_size: int = 0
    entries: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    checkpoints: int = 0
    sample: float = 1.0
    seconds: float = 0.0
    derived: dict[str, dict[str, Any]] = field(default_factory=dict)
    derived_sample: float = 1.0

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping of the report (``ok`` included)."""
        data = asdict(self)
        data["ok"] = self.ok
        return data

    def _add(self, kind: str, ref: str, message: str) -> None:
        self.problems.append(Problem(kind, ref, message))


class _StoredLevels:
    """Walks the stored node hashes of each level in index order, on demand."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._iters: dict[int, Iterator[tuple[int, bytes]]] = {}
        self._head: dict[int, tuple[int, bytes] | None] = {}

    def get(self, level: int, index: int) -> bytes | None:
        it = self._iters.get(level)
        if it is None:
            it = self._iters[level] = self._vault.stored_nodes(level)
            self._head[level] = next(it, None)
        head = self._head[level]
        while head is not None and head[0] < index:
            head = next(it, None)
        self._head[level] = head
        if head is not None and head[0] == index:
            return head[1]
        return None


def verify_vault(
    vault: Vault,
    *,
    sample: float = 1.0,
    progress: Progress | None = None,
    derived_sample: float = DERIVED_SAMPLE,
    seed: int | None = None,
) -> VerifyReport:
    """Verify every blob, entry, log hash and checkpoint of ``vault``, and its derived indexes.

    Args:
        vault: an open vault (a reader is enough; nothing is written).
        sample: fraction of blobs to re-hash, and of blob documents (item
            blobs) to validate against their schema, in (0, 1]; every entry,
            hash and checkpoint is always checked.
        progress: optional callback ``(phase, done, total)``.
        derived_sample: fraction of entries whose derived rows are rebuilt
            and compared, in (0, 1] (1: every row of every attached index;
            default :data:`DERIVED_SAMPLE`).
        seed: the seed of the derived sample (random when None).

    Returns:
        The report; ``report.ok`` is True when everything holds.

    Raises:
        ValueError: ``sample`` or ``derived_sample`` outside (0, 1].
        StorageError: the vault cannot be read at all.

    """
    if not 0 < sample <= 1:
        raise ValueError(f"sample must be in (0, 1], got {sample}")
    if not 0 < derived_sample <= 1:
        raise ValueError(f"derived_sample must be in (0, 1], got {derived_sample}")
    started = time.perf_counter()
    report = VerifyReport(sample=sample, derived_sample=derived_sample)
    with vault.catalog.snapshot():  # one snapshot for the whole walk
        roots = _check_checkpoints(vault, report)
        _check_entries(vault, report, roots, progress, sample)
        _check_consistency(vault, report, roots)
        if not report.problems:  # a rebuild from a damaged log would only repeat its faults
            _check_derived(vault, report, derived_sample, seed)
    _check_blobs(vault, report, sample, progress)
    report.seconds = time.perf_counter() - started
    return report


def _check_checkpoints(vault: Vault, report: VerifyReport) -> dict[int, bytes | None]:
    roots: dict[int, bytes | None] = {}
    rows = vault.catalog.query("SELECT size, root, note FROM checkpoints ORDER BY size")
    for size, root, note in rows:
        report.checkpoints += 1
        ref = f"checkpoint {size}"
        try:
            cp = open_checkpoint(note, vault.verifier, vault.origin)
        except NoteError as exc:
            report._add("checkpoint", ref, f"does not verify with the vault key: {exc}")
            roots[size] = None
            continue
        if cp.size != size or cp.root_hash != as_bytes(root):
            report._add(
                "checkpoint",
                ref,
                f"signed note says size {cp.size} root {cp.root_hash.hex()} but the catalog row "
                f"says size {size} root {as_bytes(root).hex()}",
            )
        roots[cp.size] = cp.root_hash
    if not roots:
        report._add("checkpoint", "checkpoints", "no checkpoint is stored")
    return roots


def _check_entries(
    vault: Vault,
    report: VerifyReport,
    roots: dict[int, bytes | None],
    progress: Progress | None,
    sample: float = 1.0,
) -> None:
    cat = vault.catalog
    size, state_root = vault.log_state()
    report.log_size = size
    valid_sizes = [s for s, r in roots.items() if r is not None]
    report.checkpoint_size = max(valid_sizes, default=0)
    if 0 in roots and roots[0] not in (None, EMPTY_ROOT):
        report._add("checkpoint", "checkpoint 0", "root of the empty tree is not SHA-256('')")
    stored = _StoredLevels(vault)
    tree = _TreeCheck(stored, roots, report)
    entry_rows = cat.query("SELECT idx, entry FROM entries ORDER BY idx")
    blob_rows = cat.query("SELECT idx, role, digest FROM entry_blobs ORDER BY idx, role")
    blob_head = next(blob_rows, None)
    pending_refs: dict[bytes, int] = {}
    documents = _Documents(vault, report, sample)
    expected = 0
    for idx, raw in entry_rows:
        if idx >= size or idx < 0:
            report._add(
                "entry", f"entry {idx}", f"row lies beyond the log (size {size}): inserted?"
            )
            continue
        while expected < idx:  # rows missing before idx
            report._add("entry", f"entry {expected}", "row is missing (deleted?)")
            tree.feed(stored.get(0, expected) or b"\x00" * 32, tainted=True)
            expected += 1
        raw = as_bytes(raw)
        where = f"entry {idx}"
        names: list[tuple[str, bytes]] = []
        try:
            entry = parse_entry(raw, where)
            names = [(b.role, b.digest) for b in entry.blobs]
            documents.add(idx, entry)
        except EntrySchemaError as exc:  # well-formed, but off its type's schema
            names = _blob_names(raw)
            report._add("schema", where, str(exc))
        except EntryError as exc:
            report._add("entry", where, str(exc))
        rows: list[tuple[str, bytes]] = []
        while blob_head is not None and blob_head[0] <= idx:
            if blob_head[0] == idx:
                rows.append((blob_head[1], as_bytes(blob_head[2])))
            blob_head = next(blob_rows, None)
        if rows != names:
            report._add(
                "entry", where, f"blob index rows {_fmt(rows)} differ from entry {_fmt(names)}"
            )
        for _, digest in names:
            pending_refs.setdefault(digest, idx)
        leaf = leaf_hash(raw)
        logged = stored.get(0, idx)
        if logged != leaf:
            report._add(
                "entry",
                where,
                "leaf hash of the stored entry differs from the logged leaf hash "
                "(entry changed, reordered or replaced)",
            )
        tree.feed(leaf, tainted=logged != leaf)
        expected = idx + 1
        report.entries += 1
        if len(pending_refs) >= _CHUNK:
            _check_refs(vault, pending_refs, report)
            documents.check()
        if progress and report.entries % _CHUNK == 0:
            progress("entries", report.entries, size)
    while expected < size:
        report._add("entry", f"entry {expected}", "row is missing (deleted?)")
        tree.feed(stored.get(0, expected) or b"\x00" * 32, tainted=True)
        expected += 1
    _check_refs(vault, pending_refs, report)
    documents.check()
    if progress:
        progress("entries", report.entries, size)
    if not tree.tainted and tree.compact.root() != state_root:
        report._add(
            "log", "log state", f"recomputed root at size {size} differs from the recorded root"
        )
    for cp_size in sorted(roots):
        if cp_size > size:
            report._add(
                "checkpoint",
                f"checkpoint {cp_size}",
                f"covers more entries than the log holds ({size})",
            )
    if report.checkpoint_size < size:
        report.warnings.append(
            f"unsealed tail: entries {report.checkpoint_size}..{size - 1} are not yet covered by a "
            "checkpoint (a crash interrupted a commit; the next writer to open the vault "
            "seals them)"
        )


class _Documents:
    """Blob documents (the item blob) of checked entries, validated against their schema.

    Which blobs hold a document is said by the entry's schema
    (:attr:`~echo_archive.schemas.EntryMeta.blob_roles`). With ``sample`` < 1,
    the blobs whose digest's first byte is below ``256 * sample`` are read (a
    deterministic sample). A blob that cannot be read is left to the blob and
    reference checks, which name it; a document that is not JSON or breaks its
    schema is a ``schema`` problem naming the entry and the field.
    """

    def __init__(self, vault: Vault, report: VerifyReport, sample: float) -> None:
        self.vault, self.report = vault, report
        self.below = 256 * sample
        self.pending: list[tuple[int, str, bytes, type[BlobDocument]]] = []
        self.roles = {
            (cls.entry_type, cls.kind_value, cls.schema_version): {
                role: doc for role, doc in cls.blob_roles.items() if doc is not None
            }
            for cls in entry_classes()
        }

    def add(self, idx: int, entry: Entry) -> None:
        """Queue the document blobs of ``entry`` (at log index ``idx``) that are in the sample."""
        key = (entry.type, entry.meta.get("kind"), entry.meta.get("v", 1))
        roles = self.roles.get(key)
        if roles:
            for blob in entry.blobs:
                doc = roles.get(blob.role)
                if doc is not None and blob.digest[0] < self.below:
                    self.pending.append((idx, blob.role, blob.digest, doc))

    def check(self) -> None:
        """Read and validate the queued documents."""
        for idx, role, digest, doc in self.pending:
            where = f"entry {idx} blob {role}"
            try:
                data = self.vault.blobs.get(digest)
            except BlobError:
                continue  # named by the reference and blob checks
            try:
                validate_blob_document(doc, json.loads(data), where)
            except ValueError as exc:
                self.report._add("schema", f"entry {idx}", f"{where}: is not JSON: {exc}")
            except EntrySchemaError as exc:
                self.report._add("schema", f"entry {idx}", str(exc))
        self.pending.clear()


def _blob_names(raw: bytes) -> list[tuple[str, bytes]]:
    """The (role, digest) pairs of an entry whose envelope held but whose meta did not."""
    blobs = json.loads(raw)["blobs"]
    return [(role, bytes.fromhex(blobs[role]["digest"][7:])) for role in sorted(blobs)]


def _fmt(pairs: list[tuple[str, bytes]]) -> str:
    return "[" + ", ".join(f"{role}=sha256:{d.hex()[:12]}…" for role, d in pairs) + "]"


class _TreeCheck:
    """Rebuilds the tree from entries, comparing stored node hashes and signed roots.

    A node above a leaf already reported (changed or missing entry) is not
    reported again: its mismatch is a consequence, not a second fault.
    """

    def __init__(
        self, stored: _StoredLevels, roots: dict[int, bytes | None], report: VerifyReport
    ) -> None:
        self.compact = CompactRange()
        self.stored = stored
        self.roots = roots
        self.report = report
        self.tainted: list[int] = []  # indexes of leaves already reported, ascending

    def _is_tainted(self, lo: int, hi: int) -> bool:
        pos = bisect_left(self.tainted, lo)
        return pos < len(self.tainted) and self.tainted[pos] < hi

    def feed(self, leaf: bytes, tainted: bool) -> None:
        if tainted:
            self.tainted.append(self.compact.size)
        for level, index, digest in self.compact.append(leaf):
            if level == 0 or self._is_tainted(index << level, (index + 1) << level):
                continue
            got = self.stored.get(level, index)
            if got != digest:
                state = (
                    "missing" if got is None else "differs from the hash recomputed from entries"
                )
                self.report._add(
                    "node", f"node (level {level}, index {index})", f"stored hash {state}"
                )
        root = self.roots.get(self.compact.size)
        if root is not None and self.compact.root() != root:
            self.report._add(
                "checkpoint",
                f"checkpoint {self.compact.size}",
                "signed root differs from the root recomputed from the entries",
            )


def _check_refs(vault: Vault, refs: dict[bytes, int], report: VerifyReport) -> None:
    if not refs:
        return
    for digest in sorted(vault.blobs.missing(refs)):
        report._add(
            "blob",
            "sha256:" + digest.hex(),
            f"named by entry {refs[digest]} but not in the blob store",
        )
    refs.clear()


def _check_consistency(vault: Vault, report: VerifyReport, roots: dict[int, bytes | None]) -> None:
    size = report.log_size
    sizes = sorted(s for s, r in roots.items() if r is not None and 0 < s <= size)
    for old, new in itertools.pairwise(sizes):
        old_root, new_root = roots[old], roots[new]
        assert old_root is not None
        assert new_root is not None
        try:
            proof = vault.consistency_proof(old, new)
            check_consistency(old, new, proof, old_root, new_root)
        except EchoError as exc:
            report._add(
                "checkpoint", f"checkpoint {new}", f"not consistent with checkpoint {old}: {exc}"
            )


def _check_derived(vault: Vault, report: VerifyReport, sample: float, seed: int | None) -> None:
    by_name = {index.name: index for index in vault.derived}
    for index in vault.derived:
        if not index.rebuildable:
            report.warnings.append(
                f"derived index {index.name} is not compared: it was attached without what "
                "its rebuild needs (`echoctl verify` attaches it whole)"
            )
            continue
        if not set(index.tables) <= vault.catalog.tables():
            report.warnings.append(
                f"derived index {index.name} is not built yet (the next writer builds it)"
            )
            continue
        stored = stored_revision(vault.catalog, index.name)
        if stored != index_revision(index):
            report.warnings.append(
                f"derived index {index.name} was derived by revision {stored} of its rules, "
                f"this build derives revision {index_revision(index)}: not compared "
                "(the next writer rebuilds it)"
            )
            continue
        done = applied_size(vault.catalog, index.name)
        size = report.log_size if done is None else min(done, report.log_size)
        if size < report.log_size:
            report.warnings.append(
                f"derived index {index.name} has applied {size} of {report.log_size} entries "
                "(appended by a writer that did not keep it; the next writer catches it up)"
            )
        requires = {name: by_name[name] for name in index.requires if name in by_name}
        try:
            found = compare(vault.catalog, index, requires, vault, size, sample=sample, seed=seed)
        except EchoError as exc:
            report._add("derived", index.name, f"cannot be rebuilt for comparison: {exc}")
            continue
        for d in found.differences:
            report._add("derived", f"{index.name} {d.key}", d.message())
        if found.more:
            report._add("derived", index.name, f"{found.more} more row(s) differ")
        report.derived[index.name] = {
            "rows": found.rows,
            "entries": found.entries,
            "full": found.full,
            "differences": len(found.differences) + found.more,
        }


def _check_blobs(
    vault: Vault, report: VerifyReport, sample: float, progress: Progress | None
) -> None:
    stats = vault.blobs.stats()
    expected = max(1, round(stats.count * sample))

    def tick(done: int) -> None:
        report.blobs = done
        if progress:
            progress("blobs", done, expected)

    for digest, problem in vault.blobs.check_all(sample=sample, progress=tick):
        report._add("blob", "sha256:" + digest.hex(), problem)
    if sample == 1:
        report.blobs, report.blob_bytes = stats.count, stats.bytes
    if progress:
        progress("blobs", report.blobs, expected)


def verify_derived(
    vault: Vault, *, sample: float = DERIVED_SAMPLE, seed: int | None = None
) -> VerifyReport:
    """Compare each attached derived index with its rebuild (the derived part of verify).

    The same comparison as :func:`verify_vault` makes after its log checks
    (a ``per_entry`` index over random runs of about ``sample`` of the
    entries, the item index whole), in one read snapshot, without the log,
    hash and blob checks. Nothing is written.

    Args:
        vault: an open vault (a reader is enough), opened with its derived indexes.
        sample: fraction of entries whose derived rows are rebuilt, in (0, 1].
        seed: the seed of the sample (random when None).

    Returns:
        A report whose ``problems`` are the differing rows (kind ``derived``),
        ``derived`` the per-index counts and ``warnings`` the indexes not compared.

    Raises:
        ValueError: ``sample`` outside (0, 1].
        StorageError: the catalog cannot be read.
    """
    if not 0 < sample <= 1:
        raise ValueError(f"derived_sample must be in (0, 1], got {sample}")
    started = time.perf_counter()
    report = VerifyReport(derived_sample=sample)
    with vault.catalog.snapshot():
        report.log_size = vault.log_state()[0]
        _check_derived(vault, report, sample, seed)
    report.seconds = time.perf_counter() - started
    return report


def verify_entries(
    vault: Vault,
    first: int,
    end: int,
    *,
    first_root: bytes | None = None,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[VerifyReport, bytes]:
    """Verify entries ``first .. end-1`` and the checkpoints they reach, trusting ``[0, first)``.

    The incremental part of :func:`verify_vault`. The tree of the first
    ``first`` entries is taken from its stored right-edge peaks
    (:meth:`Vault.right_edge`), which must give ``first_root`` (the root an
    earlier verify recomputed from the entries themselves; a prefix rewritten
    since fails here). From there every entry of the range is checked as
    :func:`verify_vault` checks it (RFC 8785 canonical JSON of its schema,
    blob index rows, leaf hash equal to the stored one, every blob it names
    present), its leaf hash appended to the recomputed tree, and each stored
    checkpoint of a size in ``[first, end]`` must verify (signature, origin,
    catalog row) and sign the root recomputed at its size (RFC 9162 §2.1.1)
    and the root the stored node hashes give (what proofs are served from).
    Each checkpoint so reached is consistent with the prefix by construction
    (one recomputed tree). Blobs are not re-hashed here.

    Args:
        vault: an open vault (a reader is enough; nothing is written).
        first: the first entry to check; the prefix ``[0, first)`` is trusted.
        end: one past the last entry to check (capped at the log size).
        first_root: the root of the tree of ``first`` entries verified before
            (None: not compared, e.g. ``first == 0``).
        deadline: stop, between entries, once ``clock()`` passes it; the
            report's ``entries`` says how far it got (``first + entries``).
        clock: the clock of ``deadline`` (default :func:`time.monotonic`).

    Returns:
        ``(report, root)``: the report (``entries`` checked, ``checkpoints``
        checked, ``log_size``, ``checkpoint_size``: the newest checkpoint
        reached, and the problems) and the root hash recomputed for the tree
        of ``first + report.entries`` entries (the next run's ``first_root``).

    Raises:
        LogError: ``first`` is beyond the log.
        StorageError: the vault cannot be read.
    """
    started = time.perf_counter()
    report = VerifyReport()
    with vault.catalog.snapshot():
        size, _ = vault.log_state()
        report.log_size = size
        end = min(end, size)
        compact = vault.right_edge(first)
        if first_root is not None and compact.root() != first_root:
            report._add(
                "log",
                f"tree size {first}",
                f"the stored tree of the first {first} entries gives root "
                f"{compact.root().hex()}, not the root {first_root.hex()} verified before "
                "(the log was rewritten?)",
            )
            report.seconds = time.perf_counter() - started
            return report, compact.root()
        roots: dict[int, bytes] = {}
        rows = vault.catalog.query(
            "SELECT size, root, note FROM checkpoints WHERE size >= ? AND size <= ? ORDER BY size",
            (first, end),
        )
        for cp_size, root, note in rows:
            ref = f"checkpoint {cp_size}"
            try:
                cp = open_checkpoint(note, vault.verifier, vault.origin)
            except NoteError as exc:
                report._add("checkpoint", ref, f"does not verify with the vault key: {exc}")
                continue
            if cp.size != cp_size or cp.root_hash != as_bytes(root):
                report._add(
                    "checkpoint",
                    ref,
                    f"signed note says size {cp.size} root {cp.root_hash.hex()} but the "
                    f"catalog row says size {cp_size} root {as_bytes(root).hex()}",
                )
                continue
            roots[cp_size] = cp.root_hash
        if first in roots:
            _check_root(vault, report, roots, compact)
        entry_rows = vault.catalog.query(
            "SELECT idx, entry FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx", (first, end)
        )
        blob_rows = vault.catalog.query(
            "SELECT idx, role, digest FROM entry_blobs WHERE idx >= ? AND idx < ? "
            "ORDER BY idx, role",
            (first, end),
        )
        blob_head = next(blob_rows, None)
        stored = vault.stored_nodes(0, first)
        refs: dict[bytes, int] = {}
        expected = first
        for idx, raw in entry_rows:
            if deadline is not None and clock() > deadline:
                break
            if idx != expected:
                report._add("entry", f"entry {expected}", "row is missing (deleted?)")
                break  # the recomputed tree cannot go on past a missing entry
            raw = as_bytes(raw)
            where = f"entry {idx}"
            names: list[tuple[str, bytes]] = []
            try:
                entry = parse_entry(raw, where)
                names = [(b.role, b.digest) for b in entry.blobs]
            except EntrySchemaError as exc:
                names = _blob_names(raw)
                report._add("schema", where, str(exc))
            except EntryError as exc:
                report._add("entry", where, str(exc))
            index_rows: list[tuple[str, bytes]] = []
            while blob_head is not None and blob_head[0] <= idx:
                if blob_head[0] == idx:
                    index_rows.append((blob_head[1], as_bytes(blob_head[2])))
                blob_head = next(blob_rows, None)
            if index_rows != names:
                report._add(
                    "entry",
                    where,
                    f"blob index rows {_fmt(index_rows)} differ from entry {_fmt(names)}",
                )
            for _, digest in names:
                refs.setdefault(digest, idx)
            leaf = leaf_hash(raw)
            logged = next(stored, None)
            if logged is None or logged[0] != idx or logged[1] != leaf:
                report._add(
                    "entry",
                    where,
                    "leaf hash of the stored entry differs from the logged leaf hash "
                    "(entry changed, reordered or replaced)",
                )
            compact.append(leaf)
            expected = idx + 1
            report.entries += 1
            if compact.size in roots:
                _check_root(vault, report, roots, compact)
            if len(refs) >= _CHUNK:
                _check_refs(vault, refs, report)
        _check_refs(vault, refs, report)
        report.checkpoint_size = max((s for s in roots if s <= compact.size), default=0)
        report.checkpoints = sum(1 for s in roots if s <= compact.size)
    report.seconds = time.perf_counter() - started
    return report, compact.root()


def _check_root(
    vault: Vault, report: VerifyReport, roots: dict[int, bytes], compact: CompactRange
) -> None:
    """Compare the checkpoint at ``compact.size`` with the recomputed and the stored roots."""
    size = compact.size
    if compact.root() != roots[size]:
        report._add(
            "checkpoint",
            f"checkpoint {size}",
            "signed root differs from the root recomputed from the entries",
        )
    elif vault.root_at(size) != roots[size]:
        report._add(
            "node",
            f"tree size {size}",
            "the stored node hashes give another root than the signed one (proofs would fail)",
        )
