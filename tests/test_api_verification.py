"""The /v1 verification routes: checkpoints, proofs and evidence, checked without trusting ECHO.

Answers are verified by code that shares nothing with ``echo_archive``'s
Merkle code (the independent client of ``tests/test_api_tiles.py``, and the
RFC 9162 §2.1.4.2 consistency check below), by the tlog-tiles client
reading the same log's tiles, and offline by the real ``echoctl
verify-proof`` in a subprocess, on a real vault behind the real routes
(``httpx.ASGITransport``, or uvicorn on loopback).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from echo_archive.api.deps import ApiContext
from echo_archive.api.keys import create_key
from echo_archive.api.roles import Role
from echo_archive.api.routes import mount
from echo_archive.config import ApiSection
from echo_archive.vault.vault import Record, Vault
from echo_archive.vault.writer import VaultWriter
from tests.conftest import run_echoctl, sample_records
from tests.test_api_tiles import (
    PUBLIC,
    TileClient,
    asgi_get,
    exported_vkey,
    http_getter,
    leaf_hash,
    mth,
    node_hash,
    open_checkpoint,
    uvicorn_server,
    verify_inclusion,
    vkey_of,
)

GROUPS = {"newsroom": ["bbc"]}


def verify_consistency(
    first: int, second: int, path: list[bytes], first_hash: bytes, second_hash: bytes
) -> bool:
    """RFC 9162 §2.1.4.2, step by step."""
    if first == second:
        return not path and first_hash == second_hash
    if first == 0 or first > second or not path:
        return False
    if first & (first - 1) == 0:  # 2. an exact power of 2: prepend first_hash
        path = [first_hash, *path]
    fn, sn = first - 1, second - 1  # 3.
    while fn & 1:  # 4.
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # 5.
    for c in path[1:]:  # 6.
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0  # 7.


def http_record(feed: str, i: int) -> Record:
    """An HTTP capture of ``feed`` (its entry names the feed)."""
    meta = {
        "kind": "http",
        "source": "rss",
        "feed": feed,
        "method": "GET",
        "url": f"https://example.org/{feed}/{i}",
        "final_url": f"https://example.org/{feed}/{i}",
        "redirects": [],
        "status": 200,
        "headers": {"content-type": "application/rss+xml"},
        "fetched_at": "2026-12-08T01:02:03.000000Z",
        "elapsed_ms": 5,
        "recorded_at": None,
        "truncated": False,
        "parse_error": None,
    }
    return Record(type="capture", meta=meta, blobs={"body": f"<rss>{feed} {i}</rss>".encode()})


@pytest.fixture
def filled(vault_path: Path) -> Path:
    """A vault of 9 commits: file captures, then one of feed bbc, one of feed hn (entries 0..)."""
    with Vault.open(vault_path) as v:
        for start in range(0, 700, 100):
            v.commit(sample_records(100, start, size=40))
        v.commit([http_record("bbc", 0), http_record("bbc", 1)])  # entries 700, 701
        v.commit([http_record("hn", 0)])  # entry 702
    return vault_path


@contextmanager
def api(path: Path, public: list[str]) -> Iterator[tuple[FastAPI, ApiContext]]:
    with VaultWriter.open(path) as writer, Vault.open(path, readonly=True) as reader:
        ctx = ApiContext(
            reader=reader, writer=writer, config=ApiSection(public=public, groups=GROUPS)
        )
        app = FastAPI()
        mount(app, ctx)
        yield app, ctx


def get_json(app: FastAPI, path: str, **kw: Any) -> Any:
    (r,) = asgi_get(app, path, **kw)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


def leaves_of(vault: Vault) -> list[bytes]:
    """Every leaf hash, recomputed from the stored entries' bytes."""
    return [leaf_hash(e.raw) for _, e in vault.iter_entries()]


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def test_the_checkpoint_and_every_checkpoint_kept_verify_with_the_vaults_key(
    filled: Path,
) -> None:
    vkey = vkey_of(filled)
    with api(filled, PUBLIC) as (app, ctx):
        leaves = leaves_of(ctx.reader)
        (note,) = asgi_get(app, "/v1/checkpoint")
        assert note.headers["content-type"] == "text/plain; charset=utf-8"
        cp = open_checkpoint(note.text, vkey)
        assert (cp.origin, cp.size, cp.root) == (ctx.reader.origin, 703, mth(leaves))
        assert note.text == ctx.reader.latest_checkpoint().note
        # keyset pages of 3 until next is null: every checkpoint once, ascending
        seen: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = get_json(
                app, "/v1/checkpoints?limit=3" + (f"&cursor={cursor}" if cursor else "")
            )
            assert page["total"] == 10  # the empty tree's and 9 commits'
            seen += page["entries"]
            cursor = page["next"]
            if cursor is None:
                break
        assert [e["size"] for e in seen] == [0, 100, 200, 300, 400, 500, 600, 700, 702, 703]
        for e in seen:
            signed = open_checkpoint(e["note"], vkey)
            assert signed.size == e["size"]
            assert signed.root == b64(e["root_hash"]) == bytes.fromhex(e["root_hash_hex"])
            assert signed.root == mth(leaves[: e["size"]])
            assert e["signed_at"].endswith("Z")
            assert e["vkey"] == vkey
        # the default page holds them all; bad limits and cursors are 400 naming them
        assert len(get_json(app, "/v1/checkpoints")["entries"]) == 10
        bad = asgi_get(
            app,
            "/v1/checkpoints?limit=0",
            "/v1/checkpoints?limit=1001",
            "/v1/checkpoints?limit=ten",
            "/v1/checkpoints?limit=1&limit=2",
            "/v1/checkpoints?cursor=bm90IGEgY3Vyc29y",
            "/v1/checkpoints?cursor=" + "A" * 600,
        )
        for r in bad[:4]:
            assert r.status_code == 400, r.text
            assert "limit" in r.json()["detail"]["message"]
        assert bad[4].status_code == 400
        assert bad[4].json()["detail"]["code"] == "request"
        assert bad[5].status_code in (400, 422)  # longer than a cursor can be


