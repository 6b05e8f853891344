"""The one redaction of credentials in URLs, headers, messages and reports.

DESIGN.md invariant 9: secrets never enter the log, and credentials are
redacted by one mechanism everywhere a URL or header is stored, logged or
printed. This module is that mechanism; it sits in the bottom layer (it
imports nothing of ECHO but :mod:`echo_archive.model`), so the fetch engine,
the replay transport, the importer of every recording format, the pipeline
that writes capture entries, the harvest and import reports, ``feeds list``
and the structured logs all call the same functions.

What is a secret:

URL userinfo
    ``user:password@`` (and a bare ``user@``) before the host is removed:
    RFC 9110 §4.2.4 deprecates userinfo in ``http(s)`` URIs and a sender must
    not put it in a request target, so nothing is lost but the credential, and
    a link resolved against the redacted URL is still a plain link.
query and fragment parameters
    The value of a parameter whose name (percent-decoded, case-insensitive)
    is in :data:`SECRET_PARAMS` becomes ``REDACTED``:
    ``token``, ``access_token``, ``refresh_token``, ``id_token``,
    ``auth_token``, ``oauth_token``, ``oauth_signature``, ``private_token``,
    ``api_key``, ``api-key``, ``apikey``, ``key``, ``password``, ``passwd``,
    ``pwd``, ``secret``, ``client_secret``, ``sig``, ``signature``, ``code``,
    ``auth``, ``session``, ``sessionid``, ``session_id``, ``jwt``,
    ``x-amz-signature``, ``x-amz-credential``, ``x-amz-security-token``,
    ``x-goog-signature``, ``x-goog-credential``. FRED takes its key as
    ``api_key``; OAuth 2.0 bearer tokens may travel as ``access_token``
    (RFC 6750 §2.3), an authorization ``code`` and the implicit grant's
    ``access_token`` in the fragment (RFC 6749 §4.1.2, §4.2.2: fragments are
    redacted like queries); GitLab uses ``private_token``; Google APIs
    ``key``; signed S3/GCS URLs ``X-Amz-Signature``/``X-Goog-Signature``.
    Pagination cursors such as ``page_token`` are *not* secrets and are kept.
headers
    The value of a header whose name (case-insensitive) is ``Authorization``,
    ``Proxy-Authorization``, ``Cookie``, ``Set-Cookie``, or contains
    ``token``, ``api-key``/``api_key``/``apikey``, ``secret``, ``password``,
    ``passwd``, ``credential``, ``session``, ``signature`` or an ``auth`` word
    (``X-API-Key``, ``X-Auth-Token``, ``Private-Token``, ``X-Auth-Key``)
    becomes ``<redacted>`` (:data:`SECRET_HEADER_PATTERN`). Every other
    header value is redacted as text (a ``Location`` or ``Link`` URL).
text
    In free text (an error message, a log field, a report line) every
    absolute URL is redacted as above, every ``name=value`` pair of a secret
    parameter name, and the credential after ``Bearer``/``Basic``.

Replay matching (:mod:`echo_archive.harvest.transport`) ignores secret
parameters and treats recorder placeholders (``MOCK_API_KEY``,
``<ACCESS_TOKEN>``, ``REDACTED``) as wildcards, so a redacted URL, or a
recording made with placeholders, still matches the live request.

All functions are pure and idempotent: redacting twice gives the same text.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, Final
from urllib.parse import unquote_plus

from echo_archive.model import Exchange

__all__ = [
    "REDACTED",
    "REDACTED_HEADER_VALUE",
    "SECRET_HEADER_PATTERN",
    "SECRET_PARAMS",
    "is_secret_header",
    "is_secret_name",
    "is_secret_param",
    "redact_event",
    "redact_exchange",
    "redact_headers",
    "redact_json",
    "redact_text",
    "redact_url",
]

SECRET_PARAMS: Final = frozenset(
    {
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "auth_token",
        "oauth_token",
        "oauth_signature",
        "private_token",
        "api_key",
        "api-key",
        "apikey",
        "key",
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "sig",
        "signature",
        "code",
        "auth",
        "session",
        "sessionid",
        "session_id",
        "jwt",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-signature",
        "x-goog-credential",
    }
)
"""Query and fragment parameter names (lowercase) whose values are credentials."""

SECRET_HEADER_PATTERN: Final = re.compile(
    r"authorization|cookie|token|api[-_]?key|secret|passw(?:or)?d|credential|session"
    r"|signature|(?:^|[-_])auth(?:[-_]|$)",
    re.IGNORECASE,
)
"""Header names (searched, case-insensitive) whose values are credentials."""

REDACTED: Final = "REDACTED"
"""What replaces a secret parameter's value (URL-safe, a replay placeholder)."""

