"""Image references normalized the way Docker does: ``busybox`` →
``docker.io/library/busybox:latest``; ``localhost:5000/a/b:t`` stays;
``name@sha256:…`` keeps its digest."""

from __future__ import annotations

import re
from dataclasses import dataclass

from moorage.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
OFFICIAL_PREFIX = "library/"
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_DOMAIN = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$")


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        s = self.repository
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    @property
    def familiar_repository(self) -> str:
        """What Docker prints: ``busybox`` rather than ``docker.io/library/busybox``."""
        if self.domain == DEFAULT_DOMAIN:
            return self.path.removeprefix(OFFICIAL_PREFIX)
        return self.repository

    @property
    def familiar(self) -> str:
        s = self.familiar_repository
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def parse(text: str, default_tag: str | None = "latest") -> Reference:
    """Parse and normalize ``text``; raise InvalidArgument naming the problem."""
    if not text or text != text.strip():
        raise InvalidArgument(f"invalid reference format: {text!r}")
    name, digest = text, None
    if "@" in name:
        name, digest = name.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidArgument(f"invalid reference format: bad digest in {text!r}")
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.match(tag):
            raise InvalidArgument(f"invalid reference format: bad tag in {text!r}")
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        domain, path_parts = parts[0], parts[1:]
        if not _DOMAIN.match(domain):
            raise InvalidArgument(f"invalid reference format: bad registry {domain!r}")
    else:
        domain, path_parts = DEFAULT_DOMAIN, parts
        if len(path_parts) == 1:
            path_parts = ["library", *path_parts]
    for comp in path_parts:
        if not _COMPONENT.match(comp):
            if comp.lower() == comp:
                raise InvalidArgument(f"invalid reference format: {text!r}")
            raise InvalidArgument(
                f"invalid reference format: repository name ({text}) must be lowercase"
            )
    if tag is None and digest is None:
        tag = default_tag
    return Reference(domain, "/".join(path_parts), tag, digest)


def looks_like_id(text: str) -> bool:
    t = text.removeprefix("sha256:")
    return bool(re.fullmatch(r"[a-f0-9]{1,64}", t))
