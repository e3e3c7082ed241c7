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
SCHEMA_VERSION = 1
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


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID",
    # A directory's absolute path, links resolved, as bytes; when a run last used it.
    "CREATE TABLE IF NOT EXISTS dirs(id INTEGER PRIMARY KEY, path BLOB NOT NULL UNIQUE,"
    " used INTEGER NOT NULL DEFAULT 0)",
    # One row per file, in name order within its directory (a listing's order).
    "CREATE TABLE IF NOT EXISTS files(dir INTEGER NOT NULL, name BLOB NOT NULL,"
    " size INTEGER NOT NULL, mtime INTEGER NOT NULL, ctime INTEGER NOT NULL,"
    " ino INTEGER NOT NULL, confirmed INTEGER NOT NULL, hashed INTEGER NOT NULL,"
    + ", ".join(f"{column(a)} TEXT" for a in ALGORITHMS)
    + ", PRIMARY KEY(dir, name)) WITHOUT ROWID",
)


class CacheSpec(NamedTuple):
    """What a task needs to know of the cache: where it is, and whether to read it.

    Workers look entries up only with ``lookup`` (not on a cluster, whose
    workers can't see the client's file); they always send back what they hash.
    """

    path: str
    lookup: bool = True


# A file's entry as a lookup returns it: its row, (name as bytes, size,
# mtime_ns, ctime_ns, inode, then the digests asked for, in their order).
Entry = tuple[Any, ...]
# Where a lookup's entry's digests start.
DIGESTS = 5
# A directory whose use was recorded this recently is not recorded again:
# a warm run writes nothing.
USED_EVERY_NS = 12 * 3600 * _SECOND


# A row for Cache.write: directory path (bytes), name (bytes), size, mtime_ns,
# ctime_ns, inode, confirmed (0/1), then one digest per algorithm of the run.
Row = tuple[Any, ...]


class Rows(NamedTuple):
    """What a task hashed, to be written: ``algos`` name the digests at each row's end."""

    algos: tuple[str, ...]
    rows: list[Row]
    # Directories whose entries were looked up (their ``used`` time moves).
    used: list[bytes] = []


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

_MARGINS: dict[int, int] | None = None


def _device_margins() -> dict[int, int]:
    """The margin of each mounted device: remote file systems' is wider."""
    margins = {}
    for devno, _, fstype in _mounts():
        major, _, minor = devno.partition(":")
        with contextlib.suppress(ValueError):
            remote = fstype in NETWORK_FILE_SYSTEMS or fstype.startswith("fuse")
            margins[os.makedev(int(major), int(minor))] = (
                REMOTE_MARGIN_NS if remote else FINE_MARGIN_NS)
    return margins


def margin(dev: int, mtime_ns: int, ctime_ns: int) -> int:
    """How much older than the start of its reading a file's times must be for
    its digest to be confirmed (see the module's constants), by its device
    and times."""
    global _MARGINS
    if _MARGINS is None:
        _MARGINS = _device_margins()
    # A device the mounts don't name (a btrfs subvolume) gets the coarse margin.
    m = _MARGINS.get(dev, COARSE_MARGIN_NS)
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


