"""The benchmark harness in quick mode, so that it can't rot between benchmark runs.

Runs ``python -m benchmarks --quick`` for real (toy corpora, one round) and
checks the report's shape: a row for every case, the targets table, the
parent-CPU figures, the machine. It never looks at a timing: those depend on
the machine and the load. The CPU reading the parent-CPU case relies on is
checked on its own, on a command whose CPU time is known.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.cases import TARGET_IDS
from benchmarks.corpus import QUICK
from benchmarks.timing import Command, Runner

ROOT = Path(__file__).resolve().parent.parent

# Every case the harness must report, in issue 13's terms.
CASES = (
    "large-md5", "large-sha256", "large-xxh3", "large-blake3",
    "small-md5", "small-xxh3", "small-sha256", "parent-cpu", "mixed-md5", "real-tree",
    "startup", "memory", "check", "dupes", "dupes-small",
    "block-size-md5", "block-size-sha256", "block-size-xxh3",
    "chunksize-md5", "chunksize-xxh3", "cluster-large", "cluster-small", "cluster-cpu",
)

# The peers the cases run. `make test` installs them (`make peers`), so a
# missing one is a broken set-up, not a reason to skip.
PEERS = ("md5sum", "sha256sum", "xxhsum", "b3sum", "rhash", "hashdeep", "jdupes", "rdfind",
         "find", "xargs")


def test_quick_benchmarks_report_every_case_and_the_machine(tmp_path: Path) -> None:
    missing = [tool for tool in PEERS if shutil.which(tool) is None]
    assert not missing, f"peer tools missing: {', '.join(missing)}; run `make peers`"
    output = tmp_path / "out" / "RESULTS.md"

    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--strict",
         "--workdir", str(tmp_path / "work"), "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )

    assert proc.returncode == 0, proc.stderr[-3000:]
    text = output.read_text()
    assert text in proc.stdout  # the table is printed as well as written
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    for case in CASES:
        assert any(row.startswith(f"| {case} | ") for row in rows), f"no row for {case}"
    for target in TARGET_IDS:
        assert any(row.startswith(f"| {target} | ") for row in rows), f"no target {target}"
    assert not [row for row in rows if "not installed" in row]
    # Parallel efficiency needs parhash -j1 next to -j2 on the small files.
    assert any(row.startswith("| small-md5 | parhash -j1 | ") for row in rows)
    for heading in ("## Targets (issues 13 and 15)", "## Parent CPU per file (parent-cpu)",
                    "## Parent CPU per file (cluster-cpu)", "## The cluster's scheduler",
                    "## All measurements", "## Machine", "## Corpora"):
        assert heading in text
    # The scheduler's figures: a row per task size, each with a CPU time per task.
    scheduler = text.split("## The cluster's scheduler", 1)[1].split("\n## ", 1)[0]
    assert len([r for r in scheduler.splitlines() if r.startswith("| ") and " ms |" in r]) == 3
    assert "One scheduler takes at most about" in scheduler
    parent = text.split("## Parent CPU per file", 1)[1].split("\n## ", 1)[0]
    for column in ("main process CPU per file", "workers' CPU per file",
                   "ceiling (workers per main process)", "<= 0.5 µs"):
        assert column in parent, f"parent-CPU section lacks {column!r}"
    assert "no CPU reading" not in text and "µs |" in parent
    assert any(row.startswith("| stdlib | ") for row in rows), "no row for the real tree"
    for label in ("- CPU: ", "- Cores: ", "- Memory: ", "- Kernel: ", "- Python: ",
                  "- md5sum: ", "- xxhsum: ", "- Date: "):
        assert label in text, f"machine description lacks {label.strip()}"
    # Only what was asked for is written; the corpora stay in the work directory.
    assert sorted(p.name for p in output.parent.iterdir()) in (
        ["RESULTS.md"], ["RESULTS.md", "results.svg"],
    )
    # The parent-CPU case's head: the first files of small/, same paths, same bytes.
    work = tmp_path / "work"
    head = sorted(p.relative_to(work / QUICK.small_head)
                  for p in (work / QUICK.small_head).rglob("*.bin"))
    small = sorted(p.relative_to(work / "small") for p in (work / "small").rglob("*.bin"))
    assert head == small[:QUICK.small_head_files]
    assert all((work / "small" / p).read_bytes() == (work / QUICK.small_head / p).read_bytes()
               for p in head[::7])


# Burns 0.05 s of CPU in a child it waits for, then 0.05 s of its own.
_BURN = """
import os, time
def burn():
    end = time.process_time() + 0.05
    while time.process_time() < end:
        pass
pid = os.fork()
if pid == 0:
    burn()
    os._exit(0)
os.waitpid(pid, 0)
burn()
"""


def test_cpu_reading_splits_the_main_process_from_its_children(tmp_path: Path) -> None:
    runner = Runner(tmp_path)
    try:
        outcome = runner.run(Command("burn", (sys.executable, "-c", _BURN), "burn"), cpu=True)
    finally:
        runner.close()
    assert outcome.status == 0
    assert outcome.cpu is not None
    # Whole clock ticks: at least 0.04 s of each 0.05 s shows, and the
    # interpreter's start adds to the main process only.
    assert outcome.cpu.own >= 0.04
    assert 0.04 <= outcome.cpu.children < 0.5
