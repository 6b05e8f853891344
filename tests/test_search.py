"""Full-text search (issue 11): the FTS5 derived index, the service, the CLI.

Real vaults (real SQLite files), items committed through the real harvest
commit path, and the shared corpora imported in place.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from echo_archive.errors import CursorError, QueryError, RequestError, StorageError
from echo_archive.harvest.importer import import_files
from echo_archive.index import search as search_index
from echo_archive.index.items import list_items
from echo_archive.index.search import SearchIndex, plain_text
from echo_archive.model import Item
from echo_archive.services.search import SearchHit, parse_query, search
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import verify_vault

from .conftest import run_echoctl, shared_dir
from .itemdata import at, commit_items

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CORPUS_FILES = (
    "hackernews/topnews-vcr/hackernews_top_stories_details.yml",
    "reddit/praw/TestSubredditListings.test_hot.json",
    "github/github3py/Repository_issues_state_all.json",
    "feeds/feedjira/TechCrunch.xml",
)


def _walk(v: Vault, q: str, limit: int, **filters: str) -> list[SearchHit]:
    page = search(v, q, limit=limit, **filters)  # type: ignore[arg-type]
    hits = list(page.entries)
    while page.next is not None:
        page = search(v, q, limit=limit, cursor=page.next, **filters)  # type: ignore[arg-type]
        hits.extend(page.entries)
    return hits


def _ids(hits: list[SearchHit]) -> list[str]:
    return [h.native_id for h in hits]


# --------------------------------------------------------------------------- the corpora


@pytest.fixture(scope="module")
def corpora_vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("search") / "vault"
    files = [shared_dir("corpora") / rel for rel in CORPUS_FILES]
    with Vault.create(path) as v:
        import_files(v, files, workers=0)
    return path


def _titled_items(v: Vault) -> list[tuple[str, str, str]]:
    """(source, native id, title) of every item with a title of three words or more."""
    out = []
    for row in list_items(v.catalog, limit=100_000):
        blob = json.loads(v.blob(v.entry(int(row["idx"])).blobs[0].digest))
        title = blob["title"]
        if len(re.findall(r"\w+", title)) >= 3:
            out.append((str(row["source"]), str(row["native_id"]), str(title)))
    return out


def test_known_titles_of_every_corpus_are_found_by_their_phrase(corpora_vault: Path) -> None:
    with Vault.open(corpora_vault, readonly=True) as v:
        titled = _titled_items(v)
        sources = {s for s, _, _ in titled}
        assert {"hn", "reddit", "github", "rss"} <= sources
        checked = 0
        for source in sorted(sources):
            for _, native_id, title in [t for t in titled if t[0] == source][:5]:
                words = re.findall(r"\w+", title)[:4]
                phrase = '"' + " ".join(words) + '"'
                hits = _walk(v, phrase, 100, source=source)
                assert native_id in _ids(hits), (phrase, source)
                hit = next(h for h in hits if h.native_id == native_id)
                assert hit.title == plain_text(title, 4096)
                marked = [p.text.lower() for p in hit.title_parts if p.hit]
                assert marked, hit.title_parts  # the phrase is highlighted in the title
                assert "".join(p.text for p in hit.title_parts) == hit.title
                checked += 1
        assert checked >= 15


def test_hacker_news_story_is_found_by_its_title_word_ranked_first(corpora_vault: Path) -> None:
    with Vault.open(corpora_vault, readonly=True) as v:
        hn = [t for t in _titled_items(v) if t[0] == "hn"]
        # a word that occurs in one title only, so bm25 must put that item first
        counts: dict[str, int] = {}
        for _, _, title in hn:
            for w in {w.lower() for w in re.findall(r"[A-Za-z]{7,}", title)}:
                counts[w] = counts.get(w, 0) + 1
        word, native_id = next(
            (w, nid)
            for _, nid, title in hn
            for w in re.findall(r"[A-Za-z]{7,}", title)
            if counts[w.lower()] == 1
        )
        page = search(v, word, source="hn")
        assert page.entries[0].native_id == native_id
        assert any(p.hit for p in page.entries[0].title_parts)


# --------------------------------------------------------------------------- ranking, versions


def test_a_title_hit_ranks_above_a_body_hit_and_the_snippet_marks_it(tmp_path: Path) -> None:
    with Vault.create(tmp_path / "v") as v:
        commit_items(
            v,
            "a",
            [
                Item("rss", "a", "body", title="Weekly notes", text="<p>a word on zeppelins</p>"),
                Item("rss", "a", "title", title="Zeppelins over the bay", text="short"),
                Item("rss", "a", "none", title="Unrelated", text="nothing here"),
            ],
        )
        page = search(v, "zeppelin", total=True)  # stemmed: zeppelin finds zeppelins
    assert _ids(list(page.entries)) == ["title", "body"]
    assert page.total == 2
    assert page.entries[0].score < page.entries[1].score  # bm25: lower is better
    body = page.entries[1]
    assert [p.text for p in body.snippet if p.hit] == ["zeppelins"]
    assert "<p>" not in "".join(p.text for p in body.snippet)  # HTML dropped
    assert [p.text for p in page.entries[0].title_parts if p.hit] == ["Zeppelins"]


def test_a_version_replaces_the_old_text_and_a_tombstone_hides_it_by_default(
    tmp_path: Path,
) -> None:
    with Vault.create(tmp_path / "v") as v:
        commit_items(v, "a", [("n1", "alpha zebra"), ("n2", "zebra crossing")], seen_at=at(0))
        assert sorted(_ids(_walk(v, "zebra", 10))) == ["n1", "n2"]
        commit_items(v, "a", [("n1", "beta yak")], seen_at=at(60))
        assert _ids(_walk(v, "zebra", 10)) == ["n2"]  # the old text no longer matches
        assert _ids(_walk(v, "yak", 10)) == ["n1"]  # the new one does
        assert _ids(_walk(v, "alpha", 10)) == []
        commit_items(v, "a", [], ["n1"], seen_at=at(120))
        assert _ids(_walk(v, "yak", 10)) == []  # tombstoned: out of the default results
        gone = _walk(v, "yak", 10, state="tombstoned")
        assert _ids(gone) == ["n1"]
        assert gone[0].state == "tombstoned"
        assert _ids(_walk(v, "yak", 10, state="any")) == ["n1"]
        assert _ids(_walk(v, "zebra", 10, state="tombstoned")) == []
        assert verify_vault(v, derived_sample=1.0).ok


def test_filters_as_for_items(tmp_path: Path) -> None:
    with Vault.create(tmp_path / "v") as v:
        commit_items(v, "a", [("a1", "kiwi one")], seen_at=at(0))
        commit_items(v, "b", [("b1", "kiwi two")], seen_at=at(3600), source="hn")
        assert _ids(_walk(v, "kiwi", 10, feed="a")) == ["a1"]
        assert _ids(_walk(v, "kiwi", 10, source="hn")) == ["b1"]
        assert _ids(_walk(v, "kiwi", 10, since=at(1800))) == ["b1"]
        assert _ids(_walk(v, "kiwi", 10, until=at(1800))) == ["a1"]


def test_column_filters_and_operators_in_the_input_are_plain_words(tmp_path: Path) -> None:
    with Vault.create(tmp_path / "v") as v:
        commit_items(
            v,
            "a",
            [
                Item("rss", "a", "x", title="nothing", author="zebra"),
                Item("rss", "a", "y", title="near title x zebra"),
            ],
        )
        assert sorted(_ids(_walk(v, "zebra", 10))) == ["x", "y"]
        assert _ids(_walk(v, "author:zebra", 10)) == []  # not a column filter
        assert _ids(_walk(v, "title:zebra", 10)) == []  # the phrase "title zebra" is nowhere
        # "NEAR(title" is the phrase "near title", then the word "zebra"
        assert _ids(_walk(v, "NEAR(title zebra)", 10)) == ["y"]
        assert _ids(_walk(v, "zebra -near", 10)) == ["x"]
        assert sorted(_ids(_walk(v, "nothing OR near", 10))) == ["x", "y"]
        assert _ids(_walk(v, "zeb*", 10, state="any")) != []


def test_a_search_index_failure_fails_the_whole_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Vault.create(tmp_path / "v") as v:
        commit_items(v, "a", [("n1", "first kiwi")])
        size = v.size

        def broken(tx: object, docs: object) -> None:
            raise StorageError("the disk filled up while indexing")

        monkeypatch.setattr(search_index, "insert_docs", broken)
        with pytest.raises(StorageError, match="disk filled"):
            commit_items(v, "a", [("n2", "second kiwi")])
        monkeypatch.undo()
        assert v.size == size  # nothing of the failed commit is in the log
        assert [r["native_id"] for r in list_items(v.catalog)] == ["n1"]
        commit_items(v, "a", [("n2", "second kiwi")])
        assert sorted(_ids(_walk(v, "kiwi", 10))) == ["n1", "n2"]
        assert verify_vault(v, derived_sample=1.0).ok


# --------------------------------------------------------------------------- rebuild = incremental

WORDS = ["alpha", "bravo", "delta", "kilo", "zulu"]
batches = st.lists(
    st.tuples(
        st.lists(
            st.tuples(st.integers(0, 8), st.lists(st.sampled_from(WORDS), min_size=1, max_size=3)),
            max_size=5,
        ),
        st.lists(st.integers(0, 8), max_size=2),  # tombstones
    ),
    min_size=1,
    max_size=8,
)


@SETTINGS
@given(plan=batches)
def test_rebuild_equals_incremental_and_results_follow_the_latest_content(
    tmp_path_factory: pytest.TempPathFactory,
    plan: list[tuple[list[tuple[int, list[str]]], list[int]]],
) -> None:
    path = tmp_path_factory.mktemp("v") / "vault"
    model: dict[str, tuple[str, bool]] = {}  # native id -> (latest title, tombstoned)
    with Vault.create(path) as v:
        for step, (items, tombs) in enumerate(plan):
            titled = {f"n{nid}": " ".join(words) for nid, words in items}
            gone = [f"n{t}" for t in tombs if f"n{t}" not in titled and f"n{t}" in model]
            commit_items(v, "a", list(titled.items()), gone, seen_at=at(step * 60))
            for nid, title in titled.items():
                if title != model.get(nid, ("", False))[0] or model[nid][1]:
                    model[nid] = (title, False)
            for nid in gone:
                model[nid] = (model[nid][0], True)
        index = SearchIndex()
        incremental = list(index.rows(v.catalog))
        assert v.rebuild(["search"]) == ["search"]
        assert list(index.rows(v.catalog)) == incremental
        assert verify_vault(v, derived_sample=1.0).ok
        for word in WORDS:
            found = {h.native_id for h in _walk(v, word, 3)}
            expect = {n for n, (t, dead) in model.items() if word in t.split() and not dead}
            assert found == expect, word
            every = {h.native_id for h in _walk(v, word, 3, state="any")}
            assert every == {n for n, (t, _) in model.items() if word in t.split()}
    assert len(incremental) == len(model)


# --------------------------------------------------------------------------- pages


@SETTINGS
@given(
    n=st.integers(1, 40),
    distinct=st.integers(1, 4),
    limit=st.integers(1, 7),
)
def test_pages_never_repeat_or_skip_under_bm25_ties(
    tmp_path_factory: pytest.TempPathFactory, n: int, distinct: int, limit: int
) -> None:
    path = tmp_path_factory.mktemp("v") / "vault"
    with Vault.create(path) as v:
        # few distinct titles: many items share a score exactly
        commit_items(v, "a", [(f"n{i}", "ferry " + "ferry " * (i % distinct)) for i in range(n)])
        walked = _walk(v, "ferry", limit)
        whole = list(search(v, "ferry", limit=1000).entries)
    assert _ids(walked) == _ids(whole)
    assert len(set(_ids(walked))) == n
    keys = [(h.score, h.first_index) for h in walked]
    assert keys == sorted(keys)


def test_a_common_word_is_ranked_over_its_newest_matches_and_the_walk_stays_in_them(
    tmp_path: Path,
) -> None:
    with Vault.create(tmp_path / "v") as v:
        # ferry in every item, twice in the oldest: the best bm25 matches are the oldest
        commit_items(
            v, "a", [(f"n{i}", "ferry ferry boat" if i < 5 else "ferry boat") for i in range(30)]
        )
        every = list(search(v, "ferry", limit=1000, window=0).entries)
        assert len(every) == 30
        assert {h.native_id for h in every[:5]} == {f"n{i}" for i in range(5)}
        newest = sorted(h.first_index for h in every)[-10:]
        page = search(v, "ferry", limit=4, window=10)
        assert page.ranked_from == newest[0]
        walked = list(page.entries)
        while page.next is not None:
            page = search(v, "ferry", limit=4, window=10, cursor=page.next)
            walked.extend(page.entries)
        assert sorted(h.first_index for h in walked) == newest
        keys = [(h.score, h.first_index) for h in walked]
        assert keys == sorted(keys)
        # fewer matches than the window: every match is ranked
        few = search(v, "boat", limit=1000, window=100)
        assert few.ranked_from == 0
        assert len(few.entries) == 30
        with pytest.raises(RequestError, match="window"):
            search(v, "ferry", window=-1)


def test_a_cursor_only_continues_its_own_query(tmp_path: Path) -> None:
    with Vault.create(tmp_path / "v") as v:
        commit_items(v, "a", [(f"n{i}", "ferry boat") for i in range(5)])
        page = search(v, "ferry", limit=2)
        assert page.next is not None
        assert all(c.isalnum() or c in "-_" for c in page.next)
        for q, filters in (("boat", {}), ("ferry", {"feed": "b"}), ("ferry", {"state": "any"})):
            with pytest.raises(CursorError, match="other filters"):
                search(v, q, cursor=page.next, **filters)  # type: ignore[arg-type]
        with pytest.raises(CursorError):
            search(v, "ferry", cursor="garbage!")


# --------------------------------------------------------------------------- hostile queries

HOSTILE = [
    '"',
    '"""',
    '"unclosed phrase',
    "NEAR(",
    "NEAR(a b, 2)",
    "*",
    "a*b*",
    "**",
    "title:secret",
    "{title body}: x",
    "-",
    "- -",
    "-x",
    "OR",
    "a OR",
    "OR a",
    "a OR OR b",
    "a OR -b",
    "AND NOT",
    "a AND b NOT c",
    "^start",
    "+plus",
    ")(",
    "((((a))))",
    "x" * 2000,
    "a " * 600,
    "\x00",
    "nul\x00byte",
    "\x1b[31m",
    "\u202e",
    "'; DROP TABLE items; --",
    "rank MATCH 'bm25(1)'",
    "🦀 unicode ünïcödé",
    "",
    "   ",
    "x" * 1_000_000,
]


