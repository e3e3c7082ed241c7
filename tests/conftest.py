"""Fixtures and helpers shared by the scan tests.

Everything runs on real files in ``tmp_path``. Expected digests are computed
here with hashlib and xxhash, never taken from parhash's own table, and
expected lines are built from coreutils' rules; where the reference tools are
installed (md5sum, sha256sum, b2sum, xxhsum) they have the last word.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import xxhash

# name -> constructor, written out independently of parhash.algorithms.
REFERENCE: dict[str, Callable[[], Any]] = {
    "md5": hashlib.md5,
    "sha1": hashlib.sha1,
    "sha224": hashlib.sha224,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
    "sha3-256": hashlib.sha3_256,
    "sha3-512": hashlib.sha3_512,
    "blake2b": hashlib.blake2b,
    "blake2s": hashlib.blake2s,
    "xxh32": xxhash.xxh32,
    "xxh64": xxhash.xxh64,
    "xxh3": xxhash.xxh3_64,
    "xxh128": xxhash.xxh3_128,
}
ALGOS = tuple(REFERENCE)

# The word before " (NAME) = " in `md5sum --tag`, `b2sum --tag`, `cksum -a`
# and `xxhsum --tag` output.
BSD_TAGS = {
    "md5": "MD5",
    "sha1": "SHA1",
    "sha224": "SHA224",
    "sha256": "SHA256",
    "sha384": "SHA384",
    "sha512": "SHA512",
    "sha3-256": "SHA3-256",
    "sha3-512": "SHA3-512",
    "blake2b": "BLAKE2b",
    "blake2s": "BLAKE2s",
    "xxh32": "XXH32",
    "xxh64": "XXH64",
    "xxh3": "XXH3",
    "xxh128": "XXH128",
}


def digest(algo: str, data: bytes) -> str:
    h = REFERENCE[algo]()
    h.update(data)
    return str(h.hexdigest())


def escape(name: bytes) -> tuple[bytes, bytes]:
    """coreutils 9's rule: (line prefix, escaped name)."""
    escaped = name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
    return (b"\\" if escaped != name else b""), escaped


def gnu_line(hexdigest: str, name: bytes) -> bytes:
    prefix, escaped = escape(name)
    return prefix + hexdigest.encode() + b"  " + escaped + b"\n"


def bsd_line(algo: str, hexdigest: str, name: bytes) -> bytes:
    prefix, escaped = escape(name)
    return b"%s%s (%s) = %s\n" % (prefix, BSD_TAGS[algo].encode(), escaped, hexdigest.encode())


# Both parhash and the reference tools run in the same UTF-8 locale, so that
# coreutils' quoting of non-ASCII names can be compared with parhash's.
ENV = {k: v for k, v in os.environ.items() if not k.startswith("LC_")}
ENV.update(LC_ALL="C.UTF-8", LANG="C.UTF-8", PYTHONDONTWRITEBYTECODE="1")
PARHASH = [sys.executable, "-m", "parhash"]
# Keeps root's uid but drops the capabilities that let root read anything.
NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def need_setpriv(what: str) -> None:
    """Skip, loudly, unless :data:`NO_DAC` can take root's reading of anything
    away: then ``what`` is not tested."""
    if shutil.which("setpriv") is None:
        pytest.skip(f"SKIPPED LOUDLY: setpriv (util-linux) is not installed, so {what} "
                    "is NOT tested")
    if os.geteuid() != 0:
        pytest.skip(f"SKIPPED LOUDLY: not root, so {what} is NOT tested through setpriv")


