"""echo.toml: the model, its [[feeds]], errors that name the key path, render round trips."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from echo_archive import __version__
from echo_archive.config import (
    DEFAULT_FEEDS,
    DEFAULT_INTERVALS,
    MIN_INTERVAL,
    REDDIT_USERNAME_PLACEHOLDER,
    SOURCE_KINDS,
    EchoConfig,
    FeedConfig,
    VaultSection,
    load_config,
    new_config,
    render,
)
from echo_archive.errors import ConfigError, SourceError
from echo_archive.sources.base import Feed
from echo_archive.sources.registry import SOURCES, get_source

ORIGIN = "echo.archive/test0000deadbeef"
CREATED = "2026-11-22T01:41:19.123456Z"

HEAD = f"""
[vault]
origin = "{ORIGIN}"
created = "{CREATED}"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "echo.toml"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    return message


# ---------------------------------------------------------------------------- registry


def test_registry_matches_the_kinds_the_config_accepts() -> None:
    assert set(SOURCES) == set(SOURCE_KINDS) == set(DEFAULT_INTERVALS)
    for kind, source in SOURCES.items():
        assert source.kind == kind
        assert get_source(kind) is source


def test_get_source_names_the_known_kinds() -> None:
    with pytest.raises(SourceError, match=r"unknown source 'rs' \(known: fred, github, hn"):
        get_source("rs")


def test_the_vault_does_not_load_the_sources_layer() -> None:
    code = (
        "import sys, echo_archive.vault.vault, echo_archive.config;"
        "bad = sorted(m for m in sys.modules if m.startswith('echo_archive.sources'));"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ---------------------------------------------------------------------------- FeedConfig


@pytest.mark.parametrize(("source", "seconds"), sorted(DEFAULT_INTERVALS.items()))
def test_interval_defaults_per_source(source: str, seconds: int) -> None:
    assert FeedConfig(name="f", source=source).interval == seconds
    assert FeedConfig.model_validate({"name": "f", "source": source}).interval == seconds


def test_github_default_respects_the_poll_interval() -> None:
    assert DEFAULT_INTERVALS["github"] >= 60  # X-Poll-Interval
    assert MIN_INTERVAL == 60


def test_explicit_values_are_kept_and_to_feed() -> None:
    fc = FeedConfig(name="hn-new", source="hn", interval=120, enabled=False, params={"list": "new"})
    feed = fc.to_feed()
    assert feed == Feed(name="hn-new", source="hn", params={"list": "new"}, interval=120.0)
    assert isinstance(feed.interval, float)
    assert feed.params is not fc.params  # a copy


@pytest.mark.parametrize("name", ["a", "hn-top", "r.python_new-2", "0", "a" * 64])
def test_good_names(name: str) -> None:
    assert FeedConfig(name=name, source="rss").name == name


@pytest.mark.parametrize("name", ["", "HN", "-a", ".a", "_a", "a b", "a/b", "é", "a" * 65])
def test_bad_names(name: str) -> None:
    with pytest.raises(ValueError, match="is not a feed name"):
        FeedConfig(name=name, source="rss")


# ---------------------------------------------------------------------------- load_config


def test_a_config_without_feeds_still_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, HEAD))
    assert config.feeds == []


def test_feeds_load_in_file_order(tmp_path: Path) -> None:
    text = (
        HEAD
        + """
[[feeds]]
name = "b"
source = "hn"
params = { list = "top" }

[[feeds]]
name = "a"
source = "fred"
enabled = false
interval = 172800

[feeds.params]
series_id = ["GDP", "UNRATE"]
observation_start = 2020-01-01
"""
    )
    config = load_config(write(tmp_path, text))
    assert [f.name for f in config.feeds] == ["b", "a"]
    assert config.feeds[0].interval == 900
    assert config.feeds[0].enabled is True
    assert config.feeds[1].params == {
        "series_id": ["GDP", "UNRATE"],
        "observation_start": dt.date(2020, 1, 1),
    }
    assert config.feed("a").interval == 172800
    with pytest.raises(ConfigError, match=r"no feed named 'c' \(feeds: b, a\)"):
        config.feed("c")


@pytest.mark.parametrize(
    ("feeds", "expected"),
    [
        ('{ name = "x", source = "rs" }', "feeds.2.source: unknown source 'rs' (known: fred, "),
        ('{ name = "X", source = "rss" }', "feeds.2.name: 'X' is not a feed name"),
        ('{ name = "x", source = "rss", interval = 10 }', "feeds.2.interval: Input should be"),
        ('{ name = "x", source = "rss", interval = 1.5 }', "feeds.2.interval: "),
        ('{ name = "x", source = "rss", interval = "1h" }', "feeds.2.interval: "),
        ('{ name = "x", source = "rss", enabled = "yes" }', "feeds.2.enabled: "),
        ('{ name = "x", source = "rss", params = "url" }', "feeds.2.params: "),
        ('{ name = "x", source = "rss", param = {} }', "feeds.2.param: Extra inputs"),
        ('{ source = "rss" }', "feeds.2.name: Field required"),
        ('{ name = "x" }', "feeds.2.source: Field required"),
    ],
)
def test_bad_feed_entries_name_the_key_path(tmp_path: Path, feeds: str, expected: str) -> None:
    good = '{ name = "a", source = "hn" }, { name = "b", source = "hn" }'
    message = config_error(tmp_path, f"feeds = [{good}, {feeds}]\n{HEAD}")
    assert expected in message
    assert "Value error" not in message


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    text = HEAD + "\n".join(f'[[feeds]]\nname = "{n}"\nsource = "hn"\n' for n in ("a", "b", "a"))
    message = config_error(tmp_path, text)
    assert message.endswith("feeds: duplicate feed name 'a' (feeds.0 and feeds.2)")


