"""Names in diagnostics, quoted as coreutils 9.1 quotes them, against the real md5sum.

``md5sum -- NAME`` for a file that does not exist prints ``md5sum: NAME: No
such file or directory`` with NAME through ``quotef``: each case here is
held to what the installed md5sum prints, in the locales installed here
(C.UTF-8 and C) and with no locale set at all.
"""

from __future__ import annotations

import contextlib
import locale
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parhash.formats import quoting
from parhash.formats.names import quote_name

LOCALES = ["C.UTF-8", "C"]
# Without LANG or any LC_ variable: md5sum runs in C, Python in C.UTF-8.
BARE_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG"))}


def md5sum() -> str:
    found = shutil.which("md5sum")
    assert found is not None, "md5sum (GNU coreutils 9.1) is not installed: the tests need it"
    return found


def reason(name: bytes) -> str:
    """Why md5sum can't hash ``name`` in an empty directory, in the C library's words."""
    try:
        with open(name, "rb") as f:
            f.read(1)
    except OSError as e:
        return str(e.strerror)
    raise AssertionError(f"{name!r} can be read")


def md5sum_says(names: list[bytes], env: dict[str, str], cwd: Path) -> list[bytes]:
    # Called by its bare name, md5sum starts its messages with "md5sum:".
    done = subprocess.run(["md5sum", "--", *names], executable=md5sum(), capture_output=True,
                          env=env, cwd=cwd, check=False)
    assert done.returncode == 1 and done.stdout == b""
    return done.stderr.splitlines(keepends=True)


@contextlib.contextmanager
def c_locale(name: str) -> Iterator[None]:
    """Run in the C library's locale ``name``, as a process started with LC_ALL=name."""
    saved_env = os.environ.get("LC_ALL")
    saved = locale.setlocale(locale.LC_CTYPE)
    os.environ["LC_ALL"] = name
    locale.setlocale(locale.LC_CTYPE, name)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)
        if saved_env is None:
            del os.environ["LC_ALL"]
        else:
            os.environ["LC_ALL"] = saved_env


def expected_line(name: bytes) -> bytes:
    return b"md5sum: %s: %s\n" % (os.fsencode(quote_name(os.fsdecode(name))),
                                   reason(name).encode())


# Bytes and characters on which quoting turns: shell specials, controls,
# quotes, characters Python and the C library disagree are printable, and
# bytes that are not UTF-8 (surrogates, overlong, past U+10FFFF, cut short).
PIECES = [
    b"a", b"Z", b"0", b"_", b"-", b".", b"@", b"%", b"+", b",", b"]", b":", b" ", b"!", b'"',
    b"#", b"$", b"&", b"'", b"(", b")", b"*", b";", b"<", b"=", b">", b"?", b"[", b"\\", b"^",
    b"`", b"{", b"|", b"}", b"~", b"\a", b"\b", b"\t", b"\n", b"\v", b"\f", b"\r", b"\x01",
    b"\x1b", b"\x7f", b"/",
    *(chr(c).encode() for c in (0xA0, 0xAD, 0xE9, 0x85, 0x300, 0x378, 0x200B, 0x2028, 0xFEFF,
                                0xFFFE, 0xFFFD, 0xE000, 0x4E2D, 0x1F600, 0x10FFFF, 0xE0001)),
    b"\xed\xa0\x80", b"\xc0\x80", b"\xe0\x80\x80", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80",
    b"\xe2\x82", b"\xc3", b"\x80", b"\xff", b"\xfe",
]
NAME = st.lists(st.one_of(st.sampled_from(PIECES), st.binary(min_size=1, max_size=3)),
                max_size=8).map(b"".join).filter(
    lambda n: b"\0" not in n and n not in (b"-", b".", b"..") and not n.startswith(b"/"))


@pytest.mark.parametrize(
    "name, quoted",
    [
        ("plain", "plain"),
        ("a b", "'a b'"),
        ("it's", '"it\'s"'),
        ("it's $x", "'it'\\''s $x'"),
        ("x:y", "'x:y'"),
        ("n\nl", "'n'$'\\n''l'"),
        ("\tlead", "''$'\\t''lead'"),
        ("\udcffz", "''$'\\377''z'"),
        ("#h", "'#h'"),
        ("a#", "a#"),
        ("{", "'{'"),
        ("", "''"),
        ("café", "café"),
        ("a]b", "a]b"),
        ("\n'", "''$'\\n'\\'''"),
    ],
)
def test_quote_name_quotes_as_coreutils_diagnostics(name: str, quoted: str) -> None:
    with c_locale("C.UTF-8"):
        assert quote_name(name) == quoted


