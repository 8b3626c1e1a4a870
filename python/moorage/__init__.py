"""moorage: a daemonless, Docker-compatible container engine."""

from moorage._core import __version__
from moorage.errors import MoorageError

__all__ = ["MoorageError", "__version__"]
