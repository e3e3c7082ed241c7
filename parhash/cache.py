"""The persistent hash cache: digests of files that have not changed since they were read.

One SQLite file (``--cache``; by default ``$XDG_CACHE_HOME/parhash/hashes.sqlite``)
holds an entry per file: the directory's absolute path with links resolved,
the name, and what ``stat`` said of it when it was read (size, ``mtime_ns``,
``ctime_ns``, inode; never the device number, which changes from one mount
to the next), with one digest per algorithm read so far. An entry answers a
later run only if every one of those fields is still the same, and only if
it is *confirmed* (see :func:`confirmed`).

Who does what:

- the workers look entries up, one query per directory
  (:func:`lookup`), through a read-only connection of their own, and send
  the digests they computed back with their task's result
  (:class:`Rows`);
- the main process writes those in one transaction per task result
  (:meth:`Cache.write`), so a run killed outright loses only the tasks in
  flight;
- on a cluster the client alone sees the file: workers look nothing up
  and send their digests back to it.

The main process never has a connection open while the pool forks
(:func:`release`): SQLite's locks are per process, and a child that
inherits a live connection must not use the file at all (see
:func:`_may_read`).

Damage is never fatal: a file that is not a cache is moved aside and a new
one started, a cache that can't be written is a warning, and a cache on a
network file system (where SQLite's locks are not to be trusted) is not
used. Each of these is one warning, and the run's answers are the same as
without the cache.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from parhash.algorithms import ALGORITHMS

if TYPE_CHECKING:
    import sqlite3

_SECOND = 1_000_000_000
# "parh": SQLite's application_id, which tells our file from any other database.
APPLICATION_ID = 0x70617268
SCHEMA_VERSION = 2
FILE_NAME = "hashes.sqlite"
ENVIRONMENT = "PARHASH_CACHE"
# How long a process waits for another's write before trying again, and how
# many times (see Cache.write): processes sharing a cache take turns.
BUSY_MS = 5000
BUSY_TRIES = 24

# The racy-file rule (git's "racily clean" entries). A file's times come
# from a coarse clock: Linux stamps them from a clock that moves once a
# tick (1-10 ms), and some file systems keep only seconds (ext2/ext3 with
# 128-byte inodes, HFS+) or two seconds (FAT's mtime). A file rewritten
# with the same size within one tick keeps its times, so a digest read less
# than a tick after the file's last change may be of contents already gone.
# Such an entry is stored unconfirmed and never answers; a later run that
# reads the file again, once its times are old, confirms it.
# Times with nanoseconds: a tick (at most 10 ms) and exFAT's 10 ms, five times over.
FINE_MARGIN_NS = 100_000_000
# Whole seconds in mtime or ctime: FAT's two seconds, and the fine margin.
COARSE_MARGIN_NS = 2_000_000_000 + FINE_MARGIN_NS
# A network or FUSE file system stamps times with the server's clock, not
# ours: the coarse margin plus a minute for the two clocks to disagree.
REMOTE_MARGIN_NS = COARSE_MARGIN_NS + 60_000_000_000

# File systems where SQLite's locks can't be relied on (its own FAQ), or that
# stamp times with another machine's clock.
NETWORK_FILE_SYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "9p", "afs", "coda", "ceph",
    "glusterfs", "lustre", "gpfs", "beegfs", "ocfs2", "gfs2", "orangefs", "pvfs2",
    "fuse.sshfs", "fuse.rclone", "fuse.s3fs", "fuse.gcsfuse", "fuse.glusterfs",
    "fuse.cephfs", "fuse.juicefs", "fuse.davfs", "davfs", "fuse.smbnetfs",
})


def column(algo: str) -> str:
    """The column that holds ``algo``'s digests (``sha3-256`` -> ``"sha3_256"``)."""
    return '"' + algo.replace("-", "_") + '"'


# Entries are stored a run of one directory at a time: a *chunk* holds the
# entries a task sent back for a directory, names sorted, as three packed
# columns (names joined by NUL, five integers per entry, and for each
# algorithm its digests end to end). One row per directory and task, where
# one per file cost 2.3 us to insert and 0.8 us to fetch (benchmarks/RESULTS.md).
# Chunks of a directory never overlap: a write that meets older ones merges
# them (see Cache._store).
CHUNK_ENTRIES = 4096
# Integers per entry: size, mtime_ns, ctime_ns, inode, confirmed.
KEY = 5
# A digest an entry lacks, in its algorithm's column.
FILLER = "."

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID",
    # A directory's absolute path, links resolved, as bytes; when a run last used it.
    # fsid: its file system's identity (see fs_id): another file system mounted
    # at the same path may hold files of the same inodes, sizes and times.
    "CREATE TABLE IF NOT EXISTS dirs(id INTEGER PRIMARY KEY, path BLOB NOT NULL UNIQUE,"
    " used INTEGER NOT NULL DEFAULT 0, fsid INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS chunks(dir INTEGER NOT NULL, first BLOB NOT NULL,"
    " last BLOB NOT NULL, n INTEGER NOT NULL, hashed INTEGER NOT NULL, names BLOB NOT NULL,"
    " keys BLOB NOT NULL, "
    + ", ".join(f"{column(a)} TEXT" for a in ALGORITHMS)
    + ", PRIMARY KEY(dir, first)) WITHOUT ROWID",
)


class CacheSpec(NamedTuple):
    """What a task needs to know of the cache: where it is, and whether to read it.

    Workers look entries up only with ``lookup`` (not on a cluster, whose
    workers can't see the client's file); they always send back what they hash.
    """

    path: str
    lookup: bool = True
    # The cache's own directory (resolved) and names there (file, -wal,
    # -shm, -journal): a scan of that directory leaves them out, as it
    # leaves out its own -o file.
    home: bytes = b""
    own: frozenset[str] = frozenset()
    # The cache file's device and inode as the main process checked it.
    identity: tuple[int, int] | None = None


