"""Import through the library service from the shared corpora, then read it back by pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from echo_archive.errors import RequestError
from echo_archive.services import (
    ItemQuery,
    get_capture,
    import_files,
    item_history,
    list_items,
    open_vault,
    verify,
)

from .conftest import shared_dir

RECORDINGS = (
    "hackernews/topnews-vcr/hackernews_top_stories_details.yml",
    "reddit/praw/TestSubredditListings.test_hot.json",
    "github/github3py/Repository_issues_state_all.json",
    "fred/pyfredapi-2024/test_series__test_get_series[json].yaml",
    "feeds/feedjira/TechCrunch.xml",
)


def test_import_the_corpora_then_walk_every_item_by_source(vault_path: Path) -> None:
    files = [shared_dir("corpora") / rel for rel in RECORDINGS]
    with open_vault(vault_path, write=True) as w:
        with pytest.raises(RequestError, match="batch_size 0"):
            import_files(w, files, batch_size=0)
        report = import_files(w, files, batch_size=50, workers=0)
    assert report.all_recognized
    new = report.totals()["new"]
    assert new > 100
    with open_vault(vault_path) as r:
        assert verify(r).ok
        walked = []
        page = list_items(r, ItemQuery(limit=37, order="oldest", total=True))
        assert page.total == new
        while True:
            walked.extend(page.entries)
            if page.next is None:
                break
            page = list_items(r, ItemQuery(limit=37, order="oldest", cursor=page.next))
        assert len(walked) == new
        assert len({(i.source, i.feed, i.native_id) for i in walked}) == new
        sources = {i.source for i in walked}
        assert {"hn", "reddit", "github", "fred", "rss"} <= sources
        for source in sorted(sources):
            some = list_items(r, ItemQuery(source=source, limit=1000, total=True))
            assert some.total == sum(i.source == source for i in walked)
            assert all(i.source == source for i in some.entries)
            first = some.entries[0]
            history = item_history(r, first.index)
            assert str(history.key) == f"{first.source}:{first.feed}:{first.native_id}"
            capture_index = history.history[0].capture_index
            assert capture_index is not None
            capture = get_capture(r, capture_index)
            assert capture.meta["kind"] == "http"
            assert capture.meta["recorded_at"] is None or capture.meta["recorded_at"].endswith("Z")
