"""Container image references, as the container runtime parses them.

Grammar from github.com/distribution/reference regexp.go (read at 0965666a, v0.6.0-22):

    reference    := name [ ":" tag ] [ "@" digest ]
    name         := [domain "/"] remote-name          (at most 255 characters)
    domain       := host [":" port-number]
    remote-name  := path-component ["/" path-component]*
    path-component := [a-z0-9]+ (separator [a-z0-9]+)*,  separator := [._] | __ | [-]+
    tag          := [\\w][\\w.-]{0,127}
    digest       := algorithm ":" hex{32,}

Digests are further checked by the algorithms the runtime knows (opencontainers/go-digest:
sha256 64 hex, sha384 96, sha512 128, lowercase). A first path component is the registry
when it contains "." or ":" or is "localhost" (normalize.go `splitDockerDomain`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[(?:[a-fA-F0-9:]+)\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
REFERENCE_PATTERN = re.compile(
    rf"^(?P<repo>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
"""The reference grammar, groups `repo`, `tag`, `digest` (`parse_image` also checks the length
and the digest algorithm)."""
_TAG_ONLY = re.compile(rf"^{_TAG}$")
NAME_MAX = 255
DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}

MOVING_TAGS: frozenset[str] = frozenset({"latest", "stable", "main", "master", "edge", "nightly"})
"""Tags that by convention move to new content: never a pin."""


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference."""

    repository: str
    """`[registry/]path`, without tag or digest."""
    tag: str | None
    digest: str | None
    """`<algorithm>:<hex>`."""

    @property
    def registry(self) -> str | None:
        """The registry host[:port] named by the reference, None for Docker Hub short names."""
        first, _, rest = self.repository.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            return first
        return None


def is_digest(digest: str) -> bool:
    """`sha256:<64 lowercase hex>` (or sha384/sha512 with their lengths)."""
    algorithm, _, hex_part = digest.partition(":")
    expected = DIGEST_LENGTHS.get(algorithm)
    return expected == len(hex_part) and re.fullmatch(r"[a-f0-9]+", hex_part) is not None


def parse_image(image: str) -> ImageReference:
    """Parse `image`; ValueError saying what is allowed when the runtime would reject it."""
    match = REFERENCE_PATTERN.match(image)
    if match is None:
        raise ValueError(
            f"{image!r} is not an image reference [registry[:port]/]path[:tag][@sha256:digest] "
            "(lowercase path components, tag [A-Za-z0-9_][A-Za-z0-9_.-]{0,127})"
        )
    name, tag, digest = match.group("repo", "tag", "digest")
    if len(name) > NAME_MAX:
        raise ValueError(f"{image!r}: repository name longer than {NAME_MAX} characters")
    if digest is not None and not is_digest(digest):
        raise ValueError(
            f"{image!r}: digest {digest!r} is malformed; expected sha256:<64 lowercase hex> "
            "(or sha384/sha512)"
        )
    return ImageReference(name, tag, digest)


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) by position only (no validation): a registry port is not a
    tag. For judging what a manifest holds, whatever its shape."""
    digest: str | None = None
    if "@" in image:
        image, digest = image.split("@", 1)
    tag: str | None = None
    if ":" in image.rsplit("/", 1)[-1]:
        image, tag = image.rsplit(":", 1)
    return image, tag, digest


def is_tag(tag: str) -> bool:
    """A valid image tag."""
    return _TAG_ONLY.match(tag) is not None


def is_moving_tag(tag: str | None) -> bool:
    """No tag (means latest) or a conventionally moving tag."""
    return tag is None or tag in MOVING_TAGS
