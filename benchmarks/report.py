"""RESULTS.md and the chart: medians, ratios against the targets, the machine.

The markdown has, in order: the targets of issue 13 (ratio of medians, met
or not; the main process's CPU per file), the parent-CPU figures and the
ceiling they give, every measurement, the other ratios, the parameter
sweeps, the corpora, the machine, the commands run, the chart, and the notes
kept from the previous file (anything below ``NOTES_MARKER``).
"""

from __future__ import annotations

import os
import shlex
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.cache import ResumeFigures
from benchmarks.cases import (
    CACHE,
    CHECK,
    CLUSTER,
    DUPES,
    HELD,
    MANIFESTS,
    PARALLEL,
    PARENT_CPU,
    REAL_TREE,
    SMALL_FILES,
    Case,
    Comparison,
    PerFileCpu,
)
from benchmarks.cluster import SchedulerFigures
from benchmarks.corpus import Corpus
from benchmarks.timing import CLOCK_TICK, Samples, stats

NOTES_MARKER = "<!-- Notes below this line are kept when the benchmarks rewrite this file. -->"

# The items of issue 13 ("The batch pipeline"), listed above the targets table
# so that its first column reads without the issue at hand.
TARGETS = {
    PARENT_CPU: "the main process's CPU per file, small md5 files with -j 2: <= 0.5 µs "
    "(30,000 files minus 1,000, mean over the rounds)",
    SMALL_FILES: "small files against find | xargs -0 -P2 -n256: md5 <= 0.85x, "
    "xxh3 (xxhsum -H3) <= 0.95x, sha256 <= 0.8x",
    PARALLEL: "parallel efficiency: small md5 -j 2 <= 0.6x -j 1",
    REAL_TREE: "a real tree (the installed standard library): md5 -j 2 <= 0.85x "
    "find | xargs -P2 md5sum",
    CHECK: "check <= 1.1x scan of the same files, <= 1.0x md5sum -c on the two halves",
    DUPES: "dupes <= 1.0x jdupes -r and rdfind, on the tree with duplicates and on the "
    "small files (none)",
    HELD: "held from issue 3: large md5 -j 2 <= 0.54x md5sum, large xxh3 <= 0.9x "
    "xxhsum -H3, start-up <= 1.3x python -c 'import click', peak RSS on 200,000 files "
    "<= 1.5x on 20,000",
    CACHE: "issue 16, the hash cache: a warm re-scan and a cold scan against no cache",
    CLUSTER: "issue 15, a Dask cluster on this machine (a scheduler, two workers of one "
    "thread) against the local -j 2 pool: <= 1.3x on the large files, <= 2x on the "
    "30,000 small files",
    MANIFESTS: "issue 17, manifests that live (no targets): audit against hashdeep's audit "
    "and md5sum -c, scan --update against rhash --update and a new scan, diff against "
    "diff(1)",
}


@dataclass
class CaseResult:
    case: Case
    samples: list[Samples]
    seconds: float = 0.0
    other_cores: float | None = None

    def get(self, label: str) -> Samples:
        for s in self.samples:
            if s.command.label == label:
                return s
        raise KeyError(label)


@dataclass
class Run:
    """Everything the report needs from one invocation."""

    results: list[CaseResult]
    all_cases: list[Case]
    corpora: list[Corpus]
    machine: list[tuple[str, str]]
    rounds: int
    warmup: bool
    quick: bool
    argv: list[str]
    seconds: float
    load_after: str
    rss_launcher: str
    rss_floor: int
    scheduler: list[SchedulerFigures] = field(default_factory=list)
    resume: list[ResumeFigures] = field(default_factory=list)


def _values(s: Samples, metric: str) -> list[float]:
    return [float(v) for v in (s.rss if metric == "rss" else s.seconds)]


def fmt_value(value: float, metric: str) -> str:
    if metric == "rss":
        return f"{value / (1 << 20):.1f} MiB"
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value * 1000:.3g} ms"


