"""moorage's exception hierarchy. The Rust core raises these (see
rust/python/src/errors.rs); every error carries the Docker-style exit code the
CLI returns."""

from __future__ import annotations


class MoorageError(Exception):
    """Base of every moorage error. ``exit_code`` is what the CLI exits with."""

    exit_code = 125


class OSFailure(MoorageError):
    """A system call failed. ``errno``, the failing step and the path are kept."""

    def __init__(self, errno: int, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.errno = errno
        self.path = path


class NotFound(MoorageError):
    """A container, image, volume or network does not exist."""


class ImageNotFound(NotFound):
    """No such image."""


class ContainerNotFound(NotFound):
    """No such container."""


class Conflict(MoorageError):
    """A name is in use, or the object is in the wrong state for the request."""


class InvalidLayer(MoorageError):
    """A layer archive is malformed, corrupt or hostile (an entry escapes the root...)."""


class InvalidArgument(MoorageError):
    """A flag or option value is malformed."""


class CommandNotFound(MoorageError):
    """The container's command does not exist in the image (Docker exits 127)."""

    exit_code = 127


class CommandNotInvokable(MoorageError):
    """The container's command exists but cannot be run (Docker exits 126)."""

    exit_code = 126


class PermissionDenied(MoorageError):
    """The caller lacks the privilege the request needs (running containers needs root)."""


class RuntimeFailure(MoorageError):
    """The OCI runtime or the monitor failed."""


class ContainerError(MoorageError):
    """A container run by ``engine.containers.run`` exited non-zero (docker-py's ContainerError)."""

    def __init__(self, container: str, exit_status: int, command: object, image: str, stderr: bytes) -> None:
        self.container, self.exit_status, self.command, self.image, self.stderr = (
            container, exit_status, command, image, stderr)
        super().__init__(
            f"Command '{command}' in image '{image}' returned non-zero exit status {exit_status}: "
            f"{stderr.decode(errors='replace').strip()}"
        )


class PluginLoadWarning(UserWarning):
    """An installed plugin could not be loaded; the engine goes on without it."""
