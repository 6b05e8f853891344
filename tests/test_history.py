"""Item histories: nothing a document says is dropped; order of arrival does not shape history.

Real corpus files imported into real vaults (``import_files``), histories read
back through the items service (``item_history``), the way ``echoctl show`` does.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# --------------------------------------------------- order of arrival does not shape history
# Real FRED recordings (pyfredapi's vcrpy cassettes, corpora README "fred/"): each
# cassette holds the same request recorded twice in Nov 2024 and twice in Jan 2025
# (Date headers); FRED revised values in between (GDP 2024-07-01: 29349.924 then
# 29374.914) and closed the vintages that were open (realtime_end 9999-12-31 then
# 2024-11-26). Each interaction is cut out byte for byte as a one-interaction
# cassette: a recording of its own, to import in any order.
GDP = "fred/pyfredapi-2024/test_series__test_get_series[json].yaml"
INITIAL = "fred/pyfredapi-2024/test_series__test_get_series_initial_release[json].yaml"
ALL_RELEASES = "fred/pyfredapi-2024/test_series__test_get_series_all_releases[json].yaml"

History = dict[tuple[str, str, str], tuple[tuple[str, str], ...]]


def split_cassette(rel: str, into: Path) -> list[Path]:
    """One vcrpy cassette per interaction of ``rel`` (its lines kept byte for byte), by Date.

    Returns:
        The files in recorded-time order (the response's ``Date``; vcrpy keeps no
        time of its own), ties in file order.
    """
    text = corpus(rel).read_bytes().decode("utf-8")
    head, _, rest = text.partition("\n- request:")
    assert head == "interactions:"
    body, _, tail = ("- request:" + rest).rpartition("\nversion: ")
    chunks = ["- request:" + c for c in body.split("\n- request:") if c]
    chunks[0] = chunks[0].removeprefix("- request:")
    into.mkdir(parents=True, exist_ok=True)
    dated: list[tuple[datetime, int, Path]] = []
    stem = Path(rel).stem.replace("[", "_").replace("]", "")
    for n, chunk in enumerate(chunks):
        path = into / f"{stem}-{n}.yaml"
        path.write_text(f"interactions:\n{chunk}\nversion: {tail}", encoding="utf-8")
        date = re.search(r"\n      Date:\n      - (.+)\n", chunk)
        assert date is not None, chunk[:200]
        dated.append((parsedate_to_datetime(date.group(1)), n, path))
    return [path for _, _, path in sorted(dated)]


def histories(path: Path) -> History:
    """Every item's history, oldest first as ``show`` orders it: ``(what, content digest)``.

    ``what`` is ``tombstone`` or ``content``: whether the first content observed
    was written as the ``item`` entry depends on what arrived first, not the history.
    """
    out: History = {}
    with Vault.open(path, readonly=True) as vault:
        for key in _keys(path):
            history = item_history(vault, ItemKey(*key))
            out[key] = tuple(
                ("tombstone" if h.type == "tombstone" else "content", str(h.meta["content_digest"]))
                for h in reversed(history.history)
            )
    return out


def current(path: Path) -> dict[tuple[str, str, str], str]:
    """Every item's current content digest (the items row: the one observed last)."""
    with Vault.open(path, readonly=True) as vault:
        rows = vault.catalog.query("SELECT source, feed, native_id, digest FROM items")
        return {(str(r[0]), str(r[1]), str(r[2])): bytes(r[3]).hex() for r in rows}


def imported(where: Path, files: list[Path]) -> tuple[History, dict[tuple[str, str, str], str]]:
    """Import ``files`` in this order (one import each) into a fresh vault; its histories."""
    path = where / f"v{len(list(where.iterdir())) if where.exists() else 0}"
    Vault.create(path, origin="echo.archive/history0test").close()
    for file in files:
        run(path, [file])
    return histories(path), current(path)


def test_reimporting_a_fred_recording_adds_no_versions(vault_path: Path) -> None:
    # Before issue 9: the second import compared each Nov sighting with the Jan
    # value of GDP 2024-07-01 and archived the flip back and forth (versions 2).
    first = run(vault_path, [corpus(GDP)]).files[0]
    assert (first.new, first.versions) == (315, 1)
    again = run(vault_path, [corpus(GDP)]).files[0]
    assert (again.new, again.versions, again.duplicates) == (0, 0, 4 * 315)
    with Vault.open(vault_path, readonly=True) as vault:
        history = item_history(vault, ItemKey("fred", "import-fred", "GDP:2024-07-01"))
    assert [(h.type, h.item["text"] if h.item else None) for h in history.history] == [
        ("version", "29374.914"),
        ("item", "29349.924"),
    ]


def test_an_older_fred_vintage_imported_last_is_history_not_the_current_value(
    tmp_path: Path,
) -> None:
    files = split_cassette(GDP, tmp_path / "gdp")
    in_order, now = imported(tmp_path / "a", files)
    backwards, now_backwards = imported(tmp_path / "b", files[::-1])
    assert backwards == in_order
    assert now_backwards == now
    with Vault.open(tmp_path / "b" / "v0", readonly=True) as vault:
        history = item_history(vault, ItemKey("fred", "import-fred", "GDP:2024-07-01"))
    assert history.latest["text"] == "29374.914"  # the Jan 2025 value, imported first
    assert [h.observed_at for h in history.history] == [
        "2024-12-19T00:00:00.000000Z",
        "2024-10-30T00:00:00.000000Z",
    ]
    assert history.history[0].index < history.history[1].index  # log order is arrival order


def _orders(n: int) -> st.SearchStrategy[list[int]]:
    """A permutation of ``0..n-1``, then maybe the files again in another (imported twice)."""
    once = st.permutations(list(range(n)))
    return st.tuples(once, st.none() | once).map(lambda p: list(p[0]) + list(p[1] or []))


@pytest.mark.slow
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_fred_histories_do_not_depend_on_import_order(tmp_path: Path, data: st.DataObject) -> None:
    files = split_cassette(GDP, tmp_path / "gdp") + split_cassette(INITIAL, tmp_path / "initial")
    files.sort(key=lambda p: p.name.rsplit("-", 1)[-1])  # interleave the two series' times
    reference = imported(tmp_path / "ref", _by_time(files))
    order = data.draw(_orders(len(files)))
    assert imported(tmp_path / "perm", [files[i] for i in order]) == reference


@pytest.mark.slow
@settings(
    max_examples=2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_all_fred_vintages_do_not_depend_on_import_order(
    tmp_path: Path, data: st.DataObject
) -> None:
    # ALFRED: 3,199 then 3,201 vintage rows; every row open in Nov and closed in Jan
    # is one item with two contents (realtime_end), ordered by observed time.
    files = split_cassette(ALL_RELEASES, tmp_path / "all")
    reference = imported(tmp_path / "ref", files)
    order = data.draw(_orders(len(files)))
    assert imported(tmp_path / "perm", [files[i] for i in order]) == reference


def _by_time(files: list[Path]) -> list[Path]:
    """``files`` in recorded-time order (their responses' ``Date``)."""

    def when(path: Path) -> datetime:
        found = re.search(r"\n      Date:\n      - (.+)\n", path.read_text(encoding="utf-8"))
        assert found is not None
        return parsedate_to_datetime(found.group(1))

    return sorted(files, key=when)
