"""Coreutils' text formats: the only place that turns a path into a line.

GNU lines are ``DIGEST  NAME``; BSD (tagged) lines are ``TAG (NAME) = DIGEST``.
A name holding a backslash, newline or carriage return is escaped as coreutils
9 does it: the line starts with a backslash and the name has ``\\\\``, ``\\n``
and ``\\r`` in place of those bytes. With ``zero`` (``-z``) records end in NUL
and nothing is escaped. Names are written as the bytes they have on disk.
"""

from __future__ import annotations

import os


def escape_name(name: bytes) -> tuple[bytes, bool]:
    """Return ``(escaped name, whether escaping was needed)`` as coreutils does."""
    if b"\\" not in name and b"\n" not in name and b"\r" not in name:
        return name, False
    return name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r"), True


def format_gnu(digest: str, path: str, *, zero: bool = False) -> bytes:
    """``DIGEST  NAME\\n``, byte for byte as ``md5sum``/``sha256sum``/``b2sum`` print it."""
    name = os.fsencode(path)
    if zero:
        return b"%s  %s\0" % (digest.encode(), name)
    name, escaped = escape_name(name)
    return b"%s%s  %s\n" % (b"\\" if escaped else b"", digest.encode(), name)


def format_bsd(tag: str, digest: str, path: str, *, zero: bool = False) -> bytes:
    """``TAG (NAME) = DIGEST\\n``, as ``md5sum --tag`` and ``xxhsum --tag`` print it."""
    name = os.fsencode(path)
    if zero:
        return b"%s (%s) = %s\0" % (tag.encode(), name, digest.encode())
    name, escaped = escape_name(name)
    return b"%s%s (%s) = %s\n" % (b"\\" if escaped else b"", tag.encode(), name, digest.encode())


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
        if out and out[-1][0] == piece[0]:
            out[-1] = (piece[0], out[-1][1] + piece[1])
        else:
            out.append(piece)
    return out


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
