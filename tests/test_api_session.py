"""The dashboard's cookie session: POST/DELETE /v1/session, the cookie credential, CSRF.

The API's real routes and edge middleware over a real vault, through
``httpx.ASGITransport``. Cookies are sent by hand (a ``Cookie`` header), as
a browser would send them, so what is asserted is exactly what travels.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from echo_archive.api.audit import list_audit
from echo_archive.api.deps import ApiContext
from echo_archive.api.keys import create_key
from echo_archive.api.middleware import install
from echo_archive.api.roles import Role
from echo_archive.api.routes import mount
from echo_archive.api.session import CSRF_COOKIE, SESSION_COOKIE, csrf_token
from echo_archive.api.users import add_user
from echo_archive.config import ApiSection
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter

PASSWORD = "correct horse battery"  # noqa: S105 - a test user's password


@pytest.fixture
def ctx(vault_path: Path) -> Iterator[ApiContext]:
    with VaultWriter.open(vault_path) as writer, Vault.open(vault_path, readonly=True) as reader:
        context = ApiContext(
            reader=reader,
            writer=writer,
            config=ApiSection(cors_origins=["https://dash.example.org"]),
        )
        add_user(writer, "ana", Role.ADMIN, PASSWORD, now=time.time(), actor="cli:t")
        yield context


def app_of(ctx: ApiContext) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None)
    mount(app, ctx)
    install(app, ctx)
    return app


def call(ctx: ApiContext, *requests: tuple[str, str, dict[str, Any]]) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app_of(ctx), client=("192.0.2.5", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://echo.test") as c:
            return [await c.request(m, url, **kw) for m, url, kw in requests]

    return asyncio.run(run())


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Cookie name -> its whole ``Set-Cookie`` value."""
    return {v.split("=", 1)[0]: v for v in response.headers.get_list("set-cookie")}


def login(ctx: ApiContext) -> tuple[str, str]:
    (r,) = call(ctx, ("POST", "/v1/session", {"data": {"username": "ana", "password": PASSWORD}}))
    assert r.status_code == 200, r.text
    jar: SimpleCookie = SimpleCookie()
    for value in r.headers.get_list("set-cookie"):
        jar.load(value)
    return jar[SESSION_COOKIE].value, r.json()["csrf_token"]


def cookie(jwt: str, **extra: str) -> dict[str, Any]:
    return {"headers": {"Cookie": f"{SESSION_COOKIE}={jwt}", **extra}}


def test_login_sets_an_httponly_strict_cookie_and_a_csrf_token(ctx: ApiContext) -> None:
    (r,) = call(ctx, ("POST", "/v1/session", {"data": {"username": "ana", "password": PASSWORD}}))
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["user"] == "ana"
    assert body["expires_in"] == 900
    cookies = set_cookies(r)
    session = cookies[SESSION_COOKIE]
    attrs = [a.strip() for a in session.split(";")]
    assert {"HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=900"} <= set(attrs)
    assert "Secure" not in attrs  # plain HTTP here; over TLS it is (test_api_tls)
    csrf = cookies[CSRF_COOKIE]
    assert csrf.startswith(f"{CSRF_COOKIE}={body['csrf_token']};")
    assert "HttpOnly" not in csrf  # the dashboard's script reads it
    jwt = session.split(";", 1)[0].split("=", 1)[1]
    assert jwt.count(".") == 2
    assert body["csrf_token"] == csrf_token(ctx.csrf_key, jwt)
    assert PASSWORD not in r.text


def test_the_cookie_authenticates_safe_requests(ctx: ApiContext) -> None:
    jwt, _ = login(ctx)
    who, keys = call(ctx, ("GET", "/v1/whoami", cookie(jwt)), ("GET", "/v1/keys", cookie(jwt)))
    assert who.status_code == 200
    assert who.json()["name"] == "ana"
    assert who.json()["kind"] == "user"
    assert keys.status_code == 200


def test_a_cookie_write_needs_the_matching_csrf_header(ctx: ApiContext) -> None:
    jwt, csrf = login(ctx)
    other_jwt, other_csrf = login(ctx)
    body = {"name": "bot", "role": "viewer"}
    none, wrong, others, ok = call(
        ctx,
        ("POST", "/v1/keys", {**cookie(jwt), "json": body}),
        ("POST", "/v1/keys", {**cookie(jwt, **{"X-CSRF-Token": "x" * 43}), "json": body}),
        # a CSRF token of another session (double-submit with a planted cookie): refused
        ("POST", "/v1/keys", {**cookie(jwt, **{"X-CSRF-Token": other_csrf}), "json": body}),
        ("POST", "/v1/keys", {**cookie(jwt, **{"X-CSRF-Token": csrf}), "json": body}),
    )
    for refused in (none, wrong, others):
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"]["code"] == "csrf"
    assert ok.status_code == 201, ok.text
    assert ok.json()["record"]["name"] == "bot"
    assert other_jwt != jwt
    # a DELETE by cookie is a write too
    (revoke,) = call(ctx, ("DELETE", "/v1/keys/bot", cookie(jwt)))
    assert revoke.status_code == 403
    assert revoke.json()["detail"]["code"] == "csrf"


