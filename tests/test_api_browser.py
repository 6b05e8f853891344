"""Archived HTML never runs on ECHO's origin: a capture holding ``<script>`` in headless Chromium.

The real service (``echoctl serve``'s :class:`~echo_archive.service.runner.Service`,
uvicorn on loopback) serves a vault holding an HTML capture whose scripts,
if they ran, would leave marks: a request to a loopback receiver,
``document.title``, ``localStorage``. Debian's chromium is driven through
Selenium and its chromedriver (never a downloaded browser), with the API
key sent through the DevTools protocol. A control first shows the marks
appear when the same page is served as HTML by the receiver; then the
capture's body, fetched through the API by navigation and in an iframe of
another site's page, leaves none, while the download holds its exact bytes and
the response carried the inert headers (the iframe's is fetched too, then
downloaded or refused by the browser: either way never rendered).

Under ``CI=true`` a missing chromium or chromedriver fails the test loudly
(``.ci/run`` installs them); elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from echo_archive.api.keys import create_key
from echo_archive.api.roles import Role
from echo_archive.service.scheduler import ManualClock
from echo_archive.vault.vault import Vault
from tests.httpfaults import FaultServer, Reply
from tests.test_api_captures import commit_exchange, html_exchange
from tests.test_service import in_process, make_vault

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)


def _browser_paths() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        why = f"{', '.join(missing)} missing (Debian's chromium and chromium-driver; .ci/run)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)


def script_page(receiver: str) -> bytes:
    """An HTML page whose scripts, if run, mark the receiver, the title and localStorage."""
    return (
        "<!doctype html><html><head><title>archived</title><script>"
        "document.title='ran';"
        "try{localStorage.setItem('ran','1')}catch(e){}"
        f"fetch('{receiver}/script-ran').catch(function(){{}});"
        f"new Image().src='{receiver}/image-ran';"
        "</script></head><body><h1>An archived page</h1>"
        f"<img src='{receiver}/onerror-missing' onerror=\"document.title='ran'\">"
        f"<iframe src='{receiver}/frame-ran'></iframe>"
        "</body></html>"
    ).encode()


def until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll ``check`` until it is truthy (a generous deadline; nothing is timed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    _browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as ChromeService

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=ChromeService(str(CHROMEDRIVER)), options=options)
    try:
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior",
            {"behavior": "allow", "downloadPath": str(downloads)},
        )
        driver.downloads = downloads
        yield driver
    finally:
        driver.quit()


def _responses(driver: Any) -> list[dict[str, Any]]:
    """The ``Network.responseReceived`` events of the performance log so far."""
    out = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.responseReceived":
            out.append(message["params"]["response"])
    return out


def _downloaded(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if not p.name.endswith(".crdownload")]


def test_a_capture_holding_script_never_runs_in_chromium(tmp_path: Path, chromium: Any) -> None:
    driver = chromium
    with FaultServer() as receiver:
        page = script_page(receiver.url("").rstrip("/"))
        receiver.route("/control.html", Reply(200, [("Content-Type", "text/html")], page))
        marks = ("/script-ran", "/image-ran", "/frame-ran", "/onerror-missing")
        for mark in marks:
            receiver.route(mark, Reply(404))
        receiver.route(
            "/embed.html",
            Reply(200, [("Content-Type", "text/html")], b"<!doctype html><title>e</title><body>"),
        )

        def marked() -> int:
            return sum(receiver.hits(m) for m in marks)

        # the control: served as HTML, the page's scripts do run and leave every mark
        driver.get(receiver.url("/control.html"))
        until(lambda: receiver.hits("/script-ran") and receiver.hits("/image-ran"), "control")
        assert driver.title == "ran"
        assert driver.execute_script("return localStorage.getItem('ran')") == "1"
        before = marked()
        assert before >= 2

        # the vault: the same page as a capture; a key for the browser
        vault = make_vault(tmp_path, "")
        with Vault.open(vault) as v:
            commit_exchange(v, "pages", html_exchange("https://example.org/page.html", page))
            index = next(i for i, e in v.iter_entries() if e.type == "capture")
            key, _ = create_key(v, "browser", Role.ANALYST, now=time.time(), actor="t")
        clock = ManualClock(time.time())
        clock.stop_at = clock.now
        with in_process(vault, clock) as service:
            base = service.url or ""
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd(
                "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Bearer {key}"}}
            )
            driver.get(f"{base}/v1/whoami")  # a page of ECHO's origin
            assert json.loads(driver.find_element("tag name", "body").text)["name"] == "browser"
            origin_title = driver.title
            body_url = f"{base}/v1/captures/{index}/body"

            # 1. navigating to the body: a download, never a page
            driver.get(body_url)
            files = until(lambda: _downloaded(driver.downloads), "the download")
            assert [f.read_bytes() for f in files] == [page]  # fetched: the bytes as received
            assert files[0].name == f"capture-{index}.html"

            # 2. the body in an iframe of another site's page (ECHO's own pages may frame
            # nothing: their CSP is default-src 'none'); the API answers X-Frame-Options
            driver.get(receiver.url("/embed.html"))
            driver.execute_script(
                "var f=document.createElement('iframe');f.src=arguments[0];"
                "document.body.appendChild(f);",
                body_url,
            )
            seen: list[dict[str, Any]] = []

            def body_responses() -> bool:
                seen.extend(r for r in _responses(driver) if r["url"] == body_url)
                return len(seen) >= 2

            until(body_responses, "the iframe's request of the body")  # a download, or refused
            responses = seen
            for response in responses:
                headers = {k.lower(): v for k, v in response["headers"].items()}
                assert response["status"] == 200
                assert headers["content-type"] == "application/octet-stream"
                assert headers["content-disposition"].startswith("attachment;")
                assert headers["x-content-type-options"] == "nosniff"
                assert headers["content-security-policy"] == "sandbox; default-src 'none'"
            # nothing of the page ran: no mark requested, none on ECHO's origin
            assert marked() == before
            frame_title = driver.execute_script(
                "try{return document.querySelector('iframe').contentDocument.title}"
                "catch(e){return 'cross-origin'}"
            )
            assert frame_title != "ran"
            driver.get(f"{base}/v1/whoami")
            assert driver.title == origin_title != "ran"
            assert driver.execute_script("return localStorage.getItem('ran')") is None
            assert marked() == before