def _why_missing(s: Samples) -> str:
    if s.command.unavailable:
        return f"not run: {s.command.unavailable}"
    if s.error:
        return f"failed: {s.error}".replace("\n", " ").replace("|", "\\|")
    return "not run"


def ratio(result: CaseResult, c: Comparison) -> tuple[float | None, str]:
    """The ratio of medians ``subject / baseline``, or None and why it is missing."""
    subject, baseline = result.get(c.subject), result.get(c.baseline)
    for s in (subject, baseline):
        if not s.ok:
            return None, f"{s.command.label}: {_why_missing(s)}"
    metric = result.case.metric
    num = stats(_values(subject, metric)).median
    den = stats(_values(baseline, metric)).median
    return num / den, ""


def verdict(value: float | None, target: float | None, why: str) -> str:
    if value is None:
        return f"n/a ({why})"
    if target is None:
        return ""
    if value <= target:
        return "met"
    return f"**not met** (+{(value / target - 1) * 100:.0f}% over)"


def _median_cell(s: Samples, metric: str) -> str:
    if not s.ok:
        return "—"
    return fmt_value(stats(_values(s, metric)).median, metric)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("\n", " ") for c in cells) + " |"


def _table(header: Sequence[str], rows: list[list[str]], align: str = "") -> list[str]:
    marks = [("---:" if a == "r" else "---") for a in align.ljust(len(header), "l")]
    marks = marks[: len(header)]
    return [_row(header), _row(marks), *(_row(r) for r in rows)]


@dataclass(frozen=True)
class CpuFigures:
    """What the parent-CPU case found: mean CPU seconds of each scan, per process kind.

    ``full_*`` and ``head_*`` are the means over ``rounds`` runs of the scan of
    the whole corpus and of its head; ``own`` is the main process's time,
    ``children`` its workers'. The differences over ``files`` are per file.
    """

    rounds: int
    files: int
    full_own: float
    head_own: float
    full_children: float
    head_children: float

    @property
    def parent_us(self) -> float:
        return (self.full_own - self.head_own) / self.files * 1e6

    @property
    def workers_us(self) -> float:
        return (self.full_children - self.head_children) / self.files * 1e6

    @property
    def ceiling(self) -> float | None:
        """Workers one main process can feed on these files: workers' CPU per file over its."""
        if self.parent_us <= 0 or self.workers_us <= 0:
            return None
        return self.workers_us / self.parent_us

    @property
    def resolution_us(self) -> float:
        """One clock tick in one round, per file: the finest step of the mean."""
        return CLOCK_TICK / self.rounds / self.files * 1e6


def cpu_figures(result: CaseResult, spec: PerFileCpu) -> tuple[CpuFigures | None, str]:
    """The parent-CPU figures of ``result``, or None and why they are missing."""
    full, head = result.get(spec.full), result.get(spec.head)
    for s in (full, head):
        if not s.ok:
            return None, f"{s.command.label}: {_why_missing(s)}"
        if not s.cpu:
            return None, f"{s.command.label}: no CPU reading (/proc/PID/stat unreadable)"
    if spec.files <= 0:
        return None, "the corpus has no more files than its head"
    return CpuFigures(
        rounds=min(len(full.cpu), len(head.cpu)), files=spec.files,
        full_own=statistics.fmean(c.own for c in full.cpu),
        head_own=statistics.fmean(c.own for c in head.cpu),
        full_children=statistics.fmean(c.children for c in full.cpu),
        head_children=statistics.fmean(c.children for c in head.cpu),
    ), ""


def _ms(seconds: float) -> str:
    return fmt_value(seconds, "time")


def _us(value: float) -> str:
    return f"{value:.2f} µs" if abs(value) < 10 else f"{value:,.1f} µs"


def _ceiling(figures: CpuFigures) -> str:
    ceiling = figures.ceiling
    if ceiling is None:
        return "n/a (no CPU difference measured)"
    return f"{ceiling:,.0f} workers" if ceiling >= 10 else f"{ceiling:.1f} workers"


