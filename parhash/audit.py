"""Comparing a manifest with what it describes: ``audit`` (a tree) and ``diff`` (another manifest).

A manifest is read whole into a :class:`Listing`: its entries by name, and
(for ``scan --update``, :mod:`parhash.update`) every record, as bytes, in
its place, with what the writer of new lines needs to know of its format.
:func:`compare` then gives each path one :class:`Change`:

- ``unchanged``: the same path, the same digest;
- ``changed``: the same path, another digest;
- ``missing``: listed, gone, and its content at no new path (a copy that was
  there all along hides nothing: hashdeep's audit counts such a file as
  found, parhash does not);
- ``new``: not listed, including a copy of a file that is still there;
- ``moved``: listed, gone, and its digest at a new path. When several new
  paths have it, the nearest by name is taken (:func:`nearness`); the others
  are new;
- ``unreadable``: a file, or the directory it was in, could not be read.

Names are compared as paths, not as strings: ``./a``, ``a`` and ``a//b``'s
``a/b`` are one file each (:func:`posixpath.normpath`). The comparison of
two manifests reads no file; an audit hashes the tree through the scan
pipeline, so its cost is a scan's, plus a dictionary entry per listed file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import re
import stat
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any, BinaryIO, NamedTuple

from parhash.formats.entries import Entry, Malformed
from parhash.formats.names import FS_ENCODING, FS_ERRORS, escape_text
from parhash.manifest import MAX_LINE, LineParser, Overlong, _records
from parhash.results import reason

UNCHANGED = "unchanged"
CHANGED = "changed"
MISSING = "missing"
NEW = "new"
MOVED = "moved"
UNREADABLE = "unreadable"
# In the order the summary counts them.
STATUSES = (UNCHANGED, CHANGED, MISSING, NEW, MOVED, UNREADABLE)

# Exit statuses of audit and diff: nothing lost or changed but files were
# added or moved is a status of its own, so a backup job can tell "grew"
# from "damaged" (RHash users asked for as much).
EXIT_MATCH = 0
EXIT_CHANGED = 1
EXIT_USAGE = 2
EXIT_ADDED = 3


class ManifestError(Exception):
    """A manifest that can't be used: unreadable, or without a checksum line.

    Its text is one line, with the manifest's name."""


class Listed:
    """One file of a manifest: its name as written, and its digests.

    ``number`` is the line its first record starts on.
    """

    __slots__ = ("name", "digests", "number")

    def __init__(self, name: str, digests: dict[str, str], number: int) -> None:
        self.name = name
        self.digests = digests
        self.number = number


class Record(NamedTuple):
    """One record of a manifest as read with ``keep``: the file it is about,
    its bytes, and the algorithms whose digests it holds (none for a second
    line of a name already listed)."""

    entry: Listed
    raw: bytes
    algos: tuple[str, ...]


