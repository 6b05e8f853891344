"""The corrections routes over real HTTP (ASGI): roles and scope, sequence, hostile input.

Every route module is mounted (:func:`echo_archive.api.routes.mount`) in a
FastAPI app over a real vault (items committed through the real harvest
commit path, then its writer and a read-only reader), called through
``httpx.ASGITransport``.
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

from echo_archive.api.deps import ApiContext
from echo_archive.api.keys import create_key
from echo_archive.api.roles import Role
from echo_archive.api.routes import mount
from echo_archive.api.routes.corrections import MAX_BODY
from echo_archive.config import ApiSection
from echo_archive.harvest.reparse import derived_indexes
from echo_archive.services.items import item_history
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import verify_vault
from echo_archive.vault.writer import VaultWriter

from .itemdata import at, commit_items

SLASHED = "https://example.org/world/7"
"""A native id holding ``/`` and ``:`` (an RSS guid that is a URL)."""


@pytest.fixture
def ctx(vault_path: Path) -> Iterator[ApiContext]:
    with Vault.open(vault_path) as v:
        world = [("a1", "first"), ("a2", "second"), (SLASHED, "url")]
        commit_items(v, "world", world, seen_at=at(0))
        commit_items(v, "tech", [("b1", "tech item")], seen_at=at(60))
    with (
        VaultWriter.open(vault_path, derived=derived_indexes()) as writer,
        Vault.open(vault_path, readonly=True) as reader,
    ):
        yield ApiContext(
            reader=reader, writer=writer, config=ApiSection(groups={"newsroom": ["world"]})
        )


def call(ctx: ApiContext, *requests: tuple[str, str, dict[str, Any]]) -> list[httpx.Response]:
    app = FastAPI()
    mount(app, ctx)

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://echo.test") as client:
            return [await client.request(m, url, **kw) for m, url, kw in requests]

    return asyncio.run(run())


def keys(ctx: ApiContext) -> dict[str, str]:
    """A key per role, and ``scoped``: an editor of the group newsroom (feed world)."""
    now = time.time()
    made = {
        role.label: create_key(ctx.writer, f"k-{role.label}", role, now=now, actor="cli:t")[0]
        for role in Role
    }
    made["scoped"] = create_key(
        ctx.writer,
        "k-scoped",
        Role.EDITOR,
        now=now,
        group="newsroom",
        groups=ctx.config.groups,
        actor="cli:t",
    )[0]
    return made


def post(key: str, ref: str, body: object, **headers: str) -> tuple[str, str, dict[str, Any]]:
    return (
        "POST",
        f"/v1/items/{ref}/corrections",
        {"headers": {"Authorization": f"Bearer {key}", **headers}, "json": body},
    )


def get(key: str, url: str) -> tuple[str, str, dict[str, Any]]:
    return ("GET", url, {"headers": {"Authorization": f"Bearer {key}"}})


def test_an_editor_annotates_and_the_item_shows_it(ctx: ApiContext) -> None:
    k = keys(ctx)
    made, listed = call(
        ctx,
        post(
            k["editor"],
            "rss:world:a1",
            {"kind": "annotation", "reason": "headline changed", "text": "was: first\nnow: same"},
            **{"X-Request-ID": "req-42"},
        ),
        get(k["viewer"], "/v1/items/rss:world:a1/corrections"),
    )
    assert made.status_code == 201, made.text
    doc = made.json()
    record = doc["record"]
    assert record["index"] == doc["index"]
    assert (record["kind"], record["item"], record["actor"]) == (
        "annotation",
        "rss:world:a1",
        "key:k-editor",
    )
    assert record["request_id"] == "req-42"
    assert record["text"] == "was: first\nnow: same"
    assert listed.status_code == 200
    assert listed.json() == {
        "item": "rss:world:a1",
        "retracted": False,
        "total": 1,
        "entries": [record],
    }
    entry = ctx.reader.entry(doc["index"])
    assert entry.type == "correction"
    assert entry.meta["reason"] == "headline changed"
    history = item_history(ctx.reader, "rss:world:a1")
    assert [c.index for c in history.corrections] == [doc["index"]]
    report = verify_vault(ctx.reader)
    assert report.ok, report.problems


def test_permissions_per_role_and_feed_scope(ctx: ApiContext) -> None:
    k = keys(ctx)
    body = {"kind": "annotation", "reason": "checked"}
    responses = call(
        ctx,
        ("POST", "/v1/items/rss:world:a1/corrections", {"json": body}),
        ("GET", "/v1/corrections", {}),
        post(k["viewer"], "rss:world:a1", body),
        post(k["analyst"], "rss:world:a1", body),
        post(k["editor"], "rss:tech:b1", body),
        post(k["admin"], "rss:world:a2", body),
        post(k["scoped"], "rss:world:a1", body),
        post(k["scoped"], "rss:tech:b1", body),
        get(k["scoped"], "/v1/items/rss:tech:b1/corrections"),
        get(k["scoped"], "/v1/corrections"),
        get(k["scoped"], "/v1/corrections?feed=tech"),
        get(k["viewer"], "/v1/corrections"),
    )
    codes = [r.status_code for r in responses]
    assert codes == [401, 401, 403, 403, 201, 201, 201, 403, 403, 200, 403, 200]
    assert responses[0].headers["www-authenticate"] == 'Bearer realm="echo"'
    assert responses[2].json()["detail"]["missing"] == "corrections:write"
    assert responses[3].json()["detail"]["missing"] == "corrections:write"
    assert responses[7].json()["detail"]["feed"] == "tech"
    assert "newsroom" in responses[7].json()["detail"]["message"]
    scoped_view = responses[9].json()
    assert {e["feed"] for e in scoped_view["entries"]} == {"world"}
    assert scoped_view["total"] == 2
    assert responses[11].json()["total"] == 3
    assert [r.json()["record"]["actor"] for r in responses[4:7]] == [
        "key:k-editor",
        "key:k-admin",
        "key:k-scoped",
    ]


def test_retraction_reinstatement_and_conflicts(ctx: ApiContext) -> None:
    k = keys(ctx)["editor"]
    ref = "rss:world:a2"
    first, again, back, back_again, state = call(
        ctx,
        post(k, ref, {"kind": "retraction", "reason": "fabricated"}),
        post(k, ref, {"kind": "retraction", "reason": "still fabricated"}),
        post(k, ref, {"kind": "reinstatement", "reason": "confirmed by the desk"}),
        post(k, ref, {"kind": "reinstatement", "reason": "again"}),
        get(k, f"/v1/items/{ref}/corrections"),
    )
    assert [r.status_code for r in (first, again, back, back_again)] == [201, 409, 201, 409]
    assert again.json()["detail"]["code"] == "conflict"
    assert "already retracted" in again.json()["detail"]["message"]
    assert "not retracted" in back_again.json()["detail"]["message"]
    assert back.json()["record"]["previous"] == first.json()["index"]
    assert state.json()["retracted"] is False
    assert [e["kind"] for e in state.json()["entries"]] == ["retraction", "reinstatement"]
    (retracted,) = call(ctx, post(k, ref, {"kind": "retraction", "reason": "on second look"}))
    (state,) = call(ctx, get(k, f"/v1/items/{ref}/corrections"))
    assert retracted.status_code == 201
    assert state.json()["retracted"] is True


def test_a_native_id_with_slashes_and_an_entry_index(ctx: ApiContext) -> None:
    k = keys(ctx)["editor"]
    index = item_history(ctx.reader, f"rss:world:{SLASHED}").history[0].index
    by_key, by_index, listed = call(
        ctx,
        post(k, f"rss:world:{SLASHED}", {"kind": "annotation", "reason": "a URL id"}),
        post(k, str(index), {"kind": "annotation", "reason": "by index"}),
        get(k, f"/v1/items/rss:world:{SLASHED}/corrections"),
    )
    assert by_key.status_code == 201, by_key.text
    assert by_index.status_code == 201, by_index.text
    assert by_key.json()["record"]["native_id"] == SLASHED
    assert by_index.json()["record"]["native_id"] == SLASHED
    assert listed.json()["total"] == 2


def test_hostile_input_is_a_clear_error_and_writes_nothing(ctx: ApiContext) -> None:
    k = keys(ctx)["admin"]
    size = ctx.reader.size
    auth = {"Authorization": f"Bearer {k}"}
    cases: list[tuple[tuple[str, str, dict[str, Any]], int, str]] = [
        (post(k, "rss:world:a1", {"kind": "annotation", "reason": "x" * 1001}), 400, "reason: "),
        (post(k, "rss:world:a1", {"kind": "annotation", "reason": "a\x1b[2Jb"}), 400, "U+001B"),
        (post(k, "rss:world:a1", {"kind": "annotation", "reason": "a\u202eb"}), 400, "U+202E"),
        (post(k, "rss:world:a1", {"kind": "annotation", "reason": "  "}), 400, "reason: "),
        (post(k, "rss:world:a1", {"kind": "annotation", "reason": 7}), 400, "reason: "),
        (post(k, "rss:world:a1", {"kind": "annotation"}), 400, "reason: required"),
        (post(k, "rss:world:a1", {"reason": "r"}), 400, "kind: required"),
        (post(k, "rss:world:a1", {"kind": "delete", "reason": "r"}), 400, "kind 'delete'"),
        (post(k, "rss:world:a1", {"kind": ["annotation"], "reason": "r"}), 400, "kind "),
        (
            post(k, "rss:world:a1", {"kind": "annotation", "reason": "r", "text": "t\x00"}),
            400,
            "text: ",
        ),
        (
            post(k, "rss:world:a1", {"kind": "annotation", "reason": "r", "text": "y" * 10_001}),
            400,
            "text: ",
        ),
        (
            post(k, "rss:world:a1", {"kind": "annotation", "reason": "r", "actor": "key:root"}),
            400,
            "'actor': unknown field",
        ),
        (post(k, "rss:world:a1", ["annotation"]), 400, "expected a JSON object"),
        (
            ("POST", "/v1/items/rss:world:a1/corrections", {"headers": auth, "content": b"{"}),
            415,
            "application/json",
        ),
        (
            (
                "POST",
                "/v1/items/rss:world:a1/corrections",
                {"headers": {**auth, "Content-Type": "application/json"}, "content": b"{"},
            ),
            400,
            "body: ",
        ),
        (
            (
                "POST",
                "/v1/items/rss:world:a1/corrections",
                {
                    "headers": {**auth, "Content-Type": "application/json"},
                    "content": b'{"kind": "annotation", "reason": "' + b"z" * MAX_BODY + b'"}',
                },
            ),
            413,
            "larger than",
        ),
        (post(k, "rss:world:nope", {"kind": "annotation", "reason": "r"}), 404, "no item"),
        (post(k, "0", {"kind": "annotation", "reason": "r"}), 404, "is a capture"),
        (post(k, "99999", {"kind": "annotation", "reason": "r"}), 404, "no item at entry"),
        (post(k, "not-a-ref", {"kind": "annotation", "reason": "r"}), 400, "SOURCE:FEED"),
        (get(k, "/v1/items/rss:world:nope/corrections"), 404, "no item"),
        (get(k, f"/v1/items/rss:world:{'n' * 5000}/corrections"), 400, "at most 4096"),
        (get(k, "/v1/corrections?limit=0"), 400, "limit 0"),
        (get(k, "/v1/corrections?limit=abc"), 400, "limit 'abc'"),
        (get(k, "/v1/corrections?order=sideways"), 400, "order"),
        (get(k, "/v1/corrections?kind=delete"), 400, "kind 'delete'"),
        (get(k, "/v1/corrections?kind=" + "k" * 5000), 400, "kind 'kkk"),
        (get(k, "/v1/corrections?order=" + "o" * 5000), 400, "order 'ooo"),
        (get(k, "/v1/corrections?cursor=" + "c" * 5000), 400, "cursor 'ccc"),
        (get(k, "/v1/corrections?cursor=garbage"), 400, "cursor"),
    ]
    responses = call(ctx, *(request for request, _, _ in cases))
    for (request, status, words), r in zip(cases, responses, strict=True):
        assert r.status_code == status, (request[1], r.text)
        assert len(r.json()["detail"]["message"]) < 300  # hostile input is not echoed whole
        assert words in r.json()["detail"]["message"], (request[1], r.text)
        assert r.json()["detail"]["code"]
    ctx.writer.flush()
    assert ctx.reader.size == size


def test_listing_is_keyset_paged(ctx: ApiContext) -> None:
    k = keys(ctx)["editor"]
    made = call(
        ctx,
        *(
            post(k, ref, {"kind": "annotation", "reason": f"note {i}"})
            for i, ref in enumerate(["rss:world:a1", "rss:tech:b1", "rss:world:a2"] * 2)
        ),
    )
    indexes = [r.json()["index"] for r in made]
    seen: list[int] = []
    url = "/v1/corrections?limit=4"
    while True:
        (page,) = call(ctx, get(k, url))
        body = page.json()
        assert body["total"] == 6
        assert len(body["entries"]) <= 4
        seen += [e["index"] for e in body["entries"]]
        if body["next"] is None:
            break
        url = f"/v1/corrections?limit=4&cursor={body['next']}"
    assert seen == indexes[::-1]
    token = _first_next(ctx, k)
    oldest, tech, retractions, other = call(
        ctx,
        get(k, "/v1/corrections?order=oldest&limit=2"),
        get(k, "/v1/corrections?feed=tech"),
        get(k, "/v1/corrections?kind=retraction"),
        get(k, f"/v1/corrections?kind=annotation&cursor={token}"),
    )
    assert [e["index"] for e in oldest.json()["entries"]] == indexes[:2]
    assert {e["feed"] for e in tech.json()["entries"]} == {"tech"}
    assert tech.json()["total"] == 2
    assert retractions.json() == {"total": 0, "entries": [], "next": None}
    assert other.status_code == 400
    assert "other filters" in other.json()["detail"]["message"]


def _first_next(ctx: ApiContext, key: str) -> str:
    (page,) = call(ctx, get(key, "/v1/corrections?limit=1"))
    token = page.json()["next"]
    assert isinstance(token, str)
    return token


def test_the_routes_are_documented_in_openapi(ctx: ApiContext) -> None:
    (r,) = call(ctx, ("GET", "/openapi.json", {}))
    paths = r.json()["paths"]
    add = paths["/v1/items/{ref}/corrections"]["post"]
    assert add["summary"]
    assert add["x-echo-permission"] == "corrections:write"
    assert paths["/v1/items/{ref}/corrections"]["get"]["x-echo-permission"] == "corrections:read"
    assert paths["/v1/corrections"]["get"]["x-echo-permission"] == "corrections:read"
    assert {"201", "400", "401", "403", "404", "409", "413", "415"} <= set(add["responses"])
    body = add["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["kind", "reason"]
    assert set(body["properties"]) == {"kind", "reason", "text"}
    listing = paths["/v1/corrections"]["get"]
    assert listing["summary"]
    assert {p["name"] for p in listing["parameters"]} == {
        "kind",
        "feed",
        "order",
        "limit",
        "cursor",
    }
    assert paths["/v1/items/{ref}/corrections"]["get"]["summary"]
