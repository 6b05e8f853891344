"""An independent reader of the shared corpora: what objects each recorded body holds.

It shares no code with ``echo_archive``: containers are read with ``json``,
``yaml`` and ``ast`` from the layouts documented in ``../shared/corpora/README.md``,
feed documents with ``xml.etree.ElementTree`` (not feedparser), API bodies
with ``json``. It answers one question per object: which item should the
archive hold for it (source, native id) and what should that item say. The
fidelity test (``tests/test_fidelity.py``) compares that with what an
``echoctl import`` of the same files archived, object by object.

Identity rules are the sources' documented ones (README "Sources"): RSS/Atom
``guid``/``id``, else the link; Hacker News the item id; Reddit the fullname
(``t3_abc``); FRED ``SERIES:DATE``; GitHub ``issue:N``/``pr:N``,
``release:ID`` and event ids.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import email.utils
import gzip
import html
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.entities import html5
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import yaml


@dataclass(frozen=True)
class Expected:
    """One object a body holds, and what its archived item must say.

    Attributes:
        fmt: the format it was read from (``rss20``, ``atom``, ``hn``...).
        where: file and position, for the failure message.
        source: the ECHO source kind the item belongs to.
        native_id: the item's id under the source's rule; ``""`` when the
            object has none (matched by ``fields`` alone).
        fields: item field -> the value it must hold (compared normalized).
        removed: True when the source shows the object deleted or removed.
        feed: the feed it must be archived under, when ids are unique only
            per feed (GitHub issue numbers are per repository); ``""`` when
            the id is unique within the source.
    """

    fmt: str
    where: str
    source: str
    native_id: str
    fields: dict[str, str] = field(default_factory=dict)
    removed: bool = False
    feed: str = ""


@dataclass(frozen=True)
class Body:
    """A recorded response body: ``url``, ``status``, ``body`` (decoded bytes)."""

    url: str
    status: int
    body: bytes
    method: str = "GET"


# --------------------------------------------------------------------------- containers


def _gunzip(data: bytes) -> bytes:
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _vcr_body(body: Any) -> bytes:
    if isinstance(body, dict):
        if "base64_string" in body:
            return _gunzip(base64.b64decode(body["base64_string"]))
        body = body.get("string", "")
    if isinstance(body, bytes):
        return _gunzip(body)
    return str(body or "").encode("utf-8")


def _status(response: dict[str, Any]) -> int:
    status = response.get("status", response.get("status_code", 0))
    if isinstance(status, dict):
        status = status.get("code", 0)
    return int(status)


class _RubyLoader(yaml.SafeLoader):
    """SafeLoader plus Ruby VCR's ``!binary`` (base64) tag."""


_RubyLoader.add_constructor(
    "!binary",
    lambda loader, node: base64.b64decode(loader.construct_scalar(node)),  # type: ignore[arg-type]
)


def _interactions(doc: Any) -> Iterator[Body]:
    if isinstance(doc, list):  # ExVCR
        for x in doc:
            req, resp = x["request"], x["response"]
            yield Body(
                req["url"],
                int(resp["status_code"]),
                _vcr_body(resp.get("body")),
                req.get("method", "get").upper(),
            )
        return
    for x in doc.get("interactions") or doc.get("http_interactions") or []:
        req, resp = x["request"], x["response"]
        yield Body(
            req["uri"],
            _status(resp),
            _vcr_body(resp.get("body")),
            str(req.get("method", "GET")).upper(),
        )


def _pygithub(text: str) -> Iterator[Body]:
    lines = text.split("\n")
    i = 0
    while i + 9 < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        scheme, method, host, _port, path = lines[i : i + 5]
        status, body = lines[i + 7], lines[i + 9]
        yield Body(f"{scheme}://{host}{path}", int(status), body.encode("utf-8"), method)
        i += 10


def read_bodies(path: Path) -> Iterator[Body]:
    """Every recorded GET response of a cassette, or the file itself as one body.

    Raises:
        ValueError: the file is none of the documented layouts.
    """
    data = path.read_bytes()
    if path.suffix == ".txt":
        yield from _pygithub(data.decode("utf-8"))
        return
    if path.suffix in (".yml", ".yaml"):
        yield from _interactions(yaml.load(data, Loader=_RubyLoader))  # noqa: S506 (SafeLoader subclass)
        return
    if path.suffix == ".json" and path.parent.parent.name in ("reddit", "github", "hackernews"):
        yield from _interactions(json.loads(data))
        return
    yield Body(f"file:{path.name}", 200, _gunzip(data))