def _cpu_target_row(case: Case, spec: PerFileCpu, result: CaseResult | None) -> list[str]:
    target = f"<= {spec.target_us:g} µs/file"
    if result is None:
        return [spec.target_id or "", case.name, spec.full, spec.head, "", "", "", target,
                "not run (case not selected)"]
    figures, why = cpu_figures(result, spec)
    if figures is None:
        return [spec.target_id or "", case.name, spec.full, spec.head, "—", "—", "—", target,
                verdict(None, spec.target_us, why)]
    return [spec.target_id or "", case.name, spec.full, spec.head,
            f"{_ms(figures.full_own)} CPU", f"{_ms(figures.head_own)} CPU",
            f"{_us(figures.parent_us)}/file", target,
            verdict(figures.parent_us, spec.target_us, why)]


def targets_table(run: Run) -> list[str]:
    by_name = {r.case.name: r for r in run.results}
    rows = []
    for case in run.all_cases:
        spec = case.per_file_cpu
        if spec is not None and spec.target_id is not None and spec.target_us is not None:
            rows.append(_cpu_target_row(case, spec, by_name.get(case.name)))
        for c in case.comparisons:
            if c.target_id is None:
                continue
            result = by_name.get(case.name)
            if result is None:
                rows.append([c.target_id, case.name, c.subject, c.baseline, "", "", "",
                             f"<= {c.target:g}x" if c.target is not None else "none",
                             "not run (case not selected)"])
                continue
            value, why = ratio(result, c)
            rows.append([
                c.target_id, case.name, c.subject, c.baseline,
                _median_cell(result.get(c.subject), case.metric),
                _median_cell(result.get(c.baseline), case.metric),
                f"{value:.2f}x" if value is not None else "—",
                *((f"<= {c.target:g}x", verdict(value, c.target, why)) if c.target is not None
                  else ("none", "measured" if value is not None else why or "—")),
            ])
    # By the number before the id's dash: 10 comes after 9.
    rows.sort(key=lambda r: (int(r[0].split("-")[0]), r[0]) if r[0][:1].isdigit() else (0, r[0]))
    return _table(["#", "case", "parhash", "baseline", "parhash median", "baseline median",
                   "ratio", "target", "result"], rows, "llllrrrrl")


def parent_cpu_section(run: Run) -> list[str]:
    """The parent-CPU case's figures, and the ceiling they set; empty if it didn't run."""
    lines: list[str] = []
    for result in run.results:
        spec = result.case.per_file_cpu
        if spec is None:
            continue
        lines += [
            "",
            f"## Parent CPU per file ({result.case.name})",
            "",
            "The CPU time of parhash's main process (`utime+stime` of `/proc/PID/stat`, its "
            "own threads only), read after it exited and before the harness reaped it, and "
            "its workers' (`cutime+cstime` of the same file, read the same way: the children "
            "it had reaped, by then all of them). Both are means over the rounds of "
            f"`{spec.full}` minus `{spec.head}`, so that start-up, imports and the pool's "
            f"start cancel, divided by the {spec.files:,} files between them. The ceiling is "
            "the workers' CPU per file over the main process's: how many workers one main "
            "process can keep fed on small files.",
            "",
        ]
        figures, why = cpu_figures(result, spec)
        if figures is None:
            lines.append(f"n/a ({why})")
            continue
        target = f"<= {spec.target_us:g} µs" if spec.target_us is not None else "none"
        lines += _table(
            ["main process CPU per file", "workers' CPU per file",
             "ceiling (workers per main process)", "target", "result", "rounds"],
            [[_us(figures.parent_us), _us(figures.workers_us), _ceiling(figures), target,
              verdict(figures.parent_us, spec.target_us, why) or "no target",
              str(figures.rounds)]],
            "rrrrlr",
        )
        lines += [
            "",
            *_table(
                ["CPU (mean)", spec.full, spec.head, "difference", "per file"],
                [["main process", _ms(figures.full_own), _ms(figures.head_own),
                  _ms(figures.full_own - figures.head_own), _us(figures.parent_us)],
                 ["workers", _ms(figures.full_children), _ms(figures.head_children),
                  _ms(figures.full_children - figures.head_children), _us(figures.workers_us)]],
                "lrrrr",
            ),
            "",
            f"Each reading is a whole clock tick ({CLOCK_TICK * 1000:g} ms): over "
            f"{figures.rounds} round{'s' if figures.rounds != 1 else ''} and "
            f"{figures.files:,} files, one tick more in one run moves the figure per file by "
            f"{_us(figures.resolution_us)}.",
        ]
    return lines


