"""``python -m benchmarks``: build the corpora, time the cases, write RESULTS.md.

Run from the repository (``make bench`` does) with the venv's Python, so that
the ``parhash`` console script next to it is the one measured.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from benchmarks import cache as cache_mod
from benchmarks import cases as cases_mod
from benchmarks import cluster as cluster_mod
from benchmarks import corpus as corpus_mod
from benchmarks import machine, report
from benchmarks.timing import CpuMeter, Runner, run_rounds

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "RESULTS.md"
DEFAULT_ROUNDS = 5


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    factor = units.get(t[-1:], 1)
    digits = t[:-1] if t[-1:] in units else t
    try:
        value = int(digits) * factor
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size (try 2147483648 or 2G)"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive size")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time parhash against md5sum, sha256sum, xxhsum, b3sum, rhash, hashdeep, "
        "jdupes and rdfind on generated corpora and the installed standard library; print "
        "the table and write RESULTS.md.",
    )
    p.add_argument("--quick", action="store_true",
                   help="toy corpora and one round: checks the harness in seconds; writes "
                   "only with --output")
    p.add_argument("--rounds", type=_positive, default=None,
                   help=f"timed runs of each command (default {DEFAULT_ROUNDS}; 1 with --quick); "
                   f"the parent-cpu case makes at least {cases_mod.PARENT_CPU_ROUNDS}")
    p.add_argument("--cases", metavar="A,B,...",
                   help="cases to run; a prefix such as 'large' or 'block-size' selects a "
                   "group (default: all; --list shows them)")
    p.add_argument("--small-files", type=_positive, metavar="N",
                   help="files in the small corpus (default 30000)")
    p.add_argument("--large-bytes", type=_size, metavar="N",
                   help="total size of the large corpus, 8 files (default 2G)")
    p.add_argument("--workdir", type=Path, metavar="DIR",
                   help="build the corpora in DIR and keep them there for the next run "
                   "(default: a temporary directory, removed at the end)")
    p.add_argument("--output", type=Path, metavar="FILE",
                   help="markdown to write, the chart goes next to it as results.svg "
                   "(default benchmarks/RESULTS.md)")
    p.add_argument("--no-write", action="store_true", help="print the report, write nothing")
    p.add_argument("--no-warmup", action="store_true",
                   help="skip the untimed first run of each command")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 if a peer tool is missing or a command fails (the tests use it)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    return p


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path.resolve()
        return
    tmp = Path(tempfile.mkdtemp(prefix="parhash-bench-"))
    try:
        yield tmp
    finally:
        _log(f"removing {tmp}")
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; the exit status is 0, or 1 under ``--strict`` when something failed.

    Ctrl-C stops the run (exit status 130) and removes the temporary corpora.
    """
    try:
        return _main(argv)
    except KeyboardInterrupt:
        _log("interrupted")
        return 130


