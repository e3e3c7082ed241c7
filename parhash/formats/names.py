"""File names in coreutils' text: escaped in checksum lines, quoted in diagnostics.

Names are written as the bytes they have on disk. A name holding a backslash,
newline or carriage return is escaped as coreutils 9 does it: the line starts
with a backslash and the name has ``\\\\``, ``\\n`` and ``\\r`` in place of
those bytes. With ``zero`` (``-z``) records end in NUL and nothing is escaped.
"""

from __future__ import annotations

import codecs
import itertools
import os
import re
import sys

# What os.fsencode does, without its checks: names are encoded once per line.
FS_ENCODING = sys.getfilesystemencoding()
FS_ERRORS = sys.getfilesystemencodeerrors()
# In UTF-8 a name holds a backslash, CR or LF byte exactly when its decoded
# text holds that character (bytes that are not UTF-8 decode to surrogates):
# the text can be searched instead of the bytes.
FS_UTF8 = codecs.lookup(FS_ENCODING).name == "utf-8"

_ESCAPED_NAME = re.compile(rb"(?:[^\\\0]|\\[nr\\])*")
_UNESCAPE = {b"\\\\": b"\\", b"\\n": b"\n", b"\\r": b"\r"}


def escape_name(name: bytes) -> tuple[bytes, bool]:
    """Return ``(escaped name, whether escaping was needed)`` as coreutils does."""
    if b"\\" not in name and b"\n" not in name and b"\r" not in name:
        return name, False
    return name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r"), True


def escape_text(path: str) -> str:
    """:func:`escape_name` on a name as text, for a UTF-8 file system (see ``FS_UTF8``)."""
    return path.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def unescape_name(name: bytes) -> bytes | None:
    """Undo :func:`escape_name`; ``None`` for an escape coreutils would reject."""
    if b"\\" not in name:
        return None if b"\0" in name else name
    if _ESCAPED_NAME.fullmatch(name) is None:
        return None  # a lone or trailing backslash, another escape, or a NUL
    return re.sub(rb"\\[nr\\]", lambda m: _UNESCAPE[m.group()], name)


def format_check_line(name: str, outcome: str) -> bytes:
    """``NAME: OK``, as ``md5sum -c`` of coreutils 9.1 prints it.

    It escapes a name only when it holds a newline (the one case where a
    line would split): then the line starts with a backslash and backslash,
    newline and carriage return are escaped as in :func:`escape_name`. A name
    with only a backslash or a carriage return is printed as it is.
    """
    if not FS_UTF8 or "\n" in name:
        raw = os.fsencode(name)
        if b"\n" not in raw:
            return b"%s: %s\n" % (raw, outcome.encode())
        return b"\\%s: %s\n" % (escape_name(raw)[0], outcome.encode())
    return f"{name}: {outcome}\n".encode(FS_ENCODING, FS_ERRORS)


# Characters after which a shell would see more than a plain word, as in
# gnulib's quotearg (shell-escape style), which coreutils uses for file names
# in diagnostics.
_SHELL_SPECIAL = frozenset(" !\"$&()*;<=>?[\\]^`|")
_C_ESCAPES = {7: "a", 8: "b", 9: "t", 10: "n", 11: "v", 12: "f", 13: "r"}


def _pieces(name: bytes) -> list[tuple[bool, str]]:
    """Split a name into (printable?, text) runs; unprintable text is $'..' escaped."""
    out: list[tuple[bool, str]] = []
    text = name.decode("utf-8", "surrogateescape")
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8
            piece = (False, "\\%03o" % (code - 0xDC00))
        elif code < 0x80 and not ch.isprintable():
            piece = (False, "\\" + _C_ESCAPES[code] if code in _C_ESCAPES else "\\%03o" % code)
        elif not ch.isprintable():
            piece = (False, "".join("\\%03o" % b for b in ch.encode()))
        else:
            piece = (True, ch)
        out.append(piece)
    # Runs are joined once, not grown a character at a time: a name can be
    # megabytes long.
    return [(ok, "".join(t for _, t in run)) for ok, run in itertools.groupby(out, key=_first)]


def _first(piece: tuple[bool, str]) -> bool:
    return piece[0]


def quote_name(path: str, *, colon: bool = True) -> str:
    """Quote a path for a diagnostic the way coreutils does (``'a b'``, ``'n'$'\\n''l'``).

    With ``colon`` (coreutils' ``quotef``, for ``PROG: NAME: reason``) a name
    holding ``:`` is quoted too, so the message still splits at its colons;
    without it this is ``quoteaf``, as in ``cannot open NAME for reading``.
    """
    name = os.fsencode(path)
    if not name:
        return "''"
    pieces = _pieces(name)
    text = name.decode("utf-8", "surrogateescape")
    printable = len(pieces) == 1 and pieces[0][0]
    special = (
        any(c in _SHELL_SPECIAL for c in text)
        or (colon and ":" in text)
        or text[0] in "#~"
        or text in ("{", "}")
        or "'" in text
    )
    if printable and not special:
        return text
    if printable and "'" in text and not any(c in text for c in '"$`\\!'):
        return '"' + text + '"'
    out = []
    for ok, piece in pieces:
        if ok:
            out.append("'" + piece.replace("'", "'\\''") + "'")
        else:
            out.append("$'" + piece + "'")
    if not pieces[0][0]:
        out.insert(0, "''")
    return "".join(out)