def resume_section(run: Run) -> list[str]:
    """The hash cache: a run killed halfway and resumed, and the size of an entry."""
    if not run.resume:
        return []
    rows = [[f.corpus, f"{f.full_s:.3f}", f"{f.kept:.0%}", f"{f.resumed_s:.3f}",
             f"{f.ratio:.2f}x", f"{f.entries:,}", f"{f.bytes_per_entry:.0f}"]
            for f in run.resume]
    return [
        "",
        "## The hash cache: killed and resumed (issue 16)",
        "",
        "A cold `parhash scan -a md5 -j 2 --cache-file F` is killed with SIGKILL once it "
        "has printed half the files' records; then the same scan runs again to "
        f"the end. Medians of {run.resume[0].rounds} round"
        f"{'s' if run.resume[0].rounds != 1 else ''}. *Kept* is the share of the corpus's "
        "files in the cache after the kill; *bytes per entry* is the full cache's file "
        "(with its WAL) over its entries, one md5 digest each.",
        "",
        *_table(["corpus", "full cold scan (s)", "kept after the kill", "resumed scan (s)",
                 "resumed / full", "entries", "bytes per entry"], rows, "lrrrrrr"),
    ]


def scheduler_section(run: Run) -> list[str]:
    """The cluster's scheduler: CPU per task, and what one scheduler and one client can feed."""
    if not run.scheduler:
        return []
    rows = [[f"{f.chunksize:,}", f"{f.tasks / f.rounds:,.0f}", f"{f.files / f.tasks:,.0f}",
             f"{f.seconds / f.rounds:.2f} s", f"{f.tasks_per_second:,.0f}",
             f"{f.per_task_ms:.2f} ms", f"{f.client_per_task_ms:.2f} ms",
             f"{1000 / f.per_task_ms:,.0f}" if f.per_task_ms else "—"]
            for f in run.scheduler]
    lines = [
        "",
        "## The cluster's scheduler (issue 15)",
        "",
        "The small files scanned through the Python API on the cluster of the cluster "
        "cases, at a few task sizes (`chunksize`, files per task): the tasks the executor "
        "sent, and the scheduler's CPU time (`utime+stime` of its `/proc/PID/stat`) and the "
        "client's (`time.process_time`) around each scan, summed over "
        f"{run.scheduler[0].rounds} round{'s' if run.scheduler[0].rounds != 1 else ''}. "
        "The scheduler's ceiling is one second of its CPU over its CPU per task: the tasks "
        "per second one scheduler could take if it did nothing else. Here client, "
        "scheduler and workers share two cores, so the measured rate is far below it.",
        "",
        *_table(["files per task", "tasks", "files per task (measured)", "wall (mean)",
                 "tasks/s measured", "scheduler CPU per task", "client CPU per task",
                 "scheduler ceiling (tasks/s)"], rows, "rrrrrrrr"),
    ]
    worst = max(run.scheduler, key=lambda f: f.per_task_ms)
    default = run.scheduler[0]
    if worst.per_task_ms and default.tasks:
        ceiling = 1000 / worst.per_task_ms
        files_per_s = default.files / (default.seconds or 1)  # two workers, this corpus
        per_worker = files_per_s / 2
        batch = per_worker * 1000 / 500  # files a task so that 1,000 workers make 500 tasks/s
        task_files = default.files / default.tasks
        fed = ceiling * task_files / per_worker
        lines += [
            "",
            "On paper, from these figures:",
            "",
            f"- One scheduler takes at most about {ceiling:,.0f} tasks/s (its worst CPU per "
            f"task above, {worst.per_task_ms:.2f} ms). At scan's default task of "
            f"{task_files:,.0f} files, a worker here hashed about "
            f"{per_worker:,.0f} small files/s, so one task is "
            f"{task_files / per_worker * 1000:,.0f} ms of a worker's "
            f"time: one scheduler feeds about {fed:,.0f} such workers before it is the limit.",
            f"- To keep the scheduler under 500 tasks/s with 1,000 workers each hashing "
            f"{per_worker:,.0f} small files/s, a task must hold at least "
            f"{batch:,.0f} files; with 100 workers, {batch / 10:,.0f} (today a task "
            "stops at 16 MiB and 32 directories, whatever `--chunksize`).",
            "- The client's own limit is its CPU per file (the cluster-cpu case above): one "
            "client feeds as many workers as its CPU per file divides into a worker's time "
            "per file.",
        ]
    return lines


