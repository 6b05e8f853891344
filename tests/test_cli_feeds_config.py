"""echo.toml per feed, unknown --param keys, and masked credentials: through the real ``echoctl``.

Issue 9: one bad ``[[feeds]]`` table broke every command and was named by
position only; unknown parameters were accepted; ``feeds list`` and the feeds
service showed credentials.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from echo_archive.errors import SourceError
from echo_archive.services import feeds as feed_service

from .conftest import run_echoctl
from .httpfaults import FaultServer, Reply

BAD_TABLE = """
[[feeds]]
name = "bad-one"
source = "rss"
interval = 10
enabled = "yes"

[feeds.params]
url = 42
"""


def echoctl(*args: str) -> subprocess.CompletedProcess[str]:
    """The real console script, in a subprocess (250 columns)."""
    return run_echoctl(*args, env={"COLUMNS": "250"})


def _rss(*titles: str) -> bytes:
    items = "".join(f"<item><guid>urn:{t}</guid><title>{t}</title></item>" for t in titles)
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>L</title>{items}</channel></rss>'
    ).encode()


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    path = tmp_path / "vault"
    assert echoctl("init", str(path)).returncode == 0
    for feed in feed_service.list_feeds(path):  # the starter feeds would reach the network
        feed_service.remove_feed(path, feed.name or "")
    return path


@pytest.mark.slow
def test_one_bad_feed_table_fails_alone(vault: Path) -> None:
    v = str(vault)
    with FaultServer() as server:
        server.route("/f.xml", Reply(200, [("Content-Type", "application/rss+xml")], _rss("a")))
        assert echoctl("--vault", v, "feeds", "add", "local", "--source", "rss", "--allow-private",
                       "--param", f"url={server.url('/f.xml')}").returncode == 0  # fmt: skip
        with (vault / "echo.toml").open("a") as fh:
            fh.write(BAD_TABLE)

        verify = echoctl("--vault", v, "verify")
        assert verify.returncode == 0, verify.stderr
        items = echoctl("--vault", v, "items")
        assert items.returncode == 0, items.stderr

        listed = echoctl("--vault", v, "feeds", "list")
        assert listed.returncode == 0, listed.stderr
        assert "local" in listed.stdout
        assert "bad-one" in listed.stdout
        assert "1 feed table(s) are invalid" in listed.stderr
        rows = json.loads(echoctl("--vault", v, "feeds", "list", "--json").stdout)
        assert [(r["name"], r["position"]) for r in rows] == [("local", 0), ("bad-one", 1)]
        assert rows[0]["error"] is None
        error = rows[1]["error"]
        assert error.startswith("feed 'bad-one' (feeds.1, the 2nd [[feeds]] table): ")
        assert "interval: must be an integer >= 60 (seconds between harvests), got 10" in error
        assert "enabled: must be true or false, got 'yes'" in error
        assert "params.url must be a string" in error
        assert "missing" not in error

        harvest = echoctl("--vault", v, "harvest", "--all", "--json")
        report = json.loads(harvest.stdout)
        by_name = {f["name"]: f for f in report["feeds"]}
        assert by_name["local"]["failed"] is False
        assert by_name["local"]["new"] == 1
        assert by_name["bad-one"]["failed"] is True
        assert by_name["bad-one"]["error"] == error
        assert by_name["bad-one"]["requests"] == {}

        # disabling the bad feed is an edit like any other; then it is not harvested
        assert echoctl("--vault", v, "feeds", "disable", "bad-one").returncode == 0
        again = json.loads(echoctl("--vault", v, "harvest", "--all", "--json").stdout)
        assert [f["name"] for f in again["feeds"]] == ["local"]


def test_a_bad_part_outside_the_feeds_still_fails_naming_the_key(vault: Path) -> None:
    text = (vault / "echo.toml").read_text()
    (vault / "echo.toml").write_text(text.replace("batch_size = 1000", 'batch_size = "many"'))
    listed = echoctl("--vault", str(vault), "feeds", "list")
    assert listed.returncode == 1
    assert "log.batch_size" in listed.stderr


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (["url=https://a.org/f.xml", "tokn=1"], "unknown parameter(s) tokn for source 'rss'"),
        (["list=top", "limt=5"], "unknown parameter(s) limt for source 'hn' (known: base_url, "),
        (["url=42"], "params.url must be a string"),
        (["list=top", "limit=0"], "params.limit must be an integer >= 1"),
    ],
)  # fmt: skip
def test_feeds_add_refuses_unknown_and_wrong_params(
    vault: Path, params: list[str], message: str
) -> None:
    source = "rss" if params[0].startswith("url") else "hn"
    before = (vault / "echo.toml").read_bytes()
    args = [a for p in params for a in ("--param", p)]
    proc = echoctl("--vault", str(vault), "feeds", "add", "x", "--source", source, *args)
    assert proc.returncode == 2
    assert message in " ".join(proc.stderr.split())
    assert (vault / "echo.toml").read_bytes() == before  # nothing written


def test_unknown_params_in_echo_toml_fail_that_feed_alone(vault: Path) -> None:
    with (vault / "echo.toml").open("a") as fh:
        fh.write('\n[[feeds]]\nname = "typo"\nsource = "hn"\nparams = { list = "top", limt = 5 }\n')
        fh.write('\n[[feeds]]\nname = "fine"\nsource = "hn"\nparams = { list = "top" }\n')
    rows = json.loads(echoctl("--vault", str(vault), "feeds", "list", "--json").stdout)
    assert [r["name"] for r in rows] == ["typo", "fine"]
    assert "unknown parameter(s) limt for source 'hn' (known: " in rows[0]["error"]
    assert rows[1]["error"] is None


def test_the_service_checks_params_without_a_vault() -> None:
    feed_service.check_feed_params("hn", {"list": "top"})
    with pytest.raises(SourceError, match=r"unknown parameter\(s\) lst .*known: base_url"):
        feed_service.check_feed_params("hn", {"lst": "top"})
    with pytest.raises(SourceError, match=r"params\.limit must be an integer"):
        feed_service.check_feed_params("hn", {"list": "top", "limit": "many"})
    # an API-only FRED parameter is valid configuration: the key is read at harvest time
    feed_service.check_feed_params("fred", {"series_id": "GDP", "realtime_start": "2020-01-01"})


SECRET_URL = "https://bob:hunter2@example.org/feed.xml?token=tok3n&x=1"  # noqa: S105


def test_credentials_are_masked_in_feeds_list_and_the_service(vault: Path) -> None:
    v = str(vault)
    assert echoctl("--vault", v, "feeds", "add", "sec", "--source", "rss",
                   "--param", f"url={SECRET_URL}").returncode == 0  # fmt: skip
    fred = ("--source", "fred", "--param", "series_id=GDP", "--param", "api_key=abcdef0123")
    assert echoctl("--vault", v, "feeds", "add", "fr", *fred).returncode == 0
    with (vault / "echo.toml").open("a") as fh:  # an invalid feed whose error quotes its URL
        fh.write('\n[[feeds]]\nname = "bad"\nsource = "rss"\nparams.url = "ftp://eve:pw9@x.org/"\n')
    stored = (vault / "echo.toml").read_text()
    assert "hunter2" in stored  # the file keeps the real values
    assert "abcdef0123" in stored

    for args in (("feeds", "list"), ("feeds", "list", "--json")):
        proc = echoctl("--vault", v, *args)
        assert proc.returncode == 0, proc.stderr
        shown = proc.stdout + proc.stderr
        for secret in ("hunter2", "bob:", "tok3n", "abcdef0123", "pw9", "eve:"):
            assert secret not in shown, (args, secret)
    rows = {
        r["name"]: r for r in json.loads(echoctl("--vault", v, "feeds", "list", "--json").stdout)
    }
    assert rows["sec"]["params"]["url"] == "https://example.org/feed.xml?token=REDACTED&x=1"
    assert rows["fr"]["params"]["api_key"] == "REDACTED"

    views = {f.name: f for f in feed_service.list_feeds(vault)}
    assert views["sec"].params["url"] == "https://example.org/feed.xml?token=REDACTED&x=1"
    assert views["fr"].params["api_key"] == "REDACTED"
    assert views["bad"].error is not None
    assert "pw9" not in views["bad"].error
    removed = feed_service.remove_feed(vault, "fr")
    assert removed is not None
    assert removed.params["api_key"] == "REDACTED"
    added = feed_service.add_feed(
        vault, "fr2", "fred", params={"series_id": "GDP", "api_key": "k9k9k9"}
    )
    assert added.params["api_key"] == "REDACTED"
    assert "k9k9k9" in (vault / "echo.toml").read_text()
