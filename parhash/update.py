"""``scan --update``: bring a manifest up to date with its tree, reading only what changed.

The manifest is read whole (:func:`~parhash.audit.read_listing`, keeping
every record) and the tree walked here, in the main process, with an
``lstat`` per file and per directory. A listed file is read again only when
it may have changed since the manifest was written: its mtime or ctime is
not safely older than the manifest's own mtime (the racy-file rule of
:mod:`parhash.cache`, with its margins), a directory above it was renamed
or had its metadata changed since (its ctime is new but its mtime is not:
entries added to a directory change both), or, with the cache, the cache's
entry for it no longer matches. New files are read; files gone are dropped.
The files to read go to the scan pipeline as the walk found them, which
opens each as a scan would (a file swapped for a link since the walk is
refused).

The new manifest keeps the old one's records byte for byte where nothing
changed, each in its place; its format, algorithms, escaping and line ends;
and its order: new lines go to their place in a manifest sorted by name,
else at its end. It replaces the old one atomically. Its mtime is set to
the moment the update began when the update saw every listed file (no
PATH, pattern or error left one out), so that the next update reads a file
changed during this one; otherwise the old mtime is kept, and files left
out are still judged against it next time.
"""

from __future__ import annotations

import errno
import heapq
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
    Record,
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
    """What the walk decided: files to read (as the walk gave them), the size
    of every file seen by key, why paths could not be walked, the digests
    the cache gave for files it holds unchanged, and a few kept files read
    to confirm a guessed algorithm."""

    read: list[str]
    seen: dict[str, int]
    unread: dict[str, str]
    answered: dict[str, dict[str, str]]
    samples: list[str]


def is_zero(path: str) -> bool:
    """Whether the manifest's records end in NUL (``-z``): more of its first
    records read as checksum lines split at NUL than at newline (a name may
    hold a newline, a garbage line a NUL)."""
    from parhash.formats.entries import Entry
    from parhash.manifest import parse_line

    with open(path, "rb") as f:
        start = f.read(1 << 16)
    if b"\0" not in start:
        return False

    def read(end: bytes, zero: bool) -> int:
        records = start.split(end)[:-1][:256]
        return sum(type(parse_line(r + end, zero=zero)) is Entry for r in records)

    return read(b"\0", True) > read(b"\n", False)


class _Directories:
    """Whether a directory, or one above it up to the walk's root, was renamed
    (or had its metadata changed) since the manifest: its ctime is not
    safely older than the manifest's mtime while its mtime is. A file moved
    in with its directory keeps its own times."""

    def __init__(self, since_ns: int) -> None:
        self.since_ns = since_ns
        self.known: dict[str, bool] = {}

    def moved(self, directory: str, top: str) -> bool:
        found = self.known.get(directory)
        if found is not None:
            return found
        from parhash.cache import margin

        try:
            st = os.lstat(directory or ".")
            edge = self.since_ns - margin(st.st_dev, st.st_mtime_ns, st.st_ctime_ns)
            found = st.st_ctime_ns >= edge and st.st_mtime_ns < edge
        except OSError:
            found = True
        if not found and directory not in (top, "", "/", ".") and len(directory) > len(top):
            found = self.moved(os.path.dirname(directory), top)
        self.known[directory] = found
        return found


