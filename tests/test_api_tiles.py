"""The C2SP tlog-tiles read paths, read by an independent tlog-tiles client.

The client below is written from the specifications alone and shares no code
with ``echo_archive`` (only ``hashlib`` and ``cryptography``'s Ed25519):

* c2sp.org/signed-note: a note is text, an empty line, signature lines
  ``— <name> base64(key id || signature)``; an Ed25519 key id is
  ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``; a verifier key is
  ``name+hex(key id)+base64(0x01 || public key)``.
* c2sp.org/tlog-checkpoint: the text is origin, tree size, base64 root hash.
* c2sp.org/tlog-tiles: tile ``N`` of level ``L`` holds the hashes
  ``MTH(D[(N*256+i) * 256**L : (N*256+i+1) * 256**L])``; a partial tile of
  the tree of size ``s`` has ``floor(s / 256**L) mod 256`` of them, at
  ``.p/<W>``; ``N`` is written in 3-digit elements, all but the last
  prefixed ``x``; entry bundles are uint16 big-endian length-prefixed entries.
* RFC 9162 §2.1.1 (MTH, leaf hash ``SHA-256(0x00 || d)``, node hash
  ``SHA-256(0x01 || l || r)``), §2.1.3.1 (PATH), §2.1.3.2 (verifying it).

It reads two logs over real HTTP on loopback: the Tessera log of
``../shared/conformance/tessera-log`` served by a plain file server
(``http.server``), and ECHO's own log served by the API under uvicorn (and,
in the slow test, by the real service ``echoctl serve`` runs), recomputing
both roots from the tiles and the entry bundles and checking them against
the signed checkpoints.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import http.server
import json
import re
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI

from echo_archive.api.deps import ApiContext
from echo_archive.api.keys import create_key
from echo_archive.api.roles import Role
from echo_archive.api.routes import mount
from echo_archive.api.routes.tiles import accepts_gzip, format_index, parse_tile_path
from echo_archive.config import ApiSection
from echo_archive.errors import RequestError
from echo_archive.service.scheduler import ManualClock
from echo_archive.vault.vault import Record, Vault
from echo_archive.vault.writer import VaultWriter
from tests.conftest import file_meta, run_echoctl, sample_records, shared_dir
from tests.test_service import in_process

# --------------------------------------------------------------------------- the client


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x00 || d)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1), RFC 9162 §2.1.1."""
    return 1 << ((n - 1).bit_length() - 1)


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle Tree Hash of a list of leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = split_point(len(leaves))
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


@dataclass(frozen=True)
class VerifierKey:
    name: str
    key_id: bytes
    public_key: bytes


def parse_verifier_key(vkey: str) -> VerifierKey:
    """c2sp.org/signed-note verifier key ``name+hexid+base64(0x01 || key)``, checked."""
    name, hex_id, b64 = vkey.strip().split("+", 2)
    raw = base64.b64decode(b64, validate=True)
    assert raw[:1] == b"\x01", "not an Ed25519 verifier key"
    assert len(raw) == 33, "an Ed25519 public key is 32 bytes"
    key_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    assert key_id.hex() == hex_id, "the key id is not SHA-256(name || 0x0A || 0x01 || key)[:4]"
    return VerifierKey(name, key_id, raw[1:])


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    text: str


def open_checkpoint(note: str, vkey: str) -> Checkpoint:
    """Verify a checkpoint's Ed25519 signature by ``vkey`` and read its text (signed-note)."""
    key = parse_verifier_key(vkey)
    text, sep, sigs = note.rpartition("\n\n")
    assert sep, "a note has an empty line before its signatures"
    text += "\n"
    verified = False
    for line in sigs.splitlines():
        dash, name, b64 = line.split(" ")
        assert dash == "\u2014"
        raw = base64.b64decode(b64, validate=True)
        if name != key.name or raw[:4] != key.key_id:
            continue  # clients MUST ignore unknown signatures
        try:
            Ed25519PublicKey.from_public_bytes(key.public_key).verify(raw[4:], text.encode())
        except InvalidSignature:
            raise AssertionError(f"bad signature by {name}") from None
        verified = True
    assert verified, f"no signature by {key.name}"
    origin, size, root, *_extensions = text.splitlines()
    assert re.fullmatch(r"0|[1-9][0-9]*", size)
    digest = base64.b64decode(root, validate=True)
    assert len(digest) == 32
    return Checkpoint(origin, int(size), digest, text)


