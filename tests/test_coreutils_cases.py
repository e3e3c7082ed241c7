"""coreutils' own tests of md5sum, sha*sum, b2sum and cksum, run on parhash.

Each case is one of GNU coreutils' test suite (tests/misc/ in 9.1, moved
to tests/cksum/ since; a few cases added after 9.1 test what 9.1 already
did, and are named as there). The installed tool (coreutils 9.1) and
``python -m parhash`` run on the same files in ``tmp_path``, in the C
locale as coreutils' tests run; their standard output, standard error (the
program's name made the same) and exit status must agree byte for byte.
``md5sum -c`` is ``parhash check -a md5``: md5sum reads MD5 lines only.

No digest is written here: the tool computes what it prints, and hashlib
what a case writes into a manifest. A case where parhash differs on purpose
names the entry of docs/check.md's "Deliberate differences" that says why,
and asserts parhash's own answer, and that it does differ.

Not ported: cksum.pl, cksum.sh, sum.pl, sum-sysv.sh and sm3sum.pl test
algorithms parhash does not have (CRC, BSD and SysV sums, SM3); the
``--base64`` output of cksum-base64.pl came after 9.1.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs" / "check.md"
# As coreutils' tests run them: @ENV{qw(LANGUAGE LANG LC_ALL)} = ('C') x 3.
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG"))}
ENV.update(LANGUAGE="C", LANG="C", LC_ALL="C", PYTHONDONTWRITEBYTECODE="1")


def tool(name: str) -> str:
    """The installed program ``name``: without it a case can't be compared, and fails."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: coreutils' cases compare parhash with it "
                    "(Debian package coreutils)")
    return found


def hexdigest(algo: str, data: bytes, size: int | None = None) -> str:
    if size is not None:
        return hashlib.blake2b(data, digest_size=size).hexdigest()
    return hashlib.new(algo, data).hexdigest()


def escaped(name: bytes) -> tuple[bytes, bytes]:
    """coreutils' escaping of a name in a checksum line: (line prefix, name)."""
    out = name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
    return (b"\\" if out != name else b""), out


def gnu(algo: str, data: bytes, name: bytes) -> bytes:
    """``md5sum --text NAME``'s line for a file holding ``data``."""
    prefix, name = escaped(name)
    return prefix + hexdigest(algo, data).encode() + b"  " + name + b"\n"


TAGS = {"md5": b"MD5", "sha1": b"SHA1", "sha256": b"SHA256", "sha384": b"SHA384",
        "blake2b": b"BLAKE2b"}


def tagged(algo: str, data: bytes, name: bytes, size: int | None = None) -> bytes:
    """``md5sum --tag NAME``'s line; ``size``: b2sum -l's BLAKE2b-N, in bytes."""
    prefix, name = escaped(name)
    tag = TAGS[algo] + (b"-%d" % (size * 8) if size else b"")
    return b"%s%s (%s) = %s\n" % (prefix, tag, name, hexdigest(algo, data, size).encode())


@dataclass(frozen=True)
class Case:
    """One case of coreutils' tests: the tool's command line and parhash's.

    ``files`` are made first (the case's IN and AUX files), then ``setup``
    (for what only the tool can write); ``args`` go after both command
    lines. With ``differs`` (an entry of docs/check.md's "Deliberate
    differences"), parhash must answer ``expect``: (status, stdout, stderr).
    """

    source: str
    name: str
    tool: tuple[str, ...]
    ours: tuple[str, ...]
    files: dict[bytes, bytes] = field(default_factory=dict)
    args: tuple[bytes, ...] = ()
    stdin: bytes | None = None
    setup: Callable[[Path], None] | None = None
    differs: str | None = None
    expect: tuple[int, bytes, bytes] | None = None
    sort: bool = False  # stdout's lines in any order (parallel hashing)
    prefix: tuple[str, ...] = ()  # runs both under this command (strace)
    their_args: tuple[bytes, ...] | None = None  # the tool's, when not ``args``

    @property
    def id(self) -> str:
        return f"{self.source}:{self.name}"


CASES: list[Case] = []


def hashing(source: str, name: str, program: str, algo: str, files: dict[bytes, bytes],
            tool_options: tuple[str, ...] = ("--text",),
            our_options: tuple[str, ...] = ()) -> None:
    """``PROGRAM --text FILE...`` against ``parhash scan -a ALGO FILE...``."""
    CASES.append(Case(source, name, (program, *tool_options), ("scan", "-a", algo, *our_options),
                      files, tuple(files)))