class Known:
    """The confirmed entries of a directory that a lookup found.

    ``index`` maps a name to its entry's number ``i``; ``keys[KEY * i:]``
    starts its size, mtime_ns, ctime_ns and inode, and :meth:`digests` gives
    its digests, of the algorithms looked up, in their order.
    """

    __slots__ = ("index", "keys", "columns", "lengths", "fsid")

    def __init__(self, index: dict[str, int], keys: Any, columns: list[str],
                 lengths: list[int], fsid: int = 0) -> None:
        self.fsid = fsid
        self.index = index
        self.keys = keys
        self.columns = columns
        self.lengths = lengths

    def hit(self, name: str, st: os.stat_result) -> int | None:
        """The entry of ``name`` if it stands for the regular file ``st`` describes."""
        i = self.index.get(name)
        if i is None:
            return None
        keys, k = self.keys, KEY * i
        if (keys[k] == st.st_size and keys[k + 1] == st.st_mtime_ns
                and keys[k + 2] == st.st_ctime_ns and keys[k + 3] & U64 == st.st_ino
                and stat.S_ISREG(st.st_mode)):
            return i
        return None

    def digests(self, i: int) -> list[str]:
        return [c[i * n:(i + 1) * n] for c, n in zip(self.columns, self.lengths, strict=True)]


# A directory whose use was recorded this recently is not recorded again:
# a warm run writes nothing.
USED_EVERY_NS = 12 * 3600 * _SECOND


class Chunk(NamedTuple):
    """A directory's entries as a task sends them to be written, packed (see above)."""

    directory: bytes
    fsid: int
    algos: tuple[str, ...]
    first: bytes
    last: bytes
    n: int
    names: bytes
    keys: bytes
    columns: tuple[str, ...]  # one per algorithm of ``algos``


class Rows(NamedTuple):
    """What a task hashed, to be written, and the directories whose entries it used."""

    chunks: list[Chunk]
    used: list[bytes] = []


def pack(directory: bytes, fsid: int, algos: tuple[str, ...], names: list[bytes],
         keys: list[int], digests: list[list[str]]) -> list[Chunk]:
    """Entries (``names``, ``KEY`` integers each in ``keys``, per algorithm a digest
    each or FILLER-long ones) as chunks of :data:`CHUNK_ENTRIES`, names sorted."""
    from array import array

    n = len(names)
    if sorted(names) != names:  # a listing's names come sorted; a list's may not
        order = sorted(range(n), key=names.__getitem__)
        names = [names[i] for i in order]
        keys = [keys[KEY * i + j] for i in order for j in range(KEY)]
        digests = [[d[i] for i in order] for d in digests]
    chunks = []
    for start in range(0, n, CHUNK_ENTRIES):
        end = min(n, start + CHUNK_ENTRIES)
        chunks.append(Chunk(directory, fsid, algos, names[start], names[end - 1], end - start,
                            b"\0".join(names[start:end]),
                            array("q", keys[KEY * start:KEY * end]).tobytes(),
                            tuple("".join(d[start:end]) for d in digests)))
    return chunks


