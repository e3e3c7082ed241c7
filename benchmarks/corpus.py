"""Deterministic corpora: the trees every benchmark hashes.

Each corpus is a directory under the work directory, built from a seeded
generator so that two runs (and two machines) hash the same bytes. A corpus
is built once per work directory: a stamp in ``.stamps/`` records the
parameters it was built with, and a later run with the same parameters
reuses it. Nothing but the corpus' own files lives inside its directory, so
walking it hashes exactly the generated files.

Layout, relative to the work directory (the benchmarks run from there):

    large/large-0.bin ...     a few big files of random bytes
    small/d000/f00000.bin     many files of 1-8 KiB in a few hundred directories
    small-1k/d000/f00000.bin  hard links to the first 1,000 files of ``small``, same layout
    mixed/...                 small, medium and a few big files together
    dupes/...                 duplicates, same-size decoys, hard links, empties
    memory-20000/...          the two trees of the memory case
    one/one.bin               one small file, for the start-up case
    manifests/small.md5       md5sum lines of ``small``, whole and in two halves; of
                              ``large``; and hashdeep's format of both

One corpus is not generated: ``stdlib``, the installed standard library of
the interpreter running the benchmarks (``sysconfig``'s ``stdlib`` path), a
real tree of source files, compiled files and a few big ones, linked into
the work directory without the packages installed in its ``site-packages``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import shutil
import sys
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

# Bump when a generator changes what it writes, so old stamps stop matching.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class Sizes:
    """How big each corpus is. ``FULL`` is the issue's sizes, ``QUICK`` a toy."""

    seed: int = 3
    small_files: int = 30_000
    small_per_dir: int = 100
    small_min: int = 1 * KiB
    small_max: int = 8 * KiB
    large_bytes: int = 2 * GiB
    large_files: int = 8
    mixed_small: int = 10_000
    mixed_medium: int = 100
    mixed_medium_max: int = 8 * MiB
    mixed_big: tuple[int, ...] = (128 * MiB, 256 * MiB)
    dupes_files: int = 40_000
    dupes_max: int = 64 * KiB
    dupes_big: tuple[int, ...] = (4 * MiB, 8 * MiB, 16 * MiB, 32 * MiB)
    memory_files: tuple[int, int] = (20_000, 200_000)
    # The parent-CPU case subtracts a scan of this many of the small files from
    # the scan of all of them (at most half of them, for a small --small-files).
    parent_cpu_files: int = 1_000
    # The real tree: this directory of the standard library ("" for all of it).
    real_tree_subdir: str = ""

    def with_small_files(self, n: int) -> Sizes:
        return replace(self, small_files=n)

    def with_large_bytes(self, n: int) -> Sizes:
        return replace(self, large_bytes=n)

    @property
    def large_file_size(self) -> int:
        return max(1, self.large_bytes // self.large_files)

    @property
    def small_head_files(self) -> int:
        """Files in the small corpus' head (``small-1k``): the first ``parent_cpu_files``."""
        return max(1, min(self.parent_cpu_files, self.small_files // 2))

    @property
    def small_head(self) -> str:
        """The head's directory: ``small-1k`` for 1,000 files, ``small-100`` for 100."""
        n = self.small_head_files
        return f"small-{n // 1000}k" if n % 1000 == 0 else f"small-{n}"


FULL = Sizes()
QUICK = Sizes(
    small_files=300,
    small_per_dir=30,
    large_bytes=8 * MiB,
    mixed_small=100,
    mixed_medium=4,
    mixed_medium_max=256 * KiB,
    mixed_big=(2 * MiB,),
    dupes_files=400,
    dupes_max=16 * KiB,
    dupes_big=(256 * KiB, 512 * KiB),
    memory_files=(200, 2_000),
    parent_cpu_files=100,
    real_tree_subdir="email",
)


@dataclass
class Corpus:
    """A built tree: its directory (relative to the work directory) and contents."""

    name: str
    path: str
    files: int
    bytes: int
    dirs: int
    note: str = ""


def _write(path: Path, data: bytes | bytearray | memoryview) -> None:
    # os.open/os.write: about three times faster than open() for tiny files.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _stream(path: Path, size: int, key: bytes) -> None:
    """Write ``size`` pseudo-random bytes derived from ``key`` (SHAKE-128, 1 MiB at a time)."""
    with open(path, "wb", buffering=0) as f:
        block = 0
        left = size
        while left:
            n = min(left, MiB)
            f.write(hashlib.shake_128(key + b":%d" % block).digest(n))
            left -= n
            block += 1


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    """A size between ``low`` and ``high`` whose logarithm is uniform: many small, a few big."""
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


def build_large(root: Path, sizes: Sizes) -> Corpus:
    root.mkdir()
    size = sizes.large_file_size
    for i in range(sizes.large_files):
        _stream(root / f"large-{i}.bin", size, b"large:%d:%d" % (sizes.seed, i))
    return Corpus(
        "large", root.name, sizes.large_files, size * sizes.large_files, 1,
        f"{sizes.large_files} files of {_human(size)}",
    )


def _small_name(i: int, per_dir: int) -> tuple[str, str]:
    """Directory and file name of the ``i``-th file of a small-file tree."""
    return f"d{i // per_dir:03d}", f"f{i:05d}.bin"


def _small_tree(root: Path, rng: random.Random, files: int, per_dir: int,
                low: int, high: int) -> tuple[int, int]:
    root.mkdir()
    total = 0
    dirs = 0
    directory = root
    for i in range(files):
        dirname, filename = _small_name(i, per_dir)
        if i % per_dir == 0:
            directory = root / dirname
            directory.mkdir()
            dirs += 1
        size = rng.randint(low, high)
        _write(directory / filename, rng.randbytes(size))
        total += size
    return total, dirs


def build_small(root: Path, sizes: Sizes) -> Corpus:
    rng = random.Random(f"small:{sizes.seed}")
    total, dirs = _small_tree(root, rng, sizes.small_files, sizes.small_per_dir,
                              sizes.small_min, sizes.small_max)
    return Corpus(
        "small", root.name, sizes.small_files, total, dirs,
        f"{sizes.small_files:,} files of {_human(sizes.small_min)}-{_human(sizes.small_max)} "
        f"in {dirs:,} directories",
    )


def build_small_head(root: Path, small: Path, sizes: Sizes) -> Corpus:
    """The first ``small_head_files`` files of ``small``, under the same relative paths.

    The parent-CPU case subtracts a scan of this tree from a scan of the whole
    small corpus, so that what both pay once (interpreter start, imports, the
    pool) cancels and what remains is per file. Hard links (copies where the
    file system has none): the same bytes in the same page cache, nothing to
    generate, and ``small`` itself is left as it is.
    """
    root.mkdir()
    n = sizes.small_head_files
    total = 0
    dirs = 0
    copies = 0
    for i in range(n):
        dirname, filename = _small_name(i, sizes.small_per_dir)
        if i % sizes.small_per_dir == 0:
            (root / dirname).mkdir()
            dirs += 1
        source = small / dirname / filename
        try:
            os.link(source, root / dirname / filename)
        except OSError:
            shutil.copyfile(source, root / dirname / filename)
            copies += 1
        total += source.stat().st_size
    how = "hard links" if not copies else "copies" if copies == n else "hard links and copies"
    return Corpus(
        sizes.small_head, root.name, n, total, dirs,
        f"the first {n:,} files of small/, same paths under it ({how}), "
        f"in {dirs:,} directories",
    )


def real_tree(sizes: Sizes) -> Path:
    """Where the real tree is installed: the standard library of the interpreter
    running the benchmarks.

    That is the ``stdlib`` path of ``sysconfig`` (the base installation's,
    also from a venv), or its ``real_tree_subdir`` (quick mode takes one
    package, to stay a toy). The benchmarks hash the ``stdlib`` corpus, a
    tree of links to it (:func:`build_stdlib`).
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    return root / sizes.real_tree_subdir if sizes.real_tree_subdir else root


# Installed packages are not the standard library: how many there are depends
# on the machine (here they were 43,000 of its 50,700 files).
NOT_STDLIB = frozenset({"site-packages", "dist-packages"})


def build_stdlib(root: Path, sizes: Sizes) -> Corpus:
    """The standard library as installed, less its ``site-packages``: hard links
    (copies where linking fails) under the same paths.

    Symbolic links are left out: neither ``find -type f`` nor ``parhash scan``
    without ``-L`` reads them.
    """
    source = real_tree(sizes)
    files = total = dirs = 0
    stack = [Path()]
    while stack:
        rel = stack.pop()
        (root / rel).mkdir(parents=True, exist_ok=True)
        dirs += 1
        try:
            entries = sorted(os.scandir(source / rel), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in NOT_STDLIB:
                    stack.append(rel / entry.name)
            elif entry.is_file(follow_symlinks=False):
                try:
                    os.link(entry.path, root / rel / entry.name)
                except OSError:
                    shutil.copyfile(entry.path, root / rel / entry.name)
                files += 1
                total += entry.stat(follow_symlinks=False).st_size
    version = ".".join(str(v) for v in sys.version_info[:3])
    note = (f"the installed standard library of Python {version} ({dirs:,} directories), "
            f"without site-packages: hard links to {source}")
    if sizes.real_tree_subdir:
        note = f"{sizes.real_tree_subdir}/ of {note}"
    return Corpus("stdlib", root.name, files, total, dirs, note)


def build_memory(root: Path, sizes: Sizes, files: int) -> Corpus:
    # Small files (64 B - 1 KiB): the case measures what the pipeline holds
    # per file, not the read buffer, and a 200,000-file tree stays cheap to build.
    rng = random.Random(f"memory:{sizes.seed}:{files}")
    total, dirs = _small_tree(root, rng, files, 100, 64, KiB)
    return Corpus(f"memory-{files}", root.name, files, total, dirs,
                  f"{files:,} files of 64 B-1 KiB in {dirs:,} directories")


def build_mixed(root: Path, sizes: Sizes) -> Corpus:
    """Many small files, some medium ones and a few big ones, interleaved in one tree.

    The big files sit in the last directory, so a pipeline that hands them out
    last leaves one core idle on the tail.
    """
    rng = random.Random(f"mixed:{sizes.seed}")
    root.mkdir()
    total = 0
    files = 0
    dirs = 0
    per_dir = 100
    medium = 0
    medium_every = max(1, sizes.mixed_small // max(1, sizes.mixed_medium))
    medium_min = min(MiB, sizes.mixed_medium_max // 4)
    directory = root
    for i in range(sizes.mixed_small):
        if i % per_dir == 0:
            directory = root / f"d{i // per_dir:03d}"
            directory.mkdir()
            dirs += 1
        size = _log_uniform(rng, 100, 64 * KiB)
        _write(directory / f"f{i:05d}.bin", rng.randbytes(size))
        total += size
        files += 1
        if i % medium_every == medium_every - 1 and medium < sizes.mixed_medium:
            size = _log_uniform(rng, medium_min, sizes.mixed_medium_max)
            _stream(directory / f"m{i:05d}.bin", size, b"mixed:%d:%d" % (sizes.seed, i))
            total += size
            files += 1
            medium += 1
    big = root / "zz-big"
    big.mkdir()
    dirs += 1
    for i, size in enumerate(sizes.mixed_big):
        _stream(big / f"big-{i}.bin", size, b"mixed-big:%d:%d" % (sizes.seed, i))
        total += size
        files += 1
    return Corpus(
        "mixed", root.name, files, total, dirs,
        f"{sizes.mixed_small:,} files of 100 B-64 KiB, {medium} of {_human(medium_min)}-"
        f"{_human(sizes.mixed_medium_max)}, and "
        + ", ".join(_human(s) for s in sizes.mixed_big),
    )


def build_dupes(root: Path, sizes: Sizes) -> Corpus:
    """A tree shaped like a photo or backup folder that has been copied around.

    Of the files: about 55% unique; 25% byte-for-byte copies of an earlier
    file (so groups of 2 to many, often under the same name in another
    directory); 14% same-size decoys (half differ from a file only in the
    last byte, which defeats a check of the first block; half are new random
    bytes of an existing size); 3% hard links to an earlier file; 3% empty.
    A few big files (``dupes_big``) come with a copy and a decoy that differs
    in the last byte. Sizes are log-uniform from 64 B to ``dupes_max``.
    """
    rng = random.Random(f"dupes:{sizes.seed}")
    root.mkdir()
    n = sizes.dupes_files
    ndirs = max(1, n // 100)
    for d in range(ndirs):
        (root / f"d{d:03d}").mkdir()
    originals: list[tuple[str, int, int]] = []  # (name, size, content seed)
    paths: list[Path] = []
    total = 0
    counts = {"unique": 0, "copy": 0, "decoy": 0, "hardlink": 0, "empty": 0}

    def content(size: int, seed: int) -> bytes:
        return random.Random(seed).randbytes(size)

    for i in range(n):
        directory = root / f"d{rng.randrange(ndirs):03d}"
        roll = rng.random()
        kind = "unique"
        if originals and roll < 0.25:
            kind = "copy"
        elif originals and roll < 0.32:
            kind = "decoy-last-byte"
        elif originals and roll < 0.39:
            kind = "decoy-random"
        elif paths and roll < 0.42:
            kind = "hardlink"
        elif roll < 0.45:
            kind = "empty"
        if kind == "copy":
            name, size, seed = rng.choice(originals)
            path = directory / name
            if path.exists():
                path = directory / f"copy-{i:05d}-{name}"
            _write(path, content(size, seed))
            counts["copy"] += 1
        elif kind.startswith("decoy"):
            _, size, seed = rng.choice(originals)
            path = directory / f"f{i:05d}.dat"
            if kind == "decoy-last-byte" and size:
                data = bytearray(content(size, seed))
                data[-1] ^= 0xFF
                _write(path, data)
            else:
                _write(path, content(size, rng.getrandbits(63)))
            counts["decoy"] += 1
        elif kind == "hardlink":
            path = directory / f"link-{i:05d}.dat"
            target = rng.choice(paths)
            os.link(target, path)
            size = target.stat().st_size
            counts["hardlink"] += 1
        elif kind == "empty":
            path = directory / f"empty-{i:05d}.dat"
            _write(path, b"")
            size = 0
            counts["empty"] += 1
        else:
            size = _log_uniform(rng, 64, sizes.dupes_max)
            seed = rng.getrandbits(63)
            name = f"f{i:05d}.dat"
            path = directory / name
            _write(path, content(size, seed))
            originals.append((name, size, seed))
            counts["unique"] += 1
        paths.append(path)
        total += size
    big = root / "big"
    big.mkdir()
    for i, size in enumerate(sizes.dupes_big):
        key = b"dupes-big:%d:%d" % (sizes.seed, i)
        _stream(big / f"video-{i}.bin", size, key)
        copy = root / f"d{rng.randrange(ndirs):03d}" / f"video-{i}.bin"
        shutil.copyfile(big / f"video-{i}.bin", copy)
        decoy = big / f"video-{i}-edited.bin"
        shutil.copyfile(big / f"video-{i}.bin", decoy)
        with open(decoy, "r+b") as f:
            f.seek(size - 1)
            last = f.read(1)
            f.seek(size - 1)
            f.write(bytes([last[0] ^ 0xFF]))
        total += 3 * size
    files = n + 3 * len(sizes.dupes_big)
    return Corpus(
        "dupes", root.name, files, total, ndirs + 1,
        f"{files:,} files: {counts['unique']:,} unique, {counts['copy']:,} copies, "
        f"{counts['decoy']:,} same-size decoys, {counts['hardlink']:,} hard links, "
        f"{counts['empty']:,} empty; {len(sizes.dupes_big)} big files with a copy and a "
        "decoy each",
    )


def build_one(root: Path, sizes: Sizes) -> Corpus:
    root.mkdir()
    _write(root / "one.bin", random.Random(f"one:{sizes.seed}").randbytes(4 * KiB))
    return Corpus("one", root.name, 1, 4 * KiB, 1, "one file of 4 KiB")


def build_manifests(root: Path, small: Path) -> Corpus:
    """``md5sum`` lines for the small corpus, and the same lines split in two
    halves; ``md5sum`` lines of the large corpus; and hashdeep's own format of
    both (``size,md5,filename``, as ``hashdeep -c md5 -l -r`` writes it).

    Computed here with hashlib (paths relative to the work directory, which
    are plain ASCII, so no escaping is needed).
    """
    root.mkdir()
    counts = []
    for tree in (small, small.parent / "large"):
        lines, known = [], ["%%%% HASHDEEP-1.0\n", "%%%% size,md5,filename\n"]
        for path in sorted(_files(tree)):
            digest = hashlib.md5()
            with path.open("rb") as f:
                while block := f.read(MiB):
                    digest.update(block)
            name = path.relative_to(tree.parent)
            lines.append(f"{digest.hexdigest()}  {name}\n")
            known.append(f"{path.stat().st_size},{digest.hexdigest()},{name}\n")
        (root / f"{tree.name}.md5").write_text("".join(lines))
        (root / f"{tree.name}.hashdeep").write_text("".join(known))
        counts.append(len(lines))
        if tree == small:
            half = len(lines) // 2
            (root / "small-1.md5").write_text("".join(lines[:half]))
            (root / "small-2.md5").write_text("".join(lines[half:]))
    return Corpus("manifests", root.name, 6, 0, 1,
                  f"md5sum lines of the small corpus ({counts[0]:,} lines), whole and halved, "
                  f"and of the large one ({counts[1]:,}); hashdeep's format of both")


def _files(root: Path) -> Iterator[Path]:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            yield Path(dirpath, name)


def _human_round(n: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} B"


def _human(n: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size and n % (size // 1024 or 1) == 0:
            value = n / size
            return f"{value:g} {unit}"
    return f"{n} B"


def corpus_names(sizes: Sizes) -> list[str]:
    a, b = sizes.memory_files
    return ["large", "small", sizes.small_head, "mixed", "dupes", f"memory-{a}", f"memory-{b}",
            "one", "manifests", "stdlib"]


def _params(name: str, sizes: Sizes) -> dict[str, object]:
    """The fields of ``sizes`` that corpus ``name`` depends on (its stamp)."""
    prefix = {"manifests": "small", "one": "seed", "stdlib": "real_tree"}.get(
        name, name.split("-")[0])
    fields = {k: v for k, v in asdict(sizes).items() if k == "seed" or k.startswith(prefix)}
    if name == sizes.small_head:
        fields["parent_cpu_files"] = sizes.parent_cpu_files
    if name == "manifests":  # the large corpus' too, and hashdeep's format
        fields.update((k, v) for k, v in asdict(sizes).items() if k.startswith("large"))
        fields["manifests_version"] = 2
    return {"version": GENERATOR_VERSION, "name": name, "sizes": fields}


def ensure(workdir: Path, name: str, sizes: Sizes,
           log: Callable[[str], None] | None = None) -> Corpus:
    """Build corpus ``name`` in ``workdir`` unless a matching one is already there.

    Returns its description. A partial build (interrupted) never matches: the
    tree is built under a temporary name and renamed when complete. The
    """
    if name == sizes.small_head:  # links to the small corpus' files: that comes first
        ensure(workdir, "small", sizes, log)
    if name == "manifests":  # lists both
        ensure(workdir, "small", sizes, log)
        ensure(workdir, "large", sizes, log)
    stamps = workdir / ".stamps"
    stamps.mkdir(parents=True, exist_ok=True)
    stamp = stamps / f"{name}.json"
    params = _params(name, sizes)
    target = workdir / name
    if stamp.exists() and target.exists():
        saved = json.loads(stamp.read_text())
        if saved.get("params") == json.loads(json.dumps(params)):
            with contextlib.suppress(KeyError, TypeError):  # a stamp from an older harness
                return Corpus(**saved["corpus"])
    if log:
        log(f"building corpus {name} ...")
    stamp.unlink(missing_ok=True)
    if target.exists():
        shutil.rmtree(target)
    building = workdir / f".building-{name}"
    if building.exists():
        shutil.rmtree(building)
    corpus = _build(name, building, workdir, sizes)
    building.rename(target)
    corpus.path = name
    stamp.write_text(json.dumps({"params": params, "corpus": asdict(corpus)}))
    return corpus


def _build(name: str, root: Path, workdir: Path, sizes: Sizes) -> Corpus:
    if name == "large":
        return build_large(root, sizes)
    if name == "small":
        return build_small(root, sizes)
    if name == sizes.small_head:
        return build_small_head(root, workdir / "small", sizes)
    if name == "mixed":
        return build_mixed(root, sizes)
    if name == "dupes":
        return build_dupes(root, sizes)
    if name == "one":
        return build_one(root, sizes)
    if name == "stdlib":
        return build_stdlib(root, sizes)
    if name == "manifests":
        return build_manifests(root, workdir / "small")
    if name.startswith("memory-"):
        return build_memory(root, sizes, int(name.removeprefix("memory-")))
    raise ValueError(f"unknown corpus {name!r}")


def warm(workdir: Path, corpus: Corpus) -> int:
    """Read every file of ``corpus`` once so that the runs start from a warm page cache.

    Returns the bytes read.
    """
    total = 0
    buf = bytearray(MiB)
    for path in _files(workdir / corpus.path):
        if not path.is_file():  # a fifo of a real tree would block the open
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            while n := os.readv(fd, [buf]):
                total += n
        finally:
            os.close(fd)
    return total


