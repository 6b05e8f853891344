"""The feeds routes of the HTTP API: permissions, scope, the address rule, audit, jobs.

The fast tests mount the API (:func:`echo_archive.api.routes.mount`) in an
app over a real vault with its writer, called through ``httpx.ASGITransport``
with real API keys. The slow ones run the real service in this process
(uvicorn on loopback) harvesting a real RSS document from ``../shared/corpora``
served by a loopback HTTP server: a harvest job goes queued -> running ->
succeeded and the items are in the vault.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from echo_archive import faults
from echo_archive.api.audit import list_audit
from echo_archive.api.deps import ApiContext
from echo_archive.api.jobs import Job, JobStore
from echo_archive.api.keys import create_key
from echo_archive.api.roles import Role
from echo_archive.api.routes import mount
from echo_archive.config import ApiSection
from echo_archive.events import EventBus
from echo_archive.service.scheduler import ManualClock
from echo_archive.services.items import ItemQuery, list_items
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter
from tests.conftest import shared_dir
from tests.httpfaults import FaultServer, Reply
from tests.test_service import feed_table, in_process, wait_for

GROUPS = {"newsroom": ["bbc-world"]}


@pytest.fixture
def ctx(vault_path: Path) -> Iterator[ApiContext]:
    with VaultWriter.open(vault_path) as writer, Vault.open(vault_path, readonly=True) as reader:
        yield ApiContext(reader=reader, writer=writer, config=ApiSection(groups=GROUPS))


def app_of(ctx: ApiContext) -> FastAPI:
    app = FastAPI()
    mount(app, ctx)
    return app


def call(ctx: ApiContext, *requests: tuple[str, str, dict[str, Any]]) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app_of(ctx))
        async with httpx.AsyncClient(transport=transport, base_url="http://echo.test") as client:
            return [await client.request(m, url, **kw) for m, url, kw in requests]

    return asyncio.run(run())


def keys(ctx: ApiContext) -> dict[str, str]:
    """A key for each role, and ``scoped``: an editor scoped to the ``newsroom`` group."""
    now = time.time()
    made = {
        role.label: create_key(ctx.writer, f"k-{role.label}", role, now=now, actor="cli:t")[0]
        for role in Role
    }
    made["scoped"] = create_key(
        ctx.writer, "k-scoped", Role.EDITOR, now=now, actor="cli:t", group="newsroom", groups=GROUPS
    )[0]
    return made


def as_(key: str, **kw: Any) -> dict[str, Any]:
    return {"headers": {"X-API-Key": key, **kw.pop("headers", {})}, **kw}


def rss_feed(name: str, url: str = "https://example.org/feed.xml", **extra: Any) -> dict[str, Any]:
    return {"name": name, "source": "rss", "params": {"url": url}, **extra}


def test_viewer_cannot_add_editor_can_admin_removes_and_every_write_is_audited(
    ctx: ApiContext,
) -> None:
    k = keys(ctx)
    rid = {"X-Request-ID": "req-feeds-1"}
    viewer_add, added, listing, one, patched, disabled, again, enabled, editor_rm, removed = call(
        ctx,
        ("POST", "/v1/feeds", as_(k["viewer"], json=rss_feed("blog"))),
        ("POST", "/v1/feeds", as_(k["editor"], json=rss_feed("blog"), headers=rid)),
        ("GET", "/v1/feeds", as_(k["viewer"])),
        ("GET", "/v1/feeds/blog", as_(k["viewer"])),
        ("PATCH", "/v1/feeds/blog", as_(k["editor"], json={"interval": 7200}, headers=rid)),
        ("POST", "/v1/feeds/blog/disable", as_(k["editor"], headers=rid)),
        ("POST", "/v1/feeds/blog/disable", as_(k["editor"], headers=rid)),
        ("POST", "/v1/feeds/blog/enable", as_(k["editor"], headers=rid)),
        ("DELETE", "/v1/feeds/blog", as_(k["editor"])),
        ("DELETE", "/v1/feeds/blog", as_(k["admin"], headers=rid)),
    )
    assert viewer_add.status_code == 403
    assert viewer_add.json()["detail"]["missing"] == "feeds:write"
    assert added.status_code == 201, added.text
    assert added.json()["feed"]["name"] == "blog"
    assert added.json()["feed"]["interval"] == 3600  # the rss default
    assert added.json()["reload"] is None  # no service runs
    assert listing.status_code == 200
    assert listing.json()["total"] == 1
    assert [f["name"] for f in listing.json()["entries"]] == ["blog"]
    assert one.json()["params"] == {"url": "https://example.org/feed.xml"}
    assert patched.status_code == 200, patched.text
    assert patched.json()["feed"]["interval"] == 7200
    assert patched.json()["feed"]["params"] == {"url": "https://example.org/feed.xml"}
    assert disabled.json()["feed"]["enabled"] is False
    assert disabled.json()["changed"] is True
    assert again.json()["changed"] is False  # nothing written, nothing audited
    assert enabled.json()["feed"]["enabled"] is True
    assert editor_rm.status_code == 403
    assert editor_rm.json()["detail"]["missing"] == "feeds:admin"
    assert removed.status_code == 200
    assert removed.json()["removed"] == "blog"
    config = (ctx.reader.path / "echo.toml").read_text()
    assert "blog" not in config
    trail = [
        (e.action, e.actor, e.target, e.request_id)
        for e in list_audit(ctx.reader)
        if e.action.startswith("feed.")
    ]
    assert trail == [
        ("feed.add", "key:k-editor", "feed:blog", "req-feeds-1"),
        ("feed.change", "key:k-editor", "feed:blog", "req-feeds-1"),
        ("feed.disable", "key:k-editor", "feed:blog", "req-feeds-1"),
        ("feed.enable", "key:k-editor", "feed:blog", "req-feeds-1"),
        ("feed.remove", "key:k-admin", "feed:blog", "req-feeds-1"),
    ]


def test_private_addresses_are_refused_naming_the_rule_unless_allowed(ctx: ApiContext) -> None:
    k = keys(ctx)
    config = ctx.reader.path / "echo.toml"
    before = config.read_bytes()
    cases = {
        "http://127.0.0.1:8080/feed.xml": "loopback address (RFC 1122",
        "http://169.254.169.254/latest/meta-data/": "link-local address (RFC 3927)",
        "http://10.1.2.3/feed": "private address (RFC 1918)",
        "http://[::ffff:192.168.0.1]/feed": "RFC 1918, embedded in",
        "http://[::1]/feed": "loopback address (RFC 4291",
        "http://2130706433/feed": "loopback address",
        "http://localhost/feed": "loopback name (RFC 6761",
    }
    answers = call(
        ctx,
        *[
            ("POST", "/v1/feeds", as_(k["editor"], json=rss_feed(f"p{i}", url)))
            for i, url in enumerate(cases)
        ],
    )
    for (url, words), answer in zip(cases.items(), answers, strict=True):
        assert answer.status_code == 400, (url, answer.text)
        detail = answer.json()["detail"]
        assert detail["code"] == "request"
        assert words in detail["message"], (url, detail["message"])
        assert "allow_private" in detail["message"]
    assert config.read_bytes() == before  # nothing written
    editor_private, admin_private, public, to_private = call(
        ctx,
        (
            "POST",
            "/v1/feeds",
            as_(
                k["editor"],
                json=rss_feed("lan", cases_url := "http://10.1.2.3/", allow_private=True),
            ),
        ),
        ("POST", "/v1/feeds", as_(k["admin"], json=rss_feed("lan", cases_url, allow_private=True))),
        ("POST", "/v1/feeds", as_(k["editor"], json=rss_feed("pub"))),
        (
            "PATCH",
            "/v1/feeds/pub",
            as_(k["editor"], json={"params": {"url": "http://192.168.1.1/"}}),
        ),
    )
    assert editor_private.status_code == 403
    assert editor_private.json()["detail"]["missing"] == "feeds:admin"
    assert admin_private.status_code == 201, admin_private.text
    assert admin_private.json()["feed"]["allow_private"] is True
    assert public.status_code == 201
    assert to_private.status_code == 400
    assert "RFC 1918" in to_private.json()["detail"]["message"]
    assert 'url = "https://example.org/feed.xml"' in config.read_text()  # the URL unchanged
    # the feed an admin let reach private addresses: an editor cannot repoint it
    metadata = {"params": {"url": "http://169.254.169.254/latest/meta-data/"}}
    repoint, admin_repoint, guard_on, editor_repoint = call(
        ctx,
        ("PATCH", "/v1/feeds/lan", as_(k["editor"], json=metadata)),
        ("PATCH", "/v1/feeds/lan", as_(k["admin"], json={"params": {"url": "http://10.9.9.9/"}})),
        ("PATCH", "/v1/feeds/lan", as_(k["editor"], json={"allow_private": False})),
        ("PATCH", "/v1/feeds/lan", as_(k["editor"], json=metadata)),
    )
    assert repoint.status_code == 403
    assert repoint.json()["detail"]["missing"] == "feeds:admin"
    assert admin_repoint.status_code == 200, admin_repoint.text
    assert guard_on.status_code == 400  # the guard back on refuses its private URL
    assert "RFC 1918" in guard_on.json()["detail"]["message"]
    assert editor_repoint.status_code == 403
    assert "169.254.169.254" not in config.read_text()


def test_hostile_names_and_bodies_are_clear_400s_and_change_nothing(ctx: ApiContext) -> None:
    k = keys(ctx)
    editor = k["editor"]
    config = ctx.reader.path / "echo.toml"
    before = config.read_bytes()
    answers = call(
        ctx,
        ("POST", "/v1/feeds", as_(editor, json=rss_feed("a\x1b[2Jb"))),
        ("POST", "/v1/feeds", as_(editor, json=rss_feed("Upper"))),
        ("POST", "/v1/feeds", as_(editor, json=rss_feed("x" * 65))),
        ("POST", "/v1/feeds", as_(editor, json={**rss_feed("ok"), "extra": 1})),
        ("POST", "/v1/feeds", as_(editor, json={**rss_feed("ok"), "interval": "60"})),
        ("POST", "/v1/feeds", as_(editor, json={**rss_feed("ok"), "interval": 5})),
        ("POST", "/v1/feeds", as_(editor, json={"name": "ok", "source": "gopher"})),
        ("POST", "/v1/feeds", as_(editor, json={**rss_feed("ok"), "params": {"nope": 1}})),
        ("POST", "/v1/feeds", as_(editor, json={"name": "ok", "source": "rss", "params": {}})),
        (
            "POST",
            "/v1/feeds",
            as_(editor, content=b"{not json", headers={"content-type": "application/json"}),
        ),
        ("POST", "/v1/feeds", as_(editor, json=[1, 2])),
        ("PATCH", "/v1/feeds/%2e%2e", as_(editor, json={"interval": 60})),
        ("POST", "/v1/feeds/bad%20name/disable", as_(editor)),
    )
    for answer in answers:
        assert answer.status_code == 400, (answer.request.url, answer.text)
        detail = answer.json()["detail"]
        assert detail["code"] == "request"
        assert detail["message"]
        assert "\x1b" not in answer.text
    assert "interval" in answers[5].json()["detail"]["message"]
    assert "gopher" in answers[6].json()["detail"]["message"]
    assert "nope" in answers[7].json()["detail"]["message"]
    assert "extra" in answers[3].json()["detail"]["message"]
    assert config.read_bytes() == before
    missing, disable_missing = call(
        ctx,
        ("GET", "/v1/feeds/no-such-feed", as_(editor)),
        ("POST", "/v1/feeds/no-such-feed/disable", as_(editor)),
    )
    assert missing.status_code == 404
    assert disable_missing.status_code == 404
    assert not [e for e in list_audit(ctx.reader) if e.action.startswith("feed.")]


def test_a_scoped_key_sees_and_changes_only_its_groups_feeds(ctx: ApiContext) -> None:
    k = keys(ctx)
    call(
        ctx,
        ("POST", "/v1/feeds", as_(k["admin"], json=rss_feed("bbc-world"))),
        ("POST", "/v1/feeds", as_(k["admin"], json=rss_feed("other"))),
    )
    scoped = k["scoped"]
    listing, mine, theirs, change_mine, change_theirs, add_outside, add_inside = call(
        ctx,
        ("GET", "/v1/feeds", as_(scoped)),
        ("GET", "/v1/feeds/bbc-world", as_(scoped)),
        ("GET", "/v1/feeds/other", as_(scoped)),
        ("PATCH", "/v1/feeds/bbc-world", as_(scoped, json={"interval": 900})),
        ("PATCH", "/v1/feeds/other", as_(scoped, json={"interval": 900})),
        ("POST", "/v1/feeds", as_(scoped, json=rss_feed("elsewhere"))),
        ("DELETE", "/v1/feeds/bbc-world", as_(scoped)),
    )
    assert listing.json()["total"] == 1
    assert [f["name"] for f in listing.json()["entries"]] == ["bbc-world"]
    assert mine.status_code == 200
    assert theirs.status_code == 403
    assert theirs.json()["detail"]["feed"] == "other"
    assert change_mine.status_code == 200
    assert change_mine.json()["feed"]["interval"] == 900
    assert change_theirs.status_code == 403
    assert add_outside.status_code == 403
    assert add_inside.status_code == 403  # an editor holds no feeds:admin
    (everything,) = call(ctx, ("GET", "/v1/feeds", as_(k["viewer"])))
    assert everything.json()["total"] == 2


def test_credentials_stay_in_the_file_and_a_params_merge_patch_keeps_them(
    ctx: ApiContext,
) -> None:
    k = keys(ctx)
    secret_url = "https://reader:s3cret-pw@example.org/private.xml"  # noqa: S105 - a test value
    added, patched = call(
        ctx,
        ("POST", "/v1/feeds", as_(k["editor"], json=rss_feed("auth", secret_url))),
        ("PATCH", "/v1/feeds/auth", as_(k["editor"], json={"interval": 600, "params": {}})),
    )
    assert added.status_code == 201, added.text
    assert patched.status_code == 200, patched.text
    for answer in (added, patched):
        assert "s3cret-pw" not in answer.text
    assert "s3cret-pw" in (ctx.reader.path / "echo.toml").read_text()  # the harvester's copy
    assert all("s3cret-pw" not in str(e.to_json()) for e in list_audit(ctx.reader))


def test_a_change_whose_audit_entry_cannot_be_committed_is_taken_back(ctx: ApiContext) -> None:
    k = keys(ctx)
    config = ctx.reader.path / "echo.toml"
    before = config.read_bytes()

    async def run(method: str, url: str, **kw: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=app_of(ctx), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://echo.test") as client:
            return await client.request(method, url, **kw)

    faults.arm("catalog.commit", "ENOSPC")  # the next log commit fails: the audit entry's
    failed = asyncio.run(run("POST", "/v1/feeds", **as_(k["editor"], json=rss_feed("blog"))))
    faults.disarm()
    assert failed.status_code == 500
    assert config.read_bytes() == before  # the feed was taken back out
    assert not [e for e in list_audit(ctx.reader) if e.action.startswith("feed.")]
    (added,) = call(ctx, ("POST", "/v1/feeds", as_(k["editor"], json=rss_feed("blog"))))
    assert added.status_code == 201, added.text
    with_feed = config.read_bytes()
    faults.arm("catalog.commit", "ENOSPC")
    failed = asyncio.run(run("POST", "/v1/feeds/blog/disable", **as_(k["editor"])))
    faults.disarm()
    assert failed.status_code == 500
    assert config.read_bytes() == with_feed  # still enabled
    # past the catalog's commit, the entry is in the log (its unsealed tail): the change stands
    faults.arm("checkpoint.sign", "ENOSPC")
    failed = asyncio.run(run("POST", "/v1/feeds/blog/disable", **as_(k["editor"])))
    faults.disarm()
    assert failed.status_code == 500
    assert config.read_bytes() != with_feed  # disabled, as its entry says
    assert [e.action for e in list_audit(ctx.reader) if e.action.startswith("feed.")] == [
        "feed.add",
        "feed.disable",
    ]


def test_harvest_without_a_service_is_503_and_unknown_jobs_404(ctx: ApiContext) -> None:
    k = keys(ctx)
    call(ctx, ("POST", "/v1/feeds", as_(k["editor"], json=rss_feed("blog"))))
    harvest, viewer_harvest, job, hostile_job = call(
        ctx,
        ("POST", "/v1/feeds/blog/harvest", as_(k["editor"])),
        ("POST", "/v1/feeds/blog/harvest", as_(k["viewer"])),
        ("GET", f"/v1/jobs/{'0' * 32}", as_(k["viewer"])),
        ("GET", "/v1/jobs/%1b%5b2J", as_(k["viewer"])),
    )
    assert harvest.status_code == 503
    assert viewer_harvest.status_code == 403
    assert job.status_code == 404
    assert hostile_job.status_code == 404
    assert "\x1b" not in hostile_job.text


def test_job_store_follows_the_bus_and_keeps_the_last_n() -> None:
    bus = EventBus()
    store = JobStore(time.time, limit=3)
    store.attach(bus)
    bus.emit("feed_run", feed="a", phase="started")  # a run already in flight
    job = store.create("a")
    bus.emit("feed_run", feed="a", phase="finished", outcome="harvested", new=1)
    assert store.get(job.id) == job  # that run's end does not finish the job
    bus.emit("feed_run", feed="a", phase="started")
    running = store.get(job.id)
    assert running is not None
    assert running.state == "running"
    bus.emit("feed_run", feed="a", phase="finished", outcome="failed", new=0, seconds=0.5)
    bus.emit("feed_failed", feed="a", outcome="failed", failures=1, error="HTTP 500")
    failed = store.get(job.id)
    assert failed is not None
    assert failed.state == "failed"
    assert failed.result == {"outcome": "failed", "new": 0, "seconds": 0.5, "error": "HTTP 500"}
    doc = failed.to_json()
    assert set(doc) == {"id", "feed", "state", "created", "started", "finished", "result"}
    assert doc["finished"].endswith("Z")
    gone = store.create("b")
    bus.emit("config_reloaded", feeds=["a"])  # b is no longer scheduled
    dropped = store.get(gone.id)
    assert dropped is not None
    assert dropped.state == "failed"
    made: list[Job] = [store.create("a") for _ in range(3)]
    assert len(store) == 3
    assert store.get(job.id) is None  # the oldest finished went first
    assert all(store.get(j.id) is not None for j in made)
    store.detach()


# ---------------------------------------------------------------------------- the real service


def quick_vault(tmp_path: Path, feeds: str) -> Path:
    """A new vault (``Vault.create``, no example feeds), with ``feeds`` appended."""
    vault = tmp_path / "vault"
    Vault.create(vault, origin="echo.archive/test0000deadbeef").close()
    with (vault / "echo.toml").open("a", encoding="utf-8") as fh:
        fh.write(feeds)
    return vault


def _frozen() -> ManualClock:
    clock = ManualClock(time.time())
    clock.stop_at = clock.now
    return clock


@pytest.mark.slow
def test_a_harvest_job_against_the_real_service_goes_queued_running_succeeded(
    tmp_path: Path,
) -> None:
    body = (shared_dir("corpora", "feeds", "rss-parser") / "guardian.rss").read_bytes()
    with FaultServer() as server:
        server.route(
            "/guardian.rss",
            Reply(200, headers=[("Content-Type", "application/rss+xml")], body=body),
        )
        feeds = feed_table("guardian", server.url("/guardian.rss"), 86400)
        vault = quick_vault(tmp_path, feeds + '\n[api.groups]\nnewsroom = ["bbc-world"]\n')
        now = time.time()
        with VaultWriter.open(vault) as writer:
            editor = create_key(writer, "ed", Role.EDITOR, now=now, actor="cli:t")[0]
            admin = create_key(writer, "root", Role.ADMIN, now=now, actor="cli:t")[0]
            viewer = create_key(writer, "view", Role.VIEWER, now=now, actor="cli:t")[0]
            scoped = create_key(
                writer,
                "scoped",
                Role.EDITOR,
                now=now,
                actor="cli:t",
                group="newsroom",
                groups=GROUPS,
            )[0]
        with (
            in_process(vault, _frozen()) as service,
            httpx.Client(base_url=service.url or "", timeout=30) as client,
        ):
            ed = {"X-API-Key": editor}
            # the start runs the due feed once; wait for it, so the job's run is its own
            wait_for(
                lambda: any(
                    f["feed"] == "guardian" and f.get("runs", 0) >= 1
                    for f in client.get("/v1/status", headers=ed).json().get("feeds", [])
                ),
                what="the first run",
            )
            hits = server.hits("/guardian.rss")
            started = client.post("/v1/feeds/guardian/harvest", headers=ed)
            assert started.status_code == 202, started.text
            job = started.json()["job"]
            assert job["state"] in ("queued", "running")
            assert started.headers["Location"] == f"/v1/jobs/{job['id']}"
            seen: set[str] = set()

            def finished() -> dict[str, Any] | None:
                doc: dict[str, Any] = client.get(
                    started.headers["Location"], headers={"X-API-Key": viewer}
                ).json()["job"]
                seen.add(doc["state"])
                return doc if doc["state"] in ("succeeded", "failed") else None

            outside = {"X-API-Key": scoped}  # its group does not hold guardian
            assert client.get(started.headers["Location"], headers=outside).status_code == 403
            assert client.post("/v1/feeds/guardian/harvest", headers=outside).status_code == 403
            done = wait_for(finished, what="the job's end")
            assert done["state"] == "succeeded", done
            assert done["started"] is not None
            assert done["finished"] is not None
            assert done["created"] <= done["started"] <= done["finished"]
            assert done["result"]["outcome"] == "harvested"
            assert done["result"]["error"] is None
            assert server.hits("/guardian.rss") > hits  # a run of its own
            with Vault.open(vault, readonly=True) as reader:
                page = list_items(reader, ItemQuery(feed="guardian", total=True))
                assert page.total is not None
                assert page.total >= 50
            # a feed added through the API is scheduled by the service's reload
            url = server.url("/guardian.rss")
            added = client.post(
                "/v1/feeds",
                headers={"X-API-Key": admin},
                json=rss_feed("copy", url, allow_private=True, interval=86400),
            )
            assert added.status_code == 201, added.text
            assert added.json()["reload"] == {"applied": True, "error": None}
            names = {f["feed"] for f in client.get("/v1/status", headers=ed).json()["feeds"]}
            assert "copy" in names
            # a disabled feed is not scheduled: no job
            off = client.post("/v1/feeds/copy/disable", headers=ed)
            assert off.json()["reload"] == {"applied": True, "error": None}
            refused = client.post("/v1/feeds/copy/harvest", headers=ed)
            assert refused.status_code == 404
            assert "not scheduled" in refused.json()["detail"]["message"]
            actions = [e.action for e in list_audit(service.reader) if e.action.startswith("feed.")]
            assert actions == ["feed.harvest", "feed.add", "feed.disable"]


SMTP_ENV = "ECHO_TEST_API_SMTP_PASSWORD"

EMAIL = f"""
[alerts.email]
host = "127.0.0.1"
port = 2525
from = "echo@example.org"
to = ["ops@example.org"]
username = "echo"
password_env = "{SMTP_ENV}"
"""


@pytest.mark.slow
def test_a_change_the_service_rejects_is_reported_and_the_file_stays_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = quick_vault(tmp_path, EMAIL)
    with VaultWriter.open(vault) as writer:
        editor = create_key(writer, "ed", Role.EDITOR, now=time.time(), actor="cli:t")[0]
    monkeypatch.setenv(SMTP_ENV, "not-a-real-password")
    with (
        in_process(vault, _frozen()) as service,
        httpx.Client(base_url=service.url or "", timeout=30) as client,
    ):
        ed = {"X-API-Key": editor}
        monkeypatch.delenv(SMTP_ENV)  # the next reload cannot build the email channel
        added = client.post("/v1/feeds", headers=ed, json=rss_feed("blog"))
        assert added.status_code == 201, added.text
        reload = added.json()["reload"]
        assert reload["applied"] is False
        assert SMTP_ENV in reload["error"]
        assert "not-a-real-password" not in added.text
        status = client.get("/v1/status", headers=ed).json()
        assert SMTP_ENV in status["config"]["error"]
        assert "blog" not in {f["feed"] for f in status["feeds"]}  # the old configuration holds
        listed = client.get("/v1/feeds/blog", headers=ed)
        assert listed.json()["error"] is None  # the file is valid, with the feed
        monkeypatch.setenv(SMTP_ENV, "not-a-real-password")
        changed = client.patch("/v1/feeds/blog", headers=ed, json={"interval": 7200})
        assert changed.json()["reload"] == {"applied": True, "error": None}
        status = client.get("/v1/status", headers=ed).json()
        assert status["config"]["error"] is None
        assert "blog" in {f["feed"] for f in status["feeds"]}