class Listing:
    """A manifest read whole: its files by key, and its form.

    ``by_key`` holds each file once, in the order first listed. ``algos``
    are the algorithms its entries hold, in order of appearance.
    ``malformed`` counts the lines that are no checksum line, ``dropped``
    those of them too long to keep (over 1 MiB), ``duplicates`` the names
    listed again for an algorithm they had. With ``keep``, ``entries``
    holds every record in its place (:class:`Record`, or the bytes of a
    comment or malformed line), so that an update leaves them as they were.
    ``header`` is a CSV manifest's first line; ``fmt``, ``separator`` and
    ``newline`` are what an update needs to write new lines like the old.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: list[Record | bytes] = []
        self.by_key: dict[str, Listed] = {}
        self.algos: list[str] = []
        self.malformed = 0
        # Lines too long to keep (over MAX_LINE, and no checksum line).
        self.dropped = 0
        self.duplicates = 0
        # Untagged lines whose algorithm was guessed from the digest's length.
        self.guessed = False
        self.header = b""
        self.zero = False
        self.fmt = "gnu"
        self.separator = b"  "
        self.newline = b"\n"

    def files(self) -> Iterator[Listed]:
        return iter(self.by_key.values())

    @property
    def style(self) -> str:
        """How the names are written: ``"/"`` absolute, ``"./"``, or ``""``
        plain; new names are written the same way."""
        for e in self.files():
            if e.name.startswith("/"):
                return "/"
            return "./" if e.name.startswith("./") else ""
        return ""


def key_of(name: str) -> str:
    """The path a manifest's name stands for, to compare names by: ``./a/`` and
    ``a`` are one. ``..`` is taken away with the component before it, as a
    path without symbolic links would have it."""
    return name if _UNTIDY.search(name) is None and name else posixpath.normpath(name)


# What normpath would change in a name: a "." or ".." component, an empty one,
# a trailing slash. Most names have none, and skip its split and join.
_UNTIDY = re.compile(r"(?:^|/)\.\.?(?:/|$)|//|/$")


def read_listing(path: str, *, algo: str | None = None, zero: bool = False,
                 keep: bool = False, stream: BinaryIO | None = None) -> Listing:
    """Read the manifest ``path`` (``-``: standard input) into a :class:`Listing`.

    Every format ``check`` reads is read here, by the same parser
    (:class:`~parhash.manifest.LineParser`), ``algo`` and ``zero`` as for
    ``check``. A name listed twice for the same algorithm is kept once (the
    first), and counted in ``duplicates``; a name given again for another
    algorithm (``--tag`` lines of several) adds to its digests. With
    ``keep``, every record is kept in ``entries``. Raises
    :class:`ManifestError` when the manifest can't be read or holds no
    checksum line; costs memory for each entry (some 300 bytes), and some
    6 us a line.
    """
    listing = Listing(path)
    for _ in read_in_steps(listing, algo=algo, zero=zero, keep=keep, stream=stream):
        pass
    return listing


# Records read by each step of read_in_steps.
STEP = 2048


def read_in_steps(listing: Listing, *, algo: str | None = None, zero: bool = False,
                  keep: bool = False, stream: BinaryIO | None = None) -> Iterator[None]:
    """:func:`read_listing` into ``listing``, a step of :data:`STEP` records at a
    time: an audit reads its manifest between the results of the scan, while
    the workers hash. The same errors, raised by the step that meets them."""
    path = listing.path
    listing.zero = zero
    shown = "standard input" if path == "-" else path
    try:
        if stream is not None:
            yield from _read_into(listing, stream, algo, keep)
        elif path == "-":
            yield from _read_into(listing, sys.stdin.buffer, algo, keep)
        else:
            with open(path, "rb") as f:
                yield from _read_into(listing, f, algo, keep)
    except OSError as e:
        raise ManifestError(f"{shown}: {reason(e)}") from None
    if not listing.by_key:
        raise ManifestError(f"{shown}: no properly formatted checksum lines found")


def _read_into(listing: Listing, stream: BinaryIO, algo: str | None, keep: bool
               ) -> Iterator[None]:
    end = b"\0" if listing.zero else b"\n"
    parser = LineParser(algo=algo, zero=listing.zero)
    held: list[bytes] = []  # records of an entry not complete yet (a CSV name with a newline)
    number = 0
    for record in _records(stream, end, MAX_LINE):
        number += 1
        if not number % STEP:
            yield
        if isinstance(record, Overlong):
            listing.malformed += bool(parser.overlong(number, bytes(record)))
            listing.dropped += 1
            continue  # its bytes are gone: an update drops it (see parhash.update)
        assert isinstance(record, bytes)
        if number == 1 and not listing.zero:
            from parhash.formats.csv import parse_csv_header

            parser.csv = parse_csv_header(record)
            if parser.csv is not None:
                listing.header = record
                listing.fmt = "csv"
                continue
        done = parser.line(number, record)
        if keep:
            held.append(record)
        if not done and parser.csv is not None and parser.partial:
            continue
        if not done:  # a comment or blank line: kept in its place
            if keep:
                listing.entries.append(b"".join(held))
                held = []
            continue
        for first, parsed in done:
            _add(listing, first, parsed, b"".join(held) if keep else b"")
            held = []
    for first, parsed in parser.finish():
        _add(listing, first, parsed, b"".join(held) if keep else b"")
    listing.guessed = listing.guessed and algo is None


def _add(listing: Listing, number: int, parsed: Entry | Malformed, raw: bytes) -> None:
    if isinstance(parsed, Malformed):
        listing.malformed += 1
        if raw:
            listing.entries.append(raw)
        return
    by_key = listing.by_key
    if not by_key:
        _learn_form(listing, raw, parsed)
    if parsed.reversed is not None:  # a GNU line: its algorithm is its length's
        listing.guessed = True
    digests = parsed.digests
    if len(digests) != 1 or digests[0][0] not in listing.algos:
        for a, _ in digests:
            if a not in listing.algos:
                listing.algos.append(a)
    name = parsed.name
    key = name if _UNTIDY.search(name) is None else key_of(name)
    known = by_key.get(key)
    if known is not None:
        fresh = [(a, d) for a, d in digests if a not in known.digests]
        if raw:
            listing.entries.append(Record(known, raw, tuple(a for a, _ in fresh)))
        if not fresh:
            listing.duplicates += 1
            return
        known.digests.update(fresh)
        return
    entry = Listed(name, dict(digests), number)
    if raw:
        listing.entries.append(Record(entry, raw, tuple(a for a, _ in digests)))
    by_key[key] = entry


def _learn_form(listing: Listing, raw: bytes, entry: Entry) -> None:
    """What the first entry's record says of the manifest's format."""
    if raw.endswith(b"\r\n"):
        listing.newline = b"\r\n"
    if listing.fmt == "csv" or not raw:
        return
    text = raw.lstrip(b" \t")
    if text.startswith(b"{"):
        listing.fmt = "json"
        return
    from parhash.formats.bsd import TAG_RE

    text = text[1:] if text.startswith(b"\\") else text
    tagged = TAG_RE.match(text)
    # A GNU line is hex digits and then two blanks, or one and a star; only
    # its reversed form (one blank) could be followed by a parenthesis.
    if tagged is not None and entry.reversed is None:
        listing.fmt = "bsd"
        return
    if entry.reversed:
        listing.separator = b" "
    else:
        digits = len(entry.digests[0][1])
        listing.separator = text[digits:digits + 2]


# --- comparing ------------------------------------------------------------------


class Found(NamedTuple):
    """A file as the other side has it: its name there, and its digests or why it
    could not be read."""

    name: str
    digests: dict[str, str]
    error: str | None = None


class Change(NamedTuple):
    """What became of one path. ``path`` is its name now (the listed name for
    ``missing``); ``source`` the listed name a ``moved`` file had. ``algo``,
    ``expected`` and ``actual`` are the digest compared, when there were one
    to compare; ``error`` is why an ``unreadable`` file could not be read."""

    path: str
    status: str
    source: str | None = None
    algo: str | None = None
    expected: str | None = None
    actual: str | None = None
    error: str | None = None


def _differs(old: dict[str, str], new: dict[str, str]) -> tuple[str | None, bool]:
    """The algorithm the comparison went by, and whether a digest differs
    (with no algorithm in common, they do)."""
    shared = None
    for a, d in old.items():
        if a in new:
            shared = shared or a
            if new[a] != d:
                return a, True
    return shared, shared is None


def nearness(old: str, new: str) -> tuple[int, int]:
    """How near a new path is to the listed path it may have moved from: the
    path components they share at the end (the file's name first), then at
    the start. Greater is nearer."""
    a, b = old.split("/"), new.split("/")
    tail = 0
    while tail < min(len(a), len(b)) and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    head = 0
    while head < min(len(a), len(b)) - tail and a[head] == b[head]:
        head += 1
    return tail, head


# A group of identical new files (empty ones, most often) larger than this is
# indexed by the files' trailing path components, and only those sharing the
# most with a gone file are scored, at most this many: scoring every pair
# would cost the group's size squared.
_SCORED = 256


def compare(listed: dict[str, Listed], found: dict[str, Found],
            unread: Iterable[tuple[str, str]] = ()) -> list[Change]:
    """What became of each path, by key: ``listed`` what a manifest says,
    ``found`` what the tree (or a newer manifest) has. ``unread`` are keys
    of directories that could not be read, with why: listed files under
    them are ``unreadable``, not ``missing``. Returns the changes in the
    byte order of their paths. Costs a dictionary lookup per path, and for
    files gone, a look at the new files of the same digest.
    """
    changes: list[Change] = []
    gone: list[str] = []
    for key, entry in listed.items():
        now = found.get(key)
        if now is None:
            gone.append(key)
            continue
        if now.error is not None:
            changes.append(Change(entry.name, UNREADABLE, error=now.error))
            continue
        algo, differs = _differs(entry.digests, now.digests)
        changes.append(Change(
            entry.name, CHANGED if differs else UNCHANGED, None, algo,
            entry.digests.get(algo or "") if algo else next(iter(entry.digests.values())),
            now.digests.get(algo or "") if algo else next(iter(now.digests.values()), None)))
    # New files, by each of their digests, for the gone ones to find.
    by_digest: dict[tuple[str, str], list[str]] = {}
    fresh: list[str] = []
    for key, now in found.items():
        if key in listed:
            continue
        if now.error is not None:
            changes.append(Change(now.name, UNREADABLE, error=now.error))
            continue
        fresh.append(key)
        for pair in now.digests.items():
            by_digest.setdefault(pair, []).append(key)
    taken: set[str] = set()
    blocked = dict(unread)
    groups: dict[tuple[str, str], _Candidates] = {}
    for key in sorted(gone, key=_sort_key):
        entry = listed[key]
        why = _under(key, blocked)
        if why is not None:
            # Its directory could not be read: it may be there still, and a
            # copy elsewhere is no move.
            changes.append(Change(entry.name, UNREADABLE, error=why))
            continue
        target = None
        for pair in entry.digests.items():
            if pair not in by_digest:
                continue
            group = groups.get(pair)
            if group is None:
                group = groups[pair] = _Candidates(by_digest[pair])
            target = group.nearest(key, taken, lambda k, e=entry: not _differs(
                e.digests, found[k].digests)[1])
            if target is not None:
                algo, digest = pair
                break
        if target is not None:
            taken.add(target)
            changes.append(Change(found[target].name, MOVED, entry.name, algo, digest, digest))
            continue
        algo, digest = next(iter(entry.digests.items()))
        changes.append(Change(entry.name, MISSING, None, algo, digest))
    for key in fresh:
        if key not in taken:
            now = found[key]
            algo, digest = next(iter(now.digests.items()))
            changes.append(Change(now.name, NEW, None, algo, None, digest))
    changes.sort(key=lambda c: _sort_key(c.path))
    return changes


def _sort_key(path: str) -> bytes:
    return path.encode(FS_ENCODING, FS_ERRORS)


class _Candidates:
    """The new paths of one digest, indexed by their trailing path components,
    so that the nearest to a gone path (:func:`nearness`) is found among those
    sharing the most of them without scoring every one."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = sorted(paths, key=_sort_key)
        self.by_tail: dict[str, list[str]] | None = None

    def nearest(self, key: str, taken: set[str], agrees: Any) -> str | None:
        """The nearest path not ``taken`` that ``agrees``; None if none is left."""
        left = [p for p in self.paths if p not in taken] if len(self.paths) <= _SCORED else None
        if left is not None:
            left = [p for p in left if agrees(p)]
            return _nearest(key, left) if left else None
        if self.by_tail is None:
            self.by_tail = {}
            for p in self.paths:
                parts = p.split("/")
                for k in range(1, len(parts) + 1):
                    self.by_tail.setdefault("/".join(parts[-k:]), []).append(p)
        parts = key.split("/")
        for k in range(len(parts), 0, -1):
            same = self.by_tail.get("/".join(parts[-k:]))
            if same:
                found = [p for p in same if p not in taken and agrees(p)]
                if found:
                    return _nearest(key, found)
        found = []
        for p in self.paths:  # nothing shares its file name: the first ones left
            if p not in taken and agrees(p):
                found.append(p)
                if len(found) == _SCORED:
                    break
        return _nearest(key, found) if found else None


def _nearest(key: str, candidates: list[str]) -> str:
    """The candidate nearest ``key`` by :func:`nearness`; the first in byte order
    among equals. Scores at most :data:`_SCORED` of them, the first in byte
    order."""
    if len(candidates) == 1:
        return candidates[0]
    candidates = sorted(candidates, key=_sort_key)[:_SCORED]
    best = candidates[0]
    score = nearness(key, best)
    for c in candidates[1:]:
        s = nearness(key, c)
        if s > score:
            best, score = c, s
    return best


def _under(key: str, blocked: dict[str, str]) -> str | None:
    """Why the directory holding ``key`` could not be read, if one of its
    ancestors could not."""
    if not blocked:
        return None
    head = posixpath.dirname(key)
    while head and head not in ("/", "."):
        why = blocked.get(head)
        if why is not None:
            return why
        head = posixpath.dirname(head)
    return None


def exit_status(counts: dict[str, int]) -> int:
    """0 when the tree matches, 1 when something changed, is missing or can't be
    read, 3 when files were only added or moved."""
    if counts[CHANGED] or counts[MISSING] or counts[UNREADABLE]:
        return EXIT_CHANGED
    if counts[NEW] or counts[MOVED]:
        return EXIT_ADDED
    return EXIT_MATCH


# --- writing --------------------------------------------------------------------


def change_text(c: Change) -> str:
    """A line for people: the status, padded, then the path (``moved OLD -> NEW``).

    A name with a newline, carriage return or backslash is escaped as md5sum
    escapes it, and the line then starts with a backslash."""
    names = [c.path] if c.source is None else [c.source, c.path]
    escaped = any(("\n" in n or "\r" in n or "\\" in n) for n in names)
    if escaped:
        names = [escape_text(n) for n in names]
    text = " -> ".join(names)
    if c.error is not None:
        text += f": {c.error}"
    start = "\\" if escaped else ""
    return f"{start}{c.status:<10} {text}\n"


def change_record(c: Change) -> dict[str, Any]:
    """A ``--json`` object: ``path``, ``status``, ``from`` (moved), ``algo``,
    ``expected``, ``actual``, and ``error`` (unreadable)."""
    from parhash.formats.jsonl import json_path

    record = json_path(c.path)
    record["status"] = c.status
    if c.source is not None:
        source = json_path(c.source)
        record["from"] = source["path"]
        if "path_b64" in source:
            record["from_b64"] = source["path_b64"]
    record["algo"] = c.algo
    record["expected"] = c.expected
    record["actual"] = c.actual
    if c.error is not None:
        record["error"] = c.error
    return record


def write_changes(changes: Iterable[Change], out: IO[bytes], *, as_json: bool = False,
                  verbose: bool = False) -> dict[str, int]:
    """Write each change (unchanged ones only if ``verbose``, or in JSON); return
    the counts by status."""
    import json

    counts = dict.fromkeys(STATUSES, 0)
    for c in changes:
        counts[c.status] += 1
        if as_json:
            # ASCII, as scan --json writes: a name's undecodable bytes are
            # \udcXX escapes, and path_b64 has them.
            out.write(json.dumps(change_record(c)).encode("ascii") + b"\n")
        elif verbose or c.status != UNCHANGED:
            out.write(change_text(c).encode(FS_ENCODING, FS_ERRORS))
    return counts


def summary_line(counts: dict[str, int], prog: str = "parhash") -> str:
    """``parhash: 7730 unchanged, 1 changed, 0 missing, 2 new, 1 moved`` (and
    unreadable ones, when there are)."""
    shown = [f"{counts[s]} {s}" for s in STATUSES if s != UNREADABLE or counts[s]]
    return f"{prog}: {', '.join(shown)}\n"


def warn_listing(listing: Listing, err: IO[str] | None = None) -> None:
    """Say on stderr what of a manifest was left aside: malformed lines,
    names listed twice."""
    err = err if err is not None else sys.stderr
    shown = "standard input" if listing.path == "-" else listing.path
    if listing.malformed:
        n = listing.malformed
        err.write(f"parhash: {shown}: {n} line{' is' if n == 1 else 's are'} improperly "
                  "formatted\n")
    if listing.duplicates:
        n = listing.duplicates
        err.write(f"parhash: {shown}: {n} name{'' if n == 1 else 's'} listed more than once; "
                  "the first line of each counts\n")


# --- diff -----------------------------------------------------------------------


def diff_manifests(old: str, new: str, *, algo: str | None = None,
                   zero: bool = False) -> tuple[list[Change], Listing, Listing]:
    """Compare two manifests, reading no file: what became of each path of
    ``old`` in ``new``. Names are compared as :func:`key_of` says, so a
    ``./`` prefix or a doubled slash doesn't count. Raises
    :class:`ManifestError` when either can't be read, or they share no
    algorithm."""
    before = read_listing(old, algo=algo, zero=zero)
    after = read_listing(new, algo=algo, zero=zero)
    if not set(before.algos) & set(after.algos):
        raise ManifestError(
            f"{old} holds {', '.join(before.algos)} digests and {new} "
            f"{', '.join(after.algos)}: there is nothing to compare (give -a/--algo if an "
            "untagged manifest's algorithm was guessed wrong)")
    found = {k: Found(e.name, e.digests) for k, e in after.by_key.items()}
    return compare(before.by_key, found), before, after


def run_diff(old: str, new: str, *, algo: str | None = None, zero: bool = False,
             as_json: bool = False, verbose: bool = False, summary: bool = True) -> int:
    """``parhash diff``: write what changed from ``old`` to ``new``; the exit status."""
    try:
        changes, before, after = diff_manifests(old, new, algo=algo, zero=zero)
    except ManifestError as e:
        sys.stderr.write(f"parhash: {e}\n")
        return EXIT_USAGE
    warn_listing(before)
    warn_listing(after)
    from parhash.console import open_output

    with open_output(None) as out:
        counts = write_changes(changes, out, as_json=as_json, verbose=verbose)
    if summary:
        sys.stderr.write(summary_line(counts))
    return exit_status(counts)



# --- audit ----------------------------------------------------------------------


class Scope:
    """Which listed files an audit of some paths answers for: those the walk of
    the same paths, with the same ``--include``/``--exclude``, would reach.
    Listed files outside are left out of the audit (and kept by an update).
    """

    def __init__(self, roots: Sequence[str], include: Sequence[str] = (),
                 exclude: Sequence[str] = ()) -> None:
        from parhash.select import GlobPredicates, Selector, has_magic

        # (absolute base, predicates, is a directory: None for a PATH that
        # is gone, which was either)
        self.roots: list[tuple[str, Any, bool | None]] = []
        for root in roots:
            select = Selector.from_patterns(include, exclude)
            try:
                is_dir = os.path.isdir(root) if os.path.lexists(root) else None
            except ValueError:
                is_dir = None
            if is_dir is None and has_magic(root):
                parts = root.split("/")
                literal = 0
                while literal < len(parts) - 1 and not has_magic(parts[literal]):
                    literal += 1
                base = "/".join(parts[:literal]) or ("/" if root.startswith("/") else ".")
                self.roots.append((absolute(base), GlobPredicates(
                    "/".join(parts[literal:]), select), True))
            else:
                self.roots.append((absolute(root), select, is_dir))

    def holds(self, key: str) -> bool:
        """Whether the file at ``key`` (an absolute path) is in scope."""
        for base, select, is_dir in self.roots:
            if is_dir is False:
                if key == base:
                    return True
                continue
            if base != "/" and not key.startswith(base + "/"):
                if is_dir is None and key == base:
                    return True  # a PATH that is gone was this file
                continue
            if select is None:
                return True
            rel = key[len(base.rstrip("/")) + 1:]
            parts = rel.split("/")
            if all(select.enter_dir("/".join(parts[:i])) for i in range(1, len(parts))) \
                    and select.keep_file(rel):
                return True
        return False


def absolute(path: str, cwd: str | None = None) -> str:
    """``path`` made absolute against ``cwd`` (default: the current directory),
    normalised (links are not resolved: a manifest names files by the paths
    it was given)."""
    path = key_of(path)
    if path.startswith("/"):
        return path
    if path == "." or path == ".." or path.startswith("../"):
        return posixpath.normpath(posixpath.join(cwd or os.getcwd(), path))
    base = cwd or os.getcwd()
    return f"{base}/{path}" if base != "/" else f"/{path}"


class Naming:
    """Names of new files, written as the manifest writes its own: relative to
    its ``base`` (with ``./`` first if its names have it), or absolute."""

    def __init__(self, base: str, style: str) -> None:
        self.cwd = os.getcwd()
        self.base = absolute(base or ".", self.cwd)
        self.style = style

    def name(self, key: str) -> str:
        if self.style == "/":
            return key
        prefix = self.base.rstrip("/") + "/"
        # Above the base: ../a, as a manifest names such a file.
        rel = key[len(prefix):] if key.startswith(prefix) else os.path.relpath(key, self.base)
        return "./" + rel if self.style == "./" and not rel.startswith("../") else rel

    def tidy_key(self, key: str) -> str:
        """The absolute path a listed name stands for, given as :func:`key_of`
        has it."""
        if key.startswith("/"):
            return key
        if key == "." or key == ".." or key.startswith("../"):
            return absolute(key, self.base)
        return f"{self.base}/{key}" if self.base != "/" else f"/{key}"

    def found(self, path: str) -> str:
        """The absolute path of a path the walk gave."""
        return absolute(path, self.cwd)


def look_up_base(manifest: str, root: str | None, relative_to_manifest: bool) -> str:
    """Where a manifest's names are looked up: ``root``, the manifest's own
    directory, or the current directory (``""``), as ``check`` does."""
    if root is not None:
        return root
    if relative_to_manifest and manifest != "-":
        return os.path.dirname(manifest)
    return ""


class Audit(NamedTuple):
    """What :func:`audit_tree` found: the changes, the manifest as read, and
    the counts of the walk (``files`` hashed, of which ``hits`` came from
    the cache, ``bytes``, ``errors``)."""

    changes: list[Change]
    listing: Listing
    files: int
    nbytes: int
    hits: int
    errors: int
    matched: frozenset[tuple[str, str]]


def audit_tree(
    manifest: str,
    paths: Sequence[str] = (),
    *,
    algo: str | None = None,
    zero: bool = False,
    root: str | None = None,
    relative_to_manifest: bool = False,
    follow: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    jobs: int | None = None,
    chunksize: int | None = None,
    block_size: int | None = None,
    cache: Any = None,
    trust_cache: bool = False,
    executor: Any = None,
    stats: Any = None,
    idle: Any = None,
    progress: Any = None,
    skip: Iterable[tuple[int, int]] = (),
    err: IO[str] | None = None,
) -> Audit:
    """Audit the tree at ``paths`` against ``manifest``: every file of either gets
    one :class:`Change`.

    Names are looked up as ``check`` looks them up (the current directory,
    ``root``, or with ``relative_to_manifest`` the manifest's directory);
    ``paths`` default to that place. The tree is hashed by the scan
    pipeline, with the manifest's algorithms, ``follow``, ``include`` and
    ``exclude`` as for a scan; listed files the walk would not reach (outside
    ``paths``, or left out by the patterns) are not part of the audit. The
    manifest itself, the cache's files and ``skip`` (devices and inodes: the
    report being written) are never part of the tree.
    ``cache`` (a :class:`~parhash.cache.Cache`, a file name, or True for the
    default file) gets the digests read; only
    with ``trust_cache`` does it answer for unchanged files, unread. Files
    that can't be read have their ``parhash: PATH: reason`` line written to
    ``err`` as they come. Raises :class:`ManifestError` for a manifest that
    can't be used; costs a scan of the tree.
    """
    from parhash.hashing import DEFAULT_BLOCK_SIZE
    from parhash.select import Selector
    from parhash.tasks import RESULTS, TASK_FILES, ScanJob, scan_tasks

    err = err if err is not None else sys.stderr
    if cache is True or isinstance(cache, str):
        from parhash.cache import Cache, chosen_path

        path = chosen_path(True, None) if cache is True else cache
        opened = Cache.open(path) if path else None
        try:
            return audit_tree(manifest, paths, algo=algo, zero=zero, root=root,
                              relative_to_manifest=relative_to_manifest, follow=follow,
                              include=include, exclude=exclude, jobs=jobs, chunksize=chunksize,
                              block_size=block_size, cache=opened, trust_cache=trust_cache,
                              executor=executor, stats=stats, idle=idle, progress=progress,
                              skip=skip, err=err)
        finally:
            if opened is not None:
                opened.close()
    listing = Listing(manifest)
    steps = read_in_steps(listing, algo=algo, zero=zero)
    # The manifest is read a step at a time between the scan's results; its
    # first entry says what to hash with and how names are written.
    while not listing.by_key and next(steps, True) is None:
        pass
    naming = Naming(look_up_base(manifest, root, relative_to_manifest), listing.style)
    roots = list(paths) or [naming.base if root is not None or relative_to_manifest else "."]
    own: set[tuple[int, int]] = set(skip)
    try:
        st = os.stat(manifest) if manifest != "-" else os.fstat(sys.stdin.fileno())
        if stat.S_ISREG(st.st_mode):
            own.add((st.st_dev, st.st_ino))
    except (OSError, ValueError, AttributeError):
        pass
    if cache is not None and cache.identity() is not None:
        own.add(cache.identity())
    algos: tuple[str, ...] = ()
    while set(listing.algos) - set(algos):
        # Again only for a manifest whose lines of another algorithm came late.
        algos = tuple(listing.algos)
        job = ScanJob(algos, block_size or DEFAULT_BLOCK_SIZE, RESULTS, follow=follow,
                      select=Selector.from_patterns(include, exclude), skip=frozenset(own),
                      files=chunksize or TASK_FILES, temporary=False)
        scanned = _Scanned()
        results = scan_tasks(roots, job, jobs=jobs, stats=stats, idle=idle, executor=executor,
                             cache=cache, lookup=trust_cache, streams=False)
        try:
            for task in results:
                scanned.add(task, naming, err)
                if progress is not None:
                    progress.update(task.files, task.nbytes, task.errors)
                next(steps, None)
        finally:
            results.close()
        for _ in steps:
            pass
    scope = Scope(roots, include, exclude)
    listed = {}
    for name, e in listing.by_key.items():  # names as key_of has them already
        key = naming.tidy_key(name)
        if scope.holds(key):
            listed[key] = e
    linked = [key for key in listed if key not in scanned.found and os.path.lexists(key)]
    if linked:
        _follow_listed(linked, scope, job, scanned, naming, err, jobs=jobs, stats=stats,
                       executor=executor, cache=cache, trust_cache=trust_cache)
    if scanned.gone:
        # A PATH, or a file, that is gone: what was listed there is missing,
        # not unreadable; anything else gone is an error.
        listed_dirs = _ancestors(listed)
        for key, r in scanned.gone:
            if key not in listed and key not in listed_dirs:
                scanned.failed(key, r, naming, err)
    return Audit(compare(listed, scanned.found, scanned.unread), listing, scanned.files,
                 scanned.nbytes, scanned.hits, scanned.errors, scanned.matched)


def _follow_listed(keys: list[str], scope: Scope, job: Any, scanned: _Scanned, naming: Naming,
                   err: IO[str], **options: Any) -> None:
    """Listed files the walk didn't reach though they are there: a symbolic
    link, or a name through one, which the walk leaves alone (unless -L).
    Names are looked up as check looks them up, so these are read through
    their links, as md5sum -c reads them; but only where the link stays in
    the tree audited (its PATHs, resolved): a link leading elsewhere is an
    error, never a read."""
    from parhash.results import Result
    from parhash.tasks import scan_tasks
    from parhash.walk import walked

    roots = []
    for base, _, _ in scope.roots:
        real = os.path.realpath(base)
        with contextlib.suppress(OSError):
            st = os.stat(real)
            roots.append((real.rstrip("/") + "/", (st.st_dev, st.st_ino)))
    inside: list[str] = []
    keyed: dict[str, list[str]] = {}  # several links may lead to one file
    for key in keys:
        real = os.path.realpath(key)
        root = next(((r, i) for r, i in roots if real.startswith(r)), None)
        if root is not None:
            # Read where the link led when it was resolved, below the root
            # and by no link: a link swapped in the meantime is not followed.
            inside.append(walked(real, len(root[0]), root[1]))
            keyed.setdefault(real, []).append(key)
        elif not os.path.isdir(key):
            scanned.failed(key, Result(key, {}, error=OUTSIDE_TREE), naming, err)
    if not inside:
        return
    results = scan_tasks((), job._replace(select=None), listed=inside, streams=False,
                         lookup=options.pop("trust_cache"), **options)
    try:
        for task in results:
            scanned.add(task, naming, err, keyed)
    finally:
        results.close()


# Why a listed name that leads out of the audited tree through a link is not read.
OUTSIDE_TREE = "a symbolic link out of the tree audited"


class _Scanned:
    """What an audit's scan of the tree gave: files by key, and their counts."""

    def __init__(self) -> None:
        self.found: dict[str, Found] = {}
        self.unread: list[tuple[str, str]] = []
        self.gone: list[tuple[str, Any]] = []
        self.files = self.nbytes = self.hits = self.errors = 0
        self.matched: frozenset[tuple[str, str]] = frozenset()

    def add(self, task: Any, naming: Naming, err: IO[str],
            keyed: dict[str, list[str]] | None = None) -> None:
        """A task's results; ``keyed`` gives the listed names a path was read for."""
        from parhash.results import Result

        r: Result
        for r in task.records:
            if keyed is None:
                key = naming.found(r.path)
            else:
                names = keyed.get(r.path)
                key = names.pop() if names else r.path
            if r.error is None:
                self.found[key] = Found(naming.name(key), r.digests)
            elif r.errno == errno.ENOENT:
                self.gone.append((key, r))
            else:
                self.failed(key, r, naming, err)
        self.files += task.files
        self.nbytes += task.nbytes
        self.hits += task.hits
        self.errors += task.errors
        if task.matched:
            self.matched |= task.matched

    def failed(self, key: str, r: Any, naming: Naming, err: IO[str]) -> None:
        from parhash.report import error_line

        name = naming.name(key)
        err.write(error_line("parhash", name, r.error))
        self.unread.append((key, r.error))
        self.found[key] = Found(name, {}, r.error)


def _ancestors(keys: Iterable[str]) -> set[str]:
    """Every directory above the paths ``keys``."""
    dirs: set[str] = set()
    for key in keys:
        head = posixpath.dirname(key)
        while head not in dirs and head not in ("", "/"):
            dirs.add(head)
            head = posixpath.dirname(head)
    return dirs


def run_audit(manifest: str, paths: Sequence[str] = (), *, as_json: bool = False,
              verbose: bool = False, progress: bool | None = None,
              summary: bool | None = True, stall_timeout: float | None = None,
              cache: str | None = None, **options: Any) -> int:
    """``parhash audit``: write each change, then the summary; the exit status."""
    from parhash.console import open_output, pipeline_stats, warn_worker_deaths
    from parhash.report import Meter, open_cache, shown, warn_quiet_failures

    stats = pipeline_stats(stall_timeout)
    show, _ = shown(progress, None)
    meter = Meter("auditing", "audited", bar=show)
    meter.stats = stats
    opened = open_cache(cache)
    skip = set()
    with contextlib.suppress(OSError, ValueError, AttributeError):
        st = os.fstat(sys.stdout.fileno())
        if stat.S_ISREG(st.st_mode):  # a report written into the tree audited
            skip.add((st.st_dev, st.st_ino))
    try:
        try:
            found = audit_tree(manifest, paths, cache=opened, stats=stats, progress=meter,
                               skip=skip, **options)
        except ManifestError as e:
            sys.stderr.write(f"parhash: {e}\n")
            return EXIT_USAGE
        finally:
            meter.close()
    finally:
        if opened is not None:
            opened.close()
    warn_listing(found.listing)
    select = None
    if options.get("include") or options.get("exclude"):
        from parhash.select import Selector

        select = Selector(options.get("include", ()), options.get("exclude", ()))
    warn_quiet_failures(select, found.matched, found.files + found.errors, "audited")
    with open_output(None) as out:
        counts = write_changes(found.changes, out, as_json=as_json, verbose=verbose)
    if stats.worker_deaths:
        warn_worker_deaths(stats)
    if summary is not False:
        tail = "" if opened is None else f"; {found.hits} from the cache"
        sys.stderr.write(summary_line(counts).rstrip("\n") + tail + "\n")
    hint_guess(found.listing, counts)
    return exit_status(counts)


def hint_guess(listing: Listing, counts: dict[str, int]) -> None:
    """When every file compared changed and the manifest's algorithm was guessed
    from its digests' length, say which others have that length."""
    if not listing.guessed or counts[UNCHANGED] or counts[CHANGED] < 2:
        return
    from parhash.results import guess_hint

    hint = guess_hint(set(listing.algos))
    if hint:
        shown = "standard input" if listing.path == "-" else listing.path
        sys.stderr.write(f"parhash: {shown}: hint: {hint}\n")