REDACTED_HEADER_VALUE: Final = "<redacted>"
"""What replaces a secret header's value."""

_AUTHORITY_RE: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*:)?//([^/?#]*)")
_URL_RE: Final = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s<>\"'`]+")
_PARAM_NAMES: Final = "|".join(re.escape(n) for n in sorted(SECRET_PARAMS, key=len, reverse=True))
_PAIR_RE: Final = re.compile(
    rf"(?<![\w.%-])({_PARAM_NAMES})=([^&#\s\"'<>;,)\]]*)",
    re.IGNORECASE,
)
_PLACEHOLDER_VALUE: Final = re.compile(r"[A-Z_]*|<[^<>]*>")
_SCHEME_RE: Final = re.compile(
    r"(?i)\b(bearer|basic)(\s+)(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]{8,}"
)
_PREFILTER: Final = re.compile(r"[@=]|bearer|basic", re.IGNORECASE)


def is_secret_param(name: str) -> bool:
    """Return True when a query parameter named ``name`` carries a credential.

    Args:
        name: the parameter name, percent-decoded, any case.
    """
    return name.lower() in SECRET_PARAMS


def is_secret_header(name: str) -> bool:
    """Return True when a header named ``name`` carries a credential (see the module docstring).

    Args:
        name: the header name, any case (RFC 9110 §5.1: field names are case-insensitive).
    """
    return SECRET_HEADER_PATTERN.search(name) is not None


def is_secret_name(name: str) -> bool:
    """Return True when a configuration key or field named ``name`` holds a credential.

    Either a secret parameter name or a name like a secret header
    (``github_token``, ``client_secret``, ``api_key_env``...).

    Args:
        name: the key, any case.
    """
    return is_secret_param(name) or is_secret_header(name)


def _redact_params(text: str) -> str:
    """Redact the secret ``name=value`` fields of a query or fragment (other bytes kept)."""
    if "=" not in text:
        return text
    fields = text.split("&")
    changed = False
    for i, field in enumerate(fields):
        name, eq, value = field.partition("=")
        if eq and value != REDACTED and is_secret_param(unquote_plus(name)):
            fields[i] = f"{name}={REDACTED}"
            changed = True
    return "&".join(fields) if changed else text


def redact_url(url: str) -> str:
    """Return ``url`` with its credentials removed or masked (see the module docstring).

    Userinfo is removed; the values of secret query and fragment parameters
    become ``REDACTED``. Everything else is kept byte for byte (parameter
    order, percent-encoding, the rest of the fragment); a URL with nothing to
    redact is returned as given.

    Args:
        url: an absolute or relative URL (RFC 3986 §3: the authority runs from
            ``//`` to the first ``/``, ``?`` or ``#``; the query from the
            first ``?`` to the first ``#``), or any string.

    Returns:
        The URL, safe to store in an entry, a log line or a message.
    """
    if "@" not in url and "=" not in url:
        return url
    authority = _AUTHORITY_RE.match(url)
    if authority is not None and "@" in authority.group(2):
        host = authority.group(2).rpartition("@")[2]
        url = f"{authority.group(1) or ''}//{host}{url[authority.end() :]}"
    before, hash_, fragment = url.partition("#")
    path, qmark, query = before.partition("?")
    if qmark:
        path += "?" + _redact_params(query)
    if hash_:
        path += "#" + _redact_params(fragment)
    return path


