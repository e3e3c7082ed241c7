"""File names in diagnostics, quoted byte for byte as coreutils quotes them.

coreutils prints ``md5sum: NAME: No such file or directory`` with NAME
through ``quotef`` and ``cannot open NAME for reading`` through
``quoteaf``: gnulib's ``quotearg`` in its shell-escape and
shell-escape-always styles (``quotef`` also quotes a name that holds
``:``). :func:`quote` follows ``quotearg_buffer_restyled`` of gnulib's
lib/quotearg.c for those two styles: which bytes make a name need quotes,
where ``$'...'`` escapes start and end, and when ``"it's"`` replaces
``'it'\\''s'``.

What is printable is the C library's answer in the locale coreutils would
run in (:func:`charset`): ``iswprint`` in a UTF-8 locale, where a
no-break space or a zero-width space is printed as it is; nothing beyond
ASCII in the C locale, where every other byte is an octal escape.

Only :func:`parhash.formats.names.quote_name` imports this module, and only
for a name with more than letters, digits and ``-_.,/%+@]``: the common
case never pays for it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import Any

# The pieces of a name, as quoteaf writes them: text written as it is, a
# single quote (written '\''), or an escape inside $'...'.
PRINT, QUOTE, ESCAPE = 0, 1, 2
Piece = tuple[int, bytes]

_C_ESCAPES = {7: b"\\a", 8: b"\\b", 9: b"\\t", 10: b"\\n", 11: b"\\v", 12: b"\\f", 13: b"\\r"}
_OCTAL = [b"\\%03o" % b for b in range(256)]

# quotearg's switch on a byte, for the shell styles, in three sets: what
# makes quotef quote the name (a shell would see more than a word); what
# rules out the "it's" form (not valid between C double quotes as it is);
# and '#', '~' (special first), '{', '}' (special alone), which are both or
# neither depending on where they are. '@' and the bytes matched by neither
# go by the locale.
_NEEDS_QUOTES = re.compile(rb"[\x00-\x20!\"$&'()*;<=>?\[\\^`|\x7f]")
_NOT_C_SAFE = re.compile(rb"[\x00-\x1f!\"$&()*;<=>?\[\\^`|\x7f]|(?<=.)[#~]|[{}]", re.DOTALL)
# The bytes quotearg decides on without the locale. In a multibyte locale
# other than UTF-8 (see _pieces_mb), any other byte starts a character that
# the C library reads.
_ASCII_CASES = frozenset(b"\0\a\b\t\n\v\f\r !\"#$%&'()*+,-./0123456789:;<=>?"
                         b"ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~")
# Runs of the pieces of a name in a locale where bytes below 0x80 are
# always ASCII: printable ASCII but the quote, the quote, a control, and
# bytes of 0x80 and up, which the locale decides on.
_RUNS = re.compile(rb"([\x20-\x26\x28-\x7e]+)|(')|([\x00-\x1f\x7f])|([\x80-\xff]+)")


def quote(name: bytes, always: bool = False) -> bytes:
    """``name`` as ``quotef`` (or ``quoteaf``, ``always`` quoted) of coreutils 9.1 prints it."""
    split = charset()
    if split is None:  # a multibyte locale other than UTF-8: quotearg's own walk
        pieces, needs_quotes, c_safe = _pieces_mb(name)
        return _quoted(name, pieces, c_safe) if needs_quotes or always else name
    pieces = []
    printable = True
    for m in _RUNS.finditer(name):
        text, quote_mark, control, high = m.groups()
        if text is not None:
            pieces.append((PRINT, text))
        elif quote_mark is not None:
            pieces.append((QUOTE, quote_mark))
        elif control is not None:
            pieces.append((ESCAPE, _C_ESCAPES.get(control[0]) or _OCTAL[control[0]]))
        else:
            for piece in split(high):
                pieces.append(piece)
                printable = printable and piece[0] == PRINT
    needs_quotes = always or (
        not name or not printable or _NEEDS_QUOTES.search(name) is not None
        or name[0] in b"#~" or name in (b"{", b"}") or b":" in name
    )
    if not needs_quotes:
        return name
    c_safe = printable and (_NOT_C_SAFE.search(name) is None or name in (b"{", b"}"))
    return _quoted(name, pieces, c_safe)


def _quoted(name: bytes, pieces: list[Piece], c_safe: bool) -> bytes:
    """The shell-escape-always form of a name made of ``pieces``.

    A name with a single quote whose every byte would be safe between C
    double quotes is written in double quotes instead, as quotearg does.
    """
    quoted = any(kind == QUOTE for kind, _ in pieces)
    if c_safe and quoted:
        return b'"' + name + b'"'
    out = bytearray(b"'")
    # Inside $'...'. The gnulib of coreutils 9.1 writes a name holding a
    # single quote in a second pass, which starts in the state the first
    # ended in (later gnulib starts it afresh). So when such a name ends in
    # an escape, md5sum prints '\001'\'''$'\a' for "\1'\a", and
    # '''a'\'''$'\001' for "a'\1".
    escaping = quoted and pieces[-1][0] == ESCAPE
    for kind, text in pieces:
        if kind == ESCAPE:
            if not escaping:
                out += b"'$'"
                escaping = True
            out += text
        elif kind == QUOTE:
            out += b"'\\''"
            escaping = False
        else:
            if escaping:
                out += b"''"
                escaping = False
            out += text
    out += b"'"
    return bytes(out)


# --- The locale: what is printable -----------------------------------------------


def charset() -> Callable[[bytes], list[Piece]] | None:
    """How to split bytes of 0x80 and up into printable characters and escapes.

    By the C library's LC_CTYPE, as Python set it from the environment at
    start-up: ASCII only in the C locale; ``iswprint`` of each character in
    UTF-8; ``isprint`` of each byte in another single-byte character set.
    ``None`` for other multibyte character sets (EUC-JP, GB18030...), whose
    bytes below 0x80 may be part of a character: :func:`_pieces_mb` walks
    those as quotearg does.

    The locale is the one coreutils would run in, not Python's replacement:
    with no locale set, or ``LANG=C``, Python itself runs in C.UTF-8 (PEP
    538), where md5sum runs in C.
    """
    import locale

    if _coerced():
        return _split_c
    codeset = locale.nl_langinfo(locale.CODESET)
    if codeset in ("ANSI_X3.4-1968", "ASCII", "US-ASCII"):
        return _split_c
    name = locale.setlocale(locale.LC_CTYPE)
    if codeset.replace("-", "").upper() == "UTF8":
        return lambda high: _split_utf8(high, _printable(name, _libc_iswprint))
    libc = _libc()
    if libc is None:
        return _split_c
    if libc.__ctype_get_mb_cur_max() == 1:
        return lambda high: _split_bytes(high, _printable(name, _libc_isprint))
    return None


def _coerced() -> bool:
    """Whether Python replaced the C locale the environment asked for with C.UTF-8.

    It does so (PEP 538) when LC_ALL is unset and LC_CTYPE would be C: it
    sets LC_CTYPE=C.UTF-8 in its environment, and UTF-8 mode (PEP 540)
    follows from the C locale it found. A C.UTF-8 asked for by the user
    does not turn on UTF-8 mode unless PYTHONUTF8 or ``-X utf8`` says so.
    """
    env = os.environ
    return bool(
        sys.flags.utf8_mode and "LC_ALL" not in env and "PYTHONUTF8" not in env
        and "utf8" not in sys._xoptions and env.get("LC_CTYPE") in ("C.UTF-8", "C.utf8", "UTF-8")
    )


def _split_c(high: bytes) -> list[Piece]:
    return [(ESCAPE, b"".join(_OCTAL[b] for b in high))]


def _split_utf8(high: bytes, printable: Callable[[int], bool]) -> list[Piece]:
    # Python's strict decoder refuses what the C library's mbrtowc refuses
    # (surrogates, overlong forms, beyond U+10FFFF), each refused byte
    # becoming a surrogate of its own; tests hold the two to agree.
    out: list[Piece] = []
    for ch in high.decode("utf-8", "surrogateescape"):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append((ESCAPE, _OCTAL[code - 0xDC00]))
        elif printable(code):
            out.append((PRINT, ch.encode()))
        else:
            out.append((ESCAPE, b"".join(_OCTAL[b] for b in ch.encode())))
    return out


def _split_bytes(high: bytes, printable: Callable[[int], bool]) -> list[Piece]:
    return [(PRINT, bytes((b,))) if printable(b) else (ESCAPE, _OCTAL[b]) for b in high]


# Answers of the C library, by locale: a name holds few distinct characters.
_ANSWERS: dict[tuple[str, Any], dict[int, bool]] = {}


def _printable(locale_name: str, ask: Callable[[int], bool]) -> Callable[[int], bool]:
    known = _ANSWERS.setdefault((locale_name, ask), {})

    def printable(code: int) -> bool:
        answer = known.get(code)
        if answer is None:
            answer = known[code] = ask(code)
        return answer

    return printable


_LIBC: list[Any] = []


def _libc() -> Any:
    """The C library through ctypes, or ``None`` where there is none to load."""
    if not _LIBC:
        try:
            import ctypes

            libc = ctypes.CDLL(None)
            libc.iswprint.argtypes = [ctypes.c_uint32]
            libc.isprint.argtypes = [ctypes.c_int]
            libc.__ctype_get_mb_cur_max.restype = ctypes.c_size_t
            libc.mbrtowc.restype = ctypes.c_size_t
        except (ImportError, OSError, AttributeError):
            libc = None
        _LIBC.append(libc)
    return _LIBC[0]


def _libc_iswprint(code: int) -> bool:
    libc = _libc()
    if libc is None:  # no C library to ask: Python's idea is close
        return chr(code).isprintable()
    return bool(libc.iswprint(code))


def _libc_isprint(byte: int) -> bool:
    return bool(_libc().isprint(byte))


def _pieces_mb(name: bytes) -> tuple[list[Piece], bool, bool]:
    """quotearg's own walk of a name: ``(pieces, whether quotef quotes it, c_safe)``.

    At each byte: one that quotearg decides on by itself, or else the
    character the C library's ``mbrtowc`` reads there, printable by
    ``iswprint``. Slow (a call per character), but right in a multibyte
    character set whose characters may hold bytes below 0x80; the other
    locales' pieces, found faster, are tested against it.
    """
    import ctypes

    libc = _libc()
    wide = ctypes.c_uint32()
    state = ctypes.create_string_buffer(128)  # an mbstate_t, zeroed
    buffer = ctypes.create_string_buffer(name, len(name))
    pieces: list[Piece] = []
    needs_quotes = not name or name[0] in b"#~" or name in (b"{", b"}")
    c_safe = True
    i = 0
    while i < len(name):
        byte = name[i]
        if byte in _ASCII_CASES:
            if byte == 0x27:
                pieces.append((QUOTE, b"'"))
            elif byte < 0x20:
                pieces.append((ESCAPE, _C_ESCAPES.get(byte) or _OCTAL[byte]))
            else:
                pieces.append((PRINT, name[i : i + 1]))
            char = name[i : i + 1]
            needs_quotes = needs_quotes or _NEEDS_QUOTES.match(char) is not None or byte == 0x3A
            c_safe = c_safe and (
                (_NOT_C_SAFE.match(char) is None or name in (b"{", b"}"))
                and not (i and byte in b"#~")
            )
            i += 1
            continue
        ctypes.memset(state, 0, len(state))
        n = libc.mbrtowc(ctypes.byref(wide), ctypes.byref(buffer, i), len(name) - i, state)
        if n == ctypes.c_size_t(-1).value:  # not a character: this byte alone
            size, printable = 1, False
        elif n == ctypes.c_size_t(-2).value:  # cut short by the end of the name
            size, printable = len(name) - i, False
        else:
            size, printable = n, bool(libc.iswprint(wide.value))
        chunk = name[i : i + size]
        if printable:
            pieces.append((PRINT, chunk))
            # As quotearg: old shells saw these where they end a character.
            needs_quotes = needs_quotes or any(b in b"[\\^`|" for b in chunk[1:])
        else:
            pieces.append((ESCAPE, b"".join(_OCTAL[b] for b in chunk)))
            needs_quotes = True
            c_safe = False
        i += size
    return pieces, needs_quotes, c_safe