def _throughput(run: Run, case: Case, s: Samples) -> str:
    if case.metric != "time" or not s.ok or case.corpus is None:
        return ""
    corpus = next((c for c in run.corpora if c.name == case.corpus), None)
    if corpus is None or not corpus.bytes:
        return ""
    seconds = stats(s.seconds).median
    rate = corpus.bytes / seconds / 1e6
    files = corpus.files / seconds
    if corpus.files > 100:
        return f"{rate:,.0f} MB/s, {files:,.0f} files/s"
    return f"{rate:,.0f} MB/s"


def measurements_table(run: Run) -> list[str]:
    rows = []
    for result in run.results:
        case = result.case
        for s in result.samples:
            if s.ok:
                st = stats(_values(s, case.metric))
                rows.append([
                    case.name, s.command.label, fmt_value(st.median, case.metric),
                    f"{fmt_value(st.low, case.metric)} – {fmt_value(st.high, case.metric)}",
                    f"{fmt_value(st.q1, case.metric)} – {fmt_value(st.q3, case.metric)}",
                    _throughput(run, case, s), _rss_cell(run, s), _cpu_note(s),
                ])
            else:
                rows.append([case.name, s.command.label, "—", "", "", "", "",
                             _why_missing(s)])
    return _table(["case", "command", "median", "min – max", "IQR", "throughput",
                   "peak RSS", "note"], rows, "llrrrrrl")


def _cpu_note(s: Samples) -> str:
    if not s.cpu:
        return ""
    own = statistics.fmean(c.own for c in s.cpu)
    children = statistics.fmean(c.children for c in s.cpu)
    return (f"CPU, mean of {len(s.cpu)}: main process {fmt_value(own, 'time')}, "
            f"workers {fmt_value(children, 'time')}")


def _rss_cell(run: Run, s: Samples) -> str:
    if not s.rss:
        return ""
    rss = stats([float(v) for v in s.rss]).median
    if rss <= run.rss_floor * 1.1:
        # The launcher's own size: the command needed no more than this.
        return f"<= {fmt_value(run.rss_floor, 'rss')}"
    return fmt_value(rss, "rss")


def context_table(run: Run) -> list[str]:
    rows = []
    for result in run.results:
        if result.case.sweep:
            continue
        for c in result.case.comparisons:
            if c.target_id is not None:
                continue
            value, why = ratio(result, c)
            rows.append([result.case.name, f"{c.subject} / {c.baseline}",
                         f"{value:.2f}x" if value is not None else f"n/a ({why})"])
    return _table(["case", "ratio of medians", "value"], rows, "llr")