def test_inclusion_and_consistency_proofs_verify_independently(filled: Path) -> None:
    vkey = vkey_of(filled)
    with api(filled, PUBLIC) as (app, ctx):
        leaves = leaves_of(ctx.reader)
        kept = set(ctx.reader.checkpoint_sizes())
        for index, size in [(0, 1), (0, 703), (702, 703), (255, 256), (256, 700), (99, 100)]:
            doc = get_json(app, f"/v1/proofs/inclusion?index={index}&size={size}")
            path = [b64(h) for h in doc["proof"]]
            assert b64(doc["leaf_hash"]) == leaves[index]
            assert b64(doc["root_hash"]) == mth(leaves[:size])
            assert verify_inclusion(leaves[index], index, size, path, mth(leaves[:size]))
            if size in kept:
                cp = open_checkpoint(doc["checkpoint"]["note"], vkey)
                assert (cp.size, cp.root) == (size, mth(leaves[:size]))
                assert doc["tlog_proof"].startswith(f"c2sp.org/tlog-proof@v1\nindex {index}\n")
            else:
                assert doc["checkpoint"] is None
                assert doc["tlog_proof"] is None
        latest = get_json(app, "/v1/proofs/inclusion?index=5")
        assert latest["size"] == 703
        assert latest["checkpoint"]["size"] == 703
        for old, new in [(1, 703), (100, 700), (256, 703), (7, 8), (703, 703), (300, 301)]:
            doc = get_json(app, f"/v1/proofs/consistency?old={old}&new={new}")
            path = [b64(h) for h in doc["proof"]]
            first, second = mth(leaves[:old]), mth(leaves[:new])
            assert (b64(doc["old_root"]), b64(doc["new_root"])) == (first, second)
            assert verify_consistency(old, new, path, first, second), (old, new)
            if old != new:
                assert not verify_consistency(old, new, path, second, first)
            assert (doc["old_checkpoint"] is None) == (old not in kept)
            assert doc["new_checkpoint"] is None or doc["new_checkpoint"]["size"] == new
        assert get_json(app, "/v1/proofs/consistency?old=100")["new_size"] == 703


BAD_PROOF_QUERIES = [
    ("inclusion", "index"),
    ("inclusion?index=", "index"),
    ("inclusion?index=-1", "index"),
    ("inclusion?index=1.5", "index"),
    ("inclusion?index=0x10", "index"),
    ("inclusion?index=%EF%BC%91", "index"),  # a fullwidth digit one
    ("inclusion?index=%201", "index"),
    ("inclusion?index=1&index=2", "index"),
    ("inclusion?index=703", "index"),
    ("inclusion?index=99999999999999999999", "index"),
    ("inclusion?index=" + "9" * 5000, "index"),
    ("inclusion?index=0&size=0", "size"),
    ("inclusion?index=0&size=704", "size"),
    ("inclusion?index=0&size=9223372036854775807", "size"),
    ("inclusion?index=0&size=18446744073709551616", "size"),
    ("inclusion?index=5&size=5", "index"),
    ("consistency", "old"),
    ("consistency?old=0", "old"),
    ("consistency?old=-5&new=10", "old"),
    ("consistency?old=10&new=5", "old"),
    ("consistency?old=1&new=704", "new"),
    ("consistency?old=1&new=0", "new"),
    ("consistency?old=1&new=1e3", "new"),
    ("consistency?old=1&new=99999999999999999999999999", "new"),
]