def tile_index_path(n: int) -> str:
    """``N`` as tlog-tiles path elements: 3 digits each, all but the last prefixed ``x``."""
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        groups.insert(0, f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(groups)


def tile_path(level: int | str, n: int, width: int) -> str:
    """``tile/<L>/<N>[.p/<W>]`` (width 256: a full tile)."""
    return f"tile/{level}/{tile_index_path(n)}" + ("" if width == 256 else f".p/{width}")


def width_at(size: int, level: int, n: int) -> int:
    """Hashes of tile ``n`` of ``level`` in the tree of ``size`` (``floor(s / 256**l)`` in all)."""
    return max(0, min(256, (size >> (8 * level)) - 256 * n))


def parse_bundle(data: bytes) -> list[bytes]:
    """Entries of a bundle: big-endian uint16 length, then that many bytes, repeated."""
    out, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        out.append(data[pos + 2 : pos + 2 + length])
        assert len(out[-1]) == length, "truncated bundle"
        pos += 2 + length
    return out


@dataclass
class TileClient:
    """A tlog-tiles client: ``get(path) -> (status, headers, body)`` fetches a resource."""

    get: Callable[[str], tuple[int, dict[str, str], bytes]]
    vkey: str
    fetched: list[str] = field(default_factory=list)
    _tiles: dict[tuple[int, int], bytes] = field(default_factory=dict)

    def fetch(self, path: str) -> bytes:
        status, _headers, body = self.get(path)
        assert status == 200, f"{path}: HTTP {status} {body[:200]!r}"
        self.fetched.append(path)
        return body

    def checkpoint(self) -> Checkpoint:
        return open_checkpoint(self.fetch("checkpoint").decode("utf-8"), self.vkey)

    def tile(self, size: int, level: int, n: int) -> list[bytes]:
        """The hashes of tile ``(level, n)`` as the tree of ``size`` has them."""
        width = width_at(size, level, n)
        assert width, f"tile {level}/{n} is not in the tree of size {size}"
        key = (level, n)
        if key not in self._tiles or len(self._tiles[key]) < 32 * width:
            data = self.fetch(tile_path(level, n, width))
            assert len(data) == 32 * width, f"tile {level}/{n} is {len(data)} bytes"
            self._tiles[key] = data
        data = self._tiles[key]
        return [data[i : i + 32] for i in range(0, 32 * width, 32)]

    def node(self, size: int, height: int, index: int) -> bytes:
        """The hash of the perfect subtree of ``2**height`` leaves at ``index * 2**height``.

        Read from the tile of level ``height // 8`` when ``height`` is a multiple
        of 8, else hashed from the two halves (tlog-tiles, "Merkle Tree").
        """
        if height % 8 == 0:
            level = height // 8
            return self.tile(size, level, index // 256)[index % 256]
        return node_hash(
            self.node(size, height - 1, 2 * index), self.node(size, height - 1, 2 * index + 1)
        )

    def subtree(self, size: int, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) (RFC 9162 §2.1.1) from the fewest tiles."""
        n = hi - lo
        if n & (n - 1) == 0 and lo % n == 0:
            return self.node(size, n.bit_length() - 1, lo // n)
        k = split_point(n)
        return node_hash(self.subtree(size, lo, lo + k), self.subtree(size, lo + k, hi))

    def root(self, size: int) -> bytes:
        return hashlib.sha256(b"").digest() if size == 0 else self.subtree(size, 0, size)

    def inclusion_path(
        self, size: int, index: int, lo: int = 0, hi: int | None = None
    ) -> list[bytes]:
        """RFC 9162 §2.1.3.1 PATH(m, D[n]) for leaf ``index``, from tiles; leaf's sibling first."""
        hi = size if hi is None else hi
        n = hi - lo
        if n <= 1:
            return []
        k = split_point(n)
        if index - lo < k:
            return [*self.inclusion_path(size, index, lo, lo + k), self.subtree(size, lo + k, hi)]
        return [*self.inclusion_path(size, index, lo + k, hi), self.subtree(size, lo, lo + k)]

    def leaves(self, size: int) -> list[bytes]:
        """Every leaf hash of the tree of ``size``, from the level-0 tiles."""
        return [h for n in range((size + 255) // 256) for h in self.tile(size, 0, n)]

    def entries(self, size: int) -> list[bytes]:
        """Every entry of the tree of ``size``, from the entry bundles."""
        out: list[bytes] = []
        for n in range((size + 255) // 256):
            width = width_at(size, 0, n)
            got = parse_bundle(self.fetch(tile_path("entries", n, width)))
            assert len(got) == width, f"bundle {n}: {len(got)} entries, not {width}"
            out += got
        return out


def verify_inclusion(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: recompute the root from a leaf hash and its inclusion proof."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def check_log(client: TileClient, spot: list[int]) -> Checkpoint:
    """Everything a tlog-tiles monitor checks, against the log's signed checkpoint.

    The checkpoint's signature; the root from the level-0 tiles, from the
    fewest tiles of every level, and from the entry bundles; every higher
    tile hash against the tiles below; an inclusion proof from tiles for the
    ``spot`` indexes.
    """
    cp = client.checkpoint()
    leaves = client.leaves(cp.size)
    assert len(leaves) == cp.size
    assert mth(leaves) == cp.root, "root of the level-0 tiles differs from the checkpoint's"
    assert client.root(cp.size) == cp.root, "root from the tiles differs from the checkpoint's"
    entries = client.entries(cp.size)
    assert [leaf_hash(e) for e in entries] == leaves, "an entry does not hash to its leaf"
    level = 1
    while cp.size >> (8 * level):
        count = cp.size >> (8 * level)
        for n in range((count + 255) // 256):
            for i, h in enumerate(client.tile(cp.size, level, n)):
                lower = client.tile(cp.size, level - 1, n * 256 + i)
                assert len(lower) == 256, "a tile hash covers a full tile of the level below"
                assert mth(lower) == h, f"tile {level}/{n}, hash {i}"
        level += 1
    for index in spot:
        path = client.inclusion_path(cp.size, index)
        assert verify_inclusion(leaves[index], index, cp.size, path, cp.root), index
        assert not verify_inclusion(leaves[index], index ^ 1, cp.size, path, cp.root)
    return cp


# --------------------------------------------------------------------------- servers


@contextmanager
def file_server(root: Path) -> Iterator[str]:
    """A plain static file server (``http.server``) of ``root`` on loopback, port 0."""
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def uvicorn_server(app: FastAPI) -> Iterator[str]:
    """``app`` under uvicorn on loopback, port 0, in a thread; its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn exited"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def http_getter(
    http: httpx.Client, headers: dict[str, str] | None = None
) -> Callable[[str], tuple[int, dict[str, str], bytes]]:
    def get(path: str) -> tuple[int, dict[str, str], bytes]:
        r = http.get("/" + path, headers=headers or {})
        return r.status_code, dict(r.headers), r.content

    return get


# --------------------------------------------------------------------------- fixtures

PUBLIC = ["checkpoint", "tiles", "proofs"]


def fill(path: Path, n: int, batch: int = 2000) -> None:
    """Commit ``n`` small file captures to the vault at ``path`` (several checkpoints)."""
    with Vault.open(path) as v:
        for start in range(0, n, batch):
            v.commit(sample_records(min(batch, n - start), start, size=40))


def vkey_of(path: Path) -> str:
    """The vault's verifier key: the public ``verifier.vkey`` that ``echoctl init`` writes."""
    return (path / "verifier.vkey").read_text(encoding="utf-8").strip()


def exported_vkey(path: Path) -> str:
    """The vault's verifier key as ``echoctl checkpoint --json`` exports it (a subprocess)."""
    done = run_echoctl("--vault", str(path), "checkpoint", "--json")
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["vkey"])


@contextmanager
def api_app(path: Path, public: list[str]) -> Iterator[tuple[FastAPI, ApiContext]]:
    with VaultWriter.open(path) as writer, Vault.open(path, readonly=True) as reader:
        ctx = ApiContext(reader=reader, writer=writer, config=ApiSection(public=public))
        app = FastAPI()
        mount(app, ctx)
        yield app, ctx


def asgi_get(
    app: FastAPI, *paths: str, headers: dict[str, str] | None = None
) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://echo.test") as c:
            return [await c.get(p, headers=headers or {}) for p in paths]

    return asyncio.run(run())


# --------------------------------------------------------------------------- tests


def test_path_encoding_is_the_specs_and_round_trips() -> None:
    assert format_index(1234067) == "x001/x234/067" == tile_index_path(1234067)
    for n in (0, 7, 999, 1000, 65535, 10**6, 2**64 - 1):
        assert format_index(n) == tile_index_path(n)
        for head in ("0", "63", "entries"):
            for tail in ("", ".p/1", ".p/255"):
                text = f"{head}/{format_index(n)}{tail}"
                parsed = parse_tile_path(text)
                assert parsed.index == n
                assert parsed.path() == text


def test_accept_encoding_is_read_as_rfc_9110_says() -> None:
    assert accepts_gzip("gzip, deflate")
    assert accepts_gzip("br;q=1.0, gzip;q=0.8")
    assert accepts_gzip("*")
    assert accepts_gzip("X-GZIP")
    assert not accepts_gzip("")
    assert not accepts_gzip("identity")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("*, gzip;q=0")
    assert not accepts_gzip("gzip;q=zero")
    assert not accepts_gzip("br, deflate")


@pytest.mark.parametrize(
    "bad",
    [
        "0/x000/001",  # a leading zero element: not the canonical encoding
        "0/01",
        "0/0001",
        "0/x001",  # the last element has no x
        "0/001/002",  # all but the last need x
        "0/y001/002",
        "00/000",
        "01/000",
        "64/000",
        "-1/000",
        "0/000.p/0",
        "0/000.p/256",
        "0/000.p/01",
        "0/000.p/",
        "0/000.p",
        "0/000/",
        "0/",
        "0",
        "entries",
        "data/000",
        "0/٠٠٠",  # Arabic-Indic digits are not ASCII digits
        "0/+01",
        "0/ 01",
        "0/" + "x999/" * 7 + "999",  # 8 elements: beyond a uint64
        "0/" + "x001/" * 200 + "000",
    ],
)
def test_malformed_tile_paths_are_refused_by_the_parser(bad: str) -> None:
    with pytest.raises(RequestError):
        parse_tile_path(bad)


def test_the_tessera_log_read_over_a_plain_file_server() -> None:
    log = shared_dir("conformance", "tessera-log")
    readme = (log.parent / "README.md").read_text(encoding="utf-8")
    found = re.search(r"`(example\.com/log/testdata\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+)`", readme)
    assert found, "the Tessera log's verifier key is not in conformance/README.md"
    vkey = found.group(1)
    words = "one two three four five six seven eit nain ten ileven twelf threeten fourten fivten"
    with file_server(log) as base, httpx.Client(base_url=base, timeout=10) as http:
        client = TileClient(http_getter(http), vkey)
        cp = check_log(client, spot=list(range(15)))
        assert (cp.origin, cp.size) == ("example.com/log/testdata", 15)
        assert [e.decode() for e in client.entries(cp.size)] == words.split()
        # every earlier checkpoint is the root of a prefix of the same leaves
        leaves = client.leaves(cp.size)
        for n in range(1, 16):
            old = open_checkpoint((log / f"checkpoint.{n}").read_text(encoding="utf-8"), vkey)
            assert old.size == n
            assert old.root == mth(leaves[:n])
        # a wrong key is refused by the client
        other = "example.com/log/testdata+00000000+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx"
        with pytest.raises(AssertionError):
            open_checkpoint(client.fetch("checkpoint").decode(), other)


def test_echos_log_read_by_the_same_client_over_uvicorn(vault_path: Path) -> None:
    size = 256 * 11 + 184  # level 0: 11 full tiles and a partial; level 1: a partial of 11
    fill(vault_path, size)
    vkey = vkey_of(vault_path)
    with (
        api_app(vault_path, PUBLIC) as (app, ctx),
        uvicorn_server(app) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        client = TileClient(http_getter(http), vkey)
        cp = check_log(client, spot=[0, 1, 255, 256, 1000, size - 1])
        assert cp.size == size
        assert cp.origin == ctx.reader.origin
        assert cp.text.splitlines()[0] == "echo.archive/test0000deadbeef"
        assert "tile/0/011.p/184" in client.fetched
        assert "tile/1/000.p/11" in client.fetched
        # the entries are the vault's entries, byte for byte
        assert client.entries(size)[300] == ctx.reader.entry(300).raw
        # an inclusion proof from tiles is the one the API serves
        proof = http.get("/v1/proofs/inclusion", params={"index": 1000}).json()
        path = client.inclusion_path(size, 1000)
        assert [base64.b64encode(h).decode() for h in path] == proof["proof"]
        # headers: the spec's content types and caching
        full = http.get("/tile/0/000")
        partial = http.get("/tile/0/011.p/184")
        bundle = http.get("/tile/entries/000")
        note = http.get("/checkpoint")
        assert full.headers["content-type"] == "application/octet-stream"
        assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert bundle.headers["cache-control"] == "public, max-age=31536000, immutable"
        # bundles are gzipped for a client that takes it (httpx sends gzip, deflate)
        assert bundle.headers["content-encoding"] == "gzip"
        assert bundle.headers["vary"] == "Accept-Encoding"
        plain = http.get("/tile/entries/000", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.content == bundle.content
        assert len(parse_bundle(plain.content)) == 256
        assert int(bundle.headers["content-length"]) < len(plain.content) / 2
        assert partial.headers["cache-control"] == "public, max-age=60"
        assert note.headers["content-type"] == "text/plain; charset=utf-8"
        assert note.headers["cache-control"] == "public, max-age=5"
        # an older partial tile (of an earlier checkpoint) is still served, as a prefix
        older = http.get("/tile/0/011.p/100").content
        assert older == partial.content[: 32 * 100]
        # the tree grows: the client follows, and the partial tile became full
        fill_more = sample_records(72, size, size=40)
        with Vault.open(vault_path) as v:
            v.commit(fill_more)
        grown = check_log(TileClient(http_getter(http), vkey), spot=[size, size + 71])
        assert grown.size == size + 72
        assert http.get("/tile/0/011").status_code == 200
        assert http.get("/tile/0/011.p/184").content == partial.content


def test_bad_and_absent_tiles_are_400_and_404_never_500(vault_path: Path) -> None:
    fill(vault_path, 300)  # level 0: tile 0 full, tile 1 of 44; level 1: tile 0 of 1
    with api_app(vault_path, PUBLIC) as (app, _ctx):
        cases = {
            "/tile/0/000": 200,
            "/tile/0/001.p/44": 200,
            "/tile/0/001.p/45": 404,
            "/tile/0/001": 404,
            "/tile/0/002.p/1": 404,
            "/tile/1/000.p/1": 200,
            "/tile/1/000.p/2": 404,
            "/tile/1/000": 404,
            "/tile/2/000.p/1": 404,
            "/tile/63/000.p/1": 404,
            "/tile/entries/001.p/44": 200,
            "/tile/entries/001.p/45": 404,
            "/tile/entries/x999/x999/x999/x999/x999/x999/999": 404,
            "/tile/0/x018/x446/x744/x073/x709/x551/615": 404,  # 2**64 - 1
            "/tile/0/x999/x999/x999/x999/x999/x999/999.p/255": 404,
            "/tile/0/000.p/0": 400,
            "/tile/0/000.p/256": 400,
            "/tile/0/x000/000": 400,
            "/tile/64/000": 400,
            "/tile/0/" + "x999/" * 7 + "999": 400,
            "/tile/0/%00": 400,
            "/tile/0/000%2F": 400,
            "/tile/": 400,
            "/tile/entries/": 400,
            "/tile/entries/000.p/-1": 400,
        }
        got = asgi_get(app, *cases)
        for (path, want), r in zip(cases.items(), got, strict=True):
            assert r.status_code == want, (path, r.status_code, r.text)
            if want != 200:
                assert r.json()["detail"]["code"] == ("request" if want == 400 else "not_found")
                assert r.json()["detail"]["message"]
        named = {r.url.path: r.json()["detail"]["message"] for r in got if r.status_code == 400}
        assert "width '256'" in named["/tile/0/000.p/256"]
        assert "not canonical" in named["/tile/0/x000/000"]
        assert "level '64'" in named["/tile/64/000"]


def test_public_groups_open_the_tiles_and_the_checkpoint_only_when_configured(
    vault_path: Path,
) -> None:
    fill(vault_path, 10)
    paths = ("/checkpoint", "/tile/0/000.p/10", "/tile/entries/000.p/10")
    with api_app(vault_path, []) as (app, ctx):
        for r in asgi_get(app, *paths):
            assert r.status_code == 401, r.url
            assert r.headers["www-authenticate"].startswith("Bearer")
        viewer = create_key(ctx.writer, "v", Role.VIEWER, now=time.time(), actor="cli:t")[0]
        for r in asgi_get(app, *paths, headers={"Authorization": f"Bearer {viewer}"}):
            assert r.status_code == 200, r.url
            assert r.headers["cache-control"].startswith("private, ")  # never in shared caches
    with api_app(vault_path, ["checkpoint"]) as (app, _ctx):
        cp, tile, bundle = asgi_get(app, *paths)
        assert cp.status_code == 200
        assert cp.headers["cache-control"] == "public, max-age=5"
        assert tile.status_code == bundle.status_code == 401
        # a credential sent on an open group is still checked
        (bad,) = asgi_get(app, "/checkpoint", headers={"X-API-Key": "echo_bogus"})
        assert bad.status_code == 401
    with api_app(vault_path, ["tiles"]) as (app, _ctx):
        cp, tile, bundle = asgi_get(app, *paths)
        assert cp.status_code == 401
        assert tile.status_code == bundle.status_code == 200
        assert tile.headers["cache-control"] == "public, max-age=60"


def test_a_bundle_holding_an_entry_over_65535_bytes_is_refused_not_misencoded(
    vault_path: Path,
) -> None:
    big_name = "n" * 70_000
    with Vault.open(vault_path) as v:
        v.commit(sample_records(3))
        v.commit([Record(type="capture", meta=file_meta(big_name, 1), blobs={"body": b"x"})])
        v.commit(sample_records(2, 3))
    with api_app(vault_path, PUBLIC) as (app, ctx):
        assert len(ctx.reader.entry(3).raw) > 65535
        bundle, tile, cp = asgi_get(app, "/tile/entries/000.p/6", "/tile/0/000.p/6", "/checkpoint")
        assert bundle.status_code == 501
        detail = bundle.json()["detail"]
        assert detail["code"] == "entry_too_large"
        assert detail["index"] == 3
        assert detail["size"] == len(ctx.reader.entry(3).raw)
        assert "/v1/entries/3" in detail["message"]
        # the bundle before it is served; the tiles and checkpoint are not affected
        (before,) = asgi_get(app, "/tile/entries/000.p/3")
        assert before.status_code == 200
        assert len(parse_bundle(before.content)) == 3
        assert tile.status_code == 200
        assert cp.status_code == 200
        leaves = [tile.content[i : i + 32] for i in range(0, 6 * 32, 32)]
        assert leaves[3] == leaf_hash(ctx.reader.entry(3).raw)


@pytest.mark.slow
def test_the_real_service_serves_the_tiles_on_its_listen_address(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    Vault.create(vault, origin="echo.archive/tiles-test").close()  # no feeds: nothing to harvest
    with (vault / "echo.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[api]\npublic = ["checkpoint", "tiles"]\n')
    size = 256 * 2 + 99
    fill(vault, size)
    vkey = exported_vkey(vault)
    assert vkey == vkey_of(vault)
    with in_process(vault, ManualClock(time.time())) as service:
        assert service.url
        with httpx.Client(base_url=service.url, timeout=30) as http:
            cp = check_log(TileClient(http_getter(http), vkey), spot=[0, 300, size - 1])
            assert (cp.origin, cp.size) == ("echo.archive/tiles-test", size)
            # a proof needs a credential here: the "proofs" group is not public
            assert http.get("/v1/proofs/inclusion", params={"index": 1}).status_code == 401


@pytest.mark.slow
def test_full_and_partial_tiles_of_levels_0_1_and_2(vault_path: Path) -> None:
    size = 256 * 256 + 256 * 3 + 77  # level 1: one full tile and a partial of 3; level 2: 1
    fill(vault_path, size, batch=5000)
    vkey = vkey_of(vault_path)
    with (
        api_app(vault_path, ["checkpoint", "tiles"]) as (app, _ctx),
        uvicorn_server(app) as base,
        httpx.Client(base_url=base, timeout=30) as http,
    ):
        client = TileClient(http_getter(http), vkey)
        cp = check_log(client, spot=[0, 65535, 65536, size - 1])
        assert cp.size == size
        for path in ("tile/1/000", "tile/1/001.p/3", "tile/2/000.p/1", "tile/0/259.p/77"):
            assert path in client.fetched, path
