"""The items routes end to end: listings (JSON, CSV, NDJSON, Atom), history, diff, search.

A real vault holding the shared corpora (Hacker News, Reddit, GitHub,
TechCrunch's RSS) imported in place, plus items versioned and tombstoned
through the real harvest commit path; real API keys; the API mounted as the
service mounts it (:func:`echo_archive.api.routes.mount`) and called over
ASGI. CSV is read back with :mod:`csv`, NDJSON with :mod:`json`, Atom with
feedparser and a strict XML parser.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree as ET

import feedparser
import httpx
import pytest
from fastapi import FastAPI

from echo_archive.api.deps import ApiContext
from echo_archive.api.keys import create_key
from echo_archive.api.roles import Role
from echo_archive.api.routes import mount
from echo_archive.api.routes.items import csv_cell
from echo_archive.config import ApiSection
from echo_archive.harvest.importer import import_files
from echo_archive.index.items import count_items
from echo_archive.model import Item
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter

from .conftest import shared_dir
from .itemdata import at, commit_items

CORPUS_FILES = (
    "hackernews/topnews-vcr/hackernews_top_stories_details.yml",
    "reddit/praw/TestSubredditListings.test_hot.json",
    "github/github3py/Repository_issues_state_all.json",
    "feeds/feedjira/TechCrunch.xml",
)
ATOM = "{http://www.w3.org/2005/Atom}"
HOSTILE_TITLES = {
    "f1": '=HYPERLINK("http://evil.example/","click")',
    "f2": "+1+cmd|' /C calc'!A0",
    "f3": "-2+3",
    "f4": "@SUM(1,1)",
    "f5": "\tTabbed <script>alert(1)</script> & more",
    "f6": 'Quote "inside", comma, and\nnew line',
}


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("api-items") / "vault"
    with Vault.create(path) as v:
        import_files(v, [shared_dir("corpora") / rel for rel in CORPUS_FILES], workers=0)
        commit_items(v, "edits", [("a", "First title"), ("b", "Stays")], seen_at=at(0))
        commit_items(v, "edits", [("a", "Second title")], seen_at=at(60))
        commit_items(v, "edits", [], tombstones=["a"], seen_at=at(120))
        commit_items(v, "hostile", list(HOSTILE_TITLES.items()), seen_at=at(30))
        commit_items(
            v,
            "edits",
            [Item("rss", "edits", "c", url="javascript:alert(1)", title="Bad link", text="x")],
            seen_at=at(90),
        )
    return path


class Api:
    """The mounted API over the vault, and a key of each role (and a scoped one)."""

    def __init__(self, ctx: ApiContext) -> None:
        app = FastAPI()
        mount(app, ctx)
        self.app = app
        now = time.time()
        self.keys = {
            role.label: create_key(ctx.writer, f"items-{role.label}", role, now=now, actor="t")[0]
            for role in Role
        }
        self.keys["scoped"] = create_key(
            ctx.writer,
            "items-scoped",
            Role.ANALYST,
            now=now,
            group="newsroom",
            groups=ctx.config.groups,
            actor="t",
        )[0]

    def get(self, path: str, key: str | None = "viewer", **params: Any) -> Any:
        headers = {} if key is None else {"Authorization": f"Bearer {self.keys[key]}"}

        async def run() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://echo.test") as c:
                return await c.get(path, params=params, headers=headers)

        return asyncio.run(run())

    def ok(self, path: str, key: str = "viewer", **params: Any) -> Any:
        r = self.get(path, key, **params)
        assert r.status_code == 200, (path, params, r.text)
        return r

    def walk(self, path: str, key: str = "viewer", **params: Any) -> list[dict[str, Any]]:
        """Every entry of every page, following ``next``."""
        seen: list[dict[str, Any]] = []
        body = self.ok(path, key, **params).json()
        while True:
            seen.extend(body["entries"])
            assert len(body["entries"]) <= int(params.get("limit", 100))
            if body["next"] is None:
                assert body["next_url"] is None
                return seen
            assert body["entries"]
            url = urlsplit(body["next_url"])
            assert parse_qs(url.query)["cursor"] == [body["next"]]
            body = self.ok(path, key, **{**params, "cursor": body["next"]}).json()


@pytest.fixture(scope="module")
def api(vault: Path) -> Iterator[Api]:
    with VaultWriter.open(vault) as writer, Vault.open(vault, readonly=True) as reader:
        groups = {"newsroom": ["import-hn", "edits"]}
        yield Api(ApiContext(reader=reader, writer=writer, config=ApiSection(groups=groups)))


def _keys(entries: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(e["source"], e["feed"], e["native_id"]) for e in entries]


# --------------------------------------------------------------------------- pages


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_walking_the_pages_yields_every_item_exactly_once(
    api: Api, vault: Path, order: str
) -> None:
    walked = api.walk("/v1/items", limit=37, order=order)
    with Vault.open(vault, readonly=True) as v:
        expected = count_items(v.catalog)
    keys = _keys(walked)
    assert len(keys) == len(set(keys)) == expected > 700
    firsts = [e["first_index"] for e in walked]
    assert firsts == sorted(firsts, reverse=order == "newest")
    first = api.ok("/v1/items", limit=5, order=order).json()
    assert first["total"] == expected
    assert [e["native_id"] for e in first["entries"]] == [e["native_id"] for e in walked[:5]]
    assert api.ok("/v1/items", limit=5, count="false").json()["total"] is None
    deep = api.ok("/v1/items", limit=5, order=order, cursor=first["next"]).json()
    assert deep["total"] is None  # counted on the first page only, unless asked
    counted = api.ok("/v1/items", limit=5, order=order, cursor=first["next"], count="true")
    assert counted.json()["total"] == expected


def test_a_tampered_cursor_is_a_400(api: Api) -> None:
    page = api.ok("/v1/items", limit=10, source="hn").json()
    token = page["next"]
    assert token
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (flipped, token[:-6], "not-a-cursor", "A" * 513, token + "=="):
        r = api.get("/v1/items", limit=10, source="hn", cursor=bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["detail"]["code"] == "request"
        assert "cursor" in r.json()["detail"]["message"]
    other = api.get("/v1/items", limit=10, source="reddit", cursor=token)  # another query's
    assert other.status_code == 400
    assert "other filters" in other.json()["detail"]["message"]
    searched = api.ok("/v1/search", q="the", limit=2).json()["next"]
    assert api.get("/v1/items", limit=2, cursor=searched).status_code == 400


def test_filters_source_feed_state_and_instants(api: Api) -> None:
    hn = api.walk("/v1/items", source="hn", limit=1000)
    assert len(hn) == 500
    assert {e["source"] for e in hn} == {"hn"}
    edits = api.walk("/v1/items", feed="edits")
    assert {e["native_id"]: e["state"] for e in edits} == {
        "a": "tombstoned",
        "b": "active",
        "c": "active",
    }
    gone = api.walk("/v1/items", feed="edits", state="tombstoned")
    assert [e["native_id"] for e in gone] == ["a"]
    assert gone[0]["type"] == "tombstone"
    assert gone[0]["versions"] == 2
    # since/until as instants: +01:00 is the same instant as an hour earlier in Z
    late = api.walk("/v1/items", feed="edits", since="2026-12-05T13:01:00+01:00")
    assert sorted(e["native_id"] for e in late) == ["a", "c"]  # seen at +120 s and +90 s
    early = api.walk("/v1/items", feed="edits", until="2026-12-05T12:01:30Z")
    assert [e["native_id"] for e in early] == ["b"]
    missing = api.get("/v1/items", feed="no-such-feed")
    assert missing.status_code == 404
    assert "feeds with items" in missing.json()["detail"]["message"]
    # q: the listing of search matches, as item summaries
    found = api.walk("/v1/items", q='"Second title"')
    assert _keys(found) == [("rss", "edits", "a")]
    assert found[0]["title"] == ""  # a tombstone's summary has no title


# --------------------------------------------------------------------------- export forms


def _csv_rows(body: bytes) -> list[dict[str, str]]:
    text = body.decode("utf-8")
    assert text.endswith("\r\n")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _as_csv(entry: dict[str, Any]) -> dict[str, str]:
    return {k: csv_cell(v) for k, v in entry.items()}


def test_csv_and_ndjson_stream_the_whole_result_and_match_the_json_listing(api: Api) -> None:
    listing = api.walk("/v1/items", limit=1000)
    assert len(listing) > 1000 - 300  # several export pages of the keyset are walked below
    csv_r = api.ok("/v1/items.csv")
    assert csv_r.headers["content-type"].startswith("text/csv; charset=utf-8")
    rows = _csv_rows(csv_r.content)
    assert rows == [_as_csv(e) for e in listing]
    nd = api.ok("/v1/items.ndjson")
    assert nd.headers["content-type"].startswith("application/x-ndjson")
    lines = nd.content.decode("utf-8").split("\n")
    assert lines[-1] == ""
    assert [json.loads(line) for line in lines[:-1]] == listing
    # filters and q apply alike
    hn = [json.loads(x) for x in api.ok("/v1/items.ndjson", source="hn").text.splitlines()]
    assert hn == api.walk("/v1/items", source="hn", limit=1000)
    old = _csv_rows(api.ok("/v1/items.csv", feed="edits", order="oldest").content)
    assert [r["native_id"] for r in old] == ["a", "b", "c"]
    bad = api.get("/v1/items.ndjson", since="yesterday")
    assert bad.status_code == 400  # refused before streaming begins
    assert "RFC 3339" in bad.json()["detail"]["message"]


def test_csv_neutralizes_formula_injection(api: Api) -> None:
    rows = _csv_rows(api.ok("/v1/items.csv", feed="hostile").content)
    titles = {r["native_id"]: r["title"] for r in rows}
    assert titles["f1"] == "'" + HOSTILE_TITLES["f1"]
    assert titles["f2"] == "'" + HOSTILE_TITLES["f2"]
    assert titles["f3"] == "'-2+3"
    assert titles["f4"] == "'@SUM(1,1)"
    assert titles["f5"].startswith("'\t")
    assert titles["f6"] == HOSTILE_TITLES["f6"]  # quotes, commas, new lines round-trip
    for row in rows:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values())


def test_atom_feed_of_a_query_parses_and_pages(api: Api) -> None:
    listing = api.walk("/v1/items", source="reddit", limit=40)
    r = api.ok("/v1/items.atom", source="reddit", limit=40)
    assert r.headers["content-type"] == "application/atom+xml; charset=utf-8"
    root = ET.fromstring(r.content)  # noqa: S314 - our own output, parsed strictly
    assert root.tag == f"{ATOM}feed"
    self_link = next(x for x in root.findall(f"{ATOM}link") if x.get("rel") == "self")
    assert self_link.get("href") == str(r.request.url)
    ids: list[str] = []
    entries: list[ET.Element] = []
    page = root
    while True:
        entries.extend(page.findall(f"{ATOM}entry"))
        nxt = [x for x in page.findall(f"{ATOM}link") if x.get("rel") == "next"]
        if not nxt:
            break
        query = parse_qs(urlsplit(nxt[0].get("href", "")).query)
        assert query["source"] == ["reddit"]
        page = ET.fromstring(  # noqa: S314 - our own output
            api.ok("/v1/items.atom", source="reddit", limit=40, cursor=query["cursor"][0]).content
        )
    ids = [e.findtext(f"{ATOM}id") or "" for e in entries]
    assert ids == [f"http://echo.test/v1/items/{e['first_index']}" for e in listing]
    assert [e.findtext(f"{ATOM}title") for e in entries] == [
        x["title"] or f"{x['source']}:{x['feed']}:{x['native_id']}" for x in listing
    ]
    assert [e.findtext(f"{ATOM}updated") for e in entries] == [x["seen_at"] for x in listing]
    # a subscriber's parser reads the same feed
    parsed = feedparser.parse(r.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert [e.id for e in parsed.entries] == ids[:40]
    assert [e.title for e in parsed.entries] == [
        x["title"] or f"{x['source']}:{x['feed']}:{x['native_id']}" for x in listing[:40]
    ]
    # an entry's id is its item: the link resolves to the item's history
    item = api.ok(urlsplit(ids[0]).path).json()
    assert item["key"]["native_id"] == listing[0]["native_id"]


def test_atom_carries_hostile_text_as_text_and_links_only_the_web(api: Api) -> None:
    r = api.ok("/v1/items.atom", feed="hostile")
    assert b"<script>" not in r.content  # escaped by the serializer
    root = ET.fromstring(r.content)  # noqa: S314 - our own output
    titles = {e.findtext(f"{ATOM}title") for e in root.findall(f"{ATOM}entry")}
    assert "Tabbed <script>alert(1)</script> & more" in {(t or "").strip() for t in titles}
    edits = ET.fromstring(api.ok("/v1/items.atom", feed="edits").content)  # noqa: S314
    hrefs = [x.get("href", "") for x in edits.iter(f"{ATOM}link")]
    assert not [h for h in hrefs if h.startswith("javascript:")]
    assert "https://example.org/b" in hrefs


# --------------------------------------------------------------------------- one item


def test_an_item_history_by_key_and_by_index_and_its_diffs(api: Api) -> None:
    by_key = api.ok("/v1/items/rss:edits:a").json()
    assert by_key["state"] == "tombstoned"
    assert [h["type"] for h in by_key["history"]] == ["tombstone", "version", "item"]
    assert by_key["latest"]["title"] == "Second title"
    assert by_key["captures"]
    assert by_key["history"][0]["capture_index"] is not None
    first = by_key["history"][-1]["index"]
    assert api.ok(f"/v1/items/{first}").json() == by_key  # any entry gives the whole item
    diffs = api.ok("/v1/items/rss:edits:a/diff").json()
    assert [(d["older"], d["type"]) for d in diffs["diffs"]] == [
        (first, "version"),
        (by_key["history"][1]["index"], "tombstone"),
    ]
    assert "-First title" in diffs["diffs"][0]["lines"]
    assert "+Second title" in diffs["diffs"][0]["lines"]
    one = api.ok(
        "/v1/items/rss:edits:a/diff", **{"from": first, "to": by_key["history"][1]["index"]}
    ).json()
    assert one["diffs"] == diffs["diffs"][:1]
    wrong = api.get("/v1/items/rss:edits:a/diff", **{"from": 0})
    assert wrong.status_code == 400
    assert "not an entry of item" in wrong.json()["detail"]["message"]
    # a feed name holding "/" (an import's) and a native id holding ":"
    tc = api.walk("/v1/items", source="rss", feed="import-rss/techcrunch.com")[0]
    ref = f"rss:{tc['feed']}:{tc['native_id']}".replace("?", "%3F")
    assert api.ok(f"/v1/items/{ref}").json()["key"]["native_id"] == tc["native_id"]
    for missing in ("rss:edits:zzz", "999999999", "0", "9" * 30):  # 0 is a capture
        r = api.get(f"/v1/items/{missing}")
        assert r.status_code == 404, (missing, r.text)
        assert r.json()["detail"]["code"] == "not_found"
    for bad in ("not-a-ref", "\u00b2", "rss:edits:a%0A", "a%0Ab/diff", "%00"):
        r = api.get(f"/v1/items/{bad}")  # "\u00b2": a superscript digit is no index
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["detail"]["code"] == "request"


# --------------------------------------------------------------------------- search


def test_search_ranks_highlights_and_filters(api: Api) -> None:
    body = api.ok("/v1/search", q='"Second title"', state="any").json()
    assert [e["native_id"] for e in body["entries"]] == ["a"]
    hit = body["entries"][0]
    assert {"score", "title_parts", "snippet"} <= set(hit)
    assert all(set(p) == {"text", "hit"} for p in hit["snippet"])
    assert api.ok("/v1/search", q='"Second title"').json()["entries"] == []  # active only
    # markup in a source's text stays data in the parts
    tagged = api.ok("/v1/search", q="Tabbed", feed="hostile").json()["entries"][0]
    assert "".join(p["text"] for p in tagged["title_parts"]) == tagged["title"]
    assert [p["text"] for p in tagged["title_parts"] if p["hit"]] == ["Tabbed"]
    # paging walks every hit once, in rank order
    walked = api.walk("/v1/search", q="the", limit=25)
    scores = [(e["score"], e["first_index"]) for e in walked]
    assert scores == sorted(scores)
    assert len({e["first_index"] for e in walked}) == len(walked) == body_total(api, "the")
    hn = api.walk("/v1/search", q="the", source="hn", limit=1000)
    assert hn
    assert {e["source"] for e in hn} == {"hn"}


def body_total(api: Api, q: str) -> int:
    total: int = api.ok("/v1/search", q=q, limit=1, count="true").json()["total"]
    assert api.ok("/v1/search", q=q, limit=1).json()["total"] is None  # counted on request only
    return total


def test_a_malformed_search_query_is_a_400_naming_the_problem(api: Api) -> None:
    for q, words in (
        ('"unclosed', "never closed"),
        ("a OR", "OR needs a term"),
        ("-only", "only exclusions"),
        ("***", "no word"),
        ("x " * 40, "more than 32 terms"),
        ("x" * 1001, "at most 1000"),
        ("", "at least 1"),
    ):
        for path in ("/v1/search", "/v1/items"):
            r = api.get(path, q=q)
            if path == "/v1/items" and q == "":
                continue
            assert r.status_code == 400, (path, q, r.text)
            assert words in r.json()["detail"]["message"], (q, r.json())


# --------------------------------------------------------------------------- scope, auth


def test_a_scoped_key_sees_only_its_groups_feeds(api: Api) -> None:
    walked = api.walk("/v1/items", "scoped", limit=200)
    assert {e["feed"] for e in walked} == {"import-hn", "edits"}
    assert api.ok("/v1/items", "scoped").json()["total"] == len(walked) == 503
    assert api.get("/v1/items", "scoped", feed="import-reddit").status_code == 403
    other = api.get("/v1/items", "scoped", source="reddit")
    assert other.status_code == 404
    assert "import-reddit" not in other.text
    assert "reddit" not in other.json()["detail"]["message"].split("sources with items:")[1]
    csv_feeds = {r["feed"] for r in _csv_rows(api.ok("/v1/items.csv", "scoped").content)}
    assert csv_feeds == {"import-hn", "edits"}
    hits = api.walk("/v1/search", "scoped", q="the", state="any", limit=1000)
    assert hits
    assert {h["feed"] for h in hits} <= {"import-hn", "edits"}
    reddit = api.walk("/v1/items", source="reddit")[0]
    assert api.get(f"/v1/items/{reddit['index']}", "scoped").status_code == 403
    assert api.get("/v1/items/reddit:import-reddit:nope", "scoped").status_code == 403
    assert api.ok("/v1/items/rss:edits:a", "scoped").json()["state"] == "tombstoned"
    # a cursor of the unscoped listing does not continue the scoped one
    token = api.ok("/v1/items", limit=5).json()["next"]
    assert api.get("/v1/items", "scoped", limit=5, cursor=token).status_code == 400


def test_every_items_route_needs_credentials(api: Api) -> None:
    for path in (
        "/v1/items",
        "/v1/items.csv",
        "/v1/items.ndjson",
        "/v1/items.atom",
        "/v1/items/rss:edits:a",
        "/v1/items/rss:edits:a/diff",
        "/v1/search?q=title",
    ):
        r = api.get(path, None)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "entries" not in r.text


# --------------------------------------------------------------------------- hostile input


def test_hostile_query_values_are_400s_never_500s(api: Api) -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/items", {"limit": 0}, "limit"),
        ("/v1/items", {"limit": 1001}, "limit"),
        ("/v1/items", {"limit": 10**30}, "limit"),
        ("/v1/items", {"limit": "ten"}, "limit"),
        ("/v1/items", {"since": "2026-12-05"}, "since"),
        ("/v1/items", {"since": "2026-13-45T00:00:00Z"}, "since"),
        ("/v1/items", {"until": "2026-12-05T12:00:00"}, "until"),  # no offset
        ("/v1/items", {"feed": "a\x00b"}, "feed"),
        ("/v1/items", {"source": "x" * 300}, "source"),
        ("/v1/items", {"q": "title\x00"}, "q"),
        ("/v1/items", {"state": "deleted"}, "state"),
        ("/v1/items", {"order": "random"}, "order"),
        ("/v1/items", {"q": "title", "order": "oldest"}, "order"),
        ("/v1/items.csv", {"limit": "x", "since": "\x00"}, "since"),
        ("/v1/items.atom", {"limit": -1}, "limit"),
        ("/v1/search", {}, "q"),
        ("/v1/search", {"q": "ok", "state": "nope"}, "state"),
        ("/v1/search", {"q": "ok", "cursor": "\x00"}, "cursor"),
        ("/v1/items/rss:edits:a/diff", {"from": "first"}, "from"),
        ("/v1/items/rss:edits:a/diff", {"to": -5}, "to"),
    ]
    for path, params, name in cases:
        r = api.get(path, **params)
        assert r.status_code == 400, (path, params, r.status_code, r.text)
        detail = r.json()["detail"]
        assert detail["code"] == "request"
        assert re.search(rf"\b{name}\b", detail["message"]), (params, detail)
        assert len(r.content) < 2000  # a huge value is not echoed back whole


def test_openapi_documents_every_items_route(api: Api) -> None:
    doc = api.get("/openapi.json", None).json()
    for path in (
        "/v1/items",
        "/v1/items.csv",
        "/v1/items.ndjson",
        "/v1/items.atom",
        "/v1/items/{ref}",
        "/v1/items/{ref}/diff",
        "/v1/search",
    ):
        op = doc["paths"][path]["get"]
        assert op["summary"], path
        assert {"400", "401", "403", "404"} <= set(op["responses"]), path
        assert "422" not in op["responses"], path
    params = {p["name"]: p for p in doc["paths"]["/v1/items"]["get"]["parameters"]}
    assert params["limit"]["schema"]["maximum"] == 1000
    assert params["limit"]["schema"]["minimum"] == 1
    assert {"source", "feed", "state", "since", "until", "q", "cursor"} <= set(params)