def sweep_tables(run: Run) -> list[str]:
    lines: list[str] = []
    groups: dict[str, list[CaseResult]] = {}
    for r in run.results:
        if r.case.sweep:
            groups.setdefault(r.case.sweep, []).append(r)
    for option, results in groups.items():
        labels = [s.command.label.removeprefix(option).strip() for s in results[0].samples]
        default = results[0].case.comparisons[0].baseline.removeprefix(option).strip()
        shown = f"no `{option}`" if default == "default" else f"`{option} {default}`"
        lines += ["", f"### `{option}`", "",
                  f"Median wall time at each setting, and its ratio to parhash's default "
                  f"({shown}). Fastest in bold.", ""]
        rows = []
        for r in results:
            base = r.get(results[0].case.comparisons[0].baseline)
            medians = [stats(s.seconds).median if s.ok else None for s in r.samples]
            best = min((m for m in medians if m is not None), default=None)
            cells = [r.case.name]
            for m in medians:
                if m is None:
                    cells.append("—")
                    continue
                text = fmt_value(m, "time")
                if base.ok:
                    text += f" ({m / stats(base.seconds).median:.2f}x)"
                cells.append(f"**{text}**" if m == best else text)
            rows.append(cells)
        header = ["case", *[f"{lab} (default)" if lab == default != "default" else lab
                            for lab in labels]]
        lines += _table(header, rows, "l" + "r" * len(labels))
    return lines


def load_table(run: Run) -> list[str]:
    rows = [[r.case.name, f"{r.seconds:.1f} s",
             f"{r.other_cores:.2f}" if r.other_cores is not None else "unknown"]
            for r in run.results]
    return _table(["case", "duration", "cores used by other processes (average)"], rows, "lrr")


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} B"


def corpora_table(corpora: list[Corpus]) -> list[str]:
    rows = [[c.name, f"`{c.path}/`", f"{c.files:,}", _bytes(c.bytes), c.note] for c in corpora]
    return _table(["corpus", "directory", "files", "size", "contents"], rows, "llrrl")


def commands_section(run: Run) -> list[str]:
    lines: list[str] = []
    for r in run.results:
        case = r.case
        lines += ["", f"**{case.name}**: {case.measures}. Baseline: `{case.baseline}`.", "",
                  "```sh"]
        lines += [s.command.shown for s in r.samples]
        lines += ["```"]
    return lines


def render(run: Run, chart: str | None, chart_note: str, notes: str) -> str:
    """The whole of RESULTS.md."""
    settings = (
        f"{run.rounds} round{'s' if run.rounds != 1 else ''}"
        + (", after one untimed warm-up run of each command" if run.warmup else "")
        + (" (quick mode: toy corpora, timings meaningless)" if run.quick else "")
    )
    lines = [
        "# parhash benchmark results",
        "",
        f"Produced by `{shlex.join(['python', '-m', 'benchmarks', *run.argv])}` in "
        f"{run.seconds:.0f} s. Each case's commands ran {settings}, alternating "
        "round-robin within each round (the starting command rotates), from a warm page "
        "cache, with standard output on `/dev/null`. Values are medians; ratios are "
        "medians of parhash over medians of the baseline, from the same run. Wall time "
        "is `time.perf_counter` around the child; peak RSS is `ru_maxrss` from `wait4` "
        f"(the largest process of the run: parhash's main process or a worker), measured "
        f"through {run.rss_launcher} on the untimed warm-up run (on every run of the "
        "memory case), since a child of the harness would inherit the harness's own "
        "pages. See "
        "`benchmarks/README.md` for what each case measures.",
        "",
        "## Targets (issues 13 and 15)",
        "",
        "The items of issue 13, \"The batch pipeline\", and the speed of issue 15, "
        "\"Beyond one machine\", by the ids in the first column:",
        "",
        *[f"- `{target_id}`: {text}" for target_id, text in TARGETS.items()],
        "",
        *targets_table(run),
        "",
        f"`{PARENT_CPU}` is not a ratio: its medians are the main process's mean CPU time "
        "in each scan, its value the difference per file (next section).",
        *parent_cpu_section(run),
        *scheduler_section(run),
        *resume_section(run),
        "",
        "## All measurements",
        "",
        *measurements_table(run),
        "",
        "## Other ratios (context, no target)",
        "",
        *context_table(run),
    ]
    sweeps = sweep_tables(run)
    if sweeps:
        lines += ["", "## Parameter sweeps", *sweeps]
    lines += [
        "",
        "## Load during each case",
        "",
        "The CPU time other processes took while each case ran (from `/proc/stat`, "
        "minus the harness and its commands), as average cores. Parallel commands suffer "
        "most from it: with one of two cores taken, `-j 2` and `xargs -P2` lose their lead.",
        "",
        *load_table(run),
        "",
        "## Corpora",
        "",
        "Generated from a fixed seed (same bytes on every run and machine); paths are "
        "relative to the work directory the commands run from. The exception is `stdlib`, "
        "the real tree: the standard library of the Python running the benchmarks, read "
        "where it is installed, so it differs with that Python and what is installed in it.",
        "",
        *corpora_table(run.corpora),
        "",
        "## Machine",
        "",
        *[f"- {label}: {value}" for label, value in run.machine],
        f"- Load average at end (1, 5, 15 min): {run.load_after}",
        "",
        "## Commands",
        *commands_section(run),
        "",
        "## Chart",
        "",
    ]
    if chart:
        lines += [f"![Throughput by tool and corpus]({chart})", "", chart_note]
    else:
        lines += [chart_note]
    lines += ["", NOTES_MARKER, notes.rstrip("\n")]
    return "\n".join(lines).rstrip("\n") + "\n"


