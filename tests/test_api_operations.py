"""The operations routes of the HTTP API: status, health, alerts, silences, interventions...

...and the audit trail and users. The fast tests mount the API in an app over
a real vault and its writer, called through ``httpx.ASGITransport`` with real
API keys; the slow one runs the real service in this process (uvicorn on
loopback) for what only a running service does: its status, and deciding its
supervisor's interventions.
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
from echo_archive.api.keys import create_key
from echo_archive.api.roles import Role
from echo_archive.api.routes import mount
from echo_archive.config import ApiSection
from echo_archive.control.alerts import Alert, AlertState, fingerprint
from echo_archive.control.alertstore import VaultAlertStore
from echo_archive.control.interventions import Proposal
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter
from tests.httpfaults import FaultServer, Reply
from tests.test_api_feeds import _frozen, quick_vault
from tests.test_service import feed_table, in_process, on_loop

GROUPS = {"newsroom": ["bbc-world"]}
PASSWORD = "correct horse battery staple"  # noqa: S105 - a test value


@pytest.fixture
def ctx(vault_path: Path) -> Iterator[ApiContext]:
    with VaultWriter.open(vault_path) as writer, Vault.open(vault_path, readonly=True) as reader:
        yield ApiContext(reader=reader, writer=writer, config=ApiSection(groups=GROUPS))


def call(ctx: ApiContext, *requests: tuple[str, str, dict[str, Any]]) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        app = FastAPI()
        mount(app, ctx)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://echo.test") as client:
            return [await client.request(m, url, **kw) for m, url, kw in requests]

    return asyncio.run(run())


def keys(writer: Vault | VaultWriter) -> dict[str, str]:
    """A key for each role, and ``scoped``: an admin scoped to the ``newsroom`` group."""
    now = time.time()
    made = {
        role.label: create_key(writer, f"k-{role.label}", role, now=now, actor="cli:t")[0]
        for role in Role
    }
    made["scoped"] = create_key(
        writer, "k-scoped", Role.ADMIN, now=now, actor="cli:t", group="newsroom", groups=GROUPS
    )[0]
    return made


def as_(key: str, **kw: Any) -> dict[str, Any]:
    return {"headers": {"X-API-Key": key, **kw.pop("headers", {})}, **kw}


def test_status_needs_a_service_and_health_runs_the_checks(ctx: ApiContext) -> None:
    k = keys(ctx.writer)
    status, viewer_health, quick, full, bad = call(
        ctx,
        ("GET", "/v1/status", as_(k["analyst"])),
        ("GET", "/v1/health", as_(k["viewer"])),
        ("GET", "/v1/health", as_(k["analyst"])),
        ("GET", "/v1/health?full=true", as_(k["analyst"])),
        ("GET", "/v1/health?full=maybe", as_(k["analyst"])),
    )
    assert status.status_code == 503
    assert "echoctl status" in status.json()["detail"]["message"]
    assert viewer_health.status_code == 403
    assert viewer_health.json()["detail"]["missing"] == "operations:read"
    assert quick.status_code == 200
    names = {c["name"] for c in quick.json()["checks"]}
    assert {"disk_free", "quick_check", "unsealed_tail"} <= names
    assert "incremental_verify" not in names
    assert quick.json()["worst"] in ("ok", "warning", "critical")
    assert next(c for c in quick.json()["checks"] if c["name"] == "quick_check")["severity"] == "ok"
    assert "incremental_verify" in {c["name"] for c in full.json()["checks"]}
    assert bad.status_code == 400
    assert "full" in bad.json()["detail"]["message"]


def test_silences_are_added_listed_expired_and_audited(ctx: ApiContext) -> None:
    k = keys(ctx.writer)
    body = {"matchers": ['alertname="EchoFeedStale"', "feed=~bbc-.*"], "comment": "maintenance"}
    rid = {"X-Request-ID": "req-silence"}
    analyst_add, added, bad_matcher, mutes_all, no_comment, bad_duration, too_many, long = call(
        ctx,
        ("POST", "/v1/silences", as_(k["analyst"], json=body)),
        ("POST", "/v1/silences", as_(k["editor"], json={**body, "duration": "30m"}, headers=rid)),
        ("POST", "/v1/silences", as_(k["editor"], json={**body, "matchers": ["a=~("]})),
        ("POST", "/v1/silences", as_(k["editor"], json={**body, "matchers": ["a=~.*"]})),
        ("POST", "/v1/silences", as_(k["editor"], json={**body, "comment": " "})),
        ("POST", "/v1/silences", as_(k["editor"], json={**body, "duration": "soon"})),
        ("POST", "/v1/silences", as_(k["editor"], json={**body, "matchers": ["a=b"] * 21})),
        ("POST", "/v1/silences", as_(k["editor"], json={**body, "matchers": ["a=" + "b" * 501]})),
    )
    assert analyst_add.status_code == 403
    assert analyst_add.json()["detail"]["missing"] == "operations:write"
    assert added.status_code == 201, added.text
    silence = added.json()
    assert silence["createdBy"] == "key:k-editor"
    assert silence["endsAt"] - silence["startsAt"] == pytest.approx(1800)
    assert silence["matchers_text"] == ['alertname="EchoFeedStale"', 'feed=~"bbc-.*"']
    for refused in (bad_matcher, mutes_all, no_comment, bad_duration, too_many, long):
        assert refused.status_code == 400, refused.text
        assert refused.json()["detail"]["code"] == "request"
    assert "empty" in mutes_all.json()["detail"]["message"]
    listing, expired, unknown, after, with_expired = call(
        ctx,
        ("GET", "/v1/silences", as_(k["analyst"])),
        ("DELETE", f"/v1/silences/{silence['id']}", as_(k["editor"], headers=rid)),
        ("DELETE", "/v1/silences/no-such-silence", as_(k["editor"])),
        ("GET", "/v1/silences", as_(k["analyst"])),
        ("GET", "/v1/silences?all=true", as_(k["analyst"])),
    )
    assert [s["id"] for s in listing.json()["entries"]] == [silence["id"]]
    assert listing.json()["total"] == 1
    assert expired.status_code == 200
    assert expired.json()["status"]["state"] == "expired"
    assert unknown.status_code == 404
    assert after.json()["total"] == 0
    assert [s["id"] for s in with_expired.json()["entries"]] == [silence["id"]]
    trail = [(e.action, e.target, e.request_id) for e in list_audit(ctx.reader)]
    assert ("silence.add", f"silence:{silence['id']}", "req-silence") in trail
    assert ("silence.expire", f"silence:{silence['id']}", "req-silence") in trail


def test_a_silence_whose_audit_entry_cannot_be_committed_mutes_nothing(ctx: ApiContext) -> None:
    k = keys(ctx.writer)

    async def run() -> httpx.Response:
        app = FastAPI()
        mount(app, ctx)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://echo.test") as client:
            body = {"matchers": ["alertname=EchoFeedStale"], "comment": "maintenance"}
            return await client.post("/v1/silences", json=body, headers={"X-API-Key": k["editor"]})

    faults.arm("catalog.commit", "ENOSPC")  # the audit entry's commit fails
    failed = asyncio.run(run())
    faults.disarm()
    assert failed.status_code == 500
    active, every = call(
        ctx,
        ("GET", "/v1/silences", as_(k["analyst"])),
        ("GET", "/v1/silences?all=true", as_(k["analyst"])),
    )
    assert active.json()["total"] == 0  # expired again: it mutes nothing
    assert [s["status"]["state"] for s in every.json()["entries"]] == ["expired"]
    assert not [e for e in list_audit(ctx.reader) if e.action.startswith("silence.")]


def _alert(rule: str, state: str, now: float, **labels: str) -> Alert:
    shown = {"alertname": rule, "severity": "warning", **labels}
    return Alert(
        rule=rule,
        labels=shown,
        annotations={"summary": f"{rule} on {labels}"},
        state=state,  # type: ignore[arg-type]
        active_at=now - 600,
        fired_at=now - 300 if state == "firing" else None,
        last_true_at=now,
        resolved_at=None,
        value=1.0,
        fingerprint=fingerprint(shown),
    )


def test_alerts_pending_and_firing_with_the_silences_muting_them(ctx: ApiContext) -> None:
    k = keys(ctx.writer)
    now = time.time()
    found = [
        _alert("EchoFeedStale", "pending", now, feed="hn-top"),
        _alert("EchoFeedStale", "firing", now, feed="bbc-world"),
        _alert("EchoBreakerOpen", "resolved", now, host="example.org"),
    ]
    assert isinstance(ctx.writer, VaultWriter)
    VaultAlertStore(ctx.writer, lambda: now).save_state(
        AlertState(alerts={a.fingerprint: a for a in found})
    )
    mute = {"matchers": ["feed=bbc-world"], "comment": "the BBC is down for maintenance"}
    (silence,) = call(ctx, ("POST", "/v1/silences", as_(k["editor"], json=mute)))
    assert silence.status_code == 201, silence.text
    (alerts,) = call(ctx, ("GET", "/v1/alerts", as_(k["analyst"])))
    doc = alerts.json()
    assert doc["total"] == 2  # resolved ones are not shown
    firing, pending = doc["entries"]
    assert (firing["state"], firing["labels"]["feed"]) == ("firing", "bbc-world")
    assert firing["silenced_by"] == [silence.json()["id"]]
    assert (pending["state"], pending["labels"]["feed"]) == ("pending", "hn-top")
    assert pending["silenced_by"] == []


def test_alerts_and_interventions_read_without_a_service_decisions_need_one(
    ctx: ApiContext,
) -> None:
    k = keys(ctx.writer)
    alerts, viewer_alerts, listing, bad_state, one, approve, editor_approve, no_reason = call(
        ctx,
        ("GET", "/v1/alerts", as_(k["analyst"])),
        ("GET", "/v1/alerts", as_(k["viewer"])),
        ("GET", "/v1/interventions", as_(k["analyst"])),
        ("GET", "/v1/interventions?state=sleeping", as_(k["analyst"])),
        ("GET", "/v1/interventions/nope", as_(k["analyst"])),
        ("POST", "/v1/interventions/nope/approve", as_(k["admin"])),
        ("POST", "/v1/interventions/nope/approve", as_(k["editor"])),
        ("POST", "/v1/interventions/nope/reject", as_(k["admin"], json={})),
    )
    assert alerts.json() == {"total": 0, "entries": []}
    assert viewer_alerts.status_code == 403
    assert listing.json() == {"total": 0, "entries": []}
    assert bad_state.status_code == 400
    assert "sleeping" in bad_state.json()["detail"]["message"]
    assert one.status_code == 404
    assert approve.status_code == 503
    assert editor_approve.status_code == 403
    assert editor_approve.json()["detail"]["missing"] == "operations:approve"
    assert no_reason.status_code == 400
    assert "reason" in no_reason.json()["detail"]["message"]
    (scoped,) = call(ctx, ("GET", "/v1/alerts", as_(k["scoped"])))
    assert scoped.status_code == 403  # archive-wide: no scoped principal


def test_the_audit_trail_pages_with_a_cursor_and_filters(ctx: ApiContext) -> None:
    k = keys(ctx.writer)  # five key.create entries
    for name in ("a1", "a2", "a3"):
        create_key(ctx.writer, name, Role.VIEWER, now=time.time(), actor="cli:alice")
    everything = list_audit(ctx.reader)
    assert len(everything) == 8
    admin = k["admin"]
    seen: list[int] = []
    url: str | None = "/v1/audit?limit=3"
    pages = 0
    while url is not None:
        (page,) = call(ctx, ("GET", url, as_(admin)))
        assert page.status_code == 200, page.text
        doc = page.json()
        assert doc["total"] == 8
        assert len(doc["entries"]) <= 3
        seen += [e["index"] for e in doc["entries"]]
        url = None if doc["next"] is None else f"/v1/audit?limit=3&cursor={doc['next']}"
        pages += 1
    assert pages == 3
    assert seen == [e.index for e in everything]
    by_alice, future, bad_since, bad_cursor, other_filter, zero, huge, editor, scoped = call(
        ctx,
        ("GET", "/v1/audit?actor=alice", as_(admin)),
        ("GET", "/v1/audit?since=2999-01-01T00:00:00Z", as_(admin)),
        ("GET", "/v1/audit?since=yesterday", as_(admin)),
        ("GET", "/v1/audit?cursor=%1b%5b2Jgarbage", as_(admin)),
        ("GET", f"/v1/audit?actor=alice&cursor={doc_next(ctx, admin)}", as_(admin)),
        ("GET", "/v1/audit?limit=0", as_(admin)),
        ("GET", "/v1/audit?limit=1001", as_(admin)),
        ("GET", "/v1/audit", as_(k["editor"])),
        ("GET", "/v1/audit", as_(k["scoped"])),
    )
    assert [e["actor"] for e in by_alice.json()["entries"]] == ["cli:alice"] * 3
    assert [e["target"] for e in by_alice.json()["entries"]] == ["key:a1", "key:a2", "key:a3"]
    assert future.json() == {"total": 0, "entries": [], "next": None}
    for refused in (bad_since, bad_cursor, other_filter, zero, huge):
        assert refused.status_code == 400, refused.text
        assert "\x1b" not in refused.text
    assert "since" in bad_since.json()["detail"]["message"]
    assert editor.status_code == 403
    assert editor.json()["detail"]["missing"] == "audit:read"
    assert scoped.status_code == 403


def doc_next(ctx: ApiContext, key: str) -> str:
    """The ``next`` cursor of the unfiltered first page of one entry."""
    (page,) = call(ctx, ("GET", "/v1/audit?limit=1", as_(key)))
    token: str = page.json()["next"]
    return token


def test_users_are_added_changed_removed_and_the_password_never_comes_back(
    ctx: ApiContext,
) -> None:
    k = keys(ctx.writer)
    admin = k["admin"]
    rid = {"X-Request-ID": "req-users"}
    new = {"name": "alice", "role": "editor", "password": PASSWORD}
    editor_add, malformed, short, bad_role, added, listing, analyst_list = call(
        ctx,
        ("POST", "/v1/users", as_(k["editor"], json=new)),
        ("POST", "/v1/users", as_(admin, json={**new, "passwd": PASSWORD, "role": 3})),
        ("POST", "/v1/users", as_(admin, json={**new, "password": "short!"})),
        ("POST", "/v1/users", as_(admin, json={**new, "role": "root"})),
        ("POST", "/v1/users", as_(admin, json=new, headers=rid)),
        ("GET", "/v1/users", as_(admin)),
        ("GET", "/v1/users", as_(k["analyst"])),
    )
    assert editor_add.status_code == 403
    assert editor_add.json()["detail"]["missing"] == "users:admin"
    for refused in (malformed, short, bad_role):
        assert refused.status_code == 400, refused.text
        assert PASSWORD not in refused.text
        assert "short!" not in refused.text
    assert "passwd" in malformed.json()["detail"]["message"]
    assert "password" in short.json()["detail"]["message"]
    assert added.status_code == 201, added.text
    assert added.json()["name"] == "alice"
    assert added.json()["role"] == "editor"
    assert added.headers["Cache-Control"] == "no-store"
    assert PASSWORD not in added.text
    assert [u["name"] for u in listing.json()["entries"]] == ["alice"]
    assert "hash" not in listing.text
    assert analyst_list.status_code == 403
    login = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    token_answer, *_ = call(ctx, ("POST", "/v1/token", {"data": login}))
    token = {"Authorization": f"Bearer {token_answer.json()['access_token']}"}
    demoted, scoped, unknown_group, still, missing, whoami = call(
        ctx,
        ("PATCH", "/v1/users/alice", as_(admin, json={"role": "viewer"}, headers=rid)),
        ("PATCH", "/v1/users/alice", as_(admin, json={"group": "newsroom"}, headers=rid)),
        ("PATCH", "/v1/users/alice", as_(admin, json={"group": "nowhere", "password": "x" * 12})),
        ("POST", "/v1/token", {"data": login}),
        ("PATCH", "/v1/users/nobody", as_(admin, json={"role": "viewer"})),
        ("GET", "/v1/whoami", {"headers": token}),
    )
    assert demoted.json()["role"] == "viewer"
    assert scoped.json()["group"] == "newsroom"
    assert scoped.json()["role"] == "viewer"
    assert unknown_group.status_code == 400
    assert still.status_code == 200  # the refused change set no password either
    assert missing.status_code == 404
    assert whoami.json()["role"] == "viewer"  # the token holds the role as it is now
    assert whoami.json()["feeds"] == ["bbc-world"]
    new_password = PASSWORD + " again"
    changed, old_login, removed, after, gone = call(
        ctx,
        ("PATCH", "/v1/users/alice", as_(admin, json={"password": new_password}, headers=rid)),
        ("POST", "/v1/token", {"data": login}),
        ("DELETE", "/v1/users/alice", as_(admin, headers=rid)),
        ("GET", "/v1/whoami", {"headers": token}),
        ("DELETE", "/v1/users/alice", as_(admin)),
    )
    assert changed.status_code == 200
    assert new_password not in changed.text
    assert old_login.status_code == 400
    assert removed.json() == {"removed": "alice"}
    assert after.status_code == 401
    assert gone.status_code == 404
    trail = [
        (e.action, e.actor, e.request_id)
        for e in list_audit(ctx.reader)
        if e.target == "user:alice"
    ]
    assert trail == [
        ("user.add", "key:k-admin", "req-users"),
        ("user.role", "key:k-admin", "req-users"),
        ("user.role", "key:k-admin", "req-users"),
        ("user.passwd", "key:k-admin", "req-users"),
        ("user.remove", "key:k-admin", "req-users"),
    ]
    everything = str([e.to_json() for e in list_audit(ctx.reader)])
    assert PASSWORD not in everything
    assert new_password not in everything


# ---------------------------------------------------------------------------- the real service


@pytest.mark.slow
def test_interventions_are_decided_through_the_running_service(tmp_path: Path) -> None:
    with FaultServer() as server:
        server.route("/a.xml", Reply(200, headers=[("Content-Type", "application/rss+xml")]))
        feeds = feed_table("a", server.url("/a.xml"), 86400) + feed_table(
            "b", server.url("/a.xml"), 86400
        )
        vault = quick_vault(tmp_path, feeds)
        with VaultWriter.open(vault) as writer:
            k = keys(writer)
        with (
            in_process(vault, _frozen()) as service,
            httpx.Client(base_url=service.url or "", timeout=30) as client,
        ):
            manager = service.interventions
            assert manager is not None
            first = on_loop(
                service,
                lambda: manager.propose(Proposal("quarantine_feed", "a", reason="test: parse")),
            )
            second = on_loop(
                service,
                lambda: manager.propose(Proposal("quarantine_feed", "b", reason="test: parse")),
            )
            assert first.state == second.state == "pending_approval"
            analyst = {"X-API-Key": k["analyst"]}
            admin = {"X-API-Key": k["admin"], "X-Request-ID": "req-iv"}
            status = client.get("/v1/status", headers=analyst)
            assert status.status_code == 200
            assert status.json()["running"] is True
            listing = client.get("/v1/interventions?state=pending_approval", headers=analyst)
            assert {iv["id"] for iv in listing.json()["entries"]} == {first.id, second.id}
            shown = client.get(f"/v1/interventions/{first.id}", headers=analyst).json()
            assert shown["kind"] == "quarantine_feed"
            assert shown["target"] == "a"
            refused = client.post(
                f"/v1/interventions/{first.id}/approve", headers={"X-API-Key": k["editor"]}
            )
            assert refused.status_code == 403
            approved = client.post(f"/v1/interventions/{first.id}/approve", headers=admin)
            assert approved.status_code == 200, approved.text
            assert approved.json()["state"] == "executed"
            assert approved.json()["decided_by"] == "key:k-admin"
            again = client.post(f"/v1/interventions/{first.id}/approve", headers=admin)
            assert again.status_code == 409
            paused = {
                f["feed"]: f for f in client.get("/v1/status", headers=analyst).json()["feeds"]
            }
            assert paused["a"]["paused"] is True
            rolled = client.post(
                f"/v1/interventions/{first.id}/rollback",
                headers=admin,
                json={"reason": "released after a look"},
            )
            assert rolled.status_code == 200, rolled.text
            assert rolled.json()["state"] == "rolled_back"
            rejected = client.post(
                f"/v1/interventions/{second.id}/reject",
                headers=admin,
                json={"reason": "the feed is fine"},
            )
            assert rejected.json()["state"] == "rejected"
            trail = [
                (e.action, e.target, e.request_id)
                for e in list_audit(service.reader)
                if e.action.startswith("intervention.")
            ]
            assert trail == [
                ("intervention.approve", f"intervention:{first.id}", "req-iv"),
                ("intervention.rollback", f"intervention:{first.id}", "req-iv"),
                ("intervention.reject", f"intervention:{second.id}", "req-iv"),
            ]
