"""parhash check: real files, real reference tools (md5sum, sha256sum, b2sum, xxhsum).

Expected digests are computed here with hashlib and xxhash; expected output is
what the real ``md5sum -c`` prints for the same manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xxhash
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import parhash
from parhash.algorithms import ALGORITHMS
from parhash.cli import cli
from parhash.formats import FORMATS
from parhash.formats.bsd import format_bsd
from parhash.formats.entries import Entry, Malformed
from parhash.formats.gnu import format_gnu
from parhash.formats.jsonl import json_record
from parhash.manifest import parse_line, read_manifest
from parhash.report import Output, ReportOptions
from parhash.results import PAUSE, Result

# Names that coreutils escapes (backslash, newline, CR), that a shell or a
# naive parser trips on, and that are not UTF-8.
AWKWARD = [
    b"plain.txt",
    b"with space",
    b"back\\slash",
    b"new\nline",
    b"carriage\rreturn",
    b"both\\and\nnewline\r",
    b"tab\tname",
    b"x) = y",
    b"*star",
    b" leading blank",
    b"caf\xc3\xa9",
    b"\xff\xfenot-utf8",
]
# xxhsum 0.8.1 writes names as they are, unescaped: a newline splits its line.
NO_NEWLINE = [n for n in AWKWARD if b"\n" not in n]


def digest(algo: str, data: bytes) -> str:
    if algo.startswith("xxh"):
        name = {"xxh3": "xxh3_64", "xxh128": "xxh3_128"}.get(algo, algo)
        return str(getattr(xxhash, name)(data).hexdigest())
    name = {"sha3-256": "sha3_256", "sha3-512": "sha3_512"}.get(algo, algo)
    return hashlib.new(name, data).hexdigest()


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (`make peers` installs it)")
    return path


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[bytes, bytes]:
    """Files with awkward names in tmp_path/data, which becomes the cwd: name -> contents."""
    data = tmp_path / "data"
    data.mkdir()
    rng = random.Random(4)
    files = {}
    for i, name in enumerate(AWKWARD):
        content = rng.randbytes([0, 1, 100, 5000, 70000][i % 5])
        (data / os.fsdecode(name)).write_bytes(content)
        files[name] = content
    monkeypatch.chdir(data)
    return files


def gnu_manifest(files: dict[bytes, bytes], algo: str = "md5") -> bytes:
    return b"".join(format_gnu(digest(algo, c), os.fsdecode(n)) for n, c in files.items())


def invoke(*args: str, input: bytes | None = None) -> tuple[int, bytes, str]:
    """Run ``parhash check ARGS`` in-process: (exit status, stdout bytes, stderr text)."""
    result = CliRunner().invoke(cli, ["check", *args], input=input, standalone_mode=False)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.return_value, result.stdout_bytes, result.stderr


def run(*args: str | bytes, cwd: Path | str | None = None, input: bytes | None = None,
        prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m parhash check ARGS`` as a separate process."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "parhash", "check", *args],
        cwd=cwd, input=input, capture_output=True, timeout=60,
    )


def md5sum_c(
    *args: str | bytes, cwd: Path | str | None = None
) -> subprocess.CompletedProcess[bytes]:
    # Called by its bare name, md5sum starts its messages with "md5sum:".
    return subprocess.run(["md5sum", "-c", *args], executable=tool("md5sum"), cwd=cwd,
                          capture_output=True, timeout=60)


def same_as_md5sum(args: list[str], manifest: str) -> None:
    """parhash check answers exactly as md5sum -c: stdout, stderr (but the name), status."""
    ours = run(*args, manifest)
    theirs = md5sum_c(*args, manifest)
    assert b"Traceback" not in ours.stderr
    assert ours.stdout == theirs.stdout
    assert ours.stderr.replace(b"parhash:", b"md5sum:") == theirs.stderr
    assert ours.returncode == theirs.returncode


# The parser ---------------------------------------------------------------

MD5_A = hashlib.md5(b"a").hexdigest()


@pytest.mark.parametrize(
    ("line", "name"),
    [
        (b"%s  f\n", "f"),
        (b"%s *f\n", "f"),  # binary marker
        (b"%s  f", "f"),  # no final newline
        (b"%s  f\r\n", "f"),  # CRLF
        (b"  %s  f\n", "f"),  # leading blanks
        (b"%s\tf\n", "f"),  # one tab: the BSD `md5 -r` form
        (b"%s  two  blanks \n", "two  blanks "),
        (b"\\%s  a\\\\b\\nc\\rd\n", "a\\b\nc\rd"),
        (b"MD5 (f) = %s\n", "f"),
        (b"MD5(f)=%s\n", "f"),
        (b"MD5 (x) = y) = %s\n", "x) = y"),  # split from the right
        (b"\\MD5 (a\\nb) = %s\n", "a\nb"),
        (b"%s  \xff\xfe\n", os.fsdecode(b"\xff\xfe")),
    ],
)
def test_parse_line_reads_md5sum_forms(line: bytes, name: str) -> None:
    for hexdigest in (MD5_A, MD5_A.upper()):
        parsed = parse_line(line.replace(b"%s", hexdigest.encode()))
        assert isinstance(parsed, Entry), parsed
        assert parsed.name == name
        assert parsed.digests == (("md5", MD5_A),)


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_parse_line_reads_every_tag(algo: str) -> None:
    d = digest(algo, b"x")
    parsed = parse_line(b"%s (f) = %s\n" % (ALGORITHMS[algo].tag.encode(), d.encode()))
    assert parsed == Entry("f", ((algo, d),))


@pytest.mark.parametrize(
    ("length", "algo"), [(32, "md5"), (40, "sha1"), (56, "sha224"), (64, "sha256"),
                         (96, "sha384"), (128, "sha512")]
)
def test_parse_line_guesses_untagged_algorithm_from_length(length: int, algo: str) -> None:
    parsed = parse_line(b"a" * length + b"  f\n")
    assert isinstance(parsed, Entry) and parsed.digests == ((algo, "a" * length),)


@pytest.mark.parametrize(
    "line",
    [
        b"garbage\n",
        b"   \n",
        b"%s\n" % MD5_A.encode(),  # no name
        b"%s f" % MD5_A[:-1].encode(),  # 31 digits: no algorithm
        b"%sg  f" % MD5_A.encode(),
        b"946b5bf9  f\n",  # xxh32's length: needs --algo
        b"\\%s  bad\\escape\n" % MD5_A.encode(),
        b"\\%s  trailing\\\n" % MD5_A.encode(),
        b"MD5 (f) = %s \n" % MD5_A.encode(),  # blank after the digest
        b"MD5 (f) %s\n" % MD5_A.encode(),
        b"MD5 f = %s\n" % MD5_A.encode(),
        b"SHA256 (f) = %s\n" % MD5_A.encode(),  # wrong length for the tag
        b"BLAKE2b-256 (f) = %s\n" % (b"0" * 64),
        b"{not json\n",
        b'{"path": "f", "error": "No such file or directory"}\n',
        b'{"path": "f", "md5": "xyz"}\n',
        b'["f"]\n',
    ],
)
def test_parse_line_rejects_malformed_lines(line: bytes) -> None:
    assert isinstance(parse_line(line), Malformed)


def test_parse_line_skips_comments_and_empty_lines() -> None:
    assert parse_line(b"# %s  f\n" % MD5_A.encode()) is None
    assert parse_line(b"\r\n") is None
    assert parse_line(b"") is None


def test_parse_line_algo_overrides_guess_and_rejects_other_tags() -> None:
    d = digest("xxh128", b"x")  # 32 digits, md5's length
    assert parse_line(b"%s  f\n" % d.encode(), algo="xxh128") == Entry("f", (("xxh128", d),), False)
    assert isinstance(parse_line(b"MD5 (f) = %s\n" % MD5_A.encode(), algo="sha1"), Malformed)


def test_read_manifest_refuses_to_mix_reversed_and_gnu_forms() -> None:
    # As coreutils: once a line was "DIGEST  NAME", "DIGEST NAME" is malformed,
    # so a renamed file with a leading blank can't pass for another.
    lines = b"%s  a\n%s b\n" % (MD5_A.encode(), MD5_A.encode())
    parsed = [p for _, p in read_manifest(io.BytesIO(lines))]
    assert isinstance(parsed[0], Entry) and isinstance(parsed[1], Malformed)
    # After a "DIGEST NAME" line, the blank of "DIGEST  NAME" belongs to the name.
    lines = b"%s a\n%s  b\n" % (MD5_A.encode(), MD5_A.encode())
    assert [p.name for _, p in read_manifest(io.BytesIO(lines)) if isinstance(p, Entry)] == [
        "a", " b"]


def test_read_manifest_drops_overlong_lines_and_goes_on() -> None:
    lines = b"x" * (3 << 20) + b"\n" + b"%s  f\n" % MD5_A.encode()
    parsed = list(read_manifest(io.BytesIO(lines), max_line=1 << 16))
    assert isinstance(parsed[0][1], Malformed)
    assert parsed[1] == (2, Entry("f", (("md5", MD5_A),), False))


names = st.binary(min_size=1, max_size=40).filter(lambda b: b"\0" not in b)
algos = st.sampled_from(sorted(ALGORITHMS))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.one_of(st.none(), algos), st.sampled_from([None, True, False]),
       st.booleans())
def test_parse_line_never_raises(line: bytes, algo: str | None, reversed: bool | None,
                                 zero: bool) -> None:
    parsed = parse_line(line, algo=algo, reversed=reversed, zero=zero)
    assert parsed is None or isinstance(parsed, (Entry, Malformed))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_read_manifest_never_raises(data: bytes) -> None:
    for text in (data, b"path,size,md5,error\r\n" + data):
        for zero in (False, True):
            for number, parsed in read_manifest(io.BytesIO(text), zero=zero, max_line=500):
                assert number >= 1 and isinstance(parsed, (Entry, Malformed))


@settings(max_examples=300, deadline=None)
@given(names, algos, st.booleans(), st.binary(max_size=8))
def test_parse_line_reads_back_every_line_scan_writes(
    name: bytes, algo: str, zero: bool, data: bytes
) -> None:
    path = os.fsdecode(name)
    d = digest(algo, data)
    expected = ((algo, d),)
    gnu = parse_line(format_gnu(d, path, zero=zero), algo=algo, zero=zero)
    assert isinstance(gnu, Entry) and (gnu.name, gnu.digests) == (path, expected)
    bsd = parse_line(format_bsd(ALGORITHMS[algo].tag, d, path, zero=zero), zero=zero)
    assert isinstance(bsd, Entry) and (bsd.name, bsd.digests) == (path, expected)
    record = json.dumps(json_record(Result(path, {algo: d, "md5": MD5_A}, len(data))))
    parsed = parse_line(record.encode())
    assert isinstance(parsed, Entry) and parsed.name == path
    assert dict(parsed.digests) == {algo: d, "md5": MD5_A}


@settings(max_examples=100, deadline=None)
@given(st.lists(names, min_size=1, max_size=5), st.lists(algos, min_size=1, max_size=3,
                                                           unique=True))
def test_read_manifest_reads_back_scan_csv(names_: list[bytes], algos_: list[str]) -> None:
    results = [Result(os.fsdecode(n), {a: digest(a, n) for a in algos_}, len(n)) for n in names_]
    buffer = io.BytesIO()
    FORMATS["csv"].write(results, Output(buffer), ReportOptions(tuple(algos_)))
    buffer.seek(0)
    read = [p for _, p in read_manifest(buffer)]
    assert read == [Entry(r.path, tuple((a, r.digests[a]) for a in algos_)) for r in results]


# Round trips through scan ------------------------------------------------

def scan(*args: str) -> bytes:
    done = subprocess.run([sys.executable, "-m", "parhash", "scan", *args], capture_output=True,
                          timeout=60)
    assert (done.returncode, done.stderr) == (0, b"")
    return done.stdout


@pytest.mark.parametrize(
    "fmt",
    [
        ["-a", "md5"],
        ["-a", "sha256"],
        ["-a", "blake2b"],
        ["--tag", "-a", "md5,sha256,xxh3,xxh32"],
        ["--json", "-a", "sha1,xxh128"],
        ["--csv", "-a", "md5,sha512"],
        ["-z", "-a", "xxh64"],
        ["-z", "--tag", "-a", "sha3-256"],
    ],
)
def test_check_reads_back_every_scan_format(tree: dict[bytes, bytes], fmt: list[str]) -> None:
    Path("../MANIFEST").write_bytes(scan(*fmt, "."))
    algo = ["-a", fmt[-1]] if fmt[0] in ("-a", "-z") and "--tag" not in fmt else []
    zero = ["-z"] if "-z" in fmt else []
    code, out, err = invoke(*algo, *zero, "../MANIFEST")
    assert (code, err) == (0, "")
    # A tagged line holds one digest: one line, and one OK, per algorithm.
    per_file = len(fmt[-1].split(",")) if "--tag" in fmt else 1
    assert out.count(b": OK\n") == len(tree) * per_file
    assert b"FAILED" not in out


# Manifests written by the reference tools --------------------------------

@pytest.mark.parametrize(
    ("command", "algo", "names"),
    [
        (["md5sum"], None, AWKWARD),
        (["sha256sum"], None, AWKWARD),
        (["sha1sum", "--tag"], None, AWKWARD),
        (["b2sum"], "blake2b", AWKWARD),
        (["xxhsum", "-H2"], "xxh128", NO_NEWLINE),
        (["xxhsum", "-H3"], None, NO_NEWLINE),
        (["xxhsum", "-H0", "--tag"], None, NO_NEWLINE),
        (["xxhsum", "-H1", "--tag"], None, NO_NEWLINE),
    ],
)
def test_check_verifies_manifests_of_reference_tools(
    tree: dict[bytes, bytes], command: list[str], algo: str | None, names: list[bytes]
) -> None:
    made = subprocess.run([tool(command[0]), *command[1:], *names], capture_output=True,
                          check=True)
    Path("../SUMS").write_bytes(made.stdout)
    code, out, err = invoke(*(["--algo", algo] if algo else []), "../SUMS")
    assert (code, err) == (0, "")
    assert out.count(b": OK\n") == len(names)
    if command[0] != "xxhsum":
        # coreutils' own check prints the same lines.
        theirs = subprocess.run([tool(command[0]), "-c", "../SUMS"], capture_output=True)
        assert out == theirs.stdout


def test_b2sum_lines_need_algo_and_fail_rather_than_pass_without_it(
    tree: dict[bytes, bytes]
) -> None:
    # 128 hex digits read as sha512: every file FAILS, none passes by mistake.
    Path("../SUMS").write_bytes(subprocess.run([tool("b2sum"), "plain.txt"],
                                               capture_output=True, check=True).stdout)
    code, out, err = invoke("../SUMS")
    assert (code, out) == (1, b"plain.txt: FAILED\n")
    assert err == "parhash: WARNING: 1 computed checksum did NOT match\n"


# Exactly md5sum -c ------------------------------------------------------

@pytest.fixture
def flawed(tree: dict[bytes, bytes]) -> str:
    """A manifest over the awkward tree with a changed file, a missing one and junk."""
    manifest = gnu_manifest(tree)
    manifest += b"garbage line\n"
    manifest += format_gnu(digest("md5", b"gone"), "gone")
    manifest += format_gnu(digest("md5", b"not what it holds"), "plain.txt")
    manifest += format_gnu(digest("md5", b"gone"), "gone\nwith newline")
    Path("../MD5SUMS").write_bytes(manifest)
    return "../MD5SUMS"


@pytest.mark.parametrize(
    "options",
    [[], ["--quiet"], ["--status"], ["-w"], ["--strict"], ["--ignore-missing"],
     ["--warn", "--status"], ["--status", "--quiet"], ["--strict", "--ignore-missing", "-w"]],
)
def test_check_answers_exactly_as_md5sum(flawed: str, options: list[str]) -> None:
    # -a md5 makes -w's wording md5sum's ("improperly formatted MD5 checksum line").
    ours = run("-a", "md5", *options, flawed)
    theirs = md5sum_c(*options, flawed)
    assert ours.stdout == theirs.stdout
    assert ours.stderr.replace(b"parhash:", b"md5sum:") == theirs.stderr
    assert ours.returncode == theirs.returncode == 1


def test_check_output_matches_md5sum_on_awkward_names(tree: dict[bytes, bytes]) -> None:
    Path("../MD5SUMS").write_bytes(gnu_manifest(tree))
    same_as_md5sum([], "../MD5SUMS")
    code, out, _ = invoke("../MD5SUMS")
    # md5sum 9.1 escapes a name in its output only when it holds a newline.
    assert b"\\new\\nline: OK\n" in out and b"back\\slash: OK\n" in out
    assert b"carriage\rreturn: OK\n" in out and b"\\both\\\\and\\nnewline\\r: OK\n" in out


def test_check_with_two_workers_prints_in_manifest_order(tmp_path: Path) -> None:
    # Enough files for a real pool, small batches so they complete out of order.
    rng = random.Random(2)
    lines = []
    for i in range(150):
        content = rng.randbytes(rng.choice([0, 10, 3000, 200000]))
        (tmp_path / f"f{i:03d}").write_bytes(content)
        wrong = i % 37 == 5
        lines.append(format_gnu(digest("md5", content + b"x" * wrong), f"f{i:03d}"))
    lines.insert(60, format_gnu(MD5_A, "missing"))
    (tmp_path / "MD5SUMS").write_bytes(b"".join(lines))
    ours = run("-j", "2", "--chunksize", "3", "MD5SUMS", cwd=tmp_path)
    theirs = md5sum_c("MD5SUMS", cwd=tmp_path)
    assert ours.stdout == theirs.stdout
    assert ours.stderr.replace(b"parhash:", b"md5sum:") == theirs.stderr
    assert ours.returncode == theirs.returncode == 1


def test_check_several_manifests_summarized_each_in_turn(tree: dict[bytes, bytes]) -> None:
    Path("../GOOD").write_bytes(gnu_manifest({b"plain.txt": tree[b"plain.txt"]}))
    Path("../BAD").write_bytes(format_gnu(MD5_A, "plain.txt") + b"junk\n")
    Path("../EMPTY").write_bytes(b"")
    for args in (["../GOOD", "../BAD", "../EMPTY", "../GOOD"], ["../BAD", "../NOSUCH"]):
        ours = run(*args)
        theirs = md5sum_c(*args)
        assert (ours.stdout, ours.returncode) == (theirs.stdout, theirs.returncode)
        assert ours.stderr.replace(b"parhash:", b"md5sum:") == theirs.stderr


# Each case with its status and messages ---------------------------------

def test_check_changed_byte_reports_failed(tree: dict[bytes, bytes]) -> None:
    Path("../M").write_bytes(gnu_manifest({b"tab\tname": tree[b"tab\tname"]}))
    Path("tab\tname").write_bytes(b"\x00" + tree[b"tab\tname"][1:])
    code, out, err = invoke("../M")
    assert (code, out) == (1, b"tab\tname: FAILED\n")
    assert err == "parhash: WARNING: 1 computed checksum did NOT match\n"


def test_check_missing_file_reports_failed_open(tree: dict[bytes, bytes]) -> None:
    Path("../M").write_bytes(gnu_manifest({b"gone one": b"", b"plain.txt": tree[b"plain.txt"]}))
    code, out, err = invoke("../M")
    assert (code, out) == (1, b"gone one: FAILED open or read\nplain.txt: OK\n")
    assert err == ("parhash: 'gone one': No such file or directory\n"
                   "parhash: WARNING: 1 listed file could not be read\n")


def test_check_ignore_missing(tree: dict[bytes, bytes]) -> None:
    Path("../M").write_bytes(gnu_manifest({b"gone": b"", b"plain.txt": tree[b"plain.txt"]}))
    assert invoke("--ignore-missing", "../M") == (0, b"plain.txt: OK\n", "")
    Path("../M").write_bytes(gnu_manifest({b"gone": b""}))
    assert invoke("--ignore-missing", "../M") == (1, b"", "parhash: ../M: no file was verified\n")
    assert invoke("--ignore-missing", "--status", "../M") == (1, b"", "")


def test_check_malformed_line_with_and_without_strict(tree: dict[bytes, bytes]) -> None:
    Path("../M").write_bytes(gnu_manifest({b"plain.txt": tree[b"plain.txt"]}) + b"oops\n")
    warning = "parhash: WARNING: 1 line is improperly formatted\n"
    assert invoke("../M") == (0, b"plain.txt: OK\n", warning)
    assert invoke("--strict", "../M") == (1, b"plain.txt: OK\n", warning)
    assert invoke("-w", "../M") == (
        0, b"plain.txt: OK\n", "parhash: ../M: 2: improperly formatted checksum line\n" + warning)
    assert invoke("--status", "--strict", "../M") == (1, b"", "")


def test_check_status_and_quiet(tree: dict[bytes, bytes]) -> None:
    good = gnu_manifest({b"plain.txt": tree[b"plain.txt"]})
    Path("../M").write_bytes(good)
    assert invoke("--status", "../M") == (0, b"", "")
    assert invoke("--quiet", "../M") == (0, b"", "")
    Path("../M").write_bytes(good + format_gnu(MD5_A, "with space"))
    assert invoke("--status", "../M") == (1, b"", "")
    code, out, err = invoke("--quiet", "../M")
    assert (code, out) == (1, b"with space: FAILED\n")
    assert err == "parhash: WARNING: 1 computed checksum did NOT match\n"


def test_check_mixed_algorithms_in_one_manifest(tree: dict[bytes, bytes]) -> None:
    a, b = tree[b"plain.txt"], tree[b"with space"]
    manifest = (
        format_gnu(digest("md5", a), "plain.txt")
        + format_bsd("SHA256", digest("sha256", a), "plain.txt")
        + format_bsd("XXH3", digest("xxh3", b), "with space")
        + json.dumps({"path": "with space", "blake2s": digest("blake2s", b),
                      "sha1": digest("sha1", b)}).encode() + b"\n"
    )
    Path("../M").write_bytes(manifest)
    code, out, err = invoke("../M")
    assert (code, err) == (0, "")
    assert out == b"plain.txt: OK\n" * 2 + b"with space: OK\n" * 2
    verdicts = list(parhash.check(["../M"]))
    assert [v.algos for v in verdicts] == [("md5",), ("sha256",), ("xxh3",), ("blake2s", "sha1")]


def test_check_unreadable_file_without_dac_override(tree: dict[bytes, bytes]) -> None:
    setpriv = tool("setpriv")
    Path("../M").write_bytes(gnu_manifest({b"plain.txt": tree[b"plain.txt"],
                                           b"with space": tree[b"with space"]}))
    os.chmod("plain.txt", 0)
    drop = (setpriv, "--bounding-set=-dac_override,-dac_read_search", "--")
    done = run("../M", prefix=drop)
    assert done.returncode == 1
    assert done.stdout == b"plain.txt: FAILED open or read\nwith space: OK\n"
    assert done.stderr == (b"parhash: plain.txt: Permission denied\n"
                           b"parhash: WARNING: 1 listed file could not be read\n")
    records = [json.loads(x) for x in run("--json", "../M", prefix=drop).stdout.splitlines()]
    assert [r["status"] for r in records] == ["unreadable", "ok"]


def test_check_json_records(tree: dict[bytes, bytes]) -> None:
    weird = b"\xff\xfenot-utf8"
    manifest = (gnu_manifest({weird: tree[weird]}) + format_gnu(MD5_A, "plain.txt")
                + format_gnu(MD5_A, "gone") + b"junk\n")
    Path("../M").write_bytes(manifest)
    code, out, err = invoke("--json", "../M")
    assert code == 1
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["status"] for r in records] == ["ok", "failed", "missing"]
    first = records[0]
    assert os.fsencode(first["path"]) == weird and first["path_b64"] == "//5ub3QtdXRmOA=="
    assert first["algo"] == "md5" and first["expected"] == first["actual"] == digest(
        "md5", tree[weird])
    assert records[1]["actual"] == digest("md5", tree[b"plain.txt"])
    assert records[2]["actual"] is None and records[2]["error"] == "No such file or directory"
    assert "WARNING: 1 line is improperly formatted" in err


def test_check_resolves_names_against_root_or_manifest_dir(
    tree: dict[bytes, bytes], tmp_path: Path
) -> None:
    Path("MD5SUMS").write_bytes(gnu_manifest(tree))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    data = str(tmp_path / "data")
    done = run("--relative-to-manifest", os.path.join(data, "MD5SUMS"), cwd=elsewhere)
    assert (done.returncode, done.stdout.count(b": OK\n")) == (0, len(tree))
    done = run("--root", data, os.path.join(data, "MD5SUMS"), cwd=elsewhere)
    assert (done.returncode, done.stdout.count(b": OK\n")) == (0, len(tree))
    # As md5sum, names are relative to the current directory by default.
    done = run(os.path.join(data, "MD5SUMS"), cwd=elsewhere)
    assert done.returncode == 1 and b"plain.txt: FAILED open or read\n" in done.stdout
    result = CliRunner().invoke(cli, ["check", "--root", data, "--relative-to-manifest", "x"])
    assert result.exit_code == 2 and "exclude each other" in result.stderr


@pytest.fixture
def escapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A manifest in tmp_path/root (the cwd) whose last lines name files outside it."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "f").write_bytes(b"inside")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "shadow").write_bytes(b"outside")
    (root / "link").symlink_to(os.path.join("..", "secret"))
    inside, outside = digest("md5", b"inside"), digest("md5", b"outside")
    (root / "MD5SUMS").write_bytes(
        format_gnu(inside, "sub/f")
        + format_gnu(outside, "../secret/shadow")
        + format_gnu(outside, str(secret / "shadow"))
        + format_gnu(outside, "link/shadow")
    )
    monkeypatch.chdir(root)
    return root


def test_plain_check_reads_names_outside_the_directory_as_md5sum(escapes: Path) -> None:
    # Only --root and --relative-to-manifest set a root to stay in.
    same_as_md5sum([], "MD5SUMS")
    assert run("MD5SUMS").stdout.count(b": OK\n") == 4


def test_api_refuses_names_outside_the_root_unless_allowed(escapes: Path) -> None:
    verdicts = list(parhash.check(["MD5SUMS"], relative_to_manifest=True, jobs=1))
    assert [(v.status, v.error) for v in verdicts] == (
        [("ok", None)] + [("unreadable", "outside the root")] * 3
    )
    assert [v.actual for v in verdicts[1:]] == [(), (), ()]
    verdicts = list(parhash.check(["MD5SUMS"], root=".", allow_outside_root=True, jobs=1))
    assert [v.status for v in verdicts] == ["ok"] * 4


def test_check_files_listed_apart_again_and_again_get_one_result_each(tmp_path: Path) -> None:
    # Each file waits for its results many times over, for several algorithms,
    # and batches of 500 lines come back from two workers in any order.
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b")
    lines = []
    for i in range(3000):
        algo = ["md5", "sha1", "xxh64"][i % 3]
        lines.append(format_bsd(ALGORITHMS[algo].tag, digest(algo, b"a"), "a"))
        lines.append(format_gnu(digest("md5", b"b" if i % 1000 else b"x"), "b"))
    (tmp_path / "M").write_bytes(b"".join(lines))
    done = run("-j", "2", "--chunksize", "500", "M", cwd=tmp_path)
    expected = b"".join(
        b"a: OK\n" + (b"b: OK\n" if i % 1000 else b"b: FAILED\n") for i in range(3000)
    )
    assert done.stdout == expected
    assert done.stderr == b"parhash: WARNING: 3 computed checksums did NOT match\n"
    assert done.returncode == 1


def test_check_reads_standard_input(tree: dict[bytes, bytes]) -> None:
    manifest = gnu_manifest({b"plain.txt": tree[b"plain.txt"]})
    assert invoke(input=manifest) == (0, b"plain.txt: OK\n", "")
    # A line naming "-" can't mean the manifest itself, as with md5sum.
    code, out, err = invoke("-w", "-", input=manifest + format_gnu(MD5_A, "-"))
    assert (code, out) == (0, b"plain.txt: OK\n")
    assert "'standard input': 2: improperly formatted checksum line" in err


def test_check_pipes_from_scan(tree: dict[bytes, bytes]) -> None:
    scanned = subprocess.run([sys.executable, "-m", "parhash", "scan", "-a", "xxh3", "--tag",
                              "."], capture_output=True, check=True)
    done = run("-", input=scanned.stdout)
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.count(b": OK\n") == len(tree)


# Bad input never gives a traceback --------------------------------------

def test_check_binary_garbage_manifest(tmp_path: Path) -> None:
    (tmp_path / "GARBAGE").write_bytes(random.Random(1).randbytes(200000))
    done = run("GARBAGE", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (1, b"")
    assert done.stderr == b"parhash: GARBAGE: no properly formatted checksum lines found\n"


def test_check_directory_and_missing_manifest(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    done = run("dir", "nosuch", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (1, b"")
    assert done.stderr == (b"parhash: dir: Is a directory\n"
                           b"parhash: nosuch: No such file or directory\n")


def test_check_ten_megabyte_line(tree: dict[bytes, bytes]) -> None:
    huge = b"0" * (10 << 20) + b"  name\n"
    Path("../M").write_bytes(huge + gnu_manifest({b"plain.txt": tree[b"plain.txt"]}))
    done = run("--strict", "../M")
    assert (done.returncode, done.stdout) == (1, b"plain.txt: OK\n")
    assert done.stderr == b"parhash: WARNING: 1 line is improperly formatted\n"
    Path("../M").write_bytes(b"x" * (10 << 20))
    done = run("../M")
    assert done.returncode == 1
    assert done.stderr == b"parhash: ../M: no properly formatted checksum lines found\n"


# Lines of any length, as md5sum reads them: a name longer than PATH_MAX
# can't be opened, whether or not a shorter path to it exists.
MD5_EMPTY = hashlib.md5(b"").hexdigest().encode()
LONG = 2 << 20
LONG_LINES = {
    "gnu": MD5_EMPTY + b"  " + b"a" * LONG + b"\n",
    "existing file": MD5_EMPTY + b"  " + b"./" * (LONG // 2) + b"f\n",
    "tagged": b"MD5 (" + b"a" * LONG + b") = " + MD5_EMPTY + b"\n",
    "tagged, no line end": b"MD5 (" + b"a b" * (LONG // 3) + b") = " + MD5_EMPTY,
    "escaped": b"\\" + MD5_EMPTY + b"  " + b"a\\nb" * (LONG // 4) + b"\n",
    "bad escape at the end": b"\\" + MD5_EMPTY + b"  " + b"a" * LONG + b"\\x\n",
    "blanks first": b" \t" * (LONG // 2) + MD5_EMPTY + b"  f\n",
    "comment": b"#" * LONG + b"\n",
    "no checksum line": b"x" * LONG + b"\n",
    "json": b'{"path": "' + b"a" * LONG + b'", "md5": "' + MD5_EMPTY + b'"}\n',
}


@pytest.mark.parametrize("line", list(LONG_LINES))
@pytest.mark.parametrize("how", [[], ["-j", "2", "--chunksize", "1"], ["-"]])
def test_check_reads_long_lines_as_md5sum(tmp_path: Path, line: str, how: list[str]) -> None:
    (tmp_path / "f").write_bytes(b"")
    manifest = LONG_LINES[line] + (b"\n" if not LONG_LINES[line].endswith(b"\n") else b"")
    manifest = MD5_EMPTY + b"  f\n" + manifest + MD5_EMPTY + b"  f\n"
    (tmp_path / "M").write_bytes(manifest)
    stdin = how == ["-"]
    ours = run("-w", *how, *([] if stdin else ["M"]), cwd=tmp_path,
               input=manifest if stdin else None)
    theirs = subprocess.run(["md5sum", "-c", "-w", "-" if stdin else "M"],
                            executable=tool("md5sum"), cwd=tmp_path, input=manifest,
                            capture_output=True, timeout=60)
    assert ours.stdout == theirs.stdout
    # md5sum -w names the algorithm of the malformed line: "MD5 checksum line".
    assert ours.stderr.replace(b"parhash:", b"md5sum:").replace(
        b"formatted checksum", b"formatted MD5 checksum") == theirs.stderr
    assert ours.returncode == theirs.returncode


def test_check_long_line_at_the_end_without_line_end(tmp_path: Path) -> None:
    (tmp_path / "M").write_bytes(LONG_LINES["tagged, no line end"])
    done = run("M", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == b"a b" * (LONG // 3) + b": FAILED open or read\n"
    assert done.stderr == (b"parhash: '" + b"a b" * (LONG // 3) + b"': File name too long\n"
                           b"parhash: WARNING: 1 listed file could not be read\n")


def test_check_long_name_under_a_root_fails_as_too_long(tmp_path: Path) -> None:
    (tmp_path / "M").write_bytes(LONG_LINES["gnu"])
    done = run("--root", str(tmp_path), "M", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == b"a" * LONG + b": FAILED open or read\n"
    assert done.stderr.endswith(b"a: File name too long\n"
                                b"parhash: WARNING: 1 listed file could not be read\n")


def test_read_manifest_holds_a_long_checksum_line_whole() -> None:
    lines = LONG_LINES["tagged"] + LONG_LINES["comment"] + LONG_LINES["blanks first"]
    parsed = list(read_manifest(io.BytesIO(lines), max_line=1 << 16))
    assert parsed == [(1, Entry("a" * LONG, (("md5", MD5_EMPTY.decode()),))),
                      (3, Entry("f", (("md5", MD5_EMPTY.decode()),), False))]


# API and help -----------------------------------------------------------

def test_api_yields_verdicts_in_manifest_order(tree: dict[bytes, bytes]) -> None:
    Path("../M").write_bytes(gnu_manifest(tree, "sha256") + b"junk\n")
    verdicts = list(parhash.check(["../M"], jobs=2))
    assert [v.name for v in verdicts[:-1]] == [os.fsdecode(n) for n in tree]
    assert all(v.ok for v in verdicts[:-1])
    assert (verdicts[-1].status, verdicts[-1].line) == ("malformed", len(tree) + 1)
    with pytest.raises(ValueError):
        parhash.check(["../M"], jobs=0)
    with pytest.raises(parhash.UnknownAlgorithm):
        parhash.check(["../M"], algo="nope")


def test_check_help_has_an_example() -> None:
    result = CliRunner().invoke(cli, ["check", "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output and "parhash check" in result.output


def test_check_same_file_listed_apart_with_other_algorithms(tree: dict[bytes, bytes]) -> None:
    a = tree[b"back\\slash"]
    manifest = (format_bsd("SHA1", digest("sha1", a), "back\\slash")
                + format_gnu(digest("md5", tree[b"plain.txt"]), "plain.txt")
                + format_bsd("XXH64", digest("xxh64", a), "back\\slash")
                + format_bsd("SHA1", digest("sha1", b"other"), "back\\slash"))
    Path("../M").write_bytes(manifest)
    code, out, _ = invoke("../M")
    assert code == 1
    assert out == (b"back\\slash: OK\nplain.txt: OK\nback\\slash: OK\nback\\slash: FAILED\n")


def test_check_progress_bar_goes_to_stderr_only(tree: dict[bytes, bytes]) -> None:
    Path("../M").write_bytes(gnu_manifest(tree))
    plain = invoke("../M")
    code, out, err = invoke("--progress", "../M")
    assert (code, out) == (plain[0], plain[1])
    assert "verifying" in err and "files" in err


def test_check_closed_stdout_ends_quietly(tmp_path: Path) -> None:
    for i in range(200):
        (tmp_path / f"f{i}").write_bytes(b"%d" % i)
    manifest = b"".join(format_gnu(digest("md5", b"%d" % i), f"f{i}") for i in range(200))
    (tmp_path / "M").write_bytes(manifest * 50)
    done = subprocess.run(
        ["bash", "-c", '"$0" -m parhash check -j 2 M | head -1; exit "${PIPESTATUS[0]}"',
         sys.executable], cwd=tmp_path, capture_output=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (141, b"f0: OK\n", b"")


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_check_stops_on_signal_while_the_manifest_pipe_stays_open(
    tmp_path: Path, signum: int, status: int
) -> None:
    # More lines than an inline job, so a pool reads the rest of standard
    # input in its feeding thread; the producer (this test) never closes it.
    for i in range(100):
        (tmp_path / f"f{i}").write_bytes(b"%d" % i)
    manifest = b"".join(format_gnu(digest("md5", b"%d" % i), f"f{i}") for i in range(100))
    process = subprocess.Popen([sys.executable, "-m", "parhash", "check", "-j", "2", "-"],
                               cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdin is not None
    process.stdin.write(manifest)
    process.stdin.flush()
    # Let the pool start (a signal that comes sooner is answered the same way).
    time.sleep(1)
    process.send_signal(signum)
    try:
        assert process.wait(timeout=20) == status
    finally:
        process.kill()
        out, err = process.communicate()
    assert err == b""


def test_pauses_in_a_manifest_leave_its_line_numbers_alone() -> None:
    data = (b"# comment\n" + b"0" * 32 + b"  a\nnot a line\n" + b"1" * 32 + b"  b\n") * 3
    plain = list(read_manifest(io.BytesIO(data)))
    paused = list(read_manifest(io.BytesIO(data), ready=lambda: False))
    assert [x for x in paused if x[1] is not PAUSE] == plain
    assert [n for n, _ in plain] == [2, 3, 4, 6, 7, 8, 10, 11, 12]
    assert paused[0][1] is PAUSE  # before the first read, and before each after it


def test_worker_refuses_a_file_it_opened_outside_the_fence(tmp_path: Path) -> None:
    # The parent checks each name before a worker opens it; a link swapped
    # in between must still not be read: the worker asks what it opened.
    from parhash.formats.entries import Entry
    from parhash.tasks import NEVER_ALONE
    from parhash.verify import CheckJob, _Answer

    root = tmp_path / "root"
    root.mkdir()
    (root / "in").write_bytes(b"inside")
    (tmp_path / "secret").write_bytes(b"outside")
    (root / "swapped").symlink_to(tmp_path / "secret")
    fence = os.path.join(os.path.realpath(root), "")
    answer = _Answer(CheckJob(root=str(root)), (0, 0), 0, "MANIFEST")
    line = ((1, Entry("x", (("md5", hashlib.md5(b"inside").hexdigest()),))),)
    # Past the check of the name (swapped after it): what is opened is checked.
    inside, swapped = (answer.hash(str(root / name), line, fence, NEVER_ALONE)
                       for name in ("in", "swapped"))
    assert inside is not None and swapped is not None
    assert inside.ok and inside.digests == {"md5": hashlib.md5(b"inside").hexdigest()}
    assert swapped.error == "outside the root" and not swapped.digests