def kept_notes(path: Path) -> str:
    """What follows ``NOTES_MARKER`` in an existing ``path`` (hand-written notes)."""
    try:
        text = path.read_text()
    except OSError:
        return ""
    _, found, after = text.partition(NOTES_MARKER)
    return after.lstrip("\n") if found else ""


def chart_cases(run: Run) -> list[CaseResult]:
    return [r for r in run.results
            if r.case.metric == "time" and not r.case.sweep
            and r.case.corpus in ("large", "small", "mixed", "stdlib")
            and any(s.ok for s in r.samples)]


def draw_chart(run: Run, path: Path) -> str:
    """Draw throughput (MB/s) by tool, one panel per corpus and algorithm, to ``path``.

    Returns a note for RESULTS.md. Needs matplotlib (the ``bench`` extra);
    without it nothing is drawn and the note says so.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ("No chart: matplotlib is not installed "
                "(`pip install '.[bench]'`, which `make bench` does).")
    results = chart_cases(run)
    if not results:
        return "No chart: no throughput case ran."
    corpora = {c.name: c for c in run.corpora}
    plt.rcParams["svg.hashsalt"] = "parhash-benchmarks"  # stable ids: diffs show data changes
    plt.rcParams["svg.fonttype"] = "none"  # text stays text: a smaller, searchable file
    heights = [max(1, sum(s.ok for s in r.samples)) for r in results]
    fig, axes = plt.subplots(
        len(results), 1, figsize=(8, 0.9 + 0.38 * sum(heights) + 0.45 * len(results)),
        gridspec_kw={"height_ratios": heights}, squeeze=False,
    )
    for ax, r in zip(axes[:, 0], results, strict=True):
        ok = [s for s in r.samples if s.ok]
        corpus = corpora[r.case.corpus or ""]
        rates = [corpus.bytes / stats(s.seconds).median / 1e6 for s in ok]
        colors = ["#1f77b4" if s.command.is_parhash else "#999999" for s in ok]
        y = range(len(ok))
        ax.barh(list(y), rates, color=colors)
        ax.set_yticks(list(y), [s.command.label for s in ok], fontsize=8)
        ax.invert_yaxis()
        about = (corpus.note if len(corpus.note) <= 70
                 else f"{corpus.files:,} files, {_bytes(corpus.bytes)}")
        ax.set_title(f"{r.case.name} ({about})", fontsize=9, loc="left")
        ax.tick_params(axis="x", labelsize=8)
        for i, v in enumerate(rates):
            ax.text(v, i, f" {v:,.0f}", va="center", fontsize=7)
        ax.set_xlim(0, max(rates) * 1.18)
    axes[-1, 0].set_xlabel("MB/s (median; higher is better; parhash in blue)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None} if path.suffix == ".svg" else None)
    plt.close(fig)
    return ("Throughput is the corpus size over the median wall time, start-up and "
            "walking included.")


def chart_path(output: Path) -> Path:
    return output.with_name("results.svg")


def relative(target: Path, start: Path) -> str:
    return os.path.relpath(target, start)
