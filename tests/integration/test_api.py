"""The in-process Python API (docker-py shaped)."""

from __future__ import annotations

import time

import pytest

import moorage


def test_run_returns_output_and_raises_on_failure(engine, image) -> None:
    assert engine.containers.run(image, ["echo", "hello"], remove=True) == b"hello\n"
    with pytest.raises(moorage.ContainerError) as e:
        engine.containers.run(image, "sh -c 'echo bad >&2; exit 3'", remove=True)
    assert e.value.exit_status == 3
    assert engine.containers.list(all=True) == []


def test_detached_lifecycle(engine, image) -> None:
    c = engine.containers.run(image, ["sleep", "300"], detach=True, name="api", labels={"a": "b"}, init=True)
    assert c.status == "running" and c.name == "api"
    assert engine.containers.get("api").id == c.id
    assert [x.id for x in engine.containers.list(filters={"label": "a=b"})] == [c.id]
    code, _ = c.exec_run("true")
    assert code == 0
    assert "sleep 300" in " ".join(c.top()["Processes"][0])
    # with --init: /dev/init is PID 1 in the container, sleep its child
    top = c.top(ps_args="-o pid,args")
    assert top["Titles"] == ["PID", "COMMAND"]
    assert [r[1] for r in top["Processes"]] == ["/dev/init -- sleep 300", "sleep 300"]
    assert top["Processes"][0][0] == str(c.attrs["State"]["Pid"])
    c.stop(timeout=1)
    assert c.status == "exited"
    assert c.wait()["StatusCode"] == 143
    assert c.attrs["State"]["ExitCode"] == 143
    c.remove()
    with pytest.raises(moorage.ContainerNotFound):
        engine.containers.get("api")


def test_images_api(engine, image) -> None:
    img = engine.images.get("busybox:latest")
    assert img.id.startswith("sha256:") and "docker.io/library/busybox:latest" in img.tags
    assert [i.id for i in engine.images.list()] == [img.id]
    with pytest.raises(moorage.ImageNotFound):
        engine.images.get("nope")


def _as_nobody(fn) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """Run ``fn`` in a forked child with uid/gid 65534; its exit status and stderr."""
    import os
    import sys

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        try:
            os.close(r)
            os.dup2(w, 2)
            sys.stderr = open(2, "w", closefd=False)  # pytest captures sys.stderr
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            fn()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException as e:
            print(f"{type(e).__name__}: {e}", file=sys.stderr)
            code = 99
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        err = f.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), err