class Recorder:
    """A task's use of the cache, in a worker: its lookups, and the digests it
    read to be sent back (:meth:`rows`)."""

    def __init__(self, spec: CacheSpec) -> None:
        self.spec = spec
        # Reading starts after this: the racy-file rule's reference.
        self.started = time.time_ns()
        # By (directory, algorithms): names, KEY integers each, digests per algorithm.
        self.kept: dict[tuple[bytes, tuple[str, ...]],
                        tuple[list[bytes], list[int], list[list[str]]]] = {}
        self.used: list[bytes] = []
        self.hits = 0
        self.heads: dict[tuple[str, tuple[str, ...]], tuple[bytes, Known | None]] = {}
        # The file system of each directory met (see fs_id).
        self.fsids: dict[bytes, int] = {}

    def directory(self, real: bytes, algos: tuple[str, ...], fsid: int,
                  first: bytes | None = None, last: bytes | None = None,
                  known: Known | None = None) -> Known | None:
        """The entries of directory ``real``, on file system ``fsid``, with ``algos``'
        digests (see :func:`lookup`); ``known``: those a client sent, if any."""
        self.fsids[real] = fsid
        if known is None:
            known, used = lookup(self.spec, real, algos, first, last)
            if used:
                self.used.append(real)
        if known is not None and known.fsid != fsid:
            return None  # another file system is mounted there now
        return known

    def head_of(self, path: str, algos: tuple[str, ...]) -> tuple[bytes, Known | None]:
        """The resolved directory of a named path, and its entries with ``algos``'
        digests; ``b""`` when it can't be resolved (then nothing is looked up or kept)."""
        head = path.rpartition("/")[0] or ("/" if path.startswith("/") else ".")
        known = self.heads.get((head, algos))
        if known is None:
            try:
                real = os.fsencode(os.path.realpath(head))
                fsid = fs_id(os.statvfs(real), os.stat(real).st_dev)
            except (OSError, ValueError):  # a link that changed as it was read
                known = self.heads[(head, algos)] = (b"", None)
                return known
            known = self.heads[(head, algos)] = (real, self.directory(real, algos, fsid))
        return known

    def holds(self, path: str, algos: tuple[str, ...]) -> bool:
        """Whether there is an entry for ``path`` at all (its file not looked at)."""
        _, known = self.head_of(path, algos)
        return known is not None and path.rpartition("/")[2] in known.index

    def find(self, path: str, algos: tuple[str, ...], st: os.stat_result | None = None,
             follow: bool = True) -> tuple[dict[str, str] | None, os.stat_result | None]:
        """The cached digests of the file at ``path``, if it is unchanged, and what
        ``stat`` said of it (``st``, if given)."""
        _, known = self.head_of(path, algos)
        name = path.rpartition("/")[2]
        if known is None or name not in known.index:
            return None, st
        if st is None:
            try:
                st = os.stat(path, follow_symlinks=follow)
            except (OSError, ValueError):
                return None, None
        if device_margin(st.st_dev) >= REMOTE_MARGIN_NS:
            # A network file system may answer stat from attributes it cached
            # a minute ago; only an open makes it ask the server.
            return None, st
        i = known.hit(name, st)
        if i is None:
            return None, st
        self.hits += 1
        return dict(zip(algos, known.digests(i), strict=True)), st

    def store(self, real: bytes, algos: tuple[str, ...]
              ) -> tuple[list[bytes], list[int], list[list[str]]]:
        """Where the entries of directory ``real`` with ``algos``' digests go."""
        kept = self.kept.get((real, algos))
        if kept is None:
            kept = self.kept[(real, algos)] = ([], [], [[] for _ in algos])
        return kept

    def keep(self, real: bytes, name: str, size: int, mtime: int, ctime: int, ino: int,
             dev: int, algos: tuple[str, ...], digests: Iterable[str]) -> None:
        """Send the digests of file ``name`` of directory ``real`` back to be written.

        Nothing is kept of a file on a pseudo file system (/proc, /sys): its
        contents change while its size and times stay the same.
        """
        from parhash.walk import is_pseudo_fs

        if not real or is_pseudo_fs(dev):
            return
        names, keys, columns = self.store(real, algos)
        names.append(os.fsencode(name))
        keys += (size, mtime, ctime, signed(ino), confirmed(dev, mtime, ctime, self.started))
        for column_, digest in zip(columns, digests, strict=True):
            column_.append(digest)

    def keep_path(self, path: str, size: int, mtime: int, ctime: int, ino: int, dev: int,
                  digests: dict[str, str]) -> None:
        """:meth:`keep` for a file named by its path."""
        algos = tuple(digests)
        real, _ = self.head_of(path, algos)
        self.keep(real, path.rpartition("/")[2], size, mtime, ctime, ino, dev, algos,
                  digests.values())

    def rows(self) -> Rows | None:
        """What to write, if anything."""
        chunks = []
        for (real, algos), (names, keys, columns) in self.kept.items():
            if names:
                chunks += pack(real, self.fsids.get(real, 0), algos, names, keys, columns)
        return Rows(chunks, self.used) if chunks or self.used else None


# --- where the cache is -------------------------------------------------------------


def default_path() -> str:
    """``$XDG_CACHE_HOME/parhash/hashes.sqlite``, or ``~/.cache/parhash/hashes.sqlite``."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):  # the XDG rule: a relative value is ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "parhash", FILE_NAME)


def chosen_path(cache: bool | None, cache_file: str | None) -> str | None:
    """The cache file a command uses, or None for none.

    ``--no-cache`` (``cache`` False) wins; then ``--cache-file``; then
    ``--cache`` or a non-empty ``PARHASH_CACHE`` (``--cache`` takes the
    default file unless ``PARHASH_CACHE`` names one).
    """
    if cache is False:
        return None
    if cache_file:
        return cache_file
    env = os.environ.get(ENVIRONMENT, "")
    if env:
        return env
    return default_path() if cache else None


def management_path(cache_file: str | None) -> str:
    """The file ``parhash cache`` manages: ``--cache-file``, ``PARHASH_CACHE``, or the default."""
    return cache_file or os.environ.get(ENVIRONMENT, "") or default_path()


def _mounts() -> list[tuple[str, str, str]]:
    """(major:minor, mount point, type) of each mount, from /proc/self/mountinfo."""
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            text = f.read().decode("utf-8", "surrogateescape")
    except OSError:
        return []
    return parse_mountinfo(text)


def parse_mountinfo(text: str) -> list[tuple[str, str, str]]:
    """(major:minor, mount point, type) of each line of a ``mountinfo`` text."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5 or not right:
            continue
        point = fields[4].replace("\\040", " ").replace("\\011", "\t").replace(
            "\\012", "\n").replace("\\134", "\\")
        mounts.append((fields[2], point, right.split()[0]))
    return mounts


def file_system_of(path: str, mounts: list[tuple[str, str, str]] | None = None) -> str | None:
    """The type of the file system ``path`` (absolute, links resolved) is on, if known."""
    best, kind = -1, None
    for _, point, fstype in _mounts() if mounts is None else mounts:
        prefix = point.rstrip("/") + "/"
        if (path == point or path.startswith(prefix) or point == "/") and len(point) > best:
            best, kind = len(point), fstype
    return kind


def is_network(fstype: str | None) -> bool:
    """Whether a file system of type ``fstype`` is one SQLite's locks can't rely on."""
    return fstype is not None and fstype in NETWORK_FILE_SYSTEMS


# --- the racy-file rule ---------------------------------------------------------------

_MARGINS: dict[int, int] = {}


def device_margin(dev: int) -> int:
    """The margin of the file system on device ``dev``, for times with nanoseconds:
    wider for network and FUSE file systems, and for a device the mount table
    doesn't name (a btrfs subvolume), whose times may be whole seconds."""
    found = _MARGINS.get(dev)
    if found is None:
        from parhash.walk import file_system_type

        fstype = file_system_type(dev)
        if not fstype:
            found = COARSE_MARGIN_NS
        elif fstype in NETWORK_FILE_SYSTEMS or fstype.startswith("fuse"):
            found = REMOTE_MARGIN_NS
        else:
            found = FINE_MARGIN_NS
        _MARGINS[dev] = found
    return found