def plan(listed_at: dict[str, Listed], roots: Sequence[str], naming: Naming, *,
         since_ns: int, follow: bool = False, include: Sequence[str] = (),
         exclude: Sequence[str] = (), skip: frozenset[tuple[int, int]] = frozenset(),
         cache: Any = None, algos: tuple[str, ...] = (), samples: int = 0,
         err: IO[str] | None = None) -> Plan:
    """Walk ``roots`` and decide which files need reading: those not listed
    (``listed_at`` holds the listed entries by absolute path), and listed
    ones that may have changed since ``since_ns`` (see the module's
    documentation). Walk errors are written to ``err``. With ``samples``,
    up to that many listed files that need no reading are chosen to confirm
    a guessed algorithm if need be (see :func:`_confirm_guess`): the
    smallest, and the next ones if no larger than :data:`SAMPLE_BYTES`.
    Costs an ``lstat`` per file and directory, and with ``cache`` a query
    per directory."""
    from parhash.cache import confirmed
    from parhash.report import error_line
    from parhash.select import Selector
    from parhash.walk import walk_paths

    err = err if err is not None else sys.stderr
    read: list[str] = []
    seen: dict[str, int] = {}
    unread: dict[str, str] = {}
    answered: dict[str, dict[str, str]] = {}
    sampled: list[tuple[int, int, str]] = []
    entries = _CacheEntries(cache, algos) if cache is not None else None
    directories = _Directories(since_ns)
    for root in roots:
        # Where the files' directories stop counting: the walk's names start so.
        top = (root.rstrip("/") or "/") if os.path.isdir(root) else os.path.dirname(root)
        for item in walk_paths((root,), follow=follow,
                               select=Selector.from_patterns(include, exclude),
                               skip_pseudo=True):
            if not isinstance(item, str):
                path, why = item.path, item.error  # type: ignore[union-attr]
                key = naming.found(path)
                if item.errno == errno.ENOENT and key in listed_at:  # type: ignore[union-attr]
                    continue  # a listed file named as PATH, gone: dropped
                err.write(error_line("parhash", path, why))
                unread[key] = why
                continue
            key = naming.found(item)
            try:
                st = os.stat(item) if type(item) is str else os.lstat(item)
            except OSError:
                read.append(item)  # the worker says what became of it
                seen[key] = -1
                continue
            if (st.st_dev, st.st_ino) in skip:
                continue
            seen[key] = st.st_size
            listed = listed_at.get(key)
            if listed is None or not stat.S_ISREG(st.st_mode):
                read.append(item)
                continue
            verdict = entries.verdict(item, st, listed) if entries is not None else None
            if isinstance(verdict, dict):
                answered[key] = verdict
                continue
            if verdict is False or directories.moved(os.path.dirname(item), top):
                read.append(item)
                continue
            if verdict is True or confirmed(st.st_dev, st.st_mtime_ns, st.st_ctime_ns,
                                            since_ns):
                if samples:  # the smallest kept ones: a max-heap by size
                    heapq.heappush(sampled, (-st.st_size, len(sampled), item))
                    if len(sampled) > samples:
                        heapq.heappop(sampled)
                continue
            read.append(item)
    # The smallest whatever its size; the next ones only if small.
    smallest = sorted(sampled, reverse=True)
    chosen = [item for i, (size, _, item) in enumerate(smallest) if i == 0 or -size <= SAMPLE_BYTES]
    return Plan(read, seen, unread, answered, chosen)


class _CacheEntries:
    """The cache's word on listed files, a directory at a time: True (the
    cache holds the file unchanged with the listed digests), a dict (it holds
    it unchanged with other digests), False (it holds another version of the
    file), None (it knows nothing of it)."""

    def __init__(self, cache: Any, algos: tuple[str, ...]) -> None:
        self.spec = cache.spec(lookup=True)
        self.algos = algos
        self.directory: str | None = None
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
        if all(digests.get(a) == d for a, d in listed.digests.items()):
            return True
        return digests


class Writer:
    """New records in the manifest's own form: its format, the algorithms
    asked, GNU separator (``  ``, `` *`` or md5 -r's one blank) and line end."""

    def __init__(self, listing: Listing) -> None:
        self.listing = listing
        self.formats: dict[tuple[str, ...], Any] = {}

    def record(self, name: str, digests: dict[str, str], size: int,
               algos: Sequence[str] | None = None) -> bytes:
        from parhash.formats import RecordFormat

        listing = self.listing
        algos = tuple(algos or listing.algos)
        records = self.formats.get(algos)
        if records is None and not (len(algos) > 1 and listing.fmt == "gnu"):
            records = self.formats[algos] = RecordFormat(listing.fmt, algos, listing.zero)
        if len(algos) > 1 and listing.fmt == "gnu":
            # A GNU line holds one digest: one per algorithm, as cat MD5SUMS
            # SHA256SUMS would have them.
            return b"".join(self.record(name, digests, size, (a,)) for a in algos)
        assert records is not None
        data: bytes = records.result(Result(name, digests, size))
        if listing.fmt == "gnu" and listing.separator != b"  ":
            start = data.index(b"  ")
            data = data[:start] + listing.separator + data[start + 2:]
        if listing.newline != b"\n" and not listing.zero:
            data = data.replace(b"\n", listing.newline)
        return data


