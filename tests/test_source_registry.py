"""One description per source: what each source declares, and what derives from the registry."""

from __future__ import annotations

import ast
import asyncio
import base64
from pathlib import Path

import httpx
import pytest
import structlog

from echo_archive import sources as sources_package
from echo_archive.config import DEFAULT_FEEDS, DEFAULT_INTERVALS, MIN_INTERVAL, SOURCE_KINDS
from echo_archive.errors import ParseError, SourceError
from echo_archive.harvest.cycle import HarvestRun
from echo_archive.harvest.engine import FetchConfig, Fetcher
from echo_archive.harvest.importer import feed_for, route
from echo_archive.harvest.limits import (
    DEFAULT_HOSTS,
    DEFAULT_LIMITS,
    HostLimits,
    LimitConfig,
    limits_from_config,
)
from echo_archive.harvest.recordings import read_recording
from echo_archive.harvest.transport import ReplayTransport
from echo_archive.model import Exchange, Request
from echo_archive.sources.base import Feed, check_params, host_matches
from echo_archive.sources.fred import FredSource
from echo_archive.sources.github import GithubSource
from echo_archive.sources.reddit import TOKEN_URL, RedditSource
from echo_archive.sources.registry import (
    DEFAULT_PROFILE,
    LIMIT_PROFILES,
    PROFILE_HOSTS,
    SOURCES,
    limit_profiles,
    source_for_url,
)
from echo_archive.vault.vault import Vault

from .conftest import shared_dir
from .httpfaults import FaultServer, LoggedRequest, Reply

UA = {"app_id": "echo-archive", "version": "0.1.0", "username": "tester"}


# ---------------------------------------------------------------------------- declarations


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_every_source_describes_itself(kind: str) -> None:
    source = SOURCES[kind]
    assert source.kind == kind
    assert source.default_interval >= MIN_INTERVAL
    assert source.params, "a source declares the parameters it accepts"
    assert all(isinstance(v, str) and v for v in source.params.values())
    for profile in source.host_profiles:
        assert DEFAULT_LIMITS[profile.name] == profile.limits
        for host in profile.hosts:
            assert host == host.lower()
            assert DEFAULT_HOSTS[host] == profile.name
    for host in source.recorded_hosts:
        assert host == host.lower()


def test_config_and_limits_derive_from_the_registry() -> None:
    assert tuple(SOURCES) == SOURCE_KINDS
    assert dict(DEFAULT_INTERVALS) == {k: s.default_interval for k, s in SOURCES.items()}
    assert DEFAULT_LIMITS is LIMIT_PROFILES
    assert DEFAULT_HOSTS is PROFILE_HOSTS
    assert DEFAULT_PROFILE in DEFAULT_LIMITS
    assert HostLimits().config_for("blog.example.net") == DEFAULT_LIMITS[DEFAULT_PROFILE]


def test_a_profile_or_host_declared_twice_is_refused() -> None:
    with pytest.raises(SourceError, match="limit profile 'fred' is declared twice"):
        limit_profiles({"fred": FredSource(), "fred2": FredSource()})
    with pytest.raises(SourceError, match="no source declares the default limit profile"):
        limit_profiles({"fred": FredSource()})


def test_every_starter_feed_uses_declared_parameters_only() -> None:
    for feed in DEFAULT_FEEDS:
        check_params(SOURCES[feed.source], feed.to_feed())


def test_unknown_parameters_are_named() -> None:
    feed = Feed("hn-x", "hn", {"list": "top", "lmit": 3, "colour": "red"})
    with pytest.raises(SourceError) as info:
        check_params(SOURCES["hn"], feed)
    message = str(info.value)
    assert "feed 'hn-x': unknown parameter(s) colour, lmit for source 'hn'" in message
    assert "known: base_url, comment_depth, limit, list" in message


# ---------------------------------------------------------------------------- limits


