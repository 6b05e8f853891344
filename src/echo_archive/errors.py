"""One exception hierarchy for all of ECHO.

Every error ECHO raises on purpose derives from :class:`EchoError`, so a caller
can catch the whole family in one place; the subclasses say *what* failed so a
caller (or the CLI) can react precisely. Messages always name the thing that was
wrong and where (a path, an entry index, a digest, a line of a note).

::

    EchoError
    ├── ConfigError                 echo.toml missing, unreadable or invalid
    ├── VaultError                  a vault cannot be used as asked
    │   ├── VaultExistsError        `init` over an existing vault
    │   ├── VaultNotFoundError      no vault at the path
    │   ├── VaultLockedError        another live writer holds the lock
    │   ├── VaultFormatError        a catalog that is empty, foreign, newer or older
    │   ├── StorageError            an OS or SQLite write/read failed (ENOSPC, EIO...)
    │   ├── BlobError
    │   │   ├── BlobNotFoundError   no blob with that digest
    │   │   └── BlobCorruptError    stored bytes do not hash to their address
    │   ├── EntryError              an entry is malformed or not canonical JSON
    │   │   └── EntrySchemaError    an entry's meta or blob document breaks its schema
    │   ├── LogError                log index/size out of range, log state inconsistent
    │   └── DerivedIndexError       a derived index cannot be applied or rebuilt
    ├── ProofError                  a Merkle proof does not verify (RFC 9162 §2.1.3.2, §2.1.4.2)
    │   ├── InclusionProofError
    │   ├── ConsistencyProofError
    │   └── RootMismatchError       a recomputed root differs from the expected one
    ├── NoteError                   C2SP signed-note / checkpoint problems
    │   ├── NoteFormatError         text is not a well-formed note, key or checkpoint
    │   └── SignatureError          no valid signature by the expected key
    ├── EvidenceError               an evidence bundle is malformed or does not hold
    ├── SourceError                 a source cannot be used as configured
    │   └── ParseError              a response is malformed (names the URL and position)
    ├── RecordingError              a recording (cassette, HAR, WARC...) cannot be read
    ├── InputError                  a file given to archive is missing or unreadable
    ├── NotFoundError               no item, capture or report matches a reference
    ├── AuthError                   the HTTP API's authentication and authorization
    │   ├── AuthenticationError     no credential, or one that is invalid, revoked, expired (401)
    │   └── PermissionDenied        a principal lacks the permission asked for (403)
    └── RequestError                a request to a library service is malformed (CLI exit 2)
        └── CursorError             a pagination cursor is not one this listing issued
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "AuthenticationError",
    "BlobCorruptError",
    "BlobError",
    "BlobNotFoundError",
    "ConfigError",
    "ConsistencyProofError",
    "CursorError",
    "DerivedIndexError",
    "EchoError",
    "EntryError",
    "EntrySchemaError",
    "EvidenceError",
    "InclusionProofError",
    "InputError",
    "LogError",
    "NotFoundError",
    "NoteError",
    "NoteFormatError",
    "ParseError",
    "PermissionDenied",
    "ProofError",
    "QueryError",
    "RecordingError",
    "RequestError",
    "RootMismatchError",
    "SignatureError",
    "SourceError",
    "StorageError",
    "VaultError",
    "VaultExistsError",
    "VaultFormatError",
    "VaultLockedError",
    "VaultNotFoundError",
]


class EchoError(Exception):
    """Base class of every error ECHO raises on purpose."""


class ConfigError(EchoError):
    """The configuration file (``echo.toml``) is missing, unreadable or invalid."""


class VaultError(EchoError):
    """A vault cannot be created, opened or used as asked."""


class VaultExistsError(VaultError):
    """``init`` was asked to create a vault where one (or other files) already exists."""


class VaultNotFoundError(VaultError):
    """No vault exists at the given path."""


class VaultLockedError(VaultError):
    """Another live process holds the vault's writer lock.

    Attributes:
        holder: the lock's recorded holder as a mapping (``host``, ``pid``,
            ``since``), or an empty mapping when it could not be read.

    """

    def __init__(self, message: str, holder: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.holder: dict[str, object] = dict(holder or {})


class VaultFormatError(VaultError):
    """A vault file is not of a format this version knows (empty, foreign, newer or older).

    Nothing is changed when this is raised; the message names the file, what
    was found in it, and what to do (``echoctl migrate`` for an older format).
    """


class StorageError(VaultError):
    """An operating-system or database call failed while reading or writing the vault.

    The original exception (``OSError`` with its errno, ``sqlite3.Error``) is kept
    as ``__cause__``. Nothing is acknowledged when this is raised.
    """


class BlobError(VaultError):
    """A blob cannot be stored or read."""


class BlobNotFoundError(BlobError):
    """No blob with the requested digest exists in the store."""


class BlobCorruptError(BlobError):
    """A stored blob does not decompress, or its bytes do not hash to its address."""


class EntryError(VaultError):
    """A log entry is malformed: not canonical JSON (RFC 8785), or not of the entry schema."""


class EntrySchemaError(EntryError):
    """An entry's ``meta``, blob roles or blob document break its type's schema.

    The message names the entry, its type, the schema class and version, and
    each field that is wrong (``entry 42: capture meta (HttpCapture v1): field
    status: Input should be a valid integer``); :mod:`echo_archive.schemas`.
    """


class LogError(VaultError):
    """A log request is out of range, or the stored log state is inconsistent."""


class DerivedIndexError(VaultError):
    """A derived index cannot be applied, rebuilt or compared (names the index and why)."""


class ProofError(EchoError):
    """A Merkle proof does not verify (RFC 9162 §2.1.3.2 and §2.1.4.2)."""


class InclusionProofError(ProofError):
    """An inclusion proof is malformed or does not lead to the expected root."""


class ConsistencyProofError(ProofError):
    """A consistency proof is malformed or does not link the two roots."""


class RootMismatchError(ProofError):
    """A recomputed Merkle root differs from the expected root.

    Attributes:
        expected: the root that was expected (32 bytes).
        computed: the root that was computed (32 bytes).

    """

    def __init__(self, message: str, expected: bytes = b"", computed: bytes = b"") -> None:
        super().__init__(message)
        self.expected = expected
        self.computed = computed


class NoteError(EchoError):
    """A C2SP signed note, verifier key or checkpoint is unusable."""


class NoteFormatError(NoteError):
    """Text is not a well-formed signed note, key, or checkpoint body (C2SP signed-note)."""


class SignatureError(NoteError):
    """A note carries no valid signature by the expected verifier key."""


class EvidenceError(EchoError):
    """An evidence bundle is malformed, or one of its parts does not hold."""


class SourceError(EchoError):
    """A source cannot be used as configured (a missing parameter, an unknown listing...)."""


class ParseError(SourceError):
    """A response could not be parsed into items.

    Attributes:
        url: the URL of the response.
        position: where in the body parsing failed (``"line 3 column 7"``,
            ``"byte 1024"``, ``"$.data.children[2]"``), or ``""`` when unknown.
    """

    def __init__(self, message: str, url: str = "", position: str = "") -> None:
        where = f" at {position}" if position else ""
        super().__init__(f"{url}{where}: {message}" if url else f"{message}{where}")
        self.message = message
        self.url = url
        self.position = position

    def __reduce__(self) -> tuple[type[ParseError], tuple[str, str, str]]:
        """Pickle with the message, URL and position (errors cross process boundaries)."""
        return (type(self), (self.message, self.url, self.position))


class RecordingError(EchoError):
    """A recording (cassette, HAR, WARC, replay file) is unreadable or of an unknown format.

    The message names the file and, where known, the interaction or line.
    """


class InputError(EchoError):
    """A file given to a service (``echoctl add``) is missing, not a regular file or unreadable."""


class NotFoundError(EchoError):
    """No item, capture or saved report matches the reference given (HTTP 404)."""


class AuthError(EchoError):
    """The HTTP API refused a request: authentication or authorization (:mod:`echo_archive.api`)."""


class AuthenticationError(AuthError):
    """No credential, or a credential that is malformed, unknown, revoked or expired (HTTP 401).

    The message says what was wrong with the credential, never the credential itself.
    """


class PermissionDenied(AuthError):
    """An authenticated principal lacks a permission (HTTP 403); the message names it.

    Attributes:
        permission: the permission missing, ``"kind:action"``.
        feed: the feed it was asked for, or None.
    """

    def __init__(self, message: str, permission: str = "", feed: str | None = None) -> None:
        super().__init__(message)
        self.permission = permission
        self.feed = feed


class RequestError(EchoError):
    """A request to a library service is malformed: a bad time, filter, limit or reference.

    The shells report it as bad usage (``echoctl`` exit 2; HTTP 400).
    """


class CursorError(RequestError):
    """A pagination cursor is malformed, or was issued by a listing with other filters."""


class QueryError(RequestError):
    """A full-text search query cannot be used: empty, too long, or malformed in its mini-syntax.

    The message says what is wrong and where (``echoctl`` exit 2; HTTP 400).
    """
