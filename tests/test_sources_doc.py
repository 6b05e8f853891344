"""docs/sources.md's worked example is real: loaded from the page, harvested and imported.

The page says a source is one module and one line in the registry. This test
takes the module from the page itself (its ``python`` block), puts it beside
the real sources, harvests a feed of it from a loopback server and imports a
HAR recording of its host, so the page cannot drift from the code.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest

from echo_archive.errors import ParseError, SourceError
from echo_archive.harvest.cycle import HarvestRun
from echo_archive.harvest.engine import FetchConfig, Fetcher
from echo_archive.harvest.importer import import_files
from echo_archive.harvest.limits import HostLimits, LimitConfig
from echo_archive.harvest.recordings import write_har
from echo_archive.model import Exchange, Request
from echo_archive.sources import registry
from echo_archive.sources.base import Feed, Source, check_params
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import verify_vault

from .httpfaults import FaultServer, Reply

DOC = Path(__file__).resolve().parents[1] / "docs" / "sources.md"
INCIDENTS = [
    {"id": "inc-1", "title": "API latency", "body": "Elevated latency on the API."},
    {"id": "inc-2", "title": "Resolved", "body": "All systems normal."},
]


def _example_source() -> Source:
    """Execute the page's ``python`` block as a module and return its source, instantiated."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## A worked example", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1, "the worked example is one python block"
    module = types.ModuleType("echo_archive_doc_status")
    sys.modules[module.__name__] = module
    try:
        exec(compile(blocks[0], str(DOC), "exec"), module.__dict__)  # noqa: S102 - our own doc
    finally:
        del sys.modules[module.__name__]
    source: Source = module.StatusSource()
    return source


@pytest.fixture
def status() -> Source:
    return _example_source()


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as srv:
        yield srv


def test_the_example_declares_what_the_registry_derives(status: Source) -> None:
    assert status.kind == "status"
    assert status.default_interval == 600
    profiles, hosts = registry.limit_profiles({**registry.SOURCES, status.kind: status})
    assert hosts["status.example.org"] == "status"
    assert profiles["status"] == LimitConfig(rate=0.5, burst=1.0, concurrency=1)
    limits = HostLimits(hosts=hosts, profiles=profiles)
    assert limits.config_for("STATUS.example.org").concurrency == 1
    assert limits.config_for("blog.example.net") == registry.LIMIT_PROFILES["rss"]
    feed = Feed("status-main", "status", {"url": "https://status.example.org/incidents.json"})
    check_params(status, feed)
    with pytest.raises(SourceError, match=r"unknown parameter\(s\) token for source 'status'"):
        check_params(status, Feed("s", "status", {**feed.params, "token": "x"}))
    with pytest.raises(SourceError, match=r"params\.url must be an http"):
        status.plan(Feed("s", "status", {"url": "ftp://x"}))


def test_the_example_is_harvested_from_a_loopback_server(
    status: Source, server: FaultServer, vault_path: Path
) -> None:
    body = json.dumps(INCIDENTS).encode()
    server.route("/incidents.json", Reply(200, [("Content-Type", "application/json")], body))
    server.route("/broken.json", Reply(200, [("Content-Type", "application/json")], b"[{"))
    feeds = [
        Feed("status-main", "status", {"url": server.url("/incidents.json")}),
        Feed("status-broken", "status", {"url": server.url("/broken.json")}),
    ]

    async def go() -> list[tuple[str, int, int, str | None]]:
        with Vault.open(vault_path) as v:
            limits = HostLimits({server.authority: LimitConfig(100.0, 10.0, 2)})
            async with Fetcher(
                FetchConfig(max_attempts=1, allow_private=True), limits=limits
            ) as fetcher:
                report = await HarvestRun(v, fetcher, {"status": status}, env={}).run(feeds)
            assert verify_vault(v).ok
        return [(f.name, f.new, f.parse_errors, f.error) for f in report.feeds]

    main, broken = asyncio.run(go())
    assert main == ("status-main", 2, 0, None)
    assert broken[:3] == ("status-broken", 0, 1)  # kept as a capture with its error
    assert "malformed JSON" in (broken[3] or "")


def test_the_example_is_imported_from_a_recording(
    status: Source, tmp_path: Path, vault_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one line in the registry, for this test only.
    monkeypatch.setattr(
        registry, "SOURCES", MappingProxyType({**registry.SOURCES, status.kind: status})
    )

    def exchange(url: str, body: bytes) -> Exchange:
        return Exchange(
            method="GET",
            url=url,
            status=200,
            headers=(("Content-Type", "application/json"),),
            body=body,
            fetched_at="2026-12-01T10:00:00.000000Z",
        )

    har = tmp_path / "status.har"
    write_har(
        [
            exchange("https://status.example.org/incidents.json", json.dumps(INCIDENTS).encode()),
            exchange("https://status.example.org/uptime.json", b"{}"),
        ],
        har,
    )
    with Vault.open(vault_path) as v:
        report = import_files(v, [har], workers=0)
        assert verify_vault(v).ok
    (file_report,) = report.files
    assert file_report.kind == "recording"
    assert file_report.sources == {"status": 1}
    assert file_report.new == 2
    assert file_report.unrecognized == 1
    assert any("an endpoint the status source does not read" in r for r in file_report.reasons)


def test_the_example_refuses_hostile_bodies(status: Source) -> None:
    feed = Feed("s", "status", {"url": "https://status.example.org/incidents.json"})
    (request,) = status.plan(feed)
    assert isinstance(request, Request)
    for body in (b"", b"[", b'{"id": 1}', b"[1]", b"\xff\xfe[]", b"[" * 100):
        answer = Exchange("GET", request.url, 200, (), body)
        with pytest.raises(ParseError):
            status.parse(feed, request, answer)
