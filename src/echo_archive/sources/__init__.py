"""Sources: one module per source kind; build requests, parse responses. No I/O.

source
    A kind of signal: ``rss`` (RSS 0.9x/1.0/2.0, Atom, JSON Feed), ``hn``
    (Hacker News Firebase API), ``reddit``, ``github``, ``fred``.
feed
    One configured stream of a source (a feed URL, a subreddit listing, a
    repository's events, a FRED series), named in ``echo.toml``.

Each source module turns a :class:`~echo_archive.sources.base.Feed` into
:class:`~echo_archive.model.Request` objects (``plan``) and each received
:class:`~echo_archive.model.Exchange` into a
:class:`~echo_archive.model.ParseResult` (``parse``): items, further
requests (pagination, item lists, comment trees) and tombstones. Malformed
input raises :class:`~echo_archive.errors.ParseError` naming the URL and the
position; it never takes down other feeds (DESIGN.md invariant 7).
"""
