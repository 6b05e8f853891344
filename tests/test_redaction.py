"""The one redaction: rules, and planted secrets that must appear nowhere.

The planted-secrets tests put a distinct secret in every URL and header
position (userinfo, secret query and fragment parameters, credential request
headers, cookies and URLs in response headers), then harvest them live from a
loopback server, harvest them again with ``--replay`` of a recording, and
import them from every recording format. Each command runs as a real
subprocess with debug logs; afterwards every file of the vault is searched
(SQLite files raw and through queries of every row, zstd blobs decompressed)
together with every byte the commands printed: no secret may be found. The
one exception is the vault's ``echo.toml``: it is the operator's own
configuration, where a feed's URL credentials are configured.
"""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from echo_archive.harvest.recordings import read_recording, write_har, write_warc
from echo_archive.model import Exchange
from echo_archive.redaction import (
    REDACTED,
    REDACTED_HEADER_VALUE,
    SECRET_PARAMS,
    redact_event,
    redact_exchange,
    redact_headers,
    redact_json,
    redact_text,
    redact_url,
)

from .conftest import run_echoctl
from .httpfaults import FaultServer, Reply

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


# --------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://alice:hunter2@example.org/feed.xml?private_token=S",
            "https://example.org/feed.xml?private_token=REDACTED",
        ),
        ("https://alice@example.org/x", "https://example.org/x"),
        ("//u:p@example.org/x?a=1", "//example.org/x?a=1"),
        (
            "https://x/y?a=1&api_key=k&Access_Token=t&SIG=s&code=c#f",
            "https://x/y?a=1&api_key=REDACTED&Access_Token=REDACTED&SIG=REDACTED&code=REDACTED#f",
        ),
        ("https://x/cb#access_token=t&state=1", "https://x/cb#access_token=REDACTED&state=1"),
        ("https://x/y?page_token=abc&next=2", "https://x/y?page_token=abc&next=2"),
        ("https://x/y?api%5Fkey=k", "https://x/y?api%5Fkey=REDACTED"),
        ("https://x/a@b/c?q=1", "https://x/a@b/c?q=1"),  # '@' in the path is no userinfo
        ("https://x/y?%zz=1&token", "https://x/y?%zz=1&token"),
        ("not a url at all", "not a url at all"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert redact_url(expected) == expected  # idempotent


def test_every_documented_parameter_is_redacted() -> None:
    for name in SECRET_PARAMS:
        assert redact_url(f"https://x/?{name}=v1&{name.upper()}=v2") == (
            f"https://x/?{name}={REDACTED}&{name.upper()}={REDACTED}"
        )


def test_redact_text_finds_urls_pairs_and_schemes() -> None:
    text = (
        "GET https://a:b@h/x?token=S1, then ?key=S2&x=1 failed "
        "(Authorization: Bearer abc123def456). Usage: --param KEY=VALUE, api_key=<KEY>"
    )
    assert redact_text(text) == (
        "GET https://h/x?token=REDACTED, then ?key=REDACTED&x=1 failed "
        "(Authorization: Bearer <redacted>). Usage: --param KEY=VALUE, api_key=<KEY>"
    )
    assert redact_text("nothing here") == "nothing here"


def test_redact_headers() -> None:
    pairs = redact_headers(
        [
            ("Authorization", "Bearer t"),
            ("proxy-authorization", "Basic x"),
            ("Cookie", "a=b"),
            ("Set-Cookie", "sid=1"),
            ("X-API-Key", "k"),
            ("X-Auth-Token", "t"),
            ("X-Auth-Key", "k"),
            ("Private-Token", "t"),
            ("Location", "https://h/?sig=z"),
            ("Link", '<https://u:p@h/?page=2&access_token=t>; rel="next"'),
            ("Accept", "*/*"),
            ("ETag", '"abc"'),
            ("X-RateLimit-Remaining", "59"),
        ]
    )
    assert pairs == (
        ("Authorization", REDACTED_HEADER_VALUE),
        ("proxy-authorization", REDACTED_HEADER_VALUE),
        ("Cookie", REDACTED_HEADER_VALUE),
        ("Set-Cookie", REDACTED_HEADER_VALUE),
        ("X-API-Key", REDACTED_HEADER_VALUE),
        ("X-Auth-Token", REDACTED_HEADER_VALUE),
        ("X-Auth-Key", REDACTED_HEADER_VALUE),
        ("Private-Token", REDACTED_HEADER_VALUE),
        ("Location", "https://h/?sig=REDACTED"),
        ("Link", '<https://h/?page=2&access_token=REDACTED>; rel="next"'),
        ("Accept", "*/*"),
        ("ETag", '"abc"'),
        ("X-RateLimit-Remaining", "59"),
    )


def test_redact_json_and_the_log_processor() -> None:
    params = {"url": "https://u:p@h/f?token=t", "api_key": 12345, "nested": {"secret": ["a"]}}
    assert redact_json(params) == {
        "url": "https://h/f?token=REDACTED",
        "api_key": REDACTED,
        "nested": {"secret": [REDACTED]},
    }
    event = {"event": "fetch_retry", "url": "https://h/?api_key=k", "timestamp": "t"}
    assert redact_event(None, "info", event) == {**event, "url": "https://h/?api_key=REDACTED"}


def test_redact_exchange_touches_urls_and_headers_not_the_body() -> None:
    ex = Exchange(
        "GET",
        "https://u:p@h/x?token=t",
        200,
        (("Set-Cookie", "s=1"),),
        b"token=body-is-kept",
        final_url="https://h/y?code=c",
        redirects=("https://h/z?sig=s",),
        request_headers=(("Authorization", "Bearer b"),),
    )
    got = redact_exchange(ex)
    assert (got.url, got.final_url, got.redirects) == (
        "https://h/x?token=REDACTED",
        "https://h/y?code=REDACTED",
        ("https://h/z?sig=REDACTED",),
    )
    assert got.headers == (("Set-Cookie", REDACTED_HEADER_VALUE),)
    assert got.request_headers == (("Authorization", REDACTED_HEADER_VALUE),)
    assert got.body == ex.body


_NAME = st.sampled_from(sorted(SECRET_PARAMS))
# Secrets start with "zq", which no plain value holds (their alphabet has neither letter).
_SECRET = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=4, max_size=20).map(
    lambda s: "zq" + s
)
_PLAIN = st.text(alphabet="abcdefghij0123456789-._~", min_size=0, max_size=8)