def test_fred_hosts_share_one_profile_and_overrides_still_apply() -> None:
    limits = HostLimits()
    for host in ("api.stlouisfed.org", "fred.stlouisfed.org"):
        config = limits.config_for(host)
        assert config.concurrency == 1
        assert config.rate <= 1.0  # FRED: at most 1 request/s
    override = limits_from_config({"fred.stlouisfed.org": (0.5, 1.0, 1)})
    assert override.config_for("fred.stlouisfed.org").rate == 0.5
    assert override.config_for("api.stlouisfed.org") == DEFAULT_LIMITS["fred"]


class _CountingReplay(ReplayTransport):
    """A replay transport that notes the virtual time each request leaves and how many overlap."""

    def __init__(self, exchanges: list[Exchange], clock: list[float]) -> None:
        super().__init__(exchanges)
        self.clock = clock
        self.sent: list[float] = []
        self.in_flight = 0
        self.most = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        self.sent.append(self.clock[0])
        try:
            for _ in range(3):  # let any other request that may start, start
                await asyncio.sleep(0)
            return await super().handle_async_request(request)
        finally:
            self.in_flight -= 1


@pytest.mark.slow
def test_keyless_fred_csv_feeds_run_one_in_flight_at_most_one_per_second(
    vault_path: Path,
) -> None:
    """The starter FRED feed (keyless fredgraph.csv on fred.stlouisfed.org) and two more.

    Before the fred profile named fred.stlouisfed.org, the CSV host got the
    generic feed profile: 2 requests in flight.
    """
    csv_dir = shared_dir("corpora", "fred") / "csv"
    (starter,) = [f.to_feed() for f in DEFAULT_FEEDS if f.source == "fred"]
    files = [
        (starter, "DGS10.csv"),
        (Feed("fred-dgs1mo", "fred", {"series_id": "DGS1MO"}), "DGS1MO.csv"),
        (
            Feed("fred-rates", "fred", {"series_id": ["FEDFUNDS", "MORTGAGE30US"]}),
            "fredgraph_FEDFUNDS_MORTGAGE30US.csv",
        ),
    ]
    feeds = [feed for feed, _ in files]
    recorded = []
    for feed, name in files:
        (request,) = FredSource().plan(feed)
        assert request.url.startswith("https://fred.stlouisfed.org/graph/fredgraph.csv?")
        body = (csv_dir / name).read_bytes()
        recorded.append(Exchange("GET", request.url, 200, (("Content-Type", "text/csv"),), body))
    clock = [1000.0]

    async def sleep(seconds: float) -> None:
        clock[0] += max(0.0, seconds)
        await asyncio.sleep(0)

    transport = _CountingReplay(recorded, clock)

    async def go() -> list[int]:
        with Vault.open(vault_path) as v:
            fetcher = Fetcher(
                FetchConfig(max_attempts=1, allow_private=True),
                transport=transport,
                clock=lambda: clock[0],
                sleep=sleep,
            )
            async with fetcher:
                report = await HarvestRun(v, fetcher, SOURCES, env={}).run(feeds)
        return [f.new for f in report.feeds]

    new = asyncio.run(go())
    assert all(n > 0 for n in new), new
    assert transport.most == 1
    assert len(transport.sent) == 3
    gaps = [b - a for a, b in zip(transport.sent, transport.sent[1:], strict=False)]
    assert all(gap >= 1.0 for gap in gaps), gaps


# ---------------------------------------------------------------------------- import routing


