"""The documentation page: Swagger UI from this server (no CDN), its CSP, a fixed allow-list."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from echo_archive.api.deps import ApiContext
from echo_archive.api.routes import mount
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter


@pytest.fixture
def app(vault_path: Path) -> Iterator[FastAPI]:
    with VaultWriter.open(vault_path) as writer, Vault.open(vault_path, readonly=True) as reader:
        app = FastAPI(docs_url=None, redoc_url=None)
        mount(app, ApiContext(reader=reader, writer=writer))
        yield app


def get(app: FastAPI, *paths: str) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://echo.test") as client:
            return [await client.get(p) for p in paths]

    return asyncio.run(run())


def test_the_docs_page_loads_everything_from_this_origin_under_its_csp(app: FastAPI) -> None:
    page, css, js, init, spec = get(
        app,
        "/docs",
        "/docs/static/swagger-ui.css",
        "/docs/static/swagger-ui-bundle.js",
        "/docs/static/echo-init.js",
        "/openapi.json",
    )
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    # every script and stylesheet the page names is a path on this server (no CDN)
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert refs
    assert all(r.startswith("/docs/static/") for r in refs), refs
    assert "<script>" not in page.text  # no inline script: CSP script-src 'self' holds
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert b".swagger-ui" in css.content
    assert js.status_code == 200
    assert b"SwaggerUIBundle" in js.content
    assert init.status_code == 200
    assert b'"/openapi.json"' in init.content
    assert spec.status_code == 200
    assert "/v1/whoami" in spec.json()["paths"]
    assert "/docs" not in spec.json()["paths"]


@pytest.mark.parametrize(
    "name",
    ["index.html", "..%2F..%2Fpyproject.toml", "swagger-ui.css.map", "%00", "Echo-Init.js"],
)
def test_only_the_allow_listed_files_are_served(app: FastAPI, name: str) -> None:
    (found,) = get(app, f"/docs/static/{name}")
    assert found.status_code == 404