def margin(dev: int, mtime_ns: int, ctime_ns: int) -> int:
    """How much older than the start of its reading a file's times must be for
    its digest to be confirmed (see the module's constants), by its device
    and times."""
    m = device_margin(dev)
    if m < COARSE_MARGIN_NS and (mtime_ns % _SECOND == 0 or ctime_ns % _SECOND == 0):
        m = COARSE_MARGIN_NS
    return m


def confirmed(dev: int, mtime_ns: int, ctime_ns: int, started: int) -> int:
    """1 if a digest of the file whose reading began at ``started``
    (``time.time_ns()``) may answer later runs: its times are safely older
    than that; else 0."""
    return int(max(mtime_ns, ctime_ns) + margin(dev, mtime_ns, ctime_ns) < started)


# --- in a worker: lookups --------------------------------------------------------------

# The connection this process reads through, and the file it is of.
_READER: Any = None
_READER_PATH: str | None = None
# Set while this process has a connection open: a process forked meanwhile
# shares SQLite's record of its locks, and must not use the file.
_OPENED_BY: int | None = None


def _may_read() -> bool:
    return _OPENED_BY is None or os.getpid() == _OPENED_BY


def _reader(path: str, identity: tuple[int, int] | None = None) -> Any:
    global _READER, _READER_PATH, _OPENED_BY
    if not _may_read():  # forked while the parent held a connection
        return None
    if path == _READER_PATH:
        return _READER
    release_reader()
    import sqlite3
    from urllib.parse import quote

    _READER_PATH = path
    if identity is not None:
        # The file the main process checked, not one put in its place since.
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if (st.st_dev, st.st_ino) != identity:
            return None
    try:
        _READER = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=BUSY_MS / 1000,
                                  isolation_level=None, check_same_thread=False)
        _OPENED_BY = os.getpid()
    except sqlite3.Error:
        _READER = None
    return _READER


def release_reader() -> None:
    """Close this process's reading connection, if any."""
    global _READER, _READER_PATH, _OPENED_BY
    if _READER is not None:
        with contextlib.suppress(Exception):
            _READER.close()
    _READER = None
    _READER_PATH = None
    if _WRITERS == 0:
        _OPENED_BY = None


def lookup(spec: CacheSpec, directory: bytes, algos: tuple[str, ...],
           first: bytes | None = None, last: bytes | None = None
           ) -> tuple[Known | None, bool]:
    """The confirmed entries of ``directory`` (absolute, links resolved) that hold
    every one of ``algos``' digests; with ``first`` and ``last``, only those
    of the chunks that hold names between them (byte order). None when there
    are none, or the cache can't be read: then every file is a miss. Also
    whether the directory's use is worth recording (not done for
    :data:`USED_EVERY_NS`). Two queries, and some 0.2 us an entry."""
    if not spec.lookup:
        return None, False
    db = _reader(spec.path, spec.identity)
    if db is None:
        return None, False
    import sqlite3
    from array import array

    sql = _LOOKUPS.get((algos, first is not None))
    if sql is None:
        sql = (f"SELECT names, keys, {', '.join(column(a) for a in algos)} FROM chunks "
               "WHERE dir = ? " + "".join(f"AND {column(a)} IS NOT NULL " for a in algos)
               + ("AND first <= ? AND last >= ? " if first is not None else "")
               + "ORDER BY first")
        _LOOKUPS[(algos, first is not None)] = sql
    try:
        found = db.execute("SELECT id, used, fsid FROM dirs WHERE path = ?",
                           (directory,)).fetchone()
        if found is None:
            return None, False
        args = (found[0],) if first is None else (found[0], last, first)
        rows = db.execute(sql, args).fetchall()
    except sqlite3.Error:
        release_reader()
        return None, False
    lengths = [ALGORITHMS[a].hex_length for a in algos]
    encoding, errors = _NAMES
    index: dict[str, int] = {}
    keys = array("q")
    columns = ["" for _ in algos]
    for names_blob, keys_blob, *digests in rows:
        names = names_blob.split(b"\0")
        n = len(names)
        these = array("q")
        try:
            these.frombytes(keys_blob)
        except ValueError:
            continue  # damaged: its files are misses
        if len(these) != KEY * n or any(len(d) != n * m for d, m in zip(digests, lengths,
                                                                        strict=True)):
            continue
        base = len(keys) // KEY
        if min(these[KEY - 1::KEY]) and not any(FILLER in d for d in digests):
            index.update(zip([name.decode(encoding, errors) for name in names],
                             range(base, base + n), strict=True))
        else:  # some entries unconfirmed, or without a digest asked for
            for i, name in enumerate(names):
                if these[KEY * i + KEY - 1] and all(d[i * m] != FILLER for d, m in
                                                    zip(digests, lengths, strict=True)):
                    index[name.decode(encoding, errors)] = base + i
        keys.extend(these)
        for j, d in enumerate(digests):
            columns[j] += d
    if not index:
        return None, False
    return (Known(index, keys, columns, lengths, found[2]),
            found[1] < time.time_ns() - USED_EVERY_NS)


_LOOKUPS: dict[tuple[tuple[str, ...], bool], str] = {}
_NAMES = (sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())


def resolved_directory(dirfd: int | None, path: str) -> bytes:
    """The absolute path, links resolved, of the directory open as ``dirfd`` (named
    ``path``): what the kernel says the descriptor is, else ``realpath``."""
    if dirfd is not None:
        with contextlib.suppress(OSError):
            real = os.readlink(f"/proc/self/fd/{dirfd}")
            if real.startswith("/") and not real.endswith(" (deleted)"):
                return os.fsencode(real)
    return os.fsencode(os.path.realpath(path or "."))


