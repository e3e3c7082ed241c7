"""What each command says on stderr besides its results: the summary line, -q, the
progress bar, and check's hint when every guessed algorithm failed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ENV, PARHASH, digest, no_traceback, tool


def parhash(*args: str | Path, cwd: Path | None = None, input: bytes | None = None
            ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*PARHASH, *map(str, args)], capture_output=True, env=ENV, cwd=cwd,
                          input=input, timeout=60, check=False)
    no_traceback(proc.stderr)
    return subprocess.CompletedProcess(proc.args, proc.returncode,
                                       proc.stdout.decode(errors="replace"),
                                       proc.stderr.decode(errors="replace"))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    for i in range(5):
        (root / f"f{i}").write_bytes(b"x" * (1000 * i))
    (root / "copy").write_bytes(b"x" * 4000)
    return root


SUMMARY = re.compile(r"parhash: (hashed|verified) (\d+) files?, ([\d.]+ (?:B|KiB|MiB)) in "
                     r"[\d.]+ m?s( \([\d.]+ (?:B|KiB|MiB|GiB)/s\))?(.*)\n$")


def test_scan_summary_counts_files_bytes_and_errors(tree: Path) -> None:
    out = parhash("scan", "--summary", tree, tree / "missing")
    assert out.returncode == 1
    last = out.stderr.splitlines(keepends=True)[-1]
    m = SUMMARY.fullmatch(last)
    assert m is not None, last
    assert (m.group(1), m.group(2), m.group(3)) == ("hashed", "6", "13.7 KiB")
    assert m.group(5) == "; 1 error"


def test_no_summary_when_stderr_is_not_a_terminal(tree: Path) -> None:
    assert parhash("scan", tree).stderr == ""
    manifest = tree.parent / "M"
    manifest.write_text(parhash("scan", tree).stdout)
    assert parhash("check", manifest).stderr == ""


def test_check_summary_counts_the_verdicts(tree: Path) -> None:
    manifest = tree.parent / "M"
    manifest.write_text(parhash("scan", "-a", "md5", tree).stdout
                        + f"{digest('md5', b'other')}  {tree}/f1\n")
    out = parhash("check", "--summary", manifest)
    assert out.returncode == 1
    m = SUMMARY.fullmatch(out.stderr.splitlines(keepends=True)[-1])
    assert m is not None, out.stderr
    assert (m.group(1), m.group(2)) == ("verified", "7")
    assert m.group(5) == ": 6 OK, 1 FAILED"


def test_dupes_summary_adds_files_and_time_when_asked(tree: Path) -> None:
    plain = parhash("dupes", tree)
    assert plain.stderr == ("parhash: 1 group of duplicates, 1 redundant file, "
                            "3.9 KiB (4000 bytes) reclaimable\n")
    timed = parhash("dupes", "--summary", tree)
    assert re.fullmatch(r"parhash: 1 group of duplicates, 1 redundant file, 3.9 KiB \(4000 "
                        r"bytes\) reclaimable; 5 files compared in [\d.]+ m?s\n",
                        timed.stderr), timed.stderr


@pytest.mark.parametrize("command", ["scan", "check", "dupes"])
def test_quiet_leaves_only_what_went_wrong(command: str, tree: Path) -> None:
    manifest = tree.parent / "M"
    manifest.write_text(parhash("scan", tree).stdout + f"{'0' * 64}  {tree}/gone\n")
    target = manifest if command == "check" else tree
    out = parhash(command, "-q", "--progress", target, tree / "gone") if command != "check" \
        else parhash(command, "-q", target)
    # No summary, no bar (-q wins over the default; --progress was asked for,
    # and is drawn, only where not quiet: here it shows that -q is no flag
    # that silences errors).
    lines = [line for line in out.stderr.splitlines() if "\r" not in line]
    assert any("gone: No such file or directory" in line for line in lines), out.stderr
    assert not any("hashed" in line or "verified" in line or "groups of duplicates" in line
                   for line in lines), out.stderr
    if command == "check":
        assert ": OK" not in out.stdout


def test_summary_wins_over_quiet(tree: Path) -> None:
    assert SUMMARY.fullmatch(parhash("scan", "-q", "--summary", tree).stderr)


def test_progress_bar_names_its_work_and_counts_in_iec_units(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"\0" * (3 << 20))
    out = parhash("scan", "--progress", "--summary", big)
    bar = out.stderr.split("\n")[0]
    assert "hashing: 0 B, 0 files" in bar
    # Named files: the total is known, so the bar has a percentage and a time left.
    assert "%|" in bar and "<" in bar
    assert "kB" not in out.stderr and "MB" not in out.stderr.replace("MiB", "")


def test_check_bar_moves_through_the_manifest_with_a_total(tree: Path) -> None:
    manifest = tree.parent / "M"
    manifest.write_text(parhash("scan", tree).stdout)
    out = parhash("check", "--progress", manifest)
    assert "verifying: 0 B, 0 files" in out.stderr and "%|" in out.stderr and "<" in out.stderr


def test_walk_bar_has_no_total(tree: Path) -> None:
    out = parhash("scan", "--progress", tree)
    assert "hashing" in out.stderr and "%" not in out.stderr


# --- check's hint -------------------------------------------------------------


def test_hint_when_every_guessed_md5_is_an_xxh128(tree: Path) -> None:
    sums = subprocess.run([tool("xxhsum"), "-H2", "f1", "f2"], cwd=tree, capture_output=True,
                          check=True).stdout
    (tree / "SUMS").write_bytes(sums)
    out = parhash("check", "SUMS", cwd=tree)
    assert out.returncode == 1
    assert out.stderr.splitlines()[-1] == (
        "parhash: SUMS: hint: every digest failed as md5, the algorithm its length suggests; "
        "if they are xxh128 digests, say so with --algo")
    assert parhash("check", "--algo", "xxh128", "SUMS", cwd=tree).returncode == 0


def test_hint_names_the_other_algorithms_of_b3sums_length(tree: Path) -> None:
    sums = subprocess.run([tool("b3sum"), "f1", "f2"], cwd=tree, capture_output=True,
                          check=True).stdout
    (tree / "SUMS").write_bytes(sums)
    out = parhash("check", "SUMS", cwd=tree)
    assert out.stderr.splitlines()[-1] == (
        "parhash: SUMS: hint: every digest failed as sha256, the algorithm its length "
        "suggests; if they are sha3-256 or blake2s digests, say so with --algo")


def test_no_hint_when_a_guess_matched_tags_named_it_or_status(tree: Path) -> None:
    good = subprocess.run([tool("md5sum"), "f1", "f2"], cwd=tree, capture_output=True,
                          check=True).stdout
    (tree / "M").write_bytes(good + f"{'0' * 32}  f3\n".encode())
    assert "hint" not in parhash("check", "M", cwd=tree).stderr
    (tree / "T").write_bytes(f"MD5 (f1) = {'0' * 32}\n".encode())
    assert "hint" not in parhash("check", "T", cwd=tree).stderr
    (tree / "X").write_bytes(f"{'0' * 32}  f1\n".encode())
    assert "hint" not in parhash("check", "X", cwd=tree).stderr  # one file that changed
    (tree / "X").write_bytes(f"{'0' * 32}  f1\n{'0' * 32}  f2\n".encode())
    assert "hint" in parhash("check", "X", cwd=tree).stderr
    assert parhash("check", "--status", "X", cwd=tree).stderr == ""
    assert "hint" not in parhash("check", "--algo", "md5", "X", cwd=tree).stderr


def test_bar_moves_inside_a_large_file(tmp_path: Path) -> None:
    # Sparse, so nothing is written; sha512 of 384 MiB takes about a second,
    # several of the bar's ticks, before the one file is done.
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(384 << 20)
    out = parhash("scan", "--progress", "-a", "sha512", "-j", "2", big)
    assert out.returncode == 0
    during = re.findall(r"hashing: ([\d.]+) (MiB|GiB), 0 files", out.stderr)
    assert during, out.stderr


def test_a_list_in_a_file_gives_the_bar_a_total_and_one_on_a_pipe_none(tree: Path) -> None:
    names = "".join(f"{p}\n" for p in sorted(tree.iterdir()))
    (tree.parent / "list").write_text(names)
    counted = parhash("scan", "--progress", "--files-from", tree.parent / "list")
    assert counted.returncode == 0 and "%|" in counted.stderr
    piped = parhash("scan", "--progress", "--files-from", "-", input=names.encode())
    assert piped.returncode == 0 and "hashing" in piped.stderr and "%" not in piped.stderr
    both = parhash("scan", "--progress", "--files-from", tree.parent / "list", tree)
    assert "%" not in both.stderr  # a directory: no total


def test_totals_unknown_for_globs_and_lists_of_directories_and_stdin(tree: Path) -> None:
    glob = parhash("scan", "--progress", tree / "f1", f"{tree}/f*")
    assert glob.returncode == 0 and "hashing" in glob.stderr and "%" not in glob.stderr
    (tree.parent / "dirs").write_text(f"{tree}\n")
    listed = parhash("scan", "--progress", "--summary", "--files-from", tree.parent / "dirs")
    assert listed.returncode == 0, listed.stderr
    assert "hashed 6 files" in listed.stderr
    manifest = parhash("scan", tree).stdout
    piped = parhash("check", "--progress", "-", input=manifest.encode())
    assert "verifying" in piped.stderr and "%" not in piped.stderr


def test_check_summary_counts_ignored_missing_files_as_no_error(tree: Path) -> None:
    manifest = tree.parent / "M"
    manifest.write_text(parhash("scan", tree).stdout + f"{'0' * 64}  {tree}/gone\n")
    out = parhash("check", "--summary", "--ignore-missing", manifest)
    assert out.returncode == 0
    assert out.stderr.endswith(": 6 OK, 0 FAILED\n"), out.stderr
    out = parhash("check", "--summary", manifest, tree.parent / "no-such-manifest")
    assert out.returncode == 1
    assert out.stderr.endswith(": 6 OK, 0 FAILED; 2 errors\n"), out.stderr