@given(
    st.lists(st.tuples(_NAME, _SECRET), min_size=1, max_size=4),
    st.lists(st.tuples(st.sampled_from(["page", "q", "sort"]), _PLAIN), max_size=3),
    _SECRET,
    _SECRET,
)
def test_no_planted_secret_survives_redaction(
    secret_params: list[tuple[str, str]], plain: list[tuple[str, str]], user: str, password: str
) -> None:
    fields = [f"{n}={v}" for n, v in [*plain, *secret_params]]
    url = f"https://{user}:{password}@example.org/p?{'&'.join(fields)}#{fields[-1]}"
    for text in (redact_url(url), redact_text(f"failed: {url} (retrying)")):
        assert user not in text
        assert password not in text
        for _, value in secret_params:
            assert f"={value}" not in text
        for name, value in plain:
            assert f"{name}={value}" in text


# --------------------------------------------------------------------------- planted secrets


class Planted:
    """Distinct secrets, one per position, and the places to put them."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def __getitem__(self, where: str) -> str:
        if where not in self.values:
            self.values[where] = f"s{len(self.values)}x{secrets.token_hex(6)}"
        return self.values[where]

    def url(self, base: str, tag: str) -> str:
        """``base`` (``scheme://host/path``) with userinfo and every secret parameter."""
        scheme, rest = base.split("://", 1)
        query = "&".join(
            f"{name}={self[f'{tag} query {name}']}"
            for name in ("token", "access_token", "private_token", "api_key", "key", "sig")
        )
        user, password = self[f"{tag} user"], self[f"{tag} password"]
        self.values[f"{tag} basic"] = base64.b64encode(f"{user}:{password}".encode()).decode()
        fragment = f"access_token={self[f'{tag} fragment']}"
        return f"{scheme}://{user}:{password}@{rest}?{query}&page=1#{fragment}"

    def request_headers(self, tag: str) -> tuple[tuple[str, str], ...]:
        return (
            ("Authorization", f"Bearer {self[f'{tag} authorization']}"),
            ("Proxy-Authorization", f"Basic {self[f'{tag} proxy']}"),
            ("Cookie", f"sid={self[f'{tag} cookie']}"),
            ("X-API-Key", self[f"{tag} x-api-key"]),
            ("X-Auth-Token", self[f"{tag} x-auth-token"]),
            ("Private-Token", self[f"{tag} private-token"]),
            ("Accept", "application/json"),
        )

    def response_headers(self, tag: str, content_type: str) -> tuple[tuple[str, str], ...]:
        return (
            ("Content-Type", content_type),
            ("Set-Cookie", f"session={self[f'{tag} set-cookie']}; Path=/; HttpOnly"),
            ("Location", f"https://example.org/next?code={self[f'{tag} location']}"),
            ("Link", f'<https://example.org/p?page=2&token={self[f"{tag} link"]}>; rel="next"'),
            ("Content-Location", f"https://u:{self[f'{tag} content-location']}@example.org/c"),
        )


def _rows(db: Path) -> Iterator[tuple[str, object]]:
    """Every value of every row of every table of a SQLite file, with where it is."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - names from the file
                for value in row:
                    yield f"{db.name}:{table}", value
    finally:
        conn.close()


def _texts(vault: Path) -> Iterator[tuple[str, bytes]]:
    """Every byte string the vault holds: files raw, rows, zstd blobs decompressed."""
    for path in sorted(p for p in vault.rglob("*") if p.is_file()):
        if path.name == "echo.toml":  # the operator's configuration (see the module docstring)
            continue
        data = path.read_bytes()
        yield str(path), data
        if data.startswith(ZSTD_MAGIC):
            yield f"{path} (zstd)", zstandard.ZstdDecompressor().decompressobj().decompress(data)
        if data.startswith(b"SQLite format 3\x00"):
            for where, value in _rows(path):
                if isinstance(value, str):
                    yield where, value.encode("utf-8", "surrogatepass")
                elif isinstance(value, bytes):
                    yield where, value
                    if value.startswith(ZSTD_MAGIC):
                        inflated = zstandard.ZstdDecompressor().decompressobj().decompress(value)
                        yield f"{where} (zstd)", inflated


def find_secrets(planted: Planted, vault: Path, outputs: Iterable[str]) -> list[str]:
    """Where any planted secret is found (``"<secret's position> in <where>"``)."""
    needles = {value.encode(): where for where, value in planted.values.items()}
    found: list[str] = []
    blobs = list(_texts(vault))
    assert any("(zstd)" in where for where, _ in blobs), "no blob was searched"
    for where, data in [*blobs, *((f"output {i}", o.encode()) for i, o in enumerate(outputs))]:
        found += [f"{what} in {where}" for needle, what in needles.items() if needle in data]
    return found


def echoctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess with debug logs on stderr."""
    return run_echoctl("--log-level", "debug", *args, env=env)


def _outputs(*results: subprocess.CompletedProcess[str]) -> list[str]:
    return [text for r in results for text in (r.stdout, r.stderr)]


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    path = tmp_path / "v"
    assert echoctl("init", str(path)).returncode == 0
    return path


HN_ITEM = {
    "id": 8863,
    "type": "story",
    "by": "dhouston",
    "time": 1175714200,
    "title": "My YC app: Dropbox - Throw away your USB drive",
    "url": "http://www.getdropbox.com/u/2/screencast.html",
    "score": 111,
    "descendants": 0,
    "kids": [],
}
RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
    b"<link>https://example.org/</link><description>d</description>"
    b"<item><guid>item-1</guid><link>item-1</link><title>One</title></item>"
    b"</channel></rss>"
)
FRED = {
    "realtime_start": "2024-01-02",
    "realtime_end": "2024-01-02",
    "observation_start": "1600-01-01",
    "observation_end": "9999-12-31",
    "units": "lin",
    "output_type": 1,
    "file_type": "json",
    "order_by": "observation_date",
    "sort_order": "asc",
    "count": 1,
    "offset": 0,
    "limit": 100000,
    "observations": [
        {
            "realtime_start": "2024-01-02",
            "realtime_end": "2024-01-02",
            "date": "2023-01-01",
            "value": "1.5",
        }
    ],
}