def test_quote_name_always_is_quoteaf() -> None:
    assert quote_name("x:y", always=True) == "'x:y'"
    assert quote_name("plain", always=True) == "'plain'"
    assert quote_name("it's", always=True) == '"it\'s"'


@pytest.mark.parametrize("where", LOCALES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names=st.lists(NAME, min_size=1, max_size=12))
def test_quote_name_is_what_md5sum_prints_for_random_names(
    where: str, names: list[bytes], tmp_path_factory: pytest.TempPathFactory
) -> None:
    empty = tmp_path_factory.mktemp("empty")
    env = {**BARE_ENV, "LC_ALL": where}
    said = md5sum_says(names, env, empty)
    # cp's "cannot stat NAME" quotes NAME with quoteaf.
    done = subprocess.run(["cp", "--", *names, empty], capture_output=True, env=env, cwd=empty,
                          check=False)
    with c_locale(where):
        assert [expected_line(n) for n in names] == said
        assert [b"cp: cannot stat %s: %s\n" % (os.fsencode(quote_name(os.fsdecode(n), always=True)),
                                                reason(n).encode()) for n in names] == (
            done.stderr.splitlines(keepends=True))


@pytest.mark.parametrize(
    "name",
    [b"a]b", b"it's", b"it's (x)", b"it's a:b@c", b"it's #", b"#it's", b"{", b"a{b", b"\n'",
     b"a'\nb", b"'\n", b"\xc2\xa0nbsp", b"\xef\xbb\xbfbom", b"\xe2\x80\x8bzw", b"\xc2\xadshy",
     "caf\u00e9 \u65e5\u672c".encode(), b"latin1-\xe9\xff", b"\xef\xbf\xbe", b"", b"x:y"],
)
@pytest.mark.parametrize("env", ["C.UTF-8", "C", "none"])
def test_parhash_prints_names_in_its_messages_as_md5sum(
    name: bytes, env: str, tmp_path: Path
) -> None:
    # The whole process, in each locale: a name md5sum can't open, as scan
    # reports it.
    environ = dict(BARE_ENV) if env == "none" else {**BARE_ENV, "LC_ALL": env}
    environ["PYTHONDONTWRITEBYTECODE"] = "1"
    ours = subprocess.run([sys.executable, "-m", "parhash", "scan", "-a", "md5", "--", name],
                          capture_output=True, env=environ, cwd=tmp_path, check=False)
    theirs = md5sum_says([name], environ, tmp_path)
    assert ours.stderr.splitlines(keepends=True)[0].replace(b"parhash:", b"md5sum:", 1) == (
        theirs[0])


def test_plain_names_never_load_the_locale_rules() -> None:
    code = ("import sys; from parhash.formats.names import quote_name; "
            "quote_name('src/a-b_c.d,e+f%g@h]i'); quote_name('x:y', always=True); "
            "print('parhash.formats.quoting' in sys.modules, 'ctypes' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert done.stdout == b"False False\n"


@settings(max_examples=300, deadline=None)
@given(name=NAME, always=st.booleans())
def test_utf8_names_split_as_the_c_library_reads_them(name: bytes, always: bool) -> None:
    # The quick way (Python's UTF-8 decoder) against quotearg's own walk,
    # with mbrtowc and iswprint of the C library at each character.
    with c_locale("C.UTF-8"):
        pieces, needs_quotes, c_safe = quoting._pieces_mb(name)
        walked = quoting._quoted(name, pieces, c_safe) if needs_quotes or always else name
        assert quoting.quote(name, always) == walked


def test_c_locale_prints_no_byte_above_ascii() -> None:
    with c_locale("C"):
        assert all(not quoting._libc_isprint(b) for b in range(0x80, 0x100))
        assert quoting.quote("café".encode()) == b"'caf'$'\\303\\251'"