def test_bad_proof_parameters_are_400_naming_the_parameter(filled: Path) -> None:
    with api(filled, PUBLIC) as (app, _ctx):
        got = asgi_get(app, *(f"/v1/proofs/{query}" for query, _ in BAD_PROOF_QUERIES))
    for (query, name), r in zip(BAD_PROOF_QUERIES, got, strict=True):
        assert r.status_code == 400, (query, r.text)
        detail = r.json()["detail"]
        assert detail["code"] == "request"
        assert detail["message"].startswith(name), (query, detail["message"])
        assert len(detail["message"]) < 300


@pytest.mark.slow
def test_evidence_and_proofs_from_the_api_verify_offline_with_echoctl_verify_proof(
    filled: Path, tmp_path: Path
) -> None:
    vkey = exported_vkey(filled)
    with api(filled, PUBLIC) as (app, ctx):
        admin = create_key(ctx.writer, "a", Role.ADMIN, now=time.time(), actor="cli:t")[0]
        auth = {"Authorization": f"Bearer {admin}"}
        digest = ctx.reader.entry(701).blobs[0].digest_text
        latest, by_digest, older = asgi_get(
            app,
            "/v1/evidence/701",
            f"/v1/evidence/{digest}",
            "/v1/evidence/5?size=100",
            headers=auth,
        )
        inclusion = get_json(app, "/v1/proofs/inclusion?index=42&size=300")
        evidence_42 = asgi_get(app, "/v1/evidence/42", headers=auth)[0].content
        size_now = ctx.reader.latest_checkpoint().size
    for r in (latest, by_digest, older):
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
    assert by_digest.content == latest.content
    # byte for byte what `echoctl prove` writes
    proved = tmp_path / "prove-701.json"
    done = run_echoctl("--vault", str(filled), "prove", "701", "--out", str(proved))
    assert done.returncode == 0, done.stderr
    with api(filled, PUBLIC) as (app, _ctx):
        (again,) = asgi_get(app, "/v1/evidence/701", headers=auth)
    assert proved.read_bytes() == again.content

    def verify_proof(name: str, data: bytes) -> tuple[int, dict[str, Any]]:
        path = tmp_path / name
        path.write_bytes(data)
        run = run_echoctl("verify-proof", str(path), "--vkey", vkey, "--json")
        return run.returncode, json.loads(run.stdout) if run.stdout.strip() else {}

    rc, report = verify_proof("latest.json", latest.content)
    assert rc == 0
    assert (report["ok"], report["index"], report["size"], report["key_pinned"]) == (
        True,
        701,
        size_now,
        True,
    )
    assert report["entry"]["meta"]["feed"] == "bbc"
    rc, report = verify_proof("older.json", older.content)
    assert (rc, report["index"], report["size"]) == (0, 5, 100)
    # the inclusion proof of /v1/proofs/inclusion, carried by a bundle, verifies too
    bundle = json.loads(evidence_42)
    bundle["tlog_proof"] = inclusion["tlog_proof"]
    rc, report = verify_proof("inclusion.json", json.dumps(bundle).encode())
    assert (rc, report["index"], report["size"]) == (0, 42, 300)
    # and a tampered one does not
    other = inclusion["proof"][0]
    flipped = base64.b64encode(bytes([b64(other)[0] ^ 1]) + b64(other)[1:]).decode()
    bundle["tlog_proof"] = inclusion["tlog_proof"].replace(other, flipped, 1)
    rc, report = verify_proof("tampered.json", json.dumps(bundle).encode())
    assert rc == 1
    assert report["ok"] is False


