"""Verify manifests: ranges of manifest lines in, answers in manifest order out.

This is ``parhash check``. The module is not called ``check``: importing a
submodule sets it as an attribute of its package, and ``parhash.check`` must
stay the public function whatever was imported first.

The main process reads each manifest as it streams in and cuts it into
ranges of whole lines (:func:`read_ranges`), without looking at the lines.
Workers take a range each: they parse its lines, hash the files they name
and answer with the text ``md5sum -c`` would print for them
(:func:`check_task`), on the executors ``scan`` uses. The answers are put
back in manifest order as they arrive (:class:`InOrder`): each is written as
soon as every line before it has been, so the output matches ``md5sum -c``
line for line.

The policy of ``md5sum -c`` (what ``--strict`` and ``--ignore-missing`` make
of these verdicts, the warnings at the end of each manifest) is
:class:`~parhash.results.Summary`; docs/check.md tells the edge cases in prose.
"""

from __future__ import annotations

import collections
import errno
import functools
import itertools
import os
import select
import stat
import sys
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import Any, BinaryIO, NamedTuple, cast

from parhash.algorithms import ALGORITHMS, Hasher
from parhash.executor import (
    INLINE_MAX_FILES,
    Answer,
    Executor,
    clamp_jobs,
    inline_bytes,
    run_tasks,
)
from parhash.formats.csv import parse_csv_header
from parhash.formats.entries import Entry, Malformed
from parhash.formats.names import FS_ENCODING, FS_ERRORS
from parhash.hashing import (
    DEFAULT_BLOCK_SIZE,
    OPEN_FLAGS,
    OUTSIDE_ROOT,
    STDIN_NAMES,
    anonymous,
    digest_open,
    digest_stream,
    hash_named,
    is_own_stream,
    outside,
    read_buffer,
)
from parhash.manifest import DROP, HOLD, MAX_LINE, LineParser, long_record
from parhash.pool import PipelineStats, Within, note_directory, note_item
from parhash.report import Meter, check_record, check_text, error_line, verdict_lines
from parhash.results import (
    FAILED,
    MALFORMED,
    MISSING,
    OK,
    PAUSE,
    UNREADABLE,
    Pause,
    Result,
    Summary,
    Verdict,
    reason,
)
from parhash.tasks import ALONE_BYTES, NEVER_ALONE, RESULTS, TASK_BYTES, TaskFeed, task_scale
from parhash.walk import PATH_MAX, readable_now

STDIN = "-"
# The error of a listed name that --root or --relative-to-manifest refuses.


class _Line(NamedTuple):
    """A checksum line waiting for its file's result."""

    order: int  # position among all lines of all manifests
    manifest: str
    manifest_index: int
    number: int
    entry: Entry


class _Group:
    """Consecutive lines naming the same path: the file is read once for all of them."""

    __slots__ = ("algos", "lines", "path")

    def __init__(self, path: str, line: _Line) -> None:
        self.path = path
        self.lines = [line]
        self.algos: tuple[str, ...] = ()  # set once the last line is in


class _Pipe:
    """A pipe or terminal, read so that a stop request ends a read within 0.1 s.

    Manifests are read in the feed's reader thread (a daemon), and the
    reading must end when the run stops. A read blocked on a producer that is still alive
    (``producer | timeout 60 parhash check``) would make SIGTERM or Ctrl-C
    hang until the producer wrote again.
    """

    def __init__(self, fd: int, stop: threading.Event) -> None:
        self.fd = fd
        self.stop = stop

    def read(self, size: int = -1, /) -> bytes:
        while not self.stop.is_set():
            if select.select([self.fd], [], [], 0.1)[0]:
                return os.read(self.fd, size if size > 0 else 1 << 16)
        return b""  # stopped: the rest of the manifest is not wanted

    def ready(self) -> bool:
        """Whether a read would return at once (data, or the end)."""
        return readable_now(self.fd)


def _pipe(stream: BinaryIO, stop: threading.Event) -> _Pipe | None:
    """``stream`` as a :class:`_Pipe` if it is one (or a terminal), else ``None``."""
    try:
        fd = stream.fileno()
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except (OSError, ValueError):
        return None  # not a file descriptor at all (io.BytesIO)
    return None if regular else _Pipe(fd, stop)


def _climbs_out(name: str) -> bool:
    """Whether ``name`` is absolute, or its ``..`` go above where it starts.

    Decided on the name alone: ``a/../b`` stays, ``a/../../b`` climbs out.
    """
    if name.startswith("/"):
        return True
    if ".." not in name:
        return False
    depth = 0
    for part in name.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part and part != ".":
            depth += 1
    return False


class _Fence:
    """Which listed names a manifest may reach under its root (``--root``, or its directory).

    A name is refused when :func:`_climbs_out` says so, without a look at the
    file system; otherwise when the path, with its symbolic links resolved as
    the kernel resolves them (:func:`os.path.realpath`), is not under the
    root's own resolved path. Links that stay under the root are followed as
    md5sum follows them. The decision is taken as the line is read, before
    a worker opens the path: docs/check.md says what that leaves open.
    """

    # Directories resolved, at most: a manifest names many files of one
    # directory, and resolving a path costs an lstat per component (12 us a
    # line for a path five deep, against 1 us for the lstat of the file).
    MAX_DIRS = 4096

    def __init__(self, root: str) -> None:
        self.error: str | None = None
        try:
            self.real = os.path.realpath(root or os.curdir)
        except OSError as e:  # the current directory was removed, say
            self.real = ""
            self.error = reason(e)
        self.under = os.path.join(self.real, "")
        self.dirs: dict[str, str] = {}

    def refuses(self, name: str, path: str) -> str | None:
        """Why ``name`` (``path`` once joined to the root) is not read, or ``None``."""
        if _climbs_out(name):
            return OUTSIDE_ROOT
        if self.error is not None:
            return self.error
        if len(path) * 4 >= PATH_MAX and len(os.fsencode(path)) >= PATH_MAX:
            # A name the kernel refuses leads nowhere: the open fails with
            # ENAMETOOLONG, as md5sum's. Resolving it would cost a system
            # call per component, and its length squared in copies.
            return None
        try:
            real = self._resolve(path)
        except OSError as e:  # a link that changed while it was resolved
            return reason(e)
        return None if real == self.real or real.startswith(self.under) else OUTSIDE_ROOT

    def _resolve(self, path: str) -> str:
        head, tail = os.path.split(path)
        if tail in ("", os.curdir, os.pardir):
            return os.path.realpath(path)
        real_head = self.dirs.get(head)
        if real_head is None:
            if len(self.dirs) >= self.MAX_DIRS:
                self.dirs.clear()
            real_head = self.dirs[head] = os.path.realpath(head or os.curdir)
        try:
            link = stat.S_ISLNK(os.lstat(path).st_mode)
        except OSError:
            link = False  # nothing there, or out of reach: the worker says which
        return os.path.realpath(path) if link else os.path.join(real_head, tail)


