"""Writing what a command found: output streams, scan's tasks, check's lines, dupes' groups.

How each format writes a file's record is :mod:`parhash.formats`'; here
are the streams around the records: :class:`Output`, which flushes a few
times a second, :func:`write_tasks`, which writes each task's records as it
completes and its error lines to stderr, what ``check`` prints for each
verdict and manifest, and the writers of ``dupes`` (:data:`DUPE_WRITERS`).

Each command of :mod:`parhash.cli` is one function here that gives its
pipeline's results to its writer and returns the exit status:
:func:`run_scan`, :func:`run_check`, :func:`run_dupes`, :func:`run_dirhash`.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, BinaryIO, NamedTuple

from parhash.algorithms import ALGORITHMS, DEFAULT_ALGO
from parhash.console import (
    EXIT_DUPES_FOUND,
    EXIT_FILE_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    STOPPING,
    FlushWhenIdle,
    open_output,
    path_arguments,
    pipeline_stats,
    warn,
    warn_worker_deaths,
)
from parhash.formats.csv import csv_field
from parhash.formats.names import FS_ENCODING, FS_ERRORS, format_check_line, quote_name
from parhash.hashing import DEFAULT_BLOCK_SIZE
from parhash.results import (
    FAILED,
    MALFORMED,
    MISSING,
    OK,
    UNREADABLE,
    DupeError,
    DupeGroup,
    Summary,
    Verdict,
)

if TYPE_CHECKING:
    from parhash.dirdigest import DirOptions
    from parhash.dupes import Order, Stage
    from parhash.executor import Executor
    from parhash.formats import RecordFormat
    from parhash.pool import PipelineStats
    from parhash.tasks import TaskResult


class ReportOptions(NamedTuple):
    algos: tuple[str, ...]
    zero: bool = False


class Output:
    """A binary stream that flushes at most every ``interval`` seconds.

    Writes go to a large buffer; a reader at the other end of a pipe still
    sees lines as they arrive, a few times a second, without a system call
    per line.
    """

    def __init__(self, stream: BinaryIO, interval: float = 0.2) -> None:
        self.stream = stream
        self.interval = interval
        self.last = time.monotonic()
        self.pending = False  # written since the last flush

    def write(self, data: bytes) -> None:
        n = self.stream.write(data)
        if n is not None and n < len(data):
            # A record larger than the buffer goes straight to write(2), which
            # may take part of it when the reader goes away: write the rest,
            # so that the failure is raised instead of the tail being lost.
            view = memoryview(data)
            while n < len(data):
                k = self.stream.write(view[n:])
                if not k:
                    raise BrokenPipeError(32, "Broken pipe")
                n += k
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.stream.flush()
            self.last = now
            self.pending = False
        else:
            self.pending = True

    def flush_pending(self) -> None:
        """Flush what was written since the last flush, if anything.

        For the writer's producer to call when it is about to wait, so that
        no line waits in the buffer for the next one.
        """
        if self.pending:
            self.flush()

    def flush(self) -> None:
        self.stream.flush()
        self.last = time.monotonic()
        self.pending = False


class Tally:
    """Counts kept while results stream past."""

    def __init__(self) -> None:
        self.files = 0
        self.bytes = 0
        self.errors = 0
        self.hits = 0
        self.matched: frozenset[tuple[str, str]] = frozenset()


def error_line(prog: str, path: str, reason: str) -> str:
    """``parhash: PATH: reason``, with the path quoted as coreutils quotes it."""
    return f"{prog}: {quote_name(path)}: {reason}\n"


def write_tasks(
    results: Iterable[TaskResult],
    out: Output,
    records: RecordFormat,
    *,
    sort: bool = False,
    meter: Meter | None = None,
    err: IO[str] | None = None,
) -> Tally:
    """Write the records of each task as it completes; its error lines go to ``err``.

    With ``sort`` the records come as ``(name as bytes, record as text)``
    pairs, written in name order at the end. ``meter`` counts them (and
    draws its bar). Returns the counts.
    """
    err = err if err is not None else sys.stderr
    counts = Tally()
    if records.header:
        out.write(records.header)
    bar = meter if meter is not None and meter.bar is not None else None
    pairs: list[tuple[bytes, str]] = []
    try:
        for r in results:
            if r.out:
                out.write(r.out)
            if r.records:
                pairs.extend(r.records)
            if r.err:
                write_stderr(err, r.err)
            counts.files += r.files
            counts.bytes += r.nbytes
            counts.errors += r.errors
            counts.hits += r.hits
            if r.matched:
                counts.matched |= r.matched
            if meter is not None:
                meter.update(r.files, r.nbytes, r.errors)
    finally:
        if bar is not None:
            bar.close()
    if pairs:
        pairs.sort(key=_first)
        out.write("".join([text for _, text in pairs]).encode(FS_ENCODING, FS_ERRORS))
    return counts


def _first(pair: tuple[bytes, str]) -> bytes:
    return pair[0]


def run_scan(
    paths: Sequence[str] = (),
    *,
    algos: tuple[str, ...] = (DEFAULT_ALGO,),
    fmt: str = "gnu",
    zero: bool = False,
    follow: bool = False,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    jobs: int | None = None,
    chunksize: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    stall_timeout: float | None = None,
    files_from: str | None = None,
    files0_from: str | None = None,
    sort: bool = False,
    output: str | None = None,
    progress: bool | None = None,
    summary: bool | None = None,
    executor: Executor | None = None,
    cache: str | None = None,
) -> int:
    """``parhash scan``: hash the files, write their records; return the exit status.

    ``paths`` (``.`` when neither they nor a list name any) and the lists
    ``files_from`` (one path a line) and ``files0_from`` (NUL-separated) are
    walked as by :func:`parhash.scan`. Each task's records are written as it
    completes, or all in path order with ``sort``, in the format ``fmt`` (a
    name of :data:`~parhash.formats.FORMATS`; several ``algos`` need one of
    ``MULTI_ALGO_FORMATS``), to standard output or atomically to ``output``;
    the file being written is never listed. Each file that can't be read
    gives ``parhash: PATH: reason`` on stderr. ``progress`` draws a bar on
    stderr, and ``summary`` says :meth:`Meter.summary` at the end (each by
    default when stderr is a terminal). ``executor``, if given, runs the
    tasks instead of a local pool (a cluster's), and is left open. ``cache``
    is the hash cache's file, if one is used (see :mod:`parhash.cache`):
    ``--json`` records then say whether each came from it, and the summary
    counts those that did.

    Returns :data:`EXIT_OK`, or :data:`EXIT_FILE_ERROR` when a file could not
    be read or a worker died (its files are hashed again, and a warning says
    so). A list or an output that can't be opened or written raises
    :class:`~parhash.console.CommandFailed` once its message is on stderr.
    """
    from parhash.formats import RecordFormat
    from parhash.select import Selector
    from parhash.tasks import TASK_FILES, ScanJob, scan_tasks

    started = time.time_ns()
    paths, listed = path_arguments(paths, files_from, files0_from)
    stats = pipeline_stats(stall_timeout)
    show, say = shown(progress, summary)
    total, by_bytes = (scan_total(paths, [(files_from, b"\n"), (files0_from, b"\0")])
                       if show else (None, True))
    meter = Meter("hashing", "hashed", bar=show, total=total, by_bytes=by_bytes)
    meter.stats = stats
    flush_idle = FlushWhenIdle(meter if show else None)
    select = Selector.from_patterns(include, exclude)
    opened = open_cache(cache)
    with open_output(output, started) as raw, contextlib.ExitStack() as closing:
        if opened is not None:
            closing.callback(opened.close)
        out = flush_idle.out = Output(raw)
        own = _own_files(raw, output)
        if opened is not None and opened.identity() is not None:
            own.add(opened.identity())
        job = ScanJob(algos, block_size, fmt, zero, sort, follow, select, frozenset(own),
                      chunksize or TASK_FILES)
        results = scan_tasks(paths, job, listed=listed, jobs=jobs, stats=stats, idle=flush_idle,
                             executor=executor, cache=opened)
        try:
            counts = write_tasks(results, out, RecordFormat(fmt, algos, zero),
                                 sort=sort, meter=meter)
        finally:
            results.close()
        raw.flush()
    warn_quiet_failures(select, counts.matched, counts.files + counts.errors, "hashed")
    if stats.worker_deaths:
        warn_worker_deaths(stats)
    if say:
        sys.stderr.write(meter.summary(cache_tail(opened, counts.hits)))
    return EXIT_FILE_ERROR if counts.errors or stats.worker_deaths else EXIT_OK


def run_dirhash(
    path: str,
    options: DirOptions,
    *,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    jobs: int | None = None,
    chunksize: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    stall_timeout: float | None = None,
) -> int:
    """``parhash dirhash``: print the directory's one digest; return the exit status.

    :data:`EXIT_USAGE` when ``path`` is missing or not a directory, after
    ``parhash: PATH: reason``. :data:`EXIT_FILE_ERROR`, and no digest,
    when anything below could not be read: each such path gets its
    ``parhash: PATH: reason`` line, in path order. A worker that died
    costs nothing but a warning (its files were read again) and, as for
    scan, the status 1; the digest is still printed.
    """
    from parhash.dirdigest import DirhashError, digest_dir, root_stat, selector

    try:
        st = root_stat(path)
    except OSError as e:
        write_stderr(sys.stderr, error_line("parhash", path, e.strerror or str(e)).encode(
            FS_ENCODING, FS_ERRORS))
        return EXIT_USAGE
    stats = pipeline_stats(stall_timeout)
    select = selector(include, exclude)
    try:
        digest = digest_dir(path, options, select=select, jobs=jobs, chunksize=chunksize,
                            block_size=block_size, stats=stats, top_stat=st)
    except DirhashError as e:
        lines = "".join(error_line("parhash", p, why) for p, why in e.errors)
        write_stderr(sys.stderr, lines.encode(FS_ENCODING, FS_ERRORS))
        digest = None
    if select is not None:  # a pattern that matched nothing is most likely a typo
        warn_quiet_failures(select, select.matched, 1, "hashed")
    if digest is None:
        return EXIT_FILE_ERROR
    sys.stdout.write(digest + "\n")
    sys.stdout.flush()
    if stats.worker_deaths:
        warn_worker_deaths(stats)
        return EXIT_FILE_ERROR
    return EXIT_OK


def open_cache(path: str | None) -> Any:
    """The :class:`~parhash.cache.Cache` at ``path``, or None (none asked for, or
    one that can't be used, after its warning)."""
    if path is None:
        return None
    from parhash.cache import Cache

    return Cache.open(path)


def cache_tail(cache: Any, hits: int) -> str:
    """``; 7000 from the cache``, for a summary line of a run with the cache on."""
    return "" if cache is None else f"; {hits} from the cache"


def shown(progress: bool | None, summary: bool | None) -> tuple[bool, bool]:
    """Whether to draw the progress bar, and to say the summary line: as asked,
    else when stderr is a terminal."""
    terminal: bool | None = None

    def default() -> bool:
        nonlocal terminal
        if terminal is None:
            terminal = sys.stderr.isatty()
        return terminal

    return (progress if progress is not None else default(),
            summary if summary is not None else default())


def warn_quiet_failures(select: Any, matched: Iterable[tuple[str, str]], files: int,
                        done: str) -> None:
    """Warn on stderr of what lets a CI job pass on nothing: a pattern that
    matched no path, and a run that found no file at all."""
    if select is not None:
        for kind, pattern in select.unmatched(matched):
            warn(f"parhash: warning: --{kind} {quote_name(pattern)} matched nothing")
    if not files:
        warn(f"parhash: warning: no file was {done}")


def _own_files(out: BinaryIO, path: str | None) -> set[tuple[int, int]]:
    """(device, inode) of the file being written and of the one it replaces.

    The scan's own output is left out of what it reports: scanning the
    directory that ``-o FILE`` or ``> FILE`` writes to would otherwise hash a
    half-written manifest (or the old one about to be replaced), and
    ``md5sum -c`` would then fail on that line.
    """
    own = set()
    with contextlib.suppress(AttributeError, OSError, ValueError):
        st = os.fstat(out.fileno())
        if stat.S_ISREG(st.st_mode):
            own.add((st.st_dev, st.st_ino))
    if path is not None and path != "-":
        with contextlib.suppress(OSError):
            st = os.stat(path)
            own.add((st.st_dev, st.st_ino))
    return own


def write_stderr(err: IO[str], data: bytes) -> None:
    """Write ``data``, bytes, to the text stream ``err`` and flush it."""
    raw = getattr(err, "buffer", None)
    if raw is None:
        err.write(data.decode(errors="surrogateescape"))
    else:
        err.flush()
        raw.write(data)
        raw.flush()
    err.flush()


def iec(n: float) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 GiB``: the one kind of unit every figure parhash
    shows is in (powers of 1024, as the sizes given to its options)."""
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        n /= 1024
        if n < 1024 or unit == "PiB":
            break
    return f"{n:.1f} {unit}"


def _seconds(t: float) -> str:
    if t < 1:
        return f"{t * 1000:.0f} ms"
    if t < 60:
        return f"{t:.2f} s" if t < 10 else f"{t:.1f} s"
    return f"{int(t) // 60} min {t % 60:.0f} s"


class Meter:
    """What a command has done so far: files, bytes, errors and time.

    With ``bar``, drawn on stderr as it goes: ``doing`` names what is being
    done (``hashing``, ``verifying``), then bytes, files and rate; with a
    ``total`` (bytes, or ``by_bytes`` False: in the units of ``advance``
    given to :meth:`update`, the manifest's bytes for check), a percentage
    and the time left. Given the pipeline's :attr:`stats` and called to
    :meth:`tick` while the pipeline waits, the bar moves inside large
    files too. :meth:`summary` is the line said at the end.
    """

    def __init__(self, doing: str, done: str, *, bar: bool = False, total: int | None = None,
                 by_bytes: bool = True) -> None:
        self.done = done
        self.advances_by_bytes = by_bytes
        self.files = 0
        self.bytes = 0
        self.errors = 0
        self.hits = 0  # files the hash cache answered for
        self.start = time.monotonic()
        self.total = total
        self.seen = 0  # bytes read, those of files not finished included
        self.stats: PipelineStats | None = None
        self.bar: Any = None
        if bar:
            from tqdm import tqdm

            # No monitor thread: nothing else should be running when a pool forks.
            tqdm.monitor_interval = 0
            # What is done is in the description, which tqdm shows as it is
            # (its postfix would start with a comma).
            fmt = ("{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]"
                   if total else "{desc} [{elapsed}]")
            self.doing = doing
            self.bar = tqdm(total=total or None, file=sys.stderr, dynamic_ncols=True,
                            mininterval=0.2, desc=self._described(), bar_format=fmt,
                            leave=False)

    def _described(self) -> str:
        """``hashing: 1.5 GiB, 120 files, 230.4 MiB/s``."""
        elapsed = time.monotonic() - self.start
        seen = max(self.seen, self.bytes)
        rate = f", {iec(seen / elapsed)}/s" if elapsed > 0.5 else ""
        return f"{self.doing}: {iec(seen)}, {self.files} files{rate}"

    def tick(self) -> None:
        """Move the bar by what the workers have read of the files they are on, so
        that a few large files move it too (see ``PipelineStats.reading``)."""
        bar = self.bar
        reading = self.stats.reading if self.stats is not None else None
        if bar is None or reading is None:
            return
        seen = reading()
        if seen <= self.seen:
            return
        self.seen = seen
        bar.set_description_str(self._described(), refresh=False)
        if self.total is not None and self.advances_by_bytes:
            ahead = min(seen, self.total) - bar.n
            if ahead > 0:
                bar.update(ahead)
        else:
            bar.refresh()

    def update(self, files: int, nbytes: int, errors: int = 0, advance: int | None = None
               ) -> None:
        """Count ``files`` more files of ``nbytes`` and ``errors``; the bar moves by
        ``advance`` (default ``nbytes``, or, not ``by_bytes``, the files and errors)."""
        if advance is None and not self.advances_by_bytes:
            advance = files + errors
            if self.bar is not None and self.total and self.bar.n + advance > self.total:
                # A list's names were the total, and one was a directory.
                self._lose_total()
        self.files += files
        self.bytes += nbytes
        self.errors += errors
        bar = self.bar
        if bar is not None:
            bar.set_description_str(self._described(), refresh=False)
            if advance is None:
                # The bar may be ahead already, by bytes read of files not done.
                target = self.bytes if self.total is None else min(self.bytes, self.total)
                bar.update(max(0, target - bar.n))
            else:
                bar.update(advance)

    def _lose_total(self) -> None:
        self.total = None
        self.bar.total = None
        self.bar.bar_format = "{desc} [{elapsed}]"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def summary(self, tail: str = "") -> str:
        """``parhash: hashed 12 files, 1.5 MiB in 0.31 s (4.8 MiB/s); 1 error``, with
        ``tail`` (``: 11 OK, 1 FAILED``) before the errors."""
        elapsed = time.monotonic() - self.start
        files = "file" if self.files == 1 else "files"
        line = (f"parhash: {self.done} {self.files} {files}, {iec(self.bytes)} "
                f"in {_seconds(elapsed)}")
        if elapsed > 0:
            line += f" ({iec(self.bytes / elapsed)}/s)"
        line += tail
        if self.errors:
            line += f"; {self.errors} error" + ("" if self.errors == 1 else "s")
        return line + "\n"


def scan_total(paths: Sequence[str], lists: Sequence[tuple[str | None, bytes]]
               ) -> tuple[int | None, bool]:
    """What a scan's bar counts up to: ``(total, in bytes?)``, ``(None, True)`` if unknown.

    Only named files have a total known before the walk: the bytes of
    ``paths`` if they are all files; with ``lists`` (``(name or None,
    separator)``) that are regular files, the count of their names and of
    ``paths`` instead. A directory, a glob or a list on a pipe has none.
    """
    from parhash.select import has_magic

    sizes = 0
    for path in paths:
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            if has_magic(path):
                return None, True  # a glob: its matches are not known yet
            continue  # its error comes from the run
        if not stat.S_ISREG(st.st_mode) or path == "-":
            return None, True
        sizes += st.st_size
    given = [(name, end) for name, end in lists if name is not None]
    if not given:
        return (sizes, True) if paths else (None, True)
    names = len(paths)
    for name, end in given:
        try:
            # Looked at before it is opened: a FIFO's writer is the run's.
            if name == "-" or not stat.S_ISREG(os.stat(name).st_mode):
                return None, True
            with open(name, "rb") as f:
                last = b""
                while chunk := f.read(1 << 20):
                    names += chunk.count(end)
                    last = chunk[-1:]
                names += bool(last) and last != end
        except OSError:
            return None, True
    return names, False


class CheckOptions:
    """What ``check`` prints and how it concludes.

    ``verbosity`` is ``"normal"``, ``"quiet"``, ``"status"`` or ``"warn"``: as
    with md5sum, the last of ``--quiet``, ``--status`` and ``--warn`` wins.
    """

    def __init__(
        self,
        verbosity: str = "normal",
        *,
        strict: bool = False,
        ignore_missing: bool = False,
        json: bool = False,
        prog: str = "parhash",
    ) -> None:
        self.verbosity = verbosity
        self.strict = strict
        self.ignore_missing = ignore_missing
        self.json = json
        self.prog = prog


def check_record(v: Verdict) -> dict[str, Any]:
    """The ``check --json`` object for one checked file.

    ``algo``, ``expected`` and ``actual`` are comma-joined when the manifest
    gives the file several digests; ``actual`` is null and ``error`` set when
    the file could not be read. Names as in :func:`~parhash.formats.jsonl.json_record`.
    """
    record: dict[str, Any] = {"path": v.path}
    try:
        v.path.encode("utf-8")
    except UnicodeEncodeError:
        import base64

        record["path_b64"] = base64.b64encode(os.fsencode(v.path)).decode("ascii")
    record["algo"] = ",".join(v.algos)
    record["expected"] = ",".join(v.expected)
    record["actual"] = ",".join(v.actual) if v.actual else None
    record["status"] = v.status
    if v.error is not None:
        record["error"] = v.error
    record["manifest"] = v.manifest
    record["line"] = v.line
    return record


_CHECK_WORDS = {OK: "OK", FAILED: "FAILED", MISSING: "FAILED open or read",
                UNREADABLE: "FAILED open or read"}


class CheckCounts:
    """The verdicts of every manifest of a ``check``, added up, for its summary line."""

    def __init__(self) -> None:
        self.ok = self.failed = self.missing = self.unreadable = self.malformed = 0
        self.manifests_unread = 0

    def add(self, summary: Summary) -> None:
        self.ok += summary.ok
        self.failed += summary.failed
        self.missing += summary.missing
        self.unreadable += summary.unreadable
        self.malformed += summary.malformed
        self.manifests_unread += summary.error is not None

    def tail(self, ignore_missing: bool) -> tuple[str, int]:
        """``: 11 OK, 1 FAILED``, and the errors: files and manifests that could
        not be read (missing files, unless ignored)."""
        tail = f": {self.ok} OK, {self.failed} FAILED"
        if self.malformed:
            tail += f", {self.malformed} improperly formatted"
        errors = self.unreadable + self.manifests_unread
        return tail, errors + (0 if ignore_missing else self.missing)


def write_pieces(
    pieces: Iterable[Any], out: Output, options: CheckOptions, err: IO[str],
    found: CheckCounts | None = None,
) -> bool:
    """Write ``check``'s answer as it comes in order; return whether every manifest verified.

    ``pieces`` are ``(1, bytes)`` for standard output, ``(2, bytes)`` for
    standard error, and a :class:`Summary` after each manifest's last line
    (see :func:`parhash.verify.check_tasks`); ``found`` adds up their counts.
    """
    passed = True
    for piece in pieces:
        if isinstance(piece, Summary):
            if found is not None:
                found.add(piece)
            passed = write_summary(piece, out, options, err) and passed
        elif piece[0] == 1:
            out.write(piece[1])
        else:
            out.flush()  # keep stdout and stderr in order when they share a terminal
            write_stderr(err, piece[1])
    return passed


def write_summary(summary: Summary, out: Output, options: CheckOptions, err: IO[str]) -> bool:
    """Print a manifest's warnings as ``md5sum -c`` does; return whether it verified."""
    status_only = options.verbosity == "status"
    shown = _manifest_name(summary.manifest)
    for line in summary.warnings(ignore_missing=options.ignore_missing):
        # coreutils says why a manifest is unusable even under --status.
        if not status_only or not line.startswith(("WARNING", "{manifest}: no file",
                                                   "{manifest}: hint")):
            out.flush()
            err.write(f"{options.prog}: {line.format(manifest=shown)}\n")
            err.flush()
    return summary.passed(strict=options.strict, ignore_missing=options.ignore_missing)


def run_check(
    manifests: Sequence[str] = (),
    *,
    algo: str | None = None,
    root: str | None = None,
    relative_to_manifest: bool = False,
    allow_outside_root: bool = False,
    verbosity: str = "normal",
    strict: bool = False,
    ignore_missing: bool = False,
    json: bool = False,
    zero: bool = False,
    jobs: int | None = None,
    chunksize: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    stall_timeout: float | None = None,
    progress: bool | None = None,
    summary: bool | None = None,
    executor: Executor | None = None,
    cache: str | None = None,
    trust_cache: bool = False,
) -> int:
    """``parhash check``: verify the files ``manifests`` list; return the exit status.

    ``manifests`` are names, ``-`` for standard input (read when there are
    none); ``algo``, ``root``, ``relative_to_manifest``, ``allow_outside_root``
    and ``zero`` are as for :func:`parhash.check`, ``chunksize`` is manifest
    lines a task. Writes what ``md5sum -c`` writes, in manifest order:
    ``NAME: OK`` / ``FAILED`` / ``FAILED open or read`` on standard output
    (:func:`check_record` objects with ``json``), why a file could not be
    read, and each manifest's warnings on stderr; ``verbosity``, ``strict``
    and ``ignore_missing`` are as in :class:`CheckOptions`. ``progress``
    draws a bar on stderr, and ``summary`` says :meth:`Meter.summary` with
    the verdicts' counts at the end (each by default when stderr is a
    terminal, and ``verbosity`` is not ``quiet`` or ``status``). ``executor``
    is as for :func:`run_scan`. With ``cache`` (its file), the digests read
    are added to the hash cache, and with ``trust_cache`` files it holds
    unchanged are answered from it instead of being read.

    Returns :data:`EXIT_OK` when every manifest verified, else
    :data:`EXIT_FILE_ERROR`, as it does when a worker died (its lines are
    checked again, and a warning says so). An output that can't be written
    raises :class:`~parhash.console.CommandFailed` once its message is on stderr.
    """
    from parhash.verify import RANGE_LINES, CheckJob, check_tasks, manifests_size

    quiet = verbosity in ("quiet", "status")
    show, say = shown(False if quiet and progress is None else progress,
                      False if quiet and summary is None else summary)
    meter = Meter("verifying", "verified", bar=show,
                  total=manifests_size(manifests or ("-",)) if show else None, by_bytes=False)
    stats = pipeline_stats(stall_timeout)
    meter.stats = stats
    flush_idle = FlushWhenIdle(meter if show else None)
    options = CheckOptions(verbosity, strict=strict, ignore_missing=ignore_missing, json=json)
    job = CheckJob(algo, zero, root, relative_to_manifest, allow_outside_root, block_size,
                   options.verbosity, ignore_missing, json)
    # A signal sets STOPPING: a manifest read from a pipe stops being read, so
    # the pool stops without waiting for a producer that is still alive.
    opened = open_cache(cache)
    pieces = check_tasks(manifests or ("-",), job, jobs=jobs, lines=chunksize or RANGE_LINES,
                         stop=STOPPING, stats=stats, idle=flush_idle, meter=meter,
                         executor=executor, cache=opened, trust_cache=trust_cache)
    found = CheckCounts()
    try:
        with open_output(None) as raw:
            out = flush_idle.out = Output(raw)
            passed = write_pieces(pieces, out, options, sys.stderr, found)
            out.flush()
    finally:
        pieces.close()
        if opened is not None:
            opened.close()
    if stats.worker_deaths:
        warn_worker_deaths(stats)
    if say:
        tail, meter.errors = found.tail(ignore_missing)
        if trust_cache:
            tail += cache_tail(opened, meter.hits)
        sys.stderr.write(meter.summary(tail))
    return EXIT_OK if passed and not stats.worker_deaths else EXIT_FILE_ERROR


def check_text(name: str, outcome: str) -> str:
    """:func:`~parhash.formats.names.format_check_line` as text (see :func:`gnu_text`)."""
    if "\n" not in name:
        return f"{name}: {outcome}\n"
    return format_check_line(name, outcome).decode(FS_ENCODING, FS_ERRORS)


def verdict_lines(
    v: Verdict, verbosity: str, ignore_missing: bool, json: bool, prog: str = "parhash"
) -> list[tuple[int, str]]:
    """What ``check`` prints for one verdict, as ``md5sum -c`` prints it.

    ``(1, text)`` for standard output, ``(2, text)`` for standard error, in
    order: ``NAME: OK`` / ``NAME: FAILED`` / ``NAME: FAILED open or read``
    (or a ``check_record`` with ``json``), why a file could not be read, the
    ``-w`` warning of a malformed line. ``verbosity`` is as in
    :class:`CheckOptions`.
    """
    quiet = verbosity == "quiet"
    status_only = verbosity == "status"
    if v.status == MALFORMED:
        if verbosity != "warn":
            return []
        kind = "".join(ALGORITHMS[a].tag + " " for a in v.algos)  # md5sum: "MD5 "
        return [(2, f"{prog}: {_manifest_name(v.manifest)}: {v.line}: "
                    f"improperly formatted {kind}checksum line\n")]
    if v.line == 0 or (v.status == MISSING and ignore_missing):
        return []
    lines = []
    if v.status in (MISSING, UNREADABLE):
        lines.append((2, f"{prog}: {quote_name(v.path)}: {v.error}\n"))
    if status_only or (quiet and v.status == OK):
        return lines
    if json:
        import json as json_module

        text = json_module.JSONEncoder(ensure_ascii=True).encode(check_record(v)) + "\n"
    else:
        text = check_text(v.name, _CHECK_WORDS[v.status])
    lines.append((1, text))
    return lines


def _manifest_name(manifest: str) -> str:
    return quote_name("standard input" if manifest == "-" else manifest)


# --- parhash dupes ------------------------------------------------------------
# The same shape as above for groups of duplicates: writers with one signature
# in one dict, and a pass-through that counts and reports errors.


def write_dupes_text(groups: Iterable[DupeGroup], out: Output, options: ReportOptions) -> None:
    """One path per line, a blank line after each group, as ``jdupes`` and ``fdupes``.

    Names are written as their bytes, unescaped. With ``zero`` each path ends
    in NUL and each group in one more NUL (``jdupes -0``).

    ``./a/logo.png``
    ``./b/logo.png``
    ````
    """
    end = "\0" if options.zero else "\n"
    for g in groups:
        out.write((end.join(g.paths) + end + end).encode(FS_ENCODING, FS_ERRORS))


def dupe_record(g: DupeGroup) -> dict[str, Any]:
    """The ``--json`` object for one group; names that are not UTF-8 as in
    :func:`~parhash.formats.jsonl.json_record`."""
    record: dict[str, Any] = {
        "size": g.size,
        "algo": g.algo,
        "digest": g.digest,
        "paths": list(g.paths),
        "hardlinks": [list(names) for names in g.hardlinks],
    }
    if not all(_is_utf8(p) for p in g.paths):
        import base64

        record["paths_b64"] = [base64.b64encode(os.fsencode(p)).decode("ascii") for p in g.paths]
    return record


def _is_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def write_dupes_json(groups: Iterable[DupeGroup], out: Output, options: ReportOptions) -> None:
    """JSON Lines, one object per group.

    ``{"size": 5, "algo": "xxh128", "digest": "...", "paths": ["./a", "./c"],
    "hardlinks": [["./a", "./b"]]}``
    """
    import json

    end = b"\0" if options.zero else b"\n"
    encode = json.JSONEncoder(ensure_ascii=True).encode
    for g in groups:
        out.write(encode(dupe_record(g)).encode("ascii") + end)


def write_dupes_csv(groups: Iterable[DupeGroup], out: Output, options: ReportOptions) -> None:
    """A header, then one RFC 4180 row per name; groups are numbered from 1.

    ``same_file_as`` is empty for each distinct file and, for another name of
    the same file (a hard link), the name it shares the file with.

    ``group,size,algo,digest,path,same_file_as``
    ``1,5,xxh128,...,./a,``
    ``1,5,xxh128,...,./b,./a``
    ``1,5,xxh128,...,./c,``
    """
    end = b"\n"
    out.write(b"group,size,algo,digest,path,same_file_as" + end)
    for number, g in enumerate(groups, 1):
        lead = b"%d,%d,%s,%s," % (number, g.size, g.algo.encode(), g.digest.encode())
        links = {names[0]: names[1:] for names in g.hardlinks}
        for path in g.paths:
            out.write(lead + csv_field(path) + b"," + end)
            for other in links.get(path, ()):
                out.write(lead + csv_field(other) + b"," + csv_field(path) + end)


DupeWriter = Callable[[Iterable[DupeGroup], Output, ReportOptions], None]

DUPE_WRITERS: dict[str, DupeWriter] = {
    "text": write_dupes_text,
    "json": write_dupes_json,
    "csv": write_dupes_csv,
}


class DupeTally:
    """Counts kept while the groups and errors of ``parhash dupes`` stream past."""

    def __init__(self) -> None:
        self.groups = 0
        self.redundant = 0
        self.wasted = 0
        self.errors = 0
        self.hiding_errors = 0  # errors that could have kept a duplicate out of the report


def tally_dupes(
    items: Iterable[DupeGroup | DupeError],
    counts: DupeTally,
    err: IO[str] | None = None,
    prog: str = "parhash",
) -> Iterator[DupeGroup]:
    """Pass the groups through, counting them; report each error on ``err``."""
    err = err if err is not None else sys.stderr
    for item in items:
        if isinstance(item, DupeError):
            # A note (a pseudo file system left alone) is said, not counted.
            if not item.skipped:
                counts.errors += 1
                counts.hiding_errors += item.could_hide_duplicate
            err.write(error_line(prog, item.path, item.error))
            err.flush()
            continue
        counts.groups += 1
        counts.redundant += item.redundant
        counts.wasted += item.wasted
        yield item


def _bytes(n: int) -> str:
    """``512 bytes``, ``1.5 KiB (1536 bytes)``."""
    return f"{n} bytes" if n < 1024 else f"{iec(n)} ({n} bytes)"


def dupes_summary(counts: DupeTally, prog: str = "parhash") -> str:
    """``parhash: 2 groups of duplicates, 3 redundant files, 1.5 KiB (1536 bytes) reclaimable``."""
    groups = "group" if counts.groups == 1 else "groups"
    files = "file" if counts.redundant == 1 else "files"
    line = (
        f"{prog}: {counts.groups} {groups} of duplicates, {counts.redundant} redundant {files}, "
        f"{_bytes(counts.wasted)} reclaimable"
    )
    if counts.errors:
        line += f"; {counts.errors} unreadable"
    return line + "\n"


class StageProgress:
    """A tqdm bar on stderr per stage of ``parhash dupes``, labelled by the stage.

    Called as the library's progress function: ``(stage, done, total)``, with
    ``total`` 0 while it is unknown.
    """

    def __init__(self, stats: PipelineStats | None = None) -> None:
        from tqdm import tqdm

        # No monitor thread: nothing else should be running when a pool forks.
        tqdm.monitor_interval = 0
        self._tqdm = tqdm
        self._bar: Any = None
        self._stage: Any = None
        # The workers' bytes read (see PipelineStats.reading), from the stage's start.
        self.stats = stats
        self._read_from: int | None = None

    def __call__(self, stage: Stage, done: int, total: int) -> None:
        reading = self.stats.reading if self.stats is not None else None
        read = reading() if reading is not None else None
        if stage is not self._stage:
            self.close()
            self._stage = stage
            self._read_from = read
            self._bar = self._tqdm(
                desc=stage.value, unit=" files", total=total or None, file=sys.stderr,
                dynamic_ncols=True, mininterval=0.2, leave=False,
            )
        elif read is not None and stage.name in ("HEAD", "CONTENTS"):
            # A few large files take long: the bytes read move while the count waits.
            if self._read_from is None:
                self._read_from = read
            self._bar.set_description_str(f"{stage.value}: {iec(read - self._read_from)}",
                                          refresh=False)
        if total and self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def run_dupes(
    paths: Sequence[str] = (),
    *,
    algo: str,
    fmt: str = "text",
    zero: bool = False,
    follow: bool = False,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    min_size: int | None = None,
    max_size: int | None = None,
    include_empty: bool = False,
    exit_code: bool = False,
    jobs: int | None = None,
    chunksize: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    stall_timeout: float | None = None,
    head_size: int | None = None,
    files_from: str | None = None,
    files0_from: str | None = None,
    quiet: bool = False,
    progress: bool | None = None,
    summary: bool | None = None,
    order: Order = "path",
    prefer: Sequence[str] = (),
    executor: Executor | None = None,
    cache: str | None = None,
) -> int:
    """``parhash dupes``: find files with identical contents; return the exit status.

    ``paths``, the lists ``files_from`` and ``files0_from``, and the other
    options are as for :func:`run_scan` and :func:`parhash.find_dupes`
    (``head_size`` default ``HEAD_SIZE``; ``order`` and ``prefer`` choose the
    first file of each group; ``executor`` as for :func:`run_scan`). Each error
    goes to stderr as the search meets it; then the groups, most wasted bytes
    first, are written to standard output by ``DUPE_WRITERS[fmt]``, and the
    :func:`dupes_summary` to stderr (``summary`` True or False says it or not;
    by default it is said unless ``quiet``, with the files compared and the
    time taken when stderr is a terminal). ``progress`` draws a bar per stage
    on stderr (default: when stderr is a terminal and not ``quiet``).

    Returns :data:`EXIT_USAGE` when an error could hide a duplicate, else
    :data:`EXIT_DUPES_FOUND` when ``exit_code`` and a group was found, else
    :data:`EXIT_OK`; a worker that died only earns a warning, its work being
    done again. A list or an output that can't be opened or written raises
    :class:`~parhash.console.CommandFailed` once its message is on stderr.
    """
    from parhash.dupes import HEAD_SIZE, find_dupes
    from parhash.select import Selector

    start = time.monotonic()
    paths, listed = path_arguments(paths, files_from, files0_from)
    show, timed = shown(False if quiet and progress is None else progress, summary)
    stats = pipeline_stats(stall_timeout)
    bar = StageProgress(stats) if show else None
    opened = open_cache(cache)
    found = find_dupes(
        paths, algo=algo, jobs=jobs, chunksize=chunksize, block_size=block_size,
        head_size=head_size or HEAD_SIZE, min_size=min_size or 0, max_size=max_size,
        include_empty=include_empty, follow=follow, include=include, exclude=exclude,
        listed=listed, hardlinks=fmt in ("json", "csv"), order=order, prefer=prefer,
        progress=bar, stats=stats, executor=executor, cache=opened,
    )
    counts = DupeTally()
    try:
        groups = list(tally_dupes(found, counts))
        if bar is not None:
            bar.close()
        with open_output(None) as out:
            DUPE_WRITERS[fmt](groups, Output(out), ReportOptions((algo,), zero))
    finally:
        found.close()
        if bar is not None:
            bar.close()
        if opened is not None:
            opened.close()
    # Before the summary, which stays the last line.
    warn_quiet_failures(Selector.from_patterns(include, exclude), stats.matched, stats.files,
                        "compared")
    if summary or (not quiet and summary is None):
        line = dupes_summary(counts)
        if timed:
            files = "file" if stats.files == 1 else "files"
            line = (f"{line[:-1]}; {stats.files} {files} compared in "
                    f"{_seconds(time.monotonic() - start)}\n")
        if opened is not None:
            line = line[:-1] + cache_tail(opened, opened.hits) + "\n"
        sys.stderr.write(line)
    if stats.worker_deaths:
        # What a dead worker held was done again; a file or directory that
        # killed a worker every time is an error of its own, and sets the status.
        warn_worker_deaths(stats, "their work was done again")
    if counts.hiding_errors:
        return EXIT_USAGE
    return EXIT_DUPES_FOUND if exit_code and counts.groups else EXIT_OK
