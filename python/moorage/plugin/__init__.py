"""moorage's plugin system (pluggy): markers, hook specifications, manager.

Third-party plugins import :data:`hookimpl` from here and the protocol of the
part they provide from ``moorage.<subsystem>.api``.
"""

from moorage.plugin.manager import Registry, build_plugin_manager
from moorage.plugin.markers import hookimpl, hookspec

__all__ = ["Registry", "build_plugin_manager", "hookimpl", "hookspec"]