class Update(NamedTuple):
    """What an update did: the new manifest's bytes, its changes as
    ``(status, name)``, the listed files kept as they were, the files read,
    those that could not be (or walked), and whether every listed file was
    in the update's reach (then the manifest's mtime may move on)."""

    data: bytes
    changes: list[tuple[str, str]]
    kept: int
    read: int
    errors: int
    whole: bool


class GuessedWrong(Exception):
    """An untagged manifest whose algorithm, guessed from its digests' length,
    a listed file contradicts: updating it would rewrite every line read."""


class Refused(Exception):
    """An update that would do more harm than good: listed files, and no file
    at all where they were (an unmounted disk would drop them all)."""


# Listed files read again, when nothing else confirms an algorithm guessed
# from the digests' length; only files this small are read for it.
SAMPLES = 3
SAMPLE_BYTES = 4 << 20


def _ambiguous(listing: Listing) -> bool:
    """Whether some other algorithm has digests of the length of one guessed."""
    from parhash.algorithms import ALGORITHMS

    if not listing.guessed:
        return False
    lengths = {ALGORITHMS[a].hex_length for a in listing.algos}
    return any(a.hex_length in lengths and a.name not in listing.algos
               for a in ALGORITHMS.values())


def update_listing(listing: Listing, roots: Sequence[str], *, follow: bool = False,
                   include: Sequence[str] = (), exclude: Sequence[str] = (),
                   since_ns: int, base: str = "", skip: frozenset[tuple[int, int]] = frozenset(),
                   jobs: int | None = None, chunksize: int | None = None,
                   block_size: int | None = None, cache: Any = None, stats: Any = None,
                   progress: Any = None, err: IO[str] | None = None) -> Update:
    """The manifest ``listing`` brought up to date with the files under
    ``roots``: see the module's documentation. Names are relative to
    ``base`` (default: the current directory). Listed files outside the
    roots, or left out by ``include``/``exclude``, are kept as they are; so
    are those that can't be read (their error goes to ``err``), those under
    a directory that can't be, and those the walk doesn't reach but are
    there (a symbolic link, without ``follow``). Raises :class:`GuessedWrong`
    and :class:`Refused` (see them). Costs a walk, an ``lstat`` a file, and
    the reading of new and changed files through the scan pipeline."""
    from parhash.hashing import DEFAULT_BLOCK_SIZE
    from parhash.report import error_line
    from parhash.tasks import RESULTS, TASK_FILES, ScanJob, scan_tasks

    err = err if err is not None else sys.stderr
    naming = Naming(base, listing.style)
    scope = Scope(roots, include, exclude)
    listed_at: dict[str, Listed] = {}
    where: dict[int, str] = {}
    for name, e in listing.by_key.items():  # names as key_of has them already
        key = naming.tidy_key(name)
        listed_at[key] = e
        where[id(e)] = key
    algos = tuple(listing.algos)
    decided = plan(listed_at, roots, naming, since_ns=since_ns, follow=follow,
                   include=include, exclude=exclude, skip=skip, cache=cache, algos=algos,
                   samples=SAMPLES if _ambiguous(listing) else 0, err=err)
    hashed: dict[str, Result] = {}
    errors = len(decided.unread)
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
    rewrites = decided.answered or any(k in listed_at and r.error is None
                                       for k, r in hashed.items())
    if rewrites and _ambiguous(listing) and not _confirmed(listed_at, hashed):
        # Nothing read confirms the algorithm guessed: read a few unchanged
        # files to see, and stop rather than rewrite lines with the wrong one.
        sampled: dict[str, Result] = {}
        if decided.samples:
            job = ScanJob(algos, block_size or DEFAULT_BLOCK_SIZE, RESULTS, skip=skip)
            results = scan_tasks((), job, listed=decided.samples, jobs=jobs, stats=stats,
                                 streams=False)
            try:
                for task in results:
                    sampled.update((naming.found(r.path), r) for r in task.records)
            finally:
                results.close()
        _confirm_guess(listing, listed_at, hashed, sampled)
    # What becomes of each listed file: None kept, REMOVED, or its new digests.
    fate: dict[int, Any] = {}
    whole = True
    in_scope = gone = 0
    for key, entry in listed_at.items():
        if not scope.holds(key):
            whole = False
            continue
        in_scope += 1
        r = hashed.get(key)
        digests = decided.answered.get(key)
        if r is not None and r.error is None:
            digests = r.digests
        if key not in decided.seen:
            if _blocked(key, decided.unread) is not None:
                whole = False  # under a directory that can't be read: not gone
                continue
            if os.path.lexists(key):
                continue  # a link, or a name through one: kept, and not judged by times
            fate[id(entry)] = REMOVED
            gone += 1
        elif digests is not None and any(digests[a] != d for a, d in entry.digests.items()):
            fate[id(entry)] = digests
        elif r is not None and r.error is not None:
            whole = False
    if gone and not decided.seen and any(os.path.isdir(r) for r in roots):
        raise Refused(f"{listing.path}: every listed file under {', '.join(roots)} is gone "
                      "(an unmounted disk?); the manifest is left as it was. Remove it to "
                      "start anew.")
    writer = Writer(listing)
    changes: list[tuple[str, str]] = []
    done: set[int] = set()
    out: list[tuple[bytes, bytes] | bytes] = []  # (name, bytes) of records; bytes of other lines
    for item in listing.entries:
        if not isinstance(item, Record):
            out.append(item)
            continue
        entry = item.entry
        now = fate.get(id(entry))
        if now is None:
            out.append((_sort_key(entry.name), item.raw))
            continue
        if id(entry) not in done:
            done.add(id(entry))
            changes.append((REMOVED if now is REMOVED else UPDATED, entry.name))
        if now is REMOVED or not item.algos:
            continue  # gone, or a second line of a name whose first is rewritten
        key = where[id(entry)]
        out.append((_sort_key(entry.name),
                    writer.record(entry.name, now, decided.seen.get(key, -1), item.algos)))
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
    kept = in_scope - len(done)
    whole = whole and not errors
    return Update(data, changes, kept, len(hashed), errors, whole)


