"""``scan --update``: bring a manifest up to date with its tree, reading only what changed.

The manifest is read whole (:func:`~parhash.audit.read_listing`, keeping each
entry's bytes) and the tree walked here, in the main process, with a
``stat`` per file. A listed file is read again only when it may have changed
since the manifest was written: its mtime or ctime is not safely older than
the manifest's own mtime (the racy-file rule of :mod:`parhash.cache`, with
its margins), or, with the cache, the cache's entry for it no longer
matches. New files are read; files gone are dropped. The files to read go
to the scan pipeline as the walk found them, so a worker opens each as a
scan would (a file swapped for a link since the walk is refused).

The new manifest keeps the old one's lines byte for byte where nothing
changed, its format, algorithms, escaping and line ends, and its order: new
lines go to their place in a manifest sorted by name, else at its end. It
replaces the old one atomically, and its mtime is set to the moment the
update began, so that the next update reads a file changed during this one.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Iterator, Sequence
from typing import IO, Any, NamedTuple

from parhash.audit import (
    Listed,
    Listing,
    ManifestError,
    Naming,
    Scope,
    read_listing,
)
from parhash.console import EXIT_FILE_ERROR, EXIT_OK, EXIT_USAGE
from parhash.formats.names import FS_ENCODING, FS_ERRORS
from parhash.results import Result

ADDED = "added"
UPDATED = "updated"
REMOVED = "removed"


class Plan(NamedTuple):
    """What the walk decided: files to read (as the walk gave them), the keys
    of every file seen, and why directories could not be read."""

    read: list[str]
    seen: set[str]
    unread: dict[str, str]
    answered: dict[str, dict[str, str]]


def is_zero(path: str) -> bool:
    """Whether the manifest's records end in NUL (``-z``): no text manifest
    holds one."""
    with open(path, "rb") as f:
        return b"\0" in f.read(1 << 16)


def plan(listing: Listing, listed_at: dict[str, Listed], roots: Sequence[str],
         naming: Naming, *, since_ns: int,
         follow: bool = False, include: Sequence[str] = (), exclude: Sequence[str] = (),
         skip: frozenset[tuple[int, int]] = frozenset(), cache: Any = None,
         err: IO[str] | None = None) -> Plan:
    """Walk ``roots`` and decide which files need reading: those not listed
    (``listed_at`` holds the entries of ``listing`` by absolute path),
    and listed ones whose times are not safely older than ``since_ns`` (the
    manifest's mtime) or whose cache entry no longer matches. Walk errors
    are written to ``err``. Costs an ``lstat`` per file, and with ``cache``
    a query per directory."""
    from parhash.cache import confirmed
    from parhash.report import error_line
    from parhash.select import Selector
    from parhash.walk import walk_paths

    err = err if err is not None else sys.stderr
    read: list[str] = []
    seen: set[str] = set()
    unread: dict[str, str] = {}
    answered: dict[str, dict[str, str]] = {}
    entries = _CacheEntries(cache, tuple(listing.algos)) if cache is not None else None
    for item in walk_paths(roots, follow=follow, select=Selector.from_patterns(include, exclude),
                           skip_pseudo=True):
        if not isinstance(item, str):
            path, why = item.path, item.error  # type: ignore[union-attr]
            err.write(error_line("parhash", path, why))
            unread[naming.found(path)] = why
            continue
        key = naming.found(item)
        try:
            st = os.stat(item) if type(item) is str else os.lstat(item)
        except OSError:
            read.append(item)  # the worker says what became of it
            seen.add(key)
            continue
        if (st.st_dev, st.st_ino) in skip:
            continue
        seen.add(key)
        listed = listed_at.get(key)
        if listed is None or not stat.S_ISREG(st.st_mode):
            read.append(item)
            continue
        verdict = entries.verdict(item, st, listed) if entries is not None else None
        if verdict is True:
            continue
        if verdict is None and confirmed(st.st_dev, st.st_mtime_ns, st.st_ctime_ns, since_ns):
            continue
        if isinstance(verdict, dict):
            answered[key] = verdict
            continue
        read.append(item)
    return Plan(read, seen, unread, answered)


class _CacheEntries:
    """The cache's word on listed files, a directory at a time: True (the
    cache holds the file unchanged with the listed digests), a dict (it holds
    it unchanged with other digests), False (it holds another version of the
    file), None (it knows nothing of it)."""

    def __init__(self, cache: Any, algos: tuple[str, ...]) -> None:
        self.spec = cache.spec(lookup=True)
        self.algos = algos
        self.directory = ""
        self.known: Any = None

    def verdict(self, path: str, st: os.stat_result, listed: Listed
                ) -> bool | dict[str, str] | None:
        from parhash.cache import fs_id, lookup

        head, name = os.path.split(path)
        if head != self.directory:
            self.directory = head
            self.known = None
            try:
                real = os.path.realpath(head or ".")
                known, _ = lookup(self.spec, os.fsencode(real), self.algos)
                if known is not None and known.fsid and known.fsid != fs_id(
                        os.statvfs(real), st.st_dev):
                    known = None  # another file system is mounted there now
                self.known = known
            except OSError:
                pass
        known = self.known
        if known is None or name not in known.index:
            return None
        i = known.hit(name, st)
        if i is None:
            return False
        digests = dict(zip(self.algos, known.digests(i), strict=True))
        if all(listed.digests.get(a) == d for a, d in digests.items()):
            return True
        return digests


class Writer:
    """New records in the manifest's own form: its format, algorithms, GNU
    separator (``  ``, `` *`` or md5 -r's one blank) and line end."""

    def __init__(self, listing: Listing) -> None:
        from parhash.formats import RecordFormat

        self.listing = listing
        algos = tuple(listing.algos)
        fmt = listing.fmt
        self.records = RecordFormat(fmt, algos, listing.zero)

    def record(self, name: str, digests: dict[str, str], size: int) -> bytes:
        listing = self.listing
        data = self.records.result(Result(name, digests, size))
        if listing.fmt == "gnu" and listing.separator != b"  ":
            start = data.index(b"  ")
            data = data[:start] + listing.separator + data[start + 2:]
        if listing.newline != b"\n" and not listing.zero:
            data = data.replace(b"\n", listing.newline)
        return data


class Update(NamedTuple):
    """What an update did: the new manifest's bytes, its changes as
    ``(status, name)``, the files read, and the files that could not be."""

    data: bytes
    changes: list[tuple[str, str]]
    kept: int
    read: int
    errors: int


def update_listing(listing: Listing, roots: Sequence[str], *, follow: bool = False,
                   include: Sequence[str] = (), exclude: Sequence[str] = (),
                   since_ns: int, skip: frozenset[tuple[int, int]] = frozenset(),
                   jobs: int | None = None, chunksize: int | None = None,
                   block_size: int | None = None, cache: Any = None, stats: Any = None,
                   progress: Any = None, err: IO[str] | None = None) -> Update:
    """The manifest ``listing`` brought up to date with the files under
    ``roots``: see the module's documentation. Listed files outside the
    roots, or left out by ``include``/``exclude``, are kept as they are; so
    are those that can't be read (their error goes to ``err``), and those
    under a directory that can't be. Costs a walk, an ``lstat`` a file, and
    the reading of new and changed files through the scan pipeline."""
    from parhash.hashing import DEFAULT_BLOCK_SIZE
    from parhash.report import error_line
    from parhash.tasks import RESULTS, TASK_FILES, ScanJob, scan_tasks

    err = err if err is not None else sys.stderr
    naming = Naming("", listing.style)
    scope = Scope(roots, include, exclude)
    listed_at = {naming.key(e.name): e for e in listing.files()}
    decided = plan(listing, listed_at, roots, naming, since_ns=since_ns, follow=follow,
                   include=include, exclude=exclude, skip=skip, cache=cache, err=err)
    algos = tuple(listing.algos)
    hashed: dict[str, Result] = {}
    errors = 0
    if decided.read:
        job = ScanJob(algos, block_size or DEFAULT_BLOCK_SIZE, RESULTS, follow=follow,
                      skip=skip, files=chunksize or TASK_FILES)
        results = scan_tasks((), job, listed=decided.read, jobs=jobs, stats=stats,
                             cache=cache, streams=False)
        try:
            for task in results:
                for r in task.records:
                    if r.error is not None:
                        err.write(error_line("parhash", r.path, r.error))
                        errors += 1
                    hashed[naming.found(r.path)] = r
                if progress is not None:
                    progress.update(task.files, task.nbytes, task.errors)
        finally:
            results.close()
    if listing.guessed:
        _confirm_guess(listing, listed_at, decided, hashed, block_size)
    writer = Writer(listing)
    changes: list[tuple[str, str]] = []
    kept = 0
    out: list[tuple[bytes, bytes] | bytes] = []  # (name, records) of files; bytes of other lines
    for entry in listing.entries:
        if not isinstance(entry, Listed):
            out.append(entry)
            continue
        key = naming.key(entry.name)
        old = b"".join(entry.records)
        if not scope.holds(key):
            out.append((_sort_key(entry.name), old))
            continue
        r = hashed.get(key)
        digests = decided.answered.get(key)
        if r is not None and r.error is None:
            digests = r.digests
        if key not in decided.seen and _blocked(key, decided.unread) is None:
            changes.append((REMOVED, entry.name))
            continue
        if digests is not None and any(entry.digests.get(a) != digests[a] for a in algos):
            changes.append((UPDATED, entry.name))
            size = r.size if r is not None else -1
            out.append((_sort_key(entry.name), writer.record(entry.name, digests, size)))
            continue
        kept += 1
        out.append((_sort_key(entry.name), old))
    added: list[tuple[bytes, bytes]] = []
    for key, r in hashed.items():
        if key in listed_at or r.error is not None:
            continue
        name = naming.name(key)
        changes.append((ADDED, name))
        added.append((_sort_key(name), writer.record(name, r.digests, r.size)))
    added.sort()
    data = listing.header + b"".join(_merged(out, added, _is_sorted(out)))
    changes.sort(key=lambda c: _sort_key(c[1]))
    return Update(data, changes, kept, len(hashed), errors)


class GuessedWrong(Exception):
    """An untagged manifest whose algorithm, guessed from its digests' length,
    no listed file confirms: updating it would replace every line."""


def _confirm_guess(listing: Listing, listed_at: dict[str, Listed], decided: Plan,
                   hashed: dict[str, Result], block_size: int | None) -> None:
    """Make sure the algorithm guessed for untagged lines is theirs: a file read
    again with its listed digest confirms it, else up to three files kept
    are read to see. b2sum's lines and sha512's have one length, xxhsum -H2's
    and md5's another: a wrong guess would rewrite every line read."""
    from parhash.hashing import DEFAULT_BLOCK_SIZE, hash_file

    algos = listing.algos
    for key, r in hashed.items():
        entry = listed_at.get(key)
        if entry is not None and r.error is None and all(
                entry.digests.get(a) == r.digests[a] for a in algos):
            return
    kept = [key for key in decided.seen if key in listed_at and key not in hashed
            and key not in decided.answered]
    tried = False
    for key in sorted(kept)[:3]:
        r = hash_file(key, tuple(algos), block_size=block_size or DEFAULT_BLOCK_SIZE)
        if r.error is None:
            tried = True
            if all(listed_at[key].digests.get(a) == r.digests[a] for a in algos):
                return
    if tried or any(key in listed_at and r.error is None for key, r in hashed.items()):
        raise GuessedWrong(
            f"{listing.path}: no file has its listed {', '.join(algos)} digest: the lines' "
            "algorithm may be another of that length; give it with -a")


def _sort_key(name: str) -> bytes:
    return name.encode(FS_ENCODING, FS_ERRORS)


def _blocked(key: str, unread: dict[str, str]) -> str | None:
    from parhash.audit import _under

    return unread.get(key) or _under(key, unread)


def _is_sorted(out: list[tuple[bytes, bytes] | bytes]) -> bool:
    names = [item[0] for item in out if isinstance(item, tuple)]
    return all(a <= b for a, b in zip(names, names[1:], strict=False))


def _merged(out: list[tuple[bytes, bytes] | bytes], added: list[tuple[bytes, bytes]],
            in_order: bool) -> Iterator[bytes]:
    """The manifest's lines with the new ones: each in its place by name when
    the manifest is sorted, else all at the end."""
    i = 0
    for item in out:
        if isinstance(item, tuple):
            while in_order and i < len(added) and added[i][0] < item[0]:
                yield added[i][1]
                i += 1
            yield item[1]
        else:
            yield item
    for _, record in added[i:]:
        yield record


def run_update(manifest: str, paths: Sequence[str] = (), *, algos: tuple[str, ...] | None,
               zero: bool = False, follow: bool = False, include: Sequence[str] = (),
               exclude: Sequence[str] = (), jobs: int | None = None,
               chunksize: int | None = None, block_size: int | None = None,
               stall_timeout: float | None = None, cache: str | None = None,
               progress: bool | None = None, summary: bool | None = None,
               quiet: bool = False) -> int:
    """``parhash scan --update``: update ``manifest`` in place; the exit status.

    ``algos``, when given, must be the manifest's. Prints each change on
    stderr (``added: NAME``, ``updated: NAME``, ``removed: NAME``) unless
    ``quiet``, and a summary line. Returns 0, 1 when a file could not be
    read (its line is kept), 2 when the manifest can't be read or updated
    as asked."""
    from parhash.console import atomic_file, pipeline_stats, warn_worker_deaths
    from parhash.report import Meter, error_line, open_cache, shown

    started = time.time_ns()
    hint = algos[0] if algos and len(algos) == 1 else None
    try:
        st = os.stat(manifest)
        zero = zero or is_zero(manifest)
        try:
            listing = read_listing(manifest, algo=hint, zero=zero, keep=True)
        except ManifestError:
            if hint is None:
                raise
            # Lines of another algorithm than -a's: say which.
            listing = read_listing(manifest, zero=zero, keep=True)
    except OSError as e:
        sys.stderr.write(error_line("parhash", manifest, e.strerror or str(e)))
        return EXIT_USAGE
    except ManifestError as e:
        sys.stderr.write(f"parhash: {e}\n")
        return EXIT_USAGE
    if algos is not None and set(algos) != set(listing.algos):
        sys.stderr.write(f"parhash: {manifest} holds {', '.join(listing.algos)} digests, not "
                         f"{', '.join(algos)}\n")
        return EXIT_USAGE
    if listing.malformed:
        sys.stderr.write(f"parhash: {manifest}: {listing.malformed} improperly formatted "
                         "line(s) kept as they are\n")
    stats = pipeline_stats(stall_timeout)
    show, _ = shown(progress, summary)
    meter = Meter("hashing", "hashed", bar=show and not quiet)
    meter.stats = stats
    opened = open_cache(cache)
    skip = {(st.st_dev, st.st_ino)}
    if opened is not None and opened.identity() is not None:
        skip.add(opened.identity())
    try:
        done = update_listing(
            listing, list(paths) or ["."], follow=follow, include=include, exclude=exclude,
            since_ns=st.st_mtime_ns, skip=frozenset(skip), jobs=jobs, chunksize=chunksize,
            block_size=block_size, cache=opened, stats=stats, progress=meter)
    except GuessedWrong as e:
        sys.stderr.write(f"parhash: {e}\n")
        return EXIT_USAGE
    finally:
        meter.close()
        if opened is not None:
            opened.close()
    with atomic_file(manifest, mtime_ns=started) as out:
        out.write(done.data)
    if not quiet:
        sys.stderr.write("".join(f"{status}: {_shown(name)}\n" for status, name in done.changes))
    if stats.worker_deaths:
        warn_worker_deaths(stats)
    if not quiet and summary is not False:
        counts = {s: sum(1 for c, _ in done.changes if c == s) for s in (ADDED, UPDATED, REMOVED)}
        sys.stderr.write(f"parhash: {manifest}: {counts[ADDED]} added, {counts[UPDATED]} "
                         f"updated, {counts[REMOVED]} removed, {done.kept} kept; "
                         f"{done.read} file{'' if done.read == 1 else 's'} read\n")
    return EXIT_FILE_ERROR if done.errors or stats.worker_deaths else EXIT_OK


def _shown(name: str) -> str:
    from parhash.formats.names import escape_text

    if "\n" in name or "\r" in name or "\\" in name:
        return "\\" + escape_text(name)
    return name