# --------------------------------------------------------------------------- text


_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def norm(text: str) -> str:
    """Text for comparison: entities decoded, tags removed, whitespace collapsed."""
    text = html.unescape(html.unescape(text))
    text = _TAG.sub(" ", text)
    return _SPACE.sub(" ", html.unescape(text)).strip()


# --------------------------------------------------------------------------- feeds

_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]*);")
_XML_ENTITIES = {"amp", "lt", "gt", "quot", "apos"}


def _xml_entities(text: str) -> str:
    """HTML named entities (``&nbsp;``) that XML does not define, as characters."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in _XML_ENTITIES:
            return m.group(0)
        char = html5.get(name + ";")
        return html.escape(char) if char else m.group(0)

    return _ENTITY.sub(one, text)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in el if _local(c.tag) == name), None)


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == name]


def _text(el: ET.Element | None) -> str:
    return "" if el is None else "".join(el.itertext())


_RDF_ABOUT = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about"
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"


def _atom_link(entry: ET.Element, base: str) -> str:
    links = _children(entry, "link")
    chosen = next(
        (x for x in links if x.get("rel", "alternate") == "alternate" and x.get("href")), None
    )
    if chosen is None:
        chosen = next((x for x in links if x.get("href")), None)
    return "" if chosen is None else urljoin(base, (chosen.get("href") or "").strip())


_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding=[\"']([A-Za-z0-9._-]+)[\"'][^>]*\?>")


def _parse_xml(data: bytes) -> ET.Element | None:
    """The document's root; HTML entities and encodings expat lacks handled as text."""
    try:
        return ET.fromstring(data)  # noqa: S314 (the shared corpora, read by a test)
    except (ET.ParseError, ValueError):
        pass
    m = _DECL.match(data.lstrip(b"\xef\xbb\xbf"))
    try:
        text = data.decode(m.group(1).decode() if m else "utf-8")
    except (LookupError, UnicodeDecodeError):
        text = data.decode("cp1252", "replace")  # undeclared Latin-1 (as a browser reads it)
    text = re.sub(r"^\ufeff?\s*<\?xml[^>]*\?>", "", text.lstrip("\ufeff"))
    try:
        return ET.fromstring(_xml_entities(text))  # noqa: S314 (as above)
    except ET.ParseError:
        return None


