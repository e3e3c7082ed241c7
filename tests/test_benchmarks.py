"""The benchmark harness in quick mode, so that it can't rot between benchmark runs.

Runs ``python -m benchmarks --quick`` for real (toy corpora, one round) and
checks the report's shape: a row for every case, the targets table, the
machine. It never looks at a timing: those depend on the machine and the load.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Every case the harness must report, in issue 3's terms.
CASES = (
    "large-md5", "large-sha256", "large-xxh3", "large-blake3",
    "small-md5", "small-xxh3", "small-sha256", "mixed-md5",
    "startup", "memory", "check", "dupes",
    "block-size-md5", "block-size-sha256", "block-size-xxh3",
    "chunksize-md5", "chunksize-xxh3",
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
    for target in "1234567":
        assert any(row.startswith(f"| {target} | ") for row in rows), f"no target {target}"
    assert not [row for row in rows if "not installed" in row]
    for heading in ("## Targets (issue 3)", "## All measurements", "## Machine", "## Corpora"):
        assert heading in text
    for label in ("- CPU: ", "- Cores: ", "- Memory: ", "- Kernel: ", "- Python: ",
                  "- md5sum: ", "- xxhsum: ", "- Date: "):
        assert label in text, f"machine description lacks {label.strip()}"
    # Only what was asked for is written; the corpora stay in the work directory.
    assert sorted(p.name for p in output.parent.iterdir()) in (
        ["RESULTS.md"], ["RESULTS.md", "results.svg"],
    )