@pytest.fixture
def nobody_dir():  # type: ignore[no-untyped-def]
    """A directory uid 65534 can reach (pytest's tmp_path is under a 0700 dir)."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    d = Path(tempfile.mkdtemp(prefix="moorage-nobody-", dir="/tmp"))
    os.chown(d, 65534, 65534)
    yield d
    shutil.rmtree(d)


def test_non_root_gets_a_clear_permission_error(nobody_dir) -> None:
    # Import in the parent what the child needs: uid 65534 may not be able
    # to read the installed package (e.g. under a 0700 /root).
    from moorage.cli import archive, changes, container, image, main, maintenance, system  # noqa: F401

    root, run = nobody_dir / "root", nobody_dir / "run"
    args = ["--root", str(root), "--runroot", str(run)]

    def api() -> None:
        try:
            moorage.Engine(root, run).containers.create("busybox", ["true"])
        except moorage.errors.PermissionDenied as e:
            print(f"denied: {e}", file=__import__("sys").stderr)
            raise SystemExit(3) from None

    code, err = _as_nobody(api)
    assert code == 3 and "needs root to create a container" in err, err
    code, err = _as_nobody(lambda: main([*args, "run", "busybox", "true"]))
    assert code == 125, err
    assert err.strip().splitlines() == [
        "Error: permission denied: moorage needs root to create a container (rootless mode is not supported yet)"]
    # nothing was left half-made: no container row, no bundle, no layer
    assert main_ok(args, "ps", "-aq") == ""
    assert not list(run.glob("containers/*")) and not list(root.glob("storage/overlay/containers/*"))


def main_ok(args: list[str], *rest: str) -> str:
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "moorage.cli", *args, *rest], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_container_labels_image_and_prune(engine, image) -> None:
    a = engine.containers.create(image, "true", labels={"tier": "db"})
    b = engine.containers.create(image, "true", labels=["solo"])
    assert a.labels == {"tier": "db"} and b.labels == {"solo": ""}
    assert a.image.id == engine.images.get(image).id
    with pytest.raises(moorage.InvalidArgument, match="invalid filter 'nope'"):
        engine.containers.prune(filters={"nope": "1"})
    assert engine.containers.prune(filters={"label": "tier=db"}) == {"ContainersDeleted": [a.id], "SpaceReclaimed": 0}
    assert engine.containers.prune() == {"ContainersDeleted": [b.id], "SpaceReclaimed": 0}
    assert engine.containers.prune() == {"ContainersDeleted": None, "SpaceReclaimed": 0}


def test_stats_shape(engine, image) -> None:
    c = engine.containers.run(image, ["sleep", "300"], detach=True, mem_limit="32m", pids_limit=8)
    s = c.stats(stream=False, interval=0.2)
    assert s["id"] == c.id and s["name"] == f"/{c.name}"
    assert s["memory_stats"]["limit"] == 32 << 20 and s["memory_stats"]["usage"] > 0
    assert s["pids_stats"] == {"current": 1, "limit": 8}
    assert s["cpu_stats"]["system_cpu_usage"] > s["precpu_stats"]["system_cpu_usage"] > 0
    assert s["cpu_stats"]["online_cpus"] >= 1 and s["networks"] == {}
    one = c.stats(stream=False, one_shot=True)
    assert one["precpu_stats"] == {"cpu_usage": {"total_usage": 0}}
    gen = c.stats(decode=True, interval=0.1)
    first, second = next(gen), next(gen)
    assert second["precpu_stats"] == first["cpu_stats"]
    import json

    assert json.loads(next(c.stats(interval=0.1)))["id"] == c.id  # undecoded: JSON bytes, as docker-py
    c.stop(timeout=0)
    assert list(c.stats(decode=True)) == []  # the stream ends with the container
    with pytest.raises(moorage.Conflict, match="is not running"):
        c.stats(stream=False)
    c.remove()


def test_update(engine, image) -> None:
    c = engine.containers.run(image, ["sleep", "300"], detach=True, mem_limit="64m")
    assert c.update(mem_limit="96m", restart_policy={"Name": "on-failure", "MaximumRetryCount": 1}) == {"Warnings": []}
    hc = c.attrs["HostConfig"]
    assert hc["Memory"] == 96 << 20 and hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 1}
    with pytest.raises(moorage.InvalidArgument, match="unsupported update options: kernel_memory"):
        c.update(kernel_memory=1 << 20)
    c.remove(force=True)


def test_attach(engine, image) -> None:
    gate = "while [ ! -e /tmp/go ]; do sleep 0.05; done"
    c = engine.containers.run(image, ["sh", "-c", f"echo early; {gate}; echo late; echo oops >&2"], detach=True)
    deadline = time.monotonic() + 10
    while c.logs() != b"early\n" and time.monotonic() < deadline:
        time.sleep(0.05)
    stream = c.attach(logs=True, stream=True)
    assert next(stream) == b"early\n"  # from the log: written before we attached
    c.exec_run(["touch", "/tmp/go"])
    assert b"".join(stream) == b"late\noops\n"  # the live stream, to the exit
    c.remove()  # the record says exited once the stream has ended
    c = engine.containers.run(image, ["sh", "-c", f"{gate}; echo a; echo b >&2"], detach=True)
    stream = c.attach(stream=True, stderr=False)
    c.exec_run(["touch", "/tmp/go"])
    assert list(stream) == [b"a\n"]
    c.remove()
