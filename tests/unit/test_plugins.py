"""Meta-tests of the plugin API: every hook is documented and exercised."""

from __future__ import annotations

import inspect
from pathlib import Path

import pluggy
import pytest

from moorage.plugin import hookspecs
from moorage.plugin.manager import Plugins, Registry, build_plugin_manager

README = (Path(__file__).parents[2] / "README.md").read_text()
HOOKS = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("moorage_")]


def test_there_are_five_plugin_points() -> None:
    assert sorted(HOOKS) == sorted(Plugins.KINDS.values())


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_documented_with_exact_signature(hook: str) -> None:
    sig = inspect.signature(getattr(hookspecs, hook))
    params = ", ".join(sig.parameters)
    assert f"`{hook}({params})`" in README, f"README must document {hook}({params})"
    assert getattr(hookspecs, hook).__doc__


def test_builtins_are_registered() -> None:
    p = Plugins(build_plugin_manager(load_entrypoints=False))
    assert {"overlay", "vfs"} <= set(p.storage.names())
    assert {"none", "host"} <= set(p.network.names())
    assert {"default", "unconfined", "privileged"} <= set(p.security.names())
    assert {"none", "builtin"} <= set(p.init.names())
    assert "builtin" in p.runtime.names()


def test_third_party_plugin_overrides_and_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    class MyNet:
        name = "none"

    class Plugin:
        @pluggy.HookimplMarker("moorage")
        def moorage_register_network_modes(self, register: Registry) -> None:  # type: ignore[type-arg]
            register.add(MyNet)

    pm = build_plugin_manager(load_entrypoints=False)
    pm.register(Plugin(), name="mine")
    assert Plugins(pm).network.get("none") is MyNet
    monkeypatch.setenv("MOORAGE_DISABLE_PLUGINS", "moorage.network.builtin")
    p = Plugins(build_plugin_manager(load_entrypoints=False))
    assert "host" not in p.network


def test_registry_rejects_nameless_and_reports_unknown() -> None:
    from moorage.errors import InvalidArgument

    r: Registry = Registry("thing")  # type: ignore[type-arg]
    with pytest.raises(TypeError):
        r.add(type("X", (), {}))
    with pytest.raises(InvalidArgument, match="unknown thing 'nope'"):
        r.get("nope")


def test_unknown_hook_in_plugin_fails_loudly() -> None:
    class Bad:
        @pluggy.HookimplMarker("moorage")
        def moorage_register_everything(self, register: object) -> None: ...

    pm = build_plugin_manager(load_entrypoints=False)
    pm.register(Bad(), name="bad")
    with pytest.raises(pluggy.PluginValidationError):
        pm.check_pending()


def test_entry_point_cache_follows_installs(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import time

    from moorage.plugin.manager import _moorage_entry_points

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setattr(sys, "path", ["/script/dir", str(site)])

    def install(dist: str, ep: str) -> None:
        d = site / f"{dist}-1.0.dist-info"
        d.mkdir()
        (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (d / "entry_points.txt").write_text(f"[moorage]\n{ep} = {dist}_mod\n")

    cache = tmp_path / "cache"
    install("one", "first")
    assert _moorage_entry_points(cache) == [("first", "one_mod")]
    assert (cache / "entry-points.json").exists()
    assert _moorage_entry_points(cache) == [("first", "one_mod")]  # served from the cache
    time.sleep(0.01)
    install("two", "second")  # a new .dist-info changes the directory's mtime
    assert _moorage_entry_points(cache) == [("first", "one_mod"), ("second", "two_mod")]


def test_builtin_drivers_implement_exactly_the_storage_protocol() -> None:
    """commit/diff/export reach drivers only through the protocol, so a
    third-party driver needs nothing the protocol does not name."""
    from moorage.storage.api import StorageDriver
    from moorage.storage.overlay import OverlayDriver
    from moorage.storage.vfs import VfsDriver

    wanted = {n for n, v in vars(StorageDriver).items() if callable(v) and not n.startswith("_")}
    assert {"create_layer", "mount", "unmount", "changes", "diff", "layer_path"} <= wanted
    for cls in (OverlayDriver, VfsDriver):
        missing = {n for n in wanted if not callable(getattr(cls, n, None))}
        assert not missing, f"{cls.__name__} lacks {missing}"
    import moorage.image.commit as commit_mod

    src = Path(commit_mod.__file__).read_text()
    assert "upper_path" not in src and "hasattr(driver" not in src


def test_a_broken_plugin_is_skipped_with_a_warning(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from moorage.errors import PluginLoadWarning
    from moorage.plugin.manager import Plugins, build_plugin_manager

    d = tmp_path / "broken-1.0.dist-info"
    d.mkdir()
    (d / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
    (d / "entry_points.txt").write_text("[moorage]\nbroken = no_such_module_for_moorage:plugin\n")
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path)])
    with pytest.warns(PluginLoadWarning, match=r"plugin 'broken' \(no_such_module_for_moorage:plugin\) failed to load"):
        pm = build_plugin_manager(cache_dir=tmp_path / "cache")
    assert pm.get_plugin("broken") is None
    assert "overlay" in Plugins(pm).storage  # the engine goes on with what did load
    monkeypatch.setenv("MOORAGE_DISABLE_PLUGINS", "broken")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_plugin_manager(cache_dir=tmp_path / "cache")  # disabled: not even tried


def test_cli_prints_plugin_warnings_as_one_line(tmp_path) -> None:
    import os
    import subprocess
    import sys

    d = tmp_path / "broken-1.0.dist-info"
    d.mkdir()
    (d / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
    (d / "entry_points.txt").write_text("[moorage]\nbroken = no_such_module_for_moorage:plugin\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "moorage.cli", "--root", str(tmp_path / "r"), "--runroot",
                        str(tmp_path / "rr"), "info"], capture_output=True, text=True, env=env)
    assert r.returncode == 0
    assert r.stderr.startswith("WARNING: plugin 'broken' (no_such_module_for_moorage:plugin) failed to load")
    assert r.stderr.count("\n") == 1


def test_an_entry_point_plugin_with_an_unknown_hook_is_skipped(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from moorage.errors import PluginLoadWarning
    from moorage.plugin.manager import build_plugin_manager

    (tmp_path / "typo_plugin_for_moorage.py").write_text(
        "from moorage.plugin import hookimpl\n\n"
        "@hookimpl\ndef moorage_register_storage_driver(register):\n    pass\n")
    d = tmp_path / "typo-1.0.dist-info"
    d.mkdir()
    (d / "METADATA").write_text("Metadata-Version: 2.1\nName: typo\nVersion: 1.0\n")
    (d / "entry_points.txt").write_text("[moorage]\ntypo = typo_plugin_for_moorage\n")
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path)])
    with pytest.warns(PluginLoadWarning, match="plugin 'typo' .* PluginValidationError: .*moorage_register_storage_driver"):
        pm = build_plugin_manager(cache_dir=tmp_path / "cache")
    assert pm.get_plugin("typo") is None
    pm.check_pending()  # what is left is sound
