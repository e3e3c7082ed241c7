"""The cases: what each benchmark runs, its shell baseline, and the issue's targets.

A case is a handful of commands doing the same work over the same corpus;
they are timed together, alternating. Its comparisons are the ratios the
report prints (``parhash / baseline``), each with the target of issue 13
("The batch pipeline") it checks, if any; a target's id names the item of the
issue (``TARGET_IDS``). One target is not a ratio: the CPU time of parhash's
main process per file (:class:`PerFileCpu`). Commands run from the work
directory, so every path below is relative to it (see ``corpus.py`` for the
layout), but for the real tree, which is wherever the standard library is.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.cluster import SCHEDULER_FILE
from benchmarks.cluster import unavailable as cluster_unavailable
from benchmarks.corpus import Sizes
from benchmarks.timing import Command

# Every program a case runs besides parhash; `make peers` installs them.
PEER_TOOLS = (
    "md5sum", "sha256sum", "xxhsum", "b3sum", "rhash", "hashdeep", "jdupes", "rdfind",
    "find", "xargs", "sh",
)

BLOCK_SIZES = ("8K", "64K", "256K", "1M", "4M")
CHUNKSIZES = (16, 64, 256, 1024, 4096)

# The items of issue 13, in its order, as the ids of their targets.
PARENT_CPU = "1-parent-cpu"  # the main process's CPU per file
SMALL_FILES = "2-small-files"  # small files against find | xargs -P2
PARALLEL = "3-parallel"  # -j 2 against -j 1
REAL_TREE = "4-real-tree"  # the standard library against find | xargs -P2 md5sum
CHECK = "5-check"  # check against scan and md5sum -c
DUPES = "6-dupes"  # dupes against jdupes and rdfind
HELD = "7-held"  # the targets of issue 3 that still hold
CLUSTER = "8-cluster"  # a Dask cluster against the local pool (issue 15)
CACHE = "9-cache"  # the hash cache: warm and cold scans against no cache (issue 16)
MANIFESTS = "10-manifests"  # audit, scan --update and diff against their peers (issue 17)
TARGET_IDS = (PARENT_CPU, SMALL_FILES, PARALLEL, REAL_TREE, CHECK, DUPES, HELD, CLUSTER, CACHE,
              MANIFESTS)

# Reading a process's CPU time gives whole clock ticks, so the parent-CPU
# case averages at least this many rounds (but one with --quick).
PARENT_CPU_ROUNDS = 10


@dataclass(frozen=True)
class Comparison:
    """``subject`` over ``baseline`` (labels of two commands of the case)."""

    subject: str
    baseline: str
    target: float | None = None
    target_id: str | None = None


@dataclass(frozen=True)
class PerFileCpu:
    """CPU per file of parhash's main process and of its workers, from two scans.

    ``full`` and ``head`` label the scans of a corpus and of its first files;
    the difference of their mean CPU times over the ``files`` between them
    leaves out what both pay once (interpreter, imports, pool start). The
    main process's figure is held to ``target_us`` microseconds; the workers'
    divided by it is how many workers one main process can feed.
    """

    full: str
    head: str
    files: int
    target_us: float | None = None
    target_id: str | None = None


@dataclass(frozen=True)
class Case:
    """A benchmark: commands over one corpus, timed together.

    ``baseline`` names the shell command parhash is measured against.
    ``metric`` is ``"time"`` (wall seconds) or ``"rss"`` (peak memory).
    ``corpus`` is the corpus whose bytes give the throughput, if any.
    ``sweep`` marks a parameter sweep: its commands are settings of one
    option, compared with parhash's default. ``per_file_cpu`` makes every
    timed run read its CPU split from ``/proc`` and says what to compute from
    it; ``min_rounds`` is the fewest rounds that gives a figure (outside
    ``--quick``).
    """

    name: str
    measures: str
    baseline: str
    corpora: tuple[str, ...]
    commands: tuple[Command, ...]
    comparisons: tuple[Comparison, ...] = ()
    metric: str = "time"
    corpus: str | None = None
    sweep: str | None = None
    per_file_cpu: PerFileCpu | None = None
    min_rounds: int = 1
    cluster: bool = False  # needs the local Dask cluster of cluster.py running


@dataclass(frozen=True)
class Parhash:
    """How to start parhash, and which of its commands exist."""

    argv: tuple[str, ...]
    commands: dict[str, str]  # name -> its --help text, for the commands that exist

    def has(self, command: str) -> bool:
        return command in self.commands

    def accepts(self, command: str, option: str) -> bool:
        return option in self.commands.get(command, "")


def find_parhash() -> tuple[str, ...]:
    """The console script next to this interpreter (as users run it), else ``python -m parhash``."""
    script = Path(sys.executable).parent / "parhash"
    if script.exists():
        return (str(script),)
    return (sys.executable, "-m", "parhash")


def probe_parhash(argv: tuple[str, ...]) -> Parhash:
    """Ask parhash which of its commands it has (``COMMAND --help``)."""
    commands = {}
    for name in ("scan", "check", "dupes", "audit", "diff"):
        proc = subprocess.run([*argv, name, "--help"], capture_output=True, text=True)
        if proc.returncode == 0:
            commands[name] = proc.stdout
    return Parhash(argv, commands)


def _missing(*tools: str) -> str | None:
    absent = [t for t in tools if shutil.which(t) is None]
    return f"{', '.join(absent)} not installed" if absent else None


def _peer(label: str, argv: list[str], tools: tuple[str, ...] | None = None) -> Command:
    return Command(label, tuple(argv), shlex.join(argv),
                   unavailable=_missing(*(tools or (argv[0],))))


def _shell(label: str, script: str, tools: tuple[str, ...]) -> Command:
    return Command(label, ("sh", "-c", script), script, unavailable=_missing("sh", *tools))


def _xargs(tool: str, root: str, label: str | None = None) -> Command:
    script = f"find {shlex.quote(root)} -type f -print0 | xargs -0 -P2 -n256 {tool}"
    return _shell(label or f"find|xargs -P2 {tool}", script, ("find", "xargs", tool.split()[0]))


def build_cases(sizes: Sizes, parhash: Parhash) -> list[Case]:
    """Every case, in the order the report lists them."""
    ph = parhash.argv
    large = [f"large/large-{i}.bin" for i in range(sizes.large_files)]
    large_shown = "large/*.bin"

    def scan(label: str, args: list[str], paths: list[str], shown_paths: str) -> Command:
        argv = (*ph, "scan", *args, *paths)
        return Command(label, argv, shlex.join(["parhash", "scan", *args]) + " " + shown_paths,
                       is_parhash=True)

    def peer_large(label: str, tool: list[str]) -> Command:
        argv = [*tool, *large]
        return Command(label, tuple(argv), shlex.join(tool) + " " + large_shown,
                       unavailable=_missing(tool[0]))

    def subcommand(name: str, label: str, args: list[str], paths: list[str]) -> Command:
        flags = []
        if parhash.accepts(name, "--jobs"):
            flags += ["-j", "2"]
        if name == "check" and parhash.accepts(name, "--algo"):
            flags += ["-a", "md5"]
        argv = (*ph, name, *flags, *args, *paths)
        reason = None if parhash.has(name) else f"`parhash {name}` does not exist yet"
        return Command(label, argv, shlex.join(["parhash", name, *flags, *args, *paths]),
                       is_parhash=True, unavailable=reason)

    def dupes_commands(root: str) -> tuple[Command, ...]:
        return (subcommand("dupes", "parhash dupes", [], [root]),
                _peer("jdupes -r -q", ["jdupes", "-r", "-q", root]),
                _peer("rdfind -dryrun true",
                      ["rdfind", "-dryrun", "true", "-makeresultsfile", "false", root]))

    def on_cluster(label: str, args: list[str], paths: list[str], shown_paths: str) -> Command:
        flags = ["--executor", "dask", "--scheduler-file", SCHEDULER_FILE]
        command = scan(label, [*args, *flags], paths, shown_paths)
        reason = cluster_unavailable()
        if reason is None and not parhash.accepts("scan", "--executor"):
            reason = "`parhash scan --executor` does not exist yet"
        return Command(command.label, command.argv, command.shown, is_parhash=True,
                       unavailable=reason)

    dupes_comparisons = (Comparison("parhash dupes", "jdupes -r -q", 1.0, DUPES),
                         Comparison("parhash dupes", "rdfind -dryrun true", 1.0, DUPES))
    j1, j2 = ["-j", "1"], ["-j", "2"]
    a, b = sizes.memory_files
    head, n_head = sizes.small_head, sizes.small_head_files
    n_small = sizes.small_files
    tree = "stdlib"
    default_block = _default_block_size(parhash)
    cases = [
        Case(
            "large-md5", "md5 of the large files: two workers against one md5sum process",
            "md5sum FILES", ("large",),
            (scan("parhash -j1", ["-a", "md5", *j1], large, large_shown),
             scan("parhash -j2", ["-a", "md5", *j2], large, large_shown),
             peer_large("md5sum", ["md5sum"])),
            (Comparison("parhash -j2", "md5sum", 0.54, HELD),
             Comparison("parhash -j1", "md5sum"),
             Comparison("parhash -j2", "parhash -j1")),
            corpus="large",
        ),
        Case(
            "large-sha256", "sha256 of the large files: scaling from one worker to two",
            "sha256sum FILES (and parhash's own -j1)", ("large",),
            (scan("parhash -j1", ["-a", "sha256", *j1], large, large_shown),
             scan("parhash -j2", ["-a", "sha256", *j2], large, large_shown),
             peer_large("sha256sum", ["sha256sum"])),
            (Comparison("parhash -j2", "parhash -j1"),
             Comparison("parhash -j2", "sha256sum"),
             Comparison("parhash -j1", "sha256sum")),
            corpus="large",
        ),
        Case(
            "large-xxh3", "xxh3 of the large files, where copying out of the page cache "
            "costs more than hashing", "xxhsum -H3 FILES", ("large",),
            (scan("parhash -j1", ["-a", "xxh3", *j1], large, large_shown),
             scan("parhash -j2", ["-a", "xxh3", *j2], large, large_shown),
             peer_large("xxhsum -H3", ["xxhsum", "-H3"])),
            (Comparison("parhash -j2", "xxhsum -H3", 0.9, HELD),
             Comparison("parhash -j1", "xxhsum -H3")),
            corpus="large",
        ),
        Case(
            "large-blake3", "b3sum (multi-threaded BLAKE3, memory-mapped) over the large "
            "files, for context: what a native parallel hasher reaches here",
            "b3sum FILES", ("large",),
            (peer_large("b3sum", ["b3sum"]),),
            corpus="large",
        ),
        Case(
            "small-md5", "md5 of the small files, parhash walking the directory itself: "
            "the per-file cost, and what the second worker gains",
            "find DIR -type f -print0 | xargs -0 -P2 -n256 md5sum; parhash's own -j1",
            ("small",),
            (scan("parhash -j2", ["-a", "md5", *j2], ["small"], "small"),
             scan("parhash -j1", ["-a", "md5", *j1], ["small"], "small"),
             _xargs("md5sum", "small"),
             _peer("rhash -r", ["rhash", "-r", "--md5", "small"]),
             _peer("hashdeep -r", ["hashdeep", "-r", "-c", "md5", "small"])),
            (Comparison("parhash -j2", "find|xargs -P2 md5sum", 0.85, SMALL_FILES),
             Comparison("parhash -j2", "parhash -j1", 0.6, PARALLEL),
             Comparison("parhash -j1", "find|xargs -P2 md5sum"),
             Comparison("parhash -j2", "rhash -r"),
             Comparison("parhash -j2", "hashdeep -r")),
            corpus="small",
        ),
        Case(
            "small-xxh3", "xxh3 of the small files: nearly all per-file cost, little hashing",
            "find DIR -type f -print0 | xargs -0 -P2 -n256 xxhsum -H3", ("small",),
            (scan("parhash -j2", ["-a", "xxh3", *j2], ["small"], "small"),
             _xargs("xxhsum -H3", "small")),
            (Comparison("parhash -j2", "find|xargs -P2 xxhsum -H3", 0.95, SMALL_FILES),),
            corpus="small",
        ),
        Case(
            "small-sha256", "sha256 of the small files (OpenSSL's SHA extensions against "
            "coreutils' portable code)",
            "find DIR -type f -print0 | xargs -0 -P2 -n256 sha256sum", ("small",),
            (scan("parhash -j2", ["-a", "sha256", *j2], ["small"], "small"),
             _xargs("sha256sum", "small")),
            (Comparison("parhash -j2", "find|xargs -P2 sha256sum", 0.8, SMALL_FILES),),
            corpus="small",
        ),
        Case(
            "parent-cpu", "CPU time of parhash's main process per file (its own utime+stime "
            "in /proc/PID/stat, read after it exits and before it is reaped), and of its "
            f"workers (its cutime+cstime): scanning {n_small:,} small files minus scanning "
            f"the first {n_head:,}, over the {n_small - n_head:,} between",
            f"parhash itself on the first {n_head:,} of the files (start-up and pool "
            "start cancel)", ("small", head),
            (scan(f"parhash -j2 ({n_small:,} files)", ["-a", "md5", *j2], ["small"], "small"),
             scan(f"parhash -j2 ({n_head:,} files)", ["-a", "md5", *j2], [head], head)),
            per_file_cpu=PerFileCpu(f"parhash -j2 ({n_small:,} files)",
                                    f"parhash -j2 ({n_head:,} files)", n_small - n_head,
                                    0.5, PARENT_CPU),
            min_rounds=PARENT_CPU_ROUNDS,
        ),
        Case(
            "mixed-md5", "md5 of a tree of small, medium and big files: batching by bytes "
            "and keeping both cores busy to the end",
            "find DIR -type f -print0 | xargs -0 -P2 -n256 md5sum", ("mixed",),
            (scan("parhash -j2", ["-a", "md5", *j2], ["mixed"], "mixed"),
             _xargs("md5sum", "mixed")),
            (Comparison("parhash -j2", "find|xargs -P2 md5sum"),),
            corpus="mixed",
        ),
        Case(
            "real-tree", "md5 of a real tree: the installed standard library of the Python "
            "running the benchmarks, where it is installed",
            "find DIR -type f -print0 | xargs -0 -P2 -n256 md5sum", ("stdlib",),
            (scan("parhash -j2", ["-a", "md5", *j2], [tree], shlex.quote(tree)),
             _xargs("md5sum", tree)),
            (Comparison("parhash -j2", "find|xargs -P2 md5sum", 0.85, REAL_TREE),),
            corpus="stdlib",
        ),
        Case(
            "startup", "start-up: hashing one 4 KiB file, all interpreter and import cost",
            "python -c 'import click' (the same venv)", ("one",),
            (scan("parhash scan (1 file)", [], ["one/one.bin"], "one/one.bin"),
             Command("python -c 'import click'", (sys.executable, "-c", "import click"),
                     "python -c 'import click'"),
             Command("python -c pass", (sys.executable, "-c", "pass"), "python -c pass")),
            (Comparison("parhash scan (1 file)", "python -c 'import click'", 1.3, HELD),
             Comparison("parhash scan (1 file)", "python -c pass")),
        ),
        Case(
            "memory", f"peak RSS scanning {b:,} small files against {a:,}: "
            "the pipeline must stream, not hold the tree",
            f"parhash itself on {a:,} files", (f"memory-{a}", f"memory-{b}"),
            (scan(f"parhash -j2 ({a:,} files)", ["-a", "md5", *j2], [f"memory-{a}"],
                  f"memory-{a}"),
             scan(f"parhash -j2 ({b:,} files)", ["-a", "md5", *j2], [f"memory-{b}"],
                  f"memory-{b}")),
            (Comparison(f"parhash -j2 ({b:,} files)", f"parhash -j2 ({a:,} files)", 1.5,
                        HELD),),
            metric="rss",
        ),
        Case(
            "check", "verifying a manifest of the small files: `parhash check` against "
            "its own scan and md5sum -c", "md5sum -c, the manifest split over two processes",
            ("small", "manifests"),
            (subcommand("check", "parhash check", [], ["manifests/small.md5"]),
             scan("parhash scan", ["-a", "md5", *j2], ["small"], "small"),
             _shell("md5sum -c (2 processes)",
                    "md5sum -c manifests/small-1.md5 & p=$!; md5sum -c manifests/small-2.md5;"
                    " s=$?; wait $p && exit $s", ("md5sum",)),
             _peer("md5sum -c", ["md5sum", "-c", "manifests/small.md5"])),
            (Comparison("parhash check", "parhash scan", 1.1, CHECK),
             Comparison("parhash check", "md5sum -c (2 processes)", 1.0, CHECK),
             Comparison("parhash check", "md5sum -c")),
            corpus="small",
        ),
        Case(
            "dupes", "finding duplicate files in a tree with copies, same-size decoys "
            "and hard links", "jdupes -r -q DIR; rdfind -dryrun true DIR", ("dupes",),
            dupes_commands("dupes"), dupes_comparisons, corpus="dupes",
        ),
        Case(
            "dupes-small", "finding duplicate files where there are none: the small files, "
            "which share sizes (a few files of each) but hold no copy",
            "jdupes -r -q DIR; rdfind -dryrun true DIR",
            ("small",), dupes_commands("small"), dupes_comparisons, corpus="small",
        ),
        Case(
            "cluster-large", "md5 of the large files on a Dask cluster on this machine (a "
            "scheduler, two workers of one thread) against the local pool of two",
            "parhash -j 2 FILES", ("large",),
            (on_cluster("parhash dask", ["-a", "md5"], large, large_shown),
             scan("parhash -j2", ["-a", "md5", *j2], large, large_shown)),
            (Comparison("parhash dask", "parhash -j2", 1.3, CLUSTER),),
            corpus="large", cluster=True,
        ),
        Case(
            "cluster-small", "md5 of the small files on the same cluster against the local "
            "pool: a task's round trip through the scheduler against a pipe's",
            "parhash -j 2 DIR", ("small",),
            (on_cluster("parhash dask", ["-a", "md5"], ["small"], "small"),
             scan("parhash -j2", ["-a", "md5", *j2], ["small"], "small")),
            (Comparison("parhash dask", "parhash -j2", 2.0, CLUSTER),),
            corpus="small", cluster=True,
        ),
        Case(
            "cluster-cpu", "CPU time of the client per file on the cluster (its own, as for "
            f"parent-cpu): scanning {n_small:,} small files minus the first {n_head:,}",
            f"the client itself on the first {n_head:,} of the files", ("small", head),
            (on_cluster(f"parhash dask ({n_small:,} files)", ["-a", "md5"], ["small"],
                        "small"),
             on_cluster(f"parhash dask ({n_head:,} files)", ["-a", "md5"], [head], head)),
            per_file_cpu=PerFileCpu(f"parhash dask ({n_small:,} files)",
                                    f"parhash dask ({n_head:,} files)", n_small - n_head),
            min_rounds=PARENT_CPU_ROUNDS, cluster=True,
        ),
    ]
    default = f"--block-size {_size_text(default_block)}"
    if parhash.accepts("scan", "--cache-file"):
        cases += _cache_cases(ph, large, large_shown, tree)
    if parhash.has("audit"):
        cases += _manifest_cases(ph)
    block_sizes = sorted({*BLOCK_SIZES, _size_text(default_block)}, key=_size_value)
    for algo in ("md5", "sha256", "xxh3"):
        commands = tuple(
            scan(f"--block-size {s}", ["-a", algo, *j1, "--block-size", s], large, large_shown)
            for s in block_sizes
        )
        cases.append(Case(
            f"block-size-{algo}", f"{algo} of the large files with one worker at each "
            "read-buffer size: the default should be the fastest", f"parhash's default "
            f"--block-size ({_size_text(default_block)})", ("large",), commands,
            tuple(Comparison(c.label, default) for c in commands if c.label != default),
            corpus="large", sweep="--block-size",
        ))
    for algo in ("md5", "xxh3"):
        commands = (
            scan("default", ["-a", algo, *j2], ["small"], "small"),
            *(scan(f"--chunksize {n}", ["-a", algo, *j2, "--chunksize", str(n)], ["small"],
                   "small") for n in CHUNKSIZES),
        )
        cases.append(Case(
            f"chunksize-{algo}", f"{algo} of the small files with two workers at each "
            "--chunksize (paths per task)", "parhash's default --chunksize", ("small",),
            commands, tuple(Comparison(c.label, "default") for c in commands[1:]),
            corpus="small", sweep="--chunksize",
        ))
    return cases


def _cache_cases(ph: tuple[str, ...], large: list[str], large_shown: str, tree: str
                 ) -> list[Case]:
    """The hash cache (issue 16): a warm re-scan of an unchanged tree, and a cold scan
    that fills a new cache, each against the same scan without the cache.

    The warm command's untimed warm-up run fills its cache; the cold one
    removes its cache first, and its baseline runs the same ``rm``.
    """
    cases = []
    for corpus, paths, shown, target in (("large", large, large_shown, 0.1),
                                         ("small", ["small"], "small", 0.5),
                                         ("stdlib", [tree], tree, 0.4)):
        warm_file = f"cache-warm-{corpus}.sqlite"
        cold_file = f"cache-cold-{corpus}.sqlite"
        args = ["scan", "-a", "md5", "-j", "2"]

        def sh(label: str, cache: str | None, remove: str | None,
               args: list[str] = args, paths: list[str] = paths, shown: str = shown) -> Command:
            argv = [*ph, *args, *(["--cache-file", cache] if cache else []), *paths]
            script = "exec " + shlex.join(argv)
            if remove:
                script = f"rm -f {remove} {remove}-wal {remove}-shm; {script}"
            text = shlex.join(["parhash", *args, *(["--cache-file", cache] if cache else [])])
            return Command(label, ("sh", "-c", script), f"{text} {shown}", is_parhash=True)

        cases.append(Case(
            f"cache-{corpus}", f"md5 of the {corpus} corpus with the hash cache: a warm "
            "re-scan of the unchanged tree, and a cold scan that fills a new cache",
            "the same scan without the cache", (corpus,),
            (sh("warm cache", warm_file, None),
             sh("no cache", None, None),
             sh("cold cache", cold_file, cold_file),
             sh("no cache (rm)", None, cold_file)),
            (Comparison("warm cache", "no cache", target, CACHE),
             Comparison("cold cache", "no cache (rm)", 1.1, CACHE)),
            corpus=corpus,
        ))
    return cases


def _manifest_cases(ph: tuple[str, ...]) -> list[Case]:
    """Manifests that live (issue 17): an audit of an unchanged tree against
    hashdeep's audit and md5sum -c (which sees no new file), an update of an
    unchanged tree against rhash --update and a whole new scan, and a diff of
    two manifests against diff(1). The manifests are the ``manifests``
    corpus'; an update works on a copy made just before it (so the tree is
    older than it, as after a nightly run)."""
    def parhash(label: str, args: list[str]) -> Command:
        return Command(label, (*ph, *args), shlex.join(["parhash", *args]), is_parhash=True)

    def copied(label: str, source: str, copy: str, argv: list[str], tools: tuple[str, ...],
               shown: list[str]) -> Command:
        script = f"cp {source} {copy} && exec {shlex.join(argv)}"
        text = f"cp {source} {copy} && {shlex.join(shown)}"
        return Command(label, ("sh", "-c", script), text, is_parhash=not tools,
                       unavailable=_missing("sh", "cp", *tools))

    cases = []
    for corpus in ("small", "large"):
        sums, known = f"manifests/{corpus}.md5", f"manifests/{corpus}.hashdeep"
        cases.append(Case(
            f"audit-{corpus}", f"auditing the unchanged {corpus} corpus against its md5 "
            "manifest: every file read and compared", "hashdeep -a -k (md5)",
            (corpus, "manifests"),
            (parhash("parhash audit", ["audit", sums, corpus, "-j", "2", "-q"]),
             _peer("hashdeep -a", ["hashdeep", "-c", "md5", "-l", "-r", "-a", "-k", known,
                                   corpus]),
             _peer("md5sum -c", ["md5sum", "-c", sums]),
             parhash("parhash check", ["check", sums, "-j", "2"])),
            (Comparison("parhash audit", "hashdeep -a", None, MANIFESTS),
             Comparison("parhash audit", "md5sum -c", None, MANIFESTS),
             Comparison("parhash audit", "parhash check")),
            corpus=corpus,
        ))
    for corpus in ("small", "large"):
        sums = f"manifests/{corpus}.md5"
        cases.append(Case(
            f"update-{corpus}", f"bringing the {corpus} corpus' manifest up to date when "
            "nothing changed since it was written (the nightly case): no file needs "
            "reading but the three that confirm md5sum's lines are md5",
            "rhash --update, which adds new files only", (corpus, "manifests"),
            (copied("parhash scan --update", sums, f"update-p-{corpus}.md5",
                    [*ph, "scan", "--update", f"update-p-{corpus}.md5", corpus, "-q"], (),
                    ["parhash", "scan", "--update", f"update-p-{corpus}.md5", corpus, "-q"]),
             copied("rhash --update", sums, f"update-r-{corpus}.md5",
                    ["rhash", "-r", f"--update=update-r-{corpus}.md5", corpus], ("rhash",),
                    ["rhash", "-r", f"--update=update-r-{corpus}.md5", corpus]),
             parhash("parhash scan (all)", ["scan", corpus, "-a", "md5", "-j", "2", "-o",
                                            f"update-all-{corpus}.md5"])),
            (Comparison("parhash scan --update", "rhash --update", None, MANIFESTS),
             Comparison("parhash scan --update", "parhash scan (all)", None, MANIFESTS)),
        ))
    cases.append(Case(
        "diff", "comparing two manifests of the small corpus (its first half against the "
        "whole: 15,000 new files), reading no file", "diff(1) of the two files",
        ("manifests",),
        (dataclasses.replace(parhash("parhash diff", ["diff", "manifests/small-1.md5",
                                                      "manifests/small.md5", "-q"]),
                             succeeds=3),  # files were added
         dataclasses.replace(_peer("diff", ["diff", "manifests/small-1.md5",
                                            "manifests/small.md5"]), succeeds=1)),
        (Comparison("parhash diff", "diff", None, MANIFESTS),),
    ))
    return cases


def _default_block_size(parhash: Parhash) -> int:
    """The ``--block-size`` default that ``parhash scan --help`` shows, else 1 MiB."""
    found = re.search(r"--block-size.*?\[default:\s*([0-9]+[KMkm]?)", parhash.commands["scan"],
                      re.DOTALL)
    if found is None:
        return 1 << 20
    return _size_value(found.group(1).upper())


def _size_text(n: int) -> str:
    for unit, size in (("M", 1 << 20), ("K", 1 << 10)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def _size_value(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def select(cases: list[Case], spec: str | None) -> list[Case]:
    """The cases named in ``spec`` (comma-separated); a name also selects ``name-*``.

    ``large`` selects every ``large-*`` case, ``block-size`` the three sweeps.
    Raises ``ValueError`` naming the valid cases for a name that selects none.
    """
    if not spec:
        return cases
    wanted = [w.strip() for w in spec.split(",") if w.strip()]
    chosen = []
    for w in wanted:
        hits = [c for c in cases if c.name == w or c.name.startswith(w + "-")]
        if not hits:
            names = ", ".join(c.name for c in cases)
            raise ValueError(f"no case named {w!r}; the cases are: {names}")
        chosen += [c for c in hits if c not in chosen]
    return [c for c in cases if c in chosen]
