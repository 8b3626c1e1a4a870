"""Protocol of a security profile plugin."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from moorage.spec.options import CreateOptions


class SecurityProfile(Protocol):
    """Adjusts a generated OCI runtime config (a JSON-shaped dict) in place.

    ``name`` is what ``--security-opt profile=NAME`` (and ``--privileged`` →
    ``privileged``) selects; ``default`` is used otherwise."""

    name: ClassVar[str]

    def apply(self, config: dict[str, Any], options: CreateOptions) -> None: ...
