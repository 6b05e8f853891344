"""Tests of the ``rss`` source (echo_archive.sources.rss) against real feed documents.

Every document under ``../shared/corpora/feeds`` (88 files recorded from live
sites by rss-parser, feedjira and node-feedparser; see its PROVENANCE.md) is
parsed. Each one is asserted to be either a feed with a known format and item
count, or "not a feed". The expected values below were read from the files
themselves (titles, ids, dates, authors) with a text editor and ``grep``.

Where a test needs a variant a real feed does not provide (no id and no link,
a relative link, a truncated body), it edits a real file in memory and says so.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echo_archive.errors import ParseError, SourceError
from echo_archive.model import Exchange, Item, Request
from echo_archive.sources import rss
from echo_archive.sources.base import Feed, Source
from echo_archive.sources.rss import ACCEPT, ParsedFeed, RssSource, parse_document

from .conftest import shared_dir

FEED_URL = "http://example.org/feed.xml"
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")

# --------------------------------------------------------------------------- corpus expectations

#: Documents that parse: (format, number of items after duplicates and empty
#: entries are dropped). A regression guard: the numbers were measured with
#: this parser and checked against a raw count of <item>/<entry> elements.
FEEDS: dict[str, tuple[str, int]] = {
    "feedjira/AListApart.xml": ("rss20", 2),
    "feedjira/AmazonWebServicesBlog.xml": ("atom10", 10),
    "feedjira/AtomFeedWithSpacesAroundEquals.xml": ("atom10", 1),
    "feedjira/CRE.xml": ("rss20", 30),
    "feedjira/DuplicateContentAtomFeed.xml": ("atom10", 10),  # Atom inside an XHTML <body>
    "feedjira/FeedBurnerUrlNoAlternate.xml": ("atom10", 1),
    "feedjira/FeedBurnerXHTML.xml": ("atom10", 10),
    "feedjira/FeedjiraBlog.xml": ("atom10", 1),
    "feedjira/GiantRobotsSmashingIntoOtherGiantRobots.xml": ("atom10", 3),
    "feedjira/GoogleBlogSearchpauldix.xml": ("atom10", 0),  # a real, empty feed
    "feedjira/GoogleDocsList.xml": ("atom10", 2),
    "feedjira/HREFConsideredHarmful.xml": ("rss10", 10),
    "feedjira/HuffPostCanada.xml": ("rss20", 2),
    "feedjira/ICringelyThePulpitPBS.xml": ("rss20", 15),
    "feedjira/InfoQPersonalizedFeedforUnregisteredUserRegisteredtoupgrade.xml": ("rss10", 15),
    "feedjira/JoelonSoftware.xml": ("rss20", 7),
    "feedjira/LoudThinking.xml": ("atom10", 25),
    "feedjira/MartinFowlersBliki.xml": ("rss20", 10),
    "feedjira/MySQLPerformanceBlog.xml": ("rss20", 10),
    "feedjira/Pastieampampltampampltself.xml": ("rss10", 15),
    "feedjira/PaulDixExplainsNothing.xml": ("atom10", 5),
    "feedjira/PaulDixExplainsNothingWFW.xml": ("atom10", 5),
    "feedjira/PaulGraham.xml": ("atom10", 1),
    "feedjira/Phoenixisnamp39tjustatowninArizona.xml": ("rss20", 10),
    "feedjira/PlanetRuby.xml": ("rss20", 20),
    "feedjira/PrototypeJavaScriptframeworkblog.xml": ("atom10", 15),
    "feedjira/RSSWithComments.xml": ("rss20", 30),
    "feedjira/RailsJitsu.xml": ("atom10", 1),
    "feedjira/RecentJobs.xml": ("rss20", 25),
    "feedjira/RubyCorner.xml": ("rss20", 20),
    "feedjira/RubyForgeNewReleases.xml": ("rss091n", 10),
    "feedjira/SamHarrisAuthorPhilosopherEssayistAtheist.xml": ("rss20", 10),
    "feedjira/SamRuby.xml": ("atom10", 20),
    "feedjira/ScriptingNews.xml": ("rss20", 20),
    "feedjira/SignalvsNoise.xml": ("rss20", 41),
    "feedjira/Slashdot.xml": ("rss10", 15),
    "feedjira/StartuppingBlog.xml": ("rss20", 2),
    "feedjira/TechCrunch.xml": ("rss20", 20),
    "feedjira/Techmeme.xml": ("rss20", 19),
    "feedjira/TenderLovemaking.xml": ("rss20", 10),
    "feedjira/TrotterCashionHome.xml": ("atom10", 14),
    "feedjira/TweetScanpauldix.xml": ("rss20", 1),
    "feedjira/TypePadNews.xml": ("atom10", 10),
    "feedjira/blogpmarcacom.xml": ("atom10", 40),
    "feedjira/google_alerts_atom.xml": ("atom10", 20),
    "feedjira/itunes_feedburner.xml": ("rss20", 3),
    "feedjira/jobsjoelonsoftwarecom.xml": ("rss20", 17),
    "feedjira/json_feed.json": ("json10", 20),
    "feedjira/mbgnotes.xml": ("rss20", 3),
    "feedjira/pet_atom.xml": ("atom10", 10),
    "feedjira/tailrank.xml": ("rss10", 10),
    "feedjira/youtube_atom.xml": ("atom10", 15),
    "node-feedparser/compressed.xml": ("rss20", 10),
    "node-feedparser/guid-dupes.xml": ("rss20", 1),
    "node-feedparser/iconv.xml": ("rss20", 10),
    "node-feedparser/illegally-nested.xml": ("rss20", 10),  # + 10 empty nested <item>s dropped
    "node-feedparser/intertwingly.atom": ("atom10", 20),
    "node-feedparser/invalid-characters-gzipped.xml": ("rss20", 25),
    "node-feedparser/mediacontent-dupes.xml": ("rss20", 1),
    "node-feedparser/tpm.atom": ("atom10", 20),
    "node-feedparser/wapowellness.xml": ("rss20", 29),
    "rss-parser/XML_File_Daily_SCI-Tech_News.xml": ("rss20", 30),
    "rss-parser/content-encoded.rss": ("rss20", 7),
    "rss-parser/craigslist.rss": ("rss10", 25),
    "rss-parser/encoding-gb2312.xml": ("rss20", 1),
    "rss-parser/encoding.rss": ("rss20", 40),
    "rss-parser/feedburner.atom": ("atom10", 25),
    "rss-parser/guardian.rss": ("rss20", 55),
    "rss-parser/gulp-atom.atom": ("atom10", 10),
    "rss-parser/heise.atom": ("atom10", 15),
    "rss-parser/itunes-href.rss": ("rss20", 10),
    "rss-parser/itunes-keywords-astext.rss": ("rss20", 32),
    "rss-parser/itunes-missing-image.rss": ("rss20", 131),  # one guid repeated, both kept
    "rss-parser/many-links.rss": ("atom10", 25),  # an Atom feed despite its name
    "rss-parser/narro.rss": ("rss20", 1),
    "rss-parser/nhs-feed.rss": ("rss20", 2),
    "rss-parser/reddit-atom.rss": ("rss20", 24),  # an RSS feed despite its name
    "rss-parser/reddit-home.rss": ("atom10", 24),
    "rss-parser/reddit.rss": ("rss20", 24),
    "rss-parser/rss-1.rss": ("rss10", 69),
    "rss-parser/rss091.rss": ("rss091u", 15),
    "rss-parser/uolNoticias.rss": ("rss", 15),  # <rss> without a version attribute
}

#: Documents that are not feeds, each with a fragment of the error message.
#: Each file was opened and read to confirm what it is.
NOT_FEEDS: dict[str, str] = {
    # WordPress.com login page ("Protected Blog › Login").
    "feedjira/titleunknown.xml": "HTML page titled 'Protected Blog › Login'",
    # The sfruby.org WordPress home page.
    "feedjira/SFRubyorgHome.xml": "HTML page titled 'sfruby.org'",
    # A Drupal site's home page ("General Studies Lounge").
    "feedjira/JoomlapoweredSite.xml": "HTML page titled 'General Studies Lounge",
    # IIS "Object Moved" stub pointing at the new location.
    "rss-parser/unrecognized.rss": (
        "HTML page titled 'Document Moved' pointing to http://fishhawk2.marketwatch.com/rss/pf/"
    ),
    # A valid RSS 2.0 document whose one item says "Feed has moved".
    "feedjira/RobertEvansHome.xml": (
        "obsolete-feed notice (moved to http://blog.codewranglers.org/feed/atom.xml)"
    ),
    # Google Reader's OPML export of subscriptions.
    "feedjira/google-reader-subscriptions.xml": "OPML subscription list (312 outlines)",
}

#: Regression guard: the total number of items over the corpus, measured with
#: this parser. The README's "about 1,358" counts raw entries: 1,358 minus the
#: 10 empty nested items of illegally-nested.xml and the one "Feed has moved"
#: item = 1,347 (the repeated guid of itunes-missing-image.rss is kept).
TOTAL_ITEMS = 1347
#: Regression guard: items per format (feedparser's version names).
ITEMS_PER_FORMAT = {
    "rss20": 770,
    "atom10": 358,
    "rss10": 159,
    "json10": 20,
    "rss091u": 15,
    "rss": 15,
    "rss091n": 10,
}
#: Regression guard: documents per format (README: RSS 2.0 ×44 counts the
#: unversioned <rss> and the obsolete notice; Atom ×29; RDF ×7; 0.9x ×2).
DOCUMENTS_PER_FORMAT = {
    "rss20": 42,
    "atom10": 29,
    "rss10": 7,
    "rss091n": 1,
    "rss091u": 1,
    "rss": 1,
    "json10": 1,
}


def feeds_dir() -> Path:
    """The shared feed corpus (fails in CI, skips elsewhere when absent)."""
    return shared_dir("corpora", "feeds")


@functools.cache
def raw(name: str) -> bytes:
    """The bytes of one corpus file, as stored (gzip files stay compressed)."""
    return (feeds_dir() / name).read_bytes()


@functools.cache
def parsed(name: str) -> ParsedFeed:
    """One corpus file parsed once per test session (the corpus is 4.8 MB)."""
    return parse_document(raw(name), FEED_URL, feed_name="corpus")


def item_by_id(feed: ParsedFeed, native_id: str) -> Item:
    """The item with ``native_id`` (fails the test when absent)."""
    matches = [item for item in feed.items if item.native_id == native_id]
    assert len(matches) == 1, f"{native_id!r} found {len(matches)} times"
    return matches[0]


# --------------------------------------------------------------------------- whole corpus


def test_every_corpus_file_is_classified() -> None:
    root = feeds_dir()
    on_disk = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name not in ("PROVENANCE.md", "provenance.json")
    }
    assert len(on_disk) == 88
    assert on_disk == set(FEEDS) | set(NOT_FEEDS)
    assert not set(FEEDS) & set(NOT_FEEDS)


@pytest.mark.parametrize("name", sorted(FEEDS))
def test_corpus_feed_parses(name: str) -> None:
    version, count = FEEDS[name]
    feed = parsed(name)
    assert feed.version == version
    assert len(feed.items) == count
    ids = [item.native_id for item in feed.items]
    assert len(set(ids)) == len(ids) - feed.duplicates  # repeated ids kept and counted
    for item in feed.items:
        assert item.source == "rss"
        assert item.feed == "corpus"
        assert item.native_id
        assert item.published_at == "" or RFC3339_UTC.match(item.published_at)
        assert item.extra["format"] == version
        if "updated" in item.extra:
            assert RFC3339_UTC.match(item.extra["updated"])
        json.dumps(dict(item.extra))  # JSON-ready
        assert all(isinstance(v, int) for v in item.counters.values())


@pytest.mark.parametrize("name", sorted(NOT_FEEDS))
def test_corpus_non_feed_is_refused(name: str) -> None:
    with pytest.raises(ParseError, match=r": not a feed: ") as info:
        parse_document(raw(name), FEED_URL)
    assert NOT_FEEDS[name] in str(info.value)
    assert info.value.url == FEED_URL
    assert re.fullmatch(r"line \d+ column \d+", info.value.position)


def test_corpus_totals() -> None:
    total = 0
    items_per_format: dict[str, int] = {}
    documents_per_format: dict[str, int] = {}
    for name in FEEDS:
        feed = parsed(name)
        total += len(feed.items)
        items_per_format[feed.version] = items_per_format.get(feed.version, 0) + len(feed.items)
        documents_per_format[feed.version] = documents_per_format.get(feed.version, 0) + 1
    print(f"feeds corpus: {total} items in {len(FEEDS)} feeds; {items_per_format}")
    assert abs(total - 1358) <= 12  # the README's "about 1,358 items or entries"
    assert total == TOTAL_ITEMS
    assert items_per_format == ITEMS_PER_FORMAT
    assert documents_per_format == DOCUMENTS_PER_FORMAT


# --------------------------------------------------------------------------- declared encodings


def test_windows_1251_feed_and_its_gzipped_copy() -> None:
    plain = parsed("node-feedparser/iconv.xml")
    gzipped = parsed("node-feedparser/compressed.xml")
    assert raw("node-feedparser/compressed.xml")[:2] == b"\x1f\x8b"
    assert gzipped.items == plain.items
    assert plain.title == "Новости Оренбурга и области / Раздел Новости"
    first = plain.items[0]
    assert first.native_id == "http://www.oren.ru/news/2743422/"
    assert first.title == "В Бузулуке главные стройплощадки – детсад и Ледовый дворец"
    assert first.published_at == "2014-01-22T14:31:31.000000Z"  # 20:31:31 +0600
    assert first.extra["published_raw"] == "Wed, 22 Jan 2014 20:31:31 +0600"
    assert first.extra["categories"] == ["Раздел Новости/"]
    assert first.extra["enclosures"] == [
        {
            "url": "http://www.oren.ru/upload/iblock/be8/stroitelstvo_krany.jpg",
            "type": "image/jpeg",
            "length": 9683,
        }
    ]
    assert plain.items[1].title == "ЧОПовцы в Оренбурге избили молодого человека"


def test_windows_1251_declared_in_the_content_type_header() -> None:
    via_header = parse_document(
        raw("node-feedparser/iconv.xml"),
        FEED_URL,
        "application/rss+xml; charset=windows-1251",
        feed_name="corpus",
    )
    assert via_header.items == parsed("node-feedparser/iconv.xml").items


def test_gb2312_feed() -> None:
    feed = parsed("rss-parser/encoding-gb2312.xml")
    assert feed.title == "互联网"
    (item,) = feed.items
    assert item.native_id == "http://tech.qq.com/a/20180919/009008.htm"
    assert item.title == "拟298亿元重组盛大游戏后 世纪华通发20亿回购预案"
    assert item.author == "www.qq.com"
    assert item.published_at == "2018-09-19T05:11:22.000000Z"
    assert item.text.startswith("腾讯科技讯9月18日，A股游戏公司世纪华通（002602.SZ）发布公告")


def test_iso_8859_1_rdf_slashdot() -> None:
    feed = parsed("feedjira/Slashdot.xml")
    assert (feed.version, feed.title, feed.link) == ("rss10", "Slashdot", "http://slashdot.org/")
    first = feed.items[0]
    assert first.native_id == "http://tech.slashdot.org/article.pl?sid=09/01/22/2338214&from=rss"
    assert first.title == "Windows 7 Taskbar Not So Similar To OS X Dock After All"
    assert first.url == "http://rss.slashdot.org/~r/slashdot/eqWf/~3/SJw3jsvzN3I/article.pl"
    assert first.author == "timothy"
    assert first.published_at == "2009-01-23T01:19:00.000000Z"
    assert first.counters == {"comments": 64}  # slash:comments
    assert first.extra["categories"] == ["gui"]
    assert first.extra["orig_link"] == (
        "http://tech.slashdot.org/article.pl?sid=09%2F01%2F22%2F2338214&from=rss"
    )
    assert feed.items[-1].title == "Obama Keeps His Blackberry (And Gets a Sectera)"


def test_iso_8859_1_rss091_with_a_newline_before_the_declaration() -> None:
    assert raw("rss-parser/rss091.rss").startswith(b'\n<?xml version="1.0" encoding="ISO-8859-1"')
    feed = parsed("rss-parser/rss091.rss")
    assert feed.warning is None  # the strict parser accepted it once the newline was dropped
    assert feed.title == "Folha.com - Colunas - Futebol na Rede"
    assert [item.title for item in feed.items[:2]] == [
        "Vida de jogador: trocando seis por nada",
        "Palavras de ordem",
    ]
    assert "reclamando da situação dos clubes" in feed.items[0].text  # \xe7\xe3 in Latin-1
    assert all(item.published_at == "" for item in feed.items)  # RSS 0.91 items have no date


def test_iso_8859_1_encoding_rss() -> None:
    feed = parsed("rss-parser/encoding.rss")
    assert feed.title == "Jornal de Notícias - Últimas Notícias"
    assert feed.items[0].title == "Mãe de utente é a nova presidente da Raríssimas"
    assert feed.items[0].published_at == "2018-01-03T13:47:00.000000Z"


def test_declared_utf8_that_is_really_windows_1252_with_portuguese_dates() -> None:
    feed = parsed("rss-parser/uolNoticias.rss")
    assert feed.warning == (
        "CharacterEncodingOverride: document declared as utf-8, but parsed as windows-1252"
    )
    first = feed.items[0]
    assert first.title == (
        "Ibope: Bolsonaro perde de Haddad, Ciro e Alckmin em simulações de 2º turno"
    )
    # "Seg, 24 Set 2018 19:42:40 -0300" is Portuguese RFC 822: read by the fallback.
    assert first.extra["published_raw"] == "Seg, 24 Set 2018 19:42:40 -0300"
    assert first.published_at == "2018-09-24T22:42:40.000000Z"
    assert all(item.published_at for item in feed.items)


# --------------------------------------------------------------------------- formats


def test_newline_before_xml_declaration_techcrunch() -> None:
    assert raw("feedjira/TechCrunch.xml")[:1] == b"\n"
    feed = parsed("feedjira/TechCrunch.xml")
    assert feed.warning is None
    first = feed.items[0]
    assert first.native_id == "http://techcrunch.com/?p=446154"
    assert first.url == "http://feedproxy.google.com/~r/Techcrunch/~3/kTeeGj4FnwU/"
    assert first.title == (
        "Angie’s List Sets Price Range IPO At $11 To $13 Per Share; Valued At Over $600M"
    )
    assert first.author == "Leena Rao"
    assert first.published_at == "2011-11-02T17:25:27.000000Z"
    assert first.counters == {"comments": 0}
    assert first.extra["comments"] == (
        "http://techcrunch.com/2011/11/02/angies-list-prices-ipo-at-11-to-13-per-share-valued-at-over-600m/#comments"
    )
    last = feed.items[-1]
    assert (last.native_id, last.author) == ("http://techcrunch.com/?p=445931", "Matt Burns")


def test_json_feed() -> None:
    feed = parsed("feedjira/json_feed.json")
    assert (feed.version, feed.title, feed.link) == (
        "json10",
        "inessential.com",
        "http://inessential.com/",
    )
    first, second = feed.items[:2]
    assert first.native_id == (
        "http://inessential.com/2017/06/02/james_dempsey_and_the_breakpoints_benefi"
    )
    assert first.url == first.native_id
    assert first.title == "James Dempsey and the Breakpoints Benefit App Camp for Girls"
    assert first.published_at == "2017-06-03T05:05:47.000000Z"  # 2017-06-02T22:05:47-07:00
    assert first.extra["published_raw"] == "2017-06-02T22:05:47-07:00"
    assert first.author == "Brent Simmons"  # inherited from the feed (JSON Feed 1.1 authors)
    assert first.text.startswith("<p>On Wednesday night I know where I’ll be")
    assert second.native_id == "http://inessential.com/2017/06/01/evergreen_diary_1_open_source"
    assert second.title == "Evergreen Diary #1: Open Source"
    last = feed.items[-1]
    assert last.native_id == "http://inessential.com/2017/03/25/my_cocoaconf_yosemite_2017_talk"
    assert last.title == "My CocoaConf Yosemite 2017 Talk"
    assert last.published_at == "2017-03-25T18:55:21.000000Z"


def test_json_feed_1_1_authors_attachments_and_numeric_ids() -> None:
    doc = json.loads(raw("feedjira/json_feed.json"))
    doc["version"] = "https://jsonfeed.org/version/1.1"
    doc["authors"] = [{"name": "Brent Simmons"}]
    del doc["author"]
    doc["items"][0]["id"] = 2017060201  # JSON Feed 1.1: coerce non-string ids to strings
    doc["items"][0]["authors"] = [{"name": "A"}, {"name": "B"}]
    doc["items"][0]["attachments"] = [
        {"url": "/audio/ep1.mp3", "mime_type": "audio/mpeg", "size_in_bytes": 1234}
    ]
    feed = parse_document(json.dumps(doc).encode(), "http://inessential.com/feed.json")
    first = feed.items[0]
    assert feed.version == "json11"
    assert first.native_id == "2017060201"
    assert (first.author, first.extra["authors"]) == ("A", ["A", "B"])
    assert first.extra["enclosures"] == [
        {"url": "http://inessential.com/audio/ep1.mp3", "type": "audio/mpeg", "length": 1234}
    ]
    assert feed.items[1].author == "Brent Simmons"


def test_json_that_is_not_a_json_feed() -> None:
    with pytest.raises(ParseError, match="not a feed: a JSON object without a JSON Feed version"):
        parse_document(b'{"items": []}', FEED_URL)
    with pytest.raises(ParseError, match="not a feed: a JSON list"):
        parse_document(b"[1, 2]", FEED_URL)


def test_content_encoded_is_preferred_to_description() -> None:
    feed = parsed("rss-parser/content-encoded.rss")
    first = feed.items[0]
    assert first.native_id == "https://medium.com/p/125af37d838f"
    assert first.title == "THE CREATIVE FORAGER"
    assert first.author == "Jeremy Puma"  # dc:creator
    assert first.published_at == "2018-04-09T18:55:38.000000Z"
    # atom:updated "2018-04-09T19:39:12.675Z": fractional seconds survive.
    assert first.extra["updated"] == "2018-04-09T19:39:12.675000Z"
    assert first.extra["categories"] == ["plants", "environment", "nature", "foraging", "food"]
    assert first.text.startswith("<h4>Using Wild Ingredients in the\xa0Kitchen</h4><figure><img")
    assert len(first.text) == 4138  # the full content:encoded, not the short description


def test_atom_xhtml_content() -> None:
    feed = parsed("feedjira/FeedBurnerXHTML.xml")
    first = feed.items[0]
    assert first.native_id == "tag:typepad.com,2003:post-6a00d834515b9a69e201a511ad051e970c"
    assert first.title == "Stock Watch: April's Finest"
    assert first.author == "Alex Steers McCrum"
    assert first.published_at == "2014-04-30T13:00:00.000000Z"  # 08:00:00-05:00
    assert first.extra["categories"] == ["Stock Watch", "Trading"]
    # RFC 4287 §4.1.3.3: the xhtml:div wrapper is not part of the content.
    assert first.text.startswith("<p>We always think we know something after a month.")
    assert "<strong><a href=" in first.text
    assert first.text.endswith("He's one to trade while you can.</p>")


def test_atom_entries_inherit_the_feed_author() -> None:
    first = parsed("feedjira/LoudThinking.xml").items[0]
    assert first.native_id == "tag:www.loudthinking.com,2007:Post37"
    assert first.author == "David Heinemeier Hansson"  # RFC 4287 §4.2.1, from <feed><author>
    assert first.published_at == "2008-12-26T10:58:00.000000Z"


def test_youtube_atom_ids() -> None:
    feed = parsed("feedjira/youtube_atom.xml")
    assert all(item.native_id.startswith("yt:video:") for item in feed.items)
    first = feed.items[0]
    assert first.native_id == "yt:video:5shykyfmb28"
    assert first.url == "http://www.youtube.com/watch?v=5shykyfmb28"
    assert first.title == "The Google app: Questions Title"
    assert first.author == "Google"
    assert first.published_at == "2015-05-04T00:01:27.000000Z"
    assert first.extra["updated"] == "2015-05-13T17:38:30.000000Z"
    assert first.extra["thumbnails"] == ["https://i2.ytimg.com/vi/5shykyfmb28/hqdefault.jpg"]
    assert feed.items[-1].native_id == "yt:video:8ztbpW3THmI"


def test_rss_091_netscape_without_dates() -> None:
    feed = parsed("feedjira/RubyForgeNewReleases.xml")
    assert feed.version == "rss091n"
    assert all(item.url and item.native_id == item.url for item in feed.items)
    assert all(item.published_at == "" for item in feed.items)


@pytest.mark.parametrize(
    ("name", "native_id", "enclosure"),
    [
        (
            "rss-parser/itunes-keywords-astext.rss",
            "3602b6b4-68e4-47a6-81b9-323cc79ed87f",
            {
                "url": "https://avdlswr-a.akamaihd.net/dasding/podcasts/endorphine-fuer-delfine/1320514.m.mp3",
                "type": "audio/mpeg",
                "length": 41604459,
            },
        ),
        (
            "feedjira/itunes_feedburner.xml",
            "prx_126_e3dafc45-a202-42d0-a55b-216e733a2d7a",
            {
                "url": "https://www.podtrac.com/pts/redirect.mp3/dovetail.prxu.org/_/126/e3dafc45-a202-42d0-a55b-216e733a2d7a/2023_09_17_BTS_Episode_EXCERPT_v2.mp3",
                "type": "audio/mpeg",
                "length": 7133938,
            },
        ),
        (
            "rss-parser/itunes-missing-image.rss",
            "http://taverncast.com/shows/taverncast-62.mp3",
            {
                "url": "http://www.podtrac.com/pts/redirect.mp3?http://www.taverncast.com/shows/taverncast-62.mp3",
                "type": "audio/mpeg",
                "length": 47160424,
            },
        ),
    ],
)
def test_itunes_enclosures(name: str, native_id: str, enclosure: dict[str, object]) -> None:
    first = parsed(name).items[0]
    assert first.native_id == native_id
    assert first.extra["enclosures"] == [enclosure]


def test_itunes_feed_details() -> None:
    first = parsed("feedjira/itunes_feedburner.xml").items[0]
    assert first.title == "Patreon Preview: Behind the Scenes (September 2023)"
    assert first.author == "Night Vale Presents"
    assert first.published_at == "2023-09-22T16:30:15.000000Z"
    episode = parsed("rss-parser/itunes-keywords-astext.rss").items[0]
    assert episode.title == "Die mit Alice Merton und der Wespen-Taschen Psychologie"
    assert episode.published_at == "2020-10-15T15:27:00.000000Z"  # 17:27:00 +0200


def test_media_rss_description_is_not_mistaken_for_content() -> None:
    (item,) = parsed("node-feedparser/mediacontent-dupes.xml").items
    # feedparser files <media:description> as content; the item's text is its <description>.
    assert item.text == (
        "The shocking murder of Elizabeth Short, known as the Black Dahlia, is one of the "
        "oldest unsolved murder cases in Los Angeles history."
    )
    assert item.published_at == "2013-02-03T04:13:03.000000Z"
    prefix = "http://i.mol.im/i/pix/2013/02/03/article-2272640-174FCEE2000005DC-697"
    assert item.extra["enclosures"] == [
        {"url": f"{prefix}_154x115.jpg", "type": "image/jpeg", "length": 4114},
        {"url": f"{prefix}_154x115.mp4", "type": "video/mp4", "length": 4114},
    ]
    assert item.extra["media"] == [
        {"url": f"{prefix}_154x115.jpg", "type": "image/jpeg"},
        {"url": f"{prefix}.mp4", "type": "video/mp4"},
    ]
    huffpost = parsed("feedjira/HuffPostCanada.xml").items[0]
    assert huffpost.text.startswith('<img src="https://o.aolcdn.com/images/dims3/GLOB/crop/751x376')


# --------------------------------------------------------------------------- messy structure


def test_duplicate_guid_elements_in_one_item() -> None:
    # guid-dupes.xml: one <item> with the same <guid> written twice.
    feed = parsed("node-feedparser/guid-dupes.xml")
    assert feed.duplicates == 0
    (item,) = feed.items
    assert item.native_id == "http://www.braingle.com/50366.html"
    assert item.url == "http://www.braingle.com/50366.html"
    assert item.title == "Huh?"
    assert item.published_at == "2014-06-19T06:00:00.000000Z"


def test_duplicate_ids_across_items_are_all_kept_in_document_order() -> None:
    # itunes-missing-image.rss: two different episodes share one guid (item 17 repeats it).
    feed = parsed("rss-parser/itunes-missing-image.rss")
    assert feed.duplicates == 1
    shared = [i for i in feed.items if i.native_id == "http://taverncast.com/shows/geekistry-2.mp3"]
    assert [i.title for i in shared] == [
        "Geekistry:  You Can See the Strings",
        "Geekistry:  Lowatus of Borg (extended version)",
    ]
    assert shared[0].published_at == "2011-08-02T06:30:00.000000Z"  # 01:30:00 EST
    # The document has two episodes of that title: both are kept.
    lowatus = [item for item in feed.items if item.title.startswith("Geekistry:  Lowatus")]
    assert len(lowatus) == 2


def test_duplicates_counted_in_a_doubled_document() -> None:
    body = raw("node-feedparser/iconv.xml")
    start, end = body.index(b"<item>"), body.rindex(b"</item>") + len(b"</item>")
    doubled = body[:end] + body[start:end] + body[end:]
    feed = parse_document(doubled, FEED_URL, feed_name="corpus")
    assert feed.duplicates == 10
    once = parsed("node-feedparser/iconv.xml").items
    assert feed.items == once + once  # kept, in document order


def test_illegally_nested_items() -> None:
    feed = parsed("node-feedparser/illegally-nested.xml")
    assert feed.skipped == 10  # the empty <item> nested in each real one
    assert [item.title for item in feed.items[:3]] == [
        "My Professional Armchair Analysis of CES",
        "Did We Learn Nothing From the Dot-Com Bust?",
        "Knock It Off With the Tech Prediction Stories",
    ]
    first = feed.items[0]
    assert first.native_id == (
        "http://feedproxy.google.com/~r/ziffdavis/pcmag/dvorak/~3/0O-eUfOYo94/0,2817,2525649,00.asp"
    )
    assert first.published_at == "2018-01-17T20:50:00.000000Z"  # 15:50:00 EST


def test_gzipped_feed_with_astral_characters() -> None:
    assert raw("node-feedparser/invalid-characters-gzipped.xml")[:2] == b"\x1f\x8b"
    feed = parsed("node-feedparser/invalid-characters-gzipped.xml")
    assert (feed.title, feed.warning) == ("NSHipster", None)
    first = feed.items[0]
    assert (first.native_id, first.title) == ("http://nshipster.com/nsoperation/", "NSOperation")
    assert first.author == "Mattt Thompson"
    assert first.published_at == "2014-07-14T07:00:00.000000Z"
    year = item_by_id(feed, "http://nshipster.com/nscalendarunityear/")
    assert "\U0001f525" in year.text  # FIRE, outside the BMP
    assert feed.items[-1].native_id == "http://nshipster.com/extended-file-attributes/"


def test_many_links() -> None:
    feed = parsed("rss-parser/many-links.rss")
    assert sum(item.text.count("href=") for item in feed.items) == 261
    first = feed.items[0]
    assert first.native_id == "tag:blogger.com,1999:blog-15045980.post-8046216467923860328"
    assert first.title == "Code Health: Providing Context with Commit Messages and Bug Reports"
    assert first.author == "Google Testing Bloggers"
    assert first.published_at == "2017-09-11T21:01:00.000000Z"
    assert first.counters == {"comments": 2}  # thr:total, RFC 4685
    assert first.extra["comments"] == (
        "http://testing.googleblog.com/feeds/8046216467923860328/comments/default"
    )
    assert first.extra["categories"] == ["Chris Lewis", "Code Health", "TotT"]


def test_not_well_formed_feed_is_parsed_with_a_warning() -> None:
    # "<category>Plants & Animals </category>": a bare ampersand on line 51.
    feed = parsed("rss-parser/XML_File_Daily_SCI-Tech_News.xml")
    assert len(feed.items) == 30
    assert feed.warning == (
        "SAXParseException: not well-formed (invalid token) at line 51 column 19"
    )


def test_feed_inside_an_html_page() -> None:
    feed = parsed("feedjira/DuplicateContentAtomFeed.xml")
    assert feed.link == "http://www.tablix.org/~avian/blog/"
    first = feed.items[0]
    assert first.native_id == "http://www.tablix.org/~avian/blog/archives/2014/07/down_time/"
    assert (first.title, first.author) == ("Down time", "Tomaž")
    assert first.published_at == "2014-07-21T19:14:39.000000Z"
    assert feed.warning == "atom10 feed found inside a <html> document"


# --------------------------------------------------------------------------- id and link rules


def test_sha256_id_when_an_entry_has_no_id_and_no_link() -> None:
    # mediacontent-dupes.xml with its <guid> and <link> removed.
    body = re.sub(
        rb"\s*<(guid|link)>[^<]*</\1>", b"", raw("node-feedparser/mediacontent-dupes.xml")
    )
    assert b"<guid>" not in body
    first = parse_document(body, FEED_URL)
    second = parse_document(body, FEED_URL)
    title = (
        "Could the infamous Black Dahlia case be about to be solved? Cadaver dog discovers "
        "death scent at Hollywood home of suspect 66 years after the horrific murder"
    )
    expected = hashlib.sha256(f"{title}\nSun, 03 Feb 2013 04:13:03 GMT".encode()).hexdigest()
    assert first.items[0].native_id == f"sha256:{expected}"
    assert first.items == second.items
    assert first.items[0].url == ""


def test_link_is_the_id_when_there_is_no_guid() -> None:
    item = parsed("rss-parser/rss091.rss").items[0]
    assert item.native_id == item.url
    assert item.url.endswith("/740548-vida-de-jogador-trocando-seis-por-nada.shtml")


def test_relative_links_resolve_against_the_feed_url() -> None:
    body = raw("node-feedparser/guid-dupes.xml").replace(
        b"<guid>http://www.braingle.com/50366.html</guid>\n<guid>http://www.braingle.com/50366.html</guid>",
        b'<guid isPermaLink="false">50366</guid><link>../brainteasers/50366.html</link>',
    )
    feed = parse_document(body, "http://www.braingle.com/feeds/newteasers.xml")
    (item,) = feed.items
    assert item.native_id == "50366"
    assert item.url == "http://www.braingle.com/brainteasers/50366.html"


def test_relative_links_resolve_against_xml_base() -> None:
    old = b"http://feeds.feedburner.com/~r/prototype-blog/~3/423480891/prototype-linkedin-group"
    body = raw("feedjira/PrototypeJavaScriptframeworkblog.xml")
    assert body.count(old) == 1
    # The first <entry> carries xml:base="http://prototypejs.org/".
    feed = parse_document(body.replace(old, b"blog/prototype-linkedin-group"), FEED_URL)
    assert feed.items[0].url == "http://prototypejs.org/blog/prototype-linkedin-group"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("Thu, 19 Jun 2014 06:00:00 GMT", "2014-06-19T06:00:00.000000Z"),
        ("Seg, 24 Set 2018 19:42:40 -0300", "2018-09-24T22:42:40.000000Z"),  # Portuguese
        ("Mi, 03 Dez 2014 10:00:00 +0100", "2014-12-03T09:00:00.000000Z"),  # German
        ("jeudi, 19 juin 2014 06:00:00 GMT", "2014-06-19T06:00:00.000000Z"),  # French
        ("2014-06-19T06:00:00.123456+02:00", "2014-06-19T04:00:00.123456Z"),  # RFC 3339
        ("Fri, 31 Dec 9999 23:00:00 -0300", ""),  # past year 9999 in UTC
        ("quinta-feira passada", ""),
    ],
)
def test_pubdate_forms(written: str, expected: str) -> None:
    # guid-dupes.xml with its <pubDate> rewritten.
    body = raw("node-feedparser/guid-dupes.xml").replace(
        b"Thu, 19 Jun 2014 06:00:00 GMT", written.encode()
    )
    (item,) = parse_document(body, FEED_URL).items
    assert item.published_at == expected
    assert item.extra["published_raw"] == written


def test_unparseable_date_keeps_the_raw_string() -> None:
    body = raw("node-feedparser/guid-dupes.xml").replace(
        b"Thu, 19 Jun 2014 06:00:00 GMT", b"quinta-feira passada"
    )
    (item,) = parse_document(body, FEED_URL).items
    assert item.published_at == ""
    assert item.extra["published_raw"] == "quinta-feira passada"


# --------------------------------------------------------------------------- broken bodies


def test_empty_body() -> None:
    for body in (b"", b"\n  \r\n"):
        with pytest.raises(ParseError, match="empty body") as info:
            parse_document(body, FEED_URL)
        assert info.value.position == "byte 0"


def test_truncated_xml_keeps_the_complete_items() -> None:
    body = raw("rss-parser/guardian.rss")
    feed = parse_document(body[: len(body) // 2], FEED_URL, feed_name="corpus")
    whole = parsed("rss-parser/guardian.rss")
    assert len(feed.items) == 26
    assert feed.items == whole.items[:26]  # exactly as in the whole document
    assert feed.skipped == 1  # the item being written at the cut
    assert feed.warning is not None
    assert "SAXParseException: no element found at line 553" in feed.warning
    assert "document truncated: the root element <rss> is never closed" in feed.warning
    assert "kept the 26 items complete before the cut" in feed.warning


def test_truncated_atom_and_rdf_keep_the_complete_items() -> None:
    for name, kept in (("feedjira/FeedBurnerXHTML.xml", 4), ("feedjira/Slashdot.xml", 6)):
        body = raw(name)
        feed = parse_document(body[: len(body) // 2], FEED_URL, feed_name="corpus")
        assert feed.items == parsed(name).items[:kept]


def test_truncated_inside_the_root_tag() -> None:
    body = raw("feedjira/Slashdot.xml")[:300]
    with pytest.raises(ParseError, match="malformed feed: unreadable <rdf> document") as info:
        parse_document(body, FEED_URL)
    assert info.value.position == "line 2 column 1"


def test_truncated_json_feed() -> None:
    body = raw("feedjira/json_feed.json")
    # It names itself a JSON Feed: a damaged feed (the import keeps it, flagged),
    # not some other JSON document.
    # Cut in the middle: the entries complete before the cut are salvaged, flagged.
    feed = parse_document(body[: len(body) // 2], FEED_URL)
    assert feed.truncated
    assert feed.warning is not None
    assert "document truncated" in feed.warning
    assert "line 98 column 23" in feed.warning
    whole = parse_document(body, FEED_URL).items
    assert 0 < len(feed.items) < len(whole)
    assert feed.items == whole[: len(feed.items)]
    # Cut before any complete entry: still a damaged feed, nothing to salvage.
    head = body[: body.index(b'"items"') + 12]
    with pytest.raises(ParseError, match="malformed feed: invalid JSON Feed"):
        parse_document(head, FEED_URL)
    with pytest.raises(ParseError, match="not a feed: malformed JSON"):
        parse_document(b'{"title": "x", "items": [', FEED_URL)


def test_truncated_gzip_stream() -> None:
    body = raw("node-feedparser/compressed.xml")
    feed = parse_document(body[: len(body) // 2], FEED_URL, feed_name="corpus")
    assert feed.warning is not None
    assert feed.warning.startswith("gzip stream truncated after")
    assert 0 < len(feed.items) < 10
    assert feed.items == parsed("node-feedparser/iconv.xml").items[: len(feed.items)]


def test_corrupt_gzip_stream() -> None:
    body = bytearray(raw("node-feedparser/compressed.xml"))
    body[20:40] = b"\xff" * 20
    with pytest.raises(ParseError, match="corrupt gzip body"):
        parse_document(bytes(body), FEED_URL)


def test_gzip_bomb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rss, "MAX_DECOMPRESSED_BYTES", 4096)
    with pytest.raises(ParseError, match="decompresses to more than 4096 bytes"):
        parse_document(gzip.compress(b" " * 10_000), FEED_URL)


@pytest.mark.parametrize(
    "name",
    [
        "rss-parser/guardian.rss",
        "feedjira/FeedBurnerXHTML.xml",
        "feedjira/Slashdot.xml",
        "feedjira/json_feed.json",
        "node-feedparser/compressed.xml",
        "node-feedparser/iconv.xml",
        "rss-parser/encoding-gb2312.xml",
    ],
)
def test_damaged_bodies_raise_only_parse_error(name: str) -> None:
    # DESIGN.md invariant 7: a cut or corrupted body gives items or a ParseError,
    # never another exception (feedparser itself raises TypeError, ValueError
    # and UnicodeDecodeError on some damaged documents).
    body = raw(name)

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(
        cut=st.integers(0, len(body)),
        flips=st.lists(st.tuples(st.integers(0, len(body) - 1), st.integers(0, 255)), max_size=4),
    )
    def check(cut: int, flips: list[tuple[int, int]]) -> None:
        damaged = bytearray(body[:cut])
        for position, value in flips:
            if position < len(damaged):
                damaged[position] = value
        try:
            feed = parse_document(bytes(damaged), FEED_URL)
        except ParseError:
            return
        for item in feed.items:
            json.dumps(dict(item.extra))

    check()


def test_feedparser_crash_becomes_parse_error() -> None:
    # A real crash found by the test above: an undecodable byte inside the XML
    # declaration's encoding name makes feedparser raise UnicodeDecodeError.
    body = raw("feedjira/TweetScanpauldix.xml").replace(
        b'encoding="UTF-8"', b'encoding="U\xc0F-8"', 1
    )
    assert b"\xc0" in body
    with pytest.raises(ParseError, match=r"the feed parser failed \(UnicodeDecodeError"):
        parse_document(body, FEED_URL)


def test_body_is_never_taken_as_a_file_name(tmp_path: Path) -> None:
    # feedparser.parse(bytes) would open a file of that name; we pass a stream.
    secret = tmp_path / "feed.xml"
    secret.write_bytes(raw("node-feedparser/guid-dupes.xml"))
    with pytest.raises(ParseError, match="not a feed"):
        parse_document(str(secret).encode(), FEED_URL)


# --------------------------------------------------------------------------- the Source


def test_rss_source_satisfies_the_protocol() -> None:
    source: Source = RssSource()
    assert source.kind == "rss"


def test_plan_is_one_get_with_a_feed_accept_header() -> None:
    feed = Feed(name="guardian", source="rss", params={"url": "https://example.org/rss"})
    (request,) = RssSource().plan(feed)
    assert request.url == "https://example.org/rss"
    assert request.method == "GET"
    assert request.headers == (("Accept", ACCEPT),)
    assert ACCEPT == (
        "application/atom+xml, application/rss+xml, application/feed+json, "
        "application/json;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
    )


@pytest.mark.parametrize(
    "params", [{}, {"url": ""}, {"url": 42}, {"url": "ftp://example.org/rss"}, {"url": "/rss"}]
)
def test_plan_refuses_a_bad_url(params: dict[str, object]) -> None:
    with pytest.raises(SourceError, match=r"feed 'broken': params\.url"):
        RssSource().plan(Feed(name="broken", source="rss", params=params))


def _exchange(name: str, status: int = 200, content_type: str = "") -> Exchange:
    headers = (("Content-Type", content_type),) if content_type else ()
    return Exchange(
        method="GET",
        url="http://www.oren.ru/rss",
        final_url="http://www.oren.ru/rss/news.xml",
        status=status,
        headers=headers,
        body=raw(name) if status == 200 else b"",
    )


def test_parse_an_exchange() -> None:
    source = RssSource()
    feed = Feed(name="oren", source="rss", params={"url": "http://www.oren.ru/rss"})
    (request,) = source.plan(feed)
    result = source.parse(
        feed, request, _exchange("node-feedparser/iconv.xml", content_type="text/xml")
    )
    assert len(result.items) == 10
    assert {item.feed for item in result.items} == {"oren"}
    assert result.items[0].title == "В Бузулуке главные стройплощадки – детсад и Ледовый дворец"
    assert (result.follow, result.tombstones, result.cursor) == ((), (), None)


def test_parse_not_modified_and_errors() -> None:
    source = RssSource()
    feed = Feed(name="oren", source="rss", params={"url": "http://www.oren.ru/rss"})
    request = Request(url="http://www.oren.ru/rss")
    assert source.parse(feed, request, _exchange("x", status=304)).items == ()
    with pytest.raises(ParseError, match="HTTP 404 response") as info:
        source.parse(feed, request, _exchange("x", status=404))
    assert info.value.url == "http://www.oren.ru/rss/news.xml"
    exchange = _exchange("rss-parser/unrecognized.rss", content_type="text/html")
    with pytest.raises(ParseError, match="not a feed: HTML page"):
        source.parse(feed, request, exchange)


# --------------------------------------------------------------------------- held-out cases
# Minimal documents for rules that documents from other projects' test suites
# (rome, miniflux, gofeed, kurtmckee/feedparser) broke; each names the rule.

BASE_A, BASE_B = "https://a.example/feed.xml", "https://b.example/x/feed.xml"


def _rss_items(items: str, channel: str = "") -> bytes:
    return (
        f'<rss version="2.0"><channel><title>t</title>{channel}{items}</channel></rss>'
    ).encode()


def _atom_entries(entries: str, feed: str = "") -> bytes:
    return (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:f</id>'
        f"<updated>2020-01-01T00:00:00Z</updated>{feed}{entries}</feed>"
    ).encode()


def test_ids_are_kept_as_written_whatever_url_the_feed_came_from() -> None:
    # RFC 4287 §4.2.6 (ids compare character by character); RSS 2.0 <guid>.
    rss_doc = _rss_items(
        "<item><title>a</title><guid>12345</guid></item>"
        "<item><title>b</title><guid>b3f1c2e0-9a8d</guid><link>http://e.example/b</link></item>"
    )
    atom_doc = _atom_entries(
        '<entry><title>c</title><id>42</id><link href="http://e.example/42"/>'
        "<updated>2020-01-01T00:00:00Z</updated></entry>"
    )
    for base in (BASE_A, BASE_B):
        assert [i.native_id for i in parse_document(rss_doc, base).items] == [
            "12345",
            "b3f1c2e0-9a8d",
        ]
        (entry,) = parse_document(atom_doc, base).items
        assert (entry.native_id, entry.url) == ("42", "http://e.example/42")
    # A guid that is no URL is no permalink; an explicit link stays the link.
    a, b = parse_document(rss_doc, BASE_A).items
    assert (a.url, b.url) == ("", "http://e.example/b")
    # The real Reddit Atom feed: ids are "t3_..." (they were resolved into URLs).
    reddit = parsed("rss-parser/reddit-home.rss").items
    assert reddit[0].native_id == "t3_42tizy"
    assert reddit[0].url.startswith("https://www.reddit.com/r/funny/comments/42tizy/")


def test_a_guid_that_is_an_absolute_url_is_the_permalink() -> None:
    doc = _rss_items("<item><title>a</title><guid>https://e.example/p/1</guid></item>")
    (item,) = parse_document(doc, BASE_A).items
    assert (item.native_id, item.url) == ("https://e.example/p/1", "https://e.example/p/1")
    doc = _rss_items(
        '<item><title>a</title><guid isPermaLink="false">https://e.example/p/1</guid></item>'
    )
    (item,) = parse_document(doc, BASE_A).items
    assert (item.native_id, item.url) == ("https://e.example/p/1", "")


def test_an_atom_entry_without_an_alternate_link_has_no_url() -> None:
    # RFC 4287 §4.2.6: atom:id is an identifier; the link is atom:link (§4.2.7.2).
    doc = _atom_entries(
        "<entry><title>a</title><id>urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a</id>"
        "<updated>2020-01-01T00:00:00Z</updated><summary>s</summary></entry>"
        "<entry><title>b</title><id>https://e.example/b</id>"
        "<updated>2020-01-01T00:00:00Z</updated><summary>s</summary></entry>"
        '<entry><title>c</title><id>https://e.example/c</id><link href="/c.html"/>'
        "<updated>2020-01-01T00:00:00Z</updated></entry>"
    )
    items = parse_document(doc, BASE_A).items
    assert [(i.native_id, i.url) for i in items] == [
        ("urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a", ""),
        ("https://e.example/b", ""),
        ("https://e.example/c", "https://a.example/c.html"),
    ]


def test_an_atom_entry_inherits_the_author_of_its_source_before_the_feeds() -> None:
    # RFC 4287 §4.2.1: entry authors, else atom:source authors, else the feed's.
    doc = _atom_entries(
        '<entry><title>a</title><id>urn:1</id><link href="http://b.example/a"/>'
        "<updated>2020-01-01T00:00:00Z</updated><source><id>urn:s</id><title>Blog</title>"
        "<updated>2020-01-01T00:00:00Z</updated><author><name>Original Blogger</name></author>"
        "</source></entry>"
        '<entry><title>b</title><id>urn:2</id><link href="http://b.example/b"/>'
        "<updated>2020-01-01T00:00:00Z</updated></entry>",
        feed="<author><name>Planet Admin</name></author>",
    )
    assert [i.author for i in parse_document(doc, BASE_A).items] == [
        "Original Blogger",
        "Planet Admin",
    ]


@pytest.mark.parametrize(
    ("raw_date", "expected"),
    [
        ("Sun, 17 Dec 2017 1:55 PM EST", "2017-12-17T18:55:00.000000Z"),  # 12-hour clock
        ("March 30 2020 07:02:38 PM", "2020-03-30T19:02:38.000000Z"),
        ("Mon, 02 Jan 2006 12:04:05 AM GMT", "2006-01-02T00:04:05.000000Z"),  # 12 AM is 00
        ("1520932969", "2018-03-13T09:22:49.000000Z"),  # Unix seconds, not an ordinal date
        ("2024-02-30T00:00:00Z", ""),  # no such day: no date, not March 1st
        ("2020-11-08T16:20:00-05:00Z", ""),  # two zones: unreadable, the offset not dropped
        ("2003-12-13t18:30:02z", "2003-12-13T18:30:02.000000Z"),  # RFC 3339 §5.6 NOTE
        ("2003-12-13 18:30:02 +0100", "2003-12-13T17:30:02.000000Z"),
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.000000Z"),  # a leap second
        ("2020-01-01T10:00:00.1234567+00:00", "2020-01-01T10:00:00.123456Z"),
        ("Sat, 07 Sep 2002 00:00:01 GMT", "2002-09-07T00:00:01.000000Z"),  # RFC 822 as before
    ],
)
def test_dates_are_right_or_empty_never_wrong(raw_date: str, expected: str) -> None:
    doc = _rss_items(
        f'<item><title>a</title><guid isPermaLink="false">a</guid><pubDate>{raw_date}</pubDate>'
        "</item>"
    )
    (item,) = parse_document(doc, BASE_A).items
    assert item.published_at == expected
    assert item.extra["published_raw"] == raw_date
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [{"id": "1", "content_text": "x", "date_published": raw_date}],
    }
    if _RFC3339_SHAPED.match(raw_date):  # JSON Feed dates are RFC 3339 (JSON Feed 1.1)
        (json_item,) = parse_document(json.dumps(feed).encode(), BASE_A).items
        assert json_item.published_at == expected


_RFC3339_SHAPED = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def test_a_comments_element_holding_text_is_no_url() -> None:
    # RSS 2.0 <comments>: the URL of the comments page; "Some text" is none.
    doc = _rss_items(
        "<item><title>a</title><link>https://e.example/1</link><comments>\n\tSome text\n"
        "</comments></item>"
        "<item><title>b</title><link>https://e.example/2</link><comments>/2#c</comments></item>"
    )
    a, b = parse_document(doc, BASE_A).items
    assert "comments" not in a.extra
    assert b.extra["comments"] == "https://a.example/2#c"


def test_relative_links_in_a_saved_file_resolve_against_the_feeds_home_page() -> None:
    # A file: URL is no base (RFC 3986 §5.1): the feed's own link serves, else
    # links stay as written, so a saved feed's ids do not depend on its file name.
    body = _rss_items(
        '<item><title>a</title><link>posts/1.html</link><enclosure url="a.mp3" '
        'type="audio/mpeg"/></item>'
    )
    for name in ("file:one.xml", "file:two.xml"):
        (item,) = parse_document(body, name).items
        assert (item.native_id, item.url) == ("posts/1.html", "posts/1.html")
        assert item.extra["enclosures"][0]["url"] == "a.mp3"
    homed = _rss_items(
        "<item><title>a</title><link>posts/1.html</link></item>",
        channel="<link>https://blog.example/</link>",
    )
    (item,) = parse_document(homed, "file:one.xml").items
    assert (item.native_id, item.url) == (
        "https://blog.example/posts/1.html",
        "https://blog.example/posts/1.html",
    )


def test_an_html_page_is_named_in_its_own_encoding() -> None:
    page = "<html><head><title>Frédéric</title></head><body>x</body></html>".encode("latin-1")
    with pytest.raises(ParseError, match="HTML page titled 'Frédéric'"):
        parse_document(page, BASE_A, "text/html; charset=iso-8859-1")
    meta = b'<html><head><meta charset="iso-8859-1"><title>Fr\xe9d\xe9ric</title></head></html>'
    with pytest.raises(ParseError, match="HTML page titled 'Frédéric'"):
        parse_document(meta, BASE_A)


def test_text_xml_without_charset_reads_the_declaration_without_a_warning() -> None:
    # RFC 7303 §3 and §8.5: no us-ascii default for text/xml any more.
    doc = (
        '<?xml version="1.0" encoding="utf-8"?>'
        + _rss_items('<item><title>Café</title><guid isPermaLink="false">1</guid></item>').decode()
    )
    feed = parse_document(doc.encode(), BASE_A, "text/xml")
    assert feed.items[0].title == "Café"
    assert feed.warning is None


def test_a_json_feed_without_items_is_a_malformed_feed() -> None:
    with pytest.raises(ParseError, match="malformed feed: JSON Feed has no items list"):
        parse_document(b'{"version": "https://jsonfeed.org/version/1.1"}', BASE_A)