# --- ranges of manifest lines: what check's tasks are -----------------------------

# A range holds about this many lines (``--chunksize``), and at most this
# many bytes unless one line is longer.
RANGE_LINES = 1024
RANGE_BYTES = 1 << 20


class Lines(NamedTuple):
    """A range of whole records of one manifest, for a worker to parse, check and answer.

    ``first`` is the number of its first line. ``state`` is what earlier
    lines of the manifest decided of the GNU line's form (coreutils' one
    piece of state between lines, see :func:`~parhash.manifest.parse_line`):
    ranges are sent with None, and sent again in the rare case where the
    lines before them decided otherwise than their own first GNU line.
    ``csv`` holds the algorithms of a ``scan --csv`` manifest's header.
    ``overlong``: ``data`` is the first byte of one record longer than the
    limit that is no checksum line (see :func:`~parhash.manifest.long_record`).
    ``key`` orders the answers: ``(n, 0)`` for the n-th range or mark read,
    another second number for a part of one done in a task of its own.
    Files in ``given_up`` stalled: they are answered with that reason,
    unread. ``one_by_one``: every file goes to a task of its own (a worker
    died on this range).
    """

    key: tuple[int, int]
    manifest_index: int
    manifest: str
    first: int
    data: bytes
    state: bool | None = None
    csv: tuple[str, ...] | None = None
    overlong: bool = False
    given_up: tuple[tuple[str, str], ...] = ()
    one_by_one: bool = False
    # Sent again (see ``state``) this many times: its holes are numbered
    # apart from those of earlier attempts, whose late answers are dropped.
    attempt: int = 0


class Mark(NamedTuple):
    """The end of a manifest; with ``error``, a manifest that could not be read."""

    key: tuple[int, int]
    manifest_index: int
    manifest: str
    error: str | None = None
    errno: int | None = None


class CheckFile(NamedTuple):
    """The lines of a range that name one file, checked in a task of their own.

    A large file, so that the workers share a few large files evenly; or a
    file of a range that a worker died on. ``key`` is where the answer goes
    among the range's pieces: ``(order of the range, number of the hole)``.
    """

    key: tuple[int, int]
    manifest_index: int
    manifest: str
    path: str
    lines: tuple[tuple[int, Entry], ...]
    fence: str | None = None
    # Standard input or another of the command's own open files: read by the
    # main process, the only one that has them.
    here: bool = False


class Parsed(NamedTuple):
    """The parsed lines left of a range once its task had done its share."""

    key: tuple[int, int]
    manifest_index: int
    manifest: str
    entries: tuple[tuple[int, Entry | Malformed], ...]
    given_up: tuple[tuple[str, str], ...] = ()
    one_by_one: bool = False


class Hole(NamedTuple):
    """Where the answer to a :class:`CheckFile` goes among a range's pieces."""

    key: tuple[int, int]


class CheckJob(NamedTuple):
    """What every task of a ``check`` run shares."""

    algo: str | None = None
    zero: bool = False
    root: str | None = None
    relative_to_manifest: bool = False
    allow_outside_root: bool = False
    block_size: int = DEFAULT_BLOCK_SIZE
    # CheckOptions.verbosity ("normal", "quiet", "status", "warn"), or
    # RESULTS: the pieces are then Verdict values, for the Python API.
    verbosity: str = "normal"
    ignore_missing: bool = False
    json: bool = False
    alone: int = ALONE_BYTES
    # A task's share: once it has hashed this many bytes (or files), the
    # rest of its range goes to another.
    nbytes: int = TASK_BYTES
    files: int | None = None
    # The job of the first tasks, done in the main process: a large file goes
    # alone even when it is all its range names, so that a worker reads it.
    first: bool = False
    prog: str = "parhash"
    # A manifest is standard input: no line may read it as a file too.
    stdin_manifest: bool = False
    # The hash cache: digests read are sent back for it, and with its
    # ``lookup`` (--trust-cache) unchanged files are answered from it.
    cache: Any = None


# A piece of an answer: (STDOUT or STDERR, bytes), a Verdict (RESULTS), or a Hole.
STDOUT = 1
STDERR = 2


class CheckResult(NamedTuple):
    """A worker's answer to one :class:`Lines`, :class:`CheckFile` or :class:`Mark`.

    ``counts`` are the lines found (ok, failed, missing, unreadable,
    malformed); ``decided`` is the GNU form the range's own lines decided
    (None if none did), under the ``assumed`` one.
    """

    key: tuple[int, int]
    manifest_index: int
    pieces: list[Any]
    # ok, failed, missing, unreadable, malformed; then the lines whose
    # algorithm was guessed from the digest's length, and those that failed.
    counts: tuple[int, int, int, int, int, int, int] = (0, 0, 0, 0, 0, 0, 0)
    files: int = 0
    nbytes: int = 0
    decided: bool | None = None
    assumed: bool | None = None
    mark: Mark | None = None
    tasks: list[Any] = []
    alone: list[Any] = []
    rest: list[Any] = []
    guesses: tuple[str, ...] = ()
    # With the cache: files it answered for, and the digests read (a cache.Rows).
    hits: int = 0
    cache: Any = None

    @property
    def errors(self) -> int:
        """Lines whose file could not be read."""
        return self.counts[2] + self.counts[3]