def _reader(path: str) -> Any:
    global _READER, _READER_PATH, _OPENED_BY
    if path == _READER_PATH:
        return _READER
    release_reader()
    if not _may_read():
        return None
    import sqlite3
    from urllib.parse import quote

    _READER_PATH = path
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
           ) -> tuple[dict[str, Entry] | None, bool]:
    """The confirmed entries of ``directory`` (absolute, links resolved) that hold
    every one of ``algos``' digests, by name (see :data:`Entry`); with
    ``first`` and ``last``, only names between them (byte order). None when
    the cache can't be read: then every file is a miss. Also whether the
    directory's use is worth recording (not done for :data:`USED_EVERY_NS`).
    Two queries; about 0.5 us a row."""
    if not spec.lookup:
        return None, False
    db = _reader(spec.path)
    if db is None:
        return None, False
    import sqlite3

    sql = _LOOKUPS.get((algos, first is not None))
    if sql is None:
        sql = (f"SELECT name, size, mtime, ctime, ino, {', '.join(column(a) for a in algos)} "
               "FROM files WHERE dir = ? AND confirmed "
               + "".join(f"AND {column(a)} IS NOT NULL " for a in algos)
               + ("AND name BETWEEN ? AND ?" if first is not None else ""))
        _LOOKUPS[(algos, first is not None)] = sql
    try:
        found = db.execute("SELECT id, used FROM dirs WHERE path = ?", (directory,)).fetchone()
        if found is None:
            return None, False
        args = (found[0],) if first is None else (found[0], first, last)
        rows = db.execute(sql, args).fetchall()
    except sqlite3.Error:
        release_reader()
        return None, False
    if not rows:
        return None, False
    encoding, errors = _NAMES
    return ({r[0].decode(encoding, errors): r for r in rows},
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


def hit(entry: Entry | None, st: os.stat_result) -> bool:
    """Whether the entry stands for the regular file ``st`` describes."""
    return (entry is not None and entry[1] == st.st_size and entry[2] == st.st_mtime_ns
            and entry[3] == st.st_ctime_ns and entry[4] == st.st_ino
            and stat.S_ISREG(st.st_mode))


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
        fstype = file_system_of(os.path.realpath(parent))
        if is_network(fstype):
            raise CacheUnusable(f"the cache {shown} is on a network file system ({fstype}), "
                                "where SQLite's locking is not safe")
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if not create:
                raise CacheUnusable(f"no cache at {shown}") from None
            st = None
        except OSError as e:
            raise CacheUnusable(f"cannot use the cache {shown}: {e.strerror}") from None
        if st is not None:
            if not stat.S_ISREG(st.st_mode):
                raise CacheUnusable(f"the cache {shown} is not a regular file")
            if st.st_uid != os.geteuid():
                # Another user's file could hold digests made up to match.
                raise CacheUnusable(f"the cache {shown} belongs to another user")
        try:
            self._connect()
            self._check(create)
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.OperationalError) and _unwritable(e):
                raise CacheUnusable(f"cannot write the cache {shown}: {e}") from None
            self._move_aside(str(e))
            try:
                self._connect()
                self._check(create)
            except sqlite3.Error as again:
                raise CacheUnusable(f"cannot use the cache {shown}: {again}") from None
        except OSError as e:
            raise CacheUnusable(f"cannot use the cache {shown}: {e.strerror}") from None

    def _connect(self) -> None:
        import sqlite3

        global _WRITERS, _OPENED_BY
        old = os.umask(0o077)  # the cache names files: for its owner only
        try:
            self.db = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None,
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
        have = {r[1] for r in db.execute("PRAGMA table_info(files)")}
        for algo in ALGORITHMS:  # algorithms added since the file was made
            if algo.replace("-", "_") not in have:
                db.execute(f"ALTER TABLE files ADD COLUMN {column(algo)} TEXT")
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

    def _move_aside(self, why: str) -> None:
        """Put a file that is not a usable cache out of the way, with one warning."""
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
                 f"moved it to {quote_name(aside)} and started a new one")

    # -- in use

    def spec(self, lookup: bool = True) -> CacheSpec:
        return CacheSpec(os.path.abspath(self.path), lookup)

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

    def _dir_ids(self, paths: Iterable[bytes], now: int) -> dict[bytes, int]:
        db = self.db
        assert db is not None
        ids = self.dirs
        for path in paths:
            if path not in ids:
                db.execute("INSERT OR IGNORE INTO dirs(path, used) VALUES (?, ?)", (path, now))
                ids[path] = db.execute("SELECT id FROM dirs WHERE path = ?", (path,)).fetchone()[0]
        return ids

    def write(self, rows: Rows | None) -> None:
        """Store one task's digests, in one transaction; never raises."""
        if rows is None or self.broken or not (rows.rows or rows.used):
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
            except sqlite3.DatabaseError as e:  # damaged while in use
                self._give_up(str(e))
                return

    def _write(self, rows: Rows) -> None:
        if self.db is None:
            self._connect()
        db = self.db
        assert db is not None
        now = time.time_ns()
        db.execute("BEGIN IMMEDIATE")
        try:
            touched = {r[0] for r in rows.rows}.union(rows.used)
            ids = self._dir_ids(touched, now)
            db.executemany("UPDATE dirs SET used = ? WHERE id = ?",
                           [(now, ids[p]) for p in touched])
            if rows.rows:
                db.executemany(self._upsert(rows.algos),
                               [(ids[r[0]], *r[1:], now) for r in rows.rows])
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                db.execute("ROLLBACK")
            self.dirs.clear()
            raise

    def _upsert(self, algos: tuple[str, ...]) -> str:
        sql = self.columns.get(algos)
        if sql is None:
            mine = [column(a) for a in algos]
            others = [column(a) for a in ALGORITHMS if a not in algos]
            # Another algorithm's digest stays only if it is of the same file,
            # and both it and the new one are confirmed: a digest read while
            # the file was racy must not be confirmed by a later one's times.
            same = ("files.size = excluded.size AND files.mtime = excluded.mtime AND "
                    "files.ctime = excluded.ctime AND files.ino = excluded.ino AND "
                    "files.confirmed AND excluded.confirmed")
            sets = [f"{c} = excluded.{c}" for c in
                    ("size", "mtime", "ctime", "ino", "confirmed", "hashed", *mine)]
            sets += [f"{c} = CASE WHEN {same} THEN files.{c} END" for c in others]
            sql = (f"INSERT INTO files(dir, name, size, mtime, ctime, ino, confirmed, "
                   f"{', '.join(mine)}, hashed) VALUES ({', '.join('?' * (8 + len(mine)))}) "
                   f"ON CONFLICT(dir, name) DO UPDATE SET {', '.join(sets)}")
            self.columns[algos] = sql
        return sql

    def _give_up(self, why: str) -> None:
        from parhash.console import warn
        from parhash.formats.names import quote_name

        self.broken = True
        warn(f"parhash: warning: cannot write the cache {quote_name(self.path)}: {why}; "
             "going on without it")
        self.close()

    # -- management

    def stats(self) -> dict[str, Any]:
        """Entries, directories, digests per algorithm, and the file's size."""
        db = self.db
        assert db is not None
        entries, unconfirmed = db.execute(
            "SELECT count(*), count(*) - total(confirmed) FROM files").fetchone()
        dirs = db.execute("SELECT count(*) FROM dirs").fetchone()[0]
        counts = db.execute("SELECT " + ", ".join(f"count({column(a)})" for a in ALGORITHMS)
                            + " FROM files").fetchone()
        size = sum(_size(self.path + s) for s in ("", "-wal", "-shm"))
        return {
            "file": self.path,
            "entries": entries,
            "unconfirmed": int(unconfirmed),
            "directories": dirs,
            "digests": {a: n for a, n in zip(ALGORITHMS, counts, strict=True) if n},
            "bytes": size,
        }

    def prune(self, older_than_ns: int | None = None) -> tuple[int, int]:
        """Remove entries whose file is gone or changed, and with
        ``older_than_ns``, those of directories no run used for that long.
        Returns (entries removed, entries left)."""
        db = self.db
        assert db is not None
        removed = 0
        if older_than_ns is not None:
            cutoff = time.time_ns() - older_than_ns
            db.execute("BEGIN IMMEDIATE")
            removed += db.execute("DELETE FROM files WHERE dir IN "
                                  "(SELECT id FROM dirs WHERE used < ?)", (cutoff,)).rowcount
            db.execute("COMMIT")
        dirs = db.execute("SELECT id, path FROM dirs").fetchall()
        for dir_id, path in dirs:
            stale = [name for name, key in _rows_of(db, dir_id)
                     if not _still(os.path.join(path, name), key)]
            if stale:
                db.execute("BEGIN IMMEDIATE")
                removed += db.executemany("DELETE FROM files WHERE dir = ? AND name = ?",
                                          [(dir_id, n) for n in stale]).rowcount
                db.execute("COMMIT")
        db.execute("DELETE FROM dirs WHERE id NOT IN (SELECT DISTINCT dir FROM files)")
        left = db.execute("SELECT count(*) FROM files").fetchone()[0]
        if removed:
            db.execute("VACUUM")
        return removed, left

    def clear(self) -> int:
        """Remove every entry; how many there were."""
        db = self.db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        n = db.execute("DELETE FROM files").rowcount
        db.execute("DELETE FROM dirs")
        db.execute("COMMIT")
        db.execute("VACUUM")
        return n


def _rows_of(db: Any, dir_id: int) -> Iterator[tuple[bytes, tuple[int, int, int, int]]]:
    for name, size, mtime, ctime, ino in db.execute(
            "SELECT name, size, mtime, ctime, ino FROM files WHERE dir = ?", (dir_id,)):
        yield name, (size, mtime, ctime, ino)


def _still(path: bytes, key: tuple[int, int, int, int]) -> bool:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) == key and stat.S_ISREG(
        st.st_mode)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


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
    return cache


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