@pytest.mark.parametrize(
    ("url", "kind", "feed"),
    [
        ("https://hacker-news.firebaseio.com/v0/item/8863.json", "hn", "import-hn"),
        ("https://hacker-news.firebaseio.com/v0/updates.json", "hn", None),
        ("https://www.reddit.com/r/python/hot.json", "reddit", "import-reddit"),
        ("https://OAUTH.reddit.com/comments/abc", "reddit", "import-reddit"),
        ("https://api.github.com/repos/Me/Mine/issues", "github", "import-github/me/mine"),
        ("https://api.github.com/rate_limit", "github", None),
        ("https://fred.stlouisfed.org/graph/fredgraph.csv?id=GDP", "fred", "import-fred"),
        ("https://api.stlouisfed.org/fred/series/tags?series_id=GDP", "fred", None),
        ("https://notreddit.com/r/python.json", None, None),
        ("https://blog.example.net/feed.xml", None, None),
    ],
)
def test_recorded_urls_are_routed_by_the_sources(
    url: str, kind: str | None, feed: str | None
) -> None:
    source = source_for_url(url)
    assert (source.kind if source else None) == kind == route(url)
    found = feed_for(url)
    assert (found.name if found else None) == feed
    if found is not None:
        assert found.source == kind
        check_params(SOURCES[found.source], found)


def test_host_patterns() -> None:
    assert host_matches("old.reddit.com", ("reddit.com", ".reddit.com"))
    assert host_matches("Reddit.COM.", ("reddit.com",))
    assert not host_matches("evilreddit.com", ("reddit.com", ".reddit.com"))


# ---------------------------------------------------------------------------- credentials


def test_fred_reads_its_key_from_the_named_variable_only() -> None:
    source = FredSource()
    feed = Feed("f", "fred", {"series_id": "GDP", "api_key_env": "MY_FRED"})
    assert source.credential_env(feed) == ("MY_FRED",)
    assert source.with_credentials(feed, {}) is feed
    (keyless,) = source.plan(source.with_credentials(feed, {}))
    assert keyless.url.startswith("https://fred.stlouisfed.org/")
    keyed = source.with_credentials(feed, {"MY_FRED": "k123"})
    (request,) = source.plan(keyed)
    assert request.url.startswith("https://api.stlouisfed.org/fred/series/observations?")
    assert "api_key=k123" in request.url
    given = Feed("g", "fred", {"series_id": "GDP", "api_key": "mine"})
    assert source.credential_env(given) == ()


def test_github_token_goes_to_the_api_host_only() -> None:
    source = GithubSource()
    feed = Feed("gh", "github", {"repo": "python/cpython"})
    assert source.credential_env(feed) == ("GITHUB_TOKEN",)
    (request,) = source.plan(feed)
    sent = source.authorize(feed, request, {"GITHUB_TOKEN": "ghp_x"}, None)
    assert ("Authorization", "Bearer ghp_x") in sent.headers
    for url in ("https://evil.example/api.github.com/x", "http://127.0.0.1:8080/repos/a/b"):
        other = Request(url=url, headers=request.headers)
        assert source.authorize(feed, other, {"GITHUB_TOKEN": "ghp_x"}, None) == other
    assert source.authorize(feed, request, {}, None) == request


def test_reddit_oauth_token_is_a_planned_and_parsed_request() -> None:
    source = RedditSource()
    anonymous = Feed("r", "reddit", {"subreddit": "python", "user_agent": UA})
    assert source.credential_env(anonymous) == ()
    assert source.token_request(anonymous, {}) is None
    feed = Feed("r", "reddit", {"subreddit": "python", "oauth": True, "user_agent": UA})
    assert source.credential_env(feed) == ("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET")
    with pytest.raises(SourceError, match="REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET") as info:
        source.token_request(feed, {"REDDIT_CLIENT_ID": "id"})
    assert "id" not in str(info.value).split("needs", 1)[0]
    request = source.token_request(feed, {"REDDIT_CLIENT_ID": "id", "REDDIT_CLIENT_SECRET": "s"})
    assert request is not None
    assert (request.method, request.url, request.body) == (
        "POST",
        TOKEN_URL,
        b"grant_type=client_credentials",
    )
    headers = dict(request.headers)
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"id:s").decode()
    assert headers["User-Agent"] == "python:echo-archive:0.1.0 (by /u/tester)"

    def answer(status: int, body: bytes) -> Exchange:
        return Exchange("POST", request.url, status, (), body)

    token = source.parse_token(feed, request, answer(200, b'{"access_token": "tok-9"}'))
    assert token == "tok-9"  # noqa: S105 - a test value
    for status, body in (
        (401, b'{"access_token": "leak"}'),
        (200, b'{"token_type": "bearer"}'),
        (200, b"leak-not-json"),
        (200, b'["leak"]'),
    ):
        with pytest.raises(ParseError) as failed:
            source.parse_token(feed, request, answer(status, body))
        assert "leak" not in str(failed.value)
    (listing,) = source.plan(feed)
    assert ("Authorization", "bearer tok-9") in source.authorize(feed, listing, {}, token).headers
    assert source.authorize(feed, listing, {}, None) == listing


