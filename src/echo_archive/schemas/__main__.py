"""``python -m echo_archive.schemas``: print, write or check the reference page ``docs/entries.md``.

Usage::

    python -m echo_archive.schemas                         # print the page
    python -m echo_archive.schemas --write docs/entries.md # rewrite it
    python -m echo_archive.schemas --check docs/entries.md # exit 1 when it is not current
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from echo_archive.schemas.reference import render


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status (0, or 1 when ``--check`` finds a stale page)."""
    parser = argparse.ArgumentParser(prog="python -m echo_archive.schemas", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", type=Path, metavar="PATH", help="write the page to PATH")
    group.add_argument("--check", type=Path, metavar="PATH", help="exit 1 unless PATH is current")
    args = parser.parse_args(argv)
    page = render()
    if args.write:
        args.write.write_text(page, encoding="utf-8")
    elif args.check:
        current = args.check.read_text(encoding="utf-8") if args.check.exists() else None
        if current != page:
            print(
                f"{args.check} is not current: run python -m echo_archive.schemas --write "
                f"{args.check}",
                file=sys.stderr,
            )
            return 1
    else:
        sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
