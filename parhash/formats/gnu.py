"""GNU lines, as md5sum, sha256sum and b2sum write and read them: ``DIGEST  NAME``.

A line holds one digest and no algorithm; a name that needs escaping (see
:mod:`parhash.formats.names`) makes the line start with a backslash.
"""

from __future__ import annotations

import os
import re

from parhash.formats.entries import BLANKS, Malformed, Parsed, entry_of, read_digest
from parhash.formats.names import (
    FS_ENCODING,
    FS_ERRORS,
    FS_UTF8,
    escape_name,
    escape_text,
    unescape_name,
)

# Untagged lines carry no algorithm: coreutils users expect it from the length.
# b2sum's 128 digits read as sha512 and xxhsum's 32 as md5 unless --algo says.
GUESS_BY_LENGTH = {32: "md5", 40: "sha1", 56: "sha224", 64: "sha256", 96: "sha384", 128: "sha512"}

# How nearly every line of a manifest starts: "DIGEST  NAME" or "DIGEST *NAME",
# no escape, no blank before the digest. parse_line takes the name after it.
PLAIN_GNU = re.compile(rb"([0-9A-Fa-f]+) [ *]")
_HEX_RE = re.compile(rb"[0-9A-Fa-f]*")


def format_gnu(digest: str, path: str, *, zero: bool = False) -> bytes:
    """``DIGEST  NAME\\n``, byte for byte as ``md5sum``/``sha256sum``/``b2sum`` print it."""
    if zero:
        return f"{digest}  {path}\0".encode(FS_ENCODING, FS_ERRORS)
    if FS_UTF8 and "\\" not in path and "\n" not in path and "\r" not in path:
        return f"{digest}  {path}\n".encode(FS_ENCODING, FS_ERRORS)
    name, escaped = escape_name(os.fsencode(path))
    return b"%s%s  %s\n" % (b"\\" if escaped else b"", digest.encode(), name)


def gnu_text(digest: str, path: str, zero: bool = False) -> str:
    """:func:`format_gnu` as text, to be encoded with ``FS_ENCODING`` and ``FS_ERRORS``.

    Workers join a task's lines and encode them once; a name's undecodable
    bytes, held as surrogates, come back as they were.
    """
    if zero:
        return f"{digest}  {path}\0"
    if "\\" in path or "\n" in path or "\r" in path:
        if not FS_UTF8:
            return format_gnu(digest, path).decode(FS_ENCODING, FS_ERRORS)
        return f"\\{digest}  {escape_text(path)}\n"
    return f"{digest}  {path}\n"


class GnuWriter:
    """``md5sum`` lines, one algorithm only; a file that can't be read has no line.

    ``d41d8cd98f00b204e9800998ecf8427e  ./empty``
    """

    header = b""

    def __init__(self, algos: tuple[str, ...], zero: bool = False) -> None:
        self.zero = zero

    def text(self, path: str, digests: list[str], size: int) -> str:
        return gnu_text(digests[0], path, self.zero)

    def error_text(self, path: str, error: str) -> str:
        return ""


def parse_gnu(
    line: bytes, i: int, escaped: bool, algo: str | None, reversed: bool | None
) -> Parsed:
    """Read a GNU line (without its end) whose digest starts at ``i``.

    ``escaped``: whether a backslash came before the digest. ``algo`` and
    ``reversed`` are :func:`parhash.manifest.parse_line`'s.
    """
    hex_end = _HEX_RE.match(line, i)
    assert hex_end is not None  # the pattern matches the empty string
    j = hex_end.end()
    length = j - i
    if length == 0 or j + 1 >= len(line) or line[j] not in BLANKS:
        return Malformed("not a checksum line")
    guess = algo or GUESS_BY_LENGTH.get(length)
    if guess is None:
        return Malformed(f"no algorithm is guessed from {length} hex digits: give --algo")
    digest = read_digest(line[i:j], guess)
    if digest is None:
        return Malformed(f"not a {guess} digest")
    k = j + 1  # after the one blank that ends the digest
    if len(line) - k == 1 or line[k] not in b" *":
        # "DIGEST NAME": allowed only if no earlier line was "DIGEST  NAME".
        if reversed is False:
            return Malformed("a 'DIGEST NAME' line after 'DIGEST  NAME' lines")
        name, now_reversed = line[k:], True
    elif reversed:
        # After "DIGEST NAME" lines the blank or '*' belongs to the name.
        name, now_reversed = line[k:], True
    else:
        name, now_reversed = line[k + 1 :], False
    if escaped:
        unescaped = unescape_name(name)
        if unescaped is None:
            return Malformed("bad escape in name")
        name = unescaped
    return entry_of(name, [(guess, digest)], now_reversed)


def read_gnu(record: bytes, algos: tuple[str, ...]) -> Parsed:
    """Read back one line :class:`GnuWriter` wrote for ``algos``, without its end.

    A manifest's lines are read by :func:`parhash.manifest.parse_line`, which
    also takes blanks before the digest and keeps a manifest's lines to one
    form (``DIGEST  NAME`` or ``DIGEST NAME``).
    """
    escaped = record.startswith(b"\\")
    return parse_gnu(record, int(escaped), escaped, algos[0], None)