def test_params_must_be_toml_values() -> None:
    with pytest.raises(ValueError, match=r"params\.user_agent\.app_id: None is not a TOML value"):
        FeedConfig(name="r", source="reddit", params={"user_agent": {"app_id": None}})
    with pytest.raises(ValueError, match=r"params\.x: nan"):
        FeedConfig(name="r", source="fred", params={"x": float("nan")})


# ---------------------------------------------------------------------------- render


def _roundtrip(config: EchoConfig, tmp_path: Path) -> EchoConfig:
    return load_config(write(tmp_path, render(config)))


def test_render_without_feeds_keeps_the_settings_and_comments(tmp_path: Path) -> None:
    config = EchoConfig(vault=VaultSection(origin=ORIGIN, created=CREATED))
    text = render(config)
    assert "\n[[feeds]]\n" not in text
    assert 'origin = "echo.archive/test0000deadbeef"   # the log origin; never change it' in text
    assert "large_threshold = 16777216   # bytes; larger blobs are stored as files" in text
    assert "batch_size = 1000   # records per commit (one checkpoint each)" in text
    assert "# Feeds: what `echoctl harvest` collects" in text
    assert _roundtrip(config, tmp_path) == config


def test_render_round_trips_the_defaults(tmp_path: Path) -> None:
    config = new_config(ORIGIN, CREATED)
    assert config.feeds == DEFAULT_FEEDS
    assert config.feeds[0] is not DEFAULT_FEEDS[0]  # copies: editing one never edits the defaults
    assert _roundtrip(config, tmp_path) == config
    text = render(config)
    assert text.count("\n[[feeds]]\n") == len(DEFAULT_FEEDS)
    assert text.count("[feeds.params.user_agent]") == 2
    placeholder = f'username = "{REDDIT_USERNAME_PLACEHOLDER}"   # CHANGE to your Reddit username'
    assert text.count(placeholder) == 2


def test_render_escapes_strings_and_keeps_types(tmp_path: Path) -> None:
    weird = 'a "quoted" \\ back\\slash\nnew line\ttab ünï ☃ \x7f'
    params: dict[str, Any] = {
        "url": 'https://example.org/feed?a=1&b="2"',
        "text": weird,
        "n": 3,
        "x": 1.5,
        "on": False,
        "day": dt.date(2024, 1, 2),
        "when": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "list": ["a", 1, ["b"]],
        "nested": {"deeper": {"k": 'v"', "weird key": 1}},
        "tables": [{"a": 1}, {"a": 2}],
    }
    config = EchoConfig(
        vault=VaultSection(origin=ORIGIN, created=CREATED),
        feeds=[FeedConfig(name="odd", source="rss", interval=61, enabled=False, params=params)],
    )
    back = _roundtrip(config, tmp_path)
    assert back == config
    assert back.feeds[0].params["text"] == weird
    assert tomllib.loads(render(config))["feeds"][0]["params"] == params


def test_default_feeds_cover_every_source_with_unique_names() -> None:
    names = [f.name for f in DEFAULT_FEEDS]
    assert len(set(names)) == len(names)
    kinds = [f.source for f in DEFAULT_FEEDS]
    assert {k: kinds.count(k) for k in SOURCE_KINDS} == {
        "rss": 3,
        "hn": 1,
        "reddit": 2,
        "github": 2,
        "fred": 1,
    }
    assert all(f.enabled for f in DEFAULT_FEEDS)
    assert all(f.interval == DEFAULT_INTERVALS[f.source] for f in DEFAULT_FEEDS)
    for f in DEFAULT_FEEDS:
        if f.source == "reddit":
            assert f.params["user_agent"] == {
                "app_id": "echo-archive",
                "version": __version__,
                "username": REDDIT_USERNAME_PLACEHOLDER,
            }
            assert f.params["listing"] == "new"
            assert "oauth" not in f.params  # anonymous


@pytest.mark.parametrize("feed", DEFAULT_FEEDS, ids=lambda f: f.name)
def test_every_default_feed_plans_with_its_source(feed: FeedConfig) -> None:
    requests = get_source(feed.source).plan(feed.to_feed())
    assert requests
    for request in requests:
        assert request.url.startswith("https://")
        assert "api_key" not in request.url


def test_default_feed_requests() -> None:
    urls = {f.name: [r.url for r in get_source(f.source).plan(f.to_feed())] for f in DEFAULT_FEEDS}
    assert urls["hn-top"] == ["https://hacker-news.firebaseio.com/v0/topstories.json"]
    assert urls["gh-python-cpython"][0].startswith(
        "https://api.github.com/repos/python/cpython/events"
    )
    assert urls["fred-dgs10"][0].startswith(
        "https://fred.stlouisfed.org/graph/fredgraph.csv?id=DGS10"
    )
    assert urls["r-python-new"][0].startswith("https://www.reddit.com/r/python/new.json?raw_json=1")
    reddit = get_source("reddit").plan(DEFAULT_FEEDS[4].to_feed())[0]
    assert dict(reddit.headers)["User-Agent"] == (
        f"python:echo-archive:{__version__} (by /u/{REDDIT_USERNAME_PLACEHOLDER})"
    )