def _redact_pair(match: re.Match[str]) -> str:
    """``name=REDACTED`` for a secret pair in text; a placeholder value (``KEY=VALUE``) is kept."""
    if _PLACEHOLDER_VALUE.fullmatch(match.group(2)):
        return match.group(0)
    return f"{match.group(1)}={REDACTED}"


def _redact_loose(text: str) -> str:
    """Redact secret pairs and bearer credentials in text that holds no parsable URL."""
    text = _PAIR_RE.sub(_redact_pair, text)
    return _SCHEME_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED_HEADER_VALUE}", text)


def redact_text(text: str) -> str:
    """Return free text with every credential it shows redacted.

    Every absolute URL in ``text`` goes through :func:`redact_url`; then every
    ``name=value`` of a secret parameter name (a relative URL, a form body)
    gets ``REDACTED`` as value unless the value is a placeholder (empty, all
    capitals and underscores as in ``KEY=VALUE``, or ``<TOKEN>``), and the
    credential after ``Bearer`` or ``Basic`` (RFC 6750 §2.1, RFC 7617) becomes
    ``<redacted>``.

    Args:
        text: a message, a log field, a header value.

    Returns:
        The text, unchanged when it shows no credential.
    """
    if not _PREFILTER.search(text):
        return text
    if "://" in text:
        text = _URL_RE.sub(_redact_match, text)
    return _redact_loose(text)


def _redact_match(match: re.Match[str]) -> str:
    """Redact one URL found in text; trailing sentence punctuation is not part of it."""
    found = match.group(0)
    url = found.rstrip(".,;:)]}!")
    return redact_url(url) + found[len(url) :]


def redact_headers(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Return header pairs with secret values masked and the others redacted as text.

    Args:
        headers: ``(name, value)`` pairs (request or response), in order.

    Returns:
        The pairs in order, names unchanged; a secret header's value is
        ``<redacted>`` (:func:`is_secret_header`), any other value goes
        through :func:`redact_text` (a ``Location`` or ``Link`` URL).
    """
    return tuple(
        (name, REDACTED_HEADER_VALUE if is_secret_header(name) else redact_text(value))
        for name, value in headers
    )


def redact_exchange(exchange: Exchange) -> Exchange:
    """Return ``exchange`` with its URLs and headers redacted (the body is not touched).

    Use it where an exchange enters ECHO from outside the fetch engine (a
    recording being imported), before anything reads, stores or shows it.

    Args:
        exchange: an exchange as received or recorded.

    Returns:
        A copy with ``url``, ``final_url`` and ``redirects`` through
        :func:`redact_url`, and request and response headers through
        :func:`redact_headers`.
    """
    return dataclasses.replace(
        exchange,
        url=redact_url(exchange.url),
        final_url=redact_url(exchange.final_url),
        redirects=tuple(redact_url(u) for u in exchange.redirects),
        headers=redact_headers(exchange.headers),
        request_headers=redact_headers(exchange.request_headers),
    )


def redact_json(value: Any, key: str = "") -> Any:
    """Return a JSON-ready value with every string redacted and secret-named keys masked.

    Args:
        value: a mapping, list, tuple, string or scalar (a report, feed
            parameters, a log event).
        key: the key ``value`` sits under, if any: a secret name
            (:func:`is_secret_name`) masks a string or number value whole
            (``REDACTED``).

    Returns:
        A new value of the same shape (tuples become lists); scalars other
        than strings are returned as they are.
    """
    if isinstance(value, Mapping):
        return {k: redact_json(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_json(v, key) for v in value]
    secret = key and is_secret_name(key) and value != "" and not isinstance(value, bool)
    if secret and isinstance(value, str | int | float):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_event(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> dict[str, Any]:
    """A structlog processor: redact every field of a log event (:func:`redact_json`).

    Put it before the renderer in ``structlog.configure(processors=[...])``;
    the CLI does.

    Args:
        _logger: the wrapped logger (unused).
        _method: the log method name (unused).
        event_dict: the event.

    Returns:
        The event with every string field redacted.
    """
    return {
        k: (v if k in ("timestamp", "level") else redact_json(v, k)) for k, v in event_dict.items()
    }