def _main(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    sizes = corpus_mod.QUICK if args.quick else corpus_mod.FULL
    if args.small_files:
        sizes = sizes.with_small_files(args.small_files)
    if args.large_bytes:
        sizes = sizes.with_large_bytes(args.large_bytes)
    rounds = args.rounds or (1 if args.quick else DEFAULT_ROUNDS)
    warmup = not (args.no_warmup or args.quick)

    parhash = cases_mod.probe_parhash(cases_mod.find_parhash())
    if not parhash.has("scan"):
        _log(f"cannot run `{' '.join(parhash.argv)} scan --help`; is parhash installed?")
        return 2
    all_cases = cases_mod.build_cases(sizes, parhash)
    if args.list:
        for case in all_cases:
            print(f"{case.name:<18} {case.measures}")
        return 0
    try:
        chosen = cases_mod.select(all_cases, args.cases)
    except ValueError as e:
        _log(str(e))
        return 2

    output: Path | None = args.output or (None if args.quick else DEFAULT_OUTPUT)
    if args.no_write:
        output = None

    problems = [f"{c.name}: {cmd.label}: {cmd.unavailable}" for c in chosen for cmd in c.commands
                if cmd.unavailable and not cmd.is_parhash]
    for p in problems:
        _log(f"peer missing, reported in the table: {p}")

    with _workdir(args.workdir) as workdir:
        corpora: dict[str, corpus_mod.Corpus] = {}
        for case in chosen:
            for name in case.corpora:
                if name not in corpora:
                    corpora[name] = corpus_mod.ensure(workdir, name, sizes, _log)
        os.sync()  # so that write-back of the new corpora doesn't run during the timings
        for c in corpora.values():
            corpus_mod.warm(workdir, c)
        described = machine.describe(workdir, parhash.argv)

        runner = Runner(workdir)
        results = []
        clusters = contextlib.ExitStack()
        cluster: cluster_mod.Cluster | None = None
        scheduler: list[cluster_mod.SchedulerFigures] = []
        resume: list[cache_mod.ResumeFigures] = []
        try:
            for index, case in enumerate(chosen):
                if case.cluster and cluster is None and cluster_mod.unavailable() is None:
                    _log("starting a Dask scheduler and two workers on 127.0.0.1")
                    cluster = clusters.enter_context(cluster_mod.local_cluster(workdir, _log))
                # A case that reads CPU ticks needs more rounds than one that times.
                n = rounds if args.quick else max(rounds, case.min_rounds)
                _log(f"{case.name}: {len(case.commands)} commands x {n} rounds")
                meter = CpuMeter()
                case_start = time.perf_counter()
                samples = run_rounds(runner, case.commands, n, warmup, case.metric,
                                     cpu=case.per_file_cpu is not None)
                elapsed = time.perf_counter() - case_start
                other = meter.other_cores()
                _log(f"{case.name}: done in {elapsed:.1f} s"
                     + (f", other processes used {other:.2f} cores" if other is not None else ""))
                for s in samples:
                    if s.error:
                        _log(f"{case.name}: {s.command.label} failed: {s.error}")
                        problems.append(f"{case.name}: {s.command.label}: {s.error}")
                results.append(report.CaseResult(case, samples, elapsed, other))
                if cluster is not None and not any(c.cluster for c in chosen[index + 1:]):
                    # The last case on the cluster: measure its scheduler, then stop it,
                    # so that its idle processes don't take from the cases after.
                    if "small" in corpora:
                        _log("cluster: the scheduler's CPU per task, at a few task sizes")
                        scheduler = cluster_mod.measure_scheduler(
                            cluster, workdir, "small", cluster_mod.SCHEDULER_CHUNKSIZES,
                            1 if args.quick else 3)
                    clusters.close()
                    cluster = None
            if any(c.name.startswith("cache-") for c in chosen):
                for name, paths in (("large", [f"large/large-{i}.bin"
                                               for i in range(sizes.large_files)]),
                                    ("small", ["small"])):
                    if name in corpora:
                        _log(f"cache: a scan of {name} killed halfway, then resumed")
                        resume.append(cache_mod.measure_resume(
                            parhash.argv, workdir, name, paths, corpora[name].files,
                            1 if args.quick else 3))
        finally:
            clusters.close()
            runner.close()

        run = report.Run(
            results=results, all_cases=all_cases, corpora=list(corpora.values()),
            machine=described, rounds=rounds, warmup=warmup, quick=args.quick, argv=argv,
            seconds=time.perf_counter() - started, load_after=machine.load_average(),
            rss_launcher=runner.launcher_name, rss_floor=runner.rss_floor,
            scheduler=scheduler, resume=resume,
        )
        chart_ref = None
        chart_note = "No chart: the report was not written (--no-write)."
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            chart = report.chart_path(output)
            chart_note = report.draw_chart(run, chart)
            if chart.exists() and not chart_note.startswith("No chart"):
                chart_ref = report.relative(chart, output.parent)
        text = report.render(run, chart_ref, chart_note, report.kept_notes(output)
                             if output else "")
        print(text)
        if output is not None:
            output.write_text(text)
            _log(f"wrote {output}" + (f" and {chart_ref}" if chart_ref else ""))
    if args.strict and problems:
        for p in problems:
            _log(f"strict: {p}")
        return 1
    return 0