def _assert_ran(*results: subprocess.CompletedProcess[str]) -> None:
    for r in results:
        assert r.returncode == 0, (r.args, r.stdout[-2000:], r.stderr[-2000:])


LOCAL = ("--feed", "local-rss", "--feed", "local-fred")


@pytest.mark.slow
def test_live_loopback_harvest_stores_logs_and_prints_no_secret(vault: Path) -> None:
    planted = Planted()
    with FaultServer() as server:
        rss_url = planted.url(server.url("/feed.xml"), "rss")
        final = f"/final.xml?code={planted['redirect code']}&secret={planted['redirect secret']}"
        server.route(
            "/feed.xml",
            Reply(
                302,
                [("Location", final), ("Set-Cookie", f"sid={planted['redirect set-cookie']}")],
            ),
        )
        server.route(
            "/final.xml",
            Reply(200, planted.response_headers("rss 200", "application/rss+xml"), RSS),
        )
        server.route(
            "/fred/series/observations",
            Reply(
                200, planted.response_headers("fred", "application/json"), json.dumps(FRED).encode()
            ),
        )
        env = {"FRED_API_KEY": planted["FRED_API_KEY"]}
        added = [
            echoctl("--vault", str(vault), "feeds", "add", "local-rss", "--source", "rss",
                    "--param", f"url={rss_url}", "--json", "--allow-private"),
            echoctl("--vault", str(vault), "feeds", "add", "local-fred", "--source", "fred",
                    "--param", "series_id=GDP", "--param", f"base_url={server.url('/fred')}",
                    "--allow-private"),
        ]  # fmt: skip
        _assert_ran(*added)
        runs = [
            echoctl("--vault", str(vault), "harvest", *LOCAL, "--json", env=env),
            echoctl("--vault", str(vault), "harvest", *LOCAL, env=env),
        ]
        _assert_ran(*runs)
        hits = [r for r in server.requests if r.path.startswith(("/feed.xml", "/fred/"))]
    assert hits, "the loopback server saw no request"
    assert any(planted["FRED_API_KEY"] in r.path for r in hits)  # the key was really sent
    assert any(r.header("authorization") for r in hits)  # so was the userinfo (Basic)
    report = json.loads(runs[0].stdout)
    assert {f["name"]: f["captures"] for f in report["feeds"]} == {"local-rss": 1, "local-fred": 1}
    shown = [
        echoctl("--vault", str(vault), "feeds", "list"),
        echoctl("--vault", str(vault), "feeds", "list", "--json"),
        echoctl("--vault", str(vault), "items", "--json"),
        echoctl("--vault", str(vault), "items"),
        echoctl("--vault", str(vault), "verify"),
    ]
    _assert_ran(*shown)
    assert find_secrets(planted, vault, _outputs(*added, *runs, *shown)) == []


