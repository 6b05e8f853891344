"""The captures routes end to end: listings, metadata, bodies as inert downloads, WARC, entries.

A real vault: shared corpora imported in place (GitHub's gzip-encoded
betamax bodies, TechCrunch's RSS), an HTML capture holding ``<script>``
through the real harvest commit path, a file capture with a hostile name;
real keys of each role and a scoped one. WARC records are read back with
warcio's own parser.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from echo_archive.api.deps import ApiContext
from echo_archive.api.routes.items import csv_cell
from echo_archive.config import ApiSection
from echo_archive.harvest.commit import commit_batch
from echo_archive.harvest.importer import import_files
from echo_archive.model import Exchange, ParseResult, Request
from echo_archive.pipeline.batch import Sighting
from echo_archive.sources.base import Feed
from echo_archive.vault.entry import format_timestamp
from echo_archive.vault.vault import Record, Vault
from echo_archive.vault.writer import VaultWriter

from .conftest import file_meta, shared_dir
from .itemdata import at, commit_items
from .test_api_items import Api

GITHUB = "github/github3py/Repository_issues_state_all.json"
TECHCRUNCH = "feeds/feedjira/TechCrunch.xml"
SCRIPT_PAGE = (
    b"<!doctype html><html><head><title>archived</title>"
    b"<script>document.title='ran';localStorage.setItem('ran','1')</script></head>"
    b"<body><h1>An archived page</h1><img src=x onerror=\"document.title='ran'\"></body></html>"
)
FILE_NAME = '../../etc/"evil" <name>\r\n.html'


def commit_exchange(v: Vault, feed: str, exchange: Exchange, source: str = "rss") -> None:
    """One capture of ``feed`` holding ``exchange`` (no items), through the harvest commit path."""
    sighting = Sighting(
        Feed(feed, source, {"url": exchange.url}), Request(exchange.url), exchange, ParseResult()
    )
    commit_batch(v, [sighting], format_timestamp(1_765_000_000_000_000_000))


def html_exchange(url: str, body: bytes = SCRIPT_PAGE) -> Exchange:
    return Exchange(
        "GET",
        url,
        200,
        (("content-type", "text/html; charset=utf-8"),),
        body,
        fetched_at=at(10),
    )


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("api-captures") / "vault"
    with Vault.create(path) as v:
        import_files(v, [shared_dir("corpora") / rel for rel in (TECHCRUNCH, GITHUB)], workers=0)
        commit_exchange(v, "pages", html_exchange("https://example.org/page.html"))
        commit_items(v, "edits", [("a", "An item")], seen_at=at(20))
        body = b"evidence bytes\x00\xff"
        meta = file_meta(FILE_NAME, len(body))
        v.commit([Record(type="capture", meta=meta, blobs={"body": body})])
    return path


@pytest.fixture(scope="module")
def api(vault: Path) -> Iterator[Api]:
    with VaultWriter.open(vault) as writer, Vault.open(vault, readonly=True) as reader:
        groups = {"newsroom": ["pages", "edits"]}
        yield Api(ApiContext(reader=reader, writer=writer, config=ApiSection(groups=groups)))


def _captures(api: Api, key: str = "analyst", **params: object) -> list[dict[str, object]]:
    return api.walk("/v1/captures", key, **params)


def _one(api: Api, **params: object) -> dict[str, object]:
    (found,) = [c for c in _captures(api, limit=1000) if all(c[k] == v for k, v in params.items())]
    return found


def test_the_listing_walks_every_capture_once_with_filters(api: Api, vault: Path) -> None:
    with Vault.open(vault, readonly=True) as v:
        expected = [i for i, e in v.iter_entries() if e.type == "capture"]
    for order in ("newest", "oldest"):
        walked = _captures(api, limit=3, order=order)
        assert [c["index"] for c in walked] == sorted(expected, reverse=order == "newest")
    pages = _captures(api, feed="pages")
    assert [(c["url"], c["kind"], c["status"]) for c in pages] == [
        ("https://example.org/page.html", "http", 200)
    ]
    files = _captures(api, kind="file")
    assert [c["name"] for c in files] == [FILE_NAME]
    github = _captures(api, source="github")
    assert github
    assert {c["source"] for c in github} == {"github"}
    recent = _captures(api, since="2026-12-05T12:00:05Z", until="2026-12-05T12:00:15Z")
    assert [c["feed"] for c in recent] == ["pages"]  # fetched at +10 s
    assert api.get("/v1/captures", "analyst", feed="nope").status_code == 404
    assert api.get("/v1/captures", "analyst", kind="ftp").status_code == 400
    assert api.get("/v1/captures", "analyst", limit=5000).status_code == 400
    token = api.ok("/v1/captures", "analyst", limit=1).json()["next"]
    assert api.get("/v1/captures", "analyst", limit=1, kind="http", cursor=token).status_code == 400


def test_csv_and_ndjson_exports_match_the_json_listing(api: Api) -> None:
    listing = _captures(api, limit=1000)
    nd = api.ok("/v1/captures.ndjson", "analyst")
    assert nd.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line) for line in nd.text.splitlines()] == listing
    rows = list(csv.DictReader(io.StringIO(api.ok("/v1/captures.csv", "analyst").text)))
    assert rows == [{k: csv_cell(v) for k, v in c.items()} for c in listing]
    scoped = api.ok("/v1/captures.csv", "scoped").text
    assert {r["feed"] for r in csv.DictReader(io.StringIO(scoped))} == {"pages", "edits"}
    assert api.get("/v1/captures.ndjson", "viewer").status_code == 403
    assert api.get("/v1/captures.csv", "analyst", since="soon").status_code == 400


def test_captures_need_captures_read_and_respect_the_scope(api: Api) -> None:
    assert api.get("/v1/captures", None).status_code == 401
    viewer = api.get("/v1/captures", "viewer")
    assert viewer.status_code == 403
    assert viewer.json()["detail"]["missing"] == "captures:read"
    scoped = _captures(api, "scoped", limit=1000)
    assert {c["feed"] for c in scoped} == {"pages", "edits"}  # no file capture, no import
    other = _one(api, source="github", status=200, url=_captures(api, source="github")[0]["url"])
    for path in ("", "/body", "/warc"):
        assert api.get(f"/v1/captures/{other['index']}{path}", "scoped").status_code == 403
    file_capture = _one(api, kind="file")
    assert api.get(f"/v1/captures/{file_capture['index']}", "scoped").status_code == 403
    page = _one(api, feed="pages")
    assert api.ok(f"/v1/captures/{page['index']}", "scoped").json()["meta"]["feed"] == "pages"
    missing = api.get("/v1/captures", "scoped", source="github")
    assert missing.status_code == 404
    assert "github" not in missing.json()["detail"]["message"].split(":", 1)[1].split(";")[1]


def test_metadata_and_body_are_the_bytes_as_received_served_inert(api: Api) -> None:
    tc = _one(api, feed="import-rss/techcrunch.com")
    meta = api.ok(f"/v1/captures/{tc['index']}", "analyst").json()
    assert meta["meta"]["headers"]["content-type"] == "application/rss+xml"
    body = api.ok(f"/v1/captures/{tc['index']}/body", "analyst")
    original = (shared_dir("corpora") / TECHCRUNCH).read_bytes()
    assert body.content == original  # raw first: exactly the file's bytes
    assert meta["body"]["digest"] == "sha256:" + hashlib.sha256(original).hexdigest()
    assert body.headers["etag"] == f'W/"{hashlib.sha256(original).hexdigest()}"'
    assert body.headers["content-length"] == str(len(original))
    assert body.headers["content-disposition"] == (
        f'attachment; filename="capture-{tc["index"]}.xml"'
    )
    page = _one(api, feed="pages")
    html = api.ok(f"/v1/captures/{page['index']}/body", "analyst")
    assert html.content == SCRIPT_PAGE
    assert html.headers["content-type"] == "application/octet-stream"
    assert html.headers["x-content-type-options"] == "nosniff"
    assert html.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert html.headers["content-disposition"] == (
        f'attachment; filename="capture-{page["index"]}.html"'
    )
    assert html.headers["x-echo-content-type"] == "text/html; charset=utf-8"
    # a hostile file name is reduced to a safe token: no path, no quote, no CR/LF
    evidence = _one(api, kind="file")
    got = api.ok(f"/v1/captures/{evidence['index']}/body", "analyst")
    assert got.content == b"evidence bytes\x00\xff"
    disposition = got.headers["content-disposition"]
    assert disposition == (
        f'attachment; filename="capture-{evidence["index"]}-etc_evil_name_.html"'
    )
    # not a capture, and beyond the log: 404; a bad index: 400
    item = api.walk("/v1/items", feed="edits")[0]
    for index in (item["index"], 10**9):
        for path in ("", "/body", "/warc"):
            r = api.get(f"/v1/captures/{index}{path}", "analyst")
            assert r.status_code == 404, (index, path, r.text)
    for bad in ("-1", "x", "1e3", "9" * 30):
        assert api.get(f"/v1/captures/{bad}", "analyst").status_code == 400, bad


def test_warc_record_reads_back_with_warcio(api: Api, vault: Path) -> None:
    for capture in (_captures(api, source="github")[0], _one(api, feed="pages")):
        index = capture["index"]
        r = api.ok(f"/v1/captures/{index}/warc", "analyst")
        assert r.headers["content-type"] == "application/warc"
        assert r.headers["content-disposition"] == f'attachment; filename="capture-{index}.warc"'
        assert r.content.startswith(b"WARC/1.1\r\n")
        records = [
            (
                rec.rec_type,
                rec.rec_headers.get_header("WARC-Target-URI"),
                rec.http_headers.get_statuscode(),
                rec.content_stream().read(),
            )
            for rec in ArchiveIterator(io.BytesIO(r.content))
        ]
        ((kind, target, status, payload),) = records
        assert kind == "response"
        assert target == capture["url"]
        meta = api.ok(f"/v1/captures/{index}", "analyst").json()["meta"]
        assert status == str(meta["status"])
        body = api.ok(f"/v1/captures/{index}/body", "analyst").content
        assert payload == body  # decoded as a client would
    # an import of a local file (a file: URL): warcio parses HTTP blocks of http(s) targets
    # only, so the block is read raw
    tc = _one(api, feed="import-rss/techcrunch.com")
    raw = api.ok(f"/v1/captures/{tc['index']}/warc", "analyst").content
    blocks = [
        (rec.rec_headers.get_header("WARC-Target-URI"), rec.raw_stream.read())
        for rec in ArchiveIterator(io.BytesIO(raw))
    ]
    ((target, block),) = blocks
    assert target == "file:TechCrunch.xml"
    head, _, payload = block.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-type: application/rss+xml" in head
    assert payload == (shared_dir("corpora") / TECHCRUNCH).read_bytes()
    evidence = _one(api, kind="file")
    assert api.get(f"/v1/captures/{evidence['index']}/warc", "analyst").status_code == 404


def test_entries_are_authorized_by_their_type(api: Api, vault: Path) -> None:
    # an audit entry exists: creating the API's keys was audited
    with Vault.open(vault, readonly=True) as v:
        by_type: dict[str, int] = {}
        for i, e in v.iter_entries():
            by_type.setdefault(e.type, i)
        size = v.size
    assert {"capture", "item", "audit"} <= set(by_type)
    item, capture, audit = by_type["item"], by_type["capture"], by_type["audit"]
    rules = {
        "viewer": {item: 200, capture: 403, audit: 403},
        "analyst": {item: 200, capture: 200, audit: 403},
        "admin": {item: 200, capture: 200, audit: 200},
    }
    for role, expected in rules.items():
        for index, status in expected.items():
            r = api.get(f"/v1/entries/{index}", role)
            assert r.status_code == status, (role, index, r.text)
    doc = api.ok(f"/v1/entries/{item}", "viewer").json()
    assert doc["index"] == item
    assert doc["type"] == "item"
    assert doc["leaf_hash"].startswith("sha256:")
    assert api.get(f"/v1/entries/{audit}", "analyst").json()["detail"]["missing"] == "audit:read"
    # scoped: entries of its feeds only; a file capture belongs to none
    edits_item = api.walk("/v1/items", feed="edits")[0]["index"]
    assert api.ok(f"/v1/entries/{edits_item}", "scoped").json()["meta"]["feed"] == "edits"
    assert api.get(f"/v1/entries/{item}", "scoped").status_code == 403  # an import's item
    assert api.get(f"/v1/entries/{_one(api, kind='file')['index']}", "scoped").status_code == 403
    assert api.get(f"/v1/entries/{audit}", "scoped").status_code == 403
    assert api.get(f"/v1/entries/{size + 10}", "admin").status_code == 404
    assert api.get("/v1/entries/abc", "admin").status_code == 400
    assert api.get(f"/v1/entries/{item}", None).status_code == 401


def test_openapi_documents_every_captures_route(api: Api) -> None:
    doc = api.get("/openapi.json", None).json()
    for path in (
        "/v1/captures",
        "/v1/captures.csv",
        "/v1/captures.ndjson",
        "/v1/captures/{index}",
        "/v1/captures/{index}/body",
        "/v1/captures/{index}/warc",
        "/v1/entries/{index}",
    ):
        op = doc["paths"][path]["get"]
        assert op["summary"], path
        assert {"400", "401", "403", "404"} <= set(op["responses"]), path
    body = doc["paths"]["/v1/captures/{index}/body"]["get"]["responses"]["200"]["content"]
    assert "application/octet-stream" in body
    json.dumps(doc)  # the document is JSON