def read_ranges(
    manifests: Sequence[str],
    *,
    zero: bool = False,
    lines: int = RANGE_LINES,
    stop: threading.Event | None = None,
    max_line: int = MAX_LINE,
) -> Iterator[Lines | Mark | Pause]:
    """Cut ``manifests`` into ranges of whole records, as they are read.

    Each manifest ends with a :class:`Mark`, or is one (it could not be
    read). Records are not looked at one by one: a range is cut at a line
    end found from the right, and its lines are counted in C. A record
    longer than ``max_line`` is a range of its own: the whole record if it
    starts as a checksum line, however long; else its first byte
    (``overlong``), the rest dropped as it is read. From a pipe,
    :data:`PAUSE` comes after the records read so far whenever the next
    read would wait; setting ``stop`` ends such a read.
    """
    stop = stop or threading.Event()
    order = itertools.count()
    end = b"\0" if zero else b"\n"
    for index, manifest in enumerate(manifests):
        try:
            stream = _open_stdin() if manifest == STDIN else open(manifest, "rb")  # noqa: SIM115
        except OSError as e:
            yield Mark((next(order), 0), index, manifest, reason(e), e.errno)
            continue
        cutter = _Cutter(order, index, manifest, end, lines, max_line)
        try:
            pipe = _pipe(stream, stop)
            read = pipe.read if pipe is not None else getattr(stream, "read1", stream.read)
            while True:
                if pipe is not None and not pipe.ready():
                    yield from cutter.complete()
                    yield PAUSE
                chunk = read(1 << 16)
                if not chunk:
                    break
                yield from cutter.add(chunk)
            yield from cutter.finish()
        except OSError as e:
            yield Mark((next(order), 0), index, manifest, reason(e), e.errno)
            continue
        finally:
            if stream is not getattr(sys.stdin, "buffer", None):
                stream.close()
        yield Mark((next(order), 0), index, manifest)


def _open_stdin() -> BinaryIO:
    """Standard input, through a descriptor of its own where it has one.

    The manifests are read in a thread, and a worker forked while that
    thread held ``sys.stdin``'s lock would wait for it for ever as it closes
    ``sys.stdin`` on start-up. A ``sys.stdin`` replaced by a stream with no
    descriptor (a test harness's) is read as it is.
    """
    if sys.stdin is None:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        buffer: BinaryIO = sys.stdin.buffer
        return buffer
    return open(os.dup(fd), "rb")


