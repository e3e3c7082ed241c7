"""The one table of hash algorithms: name, constructor, BSD tag, digest length."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol


class Hasher(Protocol):
    def update(self, data: Any, /) -> None: ...
    def hexdigest(self) -> str: ...


class Algorithm(NamedTuple):
    name: str
    new: Callable[[], Hasher]
    tag: str  # the word `md5sum --tag` / `xxhsum --tag` puts before "(NAME) = "
    hex_length: int
    doc: str


def _xxh(name: str) -> Callable[[], Hasher]:
    # xxhash is imported on first use so that `import parhash` stays cheap;
    # then the constructor is looked up once.
    constructor: Callable[[], Hasher] | None = None

    def new() -> Hasher:
        nonlocal constructor
        if constructor is None:
            import xxhash

            constructor = getattr(xxhash, name)
        return constructor()

    return new


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in (
        Algorithm("md5", hashlib.md5, "MD5", 32, "as md5sum"),
        Algorithm("sha1", hashlib.sha1, "SHA1", 40, "as sha1sum"),
        Algorithm("sha224", hashlib.sha224, "SHA224", 56, "as sha224sum"),
        Algorithm("sha256", hashlib.sha256, "SHA256", 64, "as sha256sum"),
        Algorithm("sha384", hashlib.sha384, "SHA384", 96, "as sha384sum"),
        Algorithm("sha512", hashlib.sha512, "SHA512", 128, "as sha512sum"),
        Algorithm("sha3-256", hashlib.sha3_256, "SHA3-256", 64, "FIPS 202, as cksum -a sha3"),
        Algorithm("sha3-512", hashlib.sha3_512, "SHA3-512", 128, "FIPS 202, as cksum -a sha3"),
        Algorithm("blake2b", hashlib.blake2b, "BLAKE2b", 128, "BLAKE2b-512, as b2sum"),
        Algorithm("blake2s", hashlib.blake2s, "BLAKE2s", 64, "BLAKE2s-256"),
        Algorithm("xxh32", _xxh("xxh32"), "XXH32", 8, "as xxhsum -H0"),
        Algorithm("xxh64", _xxh("xxh64"), "XXH64", 16, "as xxhsum -H1"),
        Algorithm("xxh3", _xxh("xxh3_64"), "XXH3", 16, "XXH3 64-bit, as xxhsum -H3"),
        Algorithm("xxh128", _xxh("xxh3_128"), "XXH128", 32, "XXH3 128-bit, as xxhsum -H2"),
    )
}

DEFAULT_ALGO = "sha256"

# xxhash's functions that hash one buffer without a hasher object.
_XXH_ONE_SHOT = {
    "xxh32": "xxh32_hexdigest",
    "xxh64": "xxh64_hexdigest",
    "xxh3": "xxh3_64_hexdigest",
    "xxh128": "xxh3_128_hexdigest",
}


def hexdigest_function(name: str) -> Callable[[Any], str]:
    """A function from one buffer to its hex digest by algorithm ``name``.

    One call per buffer, where xxhash has one; else a hasher made, fed and read.
    """
    if name in _XXH_ONE_SHOT:
        import xxhash

        one_shot: Callable[[Any], str] = getattr(xxhash, _XXH_ONE_SHOT[name])
        return one_shot
    new = ALGORITHMS[name].new

    def hexdigest(data: Any) -> str:
        h = new()
        h.update(data)
        return h.hexdigest()

    return hexdigest

# Spellings users bring from other tools.
_ALIASES = {
    "sha3_256": "sha3-256",
    "sha3_512": "sha3-512",
    "b2": "blake2b",
    "blake2": "blake2b",
    "xxh3_64": "xxh3",
    "xxh3-64": "xxh3",
    "xxh3_128": "xxh128",
    "xxh3-128": "xxh128",
}


class UnknownAlgorithm(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"unknown algorithm {name!r} (choose from {', '.join(ALGORITHMS)})"
        )
        self.name = name


def parse_algos(specs: Iterable[str]) -> tuple[str, ...]:
    """Turn ``["md5,sha1", "xxh3"]`` into ``("md5", "sha1", "xxh3")``.

    Names are case-insensitive, duplicates are dropped, order is kept.
    Raises :class:`UnknownAlgorithm` for a name not in :data:`ALGORITHMS`.
    """
    names: list[str] = []
    for spec in specs:
        for word in spec.split(","):
            word = word.strip().lower()
            if not word:
                continue
            name = _ALIASES.get(word, word)
            if name not in ALGORITHMS:
                raise UnknownAlgorithm(word)
            if name not in names:
                names.append(name)
    return tuple(names)