def release() -> None:
    """Close every connection this process holds: before it forks workers."""
    release_reader()
    for cache in list(_OPEN):
        cache.suspend()


# --- in the main process: opening, writing, managing --------------------------------

_WRITERS = 0
_OPEN: set[Cache] = set()


class CacheUnusable(Exception):
    """The cache can't be used; the message says why, for a warning."""


class Cache:
    """The main process's connection: it opens, checks and writes the cache.

    :meth:`open` returns None (after one warning) when the cache can't be
    used. Writing never raises: a failure is one warning, and the run goes
    on without the cache.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.db: sqlite3.Connection | None = None
        self.dirs: dict[bytes, int] = {}
        self.columns: dict[tuple[str, ...], str] = {}
        self.broken = False
        self.hits = 0

    # -- opening

    @classmethod
    def open(cls, path: str, *, create: bool = True, warn_prefix: str = "parhash") -> Cache | None:
        """The cache at ``path``, checked and ready, or None after a warning."""
        from parhash.console import warn

        cache = cls(path)
        try:
            cache._open(create)
        except CacheUnusable as e:
            cache.close()
            warn(f"{warn_prefix}: warning: {e}; going on without the cache")
            return None
        return cache

    def _open(self, create: bool) -> None:
        import sqlite3

        from parhash.formats.names import quote_name

        path = self.path
        shown = quote_name(path)
        parent = os.path.dirname(os.path.abspath(path))
        if create and not os.path.isdir(parent) and path == default_path():
            with contextlib.suppress(OSError):
                os.makedirs(parent, mode=0o700, exist_ok=True)
        fstype = file_system_of(os.path.realpath(path))
        if is_network(fstype):
            raise CacheUnusable(f"the cache {shown} is on a network file system ({fstype}), "
                                "where SQLite's locking is not safe")
        check_place(path, create)
        try:
            self._connect(create)
            self._check(create)
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.OperationalError) and _unwritable(e):
                raise CacheUnusable(f"cannot write the cache {shown}: {e}") from None
            if not damage(e):  # busy, say: the file is fine
                raise CacheUnusable(f"cannot use the cache {shown}: {e}") from None
            self._move_aside(str(e), new=create)
            if not create:
                return  # moved aside, and no new one: there is no cache now
            try:
                self._connect()
                self._check(create)
            except sqlite3.Error as again:
                raise CacheUnusable(f"cannot use the cache {shown}: {again}") from None
        except OSError as e:
            raise CacheUnusable(f"cannot use the cache {shown}: {e.strerror}") from None

    def _connect(self, create: bool = True) -> None:
        """Open the file (``create``: made if missing)."""
        import sqlite3
        from urllib.parse import quote

        global _WRITERS, _OPENED_BY
        old = os.umask(0o077)  # the cache names files: for its owner only
        try:
            self.db = sqlite3.connect(f"file:{quote(self.path)}?mode={'rwc' if create else 'rw'}",
                                      uri=True, timeout=BUSY_MS / 1000, isolation_level=None,
                                      check_same_thread=False)
        finally:
            os.umask(old)
        _WRITERS += 1
        _OPENED_BY = os.getpid()
        _OPEN.add(self)
        self.dirs.clear()
        # In WAL mode, NORMAL syncs at checkpoints only: a commit survives
        # the process being killed, though not the machine losing power
        # (then the last few tasks' digests are lost, and the file is whole).
        self.db.execute("PRAGMA synchronous=NORMAL")

    def _check(self, create: bool) -> None:
        """Make sure the file is our cache, creating it when empty. Raises
        ``sqlite3.DatabaseError`` for a file that is not one (SQLite's own
        checks as it reads the header, then ours)."""
        import sqlite3

        db = self.db
        assert db is not None
        app = db.execute("PRAGMA application_id").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app == 0 and tables == 0:
            if not create:
                raise sqlite3.DatabaseError("an empty file")
            self._create()
            return
        if app != APPLICATION_ID:
            raise sqlite3.DatabaseError("not a parhash cache")
        row = db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        if row is None or not isinstance(row[0], int):
            raise sqlite3.DatabaseError("a parhash cache without a version")
        if row[0] > SCHEMA_VERSION:
            raise CacheUnusable(f"the cache {self.path} was written by a newer parhash "
                                f"(format {row[0]})")
        if row[0] < SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"an older format ({row[0]})")
        have = {r[1] for r in db.execute("PRAGMA table_info(chunks)")}
        for algo in ALGORITHMS:  # algorithms added since the file was made
            if algo.replace("-", "_") not in have:
                db.execute(f"ALTER TABLE chunks ADD COLUMN {column(algo)} TEXT")
        db.execute("PRAGMA journal_mode=WAL")

    def _create(self) -> None:
        db = self.db
        assert db is not None
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("PRAGMA application_id").fetchone()[0] == 0:  # no one was quicker
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (SCHEMA_VERSION,))
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                db.execute("ROLLBACK")
            raise

    def _move_aside(self, why: str, new: bool = True) -> str | None:
        """Put a file that is not a usable cache out of the way, with one warning
        (which says a new one is started, with ``new``); where it went."""
        from parhash.console import warn
        from parhash.formats.names import quote_name

        self.close()
        aside = f"{self.path}.bad-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            pass  # another process moved it
        except OSError as e:
            raise CacheUnusable(f"the cache {quote_name(self.path)} is unreadable ({why}) "
                                f"and can't be moved aside: {e.strerror}") from None
        else:
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(OSError):
                    os.rename(self.path + suffix, aside + suffix)
            warn(f"parhash: warning: the cache {quote_name(self.path)} was unreadable ({why}); "
                 f"moved it to {quote_name(aside)}" + (" and started a new one" if new else ""))
            return aside
        return None

    # -- in use

    def spec(self, lookup: bool = True) -> CacheSpec:
        path = os.path.abspath(self.path)
        home, _, name = os.path.realpath(path).rpartition("/")
        return CacheSpec(path, lookup, os.fsencode(home or "/"),
                         frozenset(name + s for s in ("", "-wal", "-shm", "-journal")),
                         self.identity())

    def identity(self) -> tuple[int, int] | None:
        """The cache file's device and inode, for a scan to leave it out."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def suspend(self) -> None:
        """Close the connection until the next write (a fork is coming)."""
        self._close_db()

    def _close_db(self) -> None:
        global _WRITERS, _OPENED_BY
        if self.db is not None:
            with contextlib.suppress(Exception):
                self.db.close()
            self.db = None
            _WRITERS -= 1
            _OPEN.discard(self)
            if _WRITERS == 0 and _READER is None:
                _OPENED_BY = None

    def close(self) -> None:
        self._close_db()

    def _dir_ids(self, paths: Iterable[bytes], fsids: dict[bytes, int], now: int
                 ) -> tuple[dict[bytes, int], set[bytes]]:
        """The ids of directories ``paths``, and those of them that are new (used
        now). A directory whose file system is not ``fsids``' any more (another
        one is mounted there) loses its entries."""
        db = self.db
        assert db is not None
        ids = self.dirs
        new = set()
        for path in paths:
            if path not in ids:
                fsid = fsids.get(path)
                found = db.execute("SELECT id, fsid FROM dirs WHERE path = ?",
                                   (path,)).fetchone()
                if found is None:
                    found = (db.execute("INSERT INTO dirs(path, used, fsid) VALUES (?, ?, ?)",
                                        (path, now, fsid or 0)).lastrowid, fsid)
                    new.add(path)
                elif fsid is not None and found[1] != fsid:
                    db.execute("DELETE FROM chunks WHERE dir = ?", (found[0],))
                    db.execute("UPDATE dirs SET fsid = ? WHERE id = ?", (fsid, found[0]))
                ids[path] = found[0]
        return ids, new

    def write(self, rows: Rows | None) -> None:
        """Store one task's digests, in one transaction; never raises."""
        if rows is None or self.broken:
            return
        import sqlite3

        for attempt in range(BUSY_TRIES):
            try:
                self._write(rows)
                return
            except sqlite3.OperationalError as e:
                if _busy(e) and attempt + 1 < BUSY_TRIES:
                    time.sleep(min(0.05 * 2 ** attempt, 1.0))
                    continue
                self._give_up(str(e))
                return
            except (sqlite3.DatabaseError, ValueError) as e:  # damaged while in use
                if isinstance(e, ValueError) or damage(e):
                    self.damaged(str(e))
                else:
                    self._give_up(str(e))
                return

    def _write(self, rows: Rows) -> None:
        if self.db is None:
            self._connect()
        db = self.db
        assert db is not None
        now = time.time_ns()
        db.execute("BEGIN IMMEDIATE")
        # Ids are looked up afresh in each transaction: another process may
        # have cleared or pruned the directories since the last one.
        self.dirs.clear()
        try:
            fsids = {c.directory: c.fsid for c in rows.chunks}
            touched = set(rows.used).union(fsids)
            ids, new = self._dir_ids(touched, fsids, now)
            if len(new) < len(touched):
                db.executemany("UPDATE dirs SET used = ? WHERE id = ?",
                               [(now, ids[p]) for p in touched - new])
            for chunk in rows.chunks:
                # A directory new in this transaction has no chunk to merge with yet.
                fresh = chunk.directory in new
                new.discard(chunk.directory)
                self._store(ids[chunk.directory], chunk, now, fresh)
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                db.execute("ROLLBACK")
            self.dirs.clear()
            raise

    def _store(self, dir_id: int, chunk: Chunk, now: int, fresh: bool = False) -> None:
        """Write ``chunk`` to directory ``dir_id``, merged with the chunks it overlaps.

        An entry of an older chunk keeps its place unless the new one names
        the same file; then its digests of other algorithms stay only if the
        file is the same (same key) and both entries are confirmed: a digest
        read while the file was racy must not be confirmed by a later one's times.
        """
        db = self.db
        assert db is not None
        old = [] if fresh else db.execute(
            "SELECT first, names, keys, " + _ALL_COLUMNS + " FROM chunks "
            "WHERE dir = ? AND first <= ? AND last >= ?",
            (dir_id, chunk.last, chunk.first)).fetchall()
        if not old:
            self._insert(dir_id, chunk.first, chunk.last, chunk.n, chunk.names, chunk.keys,
                         dict(zip(chunk.algos, chunk.columns, strict=True)), now)
            return
        merged: dict[bytes, tuple[list[int], dict[str, str]]] = {}
        for first, names, keys, *columns in old:
            merged.update(_unpack(names, keys, dict(zip(ALGORITHMS, columns, strict=True))))
            db.execute("DELETE FROM chunks WHERE dir = ? AND first = ?", (dir_id, first))
        for name, (key, digests) in _unpack(chunk.names, chunk.keys, dict(
                zip(chunk.algos, chunk.columns, strict=True))).items():
            before = merged.get(name)
            if before is not None and before[0] == key and key[KEY - 1] and before[0][KEY - 1]:
                digests = {**before[1], **digests}
            merged[name] = (key, digests)
        self._rewrite(dir_id, merged, now)

    def _insert(self, dir_id: int, first: bytes, last: bytes, n: int, names: bytes,
                keys: bytes, columns: dict[str, str], now: int) -> None:
        algos = tuple(columns)
        sql = self.columns.get(algos)
        if sql is None:
            sql = self.columns[algos] = (
                "INSERT OR REPLACE INTO chunks(dir, first, last, n, hashed, names, keys"
                + "".join(", " + column(a) for a in algos)
                + ") VALUES (" + ", ".join("?" * (7 + len(algos))) + ")")
        assert self.db is not None
        self.db.execute(sql, (dir_id, first, last, n, now, names, keys, *columns.values()))

    def _give_up(self, why: str) -> None:
        from parhash.console import warn
        from parhash.formats.names import quote_name

        self.broken = True
        if "readonly" in why:  # its entries still answer; this run's are not added
            warn(f"parhash: warning: cannot write the cache {quote_name(self.path)}: {why}; "
                 "what this run reads is not added to it")
        else:
            warn(f"parhash: warning: cannot write the cache {quote_name(self.path)}: {why}; "
                 "going on without it")
        self.close()

    def damaged(self, why: str, new: bool = True) -> None:
        """The file turned out damaged in use: moved aside, with one warning, so
        that the next run starts a new cache; nothing more is written to it."""
        self.broken = True
        try:
            self._move_aside(why, new=False)
        except CacheUnusable as e:
            from parhash.console import warn

            warn(f"parhash: warning: {e}")

    # -- management

    def _chunks(self) -> Iterator[tuple[int, bytes, bytes, dict[bytes, tuple[list[int],
                                                                          dict[str, str]]]]]:
        """Each chunk: its directory's id and path, its first name, and its entries."""
        db = self.db
        assert db is not None
        for dir_id, path, first, names, keys, *columns in db.execute(
                "SELECT dir, path, first, names, keys, " + _ALL_COLUMNS
                + " FROM chunks JOIN dirs ON dirs.id = chunks.dir").fetchall():
            yield dir_id, path, first, _unpack(names, keys, dict(zip(ALGORITHMS, columns,
                                                                     strict=True)))

    def stats(self) -> dict[str, Any]:
        """Entries, directories, digests per algorithm, and the file's size."""
        db = self.db
        assert db is not None
        entries = unconfirmed = 0
        counts = dict.fromkeys(ALGORITHMS, 0)
        for _, _, _, found in self._chunks():
            entries += len(found)
            for key, digests in found.values():
                unconfirmed += not key[KEY - 1]
                for algo in digests:
                    counts[algo] += 1
        dirs = db.execute("SELECT count(DISTINCT dir) FROM chunks").fetchone()[0]
        size = sum(_size(self.path + s) for s in ("", "-wal", "-shm"))
        return {
            "file": self.path,
            "entries": entries,
            "unconfirmed": unconfirmed,
            "directories": dirs,
            "digests": {a: n for a, n in counts.items() if n},
            "bytes": size,
        }

    def prune(self, older_than_ns: int | None = None) -> tuple[int, int]:
        """Remove entries whose file is gone or changed, and with
        ``older_than_ns``, those of directories no run used for that long.
        Returns (entries removed, entries left)."""
        db = self.db
        assert db is not None
        removed = left = 0
        if older_than_ns is not None:
            cutoff = time.time_ns() - older_than_ns
            db.execute("BEGIN IMMEDIATE")
            removed += db.execute("SELECT total(n) FROM chunks WHERE dir IN "
                                  "(SELECT id FROM dirs WHERE used < ?)", (cutoff,)).fetchone()[0]
            db.execute("DELETE FROM chunks WHERE dir IN (SELECT id FROM dirs WHERE used < ?)",
                       (cutoff,))
            db.execute("COMMIT")
        now = time.time_ns()
        for dir_id, path, first, found in list(self._chunks()):
            stale = [name for name, (key, _) in found.items()
                     if not _still(os.path.join(path, name), key)]
            left += len(found) - len(stale)
            if not stale:
                continue
            removed += len(stale)
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM chunks WHERE dir = ? AND first = ?", (dir_id, first))
            for name in stale:
                del found[name]
            if found:
                self._rewrite(dir_id, found, now)
            db.execute("COMMIT")
        db.execute("DELETE FROM dirs WHERE id NOT IN (SELECT DISTINCT dir FROM chunks)")
        if removed:
            db.execute("VACUUM")
        return int(removed), left

    def _rewrite(self, dir_id: int, found: dict[bytes, tuple[list[int], dict[str, str]]],
                 now: int) -> None:
        """Write a directory's entries ``found`` (name -> key, digests) as chunks."""
        from array import array

        names = sorted(found)
        for start in range(0, len(names), CHUNK_ENTRIES):
            part = names[start:start + CHUNK_ENTRIES]
            keys = array("q")
            for name in part:
                keys.extend(found[name][0])
            columns = {}
            for algo, spec in ALGORITHMS.items():
                got = [found[name][1].get(algo) for name in part]
                if any(got):
                    columns[algo] = "".join(d or FILLER * spec.hex_length for d in got)
            self._insert(dir_id, part[0], part[-1], len(part), b"\0".join(part),
                         keys.tobytes(), columns, now)

    def clear(self) -> int:
        """Remove every entry; how many there were."""
        db = self.db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        n = db.execute("SELECT total(n) FROM chunks").fetchone()[0]
        db.execute("DELETE FROM chunks")
        db.execute("DELETE FROM dirs")
        db.execute("COMMIT")
        db.execute("VACUUM")
        return int(n)