def test_a_header_credential_needs_no_csrf_token(ctx: ApiContext) -> None:
    jwt, _ = login(ctx)
    admin, _ = create_key(ctx.writer, "root", Role.ADMIN, now=time.time(), actor="cli:t")
    by_token, by_key = call(
        ctx,
        (
            "POST",
            "/v1/keys",
            {
                "headers": {"Authorization": f"Bearer {jwt}"},
                "json": {"name": "a", "role": "viewer"},
            },
        ),
        # a header credential wins over a cookie sent beside it, and needs no CSRF token
        (
            "POST",
            "/v1/keys",
            {
                "headers": {"X-API-Key": admin, "Cookie": f"{SESSION_COOKIE}={jwt}"},
                "json": {"name": "b", "role": "viewer"},
            },
        ),
    )
    assert by_token.status_code == 201
    assert by_key.status_code == 201


def test_forged_or_foreign_cookies_are_refused(ctx: ApiContext) -> None:
    jwt, _ = login(ctx)
    head, claims, sig = jwt.split(".")
    forged = f"{head}.{claims}.{sig[:-4]}AAAA"
    admin, _ = create_key(ctx.writer, "root", Role.ADMIN, now=time.time(), actor="cli:t")
    bad_sig, a_key, garbage = call(
        ctx,
        ("GET", "/v1/whoami", cookie(forged)),
        ("GET", "/v1/whoami", cookie(admin)),  # an API key is not a session
        ("GET", "/v1/whoami", cookie("a.b.c")),
    )
    assert bad_sig.status_code == 401
    assert a_key.status_code == 401
    assert garbage.status_code == 401


def test_logout_clears_both_cookies(ctx: ApiContext) -> None:
    jwt, csrf = login(ctx)
    anonymous, no_csrf, r = call(
        ctx,
        ("DELETE", "/v1/session", {}),
        ("DELETE", "/v1/session", cookie(jwt)),
        ("DELETE", "/v1/session", cookie(jwt, **{"X-CSRF-Token": csrf})),
    )
    assert anonymous.status_code == 401
    assert no_csrf.status_code == 403
    assert r.status_code == 204
    cookies = set_cookies(r)
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        assert cookies[name].startswith(f"{name}=;")
        assert "Max-Age=0" in cookies[name]


def test_failed_logins_are_401_and_audited_as_a_burst(ctx: ApiContext) -> None:
    form = {"username": "ana", "password": "guess-0001"}
    answers = call(ctx, *[("POST", "/v1/session", {"data": form})] * 5)
    assert {r.status_code for r in answers} == {401}
    assert all("set-cookie" not in r.headers for r in answers)
    bursts = [e for e in list_audit(ctx.reader) if e.action == "login.failure_burst"]
    assert [(e.target, e.details["failures"]) for e in bursts] == [("user:ana", 5)]
    assert all("guess-0001" not in ctx.reader.entry(e.index).raw.decode() for e in bursts)


def test_a_cross_site_login_is_refused(ctx: ApiContext) -> None:
    form = {"data": {"username": "ana", "password": PASSWORD}}
    evil, fetch_meta, listed, own = call(
        ctx,
        ("POST", "/v1/session", {**form, "headers": {"Origin": "https://evil.example"}}),
        ("POST", "/v1/session", {**form, "headers": {"Sec-Fetch-Site": "cross-site"}}),
        ("POST", "/v1/session", {**form, "headers": {"Origin": "https://dash.example.org"}}),
        ("POST", "/v1/session", {**form, "headers": {"Origin": "http://echo.test"}}),
    )
    assert evil.status_code == 403
    assert fetch_meta.status_code == 403
    assert "set-cookie" not in evil.headers
    assert listed.status_code == 200
    assert own.status_code == 200


def test_a_users_tokens_and_cookie_share_one_rate_limit_bucket(ctx: ApiContext) -> None:
    ctx.config = ApiSection(rate_limit=4)
    form = {"grant_type": "password", "username": "ana", "password": PASSWORD}
    # one app (one limiter) for the whole sequence
    app = app_of(ctx)

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.5", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://echo.test") as c:
            t1 = (await c.post("/v1/token", data=form)).json()["access_token"]
            t2 = (await c.post("/v1/token", data=form)).json()["access_token"]
            codes = []
            for token in (t1, t2):  # each proven once (counted as unproven from the address)
                r = await c.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})
                codes.append(r.status_code)
            for token in (t1, t2, t1, t2, t1):  # now one bucket, user:ana, 4 a minute
                r = await c.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})
                codes.append(r.status_code)
            r = await c.get("/v1/whoami", headers={"Cookie": f"{SESSION_COOKIE}={t1}"})
            codes.append(r.status_code)
            return codes

    assert asyncio.run(run()) == [200, 200, 200, 200, 200, 200, 429, 429]
