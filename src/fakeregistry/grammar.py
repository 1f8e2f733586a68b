"""The reference grammar for repository names, tags and digests.

The regular expressions are those of distribution's ``reference`` package
(``reference/regexp.go``) and go-digest; a value that does not match gets the
spec's error code, never a routing 404.
"""

from __future__ import annotations

import hashlib
import re
from typing import Union

from .errors import RegistryError

NAME_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"{NAME_COMPONENT}(?:/{NAME_COMPONENT})*")
NAME_MAX_LENGTH = 255
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")

# Digest algorithms the registry verifies, with the length of their hex encoding.
DIGEST_ALGORITHMS = {"sha256": 64, "sha512": 128}
DIGEST_RE = re.compile(r"([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-f0-9]+)")

Bytes = Union[bytes, bytearray, memoryview]


def check_name(name: str) -> str:
    if len(name) > NAME_MAX_LENGTH:
        raise RegistryError(
            "NAME_INVALID",
            f"repository name is {len(name)} characters long; the limit is {NAME_MAX_LENGTH}",
            detail={"name": name},
        )
    if not NAME_RE.fullmatch(name):
        raise RegistryError(
            "NAME_INVALID",
            f"invalid repository name {name!r}: components of lowercase letters and digits, "
            "separated by '.', '_', '__' or '-', joined by '/'",
            detail={"name": name},
        )
    return name


def check_tag(tag: str) -> str:
    if not TAG_RE.fullmatch(tag):
        raise RegistryError(
            "TAG_INVALID",
            f"invalid tag {tag!r}: up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'",
            detail={"tag": tag},
        )
    return tag


def check_digest(digest: str) -> str:
    """Validate ``algorithm:hex`` and return the algorithm."""
    match = DIGEST_RE.fullmatch(digest)
    if not match:
        raise RegistryError(
            "DIGEST_INVALID",
            f"invalid digest {digest!r}: expected sha256:<64 hex> or sha512:<128 hex>",
            detail={"digest": digest},
        )
    algorithm, encoded = match.groups()
    expected_length = DIGEST_ALGORITHMS.get(algorithm)
    if expected_length is None:
        raise RegistryError(
            "DIGEST_INVALID",
            f"unsupported digest algorithm {algorithm!r}: use sha256 or sha512",
            detail={"digest": digest},
        )
    if len(encoded) != expected_length:
        raise RegistryError(
            "DIGEST_INVALID",
            f"invalid digest {digest!r}: {algorithm} takes {expected_length} hex characters",
            detail={"digest": digest},
        )
    return algorithm


def is_digest(reference: str) -> bool:
    """A manifest reference is a digest when it has a colon; tags cannot."""
    return ":" in reference


def check_reference(reference: str) -> None:
    """A manifest reference is a tag or a digest."""
    if is_digest(reference):
        check_digest(reference)
    else:
        check_tag(reference)


def digest_of(data: Bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