def run(
    args: Sequence[str | bytes | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    input: bytes | None = None,
    prefix: Sequence[str] = (),
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m parhash ARGS`` and capture its real stdout/stderr bytes."""
    return subprocess.run(
        [*prefix, *PARHASH, *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        env=ENV,
        timeout=timeout,
        check=False,
    )


def run_tool(
    args: Sequence[str | bytes], *, cwd: str | os.PathLike[str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, env=ENV, check=False)


def tool(name: str) -> str:
    """The reference tool's path, or a skip that says how to get it."""
    found = shutil.which(name)
    if found is None:
        pytest.skip(
            f"reference tool {name!r} is not installed, so parhash is not compared with it: "
            "run `make test`, which installs it (Debian packages coreutils and xxhash)"
        )
    return found


def no_traceback(stderr: bytes) -> None:
    assert b"Traceback" not in stderr, stderr.decode(errors="replace")


def records(stdout: bytes, end: bytes = b"\n") -> list[bytes]:
    """The records of an output, each with its terminator."""
    assert stdout == b"" or stdout.endswith(end), stdout[-200:]
    return [r + end for r in stdout.split(end)[:-1]]


def children(pid: int) -> list[int]:
    """Pids of the live processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != b"Z":
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    """True for a process that exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


# Names that break naive tools: every byte coreutils escapes or quotes, plus
# text that is not ASCII and bytes that are not UTF-8.
AWKWARD_NAMES: tuple[bytes, ...] = (
    b"plain.txt",
    b"with space",
    b"  leading and trailing  ",
    b"back\\slash",
    b"new\nline",
    b"carriage\rreturn",
    b"tab\there",
    b"all\\of\nthem\r",
    b"quote's \"double\"",
    b"colon:name",
    b"dash-",
    "café 日本".encode(),
    b"latin1-\xe9\xff",
    b".hidden",
    b"empty",
    b"sub/nested.bin",
    b"sub/new\ndir/inner",
    b"sub/.hidden-dir/inner",
    b"sub/deeper/block",
)


@dataclass
class Tree:
    """A directory of real files; ``files`` maps each regular file to its bytes.

    Paths are bytes relative to ``root``. ``specials`` are the entries a walk
    must not hash: a FIFO, symlinks (to a file, to a directory, broken, and
    two loops).
    """

    root: Path
    files: dict[bytes, bytes] = field(default_factory=dict)
    specials: dict[bytes, str] = field(default_factory=dict)

    @property
    def broot(self) -> bytes:
        return os.fsencode(self.root)

    def path(self, rel: bytes) -> bytes:
        return os.path.join(self.broot, rel)

    def add(self, rel: bytes, data: bytes) -> bytes:
        path = self.path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        self.files[rel] = data
        return path

    def expected_gnu(self, algo: str, prefix: bytes) -> set[bytes]:
        return {gnu_line(digest(algo, d), prefix + rel) for rel, d in self.files.items()}


def random_bytes(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    t = Tree(tmp_path / "tree")
    t.root.mkdir()
    for i, name in enumerate(AWKWARD_NAMES):
        size = 0 if name == b"empty" else (i * 37) % 300 + 1
        t.add(name, random_bytes(i, size))
    specials = {
        b"fifo": "fifo",
        b"link-to-file": "plain.txt",
        b"link-to-dir": "sub",
        b"broken-link": "does-not-exist",
        b"sub/deeper/loop": "../..",  # back to the top: a loop when followed
        b"self-loop": "self-loop",  # ELOOP on every stat
    }
    for rel, target in specials.items():
        path = t.path(rel)
        if target == "fifo":
            os.mkfifo(path)
        else:
            os.symlink(target, path)
    t.specials = specials
    return t


@pytest.fixture
def many(tmp_path: Path) -> Tree:
    """More files than parhash hashes in-process, so that the real Pool runs."""
    t = Tree(tmp_path / "many")
    t.root.mkdir()
    for i in range(150):
        t.add(b"d%d/f%03d" % (i % 7, i), random_bytes(1000 + i, i * 13 % 500))
    for i, name in enumerate(AWKWARD_NAMES):
        t.add(b"awk/" + name, random_bytes(i, i * 11 + 1))
    return t


@pytest.fixture
def chdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[os.PathLike[str] | str], None]]:
    yield monkeypatch.chdir
