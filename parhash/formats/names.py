"""File names in coreutils' text: escaped in checksum lines, quoted in diagnostics.

Names are written as the bytes they have on disk. A name holding a backslash,
newline or carriage return is escaped as coreutils 9 does it: the line starts
with a backslash and the name has ``\\\\``, ``\\n`` and ``\\r`` in place of
those bytes. With ``zero`` (``-z``) records end in NUL and nothing is escaped.
"""

from __future__ import annotations

import codecs
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


# Names made of these only are printed as they are (or between single
# quotes) in every locale: the common case, decided without loading the
# locale's rules (quoting.py).
_PLAIN = re.compile(r"[-\w%+,./@\]]+", re.ASCII)
_PLAIN_WITH_COLON = re.compile(r"[-\w%+,./:@\]]+", re.ASCII)


def quote_name(path: str, *, always: bool = False) -> str:
    """Quote a path for a diagnostic as coreutils 9.1 does (``'a b'``, ``'n'$'\\n''l'``).

    By default this is coreutils' ``quotef``, for ``PROG: NAME: reason``: a
    name that a shell would read as one word is left bare, unless it holds
    ``:``, so that the message still splits at its colons. With ``always``
    it is ``quoteaf``, as in ``cannot open 'NAME' for reading``: quoted
    even when plain. Which characters are printable depends on the locale,
    as in coreutils: see :mod:`parhash.formats.quoting`.
    """
    if always:
        if _PLAIN_WITH_COLON.fullmatch(path):
            return f"'{path}'"
    elif _PLAIN.fullmatch(path):
        return path
    from parhash.formats.quoting import quote

    return os.fsdecode(quote(os.fsencode(path), always=always))