def test_the_token_exchange_is_run_by_the_job_and_never_archived_nor_logged(
    vault_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reddit's token request is planned and parsed by the source; the job only sends it."""
    listing = next(
        ex
        for ex in read_recording(
            shared_dir("corpora", "reddit") / "praw" / "TestSubredditListings.test_hot.json"
        ).exchanges
        if "/hot" in ex.url
    )
    token, secret = "tok-planted-4711", "secret-planted-0815"
    basic = "Basic " + base64.b64encode(f"client-id:{secret}".encode()).decode()
    tokens_issued = []

    def token_reply(req: LoggedRequest) -> Reply:
        if req.method == "POST" and req.header("Authorization") == basic:
            tokens_issued.append(1)
            return Reply.json({"access_token": token, "token_type": "bearer"})
        return Reply(401)

    feeds = [
        Feed(
            name,
            "reddit",
            {
                "subreddit": "python",
                "listing": "hot",
                "oauth": True,
                "base_url": "",  # set below
                "user_agent": UA,
            },
        )
        for name in ("r-one", "r-two")
    ]
    with FaultServer() as server:
        server.route("/api/v1/access_token", token_reply)
        server.route(
            "/r/python/hot",
            lambda req: (
                Reply(200, [("Content-Type", "application/json")], listing.body)
                if req.header("Authorization") == f"bearer {token}"
                else Reply(403)
            ),
        )
        feeds = [Feed(f.name, f.source, {**f.params, "base_url": server.url("")}) for f in feeds]
        env = {"REDDIT_CLIENT_ID": "client-id", "REDDIT_CLIENT_SECRET": secret, "OTHER": "x"}

        async def go() -> list[tuple[str | None, int]]:
            with Vault.open(vault_path) as v:
                limits = HostLimits({server.authority: LimitConfig(1000.0, 100.0, 4)})
                async with Fetcher(
                    FetchConfig(max_attempts=1, allow_private=True), limits=limits
                ) as fetcher:
                    run = HarvestRun(
                        v,
                        fetcher,
                        SOURCES,
                        env=env,
                        token_urls={"reddit": server.url("/api/v1/access_token")},
                    )
                    report = await run.run(feeds)
            return [(f.error, f.new) for f in report.feeds]

        with structlog.testing.capture_logs() as logs:
            outcomes = asyncio.run(go())
    assert [error for error, _ in outcomes] == [None, None]
    assert outcomes[0][1] > 0
    assert tokens_issued == [1]  # one exchange per client for the run
    shown = repr(logs) + "".join(capsys.readouterr())
    vault_bytes = b"".join(p.read_bytes() for p in vault_path.rglob("*") if p.is_file())
    for planted in (token, secret):
        assert planted not in shown
        assert planted.encode() not in vault_bytes


def test_sources_import_no_http_database_or_upper_layer_module() -> None:
    """Sources do no I/O (issue 8 item 8): checked on their own import statements."""
    forbidden = ("httpx", "http.client", "urllib.request", "socket", "sqlite3", "requests")
    upper = ("echo_archive.vault", "echo_archive.harvest", "echo_archive.pipeline")
    upper += ("echo_archive.config", "echo_archive.feeds", "echo_archive.cli")
    root = Path(sources_package.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if any(name == f or name.startswith(f + ".") for f in forbidden + upper):
                    found.append(f"{path.relative_to(root)}: {name}")
    assert found == []
