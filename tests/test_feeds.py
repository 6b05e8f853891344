"""Feeds in echo.toml: the library (add, remove, list, enable, disable) and `echoctl feeds`."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from echo_archive.cli.feeds import feeds_app, parse_params
from echo_archive.config import (
    DEFAULT_FEEDS,
    FeedConfig,
    load_config,
    new_config,
    render,
)
from echo_archive.errors import ConfigError, SourceError
from echo_archive.feeds import (
    add_feed,
    check_feed,
    list_feeds,
    make_feed,
    remove_feed,
    set_enabled,
)
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import verify_vault

runner = CliRunner()

HN_NEW = FeedConfig(name="hn-new", source="hn", params={"list": "new", "limit": 10})


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    """A real vault (Vault.create) whose echo.toml holds the default feeds."""
    path = tmp_path / "vault"
    Vault.create(path, origin="echo.archive/test0000deadbeef").close()
    cfg = path / "echo.toml"
    config = load_config(cfg)
    if not config.feeds:  # until Vault.create writes new_config(...)
        cfg.write_text(render(new_config(config.vault.origin, config.vault.created)))
    return path


@pytest.fixture
def cfg(vault: Path) -> Path:
    return vault / "echo.toml"


HAND_WRITTEN = """\
# My vault. Do not touch the origin.
[vault]
origin = "echo.archive/test0000deadbeef"   # published on the website
created = "2026-11-22T01:41:19.123456Z"

# the feeds I care about
[[feeds]]   # the orange site
name = "hn-top"
source = "hn"
interval = 900 # every 15 minutes
params = { list = "top", limit = 30 }