def test_public_groups_and_the_evidence_scope(filled: Path) -> None:
    open_routes = [
        "/v1/checkpoint",
        "/v1/checkpoints",
        "/v1/proofs/inclusion?index=1",
        "/v1/proofs/consistency?old=1",
    ]
    with api(filled, []) as (app, ctx):
        for r in asgi_get(app, *open_routes, "/v1/evidence/1"):
            assert r.status_code == 401, r.url
            assert r.headers["www-authenticate"].startswith("Bearer")
        now = time.time()
        viewer = create_key(ctx.writer, "v", Role.VIEWER, now=now, actor="cli:t")[0]
        scoped = create_key(
            ctx.writer, "s", Role.VIEWER, now=now, group="newsroom", groups=GROUPS, actor="cli:t"
        )[0]
        for key in (viewer, scoped):  # proofs:read, scope or not
            for r in asgi_get(app, *open_routes, headers={"X-API-Key": key}):
                assert r.status_code == 200, (r.url, r.text)
        mine, theirs, feedless = asgi_get(
            app,
            "/v1/evidence/700",
            "/v1/evidence/702",
            "/v1/evidence/3",
            headers={"X-API-Key": scoped},
        )
        assert mine.status_code == 200
        assert theirs.status_code == feedless.status_code == 403
        assert theirs.json()["detail"]["missing"] == "items:read"
        assert theirs.json()["detail"]["feed"] == "hn"
        assert "no feed" in feedless.json()["detail"]["message"]
        for r in asgi_get(
            app,
            "/v1/evidence/700",
            "/v1/evidence/702",
            "/v1/evidence/3",
            headers={"X-API-Key": viewer},
        ):
            assert r.status_code == 200
            assert r.headers["cache-control"] == "private, no-store"
        missing = asgi_get(
            app,
            "/v1/evidence/99999",
            "/v1/evidence/sha256:" + "0" * 64,
            "/v1/evidence/nonsense",
            "/v1/evidence/5?size=150",
            "/v1/evidence/150?size=100",
            "/v1/evidence/5?size=-1",
            "/v1/evidence/" + "9" * 100,
            headers={"X-API-Key": viewer},
        )
        assert [r.status_code for r in missing] == [404, 404, 404, 404, 400, 400, 400]
    with api(filled, PUBLIC) as (app, _ctx):
        for r in asgi_get(app, *open_routes):
            assert r.status_code == 200, (r.url, r.text)
        (evidence,) = asgi_get(app, "/v1/evidence/1")
        assert evidence.status_code == 401  # it holds item content: never public


def parse_tlog_proof(text: str) -> tuple[int, list[bytes], str]:
    """c2sp.org/tlog-proof@v1: header, ``index N``, one base64 hash a line, empty line, note."""
    head, _, note = text.partition("\n\n")
    lines = head.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1].startswith("index ")
    return int(lines[1][len("index ") :]), [b64(h) for h in lines[2:]], note


def test_evidence_and_proofs_checked_by_the_tlog_tiles_client(filled: Path) -> None:
    vkey = vkey_of(filled)
    with (
        api(filled, PUBLIC) as (app, ctx),
        uvicorn_server(app) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        viewer = create_key(ctx.writer, "v", Role.VIEWER, now=time.time(), actor="cli:t")[0]
        tiles = TileClient(http_getter(http), vkey)
        cp = tiles.checkpoint()
        for index in (0, 5, 701, 702):
            r = http.get(f"/v1/evidence/{index}", headers={"X-API-Key": viewer})
            assert r.status_code == 200, r.text
            bundle = json.loads(r.content)
            at, path, note = parse_tlog_proof(bundle["tlog_proof"])
            signed = open_checkpoint(note, vkey)
            entry = bundle["entry"].encode()
            assert at == index
            assert signed.size == cp.size  # the latest checkpoint, as /checkpoint serves it
            assert signed.root == cp.root == tiles.root(cp.size)
            assert verify_inclusion(leaf_hash(entry), index, signed.size, path, signed.root)
            assert path == tiles.inclusion_path(cp.size, index)
            assert tiles.entries(cp.size)[index] == entry
            for ref in json.loads(entry)["blobs"].values():
                content = b64(bundle["blobs"][ref["digest"]])
                assert "sha256:" + hashlib.sha256(content).hexdigest() == ref["digest"]
                assert len(content) == ref["size"]
        # the proofs of /v1/proofs are the tiles' too, at an older checkpoint's size
        doc = http.get("/v1/proofs/inclusion", params={"index": 42, "size": 300}).json()
        assert [b64(h) for h in doc["proof"]] == tiles.inclusion_path(300, 42)
        assert b64(doc["root_hash"]) == tiles.root(300)