def _recorded(planted: Planted, tag: str, url: str, body: bytes, content_type: str) -> Exchange:
    return Exchange(
        method="GET",
        url=planted.url(url, tag),
        status=200,
        headers=planted.response_headers(tag, content_type),
        body=body,
        final_url=planted.url(url, f"{tag} final"),
        fetched_at="2024-05-01T10:00:00Z",
        recorded_at="2024-05-01T10:00:00Z",
        request_headers=planted.request_headers(tag),
    )


@pytest.mark.slow
def test_replayed_harvest_stores_logs_and_prints_no_secret(vault: Path, tmp_path: Path) -> None:
    planted = Planted()
    feed_url = "https://feeds.example.org/feed.xml"
    recording = tmp_path / "recorded.har"
    write_har([_recorded(planted, "har", feed_url, RSS, "application/rss+xml")], recording)
    # The feed asks with its own credentials; replay matching ignores secret parameters.
    live_url = planted.url(feed_url, "feed")
    added = echoctl(
        "--vault", str(vault), "feeds", "add", "replayed", "--source", "rss", "--param",
        f"url={live_url}",
    )  # fmt: skip
    _assert_ran(added)
    runs = [
        echoctl(
            "--vault",
            str(vault),
            "harvest",
            "--feed",
            "replayed",
            "--json",
            "--replay",
            str(recording),
        ),
        echoctl("--vault", str(vault), "harvest", "--feed", "replayed", "--replay", str(recording)),
    ]
    _assert_ran(*runs)
    (feed,) = json.loads(runs[0].stdout)["feeds"]
    assert (feed["captures"], feed["new"], feed["error"]) == (1, 1, None)
    shown = [
        echoctl("--vault", str(vault), "feeds", "list"),
        echoctl("--vault", str(vault), "feeds", "list", "--json"),
        echoctl("--vault", str(vault), "items", "--json"),
    ]
    _assert_ran(*shown)
    assert find_secrets(planted, vault, _outputs(added, *runs, *shown)) == []


