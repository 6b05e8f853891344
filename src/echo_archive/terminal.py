r"""Text from outside made inert for a terminal: control and bidi characters shown escaped.

Everything a source sent (a feed title, a URL, an error from a server) and
every file name is hostile when printed on a terminal: an ``ESC`` starts an
ANSI/ECMA-48 control sequence (``ESC[2J`` clears the screen, ``ESC[31m``
recolours, OSC 52 ``ESC]52;c;...BEL`` writes the clipboard), a C1 control
(``U+009B`` CSI) does the same on terminals that read 8-bit controls, and the
Unicode bidi controls reorder what is shown (the "Trojan Source" attack,
CVE-2021-42574). :func:`inert` turns each such character into a visible
escape (``\x1b``, ``\u202e``) so the text shows what it is and does nothing.

What is escaped (Unicode general categories, UAX #44 §5.7.1):

- ``Cc``: C0 controls U+0000–U+001F (tab and newline included), DEL U+007F,
  C1 controls U+0080–U+009F (ECMA-48 §5);
- ``Cf``: format characters, which include every bidi embedding, override
  and isolate (U+202A–U+202E, U+2066–U+2069; UAX #9 §2), the marks U+200E,
  U+200F, U+061C, zero-width spaces, U+FEFF and the tag characters; except
  ZERO WIDTH NON-JOINER/JOINER (U+200C, U+200D), which Persian, the Indic
  scripts and emoji sequences need and which reorder nothing;
- ``Zl``/``Zp``: LINE and PARAGRAPH SEPARATOR (U+2028, U+2029);
- ``Cs``: lone surrogates (a file name's undecodable bytes under Python's
  ``surrogateescape``), which no terminal encoding can write.

This module only escapes; markup languages (Rich's ``[bold]``) are the
caller's to escape (:func:`echo_archive.cli.common.safe` does both). JSON
output never goes through it: ``--json`` gives the exact strings.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Final

__all__ = ["inert", "is_inert"]

_KEEP: Final = frozenset({"\u200c", "\u200d"})
_ESCAPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


@lru_cache(maxsize=4096)
def _escaped(char: str) -> str | None:
    """The visible escape of one character, or None when it is shown as itself."""
    if char in _KEEP or unicodedata.category(char) not in _ESCAPED_CATEGORIES:
        return None
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def inert(text: str) -> str:
    r"""``text`` with every control, bidi/format character and separator shown escaped.

    ``"a\x1b[2Jb"`` (with an ESC) becomes ``"a\\x1b[2Jb"`` (a backslash, ``x1b``):
    printed, it reads ``a\x1b[2Jb`` and clears nothing. Printable text, spaces and every
    script are unchanged; the result holds no character of the categories
    listed in the module docstring. Pure function, no error raised.

    Args:
        text: any string (a title, URL, file name, server message).

    Returns:
        The inert text (the same object when nothing needed escaping).
    """
    if text.isascii() and text.isprintable():
        return text  # the common case, without a per-character walk
    parts: list[str] = []
    changed = False
    for char in text:
        escaped = _escaped(char)
        if escaped is None:
            parts.append(char)
        else:
            parts.append(escaped)
            changed = True
    return "".join(parts) if changed else text


def is_inert(text: str) -> bool:
    """True when ``text`` holds no character :func:`inert` would escape."""
    return all(_escaped(c) is None for c in text)
