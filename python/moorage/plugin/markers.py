"""The pluggy markers of the ``moorage`` project."""

import pluggy

hookspec = pluggy.HookspecMarker("moorage")
hookimpl = pluggy.HookimplMarker("moorage")