@pytest.fixture(scope="module")
def small_vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "vault"
    with Vault.create(path) as v:
        commit_items(v, "a", [("n1", "secret title"), ("n2", "start plus a b c")])
    return path


@pytest.mark.parametrize("q", HOSTILE, ids=lambda q: repr(q[:20]))
def test_hostile_queries_give_a_clear_error_or_a_literal_search(small_vault: Path, q: str) -> None:
    with Vault.open(small_vault, readonly=True) as v:
        try:
            page = search(v, q, total=True)
        except QueryError as exc:
            message = str(exc)
        else:
            assert page.total == len(page.entries)
            return
    assert message.startswith("query")
    assert "sqlite" not in message.lower()


@SETTINGS
@given(q=st.text(max_size=60))
def test_any_text_is_a_query_or_a_query_error(small_vault: Path, q: str) -> None:
    with Vault.open(small_vault, readonly=True) as v:
        try:
            expr = parse_query(q)
        except QueryError:
            return
        search(v, q)  # never an SQL error
    # every string in the expression is quoted: outside quotes only operators remain
    outside = re.sub(r'"(?:[^"]|"")*"', "", expr)
    assert set(re.findall(r"[A-Za-z]+", outside)) <= {"AND", "OR", "NOT"}


@pytest.mark.parametrize(
    ("q", "expr"),
    [
        ("hello", '"hello"'),
        ("hello world", '"hello" AND "world"'),
        ('"big news"', '"big news"'),
        ("arch*", '"arch" *'),
        ('"new yo"*', '"new yo" *'),
        ("a OR b c", '("a" OR "b") AND "c"'),
        ('a -b -"c d"', '(("a") NOT "b") NOT "c d"'),
        ("title:x", '"title:x"'),
        ("NEAR(a", '"NEAR(a"'),
        ("a *** b", '"a" AND "b"'),
    ],
)
def test_the_mini_syntax_translates_to_quoted_fts5(q: str, expr: str) -> None:
    assert parse_query(q) == expr


