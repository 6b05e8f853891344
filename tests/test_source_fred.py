"""Tests of the ``fred`` source (echo_archive.sources.fred) against recorded FRED traffic.

Every exchange of every vcrpy cassette under ``../shared/corpora/fred`` (160
interactions with ``api.stlouisfed.org`` recorded by pyfredapi in 2022 and
2024) is routed by its URL: ``series/observations`` bodies must parse into one
item per observation, every other endpoint (series, release, category, tags,
geofred...) must be refused as "not an observations response", and the HTTP
400/500 error bodies must raise a ParseError carrying FRED's error message.
The three CSV downloads under ``csv/`` are parsed as ``fredgraph.csv``
responses. The expected values were read from the files themselves.

The recorder removed ``api_key`` from every recorded URL (asserted below), so
the key-redaction tests put a made-up key into the requests and URLs.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from echo_archive.errors import ParseError, SourceError
from echo_archive.harvest.recordings import read_recording
from echo_archive.model import Exchange, Item, ParseResult, Request
from echo_archive.pipeline.versioning import content_digest
from echo_archive.redaction import redact_url
from echo_archive.sources.base import Feed, Source
from echo_archive.sources.fred import FredSource, parse_csv, series_page_url

from .conftest import shared_dir

KEY = "abcdef0123456789abcdef0123456789"  # made up: 32 lowercase alphanumerics, like a real key
API = "https://api.stlouisfed.org/fred"
CSV_URL = "https://fred.stlouisfed.org/graph/fredgraph.csv"

GDP = "pyfredapi-2024/test_series__test_get_series[json].yaml"
VINTAGES = "pyfredapi-2024/test_series__test_get_series_all_releases[json].yaml"
INITIAL = "pyfredapi-2024/test_series__test_get_series_initial_release[json].yaml"

#: Observations responses: cassette → observation count of each exchange.
OBSERVATIONS: dict[str, list[int]] = {
    GDP: [315, 315, 315, 315],
    VINTAGES: [3199, 3199, 3201, 3201],
    INITIAL: [132, 132, 132, 132],
}

SOURCE = FredSource()


def feed(**params: Any) -> Feed:
    """A ``fred`` feed of GDP with extra parameters."""
    return Feed(name="fred-gdp", source="fred", params={"series_id": "GDP", **params})


@functools.cache
def _exchanges(path: Path) -> tuple[Exchange, ...]:
    return read_recording(path).exchanges


def exchanges(relative: str) -> tuple[Exchange, ...]:
    """The exchanges of one cassette of the shared corpus."""
    return _exchanges(shared_dir("corpora", "fred") / relative)


def cassettes() -> list[str]:
    """Every vcrpy cassette of the corpus, relative to corpora/fred."""
    root = shared_dir("corpora", "fred")
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.yaml"))


def replay(exchange: Exchange, f: Feed | None = None) -> ParseResult:
    """Parse a recorded exchange as the engine would after asking for its URL."""
    return SOURCE.parse(f or feed(), Request(url=exchange.url), exchange)


def csv_exchange(name: str, url: str = f"{CSV_URL}?id=X") -> Exchange:
    """One of the corpus CSV files served as a fredgraph.csv response."""
    body = (shared_dir("corpora", "fred", "csv") / name).read_bytes()
    return Exchange("GET", url, 200, (("Content-Type", "text/csv"),), body)


def parse_csv_file(name: str) -> tuple[Item, ...]:
    return SOURCE.parse(feed(), Request(url=f"{CSV_URL}?id=X"), csv_exchange(name)).items


def json_exchange(body: object, url: str, status: int = 200) -> Exchange:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Exchange("GET", url, status, (("Content-Type", "application/json"),), raw)


# --------------------------------------------------------------------------- plan


def test_fred_source_satisfies_the_source_protocol() -> None:
    source: Source = FredSource()
    assert source.kind == "fred"


def test_plan_with_api_key_requests_json_observations() -> None:
    (request,) = SOURCE.plan(feed(api_key=KEY))
    assert request.url == (f"{API}/series/observations?series_id=GDP&api_key={KEY}&file_type=json")
    assert request.purpose == {
        "kind": "observations",
        "format": "json",
        "series_id": "GDP",
        "offset": 0,
    }


def test_plan_passes_every_api_parameter() -> None:
    (request,) = SOURCE.plan(
        feed(
            api_key=KEY,
            observation_start="1990-01-01",
            observation_end=datetime.date(2000, 12, 31),  # a TOML date
            realtime_start="1776-07-04",
            realtime_end="9999-12-31",
            units="pch",
            output_type=4,
            limit=1000,
            base_url="http://127.0.0.1:8000/fred/",
        )
    )
    assert request.url == (
        "http://127.0.0.1:8000/fred/series/observations?series_id=GDP"
        f"&api_key={KEY}&file_type=json&observation_start=1990-01-01"
        "&observation_end=2000-12-31&realtime_start=1776-07-04&realtime_end=9999-12-31"
        "&units=pch&output_type=4&limit=1000"
    )


def test_plan_one_api_request_per_series() -> None:
    requests = SOURCE.plan(feed(series_id="FEDFUNDS, MORTGAGE30US", api_key=KEY))
    assert [r.purpose["series_id"] for r in requests] == ["FEDFUNDS", "MORTGAGE30US"]
    assert all(f"api_key={KEY}" in r.url for r in requests)


@pytest.mark.parametrize("api_key", [None, ""])
def test_plan_without_api_key_uses_the_keyless_csv_download(api_key: str | None) -> None:
    params: dict[str, Any] = {"series_id": ["FEDFUNDS", "MORTGAGE30US"]}
    if api_key is not None:
        params["api_key"] = api_key
    (request,) = SOURCE.plan(Feed("f", "fred", params))
    assert request.url == f"{CSV_URL}?id=FEDFUNDS,MORTGAGE30US"
    assert request.purpose == {
        "kind": "observations",
        "format": "csv",
        "series_id": "FEDFUNDS,MORTGAGE30US",
    }


def test_plan_csv_date_bounds_and_base_url() -> None:
    (request,) = SOURCE.plan(
        feed(
            observation_start="2020-01-01",
            observation_end="2020-12-31",
            csv_base_url="http://127.0.0.1:8001",
        )
    )
    assert request.url == (
        "http://127.0.0.1:8001/graph/fredgraph.csv?id=GDP&cosd=2020-01-01&coed=2020-12-31"
    )


@pytest.mark.parametrize(
    "param",
    [
        {"realtime_start": "1776-07-04"},
        {"realtime_end": "9999-12-31"},
        {"units": "pch"},
        {"output_type": 4},
        {"limit": 10},
    ],
)
def test_plan_api_only_parameters_need_a_key(param: dict[str, Any]) -> None:
    with pytest.raises(SourceError, match="FRED_API_KEY") as info:
        SOURCE.plan(feed(**param))
    assert next(iter(param)) in str(info.value)
    with pytest.raises(SourceError, match="MY_FRED_KEY"):
        SOURCE.plan(feed(api_key_env="MY_FRED_KEY", **param))


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"series_id": None}, "params.series_id"),
        ({"series_id": ""}, "params.series_id"),
        ({"series_id": "GDP&api_key=x"}, "params.series_id"),
        ({"series_id": ["GDP", 7]}, "params.series_id"),
        ({"observation_start": "2020-13-01"}, "params.observation_start"),
        ({"observation_start": "01/02/2020"}, "params.observation_start"),
        ({"api_key": KEY, "realtime_start": 1776}, "params.realtime_start"),
        ({"api_key": KEY, "limit": 0}, "params.limit"),
        ({"api_key": KEY, "limit": 100001}, "params.limit"),
        ({"api_key": KEY, "limit": True}, "params.limit"),
        ({"api_key": KEY, "units": "percent"}, "params.units"),
        ({"api_key": KEY, "output_type": 2}, "params.output_type"),
        ({"api_key": KEY, "base_url": "file:///etc"}, "params.base_url"),
        ({"api_key": 12345678}, "params.api_key"),
    ],
)
def test_plan_rejects_invalid_parameters(params: dict[str, Any], named: str) -> None:
    with pytest.raises(SourceError, match=re.escape(named)) as info:
        SOURCE.plan(feed(**params))
    assert "'fred-gdp'" in str(info.value)
    assert KEY not in str(info.value)
    assert "12345678" not in str(info.value)


# --------------------------------------------------------------------------- the corpus


def test_corpus_totals() -> None:
    """README: 160 interactions (200×149, 500×7, 400×4) and 14,588 JSON observations."""
    statuses: list[int] = []
    observations = 0
    for relative in cassettes():
        for exchange in exchanges(relative):
            statuses.append(exchange.status)
            if "/series/observations" in exchange.url:
                observations += len(replay(exchange).items)
    assert len(statuses) == 160
    assert (statuses.count(200), statuses.count(500), statuses.count(400)) == (149, 7, 4)
    assert observations == 14588


def test_recorded_urls_hold_no_api_key() -> None:
    """The recorder filtered ``api_key`` out, so no key (or placeholder) is in the corpus."""
    for relative in cassettes():
        for exchange in exchanges(relative):
            assert "api_key" not in exchange.url
            assert not any("key" in name.lower() for name, _ in exchange.request_headers)


def test_every_exchange_of_every_cassette_is_routed_by_url() -> None:
    for relative in cassettes():
        for index, exchange in enumerate(exchanges(relative)):
            where = f"{relative}[{index}]"
            if exchange.status != 200:
                body = json.loads(exchange.body)
                with pytest.raises(ParseError) as info:
                    replay(exchange)
                message = str(info.value)
                assert f"HTTP {exchange.status}" in message, where
                assert f"FRED error {body['error_code']}" in message, where
                assert body["error_message"] in message, where
                assert info.value.url == exchange.url
            elif "/series/observations" in exchange.url:
                result = replay(exchange)
                expected = OBSERVATIONS[relative][index]
                assert len(result.items) == expected == json.loads(exchange.body)["count"], where
                assert result.follow == ()
                assert result.cursor is None
                assert len({i.native_id for i in result.items}) == expected, where
            else:
                with pytest.raises(ParseError, match="not an observations response") as info:
                    replay(exchange)
                assert info.value.position == "$.observations"


def test_error_bodies_of_the_2022_cassettes() -> None:
    """HTTP 400 "Variable series_id has not been set." and seven HTTP 500s (double slash kept)."""
    categories = exchanges("pyfredapi-2022/test_get_series_categories.yaml")
    (bad,) = [e for e in categories if e.status == 400]
    with pytest.raises(ParseError) as info:
        replay(bad)
    assert str(info.value) == (
        f"{API}/series/categories?file_type=json: HTTP 400 response: "
        "FRED error 400: Bad Request.  Variable series_id has not been set."
    )
    geo = [e for e in exchanges("pyfredapi-2022/test_get_geoseries_info.yaml") if e.status == 500]
    assert len(geo) == 7
    for exchange in geo:
        assert exchange.url.startswith("https://api.stlouisfed.org/geofred//series/group?")
        with pytest.raises(ParseError, match="HTTP 500 response: FRED error 500: Internal Server"):
            replay(exchange)


# --------------------------------------------------------------------------- GDP, current values


def gdp_items(index: int = 0) -> tuple[Item, ...]:
    return replay(exchanges(GDP)[index]).items


def test_gdp_observations() -> None:
    items = gdp_items(0)
    assert len(items) == 315
    assert [i.native_id for i in items[:2]] == ["GDP:1946-01-01", "GDP:1946-04-01"]
    last = items[-1]
    assert last.native_id == "GDP:2024-07-01"
    assert last.source == "fred"
    assert last.feed == "fred-gdp"
    assert last.title == "GDP 2024-07-01"
    assert last.text == "29349.924"
    assert last.url == "https://fred.stlouisfed.org/series/GDP"
    assert last.published_at == ""
    assert last.extra == {
        "series_id": "GDP",
        "date": "2024-07-01",
        "value": "29349.924",
        "missing": False,
        "units": "lin",
        "output_type": 1,
    }
    assert last.counters == {}
    (q1_2000,) = [i for i in items if i.native_id == "GDP:2000-01-01"]
    assert q1_2000.text == "10002.179"


def test_gdp_missing_values_keep_the_dot() -> None:
    items = gdp_items(0)
    missing = [i for i in items if i.extra["missing"]]
    assert [i.native_id for i in missing] == [
        "GDP:1946-01-01",
        "GDP:1946-04-01",
        "GDP:1946-07-01",
        "GDP:1946-10-01",
    ]
    assert all(i.text == "." and i.extra["value"] == "." for i in missing)


def test_current_values_change_only_where_a_value_was_revised() -> None:
    """Only the revised observation differs between two current-value recordings.

    Between the Oct and Dec 2024 recordings FRED moved every observation's
    realtime_start (2024-10-30 → 2024-12-19) but revised one value; only that
    item differs, so only it becomes a new version downstream.
    """
    october, december = gdp_items(0), gdp_items(2)
    changed = [
        (a.native_id, a.text, b.text)
        for a, b in zip(october, december, strict=True)
        if content_digest(a) != content_digest(b)
    ]
    assert changed == [("GDP:2024-07-01", "29349.924", "29374.914")]


# --------------------------------------------------------------------------- GDP, vintage history


def vintage_items(index: int) -> dict[str, Item]:
    return {i.native_id: i for i in replay(exchanges(VINTAGES)[index]).items}


def test_vintage_history_gives_one_item_per_vintage() -> None:
    """realtime_start=1776-07-04: 3,199 vintages of 315 dates, 245 of them missing."""
    items = vintage_items(0)
    assert len(items) == 3199
    assert len({i.extra["date"] for i in items.values()}) == 315
    assert sum(i.extra["missing"] for i in items.values()) == 245
    q2 = {k: (v.text, v.extra["realtime_end"]) for k, v in items.items() if "2024-04-01" in k}
    assert q2 == {
        "GDP:2024-04-01@2024-07-25": ("28629.153", "2024-08-28"),
        "GDP:2024-04-01@2024-08-29": ("28652.337", "2024-09-25"),
        "GDP:2024-04-01@2024-09-26": ("29016.714", "9999-12-31"),
    }
    first = items["GDP:1946-01-01@1992-12-22"]
    assert first.text == "199.7"
    assert first.published_at == "1992-12-22T00:00:00.000000Z"
    assert first.extra == {
        "series_id": "GDP",
        "date": "1946-01-01",
        "value": "199.7",
        "missing": False,
        "units": "lin",
        "output_type": 1,
        "realtime_start": "1992-12-22",
        "realtime_end": "1996-01-18",
    }
    assert items["GDP:1946-01-01@1996-01-19"].extra["missing"] is True


def test_vintage_history_grows_by_new_vintages_and_one_supersession() -> None:
    october, december = vintage_items(0), vintage_items(2)
    assert len(december) == 3201
    assert sorted(set(december) - set(october)) == [
        "GDP:2024-07-01@2024-11-27",
        "GDP:2024-07-01@2024-12-19",
    ]
    assert set(october) <= set(december)
    changed = [k for k in october if october[k] != december[k]]
    assert changed == ["GDP:2024-07-01@2024-10-30"]  # its realtime_end closed
    assert october[changed[0]].extra["realtime_end"] == "9999-12-31"
    assert december[changed[0]].extra["realtime_end"] == "2024-11-26"


def test_initial_release_output_type_4() -> None:
    items = replay(exchanges(INITIAL)[0]).items
    assert len(items) == 132
    assert len({i.extra["date"] for i in items}) == 132
    assert items[0].native_id == "GDP:1991-10-01@1992-01-29"
    assert items[0].text == "5736.6"
    assert all(i.extra["output_type"] == 4 for i in items)


def test_vintage_mode_also_follows_the_feed_parameter() -> None:
    """A request URL without realtime_start still gives vintage ids when the feed asks."""
    exchange = exchanges(VINTAGES)[0]
    request = Request(url=f"{API}/series/observations?series_id=GDP&file_type=json")
    result = SOURCE.parse(feed(realtime_start="1776-07-04"), request, exchange)
    assert result.items[0].native_id == "GDP:1946-01-01@1992-12-22"


# --------------------------------------------------------------------------- pagination


def page(offset: int, size: int, limit: int) -> bytes:
    """A real GDP response cut to one page (``offset``, ``limit``; count stays 315)."""
    doc = json.loads(exchanges(GDP)[0].body)
    doc["observations"] = doc["observations"][offset : offset + size]
    doc["offset"], doc["limit"] = offset, limit
    return json.dumps(doc).encode()


def test_pagination_follows_while_offset_plus_page_is_below_count() -> None:
    f = feed(api_key=KEY, limit=100)
    (first,) = SOURCE.plan(f)
    url = first.url
    offsets = []
    request = first
    while True:
        offset = request.purpose["offset"]
        size = min(100, 315 - offset)
        result = SOURCE.parse(f, request, json_exchange(page(offset, size, 100), request.url))
        assert len(result.items) == size
        offsets.append(offset)
        if not result.follow:
            assert result.cursor is None
            break
        (request,) = result.follow
        assert result.cursor == str(offset + size)
        assert request.purpose == {**first.purpose, "offset": offset + size}
        assert request.url == f"{url}&offset={offset + size}"  # the key travels with the request
    assert offsets == [0, 100, 200, 300]


def test_empty_page_does_not_loop() -> None:
    doc = {"count": 10, "offset": 0, "limit": 5, "observations": []}
    url = f"{API}/series/observations?series_id=GDP"
    result = SOURCE.parse(feed(), Request(url=url), json_exchange(doc, url))
    assert result == ParseResult()


# --------------------------------------------------------------------------- CSV downloads


def test_dgs10_old_header() -> None:
    items = parse_csv_file("DGS10.csv")
    assert len(items) == 15395
    assert (items[0].native_id, items[0].text) == ("DGS10:1962-01-02", "4.06")
    assert (items[-1].native_id, items[-1].text) == ("DGS10:2021-01-04", "0.93")
    assert items[0].extra == {
        "series_id": "DGS10",
        "date": "1962-01-02",
        "value": "4.06",
        "missing": False,
    }
    assert items[0].url == series_page_url("DGS10")
    assert items[0].title == "DGS10 1962-01-02"
    assert items[0].published_at == ""
    missing = [i for i in items if i.extra["missing"]]
    assert len(missing) == 659
    assert "DGS10:2021-01-01" in {i.native_id for i in missing}
    assert all(i.text == "." for i in missing)


def test_dgs1mo_old_header() -> None:
    items = parse_csv_file("DGS1MO.csv")
    assert len(items) == 5070
    assert (items[0].native_id, items[0].text) == ("DGS1MO:2001-07-31", "3.67")
    assert (items[-1].native_id, items[-1].text) == ("DGS1MO:2021-01-04", "0.09")
    assert sum(i.extra["missing"] for i in items) == 212


def test_fredgraph_two_series_new_header() -> None:
    items = parse_csv_file("fredgraph_FEDFUNDS_MORTGAGE30US.csv")
    assert len(items) == 624  # 312 months × 2 series
    assert [(i.native_id, i.text) for i in items[:2]] == [
        ("FEDFUNDS:1999-12-01", "5.30"),
        ("MORTGAGE30US:1999-12-01", "7.91"),
    ]
    assert [(i.native_id, i.text) for i in items[-2:]] == [
        ("FEDFUNDS:2025-11-01", "3.88"),
        ("MORTGAGE30US:2025-11-01", "6.24"),
    ]
    by_series = {
        s: [i for i in items if i.extra["series_id"] == s] for s in ("FEDFUNDS", "MORTGAGE30US")
    }
    assert {s: len(v) for s, v in by_series.items()} == {"FEDFUNDS": 312, "MORTGAGE30US": 312}
    assert by_series["MORTGAGE30US"][0].url == "https://fred.stlouisfed.org/series/MORTGAGE30US"
    assert not any(i.extra["missing"] for i in items)


def test_csv_and_json_totals() -> None:
    """README: 20,777 CSV rows and 1,867 missing values (``.``) over JSON and CSV."""
    files = ("DGS10.csv", "DGS1MO.csv", "fredgraph_FEDFUNDS_MORTGAGE30US.csv")
    parsed = {name: parse_csv_file(name) for name in files}
    rows = sum(len({i.extra["date"] for i in items}) for items in parsed.values())
    assert rows == 15395 + 5070 + 312 == 20777
    csv_missing = sum(i.extra["missing"] for items in parsed.values() for i in items)
    json_missing = 0
    for relative, counts in OBSERVATIONS.items():
        for index in range(len(counts)):
            items = replay(exchanges(relative)[index]).items
            json_missing += sum(i.extra["missing"] for i in items)
    assert (json_missing, csv_missing) == (996, 871)
    assert json_missing + csv_missing == 1867


def test_csv_routing_by_url_without_purpose() -> None:
    exchange = csv_exchange(
        "DGS1MO.csv", "https://fred.stlouisfed.org/graph/fredgraph.csv?id=DGS1MO"
    )
    assert len(replay(exchange).items) == 5070


@pytest.mark.parametrize(
    ("body", "values"),
    [
        # an empty cell (the 2024 download's missing value) is kept as the API's "."
        (b"observation_date,A,B\r\n2024-01-01,1.5,\r\n2024-02-01,.,2\r\n", ["1.5", ".", ".", "2"]),
        (b"\xef\xbb\xbfDATE,A\n2024-01-01,1\n\n", ["1"]),
        (b"DATE,A\n", []),
    ],
)
def test_csv_variants(body: bytes, values: list[str]) -> None:
    items = parse_csv(body, CSV_URL, feed_name="f")
    assert [i.text for i in items] == values
    assert [i.extra["missing"] for i in items] == [v in ("", ".") for v in values]
    assert all(i.feed == "f" for i in items)


@pytest.mark.parametrize(
    ("body", "message", "position"),
    [
        (b"", "empty body", "byte 0"),
        (b"<!DOCTYPE html><html><body>Series not found</body></html>", "not a FRED CSV", "line 1"),
        (b"DATE\n2024-01-01\n", "not a FRED CSV", "line 1"),
        (b"DATE,A\n2024-01-01,1\n2024-02-01,2,3\n", "expected 2 fields, found 3", "line 3"),
        (b"DATE,A\n01/02/2024,1\n", "is not YYYY-MM-DD", "line 2"),
        (b"DATE,A B\n2024-01-01,1\n", "is not a series id", "line 1"),
        (b"DATE,A\n2024-01-01,\xff\n", "not UTF-8", "byte 18"),
    ],
)
def test_bad_csv(body: bytes, message: str, position: str) -> None:
    with pytest.raises(ParseError, match=message) as info:
        parse_csv(body, CSV_URL)
    assert info.value.position == position


def test_csv_non_200_is_an_error() -> None:
    exchange = Exchange("GET", f"{CSV_URL}?id=NOPE", 404, (), b"<html>Not Found</html>")
    request = Request(url=exchange.url, purpose={"kind": "observations", "format": "csv"})
    with pytest.raises(ParseError, match="HTTP 404"):
        SOURCE.parse(feed(), request, exchange)


# --------------------------------------------------------------------------- errors and the API key


def test_truncated_observations_body_names_line_and_column() -> None:
    body = exchanges(GDP)[0].body[:120]
    with pytest.raises(ParseError, match="malformed JSON") as info:
        replay(json_exchange(body, f"{API}/series/observations?series_id=GDP"))
    assert re.fullmatch(r"line 1 column \d+", info.value.position)


@pytest.mark.parametrize(
    ("observation", "position"),
    [
        ("x", "$.observations[0]"),
        ({"date": "2024-01-01"}, "$.observations[0].value"),
        ({"date": "2024-01-01", "value": 1.5}, "$.observations[0].value"),
        ({"date": "Q1 2024", "value": "1"}, "$.observations[0].date"),
    ],
)
def test_observations_of_the_wrong_shape(observation: object, position: str) -> None:
    doc = {"count": 1, "offset": 0, "observations": [observation]}
    with pytest.raises(ParseError) as info:
        replay(json_exchange(doc, f"{API}/series/observations?series_id=GDP"))
    assert info.value.position == position


def test_vintage_observation_without_realtime_start_is_an_error() -> None:
    doc = {"count": 1, "offset": 0, "observations": [{"date": "2024-01-01", "value": "1"}]}
    url = f"{API}/series/observations?series_id=GDP&realtime_start=1776-07-04"
    with pytest.raises(ParseError) as info:
        replay(json_exchange(doc, url))
    assert info.value.position == "$.observations[0].realtime_start"


def test_error_body_under_200_is_an_error() -> None:
    doc = {"error_code": 429, "error_message": "Too Many Requests.  Exceeded Rate Limit"}
    with pytest.raises(ParseError, match="FRED error 429: Too Many Requests"):
        replay(json_exchange(doc, f"{API}/series/observations?series_id=GDP"))


def test_non_json_error_body_names_the_status() -> None:
    exchange = Exchange("GET", f"{API}/series/observations", 502, (), b"<html>Bad Gateway</html>")
    with pytest.raises(ParseError, match=r"HTTP 502 response$"):
        replay(exchange)


def test_304_gives_an_empty_result() -> None:
    assert (
        replay(json_exchange(b"", f"{API}/series/observations?series_id=GDP", 304)) == ParseResult()
    )


def test_redact_url() -> None:
    assert redact_url(f"{API}/series/observations?series_id=GDP&api_key={KEY}&file_type=json") == (
        f"{API}/series/observations?series_id=GDP&api_key=REDACTED&file_type=json"
    )
    assert redact_url(f"{API}/x?API_KEY={KEY}") == f"{API}/x?API_KEY=REDACTED"
    assert redact_url(f"{API}/x?series_id=GDP") == f"{API}/x?series_id=GDP"


def test_api_key_never_reaches_items_or_messages() -> None:
    """Replay the whole corpus as if the requests had carried a key."""
    f = feed(api_key=KEY)
    errors: list[ParseError] = []
    texts: list[str] = []
    for relative in cassettes():
        for exchange in exchanges(relative):
            keyed = f"{exchange.url}&api_key={KEY}"
            replayed = replace(exchange, url=keyed, final_url=keyed)
            try:
                result = SOURCE.parse(f, Request(url=keyed), replayed)
            except ParseError as exc:
                errors.append(exc)
            else:
                assert result.items
                texts.append(repr(result.items))
    assert (len(errors), len(texts)) == (160 - 12, 12)
    for error in errors:
        assert KEY not in str(error)
        assert KEY not in error.url
        assert "api_key=REDACTED" in error.url
    assert not any(KEY in text for text in texts)


def test_api_key_echoed_in_an_error_message_is_scrubbed() -> None:
    doc = {
        "error_code": 400,
        "error_message": f"Bad Request.  The api_key {KEY} is not registered.",
    }
    url = f"{API}/series/observations?series_id=GDP&api_key={KEY}"
    with pytest.raises(ParseError) as info:
        SOURCE.parse(feed(api_key=KEY), Request(url=url), json_exchange(doc, url, 400))
    assert KEY not in str(info.value)
    assert "The api_key REDACTED is not registered." in str(info.value)


def test_follow_up_request_keeps_the_key_but_items_do_not() -> None:
    f = feed(api_key=KEY, limit=100)
    (first,) = SOURCE.plan(f)
    result = SOURCE.parse(f, first, json_exchange(page(0, 100, 100), first.url))
    (follow,) = result.follow
    assert f"api_key={KEY}" in follow.url
    assert KEY not in repr(result.items)


# --------------------------------------------------------------------------- XML pages
# ``file_type=xml`` is the API's default (clients such as fredapi read it):
# the same page as attributes. The XML is made from the real JSON page.


def _as_xml(doc: dict[str, Any]) -> bytes:
    from xml.sax.saxutils import quoteattr

    def attrs(obj: dict[str, Any]) -> str:
        return " ".join(f"{k}={quoteattr(str(v))}" for k, v in obj.items() if k != "observations")

    rows = "".join(f"\n  <observation {attrs(o)}/>" for o in doc["observations"])
    return (
        f'<?xml version="1.0" encoding="utf-8" ?>\n<observations {attrs(doc)}>{rows}\n'
        "</observations>\n"
    ).encode()


def test_an_xml_page_gives_the_items_of_the_same_json_page() -> None:
    exchange = exchanges(GDP)[0]
    doc = json.loads(exchange.body)
    xml_exchange = replace(
        exchange, body=_as_xml(doc), headers=(("Content-Type", "text/xml; charset=UTF-8"),)
    )
    assert replay(xml_exchange).items == replay(exchange).items
    assert len(replay(xml_exchange).items) == 315


def test_an_xml_error_body_names_freds_message() -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8" ?>\n'
        b'<error code="400" message="Bad Request.  The series does not exist."/>'
    )
    exchange = Exchange("GET", f"{API}/series/observations?series_id=NOPE", 400, (), body)
    with pytest.raises(ParseError, match="HTTP 400 response: FRED error 400: Bad Request"):
        replay(exchange)


def test_an_xml_page_with_entities_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE o [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><observations count="&b;"/>'
    )
    exchange = Exchange("GET", f"{API}/series/observations?series_id=GDP", 200, (), bomb)
    with pytest.raises(ParseError, match="XML with a DTD or entities"):
        replay(exchange)