_ALL_COLUMNS = ", ".join(column(a) for a in ALGORITHMS)


def _unpack(names: bytes, keys: bytes, columns: dict[str, str | None]
            ) -> dict[bytes, tuple[list[int], dict[str, str]]]:
    """A chunk's entries: name -> (KEY integers, digests by algorithm)."""
    from array import array

    split = names.split(b"\0")
    ints = array("q")
    ints.frombytes(keys)
    if len(ints) != KEY * len(split):
        raise ValueError("a damaged entry")
    found = {}
    for i, name in enumerate(split):
        digests = {}
        for algo, text in columns.items():
            if text is not None:
                m = ALGORITHMS[algo].hex_length
                d = text[i * m:(i + 1) * m]
                if d and d[0] != FILLER:
                    digests[algo] = d
        found[name] = (list(ints[KEY * i:KEY * (i + 1)]), digests)
    return found


def _still(path: bytes, key: list[int]) -> bool:
    """Whether the file at ``path`` is still the one an entry of ``key`` stands for."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return ([st.st_size, st.st_mtime_ns, st.st_ctime_ns, signed(st.st_ino)] == key[:4]
            and stat.S_ISREG(st.st_mode))


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


U64 = (1 << 64) - 1


def signed(n: int) -> int:
    """An unsigned 64-bit number (an inode, a file system id) as SQLite and
    ``array("q")`` keep it; ``n & U64`` turns it back."""
    return n - (1 << 64) if n >= 1 << 63 else n


def fs_id(st: os.statvfs_result, dev: int) -> int:
    """The identity of a file system: its ``f_fsid``, which ext4, XFS and btrfs
    derive from their UUID (the same after a remount, another file system's
    differs), else its device number."""
    return signed(st.f_fsid or dev)


def damage(e: Exception) -> bool:
    """Whether a SQLite error says the file is damaged or no database (rather
    than busy, locked, full or read-only): then it is moved aside."""
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB
    import sqlite3

    text = str(e)
    return (not isinstance(e, sqlite3.OperationalError) or "malformed" in text
            or "not a database" in text)


def check_place(path: str, create: bool) -> None:
    """Refuse a cache another user could write into (raises :class:`CacheUnusable`).

    The file, and its ``-wal`` and ``-shm`` if they exist, must be regular
    files of this user's, with one link, not links; its directory (links
    resolved) must be this user's or root's and writable by no one else:
    another user who can put a ``-wal`` beside it, or a link in its place,
    could make it say anything, or make this user write where the link
    points.
    """
    from parhash.formats.names import quote_name

    shown = quote_name(path)
    me = os.geteuid()
    parent = os.path.dirname(os.path.realpath(os.path.abspath(path)))
    try:
        st = os.stat(parent)
    except OSError as e:
        raise CacheUnusable(f"cannot use the cache {shown}: {e.strerror}") from None
    if st.st_uid not in (me, 0) or st.st_mode & 0o022:
        raise CacheUnusable(f"the cache {shown} is in a directory other users can write to "
                            f"({quote_name(parent)})")
    for name in (path, path + "-wal", path + "-shm"):
        try:
            st = os.lstat(name)
        except FileNotFoundError:
            if name == path and not create:
                raise CacheUnusable(f"no cache at {shown}") from None
            continue
        except OSError as e:
            raise CacheUnusable(f"cannot use the cache {shown}: {e.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise CacheUnusable(f"{quote_name(name)} is not a regular file")
        if st.st_uid != me:
            # Another user's file could hold digests made up to match.
            raise CacheUnusable(f"the cache {quote_name(name)} belongs to another user")
        if st.st_nlink != 1:
            raise CacheUnusable(f"the cache {quote_name(name)} has other names (hard links)")


def _busy(e: Exception) -> bool:
    text = str(e)
    return "locked" in text or "busy" in text


def _unwritable(e: Exception) -> bool:
    text = str(e)
    return "readonly" in text or "unable to open" in text or "disk I/O" in text


def parse_duration(text: str) -> int:
    """``30d``, ``12h``, ``90m``, ``45s`` or ``2w`` in nanoseconds; ValueError otherwise."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    text = text.strip()
    if len(text) < 2 or text[-1] not in units:
        raise ValueError(f"{text!r} is not a duration like 30d, 12h, 90m, 45s or 2w")
    number = float(text[:-1])
    if not number >= 0 or number == float("inf"):
        raise ValueError(f"{text!r} is not a duration like 30d, 12h, 90m, 45s or 2w")
    return int(number * units[text[-1]] * _SECOND)


# --- parhash cache: stats, prune, clear ----------------------------------------------


def manage(path: str) -> Cache | None:
    """The cache at ``path`` for ``parhash cache`` to manage; None if there is
    none. Raises :class:`CacheUnusable` when it can't be used (the message
    says why)."""
    if not os.path.lexists(path):
        return None
    cache = Cache(path)
    try:
        cache._open(create=False)
    except BaseException:
        cache.close()
        raise
    return cache if cache.db is not None else None


def describe(stats: dict[str, Any]) -> str:
    """``parhash cache stats``'s text: one ``name: value`` line each."""
    from parhash.report import iec

    entries = stats["entries"]
    lines = [f"file: {stats['file']}",
             f"entries: {entries}" + (f" ({stats['unconfirmed']} unconfirmed)"
                                      if stats["unconfirmed"] else ""),
             f"directories: {stats['directories']}"]
    if stats["digests"]:
        lines.append("digests: " + ", ".join(f"{a} {n}" for a, n in stats["digests"].items()))
    size = f"size: {iec(stats['bytes'])} ({stats['bytes']} bytes)"
    if entries:
        size += f", {stats['bytes'] / entries:.0f} bytes per entry"
    lines.append(size)
    return "\n".join(lines) + "\n"
