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
    INTERVENTION_RISKS,
    MIN_INTERVAL,
    REDDIT_USERNAME_PLACEHOLDER,
    SOURCE_KINDS,
    EchoConfig,
    FeedConfig,
    SupervisorSection,
    SupervisorWeights,
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
        ('{ name = "x", source = "rs" }', "x' (feeds.2, the 3rd [[feeds]] table): source: unknown"),
        (
            '{ name = "X", source = "rss" }',
            "X' (feeds.2, the 3rd [[feeds]] table): name: 'X' is not",
        ),
        (
            '{ name = "x", source = "rss", interval = 10 }',
            "interval: must be an integer >= 60 (seconds between harvests), got 10",
        ),
        ('{ name = "x", source = "rss", interval = 1.5 }', "interval: must be an integer >= 60"),
        ('{ name = "x", source = "rss", interval = "1h" }', "interval: must be an integer"),
        ('{ name = "x", source = "rss", enabled = "yes" }', "enabled: must be true or false"),
        ('{ name = "x", source = "rss", params = "url" }', "params: must be a table"),
        ('{ name = "x", source = "rss", param = {} }', "param: is not a feed key (known: name,"),
        ('{ source = "rss" }', "the 3rd [[feeds]] table (feeds.2): name: is missing"),
        ('{ name = "x" }', "source: is missing (required)"),
        ('{ name = "x", source = "rss", params = { url = 42 } }', "params.url must be a string"),
        (
            '{ name = "x", source = "rss", params = { url = "https://a.org/f", tokn = 1 } }',
            "unknown parameter(s) tokn for source 'rss' (known: url)",
        ),
    ],
)
def test_a_bad_feed_table_fails_alone_named_by_name_and_position(
    tmp_path: Path, feeds: str, expected: str
) -> None:
    good = (
        '{ name = "a", source = "hn", params.list = "top" }, '
        '{ name = "b", source = "hn", params.list = "new" }'
    )
    config = load_config(write(tmp_path, f"feeds = [{good}, {feeds}]\n{HEAD}"))
    assert [f.name for f in config.feeds] == ["a", "b"]  # the others load
    (bad,) = config.invalid_feeds
    assert bad.position == 2
    assert expected in bad.error
    assert "Value error" not in bad.error
    assert "Input should be" not in bad.error
    assert [type(f).__name__ for f in config.all_feeds()] == ["FeedConfig"] * 2 + ["InvalidFeed"]
    if bad.name is not None:  # asking for it by name gives its error
        with pytest.raises(ConfigError, match=r"feeds\.2, the 3rd"):
            config.feed(bad.name)


def test_every_problem_of_a_feed_table_is_named_at_once(tmp_path: Path) -> None:
    text = HEAD + (
        '[[feeds]]\nname = "bad"\nsource = "rss"\ninterval = 10\nenabled = "yes"\n'
        "[feeds.params]\nurl = 42\n"
    )
    (bad,) = load_config(write(tmp_path, text)).invalid_feeds
    assert bad.error == (
        "feed 'bad' (feeds.0, the 1st [[feeds]] table): "
        "interval: must be an integer >= 60 (seconds between harvests), got 10; "
        "enabled: must be true or false, got 'yes'; "
        "params.url must be a string (the feed document URL), got 42"
    )
    assert "missing" not in bad.error
    assert (bad.name, bad.source, bad.enabled, bad.interval, bad.params) == (
        "bad",
        "rss",
        True,
        10,
        {"url": 42},
    )
    feed = bad.to_feed()
    assert (feed.name, feed.source, feed.error, feed.interval) == ("bad", "rss", bad.error, 3600.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[log]\nbatch_size = 'x'\n", "log.batch_size: "),
        ("feeds = 3\n", ": feeds: "),
        ("feeds = [1, 2]\n", ": feeds.0: "),
        ('[limits."a.org"]\nrate = -1\n', "limits.a.org.rate: "),
        ("[vaultt]\nx = 1\n", "vaultt: Extra inputs"),
    ],
)
def test_a_bad_part_outside_the_feed_tables_fails_naming_the_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = config_error(tmp_path, f"{text}{HEAD}")
    assert expected in message


