"""Import files: backfill the vault from recordings, GH Archive hours and feed documents.

Each file is recognized from its content and archived as a live harvest
would archive it (see :mod:`echo_archive.harvest.importer` for the formats,
the routing of recorded URLs to sources, and the meaning of ``recorded_at``
beside ``logged_at``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from echo_archive.errors import RequestError
from echo_archive.harvest.importer import DEFAULT_BATCH_SIZE, ImportReport
from echo_archive.harvest.importer import import_files as _import_files
from echo_archive.harvest.saved import HINT_SOURCES, Hints
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter

__all__ = ["DEFAULT_BATCH_SIZE", "HINT_SOURCES", "import_files"]


def import_files(
    vault: Vault | VaultWriter,
    paths: Sequence[Path],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int | None = None,
    source: str | None = None,
    series: str | None = None,
) -> ImportReport:
    """Import recordings, GH Archive hour files and saved feed documents, in order.

    A file that is not recognized or cannot be read is reported (with
    reasons) and the others carry on; ``report.all_recognized`` says whether
    every file was.

    Args:
        vault: the vault's writer: every batch commits through it (a writer
            vault works too: the import then opens its own writer).
        paths: the files, imported in this order (the log order follows it).
        batch_size: exchanges of a recording archived per commit (>= 1).
        workers: processes reading files ahead of the commits (0: none;
            None: one per CPU, at most 4).
        source: ``hn`` or ``fred``: read a file that is not a recording,
            hour file or feed as a saved body of that source (a Hacker News
            item or story list, a FRED observations body or CSV download);
            None: recognize it (:mod:`echo_archive.harvest.saved`).
        series: the FRED series of a saved observations body (implies
            ``source="fred"``); None: the file name says it.

    Returns:
        The report: one file report per path, and totals.

    Raises:
        RequestError: ``batch_size`` below 1, ``workers`` negative, ``source``
            not one of ``hn``/``fred``, or ``series`` with another source
            or not a series id.
        VaultError: the vault is open read-only.
        StorageError: the vault failed; what was committed before stays archived.
    """
    if batch_size < 1:
        raise RequestError(f"batch_size {batch_size}: must be at least 1")
    if workers is not None and workers < 0:
        raise RequestError(f"workers {workers}: must be 0 or more")
    if source is not None and source not in HINT_SOURCES:
        raise RequestError(
            f"source {source!r}: a saved body is read as one of {', '.join(HINT_SOURCES)}"
        )
    if series is not None:
        if source not in (None, "fred"):
            raise RequestError(f"series {series!r} is a FRED series; it needs source 'fred'")
        if not _SERIES_RE.match(series):
            raise RequestError(f"series {series!r}: not a FRED series id (example: GDP)")
    hints = Hints(source=source, series=series)
    return _import_files(vault, paths, batch_size=batch_size, workers=workers, hints=hints)


_SERIES_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""A FRED series id (as :mod:`echo_archive.sources.fred` checks ``params.series_id``)."""
