"""Library services: the operations every shell (``echoctl``, the coming HTTP API) calls alike.

Each takes an open vault (or, for feeds, the vault directory) and typed
inputs, and returns typed results (frozen dataclasses with ``to_json()``);
none prints, prompts or exits. Errors are :class:`~echo_archive.errors.EchoError`
subclasses: :class:`~echo_archive.errors.RequestError` for a malformed request
(a shell's usage error, HTTP 400), :class:`~echo_archive.errors.NotFoundError`
for a reference that matches nothing (HTTP 404), the vault's own errors else.

One module per concept:

- :mod:`~echo_archive.services.vaults`: create and open a vault;
- :mod:`~echo_archive.services.archive`: archive local files as evidence;
- :mod:`~echo_archive.services.harvesting`: pick the due feeds, harvest once, breakers;
- :mod:`~echo_archive.services.importing`: import recordings and feed documents;
- :mod:`~echo_archive.services.items`: list items (keyset pages), an item's history;
- :mod:`~echo_archive.services.entries`: an entry; a capture and its body stream;
- :mod:`~echo_archive.services.proofs`: checkpoint, inclusion and consistency proofs,
  evidence bundles;
- :mod:`~echo_archive.services.verification`: verify a vault (derived indexes included) or a
  bundle offline; rebuild derived indexes;
- :mod:`~echo_archive.services.feeds`: feeds add/list/remove/enable/disable;
- :mod:`~echo_archive.services.reports`: saved harvest reports;
- :mod:`~echo_archive.services.paging`: pages, opaque cursors, RFC 3339 request times.

Example::

    from pathlib import Path
    from echo_archive.services import ItemQuery, list_items, open_vault

    with open_vault(Path("vault")) as v:
        page = list_items(v, ItemQuery(feed="hn-top", since="2026-12-01T00:00:00+01:00"))
        while True:
            for item in page.entries:
                print(item.index, item.title)
            if page.next is None:
                break
            page = list_items(v, ItemQuery(feed="hn-top", since="2026-12-01T00:00:00+01:00",
                                           cursor=page.next))
"""

from __future__ import annotations

from echo_archive.services.archive import ArchivedFile, archive_files
from echo_archive.services.entries import (
    Capture,
    EntryView,
    get_capture,
    get_entry,
    open_capture_body,
)
from echo_archive.services.feeds import add_feed, list_feeds, remove_feed, set_feed_enabled
from echo_archive.services.harvesting import FeedSelection, harvest_once, select_feeds
from echo_archive.services.importing import import_files
from echo_archive.services.items import (
    ItemHistory,
    ItemQuery,
    ItemSummary,
    item_history,
    list_items,
)
from echo_archive.services.paging import Page
from echo_archive.services.proofs import (
    ConsistencyProof,
    EvidenceBundle,
    InclusionProof,
    consistency,
    evidence_bundle,
    inclusion,
    latest_checkpoint,
)
from echo_archive.services.reports import get_report, list_reports
from echo_archive.services.vaults import VaultInfo, create_vault, open_vault
from echo_archive.services.verification import rebuild, verify, verify_evidence

__all__ = [
    "ArchivedFile",
    "Capture",
    "ConsistencyProof",
    "EntryView",
    "EvidenceBundle",
    "FeedSelection",
    "InclusionProof",
    "ItemHistory",
    "ItemQuery",
    "ItemSummary",
    "Page",
    "VaultInfo",
    "add_feed",
    "archive_files",
    "consistency",
    "create_vault",
    "evidence_bundle",
    "get_capture",
    "get_entry",
    "get_report",
    "harvest_once",
    "import_files",
    "inclusion",
    "item_history",
    "latest_checkpoint",
    "list_feeds",
    "list_items",
    "list_reports",
    "open_capture_body",
    "open_vault",
    "rebuild",
    "remove_feed",
    "select_feeds",
    "set_feed_enabled",
    "verify",
    "verify_evidence",
]
