"""Hand-written stubs for the Rust extension ``moorage._core`` (checked with
mypy.stubtest). Every function that does IO releases the GIL. Errors raise
``moorage.errors``: ``OSFailure`` (with ``errno`` and ``path``) when a system
call failed, ``InvalidArgument`` for bad arguments, ``MoorageError`` for a
malformed layer, ``InvalidLayer`` for a malformed or hostile layer."""

from typing import Any

__all__ = [
    "__version__",
    "apply_layer",
    "bind_mount",
    "diff_layer",
    "mount_overlay",
    "runtime_binary",
    "runtime_digest",
    "sha256_file",
    "unmount",
]

__version__: str

def runtime_binary(dir: str) -> str:
    """Path of the embedded runtime binary under ``dir``, written there first
    if missing."""

def runtime_digest() -> str:
    """sha256 (hex) of the embedded runtime binary."""

def apply_layer(
    source: str, dest: str, whiteout_format: str = "overlay"
) -> dict[str, Any]:
    """Apply the layer tar at ``source`` (plain, gzip or zstd, detected by magic
    bytes) onto the existing directory ``dest``.

    Returns ``{"digest": "sha256:…" (of the input bytes), "diff_id": "sha256:…"
    (of the uncompressed tar), "size": uncompressed bytes, "compressed_size":
    input bytes, "compression": "none" | "gzip" | "zstd", "entries": tar
    entries applied, whiteouts included}``.

    ``whiteout_format="overlay"`` turns whiteouts into overlayfs' 0/0 character
    devices and ``trusted.overlay.opaque=y``; ``"vfs"`` deletes the files from
    ``dest`` (a copy of the parent layer). Entries never land outside ``dest``:
    absolute names are taken relative to it, symlinks resolve as if ``dest``
    were ``/``, and a ``..`` that climbs out fails the apply. On any error
    ``dest`` is left partially written: the caller removes it."""

def diff_layer(upper: str, output: str, exclude: list[str] | None = None) -> dict[str, Any]:
    """Write the plain, reproducible tar diff of the overlay upper dir
    ``upper`` to ``output`` (created or truncated, fsynced), with overlay
    whiteouts turned back into ``.wh.`` entries. ``exclude`` lists paths
    relative to ``upper`` (e.g. ``"etc/hosts"``) left out when they are
    regular files; a whiteout or directory there is still written. Returns
    ``{"diff_id": "sha256:…", "size": bytes written}``. Only overlay uppers: a
    vfs tree comparison is not implemented."""

def sha256_file(path: str) -> str:
    """``sha256:<hex>`` of the file's content."""

def mount_overlay(
    lower: list[str],
    upper: str | None,
    work: str | None,
    target: str,
    readonly: bool = False,
) -> None:
    """Mount an overlay of ``lower`` on ``target``; ``lower[0]`` is the topmost
    layer. Without ``upper``/``work`` the mount is read-only; a single lower
    without upper becomes a read-only bind mount. Up to 500 layers, any path
    length."""

def unmount(target: str, detach: bool = False) -> None:
    """Unmount ``target`` (lazily with ``detach``). Not mounted raises
    ``OSFailure`` with errno EINVAL."""

def bind_mount(source: str, target: str, readonly: bool = False) -> None:
    """Recursive bind mount of ``source`` on ``target``; ``readonly`` applies to
    every submount."""