def _confirmed(listed_at: dict[str, Listed], hashed: dict[str, Result]) -> bool:
    """Whether a listed file read has its listed digests."""
    for key, r in hashed.items():
        entry = listed_at.get(key)
        if entry is not None and r.error is None and all(
                r.digests.get(a) == d for a, d in entry.digests.items()):
            return True
    return False


def _confirm_guess(listing: Listing, listed_at: dict[str, Listed], hashed: dict[str, Result],
                   sampled: dict[str, Result]) -> None:
    """Make sure the algorithm guessed for untagged lines is theirs, when a
    listed file read differs: b2sum's lines and sha512's have one length,
    xxhsum -H2's and md5's another, and a wrong guess would rewrite every
    line read. ``sampled`` are unchanged files read to see (see :func:`plan`):
    one with its listed digests confirms the guess. With none, and a listed
    file read that differs, the update is refused."""
    if _confirmed(listed_at, sampled):
        return
    differ = [listed_at[k].name for k, r in {**hashed, **sampled}.items()
              if k in listed_at and r.error is None]
    if differ:
        raise GuessedWrong(
            f"{listing.path}: no listed file read has its listed "
            f"{', '.join(listing.algos)} digest (of {len(differ)}, such as {differ[0]!r}): "
            "either they all changed, or the lines' algorithm is another of that length; "
            "give it with -a")


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


