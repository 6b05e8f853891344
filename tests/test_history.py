"""Item histories: nothing a document says is dropped; order of arrival does not shape history.

Real corpus files imported into real vaults (``import_files``), histories read
back through the items service (``item_history``), the way ``echoctl show`` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from echo_archive.harvest.importer import ImportReport, import_files
from echo_archive.services.items import ItemKey, item_history
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import verify_vault

from .conftest import shared_dir

ITUNES = "feeds/rss-parser/itunes-missing-image.rss"
SHARED_GUID = "http://taverncast.com/shows/geekistry-2.mp3"


def corpus(rel: str) -> Path:
    """A file of the shared corpora, read in place."""
    return shared_dir("corpora") / rel


def run(path: Path, files: list[Path]) -> ImportReport:
    """Import ``files`` into the vault at ``path``; the vault verifies afterwards."""
    with Vault.open(path) as vault:
        report = import_files(vault, files, workers=0)
        assert verify_vault(vault).ok
    return report


def titles(path: Path, key: tuple[str, str, str]) -> list[Any]:
    """The titles of an item's versions, oldest first (as ``show`` orders them, reversed)."""
    with Vault.open(path, readonly=True) as vault:
        history = item_history(vault, ItemKey(*key))
    return [h.item["title"] for h in reversed(history.history) if h.item]


# --------------------------------------------------------------- nothing dropped silently


def test_a_repeated_guid_with_other_content_is_a_version_in_document_order(
    vault_path: Path,
) -> None:
    # itunes-missing-image.rss: 131 <item>s, item 17 repeats the guid of an
    # earlier one with another episode. Before: new 130, versions 0 (dropped).
    report = run(vault_path, [corpus(ITUNES)])
    f = report.files[0]
    assert (f.items, f.new, f.versions, f.duplicates) == (131, 130, 1, 0)
    feed = next(iter({k[1] for k in _keys(vault_path)}))
    assert titles(vault_path, ("rss", feed, SHARED_GUID)) == [
        "Geekistry:  You Can See the Strings",
        "Geekistry:  Lowatus of Borg (extended version)",
    ]


def test_a_repeated_entry_with_the_same_content_is_counted_as_a_duplicate(
    tmp_path: Path, vault_path: Path
) -> None:
    body = corpus("feeds/node-feedparser/iconv.xml").read_bytes()
    start, end = body.index(b"<item>"), body.rindex(b"</item>") + len(b"</item>")
    doubled = tmp_path / "iconv-doubled.xml"
    doubled.write_bytes(body[:end] + body[start:end] + body[end:])
    report = run(vault_path, [doubled])
    f = report.files[0]
    assert (f.items, f.new, f.versions, f.duplicates) == (20, 10, 0, 10)


def _keys(path: Path) -> set[tuple[str, str, str]]:
    with Vault.open(path, readonly=True) as vault:
        rows = vault.catalog.query("SELECT source, feed, native_id FROM items")
        return {(str(r[0]), str(r[1]), str(r[2])) for r in rows}
