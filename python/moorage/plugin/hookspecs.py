"""Hook specifications. Every swappable part is a class that a plugin adds to a
:class:`~moorage.plugin.manager.Registry` passed to one of these hooks; the
built-ins register through exactly the same hooks (see ``moorage.<kind>``).

Each class has a unique ``name`` attribute (what users type: ``--storage-driver
vfs``, ``--network host``, ``--security-opt seccomp=unconfined`` ...). A later
registration of the same name replaces an earlier one, so a third party can
override a built-in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from moorage.plugin.markers import hookspec

if TYPE_CHECKING:
    from moorage.plugin.manager import Registry


@hookspec
def moorage_register_storage_drivers(register: Registry) -> None:
    """Add :class:`moorage.storage.api.StorageDriver` classes with ``register.add(cls)``.

    Return value: ignored."""


@hookspec
def moorage_register_network_modes(register: Registry) -> None:
    """Add :class:`moorage.network.api.NetworkMode` classes with ``register.add(cls)``.

    Return value: ignored."""


@hookspec
def moorage_register_security_profiles(register: Registry) -> None:
    """Add :class:`moorage.security.api.SecurityProfile` classes with ``register.add(cls)``.

    Return value: ignored."""


@hookspec
def moorage_register_init_supervisors(register: Registry) -> None:
    """Add :class:`moorage.supervisor.api.InitSupervisor` classes with ``register.add(cls)``.

    Return value: ignored."""


@hookspec
def moorage_register_oci_runtimes(register: Registry) -> None:
    """Add :class:`moorage.runtime.api.OciRuntime` classes with ``register.add(cls)``.

    Return value: ignored."""
