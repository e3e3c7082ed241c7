"""Tasks: what a worker carries from the walk to formatted bytes, and what comes back.

A task is a list of work items, and a worker does all of each item:

- a :class:`~parhash.walk.Directory`: list it, hash its regular files, and
  hand back its subdirectories as new items;
- a :class:`Part` of a directory: some of its files by name (a huge
  directory cut in pieces, a large file sent alone), or the whole listing
  less the files given up on;
- a path named by the user (an argument, a line of ``--files-from``):
  a file is hashed, a directory handed back as a new item;
- the matches of a glob, walked in the main process: a
  :class:`~parhash.walk.WalkedRun`, or :class:`~parhash.results.WalkError`
  values, which are only reported.

Each task comes back as one :class:`TaskResult`: the records already
formatted for the output (or, for the Python API and ``--sort``, compact
records), the error lines for stderr, counts, and the new items. The main
process only schedules items and writes bytes; it never opens, stats or
formats a file. Everything here is plain picklable data, so any executor
(a process pool, this process, a cluster) can carry it.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import functools
import os
import stat
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from parhash.algorithms import ALGORITHMS, Hasher
from parhash.console import TEMPORARY_SUFFIX
from parhash.executor import (
    INFLIGHT_PER_WORKER,
    INLINE_MAX_FILES,
    Answer,
    Executor,
    Feed,
    ReadAhead,
    clamp_jobs,
    inline_bytes,
    run_tasks,
)
from parhash.formats import RecordFormat
from parhash.formats.names import FS_ENCODING, FS_ERRORS
from parhash.hashing import (
    _BUFFER,
    CHANGED_WHILE_HASHING,
    DEFAULT_BLOCK_SIZE,
    NOT_REGULAR,
    OPEN_FLAGS,
    _hash_file,
    digest_open,
    directories,
    hash_named,
    is_own_stream,
    release_directories,
)
from parhash.pool import WORKER_DIED, PipelineStats, Within, note_directory, note_item
from parhash.report import error_line
from parhash.results import PAUSE, Pause, Result, WalkError, reason
from parhash.select import Predicates
from parhash.walk import (
    LOOP,
    Directory,
    Linked,
    Walked,
    WalkedRun,
    _Ancestor,
    _as_prefix,
    _loop_ancestor,
    named_paths,
    open_directory,
    open_listing,
    walked_reason,
)

# A task closes at whichever comes first: this many files, or this many bytes
# hashed. The main process pays some 0.1-0.2 ms for each task it hands out
# and takes back (see benchmarks/RESULTS.md): a thousand small files make
# that a fraction of a microsecond per file.
TASK_FILES = 1024
TASK_BYTES = 16 << 20
# A file this large is hashed in a task of its own, so that the workers
# share a few large files evenly instead of one of them reading them all.
ALONE_BYTES = 4 << 20
NEVER_ALONE = 1 << 62
# Directories handed to one task at most, when there are enough to go round.
MAX_DIRS_PER_TASK = 32

# The format name under which records come back as Result values.
RESULTS = "results"

if TYPE_CHECKING:
    from parhash.cache import Cache, CacheSpec, Known, Recorder

READ_FLAGS = OPEN_FLAGS | getattr(os, "O_NOFOLLOW", 0)
WALKER_DIED = "worker process died while reading this directory"


class Part(NamedTuple):
    """Part of a directory's work: some of its files, or all of it but a few.

    ``names`` are regular files of ``directory`` joined by NUL (which no
    name holds), as its listing found them; empty, the whole listing. Names
    in ``skip`` are not hashed: they were given up on. With ``split`` the
    directory is listed and each file handed back as a part of its own, after
    a worker died on it.
    """

    directory: Directory
    names: str = ""
    skip: frozenset[str] = frozenset()
    split: bool = False


class ScanJob(NamedTuple):
    """What every task of one run shares: what to compute and how to write it."""

    algos: tuple[str, ...]
    block_size: int = DEFAULT_BLOCK_SIZE
    # A name of formats.FORMATS, or RESULTS for Result values.
    fmt: str = "gnu"
    zero: bool = False
    # Records come back as (name as bytes, record) pairs, to be sorted.
    sort: bool = False
    follow: bool = False
    select: Predicates | None = None
    # (device, inode) of files never to list: the run's own output.
    skip: frozenset[tuple[int, int]] = frozenset()
    files: int = TASK_FILES
    nbytes: int = TASK_BYTES
    # Files this large go alone; with one process there is no one to share with.
    alone: int = ALONE_BYTES
    # The job of the first tasks, done in the main process: a large file goes
    # alone even when it is all its task holds, so that a worker reads it.
    first: bool = False
    prog: str = "parhash"
    # A directory on a pseudo file system (/proc, /sys...) is a walk error.
    skip_pseudo: bool = False
    # What a kind of task other than scan's needs besides (see run_task).
    options: Any = None
    # The hash cache to look files up in and send digests back for.
    cache: CacheSpec | None = None
    # Leave out names of -o files being written (see TEMPORARY_SUFFIX). An
    # audit sees them: a name anyone can give a file must not hide it there.
    temporary: bool = True


class TaskResult(NamedTuple):
    """What one task gives back.

    ``out`` is the task's records in the output format, ``err`` its error
    lines for stderr (``parhash: NAME: reason``); ``files`` and ``nbytes``
    count the files hashed, ``errors`` those that could not be. ``tasks``
    are new items to share out, ``alone`` items each to go in a task of its
    own, ``rest`` the task's own items it had no room for. ``records``
    holds Result values (format ``RESULTS``) or, with
    ``sort``, ``(name, record)`` pairs; then ``out`` is empty.
    """

    out: bytes = b""
    err: bytes = b""
    files: int = 0
    nbytes: int = 0
    errors: int = 0
    tasks: list[Any] = []
    alone: list[Any] = []
    records: list[Any] = []
    # Items of the task it had no room for, handed back as they came.
    rest: list[Any] = []
    # The --include/--exclude patterns that matched a path in the task.
    matched: frozenset[tuple[str, str]] = frozenset()
    # With the cache: files it answered for (among ``files``), and the
    # digests read, to be written (a cache.Rows).
    hits: int = 0
    cache: Any = None


# The directories this process reads files from, shared with hashing.hash_file.
_DESCENT = directories()


def release_descent() -> None:
    """Close the directories this process holds open for its tasks."""
    release_directories()


class _Task:
    """One task's work in a worker: its counts, records and new items."""

    def __init__(self, job: ScanJob, size: int) -> None:
        self.job = job
        self.size = size  # items in the task
        self.constructors: list[Callable[[], Hasher]] = [ALGORITHMS[a].new for a in job.algos]
        self.cache = job.cache
        self.format = (RecordFormat(job.fmt, job.algos, job.zero, cache=job.cache is not None)
                       if job.fmt != RESULTS else None)
        self.out: list[str] = []
        self.err: list[str] = []
        self.records: list[Any] = []
        self.files = 0
        self.nbytes = 0
        self.errors = 0
        self.tasks: list[Any] = []
        self.alone: list[Any] = []
        self.rest: list[Any] = []
        self.hits = 0
        self.recorder: Recorder | None = None
        if job.cache is not None:
            from parhash.cache import Recorder

            self.recorder = Recorder(job.cache)
            # The directory being read: its resolved path and cached entries,
            # and whether it is on a network file system.
            self.real = b""
            self.known: Known | None = None
            self.remote = False
            # Entries the client sent with the items (see Cached), by directory.
            self.preloaded: dict[bytes, Known] = {}

    def full(self) -> bool:
        """Whether the task has room for no more items."""
        return self.files + self.errors >= self.job.files or self.nbytes >= self.job.nbytes

    def overfull(self) -> bool:
        """Whether even the directory being read must stop here."""
        job = self.job
        stretch = 1 if job.first else 2
        return (self.files + self.errors >= stretch * job.files
                or self.nbytes >= stretch * job.nbytes)

    def result(self) -> TaskResult:
        matched = getattr(self.job.select, "matched", None)
        rows = self.recorder.rows() if self.recorder is not None else None
        return TaskResult(
            "".join(self.out).encode(FS_ENCODING, FS_ERRORS),
            "".join(self.err).encode(FS_ENCODING, FS_ERRORS),
            self.files, self.nbytes, self.errors, self.tasks, self.alone, self.records,
            self.rest, frozenset(matched) if matched else frozenset(), self.hits, rows,
        )

    # --- the cache

    def enter(self, dirfd: int, d: Directory, names: list[str] | None = None) -> None:
        """Look up the cached entries of directory ``d``, open as ``dirfd``
        (only those of ``names``' range, for a part of it): one query."""
        from parhash.cache import REMOTE_MARGIN_NS, device_margin, fs_id, resolved_directory

        assert self.recorder is not None
        self.real = d.real if d.real is not None else resolved_directory(dirfd, d.path)
        first = last = None
        if names:
            first = names[0].encode(FS_ENCODING, FS_ERRORS)
            last = names[-1].encode(FS_ENCODING, FS_ERRORS)
            if last < first:
                first, last = last, first
        known = self.preloaded.pop(self.real, None) if self.preloaded else None
        try:
            dev = d.identity[0] if d.identity is not None else os.fstat(dirfd).st_dev
            fsid = fs_id(os.fstatvfs(dirfd), dev)
        except OSError:
            self.known = None
            self.real = b""  # nothing looked up, nothing kept
            return
        # On a network file system an entry is checked against the stat of
        # the open file (see files_in): only an open makes it ask the server.
        self.remote = device_margin(dev) >= REMOTE_MARGIN_NS
        self.known = self.recorder.directory(self.real, self.job.algos, fsid, first, last, known)

    def preload(self, item: Cached) -> Any:
        """Take the entries a cluster's client sent with ``item``; the item itself."""
        inner = item.item
        d = inner.directory if isinstance(inner, Part) else inner
        if d.real is not None:
            self.preloaded[d.real] = item.known
        return item.item


    def cached(self, path: str, digests: list[str], st: os.stat_result) -> None:
        """A file the cache answered for."""
        self.files += 1
        self.nbytes += st.st_size
        self.hits += 1
        if self.format is None:
            self.records.append(Result(path, dict(zip(self.job.algos, digests, strict=True)),
                                       st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino,
                                       ctime_ns=st.st_ctime_ns, cached=True))
            return
        self.record(path, self.format.hit_text(path, digests, st.st_size))

    def answered(self, dirfd: int, name: str, path: str) -> bool:
        """Whether the cache answered for file ``name`` of the directory being read."""
        known = self.known
        if known is None or name not in known.index:
            return False
        try:
            if self.remote:  # only an open makes a network file system ask its server
                fd = os.open(name, READ_FLAGS, dir_fd=dirfd)
                try:
                    st = os.fstat(fd)
                finally:
                    os.close(fd)
            else:
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        except OSError:
            return False
        i = known.hit(name, st)
        if i is None:
            return False
        if not (self.job.skip and (st.st_dev, st.st_ino) in self.job.skip):
            self.cached(path, known.digests(i), st)
        return True

    def hash_cached(self, path: str, st: os.stat_result | None, top: int = -1,
                    root: tuple[int, int] | None = None) -> Result:
        """:meth:`hash_path` with the cache: the answer from it, or the file read
        and its digests kept. ``st``: what ``stat`` says of it (None: to ask)."""
        recorder = self.recorder
        assert recorder is not None
        algos = self.job.algos
        digests, st = recorder.find(path, algos, st, follow=top < 0)
        if digests is not None and st is not None:
            return Result(path, digests, st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino,
                          ctime_ns=st.st_ctime_ns, cached=True)
        r = _hash_file(path, self.constructors, algos, self.job.block_size, top, root)
        if r.error is None:
            recorder.keep_path(path, r.size, r.mtime_ns, r.ctime_ns, r.ino, r.dev, r.digests)
            r = r._replace(cached=False)
        return r

    # --- what each file comes to

    def hashed(self, path: str, hashers: list[Hasher], size: int, st: os.stat_result,
               name: str | None = None) -> None:
        """A file read, ``name`` of the directory being read (for the cache)."""
        self.files += 1
        self.nbytes += size
        hexes = [h.hexdigest() for h in hashers]
        if self.recorder is not None and name is not None:
            self.recorder.keep(self.real, name, size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                               st.st_dev, self.job.algos, hexes)
        if self.format is None:
            digests = dict(zip(self.job.algos, hexes, strict=True))
            self.records.append(Result(path, digests, size, st.st_mtime_ns, st.st_dev, st.st_ino,
                                       ctime_ns=st.st_ctime_ns,
                                       cached=None if self.cache is None else False))
            return
        self.record(path, self.format.text(path, hexes, size))

    def record(self, path: str, text: str) -> None:
        if self.job.sort:
            self.records.append((os.fsencode(path), text))
        else:
            self.out.append(text)

    def failed(self, path: str, why: str, code: int | None = None,
               st: os.stat_result | None = None) -> None:
        self.errors += 1
        if self.format is None:
            if st is not None:  # changed while hashing: what was seen of it
                self.records.append(Result(path, {}, st.st_size, st.st_mtime_ns, st.st_dev,
                                           st.st_ino, why, code))
            else:
                self.records.append(Result(path, {}, error=why, errno=code))
            return
        self.err.append(error_line(self.job.prog, path, why))
        if self.format.holds_errors:
            self.record(path, self.format.error_text(path, why))

    def result_of(self, r: Result) -> None:
        """A file hashed as a :class:`Result` (by path: off the fast loop)."""
        if self.job.skip and r.ino and (r.dev, r.ino) in self.job.skip:
            return
        if r.error is not None:
            self.failed(r.path, r.error, r.errno)
            return
        self.files += 1
        self.nbytes += r.size
        if r.cached:
            self.hits += 1
        if self.format is None:
            self.records.append(r)
            return
        write = self.format.hit_text if r.cached else self.format.text
        self.record(r.path, write(r.path, [r.digests[a] for a in self.job.algos], r.size))

    # --- the items

    def directory(self, index: int, d: Directory, skip: frozenset[str] = frozenset()) -> None:
        job = self.job
        note_item(index)  # no file yet: a death while listing is the directory's
        opened = open_listing(d, _DESCENT, follow=job.follow, select=job.select, skip=skip,
                              note=functools.partial(note_item, index, 0),
                              skip_pseudo=job.skip_pseudo)
        if isinstance(opened, WalkError):
            self.walk_error(opened)
            return
        fd, entries = opened
        if self.cache is not None:
            self.enter(fd, d)
            if self.real == self.cache.home:  # the cache's own files are not hashed
                skip = skip | self.cache.own
        self.files_in(fd, d, entries, index, skip, 2)
        # What the task had no room for: the next tasks'.
        per = self.part_files()
        left: list[str] = []
        for entry in entries:
            if type(entry) is str:
                left.append(entry)
                if len(left) >= per:
                    self.tasks.append(Part(d, "\0".join(left), skip))
                    left = []
            else:
                self.entry(entry, index, skip)
        if left:
            self.tasks.append(Part(d, "\0".join(left), skip))

    def part_files(self) -> int:
        """How many files of a directory too large for this task go in each part of the rest.

        As many as fill a task by the sizes met so far: the rest of a large
        directory goes to the workers in parts side by side, not in a chain
        of one part each, which kept one worker busy at the end of a run
        while the others waited (the standard library's test/__pycache__,
        100 MB in 1,500 files: 60 ms of one worker alone).
        """
        job = self.job
        if self.nbytes <= job.nbytes or not self.files:
            return job.files
        return max(1, min(job.files, job.nbytes * self.files // self.nbytes))

    def entry(self, entry: Any, index: int, skip: frozenset[str] = frozenset()) -> None:
        """Whatever a listing holds besides regular files."""
        if type(entry) is Directory:
            self.tasks.append(entry)
        elif type(entry) is Linked:
            if skip and entry.path.rpartition("/")[2] in skip:
                return  # given up on
            note_item(index, 0, entry.path)
            self.linked(entry)
        else:
            assert isinstance(entry, WalkError)
            self.walk_error(entry)

    def linked(self, entry: Linked) -> None:
        """A link to a regular file, followed with -L."""
        self.result_of(self.hash_path(entry.path, st=entry.st))

    def part(self, index: int, p: Part) -> None:
        if p.split:
            self.split(p)
            return
        if not p.names:
            self.directory(index, p.directory, p.skip)
            return
        d = p.directory
        note_item(index)
        opened = open_directory(d, _DESCENT)
        if isinstance(opened, WalkError):
            self.walk_error(opened)
            return
        names = p.names.split("\0")
        skip = p.skip
        if self.cache is not None:
            self.enter(opened[0], d, names)
            if self.real == self.cache.home:
                skip = skip | self.cache.own
        rest = iter(names)
        self.files_in(opened[0], d, rest, index, skip, len(names))
        left = list(rest)
        per = self.part_files()
        for start in range(0, len(left), per):
            self.tasks.append(Part(d, "\0".join(left[start:start + per]), p.skip))

    def split(self, p: Part) -> None:
        """List a directory a worker died on; each file goes back as a task of its own."""
        d = p.directory
        opened = open_listing(d, _DESCENT, follow=self.job.follow, select=self.job.select,
                              skip=p.skip, note=functools.partial(note_item, 0, 0),
                              skip_pseudo=self.job.skip_pseudo)
        if isinstance(opened, WalkError):
            self.walk_error(opened)
            return
        for entry in opened[1]:
            if type(entry) is str:
                if entry not in p.skip:
                    self.alone.append(Part(d, entry))
            elif type(entry) is Linked:
                self.alone.append(entry.path)
            else:
                self.entry(entry, 0)

    def files_in(self, dirfd: int, d: Directory, entries: Iterator[Any], index: int,
                 skip: frozenset[str], among: int) -> None:
        """Hash the regular files that ``entries`` name in the open directory ``dirfd``.

        Other entries go to :meth:`entry`. Stops, leaving the rest of
        ``entries`` unread, once the task is full, though never before its
        first file. This loop is where a worker spends its time on small
        files: the common case (a regular file read whole by one ``readv``,
        one algorithm, text records) runs inline, with no call per file but
        the system's and the hash's; it costs some 2 us a file above those.
        """
        job = self.job
        top = d.path
        if len(self.constructors) != 1 or self.format is None or job.sort:
            for name in entries:
                if type(name) is not str:
                    self.entry(name, index, skip)
                elif not (skip and name in skip):
                    self.file_in(dirfd, top, name, index, d, among)
                    if self.overfull():
                        return
            return
        new = self.constructors[0]
        text = self.format.text
        gnu = job.fmt == "gnu" and not job.zero
        # With the cache: its entries for this directory, and what is read for it.
        caching = self.cache is not None
        known = self.known if caching else None
        # On a network file system the entry is checked after the open (see enter).
        remote_known = known if known is not None and self.remote else None
        if remote_known is not None:
            known = None
            hit_text = self.format.hit_text
        if known is not None:
            from parhash.cache import U64

            lstat = functools.partial(os.stat, dir_fd=dirfd, follow_symlinks=False)
            hit_text = self.format.hit_text
            known_index = known.index
            keys = known.keys
            digests = known.columns[0]
            length = known.lengths[0]
        if caching:
            from parhash.cache import COARSE_MARGIN_NS, REMOTE_MARGIN_NS, device_margin, signed
            from parhash.walk import is_pseudo_fs

            assert self.recorder is not None
            kept_names, kept_keys, kept_digests = self.recorder.store(self.real, job.algos)
            keep_name = kept_names.append
            keep_digest = kept_digests[0].append
            started = self.recorder.started
            # The racy-file rule (cache.confirmed) at its cheapest: a file
            # older than the widest margin is confirmed at once.
            old_cut = started - REMOTE_MARGIN_NS
            device = -1
            device_ns = 0
            pseudo = True
            keeping = bool(self.real)
        out = self.out.append
        block_size = job.block_size
        view = _BUFFER.get(block_size)
        views = _BUFFER.views
        owned = job.skip
        alone = job.alone if among > 1 or self.size > 1 or job.first else NEVER_ALONE
        noted = note_directory(index, top)
        if noted is not None:
            name_view, cells, cell, start = noted
            room = len(name_view)
        open_, fstat, readv, close = os.open, os.fstat, os.readv, os.close
        files = self.files
        nbytes = self.nbytes
        # The task's size is checked between directories; within one, only
        # a directory too large for a task (twice its files) is cut here.
        # The first tasks stop at their size: the workers are waiting for them.
        stretch = 1 if job.first else 2
        limit = stretch * job.files - self.errors
        limit_bytes = stretch * job.nbytes
        try:
            for name in entries:
                if type(name) is not str:
                    self.files, self.nbytes = files, nbytes
                    self.entry(name, index, skip)
                    files, nbytes = self.files, self.nbytes
                    continue
                if skip and name in skip:
                    continue
                if name[0] == "." and name.endswith(TEMPORARY_SUFFIX) and job.temporary:
                    continue  # an -o file that a parhash run is writing
                path = top + name
                if noted is not None:
                    encoded = name.encode(FS_ENCODING, FS_ERRORS)
                    end = start + len(encoded)
                    if end <= room:
                        name_view[start:end] = encoded
                        cells[cell] = end
                    else:
                        cells[cell] = start  # too long to name: its directory
                if known is not None:
                    i = known_index.get(name)
                    if i is not None:
                        try:
                            st = lstat(name)
                        except OSError:
                            pass  # the open says what is wrong
                        else:
                            size = st.st_size
                            k = 5 * i
                            if (keys[k] == size and keys[k + 1] == st.st_mtime_ns
                                    and keys[k + 2] == st.st_ctime_ns
                                    and keys[k + 3] & U64 == st.st_ino
                                    and st.st_mode & 0o170000 == 0o100000):
                                if owned and (st.st_dev, st.st_ino) in owned:
                                    continue
                                files += 1
                                nbytes += size
                                # Not a local: the other paths (a link under -L)
                                # count their hits on the task as they go.
                                self.hits += 1
                                digest = digests[i * length:(i + 1) * length]
                                if (gnu and "\\" not in path and "\n" not in path
                                        and "\r" not in path):
                                    out(f"{digest}  {path}\n")
                                else:
                                    out(hit_text(path, [digest], size))
                                if files >= limit or nbytes >= limit_bytes:
                                    return
                                continue
                try:
                    fd = open_(name, READ_FLAGS, dir_fd=dirfd)
                except OSError as e:
                    self.files, self.nbytes = files, nbytes
                    self.failed(path, walked_reason(e), e.errno)
                    limit -= 1
                    continue
                try:
                    st = fstat(fd)
                    size = st.st_size
                    if remote_known is not None:
                        i = remote_known.hit(name, st)
                        if i is not None:
                            if not (owned and (st.st_dev, st.st_ino) in owned):
                                files += 1
                                nbytes += size
                                self.hits += 1
                                out(hit_text(path, remote_known.digests(i), size))
                                if files >= limit or nbytes >= limit_bytes:
                                    return
                            continue
                    if (st.st_mode & 0o170000 != 0o100000 or size >= alone
                            or (owned and (st.st_dev, st.st_ino) in owned)):
                        self.files, self.nbytes = files, nbytes
                        before = self.errors
                        self.odd_file(fd, st, path, d, name)
                        limit -= self.errors - before
                        files, nbytes = self.files, self.nbytes
                        continue
                    h = new()
                    n = readv(fd, views)
                    if n == size and n < block_size:
                        h.update(view[:n])
                    else:
                        # Several reads: the general loop, which also sees a
                        # file that changes meanwhile.
                        hashers, st, error, code = digest_open(fd, [new], block_size, st,
                                                               first=n)
                        if error is not None:
                            self.files, self.nbytes = files, nbytes
                            self.failed(path, error, code,
                                        st if error is CHANGED_WHILE_HASHING else None)
                            limit -= 1
                            continue
                        h = hashers[0]
                        size = st.st_size
                except OSError as e:
                    self.files, self.nbytes = files, nbytes
                    self.failed(path, reason(e), e.errno)
                    limit -= 1
                    continue
                finally:
                    close(fd)
                files += 1
                nbytes += size
                digest = h.hexdigest()
                if caching and keeping:
                    if st.st_dev != device:
                        device = st.st_dev
                        device_ns = device_margin(device)
                        # /proc, /sys: contents change under the same size and times.
                        pseudo = is_pseudo_fs(device)
                    if not pseudo:
                        mtime, ctime = st.st_mtime_ns, st.st_ctime_ns
                        newest = mtime if mtime > ctime else ctime
                        if newest < old_cut:
                            sure = 1
                        else:
                            wait = (device_ns if device_ns >= COARSE_MARGIN_NS or (
                                mtime % 1_000_000_000 and ctime % 1_000_000_000)
                                else COARSE_MARGIN_NS)
                            sure = int(newest + wait < started)
                        keep_name(name.encode(FS_ENCODING, FS_ERRORS))
                        kept_keys += (size, mtime, ctime, signed(st.st_ino), sure)
                        keep_digest(digest)
                if gnu and "\\" not in path and "\n" not in path and "\r" not in path:
                    out(f"{digest}  {path}\n")
                else:
                    out(text(path, [digest], size))
                if files >= limit or nbytes >= limit_bytes:
                    return
        finally:
            self.files, self.nbytes = files, nbytes

    def odd_file(self, fd: int, st: os.stat_result, path: str, d: Directory, name: str) -> None:
        """A file of the fast loop that is not a small regular file of someone else's."""
        if self.job.skip and (st.st_dev, st.st_ino) in self.job.skip:
            return
        if stat.S_ISREG(st.st_mode):  # a large one: alone, in a task of its own
            self.alone.append(Part(d, name))
            return
        try:
            _, st, error, code = digest_open(fd, self.constructors, self.job.block_size, st)
        except OSError as e:
            error, code = reason(e), e.errno
        self.failed(path, error or NOT_REGULAR, code)

    def file_in(self, dirfd: int, top: str, name: str, index: int, d: Directory,
                among: int) -> None:
        """Hash regular file ``name`` of the open directory ``dirfd`` (shown as ``top``)."""
        path = top + name
        if name.endswith(TEMPORARY_SUFFIX) and name.startswith(".") and self.job.temporary:
            return  # an -o file that a parhash run is writing
        note_item(index, 0, path)
        if self.cache is not None and self.answered(dirfd, name, path):
            return
        try:
            fd = os.open(name, READ_FLAGS, dir_fd=dirfd)
        except OSError as e:
            self.failed(path, walked_reason(e), e.errno)
            return
        try:
            st = os.fstat(fd)
            if self.job.skip and (st.st_dev, st.st_ino) in self.job.skip:
                return
            shared = among > 1 or self.size > 1 or self.job.first
            if shared and st.st_size >= self.job.alone and stat.S_ISREG(st.st_mode):
                self.alone.append(Part(d, name))
                return
            hashers, st, error, code = digest_open(fd, self.constructors, self.job.block_size, st)
        except OSError as e:
            self.failed(path, reason(e), e.errno)
            return
        finally:
            os.close(fd)
        if error is None:
            self.hashed(path, hashers, st.st_size, st, name)
        else:
            self.failed(path, error, code, st if error is CHANGED_WHILE_HASHING else None)

    def hash_path(self, path: str, top: int = -1, root: tuple[int, int] | None = None,
                  st: os.stat_result | None = None) -> Result:
        """Hash the file ``path`` (see :func:`~parhash.hashing._hash_file`); with the
        cache, its answer if it has one (``st``, if given, is what ``stat`` said)."""
        if self.cache is not None:
            return self.hash_cached(path, st, top, root)
        return _hash_file(path, self.constructors, self.job.algos, self.job.block_size, top, root)

    def named(self, index: int, path: str, argument: bool = False) -> None:
        """A path the user named: a file is hashed, a directory becomes an item.

        A FIFO or a device is hashed if it is an ``argument``, as md5sum
        hashes one; one from a list (``find`` often leaves them in) is
        reported unopened, so that a FIFO with no writer never hangs the run.
        """
        note_item(index)
        if (path.endswith(TEMPORARY_SUFFIX) and path.rpartition("/")[2].startswith(".")
                and self.job.temporary):
            return
        try:
            st = os.stat(path)
        except ValueError:  # a NUL byte, from a newline-separated list
            self.failed(path, os.strerror(errno.EINVAL), errno.EINVAL)
            return
        except OSError as e:
            self.failed(path, reason(e), e.errno)
            return
        if stat.S_ISDIR(st.st_mode):
            root = None
            if self.job.follow:
                root = _Ancestor(st.st_dev, st.st_ino, path or ".", None)
            real = None
            if self.cache is not None:
                with contextlib.suppress(OSError, ValueError):
                    real = os.fsencode(os.path.realpath(path))
            self.tasks.append(Directory(_as_prefix(path), "", 0, root,
                                        identity=(st.st_dev, st.st_ino), real=real))
        elif not stat.S_ISREG(st.st_mode):
            if argument:
                self.named_special(path)
            else:
                self.failed(path, NOT_REGULAR)
        else:
            self.named_file(path, st)

    def named_special(self, path: str) -> None:
        """A FIFO, a device or a socket the user named: read to its end, as md5sum
        reads it (a socket can't be opened, and is an error)."""
        self.result_of(hash_named(path, self.constructors, self.job.algos, self.job.block_size))

    def named_file(self, path: str, st: os.stat_result) -> None:
        """A regular file the user named, ``stat``-ed (following links) as ``st``."""
        if st.st_size >= self.job.alone and (self.size > 1 or self.job.first):
            self.alone.append(path)
        else:
            self.result_of(self.hash_path(path, st=st))

    def walked(self, run: WalkedRun) -> None:
        for i, path in enumerate(run):
            note_item(i)
            self.walked_one(path, run.tops[i], run.roots[i])

    def walked_one(self, path: str, top: int = -1, root: tuple[int, int] | None = None) -> None:
        """A file a glob's walk found: opened below what the walk saw, never by a link."""
        if isinstance(path, Walked):
            top, root = path.top, path.root
        if (path.endswith(TEMPORARY_SUFFIX) and path.rpartition("/")[2].startswith(".")
                and self.job.temporary):
            return
        self.result_of(self.hash_path(str(path), top, root))

    def walk_error(self, e: WalkError) -> None:
        self.failed(e.path, e.error, e.errno)


def run_task(job: ScanJob, items: Sequence[Any], kind: type[_Task] | None = None
             ) -> list[TaskResult]:
    """Do every item of a task; its one :class:`TaskResult`, in a list (the executor's shape).

    Runs in a worker, or in the main process for small jobs. Per-file
    failures are values in the result; only bugs raise. Once the task holds
    ``job.files`` files or ``job.nbytes`` bytes, what is left of it goes
    back as new items. ``kind``, a subclass of the task, does another
    command's work with the same walk (``dupes``' stage 1).
    """
    task = (kind or _Task)(job, len(items))
    if type(items) is WalkedRun:
        task.walked(items)
        return [task.result()]
    for i, item in enumerate(items):
        if i and task.full():
            task.rest.extend(x.item if type(x) is Cached else x for x in items[i:])
            break
        if type(item) is Cached:
            item = task.preload(item)
        kind = type(item)
        if kind is Directory:
            task.directory(i, item)
        elif kind is Part:
            task.part(i, item)
        elif kind is WalkError:
            task.walk_error(item)
        elif kind is Walked:  # a glob's match, read as the walk found it
            note_item(i)
            task.walked_one(item)
        elif kind is Result:  # standard input, read where the command runs
            task.result_of(item)
        elif kind is Argument:
            task.named(i, str(item), True)
        else:
            task.named(i, str(item))
    return [task.result()]


class RunTask:
    """:func:`run_task` bound to a job (and a kind); a class so that it pickles."""

    def __init__(self, job: ScanJob, kind: type[_Task] | None = None) -> None:
        self.job = job
        self.kind = kind

    def __call__(self, items: Sequence[Any]) -> list[TaskResult]:
        return run_task(self.job, items, self.kind)


def lost_item(job: ScanJob, item: Any, why: str, kind: type[_Task] | None = None
              ) -> TaskResult:
    """What becomes of an item that could not be done: its worker died on it, twice,
    or it made no progress (``why`` says which).

    A directory is listed again with each file in a task of its own, and a
    part of several files is cut into single files, so that only the file
    that kills a worker (or stalls) is lost: it comes back as an error. A
    stalled file that a directory's worker named (:class:`Within`) is an
    error at once, and the rest of its directory is done again without it.
    """
    task = (kind or _Task)(job, 1)
    if type(item) is Cached:
        item = item.item
    if isinstance(item, Within):
        inner, name = item.item, item.name
        task.failed(name, why)
        if type(inner) is Directory:
            inner = Part(inner)
        if type(inner) is Part:
            base = name[len(inner.directory.path):]
            if not base or "/" in base:
                return task.result()  # the directory itself: nothing more to try
            names = [n for n in inner.names.split("\0") if n != base] if inner.names else []
            if names or not inner.names:
                task.tasks.append(inner._replace(names="\0".join(names),
                                                 skip=inner.skip | {base}))
        return task.result()
    if type(item) is Directory:
        item = Part(item)
    if type(item) is Part:
        d = item.directory
        if item.split or why != WORKER_DIED:  # listed again, or a listing that stalls
            task.failed(d.shown, WALKER_DIED if why == WORKER_DIED else why)
        elif not item.names:
            task.alone.append(item._replace(split=True))
        elif "\0" in item.names:
            task.alone.extend(Part(d, name) for name in item.names.split("\0"))
        else:
            task.failed(d.path + item.names, why)
    elif isinstance(item, WalkError):
        task.walk_error(item)
    elif type(item) is Result:
        task.result_of(item)
    else:
        task.failed(str(item), why)
    return task.result()


# --- in the main process: items kept and handed out as tasks ---------------------


class TaskFeed(Feed):
    """The items still to do, handed out as tasks.

    Named paths (arguments, lists, a glob's matches) are read from ``named``
    in a thread of its own, so that a list that waits on a pipe never stops
    Ctrl-C; they are cut into tasks of ``chunksize`` items, and at each
    :class:`~parhash.results.Pause`. Directories that tasks hand back are
    kept on a stack and handed out depth first, several to a task once
    there are enough to go round (``share``); parts of directories and
    items to do alone travel one to a task.

    With ``follow``, each directory is entered once, by device and inode: a
    directory met again is dropped, or reported if it leads back to one of
    its own ancestors (a loop).
    """

    def __init__(
        self,
        named: Iterable[str | WalkError | Pause],
        *,
        chunksize: int,
        jobs: int = 1,
        follow: bool = False,
        max_dirs: int = MAX_DIRS_PER_TASK,
    ) -> None:
        self.chunksize = chunksize
        self.max_dirs = max_dirs
        self.jobs = jobs
        self.follow = follow
        self.share = False  # several directories to a task
        self.dirs: list[Directory] = []
        self.items: collections.deque[Any] = collections.deque()
        self.alone: collections.deque[Any] = collections.deque()
        self.visited: set[tuple[int, int]] = set()
        # What each task goes through before it is handed out, if anything.
        self.attach: Callable[[list[Any]], list[Any]] | None = None
        self._stop = threading.Event()
        depth = max(4, jobs * INFLIGHT_PER_WORKER)
        self._named = ReadAhead(_named_tasks(named, chunksize), depth, self._stop,
                                "parhash-paths")

    @property
    def fed(self) -> bool:
        """Whether every named path has been handed out."""
        return self._named.done

    @property
    def done(self) -> bool:
        return self.fed and not (self.dirs or self.items or self.alone)

    def close(self) -> None:
        self._stop.set()

    def add(self, result: Answer) -> None:
        """Take in the new items of a finished task, and those it had no room for."""
        for item in result.rest:  # handed out before: entered already
            if type(item) is Directory:
                self.dirs.append(item)
            else:
                self.items.append(item)
        found: list[Directory] = []
        for item in result.tasks:
            if type(item) is Directory:
                if self.follow and item.ancestor is not None and not self._first_visit(item):
                    continue
                found.append(item)
            else:
                self.items.append(item)
        if found:
            found.reverse()
            self.dirs.extend(found)
        self.alone.extend(result.alone)

    def _first_visit(self, d: Directory) -> bool:
        node = d.ancestor
        assert node is not None
        key = (node.dev, node.ino)
        if key not in self.visited:
            self.visited.add(key)
            return True
        ancestor = _loop_ancestor(node.parent, *key)
        if ancestor is not None:
            self.items.append(WalkError(node.path, LOOP, errno.ELOOP, d.depth, ancestor))
        return False

    def get(self, timeout: float) -> list[Any] | None:
        task = self._get(timeout)
        if task is not None and self.attach is not None:
            return self.attach(task)
        return task

    def _get(self, timeout: float) -> list[Any] | None:
        if self.alone:
            return [self.alone.popleft()]
        dirs = self.dirs
        if dirs:
            k = 1
            if self.share:
                k = max(1, min(self.max_dirs, len(dirs) // (2 * self.jobs)))
            task = dirs[-k:]
            del dirs[-k:]
            task.reverse()
            return task
        items = self.items
        if items:
            if type(items[0]) is Part:
                return [items.popleft()]
            task = []
            while items and len(task) < self.chunksize and type(items[0]) is not Part:
                task.append(items.popleft())
            return task
        return self._named.get(timeout)


class Cached(NamedTuple):
    """A directory or a part of one, with the entries of the hash cache that its
    files may have: on a cluster, whose workers can't read the client's cache,
    the client looks them up and sends them along (see :func:`scan_tasks`)."""

    item: Directory | Part
    known: Known


def _with_entries(cache: Cache, algos: tuple[str, ...]) -> Callable[[list[Any]], list[Any]]:
    """What the client of a cluster does to each task before it goes: each directory
    of it, or part of one, goes as :class:`Cached` with the cache's entries."""
    from parhash.cache import Rows, lookup

    spec = cache.spec(lookup=True)

    def attach(task: list[Any]) -> list[Any]:
        out = []
        used = []
        for item in task:
            kind = type(item)
            d = item if kind is Directory else item.directory if kind is Part else None
            if d is not None and d.real is not None and not (kind is Part and item.split):
                first = last = None
                if kind is Part and item.names:
                    names = item.names.split("\0")
                    first, last = sorted((os.fsencode(names[0]), os.fsencode(names[-1])))
                known, use = lookup(spec, d.real, algos, first, last)
                if use:
                    used.append(d.real)
                if known is not None:
                    item = Cached(item, known)
            out.append(item)
        if used:
            cache.write(Rows([], used))
        return out

    return attach


class Argument(str):
    """A path named on the command line, as opposed to one from a list (see :meth:`_Task.named`)."""

    __slots__ = ()


def _arguments(paths: Iterable[str | Pause]) -> Iterator[Argument | Pause]:
    for path in paths:
        yield path if isinstance(path, Pause) else Argument(os.fsdecode(path))


def task_scale(executor: Executor | None) -> int:
    """How many times the local pipeline's task an ``executor`` wants a task to be
    (its ``task_scale``; 1 for the local pool): a cluster's scheduler takes
    a millisecond or two per task, which a task must be worth."""
    return max(1, int(getattr(executor, "task_scale", 1))) if executor is not None else 1


def _read_own_streams(named: Iterable[Any], job: ScanJob) -> Iterator[Any]:
    """``named``, with each argument that names this process's own streams read:
    its :class:`Result`.

    A pause after each, so that its line goes out before the next names'.
    """
    constructors = [ALGORITHMS[a].new for a in job.algos]
    for item in named:
        if type(item) is Argument and is_own_stream(item):
            yield hash_named(item, constructors, job.algos, job.block_size, own=True)
            yield PAUSE
        else:
            yield item


def _named_tasks(named: Iterable[str | WalkError | Pause], chunksize: int) -> Iterator[list[Any]]:
    """Named paths in tasks of ``chunksize``, cut at each pause; a glob's walked
    files apart from the rest, to travel as a :class:`~parhash.walk.WalkedRun`."""
    batch: list[Any] = []
    walked = False
    for item in named:
        if isinstance(item, Pause):
            if batch:
                yield batch
            batch = []
            continue
        is_walked = type(item) is Walked
        if batch and (is_walked != walked or len(batch) >= chunksize):
            yield batch
            batch = []
        walked = is_walked
        batch.append(item)
    if batch:
        yield batch


def scan_tasks(
    paths: Iterable[str | Pause],
    job: ScanJob,
    *,
    listed: Iterable[str | Pause] = (),
    jobs: int | None = None,
    stats: PipelineStats | None = None,
    idle: Callable[[], None] | None = None,
    executor: Executor | None = None,
    kind: type[_Task] | None = None,
    pool: Callable[[], Executor] | None = None,
    streams: bool = True,
    cache: Cache | None = None,
    lookup: bool = True,
) -> Generator[TaskResult, None, None]:
    """Hash every file reachable from ``paths`` and ``listed`` as ``job`` says; the
    results of the tasks, as they complete.

    ``paths`` are files, directories and globs, ``listed`` names taken
    literally (see :func:`~parhash.walk.named_paths`). With ``streams``,
    ``-`` (standard input) and the names of this process's open files
    (``/dev/stdin``, ``/dev/fd/N``) are read here, in the thread that reads
    the names: no worker can. Per-file failures are in the results; only
    bugs raise. See :func:`run_tasks` for ``jobs``,
    ``stats``, ``idle``, ``executor`` and ``pool``, and :func:`run_task` for
    ``kind``. With ``cache``, files it holds are answered from it, and the
    digests of the others are written to it as each task's result arrives
    (a cluster's workers look nothing up: the file is the client's); without
    ``lookup``, every file is read and the cache only written.
    """
    if cache is not None:
        job = job._replace(cache=cache.spec(lookup=lookup and executor is None))
    if (clamp_jobs(jobs) if executor is None else executor.jobs) == 1:
        job = job._replace(alone=NEVER_ALONE)
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = (paths,)
    named: Iterable[Any] = named_paths(_arguments(paths), listed, follow=job.follow,
                                       select=job.select, skip_pseudo=job.skip_pseudo)
    if streams:
        named = _read_own_streams(named, job)
    scale = task_scale(executor)
    if scale > 1:
        job = job._replace(files=job.files * scale, nbytes=job.nbytes * scale)
    feed = TaskFeed(named, chunksize=job.files, follow=job.follow,
                    max_dirs=MAX_DIRS_PER_TASK * scale)
    if cache is not None and executor is not None and lookup:
        feed.attach = _with_entries(cache, job.algos)
    small = inline_bytes(job.block_size)
    first = RunTask(job._replace(files=INLINE_MAX_FILES, nbytes=small,
                                 alone=min(job.alone, small), first=True), kind)
    results = run_tasks(RunTask(job, kind), feed, block_size=job.block_size, jobs=jobs,
                        stats=stats, idle=idle, lost=functools.partial(lost_item, job, kind=kind),
                        first=first, executor=executor, pool=pool)
    return results if cache is None else _written(results, cache)


def _written(results: Generator[TaskResult, None, None], cache: Cache
             ) -> Generator[TaskResult, None, None]:
    """``results``, each one's digests written to ``cache`` before it is passed on."""
    try:
        for r in results:
            if r.cache is not None:
                cache.write(r.cache)
            yield r
    finally:
        results.close()