def _instant(raw: str) -> str | None:
    """An RFC 822/2822 or RFC 3339 date as ``YYYY-MM-DDTHH:MM:SS`` UTC; None when neither."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        try:
            when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        return None  # a zone-less date: which instant it names is a guess
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _dated(fields: dict[str, str], *raws: str) -> None:
    """Add ``published_at`` from the first non-empty raw date, when it reads unambiguously."""
    raw = next((r for r in raws if r.strip()), "")
    instant = _instant(raw)
    if instant is not None:
        fields["published_at"] = instant


def feed_objects(path: Path, data: bytes) -> tuple[str, list[Expected]] | None:
    """The entries of an RSS 0.9x/1.0/2.0, Atom or JSON Feed document, None if it is none.

    Returns:
        ``(format, objects)``; each object's fields are ``title`` and ``url``.
    """
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped[:1] == b"{":
        try:
            doc = json.loads(stripped)
        except ValueError:
            return None
        if not str(doc.get("version", "")).startswith("https://jsonfeed.org/"):
            return None
        out = []
        for n, it in enumerate(doc.get("items") or []):
            nid = str(it.get("id") or "").strip() or str(it.get("url") or "").strip()
            fields = {"title": str(it.get("title") or "")}
            if it.get("url"):
                fields["url"] = str(it["url"])
            out.append(Expected("jsonfeed", f"{path.name} items[{n}]", "rss", nid, fields))
        return "jsonfeed", out
    root = _parse_xml(data)
    if root is None:
        return None
    name = _local(root.tag)
    out = []
    if name == "feed":
        # relative links resolve against xml:base, else the feed's own page
        base = root.get(_XML_BASE, "") or _atom_link(root, "")
        for n, entry in enumerate(_children(root, "entry")):
            ebase = urljoin(base, entry.get(_XML_BASE, ""))
            link = _atom_link(entry, ebase)
            nid = _text(_child(entry, "id")).strip() or link
            fields = {"title": _text(_child(entry, "title"))}
            if link:
                fields["url"] = link
            _dated(
                fields,
                _text(_child(entry, "published")),
                _text(_child(entry, "updated")),
                _text(_child(entry, "issued")),
                _text(_child(entry, "modified")),
            )
            out.append(Expected("atom", f"{path.name} entry[{n}]", "rss", nid, fields))
        return "atom", out
    if name == "rss":
        channel = _child(root, "channel")
        items = [] if channel is None else _children(channel, "item")
        fmt = "rss2" if root.get("version", "").startswith("2") else "rss09x"
    elif name == "RDF":
        channel = _child(root, "channel")
        items = _children(root, "item") + ([] if channel is None else _children(channel, "item"))
        fmt = "rss1-rdf"
    else:
        return None
    site = _text(_child(channel, "link")).strip() if channel is not None else ""
    for n, item in enumerate(items):
        link = _text(_child(item, "link")).strip()
        if link:
            link = urljoin(site, link)
        # RSS 1.0 §5.5: an item's rdf:about is its URI
        guid = _text(_child(item, "guid")).strip() or item.get(_RDF_ABOUT, "").strip()
        fields = {"title": _text(_child(item, "title"))}
        if link:
            fields["url"] = link
        _dated(fields, _text(_child(item, "pubDate")), _text(_child(item, "date")))
        out.append(Expected(fmt, f"{path.name} item[{n}]", "rss", guid or link, fields))
    return fmt, out


# --------------------------------------------------------------------------- API bodies


def hn_objects(where: str, body: Body) -> list[Expected]:
    """A Hacker News ``/v0/item/N.json`` body: the item (``title``, ``author``, ``text``)."""
    if "/v0/item/" not in body.url or body.status != 200:
        return []
    doc = json.loads(body.body)
    if not isinstance(doc, dict) or "id" not in doc:
        return []
    removed = bool(doc.get("deleted") or doc.get("dead"))
    fields = {
        k: str(doc[src])
        for k, src in (("title", "title"), ("author", "by"), ("text", "text"))
        if src in doc
    }
    return [Expected("hn", where, "hn", str(doc["id"]), fields, removed)]


def _things(doc: Any) -> Iterator[dict[str, Any]]:
    if isinstance(doc, dict):
        if (
            doc.get("kind") in ("t1", "t3")
            and isinstance(doc.get("data"), dict)
            and "name" in doc["data"]
        ):
            yield doc
        for v in doc.values():
            yield from _things(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _things(v)


_REMOVED = ("[deleted]", "[removed]")


def reddit_objects(where: str, body: Body) -> list[Expected]:
    """Every link (``t3``) and comment (``t1``) anywhere in a Reddit JSON body."""
    if body.status != 200 or body.method != "GET":
        return []
    try:
        doc = json.loads(body.body)
    except ValueError:
        return []
    out = []
    for thing in _things(doc):
        data = thing["data"]
        fields = {"author": str(data.get("author") or "")}
        if thing["kind"] == "t3":
            fields["title"] = str(data.get("title") or "")
            text = str(data.get("selftext") or "")
        else:
            text = str(data.get("body") or "")
            fields["text"] = text
        # Gone at the source: the text replaced by Reddit's marker, or a removal
        # category. An author shown as "[deleted]" beside a live text is an account
        # deleted, not the thing: its content is still published.
        removed = text in _REMOVED or bool(data.get("removed_by_category"))
        out.append(Expected("reddit", where, "reddit", str(data["name"]), fields, removed))
    return out


def fred_objects(where: str, body: Body) -> list[Expected]:
    """Every observation of a FRED ``series/observations`` JSON body (``text`` = value)."""
    parts = urlsplit(body.url)
    if not parts.path.endswith("/series/observations") or body.status != 200:
        return []
    query = parse_qs(parts.query)
    if query.get("file_type", ["json"])[0] != "json":
        return []
    series = query["series_id"][0]
    doc = json.loads(body.body)
    return [
        Expected(
            "fred",
            f"{where} observations[{n}]",
            "fred",
            f"{series}:{o['date']}",
            {"text": o["value"]},
        )
        for n, o in enumerate(doc.get("observations") or [])
    ]


_ISSUES = re.compile(r"^/repos/[^/]+/[^/]+/issues/?$")
_RELEASES = re.compile(r"^/repos/[^/]+/[^/]+/releases/?$")
_EVENTS = re.compile(
    r"^(/repos/[^/]+/[^/]+|/users/[^/]+|/orgs/[^/]+|/networks/[^/]+/[^/]+)?/events/?$"
)


def github_objects(where: str, body: Body) -> list[Expected]:
    """Issues and pull requests, releases and events of GitHub REST list bodies.

    Objects trimmed by the recording to a bare ``{"id": N}`` (PyGithub's
    replay files of paging tests) carry no number, title or type: they
    identify nothing and are left out.
    """
    path = urlsplit(body.url).path
    if body.status != 200 or not body.body.strip():
        return []
    out = []
    if _ISSUES.match(path):
        for n, issue in enumerate(json.loads(body.body)):
            if "number" not in issue:
                continue
            # API v3 of 2012 sent every issue a pull_request object, its URLs
            # null unless the issue is a pull request
            pull = issue.get("pull_request")
            kind = "pr" if isinstance(pull, dict) and any(pull.values()) else "issue"
            fields = {"title": str(issue.get("title") or "")}
            repo = "/".join(path.split("/")[2:4]).lower()  # owner/repo are case-insensitive
            nid = f"{kind}:{issue['number']}"
            out.append(
                Expected(
                    "github", f"{where}[{n}]", "github", nid, fields, feed=f"import-github/{repo}"
                )
            )
    elif _RELEASES.match(path):
        for n, rel in enumerate(json.loads(body.body)):
            if "tag_name" not in rel:
                continue
            out.append(Expected("github", f"{where}[{n}]", "github", f"release:{rel['id']}", {}))
    elif _EVENTS.match(path):
        for n, event in enumerate(json.loads(body.body)):
            if "type" not in event:
                continue
            out.append(Expected("github", f"{where}[{n}]", "github", str(event["id"]), {}))
    return out


_VINTAGE_COLUMN = re.compile(r"^(.+)_(\d{4})(\d{2})(\d{2})$")


def fred_csv_objects(path: Path) -> list[Expected]:
    """Every non-empty cell of a FRED CSV download (``DATE``/``observation_date`` header).

    An ALFRED vintage column (``GDP_20200730``: a real date after the last
    ``_``) is series ``GDP``; its id is the observation's (``GDP:DATE``), as
    the fidelity test looks FRED vintages up without their ``@REALTIME_START``.
    """
    rows = list(csv.reader(io.StringIO(path.read_text("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    out = []
    for col, column in enumerate(header[1:], start=1):
        series = column
        if (match := _VINTAGE_COLUMN.match(column)) is not None:
            try:
                dt.date(int(match[2]), int(match[3]), int(match[4]))
                series = match[1]
            except ValueError:
                pass
        for n, row in enumerate(body):
            if len(row) > col and row[col].strip():
                where = f"{path.name} line {n + 2}"
                out.append(
                    Expected("fred-csv", where, "fred", f"{series}:{row[0]}", {"text": row[col]})
                )
    return out


#: Files the corpora README lists as "not a feed" at a feed URL although they
#: parse as XML feeds: "An 'obsolete feed, moved' notice" (README, "Things
#: that are not feeds at a feed URL").
NOT_FEEDS = frozenset({"RobertEvansHome.xml"})


def gharchive_objects(path: Path) -> list[Expected]:
    """Every event of a GH Archive hour file (gzip JSON Lines), by event id."""
    out = []
    for n, line in enumerate(gzip.decompress(path.read_bytes()).splitlines()):
        if line.strip():
            event = json.loads(line)
            out.append(
                Expected("gharchive", f"{path.name} line {n + 1}", "github", str(event["id"]), {})
            )
    return out


def corpus_objects(corpora: Path) -> Iterator[Expected]:
    """Every object of every file under ``corpora`` this reader knows a rule for."""
    for path in sorted(corpora.rglob("*")):
        if not path.is_file() or path.suffix == ".md" or path.name == "provenance.json":
            continue
        rel = path.relative_to(corpora)
        top = rel.parts[0]
        if top == "feeds":
            if path.name in NOT_FEEDS:
                continue
            found = feed_objects(path, path.read_bytes())
            if found is not None:
                yield from found[1]
            continue
        if top == "gharchive":
            yield from gharchive_objects(path)
            continue
        if top == "fred" and rel.parts[1] == "csv":
            yield from fred_csv_objects(path)
            continue
        reader = {
            "hackernews": hn_objects,
            "reddit": reddit_objects,
            "fred": fred_objects,
            "github": github_objects,
        }[top]
        for n, body in enumerate(read_bodies(path)):
            if body.method == "GET":
                yield from reader(f"{rel} #{n}", body)