def refuse_manifest(manifest: str) -> str | None:
    """Why ``manifest`` is not to be written by an update, or None: a symbolic
    link another user owns could send the new manifest anywhere its owner
    likes, and a FIFO or device is no file to replace."""
    try:
        st = os.lstat(manifest)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode) and st.st_uid not in (0, os.geteuid()):
        return "a symbolic link another user owns; give the file it leads to"
    try:
        st = os.stat(manifest)
    except OSError:
        return None  # a dangling link of one's own: the manifest is written there
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    return None


def run_update(manifest: str, paths: Sequence[str] = (), *, algos: tuple[str, ...] | None,
               zero: bool = False, follow: bool = False, include: Sequence[str] = (),
               exclude: Sequence[str] = (), relative_to_manifest: bool = False,
               jobs: int | None = None, chunksize: int | None = None,
               block_size: int | None = None, stall_timeout: float | None = None,
               cache: str | None = None, progress: bool | None = None,
               summary: bool | None = None, quiet: bool = False) -> int:
    """``parhash scan --update``: update ``manifest`` in place; the exit status.

    ``algos``, when given, must be the manifest's. With
    ``relative_to_manifest`` its names are relative to its own directory,
    which is also what is walked when no ``paths`` are given. Prints each
    change on stderr (``added: NAME``, ``updated: NAME``, ``removed:
    NAME``) unless ``quiet``, and a summary line. Returns 0; 1 when a file
    or directory could not be read (its lines are kept) or the manifest
    could not be written; 2 when the manifest can't be read or updated as
    asked."""
    from parhash.console import atomic_file, pipeline_stats, warn_worker_deaths
    from parhash.report import Meter, error_line, open_cache, shown

    started = time.time_ns()
    hint = algos[0] if algos and len(algos) == 1 else None
    why = refuse_manifest(manifest)
    if why is not None:
        sys.stderr.write(error_line("parhash", manifest, why))
        return EXIT_USAGE
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
    if listing.dropped:
        sys.stderr.write(f"parhash: {manifest}: a line longer than 1 MiB that is no checksum "
                         "line can't be kept; the manifest is left as it was\n")
        return EXIT_USAGE
    if listing.malformed:
        n = listing.malformed
        sys.stderr.write(f"parhash: {manifest}: {n} improperly formatted "
                         f"line{' is' if n == 1 else 's are'} kept as "
                         f"{'it is' if n == 1 else 'they are'}\n")
    base = os.path.dirname(manifest) if relative_to_manifest else ""
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
            listing, list(paths) or [base or "."], follow=follow, include=include,
            exclude=exclude, since_ns=st.st_mtime_ns, base=base, skip=frozenset(skip),
            jobs=jobs, chunksize=chunksize, block_size=block_size, cache=opened, stats=stats,
            progress=meter)
    except (GuessedWrong, Refused) as e:
        sys.stderr.write(f"parhash: {e}\n")
        return EXIT_USAGE
    finally:
        meter.close()
        if opened is not None:
            opened.close()
    try:
        now = os.stat(manifest)
    except OSError:
        now = None
    if now is None or ((now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns, now.st_ctime_ns)
                       != (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)):
        sys.stderr.write(error_line("parhash", manifest, "changed while it was updated; "
                                    "left as it is"))
        return EXIT_FILE_ERROR
    # Whether the manifest now holds everything as it was when the update
    # began; if not, files left out must still be judged by the old time.
    mtime = started if done.whole and (stats.worker_deaths == 0) else st.st_mtime_ns
    if done.changes:
        with atomic_file(manifest, mtime_ns=mtime) as out:
            out.write(done.data)
    elif mtime != st.st_mtime_ns:
        try:
            os.utime(manifest, ns=(mtime, mtime))
        except OSError as e:
            sys.stderr.write(error_line("parhash", manifest, e.strerror or str(e)))
            return EXIT_FILE_ERROR
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
