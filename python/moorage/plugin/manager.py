"""Building the plugin manager: built-ins first, then the ``moorage``
entry-point group, minus anything named in ``MOORAGE_DISABLE_PLUGINS``
(comma-separated plugin names). Nothing loads at import time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

import pluggy

from moorage.plugin import hookspecs

T = TypeVar("T")

#: modules holding the built-in plugins, registered under these names
BUILTIN_PLUGINS: tuple[str, ...] = (
    "moorage.storage.overlay",
    "moorage.storage.vfs",
    "moorage.network.builtin",
    "moorage.security.builtin",
    "moorage.supervisor.builtin",
    "moorage.runtime.oci",
)


class Registry(Generic[T]):
    """The object a ``moorage_register_*`` hook receives: classes by ``name``.

    pluggy calls the most recently registered plugin first, so the first
    class added under a name is kept: a plugin loaded after the built-ins
    (every entry-point plugin) replaces a built-in of the same name."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type[T]] = {}

    def add(self, cls: type[T]) -> None:
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{self.kind} plugin class {cls!r} has no string 'name'")
        self._classes.setdefault(name, cls)

    def get(self, name: str) -> type[T]:
        try:
            return self._classes[name]
        except KeyError:
            from moorage.errors import InvalidArgument

            known = ", ".join(sorted(self._classes)) or "none"
            raise InvalidArgument(f"unknown {self.kind} {name!r} (registered: {known})") from None

    def names(self) -> list[str]:
        return sorted(self._classes)

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


class Plugins:
    """The registries filled from one plugin manager."""

    KINDS = {
        "storage": "moorage_register_storage_drivers",
        "network": "moorage_register_network_modes",
        "security": "moorage_register_security_profiles",
        "init": "moorage_register_init_supervisors",
        "runtime": "moorage_register_oci_runtimes",
    }

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.storage: Registry[Any] = Registry("storage driver")
        self.network: Registry[Any] = Registry("network mode")
        self.security: Registry[Any] = Registry("security profile")
        self.init: Registry[Any] = Registry("init supervisor")
        self.runtime: Registry[Any] = Registry("OCI runtime")
        for attr, hook in self.KINDS.items():
            getattr(pm.hook, hook)(register=getattr(self, attr))

    def summary(self) -> dict[str, list[str]]:
        return {attr: getattr(self, attr).names() for attr in self.KINDS}


def _moorage_entry_points(cache_dir: Path | None) -> list[tuple[str, str]]:
    """(name, value) of the ``moorage`` entry points of the installed distributions.

    Scanning every installed distribution's metadata costs ~40 ms per CLI
    call, so the answer is cached in ``cache_dir`` under a fingerprint of the
    import path: installing or removing a distribution changes the mtime of
    the directory that holds its ``.dist-info``."""
    import json
    import sys

    fingerprint: list[list[object]] = []
    # sys.path[0] is the script's directory (the console script's bin/) or the
    # working directory (`python -m`): it holds no installed distributions and
    # differs between the two ways of starting moorage.
    for entry in sys.path[1:]:
        try:
            fingerprint.append([entry, os.stat(entry or ".").st_mtime_ns])
        except OSError:
            fingerprint.append([entry, None])
    cache = cache_dir / "entry-points.json" if cache_dir else None
    if cache is not None:
        try:
            data = json.loads(cache.read_text())
            if data.get("fingerprint") == fingerprint:
                return [(str(n), str(v)) for n, v in data["entry_points"]]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    from importlib.metadata import entry_points  # ~20 ms of imports: only on a cache miss

    found = sorted({(ep.name, ep.value) for ep in entry_points(group="moorage")})
    if cache is not None:
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
            tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
            tmp.write_text(json.dumps({"fingerprint": fingerprint, "entry_points": found}))
            os.replace(tmp, cache)
        except OSError:
            pass
    return found


def _load_entry_point(value: str) -> Any:
    """Import ``module[:attr.attr]`` (an entry point's value; ``[extras]`` ignored)."""
    import importlib

    module, _, attrs = value.split("[", 1)[0].partition(":")
    obj: Any = importlib.import_module(module.strip())
    for part in filter(None, attrs.strip().split(".")):
        obj = getattr(obj, part)
    return obj


def build_plugin_manager(load_entrypoints: bool = True, cache_dir: Path | None = None) -> pluggy.PluginManager:
    """Return a plugin manager with the built-ins and the installed plugins.

    ``cache_dir`` (the engine passes its runroot) keeps the entry-point scan
    between calls; see :func:`_moorage_entry_points`."""
    import importlib

    pm = pluggy.PluginManager("moorage")
    pm.add_hookspecs(hookspecs)
    blocked = {n.strip() for n in os.environ.get("MOORAGE_DISABLE_PLUGINS", "").split(",") if n.strip()}
    for name in blocked:
        pm.set_blocked(name)
    for modname in BUILTIN_PLUGINS:
        if modname in blocked:
            continue
        pm.register(importlib.import_module(modname), name=modname)
    if load_entrypoints:
        pm.check_pending()  # the built-ins are sound: a failure below is the plugin's
        for name, value in _moorage_entry_points(cache_dir):
            if pm.get_plugin(name) is not None or pm.is_blocked(name):
                continue
            # One broken plugin must not take the engine down with it: what it
            # would have registered is then simply unknown ("registered: ...").
            try:
                pm.register(_load_entry_point(value), name=name)
                try:
                    pm.check_pending()  # a hook no spec declares (a typo, a newer moorage's hook)
                except pluggy.PluginValidationError:
                    pm.unregister(name=name)
                    raise
            except Exception as e:
                import warnings

                from moorage.errors import PluginLoadWarning

                warnings.warn(PluginLoadWarning(
                    f"plugin {name!r} ({value}) failed to load and is skipped: {type(e).__name__}: {e}"
                    f" (MOORAGE_DISABLE_PLUGINS={name} silences this)"), stacklevel=2)
    pm.check_pending()
    return pm