def test_a_second_feed_of_the_same_name_is_invalid(tmp_path: Path) -> None:
    text = HEAD + "\n".join(
        f'[[feeds]]\nname = "{n}"\nsource = "hn"\nparams.list = "top"\n' for n in ("a", "b", "a")
    )
    config = load_config(write(tmp_path, text))
    assert [f.name for f in config.feeds] == ["a", "b"]
    (dup,) = config.invalid_feeds
    assert dup.error == (
        "feed 'a' (feeds.2, the 3rd [[feeds]] table): "
        "name: 'a' is taken by feed 'a' (feeds.0, the 1st [[feeds]] table)"
    )


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
    # rss declares only url: the feed reads back whole, as an invalid feed naming the others
    (feed,) = back.all_feeds()
    assert (feed.name, feed.interval, feed.enabled, feed.params) == ("odd", 61, False, params)
    assert feed.params["text"] == weird
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


# ---------------------------------------------------------------------------- [supervisor]


def test_supervisor_defaults_and_a_full_table(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, HEAD)).supervisor == SupervisorSection()
    section = SupervisorSection()
    assert (section.enabled, section.cycle, section.interventions_per_hour) == (True, 60.0, 6)
    assert section.auto == [k for k, r in INTERVENTION_RISKS.items() if r == "low"]
    assert section.weights == SupervisorWeights(
        resource=0.25, error=0.35, performance=0.2, dependency=0.2
    )
    text = HEAD + (
        "[supervisor]\nenabled = false\ncycle = 30\ninterventions_per_hour = 2\n"
        'auto = ["pause_feed"]\nassess_after = 120\nrollback_margin = 0.2\nhorizon = 900\n'
        "[supervisor.weights]\nresource = 0.4\nerror = 0.3\nperformance = 0.2\n"
        "dependency = 0.1\n"
    )
    config = load_config(write(tmp_path, text))
    sup = config.supervisor
    assert (sup.enabled, sup.cycle, sup.interventions_per_hour, sup.auto) == (
        False,
        30.0,
        2,
        ["pause_feed"],
    )
    assert (sup.assess_after, sup.rollback_margin, sup.horizon) == (120.0, 0.2, 900.0)
    assert sup.weights.resource == 0.4
    assert _roundtrip(config, tmp_path) == config


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            "[supervisor.weights]\nresource = 0.5\n",
            "supervisor.weights: resource + error + performance + dependency "
            "must sum to 1, got 1.25",
        ),
        ('[supervisor]\nauto = ["free_disk"]\n', "free_disk is high risk"),
        ('[supervisor]\nauto = ["nuke"]\n', "unknown intervention kind 'nuke'"),
        ("[supervisor]\ncycle = 0\n", "supervisor.cycle"),
        ("[supervisor]\ninterventions_per_hour = 1.5\n", "supervisor.interventions_per_hour"),
        ("[supervisor]\nweights = 3\n", "supervisor.weights"),
        ("[supervisor]\nhorizn = 3\n", "supervisor.horizn: Extra inputs"),
    ],
)
def test_a_bad_supervisor_table_fails_naming_the_key(
    tmp_path: Path, table: str, expected: str
) -> None:
    assert expected in config_error(tmp_path, HEAD + table)


def test_weights_that_sum_to_one_within_rounding_are_accepted() -> None:
    weights = SupervisorWeights(resource=0.3, error=0.3, performance=0.3, dependency=0.1)
    total = weights.resource + weights.error + weights.performance + weights.dependency
    assert total != 1.0  # 0.9999999999999999...
    assert abs(total - 1.0) <= 1e-9  # ...is one
    with pytest.raises(ValueError, match=r"must sum to 1, got 0\.9"):
        SupervisorWeights(resource=0.3, error=0.3, performance=0.3, dependency=0.099)
