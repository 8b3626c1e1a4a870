"""moorage: a daemonless, Docker-compatible container engine.

The public API is :class:`Engine` (docker-py-shaped) and the exceptions in
:mod:`moorage.errors`; the native module ``moorage._core`` is private."""

from moorage._core import __version__
from moorage.engine import Engine
from moorage.errors import (
    CommandNotFound,
    CommandNotInvokable,
    Conflict,
    ContainerError,
    ContainerNotFound,
    ImageNotFound,
    InvalidArgument,
    MoorageError,
    NotFound,
    PermissionDenied,
)

__all__ = [
    "CommandNotFound",
    "CommandNotInvokable",
    "Conflict",
    "ContainerError",
    "ContainerNotFound",
    "Engine",
    "ImageNotFound",
    "InvalidArgument",
    "MoorageError",
    "NotFound",
    "PermissionDenied",
    "__version__",
]