def checking(source: str, name: str, program: str | tuple[str, ...], algo: str | None,
             options: tuple[str, ...], manifests: dict[bytes, bytes],
             aux: dict[bytes, bytes] | None = None, stdin: bytes | None = None,
             **kw: Any) -> None:
    """``PROGRAM --check OPTIONS MANIFEST...`` against ``parhash check [-a ALGO] OPTIONS``."""
    ours = ("check", *(("-a", algo) if algo else ()), *options)
    command = (program,) if isinstance(program, str) else program
    CASES.append(Case(source, name, (*command, "--check", *options), ours,
                      {**manifests, **(aux or {})}, tuple(manifests), stdin, **kw))


# --- md5sum.pl ----------------------------------------------------------------

MD5 = "md5sum.pl"
E = hexdigest("md5", b"").encode()  # $degenerate
for case, data in [("1", b""), ("2", b"a"), ("3", b"abc"), ("4", b"message digest"),
                   ("5", b"abcdefghijklmnopqrstuvwxyz"),
                   ("6", b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
                   ("7", b"1234567890" * 8)]:
    hashing(MD5, case, "md5sum", "md5", {b"f": data})
for case, file in [("backslash-1", b".\nfoo"), ("backslash-2", b".\\foo"),
                   ("backslash-3", b".\rfoo")]:
    hashing(MD5, case, "md5sum", "md5", {file: b""})
checking(MD5, "check-1", "md5sum", "md5", (), {b"f.md5": E + b"  f\n"}, {b"f": b""})
checking(MD5, "check-windows", "md5sum", "md5", (), {b"f.md5": E + b"  f\r\n"}, {b"f": b""})
checking(MD5, "ck-strict-1", "md5sum", "md5", ("--strict",), {b"f.md5": E + b"  f\n\n"},
         {b"f": b""})
checking(MD5, "ck-strict-2", "md5sum", "md5", ("--strict",), {b"in.md5": b"ERR\n" + E + b"  f\n"},
         {b"f": b""})
checking(MD5, "check-2", "md5sum", "md5", ("--status",), {b"f.md5": E + b"  f\n"},
         {b"f": b"foo"})
checking(MD5, "check-quiet1", "md5sum", "md5", ("--quiet",), {b"f.md5": E + b"  f\n"},
         {b"f": b""})
checking(MD5, "check-quiet2", "md5sum", "md5", ("--quiet",), {b"f.md5": E + b"  f\n"},
         {b"f": b"foo"})
checking(MD5, "check-multifail", "md5sum", "md5", (),
         {b"f.md5": E + b"  f\n" + E + b"  f\ninvalid\n"}, {b"f": b"foo"})
checking(MD5, "check-multifail-warn", "md5sum", "md5", ("--warn",),
         {b"f.md5": E + b"  f\n" + E + b"  f\ninvalid\n"}, {b"f": b"foo"})
# Added in 9.3, for a regression of 9.2: 9.1 passes it.
checking(MD5, "check-multifail-state", "md5sum", "md5", ("--warn",),
         {b"f.md5": E + b"  f\n" + E + b"  g\n" + E + b"  f\n"}, {b"f": b"", b"g": b"a"})
checking(MD5, "check-bsd", "md5sum", "md5", (), {b"f.sha1": b"SHA1 (f) = " + E + b"\n"},
         {b"f": b""})
checking(MD5, "check-bsd2", "md5sum", "md5", (), {b"f.md5": b"MD5 (f) = " + E + b"\n"},
         {b"f": b""})
checking(MD5, "check-bsd3", "md5sum", "md5", ("--status",),
         {b"f.md5": b"MD5 (f) = " + E + b"\n"}, {b"f": b"bar"})
checking(MD5, "check-openssl", "md5sum", "md5", (), {b"f.sha1": b"SHA1(f)= " + E + b"\n"},
         {b"f": b""})
checking(MD5, "check-openssl2", "md5sum", "md5", (), {b"f.md5": b"MD5(f)= " + E + b"\n"},
         {b"f": b""})
checking(MD5, "check-openssl3", "md5sum", "md5", ("--status",),
         {b"f.md5": b"MD5(f)= " + E + b"\n"}, {b"f": b"bar"})
for case in ("check-ignore-missing-1", "check-ignore-missing-2"):
    checking(MD5, case, "md5sum", "md5", ("--ignore-missing",),
             {b"f.md5": E + b"  f\n" + E + b"  f.missing\n"}, {b"f": b""})
checking(MD5, "check-ignore-missing-3", "md5sum", "md5", ("--quiet", "--ignore-missing"),
         {b"f.md5": E + b"  missing/f\n" + E + b"  f\n"}, {b"f": b""})
CASES.append(Case(
    MD5, "check-ignore-missing-4", ("md5sum", "--text", "--ignore-missing"),
    ("scan", "-a", "md5", "--ignore-missing"), {b"f": b""}, (b"f",),
    differs="Usage errors exit 2",
    expect=(2, b"", b"parhash: unrecognized option '--ignore-missing'\n"
                    b"Try 'parhash scan --help' for more information.\n"),
))
checking(MD5, "check-ignore-missing-5", "md5sum", "md5", ("--ignore-missing",),
         {b"f.md5": E + b"  missing\n"}, {b"f": b""})
# A digest that starts with 00 (coreutils 8.25 took such files for missing).
NINE_T = hexdigest("md5", b"9t").encode()
assert NINE_T.startswith(b"00")
checking(MD5, "check-ignore-missing-6", "md5sum", "md5", ("--ignore-missing",),
         {b"f.md5": NINE_T + b"  f\n"}, {b"f": b"9t"})
checking(MD5, "bsd-segv", "md5sum", "md5", (), {b"z": b"MD5 ("})
checking(MD5, "nul-in-cksum", "md5sum", "md5", (), {b"h": b"\0" * 32 + b"  h\n"})


# --- md5sum-newline.pl --------------------------------------------------------

hashing("md5sum-newline.pl", "newline", "md5sum", "md5", {b"a\nb": b""})
hashing("md5sum-newline.pl", "zero", "md5sum", "md5", {b"a\nb": b""},
        ("--text", "--zero"), ("-z",))


# --- md5sum-bsd.sh ------------------------------------------------------------

BSD = "md5sum-bsd.sh"
# Names unambiguous in md5 -r's form first; echo "$i" > "$i".
BSD_FILES = {n: n + b"\n" for n in (b"a", b" b", b"*c", b"dd", b" ")}
CHECK_MD5SUM = b"".join(gnu("md5", data, n) for n, data in BSD_FILES.items())
CHECK_MD5 = b"".join(line.replace(b"  ", b" ", 1) for line in CHECK_MD5SUM.splitlines(True))
checking(BSD, "check.md5sum", "md5sum", "md5", ("--strict",), {b"check.md5sum": CHECK_MD5SUM},
         BSD_FILES)
checking(BSD, "check.md5", "md5sum", "md5", ("--strict",), {b"check.md5": CHECK_MD5}, BSD_FILES)
checking(BSD, "check2.md5sum", "md5sum", "md5", (),
         {b"check2.md5sum": b"____not_all_hex_so_no_match_____ blah\n" + CHECK_MD5SUM},
         BSD_FILES)
# Without its first line, the md5 -r lines are read as standard ones.
checking(BSD, "tail-n+2-check.md5", "md5sum", "md5", ("--strict",), {}, BSD_FILES,
         stdin=CHECK_MD5.split(b"\n", 1)[1])
CASES.append(Case(BSD, "tag-check", ("md5sum", "--tag", "--check", "/dev/null"),
                  ("check", "--tag", "/dev/null"), differs="Usage errors exit 2",
                  expect=(2, b"", b"parhash: unrecognized option '--tag'\n"
                                  b"Try 'parhash check --help' for more information.\n")))
CASES.append(Case(BSD, "tag-text", ("md5sum", "--tag", "--text", "/dev/null"),
                  ("scan", "--tag", "--text", "/dev/null"), differs="Usage errors exit 2",
                  expect=(2, b"", b"parhash: unrecognized option '--text'\n"
                                  b"Try 'parhash scan --help' for more information.\n")))
checking(BSD, "check-tag", "md5sum", "md5", ("--strict",),
         {b"check.md5": b"".join(tagged("md5", data, n) for n, data in BSD_FILES.items())},
         BSD_FILES)
# 'a\b' 'a\' "a${nl}b" "a${tab}b", and '\a' since 9.4.
ESCAPES = {n: b"" for n in (b"a\\b", b"a\\", b"\\a", b"a\nb", b"a\tb")}
checking(BSD, "check-tag-escaped", "md5sum", "md5", ("--strict",),
         {b"check.md5": b"".join(tagged("md5", b"", n) for n in ESCAPES)}, ESCAPES)
CASES.append(Case(BSD, "tag-escaped", ("md5sum", "--tag"), ("scan", "--tag", "-a", "md5", "--sort"),
                  ESCAPES, tuple(sorted(ESCAPES))))
hashing(BSD, "tag-escape-format", "md5sum", "md5", {b"test\n\\\\file": b""}, ("--tag",),
        ("--tag",))


# --- md5sum-parallel.sh: each line written whole ---------------------------------

PARALLEL = {b"tmp/%d" % i: b"" for i in range(1, 501)}
# find tmp tmp tmp -type f | xargs -n500 -P2 md5sum
CASES.append(Case("md5sum-parallel.sh", "xargs -P2", ("md5sum",),
                  ("scan", "-a", "md5", "-j", "2", "--chunksize", "50"), PARALLEL,
                  (b"tmp", b"tmp", b"tmp"), sort=True, their_args=tuple(PARALLEL) * 3))


# --- sha1sum.pl, sha224sum.pl, sha256sum.pl, sha384sum.pl, sha512sum.pl ------

S4 = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
S4_LONG = (b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
           b"ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu")
VECTORS = {
    "sha1": [("s1", b""), ("s2", b"a"), ("s3", b"abc"), ("s4", S4),
             ("s5", b"abcdefghijklmnopqrstuvwxyz"),
             ("s6", b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
             ("s7", b"1234567890" * 8), ("million-a", b"a" * 1_000_000)],
    "sha224": [("s3", b"abc"), ("s4", S4), ("s8", b"a" * 1_000_000)],
    "sha256": [("s1", b""), ("s2", b"a"), ("s3", b"abc"), ("s4", S4), ("s8", b"a" * 1_000_000)],
    "sha384": [("s1", b""), ("s2", b"a"), ("s3", b"abc"), ("s4", S4_LONG),
               ("s8", b"a" * 1_000_000)],
    "sha512": [("s1", b""), ("s2", b"a"), ("s3", b"abc"), ("s4", S4_LONG),
               ("s8", b"a" * 1_000_000)],
}
for algo, vectors in VECTORS.items():
    for case, data in vectors:
        hashing(f"{algo}sum.pl", case, f"{algo}sum", algo, {b"f": data})
SHA1 = "sha1sum.pl"
SE = hexdigest("sha1", b"").encode()  # $sha_degenerate
for case, file in [("bs-sha-1", b".\nfoo"), ("bs-sha-2", b".\\foo"), ("bs-sha-3", b".\rfoo")]:
    hashing(SHA1, case, "sha1sum", "sha1", {file: b""})
checking(SHA1, "check-bsd", "sha1sum", "sha1", (), {b"f.md5": b"MD5 (f) = " + SE + b"\n"},
         {b"f": b""})
checking(SHA1, "check-bsd2", "sha1sum", "sha1", (), {b"f.sha1": b"SHA1 (f) = " + SE + b"\n"},
         {b"f": b""})
checking(SHA1, "check-bsd3", "sha1sum", "sha1", ("--status",),
         {b"f.sha1": b"SHA1 (f) = " + SE + b"\n"}, {b"f": b"bar"})
checking(SHA1, "check-openssl", "sha1sum", "sha1", (), {b"f.md5": b"MD5(f)= " + SE + b"\n"},
         {b"f": b""})
checking(SHA1, "check-openssl2", "sha1sum", "sha1", (),
         {b"f.sha1": b"SHA1(f)= " + SE + b"\n"}, {b"f": b""})
checking(SHA1, "check-openssl3", "sha1sum", "sha1", ("--status",),
         {b"f.sha1": b"SHA1(f)= " + SE + b"\n"}, {b"f": b"bar"})
checking(SHA1, "bsd-segv", "sha1sum", "sha1", (), {b"z": b"SHA1 ("})


# --- sha1sum-vec.pl: messages given as runs of bits ---------------------------------


def binary_expand(line: str) -> bytes:
    """sha1sum-vec.pl's binary_expand: 'N B r1 .. rN ^' is N runs of bits, from B, MSB first."""
    n, bit, *runs = line.split()
    assert runs.pop() == "^" and len(runs) == int(n)
    bits = ""
    b = int(bit)
    for run in runs:
        bits += str(b) * int(run)
        b = 1 - b
    bits += "0" * (-len(bits) % 8)  # pack("B*") pads the last byte with zeros
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


# Its first twelve vectors as it gives them; the other 217 are as long as
# 14 KB, too many to copy: seeded ones of the same form, as long, stand in.
SHA1_VECTORS = [
    "0 1 ^", "5 0 2 1 2 1 2 ^", "5 0 1 3 4 4 4 ^", "7 0 4 3 4 4 1 4 4 ^",
    "10 0 4 1 5 3 4 4 3 1 3 4 ^", "10 0 3 1 6 5 5 1 3 6 6 4 ^",
    "13 1 3 2 5 3 3 3 4 6 6 1 4 6 2 ^", "16 1 3 5 5 1 2 1 3 3 6 3 5 2 3 5 7 2 ^",
    "15 1 8 1 5 3 2 7 4 5 6 7 3 3 1 6 3 ^", "15 1 4 6 8 2 1 4 2 5 1 6 8 8 6 4 7 ^",
    "18 1 1 2 7 3 8 6 7 5 4 3 4 3 5 3 3 2 6 8 ^", "16 0 9 8 1 8 1 7 6 7 7 1 2 6 9 5 4 7 ^",
]
_rng = random.Random(229)
for k in range(13, 230):
    runs = [_rng.randint(1, 1 + k * 320 // 229) for _ in range(_rng.randint(k // 3, k * 3))]
    SHA1_VECTORS.append(f"{len(runs)} {k % 2} {' '.join(map(str, runs))} ^")
CASES.append(Case(
    "sha1sum-vec.pl", "1-229", ("sha1sum", "--text"), ("scan", "-a", "sha1", "--sort"),
    {b"f%03d" % i: binary_expand(v) for i, v in enumerate(SHA1_VECTORS, 1)},
    tuple(b"f%03d" % i for i in range(1, len(SHA1_VECTORS) + 1)),
))


# --- b2sum.sh -------------------------------------------------------------------

B2 = "b2sum.sh"
B2_FILES = {n: n + b"\n" for n in (b"a", b" b", b"*c", b"44", b" ")}
B2_TAGGED = b"".join(tagged("blake2b", d, n) for n, d in B2_FILES.items())
# Each case runs for b2sum, then for cksum -a blake2b.
for program in [("b2sum",), ("cksum", "-a", "blake2b")]:
    p = "" if program == ("b2sum",) else "cksum -a blake2b: "
    checking(B2, p + "check.b2sum", program, "blake2b", ("--strict",),
             {b"check.b2sum": B2_TAGGED}, B2_FILES)
    # sed 's/ //; s/ =/=/': BLAKE2b(a)= DIGEST
    checking(B2, p + "openssl.b2sum", program, "blake2b", ("--strict",),
             {b"openssl.b2sum": re.sub(rb"(?m)^(\S*) \((.*)\) =", rb"\1(\2)=", B2_TAGGED)},
             B2_FILES)
    # $prog --untagged --text -l 0 /dev/null, on an empty regular file (see cksum-a.sh).
    checking(B2, p + "check.vals", program, "blake2b", ("--strict",),
             {b"check.vals": gnu("blake2b", b"", b"empty")}, {b"empty": b""})
    checking(B2, p + "crash.check", program, "blake2b", (),
             {b"crash.check": b"BLAKE2\nBLAKE2b\nBLAKE2-\nBLAKE2(\nBLAKE2 (\n"})
    checking(B2, p + "overflow.check", program, "blake2b", (), {b"overflow.check": b"0A0BA0"})
# b2sum -l 0 and -l 128 lines: BLAKE2b-128 is a digest parhash does not have.
B2_BOTH = b"".join(tagged("blake2b", d, n) + tagged("blake2b", d, n, 16)
                   for n, d in B2_FILES.items())
checking(B2, "check.b2sum -l 128", "b2sum", "blake2b", ("--strict",),
         {b"check.b2sum": B2_BOTH}, B2_FILES, differs="No shortened BLAKE2b digests",
         expect=(1, b"".join(b"%s: OK\n" % n for n in B2_FILES),
                 b"parhash: WARNING: 5 lines are improperly formatted\n"))
checking(B2, "check.vals -l 128", "b2sum", "blake2b", ("--strict",),
         {b"check.vals": hexdigest("blake2b", b"", 16).encode() + b"  empty\n"},
         {b"empty": b""}, differs="No shortened BLAKE2b digests",
         expect=(1, b"", b"parhash: check.vals: no properly formatted checksum lines found\n"))
CASES.append(Case(B2, "--length=128", ("b2sum", "--length=128", "check.vals"),
                  ("scan", "-a", "blake2b", "--length=128", "check.vals"),
                  {b"check.vals": b""}, differs="No shortened BLAKE2b digests",
                  expect=(2, b"", b"parhash: unrecognized option '--length'\n"
                                  b"Try 'parhash scan --help' for more information.\n")))


# --- cksum-c.sh ------------------------------------------------------------------

CK = "cksum-c.sh"
INPUT = b"".join(b"%d\n" % i for i in random.Random(10).sample(range(1, 11), 10))  # shuf -i 1-10
CHECKSUMS = tagged("sha384", INPUT, b"input") + tagged("blake2b", INPUT, b"input")
CK_IN = {b"input": INPUT}


def cksum_check(name: str, options: tuple[str, ...], manifests: dict[bytes, bytes],
                **kw: Any) -> None:
    """``cksum --check``: tagged lines, any algorithm, as parhash check without -a."""
    aux = kw.pop("aux", CK_IN)
    checking(CK, name, "cksum", None, options, manifests, aux, **kw)


def add_unsupported(directory: Path) -> None:
    """cksum -a blake2b -l 384 input >> CHECKSUMS; cksum -a sm3 input >> CHECKSUMS."""
    for args in (["-a", "blake2b", "-l", "384"], ["-a", "sm3"]):
        line = subprocess.run(["cksum", *args, "input"], executable=tool("cksum"),
                              cwd=directory, capture_output=True, check=True).stdout
        with open(directory / "CHECKSUMS", "ab") as f:
            f.write(line)


cksum_check("--strict --check", ("--strict",), {b"CHECKSUMS": CHECKSUMS})
cksum_check("--strict --check, BLAKE2b-384 and SM3", ("--strict",), {b"CHECKSUMS": CHECKSUMS},
            setup=add_unsupported, differs="No SM3, CRC, BSD or SysV sums",
            expect=(1, b"input: OK\ninput: OK\n",
                    b"parhash: WARNING: 2 lines are improperly formatted\n"))
cksum_check("sed 's/^/ \\\\/'", ("--strict",), {},
            stdin=b"".join(b" \\" + line for line in CHECKSUMS.splitlines(True)))
SIGNED = (b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA384\n\n# ignored comment\n" + CHECKSUMS
          + b"-----BEGIN PGP SIGNATURE-----\n\n"
          b"# Note base64 doesn't have ambiguous delimiters in its charset\n"
          b"SHA384+BCAAdFiEEjFummQvbJuGfKhqAEWGuaUVxmjkFAmCDId0ACgkQEWGuaUVx\n"
          b"BLAKE2b/00001EuON62pTEnqrJ5lav61QxRByiuDp/6VODrRL2JWM6Stxu1Myws=\n"
          b"=AWU7\n-----END PGP SIGNATURE-----\n")
NO_ALGO = "Without `--algo`, `-w` names no algorithm"


def unnamed(manifest: bytes, numbers: list[int], failed: int = 0) -> bytes:
    """What parhash check -w says of malformed lines without --algo: no algorithm's name."""
    out = b"".join(b"parhash: %s: %d: improperly formatted checksum line\n" % (manifest, n)
                   for n in numbers)
    out += b"parhash: WARNING: %d lines are improperly formatted\n" % len(numbers)
    if failed:
        out += b"parhash: WARNING: %d computed checksum did NOT match\n" % failed
    return out


cksum_check("signed_CHECKSUMS", (), {b"signed_CHECKSUMS": SIGNED})
cksum_check("signed_CHECKSUMS --warn", ("--warn",), {b"signed_CHECKSUMS": SIGNED},
            differs=NO_ALGO, expect=(0, b"input: OK\ninput: OK\n", unnamed(
                b"signed_CHECKSUMS", [1, 2, 7, 10, 11, 12, 13])))
# cksum --check -a sm3 CHECKSUMS, with an algorithm parhash has.
CASES.append(Case(CK, "--check -a sha384", ("cksum", "--check", "-a", "sha384"),
                  ("check", "-a", "sha384"), {b"CHECKSUMS": CHECKSUMS, **CK_IN},
                  (b"CHECKSUMS",)))
CASES.append(Case(CK, "-a crc -c", ("cksum", "-a", "crc", "-c", "CHECKSUMS"),
                  ("check", "-a", "crc", "CHECKSUMS"), {b"CHECKSUMS": CHECKSUMS, **CK_IN},
                  differs="No SM3, CRC, BSD or SysV sums",
                  expect=(2, b"", b"parhash: invalid value for '-a' / '--algo': unknown "
                                  b"algorithm 'crc' (choose from md5, sha1, sha224, sha256, "
                                  b"sha384, sha512, sha3-256, sha3-512, blake2b, blake2s, xxh32, "
                                  b"xxh64, xxh3, xxh128)\n"
                                  b"Try 'parhash check --help' for more information.\n")))


def crc_lines(directory: Path) -> None:
    """cksum -a crc input > CHECKSUMS.crc"""
    line = subprocess.run(["cksum", "-a", "crc", "input"], executable=tool("cksum"),
                          cwd=directory, capture_output=True, check=True).stdout
    (directory / "CHECKSUMS.crc").write_bytes(line)


cksum_check("-c CHECKSUMS.crc", (), {b"CHECKSUMS.crc": b""}, setup=crc_lines)

# Added since 9.1, on what 9.1 did already.
WRONG = b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaafdb57c725157cb40b5aee8d937b8351477e"  # $invalid_sum
COMMENTED = CHECKSUMS + b"# Very important comment\n"
INVALID = COMMENTED + b"invalid line\n"
# With SHA256 for SM3: "SM3 (input) = $invalid_sum", a wrong digest.
FAILING = INVALID + b"invalid line\nSHA256 (input) = " + WRONG + b"\n"
WARNED = FAILING + b"BLAKE2b (missing-file) = " + WRONG + b"\n"
MISSING = {b"CHECKSUMS-missing": b"SHA256 (nonexistent) = " + WRONG + b"\n"}
for name, options, sums in [
    ("--status --check", ("--status",), CHECKSUMS),
    ("--status --check, a comment", ("--status",), COMMENTED),
    ("--check, an invalid line", (), INVALID),
    ("--strict --check, an invalid line", ("--strict",), INVALID),
    ("--strict --check, two invalid lines", ("--strict",), INVALID + b"invalid line\n"),
    ("--check, a wrong digest", (), FAILING),
    ("--check --strict, a wrong digest", ("--strict",), FAILING),
    ("--status --check, with errors", ("--status",), FAILING),
    ("--warn --status --check", ("--warn", "--status"), WARNED),
    ("--status --ignore-missing --check", ("--status", "--ignore-missing"), WARNED),
]:
    cksum_check(name, options, {b"CHECKSUMS": sums})
for name, options in [("--warn --check", ("--warn",)),
                      ("--status --warn --check", ("--status", "--warn"))]:
    cksum_check(name, options, {b"CHECKSUMS": WARNED}, differs=NO_ALGO,
                expect=(1, b"input: OK\ninput: OK\ninput: FAILED\n",
                        unnamed(b"CHECKSUMS", [4, 5, 7], failed=1)))
for name, options in [("CHECKSUMS2", ()), ("CHECKSUMS2 --strict", ("--strict",))]:
    cksum_check(name, options, {b"CHECKSUMS2": b"SHA256 (input2) = " + WRONG + b"\n"})
for name, options in [("CHECKSUMS-missing", ()),
                      ("--ignore-missing CHECKSUMS-missing", ("--ignore-missing",)),
                      ("--status --warn --ignore-missing CHECKSUMS-missing",
                       ("--status", "--warn", "--ignore-missing"))]:
    cksum_check(name, options, MISSING)
CASES.append(Case(CK, "non-existing-1 non-existing-2", ("cksum", "--check"), ("check",),
                  args=(b"non-existing-1", b"non-existing-2")))
cksum_check("empty-1 empty-2", (), {b"empty-1": b"", b"empty-2": b""})
CASES.append(Case(CK, "--tag --check", ("cksum", "--tag", "--check", "/dev/null"),
                  ("check", "--tag", "/dev/null"), differs="Usage errors exit 2",
                  expect=(2, b"", b"parhash: unrecognized option '--tag'\n"
                                  b"Try 'parhash check --help' for more information.\n")))
CASES.append(Case(CK, "--untagged --check", ("cksum", "--untagged", "--check"),
                  ("check", "--untagged"), stdin=gnu("md5", b"", b"empty"),
                  files={b"empty": b""}, differs="Usage errors exit 2",
                  expect=(2, b"", b"parhash: unrecognized option '--untagged'\n"
                                  b"Try 'parhash check --help' for more information.\n")))
# One of the files read fails with EIO (strace injects it).
STRACE = ("strace", "-f", "-o", "/dev/null", "-P", "eio", "-e", "/read,splice",
          "-e", "fault=all:error=EIO")
cksum_check("eio", (), {b"check.md5": tagged("md5", b"", b"eio") + tagged("md5", b"", b"ok")},
            aux={b"eio": b"", b"ok": b""}, prefix=STRACE)
# Digests cut one digit short are malformed, not FAILED.
TRUNC = b"".join(tagged("sha256", b"", n) for n in (b"ff1", b"ff2", b"ff3"))
TRUNC_BAD = b"".join(line[:-2] + b"\n" if i else line
                     for i, line in enumerate(TRUNC.splitlines(True)))
FF = {b"ff1": b"", b"ff2": b"", b"ff3": b""}
for name, options in [("trunc-bad.sum", ()), ("trunc-bad.sum --strict", ("--strict",))]:
    cksum_check(name, options, {b"trunc-bad.sum": TRUNC_BAD}, aux=FF)
cksum_check("trunc-bad.sum --warn", ("--warn",), {b"trunc-bad.sum": TRUNC_BAD}, aux=FF,
            differs=NO_ALGO, expect=(0, b"ff1: OK\n", unnamed(b"trunc-bad.sum", [2, 3])))
AWKWARD = b"abc (f) = abc"
cksum_check("tag-awkward.sum", (), {b"tag-awkward.sum": tagged("sha1", b"", AWKWARD)},
            aux={AWKWARD: b""})


# --- cksum-a.sh ------------------------------------------------------------------

CKA = "cksum-a.sh"
for algo, program in [("md5", "md5sum"), ("sha1", "sha1sum"), ("sha224", "sha224sum"),
                      ("sha256", "sha256sum"), ("sha384", "sha384sum"),
                      ("sha512", "sha512sum"), ("blake2b", "b2sum")]:
    # $prog /dev/null and cksum --check --algorithm=$algo, on an empty regular file.
    hashing(CKA, f"{program} -t", program, algo, {b"empty": b""}, ("-t",))
    CASES.append(Case(CKA, f"cksum --check --algorithm={algo}",
                      ("cksum", "--check", f"--algorithm={algo}"), ("check", "-a", algo),
                      {b"out-c": gnu(algo, b"", b"empty"), b"empty": b""}, (b"out-c",)))
CASES.append(Case(CKA, "md5sum -t /dev/null", ("md5sum", "-t", "/dev/null"),
                  ("scan", "-a", "md5", "/dev/null")))
CASES.append(Case(CKA, "cksum --check --algorithm=md5 /dev/null",
                  ("cksum", "--check", "--algorithm=md5"), ("check", "-a", "md5"),
                  {b"out-c": gnu("md5", b"", b"/dev/null")}, (b"out-c",)))
CASES.append(Case(CKA, "-a bsd --check", ("cksum", "-a", "bsd", "--check"),
                  ("check", "-a", "bsd"), stdin=b"", differs="No SM3, CRC, BSD or SysV sums",
                  expect=(2, b"", b"parhash: invalid value for '-a' / '--algo': unknown "
                                  b"algorithm 'bsd' (choose from md5, sha1, sha224, sha256, "
                                  b"sha384, sha512, sha3-256, sha3-512, blake2b, blake2s, xxh32, "
                                  b"xxh64, xxh3, xxh128)\n"
                                  b"Try 'parhash check --help' for more information.\n")))
CASES.append(Case(CKA, "-a sha22", ("cksum", "-a", "sha22"), ("scan", "-a", "sha22"),
                  stdin=b"", differs="Usage errors exit 2",
                  expect=(2, b"", b"parhash: invalid value for '-a' / '--algo': unknown "
                                  b"algorithm 'sha22' (choose from md5, sha1, sha224, sha256, "
                                  b"sha384, sha512, sha3-256, sha3-512, blake2b, blake2s, xxh32, "
                                  b"xxh64, xxh3, xxh128)\n"
                                  b"Try 'parhash scan --help' for more information.\n")))


# --- cksum-base64.pl: base64 digests, which 9.1 does not read either ---------------

B64 = "cksum-base64.pl"
for algo, tag in [("md5", b"MD5"), ("sha1", b"SHA1"), ("sha512", b"SHA512"),
                  ("sha3_512", b"SHA3-512"), ("blake2b", b"BLAKE2b")]:
    value = base64.b64encode(hashlib.new(algo, b"").digest())
    name = {"sha512": "sha2", "sha3_512": "sha3"}.get(algo, algo)
    for case, digest in [(f"chk-{name}", value), (f"chk-eq1-{name}", value[:-1]),
                         (f"chk-eq2-{name}", value[:-2])]:
        if case.startswith("chk-eq") and not value.endswith(b"=" * int(case[6])):
            continue
        options = ("--strict",) if case == f"chk-{name}" else ()
        CASES.append(Case(B64, case, ("cksum", "--check", *options), ("check", *options),
                          {b"f": b""}, (), b"%s (f) = %s\n" % (tag, digest)))
CASES.append(Case(B64, "nul", ("cksum", "-a", "sha1", "--check"), ("check", "-a", "sha1"),
                  stdin=b"\\0\\0\\0"))


# --- running them -------------------------------------------------------------------


def run(command: list[str | bytes], directory: Path, stdin: bytes | None,
        prefix: tuple[str, ...]) -> subprocess.CompletedProcess[bytes]:
    if prefix:
        command = [tool(prefix[0]), *prefix[1:], *command]
    return subprocess.run(command, cwd=directory, input=stdin, capture_output=True, env=ENV,
                          timeout=120, check=False)


def deliberate_differences() -> str:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("\n## Deliberate differences")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_coreutils_case(case: Case, tmp_path: Path) -> None:
    for name, data in case.files.items():
        path = os.path.join(bytes(tmp_path), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    if case.setup is not None:
        case.setup(tmp_path)
    tool(case.tool[0])
    # Called by its bare name, the tool starts its messages with it.
    their_args = case.args if case.their_args is None else case.their_args
    theirs = run([*case.tool, *their_args], tmp_path, case.stdin, case.prefix)
    ours = run([sys.executable, "-m", "parhash", *case.ours, *case.args], tmp_path, case.stdin,
               case.prefix)
    assert b"Traceback" not in ours.stderr, ours.stderr.decode(errors="replace")
    name = case.tool[0].encode()
    answer = (ours.returncode, ours.stdout, re.sub(rb"(?m)^parhash: ", name + b": ", ours.stderr))
    expected = (theirs.returncode, theirs.stdout, theirs.stderr)
    if case.sort:
        answer = (answer[0], b"".join(sorted(answer[1].splitlines(True))), answer[2])
        expected = (expected[0], b"".join(sorted(expected[1].splitlines(True))), expected[2])
    if case.differs is None:
        assert answer == expected
        return
    assert f"**{case.differs}.**" in deliberate_differences()
    assert (ours.returncode, ours.stdout, ours.stderr) == case.expect
    assert answer != expected, "parhash now agrees: drop the case's difference"