[[feeds]]
name = "nasa"
source = "rss"
enabled = true   # keep this one
params.url = "https://www.nasa.gov/news-release/feed/"
[log]
batch_size = 500  # smaller commits
# trailing remark
"""


# HAND_WRITTEN after: add hn-new, disable nasa and hn-top, remove hn-new.
EDITED = (
    HAND_WRITTEN.replace(
        'params = { list = "top", limit = 30 }\n',
        'params = { list = "top", limit = 30 }\nenabled = false\n',
    )
    .replace("enabled = true   # keep", "enabled = false   # keep")
    .replace("\n[log]", "\n\n[log]")
)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


# ---------------------------------------------------------------------------- library


def test_list_feeds_of_a_new_vault(cfg: Path) -> None:
    assert list_feeds(cfg) == DEFAULT_FEEDS


def test_add_list_disable_enable_remove(cfg: Path) -> None:
    add_feed(cfg, HN_NEW)
    feeds = list_feeds(cfg)
    assert feeds[-1] == HN_NEW
    assert feeds[:-1] == DEFAULT_FEEDS

    assert set_enabled(cfg, "hn-new", False) is True
    assert load_config(cfg).feed("hn-new").enabled is False
    assert set_enabled(cfg, "hn-new", False) is False
    assert set_enabled(cfg, "hn-new", True) is True
    assert load_config(cfg).feed("hn-new").enabled is True

    assert remove_feed(cfg, "hn-new") == HN_NEW
    assert list_feeds(cfg) == DEFAULT_FEEDS
    for name in [f.name for f in DEFAULT_FEEDS]:
        remove_feed(cfg, name)
    assert list_feeds(cfg) == []
    assert "feeds = []" not in cfg.read_text()
    add_feed(cfg, HN_NEW)
    assert list_feeds(cfg) == [HN_NEW]


def test_the_vault_opens_and_verifies_after_edits(vault: Path, cfg: Path) -> None:
    add_feed(cfg, HN_NEW)
    set_enabled(cfg, "bbc-world", False)
    with Vault.open(vault) as v:
        assert [f.name for f in load_config(v.config_path).feeds][-1] == "hn-new"
    with Vault.open(vault, readonly=True) as v:
        assert verify_vault(v).ok


def test_add_refuses_a_duplicate_name(cfg: Path) -> None:
    before = cfg.read_bytes()
    with pytest.raises(ConfigError, match="a feed named 'hn-top' exists already"):
        add_feed(cfg, FeedConfig(name="hn-top", source="hn", params={"list": "new"}))
    assert cfg.read_bytes() == before


@pytest.mark.parametrize(
    ("feed", "param"),
    [
        (FeedConfig(name="x", source="hn", params={"list": "nope"}), "params.list"),
        (FeedConfig(name="x", source="hn", params={"list": "top", "limit": 0}), "params.limit"),
        (FeedConfig(name="x", source="rss", params={"url": "ftp://x/y"}), "params.url"),
        (FeedConfig(name="x", source="rss"), "params.url is missing"),
        (FeedConfig(name="x", source="github", params={"repo": "nope"}), "params.repo"),
        (FeedConfig(name="x", source="fred", params={}), "params.series_id is missing"),
        (
            FeedConfig(name="x", source="reddit", params={"subreddit": "python"}),
            "params.user_agent is missing",
        ),
        (
            FeedConfig(name="x", source="reddit", params={"subreddit": "python", "typo": 1}),
            "unknown parameter(s) typo",
        ),
    ],
)
def test_a_failed_add_leaves_the_file_byte_identical(
    vault: Path, cfg: Path, feed: FeedConfig, param: str
) -> None:
    before = snapshot(vault)
    with pytest.raises(SourceError) as info:
        add_feed(cfg, feed)
    assert param in str(info.value)
    assert "feed 'x'" in str(info.value)
    assert snapshot(vault) == before


def test_remove_and_enable_name_unknown_feeds(cfg: Path) -> None:
    before = cfg.read_bytes()
    with pytest.raises(ConfigError, match=r"no feed named 'nope' \(feeds: bbc-world, "):
        remove_feed(cfg, "nope")
    with pytest.raises(ConfigError, match="no feed named 'nope'"):
        set_enabled(cfg, "nope", False)
    assert cfg.read_bytes() == before


def test_an_unchanged_state_does_not_rewrite_the_file(cfg: Path) -> None:
    inode = cfg.stat().st_ino
    assert set_enabled(cfg, "hn-top", True) is False
    assert cfg.stat().st_ino == inode


def test_comments_and_layout_survive_edits(tmp_path: Path) -> None:
    cfg = tmp_path / "echo.toml"
    cfg.write_text(HAND_WRITTEN)
    add_feed(cfg, HN_NEW)
    set_enabled(cfg, "nasa", False)
    set_enabled(cfg, "hn-top", False)
    text = cfg.read_text()
    for line in HAND_WRITTEN.splitlines():
        if "enabled = true" in line:
            continue
        assert line in text, f"lost: {line!r}"
    assert "enabled = false   # keep this one" in text
    config = load_config(cfg)
    assert [f.name for f in config.feeds] == ["hn-top", "nasa", "hn-new"]
    assert [f.enabled for f in config.feeds] == [False, False, True]
    assert config.log.batch_size == 500
    assert "\n\n[log]\n" in text  # the new table does not run into the next one
    remove_feed(cfg, "hn-new")
    assert cfg.read_text() == EDITED


def test_add_to_a_file_without_feeds_adds_the_section(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    Vault.create(vault).close()
    cfg = vault / "echo.toml"
    cfg.write_text(cfg.read_text().split("\n# Feeds:")[0])  # as older vaults were written
    before = cfg.read_text()
    add_feed(cfg, HN_NEW)
    text = cfg.read_text()
    assert text.startswith(before)
    assert "# Feeds: what `echoctl harvest` collects" in text
    assert list_feeds(cfg) == [HN_NEW]
    add_feed(cfg, FeedConfig(name="fred-gdp", source="fred", params={"series_id": "GDP"}))
    assert text.count("# Feeds:") == cfg.read_text().count("# Feeds:") == 1
    assert '\n\n[[feeds]]\nname = "fred-gdp"' in cfg.read_text()


def test_add_to_inline_feeds(tmp_path: Path) -> None:
    cfg = tmp_path / "echo.toml"
    cfg.write_text(
        'feeds = [{ name = "hn-top", source = "hn", params = { list = "top" } }]\n'
        '[vault]\norigin = "o"\ncreated = "c"\n'
    )
    add_feed(cfg, HN_NEW)
    assert [f.name for f in list_feeds(cfg)] == ["hn-top", "hn-new"]
    assert cfg.read_text().startswith("feeds = [{")
    remove_feed(cfg, "hn-top")
    set_enabled(cfg, "hn-new", False)
    assert list_feeds(cfg) == [HN_NEW.model_copy(update={"enabled": False})]


def test_a_broken_feed_fails_alone_and_can_be_fixed_or_removed(tmp_path: Path) -> None:
    cfg = tmp_path / "echo.toml"
    cfg.write_text(HAND_WRITTEN.replace('source = "rss"', 'source = "rs"'))
    config = load_config(cfg)  # the other feeds load
    assert [f.name for f in config.feeds] == ["hn-top"]
    (bad,) = config.invalid_feeds
    assert bad.error.startswith("feed 'nasa' (feeds.1, the 2nd [[feeds]] table): source: unknown")
    add_feed(cfg, HN_NEW)  # other edits work
    assert set_enabled(cfg, "hn-top", False)
    assert set_enabled(cfg, "nasa", False)  # the broken one can be disabled
    assert load_config(cfg).invalid_feeds[0].enabled is False
    assert remove_feed(cfg, "nasa") is None  # it was not a valid feed
    assert [f.name for f in list_feeds(cfg)] == ["hn-top", "hn-new"]
    assert load_config(cfg).invalid_feeds == []


def test_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "echo.toml"
    for call in (
        lambda: add_feed(missing, HN_NEW),
        lambda: remove_feed(missing, "x"),
        lambda: set_enabled(missing, "x", True),
        lambda: list_feeds(missing),
    ):
        with pytest.raises(ConfigError, match="configuration file not found"):
            call()
    bad = tmp_path / "echo.toml"
    bad.write_text("[vault\n")
    with pytest.raises(ConfigError, match=f"{bad}: not valid TOML"):
        add_feed(bad, HN_NEW)
    assert bad.read_text() == "[vault\n"


def test_writes_are_atomic_keep_the_mode_and_follow_symlinks(tmp_path: Path, cfg: Path) -> None:
    cfg.chmod(0o640)
    add_feed(cfg, HN_NEW)
    assert cfg.stat().st_mode & 0o777 == 0o640
    assert not [p for p in cfg.parent.iterdir() if p.name.endswith(".tmp")]
    link = tmp_path / "link.toml"
    link.symlink_to(cfg)
    remove_feed(link, "hn-new")
    assert link.is_symlink()
    assert "hn-new" not in cfg.read_text()


def test_concurrent_edits_are_not_lost(cfg: Path) -> None:
    names = [f"hn-{i}" for i in range(12)]
    errors: list[BaseException] = []

    def add(name: str) -> None:
        try:
            add_feed(cfg, FeedConfig(name=name, source="hn", params={"list": "new"}))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {f.name for f in list_feeds(cfg)} >= set(names)


def test_make_and_check_feed() -> None:
    assert make_feed("a", "github", params={"repo": "a/b"}).interval == 300
    with pytest.raises(ConfigError, match=r"feed 'a': interval: Input should be greater"):
        make_feed("a", "hn", interval=5)
    with pytest.raises(ConfigError, match=r"feed 'A B': name: "):
        make_feed("A B", "hn")
    check_feed(HN_NEW)
    with pytest.raises(SourceError, match=r"params\.list"):
        check_feed(FeedConfig(name="x", source="hn"))


# ---------------------------------------------------------------------------- --param


def test_parse_params_types_and_tables() -> None:
    assert parse_params(
        [
            "subreddit=python",
            "limit=30",
            "x=1.5",
            "comments=true",
            'user_agent.version="1.0"',
            "user_agent.app_id=echo",
            "url=https://example.org/feed?a=1&b=2",
            "day=2024-01-01",
            "empty=",
            "inf=inf",
            'q="a \\"b\\""',
            "arr=[1, 2]",
            "s=a=b",
        ]
    ) == {
        "subreddit": "python",
        "limit": 30,
        "x": 1.5,
        "comments": True,
        "user_agent": {"version": "1.0", "app_id": "echo"},
        "url": "https://example.org/feed?a=1&b=2",
        "day": "2024-01-01",
        "empty": "",
        "inf": "inf",
        "q": 'a "b"',
        "arr": "[1, 2]",
        "s": "a=b",
    }
    assert parse_params(["x=1\ny = 2"]) == {"x": "1\ny = 2"}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["novalue"], "expected KEY=VALUE"),
        (["=x"], "key part ''"),
        (["a..b=1"], "key part ''"),
        (["a b=1"], "key part 'a b'"),
        (["a=1", "a=2"], "a is given already"),
        (["a=1", "a.b=2"], "a is already a value, not a table"),
        (["a.b=1", "a=2"], "a is a table"),
    ],
)
def test_parse_params_errors(items: list[str], message: str) -> None:
    with pytest.raises(ValueError, match="--param") as info:
        parse_params(items)
    assert message in str(info.value)


# ---------------------------------------------------------------------------- CLI

root = typer.Typer()


@root.callback()
def _root(
    vault: Annotated[Path | None, typer.Option("--vault")] = None,
) -> None:
    """A stand-in for `echoctl`: its --vault, and the feeds sub-app mounted as in cli.py."""


root.add_typer(feeds_app, name="feeds")


def echoctl(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(root, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_cycle(vault: Path, cfg: Path) -> None:
    v = str(vault)
    code, out, _ = echoctl("--vault", v, "feeds", "list")
    assert code == 0
    for f in DEFAULT_FEEDS:
        assert f.name in out
    assert "list=top, limit=30" in out

    code, out, err = echoctl(
        "--vault", v, "feeds", "add", "r-rust-new", "--source", "reddit",
        "--param", "subreddit=rust", "--param", "user_agent.app_id=echo-archive",
        "--param", 'user_agent.version="1.0"', "--param", "user_agent.username=someone",
        "--interval", "1800",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out == "added feed r-rust-new (reddit, every 30m)\n"
    feed = load_config(cfg).feed("r-rust-new")
    assert feed.interval == 1800
    assert feed.params == {
        "subreddit": "rust",
        "user_agent": {"app_id": "echo-archive", "version": "1.0", "username": "someone"},
    }

    assert echoctl("--vault", v, "feeds", "disable", "r-rust-new")[:2] == (
        0,
        "disabled feed r-rust-new\n",
    )
    assert echoctl("--vault", v, "feeds", "disable", "r-rust-new")[1] == (
        "feed r-rust-new was already disabled\n"
    )
    code, out, _ = echoctl("--vault", v, "feeds", "list", "--json")
    listed = {f["name"]: f for f in json.loads(out)}
    assert listed["r-rust-new"]["enabled"] is False
    assert listed["hn-top"] == {
        "name": "hn-top",
        "source": "hn",
        "interval": 900,
        "enabled": True,
        "allow_private": False,
        "params": {"list": "top", "limit": 30},
        "position": 3,
        "error": None,
    }
    assert echoctl("--vault", v, "feeds", "enable", "r-rust-new")[:2] == (
        0,
        "enabled feed r-rust-new\n",
    )
    assert echoctl("--vault", v, "feeds", "remove", "r-rust-new")[:2] == (
        0,
        "removed feed r-rust-new\n",
    )
    assert list_feeds(cfg) == DEFAULT_FEEDS


def test_cli_json_outputs_and_redaction(vault: Path) -> None:
    v = str(vault)
    code, out, _ = echoctl(
        "feeds", "add", "fred-mine", "--vault", v, "--source", "fred",
        "--param", "series_id=GDP", "--param", "api_key=s3cretkey0", "--json",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out) == {
        "name": "fred-mine",
        "source": "fred",
        "interval": 86400,
        "enabled": True,
        "allow_private": False,
        "params": {"series_id": "GDP", "api_key": "REDACTED"},
        "position": len(DEFAULT_FEEDS),
        "error": None,
    }
    assert "s3cretkey0" in (vault / "echo.toml").read_text()  # stored as given
    code, out, _ = echoctl("feeds", "list", "--vault", v)
    assert "api_key=REDACTED" in out
    assert "s3cretkey0" not in out
    code, out, _ = echoctl("feeds", "disable", "fred-mine", "--vault", v, "--json")
    assert json.loads(out) == {"name": "fred-mine", "enabled": False, "changed": True}
    code, out, _ = echoctl("feeds", "remove", "fred-mine", "--vault", v, "--json")
    assert json.loads(out)["feed"]["params"] == {"series_id": "GDP", "api_key": "REDACTED"}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["add", "x", "--source", "hn", "--param", "list=nope"], 2, "params.list must be one of"),
        (["add", "x", "--source", "rs"], 2, "source: unknown source 'rs'"),
        (["add", "X", "--source", "hn"], 2, "'X' is not a feed name"),
        (["add", "x", "--source", "hn", "--interval", "5"], 2, "interval: Input should be"),
        (["add", "x", "--source", "hn", "--param", "list"], 2, "expected KEY=VALUE"),
        (["add", "hn-top", "--source", "hn", "--param", "list=top"], 1, "exists already"),
        (["remove", "nope"], 1, "no feed named 'nope'"),
        (["enable", "nope"], 1, "no feed named 'nope'"),
        (["disable", "nope"], 1, "no feed named 'nope'"),
    ],
)
def test_cli_errors(vault: Path, args: list[str], code: int, message: str) -> None:
    before = snapshot(vault)
    got, out, err = echoctl("--vault", str(vault), "feeds", *args)
    assert got == code
    assert out == ""
    assert err.startswith("error: ")
    assert message in err.replace("\n", " ")
    assert snapshot(vault) == before


def test_cli_error_messages_keep_brackets(vault: Path) -> None:
    # Rich markup must not eat "[...]" in messages naming a value.
    _, _, err = echoctl("--vault", str(vault), "feeds", "add", "x", "--source", "hn",
                        "--param", "list=[bold]")  # fmt: skip
    assert "(got '[bold]')" in err


def test_cli_vault_resolution(vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = echoctl("feeds", "list", "--vault", str(vault), "--json")
    assert code == 0
    assert len(json.loads(out)) == len(DEFAULT_FEEDS)
    # the sub-app alone, as well as mounted
    result = runner.invoke(feeds_app, ["list", "--json", "--vault", str(vault)])
    assert result.exit_code == 0
    monkeypatch.setenv("ECHO_VAULT", str(vault))
    assert echoctl("feeds", "list", "--json")[0] == 0
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ECHO_VAULT")
    assert vault == tmp_path / "vault"
    assert echoctl("feeds", "list", "--json")[0] == 0  # ./vault
    vault.rename(tmp_path / "elsewhere")
    code, _, err = echoctl("feeds", "list")
    assert code == 1
    assert "no vault at vault (no echo.toml); create one with `echoctl init vault`" in err


def test_cli_empty_list(vault: Path, cfg: Path) -> None:
    for f in DEFAULT_FEEDS:
        remove_feed(cfg, f.name)
    code, out, _ = echoctl("--vault", str(vault), "feeds", "list")
    assert (code, out) == (0, "no feeds configured; add one with `echoctl feeds add`\n")
    assert echoctl("--vault", str(vault), "feeds", "list", "--json")[1] == "[]\n"


def _commands() -> list[str]:
    return sorted(get_command(feeds_app).commands)  # type: ignore[attr-defined]


def test_the_commands() -> None:
    assert _commands() == ["add", "disable", "enable", "list", "remove"]


@pytest.mark.parametrize("name", _commands())
def test_every_feeds_command_has_help(name: str) -> None:
    result = runner.invoke(root, ["feeds", name, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output
    assert "--vault" in result.output
    assert len(result.output) > 200
