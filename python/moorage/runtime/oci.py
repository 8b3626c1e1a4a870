"""Built-in OCI runtimes: moorage's own (embedded in ``moorage._core``), and
``runc``/``crun`` when they are on the PATH."""

from __future__ import annotations

import os
import shutil
from typing import Any, ClassVar

from moorage import _core
from moorage.errors import InvalidArgument
from moorage.plugin.manager import Registry
from moorage.plugin.markers import hookimpl


def builtin_binary(runroot: str) -> str:
    """The static moorage-runtime binary, written once into ``<runroot>/bin``."""
    return str(_core.runtime_binary(os.path.join(runroot, "bin")))


class BuiltinRuntime:
    name: ClassVar[str] = "builtin"
    global_args: ClassVar[tuple[str, ...]] = ()

    def available(self) -> bool:
        return True

    def binary(self, runroot: str) -> str:
        return builtin_binary(runroot)


class _PathRuntime:
    name: ClassVar[str] = ""
    global_args: ClassVar[tuple[str, ...]] = ()

    def available(self) -> bool:
        return shutil.which(self.name) is not None

    def binary(self, runroot: str) -> str:
        path = shutil.which(self.name)
        if path is None:
            raise InvalidArgument(f"OCI runtime {self.name!r} not found in $PATH")
        return path


class RuncRuntime(_PathRuntime):
    name: ClassVar[str] = "runc"


class CrunRuntime(_PathRuntime):
    name: ClassVar[str] = "crun"


@hookimpl
def moorage_register_oci_runtimes(register: Registry[Any]) -> None:
    register.add(BuiltinRuntime)
    for cls in (RuncRuntime, CrunRuntime):
        if cls().available():
            register.add(cls)