# --------------------------------------------------------------------------- the CLI

HOSTILE_TITLE = "Trojan \x1b[2J\x1b[31mred \u202eevil\u202c [bold]markup[/bold] kiwi"


def test_cli_search_output_is_inert_and_json_holds_the_parts(tmp_path: Path) -> None:
    path = tmp_path / "v"
    with Vault.create(path) as v:
        commit_items(v, "a", [("n1", HOSTILE_TITLE), ("n2", "<script>alert(1)</script> kiwi")])
    env = {"COLUMNS": "200"}
    done = run_echoctl("--vault", str(path), "search", "kiwi", env=env, drop=("FORCE_COLOR",))
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    assert "\u202e" not in done.stdout
    assert "\\u202e" in done.stdout  # shown escaped
    assert "[bold]markup[/bold]" in done.stdout  # Rich markup in a title prints literally
    assert "<script>" not in done.stdout  # tags are not indexed text
    assert "2 hit(s)" in done.stdout
    data = run_echoctl("--vault", str(path), "search", "kiwi", "--json", "--total")
    assert data.returncode == 0, data.stderr
    page = json.loads(data.stdout)
    assert page["total"] == 2
    first = next(e for e in page["entries"] if e["native_id"] == "n1")
    assert "\u202eevil" in first["title"]  # data, exact but for control characters
    assert {"text": "kiwi", "hit": True} in first["title_parts"]
    bad = run_echoctl("--vault", str(path), "search", '"unclosed', "--json")
    assert bad.returncode == 2
    assert json.loads(bad.stderr)["error"]["message"].startswith("query: the quote")


def test_cli_rebuild_rebuilds_the_search_index(tmp_path: Path) -> None:
    path = tmp_path / "v"
    with Vault.create(path) as v:
        commit_items(v, "a", [("n1", "kiwi")])
    done = run_echoctl("--vault", str(path), "rebuild", "search", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rebuilt"] == ["search"]
    found = run_echoctl("--vault", str(path), "search", "kiwi", "--json")
    assert [e["native_id"] for e in json.loads(found.stdout)["entries"]] == ["n1"]
