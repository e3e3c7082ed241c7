"""Every command has help: a summary, an example, and words for every option."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from parhash.cli import cli

COMMANDS = sorted(cli.commands)
ROOT = Path(__file__).resolve().parent.parent


def test_top_level_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f"  {name}" in result.output
    assert "scan" in COMMANDS


def test_parhash_alone_prints_the_help_as_help_does() -> None:
    # Click 8.2 and later raise an error for a group called with nothing; the
    # installed click is the one pip picked, so this runs against it.
    alone = subprocess.run([sys.executable, "-m", "parhash"], capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=60)
    asked = subprocess.run([sys.executable, "-m", "parhash", "--help"], capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=60)
    assert (alone.returncode, alone.stderr) == (0, b""), alone
    assert alone.stdout == asked.stdout
    assert alone.stdout.startswith(b"Usage: parhash [OPTIONS] COMMAND")


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_command_has_help(name: str, flag: str) -> None:
    result = CliRunner().invoke(cli, [name, flag], prog_name="parhash")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: parhash {name} ")
    command = cli.commands[name]
    summary = (command.help or "").strip().splitlines()[0]
    assert summary and summary in result.output
    assert "Example" in result.output, "the docstring shows an example under \\b"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help_text(name: str) -> None:
    command = cli.commands[name]
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts} has no help"


@pytest.mark.parametrize("checkout", ["git", "sdist"])
def test_make_run_hashes_the_project_s_own_files_and_warns_of_nothing(
    checkout: str, tmp_path: Path
) -> None:
    # The scan `make run` makes, on a tree that holds what set-up leaves behind:
    # a git checkout hashes what git tracks; an unpacked sdist, all but set-up's.
    made = subprocess.run(["make", "-n", "-s", "run"], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    recipe = made.stdout.split("\n", 1)[1]  # after the pip install
    own = ["README.md", "src/app.py", "tests/test_x.py"]
    for name in own:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    if checkout == "git":
        env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null"}
        subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, env=env)
        subprocess.run(["git", "add", *own], cwd=tmp_path, check=True, env=env)
        junk = ["src/__pycache__/app.cpython-311.pyc", ".mypy_cache/x", ".hypothesis/x",
                "dist/parhash.whl", "notes.txt"]
    else:
        junk = []
    for name in (*junk, "build/lib/src/app.py", "demo.egg-info/PKG-INFO", ".venv/bin/python"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    # The venv's parhash, where the recipe looks for it.
    (tmp_path / ".venv/bin/parhash").symlink_to(Path(sys.executable).parent / "parhash")
    done = subprocess.run(["bash", "-c", recipe], cwd=tmp_path, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(x.split("  ", 1)[1].removeprefix("./") for x in done.stdout.splitlines()) == own
    # What the user sees on stderr: the command (set -x), and no warning.
    assert "warning" not in done.stderr, done.stderr
    assert "parhash scan" in done.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_works_as_the_readme_says(shell: str) -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"_PARHASH_COMPLETE={shell}_source parhash" in readme
    env = {**os.environ, "_PARHASH_COMPLETE": f"{shell}_source"}
    script = subprocess.run([sys.executable, "-m", "parhash"], env=env, capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert script.returncode == 0 and "_PARHASH_COMPLETE" in script.stdout, script.stderr
    # What the script asks for, as bash would: the commands, then an option.
    for words, cword, want in (("parhash sc", "1", "plain,scan"),
                               ("parhash scan --ta", "2", "plain,--tag")):
        env = {**os.environ, "_PARHASH_COMPLETE": "bash_complete", "COMP_WORDS": words,
               "COMP_CWORD": cword}
        done = subprocess.run([sys.executable, "-m", "parhash"], env=env, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=60)
        assert done.stdout.splitlines() == [want], done


def test_the_package_builds_to_an_sdist_and_a_wheel_that_twine_passes(tmp_path: Path) -> None:
    # A copy of the project's own files, as a fresh clone holds them.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "MANIFEST.in", "README.md", "LICENSE", "CHANGELOG.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "parhash", source / "parhash",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "man", source / "man")
    built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(tmp_path / "dist"),
                            str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    # setuptools deprecates a license given as a table: the SPDX string is used.
    assert "deprecat" not in (built.stdout + built.stderr).lower()
    dist = sorted(p.name for p in (tmp_path / "dist").iterdir())
    assert [n.endswith("-py3-none-any.whl") or n.endswith(".tar.gz") for n in dist] == [
        True, True
    ]
    checked = subprocess.run([sys.executable, "-m", "twine", "check", "--strict",
                              *(str(tmp_path / "dist" / n) for n in dist)],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with zipfile.ZipFile(tmp_path / "dist" / dist[0]) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(next(n for n in names if n.endswith("/METADATA"))).decode()
    assert "License-Expression: MIT" in metadata
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert "parhash/dupes/stages.py" in names and "parhash/formats/gnu.py" in names
    # The sdist ships the man pages as committed (tests/test_manpage.py keeps them fresh).
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    top = sdist.name.removesuffix(".tar.gz") + "/"
    pages = sorted(p.name for p in (ROOT / "man").glob("*.1"))
    with tarfile.open(sdist) as tar:
        shipped = {m.name.removeprefix(top): tar.extractfile(m) for m in tar.getmembers()
                   if m.name.startswith(top + "man/")}
        assert sorted(shipped) == [f"man/{name}" for name in pages]
        for name, member in shipped.items():
            assert member and member.read() == (ROOT / name).read_bytes(), name
