"""Ruby VCR and vcrpy YAML cassettes (``ruby-vcr``, ``vcrpy``).

The VCR interaction shape, read as the JSON cassettes are.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from echo_archive.errors import RecordingError
from echo_archive.harvest.recordings._common import Recording, _collect
from echo_archive.harvest.recordings.betamax import _vcr_exchange


def _yaml_vcr(path: Path, doc: object, fmt: str) -> Recording:
    """Read a parsed Ruby VCR (``http_interactions``) or vcrpy (``interactions``) YAML cassette."""
    key = "http_interactions" if fmt == "ruby-vcr" else "interactions"
    items = doc.get(key) if isinstance(doc, Mapping) else None
    if not isinstance(items, list):
        raise RecordingError(f"{path}: not a {fmt} cassette: no {key!r} list")
    return _collect(path, fmt, items, _vcr_exchange)
