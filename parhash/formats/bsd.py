"""BSD (tagged) lines, as ``md5sum --tag`` and xxhsum write them: ``TAG (NAME) = DIGEST``.

The tag names the algorithm, so one file has a line per algorithm; names are
escaped as in GNU lines (see :mod:`parhash.formats.names`).
"""

from __future__ import annotations

import os
import re

from parhash.algorithms import ALGORITHMS
from parhash.formats.entries import BLANKS, Malformed, Parsed, entry_of, read_digest
from parhash.formats.names import (
    FS_ENCODING,
    FS_ERRORS,
    FS_UTF8,
    escape_name,
    escape_text,
    unescape_name,
)

# The algorithm of each tag, and how a tagged line starts: "MD5 (" or "MD5(".
TAGS = {a.tag: a.name for a in ALGORITHMS.values()}
TAG_RE = re.compile(rb"([A-Za-z0-9-]+) ?\(")


def format_bsd(tag: str, digest: str, path: str, *, zero: bool = False) -> bytes:
    """``TAG (NAME) = DIGEST\\n``, as ``md5sum --tag`` and ``xxhsum --tag`` print it."""
    name = os.fsencode(path)
    if zero:
        return b"%s (%s) = %s\0" % (tag.encode(), name, digest.encode())
    name, escaped = escape_name(name)
    return b"%s%s (%s) = %s\n" % (b"\\" if escaped else b"", tag.encode(), name, digest.encode())


def bsd_text(tag: str, digest: str, path: str, zero: bool = False) -> str:
    """:func:`format_bsd` as text; see :func:`~parhash.formats.gnu.gnu_text`."""
    if zero:
        return f"{tag} ({path}) = {digest}\0"
    if "\\" in path or "\n" in path or "\r" in path:
        if not FS_UTF8:
            return format_bsd(tag, digest, path).decode(FS_ENCODING, FS_ERRORS)
        return f"\\{tag} ({escape_text(path)}) = {digest}\n"
    return f"{tag} ({path}) = {digest}\n"


class BsdWriter:
    """``md5sum --tag`` lines, one per algorithm per file; a file that can't be read has none.

    ``MD5 (./empty) = d41d8cd98f00b204e9800998ecf8427e``
    """

    header = b""

    def __init__(self, algos: tuple[str, ...], zero: bool = False) -> None:
        self.zero = zero
        self.tags = [ALGORITHMS[a].tag for a in algos]

    def text(self, path: str, digests: list[str], size: int) -> str:
        zero = self.zero
        if len(digests) == 1:
            return bsd_text(self.tags[0], digests[0], path, zero)
        return "".join(bsd_text(tag, d, path, zero)
                       for tag, d in zip(self.tags, digests, strict=True))

    def error_text(self, path: str, error: str) -> str:
        return ""


def parse_tagged(rest: bytes, tag_algo: str, escaped: bool, algo: str | None) -> Parsed:
    """Read what follows ``TAG (`` on a tagged line (without its end): ``NAME) = DIGEST``.

    ``tag_algo`` is the tag's algorithm, ``escaped`` whether the line started
    with a backslash; with ``algo`` a line of another algorithm is malformed.
    """
    # Split from the right: the name may itself hold ") = " (a file called
    # "x) = y" gives "MD5 (x) = y) = DIGEST"), but the digest never holds ")".
    end = rest.rfind(b")")
    if end < 0:
        return Malformed("no ')' after the name")
    name: bytes | None = rest[:end]
    if escaped:
        name = unescape_name(rest[:end])
        if name is None:
            return Malformed("bad escape in name")
    assert name is not None
    tail = rest[end + 1 :].lstrip(BLANKS)
    if not tail.startswith(b"="):
        return Malformed("no '=' after the name")
    if algo is not None and algo != tag_algo:
        return Malformed(f"a {tag_algo} line, but the algorithm is {algo}")
    digest = read_digest(tail[1:].lstrip(BLANKS), tag_algo)
    if digest is None:
        return Malformed(f"not a {tag_algo} digest")
    return entry_of(name, [(tag_algo, digest)])


def read_bsd(record: bytes, algos: tuple[str, ...]) -> Parsed:
    """Read back one line :class:`BsdWriter` wrote, without its end; the tag gives the algorithm.

    A manifest's lines are read by :func:`parhash.manifest.parse_line`, which
    also takes blanks before the tag.
    """
    escaped = record.startswith(b"\\")
    tagged = TAG_RE.match(record, int(escaped))
    if tagged is None or tagged.group(1).decode("ascii") not in TAGS:
        return Malformed("no tag of a known algorithm")
    return parse_tagged(record[tagged.end() :], TAGS[tagged.group(1).decode("ascii")],
                        escaped, None)
