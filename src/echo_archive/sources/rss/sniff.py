"""Sniffing a feed body before parsing: gzip, byte order marks, the root element, HTML pages.

A recorded or fetched body may still be gzip-compressed, start with a byte
order mark or whitespace, or be an HTML page instead of a feed. The helpers
here look at the bytes (never at more than they need) to say what the
document is and where, for the messages of
:class:`~echo_archive.errors.ParseError`; they never parse content.
"""

from __future__ import annotations

import html
import re
import zlib

from echo_archive.errors import ParseError

_GZIP_MAGIC = b"\x1f\x8b"


_UTF8_BOM = b"\xef\xbb\xbf"


_XML_SPACE = b" \t\r\n"


_SNIFF_BYTES = 8192


_HTML_ROOTS = frozenset({"html", "head", "body", "frameset"})


_FEED_ROOTS = frozenset({"rss", "feed", "rdf", "channel"})


# The prolog before the root element: XML declaration and processing
# instructions, comments, a DOCTYPE (with an optional internal subset).
_PROLOG_RE = re.compile(
    r"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]*\[.*?\])?[^>]*>)",
    re.DOTALL | re.IGNORECASE,
)


_ROOT_RE = re.compile(r"\s*<([A-Za-z_][\w.:-]*)")


_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.DOTALL | re.IGNORECASE)


_HREF_RE = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


_MOVED_PAGE_RE = re.compile(r"\b(moved|redirect)", re.IGNORECASE)


_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)


_CHARSET_PARAM_RE = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)


def _gunzip(body: bytes, url: str, warnings: list[str], limit: int) -> bytes:
    """Decompress a gzip body (one or more members), at most ``limit`` bytes.

    A stream that ends early keeps what was decompressed and adds a warning.

    Raises:
        ParseError: the stream is corrupt or decompresses to too many bytes.
    """
    out = bytearray()
    data = body
    while data:
        inflater = zlib.decompressobj(wbits=31)
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise ParseError(
                f"corrupt gzip body: {exc}", url, f"byte {len(body) - len(data)}"
            ) from exc
        if len(out) > limit:
            raise ParseError(f"gzip body decompresses to more than {limit} bytes", url)
        if not inflater.eof:
            warnings.append(f"gzip stream truncated after {len(out)} decompressed bytes")
            break
        data = inflater.unused_data.lstrip(b"\x00")
    return bytes(out)


def _decode_for_sniffing(data: bytes) -> str:
    """Decode bytes well enough to find tag names (never fails; not for content)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace")
    if data[:1] == b"\x00" or data[1:2] == b"\x00":
        return data.decode("utf-16-be" if data[:1] == b"\x00" else "utf-16-le", "replace")
    return data.removeprefix(_UTF8_BOM).decode("utf-8", "replace")


def _line_column(text: str, offset: int) -> str:
    """Return ``"line L column C"`` (1-based) of ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line} column {column}"


def _sniff_root(text: str) -> tuple[str, int]:
    """Return the root element's lowercased local name and its offset (``("", 0)`` if none)."""
    pos = 0
    while True:
        match = _PROLOG_RE.match(text, pos)
        if match is None:
            break
        pos = match.end()
    root = _ROOT_RE.match(text, pos)
    if root is None:
        return "", pos
    name = root.group(1).rsplit(":", 1)[-1].lower()
    return name, root.start(1) - 1


def _clip(text: str, limit: int = 80) -> str:
    """Collapse whitespace, unescape entities and shorten ``text`` for a message."""
    text = " ".join(html.unescape(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _html_text(head: bytes, content_type: str) -> str:
    """The start of an HTML page as text, for a message (never fails).

    The encoding is the ``charset`` of the Content-Type, else a ``<meta>``
    charset (HTML Living Standard §13.2.3.2, the prescan, simplified), else
    UTF-8 when the bytes are UTF-8, else windows-1252 (what browsers assume).
    """
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _decode_for_sniffing(head)
    found = _CHARSET_PARAM_RE.search(content_type) or _META_CHARSET_RE.search(head[:4096])
    names = []
    if found is not None:
        name = found.group(1)
        names.append(name.decode("ascii", "replace") if isinstance(name, bytes) else name)
    for name in (*names, "utf-8"):
        try:
            return head.removeprefix(_UTF8_BOM).decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return head.decode("cp1252", "replace")


def _describe_html(head: str) -> str:
    """Describe an HTML page for a "not a feed" message (its title, a moved-to link)."""
    match = _TITLE_RE.search(head)
    title = _clip(match.group(1)) if match else ""
    what = f"HTML page titled {title!r}" if title else "HTML page"
    if _MOVED_PAGE_RE.search(head[:2048]) and len(head) < 2048:
        href = _HREF_RE.search(head)
        if href:
            what += f" pointing to {href.group(1)}"
    return what