class _Cutter:
    """Cuts one manifest's bytes into :class:`Lines` ranges (see :func:`read_ranges`)."""

    def __init__(self, order: Iterator[int], index: int, manifest: str, end: bytes,
                 lines: int, max_line: int) -> None:
        self.order = order
        self.index = index
        self.manifest = manifest
        self.end = end
        self.lines = lines
        self.max_line = max_line
        self.held = bytearray()
        self.number = 1  # the line number of held's first record
        self.csv: tuple[str, ...] | None = None
        self.headed = end == b"\0"  # a NUL-separated manifest has no CSV header
        self.dropping = False  # in the rest of an overlong record
        self.whole = False  # held is one record to read whole, however long
        self.target = min(RANGE_BYTES, 64 * lines)  # bytes a range; then from the lines seen

    def _emit(self, cut: int, overlong: bool = False) -> Lines:
        held = self.held
        data = bytes(held[:1] if overlong else held[:cut])
        item = Lines((next(self.order), 0), self.index, self.manifest, self.number, data,
                     None, self.csv, overlong)
        # An overlong record's lines (a CSV one may hold line ends), and the
        # one it ends on, dropped as it is read.
        self.number += held.count(self.end, 0, cut) + overlong
        del held[:cut]
        return item

    def _last_end(self, limit: int) -> int:
        """Just past the last record end before ``limit``, or else the first one after
        it; -1 if there is none. In CSV, only line ends outside quotes end records."""
        held, end = self.held, self.end
        if self.csv is None:
            at = held.rfind(end, 0, limit)
            if at < 0:
                at = held.find(end, limit)
            return at + 1 if at >= 0 else -1
        # Quotes come in pairs around a field (a quote within one is doubled):
        # line ends between a closing quote and the next opening one end records.
        best = -1
        start = 0
        while True:
            quote = held.find(b'"', start)
            outside = quote if quote >= 0 else len(held)  # [start, outside) is unquoted
            at = held.rfind(end, start, min(limit, outside))
            if at >= 0:
                best = at + 1
            if best < 0 and outside > limit:
                at = held.find(end, max(start, limit), outside)
                if at >= 0:
                    return at + 1
            if quote < 0 or (best >= 0 and quote >= limit):
                return best
            closing = held.find(b'"', quote + 1)
            if closing < 0:
                return best
            start = closing + 1

    def add(self, chunk: bytes) -> Iterator[Lines]:
        if self.dropping:
            at = chunk.find(self.end)
            if at < 0:
                return
            chunk = chunk[at + 1:]
            self.dropping = False
        held = self.held
        if self.whole:
            # Only the new bytes are searched: the record held has no end yet.
            at = chunk.find(self.end)
            if at < 0:
                held += chunk
                return
            held += memoryview(chunk)[: at + 1]
            yield self._emit(len(held))
            self.whole = False
            chunk = chunk[at + 1:]
        held += chunk
        if not self.headed:
            at = held.find(self.end)
            if at < 0 and len(held) <= self.max_line:
                return
            self.headed = True
            if at >= 0:
                self.csv = parse_csv_header(bytes(held[: at + 1]))
                if self.csv is not None:
                    del held[: at + 1]
                    self.number = 2
        while len(held) >= self.target:
            count = held.count(self.end, 0, self.target)
            if count:  # aim the next ranges at `lines` lines
                self.target = max(1, min(RANGE_BYTES, self.target * self.lines // count))
            cut = self._last_end(self.target)
            if cut <= 0:
                break
            yield self._emit(cut)
        if self.csv is not None and len(held) > self.max_line and (
            self._last_end(len(held)) < 0
        ):
            # A quote left open past the limit: the record ends, malformed, at
            # the first line end after it, and the lines after that are rows.
            at = held.find(self.end, self.max_line)
            if at >= 0:
                yield self._emit(at + 1)
                return
        if len(held) > self.max_line and self._last_end(len(held)) < 0:
            # One record longer than the limit: the whole of it if it may be a
            # checksum line, as md5sum reads it; else its start, and nothing
            # more of it. A CSV row is never held whole.
            decided = DROP if self.csv is not None else long_record(held)
            if decided == HOLD:
                self.whole = True
            elif decided == DROP:
                yield self._emit(len(held), overlong=True)
                self.dropping = True

    def complete(self) -> Iterator[Lines]:
        """The complete records held: the reader is about to wait for more."""
        if self.whole:
            return  # one record, not complete yet
        cut = self._last_end(len(self.held))
        if cut > 0:
            yield self._emit(cut)

    def finish(self) -> Iterator[Lines]:
        while self.held:
            cut = self._last_end(min(len(self.held), max(self.target, 1)))
            yield self._emit(cut if cut > 0 else len(self.held))


# --- in a worker: a range's lines checked and answered ---------------------------

# Fences of this process, by root: their resolved directories are cached.
_FENCES: dict[str, _Fence] = {}
_CONSTRUCTORS: dict[tuple[str, ...], list[Callable[[], Hasher]]] = {}


def _fence_for(job: CheckJob, manifest: str) -> _Fence | None:
    """What keeps the names of ``manifest`` under its root; ``None`` if nothing does."""
    if job.allow_outside_root:
        return None
    if job.root is not None:
        root = job.root
    elif job.relative_to_manifest:
        # Standard input's names are looked up in the current directory.
        root = "" if manifest == STDIN else os.path.dirname(manifest)
    else:
        return None  # as md5sum: any name is read
    fence = _FENCES.get(root)
    if fence is None:
        if len(_FENCES) > 64:
            _FENCES.clear()
        fence = _FENCES[root] = _Fence(root)
    return fence


def _constructors(algos: tuple[str, ...]) -> list[Callable[[], Hasher]]:
    found = _CONSTRUCTORS.get(algos)
    if found is None:
        found = _CONSTRUCTORS[algos] = [ALGORITHMS[a].new for a in algos]
    return found


class _Answer:
    """The answer to one task of ``check``, built as its lines are checked."""

    def __init__(self, job: CheckJob, key: tuple[int, int], manifest_index: int,
                 manifest: str) -> None:
        self.job = job
        self.key = key
        self.manifest_index = manifest_index
        self.manifest = manifest
        self.pieces: list[Any] = []
        self.text: list[str] = []  # stdout not yet in a piece
        self.counts = [0, 0, 0, 0, 0, 0, 0]
        self.guesses: set[str] = set()
        self.guessing = job.algo is None
        self.files = 0
        self.nbytes = 0
        self.alone: list[Any] = []
        self.holes = 0
        self.attempt = 0
        self.plain = True  # names are looked up as given (no --root)
        self.results = job.verbosity == RESULTS
        self.show_ok = job.verbosity not in ("quiet", "status")
        self.noted = note_directory(0, "")
        self.block_size = job.block_size
        self.view, self.views = read_buffer(job.block_size)
        self.recorder: Any = None
        self.trusting = False  # files are looked up in the cache before they are read
        if job.cache is not None:
            from parhash.cache import Recorder

            self.recorder = Recorder(job.cache)
            self.trusting = job.cache.lookup
        if job.json:
            import json

            self._encode = json.JSONEncoder(ensure_ascii=True).encode

    def result(self, decided: bool | None = None, assumed: bool | None = None) -> CheckResult:
        self._flush()
        return CheckResult(self.key, self.manifest_index, self.pieces, tuple(self.counts),  # type: ignore[arg-type]
                           self.files, self.nbytes, decided, assumed, None, [], self.alone, [],
                           tuple(self.guesses),
                           *((self.recorder.hits, self.recorder.rows())
                             if self.recorder is not None else ()))

    def _flush(self) -> None:
        if self.text:
            self.pieces.append((STDOUT, "".join(self.text).encode(FS_ENCODING, FS_ERRORS)))
            self.text = []

    def hole(self, item: Any) -> None:
        """Leave room for the answer of ``item``, done in a task of its own."""
        self._flush()
        self.holes += 1
        key = (self.key[0], self.key[1] * HOLES + self.attempt * ATTEMPT_HOLES + self.holes)
        self.pieces.append(Hole(key))
        self.alone.append(item._replace(key=key))

    def verdict(self, v: Verdict) -> None:
        self.counts[_COUNTED[v.status]] += 1
        if self.results:
            self.pieces.append(v)
            return
        if v.status == OK:  # nearly every line
            if self.show_ok:
                self.text.append(self._encode(check_record(v)) + "\n" if self.job.json
                                 else check_text(v.name, "OK"))
            return
        for stream, text in verdict_lines(v, self.job.verbosity, self.job.ignore_missing,
                                          self.job.json, self.job.prog):
            if stream == STDOUT:
                self.text.append(text)
            else:
                self._flush()
                self.pieces.append((STDERR, text.encode(FS_ENCODING, FS_ERRORS)))

    # --- what each task is

    def range(self, item: Lines | Parsed) -> CheckResult:
        job = self.job
        if isinstance(item, Lines):
            entries, decided = _parse(item, job)
            self.attempt = item.attempt
        else:
            entries, decided = list(item.entries), None
        from_stdin = item.manifest == STDIN
        plain = job.root is None and not (job.relative_to_manifest and not from_stdin)
        self.plain = plain
        fence = _fence_for(job, item.manifest)
        under = fence.under if fence is not None else None
        given_up = dict(item.given_up)
        one_by_one = item.one_by_one
        group: list[tuple[int, Entry]] = []
        path = ""
        groups = 0
        malformed = (job.algo,) if job.algo else ()
        for i, (number, parsed) in enumerate(entries):
            if isinstance(parsed, Malformed) or (
                (from_stdin or (plain and job.stdin_manifest)) and parsed.name in STDIN_NAMES
            ):
                groups += self._check_group(path, group, under, given_up, one_by_one, groups)
                group = []
                why = (parsed.reason if isinstance(parsed, Malformed)
                       else "it names standard input, which holds a manifest")
                self.verdict(Verdict(item.manifest, number, "", "", MALFORMED, malformed,
                                     error=why, manifest_index=item.manifest_index))
                continue
            name = parsed.name
            where = name if plain else _resolve(job, item.manifest, name)
            refused = given_up.get(where)  # stalled once: not looked at again
            if refused is None and fence is not None and name:
                self.note(where)  # resolving it may wait on a dead mount too
                refused = fence.refuses(name, where)
            if refused is not None:
                groups += self._check_group(path, group, under, given_up, one_by_one, groups)
                group = []
                self.verdict(_refused(item.manifest, item.manifest_index, number, parsed, where,
                                      refused))
                continue
            if group and where == path and not (plain and is_own_stream(where)):
                # (A stream is read anew for each line naming it, as md5sum does.)
                group.append((number, parsed))
                continue
            groups += self._check_group(path, group, under, given_up, one_by_one, groups)
            group = []
            if self.full():
                # The rest of the range, parsed, goes to a task of its own.
                self.hole(Parsed((0, 0), item.manifest_index, item.manifest,
                                 tuple(entries[i:]), item.given_up, one_by_one))
                break
            group = [(number, parsed)]
            path = where
        self._check_group(path, group, under, given_up, one_by_one, groups, last=True)
        return self.result(decided, item.state if isinstance(item, Lines) else None)

    def full(self) -> bool:
        """Whether the task has done its share: the rest of its lines go elsewhere."""
        job = self.job
        return self.nbytes >= job.nbytes or (job.files is not None and self.files >= job.files)

    def _check_group(self, path: str, group: list[tuple[int, Entry]], under: str | None,
                     given_up: dict[str, str], one_by_one: bool, before: int,
                     last: bool = False) -> int:
        """Check the lines of ``group``, which name ``path``; 1 if there were any."""
        if not group:
            return 0
        lines = tuple(group)
        if one_by_one:
            self.hole(CheckFile((0, 0), self.manifest_index, self.manifest, path, lines, under))
            return 1
        why = given_up.get(path)
        if why is not None:
            self.answer(path, lines, Result(path, {}, error=why))
            return 1
        self.note(path)
        if self.plain and is_own_stream(path):
            self.hole(CheckFile((0, 0), self.manifest_index, self.manifest, path, lines, under,
                                here=True))
            return 1
        # A large file goes to a task of its own, unless it is the range's only one.
        alone = self.job.alone if before or not last or self.job.first else NEVER_ALONE
        if (len(lines) == 1 and under is None and path and not self.trusting
                and self.quick(path, lines[0], alone)):
            return 1
        r = self.hash(path, lines, under, alone)
        if r is None:
            self.hole(CheckFile((0, 0), self.manifest_index, self.manifest, path, lines, under))
        else:
            self.answer(path, lines, r)
        return 1

    def note(self, path: str) -> None:
        """Name the file being read to the stall watch (see :func:`note_directory`)."""
        noted = self.noted
        if noted is None:
            return
        view, cells, cell, start = noted
        encoded = path.encode(FS_ENCODING, FS_ERRORS)
        end = start + len(encoded)
        if end <= len(view):
            view[start:end] = encoded
            cells[cell] = end

    def quick(self, path: str, line: tuple[int, Entry], alone: int) -> bool:
        """Check the one line naming ``path`` if it is the common case; whether it was.

        The common case: one digest, a small regular file read whole by one
        ``readv``, and a match. Anything else is left to the general way, at
        the cost of a second open. This is most of check's time on small
        files: the general way costs some 4 us a line more.
        """
        number, entry = line
        digests = entry.digests
        if len(digests) != 1:
            return False
        algo, expected = digests[0]
        block_size = self.block_size
        try:
            fd = os.open(path, OPEN_FLAGS)
        except OSError:
            return False
        try:
            st = os.fstat(fd)
            size = st.st_size
            if st.st_mode & 0o170000 != 0o100000:
                if not stat.S_ISDIR(st.st_mode):
                    # A FIFO or a device, read here: this open may be the one
                    # its writer met, and it is gone if the FIFO is closed.
                    self.answer(path, (line,), self.stream(fd, path, (algo,)))
                    return True
                return False
            if size >= alone or size >= block_size:
                return False
            n = os.readv(fd, self.views)
            if n != size:
                return False
            h = _NEW[algo]()
            h.update(self.view[:n])
        except OSError:
            return False
        finally:
            os.close(fd)
        if h.hexdigest() != expected:
            return False
        if self.recorder is not None:
            self.recorder.keep_path(path, size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                                    st.st_dev, {algo: expected})
        self.files += 1
        self.nbytes += size
        self.counts[0] += 1
        if self.guessing and entry.reversed is not None:  # an untagged line
            self.counts[5] += 1
            self.guesses.add(algo)
        if self.results or self.job.json:
            self.counts[0] -= 1
            self.verdict(Verdict(self.manifest, number, entry.name, path, OK, (algo,),
                                 (expected,), (expected,), None, None, self.manifest_index))
        elif self.show_ok:
            name = entry.name
            self.text.append(f"{name}: OK\n" if "\n" not in name else check_text(name, "OK"))
        return True

    def hash(self, path: str, lines: tuple[tuple[int, Entry], ...], under: str | None,
             alone: int, here: bool = False) -> Result | None:
        """The digests of ``path`` that ``lines`` need; None for a file to do alone.

        ``here``: ``path`` is standard input or another of this process's open files.
        """
        if len(lines) == 1:
            digests = lines[0][1].digests
            algos = (digests[0][0],) if len(digests) == 1 else tuple(a for a, _ in digests)
        else:
            algos = tuple(dict.fromkeys(a for _, e in lines for a, _ in e.digests))
        if here:
            r = hash_named(path, _constructors(algos), algos, self.job.block_size, own=True)
            if r.error is None:
                self.files += 1
                self.nbytes += r.size
            return r
        if not path:
            return Result(path, {}, error=os.strerror(errno.ENOENT), errno=errno.ENOENT)
        recorder = self.recorder
        if recorder is not None and self.trusting:
            found = self.from_cache(path, algos, under)
            if found is not None:
                return found
        try:
            fd = os.open(path, OPEN_FLAGS)
        except OSError as e:
            return Result(path, {}, error=reason(e), errno=e.errno)
        try:
            if under is not None and outside(fd, under):
                return Result(path, {}, error=OUTSIDE_ROOT)
            st = os.fstat(fd)
            if st.st_size >= alone and stat.S_ISREG(st.st_mode):
                return None
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                return self.stream(fd, path, algos)
            hashers, st, error, code = digest_open(fd, _constructors(algos),
                                                   self.job.block_size, st)
        except OSError as e:
            return Result(path, {}, error=reason(e), errno=e.errno)
        finally:
            os.close(fd)
        if error is not None:
            return Result(path, {}, error=error, errno=code)
        self.files += 1
        self.nbytes += st.st_size
        read = {a: h.hexdigest() for a, h in zip(algos, hashers, strict=True)}
        if recorder is not None:
            recorder.keep_path(path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                               st.st_dev, read)
        return Result(path, read, st.st_size)

    def from_cache(self, path: str, algos: tuple[str, ...], under: str | None) -> Result | None:
        """The answer of the hash cache for ``path``, if it holds the file unchanged
        (``--trust-cache``); None to read it.

        The file is opened without being read (``O_PATH``), so that the
        ``--root`` fence and the comparison with the entry see the very file
        the name leads to, as a read would: a name checked apart from the
        open could be swapped for a link in between.
        """
        recorder = self.recorder
        if not recorder.holds(path, algos):
            return None
        try:
            fd = os.open(path, _PATH_FLAGS)
        except (OSError, ValueError):
            return None  # the read says what is wrong
        try:
            if under is not None and outside(fd, under):
                return Result(path, {}, error=OUTSIDE_ROOT)
            st = os.fstat(fd)
        except OSError:
            return None
        finally:
            os.close(fd)
        known, st = recorder.find(path, algos, st)
        if known is None or st is None:
            return None
        self.files += 1
        self.nbytes += st.st_size
        return Result(path, known, st.st_size, cached=True)

    def stream(self, fd: int, path: str, algos: tuple[str, ...]) -> Result:
        """Read the FIFO or device open as ``fd`` to its end, as md5sum -c reads one a
        manifest lists (see :func:`~parhash.hashing.digest_stream`)."""
        if anonymous(fd):  # this worker's own plumbing, reached by a name or a link
            return Result(path, {}, error=os.strerror(errno.ENOENT), errno=errno.ENOENT)
        try:
            hashers, size = digest_stream(fd, _constructors(algos), self.job.block_size)
        except OSError as e:
            return Result(path, {}, error=reason(e), errno=e.errno)
        self.files += 1
        self.nbytes += size
        return Result(path, {a: h.hexdigest() for a, h in zip(algos, hashers, strict=True)}, size)

    def answer(self, path: str, lines: tuple[tuple[int, Entry], ...], r: Result) -> None:
        for number, entry in lines:
            v = _judge(self.manifest, self.manifest_index, number, entry, r)
            if self.guessing and entry.reversed is not None:  # an untagged line
                self.counts[5] += 1
                self.counts[6] += v.status == FAILED
                self.guesses.update(a for a, _ in entry.digests)
            self.verdict(v)

    def file(self, item: CheckFile, why: str | None = None) -> CheckResult:
        """Answer a :class:`CheckFile`; with ``why``, unread, as a file that could not be."""
        if why is None:
            note_item(0, 0, item.path)
            r = self.hash(item.path, item.lines, item.fence, NEVER_ALONE, item.here)
            assert r is not None
        else:
            r = Result(item.path, {}, error=why)
        self.answer(item.path, item.lines, r)
        return self.result()


_NEW = {a.name: a.new for a in ALGORITHMS.values()}
# Opens a file to look at it, not to read it: a FIFO doesn't wait for a writer.
_PATH_FLAGS = (getattr(os, "O_PATH", 0) or os.O_RDONLY | os.O_NONBLOCK) | os.O_CLOEXEC

# Holes of a range are numbered within its key: (n, 0) has holes (n, 1),
# (n, 2) ...; a hole's own holes (n, k * HOLES + 1) ..., and so on; a range
# sent again numbers its holes from ATTEMPT_HOLES on, then twice that.
HOLES = 1 << 40
ATTEMPT_HOLES = 1 << 20
_COUNTED = {OK: 0, FAILED: 1, MISSING: 2, UNREADABLE: 3, MALFORMED: 4}


def _parse(item: Lines, job: CheckJob) -> tuple[list[tuple[int, Entry | Malformed]], bool | None]:
    """The entries and malformed lines of a range, and the GNU form its lines decided."""
    parser = LineParser(algo=job.algo, zero=job.zero, csv=item.csv, state=item.state)
    if item.overlong:
        return parser.overlong(item.first, item.data), None
    end = b"\0" if job.zero else b"\n"
    records = item.data.split(end)
    last = records.pop()  # empty when the range ends with a line end, as it does but at EOF
    out: list[tuple[int, Entry | Malformed]] = []
    line = parser.line
    number = item.first
    # parse_line drops a line's end itself: only a CSV record needs it back.
    tail = end if item.csv is not None else b""
    for record in records:
        out += line(number, record + tail if tail else record)
        number += 1
    if last:
        out += line(number, last)
    out += parser.finish()
    return out, parser.decided


def _resolve(job: CheckJob, manifest: str, name: str) -> str:
    if not name:
        return name  # no such file, as md5sum finds; never the root directory
    if job.root is not None:
        return os.path.join(job.root, name)
    if job.relative_to_manifest and manifest != STDIN:
        return os.path.join(os.path.dirname(manifest), name)
    return name


def check_task(job: CheckJob, items: Sequence[Any]) -> list[CheckResult]:
    """Answer each item of a task: a range of lines, a file of one, or a manifest's mark.

    Runs in a worker, or in the main process for small jobs. Files that
    can't be read and malformed lines are in the answer; only bugs raise.
    """
    out = []
    for item in items:
        if type(item) is Mark:
            out.append(CheckResult(item.key, item.manifest_index, [], mark=item))
        elif type(item) is CheckFile:
            out.append(_Answer(job, item.key, item.manifest_index, item.manifest).file(item))
        else:  # Lines or Parsed
            out.append(_Answer(job, item.key, item.manifest_index, item.manifest).range(item))
    return out


class CheckTask:
    """:func:`check_task` bound to a job; a class so that it pickles."""

    def __init__(self, job: CheckJob) -> None:
        self.job = job

    def __call__(self, items: Sequence[Any]) -> list[CheckResult]:
        return check_task(self.job, items)


def _refused(
    manifest: str, manifest_index: int, number: int, entry: Entry, path: str, error: str
) -> Verdict:
    """The verdict of a line whose file is not read: ``FAILED open or read``, as md5sum's."""
    return Verdict(
        manifest, number, entry.name, path, UNREADABLE, tuple(a for a, _ in entry.digests),
        tuple(d for _, d in entry.digests), (), error, None, manifest_index,
    )


def _judge(manifest: str, manifest_index: int, number: int, entry: Entry, r: Result) -> Verdict:
    digests = entry.digests
    if len(digests) == 1:
        ((algo, digest),) = digests
        algos: tuple[str, ...] = (algo,)
        expected: tuple[str, ...] = (digest,)
    else:
        algos = tuple(a for a, _ in digests)
        expected = tuple(d for _, d in digests)
    if r.error is not None:
        status = MISSING if r.errno == errno.ENOENT else UNREADABLE
        return Verdict(manifest, number, entry.name, r.path, status, algos, expected, (),
                       r.error, r.errno, manifest_index)
    found = r.digests
    actual = (found[algos[0]],) if len(algos) == 1 else tuple(found[a] for a in algos)
    return Verdict(manifest, number, entry.name, r.path, OK if actual == expected else FAILED,
                   algos, expected, actual, None, None, manifest_index)


# --- in the main process: tasks handed out, answers put back in order ----------


class _CheckFeed(TaskFeed):
    """The feed of ``check``: it keeps each range it hands out until it is answered,
    to send it again should the lines before it have decided another GNU form."""

    def __init__(self, named: Iterable[Any], jobs: int) -> None:
        super().__init__(named, chunksize=1, jobs=jobs)
        self.sent: dict[tuple[int, int], Lines] = {}
        # Lines naming this process's own streams, by the key of their hole:
        # checked here, when the answer reaches them in manifest order.
        self.here: dict[tuple[int, int], CheckFile] = {}

    def add(self, result: Answer) -> None:
        if any(type(item) is CheckFile and item.here for item in result.alone):
            alone = []
            for item in result.alone:
                if type(item) is CheckFile and item.here:
                    self.here[item.key] = item
                else:
                    alone.append(item)
            result = cast(CheckResult, result)._replace(alone=alone)
        super().add(result)

    def get(self, timeout: float) -> list[Any] | None:
        task = super().get(timeout)
        if task:
            for item in task:
                if type(item) is Lines:
                    self.sent[item.key] = item
        return task


class InOrder:
    """Puts answers back in manifest order, and counts each manifest's lines.

    :meth:`add` takes answers as they complete; :meth:`take` yields the
    pieces that can be written now, in order, and each manifest's
    :class:`Summary` after its last line (or a :class:`Verdict` with
    ``line == 0`` for a manifest that could not be read, under RESULTS).
    Memory: the answers that wait for an earlier, slower one.
    """

    def __init__(self, manifests: Sequence[str], feed: _CheckFeed, results: bool,
                 here: Callable[[CheckFile], CheckResult] | None = None) -> None:
        self.manifests = manifests
        self.feed = feed
        self.results = results
        self.here = here  # checks the feed's own-stream lines when their turn comes
        self.ready: dict[tuple[int, int], CheckResult] = {}
        self.cursor: collections.deque[Any] = collections.deque()
        self.next = 0
        self.state: dict[int, bool] = {}
        self.summaries: dict[int, Summary] = {}
        # Holes of answers thrown away (their range is being done again):
        # their answers are dropped as they come.
        self.stale: set[tuple[int, int]] = set()

    def add(self, r: CheckResult) -> None:
        if r.key in self.stale:
            self._drop(r)
        else:
            self.ready[r.key] = r

    def _drop(self, r: CheckResult) -> None:
        self.stale.discard(r.key)
        for piece in r.pieces:
            if type(piece) is Hole:
                if self.feed.here.pop(piece.key, None) is not None:
                    continue  # never read: its range is done again
                late = self.ready.pop(piece.key, None)
                if late is None:
                    self.stale.add(piece.key)
                else:
                    self._drop(late)

    def _accept(self, r: CheckResult) -> bool:
        """Take ``r`` in, or send its range again with the form earlier lines decided."""
        known = self.state.get(r.manifest_index)
        sent = self.feed.sent.pop(r.key, None)
        if r.assumed is None and r.decided is not None and known is not None and (
            r.decided != known
        ):
            assert sent is not None
            self.feed.alone.append(sent._replace(state=known, attempt=sent.attempt + 1))
            self._drop(r)
            return False
        if r.decided is not None:
            self.state[r.manifest_index] = r.decided
        summary = self.summaries.get(r.manifest_index)
        if summary is None:
            summary = self.summaries[r.manifest_index] = Summary(self.manifests[r.manifest_index])
        ok, failed, missing, unreadable, malformed, guessed, guessed_failed = r.counts
        summary.ok += ok
        summary.failed += failed
        summary.missing += missing
        summary.unreadable += unreadable
        summary.malformed += malformed
        summary.guessed += guessed
        summary.guessed_failed += guessed_failed
        summary.guesses.update(r.guesses)
        return True

    def take(self) -> Iterator[Any]:
        ready, cursor = self.ready, self.cursor
        while True:
            if cursor:
                piece = cursor[0]
                if type(piece) is Hole:
                    r = ready.pop(piece.key, None)
                    if r is None and self.here is not None:
                        # Standard input and the like are read in manifest
                        # order, as md5sum reads them, once the lines before
                        # them are answered.
                        item = self.feed.here.pop(piece.key, None)
                        if item is not None:
                            r = self.here(item)
                    if r is None or not self._accept(r):
                        return
                    cursor.popleft()
                    cursor.extendleft(reversed(r.pieces))
                    continue
                cursor.popleft()
                yield piece
                continue
            r = ready.pop((self.next, 0), None)
            if r is None or not self._accept(r):
                return
            self.next += 1
            if r.mark is not None:
                yield from self._mark(r.mark)
            cursor.extend(r.pieces)

    def _mark(self, mark: Mark) -> Iterator[Any]:
        summary = self.summaries.pop(mark.manifest_index, None) or Summary(mark.manifest)
        self.state.pop(mark.manifest_index, None)
        if mark.error is not None:
            summary.error = mark.error
            if self.results:
                yield Verdict(mark.manifest, 0, mark.manifest, mark.manifest, UNREADABLE,
                              error=mark.error, errno=mark.errno,
                              manifest_index=mark.manifest_index)
        yield summary


def lost_check(job: CheckJob, item: Any, why: str) -> CheckResult:
    """The answer to an item no worker could do (see :func:`parhash.tasks.lost_item`).

    A range a worker died on twice is done again with each file in a task of
    its own, and a file that stalled is answered as one that could not be
    read, its range done again without reading it; a file that kills its
    worker each time, or a file of a range that stalled, is answered so.
    """
    if isinstance(item, Within):
        inner, path = item.item, item.name
        if type(inner) in (Lines, Parsed):
            redo = inner._replace(given_up=(*inner.given_up, (path, why)))
            answer = _Answer(job, inner.key, inner.manifest_index, inner.manifest)
            answer.attempt = inner.attempt if type(inner) is Lines else 0
            answer.hole(redo)
            return answer.result()
        item = inner
    if type(item) in (Lines, Parsed):
        answer = _Answer(job, item.key, item.manifest_index, item.manifest)
        answer.attempt = item.attempt if type(item) is Lines else 0
        if not item.one_by_one:
            answer.hole(item._replace(one_by_one=True))
        else:  # reading the lines themselves kills the worker
            lines = (len(item.entries) if type(item) is Parsed
                     else item.data.count(b"\0" if job.zero else b"\n"))
            answer.counts[3] += lines or 1
            answer.pieces.append((STDERR, error_line(
                job.prog, item.manifest, f"line {item.first} and on: {why}"
            ).encode(FS_ENCODING, FS_ERRORS)))
        return answer.result(assumed=item.state if type(item) is Lines else None)
    if type(item) is CheckFile:
        return _Answer(job, item.key, item.manifest_index, item.manifest).file(item, why)
    assert type(item) is Mark
    return CheckResult(item.key, item.manifest_index, [], mark=item)


def check_tasks(
    manifests: Sequence[str],
    job: CheckJob,
    *,
    jobs: int | None = None,
    lines: int = RANGE_LINES,
    stop: threading.Event | None = None,
    stats: PipelineStats | None = None,
    idle: Callable[[], None] | None = None,
    progress: bool = False,
    executor: Executor | None = None,
    meter: Meter | None = None,
    cache: Any = None,
    trust_cache: bool = False,
) -> Generator[Any, None, None]:
    """Check every line of ``manifests``; yield the answer's pieces in manifest order.

    Pieces are ``(STDOUT or STDERR, bytes)`` (``Verdict`` values under
    RESULTS) and each manifest's :class:`Summary` after its last line. The
    manifests are read in a thread and cut into ranges of about ``lines``
    lines (:func:`read_ranges`) that workers parse, check and answer; see
    :func:`~parhash.executor.run_tasks` for ``jobs``, ``stats``, ``idle`` and
    ``executor``. Setting ``stop`` ends the reading of a manifest from a pipe. ``meter``
    counts what is done and draws its bar (``progress`` makes one that does).
    With ``cache`` (a :class:`~parhash.cache.Cache`), the digests of the
    files read are written to it; with ``trust_cache`` too, files it holds
    unchanged are answered from it, unread.
    """
    if cache is not None:
        job = job._replace(cache=cache.spec(lookup=trust_cache and executor is None))
    if (clamp_jobs(jobs) if executor is None else executor.jobs) == 1:
        job = job._replace(alone=NEVER_ALONE)
    job = job._replace(stdin_manifest=STDIN in manifests)
    scale = task_scale(executor)
    if scale > 1:  # a cluster's tasks: see parhash.tasks.task_scale
        lines *= scale
        job = job._replace(nbytes=job.nbytes * scale)
    stop = stop or threading.Event()
    feed = _CheckFeed(read_ranges(manifests, zero=job.zero, lines=lines, stop=stop), 1)

    def here(item: CheckFile) -> CheckResult:
        answer = _Answer(job, item.key, item.manifest_index, item.manifest).file(item)
        if meter is not None:
            meter.update(answer.files, answer.nbytes, answer.errors, 0)
        return answer

    order = InOrder(manifests, feed, job.verbosity == RESULTS, here)
    small = inline_bytes(job.block_size)
    first = CheckTask(job._replace(alone=min(job.alone, small), nbytes=small,
                                   files=INLINE_MAX_FILES, first=True))
    answers = run_tasks(CheckTask(job), feed, block_size=job.block_size, jobs=jobs,
                        stats=stats, idle=idle, lost=functools.partial(lost_check, job),
                        first=first, executor=executor)
    if meter is None and progress:
        meter = Meter("verifying", "verified", bar=True, total=manifests_size(manifests),
                      by_bytes=False)
    sent = feed.sent
    try:
        for answer in answers:
            if meter is not None:
                # The bar moves through the manifest: its ranges are what is known ahead.
                given = sent.get(answer.key)
                meter.update(answer.files, answer.nbytes, answer.errors,
                             len(given.data) if given is not None else 0)
                meter.hits += answer.hits
            if answer.cache is not None:
                cache.write(answer.cache)
            order.add(answer)
            yield from order.take()
        yield from order.take()
        assert not order.ready and not order.cursor, "check lost track of a line"
    finally:
        stop.set()
        answers.close()
        if meter is not None:
            meter.close()


def manifests_size(manifests: Sequence[str]) -> int | None:
    """The bytes of ``manifests`` if they are all regular files, else None (a pipe's
    size is not known ahead)."""
    total = 0
    for manifest in manifests:
        if manifest == STDIN:
            return None
        try:
            st = os.stat(manifest)
        except (OSError, ValueError):
            continue  # an error of the run's, and no lines
        if not stat.S_ISREG(st.st_mode):
            return None
        total += st.st_size
    return total


def check_manifests(
    manifests: Sequence[str],
    *,
    algo: str | None = None,
    root: str | None = None,
    relative_to_manifest: bool = False,
    allow_outside_root: bool = False,
    zero: bool = False,
    jobs: int | None = None,
    chunksize: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    progress: bool = False,
    stop: threading.Event | None = None,
    stats: PipelineStats | None = None,
    idle: Callable[[], None] | None = None,
    executor: Executor | None = None,
) -> Generator[Verdict, None, None]:
    """Verify every line of ``manifests``; yield one :class:`Verdict` per line, in order.

    See :func:`parhash.check` for the options. Each file is hashed once for a
    run of consecutive lines that name it. Files that can't be read, malformed
    lines and manifests that can't be read are verdicts, never exceptions.
    """
    job = CheckJob(algo, zero, root, relative_to_manifest, allow_outside_root, block_size,
                   RESULTS)
    for piece in check_tasks(manifests, job, jobs=jobs, lines=chunksize or RANGE_LINES,
                             stop=stop, stats=stats, idle=idle, progress=progress,
                             executor=executor):
        if type(piece) is Verdict:
            yield piece
