"""The API's dependencies end to end: /v1/whoami, /v1/keys, /v1/token over real HTTP (ASGI).

The router is mounted in a FastAPI app of the test's own over a real vault
(its writer and a read-only reader), and called through
``httpx.ASGITransport``: 401 with ``WWW-Authenticate: Bearer`` without or
with a bad credential (RFC 6750 §3), 403 naming the missing permission,
revocation at the next request, hostile headers and names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from echo_archive.api.audit import list_audit
from echo_archive.api.deps import ApiContext, Auth
from echo_archive.api.keys import create_key
from echo_archive.api.roles import Principal, Role
from echo_archive.api.router import build_router
from echo_archive.api.users import add_user
from echo_archive.config import ApiSection
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter


@pytest.fixture
def ctx(vault_path: Path) -> Iterator[ApiContext]:
    with VaultWriter.open(vault_path) as writer, Vault.open(vault_path, readonly=True) as reader:
        yield ApiContext(
            reader=reader,
            writer=writer,
            config=ApiSection(public=["proofs"], groups={"newsroom": ["bbc-world"]}),
        )


def app_of(ctx: ApiContext) -> FastAPI:
    app = FastAPI()
    app.include_router(build_router(ctx))
    auth = Auth(ctx)

    @app.get("/v1/proofs/probe")
    async def probe(p: Principal = Depends(auth.require("proofs:read", public="proofs"))) -> Any:  # noqa: B008
        return {"who": p.name}

    @app.get("/v1/checkpoint/probe")
    async def cp(p: Principal = Depends(auth.require("proofs:read", public="checkpoint"))) -> Any:  # noqa: B008
        return {"who": p.name}

    return app


def call(ctx: ApiContext, *requests: tuple[str, str, dict[str, Any]]) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app_of(ctx))
        async with httpx.AsyncClient(transport=transport, base_url="http://echo.test") as client:
            return [await client.request(m, url, **kw) for m, url, kw in requests]

    return asyncio.run(run())


def bearer(key: str) -> dict[str, Any]:
    return {"headers": {"Authorization": f"Bearer {key}"}}


def keys_for_each_role(ctx: ApiContext) -> dict[str, str]:
    now = time.time()
    return {
        role.label: create_key(ctx.writer, f"k-{role.label}", role, now=now, actor="cli:t")[0]
        for role in Role
    }


def test_without_credentials_401_with_the_bearer_challenge(ctx: ApiContext) -> None:
    for r in call(ctx, ("GET", "/v1/whoami", {}), ("GET", "/v1/keys", {})):
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Bearer realm="echo"'
        assert r.json()["detail"]["code"] == "unauthorized"


def test_whoami_and_keys_with_each_role(ctx: ApiContext) -> None:
    keys = keys_for_each_role(ctx)
    for role, key in keys.items():
        who, listing = call(
            ctx, ("GET", "/v1/whoami", bearer(key)), ("GET", "/v1/keys", bearer(key))
        )
        assert who.status_code == 200
        assert who.json()["role"] == role
        assert who.json()["kind"] == "key"
        assert ("keys:admin" in who.json()["permissions"]) == (role == "admin")
        if role == "admin":
            assert listing.status_code == 200
            body = listing.json()
            assert body["total"] == 4
            assert {e["name"] for e in body["entries"]} == {f"k-{r}" for r in keys}
            text = listing.text
            assert all(k not in text for k in keys.values())
            assert "hash" not in text
        else:
            assert listing.status_code == 403
            assert listing.json()["detail"]["missing"] == "keys:read"
    (via_header,) = call(ctx, ("GET", "/v1/whoami", {"headers": {"X-API-Key": keys["viewer"]}}))
    assert via_header.json()["role"] == "viewer"


def test_create_use_revoke_through_the_api(ctx: ApiContext) -> None:
    admin = keys_for_each_role(ctx)["admin"]
    made, bad_role, bad_name, taken = call(
        ctx,
        ("POST", "/v1/keys", {**bearer(admin), "json": {"name": "bot", "role": "editor"}}),
        ("POST", "/v1/keys", {**bearer(admin), "json": {"name": "x", "role": "root"}}),
        ("POST", "/v1/keys", {**bearer(admin), "json": {"name": "a\x1b[2Jb", "role": "viewer"}}),
        ("POST", "/v1/keys", {**bearer(admin), "json": {"name": "bot", "role": "viewer"}}),
    )
    assert made.status_code == 201
    assert made.headers["cache-control"] == "no-store"
    key = made.json()["key"]
    assert bad_role.status_code == 400
    assert "unknown role" in bad_role.json()["detail"]["message"]
    assert bad_name.status_code == 400
    assert "key name" in bad_name.json()["detail"]["message"]
    assert taken.status_code == 400
    assert "already used" in taken.json()["detail"]["message"]
    before, revoked, after, missing = call(
        ctx,
        ("GET", "/v1/whoami", bearer(key)),
        ("DELETE", "/v1/keys/bot", bearer(admin)),
        ("GET", "/v1/whoami", bearer(key)),
        ("DELETE", "/v1/keys/nobody", bearer(admin)),
    )
    assert before.status_code == 200
    assert before.json()["name"] == "bot"
    assert revoked.status_code == 200
    assert revoked.json()["state"] == "revoked"
    assert after.status_code == 401
    assert 'error="invalid_token"' in after.headers["www-authenticate"]
    assert "revoked" in after.json()["detail"]["message"]
    assert missing.status_code == 404
    entries = list_audit(ctx.reader)
    assert [(e.actor, e.action, e.target) for e in entries[-2:]] == [
        ("key:k-admin", "key.create", "key:bot"),
        ("key:k-admin", "key.revoke", "key:bot"),
    ]
    assert all(e.request_id for e in entries[-2:])


def test_expired_key_401(ctx: ApiContext) -> None:
    now = time.time()
    key, _ = create_key(ctx.writer, "brief", Role.VIEWER, now=now, expires_at=now + 5, actor="t")
    ctx.clock = lambda: now + 5
    (r,) = call(ctx, ("GET", "/v1/whoami", bearer(key)))
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]["message"]


def test_password_grant_gives_a_token_that_authenticates(ctx: ApiContext) -> None:
    add_user(ctx.writer, "alice", Role.ANALYST, "correct horse", now=time.time(), actor="t")
    form = {"grant_type": "password", "username": "alice", "password": "correct horse"}
    good, wrong, grant = call(
        ctx,
        ("POST", "/v1/token", {"data": form}),
        ("POST", "/v1/token", {"data": {**form, "password": "nope nope"}}),
        ("POST", "/v1/token", {"data": {**form, "grant_type": "client_credentials"}}),
    )
    assert good.status_code == 200
    assert good.json()["token_type"] == "bearer"  # noqa: S105 - RFC 6749 §7.1 token type
    assert good.json()["expires_in"] == 900
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert grant.json()["error"] == "unsupported_grant_type"
    token = good.json()["access_token"]
    who, keys, tampered = call(
        ctx,
        ("GET", "/v1/whoami", bearer(token)),
        ("GET", "/v1/keys", bearer(token)),
        ("GET", "/v1/whoami", bearer(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))),
    )
    assert who.json()["name"] == "alice"
    assert who.json()["kind"] == "user"
    assert keys.status_code == 403
    assert tampered.status_code == 401


def test_public_route_groups_only_as_configured(ctx: ApiContext) -> None:
    viewer = keys_for_each_role(ctx)["viewer"]
    open_, closed, with_key, bad_key = call(
        ctx,
        ("GET", "/v1/proofs/probe", {}),
        ("GET", "/v1/checkpoint/probe", {}),
        ("GET", "/v1/checkpoint/probe", bearer(viewer)),
        ("GET", "/v1/proofs/probe", bearer("echo_0000000000000000_" + "A" * 43)),
    )
    assert open_.status_code == 200
    assert open_.json() == {"who": "anonymous"}
    assert closed.status_code == 401
    assert with_key.json() == {"who": "k-viewer"}
    assert bad_key.status_code == 401  # a credential sent is checked even on a public route


def test_hostile_headers_get_clear_errors(ctx: ApiContext) -> None:
    key = keys_for_each_role(ctx)["admin"]
    huge, control, two, basic, junk = call(
        ctx,
        ("GET", "/v1/whoami", {"headers": {"X-API-Key": "echo_" + "A" * 1_000_000}}),
        ("GET", "/v1/whoami", {"headers": {"X-API-Key": key[:10] + "\x7f" + key[11:]}}),
        ("GET", "/v1/whoami", {"headers": {"X-API-Key": key, "Authorization": f"Bearer {key}"}}),
        ("GET", "/v1/whoami", {"headers": {"Authorization": "Basic YTpi"}}),
        ("GET", "/v1/whoami", bearer("not-a-credential")),
    )
    assert huge.status_code == 400
    assert "longer than 4096" in huge.json()["detail"]["message"]
    assert len(huge.content) < 1000  # the credential is not echoed back
    assert control.status_code == 400
    assert "control" in control.json()["detail"]["message"]
    assert two.status_code == 400
    assert "more than one" in two.json()["detail"]["message"]
    assert basic.status_code == 400
    assert "Bearer" in basic.json()["detail"]["message"]
    assert junk.status_code == 401
    assert "not-a-credential" not in junk.text
    for r in (huge, control, two, basic):
        assert 'error="invalid_request"' in r.headers["www-authenticate"]


def test_a_scoped_key_is_denied_archive_wide_kinds(ctx: ApiContext) -> None:
    key, _ = create_key(
        ctx.writer,
        "news",
        Role.ADMIN,
        now=time.time(),
        group="newsroom",
        groups=ctx.config.groups,
        actor="t",
    )
    who, listing = call(ctx, ("GET", "/v1/whoami", bearer(key)), ("GET", "/v1/keys", bearer(key)))
    assert who.json()["feeds"] == ["bbc-world"]
    assert who.json()["group"] == "newsroom"
    assert listing.status_code == 403
    assert "unscoped" in listing.json()["detail"]["message"]


def test_breakglass_through_the_api_for_admins_only(ctx: ApiContext) -> None:
    keys = keys_for_each_role(ctx)
    body = {"reason": "restore after disk failure", "minutes": 5}
    before, taken, after, editor, short = call(
        ctx,
        ("GET", "/v1/whoami", bearer(keys["admin"])),
        ("POST", "/v1/breakglass", {**bearer(keys["admin"]), "json": body}),
        ("GET", "/v1/whoami", bearer(keys["admin"])),
        ("POST", "/v1/breakglass", {**bearer(keys["editor"]), "json": body}),
        ("POST", "/v1/breakglass", {**bearer(keys["admin"]), "json": {"reason": "x"}}),
    )
    assert "operations:admin" not in before.json()["permissions"]
    assert taken.status_code == 201
    assert taken.json()["actor"] == "key:k-admin"
    assert "operations:admin" in after.json()["permissions"]
    assert after.json()["elevated_until"] == taken.json()["ends_at"]
    assert editor.status_code == 403
    assert short.status_code == 400
    assert [(e.action, e.outcome) for e in list_audit(ctx.reader)[-2:]] == [
        ("breakglass.start", "ok"),
        ("breakglass.start", "refused"),
    ]


def test_a_burst_of_failed_logins_is_one_audit_entry(ctx: ApiContext) -> None:
    add_user(ctx.writer, "alice", Role.VIEWER, "correct horse", now=time.time(), actor="t")
    form = {"grant_type": "password", "username": "alice", "password": "guess-0001"}
    answers = call(ctx, *[("POST", "/v1/token", {"data": form})] * 11)
    assert {r.status_code for r in answers} == {400}
    bursts = [e for e in list_audit(ctx.reader) if e.action == "login.failure_burst"]
    assert [(e.target, e.details["failures"]) for e in bursts] == [
        ("user:alice", 5),
        ("user:alice", 10),
    ]
    assert all("guess-0001" not in ctx.reader.entry(e.index).raw.decode() for e in bursts)
