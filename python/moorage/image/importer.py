"""``import``: a root filesystem tarball (file or stdin) → a one-layer image,
with Dockerfile-style ``--change`` instructions applied to its config."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moorage.errors import InvalidArgument, InvalidLayer, MoorageError
from moorage.image.store import BlobStore, Image

if TYPE_CHECKING:
    from moorage.engine import Context

CHANGE_KEYS = {"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER", "VOLUME", "WORKDIR", "STOPSIGNAL", "ONBUILD"}


def _json_or_shell(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        try:
            parsed = json.loads(value)
            if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
                return parsed
        except ValueError:
            pass
    return ["/bin/sh", "-c", value]


def _pairs(value: str) -> list[tuple[str, str]]:
    parts = shlex.split(value)
    if len(parts) == 2 and "=" not in parts[0]:
        return [(parts[0], parts[1])]
    out = []
    for p in parts:
        if "=" not in p:
            raise InvalidArgument(f"invalid change: {value!r}: expected KEY=VALUE")
        k, v = p.split("=", 1)
        out.append((k, v))
    return out


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Apply ``--change`` lines (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL)."""
    cfg = dict(config)
    for change in changes:
        key, _, value = change.strip().partition(" ")
        key = key.upper()
        if key not in CHANGE_KEYS or key == "ONBUILD":
            raise InvalidArgument(f"{key} is not a valid change command")
        if key == "CMD":
            cfg["Cmd"] = _json_or_shell(value)
        elif key == "ENTRYPOINT":
            cfg["Entrypoint"] = _json_or_shell(value)
        elif key == "ENV":
            env = {e.split("=", 1)[0]: e for e in cfg.get("Env") or []}
            for k, v in _pairs(value):
                env[k] = f"{k}={v}"
            cfg["Env"] = list(env.values())
        elif key == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            labels.update(_pairs(value))
            cfg["Labels"] = labels
        elif key == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in value.split():
                ports[p if "/" in p else f"{p}/tcp"] = {}
            cfg["ExposedPorts"] = ports
        elif key == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            for v in (json.loads(value) if value.strip().startswith("[") else value.split()):
                vols[v] = {}
            cfg["Volumes"] = vols
        elif key == "USER":
            cfg["User"] = value.strip()
        elif key == "WORKDIR":
            if not value.strip().startswith("/"):
                raise InvalidArgument(f"WORKDIR must be an absolute path: {value!r}")
            cfg["WorkingDir"] = value.strip()
        elif key == "STOPSIGNAL":
            cfg["StopSignal"] = value.strip()
    return cfg


def _download(url: str, blobs: BlobStore) -> Path:
    """Stream an http(s) URL into a temp file of the store (Docker's ``import URL``)."""
    import urllib.error
    import urllib.request

    if not url.startswith(("http://", "https://")):
        raise InvalidArgument(f"import: unsupported URL scheme: {url}")
    tmp, f = blobs.temp_file()
    try:
        with f, urllib.request.urlopen(url, timeout=60) as resp:
            shutil.copyfileobj(resp, f, 1 << 20)
    except (urllib.error.URLError, OSError, ValueError) as e:
        tmp.unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise MoorageError(f"import: downloading {url}: {reason}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def import_image(ctx: Context, source: str, ref: str | None, changes: list[str], message: str) -> Image:
    config = apply_changes({}, changes)
    if ref:
        from moorage.image import reference

        reference.parse(ref)  # fail before reading a large input
    blobs = ctx.images.blobs
    if source == "-":
        tmp, f = blobs.temp_file()
        with f:
            shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)
    elif "://" in source:
        tmp = _download(source, blobs)
    else:
        src = Path(source)
        if not src.is_file():
            raise InvalidArgument(f"open {source}: no such file")
        tmp, f = blobs.temp_file()
        with f, open(src, "rb") as inp:
            shutil.copyfileobj(inp, f, 1 << 20)
    try:
        if tmp.stat().st_size == 0:
            raise MoorageError("import: the input is empty")
        return ctx.images.import_tar(tmp, ctx.driver(ctx.storage_driver), ctx.storage_driver, ref, config, message)
    except InvalidLayer as e:
        # name what the user gave, not the store's temporary copy of it
        raise InvalidLayer(str(e).replace(str(tmp), "standard input" if source == "-" else source)) from None
    finally:
        tmp.unlink(missing_ok=True)