HN_URL = "https://hacker-news.firebaseio.com/v0/item/8863.json"


def _vcr_interaction(ex: Exchange, *, binary: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"encoding": "utf-8", "string": ex.body.decode()}
    return {
        "request": {
            "method": "GET",
            "uri": ex.url,
            "headers": {k: [v] for k, v in ex.request_headers},
            "body": {"encoding": "utf-8", "string": ""},
        },
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {k: [v] for k, v in ex.headers},
            "body": body,
            "url": ex.final_url,
        },
        "recorded_at": "2024-05-01T10:00:00",
    }


def _write_every_format(planted: Planted, folder: Path) -> dict[str, Path]:
    """One recording per format, each holding one HN item exchange with its own secrets."""
    body = json.dumps(HN_ITEM).encode()
    ex = {fmt: _recorded(planted, fmt, HN_URL, body, "application/json") for fmt in (
        "betamax", "ruby-vcr", "vcrpy", "exvcr", "pygithub", "har", "warc")}  # fmt: skip
    paths = {
        "betamax": folder / "betamax.json",
        "ruby-vcr": folder / "ruby.yml",
        "vcrpy": folder / "vcrpy.yaml",
        "exvcr": folder / "exvcr.json",
        "pygithub": folder / "Pygithub.test.txt",
        "har": folder / "traffic.har",
        "warc": folder / "traffic.warc.gz",
    }
    paths["betamax"].write_text(
        json.dumps(
            {"http_interactions": [_vcr_interaction(ex["betamax"])], "recorded_with": "betamax"}
        )
    )
    paths["ruby-vcr"].write_text(
        yaml.safe_dump(
            {"http_interactions": [_vcr_interaction(ex["ruby-vcr"])], "recorded_with": "VCR 6"}
        )
    )
    vcrpy = _vcr_interaction(ex["vcrpy"])
    vcrpy["response"]["body"] = {"string": ex["vcrpy"].body.decode()}
    paths["vcrpy"].write_text(yaml.safe_dump({"interactions": [vcrpy], "version": 1}))
    e = ex["exvcr"]
    paths["exvcr"].write_text(
        json.dumps(
            [
                {
                    "request": {
                        "url": e.url,
                        "method": "get",
                        "headers": dict(e.request_headers),
                        "body": "",
                        "options": [],
                        "request_body": "",
                    },
                    "response": {
                        "status_code": 200,
                        "headers": dict(e.headers),
                        "body": e.body.decode(),
                        "type": "ok",
                    },
                }
            ]
        )
    )
    g = ex["pygithub"]
    scheme, rest = g.url.split("://", 1)
    host, _, path = rest.partition("/")
    paths["pygithub"].write_text(
        "\n".join(
            [
                scheme,
                "GET",
                host,
                "None",
                "/" + path,
                repr(dict(g.request_headers)),
                "None",
                "200",
                repr(list(g.headers)),
                g.body.decode(),
                "",
            ]
        )
    )
    write_har([ex["har"]], paths["har"])
    write_warc([ex["warc"]], paths["warc"])
    for fmt, path in paths.items():  # the files really are what they claim, secrets included
        recording = read_recording(path)
        assert recording.format == fmt, (path, recording.format, recording.problems)
        (read,) = recording.exchanges
        assert planted[f"{fmt} user"] in read.url
    return paths


@pytest.mark.slow
def test_import_of_every_recording_format_stores_and_prints_no_secret(
    vault: Path, tmp_path: Path
) -> None:
    planted = Planted()
    paths = _write_every_format(planted, tmp_path)
    runs = [
        echoctl("--vault", str(vault), "import", "--json", *map(str, paths.values())),
        echoctl("--vault", str(vault), "import", *map(str, paths.values())),
    ]
    _assert_ran(*runs)
    report = json.loads(runs[0].stdout)
    assert [(f["format"], f["captures"]) for f in report["files"]] == [(fmt, 1) for fmt in paths]
    shown = [
        echoctl("--vault", str(vault), "items", "--json"),
        echoctl("--vault", str(vault), "show", "1", "--json"),
        echoctl("--vault", str(vault), "verify"),
    ]
    _assert_ran(*shown)
    assert find_secrets(planted, vault, _outputs(*runs, *shown)) == []
