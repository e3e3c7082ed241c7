"""What the benchmarks ran on: CPU, cores, memory, kernel, Python, tools, date.

Timings mean little without the machine, so RESULTS.md starts from this.
Everything is read from /proc, the platform module and each tool's own
``--version``; what can't be found is reported as ``unknown``.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import ssl
import subprocess
import sys
from importlib import metadata
from pathlib import Path

# (label, argv) of each tool's version query; the first non-empty line is kept.
VERSION_COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("md5sum", ("md5sum", "--version")),
    ("sha256sum", ("sha256sum", "--version")),
    ("xxhsum", ("xxhsum", "--version")),
    ("b3sum", ("b3sum", "--version")),
    ("rhash", ("rhash", "--version")),
    ("hashdeep", ("hashdeep", "-V")),
    ("jdupes", ("jdupes", "-v")),
    ("rdfind", ("rdfind", "-v")),
    ("find", ("find", "--version")),
    ("xargs", ("xargs", "--version")),
)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    """The ``model name`` of /proc/cpuinfo, with the features hashing speed depends on."""
    info = _read("/proc/cpuinfo")
    model = "unknown"
    flags: set[str] = set()
    for line in info.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model == "unknown":
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    if model == "unknown":
        model = platform.processor() or "unknown"
    features = [f for f in ("sha_ni", "avx2", "avx512f") if f in flags]
    return f"{model} ({', '.join(features)})" if features else model


def cores() -> str:
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    return f"{usable} available to this process ({os.cpu_count()} online)"


def memory() -> str:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            kib = int(line.split()[1])
            return f"{kib / (1 << 20):.1f} GiB"
    return "unknown"


def operating_system() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip().strip('"')
    return platform.system()


def filesystem(path: Path) -> str:
    """The file system type of the mount that holds ``path`` (from /proc/mounts)."""
    best = ("", "unknown")
    target = str(path.resolve())
    for line in _read("/proc/mounts").splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1].replace("\\040", " ")
        if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(
            mount
        ) >= len(best[0]):
            best = (mount, parts[2])
    return f"{best[1]} (mounted on {best[0]})" if best[0] else "unknown"


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def tool_version(argv: tuple[str, ...]) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    for line in (proc.stdout + "\n" + proc.stderr).splitlines():
        if line.strip():
            return line.strip()
    return "unknown"


def _package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def parhash_version(argv: tuple[str, ...]) -> str:
    """``parhash --version``, where its code is imported from, and its git commit."""
    version = tool_version((*argv, "--version"))
    where = parhash_location()
    if where is None:
        return f"{version} (location unknown)"
    return f"{version} ({where}; {source_revision(where)})"


def source_revision(directory: Path) -> str:
    """The git commit of ``directory``'s checkout, and how many files differ from it."""
    if shutil.which("git") is None:
        return "unknown (git not installed)"
    head = subprocess.run(["git", "-C", str(directory), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True)
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    status = subprocess.run(
        ["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True, text=True,
    )
    changed = len(status.stdout.splitlines())
    dirty = f", with uncommitted changes in {changed} files" if changed else ""
    return f"commit {head.stdout.strip()}{dirty}"


def parhash_location() -> Path | None:
    where = subprocess.run(
        [sys.executable, "-c", "import parhash; print(parhash.__file__)"],
        capture_output=True, text=True,
    ).stdout.strip()
    return Path(where).parent if where else None


def describe(workdir: Path, parhash_argv: tuple[str, ...]) -> list[tuple[str, str]]:
    """(label, value) pairs describing this machine and the software under test."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    rows = [
        ("Date", now.isoformat().replace("+00:00", " UTC")),
        ("CPU", cpu_model()),
        ("Cores", cores()),
        ("Memory", memory()),
        ("OS", operating_system()),
        ("Kernel", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("Work directory file system", filesystem(workdir)),
        ("Load average at start (1, 5, 15 min)", load_average()),
        ("Python", f"{platform.python_implementation()} {platform.python_version()} "
                   f"({sys.executable})"),
        ("OpenSSL (hashlib)", ssl.OPENSSL_VERSION),
        ("parhash", parhash_version(parhash_argv)),
        ("click / xxhash / tqdm", " / ".join(_package(p) for p in ("click", "xxhash", "tqdm"))),
    ]
    rows += [(label, tool_version(argv)) for label, argv in VERSION_COMMANDS]
    return rows
