"""ECHO: a verifiable signal archive.

ECHO keeps exactly what each source sent (captures), derives items from them,
and seals every record into an append-only RFC 6962/9162 Merkle-tree log whose
Ed25519-signed C2SP checkpoints let anyone verify, offline, that a record was
archived and that the archive was never rewritten.

Layers (dependencies point down only): ``cli`` → ``vault`` → ``errors``.
See ``echo_archive.vault`` for the trust core and its terms.
"""

__version__ = "0.1.0"
